"""The guards of the deletion paths as a user meets them (issue 17, "tests the deletion code
lacks"): the real command against the local endpoint, each test failing when its guard is
removed.

(a) a saved --prune plan whose unmanaged image was made again under its name is stale;
(b) a saved --replace-failed plan that left an unowned ERROR image alone is stale once the
    image carries the ownership tag;
(c) `plan --prune --detailed-exitcode` does not count an image a bundle keeps as a change
    (nor `plan --detailed-exitcode` an unmanaged image, without --prune);
(d) a bundle whose move off an image is deferred, or whose deletion failed, still keeps
    that image;
(e) apply deletes only the deletions the plan showed, also when the bundle that kept an
    image failed to be created.

(f), a --target plan with no unmanaged list, is a pure function's rule: see
tests/test_deletion_guards.py (a --target run does not read what it does not judge).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import (
    REGION,
    Outcome,
    RunReconciler,
    SpecsDir,
    bundle_doc,
    out_of_band,
)
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"


def images(endpoint: LocalEndpoint) -> dict[str, dict[str, Any]]:
    found = endpoint.fidelity.images(REGION)
    by_name = {i["name"]: i for i in found}
    assert len(by_name) == len(found), f"two images of one name: {found}"
    return by_name


def changing(endpoint: LocalEndpoint) -> list[str]:
    return [c.operation for c in endpoint.calls.changing()]


def unmanaged(outcome: Outcome) -> dict[str, tuple[str, str | None]]:
    return {u["name"]: (u["result"], u["error"]) for u in outcome.json()["unmanaged"]}


def assert_stale(outcome: Outcome, endpoint: LocalEndpoint) -> None:
    assert outcome.code == 1, outcome
    assert "saved plan is stale" in outcome.stderr, outcome.stderr
    assert changing(endpoint) == [], "a stale plan is refused before any change"


# --- (a) -------------------------------------------------------------------------------------


def test_a_saved_prune_plan_deletes_no_image_made_again_under_the_name_it_showed_deleted(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN)
    reviewed = endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    specs_dir.write("images.yaml", specs_dir.image("keep", WS_A))
    saved = tmp_path / "plan.json"
    shown = run_reconciler(
        "plan", specs_dir, "--prune", "--out", saved, endpoint=endpoint, check_exit=0
    )
    assert re.search(rf"- delete +old \({REGION}\) {reviewed}", shown.stdout), shown.stdout

    # Meanwhile someone deletes `old` and captures it again: same name, new id, still ours.
    out_of_band(endpoint).delete_workspace_image(ImageId=reviewed)
    remade = endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    assert remade != reviewed
    endpoint.calls.clear()

    applied = run_reconciler("apply", specs_dir, "--plan-file", saved, endpoint=endpoint)
    assert_stale(applied, endpoint)
    assert remade in applied.stderr  # the difference is named
    assert endpoint.calls.count("DeleteWorkspaceImage") == 0
    assert images(endpoint)["old"]["id"] == remade


# --- (b) -------------------------------------------------------------------------------------


def test_a_saved_replace_failed_plan_is_stale_once_the_error_image_it_left_alone_is_owned(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    theirs = endpoint.fidelity.add_image(
        REGION, "img", "Image img", tags={}, state="ERROR", error_code="E1"
    )
    # No declared tags: a recapture writes none, so only the replacement tells the plans apart.
    specs_dir.write("images.yaml", specs_dir.image("img", WS_A))
    saved = tmp_path / "plan.json"
    shown = run_reconciler(
        "plan", specs_dir, "--replace-failed", "--out", saved, endpoint=endpoint, check_exit=1
    )
    assert "does not carry the ownership tag" in shown.stdout
    assert "-/+ replace" not in shown.stdout

    # After the review, someone tags the image as ours: now --replace-failed would replace it.
    out_of_band(endpoint).create_tags(
        ResourceId=theirs, Tags=[{"Key": OWNERSHIP_TAG_KEY, "Value": "true"}]
    )
    now = run_reconciler("plan", specs_dir, "--replace-failed", endpoint=endpoint, check_exit=1)
    assert "-/+ replace" in now.stdout, "the fresh plan would replace it"
    endpoint.calls.clear()

    applied = run_reconciler("apply", specs_dir, "--plan-file", saved, endpoint=endpoint)
    assert_stale(applied, endpoint)
    assert f"{REGION}/img" in applied.stderr
    assert endpoint.calls.count("DeleteWorkspaceImage") == 0
    assert endpoint.calls.count("CreateWorkspaceImage") == 0
    assert images(endpoint)["img"]["id"] == theirs


# --- (c) -------------------------------------------------------------------------------------


def test_plan_prune_detailed_exitcode_does_not_count_an_image_a_bundle_keeps(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """`std` (declared, as it is) uses `old`, which no image spec declares: --prune keeps
    old, and a plan whose only 'deletion' is kept has nothing to do."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN)
    old = endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    endpoint.fidelity.add_bundle(REGION, "std", old, description="Bundle std", tags=OWN)
    specs_dir.write("images.yaml", specs_dir.image("keep", WS_A))
    specs_dir.write("bundles.yaml", bundle_doc("std", image_id=old))
    assert_kept_and_nothing_to_do(endpoint, specs_dir, run_reconciler, "std")


def test_plan_prune_keeps_an_image_a_bundle_made_by_hand_uses_where_no_bundle_is_ours(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """The same with `console`, a bundle made in the console (not ours), in a region where
    no spec declares a bundle and none is owned: bundles are read wherever owned images
    live (issue 17, finding 7), so old is kept, not shown deleted (the service would refuse
    the deletion: apply would fail)."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN)
    old = endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    endpoint.fidelity.add_bundle(REGION, "console", old, tags={})
    specs_dir.write("images.yaml", specs_dir.image("keep", WS_A))
    assert_kept_and_nothing_to_do(endpoint, specs_dir, run_reconciler, "console")


def assert_kept_and_nothing_to_do(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run: RunReconciler, user: str
) -> None:
    shown = run("plan", specs_dir, "--prune", "--detailed-exitcode", endpoint=endpoint)
    assert f"kept while bundle {user} uses it" in shown.stdout, shown
    assert "- delete" not in shown.stdout
    assert shown.code == 0, shown
    # And an apply asks nothing: there is nothing to confirm (stdin is not a terminal).
    done = run("apply", specs_dir, "--prune", endpoint=endpoint)
    assert done.code == 0, done
    assert "confirmation" not in done.stderr, done
    assert endpoint.calls.count("DeleteWorkspaceImage") == 0
    assert "old" in images(endpoint)


def test_without_prune_an_unmanaged_image_is_listed_and_is_no_change(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Without --prune nothing is deleted, so an owned image no spec declares is drift
    (`drift` exits 2), not a change pending: `plan --detailed-exitcode` exits 0, and apply
    has nothing to ask."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN)
    endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    specs_dir.write("images.yaml", specs_dir.image("keep", WS_A))

    shown = run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint)
    assert shown.code == 0, shown
    assert "old" in shown.stdout
    assert "- delete" not in shown.stdout
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)
    done = run_reconciler("apply", specs_dir, endpoint=endpoint)
    assert done.code == 0, done
    assert "confirmation" not in done.stderr
    assert changing(endpoint) == []


# --- (d) -------------------------------------------------------------------------------------


def test_prune_keeps_the_image_a_bundle_still_uses_when_its_move_off_it_is_deferred(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """`std` moves from `old` to `new`, whose capture is still PENDING: the plan foresees the
    move and shows old's deletion, but the move is deferred, so std still uses old."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    old = endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    new = endpoint.fidelity.add_image(
        REGION, "new", "Image new", tags=OWN, state="PENDING", source_workspace_id=WS_A
    )
    endpoint.fidelity.add_bundle(REGION, "std", old, description="Bundle std", tags=OWN)
    specs_dir.write("images.yaml", specs_dir.image("new", WS_A))
    specs_dir.write("bundles.yaml", bundle_doc("std", image="new"))

    shown = run_reconciler("plan", specs_dir, "--prune", endpoint=endpoint, check_exit=0)
    assert re.search(rf"- delete +old \({REGION}\) {old}", shown.stdout), shown.stdout
    endpoint.calls.clear()

    done = run_reconciler(
        "apply", specs_dir, "--prune", "--auto-approve", "--format", "json", endpoint=endpoint
    )
    assert done.code == 0, done
    (std,) = [i for i in done.json()["items"] if i["kind"] == "bundle"]
    assert (std["result"], std["image_id"]) == ("deferred", new)
    result, why = unmanaged(done)["old"]
    assert result == "unchanged"
    assert "bundle std still uses it" in (why or "")
    assert endpoint.calls.count("DeleteWorkspaceImage") == 0
    assert changing(endpoint) == []
    assert "old" in images(endpoint)


def test_prune_keeps_the_image_of_a_bundle_whose_deletion_failed(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """`orphan` (ours, no spec) uses `old`: --prune deletes orphan, then old. When orphan's
    deletion fails, old is kept (orphan still uses it), not sent to a refused deletion."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN)
    old = endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    endpoint.fidelity.add_bundle(REGION, "orphan", old, tags=OWN)
    specs_dir.write("images.yaml", specs_dir.image("keep", WS_A))
    shown = run_reconciler("plan", specs_dir, "--prune", endpoint=endpoint, check_exit=0)
    assert re.search(rf"- delete +old \({REGION}\) {old}", shown.stdout), shown.stdout
    endpoint.faults.error_for("DeleteWorkspaceBundle", "AccessDeniedException")
    endpoint.calls.clear()

    done = run_reconciler(
        "apply", specs_dir, "--prune", "--auto-approve", "--format", "json", endpoint=endpoint
    )
    assert done.code == 1, done  # the bundle's deletion failed
    gone = unmanaged(done)
    assert gone["orphan"][0] == "failed"
    result, why = gone["old"]
    assert result == "unchanged"
    assert "bundle orphan still uses it" in (why or "")
    assert endpoint.calls.count("DeleteWorkspaceImage") == 0
    assert "old" in images(endpoint)


# --- (e) -------------------------------------------------------------------------------------


def test_prune_deletes_no_image_the_plan_kept_when_the_bundle_that_kept_it_fails(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """`std` is to be created on `old` (by id), which no image spec declares: the plan keeps
    old for it. The create fails; the plan still showed no deletion of old, so none is made
    (though no bundle uses old after the run)."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN)
    old = endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    specs_dir.write("images.yaml", specs_dir.image("keep", WS_A))
    specs_dir.write("bundles.yaml", bundle_doc("std", image_id=old))

    shown = run_reconciler("plan", specs_dir, "--prune", endpoint=endpoint, check_exit=0)
    assert "kept while bundle std uses it" in shown.stdout
    assert "- delete" not in shown.stdout
    endpoint.faults.error_for("CreateWorkspaceBundle", "AccessDeniedException")
    endpoint.calls.clear()

    done = run_reconciler(
        "apply", specs_dir, "--prune", "--auto-approve", "--format", "json", endpoint=endpoint
    )
    assert done.code == 1, done  # the bundle failed
    (std,) = [i for i in done.json()["items"] if i["kind"] == "bundle"]
    assert std["result"] == "failed"
    assert unmanaged(done)["old"][0] == "unchanged"
    assert endpoint.calls.count("DeleteWorkspaceImage") == 0
    assert "old" in images(endpoint)
