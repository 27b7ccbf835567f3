"""Fidelity layer: moto's WorkSpaces backend made to behave like the real service in tests.

In-process::

    with mock_aws(), installed(FidelityConfig(capture_seconds=0.0)) as f:
        f.add_workspace("eu-west-1", "ws-0a1b2c3d4")
        ...

Over HTTP, with pacing, faults and a call recorder::

    with local_endpoint(pace=(2, 5)) as ep:
        client = boto3.client("workspaces", endpoint_url=ep.url, region_name="eu-west-1")
        ep.faults.fail_once("CreateWorkspaceImage", "lost_reply")
        ...

See ``layer`` (service behaviour), ``middleware`` (network and throttling) and ``server``.
"""

from .layer import (
    MAX_IDS,
    PAGE_SIZE,
    TAG_LIMIT,
    Fidelity,
    FidelityConfig,
    InvalidResourceStateException,
    ResourceAssociatedException,
    ResourceLimitExceededException,
    installed,
)
from .middleware import FAULT_KINDS, Call, CallRecorder, Decision, Faults, FidelityMiddleware
from .server import LocalEndpoint, local_endpoint, reset_moto

__all__ = [
    "FAULT_KINDS",
    "MAX_IDS",
    "PAGE_SIZE",
    "TAG_LIMIT",
    "Call",
    "CallRecorder",
    "Decision",
    "Faults",
    "Fidelity",
    "FidelityConfig",
    "FidelityMiddleware",
    "InvalidResourceStateException",
    "LocalEndpoint",
    "ResourceAssociatedException",
    "ResourceLimitExceededException",
    "installed",
    "local_endpoint",
    "reset_moto",
]
