"""Kinds of resource: one module per kind, saying what is specific to it.

Each module (`image`: images and their copies; `share`: the accounts an image is shared
with; `bundle`: bundles) ends with a `KIND` declaration (`kinds.base.KindModule`): its
planner, its unmanaged resources, how an item is planned again from fresh tags, what it
waits for, and its calls. The engine (`plan.make_plan`, `apply.py`, `wait.py`) runs them
all the same way, in the order of `KINDS`, which is the order of dependency: an image
before its copies, shares and bundles.

Each module also owns its data. Its plan items' own fields are a detail model
(`ImageDetail`, `ShareDetail`, `BundleDetail`: a `plan.ItemDetail` registered with
`plan.register_detail`), which an item's JSON shows flat; others read them through the
module's `detail_of(item)`. Its part of a region's live state is a type of its own
(`ImageLive`, `ShareLive`, `BundleLive`, with its live types `LiveImage`, `LiveBundle`,
`SourceWorkspace`), which its `observe` adds to the `live.RegionInventory` and others read
through the module's `live_of(inventory)`. The generic code asks a detail what it must
know of every kind (`ItemDetail.drifts`, `leaves_image`, `resource_id`, `reviewed`), and a
region's parts which images they use (`live.UsesImages`).

A new kind touches: its module here; its spec model (`specs/`); its emulator behaviour; its
tests. Shared, one line each: its `Kind` value (`plan.py`), its import and entry in `KINDS`
(below), and its ARN resource type if it has one (`aws.py`). Still shared beyond one line,
for a kind unlike the three: a kind with specs of a new type adds them to `plan.Desired`
and the loader (`specs/load.py`), as bundles did; an unmanaged resource with an id of
another kind than an image's or a bundle's needs a field on `plan.Unmanaged`; and the
renderers (`render/text.py`, `render/markdown.py`) show a new kind's items with the lines
every kind shares (action, name, region, id, reason, tag changes) until they are taught its
own facts, as they are the bundles' and the shares'.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.kinds import bundle, image, share
from reconciler.kinds.base import ApplyContext, KindModule
from reconciler.plan import Desired, Kind, PlanItem, Replan, Settings

KINDS: tuple[KindModule, ...] = (image.KIND, share.KIND, bundle.KIND)
_BY_KIND = {k.kind: k for k in KINDS}

__all__ = ["KINDS", "ApplyContext", "KindModule", "kind_of", "replanner"]


def kind_of(item: PlanItem) -> KindModule:
    return _BY_KIND[item.kind]


def module(kind: Kind) -> KindModule:
    return _BY_KIND[kind]


def replanner(desired: Desired, settings: Settings) -> Replan:
    """How apply plans one item again from its resource's tags read just before a change."""

    def replan(item: PlanItem, tags: Mapping[str, str] | None) -> PlanItem:
        return kind_of(item).replan(item, tags, desired, settings)

    return replan
