"""A converged plan over many accounts at the service's pace: 20 accounts x 2 regions against
the same plan of one of them (the contract's "Many accounts", section "Speed"; issue 18).

One local endpoint (moto plus the fidelity layer, `reconciler/emulator`) in this process, at
the service's pace per account and region: WorkSpaces 2 calls/s with bursts of 5, the
tagging API paced the same way on buckets of its own, 30 ms latency on every call; its STS
hands out credentials that act in the role's account. Seeded straight into it (no API
call), in each of the accounts, everything already existing and converged, so every plan
item is a `no-op` (the steady state a scheduled drift run sees):

- 10 owned images in region A, each with an owned copy in region B (`copies: [B]`), every
  image and copy shared with the same 3 accounts outside the map (`share_with`; sharing has
  no bulk read, so an account's reads are bound by its pace);
- one owned bundle in region A, on the first image.

The same image and bundle names in every account (identity is (account, region, name)).

The specs: the root `defaults.yaml` names the region and the account map (each account
with a role in itself), and one folder per account (`acct00/`, ...) whose `defaults.yaml`
says `account: acctNN`, with its image and bundle specs. The one-account folder is the
same root with a map of `acct00` alone and `acct00/` alone. Both are checked with
`reconciler validate` first, and the seeded state is read back with boto3 through the
endpoint's STS, account by account, before anything is timed.

In one run, alternating, each run from full server buckets:

- (1) `reconciler plan ONE --format json -q`: the one account;
- (N) `reconciler plan MANY --format json -q`: every account;

each with its defaults (`--api-rate 2`), as a subprocess of this checkout (`python -m
reconciler`; Python's start included), base credentials that act in moto's default account,
`--endpoint-url` for every API (STS too). The output is checked: 41 items an account, all
`no-op`, each carrying its `account`, no `unmanaged`.

Bounds (exit 1 when one fails, or when a plan fails): (N) wall <= 1.5 x (1) wall (medians);
no throttled response in any run; calls counted at the server (not throttled), per API and
operation, in (N) exactly N x (1)'s, which holds one AssumeRole into its account: so one
AssumeRole per account, each answered once. Also shown: the calls each account's
credentials made in (N) against the one account's in (1); the floor, the largest
(account, region)'s (WorkSpaces calls - 5) / 2; and when the server saw the first and the
last call of a run (where the time goes: starting and reaching the accounts, the reads,
what follows them).

    python benchmarks/bench_accounts.py                 # 20 accounts, 3 runs each: ~80 s
    python benchmarks/bench_accounts.py --accounts 3 --runs 1   # a quick look
    python benchmarks/bench_accounts.py --keep          # keep the generated specs
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
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_pacing as pacing  # noqa: E402
import boto3  # noqa: E402
import botocore.config  # noqa: E402

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE  # noqa: E402
from reconciler.emulator import FidelityConfig, LocalEndpoint, local_endpoint  # noqa: E402

PACE = (2.0, 5)  # per account and region: WorkSpaces, and the tagging API on its own buckets
RATE, BURST = PACE
LATENCY = 0.030
REGION_A, REGION_B = "eu-west-1", "us-east-1"
REGIONS = (REGION_A, REGION_B)
IMAGES = 10  # per account in region A, each with a copy in region B
SHARED_WITH = ("111122223333", "444455556666", "777788889999")  # outside the map
ITEMS = 2 * IMAGES * 2 + 1  # per account: image + share item per image and copy, a bundle
BASE_ACCOUNT = "123456789012"  # moto's default: where the run's own (dummy) keys act
ROLE_NAME = "reconciler"
RATIO_TARGET = 1.5
MAX_ACCOUNTS = 999
TAGS = {"team": "platform", "cost-center": "4410"}
OWNED = {**TAGS, OWNERSHIP_TAG_KEY: OWNERSHIP_TAG_VALUE}
UNPACED = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3})

Op = tuple[str, str]  # (api, operation)


@dataclass(frozen=True)
class Account:
    name: str
    id: str

    @property
    def role(self) -> str:
        return f"arn:aws:iam::{self.id}:role/{ROLE_NAME}"


def make_accounts(count: int) -> list[Account]:
    width = max(2, len(str(count - 1)))
    return [Account(f"acct{i:0{width}d}", str(200000000000 + i)) for i in range(count)]


def image_name(index: int) -> str:
    return f"golden-win11-{index:02d}"


BUNDLE = "desk-standard"


# --- the state and the specs ---------------------------------------------------------------


@dataclass
class Seeded:
    """One account's seeded ids: region -> image name -> id; the bundle's id."""

    images: dict[str, dict[str, str]]
    bundle: str


def seed(endpoint: LocalEndpoint, accounts: Sequence[Account]) -> dict[str, Seeded]:
    """Converged state in every account, straight into the emulator (no API call)."""
    fidelity = endpoint.fidelity
    seeded: dict[str, Seeded] = {}
    for account in accounts:
        images: dict[str, dict[str, str]] = {r: {} for r in REGIONS}
        for i in range(IMAGES):
            for region in REGIONS:
                image = fidelity.add_image(
                    region, image_name(i), f"Image {i}", tags=OWNED, account_id=account.id
                )
                fidelity.set_shared_accounts(
                    region, image, list(SHARED_WITH), account_id=account.id
                )
                images[region][image_name(i)] = image
        bundle = fidelity.add_bundle(
            REGION_A,
            BUNDLE,
            images[REGION_A][image_name(0)],
            description="Standard desktop",
            compute_type="STANDARD",
            user_storage=50,
            root_storage=80,
            tags=OWNED,
            account_id=account.id,
        )
        seeded[account.id] = Seeded(images, bundle)
    return seeded


def write_specs(root: Path, accounts: Sequence[Account]) -> Path:
    """The root defaults (region, the account map) and a folder per account."""
    root.mkdir(parents=True)
    lines = ["defaults:", f"  region: {REGION_A}", "  accounts:"]
    for account in accounts:
        lines += [
            f"    {account.name}:",
            f'      id: "{account.id}"',
            f"      role: {account.role}",
        ]
    (root / "defaults.yaml").write_text("\n".join(lines) + "\n")
    tags = "tags:\n" + "".join(f'  {k}: "{v}"\n' for k, v in TAGS.items())
    shared = ", ".join(f'"{a}"' for a in SHARED_WITH)
    images = [
        f"name: {image_name(i)}\n"
        f"description: Image {i}\n"
        f"source_workspace_id: ws-{i:08x}b\n"
        f"copies: [{REGION_B}]\n"
        f"share_with: [{shared}]\n" + tags
        for i in range(IMAGES)
    ]
    bundle = (
        "kind: bundle\n"
        f"name: {BUNDLE}\n"
        "description: Standard desktop\n"
        f"image: {image_name(0)}\n"
        "compute_type: STANDARD\n"
        "user_volume_gib: 50\n"
        "root_volume_gib: 80\n" + tags
    )
    for account in accounts:
        folder = root / account.name
        folder.mkdir()
        (folder / "defaults.yaml").write_text(f"defaults:\n  account: {account.name}\n")
        (folder / "images.yaml").write_text("---\n".join(images))
        (folder / "bundles.yaml").write_text(bundle)
    return root


def reconciler_command() -> list[str]:
    """This checkout's reconciler (an installed console script may be another copy's)."""
    return [sys.executable, "-m", "reconciler"]


def reconciler_env() -> dict[str, str]:
    env = {**os.environ, **pacing.DUMMY_ENV, "AWS_REGION": REGION_A, "NO_COLOR": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN"):
        env.pop(name, None)
    return env


def validate(specs: Path) -> None:
    """`reconciler validate SPECS` must accept the generated folder, without a warning."""
    args = [*reconciler_command(), "validate", str(specs)]
    proc = subprocess.run(args, capture_output=True, text=True, env=reconciler_env(), check=False)
    if proc.returncode != 0 or "warning" in proc.stderr:
        sys.exit(
            f"the generated specs are not valid: {' '.join(args)} exited {proc.returncode}\n"
            f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )


def check_seeded(
    endpoint: LocalEndpoint, accounts: Sequence[Account], seeded: dict[str, Seeded]
) -> int:
    """Read every account's state back with boto3, through the endpoint's STS AssumeRole
    (unpaced, no latency): its images and copies (owned, and no other account's listed to
    it), their tags and sharing, its bundle; every call acting in that account at the
    server. Returns the number of calls made."""
    endpoint.middleware.set_pace(None)
    endpoint.middleware.set_tagging_pace(None)
    endpoint.middleware.latency = 0.0
    endpoint.calls.clear()
    sts = boto3.client(
        "sts",
        region_name=REGION_A,
        endpoint_url=endpoint.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # dummy credentials for the local endpoint
        config=UNPACED,
    )
    for account in accounts:
        creds = sts.assume_role(RoleArn=account.role, RoleSessionName="bench-check")["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        ids = seeded[account.id]
        for region in REGIONS:
            where = f"{account.name} ({account.id}), {region}"
            ws = session.client(
                "workspaces", region_name=region, endpoint_url=endpoint.url, config=UNPACED
            )
            owned = _images(ws, ImageType="OWNED")
            listed = _images(ws)
            expected = ids.images[region]
            found = {i["Name"]: i["ImageId"] for i in owned}
            if found != expected or {i["ImageId"] for i in listed} != set(expected.values()):
                sys.exit(f"seeded images differ in {where}: {sorted(found)}, listed {listed}")
            for image in owned:
                image_id = image["ImageId"]
                if image.get("OwnerAccountId", account.id) != account.id:
                    sys.exit(f"{image_id} in {where} is owned by {image['OwnerAccountId']}")
                if image["State"] != "AVAILABLE":
                    sys.exit(f"{image_id} in {where} is {image['State']}")
                tags = _tags(ws.describe_tags(ResourceId=image_id)["TagList"])
                perms = ws.describe_workspace_image_permissions(ImageId=image_id)
                shared = sorted(p["SharedAccountId"] for p in perms["ImagePermissions"])
                if tags != OWNED or shared != sorted(SHARED_WITH):
                    sys.exit(f"{image_id} in {where}: tags {tags}, shared with {shared}")
            bundles = ws.describe_workspace_bundles()["Bundles"]
            want = [(BUNDLE, ids.bundle, expected[image_name(0)])] if region == REGION_A else []
            got = [(b["Name"], b["BundleId"], b["ImageId"]) for b in bundles]
            if got != want:
                sys.exit(f"seeded bundles differ in {where}: {got} != {want}")
            for bundle in bundles:
                if _tags(ws.describe_tags(ResourceId=bundle["BundleId"])["TagList"]) != OWNED:
                    sys.exit(f"bundle {bundle['BundleId']} in {where}: tags differ")
    calls = endpoint.calls.all()
    wrong = [c for c in calls if c.api == "workspaces" and c.account not in seeded]
    by_account = endpoint.calls.by_account(api="workspaces")
    assumed = endpoint.calls.roles_assumed()
    if wrong or set(by_account) != set(seeded) or assumed != dict.fromkeys(seeded, 1):
        sys.exit(
            f"the server saw the check's calls in other accounts: {by_account}, AssumeRole "
            f"answered {assumed}"
        )
    endpoint.calls.clear()
    return len(calls)


def _images(ws: Any, **kwargs: Any) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = []
    for page in ws.get_paginator("describe_workspace_images").paginate(**kwargs):
        images.extend(page.get("Images", []))
    return images


def _tags(tags: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags}


# --- the timed runs ----------------------------------------------------------------------


class PlanFailed(Exception):
    def __init__(self, args: list[str], why: str, output: str) -> None:
        super().__init__(why)
        self.args_ = args
        self.why = why
        self.output = output


@dataclass
class Measure:
    wall: float
    throttled: int
    calls: Counter[Op]  # not throttled
    by_account: dict[str, Counter[Op]]  # the account each call acted in -> its calls
    assumed: dict[str, int]  # AssumeRole answered, per account of the role
    per_account_region: dict[tuple[str, str], int] = field(default_factory=dict)  # WorkSpaces
    first_call: float = 0.0  # seconds from the start to the server's first call, and last
    last_call: float = 0.0

    @property
    def floor(self) -> float:
        return max((max(0, n - BURST) / RATE for n in self.per_account_region.values()), default=0)


@dataclass
class Row:
    scenario: str
    who: str
    accounts: list[Account]
    measures: list[Measure] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(m.wall for m in self.measures)

    @property
    def throttled(self) -> int:
        return max(m.throttled for m in self.measures)

    @property
    def first_call(self) -> float:
        return statistics.median(m.first_call for m in self.measures)

    @property
    def last_call(self) -> float:
        return statistics.median(m.last_call for m in self.measures)

    @property
    def first(self) -> Measure:
        return self.measures[0]


def fresh(endpoint: LocalEndpoint) -> None:
    """Full server buckets in every account and region, an empty recorder."""
    endpoint.middleware.set_pace(PACE)
    endpoint.middleware.set_tagging_pace(PACE)
    endpoint.middleware.latency = LATENCY
    time.sleep(0.05)
    endpoint.calls.clear()


def observe(endpoint: LocalEndpoint, started: float, wall: float) -> Measure:
    """What the server saw of a run that started at `started` (time.monotonic())."""
    calls = endpoint.calls.all()
    ok = [c for c in calls if not c.throttled]
    times = [c.time - started for c in calls] or [0.0]
    by_account: dict[str, Counter[Op]] = {}
    for c in ok:
        by_account.setdefault(c.account, Counter())[(c.api, c.operation)] += 1
    return Measure(
        wall=wall,
        throttled=sum(c.throttled for c in calls),
        calls=Counter((c.api, c.operation) for c in ok),
        by_account=by_account,
        assumed=endpoint.calls.roles_assumed(),
        per_account_region=dict(
            Counter((c.account, c.region) for c in ok if c.api == "workspaces")
        ),
        first_call=min(times),
        last_call=max(times),
    )


def plan(endpoint: LocalEndpoint, specs: Path, accounts: Sequence[Account]) -> Measure:
    """Time one `reconciler plan SPECS --format json -q` and check its output."""
    fresh(endpoint)
    args = [
        *reconciler_command(),
        "plan",
        str(specs),
        "--format",
        "json",
        "-q",
        "--endpoint-url",
        endpoint.url,
    ]
    env = reconciler_env()
    started = time.monotonic()  # the clock of Call.time
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - started
    measure = observe(endpoint, started, wall)
    if proc.returncode != 0:
        raise PlanFailed(args, f"exited {proc.returncode}", proc.stderr)
    try:
        document = json.loads(proc.stdout)  # stdout must be exactly the JSON document
    except json.JSONDecodeError as error:
        raise PlanFailed(args, f"stdout is not one JSON document ({error})", proc.stdout) from None
    expected = ITEMS * len(accounts)
    items = document.get("items", [])
    summary = document.get("summary", {})
    if summary.get("no-op") != expected or len(items) != expected or document.get("unmanaged"):
        shown = f"{summary}, {len(document.get('unmanaged') or [])} unmanaged"
        raise PlanFailed(args, f"unexpected plan: {shown} (expected {expected} no-op)", "")
    per_account = Counter(item.get("account") for item in items)
    if per_account != Counter(dict.fromkeys((a.id for a in accounts), ITEMS)):
        raise PlanFailed(args, f"items per account: {dict(per_account)}, {ITEMS} expected", "")
    chatter = [line for line in proc.stderr.splitlines() if not line.startswith("Note:")]
    if chatter:
        raise PlanFailed(args, "-q run wrote to stderr", proc.stderr)
    return measure


# --- the report ----------------------------------------------------------------------------


def expected_calls(one: Measure, count: int) -> Counter[Op]:
    return Counter({op: n * count for op, n in one.calls.items()})


def check_calls(one: Row, many: Row) -> list[str]:
    """What differs from the bounds on calls, in any run (empty: they hold)."""
    count = len(many.accounts)
    problems: list[str] = []
    only = one.accounts[0]
    if one.first.assumed != {only.id: 1}:
        problems.append(f"(1) AssumeRole answered {one.first.assumed}, not once into {only.id}")
    for row in (one, many):
        for k, m in enumerate(row.measures[1:], start=2):
            if m.calls != row.first.calls:
                problems.append(f"({row.scenario}) run {k} made other calls than run 1")
    for k, m in enumerate(many.measures, start=1):
        want = expected_calls(one.first, count)
        if m.calls != want:
            diff = sorted(set(m.calls) | set(want))
            shown = ", ".join(
                f"{op[1]} {m.calls.get(op, 0)} != {want.get(op, 0)}"
                for op in diff
                if m.calls.get(op, 0) != want.get(op, 0)
            )
            problems.append(f"(N) run {k}: calls not {count} x (1)'s: {shown}")
        roles = dict.fromkeys((a.id for a in many.accounts), 1)
        if m.assumed != roles:
            extra = {a: n for a, n in m.assumed.items() if roles.get(a) != n}
            missing = sorted(set(roles) - set(m.assumed))
            problems.append(
                f"(N) run {k}: AssumeRole not once per account: {extra or ''} "
                f"{'never into ' + ', '.join(missing) if missing else ''}".rstrip()
            )
    return problems


def per_account_lines(one: Row, many: Row) -> list[str]:
    """Each account's own calls in (N) against the one account's in (1); the base's."""
    reference = one.first.by_account.get(one.accounts[0].id, Counter())
    m = many.first
    same = [a for a in many.accounts if m.by_account.get(a.id, Counter()) == reference]
    differ = [a for a in many.accounts if a not in same]
    lines = [
        f"each account's own calls in (N) run 1 = the one account's in (1) run 1 "
        f"({sum(reference.values())} calls): {len(same)} of {len(many.accounts)} accounts"
    ]
    for account in differ[:5]:
        got = m.by_account.get(account.id, Counter())
        ops = sorted(set(got) | set(reference))
        shown = ", ".join(
            f"{op[1]} {got.get(op, 0)}/{reference.get(op, 0)}"
            for op in ops
            if got.get(op, 0) != reference.get(op, 0)
        )
        lines.append(f"  {account.name} ({account.id}) differs, (N)/(1): {shown}")
    if len(differ) > 5:
        lines.append(f"  ... and {len(differ) - 5} more")
    mapped = {a.id for a in many.accounts}
    others = {acct: c for acct, c in m.by_account.items() if acct not in mapped}
    base_one = {acct: c for acct, c in one.first.by_account.items() if acct != one.accounts[0].id}
    for label, calls in (("(1)", base_one), ("(N)", others)):
        shown = "; ".join(
            f"{acct or '?'}: " + ", ".join(f"{op[1]} {n}" for op, n in sorted(c.items()))
            for acct, c in sorted(calls.items())
        )
        lines.append(f"calls outside the map's accounts in {label} (the base's): {shown or '-'}")
    return lines


def report(one: Row, many: Row, total: float, args: argparse.Namespace, checked: int) -> int:
    count = len(many.accounts)
    print(
        f"python {sys.version.split()[0]}   cpus {os.cpu_count()}   wall: median of "
        f"{args.runs} runs each   benchmark took {total:.0f}s"
    )
    print(
        f"each account: {IMAGES} images in {REGION_A}, a copy of each in {REGION_B}, each shared "
        f"with {len(SHARED_WITH)} accounts outside the map, 1 bundle: {ITEMS} items, all no-op"
    )
    print(
        "server: 2 calls/s burst 5 per account and region (WorkSpaces; the tagging API on its "
        "own buckets), 30 ms latency;\nfloor: max over (account, region) of (WorkSpaces calls "
        "- 5) / 2; calls counted at the server (not throttled); thr: worst run's throttled"
    )
    print(f"seeded state read back with boto3, account by account: {checked} calls, as seeded")
    header = (
        f"{'':<4}{'who':<14}{'wall s':>7}{'floor s':>8}{'wall/floor':>11}{'thr':>5}"
        f"{'calls':>7}{'1st call':>9}{'last call':>10}  runs (s)"
    )
    print(header)
    print("-" * len(header))
    for row in (one, many):
        m = row.first
        walls = ", ".join(f"{x.wall:.2f}" for x in row.measures)
        over = f"{row.wall / m.floor:.2f}" if m.floor else "-"
        print(
            f"{row.scenario:<4}{row.who:<14}{row.wall:>7.2f}{m.floor:>8.1f}{over:>11}"
            f"{row.throttled:>5}{sum(m.calls.values()):>7}{row.first_call:>9.2f}"
            f"{row.last_call:>10.2f}  {walls}"
        )
    print(
        "1st call, last call: seconds from the start of the run to the server's first and "
        "last call (medians): Python's start and reaching the accounts, then the reads"
    )

    print(f"\ncalls per API and operation (not throttled, run 1 of each); {count} x (1):")
    print(f"  {'api':<11}{'operation':<36}{'(1)':>6}{'(N)':>7}{f'{count}x(1)':>8}")
    want = expected_calls(one.first, count)
    for op in sorted(set(one.first.calls) | set(many.first.calls)):
        got = many.first.calls.get(op, 0)
        mark = "" if got == want.get(op, 0) else "  <- differs"
        print(
            f"  {op[0]:<11}{op[1]:<36}{one.first.calls.get(op, 0):>6}{got:>7}"
            f"{want.get(op, 0):>8}{mark}"
        )
    print(
        f"  {'':<11}{'all':<36}{sum(one.first.calls.values()):>6}"
        f"{sum(many.first.calls.values()):>7}{sum(want.values()):>8}"
    )
    print()
    print("\n".join(per_account_lines(one, many)))

    ratio = many.wall / one.wall
    ratio_ok = ratio <= RATIO_TARGET
    throttled_ok = one.throttled == 0 and many.throttled == 0
    problems = check_calls(one, many)

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print()
    print(
        f"(N) / (1) wall <= {RATIO_TARGET}: {many.wall:.2f}s / {one.wall:.2f}s = {ratio:.2f}  "
        f"{verdict(ratio_ok)}"
    )
    print(
        f"throttled responses: (1) {one.throttled}, (N) {many.throttled} (worst run)  "
        f"{verdict(throttled_ok)}"
    )
    print(
        f"calls: (N) = {count} x (1) per API and operation, one AssumeRole per account, every "
        f"run  {verdict(not problems)}"
    )
    for problem in problems:
        print(f"  {problem}")
    failed = not (ratio_ok and throttled_ok) or bool(problems)
    print("\nresult: " + ("FAIL" if failed else "all bounds met"))
    return 1 if failed else 0


def failed_plan(error: PlanFailed, row: Row, specs: Path, kept: bool) -> int:
    """A plan that did not run (or said something unexpected): say so, and what to do."""
    print(
        f"\nreconciler plan failed on the {row.who} specs ({row.scenario}): {error.why}; "
        "nothing was timed.",
        file=sys.stderr,
    )
    print(f"  command: {' '.join(error.args_)}", file=sys.stderr)
    for line in error.output.strip().splitlines()[-20:]:
        print(f"  | {line}", file=sys.stderr)
    if "not supported by this version" in error.output:
        print(
            "  This benchmark needs the engine for many accounts (issue 18): this version's "
            "plan refuses specs that declare accounts:. The specs were generated and validated "
            "and the seeded state checked; everything up to the plan works.",
            file=sys.stderr,
        )
    where = f"kept in {specs.parent}" if kept else "rerun with --keep to look at them"
    print(f"  specs: {where}", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each plan (median)")
    parser.add_argument(
        "--accounts", type=int, default=20, help="accounts in the many-account run (default 20)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated specs")
    args = parser.parse_args()
    if not 1 <= args.accounts <= MAX_ACCOUNTS or args.runs < 1:
        parser.error(f"--accounts takes 1-{MAX_ACCOUNTS}, --runs at least 1")

    accounts = make_accounts(args.accounts)
    tmp = Path(tempfile.mkdtemp(prefix="bench-accounts-"))
    started = time.perf_counter()
    one = Row("1", "one account", accounts[:1])
    many = Row("N", f"{len(accounts)} accounts", accounts)
    try:
        one_specs = write_specs(tmp / "one", one.accounts)
        many_specs = write_specs(tmp / "many", many.accounts)
        validate(one_specs)
        validate(many_specs)
        with local_endpoint(
            FidelityConfig(), pace=PACE, tagging_pace=PACE, latency=LATENCY
        ) as endpoint:
            seeded = seed(endpoint, accounts)
            checked = check_seeded(endpoint, accounts, seeded)
            print(
                f"specs valid ({tmp}); seeded {len(accounts)} accounts, read back with boto3 "
                f"({checked} calls): as seeded",
                file=sys.stderr,
            )
            for _ in range(args.runs):
                for row, specs in ((one, one_specs), (many, many_specs)):
                    try:
                        row.measures.append(plan(endpoint, specs, row.accounts))
                    except PlanFailed as error:
                        return failed_plan(error, row, specs, args.keep)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return report(one, many, time.perf_counter() - started, args, checked)


if __name__ == "__main__":
    sys.exit(main())
