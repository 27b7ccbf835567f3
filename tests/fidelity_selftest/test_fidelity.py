"""Self-tests of reconciler/emulator: each real-service behaviour, in-process and over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from moto import mock_aws

from reconciler.emulator.moto_adapter import Response as WorkSpacesResponse
from tests.fidelity import (
    Faults,
    FidelityConfig,
    installed,
    local_endpoint,
)
from tests.fidelity_selftest.conftest import (
    MODES,
    NO_RETRY,
    OTHER_REGION,
    REGION,
    Env,
    error_code,
    open_env,
)

WS = "ws-0a1b2c3d4"


# --- DescribeWorkspaceImages / DescribeWorkspaces paging --------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_describe_workspace_images_pages_60_images_as_25_25_10(mode: str) -> None:
    with open_env(mode) as env:
        for i in range(60):
            env.fidelity.add_image(REGION, f"img-{i:02d}")
        client = env.client()
        sizes: list[int] = []
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"NextToken": token} if token else {}
            page = client.describe_workspace_images(**kwargs)
            sizes.append(len(page["Images"]))
            names += [i["Name"] for i in page["Images"]]
            token = page.get("NextToken")
            if not token:
                break
        assert sizes == [25, 25, 10]
        assert names == [f"img-{i:02d}" for i in range(60)]
        pages = client.get_paginator("describe_workspace_images").paginate(ImageType="OWNED")
        assert [len(p["Images"]) for p in pages] == [25, 25, 10]


@pytest.mark.parametrize("mode", MODES)
def test_describe_workspace_images_honours_ids_type_and_max_results(mode: str) -> None:
    with open_env(mode) as env:
        ids = [env.fidelity.add_image(REGION, f"img-{i}") for i in range(30)]
        client = env.client()
        picked = client.describe_workspace_images(ImageIds=ids[3:5])["Images"]
        assert [i["ImageId"] for i in picked] == ids[3:5]
        assert client.describe_workspace_images(ImageType="SHARED")["Images"] == []
        first = client.describe_workspace_images(MaxResults=10)
        assert len(first["Images"]) == 10
        assert first["NextToken"]
        with pytest.raises(ClientError):
            client.describe_workspace_images(MaxResults=26)
        with pytest.raises(ClientError) as err:
            client.describe_workspace_images(NextToken="not-a-token")
        assert error_code(err) == "InvalidParameterValuesException"
        image = first["Images"][0]
        assert "ErrorCode" not in image
        assert image["State"] == "AVAILABLE"
        assert env.client(OTHER_REGION).describe_workspace_images()["Images"] == []


@pytest.mark.parametrize("mode", MODES)
def test_describe_workspaces_pages_at_25_and_refuses_26_ids(mode: str) -> None:
    with open_env(mode) as env:
        ids = [env.fidelity.add_workspace(REGION, f"ws-{i:09d}") for i in range(30)]
        client = env.client()
        first = client.describe_workspaces()
        second = client.describe_workspaces(NextToken=first["NextToken"])
        assert (len(first["Workspaces"]), len(second["Workspaces"])) == (25, 5)
        assert "NextToken" not in second
        assert len(client.describe_workspaces(Limit=7)["Workspaces"]) == 7
        with pytest.raises(ClientError) as err:
            client.describe_workspaces(WorkspaceIds=ids[:26])
        assert error_code(err) == "InvalidParameterValuesException"
        assert len(client.describe_workspaces(WorkspaceIds=ids[:25])["Workspaces"]) == 25


# --- tags --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_create_tags_overwrites_and_delete_tags_removes_on_image(mode: str) -> None:
    with open_env(mode) as env:
        image_id = env.fidelity.add_image(REGION, "img", tags={"team": "a", "keep": "1"})
        client = env.client()
        client.create_tags(
            ResourceId=image_id,
            Tags=[{"Key": "team", "Value": "b"}, {"Key": "new", "Value": "x"}],
        )
        assert env.fidelity.image_tags(REGION, image_id) == {"team": "b", "keep": "1", "new": "x"}
        client.delete_tags(ResourceId=image_id, TagKeys=["team", "absent"])
        listed = client.describe_tags(ResourceId=image_id)["TagList"]
        assert {t["Key"]: t["Value"] for t in listed} == {"keep": "1", "new": "x"}
        with pytest.raises(ClientError) as err:
            client.create_tags(
                ResourceId=image_id, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(49)]
            )
        assert error_code(err) == "ResourceLimitExceededException"


@pytest.mark.parametrize("mode", MODES)
def test_tags_on_workspace_are_overwritten_and_deleted(mode: str) -> None:
    with open_env(mode) as env:
        env.fidelity.add_workspace(REGION, WS)
        client = env.client()
        client.create_tags(ResourceId=WS, Tags=[{"Key": "a", "Value": "1"}])
        client.create_tags(ResourceId=WS, Tags=[{"Key": "a", "Value": "2"}])
        assert client.describe_tags(ResourceId=WS)["TagList"] == [{"Key": "a", "Value": "2"}]
        client.delete_tags(ResourceId=WS, TagKeys=["a"])
        assert "TagList" not in client.describe_tags(ResourceId=WS)


@pytest.mark.parametrize("mode", MODES)
def test_describe_tags_omits_tag_list_when_empty_and_unknown_id_is_not_found(mode: str) -> None:
    with open_env(mode) as env:
        image_id = env.fidelity.add_image(REGION, "img")
        client = env.client()
        assert "TagList" not in client.describe_tags(ResourceId=image_id)
        calls: list[tuple[str, dict[str, Any]]] = [
            ("describe_tags", {"ResourceId": "wsi-000000000"}),
            ("create_tags", {"ResourceId": "ws-000000000", "Tags": [{"Key": "k"}]}),
            ("delete_tags", {"ResourceId": "d-0000000000", "TagKeys": ["k"]}),
        ]
        for method, kwargs in calls:
            with pytest.raises(ClientError) as err:
                getattr(client, method)(**kwargs)
            assert error_code(err) == "ResourceNotFoundException"


# --- CreateWorkspaceImage lifecycle ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_capture_is_pending_until_finished_and_suspends_its_source(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        f.add_workspace(REGION, WS)
        client = env.client()
        created = client.create_workspace_image(
            Name="img-1", Description="d", WorkspaceId=WS, Tags=[{"Key": "t", "Value": "v"}]
        )
        assert created["State"] == "PENDING"
        image_id = created["ImageId"]
        assert f.workspace_state(REGION, WS) == "SUSPENDED"
        described = client.describe_workspaces(WorkspaceIds=[WS])["Workspaces"][0]
        assert described["State"] == "SUSPENDED"
        with pytest.raises(ClientError) as err:
            client.create_workspace_image(Name="img-2", Description="d", WorkspaceId=WS)
        assert error_code(err) == "InvalidResourceStateException"
        assert "SUSPENDED" in str(err.value)
        assert f.image_tags(REGION, image_id) == {"t": "v"}

        f.finish_capture(image_id, state="AVAILABLE")
        image = client.describe_workspace_images(ImageIds=[image_id])["Images"][0]
        assert image["State"] == "AVAILABLE"
        assert f.workspace_state(REGION, WS) == "AVAILABLE"

        second = client.create_workspace_image(Name="img-2", Description="d", WorkspaceId=WS)
        f.finish_capture(
            REGION,
            second["ImageId"],
            state="ERROR",
            error_code="E1",
            error_message="capture failed",
        )
        image = client.describe_workspace_images(ImageIds=[second["ImageId"]])["Images"][0]
        assert (image["State"], image["ErrorCode"], image["ErrorMessage"]) == (
            "ERROR",
            "E1",
            "capture failed",
        )
        assert f.workspace_state(REGION, WS) == "AVAILABLE"


@pytest.mark.parametrize("mode", MODES)
def test_capture_seconds_make_the_image_available_lazily(mode: str) -> None:
    with open_env(mode, FidelityConfig(capture_seconds=0.2)) as env:
        env.fidelity.add_workspace(REGION, WS)
        client = env.client()
        image_id = client.create_workspace_image(Name="i", Description="d", WorkspaceId=WS)[
            "ImageId"
        ]
        assert client.describe_workspace_images()["Images"][0]["State"] == "PENDING"
        time.sleep(0.3)
        assert client.describe_workspace_images()["Images"][0]["State"] == "AVAILABLE"
        assert env.fidelity.images(REGION)[0]["id"] == image_id
        assert client.describe_workspaces()["Workspaces"][0]["State"] == "AVAILABLE"


@pytest.mark.parametrize("mode", MODES)
def test_create_refused_for_unavailable_or_missing_source_and_taken_name(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        f.add_workspace(REGION, WS)
        f.add_workspace(OTHER_REGION, WS)
        f.add_image(REGION, "taken")
        client = env.client()
        f.set_workspace_state(REGION, WS, "STOPPED")
        with pytest.raises(ClientError) as err:
            client.create_workspace_image(Name="n", Description="d", WorkspaceId=WS)
        assert error_code(err) == "InvalidResourceStateException"
        assert "STOPPED" in str(err.value)
        with pytest.raises(ClientError) as err:
            client.create_workspace_image(Name="n", Description="d", WorkspaceId="ws-missing00")
        assert error_code(err) == "ResourceNotFoundException"
        with pytest.raises(ClientError) as err:
            client.create_workspace_image(Name="taken", Description="d", WorkspaceId=WS)
        assert error_code(err) == "ResourceAlreadyExistsException"
        other = env.client(OTHER_REGION)
        other.create_workspace_image(Name="taken", Description="d", WorkspaceId=WS)
        assert [i["name"] for i in f.images(OTHER_REGION)] == ["taken"]


@pytest.mark.parametrize("mode", MODES)
def test_image_quota_refuses_create_beyond_limit(mode: str) -> None:
    with open_env(mode, FidelityConfig(image_quota=3)) as env:
        env.fidelity.add_workspace(REGION, WS)
        for i in range(3):
            env.fidelity.add_image(REGION, f"img-{i}")
        with pytest.raises(ClientError) as err:
            env.client().create_workspace_image(Name="x", Description="d", WorkspaceId=WS)
        assert error_code(err) == "ResourceLimitExceededException"
        env.fidelity.add_workspace(OTHER_REGION, WS)
        env.client(OTHER_REGION).create_workspace_image(Name="x", Description="d", WorkspaceId=WS)


# --- DeleteWorkspaceImage ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_delete_workspace_image_refusals_and_idempotence(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        client = env.client()
        pending = f.add_image(REGION, "pending", state="PENDING")
        in_bundle = f.add_image(REGION, "bundled")
        shared = f.add_image(REGION, "shared")
        plain = f.add_image(REGION, "plain")
        f.associate_bundle(REGION, in_bundle)
        client.update_workspace_image_permission(
            ImageId=shared, AllowCopyImage=True, SharedAccountId="111122223333"
        )
        expected = {
            pending: "InvalidResourceStateException",
            in_bundle: "ResourceAssociatedException",
            shared: "InvalidResourceStateException",
        }
        for image_id, code in expected.items():
            with pytest.raises(ClientError) as err:
                client.delete_workspace_image(ImageId=image_id)
            assert error_code(err) == code
        with pytest.raises(ClientError) as err:
            client.delete_workspace_image(ImageId=shared)
        assert "shared" in str(err.value)
        client.delete_workspace_image(ImageId=plain)
        client.delete_workspace_image(ImageId=plain)  # unknown id: succeeds
        assert sorted(i["name"] for i in f.images(REGION)) == ["bundled", "pending", "shared"]


# --- per account and region --------------------------------------------------------------


def test_hooks_keep_accounts_and_regions_apart() -> None:
    with mock_aws(), installed() as f:
        f.add_image(REGION, "a", account_id="111111111111")
        f.add_image(OTHER_REGION, "b")
        assert f.images(REGION) == []
        assert [i["name"] for i in f.images(REGION, account_id="111111111111")] == ["a"]
        assert [i["name"] for i in f.images(OTHER_REGION)] == ["b"]


def test_uninstall_restores_moto_exactly() -> None:
    before = dict(WorkSpacesResponse.__dict__)
    with installed() as f:
        assert "delete_workspace_image" in WorkSpacesResponse.__dict__
        with pytest.raises(RuntimeError), installed():
            pass
        assert f.config == FidelityConfig()
    assert dict(WorkSpacesResponse.__dict__) == before


# --- middleware: pacing, faults, recorder ------------------------------------------------


def test_pacing_throttles_beyond_the_burst() -> None:
    with local_endpoint(pace=(2, 5)) as ep:
        client = Env(ep.fidelity, ep).client(config=NO_RETRY)
        codes: list[str] = []
        for _ in range(8):
            try:
                client.describe_workspace_images()
                codes.append("ok")
            except ClientError as err:
                codes.append(err.response["Error"]["Code"])
        assert codes[:5] == ["ok"] * 5
        # 8 quick calls refill well under one token at 2/s: 3 throttled, 2 on a slow box
        assert codes[5:].count("ThrottlingException") >= 2
        assert set(codes[5:]) <= {"ok", "ThrottlingException"}
        assert ep.calls.throttled(REGION) == codes.count("ThrottlingException")
        other = Env(ep.fidelity, ep).client(OTHER_REGION, config=NO_RETRY)
        other.describe_workspace_images()  # its own bucket
        time.sleep(0.55)
        client.describe_workspace_images()  # refilled at 2 per second


def test_lost_reply_runs_the_call_but_the_client_sees_a_500() -> None:
    with local_endpoint() as ep:
        ep.fidelity.add_workspace(REGION, WS)
        ep.faults.fail_once("CreateWorkspaceImage", "lost_reply")
        client = Env(ep.fidelity, ep).client(config=NO_RETRY)
        with pytest.raises(ClientError) as err:
            client.create_workspace_image(Name="lost", Description="d", WorkspaceId=WS)
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert [i["name"] for i in ep.fidelity.images(REGION)] == ["lost"]


def test_error_before_does_not_run_the_call() -> None:
    with local_endpoint() as ep:
        ep.fidelity.add_workspace(REGION, WS)
        ep.faults.fail_once("CreateWorkspaceImage", "error_before")
        client = Env(ep.fidelity, ep).client(config=NO_RETRY)
        with pytest.raises(ClientError) as err:
            client.create_workspace_image(Name="x", Description="d", WorkspaceId=WS)
        assert error_code(err) == "InternalServerError"
        assert ep.fidelity.images(REGION) == []


def test_connection_reset_is_a_connection_error_for_the_client() -> None:
    with local_endpoint() as ep:
        ep.fidelity.add_workspace(REGION, WS)
        client = Env(ep.fidelity, ep).client(config=NO_RETRY)
        ep.faults.fail_once("CreateWorkspaceImage", "reset")
        with pytest.raises(ConnectionClosedError):
            client.create_workspace_image(Name="r1", Description="d", WorkspaceId=WS)
        assert ep.fidelity.images(REGION) == []
        ep.faults.fail_once("CreateWorkspaceImage", "reset_after")
        with pytest.raises(ConnectionClosedError):
            client.create_workspace_image(Name="r2", Description="d", WorkspaceId=WS)
        assert [i["name"] for i in ep.fidelity.images(REGION)] == ["r2"]
        assert client.describe_workspace_images()["Images"][0]["Name"] == "r2"
        assert ep.calls.count("CreateWorkspaceImage") == 2


def test_slow_reply_exceeds_the_client_read_timeout() -> None:
    with local_endpoint() as ep:
        ep.fidelity.add_workspace(REGION, WS)
        ep.faults.fail_once("CreateWorkspaceImage", "slow", seconds=1.0)
        config = Config(retries={"total_max_attempts": 1}, read_timeout=0.3)
        client = Env(ep.fidelity, ep).client(config=config)
        with pytest.raises(ReadTimeoutError):
            client.create_workspace_image(Name="slow", Description="d", WorkspaceId=WS)
        assert [i["name"] for i in ep.fidelity.images(REGION)] == ["slow"]


def test_latency_is_added_to_each_call() -> None:
    with local_endpoint(latency=0.2) as ep:
        client = Env(ep.fidelity, ep).client()
        start = time.monotonic()
        client.describe_workspace_images()
        assert time.monotonic() - start >= 0.2


def test_error_for_answers_a_chosen_code_to_matching_requests() -> None:
    with local_endpoint() as ep:
        ep.fidelity.add_workspace(REGION, WS)
        ep.faults.error_for(
            "CreateWorkspaceImage", "AccessDeniedException", when=lambda b: b["Name"] == "x"
        )
        client = Env(ep.fidelity, ep).client(config=NO_RETRY)
        with pytest.raises(ClientError) as err:
            client.create_workspace_image(Name="x", Description="d", WorkspaceId=WS)
        assert error_code(err) == "AccessDeniedException"
        client.create_workspace_image(Name="y", Description="d", WorkspaceId=WS)
        assert [i["name"] for i in ep.fidelity.images(REGION)] == ["y"]


def test_random_faults_are_reproducible_with_a_seed() -> None:
    def run(seed: int) -> list[str | None]:
        faults = Faults(seed).set("*", throttle_rate=0.3).set("DeleteTags", lost_reply_rate=0.5)
        ops = ["DescribeTags", "DeleteTags"] * 50
        return [d.kind if (d := faults.decide(op, {})) else None for op in ops]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert {"throttle", "lost_reply", None} == set(first)


def test_random_throttling_through_the_endpoint() -> None:
    with local_endpoint(faults=Faults(1).set("*", throttle_rate=1.0)) as ep:
        client = Env(ep.fidelity, ep).client(config=NO_RETRY)
        with pytest.raises(ClientError) as err:
            client.describe_workspace_images()
        assert error_code(err) == "ThrottlingException"
        ep.faults.clear()
        client.describe_workspace_images()
        assert ep.calls.count(throttled=True) == 1


def test_recorder_counts_calls_by_operation_region_and_change() -> None:
    with local_endpoint() as ep:
        ep.fidelity.add_workspace(REGION, WS)
        eu = Env(ep.fidelity, ep).client(REGION)
        us = Env(ep.fidelity, ep).client(OTHER_REGION)
        eu.describe_workspace_images()
        eu.create_workspace_image(Name="n", Description="d", WorkspaceId=WS)
        us.describe_workspace_images()
        us.describe_workspaces()
        assert ep.calls.count() == 4
        assert ep.calls.count(region=OTHER_REGION) == 2
        assert ep.calls.count("DescribeWorkspaceImages") == 2
        assert ep.calls.by_operation(REGION) == {
            "DescribeWorkspaceImages": 1,
            "CreateWorkspaceImage": 1,
        }
        assert [(c.region, c.operation, c.status) for c in ep.calls.changing()] == [
            (REGION, "CreateWorkspaceImage", 200)
        ]
        ep.calls.clear()
        assert ep.calls.count() == 0
