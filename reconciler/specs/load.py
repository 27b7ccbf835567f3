"""Discovery of spec files, defaults by folder, and the checks that span files.

Every problem in every file is collected before anything is reported, so one run shows the
whole list, sorted by file and line, as a compiler would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, TypeVar

from reconciler.errors import ProblemKind, SpecError, SpecProblem
from reconciler.specs.accounts import (
    AccountMap,
    import_problems,
    map_problems,
    missing_source_problems,
    unresolved_problems,
)
from reconciler.specs.checks import (
    bundle_collision_warnings,
    bundle_duplicate_problems,
    bundle_image_problems,
    copy_region_problems,
    duplicate_problems,
    own_account_offline_problems,
    region_collision_warnings,
)
from reconciler.specs.discover import ancestors, join_shown, spec_files
from reconciler.specs.ignored import IgnoreRule, TagDeclaration, ignored_tag_problems, rules_of
from reconciler.specs.models import (
    MAX_DECLARED_TAGS,
    Account,
    BundleSpec,
    BundleSpecDocument,
    DefaultsBody,
    DefaultsDocument,
    ImageSpecDocument,
    SourceImage,
    Spec,
)
from reconciler.specs.updates import (
    missing_update_source_problems,
    update_problems,
    update_region_warnings,
)
from reconciler.specs.validate import unknown_compute_type, validate_document
from reconciler.specs.yamlload import Document, Position, load_documents


@dataclass(frozen=True)
class SpecSet:
    """The desired state: every image spec and every bundle spec, in file order, and a
    digest of the files read.

    `warnings` are problems that don't stop a run (they have the shape of errors, so that
    they print the same way): validate, which knows no default region, shows them.
    `regions` is the root defaults' `regions:` list: regions to read besides those named.
    `accounts` is the root defaults' `accounts:` map, in file order (empty: the run's own
    account, as before)."""

    specs: tuple[Spec, ...]
    digest: str
    warnings: tuple[SpecProblem, ...] = ()
    regions: tuple[str, ...] = ()
    bundles: tuple[BundleSpec, ...] = ()
    accounts: tuple[Account, ...] = ()


@dataclass(frozen=True)
class _Defaults:
    body: DefaultsBody
    file: str  # as shown
    line: int
    source: Document
    relative: str  # the file, relative to the specs folder


_Doc = TypeVar("_Doc", ImageSpecDocument, BundleSpecDocument)


@dataclass(frozen=True)
class _Declared(Generic[_Doc]):
    doc: _Doc
    source: Document
    folder: str
    file: str


@dataclass
class _Collected:
    declared: list[_Declared[ImageSpecDocument]] = field(default_factory=list)
    bundles: list[_Declared[BundleSpecDocument]] = field(default_factory=list)
    defaults: dict[str, _Defaults] = field(default_factory=dict)
    problems: list[SpecProblem] = field(default_factory=list)
    # Names of image specs that failed validation: a bundle naming one is not also told
    # that no such spec exists, nor where it is not.
    invalid_images: set[str] = field(default_factory=set)
    # Folders whose defaults document failed validation: with the root's, the account map
    # is unknown, and names it would resolve are not also reported as unknown.
    invalid_defaults: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Inherited:
    """What a spec takes from the defaults of its folder and those above."""

    region: str | None
    tags: dict[str, str]
    ignore_tag_keys: frozenset[str]
    ignore_tag_prefixes: tuple[str, ...]


@dataclass(frozen=True)
class SpecReport:
    """What `validate` shows: every problem and every warning of one read of the specs,
    and the spec set when there is no problem. Checks across files run over the documents
    that parsed, so one run reports them with the problems within documents."""

    problems: tuple[SpecProblem, ...]
    warnings: tuple[SpecProblem, ...]
    spec_set: SpecSet | None


def load_specs(root: Path, *, allow_empty: bool = False, shown_root: str | None = None) -> SpecSet:
    """Read and validate every spec under `root`. Raises SpecError with every problem."""
    report = check_specs(root, allow_empty=allow_empty, shown_root=shown_root)
    if report.spec_set is None:
        raise SpecError(report.problems)
    return report.spec_set


def check_specs(
    root: Path, *, allow_empty: bool = False, shown_root: str | None = None
) -> SpecReport:
    """Read and validate every spec under `root`: the problems (sorted by file and line)
    and the warnings, both of the whole folder."""
    shown = shown_root if shown_root is not None else str(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        message = f"specs folder {what}; pass SPECS_DIR"
        problem = SpecProblem(shown, 0, 0, "<folder>", message, kind=ProblemKind.UNREADABLE_PATH)
        return SpecReport((problem,), (), None)
    collected = _Collected()
    digest = hashlib.sha256()
    for relative, data in _read_files(root, shown, collected.problems):
        digest.update(f"{relative}\0{len(data)}\0".encode())
        digest.update(data)
        _collect_file(relative, data, shown, collected)
    accounts = _account_map(collected.defaults.get(""), "" in collected.invalid_defaults, shown)
    resolver = _Resolver(collected.defaults, accounts, shown)
    specs = [resolver.image(d) for d in collected.declared]
    bundles = [resolver.bundle(d) for d in collected.bundles]
    problems = collected.problems
    problems += dict.fromkeys(resolver.problems)  # a defaults list is resolved for each spec
    problems += map_problems(accounts.accounts, shown)
    problems += unresolved_problems([*specs, *bundles], accounts, shown)
    problems += _tag_count_problems([*specs, *bundles], collected, shown)
    problems += _ignored_tag_problems(collected, shown)
    problems += _root_only_outside_the_root(collected)
    problems += _offline_problems(specs, bundles, collected.invalid_images, shown)
    if not specs and not bundles and not problems and not allow_empty:
        message = "holds no spec; add one, or pass --allow-empty to retire every image and bundle"
        problems.append(SpecProblem(shown, 0, 0, "<folder>", message, kind=ProblemKind.NO_SPEC))
    warnings = tuple(
        sorted(
            [
                *region_collision_warnings(specs, shown_root=shown),
                *bundle_collision_warnings(bundles, shown_root=shown),
                *_compute_type_warnings(collected.bundles, shown),
                *missing_source_problems(specs, specs, shown, to_create=False),
                *update_region_warnings(specs, shown_root=shown),
                *missing_update_source_problems(
                    _judged(specs, collected.invalid_images), specs, shown, to_create=False
                ),
            ]
        )
    )
    if problems:
        return SpecReport(tuple(sorted(problems)), warnings, None)
    root_defaults = collected.defaults.get("")
    regions = tuple(root_defaults.body.regions or ()) if root_defaults else ()
    spec_set = SpecSet(
        tuple(specs),
        "sha256:" + digest.hexdigest(),
        warnings,
        regions,
        tuple(bundles),
        accounts.accounts,
    )
    return SpecReport((), warnings, spec_set)


def _compute_type_warnings(
    bundles: list[_Declared[BundleSpecDocument]], shown: str
) -> Iterator[SpecProblem]:
    """A compute type the installed botocore doesn't list: a typo, or newer than it."""
    for declared in bundles:
        message = unknown_compute_type(declared.doc.compute_type)
        if message is not None:
            where = declared.source.where(("compute_type",))
            file = join_shown(shown, declared.file)
            yield _problem(file, where, "compute_type", message, ProblemKind.UNKNOWN_COMPUTE_TYPE)


def _offline_problems(
    specs: list[Spec], bundles: list[BundleSpec], invalid_images: set[str], shown: str
) -> Iterator[SpecProblem]:
    """The checks across specs that need no default region (unset regions wait)."""
    yield from duplicate_problems(specs, default_region=None, shown_root=shown)
    yield from copy_region_problems(specs, None, shown)
    yield from bundle_duplicate_problems(bundles, None, shown)
    judged = [b for b in bundles if b.image not in invalid_images]
    yield from bundle_image_problems(judged, specs, None, shown)
    yield from import_problems(specs, None, shown)
    yield from own_account_offline_problems(specs, shown)
    yield from update_problems(specs, None, shown)


def _judged(specs: list[Spec], invalid_images: set[str]) -> list[Spec]:
    """The updated images to judge: one naming an image spec that failed validation is not
    also told that no such spec exists."""
    return [s for s in specs if s.updated_from not in invalid_images]


# What the root defaults alone may say, and why: one list, one map, for the whole folder.
_ROOT_ONLY = {
    "regions": "it lists regions every run reads, not regions of this folder's specs",
    "accounts": "one map of accounts for the whole folder; a folder picks one with account:",
}


def _root_only_outside_the_root(collected: _Collected) -> Iterator[SpecProblem]:
    """`regions:` and `accounts:` are read in the specs folder's root defaults only."""
    for folder, defaults in collected.defaults.items():
        if not folder:
            continue
        for key, why in _ROOT_ONLY.items():
            if getattr(defaults.body, key) is not None:
                where = defaults.source.where(("defaults", key), key=True)
                message = (
                    f"is read only in the specs folder's root defaults document; move it "
                    f"there ({why})"
                )
                field_name = f"defaults.{key}"
                yield _problem(
                    defaults.file, where, field_name, message, ProblemKind.MISPLACED_FIELD
                )


def _account_map(root: _Defaults | None, invalid: bool, shown: str) -> AccountMap:
    """The root defaults' `accounts:`, with where each is written. `invalid`: the root
    defaults document failed validation, so the map is not known."""
    if invalid:
        return AccountMap(unknown=True)
    if root is None or not root.body.accounts:
        return AccountMap()
    accounts = []
    for name, entry in root.body.accounts.items():
        path = ("defaults", "accounts", name)
        accounts.append(
            Account(
                name=name,
                id=entry.id,
                role=entry.role,
                external_id=entry.external_id,
                file=root.relative,
                line=root.source.where(path, key=True).line,
                id_line=root.source.where((*path, "id")).line,
                role_line=root.source.where((*path, "role")).line if entry.role else 0,
            )
        )
    return AccountMap.of(accounts, f"{join_shown(shown, root.relative)}:{root.line}")


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
            file = join_shown(shown, found.relative)
            problems.append(
                SpecProblem(file, 1, 1, "<file>", message, kind=ProblemKind.UNREADABLE_PATH)
            )


def _collect_file(relative: str, data: bytes, shown: str, out: _Collected) -> None:
    shown_file = join_shown(shown, relative)
    documents, load_problems = load_documents(data)
    for lp in load_problems:
        out.problems.append(_problem(shown_file, lp.position, lp.field, lp.message, lp.kind))
    if not documents and not load_problems:
        message = "holds no YAML document; add a spec or delete the file"
        out.problems.append(
            SpecProblem(shown_file, 1, 1, "<file>", message, kind=ProblemKind.NO_SPEC)
        )
    folder = relative.rpartition("/")[0]
    if len(documents) > 1 and documents[-1].data is None:
        documents = documents[:-1]  # a trailing `---` is common and harmless
    for document in documents:
        model, issues = validate_document(document)
        for issue in issues:
            out.problems.append(
                _problem(shown_file, issue.position, issue.field, issue.message, issue.kind)
            )
        if isinstance(model, ImageSpecDocument):
            out.declared.append(_Declared(model, document, folder, relative))
        elif isinstance(model, BundleSpecDocument):
            out.bundles.append(_Declared(model, document, folder, relative))
        elif isinstance(model, DefaultsDocument):
            line = document.position.line
            defaults = _Defaults(model.defaults, shown_file, line, document, relative)
            _add_defaults(out, folder, defaults)
        elif (name := _image_name(document.data)) is not None:
            out.invalid_images.add(name)
        elif isinstance(document.data, dict) and "defaults" in document.data:
            out.invalid_defaults.add(folder)


def _image_name(data: object) -> str | None:
    """The name of what looks like an image spec, valid or not."""
    if not isinstance(data, dict) or "defaults" in data or data.get("kind") == "bundle":
        return None
    name = data.get("name")
    return name if isinstance(name, str) else None


def _add_defaults(out: _Collected, folder: str, defaults: _Defaults) -> None:
    earlier = out.defaults.get(folder)
    if earlier is None:
        out.defaults[folder] = defaults
        return
    message = (
        f"a second defaults document for folder '{folder or '.'}' (the first is at "
        f"{earlier.file}:{earlier.line}); merge them into one"
    )
    kind = ProblemKind.DUPLICATE_DEFAULTS
    out.problems.append(
        SpecProblem(defaults.file, defaults.line, 1, "defaults", message, kind=kind)
    )


def _chain(folder: str, defaults: dict[str, _Defaults]) -> list[_Defaults]:
    """The defaults that apply in `folder`, from the root down."""
    return [defaults[f] for f in ancestors(folder) if f in defaults]


def _inherit(
    own_region: str | None, own_tags: dict[str, str] | None, chain: list[_Defaults]
) -> _Inherited:
    """Region, tags and ignore lists: the nearest folder wins, the spec's own over all."""
    region = own_region
    tags: dict[str, str] = {}
    ignore_keys: set[str] = set()
    ignore_prefixes: list[str] = []
    for body in (d.body for d in chain):  # from the root down, so nearer folders override
        region = own_region or body.region or region
        tags.update(body.tags or {})
        ignore_keys.update(body.ignore_tag_keys or ())
        ignore_prefixes.extend(
            p for p in body.ignore_tag_prefixes or () if p not in ignore_prefixes
        )
    tags.update(own_tags or {})
    return _Inherited(region, tags, frozenset(ignore_keys), tuple(ignore_prefixes))


@dataclass(frozen=True)
class _Written:
    """A value that applies to a spec, and where it is written: the spec's own document or
    a defaults document (`prefix` is the path of the value's key there)."""

    value: object
    source: Document
    prefix: tuple[str, ...]
    file: str  # relative to the specs folder
    shown_file: str

    def line(self, *path: str | int) -> int:
        return self.at(*path).line

    def at(self, *path: str | int) -> Position:
        return self.source.where((*self.prefix, *path))

    def key_line(self) -> int:
        return self.source.where(self.prefix, key=True).line


def _written(
    declared: _Declared[ImageSpecDocument] | _Declared[BundleSpecDocument],
    chain: list[_Defaults],
    key: Literal["copies", "share_with", "account"],
    shown: str,
) -> _Written | None:
    """The value of `key` that applies to the spec: its own, else the nearest folder's."""
    own: object = getattr(declared.doc, key, None)
    if own is not None:
        file = join_shown(shown, declared.file)
        return _Written(own, declared.source, (key,), declared.file, file)
    for d in reversed(chain):
        written: object = getattr(d.body, key)
        if written is not None:
            return _Written(written, d.source, ("defaults", key), d.relative, d.file)
    return None


@dataclass
class _Resolver:
    """Applies the folders' defaults to each spec, and the account map to the accounts it
    names; what names no account is added to `problems`."""

    defaults: dict[str, _Defaults]
    accounts: AccountMap
    shown: str
    problems: list[SpecProblem] = field(default_factory=list)

    def image(self, declared: _Declared[ImageSpecDocument]) -> Spec:
        """The image spec with its folders' defaults applied."""
        doc = declared.doc
        chain = _chain(declared.folder, self.defaults)
        inherited = _inherit(doc.region, doc.tags, chain)
        copies = _written(declared, chain, "copies", self.shown)
        shared = _written(declared, chain, "share_with", self.shown)
        share_with, written = self._share_with(shared)
        account, account_name, account_written = self._account(declared, chain)
        return Spec(
            name=doc.name,
            description=doc.description,
            source_workspace_id=doc.source_workspace_id,
            region=inherited.region,
            tags=inherited.tags,
            ignore_tag_keys=inherited.ignore_tag_keys,
            ignore_tag_prefixes=inherited.ignore_tag_prefixes,
            file=declared.file,
            line=declared.source.position.line,
            copies=tuple(copies.value) if copies and isinstance(copies.value, list) else (),
            share_with=share_with,
            copies_file=copies.file if copies else "",
            copies_line=copies.key_line() if copies else 0,
            share_with_file=shared.file if shared else "",
            share_with_line=shared.key_line() if shared else 0,
            share_with_written=written,
            account=account,
            account_name=account_name,
            account_file=account_written.file if account_written else "",
            account_line=account_written.line() if account_written else 0,
            source_image=self._source_image(declared),
            updated_from=doc.updated_from,
            updated_from_line=_key_line(declared, "updated_from"),
        )

    def bundle(self, declared: _Declared[BundleSpecDocument]) -> BundleSpec:
        """The bundle spec with its folders' defaults applied (region, tags, ignore lists,
        account)."""
        doc = declared.doc
        chain = _chain(declared.folder, self.defaults)
        inherited = _inherit(doc.region, doc.tags, chain)
        key = "image" if doc.image is not None else "image_id"
        account, account_name, account_written = self._account(declared, chain)
        return BundleSpec(
            name=doc.name,
            description=doc.description,
            image=doc.image,
            image_id=doc.image_id,
            compute_type=doc.compute_type,
            user_volume_gib=doc.user_volume_gib,
            root_volume_gib=doc.root_volume_gib,
            region=inherited.region,
            tags=inherited.tags,
            ignore_tag_keys=inherited.ignore_tag_keys,
            ignore_tag_prefixes=inherited.ignore_tag_prefixes,
            file=declared.file,
            line=declared.source.position.line,
            image_line=declared.source.where((key,), key=True).line,
            account=account,
            account_name=account_name,
            account_file=account_written.file if account_written else "",
            account_line=account_written.line() if account_written else 0,
        )

    def _account(
        self,
        declared: _Declared[ImageSpecDocument] | _Declared[BundleSpecDocument],
        chain: list[_Defaults],
    ) -> tuple[str | None, str | None, _Written | None]:
        written = _written(declared, chain, "account", self.shown)
        if written is None or not isinstance(written.value, str):
            return None, None, None
        ref = self.accounts.named(written.value)
        if ref.problem is not None:
            field_name = ".".join(written.prefix)
            kind = ProblemKind.UNKNOWN_REFERENCE
            self._add(written.shown_file, written.at(), field_name, ref.problem, kind)
        return ref.id, ref.name, written

    def _share_with(
        self, shared: _Written | None
    ) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
        """The ids of `share_with` (a name of the map resolved to its id), and the entries
        as written."""
        if shared is None or not isinstance(shared.value, list):
            return None, ()
        ids: list[str] = []
        first: dict[str, int] = {}
        for index, entry in enumerate(shared.value):
            ref = self.accounts.reference(entry)
            field_name = ".".join((*shared.prefix, str(index)))
            if ref.id is None:  # names no account: said once, where it is written
                if ref.problem is not None:
                    where, kind = shared.at(index), ProblemKind.UNKNOWN_REFERENCE
                    self._add(shared.shown_file, where, field_name, ref.problem, kind)
                ids.append(entry)
                continue
            earlier = first.setdefault(ref.id, index)
            if earlier != index and shared.value[earlier] != entry:
                message = (
                    f"'{entry}' is account {ref.id}, listed already as "
                    f"'{shared.value[earlier]}' (line {shared.line(earlier)}); keep one"
                )
                where, kind = shared.at(index), ProblemKind.REPEATED_ENTRY
                self._add(shared.shown_file, where, field_name, message, kind)
            ids.append(ref.id)
        return tuple(ids), tuple(shared.value)

    def _source_image(self, declared: _Declared[ImageSpecDocument]) -> SourceImage | None:
        written = declared.doc.source_image
        if written is None:
            return None
        source = declared.source
        account_at = source.where(("source_image", "account"))
        ref = self.accounts.reference(written.account)
        if ref.problem is not None:
            file = join_shown(self.shown, declared.file)
            kind = ProblemKind.UNKNOWN_REFERENCE
            self._add(file, account_at, "source_image.account", ref.problem, kind)
        return SourceImage(
            account=ref.id or written.account,
            account_name=ref.name,
            name=written.name,
            region=written.region,
            line=source.where(("source_image",), key=True).line,
            account_line=account_at.line,
            name_line=source.where(("source_image", "name")).line,
        )

    def _add(
        self, file: str, at: Position, field_name: str, message: str, kind: ProblemKind
    ) -> None:
        self.problems.append(_problem(file, at, field_name, message, kind))


def _key_line(declared: _Declared[ImageSpecDocument], key: str) -> int:
    """The line of a key the spec gives; 0 when it gives none."""
    if getattr(declared.doc, key) is None:
        return 0
    return declared.source.where((key,), key=True).line


def _tag_count_problems(
    resolved: list[Spec | BundleSpec], collected: _Collected, shown: str
) -> Iterator[SpecProblem]:
    declared: list[_Declared[ImageSpecDocument] | _Declared[BundleSpecDocument]] = [
        *collected.declared,
        *collected.bundles,
    ]
    for spec, d in zip(resolved, declared, strict=True):
        if len(spec.tags) > MAX_DECLARED_TAGS:
            where = d.source.where(("tags",), key=True)
            message = (
                f"has {len(spec.tags)} tags with the folder defaults merged; at most "
                f"{MAX_DECLARED_TAGS} (the ownership tag is the 50th)"
            )
            file = join_shown(shown, spec.file)
            yield _problem(file, where, "tags", message, ProblemKind.INVALID_VALUE)


def _ignored_tag_problems(collected: _Collected, shown: str) -> Iterator[SpecProblem]:
    rules: dict[str, tuple[IgnoreRule, ...]] = {
        folder: rules_of(d.body, d.source, d.file) for folder, d in collected.defaults.items()
    }
    declared: list[_Declared[ImageSpecDocument] | _Declared[BundleSpecDocument]] = [
        *collected.declared,
        *collected.bundles,
    ]
    specs = (
        TagDeclaration(d.folder, join_shown(shown, d.file), d.source, ("tags",), d.doc.tags)
        for d in declared
        if d.doc.tags
    )
    defaults = (
        TagDeclaration(folder, d.file, d.source, ("defaults", "tags"), d.body.tags)
        for folder, d in collected.defaults.items()
        if d.body.tags
    )
    return ignored_tag_problems(specs, defaults, rules)


def _problem(
    file: str, position: Position, field_name: str, message: str, kind: ProblemKind
) -> SpecProblem:
    return SpecProblem(file, position.line, position.column, field_name, message, kind=kind)
