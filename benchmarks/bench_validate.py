"""How fast `reconciler validate` and `reconciler --help` are, against the issue's targets.

Generates N small, realistic spec files (one image spec each, and every tenth file a bundle
spec too, so that the compute type names are read from botocore's model) spread over about
50 folders, each folder with its own defaults document, in a temporary directory; then
times, as separate processes and in wall time:

- `reconciler validate DIR -q`: best and median of 3 runs (target: 2,000 files < 0.5 s,
  10,000 files < 2 s);
- `reconciler --help`: best and median of 5 runs (target: < 0.3 s);

and checks that neither command imports boto3 (or botocore). Exits 1 if a target is
missed or boto3 is imported.

    python benchmarks/bench_validate.py                 # 2,000 and 10,000 files
    python benchmarks/bench_validate.py --files 500     # a quick look
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
from pathlib import Path

TARGETS = {2000: 0.5, 10000: 2.0}  # files -> seconds of wall time
HELP_TARGET = 0.3
REGIONS = ["eu-west-1", "us-east-1", "us-west-2", "eu-central-1", "ap-southeast-2"]
COMPUTE_TYPES = ["STANDARD", "PERFORMANCE", "POWER", "GRAPHICS_G4DN"]
TEAMS = ["finance", "engineering", "sales", "support", "research", "legal", "hr", "ops"]

# Runs the real entry point in this interpreter, then reports what it imported.
_IMPORT_PROBE = """
import json, runpy, sys
sys.argv = ["reconciler", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("reconciler", run_name="__main__", alter_sys=True)
except SystemExit as exit_:
    code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore"))
sys.stdout.write("\\n@@probe@@" + json.dumps({"exit": code, "heavy": heavy}) + "\\n")
"""


def command() -> list[str]:
    """The console script if installed (what users run), else `python -m reconciler`."""
    found = shutil.which("reconciler")
    return [found] if found else [sys.executable, "-m", "reconciler"]


def spec_text(index: int, team: str) -> str:
    return (
        f"# yaml-language-server: $schema=../../docs/spec.schema.json\n"
        f"name: {team}-win11-{index:05d}\n"
        f"description: {team.capitalize()} golden image {index} (Windows 11)\n"
        f"source_workspace_id: ws-{index:08x}a\n"
        "tags:\n"
        f'  cost-center: "{4000 + index % 900}"\n'
        f'  image-version: "2026.{index % 12 + 1}"\n'
        "  os: windows-11\n"
    )


def bundle_text(index: int, team: str) -> str:
    return (
        "---\n"
        "kind: bundle\n"
        f"name: {team}-standard-{index:05d}\n"
        f"description: {team.capitalize()} desktop {index}\n"
        f"image: {team}-win11-{index:05d}\n"
        f"compute_type: {COMPUTE_TYPES[index % len(COMPUTE_TYPES)]}\n"
        "user_volume_gib: 50\n"
    )


def defaults_text(folder: int) -> str:
    team = TEAMS[folder % len(TEAMS)]
    return (
        "defaults:\n"
        f"  region: {REGIONS[folder % len(REGIONS)]}\n"
        "  tags:\n"
        f"    team: {team}\n"
        "    owner: platform-team\n"
        "  ignore_tag_keys: [aws-cost-allocation]\n"
        '  ignore_tag_prefixes: ["finops:"]\n'
    )


def generate(root: Path, files: int, folders: int) -> None:
    """`files` spec files over `folders` folders (two levels: group/team-N), plus defaults."""
    root.mkdir(parents=True)
    (root / "defaults.yaml").write_text("defaults:\n  tags: {managed-by: gitops}\n")
    paths = []
    for folder in range(folders):
        path = root / f"group-{folder % 5}" / f"{TEAMS[folder % len(TEAMS)]}-{folder:02d}"
        path.mkdir(parents=True, exist_ok=True)
        (path / "defaults.yaml").write_text(defaults_text(folder))
        paths.append(path)
    for index in range(files):
        folder = index % folders
        team = TEAMS[folder % len(TEAMS)]
        text = spec_text(index, team) + (bundle_text(index, team) if index % 10 == 0 else "")
        (paths[folder] / f"image-{index:05d}.yaml").write_text(text)


def timed(args: list[str], runs: int) -> tuple[float, float]:
    """(best, median) wall seconds of `runs` runs; every run must exit 0."""
    times = []
    env = {**os.environ, "NO_COLOR": "1"}
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return min(times), statistics.median(times)


def heavy_imports(args: list[str]) -> list[str]:
    """The boto3/botocore modules that `reconciler ARGS` imports (should be none)."""
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, *args], capture_output=True, text=True, check=False
    )
    marker = proc.stdout.rpartition("@@probe@@")[2].strip()
    if not marker:
        sys.exit(f"import probe failed for {args}:\n{proc.stderr[-2000:]}")
    report = json.loads(marker)
    if report["exit"] != 0:
        sys.exit(f"reconciler {' '.join(args)} exited {report['exit']}:\n{proc.stderr[-2000:]}")
    return list(report["heavy"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--files",
        type=int,
        nargs="+",
        default=sorted(TARGETS),
        help="spec file counts to time (default: 2000 10000)",
    )
    parser.add_argument("--folders", type=int, default=50, help="folders to spread them over")
    parser.add_argument("--runs", type=int, default=3, help="validate runs per size")
    parser.add_argument("--help-runs", type=int, default=5, help="--help runs")
    parser.add_argument("--keep", action="store_true", help="keep the generated specs")
    args = parser.parse_args()

    cli = command()
    rows: list[tuple[str, float, float, float | None, str]] = []
    missed = False
    boto = []

    best, median = timed([*cli, "--help"], args.help_runs)
    ok = best < HELP_TARGET
    missed |= not ok
    rows.append(("reconciler --help", best, median, HELP_TARGET, "ok" if ok else "MISSED"))
    boto += [f"--help: {m}" for m in heavy_imports(["--help"])]

    for count in args.files:
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-specs-{count}-"))
        try:
            specs = tmp / "specs"
            generate(specs, count, args.folders)
            best, median = timed([*cli, "validate", str(specs), "-q"], args.runs)
            target = TARGETS.get(count)
            ok = target is None or best < target
            missed |= not ok
            verdict = "-" if target is None else ("ok" if ok else "MISSED")
            label = f"validate {count:,} files"
            rows.append((label, best, median, target, verdict))
            boto += [f"validate: {m}" for m in heavy_imports(["validate", str(specs), "-q"])]
        finally:
            if args.keep:
                print(f"kept {tmp}", file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)

    print(f"command: {' '.join(cli)}   python {sys.version.split()[0]}   cpus {os.cpu_count()}")
    print(f"{'what':<26} {'best':>8} {'median':>8} {'target':>8}  result")
    for label, best, median, target, verdict in rows:
        shown_target = f"< {target:.1f}s" if target is not None else "-"
        print(f"{label:<26} {best:>7.3f}s {median:>7.3f}s {shown_target:>8}  {verdict}")
    print(f"boto3 imported: {', '.join(boto) if boto else 'no (validate, --help)'}")
    return 1 if missed or boto else 0


if __name__ == "__main__":
    sys.exit(main())
