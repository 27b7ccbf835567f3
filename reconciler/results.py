"""What apply returns: each item's result, as plain immutable data.

The executor (`apply.py`) and every kind module (`kinds/`) build these; the renderers and
the JSON document read them. Nothing here imports boto3 or the AWS layer.
"""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from reconciler.plan import Plan, PlanItem, Unmanaged


class Result(str, Enum):
    CREATED = "created"
    CONVERGED = "converged"
    TAGS_UPDATED = "tags-updated"
    ADOPTED = "adopted"
    SHARING_UPDATED = "sharing-updated"
    IMAGE_UPDATED = "image-updated"
    DELETED = "deleted"
    DEFERRED = "deferred"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"


class AppliedItem(PlanItem):
    result: Result
    error: str | None = None
    # A deferral this run does not retry even with --wait (tags changed since the plan:
    # the next plan shows them); not part of the document.
    next_run: bool = Field(default=False, exclude=True)


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


def item_result(
    item: PlanItem,
    result: Result,
    error: str | None = None,
    *,
    image_id: str | None = None,
    state: str | None = None,
    reason: str | None = None,
) -> AppliedItem:
    """`item` as applied; `image_id`, `state` and `reason`, when given, replace the plan's."""
    data = item.model_dump(include=set(PlanItem.model_fields))
    if image_id:
        data["image_id"] = image_id
    if state:
        data["state"] = state
    if reason:
        data["reason"] = reason
    return AppliedItem(**data, result=result, error=error)


def unmanaged_result(
    u: Unmanaged, result: Result = Result.UNCHANGED, error: str | None = None
) -> AppliedUnmanaged:
    data = u.model_dump(include=set(Unmanaged.model_fields))
    return AppliedUnmanaged(**data, result=result, error=error)
