"""Spec problems as compiler-style lines, GitHub Actions annotations, or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from reconciler.errors import SpecProblem
from reconciler.render.escape import terminal_safe


def render_problems(problems: Iterable[SpecProblem], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        rows = [
            {
                "file": p.file,
                "line": p.line,
                "column": p.column,
                "field": p.field,
                "message": p.message,
            }
            for p in problems
        ]
        out.write(json.dumps(rows, indent=2) + "\n")
    elif fmt == "github":
        for p in problems:
            out.write(github_annotation(p) + "\n")
    else:
        for p in problems:
            out.write(terminal_safe(str(p)) + "\n")


def github_annotation(problem: SpecProblem) -> str:
    """`::error file=...,line=...,col=...,title=...::message`, escaped as the runner expects."""
    props = f"file={_prop(problem.file)}"
    if problem.line:  # a folder-level problem has no line
        props += f",line={problem.line},col={problem.column}"
    # The runner's log is a terminal too: the field and message may quote a spec's value.
    title = _prop(terminal_safe(problem.field))
    return f"::error {props},title={title}::{_data(terminal_safe(problem.message))}"


def _data(text: str) -> str:
    # The runner's own escaping for a command's message (actions/toolkit command.ts).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
