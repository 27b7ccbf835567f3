"""The specs are read whole or not at all, as a user meets it (issue 10, items 1 and 13).

A folder of specs that the reconciler can't read used to be skipped in silence: `validate`
said "Success!" and `apply --prune` deleted the images whose specs live there. Same for a
spec named `*.YAML`. These tests run the real command against the local endpoint.

The tests run as root (so does CI), and root reads everything; `setpriv` removes that
right (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from the command, so that a `chmod 000`
folder is unreadable to it, as it would be to any other user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, ROOT, Outcome, RunReconciler, SpecsDir, reconciler_env
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
WS_B = "ws-0b1b2c3d4"
AWS_COMMANDS = {"plan", "apply", "drift"}


def without_root_privileges() -> list[str]:
    """The prefix that makes permission bits bind the command, run as root or not."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and setpriv (util-linux) is missing to drop root's read-all")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def run_unprivileged(*args: str | os.PathLike[str], endpoint: LocalEndpoint | None) -> Outcome:
    argv = [os.fspath(a) for a in args]
    if argv[0] in AWS_COMMANDS:
        argv += ["--api-rate", "0"]
    done = subprocess.run(
        [*without_root_privileges(), sys.executable, "-m", "reconciler", *argv],
        env=reconciler_env(endpoint),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def unreadable_team(specs_dir: SpecsDir) -> Iterator[Path]:
    """specs/team holds the spec of `team-image`; the folder is made unreadable."""
    specs_dir.write("root.yaml", specs_dir.image("root-image", WS_A, tags={"team": "root"}))
    specs_dir.write("team/image.yaml", specs_dir.image("team-image", WS_B, tags={"team": "t"}))
    team = specs_dir.path / "team"
    yield team
    team.chmod(0o755)  # let pytest clean up, whoever runs it


def seed_converged(endpoint: LocalEndpoint) -> dict[str, str]:
    """Both specs' images exist, owned and in sync: only a lost spec makes a change."""
    fidelity = endpoint.fidelity
    fidelity.add_workspace(REGION, WS_A)
    fidelity.add_workspace(REGION, WS_B)
    return {
        "root-image": fidelity.add_image(REGION, "root-image", "Image root-image",
                                         {**OWN, "team": "root"}),
        "team-image": fidelity.add_image(REGION, "team-image", "Image team-image",
                                         {**OWN, "team": "t"}),
    }  # fmt: skip


def image_names(endpoint: LocalEndpoint) -> set[str]:
    return {i["name"] for i in endpoint.fidelity.images(REGION)}


def deletes(endpoint: LocalEndpoint) -> list[object]:
    return [c for c in endpoint.calls.all() if c.operation == "DeleteWorkspaceImage"]


def test_validate_fails_naming_an_unreadable_folder(
    specs_dir: SpecsDir, unreadable_team: Path
) -> None:
    unreadable_team.chmod(0o000)
    checked = run_unprivileged("validate", specs_dir, endpoint=None)
    assert checked.code == 1, checked.stderr
    assert f"{specs_dir}/team: <folder>: folder cannot be read (Permission denied)" in (
        checked.stderr
    )
    assert "Success" not in checked.stdout


def test_apply_prune_deletes_nothing_when_a_folder_cannot_be_read(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, unreadable_team: Path
) -> None:
    ids = seed_converged(endpoint)
    # Readable, the specs declare both images: nothing to prune.
    planned = run_unprivileged("plan", specs_dir, "--prune", "--detailed-exitcode",
                               endpoint=endpoint)  # fmt: skip
    assert planned.code == 0, planned.stdout + planned.stderr

    unreadable_team.chmod(0o000)
    endpoint.calls.clear()
    applied = run_unprivileged("apply", specs_dir, "--prune", "--auto-approve", endpoint=endpoint)
    assert applied.code == 1, applied.stdout + applied.stderr
    assert f"{specs_dir}/team: <folder>: folder cannot be read" in applied.stderr
    assert "nothing was changed" in applied.stderr
    assert deletes(endpoint) == []
    assert endpoint.calls.changing() == []
    assert {i["name"]: i["id"] for i in endpoint.fidelity.images(REGION)} == ids

    for command in ("plan", "drift"):
        refused = run_unprivileged(command, specs_dir, "--prune" if command == "plan" else "-q",
                                   endpoint=endpoint)  # fmt: skip
        assert refused.code == 1, f"{command}: {refused.stdout}{refused.stderr}"
        assert f"{specs_dir}/team: <folder>: folder cannot be read" in refused.stderr
        assert "team-image" not in refused.stdout  # never listed as unmanaged


def test_a_spec_named_in_upper_case_is_read_and_its_image_never_pruned(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    seed_converged(endpoint)
    specs_dir.write("root.yaml", specs_dir.image("root-image", WS_A, tags={"team": "root"}))
    specs_dir.write("team/IMAGE.YAML", specs_dir.image("team-image", WS_B, tags={"team": "t"}))

    run_reconciler("apply", specs_dir, "--prune", "--auto-approve", endpoint=endpoint,
                   check_exit=0)  # fmt: skip
    assert deletes(endpoint) == []
    assert image_names(endpoint) == {"root-image", "team-image"}


def test_an_editor_lock_link_beside_a_spec_is_ignored(
    specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    specs_dir.write("images.yaml", specs_dir.image("golden", WS_A))
    (specs_dir.path / ".#images.yaml").symlink_to("root@laptop.4242:1700000000")
    checked = run_reconciler("validate", specs_dir, endpoint=None, check_exit=0)
    assert "Success! 1 specs in 1 files are valid." in checked.stdout


def test_validate_warns_of_the_region_collision_that_plan_then_refuses(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    specs_dir.write("us.yaml", specs_dir.image("golden", WS_A, region="us-east-1"))
    specs_dir.write("any.yaml", specs_dir.image("golden", WS_A))

    checked = run_reconciler("validate", specs_dir, "--format", "json", endpoint=None,
                             check_exit=0)  # fmt: skip
    checked.json()  # stdout holds one JSON document: the warning went to stderr
    warning = f"{specs_dir}/any.yaml:1:1: name: warning: image 'golden' has no region here"
    assert warning in checked.stderr
    assert f"declared for us-east-1 at {specs_dir}/us.yaml:1" in checked.stderr

    planned = run_reconciler("plan", specs_dir, endpoint=endpoint,
                             env={"AWS_REGION": "us-east-1"})  # fmt: skip
    assert planned.code == 1
    assert "declared twice for us-east-1" in planned.stderr
    assert endpoint.calls.changing() == []
