"""Every region that holds an owned image is read (issue 10 item 4, issue 11), end to end.

The default region of these runs is eu-west-1 (the e2e environment's AWS_REGION); the
regions below are others, which only discovery (one tag-filtered GetResources per region
where WorkSpaces is offered) can bring into a plan.
"""

from __future__ import annotations

from tests.e2e.conftest import RunReconciler, SpecsDir, source
from tests.fidelity import LocalEndpoint

OLD, NEW = "us-west-2", "us-east-1"
OWN = {"workspaces-image-reconciler:managed": "true"}


def test_a_spec_moved_to_another_region_leaves_its_old_image_unmanaged_until_pruned(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    old = endpoint.fidelity.add_image(OLD, "img", "Image img", tags=OWN)
    endpoint.fidelity.add_workspace(NEW, source(1))
    specs_dir.write("images.yaml", specs_dir.image("img", source(1), region=NEW))  # moved

    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=endpoint).json()
    assert [(i["region"], i["action"]) for i in plan["items"]] == [(NEW, "create")]
    assert [(u["region"], u["image_id"]) for u in plan["unmanaged"]] == [(OLD, old)]

    run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=0)
    (new,) = endpoint.fidelity.images(NEW)
    endpoint.fidelity.finish_capture(NEW, new["id"])
    # The moved spec is in sync in its new region; the image it left behind is drift.
    drift = run_reconciler("drift", specs_dir, "--format", "json", endpoint=endpoint)
    assert drift.code == 2
    assert [i["action"] for i in drift.json()["items"]] == ["no-op"]
    assert [(u["region"], u["image_id"]) for u in drift.json()["unmanaged"]] == [(OLD, old)]
    shown = run_reconciler("plan", specs_dir, "--prune", "--detailed-exitcode", endpoint=endpoint)
    assert shown.code == 2
    assert OLD in shown.stdout

    run_reconciler("apply", specs_dir, "--auto-approve", "--prune", endpoint=endpoint, check_exit=0)
    assert endpoint.fidelity.images(OLD) == []
    assert [i["id"] for i in endpoint.fidelity.images(NEW)] == [new["id"]]
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=0)


def test_a_region_that_refuses_is_skipped_with_one_note_on_stderr(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_image(NEW, "img", "Image img", tags=OWN)
    endpoint.fidelity.disable_region("ap-south-1")  # an opt-in region not enabled, say
    specs_dir.write("images.yaml", specs_dir.image("img", source(1), region=NEW))
    drift = run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=0)
    notes = [line for line in drift.stderr.splitlines() if "ap-south-1" in line]
    assert len(notes) == 1, drift.stderr
    assert "UnrecognizedClientException" in notes[0]


def test_with_the_tagging_api_denied_plan_and_drift_say_how_to_speed_up_and_what_was_unchecked(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.deny_tagging()
    endpoint.fidelity.add_image(NEW, "img", "Image img", tags=OWN)
    endpoint.fidelity.add_image(OLD, "left", "Image left", tags=OWN)  # no spec names OLD
    specs_dir.write("images.yaml", specs_dir.image("img", source(1), region=NEW))
    for command in ("plan", "drift"):
        done = run_reconciler(command, specs_dir, "--format", "json", endpoint=endpoint)
        assert done.code == 0, done.stderr
        assert done.json()["unmanaged"] == []  # OLD was not read: it can't be seen
        lines = done.stderr.splitlines()
        assert sum("add tag:GetResources to the role" in line for line in lines) == 1
        (unchecked,) = [line for line in lines if "not checked" in line]
        assert OLD in unchecked
        assert NEW not in unchecked
        assert "eu-west-1" not in unchecked  # the default region is read
        assert "regions:" in unchecked


def test_with_the_tagging_api_denied_the_root_defaults_regions_are_read_too(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.deny_tagging()
    endpoint.fidelity.add_image(NEW, "img", "Image img", tags=OWN)
    left = endpoint.fidelity.add_image(OLD, "left", "Image left", tags=OWN)
    specs_dir.write("defaults.yaml", {"defaults": {"regions": [OLD]}})
    specs_dir.write("team/images.yaml", specs_dir.image("img", source(1), region=NEW))
    drift = run_reconciler("drift", specs_dir, "--format", "json", endpoint=endpoint)
    assert drift.code == 2, drift.stderr
    assert [(u["region"], u["image_id"]) for u in drift.json()["unmanaged"]] == [(OLD, left)]
    (unchecked,) = [line for line in drift.stderr.splitlines() if "not checked" in line]
    assert OLD not in unchecked
    assert endpoint.calls.count("DescribeTags", region=OLD) == 1  # read one by one there


def test_a_failing_first_discovery_call_stops_the_run_with_its_error_and_no_more_tag_reads(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_image("eu-west-1", "img", "Image img", tags=OWN)
    specs_dir.write("images.yaml", specs_dir.image("img", source(1)))
    endpoint.faults.error_for("GetResources", "InvalidParameterException", message="no such")
    plan = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=1)
    assert "InvalidParameterException" in plan.stderr
    assert endpoint.calls.count("GetResources") == 1  # the first, refused; nothing after
    assert endpoint.calls.changing() == []
