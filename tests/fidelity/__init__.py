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

The same URL serves the Resource Groups Tagging API (``boto3.client(
"resourcegroupstaggingapi", ...)``) for WorkSpaces images and bundles, with switches on the
handle: ``deny_tagging``, ``disable_region``, ``stale_tags``; ``local_endpoint(tagging_pace=
(rate, burst))`` paces it apart from WorkSpaces.

See ``layer`` (service behaviour), ``tagging`` (the tagging API), ``middleware`` (network
and throttling) and ``server``.
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
from .middleware import (
    FAULT_KINDS,
    TAGGING_WILDCARD,
    Call,
    CallRecorder,
    Decision,
    Faults,
    FidelityMiddleware,
)
from .server import LocalEndpoint, local_endpoint, reset_moto
from .tagging import (
    MAX_ARNS,
    MAX_TAG_ARNS,
    TAGGING_PAGE_SIZE,
    AccessDeniedException,
    InvalidParameterException,
    UnrecognizedClientException,
    bundle_arn,
    image_arn,
)

__all__ = [
    "FAULT_KINDS",
    "MAX_ARNS",
    "MAX_IDS",
    "MAX_TAG_ARNS",
    "PAGE_SIZE",
    "TAGGING_PAGE_SIZE",
    "TAGGING_WILDCARD",
    "TAG_LIMIT",
    "AccessDeniedException",
    "Call",
    "CallRecorder",
    "Decision",
    "Faults",
    "Fidelity",
    "FidelityConfig",
    "FidelityMiddleware",
    "InvalidParameterException",
    "InvalidResourceStateException",
    "LocalEndpoint",
    "ResourceAssociatedException",
    "ResourceLimitExceededException",
    "UnrecognizedClientException",
    "bundle_arn",
    "image_arn",
    "installed",
    "local_endpoint",
    "reset_moto",
]
