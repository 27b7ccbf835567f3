"""Discovery of spec files, defaults by folder, and the checks that span files.

Every problem in every file is collected before anything is reported, so one run shows the
whole list, sorted by file and line, as a compiler would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import SpecError, SpecProblem
from reconciler.specs.discover import ancestors, join_shown, spec_files
from reconciler.specs.ignored import IgnoreRule, TagDeclaration, ignored_tag_problems, rules_of
from reconciler.specs.models import (
    MAX_DECLARED_TAGS,
    DefaultsBody,
    DefaultsDocument,
    ImageSpecDocument,
    Spec,
)
from reconciler.specs.validate import validate_document
from reconciler.specs.yamlload import Document, Position, load_documents


@dataclass(frozen=True)
class SpecSet:
    """The desired state: every spec, in file order, and a digest of the files read.

    `warnings` are problems that don't stop a run (they have the shape of errors, so that
    they print the same way): validate, which knows no default region, shows them.
    `regions` is the root defaults' `regions:` list: regions to read besides those named."""

    specs: tuple[Spec, ...]
    digest: str
    warnings: tuple[SpecProblem, ...] = ()
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Defaults:
    body: DefaultsBody
    file: str  # as shown
    line: int
    source: Document


@dataclass(frozen=True)
class _Declared:
    doc: ImageSpecDocument
    source: Document
    folder: str
    file: str


@dataclass
class _Collected:
    declared: list[_Declared] = field(default_factory=list)
    defaults: dict[str, _Defaults] = field(default_factory=dict)
    problems: list[SpecProblem] = field(default_factory=list)


def load_specs(root: Path, *, allow_empty: bool = False, shown_root: str | None = None) -> SpecSet:
    """Read and validate every spec under `root`. Raises SpecError with every problem."""
    shown = shown_root if shown_root is not None else str(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        problem = SpecProblem(shown, 0, 0, "<folder>", f"specs folder {what}; pass SPECS_DIR")
        raise SpecError([problem])
    collected = _Collected()
    digest = hashlib.sha256()
    for relative, data in _read_files(root, shown, collected.problems):
        digest.update(f"{relative}\0{len(data)}\0".encode())
        digest.update(data)
        _collect_file(relative, data, shown, collected)
    specs = [_resolve(d, collected.defaults) for d in collected.declared]
    problems = collected.problems
    problems += _tag_count_problems(specs, collected.declared, shown)
    problems += _ignored_tag_problems(collected, shown)
    problems += _regions_outside_the_root(collected)
    problems += duplicate_problems(specs, default_region=None, shown_root=shown)
    if not specs and not problems and not allow_empty:
        message = "holds no image spec; add one, or pass --allow-empty to retire every image"
        problems.append(SpecProblem(shown, 0, 0, "<folder>", message))
    if problems:
        raise SpecError(problems)
    warnings = tuple(sorted(region_collision_warnings(specs, shown_root=shown)))
    root_defaults = collected.defaults.get("")
    regions = tuple(root_defaults.body.regions or ()) if root_defaults else ()
    return SpecSet(tuple(specs), "sha256:" + digest.hexdigest(), warnings, regions)


def _regions_outside_the_root(collected: _Collected) -> Iterator[SpecProblem]:
    """`regions:` says which regions a run reads: one list, in the root defaults only."""
    for folder, defaults in collected.defaults.items():
        if folder and defaults.body.regions is not None:
            where = defaults.source.where(("defaults", "regions"), key=True)
            message = (
                "is read only in the specs folder's root defaults document; move it there "
                "(it lists regions every run reads, not regions of this folder's specs)"
            )
            yield _problem(defaults.file, where, "defaults.regions", message)


def _read_files(root: Path, shown: str, problems: list[SpecProblem]) -> Iterator[tuple[str, bytes]]:
    """(relative path, bytes) of every spec file, in a stable order."""
    for found in spec_files(str(root), shown, problems):
        try:
            with open(found.path, "rb") as spec_file:
                yield found.relative, spec_file.read()
        except OSError as err:
            message = (
                f"cannot be read ({err.strerror}); the specs are read whole or not at all: "
                "fix its permissions or remove it"
            )
            problems.append(SpecProblem(join_shown(shown, found.relative), 1, 1, "<file>", message))


def _collect_file(relative: str, data: bytes, shown: str, out: _Collected) -> None:
    shown_file = join_shown(shown, relative)
    documents, load_problems = load_documents(data)
    for lp in load_problems:
        out.problems.append(_problem(shown_file, lp.position, lp.field, lp.message))
    if not documents and not load_problems:
        message = "holds no YAML document; add a spec or delete the file"
        out.problems.append(SpecProblem(shown_file, 1, 1, "<file>", message))
    folder = relative.rpartition("/")[0]
    if len(documents) > 1 and documents[-1].data is None:
        documents = documents[:-1]  # a trailing `---` is common and harmless
    for document in documents:
        model, issues = validate_document(document)
        for issue in issues:
            out.problems.append(_problem(shown_file, issue.position, issue.field, issue.message))
        if isinstance(model, ImageSpecDocument):
            out.declared.append(_Declared(model, document, folder, relative))
        elif isinstance(model, DefaultsDocument):
            line = document.position.line
            _add_defaults(out, folder, _Defaults(model.defaults, shown_file, line, document))


def _add_defaults(out: _Collected, folder: str, defaults: _Defaults) -> None:
    earlier = out.defaults.get(folder)
    if earlier is None:
        out.defaults[folder] = defaults
        return
    message = (
        f"a second defaults document for folder '{folder or '.'}' (the first is at "
        f"{earlier.file}:{earlier.line}); merge them into one"
    )
    out.problems.append(SpecProblem(defaults.file, defaults.line, 1, "defaults", message))


def _resolve(declared: _Declared, defaults: dict[str, _Defaults]) -> Spec:
    """The spec with its folders' defaults applied: the nearest folder wins."""
    chain = [defaults[f].body for f in ancestors(declared.folder) if f in defaults]
    region = declared.doc.region
    tags: dict[str, str] = {}
    ignore_keys: set[str] = set()
    ignore_prefixes: list[str] = []
    for body in chain:  # from the root down, so nearer folders override
        region = region if declared.doc.region else (body.region or region)
        tags.update(body.tags or {})
        ignore_keys.update(body.ignore_tag_keys or ())
        ignore_prefixes.extend(
            p for p in body.ignore_tag_prefixes or () if p not in ignore_prefixes
        )
    tags.update(declared.doc.tags or {})
    return Spec(
        name=declared.doc.name,
        description=declared.doc.description,
        source_workspace_id=declared.doc.source_workspace_id,
        region=region,
        tags=tags,
        ignore_tag_keys=frozenset(ignore_keys),
        ignore_tag_prefixes=tuple(ignore_prefixes),
        file=declared.file,
        line=declared.source.position.line,
    )


def _tag_count_problems(
    specs: list[Spec], declared: list[_Declared], shown: str
) -> Iterator[SpecProblem]:
    for spec, d in zip(specs, declared, strict=True):
        if len(spec.tags) > MAX_DECLARED_TAGS:
            where = d.source.where(("tags",), key=True)
            message = (
                f"has {len(spec.tags)} tags with the folder defaults merged; at most "
                f"{MAX_DECLARED_TAGS} (the ownership tag is the 50th)"
            )
            yield _problem(join_shown(shown, spec.file), where, "tags", message)


def duplicate_problems(
    specs: Iterable[Spec], *, default_region: str | None, shown_root: str
) -> list[SpecProblem]:
    """A (region, name) declared twice. Without a default region, unset regions match."""
    first: dict[tuple[str | None, str], Spec] = {}
    problems = []
    for spec in specs:
        key = (spec.region or default_region, spec.name)
        if key not in first:
            first[key] = spec
            continue
        other = first[key]
        region = key[0] or "the default region"
        message = (
            f"image '{spec.name}' is declared twice for {region} (also at "
            f"{join_shown(shown_root, other.file)}:{other.line}); keep one or rename"
        )
        problems.append(
            SpecProblem(join_shown(shown_root, spec.file), spec.line, 1, "name", message)
        )
    return problems


def _ignored_tag_problems(collected: _Collected, shown: str) -> Iterator[SpecProblem]:
    rules: dict[str, tuple[IgnoreRule, ...]] = {
        folder: rules_of(d.body, d.source, d.file) for folder, d in collected.defaults.items()
    }
    specs = (
        TagDeclaration(d.folder, join_shown(shown, d.file), d.source, ("tags",), d.doc.tags)
        for d in collected.declared
        if d.doc.tags
    )
    defaults = (
        TagDeclaration(folder, d.file, d.source, ("defaults", "tags"), d.body.tags)
        for folder, d in collected.defaults.items()
        if d.body.tags
    )
    return ignored_tag_problems(specs, defaults, rules)


def region_collision_warnings(specs: Iterable[Spec], *, shown_root: str) -> Iterator[SpecProblem]:
    """A name declared with a region in one place and without one in another: valid, but
    the two are one image when the default region is that region, and plan then fails."""
    with_region: dict[str, dict[str, Spec]] = {}
    without: list[Spec] = []
    for spec in specs:
        if spec.region is None:
            without.append(spec)
        else:
            with_region.setdefault(spec.name, {}).setdefault(spec.region, spec)
    for spec in without:
        for region, other in sorted(with_region.get(spec.name, {}).items()):
            message = (
                f"image '{spec.name}' has no region here and is declared for {region} at "
                f"{join_shown(shown_root, other.file)}:{other.line}; the two collide when the "
                f"default region (--region, AWS_REGION or AWS config) is {region}, and plan "
                "then fails: give this spec a region"
            )
            yield SpecProblem(join_shown(shown_root, spec.file), spec.line, 1, "name", message)


def _problem(file: str, position: Position, field_name: str, message: str) -> SpecProblem:
    return SpecProblem(file, position.line, position.column, field_name, message)
