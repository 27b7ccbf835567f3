"""Many accounts in one run: the accounts of the specs folder's map, each planned as one.

A specs folder whose root defaults declare `accounts:` manages every account of the map (or
those `--account` names). Each account is reached with its own credentials (`reach`), read
with its own clients (paced per account and region, as the service's limits are), and
planned on its own by the same kinds as a single account: its specs against its live state.
The plans are then joined, every item and unmanaged entry carrying its account. What spans
accounts is an import: its item waits for the share item of its source account (when the
run plans that account), which the apply engine orders like any other dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.aws import Clients, in_parallel
from reconciler.errors import ConfigError, SpecError
from reconciler.kinds import image as image_kind
from reconciler.kinds import replanner
from reconciler.kinds.image import is_import
from reconciler.live import Inventory
from reconciler.plan import (
    Action,
    Desired,
    Plan,
    PlanAccount,
    PlanItem,
    Replan,
    Settings,
    Unmanaged,
    make_plan,
)
from reconciler.reach import Target, account_session, duration_seconds, prove
from reconciler.specs import BundleSpec, Spec, SpecSet
from reconciler.specs.accounts import missing_source_problems, shown_account
from reconciler.specs.models import Account
from reconciler.specs.updates import missing_update_source_problems


@dataclass(frozen=True)
class AccountPlan:
    """One account's part of the run: its specs, and where its live state is read."""

    account: Account
    clients: Clients
    desired: Desired
    regions: tuple[str, ...]


def selected(spec_set: SpecSet, names: Sequence[str], root: str) -> tuple[Account, ...]:
    """The accounts of the run: those `--account` names (each a name of the map), else all."""
    if not names:
        return spec_set.accounts
    by_name = {a.name: a for a in spec_set.accounts}
    unknown = sorted({n for n in names if n not in by_name})
    if unknown:
        raise ConfigError(
            f"--account names no account of the map: {', '.join(unknown)}",
            hint=f"the accounts of {root} are {', '.join(sorted(by_name))}",
        )
    return tuple(a for a in spec_set.accounts if a.name in set(names))


def connect(clients: Clients, accounts: Sequence[Account]) -> dict[str, Clients]:
    """Each account's clients, every account proved reachable (one GetCallerIdentity each,
    in parallel, through its own credentials) before anything else is read: an account that
    can't be reached stops the run, named, before any change in any account."""
    seconds = duration_seconds()
    made: dict[str, Clients] = {}
    for account in accounts:
        target = _target(account)
        session = account_session(
            clients.session,
            target,
            endpoint_url=clients.settings.endpoint_url,
            duration_seconds=seconds,
            region=clients.default_region,
        )
        made[account.id] = clients.for_account(account.id, session)
    prove([_target(a) for a in accounts], lambda t: made[t.account_id].account())
    return made


def _target(account: Account) -> Target:
    return Target(account.name, account.id, account.role, account.external_id)


def parts(
    accounts: Sequence[Account],
    made: Mapping[str, Clients],
    specs: Sequence[Spec],
    bundles: Sequence[BundleSpec],
    default_region: str | None,
    regions_of: Callable[[Desired], Sequence[str]],
) -> list[AccountPlan]:
    """Each account's specs and the regions to read there (`regions_of` its desired state)."""
    planned = frozenset(a.id for a in accounts)
    found = []
    for account in accounts:
        desired = Desired(
            tuple(s for s in specs if s.account == account.id),
            tuple(b for b in bundles if b.account == account.id),
            default_region,
            planned_accounts=planned,
        )
        found.append(AccountPlan(account, made[account.id], desired, tuple(regions_of(desired))))
    return found


def empty_accounts(part_list: Sequence[AccountPlan]) -> list[Account]:
    """The accounts of the run that no spec names: `apply --prune` would delete everything
    they own."""
    return [p.account for p in part_list if not p.desired.images and not p.desired.bundles]


def read_all(
    part_list: Sequence[AccountPlan],
    read: Callable[[AccountPlan], Inventory],
) -> dict[str, Inventory]:
    """Every account's live state, accounts in parallel (each paced on its own)."""
    by_id = {p.account.id: p for p in part_list}
    return in_parallel(lambda account_id: read(by_id[account_id]), list(by_id))


def joined_plan(
    part_list: Sequence[AccountPlan],
    inventories: Mapping[str, Inventory],
    *,
    specs_digest: str,
    image_quota: int,
    now: datetime,
    targets: tuple[str, ...],
    prune: bool,
    replace_failed: bool,
    shown_root: str,
    every_spec: Sequence[Spec],
) -> Plan:
    """Each account planned on its own, joined in the map's order; each item carries its
    account. Imports yet to be made get the reason their source gives them."""
    items: list[PlanItem] = []
    unmanaged: list[Unmanaged] = []
    for part in part_list:
        one = make_plan(
            part.desired.images,
            inventories[part.account.id],
            specs_digest=specs_digest,
            default_region=part.desired.default_region,
            image_quota=image_quota,
            now=now,
            targets=targets,
            prune=prune,
            replace_failed=replace_failed,
            bundles=part.desired.bundles,
            planned_accounts=part.desired.planned_accounts,
        )
        where = {"account": part.account.id, "account_name": part.account.name}
        items += [i.model_copy(update=where) for i in one.items]
        unmanaged += [u.model_copy(update=where) for u in one.unmanaged]
    check_sources(every_spec, items, shown_root)
    names = {p.account.id: p.account.name for p in part_list}
    return Plan(
        specs_digest=specs_digest,
        items=tuple(image_kind.import_reason(i, items, names) for i in items),
        unmanaged=tuple(unmanaged),
        targets=targets,
        prune=prune,
        replace_failed=replace_failed,
        accounts=tuple(
            PlanAccount(name=p.account.name, id=p.account.id, role=p.account.role)
            for p in part_list
        ),
    )


def check_sources(specs: Sequence[Spec], items: Sequence[PlanItem], root: str) -> None:
    """An import or an updated image to create needs its source: an import's, from an
    account of the map, must be an image spec there; an updated image's, an image spec of
    its own account (offline these are warnings, as one that exists needs its source no
    more). `specs`: every spec of the folder, in the run or not."""
    creates = {(i.account or "", i.name): i for i in items if i.action is Action.CREATE}

    def to_create(spec: Spec, made: Callable[[PlanItem], bool]) -> bool:
        item = creates.get((spec.account or "", spec.name))
        return item is not None and made(item)

    imports = [s for s in specs if to_create(s, is_import)]
    updates = [s for s in specs if to_create(s, image_kind.is_update)]
    problems = missing_source_problems(imports, specs, root, to_create=True)
    problems += missing_update_source_problems(updates, specs, root, to_create=True)
    if problems:
        raise SpecError(problems)


def replan_by_account(part_list: Sequence[AccountPlan], settings: Settings) -> Replan:
    """How apply plans one item again from fresh tags: against its own account's specs."""
    by_id = {p.account.id: replanner(p.desired, settings) for p in part_list}

    def replan(item: PlanItem, tags: Mapping[str, str] | None) -> PlanItem:
        return by_id[item.account or ""](item, tags)

    return replan


def shown(account: Account) -> str:
    return shown_account(account.id, account.name)
