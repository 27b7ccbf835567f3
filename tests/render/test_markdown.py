"""The Markdown renderer: a pull-request comment or job summary that reviewers can trust.

Expected files live in ``expected_md/``; ``REGENERATE=1 pytest tests/render`` rewrites them
(then read the diff: they are the reviewed look of the comment). Beyond the exact files,
the output is parsed: the HTML tags it contains, the table's columns, the order of the
items, the size limit and the note on what was left out.
"""

from __future__ import annotations

import html
import os
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.apply import Applied, AppliedItem, AppliedUnmanaged, Result
from reconciler.inventory import Inventory, LiveImage, RegionInventory, SourceWorkspace
from reconciler.plan import Action, Plan, PlanItem, TagChange, Unmanaged, make_plan
from reconciler.render.markdown import MAX_CHARS, markdown
from reconciler.render.text import summary_line
from reconciler.specs import Spec

EXPECTED = Path(__file__).parent / "expected_md"
REGION = "eu-west-1"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
OWNED = {OWNERSHIP_TAG_KEY: "true"}
WS_OK, WS_STOPPED, WS_BUSY = "ws-0a1b2c3d4", "ws-0b1b2c3d4", "ws-0c1b2c3d4"
HEADER = "| Action | Image | Region | Detail |"
ALLOWED_TAGS = {"details", "summary", "code", "br", "del"}
VOID_TAGS = {"br"}
FIRST_TIER = {Action.CONFLICT, Action.BLOCKED}  # with deletions (unmanaged): shown first
LEFT_OUT = re.compile(
    r"^_(?:(\d+) more items?)?(?: and )?(?:(\d+) warnings?)? (?:was|were) left out to fit a "
    r"comment; run `reconciler plan` or see the job log for the whole plan\._$"
)
SLACK = 600  # the most a comment may stay under its limit while something is left out


# --- building plans ------------------------------------------------------------------------


def spec(
    name: str,
    *,
    source: str = WS_OK,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    file: str = "finance/images.yaml",
    line: int = 1,
) -> Spec:
    return Spec(
        name,
        description or f"Golden image {name}",
        source,
        None,
        tags or {},
        frozenset(),
        (),
        file,
        line,
    )


def live(
    name: str,
    number: int,
    *,
    tags: dict[str, str] | None = None,
    description: str | None = None,
    state: str = "AVAILABLE",
    created: datetime | None = None,
    error: tuple[str, str] | None = None,
) -> LiveImage:
    return LiveImage(
        f"wsi-{number:09d}",
        name,
        f"Golden image {name}" if description is None else description,
        state,
        OWNED if tags is None else tags,
        created,
        error[0] if error else None,
        error[1] if error else None,
    )


def plan_from(
    specs: Sequence[Spec],
    images: Iterable[LiveImage] = (),
    sources: dict[str, str | None] | None = None,
) -> Plan:
    found = list(images)
    states = sources or {WS_OK: "AVAILABLE", WS_STOPPED: "STOPPED", WS_BUSY: "SUSPENDED"}
    inventory = RegionInventory(
        REGION,
        {i.name: i for i in found},
        len(found),
        sources={ws: SourceWorkspace(ws, state) for ws, state in states.items()},
    )
    return make_plan(
        specs,
        Inventory({REGION: inventory}),
        specs_digest="sha256:" + "ab" * 32,
        default_region=REGION,
        image_quota=10_000,
        now=NOW,
    )


def every_action_plan() -> Plan:
    """One item of each action and situation, plus an owned image no spec declares."""
    specs = [
        spec("finance-win11-2026-11", tags={"team": "finance", "cost-center": "4410"}),
        spec("hr-win11-2026-11", tags={"team": "people", "owner": "platform"}, line=9),
        spec("ops-win11-2026-10", tags={"team": "ops"}, line=17),
        spec("legal-win11-2026-11", description="Legal golden image v2", line=23),
        spec("dev-win11-2026-11", source=WS_STOPPED, file="dev/images.yaml"),
        spec("sales-win11-2026-11", tags={"team": "sales"}, file="sales/images.yaml"),
        spec("qa-win11-2026-11", source=WS_BUSY, file="qa/images.yaml"),
        spec("data-win11-2026-09", file="data/images.yaml"),
        spec("ml-win11-2026-11", file="ml/images.yaml"),
        spec("eng-win11-2026-11", file="eng/images.yaml"),
    ]
    images = [
        live("hr-win11-2026-11", 1, tags={**OWNED, "team": "hr", "legacy-code": "HR-7"}),
        live("ops-win11-2026-10", 2, tags={"ManagedBy": "console"}),
        live("legal-win11-2026-11", 3, description="Legal golden image"),
        live("sales-win11-2026-11", 4, tags={**OWNED, "team": "sales"}),
        live("data-win11-2026-09", 5, state="ERROR", error=("InternalError", "disk full")),
        live("ml-win11-2026-11", 6, state="PENDING", created=NOW - timedelta(hours=3)),
        live("eng-win11-2026-11", 7, state="PENDING", created=NOW - timedelta(minutes=20)),
        live("finance-win10-2025-01", 8),  # owned, no spec: unmanaged
    ]
    return plan_from(specs, images)


def applied(plan: Plan, results: dict[str, tuple[Result, str | None]]) -> Applied:
    """The apply document of `plan`, with the given results (others: unchanged/skipped)."""
    items = []
    for item in plan.items:
        default = (Result.SKIPPED, item.reason) if item.is_error else (Result.UNCHANGED, None)
        result, error = results.get(item.name, default)
        data = item.model_dump(include=set(PlanItem.model_fields))
        items.append(AppliedItem(**data, result=result, error=error))
    unmanaged = [
        AppliedUnmanaged(**u.model_dump(), result=results.get(u.name, (Result.UNCHANGED,))[0])
        for u in plan.unmanaged
    ]
    return Applied(specs_digest=plan.specs_digest, items=tuple(items), unmanaged=tuple(unmanaged))


def item(action: Action, name: str, **fields: object) -> PlanItem:
    base: dict[str, object] = {
        "action": action,
        "name": name,
        "region": REGION,
        "image_id": None if action in (Action.CREATE, Action.BLOCKED) else "wsi-000000001",
        "state": None if action in (Action.CREATE, Action.BLOCKED) else "AVAILABLE",
        "spec_file": "a.yaml",
        "spec_line": 1,
        "source_workspace_id": WS_OK,
        "reason": "because" if action in FIRST_TIER else None,
    }
    return PlanItem(**{**base, **fields})


# --- reading the output --------------------------------------------------------------------


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
    comment."""
    parser = _Tags()
    parser.feed(text)
    parser.close()
    assert not parser.problems, parser.problems
    assert not parser.stack, f"unclosed tags: {parser.stack}"
    assert len(parser.comments) == 1, parser.comments
    assert "<script" not in text.lower()
    return parser


def cells(row: str) -> list[str]:
    """A table row's cells: split on `|` that no backslash escapes."""
    assert row.startswith("| "), row
    assert row.endswith(" |"), row
    return re.split(r"(?<!\\)\|", row)[1:-1]


@dataclass
class Parsed:
    lines: list[str]
    rows: list[list[str]] = field(default_factory=list)  # the table's body, cell by cell
    unchanged: list[str] = field(default_factory=list)  # names in the <details> list
    warnings: list[str] = field(default_factory=list)  # alert blocks, joined
    left_out: int | None = None  # items without their row or unchanged line
    warnings_left_out: int | None = None

    @property
    def row_names(self) -> list[str]:
        return [visible(_code_text(r[1])) for r in self.rows]


def _code_text(cell: str) -> str:
    match = re.fullmatch(r" <code>(.*)</code> ", cell)
    assert match, cell
    return match.group(1)


def parse(text: str, kind: str = "plan") -> Parsed:
    """The comment's structure, checked as it is read: marker, headline, alerts, one table
    whose rows all have the header's columns, one collapsed list, the note."""
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    lines = text.split("\n")[:-1]
    assert lines[0] == f"<!-- workspaces-image-reconciler:{kind} -->"
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
            assert lines[at + 1] == "| --- | --- | --- | --- |"
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
                    match = re.fullmatch(r"- <code>(.*)</code> \(([^()]*)\)", lines[at])
                    assert match, f"not an unchanged item: {lines[at]!r}"
                    parsed.unchanged.append(visible(match.group(1)))
                at += 1
        elif line.startswith("_") and "left out" in line:
            match = LEFT_OUT.match(line)
            assert match, f"unclear note: {line!r}"
            assert any(match.groups()), f"unclear note: {line!r}"
            assert at == len(lines) - 1, "the note comes last"
            items, warnings = (int(n) if n else None for n in match.groups())
            parsed.left_out, parsed.warnings_left_out = items, warnings
        else:
            assert line == "", f"unexpected line {at}: {line!r}"
        at += 1
    assert not any(row.startswith("|") for row in lines if row not in _table_lines(parsed))
    return parsed


def _table_lines(parsed: Parsed) -> set[str]:
    return {"|" + "|".join(r) + "|" for r in parsed.rows} | {HEADER, "| --- | --- | --- | --- |"}


def assert_expected(name: str, text: str) -> None:
    path = EXPECTED / name
    if os.environ.get("REGENERATE") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert path.exists(), f"{path} is missing: run once with REGENERATE=1 and review it"
    expected = path.read_bytes().decode("utf-8")
    assert text == expected, f"{name} differs; REGENERATE=1 rewrites it (then review the diff)"


# --- the expected files --------------------------------------------------------------------


def test_plan_with_every_action_matches_expected_file() -> None:
    plan = every_action_plan()
    assert {i.action for i in plan.items} == set(Action)
    out = markdown(plan, kind="plan")
    assert_expected("plan_every_action.md", out)

    parsed = parse(out)
    assert parsed.lines[2] == (
        "### Plan: 2 to create, 1 to update, 1 to adopt. 3 unchanged, 1 unmanaged, "
        "2 in conflict, 1 blocked."
    )
    # Problems first, each with its warning line; the unmanaged (deletions) with a caution.
    assert len(parsed.warnings) == 5
    for name, what in [
        ("legal-win11-2026-11", "Conflict"),
        ("data-win11-2026-09", "Conflict"),
        ("dev-win11-2026-11", "Blocked"),
        ("ml-win11-2026-11", "Stuck capture"),
    ]:
        (warning,) = [w for w in parsed.warnings if f"<code>{name}</code>" in w]
        assert warning.startswith("> [!WARNING]\n")
        assert f"**{what}**" in warning
    assert "description differs" in visible(out)
    assert "disk full" in visible(out)
    assert parsed.warnings[-1].startswith("> [!CAUTION]")
    assert out.index("[!WARNING]") < out.index(HEADER)

    tiers = [_tier(r[0]) for r in parsed.rows]
    assert tiers == sorted(tiers), parsed.row_names
    assert parsed.row_names[:4] == [
        "legal-win11-2026-11",
        "dev-win11-2026-11",
        "data-win11-2026-09",
        "finance-win10-2025-01",
    ]
    assert set(parsed.row_names[4:]) == {
        "finance-win11-2026-11",
        "qa-win11-2026-11",
        "hr-win11-2026-11",
        "ops-win11-2026-10",
        "ml-win11-2026-11",
    }
    # Tag changes, before -> after.
    (hr,) = [r for r in parsed.rows if "hr-win11-2026-11" in r[1]]
    assert "~ <code>team</code>: <code>hr</code> → <code>people</code>" in hr[3]
    assert "− <code>legacy-code</code>: <del>HR-7</del>" in hr[3]
    assert "+ <code>owner</code>: <code>platform</code>" in hr[3]
    (create,) = [r for r in parsed.rows if "finance-win11-2026-11" in r[1]]
    assert f"from <code>{WS_OK}</code>" in create[3]
    assert "+ <code>cost-center</code>: <code>4410</code>" in create[3]
    # Unchanged: collapsed, and nowhere else.
    assert parsed.unchanged == ["sales-win11-2026-11", "eng-win11-2026-11"]
    assert out.count("<details>") == 1
    assert "<details><summary>2 unchanged</summary>" in out  # the stuck one is a row
    assert parsed.left_out is None


def _tier(action_cell: str) -> int:
    if "conflict" in action_cell or "blocked" in action_cell or "unmanaged" in action_cell:
        return 0
    return 1


def test_apply_result_matches_expected_file() -> None:
    plan = every_action_plan()
    document = applied(
        plan,
        {
            "finance-win11-2026-11": (Result.CREATED, None),
            "qa-win11-2026-11": (Result.DEFERRED, plan.items[6].reason),
            "hr-win11-2026-11": (Result.TAGS_UPDATED, None),
            "ops-win11-2026-10": (
                Result.FAILED,
                "AccessDeniedException: not authorized to perform workspaces:CreateTags "
                "(hint: the role lacks workspaces:CreateTags / workspaces:DeleteTags)",
            ),
            "finance-win10-2025-01": (Result.DELETED, None),
        },
    )
    out = markdown(document, kind="apply")
    assert_expected("apply_result.md", out)

    parsed = parse(out, "apply")
    assert parsed.lines[2] == (
        "### Apply failed: 1 created, 1 tags-updated, 1 deleted, 1 deferred, 1 failed, "
        "3 skipped, 3 unchanged."
    )
    results = {visible(_code_text(r[1])): r[0] for r in parsed.rows}
    assert "→ **created**" in results["finance-win11-2026-11"]
    assert "→ **failed**" in results["ops-win11-2026-10"]
    assert "→ **deleted**" in results["finance-win10-2025-01"]
    assert "→ **skipped**" in results["legal-win11-2026-11"]
    (ops,) = [r for r in parsed.rows if "ops-win11-2026-10" in r[1]]
    assert "AccessDeniedException" in ops[3]
    # What was deleted is not announced as still to delete.
    assert "deletes them" not in out
    assert "was deleted" in out or "were deleted" in out


def test_drift_report_matches_expected_file() -> None:
    specs = [
        spec("finance-win11-2026-11", tags={"team": "finance"}),
        spec("hr-win11-2026-11", tags={"team": "people"}),
    ]
    images = [
        live("finance-win11-2026-11", 1, tags={**OWNED, "team": "finance"}),
        live("hr-win11-2026-11", 2, tags={**OWNED, "team": "people", "temp": "1"}),
        live("scratch-2026-01", 3),
    ]
    out = markdown(plan_from(specs, images), kind="drift")
    assert_expected("drift_report.md", out)

    parsed = parse(out, "drift")
    assert parsed.lines[2].startswith("### ⚠️ Drift detected. ")
    assert parsed.row_names == ["scratch-2026-01", "hr-win11-2026-11"]
    assert "− <code>temp</code>: <del>1</del>" in parsed.rows[1][3]
    assert parsed.unchanged == ["finance-win11-2026-11"]


def test_plan_with_no_changes_matches_expected_file() -> None:
    specs = [spec("finance-win11-2026-11", tags={"team": "finance"}), spec("hr-win11-2026-11")]
    images = [
        live("finance-win11-2026-11", 1, tags={**OWNED, "team": "finance"}),
        live("hr-win11-2026-11", 2),
    ]
    plan = plan_from(specs, images)
    out = markdown(plan, kind="plan")
    assert_expected("plan_no_changes.md", out)

    parsed = parse(out)
    assert parsed.lines[2] == "### No changes. Your images match the specs (2 unchanged)."
    assert parsed.rows == []
    assert parsed.warnings == []
    assert HEADER not in out
    assert parsed.unchanged == ["finance-win11-2026-11", "hr-win11-2026-11"]

    in_sync = parse(markdown(plan, kind="drift"), "drift")
    assert in_sync.lines[2].startswith("### ✅ In sync. ")


# --- escaping ------------------------------------------------------------------------------

HOSTILE = {
    "script": "</details><script>alert(1)</script>",
    "table": "a | b \\` < > & c",
    "newline": "first line\nsecond | line\r\n| fake | row | of | four |",
    "mention": "ping @org/team and @someone",
    "link": "[link](http://x) and ![img](http://x/y.png)",
    "bold": "**bold** _em_ ~~gone~~",
    "marker": "<!-- workspaces-image-reconciler:plan -->",
    "reference": "see #1 and org/repo#2",
    "entity": "&lt;b&gt; &#64;x",
}


def hostile_plan() -> Plan:
    """Every place a spec or AWS string reaches: names, tag keys and values (added,
    changed, removed), reasons, the unchanged list and unmanaged images."""
    items: list[PlanItem] = []
    unmanaged = []
    for n, (label, text) in enumerate(HOSTILE.items()):
        items += [
            item(
                Action.UPDATE_TAGS,
                f"update-{label}",
                image_id=f"wsi-{n:09d}",
                tag_changes=(
                    TagChange(key=text, before=text, after=text + "!"),
                    TagChange(key=f"gone-{label}", before=text, after=None),
                    TagChange(key=f"new-{label}", before=None, after=text),
                ),
            ),
            item(Action.CREATE, text, tag_changes=(TagChange(key="k", before=None, after=text),)),
            item(Action.CONFLICT, f"conflict-{label}", reason=f"live description: {text}"),
            item(Action.ADOPT, f"adopt-{label}", reason=text),
            item(Action.NO_OP, f"{text} (unchanged)"),
        ]
        unmanaged.append(Unmanaged(name=f"{text} (orphan)", region=REGION, image_id=f"wsi-9{n}"))
    return Plan(specs_digest="sha256:x", items=tuple(items), unmanaged=tuple(unmanaged))


def check_inert(out: str, kind: str, hostile: Iterable[str]) -> Parsed:
    parsed = parse(out, kind)  # tags, alerts, table rows and columns, one marker comment
    assert out.count("<details>") == out.count("</details>") <= 1
    # GitHub finds mentions and references in the text after entities are decoded, so an
    # entity alone does not stop them: nothing that reads as one may remain.
    decoded = html.unescape(out)
    assert not re.search(r"@\w", decoded), re.findall(r".{20}@\w+", decoded)
    assert not re.search(r"(?<![\w&])#\d", decoded), re.findall(r".{20}#\d+", decoded)
    seen = visible(out)
    assert not re.search(r"\]\(", out), "a link"
    body = out.split("\n", 1)[1]  # after our own marker
    for text in hostile:
        assert text not in body or not re.search(r"[<>|`*_\[\]@#&\\\n]", text), text
        # The reader still sees the exact value (lines joined), not a mangled one.
        assert one_line(text) in seen, text
    assert "**bold**" not in out
    assert "~~gone~~" not in out
    assert "_em_" not in out
    for row in parsed.rows:
        for cell in row:
            assert "`" not in cell, cell
            assert "\\" not in cell, cell
    return parsed


def test_strings_from_specs_and_aws_are_inert_in_a_plan() -> None:
    plan = hostile_plan()
    out = markdown(plan, kind="plan")
    assert_expected("plan_escaping.md", out)
    parsed = check_inert(out, "plan", HOSTILE.values())
    # One row per item that changes, one line per unchanged item: no value broke a line.
    assert len(parsed.rows) == 4 * len(HOSTILE) + len(plan.unmanaged)
    assert len(parsed.unchanged) == len(HOSTILE)
    assert out.count("workspaces-image-reconciler:plan") == 1


def test_strings_from_aws_are_inert_in_an_apply_result() -> None:
    plan = hostile_plan()
    results = {
        i.name: (Result.FAILED, f"{text} (hint: run apply again)")
        for i, text in zip(plan.items[1::5], HOSTILE.values(), strict=True)
    }
    out = markdown(applied(plan, results), kind="apply")
    check_inert(out, "apply", HOSTILE.values())


def test_empty_and_missing_values_stay_visible() -> None:
    change = (
        TagChange(key="empty", before="", after="x"),
        TagChange(key="gone", before="", after=None),
    )
    out = markdown(
        Plan(specs_digest="x", items=(item(Action.UPDATE_TAGS, "i", tag_changes=change),))
    )
    (row,) = parse(out).rows
    assert "~ <code>empty</code>: <code> </code> → <code>x</code>" in row[3]
    assert "− <code>gone</code>: <del> </del>" in row[3]


# --- size ----------------------------------------------------------------------------------


def big_plan(seed: int = 600) -> Plan:
    """600 specs, every action, long tag lists with long values; 20 unmanaged images."""
    rnd = random.Random(seed)
    mix = (
        [Action.CONFLICT] * 25
        + [Action.BLOCKED] * 25
        + [Action.CREATE] * 200
        + [Action.UPDATE_TAGS] * 150
        + [Action.ADOPT] * 50
        + [Action.NO_OP] * 150
    )
    rnd.shuffle(mix)
    specs, images = [], []
    for n, action in enumerate(mix):
        name = f"{action.value}-win11-{n:03d}-" + "x" * rnd.randint(0, 40)
        tags = {
            f"team-{k:02d}": f"value {k} @org/team: " + "v" * rnd.randint(20, 200)
            for k in range(rnd.randint(10, 49))
        }
        source = WS_STOPPED if action is Action.BLOCKED else WS_OK
        specs.append(spec(name, source=source, tags=tags, line=n + 1))
        if action is Action.CREATE or action is Action.BLOCKED:
            continue
        live_tags = {**OWNED, **tags}
        if action is Action.UPDATE_TAGS:
            live_tags = {**OWNED, **{k: "old " + v for k, v in tags.items()}, "stale": "1"}
        elif action is Action.ADOPT:
            live_tags = {}
        description = "Other description" if action is Action.CONFLICT else None
        images.append(live(name, n, tags=live_tags, description=description))
    images += [live(f"orphan-{n:02d}", 1000 + n) for n in range(20)]
    plan = plan_from(specs, images)
    assert [plan.summary[a.value] for a in Action] == [200, 150, 150, 50, 25, 25]
    return plan


def check_fit(plan: Plan, out: str, limit: int, kind: str = "plan") -> Parsed:
    assert len(out) <= limit, len(out)
    parsed = parse(out, kind)
    assert summary_line(plan) in parsed.lines[2], "the headline is kept whole"
    # Problems and deletions come first in the table.
    first = {one_line(i.name) for i in plan.items if i.action in FIRST_TIER} | {
        one_line(u.name) for u in plan.unmanaged
    }
    tiers = [0 if name in first else 1 for name in parsed.row_names]
    assert tiers == sorted(tiers), "a create or update is listed before a problem"
    # The note says exactly how many items, and how many warnings, are not shown.
    everything = [one_line(i.name) for i in plan.items] + [one_line(u.name) for u in plan.unmanaged]
    assert len(set(everything)) == len(everything)
    shown = set(parsed.row_names) | set(parsed.unchanged)
    missing = [name for name in everything if name not in shown]
    assert parsed.left_out == (len(missing) or None), (parsed.left_out, len(missing))
    warnings = sum(i.is_error or i.stuck for i in plan.items) + bool(plan.unmanaged)
    dropped = warnings - len(parsed.warnings)
    assert parsed.warnings_left_out == (dropped or None), (parsed.warnings_left_out, dropped)
    # Nothing left out that would have fit: each missing row or line is longer than the
    # room that was left.
    whole = _lines_by_name(plan, kind)
    for name in missing:
        assert len(out) + len(whole[name]) > limit - SLACK, f"{name!r} would have fit"
    return parsed


def _lines_by_name(plan: Plan, kind: str) -> dict[str, str]:
    """Every item's row or unchanged line, from the comment without a limit."""
    full = markdown(plan, kind=kind, limit=10**9)
    assert "left out" not in full
    lines: dict[str, str] = {}
    for line in full.splitlines():
        match = re.match(r"(?:\| [^|]* \| |- )<code>(.*?)</code>", line)
        if match:
            lines[visible(match.group(1))] = line
    return lines


def test_a_600_image_plan_fits_one_comment_and_keeps_the_problems_first() -> None:
    plan = big_plan()
    out = markdown(plan, kind="plan")
    assert MAX_CHARS == 60_000
    parsed = check_fit(plan, out, MAX_CHARS)
    first = {i.name for i in plan.items if i.action in FIRST_TIER} | {
        u.name for u in plan.unmanaged
    }
    assert first <= set(parsed.row_names), "every conflict, blocked item and deletion is shown"
    assert len(parsed.warnings) == 50 + 1
    assert parsed.warnings_left_out is None
    assert parsed.left_out
    assert parsed.left_out > 0
    assert any("create" in r[0] for r in parsed.rows), "creates follow the problems"
    print(f"600-image plan: {len(out)} characters, {parsed.left_out} items left out")


def test_a_600_image_apply_result_and_drift_report_fit_too() -> None:
    plan = big_plan(seed=1)
    check_fit(plan, markdown(plan, kind="drift"), MAX_CHARS, "drift")
    document = applied(plan, {u.name: (Result.DELETED, None) for u in plan.unmanaged})
    out = markdown(document, kind="apply")
    assert len(out) <= MAX_CHARS
    parse(out, "apply")


@pytest.mark.parametrize("limit", [2_000, 3_000, 5_000, 12_345, 30_000])
def test_smaller_limits_keep_the_same_promises(limit: int) -> None:
    plan = big_plan(seed=limit)
    check_fit(plan, markdown(plan, kind="plan", limit=limit), limit)


# --- the limit, for random plans -----------------------------------------------------------

_CHARS = [*list("abcxyz019-_./() "), "@", "|", "<", ">", "`", "&", "\n", "#", "*", "\\"]


def random_plan(rnd: random.Random) -> Plan:
    """A plan of 0-150 items of any action, names and values with characters to escape,
    up to 50 tag changes of up to 255 characters, and 0-30 unmanaged images."""

    def text(size: int) -> str:
        return "".join(rnd.choices(_CHARS, k=rnd.randint(0, size)))

    items = []
    for n in range(rnd.randint(0, 150)):
        action = rnd.choice(list(Action))
        size = rnd.choice([5, 60, 255])
        changes = tuple(
            TagChange(
                key=f"k{k}-{text(20)}", before=rnd.choice([None, text(size)]), after=text(size)
            )
            for k in range(rnd.randint(0, rnd.choice([3, 50])))
        )
        fields: dict[str, object] = {"tag_changes": changes}
        if action is Action.NO_OP and rnd.random() < 0.2:
            fields.update(stuck=True, reason="capture PENDING since 2026-11-27 09:00 UTC; stuck?")
        if action in FIRST_TIER:
            fields["reason"] = text(300)
        items.append(item(action, f"{n}-{text(64)}", **fields))
    unmanaged = tuple(
        Unmanaged(name=f"orphan-{n}-{text(64)}", region=REGION, image_id=f"wsi-{n:09d}")
        for n in range(rnd.randint(0, 30))
    )
    return Plan(specs_digest="sha256:x", items=tuple(items), unmanaged=unmanaged)


def check_random(seed: int, limit: int, kind: str) -> None:
    plan = random_plan(random.Random(seed))
    check_fit(plan, markdown(plan, kind=kind, limit=limit), limit, kind)


try:
    import hypothesis
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev dependency

    @pytest.mark.parametrize("seed", range(60))
    def test_any_plan_fits_any_limit_without_cutting_a_row_or_a_tag(seed: int) -> None:
        rnd = random.Random(seed)
        check_random(seed, rnd.randint(2_000, 60_000), rnd.choice(["plan", "drift"]))

else:

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(
        seed=st.integers(0, 2**32),
        limit=st.integers(2_000, 60_000),
        kind=st.sampled_from(["plan", "drift"]),
    )
    def test_any_plan_fits_any_limit_without_cutting_a_row_or_a_tag(
        seed: int, limit: int, kind: str
    ) -> None:
        check_random(seed, limit, kind)


def test_a_failed_deletion_shows_why() -> None:
    plan = Plan(
        specs_digest="x",
        items=(),
        unmanaged=(Unmanaged(name="old-win10", region=REGION, image_id="wsi-000000009"),),
    )
    document = Applied(
        specs_digest="x",
        items=(),
        unmanaged=(
            AppliedUnmanaged(
                **plan.unmanaged[0].model_dump(),
                result=Result.FAILED,
                error="ResourceAssociatedException: in use (hint: a bundle uses this image)",
            ),
        ),
    )
    parsed = parse(markdown(document, kind="apply"), "apply")
    (row,) = parsed.rows
    assert "→ **failed**" in row[0]
    assert "ResourceAssociatedException" in row[3]
    assert "a bundle uses this image" in row[3]
    assert "1 owned image has no spec" in parsed.warnings[0]
