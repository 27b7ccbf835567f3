"""Plans and apply results as text, in Terraform's habits: `+` create, `~` update,
`-` delete, one line per item with its changes (tags, accounts, a bundle's image) under it,
and a summary line. An image is shown by its name; a bundle says `bundle`, and a share is
shown by its action (`update-sharing`) or says `sharing of`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from reconciler.kinds import bundle as bundle_kind
from reconciler.kinds import image as image_kind
from reconciler.kinds import share as share_kind
from reconciler.kinds.image import is_copy, stuck
from reconciler.kinds.share import ShareChange
from reconciler.plan import Action, Key, Kind, Plan, PlanItem, TagChange, Unmanaged
from reconciler.render.escape import terminal_safe as safe
from reconciler.results import Applied, AppliedItem, AppliedUnmanaged, Result

_SYMBOL = {
    Action.CREATE: ("+", "green"),
    Action.UPDATE_TAGS: ("~", "yellow"),
    Action.ADOPT: ("~", "yellow"),
    Action.UPDATE_SHARING: ("~", "yellow"),
    Action.UPDATE_IMAGE: ("~", "yellow"),
    Action.CONFLICT: ("!", "red"),
    Action.BLOCKED: ("!", "red"),
    Action.NO_OP: (" ", None),
}
_RESULT_COLOUR = {
    Result.CREATED: "green",
    Result.CONVERGED: "green",
    Result.TAGS_UPDATED: "yellow",
    Result.ADOPTED: "yellow",
    Result.SHARING_UPDATED: "yellow",
    Result.IMAGE_UPDATED: "yellow",
    Result.DELETED: "red",
    Result.DEFERRED: "cyan",
    Result.FAILED: "red",
    Result.SKIPPED: "red",
    Result.UNCHANGED: None,
}


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, colour: str | None, bold: bool = False) -> str:
        if not self.color or (colour is None and not bold):
            return text
        import click

        return click.style(text, fg=colour, bold=bold)


def render_plan(
    plan: Plan,
    out: TextIO,
    *,
    color: bool = False,
    verbose: bool = False,
    prune: bool = False,
    replace_failed: bool = False,
) -> None:
    """The plan as Terraform shows one. The deletions shown are the plan's own (`plan.prune`,
    `plan.replace_failed`); the keyword arguments only add to them, for callers that built
    the plan before it recorded those choices."""
    plan = with_choices(plan, prune=prune, replace_failed=replace_failed)
    paint = _Painter(color)

    def shown(part: Plan) -> list[PlanItem]:
        return [i for i in part.items if i.action is not Action.NO_OP or verbose or stuck(i)]

    acts = bool(shown(plan) or plan.unmanaged)
    if acts:
        out.write("Reconciler will perform the following actions:\n\n")
    first = True
    for heading, part in by_account(plan):
        if heading and (shown(part) or part.unmanaged):
            gap, first = "" if first else "\n", False
            out.write(gap + paint(f"{safe(heading)}:", None, bold=True) + "\n")
        _write_items(part, shown(part), out, paint)
    _write_updates(plan, {i.key for i in shown(plan)}, out, paint, first=not acts)
    out.write("\n" + summary_line(plan) + "\n")
    errors = [i for i in plan.items if i.is_error and not plan.replaces(i)]
    if errors:
        out.write(
            paint(
                f"Error: {_errors_phrase(plan)} must be fixed before apply can converge.",
                "red",
                bold=True,
            )
            + "\n"
        )


def _write_updates(
    plan: Plan, shown: set[Key], out: TextIO, paint: _Painter, *, first: bool
) -> None:
    """The declared images AWS has updates for, under a heading of their own: those not
    shown above with their hint (unchanged images, which a plan does not list). `first`:
    nothing was written before it."""
    due = [i for i in image_kind.updates_due(plan) if i.key not in shown]
    if not due:
        return
    heading = paint("AWS has updates for these images:", None, bold=True)
    out.write(("" if first else "\n") + heading + "\n")
    for item in due:
        about = image_kind.detail_of(item).update_description
        line = f"  {safe(item.name)} {_where(item)}" + (f": {safe(about)}" if about else "")
        out.write(line + "\n      " + paint(safe(image_kind.update_hint(item)), "cyan") + "\n")


def by_account(plan: Plan) -> list[tuple[str | None, Plan]]:
    """The plan in parts, one per account headed by its name and id, when it covers more
    than one account; else the whole plan, unheaded."""
    if len(plan.accounts) < 2:
        return [(None, plan)]
    parts: list[tuple[str | None, Plan]] = []
    for account in plan.accounts:
        part = plan.model_copy(
            update={
                "items": tuple(i for i in plan.items if i.account == account.id),
                "unmanaged": tuple(u for u in plan.unmanaged if u.account == account.id),
            }
        )
        parts.append((f"Account {account.name} ({account.id})", part))
    return parts


def _write_items(plan: Plan, shown: list[PlanItem], out: TextIO, paint: _Painter) -> None:
    """One account's part of the plan (or the whole plan of one account)."""
    # Deletions and problems first: they are what a reviewer must not miss.
    if plan.unmanaged and plan.prune:
        _write_pruned(plan, out, paint)
    names = {a.id: a.name for a in plan.accounts}
    due = {i.key for i in image_kind.updates_due(plan)}
    for item in sorted(shown, key=lambda i: (not i.is_error, i.action is Action.NO_OP)):
        replace = plan.replaces(item)
        out.write(_item_line(item, paint, replace, names) + "\n")
        if item.key in due:
            out.write("      " + paint(safe(image_kind.update_hint(item)), "cyan") + "\n")
        for line in _change_lines(item, paint):
            out.write(line + "\n")
        if item.state == "ERROR" and not replace:
            continue  # a failed image's tags are its replacement's: shown only with it
        for change in item.tag_changes:
            out.write(_tag_line(change, paint) + "\n")
    if plan.unmanaged and not plan.prune:
        _write_unmanaged(plan, out, paint)


def kept_phrase(users: tuple[str, ...]) -> str:
    if len(users) == 1:
        return f"kept while bundle {users[0]} uses it"
    return f"kept while bundles {', '.join(users)} use it"


def _write_pruned(plan: Plan, out: TextIO, paint: _Painter) -> None:
    """The deletions of --prune, bundles first (apply deletes them first), and the images
    a bundle keeps, in their place."""
    doomed = [u for u in plan.unmanaged if not plan.kept_by(u)]
    if doomed:
        head = f"  Warning: --prune deletes these owned {_kinds(doomed)}, which no spec declares:"
        out.write(paint(head, "red", bold=True) + "\n")
    else:
        out.write(paint("  --prune keeps these owned images, which no spec declares:", "yellow"))
        out.write("\n")
    for u in sorted(plan.unmanaged, key=lambda u: u.kind is not Kind.BUNDLE):
        users = plan.kept_by(u)
        what = f"{_unmanaged_named(u)} ({u.region}) {u.resource_id}"
        if users:
            out.write(paint(f"    keep        {what}: {safe(kept_phrase(users))}", "yellow") + "\n")
        else:
            out.write(paint(f"  - delete      {what}", "red") + "\n")
    out.write("\n")


def _write_unmanaged(plan: Plan, out: TextIO, paint: _Painter) -> None:
    """Owned resources no spec declares, without --prune: bundles apart from images."""
    for kind in (Kind.BUNDLE, Kind.IMAGE):
        found = [u for u in plan.unmanaged if u.kind is kind]
        if not found:
            continue
        out.write(
            f"\nOwned {kind.value}s that no spec declares (apply --prune would delete them):\n"
        )
        for u in found:
            users = plan.kept_by(u)
            tail = f": {safe(kept_phrase(users))}" if users else ""
            line = f"    {safe(u.name)} ({u.region}) {u.resource_id}{tail}"
            out.write(paint(line, "yellow") + "\n")


def _kinds(found: list[Unmanaged]) -> str:
    kinds = {u.kind for u in found}
    if kinds == {Kind.BUNDLE}:
        return "bundles"
    return "bundles and images" if Kind.BUNDLE in kinds else "images"


def _unmanaged_named(u: Unmanaged) -> str:
    return f"bundle {safe(u.name)}" if u.kind is Kind.BUNDLE else safe(u.name)


def health_line(plan: Plan) -> str:
    """The state of every declared image that exists: AVAILABLE, PENDING or ERROR."""
    states: dict[str, int] = {}
    images = [i for i in plan.items if i.kind is Kind.IMAGE]
    for item in images:
        if item.state:
            states[item.state] = states.get(item.state, 0) + 1
    how_many_stuck = sum(stuck(i) for i in images)
    parts = [f"{states.get(s, 0)} {s}" for s in ("AVAILABLE", "PENDING", "ERROR")]
    if how_many_stuck:
        parts[1] += f" ({how_many_stuck} stuck for over 2 hours)"
    return "Health: " + ", ".join(parts) + "."


def render_health(plan: Plan, out: TextIO, *, color: bool = False) -> None:
    paint = _Painter(color)
    out.write(health_line(plan) + "\n")
    for item in plan.items:
        if item.kind is Kind.IMAGE and item.state in ("PENDING", "ERROR"):
            colour = "red" if item.state == "ERROR" or stuck(item) else "cyan"
            line = f"  {item.state:<9} {safe(item.name)} ({item.region}) {item.image_id}"
            out.write(paint(line, colour) + "\n")


def with_choices(plan: Plan, *, prune: bool = False, replace_failed: bool = False) -> Plan:
    """`plan` with the deletions it shows: its own choices, or those the caller adds."""
    if (prune and not plan.prune) or (replace_failed and not plan.replace_failed):
        update = {
            "prune": plan.prune or prune,
            "replace_failed": plan.replace_failed or replace_failed,
        }
        return plan.model_copy(update=update)
    return plan


def plan_counts(plan: Plan) -> dict[str, int]:
    """What the plan does and finds, counted as it is shown: a replaced image is a
    replacement, not a conflict; an unmanaged resource the plan prunes is a deletion, and
    an unmanaged image a bundle keeps stays unmanaged."""
    counts = dict.fromkeys(
        (
            "create",
            "update",
            "update-sharing",
            "update-image",
            "adopt",
            "replace",
            "delete",
            "unchanged",
            "stuck",
            "unmanaged",
            "conflict",
            "blocked",
        ),
        0,
    )
    for item in plan.items:
        if plan.replaces(item):
            counts["replace"] += 1
        else:
            counts[_COUNTED_AS[item.action]] += 1
        counts["stuck"] += stuck(item)
    for u in plan.unmanaged:
        counts["delete" if plan.prune and not plan.kept_by(u) else "unmanaged"] += 1
    return counts


_COUNTED_AS = {
    Action.CREATE: "create",
    Action.UPDATE_TAGS: "update",
    Action.UPDATE_SHARING: "update-sharing",
    Action.UPDATE_IMAGE: "update-image",
    Action.ADOPT: "adopt",
    Action.NO_OP: "unchanged",
    Action.CONFLICT: "conflict",
    Action.BLOCKED: "blocked",
}


def summary_line(plan: Plan) -> str:
    """One line that agrees with everything listed above it: every change, deletion and
    replacement counted; "No changes" only when nothing is to do and nothing is wrong."""
    c = plan_counts(plan)
    changes = [
        f"{c[key]} to {verb}"
        for key, verb in (
            ("create", "create"),
            ("update", "update"),
            ("update-sharing", "update sharing"),
            ("update-image", "update image"),
            ("adopt", "adopt"),
            ("replace", "replace"),
            ("delete", "delete"),
        )
        if c[key]
    ]
    unchanged = f"{c['unchanged']} unchanged"
    if c["stuck"]:
        unchanged += f" ({c['stuck']} capture{'s' if c['stuck'] > 1 else ''} stuck)"
    rest = [
        unchanged,
        f"{c['unmanaged']} unmanaged" if c["unmanaged"] else "",
        f"{c['conflict']} in conflict" if c["conflict"] else "",
        f"{c['blocked']} blocked" if c["blocked"] else "",
    ]
    if not changes and not any(rest[1:]) and not c["stuck"]:
        who = "The accounts match" if len(plan.accounts) > 1 else "The account matches"
        return f"No changes. {who} the specs ({c['unchanged']} unchanged)."
    head = ", ".join(changes) or "Nothing to change"
    return f"Plan: {head}. {', '.join(r for r in rest if r)}."


def _errors_phrase(plan: Plan) -> str:
    c = plan_counts(plan)
    parts = [
        f"{c['conflict']} conflict{'s' if c['conflict'] > 1 else ''}" if c["conflict"] else "",
        f"{c['blocked']} blocked item{'s' if c['blocked'] > 1 else ''}" if c["blocked"] else "",
    ]
    return " and ".join(p for p in parts if p)


def named(item: PlanItem, *, by_action: bool = True) -> str:
    """The item's name as a line shows it: a bundle says so; a share too, unless its action
    or result (`update-sharing`, `sharing-updated`) already does (`by_action`)."""
    name = safe(item.name)
    if item.kind is Kind.BUNDLE:
        return f"bundle {name}"
    if item.kind is Kind.SHARE and not by_action:
        return f"sharing of {name}"
    return name


def place(x: PlanItem | Unmanaged) -> str:
    """Where a resource lives, as lines outside an account's heading say it: its region,
    after its account's name in a run over accounts."""
    account = x.account_name or x.account
    return f"{account}, {x.region}" if account else x.region


def _where(item: PlanItem) -> str:
    resource = item.resource_id
    return f"({item.region})" + (f" {resource}" if resource else "")


def source_phrase(item: PlanItem, names: Mapping[str, str]) -> str:
    """Where a copy or an import comes from: `copy of REGION`, or `import of NAME from
    ACCOUNT (REGION)` (the account by its name in the map, else its id)."""
    d = image_kind.detail_of(item)
    if d.source_account is None:
        return f"copy of {d.copy_from or ''}"
    account = d.source_account
    return f"import of {d.source_name} from {names.get(account, account)} ({d.copy_from})"


def _item_line(
    item: PlanItem, paint: _Painter, replace: bool = False, names: Mapping[str, str] = {}
) -> str:
    symbol, colour = _SYMBOL[item.action]
    label, reason = item.action.value, item.reason
    if replace:  # Terraform's mark for destroy-then-create
        symbol, colour, label = "-/+", "yellow", "replace"
        again = (
            "copies it again"
            if is_copy(item)
            else "makes it again"
            if image_kind.is_update(item)
            else "captures it again"
        )
        reason = f"in ERROR: --replace-failed deletes it and {again}"
    head = f"  {symbol} {label:<11} {named(item, by_action=item.action is Action.UPDATE_SHARING)}"
    head += f" {_where(item)}"
    brief = None
    if is_copy(item) and (item.action in (Action.CREATE, Action.BLOCKED) or replace):
        head += f" {safe(source_phrase(item, names))}"
        if reason and item.action is Action.CREATE and not replace:
            head, reason = f"{head}, {safe(reason)}", None  # "after the capture": one line
    elif image_kind.is_update(item) and (item.action in (Action.CREATE, Action.BLOCKED) or replace):
        head += f" with AWS's updates to {safe(image_kind.detail_of(item).updated_from or '')}"
    elif item.kind is Kind.IMAGE and (item.action is Action.CREATE or replace):
        head += f" from {image_kind.detail_of(item).source_workspace_id}"
    elif item.kind is Kind.BUNDLE and bundle_kind.detail_of(item).bundle_id is None:
        head += f" with image {safe(_image_after(item))}"
        brief = _bundle_brief(item)
    line = paint(head, colour)
    if brief:
        line += "\n      " + brief
    if reason:
        line += "\n      " + paint(safe(reason), "red" if item.is_error or stuck(item) else "cyan")
    return line


def _bundle_brief(item: PlanItem) -> str:
    d = bundle_kind.detail_of(item)
    parts = [f"compute type {safe(d.compute_type or '')}"]
    if d.user_volume_gib is not None:
        parts.append(f"user volume {d.user_volume_gib} GiB")
    if d.root_volume_gib is not None:
        parts.append(f"root volume {d.root_volume_gib} GiB")
    return ", ".join(parts)


def _image_after(item: PlanItem) -> str:
    """The image a bundle item declares: the image spec's name, or the `image_id`."""
    return bundle_kind.detail_of(item).image_name or item.image_id or "?"


def image_change(item: PlanItem) -> tuple[str, str] | None:
    """A bundle's image change as (before, after), when the plan moves it; the before image
    named when the account owns it: `name (wsi-...)`, else its id."""
    if not bundle_kind.moves_image(item):
        return None
    d = bundle_kind.detail_of(item)
    before = d.image_before or ""
    if d.image_before_name:
        before = f"{d.image_before_name} ({before})"
    return before, _image_after(item)


def _change_lines(item: PlanItem, paint: _Painter) -> list[str]:
    """The changes other than tags: a bundle's image, the accounts a share adds or removes."""
    lines = []
    moved = image_change(item)
    if moved:
        before, after = moved
        lines.append(paint(f"      ~ image {safe(before)} -> {safe(after)}", "yellow"))
    if item.kind is Kind.SHARE:
        lines += [_account_line(c, paint) for c in share_kind.detail_of(item).share_changes]
    return lines


def _account_line(change: ShareChange, paint: _Painter) -> str:
    account = safe(change.account)
    if change.after:
        return paint(f"      + account {account}", "green")
    return paint(f"      - account {account}", "red")


def _tag_line(change: TagChange, paint: _Painter) -> str:
    key = safe(change.key)
    if change.before is None:
        return paint(f"      + tag {key} = {_q(change.after)}", "green")
    if change.after is None:
        return paint(f"      - tag {key} = {_q(change.before)}", "red")
    return paint(f"      ~ tag {key} = {_q(change.before)} -> {_q(change.after)}", "yellow")


def _q(value: str | None) -> str:
    return '"' + safe(value or "").replace('"', '\\"') + '"'


def render_applied(
    applied: Applied, out: TextIO, *, color: bool = False, stopped: bool = False
) -> None:
    """The results; `stopped`: the run ended on an error after these (the CLI prints the
    error on stderr), so the summary says the apply failed."""
    paint = _Painter(color)
    first = True
    for heading, part in by_account(applied):
        assert isinstance(part, Applied)
        changed = [i for i in part.items if i.result is not Result.UNCHANGED]
        deleted = [u for u in part.unmanaged if _shown_applied(part, u)]
        if heading and (changed or deleted):
            gap, first = "" if first else "\n", False
            out.write(gap + paint(f"{safe(heading)}:", None, bold=True) + "\n")
        for item in changed:
            out.write(_result_line(item, paint) + "\n")
        _write_deletions(part, out, paint)
    out.write("\n" + applied_summary(applied, stopped=stopped) + "\n")


def _shown_applied(applied: Applied, u: AppliedUnmanaged) -> bool:
    """A deletion made, failed or skipped; or one --prune did not make because a bundle
    still uses the image (unchanged, with the reason)."""
    return u.result is not Result.UNCHANGED or (applied.prune and bool(u.error))


def _write_deletions(applied: Applied, out: TextIO, paint: _Painter) -> None:
    for u in sorted(applied.unmanaged, key=lambda u: u.kind is not Kind.BUNDLE):
        if _shown_applied(applied, u):
            kept = u.result is Result.UNCHANGED and (u.error or "").startswith("kept")
            label = "kept" if kept else u.result.value
            line = f"  {label:<12} {_unmanaged_named(u)} ({u.region}) {u.resource_id}"
            out.write(
                paint(line, _RESULT_COLOUR[u.result])
                + (f"\n      {safe(u.error)}" if u.error else "")
                + "\n"
            )


def _result_line(item: AppliedItem, paint: _Painter) -> str:
    what = named(item, by_action=item.result is Result.SHARING_UPDATED)
    line = paint(f"  {item.result.value:<12} {what} {_where(item)}", _RESULT_COLOUR[item.result])
    if item.error:
        line += "\n      " + safe(item.error)
    return line


def applied_summary(applied: Applied, *, stopped: bool = False) -> str:
    """Counts of results; `stopped`: the run then ended on an error (for example while
    waiting), so it failed whatever the items say."""
    counts: dict[str, int] = {}
    for item in applied.items:
        counts[item.result.value] = counts.get(item.result.value, 0) + 1
    for u in applied.unmanaged:
        if u.result is not Result.UNCHANGED:
            counts[u.result.value] = counts.get(u.result.value, 0) + 1
    order = [r.value for r in Result]
    body = ", ".join(f"{counts[r]} {r}" for r in order if counts.get(r))
    head = (
        "Apply interrupted"
        if applied.interrupted
        else ("Apply failed" if applied.failed or stopped else "Apply complete")
    )
    return f"{head}: {body or 'nothing to do'}."
