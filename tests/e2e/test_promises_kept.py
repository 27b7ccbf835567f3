"""Promises kept at the edges (issue 17), end to end: the real command in a subprocess
against the local endpoint (`reconciler.emulator`), watched at the server.

- A saved plan deletes exactly the deletions it showed: an image it showed kept is never
  deleted because the bundle that kept it went away meanwhile (the plan is stale).
- A saved plan's create met by an image nobody owns is stale (adoption was never reviewed);
  met by an owned one it is converged.
- `apply --wait` ends at once when a capture fails: what waited on it fails, naming it.
- A bundle on the `image_id` of a PENDING image makes no call until it is AVAILABLE.
- Sharing with the image's own account is an error before any change; one failed grant
  does not stop the item's other grants and revocations.
- Bundles the tagging API leaves out are read with DescribeTags.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import (
    REGION,
    ROOT,
    Outcome,
    RunReconciler,
    SpecsDir,
    bundle_doc,
    image_doc,
    out_of_band,
    reconciler_env,
)
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
COPY_REGION = "us-east-1"


def results(outcome: Outcome) -> dict[tuple[str, str, str], tuple[str, str | None]]:
    return {
        (i["kind"], i["region"], i["name"]): (i["result"], i["error"])
        for i in outcome.json()["items"]
    }


def changing(endpoint: LocalEndpoint) -> list[str]:
    return [c.operation for c in endpoint.calls.changing()]


def image_names(endpoint: LocalEndpoint, region: str = REGION) -> set[str]:
    return {i["name"] for i in endpoint.fidelity.images(region)}


# --- 2. a saved plan never deletes what it showed kept ------------------------------------


def test_a_saved_prune_plan_that_kept_an_image_is_stale_once_its_bundle_is_gone(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    # img-old: owned, no spec; console-b: a bundle made in the console (not owned) on it.
    old = endpoint.fidelity.add_image(REGION, "img-old", "Image img-old", tags=OWN)
    console_b = endpoint.fidelity.add_bundle(REGION, "console-b", old)
    current = endpoint.fidelity.add_image(REGION, "img-new", "Image img-new", tags=OWN)
    specs_dir.write(
        "a.yaml",
        image_doc("img-new"),
        bundle_doc("standard", image="img-new"),
    )
    endpoint.fidelity.add_bundle(
        REGION, "standard", current, description="Bundle standard", tags=OWN
    )
    plan_file = tmp_path / "p.json"
    plan = run_reconciler(
        "plan", specs_dir, "--prune", "--out", plan_file, endpoint=endpoint, check_exit=0
    )
    assert "kept while bundle console-b uses it" in plan.stdout

    out_of_band(endpoint).delete_workspace_bundle(BundleId=console_b)
    endpoint.calls.clear()
    applied = run_reconciler(
        "apply", specs_dir, "--plan-file", plan_file, "--format", "json", endpoint=endpoint
    )
    assert applied.code == 1, applied
    assert "saved plan is stale" in applied.stderr
    assert "img-old" in applied.stderr
    assert changing(endpoint) == []
    assert "img-old" in image_names(endpoint)


def test_a_saved_prune_plan_deletes_what_it_showed_when_nothing_moved(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    """The other side of the staleness rule: the reviewed deletion is carried out."""
    endpoint.fidelity.add_image(REGION, "img-old", "Image img-old", tags=OWN)
    endpoint.fidelity.add_image(REGION, "img-new", "Image img-new", tags=OWN)
    specs_dir.write("a.yaml", image_doc("img-new"))
    plan_file = tmp_path / "p.json"
    run_reconciler(
        "plan", specs_dir, "--prune", "--out", plan_file, endpoint=endpoint, check_exit=0
    )
    applied = run_reconciler(
        "apply", specs_dir, "--plan-file", plan_file, "--format", "json", endpoint=endpoint
    )
    assert applied.code == 0, applied
    assert [u["result"] for u in applied.json()["unmanaged"]] == ["deleted"]
    assert image_names(endpoint) == {"img-new"}


# --- 3. a saved plan's create met by an image nobody owns ---------------------------------


def _save_create_plan(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run: RunReconciler, plan_file: Path
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("a.yaml", image_doc("golden"), bundle_doc("standard", image="golden"))
    run("plan", specs_dir, "--out", plan_file, endpoint=endpoint, check_exit=0)
    saved = json.loads(plan_file.read_text(encoding="utf-8"))
    assert {(i["kind"], i["action"]) for i in saved["items"]} == {
        ("image", "create"),
        ("bundle", "create"),
    }


def test_a_saved_create_met_by_an_unowned_image_is_stale(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    plan_file = tmp_path / "p.json"
    _save_create_plan(endpoint, specs_dir, run_reconciler, plan_file)
    endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags={"team": "other"})
    endpoint.calls.clear()

    applied = run_reconciler(
        "apply", specs_dir, "--plan-file", plan_file, "--format", "json", endpoint=endpoint
    )
    assert applied.code == 1, applied
    assert "saved plan is stale" in applied.stderr
    assert "adopt" in applied.stderr
    assert changing(endpoint) == []
    assert endpoint.fidelity.bundles(REGION) == []


def test_a_saved_create_met_by_an_owned_image_converges_even_before_the_tagging_api_shows_it(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    plan_file = tmp_path / "p.json"
    _save_create_plan(endpoint, specs_dir, run_reconciler, plan_file)
    # Another run made the image, tagged at creation; the tagging API lags behind it.
    endpoint.fidelity.stale_tags(3600)
    endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.calls.clear()

    applied = run_reconciler(
        "apply", specs_dir, "--plan-file", plan_file, "--format", "json", endpoint=endpoint
    )
    assert applied.code == 0, applied
    done = results(applied)
    assert done[("image", REGION, "golden")][0] == "converged"
    assert done[("bundle", REGION, "standard")][0] == "created"
    assert endpoint.calls.count("CreateWorkspaceImage") == 0


# --- 4. apply --wait ends when a capture fails --------------------------------------------


def _start(args: list[str], endpoint: LocalEndpoint) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args, "--api-rate", "0"],
        env=reconciler_env(endpoint),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _until(found: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the endpoint")


def test_wait_fails_what_waits_on_a_failed_capture_at_once_and_ends(
    endpoint: LocalEndpoint, specs_dir: SpecsDir
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write(
        "a.yaml",
        image_doc("golden", copies=[COPY_REGION], share_with=["111122223333"]),
        bundle_doc("standard", image="golden"),
        bundle_doc("standard-us", image="golden", region=COPY_REGION),
    )
    started = time.monotonic()
    run = _start(
        ["apply", str(specs_dir), "--auto-approve", "--wait", "--wait-timeout", "600",
         "--format", "json"],
        endpoint,
    )  # fmt: skip
    try:
        pending = _until(lambda: [i for i in endpoint.fidelity.images(REGION)])
        endpoint.fidelity.finish_capture(
            REGION, pending[0]["id"], state="ERROR", error_code="CaptureFailed",
            error_message="disk full",
        )  # fmt: skip
        stdout, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    elapsed = time.monotonic() - started
    assert run.returncode == 1, stderr
    assert elapsed < 30, f"the wait went on for {elapsed:.0f} s after the capture failed"
    done = {(i["kind"], i["region"], i["name"]): i for i in json.loads(stdout)["items"]}
    capture = done[("image", REGION, "golden")]
    assert capture["result"] == "failed"
    assert "CaptureFailed: disk full" in capture["error"]
    for key in [
        ("image", COPY_REGION, "golden"),
        ("share", REGION, "golden"),
        ("share", COPY_REGION, "golden"),
        ("bundle", REGION, "standard"),
        ("bundle", COPY_REGION, "standard-us"),
    ]:
        assert done[key]["result"] == "failed", done[key]
        assert f"golden ({REGION}) failed" in done[key]["error"], done[key]
    assert endpoint.calls.count("CopyWorkspaceImage") == 0
    assert endpoint.calls.count("CreateWorkspaceBundle") == 0
    assert endpoint.calls.count("UpdateWorkspaceImagePermission") == 0


# --- 5. a bundle on the image_id of a PENDING image ---------------------------------------


def test_a_bundle_on_a_pending_image_id_waits_for_it_without_a_call(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    pending = endpoint.fidelity.add_image(REGION, "ext", "Image ext", tags={}, state="PENDING")
    specs_dir.write("b.yaml", bundle_doc("standard", image_id=pending))

    first = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", "--detailed-exitcode",
        endpoint=endpoint,
    )  # fmt: skip
    assert first.code == 2, first
    ((result, error),) = results(first).values()
    assert result == "deferred"
    assert f"image {pending} ({REGION}) to be AVAILABLE (PENDING)" in (error or "")
    assert endpoint.calls.count("CreateWorkspaceBundle") == 0

    endpoint.calls.clear()
    run = _start(
        ["apply", str(specs_dir), "--auto-approve", "--wait", "--wait-timeout", "120",
         "--format", "json"],
        endpoint,
    )  # fmt: skip
    try:
        time.sleep(1.5)  # the run is waiting: its first poll comes after 2 s
        assert run.poll() is None, "apply --wait ended while the image was PENDING"
        endpoint.fidelity.finish_capture(REGION, pending)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0, stderr
    # The wait named what it waited for (it used to say "nothing left to wait for" at once).
    assert stderr.startswith("waiting for 1 item"), stderr
    assert f"waits for its image {pending} ({REGION}) to be AVAILABLE" in stderr
    ((result, error),) = {
        i["name"]: (i["result"], i["error"]) for i in json.loads(stdout)["items"]
    }.values()
    assert (result, error) == ("created", None)
    (made,) = endpoint.fidelity.bundles(REGION)
    assert made["image_id"] == pending
    creates = [c for c in endpoint.calls.all() if c.operation == "CreateWorkspaceBundle"]
    assert [c.status for c in creates] == [200]


# --- 6. sharing with the image's own account; one refused grant -------------------------

OWN_ACCOUNT = "123456789012"  # moto's account for the test credentials
PARTNER_1 = "111122223333"
PARTNER_2 = "444455556666"
PARTNER_3 = "777788889999"


def test_sharing_with_the_images_own_account_is_an_error_before_any_change(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("defaults.yaml", {"defaults": {"share_with": [PARTNER_1, OWN_ACCOUNT]}})
    specs_dir.write("team/a.yaml", image_doc("golden"), image_doc("silver", source="ws-0b1b2c3d4"))
    for command in (["plan"], ["apply", "--auto-approve"]):
        outcome = run_reconciler(*command, specs_dir, endpoint=endpoint)
        assert outcome.code == 1, outcome
        # Once, at the defaults list both specs share, with file, line and field.
        assert outcome.stderr.count(f"lists {OWN_ACCOUNT}") == 1, outcome.stderr
        assert "defaults.yaml:2:1: share_with:" in outcome.stderr, outcome.stderr
    assert changing(endpoint) == []
    assert endpoint.fidelity.images(REGION) == []


def test_sharing_with_the_images_own_account_in_the_spec_is_named_there(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    specs_dir.write("a.yaml", image_doc("golden", share_with=[OWN_ACCOUNT]))
    outcome = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint)
    assert outcome.code == 1, outcome
    (problem,) = outcome.json()["error"]["problems"]
    assert (problem["file"].endswith("a.yaml"), problem["line"], problem["field"]) == (
        True,
        4,
        "share_with",
    )
    assert OWN_ACCOUNT in problem["message"]


def test_one_refused_grant_does_not_stop_the_others_nor_the_revocations(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.set_shared_accounts(REGION, image, [PARTNER_3])
    specs_dir.write("a.yaml", image_doc("golden", share_with=[PARTNER_1, PARTNER_2]))
    endpoint.faults.error_for(
        "UpdateWorkspaceImagePermission",
        "InvalidParameterValuesException",
        when=lambda body: body["SharedAccountId"] == PARTNER_1,
    )
    outcome = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint
    )
    assert outcome.code == 1, outcome
    result, error = results(outcome)[("share", REGION, "golden")]
    assert result == "failed"
    assert f"+{PARTNER_1}: InvalidParameterValuesException" in (error or "")
    assert f"done: +{PARTNER_2}, -{PARTNER_3}" in (error or "")
    assert set(endpoint.fidelity.shared_accounts(REGION, image)) == {PARTNER_2}
    # The own-account check costs one sts:GetCallerIdentity a run, only with share_with.
    assert endpoint.calls.count("GetCallerIdentity") == 1


def test_specs_without_share_with_ask_sts_nothing(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    specs_dir.write("a.yaml", image_doc("golden"))
    run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0)
    assert endpoint.calls.count("GetCallerIdentity") == 0
    assert endpoint.calls.count("DescribeWorkspaceImages") == 1  # STS calls are recorded


# --- 7. bundles the tagging API leaves out ------------------------------------------------


def test_the_emulator_can_leave_bundles_out_of_the_tagging_api_as_real_answers_did(
    endpoint: LocalEndpoint,
) -> None:
    import boto3

    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    bundle = endpoint.fidelity.add_bundle(REGION, "standard", image, tags=OWN)
    endpoint.fidelity.leave_out_of_tagging("workspacebundle")
    tagging = boto3.client(
        "resourcegroupstaggingapi",
        region_name=REGION,
        endpoint_url=endpoint.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    arns = [
        endpoint.fidelity.image_arn(REGION, image),
        endpoint.fidelity.bundle_arn(REGION, bundle),
    ]
    answered = tagging.get_resources(ResourceARNList=arns)["ResourceTagMappingList"]
    assert [m["ResourceARN"] for m in answered] == arns[:1]
    described = out_of_band(endpoint).describe_tags(ResourceId=bundle)["TagList"]
    assert {t["Key"]: t["Value"] for t in described} == OWN


def test_a_converged_bundle_the_tagging_api_leaves_out_is_no_op_and_drift_clears(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.add_bundle(
        REGION, "standard", image, description="Bundle standard", tags={**OWN, "team": "t"}
    )
    endpoint.fidelity.leave_out_of_tagging("workspacebundle")
    specs_dir.write(
        "a.yaml", image_doc("golden"), bundle_doc("standard", image="golden", tags={"team": "t"})
    )
    endpoint.calls.clear()
    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint)
    assert plan.code == 0, plan
    actions = {(i["kind"], i["name"]): i["action"] for i in plan.json()["items"]}
    assert actions == {("image", "golden"): "no-op", ("bundle", "standard"): "no-op"}
    # The bundle's tags came from one DescribeTags; the image's from the tagging API.
    assert endpoint.calls.count("DescribeTags") == 1
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=0)


def test_an_owned_bundle_whose_spec_was_removed_is_found_where_owned_images_live(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """No bundle spec at all and bundles absent from the tagging API: the bundle is still
    listed (owned images live in the region) and read with DescribeTags."""
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.add_bundle(REGION, "retired", image, tags=OWN)
    endpoint.fidelity.leave_out_of_tagging("workspacebundle")
    specs_dir.write("a.yaml", image_doc("golden"))
    drift = run_reconciler("drift", specs_dir, "--format", "json", endpoint=endpoint)
    assert drift.code == 2, drift
    assert [(u["kind"], u["name"]) for u in drift.json()["unmanaged"]] == [("bundle", "retired")]
    pruned = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--prune", "--format", "json", endpoint=endpoint
    )
    assert pruned.code == 0, pruned
    assert endpoint.fidelity.bundles(REGION) == []
    assert "golden" in image_names(endpoint)


# --- what validate warns of, plan says too ------------------------------------------------


def test_plan_says_on_stderr_what_validate_warns_of(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_workspace(COPY_REGION, WS_A)
    # One name with a region and without one: valid (the default region is another), but
    # one image if the default region ever becomes us-east-1.
    specs_dir.write("a.yaml", image_doc("golden", region=COPY_REGION))
    specs_dir.write("b.yaml", image_doc("golden"))
    validated = run_reconciler("validate", specs_dir, endpoint=None, check_exit=0)
    (warning,) = [line for line in validated.stderr.splitlines() if ": warning: " in line]
    planned = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint)
    assert planned.code == 0, planned
    assert warning in planned.stderr.splitlines()
    assert planned.json()["format_version"] == 2  # stdout stays one document


def test_prune_never_deletes_a_bundle_nobody_owns_that_the_tagging_api_leaves_out(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Bundles left out of the tagging API are read with DescribeTags, never taken for
    untagged owned ones: a hand-made bundle and another team's stay, watched at the server."""
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.add_bundle(REGION, "hand-made", image)
    endpoint.fidelity.add_bundle(REGION, "theirs", image, tags={"team": "other"})
    endpoint.fidelity.leave_out_of_tagging("workspacebundle")
    specs_dir.write("a.yaml", image_doc("golden"))
    pruned = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--prune", "--format", "json", endpoint=endpoint
    )
    assert pruned.code == 0, pruned
    assert pruned.json()["unmanaged"] == []
    assert changing(endpoint) == []
    assert endpoint.calls.count("DescribeTags") == 2  # each bundle read, once
    assert {b["name"] for b in endpoint.fidelity.bundles(REGION)} == {"hand-made", "theirs"}
