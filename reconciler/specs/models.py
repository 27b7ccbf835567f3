"""The spec format, as pydantic models carrying the WorkSpaces service's own limits.

The limits come from the botocore service model (`CreateWorkspaceImage`,
`CreateWorkspaceBundle`, `UpdateWorkspaceImagePermission` and the `Tag` shape), so that a
spec that validates is a request the service accepts. They are written out here rather
than read from botocore, which validation must not import (it works offline and fast); a
test compares them with botocore's model. Compute types are the exception: AWS adds them
often, so their names come from the installed botocore's model file (`service_model`).
The same models generate the JSON Schema that editors use (`reconciler schema`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

from reconciler import OWNERSHIP_TAG_KEY

# From botocore's `WorkspaceImageName`, `WorkspaceImageDescription` and `WorkspaceId`.
# The description allows no commas or colons: the service rejects them.
NAME_PATTERN = r"^[a-zA-Z0-9_./()\\-]+$"
DESCRIPTION_PATTERN = r"^[a-zA-Z0-9_./() -]+$"
WORKSPACE_ID_PATTERN = r"^ws-[0-9a-z]{8,63}$"
# AWS's tag pattern: letters (any script), digits, spaces and _ . : / = + - @
TAG_PATTERN = r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$"
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"
# botocore's `WorkspaceImageId` and `AwsAccount` (`\d` written as [0-9]: the validator's
# `\d` would also take other scripts' digits, which the service refuses).
IMAGE_ID_PATTERN = r"^wsi-[0-9a-z]{9,63}$"
ACCOUNT_PATTERN = r"^[0-9]{12}$"
# `CreateWorkspaceBundle` takes the volume sizes as strings; these are the console's and
# the service's documented bounds, in GiB.
USER_VOLUME_GIB = (10, 2000)
ROOT_VOLUME_GIB = (80, 2000)

# A compute type's name, well formed: botocore's `Compute` enum lists upper-case names of
# letters, digits and _ (STANDARD, GRAPHICS_G4DN). The names themselves are not copied
# here: AWS adds some every few months, and the installed botocore's model says which it
# knows (`service_model`); a name it doesn't know is a warning, never a release of this tool.
COMPUTE_TYPE_PATTERN = r"^[A-Z][A-Z0-9_]*$"
ComputeTypeName = Annotated[str, Field(min_length=1, max_length=64, pattern=COMPUTE_TYPE_PATTERN)]
# For editors: a few long-standing names (a test checks that botocore lists them).
COMPUTE_EXAMPLES = ["STANDARD", "PERFORMANCE", "POWER", "POWERPRO", "GRAPHICS_G4DN"]
_COMPUTE_HELP = (
    "The service's ComputeType name, such as STANDARD, PERFORMANCE, POWER or GRAPHICS_G4DN: "
    "upper-case letters, digits and _. validate warns about a name the installed botocore's "
    "WorkSpaces model doesn't list (a typo, or a type newer than that botocore)."
)

# The values a document's `kind` may take; without `kind`, a document is an image spec.
KINDS = ("image", "bundle")

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
    "regions": "an AWS region code such as eu-west-1",
    "copies": "an AWS region code such as us-east-1",
    "share_with": "a 12-digit AWS account id, quoted: '111122223333'",
    "image": "the name of an image spec: 1-64 characters of letters, digits and _ . / ( ) \\ -",
    "image_id": "an image id such as wsi-0a1b2c3d4e (wsi- then 9-63 of [0-9a-z])",
    "bundle_description": "1-255 characters of letters, digits, spaces and _ . / ( ) - "
    "(the service rejects commas and colons)",
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
BundleDescription = Annotated[str, Field(min_length=1, max_length=255, pattern=DESCRIPTION_PATTERN)]
ImageId = Annotated[str, Field(pattern=IMAGE_ID_PATTERN)]
AccountId = Annotated[str, Field(pattern=ACCOUNT_PATTERN)]
_COPIES_HELP = (
    "Regions that get a copy of this image, with the same name, description and declared "
    "tags. Not the image's own region; each region once."
)
_SHARE_HELP = (
    "12-digit account ids, quoted. When present (even []), the whole set of accounts the "
    "image and each copy are shared with; when absent, sharing is not managed. Each "
    "account once."
)
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


# Optional fields that must not be null: `region:` left empty is a mistake, not "no
# region"; `share_with:` left empty could mean "no account" or "not managed", and the two
# differ. The message says what to write instead.
_NOT_NULL = {
    "region": "is empty; give a region such as eu-west-1, or remove the line",
    "copies": "is empty (YAML null); write [] for no copies, or remove the line",
    "share_with": "is empty (YAML null); write [] to share with no account, or remove the "
    "line to leave sharing unmanaged",
    "image": "is empty; give the name of an image spec, or remove the line",
    "image_id": "is empty; give an image id such as wsi-0a1b2c3d4e, or remove the line",
    "root_volume_gib": "is empty; give a whole number of GiB (80-2000), or remove the line",
}


class _Document(BaseModel):
    # strict: a YAML boolean, number, null or date is never turned into a string.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @field_validator(*_NOT_NULL, mode="before", check_fields=False)
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name is not None:
            raise ValueError(_NOT_NULL[info.field_name])
        return value


class ImageSpecDocument(_Document):
    """One image that should exist."""

    kind: Literal["image"] = Field(
        default="image", description="Optional: a document without `kind` is an image spec."
    )
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
    copies: list[Region] | None = Field(default=None, description=_COPIES_HELP)
    share_with: list[AccountId] | None = Field(default=None, description=_SHARE_HELP)


class BundleSpecDocument(_Document):
    """One bundle that should exist: an image with a compute type and volumes."""

    kind: Literal["bundle"] = Field(description="Says this document is a bundle spec.")
    name: Name = Field(description="Bundle name, unique per region. " + RULES["name"])
    description: BundleDescription = Field(description=RULES["bundle_description"])
    image: Name | None = Field(
        default=None,
        description="The name of an image spec; the bundle uses that image in its own region "
        "(the capture or one of its copies). Exactly one of image and image_id.",
    )
    image_id: ImageId | None = Field(
        default=None,
        description="An image no spec manages, by id. Exactly one of image and image_id.",
    )
    compute_type: ComputeTypeName = Field(description=_COMPUTE_HELP, examples=COMPUTE_EXAMPLES)
    user_volume_gib: Annotated[int, Field(ge=USER_VOLUME_GIB[0], le=USER_VOLUME_GIB[1])] = Field(
        description="User volume size in GiB, a whole number."
    )
    root_volume_gib: Annotated[int, Field(ge=ROOT_VOLUME_GIB[0], le=ROOT_VOLUME_GIB[1])] | None = (
        Field(default=None, description="Root volume size in GiB, a whole number.")
    )
    region: Region | None = Field(
        default=None, description="Else the folder's defaults, else --region or AWS config."
    )
    tags: Tags | None = Field(
        default=None,
        description="The bundle's whole tag set (merged over the defaults' tags). "
        f"At most {MAX_DECLARED_TAGS}: the ownership tag takes the 50th.",
    )


class DefaultsBody(_Document):
    region: Region | None = None
    tags: Tags | None = Field(default=None, description="Merged under each spec's own tags.")
    copies: list[Region] | None = Field(
        default=None,
        description="Image specs only: their copies unless a spec lists its own (lists are "
        "not merged).",
    )
    share_with: list[AccountId] | None = Field(
        default=None,
        description="Image specs only: the accounts they are shared with unless a spec lists "
        "its own (lists are not merged).",
    )
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


class _IgnoresTags:
    """The ignore rules an image spec and a bundle spec share."""

    ignore_tag_keys: frozenset[str]
    ignore_tag_prefixes: tuple[str, ...]

    def ignores(self, key: str) -> bool:
        """Whether a live tag key is outside the reconciler's concern for this spec."""
        return key in self.ignore_tag_keys or key.startswith(self.ignore_tag_prefixes)


@dataclass(frozen=True)
class Spec(_IgnoresTags):
    """An image spec with its folder's defaults applied: the desired state of one image
    and of its copies."""

    name: str
    description: str
    source_workspace_id: str
    region: str | None
    tags: Mapping[str, str]
    ignore_tag_keys: frozenset[str]
    ignore_tag_prefixes: tuple[str, ...]
    file: str  # relative to the specs folder, with forward slashes
    line: int
    copies: tuple[str, ...] = ()  # the spec's own list, else its nearest folder's
    # None: sharing is not managed; a tuple (maybe empty): the whole set of accounts.
    share_with: tuple[str, ...] | None = None
    # Where the `copies` list that applies is written (the spec's file or a defaults
    # document's, relative like `file`), for the problems found once the region is known.
    copies_file: str = ""
    copies_line: int = 0
    # Where the `share_with` list that applies is written, likewise.
    share_with_file: str = ""
    share_with_line: int = 0


@dataclass(frozen=True)
class BundleSpec(_IgnoresTags):
    """A bundle spec with its folder's defaults applied: the desired state of one bundle."""

    name: str
    description: str
    image: str | None  # the name of an image spec, or
    image_id: str | None  # an image no spec manages
    compute_type: str
    user_volume_gib: int
    root_volume_gib: int | None
    region: str | None
    tags: Mapping[str, str]
    ignore_tag_keys: frozenset[str]
    ignore_tag_prefixes: tuple[str, ...]
    file: str  # relative to the specs folder, with forward slashes
    line: int
    image_line: int  # of the `image:` or `image_id:` key


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


def _exactly_one_image(bundle: dict[str, Any]) -> None:
    """A bundle names its image by spec name or by id: one of the two, never both."""
    bundle["oneOf"] = [
        {"required": ["image"], "not": {"required": ["image_id"]}},
        {"required": ["image_id"], "not": {"required": ["image"]}},
    ]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one spec document, for editors."""
    schema: dict[str, Any] = _portable(
        TypeAdapter(ImageSpecDocument | BundleSpecDocument | DefaultsDocument).json_schema()
    )
    for definition in schema.get("$defs", {}).values():
        for name in _NOT_NULL:
            _not_nullable(definition.get("properties", {}), name)
    _exactly_one_image(schema["$defs"]["BundleSpecDocument"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/workspaces-image-reconciler/schema/spec.json",
        "title": "workspaces-image-reconciler spec",
        "description": "An image spec, a bundle spec (kind: bundle), or a defaults document "
        "for its folder and below.",
        **schema,
    }
