"""The image kind: images captured from a WorkSpace, and their copies in other regions.

A copy is an image too: identified by (region, name), owned under the same tag, judged the
same way; it is made by CopyWorkspaceImage from the image in its own region once that is
AVAILABLE, and waits for it.

- Plan: create (a capture, or a copy), no-op, update-tags, adopt, conflict (description
  differs, or ERROR: `--replace-failed` recreates an owned one), blocked (the source
  WorkSpace can't capture, the quota is reached, a copy's source can't be had).
- Create: with the declared tags and the ownership tag, settled against lost replies
  (`kinds.creating`). One capture per source WorkSpace at a time (`schedule`).
- Retag (update-tags, adopt): the tags are read again just before the change and the item
  planned again from them; only the reviewed changes still needed are written. Bundles
  share this (`confirm`, `retag`).
- Delete (prune, and the failed image of a replacement): a fresh DescribeTags read must
  show the image is still owned, else nothing is sent; a shared image has its sharing
  revoked first; an image a bundle uses is kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE
from reconciler.aws import IMAGE_RESOURCE, PAGE_SIZE, error_code, short_error
from reconciler.kinds import creating, ownership, share
from reconciler.kinds.base import (
    ApplyContext,
    ImageById,
    KindModule,
    Listed,
    Listing,
    Reading,
    Waited,
    image_key,
)
from reconciler.kinds.ownership import Ownership
from reconciler.live import Inventory, RegionInventory, Tags, owned
from reconciler.plan import (
    Action,
    Desired,
    ItemDetail,
    Key,
    Kind,
    Plan,
    PlanItem,
    Replan,
    Settings,
    Unmanaged,
    created_tags,
    fingerprint,
    in_scope,
    register_detail,
    tag_changes,
)
from reconciler.results import AppliedItem, AppliedUnmanaged, Result, item_result, unmanaged_result

if TYPE_CHECKING:
    from reconciler.aws import RegionClient
    from reconciler.specs import Spec

# --- the image's live state -------------------------------------------------------------


@dataclass(frozen=True)
class LiveImage:
    image_id: str
    name: str
    description: str
    state: str  # AVAILABLE, PENDING or ERROR
    tags: Tags
    created: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    # `Updates` of DescribeWorkspaceImages: whether AWS has newer WorkSpaces components for
    # the image (CreateUpdatedWorkspaceImage makes an image with them), and what they are;
    # None where the answer did not say.
    update_available: bool | None = None
    update_description: str | None = None

    @property
    def owned(self) -> bool:
        return owned(self.tags)


@dataclass(frozen=True)
class SourceWorkspace:
    workspace_id: str
    state: str | None  # None: no such WorkSpace in this account and region
    modifying: bool = False  # a modification (compute type, volume) is in progress


@dataclass(frozen=True)
class ImageLive:
    """The image kind's part of a region's live state."""

    images: Mapping[str, LiveImage] = field(default_factory=dict)  # by name; tags read
    image_count: int = 0  # every owned image in the region, for the quota
    sources: Mapping[str, SourceWorkspace] | None = None  # None: not read yet
    # Images other accounts share with this one, by (owner account, name): read only where
    # an import's source lies outside the run (ImageType=SHARED). Never the account's own.
    shared: Mapping[tuple[str, str], LiveImage] = field(default_factory=dict)


def live_of(inv: RegionInventory) -> ImageLive:
    """The images of a region's live state (none, where they were not read)."""
    return inv.part(ImageLive) or ImageLive()


# --- the image's own item fields -------------------------------------------------------


@register_detail(Kind.IMAGE)
class ImageDetail(ItemDetail):
    """What an image item has that other kinds' items lack (flat in its JSON)."""

    # The source WorkSpace of a capture (null for a copy); a copy's source region.
    source_workspace_id: str | None = None
    copy_from: str | None = None
    # An import's source account (a copy from another account's shared image, from its
    # region `copy_from`); null for every other image item. Additive: the source image's
    # name, and its id when the plan knows it (a source outside the run, shared already).
    source_account: str | None = None
    source_name: str | None = None
    source_image_id: str | None = None
    # An updated image's source: the name of the image spec it is made from with AWS's
    # updates (CreateUpdatedWorkspaceImage), in its own account and region; else null.
    updated_from: str | None = None
    # Additive fields (the contract allows them): what apply and the plan file rest on.
    description: str = ""
    source_state: str | None = None
    source_busy: bool = False
    stuck: bool = False
    # Additive: whether AWS has updates for the image (`Updates.UpdateAvailable`; null where
    # the image does not exist or the answer did not say), and their description.
    update_available: bool | None = None
    update_description: str | None = None

    def drifts(self) -> bool:
        return self.stuck

    def reviewed(self) -> dict[str, Any]:
        return {"source_busy": self.source_busy}


def detail_of(item: PlanItem) -> ImageDetail:
    """An image item's own fields."""
    assert isinstance(item.detail, ImageDetail), item.kind
    return item.detail


def is_copy(item: PlanItem) -> bool:
    """A copy or an import: an image made by CopyWorkspaceImage."""
    return isinstance(item.detail, ImageDetail) and item.detail.copy_from is not None


def import_reason(item: PlanItem, items: Sequence[PlanItem], names: Mapping[str, str]) -> PlanItem:
    """An import to create whose source the same run plans (many accounts, `fleet`): why it
    waits, if it does (the share it waits for, or the source image still to be made);
    `names` gives the accounts' names by id."""
    if not (is_import(item) and item.action is Action.CREATE):
        return item
    d = detail_of(item)
    if d.source_image_id is not None:
        return item
    key = (Kind.SHARE.value, d.source_account or "", d.copy_from or "", d.source_name)
    sharing = next((i for i in items if i.key == key), None)
    if sharing is None:
        return item
    source = names.get(d.source_account or "", d.source_account or "")
    to = item.account_name or item.account
    what = f"{d.source_name} ({d.copy_from})"
    shared_now = sharing.action is Action.NO_OP and sharing.image_state == "AVAILABLE"
    if shared_now:
        return item
    if any(c.account == item.account and c.after for c in share.detail_of(sharing).share_changes):
        reason = f"waits for {source} to share {what} with {to}"
    else:
        reason = f"waits for {what} of {source} to be AVAILABLE"
    return item.model_copy(update={"reason": reason})


def is_import(item: PlanItem) -> bool:
    return isinstance(item.detail, ImageDetail) and item.detail.source_account is not None


def is_capture(item: PlanItem) -> bool:
    """An image item made by CreateWorkspaceImage from its source WorkSpace."""
    d = item.detail
    return isinstance(d, ImageDetail) and d.copy_from is None and d.updated_from is None


def is_update(item: PlanItem) -> bool:
    """An image item made by CreateUpdatedWorkspaceImage from another image of its spec's
    account and region."""
    return isinstance(item.detail, ImageDetail) and item.detail.updated_from is not None


def made_by(item: PlanItem) -> str:
    """How an image item's image is made, as messages say it: capture, copy, import or
    update."""
    if is_update(item):
        return "update"
    return "import" if is_import(item) else "copy" if is_copy(item) else "capture"


def updates_due(plan: Plan) -> list[PlanItem]:
    """The declared images AWS has updates for (`Updates.UpdateAvailable`) that no image
    spec of their account and region declares an updated image of (`updated_from`)."""
    declared = {
        (i.account, i.region, d.updated_from)
        for i in plan.items
        if isinstance(d := i.detail, ImageDetail) and d.updated_from
    }
    return [
        i
        for i in plan.items
        if isinstance(d := i.detail, ImageDetail)
        and d.update_available
        and (i.account, i.region, i.name) not in declared
    ]


def update_hint(item: PlanItem) -> str:
    """What to do about an image AWS has updates for."""
    return f"AWS has updates for this image: declare an image with `updated_from: {item.name}`"


def stuck(item: PlanItem) -> bool:
    """A capture stuck in PENDING for over `STUCK_AFTER`."""
    return isinstance(item.detail, ImageDetail) and item.detail.stuck


# --- planning (pure) -------------------------------------------------------------------

STUCK_AFTER = timedelta(hours=2)  # a capture takes up to 45 minutes; 2 hours is stuck

# Source WorkSpace states. CreateWorkspaceImage needs the source AVAILABLE.
BLOCKING_STATES = {
    "TERMINATED": "was terminated; point the spec at another WorkSpace",
    "TERMINATING": "is being terminated; point the spec at another WorkSpace",
    "ERROR": "is in ERROR; repair or rebuild it, or point the spec at another WorkSpace",
    "STOPPED": "is STOPPED; start it first (aws workspaces start-workspaces)",
    "STOPPING": "is stopping; start it again first (aws workspaces start-workspaces)",
    "IMPAIRED": "is IMPAIRED; reboot it first",
    "UNHEALTHY": "is UNHEALTHY; reboot it first",
}
# Busy for now: the item stays a create, and apply defers it to a later run.
BUSY_STATES = frozenset(
    {
        "SUSPENDED",
        "STARTING",
        "REBOOTING",
        "UPDATING",
        "PENDING",
        "REBUILDING",
        "RESTORING",
        "MAINTENANCE",
        "ADMIN_MAINTENANCE",
    }
)


def plan(
    desired: Desired, inventory: Inventory, settings: Settings, earlier: tuple[PlanItem, ...]
) -> list[PlanItem]:
    """One image item per spec and region it lives in: its own region (a capture) and each
    of its copy regions (a copy of the capture)."""
    free = {
        r: settings.image_quota - live_of(inv).image_count for r, inv in inventory.regions.items()
    }
    items = []
    for spec in desired.images:
        region = desired.region_of(spec)
        own = plan_item(spec, region, inventory.regions[region], desired, now=settings.now)
        items.append(_within_quota(own, free, settings.image_quota))
        for copy_region in spec.copies:
            live = inventory.regions[copy_region]
            copy = plan_copy(spec, copy_region, own, live, settings)
            items.append(_within_quota(copy, free, settings.image_quota))
    return items


def _within_quota(item: PlanItem, free: dict[str, int], quota: int) -> PlanItem:
    if item.action is not Action.CREATE:
        return item
    free[item.region] -= 1
    if free[item.region] >= 0:
        return item
    reason = (
        f"the image quota of {item.region} ({quota}) is reached; delete unused images "
        "(apply --prune) or raise the quota and pass --image-quota"
    )
    return item.model_copy(update={"action": Action.BLOCKED, "reason": reason})


def plan_item(
    spec: Spec, region: str, live: RegionInventory, desired: Desired, *, now: datetime
) -> PlanItem:
    """The image in the spec's own region: captured from its source WorkSpace, or imported
    from another account's image shared with this one."""
    image = live_of(live).images.get(spec.name)
    if image is None and spec.source_image is not None:
        return _import_item(spec, region, live, desired)
    if image is None and spec.updated_from is not None:
        return _updated_item(spec, region, live)
    if image is None:
        source = (live_of(live).sources or {}).get(spec.source_workspace_id or "")
        return _create_item(spec, region, source)
    if spec.updated_from is not None:  # an updated image that exists: as any image
        return _existing(spec, region, image, now=now)
    if spec.source_image is not None:  # an import that exists: judged like any image
        return _existing(spec, region, image, now=now, imported=_source_of(spec, region))
    judged = _existing(spec, region, image, now=now)
    if judged.action is Action.CONFLICT and image.state == "ERROR" and image.owned:
        return _recapture(judged, spec, region, live)
    return judged


def plan_copy(
    spec: Spec, region: str, source: PlanItem, live: RegionInventory, settings: Settings
) -> PlanItem:
    """A copy of the spec's image in another region: made by CopyWorkspaceImage from the
    image in its own region (`source`, that image's item), once that is AVAILABLE."""
    image = live_of(live).images.get(spec.name)
    if image is not None:
        return _existing(spec, region, image, now=settings.now, copy_from=source.region)
    item = _item(spec, region, copy_from=source.region).model_copy(
        update={
            "action": Action.CREATE,
            "tag_changes": created_tags(spec),
            "image_state": source.state,
            "fingerprint": fingerprint(None, None, "copy", source.image_id, source.state),
        }
    )
    replaced = settings.replace_failed and source.state == "ERROR" and source.owned
    if source.is_error and not replaced:
        reason = (
            f"its source image in {source.region} is {source.action.value}: resolve that "
            "first (see its item)"
        )
        return item.model_copy(update={"action": Action.BLOCKED, "reason": reason})
    if source.action is Action.CREATE or replaced:
        why = "after the capture"
    elif source.state == "AVAILABLE":
        return item
    else:
        why = f"after the capture ({source.state or 'not AVAILABLE yet'})"
    return item.model_copy(update={"reason": why})


def _source_of(spec: Spec, region: str) -> tuple[str, str]:
    """An import's source: its account and region."""
    assert spec.source_image is not None
    return spec.source_image.account, spec.source_image.region or region


def _import_item(spec: Spec, region: str, live: RegionInventory, desired: Desired) -> PlanItem:
    """An import to create: CopyWorkspaceImage in this account from the source account's
    image, once that is AVAILABLE and shared with this account. A source account this run
    plans is waited for through its share item (apply orders them); one outside the run was
    looked up among the images shared with this account (`shared`): not there is blocked."""
    source = spec.source_image
    assert source is not None
    account, source_region = _source_of(spec, region)
    item = _item(spec, region, imported=(account, source_region)).model_copy(
        update={
            "action": Action.CREATE,
            "tag_changes": created_tags(spec),
            "fingerprint": fingerprint(None, None, "import", account, source_region, source.name),
        }
    )
    if account in desired.planned_accounts:
        return item
    shared = live_of(live).shared.get((account, source.name))
    if shared is None:
        whose = shown_source(source.account, source.account_name)
        how = (
            f"apply account {source.account_name} first (its share_with), or run both "
            "accounts together"
            if source.account_name
            else "ask that account to share it (UpdateWorkspaceImagePermission)"
        )
        reason = (
            f"image {source.name} of account {whose} is not shared with this account in "
            f"{source_region} yet: {how}"
        )
        return item.model_copy(update={"action": Action.BLOCKED, "reason": reason})
    update: dict[str, object] = {"source_image_id": shared.image_id, "image_state": shared.state}
    if shared.state != "AVAILABLE":
        update["reason"] = f"once the shared image is AVAILABLE ({shared.state})"
    update["fingerprint"] = fingerprint(None, None, "import", shared.image_id, shared.state)
    return item.updated(update)


def _updated_item(spec: Spec, region: str, live: RegionInventory) -> PlanItem:
    """An updated image to create: CreateUpdatedWorkspaceImage from the image of the spec
    it names, once that is AVAILABLE and AWS has updates for it. Blocked, before any call,
    when AWS reports none, or when the source failed."""
    source_name = spec.updated_from
    assert source_name is not None
    source = live_of(live).images.get(source_name)
    item = _item(spec, region).updated(
        {
            "action": Action.CREATE,
            "tag_changes": created_tags(spec),
            "image_state": source.state if source else None,
            "fingerprint": fingerprint(
                None,
                None,
                "update",
                source.image_id if source else None,
                source.state if source else None,
                source.update_available if source else None,
            ),
        }
    )
    if source is None:
        return item.updated({"reason": f"after the capture of {source_name} ({region})"})
    if source.state == "ERROR":
        reason = f"its source image {source_name} is in ERROR: resolve that first (see its item)"
        return item.updated({"action": Action.BLOCKED, "reason": reason})
    if source.state != "AVAILABLE":
        return item.updated({"reason": f"after {source_name} is AVAILABLE ({source.state})"})
    if source.update_available is False:
        reason = (
            f"AWS has no update for {source_name} ({region}): nothing to make an updated "
            "image with; keep the spec until AWS publishes updates, or remove it"
        )
        return item.updated({"action": Action.BLOCKED, "reason": reason})
    return item


def shown_source(account: str, name: str | None) -> str:
    return f"{name} ({account})" if name else account


def _existing(
    spec: Spec,
    region: str,
    image: LiveImage,
    *,
    now: datetime,
    copy_from: str | None = None,
    imported: tuple[str, str] | None = None,
) -> PlanItem:
    """An image that exists: judged against the spec, whether a capture, a copy or an
    import."""
    base = _item(spec, region, image=image, now=now, copy_from=copy_from, imported=imported)
    what = "copy" if copy_from else "import" if imported else "image"
    if image.state == "ERROR":
        detail = ": ".join(dict.fromkeys(x for x in (image.error_code, image.error_message) if x))
        if not image.owned:
            # Another team's image of the same name, perhaps: never deleted by this tool.
            reason = (
                f"{what} is in ERROR ({detail or 'no error detail'}) and does not carry the "
                "ownership tag, so the reconciler will not delete it; delete it yourself, or "
                "give the spec another name"
            )
            return base.model_copy(update={"action": Action.CONFLICT, "reason": reason})
        again = "copies it again" if copy_from or imported else "recreates it"
        reason = (
            f"{what} is in ERROR ({detail or 'no error detail'}); "
            f"`apply --replace-failed` deletes and {again}"
        )
        # What a replacement writes: the declared tags, on a new image.
        update: dict[str, object] = {"action": Action.CONFLICT, "reason": reason}
        if copy_from or imported:
            update["tag_changes"] = created_tags(spec)
        return base.model_copy(update=update)
    if image.description != spec.description:
        reason = (
            f"description differs (live: {image.description!r}); an image's description can't "
            "be changed in place: give the spec a new name to capture a new image"
        )
        return base.model_copy(update={"action": Action.CONFLICT, "reason": reason})
    changes = tag_changes(spec, image.tags)
    if not image.owned:
        reason = "exists without the ownership tag; apply adopts it and writes the declared tags"
        return base.model_copy(
            update={"action": Action.ADOPT, "tag_changes": changes, "reason": reason}
        )
    if changes:
        return base.model_copy(update={"action": Action.UPDATE_TAGS, "tag_changes": changes})
    return base


def _item(
    spec: Spec,
    region: str,
    *,
    image: LiveImage | None = None,
    now: datetime | None = None,
    copy_from: str | None = None,
    imported: tuple[str, str] | None = None,
) -> PlanItem:
    """`imported`: an import's source (account, region)."""
    if imported is not None:
        copy_from = imported[1]
    stuck = bool(
        image
        and now
        and image.state == "PENDING"
        and image.created
        and now - image.created > STUCK_AFTER
    )
    what = "copy" if copy_from else "update" if spec.updated_from else "capture"
    return PlanItem(
        action=Action.NO_OP,
        name=spec.name,
        region=region,
        image_id=image.image_id if image else None,
        state=image.state if image else None,
        spec_file=spec.file,
        spec_line=spec.line,
        detail=ImageDetail(
            source_workspace_id=None if copy_from else spec.source_workspace_id,
            copy_from=copy_from,
            source_account=imported[0] if imported else None,
            source_name=spec.source_image.name if imported and spec.source_image else None,
            updated_from=spec.updated_from,
            description=spec.description,
            stuck=stuck,
            update_available=image.update_available if image else None,
            update_description=image.update_description if image else None,
        ),
        owned=image.owned if image else None,
        fingerprint=_image_fingerprint(spec, image) if image else "",
        reason=f"{what} PENDING since {image.created:%Y-%m-%d %H:%M} UTC; stuck?"
        if stuck and image and image.created
        else None,
    )


def _recapture(item: PlanItem, spec: Spec, region: str, live: RegionInventory) -> PlanItem:
    """A failed image as `--replace-failed` would recapture it: with the declared tags, and,
    when its source was read (only for that option), judged as a create would be, so that
    a failed image is never deleted when its source can't capture a new one now."""
    sources = live_of(live).sources
    recapture = _create_item(spec, region, (sources or {}).get(spec.source_workspace_id or ""))
    update: dict[str, object] = {"tag_changes": recapture.tag_changes}
    if sources is None or spec.source_workspace_id not in sources:
        return item.model_copy(update=update)
    again = detail_of(recapture)
    update |= {"source_state": again.source_state, "source_busy": again.source_busy}
    if recapture.action is Action.BLOCKED:
        update |= {
            "action": Action.BLOCKED,
            "reason": f"{item.reason}; it can't be recaptured now: {recapture.reason}",
        }
    elif again.source_busy:
        update["reason"] = f"{item.reason}; {recapture.reason}"
    return item.updated(update)


def _image_fingerprint(spec: Spec, image: LiveImage) -> str:
    tags = {k: v for k, v in image.tags.items() if in_scope(spec, k) or k == OWNERSHIP_TAG_KEY}
    return fingerprint(image.image_id, image.state, tags)


def _create_item(spec: Spec, region: str, source: SourceWorkspace | None) -> PlanItem:
    base = _item(spec, region)
    update: dict[str, object] = {"action": Action.CREATE, "tag_changes": created_tags(spec)}
    ws = spec.source_workspace_id
    if source is not None:
        update["source_state"] = source.state
    update["fingerprint"] = fingerprint(
        None, None, ws, source.state if source else None, bool(source and source.modifying)
    )
    if source is None or source.state is None:
        update["action"] = Action.BLOCKED
        update["reason"] = (
            f"source WorkSpace {ws} not found in {region}; check the id and the region"
        )
    elif source.state in BLOCKING_STATES:
        update["action"] = Action.BLOCKED
        update["reason"] = f"source WorkSpace {ws} {BLOCKING_STATES[source.state]}"
    elif source.state in BUSY_STATES or source.modifying:
        state = source.state if source.state in BUSY_STATES else "being modified"
        update["source_busy"] = True
        update["reason"] = f"source WorkSpace {ws} is busy ({state}); apply defers this create"
    return base.updated(update)


def unmanaged(
    desired: Desired, inventory: Inventory, items: tuple[PlanItem, ...]
) -> list[Unmanaged]:
    """Owned images no spec declares (in its own region or as a copy); each with the
    bundles that use it (it is kept while they do)."""
    declared = {(i.region, i.name) for i in items if i.kind is Kind.IMAGE}
    return [
        Unmanaged(
            name=image.name,
            region=region,
            image_id=image.image_id,
            state=image.state,
            used_by=inv.image_users(image.image_id),
        )
        for region, inv in sorted(inventory.regions.items())
        for image in sorted(live_of(inv).images.values(), key=lambda i: i.name)
        if image.owned and (region, image.name) not in declared
    ]


def bundles_phrase(users: Sequence[str]) -> str:
    """Why an image is kept: "bundle X still uses it"."""
    if len(users) == 1:
        return f"bundle {users[0]} still uses it"
    return f"bundles {', '.join(users)} still use it"


def replan(
    item: PlanItem, tags: Mapping[str, str] | None, desired: Desired, settings: Settings
) -> PlanItem:
    """The item planned again from the image's fresh tags (None: the image is gone)."""
    spec = next(
        s
        for s in desired.images
        if s.name == item.name and item.region in (desired.region_of(s), *s.copies)
    )
    if tags is None or item.image_id is None:
        return item.model_copy(update={"action": Action.CREATE, "image_id": None})
    # Only tags are read again; the rest of the image is as listed for the plan (a
    # description that differs is a conflict, never an item apply changes).
    d = detail_of(item)
    image = LiveImage(
        image_id=item.image_id,
        name=item.name,
        description=spec.description,
        state=item.state or "",
        tags=dict(tags),
        update_available=d.update_available,
        update_description=d.update_description,
    )
    if d.source_account is not None:
        imported = (d.source_account, d.copy_from or item.region)
        return _existing(spec, item.region, image, now=settings.now, imported=imported)
    return _existing(spec, item.region, image, now=settings.now, copy_from=d.copy_from)


def waits_for(item: PlanItem) -> Waited | None:
    """A copy waits for its source image, AVAILABLE in its own region, and an updated image
    for its source in its own region; an import for the share that lets its account copy
    the source (a source this run plans), or for the shared image by its id (a source
    outside the run)."""
    d = detail_of(item)
    if d.updated_from is not None:  # the source image, in the same account and region
        return image_key(item.account, item.region, d.updated_from)
    if d.source_account is not None:
        if d.source_image_id is not None:
            return ImageById(d.copy_from or item.region, d.source_image_id)
        source = d.source_name or item.name
        return (Kind.SHARE.value, d.source_account, d.copy_from or item.region, source)
    return image_key(item.account, d.copy_from, item.name) if d.copy_from else None


# --- calls ------------------------------------------------------------------------------


def _errors(
    operation: str, specific: dict[str, tuple[Result, str]], *, quota: str, denied_also: str = ""
) -> dict[str, tuple[Result, str]]:
    """What to do about each documented error of an operation that makes an image: (result,
    hint). Its own errors, and those every such operation has."""
    return {
        "ResourceAlreadyExistsException": (Result.CONVERGED, ""),
        **specific,
        "ResourceLimitExceededException": (
            Result.FAILED,
            f"{quota} image quota is reached: delete unused images (apply --prune) or ask AWS "
            "to raise it",
        ),
        "AccessDeniedException": (
            Result.FAILED,
            f"the role lacks workspaces:{operation} (and workspaces:CreateTags{denied_also}): "
            "see the apply policy in the docs' IAM page (docs/iam.md)",
        ),
        "InvalidParameterValuesException": (
            Result.FAILED,
            "the service rejected a value in the spec: fix it as the message says",
        ),
    }


CREATE_ERRORS = _errors(
    "CreateWorkspaceImage",
    {
        "InvalidResourceStateException": (
            Result.DEFERRED,
            "the source WorkSpace is busy (an image of it may be capturing); run apply again later",
        ),
        "ResourceNotFoundException": (
            Result.FAILED,
            "the source WorkSpace no longer exists: point the spec at another WorkSpace",
        ),
        "OperationNotSupportedException": (
            Result.FAILED,
            "the service cannot image this WorkSpace (for example encrypted volumes, or a "
            "bundle type that can't be imaged): see the message and use another source",
        ),
    },
    quota="the region's",
)

COPY_ERRORS = _errors(
    "CopyWorkspaceImage",
    {
        "ResourceUnavailableException": (
            Result.DEFERRED,
            "the source image is not AVAILABLE yet; run apply again when it is, or use --wait",
        ),
        "ResourceNotFoundException": (
            Result.FAILED,
            "the source image no longer exists in its region: run plan again",
        ),
        "OperationNotSupportedException": (
            Result.FAILED,
            "the service can't copy this image there (China copies within its region only; "
            "GovCloud and opt-in regions need AWS support; BYOL images go to BYOL regions only)",
        ),
    },
    quota="the destination region's",
    denied_also=", workspaces:DescribeWorkspaceImages in the source region",
)

UPDATE_ERRORS = _errors(
    "CreateUpdatedWorkspaceImage",
    {
        "InvalidResourceStateException": (
            Result.DEFERRED,
            "the source image is not AVAILABLE yet; run apply again when it is, or use --wait",
        ),
        "OperationNotSupportedException": (
            Result.FAILED,
            "AWS can't update this image: only Windows images (10, 11, Server 2016-2022) are "
            "updated this way, and only when AWS reports updates for them (Windows and "
            "application updates are not part of it): capture a new image from a WorkSpace "
            "instead",
        ),
        "ResourceNotFoundException": (
            Result.FAILED,
            "the source image no longer exists: run plan again",
        ),
    },
    quota="the region's",
)


def apply(item: PlanItem, client: RegionClient, ctx: ApplyContext) -> AppliedItem:
    if ctx.plan.replaces(item):
        return replace(item, client, ctx)
    if item.action is Action.CREATE:
        return create(item, client, ctx)
    return confirmed_retag(item, client, ctx.replan)


def schedule(plan: Plan) -> frozenset[Key]:
    """The captures to send now: one per source WorkSpace and region, as the service captures
    one image of a WorkSpace at a time (it suspends the WorkSpace while it captures). Other
    items are not held back."""
    chosen: dict[tuple[str, str, str], Key] = {}
    for item in plan.items:
        if not is_capture(item):
            continue
        d = detail_of(item)
        makes = item.action is Action.CREATE or plan.replaces(item)
        if makes and not d.source_busy and d.source_workspace_id:
            chosen.setdefault((item.account or "", item.region, d.source_workspace_id), item.key)
    return frozenset(chosen.values())


def create(item: PlanItem, client: RegionClient, ctx: ApplyContext) -> AppliedItem:
    """Capture the image (or copy it, for a copy; update its source, for an updated image),
    unless its source is busy or another capture of the same source goes first."""
    d = detail_of(item)
    if d.copy_from is not None:
        return creating.create(item, _copy_call(item, client, ctx))
    if d.updated_from is not None:
        return creating.create(item, _update_call(item, client, ctx))
    if d.source_busy:
        return item_result(item, Result.DEFERRED, item.reason)
    if item.key not in ctx.go_now:
        reason = (
            f"another image of {d.source_workspace_id} is captured first (one capture per "
            "WorkSpace at a time); run apply again when it is done, or use --wait"
        )
        return item_result(item, Result.DEFERRED, reason)
    return creating.create(item, _capture_call(item, client))


def _capture_call(item: PlanItem, client: RegionClient) -> creating.Create:
    def send() -> creating.Made:
        # Never retried by botocore (`creates`): a lost reply is settled by a lookup.
        reply = client.creates.create_workspace_image(
            Name=item.name,
            Description=detail_of(item).description,
            WorkspaceId=detail_of(item).source_workspace_id or "",
            Tags=creating.tag_list(_declared_and_owned(item)),
        )
        return {"image_id": reply.get("ImageId"), "state": reply.get("State")}

    return creating.Create(send, lambda: _find(client, item.name), CREATE_ERRORS, "image")


def _copy_call(item: PlanItem, client: RegionClient, ctx: ApplyContext) -> creating.Create:
    """CopyWorkspaceImage, called in the destination region, from the source image (its id
    in `ctx`, resolved by the engine once the source is AVAILABLE)."""
    d = detail_of(item)
    assert d.copy_from is not None
    assert ctx.image_id is not None

    def send() -> creating.Made:
        reply = client.creates.copy_workspace_image(
            Name=item.name,
            Description=d.description,
            SourceImageId=ctx.image_id or "",
            SourceRegion=d.copy_from or "",
            # Whether the service copies tags is undocumented: the declared ones are passed.
            Tags=creating.tag_list(_declared_and_owned(item)),
        )
        return {"image_id": reply.get("ImageId"), "state": "PENDING"}

    return creating.Create(send, lambda: _find(client, item.name), COPY_ERRORS, "copy")


def _update_call(item: PlanItem, client: RegionClient, ctx: ApplyContext) -> creating.Create:
    """CreateUpdatedWorkspaceImage from the source image (its id in `ctx`, resolved by the
    engine once the source is AVAILABLE), in the same region."""
    assert ctx.image_id is not None

    def send() -> creating.Made:
        reply = client.creates.create_updated_workspace_image(
            Name=item.name,
            Description=detail_of(item).description,
            SourceImageId=ctx.image_id or "",
            Tags=creating.tag_list(_declared_and_owned(item)),
        )
        return {"image_id": reply.get("ImageId"), "state": "PENDING"}

    return creating.Create(send, lambda: _find(client, item.name), UPDATE_ERRORS, "update")


def _declared_and_owned(item: PlanItem) -> dict[str, str]:
    tags = {c.key: c.after for c in item.tag_changes if c.after is not None}
    tags[OWNERSHIP_TAG_KEY] = OWNERSHIP_TAG_VALUE
    return tags


def create_now(item: PlanItem, client: RegionClient, ctx: ApplyContext) -> AppliedItem:
    """Send a deferred capture now that its source WorkSpace is free (`apply --wait`); a
    deferred replacement whose failed image is still there deletes it first."""
    plain = PlanItem(**item.model_dump(include=set(PlanItem.model_fields)))
    plain = plain.updated({"source_busy": False})
    ctx = dataclasses.replace(ctx, go_now=ctx.go_now | {plain.key})
    if plain.action is Action.CONFLICT and plain.state == "ERROR" and plain.image_id:
        return replace(plain, client, ctx)
    return create(plain, client, ctx)


def replace(item: PlanItem, client: RegionClient, ctx: ApplyContext) -> AppliedItem:
    """Delete a failed (ERROR) image, then capture, copy or update it again."""
    d = detail_of(item)
    if d.source_busy:  # keep the failed image until its source can capture a new one
        return item_result(item, Result.DEFERRED, item.reason)
    if is_capture(item) and item.key not in ctx.go_now:
        return item_result(
            item, Result.DEFERRED, "another capture of the same WorkSpace goes first"
        )
    if not is_capture(item) and ctx.image_id is None:
        source = d.updated_from or f"in {d.copy_from}"
        return item_result(item, Result.DEFERRED, f"its source image {source} is not AVAILABLE yet")
    assert item.image_id is not None  # an ERROR conflict is an existing image
    refused = _delete_owned(client, item.image_id)
    if refused is not None and refused is not _GONE:
        return item_result(item, Result.FAILED, f"the failed image was not deleted: {refused}")
    return create(item.model_copy(update={"image_id": None, "state": None}), client, ctx)


def delete(u: Unmanaged, client: RegionClient, ctx: ApplyContext) -> AppliedUnmanaged:
    """Delete an unmanaged image the plan shows deleted, once a fresh read shows it owned;
    never one a bundle still uses; its sharing is revoked first."""
    assert u.image_id is not None
    users = ctx.in_use.get((u.region, u.image_id), ())
    if users:  # the plan foresaw otherwise: a bundle's move to another image did not happen
        return unmanaged_result(u, Result.UNCHANGED, f"kept: {bundles_phrase(users)}")
    if u.state == "PENDING":
        return unmanaged_result(
            u,
            Result.SKIPPED,
            "still PENDING: the service can't delete it until the capture ends; prune it later",
        )
    refused = _delete_owned(client, u.image_id)
    if refused is _GONE:
        return unmanaged_result(
            u, Result.UNCHANGED, "already gone when read just before the deletion"
        )
    if refused is _NOT_OWNED:
        return unmanaged_result(u, Result.SKIPPED, refused)
    return (
        unmanaged_result(u, Result.FAILED, refused)
        if refused
        else unmanaged_result(u, Result.DELETED)
    )


# Why the service refuses to delete an image, and what to do about it.
DELETE_HINTS = {
    "ResourceAssociatedException": "a bundle uses this image: delete the bundle or move it to "
    "another image first",
    "InvalidResourceStateException": "the image is still PENDING, or shared with other "
    "accounts: wait for the capture to end, or remove the sharing "
    "(UpdateWorkspaceImagePermission) first",
    "AccessDeniedException": "the role lacks workspaces:DeleteWorkspaceImage",
}


_GONE = "the image no longer exists"
_NOT_OWNED = (
    "no longer carries the ownership tag (read just before the deletion), so it was not "
    "deleted; run plan again"
)


def _delete_owned(client: RegionClient, image_id: str) -> str | None:
    """Delete an image that a fresh tag read shows is still owned.

    Returns None when deleted, `_GONE` or `_NOT_OWNED` (nothing sent), or an error message
    with a hint."""
    found = ownership.confirm(client, image_id)
    if isinstance(found, str):
        return f"its ownership could not be confirmed ({found}); run apply again"
    if found is not Ownership.OWNED:
        return _GONE if found is Ownership.GONE else _NOT_OWNED
    try:
        _delete_unshared(client, image_id)
    except creating.AWS_FAILURES as err:
        hint = DELETE_HINTS.get(error_code(err) or "", "see the AWS message")
        return f"{short_error(err)} (hint: {hint})"
    return None


def _delete_unshared(client: RegionClient, image_id: str) -> None:
    """DeleteWorkspaceImage; an image still shared is refused (InvalidResourceState), so its
    sharing is revoked and the delete sent again. Asking first would cost a permission read
    for every deletion; an image that was never shared costs none this way."""
    try:
        client.reads.delete_workspace_image(ImageId=image_id)
        return
    except botocore.exceptions.ClientError as err:
        if error_code(err) != "InvalidResourceStateException":
            raise
        if not share.revoke_all(client, image_id):
            raise
    client.reads.delete_workspace_image(ImageId=image_id)


def _find(client: RegionClient, name: str) -> creating.Made | None:
    found = next((i for i in client.images() if i.get("Name") == name), None)
    return {"image_id": found["ImageId"], "state": found.get("State")} if found else None


def confirmed_retag(item: PlanItem, client: RegionClient, replan: Replan | None) -> AppliedItem:
    """Update tags or adopt, after reading the resource's tags again (DescribeTags).

    The plan's tags may be stale: the tagging API is eventually consistent, and others write
    tags too. The item is planned again from the fresh tags; only the reviewed tag changes
    that are still needed are written. A resource no longer needing them is `unchanged`; one
    whose ownership changed is left alone (never adopted or retagged on stale ownership).
    Images and bundles alike: `resource_id` is the image's or the bundle's id."""
    confirmed = confirm(item, client, replan)
    if isinstance(confirmed, AppliedItem):
        return confirmed
    planned, unseen = confirmed
    if planned.action is Action.ADOPT or planned.tag_changes:
        done = retag(planned, client)
    else:
        done = item_result(planned, Result.UNCHANGED)
    return with_unseen(done, unseen)


def resource_id(item: PlanItem) -> str:
    found = item.resource_id
    assert found is not None  # changes in place are for existing resources
    return found


def confirm(
    item: PlanItem, client: RegionClient, replan: Replan | None
) -> AppliedItem | tuple[PlanItem, list[str]]:
    """The item as still needed after a fresh DescribeTags, with only the reviewed tag
    changes, and the keys that changed since unseen; or its result when nothing is to be
    written (unchanged, changed since the plan, gone, unreadable)."""
    what = item.kind.value
    try:
        tags = client.tags(resource_id(item))
    except creating.AWS_FAILURES as err:
        return item_result(
            item, Result.FAILED, f"its tags could not be read again ({short_error(err)})"
        )
    if tags is None:
        return item_result(
            item, Result.FAILED, f"the {what} was deleted since the plan; run plan again"
        )
    fresh = replan(item, tags) if replan else _replan_strict(item, tags)
    if fresh.action is Action.NO_OP:
        return item_result(
            item.model_copy(update={"tag_changes": ()}),
            Result.UNCHANGED,
            None,
            reason="already as declared when its tags were read again just before the change",
        )
    # The fresh read is the truth: an adoption whose resource turns out to be owned already
    # is carried out as the change its tags call for, when the plan showed that change (a
    # bundle's move to its image, a retag).
    same = (
        fresh.action is item.action
        or (
            item.action in (Action.ADOPT, Action.UPDATE_IMAGE)
            and fresh.action is Action.UPDATE_TAGS
        )
        or (
            item.action is Action.ADOPT
            and fresh.action is Action.UPDATE_IMAGE
            and item.detail.leaves_image(item) is not None
        )
    )
    if not same:
        return item_result(
            item,
            Result.FAILED,
            f"the {what} changed since the plan (it now calls for {fresh.action.value}): "
            "nothing was written; run plan again",
        )
    # A reviewed change is a key and the value it gets (or its removal), whatever value the
    # plan saw before it.
    reviewed = {(c.key, c.after) for c in item.tag_changes}
    writes = tuple(c for c in fresh.tag_changes if (c.key, c.after) in reviewed)
    unseen = [c.key for c in fresh.tag_changes if (c.key, c.after) not in reviewed]
    action = item.action if item.action is Action.UPDATE_IMAGE else fresh.action
    return item.model_copy(update={"action": action, "tag_changes": writes}), unseen


def with_unseen(done: AppliedItem, unseen: list[str]) -> AppliedItem:
    if unseen and done.result is not Result.FAILED:
        note = (
            f"tags changed since the plan: {', '.join(sorted(unseen))} now differ too; they "
            "were not in the reviewed plan: the next plan shows them"
        )
        return done.model_copy(update={"result": Result.DEFERRED, "error": note, "next_run": True})
    return done


def _replan_strict(item: PlanItem, tags: Mapping[str, str]) -> PlanItem:
    """Without the specs: the item as planned if the tags are as the plan saw them, else a
    conflict (nothing is written on tags the plan did not see)."""
    before = {c.key: c.before for c in item.tag_changes}
    still = all(tags.get(k) == v for k, v in before.items())
    is_owned = tags.get(OWNERSHIP_TAG_KEY) == OWNERSHIP_TAG_VALUE
    if still and is_owned == (item.action is not Action.ADOPT):
        return item
    return item.model_copy(update={"action": Action.CONFLICT})


def retag(item: PlanItem, client: RegionClient) -> AppliedItem:
    """Write the item's tag changes (and, to adopt, the ownership tag)."""
    upserts = {c.key: c.after for c in item.tag_changes if c.after is not None}
    removals = [c.key for c in item.tag_changes if c.after is None]
    if item.action is Action.ADOPT:
        upserts[OWNERSHIP_TAG_KEY] = OWNERSHIP_TAG_VALUE
    target = resource_id(item)
    try:
        # Write before deleting: an interrupted adopt leaves extra tags, never missing ones.
        if upserts:
            client.reads.create_tags(ResourceId=target, Tags=creating.tag_list(upserts))
        if removals:
            client.reads.delete_tags(ResourceId=target, TagKeys=sorted(removals))
    except creating.AWS_FAILURES as err:
        code = error_code(err)
        hint = (
            "the role lacks workspaces:CreateTags / workspaces:DeleteTags"
            if code == "AccessDeniedException"
            else "run apply again"
        )
        return item_result(item, Result.FAILED, f"{short_error(err)} (hint: {hint})")
    return item_result(item, Result.ADOPTED if item.action is Action.ADOPT else Result.TAGS_UPDATED)


# --- reading (the image kind's part of a region's live state) ----------------------------


def list_images(reading: Reading) -> Listing:
    """The account's own images in the region (every one: the quota counts them), judging
    those of the specs that live here in a --target run, else all (to find unmanaged ones)."""
    listed = [
        Listed(IMAGE_RESOURCE, i["ImageId"], i.get("Name", ""), i.get("OwnerAccountId"), i)
        for i in reading.client.images()
    ]
    if not reading.targeted:
        return Listing(listed, listed)
    region, desired = reading.client.region, reading.desired
    names = {s.name for s in desired.images if region in (desired.region_of(s), *s.copies)}
    return Listing(listed, [i for i in listed if i.name in names])


def observe(
    reading: Reading,
    inv: RegionInventory,
    listing: Listing | None,
    tags: Mapping[str, Tags | None],
) -> RegionInventory:
    """The images with their tags, the count for the quota, and the source WorkSpaces of
    the captures to make."""
    assert listing is not None  # images are listed in every region read
    # None: deleted between the listing and its tag read (a paced plan takes minutes), so
    # the plan must not count it.
    images = [
        live_image(i.raw, t) for i in listing.judged if (t := tags[i.resource_id]) is not None
    ]
    gone = len(listing.judged) - len(images)
    live = ImageLive({i.name: i for i in images}, len(listing.listed) - gone)
    region = inv.region
    sources = read_sources(reading.client, _sources(reading, region, live))
    shared = _shared(reading, region, live)
    return inv.with_part(dataclasses.replace(live, sources=sources, shared=shared))


def _shared(reading: Reading, region: str, live: ImageLive) -> dict[tuple[str, str], LiveImage]:
    """The images other accounts share with this one here, by (owner, name): read
    (DescribeWorkspaceImages, ImageType=SHARED, 25 a page) only where an import yet to be
    made copies from an account outside the run; no call otherwise."""
    desired = reading.desired
    owners = {
        s.source_image.account
        for s in desired.images
        if s.source_image is not None
        and s.source_image.account not in desired.planned_accounts
        and (s.source_image.region or desired.region_of(s)) == region
        and not (desired.region_of(s) == region and s.name in live.images)
    }
    if not owners:
        return {}
    listed = reading.client.pages(
        "describe_workspace_images", "Images", ImageType="SHARED", MaxResults=PAGE_SIZE
    )
    return {
        (owner, image.get("Name", "")): live_image(image, {})
        for image in listed
        if (owner := image.get("OwnerAccountId", "")) in owners
    }


def _sources(reading: Reading, region: str, live: ImageLive) -> set[str]:
    """Only the sources of creates (and, for --replace-failed, of recaptures: owned images
    in ERROR, the only ones replaced) are described: that is the preflight."""
    own = [s for s in reading.desired.images if reading.desired.region_of(s) == region]
    return {
        s.source_workspace_id
        for s in own
        if s.source_workspace_id is not None  # an import has no WorkSpace to describe
        and (
            (image := live.images.get(s.name)) is None
            or (reading.recapture_failed and image.state == "ERROR" and image.owned)
        )
    }


def read_sources(
    client: RegionClient, workspace_ids: Collection[str]
) -> dict[str, SourceWorkspace]:
    """The state of each source WorkSpace; a missing one has state None."""
    ids = sorted(set(workspace_ids))
    found = {w["WorkspaceId"]: w for w in client.workspaces(ids)} if ids else {}
    sources = {}
    for ws_id in ids:
        ws = found.get(ws_id)
        sources[ws_id] = SourceWorkspace(
            ws_id,
            ws.get("State") if ws else None,
            bool(ws.get("ModificationStates")) if ws else False,
        )
    return sources


def live_image(image: Mapping[str, Any], tags: Tags) -> LiveImage:
    created = image.get("Created")
    code = image.get("ErrorCode") or None
    # error_detail starts with the code: the message is what follows it.
    message = error_detail(image).removeprefix(code or "").removeprefix(": ") or None
    updates = image.get("Updates")
    updates = updates if isinstance(updates, Mapping) else {}
    available = updates.get("UpdateAvailable")
    return LiveImage(
        image_id=image["ImageId"],
        name=image.get("Name", ""),
        description=image.get("Description", ""),
        state=image.get("State", ""),
        tags=tags,
        # botocore hands timestamps in the machine's local zone (tzlocal): held in UTC, as
        # every time the reconciler prints is labelled.
        created=created.astimezone(timezone.utc) if isinstance(created, datetime) else None,
        error_code=code,
        error_message=message,
        update_available=available if isinstance(available, bool) else None,
        update_description=(updates.get("Description") or None) if available else None,
    )


def error_detail(image: Mapping[str, Any]) -> str:
    """What the service says went wrong with an image in ERROR: `ErrorCode` and
    `ErrorMessage`, and the entries of `ErrorDetails` (newer answers may carry only those)."""
    parts = [image.get("ErrorCode"), image.get("ErrorMessage")]
    for detail in image.get("ErrorDetails") or ():
        if isinstance(detail, Mapping):
            parts += [detail.get("ErrorCode"), detail.get("ErrorMessage")]
    return ": ".join(dict.fromkeys(str(p) for p in parts if p))


KIND = KindModule(
    kind=Kind.IMAGE,
    plan=plan,
    unmanaged=unmanaged,
    replan=replan,
    waits_for=waits_for,
    apply=apply,
    delete=delete,
    schedule=schedule,
    arn_type=IMAGE_RESOURCE,
    list=list_images,
    observe=observe,
)
