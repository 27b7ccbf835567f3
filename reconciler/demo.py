"""`reconciler demo`: a golden image's rollout, end to end, against an embedded local
WorkSpaces endpoint.

It serves the emulator the tests use (:mod:`reconciler.emulator`: moto made to answer like
the real service, including the Resource Groups Tagging API) on 127.0.0.1 at a free port,
seeds it with the source WorkSpaces that the bundled example specs name (each in the account
its spec lives in), and runs the real `reconciler` command against it. The specs are an
organisation's: an `images` account captures the golden image, copies it to a second region
and shares it with the `finance` account, which imports it and builds its bundle on the
import; one run reaches both (STS AssumeRole into each account's role, which the emulator
answers with credentials acting in that account). The steps: plan -> apply --wait (capture,
copy, share, import, bundle, across the two accounts) -> an out-of-band tag edit in the
finance account -> drift -> a new image that the bundle moves to -> plan -> apply --wait
(the tags put back too) -> plan (no changes). No AWS account or credentials are used;
everything stays on this machine. Captures and copies end after a second instead of the
real service's hour or so.

`reconciler demo --serve` serves the same emulator, seeded the same way, until interrupted,
for commands of one's own (the README's worked rollout): its first line on stdout is the
endpoint's URL, then the environment to export.

The emulator runs on moto, whose internals change between releases: when it fails to start
or to answer, the demo says so, naming moto's version, rather than let the commands retry
and then blame the network or the credentials.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib import metadata, resources
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple

import click

from reconciler.errors import ConfigError, ReconcilerError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from reconciler.emulator import Fidelity, LocalEndpoint

DEMO_SPECS = "demo_specs"
DEFAULT_REGION = "eu-west-1"
CAPTURE_SECONDS = 1.0
"""How long a capture or a copy stays PENDING; `apply --wait` sees them end."""

IMAGES_ACCOUNT = "images"  # the account map's names in the demo's specs
WORKLOAD_ACCOUNT = "finance"
ROLLED_OUT = "finance-win11-2026-11"
ROLLOUT = "finance-win11-2026-12"
# The next month's golden image: the images account captures it from the same prepared
# WorkSpace as the last, copies it and shares it with finance; finance imports it.
ROLLOUT_CAPTURE = f"""---
name: {ROLLOUT}
description: Finance golden image 2026-12
source_workspace_id: ws-0a1b2c3d4
tags:
  team: finance
  cost-center: "4410"
copies: [us-east-1]
share_with: [{WORKLOAD_ACCOUNT}]
"""
ROLLOUT_IMPORT = f"""---
name: {ROLLOUT}
description: Finance golden image 2026-12
source_image:
  account: {IMAGES_ACCOUNT}
  name: {ROLLOUT}
tags:
  team: finance
  cost-center: "4410"
"""
CAPTURES_FILE = f"{IMAGES_ACCOUNT}/images.yaml"
IMPORTS_FILE = f"{WORKLOAD_ACCOUNT}/images.yaml"
BUNDLES_FILE = f"{WORKLOAD_ACCOUNT}/bundles.yaml"
# Placeholders, plainly not keys: the emulator accepts any credentials, and no AWS account
# is ever called.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "fake-demo-access-key-id",
    "AWS_SECRET_ACCESS_KEY": "fake-demo-secret-access-key",
}
HOST = "127.0.0.1"
PROBE_TIMEOUT = 10.0
"""Seconds the emulator has to answer each of the calls that check it works."""


def run_demo() -> int:
    with tempfile.TemporaryDirectory(prefix="reconciler-demo-") as tmp:
        specs = Path(tmp) / "specs"
        _copy_specs(specs)
        with _started_emulator() as endpoint:
            sources = _seed(specs, endpoint.fidelity)
            _check_emulator_answers(endpoint.url)
            return _walkthrough(specs, endpoint.url, endpoint.fidelity, sources)


def serve_demo(port: int = 0, write_specs: Path | None = None) -> int:
    """Serve the demo's emulator on 127.0.0.1 until SIGINT or SIGTERM, then return 130.

    ``port`` 0 takes a free one. Stdout gets the URL on its first line, then the environment
    to export; what the endpoint holds and which specs to use go to stderr.
    """
    with ExitStack() as stack:
        # The port first: a taken one fails at once, before moto's slow import.
        listener = stack.enter_context(_listening(port))
        if write_specs is not None:
            _check_empty(write_specs)
        stack.enter_context(_interrupted_by_signals())
        try:
            endpoint = stack.enter_context(_started_emulator())
            url = stack.enter_context(_serving(endpoint.middleware, listener))
            with resources.as_file(resources.files("reconciler") / DEMO_SPECS) as packaged:
                sources = _seed(packaged, endpoint.fidelity)
            _check_emulator_answers(url)
            if write_specs is not None:
                _write_specs(write_specs)
            for line in (url, *(f"export {k}={v}" for k, v in _exports(url).items())):
                click.echo(line)  # click.echo flushes: a reader of the pipe sees each line
            _explain(sources, write_specs)
            while True:
                threading.Event().wait(1.0)
        except KeyboardInterrupt:
            pass
    click.echo("Stopped: the endpoint and everything made in it are gone.", err=True)
    return 130


def _walkthrough(specs: Path, endpoint: str, fidelity: Fidelity, sources: set[Source]) -> int:
    env = _demo_env(endpoint)
    accounts = [account for account, _ in _by_account(sources) if account]
    held = f" in account {' and '.join(accounts)}" if accounts else ""
    _say(
        f"Local WorkSpaces endpoint at {endpoint}, seeded with {len(sources)} source "
        f"WorkSpaces{held}."
    )

    def step(title: str, *args: str, expected: int = 0) -> None:
        try:
            _step(title, list(args), specs, env, expected)
        except ConfigError:
            # A step that failed because the emulator broke under it is the emulator's
            # fault; say that rather than what the command made of it.
            _check_emulator_answers(endpoint)
            raise

    wait = ("apply", "--auto-approve", "--wait")
    step("1. Plan, account by account: nothing exists yet, so everything is a create.", "plan")
    step(
        "2. Apply --wait: the images account captures, copies to us-east-1 and shares with "
        "finance; finance imports and builds its bundle, in one run.",
        *wait,
    )
    image = _edit_tags_out_of_band(env, specs)
    _say(
        f"3. Someone edits tags on {image} in the {WORKLOAD_ACCOUNT} account's console "
        "(team=marketing, adds temp=1)."
    )
    step("4. Drift check: exit 2, the tags drifted; nothing else did.", "drift", expected=2)
    _say(
        f"5. Next month's image: the images account captures and shares {ROLLOUT}, "
        f"{WORKLOAD_ACCOUNT} imports it, and its bundle points at it."
    )
    _roll_out(specs)
    # The drifted tags stay in this plan: one apply puts them back along with the rollout.
    step(
        "6. Plan: tags back; new image, its copy and share; the import; update-image on "
        "the bundle.",
        "plan",
    )
    step("7. Apply --wait: all of it; the bundle moves once the import is available.", *wait)
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


def _exports(endpoint: str) -> dict[str, str]:
    """The environment that points the reconciler (and boto3, and the AWS CLI) at the demo."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": DEFAULT_REGION,
        # The reconciler reads AWS_REGION before AWS_DEFAULT_REGION: one left in the shell
        # from other work would otherwise win.
        "AWS_REGION": DEFAULT_REGION,
    }


def _demo_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        _exports(endpoint),
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def _explain(sources: set[Source], write_specs: Path | None) -> None:
    seeded = "; ".join(
        f"{', '.join(held)}{f' in account {account}' if account else ''}"
        for account, held in _by_account(sources)
    )
    if write_specs is not None:
        specs = f"Their specs are in {write_specs}/ (the demo's, as `reconciler demo` starts)."
        example = f"reconciler plan {write_specs}"
    else:
        specs = (
            "Their specs are the demo's: `reconciler demo --serve --write-specs DIR` writes "
            "them to DIR (a checkout's specs/ folder holds the same)."
        )
        example = "reconciler plan DIR"
    for line in (
        "",
        "A local WorkSpaces endpoint (the demo's emulator; no AWS account is called), "
        f"seeded with the source WorkSpaces {seeded}.",
        specs,
        f"In another shell, export the lines above, then run, e.g.: {example}",
        f"Captures and copies end after {CAPTURE_SECONDS:g} s. Ctrl-C stops it; what was "
        "made in it is forgotten.",
    ):
        click.echo(line, err=True)


def _check_empty(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(
            f"--write-specs {target}: not an empty folder; the demo's specs are written "
            "only to a new or empty one, so that nothing of yours is overwritten",
            hint="name a folder that does not exist yet",
        )


def _write_specs(target: Path) -> None:
    _check_empty(target)
    try:
        _copy_specs(target)
    except OSError as err:
        raise ConfigError(f"--write-specs {target}: {err.strerror or err}") from err


def _copy_specs(target: Path) -> None:
    source = resources.files("reconciler") / DEMO_SPECS
    with resources.as_file(source) as folder:
        shutil.copytree(folder, target, dirs_exist_ok=True)


def _moto_version() -> str:
    try:
        return f"moto {metadata.version('moto')}"
    except metadata.PackageNotFoundError:
        return "moto, version unknown"


def _emulator_fault(what: str, err: BaseException) -> ConfigError:
    return ConfigError(
        f"the demo's embedded WorkSpaces emulator ({_moto_version()}) {what}: "
        f"{type(err).__name__}: {err}",
        hint="this is the emulator failing with the installed moto, not your network or "
        "credentials (the demo calls no AWS account); install the moto the demo supports "
        "(python -m pip install 'workspaces-image-reconciler[demo]') or report it, with "
        "the version above",
    )


@contextmanager
def _started_emulator() -> Iterator[LocalEndpoint]:
    """The emulator, unpaced and without faults; a failure to start names moto, not us."""
    try:
        from reconciler.emulator import FidelityConfig, local_endpoint
    except ImportError as err:
        missing = (err.name or "one of them").split(".")[0]
        if missing in ("moto", "flask", "flask_cors", "werkzeug", "pyparsing"):
            raise ConfigError(
                f"the demo needs moto, flask and flask-cors; {missing} is not installed",
                hint="pip install 'workspaces-image-reconciler[demo]'",
            ) from err
        raise _emulator_fault("failed to load", err) from err
    with ExitStack() as stack:
        try:
            endpoint = stack.enter_context(
                local_endpoint(FidelityConfig(capture_seconds=CAPTURE_SECONDS))
            )
        except ReconcilerError:
            raise  # the emulator's own diagnosis (a moto it can't run on) says it best
        except Exception as err:
            raise _emulator_fault("failed to start", err) from err
        yield endpoint


def _check_emulator_answers(url: str) -> None:
    """Make one call of each kind the demo's commands depend on, without retries: a moto
    that answers them with errors fails here, in a second, naming itself."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=PROBE_TIMEOUT,
        read_timeout=PROBE_TIMEOUT,
    )
    session = boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=DEFAULT_REGION,
    )
    workspaces = session.client("workspaces", endpoint_url=url, config=config)
    tagging = session.client("resourcegroupstaggingapi", endpoint_url=url, config=config)
    probes: list[tuple[str, Callable[[], object]]] = [
        ("DescribeWorkspaces", workspaces.describe_workspaces),
        ("DescribeWorkspaceImages", workspaces.describe_workspace_images),
        ("DescribeWorkspaceBundles", workspaces.describe_workspace_bundles),
        ("tag:GetResources", lambda: tagging.get_resources(ResourceTypeFilters=["workspaces"])),
    ]
    for operation, call in probes:
        try:
            call()
        except (BotoCoreError, ClientError) as err:
            raise _emulator_fault(f"does not answer {operation} at {url}", err) from err


@contextmanager
def _listening(port: int) -> Iterator[socket.socket]:
    """A socket listening on 127.0.0.1:port (0: a free port), or an error naming the port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if sys.platform != "win32":  # elsewhere it lets a second program take the port
            # A port left in TIME_WAIT by the last run may be taken again at once.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, port))
        listener.listen(64)
    except OSError as err:
        listener.close()
        if err.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise ConfigError(
                f"port {port} on {HOST} is taken: another program listens on it",
                hint="pass another --port, or leave --port out to take a free one",
            ) from err
        raise ConfigError(
            f"can't listen on {HOST}:{port}: {err.strerror or err}",
            hint="pass another --port, or leave --port out to take a free one",
        ) from err
    with listener:
        yield listener


@contextmanager
def _serving(app: WSGIApplication, listener: socket.socket) -> Iterator[str]:
    """Serve ``app`` on the listening socket in a daemon thread; yield its URL."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # no access log lines among the instructions on stderr

    server = make_server(
        HOST, 0, app, threaded=True, request_handler=QuietHandler, fd=listener.fileno()
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
        name="reconciler-demo-serve",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{HOST}:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)


@contextmanager
def _interrupted_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop the server. Set here, not left to Python's defaults: SIGTERM's
    would kill it (exit -15), and a shell that starts it with `&` leaves SIGINT ignored."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, interrupt) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Source(NamedTuple):
    """A source WorkSpace the demo's specs capture from, and where it is."""

    account: str | None  # the 12-digit id; None: the run's own account (no account map)
    account_name: str | None
    region: str
    workspace_id: str


def _by_account(sources: set[Source]) -> list[tuple[str, list[str]]]:
    """The sources by account ("images (111111111111)"; "" without an account map), each
    as "ws-... (region)"."""
    held: dict[str, list[str]] = {}
    for s in sorted(sources, key=lambda s: (s.account or "", s.region, s.workspace_id)):
        account = f"{s.account_name} ({s.account})" if s.account else ""
        held.setdefault(account, []).append(f"{s.workspace_id} ({s.region})")
    return list(held.items())


def _seed(specs: Path, fidelity: Fidelity) -> set[Source]:
    """Create, in the emulator, each source WorkSpace the specs name, in the account the
    spec lives in (the run's own account when the specs declare no accounts)."""
    from reconciler.specs import load_specs

    sources = {
        Source(s.account, s.account_name, s.region or DEFAULT_REGION, s.source_workspace_id)
        for s in load_specs(specs).specs
        if s.source_workspace_id is not None  # an import captures no WorkSpace
    }
    for source in sorted(sources, key=lambda s: (s.account or "", s.region, s.workspace_id)):
        where = {} if source.account is None else {"account_id": source.account}
        try:
            fidelity.add_workspace(source.region, source.workspace_id, **where)
        except Exception as err:
            raise _emulator_fault(
                f"failed to add the WorkSpace {source.workspace_id}", err
            ) from err
    return sources


def _roll_out(specs: Path) -> None:
    """Edit the temporary copy of the specs as a person would in a pull request, and show
    the edit as the shell commands that would make it."""
    bundles = specs / BUNDLES_FILE
    declared = bundles.read_text(encoding="utf-8")
    if f"image: {ROLLED_OUT}\n" not in declared:
        raise ConfigError(f"the demo's {BUNDLES_FILE} has no bundle using {ROLLED_OUT}")
    for file, spec in ((CAPTURES_FILE, ROLLOUT_CAPTURE), (IMPORTS_FILE, ROLLOUT_IMPORT)):
        with (specs / file).open("a", encoding="utf-8") as out:
            out.write(spec)
        click.echo(click.style(f"$ cat >> specs/{file} <<EOF", bold=True))
        click.echo(spec + "EOF")
    bundles.write_text(
        declared.replace(f"image: {ROLLED_OUT}\n", f"image: {ROLLOUT}\n"), encoding="utf-8"
    )
    edit = f"s/image: {ROLLED_OUT}/image: {ROLLOUT}/"
    click.echo(click.style(f"$ sed -i '{edit}' specs/{BUNDLES_FILE}", bold=True))


def _edit_tags_out_of_band(env: dict[str, str], specs: Path) -> str:
    """Edit the tags of the workload account's import, as someone in its console would:
    in that account (through its role, as the reconciler reaches it)."""
    import boto3

    from reconciler.specs import load_specs

    endpoint = env["AWS_ENDPOINT_URL"]
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=DEFAULT_REGION,
    )
    role = {a.name: a for a in load_specs(specs).accounts}[WORKLOAD_ACCOUNT]
    assume = {"RoleArn": role.role, "RoleSessionName": "console"}
    if role.external_id:
        assume["ExternalId"] = role.external_id
    keys = session.client("sts", endpoint_url=endpoint).assume_role(**assume)["Credentials"]
    client = session.client(
        "workspaces",
        endpoint_url=endpoint,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )
    images = client.describe_workspace_images(ImageType="OWNED")["Images"]
    image = next(i for i in images if i["Name"] == ROLLED_OUT)
    client.create_tags(
        ResourceId=image["ImageId"],
        Tags=[{"Key": "team", "Value": "marketing"}, {"Key": "temp", "Value": "1"}],
    )
    return image["Name"]
