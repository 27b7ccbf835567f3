"""The account map (the root defaults' `accounts:`) and the checks that span accounts.

Names of the map are resolved to 12-digit ids here, once, so that everything downstream
(the duplicate checks, the plan, the share items) compares ids; the resolved specs keep the
names for messages. Like the other checks, these take the default region: None offline
(`validate`), where what needs it waits, and the run's region at plan time.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.errors import ProblemKind, SpecProblem
from reconciler.specs.discover import join_shown
from reconciler.specs.models import ACCOUNT_PATTERN, Account, BundleSpec, Spec

if TYPE_CHECKING:
    pass

_ROLE_ACCOUNT = re.compile(r"^arn:[^:]+:iam::([0-9]{12}):")


@dataclass(frozen=True)
class Ref:
    """An account as written, resolved: its id and its name in the map, or the problem."""

    id: str | None
    name: str | None
    problem: str | None = None


@dataclass(frozen=True)
class AccountMap:
    """The accounts a specs folder declares (none: the run's own account, as before)."""

    accounts: tuple[Account, ...] = ()
    shown_file: str = ""  # where the map is written, as the user sees it
    by_name: Mapping[str, Account] = field(default_factory=dict)
    by_id: Mapping[str, Account] = field(default_factory=dict)
    # The root defaults document is invalid (its own problems say why): names are not
    # judged, rather than each reported as unknown.
    unknown: bool = False

    @classmethod
    def of(cls, accounts: Sequence[Account], shown_file: str) -> AccountMap:
        by_id: dict[str, Account] = {}
        for account in accounts:
            by_id.setdefault(account.id, account)  # two names for one id: a problem
        return cls(tuple(accounts), shown_file, {a.name: a for a in accounts}, by_id)

    @property
    def declared(self) -> bool:
        return bool(self.accounts)

    def named(self, written: str) -> Ref:
        """An `account:` value: a name of the map only."""
        account = self.by_name.get(written)
        if account is not None:
            return Ref(account.id, account.name)
        if re.match(ACCOUNT_PATTERN, written) and written in self.by_id:
            name = self.by_id[written].name
            return Ref(None, None, f"names an account by id; write its name in the map: {name}")
        return Ref(None, None, self._unknown(written, "remove the line"))

    def reference(self, written: str) -> Ref:
        """A `share_with` entry or a `source_image.account`: a name of the map, or an id
        (in the map or outside it)."""
        if re.match(ACCOUNT_PATTERN, written):
            known = self.by_id.get(written)
            return Ref(written, known.name if known else None)
        account = self.by_name.get(written)
        if account is not None:
            return Ref(account.id, account.name)
        return Ref(None, None, self._unknown(written, "write a 12-digit account id, quoted"))

    def _unknown(self, written: str, instead: str) -> str | None:
        if self.unknown:
            return None
        if not self.declared:
            return (
                f"'{written}' names an account, but the specs declare no accounts: map; "
                f"declare it in the specs folder's root defaults document, or {instead}"
            )
        close = difflib.get_close_matches(written, list(self.by_name), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        names = ", ".join(sorted(self.by_name))
        return (
            f"names no account of the map: '{written}'; {hint}the accounts are {names} "
            f"(declared in {self.shown_file})"
        )


def shown_account(account_id: str, name: str | None) -> str:
    """An account as messages name it: `finance (222222222222)`, or the bare id."""
    return f"{name} ({account_id})" if name else account_id


def map_problems(accounts: Sequence[Account], shown_root: str) -> Iterator[SpecProblem]:
    """Within the map: one name an id, and a role in the account it is declared for."""
    first: dict[str, Account] = {}
    for account in accounts:
        file = join_shown(shown_root, account.file)
        other = first.setdefault(account.id, account)
        if other is not account:
            message = (
                f"account id '{account.id}' is also named '{other.name}' (line {other.line}); "
                "one name an account: remove one, or fix the id"
            )
            field_name = f"defaults.accounts.{account.name}.id"
            kind = ProblemKind.REPEATED_ENTRY
            yield SpecProblem(file, account.id_line, 1, field_name, message, kind=kind)
        role_account = _role_account(account.role)
        if role_account is not None and role_account != account.id:
            message = (
                f"the role's ARN names account {role_account}, not {account.id}, the id of "
                f"'{account.name}'; the role assumed is in the account itself: fix the ARN "
                "or the id"
            )
            field_name = f"defaults.accounts.{account.name}.role"
            kind = ProblemKind.CONFLICTING_FIELDS
            yield SpecProblem(file, account.role_line, 1, field_name, message, kind=kind)


def _role_account(role: str | None) -> str | None:
    match = _ROLE_ACCOUNT.match(role or "")
    return match[1] if match else None


def unresolved_problems(
    resolved: Iterable[Spec | BundleSpec], accounts: AccountMap, shown_root: str
) -> Iterator[SpecProblem]:
    """With a map, every spec lives in one of its accounts. A spec whose `account:` (its
    own or its folders') names no account is told so there, not again here."""
    if not accounts.declared or accounts.unknown:
        return
    names = ", ".join(sorted(accounts.by_name))
    for spec in resolved:
        if spec.account is None and not spec.account_file:
            message = (
                f"resolves to no account: the specs declare accounts ({names}), so each spec "
                "names one; add account: NAME to this spec or to a defaults document of its "
                "folder"
            )
            file, kind = join_shown(shown_root, spec.file), ProblemKind.MISSING_FIELD
            yield SpecProblem(file, spec.line, 1, "account", message, kind=kind)


# ---------------------------------------------------------------------------------------
# Imports
# ---------------------------------------------------------------------------------------


def import_problems(
    specs: Sequence[Spec], default_region: str | None, shown_root: str
) -> Iterator[SpecProblem]:
    """An import from its own account; and, when the source account is in the map, a
    source image spec that is not in the source region or does not share with the
    importing account there. A source region unknown offline waits for the plan.

    An import whose source account declares no image spec of that name is not judged here:
    see `missing_source_problems`."""
    for spec in specs:
        source = spec.source_image
        if source is None:
            continue
        file = join_shown(shown_root, spec.file)
        if spec.account is not None and source.account == spec.account:
            message = (
                f"names {shown_account(source.account, source.account_name)}, the account "
                f"image '{spec.name}' lives in; an import copies an image that another "
                "account shares: name that account, or capture with source_workspace_id"
            )
            kind = ProblemKind.OWN_REGION_OR_ACCOUNT
            yield SpecProblem(
                file, source.account_line, 1, "source_image.account", message, kind=kind
            )
            continue
        if source.account_name is None or spec.account is None:
            continue  # outside the map: the plan looks the shared image up
        found = _sources(spec, specs)
        if not found:
            continue
        region = source.region or spec.region or default_region
        if region is None:
            continue
        why = _unshared(spec, region, found, default_region, shown_root)
        if why is not None:
            kind = ProblemKind.UNAVAILABLE_REFERENCE
            yield SpecProblem(file, source.line, 1, "source_image", why, kind=kind)


def _sources(spec: Spec, specs: Sequence[Spec]) -> list[Spec]:
    """The image specs an import names: that name, in the source account."""
    source = spec.source_image
    assert source is not None
    return [s for s in specs if s.account == source.account and s.name == source.name]


def _unshared(
    spec: Spec, region: str, found: Sequence[Spec], default_region: str | None, root: str
) -> str | None:
    """Why the source is not shared with the importing account in `region`; None when it is
    (or when that depends on a region not known yet)."""
    source = spec.source_image
    assert source is not None
    assert spec.account is not None
    what = f"image '{source.name}' of account {source.account_name}"
    placed = [s for s in found if region in _regions(s, default_region)]
    if not placed:
        if any((s.region or default_region) is None for s in found):
            return None
        places = "; ".join(_where(s, root) for s in found)
        return (
            f"{what} is not in {region}, the source region ({places}); add {region} to "
            "the copies of that spec, or give source_image a region it is in"
        )
    importer = shown_account(spec.account, spec.account_name)
    if any(spec.account in (s.share_with or ()) for s in placed):
        return None
    unmanaged = [s for s in placed if s.share_with is None]
    if unmanaged:
        return (
            f"{what} is not shared with {importer}: its spec "
            f"({_where(unmanaged[0], root)}) manages no sharing; add share_with: "
            f"[{spec.account_name or spec.account}] to it"
        )
    return (
        f"{what} is not shared with {importer} in {region}: its share_with "
        f"({_where(placed[0], root)}) does not list it; add {spec.account_name or spec.account} "
        "to that list"
    )


def _regions(spec: Spec, default_region: str | None) -> set[str]:
    own = spec.region or default_region
    return {*spec.copies, *([own] if own else [])}


def _where(spec: Spec, root: str) -> str:
    own = spec.region or "no region"
    copies = f", copies to {', '.join(spec.copies)}" if spec.copies else ""
    return f"{join_shown(root, spec.file)}:{spec.line}: {own}{copies}"


def missing_source_problems(
    imports: Iterable[Spec], specs: Sequence[Spec], shown_root: str, *, to_create: bool
) -> list[SpecProblem]:
    """Imports from an account of the map that declares no image spec of that name.

    Offline (`to_create=False`) this is a warning: the import may exist already, and an
    import that exists is judged like any image, so retiring its source (removing the spec,
    pruning it) leaves it valid. The plan calls this with the imports it is to create
    (`to_create=True`) and reports what it returns as errors: a create needs its source."""
    problems = []
    for spec in imports:
        source = spec.source_image
        if source is None or source.account_name is None or _sources(spec, specs):
            continue
        names = sorted({s.name for s in specs if s.account == source.account})
        close = difflib.get_close_matches(source.name, names, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        what = f"names no image spec of account {source.account_name}: '{source.name}'{hint}"
        if to_create:
            message = (
                f"{what}, and image '{spec.name}' is yet to be imported; fix the name, or "
                f"declare that image in account {source.account_name}"
            )
        else:
            message = (
                f"{what}; valid while image '{spec.name}' exists already (its source "
                "retired), but a plan that has to import it stops: fix the name, or declare "
                f"that image in account {source.account_name}"
            )
        file = join_shown(shown_root, spec.file)
        # Offline a warning of its own kind, so that each SARIF rule has one level.
        kind = ProblemKind.UNKNOWN_REFERENCE if to_create else ProblemKind.MISSING_IMPORT_SOURCE
        problems.append(
            SpecProblem(file, source.name_line, 1, "source_image.name", message, kind=kind)
        )
    return problems
