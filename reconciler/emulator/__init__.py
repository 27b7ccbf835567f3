"""The WorkSpaces emulator: moto made to answer like the real service, for the tests and the demo.

One emulator, not two: the test suite (through ``tests.fidelity``, a re-export of this
package), the benchmarks, CI's action job (``.ci/local-endpoint.py``) and ``reconciler
demo`` all run this code, so what the demo shows is what the tests check. It needs moto,
flask and flask-cors (the ``demo`` extra). Only ``reconciler.demo`` imports it, when the
demo runs, so every other command works without moto installed and never loads it.

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

Copies, sharing and bundles (CopyWorkspaceImage, UpdateWorkspaceImagePermission,
DescribeWorkspaceImagePermissions, Create/Describe/Update/DeleteWorkspaceBundle) behave like
the real service too, with hooks on the handle::

    bundle_id = f.add_bundle("eu-west-1", "finance-standard", image_id, tags={"team": "a"})
    f.use_bundle("eu-west-1", bundle_id)       # a WorkSpace runs from it
    f.fail_copies("us-east-1")                 # the next copy there ends in ERROR
    f.shared_accounts("eu-west-1", image_id)   # ["111122223333", ...]

Updated images (CreateUpdatedWorkspaceImage) and the ``Updates`` of each image::

    f.offer_update("eu-west-1", image_id, description="New drivers")  # UpdateAvailable: true
    f.offer_update("eu-west-1", image_id, offered=False)               # withdrawn
    f.fail_updates("eu-west-1", name="golden-2")   # that updated image ends in ERROR
    f.updated_from("eu-west-1", new_id)            # its source image id

Several accounts, one endpoint: credentials from the endpoint's STS ``AssumeRole`` act in
the role's account (moto's own rule, see ``moto_adapter.account_of``); every hook takes
``account_id``; the endpoint paces and records calls per account and region::

    creds = sts.assume_role(RoleArn="arn:aws:iam::222222222222:role/x",
                            RoleSessionName="run")["Credentials"]
    f.set_shared_accounts("eu-west-1", image_id, ["222222222222"], account_id="111111111111")
    f.shared_images("eu-west-1", "222222222222")   # [{"id", "name", "state", "owner"}]
    ep.calls.by_account()                          # {"222222222222": 7, ...}
    ep.calls.roles_assumed()                       # {"222222222222": 1}
    ep.faults.error_for("AssumeRole", "AccessDenied", status=403,
                        when=lambda q: ":222222222222:" in q["RoleArn"])

See ``layer`` (service behaviour), ``lifecycle`` (copies, sharing, bundles), ``tagging``
(the tagging API), ``middleware`` (network and throttling) and ``server``.
"""

from .errors import OperationNotSupportedException
from .layer import (
    BUNDLE_IN_USE_BY_IMAGE,
    BUNDLE_NAME_REUSE_SECONDS,
    BUNDLE_QUOTA,
    MAX_IDS,
    NO_UPDATE_DESCRIPTION,
    PAGE_SIZE,
    TAG_LIMIT,
    UPDATE_DESCRIPTION,
    Bundle,
    Fidelity,
    FidelityConfig,
    InvalidResourceStateException,
    ResourceAssociatedException,
    ResourceLimitExceededException,
    ResourceUnavailableException,
    installed,
)
from .lifecycle import PUBLIC_OWNER, public_bundles
from .middleware import (
    FAULT_KINDS,
    TAGGING_WILDCARD,
    Call,
    CallRecorder,
    Decision,
    Faults,
    FidelityMiddleware,
)
from .model import compute_types
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
    "BUNDLE_IN_USE_BY_IMAGE",
    "BUNDLE_NAME_REUSE_SECONDS",
    "BUNDLE_QUOTA",
    "FAULT_KINDS",
    "MAX_ARNS",
    "MAX_IDS",
    "MAX_TAG_ARNS",
    "NO_UPDATE_DESCRIPTION",
    "PAGE_SIZE",
    "PUBLIC_OWNER",
    "TAGGING_PAGE_SIZE",
    "TAGGING_WILDCARD",
    "TAG_LIMIT",
    "UPDATE_DESCRIPTION",
    "AccessDeniedException",
    "Bundle",
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
    "OperationNotSupportedException",
    "ResourceAssociatedException",
    "ResourceLimitExceededException",
    "ResourceUnavailableException",
    "UnrecognizedClientException",
    "bundle_arn",
    "compute_types",
    "image_arn",
    "installed",
    "local_endpoint",
    "public_bundles",
    "reset_moto",
]
