"""GitHub Actions integration: the job summary, error annotations and the run's identity.

The job summary is appended to whenever `GITHUB_STEP_SUMMARY` names a file (the runner sets
it); annotations are printed only inside Actions (`GITHUB_ACTIONS=true`), so local runs
print nothing extra. Annotations go to stderr, which the runner reads for workflow
commands too, so that stdout stays clean for `--format json`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

from reconciler.plan import Kind, Plan, PlanItem
from reconciler.render.problems import Located, github_annotation


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


# The parts of the run's links, as GitHub forms them. Anything else is refused: these values
# come from the environment and end up in a link of a comment that others read.
_SERVER = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::[0-9]{1,5})?")
_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_RUN_ID = re.compile(r"[0-9]{1,20}")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class RunInfo:
    """The workflow run a document comes from: its commit and a link to it. Every part is
    checked on construction, so a RunInfo always makes safe links."""

    server_url: str  # GITHUB_SERVER_URL, e.g. https://github.com
    repository: str  # GITHUB_REPOSITORY, owner/name
    run_id: str  # GITHUB_RUN_ID
    sha: str  # GITHUB_SHA, the full commit id

    def __post_init__(self) -> None:
        for name, value, pattern in (
            ("GITHUB_SERVER_URL", self.server_url, _SERVER),
            ("GITHUB_REPOSITORY", self.repository, _REPOSITORY),
            ("GITHUB_RUN_ID", self.run_id, _RUN_ID),
            ("GITHUB_SHA", self.sha, _SHA),
        ):
            if not pattern.fullmatch(value):
                raise ValueError(f"{name} is not of the form GitHub sets: {value!r}")

    @property
    def short_sha(self) -> str:
        return self.sha[:7]

    @property
    def commit_url(self) -> str:
        return f"{self.server_url}/{self.repository}/commit/{self.sha}"

    @property
    def run_url(self) -> str:
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"


def current_run(env: Mapping[str, str] | None = None) -> RunInfo | None:
    """The run this process is part of, in GitHub Actions; None elsewhere, or when a value
    is missing or not of the form GitHub sets (then no footer rather than a forged link)."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") != "true":
        return None
    try:
        return RunInfo(
            server_url=env.get("GITHUB_SERVER_URL", "").rstrip("/"),
            repository=env.get("GITHUB_REPOSITORY", ""),
            run_id=env.get("GITHUB_RUN_ID", ""),
            sha=env.get("GITHUB_SHA", ""),
        )
    except ValueError:
        return None


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


def annotate_problems(problems: Iterable[Located], out: TextIO) -> None:
    if in_actions():
        for problem in problems:
            out.write(github_annotation(problem) + "\n")


def annotate_items(plan: Plan, out: TextIO, *, root: str) -> None:
    """Conflicts, blocked items and (in an apply result) failed items of every kind as error
    annotations on the spec that declares them. An image's copies and shares are declared
    by its spec too: their annotations say which (`copy in us-east-1: ...`)."""
    if not in_actions():
        return
    problems: list[Located] = []
    for i in plan.items:
        # An apply result's items carry `result` (a str enum; reconciler.apply imports
        # botocore, which this module must not). A conflict that apply did not skip was a
        # replacement (--replace-failed), and one the plan replaces is not an error either.
        result = getattr(i, "result", None)
        failed = result == "failed"
        replaced = plan.replaces(i) if result is None else result != "skipped"
        if (i.is_error and not replaced) or failed:
            what = i.action.value if i.is_error else "failed"
            message = (i.reason if i.is_error else getattr(i, "error", None)) or ""
            problems.append(
                _ItemProblem(
                    f"{root.rstrip('/')}/{i.spec_file}",
                    i.spec_line,
                    1,
                    what if i.kind is Kind.IMAGE else f"{i.kind.value} {what}",
                    _which(i) + message,
                )
            )
    annotate_problems(problems, out)


@dataclass(frozen=True)
class _ItemProblem:
    """A plan item's conflict or failure, at the spec that declares it: annotated as a
    spec problem is, but not one (it has no kind of spec problem, and never reaches SARIF)."""

    file: str
    line: int
    column: int
    field: str
    message: str


def _which(item: PlanItem) -> str:
    """What the annotation is about, when the spec's line declares more than it."""
    # Here, not at the top: `validate` annotates its problems through this module, and the
    # kinds bring in the AWS layer (boto3), which validation never needs.
    from reconciler.kinds.image import is_copy, made_by

    if is_copy(item):
        return f"{made_by(item)} in {item.region}: "
    if item.kind is Kind.SHARE:
        return f"sharing in {item.region}: "
    return ""
