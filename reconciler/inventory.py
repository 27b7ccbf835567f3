"""The reader: images, their tags and the source WorkSpaces of creates, per region.

It reads AWS into the plain types of `live.py`, which the pure planner judges. The listing
carries no tags; they come in bulk from the Resource Groups Tagging API. Call budget of a
plan (WorkSpaces answers ~2 calls/s per region, so every call counts):

- finding the regions that hold owned resources (`discover`, not for a `--target` run):
  one GetResources with a tag filter on the ownership key per region where WorkSpaces is
  offered, in parallel (one more page per 100 owned resources);
- per region read (the regions the specs name, the default region, `regions:` of the root
  defaults, and every region where owned resources were found):
  - max(1, ceil(M/25)) DescribeWorkspaceImages, M being the images listed;
  - ceil(J/100) GetResources with a list of ARNs, J being the images the plan must judge
    (all M, or those a `--target` run names), read after the listing;
  - ceil(C/25) DescribeWorkspaces, C being the distinct sources of images to create;
  - only where specs declare bundles or owned bundles were found: max(1, ceil(B/25))
    DescribeWorkspaceBundles, B being the account's bundles there; their tags come in the
    same GetResources calls as the images' (ceil((J+B)/100) in all);
  - only for images whose spec declares `share_with`, and that are AVAILABLE there:
    max(1, ceil(P/25)) DescribeWorkspaceImagePermissions each, P being its accounts;
  - ceil(K/25) DescribeWorkspaceImages by id, K being the `image_id`s that bundle specs
    name and the listing did not show (images shared with the account, or public);
- where tag:GetResources is denied: the one refused GetResources, then one DescribeTags per
  image and bundle the plan must judge instead, in the regions the run names only;
- nothing else.

Tags are read after the listing, never reused from discovery's earlier answer: an image
deleted since it was listed is then left out of the owned ones (the tagging API answers
nothing for it, as for an untagged image), as DescribeTags' "not found" leaves it out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import botocore.exceptions

from reconciler.aws import (
    BUNDLE_RESOURCE,
    IMAGE_RESOURCE,
    REGION_REFUSALS,
    Clients,
    RegionClient,
    TaggingDenied,
    TagReader,
    error_code,
    in_parallel,
)
from reconciler.live import (
    LiveBundle,
    LiveImage,
    Progress,
    RegionInventory,
    SourceWorkspace,
    Tags,
)

if TYPE_CHECKING:
    from types_boto3_workspaces.type_defs import WorkspaceBundleTypeDef, WorkspaceImageTypeDef


@dataclass(frozen=True)
class Discovery:
    """Where the account holds owned resources, from one tag-filtered GetResources per
    region where WorkSpaces is offered."""

    owned: Mapping[str, Mapping[str, Tags]] = field(default_factory=dict)  # region: ARN: tags
    refused: Mapping[str, str] = field(default_factory=dict)  # region: why it did not answer
    denied: bool = False  # the role may not call tag:GetResources: nothing was looked for

    @property
    def regions(self) -> set[str]:
        """The regions that hold at least one owned resource."""
        return {region for region, found in self.owned.items() if found}

    @property
    def bundle_regions(self) -> set[str]:
        """The regions that hold at least one owned bundle."""
        marker = f":{BUNDLE_RESOURCE}/"
        return {r for r, found in self.owned.items() if any(marker in arn for arn in found)}


def discover(clients: Clients, home: str, probed: Future[None] | None = None) -> Discovery:
    """The owned resources of every WorkSpaces region of `home`'s partition, with their tags.

    `home` (a region the run reads anyway) is asked first: if it refuses tag:GetResources,
    the role lacks it, and no other region is asked. `probed` is resolved once that is
    known (with the error, if that first call failed otherwise). Another region that
    refuses (an opt-in region not enabled, an organisation policy) is left out, with the
    reason.
    """
    probed = probed or Future()
    try:
        reader = clients.tag_reader(home)
        at_home = reader.owned() if reader is not None else None
    except TaggingDenied:
        clients.tagging_refused()
        at_home = None
    except BaseException as err:
        probed.set_exception(err)
        raise
    probed.set_result(None)
    if at_home is None:
        return Discovery(denied=True)
    others = [r for r in clients.workspaces_regions(home) if r != home]
    answers = in_parallel(lambda region: _owned_or_refusal(clients, region), others)
    owned: dict[str, Mapping[str, Tags]] = {home: at_home}
    refused: dict[str, str] = {}
    for region, answer in answers.items():
        if isinstance(answer, str):
            refused[region] = answer
        else:
            owned[region] = answer
    return Discovery(owned, refused)


def _owned_or_refusal(clients: Clients, region: str) -> Mapping[str, Tags] | str:
    reader = clients.tag_reader(region)
    if reader is None:  # refused in another region meanwhile
        return "tag:GetResources is denied"
    try:
        return reader.owned()
    except TaggingDenied:
        return "AccessDeniedException"
    except botocore.exceptions.ClientError as err:
        code = error_code(err)
        if code in REGION_REFUSALS:
            return str(code)
        raise


class _Counter:
    """Tags read so far in a region, for the progress line (bumped from several threads)."""

    def __init__(self, region: str, total: int, progress: Progress | None) -> None:
        self.region, self.total, self.progress = region, total, progress
        self.done = 0
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        with self._lock:
            self.done += count
            done = self.done
        if self.progress and count:
            self.progress(self.region, "tags", done, self.total)


def read_images(
    client: RegionClient,
    wanted: Collection[str] | None,
    progress: Progress | None = None,
    *,
    listed: Sequence[WorkspaceImageTypeDef] | None = None,
    tagger: TagReader | None = None,
    denied: Callable[[], None] | None = None,
    bundles: Sequence[WorkspaceBundleTypeDef] | None = None,
    wanted_bundles: Collection[str] | None = None,
) -> RegionInventory:
    """List the region's owned images (unless `listed` already) and read the tags of those
    the plan must judge, and of the `bundles` listed (None: bundles not read here).

    `wanted` None means every image (a full run needs all tags to find unmanaged ones);
    a set of names limits tag reads to those (a `--target` run); `wanted_bundles` likewise.
    Tags come in bulk from `tagger`, images and bundles in the same calls; without one, or
    once it is refused (`denied` hears of it), one DescribeTags per resource.
    """
    listed = list(client.images()) if listed is None else list(listed)
    judged = [i for i in listed if wanted is None or i.get("Name") in wanted]
    judged_bundles = [
        b for b in bundles or () if wanted_bundles is None or b.get("Name") in wanted_bundles
    ]
    resources = [_Resource(IMAGE_RESOURCE, i["ImageId"], i.get("OwnerAccountId")) for i in judged]
    resources += [_Resource(BUNDLE_RESOURCE, b["BundleId"], b.get("Owner")) for b in judged_bundles]
    tags = _read_tags(client, resources, progress, tagger, denied)
    # None: deleted between the listing and its tag read (a paced plan takes minutes), so
    # the plan must not count it. Only DescribeTags can tell: the tagging API leaves out a
    # deleted image as it leaves out an untagged one.
    images = [_live_image(i, t) for i in judged if (t := tags[i["ImageId"]]) is not None]
    gone = len(judged) - len(images)
    live_bundles = [
        _live_bundle(b, t) for b in judged_bundles if (t := tags[b["BundleId"]]) is not None
    ]
    return RegionInventory(
        client.region,
        {i.name: i for i in images},
        len(listed) - gone,
        bundles=None if bundles is None else {b.name: b for b in live_bundles},
        bundle_count=len(bundles or ()) - (len(judged_bundles) - len(live_bundles)),
    )


@dataclass(frozen=True)
class _Resource:
    kind: str  # IMAGE_RESOURCE or BUNDLE_RESOURCE
    id: str
    account: str | None  # the owner account, to build its ARN from


def _read_tags(
    client: RegionClient,
    resources: Sequence[_Resource],
    progress: Progress | None,
    tagger: TagReader | None,
    denied: Callable[[], None] | None,
) -> dict[str, Tags | None]:
    """Tags by resource id: in bulk where possible, else one DescribeTags each."""
    counter = _Counter(client.region, len(resources), progress)
    tags: dict[str, Tags | None] = {}
    if tagger is not None:
        tags.update(_tags_in_bulk(resources, tagger, counter, denied))
    one_by_one = [r.id for r in resources if r.id not in tags]

    def described(resource_id: str) -> Tags | None:
        found = client.tags(resource_id)
        counter.add(1)
        return found

    tags.update(zip(one_by_one, client.map(described, one_by_one), strict=True))
    return tags


def _tags_in_bulk(
    resources: Sequence[_Resource],
    tagger: TagReader,
    counter: _Counter,
    denied: Callable[[], None] | None,
) -> dict[str, Tags]:
    """The tags of `resources` by id, from GetResources. One left out (the listing gave no
    owner account to build its ARN from, or the API was refused) is read one at a time by
    the caller."""
    arns = {r.id: tagger.arn(r.kind, r.account, r.id) for r in resources if r.account}
    if not arns:
        return {}
    try:
        found = tagger.tags(list(arns.values()), counter.add)
    except TaggingDenied:
        if denied:
            denied()
        return {}
    # Only tagged resources are answered: one left out has no tags (or is gone).
    return {i: found.get(arn, {}) for i, arn in arns.items()}


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


def _live_image(image: WorkspaceImageTypeDef, tags: Tags) -> LiveImage:
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


def _live_bundle(bundle: WorkspaceBundleTypeDef, tags: Tags) -> LiveBundle:
    return LiveBundle(
        bundle_id=bundle["BundleId"],
        name=bundle.get("Name", ""),
        description=bundle.get("Description", ""),
        image_id=bundle.get("ImageId", ""),
        compute_type=bundle.get("ComputeType", {}).get("Name", ""),
        user_volume_gib=_gib(bundle.get("UserStorage", {}).get("Capacity")),
        root_volume_gib=_gib(bundle.get("RootStorage", {}).get("Capacity")),
        state=bundle.get("State", "AVAILABLE"),
        tags=tags,
    )


def _gib(capacity: str | None) -> int | None:
    """A volume's size: the service answers GiB as a string."""
    try:
        return int(capacity) if capacity is not None else None
    except ValueError:
        return None


def read_shares(client: RegionClient, image_ids: Collection[str]) -> dict[str, frozenset[str]]:
    """The accounts each image is shared with (only images whose spec declares sharing)."""
    ids = sorted(set(image_ids))
    return dict(zip(ids, client.map(client.shared_accounts, ids), strict=True))


def read_referenced(
    client: RegionClient, image_ids: Collection[str]
) -> dict[str, LiveImage | None]:
    """Images that bundle specs name by id and the owned listing did not show; None: no
    such image."""
    ids = sorted(set(image_ids))
    found = {i["ImageId"]: _live_image(i, {}) for i in client.images_by_id(ids)} if ids else {}
    return {i: found.get(i) for i in ids}
