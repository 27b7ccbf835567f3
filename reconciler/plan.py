"""The plan: a pure function of the desired state (specs) and the live state (inventory).

No I/O here. The plan is immutable and is what every renderer, the saved plan file and
apply work from. This module is the generic part: the plan's types and `make_plan`, which
asks each kind of resource (`reconciler.kinds`: images and their copies, shares, bundles)
to plan its items, in dependency order, from the same specs and live state. The fields
only one kind's items have are that kind's detail model (`ItemDetail`), which its module
declares and registers here (`register_detail`), so this module needs no kind to know
them (it imports `reconciler.kinds` only when an item is made before any kind registered).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializationInfo,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    computed_field,
    model_serializer,
    model_validator,
)

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.live import Inventory

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

    from reconciler.kinds import KindModule
    from reconciler.specs import BundleSpec, Spec

FORMAT_VERSION = 2

# An item's identity in a plan: (kind, account, region, name); the account is "" for a run
# without an account map (the caller's own account).
Key = tuple[str, str, str, str]


class Kind(str, Enum):
    IMAGE = "image"
    SHARE = "share"
    BUNDLE = "bundle"


class Action(str, Enum):
    CREATE = "create"
    NO_OP = "no-op"
    UPDATE_TAGS = "update-tags"
    ADOPT = "adopt"
    UPDATE_SHARING = "update-sharing"
    UPDATE_IMAGE = "update-image"
    CONFLICT = "conflict"
    BLOCKED = "blocked"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TagChange(_Frozen):
    key: str
    before: str | None
    after: str | None


class ItemDetail(_Frozen):
    """A kind's own fields on its plan items (`kinds.image.ImageDetail`, ...). Each kind
    module declares one and registers it (`register_detail`); an item's JSON shows its
    fields flat, where the item's own fields leave room for them (after `reason`)."""

    # Whether the item's JSON shows `state` (a share has no state of its own).
    has_state: ClassVar[bool] = True

    def drifts(self) -> bool:
        """Drift that even a no-op item shows (a capture stuck in PENDING)."""
        return False

    def leaves_image(self, item: PlanItem) -> str | None:
        """The image id that the item stops using (a bundle moved to another image)."""
        return None

    def resource_id(self, item: PlanItem) -> str | None:
        """The id of the item's resource: its image's, unless the kind has ids of its own."""
        return item.image_id

    def reviewed(self) -> dict[str, Any]:
        """What a reviewer of a saved plan approved besides the action and tag changes: a
        saved plan is stale once the live state calls for other values."""
        return {}


# The detail model of each kind, filled by the kind modules as they are imported.
_DETAILS: dict[Kind, type[ItemDetail]] = {}

DetailT = TypeVar("DetailT", bound=ItemDetail)


def register_detail(kind: Kind) -> Callable[[type[DetailT]], type[DetailT]]:
    """A class decorator: the detail model of `kind`'s plan items."""

    def register(model: type[DetailT]) -> type[DetailT]:
        _DETAILS[kind] = model
        return model

    return register


def detail_model(kind: Kind) -> type[ItemDetail]:
    if kind not in _DETAILS:
        # The kind modules register their details on import; a plan read from JSON (or
        # built in a test) may come before anything imported them.
        importlib.import_module("reconciler.kinds")
    return _DETAILS[kind]


class PlanItem(_Frozen):
    """One resource as planned. Every kind shares these fields; the fields only one kind
    has are its `detail` (`ItemDetail`), shown flat in the item's JSON, and accepted flat
    when an item is made or read (`PlanItem(kind=..., copy_from=...)`)."""

    kind: Kind = Kind.IMAGE
    action: Action
    name: str
    region: str
    # The account the resource lives in (12 digits) and its name in the map; both null for
    # a run without an account map (the caller's own account).
    account: str | None = None
    account_name: str | None = None
    # Image items: the image's id. Share items: the shared image's id. Bundle items: the
    # declared image's id in the bundle's region (null until it exists).
    image_id: str | None = None
    state: str | None = None  # the image's or the bundle's state
    spec_file: str
    spec_line: int
    tag_changes: tuple[TagChange, ...] = ()
    reason: str | None = None
    # The kind's own fields; its JSON fields take this place in the item's.
    detail: SerializeAsAny[ItemDetail]
    # Whether the resource carries the ownership tag (None: no resource yet). Only an owned
    # resource is ever changed in place, replaced or deleted without adoption.
    owned: bool | None = None
    # What a share or bundle waits for: the state of its image (of a copy: of its source
    # image) when planned; null when that image is yet to be made.
    image_state: str | None = None
    # A digest of the live facts the item rests on, so a saved plan can tell that the
    # account moved under it.
    fingerprint: str = ""

    @model_validator(mode="before")
    @classmethod
    def _gather_detail(cls, data: Any) -> Any:
        """Flat input (JSON, keywords): the kind's own fields become its detail."""
        if not isinstance(data, dict):
            return data
        model = detail_model(Kind(data.get("kind", Kind.IMAGE)))
        given = data.get("detail")
        if isinstance(given, ItemDetail):
            return data
        own = {k: v for k, v in data.items() if k in model.model_fields}
        # Another kind's fields are ignored, as they were when every item had them all (a
        # field no kind has is still refused).
        foreign = {f for m in _DETAILS.values() if m is not model for f in m.model_fields}
        rest = {
            k: v
            for k, v in data.items()
            if k not in own and k != "detail" and (k not in foreign or k in cls.model_fields)
        }
        return {**rest, "detail": model.model_validate({**(given or {}), **own})}

    @model_serializer(mode="wrap")
    def _flat(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if key == "detail":
                flat.update(value)
            elif key != "state" or self.detail.has_state:
                flat[key] = value
        return flat

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        # A kind's own field set here would be lost: it belongs in the detail
        # (`updated`).
        unknown = set(update or ()) - set(type(self).model_fields)
        if unknown:
            raise TypeError(f"not fields of {type(self).__name__}: {sorted(unknown)}")
        return super().model_copy(update=update, deep=deep)

    def updated(self, changes: Mapping[str, Any]) -> Self:
        """The item with these fields changed: its own, or its detail's."""
        mine = {k: v for k, v in changes.items() if k in type(self.detail).model_fields}
        update = {k: v for k, v in changes.items() if k not in mine}
        if mine:
            update["detail"] = self.detail.model_copy(update=mine)
        return self.model_copy(update=update)

    @property
    def key(self) -> Key:
        """The item's identity in a plan: (kind, account, region, name)."""
        return (self.kind.value, self.account or "", self.region, self.name)

    @property
    def resource_id(self) -> str | None:
        """The id of the resource the item changes (null until it exists)."""
        return self.detail.resource_id(self)

    @property
    def changes(self) -> bool:
        return self.action in CHANGING

    @property
    def is_error(self) -> bool:
        return self.action in (Action.CONFLICT, Action.BLOCKED)


CHANGING = frozenset(
    {Action.CREATE, Action.UPDATE_TAGS, Action.ADOPT, Action.UPDATE_SHARING, Action.UPDATE_IMAGE}
)


class Unmanaged(_Frozen):
    """An owned image or bundle that no spec declares: `apply --prune` deletes it."""

    kind: Kind = Kind.IMAGE
    name: str
    region: str
    account: str | None = None  # as for plan items
    account_name: str | None = None
    image_id: str | None = None  # an image's id; a bundle's image
    bundle_id: str | None = None
    state: str | None = None
    # Bundles (declared, or kept) that use this image: it is kept while they do.
    used_by: tuple[str, ...] = ()

    @model_serializer(mode="wrap")
    def _own_fields(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            foreign = {"used_by"} if self.kind is Kind.BUNDLE else {"bundle_id"}
            data = {k: v for k, v in data.items() if k not in foreign}
        return data

    @property
    def resource_id(self) -> str:
        return (self.bundle_id if self.kind is Kind.BUNDLE else self.image_id) or ""

    @property
    def key(self) -> Key:
        return (self.kind.value, self.account or "", self.region, self.resource_id)


class PlanAccount(_Frozen):
    """An account a plan covers, as the map declared it when the plan was made."""

    name: str
    id: str
    role: str | None = None


class Plan(_Frozen):
    format_version: int = FORMAT_VERSION
    specs_digest: str
    items: tuple[PlanItem, ...]
    unmanaged: tuple[Unmanaged, ...] = ()
    targets: tuple[str, ...] = ()  # additive: the --target names a plan was limited to
    # Additive: the deletions this plan shows, and so the ones apply may make. `prune`
    # deletes the owned unmanaged bundles and images; `replace_failed` deletes and recreates
    # owned images in ERROR. A saved plan records both, and apply does exactly that.
    prune: bool = False
    replace_failed: bool = False
    # Additive: the accounts of the map the plan covers (empty without a map); a saved plan
    # is stale once the map says otherwise.
    accounts: tuple[PlanAccount, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(item.action.value for item in self.items)
        summary = {action.value: counts.get(action.value, 0) for action in Action}
        summary["unmanaged"] = len(self.unmanaged)
        return summary

    def digest(self) -> str:
        """A digest of the plan's decisions (`decisions`): equal for two plans that would do
        the same, whatever the ids still unknown and the time they were made. The plan
        document carries it as `plan_digest`; `apply --reviewed-digest` compares it with the
        one a reviewer saw."""
        blob = json.dumps(self.decisions(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    def decisions(self, *, skip: frozenset[Key] = frozenset()) -> dict[str, Any]:
        """What a reviewer approves, per item (but those in `skip`): its kind, account,
        region and name, its action and exactly what it changes; and each unmanaged
        resource's fate (deleted, kept, or listed)."""
        items: dict[str, Any] = {
            _shown(i): {
                "action": i.action.value,
                # An image's own id; a share's or a bundle's image may be made meanwhile (the
                # same decision): what they change is in their changes and, a bundle's,
                # `image_before`.
                "image_id": i.image_id if i.kind is Kind.IMAGE else None,
                "tag_changes": [c.model_dump() for c in i.tag_changes],
                **i.detail.reviewed(),
                "replace": self.replaces(i),
            }
            for i in self.items
            if i.key not in skip
        }
        # A plan deletes exactly the deletions it showed, so an unmanaged resource it showed
        # kept (or listed) that would now be deleted, or the reverse, is a decision nobody
        # reviewed.
        deleted = set(self.deletions)
        items["(unmanaged)"] = sorted(
            f"{u.kind.value} {_where(u)}/{u.name} {u.resource_id}: {self._fate(u, deleted)}"
            for u in self.unmanaged
        )
        items["(deletions)"] = {"prune": self.prune, "replace_failed": self.replace_failed}
        return items

    def _fate(self, u: Unmanaged, deleted: set[Unmanaged]) -> str:
        if u in deleted:
            return "delete"
        kept = self.kept_by(u)
        return f"kept while {', '.join(kept)} use it" if kept else "listed"

    def replaces(self, item: PlanItem) -> bool:
        """Whether this plan deletes the item's image and makes it again (a capture, or a
        copy): an owned image in ERROR, in a plan made with --replace-failed."""
        return (
            self.replace_failed
            and item.kind is Kind.IMAGE
            and item.action is Action.CONFLICT
            and item.state == "ERROR"
            and item.owned is True
        )

    @property
    def deletions(self) -> tuple[Unmanaged, ...]:
        """The unmanaged resources this plan deletes: with --prune, all of them but the
        images a bundle will still use (`kept_by`); else none."""
        return tuple(u for u in self.unmanaged if not self.kept_by(u)) if self.prune else ()

    def kept_by(self, u: Unmanaged) -> tuple[str, ...]:
        """The bundles that keep an unmanaged image from `apply --prune`: those found using
        it, less the unmanaged bundles pruned before it and the declared bundles the plan
        moves to another image, plus the declared bundles the plan puts on it. Apply checks
        the same after its changes (`apply.in_use`) before any image deletion."""
        if u.kind is not Kind.IMAGE or not u.image_id:
            return ()
        users = set(u.used_by)
        # As --prune has it (a plan without it says what it would do): unmanaged bundles
        # are deleted first.
        users -= {b.name for b in self.unmanaged if b.kind is Kind.BUNDLE and _same_place(b, u)}
        for item in self.items:
            if item.kind is not Kind.BUNDLE or not _same_place(item, u):
                continue
            if item.image_id == u.image_id:
                users.add(item.name)
            elif item.detail.leaves_image(item) == u.image_id:
                users.discard(item.name)
        return tuple(sorted(users))

    @property
    def has_changes(self) -> bool:
        """Changes `apply` makes: creates, tag, sharing and image changes, adoptions, and the
        deletions and replacements the plan shows (with --prune / --replace-failed)."""
        return any(item.changes or self.replaces(item) for item in self.items) or bool(
            self.deletions
        )

    @property
    def drifted(self) -> bool:
        """Anything but no-op, anything unmanaged, or a capture stuck in PENDING."""
        return bool(self.unmanaged) or any(
            i.action is not Action.NO_OP or i.detail.drifts() for i in self.items
        )

    @property
    def has_errors(self) -> bool:
        return any(item.is_error for item in self.items)


def _shown(item: PlanItem) -> str:
    kind = "" if item.kind is Kind.IMAGE else f"{item.kind.value} "
    return f"{kind}{_where(item)}/{item.name}"


def _where(x: PlanItem | Unmanaged) -> str:
    """The item's region, after its account's name when the plan covers accounts."""
    return f"{x.account_name or x.account}:{x.region}" if x.account else x.region


def _same_place(a: PlanItem | Unmanaged, b: PlanItem | Unmanaged) -> bool:
    return (a.account, a.region) == (b.account, b.region)


def fingerprint(*facts: object) -> str:
    blob = json.dumps(facts, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:32]


@dataclass(frozen=True)
class Desired:
    """The specs of a run, with the default region that settles the unset ones."""

    images: Sequence[Spec]
    bundles: Sequence[BundleSpec] = ()
    default_region: str | None = None
    # The accounts whose items this run plans (empty without an account map): an import
    # from one of them waits for its share item; from any other, for the image shared.
    planned_accounts: frozenset[str] = frozenset()

    def region_of(self, spec: Spec | BundleSpec) -> str:
        region = spec.region or self.default_region
        if region is None:  # the caller resolves regions first; a bug if it did not
            raise ValueError(f"spec {spec.name} has no region")
        return region


@dataclass(frozen=True)
class Settings:
    """What the planners need besides the specs and the live state."""

    now: datetime
    image_quota: int = 40
    bundle_quota: int = 50  # custom bundles per region; not adjustable
    replace_failed: bool = False


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
    bundles: Sequence[BundleSpec] = (),
    kinds: Sequence[KindModule] | None = None,
    planned_accounts: frozenset[str] = frozenset(),
) -> Plan:
    """Each kind plans its items in turn (images, shares, bundles: a later kind sees the
    earlier ones' items, as a bundle depends on its image), then the owned resources that no
    spec declares."""
    if kinds is None:
        from reconciler.kinds import KINDS  # the kinds' planners are pure; their calls are not

        kinds = KINDS
    desired = Desired(tuple(specs), tuple(bundles), default_region, planned_accounts)
    settings = Settings(now=now, image_quota=image_quota, replace_failed=replace_failed)
    items: list[PlanItem] = []
    for kind in kinds:
        items.extend(kind.plan(desired, inventory, settings, tuple(items)))
    # A --target run judges only its targets, as in Terraform: no unmanaged list.
    unmanaged: list[Unmanaged] = []
    if not targets:
        for kind in kinds:
            unmanaged.extend(kind.unmanaged(desired, inventory, tuple(items)))
    return Plan(
        specs_digest=specs_digest,
        items=tuple(items),
        unmanaged=tuple(unmanaged),
        targets=targets,
        prune=prune,
        replace_failed=replace_failed,
    )


# Plans one item again from its resource's tags as read just before a change (None: the
# resource is gone). Apply calls it: the tags a plan was made from may be seconds old (the
# tagging API is eventually consistent, and other tools write tags too).
Replan = Callable[[PlanItem, Mapping[str, str] | None], PlanItem]


def tag_changes(spec: Spec | BundleSpec, live_tags: Mapping[str, str]) -> tuple[TagChange, ...]:
    """The difference between the declared tag set and the live one, key by key.

    The spec's tags are the whole set, as in Terraform: a live key the spec lacks is
    drift. Ignored keys, the ownership tag and AWS's own `aws:` tags are out of scope.
    """
    live = {k: v for k, v in live_tags.items() if in_scope(spec, k)}
    keys = sorted(set(live) | set(spec.tags))
    changes = []
    for key in keys:
        before, after = live.get(key), spec.tags.get(key)
        if before != after:
            changes.append(TagChange(key=key, before=before, after=after))
    return tuple(changes)


def in_scope(spec: Spec | BundleSpec, key: str) -> bool:
    return key != OWNERSHIP_TAG_KEY and not key.startswith("aws:") and not spec.ignores(key)


def created_tags(spec: Spec | BundleSpec) -> tuple[TagChange, ...]:
    """The tag changes of a create: every declared tag, from nothing."""
    return tuple(TagChange(key=k, before=None, after=v) for k, v in sorted(spec.tags.items()))
