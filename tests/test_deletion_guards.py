"""The guards of the deletion paths, as pure functions (issue 17, "tests the deletion code
lacks"): each test fails when its guard is removed.

- `planfile.settle` compares a saved plan's unmanaged resources by id, and its replacements
  (`Plan.replaces`) by decision, so a saved plan is never a licence for a deletion nobody
  reviewed (a, b);
- `Plan.deletions` leaves out the images a bundle keeps (c);
- `apply.in_use` keeps an image in use while a bundle's move off it, or its deletion, has
  not happened (d);
- `make_plan` with targets lists no unmanaged resources (f).

The end-to-end side of the same guards, as a user meets them, is in
tests/e2e/test_deletion_guards.py.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.apply import in_use
from reconciler.errors import StalePlanError
from reconciler.kinds.bundle import BundleLive, LiveBundle
from reconciler.kinds.image import ImageLive, LiveImage, SourceWorkspace
from reconciler.live import Inventory, RegionInventory
from reconciler.plan import Action, Kind, Plan, PlanItem, Unmanaged, make_plan
from reconciler.planfile import settle
from reconciler.results import Applied, AppliedItem, AppliedUnmanaged, Result
from reconciler.specs import BundleSpec, Spec

REGION = "eu-west-1"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
OWNED = {OWNERSHIP_TAG_KEY: "true"}
WS = "ws-0a1b2c3d4"
DIGEST = "sha256:" + "1" * 64
OLD, NEW = "wsi-000000001", "wsi-000000002"


def spec(name: str, tags: dict[str, str] | None = None) -> Spec:
    return Spec(name, f"Image {name}", WS, None, tags or {}, frozenset(), (), "a.yaml", 1)


def bundle_spec(name: str, image_id: str) -> BundleSpec:
    return BundleSpec(
        name=name, description=f"Bundle {name}", image=None, image_id=image_id,
        compute_type="STANDARD", user_volume_gib=50, root_volume_gib=None, region=REGION,
        tags={}, ignore_tag_keys=frozenset(), ignore_tag_prefixes=(), file="b.yaml", line=1,
        image_line=3,
    )  # fmt: skip


def image(name: str, image_id: str, tags: dict[str, str], state: str = "AVAILABLE") -> LiveImage:
    return LiveImage(image_id, name, f"Image {name}", state, tags)


def bundle(name: str, image_id: str, tags: dict[str, str] | None = None) -> LiveBundle:
    return LiveBundle(
        f"wsb-{name}", name, f"Bundle {name}", image_id, "STANDARD", 50,
        80, "AVAILABLE", OWNED if tags is None else tags,
    )  # fmt: skip


def plan_of(
    specs: list[Spec],
    images: list[LiveImage],
    *,
    bundles: list[LiveBundle] | None = None,
    bundle_specs: list[BundleSpec] | None = None,
    prune: bool = False,
    replace_failed: bool = False,
    targets: tuple[str, ...] = (),
) -> Plan:
    live = RegionInventory.of(
        REGION,
        ImageLive({i.name: i for i in images}, len(images), {WS: SourceWorkspace(WS, "AVAILABLE")}),
        BundleLive(None if bundles is None else {b.name: b for b in bundles}, len(bundles or ())),
    )
    return make_plan(
        specs,
        Inventory({REGION: live}),
        specs_digest=DIGEST,
        default_region=REGION,
        image_quota=40,
        now=NOW,
        targets=targets,
        prune=prune,
        replace_failed=replace_failed,
        bundles=bundle_specs or (),
    )


# --- (a) a saved prune plan and an unmanaged image made again under its name -------------


def test_a_saved_prune_plan_is_stale_once_its_unmanaged_image_is_made_again_under_its_name() -> (
    None
):
    """The plan showed `- delete old wsi-1`; old was deleted and captured again (wsi-2, still
    owned): deleting wsi-2 was never reviewed."""
    saved = plan_of([], [image("old", OLD, OWNED)], prune=True)
    assert [u.image_id for u in saved.deletions] == [OLD]
    fresh = plan_of([], [image("old", NEW, OWNED)], prune=True)
    assert [u.image_id for u in fresh.deletions] == [NEW]

    with pytest.raises(StalePlanError, match="saved plan is stale") as caught:
        settle(saved, fresh)
    assert NEW in str(caught.value)


# --- (b) a saved --replace-failed plan and an ERROR image that gains the ownership tag ----


def test_a_saved_replace_failed_plan_is_stale_once_the_image_it_left_alone_is_owned() -> None:
    """Unowned in ERROR: a conflict the plan left alone. Owned now, the same conflict would
    be replaced (deleted and captured again): a deletion nobody reviewed."""
    specs = [spec("img")]  # no declared tags: the recapture writes none, so only `replace` differs
    saved = plan_of(specs, [image("img", OLD, {}, "ERROR")], replace_failed=True)
    assert not saved.replaces(saved.items[0])
    fresh = plan_of(specs, [image("img", OLD, OWNED, "ERROR")], replace_failed=True)
    assert fresh.replaces(fresh.items[0])
    assert fresh.items[0].action is saved.items[0].action is Action.CONFLICT

    with pytest.raises(StalePlanError, match="saved plan is stale") as caught:
        settle(saved, fresh)
    assert f"{REGION}/img" in str(caught.value)


# --- (c) Plan.deletions leaves out the images a bundle keeps ------------------------------


def test_a_plans_deletions_leave_out_an_image_a_bundle_keeps_and_are_no_change() -> None:
    """`console` (made by hand, not ours) uses `old`: --prune keeps old, so the plan shows no
    deletion and has no change (`plan --detailed-exitcode` exits 0)."""
    plan = plan_of(
        [],
        [image("old", OLD, OWNED), image("spare", NEW, OWNED)],
        bundles=[bundle("console", OLD, tags={})],
        prune=True,
    )
    kept = next(u for u in plan.unmanaged if u.name == "old")
    assert plan.kept_by(kept) == ("console",)
    assert [u.name for u in plan.deletions] == ["spare"]

    only_kept = plan_of(
        [], [image("old", OLD, OWNED)], bundles=[bundle("console", OLD, tags={})], prune=True
    )
    assert only_kept.deletions == ()
    assert not only_kept.has_changes


def test_a_plans_deletions_leave_out_an_image_a_declared_bundle_uses() -> None:
    plan = plan_of(
        [],
        [image("old", OLD, OWNED)],
        bundles=[bundle("std", OLD)],
        bundle_specs=[bundle_spec("std", OLD)],
        prune=True,
    )
    assert [i.action for i in plan.items] == [Action.NO_OP]
    assert [(u.name, plan.kept_by(u)) for u in plan.unmanaged] == [("old", ("std",))]
    assert plan.deletions == ()
    assert not plan.has_changes


def test_a_plan_without_prune_deletes_nothing_and_its_unmanaged_images_are_no_change() -> None:
    plan = plan_of([], [image("old", OLD, OWNED)])
    assert [u.name for u in plan.unmanaged] == ["old"]
    assert plan.deletions == ()
    assert not plan.has_changes
    assert plan.drifted


# --- (d) a bundle whose move off an image did not happen still keeps it ---------------------


def _applied(result: Result) -> Applied:
    """`b` uses `old` (owned, unmanaged) and the plan moves it to `new`; apply's result for
    that move is `result`."""
    move = PlanItem(
        kind=Kind.BUNDLE, action=Action.UPDATE_IMAGE, name="b", region=REGION, image_id=NEW,
        bundle_id="wsb-000000001", image_before=OLD, spec_file="b.yaml", spec_line=1,
    )  # fmt: skip
    old = Unmanaged(name="old", region=REGION, image_id=OLD, used_by=("b",))
    assert Plan(specs_digest=DIGEST, items=(move,), unmanaged=(old,), prune=True).deletions == (
        old,
    ), "the plan foresees the move, and shows old's deletion"
    return Applied(
        specs_digest=DIGEST,
        items=(AppliedItem(**move.model_dump(), result=result),),
        unmanaged=(AppliedUnmanaged(**old.model_dump()),),
        prune=True,
    )


@pytest.mark.parametrize("result", [Result.DEFERRED, Result.SKIPPED, Result.FAILED])
def test_a_bundle_whose_move_did_not_happen_still_keeps_its_old_image_in_use(
    result: Result,
) -> None:
    assert in_use(_applied(result), ()) == {(REGION, OLD): ("b",)}


def test_a_bundle_moved_to_its_new_image_frees_the_old_one() -> None:
    assert in_use(_applied(Result.IMAGE_UPDATED), ()) == {(REGION, NEW): ("b",)}


def _pruned() -> Applied:
    """`orphan` (owned, no spec) uses `old`: --prune deletes orphan, then old."""
    orphan = AppliedUnmanaged(
        kind=Kind.BUNDLE, name="orphan", region=REGION, image_id=OLD, bundle_id="wsb-1"
    )
    old = AppliedUnmanaged(name="old", region=REGION, image_id=OLD, used_by=("orphan",))
    return Applied(specs_digest=DIGEST, items=(), unmanaged=(orphan, old), prune=True)


@pytest.mark.parametrize("result", [Result.FAILED, Result.SKIPPED])
def test_a_bundle_whose_deletion_did_not_happen_still_keeps_its_image_in_use(
    result: Result,
) -> None:
    applied = _pruned()
    orphan = applied.unmanaged[0].model_copy(update={"result": result})
    assert in_use(applied, [orphan]) == {(REGION, OLD): ("orphan",)}


def test_a_deleted_bundle_frees_its_image() -> None:
    applied = _pruned()
    orphan = applied.unmanaged[0].model_copy(update={"result": Result.DELETED})
    assert in_use(applied, [orphan]) == {}


# --- (f) a --target plan judges only its targets ------------------------------------------


def test_a_targeted_plan_lists_no_unmanaged_resource() -> None:
    """Terraform's rule: a --target run has no unmanaged list, so nothing to delete, even
    when the live state it was given holds owned images and bundles no spec declares."""
    live = [image("a", OLD, OWNED), image("old", NEW, OWNED)]
    bundles = [bundle("orphan", NEW)]
    whole = plan_of([spec("a")], live, bundles=bundles, prune=True)
    assert {(u.kind, u.name) for u in whole.unmanaged} == {
        (Kind.IMAGE, "old"),
        (Kind.BUNDLE, "orphan"),
    }

    targeted = plan_of([spec("a")], live, bundles=bundles, prune=True, targets=("a",))
    assert targeted.unmanaged == ()
    assert targeted.deletions == ()
    assert [i.name for i in targeted.items] == ["a"]
