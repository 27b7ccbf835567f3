"""The live state as plain data: what the reader found in AWS, per region.

`inventory.py` and the kind modules read AWS into these types; the planners, pure
functions, judge them against the specs. Nothing here imports boto3 or the AWS layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE

Tags = Mapping[str, str]
Progress = Callable[[str, str, int, int], None]  # region, phase, done, total


def owned(tags: Tags) -> bool:
    return tags.get(OWNERSHIP_TAG_KEY) == OWNERSHIP_TAG_VALUE


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
        return owned(self.tags)


@dataclass(frozen=True)
class LiveBundle:
    bundle_id: str
    name: str
    description: str
    image_id: str
    compute_type: str
    user_volume_gib: int | None
    root_volume_gib: int | None
    state: str  # AVAILABLE, PENDING or ERROR
    tags: Tags

    @property
    def owned(self) -> bool:
        return owned(self.tags)


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
    # Bundles are read only in regions where specs declare bundles or owned bundles were
    # found: None means not read (and so none judged, none unmanaged).
    bundles: Mapping[str, LiveBundle] | None = None  # by name
    bundle_count: int = 0  # the account's custom bundles in the region, for the quota
    # The accounts each image is shared with, read only for images whose spec declares
    # `share_with` (by image id).
    shares: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Images that bundle specs name by `image_id` and that are not among the owned ones
    # (shared with the account, or public), by id; None: no such image.
    referenced: Mapping[str, LiveImage | None] = field(default_factory=dict)
    # Images other accounts share with this one, by (owner account, name): read only where
    # an import's source lies outside the run (ImageType=SHARED). Never the account's own.
    shared: Mapping[tuple[str, str], LiveImage] = field(default_factory=dict)

    def image_by_id(self, image_id: str) -> LiveImage | None:
        found = next((i for i in self.images.values() if i.image_id == image_id), None)
        return found or self.referenced.get(image_id)


@dataclass(frozen=True)
class Inventory:
    regions: Mapping[str, RegionInventory]
