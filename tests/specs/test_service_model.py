"""The limits written in `reconciler.specs.models` are the service's own.

The specs package never imports botocore (validation is offline and fast, and
test_plan.py holds that wall), so the limits are copied there. Here they are compared
with botocore's WorkSpaces model: a botocore upgrade that adds a compute type or changes a
pattern fails this test, which says what to copy.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.specs import models

botocore_session = pytest.importorskip("botocore.session")


@pytest.fixture(scope="module")
def workspaces() -> Any:
    return botocore_session.get_session().get_service_model("workspaces")


def test_compute_types_are_botocores_compute_enum(workspaces: Any) -> None:
    enum = list(workspaces.shape_for("Compute").enum)
    assert list(models.COMPUTE_TYPES) == enum, (
        "botocore's Compute enum changed: copy it into ComputeTypeName in "
        f"reconciler/specs/models.py: {enum}"
    )


def test_the_bundle_request_takes_the_compute_type_by_that_enum(workspaces: Any) -> None:
    request = workspaces.operation_model("CreateWorkspaceBundle").input_shape
    assert request.members["ComputeType"].members["Name"].name == "Compute"


def test_image_id_pattern_is_botocores(workspaces: Any) -> None:
    pattern = workspaces.shape_for("WorkspaceImageId").metadata["pattern"]
    # botocore's pattern is anchored only at the end; the service matches whole ids
    assert "^" + pattern.lstrip("^") == models.IMAGE_ID_PATTERN


def test_account_pattern_is_botocores_in_ascii_digits(workspaces: Any) -> None:
    pattern = workspaces.shape_for("AwsAccount").metadata["pattern"]
    assert pattern == r"^\d{12}$"
    assert models.ACCOUNT_PATTERN == r"^[0-9]{12}$"


@pytest.mark.parametrize(
    ("shape", "pattern", "low", "high"),
    [
        ("WorkspaceBundleName", models.NAME_PATTERN, 1, 64),
        ("WorkspaceBundleDescription", models.DESCRIPTION_PATTERN, 1, 255),
        ("WorkspaceImageName", models.NAME_PATTERN, 1, 64),
    ],
)
def test_bundle_name_and_description_limits_are_botocores(
    workspaces: Any, shape: str, pattern: str, low: int, high: int
) -> None:
    metadata = workspaces.shape_for(shape).metadata
    assert (metadata["pattern"], metadata["min"], metadata["max"]) == (pattern, low, high)


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [("description", 1, 255), ("name", 1, 64)],
)
def test_the_bundle_model_carries_those_limits(field: str, low: int, high: int) -> None:
    schema = models.BundleSpecDocument.model_json_schema()["properties"][field]
    assert (schema["minLength"], schema["maxLength"]) == (low, high)


def test_the_sharing_request_takes_one_account_id(workspaces: Any) -> None:
    request = workspaces.operation_model("UpdateWorkspaceImagePermission").input_shape
    assert request.members["SharedAccountId"].name == "AwsAccount"
