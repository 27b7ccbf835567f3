"""The checks that span specs: one image or bundle per name and region, copies, and the
image a bundle names.

Each check takes the default region: None when `validate` runs offline (an unset region
then matches only other unset regions, and what needs the region waits), the region the
run settled on when a plan runs (`plan_time_problems`, before any AWS call). A spec set
that loaded has none of the offline problems, so the plan-time run reports only what the
default region revealed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.errors import ProblemKind, SpecProblem
from reconciler.specs.accounts import import_problems
from reconciler.specs.discover import join_shown
from reconciler.specs.models import BundleSpec, Spec
from reconciler.specs.updates import update_problems

if TYPE_CHECKING:
    from reconciler.specs.load import SpecSet

_DEFAULT = "the default region (--region, AWS_REGION or AWS config)"


def plan_time_problems(
    spec_set: SpecSet, *, default_region: str, shown_root: str
) -> list[SpecProblem]:
    """The problems that show once the default region is known: an unset region that
    equals a copy region, a name then declared twice for a region, a bundle then outside
    its image's regions, an import's source then not in (or not shared in) its region, an
    updated image's source then in another region.
    Every one names the file, line and field, as validate does."""
    return [
        *duplicate_problems(spec_set.specs, default_region=default_region, shown_root=shown_root),
        *copy_region_problems(spec_set.specs, default_region, shown_root),
        *bundle_duplicate_problems(spec_set.bundles, default_region, shown_root),
        *bundle_image_problems(spec_set.bundles, spec_set.specs, default_region, shown_root),
        *import_problems(spec_set.specs, default_region, shown_root),
        *update_problems(spec_set.specs, default_region, shown_root),
    ]


# ---------------------------------------------------------------------------------------
# One image per name and region, counting copies
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    """One image a spec makes: in its own region, or a copy in another."""

    spec: Spec
    region: str | None
    is_copy: bool


def _placed(spec: Spec, default_region: str | None) -> Iterator[_Placed]:
    own = spec.region or default_region
    yield _Placed(spec, own, False)
    # The own region in `copies` is its own problem (copy_region_problems), not a duplicate.
    for region in dict.fromkeys(spec.copies):
        if region != own:
            yield _Placed(spec, region, True)


def duplicate_problems(
    specs: Iterable[Spec], *, default_region: str | None, shown_root: str
) -> list[SpecProblem]:
    """An (account, region, name) that two specs make, each in its own region or as a copy:
    the service keeps one image per name and region of an account. Without a default
    region, unset regions match each other."""
    first: dict[tuple[str | None, str | None, str], _Placed] = {}
    problems = []
    for spec in specs:
        for placed in _placed(spec, default_region):
            key = (spec.account, placed.region, spec.name)
            other = first.setdefault(key, placed)
            if other is not placed:
                problems.append(_duplicate(placed, other, shown_root))
    return problems


def _in(spec: Spec | BundleSpec) -> str:
    """The account a duplicate is in, when the specs name accounts."""
    return f" of account {spec.account_name}" if spec.account_name else ""


def _duplicate(placed: _Placed, other: _Placed, shown_root: str) -> SpecProblem:
    spec, region = placed.spec, (placed.region or "the default region") + _in(placed.spec)
    elsewhere = f"{join_shown(shown_root, other.spec.file)}:{other.spec.line}"
    if not placed.is_copy and not other.is_copy:
        message = (
            f"image '{spec.name}' is declared twice for {region} (also at {elsewhere}); "
            "keep one or rename"
        )
        return _named(spec, shown_root, message, ProblemKind.DUPLICATE_NAME)
    there = f"copied there by the spec at {elsewhere}" if other.is_copy else f"at {elsewhere}"
    if placed.is_copy:
        message = (
            f"copies image '{spec.name}'{_for(spec, shown_root)} to {region}, where it also "
            f"exists ({there}); one image per name and region: remove {region} from copies, "
            "or rename one spec"
        )
        file, line = _copies_place(spec, shown_root)
        return SpecProblem(file, line, 1, "copies", message, kind=ProblemKind.DUPLICATE_NAME)
    message = (
        f"image '{spec.name}' is declared for {region}, where it also exists ({there}); one "
        f"image per name and region: remove {region} from that copies list, or rename one"
    )
    return _named(spec, shown_root, message, ProblemKind.DUPLICATE_NAME)


def _named(
    spec: Spec | BundleSpec, shown_root: str, message: str, kind: ProblemKind
) -> SpecProblem:
    """A problem of the spec as a whole, reported at its `name`."""
    return SpecProblem(join_shown(shown_root, spec.file), spec.line, 1, "name", message, kind=kind)


def _for(spec: Spec, shown_root: str) -> str:
    """Which spec a defaults copies list is reported for (it applies to many)."""
    if spec.copies_file == spec.file:
        return ""
    return f" (the spec at {join_shown(shown_root, spec.file)}:{spec.line})"


def _copies_place(spec: Spec, shown_root: str) -> tuple[str, int]:
    """Where the copies list that applies to `spec` is written."""
    if spec.copies_file:
        return join_shown(shown_root, spec.copies_file), spec.copies_line
    return join_shown(shown_root, spec.file), spec.line


def copy_region_problems(
    specs: Iterable[Spec], default_region: str | None, shown_root: str
) -> Iterator[SpecProblem]:
    """A copy to the image's own region: the image is there already."""
    for spec in specs:
        own = spec.region or default_region
        if own is None or own not in spec.copies:
            continue
        declared = f"{join_shown(shown_root, spec.file)}:{spec.line}"
        if spec.region is None:
            declared += f", which has no region: {_DEFAULT} is {own}"
        message = (
            f"lists {own}, the region of image '{spec.name}' itself ({declared}); an "
            f"image is not copied to its own region: remove {own} from copies"
        )
        if spec.copies_file != spec.file:
            message += ", or give that spec a copies list of its own"
        file, line = _copies_place(spec, shown_root)
        yield SpecProblem(file, line, 1, "copies", message, kind=ProblemKind.OWN_REGION_OR_ACCOUNT)


def region_collision_warnings(specs: Iterable[Spec], *, shown_root: str) -> Iterator[SpecProblem]:
    """A name declared with a region (or copied to one) in one place and without a region
    in another: valid, but the two are one image when the default region is that region,
    and plan then fails."""
    with_region: dict[tuple[str | None, str], dict[str, _Placed]] = {}
    without: list[Spec] = []
    for spec in specs:
        if spec.region is None:
            without.append(spec)
        for placed in _placed(spec, None):
            if placed.region is not None:
                key = (spec.account, spec.name)
                with_region.setdefault(key, {}).setdefault(placed.region, placed)
    for spec in without:
        for region, other in sorted(with_region.get((spec.account, spec.name), {}).items()):
            if other.spec is spec:
                continue  # its own copies: copy_region_problems says it at plan time
            elsewhere = f"{join_shown(shown_root, other.spec.file)}:{other.spec.line}"
            there = (
                f"copied to {region} by the spec at {elsewhere}"
                if other.is_copy
                else f"declared for {region} at {elsewhere}"
            )
            yield _collision_warning("image", spec.name, there, region, spec, shown_root)


def _collision_warning(
    what: str, name: str, there: str, region: str, spec: Spec | BundleSpec, shown_root: str
) -> SpecProblem:
    message = (
        f"{what} '{name}' has no region here and is {there}; the two collide when "
        f"{_DEFAULT} is {region}, and plan then fails: give this spec a region"
    )
    return _named(spec, shown_root, message, ProblemKind.REGION_COLLISION)


# ---------------------------------------------------------------------------------------
# Bundles
# ---------------------------------------------------------------------------------------


def bundle_duplicate_problems(
    bundles: Iterable[BundleSpec], default_region: str | None, shown_root: str
) -> Iterator[SpecProblem]:
    """A bundle (account, region, name) declared twice. Without a default region, unset
    regions match each other."""
    first: dict[tuple[str | None, str | None, str], BundleSpec] = {}
    for bundle in bundles:
        region = bundle.region or default_region
        other = first.setdefault((bundle.account, region, bundle.name), bundle)
        if other is bundle:
            continue
        message = (
            f"bundle '{bundle.name}' is declared twice for {region or 'the default region'}"
            f"{_in(bundle)} "
            f"(also at {join_shown(shown_root, other.file)}:{other.line}); keep one or rename"
        )
        yield _named(bundle, shown_root, message, ProblemKind.DUPLICATE_NAME)


def bundle_collision_warnings(
    bundles: Iterable[BundleSpec], *, shown_root: str
) -> Iterator[SpecProblem]:
    """As region_collision_warnings, for bundle names."""
    with_region: dict[tuple[str | None, str], dict[str, BundleSpec]] = {}
    without: list[BundleSpec] = []
    for bundle in bundles:
        key = (bundle.account, bundle.name)
        if bundle.region is None:
            without.append(bundle)
        else:
            with_region.setdefault(key, {}).setdefault(bundle.region, bundle)
    for bundle in without:
        for region, other in sorted(with_region.get((bundle.account, bundle.name), {}).items()):
            there = f"declared for {region} at {join_shown(shown_root, other.file)}:{other.line}"
            yield _collision_warning("bundle", bundle.name, there, region, bundle, shown_root)


def bundle_image_problems(
    bundles: Iterable[BundleSpec],
    specs: Sequence[Spec],
    default_region: str | None,
    shown_root: str,
) -> Iterator[SpecProblem]:
    """A bundle's `image` names an image spec of the bundle's own account that is in, or
    copies to, the bundle's region. Where a region is unknown offline, the plan checks it."""
    by_name: dict[str | None, dict[str, list[Spec]]] = {}
    for spec in specs:
        by_name.setdefault(spec.account, {}).setdefault(spec.name, []).append(spec)
    for bundle in bundles:
        if bundle.image is None:
            continue
        own = by_name.get(bundle.account, {})
        found = own.get(bundle.image)
        if not found:
            elsewhere = [s for names in by_name.values() for s in names.get(bundle.image, [])]
            if elsewhere:
                message = _other_account(bundle, elsewhere[0], shown_root)
                kind = ProblemKind.UNAVAILABLE_REFERENCE
            else:
                message, kind = _no_such_image(bundle.image, own), ProblemKind.UNKNOWN_REFERENCE
            yield _bundle_problem(bundle, shown_root, message, kind)
            continue
        region = bundle.region or default_region
        if region is None or _reaches(found, region, default_region) is not False:
            continue
        message = _elsewhere(bundle, region, found, default_region, shown_root)
        yield _bundle_problem(bundle, shown_root, message, ProblemKind.UNAVAILABLE_REFERENCE)


def _reaches(specs: Sequence[Spec], region: str, default_region: str | None) -> bool | None:
    """Whether one of these specs makes an image in `region`; None when it depends on a
    region not known yet."""
    if any(region in s.copies or region == (s.region or default_region) for s in specs):
        return True
    if any((s.region or default_region) is None for s in specs):
        return None
    return False


def _no_such_image(name: str, by_name: dict[str, list[Spec]]) -> str:
    close = difflib.get_close_matches(name, list(by_name), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return (
        f"names no image spec: '{name}'; {hint}give the name of an image spec, or "
        "image_id: wsi-... for an image that no spec manages"
    )


def _other_account(bundle: BundleSpec, spec: Spec, shown_root: str) -> str:
    """A bundle naming an image spec of another account: the service builds a bundle only
    from an image of the bundle's own account."""
    where = f"{join_shown(shown_root, spec.file)}:{spec.line}"
    ours = bundle.account_name or "the run's own account"
    return (
        f"image '{bundle.image}' is declared in account {spec.account_name} ({where}), not "
        f"in {ours}, the bundle's account; a bundle uses an image of its own account: import "
        f"it into {ours} (an image spec with source_image), or move the bundle"
    )


def _elsewhere(
    bundle: BundleSpec, region: str, specs: Sequence[Spec], default_region: str | None, root: str
) -> str:
    where = f"{region}, {_DEFAULT}" if bundle.region is None else region
    places = "; ".join(_regions_of(s, default_region, root) for s in specs)
    if len(specs) == 1:
        why = f"its spec is not in {region} and does not copy to it"
    else:
        why = f"none of its specs is in {region} or copies to it"
    return (
        f"image '{bundle.image}' is not in {where}: {why} ({places}); add {region} to the "
        "copies of its spec, or move the bundle to a region the image is in"
    )


def _regions_of(spec: Spec, default_region: str | None, shown_root: str) -> str:
    own = spec.region or f"{default_region}, the default region"
    copies = f", copies to {', '.join(spec.copies)}" if spec.copies else ", no copies"
    return f"{join_shown(shown_root, spec.file)}:{spec.line}: {own}{copies}"


def _bundle_problem(
    bundle: BundleSpec, shown_root: str, message: str, kind: ProblemKind
) -> SpecProblem:
    file = join_shown(shown_root, bundle.file)
    return SpecProblem(file, bundle.image_line, 1, "image", message, kind=kind)


# ---------------------------------------------------------------------------------------
# Sharing with the image's own account
# ---------------------------------------------------------------------------------------


def own_account_problems(specs: Iterable[Spec], account: str, shown_root: str) -> list[SpecProblem]:
    """`share_with` naming the account the image lives in (the caller's): the service
    refuses to share an image with its owner, so every apply would fail there. Reported at
    the list that applies, once for a defaults list that many specs share."""
    seen: set[tuple[str, int]] = set()
    problems = []
    for spec in specs:
        if account not in (spec.share_with or ()):
            continue
        file = join_shown(shown_root, spec.share_with_file or spec.file)
        line = spec.share_with_line or spec.line
        if (file, line) in seen:
            continue
        seen.add((file, line))
        which = (
            f"account {spec.account_name} of the map"
            if spec.account_name
            else "the one these credentials belong to"
        )
        named = f"{spec.account_name} ({account})" if spec.account_name else account
        message = (
            f"lists {named}, the account that image '{spec.name}' lives in ({which}); an "
            "image is not shared with its own account: remove it from share_with"
        )
        kind = ProblemKind.OWN_REGION_OR_ACCOUNT
        problems.append(SpecProblem(file, line, 1, "share_with", message, kind=kind))
    return problems


def own_account_offline_problems(specs: Sequence[Spec], shown_root: str) -> list[SpecProblem]:
    """`share_with` naming the image's own account, where the specs say which it is (with
    a map); without one, the plan asks STS (`own_account_problems` with the caller's)."""
    by_account: dict[str, list[Spec]] = {}
    for spec in specs:
        if spec.account is not None and spec.share_with:
            by_account.setdefault(spec.account, []).append(spec)
    return [
        problem
        for account, owned in by_account.items()
        for problem in own_account_problems(owned, account, shown_root)
    ]
