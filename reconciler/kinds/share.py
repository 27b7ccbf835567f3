"""The share kind: the accounts an image (and each of its copies) is shared with.

- Plan: one `share` item per region the image lives in, only for specs that declare
  `share_with` (absent: sharing is not managed, never read nor changed). `update-sharing`
  lists `+ account` / `- account`; `no-op` when the live set is the declared one.
- Waits for: its image, AVAILABLE in the share's region (the service shares only those).
- Apply: the image's tags are read again (DescribeTags) to confirm it is still owned (not
  for an image this run created), then one UpdateWorkspaceImagePermission per account
  (`AllowCopyImage` true grants, false revokes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from reconciler.aws import PAGE_SIZE, short_error
from reconciler.kinds import creating, ownership
from reconciler.kinds import image as image_kind
from reconciler.kinds.base import ApplyContext, KindModule, Listing, Reading, Waited, image_key
from reconciler.kinds.ownership import Ownership
from reconciler.live import Inventory, RegionInventory, Tags, owned
from reconciler.plan import (
    Action,
    Desired,
    ItemDetail,
    Kind,
    PlanItem,
    Settings,
    Unmanaged,
    fingerprint,
    register_detail,
)
from reconciler.results import AppliedItem, Result, item_result

if TYPE_CHECKING:
    from reconciler.aws import RegionClient


class ShareChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    account: str
    before: bool
    after: bool


@register_detail(Kind.SHARE)
class ShareDetail(ItemDetail):
    """What a share item has that other kinds' items lack (flat in its JSON)."""

    has_state: ClassVar[bool] = False  # a share has no state of its own
    # One entry per account whose sharing changes.
    share_changes: tuple[ShareChange, ...] = ()

    def reviewed(self) -> dict[str, Any]:
        return {"share_changes": [c.model_dump() for c in self.share_changes]}


@dataclass(frozen=True)
class ShareLive:
    """The share kind's part of a region's live state: the accounts each image is shared
    with, read only for images whose spec declares `share_with` (by image id)."""

    shares: Mapping[str, frozenset[str]] = field(default_factory=dict)


def live_of(inv: RegionInventory) -> ShareLive:
    return inv.part(ShareLive) or ShareLive()


def detail_of(item: PlanItem) -> ShareDetail:
    """A share item's own fields."""
    assert isinstance(item.detail, ShareDetail), item.kind
    return item.detail


def plan(
    desired: Desired, inventory: Inventory, settings: Settings, earlier: tuple[PlanItem, ...]
) -> list[PlanItem]:
    images = {(i.region, i.name): i for i in earlier if i.kind is Kind.IMAGE}
    items = []
    for spec in desired.images:
        if spec.share_with is None:
            continue
        for region in (desired.region_of(spec), *spec.copies):
            image = images[(region, spec.name)]
            live = live_of(inventory.regions[region]).shares
            items.append(_share_item(image, frozenset(spec.share_with), live))
    return items


def _share_item(
    image: PlanItem, declared: frozenset[str], live: Mapping[str, frozenset[str]]
) -> PlanItem:
    exists = image.image_id is not None and image.action is not Action.CREATE
    # Read only for AVAILABLE images; a new, PENDING or failed one is shared with nobody.
    before = live.get(image.image_id or "", frozenset()) if exists else frozenset()
    changes = tuple(
        ShareChange(account=a, before=a in before, after=a in declared)
        for a in sorted(before ^ declared)
    )
    reason = None
    if changes and image.is_error:
        reason = f"waits for its image, which is {image.action.value}: see its item"
    elif changes and image.state != "AVAILABLE":
        made = {"capture": "being captured", "copy": "to be copied"}.get(
            image_kind.made_by(image), "to be imported"
        )
        state = image.state or made
        reason = f"once the image is AVAILABLE ({state})"
    return PlanItem(
        kind=Kind.SHARE,
        action=Action.UPDATE_SHARING if changes else Action.NO_OP,
        name=image.name,
        region=image.region,
        image_id=image.image_id if exists else None,
        spec_file=image.spec_file,
        spec_line=image.spec_line,
        detail=ShareDetail(share_changes=changes),
        reason=reason,
        owned=image.owned,
        image_state=image.state if exists else None,
        fingerprint=fingerprint(image.image_id, sorted(before)),
    )


def unmanaged(
    desired: Desired, inventory: Inventory, items: tuple[PlanItem, ...]
) -> list[Unmanaged]:
    """Shares are not resources of their own: an unmanaged image's sharing is revoked when
    the image is deleted (`kinds.image.delete`)."""
    return []


def replan(
    item: PlanItem, tags: Mapping[str, str] | None, desired: Desired, settings: Settings
) -> PlanItem:
    """A share is changed only on an image still owned (read just before the change)."""
    if tags is None or not owned(tags):
        return item.model_copy(update={"action": Action.CONFLICT})
    return item


def waits_for(item: PlanItem) -> Waited | None:
    return image_key(item.account, item.region, item.name)


def apply(item: PlanItem, client: RegionClient, ctx: ApplyContext) -> AppliedItem:
    image_id = ctx.image_id or item.image_id
    assert image_id is not None  # the engine runs a share once its image is AVAILABLE
    if item.image_id is not None:  # an image this run did not create: confirm it is ours
        refused = _not_owned(client, image_id)
        if refused:
            return item_result(item, Result.FAILED, refused)
    # Each account is its own call: one refused (an account outside the organisation, say)
    # does not keep the others from their grants and revocations.
    done: list[str] = []
    failed: list[str] = []
    for change in detail_of(item).share_changes:
        if client.stop.is_set():
            failed.append(f"{_signed(change)}: not sent, interrupted")
            continue
        try:
            client.reads.update_workspace_image_permission(
                ImageId=image_id, AllowCopyImage=change.after, SharedAccountId=change.account
            )
        except creating.AWS_FAILURES as err:
            failed.append(f"{_signed(change)}: {short_error(err)}")
            continue
        done.append(_signed(change))
    if failed:
        made = f"; done: {', '.join(done)}" if done else ""
        return item_result(item, Result.FAILED, "; ".join(failed) + made, image_id=image_id)
    return item_result(item, Result.SHARING_UPDATED, image_id=image_id)


def _signed(change: ShareChange) -> str:
    return ("+" if change.after else "-") + change.account


def _not_owned(client: RegionClient, image_id: str) -> str | None:
    found = ownership.confirm(client, image_id)
    if isinstance(found, str):
        return f"its image's ownership could not be confirmed ({found})"
    if found is Ownership.GONE:
        return "the image was deleted since the plan; run plan again"
    if found is Ownership.NOT_OWNED:
        return (
            "the image no longer carries the ownership tag (read just before the change), so "
            "its sharing was not changed; run plan again"
        )
    return None


# --- reading ----------------------------------------------------------------------------


def observe(
    reading: Reading,
    inv: RegionInventory,
    listing: Listing | None,
    tags: Mapping[str, Tags | None],
) -> RegionInventory:
    """The accounts each image here is shared with: only images whose spec declares
    `share_with` (a spec without it never costs a permission call) and that are AVAILABLE
    (the service shares only those)."""
    region, desired = reading.client.region, reading.desired
    ids = sorted(
        image.image_id
        for s in desired.images
        if s.share_with is not None
        and region in (desired.region_of(s), *s.copies)
        and (image := image_kind.live_of(inv).images.get(s.name)) is not None
        and image.state == "AVAILABLE"
    )
    found = reading.client.map(lambda i: accounts(reading.client, i), ids)
    return inv.with_part(ShareLive(dict(zip(ids, found, strict=True))))


def accounts(client: RegionClient, image_id: str) -> frozenset[str]:
    """The accounts an image is shared with: DescribeWorkspaceImagePermissions, 25 a page."""
    permissions = client.pages(
        "describe_workspace_image_permissions",
        "ImagePermissions",
        ImageId=image_id,
        MaxResults=PAGE_SIZE,
    )
    return frozenset(p["SharedAccountId"] for p in permissions)


def revoke_all(client: RegionClient, image_id: str) -> int:
    """Stop sharing an image with every account (before it is deleted); how many there
    were."""
    shared = accounts(client, image_id)
    for account in sorted(shared):
        client.reads.update_workspace_image_permission(
            ImageId=image_id, AllowCopyImage=False, SharedAccountId=account
        )
    return len(shared)


KIND = KindModule(
    kind=Kind.SHARE,
    plan=plan,
    unmanaged=unmanaged,
    replan=replan,
    waits_for=waits_for,
    apply=apply,
    observe=observe,
)
