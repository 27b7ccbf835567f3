"""`apply --wait`: follow captures and copies to the end, and run what waited on them.

A capture takes up to 45 minutes, a copy about as long. The service captures one image of
a WorkSpace at a time, so captures deferred behind one of the same source run in turn as
each ends; captures deferred because the source was busy run once it is AVAILABLE. Once
an image is AVAILABLE, the items that waited for it (its copies, its shares, the bundles
that use it) run, through the same engine as the first pass (`apply.run_ready`), until
everything is done or the time runs out.

Polling asks only about the images and sources in question (25 ids a call) and goes
through the same paced clients as everything else, so it never exceeds the API pace.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import botocore.exceptions

from reconciler.apply import (
    Key,
    Report,
    not_ready,
    outside_not_ready,
    ready_image,
    run_ready,
    waited_key,
)
from reconciler.aws import PAGE_SIZE, Clients, RegionClient
from reconciler.kinds import KINDS, ApplyContext, kind_of
from reconciler.kinds.base import ImageById
from reconciler.kinds.image import create_now, detail_of, error_detail, is_capture, made_by
from reconciler.plan import Action, Kind, Plan, PlanItem, Replan
from reconciler.results import Applied, AppliedItem, Result

FIRST_POLL = 2.0  # seconds; the gap doubles up to MAX_POLL
MAX_POLL = 30.0

WaitReport = Callable[[Sequence[AppliedItem], float], None]  # items waited for, elapsed


@dataclass(frozen=True)
class WaitOutcome:
    applied: Applied
    timed_out: tuple[AppliedItem, ...]  # still PENDING or deferred when time ran out


def wait_for_captures(
    applied: Applied,
    clients: Clients,
    *,
    timeout: float,
    report: WaitReport | None = None,
    clock: Callable[[], float] = time.monotonic,
    replan: Replan | None = None,
    done: Report | None = None,
) -> WaitOutcome:
    """Poll until nothing is PENDING or waiting, or `timeout` seconds; `done` hears of each
    item that waited and has now run."""
    items: dict[Key, AppliedItem] = {i.key: i for i in applied.items}
    plan: Plan = applied  # what the engine needs of the plan, with the results so far
    go_now = frozenset().union(*(k.schedule(plan) for k in KINDS if k.schedule))
    ctx = ApplyContext(plan=plan, replan=replan, go_now=go_now)
    start, gap = clock(), FIRST_POLL
    while True:
        _fail_what_waits_on_failures(items, done)
        waiting = [i for i in items.values() if _waiting(i, items)]
        if report:
            report(waiting, clock() - start)
        if not waiting or clients.stop.is_set():
            break
        if clock() - start >= timeout:
            return WaitOutcome(_with(applied, items, clients), tuple(waiting))
        if clients.stop.wait(min(gap, max(0.0, timeout - (clock() - start)))):
            break
        gap = min(MAX_POLL, gap * 2)
        for account, region in sorted({(i.account or "", i.region) for i in waiting}):
            client = clients.region(region, account)
            _refresh_images(client, items)
            _start_deferred(client, items, ctx, done)
        _run_dependents(plan, items, clients, ctx, done)
    return WaitOutcome(_with(applied, items, clients), ())


def _fail_what_waits_on_failures(items: dict[Key, AppliedItem], done: Report | None) -> None:
    """Items deferred until an image is AVAILABLE whose image failed (a capture or a copy in
    ERROR, or an item that failed before it) can never run: failed now, naming the image,
    down the chain (a bundle on a copy of a failed capture too), so the wait ends."""
    while True:
        doomed = {
            item.key: failed
            for item in items.values()
            if item.result is Result.DEFERRED
            and not item.next_run
            and (failed := _failed_by(item, items)) is not None
        }
        if not doomed:
            return
        for key, failed in doomed.items():
            items[key] = failed
            if done:
                done(failed)


def _failed_by(item: AppliedItem, items: dict[Key, AppliedItem]) -> AppliedItem | None:
    """The item failed, if the image it waits for failed; else None."""
    if _outside(item) is not None:
        outcome = outside_not_ready(_planned(item))
        return outcome if outcome is not None and outcome.result is Result.FAILED else None
    image = _image_of(item, items)
    if image is None or image.result is not Result.FAILED:
        return None
    return not_ready(_planned(item), image)


def _planned(item: AppliedItem) -> PlanItem:
    return PlanItem(**item.model_dump(include=set(PlanItem.model_fields)))


def _capturing(item: AppliedItem) -> bool:
    """An image (a capture or a copy) this run made, or found, still PENDING."""
    return (
        item.kind is Kind.IMAGE
        and item.state == "PENDING"
        and item.result is not Result.FAILED
        and bool(item.image_id)
    )


def _waiting(item: AppliedItem, items: dict[Key, AppliedItem]) -> bool:
    """Whether the item is still in progress: PENDING, a deferred capture, or deferred until
    an image is AVAILABLE that is itself still in progress."""
    if _capturing(item):
        return True
    if item.result is not Result.DEFERRED or item.next_run:
        return False
    if is_capture(item):
        return item.action in (Action.CREATE, Action.CONFLICT)
    if _outside(item) is not None:
        return item.image_state != "ERROR"
    image = _image_of(item, items)
    return image is not None and image.result is not Result.FAILED


def _outside(item: AppliedItem) -> str | None:
    """The id of the image an item waits for that no item of the plan makes."""
    waited = kind_of(item).waits_for(item)
    return waited.image_id if isinstance(waited, ImageById) else None


def _image_of(item: AppliedItem, items: dict[Key, AppliedItem]) -> AppliedItem | None:
    """The image item `item` waits for, if it waits for one this run plans."""
    waited = waited_key(kind_of(item).waits_for(item))
    return items.get(waited) if waited else None


def _here(item: AppliedItem, client: RegionClient) -> bool:
    """Whether the item lives where the client acts: its account and region."""
    return (item.account or "", item.region) == (client.account, client.region)


def _refresh_images(client: RegionClient, items: dict[Key, AppliedItem]) -> None:
    """The state of the images in progress in the region: those this run made or found
    PENDING, and those that deferred items wait for by id (in the same calls, 25 ids each).
    """
    mine = [i for i in items.values() if _here(i, client)]
    by_id = {i.image_id: i for i in mine if _capturing(i)}
    waiting: dict[str, list[AppliedItem]] = {}
    for item in mine:
        if item.result is Result.DEFERRED and not item.next_run and (found := _outside(item)):
            waiting.setdefault(found, []).append(item)
    ids = sorted({i for i in by_id if i} | set(waiting))
    for start in range(0, len(ids), PAGE_SIZE):
        reply = client.reads.describe_workspace_images(ImageIds=ids[start : start + PAGE_SIZE])
        for image in reply.get("Images", []):
            for dependent in waiting.get(image["ImageId"], ()):
                state = image.get("State", dependent.image_state)
                items[dependent.key] = dependent.model_copy(update={"image_state": state})
            made_here = by_id.get(image["ImageId"])
            if made_here is None:
                continue
            state = image.get("State", made_here.state)
            update: dict[str, object] = {"state": state}
            if state == "ERROR":
                detail = error_detail(image) or "no error detail"
                made = made_by(made_here)
                update |= {"result": Result.FAILED, "error": f"{made} ended in ERROR ({detail})"}
            items[made_here.key] = made_here.model_copy(update=update)


def _start_deferred(
    client: RegionClient,
    items: dict[Key, AppliedItem],
    ctx: ApplyContext,
    done: Report | None,
) -> None:
    """Capture the deferred images whose source WorkSpace is free now, one per source.

    Deferred captures are creates, and replacements of failed images (--replace-failed)."""
    captures = [i for i in items.values() if _here(i, client) and is_capture(i)]
    busy = {detail_of(i).source_workspace_id for i in captures if _capturing(i)}
    deferred = [
        i
        for i in captures
        if i.result is Result.DEFERRED
        and i.action in (Action.CREATE, Action.CONFLICT)
        and detail_of(i).source_workspace_id not in busy
    ]
    if not deferred:
        return
    sources = sorted({detail_of(i).source_workspace_id or "" for i in deferred})
    try:
        states = {w["WorkspaceId"]: w.get("State") for w in client.workspaces(sources)}
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return  # try again at the next poll
    started: set[str | None] = set()
    for item in deferred:
        source = detail_of(item).source_workspace_id
        if states.get(source or "") != "AVAILABLE" or source in started:
            continue
        started.add(source)
        items[item.key] = create_now(item, client, ctx)
        if done:
            done(items[item.key])


def _run_dependents(
    plan: Plan,
    items: dict[Key, AppliedItem],
    clients: Clients,
    ctx: ApplyContext,
    done: Report | None,
) -> None:
    """Run the deferred items whose image is AVAILABLE now (copies, shares, bundles), then
    those that what just ran lets go (an import, once its share is done), each once."""
    tried: set[Key] = set()
    while True:
        ready = []
        for item in items.values():
            if item.result is not Result.DEFERRED or item.next_run or item.key in tried:
                continue
            image = _image_of(item, items)
            if (image is not None and ready_image(image) is not None) or (
                _outside(item) is not None and item.image_state == "AVAILABLE"
            ):
                ready.append(_planned(item))
        if not ready:
            return
        tried.update(i.key for i in ready)
        run_ready(plan, ready, items, clients, ctx, done)


def _with(applied: Applied, items: dict[Key, AppliedItem], clients: Clients) -> Applied:
    """The results after waiting; interrupted if a signal stopped the wait (exit 130)."""
    ordered = tuple(items[i.key] for i in applied.items)
    stopped = applied.interrupted or clients.stop.is_set()
    return applied.model_copy(update={"items": ordered, "interrupted": stopped})
