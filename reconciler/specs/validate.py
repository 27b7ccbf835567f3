"""Validation of one parsed document against the models, with errors a person can act on.

pydantic does the checking; this module turns its errors into `field: message` lines at
the position the loader recorded, with the hints people need: "did you mean", "quote it",
and the allowed characters instead of a regular expression.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reconciler.errors import ProblemKind
from reconciler.specs.models import (
    KINDS,
    MAX_DECLARED_TAGS,
    ROOT_VOLUME_GIB,
    RULES,
    SOURCES,
    USER_VOLUME_GIB,
    AccountEntry,
    BundleSpecDocument,
    DefaultsBody,
    DefaultsDocument,
    ImageSpecDocument,
    SourceImageDocument,
)
from reconciler.specs.service_model import botocore_version, known_compute_types
from reconciler.specs.yamlload import Document, NonString, Path, Position, dotted

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
    "copy_to": "copies",
    "copy_regions": "copies",
    "replicas": "copies",
    "share": "share_with",
    "shared_with": "share_with",
    "accounts": "share_with",
    "type": "kind",
    "account_id": "account",
    "aws_account": "account",
    "owner": "account",
    "import": "source_image",
    "import_from": "source_image",
    "shared_image": "source_image",
    "role_arn": "role",
    "externalid": "external_id",
}
# A bundle's own meanings for the same words.
_BUNDLE_SYNONYMS = {
    "bundle_name": "name",
    "image_name": "image",
    "source_image": "image",
    "compute": "compute_type",
    "computetype": "compute_type",
    "user_volume": "user_volume_gib",
    "user_storage": "user_volume_gib",
    "user_volume_size_gib": "user_volume_gib",
    "root_volume": "root_volume_gib",
    "root_storage": "root_volume_gib",
    "root_volume_size_gib": "root_volume_gib",
}
_BUNDLE_ONLY = set(BundleSpecDocument.model_fields) - set(ImageSpecDocument.model_fields)
_IMAGE_ONLY = set(ImageSpecDocument.model_fields) - set(BundleSpecDocument.model_fields)
_VOLUMES = {"user_volume_gib": USER_VOLUME_GIB, "root_volume_gib": ROOT_VOLUME_GIB}
# Lists whose entries must each appear once: the path of the list -> what an entry is.
_UNIQUE_LISTS: dict[Path, str] = {
    ("copies",): "region",
    ("share_with",): "account",
    ("defaults", "copies"): "region",
    ("defaults", "share_with"): "account",
}
_LIST_KEYS = frozenset(str(path[0]) for path in _UNIQUE_LISTS)


@dataclass(frozen=True)
class Issue:
    position: Position
    field: str
    message: str
    kind: ProblemKind
    suggests: str | None = None  # for an unknown field: the known field it likely meant


def validate_document(doc: Document) -> tuple[BaseModel | None, list[Issue]]:
    """The document as an image spec, bundle spec or defaults model, or the issues that
    stop it. A model may come with issues that concern one of its lists (an entry listed
    twice): the document is still read, so that checks across files see it."""
    data = doc.data
    if data is None:
        message = "empty document; remove the stray '---'"
        return None, [Issue(doc.position, "document", message, ProblemKind.NO_SPEC)]
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"the scalar {_shown(data)}"
        message = (
            f"a spec document must be a mapping (name, description, source_workspace_id), "
            f"a bundle spec (kind: bundle) or a 'defaults:' mapping; got {kind}"
        )
        return None, [Issue(doc.position, "document", message, ProblemKind.INVALID_DOCUMENT)]
    model, kind_issue = _model_for(doc, data)
    if model is None:
        return None, [kind_issue] if kind_issue else []
    choice = _choice(doc, data, model)
    try:
        validated = model.model_validate(data)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        # A value the loader already refused (an unsupported tag) needs no second line.
        errors = [e for e in errors if tuple(e["loc"]) not in doc.refused]
        issues = [_issue(doc, model, e) for e in errors]
    else:
        repeated = list(_repeated_entries(doc, data))
        return (None, choice + repeated) if choice else (validated, repeated)
    # "unknown field 'Name'; did you mean 'name'?" already explains the missing 'name'.
    suggested = {i.suggests for i in issues if i.suggests}
    issues = [
        i
        for i in issues + choice
        if not (i.message.startswith("required") and i.field in suggested)
    ]
    return None, issues + list(_repeated_entries(doc, data))


def _model_for(doc: Document, data: dict[str, Any]) -> tuple[type[BaseModel] | None, Issue | None]:
    """Which model a document is read as: `defaults:`, else by `kind` (image by default)."""
    if "defaults" in data:
        return DefaultsDocument, None
    kind = data.get("kind", "image")
    if kind == "bundle":
        return BundleSpecDocument, None
    if kind == "image":
        return ImageSpecDocument, None
    where = doc.where(("kind",))
    if not isinstance(kind, str):
        shown = doc.non_strings.get(("kind",))
        got = f"the YAML {shown.kind} {shown.raw!r}" if shown else _kind_of(kind)
        message = f"expected image or bundle, got {got}"
        return None, Issue(where, "kind", message, ProblemKind.INVALID_DOCUMENT)
    guess = _closest(kind, KINDS)
    hint = (
        f"did you mean '{guess}'?" if guess else "write kind: image (the default) or kind: bundle"
    )
    message = f"unknown kind {_shown(kind)}; {hint}"
    return None, Issue(where, "kind", message, ProblemKind.INVALID_DOCUMENT)


def _choice(doc: Document, data: dict[str, Any], model: type[BaseModel]) -> list[Issue]:
    """The fields of which a document gives exactly one."""
    if model is BundleSpecDocument:
        return _image_choice(doc, data)
    if model is ImageSpecDocument:
        return _source_choice(doc, data)
    return []


# What each source makes, for the messages that name them.
_SOURCE_MEANS = {
    "source_workspace_id": "a WorkSpace to capture",
    "source_image": "an image another account shares, to import",
    "updated_from": "an image spec of this account to update",
}


def _source_choice(doc: Document, data: dict[str, Any]) -> list[Issue]:
    """An image has one source: a WorkSpace to capture, another account's image to import,
    or an image of its own account to update. Two or three are reported once, at the line
    of the last of them (in the order of SOURCES), neither at the document's."""
    given = [key for key in SOURCES if key in data]
    if not given:
        message = (
            "required: source_workspace_id (the WorkSpace to capture, ws-...), source_image "
            "(an image another account shares with this one, to import) or updated_from (the "
            "image spec of this account and region to update); add one of the three"
        )
        return [Issue(doc.position, SOURCES[0], message, ProblemKind.MISSING_FIELD)]
    if len(given) == 1:
        return []
    shown = [f"{key} ({_SOURCE_MEANS[key]})" for key in given]
    if len(given) == 2:
        message = f"give either {shown[0]} or {shown[1]}, not both; remove one of the two"
    else:
        message = f"give one of {', '.join(shown)}, not all three; keep one"
    where = doc.where((given[-1],), key=True)
    return [Issue(where, given[-1], message, ProblemKind.CONFLICTING_FIELDS)]


def _image_choice(doc: Document, data: dict[str, Any]) -> list[Issue]:
    """A bundle names its image one way: by the spec's name, or by id for an image that
    no spec manages."""
    return _one_of(
        doc,
        data,
        ("image", "image_id"),
        both="give either image (the name of an image spec) or image_id, not both; "
        "remove one of the two lines",
        neither="required: image (the name of an image spec) or image_id (wsi-..., for an "
        "image that no spec manages); add one of the two",
    )


def _one_of(
    doc: Document, data: dict[str, Any], keys: tuple[str, str], *, both: str, neither: str
) -> list[Issue]:
    """Exactly one of two keys: both are reported at the second key's line, neither at the
    document's, under the first key."""
    first, second = keys
    if first in data and second in data:
        return [Issue(doc.where((second,), key=True), second, both, ProblemKind.CONFLICTING_FIELDS)]
    if first not in data and second not in data:
        return [Issue(doc.position, first, neither, ProblemKind.MISSING_FIELD)]
    return []


def _repeated_entries(doc: Document, data: dict[str, Any]) -> Iterator[Issue]:
    """An entry listed twice in `copies` or `share_with`: harmless to the service, but a
    sign of a typo for another region or account."""
    if not _LIST_KEYS.intersection(data):
        return  # the common case: no list to look through
    for path, what in _UNIQUE_LISTS.items():
        values = _at(data, path)
        if not isinstance(values, list):
            continue
        first: dict[str, int] = {}
        for index, value in enumerate(values):
            if not isinstance(value, str):
                continue  # the model reports it, and a mapping can't be compared here
            if value not in first:
                first[value] = index
                continue
            earlier = doc.where((*path, first[value])).line
            message = (
                f"{what} {_shown(value)} is listed twice (first at line {earlier}); "
                "keep one, or fix the typo"
            )
            where, field = doc.where((*path, index)), dotted((*path, index))
            yield Issue(where, field, message, ProblemKind.REPEATED_ENTRY)


def _at(data: dict[str, Any], path: Path) -> Any:
    node: Any = data
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(str(part))
    return node


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
            ProblemKind.UNKNOWN_FIELD,
            dotted((*path[:-1], guess)) if guess else None,
        )
    if kind == "missing":
        parent = path[:-1]
        message = f"required field '{path[-1]}' is missing"
        return Issue(doc.where(parent), dotted(path), message, ProblemKind.MISSING_FIELD)
    message = _message(doc, model, path, error, is_key)
    return Issue(doc.where(path, key=is_key), dotted(path), message, _value_kind(error))


def _value_kind(error: ErrorDetails) -> ProblemKind:
    """What is wrong with a value pydantic refused: nothing there (YAML null, which the
    loader passes on as None), the wrong type (pydantic's `*_type` errors: a YAML number
    where a string belongs), or a value of the right type that breaks a rule."""
    if error["input"] is None:
        return ProblemKind.EMPTY_VALUE
    if error["type"].endswith("_type"):
        return ProblemKind.WRONG_TYPE
    return ProblemKind.INVALID_VALUE


def _message(
    doc: Document, model: type[BaseModel], path: Path, error: ErrorDetails, is_key: bool
) -> str:
    kind, value = error["type"], error["input"]
    non_string = doc.non_strings.get(path)
    if path == ("compute_type",) and kind in _COMPUTE_ERRORS:
        return _compute_type_message(value, non_string)
    if kind == "string_type" and non_string is not None:
        if non_string.kind == "null":
            return "is empty (YAML null); give it a value, or quote an empty string: ''"
        return (
            f"{non_string.raw} is read as a YAML {non_string.kind}, not a string; "
            f"quote it: '{non_string.raw}'"
        )
    if path and path[-1] in _VOLUMES and kind in _NUMBER_ERRORS:
        return _volume_message(str(path[-1]), kind, value, non_string)
    if kind in ("string_type", "dict_type", "list_type", "model_type"):
        wanted = {
            "string_type": "a string",
            "dict_type": "a mapping",
            "list_type": "a list",
            "model_type": "a mapping",
        }
        return f"expected {wanted[kind]}, got {_kind_of(value)}"
    if kind in ("string_pattern_mismatch", "string_too_short", "string_too_long"):
        return f"{_shown(value)} is not valid: expected {_rule(model, path, is_key)}"
    if kind == "too_long" and isinstance(value, dict):
        return f"has {len(value)} tags; at most {MAX_DECLARED_TAGS} (the ownership tag is the 50th)"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


_NUMBER_ERRORS = ("int_type", "greater_than_equal", "less_than_equal")


def _volume_message(field: str, kind: str, value: Any, non_string: NonString | None) -> str:
    low, high = _VOLUMES[field]
    wanted = f"a whole number of GiB, {low}-{high}"
    if kind != "int_type":
        return f"is {value}; expected {wanted}"
    if isinstance(value, str) and value.strip().isdigit():
        return f"{_shown(value)} is a string; write the number without quotes: {value.strip()}"
    if non_string is not None and non_string.kind != "number":
        return f"{non_string.raw} is read as a YAML {non_string.kind}; expected {wanted}"
    return f"expected {wanted}, got {_kind_of(value)}"


_COMPUTE_ERRORS = ("string_type", "string_pattern_mismatch", "string_too_short", "string_too_long")
_COMPUTE_RULE = "a compute type name: upper-case letters, digits and _, such as STANDARD"


def _compute_type_message(value: Any, non_string: NonString | None) -> str:
    """A value that can't be a compute type name: the rule, with the name it likely meant
    among those the installed botocore knows."""
    if not isinstance(value, str):
        got = f"the YAML {non_string.kind} {non_string.raw}" if non_string else _kind_of(value)
        return f"expected {_COMPUTE_RULE}, got {got}"
    guess = _closest(value, known_compute_types() or ())
    hint = f"; did you mean '{guess}'?" if guess else ""
    return f"{_shown(value)} is not valid: expected {_COMPUTE_RULE}{hint}"


def unknown_compute_type(name: str) -> str | None:
    """The warning for a well-formed compute type name that the installed botocore's model
    doesn't list; None when it lists it, or when there is no model to ask."""
    known = known_compute_types()
    if known is None or name in known:
        return None
    guess = _closest(name, known)
    typo = f"a typo (did you mean '{guess}'?), or " if guess else "a typo, or "
    return (
        f"{_shown(name)} is not among the compute types of the installed botocore "
        f"({botocore_version()}): {typo}a type newer than it; upgrade boto3 "
        "(pip install -U boto3) and validate again. The service refuses a name it doesn't "
        "know when apply creates the bundle"
    )


def _closest(word: str, choices: tuple[str, ...]) -> str | None:
    """The choice a misspelt or miscased word most likely meant."""
    by_case = {c.lower(): c for c in choices}
    if word.lower() in by_case:
        return by_case[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(by_case), n=1, cutoff=0.6)
    return by_case[close[0]] if close else None


def _rule(model: type[BaseModel], path: Path, is_key: bool) -> str:
    if is_key and "accounts" in path:
        return RULES["account_name"]
    if path[-2:] == ("source_image", "account"):
        return RULES["source_account"]
    if is_key or (path and path[-2:-1] == ("ignore_tag_keys",)):
        return RULES["tag_key"]
    if "tags" in path:
        return RULES["tag_value"]
    # A list entry (`copies.1`) follows the rule of its list.
    names = [str(p) for p in path if isinstance(p, str)]
    if not names:
        return "a valid value"
    if model is BundleSpecDocument and names[-1] == "description":
        return RULES["bundle_description"]
    return RULES.get(names[-1], "a valid value")


def _fields(model: type[BaseModel], path: Path) -> list[str]:
    """The fields known where the last key of `path` stands."""
    parents = path[:-1]
    if parents[:2] == ("defaults", "accounts") and len(parents) == 3:
        return list(AccountEntry.model_fields)
    if parents == ("source_image",):
        return list(SourceImageDocument.model_fields)
    return list((DefaultsBody if parents else model).model_fields)


def _guess(model: type[BaseModel], path: Path) -> str | None:
    """The known field an unknown key most likely meant: `Name`, `workspace_id`."""
    key, fields = str(path[-1]), _fields(model, path)
    word = key.lower().replace("-", "_")
    own = _BUNDLE_SYNONYMS.get(word) if model is BundleSpecDocument else None
    synonym = own or _SYNONYMS.get(word)
    if synonym in fields:
        return synonym
    lowered = {f.lower(): f for f in fields}
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    return lowered.get(key.lower()) or (close[0] if close else None)


def _unknown(model: type[BaseModel], path: Path, guess: str | None) -> str:
    key = str(path[-1])
    if model is DefaultsDocument and len(path) == 1:
        return f"unknown field '{key}': a defaults document holds only 'defaults:'"
    if model is ImageSpecDocument and len(path) == 1 and key in _BUNDLE_ONLY:
        return f"unknown field '{key}' for an image spec; a bundle spec starts with 'kind: bundle'"
    if model is BundleSpecDocument and len(path) == 1 and key in _IMAGE_ONLY:
        return (
            f"unknown field '{key}' for a bundle spec; it belongs in the image spec that "
            "the bundle's image: names"
        )
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
