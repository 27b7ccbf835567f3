"""Saved plans end to end: `plan --out FILE`, then `apply --plan-file FILE`, as the real
command in a subprocess against a local WorkSpaces endpoint (tests/fidelity).

The reviewed plan is the approval: apply asks nothing, performs only what the plan
listed, counts a planned create whose image appeared meanwhile as converged, and refuses
a stale, corrupt or edited plan before any call that changes AWS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, Outcome, RunReconciler, SpecsDir, out_of_band
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
WS_B = "ws-0b1b2c3d4"
NEW = "finance-win11-2026-11"  # planned: create
OLD = "hr-win11-2026-10"  # planned: update-tags (team: hr -> people)


@pytest.fixture
def world(endpoint: LocalEndpoint, specs_dir: SpecsDir) -> SpecsDir:
    return seed_world(endpoint, specs_dir)


def seed_world(endpoint: LocalEndpoint, specs_dir: SpecsDir) -> SpecsDir:
    """Two specs: one image to create, one existing owned image whose tags differ."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_workspace(REGION, WS_B)
    endpoint.fidelity.add_image(
        REGION, OLD, description=f"Image {OLD}", tags={**OWN, "team": "hr", "legacy": "1"}
    )
    write_specs(specs_dir, team="people")
    return specs_dir


def write_specs(specs_dir: SpecsDir, *, team: str) -> None:
    specs_dir.write(
        "images.yaml",
        specs_dir.image(NEW, WS_A, tags={"team": "finance"}),
        specs_dir.image(OLD, WS_B, tags={"team": team}),
    )


def images(endpoint: LocalEndpoint) -> dict[str, dict[str, Any]]:
    found = endpoint.fidelity.images(REGION)
    by_name = {i["name"]: i for i in found}
    assert len(by_name) == len(found), f"two images of one name: {found}"
    return by_name


def save_plan(run: RunReconciler, endpoint: LocalEndpoint, specs: SpecsDir, path: Path) -> None:
    outcome = run("plan", specs, "--out", path, endpoint=endpoint, check_exit=0)
    assert "Saved the plan" in outcome.stderr
    document = json.loads(path.read_text(encoding="utf-8"))
    assert {i["name"]: i["action"] for i in document["items"]} == {
        NEW: "create",
        OLD: "update-tags",
    }


def results(outcome: Outcome) -> dict[str, str]:
    return {i["name"]: i["result"] for i in outcome.json()["items"]}


def assert_refused_unchanged(
    outcome: Outcome, endpoint: LocalEndpoint, before: dict[str, dict[str, Any]]
) -> None:
    """Exit 1, a message rather than a traceback, and not one changing call."""
    assert outcome.code == 1, outcome
    assert "Traceback" not in outcome.stderr
    assert outcome.stdout == "", "no result document for an apply that did not run"
    assert [c.operation for c in endpoint.calls.changing()] == []
    assert images(endpoint) == before


def test_a_saved_plan_applies_without_asking(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    plan_file = tmp_path / "reviewed.plan.json"
    save_plan(run_reconciler, endpoint, world, plan_file)
    assert NEW not in images(endpoint)
    endpoint.calls.clear()

    # stdin is not a terminal and there is no --auto-approve: the plan is the approval.
    applied = run_reconciler(
        "apply", world, "--plan-file", plan_file, "--format", "json", endpoint=endpoint
    )
    assert applied.code == 0, applied
    assert "confirmation" not in applied.stderr
    assert results(applied) == {NEW: "created", OLD: "tags-updated"}
    now = images(endpoint)
    assert now[NEW]["tags"] == {**OWN, "team": "finance"}
    assert now[NEW]["description"] == f"Image {NEW}"
    assert now[OLD]["tags"] == {**OWN, "team": "people"}
    assert endpoint.calls.count("CreateWorkspaceImage") == 1


def test_a_create_raced_by_the_same_image_converges(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    plan_file = tmp_path / "reviewed.plan.json"
    save_plan(run_reconciler, endpoint, world, plan_file)
    # Meanwhile another run (or a person) captures the planned image.
    raced = endpoint.fidelity.add_image(
        REGION,
        NEW,
        description=f"Image {NEW}",
        tags={**OWN, "team": "finance"},
        state="PENDING",
        source_workspace_id=WS_A,
    )
    endpoint.calls.clear()

    applied = run_reconciler(
        "apply", world, "--plan-file", plan_file, "--format", "json", endpoint=endpoint
    )
    assert applied.code == 0, applied
    assert results(applied) == {NEW: "converged", OLD: "tags-updated"}
    now = images(endpoint)  # one image of that name: no duplicate
    assert now[NEW]["id"] == raced
    assert endpoint.calls.count("CreateWorkspaceImage") == 0
    assert now[OLD]["tags"] == {**OWN, "team": "people"}


def test_a_plan_whose_specs_changed_is_refused_and_nothing_changes(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    plan_file = tmp_path / "reviewed.plan.json"
    save_plan(run_reconciler, endpoint, world, plan_file)
    write_specs(world, team="people-v2")  # a later commit, not reviewed
    before = images(endpoint)
    endpoint.calls.clear()

    refused = run_reconciler("apply", world, "--plan-file", plan_file, endpoint=endpoint)
    assert_refused_unchanged(refused, endpoint, before)
    assert "saved plan is stale" in refused.stderr
    assert "specs changed" in refused.stderr
    assert "reconciler plan --out" in refused.stderr  # what to do


def test_a_plan_whose_live_tags_changed_is_refused_and_says_what_changed(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    plan_file = tmp_path / "reviewed.plan.json"
    save_plan(run_reconciler, endpoint, world, plan_file)
    # Someone edits the image's tags in the console after the review.
    out_of_band(endpoint).create_tags(
        ResourceId=images(endpoint)[OLD]["id"], Tags=[{"Key": "team", "Value": "ops"}]
    )
    before = images(endpoint)
    endpoint.calls.clear()

    refused = run_reconciler("apply", world, "--plan-file", plan_file, endpoint=endpoint)
    assert_refused_unchanged(refused, endpoint, before)
    assert "saved plan is stale" in refused.stderr
    assert f"{REGION}/{OLD}" in refused.stderr
    assert '"hr"' in refused.stderr
    assert '"ops"' in refused.stderr
    assert NEW not in before, "the planned create was not sent either"


def test_a_corrupt_edited_or_missing_plan_file_is_refused_and_nothing_changes(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    plan_file = tmp_path / "reviewed.plan.json"
    save_plan(run_reconciler, endpoint, world, plan_file)
    text = plan_file.read_text(encoding="utf-8")
    edited = json.loads(text)
    edited["items"][1]["tag_changes"][0]["after"] = "attacker"
    files = {
        "truncated": (text[: len(text) // 2], "corrupt (not JSON"),
        "edited": (json.dumps(edited, indent=2), "was edited or damaged after it was saved"),
        "missing": (None, "does not exist"),
    }
    before = images(endpoint)
    for label, (content, message) in files.items():
        path = tmp_path / f"{label}.plan.json"
        if content is not None:
            path.write_text(content, encoding="utf-8")
        endpoint.calls.clear()
        refused = run_reconciler("apply", world, "--plan-file", path, endpoint=endpoint)
        assert_refused_unchanged(refused, endpoint, before)
        assert f"Error: plan file {path}" in refused.stderr, label
        assert message in refused.stderr, label
        assert "hint:" in refused.stderr, label
