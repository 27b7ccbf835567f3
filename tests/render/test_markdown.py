"""The Markdown renderer: a pull-request comment or job summary that reviewers can trust.

Expected files live in ``expected_md/``; ``REGENERATE=1 pytest tests/render`` rewrites them
(then read the diff: they are the reviewed look of the comment). Beyond the exact files,
the output is parsed (``reading.py``): the HTML tags it contains, the table's columns, the
order of the items, the size limit and the note on what was left out, kind by kind.
"""

from __future__ import annotations

import html
import os
import random
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from reconciler.apply import Applied, AppliedUnmanaged, Result
from reconciler.kinds.image import stuck
from reconciler.kinds.share import ShareChange
from reconciler.plan import Action, Plan, TagChange, Unmanaged
from reconciler.render.github import RunInfo
from reconciler.render.markdown import MAX_CHARS, SUMMARY_MAX_CHARS, markdown
from reconciler.render.text import summary_line
from tests.render.builders import (
    FIRST_TIER,
    IMAGE_ACTIONS,
    NOW,
    OWNED,
    REGION,
    WS_OK,
    applied,
    big_plan,
    creates_and_tag_updates,
    every_action_plan,
    item,
    key_of,
    kind_of,
    lifecycle_applied,
    lifecycle_plan,
    live,
    plan_from,
    random_applied,
    random_plan,
    spec,
    tier_of,
)
from tests.render.reading import (
    HEADER,
    RULE,
    Parsed,
    cells,
    code_text,
    compact,
    digest_of,
    one_line,
    parse,
    row_key,
    units,
    visible,
)

EXPECTED = Path(__file__).parent / "expected_md"
# The most a comment may stay under its limit while something is left out: room kept for
# the longest note the left-out lines could need.
SLACK = 600
RUN = RunInfo(
    server_url="https://github.com",
    repository="acme/golden-images",
    run_id="4242424242",
    sha="0123456789abcdef0123456789abcdef01234567",
)


def assert_expected(name: str, text: str) -> None:
    path = EXPECTED / name
    if os.environ.get("REGENERATE") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert path.exists(), f"{path} is missing: run once with REGENERATE=1 and review it"
    expected = path.read_bytes().decode("utf-8")
    assert text == expected, f"{name} differs; REGENERATE=1 rewrites it (then review the diff)"


def _tier(action_cell: str) -> int:
    if any(word in action_cell for word in ("conflict", "blocked", "failed")):
        return 0
    if any(word in action_cell for word in ("replace", "delete", "unmanaged", "update image")):
        return 1
    return 3 if "create" in action_cell else 2


# --- the expected files --------------------------------------------------------------------


def test_plan_with_every_action_matches_expected_file() -> None:
    plan = every_action_plan()
    assert {i.action for i in plan.items} == IMAGE_ACTIONS
    out = markdown(plan, kind="plan")
    assert_expected("plan_every_action.md", out)

    parsed = parse(out)
    assert parsed.lines[2] == (
        "### Plan: 2 to create, 1 to update, 1 to adopt. 3 unchanged (1 capture stuck), "
        "1 unmanaged, 2 in conflict, 1 blocked."
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
    assert parsed.row_names == [
        "legal-win11-2026-11",
        "dev-win11-2026-11",
        "data-win11-2026-09",
        "finance-win10-2025-01",
        "hr-win11-2026-11",
        "ops-win11-2026-10",
        "ml-win11-2026-11",
        "finance-win11-2026-11",
        "qa-win11-2026-11",
    ]
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
    assert not parsed.left_out
    assert parsed.footer is None


def test_plan_with_prune_and_replace_failed_matches_expected_file() -> None:
    plan = every_action_plan(prune=True, replace_failed=True)
    out = markdown(plan, kind="plan")
    assert_expected("plan_prune_replace.md", out)

    parsed = parse(out)
    assert parsed.lines[2] == (
        "### Plan: 2 to create, 1 to update, 1 to adopt, 1 to replace, 1 to delete. "
        "3 unchanged (1 capture stuck), 1 in conflict, 1 blocked."
    )
    rows = dict(zip(parsed.row_names, parsed.rows, strict=True))
    assert rows["data-win11-2026-09"][0] == " 🔁 replace "
    assert "captured again from <code>ws-0a1b2c3d4</code>" in rows["data-win11-2026-09"][3]
    # The replacement's tags are the new capture's: shown with it.
    assert "+ <code>team</code>: <code>data</code>" in rows["data-win11-2026-09"][3]
    assert rows["finance-win10-2025-01"][0] == " 🗑️ delete "
    # Deletions and the replacement come after the errors and before every other change.
    assert parsed.row_names[:4] == [
        "legal-win11-2026-11",
        "dev-win11-2026-11",
        "data-win11-2026-09",
        "finance-win10-2025-01",
    ]
    cautions = [w for w in parsed.warnings if w.startswith("> [!CAUTION]")]
    assert cautions == [
        "> [!CAUTION]\n> 1 owned image in ERROR will be deleted and captured again "
        "(`--replace-failed`).",
        "> [!CAUTION]\n> 1 owned image that no spec declares will be deleted (`--prune`).",
    ]
    # The replaced image is no longer announced as a conflict.
    assert not any("data-win11-2026-09" in w and "Conflict" in w for w in parsed.warnings)


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
    results = {visible(code_text(r[1])): r[0] for r in parsed.rows}
    assert "→ **created**" in results["finance-win11-2026-11"]
    assert "→ **failed**" in results["ops-win11-2026-10"]
    assert "→ **deleted**" in results["finance-win10-2025-01"]
    assert "→ **skipped**" in results["legal-win11-2026-11"]
    # A failure is an error: first, with its message before its tag changes.
    assert parsed.row_names[0] == "ops-win11-2026-10"
    detail = parsed.rows[0][3]
    assert detail.index("AccessDeniedException") < detail.index("ManagedBy")
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
    assert parsed.lines[2] == "### No changes. The account matches the specs (2 unchanged)."
    assert parsed.rows == []
    assert parsed.warnings == []
    assert HEADER not in out
    assert parsed.unchanged == ["finance-win11-2026-11", "hr-win11-2026-11"]

    in_sync = parse(markdown(plan, kind="drift"), "drift")
    assert in_sync.lines[2].startswith("### ✅ In sync. ")


# --- labels and the footer -----------------------------------------------------------------


def test_a_label_names_the_run_in_the_marker_and_the_heading() -> None:
    plan = every_action_plan()
    out = markdown(plan, kind="drift", label="prod 111122223333/eu-west-1", run=RUN)
    assert_expected("drift_labelled_with_footer.md", out)
    parsed = parse(out, "drift", label="prod 111122223333/eu-west-1")
    assert parsed.lines[0] == (
        "<!-- workspaces-image-reconciler:drift:prod 111122223333/eu-west-1 -->"
    )
    assert parsed.lines[2].startswith("### prod 111122223333/eu-west-1 — ⚠️ Drift detected. ")
    # Without a label, exactly today's marker.
    assert markdown(plan, kind="drift").startswith("<!-- workspaces-image-reconciler:drift -->\n")


def test_a_label_is_escaped_in_the_heading_and_kept_exact_in_the_marker() -> None:
    label = "prod <b @team | #1 `x` [y](z) *a* _b_ ~c~ &amp; \\ é"
    out = markdown(every_action_plan(), kind="plan", label=label)
    parsed = parse(out, "plan", label=label)  # one comment, only our tags, the table intact
    heading = parsed.lines[2]
    assert visible(heading) == f"### {label} — {summary_line(every_action_plan())}"
    decoded = html.unescape(heading)
    assert not re.search(r"@\w", decoded), "a mention"
    assert not re.search(r"(?<![\w&])#\d", decoded), "an issue reference"
    assert "](" not in heading
    for raw in ("<b", "`x`", "*a*", "_b_", "~c~"):
        assert raw not in heading, raw
    assert "&amp;amp;" in heading, "an entity in a label is shown as written"


@pytest.mark.parametrize(
    "bad",
    ["", "x" * 65, "a--b", "a>b", "a\nb", "a\x1b[2Jb", "a\u200bb", "a\u2028b", " lead", "trail "],
)
def test_a_label_that_could_break_the_marker_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="label"):
        markdown(every_action_plan(), label=bad)


def test_the_footer_links_the_commit_and_the_run() -> None:
    out = markdown(every_action_plan(), kind="plan", run=RUN)
    parsed = parse(out)
    assert parsed.footer == {
        "short": "0123456",
        "commit": "https://github.com/acme/golden-images/commit/"
        "0123456789abcdef0123456789abcdef01234567",
        "run_id": "4242424242",
        "run": "https://github.com/acme/golden-images/actions/runs/4242424242",
    }
    assert "Commit" not in markdown(every_action_plan(), kind="plan")


def test_the_footer_is_kept_when_a_big_plan_is_trimmed() -> None:
    plan = big_plan(seed=3)
    out = markdown(plan, kind="plan", run=RUN, label="acct/eu-west-1")
    parsed = check_fit(plan, out, MAX_CHARS, label="acct/eu-west-1")
    assert parsed.footer is not None
    assert parsed.left_out


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
    items = []
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
    # The marker and the digest line only: no value forged either.
    assert out.count("workspaces-image-reconciler:plan -->") == 1
    assert out.count("workspaces-image-reconciler:") == 2
    assert digest_of(out) == plan.digest()


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


def check_fit(
    document: Plan, out: str, limit: int, kind: str = "plan", label: str | None = None
) -> Parsed:
    """Every promise of a trimmed comment, checked against the untrimmed one."""
    assert units(out) <= limit, units(out)
    parsed = parse(out, kind, label)
    if not isinstance(document, Applied):
        assert summary_line(document) in parsed.lines[2], "the headline is kept whole"
    names = [key_of(i) for i in document.items] + [key_of(u) for u in document.unmanaged]
    assert len(set(names)) == len(names)
    # Errors, then deletions, replacements and rollouts, then changes to existing resources,
    # then creates.
    tiers = [tier_of(document, key) for key in parsed.row_keys]
    assert tiers == sorted(tiers), "a row is listed before a more important one"
    # The note says exactly what is not shown, kind by kind.
    shown = set(parsed.row_keys) | set(parsed.unchanged_keys)
    missing = [name for name in names if name not in shown]
    assert parsed.left_out == Counter(kind_of(document, n) for n in missing)
    warnings = sum(i.is_error or stuck(i) for i in document.items) + bool(document.unmanaged)
    assert parsed.warnings_left_out <= warnings
    assert len(parsed.warnings) + parsed.warnings_left_out >= warnings - _replacements(document)
    assert parsed.collapsed == len(parsed.collapsed_rows)
    if missing or parsed.collapsed or parsed.warnings_left_out:
        assert parsed.whole in ("plan", "report", "result")
        assert ("job summary" in (parsed.note_where or "")) == (limit <= MAX_CHARS)
    # Nothing left out that would have fit; every changing item had its one-line row before
    # any item's tag changes were shown.
    whole = _lines_by_name(document, kind, label)
    room = limit - units(out)
    for name in missing:
        line = whole[name]
        needed = units(compact(line)) if line.startswith("|") else units(line)
        assert needed + 1 > room - SLACK, f"{name!r} would have fit"
    if any(kind_of(document, n) != "unchanged" for n in missing):
        assert not _expanded_rows(parsed), "tag changes shown while an item has no row"
    for row in parsed.collapsed_rows:
        full = whole[row_key(row)]
        extra = units(full) - units(compact(full))
        assert extra > room - SLACK, f"{row[1]} could have shown its tags"
    return parsed


def _replacements(document: Plan) -> int:
    return sum(kind_of(document, key_of(i)) == "replace" for i in document.items)


def _expanded_rows(parsed: Parsed) -> list[list[str]]:
    return [r for r in parsed.rows if re.search(r"<br>(?:\+|−|~) <code>", r[3])]


def _lines_by_name(document: Plan, kind: str, label: str | None) -> dict[str, str]:
    """Every item's full row or unchanged line, from the comment without a limit, by key."""
    full = markdown(document, kind=kind, limit=10**9, label=label)
    assert "To fit" not in full
    lines: dict[str, str] = {}
    for line in full.splitlines():
        if line.startswith("| ") and line not in (HEADER, RULE):
            lines[row_key(cells(line))] = line
        match = re.fullmatch(r"- ((?:bundle |sharing of )?)<code>(.*)</code> \(([^()]*)\)", line)
        if match:
            lines[f"{match.group(1)}{visible(match.group(2))} ({visible(match.group(3))})"] = line
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
    assert parsed.warnings_left_out == 0
    # Every change to an existing image has its row; creates follow.
    existing = {i.name for i in plan.items if i.action in (Action.UPDATE_TAGS, Action.ADOPT)}
    assert existing <= set(parsed.row_names)
    assert any("create" in r[0] for r in parsed.rows)
    assert parsed.left_out
    print(f"600-image plan: {units(out)} characters, left out: {dict(parsed.left_out)}")


def test_595_creates_do_not_hide_5_tag_updates() -> None:
    """Issue 10 item 12: the comment showed 23 creates in full and none of the 5 updates."""
    plan = creates_and_tag_updates()
    out = markdown(plan, kind="plan")
    updates = [i.name for i in plan.items if i.action is Action.UPDATE_TAGS]
    assert [n for n in updates if f"| <code>{n}</code> |" not in out] == [], "updates hidden"
    parsed = check_fit(plan, out, MAX_CHARS)
    assert parsed.row_names[:5] == updates
    creates_shown = sum("create" in r[0] for r in parsed.rows)
    # Each create shown costs one line, not its 30 tags: many times the 23 of the issue.
    assert creates_shown > 300
    assert parsed.left_out == Counter({"create": 595 - creates_shown})
    assert not _expanded_rows(parsed), "no tag list before every update and create has a row"
    assert parsed.note_where == "the job summary and `--format json` have it"
    # The job summary has room for every row.
    summary = markdown(plan, kind="plan", limit=SUMMARY_MAX_CHARS)
    whole = check_fit(plan, summary, SUMMARY_MAX_CHARS)
    assert not whole.left_out
    assert len(whole.rows) == 600
    assert whole.note_where in (None, "`--format json` has it")
    print(f"595+5: {creates_shown} creates and 5 updates in {units(out)} characters")


def test_a_big_plan_with_prune_and_replacements_shows_every_deletion() -> None:
    plan = big_plan(seed=7, prune=True, replace_failed=True, failed=12)
    out = markdown(plan, kind="plan")
    parsed = check_fit(plan, out, MAX_CHARS)
    assert "12 to replace, 20 to delete" in parsed.lines[2]
    assert "unmanaged" not in parsed.lines[2]
    kinds = Counter(kind_of(plan, key) for key in parsed.row_keys)
    assert kinds["delete"] == 20
    assert kinds["replace"] == 12
    deleting = [r for r in parsed.rows if r[0] in (" 🗑️ delete ", " 🔁 replace ")]
    assert len(deleting) == 32
    assert any("will be deleted (`--prune`)" in w for w in parsed.warnings)
    assert any("12 owned images in ERROR will be deleted" in w for w in parsed.warnings)


def test_a_600_image_apply_result_and_drift_report_fit_too() -> None:
    plan = big_plan(seed=1)
    check_fit(plan, markdown(plan, kind="drift"), MAX_CHARS, "drift")
    document = applied(plan, {u.name: (Result.DELETED, None) for u in plan.unmanaged})
    check_fit(document, markdown(document, kind="apply"), MAX_CHARS, "apply")


@pytest.mark.parametrize("limit", [2_000, 3_000, 5_000, 12_345, 30_000])
def test_smaller_limits_keep_the_same_promises(limit: int) -> None:
    plan = big_plan(seed=limit, prune=limit > 5_000, replace_failed=True, failed=5)
    check_fit(plan, markdown(plan, kind="plan", limit=limit), limit)


# --- the limit, for random plans -----------------------------------------------------------


def check_random(seed: int, limit: int, kind: str) -> None:
    rnd = random.Random(seed)
    plan = random_plan(rnd)
    document = random_applied(plan, rnd) if kind == "apply" else plan
    label = rnd.choice([None, "acct 1/eu-west-1", "<b @x #1 `y`"])
    out = markdown(document, kind=kind, limit=limit, label=label, run=RUN)
    check_fit(document, out, limit, kind, label)


try:
    import hypothesis
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev dependency

    @pytest.mark.parametrize("seed", range(60))
    def test_any_plan_fits_any_limit_without_cutting_a_row_or_a_tag(seed: int) -> None:
        rnd = random.Random(seed)
        check_random(seed, rnd.randint(2_000, 60_000), rnd.choice(["plan", "drift", "apply"]))

else:

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(
        seed=st.integers(0, 2**32),
        limit=st.integers(2_000, 60_000),
        kind=st.sampled_from(["plan", "drift", "apply"]),
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
        prune=True,
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
    assert row[0] == " 🗑️ delete → **failed** "
    assert "ResourceAssociatedException" in row[3]
    assert "a bundle uses this image" in row[3]
    assert parsed.warnings == [
        "> [!CAUTION]\n> 1 owned image with no spec was not deleted: see why below."
    ]


def test_a_stuck_capture_is_never_called_in_sync_or_unchanged() -> None:
    specs = [spec("ml-win11-2026-11")]
    images = [live("ml-win11-2026-11", 1, state="PENDING", created=NOW.replace(hour=9))]
    plan = plan_from(specs, images)
    assert stuck(plan.items[0])
    parsed = parse(markdown(plan, kind="drift"), "drift")
    assert parsed.lines[2].startswith("### ⚠️ Drift detected. Plan: Nothing to change. ")
    assert "1 unchanged (1 capture stuck)" in parsed.lines[2]
    assert "No changes" not in parsed.lines[2]


def test_no_tag_changes_are_shown_while_a_smaller_row_fitted_after_a_larger_one_did_not() -> None:
    """Found by the property above: a row too long for the room left, then smaller rows that
    fitted; the room that remained went to tag changes while an item had no row."""
    check_random(103, 45351, "plan")


# --- the lifecycle: copies, sharing, bundles -----------------------------------------------


def test_a_lifecycle_plan_matches_expected_file() -> None:
    plan = lifecycle_plan(prune=True)
    out = markdown(plan, kind="plan")
    assert_expected("plan_lifecycle.md", out)

    parsed = parse(out)
    assert parsed.lines[2] == (
        "### Plan: 3 to create, 3 to update sharing, 2 to update image, 2 to delete. "
        "2 unchanged, 1 unmanaged."
    )
    assert parsed.warnings == [
        "> [!CAUTION]\n> 1 owned bundle and 1 owned image that no spec declares will be "
        "deleted (`--prune`). 1 owned image has no spec and is kept while a bundle uses it."
    ]
    # Deletions and rollouts first (bundles deleted before images), then changes to
    # existing resources, then creates; a kind marker where the item is not an image.
    assert [(r[0].strip(), visible(code_text(r[1])), r[2].strip()) for r in parsed.rows] == [
        ("🚀 update image", "bundle finance-standard", "eu-west-1"),
        ("🚀 update image", "bundle contractors", "eu-west-1"),
        ("🗑️ delete", "bundle finance-legacy", "eu-west-1"),
        ("🗑️ delete", "finance-win10-2025-01", "eu-west-1"),
        ("🗑️ unmanaged", "finance-win11-2026-09", "eu-west-1"),
        ("🔗 update sharing", "sharing of finance-win11-2026-11", "eu-west-1"),
        ("🔗 update sharing", "sharing of finance-win11-2026-11", "us-east-1"),
        ("🔗 update sharing", "sharing of finance-win11-2026-10", "eu-west-1"),
        ("➕ create", "finance-win11-2026-11", "eu-west-1"),
        ("➕ create", "finance-win11-2026-11", "us-east-1"),
        ("➕ create", "bundle finance-power", "eu-west-1"),
    ]
    detail = {(visible(code_text(r[1])), r[2].strip()): r[3] for r in parsed.rows}
    assert (
        "image <code>finance-win11-2026-10</code> (<code>wsi-000000010</code>) → "
        "<code>finance-win11-2026-11</code>" in detail["bundle finance-standard", "eu-west-1"]
    )
    assert (
        "image <code>wsi-0c0c0c0c0</code> → <code>wsi-0c0c0c0c1</code>"
        in detail["bundle contractors", "eu-west-1"]
    )
    sharing = detail["sharing of finance-win11-2026-10", "eu-west-1"]
    assert "− account <code>111122223333</code><br>+ account <code>444455556666</code>" in sharing
    copy = detail["finance-win11-2026-11", "us-east-1"]
    assert copy.startswith(" copy of eu-west-1<br>after the capture<br>")
    assert (
        "image <code>finance-win11-2026-10</code>, POWER, user 100 GiB, root 175 GiB"
        in (detail["bundle finance-power", "eu-west-1"])
    )
    assert (
        "kept while bundle <code>finance-basic</code> uses it"
        in (detail["finance-win11-2026-09", "eu-west-1"])
    )
    assert parsed.unchanged == ["finance-win11-2026-10", "bundle finance-basic"]


def test_a_lifecycle_apply_result_matches_expected_file() -> None:
    document = lifecycle_applied(lifecycle_plan(prune=True))
    out = markdown(document, kind="apply")
    assert_expected("apply_lifecycle.md", out)

    parsed = parse(out, "apply")
    assert parsed.lines[2] == (
        "### Apply complete: 2 created, 1 sharing-updated, 1 image-updated, 2 deleted, "
        "4 deferred, 1 skipped, 2 unchanged."
    )
    results = {(visible(code_text(r[1])), r[2].strip()): r[0].strip() for r in parsed.rows}
    assert results["sharing of finance-win11-2026-10", "eu-west-1"] == (
        "🔗 update sharing → **sharing-updated**"
    )
    assert results["bundle contractors", "eu-west-1"] == "🚀 update image → **image-updated**"
    assert results["bundle finance-legacy", "eu-west-1"] == "🗑️ delete → **deleted**"
    assert results["finance-win11-2026-09", "eu-west-1"] == "🗑️ delete → **skipped**"
    assert parsed.warnings == [
        "> [!CAUTION]\n> 1 owned bundle and 1 owned image with no spec were deleted. "
        "1 owned image with no spec was not deleted: see why below."
    ]


def test_a_kept_image_without_prune_and_an_unmanaged_bundle_are_told_apart() -> None:
    plan = lifecycle_plan(prune=False)
    parsed = parse(markdown(plan, kind="drift"), "drift")
    assert parsed.warnings == [
        "> [!CAUTION]\n> 1 owned bundle and 1 owned image have no spec; `apply --prune` "
        "deletes them. 1 owned image has no spec and is kept while a bundle uses it."
    ]
    actions = {visible(code_text(r[1])): r[0].strip() for r in parsed.rows}
    assert actions["bundle finance-legacy"] == "🗑️ unmanaged"
    assert actions["finance-win10-2025-01"] == "🗑️ unmanaged"
    # Trimmed, the note names what was left out by kind: bundles too.
    small = markdown(plan, kind="drift", limit=1_700)
    trimmed = check_fit(plan, small, 1_700, "drift")
    assert trimmed.left_out, small


def test_strings_in_copies_shares_and_bundles_are_inert() -> None:
    items = []
    unmanaged = []
    for n, (label, text) in enumerate(HOSTILE.items()):
        items += [
            item(
                Action.UPDATE_IMAGE,
                f"bundle-{label} {text}",
                kind="bundle",
                bundle_id=f"wsb-{n:09d}",
                image_before=f"wsi-{n:09d}",
                image_before_name=f"before {text}",
                image_name=f"after {text}",
                image_id=None,
                reason=f"after the capture of {text}",
            ),
            item(
                Action.CREATE,
                f"new-{label} {text}",
                kind="bundle",
                image_name=f"image {text}",
                compute_type=text,
                user_volume_gib=50,
            ),
            item(
                Action.UPDATE_SHARING,
                f"share-{label} {text}",
                kind="share",
                share_changes=(ShareChange(account=text, before=False, after=True),),
            ),
            item(Action.CREATE, f"copy-{label} {text}", copy_from=text, source_workspace_id=None),
            item(Action.NO_OP, f"steady-{label} {text}", kind="bundle", bundle_id="wsb-1"),
        ]
        unmanaged += [
            Unmanaged(
                kind="bundle", name=f"{text} (orphan bundle)", region=REGION, bundle_id="wsb-9"
            ),
            Unmanaged(name=f"{text} (kept)", region=REGION, image_id=f"wsi-8{n}", used_by=(text,)),
        ]
    plan = Plan(specs_digest="x", items=tuple(items), unmanaged=tuple(unmanaged), prune=True)
    out = markdown(plan, kind="plan")
    parsed = check_inert(out, "plan", HOSTILE.values())
    assert len(parsed.rows) == 4 * len(HOSTILE) + len(plan.unmanaged)
    assert len(parsed.unchanged) == len(HOSTILE)
    assert all(name.startswith("bundle steady-") for name in parsed.unchanged)
