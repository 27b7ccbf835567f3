"""Tags in bulk (issue 11): how fast `reconciler plan` reads 40 owned images at the service's
pace, with the Resource Groups Tagging API and without it, against the issue's targets.

One local endpoint (moto plus the fidelity layer, `reconciler/emulator`) in this process, at
the service's pace: WorkSpaces 2 calls/s per region with bursts of 5, and the tagging API
paced the same way on buckets of its own (its real limit is not published with WorkSpaces';
the same pace is the pessimistic case), 30 ms latency on every call. Owned images are
seeded straight into it with a matching spec each (every item a `no-op`). In one run:

- (t1) 40 images in one region, the reconciler with its defaults: tags in bulk;
- (d1) the same plan with tag:GetResources denied to the role: one DescribeTags per image;
- (s1) a sequential boto3 script: DescribeWorkspaceImages pages of 25, then DescribeTags
  one image at a time, boto3's standard retries (10 attempts), no client pacing;
- (t4) 4 regions x 40 images, the reconciler with its defaults.

Discovery finds every region that holds owned images, so (t4)'s other three regions hold
images only during (t4)'s runs: they are seeded before each and emptied after it. (t1) and
(t4) runs alternate, so that both meet the same load on a shared machine.

Targets: (t1) at least 5 x faster than (d1) and than (s1); no throttled response in any
reconciler run; (t4) no slower than 1.2 x (t1). The ambition: (t1) under 1.5 s. Calls and
throttled responses are counted at the server. Every timed run starts with full server
buckets. Exits 1 if a target is missed.

    python benchmarks/bench_tags.py            # about a minute
    python benchmarks/bench_tags.py --runs 1   # quicker, no medians
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_pacing as pacing  # noqa: E402

from reconciler.emulator import FidelityConfig, LocalEndpoint, local_endpoint  # noqa: E402

PACE = (2.0, 5)  # WorkSpaces, and the tagging API on its own buckets
LATENCY = 0.030
IMAGES = 40
REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-southeast-2")

SPEEDUP_TARGET = 5.0  # (t1) against (d1) and against (s1)
REGIONS_TARGET = 1.2  # (t4) wall / (t1) wall
AMBITION = 1.5  # seconds, (t1)


@dataclass
class Runs:
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
    def calls(self) -> dict[str, int]:
        return self.measures[0].calls


@dataclass
class Measure:
    wall: float
    throttled: int
    calls: dict[str, int]  # non-throttled, by operation


def observe(endpoint: LocalEndpoint, wall: float) -> Measure:
    calls = endpoint.calls.all()
    return Measure(
        wall=wall,
        throttled=sum(c.throttled for c in calls),
        calls=dict(Counter(c.operation for c in calls if not c.throttled)),
    )


def fresh(endpoint: LocalEndpoint) -> None:
    """Full server buckets (as after a quiet minute) and an empty recorder."""
    endpoint.middleware.set_pace(PACE)
    endpoint.middleware.set_tagging_pace(PACE)
    endpoint.middleware.latency = LATENCY
    time.sleep(0.05)
    endpoint.calls.clear()


def plan(endpoint: LocalEndpoint, specs: Path, regions: Sequence[str]) -> Measure:
    fresh(endpoint)
    measure, _ = pacing.run_reconciler(endpoint, specs, regions, IMAGES * len(regions))
    return observe(endpoint, measure.wall)


def empty(endpoint: LocalEndpoint, region: str) -> None:
    """No image left in `region` (straight in the backend, as `pacing.seed` adds them)."""
    with endpoint.fidelity.lock:
        endpoint.fidelity.backend(region).workspace_images.clear()


def baseline(endpoint: LocalEndpoint, regions: Sequence[str]) -> list[Measure]:
    fresh(endpoint)
    measure = pacing.run_baseline(endpoint, regions, IMAGES * len(regions))
    return [observe(endpoint, measure.wall)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="(t1) and (t4) runs (median)")
    args = parser.parse_args()
    rows: list[Runs] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-tags-") as tmp:
        one = pacing.write_specs(Path(tmp) / "one", REGIONS[:1], IMAGES)
        four = pacing.write_specs(Path(tmp) / "four", REGIONS, IMAGES)
        with local_endpoint(FidelityConfig(), pace=PACE, tagging_pace=PACE, latency=LATENCY) as ep:
            pacing.seed(ep, REGIONS[0], IMAGES)
            t1, t4 = Runs("t1", "reconciler", []), Runs("t4", "reconciler", [])
            for _ in range(args.runs):
                t1.measures.append(plan(ep, one, REGIONS[:1]))
                for region in REGIONS[1:]:
                    pacing.seed(ep, region, IMAGES)
                t4.measures.append(plan(ep, four, REGIONS))
                for region in REGIONS[1:]:
                    empty(ep, region)
            rows.append(t1)
            ep.fidelity.deny_tagging()
            rows.append(Runs("d1", "reconciler, tagging denied", [plan(ep, one, REGIONS[:1])]))
            ep.fidelity.deny_tagging(False)
            rows.append(Runs("s1", "sequential boto3", baseline(ep, REGIONS[:1])))
            rows.append(t4)
    return report(rows, time.perf_counter() - started, args.runs)


def report(rows: list[Runs], total: float, runs: int) -> int:
    by = {r.scenario: r for r in rows}
    print(
        f"python {sys.version.split()[0]}   cpus {os.cpu_count()}   wall: median of {runs} "
        f"reconciler runs ((d1) and (s1): one run)   benchmark took {total:.0f}s"
    )
    print("pace 2 calls/s burst 5 per region (WorkSpaces; the tagging API on its own buckets),")
    print("30 ms latency; calls counted at the server (not throttled); thr: throttled responses")
    header = f"{'':<4}{'who':<28}{'wall s':>8}{'thr':>5}  runs (s)   calls"
    print(header)
    print("-" * 100)
    for row in rows:
        walls = ", ".join(f"{m.wall:.2f}" for m in row.measures)
        calls = ", ".join(f"{op} {n}" for op, n in sorted(row.calls.items()))
        print(
            f"{row.scenario:<4}{row.who:<28}{row.wall:>8.2f}{row.throttled:>5}  {walls}   {calls}"
        )

    checks = [
        (
            f"(t1) >= {SPEEDUP_TARGET:.0f} x faster than (d1), the tagging API denied: "
            f"{by['d1'].wall:.2f}s / {by['t1'].wall:.2f}s = {by['d1'].wall / by['t1'].wall:.1f}",
            by["d1"].wall >= SPEEDUP_TARGET * by["t1"].wall,
        ),
        (
            f"(t1) >= {SPEEDUP_TARGET:.0f} x faster than (s1), sequential boto3: "
            f"{by['s1'].wall:.2f}s / {by['t1'].wall:.2f}s = {by['s1'].wall / by['t1'].wall:.1f}",
            by["s1"].wall >= SPEEDUP_TARGET * by["t1"].wall,
        ),
        (
            "no throttled response in any reconciler run: "
            + ", ".join(f"({r.scenario}) {r.throttled}" for r in rows if r.scenario != "s1"),
            all(r.throttled == 0 for r in rows if r.scenario != "s1"),
        ),
        (
            f"(t4) <= {REGIONS_TARGET} x (t1): {by['t4'].wall:.2f}s / {by['t1'].wall:.2f}s = "
            f"{by['t4'].wall / by['t1'].wall:.2f}",
            by["t4"].wall <= REGIONS_TARGET * by["t1"].wall,
        ),
    ]
    print()
    for text, ok in checks:
        print(f"{text}  {'PASS' if ok else 'FAIL'}")
    print(
        f"ambition: (t1) under {AMBITION} s: {by['t1'].wall:.2f}s  "
        f"{'met' if by['t1'].wall < AMBITION else 'not met'}"
    )
    failed = not all(ok for _, ok in checks)
    print("\nresult: " + ("FAIL" if failed else "all targets met"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
