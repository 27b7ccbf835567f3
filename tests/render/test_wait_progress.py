"""`apply --wait`'s progress on stderr: every item still waited for, with its kind where it
is not an image, and its state or what it waits for."""

from __future__ import annotations

import io

from reconciler.plan import Action
from reconciler.progress import WaitProgress
from reconciler.results import AppliedItem, Result
from tests.render.builders import item

WAITS = (
    "waits for the capture of finance-win11-2026-11 (eu-west-1) to end; run apply again "
    "later, or use --wait"
)


def applied(action: Action, name: str, result: Result, **fields: object) -> AppliedItem:
    planned = item(action, name, **fields)
    return AppliedItem(**planned.model_dump(), result=result, error=fields.get("reason"))


CAPTURE = applied(
    Action.CREATE, "finance-win11-2026-11", Result.CREATED, image_id="wsi-0a", state="PENDING"
)
COPY = applied(
    Action.CREATE,
    "finance-win11-2026-11",
    Result.DEFERRED,
    region="us-east-1",
    copy_from="eu-west-1",
    source_workspace_id=None,
    reason=WAITS,
)
SHARE = applied(
    Action.UPDATE_SHARING, "finance-win11-2026-11", Result.DEFERRED, kind="share", reason=WAITS
)
BUNDLE = applied(
    Action.UPDATE_IMAGE,
    "finance-standard",
    Result.DEFERRED,
    kind="bundle",
    bundle_id="wsb-0b",
    state="AVAILABLE",  # the bundle's own state: not what it waits for
    reason=WAITS,
)
QUEUED = applied(
    Action.CREATE,
    "hr-win11",
    Result.DEFERRED,
    reason="another capture of the same WorkSpace goes first",
)


def logged(*reports: tuple[list[AppliedItem], float]) -> str:
    out = io.StringIO()
    progress = WaitProgress(out, live=False)
    for items, elapsed in reports:
        progress(items, elapsed)
    return out.getvalue()


def test_every_item_waited_for_is_listed_with_its_kind_and_what_it_waits_for() -> None:
    text = logged(([CAPTURE, COPY, SHARE, BUNDLE, QUEUED], 95.0))
    waits = "waits for the capture of finance-win11-2026-11 (eu-west-1) to end"
    assert text.splitlines() == [
        "waiting for 5 items (1m35s so far)",
        "  finance-win11-2026-11 (eu-west-1): PENDING, 1m35s",
        f"  finance-win11-2026-11 (us-east-1): {waits}, 1m35s",
        f"  sharing of finance-win11-2026-11 (eu-west-1): {waits}, 1m35s",
        f"  bundle finance-standard (eu-west-1): {waits}, 1m35s",
        "  hr-win11 (eu-west-1): another capture of the same WorkSpace goes first, 1m35s",
    ]
    # While waiting, the advice for a run without --wait is noise.
    assert "use --wait" not in text


def test_one_item_is_one_item_and_the_end_is_said() -> None:
    text = logged(([CAPTURE], 0.0), ([], 40.0))
    assert text.splitlines() == [
        "waiting for 1 item (0s so far)",
        "  finance-win11-2026-11 (eu-west-1): PENDING, 0s",
        "nothing left to wait for",
    ]


def test_names_and_reasons_from_specs_and_aws_cannot_move_the_cursor() -> None:
    hostile = applied(
        Action.CREATE, "x\x1b[2Jy", Result.DEFERRED, reason="busy \x1b[1A\r (SUSPENDED)"
    )
    text = logged(([hostile], 0.0))
    assert "\x1b" not in text
    assert "\r" not in text
    assert "x\\x1b[2Jy (eu-west-1): busy \\x1b[1A\\x0d (SUSPENDED), 0s" in text


def test_on_a_terminal_the_lines_are_redrawn_in_place() -> None:
    out = io.StringIO()
    progress = WaitProgress(out, live=True)
    progress([CAPTURE, SHARE], 1.0)
    progress([SHARE], 3.0)
    progress.close()
    text = out.getvalue()
    assert text.count("\x1b[2F\x1b[J") == 1  # up over the two lines drawn first
    assert text.endswith("\x1b[1F\x1b[J")
    assert "sharing of finance-win11-2026-11 (eu-west-1): waits for the capture" in text
