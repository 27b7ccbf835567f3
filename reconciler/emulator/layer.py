"""Make moto's WorkSpaces backend answer like the real Amazon WorkSpaces service.

moto (``moto/workspaces``, 5.2.1 and later) differs from the real service in ways that
matter to an image reconciler. While :func:`installed` is active, this module closes these
gaps by setting methods on moto's WorkSpaces response class, through
:mod:`~reconciler.emulator.moto_adapter` (the only module that knows moto's names). The
class is shared by ``mock_aws()`` and by a moto server running in the same process, so one
patch covers both, whatever the wire format (json-1.1 or smithy-rpc-v2-cbor). On exit every
attribute is restored exactly (deleted again if moto had none).

Gaps closed (moto behaviour -> real behaviour):

* DescribeWorkspaceImages / DescribeWorkspaces return everything in one reply and ignore
  ``MaxResults`` / ``Limit`` / ``NextToken`` -> pages of at most 25 with an opaque NextToken.
* CreateTags on ``wsi-...`` does nothing; on ``ws-``/``d-`` it appends duplicate keys
  -> add or overwrite. DeleteTags is missing -> implemented. DescribeTags answers
  ``TagList`` even when empty and fails with a 500 on unknown ids -> omits ``TagList``
  when empty, ResourceNotFoundException for an unknown id.
* DeleteWorkspaceImage is missing -> implemented, with the real refusals.
* Images are AVAILABLE at once and the source WorkSpace stays AVAILABLE -> images start
  PENDING, the source is SUSPENDED while it is captured, and capturing a WorkSpace that
  is not AVAILABLE fails with InvalidResourceStateException.
* No image quota -> ResourceLimitExceededException beyond ``FidelityConfig.image_quota``.
* The Resource Groups Tagging API (GetResources, TagResources, UntagResources) for
  WorkSpaces resources: see :mod:`reconciler.emulator.tagging`, installed and removed with this
  layer; its switches are :meth:`Fidelity.deny_tagging`, :meth:`Fidelity.disable_region`
  and :meth:`Fidelity.stale_tags`.
* CopyWorkspaceImage, the bundle operations and image sharing are missing or wrong in moto
  -> served by :mod:`reconciler.emulator.lifecycle` (its docstring lists each behaviour), whose
  operations are installed with these; their test hooks are on :class:`Fidelity`
  (:meth:`~Fidelity.add_bundle`, :meth:`~Fidelity.bundles`, :meth:`~Fidelity.use_bundle`,
  :meth:`~Fidelity.shared_accounts`, :meth:`~Fidelity.set_shared_accounts`,
  :meth:`~Fidelity.fail_copies`, :meth:`~Fidelity.copied_from`).
* DeleteWorkspaceImage of an image a bundle uses answers ResourceAssociatedException with
  the message the real service was recorded answering (Cloud Custodian's placebo data).
* Every image reports ``Updates`` ``{"UpdateAvailable": false}`` and CreateUpdatedWorkspaceImage
  is missing -> :meth:`Fidelity.offer_update` makes AWS offer an update of an image's
  WorkSpaces components (``UpdateAvailable: true`` with its description), which
  CreateUpdatedWorkspaceImage (:mod:`reconciler.emulator.lifecycle`) turns into a new image;
  :meth:`Fidelity.updated_from` and :meth:`Fidelity.fail_updates` follow and break those.
* moto serves each account apart and never shows one account another's images ->
  DescribeWorkspaceImages lists the images other accounts share with the caller
  (``ImageType=SHARED``, or none), CopyWorkspaceImage copies them, and the owner's
  operations on them are refused (:mod:`reconciler.emulator.lifecycle` lists each);
  :meth:`Fidelity.shared_images` and :meth:`Fidelity.copied_from_account` show them.

State is kept per account and region, attached to moto's own backend objects
(:func:`~reconciler.emulator.moto_adapter.attached`), so a moto reset also resets it.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import model, tagging
from . import moto_adapter as adapter
from .errors import (
    AccessDeniedException,
    InvalidParameterValuesException,
    InvalidResourceStateException,
    ResourceAlreadyExistsException,
    ResourceAssociatedException,
    ResourceLimitExceededException,
    ResourceNotFoundException,
    ResourceUnavailableException,
    UnrecognizedClientException,
    ValidationException,
)
from .moto_adapter import DEFAULT_ACCOUNT_ID, Backend, Image, Reply, Response
from .tagging import TAGGING_PAGE_SIZE, TaggingSwitches

__all__ = [
    "InvalidResourceStateException",
    "ResourceAssociatedException",
    "ResourceLimitExceededException",
    "ResourceUnavailableException",
]

PAGE_SIZE = 25
"""Largest page of DescribeWorkspaceImages / DescribeWorkspaces, and their default."""
MAX_IDS = 25
"""Most ids one DescribeWorkspaces / DescribeWorkspaceImages call accepts."""
TAG_LIMIT = 50
"""Most tags one WorkSpaces resource may carry."""
BUNDLE_QUOTA = 50
"""Custom bundles per account and region (the real quota; not adjustable)."""
BUNDLE_NAME_REUSE_SECONDS = 7200.0
"""How long a deleted bundle's name stays taken (the service says about 2 hours)."""
BUNDLE_IN_USE_BY_IMAGE = (
    "One or more bundles are associated with the Image. Delete bundles associated with "
    "Image, and try again."
)
"""DeleteWorkspaceImage's ResourceAssociatedException message, as recorded from AWS."""

NO_UPDATE_DESCRIPTION = "This WorkSpace image does not have updates available"
"""``Updates.Description`` of an image AWS offers no update for. No real answer was found
recorded; this is moto's wording (the only one known), kept here so that the emulator's
answer does not depend on a moto attribute."""
UPDATE_DESCRIPTION = "Updated WorkSpaces drivers and agent are available for this image"
"""``Updates.Description`` of an offered update unless :meth:`Fidelity.offer_update` is
given one (the model's UpdateDescription allows only [a-zA-Z0-9_./() -])."""

_STATE_ATTR = "_fidelity_state"


@dataclass(frozen=True)
class FidelityConfig:
    """Knobs of the fidelity layer.

    ``capture_seconds``: 0.0 keeps a new image PENDING until the test calls
    :meth:`Fidelity.finish_capture`; a positive value makes it AVAILABLE that many seconds
    after creation, checked lazily when any WorkSpaces call (or test hook) runs.
    ``image_quota``: images per account and region (the service's default quota is 40).
    ``tagging_page_size``: most resources a GetResources page holds whatever
    ``ResourcesPerPage`` asks (the real API may answer fewer); lower it to exercise paging.
    A copy (CopyWorkspaceImage) is PENDING for ``capture_seconds`` too, and counts against
    ``image_quota`` in its destination region.
    ``bundle_quota``: custom bundles per account and region (the real one is 50).
    ``bundle_name_reuse_seconds``: how long a deleted bundle's name is refused.
    """

    capture_seconds: float = 0.0
    image_quota: int = 40
    tagging_page_size: int = TAGGING_PAGE_SIZE
    bundle_quota: int = BUNDLE_QUOTA
    bundle_name_reuse_seconds: float = BUNDLE_NAME_REUSE_SECONDS


_AVAILABLE = ("AVAILABLE", "", "")


@dataclass
class _Capture:
    source_workspace_id: str | None
    deadline: float | None  # time.monotonic(); None waits for finish_capture
    outcome: tuple[str, str, str] = _AVAILABLE  # state, error code, error message


@dataclass
class Bundle:
    """A custom bundle (CreateWorkspaceBundle) or one of AMAZON's public bundles.

    ``tags`` and ``created`` are what the tagging API reads (see reconciler.emulator.tagging).
    """

    bundle_id: str
    name: str
    owner: str  # the account id, or "AMAZON"
    description: str
    image_id: str
    compute_type: str
    user_storage: str  # GiB, as the API spells capacities: a string
    root_storage: str
    tags: list[dict[str, str]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    updated: float | None = None
    state: str = "AVAILABLE"
    bundle_type: str = "REGULAR"

    def to_dict(self) -> dict[str, Any]:
        """The WorkspaceBundle shape; never tags (DescribeWorkspaceBundles has none)."""
        return {
            "BundleId": self.bundle_id,
            "Name": self.name,
            "Owner": self.owner,
            "Description": self.description,
            "ImageId": self.image_id,
            "RootStorage": {"Capacity": self.root_storage},
            "UserStorage": {"Capacity": self.user_storage},
            "ComputeType": {"Name": self.compute_type},
            "LastUpdatedTime": self.updated if self.updated is not None else self.created,
            "CreationTime": self.created,
            "State": self.state,
            "BundleType": self.bundle_type,
        }


@dataclass
class _PlannedFailure:
    """An armed :meth:`Fidelity.fail_copies` or :meth:`Fidelity.fail_updates`: the images it
    makes (named ``name``, or any) end in ERROR."""

    name: str | None
    times: int | None  # None: every matching copy
    error_code: str
    error_message: str


@dataclass
class _RegionState:
    captures: dict[str, _Capture] = field(default_factory=dict)
    bundle_images: set[str] = field(default_factory=set)  # Fidelity.associate_bundle
    # the bundle store; reconciler.emulator.tagging reads it as ``bundles`` on this state
    bundles: dict[str, Bundle] = field(default_factory=dict)
    deleted_bundle_names: dict[str, float] = field(default_factory=dict)  # -> monotonic
    copy_failures: list[_PlannedFailure] = field(default_factory=list)
    copy_sources: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> region, id
    copy_source_accounts: dict[str, str] = field(default_factory=dict)  # -> owner account
    # image id -> the description of the update AWS offers for it (Fidelity.offer_update)
    updates: dict[str, str] = field(default_factory=dict)
    update_failures: list[_PlannedFailure] = field(default_factory=list)
    updated_sources: dict[str, str] = field(default_factory=dict)  # -> source image id


def _state(backend: Backend) -> _RegionState:
    """Fidelity state of one backend; attached to it so that a moto reset clears it too."""
    return adapter.attached(backend, _STATE_ATTR, _RegionState)


# --- helpers shared by the patched operations and the test hooks -----------------------


def _tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or []}


def _tags_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _find_resource(backend: Backend, resource_id: str) -> Any:
    """The image, WorkSpace, directory or custom bundle with that id;
    ResourceNotFoundException if none (AMAZON's public bundles are not the account's).

    moto raises a KeyError (a 500) or an UnboundLocalError for unknown ids instead.
    """
    tables: tuple[dict[str, Any], ...] = (
        backend.workspace_images,
        backend.workspaces,
        adapter.directories(backend),
        _state(backend).bundles,
    )
    for table in tables:
        if resource_id in table:
            return table[resource_id]
    raise ResourceNotFoundException(f"The resource {resource_id} could not be found.")


def _check_image_name(backend: Backend, name: str) -> None:
    """ResourceAlreadyExistsException when the account has an image of that name in the
    region (every image create checks it: capture, copy, update)."""
    if any(i.name == name for i in backend.workspace_images.values()):
        raise ResourceAlreadyExistsException(
            "A WorkSpace image with the same name exists in the destination Region. "
            "Provide a unique destination image name, and try again."
        )


def _check_image_quota(backend: Backend, quota: int) -> None:
    """ResourceLimitExceededException when the account owns ``quota`` images there."""
    owned = [i for i in backend.workspace_images.values() if i.owner_account == backend.account_id]
    if len(owned) >= quota:
        raise ResourceLimitExceededException(
            f"You have reached the limit of {quota} images in {backend.region_name}."
        )


def update_of(backend: Backend, image: Image) -> dict[str, Any]:
    """The image's ``Updates`` as DescribeWorkspaceImages shows it to ``backend``'s account:
    the offer of its owner's account (a shared image shows its owner's), if any."""
    holder = backend
    if image.image_id not in backend.workspace_images:
        holder = adapter.backend(backend.region_name, image.owner_account)
    state = adapter.peek(holder, _STATE_ATTR)
    offered = state.updates.get(image.image_id) if state is not None else None
    if offered is None:
        return {"UpdateAvailable": False, "Description": NO_UPDATE_DESCRIPTION}
    return {"UpdateAvailable": True, "Description": offered}


def os_type(image: Image) -> str:
    """The image's OperatingSystem Type (WINDOWS, LINUX), or "" when unknown."""
    return str((image.operating_system or {}).get("Type") or "")


def shared_with(backend: Backend) -> list[Image]:
    """The images other accounts share with the backend's account in its region (their
    UpdateWorkspaceImagePermission grants), in the order the owners' backends and images
    were made: what the recipient sees with ``ImageType=SHARED``. A share is within one
    region; the image stays in its owner's backend, so revoking it hides it again and
    never touches the recipient's copies."""
    account, region = backend.account_id, backend.region_name
    grant = {"SharedAccountId": account}
    return [
        image
        for owner in adapter.backends()
        if owner.region_name == region and owner.account_id != account
        for image in list(owner.workspace_images.values())
        if image.owner_account == owner.account_id and grant in image.image_permissions
    ]


def shared_image(backend: Backend, image_id: str) -> Image | None:
    """The image ``image_id`` if another account shares it with the backend's account."""
    return next((i for i in shared_with(backend) if i.image_id == image_id), None)


def not_the_owner(image: Image, doing: str) -> AccessDeniedException:
    """The refusal of an owner's operation on an image only shared with the caller.

    AccessDeniedException, not ResourceNotFoundException: the caller does see the image
    (DescribeWorkspaceImages lists it, with its owner's OwnerAccountId), so "not found"
    would contradict the service's own read; the model documents AccessDeniedException
    ("The user is not authorized to access a resource") for every such operation
    (UpdateWorkspaceImagePermission, DescribeWorkspaceImagePermissions,
    DeleteWorkspaceImage, CreateWorkspaceBundle, UpdateWorkspaceBundle). Tags are the
    exception: CreateTags / DeleteTags / DescribeTags document only
    ResourceNotFoundException, which is what they answer (the image is no resource of the
    caller's account)."""
    return AccessDeniedException(
        f"The image {image.image_id} is shared with your account by account "
        f"{image.owner_account}; only its owner can {doing} it. Copy it into your account "
        "with CopyWorkspaceImage to use it as your own."
    )


_BUNDLE_ID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_bundle_id(taken: dict[str, Any]) -> str:
    """``wsb-`` and 9 characters of [0-9a-z] (recorded ids look so), unused in ``taken``.

    Drawn from moto's seedable random, like moto's own ids.
    """
    while True:
        bundle_id = adapter.random_id("wsb-", _BUNDLE_ID_CHARS, 9)
        if bundle_id not in taken:
            return bundle_id


def _bundle_uses(backend: Backend, image_id: str) -> bool:
    """Whether a custom bundle, or the :meth:`Fidelity.associate_bundle` hook, uses it."""
    state = _state(backend)
    return image_id in state.bundle_images or any(
        b.image_id == image_id for b in state.bundles.values()
    )


def _encode_token(operation: str, offset: int) -> str:
    raw = json.dumps({"op": operation, "offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _page(
    items: list[Any], operation: str, params: dict[str, Any], size_param: str
) -> tuple[list[Any], str | None]:
    """Slice ``items`` like the real service: at most 25 a page, opaque NextToken.

    The token encodes an offset, so an image deleted between two pages shifts the next
    page by one (the real service documents no ordering or consistency either).
    """
    size = params.get(size_param)
    if size is None:
        size = PAGE_SIZE
    if not isinstance(size, int) or not 1 <= size <= PAGE_SIZE:
        raise ValidationException(
            f"1 validation error detected: Value '{size}' at '{size_param}' failed to satisfy "
            f"constraint: Member must have value between 1 and {PAGE_SIZE}"
        )
    offset = 0
    token = params.get("NextToken")
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            offset = int(decoded["offset"])
            if decoded["op"] != operation or offset < 0:
                raise ValueError(token)
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise InvalidParameterValuesException("The NextToken is invalid.") from None
    end = offset + size
    next_token = _encode_token(operation, end) if end < len(items) else None
    return items[offset:end], next_token


def _finish(backend: Backend, image_id: str, state: str, code: str, msg: str) -> None:
    """End a capture: the image takes ``state``, a SUSPENDED source is AVAILABLE again."""
    image = backend.workspace_images[image_id]
    capture = _state(backend).captures.pop(image_id, None)
    image.state = state
    image.error_code = code
    image.error_message = msg
    if capture and capture.source_workspace_id:
        source = backend.workspaces.get(capture.source_workspace_id)
        if source is not None and source.state == "SUSPENDED":
            source.state = "AVAILABLE"


def _start_capture(
    backend: Backend,
    image_id: str,
    source_id: str | None,
    seconds: float,
    outcome: tuple[str, str, str] = _AVAILABLE,
) -> None:
    """Record a PENDING image (a capture or a copy) that ends as ``outcome``; its source
    WorkSpace, if AVAILABLE, becomes SUSPENDED."""
    deadline = time.monotonic() + seconds if seconds > 0 else None
    _state(backend).captures[image_id] = _Capture(source_id, deadline, outcome)
    source = backend.workspaces.get(source_id) if source_id else None
    if source is not None and source.state == "AVAILABLE":
        source.state = "SUSPENDED"


def _tick() -> None:
    """Complete every capture or copy whose ``capture_seconds`` have elapsed (lazy
    transition), as its planned outcome (AVAILABLE unless :meth:`Fidelity.fail_copies`)."""
    now = time.monotonic()
    for backend in adapter.backends():
        state = adapter.peek(backend, _STATE_ATTR)
        if state is None:
            continue
        for image_id, capture in list(state.captures.items()):
            if capture.deadline is not None and capture.deadline <= now:
                if image_id in backend.workspace_images:
                    _finish(backend, image_id, *capture.outcome)
                else:
                    state.captures.pop(image_id, None)


# --- the patched operations --------------------------------------------------------------


def _patches(handle: Fidelity) -> dict[str, Callable[..., Any]]:
    """The functions set on moto's WorkSpaces response class, as closures over the
    installed handle."""
    original_call_action = adapter.original(Response, "call_action")

    def call_action(self: Response) -> Any:
        """Serialise WorkSpaces calls (the server is threaded), run lazy transitions and
        record tag history for the tagging API's stale mode."""
        account, region = adapter.caller(self)
        if handle.tagging.disabled(region, account, workspaces=True):
            return adapter.error_reply(self, UnrecognizedClientException())
        with handle.lock:
            _tick()
            try:
                return original_call_action(self)
            finally:
                if adapter.has_region(region, account):
                    tagging.record_tags(adapter.backend(region, account))

    def describe_workspace_images(self: Response) -> Reply:
        """Honours ImageIds, ImageType, MaxResults and NextToken (moto pages nothing), and
        lists the images other accounts share with the caller (moto: never)."""
        params = adapter.params(self)
        image_ids = params.get("ImageIds")
        image_type = params.get("ImageType")
        if image_ids is not None and len(image_ids) > MAX_IDS:
            raise InvalidParameterValuesException(f"At most {MAX_IDS} ImageIds are allowed.")
        if image_type not in (None, "OWNED", "SHARED"):
            raise ValidationException(
                f"1 validation error detected: Value '{image_type}' at 'imageType' failed to "
                "satisfy constraint: Member must satisfy enum value set: [OWNED, SHARED]"
            )
        backend = adapter.workspaces_backend(self)
        # the account's own images, then those other accounts share with it (each with its
        # owner's OwnerAccountId): ImageType=OWNED the first, SHARED the second, none both.
        # An image a test planted in the account's backend with another owner (the way to
        # fake a shared image before accounts were served) counts as shared, as before.
        here = list(backend.workspace_images.values())
        if image_type == "OWNED":
            pool = [i for i in here if i.owner_account == backend.account_id]
        elif image_type == "SHARED":
            planted = [i for i in here if i.owner_account != backend.account_id]
            pool = planted + shared_with(backend)
        else:
            pool = here + shared_with(backend)
        images = [i for i in pool if image_ids is None or i.image_id in image_ids]
        page, token = _page(images, "DescribeWorkspaceImages", params, "MaxResults")
        shown = [adapter.describe_image(i, update_of(backend, i)) for i in page]
        reply: dict[str, Any] = {"Images": shown}
        if token:
            reply["NextToken"] = token
        return adapter.reply(reply)

    def describe_workspaces(self: Response) -> Reply:
        """Pages at 25 (Limit, NextToken) and refuses more than 25 WorkspaceIds."""
        params = adapter.params(self)
        ids = params.get("WorkspaceIds")
        if ids is not None and len(ids) > MAX_IDS:
            raise InvalidParameterValuesException(
                f"The WorkspaceIds parameter accepts at most {MAX_IDS} values."
            )
        found = adapter.find_workspaces(
            adapter.workspaces_backend(self),
            ids,
            params.get("DirectoryId"),
            params.get("UserName"),
            params.get("BundleId"),
        )
        page, token = _page(found, "DescribeWorkspaces", params, "Limit")
        reply: dict[str, Any] = {"Workspaces": [adapter.describe_workspace(w) for w in page]}
        if token:
            reply["NextToken"] = token
        return adapter.reply(reply)

    def create_tags(self: Response) -> Reply:
        """Adds or overwrites tags on images, WorkSpaces and directories (moto: no-op on
        images, duplicate keys elsewhere); more than 50 -> ResourceLimitExceededException."""
        params = adapter.params(self)
        resource = _find_resource(adapter.workspaces_backend(self), params["ResourceId"])
        tags = _tags_dict(resource.tags)
        tags.update(_tags_dict(params.get("Tags")))
        if len(tags) > TAG_LIMIT:
            raise ResourceLimitExceededException(f"A resource can have at most {TAG_LIMIT} tags.")
        resource.tags = _tags_list(tags)
        return adapter.reply()

    def delete_tags(self: Response) -> Reply:
        """DeleteTags, missing from moto: removes the given keys (absent keys are ignored)."""
        params = adapter.params(self)
        resource = _find_resource(adapter.workspaces_backend(self), params["ResourceId"])
        drop = set(params.get("TagKeys") or [])
        resource.tags = [t for t in resource.tags or [] if t["Key"] not in drop]
        return adapter.reply()

    def describe_tags(self: Response) -> Reply:
        """Like the real service, omits TagList when the resource has no tag."""
        params = adapter.params(self)
        resource = _find_resource(adapter.workspaces_backend(self), params["ResourceId"])
        return adapter.reply({"TagList": list(resource.tags)} if resource.tags else {})

    def create_workspace_image(self: Response) -> Reply:
        """Real checks and lifecycle, in this order: WorkSpace missing ->
        ResourceNotFoundException; name taken in the region -> ResourceAlreadyExistsException
        (moto's messages); quota reached -> ResourceLimitExceededException; WorkSpace not
        AVAILABLE -> InvalidResourceStateException. The new image is PENDING and its
        source SUSPENDED until the capture ends (moto: AVAILABLE at once)."""
        params = adapter.params(self)
        backend = adapter.workspaces_backend(self)
        name = _valid_name(params.get("Name"))
        workspace_id = str(params.get("WorkspaceId") or "")
        source = backend.workspaces.get(workspace_id)
        if source is None:
            raise ResourceNotFoundException(
                "The specified WorkSpace cannot be found. Confirm that the workspace exists "
                "in your AWS account, and try again."
            )
        _check_image_name(backend, name)
        _check_image_quota(backend, handle.config.image_quota)
        if source.state != "AVAILABLE":
            raise InvalidResourceStateException(
                f"The WorkSpace {workspace_id} is in state {source.state}; an image can "
                "only be created from a WorkSpace in state AVAILABLE."
            )
        description, tags = params.get("Description") or "", list(params.get("Tags") or [])
        image = adapter.new_image(backend, name, description, tags, "PENDING")
        _start_capture(backend, image.image_id, workspace_id, handle.config.capture_seconds)
        return adapter.reply(adapter.describe_image(image))

    def delete_workspace_image(self: Response) -> Reply:
        """DeleteWorkspaceImage, missing from moto. An unknown id succeeds (idempotent);
        PENDING or shared with another account -> InvalidResourceStateException; an image
        another account shares with the caller -> AccessDeniedException; used by a custom
        bundle (or marked by :meth:`Fidelity.associate_bundle`) ->
        ResourceAssociatedException with the recorded message."""
        params = adapter.params(self)
        backend = adapter.workspaces_backend(self)
        image_id = params["ImageId"]
        image = backend.workspace_images.get(image_id)
        if image is None:
            shared = shared_image(backend, image_id)
            if shared is not None:
                raise not_the_owner(shared, "delete")
            return adapter.reply()
        if image.state == "PENDING":
            raise InvalidResourceStateException(
                f"The image {image_id} is in state PENDING and cannot be deleted until "
                "its creation completes."
            )
        if _bundle_uses(backend, image_id):
            raise ResourceAssociatedException(BUNDLE_IN_USE_BY_IMAGE)
        if image.image_permissions:
            raise InvalidResourceStateException(
                f"The image {image_id} is shared with other accounts; remove its image "
                "permissions before deleting it."
            )
        del backend.workspace_images[image_id]
        _state(backend).captures.pop(image_id, None)
        _state(backend).updates.pop(image_id, None)
        return adapter.reply()

    # lifecycle builds on this module's helpers, so it is imported when installing, not at
    # the top (a module-level import would be circular)
    from .lifecycle import lifecycle_patches

    return {
        "call_action": call_action,
        "describe_workspace_images": describe_workspace_images,
        "describe_workspaces": describe_workspaces,
        "create_tags": create_tags,
        "delete_tags": delete_tags,
        "describe_tags": describe_tags,
        "create_workspace_image": create_workspace_image,
        "delete_workspace_image": delete_workspace_image,
        **lifecycle_patches(handle),
    }


def _os_type_checked(value: str) -> str:
    allowed = model.service_model().shape_for("OperatingSystemType").metadata["enum"]
    if value not in allowed:
        raise ValueError(f"operating_system is one of {allowed}, not {value!r}")
    return value


def _valid_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidParameterValuesException("The Name parameter is required.")
    return name


# --- the handle and its test hooks ------------------------------------------------------


class Fidelity:
    """Handle yielded by :func:`installed`: test hooks acting directly on moto's backend.

    Every hook takes ``account_id`` (default moto's ``123456789012``) and acts in that
    account only; an account's backend is made on first use (no account needs declaring:
    AssumeRole into any ``arn:aws:iam::<account>:role/...`` reaches it). Hooks that name an
    image accept either ``(region, image_id)`` or only ``(image_id)``; image ids are
    unique, so without a region the image is searched in every region of the account.
    """

    def __init__(self, config: FidelityConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.tagging = TaggingSwitches()

    # --- the Resource Groups Tagging API (see reconciler.emulator.tagging) ---

    def deny_tagging(
        self,
        denied: bool = True,
        *,
        region: str | None = None,
        account_id: str | None = None,
    ) -> None:
        """GetResources answers AccessDeniedException (a role without tag:GetResources),
        in every region (``region=None``) or in one, of every account (``account_id=None``)
        or of one. ``deny_tagging(False)`` with neither lifts every denial; with a region
        or an account, only the denial set with the same ones."""
        with self.tagging.lock:
            denials = self.tagging.denials
            if denied:
                denials.add((account_id, region))
            elif region is None and account_id is None:
                denials.clear()
            else:
                denials.discard((account_id, region))

    def disable_region(
        self,
        region: str,
        disabled: bool = True,
        *,
        workspaces: bool = True,
        account_id: str | None = None,
    ) -> None:
        """Make ``region`` answer like an opt-in region the account has not enabled (one
        account's, or every account's with ``account_id=None``):
        UnrecognizedClientException to every tagging API call and, unless
        ``workspaces=False``, to every WorkSpaces call too."""
        with self.tagging.lock:
            if disabled:
                self.tagging.disabled_regions[(account_id, region)] = workspaces
            else:
                self.tagging.disabled_regions.pop((account_id, region), None)

    def leave_out_of_tagging(self, *resource_types: str) -> None:
        """GetResources leaves resources of these ARN types (``workspacebundle``) out of
        every answer, tagged or not, as real answers recorded by Cloud Custodian did for
        bundles; DescribeTags still shows their tags. No argument: none left out."""
        with self.lock:
            self.tagging.left_out = set(resource_types)

    def freeze_tags(self) -> None:
        """GetResources serves tags as they are now, whatever changes after (an eventually
        consistent API at its laziest), until :meth:`stale_tags` is called; DescribeTags
        stays current. Unlike a lag of some seconds, it holds however slow the test runs."""
        with self.lock:
            tagging.record_tags()
            self.tagging.frozen_at = time.time()

    def stale_tags(self, seconds: float) -> None:
        """GetResources serves tags as they were ``seconds`` ago (0: current); a resource
        created less than ``seconds`` ago is absent. DescribeTags stays current."""
        if seconds < 0:
            raise ValueError("stale_tags takes seconds >= 0")
        with self.lock:
            tagging.record_tags()
            self.tagging.stale_seconds = float(seconds)
            self.tagging.frozen_at = None

    @staticmethod
    def image_arn(region: str, image_id: str, account_id: str = DEFAULT_ACCOUNT_ID) -> str:
        """The tagging API's ARN of an image."""
        return tagging.image_arn(region, image_id, account_id)

    @staticmethod
    def bundle_arn(region: str, bundle_id: str, account_id: str = DEFAULT_ACCOUNT_ID) -> str:
        """The tagging API's ARN of a bundle."""
        return tagging.bundle_arn(region, bundle_id, account_id)

    # --- WorkSpaces ---

    @staticmethod
    def backend(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> Backend:
        """moto's WorkSpaces backend for that account and region."""
        return adapter.backend(region, account_id)

    def _image_backend(self, where: tuple[str, ...], account_id: str) -> tuple[Any, str]:
        if len(where) == 2:
            backend = self.backend(where[0], account_id)
            if where[1] not in backend.workspace_images:
                raise ValueError(f"no image {where[1]} in {where[0]}/{account_id}")
            return backend, where[1]
        if len(where) != 1:
            raise TypeError("expected (region, image_id) or (image_id,)")
        for backend in adapter.backends():
            if backend.account_id == account_id and where[0] in backend.workspace_images:
                return backend, where[0]
        raise ValueError(f"no image {where[0]} in account {account_id}")

    def add_workspace(
        self,
        region: str,
        workspace_id: str,
        state: str = "AVAILABLE",
        account_id: str = DEFAULT_ACCOUNT_ID,
        *,
        bundle_id: str = "wsb-000000000",
    ) -> str:
        """Insert a WorkSpace with a chosen id, no directory needed (moto needs a
        registered directory and picks the id itself), built from ``bundle_id``."""
        with self.lock:
            workspace = adapter.new_workspace(workspace_id, state, bundle_id, "d-0000000000")
            self.backend(region, account_id).workspaces[workspace_id] = workspace
            return workspace_id

    def set_workspace_state(
        self, region: str, workspace_id: str, state: str, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> None:
        """Put a WorkSpace in any state (STOPPED, ERROR, TERMINATED, REBOOTING, ...)."""
        with self.lock:
            workspaces = self.backend(region, account_id).workspaces
            if workspace_id not in workspaces:
                raise ValueError(f"no WorkSpace {workspace_id} in {region}/{account_id}")
            workspaces[workspace_id].state = state

    def add_image(
        self,
        region: str,
        name: str,
        description: str = "d",
        tags: dict[str, str] | None = None,
        state: str = "AVAILABLE",
        source_workspace_id: str | None = None,
        created: datetime | float | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
        *,
        operating_system: str | None = None,
    ) -> str:
        """Insert an owned image without an API call (no quota, no checks but a unique
        name). A PENDING image counts as a capture: :meth:`finish_capture` ends it, and an
        AVAILABLE source WorkSpace, if given and present, is SUSPENDED meanwhile.
        ``operating_system`` is its OperatingSystem Type (the model's enum: WINDOWS, LINUX);
        without it the image shows none, as moto's do."""
        with self.lock:
            backend = self.backend(region, account_id)
            if any(i.name == name for i in backend.workspace_images.values()):
                raise ValueError(f"an image named {name!r} already exists in {region}")
            image = adapter.new_image(backend, name, description, _tags_list(tags or {}), state)
            if operating_system is not None:
                image.operating_system = {"Type": _os_type_checked(operating_system)}
            image.error_code = error_code or ""
            image.error_message = error_message or ""
            if created is not None:
                epoch = created.timestamp() if isinstance(created, datetime) else created
                adapter.set_created(image, epoch)
            if state == "PENDING":
                _start_capture(
                    backend, image.image_id, source_workspace_id, self.config.capture_seconds
                )
            tagging.record_tags(backend)
            return str(image.image_id)

    def set_image_state(
        self,
        region: str,
        image_id: str,
        state: str,
        error_code: str | None = None,
        error_message: str | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        """Set an image's state and error fields only; the source WorkSpace is untouched
        (use :meth:`finish_capture` for the real end of a capture)."""
        with self.lock:
            backend, image_id = self._image_backend((region, image_id), account_id)
            image = backend.workspace_images[image_id]
            image.state = state
            image.error_code = error_code or ""
            image.error_message = error_message or ""
            captures = _state(backend).captures
            if state == "PENDING":
                captures.setdefault(image_id, _Capture(None, None))
            else:
                captures.pop(image_id, None)

    def finish_capture(
        self,
        *where: str,
        state: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        """End a PENDING image's capture (or copy, or update) as AVAILABLE or ERROR (with
        the error fields); without ``state``, as planned: AVAILABLE, or ERROR for a copy
        that :meth:`fail_copies` marked or an updated image :meth:`fail_updates` marked.
        Its source WorkSpace goes from SUSPENDED back to AVAILABLE."""
        if state not in (None, "AVAILABLE", "ERROR"):
            raise ValueError("a capture ends AVAILABLE or ERROR")
        with self.lock:
            _tick()
            backend, image_id = self._image_backend(where, account_id)
            if backend.workspace_images[image_id].state != "PENDING":
                raise ValueError(f"image {image_id} is not PENDING")
            capture = _state(backend).captures.get(image_id)
            planned = capture.outcome if capture else _AVAILABLE
            _finish(
                backend,
                image_id,
                state or planned[0],
                error_code or ("" if state else planned[1]),
                error_message or ("" if state else planned[2]),
            )

    def associate_bundle(
        self, *where: str, associated: bool = True, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> None:
        """Mark an image as used by a bundle (or not): DeleteWorkspaceImage then raises
        ResourceAssociatedException. moto has no bundles made from images."""
        with self.lock:
            backend, image_id = self._image_backend(where, account_id)
            bundles = _state(backend).bundle_images
            if associated:
                bundles.add(image_id)
            else:
                bundles.discard(image_id)

    # --- updates of images (CreateUpdatedWorkspaceImage in reconciler.emulator.lifecycle) ---

    def offer_update(
        self,
        *where: str,
        offered: bool = True,
        description: str = UPDATE_DESCRIPTION,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        """AWS publishes an update of the image's WorkSpaces components (agent, drivers):
        DescribeWorkspaceImages shows ``Updates`` ``{"UpdateAvailable": true,
        "Description": description}`` (to the accounts it is shared with too), and
        CreateUpdatedWorkspaceImage accepts the image as its source. ``offered=False``
        withdraws it (``UpdateAvailable: false`` again). ``description`` must meet the
        model's UpdateDescription, which the real answer does; a LINUX image is refused
        (AWS updates only Windows images this way). The offer is the image's alone: a copy
        of it, or the image made from it, has none unless offered too."""
        broken = model.constraint_violation(description, "UpdateDescription")
        if broken is not None:
            raise ValueError(f"update description {description!r}: {broken}")
        with self.lock:
            backend, image_id = self._image_backend(where, account_id)
            updates = _state(backend).updates
            if not offered:
                updates.pop(image_id, None)
                return
            if os_type(backend.workspace_images[image_id]) == "LINUX":
                raise ValueError(f"image {image_id} is a LINUX image: AWS offers it no update")
            updates[image_id] = description

    def fail_updates(
        self,
        region: str,
        *,
        name: str | None = None,
        times: int | None = 1,
        error_code: str = "UpdateFailed",
        error_message: str = "The image could not be updated.",
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        """Like :meth:`fail_copies`, for the images CreateUpdatedWorkspaceImage makes in
        ``region``: the next ``times`` (None: every one), only those named ``name`` if
        given, end in ERROR with these fields. The real codes are unknown."""
        if times is not None and times < 1:
            raise ValueError("times is a positive number or None")
        with self.lock:
            _state(self.backend(region, account_id)).update_failures.append(
                _PlannedFailure(name, times, error_code, error_message)
            )

    def updated_from(
        self, region: str, image_id: str, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> str | None:
        """The source image id of an image CreateUpdatedWorkspaceImage made; None for any
        other image."""
        with self.lock:
            backend, image_id = self._image_backend((region, image_id), account_id)
            return _state(backend).updated_sources.get(image_id)

    # --- copies, sharing and bundles (operations in reconciler.emulator.lifecycle) ---

    def fail_copies(
        self,
        region: str,
        *,
        name: str | None = None,
        times: int | None = 1,
        error_code: str = "CopyFailed",
        error_message: str = "The image could not be copied.",
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        """The next ``times`` copies (None: every one) made into ``region`` by
        CopyWorkspaceImage, only those named ``name`` if given, end in ERROR with these
        error fields instead of AVAILABLE: when their ``capture_seconds`` elapse, or when
        :meth:`finish_capture` is called without a state. The real codes are unknown."""
        if times is not None and times < 1:
            raise ValueError("times is a positive number or None")
        with self.lock:
            _state(self.backend(region, account_id)).copy_failures.append(
                _PlannedFailure(name, times, error_code, error_message)
            )

    def copied_from(
        self, region: str, image_id: str, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> tuple[str, str] | None:
        """(source region, source image id) of an image CopyWorkspaceImage made; None for
        any other image."""
        with self.lock:
            backend, image_id = self._image_backend((region, image_id), account_id)
            return _state(backend).copy_sources.get(image_id)

    def copied_from_account(
        self, region: str, image_id: str, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> str | None:
        """The account that owned the source of an image CopyWorkspaceImage made (the
        caller's own, or the one that shared it); None for any other image."""
        with self.lock:
            backend, image_id = self._image_backend((region, image_id), account_id)
            return _state(backend).copy_source_accounts.get(image_id)

    def shared_images(
        self, region: str, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> list[dict[str, Any]]:
        """The images other accounts share with ``account_id`` in ``region``, as it sees
        them with ``ImageType=SHARED``: id, name, state, owner (the owner's account)."""
        with self.lock:
            _tick()
            return [
                {"id": i.image_id, "name": i.name, "state": i.state, "owner": i.owner_account}
                for i in shared_with(self.backend(region, account_id))
            ]

    def shared_accounts(
        self, region: str, image_id: str, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> list[str]:
        """The accounts an image is shared with, in the order they were granted."""
        with self.lock:
            backend, image_id = self._image_backend((region, image_id), account_id)
            image = backend.workspace_images[image_id]
            return [p["SharedAccountId"] for p in image.image_permissions]

    def set_shared_accounts(
        self,
        region: str,
        image_id: str,
        accounts: list[str],
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        """Share an image with exactly ``accounts``, without an API call or any check (an
        image in any state, any account id)."""
        with self.lock:
            backend, image_id = self._image_backend((region, image_id), account_id)
            backend.workspace_images[image_id].image_permissions = [
                {"SharedAccountId": a} for a in dict.fromkeys(accounts)
            ]

    def add_bundle(
        self,
        region: str,
        name: str,
        image_id: str,
        *,
        description: str = "d",
        compute_type: str = "STANDARD",
        user_storage: int | str = 50,
        root_storage: int | str = 80,
        tags: dict[str, str] | None = None,
        state: str = "AVAILABLE",
        created: datetime | float | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> str:
        """Insert a custom bundle without an API call (no quota, no checks but a unique
        name; ``image_id`` need not exist). It counts like a created one everywhere:
        DescribeWorkspaceBundles, tags, the tagging API, DeleteWorkspaceImage."""
        with self.lock:
            backend = self.backend(region, account_id)
            bundles = _state(backend).bundles
            if any(b.name == name for b in bundles.values()):
                raise ValueError(f"a bundle named {name!r} already exists in {region}")
            bundle = Bundle(
                bundle_id=new_bundle_id(bundles),
                name=name,
                owner=account_id,
                description=description,
                image_id=image_id,
                compute_type=compute_type,
                user_storage=str(user_storage),
                root_storage=str(root_storage),
                tags=_tags_list(tags or {}),
                state=state,
            )
            if created is not None:
                bundle.created = created.timestamp() if isinstance(created, datetime) else created
            bundles[bundle.bundle_id] = bundle
            tagging.record_tags(backend)
            return bundle.bundle_id

    def bundles(self, region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> list[dict[str, Any]]:
        """The account's custom bundles in the region, oldest first: id, name, description,
        image_id, compute_type, user_storage, root_storage (GiB, int), state, tags, owner."""
        with self.lock:
            return [
                {
                    "id": b.bundle_id,
                    "name": b.name,
                    "description": b.description,
                    "image_id": b.image_id,
                    "compute_type": b.compute_type,
                    "user_storage": int(b.user_storage),
                    "root_storage": int(b.root_storage),
                    "state": b.state,
                    "tags": _tags_dict(b.tags),
                    "owner": b.owner,
                }
                for b in _state(self.backend(region, account_id)).bundles.values()
            ]

    def use_bundle(
        self,
        region: str,
        bundle_id: str,
        used: bool = True,
        *,
        workspace_id: str | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> str | None:
        """Launch a WorkSpace from a custom bundle (DeleteWorkspaceBundle then answers
        ResourceAssociatedException) and return its id; ``used=False`` removes every
        WorkSpace built from the bundle instead (as TerminateWorkspaces would, at once)."""
        with self.lock:
            backend = self.backend(region, account_id)
            if bundle_id not in _state(backend).bundles:
                raise ValueError(f"no custom bundle {bundle_id} in {region}/{account_id}")
            if not used:
                for ws_id in [
                    w for w, ws in backend.workspaces.items() if ws.bundle_id == bundle_id
                ]:
                    del backend.workspaces[ws_id]
                return None
            ws_id = workspace_id or f"ws-{adapter.random_hex(9)}"
            return self.add_workspace(region, ws_id, account_id=account_id, bundle_id=bundle_id)

    def image_tags(
        self, region: str, image_id: str, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> dict[str, str]:
        """An image's tags as a dict."""
        with self.lock:
            backend, image_id = self._image_backend((region, image_id), account_id)
            return _tags_dict(backend.workspace_images[image_id].tags)

    def images(self, region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> list[dict[str, Any]]:
        """Every image of the region, oldest first: id, name, description, state, tags."""
        with self.lock:
            _tick()
            return [
                {
                    "id": i.image_id,
                    "name": i.name,
                    "description": i.description,
                    "state": i.state,
                    "tags": _tags_dict(i.tags),
                }
                for i in self.backend(region, account_id).workspace_images.values()
            ]

    def workspace_state(
        self, region: str, workspace_id: str, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> str:
        """A WorkSpace's current state."""
        with self.lock:
            _tick()
            return str(self.backend(region, account_id).workspaces[workspace_id].state)


_install_lock = threading.Lock()
_active: Fidelity | None = None


@contextmanager
def installed(config: FidelityConfig | None = None) -> Iterator[Fidelity]:
    """Install the fidelity layer on moto's WorkSpaces and tagging API response classes;
    restore them on exit.

    Works with ``mock_aws()`` and with a moto server in the same process, in any nesting
    order. Only one installation may be active at a time. A moto that can't serve the
    installed botocore is refused at once (:func:`~.moto_adapter.check_compatible`).
    """
    global _active
    adapter.check_compatible()
    with ExitStack() as stack:
        with _install_lock:
            if _active is not None:
                raise RuntimeError("the WorkSpaces fidelity layer is already installed")
            handle = Fidelity(config or FidelityConfig())
            stack.callback(_uninstalled)
            stack.enter_context(adapter.patched(Response, _patches(handle)))
            stack.enter_context(tagging.installed(handle))
            _active = handle
        yield handle


def _uninstalled() -> None:
    global _active
    with _install_lock:
        adapter.detach(_STATE_ATTR)
        _active = None
