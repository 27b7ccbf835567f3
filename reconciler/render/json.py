"""Plans, apply results and failed runs as the contract's JSON documents."""

from __future__ import annotations

import json
from typing import Any

from reconciler.errors import ReconcilerError, SpecError
from reconciler.kinds.image import detail_of, updates_due
from reconciler.plan import FORMAT_VERSION, Plan, PlanItem
from reconciler.render.problems import problem_dict
from reconciler.results import Applied


def dumps(
    document: Plan | Applied, *, error: ReconcilerError | None = None, drift: bool = False
) -> str:
    """The document as JSON; comes from the typed models, never assembled by hand.

    A plan carries `plan_digest`, what a reviewer approves (`Plan.digest`). `error`: the
    error that stopped the run after these results (an apply that failed while waiting); it
    is added as the document's `error`, as in `error_document`. `drift`: a drift report,
    which lists `updates_available` (the declared images AWS has updates for, that no spec
    makes an updated image of)."""
    data = document.model_dump(mode="json")
    if not isinstance(document, Applied):
        data["plan_digest"] = document.digest()
    if drift and not isinstance(document, Applied):
        data["updates_available"] = [_update(i) for i in updates_due(document)]
    if error is not None:
        data["error"] = error_dict(error)
    return _dumps(data)


def _update(item: PlanItem) -> dict[str, Any]:
    return {
        "name": item.name,
        "region": item.region,
        "account": item.account or None,
        "account_name": item.account_name,
        "image_id": item.image_id,
        "description": detail_of(item).update_description,
    }


def error_document(err: ReconcilerError) -> str:
    """The one document of a run that stopped on an error, so that `--format json` always
    prints JSON: `{"format_version", "error": {"message", "hint", "problems"}}`."""
    return _dumps({"format_version": FORMAT_VERSION, "error": error_dict(err)})


def error_dict(err: ReconcilerError) -> dict[str, Any]:
    problems = err.problems if isinstance(err, SpecError) else ()
    return {
        "message": err.message,
        "hint": err.hint,
        "problems": [problem_dict(p) for p in problems],
    }


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"
