"""`reconciler demo`: the whole loop against an embedded local WorkSpaces endpoint.

It serves the emulator the tests use (:mod:`reconciler.emulator`: moto made to answer like
the real service, including the Resource Groups Tagging API) on 127.0.0.1 at a free port,
seeds it with the source WorkSpaces that the bundled example specs name, and runs the real
`reconciler` command against it: plan -> apply -> plan (no changes) -> an out-of-band tag
edit -> drift -> apply. No AWS account or credentials are used; everything stays on this
machine. Captures end after a second instead of the real service's hour or so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.errors import ConfigError

if TYPE_CHECKING:
    from reconciler.emulator import Fidelity

DEMO_SPECS = "demo_specs"
DEFAULT_REGION = "eu-west-1"
CAPTURE_SECONDS = 1.0
"""How long a capture stays PENDING, so that the drift step sees every image AVAILABLE."""
CAPTURE_TIMEOUT = 30.0


def run_demo() -> int:
    try:
        from reconciler.emulator import FidelityConfig, local_endpoint
    except ImportError as err:
        missing = (err.name or "one of them").split(".")[0]
        raise ConfigError(
            f"the demo needs moto, flask and flask-cors; {missing} is not installed",
            hint="pip install 'workspaces-image-reconciler[demo]'",
        ) from err
    with tempfile.TemporaryDirectory(prefix="reconciler-demo-") as tmp:
        specs = Path(tmp) / "specs"
        _copy_specs(specs)
        with local_endpoint(FidelityConfig(capture_seconds=CAPTURE_SECONDS)) as endpoint:
            return _walkthrough(specs, endpoint.url, endpoint.fidelity)


def _walkthrough(specs: Path, endpoint: str, fidelity: Fidelity) -> int:
    env = _demo_env(endpoint)
    sources = _seed(specs, fidelity)
    _say(f"Local WorkSpaces endpoint at {endpoint}, seeded with {len(sources)} source WorkSpaces.")
    steps = [
        ("1. Plan: every image is missing, so each is a create.", ["plan"], 0),
        ("2. Apply: create them.", ["apply", "--auto-approve"], 0),
        ("3. Plan again: nothing to do.", ["plan", "--detailed-exitcode"], 0),
    ]
    for title, args, expected in steps:
        _step(title, args, specs, env, expected)
    _captures_end(fidelity, {region for region, _ in sources})
    image = _edit_tags_out_of_band(env)
    _say(f"4. Someone edits tags on {image} in the console (team=marketing, adds temp=1).")
    _step("5. Drift check: exit 2, the tags drifted.", ["drift"], specs, env, 2)
    _step("6. Apply puts the declared tags back.", ["apply", "--auto-approve"], specs, env, 0)
    _step("7. Drift check again: in sync, exit 0.", ["drift"], specs, env, 0)
    _say("Demo complete: the specs are the source of truth, and every run is safe to repeat.")
    return 0


def _step(title: str, args: list[str], specs: Path, env: dict[str, str], expected: int) -> None:
    _say(title)
    shown = " ".join(["reconciler", *args, "specs"])
    click.echo(click.style(f"$ {shown}", bold=True))
    command = [sys.executable, "-m", "reconciler", *args, str(specs), "-q"]
    # One stream, so the guided run reads in order; the tool itself keeps them apart.
    done = subprocess.run(
        command, env=env, check=False, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    click.echo(done.stdout.rstrip("\n"))
    click.echo(f"(exit {done.returncode})")
    if done.returncode != expected:
        raise ConfigError(f"demo step `{shown}` exited {done.returncode}, expected {expected}")


def _say(text: str) -> None:
    click.echo("\n" + click.style(text, fg="cyan", bold=True))


def _demo_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="demo",  # moto accepts any credentials; no real account is used
        AWS_SECRET_ACCESS_KEY="demo",  # noqa: S106 - a placeholder, not a secret
        AWS_REGION=DEFAULT_REGION,
        AWS_ENDPOINT_URL=endpoint,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def _copy_specs(target: Path) -> None:
    source = resources.files("reconciler") / DEMO_SPECS
    with resources.as_file(source) as folder:
        shutil.copytree(folder, target)


def _seed(specs: Path, fidelity: Fidelity) -> set[tuple[str, str]]:
    """Create, in the emulator, each source WorkSpace the specs name."""
    from reconciler.specs import load_specs

    specs_read = load_specs(specs).specs
    sources = {(s.region or DEFAULT_REGION, s.source_workspace_id) for s in specs_read}
    for region, workspace_id in sorted(sources):
        fidelity.add_workspace(region, workspace_id)
    return sources


def _captures_end(fidelity: Fidelity, regions: set[str]) -> None:
    """Wait out the apply's captures, so that drift reports the images as the real service
    would an hour later; on a fast machine they have ended already."""
    deadline = time.monotonic() + CAPTURE_TIMEOUT
    while any(i["state"] == "PENDING" for r in sorted(regions) for i in fidelity.images(r)):
        if time.monotonic() > deadline:
            raise ConfigError(f"demo captures still PENDING after {CAPTURE_TIMEOUT:.0f} s")
        time.sleep(0.1)


def _edit_tags_out_of_band(env: dict[str, str]) -> str:
    import boto3

    client = boto3.client(
        "workspaces",
        region_name=DEFAULT_REGION,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    images = client.describe_workspace_images(ImageType="OWNED")["Images"]
    image = next(i for i in images if i["Name"] == "finance-win11-2026-11")
    client.create_tags(
        ResourceId=image["ImageId"],
        Tags=[{"Key": "team", "Value": "marketing"}, {"Key": "temp", "Value": "1"}],
    )
    return image["Name"]
