"""What the emulator's self-tests share: dummy credentials for every test, and
:func:`open_env`, which runs a test's emulator in one of the two ways the suites use it
(in-process under ``mock_aws()``, or served over HTTP by ``local_endpoint``).

It also makes ``tests.fidelity`` importable however pytest is started (repo root on
sys.path); the test files import these helpers as ``tests.fidelity_selftest.conftest``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.fidelity import (  # noqa: E402
    Fidelity,
    FidelityConfig,
    LocalEndpoint,
    installed,
    local_endpoint,
)

REGION = "eu-west-1"
OTHER_REGION = "us-east-1"
ACCOUNT = "123456789012"
MODES = ["mock_aws", "server"]
NO_RETRY = Config(retries={"total_max_attempts": 1})


@pytest.fixture(autouse=True)
def _dummy_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_WORKSPACES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@dataclass
class Env:
    """The emulator of one test: its handle, and its endpoint when served over HTTP."""

    fidelity: Fidelity
    endpoint: LocalEndpoint | None

    def _client(self, service: str, region: str, config: Config | None) -> Any:
        url = self.endpoint.url if self.endpoint else None
        # A session of its own: clients made in several threads share no credential state.
        return boto3.session.Session().client(  # type: ignore[call-overload]
            service, region_name=region, endpoint_url=url, config=config
        )

    def client(self, region: str = REGION, config: Config | None = None) -> Any:
        """A WorkSpaces client."""
        return self._client("workspaces", region, config)

    def tagging(self, region: str = REGION, config: Config | None = None) -> Any:
        """A Resource Groups Tagging API client."""
        return self._client("resourcegroupstaggingapi", region, config)

    @property
    def ep(self) -> LocalEndpoint:
        assert self.endpoint is not None
        return self.endpoint


@contextmanager
def open_env(mode: str, config: FidelityConfig | None = None, **server: Any) -> Iterator[Env]:
    """``mode`` is one of MODES; ``server`` goes to ``local_endpoint`` (pace, faults, ...)."""
    if mode == "server":
        with local_endpoint(config, **server) as endpoint:
            yield Env(endpoint.fidelity, endpoint)
    else:
        with mock_aws(), installed(config) as fidelity:
            yield Env(fidelity, None)


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])
