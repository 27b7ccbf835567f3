"""How fast `reconciler plan` reads a region at the service's pace, against the issue's targets.

This benchmark measures the WorkSpaces pace with one DescribeTags per image: the path of a
role that may not call tag:GetResources (the endpoint denies it here). Tags in bulk, the
default path, are measured by `benchmarks/bench_tags.py`.

Starts the local WorkSpaces endpoint (moto plus the fidelity layer, `reconciler/emulator`) in
one process, seeds owned images straight into it (no API call), writes a matching spec per
image (every plan item is a `no-op`), and in the same run times:

- the reconciler: `reconciler plan SPECS --format json -q --endpoint-url URL` as a
  subprocess (dummy credentials, AWS_CONFIG_FILE=/dev/null), wall time;
- a sequential boto3 baseline: DescribeWorkspaceImages pages of 25, then one DescribeTags
  per image, one call at a time, boto3's standard retry mode (10 attempts, as the
  reconciler's reads, so that it finishes under throttling), no client pacing.

Calls and throttled responses are counted at the server (the endpoint's call recorder).
Every timed run starts with full server buckets, as after a quiet minute.

Modes and scenarios:

- (a) the service's pace (2 calls/s per region, burst 5) plus 30 ms latency a call, the
  reconciler with its defaults (`--api-rate 2`):
  (a1) 40 images + 40 specs in one region; (a2) 4 regions x 40 images + 40 specs each;
- (b) no pace, 50 ms latency a call, the reconciler with `--api-rate 0` and a few
  `--concurrency` settings: 500 images + 500 specs in one region.

Floor (mode a): (calls - 5) / 2 seconds per region (calls: those not throttled), the
service's burst then its rate; with regions in parallel, the largest region's floor.
Targets: (a1) no throttled response and wall <= 1.15 x floor; (a2) wall <= 1.3 x the
one-region (a1) wall; (b) the reconciler at least 5 x faster than the baseline. Exits 1 if
a target is missed (or a run fails).

    python benchmarks/bench_pacing.py               # everything, about 4 minutes
    python benchmarks/bench_pacing.py --paced-runs 1 --runs 1   # quicker, no medians
    python benchmarks/bench_pacing.py --progress    # also show a paced run's progress lines
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import botocore.config  # noqa: E402

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE  # noqa: E402
from reconciler.emulator import FidelityConfig, LocalEndpoint, local_endpoint  # noqa: E402

SERVICE_RATE = 2.0  # calls per second per region
SERVICE_BURST = 5
PACE = (SERVICE_RATE, SERVICE_BURST)
LATENCY_A = 0.030
LATENCY_B = 0.050
PAGE = 25

A_IMAGES = 40
A_REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-southeast-2")
B_IMAGES = 500
B_REGION = "eu-central-1"  # its own region: the (a) runs never list these 500 images

A1_TARGET = 1.15  # wall / floor
A2_TARGET = 1.3  # (a2) wall / (a1) wall
B_TARGET = 5.0  # baseline wall / reconciler wall
BASELINE_ATTEMPTS = 10  # standard mode, as many attempts as the reconciler's reads allow

TAGS = {"team": "platform", "cost-center": "4410", "os": "windows-11"}
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # dummy credentials for the local endpoint
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


@dataclass
class Measure:
    """One timed run, with what the server saw during it."""

    wall: float
    calls: int  # requests answered, throttled ones included
    throttled: int
    per_region_ok: dict[str, int] = field(default_factory=dict)  # non-throttled calls
    by_operation: dict[str, int] = field(default_factory=dict)  # non-throttled calls

    @property
    def floor(self) -> float:
        """The service's floor: each region (in parallel) spends its burst, then 2/s."""
        return max(
            (max(0, n - SERVICE_BURST) / SERVICE_RATE for n in self.per_region_ok.values()),
            default=0.0,
        )


@dataclass
class Row:
    scenario: str
    who: str
    options: str
    runs: list[Measure]

    @property
    def wall(self) -> float:
        return statistics.median(m.wall for m in self.runs)

    @property
    def calls(self) -> int:
        return max(m.calls for m in self.runs)

    @property
    def throttled(self) -> int:
        """The worst run's: one throttled response in any run counts."""
        return max(m.throttled for m in self.runs)

    @property
    def floor(self) -> float:
        return max(m.floor for m in self.runs)

    @property
    def by_operation(self) -> dict[str, int]:
        return self.runs[0].by_operation


def command() -> list[str]:
    """The console script if installed (what users run), else `python -m reconciler`."""
    found = shutil.which("reconciler")
    return [found] if found else [sys.executable, "-m", "reconciler"]


def image_name(index: int) -> str:
    return f"bench-win11-{index:04d}"


def seed(endpoint: LocalEndpoint, region: str, count: int) -> None:
    """`count` owned images in `region`, each already carrying its spec's tags."""
    tags = {**TAGS, OWNERSHIP_TAG_KEY: OWNERSHIP_TAG_VALUE}
    for i in range(count):
        endpoint.fidelity.add_image(
            region, image_name(i), description=f"Benchmark image {i}", tags=tags
        )


def write_specs(root: Path, regions: Sequence[str], count: int) -> Path:
    """One file per region with `count` specs matching the seeded images (all no-op)."""
    root.mkdir(parents=True)
    for region in regions:
        docs = [
            f"name: {image_name(i)}\n"
            f"description: Benchmark image {i}\n"
            f"source_workspace_id: ws-{i:08x}b\n"
            f"region: {region}\n"
            "tags:\n" + "".join(f'  {k}: "{v}"\n' for k, v in TAGS.items())
            for i in range(count)
        ]
        (root / f"{region}.yaml").write_text("---\n".join(docs))
    return root


def observe(endpoint: LocalEndpoint, regions: Sequence[str], wall: float) -> Measure:
    calls = endpoint.calls.all()
    return Measure(
        wall=wall,
        calls=len(calls),
        throttled=sum(c.throttled for c in calls),
        # The floor is the WorkSpaces pace's: the one refused tag:GetResources is not paced.
        per_region_ok={
            r: sum(1 for c in calls if c.region == r and not c.throttled and c.api == "workspaces")
            for r in regions
        },
        by_operation=dict(Counter(c.operation for c in calls if not c.throttled)),
    )


def fresh(endpoint: LocalEndpoint, pace: tuple[float, int] | None, latency: float) -> None:
    """A full server bucket per region (as after a quiet minute) and an empty recorder."""
    endpoint.middleware.set_pace(pace)
    endpoint.middleware.latency = latency
    if pace is not None:
        time.sleep(0.05)
    endpoint.calls.clear()


def run_reconciler(
    endpoint: LocalEndpoint,
    specs: Path,
    regions: Sequence[str],
    expected_items: int,
    options: Sequence[str] = (),
    *,
    quiet: bool = True,
) -> tuple[Measure, str]:
    """Time one `reconciler plan` subprocess; returns the measure and its stderr."""
    env = {**os.environ, **DUMMY_ENV, "AWS_REGION": regions[0], "NO_COLOR": "1"}
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_ENDPOINT_URL", None)
    args = [
        *command(),
        "plan",
        str(specs),
        "--format",
        "json",
        *(["-q"] if quiet else []),
        "--endpoint-url",
        endpoint.url,
        *options,
    ]
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    measure = observe(endpoint, regions, wall)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    plan = json.loads(proc.stdout)  # stdout must be exactly the JSON document
    noop = plan["summary"]["no-op"]
    if noop != expected_items or len(plan["items"]) != expected_items or plan["unmanaged"]:
        sys.exit(f"unexpected plan: {plan['summary']} (expected {expected_items} no-op)")
    # -q silences progress; notes (such as the one saying tag:GetResources is denied) stay.
    chatter = [line for line in proc.stderr.splitlines() if not line.startswith("Note:")]
    if quiet and chatter:
        sys.exit(f"-q run wrote to stderr:\n{proc.stderr[-3000:]}")
    return measure, proc.stderr


def run_baseline(endpoint: LocalEndpoint, regions: Sequence[str], expected: int) -> Measure:
    """List, then one DescribeTags per image; one call at a time, region after region."""
    config = botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": BASELINE_ATTEMPTS}
    )
    clients = [
        boto3.client(
            "workspaces",
            region_name=region,
            endpoint_url=endpoint.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
        )
        for region in regions
    ]
    started = time.perf_counter()
    seen = 0
    for client in clients:
        images = []
        kwargs: dict[str, Any] = {"ImageType": "OWNED", "MaxResults": PAGE}
        while True:
            page = client.describe_workspace_images(**kwargs)
            images.extend(page.get("Images", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        for image in images:
            client.describe_tags(ResourceId=image["ImageId"])
            seen += 1
    wall = time.perf_counter() - started
    if seen != expected:
        sys.exit(f"baseline read {seen} images' tags, expected {expected}")
    return observe(endpoint, regions, wall)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--paced-runs", type=int, default=2, help="reconciler runs of (a1) and (a2) (median)"
    )
    parser.add_argument("--runs", type=int, default=2, help="reconciler runs per (b) setting")
    parser.add_argument(
        "--baseline-runs", type=int, default=1, help="baseline runs per scenario (median)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[4, 16, 32],
        help="--concurrency values to try in mode (b) (default: 4, 16 (the default) and 32)",
    )
    parser.add_argument(
        "--skip-a2-baseline",
        action="store_true",
        help="skip the (a2) baseline (4 regions one call at a time: about 75 s)",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="also run (a1) once without -q and show its progress lines (stderr not a tty)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated specs")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-pacing-"))
    rows: list[Row] = []
    progress_lines: list[str] = []
    started = time.perf_counter()
    try:
        with local_endpoint(FidelityConfig(), pace=PACE, latency=LATENCY_A) as ep:
            ep.fidelity.deny_tagging()  # tags one image at a time: see the module docstring
            for region in A_REGIONS:
                seed(ep, region, A_IMAGES)
            seed(ep, B_REGION, B_IMAGES)
            a1_specs = write_specs(tmp / "a1", A_REGIONS[:1], A_IMAGES)
            a2_specs = write_specs(tmp / "a2", A_REGIONS, A_IMAGES)
            b_specs = write_specs(tmp / "b", [B_REGION], B_IMAGES)
            a1_regions, a2_regions = list(A_REGIONS[:1]), list(A_REGIONS)

            def mode(scenario: str) -> tuple[tuple[float, int] | None, float]:
                return (PACE, LATENCY_A) if scenario.startswith("a") else (None, LATENCY_B)

            def reconciler(
                scenario: str, specs: Path, regions: list[str], runs: int, opts: list[str]
            ) -> None:
                measures = []
                for _ in range(runs):
                    fresh(ep, *mode(scenario))
                    n = A_IMAGES * len(regions) if scenario.startswith("a") else B_IMAGES
                    measures.append(run_reconciler(ep, specs, regions, n, opts)[0])
                rows.append(Row(scenario, "reconciler", " ".join(opts) or "defaults", measures))

            def baseline(scenario: str, regions: list[str]) -> None:
                measures = []
                for _ in range(args.baseline_runs):
                    fresh(ep, *mode(scenario))
                    n = A_IMAGES * len(regions) if scenario.startswith("a") else B_IMAGES
                    measures.append(run_baseline(ep, regions, n))
                rows.append(Row(scenario, "baseline", "sequential boto3", measures))

            reconciler("a1", a1_specs, a1_regions, args.paced_runs, [])
            baseline("a1", a1_regions)
            reconciler("a2", a2_specs, a2_regions, args.paced_runs, [])
            if not args.skip_a2_baseline:
                baseline("a2", a2_regions)
            for concurrency in args.concurrency:
                opts = ["--api-rate", "0", "--concurrency", str(concurrency)]
                reconciler("b", b_specs, [B_REGION], args.runs, opts)
            baseline("b", [B_REGION])

            if args.progress:
                fresh(ep, PACE, LATENCY_A)
                _, stderr = run_reconciler(ep, a1_specs, a1_regions, A_IMAGES, quiet=False)
                progress_lines = stderr.splitlines()
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - started
    return report(rows, progress_lines, total, args)


def budget(images: int, regions: int) -> dict[str, int]:
    """The reconciler's call budget for an all-no-op plan with tag:GetResources denied: the
    one refused GetResources, then pages of 25 and one DescribeTags per image."""
    pages = max(1, -(-images // PAGE))
    return {
        "DescribeWorkspaceImages": pages * regions,
        "DescribeTags": images * regions,
        "GetResources": 1,
    }


def report(
    rows: list[Row], progress_lines: list[str], total: float, args: argparse.Namespace
) -> int:
    def pick(scenario: str, who: str) -> list[Row]:
        return [r for r in rows if r.scenario == scenario and r.who == who]

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print(
        f"python {sys.version.split()[0]}   cpus {os.cpu_count()}   "
        f"wall = median of {args.paced_runs} (a) / {args.runs} (b) reconciler runs, "
        f"{args.baseline_runs} baseline run(s)   benchmark took {total:.0f}s"
    )
    print("(a): pace 2/s burst 5 per region, 30 ms latency; (b): no pace, 50 ms latency")
    print("calls and thr (throttled responses) counted at the server; thr: worst run")
    header = (
        f"{'':<4}{'who':<11}{'options':<31}{'calls':>6}{'thr':>5}{'wall s':>8}"
        f"{'floor s':>8}{'wall/floor':>11}  runs (s)"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        paced = row.scenario.startswith("a")
        floor = f"{row.floor:.1f}" if paced else "-"
        over = ratio(row.wall, row.floor) if paced else "-"
        runs = ", ".join(f"{m.wall:.2f}" for m in row.runs)
        print(
            f"{row.scenario:<4}{row.who:<11}{row.options:<31}{row.calls:>6}{row.throttled:>5}"
            f"{row.wall:>8.2f}{floor:>8}{over:>11}  {runs}"
        )

    failed = False
    lines = []
    a1 = pick("a1", "reconciler")[0]
    ok = a1.throttled == 0 and a1.wall <= A1_TARGET * a1.floor
    failed |= not ok
    lines.append(
        f"(a1) no throttled response, wall <= {A1_TARGET} x floor: throttled {a1.throttled}, "
        f"{a1.wall:.2f}s / {a1.floor:.1f}s = {a1.wall / a1.floor:.3f}  {verdict(ok)}"
    )
    a2 = pick("a2", "reconciler")[0]
    ok = a2.wall <= A2_TARGET * a1.wall
    failed |= not ok
    lines.append(
        f"(a2) wall <= {A2_TARGET} x (a1) wall: {a2.wall:.2f}s / {a1.wall:.2f}s = "
        f"{a2.wall / a1.wall:.3f} (throttled {a2.throttled})  {verdict(ok)}"
    )
    b_rows = pick("b", "reconciler")
    best = min(b_rows, key=lambda r: r.wall)
    b_base = pick("b", "baseline")[0]
    ok = b_base.wall >= B_TARGET * best.wall
    failed |= not ok
    lines.append(
        f"(b) baseline / reconciler >= {B_TARGET:.0f}: best `{best.options}`: "
        f"{b_base.wall:.2f}s / {best.wall:.2f}s = {b_base.wall / best.wall:.2f}  {verdict(ok)}"
    )
    lines += [
        f"    `{row.options}`: {b_base.wall / row.wall:.2f} x faster than the baseline"
        for row in b_rows
        if row is not best
    ]
    for scenario in ("a1", "a2"):
        for base in pick(scenario, "baseline"):
            rec = pick(scenario, "reconciler")[0]
            lines.append(
                f"({scenario}) baseline / reconciler: {base.wall:.2f}s / {rec.wall:.2f}s = "
                f"{ratio(base.wall, rec.wall)}; the baseline was throttled {base.throttled} times"
            )
    expected = {
        "a1": budget(A_IMAGES, 1),
        "a2": budget(A_IMAGES, len(A_REGIONS)),
        "b": budget(B_IMAGES, 1),
    }
    for row in [r for r in rows if r.who == "reconciler"]:
        if row.by_operation != expected[row.scenario]:
            failed = True
            lines.append(
                f"({row.scenario}) call budget FAIL: {row.by_operation} != {expected[row.scenario]}"
            )
    shown = "; ".join(
        f"({k}) " + ", ".join(f"{op} {n}" for op, n in v.items()) for k, v in expected.items()
    )
    lines.append(f"call budget (every reconciler run, non-throttled calls): {shown}")
    print()
    print("\n".join(lines))
    if progress_lines:
        print("\nprogress lines of a paced (a1) run without -q, stderr not a terminal:")
        print("\n".join(f"  | {line}" for line in progress_lines))
    print("\nresult: " + ("FAIL" if failed else "all targets met"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
