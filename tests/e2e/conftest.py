"""Fixtures of the end-to-end tests.

* ``endpoint``: a local WorkSpaces endpoint (:func:`reconciler.emulator.local_endpoint`), fresh
  for each test. ``@pytest.mark.fidelity(image_quota=3)`` passes a
  :class:`~reconciler.emulator.FidelityConfig` to it.
* ``specs_dir``: a specs folder in ``tmp_path`` that tests write YAML documents into.
* ``run_reconciler(*args, endpoint=..., check_exit=...)``: runs the real command,
  ``python -m reconciler ...``, in a subprocess whose only AWS settings are dummy
  credentials, ``AWS_REGION=eu-west-1`` and the endpoint's URL. Returns
  ``(exit code, stdout, stderr)`` and fails the test if stderr holds a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from tests.fidelity import FidelityConfig, LocalEndpoint, local_endpoint

REGION = "eu-west-1"
ROOT = Path(__file__).resolve().parents[2]
AWS_COMMANDS = {"plan", "apply", "drift"}  # the commands that take --api-rate


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fidelity(**config): FidelityConfig fields for the endpoint fixture"
    )


@pytest.fixture(autouse=True)
def _hermetic_test_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients a test makes itself (out-of-band edits) reach the local endpoint directly
    and never read the caller's AWS profile or settings."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> Iterator[LocalEndpoint]:
    marker = request.node.get_closest_marker("fidelity")
    config = FidelityConfig(**marker.kwargs) if marker else FidelityConfig()
    with local_endpoint(config) as ep:
        yield ep


class SpecsDir:
    """A specs folder: ``write("finance/images.yaml", doc, doc, ...)`` writes YAML documents
    (mappings are dumped in order; strings are written as they are)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def write(self, relative: str, *documents: Mapping[str, Any] | str) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        texts = [
            d if isinstance(d, str) else yaml.safe_dump(dict(d), sort_keys=False) for d in documents
        ]
        target.write_text("---\n".join(texts), encoding="utf-8")
        return target

    def remove(self, relative: str) -> None:
        (self.path / relative).unlink()

    @staticmethod
    def image(
        name: str,
        source: str,
        *,
        description: str | None = None,
        region: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """An image spec document; the description defaults to one derived from the name."""
        doc: dict[str, Any] = {
            "name": name,
            "description": description or f"Image {name}",
            "source_workspace_id": source,
        }
        if region is not None:
            doc["region"] = region
        if tags is not None:
            doc["tags"] = dict(tags)
        return doc


@pytest.fixture
def specs_dir(tmp_path: Path) -> SpecsDir:
    return SpecsDir(tmp_path / "specs")


class Outcome(NamedTuple):
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as one JSON document (stdout must hold nothing else)."""
        return json.loads(self.stdout)


RunReconciler = Callable[..., Outcome]


def reconciler_env(
    endpoint: LocalEndpoint | None, overrides: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """The subprocess environment: no AWS_* variable of the caller's; with an endpoint,
    dummy credentials, AWS_REGION and the endpoint URL. ``overrides`` set (or, with None,
    remove) variables."""
    # No AWS_* of the caller's; no GITHUB_* either, so that a run under GitHub Actions
    # neither annotates nor appends to the job summary.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))}
    env.pop("NO_COLOR", None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    if endpoint is not None:
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_ENDPOINT_URL=endpoint.url,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.fixture
def run_reconciler() -> RunReconciler:
    def run(
        *args: str | os.PathLike[str],
        endpoint: LocalEndpoint | None,
        check_exit: int | None = None,
        env: Mapping[str, str | None] | None = None,
        timeout: float = 60,
    ) -> Outcome:
        argv = [os.fspath(a) for a in args]
        if argv and argv[0] in AWS_COMMANDS and not any(a.startswith("--api-rate") for a in argv):
            argv += ["--api-rate", "0"]  # no client-side pacing: keeps the suite fast
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *argv],
            env=reconciler_env(endpoint, env),
            stdin=subprocess.DEVNULL,  # not a terminal
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )
        shown = f"$ reconciler {' '.join(argv)}\n--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
        assert "Traceback" not in done.stderr, shown
        if check_exit is not None:
            assert done.returncode == check_exit, shown
        return Outcome(done.returncode, done.stdout, done.stderr)

    return run


def source(n: int) -> str:
    """A valid, distinct source WorkSpace id."""
    return f"ws-{n:09d}"


def live(endpoint: LocalEndpoint) -> dict[str, dict[str, Any]]:
    """The region's images by name; fails if any name exists twice."""
    found = endpoint.fidelity.images(REGION)
    twice = [name for name, count in Counter(i["name"] for i in found).items() if count > 1]
    assert not twice, f"images created twice: {twice}"
    return {i["name"]: i for i in found}


def out_of_band(endpoint: LocalEndpoint, region: str = REGION) -> Any:
    """A WorkSpaces client of the test's own, for changes made behind the reconciler's back."""
    import boto3

    return boto3.client(
        "workspaces",
        region_name=region,
        endpoint_url=endpoint.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def image_doc(name: str, source: str = "ws-0a1b2c3d4", **extra: Any) -> dict[str, Any]:
    """An image spec document: a capture of `source`, described after its name."""
    return {"name": name, "description": f"Image {name}", "source_workspace_id": source, **extra}


def bundle_doc(name: str, **fields: Any) -> dict[str, Any]:
    """A bundle spec document; `fields` give its image (image= or image_id=) and the rest."""
    return {
        "kind": "bundle",
        "name": name,
        "description": f"Bundle {name}",
        "compute_type": "STANDARD",
        "user_volume_gib": 50,
        **fields,
    }
