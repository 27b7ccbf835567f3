"""The AWS errors the emulator answers, by the names the services' models give them.

Each is a :class:`~reconciler.emulator.moto_adapter.ServiceError`, which moto serialises
in the request's wire format (json-1.1 or smithy-rpc-v2-cbor), with the HTTP status the
model declares (400 for all of these).
"""

from __future__ import annotations

from .moto_adapter import ServiceError

_BAD_CREDENTIALS_MESSAGE = "The security token included in the request is invalid."


class ValidationException(ServiceError):
    """A value outside a constraint of the service's model."""

    code = "ValidationException"


class InvalidParameterValuesException(ServiceError):
    """A parameter the service refuses (WorkSpaces)."""

    code = "InvalidParameterValuesException"


class ResourceNotFoundException(ServiceError):
    """An unknown id (WorkSpaces)."""

    code = "ResourceNotFoundException"


class ResourceAlreadyExistsException(ServiceError):
    """A name taken in the region (WorkSpaces images and bundles)."""

    code = "ResourceAlreadyExistsException"


class InvalidResourceStateException(ServiceError):
    """The real service's error for a resource in the wrong state (absent from moto)."""

    code = "InvalidResourceStateException"


class ResourceAssociatedException(ServiceError):
    """DeleteWorkspaceImage on an image a bundle uses (absent from moto)."""

    code = "ResourceAssociatedException"


class ResourceLimitExceededException(ServiceError):
    """Image quota or tag limit reached (absent from moto)."""

    code = "ResourceLimitExceededException"


class ResourceUnavailableException(ServiceError):
    """A copy, share or bundle of an image that is not AVAILABLE (absent from moto)."""

    code = "ResourceUnavailableException"


class OperationNotSupportedException(ServiceError):
    """CreateUpdatedWorkspaceImage of an image AWS offers no update for (absent from moto)."""

    code = "OperationNotSupportedException"


class InvalidParameterException(ServiceError):
    """The tagging API's error for a malformed request."""

    code = "InvalidParameterException"


class AccessDeniedException(ServiceError):
    """A role without the permission for the call."""

    code = "AccessDeniedException"


class UnrecognizedClientException(ServiceError):
    """Any call in an opt-in region the account has not enabled."""

    code = "UnrecognizedClientException"

    def __init__(self, message: str = _BAD_CREDENTIALS_MESSAGE) -> None:
        super().__init__(message)
