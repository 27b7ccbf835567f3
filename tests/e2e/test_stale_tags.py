"""Stale tags: the tagging API is eventually consistent, and apply never acts on its lag.

The endpoint's tagging API serves tags as they were STALE seconds ago
(`Fidelity.stale_tags`), while WorkSpaces' DescribeTags is current, as in AWS. Each test
makes an out-of-band change (another tool, a colleague in the console) that the plan does
not see, then runs the real `apply`: it reads the image's tags again with DescribeTags
before it changes anything, and writes only what the reviewed plan showed and is still
needed. Each test names the harm a blind apply would do.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, RunReconciler, SpecsDir, out_of_band, source
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
STALE = 300.0  # seconds the tagging API lags behind
BEFORE = time.time() - 2 * STALE  # when the seeded images were created


def set_tags(endpoint: LocalEndpoint, image_id: str, tags: dict[str, str]) -> None:
    client = out_of_band(endpoint)
    current = endpoint.fidelity.image_tags(REGION, image_id)
    gone = sorted(set(current) - set(tags))
    if gone:
        client.delete_tags(ResourceId=image_id, TagKeys=gone)
    client.create_tags(ResourceId=image_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def seed(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, live: dict[str, str], declared: dict[str, str]
) -> str:
    """One image 'img' created long ago with the tags `live`, and its spec."""
    endpoint.fidelity.add_workspace(REGION, source(1))
    image_id = endpoint.fidelity.add_image(REGION, "img", "Image img", tags=live, created=BEFORE)
    specs_dir.write("images.yaml", specs_dir.image("img", source(1), tags=declared))
    return image_id


def plan_and_apply(
    endpoint: LocalEndpoint,
    specs_dir: SpecsDir,
    run_reconciler: RunReconciler,
    *args: str,
    code: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan the user reviews, then apply, both on the stale view; JSON documents."""
    plan = run_reconciler("plan", specs_dir, *args, "--format", "json", endpoint=endpoint)
    endpoint.calls.clear()
    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", *args, "--format", "json", endpoint=endpoint
    )
    assert applied.code == code, applied.stderr
    return plan.json(), applied.json()


def writes(endpoint: LocalEndpoint) -> list[str]:
    return [c.operation for c in endpoint.calls.changing() if c.api == "workspaces"]


@pytest.fixture
def stale(endpoint: LocalEndpoint) -> LocalEndpoint:
    endpoint.fidelity.stale_tags(STALE)
    return endpoint


def test_stale_view_a_tag_already_set_out_of_band_is_not_written_again(
    stale: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Blind apply: rewrites a tag from a view that is five minutes old."""
    image = seed(stale, specs_dir, {**OWN, "team": "old"}, {"team": "new"})
    set_tags(stale, image, {**OWN, "team": "new"})  # a colleague fixed it meanwhile
    plan, applied = plan_and_apply(stale, specs_dir, run_reconciler)
    assert plan["items"][0]["action"] == "update-tags"  # the stale view
    assert applied["items"][0]["result"] == "unchanged"
    assert writes(stale) == []
    assert stale.fidelity.image_tags(REGION, image) == {**OWN, "team": "new"}


def test_stale_view_never_writes_a_tag_on_an_image_no_longer_owned(
    stale: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Blind apply: writes our tags on an image another team took over (a wrong tag)."""
    image = seed(stale, specs_dir, {**OWN, "team": "old"}, {"team": "new"})
    set_tags(stale, image, {"team": "theirs"})  # disowned: the ownership tag removed
    plan, applied = plan_and_apply(stale, specs_dir, run_reconciler, code=1)
    assert plan["items"][0]["action"] == "update-tags"  # stale: still ours
    item = applied["items"][0]
    assert item["result"] == "failed"
    assert "changed since the plan" in item["error"]
    assert writes(stale) == []
    assert stale.fidelity.image_tags(REGION, image) == {"team": "theirs"}


def test_stale_view_never_removes_a_declared_tag(
    stale: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Blind apply: acts on the stale view's tag list; only a reviewed removal of an
    undeclared key that is still there may be made, and the declared keys stay."""
    declared = {"team": "new", "cost-center": "4410"}
    image = seed(stale, specs_dir, {**OWN, "team": "old", "legacy": "x"}, declared)
    # Meanwhile: the declared tags set by hand; `legacy` is still there.
    set_tags(stale, image, {**OWN, **declared, "legacy": "x"})
    plan, applied = plan_and_apply(stale, specs_dir, run_reconciler)
    shown = {c["key"]: c["after"] for c in plan["items"][0]["tag_changes"]}
    assert shown == {"team": "new", "cost-center": "4410", "legacy": None}
    assert applied["items"][0]["result"] == "tags-updated"
    assert writes(stale) == ["DeleteTags"]  # no declared value rewritten
    assert stale.fidelity.image_tags(REGION, image) == {**OWN, **declared}


def test_stale_view_never_adopts_an_image_already_owned(
    stale: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Blind apply: adopts (writes the ownership tag and the declared tags over) an image
    whose ownership the stale view does not show yet."""
    image = seed(stale, specs_dir, {"team": "new"}, {"team": "new"})
    set_tags(stale, image, {**OWN, "team": "new"})  # adopted by a run minutes ago
    plan, applied = plan_and_apply(stale, specs_dir, run_reconciler)
    assert plan["items"][0]["action"] == "adopt"
    assert applied["items"][0]["result"] == "unchanged"
    assert writes(stale) == []


def test_stale_view_never_adopts_an_image_that_changed_hands_meanwhile(
    stale: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Blind apply: the plan showed an update of our image; by now another team took it,
    and a blind retag would take it back without ever showing an adoption."""
    image = seed(stale, specs_dir, {**OWN, "team": "new", "old": "1"}, {"team": "new"})
    set_tags(stale, image, {"team": "new", "old": "1"})  # ownership tag removed
    plan, applied = plan_and_apply(stale, specs_dir, run_reconciler, code=1)
    assert plan["items"][0]["action"] == "update-tags"
    assert applied["items"][0]["result"] == "failed"
    assert writes(stale) == []
    assert OWNERSHIP_TAG_KEY not in stale.fidelity.image_tags(REGION, image)


def test_stale_view_never_deletes_an_image_no_longer_owned(
    stale: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Blind apply --prune: deletes an image that the stale view shows as ours."""
    stale.fidelity.add_workspace(REGION, source(1))
    stale.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN, created=BEFORE)
    old = stale.fidelity.add_image(REGION, "old", "Image old", tags=OWN, created=BEFORE)
    specs_dir.write("images.yaml", specs_dir.image("keep", source(1)))
    set_tags(stale, old, {"team": "theirs"})  # disowned meanwhile
    plan, applied = plan_and_apply(stale, specs_dir, run_reconciler, "--prune")
    assert [u["image_id"] for u in plan["unmanaged"]] == [old]  # stale: still ours
    assert applied["unmanaged"][0]["result"] == "skipped"
    assert stale.calls.count("DeleteWorkspaceImage") == 0
    assert old in {i["id"] for i in stale.fidelity.images(REGION)}


def test_stale_view_an_image_deleted_meanwhile_is_not_deleted_again(
    stale: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """The stale view still lists an owned image deleted since: --prune finds it gone."""
    stale.fidelity.add_workspace(REGION, source(1))
    stale.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN, created=BEFORE)
    old = stale.fidelity.add_image(REGION, "old", "Image old", tags=OWN, created=BEFORE)
    specs_dir.write("images.yaml", specs_dir.image("keep", source(1)))
    plan = run_reconciler("plan", specs_dir, "--format", "json", endpoint=stale).json()
    assert [u["image_id"] for u in plan["unmanaged"]] == [old]
    out_of_band(stale).delete_workspace_image(ImageId=old)
    # The listing no longer has it: the plan is made from what WorkSpaces lists, whatever
    # the tagging API still says.
    again = run_reconciler("plan", specs_dir, "--format", "json", endpoint=stale).json()
    assert again["unmanaged"] == []
