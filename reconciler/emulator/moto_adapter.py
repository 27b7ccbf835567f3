"""The one module that knows moto: every import from moto, every name inside it, every
method set on its classes, and every return type that changed between its releases.

The rest of the emulator (``layer``, ``lifecycle``, ``tagging``, ``server``) models the
real service and talks to moto only through the small functions here, so a new moto
release that moves something is a change to this file (and a failing test in
``tests/fidelity_selftest/test_moto_adapter.py`` that names what moved).

Supported: moto :data:`MOTO_FLOOR` up to the newest release (5.2.6 when this was written).
What differs between them, and how each is met here:

* Replies: moto 5.2.1 answered WorkSpaces calls with JSON strings built by
  ``to_dict`` / ``to_desc_dict`` / ``to_dict_pending``; 5.2.6 builds them in the response
  classes and returns ``ActionResult`` objects, which moto serialises in the request's
  wire format (json-1.1 or smithy-rpc-v2-cbor). The emulator builds every reply itself
  (:func:`describe_image`, :func:`describe_workspace`) and returns :func:`reply`, an
  ``ActionResult`` in every supported release.
* Errors: moto's own WorkSpaces errors were ``JsonRESTError`` (JSON only) and are now
  ``ServiceException``; the emulator's errors derive from :class:`ServiceError` (a
  ``ServiceException``), which moto serialises in the request's wire format in every
  supported release.
* Requests: WorkSpaces and the tagging API offer smithy-rpc-v2-cbor too, and a botocore
  that prefers it would send CBOR (1.44 still picks json-1.1). :func:`params` reads the
  parameters moto parsed (CBOR or JSON) when the response class parses them, else the JSON
  body. :func:`check_compatible` refuses, with what to do, a
  moto that can't read the wire format the installed botocore sends.
* Objects: the backend's ``create_workspace_image`` / ``describe_workspace_images``
  returned dicts and now return ``WorkspaceImage`` objects, and an image's ``created`` was
  epoch seconds and is now a datetime. The emulator creates images itself
  (:func:`new_image`) and reads times through :func:`created_at`.
* The tagging API: ``_get_resources_generator`` yielded dicts and now yields
  ``TaggedResource`` values; :func:`other_tagged_resources` answers mappings either way.

* Accounts: moto serves every account from one endpoint. It picks a request's account
  from ``MOTO_ACCOUNT_ID``, else the ``x-moto-account-id`` header, else the account whose
  IAM holds the request's access key; STS AssumeRole makes its key in the role's account
  (``arn:aws:iam::<account>:role/...``), so a request signed with it acts there.
  :func:`account_of` answers the same question outside moto (the middleware's pacing and
  call records) and :func:`credentials_expiry` reads the expiry AssumeRole gave a key;
  both are the same in every supported release.

The attributes the emulator reads and writes on moto's objects are listed in
:data:`IMAGE_FIELDS`, :data:`WORKSPACE_FIELDS` and :data:`BACKEND_FIELDS`; the self-tests
check each one against the installed moto.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib.metadata import version
from typing import Any, TypeVar

import botocore
import botocore.session
from moto.core.exceptions import ServiceException
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.core.utils import get_service_model
from moto.iam.models import get_account_id_from
from moto.moto_api._internal import mock_random
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.resourcegroupstaggingapi.responses import ResourceGroupsTaggingAPIResponse
from moto.sts.models import sts_backends
from moto.workspaces.models import Workspace, WorkspaceImage, WorkSpacesBackend, workspaces_backends
from moto.workspaces.responses import WorkSpacesResponse

from reconciler.errors import ConfigError

__all__ = [
    "BACKEND_FIELDS",
    "DEFAULT_ACCOUNT_ID",
    "IMAGE_FIELDS",
    "MOTO_FLOOR",
    "PATCHED_CLASSES",
    "WORKSPACE_FIELDS",
    "Backend",
    "Image",
    "IncompatibleMoto",
    "Reply",
    "Response",
    "ServiceError",
    "TaggingResponse",
    "WorkSpace",
]

MOTO_FLOOR = "5.2.1"
"""The oldest moto the emulator runs on (pyproject's ``moto>=`` says the same)."""

Backend = WorkSpacesBackend
"""moto's WorkSpaces backend of one account and region (fields: :data:`BACKEND_FIELDS`)."""
Image = WorkspaceImage
"""moto's image object (fields: :data:`IMAGE_FIELDS`)."""
WorkSpace = Workspace
"""moto's WorkSpace object (fields: :data:`WORKSPACE_FIELDS`)."""
Response = WorkSpacesResponse
"""The class moto answers WorkSpaces calls with; the layer sets its methods on it."""
TaggingResponse = ResourceGroupsTaggingAPIResponse
"""The class moto answers tagging API calls with; :mod:`.tagging` sets methods on it."""
Reply = ActionResult
"""What a patched operation returns (see :func:`reply`)."""
PATCHED_CLASSES = (WorkSpacesResponse, ResourceGroupsTaggingAPIResponse)

IMAGE_FIELDS = (
    "image_id",
    "name",
    "description",
    "state",
    "error_code",
    "error_message",
    "tags",
    "image_permissions",
    "owner_account",
    "operating_system",
    "required_tenancy",
    "created",
)
"""What the emulator reads or sets on moto's images."""
WORKSPACE_FIELDS = ("workspace_id", "directory_id", "user_name", "state", "bundle_id", "tags")
"""What the emulator reads or sets on moto's WorkSpaces."""
BACKEND_FIELDS = ("account_id", "region_name", "workspace_images", "workspaces")
"""What the emulator reads on moto's backend (``workspace_directories`` is optional)."""

_T = TypeVar("_T")


# --- errors -------------------------------------------------------------------------------


class ServiceError(ServiceException):
    """An AWS error moto serialises in the request's wire format; ``code`` is its name,
    which should be one the service's model declares (moto then takes the HTTP status from
    the model; 400 otherwise)."""

    code = "ServiceError"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class IncompatibleMoto(ConfigError):
    """The installed moto can't serve what the installed botocore sends."""


def moto_version() -> str:
    return version("moto")


def _release(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def parses_cbor() -> bool:
    """Whether moto reads smithy-rpc-v2-cbor requests (added after 5.2.1)."""
    try:
        from moto.core import parse
    except ImportError:  # pragma: no cover - every supported moto has it
        return False
    return "smithy-rpc-v2-cbor" in getattr(parse, "PROTOCOL_PARSERS", {})


def botocore_protocol(service: str) -> str:
    """The wire format the installed botocore sends to ``service``."""
    model = botocore.session.get_session().get_service_model(service)
    # botocore picks the first protocol of its own priority list that the service offers
    # (json before smithy-rpc-v2-cbor in 1.44); older releases know only ``protocol``
    return str(getattr(model, "resolved_protocol", None) or model.protocol)


def check_compatible() -> None:
    """:class:`IncompatibleMoto` when moto is older than :data:`MOTO_FLOOR`, or can't read
    the CBOR requests the installed botocore would send (a botocore that prefers
    smithy-rpc-v2-cbor with moto 5.2.1, which has no CBOR parser): say so at once, rather
    than serve an endpoint whose every answer the client can't read."""
    installed = moto_version()
    hint = "pip install --upgrade 'moto[server]' (or 'workspaces-image-reconciler[demo]')"
    if _release(installed) < _release(MOTO_FLOOR):
        raise IncompatibleMoto(
            f"the emulator needs moto {MOTO_FLOOR} or later; moto {installed} is installed",
            hint=hint,
        )
    cbor_services = [
        s
        for s in ("workspaces", "resourcegroupstaggingapi")
        if botocore_protocol(s) == "smithy-rpc-v2-cbor"
    ]
    if cbor_services and not parses_cbor():
        raise IncompatibleMoto(
            f"botocore {botocore.__version__} speaks smithy-rpc-v2-cbor to "
            f"{' and '.join(cbor_services)}, which moto {installed} can't read",
            hint=hint,
        )


# --- backends and the emulator's state on them ----------------------------------------------


def backend(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> Backend:
    """moto's WorkSpaces backend of an account and region (made on first use)."""
    return workspaces_backends[account_id][region]


def has_region(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> bool:
    """Whether moto serves WorkSpaces in ``region``."""
    return region in workspaces_backends[account_id].regions


def backends() -> list[Backend]:
    """Every WorkSpaces backend made so far, of every account."""
    return [b for acct in list(workspaces_backends.values()) for b in list(acct.values())]


def attached(store: Backend, key: str, factory: Callable[[], _T]) -> _T:
    """The emulator's state ``key`` on a backend, made by ``factory`` on first use. Kept on
    moto's object so that a moto reset (which makes new backends) clears it too."""
    value = store.__dict__.get(key)
    if value is None:
        value = factory()
        setattr(store, key, value)
    return value


def peek(store: Backend, key: str) -> Any:
    """The emulator's state ``key`` on a backend, or None if never attached."""
    return store.__dict__.get(key)


def detach(key: str) -> None:
    """Drop the emulator's state ``key`` from every backend."""
    for store in backends():
        store.__dict__.pop(key, None)


def directories(store: Backend) -> dict[str, Any]:
    """The registered directories (only their ids and tags are read)."""
    found = getattr(store, "workspace_directories", None)
    return found if isinstance(found, dict) else {}


# --- accounts and credentials ---------------------------------------------------------------

ACCOUNT_HEADER = "x-moto-account-id"
"""The request header moto takes a request's account from (after ``MOTO_ACCOUNT_ID``)."""


def account_of(access_key: str, headers: Mapping[str, str] | None = None) -> str:
    """The account moto serves a request signed with ``access_key`` in, by moto's own rule
    (``BaseResponse.get_current_account``): ``MOTO_ACCOUNT_ID``, else the
    ``x-moto-account-id`` header, else the account whose IAM holds the key (AssumeRole's
    keys are made in the role's account), else moto's default account."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    for name, value in (headers or {}).items():
        if name.lower() == ACCOUNT_HEADER:
            return value
    return str(get_account_id_from(access_key))


def credentials_expiry(access_key: str) -> float | None:
    """When the credentials AssumeRole handed out with ``access_key`` expire (epoch
    seconds), or None for a key AssumeRole did not make (moto keeps the expiry and never
    checks it)."""
    for account in list(sts_backends.values()):
        for store in list(account.values()):
            for role in list(store.assumed_roles):
                if role.access_key_id == access_key:
                    expiration: datetime = role.expiration  # naive UTC
                    return expiration.replace(tzinfo=timezone.utc).timestamp()
    return None


# --- objects --------------------------------------------------------------------------------


def random_id(prefix: str, alphabet: str, length: int) -> str:
    """``prefix`` and ``length`` characters of ``alphabet``, from moto's seedable random
    (so that seeded runs repeat, like moto's own ids)."""
    return prefix + "".join(mock_random.choice(alphabet) for _ in range(length))


def random_hex(length: int) -> str:
    return str(mock_random.get_random_hex(length))


def new_image(
    store: Backend, name: str, description: str, tags: list[dict[str, str]], state: str
) -> Image:
    """A new image owned by the backend's account, stored in it, in ``state``."""
    image = WorkspaceImage(name, description, tags, store.account_id)
    image.state = state
    store.workspace_images[image.image_id] = image
    return image


def new_workspace(workspace_id: str, state: str, bundle_id: str, directory_id: str) -> WorkSpace:
    """A WorkSpace object with a chosen id (moto picks ids itself and needs a directory)."""
    workspace = Workspace(
        workspace={
            "DirectoryId": directory_id,
            "BundleId": bundle_id,
            "UserName": f"user-{workspace_id}",
        },
        running_mode="ALWAYS_ON",
        error_code="",
        error_msg="",
    )
    workspace.workspace_id = workspace_id
    workspace.state = state
    return workspace


def created_at(resource: Any) -> float | None:
    """A moto object's creation time in epoch seconds (moto 5.2.1 keeps a float, later
    releases a naive UTC datetime), or None if it has none."""
    created = getattr(resource, "created", None)
    if isinstance(created, datetime):
        aware = created if created.tzinfo else created.replace(tzinfo=timezone.utc)
        return aware.timestamp()
    if isinstance(created, int | float) and not isinstance(created, bool):
        return float(created)
    return None


def set_created(resource: Any, epoch: float) -> None:
    """Set a moto object's creation time, in the type moto keeps it in."""
    if isinstance(getattr(resource, "created", None), datetime):
        resource.created = datetime.fromtimestamp(epoch, tz=timezone.utc).replace(tzinfo=None)
    else:
        resource.created = epoch


def _timestamp(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc)


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in ("", [], {}, None)}


def describe_image(image: Image, updates: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An image as DescribeWorkspaceImages shows it (no empty error fields), with the
    ``Updates`` the emulator gives it. moto's own ``updates`` attribute is not read: every
    supported release (5.2.1 to 5.2.6) sets it once to ``UpdateAvailable: false`` and never
    changes it, and the emulator keeps its own (see ``layer.update_of``)."""
    return _present(
        {
            "ImageId": image.image_id,
            "Name": image.name,
            "Description": image.description,
            "OperatingSystem": dict(image.operating_system or {}),
            "State": image.state,
            "RequiredTenancy": image.required_tenancy,
            "Created": _timestamp(created_at(image)),
            "OwnerAccountId": image.owner_account,
            "ErrorCode": image.error_code,
            "ErrorMessage": image.error_message,
            "Updates": dict(updates) if updates is not None else None,
            "ErrorDetails": getattr(image, "error_details", None),
        }
    )


def describe_workspace(workspace: WorkSpace) -> dict[str, Any]:
    """A WorkSpace as DescribeWorkspaces shows it (no empty fields)."""
    return _present(
        {
            "WorkspaceId": workspace.workspace_id,
            "DirectoryId": workspace.directory_id,
            "UserName": workspace.user_name,
            "State": workspace.state,
            "BundleId": workspace.bundle_id,
            "ErrorCode": getattr(workspace, "error_code", None),
            "ErrorMessage": getattr(workspace, "error_message", None),
            "ComputerName": getattr(workspace, "computer_name", None),
            "WorkspaceProperties": getattr(workspace, "workspace_properties", None),
        }
    )


def find_workspaces(
    store: Backend,
    ids: list[str] | None,
    directory_id: str | None,
    user_name: str | None,
    bundle_id: str | None,
) -> list[WorkSpace]:
    """moto's DescribeWorkspaces filtering (and its refusals of bad combinations)."""
    found = store.describe_workspaces(
        workspace_ids=ids,  # type: ignore[arg-type]
        directory_id=directory_id,  # type: ignore[arg-type]
        user_name=user_name,  # type: ignore[arg-type]
        bundle_id=bundle_id,  # type: ignore[arg-type]
    )
    return list(found)


# --- requests and replies ---------------------------------------------------------------------


def params(response: Any) -> dict[str, Any]:
    """The request's parameters: what moto parsed (json-1.1 or rpc-v2-cbor) where the
    response class parses them, else the JSON body."""
    if getattr(response, "automated_parameter_parsing", False):
        parsed = getattr(response, "params", None)
        if isinstance(parsed, dict):
            return dict(parsed)
    body = getattr(response, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    decoded = json.loads(body) if body else {}
    return decoded if isinstance(decoded, dict) else {}


def reply(result: dict[str, Any] | None = None) -> Reply:
    """A patched operation's answer: moto serialises it in the request's wire format, and
    keeps only the members the operation's output shape declares."""
    return ActionResult(result if result is not None else {})


def error_reply(response: Any, error: ServiceError) -> Any:
    """``error`` as moto's ``call_action`` answers it (for a patched ``call_action`` that
    refuses before moto's own runs)."""
    status, headers, body = response.serialized(ActionResult(error))
    headers["status"] = str(status)
    return status, headers, body


def caller(response: Any) -> tuple[str, str]:
    """(account id, region) of the request."""
    return str(response.current_account), str(response.region)


def workspaces_backend(response: Response) -> Backend:
    return response.workspaces_backend


def _plain(result: Any) -> dict[str, Any]:
    """A response method's answer as a dict: moto 5.2.1 answers JSON strings, later
    releases ``ActionResult`` objects."""
    if isinstance(result, ActionResult):
        value = result.result
    elif isinstance(result, str | bytes):
        value = json.loads(result or "{}")
    elif isinstance(result, tuple):  # (status, headers, body)
        value = json.loads(result[-1] or "{}")
    else:
        value = result
    return value if isinstance(value, dict) else {}


def call_original(
    response: Any, method: Callable[[Any], Any], request: dict[str, Any]
) -> dict[str, Any]:
    """Run moto's own ``method`` on ``response`` with other parameters."""
    response.body = json.dumps(request)
    if getattr(response, "automated_parameter_parsing", False):
        response.params = dict(request)
    return _plain(method(response))


def other_tagged_resources(
    response: TaggingResponse, tag_filters: list[dict[str, Any]], type_filters: list[str]
) -> list[dict[str, Any]]:
    """moto's tagging answer (ResourceARN, Tags) for the resources of every other service
    that the filters cover, in the request's account and region."""
    found = response.backend._get_resources_generator(
        tag_filters=tag_filters, resource_type_filters=type_filters
    )
    mappings = []
    for item in found:
        if isinstance(item, dict):
            mappings.append({"ResourceARN": item["ResourceARN"], "Tags": item.get("Tags", [])})
        else:  # TaggedResource(arn, tags: dict, resource_type)
            tags = [{"Key": k, "Value": v} for k, v in item.tags.items()]
            mappings.append({"ResourceARN": item.arn, "Tags": tags})
    return mappings


# --- patching the response classes ----------------------------------------------------------

_MISSING = object()


def original(cls: type, name: str) -> Callable[..., Any]:
    """moto's own method ``name`` of ``cls`` (before any patch of ours)."""
    method: Any = getattr(cls, name, None)
    if not callable(method):
        raise AttributeError(f"moto's {cls.__name__} has no method {name}")
    return method  # type: ignore[no-any-return]


@contextmanager
def patched(cls: type, functions: dict[str, Callable[..., Any]]) -> Iterator[None]:
    """Set ``functions`` as methods of moto's ``cls``; restore every attribute exactly on
    exit (deleted again if moto had none)."""
    saved = {name: cls.__dict__.get(name, _MISSING) for name in functions}
    for name, function in functions.items():
        setattr(cls, name, function)
    try:
        yield
    finally:
        for name, before in saved.items():
            if before is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, before)


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves each host. moto lists its own
    package folder (a stat per entry) to answer that, twice a request and under a lock every
    request takes: ~5 ms of the server's CPU a call, which a benchmark of many accounts feels
    (the server shares the machine's cores with the reconciler)."""

    def __init__(self, create_app: Callable[..., Any]) -> None:
        super().__init__(create_app)
        self._backends: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        # Called under the dispatcher's lock; the answer depends on the host alone.
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]


def server_app() -> Any:
    """moto's server as a WSGI app (every service, dispatched by host and headers)."""
    # moto loads STS's service model on its first query-protocol request, in every thread
    # that makes one before the first finishes (its cache has no lock): 20 accounts reached
    # at once loaded it 20 times, ~0.1 s of CPU each. Loaded once here instead.
    get_service_model("sts")
    return _Dispatcher(create_backend_app)
