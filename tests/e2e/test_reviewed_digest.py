"""`apply --reviewed-digest`: the plan applied on merge is the plan reviewed on the pull
request, held to the digest of its decisions (contract: "Apply what was reviewed")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import REGION, RunReconciler, SpecsDir, out_of_band
from tests.e2e.test_saved_plans import (
    NEW,
    OLD,
    assert_refused_unchanged,
    images,
    results,
    seed_world,
    write_specs,
)
from tests.fidelity import LocalEndpoint
from tests.render.reading import digest_of


@pytest.fixture
def world(endpoint: LocalEndpoint, specs_dir: SpecsDir) -> SpecsDir:
    return seed_world(endpoint, specs_dir)


def reviewed(run: RunReconciler, endpoint: LocalEndpoint, specs: SpecsDir, tmp: Path) -> str:
    """The digest a reviewer saw: in the plan's JSON, and the same in its PR comment."""
    comment = tmp / "comment.md"
    outcome = run("plan", specs, "--format", "json", "--markdown-file", comment, endpoint=endpoint)
    digest = outcome.json()["plan_digest"]
    assert digest.startswith("sha256:")
    assert digest_of(comment.read_text(encoding="utf-8")) == digest
    return str(digest)


def test_the_reviewed_plan_applies(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    digest = reviewed(run_reconciler, endpoint, world, tmp_path)
    again = run_reconciler("plan", world, "--format", "json", endpoint=endpoint)
    assert again.json()["plan_digest"] == digest, "the same decisions, the same digest"
    applied = run_reconciler(
        "apply",
        world,
        "--auto-approve",
        "--reviewed-digest",
        digest,
        "--format",
        "json",
        endpoint=endpoint,
    )
    assert applied.code == 0, applied
    assert results(applied) == {NEW: "created", OLD: "tags-updated"}


def test_a_later_commit_changes_nothing_and_says_what_the_plan_is_now(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    digest = reviewed(run_reconciler, endpoint, world, tmp_path)
    write_specs(world, team="people-v2")  # another pull request merged meanwhile
    before = images(endpoint)
    endpoint.calls.clear()
    refused = run_reconciler(
        "apply", world, "--auto-approve", "--reviewed-digest", digest, endpoint=endpoint
    )
    assert_refused_unchanged(refused, endpoint, before)
    assert "not the plan that was reviewed" in refused.stderr
    assert f"{REGION}/{OLD}: update-tags" in refused.stderr
    assert f"{REGION}/{NEW}: create" in refused.stderr
    assert "review the plan again" in refused.stderr


def test_a_change_made_by_hand_since_the_review_changes_nothing(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    digest = reviewed(run_reconciler, endpoint, world, tmp_path)
    by_hand = out_of_band(endpoint)
    image_id = images(endpoint)[OLD]["id"]
    by_hand.create_tags(ResourceId=image_id, Tags=[{"Key": "team", "Value": "people"}])
    by_hand.delete_tags(ResourceId=image_id, TagKeys=["legacy"])
    before = images(endpoint)
    endpoint.calls.clear()
    refused = run_reconciler(
        "apply", world, "--auto-approve", "--reviewed-digest", digest, endpoint=endpoint
    )
    assert_refused_unchanged(refused, endpoint, before)
    assert f"{REGION}/{NEW}: create" in refused.stderr
    assert f"{REGION}/{OLD}:" not in refused.stderr, "now in sync: not a change"


def test_a_plan_without_prune_does_not_approve_an_apply_with_prune(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    digest = reviewed(run_reconciler, endpoint, world, tmp_path)
    endpoint.fidelity.add_workspace(REGION, "ws-0c1b2c3d4")
    before = images(endpoint)
    endpoint.calls.clear()
    refused = run_reconciler(
        "apply",
        world,
        "--auto-approve",
        "--prune",
        "--reviewed-digest",
        digest,
        endpoint=endpoint,
    )
    assert_refused_unchanged(refused, endpoint, before)
    assert "(prune)" in refused.stderr


def test_the_digest_ignores_what_is_not_a_decision(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    # The image to capture is PENDING, then AVAILABLE: the same decisions, the same digest.
    write_specs(world, team="people")
    run_reconciler("apply", world, "--auto-approve", endpoint=endpoint, check_exit=0)
    pending = run_reconciler("plan", world, "--format", "json", endpoint=endpoint)
    states = {i["name"]: i["state"] for i in pending.json()["items"]}
    assert states[NEW] == "PENDING"
    endpoint.fidelity.finish_capture(REGION, images(endpoint)[NEW]["id"])
    available = run_reconciler("plan", world, "--format", "json", endpoint=endpoint)
    assert {i["name"]: i["state"] for i in available.json()["items"]}[NEW] == "AVAILABLE"
    assert pending.json()["plan_digest"] == available.json()["plan_digest"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reviewed-digest", "abc"], "is not a plan digest"),
        (["--reviewed-digest", "sha256:" + "A" * 64], "is not a plan digest"),
        (["--reviewed-digest", "sha256:" + "a" * 64, "--plan-file", "x.json"], "--plan-file"),
    ],
)
def test_a_wrong_digest_option_is_a_usage_error(
    endpoint: LocalEndpoint,
    world: SpecsDir,
    run_reconciler: RunReconciler,
    args: list[str],
    message: str,
) -> None:
    endpoint.calls.clear()
    refused = run_reconciler("apply", world, "--auto-approve", *args, endpoint=endpoint)
    assert refused.code == 1, refused  # click's usage errors exit 1 here (main())
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr
    assert endpoint.calls.all() == []


def test_the_saved_plan_carries_its_digest(
    endpoint: LocalEndpoint, world: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    digest = reviewed(run_reconciler, endpoint, world, tmp_path)
    plan_file = tmp_path / "plan.json"
    run_reconciler("plan", world, "--out", plan_file, endpoint=endpoint, check_exit=0)
    assert json.loads(plan_file.read_text(encoding="utf-8"))["plan_digest"] == digest
    applied = run_reconciler("apply", world, "--plan-file", plan_file, endpoint=endpoint)
    assert applied.code == 0, applied
