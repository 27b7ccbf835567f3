"""GitHub Actions integration: the job summary and error annotations.

Only active inside Actions (`GITHUB_ACTIONS=true`, `GITHUB_STEP_SUMMARY` set), so local
runs print nothing extra. Annotations go to stderr, which the runner reads for workflow
commands too, so that stdout stays clean for `--format json`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TextIO

from reconciler.errors import SpecProblem
from reconciler.plan import Plan
from reconciler.render.problems import github_annotation


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def append_step_summary(render: Callable[[], str]) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(render() + "\n")


def annotate_problems(problems: Iterable[SpecProblem], out: TextIO) -> None:
    if in_actions():
        for problem in problems:
            out.write(github_annotation(problem) + "\n")


def annotate_items(plan: Plan, out: TextIO, *, root: str) -> None:
    """Conflicts and blocked items as error annotations on the spec that declares them."""
    if not in_actions():
        return
    problems = [
        SpecProblem(
            f"{root.rstrip('/')}/{i.spec_file}", i.spec_line, 1, i.action.value, i.reason or ""
        )
        for i in plan.items
        if i.is_error
    ]
    annotate_problems(problems, out)
