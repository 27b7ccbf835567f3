"""What the user reviewed is all that happens (issue 10), end to end: the real command
against the local endpoint.

Each test is one finding of the issue, as a user meets it, and fails on the code before the
fix: deletions only of owned images the plan showed, saved plans applied exactly as
recorded, exit codes that keep their meaning, interruptions of plan and drift, errors while
waiting, and flags that contradict a saved plan.
"""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, RunReconciler, SpecsDir, live, out_of_band, source
from tests.e2e.test_concurrency_and_signals import finish, start, wait_for
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
OTHER_REGION = "us-east-1"


def deletes(endpoint: LocalEndpoint) -> int:
    return endpoint.calls.count("DeleteWorkspaceImage")


def changing(endpoint: LocalEndpoint) -> list[str]:
    return [c.operation for c in endpoint.calls.changing()]


# --- 2. --replace-failed never deletes an image it does not own ------------------------------


def test_replace_failed_never_deletes_an_image_in_error_without_the_ownership_tag(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Another team's image, in ERROR, with the name of a spec: a plain conflict."""
    endpoint.fidelity.add_workspace(REGION, source(1))
    theirs = endpoint.fidelity.add_image(
        REGION, "img", "Image img", tags={"team": "other"}, state="ERROR", error_code="E1"
    )
    specs_dir.write("images.yaml", specs_dir.image("img", source(1)))

    shown = run_reconciler("plan", specs_dir, "--replace-failed", endpoint=endpoint)
    assert shown.code == 1  # a conflict
    assert "-/+ replace" not in shown.stdout
    assert "does not carry the ownership tag" in shown.stdout

    done = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--replace-failed", endpoint=endpoint, check_exit=1
    )
    assert "conflict" in done.stdout
    assert deletes(endpoint) == 0
    assert endpoint.calls.count("CreateWorkspaceImage") == 0
    assert live(endpoint)["img"]["id"] == theirs


def test_replace_failed_confirms_ownership_just_before_the_delete(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Owned when planned (and saved), disowned before the apply: not deleted."""
    endpoint.fidelity.add_workspace(REGION, source(1))
    failed = endpoint.fidelity.add_image(
        REGION, "img", "Image img", tags=OWN, state="ERROR", error_code="E1"
    )
    specs_dir.write("images.yaml", specs_dir.image("img", source(1)))
    plan_file = specs_dir.path.parent / "plan.json"
    shown = run_reconciler(
        "plan", specs_dir, "--replace-failed", "--out", plan_file, endpoint=endpoint
    )
    assert "-/+ replace" in shown.stdout
    # The tag goes between the review and the apply, and the tagging API (eventually
    # consistent) still serves it: the fresh plan agrees with the saved one, so only the
    # read just before the call can keep the image.
    endpoint.fidelity.freeze_tags()
    _delete_tag(endpoint, failed, OWNERSHIP_TAG_KEY)
    done = run_reconciler("apply", "--plan-file", plan_file, specs_dir, endpoint=endpoint)
    assert done.code == 1
    assert "no longer carries the ownership tag" in done.stdout, done
    assert deletes(endpoint) == 0
    assert live(endpoint)["img"]["id"] == failed


def _delete_tag(endpoint: LocalEndpoint, resource_id: str, key: str) -> None:
    out_of_band(endpoint).delete_tags(ResourceId=resource_id, TagKeys=[key])


# --- 3. a saved plan deletes exactly what it listed --------------------------------------------


def _owned_unmanaged(endpoint: LocalEndpoint, specs_dir: SpecsDir) -> str:
    endpoint.fidelity.add_workspace(REGION, source(1))
    endpoint.fidelity.add_image(REGION, "keep", "Image keep", tags=OWN)
    specs_dir.write("images.yaml", specs_dir.image("keep", source(1)))
    return endpoint.fidelity.add_image(REGION, "old", "Image old", tags=OWN)


def test_a_plan_saved_without_prune_refuses_apply_prune_before_any_change(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    old = _owned_unmanaged(endpoint, specs_dir)
    plan_file = specs_dir.path.parent / "plan.json"
    run_reconciler("plan", specs_dir, "--out", plan_file, endpoint=endpoint, check_exit=0)
    endpoint.calls.clear()

    for flag in ("--prune", "--replace-failed"):
        refused = run_reconciler(
            "apply", specs_dir, "--plan-file", plan_file, flag, endpoint=endpoint, check_exit=1
        )
        assert f"{flag} was passed, but the saved plan" in refused.stderr
    assert changing(endpoint) == []
    # Applied as saved: the unmanaged image stays.
    run_reconciler("apply", specs_dir, "--plan-file", plan_file, endpoint=endpoint, check_exit=0)
    assert deletes(endpoint) == 0
    assert live(endpoint)["old"]["id"] == old


def test_plan_prune_shows_the_deletions_and_its_saved_plan_makes_exactly_them(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    old = _owned_unmanaged(endpoint, specs_dir)
    plan_file = specs_dir.path.parent / "plan.json"
    shown = run_reconciler(
        "plan", specs_dir, "--prune", "--out", plan_file, "--detailed-exitcode", endpoint=endpoint
    )
    assert shown.code == 2  # a deletion is a change
    assert "- delete" in shown.stdout
    assert "old" in shown.stdout
    # Made after the review: not in the saved plan, so the saved plan is stale.
    newer = endpoint.fidelity.add_image(REGION, "newer", "Image newer", tags=OWN)
    stale = run_reconciler("apply", specs_dir, "--plan-file", plan_file, endpoint=endpoint)
    assert stale.code == 1
    assert "saved plan is stale" in stale.stderr
    assert deletes(endpoint) == 0

    _delete_image(endpoint, newer)
    done = run_reconciler(
        "apply", specs_dir, "--plan-file", plan_file, "--format", "json", endpoint=endpoint
    )
    assert done.code == 0, done.stderr
    assert [(u["name"], u["result"]) for u in done.json()["unmanaged"]] == [("old", "deleted")]
    assert old not in {i["id"] for i in live(endpoint).values()}


def _delete_image(endpoint: LocalEndpoint, image_id: str) -> None:
    out_of_band(endpoint).delete_workspace_image(ImageId=image_id)


def test_apply_plan_file_with_target_is_refused(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, source(1))
    specs_dir.write("images.yaml", specs_dir.image("img", source(1)))
    plan_file = specs_dir.path.parent / "plan.json"
    run_reconciler("plan", specs_dir, "--out", plan_file, endpoint=endpoint, check_exit=0)
    refused = run_reconciler(
        "apply", specs_dir, "--plan-file", plan_file, "--target", "img", endpoint=endpoint
    )
    assert refused.code == 1
    assert "--target can't be combined with --plan-file" in refused.stderr
    assert changing(endpoint) == []


# --- 6. an error while waiting keeps the report -------------------------------------------------


def test_an_aws_error_while_waiting_prints_the_results_so_far_then_the_error(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, source(1))
    specs_dir.write("images.yaml", specs_dir.image("img", source(1)))
    # The wait polls by ImageIds; those polls are refused (the plan's listing is not).
    endpoint.faults.error_for(
        "DescribeWorkspaceImages", "AccessDeniedException", when=lambda body: "ImageIds" in body
    )
    done = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--wait", "--format", "json", endpoint=endpoint
    )
    assert done.code == 1
    assert [(i["name"], i["result"]) for i in done.json()["items"]] == [("img", "created")]
    assert "while waiting" in done.stderr
    assert "access denied" in done.stderr.lower()
    assert "img" in live(endpoint)


# --- 7. usage errors exit 1 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "--no-such-option"),
        ("drift", "--api-rate", "-1"),
        ("drift", "--format", "yaml"),
        ("apply", "--wait-timeout", "soon"),
        ("no-such-command",),
        ("plan", "--label", "a\x07b"),
    ],
    ids=["unknown-option", "bad-number", "bad-choice", "bad-float", "unknown-command", "bad-label"],
)
def test_usage_errors_exit_1_never_2(run_reconciler: RunReconciler, args: tuple[str, ...]) -> None:
    """2 means changes or drift: the drift workflow opened an issue on a usage error."""
    done = run_reconciler(*args, endpoint=None)
    assert done.code == 1, done
    assert "Error:" in done.stderr


# --- 8. Ctrl-C during plan and drift ------------------------------------------------------------


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_a_signal_during_a_paced_plan_over_two_regions_stops_within_two_seconds_with_130(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, command: str
) -> None:
    """At one call per second, 2 x 30 tag reads take half a minute; Ctrl-C stops it."""
    for region in (REGION, OTHER_REGION):
        for n in range(30):
            endpoint.fidelity.add_image(region, f"{region[:2]}-{n:02d}", tags=OWN)
        specs_dir.write(
            f"{region}.yaml",
            *(
                specs_dir.image(f"{region[:2]}-{n:02d}", source(n), region=region)
                for n in range(30)
            ),
        )
    endpoint.fidelity.deny_tagging(True)  # the per-image reads: a long, paced run
    process = start(endpoint, command, str(specs_dir), "--api-rate", "1")
    wait_for(lambda: endpoint.calls.count("DescribeTags") >= 6, what="six tag reads")
    signalled = time.monotonic()
    process.send_signal(signal.SIGINT)
    code, stdout, stderr = finish(process, timeout=60)
    assert time.monotonic() - signalled < 2.5
    assert code == 130, (stdout, stderr)
    assert "Aborted" not in stderr
    assert "interrupted" in stderr.lower()


# --- 13. progress while a long apply runs -------------------------------------------------------


def test_a_long_apply_prints_progress_lines_on_stderr(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Not a terminal: a plain line every few seconds while the creates go out."""
    names = [f"img-{n:02d}" for n in range(16)]
    for n in range(16):
        endpoint.fidelity.add_workspace(REGION, source(n))
    specs_dir.write(
        "images.yaml", *(specs_dir.image(name, source(n)) for n, name in enumerate(names))
    )
    done = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--api-rate", "2", endpoint=endpoint, timeout=90
    )
    assert done.code == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if f"{REGION}: apply " in line]
    assert progress, done.stderr
    # An item may take several calls (a confirming read, then the change): items per second.
    assert all("calls/s" not in line for line in progress), progress
    assert any("items/s" in line for line in progress), progress
    assert progress[-1].startswith(f"{REGION}: apply 16/16") or "/16" in progress[-1]


def test_no_color_set_but_empty_keeps_colour() -> None:
    """no-color.org: NO_COLOR disables colour only when present and not empty."""
    import os

    from reconciler.cli import _no_color

    env_cases: list[tuple[dict[str, Any], bool]] = [
        ({"NO_COLOR": ""}, False),
        ({"NO_COLOR": "1"}, True),
        ({}, False),
    ]

    for env, expected in env_cases:
        saved = os.environ.pop("NO_COLOR", None)
        try:
            os.environ.update(env)
            assert _no_color(False) is expected, env
        finally:
            os.environ.pop("NO_COLOR", None)
            if saved is not None:
                os.environ["NO_COLOR"] = saved


# --- 11. a failed run still answers in the format asked for -------------------------------------


def test_a_failed_run_prints_the_json_error_document_and_writes_both_files(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    specs_dir.write("images.yaml", "name: img\ndescription: Image img\nsource_workspace_id: 12\n")
    md_file = specs_dir.path.parent / "comment.md"
    json_file = specs_dir.path.parent / "plan.json"
    done = run_reconciler(
        "plan",
        specs_dir,
        "--format",
        "json",
        "--markdown-file",
        md_file,
        "--json-file",
        json_file,
        "--label",
        "prod/eu-west-1",
        endpoint=endpoint,
    )
    assert done.code == 1
    document = done.json()
    assert set(document) == {"format_version", "error"}
    assert document["error"]["message"].startswith("1 problem in the specs")
    [problem] = document["error"]["problems"]
    assert problem["file"].endswith("images.yaml")
    assert (problem["line"], problem["field"]) == (3, "source_workspace_id")
    assert json.loads(json_file.read_text(encoding="utf-8")) == document
    comment = md_file.read_text(encoding="utf-8")
    assert comment.startswith("<!-- workspaces-image-reconciler:plan:prod/eu-west-1 -->")
    assert "images.yaml&#58;3" in comment  # the problem and its line, escaped
    assert endpoint.calls.all() == []  # invalid specs stop the run before any call


@pytest.mark.parametrize("command", ["plan", "drift", "apply"])
def test_a_failed_run_prints_a_markdown_error_comment_with_the_commands_marker(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, command: str
) -> None:
    """plan.yml posts stdout as the comment: an empty one would replace the last plan."""
    endpoint.fidelity.add_workspace(REGION, source(1))
    specs_dir.write("images.yaml", specs_dir.image("img", source(1)))
    endpoint.faults.error_for("DescribeWorkspaceImages", "AccessDeniedException")
    extra = ["--auto-approve"] if command == "apply" else []
    done = run_reconciler(command, specs_dir, "--format", "markdown", *extra, endpoint=endpoint)
    assert done.code == 1
    assert done.stdout.startswith(f"<!-- workspaces-image-reconciler:{command} -->")
    assert "access denied" in done.stdout.lower()
    assert "Error: access denied" in done.stderr
