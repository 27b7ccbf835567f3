"""The reader: the live state of every region a run reads, kind by kind.

Generic: each kind (`reconciler.kinds`) says what it lists in a region and what else it
reads there; this module lists, reads every listed resource's tags in bulk (images and
bundles in the same calls) and hands each kind its part, into the plain types of `live.py`
that the pure planners judge. The listings carry no tags; they come in bulk from the
Resource Groups Tagging API. Call budget of a plan (WorkSpaces answers ~2 calls/s per
region, so every call counts):

- finding the regions that hold owned resources (`discover`, not for a `--target` run):
  one GetResources with a tag filter on the ownership key per region where WorkSpaces is
  offered (one more page per 100 owned resources): the home region, then the other regions
  the run reads, in parallel, then the rest on the run's background pool;
- per region read (the regions the specs name, the default region, `regions:` of the root
  defaults, and every region where owned resources were found):
  - max(1, ceil(M/25)) DescribeWorkspaceImages, M being the images listed;
  - ceil(J/100) GetResources with a list of ARNs, J being the images the plan must judge
    (all M, or those a `--target` run names), read after the listing;
  - ceil(C/25) DescribeWorkspaces, C being the distinct sources of images to create;
  - only where specs declare bundles or owned images or bundles were found:
    max(1, ceil(B/25)) DescribeWorkspaceBundles, B being the account's bundles there; their
    tags come in the same GetResources calls as the images' (ceil((J+B)/100) in all), and
    one DescribeTags for each bundle that answer leaves out (real answers have left out
    bundles that had tags);
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

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import botocore.exceptions

from reconciler.aws import (
    REGION_REFUSALS,
    Clients,
    RegionClient,
    TaggingDenied,
    TagReader,
    arn_kind_and_id,
    error_code,
    in_parallel,
)
from reconciler.kinds import KINDS, KindModule
from reconciler.kinds.base import Listed, Reading
from reconciler.live import Progress, RegionInventory, Tags


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

    def types_in(self, region: str) -> set[str]:
        """The resource types (`workspaceimage`, `workspacebundle`) owned in a region."""
        return {arn_kind_and_id(arn)[0] for arn in self.owned.get(region, {})}


def _resource_types() -> list[str]:
    return sorted({k.arn_type for k in KINDS if k.arn_type})


def discover(
    clients: Clients,
    home: str,
    probed: Future[None] | None = None,
    *,
    first: Sequence[str] = (),
    early: Future[Discovery] | None = None,
) -> Discovery:
    """The owned resources of every WorkSpaces region of `home`'s partition, with their tags.

    `home` (a region the run reads anyway) is asked first: if it refuses tag:GetResources,
    the role lacks it, and no other region is asked. `probed` is resolved once that is
    known (with the error, if that first call failed otherwise). Then the regions `first`
    (those the run reads anyway), whose answers resolve `early` as soon as they are in:
    their reads wait for those alone, not for every region of the partition (a run over
    many accounts asks hundreds of regions). Then the others. A region that refuses (an
    opt-in region not enabled, an organisation policy) is left out, with the reason.
    """
    probed = probed or Future()
    early = early or Future()
    try:
        reader = clients.tag_reader(home)
        at_home = reader.owned(_resource_types()) if reader is not None else None
    except TaggingDenied:
        clients.tagging_refused()
        at_home = None
    except BaseException as err:
        probed.set_exception(err)
        early.set_exception(err)
        raise
    probed.set_result(None)
    if at_home is None:
        early.set_result(Discovery(denied=True))
        return Discovery(denied=True)
    others = [r for r in clients.workspaces_regions(home) if r != home]
    soon = [r for r in others if r in first]
    answers: dict[str, Mapping[str, Tags] | str] = {home: at_home}
    try:
        answers |= in_parallel(lambda region: _owned_or_refusal(clients.tag_reader(region)), soon)
    except BaseException as err:
        early.set_exception(err)
        raise
    early.set_result(_discovery(answers))
    later = [r for r in others if r not in soon]
    answers |= clients.in_background(
        lambda region: _owned_or_refusal(clients.discovery_reader(region)), later
    )
    return _discovery(answers)


def _discovery(answers: Mapping[str, Mapping[str, Tags] | str]) -> Discovery:
    owned = {r: a for r, a in answers.items() if not isinstance(a, str)}
    refused = {r: a for r, a in answers.items() if isinstance(a, str)}
    return Discovery(owned, refused)


def _owned_or_refusal(reader: TagReader | None) -> Mapping[str, Tags] | str:
    if reader is None:  # refused in another region meanwhile
        return "tag:GetResources is denied"
    try:
        return reader.owned(_resource_types())
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


def read_region(
    reading: Reading,
    tagger: Callable[[], TagReader | None],
    progress: Progress | None = None,
    *,
    denied: Callable[[], None] | None = None,
    before_tags: Callable[[], None] | None = None,
    kinds: Sequence[KindModule] = KINDS,
) -> RegionInventory:
    """One region's live state: each kind lists its resources, their tags are read in bulk
    from `tagger` (without one, or once it is refused, `denied` hears of it, one DescribeTags
    per resource), and each kind fills in its part, in order (a share needs the images).
    `before_tags` runs between the listings and the tag reads (the run waits there for
    discovery's first answer, which says whether the role may call the tagging API: so the
    reader is asked for only after it)."""
    client = reading.client
    listings = {k.kind: k.list(reading) if k.list else None for k in kinds}
    if before_tags:
        before_tags()
    judged = [r for listing in listings.values() if listing for r in listing.judged]
    tags = _read_tags(client, _with_owners(judged, reading.account), progress, tagger(), denied)
    inv = RegionInventory(client.region)
    for kind in kinds:
        if kind.observe:
            inv = kind.observe(reading, inv, listings[kind.kind], tags)
    return inv


def _with_owners(
    resources: Sequence[Listed], account: Callable[[], str] | None
) -> Sequence[Listed]:
    """The resources, each with the account that owns it: a listing that names none (older
    answers lack `OwnerAccountId`) lists the caller's own, so their ARNs are the caller's
    account's. Without the caller's account they are read one at a time, as before."""
    if account is None or all(r.account for r in resources):
        return resources
    try:
        caller = account()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return resources
    return [r if r.account else dataclasses.replace(r, account=caller) for r in resources]


def _read_tags(
    client: RegionClient,
    resources: Sequence[Listed],
    progress: Progress | None,
    tagger: TagReader | None,
    denied: Callable[[], None] | None,
) -> dict[str, Tags | None]:
    """Tags by resource id: in bulk where possible, else one DescribeTags each. None: the
    resource was deleted since it was listed. Only DescribeTags can tell: the tagging API
    leaves out a deleted resource as it leaves out an untagged one."""
    counter = _Counter(client.region, len(resources), progress)
    tags: dict[str, Tags | None] = {}
    if tagger is not None:
        tags.update(_tags_in_bulk(resources, tagger, counter, denied))
    one_by_one = [r.resource_id for r in resources if r.resource_id not in tags]

    def described(resource_id: str) -> Tags | None:
        found = client.tags(resource_id)
        counter.add(1)
        return found

    tags.update(zip(one_by_one, client.map(described, one_by_one), strict=True))
    return tags


def _tags_in_bulk(
    resources: Sequence[Listed],
    tagger: TagReader,
    counter: _Counter,
    denied: Callable[[], None] | None,
) -> dict[str, Tags]:
    """The tags of `resources` by id, from GetResources. One left out (the listing gave no
    owner account to build its ARN from, or the API was refused) is read one at a time by
    the caller."""
    arns = {
        r.resource_id: tagger.arn(r.arn_type, r.account, r.resource_id)
        for r in resources
        if r.account
    }
    if not arns:
        return {}
    try:
        found = tagger.tags(list(arns.values()), counter.add)
    except TaggingDenied:
        if denied:
            denied()
        return {}
    # Only tagged resources are answered: one left out has no tags (or is gone), unless its
    # kind is one the API has been seen to leave out: the caller reads that one itself.
    untagged = {r.resource_id for r in resources if r.absent_is_untagged}
    return {i: found.get(arn, {}) for i, arn in arns.items() if arn in found or i in untagged}
