"""What every test shares: no real AWS account is ever reachable from a test.

Dummy credentials and no AWS config: a test that forgets its local endpoint fails to reach
AWS instead of using whatever credentials the machine has.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from reconciler.aws import Clients
from tests.fidelity import Fidelity, FidelityConfig
from tests.inprocess import local_account, unpaced_clients


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def fidelity_config() -> FidelityConfig:
    """The in-process account's behaviour; override it, or parametrize it, per test."""
    return FidelityConfig()


@pytest.fixture
def fidelity(fidelity_config: FidelityConfig) -> Iterator[Fidelity]:
    """An in-process account: moto's mock with the fidelity layer."""
    with local_account(fidelity_config) as handle:
        yield handle


@pytest.fixture
def clients(fidelity: Fidelity) -> Iterator[Clients]:
    """Unpaced clients for the in-process account."""
    with unpaced_clients() as made:
        yield made
