"""The live state as plain data: what the reader found in AWS, per region.

`inventory.py` reads AWS into these types; `plan.py`, a pure function, judges them against
the specs. Nothing here imports boto3 or the AWS layer, so the planner stays offline. A
new kind of resource (a copy, a share, a bundle) adds its live type here beside
`LiveImage`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE

Tags = Mapping[str, str]
Progress = Callable[[str, str, int, int], None]  # region, phase, done, total


@dataclass(frozen=True)
class LiveImage:
    image_id: str
    name: str
    description: str
    state: str  # AVAILABLE, PENDING or ERROR
    tags: Tags
    created: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def owned(self) -> bool:
        return self.tags.get(OWNERSHIP_TAG_KEY) == OWNERSHIP_TAG_VALUE


@dataclass(frozen=True)
class SourceWorkspace:
    workspace_id: str
    state: str | None  # None: no such WorkSpace in this account and region
    modifying: bool = False  # a modification (compute type, volume) is in progress


@dataclass(frozen=True)
class RegionInventory:
    region: str
    images: Mapping[str, LiveImage]  # by name; only those whose tags were read
    image_count: int  # every owned image in the region, for the quota
    sources: Mapping[str, SourceWorkspace] | None = None  # None: not read yet


@dataclass(frozen=True)
class Inventory:
    regions: Mapping[str, RegionInventory]
