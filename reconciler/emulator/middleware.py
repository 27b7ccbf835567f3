"""WSGI middleware in front of a moto server: what the network and the real service add.

moto answers every call at once, never throttles and never loses a reply. The real
WorkSpaces API throttles each account and region (``ThrottlingException``, HTTP 400; the
image APIs are documented at 2 calls per second), and a client may see a 5xx, a timeout or
a dropped connection for a call the service did or did not run. This middleware wraps the
moto server's WSGI app and reproduces those for WorkSpaces requests (header
``X-Amz-Target: WorkspacesService.<Operation>``) and Resource Groups Tagging API requests
(``X-Amz-Target: ResourceGroupsTaggingAPI_20170126.<Operation>``, json-1.1, what botocore
sends); every other request passes through.

* :class:`CallRecorder`: account, region, operation, time, throttled, status of each call.
  The region is read from the SigV4 credential scope, the account from the access key
  (``identify``: the server passes moto's own rule, so a key AssumeRole handed out counts
  in the role's account, as moto serves it); the Authorization header itself is never
  stored.
* Pacing: a token bucket per account and region, as the real service throttles; an empty
  bucket answers ThrottlingException without calling moto. The tagging API has its own
  pace (``tagging_pace``, buckets of its own per account and region, default unpaced) and
  answers ``ThrottledException``, the throttling error its model declares (botocore's retry
  handler knows both codes).
* Expiry: a WorkSpaces or tagging call signed with AssumeRole credentials past their
  expiry (``expiry``, from moto's STS, which never checks it) answers
  ``ExpiredTokenException`` ("The security token included in the request is expired"),
  as AWS does; so a client that does not refresh its credentials fails as it would.
* STS calls (query protocol: AssumeRole, GetCallerIdentity, ...) are recorded
  (``Call.api == "sts"``; AssumeRole with the role's ARN, ``Call.role_arn``), unpaced.
  :meth:`Faults.error_for` and :meth:`Faults.fail_once` name STS operations exactly
  (``"AssumeRole"``, never matched by ``"*"``; ``when`` sees the query's parameters), and
  an STS error is answered in the query protocol's XML (e.g. ``AccessDenied``, 403, for
  a role that does not trust the caller).
* Tagging calls are recorded (``Call.api == "tagging"``, operation e.g. ``GetResources``).
  Faults target them by operation name (``"GetResources"``) or ``"tagging:*"``; ``"*"``
  still means every WorkSpaces operation only, and tagging calls draw from a random
  sequence of their own, so WorkSpaces faults stay exactly as reproducible as before.
* Latency: seconds added before each call.
* :class:`Faults`: random (seeded) or one-shot faults, and AWS error codes for chosen
  requests.

Errors use the json-1.1 protocol's format botocore parses:
``{"__type": "Code", "message": "..."}`` with ``x-amzn-ErrorType: Code``. Both APIs also
offer smithy-rpc-v2-cbor, which botocore does not choose today (1.44 resolves json-1.1);
moto would answer such requests (see ``moto_adapter``), but this middleware would pass them
through unpaced and unrecorded, so a botocore that switches needs it taught the format.
"""

from __future__ import annotations

import io
import json
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

TARGET_PREFIX = "WorkspacesService."
TAGGING_TARGET_PREFIX = "ResourceGroupsTaggingAPI_20170126."
TAGGING_WILDCARD = "tagging:*"
"""Operation pattern of :class:`Faults` matching every tagging API call."""
FAULT_KINDS = ("throttle", "error_before", "lost_reply", "reset", "reset_after", "slow")
"""throttle: ThrottlingException, call not run. error_before: 500, call not run.
lost_reply: call run, reply replaced by a 500. reset: connection closed, call not run.
reset_after: call run, then the connection is closed. slow: call run, the reply is
delayed by ``slow_seconds`` (to exceed a client read timeout)."""

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")
_SERVICE = re.compile(r"Credential=[^/,\s]+/\d{8}/[a-z0-9-]+/sts/")
_KEY = re.compile(r"Credential=([^/,\s]+)/")
_EXPIRED = "The security token included in the request is expired"
_STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
_JSON = "application/x-amz-json-1.1"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Identify = Callable[[str, Mapping[str, str]], str]
"""(access key, request headers) -> the account the request acts in."""
Expiry = Callable[[str], float | None]
"""access key -> when its credentials expire (epoch seconds), None if they don't."""


def _seeded(seed: int) -> random.Random:
    # The draws choose faults to inject and must repeat for a seed: no secret depends on them.
    return random.Random(seed)  # noqa: S311


@dataclass(frozen=True)
class Call:
    """One request. ``status`` is 0 when the connection was reset unanswered; ``api`` is
    "workspaces", "tagging" or "sts"; ``account`` is the account the call acted in (whose
    credentials signed it); ``role_arn`` is the role an AssumeRole call asked for."""

    region: str
    operation: str
    time: float  # time.monotonic()
    throttled: bool
    status: int
    api: str = "workspaces"
    account: str = ""
    role_arn: str = ""

    @property
    def role_account(self) -> str:
        """The account of the role an AssumeRole call asked for ("" for other calls)."""
        parts = self.role_arn.split(":")
        return parts[4] if len(parts) > 5 else ""


class CallRecorder:
    """Thread-safe record of the WorkSpaces and tagging API requests the endpoint received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def all(self) -> list[Call]:
        """Every call, in arrival order of their replies."""
        with self._lock:
            return list(self._calls)

    def __len__(self) -> int:
        return len(self.all())

    def count(
        self,
        operation: str | None = None,
        region: str | None = None,
        *,
        throttled: bool | None = None,
        api: str | None = None,
        account: str | None = None,
    ) -> int:
        """Number of calls, optionally only of one operation, region, throttled-ness, api
        ("workspaces", "tagging" or "sts") or account (the one the call acted in)."""
        return sum(
            1
            for c in self.all()
            if (operation is None or c.operation == operation)
            and (region is None or c.region == region)
            and (throttled is None or c.throttled == throttled)
            and (api is None or c.api == api)
            and (account is None or c.account == account)
        )

    def by_account(self, *, api: str | None = None, operation: str | None = None) -> dict[str, int]:
        """Calls per account they acted in, optionally only of one api or operation."""
        return dict(
            Counter(
                c.account
                for c in self.all()
                if api in (None, c.api) and operation in (None, c.operation)
            )
        )

    def roles_assumed(self) -> dict[str, int]:
        """Answered (HTTP 200) AssumeRole calls per account of the role assumed."""
        return dict(
            Counter(
                c.role_account
                for c in self.all()
                if c.api == "sts" and c.operation == "AssumeRole" and c.status == 200
            )
        )

    def throttled(self, region: str | None = None) -> int:
        """Number of calls answered ThrottlingException."""
        return self.count(region=region, throttled=True)

    def by_operation(self, region: str | None = None) -> dict[str, int]:
        """Calls per operation name."""
        return dict(Counter(c.operation for c in self.all() if region in (None, c.region)))

    def changing(self, region: str | None = None) -> list[Call]:
        """Calls of operations that may change something (name not starting Describe or
        Get)."""
        return [
            c
            for c in self.all()
            if not c.operation.startswith(("Describe", "Get")) and region in (None, c.region)
        ]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


@dataclass(frozen=True)
class Decision:
    """What the middleware does to one call: a FAULT_KINDS entry, or "error" (an AWS code)."""

    kind: str
    code: str = ""
    message: str = ""
    status: int = 400
    seconds: float = 0.0


@dataclass
class _ErrorRule:
    operation: str
    code: str
    message: str
    status: int
    when: Callable[[dict[str, Any]], bool] | None
    times: int | None


class Faults:
    """Fault settings, changeable while the endpoint runs.

    Rates are per operation name or ``"*"`` (the fallback for each field). Each call draws
    the same number of numbers from ``random.Random(seed)``, so a sequential run is
    reproducible whatever rates are set. One-shot faults (:meth:`fail_once`) come first,
    then error rules (:meth:`error_for`), then the random rates.
    """

    _RATE_FIELDS = (*(f"{kind}_rate" for kind in FAULT_KINDS), "slow_seconds")

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = _seeded(seed)
        self._tagging_rng = _seeded(seed)
        self._rates: dict[str, dict[str, float]] = {}
        self._once: list[tuple[str, str, float | None]] = []
        self._rules: list[_ErrorRule] = []

    def set(self, operation: str = "*", **rates: float) -> Faults:
        """Set rates for an operation (or "*"): throttle_rate, error_before_rate,
        lost_reply_rate, reset_rate, reset_after_rate, slow_rate (fractions of calls) and
        slow_seconds. Returns self, for chaining."""
        unknown = set(rates) - set(self._RATE_FIELDS)
        if unknown:
            raise TypeError(f"unknown fault settings {sorted(unknown)}")
        with self._lock:
            self._rates.setdefault(operation, {}).update(rates)
        return self

    def rates(self, operation: str, *, tagging: bool = False) -> dict[str, float]:
        """Effective settings for an operation (its own, else "*" or, for a tagging API
        operation, "tagging:*", else 0)."""
        with self._lock:
            wildcard = TAGGING_WILDCARD if tagging else "*"
            wild, own = self._rates.get(wildcard, {}), self._rates.get(operation, {})
            return {f: own.get(f, wild.get(f, 0.0)) for f in self._RATE_FIELDS}

    def seed(self, seed: int) -> None:
        with self._lock:
            self._rng = _seeded(seed)
            self._tagging_rng = _seeded(seed)

    def fail_once(
        self, operation: str, kind: str, *, times: int = 1, seconds: float | None = None
    ) -> None:
        """The next ``times`` calls of ``operation`` (or "*") get fault ``kind``
        (see FAULT_KINDS); ``seconds`` is the delay of a "slow" fault (default its
        slow_seconds setting, else 5)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        with self._lock:
            self._once.extend([(operation, kind, seconds)] * times)

    def error_for(
        self,
        operation: str,
        code: str,
        *,
        when: Callable[[dict[str, Any]], bool] | None = None,
        message: str | None = None,
        status: int = 400,
        times: int | None = None,
    ) -> None:
        """Answer ``code`` (e.g. "AccessDeniedException") to calls of ``operation`` (or "*")
        whose JSON body satisfies ``when`` (all if None), without running them; ``times``
        limits how often (None: always). A ``when`` raising KeyError counts as False."""
        rule = _ErrorRule(operation, code, message or f"Injected {code}", status, when, times)
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        """Drop every rate, one-shot fault and error rule (the seed sequence continues)."""
        with self._lock:
            self._rates.clear()
            self._once.clear()
            self._rules.clear()

    def decide_sts(self, operation: str, params: dict[str, Any]) -> Decision | None:
        """The one-shot fault or error rule naming this STS operation exactly, if any (STS
        calls draw no random numbers and match no wildcard, so adding them changed no
        WorkSpaces sequence). Only "error", "throttle" and "error_before" apply."""
        with self._lock:
            for index, (op, kind, _) in enumerate(self._once):
                if op == operation and kind in ("throttle", "error_before"):
                    del self._once[index]
                    return Decision(kind)
            for rule in list(self._rules):
                if rule.operation == operation and _matches(rule.when, params):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self._rules.remove(rule)
                    return Decision("error", rule.code, rule.message, rule.status)
        return None

    def decide(
        self, operation: str, body: dict[str, Any], *, tagging: bool = False
    ) -> Decision | None:
        """The fault for this call, if any (``tagging``: a tagging API operation)."""
        rates = self.rates(operation, tagging=tagging)
        wildcard = TAGGING_WILDCARD if tagging else "*"
        with self._lock:
            for index, (op, kind, seconds) in enumerate(self._once):
                if op in (operation, wildcard):
                    del self._once[index]
                    return Decision(kind, seconds=seconds or rates["slow_seconds"] or 5.0)
            for rule in list(self._rules):
                if rule.operation in (operation, wildcard) and _matches(rule.when, body):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self._rules.remove(rule)
                    return Decision("error", rule.code, rule.message, rule.status)
            rng = self._tagging_rng if tagging else self._rng
            draws = [rng.random() for _ in FAULT_KINDS]
        for kind, draw in zip(FAULT_KINDS, draws, strict=True):
            if draw < rates[f"{kind}_rate"]:
                return Decision(kind, seconds=rates["slow_seconds"])
        return None


def _matches(when: Callable[[dict[str, Any]], bool] | None, body: dict[str, Any]) -> bool:
    if when is None:
        return True
    try:
        return bool(when(body))
    except (KeyError, TypeError, ValueError):
        return False


class _TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def region_of(authorization: str) -> str:
    """Region of a SigV4 Authorization header's credential scope ("unknown" if none)."""
    match = _SCOPE.search(authorization)
    return match.group(1) if match else "unknown"


def access_key_of(authorization: str) -> str:
    """The access key id of a SigV4 Authorization header ("" if none)."""
    match = _KEY.search(authorization)
    return match.group(1) if match else ""


def _unknown_account(access_key: str, headers: Mapping[str, str]) -> str:
    return "unknown"


def _never_expires(access_key: str) -> float | None:
    return None


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back for moto."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = stream.read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return bytes(body)


def _parse(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@dataclass(frozen=True)
class _Request:
    api: str
    operation: str
    region: str
    account: str
    role_arn: str = ""

    @property
    def throttle_code(self) -> str:
        return "ThrottledException" if self.api == "tagging" else "ThrottlingException"

    @property
    def internal_code(self) -> str:
        return "InternalServiceException" if self.api == "tagging" else "InternalServerError"

    def done(self, throttled: bool, status: int) -> Call:
        return Call(
            self.region,
            self.operation,
            time.monotonic(),
            throttled,
            status,
            self.api,
            self.account,
            self.role_arn,
        )


class FidelityMiddleware:
    """WSGI app wrapping moto's: recording, pacing, latency and faults (module doc)."""

    def __init__(
        self,
        app: WSGIApp,
        calls: CallRecorder | None = None,
        faults: Faults | None = None,
        *,
        pace: tuple[float, int] | None = None,
        tagging_pace: tuple[float, int] | None = None,
        latency: float = 0.0,
        identify: Identify = _unknown_account,
        expiry: Expiry = _never_expires,
    ) -> None:
        """``identify`` names the account of a request (default: "unknown" for every
        request, one bucket per region), ``expiry`` when a key's credentials expire (default:
        never); the served emulator passes moto's (``moto_adapter.account_of`` and
        ``credentials_expiry``)."""
        self.app = app
        self.identify = identify
        self.expiry = expiry
        self.calls = calls if calls is not None else CallRecorder()
        self.faults = faults if faults is not None else Faults()
        self.latency = latency
        self._lock = threading.Lock()
        self._paces: dict[str, tuple[float, int] | None] = {
            "workspaces": pace,
            "tagging": tagging_pace,
        }
        self._buckets: dict[tuple[str, str, str], _TokenBucket] = {}

    def set_pace(self, pace: tuple[float, int] | None) -> None:
        """(calls per second, burst) per account and region of the WorkSpaces API, or None
        for no pacing; its buckets refill."""
        self._set_pace("workspaces", pace)

    def set_tagging_pace(self, pace: tuple[float, int] | None) -> None:
        """(calls per second, burst) per account and region of the tagging API, or None;
        its buckets refill."""
        self._set_pace("tagging", pace)

    def _set_pace(self, api: str, pace: tuple[float, int] | None) -> None:
        with self._lock:
            self._paces[api] = pace
            for key in [k for k in self._buckets if k[0] == api]:
                del self._buckets[key]

    def _take_token(self, call: _Request) -> bool:
        with self._lock:
            pace = self._paces[call.api]
            if pace is None:
                return True
            key = (call.api, call.account, call.region)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _TokenBucket(*pace)
            return bucket.take()

    def _who(self, environ: dict[str, Any]) -> tuple[str, str, str]:
        """(access key, account, region) of a request."""
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        key = access_key_of(authorization)
        headers = {}
        if "HTTP_X_MOTO_ACCOUNT_ID" in environ:
            headers["x-moto-account-id"] = str(environ["HTTP_X_MOTO_ACCOUNT_ID"])
        return key, self.identify(key, headers), region_of(authorization)

    def _expired(self, access_key: str) -> bool:
        expires = self.expiry(access_key) if access_key else None
        return expires is not None and time.time() >= expires

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(TARGET_PREFIX):
            api, op = "workspaces", target[len(TARGET_PREFIX) :]
        elif target.startswith(TAGGING_TARGET_PREFIX):
            api, op = "tagging", target[len(TAGGING_TARGET_PREFIX) :]
        else:
            return self._other(environ, start_response)
        key, account, region = self._who(environ)
        call = _Request(api, op, region, account)
        body = _read_body(environ)
        if self.latency > 0:
            time.sleep(self.latency)
        if self._expired(key):
            return self._error(start_response, call, 400, "ExpiredTokenException", _EXPIRED)
        if not self._take_token(call):
            return self._error(start_response, call, 400, call.throttle_code)
        decision = self.faults.decide(op, _parse(body), tagging=api == "tagging")
        kind = decision.kind if decision else None
        if kind == "throttle":
            return self._error(start_response, call, 400, call.throttle_code)
        if kind == "error_before":
            return self._error(start_response, call, 500, call.internal_code)
        if decision and kind == "error":
            return self._error(
                start_response, call, decision.status, decision.code, decision.message
            )
        if kind == "reset":
            self._reset(environ, call)
        status, headers, payload = self._run(environ)
        if kind == "lost_reply":
            return self._error(start_response, call, 500, call.internal_code)
        if kind == "reset_after":
            self._reset(environ, call)
        if decision and kind == "slow":
            time.sleep(decision.seconds)
        self.calls.record(call.done(False, int(status.split()[0])))
        start_response(status, headers)
        return [payload]

    def _other(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Any other API passes through untouched; STS calls (query protocol, e.g.
        GetCallerIdentity, AssumeRole) are recorded too (``Call.api == "sts"``), so that a
        test counts every call a run makes at the server, and may be refused by
        :meth:`Faults.error_for` (answered in the query protocol's XML)."""
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if _SERVICE.search(authorization) is None:
            return self.app(environ, start_response)
        body = _read_body(environ)
        query = parse_qs(body.decode("utf-8", "replace"))
        params = {name: values[0] for name, values in query.items() if values}
        operation = params.get("Action", "unknown")
        _, account, region = self._who(environ)
        role = params.get("RoleArn", "") if operation.startswith("AssumeRole") else ""
        call = _Request("sts", operation, region, account, role)
        decision = self.faults.decide_sts(operation, params)
        if decision is not None:
            return self._sts_error(start_response, call, decision)
        status, headers, payload = self._run(environ)
        self.calls.record(call.done(False, int(status.split()[0])))
        start_response(status, headers)
        return [payload]

    def _run(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """Run moto's app to completion and buffer its reply."""
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return chunks.append

        result = self.app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return captured["status"], captured["headers"], b"".join(chunks)

    def _error(
        self,
        start_response: Callable[..., Any],
        call: _Request,
        status: int,
        code: str,
        message: str | None = None,
    ) -> list[bytes]:
        """Answer an AWS json-1.1 error without (or instead of) moto's reply."""
        throttled = code in ("ThrottlingException", "ThrottledException")
        if message is None:
            message = "Rate exceeded" if throttled else "Internal error"
        self.calls.record(call.done(throttled, status))
        payload = json.dumps({"__type": code, "message": message}).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [
                ("Content-Type", _JSON),
                ("x-amzn-ErrorType", code),
                ("x-amzn-RequestId", str(uuid.uuid4())),
                ("Content-Length", str(len(payload))),
            ],
        )
        return [payload]

    def _sts_error(
        self, start_response: Callable[..., Any], call: _Request, decision: Decision
    ) -> list[bytes]:
        """Answer an STS (query protocol) error instead of moto's reply."""
        if decision.kind == "throttle":
            status, code, message = 400, "Throttling", "Rate exceeded"
        elif decision.kind == "error_before":
            status, code, message = 500, "InternalFailure", "Internal error"
        else:
            status, code, message = decision.status, decision.code, decision.message
        self.calls.record(call.done(decision.kind == "throttle", status))
        kind = "Receiver" if status >= 500 else "Sender"
        request_id = str(uuid.uuid4())
        payload = (
            f'<ErrorResponse xmlns="{_STS_NAMESPACE}"><Error><Type>{kind}</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [
                ("Content-Type", "text/xml"),
                ("x-amzn-RequestId", request_id),
                ("Content-Length", str(len(payload))),
            ],
        )
        return [payload]

    def _reset(self, environ: dict[str, Any], call: _Request) -> None:
        """Close the client connection without a reply (RST on close: SO_LINGER 0).

        werkzeug's dev server exposes the socket as ``environ["werkzeug.socket"]``; shutting
        it down ends the request handler's read loop, and raising ConnectionAbortedError
        makes werkzeug drop the request quietly instead of answering a 500.
        """
        sock = environ.get("werkzeug.socket")
        if sock is None:
            raise RuntimeError("the reset fault needs werkzeug's server (werkzeug.socket)")
        self.calls.record(call.done(False, 0))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise ConnectionAbortedError("fidelity: connection reset fault")
