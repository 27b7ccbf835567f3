"""Self-tests of updated images: each image's ``Updates`` in DescribeWorkspaceImages and
CreateUpdatedWorkspaceImage, as the real WorkSpaces service answers them, in-process and
over HTTP. Service facts (the operation, its parameters and errors, the shapes and their
constraints) are read from the installed botocore's model, never copied here."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from reconciler.emulator import model
from reconciler.emulator.moto_adapter import Response as WorkSpacesResponse
from tests.fidelity import (
    NO_UPDATE_DESCRIPTION,
    UPDATE_DESCRIPTION,
    FidelityConfig,
    installed,
    local_endpoint,
    reset_moto,
)
from tests.fidelity_selftest.conftest import (
    ACCOUNT,
    MODES,
    NO_RETRY,
    OTHER_REGION,
    REGION,
    Env,
    error_code,
    open_env,
)
from tests.fidelity_selftest.test_accounts import assume, client

OPERATION = "CreateUpdatedWorkspaceImage"
OFFER = "New WorkSpaces agent and graphics drivers (2026.11)"
NO_UPDATE = {"UpdateAvailable": False, "Description": NO_UPDATE_DESCRIPTION}
WORKLOAD = "222222222222"


def refused(call: Any, **kwargs: Any) -> tuple[str, str]:
    """(error code, message) of a call that must fail with an AWS error (HTTP 400)."""
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error_code(err), str(err.value.response["Error"]["Message"])


def updates(ws: Any, image_id: str) -> dict[str, Any]:
    return dict(ws.describe_workspace_images(ImageIds=[image_id])["Images"][0]["Updates"])


def update(ws: Any, source: str, name: str = "golden-2", **extra: Any) -> str:
    request = {"Name": name, "Description": "Golden with new drivers", "SourceImageId": source}
    return str(ws.create_updated_workspace_image(**{**request, **extra})["ImageId"])


def offered(env: Env, name: str = "golden", **image: Any) -> str:
    """An AVAILABLE image AWS offers an update for."""
    image_id = env.fidelity.add_image(REGION, name, **image)
    env.fidelity.offer_update(REGION, image_id, description=OFFER)
    return image_id


# --- the service's model -------------------------------------------------------------------


def test_the_operation_is_in_the_installed_botocores_model_with_the_errors_we_answer() -> None:
    service = model.service_model()
    assert OPERATION in service.operation_names
    op = model.operation(OPERATION)
    assert set(op.input_shape.members) == {"Name", "Description", "SourceImageId", "Tags"}
    assert set(op.input_shape.required_members) == {"Name", "Description", "SourceImageId"}
    assert list(op.output_shape.members) == ["ImageId"]
    answered = {
        "ResourceNotFoundException",
        "ResourceAlreadyExistsException",
        "ResourceLimitExceededException",
        "InvalidResourceStateException",
        "OperationNotSupportedException",
        "AccessDeniedException",
        "InvalidParameterValuesException",
    }
    # ValidationException is the json protocol's own answer to a broken constraint, which
    # no operation's error list names
    assert answered <= {e.name for e in op.error_shapes}


def test_the_updates_shape_is_the_models_and_our_descriptions_meet_its_constraints() -> None:
    image_shape = model.service_model().shape_for("WorkspaceImage")
    assert "Updates" in image_shape.members
    result = image_shape.members["Updates"]
    assert set(result.members) == {"UpdateAvailable", "Description"}
    shape = result.members["Description"].name
    for description in (NO_UPDATE_DESCRIPTION, UPDATE_DESCRIPTION, OFFER):
        assert model.constraint_violation(description, shape) is None, description


# --- Updates in DescribeWorkspaceImages ----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_image_reports_no_update_until_aws_offers_one(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        golden = f.add_image(REGION, "golden")
        f.add_workspace(REGION, "ws-0a1b2c3d4")
        ws = env.client()
        captured = ws.create_workspace_image(
            Name="captured", Description="d", WorkspaceId="ws-0a1b2c3d4"
        )["ImageId"]
        raw: list[bytes] = []
        ws.meta.events.register(
            "after-call.workspaces.DescribeWorkspaceImages",
            lambda http_response, **_: raw.append(http_response.content),
        )
        images = ws.describe_workspace_images()["Images"]
        assert [(i["ImageId"], i["Updates"]) for i in images] == [
            (golden, NO_UPDATE),
            (captured, NO_UPDATE),
        ]
        # on the wire too, not only botocore's parse of it
        assert json.loads(raw[0])["Images"][0]["Updates"] == NO_UPDATE

        f.offer_update(REGION, golden, description=OFFER)
        assert updates(ws, golden) == {"UpdateAvailable": True, "Description": OFFER}
        assert updates(ws, captured) == NO_UPDATE
        f.offer_update(golden)  # the region may be left out; the default description
        assert updates(ws, golden) == {"UpdateAvailable": True, "Description": UPDATE_DESCRIPTION}
        f.offer_update(REGION, golden, offered=False)
        assert updates(ws, golden) == NO_UPDATE


def test_the_emulator_answers_its_own_updates_whatever_moto_keeps_on_its_image() -> None:
    # moto (5.2.1 to 5.2.6) sets every image's ``updates`` once to UpdateAvailable false
    # and never changes it; the emulator does not read it
    with mock_aws(), installed() as f:
        image_id = f.add_image(REGION, "golden")
        f.backend(REGION).workspace_images[image_id].updates = {
            "UpdateAvailable": True,
            "Description": "moto says so",
        }
        ws = Env(f, None).client()
        assert updates(ws, image_id) == NO_UPDATE


def test_offer_update_refuses_what_aws_would_never_answer() -> None:
    with mock_aws(), installed() as f:
        windows = f.add_image(REGION, "windows", operating_system="WINDOWS")
        linux = f.add_image(REGION, "linux", operating_system="LINUX")
        with pytest.raises(ValueError, match="pattern"):
            f.offer_update(REGION, windows, description="Drivers: new, better")
        with pytest.raises(ValueError, match="length"):
            f.offer_update(REGION, windows, description="d" * 256)
        with pytest.raises(ValueError, match="LINUX"):
            f.offer_update(REGION, linux)
        with pytest.raises(ValueError, match="no image"):
            f.offer_update(REGION, "wsi-000000000")
        with pytest.raises(ValueError, match="operating_system"):
            f.add_image(REGION, "mac", operating_system="MACOS")
        f.offer_update(REGION, linux, offered=False)  # withdrawing nothing is no error
        f.offer_update(REGION, windows)
        ws = Env(f, None).client()
        shown = ws.describe_workspace_images(ImageIds=[windows, linux])["Images"]
        assert [(i["OperatingSystem"], i["Updates"]["UpdateAvailable"]) for i in shown] == [
            ({"Type": "WINDOWS"}, True),
            ({"Type": "LINUX"}, False),
        ]


# --- CreateUpdatedWorkspaceImage --------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_an_updated_image_is_pending_then_available_with_its_tags_and_no_offer(
    mode: str,
) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        source = offered(env, description="Golden desktop", operating_system="WINDOWS")
        ws = env.client()
        reply = ws.create_updated_workspace_image(
            Name="golden-2",
            Description="Golden with new drivers",
            SourceImageId=source,
            Tags=[{"Key": "team", "Value": "finance"}],
        )
        assert [k for k in reply if k != "ResponseMetadata"] == ["ImageId"]
        new = reply["ImageId"]
        assert re.fullmatch(r"wsi-[0-9a-z]{9,63}", new)
        assert new != source
        image = ws.describe_workspace_images(ImageIds=[new])["Images"][0]
        assert (image["Name"], image["Description"], image["State"]) == (
            "golden-2",
            "Golden with new drivers",
            "PENDING",
        )
        assert (image["OwnerAccountId"], image["OperatingSystem"]) == (ACCOUNT, {"Type": "WINDOWS"})
        assert image["Updates"] == NO_UPDATE
        assert f.image_tags(REGION, new) == {"team": "finance"}
        assert ws.describe_tags(ResourceId=new)["TagList"] == [{"Key": "team", "Value": "finance"}]
        assert (f.updated_from(REGION, new), f.updated_from(REGION, source)) == (source, None)
        assert f.copied_from(REGION, new) is None

        # the source is kept as it was, its offer included
        kept = ws.describe_workspace_images(ImageIds=[source])["Images"][0]
        assert (kept["State"], kept["Description"]) == ("AVAILABLE", "Golden desktop")
        assert kept["Updates"] == {"UpdateAvailable": True, "Description": OFFER}
        assert refused(ws.delete_workspace_image, ImageId=new)[0] == (
            "InvalidResourceStateException"
        )
        f.finish_capture(REGION, new)
        assert ws.describe_workspace_images(ImageIds=[new])["Images"][0]["State"] == "AVAILABLE"
        # an updated image is an image like any: AWS may offer it an update in turn
        f.offer_update(REGION, new)
        update(ws, new, name="golden-3")


@pytest.mark.parametrize("mode", MODES)
def test_an_updated_image_finishes_after_capture_seconds_or_as_fail_updates_plans(
    mode: str,
) -> None:
    with open_env(mode, FidelityConfig(capture_seconds=0.2)) as env:
        f = env.fidelity
        source = offered(env)
        f.fail_updates(REGION, name="doomed", error_code="E7", error_message="update broke")
        f.fail_copies(REGION)  # armed for copies only: no updated image uses it up
        ws = env.client()
        fine, doomed = update(ws, source, "fine"), update(ws, source, "doomed")
        assert {i["state"] for i in f.images(REGION) if i["id"] in (fine, doomed)} == {"PENDING"}
        time.sleep(0.3)
        shown = {i["ImageId"]: i for i in ws.describe_workspace_images()["Images"]}
        assert shown[fine]["State"] == "AVAILABLE"
        assert (shown[doomed]["State"], shown[doomed]["ErrorCode"]) == ("ERROR", "E7")
        assert shown[doomed]["ErrorMessage"] == "update broke"
        # used up: the next one of that name ends AVAILABLE
        ws.delete_workspace_image(ImageId=doomed)
        again = update(ws, source, "doomed")
        time.sleep(0.3)
        assert updates(ws, again) == NO_UPDATE
        assert ws.describe_workspace_images(ImageIds=[again])["Images"][0]["State"] == "AVAILABLE"


def test_fail_updates_is_the_planned_end_of_finish_capture() -> None:
    with mock_aws(), installed() as f:
        source = f.add_image(REGION, "golden")
        f.offer_update(REGION, source)
        f.fail_updates(REGION, times=None)
        ws = Env(f, None).client()
        ids = [update(ws, source, f"u{i}") for i in range(2)]
        f.finish_capture(REGION, ids[0])
        f.finish_capture(REGION, ids[1], state="AVAILABLE")  # an explicit state wins
        states = {i["id"]: (i["state"]) for i in f.images(REGION)}
        assert (states[ids[0]], states[ids[1]]) == ("ERROR", "AVAILABLE")
        assert ws.describe_workspace_images(ImageIds=ids[:1])["Images"][0]["ErrorCode"] == (
            "UpdateFailed"
        )
        with pytest.raises(ValueError, match="times"):
            f.fail_updates(REGION, times=0)


REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    # in the order the service checks them: a missing source before a taken name, ...
    ("unknown source", {"SourceImageId": "wsi-000000000", "Name": "taken"}, "ResourceNotFound"),
    ("source in another region", {"SourceImageId": "<elsewhere>"}, "ResourceNotFound"),
    ("another account's source", {"SourceImageId": "<theirs>"}, "ResourceNotFound"),
    ("taken name", {"Name": "taken", "SourceImageId": "<pending>"}, "ResourceAlreadyExists"),
    ("PENDING source", {"SourceImageId": "<pending>"}, "InvalidResourceState"),
    ("ERROR source", {"SourceImageId": "<error>"}, "InvalidResourceState"),
    ("no update offered", {"SourceImageId": "<current>"}, "OperationNotSupported"),
    ("offer withdrawn", {"SourceImageId": "<withdrawn>"}, "OperationNotSupported"),
    ("a Linux source", {"SourceImageId": "<linux>"}, "OperationNotSupported"),
    ("pattern of the name", {"Name": "golden 2"}, "ValidationException"),
    ("65-character name", {"Name": "g" * 65}, "ValidationException"),
    ("pattern of the description", {"Description": "new: drivers"}, "ValidationException"),
    ("malformed source id", {"SourceImageId": "ami-12345678"}, "ValidationException"),
]


@pytest.mark.parametrize("mode", MODES)
def test_create_updated_image_refusals_in_the_real_order(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        source = offered(env)
        sources = {
            "<elsewhere>": f.add_image(OTHER_REGION, "elsewhere"),
            "<theirs>": f.add_image(REGION, "theirs", account_id="999999999999"),
            "<pending>": f.add_image(REGION, "pending", state="PENDING"),
            "<error>": f.add_image(REGION, "failed", state="ERROR"),
            "<current>": f.add_image(REGION, "current"),
            "<withdrawn>": f.add_image(REGION, "withdrawn"),
            "<linux>": f.add_image(REGION, "linux", operating_system="LINUX"),
            "taken": f.add_image(REGION, "taken"),
        }
        for image_id in (sources["<elsewhere>"], sources["<pending>"], sources["<error>"]):
            f.offer_update(image_id, account_id=ACCOUNT)
        f.offer_update(sources["<theirs>"], account_id="999999999999")
        f.offer_update(sources["<withdrawn>"])
        f.offer_update(sources["<withdrawn>"], offered=False)
        ws = env.client()
        before = f.images(REGION)
        for case, change, code in REFUSALS:
            request = {"Name": "golden-2", "Description": "Updated", "SourceImageId": source}
            request.update(change)
            request["SourceImageId"] = sources.get(
                request["SourceImageId"], request["SourceImageId"]
            )
            got, message = refused(ws.create_updated_workspace_image, **request)
            assert got.startswith(code), (case, got, message)
        assert f.images(REGION) == before


def test_a_missing_description_is_refused_by_the_service_too() -> None:
    # botocore refuses it before sending; without its validation the service answers
    with open_env("server") as env:
        source = offered(env)
        ws = env.client(config=Config(parameter_validation=False))
        for missing in ("Name", "Description", "SourceImageId"):
            request = {"Name": "golden-2", "Description": "Updated", "SourceImageId": source}
            del request[missing]
            code, message = refused(ws.create_updated_workspace_image, **request)
            assert code == "InvalidParameterValuesException", missing
            assert missing[0].lower() + missing[1:] in message


@pytest.mark.parametrize("mode", MODES)
def test_the_image_quota_counts_updated_images_and_is_checked_before_the_sources_state(
    mode: str,
) -> None:
    with open_env(mode, FidelityConfig(image_quota=3)) as env:
        f = env.fidelity
        source = offered(env)
        pending = f.add_image(REGION, "pending", state="PENDING")
        ws = env.client()
        update(ws, source, "golden-2")
        assert refused(ws.create_updated_workspace_image, **request(source, "golden-3"))[0] == (
            "ResourceLimitExceededException"
        )
        assert refused(ws.create_updated_workspace_image, **request(pending, "golden-3"))[0] == (
            "ResourceLimitExceededException"
        )
        # a taken name is reported before the quota
        assert refused(ws.create_updated_workspace_image, **request(source, "golden-2"))[0] == (
            "ResourceAlreadyExistsException"
        )
        # the quota is per region
        other = f.add_image(OTHER_REGION, "golden")
        f.offer_update(OTHER_REGION, other)
        update(env.client(OTHER_REGION), other, "golden-2")


def request(source: str, name: str) -> dict[str, str]:
    return {"Name": name, "Description": "Updated", "SourceImageId": source}


@pytest.mark.parametrize("mode", MODES)
def test_a_copy_does_not_inherit_its_sources_offer(mode: str) -> None:
    with open_env(mode) as env:
        source = offered(env)
        us = env.client(OTHER_REGION)
        copy_id = us.copy_workspace_image(Name="golden", SourceImageId=source, SourceRegion=REGION)[
            "ImageId"
        ]
        env.fidelity.finish_capture(OTHER_REGION, copy_id)
        assert updates(us, copy_id) == NO_UPDATE
        assert refused(us.create_updated_workspace_image, **request(copy_id, "golden-2"))[0] == (
            "OperationNotSupportedException"
        )
        assert updates(env.client(), source)["UpdateAvailable"] is True


# --- accounts -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_an_updated_image_is_the_callers_accounts_and_a_shared_source_is_refused(
    mode: str,
) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        source = offered(env)  # the base account's
        f.set_shared_accounts(REGION, source, [WORKLOAD])
        own = f.add_image(REGION, "workload-golden", account_id=WORKLOAD)
        f.offer_update(REGION, own, account_id=WORKLOAD)
        workload = client(env, assume(env, WORKLOAD))
        # the recipient sees the owner's offer on the shared image, but only the owner
        # updates it (the recipient copies it first)
        shared = workload.describe_workspace_images(ImageType="SHARED")["Images"]
        assert [(i["ImageId"], i["Updates"]["UpdateAvailable"]) for i in shared] == [(source, True)]
        code, message = refused(workload.create_updated_workspace_image, **request(source, "x"))
        assert code == "AccessDeniedException"
        assert "CopyWorkspaceImage" in message

        new = update(workload, own, "golden-2")  # a name the base account may hold too
        update(env.client(), source, "golden-2")
        image = workload.describe_workspace_images(ImageIds=[new])["Images"][0]
        assert (image["OwnerAccountId"], image["State"]) == (WORKLOAD, "PENDING")
        assert f.updated_from(REGION, new, account_id=WORKLOAD) == own
        names = [i["name"] for i in f.images(REGION, account_id=WORKLOAD)]
        assert names == ["workload-golden", "golden-2"]


# --- the network: faults, pacing, the recorder ----------------------------------------------


def test_lost_replies_faults_and_pacing_apply_to_it_and_it_counts_as_changing() -> None:
    with local_endpoint() as ep:
        env = Env(ep.fidelity, ep)
        source = offered(env)
        ws = env.client(config=NO_RETRY)
        ep.faults.fail_once(OPERATION, "throttle")
        with pytest.raises(ClientError) as err:
            update(ws, source)
        assert error_code(err) == "ThrottlingException"
        assert [i["name"] for i in ep.fidelity.images(REGION)] == ["golden"]

        ep.faults.fail_once(OPERATION, "lost_reply")
        with pytest.raises(ClientError) as err:
            update(ws, source)
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        # the service made it all the same: a retry finds the name taken
        assert [i["name"] for i in ep.fidelity.images(REGION)] == ["golden", "golden-2"]
        assert refused(ws.create_updated_workspace_image, **request(source, "golden-2"))[0] == (
            "ResourceAlreadyExistsException"
        )

        ep.faults.error_for(OPERATION, "AccessDeniedException", when=lambda q: q["Name"] == "no")
        assert refused(ws.create_updated_workspace_image, **request(source, "no"))[0] == (
            "AccessDeniedException"
        )
        assert [c.operation for c in ep.calls.changing()] == [OPERATION] * 4
        assert ep.calls.count(OPERATION, REGION, throttled=True) == 1

        ep.middleware.set_pace((0.01, 1))
        ws.describe_workspace_images()
        with pytest.raises(ClientError) as err:
            update(ws, source, "golden-3")
        assert error_code(err) == "ThrottlingException"


# --- installation and reset --------------------------------------------------------------


def test_a_moto_reset_clears_offers_and_failures() -> None:
    with local_endpoint() as ep:
        env = Env(ep.fidelity, ep)
        source = offered(env)
        ep.fidelity.fail_updates(REGION)
        reset_moto(ep.url)
        assert ep.fidelity.images(REGION) == []
        again = ep.fidelity.add_image(REGION, "golden")
        ws = env.client()
        assert updates(ws, again) == NO_UPDATE
        assert refused(ws.create_updated_workspace_image, **request(again, "golden-2"))[0] == (
            "OperationNotSupportedException"
        )
        ep.fidelity.offer_update(REGION, again)
        new = update(ws, again)
        ep.fidelity.finish_capture(REGION, new)  # the armed failure went with the reset
        assert ep.fidelity.images(REGION)[-1]["state"] == "AVAILABLE"
        assert source != again


def test_uninstall_removes_the_operation() -> None:
    before = dict(WorkSpacesResponse.__dict__)
    with installed():
        assert "create_updated_workspace_image" in WorkSpacesResponse.__dict__
    assert dict(WorkSpacesResponse.__dict__) == before
    assert "create_updated_workspace_image" not in WorkSpacesResponse.__dict__
