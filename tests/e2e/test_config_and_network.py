"""Configuration errors are named, and an endpoint that is not there fails fast, end to end:
the real `reconciler` command against a port with nothing listening, a socket that accepts
and never answers, and malformed options and variables.

Every AWS setting a test gives the command points at 127.0.0.1, and a proxy variable that
points at a closed local port catches a call meant for AWS itself: a check that let a bad
value through fails the test here, and sends nothing off the machine.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import REGION, Outcome, RunReconciler, SpecsDir, source
from tests.fidelity import LocalEndpoint

REFUSED_BOUND = 10.0  # the contract: an endpoint that refuses connections fails within ~10 s
STARTUP_SLACK = 5.0  # the interpreter, boto3's import and the specs, on a busy 2-core machine


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """An endpoint on 127.0.0.1 that accepts every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:  # the accept timed out: look at `done` again
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        server.close()


def aws_env(**overrides: str | None) -> dict[str, str | None]:
    """Dummy credentials, no AWS config, eu-west-1, and AWS itself out of reach."""
    trap = f"http://127.0.0.1:{closed_port()}"
    env: dict[str, str | None] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "HTTPS_PROXY": trap,
        "HTTP_PROXY": trap,
    }
    env.update(overrides)
    return env


def retries(outcome: Outcome) -> list[str]:
    return [line for line in outcome.stderr.splitlines() if line.startswith("Retrying ")]


def assert_announced(outcome: Outcome, why: str) -> None:
    """Each call that failed was announced twice, 1 s and then 2 s before its next attempt
    (the listing and the tag discovery of a region may fail side by side)."""
    by_call: dict[str, list[str]] = {}
    for line in retries(outcome):
        by_call.setdefault(line.split(" ")[1], []).append(line)
    assert by_call, outcome.stderr
    for call, lines in by_call.items():
        assert lines == [
            f"Retrying {call} in {REGION} in {wait} s: attempt {n} of 3 failed: {why}"
            for n, wait in ((1, "1.0"), (2, "2.0"))
        ], outcome.stderr


def timed(
    run: RunReconciler, *args: str | Path, env: Mapping[str, str | None]
) -> tuple[Outcome, float]:
    started = time.monotonic()
    outcome = run(*args, endpoint=None, env=env, check_exit=1)
    return outcome, time.monotonic() - started


@pytest.fixture
def one_spec(specs_dir: SpecsDir) -> SpecsDir:
    specs_dir.write("images.yaml", specs_dir.image("img-a", source(1)))
    return specs_dir


# --- an endpoint that is not there ---------------------------------------------------------


def test_plan_against_a_port_with_nothing_listening_fails_within_seconds_announcing_retries(
    one_spec: SpecsDir, run_reconciler: RunReconciler
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"

    outcome, took = timed(run_reconciler, "plan", one_spec, "--endpoint-url", url, env=aws_env())

    assert took < REFUSED_BOUND, took
    why = f"could not connect to {url}/ (connection refused)"
    assert_announced(outcome, why)
    assert f"Error: {why}; gave up after 3 attempts" in outcome.stderr
    assert "hint: is the endpoint up? check --endpoint-url" in outcome.stderr
    assert "unexpected" not in outcome.stderr


def test_plan_against_an_endpoint_that_never_answers_gives_up_within_the_documented_bound(
    one_spec: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """docs/commands.md, "Reaching AWS": 3 attempts x the read timeout + 1 s + 2 s of waits."""
    with silent_endpoint() as url:
        env = aws_env(AWS_ENDPOINT_URL=url, RECONCILER_READ_TIMEOUT="1")
        outcome, took = timed(run_reconciler, "plan", one_spec, env=env)

    bound = 3 * 1.0 + 1.0 + 2.0
    assert bound <= took < bound + STARTUP_SLACK, took
    why = f"no reply from {url}/ within 1 s"
    assert_announced(outcome, why)
    assert f"Error: {why}; gave up after 3 attempts" in outcome.stderr
    assert "RECONCILER_READ_TIMEOUT" in outcome.stderr  # the hint: raise it on a slow network
    assert "unexpected" not in outcome.stderr


# --- configuration errors ------------------------------------------------------------------

LOCAL = "http://127.0.0.1:1"  # a custom endpoint that any call that slips through would fail on

# case: (arguments, environment, the error line)
CONFIG_ERRORS: dict[str, tuple[list[str], dict[str, str | None], str]] = {
    "--endpoint-url that is no URL": (
        ["--endpoint-url", "not a url"],
        {},
        "--endpoint-url is not a valid endpoint URL ('not a url'): it must start with http:// "
        "or https://",
    ),
    "--endpoint-url port out of range": (
        ["--endpoint-url", "http://127.0.0.1:99999"],
        {},
        "--endpoint-url is not a valid endpoint URL ('http://127.0.0.1:99999'): the port "
        "'99999' is not a number from 1 to 65535",
    ),
    "AWS_ENDPOINT_URL without a scheme": (
        [],
        {"AWS_ENDPOINT_URL": "localhost:4566"},
        "AWS_ENDPOINT_URL is not a valid endpoint URL ('localhost:4566'): it must start with "
        "http:// or https://",
    ),
    "AWS_ENDPOINT_URL_WORKSPACES port out of range": (
        [],
        {"AWS_ENDPOINT_URL": LOCAL, "AWS_ENDPOINT_URL_WORKSPACES": "http://127.0.0.1:70000"},
        "AWS_ENDPOINT_URL_WORKSPACES is not a valid endpoint URL ('http://127.0.0.1:70000'): "
        "the port '70000' is not a number from 1 to 65535",
    ),
    "RECONCILER_READ_TIMEOUT not a number": (
        [],
        {"AWS_ENDPOINT_URL": LOCAL, "RECONCILER_READ_TIMEOUT": "abc"},
        "RECONCILER_READ_TIMEOUT='abc' is not a number of seconds above 0 and at most 3600",
    ),
    "--region in upper case": (
        ["--region", "EU-WEST-1"],
        {"AWS_ENDPOINT_URL": LOCAL},
        "--region: 'EU-WEST-1' is not a region name; did you mean eu-west-1?",
    ),
    "AWS_REGION with a typo, against AWS": (
        [],
        {"AWS_REGION": "eu-wset-1"},
        "AWS_REGION: unknown region 'eu-wset-1'; did you mean eu-west-1?",
    ),
    "AWS_DEFAULT_REGION naming a zone": (
        [],
        {"AWS_REGION": None, "AWS_DEFAULT_REGION": "eu-west-1a", "AWS_ENDPOINT_URL": LOCAL},
        "AWS_DEFAULT_REGION: 'eu-west-1a' is not a region name; did you mean eu-west-1?",
    ),
    "a region where WorkSpaces is not offered": (
        ["--region", "eu-north-1"],
        {},
        "--region: WorkSpaces is not offered in eu-north-1",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_a_bad_setting_is_an_error_naming_it_before_any_call(
    one_spec: SpecsDir, run_reconciler: RunReconciler, case: str
) -> None:
    args, env, error = CONFIG_ERRORS[case]

    outcome, took = timed(run_reconciler, "plan", one_spec, *args, env=aws_env(**env))

    assert f"Error: {error}\n  hint: " in outcome.stderr
    assert "unexpected" not in outcome.stderr
    assert retries(outcome) == []  # no call was made
    assert took < STARTUP_SLACK, took


def test_a_bad_region_in_the_profile_is_an_error_naming_the_profile(
    one_spec: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[profile ci]\nregion = Eu-West-1\n", encoding="utf-8")
    env = aws_env(AWS_REGION=None, AWS_CONFIG_FILE=str(config), AWS_ENDPOINT_URL=LOCAL)

    outcome, _ = timed(run_reconciler, "plan", one_spec, "--profile", "ci", env=env)

    assert (
        f"Error: the region of AWS profile 'ci' in {config}: 'Eu-West-1' is not a region name; "
        "did you mean eu-west-1?" in outcome.stderr
    )
    assert "unexpected" not in outcome.stderr


def test_an_unknown_region_in_a_spec_is_a_problem_at_its_line(
    specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    specs_dir.write("images.yaml", specs_dir.image("img-a", source(1), region="eu-wset-1"))

    outcome, _ = timed(run_reconciler, "plan", specs_dir, env=aws_env())

    assert (
        f"{specs_dir}/images.yaml:1:1: region: unknown region 'eu-wset-1'; did you mean "
        "eu-west-1?" in outcome.stderr
    )
    assert "unexpected" not in outcome.stderr


def test_with_a_local_endpoint_the_regions_of_specs_and_option_are_served(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """The checks leave a local endpoint's regions alone. (moto serves WorkSpaces only in
    the regions botocore lists for it; that any well-formed name passes with a custom
    endpoint is tested in tests/test_aws_config.py.)"""
    regions = ("us-west-2", "ap-southeast-2", "eu-central-1")
    docs = []
    for n, region in enumerate(regions):
        endpoint.fidelity.add_workspace(region, source(n))
        docs.append(specs_dir.image(f"img-{n}", source(n), region=region))
    specs_dir.write("images.yaml", *docs)

    plan = run_reconciler(
        "plan", specs_dir, "--region", "us-east-1", "--format", "json",
        endpoint=endpoint, check_exit=0,
    )  # fmt: skip

    assert {(i["region"], i["action"]) for i in plan.json()["items"]} == {
        (region, "create") for region in regions
    }
