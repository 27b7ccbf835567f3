"""A converged lifecycle plan at the service's pace: how `reconciler plan` reads images,
their copies, their sharing and bundles, against the pace's floor and a one-by-one script.

One local endpoint (moto plus the fidelity layer, `reconciler/emulator`) in this process, at
the service's pace: WorkSpaces 2 calls/s per region with bursts of 5, the tagging API paced
the same way on buckets of its own, 30 ms latency on every call. Seeded straight into it
(no API call), everything already existing and converged, so every plan item is a `no-op`
(the steady state a scheduled drift run sees):

- 20 owned images in region A, each with an owned copy in region B (`copies: [B]`), every
  image and copy shared with the same 3 accounts (`share_with`);
- 10 owned bundles, 5 per region, each on one of the images of its region.

In one run:

- (r) `reconciler plan SPECS --format json -q` with its defaults (`--api-rate 2`), as a
  subprocess (Python's start included; the output checked: 90 items, all `no-op`);
- (d) the same plan with tag:GetResources denied to the role;
- (s) a sequential boto3 script reading the same state one resource at a time, region
  after region: per image (and copy) DescribeWorkspaceImages by id, DescribeTags and
  DescribeWorkspaceImagePermissions; per bundle DescribeWorkspaceBundles by id and
  DescribeTags. It knows every id beforehand (as from a state file: no listing), and paces
  itself as a script would at 2 calls/s: each call starts at least 0.5 s after the previous
  call to the same region started (no burst), boto3's standard retries (10 attempts).

Floor: for each region, (WorkSpaces calls not throttled - 5) / 2 seconds, the service's
burst then its rate; regions in parallel, so the largest region's. Calls and throttled
responses are counted at the server. Every timed run starts with full server buckets. Exits
1 if a run fails or a reconciler run is throttled.

    python benchmarks/bench_lifecycle.py            # about 3 minutes
    python benchmarks/bench_lifecycle.py --runs 1 --denied-runs 1   # quicker, no medians
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_pacing as pacing  # noqa: E402
import boto3  # noqa: E402
import botocore.config  # noqa: E402

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE  # noqa: E402
from reconciler.emulator import FidelityConfig, LocalEndpoint, local_endpoint  # noqa: E402

PACE = (2.0, 5)  # WorkSpaces, and the tagging API on its own buckets
RATE, BURST = PACE
LATENCY = 0.030
REGION_A, REGION_B = "eu-west-1", "us-east-1"
REGIONS = (REGION_A, REGION_B)
IMAGES = 20  # in region A, each with a copy in region B
BUNDLES = 5  # per region
ACCOUNTS = ("111122223333", "444455556666", "777788889999")
ITEMS = 2 * IMAGES * 2 + BUNDLES * len(REGIONS)  # image + share items per region, bundles
SCRIPT_ATTEMPTS = 10
TAGS = {"team": "platform", "cost-center": "4410"}
OWNED = {**TAGS, OWNERSHIP_TAG_KEY: OWNERSHIP_TAG_VALUE}


@dataclass
class Measure:
    wall: float
    throttled: int
    calls: dict[tuple[str, str], int]  # (api, operation) -> calls not throttled
    per_region: dict[str, int]  # WorkSpaces calls not throttled, by region

    @property
    def floor(self) -> float:
        return max((max(0, n - BURST) / RATE for n in self.per_region.values()), default=0.0)


@dataclass
class Row:
    scenario: str
    who: str
    measures: list[Measure]

    @property
    def wall(self) -> float:
        return statistics.median(m.wall for m in self.measures)

    @property
    def throttled(self) -> int:
        return max(m.throttled for m in self.measures)

    @property
    def first(self) -> Measure:
        return self.measures[0]


@dataclass
class Seeded:
    """The ids a one-by-one script would keep: region -> image ids, region -> bundle ids."""

    images: dict[str, list[str]]
    bundles: dict[str, list[str]]


def image_name(index: int) -> str:
    return f"golden-win11-{index:02d}"


def bundle_name(region: str, index: int) -> str:
    return f"desk-{region}-{index}"


def seed(endpoint: LocalEndpoint) -> Seeded:
    """Converged state: images, copies, sharing and bundles as the specs declare them."""
    fidelity = endpoint.fidelity
    images: dict[str, list[str]] = {r: [] for r in REGIONS}
    bundles: dict[str, list[str]] = {r: [] for r in REGIONS}
    for i in range(IMAGES):
        for region in REGIONS:
            image = fidelity.add_image(region, image_name(i), f"Image {i}", tags=OWNED)
            fidelity.set_shared_accounts(region, image, list(ACCOUNTS))
            images[region].append(image)
    for region in REGIONS:
        for j in range(BUNDLES):
            bundles[region].append(
                fidelity.add_bundle(
                    region,
                    bundle_name(region, j),
                    images[region][j],
                    description=f"Bundle {j}",
                    compute_type="STANDARD",
                    user_storage=50,
                    root_storage=80,
                    tags=OWNED,
                )
            )
    return Seeded(images, bundles)


def write_specs(root: Path) -> Path:
    """One file of image specs (region A, copies to B, shared) and one of bundle specs."""
    root.mkdir(parents=True)
    tags = "tags:\n" + "".join(f'  {k}: "{v}"\n' for k, v in TAGS.items())
    accounts = ", ".join(f'"{a}"' for a in ACCOUNTS)
    images = [
        f"name: {image_name(i)}\n"
        f"description: Image {i}\n"
        f"source_workspace_id: ws-{i:08x}b\n"
        f"region: {REGION_A}\n"
        f"copies: [{REGION_B}]\n"
        f"share_with: [{accounts}]\n" + tags
        for i in range(IMAGES)
    ]
    bundles = [
        "kind: bundle\n"
        f"name: {bundle_name(region, j)}\n"
        f"description: Bundle {j}\n"
        f"image: {image_name(j)}\n"
        "compute_type: STANDARD\n"
        "user_volume_gib: 50\n"
        "root_volume_gib: 80\n"
        f"region: {region}\n" + tags
        for region in REGIONS
        for j in range(BUNDLES)
    ]
    (root / "images.yaml").write_text("---\n".join(images))
    (root / "bundles.yaml").write_text("---\n".join(bundles))
    return root


def observe(endpoint: LocalEndpoint, wall: float) -> Measure:
    calls = endpoint.calls.all()
    ok = [c for c in calls if not c.throttled]
    return Measure(
        wall=wall,
        throttled=sum(c.throttled for c in calls),
        calls=dict(Counter((c.api, c.operation) for c in ok)),
        per_region={
            r: sum(1 for c in ok if c.region == r and c.api == "workspaces") for r in REGIONS
        },
    )


def fresh(endpoint: LocalEndpoint) -> None:
    """Full server buckets (as after a quiet minute) and an empty recorder."""
    endpoint.middleware.set_pace(PACE)
    endpoint.middleware.set_tagging_pace(PACE)
    endpoint.middleware.latency = LATENCY
    time.sleep(0.05)
    endpoint.calls.clear()


def plan(endpoint: LocalEndpoint, specs: Path) -> Measure:
    fresh(endpoint)
    measure, _ = pacing.run_reconciler(endpoint, specs, REGIONS, ITEMS)
    return observe(endpoint, measure.wall)


class Pacer:
    """A script's pace: each call to a region starts at least 1/RATE s after the previous
    call to that region started."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def __call__(self, region: str) -> None:
        due = self.last.get(region, 0.0) + 1 / RATE
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        self.last[region] = time.perf_counter()


def one_by_one(endpoint: LocalEndpoint, seeded: Seeded) -> Measure:
    """Read every image, copy, sharing and bundle one resource at a time, region after
    region, and check that what it read is the converged state."""
    fresh(endpoint)
    config = botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": SCRIPT_ATTEMPTS}
    )
    pace = Pacer()
    started = time.perf_counter()
    for region in REGIONS:
        client = boto3.client(
            "workspaces",
            region_name=region,
            endpoint_url=endpoint.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # dummy credentials for the local endpoint
            config=config,
        )

        def call(method: Callable[..., Any], region: str = region, **kw: Any) -> Any:
            pace(region)
            return method(**kw)

        for image_id in seeded.images[region]:
            found = call(client.describe_workspace_images, ImageIds=[image_id])["Images"]
            tags = call(client.describe_tags, ResourceId=image_id)["TagList"]
            shared = call(client.describe_workspace_image_permissions, ImageId=image_id)
            check(region, image_id, len(found) == 1, tags, shared["ImagePermissions"])
        for bundle_id in seeded.bundles[region]:
            found = call(client.describe_workspace_bundles, BundleIds=[bundle_id])["Bundles"]
            tags = call(client.describe_tags, ResourceId=bundle_id)["TagList"]
            check(region, bundle_id, len(found) == 1, tags, None)
    return observe(endpoint, time.perf_counter() - started)


def check(
    region: str,
    resource: str,
    found: bool,
    tags: list[dict[str, str]],
    shared: list[dict[str, str]] | None,
) -> None:
    read = {t["Key"]: t.get("Value", "") for t in tags}
    accounts = None if shared is None else sorted(p["SharedAccountId"] for p in shared)
    if not found or read != OWNED or accounts not in (None, list(ACCOUNTS)):
        sys.exit(f"one-by-one read of {resource} ({region}) differs: {read}, {accounts}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="(r) runs (median)")
    parser.add_argument("--denied-runs", type=int, default=3, help="(d) runs (median)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as tmp:
        specs = write_specs(Path(tmp) / "specs")
        with local_endpoint(FidelityConfig(), pace=PACE, tagging_pace=PACE, latency=LATENCY) as ep:
            seeded = seed(ep)
            r, d = Row("r", "reconciler", []), Row("d", "reconciler, tagging denied", [])
            for run in range(max(args.runs, args.denied_runs)):
                if run < args.runs:
                    r.measures.append(plan(ep, specs))
                if run < args.denied_runs:
                    ep.fidelity.deny_tagging()
                    d.measures.append(plan(ep, specs))
                    ep.fidelity.deny_tagging(False)
            s = Row("s", "one by one, boto3, paced", [one_by_one(ep, seeded)])
    return report([r, d, s], time.perf_counter() - started, args)


def report(rows: Sequence[Row], total: float, args: argparse.Namespace) -> int:
    by = {row.scenario: row for row in rows}
    print(
        f"python {sys.version.split()[0]}   cpus {os.cpu_count()}   wall: median of "
        f"{args.runs} (r), {args.denied_runs} (d), 1 (s)   benchmark took {total:.0f}s"
    )
    print(
        f"{IMAGES} images in {REGION_A}, a copy of each in {REGION_B}, each shared with "
        f"{len(ACCOUNTS)} accounts, {BUNDLES} bundles per region: {ITEMS} items, all no-op"
    )
    print(
        "server: 2 calls/s burst 5 per region (WorkSpaces; the tagging API on its own "
        "buckets), 30 ms latency;\nfloor: max over regions of (WorkSpaces calls - 5) / 2; "
        "calls counted at the server (not throttled); thr: worst run's throttled responses"
    )
    header = (
        f"{'':<3}{'who':<28}{'wall s':>7}{'floor s':>8}{'wall/floor':>11}{'thr':>5}  "
        f"WorkSpaces calls by region   runs (s)"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        m = row.first
        regions = ", ".join(f"{r} {n}" for r, n in m.per_region.items())
        walls = ", ".join(f"{x.wall:.2f}" for x in row.measures)
        print(
            f"{row.scenario:<3}{row.who:<28}{row.wall:>7.2f}{m.floor:>8.1f}"
            f"{row.wall / m.floor:>11.2f}{row.throttled:>5}  {regions:<28} {walls}"
        )
    print("\ncalls per API and operation (not throttled; (r) and (d): the first run's):")
    operations = sorted({key for row in rows for key in row.first.calls})
    print(f"  {'api':<11}{'operation':<36}" + "".join(f"{row.scenario:>6}" for row in rows))
    for api, operation in operations:
        counts = "".join(f"{row.first.calls.get((api, operation), 0):>6}" for row in rows)
        print(f"  {api:<11}{operation:<36}{counts}")
    totals = "".join(f"{sum(row.first.calls.values()):>6}" for row in rows)
    print(f"  {'':<11}{'all':<36}{totals}")

    r, d, s = by["r"], by["d"], by["s"]
    print()
    for text, a, b in (
        ("(r) / floor, reconciler", r.wall, r.first.floor),
        ("(d) / floor, tagging denied", d.wall, d.first.floor),
        ("(s) / (r), one by one / reconciler", s.wall, r.wall),
        ("(s) / (d), one by one / tagging denied", s.wall, d.wall),
    ):
        print(f"{text}: {a:.2f}s / {b:.2f}s = {a / b:.2f}")
    script_pace = (sum(s.first.per_region.values()) - 1) / RATE
    print(
        f"(s) at its own pace, regions one after the other and no burst, needs at least "
        f"{script_pace:.1f}s"
    )
    failed = r.throttled > 0 or d.throttled > 0
    print(
        f"\nthrottled responses in reconciler runs: (r) {r.throttled}, (d) {d.throttled}  "
        f"{'FAIL' if failed else 'PASS'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
