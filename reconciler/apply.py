"""Apply: execute a plan and return every item's result. The generic engine.

It works through dependencies in rounds: an item runs once the image it waits for (see
each kind's `waits_for`) has been settled by an earlier round: captures, tag changes and
adoptions first; then copies of images that are AVAILABLE; then shares and bundles of
images AVAILABLE in their region. An item whose image is not AVAILABLE yet is `deferred`
with a reason naming what it waits for (`apply --wait` runs it later, `wait.py`); one whose
image failed fails; one whose image is in conflict or blocked is skipped.

Each round runs its items region by region in parallel, each region through its paced
pool. Deletions come last (`apply_deletions`): bundles before images, and an image a bundle
still uses is kept. An interruption (SIGINT/SIGTERM) stops new calls; every item not yet
started is reported `skipped`. The calls belong to the kinds (`reconciler.kinds`).

Nothing here prints or decides an exit code. One failing item never stops the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from reconciler.aws import in_parallel
from reconciler.errors import Interrupted
from reconciler.kinds import KINDS, ApplyContext, kind_of, module
from reconciler.kinds import bundle as bundle_kind
from reconciler.kinds import image as image_kind
from reconciler.kinds.base import ImageById, Waited
from reconciler.kinds.creating import AWS_FAILURES
from reconciler.kinds.image import CREATE_ERRORS, bundles_phrase, create_now, resource_id
from reconciler.plan import Action, Key, Kind, Plan, PlanItem, Replan, Unmanaged
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
    "Key",
    "Report",
    "Result",
    "apply_changes",
    "apply_deletions",
    "apply_plan",
    "create_now",
    "run_ready",
]

Report = Callable[[AppliedItem], None]
W = TypeVar("W")
R = TypeVar("R")
STARTED, SENT = "started", "sent"  # when an interruption stopped a piece of work
IN_FLIGHT = "in flight"  # its call was in flight, and was abandoned
# An abandoned create is settled by name by the next run, so it is never made twice.
ABANDONED = (
    "interrupted while its call was in flight; the call was abandoned, its outcome is "
    "unknown: run apply again to settle it"
)


@dataclass(frozen=True)
class ApplyOptions:
    # Keys (kind, account, region, name) of planned creates of a saved plan whose resource
    # was created meanwhile: reported converged without a call.
    converged: frozenset[Key] = frozenset()
    # How to plan an item again from tags read just before changing it. None: any
    # difference from the planned tags stops the change.
    replan: Replan | None = None


def apply_plan(
    plan: Plan,
    clients: Clients,
    options: ApplyOptions = ApplyOptions(),
    *,
    report: Report | None = None,
) -> Applied:
    """The changes, then the deletions the plan shows (`plan.prune`, `plan.replace_failed`),
    each made only after a fresh tag read confirms the resource is still owned."""
    return apply_deletions(apply_changes(plan, clients, options, report=report), clients)


def apply_changes(
    plan: Plan,
    clients: Clients,
    options: ApplyOptions = ApplyOptions(),
    *,
    report: Report | None = None,
) -> Applied:
    """Every item's change, in dependency order; no deletion of unmanaged resources."""
    go_now: frozenset[Key] = frozenset().union(*(k.schedule(plan) for k in KINDS if k.schedule))
    ctx = ApplyContext(plan=plan, replan=options.replan, go_now=go_now)
    results: dict[Key, AppliedItem] = {}
    for item in plan.items:
        if item.key in options.converged:
            results[item.key] = item_result(item, Result.CONVERGED)
            _tell(report, results[item.key])
    run_ready(plan, [i for i in plan.items if i.key not in results], results, clients, ctx, report)
    return Applied(
        specs_digest=plan.specs_digest,
        items=tuple(results[i.key] for i in plan.items),
        unmanaged=tuple(unmanaged_result(u) for u in plan.unmanaged),
        targets=plan.targets,
        prune=plan.prune,
        replace_failed=plan.replace_failed,
        accounts=plan.accounts,
        interrupted=clients.stop.is_set(),
    )


def run_ready(
    plan: Plan,
    todo: Sequence[PlanItem],
    results: dict[Key, AppliedItem],
    clients: Clients,
    ctx: ApplyContext,
    report: Report | None = None,
) -> None:
    """Run `todo` in rounds, each item once what it waits for is settled; the result of each
    goes into `results` (which holds the results so far, and the images waited for)."""
    planned = {i.key for i in plan.items}
    while todo:
        ready: list[tuple[PlanItem, str | None]] = []
        later: list[PlanItem] = []
        for item in todo:
            settled = _settled(plan, item, clients)
            waited = kind_of(item).waits_for(item) if settled is None else None
            key = waited_key(waited)
            if settled is None and waited is not None and key not in planned:
                # An image no item of the plan makes: as planned, or as --wait polled it.
                settled = outside_not_ready(item)
            if settled is not None:
                results[item.key] = settled
                _tell(report, settled)
            elif key is None or key not in planned:
                ready.append((item, outside_id(item, waited)))
            elif key not in results:
                later.append(item)
            elif (image_id := ready_image(results[key])) is not None:
                ready.append((item, image_id))
            else:
                results[item.key] = not_ready(item, results[key])
                _tell(report, results[item.key])
        if not ready and len(later) == len(todo):  # a cycle: impossible by construction
            raise AssertionError(f"items wait for each other: {[i.key for i in later]}")
        _run_round(ready, results, clients, ctx, report)
        todo = later


def ready_image(waited: AppliedItem) -> str | None:
    """The id of the image an item may use now that what it waited for is settled, else
    None: an image AVAILABLE; for an import, its source once shared with its account (its
    share item done, or shared already)."""
    if not _usable(waited) or not waited.image_id:
        return None
    if waited.kind is Kind.SHARE:  # the service shares only AVAILABLE images
        shared_now = waited.result is Result.SHARING_UPDATED
        shared = waited.result is Result.UNCHANGED and waited.image_state == "AVAILABLE"
        return waited.image_id if shared_now or shared else None
    return waited.image_id if waited.state == "AVAILABLE" else None


def outside_id(item: PlanItem, waited: Waited | None) -> str | None:
    """The id of the image an item uses that no item of the plan makes."""
    if isinstance(waited, ImageById):
        return waited.image_id
    return item.image_id if waited else None


def reread(clients: Clients, replan: Replan) -> Callable[[PlanItem], PlanItem]:
    """How to plan an existing resource's item again from its tags read afresh
    (DescribeTags, the authoritative read); the item as it was if they can't be read."""

    def again(item: PlanItem) -> PlanItem:
        try:
            tags = clients.region(item.region, item.account).tags(resource_id(item))
        except AWS_FAILURES:
            return item
        return replan(item, tags) if tags is not None else item

    return again


def waited_key(waited: Waited | None) -> Key | None:
    """The plan key of the item an item waits for; None for an image waited for by its id
    (no item of the plan makes it)."""
    if waited is None or isinstance(waited, ImageById):
        return None
    return waited


def outside_not_ready(item: PlanItem) -> AppliedItem | None:
    """The result of an item whose image no item of the plan makes, judged by that image's
    state (`image_state`: as planned, or as `apply --wait` last polled it); None once it is
    AVAILABLE. No call is sent for an image that isn't: the service refuses it."""
    state = item.image_state
    if state in (None, "AVAILABLE"):
        return None
    if image_kind.is_import(item):
        d = image_kind.detail_of(item)
        what = f"source image {d.source_image_id} ({d.copy_from})"
    else:
        what = f"image {item.image_id} ({item.region})"
    if state == "ERROR":
        return item_result(item, Result.FAILED, f"its {what} is in ERROR")
    why = f"waits for its {what} to be AVAILABLE ({state})"
    return item_result(item, Result.DEFERRED, why + AGAIN)


def _settled(plan: Plan, item: PlanItem, clients: Clients) -> AppliedItem | None:
    """The result of an item that has nothing to do or may not be done; None to run it."""
    if item.action is Action.NO_OP:
        return item_result(item, Result.UNCHANGED)
    if item.is_error and not plan.replaces(item):
        return item_result(item, Result.SKIPPED, item.reason)
    if clients.stop.is_set():
        return item_result(item, Result.SKIPPED, "interrupted before this item started")
    return None


def _usable(image: AppliedItem) -> bool:
    return image.result not in (Result.FAILED, Result.SKIPPED)


AGAIN = "; run apply again later, or use --wait"


def not_ready(item: PlanItem, image: AppliedItem) -> AppliedItem:
    """An item whose image is not AVAILABLE (yet): failed, skipped or deferred, saying why."""
    if image.kind is Kind.SHARE:
        return _share_not_ready(item, image)
    made_by = image_kind.made_by(image)
    what = f"{'image' if made_by == 'capture' else made_by} {image.name} ({image.region})"
    if image.result is Result.FAILED or image.state == "ERROR":
        why = image.error or f"it is in {image.state}"
        return item_result(item, Result.FAILED, f"its {what} failed: {why}")
    if image.result is Result.SKIPPED:
        return item_result(item, Result.SKIPPED, f"its {what} was not made: {image.error}")
    if image.result is Result.DEFERRED:
        inner = (image.error or image.reason or "").removesuffix(AGAIN)
        link = "which" if inner.startswith("waits for") else "deferred:"
        why = f"waits for its {what}, {link} {inner}"
    elif image.result in (Result.CREATED, Result.CONVERGED) and image_kind.is_copy(image):
        why = f"waits for the {made_by} of {image.name} to {image.region} to be AVAILABLE"
    elif image.result in (Result.CREATED, Result.CONVERGED):
        why = f"waits for the capture of {image.name} ({image.region}) to end"
    else:
        why = f"waits for its {what}: {image.state or 'not AVAILABLE'}"
    return item_result(item, Result.DEFERRED, why + AGAIN)


def _share_not_ready(item: PlanItem, share: AppliedItem) -> AppliedItem:
    """An import whose source is not shared with its account yet: the share it waits for,
    named (the source account, the image, the importing account)."""
    source = share.account_name or share.account
    what = f"{share.name} ({share.region})"
    to = item.account_name or item.account
    if share.result is Result.FAILED:
        return item_result(
            item, Result.FAILED, f"{source} could not share {what} with {to}: {share.error}"
        )
    if share.result is Result.SKIPPED:
        why = share.error or share.reason
        return item_result(item, Result.SKIPPED, f"{source} did not share {what}: {why}")
    inner = (share.error or share.reason or "").removesuffix(AGAIN)
    tail = f", which {inner}" if inner.startswith("waits for") else f" ({inner})" if inner else ""
    why = f"waits for {source} to share {what} with {to}{tail}"
    return item_result(item, Result.DEFERRED, why + AGAIN)


def _run_round(
    ready: Sequence[tuple[PlanItem, str | None]],
    results: dict[Key, AppliedItem],
    clients: Clients,
    ctx: ApplyContext,
    report: Report | None,
) -> None:
    # Each item is reported as it ends (the progress line), not when its round ends.
    def run(pair: tuple[PlanItem, str | None], client: RegionClient) -> AppliedItem:
        item, image_id = pair
        done = kind_of(item).apply(item, client, dataclasses.replace(ctx, image_id=image_id))
        _tell(report, done)
        return done

    def stopped(pair: tuple[PlanItem, str | None], why: str) -> AppliedItem:
        tail = " started" if why == STARTED else "'s call was sent"
        error = ABANDONED if why == IN_FLIGHT else f"interrupted before this item{tail}"
        done = item_result(pair[0], Result.SKIPPED, error)
        _tell(report, done)
        return done

    for done in by_region(clients, ready, lambda p: _place(p[0]), run, stopped):
        results[done.key] = done


def _tell(report: Report | None, item: AppliedItem) -> None:
    if report:
        report(item)


def apply_deletions(applied: Applied, clients: Clients) -> Applied:
    """The deletions the plan shows: owned unmanaged bundles first, then owned unmanaged
    images (their sharing revoked first), never an image that a bundle still uses."""
    if not applied.prune:
        return applied
    doomed = applied.deletions  # computed once: each unmanaged image's bundles are judged
    shown = [u for u in applied.unmanaged if u in doomed]
    deleted = _delete_all(applied, shown, Kind.BUNDLE, clients, {})
    ctx_in_use = in_use(applied, deleted.values())
    deleted |= _delete_all(applied, shown, Kind.IMAGE, clients, ctx_in_use)
    unmanaged = tuple(deleted.get(u.key, _kept(applied, u)) for u in applied.unmanaged)
    return applied.model_copy(update={"unmanaged": unmanaged, "interrupted": clients.stop.is_set()})


def _kept(applied: Applied, u: AppliedUnmanaged) -> AppliedUnmanaged:
    """An unmanaged image the plan showed kept, because a bundle will still use it."""
    users = applied.kept_by(u)
    if not users:
        return u
    return unmanaged_result(u, Result.UNCHANGED, f"kept: {bundles_phrase(users)}")


def _delete_all(
    applied: Applied,
    unmanaged: Iterable[AppliedUnmanaged],
    kind: Kind,
    clients: Clients,
    users: dict[tuple[str, str], tuple[str, ...]],
) -> dict[Key, AppliedUnmanaged]:
    doomed = [u for u in unmanaged if u.kind is kind]
    delete = module(kind).delete
    assert delete is not None  # every kind with unmanaged resources deletes them
    ctx = ApplyContext(plan=applied, in_use=users)

    def stopped(u: AppliedUnmanaged, why: str) -> AppliedUnmanaged:
        what = "started" if why == STARTED else "was sent"
        if why == IN_FLIGHT:
            return unmanaged_result(u, Result.SKIPPED, ABANDONED)
        return unmanaged_result(u, Result.SKIPPED, f"interrupted before this deletion {what}")

    done = by_region(clients, doomed, _place, lambda u, c: delete(u, c, ctx), stopped)
    return {u.key: u for u in done}


Place = tuple[str, str]  # (account, region): "" for the run's own account


def _place(x: PlanItem | Unmanaged) -> Place:
    return (x.account or "", x.region)


def by_region(
    clients: Clients,
    work: Sequence[W],
    place_of: Callable[[W], Place],
    run: Callable[[W, RegionClient], R],
    stopped: Callable[[W, str], R],
) -> list[R]:
    """`run` each piece of work through its account's and region's paced pool, all of them
    in parallel. Once interrupted, none is started: `stopped(work, STARTED)`; one whose call
    was about to be sent when the signal came: `stopped(work, SENT)`; one whose call was
    still in flight IN_FLIGHT_GRACE after it, abandoned: `stopped(work, IN_FLIGHT)`."""

    def region_work(place: Place) -> list[R]:
        account, region = place
        client = clients.region(region, account)

        def one(w: W) -> R:
            if client.stop.is_set():
                return stopped(w, STARTED)
            try:
                return run(w, client)
            except Interrupted:
                return stopped(w, SENT)

        def abandoned(w: W, started: bool) -> R:
            return stopped(w, IN_FLIGHT if started else STARTED)

        return client.map(one, [w for w in work if place_of(w) == place], abandoned)

    done = in_parallel(region_work, sorted({place_of(w) for w in work}))
    return [r for results in done.values() for r in results]


# Results after which a bundle item's bundle uses its declared image.
_ON_ITS_IMAGE = frozenset(
    {Result.CREATED, Result.CONVERGED, Result.IMAGE_UPDATED, Result.ADOPTED, Result.TAGS_UPDATED}
)


def in_use(
    applied: Applied, deleted: Iterable[AppliedUnmanaged]
) -> dict[tuple[str, str], tuple[str, ...]]:
    """The bundles that use each image after this run's changes, by (region, image id): the
    ones found using it when planned, less those moved to another image or deleted, plus
    those created on it or moved to it."""
    users: dict[tuple[str, str], set[str]] = {}
    for u in applied.unmanaged:
        if u.kind is Kind.IMAGE and u.image_id:
            users.setdefault((u.region, u.image_id), set()).update(u.used_by)
    for item in applied.items:
        if item.kind is not Kind.BUNDLE or not item.image_id:
            continue
        if item.result in _ON_ITS_IMAGE:
            before = bundle_kind.detail_of(item).image_before
            if before:
                users.get((item.region, before), set()).discard(item.name)
            users.setdefault((item.region, item.image_id), set()).add(item.name)
    for gone in deleted:
        if gone.result is Result.DELETED and gone.image_id:
            users.get((gone.region, gone.image_id), set()).discard(gone.name)
    return {key: tuple(sorted(names)) for key, names in users.items() if names}
