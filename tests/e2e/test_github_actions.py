"""In GitHub Actions: the job summary and `::error` annotations, from the real command.

The commands run in a subprocess whose working directory holds `specs/`, as a checkout
does, so annotations name `specs/...` relative to the repository, as the runner needs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import AWS_COMMANDS, REGION, Outcome, SpecsDir, reconciler_env
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
MARKER = "<!-- workspaces-image-reconciler:{} -->"
ANNOTATION = re.compile(r"^::error file=([^,:]+),line=(\d+),col=(\d+),title=([^:]*)::(.*)$", re.M)


def run(
    checkout: Path,
    *args: str,
    endpoint: LocalEndpoint | None,
    env: Mapping[str, str | None] | None = None,
) -> Outcome:
    argv = list(args)
    if argv[0] in AWS_COMMANDS:
        argv += ["--api-rate", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", *argv],
        env=reconciler_env(endpoint, env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=checkout,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Outcome(done.returncode, done.stdout, done.stderr)


def in_actions(summary: Path | None) -> dict[str, str | None]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary) if summary else None}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def specs(checkout: Path) -> SpecsDir:
    return SpecsDir(checkout / "specs")


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def test_plan_apply_and_drift_append_markdown_to_the_job_summary(
    endpoint: LocalEndpoint, checkout: Path, specs: SpecsDir
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs.write("finance/images.yaml", specs.image("finance-win11", WS_A, tags={"team": "fin"}))
    summary = checkout / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    env = in_actions(summary)

    plan = run(checkout, "plan", "specs", endpoint=endpoint, env=env)
    assert plan.code == 0, plan
    assert "to create" in plan.stdout
    assert MARKER.format("plan") not in plan.stdout
    apply = run(checkout, "apply", "specs", "--auto-approve", endpoint=endpoint, env=env)
    assert apply.code == 0, apply
    drift = run(checkout, "drift", "specs", "--format", "json", endpoint=endpoint, env=env)
    assert drift.code == 0, drift
    json.loads(drift.stdout)  # stdout stays the requested format

    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n"), "appended, not overwritten"
    starts = [text.index(MARKER.format(kind)) for kind in ("plan", "apply", "drift")]
    assert starts == sorted(starts)
    plan_part, apply_part, drift_part = (
        text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)
    )
    assert "### Plan: 1 to create" in plan_part
    assert "<code>finance-win11</code>" in plan_part
    assert "### Apply complete: 1 created" in apply_part
    assert "→ **created**" in apply_part
    assert "### ✅ In sync." in drift_part
    for part in (plan_part, apply_part, drift_part):
        assert part.count("<details>") == part.count("</details>")
    assert "::error" not in plan.stderr + apply.stderr + drift.stderr


def test_conflicts_and_blocked_items_are_annotated_on_their_spec_lines(
    endpoint: LocalEndpoint, checkout: Path, specs: SpecsDir
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    endpoint.fidelity.add_image(REGION, "legal-win11", description="Old description", tags=OWN)
    path = specs.write(
        "legal/images.yaml",
        specs.image("fine-win11", WS_A),
        specs.image("legal-win11", WS_A, description="New description"),
        specs.image("dev-win11", "ws-0f0f0f0f0"),  # no such WorkSpace
    )
    summary = checkout / "summary.md"

    plan = run(
        checkout, "plan", "specs", "--format", "json", endpoint=endpoint, env=in_actions(summary)
    )
    assert plan.code == 1, plan
    assert {i["name"]: i["action"] for i in plan.json()["items"]} == {
        "fine-win11": "create",
        "legal-win11": "conflict",
        "dev-win11": "blocked",
    }
    found = {m[3]: m for m in ANNOTATION.findall(plan.stderr)}
    assert set(found) == {"conflict", "blocked"}, plan.stderr
    file, line, _, _, message = found["conflict"]
    assert file == "specs/legal/images.yaml"
    assert int(line) == line_of(path, "name: legal-win11")
    assert "description differs" in message
    file, line, _, _, message = found["blocked"]
    assert file == "specs/legal/images.yaml"
    assert int(line) == line_of(path, "name: dev-win11")
    assert "ws-0f0f0f0f0 not found" in message
    assert "::error" not in plan.stdout, "annotations stay off stdout"
    assert MARKER.format("plan") in summary.read_text(encoding="utf-8")

    # The same run outside Actions annotates nothing.
    local = run(checkout, "plan", "specs", endpoint=endpoint, env={"GITHUB_ACTIONS": None})
    assert local.code == 1
    assert "::error" not in local.stdout + local.stderr


def test_a_failed_create_is_annotated_on_its_spec(
    endpoint: LocalEndpoint, checkout: Path, specs: SpecsDir
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    path = specs.write("images.yaml", specs.image("denied-win11", WS_A))
    endpoint.faults.error_for("CreateWorkspaceImage", "AccessDeniedException")

    apply = run(
        checkout, "apply", "specs", "--auto-approve", endpoint=endpoint, env=in_actions(None)
    )
    assert apply.code == 1, apply
    ((file, line, _, title, message),) = ANNOTATION.findall(apply.stderr)
    assert (file, int(line), title) == ("specs/images.yaml", line_of(path, "name:"), "failed")
    assert "AccessDeniedException" in message


def test_validate_format_github_annotates_bad_specs(checkout: Path, specs: SpecsDir) -> None:
    path = specs.write(
        "bad.yaml",
        "name: ok-win11\ndescription: fine\nsource_workspace_id: ws-0a1b2c3d4\n"
        "tags:\n  enabled: yes\n",
        "name: typo-win11\ndescripton: oops\nsource_workspace_id: ws-0a1b2c3d4\n",
    )
    outcome = run(checkout, "validate", "specs", "--format", "github", endpoint=None)
    assert outcome.code == 1, outcome
    found = ANNOTATION.findall(outcome.stdout)
    assert len(found) >= 2, outcome.stdout
    assert all(f[0] == "specs/bad.yaml" for f in found)
    lines = {int(f[1]) for f in found}
    assert line_of(path, "enabled: yes") in lines
    assert line_of(path, "descripton: oops") in lines
    assert any("quote" in f[4] for f in found), "a YAML boolean is an error that says to quote it"


def test_invalid_specs_in_a_plan_are_annotated_only_in_actions(
    checkout: Path, specs: SpecsDir
) -> None:
    path = specs.write(
        "team/bad.yaml", "name: typo-win11\ndescripton: oops\nsource_workspace_id: ws-0a1b2c3d4\n"
    )
    offline = {"AWS_REGION": REGION}  # invalid specs stop the run before any AWS call
    in_ci = run(checkout, "plan", "specs", endpoint=None, env={**offline, **in_actions(None)})
    assert in_ci.code == 1, in_ci
    ((file, line, _, _, _),) = ANNOTATION.findall(in_ci.stderr)
    assert (file, int(line)) == ("specs/team/bad.yaml", line_of(path, "descripton"))

    local = run(checkout, "plan", "specs", endpoint=None, env=offline)
    assert local.code == 1
    assert "::error" not in local.stdout + local.stderr
    assert "descripton" in local.stderr  # the problem is still reported, as text


def test_a_summary_that_cannot_be_written_does_not_fail_the_run(
    endpoint: LocalEndpoint, checkout: Path, specs: SpecsDir
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs.write("images.yaml", specs.image("finance-win11", WS_A))
    unwritable = checkout / "no-such-folder" / "summary.md"
    plan = run(checkout, "plan", "specs", endpoint=endpoint, env=in_actions(unwritable))
    assert plan.code == 0, plan
    assert "GITHUB_STEP_SUMMARY" in plan.stderr
    assert "to create" in plan.stdout


def test_without_actions_a_summary_file_is_still_honoured_but_nothing_is_annotated(
    endpoint: LocalEndpoint, checkout: Path, specs: SpecsDir
) -> None:
    endpoint.fidelity.add_image(REGION, "legal-win11", description="Old description", tags=OWN)
    specs.write("images.yaml", specs.image("legal-win11", WS_A, description="New description"))
    summary = checkout / "summary.md"
    env = {"GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": str(summary)}
    drift = run(checkout, "drift", "specs", endpoint=endpoint, env=env)
    assert drift.code == 2, drift
    assert "::error" not in drift.stdout + drift.stderr
    assert MARKER.format("drift") in summary.read_text(encoding="utf-8")
