"""The one place that talks to AWS: clients, retries, pacing, pagination.

WorkSpaces paces its API at about 2 calls per second per region with bursts of 5 and
answers `ThrottlingException` beyond that. Instead of running into the limit and backing
off, every HTTP attempt (retries included) takes a token from a per-region bucket first,
so a run proceeds at the service's pace without being throttled. If the service throttles
anyway (another tool shares the account's budget), the bucket slows down and recovers.

Creates are never retried blindly: the client that sends `CreateWorkspaceImage` has
retries off, and the caller settles an ambiguous failure by looking the name up.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from reconciler.errors import ConfigError, Interrupted

if TYPE_CHECKING:
    from types_boto3_workspaces.client import WorkSpacesClient
    from types_boto3_workspaces.type_defs import (
        WorkspaceImageTypeDef,
        WorkspaceTypeDef,
    )

T = TypeVar("T")

PAGE_SIZE = 25  # the service's maximum for DescribeWorkspaceImages and DescribeWorkspaces
SERVICE_BURST = 5  # the service's documented burst
# One token short of the service's burst: the service's bucket then always keeps a spare
# token, which absorbs the jitter between our clock and the service's (requests that leave
# 0.5 s apart may arrive 0.49 s apart). It costs 0.5 s once per run, never a throttle.
BURST = SERVICE_BURST - 1
CONNECT_TIMEOUT = 5.0
# How long to wait for a reply. RECONCILER_READ_TIMEOUT overrides it (seconds), for
# networks where the default is wrong, and for tests of slow replies.
READ_TIMEOUT = float(os.environ.get("RECONCILER_READ_TIMEOUT", "30"))
# Enough attempts to ride out throttling from other tools that share the account's budget.
READ_ATTEMPTS = 10
THROTTLE_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)


@dataclass(frozen=True)
class AwsSettings:
    """How to reach AWS; everything the CLI's AWS options carry."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    api_rate: float = 2.0  # calls per second per region; 0 means no pacing
    concurrency: int = 16  # calls in flight at once per region


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
        creates: WorkSpacesClient,
        settings: AwsSettings,
        stop: threading.Event,
    ) -> None:
        self.region = region
        self.reads = reads
        self.creates = creates
        self.bucket = TokenBucket(settings.api_rate)
        self.stop = stop
        self.pool = ThreadPoolExecutor(
            max_workers=settings.concurrency, thread_name_prefix=f"aws-{region}"
        )
        for client in (reads, creates):
            client.meta.events.register("before-send.workspaces", self._before_send)
            client.meta.events.register("response-received.workspaces", self._received)

    def _before_send(self, **kwargs: Any) -> None:
        # Runs before every HTTP attempt, retries included: the pace covers them all.
        self.bucket.acquire(self.stop)

    def _received(self, **kwargs: Any) -> None:
        parsed = kwargs.get("parsed_response") or {}
        if parsed.get("Error", {}).get("Code", "") in THROTTLE_CODES:
            self.bucket.throttled()
        elif kwargs.get("exception") is None:
            self.bucket.succeeded()

    def map(self, fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
        """fn over items through this region's pool, in order; stops early when interrupted."""
        return list(self.pool.map(fn, items))

    def images(self) -> Iterator[WorkspaceImageTypeDef]:
        """Every image the account owns in this region, 25 a page."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"ImageType": "OWNED", "MaxResults": PAGE_SIZE}
            if token:
                kwargs["NextToken"] = token
            page = self.reads.describe_workspace_images(**kwargs)
            yield from page.get("Images", [])
            token = page.get("NextToken")
            if not token:
                return

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
        self.pool.shutdown(wait=True, cancel_futures=True)


class Clients:
    """One RegionClient per region, made lazily from one boto3 session."""

    def __init__(self, settings: AwsSettings, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        try:
            self.session = boto3.session.Session(profile_name=settings.profile)
        except botocore.exceptions.ProfileNotFound as err:
            raise ConfigError(
                f"AWS profile '{settings.profile}' not found",
                hint="check --profile against `aws configure list-profiles`",
            ) from err
        self._regions: dict[str, RegionClient] = {}
        self._lock = threading.Lock()

    @property
    def default_region(self) -> str | None:
        """--region, else AWS_REGION / AWS_DEFAULT_REGION / the profile's region."""
        # botocore reads only AWS_DEFAULT_REGION; AWS_REGION, which the AWS CLI and the
        # other SDKs honour first, must be read here.
        return self.settings.region or os.environ.get("AWS_REGION") or self.session.region_name

    def region(self, region: str) -> RegionClient:
        with self._lock:
            if region not in self._regions:
                self._regions[region] = RegionClient(
                    region,
                    self._client(region, retries=True),
                    self._client(region, retries=False),
                    self.settings,
                    self.stop,
                )
            return self._regions[region]

    def _client(self, region: str, *, retries: bool) -> WorkSpacesClient:
        config = botocore.config.Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": READ_ATTEMPTS if retries else 1},
            max_pool_connections=max(10, self.settings.concurrency * 2),
            user_agent_extra="workspaces-image-reconciler",
        )
        # endpoint_url=None lets boto3 honour AWS_ENDPOINT_URL(_WORKSPACES) itself.
        return self.session.client(
            "workspaces", region_name=region, endpoint_url=self.settings.endpoint_url, config=config
        )

    def close(self) -> None:
        for client in self._regions.values():
            client.close()


def in_parallel(fn: Callable[[str], T], regions: Sequence[str]) -> dict[str, T]:
    """fn per region, regions in parallel (each region has its own pace and pool)."""
    if len(regions) <= 1:
        return {r: fn(r) for r in regions}
    with ThreadPoolExecutor(max_workers=len(regions), thread_name_prefix="region") as pool:
        return dict(zip(regions, pool.map(fn, regions), strict=True))


def error_code(err: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    if isinstance(err, botocore.exceptions.ClientError):
        return str(err.response.get("Error", {}).get("Code", "")) or None
    return None


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
