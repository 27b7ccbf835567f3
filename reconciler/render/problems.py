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
    problems: Iterable[SpecProblem], fmt: str, out: TextIO, *, root: str | None = None
) -> None:
    """`root`: the folder relative paths are relative to, for SARIF (default: the working
    directory, which in Actions is the checkout)."""
    if fmt == "json":
        out.write(json.dumps([problem_dict(p) for p in problems], indent=2) + "\n")
    elif fmt == "sarif":
        out.write(json.dumps(sarif(problems, root=root), indent=2) + "\n")
    elif fmt == "github":
        for p in problems:
            out.write(github_annotation(p) + "\n")
    else:
        for p in problems:
            out.write(terminal_safe(str(p)) + "\n")


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


def _rule(rule: str) -> dict[str, Any]:
    text = _FIXED_RULES.get(rule, f"An invalid `{rule}` field")
    return {
        "id": rule,
        "shortDescription": {"text": text},
        "helpUri": INFORMATION_URI,
        "defaultConfiguration": {"level": "error"},
    }


def sarif(problems: Iterable[SpecProblem], *, root: str | None = None) -> dict[str, Any]:
    """One run, one result per problem, with the file, line and column; the rules those
    results use, in the order they first appear."""
    rules: dict[str, int] = {}
    results = []
    for p in problems:
        rule = rule_id(p)
        index = rules.setdefault(rule, len(rules))
        results.append(
            {
                "ruleId": rule,
                "ruleIndex": index,
                "level": "error",
                "message": {"text": f"{p.field}: {p.message}"},
                "locations": [{"physicalLocation": _physical(p, root)}],
            }
        )
    driver = {
        "name": TOOL_NAME,
        "version": __version__,
        "semanticVersion": __version__,
        "informationUri": INFORMATION_URI,
        "rules": [_rule(r) for r in rules],
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
