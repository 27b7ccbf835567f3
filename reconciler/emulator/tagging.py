"""Make moto's Resource Groups Tagging API answer like the real one for WorkSpaces resources.

moto (``moto/resourcegroupstaggingapi``, 5.2.1 and later) differs from the real service in
ways that matter to a reconciler reading tags in bulk. While
:func:`~reconciler.emulator.layer.installed` is active, this module's patches are set on
moto's tagging API response class through :mod:`~reconciler.emulator.moto_adapter` (shared
by ``mock_aws()`` and an in-process moto server, so they hold for every wire format).

Gaps closed (moto behaviour -> real behaviour):

* GetResources ignores ``ResourceARNList`` and answers every tagged resource -> only the
  listed ARNs (at most 100, unpaged; a missing resource is simply absent). An ARN list with
  ``TagFilters``, ``ResourceTypeFilters``, ``ResourcesPerPage``, ``TagsPerPage`` or
  ``PaginationToken``, or with more than 100 ARNs, -> ``InvalidParameterException``.
* Images are filed under the type ``workspaces-image``, so ``ResourceTypeFilters``
  ``workspaces`` / ``workspaces:workspaceimage`` find nothing -> the real types:
  ``workspaces`` (every WorkSpaces type), ``workspaces:workspace``, ``workspaces:directory``,
  ``workspaces:workspaceimage``, ``workspaces:workspacebundle``. ARNs are
  ``arn:<partition>:workspaces:<region>:<account>:workspaceimage/<id>`` and
  ``.../workspacebundle/<id>`` (see :func:`image_arn`, :func:`bundle_arn`). Bundles are
  the account's custom bundles: the layer's bundle store (``bundles`` on its region state,
  filled by CreateWorkspaceBundle and ``Fidelity.add_bundle``, see
  :mod:`reconciler.emulator.lifecycle`), or a dict ``bundle_id -> object with a tags list`` set
  as ``backend.workspace_bundles``, which takes precedence. AMAZON's public bundles are
  not the account's and are never listed.
* Paging at 50 with server-side generators -> pages of ``ResourcesPerPage`` (1-100, default
  100; ``FidelityConfig.tagging_page_size`` caps it, so tests can page with few resources),
  an opaque PaginationToken, and ``"PaginationToken": ""`` on the last page as the real API
  answers.
* Only currently tagged resources -> as documented: without ``TagFilters`` a resource that
  ever had a tag but has none now is listed with ``"Tags": []``; never-tagged resources are
  absent; with ``TagFilters`` only matching resources (all filters; any of a filter's
  values) are listed.
* TagResources / UntagResources on a WorkSpaces ARN write nothing useful (moto's CreateTags
  ignores images) -> they write the resource's own tag list, the store WorkSpaces CreateTags,
  DeleteTags and DescribeTags use. At most 20 ARNs a call; a missing resource, another
  region's or account's ARN, or more than 50 tags is a ``FailedResourcesMap`` entry.
* Every region is readable -> only the caller's region (from the request) and account.
* Always consistent -> :meth:`Fidelity.stale_tags` makes GetResources serve tags as they were
  that many seconds ago (a resource younger than that is absent), while WorkSpaces
  DescribeTags stays current. Tag history is recorded after every WorkSpaces and tagging call
  and by the test hooks, stamped with ``time.time()``; a resource's first record is dated
  back to its creation time when moto knows it.
* Never refuses -> :meth:`Fidelity.deny_tagging` answers GetResources with
  ``AccessDeniedException`` (HTTP 400, a role without ``tag:GetResources``), everywhere or in
  one region; :meth:`Fidelity.disable_region` answers ``UnrecognizedClientException`` (HTTP
  400, "The security token included in the request is invalid"), which is what AWS's
  json-protocol APIs answer in an opt-in region the account has not enabled (widely
  reported for Hong Kong, Bahrain, Melbourne, ...; not ``AccessDeniedException``).

Not covered: GetTagKeys, GetTagValues, compliance details, TagsPerPage paging (validated
only), non-WorkSpaces ARNs in a ``ResourceARNList`` (not answered; filter queries do include
moto's other resources).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import moto_adapter as adapter
from .errors import AccessDeniedException, InvalidParameterException, UnrecognizedClientException
from .moto_adapter import DEFAULT_ACCOUNT_ID, Backend, Reply, TaggingResponse

if TYPE_CHECKING:
    from .layer import Fidelity

__all__ = ["AccessDeniedException", "InvalidParameterException", "UnrecognizedClientException"]

MAX_ARNS = 100
"""Most ARNs one GetResources call accepts (ResourceARNList)."""
TAGGING_PAGE_SIZE = 100
"""Largest (and default) ResourcesPerPage of GetResources."""
MAX_TAG_ARNS = 20
"""Most ARNs one TagResources / UntagResources call accepts."""
_TAG_LIMIT = 50

_HISTORY_ATTR = "_fidelity_tag_history"
_LAYER_STATE_ATTR = "_fidelity_state"  # layer._STATE_ATTR; not imported to avoid a cycle
_WORKSPACES_TYPES = ("workspace", "directory", "workspaceimage", "workspacebundle")


def image_arn(
    region: str, image_id: str, account_id: str = DEFAULT_ACCOUNT_ID, partition: str = "aws"
) -> str:
    """The tagging API's ARN of a WorkSpaces image."""
    return f"arn:{partition}:workspaces:{region}:{account_id}:workspaceimage/{image_id}"


def bundle_arn(
    region: str, bundle_id: str, account_id: str = DEFAULT_ACCOUNT_ID, partition: str = "aws"
) -> str:
    """The tagging API's ARN of a WorkSpaces bundle."""
    return f"arn:{partition}:workspaces:{region}:{account_id}:workspacebundle/{bundle_id}"


# --- switches ---------------------------------------------------------------------------


@dataclass
class TaggingSwitches:
    """What the tests set on the tagging API through the :class:`Fidelity` handle."""

    # (account, region) pairs, None meaning any: a role without tag:GetResources, and an
    # opt-in region not enabled (-> whether WorkSpaces is refused too); both are per account
    # in AWS (each account has its roles and enables its regions)
    denials: set[tuple[str | None, str | None]] = field(default_factory=set)
    disabled_regions: dict[tuple[str | None, str], bool] = field(default_factory=dict)
    stale_seconds: float = 0.0
    # time.time() the tagging API's view was frozen at (None: it follows stale_seconds).
    frozen_at: float | None = None
    # Resource types GetResources leaves out though they carry tags, as Cloud Custodian's
    # recorded real answers did for bundles (tests/data/placebo, the workspaces bundle tests).
    left_out: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def denied(self, region: str, account: str) -> bool:
        with self.lock:
            return any(a in (None, account) and r in (None, region) for a, r in self.denials)

    def disabled(self, region: str, account: str, *, workspaces: bool = False) -> bool:
        with self.lock:
            found = [
                refuses_workspaces
                for (a, r), refuses_workspaces in self.disabled_regions.items()
                if r == region and a in (None, account)
            ]
            return bool(found) and (any(found) or not workspaces)


# --- the WorkSpaces resources and their tag history --------------------------------------


@dataclass
class _Entry:
    at: float  # time.time()
    tags: dict[str, str] | None  # None: the resource is gone


def _tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or []}


def _bundle_store(backend: Backend) -> dict[str, Any]:
    """The custom bundles: ``backend.workspace_bundles`` if set, else the layer's store
    (moto has no bundles)."""
    store = getattr(backend, "workspace_bundles", None)
    if store is None:
        store = getattr(adapter.peek(backend, _LAYER_STATE_ATTR), "bundles", None)
    return store if isinstance(store, dict) else {}


def partition(region: str) -> str:
    """The ARN partition of a region."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _resources(backend: Backend) -> Iterator[tuple[str, str, Any]]:
    """(resource type, ARN, object) of every WorkSpaces resource the account owns there."""
    region, account = backend.region_name, backend.account_id
    prefix = f"arn:{partition(region)}:workspaces:{region}:{account}"
    for workspace_id, workspace in backend.workspaces.items():
        yield "workspace", f"{prefix}:workspace/{workspace_id}", workspace
    for directory_id, directory in adapter.directories(backend).items():
        yield "directory", f"{prefix}:directory/{directory_id}", directory
    for image_id, image in backend.workspace_images.items():
        if getattr(image, "owner_account", account) == account:
            yield "workspaceimage", f"{prefix}:workspaceimage/{image_id}", image
    for bundle_id, bundle in _bundle_store(backend).items():
        yield "workspacebundle", f"{prefix}:workspacebundle/{bundle_id}", bundle


def _history(backend: Backend) -> dict[str, list[_Entry]]:
    """Tag history of one backend; kept on it so that a moto reset clears it too."""
    history: dict[str, list[_Entry]] = adapter.attached(backend, _HISTORY_ATTR, dict)
    return history


def _record_backend(backend: Backend, now: float) -> None:
    history = _history(backend)
    seen: set[str] = set()
    for _, arn, resource in _resources(backend):
        seen.add(arn)
        tags = _tags_dict(getattr(resource, "tags", None))
        entries = history.setdefault(arn, [])
        if not entries:
            created = adapter.created_at(resource)
            entries.append(_Entry(min(now, created) if created is not None else now, tags))
        elif entries[-1].tags != tags:
            entries.append(_Entry(now, tags))
    for arn, entries in history.items():
        if arn not in seen and entries[-1].tags is not None:
            entries.append(_Entry(now, None))


def record_tags(backend: Backend | None = None) -> None:
    """Snapshot the tags of every WorkSpaces resource of ``backend`` (one account and region),
    or of every backend: call it after anything that may change them there.

    A call changes tags only in its own account and region, so recording that backend alone
    is the same history; recording every backend on every call cost the server ~7 ms a call
    with 20 accounts, more than the reconciler's own work. A backend first recorded late
    loses nothing: a resource's first entry is dated back to its creation."""
    now = time.time()
    for each in adapter.backends() if backend is None else [backend]:
        _record_backend(each, now)


def forget_history() -> None:
    adapter.detach(_HISTORY_ATTR)


@dataclass(frozen=True)
class _Seen:
    rtype: str
    arn: str
    tags: dict[str, str]
    ever_tagged: bool


def _as_of(backend: Backend, when: float) -> list[_Seen]:
    """The resources of ``backend`` that existed at ``when``, with their tags then."""
    types = {arn: rtype for rtype, arn, _ in _resources(backend)}
    seen: list[_Seen] = []
    for arn, entries in _history(backend).items():
        past = [e for e in entries if e.at <= when]
        if not past or past[-1].tags is None:
            continue
        rtype = types.get(arn) or arn.rsplit(":", 1)[-1].split("/", 1)[0]
        ever = any(e.tags for e in past)
        seen.append(_Seen(rtype, arn, dict(past[-1].tags), ever))
    order = list(types)
    seen.sort(key=lambda s: order.index(s.arn) if s.arn in order else len(order))
    return seen


# --- GetResources ------------------------------------------------------------------------


def _check_arn_list(params: dict[str, Any]) -> list[str]:
    arns = params["ResourceARNList"]
    if not isinstance(arns, list) or not 1 <= len(arns) <= MAX_ARNS:
        count = len(arns) if isinstance(arns, list) else 0
        raise InvalidParameterException(
            f"ResourceARNList must contain between 1 and {MAX_ARNS} ARNs; it has {count}."
        )
    clashing = [
        name
        for name in (
            "TagFilters",
            "ResourceTypeFilters",
            "ResourcesPerPage",
            "TagsPerPage",
            "PaginationToken",
        )
        if params.get(name) not in (None, [], "")
    ]
    if clashing:
        raise InvalidParameterException(
            f"ResourceARNList can't be specified with {', '.join(clashing)}."
        )
    return [str(a) for a in arns]


def _type_wanted(rtype: str, filters: list[str]) -> bool:
    return not filters or "workspaces" in filters or f"workspaces:{rtype}" in filters


def _tag_match(tags: dict[str, str], filters: list[dict[str, Any]]) -> bool:
    for tag_filter in filters:
        key, values = tag_filter.get("Key"), tag_filter.get("Values") or []
        if key not in tags or (values and tags[key] not in values):
            return False
    return True


def _page_size(params: dict[str, Any], cap: int) -> int:
    size = params.get("ResourcesPerPage")
    if size is not None and (not isinstance(size, int) or not 1 <= size <= TAGGING_PAGE_SIZE):
        raise InvalidParameterException(
            f"ResourcesPerPage must be between 1 and {TAGGING_PAGE_SIZE}; it is {size}."
        )
    tags_per_page = params.get("TagsPerPage")
    if tags_per_page is not None and not 100 <= tags_per_page <= 500:
        raise InvalidParameterException("TagsPerPage must be between 100 and 500.")
    return min(size or TAGGING_PAGE_SIZE, max(cap, 1))


def _query_key(params: dict[str, Any]) -> str:
    query = {k: params.get(k) for k in ("TagFilters", "ResourceTypeFilters")}
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]


def _page(
    items: list[dict[str, Any]], params: dict[str, Any], size: int
) -> tuple[list[dict[str, Any]], str]:
    """One page and the next token ("" on the last page, as the real API answers)."""
    key = _query_key(params)
    offset = 0
    token = params.get("PaginationToken")
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
            offset = int(decoded["offset"])
            if decoded["query"] != key or offset < 0:
                raise ValueError(token)
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise InvalidParameterException("The PaginationToken is invalid.") from None
    end = offset + size
    if end >= len(items):
        return items[offset:end], ""
    raw = json.dumps({"query": key, "offset": end}).encode()
    return items[offset:end], base64.urlsafe_b64encode(raw).decode()


def _mapping(seen: _Seen) -> dict[str, Any]:
    return {"ResourceARN": seen.arn, "Tags": [{"Key": k, "Value": v} for k, v in seen.tags.items()]}


def _others(response: TaggingResponse, params: dict[str, Any]) -> list[dict[str, Any]]:
    """moto's own answer for every non-WorkSpaces resource the query covers."""
    type_filters = [
        f for f in params.get("ResourceTypeFilters") or [] if f.split(":")[0] != "workspaces"
    ]
    if params.get("ResourceTypeFilters") and not type_filters:
        return []
    found = adapter.other_tagged_resources(response, params.get("TagFilters") or [], type_filters)
    return [r for r in found if r["ResourceARN"].split(":")[2] != "workspaces"]


def _workspaces_backend(response: TaggingResponse) -> Backend | None:
    account, region = adapter.caller(response)
    return adapter.backend(region, account) if adapter.has_region(region, account) else None


def _patches(handle: Fidelity) -> dict[str, Callable[..., Any]]:
    """The functions set on moto's tagging API response class, closing over the handle."""
    original_tag = adapter.original(TaggingResponse, "tag_resources")
    original_untag = adapter.original(TaggingResponse, "untag_resources")
    switches = handle.tagging

    def visible(response: TaggingResponse) -> list[_Seen]:
        backend = _workspaces_backend(response)
        if backend is None:
            return []
        record_tags(backend)
        frozen = switches.frozen_at
        seen = _as_of(
            backend, frozen if frozen is not None else time.time() - switches.stale_seconds
        )
        return [s for s in seen if s.rtype not in switches.left_out]

    def get_resources(self: TaggingResponse) -> Reply:
        """GetResources as the module docstring describes."""
        account, region = adapter.caller(self)
        if switches.disabled(region, account):
            raise UnrecognizedClientException()
        if switches.denied(region, account):
            raise AccessDeniedException(
                f"User: arn:aws:sts::{account}:assumed-role/reconciler is not "
                "authorized to perform: tag:GetResources because no identity-based policy "
                "allows the tag:GetResources action"
            )
        params = adapter.params(self)
        with handle.lock:
            if params.get("ResourceARNList") is not None:
                wanted = _check_arn_list(params)
                by_arn = {s.arn: s for s in visible(self) if s.tags or s.ever_tagged}
                found = [_mapping(by_arn[a]) for a in dict.fromkeys(wanted) if a in by_arn]
                return adapter.reply({"ResourceTagMappingList": found, "PaginationToken": ""})
            size = _page_size(params, handle.config.tagging_page_size)
            type_filters = list(params.get("ResourceTypeFilters") or [])
            tag_filters = list(params.get("TagFilters") or [])
            items = [
                _mapping(s)
                for s in visible(self)
                if _type_wanted(s.rtype, type_filters)
                and (s.tags or s.ever_tagged)
                and _tag_match(s.tags, tag_filters)
            ]
            items += _others(self, params)
            page, token = _page(items, params, size)
            return adapter.reply({"ResourceTagMappingList": page, "PaginationToken": token})

    def write_tags(
        self: TaggingResponse,
        original: Callable[..., Any],
        change: Callable[[dict[str, str]], dict[str, str]],
    ) -> Reply:
        account, region = adapter.caller(self)
        if switches.disabled(region, account):
            raise UnrecognizedClientException()
        params = adapter.params(self)
        arns = list(params.get("ResourceARNList") or [])
        if not 1 <= len(arns) <= MAX_TAG_ARNS:
            raise InvalidParameterException(
                f"ResourceARNList must contain between 1 and {MAX_TAG_ARNS} ARNs."
            )
        ours = [a for a in arns if str(a).split(":")[2:3] == ["workspaces"]]
        failed: dict[str, Any] = {}
        with handle.lock:
            backend = _workspaces_backend(self)
            table = {arn: r for _, arn, r in _resources(backend)} if backend else {}
            for arn in ours:
                resource = table.get(arn)
                if resource is None:
                    failed[arn] = _failure(f"The resource {arn} could not be found.")
                    continue
                tags = change(_tags_dict(resource.tags))
                if len(tags) > _TAG_LIMIT:
                    failed[arn] = _failure(f"A resource can have at most {_TAG_LIMIT} tags.")
                    continue
                resource.tags = [{"Key": k, "Value": v} for k, v in tags.items()]
            if backend is not None:
                record_tags(backend)
        rest = [a for a in arns if a not in ours]
        if rest:
            answer = adapter.call_original(self, original, {**params, "ResourceARNList": rest})
            failed.update(answer.get("FailedResourcesMap") or {})
        return adapter.reply({"FailedResourcesMap": failed})

    def tag_resources(self: TaggingResponse) -> Reply:
        """TagResources: a WorkSpaces ARN's tags are added or overwritten in place."""
        new = {str(k): str(v) for k, v in (adapter.params(self).get("Tags") or {}).items()}
        return write_tags(self, original_tag, lambda tags: {**tags, **new})

    def untag_resources(self: TaggingResponse) -> Reply:
        """UntagResources: the keys are removed from a WorkSpaces ARN's tags."""
        drop = set(adapter.params(self).get("TagKeys") or [])
        return write_tags(
            self, original_untag, lambda tags: {k: v for k, v in tags.items() if k not in drop}
        )

    return {
        "get_resources": get_resources,
        "tag_resources": tag_resources,
        "untag_resources": untag_resources,
    }


def _failure(message: str) -> dict[str, Any]:
    return {"StatusCode": 400, "ErrorCode": "InvalidParameterException", "ErrorMessage": message}


@contextmanager
def installed(handle: Fidelity) -> Iterator[None]:
    """Set the tagging patches on moto's tagging API response class; restore them (and
    forget the tag history) on exit."""
    try:
        with adapter.patched(TaggingResponse, _patches(handle)):
            yield
    finally:
        forget_history()
