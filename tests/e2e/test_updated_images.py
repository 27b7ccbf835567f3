"""Updated images (contract: "Updated images"): an image spec with `updated_from` is made by
CreateUpdatedWorkspaceImage from its source image once AWS has updates for it, and drift
says when AWS has updates for a declared image. The real command against the local
endpoint, whose CreateUpdatedWorkspaceImage and `Updates` model the service's."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, RunReconciler, SpecsDir
from tests.e2e.test_golden_lifecycle import (
    apply_json,
    bundle_doc,
    bundles,
    changing,
    image_doc,
    images,
    planned,
    results,
)
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
NOV, DEC = "finance-win11-2026-11", "finance-win11-2026-12"
NEWS = "WorkSpaces agent 3.2 and new graphics drivers"


def updated_doc(name: str, source: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": f"Image {name}", "updated_from": source, **extra}


def november(endpoint: LocalEndpoint, *, offered: bool) -> str:
    """Last month's image, captured and AVAILABLE; AWS has updates for it or not."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    image = endpoint.fidelity.add_image(
        REGION, NOV, description=f"Image {NOV}", tags=OWN, source_workspace_id=WS_A
    )
    if offered:
        endpoint.fidelity.offer_update(REGION, image, description=NEWS)
    return image


def test_drift_lists_updates_and_exits_2_for_them_only_when_asked(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = november(endpoint, offered=False)
    specs_dir.write("images.yaml", image_doc(NOV))
    quiet = run_reconciler("drift", specs_dir, "--format", "json", endpoint=endpoint)
    assert quiet.code == 0, quiet
    assert quiet.json()["updates_available"] == []
    assert run_reconciler("drift", specs_dir, "--updates-are-drift", endpoint=endpoint).code == 0

    endpoint.fidelity.offer_update(REGION, image, description=NEWS)
    endpoint.calls.clear()
    listed = run_reconciler("drift", specs_dir, "--format", "json", endpoint=endpoint)
    assert listed.code == 0, "updates alone are not drift unless asked"
    assert listed.json()["updates_available"] == [
        {"name": NOV, "region": REGION, "account": None, "account_name": None,
         "image_id": image, "description": NEWS}
    ]  # fmt: skip
    item = planned(listed)[("image", REGION, NOV)]
    assert (item["update_available"], item["update_description"]) == (True, NEWS)
    text = run_reconciler("drift", specs_dir, endpoint=endpoint)
    assert "AWS has updates for these images:" in text.stdout
    assert f"declare an image with `updated_from: {NOV}`" in text.stdout
    markdown = run_reconciler("drift", specs_dir, "--format", "markdown", endpoint=endpoint)
    assert "**AWS has updates**" in markdown.stdout
    assert run_reconciler("drift", specs_dir, "--updates-are-drift", endpoint=endpoint).code == 2

    # Declared: the update is in hand, and no longer listed, nor drift when asked.
    specs_dir.write("images.yaml", image_doc(NOV), updated_doc(DEC, NOV))
    declared = run_reconciler(
        "drift", specs_dir, "--updates-are-drift", "--format", "json", endpoint=endpoint
    )
    assert declared.json()["updates_available"] == []
    assert declared.code == 2, "the updated image to create is drift itself"


def test_reading_updates_costs_no_call(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = november(endpoint, offered=False)
    specs_dir.write("images.yaml", image_doc(NOV))
    run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0)
    # The regions are read in parallel: the same calls, in any order.
    before = Counter((c.operation, c.region) for c in endpoint.calls.all())
    endpoint.calls.clear()
    endpoint.fidelity.offer_update(REGION, image, description=NEWS)
    offered = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint)
    assert Counter((c.operation, c.region) for c in endpoint.calls.all()) == before
    assert planned(offered)[("image", REGION, NOV)]["update_available"] is True


@pytest.mark.fidelity(capture_seconds=1.0)
def test_an_updated_image_and_its_bundles_roll_out_in_one_apply_with_wait(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    source = november(endpoint, offered=True)
    specs_dir.write("images.yaml", image_doc(NOV), bundle_doc("standard", NOV))
    apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert bundles(endpoint)["standard"]["image_id"] == source

    # December: declare the updated image, point the bundle at it, one apply --wait.
    specs_dir.write(
        "images.yaml",
        image_doc(NOV),
        updated_doc(DEC, NOV, tags={"team": "finance"}),
        bundle_doc("standard", DEC),
    )
    plan = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0)
    assert f"+ create      {DEC} ({REGION}) with AWS's updates to {NOV}" in plan.stdout
    endpoint.calls.clear()
    run = apply_json(run_reconciler, specs_dir, endpoint, "--wait", check_exit=0)
    done = results(run)
    assert done[("image", REGION, DEC)][0] == "created"
    assert done[("bundle", REGION, "standard")][0] == "image-updated"
    assert endpoint.calls.count("CreateUpdatedWorkspaceImage") == 1
    assert endpoint.calls.count("CreateWorkspaceImage") == 0, "no capture"
    made = images(endpoint)[DEC]
    assert made["state"] == "AVAILABLE"
    assert made["tags"] == {**OWN, "team": "finance"}
    assert endpoint.fidelity.updated_from(REGION, made["id"]) == source
    assert bundles(endpoint)["standard"]["image_id"] == made["id"]
    assert images(endpoint)[NOV]["id"] == source, "the source is kept"
    assert ("CreateUpdatedWorkspaceImage", REGION) in changing(endpoint)

    # Last month's image is retired: its spec removed, the updated image stays valid.
    specs_dir.write(
        "images.yaml", updated_doc(DEC, NOV, tags={"team": "finance"}), bundle_doc("standard", DEC)
    )
    after = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint)
    assert after.code == 0, after
    assert planned(after)[("image", REGION, DEC)]["action"] == "no-op"
    assert f"names no image spec: '{NOV}'" in after.stderr, "a warning, not an error"


def test_no_update_from_aws_is_blocked_before_any_call(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    november(endpoint, offered=False)
    specs_dir.write("images.yaml", image_doc(NOV), updated_doc(DEC, NOV))
    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint)
    item = planned(plan)[("image", REGION, DEC)]
    assert item["action"] == "blocked"
    assert f"AWS has no update for {NOV}" in item["reason"]
    endpoint.calls.clear()
    run = apply_json(run_reconciler, specs_dir, endpoint)
    assert run.code == 1, run
    assert results(run)[("image", REGION, DEC)][0] == "skipped"
    assert changing(endpoint) == []


def test_a_lost_reply_of_the_create_is_settled_by_its_name(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    november(endpoint, offered=True)
    specs_dir.write("images.yaml", image_doc(NOV), updated_doc(DEC, NOV))
    endpoint.faults.set("CreateUpdatedWorkspaceImage", lost_reply_rate=1.0)
    run = apply_json(run_reconciler, specs_dir, endpoint)
    assert run.code == 0, run
    assert results(run)[("image", REGION, DEC)][0] in ("created", "converged")
    sent = [c for c in endpoint.calls.all() if c.operation == "CreateUpdatedWorkspaceImage"]
    assert [c.status for c in sent] == [500], "sent once, never again"
    assert len([i for i in endpoint.fidelity.images(REGION) if i["name"] == DEC]) == 1


def test_an_image_aws_cannot_update_fails_with_a_hint(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    # AWS lists updates, then refuses to make the image (a Linux image, say, or an offer
    # withdrawn since the plan): the service's answer, injected.
    november(endpoint, offered=True)
    specs_dir.write("images.yaml", image_doc(NOV), updated_doc(DEC, NOV))
    endpoint.faults.error_for(
        "CreateUpdatedWorkspaceImage",
        "OperationNotSupportedException",
        message="The image can't be updated.",
    )
    run = apply_json(run_reconciler, specs_dir, endpoint)
    assert run.code == 1, run
    result, error = results(run)[("image", REGION, DEC)]
    assert result == "failed"
    assert "OperationNotSupportedException" in (error or "")
    assert "only Windows images" in (error or "")
    assert DEC not in images(endpoint)


def test_a_create_whose_source_spec_is_gone_stops_the_plan_at_its_line(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    november(endpoint, offered=True)
    specs_dir.write("images.yaml", updated_doc(DEC, NOV))
    endpoint.calls.clear()
    run = run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint)
    assert run.code == 1, run
    assert "images.yaml:3:1: updated_from: names no image spec" in run.stderr
    assert "yet to be created" in run.stderr
    assert "Traceback" not in run.stderr
    assert changing(endpoint) == []
