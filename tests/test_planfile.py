"""Saved plans: the file `plan --out` writes and `apply --plan-file` reads, and the check
that a saved plan still holds before anything is applied (`settle`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.errors import PlanFileError, StalePlanError
from reconciler.kinds.image import ImageLive, LiveImage, SourceWorkspace
from reconciler.live import Inventory, RegionInventory
from reconciler.plan import FORMAT_VERSION, Action, Plan, make_plan
from reconciler.planfile import CHECKSUM_KEY, _checksum, load_plan, save_plan, settle
from reconciler.specs import Spec

REGION = "eu-west-1"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
OWNED = {OWNERSHIP_TAG_KEY: "true"}
WS = "ws-0a1b2c3d4"
DIGEST = "sha256:" + "1" * 64


def spec(name: str, tags: dict[str, str] | None = None, source: str = WS) -> Spec:
    return Spec(
        name, f"Golden image {name}", source, None, tags or {}, frozenset(), (), "a.yaml", 1
    )


def image(name: str, number: int, tags: dict[str, str], state: str = "AVAILABLE") -> LiveImage:
    return LiveImage(f"wsi-{number:09d}", name, f"Golden image {name}", state, tags)


def plan_of(
    specs: Sequence[Spec],
    images: Iterable[LiveImage] = (),
    *,
    digest: str = DIGEST,
    source_state: str = "AVAILABLE",
) -> Plan:
    found = list(images)
    inventory = RegionInventory.of(
        REGION,
        ImageLive({i.name: i for i in found}, len(found), {WS: SourceWorkspace(WS, source_state)}),
    )
    return make_plan(
        specs,
        Inventory({REGION: inventory}),
        specs_digest=digest,
        default_region=REGION,
        image_quota=40,
        now=NOW,
    )


SPECS = [
    spec("finance-win11", {"team": "finance"}),  # create
    spec("hr-win11", {"team": "people"}),  # update-tags: hr -> people
    spec("ops-win11", {"team": "ops"}),  # no-op
]
LIVE = [
    image("hr-win11", 1, {**OWNED, "team": "hr"}),
    image("ops-win11", 2, {**OWNED, "team": "ops"}),
]


def reviewed() -> Plan:
    plan = plan_of(SPECS, LIVE)
    assert [i.action for i in plan.items] == [Action.CREATE, Action.UPDATE_TAGS, Action.NO_OP]
    return plan


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    save_plan(reviewed(), path)
    return path


def rewrite(path: Path, change: Any, *, checksum: bool = False) -> None:
    """Edit the saved JSON document; with `checksum`, as a tool that knows the format."""
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    if checksum:
        document[CHECKSUM_KEY] = _checksum(document)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")


# --- the file ------------------------------------------------------------------------------


def test_a_saved_plan_loads_back_equal(saved: Path) -> None:
    assert load_plan(saved) == reviewed()


def test_the_file_is_the_contract_plan_document_with_a_checksum(saved: Path) -> None:
    document = json.loads(saved.read_text(encoding="utf-8"))
    assert document["format_version"] == FORMAT_VERSION == 2
    assert document["specs_digest"] == DIGEST
    assert document["summary"]["create"] == 1
    assert document["summary"]["update-tags"] == 1
    first = document["items"][0]
    for key in ("kind", "action", "name", "region", "image_id", "state", "spec_file", "spec_line"):
        assert key in first
    assert first["kind"] == "image"
    assert first["copy_from"] is None
    # Only an image item's own fields: no bundle or share fields on it.
    assert "bundle_id" not in first
    assert "share_changes" not in first
    assert first["source_workspace_id"] == WS
    assert document["items"][1]["tag_changes"] == [
        {"key": "team", "before": "hr", "after": "people"}
    ]
    # What each item rests on: the live facts' fingerprint.
    assert all(item["fingerprint"].startswith("sha256:") for item in document["items"])
    assert document[CHECKSUM_KEY].startswith("sha256:")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("this is not a plan\n", id="not-json"),
        pytest.param("", id="empty"),
        pytest.param(None, id="truncated"),
    ],
)
def test_a_corrupt_file_is_refused_clearly(saved: Path, content: str | None) -> None:
    text = saved.read_text(encoding="utf-8")
    saved.write_text(text[: len(text) // 2] if content is None else content, encoding="utf-8")
    with pytest.raises(PlanFileError) as caught:
        load_plan(saved)
    message = str(caught.value)
    assert str(saved) in message
    assert "corrupt" in message
    assert "not JSON" in message
    assert "reconciler plan --out" in message  # what to do about it


def test_a_file_that_is_not_a_plan_document_is_refused(saved: Path) -> None:
    saved.write_text("[1, 2, 3]\n", encoding="utf-8")
    with pytest.raises(PlanFileError, match="is not a saved plan"):
        load_plan(saved)


def test_an_edited_action_is_refused(saved: Path) -> None:
    def edit(document: dict[str, Any]) -> None:
        assert document["items"][0]["action"] == "create"
        document["items"][0]["action"] = "no-op"

    rewrite(saved, edit)
    with pytest.raises(PlanFileError, match="edited") as caught:
        load_plan(saved)
    assert "plan again" in str(caught.value)


def test_an_edited_tag_value_is_refused(saved: Path) -> None:
    rewrite(saved, lambda d: d["items"][1]["tag_changes"][0].update(after="root"))
    with pytest.raises(PlanFileError, match="edited"):
        load_plan(saved)


def test_a_removed_checksum_is_refused(saved: Path) -> None:
    rewrite(saved, lambda d: d.pop(CHECKSUM_KEY))
    with pytest.raises(PlanFileError, match="edited"):
        load_plan(saved)


@pytest.mark.parametrize("version", [3, 0, "2", None])
def test_another_format_version_is_refused(saved: Path, version: object) -> None:
    rewrite(saved, lambda d: d.update(format_version=version), checksum=True)
    with pytest.raises(PlanFileError, match="format_version") as caught:
        load_plan(saved)
    assert f"{version!r}" in str(caught.value)
    assert "reads 2" in str(caught.value)


def test_a_plan_file_of_format_1_is_refused_with_a_message_to_plan_again(saved: Path) -> None:
    rewrite(saved, lambda d: d.update(format_version=1), checksum=True)
    with pytest.raises(PlanFileError, match="format 1") as caught:
        load_plan(saved)
    assert "plan again" in (caught.value.hint or "")


def test_a_well_formed_file_with_a_bad_item_is_refused(saved: Path) -> None:
    rewrite(saved, lambda d: d["items"][0].update(action="delete-everything"), checksum=True)
    with pytest.raises(PlanFileError, match="is not a valid plan"):
        load_plan(saved)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="does not exist") as caught:
        load_plan(tmp_path / "nowhere.json")
    assert "reconciler plan --out" in str(caught.value)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot be read"):
        load_plan(tmp_path)


# --- settle: the saved plan against a fresh one ------------------------------------------


def test_an_unchanged_world_applies_the_plan(saved: Path) -> None:
    plan, converged = settle(load_plan(saved), plan_of(SPECS, LIVE))
    assert plan == reviewed()
    assert converged == frozenset()


def test_changed_specs_make_the_plan_stale(saved: Path) -> None:
    fresh = plan_of(SPECS, LIVE, digest="sha256:" + "2" * 64)
    with pytest.raises(StalePlanError) as caught:
        settle(load_plan(saved), fresh)
    message = str(caught.value)
    assert message.startswith("saved plan is stale")
    assert "specs changed" in message
    assert "reconciler plan --out" in message


def test_a_planned_create_that_now_exists_is_converged(saved: Path) -> None:
    created = image("finance-win11", 3, {**OWNED, "team": "finance"}, state="PENDING")
    fresh = plan_of(SPECS, [*LIVE, created])
    plan, converged = settle(load_plan(saved), fresh)
    assert converged == {("image", "", REGION, "finance-win11")}
    assert plan == fresh
    # The other items are still applied as reviewed.
    assert [i.action for i in plan.items[1:]] == [Action.UPDATE_TAGS, Action.NO_OP]


@pytest.mark.parametrize(
    ("description", "state"),
    [("Someone else's image", "AVAILABLE"), ("Golden image finance-win11", "ERROR")],
    ids=["other-description", "in-error"],
)
def test_a_planned_create_raced_by_a_conflicting_image_is_stale(
    saved: Path, description: str, state: str
) -> None:
    raced = LiveImage("wsi-000000009", "finance-win11", description, state, dict(OWNED))
    with pytest.raises(StalePlanError, match="saved plan is stale"):
        settle(load_plan(saved), plan_of(SPECS, [*LIVE, raced]))


def test_live_tags_changed_since_the_plan_make_it_stale_and_say_how(saved: Path) -> None:
    moved = [image("hr-win11", 1, {**OWNED, "team": "ops"}), LIVE[1]]
    with pytest.raises(StalePlanError) as caught:
        settle(load_plan(saved), plan_of(SPECS, moved))
    message = str(caught.value)
    assert message.startswith("saved plan is stale")
    assert "eu-west-1/hr-win11" in message
    assert '"hr"' in message
    assert '"ops"' in message


def test_drift_on_an_unchanged_item_makes_the_plan_stale(saved: Path) -> None:
    moved = [LIVE[0], image("ops-win11", 2, {**OWNED, "team": "ops", "extra": "1"})]
    with pytest.raises(StalePlanError, match="saved plan is stale") as caught:
        settle(load_plan(saved), plan_of(SPECS, moved))
    assert "eu-west-1/ops-win11" in str(caught.value)
    assert "update-tags" in str(caught.value)


def test_a_replaced_image_makes_the_plan_stale(saved: Path) -> None:
    replaced = [image("hr-win11", 9, {**OWNED, "team": "hr"}), LIVE[1]]
    with pytest.raises(StalePlanError, match="saved plan is stale") as caught:
        settle(load_plan(saved), plan_of(SPECS, replaced))
    assert "wsi-000000009" in str(caught.value)


def test_a_new_unmanaged_image_makes_the_plan_stale(saved: Path) -> None:
    orphan = image("old-win10", 7, OWNED)
    with pytest.raises(StalePlanError, match="saved plan is stale") as caught:
        settle(load_plan(saved), plan_of(SPECS, [*LIVE, orphan]))
    assert "old-win10" in str(caught.value)


def test_a_source_that_stopped_makes_the_plan_stale(saved: Path) -> None:
    fresh = plan_of(SPECS, LIVE, source_state="STOPPED")
    assert fresh.items[0].action is Action.BLOCKED
    with pytest.raises(StalePlanError, match="saved plan is stale") as caught:
        settle(load_plan(saved), fresh)
    assert "blocked" in str(caught.value)


def test_a_plan_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot be written") as caught:
        save_plan(reviewed(), tmp_path / "no-such-folder" / "plan.json")
    assert "No such file or directory" in str(caught.value)
