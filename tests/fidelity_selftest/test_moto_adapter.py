"""The moto adapter's assumptions about the installed moto, one named test each.

`reconciler/emulator/moto_adapter.py` is the only module that knows moto. When a new moto
release moves something the emulator relies on (a field of its objects, a method the
emulator patches, the type a call returns), one of these fails and says what moved. CI
runs them against the supported floor (the main environment) and against the newest
moto (a second environment).
"""

from __future__ import annotations

import re
import time
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from reconciler.emulator import moto_adapter as adapter
from reconciler.emulator.moto_adapter import IncompatibleMoto
from tests.fidelity import installed
from tests.fidelity_selftest.conftest import ACCOUNT, REGION

ROOT = Path(__file__).resolve().parents[2]


# --- the supported range --------------------------------------------------------------------


def test_pyproject_asks_for_the_adapters_floor_and_no_upper_bound() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    pins = re.findall(r'"(moto(?:\[server\])?)([^"]*)"', pyproject)
    assert {name for name, _ in pins} == {"moto", "moto[server]"}, pins
    for _, spec in pins:
        assert spec == f">={adapter.MOTO_FLOOR}", spec


def test_the_installed_moto_is_within_the_supported_range() -> None:
    assert adapter._release(version("moto")) >= adapter._release(adapter.MOTO_FLOOR)
    adapter.check_compatible()  # raises IncompatibleMoto otherwise


def test_a_moto_below_the_floor_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter, "moto_version", lambda: "5.1.18")
    with pytest.raises(IncompatibleMoto) as err:
        adapter.check_compatible()
    assert "moto 5.1.18" in err.value.message
    assert err.value.hint is not None
    assert "pip install --upgrade" in err.value.hint


def test_installing_the_emulator_on_a_moto_it_cannot_serve_fails_before_patching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = dict(adapter.Response.__dict__)
    monkeypatch.setattr(adapter, "moto_version", lambda: "5.1.0")
    with pytest.raises(IncompatibleMoto), installed():
        pass
    assert dict(adapter.Response.__dict__) == before
    monkeypatch.undo()
    with installed():  # and the layer is free to install again
        pass


def test_a_moto_without_cbor_is_refused_when_botocore_would_send_cbor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(adapter, "botocore_protocol", lambda service: "smithy-rpc-v2-cbor")
    monkeypatch.setattr(adapter, "parses_cbor", lambda: False)
    with pytest.raises(IncompatibleMoto) as err:
        adapter.check_compatible()
    assert "smithy-rpc-v2-cbor" in err.value.message
    monkeypatch.setattr(adapter, "parses_cbor", lambda: True)
    adapter.check_compatible()


def test_the_installed_botocores_protocol_is_one_moto_reads() -> None:
    for service in ("workspaces", "resourcegroupstaggingapi"):
        protocol = adapter.botocore_protocol(service)
        assert protocol in ("json", "smithy-rpc-v2-cbor"), (service, protocol)
        if protocol == "smithy-rpc-v2-cbor":
            assert adapter.parses_cbor()


# --- moto's objects: the fields the emulator reads and sets ----------------------------------


@pytest.fixture
def backend() -> Any:
    with mock_aws():
        yield adapter.backend(REGION)


def test_the_backend_has_every_field_the_emulator_reads(backend: Any) -> None:
    for name in adapter.BACKEND_FIELDS:
        assert hasattr(backend, name), name
    assert (backend.account_id, backend.region_name) == (ACCOUNT, REGION)
    assert isinstance(backend.workspace_images, dict)
    assert isinstance(backend.workspaces, dict)
    assert isinstance(adapter.directories(backend), dict)
    assert adapter.has_region(REGION)
    assert not adapter.has_region("xx-nowhere-1")
    assert backend in adapter.backends()


def test_a_new_image_has_every_field_the_emulator_reads(backend: Any) -> None:
    tags = [{"Key": "team", "Value": "a"}]
    image = adapter.new_image(backend, "golden", "d", tags, "PENDING")
    for name in adapter.IMAGE_FIELDS:
        assert hasattr(image, name), name
    assert backend.workspace_images[image.image_id] is image
    assert re.fullmatch(r"wsi-[0-9a-z]{9}", image.image_id)
    assert (image.name, image.description, image.state) == ("golden", "d", "PENDING")
    assert (image.owner_account, image.tags, image.image_permissions) == (ACCOUNT, tags, [])
    assert isinstance(image.operating_system, dict)
    assert isinstance(image.required_tenancy, str)


def test_a_new_workspace_has_every_field_the_emulator_reads(backend: Any) -> None:
    workspace = adapter.new_workspace("ws-0a1b2c3d4", "STOPPED", "wsb-123456789", "d-0000000000")
    for name in adapter.WORKSPACE_FIELDS:
        assert hasattr(workspace, name), name
    assert (workspace.workspace_id, workspace.state) == ("ws-0a1b2c3d4", "STOPPED")
    assert (workspace.bundle_id, workspace.directory_id) == ("wsb-123456789", "d-0000000000")
    backend.workspaces[workspace.workspace_id] = workspace
    found = adapter.find_workspaces(backend, ["ws-0a1b2c3d4"], None, None, None)
    assert found == [workspace]
    assert adapter.find_workspaces(backend, None, None, None, "wsb-other") == []


def test_creation_times_read_as_epoch_seconds_whatever_type_moto_keeps(backend: Any) -> None:
    image = adapter.new_image(backend, "golden", "d", [], "AVAILABLE")
    created = adapter.created_at(image)
    assert created is not None
    assert abs(created - time.time()) < 60  # moto's utcnow() is naive UTC, not local time
    adapter.set_created(image, 1_600_000_000.5)
    assert adapter.created_at(image) == pytest.approx(1_600_000_000.5)
    assert adapter.describe_image(image)["Created"].timestamp() == pytest.approx(1_600_000_000.5)
    assert adapter.created_at(SimpleNamespace()) is None


def test_described_images_and_workspaces_leave_out_empty_fields(backend: Any) -> None:
    image = adapter.new_image(backend, "golden", "d", [], "ERROR")
    image.error_code, image.error_message = "", ""
    shown = adapter.describe_image(image)
    assert shown["ImageId"] == image.image_id
    assert shown["OwnerAccountId"] == ACCOUNT
    assert shown["State"] == "ERROR"
    assert "ErrorCode" not in shown
    assert "ErrorMessage" not in shown
    image.error_code, image.error_message = "Boom", "it broke"
    assert adapter.describe_image(image)["ErrorCode"] == "Boom"
    workspace = adapter.new_workspace("ws-0a1b2c3d4", "AVAILABLE", "wsb-1", "d-1")
    assert adapter.describe_workspace(workspace) == {
        "WorkspaceId": "ws-0a1b2c3d4",
        "DirectoryId": "d-1",
        "UserName": "user-ws-0a1b2c3d4",
        "State": "AVAILABLE",
        "BundleId": "wsb-1",
        **(
            {"WorkspaceProperties": workspace.workspace_properties}
            if workspace.workspace_properties
            else {}
        ),
    }


def test_state_attached_to_a_backend_is_dropped_by_detach(backend: Any) -> None:
    made = adapter.attached(backend, "_adapter_test", list)
    assert adapter.attached(backend, "_adapter_test", list) is made
    assert adapter.peek(backend, "_adapter_test") is made
    adapter.detach("_adapter_test")
    assert adapter.peek(backend, "_adapter_test") is None


# --- moto's response classes: what the emulator patches and calls ---------------------------


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        (adapter.Response, "call_action"),
        (adapter.Response, "serialized"),
        (adapter.TaggingResponse, "tag_resources"),
        (adapter.TaggingResponse, "untag_resources"),
        (adapter.TaggingResponse, "get_resources"),
    ],
)
def test_moto_has_the_methods_the_emulator_wraps_or_calls(cls: type, name: str) -> None:
    assert callable(adapter.original(cls, name))


def test_original_names_a_method_moto_lacks() -> None:
    with pytest.raises(AttributeError, match="no method no_such_operation"):
        adapter.original(adapter.Response, "no_such_operation")


def test_patched_restores_every_attribute_exactly() -> None:
    class Target:
        def kept(self) -> str:
            return "moto"

    with adapter.patched(Target, {"kept": lambda self: "ours", "added": lambda self: "new"}):
        assert Target().kept() == "ours"
        assert "added" in Target.__dict__
    assert Target().kept() == "moto"
    assert "added" not in Target.__dict__


def test_params_come_from_what_moto_parsed_or_from_the_json_body() -> None:
    assert adapter.params(SimpleNamespace(body='{"MaxResults": 5}')) == {"MaxResults": 5}
    assert adapter.params(SimpleNamespace(body=b'{"A": [1]}')) == {"A": [1]}
    assert adapter.params(SimpleNamespace(body="")) == {}
    parsed = SimpleNamespace(automated_parameter_parsing=True, params={"B": 2}, body=b"\xa1\x61")
    assert adapter.params(parsed) == {"B": 2}


def test_moto_answers_for_other_services_read_as_plain_dicts() -> None:
    # moto 5.2.1 answered JSON strings, later releases ActionResult objects
    assert adapter._plain('{"FailedResourcesMap": {}}') == {"FailedResourcesMap": {}}
    assert adapter._plain(adapter.reply({"X": 1})) == {"X": 1}
    assert adapter._plain((200, {}, '{"Y": 2}')) == {"Y": 2}


# --- the tagging API across services ---------------------------------------------------------


def _queue(tags: dict[str, str] | None = None) -> str:
    """An SQS queue (a service whose resources moto's own tagging code lists); its ARN."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="q", tags=tags or {})["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def test_get_resources_lists_other_services_resources_moto_tags() -> None:
    with mock_aws(), installed() as f:
        queue = _queue({"k": "v"})
        image_id = f.add_image(REGION, "golden", tags={"k": "w"})
        tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
        found = tagging.get_resources(TagFilters=[{"Key": "k"}])["ResourceTagMappingList"]
        assert found == [
            {"ResourceARN": f.image_arn(REGION, image_id), "Tags": [{"Key": "k", "Value": "w"}]},
            {"ResourceARN": queue, "Tags": [{"Key": "k", "Value": "v"}]},
        ]


def test_tag_resources_hands_other_services_arns_to_moto() -> None:
    with mock_aws(), installed() as f:
        queue = _queue()
        image_id = f.add_image(REGION, "golden")
        tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
        answer = tagging.tag_resources(
            ResourceARNList=[queue, f.image_arn(REGION, image_id)], Tags={"team": "a"}
        )
        # moto's own answer for the queue (it tags no SQS queue this way), ours for the image
        assert list(answer["FailedResourcesMap"]) == [queue]
        assert f.image_tags(REGION, image_id) == {"team": "a"}


# --- accounts: which account moto serves a request in ----------------------------------------


def test_an_assumed_roles_key_belongs_to_the_roles_account_until_its_expiry() -> None:
    with mock_aws():
        sts = boto3.client("sts", region_name=REGION)
        answer = sts.assume_role(
            RoleArn="arn:aws:iam::222222222222:role/x", RoleSessionName="run", DurationSeconds=900
        )
        key = answer["Credentials"]["AccessKeyId"]
        # moto makes the key in the role's account's IAM: requests signed with it act there
        assert adapter.account_of(key) == "222222222222"
        expiry = adapter.credentials_expiry(key)
        assert expiry == pytest.approx(answer["Credentials"]["Expiration"].timestamp(), abs=1)
        assert expiry == pytest.approx(time.time() + 900, abs=60)
        assert adapter.account_of("testing") == adapter.DEFAULT_ACCOUNT_ID == ACCOUNT
        assert adapter.credentials_expiry("testing") is None


def test_account_of_follows_motos_order_env_then_header_then_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with mock_aws():
        key = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn="arn:aws:iam::222222222222:role/x", RoleSessionName="run"
        )["Credentials"]["AccessKeyId"]
        assert adapter.account_of(key, {"X-Moto-Account-Id": "333333333333"}) == "333333333333"
        monkeypatch.setenv("MOTO_ACCOUNT_ID", "444444444444")
        assert adapter.account_of(key, {"x-moto-account-id": "333333333333"}) == "444444444444"


def test_moto_serves_a_request_signed_with_an_assumed_role_in_the_roles_account() -> None:
    with mock_aws(), installed() as f:
        image = f.add_image(REGION, "golden", tags={"k": "v"}, account_id="222222222222")
        creds = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn="arn:aws:iam::222222222222:role/x", RoleSessionName="run"
        )["Credentials"]
        ws = boto3.client(
            "workspaces",
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        assert [i["ImageId"] for i in ws.describe_workspace_images()["Images"]] == [image]
        assert ws.describe_tags(ResourceId=image)["TagList"] == [{"Key": "k", "Value": "v"}]
        assert adapter.backend(REGION, "222222222222").workspace_images[image].name == "golden"
        base = boto3.client("workspaces", region_name=REGION)  # the base credentials
        assert base.describe_workspace_images()["Images"] == []
