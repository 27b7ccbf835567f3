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
# A name of the root defaults' `accounts:` map: [a-z0-9_-] with at least one letter, so that
# a name is never mistaken for an account id (nor an 11-digit typo of one for a name).
ACCOUNT_NAME_PATTERN = r"^[0-9_-]*[a-z][a-z0-9_-]*$"
# Where an account may be given either way (`share_with`, `source_image.account`).
ACCOUNT_REF_PATTERN = r"^([0-9]{12}|[0-9_-]*[a-z][a-z0-9_-]*)$"
# STS AssumeRole's `RoleArn` (an IAM role, any partition, with or without a path) and
# `ExternalId` (2-1224 of [\w+=,.@:/-]; \w written out, as for account ids).
ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[a-zA-Z0-9_+=,.@/-]+$"
EXTERNAL_ID_PATTERN = r"^[a-zA-Z0-9_+=,.@:/-]+$"
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
    "share_with": "a 12-digit AWS account id, quoted: '111122223333', or the name of an "
    "account of the root defaults' accounts:",
    "account": "the name of an account of the root defaults' accounts: (1-64 of a-z, 0-9, _ "
    "and -, with at least one letter)",
    "source_account": "the name of an account of the root defaults' accounts:, or a 12-digit "
    "AWS account id, quoted: '111122223333'",
    "account_name": "an account name: 1-64 of a-z, 0-9, _ and -, with at least one letter "
    "(a name is never an account id)",
    "id": "a 12-digit AWS account id, quoted: '111122223333'",
    "role": "an IAM role ARN such as arn:aws:iam::111122223333:role/workspaces-reconciler",
    "external_id": "2-1224 characters of letters, digits and _ + = , . @ : / -",
    "image": "the name of an image spec: 1-64 characters of letters, digits and _ . / ( ) \\ -",
    "updated_from": "the name of an image spec: 1-64 characters of letters, digits and "
    "_ . / ( ) \\ -",
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
AccountName = Annotated[str, Field(min_length=1, max_length=64, pattern=ACCOUNT_NAME_PATTERN)]
AccountRef = Annotated[str, Field(min_length=1, max_length=64, pattern=ACCOUNT_REF_PATTERN)]
RoleArn = Annotated[str, Field(min_length=20, max_length=2048, pattern=ROLE_ARN_PATTERN)]
ExternalId = Annotated[str, Field(min_length=2, max_length=1224, pattern=EXTERNAL_ID_PATTERN)]
_COPIES_HELP = (
    "Regions that get a copy of this image, with the same name, description and declared "
    "tags. Not the image's own region; each region once."
)
_SHARE_HELP = (
    "12-digit account ids, quoted, or names of the root defaults' accounts:. When present "
    "(even []), the whole set of accounts the image and each copy are shared with; when "
    "absent, sharing is not managed. Each account once."
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
_ACCOUNT_NAME_SCHEMA = {"minLength": 1, "maxLength": 64, "pattern": ACCOUNT_NAME_PATTERN}
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
    "source_workspace_id": "is empty; give the WorkSpace to capture (ws-...), or import "
    "with source_image instead",
    "updated_from": "is empty; give the name of the image spec this image updates, or "
    "remove the line",
    "account": "is empty; give the name of an account of the root defaults' accounts:, or "
    "remove the line",
    "accounts": "is empty; name at least one account (name: {id: '111122223333'}), or "
    "remove the line",
    "source_image": "is empty; give the image to import (account, name, region), or remove "
    "the line",
    "role": "is empty; give the ARN of the role to assume in that account, or remove the "
    "line to reach it with the run's own credentials",
    "external_id": "is empty; give the external id the role's trust policy expects, or "
    "remove the line",
}


class _Document(BaseModel):
    # strict: a YAML boolean, number, null or date is never turned into a string.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @field_validator(*_NOT_NULL, mode="before", check_fields=False)
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        name = info.field_name
        # A required field left empty is said by the type check ("is empty (YAML null)").
        if value is None and name is not None and not cls.model_fields[name].is_required():
            raise ValueError(_NOT_NULL[name])
        return value


_ACCOUNT_HELP = (
    "The account this spec's resources live in: a name of the root defaults' accounts:. "
    "Else the folder's defaults (the nearest wins, as for region). Without accounts:, the "
    "run's own account."
)


class AccountEntry(_Document):
    """One account of the map: its id, and how the run reaches it."""

    id: AccountId = Field(description=RULES["id"])
    role: RoleArn | None = Field(
        default=None,
        description="The role to assume in this account (STS AssumeRole from the run's own "
        "credentials); its ARN names this account. Without it, the account is reached with "
        "the run's own credentials, and id must be theirs.",
    )
    external_id: ExternalId | None = Field(
        default=None, description="Passed to AssumeRole, as the role's trust policy expects."
    )


class SourceImageDocument(_Document):
    """An image another account shares with this one, to import (copy) into it."""

    account: AccountRef = Field(description=RULES["source_account"])
    name: Name = Field(description="That account's image of this name, shared with this one.")
    region: Region | None = Field(
        default=None, description="The source image's region; default the spec's own region."
    )


# The three ways an image is made; a spec gives exactly one (validate and the schema say so).
SOURCES = ("source_workspace_id", "source_image", "updated_from")
_ONE_SOURCE = "Exactly one of source_workspace_id, source_image and updated_from."


class ImageSpecDocument(_Document):
    """One image that should exist."""

    kind: Literal["image"] = Field(
        default="image", description="Optional: a document without `kind` is an image spec."
    )
    name: Name = Field(description="Image name, unique per region. " + RULES["name"])
    description: Description = Field(description=RULES["description"])
    source_workspace_id: WorkspaceId | None = Field(
        default=None,
        description="The prepared WorkSpace the image is captured from. " + _ONE_SOURCE,
    )
    source_image: SourceImageDocument | None = Field(
        default=None,
        description="An image another account shares with this one, imported (copied) into "
        "this spec's account. " + _ONE_SOURCE,
    )
    updated_from: Name | None = Field(
        default=None,
        description="The name of another image spec of this account, in this region: the "
        "image is that one with the WorkSpaces components AWS has updated since "
        "(CreateUpdatedWorkspaceImage). " + _ONE_SOURCE,
    )
    account: AccountName | None = Field(default=None, description=_ACCOUNT_HELP)
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
    share_with: list[AccountRef] | None = Field(default=None, description=_SHARE_HELP)


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
    account: AccountName | None = Field(default=None, description=_ACCOUNT_HELP)
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
    share_with: list[AccountRef] | None = Field(
        default=None,
        description="Image specs only: the accounts they are shared with unless a spec lists "
        "its own (lists are not merged).",
    )
    account: AccountName | None = Field(
        default=None,
        description="The account of the specs in this folder and below, unless a nearer "
        "folder or the spec says another: a name of the root defaults' accounts:.",
    )
    accounts: (
        Annotated[
            dict[AccountName, AccountEntry],
            Field(min_length=1, json_schema_extra={"propertyNames": _ACCOUNT_NAME_SCHEMA}),
        ]
        | None
    ) = Field(
        default=None,
        description="Only in the specs folder's root defaults: the accounts the specs manage, "
        "by the name specs use. When present, every spec resolves to one of them.",
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
class Account:
    """One account of the root defaults' `accounts:` map."""

    name: str
    id: str  # 12 digits
    role: str | None
    external_id: str | None
    file: str  # relative to the specs folder, with forward slashes
    line: int  # of its name in the map
    id_line: int = 0
    role_line: int = 0


@dataclass(frozen=True)
class SourceImage:
    """What an import copies: an image another account shares with the spec's account."""

    account: str  # 12 digits, whether written as a name of the map or as an id
    account_name: str | None  # the map's name for it; None for an account outside the map
    name: str
    region: str | None  # as written; None: the importing spec's own region
    line: int  # of the `source_image:` key, in the spec's file
    account_line: int = 0  # of its `account:`
    name_line: int = 0  # of its `name:`


@dataclass(frozen=True)
class Spec(_IgnoresTags):
    """An image spec with its folder's defaults applied: the desired state of one image
    and of its copies."""

    name: str
    description: str
    source_workspace_id: str | None  # None for an import or an updated image
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
    # The entries of `share_with` as written (a name of the map or an id), one for each id
    # of `share_with`, for messages that name the account as the user wrote it.
    share_with_written: tuple[str, ...] = ()
    # The account the image lives in: its 12-digit id and its name in the map; both None
    # when the specs declare no `accounts:` (the run's own account).
    account: str | None = None
    account_name: str | None = None
    # Where the `account:` that applies is written (the spec's file or a defaults
    # document's); "" and 0 when none is.
    account_file: str = ""
    account_line: int = 0
    source_image: SourceImage | None = None  # an import
    # An updated image: the name of the image spec of the same account and region that it
    # is made from (CreateUpdatedWorkspaceImage), and the line of `updated_from:`. Exactly
    # one of source_workspace_id, source_image and updated_from is set.
    updated_from: str | None = None
    updated_from_line: int = 0


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
    # As for Spec: the account's id and name (None without `accounts:`), and where the
    # `account:` that applies is written.
    account: str | None = None
    account_name: str | None = None
    account_file: str = ""
    account_line: int = 0


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


def _exactly_one(definition: dict[str, Any], *fields: str) -> None:
    """A document gives one of these fields, never two (a bundle's image, an image's
    source)."""
    definition["oneOf"] = [{"required": [f], "not": _any_of(fields, f)} for f in fields]


def _any_of(fields: tuple[str, ...], but: str) -> dict[str, Any]:
    others = [{"required": [f]} for f in fields if f != but]
    return others[0] if len(others) == 1 else {"anyOf": others}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one spec document, for editors."""
    schema: dict[str, Any] = _portable(
        TypeAdapter(ImageSpecDocument | BundleSpecDocument | DefaultsDocument).json_schema()
    )
    for definition in schema.get("$defs", {}).values():
        for name in _NOT_NULL:
            _not_nullable(definition.get("properties", {}), name)
    _exactly_one(schema["$defs"]["BundleSpecDocument"], "image", "image_id")
    _exactly_one(schema["$defs"]["ImageSpecDocument"], *SOURCES)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/workspaces-image-reconciler/schema/spec.json",
        "title": "workspaces-image-reconciler spec",
        "description": "An image spec, a bundle spec (kind: bundle), or a defaults document "
        "for its folder and below.",
        **schema,
    }
