"""`reconciler demo`: the whole loop against an embedded local WorkSpaces endpoint.

It starts moto's server on 127.0.0.1 (a free port), seeds it with the source WorkSpaces
that the bundled example specs name, and runs the real `reconciler` command against it:
plan -> apply -> plan (no changes) -> an out-of-band tag edit -> drift -> apply. No AWS
account or credentials are used; everything stays on this machine.

moto's WorkSpaces emulation lacks tag writes on images (CreateTags on a `wsi-` id does
nothing, DeleteTags is missing). The demo patches just that, for its own lifetime, so
that its drift step behaves as the real service does.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import click

from reconciler.errors import ConfigError

DEMO_SPECS = "demo_specs"
ACCOUNT = "123456789012"


def run_demo() -> int:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as err:
        raise ConfigError(
            "the demo needs moto, which is not installed",
            hint="pip install 'workspaces-image-reconciler[demo]'",
        ) from err
    with tempfile.TemporaryDirectory(prefix="reconciler-demo-") as tmp:
        specs = Path(tmp) / "specs"
        _copy_specs(specs)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log lines
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            with _image_tags_patched():
                host, port = server.get_host_and_port()
                return _walkthrough(specs, f"http://{host}:{port}")
        finally:
            server.stop()


def _walkthrough(specs: Path, endpoint: str) -> int:
    env = _demo_env(endpoint)
    sources = _seed(specs)
    _say(f"Local WorkSpaces endpoint at {endpoint}, seeded with {len(sources)} source WorkSpaces.")
    steps = [
        ("1. Plan: every image is missing, so each is a create.", ["plan"], 0),
        ("2. Apply: create them.", ["apply", "--auto-approve"], 0),
        ("3. Plan again: nothing to do.", ["plan", "--detailed-exitcode"], 0),
    ]
    for title, args, expected in steps:
        _step(title, args, specs, env, expected)
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
        AWS_REGION="eu-west-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def _copy_specs(target: Path) -> None:
    source = resources.files("reconciler") / DEMO_SPECS
    with resources.as_file(source) as folder:
        shutil.copytree(folder, target)


def _seed(specs: Path) -> set[tuple[str, str]]:
    """Create, in the embedded backend, each source WorkSpace the specs name."""
    from moto.workspaces.models import Workspace, workspaces_backends

    from reconciler.specs import load_specs

    sources = {(s.region or "eu-west-1", s.source_workspace_id) for s in load_specs(specs).specs}
    for region, workspace_id in sorted(sources):
        backend = workspaces_backends[ACCOUNT][region]
        request = {"DirectoryId": "d-0123456789", "UserName": "demo", "BundleId": "wsb-0123456789"}
        workspace = Workspace(request, running_mode="AUTO_STOP", error_code="", error_msg="")
        workspace.workspace_id = workspace_id
        backend.workspaces[workspace_id] = workspace
    return sources


def _edit_tags_out_of_band(env: dict[str, str]) -> str:
    import boto3

    client = boto3.client(
        "workspaces",
        region_name="eu-west-1",
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


@contextmanager
def _image_tags_patched() -> Iterator[None]:
    """CreateTags and DeleteTags on images, as the real service has them."""
    from moto.workspaces.models import WorkSpacesBackend
    from moto.workspaces.responses import WorkSpacesResponse

    original = WorkSpacesBackend.create_tags

    def create_tags(self: Any, resource_id: str, tags: list[dict[str, str]]) -> None:
        if resource_id.startswith("wsi-"):
            image = self.workspace_images[resource_id]
            keys = {t["Key"] for t in tags}
            image.tags = [t for t in image.tags if t["Key"] not in keys] + list(tags)
            return
        original(self, resource_id, tags)

    def delete_tags(self: Any) -> str:
        import json

        params = json.loads(self.body)
        backend = self.workspaces_backend
        resource_id, keys = params["ResourceId"], set(params["TagKeys"])
        holder = (
            backend.workspace_images.get(resource_id)
            or backend.workspaces.get(resource_id)
            or backend.workspace_directories.get(resource_id)
        )
        if holder is not None:
            holder.tags = [t for t in holder.tags if t["Key"] not in keys]
        return "{}"

    WorkSpacesBackend.create_tags = create_tags  # type: ignore[method-assign]
    WorkSpacesResponse.delete_tags = delete_tags  # type: ignore[attr-defined]
    try:
        yield
    finally:
        WorkSpacesBackend.create_tags = original  # type: ignore[method-assign]
        del WorkSpacesResponse.delete_tags  # type: ignore[attr-defined]
