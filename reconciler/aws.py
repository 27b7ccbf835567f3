"""The one place that talks to AWS: clients, retries, pacing, pagination.

WorkSpaces paces its API at about 2 calls per second per region with bursts of 5 and
answers `ThrottlingException` beyond that. Instead of running into the limit and backing
off, every HTTP attempt (retries included) takes a token from a per-region bucket first,
so a run proceeds at the service's pace without being throttled. If the service throttles
anyway (another tool shares the account's budget), the bucket slows down and recovers.

Creates are never retried blindly: the client that sends `CreateWorkspaceImage` has
retries off, and the caller settles an ambiguous failure by looking the name up.

Reads are retried by `RetryPolicy` (botocore's own retries are off), which announces each
retry through `Clients.notify` as it happens. A busy service is ridden out; an endpoint
that is not there is not waited on. Per call, at most:

- throttled, 5xx, or a connection lost mid-reply: READ_ATTEMPTS (10) attempts, with
  botocore's standard backoff (a random wait up to 1, 2, 4, ... s, each at most 20 s:
  111 s of waits in the worst case, about half that on average);
- refused or unknown host: 3 attempts, 1 s and 2 s apart, so about 3 s in all;
- no connection within CONNECT_TIMEOUT (5 s): 3 attempts, so about 18 s;
- connected but no reply within the read timeout (RECONCILER_READ_TIMEOUT, default 30 s):
  3 attempts, so 3 x the read timeout + 3 s (93 s by default).

A run's first calls (each region's listing, the tag discovery) run side by side and come
before any other, so these are also the bounds of a whole run against such an endpoint.

An interruption never waits for these bounds. No call runs in the main thread, which only
waits (`until_stopped`): Python runs signal handlers there alone, and a thread blocked in a
socket read sees no signal until the read ends. Once the run's `stop` is set, no call is
started or retried (no "Retrying" line either), and calls still in flight are abandoned, not
awaited: at once for reads, after IN_FLIGHT_GRACE for apply's changes, whose answers the
summary reports. An abandoned create is safe: the next run settles it by name.

WorkSpaces lists images and bundles without their tags. `TagReader` reads them in bulk
through the Resource Groups Tagging API (`tag:GetResources`, up to 100 ARNs a call, on that
API's own pace and bucket), and finds the regions that hold owned resources; where the role
may not call it, `TaggingDenied` tells the caller to read tags one resource at a time
(`RegionClient.tags`, DescribeTags) as before.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import boto3
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE
from reconciler.awsconfig import configured_endpoints, read_timeout
from reconciler.errors import AwsError, ConfigError, Interrupted

if TYPE_CHECKING:
    from types_boto3_workspaces.client import WorkSpacesClient
    from types_boto3_workspaces.type_defs import (
        WorkspaceImageTypeDef,
        WorkspaceTypeDef,
    )

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

PAGE_SIZE = 25  # the service's maximum for DescribeWorkspaceImages and DescribeWorkspaces
SERVICE_BURST = 5  # the service's documented burst
# One token short of the service's burst: the service's bucket then always keeps a spare
# token, which absorbs the jitter between our clock and the service's (requests that leave
# 0.5 s apart may arrive 0.49 s apart). It costs 0.5 s once per run, never a throttle.
BURST = SERVICE_BURST - 1
CONNECT_TIMEOUT = 5.0
# The read timeout is RECONCILER_READ_TIMEOUT (awsconfig.read_timeout), read when Clients
# is made: a bad value is then a named error, not an exception at import.
# Throttling, 5xx and a connection lost mid-reply: enough attempts to ride out throttling
# from other tools that share the account's budget (the bucket slows down meanwhile).
READ_ATTEMPTS = 10
MAX_BACKOFF = 20.0  # seconds; botocore's standard cap on one wait
# An endpoint that can't be reached (refused, unknown host, no connection within
# CONNECT_TIMEOUT) or that doesn't answer within the read timeout: a blip gets two more
# tries, 1 s and 2 s later, not ten tries over two minutes of backoff.
UNREACHABLE_WAITS = (1.0, 2.0)
UNREACHABLE_ATTEMPTS = len(UNREACHABLE_WAITS) + 1
# Once interrupted, apply's calls in flight get this long to answer (a create that answers is
# reported made); then they are abandoned, with the rest of the run, so that an interrupted
# run ends within about 2 seconds even while calls hang.
IN_FLIGHT_GRACE = 1.0
# What a step of apply gets after a signal to abandon its calls and return its results
# (about 0.1 s after IN_FLIGHT_GRACE, measured on a loaded machine); a step that hangs
# otherwise (a poll of --wait) is abandoned then.
STEP_GRACE = IN_FLIGHT_GRACE + 0.3
# How often a thread that waits for others looks at the run's stop event.
STOP_POLL = 0.05
# Background tasks at once in a run, every account together (`Clients.in_background`).
BACKGROUND = 16
# Error codes botocore's standard retry mode treats as transient, besides 5xx statuses.
TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
THROTTLE_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# The Resource Groups Tagging API answers `ThrottledException` (its service model's error).
TAGGING_THROTTLE_CODES = THROTTLE_CODES | {"ThrottledException"}
TAGGING_BATCH = 100  # GetResources takes at most 100 ARNs in ResourceARNList
# The tagging API's pace is its own, per account and region, and AWS publishes it apart from
# WorkSpaces'. A run needs few of its calls (one per region to find owned resources, one per
# 100 resources judged), so a conservative 2 calls/s with a burst of 4 costs nothing below
# ~400 images in a region, and leaves the account's tagging budget to other tools (Tag
# Editor, Config, Cloud Custodian) that lean on it much harder.
TAGGING_RATE = 2.0
IMAGE_RESOURCE = "workspaceimage"  # the resource types in WorkSpaces ARNs
BUNDLE_RESOURCE = "workspacebundle"
# What a region answers when it won't serve this account at all: an opt-in region that is
# not enabled (the credentials are unknown there) or an organisation policy that denies it.
REGION_REFUSALS = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "AuthFailure",
        "OptInRequired",
    }
)


@dataclass(frozen=True)
class AwsSettings:
    """How to reach AWS; everything the CLI's AWS options carry."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    api_rate: float = 2.0  # calls per second per region; 0 means no pacing
    concurrency: int = 16  # calls in flight at once per region
    tagging_rate: float = TAGGING_RATE  # tag:GetResources calls per second per region; 0: none


class TokenBucket:
    """A thread-safe token bucket that slows down when the service throttles anyway."""

    def __init__(
        self, rate: float, burst: int = BURST, clock: Callable[[], float] = time.monotonic
    ):
        self.base_rate = rate
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event | None = None) -> None:
        """Block until a token is free. Raises Interrupted if `stop` is set meanwhile."""
        if self.base_rate <= 0:
            return
        while True:
            with self._lock:
                self._refill()
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            if stop is not None and stop.wait(wait):
                raise Interrupted("interrupted; no new call was started")
            if stop is None:
                time.sleep(wait)

    def throttled(self) -> None:
        """The service throttled us: empty the bucket and halve the rate (AIMD)."""
        with self._lock:
            self.tokens = 0.0
            self.rate = max(self.base_rate / 8, self.rate / 2)

    def succeeded(self) -> None:
        with self._lock:
            if self.rate < self.base_rate:
                self.rate = min(self.base_rate, self.rate + self.base_rate / 20)

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now


@dataclass(frozen=True)
class Failure:
    """Why one attempt failed, and how a call that fails so is retried."""

    reason: str
    attempts: int  # the most attempts a call gets when its last one failed this way
    backoff: bool  # exponential with jitter (the service is busy); else UNREACHABLE_WAITS


def classify(response: Any, exception: BaseException | None, read_timeout: float) -> Failure | None:
    """How a failed attempt is retried; None for an answer that stands (4xx, success)."""
    if exception is not None:
        return _connection_failure(exception, read_timeout)
    if response is None:
        return None
    http, parsed = response
    code = str(parsed.get("Error", {}).get("Code", ""))
    status = int(getattr(http, "status_code", 0))
    # ThrottledException: the Resource Groups Tagging API's name for it.
    if code in THROTTLE_CODES or code == "ThrottledException" or status == 429:
        return Failure(f"throttled ({code or status})", READ_ATTEMPTS, backoff=True)
    if status >= 500 or code in TRANSIENT_CODES:
        answer = f"HTTP {status} {code}".strip()
        return Failure(f"the service answered {answer}", READ_ATTEMPTS, backoff=True)
    return None


def _connection_failure(err: BaseException, read_timeout: float) -> Failure | None:
    exc = botocore.exceptions
    if not isinstance(err, exc.BotoCoreError):
        return None
    url = err.kwargs.get("endpoint_url") or err.kwargs.get("proxy_url") or "the endpoint"
    if isinstance(err, exc.ReadTimeoutError):
        reason = f"no reply from {url} within {read_timeout:g} s"
        return Failure(reason, UNREACHABLE_ATTEMPTS, backoff=False)
    if isinstance(err, exc.ConnectTimeoutError):
        reason = f"no connection to {url} within {CONNECT_TIMEOUT:g} s"
        return Failure(reason, UNREACHABLE_ATTEMPTS, backoff=False)
    if isinstance(err, exc.SSLError):
        reason = f"TLS with {url} failed ({err.kwargs.get('error')})"
        return Failure(reason, UNREACHABLE_ATTEMPTS, backoff=False)
    if isinstance(err, exc.ConnectionError):
        # urllib3's text ends with the OS's reason: "[Errno 111] Connection refused".
        found = re.search(r"\[Errno -?\d+\] ([^)\]]+)", str(err.kwargs.get("error", "")))
        why = f" ({found.group(1).strip().lower()})" if found else ""
        return Failure(f"could not connect to {url}{why}", UNREACHABLE_ATTEMPTS, backoff=False)
    if isinstance(err, exc.HTTPClientError):
        reason = f"the connection to {url} was lost before the reply"
        return Failure(reason, READ_ATTEMPTS, backoff=True)
    return None


class RetryPolicy:
    """botocore's `needs-retry` handler for the clients that read (botocore's own retries
    are off in every client): whether and when a failed attempt is tried again.

    Each retry is announced through `notify` as it happens (call, region, why, attempt n
    of m, the wait), and an interruption ends the wait at once. Once interrupted, nothing is
    retried or announced.
    """

    def __init__(
        self,
        region: str,
        read_timeout: float,
        stop: threading.Event,
        notify: Callable[[str], None],
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.region = region
        self.read_timeout = read_timeout
        self.stop = stop
        self.notify = notify
        self._jitter = jitter

    def __call__(
        self,
        attempts: int,
        operation: Any = None,
        response: Any = None,
        caught_exception: BaseException | None = None,
        **kwargs: Any,
    ) -> float | None:
        failure = classify(response, caught_exception, self.read_timeout)
        if failure is None or attempts >= failure.attempts:
            return None
        if self.stop.is_set():
            raise Interrupted("interrupted; no new call was started")
        wait = self.wait(failure, attempts)
        call = getattr(operation, "name", "a call")
        self.notify(
            f"Retrying {call} in {self.region} in {wait:.1f} s: attempt {attempts} of "
            f"{failure.attempts} failed: {failure.reason}"
        )
        if self.stop.wait(wait):
            raise Interrupted("interrupted; no new call was started")
        return 0.0  # waited here, where an interruption ends the wait; botocore's sleep can't

    def wait(self, failure: Failure, attempts: int) -> float:
        """Seconds before attempt `attempts` + 1."""
        if failure.backoff:  # botocore's standard backoff: full jitter, capped
            return min(MAX_BACKOFF, self._jitter() * 2.0 ** (attempts - 1))
        return UNREACHABLE_WAITS[min(attempts, len(UNREACHABLE_WAITS)) - 1]


def pace(
    client: Any, bucket: TokenBucket, stop: threading.Event, throttle_codes: frozenset[str]
) -> None:
    """Every HTTP attempt of `client` (retries included) takes a token from `bucket` first;
    a throttled answer slows the bucket down, a good one lets it recover."""
    pace_by(client, lambda: (bucket, stop), throttle_codes)


def pace_by(
    client: Any,
    pacing: Callable[[], tuple[TokenBucket, threading.Event]],
    throttle_codes: frozenset[str],
) -> None:
    """`pace`, on the bucket (and the run's stop) `pacing` gives at each attempt: a client
    shared by the run's accounts paces each call on its account's (`Shared`)."""

    def before_send(**kwargs: Any) -> None:
        bucket, stop = pacing()
        bucket.acquire(stop)

    def received(**kwargs: Any) -> None:
        bucket = pacing()[0]
        parsed = kwargs.get("parsed_response") or {}
        if parsed.get("Error", {}).get("Code", "") in throttle_codes:
            bucket.throttled()
        elif kwargs.get("exception") is None:
            bucket.succeeded()

    events = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-send.{events}", before_send)
    client.meta.events.register(f"response-received.{events}", received)


class RegionClient:
    """WorkSpaces in one region: paced, counted, paginated calls.

    Two botocore clients share one bucket: `reads` retries (reads and tag writes are
    idempotent); `creates` never retries a 5xx or a timeout, because a create whose reply
    was lost may have run, and only a lookup by name can tell.
    """

    def __init__(
        self,
        region: str,
        reads: WorkSpacesClient,
        creates: Callable[[], WorkSpacesClient],
        settings: AwsSettings,
        stop: threading.Event,
        account: str = "",
    ) -> None:
        self.region = region
        self.account = account  # the account of the map it acts in; "" without a map
        self.reads = reads
        self.bucket = TokenBucket(settings.api_rate)
        self.stop = stop
        self.pool = ThreadPoolExecutor(
            max_workers=settings.concurrency, thread_name_prefix=f"aws-{region}"
        )
        pace(reads, self.bucket, stop, THROTTLE_CODES)
        # Made when a create is first sent: a plan never needs it, and a client costs some
        # milliseconds of CPU, which a run over many accounts and regions feels.
        self._make_creates = creates
        self._creates: WorkSpacesClient | None = None
        self._creates_lock = threading.Lock()

    @property
    def creates(self) -> WorkSpacesClient:
        with self._creates_lock:
            if self._creates is None:
                self._creates = self._make_creates()
                pace(self._creates, self.bucket, self.stop, THROTTLE_CODES)
            return self._creates

    def map(
        self,
        fn: Callable[[Any], T],
        items: Sequence[Any],
        abandoned: Callable[[Any, bool], T] | None = None,
    ) -> list[T]:
        """fn over items through this region's pool, results in order. Once interrupted, the
        calls in flight are abandoned (see `gather`): `abandoned(item, started)` stands for
        the result of each item not done; without it, Interrupted is raised."""
        return gather([self.pool.submit(fn, item) for item in items], items, self.stop, abandoned)

    def images(self) -> Iterator[WorkspaceImageTypeDef]:
        """Every image the account owns in this region, 25 a page."""
        return self.pages(
            "describe_workspace_images", "Images", ImageType="OWNED", MaxResults=PAGE_SIZE
        )

    def tags(self, resource_id: str) -> dict[str, str] | None:
        """The resource's tags; None if it no longer exists (deleted since it was listed)."""
        try:
            reply = self.reads.describe_tags(ResourceId=resource_id)
        except botocore.exceptions.ClientError as err:
            if error_code(err) == "ResourceNotFoundException":
                return None
            raise
        # An image created without tags may come back with no TagList at all.
        return {t["Key"]: t.get("Value", "") for t in reply.get("TagList", [])}

    def pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
        """Every entry under `key` of a NextToken-paged read, page after page (botocore has
        no paginator for several WorkSpaces reads, DescribeWorkspaceImagePermissions among
        them)."""
        call = getattr(self.reads, operation)
        token: str | None = None
        while True:
            page = call(**kwargs, **({"NextToken": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return

    def workspaces(self, workspace_ids: Sequence[str]) -> list[WorkspaceTypeDef]:
        """The WorkSpaces that exist among `workspace_ids`, 25 ids a call."""
        chunks = [workspace_ids[i : i + PAGE_SIZE] for i in range(0, len(workspace_ids), PAGE_SIZE)]
        found: list[WorkspaceTypeDef] = []
        for reply in self.map(
            lambda ids: self.reads.describe_workspaces(WorkspaceIds=list(ids)), chunks
        ):
            found.extend(reply.get("Workspaces", []))
        return found

    def close(self) -> None:
        # Never waits: after an interruption a thread may still hang in an abandoned call.
        self.pool.shutdown(wait=False, cancel_futures=True)


class TaggingDenied(Exception):
    """tag:GetResources was refused (AccessDeniedException): read tags one at a time."""


def resource_arn(partition: str, region: str, account: str, kind: str, resource_id: str) -> str:
    """The ARN of a WorkSpaces image or bundle (`kind`: IMAGE_RESOURCE, BUNDLE_RESOURCE)."""
    return f"arn:{partition}:workspaces:{region}:{account}:{kind}/{resource_id}"


def arn_kind_and_id(arn: str) -> tuple[str, str]:
    """('workspaceimage', 'wsi-...') of a WorkSpaces ARN; ('', '') for any other ARN."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[2] != "workspaces" or "/" not in parts[5]:
        return "", ""
    kind, _, resource_id = parts[5].partition("/")
    return kind, resource_id


class TagReader:
    """The Resource Groups Tagging API in one region: the tags of up to 100 resources a call.

    Only resources with at least one tag are in its answers, so a resource it leaves out has
    no tags. It is eventually consistent: a tag written seconds ago may not show yet, which
    is why apply confirms with DescribeTags before it changes anything.
    """

    def __init__(
        self,
        region: str,
        partition: str,
        client: Any,  # a botocore ResourceGroupsTaggingAPI client
        settings: AwsSettings,
        stop: threading.Event,
        bucket: TokenBucket | None = None,
        *,
        paced: bool = True,  # False: the client is paced per call (`Shared`)
    ) -> None:
        self.region = region
        self.partition = partition
        self.client = client
        self.bucket = bucket or TokenBucket(settings.tagging_rate)
        self.concurrency = settings.concurrency
        self.stop = stop
        if paced:
            pace(client, self.bucket, stop, TAGGING_THROTTLE_CODES)

    def arn(self, kind: str, account: str, resource_id: str) -> str:
        return resource_arn(self.partition, self.region, account, kind, resource_id)

    def tags(
        self, arns: Sequence[str], done: Callable[[int], None] | None = None
    ) -> dict[str, dict[str, str]]:
        """The tags of each resource of `arns`, by ARN; absent means no tags. `done` hears
        how many resources each answered call covered. Raises TaggingDenied."""
        wanted = list(dict.fromkeys(arns))
        batches = [wanted[i : i + TAGGING_BATCH] for i in range(0, len(wanted), TAGGING_BATCH)]

        def read(batch: list[str]) -> dict[str, dict[str, str]]:
            asked = set(batch)
            found = {a: t for a, t in self._resources(ResourceARNList=batch) if a in asked}
            if done:
                done(len(batch))
            return found

        found: dict[str, dict[str, str]] = {}
        workers = min(len(batches), self.concurrency)
        if workers <= 1:
            results = [read(b) for b in batches]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix=f"tags-{self.region}") as pool:
                results = list(pool.map(read, batches))
        for result in results:
            found.update(result)
        return found

    def owned(
        self, resource_types: Sequence[str] = (IMAGE_RESOURCE, BUNDLE_RESOURCE)
    ) -> dict[str, dict[str, str]]:
        """Every resource of these types (`workspaceimage`, ...) in this region that carries
        the ownership tag, with all its tags, by ARN. Raises TaggingDenied, or botocore's
        error when the region refuses us."""
        owned = [{"Key": OWNERSHIP_TAG_KEY, "Values": [OWNERSHIP_TAG_VALUE]}]
        kinds = [f"workspaces:{kind}" for kind in resource_types]
        return dict(
            self._resources(
                TagFilters=owned, ResourceTypeFilters=kinds, ResourcesPerPage=TAGGING_BATCH
            )
        )

    def _resources(self, **kwargs: Any) -> Iterator[tuple[str, dict[str, str]]]:
        """(ARN, tags) of every resource a GetResources query answers, page after page."""
        while True:
            try:
                page = self.client.get_resources(**kwargs)
            except botocore.exceptions.ClientError as err:
                if error_code(err) == "AccessDeniedException":
                    raise TaggingDenied(str(err)) from err
                raise
            for mapping in page.get("ResourceTagMappingList", []):
                tags = {t["Key"]: t.get("Value", "") for t in mapping.get("Tags", [])}
                yield mapping["ResourceARN"], tags
            # The API may answer a short page before the end: only an empty token ends it.
            token = page.get("PaginationToken")
            if not token:
                return
            kwargs["PaginationToken"] = token


class OnceEach(Generic[T]):
    """Values made on first use, one per key, each made once under a lock of its own: a
    client takes milliseconds of CPU to make, and many more while the run's other threads
    take their turns, so one lock for all would hold every region's first read up behind
    every other region's client."""

    def __init__(self) -> None:
        self._made: dict[str, T] = {}
        self._making: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: str, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._made:
                return self._made[key]
            lock = self._making.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._made:
                    return self._made[key]
            value = make()
            with self._lock:
                self._made[key] = value
            return value

    def values(self) -> list[T]:
        with self._lock:
            return list(self._made.values())


class ActingTagReader(TagReader):
    """A TagReader for one account on a client shared by every account of the run (see
    `Shared`): each call acts for its account, with its credentials and on its pace, and an
    answer that names another account's resource is refused, never used."""

    def __init__(
        self,
        region: str,
        partition: str,
        client: Any,
        settings: AwsSettings,
        stop: threading.Event,
        acting: Acting,
    ) -> None:
        super().__init__(region, partition, client, settings, stop, acting.bucket, paced=False)
        self.acting = acting

    def _resources(self, **kwargs: Any) -> Iterator[tuple[str, dict[str, str]]]:
        token = _ACTING.set(self.acting)
        try:
            answered = list(super()._resources(**kwargs))
        finally:
            _ACTING.reset(token)
        for arn, _ in answered:
            owner = arn.split(":", 5)[4] if arn.count(":") >= 5 else ""
            if owner != self.acting.account:
                raise AwsError(
                    f"tag:GetResources in {self.region} for account {self.acting.account} "
                    f"answered {arn}, a resource of account {owner or 'unknown'}; nothing was "
                    "changed",
                    hint="run again; if it persists, report it with the output of -v",
                )
        yield from answered


@dataclass(frozen=True)
class Acting:
    """The account a call on a shared client acts for: its id, credentials and pace."""

    account: str
    credentials: Any  # botocore Credentials (refreshable for an assumed role)
    bucket: TokenBucket
    stop: threading.Event


# Set around each call a shared client makes (`ActingTagReader`): in the calling thread,
# where botocore signs and sends it, so that no other call sees it.
_ACTING: ContextVar[Acting | None] = ContextVar("reconciler_acting", default=None)


def _acting() -> Acting:
    acting = _ACTING.get()
    if acting is None:  # a shared client is never called but for an account
        raise RuntimeError("a client shared by the run's accounts was called for no account")
    return acting


def _acting_pace() -> tuple[TokenBucket, threading.Event]:
    acting = _acting()
    return acting.bucket, acting.stop


class ActingCredentials(botocore.credentials.Credentials):
    """The credentials of the account the current call acts for (`Acting`), read when
    botocore signs it: one client then serves every account of the run."""

    def __init__(self) -> None:  # no keys of its own
        self.method = "reconciler-acting"

    def get_frozen_credentials(self) -> botocore.credentials.ReadOnlyCredentials:
        frozen: botocore.credentials.ReadOnlyCredentials = (
            _acting().credentials.get_frozen_credentials()
        )
        return frozen


def derived_session(
    base: boto3.session.Session, credentials: Any, region: str | None
) -> boto3.session.Session:
    """A session with `credentials` (any botocore credentials object, refreshable ones
    included) that shares what `base` has loaded: its event handlers (a session of its own
    would register botocore's builtin ones again, ~5 ms) and its service models (parsed
    again otherwise, tens of ms a client). Each client copies the handlers it is made with,
    so those a client adds stay its own. It reads the base's profile (--profile), whose
    settings (a CA bundle, endpoints, proxies) hold for every account the run reaches."""
    base_core = base._session
    core = botocore.session.Session(profile=base_core.profile, include_builtin_handlers=False)
    core.register_component("event_emitter", base_core.get_component("event_emitter"))
    # botocore's own way to give a session refreshable credentials (its set_credentials
    # takes only static keys); boto3 builds its assume-role profiles the same way.
    core._credentials = credentials  # type: ignore[attr-defined]
    loader = base_core.get_component("data_loader")
    core.register_component("data_loader", loader)
    session = boto3.session.Session(botocore_session=core, region_name=region)
    # boto3 adds its own data folder to the loader's search paths with every session: the
    # shared loader would list it once more for each account.
    loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session


class Shared:
    """What the clients of every account of a run share.

    - `in_background`'s pool (BACKGROUND threads for every account together).
    - Discovery's tagging clients: one per region, not one per account and region. A run
      over 20 accounts asks 17 regions of each that it reads for no other reason; made per
      account, those 340 clients and their first calls were half the run's CPU (3 ms to
      make a client, 1 ms more for its first call). Each call acts for its account
      (`ActingTagReader`): signed with its credentials, paced on its bucket.
    """

    def __init__(self, base: boto3.session.Session) -> None:
        self.pool = ThreadPoolExecutor(max_workers=BACKGROUND, thread_name_prefix="background")
        self._base = base
        self._tagging: OnceEach[Any] = OnceEach()
        self._session: OnceEach[boto3.session.Session] = OnceEach()

    def tagging(self, region: str, make: Callable[[boto3.session.Session], Any]) -> Any:
        """The region's shared tagging client, made by `make` from a session whose
        credentials are the acting account's."""

        def made() -> Any:
            session = self._session.get("acting", self._acting_session)
            client = make(session)
            pace_by(client, _acting_pace, TAGGING_THROTTLE_CODES)
            return client

        return self._tagging.get(region, made)

    def _acting_session(self) -> boto3.session.Session:
        return derived_session(self._base, ActingCredentials(), self._base.region_name)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _ignore(note: str) -> None:
    pass


_made: set[str] = set()
_making: dict[str, threading.Lock] = {}
_making_lock = threading.Lock()


@contextmanager
def _first_of(service: str) -> Iterator[None]:
    """Make the run's first client of `service` alone. botocore's loader caches the service's
    model and data once it has read them, but clients made at once in many threads (every
    region of every account) each miss that cache and read them again (hundreds of ms of CPU
    a client with 20 accounts); after the first, clients share what it read."""
    if service in _made:
        yield
        return
    with _making_lock:
        lock = _making.setdefault(service, threading.Lock())
    with lock:
        yield
        _made.add(service)


class Clients:
    """One RegionClient and one TagReader per region, made lazily from one boto3 session.

    `notify` hears the run's notes for stderr (the CLI prints them; core modules don't).
    """

    def __init__(
        self,
        settings: AwsSettings,
        stop: threading.Event | None = None,
        notify: Callable[[str], None] = _ignore,
        *,
        session: boto3.session.Session | None = None,
        account: str = "",
        shared: Shared | None = None,
    ) -> None:
        self.settings = settings
        # The account of the map these clients act in ("" for the run's own clients).
        self.account_key = account
        # One Clients per account of the map, by id (`for_account`), sharing the run's stop.
        self._accounts: dict[str, Clients] = {}
        self.stop = stop or threading.Event()
        self._notify = notify
        # Held while a note is printed and while the stop is set, so that no note (a retry,
        # say) is printed after the line that says the run was interrupted.
        self._notes = threading.Lock()
        # Set once tag:GetResources is refused: every later tag read goes one at a time.
        self.tagging_denied = False
        self._taggers: OnceEach[TagReader] = OnceEach()
        self._discoverers: OnceEach[TagReader] = OnceEach()
        self._tagging_buckets: OnceEach[TokenBucket] = OnceEach()
        try:
            self.session = session or boto3.session.Session(profile_name=settings.profile)
        except botocore.exceptions.ProfileNotFound as err:
            raise ConfigError(
                f"AWS profile '{settings.profile}' not found",
                hint="check --profile against `aws configure list-profiles`",
            ) from err
        # What the clients of every account of the run share (the run's own clients make it).
        self._own_shared = shared is None
        self.shared = shared or Shared(self.session)
        self.read_timeout = read_timeout()
        self._client_config = self._config()  # one for every client: each reads it only
        # (where it is set, URL) of every endpoint used instead of AWS's, checked before any
        # client is made: boto3 would raise a bare ValueError.
        self.endpoints = configured_endpoints(settings.endpoint_url, self.session._session)
        self._regions: OnceEach[RegionClient] = OnceEach()
        self._lock = threading.Lock()
        self._account: str | None = None
        self._account_lock = threading.Lock()

    def notify(self, note: str) -> None:
        """A note for stderr; none once the run is interrupted."""
        with self._notes:
            if not self.stop.is_set():
                self._notify(note)

    def in_background(self, fn: Callable[[K], T], places: Sequence[K]) -> dict[K, T]:
        """fn per place, for work the run does not wait for soon (finding owned resources in
        regions it reads for no other reason): on one pool of BACKGROUND threads for every
        account of the run together. Python runs one thread at a time, in turns, and a
        thread started waits for its turn: hundreds of such threads (17 regions of each of
        20 accounts) would each take turns before the reads the plan waits for could take
        their next step. The first failure is raised; Interrupted once the run stops. `fn`
        must not wait for other background work (the pool is bounded)."""
        futures = [self.shared.pool.submit(fn, place) for place in places]
        return dict(zip(places, gather(futures, places, self.stop), strict=True))

    def interrupt(self, say: Callable[[], None]) -> None:
        """Stop the run: no new call, no retry, no note; `say` (the first time only) says so,
        after every note printed before it."""
        with self._notes:
            first = not self.stop.is_set()
            self.stop.set()
            if first:
                say()

    @property
    def default_region(self) -> str | None:
        """--region, else AWS_REGION / AWS_DEFAULT_REGION / the profile's region."""
        # botocore reads only AWS_DEFAULT_REGION; AWS_REGION, which the AWS CLI and the
        # other SDKs honour first, must be read here.
        return self.settings.region or os.environ.get("AWS_REGION") or self.session.region_name

    @property
    def default_region_source(self) -> str:
        """Where default_region comes from, as a user would name it in an error."""
        if self.settings.region:
            return "--region"
        for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if os.environ.get(variable):
                return variable
        config = os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
        return f"the region of AWS profile '{self.session.profile_name}' in {config}"

    @property
    def custom_endpoint(self) -> bool:
        """Whether the calls go to an endpoint of the user's (a local one such as moto's)."""
        return bool(self.endpoints)

    def for_account(self, account: str, session: boto3.session.Session) -> Clients:
        """The clients of one account of the map: calls made with `session` (the base one,
        or one that assumes the account's role), paced on buckets of their own, as the
        service's limits are per account and region. Made once per account."""
        with self._lock:
            if account not in self._accounts:
                self._accounts[account] = Clients(
                    self.settings,
                    self.stop,
                    self.notify,
                    session=session,
                    account=account,
                    shared=self.shared,
                )
            return self._accounts[account]

    @property
    def accounts(self) -> Mapping[str, Clients]:
        """The clients of each account of the map made so far, by id."""
        return dict(self._accounts)

    def region(self, region: str, account: str | None = None) -> RegionClient:
        """The region's client in `account` (an account of the map, by id), else in the
        run's own account."""
        if account:
            return self._accounts[account].region(region)
        return self._regions.get(
            region,
            lambda: RegionClient(
                region,
                self._client(region, retries=True),
                lambda: self._client(region, retries=False),
                self.settings,
                self.stop,
                self.account_key,
            ),
        )

    def tag_reader(self, region: str) -> TagReader | None:
        """The region's bulk tag reader; None once tag:GetResources was refused this run."""
        if self.tagging_denied:
            return None

        def make() -> TagReader:
            # --endpoint-url serves every API (a local endpoint such as moto's serves them
            # all on one URL); None lets boto3 honour AWS_ENDPOINT_URL(_*) itself.
            client = self._service_client("resourcegroupstaggingapi", region, retries=True)
            bucket = self._tagging_bucket(region)
            return TagReader(
                region, self.partition(region), client, self.settings, self.stop, bucket
            )

        return self._taggers.get(region, make)

    def discovery_reader(self, region: str) -> TagReader | None:
        """The reader discovery asks a region the run reads for no other reason with: for
        an account of the map, one on the tagging client every account shares there
        (`Shared`), acting for this account; else the region's own. None once
        tag:GetResources was refused this run."""
        if not self.account_key:
            return self.tag_reader(region)
        if self.tagging_denied:
            return None

        def make() -> TagReader:
            client = self.shared.tagging(
                region,
                lambda session: self._service_client(
                    "resourcegroupstaggingapi", region, retries=True, session=session
                ),
            )
            acting = Acting(
                self.account_key,
                self.session.get_credentials(),
                self._tagging_bucket(region),
                self.stop,
            )
            return ActingTagReader(
                region, self.partition(region), client, self.settings, self.stop, acting
            )

        return self._discoverers.get(region, make)

    def _tagging_bucket(self, region: str) -> TokenBucket:
        """The pace of the tagging API in this account and region, one for every reader."""
        return self._tagging_buckets.get(region, lambda: TokenBucket(self.settings.tagging_rate))

    def tagging_refused(self) -> None:
        """tag:GetResources was denied: read tags one at a time from now on, and say so once."""
        with self._lock:
            first, self.tagging_denied = not self.tagging_denied, True
        if first:
            self.notify(
                "Note: the role may not call tag:GetResources, so tags are read one image at "
                "a time (workspaces:DescribeTags), and only the regions the specs name (with "
                "the default region and `regions:` of the root defaults) are read; add "
                "tag:GetResources to the role (see the docs' IAM page, docs/iam.md) for faster "
                "runs that also find owned images in every region"
            )

    def account(self) -> str:
        """The caller's account id: sts:GetCallerIdentity (which needs no permission), once a
        run, in the default region (or us-east-1), through --endpoint-url like every API.
        For an account of the map, the account its credentials act in (the AssumeRole is
        made there)."""
        # A lock of its own: the call must not hold up the region clients' lock.
        with self._account_lock:
            if self._account is None:
                region = self.default_region or "us-east-1"
                sts = self._service_client("sts", region, retries=True)
                self._account = str(sts.get_caller_identity()["Account"])
            return self._account

    def partition(self, region: str) -> str:
        """The region's partition (aws, aws-cn, aws-us-gov, ...), from botocore's data."""
        try:
            return str(self.session.get_partition_for_region(region))
        except botocore.exceptions.UnknownRegionError:
            return "aws"  # a region newer than this botocore: most likely the main partition

    def workspaces_regions(self, home: str) -> list[str]:
        """Every region of `home`'s partition where WorkSpaces is offered, from botocore's
        endpoint data (opt-in regions included: they may refuse us)."""
        regions = self.session.get_available_regions(
            "workspaces", partition_name=self.partition(home)
        )
        return sorted(regions)

    def _client(self, region: str, *, retries: bool) -> WorkSpacesClient:
        client: WorkSpacesClient = self._service_client("workspaces", region, retries=retries)
        return client

    def _service_client(
        self,
        service: str,
        region: str,
        *,
        retries: bool,
        session: boto3.session.Session | None = None,
    ) -> Any:
        """A client of `service` in `region` (made with `session`, else this account's);
        with `retries`, RetryPolicy retries its calls."""
        try:
            with _first_of(service):
                # endpoint_url=None lets boto3 honour AWS_ENDPOINT_URL(_*) and the profile's.
                client = (session or self.session).client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    endpoint_url=self.settings.endpoint_url,
                    config=self._client_config,
                )
        except ValueError as err:  # a malformed URL in a profile's `services` section
            raise ConfigError(
                f"boto3 refused the endpoint configured for {service} in {region}: {err}",
                hint="check the endpoint_url settings of the AWS profile in use",
            ) from err
        if retries:
            policy = RetryPolicy(region, self.read_timeout, self.stop, self.notify)
            client.meta.events.register("needs-retry", policy)
        return client

    def _config(self) -> botocore.config.Config:
        return botocore.config.Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=self.read_timeout,
            # One attempt as far as botocore goes: RetryPolicy decides every retry.
            retries={"mode": "standard", "total_max_attempts": 1},
            max_pool_connections=max(10, self.settings.concurrency * 2),
            user_agent_extra="workspaces-image-reconciler",
        )

    def close(self) -> None:
        for client in self._regions.values():
            client.close()
        for account in self._accounts.values():
            account.close()
        if self._own_shared:  # never waits, as RegionClient.close
            self.shared.close()


def gather(
    futures: Sequence[Future[T]],
    items: Sequence[Any],
    stop: threading.Event,
    abandoned: Callable[[Any, bool], T] | None = None,
) -> list[T]:
    """The results of `futures` (one per item), in order; the first failure is raised, as
    Executor.map does. Once `stop` is set, the work not done is abandoned: without
    `abandoned`, at once, by raising Interrupted; with it, after IN_FLIGHT_GRACE (calls in
    flight may answer meanwhile), `abandoned(item, started)` standing for each result
    (`started`: its work was running, so its call may have been sent)."""
    grace = IN_FLIGHT_GRACE if abandoned is not None else 0.0
    deadline: float | None = None
    results: list[T] = []
    try:
        for item, future in zip(items, futures, strict=True):
            while not future.done():
                if deadline is None and stop.is_set():
                    deadline = time.monotonic() + grace
                left = STOP_POLL if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    break
                wait_for_futures([future], timeout=min(STOP_POLL, left))
            if future.cancel():  # queued, never started
                results.append(_abandon(abandoned, item, started=False))
            elif future.done():
                results.append(future.result())
            else:
                results.append(_abandon(abandoned, item, started=True))
    finally:
        for future in futures:
            future.cancel()
    return results


def _abandon(abandoned: Callable[[Any, bool], T] | None, item: Any, *, started: bool) -> T:
    if abandoned is None:
        raise Interrupted("interrupted; calls in flight were abandoned")
    return abandoned(item, started)


def until_stopped(work: Callable[[], T], stop: threading.Event, grace: float = 0.0) -> T:
    """work() in a thread of its own, while the calling (main) thread waits and watches
    `stop`: a main thread blocked in a call, or joining a pool whose thread hangs in one,
    would see a signal only when the call ends. Once `stop` is set, work gets `grace`
    seconds more to end, then it is abandoned with its calls in flight: Interrupted."""
    outcome: Future[T] = Future()

    def run() -> None:
        outcome.set_running_or_notify_cancel()
        try:
            outcome.set_result(work())
        except BaseException as err:  # handed to the waiting thread, which raises it
            outcome.set_exception(err)

    # A daemon thread: interpreter exit does not wait for it (the CLI ends an interrupted
    # process without joining the pools' threads either).
    threading.Thread(target=run, name="run", daemon=True).start()
    deadline: float | None = None
    while not outcome.done():
        if deadline is None and stop.is_set():
            deadline = time.monotonic() + grace
        left = STOP_POLL if deadline is None else deadline - time.monotonic()
        if left <= 0:
            raise Interrupted("interrupted; calls in flight were abandoned")
        wait_for_futures([outcome], timeout=min(STOP_POLL, left))
    return outcome.result()


def in_parallel(fn: Callable[[K], T], places: Sequence[K]) -> dict[K, T]:
    """fn per place (a region, an account, or both), in parallel: each account and region
    has its own pace and pool."""
    if len(places) <= 1:
        return {p: fn(p) for p in places}
    with ThreadPoolExecutor(max_workers=len(places), thread_name_prefix="region") as pool:
        return dict(zip(places, pool.map(fn, places), strict=True))


def error_code(err: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    if isinstance(err, botocore.exceptions.ClientError):
        return str(err.response.get("Error", {}).get("Code", "")) or None
    return None


def error_message(err: BaseException) -> str:
    """The AWS message of a botocore ClientError, else the exception's text."""
    if isinstance(err, botocore.exceptions.ClientError):
        return str(err.response.get("Error", {}).get("Message", "")) or str(err)
    return str(err)


def short_error(err: BaseException) -> str:
    """One line for a failed call, for an item's error: the AWS code and message."""
    code = error_code(err)
    return f"{code}: {error_message(err)}" if code else f"{type(err).__name__}: {err}"


def is_ambiguous(err: BaseException) -> bool:
    """A failure after which the call may or may not have run: 5xx, timeout, reset."""
    if isinstance(err, botocore.exceptions.ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return int(status) >= 500
    return isinstance(
        err,
        botocore.exceptions.ConnectionError
        | botocore.exceptions.HTTPClientError
        | botocore.exceptions.ReadTimeoutError,
    )


def connection_problem(err: BaseException, read_timeout: float) -> AwsError | None:
    """One clear line for an endpoint that can't be reached or doesn't answer."""
    failure = _connection_failure(err, read_timeout)
    if failure is None or failure.backoff:
        return None
    if isinstance(err, botocore.exceptions.ReadTimeoutError):
        hint = (
            "the endpoint accepts connections but does not answer: check it (--endpoint-url, "
            "AWS_ENDPOINT_URL); on a slow network raise RECONCILER_READ_TIMEOUT (seconds)"
        )
    elif isinstance(err, botocore.exceptions.SSLError):
        hint = "check the endpoint's certificate, or point AWS_CA_BUNDLE at your CA bundle"
    else:
        hint = "is the endpoint up? check --endpoint-url / AWS_ENDPOINT_URL, the region and "
        hint += "the network"
    return AwsError(f"{failure.reason}; gave up after {failure.attempts} attempts", hint=hint)


def credential_problem(err: BaseException) -> ConfigError | None:
    """One clear line for missing or expired credentials, instead of a traceback."""
    if isinstance(err, botocore.exceptions.NoCredentialsError):
        return ConfigError(
            "no AWS credentials found",
            hint="set AWS_PROFILE or --profile, or run `aws sso login` / `aws configure`",
        )
    code = error_code(err)
    if code in ("ExpiredTokenException", "ExpiredToken", "RequestExpired"):
        return ConfigError("the AWS session token has expired", hint="log in again (aws sso login)")
    if code in ("UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException"):
        return ConfigError("AWS rejected the credentials", hint="check the profile or keys in use")
    if isinstance(err, botocore.exceptions.TokenRetrievalError | botocore.exceptions.SSOError):
        return ConfigError("the AWS SSO session has expired", hint="run `aws sso login`")
    return None
