"""Self-tests of reconciler/emulator/lifecycle.py: copies, sharing and bundles as the real
WorkSpaces service answers them, in-process and over HTTP."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import boto3.session
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from reconciler.emulator.moto_adapter import Response as WorkSpacesResponse
from tests.fidelity import (
    BUNDLE_IN_USE_BY_IMAGE,
    PUBLIC_OWNER,
    FidelityConfig,
    bundle_arn,
    compute_types,
    installed,
    local_endpoint,
    public_bundles,
    reset_moto,
)
from tests.fidelity_selftest.conftest import (
    ACCOUNT,
    MODES,
    OTHER_REGION,
    REGION,
    Env,
    error_code,
    open_env,
)

PARTNER = "111122223333"


def refused(call: Any, **kwargs: Any) -> tuple[str, str]:
    """(error code, message) of a call that must fail with an AWS error (HTTP 400)."""
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error_code(err), str(err.value.response["Error"]["Message"])


def bundle_request(image_id: str, name: str = "finance-standard", **extra: Any) -> dict[str, Any]:
    return {
        "BundleName": name,
        "BundleDescription": "Finance standard desktop",
        "ImageId": image_id,
        "ComputeType": {"Name": "STANDARD"},
        "UserStorage": {"Capacity": "50"},
        **extra,
    }


def without_metadata(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k != "ResponseMetadata"}


# --- CopyWorkspaceImage ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_copy_is_pending_then_available_with_its_own_tags_and_the_source_description(
    mode: str,
) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        source = f.add_image(REGION, "golden", description="Golden desktop", tags={"src": "1"})
        us = env.client(OTHER_REGION)
        reply = us.copy_workspace_image(
            Name="golden",
            SourceImageId=source,
            SourceRegion=REGION,
            Tags=[{"Key": "team", "Value": "finance"}],
        )
        assert list(without_metadata(reply)) == ["ImageId"]
        copy_id = reply["ImageId"]
        assert re.fullmatch(r"wsi-[0-9a-z]{9,63}", copy_id)
        assert copy_id != source
        image = us.describe_workspace_images(ImageIds=[copy_id])["Images"][0]
        assert (image["Name"], image["State"]) == ("golden", "PENDING")
        assert (image["Description"], image["OwnerAccountId"]) == ("Golden desktop", ACCOUNT)
        assert f.image_tags(OTHER_REGION, copy_id) == {"team": "finance"}
        assert f.copied_from(OTHER_REGION, copy_id) == (REGION, source)
        assert f.copied_from(REGION, source) is None

        f.finish_capture(OTHER_REGION, copy_id)
        assert us.describe_workspace_images(ImageIds=[copy_id])["Images"][0]["State"] == (
            "AVAILABLE"
        )
        described = us.copy_workspace_image(
            Name="golden-2", Description="Own words", SourceImageId=source, SourceRegion=REGION
        )["ImageId"]
        assert us.describe_workspace_images(ImageIds=[described])["Images"][0]["Description"] == (
            "Own words"
        )
        assert f.image_tags(OTHER_REGION, described) == {}
        # the source is untouched, and one name may live in several regions
        assert [(i["name"], i["state"]) for i in f.images(REGION)] == [("golden", "AVAILABLE")]


@pytest.mark.parametrize("mode", MODES)
def test_copy_refusals_in_the_real_order(mode: str) -> None:
    with open_env(mode, FidelityConfig(image_quota=2)) as env:
        f = env.fidelity
        source = f.add_image(REGION, "golden")
        pending = f.add_image(REGION, "pending", state="PENDING")
        elsewhere = f.add_image(OTHER_REGION, "elsewhere")
        other_account = f.add_image(REGION, "theirs", account_id="999999999999")
        us = env.client(OTHER_REGION)

        def copy(name: str, image_id: str, region: str = REGION) -> tuple[str, str]:
            return refused(
                us.copy_workspace_image, Name=name, SourceImageId=image_id, SourceRegion=region
            )

        # a missing source is reported before a taken name
        assert copy("elsewhere", "wsi-000000000")[0] == "ResourceNotFoundException"
        assert copy("x", elsewhere)[0] == "ResourceNotFoundException"  # not in SourceRegion
        assert copy("x", other_account)[0] == "ResourceNotFoundException"
        assert copy("elsewhere", source)[0] == "ResourceAlreadyExistsException"
        code, message = copy("x", pending)
        assert code == "ResourceUnavailableException"
        assert "PENDING" in message
        assert copy("x", source, region="mars-north-1")[0] == "InvalidParameterValuesException"
        assert copy("bad name!", source)[0] == "ValidationException"
        us.copy_workspace_image(Name="one", SourceImageId=source, SourceRegion=REGION)
        # the destination has 2 images now: its quota
        assert copy("two", source)[0] == "ResourceLimitExceededException"
        assert copy("two", pending)[0] == "ResourceLimitExceededException"
        assert sorted(i["name"] for i in f.images(OTHER_REGION)) == ["elsewhere", "one"]


@pytest.mark.parametrize("mode", MODES)
def test_copy_becomes_available_after_capture_seconds_and_counts_as_pending_meanwhile(
    mode: str,
) -> None:
    with open_env(mode, FidelityConfig(capture_seconds=0.2)) as env:
        source = env.fidelity.add_image(REGION, "golden")
        us = env.client(OTHER_REGION)
        copy_id = us.copy_workspace_image(Name="golden", SourceImageId=source, SourceRegion=REGION)[
            "ImageId"
        ]
        assert us.describe_workspace_images()["Images"][0]["State"] == "PENDING"
        code, _ = refused(us.delete_workspace_image, ImageId=copy_id)
        assert code == "InvalidResourceStateException"
        time.sleep(0.3)
        assert us.describe_workspace_images()["Images"][0]["State"] == "AVAILABLE"
        us.delete_workspace_image(ImageId=copy_id)


@pytest.mark.parametrize("mode", MODES)
def test_fail_copies_makes_the_next_matching_copy_end_in_error(mode: str) -> None:
    with open_env(mode, FidelityConfig(capture_seconds=0.2)) as env:
        f = env.fidelity
        source = f.add_image(REGION, "golden")
        f.fail_copies(OTHER_REGION, name="doomed", error_code="E9", error_message="copy broke")
        us = env.client(OTHER_REGION)
        ids = {
            name: us.copy_workspace_image(Name=name, SourceImageId=source, SourceRegion=REGION)[
                "ImageId"
            ]
            for name in ("fine", "doomed")
        }
        time.sleep(0.3)
        images = {i["Name"]: i for i in us.describe_workspace_images()["Images"]}
        assert images["fine"]["State"] == "AVAILABLE"
        doomed = images["doomed"]
        assert (doomed["State"], doomed["ErrorCode"], doomed["ErrorMessage"]) == (
            "ERROR",
            "E9",
            "copy broke",
        )
        assert f.copied_from(OTHER_REGION, ids["doomed"]) == (REGION, source)
        # used up: the next copy of that name (after deleting the failed one) succeeds
        us.delete_workspace_image(ImageId=ids["doomed"])
        us.copy_workspace_image(Name="doomed", SourceImageId=source, SourceRegion=REGION)
        time.sleep(0.3)
        states = {i["Name"]: i["State"] for i in us.describe_workspace_images()["Images"]}
        assert states["doomed"] == "AVAILABLE"


def test_fail_copies_is_the_planned_end_of_finish_capture_and_any_name_by_default() -> None:
    with mock_aws(), installed() as f:
        source = f.add_image(REGION, "golden")
        f.fail_copies(OTHER_REGION, times=2)
        us = boto3.session.Session().client("workspaces", region_name=OTHER_REGION)
        ids = [
            us.copy_workspace_image(Name=f"c{i}", SourceImageId=source, SourceRegion=REGION)[
                "ImageId"
            ]
            for i in range(3)
        ]
        for image_id in ids:
            f.finish_capture(OTHER_REGION, image_id)
        assert [i["state"] for i in f.images(OTHER_REGION)] == ["ERROR", "ERROR", "AVAILABLE"]
        assert us.describe_workspace_images(ImageIds=ids[:1])["Images"][0]["ErrorCode"] == (
            "CopyFailed"
        )
        # a copy elsewhere is not affected, and an explicit state wins over the plan
        f.fail_copies(OTHER_REGION)
        forced = us.copy_workspace_image(Name="c9", SourceImageId=source, SourceRegion=REGION)
        f.finish_capture(forced["ImageId"], state="AVAILABLE")
        assert f.images(OTHER_REGION)[-1]["state"] == "AVAILABLE"
        with pytest.raises(ValueError, match="times"):
            f.fail_copies(OTHER_REGION, times=0)


# --- sharing -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_sharing_grants_and_revokes_one_account_a_call_and_pages_at_25(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        image_id = f.add_image(REGION, "golden")
        client = env.client()
        accounts = [f"{100000000000 + i}" for i in range(30)]
        for account in accounts:
            client.update_workspace_image_permission(
                ImageId=image_id, AllowCopyImage=True, SharedAccountId=account
            )
        client.update_workspace_image_permission(  # granting again changes nothing
            ImageId=image_id, AllowCopyImage=True, SharedAccountId=accounts[0]
        )
        assert f.shared_accounts(REGION, image_id) == accounts

        first = client.describe_workspace_image_permissions(ImageId=image_id)
        assert first["ImageId"] == image_id
        assert len(first["ImagePermissions"]) == 25
        second = client.describe_workspace_image_permissions(
            ImageId=image_id, NextToken=first["NextToken"]
        )
        assert "NextToken" not in second
        listed = [p["SharedAccountId"] for p in first["ImagePermissions"]]
        listed += [p["SharedAccountId"] for p in second["ImagePermissions"]]
        assert listed == accounts
        assert not first["NextToken"].isdigit()  # opaque, not an account or an offset
        small = client.describe_workspace_image_permissions(ImageId=image_id, MaxResults=10)
        assert len(small["ImagePermissions"]) == 10
        code, _ = refused(
            client.describe_workspace_image_permissions, ImageId=image_id, NextToken="forged"
        )
        assert code == "InvalidParameterValuesException"

        client.update_workspace_image_permission(
            ImageId=image_id, AllowCopyImage=False, SharedAccountId=accounts[3]
        )
        # revoking an account the image is not shared with is a no-op (documented choice)
        client.update_workspace_image_permission(
            ImageId=image_id, AllowCopyImage=False, SharedAccountId=PARTNER
        )
        assert f.shared_accounts(REGION, image_id) == accounts[:3] + accounts[4:]


@pytest.mark.parametrize("mode", MODES)
def test_sharing_refusals(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        pending = f.add_image(REGION, "pending", state="PENDING")
        failed = f.add_image(REGION, "failed", state="ERROR")
        image_id = f.add_image(REGION, "golden")
        client = env.client()

        def share(image: str, account: str = PARTNER, allow: bool = True) -> tuple[str, str]:
            return refused(
                client.update_workspace_image_permission,
                ImageId=image,
                AllowCopyImage=allow,
                SharedAccountId=account,
            )

        assert share("wsi-000000000")[0] == "ResourceNotFoundException"  # moto: a 500
        assert share(image_id, "12345")[0] == "ValidationException"
        assert share(image_id, ACCOUNT)[0] == "InvalidParameterValuesException"
        for image in (pending, failed):
            assert share(image)[0] == "ResourceUnavailableException"
            assert share(image, allow=False)[0] == "ResourceUnavailableException"
        # the image lives in its region only
        us = env.client(OTHER_REGION)
        code, _ = refused(
            us.update_workspace_image_permission,
            ImageId=image_id,
            AllowCopyImage=True,
            SharedAccountId=PARTNER,
        )
        assert code == "ResourceNotFoundException"
        code, _ = refused(client.describe_workspace_image_permissions, ImageId="wsi-000000000")
        assert code == "ResourceNotFoundException"
        assert f.shared_accounts(REGION, image_id) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_shared_image_is_deleted_only_after_it_is_unshared(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        image_id = f.add_image(REGION, "golden")
        f.set_shared_accounts(REGION, image_id, [PARTNER, "444455556666"])
        client = env.client()
        listed = client.describe_workspace_image_permissions(ImageId=image_id)
        assert listed["ImagePermissions"] == [
            {"SharedAccountId": PARTNER},
            {"SharedAccountId": "444455556666"},
        ]
        for account in (PARTNER, "444455556666"):
            code, _ = refused(client.delete_workspace_image, ImageId=image_id)
            assert code == "InvalidResourceStateException"
            client.update_workspace_image_permission(
                ImageId=image_id, AllowCopyImage=False, SharedAccountId=account
            )
        client.delete_workspace_image(ImageId=image_id)
        assert f.images(REGION) == []


# --- bundles: create and describe --------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_create_bundle_answers_the_workspace_bundle_without_tags(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        image_id = f.add_image(REGION, "golden")
        client = env.client()
        before = time.time()
        reply = client.create_workspace_bundle(
            **bundle_request(
                image_id,
                RootStorage={"Capacity": "175"},
                Tags=[{"Key": "team", "Value": "finance"}],
            )
        )
        bundle = reply["WorkspaceBundle"]
        assert re.fullmatch(r"wsb-[0-9a-z]{9}", bundle["BundleId"])
        bundle_keys = tuple(bundle)
        created = bundle.pop("CreationTime").timestamp()
        updated = bundle.pop("LastUpdatedTime").timestamp()
        assert before - 1 <= created == updated <= time.time() + 1
        assert bundle == {
            "BundleId": bundle["BundleId"],
            "Name": "finance-standard",
            "Owner": ACCOUNT,
            "Description": "Finance standard desktop",
            "ImageId": image_id,
            "RootStorage": {"Capacity": "175"},
            "UserStorage": {"Capacity": "50"},
            "ComputeType": {"Name": "STANDARD"},
            "State": "AVAILABLE",
            "BundleType": "REGULAR",
        }
        raw: list[bytes] = []
        client.meta.events.register(
            "after-call.workspaces.DescribeWorkspaceBundles",
            lambda http_response, **_: raw.append(http_response.content),
        )
        described = client.describe_workspace_bundles()["Bundles"]
        assert [b["BundleId"] for b in described] == [bundle["BundleId"]]
        # botocore would drop an unmodelled key, so look at what the service sent
        assert list(json.loads(raw[0])["Bundles"][0]) == list(bundle_keys)
        tags = client.describe_tags(ResourceId=bundle["BundleId"])["TagList"]
        assert tags == [{"Key": "team", "Value": "finance"}]
        assert f.bundles(REGION) == [
            {
                "id": bundle["BundleId"],
                "name": "finance-standard",
                "description": "Finance standard desktop",
                "image_id": image_id,
                "compute_type": "STANDARD",
                "user_storage": 50,
                "root_storage": 175,
                "state": "AVAILABLE",
                "tags": {"team": "finance"},
                "owner": ACCOUNT,
            }
        ]
        assert f.bundles(OTHER_REGION) == []
        # RootStorage is optional
        second = client.create_workspace_bundle(**bundle_request(image_id, name="no-root"))
        assert second["WorkspaceBundle"]["RootStorage"] == {"Capacity": "80"}


CREATE_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("pattern of the name", {"BundleName": "finance standard"}, "ValidationException"),
    ("65-character name", {"BundleName": "b" * 65}, "ValidationException"),
    ("pattern of the description", {"BundleDescription": "no: colons"}, "ValidationException"),
    ("256-character description", {"BundleDescription": "d" * 256}, "ValidationException"),
    ("unknown compute type", {"ComputeType": {"Name": "HUGE"}}, "ValidationException"),
    ("user volume not a number", {"UserStorage": {"Capacity": "50GB"}}, "InvalidParameterValues"),
    ("user volume too small", {"UserStorage": {"Capacity": "5"}}, "InvalidParameterValues"),
    ("root volume too big", {"RootStorage": {"Capacity": "2001"}}, "InvalidParameterValues"),
    ("unknown image", {"ImageId": "wsi-000000000"}, "ResourceNotFoundException"),
    ("taken name", {"BundleName": "taken"}, "ResourceAlreadyExistsException"),
    ("PENDING image", {"ImageId": "<pending>"}, "ResourceUnavailableException"),
    ("ERROR image", {"ImageId": "<error>"}, "ResourceUnavailableException"),
]


@pytest.mark.parametrize("mode", MODES)
def test_create_bundle_refusals(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        image_id = f.add_image(REGION, "golden")
        images = {
            "<pending>": f.add_image(REGION, "pending", state="PENDING"),
            "<error>": f.add_image(REGION, "failed", state="ERROR"),
        }
        f.add_bundle(REGION, "taken", image_id)
        client = env.client()
        for case, change, code in CREATE_REFUSALS:
            request = {**bundle_request(image_id), **change}
            request["ImageId"] = images.get(request["ImageId"], request["ImageId"])
            got, _ = refused(client.create_workspace_bundle, **request)
            assert got.startswith(code), case
        assert [b["name"] for b in f.bundles(REGION)] == ["taken"]
        assert set(compute_types()) >= {"VALUE", "STANDARD", "PERFORMANCE", "POWER", "GRAPHICS"}


def test_bundle_quota_is_50_custom_bundles_per_region() -> None:
    with mock_aws(), installed() as f:
        image_id = f.add_image(REGION, "golden")
        for i in range(50):
            f.add_bundle(REGION, f"b{i}", image_id)
        client = boto3.session.Session().client("workspaces", region_name=REGION)
        code, _ = refused(client.create_workspace_bundle, **bundle_request(image_id))
        assert code == "ResourceLimitExceededException"
        # a taken name is reported before the quota
        code, _ = refused(client.create_workspace_bundle, **bundle_request(image_id, "b0"))
        assert code == "ResourceAlreadyExistsException"
        other = f.add_image(OTHER_REGION, "golden")
        us = boto3.session.Session().client("workspaces", region_name=OTHER_REGION)
        us.create_workspace_bundle(**bundle_request(other))


def test_bundle_quota_is_configurable_over_http() -> None:
    with open_env("server", FidelityConfig(bundle_quota=2)) as env:
        image_id = env.fidelity.add_image(REGION, "golden")
        client = env.client()
        for name in ("a", "b"):
            client.create_workspace_bundle(**bundle_request(image_id, name))
        code, message = refused(client.create_workspace_bundle, **bundle_request(image_id))
        assert code == "ResourceLimitExceededException"
        assert "2" in message


@pytest.mark.parametrize("mode", MODES)
def test_a_deleted_bundle_name_is_refused_for_the_reuse_window(mode: str) -> None:
    assert FidelityConfig().bundle_name_reuse_seconds == 7200
    # A window that outlasts the three calls before the sleep on a loaded machine (0.3 s
    # did not, once, in CI): the refusal must come from the window, not from speed.
    with open_env(mode, FidelityConfig(bundle_name_reuse_seconds=2.0)) as env:
        image_id = env.fidelity.add_image(REGION, "golden")
        client = env.client()
        bundle_id = client.create_workspace_bundle(**bundle_request(image_id))["WorkspaceBundle"][
            "BundleId"
        ]
        client.delete_workspace_bundle(BundleId=bundle_id)
        code, message = refused(client.create_workspace_bundle, **bundle_request(image_id))
        assert code == "ResourceAlreadyExistsException"
        assert "deleted" in message
        time.sleep(2.1)
        again = client.create_workspace_bundle(**bundle_request(image_id))["WorkspaceBundle"]
        assert again["BundleId"] != bundle_id


@pytest.mark.parametrize("mode", MODES)
def test_describe_bundles_by_owner_or_ids_pages_at_25(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        image_id = f.add_image(REGION, "golden")
        own = [f.add_bundle(REGION, f"b{i:02d}", image_id) for i in range(60)]
        client = env.client()
        sizes: list[int] = []
        seen: list[str] = []
        token: str | None = None
        while True:
            page = client.describe_workspace_bundles(**({"NextToken": token} if token else {}))
            sizes.append(len(page["Bundles"]))
            seen += [b["BundleId"] for b in page["Bundles"]]
            token = page.get("NextToken")
            if not token:
                break
        assert (sizes, seen) == ([25, 25, 10], own)
        pages = client.get_paginator("describe_workspace_bundles").paginate()
        assert [len(p["Bundles"]) for p in pages] == [25, 25, 10]
        assert len(client.describe_workspace_bundles(Owner=ACCOUNT)["Bundles"]) == 25
        assert client.describe_workspace_bundles(Owner="999999999999")["Bundles"] == []

        public = [
            b
            for p in client.get_paginator("describe_workspace_bundles").paginate(Owner=PUBLIC_OWNER)
            for b in p["Bundles"]
        ]
        assert len(public) == 30  # a page of 25 and one of 5
        assert {b["Owner"] for b in public} == {PUBLIC_OWNER}
        assert [b["BundleId"] for b in public] == [b["BundleId"] for b in public_bundles(REGION)]
        assert not set(own) & {b["BundleId"] for b in public}

        wanted = [own[5], public[0]["BundleId"], "wsb-000000000", own[59]]
        found = client.describe_workspace_bundles(BundleIds=wanted)["Bundles"]
        assert sorted(b["BundleId"] for b in found) == sorted(wanted[:2] + wanted[3:])
        code, _ = refused(client.describe_workspace_bundles, BundleIds=[own[0]], Owner=PUBLIC_OWNER)
        assert code == "InvalidParameterValuesException"
        code, _ = refused(client.describe_workspace_bundles, BundleIds=own[:26])
        assert code == "InvalidParameterValuesException"
        code, _ = refused(client.describe_workspace_bundles, NextToken="forged")
        assert code == "InvalidParameterValuesException"
        assert env.client(OTHER_REGION).describe_workspace_bundles()["Bundles"] == []


# --- bundles: update and delete ----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_update_bundle_changes_only_its_image(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        old = f.add_image(REGION, "golden-1")
        new = f.add_image(REGION, "golden-2")
        pending = f.add_image(REGION, "golden-3", state="PENDING")
        client = env.client()
        created = client.create_workspace_bundle(
            **bundle_request(old, Tags=[{"Key": "k", "Value": "v"}])
        )["WorkspaceBundle"]
        bundle_id = created["BundleId"]
        time.sleep(0.01)
        client.update_workspace_bundle(BundleId=bundle_id, ImageId=new)
        after = client.describe_workspace_bundles(BundleIds=[bundle_id])["Bundles"][0]
        assert after["ImageId"] == new
        assert after["LastUpdatedTime"] > after["CreationTime"] == created["CreationTime"]
        unchanged = ("Name", "Description", "ComputeType", "UserStorage", "RootStorage", "State")
        assert {k: after[k] for k in unchanged} == {k: created[k] for k in unchanged}
        assert f.bundles(REGION)[0]["tags"] == {"k": "v"}
        # the old image is free again, the new one is not
        client.delete_workspace_image(ImageId=old)
        code, _ = refused(client.delete_workspace_image, ImageId=new)
        assert code == "ResourceAssociatedException"

        def update(bundle: str, image: str) -> str:
            return refused(client.update_workspace_bundle, BundleId=bundle, ImageId=image)[0]

        assert update(bundle_id, pending) == "ResourceUnavailableException"
        assert update(bundle_id, "wsi-000000000") == "ResourceNotFoundException"
        assert update("wsb-000000000", new) == "ResourceNotFoundException"
        assert update(public_bundles(REGION)[0]["BundleId"], new) == "ResourceNotFoundException"
        assert f.bundles(REGION)[0]["image_id"] == new


@pytest.mark.parametrize("mode", MODES)
def test_delete_bundle_refused_while_a_workspace_uses_it(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        image_id = f.add_image(REGION, "golden")
        client = env.client()
        bundle_id = client.create_workspace_bundle(**bundle_request(image_id))["WorkspaceBundle"][
            "BundleId"
        ]
        workspace_id = f.use_bundle(REGION, bundle_id)
        assert workspace_id is not None
        launched = client.describe_workspaces(BundleId=bundle_id)["Workspaces"]
        assert [w["WorkspaceId"] for w in launched] == [workspace_id]
        code, message = refused(client.delete_workspace_bundle, BundleId=bundle_id)
        assert code == "ResourceAssociatedException"
        assert workspace_id in message
        f.set_workspace_state(REGION, workspace_id, "TERMINATED")
        f.use_bundle(REGION, bundle_id, workspace_id="ws-0a1b2c3d4")
        assert refused(client.delete_workspace_bundle, BundleId=bundle_id)[0] == (
            "ResourceAssociatedException"
        )
        assert f.use_bundle(REGION, bundle_id, used=False) is None
        assert client.describe_workspaces(BundleId=bundle_id)["Workspaces"] == []
        client.delete_workspace_bundle(BundleId=bundle_id)
        assert client.describe_workspace_bundles()["Bundles"] == []
        assert refused(client.delete_workspace_bundle, BundleId=bundle_id)[0] == (
            "ResourceNotFoundException"
        )
        public_id = public_bundles(REGION)[0]["BundleId"]
        assert refused(client.delete_workspace_bundle, BundleId=public_id)[0] == (
            "ResourceNotFoundException"
        )
        client.delete_workspace_image(ImageId=image_id)  # no bundle uses it any more


@pytest.mark.parametrize("mode", MODES)
def test_delete_image_used_by_a_bundle_answers_the_recorded_message(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        in_bundle = f.add_image(REGION, "in-bundle")
        marked = f.add_image(REGION, "marked")
        f.add_bundle(REGION, "uses-it", in_bundle)
        f.associate_bundle(REGION, marked)
        client = env.client()
        for image_id in (in_bundle, marked):
            assert refused(client.delete_workspace_image, ImageId=image_id) == (
                "ResourceAssociatedException",
                BUNDLE_IN_USE_BY_IMAGE,
            )
        f.associate_bundle(REGION, marked, associated=False)
        client.delete_workspace_image(ImageId=marked)


# --- tags on bundles ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_bundle_tags_through_workspaces_and_the_tagging_api(mode: str) -> None:
    with open_env(mode) as env:
        f = env.fidelity
        image_id = f.add_image(REGION, "golden")
        bundle_id = f.add_bundle(REGION, "b", image_id, tags={"team": "a", "keep": "1"})
        untagged = f.add_bundle(REGION, "plain", image_id)
        client, tagging = env.client(), env.tagging()
        client.create_tags(ResourceId=bundle_id, Tags=[{"Key": "team", "Value": "b"}])
        client.delete_tags(ResourceId=bundle_id, TagKeys=["keep"])
        assert client.describe_tags(ResourceId=bundle_id)["TagList"] == [
            {"Key": "team", "Value": "b"}
        ]
        assert "TagList" not in client.describe_tags(ResourceId=untagged)
        arn = bundle_arn(REGION, bundle_id)
        assert arn == f"arn:aws:workspaces:{REGION}:{ACCOUNT}:workspacebundle/{bundle_id}"
        reply = tagging.get_resources(ResourceTypeFilters=["workspaces:workspacebundle"])
        assert reply["ResourceTagMappingList"] == [
            {"ResourceARN": arn, "Tags": [{"Key": "team", "Value": "b"}]}
        ]
        tagging.tag_resources(ResourceARNList=[arn], Tags={"owner": "reconciler"})
        assert f.bundles(REGION)[0]["tags"] == {"team": "b", "owner": "reconciler"}
        public_id = public_bundles(REGION)[0]["BundleId"]
        code, _ = refused(
            client.create_tags, ResourceId=public_id, Tags=[{"Key": "k", "Value": "v"}]
        )
        assert code == "ResourceNotFoundException"

        client.delete_workspace_bundle(BundleId=bundle_id)
        after = tagging.get_resources(ResourceTypeFilters=["workspaces:workspacebundle"])
        assert after["ResourceTagMappingList"] == []
        code, _ = refused(client.describe_tags, ResourceId=bundle_id)
        assert code == "ResourceNotFoundException"


# --- hooks, recorder, installation -------------------------------------------------------


def test_hooks_refuse_what_does_not_exist() -> None:
    with mock_aws(), installed() as f:
        image_id = f.add_image(REGION, "golden")
        f.add_bundle(REGION, "b", image_id, user_storage="100", compute_type="POWER")
        assert (f.bundles(REGION)[0]["user_storage"], f.bundles(REGION)[0]["compute_type"]) == (
            100,
            "POWER",
        )
        with pytest.raises(ValueError, match="already exists"):
            f.add_bundle(REGION, "b", image_id)
        with pytest.raises(ValueError, match="no custom bundle"):
            f.use_bundle(REGION, "wsb-000000000")
        with pytest.raises(ValueError, match="no image"):
            f.shared_accounts(REGION, "wsi-000000000")
        f.set_shared_accounts(REGION, image_id, [PARTNER, PARTNER])
        assert f.shared_accounts(REGION, image_id) == [PARTNER]


def test_recorder_counts_the_new_changing_operations() -> None:
    with local_endpoint() as ep:
        env = Env(ep.fidelity, ep)
        source = ep.fidelity.add_image(REGION, "golden")
        client, us = env.client(), env.client(OTHER_REGION)
        us.copy_workspace_image(Name="golden", SourceImageId=source, SourceRegion=REGION)
        client.update_workspace_image_permission(
            ImageId=source, AllowCopyImage=True, SharedAccountId=PARTNER
        )
        client.describe_workspace_image_permissions(ImageId=source)
        bundle_id = client.create_workspace_bundle(**bundle_request(source))["WorkspaceBundle"][
            "BundleId"
        ]
        client.describe_workspace_bundles()
        client.update_workspace_bundle(BundleId=bundle_id, ImageId=source)
        client.delete_workspace_bundle(BundleId=bundle_id)
        assert [(c.region, c.operation) for c in ep.calls.changing()] == [
            (OTHER_REGION, "CopyWorkspaceImage"),
            (REGION, "UpdateWorkspaceImagePermission"),
            (REGION, "CreateWorkspaceBundle"),
            (REGION, "UpdateWorkspaceBundle"),
            (REGION, "DeleteWorkspaceBundle"),
        ]
        assert ep.calls.count("DescribeWorkspaceBundles") == 1


def test_moto_reset_clears_bundles_copies_and_shares() -> None:
    with local_endpoint() as ep:
        f = ep.fidelity
        image_id = f.add_image(REGION, "golden")
        f.add_bundle(REGION, "b", image_id)
        f.set_shared_accounts(REGION, image_id, [PARTNER])
        f.fail_copies(REGION)
        reset_moto(ep.url)
        assert (f.bundles(REGION), f.images(REGION)) == ([], [])
        again = f.add_image(REGION, "golden")
        # the armed failure is gone too: a copy ends AVAILABLE
        us = Env(f, ep).client(OTHER_REGION)
        copy_id = us.copy_workspace_image(Name="c", SourceImageId=again, SourceRegion=REGION)
        f.finish_capture(OTHER_REGION, copy_id["ImageId"])
        assert f.images(OTHER_REGION)[0]["state"] == "AVAILABLE"


def test_uninstall_removes_the_new_operations_and_restores_moto_sharing() -> None:
    before = dict(WorkSpacesResponse.__dict__)
    with installed():
        assert "create_workspace_bundle" in WorkSpacesResponse.__dict__
        assert (
            WorkSpacesResponse.__dict__["update_workspace_image_permission"]
            is not (before["update_workspace_image_permission"])
        )
    assert dict(WorkSpacesResponse.__dict__) == before
    assert "copy_workspace_image" not in WorkSpacesResponse.__dict__
