"""The project's exception tree.

Every error a user can see derives from `ReconcilerError`, carries the exit code the CLI
maps it to, and says what was wrong, where, and what to do. The CLI is the only place that
turns them into output and exit codes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


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


class ProblemKind(str, Enum):
    """What kind of problem a spec problem is, named where it is found. The values are
    SARIF's rule ids: code scanning matches alerts across runs by them, so they stay as
    they are (a new kind is a new value, never a renamed one)."""

    UNREADABLE_PATH = "unreadable-path"
    YAML_SYNTAX = "yaml-syntax"
    YAML_LIMIT = "yaml-limit"
    YAML_UNSUPPORTED = "yaml-unsupported"
    DUPLICATE_KEY = "duplicate-key"
    NO_SPEC = "no-spec"
    INVALID_DOCUMENT = "invalid-document"
    UNKNOWN_FIELD = "unknown-field"
    MISSING_FIELD = "missing-field"
    CONFLICTING_FIELDS = "conflicting-fields"
    EMPTY_VALUE = "empty-value"
    WRONG_TYPE = "wrong-type"
    INVALID_VALUE = "invalid-value"
    REPEATED_ENTRY = "repeated-entry"
    MISPLACED_FIELD = "misplaced-field"
    DUPLICATE_NAME = "duplicate-name"
    DUPLICATE_DEFAULTS = "duplicate-defaults"
    UNKNOWN_REFERENCE = "unknown-reference"
    UNAVAILABLE_REFERENCE = "unavailable-reference"
    OWN_REGION_OR_ACCOUNT = "own-region-or-account"
    IGNORED_TAG = "ignored-tag"
    REGION_COLLISION = "region-collision"
    UNKNOWN_COMPUTE_TYPE = "unknown-compute-type"
    MISSING_IMPORT_SOURCE = "missing-import-source"
    MISSING_UPDATE_SOURCE = "missing-update-source"
    UNSETTLED_REGION = "unsettled-region"
    REFERENCE_LOOP = "reference-loop"


@dataclass(frozen=True, order=True)
class SpecProblem:
    """One problem in one spec file, at a line and column (both 1-based).

    `kind` is required, so that no problem is made without saying what kind it is; it is
    left out of comparisons: two problems at one place with one message are one."""

    file: str
    line: int
    column: int
    field: str
    message: str
    # `field` names the spec's field here, hence dataclasses.field in full.
    kind: ProblemKind = dataclasses.field(kw_only=True, compare=False)

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
