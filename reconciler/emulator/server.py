"""A local WorkSpaces and Resource Groups Tagging API endpoint: moto's server plus the
fidelity layer and middleware.

Built like moto's ``ThreadedMotoServer`` (werkzeug ``make_server`` around moto's WSGI app,
:func:`~reconciler.emulator.moto_adapter.server_app`, threaded, in a daemon thread), with
:class:`~reconciler.emulator.middleware.FidelityMiddleware` around the app so that tests
can pace, delay, break and count calls as the real service and network would.
``reconciler demo`` serves it unpaced and without faults.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import moto_adapter as adapter
from .layer import Fidelity, FidelityConfig, installed
from .middleware import CallRecorder, Faults, FidelityMiddleware


class _QuietHandler(WSGIRequestHandler):
    """No access log lines on stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class LocalEndpoint:
    """What :func:`local_endpoint` yields. ``middleware.set_pace(...)``,
    ``middleware.set_tagging_pace(...)`` and ``middleware.latency`` change pacing and
    latency while it runs."""

    url: str
    fidelity: Fidelity
    calls: CallRecorder
    faults: Faults
    middleware: FidelityMiddleware
    server: BaseWSGIServer


def reset_moto(url: str) -> None:
    """Reset every moto backend through the server's ``POST /moto-api/reset``."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    # ``url`` is a local endpoint's http:// URL (local_endpoint's or a test's), never user input.
    request = urllib.request.Request(f"{url}/moto-api/reset", data=b"", method="POST")  # noqa: S310
    with opener.open(request, timeout=10) as reply:
        reply.read()


@contextmanager
def local_endpoint(
    config: FidelityConfig | None = None,
    *,
    faults: Faults | None = None,
    pace: tuple[float, int] | None = None,
    tagging_pace: tuple[float, int] | None = None,
    latency: float = 0.0,
) -> Iterator[LocalEndpoint]:
    """Serve WorkSpaces on http://127.0.0.1:<free port> with moto state reset on entry.

    ``pace`` is (calls per second, burst) per account and region, e.g. (2, 5); the account
    is the one moto serves the request in (a key from STS AssumeRole: the role's account);
    ``tagging_pace`` is the same for the Resource Groups Tagging API, which the same URL
    serves (buckets of its own, default unpaced); ``latency`` seconds are added to every
    WorkSpaces and tagging call; ``faults`` may be prepared beforehand or changed later
    through ``endpoint.faults``. The server stops and the layer is uninstalled on exit.
    """
    calls = CallRecorder()
    faults = faults if faults is not None else Faults()
    app = adapter.server_app()
    middleware = FidelityMiddleware(
        app,
        calls,
        faults,
        pace=pace,
        tagging_pace=tagging_pace,
        latency=latency,
        identify=adapter.account_of,
        expiry=adapter.credentials_expiry,
    )
    server = make_server("127.0.0.1", 0, middleware, threaded=True, request_handler=_QuietHandler)
    url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
        name=f"fidelity-moto-{server.server_port}",
        daemon=True,
    )
    with installed(config) as fidelity:
        thread.start()
        try:
            reset_moto(url)
            yield LocalEndpoint(url, fidelity, calls, faults, middleware, server)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
