"""Ownership confirmed just before a change: the one read every kind makes before it
deletes a resource or changes what it does not create.

The read is DescribeTags, the authoritative one: the plan's tags may come from the
eventually consistent tagging API, or be minutes old.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from reconciler.aws import short_error
from reconciler.kinds.creating import AWS_FAILURES
from reconciler.live import owned

if TYPE_CHECKING:
    from reconciler.aws import RegionClient


class Ownership(Enum):
    OWNED = "owned"
    GONE = "gone"  # deleted since the plan
    NOT_OWNED = "not owned"  # the ownership tag is no longer there


def confirm(client: RegionClient, resource_id: str) -> Ownership | str:
    """Whether the resource is still ours, or why that could not be read (a short error)."""
    try:
        tags = client.tags(resource_id)
    except AWS_FAILURES as err:
        return short_error(err)
    if tags is None:
        return Ownership.GONE
    return Ownership.OWNED if owned(tags) else Ownership.NOT_OWNED
