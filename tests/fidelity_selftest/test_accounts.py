"""Self-tests of the emulator's accounts: requests signed with AssumeRole credentials act in
the role's account, images shared with an account are listed to it and copyable by it (and
by no other), and the served endpoint records and paces each call by account and region."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from reconciler.emulator import moto_adapter as adapter
from tests.fidelity import FidelityConfig
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

IMAGES = "111111111111"  # the account that captures and shares
WORKLOAD = "222222222222"  # an account the image is shared with
STRANGER = "333333333333"  # an account it is not shared with


def role(account: str, name: str = "reconciler") -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def assume(
    env: Env, account: str, *, duration: int | None = None, config: Config | None = None
) -> boto3.session.Session:
    """A session with credentials from STS AssumeRole into ``account`` (through the
    endpoint when served), made with the base credentials."""
    url = env.endpoint.url if env.endpoint else None
    sts = boto3.session.Session().client("sts", region_name=REGION, endpoint_url=url, config=config)
    extra = {"DurationSeconds": duration} if duration is not None else {}
    answer = sts.assume_role(RoleArn=role(account), RoleSessionName="reconciler-run", **extra)
    creds = answer["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def client(
    env: Env, session: boto3.session.Session, region: str = REGION, service: str = "workspaces"
) -> Any:
    url = env.endpoint.url if env.endpoint else None
    return session.client(service, region_name=region, endpoint_url=url, config=NO_RETRY)  # type: ignore[call-overload]


@contextmanager
def accounts(mode: str, config: FidelityConfig | None = None, **server: Any) -> Iterator[Env]:
    with open_env(mode, config, **server) as env:
        yield env


def listed(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["Name"], i["OwnerAccountId"]) for i in answer["Images"]]


# --- requests signed with an assumed role ------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_requests_signed_with_an_assumed_role_act_in_the_roles_account(mode: str) -> None:
    with accounts(mode) as env:
        f = env.fidelity
        own = f.add_image(REGION, "workload-golden", tags={"team": "a"}, account_id=WORKLOAD)
        f.add_bundle(REGION, "workload-bundle", own, account_id=WORKLOAD)
        f.add_image(REGION, "base-golden")
        workload = assume(env, WORKLOAD)
        identity = client(env, workload, service="sts").get_caller_identity()
        assert identity["Account"] == WORKLOAD
        assert identity["Arn"].startswith(f"arn:aws:sts::{WORKLOAD}:assumed-role/reconciler/")
        ws = client(env, workload)
        assert listed(ws.describe_workspace_images()) == [("workload-golden", WORKLOAD)]
        assert ws.describe_tags(ResourceId=own)["TagList"] == [{"Key": "team", "Value": "a"}]
        (bundle,) = ws.describe_workspace_bundles()["Bundles"]
        assert (bundle["Name"], bundle["Owner"]) == ("workload-bundle", WORKLOAD)
        ws.create_tags(ResourceId=own, Tags=[{"Key": "stage", "Value": "prod"}])
        assert f.image_tags(REGION, own, account_id=WORKLOAD) == {"team": "a", "stage": "prod"}
        tagging = client(env, workload, service="resourcegroupstaggingapi")
        arns = [m["ResourceARN"] for m in tagging.get_resources()["ResourceTagMappingList"]]
        assert arns == [f.image_arn(REGION, own, WORKLOAD)]
        # the base credentials still act in moto's default account
        base = env.client()
        assert listed(base.describe_workspace_images()) == [("base-golden", ACCOUNT)]
        assert base.describe_workspace_bundles()["Bundles"] == []


@pytest.mark.parametrize("mode", MODES)
def test_an_image_made_through_an_assumed_role_is_the_roles_accounts(mode: str) -> None:
    with accounts(mode) as env:
        f = env.fidelity
        f.add_workspace(REGION, "ws-0a1b2c3d4", account_id=WORKLOAD)
        ws = client(env, assume(env, WORKLOAD))
        made = ws.create_workspace_image(
            Name="captured", Description="d", WorkspaceId="ws-0a1b2c3d4"
        )
        assert made["OwnerAccountId"] == WORKLOAD
        assert [i["name"] for i in f.images(REGION, WORKLOAD)] == ["captured"]
        assert f.images(REGION) == []
        assert f.workspace_state(REGION, "ws-0a1b2c3d4", WORKLOAD) == "SUSPENDED"


def test_every_hook_of_the_handle_acts_in_the_account_it_names() -> None:
    with accounts("mock_aws", FidelityConfig(capture_seconds=0.0)) as env:
        f = env.fidelity
        image = f.add_image(REGION, "golden", tags={"k": "v"}, account_id=WORKLOAD)
        pending = f.add_image(REGION, "next", state="PENDING", account_id=WORKLOAD)
        f.add_image(REGION, "golden")  # the same name in the default account is fine
        bundle = f.add_bundle(REGION, "b", image, account_id=WORKLOAD)
        f.add_workspace(REGION, "ws-0a1b2c3d4", account_id=WORKLOAD)
        workspace = f.use_bundle(REGION, bundle, account_id=WORKLOAD)
        f.set_shared_accounts(REGION, image, [IMAGES], account_id=WORKLOAD)
        f.associate_bundle(REGION, image, account_id=WORKLOAD)
        f.fail_copies(REGION, account_id=WORKLOAD)
        f.finish_capture(pending, account_id=WORKLOAD)
        f.set_image_state(REGION, pending, "ERROR", account_id=WORKLOAD)
        f.set_workspace_state(REGION, "ws-0a1b2c3d4", "STOPPED", account_id=WORKLOAD)
        assert [i["name"] for i in f.images(REGION, WORKLOAD)] == ["golden", "next"]
        assert [i["name"] for i in f.images(REGION)] == ["golden"]
        assert [b["owner"] for b in f.bundles(REGION, WORKLOAD)] == [WORKLOAD]
        assert f.bundles(REGION) == []
        assert f.image_tags(REGION, image, WORKLOAD) == {"k": "v"}
        assert f.shared_accounts(REGION, image, WORKLOAD) == [IMAGES]
        assert f.workspace_state(REGION, "ws-0a1b2c3d4", WORKLOAD) == "STOPPED"
        assert workspace is not None
        assert f.workspace_state(REGION, workspace, WORKLOAD) == "AVAILABLE"
        assert f.copied_from(REGION, image, WORKLOAD) is None
        assert f.shared_images(REGION, IMAGES) == [
            {"id": image, "name": "golden", "state": "AVAILABLE", "owner": WORKLOAD}
        ]
        assert f.shared_images(REGION) == []
        with pytest.raises(ValueError, match=f"no image {image} in {REGION}/{ACCOUNT}"):
            f.image_tags(REGION, image)
        assert f.image_arn(REGION, image, WORKLOAD).split(":")[4] == WORKLOAD


# --- an image shared with an account -------------------------------------------------------


def _share(env: Env, name: str = "golden", *, with_: tuple[str, ...] = (WORKLOAD,)) -> str:
    """An AVAILABLE image of the images account, shared through the API with ``with_``."""
    image = env.fidelity.add_image(REGION, name, tags={"owner": "images"}, account_id=IMAGES)
    ws = client(env, assume(env, IMAGES))
    for account in with_:
        ws.update_workspace_image_permission(
            ImageId=image, AllowCopyImage=True, SharedAccountId=account
        )
    return image


@pytest.mark.parametrize("mode", MODES)
def test_a_shared_image_is_listed_to_the_account_it_is_shared_with_and_no_other(
    mode: str,
) -> None:
    with accounts(mode) as env:
        f = env.fidelity
        image = _share(env)
        f.add_image(REGION, "own", account_id=WORKLOAD)
        f.add_image(OTHER_REGION, "elsewhere", account_id=IMAGES)
        ws = client(env, assume(env, WORKLOAD))
        assert listed(ws.describe_workspace_images(ImageType="SHARED")) == [("golden", IMAGES)]
        assert listed(ws.describe_workspace_images()) == [("own", WORKLOAD), ("golden", IMAGES)]
        assert listed(ws.describe_workspace_images(ImageType="OWNED")) == [("own", WORKLOAD)]
        found = ws.describe_workspace_images(ImageIds=[image])["Images"]
        assert [(i["ImageId"], i["State"]) for i in found] == [(image, "AVAILABLE")]
        # a share is within its region
        other = client(env, assume(env, WORKLOAD), OTHER_REGION)
        assert other.describe_workspace_images(ImageType="SHARED")["Images"] == []
        stranger = client(env, assume(env, STRANGER))
        assert stranger.describe_workspace_images()["Images"] == []
        assert stranger.describe_workspace_images(ImageIds=[image])["Images"] == []
        assert f.shared_images(REGION, WORKLOAD)[0]["owner"] == IMAGES
        assert f.shared_images(REGION, STRANGER) == []


@pytest.mark.parametrize("mode", MODES)
def test_the_shared_list_pages_after_the_accounts_own_images(mode: str) -> None:
    with accounts(mode) as env:
        f = env.fidelity
        for i in range(20):
            f.add_image(REGION, f"own-{i:02d}", account_id=WORKLOAD)
        for i in range(10):
            image = f.add_image(REGION, f"shared-{i:02d}", account_id=IMAGES)
            f.set_shared_accounts(REGION, image, [WORKLOAD], account_id=IMAGES)
        ws = client(env, assume(env, WORKLOAD))
        pages = ws.get_paginator("describe_workspace_images").paginate()
        names = [i["Name"] for page in pages for i in page["Images"]]
        assert names == [f"own-{i:02d}" for i in range(20)] + [f"shared-{i:02d}" for i in range(10)]
        shared = ws.get_paginator("describe_workspace_images").paginate(ImageType="SHARED")
        assert [len(p["Images"]) for p in shared] == [10]


@pytest.mark.parametrize("mode", MODES)
def test_the_recipient_cannot_reshare_delete_tag_or_build_bundles_from_a_shared_image(
    mode: str,
) -> None:
    with accounts(mode) as env:
        image = _share(env)
        ws = client(env, assume(env, WORKLOAD))
        refusals = {
            "reshare": lambda: ws.update_workspace_image_permission(
                ImageId=image, AllowCopyImage=True, SharedAccountId=STRANGER
            ),
            "permissions": lambda: ws.describe_workspace_image_permissions(ImageId=image),
            "delete": lambda: ws.delete_workspace_image(ImageId=image),
            "bundle": lambda: ws.create_workspace_bundle(
                BundleName="b",
                BundleDescription="d",
                ImageId=image,
                ComputeType={"Name": "STANDARD"},
                UserStorage={"Capacity": "50"},
            ),
            "create_tags": lambda: ws.create_tags(
                ResourceId=image, Tags=[{"Key": "k", "Value": "v"}]
            ),
            "delete_tags": lambda: ws.delete_tags(ResourceId=image, TagKeys=["owner"]),
            "describe_tags": lambda: ws.describe_tags(ResourceId=image),
        }
        codes = {}
        for name, call in refusals.items():
            with pytest.raises(ClientError) as err:
                call()
            codes[name] = error_code(err)
        assert codes == {
            "reshare": "AccessDeniedException",
            "permissions": "AccessDeniedException",
            "delete": "AccessDeniedException",
            "bundle": "AccessDeniedException",
            "create_tags": "ResourceNotFoundException",
            "delete_tags": "ResourceNotFoundException",
            "describe_tags": "ResourceNotFoundException",
        }
        own = env.fidelity.add_image(REGION, "own", account_id=WORKLOAD)
        made = ws.create_workspace_bundle(
            BundleName="b",
            BundleDescription="d",
            ImageId=own,
            ComputeType={"Name": "STANDARD"},
            UserStorage={"Capacity": "50"},
        )["WorkspaceBundle"]
        with pytest.raises(ClientError) as err:
            ws.update_workspace_bundle(BundleId=made["BundleId"], ImageId=image)
        assert error_code(err) == "AccessDeniedException"
        # the owner's image is untouched
        f = env.fidelity
        assert f.shared_accounts(REGION, image, IMAGES) == [WORKLOAD]
        assert f.image_tags(REGION, image, IMAGES) == {"owner": "images"}


# --- copying a shared image ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_shared_image_copies_into_the_recipient_as_its_own_image(mode: str) -> None:
    with accounts(mode, FidelityConfig(capture_seconds=0.3)) as env:
        f = env.fidelity
        source = _share(env)
        workload = assume(env, WORKLOAD)
        ws = client(env, workload)
        copy = ws.copy_workspace_image(
            Name="golden-imported",
            SourceImageId=source,
            SourceRegion=REGION,
            Tags=[{"Key": "imported", "Value": "yes"}],
        )["ImageId"]
        assert copy != source
        (shown,) = ws.describe_workspace_images(ImageIds=[copy])["Images"]
        assert (shown["State"], shown["OwnerAccountId"]) == ("PENDING", WORKLOAD)
        assert f.copied_from(REGION, copy, WORKLOAD) == (REGION, source)
        assert f.copied_from_account(REGION, copy, WORKLOAD) == IMAGES
        time.sleep(0.4)
        (shown,) = ws.describe_workspace_images(ImageType="OWNED")["Images"]
        assert (shown["ImageId"], shown["State"]) == (copy, "AVAILABLE")
        assert f.image_tags(REGION, copy, WORKLOAD) == {"imported": "yes"}
        # it is the recipient's own: it tags it and builds a bundle from it
        ws.create_tags(ResourceId=copy, Tags=[{"Key": "stage", "Value": "prod"}])
        ws.create_workspace_bundle(
            BundleName="b",
            BundleDescription="d",
            ImageId=copy,
            ComputeType={"Name": "STANDARD"},
            UserStorage={"Capacity": "50"},
        )
        # revoking the share hides the source and leaves the copy alone
        owner = client(env, assume(env, IMAGES))
        owner.update_workspace_image_permission(
            ImageId=source, AllowCopyImage=False, SharedAccountId=WORKLOAD
        )
        assert listed(ws.describe_workspace_images()) == [("golden-imported", WORKLOAD)]
        assert f.image_tags(REGION, copy, WORKLOAD) == {"imported": "yes", "stage": "prod"}
        with pytest.raises(ClientError) as err:
            ws.copy_workspace_image(Name="again", SourceImageId=source, SourceRegion=REGION)
        assert error_code(err) == "ResourceNotFoundException"


@pytest.mark.parametrize("mode", MODES)
def test_an_image_not_shared_with_the_account_cannot_be_copied_by_it(mode: str) -> None:
    with accounts(mode) as env:
        source = _share(env)
        stranger = client(env, assume(env, STRANGER))
        with pytest.raises(ClientError) as err:
            stranger.copy_workspace_image(Name="taken", SourceImageId=source, SourceRegion=REGION)
        assert error_code(err) == "ResourceNotFoundException"
        assert env.fidelity.images(REGION, STRANGER) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_shared_image_copies_into_another_region_of_the_recipient(mode: str) -> None:
    with accounts(mode) as env:
        f = env.fidelity
        source = _share(env)
        there = client(env, assume(env, WORKLOAD), OTHER_REGION)
        copy = there.copy_workspace_image(Name="golden", SourceImageId=source, SourceRegion=REGION)[
            "ImageId"
        ]
        assert [i["id"] for i in f.images(OTHER_REGION, WORKLOAD)] == [copy]
        assert f.images(REGION, WORKLOAD) == []
        f.finish_capture(OTHER_REGION, copy, account_id=WORKLOAD)
        assert f.images(OTHER_REGION, WORKLOAD)[0]["state"] == "AVAILABLE"


@pytest.mark.parametrize("mode", MODES)
def test_a_copy_counts_against_the_recipients_quota_only(mode: str) -> None:
    with accounts(mode, FidelityConfig(image_quota=2)) as env:
        f = env.fidelity
        source = _share(env)
        f.add_image(REGION, "filler", account_id=IMAGES)  # the owner is at its quota
        f.add_image(REGION, "own", account_id=WORKLOAD)
        ws = client(env, assume(env, WORKLOAD))
        ws.copy_workspace_image(Name="first", SourceImageId=source, SourceRegion=REGION)
        with pytest.raises(ClientError) as err:
            ws.copy_workspace_image(Name="second", SourceImageId=source, SourceRegion=REGION)
        assert error_code(err) == "ResourceLimitExceededException"


@pytest.mark.parametrize("mode", MODES)
def test_an_owner_deletes_a_shared_image_only_after_unsharing_it(mode: str) -> None:
    with accounts(mode) as env:
        source = _share(env)
        copy = client(env, assume(env, WORKLOAD)).copy_workspace_image(
            Name="golden", SourceImageId=source, SourceRegion=REGION
        )["ImageId"]
        owner = client(env, assume(env, IMAGES))
        with pytest.raises(ClientError) as err:
            owner.delete_workspace_image(ImageId=source)
        assert error_code(err) == "InvalidResourceStateException"
        owner.update_workspace_image_permission(
            ImageId=source, AllowCopyImage=False, SharedAccountId=WORKLOAD
        )
        owner.delete_workspace_image(ImageId=source)
        assert [i["id"] for i in env.fidelity.images(REGION, WORKLOAD)] == [copy]


# --- the served endpoint: calls by account, pacing, refusals, expiry ----------------------


def test_every_call_is_recorded_with_the_account_it_acted_in() -> None:
    with accounts("server") as env:
        _share(env)  # AssumeRole into IMAGES, UpdateWorkspaceImagePermission there
        workload = assume(env, WORKLOAD)
        client(env, workload).describe_workspace_images()
        client(env, workload, service="resourcegroupstaggingapi").get_resources()
        client(env, workload, service="sts").get_caller_identity()
        env.client().describe_workspace_images()
        calls = env.ep.calls
        assert calls.by_account() == {ACCOUNT: 3, IMAGES: 1, WORKLOAD: 3}
        assert calls.by_account(api="sts") == {ACCOUNT: 2, WORKLOAD: 1}
        assert calls.count("DescribeWorkspaceImages", account=WORKLOAD) == 1
        assert calls.count("UpdateWorkspaceImagePermission", account=IMAGES) == 1
        assert calls.count(api="tagging", account=WORKLOAD) == 1
        assumed = [c for c in calls.all() if c.operation == "AssumeRole"]
        assert [(c.account, c.role_arn, c.role_account) for c in assumed] == [
            (ACCOUNT, role(IMAGES), IMAGES),
            (ACCOUNT, role(WORKLOAD), WORKLOAD),
        ]
        assert calls.roles_assumed() == {IMAGES: 1, WORKLOAD: 1}


def test_pacing_is_per_account_and_region() -> None:
    with accounts("server", pace=(0.01, 2)) as env:
        sessions = {account: assume(env, account) for account in (IMAGES, WORKLOAD)}
        for account, session in sessions.items():
            for region in (REGION, OTHER_REGION):
                ws = client(env, session, region)
                ws.describe_workspace_images()
                ws.describe_workspace_images()
                with pytest.raises(ClientError) as err:
                    ws.describe_workspace_images()
                assert error_code(err) == "ThrottlingException", (account, region)
        calls = env.ep.calls
        assert calls.throttled() == 4
        assert {c.account for c in calls.all() if c.throttled} == {IMAGES, WORKLOAD}
        assert calls.count(api="sts", throttled=True) == 0  # STS is not paced


def test_assume_role_is_refused_for_one_role_as_sts_answers() -> None:
    with accounts("server") as env:
        env.ep.faults.error_for(
            "AssumeRole",
            "AccessDenied",
            status=403,
            message=f"User: arn:aws:sts::{ACCOUNT}:assumed-role/base/run is not authorized "
            f"to perform: sts:AssumeRole on resource: {role(WORKLOAD)}",
            when=lambda params: params["RoleArn"] == role(WORKLOAD),
        )
        with pytest.raises(ClientError) as err:
            assume(env, WORKLOAD, config=NO_RETRY)
        assert error_code(err) == "AccessDenied"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "sts:AssumeRole" in err.value.response["Error"]["Message"]
        assume(env, IMAGES)  # other roles are fine
        assert env.ep.calls.roles_assumed() == {IMAGES: 1}
        refused = [c for c in env.ep.calls.all() if c.status == 403]
        assert [(c.operation, c.role_account) for c in refused] == [("AssumeRole", WORKLOAD)]
        env.ep.faults.fail_once("AssumeRole", "throttle")
        with pytest.raises(ClientError) as err:
            assume(env, IMAGES, config=NO_RETRY)
        assert error_code(err) == "Throttling"
        assert env.ep.calls.count("AssumeRole", throttled=True) == 1


def test_calls_with_expired_assumed_role_credentials_are_refused() -> None:
    # botocore refuses DurationSeconds below STS's minimum of 900 before sending; moto
    # accepts any, so a short lifetime needs the client's validation off
    unchecked = Config(parameter_validation=False, retries={"total_max_attempts": 1})
    with accounts("server") as env:
        short = assume(env, WORKLOAD, duration=3, config=unchecked)
        ws = client(env, short)
        ws.describe_workspace_images()
        key = short.get_credentials().access_key
        expiry = adapter.credentials_expiry(key)
        assert expiry is not None
        time.sleep(max(0.0, expiry - time.time()) + 0.1)
        with pytest.raises(ClientError) as err:
            ws.describe_workspace_images()
        assert error_code(err) == "ExpiredTokenException"
        assert "expired" in err.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as err:
            client(env, short, service="resourcegroupstaggingapi").get_resources()
        assert error_code(err) == "ExpiredTokenException"
        client(env, assume(env, WORKLOAD)).describe_workspace_images()  # fresh ones work
        env.client().describe_workspace_images()  # base credentials never expire


@pytest.mark.parametrize("mode", MODES)
def test_tagging_denials_and_disabled_regions_can_be_one_accounts(mode: str) -> None:
    with accounts(mode) as env:
        f = env.fidelity
        f.deny_tagging(account_id=WORKLOAD)
        f.disable_region(OTHER_REGION, account_id=WORKLOAD)
        workload, other = assume(env, WORKLOAD), assume(env, IMAGES)
        with pytest.raises(ClientError) as err:
            client(env, workload, service="resourcegroupstaggingapi").get_resources()
        assert error_code(err) == "AccessDeniedException"
        with pytest.raises(ClientError) as err:
            client(env, workload, OTHER_REGION).describe_workspace_images()
        assert error_code(err) == "UnrecognizedClientException"
        client(env, other, service="resourcegroupstaggingapi").get_resources()
        client(env, other, OTHER_REGION).describe_workspace_images()
        f.deny_tagging(False, account_id=WORKLOAD)
        client(env, workload, service="resourcegroupstaggingapi").get_resources()
        f.disable_region(OTHER_REGION, False, account_id=WORKLOAD)
        client(env, workload, OTHER_REGION).describe_workspace_images()
