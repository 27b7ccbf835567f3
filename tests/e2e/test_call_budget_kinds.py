"""The call budget of copies, sharing and bundles, counted at the server.

A plan reads, per region it reads (the budget documented in `reconciler/inventory.py`):

- max(1, ceil(M/25)) DescribeWorkspaceImages (M: the images listed) and ceil(C/25)
  DescribeWorkspaces (C: the distinct sources of captures to create);
- tags through the tagging API: the discovery GetResources (tag filter) in every WorkSpaces
  region of the partition, a page per 100 owned images and bundles, then ceil((J+B)/100)
  GetResources with ARNs (J images judged and B bundles listed, in the same calls);
- only where specs declare bundles or discovery found owned images or bundles:
  max(1, ceil(B/25)) DescribeWorkspaceBundles (so that a bundle whose spec was removed is
  found even when the tagging API leaves bundles out), and one DescribeTags per bundle the
  tagging API's answer leaves out;
- only for an image whose spec declares `share_with` and that is AVAILABLE there:
  max(1, ceil(P/25)) DescribeWorkspaceImagePermissions (P: the accounts it is shared with);
- ceil(K/25) DescribeWorkspaceImages by id (K: the `image_id`s of bundle specs that the owned
  listing did not show);
- once a run, when a spec declares `share_with`: one sts:GetCallerIdentity (the check that
  no image is shared with its own account).

A copy region is read like any other. Apply reads exactly what plan reads, then makes the
documented calls of each item (see each test). A specs folder without bundles, copies and
sharing keeps the budget of format 1 (`test_call_budget.py`) plus that one bundle listing
where owned images live, and makes no bundle change and no permission call at all.

Every test compares the whole Counter of (operation, region) the endpoint received with the
expected one, so a call too many, too few or in the wrong region fails it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, Outcome, RunReconciler, SpecsDir, bundle_doc, image_doc
from tests.e2e.test_call_budget import (
    OTHER_REGION,
    WORKSPACES_REGIONS,
    Region,
    assert_discovery_only_elsewhere,
    budget,
    seed,
)
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
COPY_REGIONS = ("us-east-1", "ap-southeast-2")
STRAY_REGION = "ap-northeast-1"  # no spec names it; only discovery can lead a plan there
FOREIGN_OWNER = "210987654321"  # another account, whose images are shared with ours
WS_GOLDEN = "ws-0a1b2c3d4"
WS_FRESH = "ws-0f1e2d3c4"
ACCOUNT_1 = "111122223333"
ACCOUNT_2 = "444455556666"
ACCOUNT_3 = "777788889999"
ACCOUNT_4 = "999900001111"

BUNDLE_CALLS = frozenset(
    {
        "DescribeWorkspaceBundles",
        "CreateWorkspaceBundle",
        "UpdateWorkspaceBundle",
        "DeleteWorkspaceBundle",
    }
)
PERMISSION_CALLS = frozenset(
    {"DescribeWorkspaceImagePermissions", "UpdateWorkspaceImagePermission"}
)

Calls = Counter[tuple[str, str]]  # (operation, region): how many


# --- the budget --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reads:
    """What a plan finds in one region it reads, which fixes the calls it makes there."""

    images: int = 0  # M: images in the owned listing (all judged: J = M)
    owned: int = 0  # images and bundles carrying the ownership tag (discovery's answer)
    sources: int = 0  # C: distinct source WorkSpaces of captures to create
    # B: bundles listed; None: as discovery has it (listed, none there, where it found owned
    # images or bundles; else not read)
    bundles: int | None = None
    shares: tuple[int, ...] = ()  # P of each image whose sharing is read
    by_id: int = 0  # K: image ids of bundle specs that the owned listing did not show

    def calls(self, region: str) -> Calls:
        bundles = self.bundles if self.bundles is not None else (0 if self.owned else None)
        listed_bundles = bundles or 0
        counts = {
            "DescribeWorkspaceImages": max(1, math.ceil(self.images / 25))
            + math.ceil(self.by_id / 25),
            "DescribeWorkspaces": math.ceil(self.sources / 25),
            "GetResources": max(1, math.ceil(self.owned / 100))
            + math.ceil((self.images + listed_bundles) / 100),
            "DescribeWorkspaceBundles": 0 if bundles is None else max(1, math.ceil(bundles / 25)),
            "DescribeWorkspaceImagePermissions": sum(
                max(1, math.ceil(p / 25)) for p in self.shares
            ),
        }
        return Counter({(op, region): n for op, n in counts.items() if n})


def plan_budget(reads: Mapping[str, Reads], *, sharing: bool = False) -> Calls:
    """Every call of a plan: the regions read, and discovery's one call everywhere else;
    with `sharing` (a spec declares `share_with`), one sts:GetCallerIdentity in the default
    region (the own-account check)."""
    calls: Calls = Counter({("GetResources", r): 1 for r in WORKSPACES_REGIONS if r not in reads})
    if sharing:
        calls[("GetCallerIdentity", REGION)] = 1
    for region, read in reads.items():
        calls.update(read.calls(region))
    return calls


def received(endpoint: LocalEndpoint) -> Calls:
    return Counter((c.operation, c.region) for c in endpoint.calls.all())


def changes(*calls: tuple[str, str, int]) -> Calls:
    """(operation, region, count) of the calls apply makes besides its plan's reads."""
    return Counter({(op, region): n for op, region, n in calls})


# --- specs and live state ----------------------------------------------------------------


def accounts(count: int) -> list[str]:
    return [f"2000{n:08d}" for n in range(count)]


def add_bundle(endpoint: LocalEndpoint, region: str, name: str, image_id: str, **kw: Any) -> str:
    """A bundle as `bundle_doc` declares it (so that only what a test changes differs)."""
    return endpoint.fidelity.add_bundle(region, name, image_id, description=f"Bundle {name}", **kw)


def add_foreign_image(endpoint: LocalEndpoint, region: str, name: str) -> str:
    """An image another account owns and shares with ours: DescribeWorkspaceImages shows it
    when asked by id, never in the OWNED listing."""
    image_id = endpoint.fidelity.add_image(region, name, f"Image {name}")
    endpoint.fidelity.backend(region).workspace_images[image_id].owner_account = FOREIGN_OWNER
    return image_id


def apply_json(
    run: RunReconciler, specs: SpecsDir, endpoint: LocalEndpoint, *extra: str, check_exit: int
) -> Outcome:
    return run(
        "apply", specs, "--auto-approve", "--format", "json", *extra,
        endpoint=endpoint, check_exit=check_exit,
    )  # fmt: skip


def results(outcome: Outcome) -> dict[tuple[str, str, str], str]:
    """(kind, region, name) -> result, of the items and the unmanaged resources."""
    document = outcome.json()
    found = {(i["kind"], i["region"], i["name"]): i["result"] for i in document["items"]}
    found |= {(u["kind"], u["region"], u["name"]): u["result"] for u in document["unmanaged"]}
    return found


# --- 1. format 1 keeps its budget, and makes no bundle or permission call ------------------


def assert_no_lifecycle_call(endpoint: LocalEndpoint) -> None:
    """No bundle or permission call but the listing of bundles (where owned images live)."""
    made = {c.operation for c in endpoint.calls.all()} - {"DescribeWorkspaceBundles"}
    assert made.isdisjoint(BUNDLE_CALLS | PERMISSION_CALLS), sorted(made)


def test_specs_without_bundles_copies_or_sharing_keep_the_budget_of_format_1(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    # 5 owned images in eu-west-1, 4 declared: the fifth is unmanaged (never shared), and
    # apply --prune deletes it.
    eu = Region(REGION, images=5, declared=4, creates=2, sources=2)
    us = Region(OTHER_REGION, images=3, declared=3, creates=1, sources=1)
    seed(endpoint, specs_dir, eu)
    seed(endpoint, specs_dir, us)
    unmanaged = "eu-image-004"

    plan = run_reconciler(
        "plan", specs_dir, "--prune", "--format", "json", endpoint=endpoint, check_exit=0
    )
    assert [u["name"] for u in plan.json()["unmanaged"]] == [unmanaged]
    assert endpoint.calls.by_operation(REGION) == budget(eu)
    assert endpoint.calls.by_operation(OTHER_REGION) == budget(us, home=False)
    assert_discovery_only_elsewhere(endpoint, REGION, OTHER_REGION)
    assert_no_lifecycle_call(endpoint)

    endpoint.calls.clear()
    run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=2)
    assert endpoint.calls.by_operation(REGION) == budget(eu)
    assert endpoint.calls.by_operation(OTHER_REGION) == budget(us, home=False)
    assert_discovery_only_elsewhere(endpoint, REGION, OTHER_REGION)
    assert_no_lifecycle_call(endpoint)

    endpoint.calls.clear()
    done = apply_json(run_reconciler, specs_dir, endpoint, "--prune", check_exit=0)
    assert results(done)[("image", REGION, unmanaged)] == "deleted"
    assert unmanaged not in {i["name"] for i in endpoint.fidelity.images(REGION)}
    # Apply reads what plan reads; then one create per capture, and for the pruned image
    # a fresh DescribeTags (still owned?) and its DeleteWorkspaceImage.
    applied = {
        REGION: budget(eu)
        | {"CreateWorkspaceImage": eu.creates, "DescribeTags": 1, "DeleteWorkspaceImage": 1},
        OTHER_REGION: budget(us, home=False) | {"CreateWorkspaceImage": us.creates},
    }
    for region, expected in applied.items():
        assert endpoint.calls.by_operation(region) == expected, region
    assert_discovery_only_elsewhere(endpoint, REGION, OTHER_REGION)
    assert_no_lifecycle_call(endpoint)
    assert endpoint.calls.throttled() == 0


# --- 2. a plan with copies, sharing and bundles -------------------------------------------


@dataclass(frozen=True)
class Case:
    """The home region holds the owned image `golden` (declared), `retired` (owned, no
    spec), and `fresh` is declared to be captured from an existing WorkSpace (C = 1)."""

    shared: int | None = None  # P: accounts golden (and its copy) is shared with; None: no
    # share_with (with it, the declared set is one account: the plan updates the sharing)
    bundles: int = 0  # B: owned bundles on golden in the home region
    bundle_spec: bool = False  # a bundle spec on golden (bundle-000: a create when B = 0)
    copies: int = 0  # copy regions of golden: the first holds the copy, the second not yet
    by_id: int = 0  # K: bundle specs naming images shared with us (not in the listing)
    extra_images: int = 0  # more owned, declared images in the home region
    pending: bool = False  # a declared PENDING image with share_with: its sharing not read
    stray_bundle: bool = False  # an owned bundle in a region no spec names
    copy_bundle: bool = False  # a bundle spec on golden's copy, in the first copy region


def seed_case(endpoint: LocalEndpoint, specs_dir: SpecsDir, case: Case) -> dict[str, Reads]:
    """Write the specs and the live state of `case`; return what a plan finds, by region."""
    fid = endpoint.fidelity
    golden = fid.add_image(REGION, "golden", "Image golden", tags=OWN)
    fid.add_image(REGION, "retired", "Image retired", tags=OWN)
    fid.add_workspace(REGION, WS_FRESH)
    sharing: dict[str, Any] = {} if case.shared is None else {"share_with": [ACCOUNT_1]}
    copy_regions = list(COPY_REGIONS[: case.copies])
    copies: dict[str, Any] = {"copies": copy_regions} if copy_regions else {}
    docs = [image_doc("golden", **copies, **sharing), image_doc("fresh", WS_FRESH, **sharing)]
    for n in range(case.extra_images):
        fid.add_image(REGION, f"extra-{n:03d}", f"Image extra-{n:03d}", tags=OWN)
        docs.append(image_doc(f"extra-{n:03d}"))
    if case.pending:
        fid.add_image(REGION, "capturing", "Image capturing", tags=OWN, state="PENDING")
        docs.append(image_doc("capturing", **sharing))
    shared = accounts(case.shared or 0)
    if case.shared is not None:
        fid.set_shared_accounts(REGION, golden, shared)
    for n in range(case.bundles):
        add_bundle(endpoint, REGION, f"bundle-{n:03d}", golden, tags=OWN)
    if case.bundle_spec:
        docs.append(bundle_doc("bundle-000", image="golden"))
    for n in range(case.by_id):
        foreign = add_foreign_image(endpoint, REGION, f"foreign-{n:03d}")
        docs.append(bundle_doc(f"by-id-{n:03d}", image_id=foreign))
    if case.by_id:  # an image_id the listing shows costs no call
        docs.append(bundle_doc("by-id-owned", image_id=golden))
    if copy_regions:
        copy = fid.add_image(copy_regions[0], "golden", "Image golden", tags=OWN)
        if case.shared is not None:
            fid.set_shared_accounts(copy_regions[0], copy, shared)
    if case.copy_bundle:
        docs.append(bundle_doc("standard-copy", image="golden", region=copy_regions[0]))
    if case.stray_bundle:
        add_bundle(endpoint, STRAY_REGION, "left-behind", "wsi-000000000", tags=OWN)
    specs_dir.write("specs.yaml", *docs)

    images = 2 + case.extra_images + case.pending
    reads_bundles = case.bundles > 0 or case.bundle_spec or case.by_id > 0
    share_reads = () if case.shared is None else (case.shared,)
    reads = {
        REGION: Reads(
            images=images,
            owned=images + case.bundles,
            sources=1,
            bundles=case.bundles if reads_bundles else None,
            shares=share_reads,
            by_id=case.by_id,
        )
    }
    if copy_regions:
        copy_bundles = 0 if case.copy_bundle else None  # none there yet; read if declared
        reads[copy_regions[0]] = Reads(images=1, owned=1, bundles=copy_bundles, shares=share_reads)
    for region in copy_regions[1:]:
        reads[region] = Reads()
    if case.stray_bundle:
        reads[STRAY_REGION] = Reads(owned=1, bundles=1)
    return reads


PLAN_CASES = [
    pytest.param(Case(), id="plain"),
    pytest.param(Case(shared=0), id="P0"),
    pytest.param(Case(shared=3), id="P3"),
    pytest.param(Case(shared=25), id="P25"),
    pytest.param(Case(shared=26), id="P26"),
    pytest.param(Case(shared=3, pending=True), id="P3-pending-not-read"),
    pytest.param(Case(bundle_spec=True), id="B0-declared"),
    pytest.param(Case(bundles=1), id="B1-found-by-discovery"),
    pytest.param(Case(bundles=25, bundle_spec=True), id="B25"),
    pytest.param(Case(bundles=26, bundle_spec=True), id="B26"),
    pytest.param(Case(copies=1), id="copy1"),
    pytest.param(Case(copies=2, shared=26), id="copy2-P26"),
    pytest.param(Case(copies=1, copy_bundle=True), id="copy1-bundle-in-the-copy-region-only"),
    pytest.param(Case(by_id=1), id="K1"),
    pytest.param(Case(by_id=26), id="K26"),
    pytest.param(Case(stray_bundle=True), id="bundle-in-an-unnamed-region"),
    pytest.param(
        Case(extra_images=78, bundles=26, bundle_spec=True, shared=3, copies=1),
        id="J80-B26-tags-in-the-same-calls",
    ),
]


@pytest.mark.parametrize("case", PLAN_CASES)
def test_a_plan_makes_exactly_the_documented_calls_per_operation_and_region(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, case: Case
) -> None:
    reads = seed_case(endpoint, specs_dir, case)
    plan = run_reconciler(
        "plan", specs_dir, "--image-quota", "1000", "--format", "json",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip
    assert received(endpoint) == plan_budget(reads, sharing=case.shared is not None)
    assert endpoint.calls.throttled() == 0
    # The calls were the plan's reads of what the case seeded, not of something else.
    kinds = Counter(i["kind"] for i in plan.json()["items"])
    copies = case.copies
    images = 2 + case.extra_images + case.pending + copies
    bundles = case.bundle_spec + case.by_id + (1 if case.by_id else 0) + case.copy_bundle
    shares = 0 if case.shared is None else 2 + case.pending + copies
    assert kinds == +Counter({"image": images, "bundle": bundles, "share": shares})


# --- 3. apply, per kind --------------------------------------------------------------------


def test_a_copy_create_is_one_copy_call_in_the_destination_region(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    specs_dir.write("a.yaml", image_doc("golden", copies=[COPY_REGIONS[0]]))
    done = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert results(done)[("image", COPY_REGIONS[0], "golden")] == "created"
    reads = {REGION: Reads(images=1, owned=1), COPY_REGIONS[0]: Reads()}
    assert received(endpoint) == plan_budget(reads) + changes(
        ("CopyWorkspaceImage", COPY_REGIONS[0], 1)
    )


def test_a_share_update_is_one_tag_read_and_one_call_per_account_changed(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    endpoint.fidelity.set_shared_accounts(REGION, image, [ACCOUNT_1, ACCOUNT_3])
    specs_dir.write("a.yaml", image_doc("golden", share_with=[ACCOUNT_1, ACCOUNT_2, ACCOUNT_4]))
    done = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert results(done)[("share", REGION, "golden")] == "sharing-updated"
    assert sorted(endpoint.fidelity.shared_accounts(REGION, image)) == sorted(
        [ACCOUNT_1, ACCOUNT_2, ACCOUNT_4]
    )
    reads = {REGION: Reads(images=1, owned=1, shares=(2,))}
    # +2 -1: the fresh DescribeTags (still owned?), then one call per account.
    assert received(endpoint) == plan_budget(reads, sharing=True) + changes(
        ("DescribeTags", REGION, 1), ("UpdateWorkspaceImagePermission", REGION, 3)
    )


@pytest.mark.fidelity(capture_seconds=1.0)
def test_sharing_an_image_captured_in_the_same_run_reads_no_tags_again(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_GOLDEN)
    specs_dir.write("a.yaml", image_doc("golden", share_with=[ACCOUNT_1, ACCOUNT_2]))
    done = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--wait", "--format", "json",
        endpoint=endpoint, check_exit=0, timeout=120,
    )  # fmt: skip
    assert results(done)[("share", REGION, "golden")] == "sharing-updated"
    # Waiting polls the listing, so only the calls of the change are counted: this run made
    # the image, so its ownership needs no DescribeTags.
    assert endpoint.calls.count("DescribeTags") == 0
    assert endpoint.calls.count("CreateWorkspaceImage") == 1
    assert endpoint.calls.count("UpdateWorkspaceImagePermission", REGION) == 2


def test_a_bundle_create_is_one_create_call(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    specs_dir.write("a.yaml", image_doc("golden"), bundle_doc("standard", image="golden"))
    done = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert results(done)[("bundle", REGION, "standard")] == "created"
    reads = {REGION: Reads(images=1, owned=1, bundles=0)}
    assert received(endpoint) == plan_budget(reads) + changes(("CreateWorkspaceBundle", REGION, 1))


UPDATE_IMAGE_TAGS = [
    pytest.param({"team": "t"}, {"team": "t"}, (), id="same-tags"),
    pytest.param({}, {"team": "t"}, ("CreateTags",), id="tag-added"),
    pytest.param({"team": "t"}, {}, ("DeleteTags",), id="tag-removed"),
    pytest.param({"team": "t", "old": "x"}, {"team": "u"}, ("CreateTags", "DeleteTags"), id="both"),
]


@pytest.mark.parametrize(("live_tags", "declared", "tag_calls"), UPDATE_IMAGE_TAGS)
def test_a_bundle_update_image_is_one_tag_read_and_one_update_and_its_tag_writes(
    endpoint: LocalEndpoint,
    specs_dir: SpecsDir,
    run_reconciler: RunReconciler,
    live_tags: dict[str, str],
    declared: dict[str, str],
    tag_calls: Sequence[str],
) -> None:
    old = endpoint.fidelity.add_image(REGION, "golden-10", "Image golden-10", tags=OWN)
    new = endpoint.fidelity.add_image(REGION, "golden-11", "Image golden-11", tags=OWN)
    add_bundle(endpoint, REGION, "standard", old, tags={**OWN, **live_tags})
    tags = {"tags": declared} if declared else {}
    specs_dir.write(
        "a.yaml",
        image_doc("golden-10"),
        image_doc("golden-11"),
        bundle_doc("standard", image="golden-11", **tags),
    )
    done = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert results(done)[("bundle", REGION, "standard")] == "image-updated"
    bundle = endpoint.fidelity.bundles(REGION)[0]
    assert (bundle["image_id"], bundle["tags"]) == (new, {**OWN, **declared})
    reads = {REGION: Reads(images=2, owned=3, bundles=1)}
    assert received(endpoint) == plan_budget(reads) + changes(
        ("DescribeTags", REGION, 1),
        ("UpdateWorkspaceBundle", REGION, 1),
        *((op, REGION, 1) for op in tag_calls),
    )


def test_a_bundle_prune_is_one_tag_read_and_one_delete(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    image = endpoint.fidelity.add_image(REGION, "golden", "Image golden", tags=OWN)
    add_bundle(endpoint, REGION, "old-bundle", image, tags=OWN)
    specs_dir.write("a.yaml", image_doc("golden"))
    done = apply_json(run_reconciler, specs_dir, endpoint, "--prune", check_exit=0)
    assert results(done)[("bundle", REGION, "old-bundle")] == "deleted"
    assert endpoint.fidelity.bundles(REGION) == []
    # No bundle spec: the bundles are read because discovery found an owned one.
    reads = {REGION: Reads(images=1, owned=2, bundles=1)}
    assert received(endpoint) == plan_budget(reads) + changes(
        ("DescribeTags", REGION, 1), ("DeleteWorkspaceBundle", REGION, 1)
    )


@pytest.mark.parametrize("shared", [2, 26])
def test_a_shared_image_prune_is_refused_then_unshared_then_deleted(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, shared: int
) -> None:
    endpoint.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN)
    old = endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)
    endpoint.fidelity.set_shared_accounts(REGION, old, accounts(shared))
    specs_dir.write("a.yaml", image_doc("keep"))
    done = apply_json(run_reconciler, specs_dir, endpoint, "--prune", check_exit=0)
    assert results(done)[("image", REGION, "old")] == "deleted"
    assert {i["name"] for i in endpoint.fidelity.images(REGION)} == {"keep"}
    # No spec declares its sharing: the plan reads none. The delete is refused while it is
    # shared, then its accounts are read and revoked, and the delete is sent again.
    reads = {REGION: Reads(images=2, owned=2)}
    assert received(endpoint) == plan_budget(reads) + changes(
        ("DescribeTags", REGION, 1),
        ("DeleteWorkspaceImage", REGION, 2),
        ("DescribeWorkspaceImagePermissions", REGION, math.ceil(shared / 25)),
        ("UpdateWorkspaceImagePermission", REGION, shared),
    )
