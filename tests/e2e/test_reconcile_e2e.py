"""The reconcile loop end to end: the real `reconciler` command against a local WorkSpaces
endpoint that behaves like the real service (tests/fidelity). Each test asserts the exit
codes and the final AWS state (images and their tags) as the endpoint holds it."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, Outcome, RunReconciler, SpecsDir, out_of_band
from tests.fidelity import LocalEndpoint

OTHER_REGION = "us-east-1"
OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
WS_B = "ws-0b1b2c3d4"
WS_C = "ws-0c1b2c3d4"
WS_D = "ws-0d1b2c3d4"
WS_E = "ws-0e1b2c3d4"


# --- helpers -----------------------------------------------------------------------------


def images(endpoint: LocalEndpoint, region: str = REGION) -> dict[str, dict[str, Any]]:
    """The region's images by name, as the endpoint holds them."""
    found = endpoint.fidelity.images(region)
    by_name = {i["name"]: i for i in found}
    assert len(by_name) == len(found), f"duplicate image names: {found}"
    return by_name


def results(outcome: Outcome) -> dict[str, tuple[str, str | None]]:
    """An `apply --format json` document's items as {name: (result, error)}."""
    return {i["name"]: (i["result"], i["error"]) for i in outcome.json()["items"]}


def actions(outcome: Outcome) -> dict[str, str]:
    """A `plan --format json` document's items as {name: action}."""
    return {i["name"]: i["action"] for i in outcome.json()["items"]}


def items(outcome: Outcome) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in outcome.json()["items"]}


def changing_operations(endpoint: LocalEndpoint) -> list[str]:
    return [c.operation for c in endpoint.calls.changing()]


# --- create, then nothing -----------------------------------------------------------------


def test_create_writes_declared_tags_and_a_second_apply_makes_no_changing_call(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write(
        "finance/images.yaml",
        specs_dir.image("finance-win11", WS_A, tags={"team": "finance", "cost-center": "4410"}),
    )

    plan = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0)
    assert "+ create      finance-win11 (eu-west-1) from ws-0a1b2c3d4" in plan.stdout
    assert '+ tag cost-center = "4410"' in plan.stdout
    assert "Plan: 1 to create. 0 unchanged." in plan.stdout
    run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint, check_exit=2)
    assert changing_operations(endpoint) == []
    assert images(endpoint) == {}

    applied = run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=0)
    assert re.search(r"^  created +finance-win11 \(eu-west-1\) wsi-", applied.stdout, re.M)
    assert "Apply complete: 1 created." in applied.stdout
    image = images(endpoint)["finance-win11"]
    assert image["description"] == "Image finance-win11"
    assert image["tags"] == {"team": "finance", "cost-center": "4410", **OWN}
    assert image["state"] == "PENDING"  # the capture runs; the source is SUSPENDED meanwhile
    assert endpoint.fidelity.workspace_state(REGION, WS_A) == "SUSPENDED"
    assert changing_operations(endpoint) == ["CreateWorkspaceImage"]

    endpoint.calls.clear()
    run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=0)
    assert endpoint.calls.changing() == []
    run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint, check_exit=0)

    # Once the capture has finished, still nothing to do.
    endpoint.fidelity.finish_capture(REGION, image["id"])
    endpoint.calls.clear()
    again = run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=0)
    assert "No changes." in again.stdout
    assert endpoint.calls.changing() == []
    run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint, check_exit=0)
    assert images(endpoint)["finance-win11"]["tags"] == image["tags"]


# --- update-tags and no-op -----------------------------------------------------------------


def test_update_tags_sets_changed_and_added_keys_removes_extra_ones_and_leaves_the_rest(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    out_of_scope = {
        "aws:cloudformation:stack-name": "images",  # AWS's own
        "aws-cost-allocation": "4410",  # ignore_tag_keys
        "finops:budget": "b-17",  # ignore_tag_prefixes
    }
    retag = endpoint.fidelity.add_image(
        REGION,
        "retag",
        description="Image retag",
        tags={**OWN, "owner": "platform", "team": "old", "stale": "x", **out_of_scope},
    )
    steady_tags = {**OWN, "owner": "platform", "team": "ops", "finops:cost": "1"}
    steady = endpoint.fidelity.add_image(
        REGION, "steady", description="Image steady", tags=steady_tags
    )
    specs_dir.write(
        "defaults.yaml",
        {
            "defaults": {
                "tags": {"owner": "platform"},
                "ignore_tag_keys": ["aws-cost-allocation"],
                "ignore_tag_prefixes": ["finops:"],
            }
        },
    )
    specs_dir.write(
        "images.yaml",
        specs_dir.image("retag", WS_A, tags={"team": "new", "added": "1"}),
        specs_dir.image("steady", WS_B, tags={"team": "ops"}),
    )

    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=0)
    assert actions(plan) == {"retag": "update-tags", "steady": "no-op"}
    assert items(plan)["retag"]["tag_changes"] == [
        {"key": "added", "before": None, "after": "1"},
        {"key": "stale", "before": "x", "after": None},
        {"key": "team", "before": "old", "after": "new"},
    ]
    assert items(plan)["steady"]["tag_changes"] == []
    text = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0).stdout
    assert f"~ update-tags retag (eu-west-1) {retag}" in text
    assert '      + tag added = "1"' in text
    assert '      - tag stale = "x"' in text
    assert '      ~ tag team = "old" -> "new"' in text
    assert "Plan: 1 to update. 1 unchanged." in text
    assert "aws-cost-allocation" not in text
    assert "finops:" not in text
    assert "aws:" not in text
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)
    assert endpoint.calls.changing() == []

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=0
    )
    assert results(applied) == {"retag": ("tags-updated", None), "steady": ("unchanged", None)}
    assert endpoint.fidelity.image_tags(REGION, retag) == {
        **OWN,
        "owner": "platform",
        "team": "new",
        "added": "1",
        **out_of_scope,
    }
    assert endpoint.fidelity.image_tags(REGION, steady) == steady_tags
    assert sorted(changing_operations(endpoint)) == ["CreateTags", "DeleteTags"]

    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=0)
    run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint, check_exit=0)


# --- adopt ----------------------------------------------------------------------------------


def test_adopt_writes_declared_tags_and_the_ownership_tag_on_an_image_made_elsewhere(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    legacy = endpoint.fidelity.add_image(
        REGION, "legacy", description="Image legacy", tags={"team": "old", "note": "by hand"}
    )
    # Not ours and not declared: neither adopted nor listed as unmanaged.
    foreign_tags = {"team": "someone-else"}
    foreign = endpoint.fidelity.add_image(REGION, "foreign", tags=foreign_tags)
    # No tags at all: the service's DescribeTags reply then has no TagList.
    bare = endpoint.fidelity.add_image(REGION, "bare", description="Image bare")
    specs_dir.write(
        "images.yaml",
        specs_dir.image("legacy", WS_A, tags={"team": "finance"}),
        specs_dir.image("bare", WS_B),
    )

    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=0)
    item, bare_item = plan.json()["items"]
    assert bare_item["action"] == "adopt"
    assert bare_item["tag_changes"] == []
    assert item["action"] == "adopt"
    assert item["image_id"] == legacy
    assert "ownership tag" in item["reason"]
    assert plan.json()["unmanaged"] == []
    text = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0).stdout
    assert f"~ adopt       legacy (eu-west-1) {legacy}" in text
    assert "Plan: 2 to adopt. 0 unchanged." in text
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=0
    )
    assert results(applied) == {"legacy": ("adopted", None), "bare": ("adopted", None)}
    assert endpoint.fidelity.image_tags(REGION, bare) == OWN
    # The spec's tags are the whole set: the undeclared `note` goes, as in update-tags.
    assert endpoint.fidelity.image_tags(REGION, legacy) == {"team": "finance", **OWN}
    assert endpoint.fidelity.image_tags(REGION, foreign) == foreign_tags
    assert set(images(endpoint)) == {"legacy", "bare", "foreign"}
    assert "CreateWorkspaceImage" not in changing_operations(endpoint)

    endpoint.calls.clear()
    run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint, check_exit=0)
    run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=0)
    assert endpoint.calls.changing() == []


# --- conflict and blocked -------------------------------------------------------------------


def test_conflicts_are_reported_with_their_cause_exit_1_and_change_nothing(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_image(REGION, "renamed", description="Old description", tags=OWN)
    endpoint.fidelity.add_image(
        REGION,
        "broken",
        description="Image broken",
        tags={**OWN, "team": "old"},
        state="ERROR",
        error_code="InternalServerError",
        error_message="The image could not be created",
    )
    specs_dir.write(
        "images.yaml",
        specs_dir.image("renamed", WS_A),
        specs_dir.image("broken", WS_B, tags={"team": "new"}),
    )
    before = images(endpoint)

    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=1)
    assert actions(plan) == {"renamed": "conflict", "broken": "conflict"}
    assert "description differs" in items(plan)["renamed"]["reason"]
    assert "'Old description'" in items(plan)["renamed"]["reason"]
    broken_reason = items(plan)["broken"]["reason"]
    assert "ERROR" in broken_reason
    assert "InternalServerError" in broken_reason
    assert "The image could not be created" in broken_reason
    assert plan.json()["summary"]["conflict"] == 2
    text = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=1).stdout
    assert re.search(r"^  ! conflict +renamed \(eu-west-1\)", text, re.M)
    assert re.search(r"^  ! conflict +broken \(eu-west-1\)", text, re.M)
    assert "InternalServerError: The image could not be created" in text
    run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint, check_exit=1)
    # drift: "any item other than no-op" is drift.
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=1
    )
    for name in ("renamed", "broken"):
        result, error = results(applied)[name]
        assert result == "skipped"
        assert error == items(plan)[name]["reason"]
    run_reconciler(
        "apply", specs_dir, "--auto-approve", "--detailed-exitcode", endpoint=endpoint, check_exit=1
    )
    assert endpoint.calls.changing() == []
    assert images(endpoint) == before


def test_blocked_sources_exit_1_are_not_created_and_do_not_stop_the_other_items(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    fidelity = endpoint.fidelity
    fidelity.add_workspace(REGION, WS_A)  # AVAILABLE: the one create that can run
    fidelity.add_workspace(REGION, WS_B, state="TERMINATED")
    fidelity.add_workspace(REGION, WS_C, state="ERROR")
    fidelity.add_workspace(REGION, WS_D, state="STOPPED")
    # WS_E does not exist.
    specs_dir.write(
        "images.yaml",
        specs_dir.image("good", WS_A),
        specs_dir.image("terminated", WS_B),
        specs_dir.image("errored", WS_C),
        specs_dir.image("stopped", WS_D),
        specs_dir.image("missing", WS_E),
    )

    # Blocked items only: exit 1, and nothing is changed.
    run_reconciler("apply", specs_dir, "--auto-approve", "--target", "stopped",
                   "--target", "missing", endpoint=endpoint, check_exit=1)  # fmt: skip
    assert endpoint.calls.changing() == []

    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=1)
    assert actions(plan) == {
        "good": "create",
        "terminated": "blocked",
        "errored": "blocked",
        "stopped": "blocked",
        "missing": "blocked",
    }
    reasons = {name: item["reason"] for name, item in items(plan).items()}
    assert reasons["good"] is None
    assert WS_B in reasons["terminated"]
    assert "terminated" in reasons["terminated"]
    assert WS_C in reasons["errored"]
    assert "ERROR" in reasons["errored"]
    assert WS_D in reasons["stopped"]
    assert "start it first" in reasons["stopped"]
    assert WS_E in reasons["missing"]
    assert "not found in eu-west-1" in reasons["missing"]
    text = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=1).stdout
    assert re.search(r"^  ! blocked +stopped \(eu-west-1\)", text, re.M)
    assert "Plan: 1 to create. 0 unchanged, 4 blocked." in text

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=1
    )
    got = results(applied)
    assert got.pop("good") == ("created", None)
    assert got == {name: ("skipped", reasons[name]) for name in got}
    assert changing_operations(endpoint) == ["CreateWorkspaceImage"]
    assert set(images(endpoint)) == {"good"}
    for ws, state in ((WS_B, "TERMINATED"), (WS_C, "ERROR"), (WS_D, "STOPPED")):
        assert fidelity.workspace_state(REGION, ws) == state


@pytest.mark.fidelity(image_quota=3)
def test_quota_reached_blocks_the_create_and_a_smaller_real_quota_fails_it(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    fidelity = endpoint.fidelity
    fidelity.add_workspace(REGION, WS_A)
    fidelity.add_workspace(REGION, WS_B)
    fidelity.add_image(REGION, "kept-1", description="Image kept-1", tags=OWN)
    fidelity.add_image(REGION, "kept-2", description="Image kept-2", tags=OWN)
    specs_dir.write(
        "images.yaml",
        specs_dir.image("kept-1", WS_C),
        specs_dir.image("kept-2", WS_C),
        specs_dir.image("first", WS_A),
        specs_dir.image("second", WS_B),
    )

    quota = ("--image-quota", "3")
    plan = run_reconciler(
        "plan", specs_dir, *quota, "--format", "json", endpoint=endpoint, check_exit=1
    )
    assert actions(plan) == {
        "kept-1": "no-op",
        "kept-2": "no-op",
        "first": "create",
        "second": "blocked",
    }
    assert "quota of eu-west-1 (3) is reached" in items(plan)["second"]["reason"]

    applied = run_reconciler(
        "apply", specs_dir, *quota, "--auto-approve", "--format", "json",
        endpoint=endpoint, check_exit=1,
    )  # fmt: skip
    assert results(applied)["first"] == ("created", None)
    assert results(applied)["second"][0] == "skipped"
    assert changing_operations(endpoint) == ["CreateWorkspaceImage"]
    assert set(images(endpoint)) == {"kept-1", "kept-2", "first"}

    # Told a larger quota than the account has, the service refuses: failed, with a hint.
    endpoint.calls.clear()
    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=1
    )
    result, error = results(applied)["second"]
    assert result == "failed"
    assert "ResourceLimitExceededException" in error
    assert "quota" in error
    assert changing_operations(endpoint) == ["CreateWorkspaceImage"]
    assert set(images(endpoint)) == {"kept-1", "kept-2", "first"}


# --- busy sources and same-source deferral ----------------------------------------------------


def test_busy_source_stays_a_create_and_apply_defers_it_without_a_call(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A, state="SUSPENDED")
    endpoint.fidelity.add_workspace(REGION, WS_B, state="REBOOTING")
    specs_dir.write(
        "images.yaml",
        specs_dir.image("from-suspended", WS_A),
        specs_dir.image("from-rebooting", WS_B),
    )

    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=0)
    assert actions(plan) == {"from-suspended": "create", "from-rebooting": "create"}
    suspended = items(plan)["from-suspended"]
    assert suspended["source_busy"] is True
    assert suspended["source_state"] == "SUSPENDED"
    assert "busy (SUSPENDED)" in suspended["reason"]
    assert "busy (REBOOTING)" in items(plan)["from-rebooting"]["reason"]
    run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint, check_exit=2)

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=0
    )
    assert {name: r for name, (r, _) in results(applied).items()} == {
        "from-suspended": "deferred",
        "from-rebooting": "deferred",
    }
    assert "busy" in results(applied)["from-suspended"][1]
    run_reconciler(
        "apply", specs_dir, "--auto-approve", "--detailed-exitcode", endpoint=endpoint, check_exit=2
    )
    assert endpoint.calls.changing() == []
    assert images(endpoint) == {}

    endpoint.fidelity.set_workspace_state(REGION, WS_A, "AVAILABLE")
    endpoint.fidelity.set_workspace_state(REGION, WS_B, "AVAILABLE")
    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=0
    )
    assert results(applied) == {
        "from-suspended": ("created", None),
        "from-rebooting": ("created", None),
    }
    assert set(images(endpoint)) == {"from-suspended", "from-rebooting"}


def test_same_source_creates_one_image_at_a_time_and_defers_the_others(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    first, second, third = (
        specs_dir.image(name, WS_A, tags={"n": name}) for name in ("first", "second", "third")
    )
    specs_dir.write("images.yaml", first, second)

    # 1. Two creates from one WorkSpace: one is sent, the other deferred; exit 0.
    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=0
    )
    got = results(applied)
    assert got["first"] == ("created", None)
    assert got["second"][0] == "deferred"
    assert WS_A in got["second"][1]
    # One capture was sent; the second was not tried (it would fail: the source is SUSPENDED).
    assert changing_operations(endpoint) == ["CreateWorkspaceImage"]
    assert set(images(endpoint)) == {"first"}

    # 2. While that capture runs, the source is busy: still deferred, and work is left.
    endpoint.calls.clear()
    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", "--detailed-exitcode",
        endpoint=endpoint, check_exit=2,
    )  # fmt: skip
    assert results(applied)["first"] == ("unchanged", None)
    assert results(applied)["second"][0] == "deferred"
    assert endpoint.calls.changing() == []

    # 3. Capture done, and a third spec of the same source: second goes, third waits.
    endpoint.fidelity.finish_capture(REGION, images(endpoint)["first"]["id"])
    specs_dir.write("images.yaml", first, second, third)
    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", "--detailed-exitcode",
        endpoint=endpoint, check_exit=2,
    )  # fmt: skip
    got = results(applied)
    assert got["first"] == ("unchanged", None)
    assert got["second"] == ("created", None)
    assert got["third"][0] == "deferred"
    assert changing_operations(endpoint) == ["CreateWorkspaceImage"]

    # 4. And the last one once the source is free again: nothing left, exit 0.
    endpoint.fidelity.finish_capture(REGION, images(endpoint)["second"]["id"])
    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", "--detailed-exitcode",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    assert results(applied)["third"] == ("created", None)
    assert {name: image["tags"] for name, image in images(endpoint).items()} == {
        name: {"n": name, **OWN} for name in ("first", "second", "third")
    }


# --- races and lost replies ------------------------------------------------------------------


def test_image_created_by_someone_else_between_plan_and_apply_is_not_duplicated(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_workspace(REGION, WS_B)
    specs_dir.write(
        "images.yaml",
        specs_dir.image("console-made", WS_A, tags={"team": "finance"}),
        specs_dir.image("raced", WS_B, tags={"team": "finance"}),
    )
    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=0)
    assert actions(plan) == {"console-made": "create", "raced": "create"}

    # 1. After the plan, someone creates `console-made` in the console: same name and
    # description, no ownership tag. `apply` plans afresh when it starts, and the fresh
    # plan sees an image without the ownership tag: the contract's `adopt`, not a create.
    endpoint.fidelity.add_image(
        REGION, "console-made", description="Image console-made", tags={"made-in": "console"}
    )
    # 2. `raced` is created by a concurrent run (CI twice) after apply's own plan, just
    # before apply's CreateWorkspaceImage reaches the service: the service answers
    # ResourceAlreadyExistsException, which the contract counts as converged. The
    # endpoint's error rule is used only as a hook that runs right before the call.
    raced: list[str] = []

    def create_it_first(body: dict[str, Any]) -> bool:
        if body["Name"] == "raced" and not raced:
            tags = {t["Key"]: t["Value"] for t in body["Tags"]}
            raced.append(endpoint.fidelity.add_image(REGION, "raced", body["Description"], tags))
        return False  # never answer an error: the service itself runs the call

    endpoint.faults.error_for("CreateWorkspaceImage", "Unused", when=create_it_first)

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=0
    )
    assert results(applied) == {
        "console-made": ("adopted", None),
        "raced": ("converged", None),
    }
    assert raced, "the race hook did not run"
    assert endpoint.calls.count("CreateWorkspaceImage") == 1  # only `raced` was sent
    found = images(endpoint)
    assert set(found) == {"console-made", "raced"}
    assert found["console-made"]["tags"] == {"team": "finance", **OWN}
    assert found["raced"]["id"] == raced[0]
    assert found["raced"]["tags"] == {"team": "finance", **OWN}
    run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint, check_exit=0)


def test_saved_plan_whose_create_met_an_image_made_in_the_console_is_stale(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_workspace(REGION, WS_B)
    specs_dir.write(
        "images.yaml",
        specs_dir.image("console-made", WS_A, tags={"team": "finance"}),
        specs_dir.image("mine", WS_B),
    )
    saved = tmp_path / "reviewed.plan"
    run_reconciler("plan", specs_dir, "--out", saved, endpoint=endpoint, check_exit=0)
    console = endpoint.fidelity.add_image(
        REGION, "console-made", description="Image console-made", tags={"made-in": "console"}
    )

    # The contract: a planned create met by an image without the ownership tag makes the
    # saved plan stale (adopting it was never reviewed); nothing at all is changed, not even
    # the other item's create. An owned one would count as converged (test_saved_plans).
    applied = run_reconciler(
        "apply", specs_dir, "--plan-file", saved, "--format", "json", endpoint=endpoint
    )
    assert applied.code == 1, applied
    assert "saved plan is stale" in applied.stderr
    assert '"create" to "adopt"' in applied.stderr
    assert [c.operation for c in endpoint.calls.changing()] == []
    assert set(images(endpoint)) == {"console-made"}
    assert endpoint.fidelity.image_tags(REGION, console) == {"made-in": "console"}


@pytest.mark.parametrize(
    ("fault", "result", "sends"),
    [
        ("lost_reply", "converged", 1),  # ran, then a 500: found by the lookup
        ("reset_after", "converged", 1),  # ran, then the connection dropped: found
        ("error_before", "created", 2),  # a 500 without running: absent, so sent once more
        ("reset", "created", 2),  # dropped without running: absent, so sent once more
    ],
)
def test_create_with_a_lost_reply_is_settled_by_looking_the_name_up(
    endpoint: LocalEndpoint,
    specs_dir: SpecsDir,
    run_reconciler: RunReconciler,
    fault: str,
    result: str,
    sends: int,
) -> None:
    """The contract: found by the lookup means converged; absent means the create is sent
    once more and that answer stands (the service refuses a second image of one name)."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("images.yaml", specs_dir.image("img", WS_A, tags={"team": "t"}))
    endpoint.faults.fail_once("CreateWorkspaceImage", fault)

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    got, error = results(applied)["img"]
    assert got == result
    assert error is None
    assert endpoint.calls.count("CreateWorkspaceImage") == sends
    operations = [c.operation for c in endpoint.calls.all()]
    after_create = operations[operations.index("CreateWorkspaceImage") + 1 :]
    assert "DescribeWorkspaceImages" in after_create  # the lookup that settles it
    assert len(endpoint.fidelity.images(REGION)) == 1  # never two
    assert images(endpoint)["img"]["tags"] == {"team": "t", **OWN}
    assert items(applied)["img"]["image_id"] == images(endpoint)["img"]["id"]


# --- regions and --target ---------------------------------------------------------------------


def test_two_regions_and_target_limit_the_run_to_the_named_spec(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_workspace(OTHER_REGION, WS_B)
    specs_dir.write("eu/images.yaml", specs_dir.image("eu-image", WS_A, tags={"r": "eu"}))
    specs_dir.write("us/defaults.yaml", {"defaults": {"region": OTHER_REGION}})
    specs_dir.write(
        "us/images.yaml",
        specs_dir.image("us-image", WS_B, tags={"r": "us"}),
        specs_dir.image("us-other", WS_B),
    )

    unknown = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--target", "nope", endpoint=endpoint, check_exit=1
    )
    assert "--target names no spec: nope" in unknown.stderr
    assert endpoint.calls.all() == []

    plan = run_reconciler(
        "plan", specs_dir, "--target", "us-image", "--format", "json",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    assert [(i["name"], i["region"], i["action"]) for i in plan.json()["items"]] == [
        ("us-image", OTHER_REGION, "create")
    ]
    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--target", "us-image", "--format", "json",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    assert results(applied) == {"us-image": ("created", None)}
    assert images(endpoint, REGION) == {}
    assert set(images(endpoint, OTHER_REGION)) == {"us-image"}
    assert changing_operations(endpoint) == ["CreateWorkspaceImage"]
    assert endpoint.calls.changing()[0].region == OTHER_REGION

    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=0)
    assert [(i["name"], i["region"], i["action"]) for i in plan.json()["items"]] == [
        ("eu-image", REGION, "create"),
        ("us-image", OTHER_REGION, "no-op"),
        ("us-other", OTHER_REGION, "create"),
    ]
    # us-other shares us-image's source, which is SUSPENDED while us-image is captured.
    assert items(plan)["us-other"]["source_busy"] is True

    endpoint.fidelity.finish_capture(OTHER_REGION, images(endpoint, OTHER_REGION)["us-image"]["id"])
    run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=0)
    assert images(endpoint, REGION)["eu-image"]["tags"] == {"r": "eu", **OWN}
    assert set(images(endpoint, OTHER_REGION)) == {"us-image", "us-other"}
    assert images(endpoint, OTHER_REGION)["us-image"]["tags"] == {"r": "us", **OWN}
    run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint, check_exit=0)


# --- unmanaged --------------------------------------------------------------------------------


def test_unmanaged_image_is_listed_found_in_the_default_region_and_never_deleted(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    # The only spec is in us-east-1; the retired image is in the default region, eu-west-1.
    endpoint.fidelity.add_workspace(OTHER_REGION, WS_A)
    retired = endpoint.fidelity.add_image(REGION, "retired", tags={**OWN, "team": "t"})
    endpoint.fidelity.add_image(REGION, "not-ours", tags={"team": "t"})  # no ownership tag
    specs_dir.write("images.yaml", specs_dir.image("current", WS_A, region=OTHER_REGION))

    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=0)
    assert plan.json()["unmanaged"] == [
        {
            "kind": "image",
            "name": "retired",
            "region": REGION,
            "account": None,  # no account map: the run's own account
            "account_name": None,
            "image_id": retired,
            "state": "AVAILABLE",
            "used_by": [],
        }
    ]
    assert plan.json()["summary"]["unmanaged"] == 1
    text = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0).stdout
    assert "Owned images that no spec declares" in text
    assert f" retired (eu-west-1) {retired}\n" in text
    assert "not-ours" not in text
    assert "1 unmanaged" in text
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=0
    )
    assert results(applied) == {"current": ("created", None)}
    (unmanaged,) = applied.json()["unmanaged"]
    assert unmanaged["name"] == "retired"
    assert unmanaged["result"] == "unchanged"
    assert "DeleteWorkspaceImage" not in changing_operations(endpoint)
    assert set(images(endpoint, REGION)) == {"retired", "not-ours"}
    assert images(endpoint, REGION)["retired"]["tags"] == {**OWN, "team": "t"}
    assert set(images(endpoint, OTHER_REGION)) == {"current"}


# --- JSON documents -----------------------------------------------------------------------------

PLAN_ITEM_FIELDS = {
    "kind",
    "copy_from",
    "action",
    "name",
    "region",
    "image_id",
    "state",
    "spec_file",
    "spec_line",
    "source_workspace_id",
    "tag_changes",
    "reason",
}
SUMMARY = {
    "create",
    "no-op",
    "update-tags",
    "adopt",
    "update-sharing",
    "update-image",
    "conflict",
    "blocked",
    "unmanaged",
}
RESULTS = {
    "created",
    "converged",
    "tags-updated",
    "adopted",
    "sharing-updated",
    "image-updated",
    "deleted",
    "deferred",
    "failed",
    "skipped",
    "unchanged",
}


def test_plan_and_apply_json_documents_have_the_contract_fields(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    retag = endpoint.fidelity.add_image(REGION, "retag", description="Image retag", tags=OWN)
    same = endpoint.fidelity.add_image(REGION, "same", description="Image same", tags=OWN)
    orphan = endpoint.fidelity.add_image(REGION, "orphan", tags=OWN)
    specs_dir.write("a.yaml", specs_dir.image("same", WS_A))
    specs_dir.write(
        "finance/win11.yaml",
        "# a comment first\n" + json.dumps(specs_dir.image("retag", WS_A, tags={"k": "v"})) + "\n",
        specs_dir.image("new", WS_A, tags={"team": "finance"}),
    )

    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=0)
    document = plan.json()
    assert document["format_version"] == 2
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", document["specs_digest"])
    assert {"format_version", "specs_digest", "items", "unmanaged", "summary"} <= set(document)
    for item in document["items"]:
        assert set(item) >= PLAN_ITEM_FIELDS, item
        for change in item["tag_changes"]:
            assert set(change) == {"key", "before", "after"}
    assert [
        (i["name"], i["action"], i["spec_file"], i["spec_line"], i["image_id"], i["state"])
        for i in document["items"]
    ] == [
        ("same", "no-op", "a.yaml", 1, same, "AVAILABLE"),
        ("retag", "update-tags", "finance/win11.yaml", 2, retag, "AVAILABLE"),
        ("new", "create", "finance/win11.yaml", 4, None, None),
    ]
    new = items(plan)["new"]
    assert new["region"] == REGION
    assert new["source_workspace_id"] == WS_A
    assert new["tag_changes"] == [{"key": "team", "before": None, "after": "finance"}]
    assert new["reason"] is None
    assert items(plan)["retag"]["tag_changes"] == [{"key": "k", "before": None, "after": "v"}]
    assert document["unmanaged"] == [
        {
            "kind": "image",
            "name": "orphan",
            "region": REGION,
            "account": None,  # no account map: the run's own account
            "account_name": None,
            "image_id": orphan,
            "state": "AVAILABLE",
            "used_by": [],
        }
    ]
    assert document["summary"] == {
        "create": 1,
        "no-op": 1,
        "update-tags": 1,
        "adopt": 0,
        "update-sharing": 0,
        "update-image": 0,
        "conflict": 0,
        "blocked": 0,
        "unmanaged": 1,
    }
    assert set(document["summary"]) == SUMMARY

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=0
    )
    done = applied.json()
    assert done["format_version"] == 2
    assert done["specs_digest"] == document["specs_digest"]
    assert set(done["summary"]) == SUMMARY
    for item in done["items"]:
        assert PLAN_ITEM_FIELDS | {"result", "error"} <= set(item), item
        assert item["result"] in RESULTS
    assert results(applied) == {
        "same": ("unchanged", None),
        "retag": ("tags-updated", None),
        "new": ("created", None),
    }
    assert items(applied)["new"]["image_id"] == images(endpoint)["new"]["id"]
    assert items(applied)["new"]["action"] == "create"
    assert done["unmanaged"][0]["image_id"] == orphan


# --- exit codes ---------------------------------------------------------------------------------


def test_validate_exits_0_for_valid_and_1_for_invalid_specs_without_aws(
    specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    specs_dir.write("images.yaml", specs_dir.image("img", WS_A))  # no region: still valid
    ok = run_reconciler("validate", specs_dir, endpoint=None, check_exit=0)
    assert "valid" in ok.stdout
    specs_dir.write("bad.yaml", "name: bad\ndescription: Bad\nsource_workspace_id: ws-0a1b2c3d4\n"
                    "tags:\n  cost-center: 4410\n")  # fmt: skip
    bad = run_reconciler("validate", specs_dir, endpoint=None, check_exit=1)
    assert "bad.yaml:5" in bad.stderr
    assert "quote" in bad.stderr


def test_invalid_specs_stop_plan_apply_and_drift_with_exit_1_before_any_change(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("good.yaml", specs_dir.image("good", WS_A))
    specs_dir.write("bad.yaml", "name: bad\ndescription: Bad\nsource_workspace_id: ws-0a1b2c3d4\n"
                    "colour: red\n")  # fmt: skip
    for command in (("plan", "--detailed-exitcode"), ("apply", "--auto-approve"), ("drift",)):
        outcome = run_reconciler(*command, specs_dir, endpoint=endpoint, check_exit=1)
        assert "bad.yaml:4" in outcome.stderr, command
        assert "colour" in outcome.stderr
    assert endpoint.calls.changing() == []
    assert images(endpoint) == {}


def test_drift_exits_0_in_sync_and_2_for_tag_drift_unmanaged_and_stuck_captures(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    fidelity = endpoint.fidelity
    now = datetime.now(timezone.utc)
    steady = fidelity.add_image(REGION, "steady", "Image steady", tags={**OWN, "team": "a"})
    # A capture PENDING for one hour is normal, not drift.
    fidelity.add_image(REGION, "capturing", "Image capturing", OWN, "PENDING",
                       created=now - timedelta(hours=1))  # fmt: skip
    specs_dir.write(
        "images.yaml",
        specs_dir.image("steady", WS_A, tags={"team": "a"}),
        specs_dir.image("capturing", WS_B),
    )
    in_sync = run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=0)
    assert "No changes." in in_sync.stdout

    # Someone edits a tag in the console: drift, until apply puts it back.
    out_of_band(endpoint).create_tags(ResourceId=steady, Tags=[{"Key": "team", "Value": "b"}])
    drifted = run_reconciler(
        "drift", specs_dir, "--format", "json", endpoint=endpoint, check_exit=2
    )
    assert items(drifted)["steady"]["tag_changes"] == [{"key": "team", "before": "b", "after": "a"}]
    run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=0)
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=0)

    # An owned image that no spec declares: drift.
    orphan = fidelity.add_image(REGION, "orphan", tags=OWN)
    unmanaged = run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)
    assert f" orphan (eu-west-1) {orphan}\n" in unmanaged.stdout
    out_of_band(endpoint).delete_workspace_image(ImageId=orphan)
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=0)

    # A capture PENDING for three hours is stuck: drift, though its action is no-op.
    fidelity.add_image(REGION, "stuck", "Image stuck", OWN, "PENDING",
                       created=now - timedelta(hours=3))  # fmt: skip
    specs_dir.write("stuck.yaml", specs_dir.image("stuck", WS_C))
    stuck = run_reconciler("drift", specs_dir, "--format", "json", endpoint=endpoint, check_exit=2)
    assert items(stuck)["stuck"]["action"] == "no-op"
    assert items(stuck)["stuck"]["stuck"] is True
    assert items(stuck)["capturing"]["stuck"] is False
    text = run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2).stdout
    assert "stuck?" in text

    specs_dir.write("bad.yaml", "name: [not, a, string]\n")
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=1)


def test_apply_without_auto_approve_refuses_when_stdin_is_not_a_terminal(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("images.yaml", specs_dir.image("img", WS_A))
    refused = run_reconciler("apply", specs_dir, endpoint=endpoint, check_exit=1)
    assert "not a terminal" in refused.stderr
    assert "--auto-approve" in refused.stderr
    assert endpoint.calls.changing() == []
    assert images(endpoint) == {}


# --- the environment ------------------------------------------------------------------------------


def test_no_region_anywhere_names_the_spec_and_exits_1(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("eu/images.yaml", specs_dir.image("placed", WS_A, region=REGION))
    specs_dir.write("images.yaml", specs_dir.image("nowhere", WS_A))
    for command in (("plan",), ("apply", "--auto-approve"), ("drift",)):
        outcome = run_reconciler(
            *command, specs_dir, endpoint=endpoint, env={"AWS_REGION": None}, check_exit=1
        )
        problems = [line for line in outcome.stderr.splitlines() if "no region" in line]
        assert len(problems) == 1, outcome.stderr
        assert "images.yaml:1" in problems[0]
        assert "eu/images.yaml" not in problems[0]
        assert "--region" in problems[0]
    assert endpoint.calls.all() == []
    # With the region given, the same specs plan.
    run_reconciler("plan", specs_dir, "--region", REGION, endpoint=endpoint,
                   env={"AWS_REGION": None}, check_exit=0)  # fmt: skip


def test_missing_or_refused_credentials_exit_1_with_one_clear_line(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    specs_dir.write("images.yaml", specs_dir.image("img", WS_A))
    no_keys = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    for command in (("plan",), ("apply", "--auto-approve"), ("drift",)):
        outcome = run_reconciler(*command, specs_dir, endpoint=endpoint, env=no_keys, check_exit=1)
        assert "Error: no AWS credentials found" in outcome.stderr
        assert outcome.stdout == ""
    assert endpoint.calls.all() == []

    # Credentials the service refuses, and a role without read access: one line each.
    for code, message in (
        ("ExpiredTokenException", "Error: the AWS session token has expired"),
        ("UnrecognizedClientException", "Error: AWS rejected the credentials"),
        ("AccessDeniedException", "Error: access denied"),
    ):
        endpoint.faults.clear()
        endpoint.faults.error_for("DescribeWorkspaceImages", code)
        outcome = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=1)
        assert message in outcome.stderr
        assert outcome.stdout == ""
    assert "workspaces:DescribeWorkspaceImages" in outcome.stderr  # the IAM hint
    assert endpoint.calls.changing() == []
