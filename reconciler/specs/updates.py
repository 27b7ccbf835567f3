"""The checks of updated images (`updated_from: NAME`): the image spec they are made from.

An updated image is made by CreateUpdatedWorkspaceImage from an image of its own account in
its own region, so NAME must be an image spec there, and no chain of `updated_from` may
return to where it started. Like the other checks, these take the default region: None
offline (`validate`), where a comparison that needs it becomes a warning, and the run's
region at plan time.

Once an updated image exists, its source is no longer needed: last month's image must be
retirable. So a NAME that its account does not declare is only a warning offline; the plan
turns it into an error for an updated image it still has to create
(`missing_update_source_problems` with `to_create=True`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence

from reconciler.errors import ProblemKind, SpecProblem
from reconciler.specs.discover import join_shown
from reconciler.specs.models import Spec

_DEFAULT = "the default region (--region, AWS_REGION or AWS config)"
_OTHER_SOURCE = "give one of them source_workspace_id or source_image instead"


# Image specs by (account, name): a folder may hold hundreds, and each check looks up NAME.
_Index = Mapping[tuple[str | None, str], Sequence[Spec]]


def update_sources(spec: Spec, specs: Sequence[Spec]) -> list[Spec]:
    """The image specs `spec` may be updated from: NAME in the spec's own account, in any
    region (the region is judged apart), never the spec itself."""
    return _sources(spec, _index(specs))


def _index(specs: Sequence[Spec]) -> _Index:
    index: dict[tuple[str | None, str], list[Spec]] = {}
    for spec in specs:
        index.setdefault((spec.account, spec.name), []).append(spec)
    return index


def _sources(spec: Spec, index: _Index) -> list[Spec]:
    if spec.updated_from is None or spec.updated_from == spec.name:
        return []
    return list(index.get((spec.account, spec.updated_from), ()))


def update_problems(
    specs: Sequence[Spec], default_region: str | None, shown_root: str
) -> Iterator[SpecProblem]:
    """Errors: NAME is the spec itself, NAME's specs are all in another region than the
    spec's (where both regions are known), or a chain of `updated_from` loops."""
    index = _index(specs)
    for spec in specs:
        if spec.updated_from is None:
            continue
        if spec.updated_from == spec.name:
            yield _self_problem(spec, shown_root)
            continue
        why = _elsewhere(spec, _sources(spec, index), default_region, shown_root)
        if why is not None:
            yield _problem(spec, shown_root, why, ProblemKind.UNAVAILABLE_REFERENCE)
    yield from _loop_problems(specs, index, shown_root)


def _self_problem(spec: Spec, shown_root: str) -> SpecProblem:
    message = (
        f"names image '{spec.name}' itself; an updated image is a new image, made from "
        "another one: give the name of the image spec it updates, and this spec a new name"
    )
    return _problem(spec, shown_root, message, ProblemKind.REFERENCE_LOOP)


def _elsewhere(
    spec: Spec, sources: Sequence[Spec], default_region: str | None, root: str
) -> str | None:
    """Why no source is in the spec's region; None when one is, or when that depends on a
    region not known yet (a warning offline)."""
    region = spec.region or default_region
    if not sources or region is None:
        return None
    regions = [s.region or default_region for s in sources]
    if region in regions or None in regions:
        return None
    where = region if spec.region else f"{region}, {_DEFAULT}"
    places = "; ".join(_where(s, default_region, root) for s in sources)
    copied = [s for s in sources if region in s.copies]
    if copied:
        return (
            f"image '{spec.updated_from}' is only copied to {where} ({places}); an image is "
            f"updated where it is made: give this spec region {copied[0].region or default_region} "
            f"(that image's own) and add {region} to this spec's copies"
        )
    return (
        f"image '{spec.updated_from}' is not in {where}, this image's region ({places}); "
        "an updated image is made in the region of the image it updates: give this spec "
        "that region (and copies for others), or name an image spec of this region"
    )


def _where(spec: Spec, default_region: str | None, root: str) -> str:
    own = spec.region or (f"{default_region}, the default region" if default_region else "")
    copies = f", copies to {', '.join(spec.copies)}" if spec.copies else ""
    return f"{join_shown(root, spec.file)}:{spec.line}: {own or 'no region'}{copies}"


def update_region_warnings(specs: Sequence[Spec], *, shown_root: str) -> Iterator[SpecProblem]:
    """An updated image and its source where one has a region and the other none: valid
    offline, but the two are in one region only when the default region is that region,
    and plan stops otherwise."""
    index = _index(specs)
    for spec in specs:
        sources = _sources(spec, index)
        if not sources:
            continue
        regions = {s.region for s in sources}
        if spec.region is None and None not in regions:
            # NAME is declared only with regions: this spec is there if the default is.
            other = sources[0]
            message = (
                f"has no region, and image '{spec.updated_from}' is declared for "
                f"{other.region} ({_at(other, shown_root)}); an updated image is made in "
                f"its source's region, so plan stops unless {_DEFAULT} is {other.region}: "
                f"give this spec region: {other.region}"
            )
        elif spec.region is not None and spec.region not in regions and None in regions:
            other = next(s for s in sources if s.region is None)
            message = (
                f"names image '{spec.updated_from}', which has no region "
                f"({_at(other, shown_root)}); an updated image is made in its source's "
                f"region, so plan stops unless {_DEFAULT} is {spec.region}: give that spec "
                f"region: {spec.region}"
            )
        else:
            continue
        yield _problem(spec, shown_root, message, ProblemKind.UNSETTLED_REGION)


def _at(spec: Spec, root: str) -> str:
    return f"{join_shown(root, spec.file)}:{spec.line}"


# ---------------------------------------------------------------------------------------
# Loops
# ---------------------------------------------------------------------------------------


def _loop_problems(specs: Sequence[Spec], index: _Index, shown_root: str) -> Iterator[SpecProblem]:
    """Every spec on a loop of `updated_from` (a -> b -> a), each at its own line with the
    loop read from it: the first image of a chain must be captured or imported. An edge
    whose regions differ is the region check's, not a loop; an unknown region links."""
    for spec in specs:
        loop = _loop_from(spec, index)
        if loop is None:
            continue
        chain = " -> ".join(s.name for s in (spec, *loop))
        message = (
            f"the chain of updated_from loops ({chain}): an updated image is made from an "
            f"image that exists first; {_OTHER_SOURCE}"
        )
        yield _problem(spec, shown_root, message, ProblemKind.REFERENCE_LOOP)


def _loop_from(start: Spec, index: _Index) -> list[Spec] | None:
    """The specs from `start`'s source back to `start`, the first such path in file order
    (depth first); None when no path returns."""
    stack: list[tuple[Spec, list[Spec]]] = [(s, [s]) for s in reversed(_linked(start, index))]
    seen: set[int] = set()
    while stack:
        spec, path = stack.pop()
        if spec is start:
            return path
        if id(spec) in seen:
            continue
        seen.add(id(spec))
        stack.extend((s, [*path, s]) for s in reversed(_linked(spec, index)))
    return None


def _linked(spec: Spec, index: _Index) -> list[Spec]:
    """The sources of `spec` in a region it may be in (equal, or one of the two unset)."""
    return [
        s
        for s in _sources(spec, index)
        if s.region == spec.region or None in (s.region, spec.region)
    ]


# ---------------------------------------------------------------------------------------
# A source retired
# ---------------------------------------------------------------------------------------


def missing_update_source_problems(
    updates: Iterable[Spec], specs: Sequence[Spec], shown_root: str, *, to_create: bool
) -> list[SpecProblem]:
    """Updated images whose account declares no image spec of their NAME.

    Offline (`to_create=False`) this is a warning: the updated image may exist already,
    and one that exists needs its source no more, so retiring the source (removing its
    spec, pruning it) leaves it valid. The plan calls this with the updated images it is to
    create (`to_create=True`) and reports what it returns as errors: a create needs its
    source. A NAME declared only in another account counts as not declared (an image is
    updated in its own account), and the message says where that one is."""
    problems = []
    index = _index(specs)
    for spec in updates:
        name = spec.updated_from
        if name is None or name == spec.name or _sources(spec, index):
            continue
        elsewhere = [s for s in specs if s.name == name and s.account != spec.account]
        what = _not_declared(spec, specs, elsewhere, shown_root)
        account = f" in account {spec.account_name}" if spec.account_name else ""
        if to_create:
            message = (
                f"{what}, and image '{spec.name}' is yet to be created; fix the name, or "
                f"declare image '{name}'{account}"
            )
            kind = ProblemKind.UNAVAILABLE_REFERENCE if elsewhere else ProblemKind.UNKNOWN_REFERENCE
        else:
            message = (
                f"{what}; valid while image '{spec.name}' exists already (its source "
                f"retired), but a plan that has to create it stops: fix the name, or declare "
                f"image '{name}'{account}"
            )
            # Offline a warning of its own kind, so that each SARIF rule has one level.
            kind = ProblemKind.MISSING_UPDATE_SOURCE
        problems.append(_problem(spec, shown_root, message, kind))
    return problems


def _not_declared(
    spec: Spec, specs: Sequence[Spec], elsewhere: Sequence[Spec], shown_root: str
) -> str:
    name = spec.updated_from
    assert name is not None
    own = sorted({s.name for s in specs if s.account == spec.account and s is not spec})
    close = difflib.get_close_matches(name, own, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    of = f" of account {spec.account_name}" if spec.account_name else ""
    what = f"names no image spec{of}: '{name}'{hint}"
    if elsewhere:
        other = elsewhere[0]
        what += (
            f"; the image spec of that name at {_at(other, shown_root)} is in account "
            f"{other.account_name}, and an image is updated in its own account"
        )
    return what


def _problem(spec: Spec, shown_root: str, message: str, kind: ProblemKind) -> SpecProblem:
    file = join_shown(shown_root, spec.file)
    return SpecProblem(file, spec.updated_from_line, 1, "updated_from", message, kind=kind)
