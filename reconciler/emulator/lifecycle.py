"""Copies, updates, sharing and bundles: the WorkSpaces operations moto lacks or gets wrong.

:func:`lifecycle_patches` gives the methods :func:`reconciler.emulator.layer.installed` sets on
moto's WorkSpaces response class next to its own (and restores on exit). State lives on the layer's
per-region state (``_RegionState``), so a moto reset clears it; the bundle store is its
``bundles``, the one :mod:`reconciler.emulator.tagging` serves under
``arn:aws:workspaces:<region>:<account>:workspacebundle/<id>``. Test hooks are on
:class:`~reconciler.emulator.layer.Fidelity`.

Gaps closed (moto behaviour -> real behaviour):

* CopyWorkspaceImage is missing -> called in the destination region with ``SourceRegion``
  and ``SourceImageId``. Checks, in this order: the source is not in the same account's
  ``SourceRegion`` -> ResourceNotFoundException; the name is taken in the destination ->
  ResourceAlreadyExistsException; the destination has ``FidelityConfig.image_quota``
  images -> ResourceLimitExceededException; the source is not AVAILABLE ->
  ResourceUnavailableException. Answers only ``ImageId``. The copy is PENDING, then
  AVAILABLE like a capture (``capture_seconds`` / ``finish_capture``; no WorkSpace is
  suspended), or ERROR when :meth:`Fidelity.fail_copies` says so. It carries the request's
  Tags only (not the source's), the source's description unless one is given, the
  source's operating system and tenancy, and the caller's ``OwnerAccountId``.
* CreateUpdatedWorkspaceImage is missing, and every image reports ``UpdateAvailable: false``
  -> ``Name``, ``Description`` (required) and ``SourceImageId`` checked against the model
  (ValidationException when malformed, InvalidParameterValuesException when missing), then,
  in this order: the source is not the caller's image in the region ->
  ResourceNotFoundException (AccessDeniedException for one another account only shares
  with it); the name is taken -> ResourceAlreadyExistsException; ``image_quota`` images ->
  ResourceLimitExceededException; the source is not AVAILABLE ->
  InvalidResourceStateException; a LINUX source, or one AWS offers no update for
  (:meth:`Fidelity.offer_update`), -> OperationNotSupportedException. Answers only
  ``ImageId``. The new image is PENDING, then AVAILABLE like a capture (``capture_seconds``
  / ``finish_capture``; no WorkSpace is suspended), or ERROR when
  :meth:`Fidelity.fail_updates` says so; it has the request's Tags only, the source's
  operating system and tenancy, the caller's ``OwnerAccountId``, and no update offered.
  The source is kept as it was, its offer included (AWS-NOTES: "the source is kept"; the
  service does not say the offer goes, and a drift that still sees it is what the contract
  expects until the source is retired). :meth:`Fidelity.updated_from` names the source.
* UpdateWorkspaceImagePermission on an unknown image raises a bare KeyError (HTTP 500) ->
  ResourceNotFoundException; an image not AVAILABLE -> ResourceUnavailableException (the
  model's error list has no InvalidResourceStateException for it); granting an account
  twice, or revoking an account the image is not shared with, changes nothing (see the
  choices below). One account a call, in the image's region.
* DescribeWorkspaceImagePermissions answers everything at once and validates only the id's
  format -> pages of ``MaxResults`` (1-25, default 25) with an opaque NextToken;
  ResourceNotFoundException for an unknown image. Answers ``ImageId`` and
  ``ImagePermissions`` [{SharedAccountId}].
* DeleteWorkspaceImage of a shared image -> InvalidResourceStateException (the layer).
* CreateWorkspaceBundle is missing -> ``BundleName`` (model: 1-64, pattern) and
  ``BundleDescription`` (1-255, pattern) -> ValidationException when malformed;
  ``ComputeType.Name`` outside the model's enum -> ValidationException; ``UserStorage`` /
  ``RootStorage`` capacities not whole numbers of GiB in 10-2000 / 80-2000 ->
  InvalidParameterValuesException. Then, in this order: unknown image ->
  ResourceNotFoundException; the name taken by a bundle of the account in the region, or
  by one deleted less than ``bundle_name_reuse_seconds`` ago ->
  ResourceAlreadyExistsException; ``bundle_quota`` custom bundles in the region ->
  ResourceLimitExceededException; the image not AVAILABLE ->
  ResourceUnavailableException. Answers ``WorkspaceBundle`` (BundleId ``wsb-`` and 9 of
  [0-9a-z], Owner the account id, State AVAILABLE, BundleType REGULAR, CreationTime,
  LastUpdatedTime); no tags in it.
* DescribeWorkspaceBundles is missing -> ``BundleIds`` (1-25, own or public bundles, unknown
  ids absent) or ``Owner`` (absent or the account id: the account's bundles; ``AMAZON``:
  the public bundles of :func:`public_bundles`, never the account's; any other owner:
  none), not both (InvalidParameterValuesException); pages of 25 with an opaque NextToken;
  no tags.
* UpdateWorkspaceBundle is missing -> changes only the bundle's image (and
  LastUpdatedTime): unknown or public bundle, or unknown image -> ResourceNotFoundException;
  image not AVAILABLE -> ResourceUnavailableException.
* DeleteWorkspaceBundle is missing -> unknown or public bundle -> ResourceNotFoundException;
  a WorkSpace (not TERMINATED) built from it (:meth:`Fidelity.use_bundle`) ->
  ResourceAssociatedException; afterwards its name is refused for
  ``bundle_name_reuse_seconds``, and DeleteWorkspaceImage of its image is allowed again.
* CreateTags / DeleteTags / DescribeTags work on custom bundle ids as on images (the layer).

Choices where the real behaviour is unknown (no recording, no documentation found):

* Revoking a share that does not exist: the API reference says the permission "can be
  revoked only after an image has been shared" but names no error, so it is a no-op.
* Sharing with the image's own account -> InvalidParameterValuesException. Revoking requires
  an AVAILABLE image too (the same check as granting).
* The order of the checks above (it mirrors CreateWorkspaceImage), the messages, and
  ValidationException for a value outside a model constraint (what AWS json APIs answer).
* A copy does not inherit its source's update offer: AWS publishes an offer for an image
  (``Updates`` is its own field, read per image, and AWS-NOTES calls it the image needing
  newer drivers), a copy is a new image with its own id that AWS assesses on its own, and
  nothing documented says a copy starts with the offer. So no offer is guessed: a test that
  wants one on the copy says so with :meth:`Fidelity.offer_update`.
* The order of CreateUpdatedWorkspaceImage's checks (as CopyWorkspaceImage's; the offer is
  checked last, as it is only meaningful for an AVAILABLE image), its messages and ERROR
  fields (:meth:`Fidelity.fail_updates` defaults); a source deleted while its updated
  image is PENDING does not affect it.
* A copy's ERROR fields (:meth:`Fidelity.fail_copies` defaults); copying from an unknown
  region -> InvalidParameterValuesException; a source deleted while its copy is PENDING does
  not affect the copy; the source may be in the destination region (a new name is needed).
* A bundle's volumes are not compared with its image's (moto's images have no sizes); the
  capacity ranges are the contract's; a bundle without RootStorage gets 80 GiB.
* A bundle stays AVAILABLE through UpdateWorkspaceBundle; updating to its current image is
  accepted. Public bundles can't be tagged, updated or deleted (ResourceNotFoundException).

The recipient's side of a share (several accounts: see ``moto_adapter`` for how a request
finds its account):

* DescribeWorkspaceImages lists the images other accounts share with the caller in its
  region, each with its owner's ``OwnerAccountId``: with ``ImageType=SHARED`` only those,
  without ImageType after the caller's own, never with ``OWNED``; ``ImageIds`` finds them
  too. An account the image is not shared with never sees it.
* CopyWorkspaceImage takes such an image as its source (``SourceImageId`` the owner's id,
  ``SourceRegion`` the image's region): the copy is the caller's own image (its id, its
  quota, its tags), PENDING then AVAILABLE like any copy; revoking the share later leaves
  it alone. A source that exists but is not shared with the caller ->
  ResourceNotFoundException (:func:`_copy_source` says why).
* The recipient can't re-share, read the permissions of, delete, or build or update a
  bundle from a shared image -> AccessDeniedException; nor tag it ->
  ResourceNotFoundException (:func:`~.layer.not_the_owner` says why each).

Not covered: BYOL, organisation-wide sharing, which Windows versions AWS updates (any image
not LINUX may be offered an update).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import moto_adapter as adapter
from .errors import (
    InvalidParameterValuesException,
    InvalidResourceStateException,
    OperationNotSupportedException,
    ResourceAlreadyExistsException,
    ResourceAssociatedException,
    ResourceLimitExceededException,
    ResourceNotFoundException,
    ResourceUnavailableException,
)
from .layer import (
    MAX_IDS,
    Bundle,
    _check_image_name,
    _check_image_quota,
    _page,
    _start_capture,
    _state,
    new_bundle_id,
    not_the_owner,
    os_type,
    shared_image,
)
from .model import compute_types, constraint_error, valid

if TYPE_CHECKING:
    from .layer import Fidelity, _PlannedFailure, _RegionState
    from .moto_adapter import Backend, Image, Reply, Response

PUBLIC_OWNER = "AMAZON"
"""``Owner`` of the public bundles (DescribeWorkspaceBundles ``Owner=AMAZON``)."""
USER_STORAGE_GIB = (10, 2000)
ROOT_STORAGE_GIB = (80, 2000)
DEFAULT_ROOT_STORAGE = "80"

# (name, compute type, root GiB, user GiB) of the fabricated public bundles: the real list
# is long enough to page; these 30 page as 25 + 5
_PUBLIC_SYSTEMS = (
    "Windows 10 (Server 2019 based)",
    "Windows 11 (Server 2022 based)",
    "Amazon Linux 2",
    "Ubuntu 22.04",
    "Rocky Linux 8",
)
_PUBLIC_COMPUTE = (
    ("Value", "VALUE", "80", "10"),
    ("Standard", "STANDARD", "80", "50"),
    ("Performance", "PERFORMANCE", "80", "100"),
    ("Power", "POWER", "175", "100"),
    ("PowerPro", "POWERPRO", "175", "100"),
    ("GeneralPurpose.4xlarge", "GENERALPURPOSE_4XLARGE", "175", "100"),
)
_PUBLIC_CREATED = 1_600_000_000.0  # fixed, so that every run answers the same


def _capacity(storage: Any, field: str, limits: tuple[int, int]) -> str:
    capacity = storage.get("Capacity") if isinstance(storage, dict) else None
    low, high = limits
    if not isinstance(capacity, str) or not capacity.isdigit() or not low <= int(capacity) <= high:
        raise InvalidParameterValuesException(
            f"The {field} capacity '{capacity}' is not valid: give a whole number of GiB "
            f"from {low} to {high}."
        )
    return str(int(capacity))


def _compute_type(compute: Any) -> str:
    name = compute.get("Name") if isinstance(compute, dict) else None
    if name not in compute_types():
        raise constraint_error(
            name,
            "computeType.name",
            f"Member must satisfy enum value set: [{', '.join(compute_types())}]",
        )
    return str(name)


# --- public bundles ----------------------------------------------------------------------


def _stable_id(prefix: str, seed: str) -> str:
    digest = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    chars = []
    for _ in range(9):
        digest, index = divmod(digest, 36)
        chars.append("0123456789abcdefghijklmnopqrstuvwxyz"[index])
    return prefix + "".join(chars)


@functools.cache
def _public(region: str) -> tuple[Bundle, ...]:
    bundles = []
    for system in _PUBLIC_SYSTEMS:
        for label, compute, root, user in _PUBLIC_COMPUTE:
            name = f"{label} with {system}"
            bundles.append(
                Bundle(
                    bundle_id=_stable_id("wsb-", f"{region}/{name}"),
                    name=name,
                    owner=PUBLIC_OWNER,
                    description=f"{name} ({region})",
                    image_id=_stable_id("wsi-", f"{region}/{system}"),
                    compute_type=compute,
                    user_storage=user,
                    root_storage=root,
                    created=_PUBLIC_CREATED,
                )
            )
    return tuple(bundles)


def public_bundles(region: str) -> list[dict[str, Any]]:
    """The public (``Owner=AMAZON``) bundles the layer answers in ``region``, as
    DescribeWorkspaceBundles shows them; the same ids in every run."""
    return [b.to_dict() for b in _public(region)]


# --- the operations ----------------------------------------------------------------------


def _image(backend: Backend, image_id: str, doing: str = "change") -> Image:
    """The account's own image; an image another account only shares with it ->
    AccessDeniedException (see :func:`~.layer.not_the_owner`), any other ->
    ResourceNotFoundException."""
    image = backend.workspace_images.get(image_id)
    if image is None:
        shared = shared_image(backend, image_id)
        if shared is not None:
            raise not_the_owner(shared, doing)
        raise ResourceNotFoundException(
            f"The image {image_id} could not be found in {backend.region_name}."
        )
    return image


def _copy_source(backend: Backend, region: str, image_id: str) -> Image:
    """CopyWorkspaceImage's source: the caller's own image in ``region``, or one another
    account shares with the caller there. Any other image -> ResourceNotFoundException,
    also one that exists but is not shared with the caller (or no longer): to the caller it
    does not exist (DescribeWorkspaceImages does not show it), and the model documents
    ResourceNotFoundException for a missing source, AccessDeniedException for missing IAM
    permissions."""
    source_backend = _source_backend(backend.account_id, region)
    image = source_backend.workspace_images.get(image_id) or shared_image(source_backend, image_id)
    if image is None:
        raise ResourceNotFoundException(f"The image {image_id} could not be found in {region}.")
    return image


def _require_available(image: Image, doing: str) -> None:
    if image.state != "AVAILABLE":
        raise ResourceUnavailableException(
            f"The image {image.image_id} is {image.state}; only an AVAILABLE image can be {doing}."
        )


def _custom_bundle(state: _RegionState, bundle_id: Any, region: str) -> Bundle:
    if not isinstance(bundle_id, str):
        raise InvalidParameterValuesException("The BundleId parameter is required.")
    valid(bundle_id, "BundleId", "bundleId")
    bundle = state.bundles.get(bundle_id)
    if bundle is None:
        raise ResourceNotFoundException(
            f"The bundle {bundle_id} could not be found among your bundles in {region}."
        )
    return bundle


def _planned_outcome(failures: list[_PlannedFailure], name: str) -> tuple[str, str, str]:
    """ERROR if an armed failure (:meth:`Fidelity.fail_copies`, :meth:`Fidelity.fail_updates`)
    matches ``name`` (using it up)."""
    for failure in failures:
        if failure.name in (None, name):
            if failure.times is not None:
                failure.times -= 1
                if failure.times == 0:
                    failures.remove(failure)
            return "ERROR", failure.error_code, failure.error_message
    return "AVAILABLE", "", ""


def _require_update(state: _RegionState, source: Image) -> None:
    """OperationNotSupportedException unless AWS offers an update of ``source``: a LINUX
    image never (only Windows images are updated this way), any other only while
    :meth:`Fidelity.offer_update` offers one (the service's "nothing to update")."""
    if os_type(source) == "LINUX":
        raise OperationNotSupportedException(
            f"The image {source.image_id} is a Linux image; only Windows images can be "
            "updated with CreateUpdatedWorkspaceImage."
        )
    if source.image_id not in state.updates:
        raise OperationNotSupportedException(
            f"The image {source.image_id} has no updates available; it already has the "
            "latest WorkSpaces components."
        )


def _require_available_to_update(source: Image) -> None:
    """InvalidResourceStateException for a source that is not AVAILABLE: this operation's
    model lists that error, not ResourceUnavailableException as copies and bundles do."""
    if source.state != "AVAILABLE":
        raise InvalidResourceStateException(
            f"The image {source.image_id} is {source.state}; only an AVAILABLE image can be "
            "updated."
        )


def _source_backend(account_id: str, region: str) -> Backend:
    if not adapter.has_region(region, account_id):
        raise InvalidParameterValuesException(f"The SourceRegion {region} is not a valid Region.")
    return adapter.backend(region, account_id)


def _check_bundle_name(state: _RegionState, name: str, reuse_seconds: float) -> None:
    if any(b.name == name for b in state.bundles.values()):
        raise ResourceAlreadyExistsException(f"A bundle named {name} already exists.")
    deleted = state.deleted_bundle_names.get(name)
    if deleted is not None and time.monotonic() - deleted < reuse_seconds:
        raise ResourceAlreadyExistsException(
            f"A bundle named {name} was deleted recently; its name can be reused about "
            f"{reuse_seconds / 3600:g} hours after the deletion."
        )


def lifecycle_patches(handle: Fidelity) -> dict[str, Callable[..., Any]]:
    """The functions set on moto's WorkSpaces response class, as closures over the
    installed handle."""
    config = handle.config

    def copy_workspace_image(self: Response) -> Reply:
        """CopyWorkspaceImage, as the module docstring describes."""
        params = adapter.params(self)
        backend = adapter.workspaces_backend(self)
        name = valid(params.get("Name"), "WorkspaceImageName", "name")
        description = params.get("Description")
        if description is not None:
            valid(description, "WorkspaceImageDescription", "description")
        source_id = valid(params.get("SourceImageId"), "WorkspaceImageId", "sourceImageId")
        source_region = valid(params.get("SourceRegion"), "Region", "sourceRegion")
        source = _copy_source(backend, source_region, source_id)
        _check_image_name(backend, name)
        _check_image_quota(backend, config.image_quota)
        _require_available(source, "copied")
        image = adapter.new_image(
            backend,
            name,
            description or source.description,
            list(params.get("Tags") or []),
            "PENDING",
        )
        image.operating_system = dict(source.operating_system or {})
        image.required_tenancy = source.required_tenancy
        state = _state(backend)
        # no update offer is carried over: see "A copy does not inherit" in the module doc
        state.copy_sources[image.image_id] = (source_region, source_id)
        state.copy_source_accounts[image.image_id] = source.owner_account
        outcome = _planned_outcome(state.copy_failures, name)
        _start_capture(backend, image.image_id, None, config.capture_seconds, outcome)
        return adapter.reply({"ImageId": image.image_id})

    def create_updated_workspace_image(self: Response) -> Reply:
        """CreateUpdatedWorkspaceImage, as the module docstring describes."""
        params = adapter.params(self)
        backend = adapter.workspaces_backend(self)
        name = valid(params.get("Name"), "WorkspaceImageName", "name")
        description = valid(params.get("Description"), "WorkspaceImageDescription", "description")
        source_id = valid(params.get("SourceImageId"), "WorkspaceImageId", "sourceImageId")
        # the account's own image: one only shared with it -> AccessDeniedException, as for
        # every owner's operation (its owner updates it; the recipient copies it first)
        source = _image(backend, source_id, "update")
        _check_image_name(backend, name)
        _check_image_quota(backend, config.image_quota)
        _require_available_to_update(source)
        state = _state(backend)
        _require_update(state, source)
        tags = list(params.get("Tags") or [])
        image = adapter.new_image(backend, name, description, tags, "PENDING")
        image.operating_system = dict(source.operating_system or {})
        image.required_tenancy = source.required_tenancy
        state.updated_sources[image.image_id] = source_id
        outcome = _planned_outcome(state.update_failures, name)
        # no WorkSpace is captured: the source image stays as it is, offer included
        _start_capture(backend, image.image_id, None, config.capture_seconds, outcome)
        return adapter.reply({"ImageId": image.image_id})

    def update_workspace_image_permission(self: Response) -> Reply:
        """Grant or revoke one account's copy permission (module docstring)."""
        params = adapter.params(self)
        backend = adapter.workspaces_backend(self)
        image_id = valid(params.get("ImageId"), "WorkspaceImageId", "imageId")
        account = valid(params.get("SharedAccountId"), "AwsAccount", "sharedAccountId")
        allow = params.get("AllowCopyImage")
        if not isinstance(allow, bool):
            raise InvalidParameterValuesException("The AllowCopyImage parameter is required.")
        image = _image(backend, image_id, "share or unshare")
        if account == backend.account_id:
            raise InvalidParameterValuesException(
                f"The image {image_id} can't be shared with its own account {account}."
            )
        _require_available(image, "shared or unshared")
        permission = {"SharedAccountId": account}
        if allow and permission not in image.image_permissions:
            image.image_permissions.append(permission)
        if not allow and permission in image.image_permissions:
            image.image_permissions.remove(permission)
        return adapter.reply()

    def describe_workspace_image_permissions(self: Response) -> Reply:
        """Pages at 25 (MaxResults, NextToken); unknown image -> ResourceNotFoundException."""
        params = adapter.params(self)
        image_id = valid(params.get("ImageId"), "WorkspaceImageId", "imageId")
        image = _image(adapter.workspaces_backend(self), image_id, "read the permissions of")
        page, token = _page(
            list(image.image_permissions), "DescribeWorkspaceImagePermissions", params, "MaxResults"
        )
        reply: dict[str, Any] = {"ImageId": image_id, "ImagePermissions": page}
        if token:
            reply["NextToken"] = token
        return adapter.reply(reply)

    def create_workspace_bundle(self: Response) -> Reply:
        """CreateWorkspaceBundle, as the module docstring describes."""
        params = adapter.params(self)
        backend = adapter.workspaces_backend(self)
        name = valid(params.get("BundleName"), "WorkspaceBundleName", "bundleName")
        description = valid(
            params.get("BundleDescription"), "WorkspaceBundleDescription", "bundleDescription"
        )
        image_id = valid(params.get("ImageId"), "WorkspaceImageId", "imageId")
        compute = _compute_type(params.get("ComputeType"))
        user = _capacity(params.get("UserStorage"), "UserStorage", USER_STORAGE_GIB)
        root = DEFAULT_ROOT_STORAGE
        if params.get("RootStorage") is not None:
            root = _capacity(params["RootStorage"], "RootStorage", ROOT_STORAGE_GIB)
        image = _image(backend, image_id, "build a bundle from")
        state = _state(backend)
        _check_bundle_name(state, name, config.bundle_name_reuse_seconds)
        if len(state.bundles) >= config.bundle_quota:
            raise ResourceLimitExceededException(
                f"You have reached the limit of {config.bundle_quota} custom bundles in "
                f"{backend.region_name}."
            )
        _require_available(image, "used by a bundle")
        bundle = Bundle(
            bundle_id=new_bundle_id(state.bundles),
            name=name,
            owner=backend.account_id,
            description=description,
            image_id=image_id,
            compute_type=compute,
            user_storage=user,
            root_storage=root,
            tags=list(params.get("Tags") or []),
        )
        state.bundles[bundle.bundle_id] = bundle
        return adapter.reply({"WorkspaceBundle": bundle.to_dict()})

    def describe_workspace_bundles(self: Response) -> Reply:
        """BundleIds or Owner, pages of 25 (module docstring)."""
        params = adapter.params(self)
        backend = adapter.workspaces_backend(self)
        ids, owner = params.get("BundleIds"), params.get("Owner")
        own = list(_state(backend).bundles.values())
        if ids is not None and owner is not None:
            raise InvalidParameterValuesException(
                "BundleIds and Owner can't be combined; give one of them."
            )
        if ids is not None:
            if not 1 <= len(ids) <= MAX_IDS:
                raise InvalidParameterValuesException(
                    f"The BundleIds parameter accepts 1 to {MAX_IDS} values."
                )
            found = [b for b in own + list(_public(backend.region_name)) if b.bundle_id in ids]
        elif owner == PUBLIC_OWNER:
            found = list(_public(backend.region_name))
        else:
            found = own if owner in (None, backend.account_id) else []
        token_only = {"NextToken": params.get("NextToken")}
        page, token = _page(found, "DescribeWorkspaceBundles", token_only, "MaxResults")
        reply: dict[str, Any] = {"Bundles": [b.to_dict() for b in page]}
        if token:
            reply["NextToken"] = token
        return adapter.reply(reply)

    def update_workspace_bundle(self: Response) -> Reply:
        """Changes only the bundle's image, which must be AVAILABLE."""
        params = adapter.params(self)
        backend = adapter.workspaces_backend(self)
        bundle = _custom_bundle(_state(backend), params.get("BundleId"), backend.region_name)
        image_id = valid(params.get("ImageId"), "WorkspaceImageId", "imageId")
        _require_available(_image(backend, image_id, "build a bundle from"), "used by a bundle")
        bundle.image_id = image_id
        bundle.updated = time.time()
        return adapter.reply()

    def delete_workspace_bundle(self: Response) -> Reply:
        """Refused while a WorkSpace uses the bundle; its name stays taken for a while."""
        params = adapter.params(self)
        backend = adapter.workspaces_backend(self)
        state = _state(backend)
        bundle = _custom_bundle(state, params.get("BundleId"), backend.region_name)
        users = [
            w.workspace_id
            for w in backend.workspaces.values()
            if w.bundle_id == bundle.bundle_id and w.state != "TERMINATED"
        ]
        if users:
            raise ResourceAssociatedException(
                f"The bundle {bundle.bundle_id} is used by {len(users)} WorkSpace(s) "
                f"({', '.join(users[:5])}); terminate or rebuild them from another bundle "
                "first."
            )
        del state.bundles[bundle.bundle_id]
        state.deleted_bundle_names[bundle.name] = time.monotonic()
        return adapter.reply()

    return {
        "copy_workspace_image": copy_workspace_image,
        "create_updated_workspace_image": create_updated_workspace_image,
        "update_workspace_image_permission": update_workspace_image_permission,
        "describe_workspace_image_permissions": describe_workspace_image_permissions,
        "create_workspace_bundle": create_workspace_bundle,
        "describe_workspace_bundles": describe_workspace_bundles,
        "update_workspace_bundle": update_workspace_bundle,
        "delete_workspace_bundle": delete_workspace_bundle,
    }
