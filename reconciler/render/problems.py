"""Spec problems as compiler-style lines, GitHub Actions annotations, JSON, or SARIF."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO
from urllib.parse import quote

from reconciler import __version__
from reconciler.errors import ProblemKind, SpecProblem
from reconciler.render.escape import terminal_safe
from reconciler.specs.models import MAX_DECLARED_TAGS
from reconciler.specs.yamlload import MAX_DEPTH, MAX_FILE_BYTES

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
    warnings: Iterable[SpecProblem] = (),
    diagnostics: TextIO | None = None,
    cwd: Path | None = None,
) -> None:
    """Problems and warnings of the specs in `fmt`, the result to `out`: compiler-style
    lines in text, annotations in github, one document in json and sarif.

    `diagnostics` (stderr) also gets each warning as a line in the formats that write a
    document or annotations, so that a CI log shows it. `cwd`: the folder the problems'
    relative paths start from (default: the working directory), for SARIF."""
    problems, warnings = list(problems), list(warnings)
    if fmt == "json":
        out.write(json.dumps(validation_document(problems, warnings), indent=2) + "\n")
    elif fmt == "sarif":
        out.write(sarif_text(problems, warnings, cwd=cwd))
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


class Located(Protocol):
    """What an annotation shows: a spec problem, or a plan item's conflict at its spec."""

    @property
    def file(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def column(self) -> int: ...
    @property
    def field(self) -> str: ...
    @property
    def message(self) -> str: ...


def github_annotation(problem: Located, level: str = "error") -> str:
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


@dataclass(frozen=True)
class Rule:
    """A SARIF rule: what code scanning shows as an alert's title and help."""

    short: str
    help: str
    level: str = "error"  # the level of a result that says none; a warning says its own


# One rule per kind of problem, in the order the driver lists them. Code scanning matches
# alerts across runs by rule id and file, so the ids are the kinds' values, which never
# name a field or a user's own name (a tag key, an image name).
RULES: dict[ProblemKind, Rule] = {
    ProblemKind.UNREADABLE_PATH: Rule(
        "A file or folder of the specs can't be read",
        "The specs folder is read whole or not at all: a specs folder that does not exist, "
        "a folder or file that can't be listed or opened, a broken link, a link loop, a link "
        "to outside the specs folder or something that is not a regular file stops the run, "
        "because a spec left unread is an image --prune would delete. Fix the path, the "
        "permissions or the link, or move it out.",
    ),
    ProblemKind.YAML_SYNTAX: Rule(
        "A spec file is not valid YAML",
        "The file can't be parsed: a YAML syntax error, a tab used for indentation, a "
        "control character, or bytes that are not UTF-8. Fix the line named, indent with "
        "spaces and save the file as UTF-8.",
    ),
    ProblemKind.YAML_LIMIT: Rule(
        "A spec file is beyond the loader's limits",
        f"Spec files are limited in size ({MAX_FILE_BYTES // 1024 // 1024} MiB), nesting "
        f"({MAX_DEPTH} levels) and expanded YAML nodes (which stops alias bombs). A spec is "
        "a few lines: split the file, or remove the deep nesting or the aliases.",
    ),
    ProblemKind.YAML_UNSUPPORTED: Rule(
        "A YAML feature that specs don't use",
        "Specs are plain data: no YAML tags (`!!python/object`, `!Ref`), no mapping keys "
        "other than plain strings, and `<<` merges only mappings. Write the value as plain "
        "YAML.",
    ),
    ProblemKind.DUPLICATE_KEY: Rule(
        "A key is written twice in one mapping",
        "Most YAML parsers silently keep the last of the two; the reconciler reports the "
        "second. Keep only one of the lines.",
    ),
    ProblemKind.NO_SPEC: Rule(
        "A file, document or specs folder holds no spec",
        "An empty file, an empty YAML document (a stray `---`), or a specs folder without "
        "any spec (which would retire every image and bundle). Add a spec, delete the file "
        "or the `---`, or pass --allow-empty to retire everything on purpose.",
    ),
    ProblemKind.INVALID_DOCUMENT: Rule(
        "A YAML document that is no kind of spec",
        "Each document is an image spec (a mapping with name, description and a source), a "
        "bundle spec (`kind: bundle`) or a defaults document (`defaults:`). Write one of "
        "those, with `kind: image` or `kind: bundle` if the kind is given.",
    ),
    ProblemKind.UNKNOWN_FIELD: Rule(
        "A field the spec format doesn't know",
        "A misspelt or misplaced key; the message names the field it likely meant, or the "
        "fields known there. Rename it or remove it (reconciler schema prints the format).",
    ),
    ProblemKind.MISSING_FIELD: Rule(
        "A required field is missing",
        "The spec lacks a field it needs: one the format requires, one of a choice such as "
        "source_workspace_id, source_image or updated_from, or the account a spec lives "
        "in when the specs declare accounts. Add it.",
    ),
    ProblemKind.CONFLICTING_FIELDS: Rule(
        "Fields that exclude or contradict each other",
        "Fields of which only one may be given (source_workspace_id, source_image and "
        "updated_from; image and image_id), or values that disagree (a role ARN in another "
        "account than the account's id). Remove one, or make them agree.",
    ),
    ProblemKind.EMPTY_VALUE: Rule(
        "A field is left empty",
        "The key is there but its value is empty (YAML null), which is never read as "
        "'none' or 'default'. Give it a value, or remove the line.",
    ),
    ProblemKind.WRONG_TYPE: Rule(
        "A value of the wrong type",
        "A list, mapping, number or string where the field takes another. YAML reads "
        "unquoted yes, no, on, off, numbers and dates as such: quote a value meant as a "
        "string ('4410', 'yes').",
    ),
    ProblemKind.INVALID_VALUE: Rule(
        "A value the format or AWS refuses",
        "The value breaks a rule of its field: its characters, length or range, a tag key "
        f"reserved by AWS or the reconciler, or the {MAX_DECLARED_TAGS} tags a resource may "
        "declare. The message says the rule.",
    ),
    ProblemKind.REPEATED_ENTRY: Rule(
        "The same region or account is listed twice",
        "An entry of copies or share_with is listed twice (perhaps as a name and as its "
        "id), or one account id has two names in the accounts map: often a typo for "
        "another. Keep one, or fix the typo.",
    ),
    ProblemKind.MISPLACED_FIELD: Rule(
        "A field outside the place it is read",
        "`regions:` and `accounts:` are read only in the specs folder's root defaults "
        "document. Move the field there.",
    ),
    ProblemKind.DUPLICATE_NAME: Rule(
        "Two specs make the same image or bundle",
        "An account holds one image and one bundle per name and region, counting copies: "
        "two specs (or a spec and another's copies) declare the same name there. Rename "
        "one, or remove the region from the copies.",
    ),
    ProblemKind.DUPLICATE_DEFAULTS: Rule(
        "A second defaults document in one folder",
        "A folder has one defaults document. Merge the two into one.",
    ),
    ProblemKind.UNKNOWN_REFERENCE: Rule(
        "A name that no spec or account declares",
        "A bundle's image, an import's source image, an `account:` or a share_with entry "
        "names no image spec or no account of the accounts map (an `account:` takes a name "
        "of the map, not an id). The message suggests the closest name; fix the name or "
        "declare what it names.",
    ),
    ProblemKind.UNAVAILABLE_REFERENCE: Rule(
        "A spec that exists, but not where it is needed",
        "A bundle's image is not in the bundle's region or account, an import's source "
        "is not in the source region or not shared with the importing account, or an "
        "updated image's source is not in its region. Add the region to the copies or the "
        "account to share_with of that spec, or move the bundle, import or updated image.",
    ),
    ProblemKind.OWN_REGION_OR_ACCOUNT: Rule(
        "A copy, share or import to where the image already is",
        "An image is not copied to its own region, shared with the account it lives in, or "
        "imported from its own account. Remove that region or account.",
    ),
    ProblemKind.IGNORED_TAG: Rule(
        "A declared tag that an ignore rule also ignores",
        "An ignored tag is left out of the comparison, so a declared one never converges: "
        "every apply writes it again. Remove the tag, or the ignore_tag_keys or "
        "ignore_tag_prefixes entry.",
    ),
    ProblemKind.REGION_COLLISION: Rule(
        "A name with a region in one spec and without in another",
        "Valid offline, but the two are one image or bundle when the default region is "
        "that region, and plan then fails. Give the spec without a region one.",
        level="warning",
    ),
    ProblemKind.UNKNOWN_COMPUTE_TYPE: Rule(
        "A compute type the installed botocore doesn't list",
        "A typo, or a type newer than the installed boto3: the service refuses a name it "
        "doesn't know when apply creates the bundle. Fix the name, or upgrade boto3 and "
        "validate again.",
        level="warning",
    ),
    ProblemKind.MISSING_IMPORT_SOURCE: Rule(
        "An import whose source account declares no image of that name",
        "Valid while the imported image exists already (its source retired), but a plan "
        "that has to import it stops. Fix the name, or declare that image in the source "
        "account.",
        level="warning",
    ),
    ProblemKind.MISSING_UPDATE_SOURCE: Rule(
        "An updated image whose account declares no image of the name it is updated from",
        "Valid while the updated image exists already (its source retired: last month's "
        "image may go), but a plan that has to create it stops. Fix the name in "
        "updated_from, or declare that image in the updated image's own account.",
        level="warning",
    ),
    ProblemKind.UNSETTLED_REGION: Rule(
        "Two specs that must share a region, of which one has none",
        "An updated image and the image it is updated from are in one region only when the "
        "default region (--region, AWS_REGION or AWS config) is the region the other one "
        "names; validate doesn't know it, and plan stops otherwise. Give the spec without "
        "a region one.",
        level="warning",
    ),
    ProblemKind.REFERENCE_LOOP: Rule(
        "An updated image made from itself, or a chain of updated_from that loops",
        "An updated image is made from an image that exists first, so updated_from never "
        "names the spec itself and no chain of updated_from returns to where it started. "
        "Name the image it updates; the first image of a chain is captured "
        "(source_workspace_id) or imported (source_image).",
    ),
}
_RULE_INDEX = {kind: index for index, kind in enumerate(RULES)}


def repository_root(start: Path) -> Path:
    """The git top level of `start`: the nearest folder with a `.git` (a folder, or the
    file a worktree or submodule has), found without running git; `start` if none."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def sarif_text(
    problems: Iterable[SpecProblem], warnings: Iterable[SpecProblem], *, cwd: Path | None = None
) -> str:
    """The SARIF document as written, with files named relative to the repository root of
    `cwd` (default: the working directory), wherever validate runs from."""
    cwd = cwd if cwd is not None else Path.cwd()
    document = sarif(problems, warnings=warnings, root=repository_root(cwd), cwd=cwd)
    return json.dumps(document, indent=2) + "\n"


def sarif(
    problems: Iterable[SpecProblem],
    *,
    root: Path,
    cwd: Path,
    warnings: Iterable[SpecProblem] = (),
) -> dict[str, Any]:
    """One run, one result per problem (level `error`) and per warning (level `warning`),
    with the file, line and column. Every rule is listed, so that a rule's index is the
    same in every document. `cwd`: where the problems' relative paths start; `root`: what
    the artifact URIs are relative to (%SRCROOT%)."""
    found = [*((p, "error") for p in problems), *((w, "warning") for w in warnings)]
    driver = {
        "name": TOOL_NAME,
        "version": __version__,
        "semanticVersion": __version__,
        "informationUri": INFORMATION_URI,
        "rules": [_rule(kind, rule) for kind, rule in RULES.items()],
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "originalUriBaseIds": {
                    SRCROOT: {
                        "description": {"text": "The root of the repository (its git top level)."}
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [_result(p, level, root, cwd) for p, level in found],
            }
        ],
    }


def _rule(kind: ProblemKind, rule: Rule) -> dict[str, Any]:
    return {
        "id": kind.value,
        "shortDescription": {"text": rule.short},
        "help": {"text": rule.help},
        "helpUri": INFORMATION_URI,
        "defaultConfiguration": {"level": rule.level},
    }


def _result(p: SpecProblem, level: str, root: Path, cwd: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": p.kind.value,
        "ruleIndex": _RULE_INDEX[p.kind],
        "level": level,
        "message": {"text": f"{p.field}: {p.message}"},
        "locations": [{"physicalLocation": _physical(p, root, cwd)}],
    }
    if not p.field.startswith("<"):  # `<file>` and `<folder>` stand for no field
        result["properties"] = {"field": p.field}
    return result


def _physical(p: SpecProblem, root: Path, cwd: Path) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": _artifact(p.file, root, cwd)}
    if p.line > 0:  # a folder-level problem has no line
        region = {"startLine": p.line}
        if p.column > 0:
            region["startColumn"] = p.column
        location["region"] = region
    return location


def _artifact(file: str, root: Path, cwd: Path) -> dict[str, str]:
    """The file relative to the repository root, as code scanning resolves it; a file
    outside the root keeps an absolute file URI (a uriBaseId goes only with a relative
    one, and `../` would climb out of the checkout)."""
    path = Path(os.path.normpath(cwd / file))
    # Lexically first: the path as the user named it, as the repository holds it (even
    # through a linked folder). Then with links resolved, for a root reached another way
    # (/tmp and /private/tmp on macOS).
    relative = _under(path, root) or _under(path.resolve(), root.resolve())
    if relative is None:
        return {"uri": path.as_uri()}
    return {"uri": quote(relative), "uriBaseId": SRCROOT}


def _under(path: Path, root: Path) -> str | None:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else None
