"""Saved plans (`plan --out`, `apply --plan-file`) and their staleness check.

The reviewed plan is the approval, as in Terraform: applying it performs no action that it
did not list. So before any change, the saved plan is compared with a fresh one: if the
specs changed, or the live state now calls for other actions, it is refused as stale and
the difference is explained. A planned create whose resource now exists and is owned (another
run made it) counts as converged; one that exists without the ownership tag makes the plan
stale, since adopting it was never reviewed. A saved plan deletes exactly the deletions it
showed: an unmanaged resource it showed kept, deleted or listed that now calls for
something else makes it stale too.

`apply --reviewed-digest` holds a fresh plan to the digest of the one reviewed (a pull
request's plan comment), the same promise where only the digest travelled.

The file is the contract's plan document plus a checksum of its content, so a corrupt or
hand-edited file is refused rather than applied.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deepdiff import DeepDiff
from pydantic import ValidationError

from reconciler.errors import PlanFileError, StalePlanError
from reconciler.plan import FORMAT_VERSION, Action, Key, Plan, PlanItem

CHECKSUM_KEY = "plan_checksum"


def save_plan(plan: Plan, path: Path) -> None:
    document = plan.model_dump(mode="json")
    document["plan_digest"] = plan.digest()
    document[CHECKSUM_KEY] = _checksum(document)
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        raise PlanFileError(
            f"plan file {path} cannot be written: {err.strerror or err}",
            hint="pass --out a file in a folder that exists and is writable",
        ) from err


def load_plan(path: Path) -> Plan:
    """The saved plan, or a clear error for a missing, corrupt, edited or foreign file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise PlanFileError(
            f"plan file {path} does not exist", hint="run `reconciler plan --out FILE` first"
        ) from err
    except (OSError, UnicodeDecodeError) as err:
        raise PlanFileError(f"plan file {path} cannot be read: {err}") from err
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise PlanFileError(
            f"plan file {path} is corrupt (not JSON: {err.msg} at line {err.lineno})",
            hint="save the plan again with `reconciler plan --out FILE`",
        ) from err
    if not isinstance(document, dict):
        raise PlanFileError(f"plan file {path} is not a saved plan")
    version = document.get("format_version")
    if version == 1:
        raise PlanFileError(
            f"plan file {path} was saved in plan format 1, by a reconciler from before copies, "
            f"sharing and bundles; this one applies format {FORMAT_VERSION} only",
            hint="plan again (`reconciler plan --out FILE`), review it, and apply that file",
        )
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"plan file {path} has format_version {version!r}; this reconciler reads "
            f"{FORMAT_VERSION}",
            hint="plan again with this version of the reconciler",
        )
    if document.pop(CHECKSUM_KEY, None) != _checksum(document):
        raise PlanFileError(
            f"plan file {path} was edited or damaged after it was saved (checksum mismatch)",
            hint="a saved plan is applied as reviewed: plan again instead of editing it",
        )
    for derived in ("summary", "plan_digest"):  # recomputed from the items
        document.pop(derived, None)
    try:
        return Plan.model_validate(document)
    except ValidationError as err:
        raise PlanFileError(
            f"plan file {path} is not a valid plan ({err.error_count()} problems)",
            hint="save the plan again with `reconciler plan --out FILE`",
        ) from err


def settle(
    saved: Plan, fresh: Plan, reread: Callable[[PlanItem], PlanItem] | None = None
) -> tuple[Plan, frozenset[Key]]:
    """The plan to apply, and the keys (kind, account, region, name) of planned creates that now
    exist.

    Raises StalePlanError, before any change, when the specs changed or the live state
    calls for actions other than those reviewed. `reread` plans an item again from its
    resource's tags read afresh (DescribeTags): a planned create now met by a resource
    the tagging API shows unowned may be one another run has just made and tagged, which
    that eventually consistent API does not show yet.
    """
    if saved.specs_digest != fresh.specs_digest:
        raise StalePlanError(
            "saved plan is stale: the specs changed since it was saved "
            f"({saved.specs_digest[:19]}… → {fresh.specs_digest[:19]}…)",
            hint="run `reconciler plan --out FILE` again and review the new plan",
        )
    if saved.accounts != fresh.accounts:
        raise StalePlanError(
            "saved plan is stale: it covered other accounts "
            f"({_accounts(saved)}) than this run ({_accounts(fresh)})",
            hint="apply with the --account options the plan was made with, or run "
            "`reconciler plan --out FILE` again and review the new plan",
        )
    if reread is not None:
        fresh = _reread_raced_creates(saved, fresh, reread)
    fresh_items = {i.key: i for i in fresh.items}
    converged = frozenset(
        key
        for key, item in ((k, fresh_items.get(k)) for k in _keys(saved))
        if item is not None and _created_meanwhile(_saved_item(saved, key), item)
    )
    before = saved.decisions(skip=converged)
    after = fresh.decisions(skip=converged)
    if before != after:
        raise StalePlanError(
            "saved plan is stale: the live state now calls for other actions:\n"
            + _explain(before, after),
            hint="run `reconciler plan --out FILE` again and review the new plan",
        )
    return fresh, converged


DIGEST_FORMAT = re.compile(r"sha256:[0-9a-f]{64}")


def check_reviewed(fresh: Plan, reviewed_digest: str) -> None:
    """Raises StalePlanError, before any change, unless the fresh plan is the one reviewed:
    its digest (`Plan.digest`) is `reviewed_digest`. Only the digest was kept, so what
    differs is said as what the plan would do now, for the reviewer to hold against the
    plan they saw."""
    now = fresh.digest()
    if now == reviewed_digest:
        return
    decided = fresh.decisions()
    changes = [
        f"{what}: {decision['action']}"
        for what, decision in decided.items()
        if not what.startswith("(") and decision["action"] != Action.NO_OP.value
    ]
    changes += [f"unmanaged {u}" for u in decided["(unmanaged)"]]
    flags = [flag for flag, on in decided["(deletions)"].items() if on]
    shown = changes[:30] + ([f"... and {len(changes) - 30} more"] if len(changes) > 30 else [])
    raise StalePlanError(
        "the plan now is not the plan that was reviewed "
        f"(reviewed {reviewed_digest[:19]}…, now {now[:19]}…); nothing was changed. "
        f"What it would do now ({', '.join(flags) or 'no deletions asked'}):\n"
        + "\n".join(f"  - {line}" for line in shown or ["nothing: the account matches"]),
        hint="the specs or the account changed since the review (another merge, a change "
        "made by hand): review the plan again (`reconciler plan`) and apply that one",
    )


def _accounts(plan: Plan) -> str:
    shown = [f"{a.name} {a.id}" + (f" via {a.role}" if a.role else "") for a in plan.accounts]
    return ", ".join(shown) or "the run's own account"


def _reread_raced_creates(saved: Plan, fresh: Plan, reread: Callable[[PlanItem], PlanItem]) -> Plan:
    planned_creates = {i.key for i in saved.items if i.action is Action.CREATE}
    items = tuple(
        reread(i) if i.key in planned_creates and i.action is Action.ADOPT else i
        for i in fresh.items
    )
    return fresh.model_copy(update={"items": items})


def _created_meanwhile(saved: PlanItem, fresh: PlanItem) -> bool:
    """A planned create whose image or bundle now exists as declared and owned (another run
    of this reconciler made it), even if its tags still need writing. One without the
    ownership tag is not: adopting it was never reviewed. Nor is one in conflict (another
    description, or ERROR) or blocked: the live state then calls for other actions, and
    the plan is stale."""
    # Not `adopt`: that is what a resource without the ownership tag calls for.
    usable = fresh.action in (Action.NO_OP, Action.UPDATE_TAGS)
    return saved.action is Action.CREATE and usable and fresh.resource_id is not None


def _keys(plan: Plan) -> list[Key]:
    return [i.key for i in plan.items]


def _saved_item(plan: Plan, key: Key) -> PlanItem:
    return next(i for i in plan.items if i.key == key)


def _explain(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    diff = DeepDiff(before, after, ignore_order=True, verbose_level=2)
    lines = diff.pretty().splitlines() if diff else ["(no detail)"]
    return "\n".join(f"  - {line}" for line in lines[:30])


def _checksum(document: Mapping[str, Any]) -> str:
    body = {k: v for k, v in document.items() if k != CHECKSUM_KEY}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()
