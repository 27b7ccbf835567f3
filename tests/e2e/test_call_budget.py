"""The plan's call budget, counted at the server.

WorkSpaces answers about 2 calls per second per region, so every call counts. A plan makes,
per region it reads: exactly max(1, ceil(M/25)) DescribeWorkspaceImages (M: the images
listed), ceil(C/25) DescribeWorkspaces (C: the distinct source WorkSpaces of creates), no
DescribeTags, and its tags through the Resource Groups Tagging API: one GetResources with a
tag filter on the ownership key in every region where WorkSpaces is offered (it finds the
regions that hold owned images; a page per 100 owned), plus, after the listing, one
GetResources per 100 images judged, with their ARNs. Nothing else.

With tag:GetResources denied, a plan makes exactly the budget of format 1 (one DescribeTags
per image listed) in the regions the specs name, after the one refused GetResources that
told it so.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass

import boto3
import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, RunReconciler, SpecsDir
from tests.fidelity import LocalEndpoint

OTHER_REGION = "us-east-1"
OWN = {OWNERSHIP_TAG_KEY: "true"}
# botocore's endpoint data: where WorkSpaces is offered in the default region's partition.
WORKSPACES_REGIONS = sorted(boto3.session.Session().get_available_regions("workspaces"))


@dataclass(frozen=True)
class Region:
    """What one region holds and declares."""

    name: str
    images: int  # M: images listed
    declared: int  # how many of them have a spec (the rest are unmanaged, or not ours)
    creates: int  # specs with no image
    sources: int  # C: distinct source WorkSpaces among the creates (<= creates)
    missing_sources: int = 0  # of those, how many do not exist (their creates are blocked)
    unowned: int = 0  # of the images, the last ones lack the ownership tag (not declared)

    @property
    def owned(self) -> int:
        return self.images - self.unowned


def seed(endpoint: LocalEndpoint, specs_dir: SpecsDir, region: Region) -> None:
    prefix = region.name[:2]
    docs = []
    for n in range(region.images):
        name = f"{prefix}-image-{n:03d}"
        ours = n < region.owned
        tags = {**OWN, "k": "v"} if ours else {"k": "v"}
        endpoint.fidelity.add_image(region.name, name, f"Image {name}", tags=tags)
        if n < region.declared:
            docs.append(specs_dir.image(name, "ws-0000000000", region=region.name, tags={"k": "v"}))
    sources = [f"ws-{region.name[:2]}{n:08d}" for n in range(region.sources)]
    for n, source in enumerate(sources):
        if n >= region.missing_sources:
            endpoint.fidelity.add_workspace(region.name, source)
    for n in range(region.creates):
        name = f"{prefix}-new-{n:03d}"
        docs.append(specs_dir.image(name, sources[n % len(sources)], region=region.name))
    if docs:
        specs_dir.write(f"{region.name}.yaml", *docs)


def budget(region: Region, *, denied: bool = False, home: bool = True) -> dict[str, int]:
    """Calls in a region a plan reads; `home`: the region asked first (the default one)."""
    expected = {
        "DescribeWorkspaceImages": max(1, math.ceil(region.images / 25)),
        "DescribeWorkspaces": math.ceil(region.sources / 25),
    }
    if denied:
        expected["DescribeTags"] = region.images
        expected["GetResources"] = 1 if home else 0  # the refusal, then never again
    else:
        discovery = max(1, math.ceil(region.owned / 100))  # a page per 100 owned
        expected["GetResources"] = discovery + math.ceil(region.images / 100)
        # Where discovery found owned images, the account's bundles are listed (one page:
        # none here), so that a bundle whose spec was removed is found even when the
        # tagging API leaves bundles out.
        expected["DescribeWorkspaceBundles"] = 1 if region.owned else 0
    return {operation: count for operation, count in expected.items() if count}


def assert_discovery_only_elsewhere(endpoint: LocalEndpoint, *read: str) -> None:
    """Every other WorkSpaces region got exactly one GetResources, and nothing else."""
    for region in WORKSPACES_REGIONS:
        if region not in read:
            assert endpoint.calls.by_operation(region) == {"GetResources": 1}, region
    assert {c.region for c in endpoint.calls.all()} == set(WORKSPACES_REGIONS) | set(read)


def assert_within_the_issues_bound(endpoint: LocalEndpoint, region: Region) -> None:
    """Issue 11's bound: at most ceil(M/100) + 1 GetResources for the region's tags plus its
    one discovery call, more only past 100 owned images."""
    calls = endpoint.calls.by_operation(region.name)
    extra_pages = max(0, math.ceil(region.owned / 100) - 1)
    assert calls["GetResources"] <= math.ceil(region.images / 100) + 1 + 1 + extra_pages
    assert "DescribeTags" not in calls


CASES = [
    pytest.param(Region(REGION, images=0, declared=0, creates=0, sources=0), id="M0"),
    pytest.param(Region(REGION, images=0, declared=0, creates=3, sources=2), id="M0-C2"),
    pytest.param(Region(REGION, images=1, declared=1, creates=1, sources=1), id="M1-C1"),
    pytest.param(
        Region(REGION, images=25, declared=10, creates=30, sources=30, missing_sources=4),
        id="M25-C30",
    ),
    pytest.param(Region(REGION, images=26, declared=26, creates=0, sources=0), id="M26"),
    pytest.param(
        Region(REGION, images=60, declared=35, creates=26, sources=25, unowned=10),
        id="M60-C25-unowned10",
        marks=pytest.mark.fidelity(image_quota=200),
    ),
    pytest.param(
        Region(REGION, images=150, declared=120, creates=0, sources=0),
        id="M150",
        marks=pytest.mark.fidelity(image_quota=200),
    ),
]


def plan_json(
    specs_dir: SpecsDir, run_reconciler: RunReconciler, endpoint: LocalEndpoint, region: Region
) -> dict[str, object]:
    plan = run_reconciler(
        "plan", specs_dir, "--allow-empty", "--image-quota", "1000", "--format", "json",
        endpoint=endpoint, check_exit=1 if region.missing_sources else 0,
    )  # fmt: skip
    document: dict[str, object] = plan.json()
    return document


def drift_calls(
    specs_dir: SpecsDir, run_reconciler: RunReconciler, endpoint: LocalEndpoint, region: Region
) -> dict[str, int]:
    """The calls of a drift over the same specs, in the region (the recorder cleared)."""
    endpoint.calls.clear()
    drifted = region.creates or region.owned > region.declared
    run_reconciler(
        "drift", specs_dir, "--allow-empty", "--image-quota", "1000",
        endpoint=endpoint, check_exit=2 if drifted else 0,
    )  # fmt: skip
    return endpoint.calls.by_operation(region.name)


@pytest.mark.parametrize("region", CASES)
def test_a_plan_makes_exactly_the_budgeted_calls(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, region: Region
) -> None:
    seed(endpoint, specs_dir, region)
    document = plan_json(specs_dir, run_reconciler, endpoint, region)
    assert endpoint.calls.by_operation(REGION) == budget(region)
    assert_within_the_issues_bound(endpoint, region)
    assert_discovery_only_elsewhere(endpoint, REGION)
    assert endpoint.calls.throttled() == 0
    items, summary = document["items"], document["summary"]
    assert isinstance(items, list)
    assert isinstance(summary, dict)
    assert len(items) == region.declared + region.creates
    assert summary["unmanaged"] == region.owned - region.declared
    assert summary["blocked"] == sum(
        1 for n in range(region.creates) if n % max(region.sources, 1) < region.missing_sources
    )
    assert drift_calls(specs_dir, run_reconciler, endpoint, region) == budget(region)
    assert_discovery_only_elsewhere(endpoint, REGION)


@pytest.mark.parametrize("region", CASES)
def test_with_the_tagging_api_denied_a_plan_makes_the_budget_of_format_1(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, region: Region
) -> None:
    seed(endpoint, specs_dir, region)
    endpoint.fidelity.deny_tagging()
    document = plan_json(specs_dir, run_reconciler, endpoint, region)
    assert endpoint.calls.by_operation(REGION) == budget(region, denied=True)
    assert {c.region for c in endpoint.calls.all()} == {REGION}
    summary = document["summary"]
    assert isinstance(summary, dict)
    assert summary["unmanaged"] == region.owned - region.declared
    assert drift_calls(specs_dir, run_reconciler, endpoint, region) == budget(region, denied=True)
    assert {c.region for c in endpoint.calls.all()} == {REGION}


def test_the_budget_holds_in_each_of_two_regions_and_for_drift_and_apply_reads(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    eu = Region(REGION, images=26, declared=20, creates=2, sources=2)
    us = Region(OTHER_REGION, images=3, declared=3, creates=27, sources=27)
    seed(endpoint, specs_dir, eu)
    seed(endpoint, specs_dir, us)

    run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0)
    assert endpoint.calls.by_operation(REGION) == budget(eu)
    assert endpoint.calls.by_operation(OTHER_REGION) == budget(us, home=False)
    assert_discovery_only_elsewhere(endpoint, REGION, OTHER_REGION)

    endpoint.calls.clear()
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)  # 6 unmanaged
    assert endpoint.calls.by_operation(REGION) == budget(eu)
    assert endpoint.calls.by_operation(OTHER_REGION) == budget(us, home=False)
    assert_discovery_only_elsewhere(endpoint, REGION, OTHER_REGION)

    # apply reads exactly what plan reads, then makes one change per create.
    endpoint.calls.clear()
    run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=0)
    for region in (eu, us):
        calls = Counter(endpoint.calls.by_operation(region.name))
        assert calls.pop("CreateWorkspaceImage") == region.creates
        assert dict(calls) == budget(region, home=region is eu)


def test_with_the_tagging_api_denied_two_regions_keep_the_budget_of_format_1(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    eu = Region(REGION, images=26, declared=20, creates=2, sources=2)
    us = Region(OTHER_REGION, images=3, declared=3, creates=27, sources=27)
    seed(endpoint, specs_dir, eu)
    seed(endpoint, specs_dir, us)
    endpoint.fidelity.deny_tagging()
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)
    assert endpoint.calls.by_operation(REGION) == budget(eu, denied=True)
    assert endpoint.calls.by_operation(OTHER_REGION) == budget(us, denied=True, home=False)
    assert {c.region for c in endpoint.calls.all()} == {REGION, OTHER_REGION}


def test_target_reads_only_the_tags_of_its_image_and_the_source_of_its_create(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    eu = Region(REGION, images=30, declared=30, creates=3, sources=3)
    us = Region(OTHER_REGION, images=5, declared=5, creates=1, sources=1)
    seed(endpoint, specs_dir, eu)
    seed(endpoint, specs_dir, us)

    plan = run_reconciler(
        "plan", specs_dir, "--target", "eu-image-007", "--format", "json",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    assert [i["name"] for i in plan.json()["items"]] == ["eu-image-007"]
    # The listing is paged as usual (the name is only known from it); one tag read, by ARN.
    # A --target run has no unmanaged list, so it looks for owned images nowhere else.
    assert endpoint.calls.by_operation(REGION) == {
        "DescribeWorkspaceImages": 2,
        "GetResources": 1,
    }
    assert {c.region for c in endpoint.calls.all()} == {REGION}

    endpoint.calls.clear()
    plan = run_reconciler(
        "plan", specs_dir, "--target", "us-new-000", "--target", "eu-new-001", "--format", "json",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    assert sorted(i["action"] for i in plan.json()["items"]) == ["create", "create"]
    for region in (REGION, OTHER_REGION):
        assert endpoint.calls.by_operation(region) == {
            "DescribeWorkspaceImages": 2 if region == REGION else 1,
            "DescribeWorkspaces": 1,
        }


def test_a_paced_plan_keeps_to_the_service_rate_without_a_throttle_and_on_budget(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    # Tags one by one (the tagging API denied) give the WorkSpaces pace the most calls.
    region = Region(REGION, images=26, declared=26, creates=2, sources=1)
    seed(endpoint, specs_dir, region)
    endpoint.fidelity.deny_tagging()
    endpoint.middleware.set_pace((12.0, 5))  # the service: 12 calls/s per region, bursts of 5
    started = time.monotonic()
    run_reconciler("plan", specs_dir, "--api-rate", "10", endpoint=endpoint, check_exit=0)
    elapsed = time.monotonic() - started
    assert endpoint.calls.throttled() == 0
    assert endpoint.calls.by_operation(REGION) == budget(region, denied=True)
    paced = sum(budget(region, denied=True).values()) - 1  # the tagging call has its own pace
    # 29 WorkSpaces calls at 10/s after a burst of 5: at least 2.4 s; the pace was kept.
    assert elapsed >= (paced - 5) / 10
