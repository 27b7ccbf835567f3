"""Apply: execute a plan item by item and return every item's result.

The generic executor. It runs each region's items in parallel with the other regions,
through that region's paced pool; picks the order of work (one capture per source
WorkSpace goes first); skips what has nothing to do or may not be done; stops sending new
calls on an interruption (SIGINT/SIGTERM), after which every item not yet started is
reported `skipped`; reports each item as it ends; and gathers the results in plan order.
The calls themselves belong to the kind of resource (`reconciler.kinds`): today only
`kinds.image`.

Nothing here prints or decides an exit code. One failing item never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.aws import in_parallel
from reconciler.errors import Interrupted
from reconciler.kinds import image
from reconciler.kinds.image import CREATE_ERRORS, create_now
from reconciler.plan import Action, Plan, PlanItem, Replan, Unmanaged
from reconciler.results import (
    Applied,
    AppliedItem,
    AppliedUnmanaged,
    Result,
    item_result,
    unmanaged_result,
)

if TYPE_CHECKING:
    from reconciler.aws import Clients, RegionClient

# The names callers and tests import from here, wherever they live now.
__all__ = [
    "CREATE_ERRORS",
    "Applied",
    "AppliedItem",
    "AppliedUnmanaged",
    "ApplyOptions",
    "Report",
    "Result",
    "apply_plan",
    "create_now",
]

Report = Callable[[AppliedItem], None]


@dataclass(frozen=True)
class ApplyOptions:
    # (region, name) of planned creates of a saved plan whose image was created meanwhile:
    # reported converged without a call.
    converged: frozenset[tuple[str, str]] = frozenset()
    # How to plan an item again from tags read just before changing it (see
    # `kinds.image.confirmed_retag`). None: any difference from the planned tags stops the
    # change.
    replan: Replan | None = None


def apply_plan(
    plan: Plan,
    clients: Clients,
    options: ApplyOptions = ApplyOptions(),
    *,
    report: Report | None = None,
) -> Applied:
    """Execute `plan`; regions in parallel, each at its own pace.

    Deletions are exactly those the plan shows (`plan.prune`, `plan.replace_failed`), and
    each is made only after a fresh tag read confirms the image is still owned."""
    regions = sorted({i.region for i in plan.items} | {u.region for u in plan.unmanaged})
    deleting = {(u.region, u.image_id) for u in plan.deletions}

    def region_work(region: str) -> tuple[list[AppliedItem], list[AppliedUnmanaged]]:
        client = clients.region(region)
        items = [i for i in plan.items if i.region == region]
        unmanaged = [u for u in plan.unmanaged if u.region == region]
        return (
            _apply_region(plan, items, client, options, report),
            [
                _delete(u, client) if (u.region, u.image_id) in deleting else unmanaged_result(u)
                for u in unmanaged
            ],
        )

    by_region = in_parallel(region_work, regions)
    results = {(i.region, i.name): i for done, _ in by_region.values() for i in done}
    pruned = {(u.region, u.image_id): u for _, gone in by_region.values() for u in gone}
    return Applied(
        specs_digest=plan.specs_digest,
        items=tuple(results[(i.region, i.name)] for i in plan.items),
        unmanaged=tuple(pruned[(u.region, u.image_id)] for u in plan.unmanaged),
        targets=plan.targets,
        prune=plan.prune,
        replace_failed=plan.replace_failed,
        interrupted=clients.stop.is_set(),
    )


def _apply_region(
    plan: Plan,
    items: Sequence[PlanItem],
    client: RegionClient,
    options: ApplyOptions,
    report: Report | None,
) -> list[AppliedItem]:
    creates_first = _order_creates(plan, items)

    def run(item: PlanItem) -> AppliedItem:
        if (item.region, item.name) in options.converged:
            done = item_result(item, Result.CONVERGED)
        else:
            done = _apply_item(plan, item, client, creates_first, options)
        if report:
            report(done)
        return done

    return client.map(run, list(items))


def _order_creates(plan: Plan, items: Sequence[PlanItem]) -> set[str]:
    """Names of the creates to send now: one per source WorkSpace, as the service captures
    one image of a WorkSpace at a time (it suspends the WorkSpace while it captures)."""
    chosen: dict[str, str] = {}
    for item in items:
        creates = item.action is Action.CREATE or plan.replaces(item)
        if creates and not item.source_busy:
            chosen.setdefault(item.source_workspace_id, item.name)
    return set(chosen.values())


def _apply_item(
    plan: Plan,
    item: PlanItem,
    client: RegionClient,
    creates_now: set[str],
    options: ApplyOptions,
) -> AppliedItem:
    if item.action is Action.NO_OP:
        return item_result(item, Result.UNCHANGED)
    if item.is_error and not plan.replaces(item):
        return item_result(item, Result.SKIPPED, item.reason)
    if client.stop.is_set():
        return item_result(item, Result.SKIPPED, "interrupted before this item started")
    # Every item is an image today; copies, shares and bundles will each send theirs to
    # their own kind module here, with the same results and the same interruption rule.
    try:
        if plan.replaces(item):
            return image.replace(item, client, creates_now)
        if item.action is Action.CREATE:
            return image.create(item, client, creates_now)
        return image.confirmed_retag(item, client, options.replan)
    except Interrupted:
        return item_result(item, Result.SKIPPED, "interrupted before this item's call was sent")


def _delete(u: Unmanaged, client: RegionClient) -> AppliedUnmanaged:
    """A deletion the plan shows (prune), unless an interruption came first."""
    if client.stop.is_set():
        return unmanaged_result(u, Result.SKIPPED, "interrupted before this deletion started")
    try:
        return image.prune(u, client)
    except Interrupted:
        return unmanaged_result(u, Result.SKIPPED, "interrupted before this deletion was sent")
