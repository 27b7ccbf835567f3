"""The pipeline's driver: specs -> inventory -> plan (-> apply). Called by the CLI.

This is where the stages meet: it reads the specs, settles each spec's region, reads the
live state of every region that matters (in parallel), and builds the plan. AWS errors
that stop a whole run (credentials, access to the listing) become one clear error here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import botocore.exceptions

from reconciler import fleet
from reconciler.aws import (
    REGION_REFUSALS,
    Clients,
    connection_problem,
    credential_problem,
    error_code,
    in_parallel,
)
from reconciler.awsconfig import read_timeout, region_hint, region_problem
from reconciler.errors import (
    AwsError,
    ConfigError,
    ProblemKind,
    ReconcilerError,
    SpecError,
    SpecProblem,
)
from reconciler.inventory import Discovery, discover, read_region
from reconciler.kinds import replanner
from reconciler.kinds.base import Reading
from reconciler.live import Inventory, Progress, RegionInventory
from reconciler.plan import Desired, Plan, Replan, Settings, make_plan
from reconciler.render.problems import warning_line
from reconciler.specs import (
    Spec,
    SpecSet,
    load_specs,
    plan_time_problems,
)
from reconciler.specs.checks import own_account_problems
from reconciler.specs.discover import join_shown

if TYPE_CHECKING:
    from reconciler.specs import BundleSpec


@dataclass(frozen=True)
class PlanOptions:
    specs_dir: str = "specs"
    targets: tuple[str, ...] = ()
    allow_empty: bool = False
    image_quota: int = 40
    # The deletions the plan shows (plan/apply --prune, --replace-failed). --replace-failed
    # also reads the sources of owned images in ERROR (they are recaptured); without it the
    # call budget counts only the sources of creates.
    prune: bool = False
    recapture_failed: bool = False
    # --account: the accounts of the map the run is limited to (by name); empty: all.
    accounts: tuple[str, ...] = ()
    # An apply that deletes (--prune): refused for an account of the run no spec names,
    # unless allow_empty. A plan only shows what that would delete.
    deletes: bool = False


def load(options: PlanOptions) -> SpecSet:
    return load_specs(
        Path(options.specs_dir), allow_empty=options.allow_empty, shown_root=options.specs_dir
    )


def build_plan(
    options: PlanOptions, clients: Clients, progress: Progress | None = None
) -> tuple[Plan, Replan]:
    """Read the specs and the live state, and plan. Raises before any change is made.

    Also returns how to plan one item again from tags read just before a change (apply
    confirms every change to an existing resource that way)."""
    spec_set = load(options)
    for warning in spec_set.warnings:  # what validate warns of, said by every run too
        clients.notify(warning_line(warning))
    if options.accounts and not spec_set.accounts:
        raise ConfigError(
            f"--account {options.accounts[0]}: the specs in {options.specs_dir} declare no "
            "accounts: map",
            hint="remove --account, or declare the accounts in the root defaults document",
        )
    specs, bundles = _targeted(spec_set, options.targets)
    default_region = clients.default_region
    # The default region is read even with no spec in it: an image whose last spec was
    # removed must still be found there; so are the root defaults' `regions:` (a --target
    # run judges only its targets, and reads only their regions).
    listed = () if options.targets else spec_set.regions
    _check_region_names(specs, bundles, listed, clients, options.specs_dir)
    _check_regions(spec_set, specs, bundles, default_region, options.specs_dir)
    if spec_set.accounts:
        return _build_for_accounts(options, clients, spec_set, specs, bundles, listed, progress)
    _check_own_account(specs, clients, options.specs_dir)
    desired = Desired(tuple(specs), tuple(bundles), default_region)
    named = _named_regions(desired) | {default_region} | set(listed)
    regions = sorted(r for r in named if r is not None)
    with aws_errors():
        inventory = read_inventory(
            clients,
            desired,
            regions,
            bool(options.targets),
            progress,
            recapture_failed=options.recapture_failed,
        )
    now = datetime.now(timezone.utc)
    plan = make_plan(
        specs,
        inventory,
        specs_digest=spec_set.digest,
        default_region=default_region,
        image_quota=options.image_quota,
        now=now,
        targets=options.targets,
        prune=options.prune,
        replace_failed=options.recapture_failed,
        bundles=bundles,
    )
    fleet.check_sources(spec_set.specs, plan.items, options.specs_dir)
    settings = Settings(
        now=now, image_quota=options.image_quota, replace_failed=options.recapture_failed
    )
    return plan, replanner(desired, settings)


def _build_for_accounts(
    options: PlanOptions,
    clients: Clients,
    spec_set: SpecSet,
    specs: Sequence[Spec],
    bundles: Sequence[BundleSpec],
    listed: Sequence[str],
    progress: Progress | None,
) -> tuple[Plan, Replan]:
    """The plan of a specs folder with an account map: every account of the run reached,
    read in parallel (each on its own clients) and planned on its own (`fleet`)."""
    accounts = fleet.selected(spec_set, options.accounts, options.specs_dir)
    default_region = clients.default_region

    def regions_of(desired: Desired) -> list[str]:
        named = _named_regions(desired) | {default_region} | set(listed)
        return sorted(r for r in named if r is not None)

    with aws_errors():
        made = fleet.connect(clients, accounts)
    parts = fleet.parts(accounts, made, specs, bundles, default_region, regions_of)
    empty = fleet.empty_accounts(parts)
    if options.deletes and options.prune and empty and not options.allow_empty:
        names = ", ".join(fleet.shown(a) for a in empty)
        raise ConfigError(
            f"--prune with no spec for account {names}: every resource the reconciler owns "
            "there would be deleted",
            hint="add its specs (a moved or unreadable folder?), run without --prune, or pass "
            "--allow-empty if deleting them all is what you want",
        )

    def read(part: fleet.AccountPlan) -> Inventory:
        return read_inventory(
            part.clients,
            part.desired,
            part.regions,
            bool(options.targets),
            progress,
            recapture_failed=options.recapture_failed,
        )

    with aws_errors():
        inventories = fleet.read_all(parts, read)
    now = datetime.now(timezone.utc)
    plan = fleet.joined_plan(
        parts,
        inventories,
        specs_digest=spec_set.digest,
        image_quota=options.image_quota,
        now=now,
        targets=options.targets,
        prune=options.prune,
        replace_failed=options.recapture_failed,
        shown_root=options.specs_dir,
        every_spec=spec_set.specs,
    )
    settings = Settings(
        now=now, image_quota=options.image_quota, replace_failed=options.recapture_failed
    )
    return plan, fleet.replan_by_account(parts, settings)


def _named_regions(desired: Desired) -> set[str | None]:
    """The regions the specs name: each image's own and copy regions, each bundle's, and
    the source region of an import whose source account the run does not plan (the image
    shared with the account is looked up there)."""
    regions: set[str | None] = set()
    for spec in desired.images:
        regions |= {spec.region or desired.default_region, *spec.copies}
        source = spec.source_image
        if source is not None and source.account not in desired.planned_accounts:
            regions.add(source.region or spec.region or desired.default_region)
    regions |= {b.region or desired.default_region for b in desired.bundles}
    return regions


def read_inventory(
    clients: Clients,
    desired: Desired,
    regions: Sequence[str],
    targeted: bool,
    progress: Progress | None = None,
    *,
    recapture_failed: bool = False,
) -> Inventory:
    """The live state of `regions` and, unless `targeted`, of every other region where the
    account holds owned resources (an image left behind when its spec moved, for one)."""
    # A --target run judges only its targets: it has no unmanaged list to look for.
    home = desired.default_region or (regions[0] if regions else None)
    probed: Future[None] = Future()
    early: Future[Discovery] = Future()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="discover") as aside:
        # Discovery runs while the named regions are listed; their tag reads wait only for
        # its first answer, which says whether the role may call the tagging API at all, and
        # what they list for the answers of their own regions (`early`), which it asks first.
        finding = (
            aside.submit(discover, clients, home, probed, first=regions, early=early)
            if home and not targeted
            else None
        )

        def found() -> Discovery:
            return finding.result() if finding else Discovery()

        def found_in(region: str) -> set[str]:
            known = early.result() if finding and region in regions else found()
            return known.types_in(region)

        def region_inventory(region: str) -> RegionInventory:
            reading = Reading(
                clients.region(region),
                desired,
                targeted,
                lambda: found_in(region),
                recapture_failed,
                clients.account,
            )
            try:
                return read_region(
                    reading,
                    lambda: clients.tag_reader(region),
                    progress,
                    denied=clients.tagging_refused,
                    # Tag reads wait for discovery's first answer: whether the role may call it.
                    before_tags=probed.result if finding is not None else None,
                )
            except botocore.exceptions.ClientError as err:
                refused = _region_refused(region, home, err)
                if refused is None:
                    raise
                raise refused from err

        read = in_parallel(region_inventory, list(regions))
        read |= in_parallel(region_inventory, sorted(found().regions - set(regions)))
    if home and not targeted:
        _say_what_was_not_checked(clients, found(), sorted(read), home)
    return Inventory(dict(sorted(read.items())))


def _region_refused(
    region: str, home: str | None, err: botocore.exceptions.ClientError
) -> AwsError | None:
    """A region the specs name (an image's, a copy's, a bundle's) that refuses the account
    while the home region answers: an opt-in region not enabled, or an organisation policy.
    Said as such, not as rejected credentials."""
    code = error_code(err)
    if region == home or code not in REGION_REFUSALS or code == "AccessDeniedException":
        return None
    return AwsError(
        f"region {region} refused the account ({code}); the specs name it (a spec's region, "
        "a copy region or a bundle's region)",
        hint="if it is an opt-in region, enable it for the account (AWS console: Account > "
        "AWS Regions); else remove it from the specs",
    )


def _say_what_was_not_checked(
    clients: Clients, found: Discovery, read: Sequence[str], home: str
) -> None:
    """Regions that may hold owned images this plan could not see, on stderr."""
    skipped = sorted((r, why) for r, why in found.refused.items() if r not in read)
    if skipped:
        listed = ", ".join(f"{r} ({why})" for r, why in skipped)
        clients.notify(
            f"Note: skipped regions that refused tag:GetResources: {listed}; an opt-in "
            "region not enabled for the account, or an organisation policy, refuses it. "
            "Owned images there, if any, are not in this plan"
        )
    if clients.tagging_denied:
        unchecked = [r for r in clients.workspaces_regions(home) if r not in read]
        if unchecked:
            clients.notify(
                f"Note: not checked for owned images (tag:GetResources is denied): "
                f"{', '.join(unchecked)}; list the regions to check under `regions:` in "
                "the specs folder's root defaults document"
            )


def _targeted(spec_set: SpecSet, targets: Sequence[str]) -> tuple[list[Spec], list[BundleSpec]]:
    """The specs a --target run judges: those named, and the image specs of the bundles
    named (a bundle needs its image, as a Terraform target takes its dependencies)."""
    if not targets:
        return list(spec_set.specs), list(spec_set.bundles)
    names = {s.name for s in spec_set.specs} | {b.name for b in spec_set.bundles}
    unknown = [t for t in targets if t not in names]
    if unknown:
        raise ConfigError(
            f"--target names no spec: {', '.join(sorted(unknown))}",
            hint="use an image or bundle name as written in a spec's `name:`",
        )
    bundles = [b for b in spec_set.bundles if b.name in targets]
    needed = set(targets) | {b.image for b in bundles if b.image}
    return [s for s in spec_set.specs if s.name in needed], bundles


def _check_regions(
    spec_set: SpecSet,
    specs: Sequence[Spec],
    bundles: Sequence[BundleSpec],
    default_region: str | None,
    root: str,
) -> None:
    """Every spec needs a region now; no two specs may meet in the default region; and the
    checks that needed the default region (a bundle's image there, a copy to its own
    region) are made before any call."""
    if default_region is None:
        problems = [
            SpecProblem(
                join_shown(root, s.file),
                s.line,
                1,
                "region",
                "no region: set `region:` in the spec or a defaults document, or pass --region "
                "(or set AWS_REGION)",
                kind=ProblemKind.MISSING_FIELD,
            )
            for s in _all(specs, bundles)
            if s.region is None
        ]
        if problems:
            raise SpecError(problems)
        return
    # The whole set, not only a --target run's specs: a collision is an error either way.
    problems = plan_time_problems(spec_set, default_region=default_region, shown_root=root)
    if problems:
        raise SpecError(problems)


def _check_own_account(specs: Sequence[Spec], clients: Clients, root: str) -> None:
    """No spec shares its image with the account it lives in: an error before any change,
    found with one sts:GetCallerIdentity, made only when a spec shares with an account."""
    if not any(s.share_with for s in specs):
        return
    with aws_errors():
        account = clients.account()
    problems = own_account_problems(specs, account, root)
    if problems:
        raise SpecError(problems)


def _all(specs: Sequence[Spec], bundles: Sequence[BundleSpec]) -> list[Spec | BundleSpec]:
    return [*specs, *bundles]


def _check_region_names(
    specs: Sequence[Spec],
    bundles: Sequence[BundleSpec],
    listed: Sequence[str],
    clients: Clients,
    root: str,
) -> None:
    """Every region the run calls (the default one, the specs' own and copy regions, the
    bundles', the root defaults' `regions:`) is one botocore knows (any well-formed name,
    with a custom endpoint): a typo or the wrong case would otherwise be tried as an
    unknown host."""
    custom = clients.custom_endpoint
    default = clients.default_region
    why = region_problem(default, custom_endpoint=custom) if default else None
    if why is not None:
        raise ConfigError(f"{clients.default_region_source}: {why}", hint=region_hint())
    named = [(s.file, s.line, "region", s.region) for s in _all(specs, bundles) if s.region]
    named += [(s.copies_file, s.copies_line, "copies", r) for s in specs for r in s.copies]
    problems = [
        SpecProblem(join_shown(root, file), line, 1, field, why, kind=ProblemKind.INVALID_VALUE)
        for file, line, field, region in named
        if (why := region_problem(region, custom_endpoint=custom))
    ]
    if problems:
        raise SpecError(problems)
    for region in listed:
        why = region_problem(region, custom_endpoint=custom)
        if why is not None:
            raise ConfigError(
                f"`regions:` of the root defaults document in {root}: {why}", hint=region_hint()
            )


@contextmanager
def aws_errors() -> Iterator[None]:
    """AWS failures that stop a whole run, as one clear line each."""
    try:
        yield
    except ReconcilerError:
        raise
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        problem = credential_problem(err) or connection_problem(err, read_timeout())
        if problem is not None:
            raise problem from err
        if isinstance(err, botocore.exceptions.NoRegionError):
            raise ConfigError("no AWS region", hint="pass --region or set AWS_REGION") from err
        code = error_code(err)
        if code == "AccessDeniedException":
            raise AwsError(
                f"access denied: {err}",
                hint="the role needs workspaces:DescribeWorkspaceImages, DescribeTags and "
                "DescribeWorkspaces (see the plan policy in the docs' IAM page, docs/iam.md)",
            ) from err
        raise AwsError(
            f"AWS call failed: {err}", hint="check the endpoint, region and network"
        ) from err
