"""A line-aware, safe YAML loader for spec files.

PyYAML composes a node graph that carries the line and column of every node. We walk that
graph ourselves instead of calling a constructor, which gives us:

- the position of every key and value, so that errors point at `file:line:col`;
- duplicate keys as errors (PyYAML silently keeps the last one);
- plain data only: any non-standard tag (`!!python/object`, `!Ref`) is refused;
- a budget on expanded nodes and nesting, so an alias bomb fails fast instead of hanging;
- the original text of every non-string scalar, so that "quote it" errors can quote it.

libyaml's C parser keeps node marks too and is about ten times faster than the pure-Python
one, which matters at thousands of files; the pure-Python parser is the fallback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import ProblemKind

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# libyaml's composer recurses in C, one frame per level of nesting: a 100 KB file of
# `[[[[...` or `- - - -...` overflows the stack and crashes the process before MAX_DEPTH is
# checked. Every level opens with `[`, `{`, a `- ` or `? ` indicator, or a deeper indentation
# (which MAX_FILE_BYTES bounds to about 1,400 levels). A file with more openers than this is
# parsed by the pure-Python parser, whose recursion ends in a RecursionError instead.
LIBYAML_MAX_OPENERS = 5_000
_OPENERS = re.compile(r"[\[{]|[-?](?=[\s\x00]|\Z)")

MAX_FILE_BYTES = 1024 * 1024  # a spec file is a few hundred bytes; 1 MiB is generous
MAX_NODES = 100_000  # per file, counting every alias expansion
MAX_DEPTH = 32  # the format itself never nests deeper than 3

_YAML = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = _YAML + "str", _YAML + "map", _YAML + "seq", _YAML + "merge"
# Scalar tags that YAML's core schema resolves plain scalars to. They are read so that the
# validator can say "this is a YAML boolean; quote it", never silently turned into strings.
_SCALAR_KINDS = {
    _YAML + "null": "null",
    _YAML + "bool": "boolean",
    _YAML + "int": "number",
    _YAML + "float": "number",
    _YAML + "timestamp": "date",
}
_constructor = yaml.constructor.SafeConstructor()

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class LoadProblem:
    position: Position
    field: str
    message: str
    kind: ProblemKind


@dataclass(frozen=True)
class NonString:
    """Where a scalar that YAML reads as a non-string stands, and how it was written."""

    kind: str  # "boolean", "number", "null", "date"
    raw: str


@dataclass
class Document:
    """One YAML document: plain data, plus where every key and value was written."""

    index: int
    position: Position
    data: Any
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)
    non_strings: dict[Path, NonString] = field(default_factory=dict)
    refused: set[Path] = field(default_factory=set)  # values already reported as problems

    def where(self, path: Path, *, key: bool = False) -> Position:
        """The position of `path` (its key when `key`), else of its nearest parent."""
        while path:
            found = (self.keys if key else self.values).get(path) or self.values.get(path)
            if found:
                return found
            path = path[:-1]
        return self.position


def _pos(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def dotted(path: Path) -> str:
    """`tags.team`, `ignore_tag_keys.0`; `document` for the document itself."""
    return ".".join(str(p) for p in path) or "document"


class _TooLarge(Exception):
    def __init__(self, node: Node, message: str) -> None:
        self.node = node
        self.message = message


class _Walker:
    """Turns one document's node graph into plain data, recording positions and problems."""

    def __init__(self, doc: Document, problems: list[LoadProblem], budget: list[int]) -> None:
        self.doc = doc
        self.problems = problems
        self.budget = budget  # shared across a file's documents: [nodes left]

    def walk(self, node: Node, path: Path, depth: int = 0) -> Any:
        self.budget[0] -= 1
        if self.budget[0] < 0:
            raise _TooLarge(node, f"more than {MAX_NODES} YAML nodes (an alias bomb?)")
        if depth > MAX_DEPTH:
            raise _TooLarge(node, f"nested deeper than {MAX_DEPTH} levels")
        self.doc.values[path] = _pos(node)
        if isinstance(node, MappingNode) and node.tag in (_MAP, _MERGE):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            return [self.walk(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        self._refuse(node, path)
        return None

    def _refuse(self, node: Node, path: Path) -> None:
        self.doc.refused.add(path)
        message = f"unsupported YAML tag {node.tag!r}; specs are plain data"
        self._problem(node, path, message, ProblemKind.YAML_UNSUPPORTED)

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag == _STR:
            return node.value
        kind = _SCALAR_KINDS.get(node.tag)
        if kind is None:
            self._refuse(node, path)
            return None
        self.doc.non_strings[path] = NonString(kind, node.value)
        return _constructor.yaml_constructors[node.tag](_constructor, node)

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_seen: dict[str, Position] = {}
        for key_node, value_node in self._pairs(node, path):
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in first_seen:
                line = first_seen[key].line
                self._problem(
                    key_node,
                    (*path, key),
                    f"duplicate key {key!r} (first at line {line}); keep only one",
                    ProblemKind.DUPLICATE_KEY,
                )
                continue
            first_seen[key] = _pos(key_node)
            here = (*path, key)
            self.doc.keys[here] = _pos(key_node)
            out[key] = self.walk(value_node, here, depth + 1)
        return out

    def _pairs(self, node: MappingNode, path: Path) -> Iterator[tuple[Node, Node]]:
        """Key/value pairs, with YAML merge keys (`<<: *base`) expanded; explicit keys win."""
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, MappingNode):
                    merged.extend(source.value)
                else:
                    message = "'<<' merges only mappings"
                    self._problem(source, path, message, ProblemKind.YAML_UNSUPPORTED)
        explicit = [(k, v) for k, v in node.value if k.tag != _MERGE]
        explicit_keys = {k.value for k, _ in explicit if isinstance(k, ScalarNode)}
        seen_merged: set[str] = set()
        for key_node, value_node in merged:
            name = key_node.value if isinstance(key_node, ScalarNode) else None
            if name in explicit_keys or name in seen_merged:
                continue
            if isinstance(name, str):
                seen_merged.add(name)
            yield key_node, value_node
        yield from explicit

    def _key(self, node: Node, path: Path) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == _STR:
            return str(node.value)
        if isinstance(node, ScalarNode) and node.tag in _SCALAR_KINDS:
            kind = _SCALAR_KINDS[node.tag]
            self._problem(
                node,
                path,
                f"key {node.value!r} is read as a YAML {kind}; quote it: '{node.value}'",
                ProblemKind.WRONG_TYPE,
            )
        else:
            message = "mapping keys must be plain strings"
            self._problem(node, path, message, ProblemKind.YAML_UNSUPPORTED)
        return None

    def _problem(self, node: Node, path: Path, message: str, kind: ProblemKind) -> None:
        self.problems.append(LoadProblem(_pos(node), dotted(path), message, kind))


def _decode(data: bytes) -> tuple[str | None, LoadProblem | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        message = (
            f"not UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "save the file as UTF-8"
        )
        return None, LoadProblem(Position(line, column), "<file>", message, ProblemKind.YAML_SYNTAX)


def load_documents(data: bytes) -> tuple[list[Document], list[LoadProblem]]:
    """Parse a file's bytes into documents. Problems are returned, never raised."""
    if len(data) > MAX_FILE_BYTES:
        size = f"{len(data) / 1024 / 1024:.1f} MiB"
        limit = f"{MAX_FILE_BYTES // 1024 // 1024} MiB"
        message = f"file is {size}; spec files are limited to {limit}; split it"
        return [], [LoadProblem(Position(1, 1), "<file>", message, ProblemKind.YAML_LIMIT)]
    text, problem = _decode(data)
    if text is None:
        return [], [problem] if problem else []
    return _compose(text)


def _syntax_problem(err: yaml.MarkedYAMLError, text: str) -> LoadProblem:
    """Where a person should look: where the construct began when the parser only noticed
    at the end of the file (an unclosed quote), else where it stopped."""
    mark = err.problem_mark or err.context_mark
    at_end = mark is not None and mark.index >= len(text.rstrip())
    if at_end and err.context_mark is not None:
        mark = err.context_mark
    where = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
    tab = _tab_at(text, err.problem_mark)
    if tab is not None:
        message = (
            "YAML syntax error: found a tab; YAML forbids tabs for indentation: indent with spaces"
        )
        return LoadProblem(tab, "<file>", message, ProblemKind.YAML_SYNTAX)
    what = "; ".join(x for x in (err.context, err.problem) if x) or "invalid YAML"
    if "nesting depth" in what:  # newer PyYAML stops deep nesting itself
        return _too_deep(where)
    return LoadProblem(where, "<file>", f"YAML syntax error: {what}", ProblemKind.YAML_SYNTAX)


def _too_deep(where: Position) -> LoadProblem:
    return LoadProblem(
        where, "<file>", f"nested deeper than {MAX_DEPTH} levels", ProblemKind.YAML_LIMIT
    )


def _tab_at(text: str, mark: yaml.Mark | None) -> Position | None:
    """The tab the parser stopped at, or the first in the indentation of its line: the
    parser's own words ("found character that cannot start any token") don't say tab."""
    if mark is None:
        return None
    lines = text.split("\n")
    if mark.line >= len(lines):
        return None
    line = lines[mark.line]
    if line[mark.column : mark.column + 1] == "\t":
        return Position(mark.line + 1, mark.column + 1)
    indentation = line[: len(line) - len(line.lstrip(" \t"))]
    if "\t" in indentation:
        return Position(mark.line + 1, indentation.index("\t") + 1)
    return None


def _compose(text: str) -> tuple[list[Document], list[LoadProblem]]:
    documents: list[Document] = []
    problems: list[LoadProblem] = []
    budget = [MAX_NODES]
    try:
        # A file shorter than the limit can't exceed it: skip the scan for ordinary specs.
        deep = len(text) > LIBYAML_MAX_OPENERS and (
            len(_OPENERS.findall(text)) > LIBYAML_MAX_OPENERS
        )
        loader = yaml.SafeLoader if deep else _Loader
        for index, node in enumerate(yaml.compose_all(text, Loader=loader)):
            doc = Document(index, _pos(node), None)
            doc.data = _Walker(doc, problems, budget).walk(node, ())
            documents.append(doc)
    except yaml.MarkedYAMLError as err:
        problems.append(_syntax_problem(err, text))
    except _TooLarge as err:
        problems.append(LoadProblem(_pos(err.node), "<file>", err.message, ProblemKind.YAML_LIMIT))
    except RecursionError:
        problems.append(_too_deep(Position(1, 1)))
    except yaml.reader.ReaderError as err:  # control characters and the like
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        message = (
            f"control characters are not allowed in YAML: found U+{err.character:04X}; remove it"
        )
        problems.append(
            LoadProblem(Position(line, column), "<file>", message, ProblemKind.YAML_SYNTAX)
        )
    return documents, problems
