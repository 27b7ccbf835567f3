"""The bundle kind: custom bundles that WorkSpaces launch from, and the rollout of a new
image to them.

- Identity: (region, name) among the account's own bundles; owned under the ownership tag.
  Bundles are read only where specs declare bundles or owned bundles were found.
- Plan: create; `update-image` (the bundle uses another image than the declared one: the
  rollout); update-tags; adopt; conflict (compute type, a volume or the description differs:
  none can change in place; or the bundle is in ERROR); blocked (its image can't be had, or
  the region's 50 custom bundles are reached).
- Waits for: its image AVAILABLE in the bundle's region (the capture or one of its copies),
  for a create or an image change; a tag change waits for nothing.
- Apply: CreateWorkspaceBundle with the declared and ownership tags, settled against lost
  replies; UpdateWorkspaceBundle and tag writes after a fresh DescribeTags confirms the item;
  DeleteWorkspaceBundle (prune) after a fresh read shows it owned. Bundles are deleted
  before images, so an image is free once its unmanaged bundles are gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE
from reconciler.aws import BUNDLE_RESOURCE, PAGE_SIZE, error_code, short_error
from reconciler.kinds import creating, ownership
from reconciler.kinds import image as image_kind
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
from reconciler.kinds.image import LiveImage, confirm, live_image, made_by, retag, with_unseen
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
    created_tags,
    fingerprint,
    in_scope,
    register_detail,
    tag_changes,
)
from reconciler.results import AppliedItem, AppliedUnmanaged, Result, item_result, unmanaged_result

if TYPE_CHECKING:
    from reconciler.aws import RegionClient
    from reconciler.specs import BundleSpec


@dataclass(frozen=True)
class LiveBundle:
    bundle_id: str
    name: str
    description: str
    image_id: str
    compute_type: str
    user_volume_gib: int | None
    root_volume_gib: int | None
    state: str  # AVAILABLE, PENDING or ERROR
    tags: Tags

    @property
    def owned(self) -> bool:
        return owned(self.tags)


@dataclass(frozen=True)
class BundleLive:
    """The bundle kind's part of a region's live state. Bundles are read only in regions
    where specs declare bundles or owned resources were found: no part (`bundles` None)
    means not read, and so none judged, none unmanaged."""

    bundles: Mapping[str, LiveBundle] | None = None  # by name
    bundle_count: int = 0  # the account's custom bundles in the region, for the quota
    # Images that bundle specs name by `image_id` and that are not among the owned ones
    # (shared with the account, or public), by id; None: no such image.
    referenced: Mapping[str, LiveImage | None] = field(default_factory=dict)

    def users_of(self, image_id: str) -> Iterable[str]:
        """The bundles found using an image (`live.UsesImages`)."""
        return [b.name for b in (self.bundles or {}).values() if b.image_id == image_id]


def live_of(inv: RegionInventory) -> BundleLive:
    return inv.part(BundleLive) or BundleLive()


def image_by_id(inv: RegionInventory, image_id: str) -> LiveImage | None:
    """An image of the region by its id: an owned one, or one a bundle spec names."""
    images = image_kind.live_of(inv).images.values()
    found = next((i for i in images if i.image_id == image_id), None)
    return found or live_of(inv).referenced.get(image_id)


@register_detail(Kind.BUNDLE)
class BundleDetail(ItemDetail):
    """What a bundle item has that other kinds' items lack (flat in its JSON)."""

    bundle_id: str | None = None
    image_name: str | None = None  # null when the spec names an `image_id`
    image_before: str | None = None  # the image id the bundle uses now
    image_before_name: str | None = None  # that image's name, when the account owns it
    compute_type: str | None = None
    user_volume_gib: int | None = None
    root_volume_gib: int | None = None
    description: str = ""

    def leaves_image(self, item: PlanItem) -> str | None:
        return self.image_before if moves_image(item) else None

    def resource_id(self, item: PlanItem) -> str | None:
        return self.bundle_id

    def reviewed(self) -> dict[str, Any]:
        return {"image_before": self.image_before}


def detail_of(item: PlanItem) -> BundleDetail:
    """A bundle item's own fields."""
    assert isinstance(item.detail, BundleDetail), item.kind
    return item.detail


def moves_image(item: PlanItem) -> bool:
    """A declared bundle that the plan moves to its declared image."""
    return (
        isinstance(item.detail, BundleDetail)
        and item.action in (Action.UPDATE_IMAGE, Action.ADOPT)
        and item.detail.image_before is not None
        and item.image_id != item.detail.image_before
    )


@dataclass(frozen=True)
class _Target:
    """The image a bundle should use, as far as the plan knows it."""

    image_id: str | None  # None: yet to be made
    state: str | None
    blocked: str | None = None  # why it can't be had
    waiting: str | None = None  # what a create or image change waits for


def plan(
    desired: Desired, inventory: Inventory, settings: Settings, earlier: tuple[PlanItem, ...]
) -> list[PlanItem]:
    images = {(i.region, i.name): i for i in earlier if i.kind is Kind.IMAGE}
    free = {
        r: settings.bundle_quota - live_of(inv).bundle_count for r, inv in inventory.regions.items()
    }
    items = []
    for spec in desired.bundles:
        region = desired.region_of(spec)
        live = inventory.regions[region]
        target = _target(spec, region, images, live, settings)
        bundle = (live_of(live).bundles or {}).get(spec.name)
        if bundle is None:
            item = _create(spec, region, target)
            if item.action is Action.CREATE:
                free[region] -= 1
                if free[region] < 0:
                    item = _blocked(
                        item,
                        f"the region's {settings.bundle_quota} custom bundles "
                        "are reached (not adjustable); delete unused bundles "
                        "(apply --prune) first",
                    )
        else:
            item = _existing(spec, region, bundle, target, live)
        items.append(item)
    return items


def _target(
    spec: BundleSpec,
    region: str,
    images: Mapping[tuple[str, str], PlanItem],
    live: RegionInventory,
    settings: Settings,
) -> _Target:
    if spec.image_id is not None:
        found = image_by_id(live, spec.image_id)
        if found is None:
            return _Target(
                spec.image_id, None, f"image_id {spec.image_id} names no image in {region}"
            )
        if found.state == "ERROR":
            return _Target(spec.image_id, found.state, f"image {spec.image_id} is in ERROR")
        waiting = None if found.state == "AVAILABLE" else f"image {spec.image_id} ({found.state})"
        return _Target(spec.image_id, found.state, waiting=waiting)
    name = spec.image or ""
    item = images.get((region, name))
    if item is None:  # the specs checks make this impossible; say so plainly if it happens
        return _Target(None, None, f"no image spec {name} lives in {region}")
    replaced = settings.replace_failed and item.state == "ERROR" and item.owned is True
    if item.is_error and not replaced:
        return _Target(
            item.image_id, item.state, f"its image {name} ({region}) is {item.action.value}"
        )
    if item.action is Action.CREATE or replaced:
        return _Target(None, None, waiting=f"after the {made_by(item)} of {name} ({region})")
    if item.state != "AVAILABLE":
        return _Target(
            item.image_id,
            item.state,
            waiting=f"after {name} ({region}) is AVAILABLE ({item.state})",
        )
    return _Target(item.image_id, item.state)


def _base(spec: BundleSpec, region: str, target: _Target) -> PlanItem:
    return PlanItem(
        kind=Kind.BUNDLE,
        action=Action.NO_OP,
        name=spec.name,
        region=region,
        image_id=target.image_id,
        spec_file=spec.file,
        spec_line=spec.line,
        detail=BundleDetail(
            image_name=spec.image,
            compute_type=spec.compute_type,
            user_volume_gib=spec.user_volume_gib,
            root_volume_gib=spec.root_volume_gib,
            description=spec.description,
        ),
        image_state=target.state,
    )


def _blocked(item: PlanItem, reason: str) -> PlanItem:
    return item.model_copy(update={"action": Action.BLOCKED, "reason": reason})


def _create(spec: BundleSpec, region: str, target: _Target) -> PlanItem:
    item = _base(spec, region, target).model_copy(
        update={
            "action": Action.CREATE,
            "tag_changes": created_tags(spec),
            "reason": target.waiting,
            "fingerprint": fingerprint(None, target.image_id, target.state),
        }
    )
    if target.blocked:
        return _blocked(item, f"{target.blocked}: the bundle can't be created")
    return item


def _existing(
    spec: BundleSpec, region: str, bundle: LiveBundle, target: _Target, live: RegionInventory
) -> PlanItem:
    before = image_by_id(live, bundle.image_id)
    tags = {k: v for k, v in bundle.tags.items() if in_scope(spec, k) or k == OWNERSHIP_TAG_KEY}
    item = _base(spec, region, target).updated(
        {
            "bundle_id": bundle.bundle_id,
            "state": bundle.state,
            "owned": bundle.owned,
            "image_before": bundle.image_id,
            "image_before_name": before.name if before else None,
            "fingerprint": fingerprint(bundle.bundle_id, bundle.image_id, bundle.state, tags),
        }
    )
    if bundle.state == "ERROR":
        reason = "the bundle is in ERROR; delete it, or give the spec a new name"
        return item.model_copy(update={"action": Action.CONFLICT, "reason": reason})
    differs = _fixed_differences(spec, bundle)
    if differs:
        reason = (
            f"{'; '.join(differs)}: a bundle's compute type, volumes and description can't "
            "change in place; give the spec a new name to create a new bundle"
        )
        return item.model_copy(update={"action": Action.CONFLICT, "reason": reason})
    changes = tag_changes(spec, bundle.tags)
    moves = target.image_id != bundle.image_id
    if moves and target.blocked:
        return _blocked(item, f"{target.blocked}: the bundle keeps its image")
    update: dict[str, object] = {
        "tag_changes": changes,
        "reason": target.waiting if moves else None,
    }
    if not bundle.owned:
        why = "exists without the ownership tag; apply adopts it and writes the declared tags"
        if moves:
            why += " and image"
        update |= {"action": Action.ADOPT, "reason": _joined(why, update["reason"])}
    elif moves:
        update["action"] = Action.UPDATE_IMAGE
    elif changes:
        update["action"] = Action.UPDATE_TAGS
    return item.model_copy(update=update)


def _joined(*parts: object) -> str:
    return "; ".join(str(p) for p in parts if p)


def _fixed_differences(spec: BundleSpec, bundle: LiveBundle) -> list[str]:
    pairs = [
        ("description", spec.description, bundle.description),
        ("compute type", spec.compute_type, bundle.compute_type),
        ("user volume (GiB)", spec.user_volume_gib, bundle.user_volume_gib),
    ]
    if spec.root_volume_gib is not None:
        pairs.append(("root volume (GiB)", spec.root_volume_gib, bundle.root_volume_gib))
    return [f"{what} differs (live: {live!r})" for what, want, live in pairs if want != live]


def unmanaged(
    desired: Desired, inventory: Inventory, items: tuple[PlanItem, ...]
) -> list[Unmanaged]:
    """Owned bundles no spec declares, in the regions where bundles were read."""
    declared = {(i.region, i.name) for i in items if i.kind is Kind.BUNDLE}
    return [
        Unmanaged(
            kind=Kind.BUNDLE,
            name=bundle.name,
            region=region,
            image_id=bundle.image_id,
            bundle_id=bundle.bundle_id,
            state=bundle.state,
        )
        for region, inv in sorted(inventory.regions.items())
        for bundle in sorted((live_of(inv).bundles or {}).values(), key=lambda b: b.name)
        if bundle.owned and (region, bundle.name) not in declared
    ]


def replan(
    item: PlanItem, tags: Mapping[str, str] | None, desired: Desired, settings: Settings
) -> PlanItem:
    """The item planned again from the bundle's fresh tags (the rest as listed)."""
    spec = next(
        b for b in desired.bundles if b.name == item.name and desired.region_of(b) == item.region
    )
    d = detail_of(item)
    if tags is None or d.bundle_id is None:
        return item.model_copy(update={"action": Action.CREATE})
    bundle = LiveBundle(
        bundle_id=d.bundle_id,
        name=item.name,
        description=spec.description,
        image_id=d.image_before or "",
        compute_type=spec.compute_type,
        user_volume_gib=spec.user_volume_gib,
        root_volume_gib=spec.root_volume_gib,
        state=item.state or "",
        tags=dict(tags),
    )
    target = _Target(item.image_id, item.image_state)
    return _existing(spec, item.region, bundle, target, RegionInventory(item.region))


def waits_for(item: PlanItem) -> Waited | None:
    """A create or an image change needs the declared image AVAILABLE in the bundle's
    region: the image spec's item, or the image an `image_id` names (one the plan does not
    make: a PENDING one is waited for by its id)."""
    d = detail_of(item)
    moves = item.action is Action.CREATE or item.image_id != d.image_before
    if not moves:
        return None
    if d.image_name is None:
        return ImageById(item.region, item.image_id) if item.image_id else None
    return image_key(item.account, item.region, d.image_name)


# What to do about each documented CreateWorkspaceBundle error.
CREATE_ERRORS: dict[str, tuple[Result, str]] = {
    "ResourceAlreadyExistsException": (Result.CONVERGED, ""),
    "ResourceUnavailableException": (
        Result.DEFERRED,
        "the image is not AVAILABLE yet; run apply again when it is, or use --wait",
    ),
    "ResourceLimitExceededException": (
        Result.FAILED,
        "the region's 50 custom bundles are reached (not adjustable): delete unused bundles",
    ),
    "ResourceNotFoundException": (Result.FAILED, "the image no longer exists: run plan again"),
    "AccessDeniedException": (
        Result.FAILED,
        "the role lacks workspaces:CreateWorkspaceBundle (and workspaces:CreateTags): see the "
        "apply policy in the docs' IAM page (docs/iam.md)",
    ),
    "InvalidParameterValuesException": (
        Result.FAILED,
        "the service rejected a value (a volume smaller than the image's, for one): fix the "
        "spec as the message says",
    ),
}


def apply(item: PlanItem, client: RegionClient, ctx: ApplyContext) -> AppliedItem:
    image_id = ctx.image_id or item.image_id
    if item.action is Action.CREATE:
        assert image_id is not None  # the engine runs a create once its image is AVAILABLE
        return _create_bundle(item.model_copy(update={"image_id": image_id}), client)
    confirmed = confirm(item, client, ctx.replan)
    if isinstance(confirmed, AppliedItem):
        return confirmed
    planned, unseen = confirmed
    moved = False
    d = detail_of(item)
    if image_id is not None and image_id != d.image_before:
        try:
            assert d.bundle_id is not None
            client.reads.update_workspace_bundle(BundleId=d.bundle_id, ImageId=image_id)
        except creating.AWS_FAILURES as err:
            return item_result(item, Result.FAILED, f"{short_error(err)} (hint: {_hint(err)})")
        moved = True
    planned = planned.model_copy(update={"image_id": image_id})
    if planned.action is Action.ADOPT or planned.tag_changes:
        done = retag(planned, client)
    else:
        done = item_result(planned, Result.UNCHANGED)
    if moved and done.result in (Result.TAGS_UPDATED, Result.UNCHANGED):
        done = done.model_copy(update={"result": Result.IMAGE_UPDATED})
    return with_unseen(done, unseen)


def _hint(err: BaseException) -> str:
    hints = {
        "ResourceUnavailableException": "the image is not AVAILABLE yet; run apply again later",
        "ResourceNotFoundException": "the bundle or the image no longer exists: run plan again",
        "AccessDeniedException": "the role lacks workspaces:UpdateWorkspaceBundle",
    }
    return hints.get(error_code(err) or "", "see the AWS message")


def _create_bundle(item: PlanItem, client: RegionClient) -> AppliedItem:
    d = detail_of(item)

    def send() -> creating.Made:
        tags = {c.key: c.after for c in item.tag_changes if c.after is not None}
        tags[OWNERSHIP_TAG_KEY] = OWNERSHIP_TAG_VALUE
        root = {"RootStorage": {"Capacity": str(d.root_volume_gib)}} if d.root_volume_gib else {}
        reply = client.creates.create_workspace_bundle(
            BundleName=item.name,
            BundleDescription=d.description,
            ImageId=item.image_id or "",
            ComputeType={"Name": d.compute_type},  # type: ignore[typeddict-item]
            UserStorage={"Capacity": str(d.user_volume_gib)},
            Tags=creating.tag_list(tags),
            **root,  # type: ignore[arg-type]
        )
        made = reply.get("WorkspaceBundle", {})
        return {
            "bundle_id": made.get("BundleId"),
            "image_id": item.image_id,
            "state": made.get("State"),
        }

    def find() -> creating.Made | None:
        bundles = client.pages("describe_workspace_bundles", "Bundles")
        found = next((b for b in bundles if b.get("Name") == item.name), None)
        if found is None:
            return None
        return {
            "bundle_id": found.get("BundleId"),
            "image_id": found.get("ImageId"),
            "state": found.get("State"),
        }

    return creating.create(
        item,
        creating.Create(
            send,
            find,
            CREATE_ERRORS,
            "bundle",
            missing=(
                "the service says the name is taken, but the account has no bundle of that "
                "name: a bundle deleted less than about 2 hours ago keeps its name until then; "
                "wait, or give the spec another name"
            ),
        ),
    )


DELETE_HINTS = {
    "ResourceAssociatedException": "WorkSpaces were launched from this bundle: migrate or "
    "remove them first",
    "AccessDeniedException": "the role lacks workspaces:DeleteWorkspaceBundle",
}


def delete(u: Unmanaged, client: RegionClient, ctx: ApplyContext) -> AppliedUnmanaged:
    """Delete an unmanaged bundle the plan shows deleted, once a fresh DescribeTags shows it
    is still owned."""
    assert u.bundle_id is not None
    found = ownership.confirm(client, u.bundle_id)
    if isinstance(found, str):
        why = f"its ownership could not be confirmed ({found}); run apply again"
        return unmanaged_result(u, Result.FAILED, why)
    if found is Ownership.GONE:
        return unmanaged_result(
            u, Result.UNCHANGED, "already gone when read just before the deletion"
        )
    if found is Ownership.NOT_OWNED:
        why = (
            "no longer carries the ownership tag (read just before the deletion), so it was "
            "not deleted; run plan again"
        )
        return unmanaged_result(u, Result.SKIPPED, why)
    try:
        client.reads.delete_workspace_bundle(BundleId=u.bundle_id)
    except creating.AWS_FAILURES as err:
        hint = DELETE_HINTS.get(error_code(err) or "", "see the AWS message")
        return unmanaged_result(u, Result.FAILED, f"{short_error(err)} (hint: {hint})")
    return unmanaged_result(u, Result.DELETED)


# --- reading ----------------------------------------------------------------------------


def list_bundles(reading: Reading) -> Listing | None:
    """The account's own bundles in the region (DescribeWorkspaceBundles without `Owner`),
    where specs declare bundles or discovery found owned images or bundles: a bundle whose
    spec was removed is found even if the tagging API leaves bundles out (it has been seen
    to), wherever the reconciler has been at work. A region with neither makes no bundle
    call."""
    region, desired = reading.client.region, reading.desired
    declared = {b.name for b in desired.bundles if desired.region_of(b) == region}
    if not declared and (reading.targeted or not reading.found()):
        return None
    listed = [
        Listed(BUNDLE_RESOURCE, b["BundleId"], b.get("Name", ""), b.get("Owner"), b, False)
        for b in reading.client.pages("describe_workspace_bundles", "Bundles")
    ]
    judged = [b for b in listed if b.name in declared] if reading.targeted else listed
    return Listing(listed, judged)


def observe(
    reading: Reading,
    inv: RegionInventory,
    listing: Listing | None,
    tags: Mapping[str, Tags | None],
) -> RegionInventory:
    """The bundles with their tags, the count for the quota, and the images that bundle
    specs name by `image_id` and the owned listing did not show."""
    if listing is None:
        return inv
    bundles = [
        _live_bundle(b.raw, t) for b in listing.judged if (t := tags[b.resource_id]) is not None
    ]
    gone = len(listing.judged) - len(bundles)
    region, desired = reading.client.region, reading.desired
    owned_ids = {i.image_id for i in image_kind.live_of(inv).images.values()}
    named = {
        b.image_id
        for b in desired.bundles
        if b.image_id and desired.region_of(b) == region and b.image_id not in owned_ids
    }
    return inv.with_part(
        BundleLive(
            bundles={b.name: b for b in bundles},
            bundle_count=len(listing.listed) - gone,
            referenced=_images_by_id(reading.client, sorted(named)),
        )
    )


def _images_by_id(client: RegionClient, image_ids: Sequence[str]) -> dict[str, LiveImage | None]:
    """Images named by id (shared with the account, or public; 25 ids a call); None: no
    such image. Only their state matters: a bundle is created from an AVAILABLE image."""
    found: dict[str, LiveImage | None] = dict.fromkeys(image_ids)
    for start in range(0, len(image_ids), PAGE_SIZE):
        reply = client.reads.describe_workspace_images(
            ImageIds=list(image_ids[start : start + PAGE_SIZE])
        )
        for image in reply.get("Images", []):
            found[image["ImageId"]] = live_image(image, {})
    return found


def _live_bundle(bundle: Mapping[str, Any], tags: Tags) -> LiveBundle:
    return LiveBundle(
        bundle_id=bundle["BundleId"],
        name=bundle.get("Name", ""),
        description=bundle.get("Description", ""),
        image_id=bundle.get("ImageId", ""),
        compute_type=bundle.get("ComputeType", {}).get("Name", ""),
        user_volume_gib=_gib(bundle.get("UserStorage", {}).get("Capacity")),
        root_volume_gib=_gib(bundle.get("RootStorage", {}).get("Capacity")),
        state=bundle.get("State", "AVAILABLE"),
        tags=tags,
    )


def _gib(capacity: str | None) -> int | None:
    """A volume's size: the service answers GiB as a string."""
    try:
        return int(capacity) if capacity is not None else None
    except ValueError:
        return None


KIND = KindModule(
    kind=Kind.BUNDLE,
    plan=plan,
    unmanaged=unmanaged,
    replan=replan,
    waits_for=waits_for,
    apply=apply,
    delete=delete,
    arn_type=BUNDLE_RESOURCE,
    list=list_bundles,
    observe=observe,
)
