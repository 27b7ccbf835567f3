"""Reading a Markdown comment back, as a reviewer and as GitHub would: its structure checked
line by line (marker, headline, alerts, one table, one collapsed list, the note, the
footer), its HTML tags, and what was left out, kind by kind.

The words of the note are spelled here independently of the renderer, so that a change of
wording is a visible, reviewed change of these tests.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

HEADER = "| Action | Resource | Region | Detail |"
RULE = "| --- | --- | --- | --- |"
ALLOWED_TAGS = {"details", "summary", "code", "br", "del"}
VOID_TAGS = {"br"}
# The note's nouns, singular and plural, to the kind of item they count.
NOUNS = {
    "conflict": "conflict",
    "blocked item": "blocked",
    "failed item": "failed",
    "replacement": "replace",
    "deletion": "delete",
    "bundle image change": "update-image",
    "unmanaged image": "unmanaged",
    "unmanaged bundle": "unmanaged-bundle",
    "tag update": "update-tags",
    "sharing change": "update-sharing",
    "adoption": "adopt",
    "stuck capture": "stuck",
    "create": "create",
    "unchanged image": "unchanged",
    "unchanged item": "unchanged",  # when some are bundles or shares
}
# How a comment names a bundle or a share before its name (an image: nothing).
KIND_MARKER = r"(?:bundle |sharing of )?"
NOTE = re.compile(
    r"^_To fit a comment, (?:left out: (?P<left>[^;]*?))?(?:; )?"
    r"(?:tag changes of (?P<collapsed>\d+) items? not shown)?\. "
    r"For the whole (?P<whole>plan|result|report), "
    r"(?P<where>the job summary and `--format json` have it|`--format json` has it)\._$"
)
FOOTER = re.compile(
    r"^Commit \[`(?P<short>[0-9a-f]{7})`\]\((?P<commit>https?://[^()\s<>]+)\) · "
    r"\[workflow run (?P<run_id>\d+)\]\((?P<run>https?://[^()\s<>]+)\)$"
)
TAG_CHANGE = re.compile(r"^(?:\+|−|~) <code>")
TAG_COUNT = re.compile(r"^\d+ tag changes?$")


def units(text: str) -> int:
    """Length as GitHub counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def one_line(text: str) -> str:
    """A value as a comment shows it: its lines joined by spaces."""
    return " ".join(text.splitlines()) or " "


def visible(text: str) -> str:
    """What a reader sees (and what GitHub's mention and reference filters read): entities
    decoded, zero-width characters gone."""
    return html.unescape(text).replace("\u200b", "").replace("\u2060", "")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.stack: list[str] = []
        self.seen: list[str] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"unexpected <{tag}>")
        if attrs:
            self.problems.append(f"<{tag}> has attributes {attrs}")
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def check_html(text: str) -> _Tags:
    """Only our own tags, without attributes, each closed in order; the marker is the only
    comment, with a plan's digest."""
    parser = _Tags()
    parser.feed(text)
    parser.close()
    assert not parser.problems, parser.problems
    assert not parser.stack, f"unclosed tags: {parser.stack}"
    # The marker, and a plan's digest after it.
    digests = [c for c in parser.comments[1:] if DIGEST_LINE.fullmatch(f"<!--{c}-->")]
    assert len(digests) <= 1, parser.comments
    assert len(parser.comments) == 1 + len(digests), parser.comments
    assert "<script" not in text.lower()
    return parser


def cells(row: str) -> list[str]:
    """A table row's cells: split on `|` that no backslash escapes."""
    assert row.startswith("| "), row
    assert row.endswith(" |"), row
    return re.split(r"(?<!\\)\|", row)[1:-1]


def compact(row: str) -> str:
    """The one-line form of a full row: its tag changes replaced by their count."""
    action, name, region, detail = cells(row)
    parts = detail.strip().split("<br>")
    kept = [p for p in parts if not TAG_CHANGE.match(p)]
    changes = len(parts) - len(kept)
    if changes:
        kept.append(f"{changes} tag change{'s' if changes != 1 else ''}")
    return "|".join(["", action, name, region, f" {'<br>'.join(kept) or ' '} ", ""])


def marker(kind: str, label: str | None = None) -> str:
    return f"<!-- workspaces-image-reconciler:{kind}{'' if label is None else ':' + label} -->"


@dataclass
class Parsed:
    lines: list[str]
    rows: list[list[str]] = field(default_factory=list)  # the table's body, cell by cell
    unchanged: list[str] = field(default_factory=list)  # names in the <details> list
    unchanged_keys: list[str] = field(default_factory=list)  # the same, as `name (region)`
    warnings: list[str] = field(default_factory=list)  # alert blocks, joined
    left_out: Counter[str] = field(default_factory=Counter)  # kind -> items without a line
    warnings_left_out: int = 0
    collapsed: int = 0  # rows shown without their tag changes, as the note says
    whole: str | None = None  # the note's "for the whole ..."
    note_where: str | None = None
    footer: dict[str, str] | None = None
    problems: list[str] = field(default_factory=list)  # a failed run's spec problems, as seen
    problems_left_out: int = 0
    hint: str | None = None

    @property
    def row_names(self) -> list[str]:
        return [visible(code_text(r[1])) for r in self.rows]

    @property
    def row_keys(self) -> list[str]:
        """Each row as `name (region)`, the name with its kind's marker: one per item (an
        image and its copies share a name)."""
        return [row_key(r) for r in self.rows]

    @property
    def collapsed_rows(self) -> list[list[str]]:
        """Rows whose last detail is a count of tag changes that are not shown."""
        return [r for r in self.rows if TAG_COUNT.match(r[3].strip().split("<br>")[-1])]


def row_key(row: list[str]) -> str:
    return f"{visible(code_text(row[1]))} ({visible(row[2].strip())})"


def code_text(cell: str) -> str:
    """A name cell's text: the kind's marker (bundles, shares) and the name, as written."""
    match = re.fullmatch(rf" ({KIND_MARKER})<code>(.*)</code> ", cell)
    assert match, cell
    return match.group(1) + match.group(2)


DIGEST_LINE = re.compile(r"<!-- workspaces-image-reconciler:plan-digest (sha256:[0-9a-f]{64}) -->")


def digest_of(text: str) -> str | None:
    """The plan digest a comment carries on its second line, if it carries one."""
    lines = text.split("\n")
    found = DIGEST_LINE.fullmatch(lines[1]) if len(lines) > 1 else None
    return found.group(1) if found else None


def parse(text: str, kind: str = "plan", label: str | None = None) -> Parsed:
    """The comment's structure, checked as it is read: marker, headline, alerts, one table
    whose rows all have the header's columns, one collapsed list, the note, the footer."""
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    lines = text.split("\n")[:-1]
    assert lines[0] == marker(kind, label)
    if DIGEST_LINE.fullmatch(lines[1]):  # a plan's digest: read on its own (`digest_of`)
        assert kind == "plan", lines[1]
        del lines[1]
    assert lines[1] == ""
    assert lines[2].startswith("### ")
    parsed = Parsed(lines)
    check_html(text)
    at = 3
    while at < len(lines):
        line = lines[at]
        if line.startswith("> [!"):
            block = []
            while at < len(lines) and lines[at]:
                assert lines[at].startswith("> "), f"a line escaped its alert: {lines[at]!r}"
                block.append(lines[at])
                at += 1
            parsed.warnings.append("\n".join(block))
        elif line == HEADER:
            assert not parsed.rows, "two tables"
            assert lines[at + 1] == RULE
            at += 2
            while at < len(lines) and lines[at]:
                row = cells(lines[at])
                assert len(row) == len(cells(HEADER)), f"{len(row)} cells: {lines[at]!r}"
                parsed.rows.append(row)
                at += 1
        elif line.startswith("<details><summary>"):
            at += 1
            while lines[at] != "</details>":
                if lines[at]:
                    match = re.fullmatch(
                        rf"- ({KIND_MARKER})<code>(.*)</code> \(([^()]*)\)", lines[at]
                    )
                    assert match, f"not an unchanged item: {lines[at]!r}"
                    parsed.unchanged.append(match.group(1) + visible(match.group(2)))
                    region = visible(match.group(3))
                    parsed.unchanged_keys.append(f"{parsed.unchanged[-1]} ({region})")
                at += 1
        elif line.startswith("_To fit"):
            _read_note(parsed, line)
            assert lines[at + 1 :] in ([], ["", *lines[at + 2 :]]), "only the footer follows"
        elif line.startswith("- <code>"):
            match = re.fullmatch(r"- <code>([^<]*)</code> <code>([^<]*)</code>: (.*)", line)
            assert match, f"not a spec problem: {line!r}"
            where, what, message = (visible(g) for g in match.groups())
            parsed.problems.append(f"{where} {what}: {message}")
        elif line.startswith("Hint: "):
            assert parsed.hint is None, "two hints"
            parsed.hint = visible(line.removeprefix("Hint: "))
        elif line.startswith("_") and "more problem" in line:
            match = re.fullmatch(
                r"_(\d+) more problems? left out to fit a comment; `reconciler validate` lists "
                r"all\._",
                line,
            )
            assert match, f"unclear note: {line!r}"
            parsed.problems_left_out = int(match.group(1))
        elif line.startswith("Commit "):
            match = FOOTER.match(line)
            assert match, f"unclear footer: {line!r}"
            assert at == len(lines) - 1, "the footer comes last"
            parsed.footer = match.groupdict()
        else:
            assert line == "", f"unexpected line {at}: {line!r}"
        at += 1
    table = {"|" + "|".join(r) + "|" for r in parsed.rows} | {HEADER, RULE}
    assert not any(row.startswith("|") for row in lines if row not in table)
    return parsed


def _read_note(parsed: Parsed, line: str) -> None:
    match = NOTE.match(line)
    assert match, f"unclear note: {line!r}"
    assert match.group("left") or match.group("collapsed"), f"a note that says nothing: {line!r}"
    parsed.whole, parsed.note_where = match.group("whole"), match.group("where")
    parsed.collapsed = int(match.group("collapsed") or 0)
    for entry in (match.group("left") or "").split(", ") if match.group("left") else []:
        number, noun = re.fullmatch(r"(\d+) (.+)", entry).groups()  # type: ignore[union-attr]
        count = int(number)
        if noun in ("warning", "warnings"):
            parsed.warnings_left_out = count
            continue
        singular = noun if noun in NOUNS else noun.removesuffix("s")
        assert singular in NOUNS, f"unknown kind {noun!r} in {line!r}"
        assert (noun == singular) == (count == 1), f"number and noun disagree: {entry!r}"
        parsed.left_out[NOUNS[singular]] = count
