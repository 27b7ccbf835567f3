"""Spec problems as compiler-style lines, GitHub Actions annotations, JSON, or SARIF."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any, TextIO
from urllib.parse import quote

from reconciler import __version__
from reconciler.errors import SpecProblem
from reconciler.render.escape import terminal_safe

FORMATS = ("text", "github", "json", "sarif")
TOOL_NAME = "workspaces-image-reconciler"
INFORMATION_URI = "https://github.com/workspaces-image-reconciler/workspaces-image-reconciler"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
# GitHub code scanning's name for the checkout's root, which relative paths start from.
SRCROOT = "%SRCROOT%"


def render_problems(
    problems: Iterable[SpecProblem],
    fmt: str,
    out: TextIO,
    *,
    root: str | None = None,
    warnings: Iterable[SpecProblem] = (),
    diagnostics: TextIO | None = None,
) -> None:
    """Problems and warnings of the specs in `fmt`, the result to `out`: compiler-style
    lines in text, annotations in github, one document in json and sarif.

    `diagnostics` (stderr) also gets each warning as a line in the formats that write a
    document or annotations, so that a CI log shows it. `root`: the folder relative paths
    are relative to, for SARIF (default: the working directory, which in Actions is the
    checkout)."""
    problems, warnings = list(problems), list(warnings)
    if fmt == "json":
        out.write(json.dumps(validation_document(problems, warnings), indent=2) + "\n")
    elif fmt == "sarif":
        out.write(json.dumps(sarif(problems, root=root, warnings=warnings), indent=2) + "\n")
    elif fmt == "github":
        for p in problems:
            out.write(github_annotation(p) + "\n")
        for w in warnings:
            out.write(github_annotation(w, level="warning") + "\n")
    else:
        for line in [*map(str, problems), *map(warning_line, warnings)]:
            out.write(terminal_safe(line) + "\n")
        return
    if diagnostics is not None:
        for w in warnings:
            diagnostics.write(terminal_safe(warning_line(w)) + "\n")


def warning_line(w: SpecProblem) -> str:
    """`file:line:col: field: warning: message`, as compilers print a warning."""
    where = f"{w.file}:{w.line}:{w.column}" if w.line else w.file
    return f"{where}: {w.field}: warning: {w.message}"


def validation_document(
    problems: Iterable[SpecProblem], warnings: Iterable[SpecProblem]
) -> dict[str, Any]:
    """validate's JSON: `{"format_version", "problems", "warnings"}`, versioned as the
    other commands' documents are (imported here: only `--format json` pays for it)."""
    from reconciler.plan import FORMAT_VERSION

    return {
        "format_version": FORMAT_VERSION,
        "problems": [problem_dict(p) for p in problems],
        "warnings": [problem_dict(w) for w in warnings],
    }


def problem_dict(p: SpecProblem) -> dict[str, Any]:
    return {
        "file": p.file,
        "line": p.line,
        "column": p.column,
        "field": p.field,
        "message": p.message,
    }


def github_annotation(problem: SpecProblem, level: str = "error") -> str:
    """`::error file=...,line=...,col=...,title=...::message` (or `::warning`), escaped as
    the runner expects."""
    props = f"file={_prop(problem.file)}"
    if problem.line:  # a folder-level problem has no line
        props += f",line={problem.line},col={problem.column}"
    # The runner's log is a terminal too: the field and message may quote a spec's value.
    title = _prop(terminal_safe(problem.field))
    return f"::{level} {props},title={title}::{_data(terminal_safe(problem.message))}"


def _data(text: str) -> str:
    # The runner's own escaping for a command's message (actions/toolkit command.ts).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


# --- SARIF 2.1.0 ---------------------------------------------------------------------------

# Fields whose children are the user's own names (tag keys): the rule stops there, so that
# `tags.team` and `tags.owner` are one rule.
_NAMED_CHILDREN = {"tags"}
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")
_FIXED_RULES = {
    "file": "A spec file that can't be read or parsed as YAML",
    "folder": "The specs folder, or a folder in it, can't be read",
    "unknown-field": "A key the spec format does not know",
    "document": "A YAML document that is neither an image spec nor a defaults document",
    "spec": "A problem in a spec",
}


def rule_id(problem: SpecProblem) -> str:
    """A rule per kind of problem, stable across runs and free of the user's own names:
    the field's path without list positions and tag keys (`tags.team` -> `tags`)."""
    if problem.field in ("<file>", "<folder>"):
        return problem.field.strip("<>")
    if problem.message.startswith("unknown field"):
        return "unknown-field"
    kept: list[str] = []
    for part in problem.field.split("."):
        if part.isdigit():
            continue
        if not _IDENTIFIER.fullmatch(part):
            break
        kept.append(part)
        if part in _NAMED_CHILDREN:
            break
    return ".".join(kept) or "spec"


def _rule(rule: str, level: str) -> dict[str, Any]:
    text = _FIXED_RULES.get(rule, f"An invalid `{rule}` field")
    if level == "warning":
        rule, text = f"{rule}-warning", f"A valid `{rule}` field that a plan may still refuse"
    return {
        "id": rule,
        "shortDescription": {"text": text},
        "helpUri": INFORMATION_URI,
        "defaultConfiguration": {"level": level},
    }


def sarif(
    problems: Iterable[SpecProblem],
    *,
    root: str | None = None,
    warnings: Iterable[SpecProblem] = (),
) -> dict[str, Any]:
    """One run, one result per problem (level `error`) and per warning (level `warning`),
    with the file, line and column; the rules those results use, in the order they first
    appear. A warning's rule is its own (`name-warning`): a rule has one level."""
    rules: dict[tuple[str, str], int] = {}
    results = []
    found = [*((p, "error") for p in problems), *((w, "warning") for w in warnings)]
    for p, level in found:
        rule = rule_id(p)
        index = rules.setdefault((rule, level), len(rules))
        results.append(
            {
                "ruleId": rule if level == "error" else f"{rule}-warning",
                "ruleIndex": index,
                "level": level,
                "message": {"text": f"{p.field}: {p.message}"},
                "locations": [{"physicalLocation": _physical(p, root)}],
            }
        )
    driver = {
        "name": TOOL_NAME,
        "version": __version__,
        "semanticVersion": __version__,
        "informationUri": INFORMATION_URI,
        "rules": [_rule(rule, level) for rule, level in rules],
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "originalUriBaseIds": {
                    SRCROOT: {"description": {"text": "The folder the reconciler ran in."}}
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _physical(p: SpecProblem, root: str | None) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": _artifact(p.file, root)}
    if p.line > 0:  # a folder-level problem has no line
        region = {"startLine": p.line}
        if p.column > 0:
            region["startColumn"] = p.column
        location["region"] = region
    return location


def _artifact(file: str, root: str | None) -> dict[str, str]:
    """The file relative to the repository when it can be; else an absolute file URI."""
    path = Path(file)
    if path.is_absolute():
        base = Path(root) if root is not None else Path.cwd()
        try:
            path = path.relative_to(base)
        except ValueError:
            return {"uri": path.as_uri()}
    return {"uri": quote(PurePosixPath(*path.parts).as_posix()), "uriBaseId": SRCROOT}
