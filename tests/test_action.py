"""The GitHub Action (action.yml), run here as the runner runs it, and the workflow files.

A small stand-in runner reads action.yml and runs its steps in order: each shell step with
bash, with only the `${{ }}` expressions of its `env:` evaluated (inputs, earlier steps'
outputs, `github.*`, `runner.*`), a fresh GITHUB_OUTPUT file per step, GITHUB_ACTION_PATH
pointing at a copy of this repository's files, and an event file. The two `uses:` steps
stand in for actions/setup-python (its `python-path` output: a Python 3.10 when the machine
has one, the oldest the action supports) and actions/cache (a miss). The install step runs
for real (a virtual environment and the hash-pinned lock, from the package index); the
reconciler runs against the local moto endpoint of tests/e2e/conftest.py, and the comment
step talks to a stand-in for GitHub's REST API on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, SpecsDir
from tests.fidelity import LocalEndpoint, local_endpoint

ROOT = Path(__file__).resolve().parents[1]
ACTION_FILE = ROOT / "action.yml"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
TOOL = "workspaces-image-reconciler"
TOKEN = "ghs_stand-in-token"
REPOSITORY = "octo-org/golden-images"
BOT = "github-actions[bot]"  # the account the job's GITHUB_TOKEN posts as
OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SHA_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@\s]+)?@[0-9a-f]{40}$")


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


ACTION = load(ACTION_FILE)


def marker(kind: str, label: str = "") -> str:
    return f"<!-- {TOOL}:{kind}{':' + label if label else ''} -->"


# A stand-in for the Actions expression evaluator: property paths only ------------------


def evaluate(text: str, context: Mapping[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        path = match.group(1)
        assert re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)+", path), f"not a property path: {path}"
        value: Any = context
        parts = path.split(".")
        for part in parts:
            if not isinstance(value, Mapping) or part not in value:
                # As on GitHub, the output of a step that did not run or did not set it is
                # empty (test_steps_refer_only_to_earlier_steps checks the ids); anything
                # else unknown is a mistake.
                assert (parts[0], len(parts), parts[2]) == ("steps", 4, "outputs"), path
                return ""
            value = value[part]
        return str(value)

    return EXPRESSION.sub(one, text)


def as_text(value: Any) -> str:
    """A YAML scalar as the runner passes it on: booleans as `true` / `false`."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def read_outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT's two forms: `name=value` and `name<<DELIMITER` ... `DELIMITER`."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            for item in lines:
                if item == delimiter:
                    break
                value.append(item)
            else:
                raise AssertionError(f"GITHUB_OUTPUT: {name} is never closed by {delimiter}")
            outputs[name] = "\n".join(value)
        elif line:
            name, value_text = line.split("=", 1)
            outputs[name] = value_text
    return outputs


# A stand-in for GitHub's REST API: the issue-comment calls ------------------------------


@dataclass
class FakeGitHub:
    url: str
    comments: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    token: str = TOKEN
    per_page: int = 2  # small, so that finding a comment follows the Link header
    # The token is the job's GITHUB_TOKEN: /user refuses it, GraphQL's viewer names its bot.
    login: str = BOT
    # GET /repos/R/commits/SHA/pulls: the pull requests GitHub associates with each commit.
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)

    def open_issue(self, body: str, login: str, labels: tuple[str, ...] = ("drift",)) -> int:
        number = 100 + len(self.issues)
        self.issues.append({
            "number": number, "body": body, "user": {"login": login}, "state": "open",
            "labels": [{"name": n} for n in labels], "title": "",
        })  # fmt: skip
        return number

    def issue(self, number: int) -> dict[str, Any]:
        return next(i for i in self.issues if i["number"] == number)

    def seed(self, body: str, login: str = "someone") -> int:
        comment_id = 1000 + len(self.comments)
        self.comments.append({"id": comment_id, "body": body, "user": {"login": login}})
        return comment_id

    def writes(self) -> list[tuple[str, str, Any]]:
        return [c for c in self.calls if c[0] != "GET" and c[1] != "/graphql"]

    def body_of(self, comment_id: int) -> str:
        return str(next(c["body"] for c in self.comments if c["id"] == comment_id))


def _handler(api: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    comments_path = re.compile(rf"^/repos/{REPOSITORY}/issues/(\d+)/comments$")
    pulls_path = re.compile(rf"^/repos/{REPOSITORY}/commits/([0-9a-f]{{40}})/pulls$")
    issues_path = f"/repos/{REPOSITORY}/issues"
    issue_path = re.compile(rf"^/repos/{REPOSITORY}/issues/(\d+)$")
    comment_path = re.compile(rf"^/repos/{REPOSITORY}/issues/comments/(\d+)$")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: Any, headers: Mapping[str, str] = {}) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _begin(self) -> tuple[str, dict[str, list[str]], Any] | None:
            parsed = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            api.calls.append((self.command, parsed.path, body))
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                self._reply(401, {"message": "Bad credentials"})
                return None
            return parsed.path, urllib.parse.parse_qs(parsed.query), body

        def do_GET(self) -> None:
            begun = self._begin()
            if begun is None:
                return
            path, query, _ = begun
            if path == "/user":
                self._reply(403, {"message": "Resource not accessible by integration"})
                return
            pulls = pulls_path.match(path)
            if pulls:
                self._reply(200, api.pulls.get(pulls.group(1), []))
                return
            if path == issues_path:
                wanted = query.get("labels", [""])[0]
                listed = [
                    i for i in api.issues
                    if i["state"] == query.get("state", ["open"])[0]
                    and (not wanted or wanted in [n["name"] for n in i["labels"]])
                ]  # fmt: skip
                page = int(query.get("page", ["1"])[0])
                start = (page - 1) * api.per_page
                headers = {}
                if start + api.per_page < len(listed):
                    link = f"{api.url}{path}?state=open&labels={wanted}&page={page + 1}"
                    headers["Link"] = f'<{link}>; rel="next"'
                self._reply(200, listed[start : start + api.per_page], headers)
                return
            if not comments_path.match(path):
                self._reply(404, {"message": "Not Found"})
                return
            page = int(query.get("page", ["1"])[0])
            start = (page - 1) * api.per_page
            headers = {}
            if start + api.per_page < len(api.comments):
                headers["Link"] = f'<{api.url}{path}?per_page=100&page={page + 1}>; rel="next"'
            self._reply(200, api.comments[start : start + api.per_page], headers)

        def do_POST(self) -> None:
            begun = self._begin()
            if begun is None:
                return
            path, _, body = begun
            if path == "/graphql" and "viewer" in body["query"]:
                # GraphQL names a bot without the `[bot]` that REST gives its comments.
                bot = api.login.removesuffix("[bot]")
                kind = "Bot" if bot != api.login else "User"
                self._reply(200, {"data": {"viewer": {"login": bot, "__typename": kind}}})
                return
            if path == issues_path:
                number = api.open_issue(body["body"], api.login, tuple(body.get("labels", ())))
                api.issue(number)["title"] = body["title"]
                self._reply(201, api.issue(number))
                return
            if path == f"/repos/{REPOSITORY}/labels":
                if body["name"] in api.labels:
                    self._reply(422, {"message": "Validation Failed"})
                    return
                api.labels.add(body["name"])
                self._reply(201, body)
                return
            if not comments_path.match(path):
                self._reply(404, {"message": "Not Found"})
                return
            comment_id = api.seed(body["body"], login=api.login)
            self._reply(201, {"id": comment_id, "body": body["body"]})

        def do_PATCH(self) -> None:
            begun = self._begin()
            if begun is None:
                return
            path, _, body = begun
            numbered = issue_path.match(path)
            if numbered:
                changed = api.issue(int(numbered.group(1)))
                changed.update(body)
                self._reply(200, changed)
                return
            found = comment_path.match(path)
            mine = [c for c in api.comments if found and c["id"] == int(found.group(1))]
            if not mine:
                self._reply(404, {"message": "Not Found"})
                return
            mine[0]["body"] = body["body"]
            self._reply(200, mine[0])

    return Handler


@pytest.fixture
def github_api() -> Iterator[FakeGitHub]:
    api = FakeGitHub(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    api.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# The stand-in runner ---------------------------------------------------------------------


def oldest_python() -> str:
    """A Python 3.10 when the machine has one (directly or through pyenv), else this one."""
    candidates = [shutil.which("python3.10") or ""]
    pyenv = shutil.which("pyenv")
    if pyenv:
        versions = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
        ).stdout.split()
        candidates += [
            str(
                Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
                / "versions"
                / v
                / "bin/python"
            )
            for v in versions
            if re.fullmatch(r"3\.10\.\d+", v)
        ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            return probe.stdout.strip()
    return sys.executable


@dataclass
class ActionRun:
    outputs: dict[str, str]
    steps: dict[str, dict[str, str]]
    ran: list[str]
    failed: str | None
    log: str

    def report(self, name: str) -> str:
        return Path(self.outputs[name]).read_text(encoding="utf-8")


@dataclass
class Runner:
    action_path: Path
    runner_temp: Path
    python: str
    workspace: Path
    endpoint_url: str | None = None
    api_url: str = "http://127.0.0.1:9"  # nothing listens: a call where none is due fails

    def environment(self, event_name: str, event_path: Path, output: Path) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "GITHUB_", "RUNNER_"))
            and k not in ("PYTHONPATH", "NO_COLOR", "VIRTUAL_ENV")
        }
        env.update(
            CI="true",
            GITHUB_ACTIONS="true",
            GITHUB_ACTION_PATH=str(self.action_path),
            GITHUB_WORKSPACE=str(self.workspace),
            GITHUB_EVENT_NAME=event_name,
            GITHUB_EVENT_PATH=str(event_path),
            GITHUB_REPOSITORY=REPOSITORY,
            GITHUB_API_URL=self.api_url,
            GITHUB_SERVER_URL="https://github.com",
            GITHUB_RUN_ID="4242",
            GITHUB_SHA="0123456789abcdef0123456789abcdef01234567",
            GITHUB_STEP_SUMMARY=str(self.workspace / "step-summary.md"),
            GITHUB_OUTPUT=str(output),
            RUNNER_TEMP=str(self.runner_temp),
            RUNNER_OS="Linux",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        if self.endpoint_url:
            env.update(
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_REGION=REGION,
                AWS_ENDPOINT_URL=self.endpoint_url,
            )
        return env

    def run(
        self,
        inputs: Mapping[str, str],
        *,
        event_name: str = "pull_request",
        event: Mapping[str, Any] | None = None,
    ) -> ActionRun:
        unknown = set(inputs) - set(ACTION["inputs"])
        assert not unknown, f"action.yml has no input {unknown}"
        scratch = self.runner_temp / "stand-in"
        scratch.mkdir(parents=True, exist_ok=True)
        event_path = scratch / "event.json"
        event_path.write_text(json.dumps(event or {}), encoding="utf-8")
        context: dict[str, Any] = {
            "github": {"action_path": str(self.action_path), "token": TOKEN},
            "runner": {"temp": str(self.runner_temp), "os": "Linux"},
            "steps": {},
        }
        context["inputs"] = {
            name: evaluate(str(spec.get("default", "")), context)
            for name, spec in ACTION["inputs"].items()
        }
        context["inputs"].update(inputs)
        ran: list[str] = []
        log: list[str] = []
        failed = None
        for number, step in enumerate(ACTION["runs"]["steps"]):
            name = step.get("name", f"step {number}")
            ran.append(name)
            output = scratch / f"output-{number}"
            output.write_text("", encoding="utf-8")
            env = self.environment(event_name, event_path, output)
            if "uses" in step:
                outputs = self.stand_in(step, context)
                code = 0
            else:
                assert step.get("shell") == "bash", f"{name}: composite steps name their shell"
                env.update(
                    {k: evaluate(as_text(v), context) for k, v in step.get("env", {}).items()}
                )
                script = scratch / f"step-{number}.sh"
                script.write_text(step["run"], encoding="utf-8")
                done = subprocess.run(
                    # GitHub's `shell: bash`
                    ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                    env=env,
                    cwd=self.workspace,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                log.append(f"## {name} (exit {done.returncode})\n{done.stdout}{done.stderr}")
                assert "Traceback" not in done.stderr, log[-1]
                outputs, code = read_outputs(output), done.returncode
            if "id" in step:
                context["steps"][step["id"]] = {"outputs": outputs}
            if code != 0:
                failed = name
                break
        action_outputs = {
            name: evaluate(spec["value"], context) for name, spec in ACTION["outputs"].items()
        }
        steps = {k: v["outputs"] for k, v in context["steps"].items()}
        return ActionRun(action_outputs, steps, ran, failed, "\n".join(log))

    def stand_in(self, step: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, str]:
        action = step["uses"].split("@", 1)[0]
        inputs = {k: evaluate(as_text(v), context) for k, v in step.get("with", {}).items()}
        if action == "actions/setup-python":
            assert inputs["update-environment"] == "false", "the job's Python must stay as it was"
            assert inputs["python-version"] == context["inputs"]["python-version"]
            return {"python-path": self.python, "python-version": "3.x"}
        if action == "actions/cache":
            assert inputs["path"], "the pip cache's path comes from the prepare step"
            lock = context["steps"]["prepare"]["outputs"]["cache-key"]
            assert lock, "the prepare step names the cache key"
            assert lock in inputs["key"], "the cache is keyed on the lock's hash"
            return {"cache-hit": "false"}
        raise AssertionError(f"no stand-in for {action}")


# Fixtures ----------------------------------------------------------------------------------


def _copy_of_the_repository(target: Path) -> Path:
    """The action's files as a runner checks them out: the repository, without caches."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        ".hypothesis", ".benchmarks", "tests", "benchmarks",
    )  # fmt: skip
    shutil.copytree(ROOT, target, ignore=ignore)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The action's files and a runner temp folder shared by this module's runs: the first
    run installs the reconciler, later ones find it installed (as a second use of the
    action in one job does)."""
    base = tmp_path_factory.mktemp("action")
    return _copy_of_the_repository(base / "action"), base / "runner-temp", oldest_python()


@pytest.fixture
def endpoint() -> Iterator[LocalEndpoint]:
    """The local WorkSpaces endpoint of the end-to-end tests (tests/e2e/conftest.py)."""
    with local_endpoint() as ep:
        yield ep


@pytest.fixture
def runner(installed: tuple[Path, Path, str], tmp_path: Path) -> Runner:
    action_path, runner_temp, python = installed
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    return Runner(action_path, runner_temp, python, workspace)


@pytest.fixture
def specs(runner: Runner) -> SpecsDir:
    return SpecsDir(runner.workspace / "specs")


def pull_request(number: int = 7) -> dict[str, Any]:
    return {"pull_request": {"number": number}, "number": number}


FAST = "--api-rate 0"  # no client-side pacing against the local endpoint


def succeeded(run: ActionRun) -> None:
    assert run.failed is None, run.log
    assert run.ran[-1].startswith("Fail unless"), run.ran


# The action, run ---------------------------------------------------------------------------


def test_plan_with_changes_posts_then_edits_one_sticky_comment_per_label(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs.write("finance/images.yaml", specs.image("finance-win11", WS_A, tags={"team": "fin"}))
    runner.endpoint_url, runner.api_url = endpoint.url, github_api.url
    github_api.seed("Looks good to me")
    github_api.seed(marker("plan") + "\n\nthe plan of the run without a label")
    other = github_api.seed("<!-- workspaces-image-reconciler:plan:engineering/us-east-1 -->\n")
    label = "finance/eu-west-1"
    inputs = {"command": "plan", "comment": "true", "label": label, "args": FAST}

    first = runner.run(inputs, event=pull_request())

    succeeded(first)
    assert first.outputs["exitcode"] == "2", first.log
    assert (first.outputs["has-changes"], first.outputs["drifted"]) == ("true", "false")
    report = first.report("markdown-file")
    assert report.splitlines()[0] == marker("plan", label)
    assert label in report.split("\n\n", 2)[1], "the label is in the heading"
    document = json.loads(first.report("json-file"))
    assert [i["action"] for i in document["items"]] == ["create"]
    on_comments = [c[0] for c in github_api.calls if c[1].endswith("/comments")]
    assert on_comments == ["GET", "GET", "POST"], "paged, then posted"
    assert ("GET", "/user", None) in github_api.calls, "who the token acts as, first"
    assert github_api.calls[-1][1] == f"/repos/{REPOSITORY}/issues/7/comments"
    assert github_api.calls[-1][2] == {"body": report}
    posted = github_api.comments[-1]["id"]

    # A later push: the same comment is edited; the other runs' comments are left alone.
    github_api.calls.clear()
    second = runner.run(inputs, event=pull_request())
    succeeded(second)
    assert github_api.writes() == [
        ("PATCH", f"/repos/{REPOSITORY}/issues/comments/{posted}", {"body": report})
    ]
    assert len(github_api.comments) == 4
    assert github_api.body_of(other).startswith("<!-- workspaces-image-reconciler:plan:eng")
    assert github_api.body_of(1001).endswith("the plan of the run without a label")


def test_plan_without_changes_and_changes_only_posts_nothing_but_keeps_an_old_comment_current(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    endpoint.fidelity.add_image(
        REGION, "finance-win11", description="Image finance-win11", tags=OWN
    )
    specs.write("images.yaml", specs.image("finance-win11", WS_A))
    runner.endpoint_url, runner.api_url = endpoint.url, github_api.url
    inputs = {"command": "plan", "comment": "changes-only", "label": "prod", "args": FAST}

    quiet = runner.run(inputs, event=pull_request())

    succeeded(quiet)
    assert quiet.outputs["exitcode"] == "0", quiet.log
    assert (quiet.outputs["has-changes"], quiet.outputs["drifted"]) == ("false", "false")
    assert quiet.report("markdown-file").splitlines()[0] == marker("plan", "prod")
    assert github_api.writes() == [], "no comment when nothing changes"
    assert github_api.comments == []

    # An earlier push had changes and its comment is still there: it is brought up to date,
    # so that reviewers never see changes that are gone.
    stale = github_api.seed(marker("plan", "prod") + "\n\n### Plan: 1 to create", login=BOT)
    github_api.calls.clear()
    again = runner.run(inputs, event=pull_request())
    succeeded(again)
    assert github_api.writes() == [
        (
            "PATCH",
            f"/repos/{REPOSITORY}/issues/comments/{stale}",
            {"body": again.report("markdown-file")},
        )
    ]


def test_drift_with_drift_sets_drifted_and_comments_only_on_pull_requests(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    tags = {**OWN, "team": "marketing"}
    endpoint.fidelity.add_image(
        REGION, "finance-win11", description="Image finance-win11", tags=tags
    )
    specs.write("images.yaml", specs.image("finance-win11", WS_A, tags={"team": "finance"}))
    runner.endpoint_url, runner.api_url = endpoint.url, github_api.url
    label = "finance/eu-west-1"

    run = runner.run(
        {"command": "drift", "comment": "true", "label": label, "args": FAST},
        event_name="schedule",
        event={"schedule": "17 6 * * *"},
    )

    succeeded(run)  # drift is an outcome, not a failure: `drifted` says it
    assert run.outputs["exitcode"] == "2", run.log
    assert (run.outputs["has-changes"], run.outputs["drifted"]) == ("true", "true")
    report = run.report("markdown-file")
    assert report.splitlines()[0] == marker("drift", label)
    assert "team" in report
    assert github_api.calls == [], "a scheduled run has no pull request to comment on"
    assert "not a pull request" in run.log
    summary = (runner.workspace / "step-summary.md").read_text(encoding="utf-8")
    assert marker("drift", label) in summary, "the job summary gets the report too"


def test_a_failed_run_posts_its_error_comment_and_fails_the_action(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    specs.write(
        "images.yaml", "name: typo-win11\ndescripton: oops\nsource_workspace_id: ws-0a1b2c3d4\n"
    )
    runner.endpoint_url, runner.api_url = endpoint.url, github_api.url
    label = "finance/eu-west-1"

    run = runner.run(
        {"command": "plan", "comment": "changes-only", "label": label, "args": FAST},
        event=pull_request(),
    )

    assert run.failed == "Fail unless the reconciler exited 0 or 2", run.log
    assert run.outputs["exitcode"] == "1", run.log
    assert (run.outputs["has-changes"], run.outputs["drifted"]) == ("false", "false")
    assert f"::error title={TOOL}::reconciler plan exited 1" in run.log
    report = run.report("markdown-file")
    assert report.splitlines()[0] == marker("plan", label)
    assert "descripton" in report, "the error comment says why"
    error = json.loads(run.report("json-file"))["error"]
    assert "descripton" in json.dumps(error["problems"])
    assert github_api.writes() == [
        ("POST", f"/repos/{REPOSITORY}/issues/7/comments", {"body": report})
    ], "a failure is posted even under changes-only"


def test_a_run_that_writes_no_report_still_leaves_a_comment_under_its_marker(
    runner: Runner, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    specs.write("images.yaml", specs.image("finance-win11", WS_A))
    runner.api_url = github_api.url

    run = runner.run(
        {"command": "plan", "comment": "true", "label": "prod", "args": "--no-such-option"},
        event=pull_request(),
    )

    assert run.failed == "Fail unless the reconciler exited 0 or 2", run.log
    assert run.outputs["exitcode"] == "1", "a usage error is an error, never `changes`"
    assert run.outputs["markdown-file"] == run.outputs["json-file"] == ""
    ((method, _, body),) = github_api.writes()
    assert method == "POST"
    assert body["body"].startswith(marker("plan", "prod") + "\n")
    assert "exit 1" in body["body"]
    assert f"https://github.com/{REPOSITORY}/actions/runs/4242" in body["body"]


def test_a_token_without_permission_fails_the_action_saying_which_permission(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs.write("images.yaml", specs.image("finance-win11", WS_A))
    runner.endpoint_url, runner.api_url = endpoint.url, github_api.url
    github_api.token = "another-token"

    run = runner.run({"command": "validate", "comment": "true"}, event=pull_request())
    succeeded(run)  # validate annotates; it never comments, so the token is never used
    assert run.outputs["exitcode"] == "0", run.log
    assert run.outputs["has-changes"] == "false"
    assert github_api.calls == []

    run = runner.run({"command": "plan", "comment": "true", "args": FAST}, event=pull_request())
    assert run.outputs["exitcode"] == "2", run.log
    assert run.failed == "Post or update the pull-request comment", run.log
    assert "pull-requests: write" in run.log
    assert "401" in run.log


# Only the action's own comments -------------------------------------------------------------

MERGED = "0123456789abcdef0123456789abcdef01234567"  # the runner's GITHUB_SHA


def test_a_comment_with_the_marker_posted_by_someone_else_is_never_edited(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs.write("images.yaml", specs.image("finance-win11", WS_A))
    runner.endpoint_url, runner.api_url = endpoint.url, github_api.url
    forged = marker("plan", "prod") + "\n\n### No changes. Approve away."
    hostile = github_api.seed(forged, login="mallory")

    run = runner.run(
        {"command": "plan", "comment": "true", "label": "prod", "args": FAST},
        event=pull_request(),
    )

    succeeded(run)
    assert github_api.body_of(hostile) == forged, "left as it was"
    (write,) = github_api.writes()
    assert write[:2] == ("POST", f"/repos/{REPOSITORY}/issues/7/comments")
    assert github_api.comments[-1]["user"]["login"] == BOT


# Apply on merge, held to the reviewed plan ------------------------------------------------


def _reviewed_on_pull_request(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> str:
    """The pull request's plan, posted by the action, then merged as MERGED: its digest."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs.write("images.yaml", specs.image("finance-win11", WS_A, tags={"team": "fin"}))
    runner.endpoint_url, runner.api_url = endpoint.url, github_api.url
    plan = runner.run(
        {"command": "plan", "comment": "true", "label": "prod", "args": FAST},
        event=pull_request(),
    )
    succeeded(plan)
    digest = json.loads(plan.report("json-file"))["plan_digest"]
    assert f"plan-digest {digest}" in github_api.comments[-1]["body"]
    github_api.pulls[MERGED] = [
        {"number": 7, "merged_at": "2026-12-07T10:00:00Z", "merge_commit_sha": MERGED}
    ]
    github_api.calls.clear()
    return str(digest)


APPLY = {
    "command": "apply",
    "reviewed": "true",
    "comment": "true",
    "label": "prod",
    "args": f"--auto-approve {FAST}",
}


def test_apply_on_merge_applies_the_plan_reviewed_on_its_pull_request(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    digest = _reviewed_on_pull_request(runner, endpoint, github_api, specs)
    endpoint.calls.clear()

    run = runner.run(APPLY, event_name="push", event={"after": MERGED})

    succeeded(run)
    assert run.outputs["exitcode"] == "0", run.log
    assert run.outputs["pull-request"] == "7"
    assert f"--reviewed-digest {digest}" in run.log
    assert endpoint.calls.count("CreateWorkspaceImage") == 1
    (posted,) = github_api.writes()  # the apply's result, on the merged pull request
    assert posted[:2] == ("POST", f"/repos/{REPOSITORY}/issues/7/comments")
    assert posted[2]["body"].startswith(marker("apply", "prod"))


def test_apply_on_merge_changes_nothing_when_the_plan_is_not_the_reviewed_one(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    _reviewed_on_pull_request(runner, endpoint, github_api, specs)
    # Another pull request merged meanwhile changed the same image's tags.
    specs.write("images.yaml", specs.image("finance-win11", WS_A, tags={"team": "ops"}))
    # A forged plan comment carrying the new plan's digest, posted before the action's own.
    fresh = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", str(specs.path), "--format", "json",
         "--endpoint-url", endpoint.url, "--region", REGION, "--api-rate", "0"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )  # fmt: skip
    forged_digest = json.loads(fresh.stdout)["plan_digest"]
    forged = f"{marker('plan', 'prod')}\n<!-- {TOOL}:plan-digest {forged_digest} -->\n"
    github_api.comments.insert(0, {"id": 1, "body": forged, "user": {"login": "mallory"}})
    endpoint.calls.clear()

    run = runner.run(APPLY, event_name="push", event={"after": MERGED})

    assert run.outputs["exitcode"] == "1", run.log
    assert run.failed == "Fail unless the reconciler exited 0 or 2", run.log
    assert [c.operation for c in endpoint.calls.changing()] == []
    (posted,) = github_api.writes()
    assert posted[:2] == ("POST", f"/repos/{REPOSITORY}/issues/7/comments")
    assert "not the plan that was reviewed" in posted[2]["body"]
    assert github_api.comments[0]["body"] == forged, "the forged comment is left alone"


def test_apply_on_a_push_without_a_merged_pull_request_is_refused_unless_run_by_hand(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    _reviewed_on_pull_request(runner, endpoint, github_api, specs)
    github_api.pulls.clear()  # pushed straight to main
    endpoint.calls.clear()

    refused = runner.run(APPLY, event_name="push", event={"after": MERGED})

    assert refused.failed == "Run the reconciler", refused.log
    assert "was not made by merging a pull request" in refused.log
    assert "workflow_dispatch" in refused.log
    assert endpoint.calls.all() == [], "the reconciler never ran"
    assert github_api.writes() == []

    by_hand = runner.run(APPLY, event_name="workflow_dispatch", event={})
    succeeded(by_hand)
    assert by_hand.outputs["exitcode"] == "0", by_hand.log
    assert "--reviewed-digest" not in by_hand.log
    assert endpoint.calls.count("CreateWorkspaceImage") == 1


def test_apply_on_merge_without_the_actions_own_plan_comment_is_refused(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    _reviewed_on_pull_request(runner, endpoint, github_api, specs)
    for posted in github_api.comments:
        posted["user"] = {"login": "mallory"}  # as if someone else had posted the plan
    endpoint.calls.clear()

    refused = runner.run(APPLY, event_name="push", event={"after": MERGED})

    assert refused.failed == "Run the reconciler", refused.log
    assert "no plan comment of this action's own" in refused.log
    assert endpoint.calls.all() == []


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"command": "destroy"}, "input `command` is 'destroy'"),
        ({"command": "plan", "comment": "yes"}, "input `comment` is 'yes'"),
        ({"command": "plan", "specs": " "}, "input `specs` is empty"),
        ({"command": "apply", "reviewed": "yes"}, "input `reviewed` is 'yes'"),
        ({"command": "drift", "issue": "on"}, "input `issue` is 'on'"),
    ],
)
def test_a_wrong_input_stops_the_action_before_anything_is_installed(
    runner: Runner, inputs: dict[str, str], named: str
) -> None:
    run = runner.run(inputs, event=pull_request())
    assert run.failed == "Check the inputs", run.log
    assert named in run.log
    assert "install" not in run.steps


def test_args_are_split_as_a_shell_would_but_never_run_by_one(
    runner: Runner, specs: SpecsDir
) -> None:
    specs.write("images.yaml", specs.image("finance-win11", WS_A))
    proof = runner.workspace / "pwned"
    run = runner.run(
        {"command": "validate", "args": f"--format json; touch {proof} $(touch {proof})"},
        event=pull_request(),
    )
    assert run.outputs["exitcode"] == "1", run.log  # the extra words are unknown arguments
    assert not proof.exists()
    run = runner.run({"command": "validate", "args": "--format 'json"}, event=pull_request())
    assert run.failed == "Run the reconciler", run.log
    assert "input `args` can't be split" in run.log


def sarif_results(run: ActionRun) -> list[tuple[str, str, str]]:
    document = json.loads(run.report("sarif-file"))
    assert document["version"] == "2.1.0"
    return [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        )
        for r in document["runs"][0]["results"]
    ]


def test_validate_writes_sarif_for_code_scanning_also_when_it_fails(
    runner: Runner, specs: SpecsDir
) -> None:
    specs.write(
        "finance/images.yaml",
        "name: x\ndescripton: oops\nsource_workspace_id: ws-0a1b2c3d4\ntags:\n  team: yes\n",
    )

    failed = runner.run({"command": "validate"}, event=pull_request())

    assert failed.failed == "Fail unless the reconciler exited 0 or 2", failed.log
    assert failed.outputs["exitcode"] == "1"
    assert failed.outputs["sarif-file"].startswith(str(runner.runner_temp))
    assert sarif_results(failed) == [
        ("unknown-field", "error", "specs/finance/images.yaml"),
        ("wrong-type", "error", "specs/finance/images.yaml"),
    ]
    assert "::error file=specs/finance/images.yaml,line=2," in failed.log, "annotated too"

    specs.write("finance/images.yaml", specs.image("finance-win11", WS_A))
    valid = runner.run({"command": "validate"}, event=pull_request())
    succeeded(valid)
    assert sarif_results(valid) == [], "no result: code scanning closes the fixed alerts"


def test_only_validate_has_a_sarif_file(runner: Runner, specs: SpecsDir) -> None:
    specs.write("images.yaml", specs.image("finance-win11", WS_A))
    run = runner.run({"command": "plan", "args": "--no-such-option"}, event=pull_request())
    assert run.outputs["exitcode"] == "1", run.log
    assert run.outputs["sarif-file"] == ""


# The action's definition, read -------------------------------------------------------------


def test_the_action_has_the_documented_inputs_and_outputs() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert set(ACTION["inputs"]) == {
        "command", "specs", "args", "comment", "label", "issue", "reviewed",
        "python-version", "github-token",
    }  # fmt: skip
    assert ACTION["inputs"]["issue"]["default"] == "false"
    assert ACTION["inputs"]["reviewed"]["default"] == "false"
    assert ACTION["inputs"]["specs"]["default"] == "specs"
    assert ACTION["inputs"]["comment"]["default"] in ("true", "changes-only", "false")
    assert ACTION["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert set(ACTION["outputs"]) == {
        "exitcode", "has-changes", "drifted", "markdown-file", "json-file", "pull-request",
        "sarif-file",
    }  # fmt: skip


def test_inputs_reach_scripts_only_through_env() -> None:
    for step in ACTION["runs"]["steps"]:
        if "run" in step:
            assert "${{" not in step["run"], step["name"]


def test_steps_refer_only_to_earlier_steps() -> None:
    seen: set[str] = set()
    for step in ACTION["runs"]["steps"]:
        text = json.dumps({k: v for k, v in step.items() if k != "id"})
        for used in re.findall(r"steps\.([\w-]+)\.outputs", text):
            assert used in seen, f"{step['name']} uses steps.{used} before it runs"
        seen.add(step.get("id", ""))
    for spec in ACTION["outputs"].values():
        (used,) = re.findall(r"steps\.([\w-]+)\.outputs", spec["value"])
        assert used in seen


def _steps_and_jobs(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if "runs" in document:
        yield from document["runs"].get("steps", [])
    for job in (document.get("jobs") or {}).values():
        yield job  # a reusable workflow's `uses:` sits on the job
        yield from job.get("steps", [])


def _definitions() -> list[Path]:
    return [ACTION_FILE, *WORKFLOWS]


@pytest.mark.parametrize("path", _definitions(), ids=lambda p: p.name)
def test_every_uses_is_pinned_to_a_full_commit_sha(path: Path) -> None:
    for item in _steps_and_jobs(load(path)):
        uses = item.get("uses")
        if uses is None or uses == "./" or uses.startswith("./"):
            continue
        assert SHA_PINNED.match(uses), f"{path.name}: `uses: {uses}` is not pinned to a SHA"


# `pip install name==1.2.3` (or pipx/uv) from an index: a version that may not exist there.
PINNED_INSTALL = re.compile(
    r"\b(pip3?|pipx|uv)\b[^\n]*\binstall\b[^\n]*?['\"]?[A-Za-z0-9][\w.\-\[\],]*\s*===?\s*\d"
)


@pytest.mark.parametrize("path", _definitions(), ids=lambda p: p.name)
def test_nothing_installs_a_pinned_version_from_a_package_index(path: Path) -> None:
    for item in _steps_and_jobs(load(path)):
        script = str(item.get("run", ""))
        assert not PINNED_INSTALL.search(script), f"{path.name}: {script}"


def test_the_pinned_install_check_catches_the_old_templates() -> None:
    assert PINNED_INSTALL.search("python -m pip install 'workspaces-image-reconciler==0.1.0'")
    assert PINNED_INSTALL.search("pipx install workspaces-image-reconciler==0.2.0")
    assert not PINNED_INSTALL.search("python -m pip install -q -e '.[dev]'")


TEMPLATES = ("plan.yml", "apply.yml", "drift.yml", "apply-matrix.yml")
RELEASE_PIN = re.compile(r"uses: [\w.-]+/workspaces-image-reconciler@[0-9a-f]{40} # .*release")


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_templates_use_the_action_pinned_to_a_release(name: str) -> None:
    text = (ROOT / ".github/workflows" / name).read_text(encoding="utf-8")
    assert RELEASE_PIN.search(text), f"{name}: uses the action, pinned to a release's SHA"
    assert "pip install" not in text


def _template_jobs(name: str) -> dict[str, Mapping[str, Any]]:
    return dict(load(ROOT / ".github/workflows" / name)["jobs"])


def _reconciler_step(job: Mapping[str, Any]) -> Mapping[str, Any]:
    (step,) = [s for s in job["steps"] if "workspaces-image-reconciler@" in s.get("uses", "")]
    return step


def _aws_jobs() -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for name in TEMPLATES:
        for job_name, job in _template_jobs(name).items():
            if any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"]):
                yield name, job_name, job


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_template_job_is_skipped_on_a_variable_it_cannot_see(name: str) -> None:
    # A job-level `if:` can't see an environment's variables: such a job is skipped, and
    # shows as if nothing were wrong, wherever the variable lives in the environment.
    for job_name, job in _template_jobs(name).items():
        assert "vars." not in str(job.get("if", "")), f"{name}: {job_name}"


def test_a_job_without_its_role_and_region_fails_saying_so() -> None:
    jobs = list(_aws_jobs())
    assert {n for n, _, _ in jobs} == set(TEMPLATES)
    for name, job_name, job in jobs:
        check = job["steps"][0]
        assert check["name"] == "Check the configuration", f"{name}: {job_name}"
        role = "arn:aws:iam::111122223333:role/r"
        cases = [({"ROLE": "", "REGION": "eu-west-1"}, 1), ({"ROLE": role, "REGION": ""}, 1)]
        for env, code in [*cases, ({"ROLE": role, "REGION": "eu-west-1"}, 0)]:
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", check["run"]],
                env={**os.environ, **env}, capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert done.returncode == code, (name, job_name, env, done.stdout)
            assert ("::error::" in done.stdout) == (code == 1)


def test_apply_and_drift_jobs_share_one_concurrency_group_per_label() -> None:
    for name, job_name, job in _aws_jobs():
        if name == "plan.yml":
            continue
        label = _reconciler_step(job)["with"]["label"]
        group = job["concurrency"]["group"]
        assert group == f"workspaces-image-reconciler-{label}" or (
            label == "${{ matrix.group }}"
            and group == "workspaces-image-reconciler-${{ matrix.group }}"
        ), (name, job_name, group, label)
        assert job["concurrency"]["cancel-in-progress"] is False


def test_apply_jobs_apply_the_reviewed_plan_and_finish_the_rollout_within_the_job() -> None:
    applies = [(n, j, job) for n, j, job in _aws_jobs() if n.startswith("apply")]
    assert len(applies) == 3
    for name, job_name, job in applies:
        step = _reconciler_step(job)["with"]
        assert (step["command"], step["reviewed"], step["comment"]) == ("apply", "true", "true")
        args = step["args"].split()
        assert "--wait" in args, (name, job_name)
        wait = float(args[args.index("--wait-timeout") + 1])
        assert 3 * 3600 <= wait < job["timeout-minutes"] * 60, "the reconciler stops first"
        assert job["permissions"]["pull-requests"] == "write"
        (creds,) = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
        assert int(creds["with"]["role-duration-seconds"]) >= job["timeout-minutes"] * 60


def test_the_plan_template_validates_forks_without_secrets_and_plans_each_apply_label() -> None:
    jobs = _template_jobs("plan.yml")
    validate, plan = jobs["validate"], jobs["plan"]
    assert "if" not in validate, "every pull request, forks included"
    assert "id-token" not in validate["permissions"]
    assert "${{ secrets." not in str(validate)
    assert "${{ vars." not in str(validate)
    assert _reconciler_step(validate)["with"]["command"] == "validate"
    assert plan["needs"] == "validate"
    assert plan["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    labels = {e["label"] for e in plan["strategy"]["matrix"]["include"]}
    apply = _reconciler_step(_template_jobs("apply.yml")["apply"])["with"]["label"]
    assert apply in labels, "apply.yml finds the plan comment of its own label"
    assert _reconciler_step(plan)["with"]["label"] == "${{ matrix.label }}"


UPLOAD_SARIF = "github/codeql-action/upload-sarif"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_a_workflow_that_validates_uploads_the_sarif_even_when_validate_fails(
    path: Path,
) -> None:
    workflow = load(path)
    assert "security-events" not in (workflow.get("permissions") or {}), "the job's alone"
    for job in workflow["jobs"].values():
        steps = job.get("steps", [])
        validating = [
            s for s in steps if _is_our_action(s) and s.get("with", {}).get("command") == "validate"
        ]
        uploads = [s for s in steps if str(s.get("uses", "")).startswith(UPLOAD_SARIF + "@")]
        assert len(uploads) == len(validating), f"{path.name}: one upload per validate"
        for validate, upload in zip(validating, uploads, strict=True):
            assert steps.index(upload) > steps.index(validate)
            output = f"steps.{validate['id']}.outputs.sarif-file"
            assert re.fullmatch(
                rf"\$\{{\{{ {re.escape(output)} \}}\}}", upload["with"]["sarif_file"]
            )
            condition = upload["if"]
            assert "always()" in condition or "!cancelled()" in condition, "runs when it fails"
            assert output in condition, "skipped when validate wrote no file"
        permissions = job.get("permissions") or {}
        wanted = "write" if uploads else None
        assert permissions.get("security-events") == wanted, f"{path.name}: least privilege"


def _is_our_action(step: Mapping[str, Any]) -> bool:
    uses = str(step.get("uses", ""))
    return uses == "./" or uses.split("@")[0].endswith("/workspaces-image-reconciler")


def test_ci_uploads_the_sarif_of_its_validate() -> None:
    ci = load(ROOT / ".github/workflows/ci.yml")
    uploads = [
        s
        for job in ci["jobs"].values()
        for s in job.get("steps", [])
        if str(s.get("uses", "")).startswith(UPLOAD_SARIF + "@")
    ]
    assert len(uploads) == 1
    assert SHA_PINNED.match(uploads[0]["uses"])


def test_ci_runs_the_action_from_this_checkout() -> None:
    ci = load(ROOT / ".github/workflows/ci.yml")
    steps = [s for job in ci["jobs"].values() for s in job.get("steps", [])]
    commands = {s["with"]["command"] for s in steps if s.get("uses") == "./"}
    assert commands == {"validate", "plan", "apply", "drift"}


# The drift issue (issue: true) -----------------------------------------------------------


def _drift(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir, team: str
) -> ActionRun:
    """A scheduled drift run of label finance/eu-west-1: the image's live team is
    `marketing`; the spec says `team`."""
    if not endpoint.fidelity.images(REGION):
        tags = {**OWN, "team": "marketing"}
        endpoint.fidelity.add_image(
            REGION, "finance-win11", description="Image finance-win11", tags=tags
        )
    specs.write("images.yaml", specs.image("finance-win11", WS_A, tags={"team": team}))
    runner.endpoint_url, runner.api_url = endpoint.url, github_api.url
    inputs = {"command": "drift", "issue": "true", "label": "finance/eu-west-1", "args": FAST}
    return runner.run(inputs, event_name="schedule", event={"schedule": "17 6 * * *"})


def test_drift_opens_then_updates_then_closes_only_its_own_issue(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    label = "finance/eu-west-1"
    # Someone else's issue with this label's marker, and another label's issue of ours.
    forged_body = marker("drift", label) + "\n\n### In sync, nothing to see"
    forged = github_api.open_issue(forged_body, "mallory")
    other = github_api.open_issue(marker("drift", "engineering/us-east-1") + "\n", BOT)

    opened = _drift(runner, endpoint, github_api, specs, team="finance")
    succeeded(opened)
    assert opened.outputs["drifted"] == "true", opened.log
    mine = github_api.issues[-1]
    assert mine["user"]["login"] == BOT
    assert mine["title"] == f"WorkSpaces images drifted from specs ({label})"
    assert mine["body"] == opened.report("markdown-file")
    assert [n["name"] for n in mine["labels"]] == ["drift"]
    assert github_api.issue(forged)["body"] == forged_body, "never edited"

    github_api.calls.clear()
    again = _drift(runner, endpoint, github_api, specs, team="finance")
    succeeded(again)
    issue_writes = [w for w in github_api.writes() if "/issues" in w[1]]
    assert issue_writes == [
        (
            "PATCH",
            f"/repos/{REPOSITORY}/issues/{mine['number']}",
            {"body": again.report("markdown-file")},
        )
    ]

    in_sync = _drift(runner, endpoint, github_api, specs, team="marketing")
    succeeded(in_sync)
    assert in_sync.outputs["exitcode"] == "0", in_sync.log
    assert github_api.issue(mine["number"])["state"] == "closed"
    assert "Back in sync" in github_api.comments[-1]["body"]
    assert github_api.issue(forged)["state"] == "open", "someone else's issue stays open"
    assert github_api.issue(other)["state"] == "open", "another label's issue stays open"


@pytest.mark.parametrize("impostor", ["mallory", "github-actions"])
def test_drift_never_closes_an_issue_someone_else_opened_under_its_marker(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir, impostor: str
) -> None:
    # `github-actions` without `[bot]` is a person's login, not the app's.
    forged = github_api.open_issue(marker("drift", "finance/eu-west-1") + "\n", impostor)
    run = _drift(runner, endpoint, github_api, specs, team="marketing")
    succeeded(run)
    assert run.outputs["exitcode"] == "0", run.log
    assert github_api.issue(forged)["state"] == "open"
    assert [w for w in github_api.writes() if "/issues" in w[1]] == []


def test_a_failed_drift_run_opens_and_closes_nothing(
    runner: Runner, endpoint: LocalEndpoint, github_api: FakeGitHub, specs: SpecsDir
) -> None:
    mine = github_api.open_issue(marker("drift", "finance/eu-west-1") + "\n", BOT)
    specs.write("images.yaml", "name: typo\ndescripton: oops\nsource_workspace_id: ws-0a1b2c3d4\n")
    runner.endpoint_url, runner.api_url = endpoint.url, github_api.url
    inputs = {"command": "drift", "issue": "true", "label": "finance/eu-west-1", "args": FAST}
    run = runner.run(inputs, event_name="schedule", event={})
    assert run.outputs["exitcode"] == "1", run.log
    assert run.failed == "Open, update or close this label's drift issue", run.log
    assert "no drift issue was opened or closed" in run.log
    assert github_api.writes() == []
    assert github_api.issue(mine)["state"] == "open"


def test_the_drift_template_has_the_action_keep_its_issue() -> None:
    workflow = load(ROOT / ".github/workflows/drift.yml")
    (job,) = workflow["jobs"].values()
    (drift,) = [s for s in job["steps"] if s.get("id") == "drift"]
    assert drift["with"]["command"] == "drift"
    assert drift["with"]["issue"] == "true"
    assert drift["with"]["label"] == "${{ matrix.label }}"
    assert job["permissions"]["issues"] == "write"
    scripts = [s["name"] for s in job["steps"] if "run" in s]
    assert scripts == ["Check the configuration"], "the issue is the action's, no script's"


# The local endpoint that CI's action job starts -------------------------------------------


def test_the_ci_endpoint_script_serves_the_example_specs_sources(tmp_path: Path) -> None:
    url_file = tmp_path / "endpoint.url"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(ROOT)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / ".ci/local-endpoint.py"), "specs", str(url_file), "120"],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not url_file.exists() or not url_file.read_text().strip():
            assert server.poll() is None, "the endpoint script stopped"
            assert time.monotonic() < deadline, "no URL after 60 s"
            time.sleep(0.1)
        env.update(
            AWS_ENDPOINT_URL=url_file.read_text().strip(),
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            NO_PROXY="127.0.0.1,localhost",
        )
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "reconciler",
                "plan",
                "specs",
                "--format",
                "json",
                "--api-rate",
                "0",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        actions = {i["action"] for i in json.loads(done.stdout)["items"]}
        # Nothing blocked: every source WorkSpace the specs name is there (the example
        # specs' image shared with an account is an update-sharing after its capture).
        assert actions == {"create", "update-sharing"}, done.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
