"""The steps of the GitHub Action (action.yml): prepare, install, run, comment, verdict.

Each step of action.yml runs ``python reconciler_action.py <step>`` with the action's inputs
in environment variables (never interpolated into a script), and writes its outputs to
GITHUB_OUTPUT. Only the standard library is used, on Python 3.10 or newer: the steps run on
the interpreter that actions/setup-python provides, before (prepare, install) and beside
(run, comment, verdict) the reconciler's own virtual environment.

Messages use the runner's workflow commands (``::error::``), so that a wrong input shows up
on the run's summary page and not only in the log.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

COMMANDS = ("validate", "plan", "apply", "drift")
COMMENT_MODES = ("true", "changes-only", "false")
# plan/apply with --detailed-exitcode and drift: 2 means changes, work left or drift.
CHANGES = 2
MARKER = re.compile(r"<!-- workspaces-image-reconciler:[^\n]*? -->")
LOCK = Path("action") / "requirements.lock"
TOOL = "workspaces-image-reconciler"
MAX_PAGES = 50  # 5,000 comments: far more than a pull request has; bounds a broken Link chain


class ActionError(Exception):
    """A wrong input or a failed step: printed as one ::error:: line, exit 1."""


# Inputs and outputs -----------------------------------------------------------------------


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ActionError(f"{name} is not set; this script runs as a step of action.yml")
    return value


def choice(name: str, allowed: tuple[str, ...]) -> str:
    """An input (INPUT_<NAME>) that must be one of ``allowed``."""
    value = env(f"INPUT_{name.upper().replace('-', '_')}").strip()
    if value not in allowed:
        raise ActionError(
            f"input `{name}` is {value!r}; use one of: {', '.join(allowed)}",
        )
    return value


def set_output(name: str, value: str) -> None:
    # The multi-line form with a random delimiter: a value can never forge another output.
    delimiter = f"ghadelimiter_{uuid.uuid4()}"
    with open(env("GITHUB_OUTPUT"), "a", encoding="utf-8") as out:
        out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def command_data(text: str) -> str:
    """Text made safe for a workflow command: a newline in a value can't start another."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def notice(text: str) -> None:
    print(f"::notice title={TOOL}::{command_data(text)}", flush=True)


def action_path() -> Path:
    return Path(env("GITHUB_ACTION_PATH"))


def state_dir() -> Path:
    """Where the action keeps its environment, pip cache and reports: the runner's temp
    folder, which the runner empties after each job."""
    return Path(env("RUNNER_TEMP")) / TOOL


# prepare ----------------------------------------------------------------------------------


def prepare() -> None:
    """Check the inputs before installing anything; name the pip cache and its key."""
    choice("command", COMMANDS)
    choice("comment", COMMENT_MODES)
    choice("reviewed", ("true", "false"))
    choice("issue", ("true", "false"))
    if not env("INPUT_SPECS").strip():
        raise ActionError("input `specs` is empty; give the specs folder, e.g. `specs`")
    version = ".".join(str(n) for n in sys.version_info[:3])
    # hashFiles() only sees files under GITHUB_WORKSPACE, not the action's own: hash here.
    lock = hashlib.sha256((action_path() / LOCK).read_bytes()).hexdigest()
    set_output("pip-cache", str(state_dir() / "pip-cache"))
    set_output("cache-key", f"python{version}-{lock[:32]}")


# install ----------------------------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install() -> None:
    """A virtual environment of the action's own: the locked dependencies (hashes
    required), then the reconciler from the action's files. The caller's Python and its
    packages stay as they were. A second use of the action in the same job reuses it."""
    python, source = sys.executable, action_path()
    lock = source / LOCK
    key = hashlib.sha256(
        b"\0".join([lock.read_bytes(), str(source).encode(), python.encode()])
    ).hexdigest()[:16]
    venv = state_dir() / f"venv-{key}"
    done = venv / ".installed"
    if not done.is_file():
        pip = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
        steps = [
            [python, "-m", "venv", "--clear", str(venv)],
            [*pip, "--require-hashes", "--no-deps", "-r", str(lock)],
            # The build backend comes from the lock too: nothing unhashed is fetched.
            [*pip, "--no-deps", "--no-build-isolation", str(source)],
            [str(venv_python(venv)), "-m", "pip", "check"],
        ]
        for argv in steps:
            print("$", shlex.join(argv), flush=True)
            if subprocess.run(argv, check=False).returncode != 0:
                raise ActionError(f"installing the reconciler failed at: {shlex.join(argv)}")
        done.write_text(key, encoding="utf-8")
    set_output("python", str(venv_python(venv)))


# run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    command: str
    argv: list[str]
    markdown: Path | None
    json: Path | None
    sarif: Path | None = None


def extra_args() -> list[str]:
    text = env("INPUT_ARGS", "")
    try:
        return shlex.split(text)
    except ValueError as err:
        raise ActionError(f"input `args` can't be split into options ({err}): {text!r}") from err


DIGEST_LINE = re.compile(rf"<!-- {TOOL}:plan-digest (sha256:[0-9a-f]{{64}}) -->")


def reviewed_digest(label: str) -> tuple[list[str], int | None]:
    """For apply with `reviewed: true`: `--reviewed-digest D`, D from the plan comment of
    the merged pull request of this commit with the same label, and that pull request's
    number. A run started by hand (workflow_dispatch) applies after a new review of its
    own: no digest. Raises ActionError, before the reconciler runs, when there is no
    merged pull request or no plan comment of the action's own on it."""
    event = env("GITHUB_EVENT_NAME", "")
    if event == "workflow_dispatch":
        notice(
            "started by hand (workflow_dispatch): applied as planned now, not held to a "
            "pull request's reviewed plan"
        )
        return [], None
    token = env("GITHUB_TOKEN", "")
    if not token:
        raise ActionError(
            "input `github-token` is empty; `reviewed: true` reads the plan "
            "comment of the merged pull request with it"
        )
    sha = env("GITHUB_SHA")
    github = GitHub(
        env("GITHUB_API_URL", "https://api.github.com"), token, env("GITHUB_REPOSITORY")
    )
    number = github.merged_pull_request(sha)
    if number is None:
        raise ActionError(
            f"commit {sha[:12]} was not made by merging a pull request, so no plan was "
            "reviewed for it; nothing was applied. Merge through a pull request, or run the "
            "workflow by hand (workflow_dispatch) after reviewing `reconciler plan`"
        )
    suffix = f":{label}" if label else ""
    marker = f"<!-- {TOOL}:plan{suffix} -->"
    found = own_comment(github, number, marker)
    lines = (found.get("body") or "").replace("\r", "").split("\n") if found else []
    digest = DIGEST_LINE.fullmatch(lines[1]) if len(lines) > 1 else None
    if digest is None:
        raise ActionError(
            f"pull request #{number} has no plan comment of this action's own for label "
            f"{label or '(none)'} carrying a plan digest, so there is no reviewed plan to "
            "hold the apply to; nothing was applied. Run the plan workflow on the pull "
            "request (same label), or run this workflow by hand after reviewing a plan"
        )
    print(f"Holding the apply to the plan reviewed on #{number}: {digest.group(1)}", flush=True)
    return ["--reviewed-digest", digest.group(1)], number


def invocation(python: str, reports: Path) -> Invocation:
    command = choice("command", COMMANDS)
    specs, label, args = env("INPUT_SPECS").strip(), env("INPUT_LABEL", "").strip(), extra_args()
    argv = [python, "-m", "reconciler", command, specs]
    if command == "validate":
        if not any(a == "--format" or a.startswith("--format=") for a in args):
            argv += ["--format", "github"]  # annotations on the spec lines
        # For github/codeql-action/upload-sarif; written when validate fails too.
        sarif = reports / "validate.sarif"
        return Invocation(command, [*argv, "--sarif-file", str(sarif), *args], None, None, sarif)
    markdown, document = reports / f"{command}.md", reports / f"{command}.json"
    argv += ["--markdown-file", str(markdown), "--json-file", str(document)]
    if label:
        argv += ["--label", label]
    if command in ("plan", "apply"):
        argv.append("--detailed-exitcode")  # drift exits 2 on drift without asking
    return Invocation(command, argv + args, markdown, document)


def run_forwarding_signals(argv: list[str]) -> int:
    """Run the reconciler; a cancelled job's SIGINT/SIGTERM reaches it, so that it stops
    cleanly (no new calls, its summary printed, exit 130) instead of being orphaned."""
    child = subprocess.Popen(argv)

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says


def run() -> None:
    """Run the reconciler and record its outcome. The step itself succeeds whatever the
    exit code, so that the comment step still reports a failed run; `verdict` fails the
    action afterwards."""
    python = env("RECONCILER_PYTHON")
    state_dir().mkdir(parents=True, exist_ok=True)
    reports = Path(tempfile.mkdtemp(prefix="reports-", dir=state_dir()))
    call = invocation(python, reports)
    pull = None
    if call.command == "apply" and choice("reviewed", ("true", "false")) == "true":
        held, pull = reviewed_digest(env("INPUT_LABEL", "").strip())
        call.argv.extend(held)
    set_output("pull-request", str(pull or ""))
    print("$", shlex.join(["reconciler", *call.argv[3:]]), flush=True)
    code = run_forwarding_signals(call.argv)
    set_output("exitcode", str(code))
    set_output("has-changes", str(code == CHANGES and call.command != "validate").lower())
    set_output("drifted", str(code == CHANGES and call.command == "drift").lower())
    for name, path in (
        ("markdown-file", call.markdown),
        ("json-file", call.json),
        ("sarif-file", call.sarif),
    ):
        set_output(name, str(path) if path is not None and path.is_file() else "")


# comment ----------------------------------------------------------------------------------


class GitHub:
    """The few REST calls of a sticky pull-request comment, with urllib."""

    def __init__(self, api_url: str, token: str, repository: str) -> None:
        self.api_url, self.token, self.repository = api_url.rstrip("/"), token, repository

    def request(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.request_with_headers(method, url, body)[0]

    def request_with_headers(
        self, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> tuple[Any, Mapping[str, str]]:
        if not url.startswith(("http://", "https://")):
            url = f"{self.api_url}/{url.lstrip('/')}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", TOOL)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
                payload = reply.read()
                headers = dict(reply.headers.items())
        except urllib.error.HTTPError as err:
            raise ActionError(self._refusal(method, url, err)) from err
        except OSError as err:
            raise ActionError(f"GitHub's API at {self.api_url} can't be reached: {err}") from err
        return (json.loads(payload) if payload else None), headers

    @staticmethod
    def _refusal(method: str, url: str, err: urllib.error.HTTPError) -> str:
        try:
            reason = json.loads(err.read() or b"{}").get("message") or err.reason
        except ValueError:
            reason = err.reason
        text = f"GitHub answered {err.code} ({reason}) to {method} {url}"
        if err.code in (401, 403, 404):
            text += (
                "; the `github-token` must be allowed to do this: give the job "
                "`permissions: pull-requests: write` (comments) or `issues: write` (the "
                "drift issue)"
            )
        return text

    def identity(self) -> str:
        """The login the token acts as, as REST names the author of what it posts: /user for
        a person's token; GraphQL's viewer for an app's installation token, which /user
        refuses (the job's GITHUB_TOKEN posts as `github-actions[bot]`). GraphQL may name a
        bot without the `[bot]` REST adds, so a Bot gets it here; no person's login can hold
        brackets, so nobody else's comment can pass for the app's."""
        try:
            return str(self.request("GET", "user")["login"])
        except ActionError:
            pass
        query = {"query": "query { viewer { login __typename } }"}
        viewer = ((self.request("POST", "graphql", query) or {}).get("data") or {}).get("viewer")
        login = str((viewer or {}).get("login") or "")
        if not login:
            raise ActionError(
                "GitHub did not say which account the `github-token` acts as (GET /user and "
                "GraphQL's viewer both failed), so the action can't tell its own comments "
                "from anyone else's; nothing was posted"
            )
        if (viewer or {}).get("__typename") == "Bot" and not login.endswith("[bot]"):
            login += "[bot]"
        return login

    def merged_pull_request(self, sha: str) -> int | None:
        """The pull request whose merge made commit `sha`, if one did."""
        url = f"repos/{self.repository}/commits/{sha}/pulls"
        for pull in self.request("GET", url) or []:
            if pull.get("merged_at") and pull.get("merge_commit_sha") == sha:
                return int(pull["number"])
        return None

    def comments(self, number: int) -> Iterator[dict[str, Any]]:
        url: str | None = f"repos/{self.repository}/issues/{number}/comments?per_page=100"
        for _ in range(MAX_PAGES):
            if url is None:
                return
            page, headers = self.request_with_headers("GET", url)
            yield from page
            url = next_link(headers.get("Link") or headers.get("link") or "")

    def create(self, number: int, body: str) -> int:
        url = f"repos/{self.repository}/issues/{number}/comments"
        return int(self.request("POST", url, {"body": body})["id"])

    def update(self, comment_id: int, body: str) -> None:
        url = f"repos/{self.repository}/issues/comments/{comment_id}"
        self.request("PATCH", url, {"body": body})


def next_link(header: str) -> str | None:
    for part in header.split(","):
        found = re.match(r'\s*<([^>]+)>\s*;\s*rel="next"', part)
        if found:
            return found.group(1)
    return None


def first_line(text: str) -> str:
    # Bodies edited on github.com come back with CRLF line ends.
    return text.split("\n", 1)[0].rstrip("\r").strip()


def run_url() -> str:
    server = env("GITHUB_SERVER_URL", "https://github.com")
    return f"{server}/{env('GITHUB_REPOSITORY')}/actions/runs/{env('GITHUB_RUN_ID', '0')}"


def report(command: str, label: str, code: int) -> tuple[str, str]:
    """The comment's body and its marker: the reconciler's Markdown report (which starts
    with its marker), or, when the run wrote none (it stopped before it could), a short
    failure note under the marker the report would have had."""
    path = env("MARKDOWN_FILE", "")
    text = Path(path).read_text(encoding="utf-8") if path and Path(path).is_file() else ""
    found = MARKER.match(first_line(text)) if text else None
    if found:
        return text, found.group(0)
    # Only characters that can't close the HTML comment or break the line.
    suffix = f":{re.sub(r'[^A-Za-z0-9_./@+=:-]', '_', label)}" if label else ""
    marker = f"<!-- {TOOL}:{command}{suffix} -->"
    body = (
        f"{marker}\n\n### ❌ `reconciler {command}` failed (exit {code})\n\n"
        f"It wrote no report; the reason is in the [job log]({run_url()}).\n"
    )
    return body, marker


def pull_request_number() -> int | None:
    path = env("GITHUB_EVENT_PATH", "")
    if not path or not Path(path).is_file():
        return None
    event = json.loads(Path(path).read_text(encoding="utf-8"))
    number = (event.get("pull_request") or {}).get("number")
    return int(number) if number is not None else None


def own_comment(github: GitHub, number: int, marker: str) -> dict[str, Any] | None:
    """The pull request's comment under `marker` that the token's own account posted. A
    comment carrying the marker posted by anyone else is never edited nor read: anyone who
    can comment could otherwise forge a plan, or its digest."""
    me = github.identity()
    return next(
        (
            c
            for c in github.comments(number)
            if first_line(c.get("body") or "") == marker
            and (c.get("user") or {}).get("login") == me
        ),
        None,
    )


def comment() -> None:
    """Post the report as the pull request's one sticky comment for this command and
    label, or edit it. `changes-only`: a run with nothing to change posts no new comment,
    but edits an earlier one, so that the pull request never shows changes that are gone."""
    mode, command = choice("comment", COMMENT_MODES), choice("command", COMMANDS)
    if mode == "false":
        return
    if command == "validate":
        notice("`comment` applies to plan, apply and drift; validate annotates the specs instead")
        return
    number = pull_request_number() or (int(env("PULL_REQUEST", "0") or 0) or None)
    if number is None:
        event = env("GITHUB_EVENT_NAME", "?")
        notice(f"no comment: this run is for a `{event}` event, not a pull request")
        return
    token = env("GITHUB_TOKEN", "")
    if not token:
        raise ActionError("input `github-token` is empty; the comment needs a token")
    code = int(env("EXITCODE"))
    body, marker = report(command, env("INPUT_LABEL", "").strip(), code)
    api = env("GITHUB_API_URL", "https://api.github.com")
    github = GitHub(api, token, env("GITHUB_REPOSITORY"))
    mine = own_comment(github, number, marker)
    if mine is not None:
        github.update(int(mine["id"]), body)
        print(f"Updated the comment {mine.get('html_url') or mine['id']} on #{number}.")
    elif mode == "changes-only" and code == 0:
        print(f"No changes: no comment posted on #{number} (comment: changes-only).")
    else:
        made = github.create(number, body)
        print(f"Posted comment {made} on #{number}.")


# issue ------------------------------------------------------------------------------------

DRIFT_LABEL = "drift"


def own_open_issue(github: GitHub, marker: str) -> dict[str, Any] | None:
    """The open `drift` issue under `marker` that the token's own account opened; one
    carrying the marker opened by anyone else is never edited nor closed."""
    me = github.identity()
    url: str | None = (
        f"repos/{github.repository}/issues?state=open&labels={DRIFT_LABEL}&per_page=100"
    )
    for _ in range(MAX_PAGES):
        if url is None:
            return None
        page, headers = github.request_with_headers("GET", url)
        for found in page:
            if (
                "pull_request" not in found
                and (found.get("user") or {}).get("login") == me
                and first_line(found.get("body") or "") == marker
            ):
                return dict(found)
        url = next_link(headers.get("Link") or headers.get("link") or "")
    return None


def issue() -> None:
    """drift with `issue: true`: on drift (exit 2) open this label's drift issue with the
    report, or update its own open one; back in sync (exit 0) close it. Any other exit code
    (an error, an interruption) opens and closes nothing, and fails."""
    if choice("issue", ("true", "false")) == "false":
        return
    command = choice("command", COMMANDS)
    if command != "drift":
        notice("`issue` applies to drift only; nothing was opened or closed")
        return
    code = env("EXITCODE", "")
    if code not in ("0", str(CHANGES)):
        raise ActionError(
            f"reconciler drift exited {code or '(no code)'}; no drift issue was opened or closed"
        )
    path = env("MARKDOWN_FILE", "")
    text = Path(path).read_text(encoding="utf-8") if path and Path(path).is_file() else ""
    marker = first_line(text)
    if not text.strip() or not marker.startswith(f"<!-- {TOOL}:drift"):
        raise ActionError(
            "the drift report is missing or has no marker; no drift issue was opened or closed"
        )
    token = env("GITHUB_TOKEN", "")
    if not token:
        raise ActionError(
            "input `github-token` is empty; the drift issue needs a token "
            "(`permissions: issues: write`)"
        )
    github = GitHub(
        env("GITHUB_API_URL", "https://api.github.com"), token, env("GITHUB_REPOSITORY")
    )
    mine = own_open_issue(github, marker)
    issues = f"repos/{github.repository}/issues"
    if code == str(CHANGES):
        if mine is not None:
            github.request("PATCH", f"{issues}/{mine['number']}", {"body": text})
            print(f"Updated drift issue #{mine['number']}.")
            return
        ensure_label(github)
        label = env("INPUT_LABEL", "").strip()
        title = "WorkSpaces images drifted from specs" + (f" ({label})" if label else "")
        made = github.request(
            "POST", issues, {"title": title, "body": text, "labels": [DRIFT_LABEL]}
        )
        print(f"Opened drift issue #{made['number']}.")
    elif mine is not None:
        github.request(
            "POST",
            f"{issues}/{mine['number']}/comments",
            {"body": f"Back in sync: `reconciler drift` exited 0 in {run_url()}."},
        )
        github.request("PATCH", f"{issues}/{mine['number']}", {"state": "closed"})
        print(f"Closed drift issue #{mine['number']}: back in sync.")


def ensure_label(github: GitHub) -> None:
    """The `drift` label, made once; 422 means it is there already."""
    try:
        github.request(
            "POST",
            f"repos/{github.repository}/labels",
            {
                "name": DRIFT_LABEL,
                "color": "D93F0B",
                "description": "WorkSpaces images drifted from their specs",
            },
        )
    except ActionError as err:
        if "422" not in str(err):
            raise


# verdict ----------------------------------------------------------------------------------


def verdict() -> None:
    """Fail the action unless the reconciler exited 0 or 2 (changes, work left or drift:
    the outputs say which). 1 is an error; 130 and the like mean it was interrupted."""
    code, command = int(env("EXITCODE")), env("INPUT_COMMAND")
    if code == 0 or (code == CHANGES and command != "validate"):
        return
    raise ActionError(f"reconciler {command} exited {code}; its messages are in the log above")


STEPS: dict[str, Callable[[], None]] = {
    "prepare": prepare,
    "install": install,
    "run": run,
    "comment": comment,
    "issue": issue,
    "verdict": verdict,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in STEPS:
        print(f"usage: {Path(argv[0]).name} {{{','.join(STEPS)}}}", file=sys.stderr)
        return 1
    try:
        STEPS[argv[1]]()
    except ActionError as err:
        print(f"::error title={TOOL}::{command_data(str(err))}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
