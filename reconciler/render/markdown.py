"""Plans, drift reports and apply results as Markdown: a pull-request comment or a job
summary that reviewers can trust.

Layout, in order: a hidden marker (so a workflow finds and edits its own comment), a
headline with the counts, warnings (conflicts, blocked items, deletions), a table of the
items that change with their tag changes, and the unchanged items collapsed.

A comment is limited to 65,536 characters on GitHub; we stay under MAX_CHARS whatever the
plan, dropping the least important rows first and never cutting inside a row or a tag.
Every string from a spec or from AWS goes through `md()`: a tag value such as
`</details><script>` or `@org/team` must not change the page or ping anyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.apply import Applied, AppliedItem, Result
from reconciler.plan import Action, Plan, PlanItem, TagChange, Unmanaged
from reconciler.render.escape import terminal_safe
from reconciler.render.text import applied_summary, health_line, summary_line

MAX_CHARS = 60_000
MARKER = "<!-- workspaces-image-reconciler:{kind} -->"

_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    # GitHub finds mentions and issue references after decoding entities, so an entity
    # alone does not stop them: a zero-width space after the sign does.
    "@": "&#64;&#8203;",
    "|": "&#124;",
    "`": "&#96;",
    "\\": "&#92;",
    "*": "&#42;",
    "_": "&#95;",
    "[": "&#91;",
    "]": "&#93;",
    "#": "&#35;&#8203;",
    "~": "&#126;",
    "!": "&#33;",
    ":": "&#58;",
}
_ICON = {
    Action.CREATE: "➕ create",
    Action.UPDATE_TAGS: "🔄 update tags",
    Action.ADOPT: "🔄 adopt",
    Action.CONFLICT: "⛔ conflict",
    Action.BLOCKED: "⛔ blocked",
    Action.NO_OP: "no-op",
}
# Lower ranks survive truncation first: problems and deletions, then creates, then updates.
_RANK = {
    Action.CONFLICT: 0,
    Action.BLOCKED: 0,
    Action.CREATE: 1,
    Action.UPDATE_TAGS: 2,
    Action.ADOPT: 2,
    Action.NO_OP: 3,
}


def md(text: str | None) -> str:
    """Text made inert in Markdown and HTML: entities for every character that could
    start markup, a mention or a table cell, and no line breaks. Use it in HTML context
    (`<code>` rather than backticks: a code span would show the entities literally)."""
    if text is None:
        return "∅"
    # Lines joined, then other control characters (ESC) shown as visible escapes: a
    # comment's text is printed in CI logs too.
    text = terminal_safe(" ".join(text.splitlines()))
    return "".join(_ESCAPES.get(ch, ch) for ch in text) or " "


def _code(text: str | None) -> str:
    return f"<code>{md(text)}</code>"


@dataclass(frozen=True)
class _Row:
    rank: int
    text: str


def markdown(document: Plan | Applied, *, kind: str = "plan", limit: int = MAX_CHARS) -> str:
    head = [MARKER.format(kind=kind), "", f"### {_headline(document, kind)}", ""]
    warnings = _warnings(document)
    changing = [i for i in document.items if i.action is not Action.NO_OP or i.stuck]
    rows = [_Row(_RANK[i.action], _row(i)) for i in sorted(changing, key=lambda i: _RANK[i.action])]
    rows += [_Row(0, _unmanaged_row(u, document)) for u in document.unmanaged]
    rows.sort(key=lambda r: r.rank)
    unchanged = [i for i in document.items if i.action is Action.NO_OP and not i.stuck]
    return _fit(head, warnings, rows, unchanged, limit)


def _fit(
    head: list[str],
    warnings: list[str],
    rows: list[_Row],
    unchanged: Sequence[PlanItem],
    limit: int,
) -> str:
    """Whole rows, most important first, until the limit; then say what was left out."""
    budget = limit - len("\n".join(head)) - 400  # room for the table header and the note
    kept_warnings = _take(warnings, budget)
    budget -= sum(len(w) + 1 for w in kept_warnings)
    kept_rows = _take([r.text for r in rows], budget)
    budget -= sum(len(r) + 1 for r in kept_rows)
    unchanged_lines = [f"- {_code(i.name)} ({md(i.region)})" for i in unchanged]
    kept_unchanged = _take(unchanged_lines, budget - 100)
    # Each item has one row or one unchanged line; a warning repeats an item's problem.
    items_left_out = len(rows) - len(kept_rows) + len(unchanged_lines) - len(kept_unchanged)
    warnings_left_out = len(warnings) - len(kept_warnings)
    parts = [*head, *kept_warnings]
    if kept_rows:
        parts += ["| Action | Image | Region | Detail |", "| --- | --- | --- | --- |"]
        parts += [*kept_rows, ""]
    if unchanged:
        parts += [
            f"<details><summary>{len(unchanged)} unchanged</summary>",
            "",
            *kept_unchanged,
            "",
            "</details>",
            "",
        ]
    left_out = [
        _count(items_left_out, "more item") if items_left_out else "",
        _count(warnings_left_out, "warning") if warnings_left_out else "",
    ]
    if any(left_out):
        were = "was" if items_left_out + warnings_left_out == 1 else "were"
        parts.append(
            f"_{' and '.join(p for p in left_out if p)} {were} left out to fit a comment; run "
            "`reconciler plan` or see the job log for the whole plan._"
        )
    return "\n".join(parts).rstrip("\n") + "\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _take(lines: Sequence[str], budget: int) -> list[str]:
    """The lines that fit, in order; one too long for what is left does not stop shorter
    ones after it."""
    kept, used = [], 0
    for line in lines:
        if used + len(line) + 1 > budget:
            continue
        kept.append(line)
        used += len(line) + 1
    return kept


def _headline(document: Plan | Applied, kind: str) -> str:
    # Our own words and counts: no spec or AWS text, so no escaping needed.
    if isinstance(document, Applied):
        return applied_summary(document)
    line = summary_line(document)
    if kind == "drift":
        verdict = "⚠️ Drift detected. " if document.drifted else "✅ In sync. "
        return verdict + line + " " + health_line(document)
    return line


def _warnings(document: Plan | Applied) -> list[str]:
    lines = []
    for item in document.items:
        if item.is_error or item.stuck:
            what = (
                "Conflict"
                if item.action is Action.CONFLICT
                else ("Blocked" if item.action is Action.BLOCKED else "Stuck capture")
            )
            lines.append(
                f"> [!WARNING]\n> **{what}**: {_code(item.name)} ({md(item.region)}): "
                f"{md(item.reason)}\n"  # a blank line: consecutive alerts would merge
            )
    if document.unmanaged:
        deleted = sum(getattr(u, "result", None) is Result.DELETED for u in document.unmanaged)
        kept = len(document.unmanaged) - deleted
        said = []
        if deleted:
            were = "was" if deleted == 1 else "were"
            said.append(f"{_count(deleted, 'owned image')} with no spec {were} deleted.")
        if kept:
            have, them = ("has", "it") if kept == 1 else ("have", "them")
            said.append(
                f"{_count(kept, 'owned image')} {have} no spec; `apply --prune` deletes {them}."
            )
        lines.append(f"> [!CAUTION]\n> {' '.join(said)}\n")
    return lines


def _row(item: PlanItem) -> str:
    detail = _detail(item)
    action = _ICON[item.action]
    if isinstance(item, AppliedItem):
        action += f" → **{item.result.value}**"
        if item.error and item.error != item.reason:  # a deferral repeats the plan's reason
            detail += f"<br>{md(item.error)}"
    return f"| {action} | {_code(item.name)} | {md(item.region)} | {detail} |"


def _detail(item: PlanItem) -> str:
    parts = []
    if item.action in (Action.CREATE, Action.BLOCKED):
        parts.append(f"from {_code(item.source_workspace_id)}")
    elif item.image_id:
        parts.append(f"{_code(item.image_id)}")
    if item.reason and not item.is_error:
        parts.append(md(item.reason))
    # A conflict or blocked item changes no tag (unless apply replaced a failed image):
    # listing the declared ones would only crowd the problems out of a long plan.
    replaced = isinstance(item, AppliedItem) and item.result in (Result.CREATED, Result.CONVERGED)
    if not item.is_error or replaced:
        parts += [_change(c) for c in item.tag_changes]
    return "<br>".join(parts) or " "


def _change(change: TagChange) -> str:
    if change.before is None:
        return f"+ {_code(change.key)}: {_code(change.after)}"
    if change.after is None:
        return f"− {_code(change.key)}: <del>{md(change.before)}</del>"
    return f"~ {_code(change.key)}: {_code(change.before)} → {_code(change.after)}"


def _unmanaged_row(u: Unmanaged, document: Plan | Applied) -> str:
    result = getattr(u, "result", Result.UNCHANGED)
    label = "🗑️ unmanaged" + (f" → **{result.value}**" if result is not Result.UNCHANGED else "")
    detail = f"{_code(u.image_id)} no spec declares it"
    error = getattr(u, "error", None)
    if error:
        detail += f"<br>{md(error)}"
    return f"| {label} | {_code(u.name)} | {md(u.region)} | {detail} |"
