"""The planners of copies, shares and bundles as pure functions: live situations -> items."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.kinds import bundle as bundle_kind
from reconciler.kinds import image as image_kind
from reconciler.kinds import share as share_kind
from reconciler.kinds.bundle import BundleLive, LiveBundle
from reconciler.kinds.image import ImageLive, LiveImage, SourceWorkspace
from reconciler.kinds.share import ShareChange, ShareLive
from reconciler.live import Inventory, RegionInventory
from reconciler.plan import Action, Kind, Plan, PlanItem, make_plan
from reconciler.specs import BundleSpec, Spec

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
OWNED = {OWNERSHIP_TAG_KEY: "true"}
WS = "ws-0a1b2c3d4"
HOME, AWAY = "eu-west-1", "us-east-1"
A1, A2, A3 = "111122223333", "444455556666", "777788889999"


def spec(
    name: str = "img",
    *,
    copies: tuple[str, ...] = (),
    share_with: tuple[str, ...] | None = None,
) -> Spec:
    return Spec(
        name, "Golden", WS, HOME, {}, frozenset(), (), "a.yaml", 1,
        copies=copies, share_with=share_with,
    )  # fmt: skip


def bundle_spec(
    name: str = "std",
    image: str | None = "img",
    *,
    image_id: str | None = None,
    region: str = HOME,
    compute: str = "STANDARD",
    user: int = 50,
    root: int | None = None,
) -> BundleSpec:
    return BundleSpec(
        name=name, description="Bundle", image=image, image_id=image_id, compute_type=compute,
        user_volume_gib=user, root_volume_gib=root, region=region, tags={},
        ignore_tag_keys=frozenset(), ignore_tag_prefixes=(), file="b.yaml", line=1, image_line=3,
    )  # fmt: skip


def image(name: str = "img", state: str = "AVAILABLE", *, id_: str = "wsi-000000001",
          tags: dict[str, str] | None = None) -> LiveImage:  # fmt: skip
    return LiveImage(id_, name, "Golden", state, OWNED if tags is None else tags)


def bundle(name: str = "std", image_id: str = "wsi-000000001", **changes: object) -> LiveBundle:
    live = LiveBundle("wsb-000000001", name, "Bundle", image_id, "STANDARD", 50, 80,
                      "AVAILABLE", OWNED)  # fmt: skip
    return replace(live, **changes)  # type: ignore[arg-type]


def region(
    name: str,
    *images: LiveImage,
    bundles: tuple[LiveBundle, ...] | None = None,
    shares: dict[str, frozenset[str]] | None = None,
    bundle_count: int | None = None,
    source: str | None = "AVAILABLE",
) -> RegionInventory:
    return RegionInventory.of(
        name,
        ImageLive({i.name: i for i in images}, len(images), {WS: SourceWorkspace(WS, source)}),
        BundleLive(
            None if bundles is None else {b.name: b for b in bundles},
            len(bundles or ()) if bundle_count is None else bundle_count,
        ),
        ShareLive(shares or {}),
    )


def plan_of(
    specs: list[Spec], bundles: list[BundleSpec], *regions: RegionInventory,
    replace_failed: bool = False,
) -> Plan:  # fmt: skip
    inventory = Inventory({r.region: r for r in regions})
    return make_plan(
        specs, inventory, specs_digest="sha256:x", default_region=HOME, image_quota=40, now=NOW,
        bundles=bundles, replace_failed=replace_failed,
    )  # fmt: skip


def item(plan: Plan, kind: Kind, where: str = HOME, name: str | None = None) -> PlanItem:
    found = [i for i in plan.items if i.kind is kind and i.region == where]
    return next(i for i in found if name is None or i.name == name)


# --- copies ------------------------------------------------------------------------------


def test_a_copy_of_an_image_being_captured_is_a_create_after_the_capture() -> None:
    plan = plan_of([spec(copies=(AWAY,))], [], region(HOME), region(AWAY))
    copy = item(plan, Kind.IMAGE, AWAY)
    d = image_kind.detail_of(copy)
    assert (copy.action, d.copy_from, d.source_workspace_id) == (Action.CREATE, HOME, None)
    assert copy.reason == "after the capture"


def test_a_copy_of_an_available_image_is_a_plain_create() -> None:
    plan = plan_of([spec(copies=(AWAY,))], [], region(HOME, image()), region(AWAY))
    copy = item(plan, Kind.IMAGE, AWAY)
    assert (copy.action, copy.reason, copy.image_state) == (Action.CREATE, None, "AVAILABLE")


def test_a_copy_of_a_blocked_image_is_blocked_naming_its_source() -> None:
    plan = plan_of([spec(copies=(AWAY,))], [], region(HOME, source=None), region(AWAY))
    copy = item(plan, Kind.IMAGE, AWAY)
    assert copy.action is Action.BLOCKED
    assert f"its source image in {HOME} is blocked" in (copy.reason or "")


def test_a_copy_counts_against_its_destinations_image_quota() -> None:
    away = region(AWAY)
    full = away.with_part(replace(image_kind.live_of(away), image_count=40))
    plan = plan_of([spec(copies=(AWAY,))], [], region(HOME, image()), full)
    assert item(plan, Kind.IMAGE, AWAY).action is Action.BLOCKED


def test_an_owned_copy_in_error_is_a_conflict_that_replace_failed_recopies() -> None:
    broken = image(state="ERROR", id_="wsi-000000009")
    plan = plan_of(
        [spec(copies=(AWAY,))], [], region(HOME, image()), region(AWAY, broken),
        replace_failed=True,
    )  # fmt: skip
    copy = item(plan, Kind.IMAGE, AWAY)
    assert copy.action is Action.CONFLICT
    assert plan.replaces(copy)
    assert "copies it again" in (copy.reason or "")


# --- shares ------------------------------------------------------------------------------


def test_no_share_item_without_share_with_and_one_per_region_with_it() -> None:
    assert not [
        i for i in plan_of([spec()], [], region(HOME, image())).items if i.kind is Kind.SHARE
    ]
    plan = plan_of(
        [spec(copies=(AWAY,), share_with=(A1,))], [], region(HOME, image()), region(AWAY)
    )
    assert sorted(i.region for i in plan.items if i.kind is Kind.SHARE) == [HOME, AWAY]


def test_sharing_differences_become_grants_and_revokes() -> None:
    live = region(HOME, image(), shares={"wsi-000000001": frozenset({A1, A3})})
    share = item(plan_of([spec(share_with=(A1, A2))], [], live), Kind.SHARE)
    assert share.action is Action.UPDATE_SHARING
    assert share_kind.detail_of(share).share_changes == (
        ShareChange(account=A2, before=False, after=True),
        ShareChange(account=A3, before=True, after=False),
    )


def test_sharing_as_declared_is_a_no_op_and_an_empty_set_revokes_all() -> None:
    live = region(HOME, image(), shares={"wsi-000000001": frozenset({A1})})
    assert item(plan_of([spec(share_with=(A1,))], [], live), Kind.SHARE).action is Action.NO_OP
    emptied = item(plan_of([spec(share_with=())], [], live), Kind.SHARE)
    assert share_kind.detail_of(emptied).share_changes == (
        ShareChange(account=A1, before=True, after=False),
    )


def test_a_share_of_an_image_yet_to_be_made_grants_all_once_it_is_available() -> None:
    share = item(plan_of([spec(share_with=(A1,))], [], region(HOME)), Kind.SHARE)
    assert share.action is Action.UPDATE_SHARING
    assert share.image_id is None
    assert "once the image is AVAILABLE" in (share.reason or "")


# --- bundles -----------------------------------------------------------------------------


def test_a_bundle_is_created_on_its_image_or_after_its_capture() -> None:
    ready = item(plan_of([spec()], [bundle_spec()], region(HOME, image(), bundles=())), Kind.BUNDLE)
    assert (ready.action, ready.image_id, ready.reason) == (Action.CREATE, "wsi-000000001", None)
    later = item(plan_of([spec()], [bundle_spec()], region(HOME, bundles=())), Kind.BUNDLE)
    assert (later.action, later.image_id) == (Action.CREATE, None)
    assert later.reason == f"after the capture of img ({HOME})"


@pytest.mark.parametrize(
    ("live", "action", "reason"),
    [
        (bundle(), Action.NO_OP, None),
        (bundle(image_id="wsi-000000007"), Action.UPDATE_IMAGE, None),
        (bundle(tags={"x": "1", **OWNED}), Action.UPDATE_TAGS, None),
        (bundle(tags={}), Action.ADOPT, "without the ownership tag"),
        (bundle(compute_type="POWER"), Action.CONFLICT, "compute type differs"),
        (bundle(user_volume_gib=100), Action.CONFLICT, "user volume (GiB) differs"),
        (bundle(description="Other"), Action.CONFLICT, "description differs"),
        (bundle(state="ERROR"), Action.CONFLICT, "in ERROR"),
    ],
)
def test_an_existing_bundle_is_judged_against_its_spec(
    live: LiveBundle, action: Action, reason: str | None
) -> None:
    old = image("old", id_="wsi-000000007")
    plan = plan_of([spec()], [bundle_spec()], region(HOME, image(), old, bundles=(live,)))
    got = item(plan, Kind.BUNDLE)
    assert got.action is action
    assert reason is None or reason in (got.reason or "")


def test_update_image_says_the_image_before_by_name_and_id() -> None:
    old = image("img-2026-10", id_="wsi-000000007")
    live = region(HOME, image(), old, bundles=(bundle(image_id="wsi-000000007"),))
    got = item(plan_of([spec()], [bundle_spec()], live), Kind.BUNDLE)
    d = bundle_kind.detail_of(got)
    assert (d.image_before, d.image_before_name, got.image_id, d.image_name) == (
        "wsi-000000007",
        "img-2026-10",
        "wsi-000000001",
        "img",
    )


def test_a_bundle_is_blocked_by_an_image_id_naming_no_image_or_by_the_quota() -> None:
    lost = bundle_spec(image=None, image_id="wsi-0nosuch00")
    got = item(plan_of([], [lost], region(HOME, bundles=())), Kind.BUNDLE)
    assert got.action is Action.BLOCKED
    assert "names no image" in (got.reason or "")
    full = region(HOME, image(), bundles=(), bundle_count=50)
    quota = item(plan_of([spec()], [bundle_spec()], full), Kind.BUNDLE)
    assert quota.action is Action.BLOCKED
    assert "50 custom bundles" in (quota.reason or "")


def test_owned_bundles_no_spec_declares_are_unmanaged_and_their_image_is_used_by_them() -> None:
    old = image("old", id_="wsi-000000007", tags=OWNED)
    live = region(HOME, old, bundles=(bundle("gone", image_id="wsi-000000007"),))
    plan = plan_of([], [], live)
    kinds = {(u.kind, u.name): u for u in plan.unmanaged}
    assert kinds[(Kind.BUNDLE, "gone")].bundle_id == "wsb-000000001"
    assert kinds[(Kind.IMAGE, "old")].used_by == ("gone",)
