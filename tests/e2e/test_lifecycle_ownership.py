"""Ownership is confirmed just before every change of a bundle or of an image's sharing.

The plan's tags may be stale (the tagging API is eventually consistent) or minutes old. In
each test the ownership tag is removed after the plan was saved, while the tagging API still
serves it: the fresh plan that `apply --plan-file` makes agrees with the saved one, so only
the `DescribeTags` read just before the call can stop the change. The endpoint must then
receive no change for that resource. SECURITY.md, promises 1 and 9, names these tests.
"""

from __future__ import annotations

from pathlib import Path

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, Outcome, RunReconciler, SpecsDir, out_of_band
from tests.e2e.test_golden_lifecycle import ACCOUNT_1, bundle_doc, bundles, image_doc
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}


def _save_then_disown(
    run: RunReconciler,
    specs: SpecsDir,
    endpoint: LocalEndpoint,
    resource_id: str,
    *plan_args: str,
) -> Path:
    """Save a plan, then remove the ownership tag behind the plan's back, with the tagging
    API still serving the tag as it was."""
    plan_file = specs.path.parent / "plan.json"
    run("plan", specs, "--out", plan_file, *plan_args, endpoint=endpoint, check_exit=0)
    endpoint.fidelity.freeze_tags()
    out_of_band(endpoint).delete_tags(ResourceId=resource_id, TagKeys=[OWNERSHIP_TAG_KEY])
    return plan_file


def _apply_saved(
    run: RunReconciler, specs: SpecsDir, endpoint: LocalEndpoint, plan: Path
) -> Outcome:
    endpoint.calls.clear()
    return run("apply", "--plan-file", plan, specs, "--format", "json", endpoint=endpoint)


def test_prune_deletes_no_bundle_that_lost_the_ownership_tag_since_the_plan(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    old = endpoint.fidelity.add_bundle(REGION, "old-bundle", image, tags=OWN)
    specs_dir.write("a.yaml", image_doc("golden"))
    plan = _save_then_disown(run_reconciler, specs_dir, endpoint, old, "--prune")

    done = _apply_saved(run_reconciler, specs_dir, endpoint, plan)
    (entry,) = done.json()["unmanaged"]
    assert (entry["kind"], entry["name"], entry["result"]) == ("bundle", "old-bundle", "skipped")
    assert "no longer carries the ownership tag" in entry["error"]
    assert endpoint.calls.count("DescribeTags") >= 1
    assert endpoint.calls.count("DeleteWorkspaceBundle") == 0
    assert set(bundles(endpoint)) == {"old-bundle"}


def test_no_bundle_that_lost_the_ownership_tag_since_the_plan_is_moved_to_another_image(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    old = endpoint.fidelity.add_image(REGION, "golden-10", "Image golden-10", tags=OWN)
    endpoint.fidelity.add_image(REGION, "golden-11", "Image golden-11", tags=OWN)
    bundle = endpoint.fidelity.add_bundle(
        REGION, "standard", old, description="Bundle standard", tags=OWN
    )
    specs_dir.write(
        "a.yaml",
        image_doc("golden-10"),
        image_doc("golden-11"),
        bundle_doc("standard", "golden-11"),
    )
    plan = _save_then_disown(run_reconciler, specs_dir, endpoint, bundle)

    done = _apply_saved(run_reconciler, specs_dir, endpoint, plan)
    assert done.code == 1
    (item,) = [i for i in done.json()["items"] if i["kind"] == "bundle"]
    assert item["result"] == "failed"
    assert "changed since the plan" in item["error"]
    assert endpoint.calls.changing() == []
    assert bundles(endpoint)["standard"]["image_id"] == old


def test_sharing_is_not_changed_on_an_image_that_lost_the_ownership_tag_since_the_plan(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    specs_dir.write("a.yaml", image_doc("golden", share_with=[ACCOUNT_1]))
    plan = _save_then_disown(run_reconciler, specs_dir, endpoint, image)

    done = _apply_saved(run_reconciler, specs_dir, endpoint, plan)
    assert done.code == 1
    (item,) = [i for i in done.json()["items"] if i["kind"] == "share"]
    assert item["result"] == "failed"
    assert "no longer carries the ownership tag" in item["error"]
    assert endpoint.calls.count("UpdateWorkspaceImagePermission") == 0
    assert endpoint.fidelity.shared_accounts(REGION, image) == []
