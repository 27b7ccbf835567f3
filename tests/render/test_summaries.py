"""Summary lines that agree with what is shown above them (issue 10 item 13).

A plan that lists a `-/+ replace` or a `- delete` never ends with "Nothing to change" or
"No changes"; a drift report with a stuck capture or an unmanaged image never says "No
changes"; and the numbers of a summary add up to the items and unmanaged images of the
plan, each counted once, in the text output and in the Markdown headline alike.
"""

from __future__ import annotations

import io
import random
import re

import pytest

from reconciler.kinds.image import stuck
from reconciler.kinds.share import ShareChange
from reconciler.plan import Action, Plan, Unmanaged
from reconciler.render import text
from reconciler.render.markdown import markdown
from tests.render.builders import (
    NOW,
    REGION,
    item,
    lifecycle_plan,
    live,
    plan_from,
    random_plan,
    spec,
    still_used,
)
from tests.render.reading import parse

FAILED = item(
    Action.CONFLICT,
    "data-win11-2026-09",
    image_id="wsi-000000005",
    state="ERROR",
    reason="image is in ERROR (InternalError: disk full); `apply --replace-failed` deletes "
    "and recreates it",
)
ORPHANS = (
    Unmanaged(name="retired-2025", region=REGION, image_id="wsi-0123abcde", state="AVAILABLE"),
    Unmanaged(name="retired-2024", region=REGION, image_id="wsi-0456abcde", state="AVAILABLE"),
)
COUNTED = re.compile(
    r"(\d+) (?:to create|to update sharing|to update image|to update|to adopt|to replace|"
    r"to delete|unchanged|unmanaged|in conflict|blocked)\b"
)


def rendered(plan: Plan, **options: bool) -> str:
    out = io.StringIO()
    text.render_plan(plan, out, **options)
    return out.getvalue()


def last_line(output: str, prefix: str = "") -> str:
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    return lines[-1]


def test_a_replacement_is_counted_not_called_nothing_to_change() -> None:
    plan = Plan(specs_digest="x", items=(FAILED,), replace_failed=True)
    output = rendered(plan)
    assert "  -/+ replace     data-win11-2026-09" in output
    assert text.summary_line(plan) == "Plan: 1 to replace. 0 unchanged."
    assert "Plan: 1 to replace. 0 unchanged.\n" in output
    assert "Nothing to change" not in output
    assert "No changes" not in output
    # The replaced image is not an error that must be fixed first.
    assert "must be fixed" not in output


def test_without_replace_failed_the_failed_image_stays_a_conflict() -> None:
    plan = Plan(specs_digest="x", items=(FAILED,))
    assert text.summary_line(plan) == "Plan: Nothing to change. 0 unchanged, 1 in conflict."
    assert "Error: 1 conflict must be fixed" in rendered(plan)


def test_an_image_in_error_without_the_ownership_tag_is_never_a_replacement() -> None:
    theirs = FAILED.model_copy(update={"owned": False})
    plan = Plan(specs_digest="x", items=(theirs,), replace_failed=True)
    assert text.summary_line(plan) == "Plan: Nothing to change. 0 unchanged, 1 in conflict."
    assert "-/+ replace" not in rendered(plan)


def test_pruned_images_are_counted_as_deletions() -> None:
    plan = Plan(specs_digest="x", items=(), unmanaged=ORPHANS, prune=True)
    output = rendered(plan)
    assert "Warning: --prune deletes these owned images" in output
    assert output.count("  - delete      retired-") == 2
    assert last_line(output, "Plan") == "Plan: 2 to delete. 0 unchanged."
    # Without --prune they are listed as unmanaged, and nothing changes.
    kept = Plan(specs_digest="x", items=(), unmanaged=ORPHANS)
    assert text.summary_line(kept) == "Plan: Nothing to change. 0 unchanged, 2 unmanaged."


def test_the_keyword_arguments_still_add_the_deletions_to_a_plan_without_them() -> None:
    plan = Plan(specs_digest="x", items=(FAILED,), unmanaged=ORPHANS)
    output = rendered(plan, prune=True, replace_failed=True)
    assert last_line(output, "Plan") == "Plan: 1 to replace, 2 to delete. 0 unchanged."
    assert "-/+ replace" in output
    assert "- delete" in output


def test_a_stuck_capture_is_not_no_changes_in_text_or_markdown() -> None:
    specs = [spec("ml-win11-2026-11"), spec("steady")]
    images = [
        live("ml-win11-2026-11", 1, state="PENDING", created=NOW.replace(hour=9)),
        live("steady", 2),
    ]
    plan = plan_from(specs, images)
    assert plan.drifted
    line = text.summary_line(plan)
    assert line == "Plan: Nothing to change. 2 unchanged (1 capture stuck)."
    output = rendered(plan)
    assert "No changes" not in output
    assert "capture PENDING since" in output
    headline = parse(markdown(plan, kind="drift"), "drift").lines[2]
    assert headline.startswith("### ⚠️ Drift detected. " + line)


def test_unmanaged_images_in_a_drift_report_are_not_no_changes() -> None:
    plan = plan_from([spec("steady")], [live("steady", 1), live("scratch", 2)])
    assert plan.drifted
    assert "No changes" not in text.summary_line(plan)
    assert "No changes" not in markdown(plan, kind="drift")


def test_no_changes_only_when_nothing_is_to_do_and_nothing_is_wrong() -> None:
    plan = plan_from([spec("steady")], [live("steady", 1)])
    assert text.summary_line(plan) == "No changes. The account matches the specs (1 unchanged)."


@pytest.mark.parametrize("seed", range(40))
def test_every_item_is_counted_once_and_no_changes_means_nothing_to_see(seed: int) -> None:
    plan = random_plan(random.Random(seed))
    line = text.summary_line(plan)
    numbers = [int(n) for n in COUNTED.findall(line)]
    assert sum(numbers) == len(plan.items) + len(plan.unmanaged), line
    how_many = sum(stuck(i) for i in plan.items)
    if how_many:
        assert f"({how_many} capture{'s' if how_many > 1 else ''} stuck)" in line
    quiet = not plan.unmanaged and all(
        i.action is Action.NO_OP and not stuck(i) for i in plan.items
    )
    assert line.startswith("No changes.") == quiet, line
    if plan.replace_failed and any(plan.replaces(i) for i in plan.items):
        assert "to replace" in line
    kept = sum(still_used(plan, u) for u in plan.unmanaged)
    if plan.prune and len(plan.unmanaged) > kept:
        assert f"{len(plan.unmanaged) - kept} to delete" in line
    if plan.prune:
        assert (f"{kept} unmanaged" in line) if kept else ("unmanaged" not in line)
    for action, words in (
        ("update-sharing", "to update sharing"),
        ("update-image", "to update image"),
    ):
        count = plan.summary[action]
        assert (f"{count} {words}" in line) if count else (words not in line), line
    headline = parse(markdown(plan, kind="plan")).lines[2]
    assert headline == f"### {line}"


def test_sharing_and_image_changes_are_changes_not_no_changes() -> None:
    share = item(
        Action.UPDATE_SHARING,
        "finance-win11-2026-11",
        kind="share",
        share_changes=(ShareChange(account="111122223333", before=False, after=True),),
    )
    rollout = item(
        Action.UPDATE_IMAGE,
        "finance-standard",
        kind="bundle",
        bundle_id="wsb-000000001",
        image_before="wsi-000000001",
        image_id="wsi-000000002",
    )
    for items, line in (
        ((share,), "Plan: 1 to update sharing. 0 unchanged."),
        ((rollout,), "Plan: 1 to update image. 0 unchanged."),
        ((share, rollout), "Plan: 1 to update sharing, 1 to update image. 0 unchanged."),
    ):
        plan = Plan(specs_digest="x", items=items)
        assert text.summary_line(plan) == line
        output = rendered(plan)
        assert "No changes" not in output
        assert f"\n{line}\n" in output
        assert parse(markdown(plan, kind="plan")).lines[2] == f"### {line}"


def test_an_unmanaged_image_a_bundle_keeps_is_not_counted_as_a_deletion() -> None:
    plan = lifecycle_plan(prune=True)
    # Deleted: the unmanaged bundle and the image only it used; kept: the image
    # finance-basic uses.
    assert text.summary_line(plan).endswith("2 to delete. 2 unchanged, 1 unmanaged.")
    headline = parse(markdown(plan, kind="plan")).lines[2]
    assert headline == f"### {text.summary_line(plan)}"
