"""The plan's call budget, counted at the server.

WorkSpaces answers about 2 calls per second per region, so every call counts. A plan makes,
per region: exactly max(1, ceil(M/25)) DescribeWorkspaceImages (M: the images listed),
one DescribeTags per listed image, ceil(C/25) DescribeWorkspaces (C: the distinct source
WorkSpaces of creates), and nothing else.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, RunReconciler, SpecsDir
from tests.fidelity import LocalEndpoint

OTHER_REGION = "us-east-1"
OWN = {OWNERSHIP_TAG_KEY: "true"}


@dataclass(frozen=True)
class Region:
    """What one region holds and declares."""

    name: str
    images: int  # M: owned images listed
    declared: int  # how many of them have a spec (the rest are unmanaged)
    creates: int  # specs with no image
    sources: int  # C: distinct source WorkSpaces among the creates (<= creates)
    missing_sources: int = 0  # of those, how many do not exist (their creates are blocked)


def seed(endpoint: LocalEndpoint, specs_dir: SpecsDir, region: Region) -> None:
    prefix = region.name[:2]
    docs = []
    for n in range(region.images):
        name = f"{prefix}-image-{n:03d}"
        endpoint.fidelity.add_image(region.name, name, f"Image {name}", tags={**OWN, "k": "v"})
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


def budget(region: Region) -> dict[str, int]:
    expected = {
        "DescribeWorkspaceImages": max(1, math.ceil(region.images / 25)),
        "DescribeTags": region.images,
        "DescribeWorkspaces": math.ceil(region.sources / 25),
    }
    return {operation: count for operation, count in expected.items() if count}


CASES = [
    Region(REGION, images=0, declared=0, creates=0, sources=0),
    Region(REGION, images=0, declared=0, creates=3, sources=2),
    Region(REGION, images=1, declared=1, creates=1, sources=1),
    Region(REGION, images=25, declared=10, creates=30, sources=30, missing_sources=4),
    Region(REGION, images=26, declared=26, creates=0, sources=0),
    Region(REGION, images=60, declared=35, creates=26, sources=25),
]


@pytest.mark.parametrize(
    "region", CASES, ids=[f"M{r.images}-C{r.sources}-creates{r.creates}" for r in CASES]
)
def test_a_plan_makes_exactly_the_budgeted_calls(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, region: Region
) -> None:
    seed(endpoint, specs_dir, region)
    plan = run_reconciler(
        "plan", specs_dir, "--allow-empty", "--image-quota", "1000", "--format", "json",
        endpoint=endpoint, check_exit=1 if region.missing_sources else 0,
    )  # fmt: skip
    assert endpoint.calls.by_operation(REGION) == budget(region)
    assert {c.region for c in endpoint.calls.all()} == {REGION}
    assert endpoint.calls.throttled() == 0
    document = plan.json()
    assert len(document["items"]) == region.declared + region.creates
    assert document["summary"]["unmanaged"] == region.images - region.declared
    assert document["summary"]["blocked"] == sum(
        1 for n in range(region.creates) if n % max(region.sources, 1) < region.missing_sources
    )


def test_the_budget_holds_in_each_of_two_regions_and_for_drift_and_apply_reads(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    eu = Region(REGION, images=26, declared=20, creates=2, sources=2)
    us = Region(OTHER_REGION, images=3, declared=3, creates=27, sources=27)
    seed(endpoint, specs_dir, eu)
    seed(endpoint, specs_dir, us)

    run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0)
    assert endpoint.calls.by_operation(REGION) == budget(eu)
    assert endpoint.calls.by_operation(OTHER_REGION) == budget(us)
    assert {c.region for c in endpoint.calls.all()} == {REGION, OTHER_REGION}

    endpoint.calls.clear()
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)  # 6 unmanaged
    assert endpoint.calls.by_operation(REGION) == budget(eu)
    assert endpoint.calls.by_operation(OTHER_REGION) == budget(us)

    # apply reads exactly what plan reads, then makes one change per create.
    endpoint.calls.clear()
    run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=0)
    for region in (eu, us):
        calls = Counter(endpoint.calls.by_operation(region.name))
        assert calls.pop("CreateWorkspaceImage") == region.creates
        assert dict(calls) == budget(region)


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
    # The listing is paged as usual (the name is only known from it); one tag read.
    assert endpoint.calls.by_operation(REGION) == {
        "DescribeWorkspaceImages": 2,
        "DescribeTags": 1,
    }
    assert endpoint.calls.by_operation(OTHER_REGION) == {}

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
    region = Region(REGION, images=26, declared=26, creates=2, sources=1)
    seed(endpoint, specs_dir, region)
    endpoint.middleware.set_pace((12.0, 5))  # the service: 12 calls/s per region, bursts of 5
    started = time.monotonic()
    run_reconciler("plan", specs_dir, "--api-rate", "10", endpoint=endpoint, check_exit=0)
    elapsed = time.monotonic() - started
    assert endpoint.calls.throttled() == 0
    assert endpoint.calls.by_operation(REGION) == budget(region)
    # 29 calls at 10/s after a burst of 5: at least 2.4 s; the pace was kept, not skipped.
    assert elapsed >= (sum(budget(region).values()) - 5) / 10
