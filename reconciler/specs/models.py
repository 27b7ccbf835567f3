"""The spec format, as pydantic models carrying the WorkSpaces service's own limits.

The limits come from the botocore service model (`CreateWorkspaceImage` and the `Tag`
shape), so that a spec that validates is a request the service accepts. The same models
generate the JSON Schema that editors use (`reconciler schema`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from reconciler import OWNERSHIP_TAG_KEY

# From botocore's `WorkspaceImageName`, `WorkspaceImageDescription` and `WorkspaceId`.
# The description allows no commas or colons: the service rejects them.
NAME_PATTERN = r"^[a-zA-Z0-9_./()\\-]+$"
DESCRIPTION_PATTERN = r"^[a-zA-Z0-9_./() -]+$"
WORKSPACE_ID_PATTERN = r"^ws-[0-9a-z]{8,63}$"
# AWS's tag pattern: letters (any script), digits, spaces and _ . : / = + - @
TAG_PATTERN = r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$"
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"

# The service allows 50 tags per resource; one of them is our ownership tag.
MAX_TAGS = 50
MAX_DECLARED_TAGS = MAX_TAGS - 1

# What a person reads when a value breaks a pattern, keyed by the kind of value.
RULES = {
    "name": "1-64 characters of letters, digits and _ . / ( ) \\ -",
    "description": "1-256 characters of letters, digits, spaces and _ . / ( ) - "
    "(the service rejects commas and colons)",
    "source_workspace_id": "a WorkSpace id such as ws-0a1b2c3d4 (ws- then 8-63 of [0-9a-z])",
    "region": "an AWS region code such as eu-west-1",
    "tag_key": "1-127 characters of letters, digits, spaces and _ . : / = + - @",
    "tag_value": "0-255 characters of letters, digits, spaces and _ . : / = + - @",
    "ignore_tag_prefixes": "a tag key prefix of 1-127 characters",
}


def _tag_key_allowed(key: str) -> str:
    if key.lower().startswith("aws:"):
        raise ValueError("tag keys starting with 'aws:' are reserved by AWS; rename the tag")
    if key == OWNERSHIP_TAG_KEY:
        raise ValueError(
            f"'{OWNERSHIP_TAG_KEY}' is reserved: the reconciler sets it on the images it "
            "manages; remove it from the spec"
        )
    return key


Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
Description = Annotated[str, Field(min_length=1, max_length=256, pattern=DESCRIPTION_PATTERN)]
WorkspaceId = Annotated[str, Field(pattern=WORKSPACE_ID_PATTERN)]
Region = Annotated[str, Field(pattern=REGION_PATTERN, max_length=32)]
TagKey = Annotated[
    str,
    Field(min_length=1, max_length=127, pattern=TAG_PATTERN),
    AfterValidator(_tag_key_allowed),
]
TagValue = Annotated[str, Field(max_length=255, pattern=TAG_PATTERN)]
# pydantic's schema drops the key pattern; editors need it to flag bad keys as you type.
_KEY_SCHEMA = {
    "minLength": 1,
    "maxLength": 127,
    "pattern": TAG_PATTERN,
    "not": {"anyOf": [{"pattern": "^[aA][wW][sS]:"}, {"const": OWNERSHIP_TAG_KEY}]},
}
Tags = Annotated[
    dict[TagKey, TagValue],
    Field(max_length=MAX_DECLARED_TAGS, json_schema_extra={"propertyNames": _KEY_SCHEMA}),
]


class _Document(BaseModel):
    # strict: a YAML boolean, number, null or date is never turned into a string.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @field_validator("region", mode="before", check_fields=False)
    @classmethod
    def _region_not_null(cls, value: object) -> object:
        # `region:` left empty is a mistake, not "no region": say so instead of ignoring it.
        if value is None:
            raise ValueError("is empty; give a region such as eu-west-1, or remove the line")
        return value


class ImageSpecDocument(_Document):
    """One image that should exist."""

    name: Name = Field(description="Image name, unique per region. " + RULES["name"])
    description: Description = Field(description=RULES["description"])
    source_workspace_id: WorkspaceId = Field(
        description="The prepared WorkSpace the image is captured from."
    )
    # Optional, but never null: the before-validator above refuses `region:` left empty.
    region: Region | None = Field(
        default=None, description="Else the folder's defaults, else --region or AWS config."
    )
    tags: Tags | None = Field(
        default=None,
        description="The image's whole tag set (merged over the defaults' tags). "
        f"At most {MAX_DECLARED_TAGS}: the ownership tag takes the 50th.",
    )


class DefaultsBody(_Document):
    region: Region | None = None
    tags: Tags | None = Field(default=None, description="Merged under each spec's own tags.")
    ignore_tag_keys: list[TagKey] | None = Field(
        default=None, description="Live tag keys never reported nor touched."
    )
    ignore_tag_prefixes: list[Annotated[str, Field(min_length=1, max_length=127)]] | None = Field(
        default=None, description="Live tag key prefixes never reported nor touched."
    )
    regions: list[Region] | None = Field(
        default=None,
        description="Only in the specs folder's root defaults: regions to read besides those "
        "the specs name, for owned images left there. Needed only where the role may not "
        "call tag:GetResources, which finds them in every region.",
    )


class DefaultsDocument(_Document):
    """Defaults for the specs in this folder and below."""

    defaults: DefaultsBody


@dataclass(frozen=True)
class Spec:
    """An image spec with its folder's defaults applied: the desired state of one image."""

    name: str
    description: str
    source_workspace_id: str
    region: str | None
    tags: Mapping[str, str]
    ignore_tag_keys: frozenset[str]
    ignore_tag_prefixes: tuple[str, ...]
    file: str  # relative to the specs folder, with forward slashes
    line: int
    copies: tuple[str, ...] = ()  # TEMP: the specs branch brings the real fields
    share_with: tuple[str, ...] | None = None
    copies_file: str = ""
    copies_line: int = 0

    def ignores(self, key: str) -> bool:
        """Whether a live tag key is outside the reconciler's concern for this spec."""
        return key in self.ignore_tag_keys or key.startswith(self.ignore_tag_prefixes)


def _not_nullable(properties: dict[str, Any], name: str) -> None:
    """An optional field that must not be null: keep only its non-null branch."""
    field = properties.get(name, {})
    branches = [b for b in field.pop("anyOf", []) if b.get("type") != "null"]
    if branches:
        field.update(branches[0])


# `\p{L}` is outside the regex subset JSON Schema recommends, and some validators (Python's
# `re`) reject it. Editors get this portable approximation instead: every character but the
# ASCII controls and punctuation that AWS refuses. The validator keeps the exact pattern.
PORTABLE_TAG_PATTERN = "^[^\\x00-\\x1f\\x7f!\"#$%&'()*,;<>?\\[\\\\\\]^`{|}~]*$"


def _portable(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            (PORTABLE_TAG_PATTERN if k == TAG_PATTERN else k): _portable(v) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_portable(v) for v in node]
    return PORTABLE_TAG_PATTERN if node == TAG_PATTERN else node


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one spec document, for editors."""
    schema: dict[str, Any] = _portable(
        TypeAdapter(ImageSpecDocument | DefaultsDocument).json_schema()
    )
    for definition in schema.get("$defs", {}).values():
        _not_nullable(definition.get("properties", {}), "region")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/workspaces-image-reconciler/schema/spec.json",
        "title": "workspaces-image-reconciler spec",
        "description": "An image spec, or a defaults document for its folder and below.",
        **schema,
    }
