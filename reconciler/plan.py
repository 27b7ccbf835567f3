"""The plan: a pure function of the desired state (specs) and the live state (inventory).

No I/O and no boto3 here. The plan is immutable, has exactly one item per spec, and is
what every renderer, the saved plan file and apply work from.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum

from pydantic import BaseModel, ConfigDict, computed_field

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.live import Inventory, LiveImage, RegionInventory, SourceWorkspace
from reconciler.specs import Spec

FORMAT_VERSION = 1
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


class Action(str, Enum):
    CREATE = "create"
    NO_OP = "no-op"
    UPDATE_TAGS = "update-tags"
    ADOPT = "adopt"
    CONFLICT = "conflict"
    BLOCKED = "blocked"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TagChange(_Frozen):
    key: str
    before: str | None
    after: str | None


class PlanItem(_Frozen):
    action: Action
    name: str
    region: str
    image_id: str | None
    state: str | None
    spec_file: str
    spec_line: int
    source_workspace_id: str
    tag_changes: tuple[TagChange, ...] = ()
    reason: str | None = None
    # Additive fields (the contract allows them): what apply and the plan file rest on.
    description: str = ""
    source_state: str | None = None
    source_busy: bool = False
    stuck: bool = False
    # Whether the image carries the ownership tag (None: no image). Only an owned image is
    # ever replaced or deleted.
    owned: bool | None = None
    # A digest of the live facts the item rests on (image id, state, tags, source state),
    # so a saved plan can tell that the account moved under it.
    fingerprint: str = ""

    @property
    def changes(self) -> bool:
        return self.action in (Action.CREATE, Action.UPDATE_TAGS, Action.ADOPT)

    @property
    def is_error(self) -> bool:
        return self.action in (Action.CONFLICT, Action.BLOCKED)


class Unmanaged(_Frozen):
    """An owned image that no spec declares: `apply --prune` deletes it."""

    name: str
    region: str
    image_id: str
    state: str | None = None


class Plan(_Frozen):
    format_version: int = FORMAT_VERSION
    specs_digest: str
    items: tuple[PlanItem, ...]
    unmanaged: tuple[Unmanaged, ...] = ()
    targets: tuple[str, ...] = ()  # additive: the --target names a plan was limited to
    # Additive: the deletions this plan shows, and so the ones apply may make. `prune`
    # deletes the owned unmanaged images; `replace_failed` deletes and recaptures owned
    # images in ERROR. A saved plan records both, and apply does exactly what it recorded.
    prune: bool = False
    replace_failed: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(item.action.value for item in self.items)
        summary = {action.value: counts.get(action.value, 0) for action in Action}
        summary["unmanaged"] = len(self.unmanaged)
        return summary

    def replaces(self, item: PlanItem) -> bool:
        """Whether this plan deletes the item's image and captures it again: an owned image
        in ERROR, in a plan made with --replace-failed (`-/+ replace`)."""
        return (
            self.replace_failed
            and item.action is Action.CONFLICT
            and item.state == "ERROR"
            and item.owned is True
        )

    @property
    def deletions(self) -> tuple[Unmanaged, ...]:
        """The unmanaged images this plan deletes: all of them with --prune, else none."""
        return self.unmanaged if self.prune else ()

    @property
    def has_changes(self) -> bool:
        """Changes `apply` makes: creates, tag changes, adoptions, and the deletions and
        replacements the plan shows (with --prune / --replace-failed)."""
        return any(item.changes or self.replaces(item) for item in self.items) or bool(
            self.deletions
        )

    @property
    def drifted(self) -> bool:
        """Anything but no-op, any unmanaged image, or a capture stuck in PENDING."""
        return bool(self.unmanaged) or any(
            i.action is not Action.NO_OP or i.stuck for i in self.items
        )

    @property
    def has_errors(self) -> bool:
        return any(item.is_error for item in self.items)


def fingerprint(*facts: object) -> str:
    blob = json.dumps(facts, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:32]


def make_plan(
    specs: Sequence[Spec],
    inventory: Inventory,
    *,
    specs_digest: str,
    default_region: str | None,
    image_quota: int,
    now: datetime,
    targets: tuple[str, ...] = (),
    prune: bool = False,
    replace_failed: bool = False,
) -> Plan:
    """One item per spec, in spec order, plus the owned images that no spec declares."""
    free_slots = {r: image_quota - inv.image_count for r, inv in inventory.regions.items()}
    items = []
    for spec in specs:
        region = spec.region or default_region
        if region is None:  # the caller resolves regions first; a bug if it did not
            raise ValueError(f"spec {spec.name} has no region")
        item = plan_item(spec, region, inventory.regions[region], now=now)
        if item.action is Action.CREATE:
            free_slots[region] -= 1
            if free_slots[region] < 0:
                item = _blocked_by_quota(item, image_quota)
        items.append(item)
    # A --target run judges only its targets, as in Terraform: no unmanaged list.
    unmanaged = () if targets else _unmanaged(specs, inventory, default_region)
    return Plan(
        specs_digest=specs_digest,
        items=tuple(items),
        unmanaged=tuple(unmanaged),
        targets=targets,
        prune=prune,
        replace_failed=replace_failed,
    )


# Plans one item again from the image's tags as read just before a change (None: the image
# is gone). Apply calls it: the tags a plan was made from may be seconds old (the tagging API
# is eventually consistent, and other tools write tags too).
Replan = Callable[[PlanItem, Mapping[str, str] | None], PlanItem]


def replanner(specs: Sequence[Spec], default_region: str | None, *, now: datetime) -> Replan:
    """The Replan of these specs: the same decision as `plan_item`, from fresh tags."""
    by_key = {(s.region or default_region, s.name): s for s in specs}

    def replan(item: PlanItem, tags: Mapping[str, str] | None) -> PlanItem:
        spec = by_key[(item.region, item.name)]
        images = {}
        if tags is not None and item.image_id is not None:
            # Only tags are read again; the rest of the image is as listed for the plan (a
            # description that differs is a conflict, never an item apply changes).
            images[item.name] = LiveImage(
                image_id=item.image_id,
                name=item.name,
                description=spec.description,
                state=item.state or "",
                tags=dict(tags),
            )
        live = RegionInventory(item.region, images, len(images))
        return plan_item(spec, item.region, live, now=now)

    return replan


def plan_item(spec: Spec, region: str, live: RegionInventory, *, now: datetime) -> PlanItem:
    image = live.images.get(spec.name)
    if image is None:
        source = (live.sources or {}).get(spec.source_workspace_id)
        return _create_item(spec, region, source)
    base = _item(spec, region, image=image, now=now)
    if image.state == "ERROR":
        detail = ": ".join(x for x in (image.error_code, image.error_message) if x)
        if not image.owned:
            # Another team's image of the same name, perhaps: never deleted by this tool.
            reason = (
                f"image is in ERROR ({detail or 'no error detail'}) and does not carry the "
                "ownership tag, so the reconciler will not delete it; delete it yourself, or "
                "give the spec another name"
            )
            return base.model_copy(update={"action": Action.CONFLICT, "reason": reason})
        reason = (
            f"image is in ERROR ({detail or 'no error detail'}); "
            "`apply --replace-failed` deletes and recreates it"
        )
        failed = base.model_copy(update={"action": Action.CONFLICT, "reason": reason})
        return _recapture(failed, spec, region, live)
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


def tag_changes(spec: Spec, live_tags: Mapping[str, str]) -> tuple[TagChange, ...]:
    """The difference between the declared tag set and the live one, key by key.

    The spec's tags are the whole set, as in Terraform: a live key the spec lacks is
    drift. Ignored keys, the ownership tag and AWS's own `aws:` tags are out of scope.
    """
    live = {k: v for k, v in live_tags.items() if _in_scope(spec, k)}
    keys = sorted(set(live) | set(spec.tags))
    changes = []
    for key in keys:
        before, after = live.get(key), spec.tags.get(key)
        if before != after:
            changes.append(TagChange(key=key, before=before, after=after))
    return tuple(changes)


def _in_scope(spec: Spec, key: str) -> bool:
    return key != OWNERSHIP_TAG_KEY and not key.startswith("aws:") and not spec.ignores(key)


def _item(
    spec: Spec, region: str, *, image: LiveImage | None = None, now: datetime | None = None
) -> PlanItem:
    stuck = bool(
        image
        and now
        and image.state == "PENDING"
        and image.created
        and now - image.created > STUCK_AFTER
    )
    return PlanItem(
        action=Action.NO_OP,
        name=spec.name,
        region=region,
        image_id=image.image_id if image else None,
        state=image.state if image else None,
        spec_file=spec.file,
        spec_line=spec.line,
        source_workspace_id=spec.source_workspace_id,
        description=spec.description,
        stuck=stuck,
        owned=image.owned if image else None,
        fingerprint=_image_fingerprint(spec, image) if image else "",
        reason=f"capture PENDING since {image.created:%Y-%m-%d %H:%M} UTC; stuck?"
        if stuck and image and image.created
        else None,
    )


def _recapture(item: PlanItem, spec: Spec, region: str, live: RegionInventory) -> PlanItem:
    """A failed image as `--replace-failed` would recapture it: with the declared tags, and,
    when its source was read (only for that option), judged as a create would be, so that
    a failed image is never deleted when its source can't capture a new one now."""
    recapture = _create_item(spec, region, (live.sources or {}).get(spec.source_workspace_id))
    update: dict[str, object] = {"tag_changes": recapture.tag_changes}
    if live.sources is None or spec.source_workspace_id not in live.sources:
        return item.model_copy(update=update)
    update |= {"source_state": recapture.source_state, "source_busy": recapture.source_busy}
    if recapture.action is Action.BLOCKED:
        update |= {
            "action": Action.BLOCKED,
            "reason": f"{item.reason}; it can't be recaptured now: {recapture.reason}",
        }
    elif recapture.source_busy:
        update["reason"] = f"{item.reason}; {recapture.reason}"
    return item.model_copy(update=update)


def _image_fingerprint(spec: Spec, image: LiveImage) -> str:
    tags = {k: v for k, v in image.tags.items() if _in_scope(spec, k) or k == OWNERSHIP_TAG_KEY}
    return fingerprint(image.image_id, image.state, tags)


def _create_item(spec: Spec, region: str, source: SourceWorkspace | None) -> PlanItem:
    base = _item(spec, region)
    after = tuple(TagChange(key=k, before=None, after=v) for k, v in sorted(spec.tags.items()))
    update: dict[str, object] = {"action": Action.CREATE, "tag_changes": after}
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
    return base.model_copy(update=update)


def _blocked_by_quota(item: PlanItem, quota: int) -> PlanItem:
    reason = (
        f"the image quota of {item.region} ({quota}) is reached; delete unused images "
        "(apply --prune) or raise the quota and pass --image-quota"
    )
    return item.model_copy(update={"action": Action.BLOCKED, "reason": reason})


def _unmanaged(
    specs: Iterable[Spec], inventory: Inventory, default_region: str | None
) -> list[Unmanaged]:
    declared = {(s.region or default_region, s.name) for s in specs}
    return [
        Unmanaged(name=image.name, region=region, image_id=image.image_id, state=image.state)
        for region, inv in sorted(inventory.regions.items())
        for image in sorted(inv.images.values(), key=lambda i: i.name)
        if image.owned and (region, image.name) not in declared
    ]
