"""The live state: images, their tags and the source WorkSpaces of creates, per region.

Call budget per region (the service answers ~2 calls/s, so every call counts):
- max(1, ceil(M/25)) DescribeWorkspaceImages, M being the images listed;
- one DescribeTags per image that the plan must judge (the listing carries no tags);
- ceil(C/25) DescribeWorkspaces, C being the distinct sources of images to create;
- nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE

if TYPE_CHECKING:
    from types_boto3_workspaces.type_defs import WorkspaceImageTypeDef

    from reconciler.aws import RegionClient


@dataclass(frozen=True)
class LiveImage:
    image_id: str
    name: str
    description: str
    state: str  # AVAILABLE, PENDING or ERROR
    tags: Mapping[str, str]
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


Progress = Callable[[str, str, int, int], None]  # region, phase, done, total


def read_images(
    client: RegionClient, wanted: Collection[str] | None, progress: Progress | None = None
) -> RegionInventory:
    """List the region's owned images and read the tags of those the plan must judge.

    `wanted` None means every image (a full run needs all tags to find unmanaged ones);
    a set of names limits tag reads to those (a `--target` run).
    """
    listed = list(client.images())
    judged = [i for i in listed if wanted is None or i.get("Name") in wanted]
    done = [0]

    def with_tags(image: WorkspaceImageTypeDef) -> LiveImage | None:
        tags = client.tags(image["ImageId"])
        # None: deleted between the listing and its tag read (a paced plan takes minutes),
        # so the plan must not count it.
        live = _live_image(image, tags) if tags is not None else None
        done[0] += 1
        if progress:
            progress(client.region, "tags", done[0], len(judged))
        return live

    images = [i for i in client.map(with_tags, judged) if i is not None]
    gone = len(judged) - len(images)
    return RegionInventory(client.region, {i.name: i for i in images}, len(listed) - gone)


def read_sources(
    client: RegionClient, workspace_ids: Collection[str]
) -> dict[str, SourceWorkspace]:
    """The state of each source WorkSpace; a missing one has state None."""
    ids = sorted(set(workspace_ids))
    found = {w["WorkspaceId"]: w for w in client.workspaces(ids)} if ids else {}
    sources = {}
    for ws_id in ids:
        ws = found.get(ws_id)
        sources[ws_id] = SourceWorkspace(
            ws_id,
            ws.get("State") if ws else None,
            bool(ws.get("ModificationStates")) if ws else False,
        )
    return sources


def _live_image(image: WorkspaceImageTypeDef, tags: dict[str, str]) -> LiveImage:
    created = image.get("Created")
    return LiveImage(
        image_id=image["ImageId"],
        name=image.get("Name", ""),
        description=image.get("Description", ""),
        state=image.get("State", ""),
        tags=tags,
        created=created if isinstance(created, datetime) else None,
        error_code=image.get("ErrorCode") or None,
        error_message=image.get("ErrorMessage") or None,
    )
