"""GitHub Actions integration: the job summary and error annotations.

The job summary is appended to whenever `GITHUB_STEP_SUMMARY` names a file (the runner sets
it); annotations are printed only inside Actions (`GITHUB_ACTIONS=true`), so local runs
print nothing extra. Annotations go to stderr, which the runner reads for workflow
commands too, so that stdout stays clean for `--format json`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import TextIO

from reconciler.errors import SpecProblem
from reconciler.plan import Plan
from reconciler.render.problems import github_annotation


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def append_step_summary(render: Callable[[], str]) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(render() + "\n")
    except OSError as err:
        # The results are out already: a summary that can't be written is not a failed run.
        sys.stderr.write(
            f"Warning: could not append to GITHUB_STEP_SUMMARY {path}: {err.strerror or err}\n"
        )


def annotate_problems(problems: Iterable[SpecProblem], out: TextIO) -> None:
    if in_actions():
        for problem in problems:
            out.write(github_annotation(problem) + "\n")


def annotate_items(plan: Plan, out: TextIO, *, root: str) -> None:
    """Conflicts, blocked items and (in an apply result) failed items as error annotations
    on the spec that declares them."""
    if not in_actions():
        return
    problems = []
    for i in plan.items:
        # An apply result's items carry `result` (a str enum; reconciler.apply imports
        # botocore, which this module must not).
        failed = getattr(i, "result", None) == "failed"
        if i.is_error or failed:
            problems.append(
                SpecProblem(
                    f"{root.rstrip('/')}/{i.spec_file}",
                    i.spec_line,
                    1,
                    i.action.value if i.is_error else "failed",
                    (i.reason if i.is_error else getattr(i, "error", None)) or "",
                )
            )
    annotate_problems(problems, out)
