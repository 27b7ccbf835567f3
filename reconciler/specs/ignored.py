"""A declared tag is never also ignored.

The live value of an ignored key is left out of the comparison, so a declared one always
looks missing: every apply writes it again and drift never ends. Ignore lists accumulate
down the folders and defaults tags are merged into every spec below, so the check follows
the same chains as the merge: a spec's own tag against the rules of its folder and above;
a defaults tag against the rules of its folder, above and below (every spec below would
carry it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from reconciler.errors import ProblemKind, SpecProblem
from reconciler.specs.discover import ancestors
from reconciler.specs.models import DefaultsBody
from reconciler.specs.yamlload import Document, Path, dotted


@dataclass(frozen=True)
class IgnoreRule:
    """One entry of `ignore_tag_keys` or `ignore_tag_prefixes`, and where it is written."""

    field: str  # "ignore_tag_keys" or "ignore_tag_prefixes"
    value: str
    file: str
    line: int

    def ignores(self, key: str) -> bool:
        if self.field == "ignore_tag_keys":
            return key == self.value
        return key.startswith(self.value)


@dataclass(frozen=True)
class TagDeclaration:
    """The tags one document declares: an image spec's, or a defaults document's."""

    folder: str
    file: str  # as shown to the user
    source: Document
    path: Path  # of the tags mapping in the document
    tags: Mapping[str, str]


def rules_of(body: DefaultsBody, source: Document, file: str) -> tuple[IgnoreRule, ...]:
    rules = []
    for name, values in (
        ("ignore_tag_keys", body.ignore_tag_keys),
        ("ignore_tag_prefixes", body.ignore_tag_prefixes),
    ):
        for i, value in enumerate(values or ()):
            line = source.where(("defaults", name, i)).line
            rules.append(IgnoreRule(name, value, file, line))
    return tuple(rules)


def ignored_tag_problems(
    specs: Iterable[TagDeclaration],
    defaults: Iterable[TagDeclaration],
    rules: Mapping[str, tuple[IgnoreRule, ...]],
) -> Iterator[SpecProblem]:
    """Every declared tag that an ignore rule in force for it ignores: `rules` by folder."""
    if not any(rules.values()):
        return  # the common case: no ignore list at all, nothing to compare
    above: dict[str, tuple[IgnoreRule, ...]] = {}
    for declaration in specs:
        chain = above.get(declaration.folder)
        if chain is None:
            chain = above[declaration.folder] = _chain(declaration.folder, rules)
        yield from _conflicts(declaration, chain)
    for declaration in defaults:
        chain = _chain(declaration.folder, rules) + _below(declaration.folder, rules)
        yield from _conflicts(declaration, chain)


def _chain(folder: str, rules: Mapping[str, tuple[IgnoreRule, ...]]) -> tuple[IgnoreRule, ...]:
    return tuple(rule for f in ancestors(folder) for rule in rules.get(f, ()))


def _below(folder: str, rules: Mapping[str, tuple[IgnoreRule, ...]]) -> tuple[IgnoreRule, ...]:
    prefix = folder + "/" if folder else ""
    return tuple(
        rule for f in sorted(rules) if f != folder and f.startswith(prefix) for rule in rules[f]
    )


def _conflicts(declaration: TagDeclaration, chain: tuple[IgnoreRule, ...]) -> Iterator[SpecProblem]:
    if not chain:
        return
    for key in declaration.tags:
        rule = next((r for r in chain if r.ignores(key)), None)
        if rule is None:
            continue
        path = (*declaration.path, key)
        where = declaration.source.where(path, key=True)
        yield SpecProblem(
            declaration.file,
            where.line,
            where.column,
            dotted(path),
            _message(key, rule),
            kind=ProblemKind.IGNORED_TAG,
        )


def _message(key: str, rule: IgnoreRule) -> str:
    entry = "entry" if rule.field == "ignore_tag_keys" else "prefix"
    return (
        f"tag '{key}' is declared here but ignored by the {rule.field} {entry} "
        f"'{rule.value}' at {rule.file}:{rule.line}, so it would never converge (every "
        f"apply rewrites it); remove the tag, or remove '{rule.value}' from {rule.field}"
    )
