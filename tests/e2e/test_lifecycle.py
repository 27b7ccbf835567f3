"""An image's whole life end to end (issue 7): `apply --wait` following captures to the end
and chaining same-source creates, `apply --prune` deleting only owned images that no spec
declares, `apply --replace-failed` capturing failed images again, and drift's health report.

Each test runs the real command (`python -m reconciler`) against a local WorkSpaces endpoint
that behaves like the real service (tests/fidelity: PENDING captures, suspended sources,
deletes and their refusals, ERROR images, bundle association), and asserts the exit code
and the final AWS state as the endpoint holds it.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, Outcome, RunReconciler, SpecsDir, out_of_band
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
WS_B = "ws-0b1b2c3d4"
WS_C = "ws-0c1b2c3d4"


# --- helpers -----------------------------------------------------------------------------


def images(endpoint: LocalEndpoint, region: str = REGION) -> dict[str, dict[str, Any]]:
    """The region's images by name, as the endpoint holds them."""
    found = endpoint.fidelity.images(region)
    by_name = {i["name"]: i for i in found}
    assert len(by_name) == len(found), f"duplicate image names: {found}"
    return by_name


def states(endpoint: LocalEndpoint) -> dict[str, str]:
    return {name: image["state"] for name, image in images(endpoint).items()}


def items(outcome: Outcome) -> dict[str, dict[str, Any]]:
    """A plan or apply JSON document's items by name."""
    return {i["name"]: i for i in outcome.json()["items"]}


def unmanaged(outcome: Outcome) -> dict[str, dict[str, Any]]:
    """An apply JSON document's unmanaged images by name."""
    return {u["name"]: u for u in outcome.json()["unmanaged"]}


def calls(endpoint: LocalEndpoint, operation: str) -> list[Any]:
    return [c for c in endpoint.calls.all() if c.operation == operation]


def in_background(run: RunReconciler, *args: Any, endpoint: LocalEndpoint) -> Future[Outcome]:
    """Run the command in a thread, so that the test can act on the endpoint meanwhile."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(run, *args, endpoint=endpoint)
    pool.shutdown(wait=False)
    return future


def pending_image(endpoint: LocalEndpoint, name: str, timeout: float = 20.0) -> str:
    """Wait until an image of that name exists, PENDING; its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image = images(endpoint).get(name)
        if image is not None and image["state"] == "PENDING":
            return str(image["id"])
        time.sleep(0.05)
    raise AssertionError(f"no PENDING image {name} after {timeout}s: {images(endpoint)}")


# --- apply --wait ------------------------------------------------------------------------


@pytest.mark.fidelity(capture_seconds=2)
def test_wait_follows_the_capture_until_available_with_progress_lines_on_stderr(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("images.yaml", specs_dir.image("golden", WS_A, tags={"team": "a"}))

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--wait", "--format", "json",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    golden = items(applied)["golden"]
    assert golden["result"] == "created"
    assert golden["state"] == "AVAILABLE"
    assert golden["error"] is None
    assert golden["image_id"] == images(endpoint)["golden"]["id"]
    assert images(endpoint)["golden"]["state"] == "AVAILABLE"
    assert images(endpoint)["golden"]["tags"] == {"team": "a", **OWN}
    assert endpoint.fidelity.workspace_state(REGION, WS_A) == "AVAILABLE"
    # stderr is not a terminal: plain log lines, no cursor movement.
    assert "waiting for 1 item (" in applied.stderr
    assert "golden (eu-west-1): PENDING" in applied.stderr
    assert "nothing left to wait for" in applied.stderr
    assert "\x1b[" not in applied.stderr
    # The plan's listing, then the wait's polls (one image: one call each).
    assert len(calls(endpoint, "DescribeWorkspaceImages")) >= 2

    # Converged: a second run with --wait has nothing to wait for and changes nothing.
    endpoint.calls.clear()
    again = run_reconciler("apply", specs_dir, "--auto-approve", "--wait", endpoint=endpoint,
                           check_exit=0)  # fmt: skip
    assert "No changes." in again.stdout
    assert endpoint.calls.changing() == []


def test_wait_timeout_exits_1_and_names_the_images_still_pending(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    # capture_seconds=0: the capture stays PENDING until the test finishes it.
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write(
        "images.yaml",
        specs_dir.image("slow-capture", WS_A),
        specs_dir.image("queued-behind", WS_A),
    )

    started = time.monotonic()
    timed_out = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--wait", "--wait-timeout", "3",
        endpoint=endpoint, check_exit=1,
    )  # fmt: skip
    assert 3 <= time.monotonic() - started < 20
    error = [line for line in timed_out.stderr.splitlines() if "--wait-timeout" in line]
    assert len(error) == 1, timed_out.stderr
    assert "slow-capture (eu-west-1, PENDING)" in error[0]
    assert "queued-behind (eu-west-1, deferred)" in error[0]
    assert states(endpoint) == {"slow-capture": "PENDING"}
    assert len(calls(endpoint, "CreateWorkspaceImage")) == 1


@pytest.mark.fidelity(capture_seconds=1)
def test_same_source_creates_are_deferred_without_wait_and_chained_one_at_a_time_with_it(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write(
        "images.yaml",
        specs_dir.image("first", WS_A, tags={"n": "1"}),
        specs_dir.image("second", WS_A, tags={"n": "2"}),
        specs_dir.image("third", WS_A, tags={"n": "3"}),
    )

    # Without --wait: one capture is sent, the two others are deferred.
    once = run_reconciler("apply", specs_dir, "--auto-approve", "--format", "json",
                          endpoint=endpoint, check_exit=0)  # fmt: skip
    got = {name: i["result"] for name, i in items(once).items()}
    assert got == {"first": "created", "second": "deferred", "third": "deferred"}
    assert set(images(endpoint)) == {"first"}

    # With --wait: the rest are created in turn as each capture ends, until all are done.
    waited = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--wait", "--wait-timeout", "40",
        "--format", "json", endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    done = items(waited)
    assert done["second"]["result"] == "created"
    assert done["third"]["result"] == "created"
    assert {i["state"] for i in done.values()} == {"AVAILABLE"}
    assert states(endpoint) == {"first": "AVAILABLE", "second": "AVAILABLE", "third": "AVAILABLE"}
    for n, name in enumerate(("first", "second", "third"), start=1):
        assert images(endpoint)[name]["tags"] == {"n": str(n), **OWN}
    assert endpoint.fidelity.workspace_state(REGION, WS_A) == "AVAILABLE"

    # The source was never asked for two captures at once: exactly three creates, each
    # accepted (a create on a SUSPENDED source is refused with InvalidResourceStateException),
    # each sent after the previous capture had ended.
    creates = calls(endpoint, "CreateWorkspaceImage")
    assert [c.status for c in creates] == [200, 200, 200]
    assert all(b.time - a.time >= 1 for a, b in itertools.pairwise(creates))


def test_a_capture_ending_in_error_during_wait_fails_that_item_and_not_the_others(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    fidelity = endpoint.fidelity
    fidelity.add_workspace(REGION, WS_A)
    fidelity.add_workspace(REGION, WS_B)
    specs_dir.write(
        "images.yaml",
        specs_dir.image("breaks", WS_A),
        specs_dir.image("works", WS_B),
    )

    running = in_background(
        run_reconciler, "apply", specs_dir, "--auto-approve", "--wait", "--wait-timeout", "30",
        "--format", "json", endpoint=endpoint,
    )  # fmt: skip
    fidelity.finish_capture(
        pending_image(endpoint, "breaks"),
        state="ERROR",
        error_code="InvalidVolumeState",
        error_message="The WorkSpace root volume could not be snapshotted.",
    )
    fidelity.finish_capture(pending_image(endpoint, "works"))
    applied = running.result(timeout=60)

    assert applied.code == 1, applied.stderr
    breaks, works = items(applied)["breaks"], items(applied)["works"]
    assert breaks["result"] == "failed"
    assert breaks["state"] == "ERROR"
    assert "InvalidVolumeState" in breaks["error"]
    assert "could not be snapshotted" in breaks["error"]
    assert works["result"] == "created"
    assert works["state"] == "AVAILABLE"
    assert states(endpoint) == {"breaks": "ERROR", "works": "AVAILABLE"}


# --- apply --replace-failed --------------------------------------------------------------


def test_failed_image_is_a_conflict_with_its_error_and_replace_failed_captures_it_again(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    fidelity = endpoint.fidelity
    fidelity.add_workspace(REGION, WS_A)
    failed = fidelity.add_image(
        REGION, "broken", "Image broken", {**OWN, "team": "old"}, "ERROR",
        error_code="InternalFailure", error_message="Image creation failed unexpectedly.",
    )  # fmt: skip
    specs_dir.write("images.yaml", specs_dir.image("broken", WS_A, tags={"team": "a"}))

    plan = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=1)
    assert f"! conflict    broken (eu-west-1) {failed}" in plan.stdout
    assert "InternalFailure" in plan.stdout
    assert "Image creation failed unexpectedly." in plan.stdout
    assert "--replace-failed" in plan.stdout
    assert "+ tag" not in plan.stdout  # a plain apply writes no tag on it
    as_json = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint,
                             check_exit=1)  # fmt: skip
    assert items(as_json)["broken"]["action"] == "conflict"
    assert items(as_json)["broken"]["state"] == "ERROR"
    assert "InternalFailure" in items(as_json)["broken"]["reason"]

    # A plain apply leaves the conflict alone: exit 1, nothing deleted or created.
    run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=1)
    assert endpoint.calls.changing() == []
    assert images(endpoint)["broken"]["id"] == failed

    replaced = run_reconciler("apply", specs_dir, "--auto-approve", "--replace-failed",
                              endpoint=endpoint, check_exit=0)  # fmt: skip
    # The plan shows the replacement with the tags it is captured with.
    assert f"-/+ replace     broken (eu-west-1) {failed} from {WS_A}" in replaced.stdout
    assert '+ tag team = "a"' in replaced.stdout
    assert f"created      broken (eu-west-1) {images(endpoint)['broken']['id']}" in replaced.stdout
    image = images(endpoint)["broken"]
    assert image["id"] != failed
    assert image["state"] == "PENDING"
    assert image["description"] == "Image broken"
    assert image["tags"] == {"team": "a", **OWN}
    assert [c.operation for c in endpoint.calls.changing()] == [
        "DeleteWorkspaceImage",
        "CreateWorkspaceImage",
    ]


@pytest.mark.fidelity(capture_seconds=1)
def test_replace_failed_behind_a_same_source_create_is_chained_under_wait(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    fidelity = endpoint.fidelity
    fidelity.add_workspace(REGION, WS_A)
    failed = fidelity.add_image(REGION, "broken", "Image broken", OWN, "ERROR",
                                error_code="InternalFailure")  # fmt: skip
    specs_dir.write(
        "images.yaml",
        specs_dir.image("fresh", WS_A),  # first in spec order: its capture goes first
        specs_dir.image("broken", WS_A),
    )

    # Without --wait the replacement waits for the next run, and the failed image stays
    # until then: work left (exit 2 with --detailed-exitcode), not converged.
    once = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--replace-failed", "--detailed-exitcode",
        "--format", "json", endpoint=endpoint, check_exit=2,
    )  # fmt: skip
    assert {n: i["result"] for n, i in items(once).items()} == {
        "fresh": "created",
        "broken": "deferred",
    }
    assert images(endpoint)["broken"]["id"] == failed
    assert calls(endpoint, "DeleteWorkspaceImage") == []

    # With --wait it is deleted and captured again once the source is free.
    waited = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--replace-failed", "--wait",
        "--wait-timeout", "20", "--format", "json", endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    assert items(waited)["broken"]["result"] == "created"
    assert items(waited)["broken"]["state"] == "AVAILABLE"
    assert states(endpoint) == {"fresh": "AVAILABLE", "broken": "AVAILABLE"}
    assert images(endpoint)["broken"]["id"] != failed
    assert images(endpoint)["broken"]["tags"] == OWN
    accepted = [c for c in calls(endpoint, "CreateWorkspaceImage") if c.status == 200]
    assert len(accepted) == 2


# --- apply --prune -----------------------------------------------------------------------


def test_prune_deletes_only_owned_images_that_no_spec_declares(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    fidelity = endpoint.fidelity
    fidelity.add_workspace(REGION, WS_A)
    managed = fidelity.add_image(REGION, "managed", "Image managed", {**OWN, "team": "x"})
    retired = fidelity.add_image(REGION, "retired", "Image retired", {**OWN, "team": "x"})
    foreign = fidelity.add_image(REGION, "made-by-hand", "By hand", {"team": "x"})
    specs_dir.write("images.yaml", specs_dir.image("managed", WS_A, tags={"team": "y"}))

    # Without --prune, the retired image is only listed, and nothing is deleted.
    kept = run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=0)
    assert "apply --prune would delete them" in kept.stdout
    assert f"retired (eu-west-1) {retired}" in kept.stdout
    assert calls(endpoint, "DeleteWorkspaceImage") == []
    assert set(images(endpoint)) == {"managed", "retired", "made-by-hand"}

    # --prune with --target would judge only part of the specs: refused, nothing deleted.
    endpoint.calls.clear()
    refused = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--prune", "--target", "managed", endpoint=endpoint
    )
    assert refused.code != 0
    assert "--target" in refused.stderr
    assert endpoint.calls.changing() == []
    assert set(images(endpoint)) == {"managed", "retired", "made-by-hand"}

    specs_dir.write("images.yaml", specs_dir.image("managed", WS_A, tags={"team": "z"}))
    pruned = run_reconciler("apply", specs_dir, "--auto-approve", "--prune", endpoint=endpoint,
                            check_exit=0)  # fmt: skip
    out = pruned.stdout
    warning = out.index("Warning: --prune deletes these owned images")
    deletion = out.index(f"- delete      retired (eu-west-1) {retired}")
    update = out.index(f"~ update-tags managed (eu-west-1) {managed}")
    assert warning < deletion < update  # deletions first, under a warning
    assert "made-by-hand" not in out
    assert foreign not in out
    assert f"deleted      retired (eu-west-1) {retired}" in out
    assert set(images(endpoint)) == {"managed", "made-by-hand"}
    assert images(endpoint)["made-by-hand"]["id"] == foreign
    assert images(endpoint)["managed"]["tags"] == {"team": "z", **OWN}
    assert [c.operation for c in calls(endpoint, "DeleteWorkspaceImage")] == [
        "DeleteWorkspaceImage"
    ]

    # Pruned: nothing unmanaged is left, so drift is clean.
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=0)


def test_prune_refuses_an_empty_specs_folder_unless_allow_empty(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    fidelity = endpoint.fidelity
    fidelity.add_image(REGION, "owned-one", "Owned one", OWN)
    fidelity.add_image(REGION, "owned-two", "Owned two", {**OWN, "team": "t"})
    foreign = fidelity.add_image(REGION, "made-by-hand", "By hand", {"team": "t"})
    (specs_dir.path / "README.md").write_text("No specs here (a moved folder?)\n")

    refused = run_reconciler("apply", specs_dir, "--auto-approve", "--prune", endpoint=endpoint,
                             check_exit=1)  # fmt: skip
    assert "--allow-empty" in refused.stderr
    assert endpoint.calls.changing() == []
    assert set(images(endpoint)) == {"owned-one", "owned-two", "made-by-hand"}

    retired = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--prune", "--allow-empty", "--format", "json",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    assert {n: u["result"] for n, u in unmanaged(retired).items()} == {
        "owned-one": "deleted",
        "owned-two": "deleted",
    }
    assert set(images(endpoint)) == {"made-by-hand"}
    assert images(endpoint)["made-by-hand"]["id"] == foreign
    assert len(calls(endpoint, "DeleteWorkspaceImage")) == 2


def test_prune_reports_images_the_service_keeps_with_a_hint_and_the_rest_proceeds(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    fidelity = endpoint.fidelity
    fidelity.add_workspace(REGION, WS_A)
    in_bundle = fidelity.add_image(REGION, "in-bundle", "In a bundle", OWN)
    fidelity.associate_bundle(REGION, in_bundle)
    unused = fidelity.add_image(REGION, "unused", "Unused", OWN)
    capturing = fidelity.add_image(REGION, "capturing", "Capturing", OWN, "PENDING")
    shared = fidelity.add_image(REGION, "shared", "Shared", OWN)
    out_of_band(endpoint).update_workspace_image_permission(
        ImageId=shared, AllowCopyImage=True, SharedAccountId="111122223333"
    )
    specs_dir.write("images.yaml", specs_dir.image("new-image", WS_A, tags={"team": "a"}))

    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--prune", "--format", "json",
        endpoint=endpoint, check_exit=1,
    )  # fmt: skip
    gone = unmanaged(applied)
    assert gone["unused"]["result"] == "deleted"
    assert gone["in-bundle"]["result"] == "failed"
    assert "ResourceAssociatedException" in gone["in-bundle"]["error"]
    assert "bundle" in gone["in-bundle"]["error"].split("hint:")[1]
    assert gone["capturing"]["result"] == "skipped"
    assert "PENDING" in gone["capturing"]["error"]
    # Shared with another account: its sharing is revoked first, then it is deleted.
    assert gone["shared"]["result"] == "deleted"
    # The test's own grant, then the revocation.
    assert len(calls(endpoint, "UpdateWorkspaceImagePermission")) == 2
    # The other items still proceed.
    assert items(applied)["new-image"]["result"] == "created"

    after = images(endpoint)
    assert set(after) == {"in-bundle", "capturing", "new-image"}
    assert after["in-bundle"]["id"] == in_bundle
    assert after["capturing"]["id"] == capturing
    assert after["new-image"]["tags"] == {"team": "a", **OWN}
    # The PENDING image was not even tried: the service would refuse it. The shared one took
    # two: refused while shared, then deleted once its sharing was revoked.
    assert len(calls(endpoint, "DeleteWorkspaceImage")) == 4
    assert unused not in {i["id"] for i in after.values()}

    # The text report says the same, with the hints.
    fidelity.finish_capture(REGION, images(endpoint)["new-image"]["id"])
    text = run_reconciler("apply", specs_dir, "--auto-approve", "--prune", endpoint=endpoint,
                          check_exit=1)  # fmt: skip
    assert f"failed       in-bundle (eu-west-1) {in_bundle}" in text.stdout
    assert "hint: a bundle uses this image" in text.stdout
    assert f"skipped      capturing (eu-west-1) {capturing}" in text.stdout
    assert "still PENDING" in text.stdout
    assert "Apply failed" in text.stdout


# --- drift health --------------------------------------------------------------------------


def test_drift_reports_health_and_calls_a_capture_pending_over_2_hours_stuck(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    fidelity = endpoint.fidelity
    now = datetime.now(timezone.utc)
    fidelity.add_image(REGION, "ready", "Image ready", OWN)
    fidelity.add_image(REGION, "capturing", "Image capturing", OWN, "PENDING",
                       created=now - timedelta(minutes=30))  # fmt: skip
    specs_dir.write(
        "images.yaml",
        specs_dir.image("ready", WS_A),
        specs_dir.image("capturing", WS_B),
    )
    healthy = run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=0)
    assert "Health: 1 AVAILABLE, 1 PENDING, 0 ERROR." in healthy.stdout
    assert "stuck" not in healthy.stdout

    stuck = fidelity.add_image(REGION, "stuck", "Image stuck", OWN, "PENDING",
                               created=now - timedelta(hours=3))  # fmt: skip
    specs_dir.write("stuck.yaml", specs_dir.image("stuck", WS_C))
    drifted = run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)
    assert "Health: 1 AVAILABLE, 2 PENDING (1 stuck for over 2 hours), 0 ERROR." in drifted.stdout
    stuck_lines = [line for line in drifted.stdout.splitlines() if stuck in line]
    assert any("stuck?" in line or "PENDING" in line for line in stuck_lines)
    assert "stuck?" in drifted.stdout
    as_json = run_reconciler("drift", specs_dir, "--format", "json", endpoint=endpoint,
                             check_exit=2)  # fmt: skip
    assert items(as_json)["stuck"]["stuck"] is True
    assert items(as_json)["stuck"]["action"] == "no-op"
    assert items(as_json)["capturing"]["stuck"] is False

    failed = fidelity.add_image(
        REGION, "failed", "Image failed", OWN, "ERROR",
        error_code="InternalFailure", error_message="Snapshot failed.",
    )  # fmt: skip
    specs_dir.write("failed.yaml", specs_dir.image("failed", WS_A))
    report = run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)
    assert "Health: 1 AVAILABLE, 2 PENDING (1 stuck for over 2 hours), 1 ERROR." in report.stdout
    assert f"ERROR     failed (eu-west-1) {failed}" in report.stdout
    assert "InternalFailure: Snapshot failed." in report.stdout
    assert endpoint.calls.changing() == []
