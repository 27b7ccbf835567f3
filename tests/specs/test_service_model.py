"""The limits written in `reconciler.specs.models` hold against the installed botocore.

The specs package never imports botocore (validation is offline and fast, and
test_plan.py holds that wall), so most limits are copied there. They are checked here
against whatever botocore is installed, as facts read at run time, never as a copy of one
release: what validate accepts, that botocore's model accepts too (validate may be
stricter, never looser), so a newer botocore that adds names or loosens a pattern passes.

Compute types are not copied at all: AWS adds them often, and `service_model` reads the
installed botocore's `Compute` enum from its model file.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.specs import models, service_model
from reconciler.specs.validate import unknown_compute_type

botocore_session = pytest.importorskip("botocore.session")


@pytest.fixture(scope="module")
def workspaces() -> Any:
    return botocore_session.get_session().get_service_model("workspaces")


@functools.cache
def _shape(shape: str) -> dict[str, Any]:
    """A shape's metadata, from the installed botocore's model."""
    model = botocore_session.get_session().get_service_model("workspaces")
    return dict(model.shape_for(shape).metadata)


def _service_pattern(shape: str) -> re.Pattern[str]:
    # botocore's patterns are anchored at the end only, some of them; the service matches
    # whole values.
    return re.compile("^" + _shape(shape)["pattern"].lstrip("^"))


def test_the_compute_types_read_are_the_installed_botocores_enum(workspaces: Any) -> None:
    assert service_model.known_compute_types() == tuple(workspaces.shape_for("Compute").enum)


def test_every_compute_type_botocore_lists_is_a_well_formed_name_it_knows(
    workspaces: Any,
) -> None:
    for name in workspaces.shape_for("Compute").enum:
        assert re.fullmatch(models.COMPUTE_TYPE_PATTERN, name), name
        assert len(name) <= 64, name
        assert unknown_compute_type(name) is None, name


def test_the_schemas_compute_type_examples_are_names_botocore_lists(workspaces: Any) -> None:
    listed = set(workspaces.shape_for("Compute").enum)
    assert set(models.COMPUTE_EXAMPLES) <= listed


def test_a_name_botocore_does_not_list_is_warned_about_with_its_version(
    workspaces: Any,
) -> None:
    import botocore

    listed = set(workspaces.shape_for("Compute").enum)
    name = next(
        f"GRAPHICS_G{n}_XLARGE" for n in range(90, 200) if f"GRAPHICS_G{n}_XLARGE" not in listed
    )
    message = unknown_compute_type(name)
    assert message is not None
    assert f"installed botocore ({botocore.__version__})" in message
    assert "upgrade boto3" in message


def test_the_bundle_request_takes_the_compute_type_by_that_enum(workspaces: Any) -> None:
    request = workspaces.operation_model("CreateWorkspaceBundle").input_shape
    assert request.members["ComputeType"].members["Name"].name == "Compute"


def test_the_sharing_request_takes_one_account_id(workspaces: Any) -> None:
    request = workspaces.operation_model("UpdateWorkspaceImagePermission").input_shape
    assert request.members["SharedAccountId"].name == "AwsAccount"


# What validate accepts (the models' patterns and lengths), the installed botocore's shape
# accepts too. Values are drawn from our own pattern, so that a botocore that tightens a
# rule fails here and one that loosens it does not.
_LIMITS = [
    ("WorkspaceImageName", models.NAME_PATTERN, 1, 64),
    ("WorkspaceBundleName", models.NAME_PATTERN, 1, 64),
    ("WorkspaceImageDescription", models.DESCRIPTION_PATTERN, 1, 256),
    ("WorkspaceBundleDescription", models.DESCRIPTION_PATTERN, 1, 255),
    ("WorkspaceId", models.WORKSPACE_ID_PATTERN, None, None),
    ("WorkspaceImageId", models.IMAGE_ID_PATTERN, None, None),
    ("AwsAccount", models.ACCOUNT_PATTERN, None, None),
]


@pytest.mark.parametrize(("shape", "ours", "low", "high"), _LIMITS, ids=[s for s, *_ in _LIMITS])
def test_our_length_limits_are_within_botocores(
    shape: str, ours: str, low: int | None, high: int | None
) -> None:
    metadata = _shape(shape)
    if low is not None:
        assert low >= metadata.get("min", 0)
    if high is not None and "max" in metadata:
        assert high <= metadata["max"]


@pytest.mark.parametrize(("shape", "ours", "low", "high"), _LIMITS, ids=[s for s, *_ in _LIMITS])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_what_our_pattern_accepts_botocores_pattern_accepts(
    shape: str, ours: str, low: int | None, high: int | None, data: st.DataObject
) -> None:
    value = data.draw(st.from_regex(ours, fullmatch=True))
    if high is not None:
        value = value[:high]
    assert _service_pattern(shape).fullmatch(value), (shape, value)


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [("description", 1, 255), ("name", 1, 64)],
)
def test_the_bundle_model_carries_those_limits(field: str, low: int, high: int) -> None:
    schema = models.BundleSpecDocument.model_json_schema()["properties"][field]
    assert (schema["minLength"], schema["maxLength"]) == (low, high)
