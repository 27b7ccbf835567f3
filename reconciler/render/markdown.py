"""Plans, drift reports, apply results and failed runs as Markdown: a pull-request comment
or a job summary that reviewers can trust.

Layout, in order: a hidden marker (so a workflow finds and edits its own comment), a
plan's digest in a second hidden line (what the reviewer approved, for apply on merge), a
headline with the counts, the error that stopped the run if one did, warnings (conflicts,
blocked items, stuck captures, deletions), a table of the items that change with their tag
changes, the unchanged items collapsed, a note on what was left out, and in GitHub Actions a
footer with the commit and the run. An image is named as it is; a bundle or a share says
its kind before its name (`bundle`, `sharing of`).

A comment is limited to 65,536 characters on GitHub; we stay under MAX_CHARS whatever the
plan, never cutting inside a row or a tag. What a reviewer must see survives first: errors,
then deletions, replacements and bundles' image changes (a rollout changes what desktops
launch from), then other changes to existing resources, then creates, then the unchanged
list; and every changing item gets a one-line row before any item's tag changes
are expanded. The note then counts what was left out, kind by kind.

Every string from a spec, from AWS or from the environment goes through `md()`: a tag
value such as `</details><script>` or `@org/team` must not change the page or ping anyone.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.errors import ReconcilerError, SpecError, SpecProblem
from reconciler.kinds import bundle as bundle_kind
from reconciler.kinds import image as image_kind
from reconciler.kinds import share as share_kind
from reconciler.kinds.image import is_copy, stuck
from reconciler.kinds.share import ShareChange
from reconciler.plan import Action, Kind, Plan, PlanItem, TagChange, Unmanaged
from reconciler.render.escape import terminal_safe
from reconciler.render.github import RunInfo
from reconciler.render.text import (
    applied_summary,
    by_account,
    health_line,
    image_change,
    source_phrase,
    summary_line,
)
from reconciler.results import Applied, AppliedItem, AppliedUnmanaged, Result

MAX_CHARS = 60_000
# A job summary may hold 1 MiB: 300,000 UTF-16 units are at most 900 KB of UTF-8.
SUMMARY_MAX_CHARS = 300_000
MARKER = "<!-- workspaces-image-reconciler:{kind} -->"
# The second line of a plan's comment: the plan's digest, which the action's apply on merge
# passes as `--reviewed-digest` (the first line stays the marker the comment is found by).
DIGEST_MARKER = "<!-- workspaces-image-reconciler:plan-digest {digest} -->"
LABEL_MAX = 64

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
    Action.UPDATE_SHARING: "🔗 update sharing",
    Action.UPDATE_IMAGE: "🚀 update image",
    Action.CONFLICT: "⛔ conflict",
    Action.BLOCKED: "⛔ blocked",
    Action.NO_OP: "no-op",
}
REPLACE_ICON = "🔁 replace"
DELETE_ICON = "🗑️ delete"
UNMANAGED_ICON = "🗑️ unmanaged"

# Lower ranks survive trimming first.
ERRORS, DELETIONS, EXISTING, CREATES = 0, 1, 2, 3
# How the note names what it left out, kind by kind: (one, many).
_NOUNS = {
    "conflict": ("conflict", "conflicts"),
    "blocked": ("blocked item", "blocked items"),
    "failed": ("failed item", "failed items"),
    "replace": ("replacement", "replacements"),
    "delete": ("deletion", "deletions"),
    "update-image": ("bundle image change", "bundle image changes"),
    "unmanaged": ("unmanaged image", "unmanaged images"),
    "unmanaged-bundle": ("unmanaged bundle", "unmanaged bundles"),
    "update-tags": ("tag update", "tag updates"),
    "update-sharing": ("sharing change", "sharing changes"),
    "adopt": ("adoption", "adoptions"),
    "stuck": ("stuck capture", "stuck captures"),
    "create": ("create", "creates"),
    "unchanged": ("unchanged image", "unchanged images"),
}
_FAILED_HEADLINE = {"plan": "Plan failed", "apply": "Apply failed", "drift": "Drift check failed"}


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


def _named(item: PlanItem | Unmanaged) -> str:
    """The item's name, with its kind when it is not an image: `bundle <code>x</code>`,
    `sharing of <code>x</code>` (a share has its image's name)."""
    marker = {Kind.IMAGE: "", Kind.BUNDLE: "bundle ", Kind.SHARE: "sharing of "}[item.kind]
    return marker + _code(item.name)


def size(text: str) -> int:
    """Length as GitHub counts it (UTF-16 code units): an emoji or a letter outside the
    Basic Multilingual Plane counts twice."""
    return len(text.encode("utf-16-le")) // 2


# --- labels and the marker -----------------------------------------------------------------


def check_label(text: str) -> str:
    """A run's `--label`, checked: it goes into the hidden marker (an HTML comment) as it is,
    and into the heading escaped. Raises ValueError saying what is wrong."""
    if not 1 <= len(text) <= LABEL_MAX:
        raise ValueError(f"a label is 1-{LABEL_MAX} characters; this one has {len(text)}")
    for at, ch in enumerate(text, 1):
        if not ch.isprintable():
            raise ValueError(
                f"character {at} of the label ({terminal_safe(ascii(ch))}) is not printable; "
                "use letters, digits, spaces and punctuation"
            )
    if text != text.strip():
        raise ValueError("a label can't start or end with a space: the marker must match exactly")
    if "--" in text or ">" in text:
        raise ValueError(
            "a label can't contain '--' or '>': they would end the comment's hidden marker"
        )
    return text


def marker(kind: str, label: str | None = None) -> str:
    """The hidden marker a workflow finds its comment (or drift issue) by, one per kind and
    label: `<!-- workspaces-image-reconciler:plan:prod/eu-west-1 -->`."""
    name = kind if label is None else f"{kind}:{check_label(label)}"
    return MARKER.format(kind=name)


def _heading(headline: str, label: str | None) -> str:
    return f"### {md(label)} — {headline}" if label is not None else f"### {headline}"


def _footer(run: RunInfo | None) -> list[str]:
    """The commit and a link to the run (RunInfo has validated every part of both URLs)."""
    if run is None:
        return []
    commit = f"[`{md(run.short_sha)}`]({run.commit_url})"
    return [f"Commit {commit} · [workflow run {md(run.run_id)}]({run.run_url})"]


def _join(parts: list[str], footer: list[str]) -> str:
    """The document's lines, one blank line before the footer, one newline at the end."""
    body = "\n".join(parts).rstrip("\n")
    return "\n\n".join([body, *footer]) + "\n"


# --- the document --------------------------------------------------------------------------

_TABLE_HEAD = ("| Action | Resource | Region | Detail |", "| --- | --- | --- | --- |")


@dataclass(frozen=True)
class _Row:
    rank: int
    kind: str  # for the note on what was left out
    compact: str  # the one-line row: what, which, why
    full: str  # the row with its tag changes (the same row when it has none to show)
    account: str | None = None  # the row's account; its table's heading once grouped
    group: str = ""


def markdown(
    document: Plan | Applied,
    *,
    kind: str = "plan",
    limit: int = MAX_CHARS,
    label: str | None = None,
    run: RunInfo | None = None,
    error: ReconcilerError | None = None,
) -> str:
    """The comment for a plan (`kind` plan or drift) or an apply result (`kind` apply).

    `label` names the run (heading and marker); `run` adds the footer; `error` is the error
    that stopped the run after these results (an apply that failed while waiting)."""
    head = [marker(kind, label), "", _heading(_headline(document, kind, error), label), ""]
    if kind == "plan" and not isinstance(document, Applied):
        head.insert(1, DIGEST_MARKER.format(digest=document.digest()))
    if error is not None:
        head += _error_block(error, "The run stopped on an error")
    rows = [_item_row(document, i) for i in document.items if _changing(i)]
    # Bundles first, as apply deletes them: an image is deleted once no bundle uses it.
    pruned = sorted(document.unmanaged, key=lambda u: u.kind is not Kind.BUNDLE)
    rows += [_unmanaged_row(document, u) for u in pruned]
    groups = _account_groups(document)
    if groups:  # a table per account, in the map's order, each under its count line
        order = list(groups)
        rows = [dataclasses.replace(r, group=_group_of(document, r)) for r in rows]
        rows.sort(key=lambda r: (order.index(r.group), r.rank))
    else:
        rows.sort(key=lambda r: r.rank)  # stable: the plan's order within a rank
    unchanged = [i for i in document.items if not _changing(i)]
    layout = _Layout(head, _warnings(document), rows, unchanged, _footer(run), limit, groups)
    return layout.render(
        whole="result"
        if isinstance(document, Applied)
        else ("report" if kind == "drift" else "plan")
    )


def _changing(item: PlanItem) -> bool:
    return item.action is not Action.NO_OP or stuck(item)


def _account_groups(document: Plan | Applied) -> dict[str, str]:
    """For a run over more than one account: each account's heading (name and id) with its
    count line, in the map's order; else nothing."""
    if len(document.accounts) < 2:
        return {}
    groups = {}
    for heading, part in by_account(document):
        assert heading is not None
        counts = applied_summary(part) if isinstance(part, Applied) else summary_line(part)
        groups[heading] = f"**{md(heading)}**: {counts}"
    return groups


def _group_of(document: Plan | Applied, row: _Row) -> str:
    account = next(a for a in document.accounts if a.id == row.account)
    return f"Account {account.name} ({account.id})"


@dataclass
class _Layout:
    head: list[str]
    warnings: list[str]
    rows: list[_Row]
    unchanged: Sequence[PlanItem]
    footer: list[str]
    limit: int
    # Each account's heading with its count line, when the rows are grouped by account.
    groups: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def render(self, whole: str) -> str:
        every = _Choice(
            self.warnings, [True] * len(self.rows), [True] * len(self.rows), self._lines()
        )
        text = self._assemble(every, whole)
        if size(text) <= self.limit:
            return text
        return self._assemble(self._fit(whole), whole)

    def _lines(self) -> list[str]:
        return [f"- {_named(i)} ({md(i.region)})" for i in self.unchanged]

    def _fit(self, whole: str) -> _Choice:
        """Whole lines, most important first, until the limit: warnings, a one-line row for
        each changing item, their tag changes, then the unchanged list."""
        budget = self.limit - size(self._frame(whole))
        warnings = _take(self.warnings, budget)
        budget -= sum(size(w) + 1 for w in warnings)
        shown = [False] * len(self.rows)
        for n, row in enumerate(self.rows):
            if size(row.compact) + 1 <= budget:
                shown[n] = True
                budget -= size(row.compact) + 1
        expanded = [False] * len(self.rows)
        # Tag changes only once every changing item has its row: a smaller row may have
        # fitted after a larger one did not, and the room left must not go to details then.
        every_row = all(shown)
        for n, row in enumerate(self.rows):
            extra = size(row.full) - size(row.compact)
            if every_row and extra <= budget:
                expanded[n] = True
                budget -= extra
        return _Choice(warnings, shown, expanded, _take(self._lines(), budget))

    def _frame(self, whole: str) -> str:
        """Everything but the lines that may be left out, with the longest note they could
        need: what is kept is then sure to fit."""
        worst = _Choice([], [False] * len(self.rows), [False] * len(self.rows), [])
        return self._assemble(worst, whole, frame_only=True)

    def _assemble(self, choice: _Choice, whole: str, *, frame_only: bool = False) -> str:
        parts = [*self.head, *choice.warnings]
        kept = [
            r.full if expanded else r.compact
            for r, shown, expanded in zip(self.rows, choice.shown, choice.expanded, strict=True)
            if shown
        ]
        if self.groups:
            parts += self._grouped(choice, frame_only=frame_only)
        elif kept or (frame_only and self.rows):
            parts += [*_TABLE_HEAD, *kept, ""]
        if self.unchanged:
            parts += [f"<details><summary>{len(self.unchanged)} unchanged</summary>", ""]
            parts += [*choice.unchanged, "", "</details>", ""]
        note = self._note(choice, whole, worst=frame_only)
        if note:
            parts.append(note)
        return _join(parts, self.footer)

    def _grouped(self, choice: _Choice, *, frame_only: bool) -> list[str]:
        """One count line per account (always shown) and its rows' table, if any is kept."""
        parts: list[str] = []
        chosen = zip(self.rows, choice.shown, choice.expanded, strict=True)
        kept = [(r, r.full if expanded else r.compact) for r, shown, expanded in chosen if shown]
        for heading, line in self.groups.items():
            parts += [line, ""]
            rows = [text for r, text in kept if r.group == heading]
            if rows or (frame_only and any(r.group == heading for r in self.rows)):
                parts += [*_TABLE_HEAD, *rows, ""]
        return parts

    def _note(self, choice: _Choice, whole: str, *, worst: bool) -> str:
        """Exactly what was left out: items without a row, kind by kind; warnings; items
        whose tag changes are not shown. `worst`: as if everything were left out."""
        missing: Counter[str] = Counter()
        for row, shown in zip(self.rows, choice.shown, strict=True):
            if worst or not shown:
                missing[row.kind] += 1
        lines_left = len(self.unchanged) - (0 if worst else len(choice.unchanged))
        if lines_left:
            missing["unchanged"] += lines_left
        said = [_count(n, *self._noun(k)) for k, n in sorted(missing.items(), key=_note_order)]
        warnings_left = len(self.warnings) - (0 if worst else len(choice.warnings))
        if warnings_left:
            said.append(_count(warnings_left, "warning", "warnings"))
        collapsed = sum(
            r.full != r.compact and (worst or (shown and not expanded))
            for r, shown, expanded in zip(self.rows, choice.shown, choice.expanded, strict=True)
        )
        if not said and not collapsed:
            return ""
        what = f"left out: {', '.join(said)}" if said else ""
        if collapsed:
            tags = f"tag changes of {_count(collapsed, 'item', 'items')} not shown"
            what = f"{what}; {tags}" if what else tags
        where = (
            "`--format json` has it"
            if self.limit > MAX_CHARS
            else "the job summary and `--format json` have it"
        )
        return f"_To fit a comment, {what}. For the whole {whole}, {where}._"

    def _noun(self, kind: str) -> tuple[str, str]:
        if kind == "unchanged" and any(i.kind is not Kind.IMAGE for i in self.unchanged):
            return ("unchanged item", "unchanged items")
        return _NOUNS[kind]


@dataclass(frozen=True)
class _Choice:
    warnings: list[str]
    shown: list[bool]  # per row: has its one-line row
    expanded: list[bool]  # per row: with its tag changes
    unchanged: list[str]


def _note_order(entry: tuple[str, int]) -> int:
    return list(_NOUNS).index(entry[0])


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _take(lines: Sequence[str], budget: int) -> list[str]:
    """The lines that fit, in order; one too long for what is left does not stop shorter
    ones after it."""
    kept, used = [], 0
    for line in lines:
        if used + size(line) + 1 > budget:
            continue
        kept.append(line)
        used += size(line) + 1
    return kept


def _headline(document: Plan | Applied, kind: str, error: ReconcilerError | None) -> str:
    # Our own words and counts: no spec or AWS text, so no escaping needed.
    if isinstance(document, Applied):
        return applied_summary(document, stopped=error is not None)
    line = summary_line(document)
    if kind == "drift":
        verdict = "⚠️ Drift detected. " if document.drifted else "✅ In sync. "
        return verdict + line + " " + health_line(document)
    return line


def _warnings(document: Plan | Applied) -> list[str]:
    lines = []
    for item in document.items:
        if (item.is_error and not _replaced(document, item)) or stuck(item):
            what = (
                "Conflict"
                if item.action is Action.CONFLICT
                else ("Blocked" if item.action is Action.BLOCKED else "Stuck capture")
            )
            lines.append(
                f"> [!WARNING]\n> **{what}**: {_named(item)} ({md(item.region)}): "
                f"{md(item.reason)}\n"  # a blank line: consecutive alerts would merge
            )
    replaced = [i for i in document.items if _replaced(document, i)]
    if replaced and not isinstance(document, Applied):
        were = _count(len(replaced), "owned image", "owned images")
        copies = {is_copy(i) for i in replaced}
        again = (
            "captured or copied"
            if len(copies) > 1
            else ("copied" if True in copies else "captured")
        )
        lines.append(
            f"> [!CAUTION]\n> {were} in ERROR will be deleted and {again} again "
            "(`--replace-failed`).\n"
        )
    if document.unmanaged:
        lines.append(f"> [!CAUTION]\n> {_unmanaged_caution(document)}\n")
    if not isinstance(document, Applied):
        for item in image_kind.updates_due(document):
            about = image_kind.detail_of(item).update_description
            lines.append(
                f"> [!NOTE]\n> **AWS has updates** for {_named(item)} ({md(item.region)})"
                + (f": {md(about)}" if about else "")
                + f". {md(image_kind.update_hint(item))}.\n"
            )
    return lines


def _unmanaged_caution(document: Plan | Applied) -> str:
    if not isinstance(document, Applied):
        kept = [u for u in document.unmanaged if document.kept_by(u)]
        free = [u for u in document.unmanaged if not document.kept_by(u)]
        said = []
        if free and document.prune:
            said.append(f"{_owned(free)} that no spec declares will be deleted (`--prune`).")
        elif free:
            have, them = ("has", "it") if len(free) == 1 else ("have", "them")
            said.append(f"{_owned(free)} {have} no spec; `apply --prune` deletes {them}.")
        if kept:
            have, are, them = ("has", "is", "it") if len(kept) == 1 else ("have", "are", "them")
            said.append(f"{_owned(kept)} {have} no spec and {are} kept while a bundle uses {them}.")
        return " ".join(said)
    deleted = [u for u in document.unmanaged if u.result is Result.DELETED]
    kept_as_is = [u for u in document.unmanaged if u.result is Result.UNCHANGED]
    attempted = [
        u for u in document.unmanaged if u.result not in (Result.DELETED, Result.UNCHANGED)
    ]
    said = []
    if deleted:
        were = "was" if len(deleted) == 1 else "were"
        said.append(f"{_owned(deleted)} with no spec {were} deleted.")
    if attempted:
        said.append(
            f"{_owned(attempted)} with no spec "
            f"{'was' if len(attempted) == 1 else 'were'} not deleted: see why below."
        )
    if kept_as_is:
        have, them = ("has", "it") if len(kept_as_is) == 1 else ("have", "them")
        said.append(f"{_owned(kept_as_is)} {have} no spec; `apply --prune` deletes {them}.")
    return " ".join(said)


def _owned(found: Sequence[Unmanaged]) -> str:
    """`2 owned images`, `1 owned bundle and 2 owned images`: bundles first, as deleted."""
    bundles = sum(u.kind is Kind.BUNDLE for u in found)
    images = len(found) - bundles
    parts = [
        _count(bundles, "owned bundle", "owned bundles") if bundles else "",
        _count(images, "owned image", "owned images") if images else "",
    ]
    return " and ".join(p for p in parts if p)


def _replaced(document: Plan | Applied, item: PlanItem) -> bool:
    """A failed image deleted and captured again: shown so in the plan that does it, and in
    the result of an apply that tried (apply skips every other conflict)."""
    if isinstance(item, AppliedItem):
        return item.is_error and item.result is not Result.SKIPPED
    return document.replaces(item)


# --- rows ----------------------------------------------------------------------------------


def _item_row(document: Plan | Applied, item: PlanItem) -> _Row:
    replaced = _replaced(document, item)
    rank, kind = _rank(item, replaced)
    action = REPLACE_ICON if replaced else _ICON[item.action]
    parts = _facts(item, replaced, {a.id: a.name for a in document.accounts})
    if isinstance(item, AppliedItem):
        action += f" → **{item.result.value}**"
        if item.error and item.error != item.reason:  # a deferral repeats the plan's reason
            parts.append(md(item.error))
    # What a reviewer must see of a share is always in its row: the accounts it grants.
    if item.kind is Kind.SHARE:
        parts += [_account(c) for c in share_kind.detail_of(item).share_changes]
    # A conflict or blocked item changes no tag: listing the declared ones would only crowd
    # the problems out of a long plan. A replacement's tags are the new capture's.
    changes = [_change(c) for c in item.tag_changes] if not item.is_error or replaced else []
    start = f"| {action} | {_named(item)} | {md(item.region)} | "
    compact = parts + ([_count(len(changes), "tag change", "tag changes")] if changes else [])
    return _Row(
        rank,
        kind,
        start + ("<br>".join(compact) or " ") + " |",
        start + ("<br>".join(parts + changes) or " ") + " |",
        item.account,
    )


def _rank(item: PlanItem, replaced: bool) -> tuple[int, str]:
    if isinstance(item, AppliedItem) and item.result is Result.FAILED:
        return ERRORS, "replace" if replaced else _kind(item)
    if replaced:
        return DELETIONS, "replace"
    if item.is_error:
        return ERRORS, item.action.value
    if item.action is Action.CREATE:
        return CREATES, "create"
    if item.action is Action.UPDATE_IMAGE:  # a rollout: what desktops launch from changes
        return DELETIONS, _kind(item)
    return EXISTING, _kind(item)


def _kind(item: PlanItem) -> str:
    return "stuck" if item.action is Action.NO_OP else item.action.value


def _facts(item: PlanItem, replaced: bool, names: Mapping[str, str]) -> list[str]:
    """What a one-line row says: which image, source or bundle, and why (an error's reason is
    in its warning)."""
    if replaced:
        d = image_kind.detail_of(item)
        made = (
            f"copied again from {md(d.copy_from)}"
            if d.copy_from is not None
            else f"captured again from {_code(d.source_workspace_id)}"
        )
        return [f"{_code(item.image_id)} in ERROR: deleted, then {made}"]
    parts = []
    if item.kind is Kind.BUNDLE:
        parts += _bundle_facts(item)
    elif is_copy(item) and item.action in (Action.CREATE, Action.BLOCKED):
        parts.append(md(source_phrase(item, names)))
    elif item.kind is Kind.IMAGE and item.action in (Action.CREATE, Action.BLOCKED):
        parts.append(f"from {_code(image_kind.detail_of(item).source_workspace_id)}")
    elif item.image_id:
        parts.append(_code(item.image_id))
    if item.reason and not item.is_error:
        parts.append(md(item.reason))
    return parts


def _bundle_facts(item: PlanItem) -> list[str]:
    """A new bundle: its image, compute type and volumes; an existing one: its id, and the
    image it moves from and to."""
    d = bundle_kind.detail_of(item)
    if d.bundle_id is None:
        image = _code(d.image_name or item.image_id)
        volumes = f"user {d.user_volume_gib} GiB"
        if d.root_volume_gib is not None:
            volumes += f", root {d.root_volume_gib} GiB"
        return [f"image {image}, {md(d.compute_type)}, {volumes}"]
    parts = [_code(d.bundle_id)]
    moved = image_change(item)
    if moved:
        before = _code(d.image_before)
        if d.image_before_name:
            before = f"{_code(d.image_before_name)} ({before})"
        parts.append(f"image {before} → {_code(moved[1])}")
    return parts


def _account(change: ShareChange) -> str:
    if change.after:
        return f"+ account {_code(change.account)}"
    return f"− account {_code(change.account)}"


def _change(change: TagChange) -> str:
    if change.before is None:
        return f"+ {_code(change.key)}: {_code(change.after)}"
    if change.after is None:
        return f"− {_code(change.key)}: <del>{md(change.before)}</del>"
    return f"~ {_code(change.key)}: {_code(change.before)} → {_code(change.after)}"


def _unmanaged_row(document: Plan | Applied, u: Unmanaged) -> _Row:
    result = u.result if isinstance(u, AppliedUnmanaged) else None
    users = document.kept_by(u) if result is None else ()
    deleting = (document.prune and not users) if result is None else result is not Result.UNCHANGED
    label = DELETE_ICON if deleting else UNMANAGED_ICON
    if result is not None and result is not Result.UNCHANGED:
        label += f" → **{result.value}**"
    detail = f"{_code(u.resource_id)} no spec declares it"
    if users:
        names = ", ".join(_code(name) for name in users)
        detail += (
            f"; kept while bundle {names} uses it"
            if len(users) == 1
            else f"; kept while bundles {names} use it"
        )
    if isinstance(u, AppliedUnmanaged) and u.error:
        detail += f"<br>{md(u.error)}"
    text = f"| {label} | {_named(u)} | {md(u.region)} | {detail} |"
    failed = result is Result.FAILED
    unmanaged = "unmanaged-bundle" if u.kind is Kind.BUNDLE else "unmanaged"
    rank = ERRORS if failed else DELETIONS
    return _Row(rank, "delete" if deleting else unmanaged, text, text, u.account)


# --- a run that failed ---------------------------------------------------------------------


def error_markdown(
    err: ReconcilerError,
    *,
    kind: str = "plan",
    label: str | None = None,
    run: RunInfo | None = None,
    limit: int = MAX_CHARS,
) -> str:
    """The comment of a run that stopped on an error: the same marker as its plan, apply or
    drift comment (so it replaces it), what failed and what to do, and each spec problem."""
    what = _FAILED_HEADLINE.get(kind, "Run failed")
    head = [marker(kind, label), "", _heading("❌ " + what, label), ""]
    problems = [_problem_line(p) for p in err.problems] if isinstance(err, SpecError) else []
    # The hint after the problems: a SpecError's hint speaks of "the lines above".
    head += _error_block(err, what, hint=not problems)
    tail = [f"Hint: {md(err.hint)}"] if problems and err.hint else []
    footer = _footer(run)
    note_room = 200  # the note on problems left out
    budget = limit - size(_join([*head, *tail], footer)) - note_room
    kept = _take(problems, budget)
    parts = list(head)
    if problems:
        parts += [*kept, ""]
        if len(kept) < len(problems):
            left = _count(len(problems) - len(kept), "more problem", "more problems")
            parts += [f"_{left} left out to fit a comment; `reconciler validate` lists all._", ""]
    return _join([*parts, *tail], footer)


def _error_block(err: ReconcilerError, what: str, *, hint: bool = True) -> list[str]:
    lines = ["> [!CAUTION]", f"> **{what}**: {md(err.message)}"]
    if hint and err.hint:
        lines.append(f"> Hint: {md(err.hint)}")
    return [*lines, ""]


def _problem_line(p: SpecProblem) -> str:
    where = f"{p.file}:{p.line}:{p.column}" if p.line else p.file
    return f"- {_code(where)} {_code(p.field)}: {md(p.message)}"
