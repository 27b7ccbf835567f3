"""`reconciler demo`: a golden image's rollout, end to end, against an embedded local
WorkSpaces endpoint.

It serves the emulator the tests use (:mod:`reconciler.emulator`: moto made to answer like
the real service, including the Resource Groups Tagging API) on 127.0.0.1 at a free port,
seeds it with the source WorkSpaces that the bundled example specs name, and runs the real
`reconciler` command against it: plan -> apply --wait (capture, copy to a second region,
share with an account, bundle) -> an out-of-band tag edit -> drift -> a new image that the
bundles move to -> plan -> apply --wait (the tags put back too) -> plan (no changes).
No AWS account or credentials are used; everything stays on this machine. Captures and
copies end after a second instead of the real service's hour or so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
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
"""How long a capture or a copy stays PENDING; `apply --wait` sees them end."""

ROLLED_OUT = "finance-win11-2026-11"
ROLLOUT = "finance-win11-2026-12"
# The next month's golden image, captured from the same prepared WorkSpace as the last.
ROLLOUT_SPEC = f"""---
name: {ROLLOUT}
description: Finance golden image 2026-12
source_workspace_id: ws-0a1b2c3d4
tags:
  team: finance
  cost-center: "4410"
copies: [us-east-1]
share_with: ["111122223333"]
"""
IMAGES_FILE = "finance/images.yaml"
BUNDLES_FILE = "finance/bundles.yaml"


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

    def step(title: str, *args: str, expected: int = 0) -> None:
        _step(title, list(args), specs, env, expected)

    wait = ("apply", "--auto-approve", "--wait")
    step("1. Plan: nothing exists yet, so everything is a create.", "plan")
    step("2. Apply --wait: capture, copy to us-east-1, share, bundle, in one run.", *wait)
    image = _edit_tags_out_of_band(env)
    _say(f"3. Someone edits tags on {image} in the console (team=marketing, adds temp=1).")
    step("4. Drift check: exit 2, the tags drifted; nothing else did.", "drift", expected=2)
    _say(f"5. Next month's image: add {ROLLOUT} to the specs and point the bundles at it.")
    _roll_out(specs)
    # The drifted tags stay in this plan: one apply puts them back along with the rollout.
    step("6. Plan: tags back; new image, its copy and share; update-image on each bundle.", "plan")
    step("7. Apply --wait: all of it; the bundles move once the new image is available.", *wait)
    step("8. Plan again: nothing to do, exit 0.", "plan", "--detailed-exitcode")
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


def _roll_out(specs: Path) -> None:
    """Edit the temporary copy of the specs as a person would in a pull request, and show
    the edit as the shell commands that would make it."""
    images, bundles = specs / IMAGES_FILE, specs / BUNDLES_FILE
    declared = bundles.read_text(encoding="utf-8")
    if f"image: {ROLLED_OUT}\n" not in declared:
        raise ConfigError(f"the demo's {BUNDLES_FILE} has no bundle using {ROLLED_OUT}")
    with images.open("a", encoding="utf-8") as out:
        out.write(ROLLOUT_SPEC)
    bundles.write_text(
        declared.replace(f"image: {ROLLED_OUT}\n", f"image: {ROLLOUT}\n"), encoding="utf-8"
    )
    click.echo(click.style(f"$ cat >> specs/{IMAGES_FILE} <<EOF", bold=True))
    click.echo(ROLLOUT_SPEC + "EOF")
    edit = f"s/image: {ROLLED_OUT}/image: {ROLLOUT}/"
    click.echo(click.style(f"$ sed -i '{edit}' specs/{BUNDLES_FILE}", bold=True))


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
