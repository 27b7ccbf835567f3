"""`apply --wait`: follow captures to the end, and chain same-source creates.

A capture takes up to 45 minutes. The service captures one image of a WorkSpace at a
time, so creates deferred behind a capture of the same source run in turn as each ends;
creates deferred because the source was busy for another reason run once it is AVAILABLE.

Polling asks only about the images and sources in question (25 ids a call) and goes
through the same paced clients as everything else, so it never exceeds the API pace.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import botocore.exceptions

from reconciler.aws import PAGE_SIZE, Clients, RegionClient
from reconciler.kinds.image import create_now
from reconciler.plan import Action
from reconciler.results import Applied, AppliedItem, Result

FIRST_POLL = 2.0  # seconds; the gap doubles up to MAX_POLL
MAX_POLL = 30.0

Report = Callable[[Sequence[AppliedItem], float], None]  # items being waited for, elapsed


@dataclass(frozen=True)
class WaitOutcome:
    applied: Applied
    timed_out: tuple[AppliedItem, ...]  # still PENDING or deferred when time ran out


def wait_for_captures(
    applied: Applied,
    clients: Clients,
    *,
    timeout: float,
    report: Report | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> WaitOutcome:
    items = {(i.region, i.name): i for i in applied.items}
    start, gap = clock(), FIRST_POLL
    while True:
        waiting = [i for i in items.values() if _capturing(i) or i.result is Result.DEFERRED]
        if report:
            report(waiting, clock() - start)
        if not waiting or clients.stop.is_set():
            break
        if clock() - start >= timeout:
            return WaitOutcome(_with(applied, items), tuple(waiting))
        if clients.stop.wait(min(gap, max(0.0, timeout - (clock() - start)))):
            break
        gap = min(MAX_POLL, gap * 2)
        for region in sorted({i.region for i in waiting}):
            client = clients.region(region)
            _refresh_captures(client, items)
            _start_deferred(client, items)
    return WaitOutcome(_with(applied, items), ())


def _capturing(item: AppliedItem) -> bool:
    return item.state == "PENDING" and item.result is not Result.FAILED and bool(item.image_id)


def _refresh_captures(client: RegionClient, items: dict[tuple[str, str], AppliedItem]) -> None:
    pending = [i for i in items.values() if i.region == client.region and _capturing(i)]
    by_id = {i.image_id: i for i in pending}
    ids = sorted(i for i in by_id if i)
    for start in range(0, len(ids), PAGE_SIZE):
        reply = client.reads.describe_workspace_images(ImageIds=ids[start : start + PAGE_SIZE])
        for image in reply.get("Images", []):
            item = by_id[image["ImageId"]]
            state = image.get("State", item.state)
            update: dict[str, object] = {"state": state}
            if state == "ERROR":
                reasons = (image.get("ErrorCode"), image.get("ErrorMessage"))
                detail = ": ".join(x for x in reasons if x) or "no error detail"
                update |= {"result": Result.FAILED, "error": f"capture ended in ERROR ({detail})"}
            items[(item.region, item.name)] = item.model_copy(update=update)


def _start_deferred(client: RegionClient, items: dict[tuple[str, str], AppliedItem]) -> None:
    """Create the deferred items whose source WorkSpace is free now, one per source.

    Deferred items are creates, and replacements of failed images (--replace-failed)."""
    mine = [i for i in items.values() if i.region == client.region]
    busy = {i.source_workspace_id for i in mine if _capturing(i)}
    deferred = [
        i
        for i in mine
        if i.result is Result.DEFERRED
        and i.action in (Action.CREATE, Action.CONFLICT)
        and i.source_workspace_id not in busy
    ]
    if not deferred:
        return
    sources = sorted({i.source_workspace_id for i in deferred})
    try:
        states = {w["WorkspaceId"]: w.get("State") for w in client.workspaces(sources)}
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return  # try again at the next poll
    started: set[str] = set()
    for item in deferred:
        source = item.source_workspace_id
        if states.get(source) != "AVAILABLE" or source in started:
            continue
        started.add(source)
        items[(item.region, item.name)] = create_now(item, client)


def _with(applied: Applied, items: dict[tuple[str, str], AppliedItem]) -> Applied:
    ordered = tuple(items[(i.region, i.name)] for i in applied.items)
    return applied.model_copy(update={"items": ordered})
