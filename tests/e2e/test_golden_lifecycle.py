"""The golden-image lifecycle end to end (issue 12): copies to other regions, sharing with
accounts, and bundles that roll forward, with their order, waiting and deletions.

Each test runs the real command (`python -m reconciler`) against the local endpoint
(`reconciler.emulator`: moto with CopyWorkspaceImage, image permissions and every bundle
call as the real service behaves), and asserts exit codes, results and what the endpoint
holds afterwards.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, Outcome, RunReconciler, SpecsDir
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
COPY_REGION = "us-east-1"
WS_A = "ws-0a1b2c3d4"
WS_B = "ws-0b1b2c3d4"
ACCOUNT_1 = "111122223333"
ACCOUNT_2 = "444455556666"
ACCOUNT_3 = "777788889999"


# --- helpers -----------------------------------------------------------------------------


def image_doc(name: str, source: str = WS_A, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": f"Image {name}", "source_workspace_id": source, **extra}


def bundle_doc(name: str, image: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "bundle",
        "name": name,
        "description": f"Bundle {name}",
        "image": image,
        "compute_type": "STANDARD",
        "user_volume_gib": 50,
        **extra,
    }


def images(endpoint: LocalEndpoint, region: str = REGION) -> dict[str, dict[str, Any]]:
    found = endpoint.fidelity.images(region)
    by_name = {i["name"]: i for i in found}
    assert len(by_name) == len(found), f"duplicate image names: {found}"
    return by_name


def bundles(endpoint: LocalEndpoint, region: str = REGION) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in endpoint.fidelity.bundles(region)}


def results(outcome: Outcome) -> dict[tuple[str, str, str], tuple[str, str | None]]:
    """(kind, region, name) -> (result, error) of an apply JSON document."""
    return {
        (i["kind"], i["region"], i["name"]): (i["result"], i["error"])
        for i in outcome.json()["items"]
    }


def planned(outcome: Outcome) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(i["kind"], i["region"], i["name"]): i for i in outcome.json()["items"]}


def changing(endpoint: LocalEndpoint) -> list[tuple[str, str]]:
    """(operation, region) of every call that may change something, in order."""
    return [(c.operation, c.region) for c in endpoint.calls.changing() if c.status < 400]


def apply_json(
    run: RunReconciler,
    specs: SpecsDir,
    endpoint: LocalEndpoint,
    *extra: str,
    check_exit: int | None = None,
) -> Outcome:
    return run(
        "apply",
        specs,
        "--auto-approve",
        "--format",
        "json",
        *extra,
        endpoint=endpoint,
        check_exit=check_exit,
    )


def finish_all(endpoint: LocalEndpoint, region: str = REGION) -> None:
    for image in endpoint.fidelity.images(region):
        if image["state"] == "PENDING":
            endpoint.fidelity.finish_capture(region, image["id"])


# --- copies ------------------------------------------------------------------------------


def test_a_copy_is_deferred_until_the_capture_ends_then_made_by_a_later_run(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("a.yaml", image_doc("golden", copies=[COPY_REGION], tags={"team": "t"}))

    plan = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0)
    assert f"golden ({COPY_REGION}) copy of {REGION}, after the capture" in plan.stdout

    first = apply_json(run_reconciler, specs_dir, endpoint, "--detailed-exitcode", check_exit=2)
    done = results(first)
    assert done[("image", REGION, "golden")] == ("created", None)
    result, reason = done[("image", COPY_REGION, "golden")]
    assert result == "deferred"
    assert f"waits for the capture of golden ({REGION}) to end" in (reason or "")
    assert images(endpoint, COPY_REGION) == {}
    assert endpoint.calls.count("CopyWorkspaceImage") == 0

    finish_all(endpoint)
    second = apply_json(run_reconciler, specs_dir, endpoint, "--detailed-exitcode", check_exit=0)
    assert results(second)[("image", COPY_REGION, "golden")] == ("created", None)
    copy = images(endpoint, COPY_REGION)["golden"]
    source = images(endpoint)["golden"]
    assert endpoint.fidelity.copied_from(COPY_REGION, copy["id"]) == (REGION, source["id"])
    assert copy["tags"] == {**OWN, "team": "t"}
    assert copy["description"] == "Image golden"

    finish_all(endpoint, COPY_REGION)
    endpoint.calls.clear()
    third = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert {r for r, _ in results(third).values()} == {"unchanged"}
    assert changing(endpoint) == []


def test_a_copy_in_error_is_a_conflict_that_replace_failed_copies_again(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    source = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    broken = endpoint.fidelity.add_image(
        COPY_REGION, "golden", "Image golden", tags=OWN, state="ERROR", error_code="CopyFailed"
    )
    specs_dir.write("a.yaml", image_doc("golden", copies=[COPY_REGION]))

    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=1)
    copy = planned(plan)[("image", COPY_REGION, "golden")]
    assert copy["action"] == "conflict"
    assert copy["copy_from"] == REGION
    assert "--replace-failed" in copy["reason"]

    apply_json(run_reconciler, specs_dir, endpoint, "--replace-failed", check_exit=0)
    copy_now = images(endpoint, COPY_REGION)["golden"]
    assert copy_now["id"] != broken
    assert endpoint.fidelity.copied_from(COPY_REGION, copy_now["id"]) == (REGION, source)


# --- sharing -----------------------------------------------------------------------------


def test_sharing_grants_and_revokes_to_the_declared_set_and_then_is_a_no_op(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.set_shared_accounts(REGION, image, [ACCOUNT_1, ACCOUNT_3])
    specs_dir.write("a.yaml", image_doc("golden", share_with=[ACCOUNT_1, ACCOUNT_2]))

    plan = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0)
    assert f"~ update-sharing golden ({REGION})" in plan.stdout
    assert f"+ account {ACCOUNT_2}" in plan.stdout
    assert f"- account {ACCOUNT_3}" in plan.stdout
    share = planned(run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint))[
        ("share", REGION, "golden")
    ]
    assert share["share_changes"] == [
        {"account": ACCOUNT_2, "before": False, "after": True},
        {"account": ACCOUNT_3, "before": True, "after": False},
    ]

    done = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert results(done)[("share", REGION, "golden")] == ("sharing-updated", None)
    assert sorted(endpoint.fidelity.shared_accounts(REGION, image)) == [ACCOUNT_1, ACCOUNT_2]

    again = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint)
    assert planned(again)[("share", REGION, "golden")]["action"] == "no-op"


def test_an_image_without_share_with_is_never_read_nor_changed_for_sharing(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.set_shared_accounts(REGION, image, [ACCOUNT_3])
    specs_dir.write("a.yaml", image_doc("golden"))

    apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert endpoint.calls.count("DescribeWorkspaceImagePermissions") == 0
    assert endpoint.calls.count("UpdateWorkspaceImagePermission") == 0
    assert endpoint.fidelity.shared_accounts(REGION, image) == [ACCOUNT_3]


def test_a_copy_is_shared_in_its_own_region_too(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    copy = endpoint.fidelity.add_image(COPY_REGION, "golden", "Image golden", tags=OWN)
    specs_dir.write("a.yaml", image_doc("golden", copies=[COPY_REGION], share_with=[ACCOUNT_1]))
    done = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert results(done)[("share", COPY_REGION, "golden")] == ("sharing-updated", None)
    assert endpoint.fidelity.shared_accounts(COPY_REGION, copy) == [ACCOUNT_1]


# --- bundles -----------------------------------------------------------------------------


def test_bundle_create_then_rollout_to_a_new_image_with_update_image(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    old = endpoint.fidelity.add_image(REGION, "golden-2026-10", "Image golden-2026-10", tags=OWN)
    new = endpoint.fidelity.add_image(REGION, "golden-2026-11", "Image golden-2026-11", tags=OWN)
    specs_dir.write("images.yaml", image_doc("golden-2026-10"), image_doc("golden-2026-11", WS_B))
    specs_dir.write("bundle.yaml", bundle_doc("standard", "golden-2026-10", tags={"team": "t"}))

    created = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert results(created)[("bundle", REGION, "standard")] == ("created", None)
    bundle = bundles(endpoint)["standard"]
    assert bundle["image_id"] == old
    assert bundle["tags"] == {**OWN, "team": "t"}
    assert (bundle["compute_type"], bundle["user_storage"]) == ("STANDARD", 50)

    specs_dir.write("bundle.yaml", bundle_doc("standard", "golden-2026-11", tags={"team": "t"}))
    plan = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0)
    assert f"~ update-image bundle standard ({REGION})" in plan.stdout
    assert f"~ image golden-2026-10 ({old}) -> golden-2026-11" in plan.stdout
    item = planned(run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint))[
        ("bundle", REGION, "standard")
    ]
    assert (item["image_before"], item["image_id"], item["image_name"]) == (
        old,
        new,
        "golden-2026-11",
    )

    endpoint.calls.clear()
    rolled = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert results(rolled)[("bundle", REGION, "standard")] == ("image-updated", None)
    assert bundles(endpoint)["standard"]["image_id"] == new
    assert [op for op, _ in changing(endpoint)] == ["UpdateWorkspaceBundle"]

    settled = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint)
    assert planned(settled)[("bundle", REGION, "standard")]["action"] == "no-op"


def test_bundle_tags_adoption_conflict_and_blocked(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.add_bundle(
        REGION, "retag", image, description="Bundle retag", tags={**OWN, "team": "old"}
    )
    endpoint.fidelity.add_bundle(REGION, "theirs", image, description="Bundle theirs")
    endpoint.fidelity.add_bundle(
        REGION, "bigger", image, description="Bundle bigger", compute_type="PERFORMANCE", tags=OWN
    )
    specs_dir.write("images.yaml", image_doc("golden"))
    specs_dir.write(
        "bundles.yaml",
        bundle_doc("retag", "golden", tags={"team": "new"}),
        bundle_doc("theirs", "golden"),
        bundle_doc("bigger", "golden"),
        {
            "kind": "bundle",
            "name": "lost",
            "description": "Bundle lost",
            "image_id": "wsi-0nosuch00",
            "compute_type": "STANDARD",
            "user_volume_gib": 50,
        },
    )
    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=1)
    actions = {k[2]: v["action"] for k, v in planned(plan).items() if k[0] == "bundle"}
    assert actions == {
        "retag": "update-tags",
        "theirs": "adopt",
        "bigger": "conflict",
        "lost": "blocked",
    }
    reasons = {k[2]: v["reason"] for k, v in planned(plan).items() if k[0] == "bundle"}
    assert "compute type differs" in reasons["bigger"]
    assert "names no image" in reasons["lost"]

    done = apply_json(run_reconciler, specs_dir, endpoint, check_exit=1)
    got = {k[2]: v[0] for k, v in results(done).items() if k[0] == "bundle"}
    assert got == {
        "retag": "tags-updated",
        "theirs": "adopted",
        "bigger": "skipped",
        "lost": "skipped",
    }
    live = bundles(endpoint)
    assert live["retag"]["tags"] == {**OWN, "team": "new"}
    assert live["theirs"]["tags"] == OWN
    assert live["bigger"]["compute_type"] == "PERFORMANCE"
    assert "lost" not in live


def test_the_fifty_bundle_quota_blocks_a_create_before_any_call(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    for n in range(50):
        endpoint.fidelity.add_bundle(REGION, f"other-{n:02d}", image)
    specs_dir.write("a.yaml", image_doc("golden"), bundle_doc("standard", "golden"))
    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=1)
    item = planned(plan)[("bundle", REGION, "standard")]
    assert item["action"] == "blocked"
    assert "50 custom bundles" in item["reason"]
    apply_json(run_reconciler, specs_dir, endpoint, check_exit=1)
    assert endpoint.calls.count("CreateWorkspaceBundle") == 0


# --- order and waiting -------------------------------------------------------------------


@pytest.mark.fidelity(capture_seconds=1.0)
def test_the_whole_chain_in_one_run_with_wait(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write(
        "a.yaml",
        image_doc("golden", copies=[COPY_REGION], share_with=[ACCOUNT_1]),
        bundle_doc("standard", "golden"),
        bundle_doc("standard-us", "golden", region=COPY_REGION),
    )
    # Captures and copies end by themselves after a second (the marker above).
    run = run_reconciler(
        "apply",
        specs_dir,
        "--auto-approve",
        "--wait",
        "--format",
        "json",
        endpoint=endpoint,
        timeout=120,
    )
    assert run.code == 0, run.stderr
    done = results(run)
    assert {v[0] for v in done.values()} == {"created", "sharing-updated"}
    golden = images(endpoint)["golden"]
    copy = images(endpoint, COPY_REGION)["golden"]
    assert (golden["state"], copy["state"]) == ("AVAILABLE", "AVAILABLE")
    assert endpoint.fidelity.shared_accounts(REGION, golden["id"]) == [ACCOUNT_1]
    assert endpoint.fidelity.shared_accounts(COPY_REGION, copy["id"]) == [ACCOUNT_1]
    assert bundles(endpoint)["standard"]["image_id"] == golden["id"]
    assert bundles(endpoint, COPY_REGION)["standard-us"]["image_id"] == copy["id"]
    # Progress lines name what ran after waiting.
    assert f"sharing-updated golden ({COPY_REGION})" in run.stderr
    assert "created bundle standard-us" in run.stderr


def test_dependents_of_a_capture_are_deferred_naming_what_they_wait_for(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write(
        "a.yaml",
        image_doc("golden", share_with=[ACCOUNT_1]),
        bundle_doc("standard", "golden"),
    )
    first = apply_json(run_reconciler, specs_dir, endpoint, "--detailed-exitcode", check_exit=2)
    done = results(first)
    for key in (("share", REGION, "golden"), ("bundle", REGION, "standard")):
        result, reason = done[key]
        assert result == "deferred", key
        assert f"waits for the capture of golden ({REGION}) to end" in (reason or "")
    assert endpoint.calls.count("CreateWorkspaceBundle") == 0
    assert endpoint.calls.count("UpdateWorkspaceImagePermission") == 0

    finish_all(endpoint)
    second = apply_json(run_reconciler, specs_dir, endpoint, "--detailed-exitcode", check_exit=0)
    assert results(second)[("bundle", REGION, "standard")] == ("created", None)
    assert results(second)[("share", REGION, "golden")] == ("sharing-updated", None)


# --- prune -------------------------------------------------------------------------------


def test_prune_deletes_the_bundle_then_revokes_sharing_then_deletes_the_image(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    keep = endpoint.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN)
    old = endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    endpoint.fidelity.set_shared_accounts(REGION, old, [ACCOUNT_1, ACCOUNT_2])
    endpoint.fidelity.add_bundle(REGION, "old-bundle", old, tags=OWN)
    specs_dir.write("a.yaml", image_doc("keep"))

    plan = run_reconciler("plan", specs_dir, "--prune", endpoint=endpoint, check_exit=0)
    assert re.search(r"- delete +bundle old-bundle \(eu-west-1\) wsb-", plan.stdout), plan.stdout

    endpoint.calls.clear()
    done = apply_json(run_reconciler, specs_dir, endpoint, "--prune", check_exit=0)
    gone = {(u["kind"], u["name"]): u["result"] for u in done.json()["unmanaged"]}
    assert gone == {("bundle", "old-bundle"): "deleted", ("image", "old"): "deleted"}
    assert changing(endpoint) == [
        ("DeleteWorkspaceBundle", REGION),
        ("UpdateWorkspaceImagePermission", REGION),
        ("UpdateWorkspaceImagePermission", REGION),
        ("DeleteWorkspaceImage", REGION),
    ]
    assert set(images(endpoint)) == {"keep"}
    assert bundles(endpoint) == {}
    assert keep


def test_prune_keeps_an_image_that_a_declared_bundle_still_uses(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    used = endpoint.fidelity.add_image(REGION, "retired", "Image retired", tags=OWN)
    endpoint.fidelity.add_bundle(REGION, "standard", used, description="Bundle standard", tags=OWN)
    specs_dir.write(
        "a.yaml",
        {
            "kind": "bundle",
            "name": "standard",
            "description": "Bundle standard",
            "image_id": used,
            "compute_type": "STANDARD",
            "user_volume_gib": 50,
        },
    )
    done = apply_json(run_reconciler, specs_dir, endpoint, "--prune", check_exit=0)
    (kept,) = done.json()["unmanaged"]
    assert (kept["name"], kept["result"]) == ("retired", "unchanged")
    assert "bundle standard still uses it" in kept["error"]
    assert endpoint.calls.count("DeleteWorkspaceImage") == 0
    assert "retired" in images(endpoint)

    plan = run_reconciler("plan", specs_dir, "--prune", endpoint=endpoint, check_exit=0)
    assert "kept while bundle standard uses it" in plan.stdout
    assert "- delete" not in plan.stdout
    text = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--prune", "--detailed-exitcode",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    assert re.search(rf"kept +retired \(eu-west-1\) {used}\n +kept: bundle standard", text.stdout)
    assert endpoint.calls.count("DeleteWorkspaceImage") == 0


# --- saved plans -------------------------------------------------------------------------


def test_a_saved_plan_of_format_1_is_refused_with_a_message_to_plan_again(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("a.yaml", image_doc("golden"))
    saved = tmp_path / "plan.json"
    run_reconciler("plan", specs_dir, "--out", saved, endpoint=endpoint, check_exit=0)
    document = json.loads(saved.read_text())
    document["format_version"] = 1
    saved.write_text(json.dumps(document))

    refused = run_reconciler(
        "apply", specs_dir, "--plan-file", saved, endpoint=endpoint, check_exit=1
    )
    assert "format 1" in refused.stderr
    assert "plan again" in refused.stderr
    assert endpoint.calls.changing() == []


def test_a_copy_is_adopted_and_retagged_like_any_image(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags={**OWN, "team": "t"})
    endpoint.fidelity.add_image(COPY_REGION, "golden", "Image golden", tags={"team": "t"})
    endpoint.fidelity.add_image(REGION, "silver", "Image silver", tags={**OWN, "team": "t"})
    endpoint.fidelity.add_image(COPY_REGION, "silver", "Image silver", tags={**OWN, "team": "x"})
    specs_dir.write(
        "a.yaml",
        image_doc("golden", copies=[COPY_REGION], tags={"team": "t"}),
        image_doc("silver", copies=[COPY_REGION], tags={"team": "t"}),
    )
    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=0)
    copies = {k[2]: v for k, v in planned(plan).items() if k[:2] == ("image", COPY_REGION)}
    assert (copies["golden"]["action"], copies["golden"]["copy_from"]) == ("adopt", REGION)
    assert copies["silver"]["action"] == "update-tags"

    done = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert results(done)[("image", COPY_REGION, "golden")] == ("adopted", None)
    assert results(done)[("image", COPY_REGION, "silver")] == ("tags-updated", None)
    live = images(endpoint, COPY_REGION)
    assert live["golden"]["tags"] == {**OWN, "team": "t"}
    assert live["silver"]["tags"] == {**OWN, "team": "t"}
    assert endpoint.calls.count("CopyWorkspaceImage") == 0


def test_a_bundle_whose_image_is_blocked_is_blocked_and_nothing_is_created(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    # No WorkSpace ws-0a1b2c3d4 in the region: the image's create is blocked.
    specs_dir.write(
        "a.yaml",
        image_doc("golden", copies=[COPY_REGION], share_with=[ACCOUNT_1]),
        bundle_doc("standard", "golden"),
    )
    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint, check_exit=1)
    got = planned(plan)
    assert got[("image", REGION, "golden")]["action"] == "blocked"
    assert got[("image", COPY_REGION, "golden")]["action"] == "blocked"
    bundle = got[("bundle", REGION, "standard")]
    assert bundle["action"] == "blocked"
    assert f"its image golden ({REGION}) is blocked" in bundle["reason"]

    apply_json(run_reconciler, specs_dir, endpoint, check_exit=1)
    assert endpoint.calls.changing() == []


def test_a_bundle_in_a_copy_region_uses_the_copy(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    copy = endpoint.fidelity.add_image(COPY_REGION, "golden", "Image golden", tags=OWN)
    specs_dir.write(
        "a.yaml",
        image_doc("golden", copies=[COPY_REGION]),
        bundle_doc("standard-us", "golden", region=COPY_REGION),
    )
    apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert bundles(endpoint, COPY_REGION)["standard-us"]["image_id"] == copy


def test_a_saved_lifecycle_plan_is_applied_as_reviewed_and_refused_when_sharing_moved(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    old = endpoint.fidelity.add_image(REGION, "golden-10", "Image golden-10", tags=OWN)
    new = endpoint.fidelity.add_image(REGION, "golden-11", "Image golden-11", tags=OWN)
    endpoint.fidelity.add_bundle(REGION, "standard", old, description="Bundle standard", tags=OWN)
    specs_dir.write(
        "a.yaml",
        image_doc("golden-10"),
        image_doc("golden-11", WS_B, share_with=[ACCOUNT_1]),
        bundle_doc("standard", "golden-11"),
    )
    saved = tmp_path / "plan.json"
    run_reconciler("plan", specs_dir, "--out", saved, endpoint=endpoint, check_exit=0)

    # Sharing changes behind the plan's back: the reviewed plan no longer says what would
    # happen, so nothing is applied.
    endpoint.fidelity.set_shared_accounts(REGION, new, [ACCOUNT_2])
    stale = run_reconciler("apply", specs_dir, "--plan-file", saved, endpoint=endpoint)
    assert stale.code == 1
    assert "saved plan is stale" in stale.stderr
    assert bundles(endpoint)["standard"]["image_id"] == old

    endpoint.fidelity.set_shared_accounts(REGION, new, [])
    done = run_reconciler(
        "apply", specs_dir, "--plan-file", saved, "--format", "json", endpoint=endpoint,
        check_exit=0,
    )  # fmt: skip
    assert results(done)[("bundle", REGION, "standard")] == ("image-updated", None)
    assert results(done)[("share", REGION, "golden-11")] == ("sharing-updated", None)
    assert bundles(endpoint)["standard"]["image_id"] == new
    assert endpoint.fidelity.shared_accounts(REGION, new) == [ACCOUNT_1]


def test_a_bundle_owned_by_nobody_is_never_deleted_by_prune(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.add_bundle(REGION, "console-made", image)  # no ownership tag
    specs_dir.write("a.yaml", image_doc("golden"), bundle_doc("standard", "golden"))
    done = apply_json(run_reconciler, specs_dir, endpoint, "--prune", check_exit=0)
    assert done.json()["unmanaged"] == []
    assert endpoint.calls.count("DeleteWorkspaceBundle") == 0
    assert set(bundles(endpoint)) == {"console-made", "standard"}


def test_a_copy_region_that_refuses_the_account_is_named_not_blamed_on_credentials(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.disable_region("ap-east-1")  # an opt-in region not enabled
    specs_dir.write("a.yaml", image_doc("golden", copies=["ap-east-1"]))
    refused = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=1)
    assert "region ap-east-1 refused the account (UnrecognizedClientException)" in refused.stderr
    assert "opt-in region" in refused.stderr
    assert "credentials" not in refused.stderr
    assert endpoint.calls.changing() == []


# --- interrupted and concurrent runs -----------------------------------------------------


def test_a_signal_while_waiting_for_a_copy_exits_130_and_the_next_run_finishes_the_chain(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    from tests.e2e.test_concurrency_and_signals import finish, start, wait_for

    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write(
        "a.yaml",
        image_doc("golden", copies=[COPY_REGION], share_with=[ACCOUNT_1]),
        bundle_doc("standard-us", "golden", region=COPY_REGION),
    )
    process = start(endpoint, "apply", str(specs_dir), "--auto-approve", "--wait",
                    "--api-rate", "0")  # fmt: skip
    wait_for(lambda: "golden" in images(endpoint), what="the capture")
    finish_all(endpoint)  # the capture ends; --wait then sends the copy
    wait_for(lambda: endpoint.calls.count("CopyWorkspaceImage") == 1, what="the copy")
    process.send_signal(signal.SIGINT)
    code, stdout, stderr = finish(process, timeout=30)
    assert code == 130, (stdout, stderr)
    assert "Apply interrupted" in stdout
    assert bundles(endpoint, COPY_REGION) == {}  # its copy never became AVAILABLE

    finish_all(endpoint, COPY_REGION)
    again = apply_json(run_reconciler, specs_dir, endpoint, "--wait", check_exit=0)
    done = results(again)
    assert done[("bundle", COPY_REGION, "standard-us")] == ("created", None)
    assert endpoint.calls.count("CopyWorkspaceImage") == 1  # never a second copy
    copy = images(endpoint, COPY_REGION)["golden"]
    assert bundles(endpoint, COPY_REGION)["standard-us"]["image_id"] == copy["id"]
    assert endpoint.fidelity.shared_accounts(COPY_REGION, copy["id"]) == [ACCOUNT_1]


@pytest.mark.fidelity(capture_seconds=1.0)
def test_two_applies_at_once_carry_the_chain_and_make_each_resource_once(
    endpoint: LocalEndpoint, specs_dir: SpecsDir
) -> None:
    from tests.e2e.test_concurrency_and_signals import finish, start

    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write(
        "a.yaml",
        image_doc("golden", copies=[COPY_REGION], share_with=[ACCOUNT_1]),
        bundle_doc("standard", "golden"),
        bundle_doc("standard-us", "golden", region=COPY_REGION),
    )
    args = ("apply", str(specs_dir), "--auto-approve", "--wait", "--api-rate", "0")
    runs = [start(endpoint, *args) for _ in range(2)]
    outcomes = [finish(p, timeout=120) for p in runs]
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    for region in (REGION, COPY_REGION):
        assert list(images(endpoint, region)) == ["golden"]
        assert endpoint.fidelity.shared_accounts(
            region, images(endpoint, region)["golden"]["id"]
        ) == [ACCOUNT_1]
    assert set(bundles(endpoint)) == {"standard"}
    assert set(bundles(endpoint, COPY_REGION)) == {"standard-us"}


# --- deletions meet what they must not touch ---------------------------------------------


def test_prune_deletes_no_bundle_and_revokes_nothing_when_a_bundle_spec_cannot_be_read(
    endpoint: LocalEndpoint, specs_dir: SpecsDir
) -> None:
    from tests.e2e.test_specs_read_whole import run_unprivileged

    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.set_shared_accounts(REGION, image, [ACCOUNT_1])
    endpoint.fidelity.add_bundle(REGION, "standard", image, description="Bundle standard",
                                 tags=OWN)  # fmt: skip
    specs_dir.write("images.yaml", image_doc("golden", share_with=[ACCOUNT_1]))
    specs_dir.write("team/bundle.yaml", bundle_doc("standard", "golden"))
    team = specs_dir.path / "team"
    team.chmod(0o000)
    try:
        endpoint.calls.clear()
        applied = run_unprivileged("apply", specs_dir, "--prune", "--auto-approve",
                                   endpoint=endpoint)  # fmt: skip
    finally:
        team.chmod(0o755)
    assert applied.code == 1, applied.stdout + applied.stderr
    assert f"{specs_dir}/team: <folder>: folder cannot be read" in applied.stderr
    assert endpoint.calls.changing() == []
    assert set(bundles(endpoint)) == {"standard"}
    assert endpoint.fidelity.shared_accounts(REGION, image) == [ACCOUNT_1]


def test_a_saved_prune_plan_deletes_no_bundle_that_appeared_after_it(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    specs_dir.write("a.yaml", image_doc("golden"))
    saved = tmp_path / "plan.json"
    run_reconciler("plan", specs_dir, "--prune", "--out", saved, endpoint=endpoint, check_exit=0)
    # Owned, and no spec declares it: but the reviewed plan did not show its deletion.
    endpoint.fidelity.add_bundle(REGION, "late", image, tags=OWN)
    endpoint.calls.clear()
    stale = run_reconciler("apply", specs_dir, "--plan-file", saved, endpoint=endpoint)
    assert stale.code == 1
    assert "saved plan is stale" in stale.stderr
    assert endpoint.calls.changing() == []
    assert set(bundles(endpoint)) == {"late"}
