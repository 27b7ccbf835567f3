"""Apply: execute a plan item by item and return every item's result.

Nothing here prints or decides an exit code. One failing item never stops the others;
the only thing that stops new calls is an interruption (SIGINT/SIGTERM), after which every
item not yet started is reported `skipped`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import botocore.exceptions

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE
from reconciler.aws import THROTTLE_CODES, error_code, in_parallel, is_ambiguous
from reconciler.errors import Interrupted
from reconciler.plan import Action, Plan, PlanItem, Unmanaged

if TYPE_CHECKING:
    from reconciler.aws import Clients, RegionClient

CREATE_THROTTLE_RETRIES = 8  # a throttled create did not run, so it is safe to send again


class Result(str, Enum):
    CREATED = "created"
    CONVERGED = "converged"
    TAGS_UPDATED = "tags-updated"
    ADOPTED = "adopted"
    DELETED = "deleted"
    DEFERRED = "deferred"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"


class AppliedItem(PlanItem):
    result: Result
    error: str | None = None


class AppliedUnmanaged(Unmanaged):
    result: Result = Result.UNCHANGED
    error: str | None = None


class Applied(Plan):
    """The plan document with, on each item, its result and error."""

    items: tuple[AppliedItem, ...]
    unmanaged: tuple[AppliedUnmanaged, ...] = ()
    interrupted: bool = False

    @property
    def failed(self) -> bool:
        """Any failure, and any conflict or blocked item left as it was."""
        unresolved = any(i.is_error and i.result is Result.SKIPPED for i in self.items)
        return (
            unresolved
            or any(i.result is Result.FAILED for i in self.items)
            or any(u.result is Result.FAILED for u in self.unmanaged)
        )

    @property
    def work_left(self) -> bool:
        """A deferred create or replacement (--replace-failed), an item an interruption
        skipped, or a deletion skipped until its capture ends; a conflict or blocked item
        left as it was is a failure instead."""
        return any(
            i.result is Result.DEFERRED or (i.result is Result.SKIPPED and not i.is_error)
            for i in self.items
        ) or any(u.result is Result.SKIPPED for u in self.unmanaged)


# What to do about each documented CreateWorkspaceImage error: (result, hint).
CREATE_ERRORS: dict[str, tuple[Result, str]] = {
    "ResourceAlreadyExistsException": (Result.CONVERGED, ""),
    "InvalidResourceStateException": (
        Result.DEFERRED,
        "the source WorkSpace is busy (an image of it may be capturing); run apply again later",
    ),
    "ResourceLimitExceededException": (
        Result.FAILED,
        "the region's image quota is reached: delete unused images (apply --prune) or ask AWS "
        "to raise it",
    ),
    "ResourceNotFoundException": (
        Result.FAILED,
        "the source WorkSpace no longer exists: point the spec at another WorkSpace",
    ),
    "OperationNotSupportedException": (
        Result.FAILED,
        "the service cannot image this WorkSpace (for example encrypted volumes, or a bundle "
        "type that can't be imaged): see the message and use another source",
    ),
    "AccessDeniedException": (
        Result.FAILED,
        "the role lacks workspaces:CreateWorkspaceImage (and workspaces:CreateTags): see the "
        "README's IAM policy for apply",
    ),
    "InvalidParameterValuesException": (
        Result.FAILED,
        "the service rejected a value in the spec: fix it as the message says",
    ),
}

Report = Callable[[AppliedItem], None]


@dataclass(frozen=True)
class ApplyOptions:
    # (region, name) of planned creates of a saved plan whose image was created meanwhile:
    # reported converged without a call.
    converged: frozenset[tuple[str, str]] = frozenset()
    prune: bool = False  # delete owned images that no spec declares
    replace_failed: bool = False  # delete owned images in ERROR and capture them again


def apply_plan(
    plan: Plan,
    clients: Clients,
    options: ApplyOptions = ApplyOptions(),
    *,
    report: Report | None = None,
) -> Applied:
    """Execute `plan`; regions in parallel, each at its own pace."""
    regions = sorted({i.region for i in plan.items} | {u.region for u in plan.unmanaged})

    def region_work(region: str) -> tuple[list[AppliedItem], list[AppliedUnmanaged]]:
        client = clients.region(region)
        items = [i for i in plan.items if i.region == region]
        unmanaged = [u for u in plan.unmanaged if u.region == region]
        return (
            _apply_region(items, client, options, report),
            [_prune(u, client) if options.prune else _kept(u) for u in unmanaged],
        )

    by_region = in_parallel(region_work, regions)
    results = {(i.region, i.name): i for done, _ in by_region.values() for i in done}
    pruned = {(u.region, u.image_id): u for _, gone in by_region.values() for u in gone}
    return Applied(
        specs_digest=plan.specs_digest,
        items=tuple(results[(i.region, i.name)] for i in plan.items),
        unmanaged=tuple(pruned[(u.region, u.image_id)] for u in plan.unmanaged),
        targets=plan.targets,
        interrupted=clients.stop.is_set(),
    )


def _apply_region(
    items: Sequence[PlanItem], client: RegionClient, options: ApplyOptions, report: Report | None
) -> list[AppliedItem]:
    creates_first = _order_creates(items, options)

    def run(item: PlanItem) -> AppliedItem:
        if (item.region, item.name) in options.converged:
            done = _done(item, Result.CONVERGED)
        else:
            done = _apply_item(item, client, creates_first, options)
        if report:
            report(done)
        return done

    return client.map(run, list(items))


def has_work(plan: Plan, options: ApplyOptions) -> bool:
    """Whether applying `plan` with `options` would change anything."""
    return (
        plan.has_changes
        or (options.prune and bool(plan.unmanaged))
        or any(replaceable(i, options) for i in plan.items)
    )


def replaceable(item: PlanItem, options: ApplyOptions) -> bool:
    """An owned image in ERROR that --replace-failed deletes and captures again."""
    return options.replace_failed and item.action is Action.CONFLICT and item.state == "ERROR"


def _order_creates(items: Sequence[PlanItem], options: ApplyOptions) -> set[str]:
    """Names of the creates to send now: one per source WorkSpace, as the service captures
    one image of a WorkSpace at a time (it suspends the WorkSpace while it captures)."""
    chosen: dict[str, str] = {}
    for item in items:
        creates = item.action is Action.CREATE or replaceable(item, options)
        if creates and not item.source_busy:
            chosen.setdefault(item.source_workspace_id, item.name)
    return set(chosen.values())


def _apply_item(
    item: PlanItem, client: RegionClient, creates_now: set[str], options: ApplyOptions
) -> AppliedItem:
    if item.action is Action.NO_OP:
        return _done(item, Result.UNCHANGED)
    if item.is_error and not replaceable(item, options):
        return _done(item, Result.SKIPPED, item.reason)
    if client.stop.is_set():
        return _done(item, Result.SKIPPED, "interrupted before this item started")
    try:
        if replaceable(item, options):
            return _replace(item, client, creates_now)
        if item.action is Action.CREATE:
            return _create(item, client, creates_now)
        return _retag(item, client)
    except Interrupted:
        return _done(item, Result.SKIPPED, "interrupted before this item's call was sent")


def _create(item: PlanItem, client: RegionClient, creates_now: set[str]) -> AppliedItem:
    if item.source_busy:
        return _done(item, Result.DEFERRED, item.reason)
    if item.name not in creates_now:
        reason = (
            f"another image of {item.source_workspace_id} is captured first (one capture per "
            "WorkSpace at a time); run apply again when it is done, or use --wait"
        )
        return _done(item, Result.DEFERRED, reason)
    tags = {c.key: c.after for c in item.tag_changes if c.after is not None}
    tags[OWNERSHIP_TAG_KEY] = OWNERSHIP_TAG_VALUE
    for attempt in range(CREATE_THROTTLE_RETRIES + 1):
        try:
            reply = client.creates.create_workspace_image(
                Name=item.name,
                Description=item.description,
                WorkspaceId=item.source_workspace_id,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            )
            return _done(
                item, Result.CREATED, image_id=reply.get("ImageId"), state=reply.get("State")
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
            code = error_code(err)
            if code in THROTTLE_CODES and attempt < CREATE_THROTTLE_RETRIES:
                time.sleep(min(8.0, 0.5 * 2**attempt))  # the bucket has slowed down too
                continue
            if is_ambiguous(err):
                return _settle_lost_create(item, client, err)
            return _create_error(item, err, code)
    raise AssertionError("unreachable")  # pragma: no cover


def create_now(item: PlanItem, client: RegionClient) -> AppliedItem:
    """Send a deferred create now that its source WorkSpace is free (`apply --wait`); a
    deferred replacement whose failed image is still there deletes it first."""
    plain = PlanItem(**item.model_dump(include=set(PlanItem.model_fields)))
    plain = plain.model_copy(update={"source_busy": False})
    if plain.action is Action.CONFLICT and plain.state == "ERROR" and plain.image_id:
        return _replace(plain, client, {plain.name})
    return _create(plain, client, {plain.name})


def _replace(item: PlanItem, client: RegionClient, creates_now: set[str]) -> AppliedItem:
    """Delete a failed (ERROR) image, then capture it again from its source."""
    if item.source_busy:  # keep the failed image until its source can capture a new one
        return _done(item, Result.DEFERRED, item.reason)
    if item.name not in creates_now:
        return _done(item, Result.DEFERRED, "another capture of the same WorkSpace goes first")
    assert item.image_id is not None  # an ERROR conflict is an existing image
    error = _delete(client, item.image_id)
    if error:
        return _done(item, Result.FAILED, f"could not delete the failed image: {error}")
    return _create(item.model_copy(update={"image_id": None, "state": None}), client, creates_now)


def _prune(u: Unmanaged, client: RegionClient) -> AppliedUnmanaged:
    if client.stop.is_set():
        return _kept(u, Result.SKIPPED, "interrupted before this deletion started")
    if u.state == "PENDING":
        return _kept(
            u,
            Result.SKIPPED,
            "still PENDING: the service can't delete it until the capture ends; prune it later",
        )
    try:
        error = _delete(client, u.image_id)
    except Interrupted:
        return _kept(u, Result.SKIPPED, "interrupted before this deletion was sent")
    return _kept(u, Result.FAILED, error) if error else _kept(u, Result.DELETED)


def _kept(
    u: Unmanaged, result: Result = Result.UNCHANGED, error: str | None = None
) -> AppliedUnmanaged:
    return AppliedUnmanaged(**u.model_dump(), result=result, error=error)


# Why the service refuses to delete an image, and what to do about it.
DELETE_HINTS = {
    "ResourceAssociatedException": "a bundle uses this image: delete the bundle or move it to "
    "another image first",
    "InvalidResourceStateException": "the image is still PENDING, or shared with other "
    "accounts: wait for the capture to end, or remove the sharing "
    "(UpdateWorkspaceImagePermission) first",
    "AccessDeniedException": "the role lacks workspaces:DeleteWorkspaceImage",
}


def _delete(client: RegionClient, image_id: str) -> str | None:
    """DeleteWorkspaceImage; an error message with a hint, or None when deleted."""
    try:
        client.reads.delete_workspace_image(ImageId=image_id)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        hint = DELETE_HINTS.get(error_code(err) or "", "see the AWS message")
        return f"{_short(err)} (hint: {hint})"
    return None


def _create_error(item: PlanItem, err: BaseException, code: str | None) -> AppliedItem:
    result, hint = CREATE_ERRORS.get(code or "", (Result.FAILED, "see the AWS message"))
    if result is Result.CONVERGED:
        return _done(item, result)
    message = f"{code or type(err).__name__}: {_aws_message(err)}"
    return _done(item, result, f"{message} (hint: {hint})")


def _settle_lost_create(item: PlanItem, client: RegionClient, err: BaseException) -> AppliedItem:
    """The create's reply was lost: look the name up to learn whether it ran."""
    try:
        found = next((i for i in client.images() if i.get("Name") == item.name), None)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as lookup_err:
        return _done(
            item,
            Result.FAILED,
            f"the create's reply was lost ({_short(err)}) and the lookup failed too "
            f"({_short(lookup_err)}); run apply again: it will find the image if it was created",
        )
    if found is not None:
        return _done(item, Result.CONVERGED, image_id=found["ImageId"], state=found.get("State"))
    return _done(
        item,
        Result.FAILED,
        f"the create failed ({_short(err)}) and no image of that name exists; run apply again",
    )


def _retag(item: PlanItem, client: RegionClient) -> AppliedItem:
    assert item.image_id is not None  # update-tags and adopt are for existing images
    upserts = {c.key: c.after for c in item.tag_changes if c.after is not None}
    removals = [c.key for c in item.tag_changes if c.after is None]
    if item.action is Action.ADOPT:
        upserts[OWNERSHIP_TAG_KEY] = OWNERSHIP_TAG_VALUE
    try:
        # Write before deleting: an interrupted adopt leaves extra tags, never missing ones.
        if upserts:
            client.reads.create_tags(
                ResourceId=item.image_id,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(upserts.items())],
            )
        if removals:
            client.reads.delete_tags(ResourceId=item.image_id, TagKeys=sorted(removals))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        code = error_code(err)
        hint = (
            "the role lacks workspaces:CreateTags / workspaces:DeleteTags"
            if code == "AccessDeniedException"
            else "run apply again"
        )
        return _done(item, Result.FAILED, f"{_short(err)} (hint: {hint})")
    return _done(item, Result.ADOPTED if item.action is Action.ADOPT else Result.TAGS_UPDATED)


def _done(
    item: PlanItem,
    result: Result,
    error: str | None = None,
    *,
    image_id: str | None = None,
    state: str | None = None,
) -> AppliedItem:
    data = item.model_dump(include=set(PlanItem.model_fields))
    if image_id:
        data["image_id"] = image_id
    if state:
        data["state"] = state
    return AppliedItem(**data, result=result, error=error)


def _aws_message(err: BaseException) -> str:
    if isinstance(err, botocore.exceptions.ClientError):
        return str(err.response.get("Error", {}).get("Message", "")) or str(err)
    return str(err)


def _short(err: BaseException) -> str:
    code = error_code(err)
    return f"{code}: {_aws_message(err)}" if code else f"{type(err).__name__}: {err}"
