"""The project's exception tree.

Every error a user can see derives from `ReconcilerError`, carries the exit code the CLI
maps it to, and says what was wrong, where, and what to do. The CLI is the only place that
turns them into output and exit codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class ReconcilerError(Exception):
    """Root of every error the reconciler reports to a user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Set once the error is in the document printed in the format asked for (an apply
        # that failed while waiting prints its results with the error), so it is not
        # printed twice.
        self.in_document = False

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


@dataclass(frozen=True, order=True)
class SpecProblem:
    """One problem in one spec file, at a line and column (both 1-based)."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"


class SpecError(ReconcilerError):
    """The specs are invalid. Carries every problem found, sorted by file and line."""

    def __init__(self, problems: Iterable[SpecProblem]) -> None:
        self.problems = tuple(sorted(problems))
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(
            f"{count} {noun} in the specs; nothing was changed.",
            hint="fix the lines above and run `reconciler validate` again",
        )


class ConfigError(ReconcilerError):
    """A problem with options, the environment, credentials or the region."""


class AwsError(ReconcilerError):
    """An AWS call failed in a way that stops the whole run (not a per-item failure)."""


class StalePlanError(ReconcilerError):
    """A saved plan no longer matches the specs or the live state."""


class PlanFileError(ReconcilerError):
    """A saved plan file that cannot be read: corrupt, edited or of another version."""


class Interrupted(ReconcilerError):
    """SIGINT or SIGTERM arrived; no new call was started."""

    exit_code = 130
