"""Apply's calls for copies and bundles, in-process: lost replies, and the service's refusals.

Plans are built the real way (`build_plan` over spec files); a lost reply is injected at the
region client's botocore method (the stand-in for the HTTP boundary), after the real call
ran or before it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import yaml

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.apply import ApplyOptions, Result, apply_plan
from reconciler.aws import Clients
from reconciler.kinds import bundle as bundle_kind
from reconciler.plan import Plan
from reconciler.run import PlanOptions, build_plan
from tests.fidelity import Fidelity, FidelityConfig
from tests.inprocess import REGION

OWN = {OWNERSHIP_TAG_KEY: "true"}
AWAY = "us-east-1"


def plan_of(tmp_path: Path, clients: Clients, *docs: dict[str, Any]) -> Plan:
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    (specs / "a.yaml").write_text(
        "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs), encoding="utf-8"
    )
    plan, _ = build_plan(PlanOptions(specs_dir=str(specs)), clients)
    return plan


def image_doc(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"Image {name}",
        "source_workspace_id": "ws-0a1b2c3d4",
        **extra,
    }


def bundle_doc(name: str, image: str) -> dict[str, Any]:
    return {
        "kind": "bundle",
        "name": name,
        "description": f"Bundle {name}",
        "image": image,
        "compute_type": "STANDARD",
        "user_volume_gib": 50,
    }


def lose_replies(
    monkeypatch: pytest.MonkeyPatch,
    clients: Clients,
    region: str,
    operation: str,
    *,
    run_first: bool,
    times: int = 1,
) -> list[dict[str, Any]]:
    """The `creates` client's `operation` times out `times` times (after the real call ran
    if `run_first`); returns the calls made."""
    creates = clients.region(region).creates
    real = getattr(creates, operation)
    seen: list[dict[str, Any]] = []

    def lossy(**kwargs: Any) -> Any:
        seen.append(kwargs)
        if len(seen) > times:
            return real(**kwargs)
        if run_first:
            real(**kwargs)
        raise botocore.exceptions.ReadTimeoutError(endpoint_url="https://workspaces.test")

    monkeypatch.setattr(creates, operation, lossy)
    return seen


def result_of(plan: Plan, clients: Clients, kind: str, region: str) -> tuple[Result, str | None]:
    applied = apply_plan(plan, clients)
    (item,) = [i for i in applied.items if i.kind.value == kind and i.region == region]
    return item.result, item.error


@pytest.mark.parametrize(("ran", "calls", "result"), [(True, 1, Result.CONVERGED),
                                                       (False, 2, Result.CREATED)])  # fmt: skip
def test_a_copy_whose_reply_is_lost_is_settled_by_looking_the_name_up(
    fidelity: Fidelity,
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ran: bool,
    calls: int,
    result: Result,
) -> None:
    fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    plan = plan_of(tmp_path, clients, image_doc("golden", copies=[AWAY]))
    sent = lose_replies(monkeypatch, clients, AWAY, "copy_workspace_image", run_first=ran)
    assert result_of(plan, clients, "image", AWAY) == (result, None)
    assert len(sent) == calls
    assert [i["name"] for i in fidelity.images(AWAY)] == ["golden"]  # never two


@pytest.mark.parametrize(("ran", "calls", "result"), [(True, 1, Result.CONVERGED),
                                                       (False, 2, Result.CREATED)])  # fmt: skip
def test_a_bundle_create_whose_reply_is_lost_is_settled_by_looking_the_name_up(
    fidelity: Fidelity,
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ran: bool,
    calls: int,
    result: Result,
) -> None:
    fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    plan = plan_of(tmp_path, clients, image_doc("golden"), bundle_doc("std", "golden"))
    sent = lose_replies(monkeypatch, clients, REGION, "create_workspace_bundle", run_first=ran)
    assert result_of(plan, clients, "bundle", REGION) == (result, None)
    assert len(sent) == calls
    assert [b["name"] for b in fidelity.bundles(REGION)] == ["std"]


def test_a_bundle_create_lost_twice_fails_and_says_to_run_again(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    plan = plan_of(tmp_path, clients, image_doc("golden"), bundle_doc("std", "golden"))
    lose_replies(monkeypatch, clients, REGION, "create_workspace_bundle", run_first=False, times=2)
    result, error = result_of(plan, clients, "bundle", REGION)
    assert result is Result.FAILED
    assert "run apply again" in (error or "")
    assert fidelity.bundles(REGION) == []


@pytest.mark.parametrize("fidelity_config", [FidelityConfig(bundle_name_reuse_seconds=7200)])
def test_a_bundle_name_freed_less_than_two_hours_ago_fails_with_a_hint_not_converged(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    image = fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    made = clients.region(REGION).reads.create_workspace_bundle(
        BundleName="std", BundleDescription="Bundle std", ImageId=image,
        ComputeType={"Name": "STANDARD"}, UserStorage={"Capacity": "50"},
    )  # fmt: skip
    clients.region(REGION).reads.delete_workspace_bundle(
        BundleId=made["WorkspaceBundle"]["BundleId"]
    )
    plan = plan_of(tmp_path, clients, image_doc("golden"), bundle_doc("std", "golden"))
    result, error = result_of(plan, clients, "bundle", REGION)
    assert result is Result.FAILED
    assert "about 2 hours" in (error or "")
    assert fidelity.bundles(REGION) == []


def test_a_copy_the_service_finds_unavailable_is_deferred(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    plan = plan_of(tmp_path, clients, image_doc("golden", copies=[AWAY]))
    # Between the plan and the copy, the source went back to PENDING (an update, say).
    image_id = fidelity.images(REGION)[0]["id"]
    fidelity.set_image_state(REGION, image_id, "PENDING")
    result, error = result_of(plan, clients, "image", AWAY)
    assert result is Result.DEFERRED
    assert "ResourceUnavailableException" in (error or "")
    assert fidelity.images(AWAY) == []


def test_a_bundle_planned_for_adoption_that_is_owned_when_read_again_is_moved(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    """The tagging API showed the bundle unowned (it lags, or leaves bundles out), so the
    plan says adopt, and the image change; DescribeTags just before the change shows it
    owned: the fresh read is the truth, and the move the plan showed is made."""
    old = fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    new = fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    bundle = fidelity.add_bundle(REGION, "standard", old, description="Bundle standard", tags={})
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(
        "---\n".join(
            yaml.safe_dump(d, sort_keys=False)
            for d in (image_doc("golden"), bundle_doc("standard", "golden"))
        ),
        encoding="utf-8",
    )
    plan, replan = build_plan(PlanOptions(specs_dir=str(specs)), clients)
    (item,) = [i for i in plan.items if i.kind.value == "bundle"]
    before = bundle_kind.detail_of(item).image_before
    assert (item.action.value, before, item.image_id) == ("adopt", old, new)
    clients.region(REGION).reads.create_tags(
        ResourceId=bundle, Tags=[{"Key": OWNERSHIP_TAG_KEY, "Value": "true"}]
    )

    applied = apply_plan(plan, clients, ApplyOptions(replan=replan))
    (done,) = [i for i in applied.items if i.kind.value == "bundle"]
    assert (done.result, done.error) == (Result.IMAGE_UPDATED, None)
    (live,) = fidelity.bundles(REGION)
    assert live["image_id"] == new
    assert live["tags"] == OWN


def test_a_bundle_planned_as_owned_that_lost_its_ownership_tag_is_not_moved(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    """The other way is never taken: a reviewed move of an owned bundle is not carried out
    as an adoption nobody reviewed."""
    old = fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    bundle = fidelity.add_bundle(REGION, "standard", old, description="Bundle standard", tags=OWN)
    plan = plan_of(tmp_path, clients, image_doc("golden"), bundle_doc("standard", "golden"))
    clients.region(REGION).reads.delete_tags(ResourceId=bundle, TagKeys=[OWNERSHIP_TAG_KEY])
    _, replan = build_plan(PlanOptions(specs_dir=str(tmp_path / "specs")), clients)
    applied = apply_plan(plan, clients, ApplyOptions(replan=replan))
    (done,) = [i for i in applied.items if i.kind.value == "bundle"]
    assert done.result is Result.FAILED
    assert "now calls for adopt" in (done.error or "")
    assert fidelity.bundles(REGION)[0]["image_id"] == old
