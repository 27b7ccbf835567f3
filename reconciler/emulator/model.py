"""Facts of botocore's WorkSpaces model, read at run time: the emulator validates what a
request sends, and what a test hook plants, against the model the installed botocore
carries, never against a copy of it.

Kept apart from :mod:`.layer` and :mod:`.lifecycle` so that both can use it (the layer's
test hooks validate too) without importing each other.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel

from .errors import InvalidParameterValuesException, ValidationException


@functools.cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("workspaces")


def operation(name: str) -> OperationModel:
    """The model of one WorkSpaces operation (KeyError-like OperationNotFoundError if the
    installed botocore has none by that name)."""
    return service_model().operation_model(name)


@functools.cache
def compute_types() -> tuple[str, ...]:
    """The ComputeType names botocore's WorkSpaces model allows."""
    return tuple(service_model().shape_for("Compute").metadata["enum"])


def constraint_error(value: Any, field: str, constraint: str) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
        f"constraint: {constraint}"
    )


def constraint_violation(value: str, shape: str) -> str | None:
    """What ``value`` breaks of the model's length and pattern for ``shape`` (as the
    service words it), or None if it meets them."""
    meta = service_model().shape_for(shape).metadata
    if len(value) < meta.get("min", 0) or len(value) > meta.get("max", len(value)):
        return f"Member must have length between {meta.get('min', 0)} and {meta.get('max')}"
    pattern = meta.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        return f"Member must satisfy regular expression pattern: {pattern}"
    return None


def valid(value: Any, shape: str, field: str) -> str:
    """``value`` if it meets the model's length and pattern for ``shape``, else the
    ValidationException the real service answers (InvalidParameterValuesException when it
    is missing)."""
    if not isinstance(value, str):
        raise InvalidParameterValuesException(f"The {field} parameter is required.")
    broken = constraint_violation(value, shape)
    if broken is not None:
        raise constraint_error(value, field, broken)
    return value
