"""The image kind: the WorkSpaces calls that create, retag and delete an image.

- Create: CreateWorkspaceImage with the declared tags and the ownership tag. A throttled
  create did not run and is sent again; every documented error maps to a result and a hint
  (`CREATE_ERRORS`); a lost reply (5xx, timeout) is settled by looking the name up, and a
  create proven absent is sent once more (the name is unique per region, so that can't
  duplicate). One capture per source WorkSpace at a time: the executor picks which create
  goes now, the others are deferred.
- Retag (update-tags, adopt): the image's tags are read again just before the change and
  the item planned again from them; only the reviewed changes still needed are written.
- Delete (prune, and the failed image of a replacement): a fresh DescribeTags read must
  show the image is still owned, else nothing is sent.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import botocore.exceptions

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE
from reconciler.aws import THROTTLE_CODES, error_code, error_message, is_ambiguous, short_error
from reconciler.plan import Action, PlanItem, Replan, Unmanaged
from reconciler.results import AppliedItem, AppliedUnmanaged, Result, item_result, unmanaged_result

if TYPE_CHECKING:
    from types_boto3_workspaces.type_defs import (
        CreateWorkspaceImageResultTypeDef,
        WorkspaceImageTypeDef,
    )

    from reconciler.aws import RegionClient

CREATE_THROTTLE_RETRIES = 8  # a throttled create did not run, so it is safe to send again


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


def create(item: PlanItem, client: RegionClient, creates_now: set[str]) -> AppliedItem:
    """Capture the image, unless its source is busy or another capture of the same source
    goes first (`creates_now`: the names the executor chose to send now)."""
    if item.source_busy:
        return item_result(item, Result.DEFERRED, item.reason)
    if item.name not in creates_now:
        reason = (
            f"another image of {item.source_workspace_id} is captured first (one capture per "
            "WorkSpace at a time); run apply again when it is done, or use --wait"
        )
        return item_result(item, Result.DEFERRED, reason)
    for attempt in range(CREATE_THROTTLE_RETRIES + 1):
        try:
            reply = _send_create(item, client)
            return item_result(
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
        return replace(plain, client, {plain.name})
    return create(plain, client, {plain.name})


def replace(item: PlanItem, client: RegionClient, creates_now: set[str]) -> AppliedItem:
    """Delete a failed (ERROR) image, then capture it again from its source."""
    if item.source_busy:  # keep the failed image until its source can capture a new one
        return item_result(item, Result.DEFERRED, item.reason)
    if item.name not in creates_now:
        return item_result(
            item, Result.DEFERRED, "another capture of the same WorkSpace goes first"
        )
    assert item.image_id is not None  # an ERROR conflict is an existing image
    refused = _delete_owned(client, item.image_id)
    if refused is not None and refused is not _GONE:
        return item_result(item, Result.FAILED, f"the failed image was not deleted: {refused}")
    return create(item.model_copy(update={"image_id": None, "state": None}), client, creates_now)


def prune(u: Unmanaged, client: RegionClient) -> AppliedUnmanaged:
    """Delete an unmanaged image the plan shows deleted, once a fresh read shows it owned."""
    if u.state == "PENDING":
        return unmanaged_result(
            u,
            Result.SKIPPED,
            "still PENDING: the service can't delete it until the capture ends; prune it later",
        )
    refused = _delete_owned(client, u.image_id)
    if refused is _GONE:
        return unmanaged_result(
            u, Result.UNCHANGED, "already gone when read just before the deletion"
        )
    if refused is _NOT_OWNED:
        return unmanaged_result(u, Result.SKIPPED, refused)
    return (
        unmanaged_result(u, Result.FAILED, refused)
        if refused
        else unmanaged_result(u, Result.DELETED)
    )


# Why the service refuses to delete an image, and what to do about it.
DELETE_HINTS = {
    "ResourceAssociatedException": "a bundle uses this image: delete the bundle or move it to "
    "another image first",
    "InvalidResourceStateException": "the image is still PENDING, or shared with other "
    "accounts: wait for the capture to end, or remove the sharing "
    "(UpdateWorkspaceImagePermission) first",
    "AccessDeniedException": "the role lacks workspaces:DeleteWorkspaceImage",
}


_GONE = "the image no longer exists"
_NOT_OWNED = (
    "no longer carries the ownership tag (read just before the deletion), so it was not "
    "deleted; run plan again"
)


def _delete_owned(client: RegionClient, image_id: str) -> str | None:
    """Delete an image that a fresh tag read shows is still owned.

    Returns None when deleted, `_GONE` or `_NOT_OWNED` (nothing sent), or an error message
    with a hint. The read is DescribeTags, the authoritative one: the plan's tags may come
    from the eventually consistent tagging API, or be minutes old."""
    try:
        tags = client.tags(image_id)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        return f"its ownership could not be confirmed ({short_error(err)}); run apply again"
    if tags is None:
        return _GONE
    if tags.get(OWNERSHIP_TAG_KEY) != OWNERSHIP_TAG_VALUE:
        return _NOT_OWNED
    try:
        client.reads.delete_workspace_image(ImageId=image_id)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        hint = DELETE_HINTS.get(error_code(err) or "", "see the AWS message")
        return f"{short_error(err)} (hint: {hint})"
    return None


def _create_error(item: PlanItem, err: BaseException, code: str | None) -> AppliedItem:
    result, hint = CREATE_ERRORS.get(code or "", (Result.FAILED, "see the AWS message"))
    if result is Result.CONVERGED:
        return item_result(item, result)
    message = f"{code or type(err).__name__}: {error_message(err)}"
    return item_result(item, result, f"{message} (hint: {hint})")


def _settle_lost_create(item: PlanItem, client: RegionClient, err: BaseException) -> AppliedItem:
    """The create's reply was lost: look the name up to learn whether it ran."""
    try:
        found = _find(client, item.name)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as lookup_err:
        return item_result(
            item,
            Result.FAILED,
            f"the create's reply was lost ({short_error(err)}) and the lookup failed too "
            f"({short_error(lookup_err)}); run apply again: it will find the image if it was "
            "created",
        )
    if found is not None:
        return item_result(
            item, Result.CONVERGED, image_id=found["ImageId"], state=found.get("State")
        )
    return _resend(item, client, err)


def _send_create(item: PlanItem, client: RegionClient) -> CreateWorkspaceImageResultTypeDef:
    """CreateWorkspaceImage with the declared tags and the ownership tag, never retried by
    botocore (a lost reply is settled by the caller)."""
    tags = {c.key: c.after for c in item.tag_changes if c.after is not None}
    tags[OWNERSHIP_TAG_KEY] = OWNERSHIP_TAG_VALUE
    return client.creates.create_workspace_image(
        Name=item.name,
        Description=item.description,
        WorkspaceId=item.source_workspace_id,
        Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    )


def _find(client: RegionClient, name: str) -> WorkspaceImageTypeDef | None:
    return next((i for i in client.images() if i.get("Name") == name), None)


def _lookup(client: RegionClient, name: str) -> WorkspaceImageTypeDef | None:
    """The image of that name, or None if absent or the lookup itself failed."""
    try:
        return _find(client, name)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return None


def _resend(item: PlanItem, client: RegionClient, lost: BaseException) -> AppliedItem:
    """A create proven absent after a lost reply is sent once more, and that answer stands.

    The service refuses a second image of one name in a region, so the resend can't
    duplicate: ResourceAlreadyExistsException on it means the first one ran after all."""
    try:
        reply = _send_create(item, client)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        if not is_ambiguous(err):
            return _create_error(item, err, error_code(err))
        found = _lookup(client, item.name)
        if found:
            return item_result(
                item, Result.CONVERGED, image_id=found["ImageId"], state=found.get("State")
            )
        return item_result(
            item,
            Result.FAILED,
            f"the create's reply was lost ({short_error(lost)}), and again when it was sent once "
            f"more ({short_error(err)}); run apply again: it will find the image if it was created",
        )
    return item_result(
        item, Result.CREATED, image_id=reply.get("ImageId"), state=reply.get("State")
    )


def confirmed_retag(item: PlanItem, client: RegionClient, replan: Replan | None) -> AppliedItem:
    """Update tags or adopt, after reading the image's tags again (DescribeTags).

    The plan's tags may be stale: the tagging API is eventually consistent, and others write
    tags too. The item is planned again from the fresh tags; only the reviewed tag changes
    that are still needed are written. An image no longer needing them is `unchanged`; one
    whose ownership changed is left alone (never adopted or retagged on stale ownership)."""
    assert item.image_id is not None  # update-tags and adopt are for existing images
    try:
        tags = client.tags(item.image_id)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        return item_result(
            item, Result.FAILED, f"its tags could not be read again ({short_error(err)})"
        )
    if tags is None:
        return item_result(
            item, Result.FAILED, "the image was deleted since the plan; run plan again"
        )
    fresh = replan(item, tags) if replan else _replan_strict(item, tags)
    if fresh.action is Action.NO_OP:
        return item_result(
            item.model_copy(update={"tag_changes": ()}),
            Result.UNCHANGED,
            None,
            reason="already as declared when its tags were read again just before the change",
        )
    same = fresh.action is item.action or (
        item.action is Action.ADOPT and fresh.action is Action.UPDATE_TAGS
    )
    if not same:
        return item_result(
            item,
            Result.FAILED,
            f"the image changed since the plan (it now calls for {fresh.action.value}): "
            "nothing was written; run plan again",
        )
    # A reviewed change is a key and the value it gets (or its removal), whatever value the
    # plan saw before it.
    reviewed = {(c.key, c.after) for c in item.tag_changes}
    writes = tuple(c for c in fresh.tag_changes if (c.key, c.after) in reviewed)
    unseen = [c.key for c in fresh.tag_changes if (c.key, c.after) not in reviewed]
    planned = item.model_copy(update={"action": fresh.action, "tag_changes": writes})
    if planned.action is Action.ADOPT or writes:
        done = _retag(planned, client)
    else:
        done = item_result(planned, Result.UNCHANGED)
    if unseen and done.result is not Result.FAILED:
        note = (
            f"tags changed since the plan: {', '.join(sorted(unseen))} now differ too; they "
            "were not in the reviewed plan: the next plan shows them"
        )
        return done.model_copy(update={"result": Result.DEFERRED, "error": note})
    return done


def _replan_strict(item: PlanItem, tags: dict[str, str]) -> PlanItem:
    """Without the specs: the item as planned if the tags are as the plan saw them, else a
    conflict (nothing is written on tags the plan did not see)."""
    before = {c.key: c.before for c in item.tag_changes}
    still = all(tags.get(k) == v for k, v in before.items())
    owned = tags.get(OWNERSHIP_TAG_KEY) == OWNERSHIP_TAG_VALUE
    if still and owned == (item.action is Action.UPDATE_TAGS):
        return item
    return item.model_copy(update={"action": Action.CONFLICT})


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
        return item_result(item, Result.FAILED, f"{short_error(err)} (hint: {hint})")
    return item_result(item, Result.ADOPTED if item.action is Action.ADOPT else Result.TAGS_UPDATED)
