"""Validation of one parsed document against the models, with errors a person can act on.

pydantic does the checking; this module turns its errors into `field: message` lines at
the position the loader recorded, with the hints people need: "did you mean", "quote it",
and the allowed characters instead of a regular expression.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reconciler.specs.models import (
    MAX_DECLARED_TAGS,
    RULES,
    DefaultsBody,
    DefaultsDocument,
    ImageSpecDocument,
)
from reconciler.specs.yamlload import Document, Path, Position, dotted

# Names people reach for that difflib alone would not map to ours.
_SYNONYMS = {
    "image_name": "name",
    "imagename": "name",
    "workspace": "source_workspace_id",
    "workspaceid": "source_workspace_id",
    "source": "source_workspace_id",
    "source_workspace": "source_workspace_id",
    "labels": "tags",
    "tag": "tags",
    "default": "defaults",
    "ignore_tags": "ignore_tag_keys",
}


@dataclass(frozen=True)
class Issue:
    position: Position
    field: str
    message: str
    suggests: str | None = None  # for an unknown field: the known field it likely meant


def validate_document(doc: Document) -> tuple[BaseModel | None, list[Issue]]:
    """The document as an image spec or defaults model, or the issues that stop it."""
    data = doc.data
    if data is None:
        return None, [Issue(doc.position, "document", "empty document; remove the stray '---'")]
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"the scalar {_shown(data)}"
        message = (
            f"a spec document must be a mapping (name, description, source_workspace_id) or "
            f"a 'defaults:' mapping; got {kind}"
        )
        return None, [Issue(doc.position, "document", message)]
    model: type[BaseModel] = DefaultsDocument if "defaults" in data else ImageSpecDocument
    try:
        return model.model_validate(data), []
    except ValidationError as err:
        errors = err.errors(include_url=False)
        # A value the loader already refused (an unsupported tag) needs no second line.
        errors = [e for e in errors if tuple(e["loc"]) not in doc.refused]
        issues = [_issue(doc, model, e) for e in errors]
    # "unknown field 'Name'; did you mean 'name'?" already explains the missing 'name'.
    suggested = {i.suggests for i in issues if i.suggests}
    return None, [
        i for i in issues if not (i.message.startswith("required") and i.field in suggested)
    ]


def _issue(doc: Document, model: type[BaseModel], error: ErrorDetails) -> Issue:
    loc: Path = tuple(error["loc"])
    is_key = bool(loc) and loc[-1] == "[key]"
    path = loc[:-1] if is_key else loc
    kind = error["type"]
    if kind == "extra_forbidden":
        guess = _guess(model, path)
        message = _unknown(model, path, guess)
        return Issue(
            doc.where(path, key=True),
            dotted(path),
            message,
            dotted((*path[:-1], guess)) if guess else None,
        )
    if kind == "missing":
        parent = path[:-1]
        return Issue(doc.where(parent), dotted(path), f"required field '{path[-1]}' is missing")
    return Issue(doc.where(path, key=is_key), dotted(path), _message(doc, path, error, is_key))


def _message(doc: Document, path: Path, error: ErrorDetails, is_key: bool) -> str:
    kind, value = error["type"], error["input"]
    non_string = doc.non_strings.get(path)
    if kind == "string_type" and non_string is not None:
        if non_string.kind == "null":
            return "is empty (YAML null); give it a value, or quote an empty string: ''"
        return (
            f"{non_string.raw} is read as a YAML {non_string.kind}, not a string; "
            f"quote it: '{non_string.raw}'"
        )
    if kind in ("string_type", "dict_type", "list_type", "model_type"):
        wanted = {
            "string_type": "a string",
            "dict_type": "a mapping",
            "list_type": "a list",
            "model_type": "a mapping",
        }
        return f"expected {wanted[kind]}, got {_kind_of(value)}"
    if kind in ("string_pattern_mismatch", "string_too_short", "string_too_long"):
        return f"{_shown(value)} is not valid: expected {_rule(path, is_key)}"
    if kind == "too_long" and isinstance(value, dict):
        return f"has {len(value)} tags; at most {MAX_DECLARED_TAGS} (the ownership tag is the 50th)"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


def _rule(path: Path, is_key: bool) -> str:
    if is_key or (path and path[-2:-1] == ("ignore_tag_keys",)):
        return RULES["tag_key"]
    if "tags" in path:
        return RULES["tag_value"]
    return RULES.get(str(path[-1]), "a valid value") if path else "a valid value"


def _fields(model: type[BaseModel], path: Path) -> list[str]:
    return list((DefaultsBody if len(path) > 1 else model).model_fields)


def _guess(model: type[BaseModel], path: Path) -> str | None:
    """The known field an unknown key most likely meant: `Name`, `workspace_id`."""
    key, fields = str(path[-1]), _fields(model, path)
    synonym = _SYNONYMS.get(key.lower().replace("-", "_"))
    if synonym in fields:
        return synonym
    lowered = {f.lower(): f for f in fields}
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    return lowered.get(key.lower()) or (close[0] if close else None)


def _unknown(model: type[BaseModel], path: Path, guess: str | None) -> str:
    key = str(path[-1])
    if model is DefaultsDocument and len(path) == 1:
        return f"unknown field '{key}': a defaults document holds only 'defaults:'"
    known = ", ".join(_fields(model, path))
    hint = f"; did you mean '{guess}'?" if guess else f"; known fields: {known}"
    return f"unknown field '{key}'{hint}"


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the value {_shown(value)}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
