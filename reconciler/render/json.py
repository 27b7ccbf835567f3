"""Plans and apply results as the contract's JSON document (`format_version` 1)."""

from __future__ import annotations

import json

from reconciler.apply import Applied
from reconciler.plan import Plan


def dumps(document: Plan | Applied) -> str:
    """The document as JSON; comes from the typed models, never assembled by hand."""
    return json.dumps(document.model_dump(mode="json"), indent=2) + "\n"
