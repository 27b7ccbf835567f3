"""Concurrent runs, interruptions and a broken environment, end to end: the real
`reconciler` command (several at once, or signalled mid-run) against the local endpoint.

Each test asserts the exit codes, the final AWS state as the endpoint holds it, and that
no output carries a traceback, a credential or a request signature.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, ROOT, RunReconciler, SpecsDir, live, reconciler_env, source
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
SECRET = "canary-SECRET-0f9e8d7c6b5a"  # a recognisable secret access key
SESSION_TOKEN = "canary-TOKEN-1a2b3c4d5e6f"  # a recognisable session token


def start(
    endpoint: LocalEndpoint, *args: str, env: Mapping[str, str | None] | None = None
) -> subprocess.Popen[str]:
    """`python -m reconciler ARGS` started in the background, as run_reconciler runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        env=reconciler_env(endpoint, env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    assert "Traceback" not in stderr, stderr
    return process.returncode, stdout, stderr


def wait_for(condition: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# --- three runs at once ----------------------------------------------------------------------


def test_three_applies_started_at_once_all_exit_0_and_create_each_image_once(
    endpoint: LocalEndpoint, specs_dir: SpecsDir
) -> None:
    """Three CI jobs apply the same specs at the same moment. Whoever loses a race to
    create a name gets ResourceAlreadyExistsException, which is convergence. Two specs
    share a source: one is captured, the other deferred by every run, and created once
    by the next three runs after the capture ends."""
    for n in range(4):
        endpoint.fidelity.add_workspace(REGION, source(n))
    tags = {"team": "ci"}
    specs_dir.write(
        "images.yaml",
        specs_dir.image("img-a", source(0), tags=tags),
        specs_dir.image("img-b", source(1), tags=tags),
        specs_dir.image("img-c", source(2), tags=tags),
        specs_dir.image("img-d", source(3), tags=tags),
        specs_dir.image("img-a2", source(0), tags=tags),  # the same source as img-a
    )
    endpoint.middleware.latency = 0.05  # widen the windows between plan and create
    argv = ("apply", str(specs_dir), "--auto-approve", "--api-rate", "0")

    runs = [start(endpoint, *argv) for _ in range(3)]
    outcomes = [finish(p) for p in runs]

    assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes
    found = live(endpoint)
    assert set(found) == {"img-a", "img-b", "img-c", "img-d"}
    assert all(image["tags"] == {**tags, **OWN} for image in found.values())
    accepted = [
        c for c in endpoint.calls.all() if c.operation == "CreateWorkspaceImage" and c.status == 200
    ]
    assert len(accepted) == 4  # one accepted create per image, whoever sent it
    for _, stdout, _ in outcomes:
        assert "deferred     img-a2" in stdout

    # The capture of img-a ends; three runs at once again: img-a2 exactly once.
    endpoint.fidelity.finish_capture(REGION, found["img-a"]["id"])
    outcomes = [finish(p) for p in [start(endpoint, *argv) for _ in range(3)]]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes
    found = live(endpoint)
    assert set(found) == {"img-a", "img-b", "img-c", "img-d", "img-a2"}
    assert found["img-a2"]["tags"] == {**tags, **OWN}


# --- interruption ----------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_apply_starts_no_new_call_prints_the_summary_and_exits_130(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, signum: int
) -> None:
    """At one call per second, 12 creates take about 10 seconds. After the first four
    creates, the signal: the calls in flight finish, no call is sent after it, the items
    not started are skipped, the summary is printed and the exit code is 130. Running
    apply again creates the rest, with no duplicate."""
    names = [f"img-{n:02d}" for n in range(12)]
    for n in range(12):
        endpoint.fidelity.add_workspace(REGION, source(n))
    specs_dir.write(
        "images.yaml", *(specs_dir.image(name, source(n)) for n, name in enumerate(names))
    )
    arrivals: list[float] = []

    def arrived(body: dict[str, Any]) -> bool:
        arrivals.append(time.monotonic())  # when each call reaches the endpoint
        return False  # never an error: only a hook

    endpoint.faults.error_for("*", "Unused", when=arrived)
    process = start(endpoint, "apply", str(specs_dir), "--auto-approve", "--api-rate", "1")
    # The first creates go in a burst; then one a second: signal in the paced part.
    wait_for(lambda: endpoint.calls.count("CreateWorkspaceImage") >= 4, what="four creates")
    signalled = time.monotonic()
    process.send_signal(signum)
    code, stdout, stderr = finish(process, timeout=30)
    ended = time.monotonic()

    assert code == 130, (stdout, stderr)
    assert ended - signalled < 5  # it stopped at once, not at the end of the run
    assert "Interrupted: starting no new calls, abandoning those in flight." in stderr
    # No call was sent after the signal; the ones in flight were answered at once.
    assert max(arrivals) < signalled + 0.2, (max(arrivals) - signalled, arrivals)
    assert max(c.time for c in endpoint.calls.all()) < signalled + 1.0
    created = set(live(endpoint))
    assert 4 <= len(created) < len(names)
    # The summary: every item, created or skipped.
    for name in names:
        word = "created" if name in created else "skipped"
        assert f"  {word:<12} {name} (eu-west-1)" in stdout, (name, stdout)
    assert stdout.count("interrupted before this item") == len(names) - len(created)
    assert f"Apply interrupted: {len(created)} created, {len(names) - len(created)} skipped." in (
        stdout
    )

    endpoint.faults.clear()
    again = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--format", "json", endpoint=endpoint, check_exit=0
    )
    results = {i["name"]: i["result"] for i in again.json()["items"]}
    assert {n for n, r in results.items() if r == "created"} == set(names) - created
    assert endpoint.calls.count("CreateWorkspaceImage") == len(names)  # none sent twice
    assert set(live(endpoint)) == set(names)


# --- the environment -------------------------------------------------------------------------


def no_leak(*texts: str) -> None:
    """No secret, session token or request signature in any output."""
    for text in texts:
        for secret in (SECRET, SESSION_TOKEN, "Signature=", "AWS4-HMAC-SHA256", "Authorization"):
            assert secret not in text, (secret, text)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


ENVIRONMENT_PROBLEMS: dict[str, tuple[dict[str, str | None], str | None, str]] = {
    # name: (environment changes, error the listing answers, the one line expected)
    "missing credentials": (
        {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None},
        None,
        "Error: no AWS credentials found",
    ),
    "expired token": ({}, "ExpiredTokenException", "Error: the AWS session token has expired"),
    "rejected credentials": (
        {},
        "UnrecognizedClientException",
        "Error: AWS rejected the credentials",
    ),
}


@pytest.mark.parametrize("problem", list(ENVIRONMENT_PROBLEMS))
def test_credential_problems_give_one_clear_line_exit_1_and_no_traceback_even_with_v(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, problem: str
) -> None:
    changes, code, line = ENVIRONMENT_PROBLEMS[problem]
    endpoint.fidelity.add_workspace(REGION, source(0))
    specs_dir.write("images.yaml", specs_dir.image("img", source(0)))
    if code:
        endpoint.faults.error_for("DescribeWorkspaceImages", code, status=400)
    env = {
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_EC2_METADATA_DISABLED": "true",
        **changes,
    }
    commands: Sequence[tuple[str, ...]] = (
        ("plan",),
        ("plan", "-v"),
        ("apply", "--auto-approve", "-v"),
        ("drift", "-v", "--format", "json"),
    )
    for command in commands:
        outcome = run_reconciler(*command, specs_dir, endpoint=endpoint, env=env, check_exit=1)
        lines = error_lines(outcome.stderr)
        assert lines[0] == line, outcome.stderr
        # One line, and at most the hint that says what to do.
        assert len(lines) <= 2, outcome.stderr
        assert all(rest.startswith("  hint: ") for rest in lines[1:]), outcome.stderr
        if "json" in command:  # the error document, and nothing else
            assert outcome.json()["error"]["message"] == line.removeprefix("Error: ")
        else:
            assert outcome.stdout == ""
        no_leak(outcome.stdout, outcome.stderr)
    assert endpoint.calls.changing() == []
    assert live(endpoint) == {}


def test_a_missing_region_gives_one_clear_line_and_exit_1(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, source(0))
    specs_dir.write("images.yaml", specs_dir.image("img", source(0)))
    env = {"AWS_REGION": None, "AWS_DEFAULT_REGION": None}
    for command in (("plan",), ("apply", "--auto-approve", "-v"), ("drift", "-v")):
        outcome = run_reconciler(*command, specs_dir, endpoint=endpoint, env=env, check_exit=1)
        about_region = [line for line in outcome.stderr.splitlines() if "region" in line]
        assert len(about_region) == 1, outcome.stderr
        assert "images.yaml:1" in about_region[0]
        assert "--region" in about_region[0]
        assert "AWS_REGION" in about_region[0]
        assert outcome.stdout == ""
    assert endpoint.calls.all() == []
    assert live(endpoint) == {}


def test_no_secret_or_signature_is_printed_even_with_v_and_failing_calls(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """A session with a recognisable secret key and token, runs at -v and -vv, with calls
    that fail every way the tool reports: access denied, a 500, throttling and a reset.
    The secret, the token and any request signature never appear."""
    for n in (0, 2, 3):
        endpoint.fidelity.add_workspace(REGION, source(n))
    endpoint.fidelity.add_image(REGION, "retag", "Image retag", tags={**OWN, "team": "old"})
    specs_dir.write(
        "images.yaml",
        specs_dir.image("denied", source(0)),
        specs_dir.image("refused", source(2)),
        specs_dir.image("fine", source(3)),
        specs_dir.image("retag", source(3), tags={"team": "new"}),
    )
    endpoint.faults.error_for(
        "CreateWorkspaceImage", "AccessDeniedException", when=lambda b: b["Name"] == "denied"
    )
    endpoint.faults.error_for(
        "CreateTags", "AccessDeniedException", message="User is not authorized", times=1
    )
    env = {"AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": SESSION_TOKEN}
    outputs = []
    plan = run_reconciler("plan", specs_dir, "-vv", endpoint=endpoint, env=env, check_exit=0)
    outputs += [plan.stdout, plan.stderr]
    endpoint.faults.fail_once("DescribeWorkspaceImages", "reset")
    endpoint.faults.fail_once("DescribeWorkspaces", "throttle")
    endpoint.faults.error_for(
        "CreateWorkspaceImage",
        "InternalServerError",
        status=500,
        when=lambda b: b["Name"] == "refused",
    )
    applied = run_reconciler(
        "apply", specs_dir, "--auto-approve", "-vv", endpoint=endpoint, env=env, check_exit=1
    )
    outputs += [applied.stdout, applied.stderr]
    assert "AccessDeniedException" in applied.stdout  # the failures were reported
    assert "InternalServerError" in applied.stdout
    for fmt in ("json", "markdown"):
        drift = run_reconciler(
            "drift", specs_dir, "-v", "--format", fmt, endpoint=endpoint, env=env, check_exit=2
        )
        outputs += [drift.stdout, drift.stderr]
    no_leak(*outputs)
    assert set(live(endpoint)) == {"retag", "fine"}
