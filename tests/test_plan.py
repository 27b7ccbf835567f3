"""The planner as a pure function: a case table of spec and live situations -> actions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.kinds import image as image_kind
from reconciler.kinds.image import ImageLive, LiveImage, SourceWorkspace
from reconciler.live import Inventory, RegionInventory
from reconciler.plan import Action, TagChange, make_plan, tag_changes
from reconciler.specs import Spec

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
OWNED = {OWNERSHIP_TAG_KEY: "true"}
WS = "ws-0a1b2c3d4"


def spec(
    name: str = "img",
    *,
    tags: dict[str, str] | None = None,
    region: str | None = None,
    source: str = WS,
    description: str = "Golden image",
    ignore: frozenset[str] = frozenset(),
    prefixes: tuple[str, ...] = (),
) -> Spec:
    return Spec(name, description, source, region, tags or {}, ignore, prefixes, "a.yaml", 1)


def image(
    name: str = "img",
    *,
    tags: dict[str, str] | None = None,
    state: str = "AVAILABLE",
    description: str = "Golden image",
    created: datetime | None = None,
    error: tuple[str, str] | None = None,
) -> LiveImage:
    return LiveImage(
        f"wsi-{abs(hash(name)) % 10**9:09d}",
        name,
        description,
        state,
        OWNED if tags is None else tags,
        created,
        error[0] if error else None,
        error[1] if error else None,
    )


def inventory(
    *images: LiveImage,
    sources: dict[str, str | None] | None = None,
    count: int | None = None,
    region: str = "eu-west-1",
) -> Inventory:
    srcs = {ws: SourceWorkspace(ws, state) for ws, state in (sources or {WS: "AVAILABLE"}).items()}
    inv = RegionInventory.of(
        region,
        ImageLive({i.name: i for i in images}, len(images) if count is None else count, srcs),
    )
    return Inventory({region: inv})


def plan_of(specs: list[Spec], inv: Inventory, quota: int = 40):  # type: ignore[no-untyped-def]
    return make_plan(
        specs, inv, specs_digest="sha256:x", default_region="eu-west-1", image_quota=quota, now=NOW
    )


CASES = [
    # (id, spec, live images, sources, expected action, reason fragment)
    ("missing image is created", spec(), [], None, Action.CREATE, None),
    (
        "owned and equal is no-op",
        spec(tags={"a": "1"}),
        [image(tags={**OWNED, "a": "1"})],
        None,
        Action.NO_OP,
        None,
    ),
    (
        "pending capture is no-op",
        spec(),
        [image(state="PENDING", created=NOW)],
        None,
        Action.NO_OP,
        None,
    ),
    (
        "changed value updates tags",
        spec(tags={"a": "2"}),
        [image(tags={**OWNED, "a": "1"})],
        None,
        Action.UPDATE_TAGS,
        None,
    ),
    (
        "extra live key is drift",
        spec(),
        [image(tags={**OWNED, "x": "1"})],
        None,
        Action.UPDATE_TAGS,
        None,
    ),
    (
        "ignored live key is not drift",
        spec(ignore=frozenset({"x"})),
        [image(tags={**OWNED, "x": "1"})],
        None,
        Action.NO_OP,
        None,
    ),
    (
        "ignored prefix is not drift",
        spec(prefixes=("finops:",)),
        [image(tags={**OWNED, "finops:cc": "1"})],
        None,
        Action.NO_OP,
        None,
    ),
    (
        "aws system tags are not drift",
        spec(),
        [image(tags={**OWNED, "aws:x": "1"})],
        None,
        Action.NO_OP,
        None,
    ),
    (
        "unowned image is adopted",
        spec(tags={"a": "1"}),
        [image(tags={})],
        None,
        Action.ADOPT,
        "ownership",
    ),
    (
        "unowned with other tags is adopted",
        spec(),
        [image(tags={"ManagedBy": "x"})],
        None,
        Action.ADOPT,
        "ownership",
    ),
    (
        "description differs is conflict",
        spec(description="New"),
        [image()],
        None,
        Action.CONFLICT,
        "description differs",
    ),
    (
        "unowned with other description is conflict",
        spec(description="New"),
        [image(tags={})],
        None,
        Action.CONFLICT,
        "description",
    ),
    (
        "error image is conflict",
        spec(),
        [image(state="ERROR", error=("E1", "disk full"))],
        None,
        Action.CONFLICT,
        "E1: disk full",
    ),
    ("missing source blocks", spec(), [], {WS: None}, Action.BLOCKED, "not found"),
    ("terminated source blocks", spec(), [], {WS: "TERMINATED"}, Action.BLOCKED, "terminated"),
    ("error source blocks", spec(), [], {WS: "ERROR"}, Action.BLOCKED, "ERROR"),
    ("stopped source blocks", spec(), [], {WS: "STOPPED"}, Action.BLOCKED, "start it first"),
    ("suspended source defers", spec(), [], {WS: "SUSPENDED"}, Action.CREATE, "busy (SUSPENDED)"),
    ("starting source defers", spec(), [], {WS: "STARTING"}, Action.CREATE, "busy"),
    ("rebooting source defers", spec(), [], {WS: "REBOOTING"}, Action.CREATE, "busy"),
    ("updating source defers", spec(), [], {WS: "UPDATING"}, Action.CREATE, "busy"),
]


@pytest.mark.parametrize(
    ("spec_", "live", "sources", "action", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_case_table(spec_, live, sources, action, reason):  # type: ignore[no-untyped-def]
    item = plan_of([spec_], inventory(*live, sources=sources)).items[0]
    assert item.action is action
    if reason is None:
        assert item.reason is None or action is Action.CREATE
    else:
        assert reason in (item.reason or "")


def test_plan_has_one_item_per_spec_in_spec_order():
    specs = [spec("b"), spec("a"), spec("c")]
    plan = plan_of(specs, inventory(image("a")))
    assert [i.name for i in plan.items] == ["b", "a", "c"]


def test_create_carries_declared_tags_as_additions():
    item = plan_of([spec(tags={"b": "2", "a": "1"})], inventory()).items[0]
    assert item.tag_changes == (
        TagChange(key="a", before=None, after="1"),
        TagChange(key="b", before=None, after="2"),
    )


def test_tag_changes_report_before_and_after():
    s = spec(tags={"keep": "1", "change": "new", "add": "x"})
    live = {"keep": "1", "change": "old", "drop": "y", OWNERSHIP_TAG_KEY: "true"}
    assert tag_changes(s, live) == (
        TagChange(key="add", before=None, after="x"),
        TagChange(key="change", before="old", after="new"),
        TagChange(key="drop", before="y", after=None),
    )


def test_quota_blocks_creates_beyond_free_slots():
    specs = [spec("a"), spec("b"), spec("c")]
    plan = plan_of(specs, inventory(count=38), quota=40)
    assert [i.action for i in plan.items] == [Action.CREATE, Action.CREATE, Action.BLOCKED]
    assert "quota" in (plan.items[2].reason or "")


def test_blocked_creates_do_not_use_quota_slots():
    specs = [spec("a", source="ws-missing00"), spec("b")]
    plan = plan_of(specs, inventory(count=39, sources={"ws-missing00": None, WS: "AVAILABLE"}))
    assert [i.action for i in plan.items] == [Action.BLOCKED, Action.CREATE]


def test_owned_image_without_spec_is_unmanaged():
    plan = plan_of([spec("a")], inventory(image("a"), image("old")))
    assert [(u.name, u.region) for u in plan.unmanaged] == [("old", "eu-west-1")]


def test_unowned_image_without_spec_is_left_alone():
    plan = plan_of([spec("a")], inventory(image("a"), image("theirs", tags={})))
    assert plan.unmanaged == ()


def test_capture_pending_over_two_hours_is_stuck():
    old = image(state="PENDING", created=NOW - timedelta(hours=3))
    item = plan_of([spec()], inventory(old)).items[0]
    assert item.action is Action.NO_OP
    assert image_kind.detail_of(item).stuck
    assert "stuck" in (item.reason or "")


def test_summary_counts_every_action_and_unmanaged():
    plan = plan_of([spec("a"), spec("b")], inventory(image("b", tags={}), image("z")))
    assert plan.summary == {
        "create": 1,
        "no-op": 0,
        "update-tags": 0,
        "adopt": 1,
        "update-sharing": 0,
        "update-image": 0,
        "conflict": 0,
        "blocked": 0,
        "unmanaged": 1,
    }


def test_plan_is_immutable():
    plan = plan_of([spec()], inventory())
    with pytest.raises(Exception, match="frozen"):
        plan.items[0].action = Action.NO_OP  # type: ignore[misc]


def test_the_planner_and_the_specs_never_import_boto3():
    import subprocess
    import sys

    code = (
        "import sys, reconciler.plan, reconciler.specs, reconciler.cli, reconciler.live;"
        "import reconciler.results;"
        "sys.exit(any(m in sys.modules for m in "
        "('boto3', 'botocore', 'moto', 'reconciler.emulator')))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(
    ("source_state", "action", "busy", "reason"),
    [
        ("AVAILABLE", Action.CONFLICT, False, "replace-failed"),
        ("SUSPENDED", Action.CONFLICT, True, "busy (SUSPENDED)"),
        ("TERMINATED", Action.BLOCKED, False, "can't be recaptured now"),
        (None, Action.BLOCKED, False, "not found"),
    ],
)
def test_a_failed_image_is_judged_as_its_recapture_when_its_source_was_read(
    source_state: str | None, action: Action, busy: bool, reason: str
) -> None:
    failed = image(state="ERROR", error=("E1", "disk full"))
    item = plan_of([spec(tags={"a": "1"})], inventory(failed, sources={WS: source_state})).items[0]
    assert item.action is action
    assert image_kind.detail_of(item).source_busy is busy
    assert reason in (item.reason or "")
    assert "E1: disk full" in (item.reason or "")
    assert item.tag_changes == (TagChange(key="a", before=None, after="1"),)
