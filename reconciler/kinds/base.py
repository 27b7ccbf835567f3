"""What a kind of resource declares, and what the engine hands its calls.

A kind module (`kinds/image.py`, `kinds/share.py`, `kinds/bundle.py`) ends with one
`KIND = KindModule(...)`: its planner (a pure function of the specs and the live state), the
owned resources no spec declares, how one item is planned again from fresh tags, what the
item waits for, and the calls that make the change and delete the resource. The engine
(`plan.make_plan`, `apply.py`, `wait.py`) does the rest the same way for every kind: it
orders by dependency, confirms, paces, waits and reports.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.plan import Key, Kind

if TYPE_CHECKING:
    from reconciler.aws import RegionClient
    from reconciler.live import Inventory, RegionInventory, Tags
    from reconciler.plan import Desired, Plan, PlanItem, Replan, Settings, Unmanaged
    from reconciler.results import AppliedItem, AppliedUnmanaged


@dataclass(frozen=True)
class ImageById:
    """An image no item of the plan makes (a bundle's `image_id`, an import's source shared
    from outside the run), waited for by its id: the engine judges it by the state the item
    was planned with (`image_state`), which `apply --wait` polls in `region`, as the
    waiting item's account."""

    region: str
    image_id: str


# What an item waits for: the item (by its key) that makes the image it needs AVAILABLE (an
# image, or for an import the share that lets its account copy it), or an image by its id.
Waited = Key | ImageById


def image_key(account: str | None, region: str, name: str) -> Key:
    """The key of an image item."""
    return (Kind.IMAGE.value, account or "", region, name)


@dataclass(frozen=True)
class Reading:
    """What the generic reader (`inventory.read_region`) hands a kind in one region."""

    client: RegionClient
    desired: Desired
    targeted: bool  # a --target run: read only what the targets need
    # The ARN resource types (`workspaceimage`, `workspacebundle`) of which discovery found
    # owned resources in this region; waits for discovery. Empty for a --target run.
    found: Callable[[], Collection[str]]
    recapture_failed: bool = False
    # The caller's account id (sts:GetCallerIdentity, once a run), to build the ARN of a
    # resource whose listing names no owner (older answers lack `OwnerAccountId`).
    account: Callable[[], str] | None = None


@dataclass(frozen=True)
class Listed:
    """One resource as its listing answered, before its tags are read."""

    arn_type: str  # the resource type in its ARN, for the bulk tag reader
    resource_id: str
    name: str
    account: str | None  # the owner account, to build its ARN from
    raw: Mapping[str, Any]
    # Whether the tagging API's silence about it means it has no tags. Not so for bundles:
    # real answers have left out bundles that had tags, so one left out is read with
    # DescribeTags (bundles are few: at most 50 a region).
    absent_is_untagged: bool = True


@dataclass(frozen=True)
class Listing:
    """A kind's resources in one region: all of them (counts, quotas), and those whose
    tags the plan needs (all, or a --target run's)."""

    listed: Sequence[Listed]
    judged: Sequence[Listed]


@dataclass(frozen=True)
class ApplyContext:
    """What one item's calls need from the engine."""

    plan: Plan
    replan: Replan | None = None
    # The id of the AVAILABLE image the item waited for (a copy's source, a share's or a
    # bundle's image); None for an item that waits for nothing.
    image_id: str | None = None
    # Keys (kind, region, name) a kind's `schedule` lets go now; the others of that kind are
    # deferred (one capture per source WorkSpace at a time).
    go_now: frozenset[Key] = frozenset()
    # Images in use by a bundle after this run's changes, by (region, image id): bundle
    # names. An image still in use is never deleted.
    in_use: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)


# A kind's part of a region's live state: from its listing (None if it lists nothing, or
# not here) and the tags of what it judged (None: deleted since listed), plus any reads of
# its own (sources, sharing), into the region inventory built so far.
Observe = Callable[
    ["Reading", "RegionInventory", "Listing | None", "Mapping[str, Tags | None]"],
    "RegionInventory",
]


@dataclass(frozen=True)
class KindModule:
    kind: Kind
    plan: Callable[[Desired, Inventory, Settings, tuple[PlanItem, ...]], list[PlanItem]]
    unmanaged: Callable[[Desired, Inventory, tuple[PlanItem, ...]], list[Unmanaged]]
    # The item planned again from its resource's tags read just before a change.
    replan: Callable[[PlanItem, Mapping[str, str] | None, Desired, Settings], PlanItem]
    # The image the item needs AVAILABLE before its change, if any.
    waits_for: Callable[[PlanItem], Waited | None]
    apply: Callable[[PlanItem, RegionClient, ApplyContext], AppliedItem]
    delete: Callable[[Unmanaged, RegionClient, ApplyContext], AppliedUnmanaged] | None = None
    # Which of this kind's items may go now (the others are deferred by `apply`).
    schedule: Callable[[Plan], frozenset[Key]] | None = None
    # Reading the live state: the resource type in its ARNs (for the bulk tag reader and
    # discovery), the resources it lists in a region (None: none read there) and its part
    # of the region's inventory. Kinds are read in the order of `KINDS`.
    arn_type: str | None = None
    list: Callable[[Reading], Listing | None] | None = None
    observe: Observe | None = None
