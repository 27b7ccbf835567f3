"""`reconciler demo --serve`: the demo's emulator, served until interrupted, so that the
worked rollout runs as written (the whole one, on the docs' lifecycle page; the README shows
it shortened, and tests/test_docs.py checks that it is an excerpt of this one).

Each test runs the real command in a subprocess, as a user does, and talks to what it serves
the way the docs say to: with the environment it prints.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT

LIFECYCLE = (ROOT / "docs/lifecycle.md").read_text(encoding="utf-8")
URL = re.compile(r"http://127\.0\.0\.1:(\d+)")
EXPORT = re.compile(r"^export (AWS_[A-Z_]+)=(\S+)$")
START_TIMEOUT = 60  # moto's import is slow on a busy machine


class Served:
    """A running `reconciler demo --serve`: its process, its URL and the printed exports."""

    def __init__(self, process: subprocess.Popen[str], lines: list[str]) -> None:
        self.process = process
        self.lines = lines
        self.url = lines[0]
        self.exports = dict(m.groups() for m in map(EXPORT.match, lines[1:]) if m)

    def env(self, path: Path | None = None) -> dict[str, str]:
        """The caller's environment without its AWS settings, plus the printed exports."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.exports, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        if path is not None:
            env["PATH"] = os.pathsep.join([str(path), env["PATH"]])
        return env

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, float, str]:
        """Send ``signum``; return the exit code, the seconds until exit, and stderr."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        took = time.monotonic() - sent
        assert self.process.stderr is not None
        return code, took, self.process.stderr.read()


def _as_a_shell_starts_it_with_ampersand() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a non-interactive shell's `cmd &` does this


def serve(*args: str, cwd: Path, background: bool = False) -> Served:
    """Start `reconciler demo --serve ARGS`; return once it printed its environment.
    ``background``: with SIGINT ignored, as a script's `reconciler demo --serve &` starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "demo", "--serve", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_a_shell_starts_it_with_ampersand if background else None,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:  # a thread, so that a server that prints too little fails, not hangs
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    printed: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    with contextlib.suppress(queue.Empty):
        while len(printed) < 6:
            printed.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
    if len(printed) < 6:
        process.kill()
        process.wait()
        assert process.stderr is not None
        pytest.fail(
            f"demo --serve printed {printed!r}, then nothing; stderr:\n{process.stderr.read()}"
        )
    return Served(process, printed)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    running = serve("--write-specs", "specs", cwd=tmp_path)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """A `reconciler` on PATH that is this checkout's, for the docs' commands."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "reconciler"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m reconciler "$@"\n')
    script.chmod(0o755)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


# --- what it prints, and that the printed environment reaches it ----------------------------


def test_the_first_line_is_the_url_then_the_environment_to_export(served: Served) -> None:
    assert URL.fullmatch(served.url), served.lines
    assert served.exports["AWS_ENDPOINT_URL"] == served.url
    assert served.exports["AWS_DEFAULT_REGION"] == "eu-west-1"
    # Placeholders that no one could take for keys.
    assert "fake" in served.exports["AWS_ACCESS_KEY_ID"]
    assert "fake" in served.exports["AWS_SECRET_ACCESS_KEY"]


def test_a_plan_with_the_printed_environment_reads_the_served_endpoint(
    served: Served, tmp_path: Path
) -> None:
    done = run([sys.executable, "-m", "reconciler", "plan", "specs"], served.env(), tmp_path)
    assert done.returncode == 0, done.stderr
    # The served endpoint has the demo specs' source WorkSpaces, in the images account, and
    # reaches both accounts of the map: every image is a create, the import too.
    assert "+ create      finance-win11-2026-11 (eu-west-1) from ws-0a1b2c3d4" in done.stdout
    images, finance = done.stdout.split("Account images (111111111111):\n", 1)[1].split(
        "Account finance (222222222222):\n", 1
    )
    assert "from ws-0a1b2c3d4" in images
    assert "+ create      finance-win11-2026-11 (eu-west-1) import of " in finance
    assert "Plan: 7 to create, 2 to update sharing. 0 unchanged." in done.stdout
    assert "Traceback" not in done.stderr


# --- stopping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "background"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGINT", "SIGTERM", "SIGINT-started-with-&"],
)
def test_a_signal_stops_it_with_130_within_2_seconds(
    tmp_path: Path, signum: int, background: bool
) -> None:
    port = free_port()
    running = serve("--port", str(port), cwd=tmp_path, background=background)
    assert running.url == f"http://127.0.0.1:{port}", running.stop()
    code, took, stderr = running.stop(signum)
    assert code == 130, stderr
    assert took < 2, f"{took:.2f} s"
    assert "Traceback" not in stderr
    with socket.socket() as again:  # the port is free again: nothing listens there
        # A connection of the test's may linger in TIME_WAIT; Linux refuses the bind with
        # SO_REUSEADDR only while a socket still listens on the port.
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_a_taken_port_is_an_error_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(
            [sys.executable, "-m", "reconciler", "demo", "--serve", "--port", str(port)],
            {k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            ROOT,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"Error: port {port} on 127.0.0.1 is taken" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--port", "8080"], "--port and --write-specs go with --serve"),
        (["demo", "--serve", "--write-specs", "full"], "not an empty folder"),
        (["demo", "--serve", "--port", "0"], "0 is not in the range 1<=x<=65535"),
    ],
    ids=["port-without-serve", "specs-into-a-full-folder", "port-0"],
)
def test_wrong_options_exit_1_before_serving(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    mine = tmp_path / "full" / "images.yaml"
    mine.write_text("# mine\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = run([sys.executable, "-m", "reconciler", *args], env, tmp_path)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr
    assert done.stdout == ""
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["images.yaml"]
    assert mine.read_text() == "# mine\n"


# --- the docs' worked rollout, as written -----------------------------------------------------


def worked_rollout() -> str:
    return LIFECYCLE.split("\n## A worked rollout\n", 1)[1].split("\n## ", 1)[0]


def blocks(text: str, lang: str = "") -> list[str]:
    """The fenced blocks of ``text`` whose info string is ``lang`` ("" for plain ones)."""
    fences = re.findall(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M)
    return [body for info, body in fences if info == lang]


def same_ids(text: str) -> str:
    """Ids (and the port) numbered in order of appearance: other runs make other ids, but
    an id must recur where the docs show it recurring."""
    seen: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return seen.setdefault(match[0], f"<{match[0][:3]}{len(seen)}>")

    return re.sub(r"\b(?:wsi|wsb)-[0-9a-z]{9}\b|127\.0\.0\.1:\d+", number, text)


def test_the_worked_rollout_runs_as_written_and_prints_what_it_shows(
    tmp_path: Path, shim: Path
) -> None:
    section = worked_rollout()
    start, apply_november, december = blocks(section, "sh")
    shown_serve, shown_plan, shown_results, shown_waits = blocks(section)

    # The first command, as written: a new folder, served from it, the specs written there.
    setup, command = start.split(" && reconciler ", 1)
    assert setup == "mkdir rollout && cd rollout", start
    args = command.split()
    assert args[:2] == ["demo", "--serve"], start
    folder = tmp_path / "rollout"
    folder.mkdir()
    running = serve(*args[2:], cwd=folder)
    try:
        assert same_ids("\n".join(running.lines) + "\n") == same_ids(shown_serve)
        env = running.env(path=shim)

        def sh(script: str) -> subprocess.CompletedProcess[str]:
            done = run(["sh", "-ec", script], env, folder)
            assert "Traceback" not in done.stderr, done.stderr
            return done

        assert sh(apply_november).returncode == 0
        assert sh(december).returncode == 0
        assert sorted(p.name for p in (folder / "specs/finance").iterdir()) == [
            "bundles.yaml",
            "defaults.yaml",
            "images.yaml",
        ]

        plan = sh("reconciler plan specs")
        assert plan.returncode == 0, plan.stderr
        applied = sh("reconciler apply --auto-approve --wait specs")
        assert applied.returncode == 0, applied.stderr
        last = sh("reconciler plan --detailed-exitcode specs")
    finally:
        code, _, _ = running.stop()
    assert code == 130

    # What the docs show is what the commands printed, ids apart.
    assert same_ids(plan.stdout) == same_ids(shown_plan)
    assert applied.stdout.startswith(plan.stdout)  # the plan first, then the results
    results = applied.stdout[len(plan.stdout) :].lstrip("\n")
    assert same_ids(plan.stdout + results) == same_ids(shown_plan + shown_results)
    # First what each item waits for (one line each, after the count), then the lines as
    # items end, in the order they end: the same lines, in any order.
    waited, shown = applied.stderr.splitlines(), shown_waits.splitlines()
    (count,) = re.findall(r"^waiting for (\d+) items", shown[0])
    head = 1 + int(count)
    assert waited[:head] == shown[:head]
    assert sorted(waited[head:]) == sorted(shown[head:])
    assert last.returncode == 0
    (said,) = re.findall(r"`(No changes\..*?)`", section.replace("\n", " "))
    assert last.stdout.strip() == said
