"""Self-tests of reconciler/emulator/tagging.py: the Resource Groups Tagging API as the real
one answers for WorkSpaces images and bundles, in-process and over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from reconciler.emulator.moto_adapter import TaggingResponse as ResourceGroupsTaggingAPIResponse
from tests.fidelity import (
    Faults,
    FidelityConfig,
    bundle_arn,
    image_arn,
    installed,
)
from tests.fidelity_selftest.conftest import (
    ACCOUNT,
    MODES,
    NO_RETRY,
    OTHER_REGION,
    REGION,
    error_code,
    open_env,
)

OWNER_KEY = "workspaces-image-reconciler:managed"


def listed(reply: dict[str, Any]) -> dict[str, dict[str, str]]:
    """ARN -> tags of a GetResources reply."""
    return {
        m["ResourceARN"]: {t["Key"]: t["Value"] for t in m["Tags"]}
        for m in reply["ResourceTagMappingList"]
    }


def every_page(client: Any, **kwargs: Any) -> list[list[str]]:
    pages = client.get_paginator("get_resources").paginate(**kwargs)
    return [[m["ResourceARN"] for m in p["ResourceTagMappingList"]] for p in pages]


@dataclass
class _Bundle:
    """What a bundle store holds, as far as the tagging API reads it."""

    tags: list[dict[str, str]]


# --- ARNs, types, filters ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_get_resources_lists_only_tagged_images_under_their_real_arn(mode: str) -> None:
    with open_env(mode) as env:
        tagged = env.fidelity.add_image(REGION, "tagged", tags={"team": "a", OWNER_KEY: "true"})
        env.fidelity.add_image(REGION, "untagged")
        reply = env.tagging().get_resources()
        arn = f"arn:aws:workspaces:{REGION}:{ACCOUNT}:workspaceimage/{tagged}"
        assert arn == image_arn(REGION, tagged) == env.fidelity.image_arn(REGION, tagged)
        assert reply["ResourceTagMappingList"] == [
            {
                "ResourceARN": arn,
                "Tags": [{"Key": "team", "Value": "a"}, {"Key": OWNER_KEY, "Value": "true"}],
            }
        ]
        assert reply["PaginationToken"] == ""


@pytest.mark.parametrize("mode", MODES)
def test_each_type_filter_selects_its_workspaces_resources(mode: str) -> None:
    with open_env(mode) as env:
        image = env.fidelity.add_image(REGION, "img", tags={"k": "v"})
        env.fidelity.add_workspace(REGION, "ws-0a1b2c3d4")
        env.client().create_tags(ResourceId="ws-0a1b2c3d4", Tags=[{"Key": "k", "Value": "w"}])
        workspace = f"arn:aws:workspaces:{REGION}:{ACCOUNT}:workspace/ws-0a1b2c3d4"
        client = env.tagging()

        def of(*types: str) -> set[str]:
            return set(listed(client.get_resources(ResourceTypeFilters=list(types))))

        assert of("workspaces") == {image_arn(REGION, image), workspace}
        assert of("workspaces:workspaceimage") == {image_arn(REGION, image)}
        assert of("workspaces:workspacebundle") == set()
        assert of("workspaces:workspace") == {workspace}
        assert of("ec2:instance") == set()
        # a bundle store, as the bundle implementation will add one
        bundles = {
            "wsb-0a1b2c3d4": _Bundle([{"Key": "k", "Value": "b"}]),
            "wsb-untagged0": _Bundle([]),
        }
        setattr(env.fidelity.backend(REGION), "workspace_bundles", bundles)  # noqa: B010
        bundle = bundle_arn(REGION, "wsb-0a1b2c3d4")
        assert bundle.endswith(f"{REGION}:{ACCOUNT}:workspacebundle/wsb-0a1b2c3d4")
        assert of("workspaces:workspacebundle") == {bundle}
        assert of("workspaces:workspaceimage", "workspaces:workspacebundle") == {
            image_arn(REGION, image),
            bundle,
        }
        assert of("workspaces") == {image_arn(REGION, image), workspace, bundle}
        assert listed(client.get_resources(ResourceARNList=[bundle])) == {bundle: {"k": "b"}}


@pytest.mark.parametrize("mode", MODES)
def test_tag_filter_on_the_ownership_key_with_and_without_values(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        owned = f.add_image(REGION, "owned", tags={OWNER_KEY: "true", "team": "a"})
        off = f.add_image(REGION, "off", tags={OWNER_KEY: "false"})
        f.add_image(REGION, "other", tags={"team": "a"})
        f.add_image(REGION, "bare")
        client = env.tagging()
        by_key = listed(client.get_resources(TagFilters=[{"Key": OWNER_KEY}]))
        assert set(by_key) == {image_arn(REGION, owned), image_arn(REGION, off)}
        by_value = client.get_resources(
            TagFilters=[{"Key": OWNER_KEY, "Values": ["true"]}],
            ResourceTypeFilters=["workspaces:workspaceimage"],
        )
        assert listed(by_value) == {image_arn(REGION, owned): {OWNER_KEY: "true", "team": "a"}}
        both = client.get_resources(
            TagFilters=[{"Key": OWNER_KEY, "Values": ["true", "false"]}, {"Key": "team"}]
        )
        assert set(listed(both)) == {image_arn(REGION, owned)}


# --- ResourceARNList ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_arn_list_answers_up_to_100_in_one_unpaged_call(mode: str) -> None:
    config = FidelityConfig(tagging_page_size=3, image_quota=200)
    with open_env(mode, config) as env:
        ids = [
            env.fidelity.add_image(REGION, f"img-{i:03d}", tags={"n": str(i)}) for i in range(99)
        ]
        untagged = env.fidelity.add_image(REGION, "untagged")
        arns = [image_arn(REGION, i) for i in ids] + [image_arn(REGION, untagged)]
        client = env.tagging()
        reply = client.get_resources(ResourceARNList=arns)
        assert len(arns) == 100
        assert list(listed(reply)) == arns[:99]  # the untagged one is absent, no paging
        assert reply["PaginationToken"] == ""
        missing = image_arn(REGION, "wsi-000000000")
        assert listed(client.get_resources(ResourceARNList=[missing, arns[0]])) == {
            arns[0]: {"n": "0"}
        }
        with pytest.raises(ClientError) as err:
            client.get_resources(ResourceARNList=[*arns, missing])
        assert error_code(err) == "InvalidParameterException"


@pytest.mark.parametrize(
    "extra",
    [
        {"TagFilters": [{"Key": OWNER_KEY}]},
        {"ResourceTypeFilters": ["workspaces:workspaceimage"]},
        {"ResourcesPerPage": 10},
        {"PaginationToken": "abc"},
    ],
    ids=["TagFilters", "ResourceTypeFilters", "ResourcesPerPage", "PaginationToken"],
)
def test_arn_list_with_a_filter_or_paging_parameter_is_refused(extra: dict[str, Any]) -> None:
    with open_env("mock_aws") as env:
        image = env.fidelity.add_image(REGION, "img", tags={OWNER_KEY: "true"})
        with pytest.raises(ClientError) as err:
            env.tagging().get_resources(ResourceARNList=[image_arn(REGION, image)], **extra)
        assert error_code(err) == "InvalidParameterException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# --- paging ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_filters_page_at_the_configured_size_with_pagination_token(mode: str) -> None:
    with open_env(mode, FidelityConfig(tagging_page_size=3)) as env:
        ids = [
            env.fidelity.add_image(REGION, f"img-{i}", tags={OWNER_KEY: "true"}) for i in range(7)
        ]
        client = env.tagging()
        pages = every_page(client, TagFilters=[{"Key": OWNER_KEY}])
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [a for p in pages for a in p] == [image_arn(REGION, i) for i in ids]
        typed = every_page(client, ResourceTypeFilters=["workspaces:workspaceimage"])
        assert [len(p) for p in typed] == [3, 3, 1]
        first = client.get_resources(ResourceTypeFilters=["workspaces"], ResourcesPerPage=2)
        assert len(first["ResourceTagMappingList"]) == 2
        with pytest.raises(ClientError) as err:
            client.get_resources(PaginationToken="not-a-token")
        assert error_code(err) == "InvalidParameterException"
        with pytest.raises(ClientError) as err:
            client.get_resources(ResourcesPerPage=101)
        assert error_code(err) == "InvalidParameterException"


def test_default_page_is_100_resources() -> None:
    with open_env("mock_aws", FidelityConfig(image_quota=200)) as env:
        for i in range(105):
            env.fidelity.add_image(REGION, f"img-{i:03d}", tags={OWNER_KEY: "true"})
        pages = every_page(env.tagging(), TagFilters=[{"Key": OWNER_KEY}])
        assert [len(p) for p in pages] == [100, 5]


# --- one tag store -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_tags_written_through_either_api_are_one_store(mode: str) -> None:
    with open_env(mode) as env:
        image = env.fidelity.add_image(REGION, "img")
        arn = image_arn(REGION, image)
        workspaces, tagging = env.client(), env.tagging()
        assert listed(tagging.get_resources(ResourceARNList=[arn])) == {}
        workspaces.create_tags(ResourceId=image, Tags=[{"Key": OWNER_KEY, "Value": "true"}])
        assert listed(tagging.get_resources(ResourceARNList=[arn])) == {arn: {OWNER_KEY: "true"}}
        failed = tagging.tag_resources(ResourceARNList=[arn], Tags={"team": "a", OWNER_KEY: "x"})
        assert failed["FailedResourcesMap"] == {}
        assert env.fidelity.image_tags(REGION, image) == {OWNER_KEY: "x", "team": "a"}
        described = workspaces.describe_tags(ResourceId=image)["TagList"]
        assert {t["Key"]: t["Value"] for t in described} == {OWNER_KEY: "x", "team": "a"}
        tagging.untag_resources(ResourceARNList=[arn], TagKeys=["team"])
        assert env.fidelity.image_tags(REGION, image) == {OWNER_KEY: "x"}
        workspaces.delete_tags(ResourceId=image, TagKeys=[OWNER_KEY])
        assert "TagList" not in workspaces.describe_tags(ResourceId=image)
        # documented: once tagged, a resource stays listed (with no tags) unless filtered
        assert listed(tagging.get_resources(ResourceARNList=[arn])) == {arn: {}}
        assert listed(tagging.get_resources()) == {arn: {}}
        assert listed(tagging.get_resources(TagFilters=[{"Key": OWNER_KEY}])) == {}
        missing = image_arn(REGION, "wsi-000000000")
        reply = tagging.tag_resources(ResourceARNList=[missing], Tags={"a": "b"})
        assert reply["FailedResourcesMap"][missing]["ErrorCode"] == "InvalidParameterException"
        too_many = {f"k{i}": "v" for i in range(51)}
        reply = tagging.tag_resources(ResourceARNList=[arn], Tags=too_many)
        assert arn in reply["FailedResourcesMap"]
        assert env.fidelity.image_tags(REGION, image) == {}


@pytest.mark.parametrize("mode", MODES)
def test_each_region_answers_only_its_own_resources(mode: str) -> None:
    with open_env(mode) as env:
        here = env.fidelity.add_image(REGION, "img", tags={OWNER_KEY: "true"})
        there = env.fidelity.add_image(OTHER_REGION, "img", tags={OWNER_KEY: "true"})
        local, remote = env.tagging(REGION), env.tagging(OTHER_REGION)
        assert set(listed(local.get_resources())) == {image_arn(REGION, here)}
        assert set(listed(remote.get_resources())) == {image_arn(OTHER_REGION, there)}
        both = [image_arn(REGION, here), image_arn(OTHER_REGION, there)]
        assert set(listed(local.get_resources(ResourceARNList=both))) == {both[0]}
        reply = local.tag_resources(ResourceARNList=[both[1]], Tags={"a": "b"})
        assert set(reply["FailedResourcesMap"]) == {both[1]}
        assert env.fidelity.image_tags(OTHER_REGION, there) == {OWNER_KEY: "true"}


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_deny_tagging_answers_access_denied_everywhere_or_in_one_region(mode: str) -> None:
    with open_env(mode) as env:
        image = env.fidelity.add_image(REGION, "img", tags={OWNER_KEY: "true"})
        client, other = env.tagging(config=NO_RETRY), env.tagging(OTHER_REGION, NO_RETRY)
        env.fidelity.deny_tagging()
        for each in (client, other):
            with pytest.raises(ClientError) as err:
                each.get_resources(TagFilters=[{"Key": OWNER_KEY}])
            assert error_code(err) == "AccessDeniedException"
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert env.client().describe_tags(ResourceId=image)["TagList"]
        env.fidelity.deny_tagging(False)
        env.fidelity.deny_tagging(region=OTHER_REGION)
        assert set(listed(client.get_resources())) == {image_arn(REGION, image)}
        with pytest.raises(ClientError) as err:
            other.get_resources()
        assert error_code(err) == "AccessDeniedException"
        env.fidelity.deny_tagging(False, region=OTHER_REGION)
        assert other.get_resources()["ResourceTagMappingList"] == []


@pytest.mark.parametrize("mode", MODES)
def test_a_disabled_opt_in_region_answers_unrecognized_client(mode: str) -> None:
    with open_env(mode) as env:
        env.fidelity.add_image(REGION, "img", tags={OWNER_KEY: "true"})
        env.fidelity.disable_region(OTHER_REGION)
        calls: list[Callable[[], Any]] = [
            lambda: env.tagging(OTHER_REGION, NO_RETRY).get_resources(),
            lambda: env.client(OTHER_REGION, NO_RETRY).describe_workspace_images(),
        ]
        for call in calls:
            with pytest.raises(ClientError) as err:
                call()
            assert error_code(err) == "UnrecognizedClientException"
        assert len(env.tagging().get_resources()["ResourceTagMappingList"]) == 1
        env.fidelity.disable_region(OTHER_REGION, workspaces=False)
        assert env.client(OTHER_REGION).describe_workspace_images()["Images"] == []
        with pytest.raises(ClientError) as err:
            env.tagging(OTHER_REGION, NO_RETRY).get_resources()
        assert error_code(err) == "UnrecognizedClientException"
        env.fidelity.disable_region(OTHER_REGION, False)
        assert env.tagging(OTHER_REGION).get_resources()["ResourceTagMappingList"] == []


# --- eventual consistency ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_stale_mode_serves_old_tags_while_describe_tags_is_current(mode: str) -> None:
    with open_env(mode) as env:
        old = env.fidelity.add_image(REGION, "old", tags={OWNER_KEY: "true", "v": "1"})
        arn = image_arn(REGION, old)
        workspaces, tagging = env.client(), env.tagging()
        time.sleep(2.0)
        workspaces.create_tags(ResourceId=old, Tags=[{"Key": "v", "Value": "2"}])
        tagging.tag_resources(ResourceARNList=[arn], Tags={"w": "x"})
        new = env.fidelity.add_image(REGION, "new", tags={OWNER_KEY: "true"})
        env.fidelity.stale_tags(1.5)
        assert listed(tagging.get_resources(TagFilters=[{"Key": OWNER_KEY}])) == {
            arn: {OWNER_KEY: "true", "v": "1"}
        }
        assert listed(tagging.get_resources(ResourceARNList=[arn, image_arn(REGION, new)])) == {
            arn: {OWNER_KEY: "true", "v": "1"}
        }
        described = workspaces.describe_tags(ResourceId=old)["TagList"]
        assert {t["Key"]: t["Value"] for t in described} == {OWNER_KEY: "true", "v": "2", "w": "x"}
        time.sleep(1.6)
        assert listed(tagging.get_resources(TagFilters=[{"Key": OWNER_KEY}])) == {
            arn: {OWNER_KEY: "true", "v": "2", "w": "x"},
            image_arn(REGION, new): {OWNER_KEY: "true"},
        }
        env.fidelity.stale_tags(0)
        workspaces.delete_tags(ResourceId=old, TagKeys=["w"])
        assert listed(tagging.get_resources(ResourceARNList=[arn])) == {
            arn: {OWNER_KEY: "true", "v": "2"}
        }


# --- the middleware: recorder, faults, pace ----------------------------------------------


def test_recorder_counts_get_resources_and_faults_can_target_it() -> None:
    with open_env("server") as env:
        env.fidelity.add_image(REGION, "img", tags={OWNER_KEY: "true"})
        calls = env.ep.calls
        tagging = env.tagging(config=NO_RETRY)
        tagging.get_resources(TagFilters=[{"Key": OWNER_KEY}])
        env.tagging(OTHER_REGION).get_resources()
        env.client().describe_workspace_images()
        assert calls.count("GetResources") == 2
        assert calls.count("GetResources", REGION) == 1
        assert calls.count(api="tagging") == 2
        assert calls.count(api="workspaces") == 1
        assert calls.changing() == []
        env.ep.faults.fail_once("*", "throttle")  # "*" is WorkSpaces operations only
        tagging.get_resources()
        env.ep.faults.fail_once("GetResources", "throttle")
        with pytest.raises(ClientError) as err:
            tagging.get_resources()
        assert error_code(err) == "ThrottledException"
        env.ep.faults.error_for("tagging:*", "AccessDeniedException", times=1)
        with pytest.raises(ClientError) as err:
            tagging.get_resources()
        assert error_code(err) == "AccessDeniedException"
        assert calls.count("GetResources", throttled=True) == 1
        with pytest.raises(ClientError) as err:
            env.client(config=NO_RETRY).describe_workspace_images()
        assert error_code(err) == "ThrottlingException"


def test_tagging_pace_is_its_own_bucket_per_region() -> None:
    with open_env("server", pace=(100, 100), tagging_pace=(0.2, 2)) as env:
        tagging = env.tagging(config=NO_RETRY)
        tagging.get_resources()
        tagging.get_resources()
        with pytest.raises(ClientError) as err:
            tagging.get_resources()
        assert error_code(err) == "ThrottledException"
        env.tagging(OTHER_REGION, NO_RETRY).get_resources()  # another region's bucket
        for _ in range(5):
            env.client(config=NO_RETRY).describe_workspace_images()
        assert env.ep.calls.throttled() == 1
        assert env.ep.calls.count("GetResources", REGION, throttled=True) == 1
        env.ep.middleware.set_tagging_pace(None)
        for _ in range(5):
            tagging.get_resources()
        assert env.ep.calls.throttled() == 1


def test_without_tagging_pace_get_resources_is_never_throttled() -> None:
    with open_env("server", pace=(0.2, 1)) as env:
        for _ in range(10):
            env.tagging(config=NO_RETRY).get_resources()
        assert env.ep.calls.throttled() == 0
        env.client(config=NO_RETRY).describe_workspace_images()
        with pytest.raises(ClientError):
            env.client(config=NO_RETRY).describe_workspace_images()


def test_installed_restores_moto_tagging_api_on_exit() -> None:
    before = {
        n: ResourceGroupsTaggingAPIResponse.__dict__.get(n)
        for n in ("get_resources", "tag_resources", "untag_resources")
    }
    with mock_aws(), installed():
        assert (
            ResourceGroupsTaggingAPIResponse.__dict__["get_resources"]
            is not before["get_resources"]
        )
    after = {n: ResourceGroupsTaggingAPIResponse.__dict__.get(n) for n in before}
    assert after == before


def test_tagging_faults_leave_the_workspaces_fault_sequence_unchanged() -> None:
    def workspaces_kinds(interleave: bool) -> list[str | None]:
        faults = Faults(seed=7).set("*", throttle_rate=0.5).set("tagging:*", lost_reply_rate=0.5)
        kinds: list[str | None] = []
        for _ in range(20):
            if interleave:
                faults.decide("GetResources", {}, tagging=True)
            decision = faults.decide("DescribeWorkspaceImages", {})
            kinds.append(decision.kind if decision else None)
        return kinds

    assert workspaces_kinds(interleave=False) == workspaces_kinds(interleave=True)
    faults = Faults(seed=7).set("tagging:*", throttle_rate=1.0)
    decision = faults.decide("GetResources", {}, tagging=True)
    assert decision is not None
    assert decision.kind == "throttle"
    assert faults.decide("DescribeTags", {}) is None
