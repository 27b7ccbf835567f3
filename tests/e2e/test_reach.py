"""Reaching the accounts of a map (`reconciler.reach`), against the local endpoint over HTTP:
moto's STS hands out credentials that act in the role's account, as AWS does.

These tests hold the contract's "Reaching accounts": AssumeRole with the session name and
external id, refreshed by botocore itself, every account proved before any change, an
unreachable one named with its name, id, role and AWS's answer; and discovery's clients,
shared by every account, each call acting for its own.
"""

from __future__ import annotations

from collections import Counter

import boto3
import pytest

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE
from reconciler.errors import AwsError
from reconciler.reach import SESSION_NAME, Target, account_session, reach
from tests.e2e.conftest import REGION
from tests.fidelity import LocalEndpoint

BASE = "123456789012"  # moto's account for the test credentials
IMAGES = Target("images", "111111111111", "arn:aws:iam::111111111111:role/reconciler")
FINANCE = Target(
    "finance", "222222222222", "arn:aws:iam::222222222222:role/reconciler", "finance-2026"
)


def base_session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def sessions(endpoint: LocalEndpoint, *targets: Target) -> dict[str, boto3.session.Session]:
    base = base_session()
    return {t.name: account_session(base, t, endpoint_url=endpoint.url) for t in targets}


def test_each_account_is_reached_through_its_role_and_acts_there(
    endpoint: LocalEndpoint,
) -> None:
    endpoint.fidelity.add_image(REGION, "golden", "Image golden", account_id=IMAGES.account_id)
    # The external id is sent: a role that demands it refuses a call without it.
    endpoint.faults.error_for(
        "AssumeRole",
        "AccessDenied",
        status=403,
        when=lambda q: q["RoleArn"] == FINANCE.role and q.get("ExternalId") != "finance-2026",
    )
    made = sessions(endpoint, IMAGES, FINANCE)
    reach(made, [IMAGES, FINANCE], region=REGION, endpoint_url=endpoint.url)

    def names(target: Target) -> list[str]:
        client = made[target.name].client("workspaces", endpoint_url=endpoint.url)
        return [i["Name"] for i in client.describe_workspace_images()["Images"]]

    assert names(IMAGES) == ["golden"]
    assert names(FINANCE) == []
    acted = endpoint.calls.by_account(operation="DescribeWorkspaceImages")
    assert acted == {IMAGES.account_id: 1, FINANCE.account_id: 1}
    # One AssumeRole per account, the rest on the credentials it gave.
    assert endpoint.calls.roles_assumed() == {IMAGES.account_id: 1, FINANCE.account_id: 1}
    assumed = [c for c in endpoint.calls.all() if c.operation == "AssumeRole"]
    assert all(c.account == BASE for c in assumed)  # asked with the base credentials
    assert SESSION_NAME == "workspaces-image-reconciler"


def test_an_account_whose_role_is_refused_stops_the_run_naming_it(
    endpoint: LocalEndpoint,
) -> None:
    endpoint.faults.error_for(
        "AssumeRole",
        "AccessDenied",
        status=403,
        message="not authorized to perform sts:AssumeRole",
        when=lambda q: q["RoleArn"] == FINANCE.role,
    )
    made = sessions(endpoint, IMAGES, FINANCE)
    with pytest.raises(AwsError) as raised:
        reach(made, [IMAGES, FINANCE], region=REGION, endpoint_url=endpoint.url)
    message = str(raised.value)
    assert "account finance (222222222222, role arn:aws:iam::222222222222:role/reconciler)" in (
        message
    )
    assert "AccessDenied" in message
    assert "not authorized to perform sts:AssumeRole" in message
    assert "account images" not in message  # the reachable one is not blamed
    assert "nothing was changed in any account" in message


def test_an_account_without_a_role_must_be_the_runs_own(endpoint: LocalEndpoint) -> None:
    own = Target("platform", BASE)
    other = Target("hr", "333333333333")  # no role: reached as the base, which it is not
    made = sessions(endpoint, own, other)
    assert made["platform"] is made["hr"]  # the base session itself
    with pytest.raises(AwsError) as raised:
        reach(made, [own, other], region=REGION, endpoint_url=endpoint.url)
    assert "account hr (333333333333, the run's own credentials): its credentials act in " in (
        str(raised.value)
    )
    assert "platform" not in str(raised.value)


def test_credentials_are_renewed_by_botocore_before_they_expire(endpoint: LocalEndpoint) -> None:
    """AssumeRole's shortest lifetime (900 s) is inside botocore's 15-minute renewal window,
    so every call renews: the credentials are botocore's refreshable ones, not a copy."""
    base = base_session()
    session = account_session(base, IMAGES, endpoint_url=endpoint.url, duration_seconds=900)
    client = session.client("workspaces", endpoint_url=endpoint.url)
    for _ in range(3):
        client.describe_workspace_images()
    assert endpoint.calls.roles_assumed() == {IMAGES.account_id: 3}
    assert endpoint.calls.by_account(operation="DescribeWorkspaceImages") == {IMAGES.account_id: 3}


# --- discovery on clients shared by every account (`aws.Shared`) ----------------------------


def test_discovery_asks_each_region_once_per_account_on_one_client_acting_for_each(
    endpoint: LocalEndpoint,
) -> None:
    """Discovery in the regions a run reads for no other reason goes through one tagging
    client per region for every account (`Clients.discovery_reader`): each call is signed
    with its account's credentials (the server counts it there) and finds that account's own
    images only."""
    from reconciler.aws import AwsSettings, Clients
    from reconciler.inventory import discover

    own = {OWNERSHIP_TAG_KEY: OWNERSHIP_TAG_VALUE}
    endpoint.fidelity.add_image("ap-south-1", "left", tags=own, account_id=IMAGES.account_id)
    endpoint.fidelity.add_image("ca-central-1", "moved", tags=own, account_id=FINANCE.account_id)
    made = sessions(endpoint, IMAGES, FINANCE)
    settings = AwsSettings(region=REGION, endpoint_url=endpoint.url, api_rate=0, tagging_rate=0)
    base = Clients(settings, session=base_session())
    try:
        accounts = [base.for_account(t.account_id, made[t.name]) for t in (IMAGES, FINANCE)]
        found = [discover(a, REGION, first=[REGION]) for a in accounts]
        assert found[0].regions == {"ap-south-1"}
        assert found[1].regions == {"ca-central-1"}
        others = [r for r in base.workspaces_regions(REGION) if r != REGION]
        for region in others:
            readers = [a.discovery_reader(region) for a in accounts]
            assert readers[0] is not None
            assert readers[1] is not None
            assert readers[0].client is readers[1].client  # one client, every account
            assert readers[0].bucket is not readers[1].bucket  # each account's own pace
    finally:
        base.close()
    asked = [c for c in endpoint.calls.all() if c.operation == "GetResources"]
    per_account_region = Counter((c.account, c.region) for c in asked)
    expected = {(t.account_id, r) for t in (IMAGES, FINANCE) for r in [REGION, *others]}
    assert set(per_account_region) == expected
    assert set(per_account_region.values()) == {1}
    assert BASE not in {c.account for c in asked}


def test_a_shared_client_refuses_a_call_for_no_account_and_an_answer_for_another(
    endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never signed with whatever credentials are at hand, and never a resource of another
    account taken for this one's."""
    from reconciler.aws import AwsSettings, Clients

    made = sessions(endpoint, IMAGES)
    settings = AwsSettings(region=REGION, endpoint_url=endpoint.url, api_rate=0, tagging_rate=0)
    base = Clients(settings, session=base_session())
    try:
        images = base.for_account(IMAGES.account_id, made["images"])
        reader = images.discovery_reader("ap-south-1")
        assert reader is not None
        with pytest.raises(RuntimeError, match="for no account"):
            reader.client.get_resources()
        assert endpoint.calls.count("GetResources") == 0

        foreign = f"arn:aws:workspaces:ap-south-1:{FINANCE.account_id}:workspaceimage/wsi-1"
        answer = {"ResourceTagMappingList": [{"ResourceARN": foreign, "Tags": []}]}
        monkeypatch.setattr(reader.client, "get_resources", lambda **_: answer)
        with pytest.raises(AwsError, match=f"a resource of account {FINANCE.account_id}"):
            reader.owned()
    finally:
        base.close()
