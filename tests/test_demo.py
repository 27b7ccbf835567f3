"""`reconciler demo` walks a golden image's rollout end to end, and says so only when it did.

The demo runs the real command, step by step, against the embedded emulator; each step
shows `$ reconciler ...`, the command's output and `(exit N)`. These tests run the demo as
a user does, in a subprocess, and read those steps back.

Its specs are an organisation's (a folder per account): the `images` account captures the
golden image, copies it and shares it with `finance`; the `finance` account imports it and
builds its bundle on the import. The text output heads each account's items with
`Account NAME (ID):`, so what happened where is read from those parts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from reconciler.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
WAIT = "reconciler apply --auto-approve --wait specs"
STEP = re.compile(r"^\$ (reconciler .+)$", re.MULTILINE)
IMAGES = "Account images (111111111111)"
FINANCE = "Account finance (222222222222)"
HEADING = re.compile(r"^(Account [a-z0-9_-]+ \(\d{12}\)):$", re.MULTILINE)
UPDATE_IMAGE = re.compile(
    r"^  ~ update-image bundle finance-standard \((?P<region>[a-z0-9-]+)\) wsb-\w+\n"
    r"(?:      .*\n)*?"  # what the change waits for, before the image line
    r"      ~ image finance-win11-2026-11 \(wsi-[0-9a-f]+\) -> finance-win11-2026-12$",
    re.MULTILINE,
)
IMPORT = re.compile(
    r"^  \+ create      (?P<name>finance-win11-2026-1[12]) \(eu-west-1\) import of (?P=name) "
    r"from images \(eu-west-1\), waits for images to share (?P=name) \(eu-west-1\) with "
    r"finance$",
    re.MULTILINE,
)
CREATED = re.compile(
    r"^  created +(?P<what>.+?) \((?P<region>[a-z0-9-]+)\) (?P<id>ws[ib]-\w+)$", re.M
)


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "demo"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def steps(demo: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    """(command, what it printed up to the next step) for each command the demo ran."""
    parts = STEP.split(demo.stdout)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def exit_code(output: str) -> int:
    found = re.findall(r"^\(exit (\d+)\)$", output, re.MULTILINE)
    assert len(found) == 1, output
    return int(found[0])


def planned(output: str) -> str:
    """The plan a step printed: up to its `Plan:` line (apply prints its results after)."""
    return output.split("\nPlan: ", 1)[0]


def by_account(plan: str) -> dict[str, str]:
    """The plan's items under each `Account NAME (ID):` heading, by heading."""
    parts = HEADING.split(plan)
    assert len(parts) > 1, f"no account headings in:\n{plan}"
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_demo_exits_0_and_says_it_is_complete(demo: subprocess.CompletedProcess[str]) -> None:
    shown = f"--- stdout\n{demo.stdout}--- stderr\n{demo.stderr}"
    assert demo.returncode == 0, shown
    assert "Traceback" not in demo.stdout + demo.stderr, shown
    assert "Demo complete" in demo.stdout, shown


def test_the_first_plan_reaches_both_accounts_each_with_its_part(
    steps: list[tuple[str, str]],
) -> None:
    (command, output), *_ = steps
    assert command == "reconciler plan specs"
    assert exit_code(output) == 0
    parts = by_account(planned(output))
    assert list(parts) == [IMAGES, FINANCE], output
    images, finance = parts[IMAGES], parts[FINANCE]
    # The images account captures, copies and shares with finance (by its id).
    assert "+ create      finance-win11-2026-11 (eu-west-1) from ws-0a1b2c3d4" in images
    assert "+ create      finance-win11-2026-11 (us-east-1) copy of eu-west-1" in images
    assert images.count("+ account 222222222222") == 2, images
    # Finance imports that image, waiting for the share, and builds its bundle on the import.
    assert [m["name"] for m in IMPORT.finditer(finance)] == ["finance-win11-2026-11"], finance
    assert "from ws-" not in finance, finance  # it captures nothing of its own
    assert "+ create      bundle finance-standard (eu-west-1)" in finance, finance
    assert "after the import of finance-win11-2026-11 (eu-west-1)" in finance, finance
    assert "Plan: 7 to create, 2 to update sharing. 0 unchanged." in output, output


def test_the_first_apply_waits_through_capture_copy_share_import_and_bundle(
    steps: list[tuple[str, str]],
) -> None:
    waits = [output for command, output in steps if command == WAIT]
    assert len(waits) == 2
    output = waits[0]
    assert exit_code(output) == 0
    assert list(by_account(planned(output))) == [IMAGES, FINANCE], output
    results = output.split("\nPlan: ", 1)[1]
    for applied in (
        "sharing-updated finance-win11-2026-11 (eu-west-1)",
        "sharing-updated finance-win11-2026-11 (us-east-1)",
    ):
        assert applied in results, output
    created = [(m["what"], m["region"], m["id"]) for m in CREATED.finditer(results)]
    assert ("finance-win11-2026-11", "us-east-1") in {c[:2] for c in created}, output
    assert ("bundle finance-standard", "eu-west-1") in {c[:2] for c in created}, output
    # Two images of that name made in eu-west-1: the capture in the images account (the one
    # it shared) and the import in finance (the one whose tags drift later).
    golden = {c[2] for c in created if c[:2] == ("finance-win11-2026-11", "eu-west-1")}
    shared = re.findall(r"sharing-updated finance-win11-2026-11 \(eu-west-1\) (wsi-\w+)", output)
    (drift,) = [out for command, out in steps if command == "reconciler drift specs"]
    imported = re.findall(r"update-tags finance-win11-2026-11 \(eu-west-1\) (wsi-\w+)", drift)
    assert len(shared) == len(imported) == 1, (output, drift)
    assert shared != imported, (output, drift)
    assert golden == {*shared, *imported}, output
    assert "Apply complete: 7 created, 2 sharing-updated." in output, output


def test_the_drift_is_found_in_the_finance_account(steps: list[tuple[str, str]]) -> None:
    (output,) = [output for command, output in steps if command == "reconciler drift specs"]
    assert exit_code(output) == 2
    parts = by_account(planned(output))
    assert list(parts) == [FINANCE], output  # the images account has nothing to change
    assert "~ update-tags finance-win11-2026-11 (eu-west-1) wsi-" in parts[FINANCE]
    assert '~ tag team = "marketing" -> "finance"' in parts[FINANCE]
    assert '- tag temp = "1"' in parts[FINANCE]


def test_the_rollout_plans_the_new_import_and_update_image_for_the_bundle(
    steps: list[tuple[str, str]],
) -> None:
    plans = [output for command, output in steps if command == "reconciler plan specs"]
    assert len(plans) == 2
    assert not UPDATE_IMAGE.search(plans[0]), plans[0]
    parts = by_account(planned(plans[1]))
    assert list(parts) == [IMAGES, FINANCE], plans[1]
    assert "+ create      finance-win11-2026-12 (eu-west-1) from ws-0a1b2c3d4" in parts[IMAGES]
    assert [m["name"] for m in IMPORT.finditer(parts[FINANCE])] == ["finance-win11-2026-12"]
    regions = [m["region"] for m in UPDATE_IMAGE.finditer(parts[FINANCE])]
    assert regions == ["eu-west-1"], plans[1]
    assert "after the import of finance-win11-2026-12 (eu-west-1)" in parts[FINANCE]


def test_the_rollout_is_applied_and_the_last_plan_has_no_changes(
    steps: list[tuple[str, str]],
) -> None:
    (*_, (apply, applied), (last, output)) = steps
    assert apply == WAIT
    assert exit_code(applied) == 0
    assert len(re.findall(r"image-updated +bundle finance-standard", applied)) == 1, applied
    results = applied.split("\nPlan: ", 1)[1]
    created = [(m["what"], m["region"]) for m in CREATED.finditer(results)]
    # The capture and the import, one in each account, and the capture's copy.
    assert created.count(("finance-win11-2026-12", "eu-west-1")) == 2, applied
    assert created.count(("finance-win11-2026-12", "us-east-1")) == 1, applied
    assert "tags-updated finance-win11-2026-11 (eu-west-1)" in applied  # the drift, put back
    assert last == "reconciler plan --detailed-exitcode specs"
    assert exit_code(output) == 0
    assert "No changes." in output, output


# --- an emulator that fails says so, naming moto, not the network ------------------------------


class _Answers500(BaseHTTPRequestHandler):
    """What a moto release the emulator can't run on answers: 500 to every call."""

    calls: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        # The operation is in X-Amz-Target (JSON protocol) or the path (smithy-rpc-v2-cbor).
        self.calls.append(f"{self.headers.get('X-Amz-Target', '')} {self.path}")
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"<h1>Internal Server Error</h1>"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def broken_emulator() -> Iterator[str]:
    _Answers500.calls.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_an_emulator_that_answers_errors_is_named_at_once_not_the_network(
    broken_emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.demo import _check_emulator_answers

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    started = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        _check_emulator_answers(broken_emulator)
    assert time.monotonic() - started < 5
    (call,) = _Answers500.calls  # one call, no retry
    assert "DescribeWorkspaces" in call, call
    said = str(raised.value)
    assert "embedded WorkSpaces emulator (moto " in said, said
    assert f"does not answer DescribeWorkspaces at {broken_emulator}" in said, said
    assert "not your network or credentials" in said, said


def test_an_emulator_that_fails_to_start_is_named_with_moto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import reconciler.emulator
    from reconciler.demo import run_demo

    @contextmanager
    def fails(*args: object, **kwargs: object) -> Iterator[None]:
        # What an incompatible moto does: an internal name is gone.
        raise AttributeError("'WorkspaceImage' object has no attribute 'to_desc_dict'")
        yield

    monkeypatch.setattr(reconciler.emulator, "local_endpoint", fails)
    with pytest.raises(ConfigError) as raised:
        run_demo()
    said = str(raised.value)
    assert "embedded WorkSpaces emulator (moto " in said, said
    assert "failed to start: AttributeError: 'WorkspaceImage'" in said, said
    assert "not your network" in said, said
