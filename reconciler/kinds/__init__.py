"""Kinds of resource: one module per kind, saying what is specific to it.

Each module (`image`: images and their copies; `share`: the accounts an image is shared
with; `bundle`: bundles) ends with a `KIND` declaration (`kinds.base.KindModule`): its
planner, its unmanaged resources, how an item is planned again from fresh tags, what it
waits for, and its calls. The engine (`plan.make_plan`, `apply.py`, `wait.py`) runs them
all the same way, in the order of `KINDS`, which is the order of dependency: an image
before its copies, shares and bundles.

A new kind adds: its module here and one entry in `KINDS`; its spec model (`specs/`); its
emulator behaviour and tests; and, because plan items and the live state are flat typed
models, its `Kind` value and item fields (`plan.py`) and its live type and
`RegionInventory` field (`live.py`). The engine itself does not change.
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
