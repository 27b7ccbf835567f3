"""Creating a resource whose name is unique in its region, safely against lost replies.

Images (captures and copies) and bundles are created the same way: a throttled create did
not run and is sent again; a documented error maps to a result and a hint; a lost reply
(5xx, timeout, reset) is settled by looking the name up: found means converged, absent
means the create is sent once more. The service refuses a second resource of one name in
a region, so the resend can't duplicate: `ResourceAlreadyExistsException` on it means the
first one ran after all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from reconciler.aws import THROTTLE_CODES, error_code, error_message, is_ambiguous, short_error
from reconciler.plan import PlanItem
from reconciler.results import AppliedItem, Result, item_result

CREATE_THROTTLE_RETRIES = 8  # a throttled create did not run, so it is safe to send again
AWS_FAILURES = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)

# The service's answer, as the item's result: {"image_id": ..., "state": ..., "bundle_id": ...}
Made = Mapping[str, str | None]


@dataclass(frozen=True)
class Create:
    """One kind's create: how to send it, how to find its resource by name, what each
    documented error means (code -> (result, hint))."""

    send: Callable[[], Made]
    find: Callable[[], Made | None]
    errors: Mapping[str, tuple[Result, str]]
    what: str  # "image", "copy", "bundle": for the messages
    # Said when the service answers "already exists" and no resource of the name is found.
    missing: str = ""


def create(item: PlanItem, how: Create) -> AppliedItem:
    for attempt in range(CREATE_THROTTLE_RETRIES + 1):
        try:
            return _made(item, Result.CREATED, how.send())
        except AWS_FAILURES as err:
            code = error_code(err)
            if code in THROTTLE_CODES and attempt < CREATE_THROTTLE_RETRIES:
                time.sleep(min(8.0, 0.5 * 2**attempt))  # the bucket has slowed down too
                continue
            if is_ambiguous(err):
                return _settle_lost(item, how, err)
            return _error(item, how, err, code)
    raise AssertionError("unreachable")  # pragma: no cover


def _made(item: PlanItem, result: Result, made: Made, error: str | None = None) -> AppliedItem:
    done = item_result(item, result, error, image_id=made.get("image_id"), state=made.get("state"))
    bundle_id = made.get("bundle_id")
    return done.updated({"bundle_id": bundle_id}) if bundle_id else done


def _error(item: PlanItem, how: Create, err: BaseException, code: str | None) -> AppliedItem:
    result, hint = how.errors.get(code or "", (Result.FAILED, "see the AWS message"))
    if result is Result.CONVERGED:
        found = _lookup(how)
        if found is None and how.missing:
            return item_result(item, Result.FAILED, f"{code}: {error_message(err)} ({how.missing})")
        return _made(item, result, found or {})
    message = f"{code or type(err).__name__}: {error_message(err)}"
    return item_result(item, result, f"{message} (hint: {hint})")


def _settle_lost(item: PlanItem, how: Create, err: BaseException) -> AppliedItem:
    """The create's reply was lost: look the name up to learn whether it ran."""
    try:
        found = how.find()
    except AWS_FAILURES as lookup_err:
        return item_result(
            item,
            Result.FAILED,
            f"the create's reply was lost ({short_error(err)}) and the lookup failed too "
            f"({short_error(lookup_err)}); run apply again: it will find the {how.what} if it "
            "was created",
        )
    if found is not None:
        return _made(item, Result.CONVERGED, found)
    return _resend(item, how, err)


def _resend(item: PlanItem, how: Create, lost: BaseException) -> AppliedItem:
    """A create proven absent after a lost reply is sent once more; that answer stands."""
    try:
        return _made(item, Result.CREATED, how.send())
    except AWS_FAILURES as err:
        if not is_ambiguous(err):
            return _error(item, how, err, error_code(err))
        found = _lookup(how)
        if found:
            return _made(item, Result.CONVERGED, found)
        return item_result(
            item,
            Result.FAILED,
            f"the create's reply was lost ({short_error(lost)}), and again when it was sent once "
            f"more ({short_error(err)}); run apply again: it will find the {how.what} if it was "
            "created",
        )


def _lookup(how: Create) -> Made | None:
    """The resource of that name, or None if absent or the lookup itself failed."""
    try:
        return how.find()
    except AWS_FAILURES:
        return None


def tag_list(tags: Mapping[str, str]) -> list[Any]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
