"""Plans and apply results as text, in Terraform's habits: `+` create, `~` update,
`-` delete, one line per item with its tag changes under it, and a summary line."""

from __future__ import annotations

from typing import TextIO

from reconciler.plan import Action, Plan, PlanItem, TagChange
from reconciler.render.escape import terminal_safe as safe
from reconciler.results import Applied, AppliedItem, Result

_SYMBOL = {
    Action.CREATE: ("+", "green"),
    Action.UPDATE_TAGS: ("~", "yellow"),
    Action.ADOPT: ("~", "yellow"),
    Action.CONFLICT: ("!", "red"),
    Action.BLOCKED: ("!", "red"),
    Action.NO_OP: (" ", None),
}
_RESULT_COLOUR = {
    Result.CREATED: "green",
    Result.CONVERGED: "green",
    Result.TAGS_UPDATED: "yellow",
    Result.ADOPTED: "yellow",
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
    prune, paint = plan.prune, _Painter(color)
    shown = [i for i in plan.items if i.action is not Action.NO_OP or verbose or i.stuck]
    if shown or plan.unmanaged:
        out.write("Reconciler will perform the following actions:\n\n")
    # Deletions and problems first: they are what a reviewer must not miss.
    if plan.unmanaged and prune:
        out.write(
            paint(
                "  Warning: --prune deletes these owned images, which no spec declares:",
                "red",
                bold=True,
            )
            + "\n"
        )
        for u in plan.unmanaged:
            line = f"  - delete      {safe(u.name)} ({u.region}) {u.image_id}"
            out.write(paint(line, "red") + "\n")
        out.write("\n")

    for item in sorted(shown, key=lambda i: (not i.is_error, i.action is Action.NO_OP)):
        out.write(_item_line(item, paint, plan.replaces(item)) + "\n")
        if item.state == "ERROR" and not plan.replaces(item):
            continue  # a failed image's tags are its replacement's: shown only with it
        for change in item.tag_changes:
            out.write(_tag_line(change, paint) + "\n")
    if plan.unmanaged and not prune:
        out.write("\nOwned images that no spec declares (apply --prune would delete them):\n")
        for u in plan.unmanaged:
            out.write(paint(f"    {safe(u.name)} ({u.region}) {u.image_id}", "yellow") + "\n")
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


def health_line(plan: Plan) -> str:
    """The state of every declared image that exists: AVAILABLE, PENDING or ERROR."""
    states: dict[str, int] = {}
    for item in plan.items:
        if item.state:
            states[item.state] = states.get(item.state, 0) + 1
    stuck = sum(i.stuck for i in plan.items)
    parts = [f"{states.get(s, 0)} {s}" for s in ("AVAILABLE", "PENDING", "ERROR")]
    if stuck:
        parts[1] += f" ({stuck} stuck for over 2 hours)"
    return "Health: " + ", ".join(parts) + "."


def render_health(plan: Plan, out: TextIO, *, color: bool = False) -> None:
    paint = _Painter(color)
    out.write(health_line(plan) + "\n")
    for item in plan.items:
        if item.state in ("PENDING", "ERROR"):
            colour = "red" if item.state == "ERROR" or item.stuck else "cyan"
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
    replacement, not a conflict; an unmanaged image the plan prunes is a deletion."""
    counts = dict.fromkeys(
        (
            "create",
            "update",
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
        counts["stuck"] += item.stuck
    counts["delete" if plan.prune else "unmanaged"] += len(plan.unmanaged)
    return counts


_COUNTED_AS = {
    Action.CREATE: "create",
    Action.UPDATE_TAGS: "update",
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
        return f"No changes. Your images match the specs ({c['unchanged']} unchanged)."
    head = ", ".join(changes) or "Nothing to change"
    return f"Plan: {head}. {', '.join(r for r in rest if r)}."


def _errors_phrase(plan: Plan) -> str:
    c = plan_counts(plan)
    parts = [
        f"{c['conflict']} conflict{'s' if c['conflict'] > 1 else ''}" if c["conflict"] else "",
        f"{c['blocked']} blocked item{'s' if c['blocked'] > 1 else ''}" if c["blocked"] else "",
    ]
    return " and ".join(p for p in parts if p)


def _item_line(item: PlanItem, paint: _Painter, replace: bool = False) -> str:
    symbol, colour = _SYMBOL[item.action]
    label = item.action.value
    if replace:  # Terraform's mark for destroy-then-create
        symbol, colour, label = "-/+", "yellow", "replace"
        item = item.model_copy(
            update={"reason": "in ERROR: --replace-failed deletes it and captures it again"}
        )
    where = f"({item.region})" + (f" {item.image_id}" if item.image_id else "")
    head = f"  {symbol} {label:<11} {safe(item.name)} {where}"
    if item.action is Action.CREATE or replace:
        head += f" from {item.source_workspace_id}"
    line = paint(head, colour)
    if item.reason:
        line += "\n      " + paint(
            safe(item.reason), "red" if item.is_error or item.stuck else "cyan"
        )
    return line


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
    for item in applied.items:
        if item.result is Result.UNCHANGED:
            continue
        out.write(_result_line(item, paint) + "\n")
    for u in applied.unmanaged:
        if u.result is not Result.UNCHANGED:
            line = f"  {u.result.value:<12} {safe(u.name)} ({u.region}) {u.image_id}"
            out.write(
                paint(line, _RESULT_COLOUR[u.result])
                + (f"\n      {safe(u.error)}" if u.error else "")
                + "\n"
            )
    out.write("\n" + applied_summary(applied, stopped=stopped) + "\n")


def _result_line(item: AppliedItem, paint: _Painter) -> str:
    where = f"({item.region})" + (f" {item.image_id}" if item.image_id else "")
    line = paint(
        f"  {item.result.value:<12} {safe(item.name)} {where}", _RESULT_COLOUR[item.result]
    )
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
