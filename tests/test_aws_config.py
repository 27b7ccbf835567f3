"""How to reach AWS: endpoint URLs, the read timeout and region names are checked and named
(`reconciler.awsconfig`), and reads are retried by `RetryPolicy`: a busy service is ridden
out, an endpoint that is not there fails fast, and every retry is announced."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from reconciler.aws import (
    READ_ATTEMPTS,
    UNREACHABLE_ATTEMPTS,
    AwsSettings,
    Clients,
    Failure,
    RetryPolicy,
    classify,
)
from reconciler.awsconfig import (
    DEFAULT_READ_TIMEOUT,
    check_endpoint_url,
    read_timeout,
    region_problem,
)
from reconciler.errors import ConfigError, Interrupted, SpecError
from reconciler.run import PlanOptions, build_plan
from tests.fidelity import Fidelity

ROOT = Path(__file__).resolve().parents[1]

# --- RECONCILER_READ_TIMEOUT -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(None, DEFAULT_READ_TIMEOUT), ("", DEFAULT_READ_TIMEOUT), ("2.5", 2.5), ("1", 1.0)],
)
def test_read_timeout_is_the_variable_or_the_default(raw: str | None, seconds: float) -> None:
    environ = {} if raw is None else {"RECONCILER_READ_TIMEOUT": raw}
    assert read_timeout(environ) == seconds


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan", "inf", "3601", "30s"])
def test_a_bad_read_timeout_is_an_error_naming_the_variable_with_an_example(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_timeout({"RECONCILER_READ_TIMEOUT": raw})
    assert f"RECONCILER_READ_TIMEOUT={raw!r}" in caught.value.message
    assert "RECONCILER_READ_TIMEOUT=30" in (caught.value.hint or "")


def test_a_bad_read_timeout_does_not_break_the_import_and_is_named_when_clients_are_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {**os.environ, "RECONCILER_READ_TIMEOUT": "abc"}
    done = subprocess.run(
        [sys.executable, "-c", "import reconciler.aws"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("RECONCILER_READ_TIMEOUT", "abc")
    with pytest.raises(ConfigError, match="RECONCILER_READ_TIMEOUT"):
        Clients(AwsSettings(region="eu-west-1"))


def test_the_read_timeout_reaches_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_READ_TIMEOUT", "2.5")
    clients = Clients(AwsSettings(region="eu-west-1", endpoint_url="http://127.0.0.1:9"))
    region = clients.region("eu-west-1")
    assert region.reads.meta.config.read_timeout == 2.5
    assert region.creates.meta.config.read_timeout == 2.5
    clients.close()


def _listings_to_make(accounts: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many directory listings botocore's loader makes while `accounts` threads each make
    a WorkSpaces client, each in an account of its own (`reach.account_session`: sessions that
    share the base's loader), nothing cached yet."""
    import boto3
    import botocore.loaders

    from reconciler import aws
    from reconciler.reach import Target, account_session

    monkeypatch.setattr(aws, "_made", set(), raising=False)
    listed: list[str] = []
    listdir = os.listdir

    def counted(path: Any) -> list[str]:
        listed.append(str(path))
        if not listed[:-1]:
            time.sleep(0.2)  # a slow disk: the threads meet while the first one reads
        return listdir(path)

    monkeypatch.setattr(botocore.loaders.os, "listdir", counted)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    base = boto3.session.Session(region_name="eu-west-1")
    settings = AwsSettings(region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    made = []
    for number in range(accounts):
        account = f"{number + 1:012d}"
        target = Target(f"a{number}", account, f"arn:aws:iam::{account}:role/reconciler")
        session = account_session(base, target, endpoint_url=settings.endpoint_url)
        made.append(Clients(settings, session=session, account=account))
    threads = [threading.Thread(target=c.region, args=("eu-west-1",)) for c in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for clients in made:
        clients.close()
    return len(listed)


def test_clients_made_at_once_read_botocore_data_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many accounts make hundreds of clients at once: each one that misses the loader's cache
    # reads botocore's data directory again (issue 18: seconds of CPU with 20 accounts).
    alone = _listings_to_make(1, monkeypatch)
    assert alone > 0
    assert _listings_to_make(4, monkeypatch) == alone


def test_account_sessions_share_the_base_sessions_event_handlers() -> None:
    # A session of its own per account registered every builtin botocore handler again
    # (~5 ms of CPU an account, issue 18). Shared, a client still copies the handlers it is
    # made with: what one client adds (the pace, the retry policy) stays its own.
    import boto3

    from reconciler.reach import Target, account_session

    base = boto3.session.Session(
        region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    target = Target("a", "000000000001", "arn:aws:iam::000000000001:role/reconciler")
    session = account_session(base, target, endpoint_url="http://127.0.0.1:9")
    assert session.events is base.events

    heard: list[str] = []
    client = session.client("workspaces", region_name="eu-west-1")
    client.meta.events.register("heard-only-here", lambda **kwargs: heard.append("client"))
    base.events.emit("heard-only-here")
    session.client("workspaces", region_name="eu-west-1").meta.events.emit("heard-only-here")
    assert heard == []
    client.meta.events.emit("heard-only-here")
    assert heard == ["client"]


# --- endpoint URLs -----------------------------------------------------------------------

GOOD_URLS = [
    "http://localhost:4566",
    "https://workspaces.eu-west-1.amazonaws.com",
    "http://127.0.0.1:5000/",
    "http://[::1]:4566",
    "https://proxy.example.com/aws",
]
BAD_URLS = [
    ("not a url", "must start with http:// or https://"),
    ("localhost:4566", "must start with http:// or https://"),
    ("ftp://files.example.com", "must start with http:// or https://"),
    ("http://127.0.0.1:99999", "the port '99999' is not a number from 1 to 65535"),
    ("http://127.0.0.1:0", "the port '0'"),
    ("http://localhost:port", "the port 'port'"),
    ("http://", "names no host"),
    ("http://exa mple.com", "not a valid host name"),
    ("http://[::1", "not a well-formed URL"),
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_a_well_formed_endpoint_url_passes(url: str) -> None:
    check_endpoint_url(url, "--endpoint-url")


@pytest.mark.parametrize(("url", "why"), BAD_URLS)
def test_a_malformed_endpoint_url_is_an_error_saying_why_and_what_works(url: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_endpoint_url(url, "--endpoint-url")
    assert caught.value.message.startswith(f"--endpoint-url is not a valid endpoint URL ({url!r})")
    assert why in caught.value.message
    assert "http://localhost:4566" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "variable",
    [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_WORKSPACES",
        "AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API",
    ],
)
def test_each_endpoint_variable_is_checked_and_named(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "localhost:4566")
    with pytest.raises(ConfigError) as caught:
        Clients(AwsSettings(region="eu-west-1"))
    assert caught.value.message.startswith(f"{variable} is not a valid endpoint URL")


def test_the_option_is_checked_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^--endpoint-url is not a valid endpoint URL"):
        Clients(AwsSettings(region="eu-west-1", endpoint_url="http://127.0.0.1:99999"))


def test_the_profile_endpoint_is_checked_and_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile ci]\nregion = eu-west-1\nendpoint_url = localhost:4566\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    with pytest.raises(ConfigError, match=r"^endpoint_url of AWS profile 'ci' is not a valid"):
        Clients(AwsSettings(profile="ci"))


def test_the_option_wins_over_the_variables_which_are_then_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "localhost:4566")
    clients = Clients(AwsSettings(region="eu-west-1", endpoint_url="http://127.0.0.1:9"))
    assert clients.endpoints == (("--endpoint-url", "http://127.0.0.1:9"),)
    assert clients.custom_endpoint


def test_variables_that_boto3_is_told_to_ignore_are_not_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "localhost:4566")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    clients = Clients(AwsSettings(region="eu-west-1"))
    assert not clients.custom_endpoint


def test_an_endpoint_variable_makes_the_endpoint_custom(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not Clients(AwsSettings(region="eu-west-1")).custom_endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_WORKSPACES", "http://localhost:4566")
    clients = Clients(AwsSettings(region="eu-west-1"))
    assert clients.endpoints == (("AWS_ENDPOINT_URL_WORKSPACES", "http://localhost:4566"),)


# --- region names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "custom", "problem"),
    [
        ("eu-west-1", False, None),
        ("us-east-1", False, None),
        ("cn-northwest-1", False, None),
        ("EU-WEST-1", False, "'EU-WEST-1' is not a region name; did you mean eu-west-1?"),
        ("EU-WEST-1", True, "'EU-WEST-1' is not a region name; did you mean eu-west-1?"),
        ("eu-wset-1", False, "unknown region 'eu-wset-1'; did you mean eu-west-1?"),
        ("eu-north-1", False, "WorkSpaces is not offered in eu-north-1"),
        ("mars-north-1", False, "'mars-north-1' is not a region name"),
        ("mars-north-1", True, "'mars-north-1' is not a region name"),
        # A custom endpoint (moto) serves any well-formed region name.
        ("eu-wset-1", True, None),
        ("us-west-1", True, None),
        ("ap-southeast-2", True, None),
    ],
)
def test_region_names_are_checked_against_botocores_data(
    region: str, custom: bool, problem: str | None
) -> None:
    assert region_problem(region, custom_endpoint=custom) == problem


def _specs(tmp_path: Path, region: str | None = None) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    where = f"region: {region}\n" if region else ""
    text = f"name: img-a\ndescription: Image a\nsource_workspace_id: ws-000000001\n{where}"
    (folder / "images.yaml").write_text(text, encoding="utf-8")
    return folder


def _config_file(tmp_path: Path, region: str) -> Path:
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nregion = {region}\n", encoding="utf-8")
    return config


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("option", "--region"),
        ("AWS_REGION", "AWS_REGION"),
        ("AWS_DEFAULT_REGION", "AWS_DEFAULT_REGION"),
        ("profile", "the region of AWS profile 'default' in "),
    ],
)
def test_an_unknown_default_region_is_an_error_naming_where_it_was_set(
    fidelity: Fidelity, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setting: str, named: str
) -> None:
    # In-process moto: no custom endpoint, so the names are AWS's, and a region that slipped
    # through would reach moto, not the network.
    region = "Eu-West-1"
    if setting in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(setting, region)
    elif setting == "profile":
        monkeypatch.setenv("AWS_CONFIG_FILE", str(_config_file(tmp_path, region)))
    clients = Clients(AwsSettings(region=region if setting == "option" else None, api_rate=0))
    with pytest.raises(ConfigError) as caught:
        build_plan(PlanOptions(specs_dir=str(_specs(tmp_path))), clients)
    assert caught.value.message.startswith(named)
    assert caught.value.message.endswith(
        "'Eu-West-1' is not a region name; did you mean eu-west-1?"
    )
    assert "eu-west-1" in (caught.value.hint or "")
    assert fidelity.images("eu-west-1") == []


def test_an_unknown_spec_region_is_a_spec_problem_at_its_line(
    fidelity: Fidelity, tmp_path: Path
) -> None:
    clients = Clients(AwsSettings(region="eu-west-1", api_rate=0))
    with pytest.raises(SpecError) as caught:
        build_plan(PlanOptions(specs_dir=str(_specs(tmp_path, "eu-wset-1"))), clients)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (
        f"{tmp_path}/specs/images.yaml",
        1,
        "region",
    )
    assert problem.message == "unknown region 'eu-wset-1'; did you mean eu-west-1?"


# --- retries -----------------------------------------------------------------------------


class _Reply:
    def __init__(self, status: int) -> None:
        self.status_code = status


def _answer(status: int, code: str = "") -> tuple[_Reply, dict[str, Any]]:
    parsed: dict[str, Any] = {"Error": {"Code": code, "Message": "m"}} if code else {}
    return _Reply(status), parsed


URL = "http://127.0.0.1:9/"
REFUSED = botocore.exceptions.EndpointConnectionError(
    endpoint_url=URL,
    error="AWSHTTPConnection(host='127.0.0.1', port=9): Failed to establish a new "
    "connection: [Errno 111] Connection refused",
)


@pytest.mark.parametrize(
    ("response", "exception", "expected"),
    [
        (None, REFUSED, Failure(f"could not connect to {URL} (connection refused)", 3, False)),
        (
            None,
            botocore.exceptions.ConnectTimeoutError(endpoint_url=URL),
            Failure(f"no connection to {URL} within 5 s", 3, False),
        ),
        (
            None,
            botocore.exceptions.ReadTimeoutError(endpoint_url=URL),
            Failure(f"no reply from {URL} within 2 s", 3, False),
        ),
        (
            None,
            botocore.exceptions.SSLError(endpoint_url=URL, error="CERTIFICATE_VERIFY_FAILED"),
            Failure(f"TLS with {URL} failed (CERTIFICATE_VERIFY_FAILED)", 3, False),
        ),
        (
            None,
            botocore.exceptions.ConnectionClosedError(endpoint_url=URL),
            Failure(f"the connection to {URL} was lost before the reply", 10, True),
        ),
        (
            _answer(400, "ThrottlingException"),
            None,
            Failure("throttled (ThrottlingException)", 10, True),
        ),
        (
            _answer(400, "ThrottledException"),
            None,
            Failure("throttled (ThrottledException)", 10, True),
        ),
        (_answer(429), None, Failure("throttled (429)", 10, True)),
        (
            _answer(500, "InternalServerError"),
            None,
            Failure("the service answered HTTP 500 InternalServerError", 10, True),
        ),
        (_answer(503), None, Failure("the service answered HTTP 503", 10, True)),
        (_answer(400, "ValidationException"), None, None),
        (_answer(400, "ResourceNotFoundException"), None, None),
        (_answer(200), None, None),
        (None, ValueError("not botocore's"), None),
    ],
)
def test_each_failure_gets_its_attempts(
    response: Any, exception: BaseException | None, expected: Failure | None
) -> None:
    assert classify(response, exception, read_timeout=2.0) == expected


class _Stop(threading.Event):
    """A stop event whose waits are recorded and end at once."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.is_set()


class _Operation:
    name = "DescribeWorkspaceImages"


def _policy() -> tuple[RetryPolicy, _Stop, list[str]]:
    stop, lines = _Stop(), []
    return RetryPolicy("eu-west-1", 30.0, stop, lines.append, jitter=lambda: 1.0), stop, lines


def test_a_refused_endpoint_gets_three_attempts_one_and_two_seconds_apart_each_announced() -> None:
    policy, stop, lines = _policy()
    decisions = [
        policy(attempts=n, operation=_Operation(), caught_exception=REFUSED)
        for n in range(1, UNREACHABLE_ATTEMPTS + 1)
    ]
    assert decisions == [0.0, 0.0, None]
    assert stop.waits == [1.0, 2.0]
    assert lines == [
        f"Retrying DescribeWorkspaceImages in eu-west-1 in {wait} s: attempt {n} of 3 failed: "
        f"could not connect to {URL} (connection refused)"
        for n, wait in ((1, "1.0"), (2, "2.0"))
    ]


def test_throttling_gets_ten_attempts_with_standard_backoff_capped_at_twenty_seconds() -> None:
    policy, stop, lines = _policy()
    throttled = _answer(400, "ThrottlingException")
    decisions = [policy(attempts=n, response=throttled) for n in range(1, READ_ATTEMPTS + 1)]
    assert decisions == [0.0] * (READ_ATTEMPTS - 1) + [None]
    assert stop.waits == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0, 20.0]
    assert sum(stop.waits) == 111.0  # the documented worst case
    assert len(lines) == READ_ATTEMPTS - 1
    assert lines[0].endswith("attempt 1 of 10 failed: throttled (ThrottlingException)")


def test_an_answer_that_stands_is_not_retried_nor_announced() -> None:
    policy, stop, lines = _policy()
    assert policy(attempts=1, response=_answer(400, "ValidationException")) is None
    assert (stop.waits, lines) == ([], [])


def test_once_interrupted_nothing_is_retried_nor_announced() -> None:
    policy, stop, lines = _policy()
    stop.set()
    with pytest.raises(Interrupted):
        policy(attempts=1, operation=_Operation(), caught_exception=REFUSED)
    assert (stop.waits, lines) == ([], [])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_reads_retry_a_refused_endpoint_and_creates_do_not() -> None:
    lines: list[str] = []
    url = f"http://127.0.0.1:{_closed_port()}"
    clients = Clients(AwsSettings(endpoint_url=url, api_rate=0), notify=lines.append)
    region = clients.region("eu-west-1")
    try:
        started = time.monotonic()
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            region.reads.describe_workspace_images()
        took = time.monotonic() - started
        assert 3.0 <= took < 5.0, took
        assert [line.split(":")[0] for line in lines] == [
            "Retrying DescribeWorkspaceImages in eu-west-1 in 1.0 s",
            "Retrying DescribeWorkspaceImages in eu-west-1 in 2.0 s",
        ]
        lines.clear()
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            region.creates.describe_workspace_images()
        assert lines == []
    finally:
        clients.close()


def test_tag_reads_retry_a_refused_endpoint() -> None:
    lines: list[str] = []
    url = f"http://127.0.0.1:{_closed_port()}"
    clients = Clients(AwsSettings(endpoint_url=url, api_rate=0), notify=lines.append)
    reader = clients.tag_reader("eu-west-1")
    assert reader is not None
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        reader.client.get_resources()
    assert [line.split(":")[0] for line in lines] == [
        "Retrying GetResources in eu-west-1 in 1.0 s",
        "Retrying GetResources in eu-west-1 in 2.0 s",
    ]


def test_account_sessions_read_the_profile_of_the_runs_own_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--profile corp: its settings (here max_attempts; a CA bundle, endpoints and proxies
    alike) hold in every account the run reaches, not the default profile's."""
    import boto3
    import botocore.credentials

    from reconciler.aws import derived_session

    config = tmp_path / "config"
    config.write_text(
        "[default]\nregion = us-west-2\n"
        "[profile corp]\nregion = eu-west-1\nmax_attempts = 7\n"
        "aws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    base = boto3.session.Session(profile_name="corp")
    assumed = botocore.credentials.Credentials("assumed", "secret", "token")
    session = derived_session(base, assumed, "eu-west-1")
    assert session._session.get_config_variable("max_attempts") == 7
    frozen = session.get_credentials().get_frozen_credentials()
    assert frozen.access_key == "assumed"  # the profile's settings, not its keys
