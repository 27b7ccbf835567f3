"""`reconciler.apply.apply_plan` in-process, against moto with the fidelity layer.

Plans are built the real way (`build_plan` over spec files and the live state). Errors the
fidelity layer does not produce on its own are injected at the HTTP boundary's stand-in:
the region client's botocore method for one image name raises `ClientError` (or a
connection error), optionally after the real call ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.apply import Result, apply_plan
from reconciler.aws import Clients
from reconciler.plan import Action
from reconciler.run import PlanOptions, build_plan
from tests.fidelity import Fidelity, FidelityConfig
from tests.inprocess import (
    REGION,
    by_name,
    live,
    plan_for,
    spec,
)

OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
WS_B = "ws-0b1b2c3d4"
WS_C = "ws-0c1b2c3d4"


def client_error(code: str, message: str = "the service said no", status: int = 400) -> Exception:
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "CreateWorkspaceImage",
    )


def inject_create(
    monkeypatch: pytest.MonkeyPatch,
    clients: Clients,
    name: str,
    error: Callable[[], Exception],
    *,
    run_first: bool = False,
    times: int | None = None,
) -> list[dict[str, Any]]:
    """CreateWorkspaceImage for `name` raises `error()` (after running the real call if
    `run_first`), `times` times (None: always). Returns the calls made for `name`."""
    creates = clients.region(REGION).creates
    real = creates.create_workspace_image
    seen: list[dict[str, Any]] = []

    def create_workspace_image(**kwargs: Any) -> Any:
        if kwargs["Name"] != name:
            return real(**kwargs)
        seen.append(kwargs)
        if times is not None and len(seen) > times:
            return real(**kwargs)
        if run_first:
            real(**kwargs)
        raise error()

    monkeypatch.setattr(creates, "create_workspace_image", create_workspace_image)
    return seen


# --- every documented CreateWorkspaceImage error -------------------------------------------

# code -> (result, words the error must carry besides the code and the AWS message)
DOCUMENTED = {
    "ResourceAlreadyExistsException": (Result.CONVERGED, None),
    "InvalidResourceStateException": (Result.DEFERRED, ("busy", "again")),
    "ResourceLimitExceededException": (Result.FAILED, ("quota",)),
    "ResourceNotFoundException": (Result.FAILED, ("WorkSpace",)),
    "AccessDeniedException": (Result.FAILED, ("workspaces:CreateWorkspaceImage",)),
    "OperationNotSupportedException": (Result.FAILED, ("another source",)),
    "InvalidParameterValuesException": (Result.FAILED, ("spec",)),
}


@pytest.mark.parametrize("code", list(DOCUMENTED))
def test_each_documented_create_error_maps_to_its_result_and_the_others_go_on(
    fidelity: Fidelity,
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    fidelity.add_workspace(REGION, WS_B)
    retag = fidelity.add_image(REGION, "retag", "Image retag", tags={**OWN, "team": "old"})
    plan = plan_for(
        tmp_path,
        clients,
        spec("refused", WS_A, {"team": "x"}),
        spec("good", WS_B, {"team": "y"}),
        spec("retag", WS_C, {"team": "new"}),
    )
    assert [i.action for i in plan.items] == [Action.CREATE, Action.CREATE, Action.UPDATE_TAGS]
    inject_create(monkeypatch, clients, "refused", lambda: client_error(code, "Details here."))

    applied = apply_plan(plan, clients)

    result, words = DOCUMENTED[code]
    refused = by_name(applied)["refused"]
    assert refused.result is result
    if words is None:
        assert refused.error is None
    else:
        assert refused.error is not None
        assert code in refused.error
        assert "Details here." in refused.error
        assert "hint:" in refused.error
        for word in words:
            assert word in refused.error
    # One failure never stops the others.
    assert by_name(applied)["good"].result is Result.CREATED
    assert by_name(applied)["retag"].result is Result.TAGS_UPDATED
    assert fidelity.image_tags(REGION, retag) == {**OWN, "team": "new"}
    assert live(fidelity)["good"]["tags"] == {**OWN, "team": "y"}
    assert "refused" not in live(fidelity)
    assert applied.failed is (result is Result.FAILED)
    assert applied.work_left is (result is Result.DEFERRED)


def test_an_undocumented_create_error_fails_with_the_aws_code_and_message(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    plan = plan_for(tmp_path, clients, spec("img", WS_A))
    inject_create(monkeypatch, clients, "img", lambda: client_error("ValidationException", "Nope"))
    item = by_name(apply_plan(plan, clients))["img"]
    assert item.result is Result.FAILED
    assert item.error is not None
    assert "ValidationException: Nope" in item.error


# --- the same errors, produced by the service itself ----------------------------------------


def test_an_image_created_after_the_plan_is_converged_not_failed(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    plan = plan_for(tmp_path, clients, spec("img", WS_A, {"team": "t"}))
    other = fidelity.add_image(REGION, "img", "Image img", tags={**OWN, "team": "t"})
    applied = apply_plan(plan, clients)  # the service answers ResourceAlreadyExistsException
    assert by_name(applied)["img"].result is Result.CONVERGED
    assert by_name(applied)["img"].error is None
    assert not applied.failed
    assert [i["id"] for i in fidelity.images(REGION)] == [other]


def test_a_source_removed_after_the_plan_fails_with_a_hint(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    plan = plan_for(tmp_path, clients, spec("img", WS_A))
    del fidelity.backend(REGION).workspaces[WS_A]
    item = by_name(apply_plan(plan, clients))["img"]
    assert item.result is Result.FAILED
    assert item.error is not None
    assert "ResourceNotFoundException" in item.error
    assert "hint:" in item.error
    assert fidelity.images(REGION) == []


def test_a_source_stopped_after_the_plan_is_deferred(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    plan = plan_for(tmp_path, clients, spec("img", WS_A))
    fidelity.set_workspace_state(REGION, WS_A, "STOPPED")
    applied = apply_plan(plan, clients)  # InvalidResourceStateException
    item = by_name(applied)["img"]
    assert item.result is Result.DEFERRED
    assert item.error is not None
    assert "InvalidResourceStateException" in item.error
    assert applied.work_left
    assert not applied.failed
    assert fidelity.images(REGION) == []


@pytest.mark.parametrize("fidelity_config", [FidelityConfig(image_quota=1)])
def test_the_service_quota_fails_the_create_beyond_it(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    fidelity.add_workspace(REGION, WS_B)
    plan = plan_for(tmp_path, clients, spec("one", WS_A), spec("two", WS_B))  # quota 40 assumed
    assert [i.action for i in plan.items] == [Action.CREATE, Action.CREATE]
    applied = apply_plan(plan, clients)
    results = sorted(applied.items, key=lambda i: i.result.value)
    assert [i.result for i in results] == [Result.CREATED, Result.FAILED]
    assert results[1].error is not None
    assert "ResourceLimitExceededException" in results[1].error
    assert "quota" in results[1].error
    assert [i["name"] for i in fidelity.images(REGION)] == [results[0].name]


# --- lost replies ---------------------------------------------------------------------------


def _read_timeout() -> Exception:
    return botocore.exceptions.ReadTimeoutError(endpoint_url="https://workspaces.test")


def _connection_refused() -> Exception:
    return botocore.exceptions.EndpointConnectionError(endpoint_url="https://workspaces.test")


@pytest.mark.parametrize(
    ("error", "ran", "result"),
    [
        (lambda: client_error("InternalFailure", "oops", 500), True, Result.CONVERGED),
        (lambda: client_error("InternalFailure", "oops", 500), False, Result.CREATED),
        (lambda: client_error("ServiceUnavailable", "busy", 503), True, Result.CONVERGED),
        (_read_timeout, True, Result.CONVERGED),
        (_read_timeout, False, Result.CREATED),
        (_connection_refused, False, Result.CREATED),
    ],
    ids=["500-ran", "500-not-run", "503-ran", "timeout-ran", "timeout-not-run", "refused"],
)
def test_a_create_whose_reply_is_lost_is_settled_by_looking_the_name_up(
    fidelity: Fidelity,
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: Callable[[], Exception],
    ran: bool,
    result: Result,
) -> None:
    """Found by the lookup: converged, never sent again. Proven absent: sent once more (the
    contract), and that answer stands."""
    fidelity.add_workspace(REGION, WS_A)
    plan = plan_for(tmp_path, clients, spec("img", WS_A))
    sent = inject_create(monkeypatch, clients, "img", error, run_first=ran, times=1)
    item = by_name(apply_plan(plan, clients))["img"]
    assert len(sent) == (1 if ran else 2)
    assert item.result is result
    assert item.error is None
    assert [i["id"] for i in fidelity.images(REGION)] == [item.image_id]


def test_a_create_lost_twice_is_failed_after_one_resend(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    plan = plan_for(tmp_path, clients, spec("img", WS_A))
    sent = inject_create(monkeypatch, clients, "img", _read_timeout)
    item = by_name(apply_plan(plan, clients))["img"]
    assert len(sent) == 2  # the first, and one resend after the lookup proved it absent
    assert item.result is Result.FAILED
    assert item.error is not None
    assert "sent once more" in item.error
    assert fidelity.images(REGION) == []


def test_a_resent_create_answered_already_exists_is_converged(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first create ran after the lookup (a slow service): the resend can't duplicate."""
    fidelity.add_workspace(REGION, WS_A)
    plan = plan_for(tmp_path, clients, spec("img", WS_A))
    creates = clients.region(REGION).creates
    real = creates.create_workspace_image
    sent: list[str] = []

    def create_workspace_image(**kwargs: Any) -> Any:
        sent.append(kwargs["Name"])
        if len(sent) == 1:
            raise _read_timeout()  # not run yet: the lookup finds nothing
        real(**kwargs)  # the first one lands now
        return real(**kwargs)  # and the resend is refused: the name is taken

    monkeypatch.setattr(creates, "create_workspace_image", create_workspace_image)
    item = by_name(apply_plan(plan, clients))["img"]
    assert item.result is Result.CONVERGED
    assert len(fidelity.images(REGION)) == 1


def test_a_lost_reply_whose_lookup_fails_too_is_failed_and_says_to_run_again(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    plan = plan_for(tmp_path, clients, spec("img", WS_A))
    inject_create(monkeypatch, clients, "img", _read_timeout, run_first=True)
    reads = clients.region(REGION).reads

    def describe_workspace_images(**kwargs: Any) -> Any:
        raise client_error("InternalFailure", "down", 500)

    monkeypatch.setattr(reads, "describe_workspace_images", describe_workspace_images)
    item = by_name(apply_plan(plan, clients))["img"]
    assert item.result is Result.FAILED
    assert item.error is not None
    assert "lookup failed" in item.error
    assert "run apply again" in item.error


def test_a_throttled_create_is_sent_again_because_it_did_not_run(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    plan = plan_for(tmp_path, clients, spec("img", WS_A))
    sent = inject_create(
        monkeypatch, clients, "img", lambda: client_error("ThrottlingException"), times=1
    )
    item = by_name(apply_plan(plan, clients))["img"]
    assert len(sent) == 2
    assert item.result is Result.CREATED
    assert len(fidelity.images(REGION)) == 1


# --- tags, ordering, interruption -----------------------------------------------------------


def test_a_failed_tag_write_fails_its_item_only(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    denied = fidelity.add_image(REGION, "denied", "Image denied", tags={**OWN, "team": "old"})
    fine = fidelity.add_image(REGION, "fine", "Image fine", tags={"team": "old"})
    plan = plan_for(
        tmp_path,
        clients,
        spec("denied", WS_A, {"team": "new"}),
        spec("fine", WS_B, {"team": "new"}),
    )
    assert [i.action for i in plan.items] == [Action.UPDATE_TAGS, Action.ADOPT]
    reads = clients.region(REGION).reads
    real = reads.create_tags

    def create_tags(**kwargs: Any) -> Any:
        if kwargs["ResourceId"] == denied:
            raise client_error("AccessDeniedException", "not allowed")
        return real(**kwargs)

    monkeypatch.setattr(reads, "create_tags", create_tags)
    applied = apply_plan(plan, clients)
    item = by_name(applied)["denied"]
    assert item.result is Result.FAILED
    assert item.error is not None
    assert "AccessDeniedException" in item.error
    assert "workspaces:CreateTags" in item.error
    assert by_name(applied)["fine"].result is Result.ADOPTED
    assert fidelity.image_tags(REGION, denied) == {**OWN, "team": "old"}
    assert fidelity.image_tags(REGION, fine) == {**OWN, "team": "new"}
    assert applied.failed


def test_creates_from_one_source_send_the_first_and_defer_the_rest(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    fidelity.add_workspace(REGION, WS_B)
    plan = plan_for(
        tmp_path,
        clients,
        spec("a-1", WS_A),
        spec("b-1", WS_B),
        spec("a-2", WS_A),
        spec("a-3", WS_A),
    )
    applied = apply_plan(plan, clients)
    got = {name: item.result for name, item in by_name(applied).items()}
    assert got == {
        "a-1": Result.CREATED,
        "b-1": Result.CREATED,
        "a-2": Result.DEFERRED,
        "a-3": Result.DEFERRED,
    }
    error = by_name(applied)["a-2"].error
    assert error is not None
    assert WS_A in error
    assert sorted(live(fidelity)) == ["a-1", "b-1"]
    assert applied.work_left
    assert not applied.failed


def test_conflict_and_blocked_items_are_skipped_with_their_reason(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    fidelity.add_image(REGION, "conflict", "Another description", tags=OWN)
    plan = plan_for(
        tmp_path, clients, spec("conflict", WS_A), spec("blocked", WS_C), spec("ok", WS_A)
    )
    assert [i.action for i in plan.items] == [Action.CONFLICT, Action.BLOCKED, Action.CREATE]
    applied = apply_plan(plan, clients)
    for item, planned in zip(applied.items[:2], plan.items[:2], strict=True):
        assert item.result is Result.SKIPPED
        assert item.error == planned.reason
    assert by_name(applied)["ok"].result is Result.CREATED
    assert applied.failed
    assert sorted(live(fidelity)) == ["conflict", "ok"]


def test_an_interrupted_apply_starts_no_call_and_skips_every_change(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    retag = fidelity.add_image(REGION, "retag", "Image retag", tags={**OWN, "team": "old"})
    fidelity.add_image(REGION, "same", "Image same", tags=OWN)
    plan = plan_for(
        tmp_path,
        clients,
        spec("new", WS_A),
        spec("retag", WS_B, {"team": "new"}),
        spec("same", WS_B),
    )
    clients.stop.set()
    applied = apply_plan(plan, clients)
    assert applied.interrupted
    got = {name: item.result for name, item in by_name(applied).items()}
    assert got == {"new": Result.SKIPPED, "retag": Result.SKIPPED, "same": Result.UNCHANGED}
    assert sorted(live(fidelity)) == ["retag", "same"]
    assert fidelity.image_tags(REGION, retag) == {**OWN, "team": "old"}


def test_an_image_deleted_between_listing_and_tag_read_is_left_out_of_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clients: Clients, fidelity: Fidelity
) -> None:
    keep = fidelity.add_image(
        REGION, "keep", description="Image keep", tags={OWNERSHIP_TAG_KEY: "true"}
    )
    gone = fidelity.add_image(REGION, "gone", tags={OWNERSHIP_TAG_KEY: "true"})
    region = clients.region(REGION)
    real_images = region.images

    def images() -> Iterator[Any]:
        listed = list(real_images())
        # Someone deletes it while the paced plan runs: its DescribeTags then really answers
        # ResourceNotFoundException.
        fidelity.backend(REGION).workspace_images.pop(gone)
        yield from listed

    monkeypatch.setattr(region, "images", images)
    plan = plan_for(tmp_path, clients, spec("keep", WS_A))
    assert [(i.name, i.action) for i in plan.items] == [("keep", Action.NO_OP)]
    assert plan.items[0].image_id == keep
    assert plan.unmanaged == ()


def test_a_prune_skipped_until_a_capture_ends_is_work_left(
    tmp_path: Path, clients: Clients, fidelity: Fidelity
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    fidelity.add_image(REGION, "keep", description="Image keep", tags={OWNERSHIP_TAG_KEY: "true"})
    fidelity.add_image(REGION, "old", state="PENDING", tags={OWNERSHIP_TAG_KEY: "true"})
    plan = plan_for(tmp_path, clients, spec("keep", WS_A))
    applied = apply_plan(plan.model_copy(update={"prune": True}), clients)
    assert [(u.name, u.result) for u in applied.unmanaged] == [("old", Result.SKIPPED)]
    assert "PENDING" in (applied.unmanaged[0].error or "")
    assert applied.work_left
    assert not applied.failed
    assert "old" in live(fidelity)


@pytest.mark.parametrize(
    ("source_state", "result"), [("SUSPENDED", Result.DEFERRED), ("STOPPED", Result.SKIPPED)]
)
def test_replace_failed_keeps_the_failed_image_while_its_source_cannot_capture(
    tmp_path: Path, clients: Clients, fidelity: Fidelity, source_state: str, result: Result
) -> None:
    fidelity.add_workspace(REGION, WS_A, state=source_state)
    failed = fidelity.add_image(
        REGION,
        "img",
        description="Image img",
        state="ERROR",
        error_code="E1",
        tags={OWNERSHIP_TAG_KEY: "true"},
    )
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(
        f"name: img\ndescription: Image img\nsource_workspace_id: {WS_A}\n", encoding="utf-8"
    )
    options = PlanOptions(specs_dir=str(specs), recapture_failed=True)
    plan, _ = build_plan(options, clients)
    applied = apply_plan(plan, clients)
    assert applied.items[0].result is result
    assert live(fidelity)["img"]["id"] == failed  # not deleted
