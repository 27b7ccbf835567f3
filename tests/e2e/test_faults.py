"""Faults the real service and network produce, end to end: the real `reconciler` command
against the local endpoint, whose middleware throttles, fails before or after running a
call, resets connections and answers late (reconciler/emulator/middleware.py).

Each test asserts the exit code and the final AWS state as the endpoint holds it: every
image exists exactly once, with the declared tags and the ownership tag.

Random faults are drawn from a seeded generator, one set of draws per call. With
`--concurrency 1` the command's calls reach the endpoint in a fixed order, so a seed gives
the same faults on the same calls on every run: the tests that rely on a particular mix of
faults (a create that lost its reply, a lookup that had to retry) are deterministic.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, Outcome, RunReconciler, SpecsDir, live, source
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
FAULT_TIMEOUT = 240  # seconds a faulty run may take before the test gives up on it


# --- helpers -----------------------------------------------------------------------------


def results(outcome: Outcome) -> dict[str, tuple[str, str | None]]:
    return {i["name"]: (i["result"], i["error"]) for i in outcome.json()["items"]}


def apply_json(
    run: RunReconciler, specs: SpecsDir, endpoint: LocalEndpoint, *extra: str, **kw: Any
) -> Outcome:
    return run(
        "apply", specs, "--auto-approve", "--format", "json", *extra,
        endpoint=endpoint, timeout=FAULT_TIMEOUT, **kw,
    )  # fmt: skip


def declare_creates(
    endpoint: LocalEndpoint, specs: SpecsDir, count: int, *, first: int = 0
) -> dict[str, dict[str, str]]:
    """`count` create specs, each from its own AVAILABLE WorkSpace; {name: declared tags}."""
    declared: dict[str, dict[str, str]] = {}
    docs = []
    for n in range(first, first + count):
        name = f"img-{n:02d}"
        endpoint.fidelity.add_workspace(REGION, source(n))
        declared[name] = {"team": f"team-{n}", "cost-center": str(4400 + n)}
        docs.append(specs.image(name, source(n), tags=declared[name]))
    specs.write(f"creates-{first}.yaml", *docs)
    return declared


def declare_retags(
    endpoint: LocalEndpoint, specs: SpecsDir, count: int, *, first: int = 50, owned: bool
) -> dict[str, dict[str, str]]:
    """`count` existing images whose live tags differ from their specs: owned ones are
    `update-tags` items (a key to change, one to add, one to remove), the others `adopt`."""
    declared: dict[str, dict[str, str]] = {}
    docs = []
    for n in range(first, first + count):
        name = f"{'retag' if owned else 'adopt'}-{n:02d}"
        live_tags = {"team": "old", "stale": "x", **(OWN if owned else {})}
        endpoint.fidelity.add_image(REGION, name, f"Image {name}", tags=live_tags)
        declared[name] = {"team": f"team-{n}", "added": "yes"}
        docs.append(specs.image(name, source(n), tags=declared[name]))
    specs.write(f"{'retags' if owned else 'adopts'}-{first}.yaml", *docs)
    return declared


def assert_converged(endpoint: LocalEndpoint, declared: dict[str, dict[str, str]]) -> None:
    """Every declared image exists exactly once, with exactly its declared tags and ours."""
    found = live(endpoint)
    assert set(found) == set(declared)
    for name, tags in declared.items():
        assert found[name]["tags"] == {**tags, **OWN}, name


def assert_no_changes(run: RunReconciler, specs: SpecsDir, endpoint: LocalEndpoint) -> None:
    endpoint.faults.clear()
    run("plan", specs, "--detailed-exitcode", endpoint=endpoint, check_exit=0)


# --- one kind of fault at a time -----------------------------------------------------------
#
# Seeds: any seed must converge; these are chosen so that no call meets more than about
# three faults in a row, which keeps botocore's exponential backoff (up to 20 s a retry)
# and so the suite's runtime short. They change which calls fail, not what must hold.


def test_throttling_half_of_all_calls_is_ridden_out_and_apply_converges(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    declared = declare_creates(endpoint, specs_dir, 4)
    declared |= declare_retags(endpoint, specs_dir, 1, owned=True)
    declared |= declare_retags(endpoint, specs_dir, 1, first=60, owned=False)
    endpoint.faults.seed(15)
    endpoint.faults.set("*", throttle_rate=0.5)

    applied = apply_json(run_reconciler, specs_dir, endpoint, "--concurrency", "1", check_exit=0)

    assert {name: result for name, (result, _) in results(applied).items()} == {
        "img-00": "created",
        "img-01": "created",
        "img-02": "created",
        "img-03": "created",
        "retag-50": "tags-updated",
        "adopt-60": "adopted",
    }
    throttled = {c.operation for c in endpoint.calls.all() if c.throttled}
    assert "CreateWorkspaceImage" in throttled, throttled
    assert len(throttled) >= 3, throttled  # reads and tag writes too
    # A throttled create did not run: it is sent again, and runs once.
    assert endpoint.calls.count("CreateWorkspaceImage", throttled=False) == 4
    assert_converged(endpoint, declared)
    assert_no_changes(run_reconciler, specs_dir, endpoint)


def test_5xx_before_the_call_runs_reads_are_retried_and_a_create_is_resent_once(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """A 500 on a read or a tag write is retried (they are idempotent). A 500 on a create is
    ambiguous: the name is looked up, and since the call did not run, the create is sent
    once more (the contract; the service refuses a second image of one name). A resend that
    is refused too fails, saying to run apply again, and that run converges."""
    declared = declare_creates(endpoint, specs_dir, 6)
    declared |= declare_retags(endpoint, specs_dir, 2, owned=True)
    endpoint.faults.seed(3)
    endpoint.faults.set("*", error_before_rate=0.3)

    first = apply_json(run_reconciler, specs_dir, endpoint, "--concurrency", "1")

    got = results(first)
    failed = {name for name, (result, _) in got.items() if result == "failed"}
    refused = [c for c in endpoint.calls.all() if c.status == 500]
    refused_creates = [c for c in refused if c.operation == "CreateWorkspaceImage"]
    assert len(refused_creates) > len(failed), "the seed must refuse a create, then resend it"
    # Each create refused first is sent once more, and never a third time.
    resent = len(refused_creates) - len(failed)
    assert endpoint.calls.count("CreateWorkspaceImage") == 6 + resent
    for name in failed:
        assert name.startswith("img-")
        assert "sent once more" in (got[name][1] or "")
    assert {r for n, (r, _) in got.items() if n not in failed} == {"created", "tags-updated"}
    assert {c.operation for c in refused} - {"CreateWorkspaceImage"}, "no read was refused"
    assert set(live(endpoint)) == set(declared) - failed

    endpoint.faults.clear()
    again = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert {n for n, (r, _) in results(again).items() if r == "created"} == failed
    assert_converged(endpoint, declared)
    assert_no_changes(run_reconciler, specs_dir, endpoint)


def test_lost_create_replies_are_settled_by_lookup_and_no_image_is_created_twice(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """The create runs, then the answer is a 500: one apply converges by looking each lost
    name up, and never sends a create again."""
    declared = declare_creates(endpoint, specs_dir, 6)
    endpoint.faults.seed(1)
    endpoint.faults.set("CreateWorkspaceImage", lost_reply_rate=0.5)

    applied = apply_json(run_reconciler, specs_dir, endpoint, "--concurrency", "1", check_exit=0)

    lost = [
        c for c in endpoint.calls.all() if c.operation == "CreateWorkspaceImage" and c.status == 500
    ]
    got = results(applied)
    converged = {name for name, (result, _) in got.items() if result == "converged"}
    assert len(converged) == len(lost) >= 2, "the seed must lose at least two replies"
    assert {r for n, (r, _) in got.items() if n not in converged} == {"created"}
    assert all(error is None for _, error in got.values())
    assert endpoint.calls.count("CreateWorkspaceImage") == 6
    ids = {i["name"]: i["image_id"] for i in applied.json()["items"]}
    assert ids == {name: image["id"] for name, image in live(endpoint).items()}
    assert_converged(endpoint, declared)
    assert_no_changes(run_reconciler, specs_dir, endpoint)


def test_lost_tag_write_replies_are_retried_and_tags_end_right(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """CreateTags / DeleteTags run, then the answer is a 500: they are idempotent, so they
    are sent again, and the tags end exactly as declared."""
    declared = declare_retags(endpoint, specs_dir, 4, owned=True)
    declared |= declare_retags(endpoint, specs_dir, 3, first=60, owned=False)
    endpoint.faults.seed(18)
    endpoint.faults.set("CreateTags", lost_reply_rate=0.5)
    endpoint.faults.set("DeleteTags", lost_reply_rate=0.5)

    applied = apply_json(run_reconciler, specs_dir, endpoint, "--concurrency", "1", check_exit=0)

    lost = Counter(c.operation for c in endpoint.calls.all() if c.status == 500)
    assert lost["CreateTags"] >= 1, lost
    assert lost["DeleteTags"] >= 1, lost
    expected = {n: "tags-updated" if n.startswith("retag") else "adopted" for n in declared}
    assert {n: r for n, (r, _) in results(applied).items()} == expected
    assert_converged(endpoint, declared)
    assert_no_changes(run_reconciler, specs_dir, endpoint)


def test_connection_resets_are_retried_and_a_create_reset_before_running_is_settled(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Resets on reads and tag writes are retried. A create whose connection drops after
    it ran converges by lookup; one that drops before it ran is proven absent by the lookup
    and sent once more, so one apply converges. Nothing is created twice."""
    declared = declare_creates(endpoint, specs_dir, 5)
    declared |= declare_retags(endpoint, specs_dir, 2, owned=True)
    endpoint.faults.seed(4)
    endpoint.faults.set("*", reset_rate=0.3)
    endpoint.faults.set("CreateWorkspaceImage", reset_rate=0.0, reset_after_rate=0.5)
    endpoint.faults.fail_once("CreateWorkspaceImage", "reset")  # the first create: not run

    first = apply_json(run_reconciler, specs_dir, endpoint, "--concurrency", "1", check_exit=0)

    got = results(first)
    resets = Counter(c.operation for c in endpoint.calls.all() if c.status == 0)
    assert resets["CreateWorkspaceImage"] >= 2, resets  # the one-shot and a reset_after
    assert set(resets) - {"CreateWorkspaceImage"}, "no read or tag write was reset"
    # img-00 was reset before it ran: absent, so sent once more (its reply may be lost too,
    # and the lookup then finds it).
    assert got["img-00"] in {("created", None), ("converged", None)}
    assert endpoint.calls.count("CreateWorkspaceImage") == 6  # five, and img-00's resend
    assert {r for n, (r, _) in got.items() if n != "img-00"} == {
        "created",
        "converged",
        "tags-updated",
    }
    assert_converged(endpoint, declared)
    assert_no_changes(run_reconciler, specs_dir, endpoint)


def test_replies_slower_than_the_read_timeout_are_retried_or_settled_without_duplicates(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """RECONCILER_READ_TIMEOUT=1 and a 2-second reply on some calls: the client gives up on
    them. A timed-out read is sent again; a timed-out create has run, and the lookup
    settles it as converged."""
    declared = declare_creates(endpoint, specs_dir, 5)
    declared |= declare_retags(endpoint, specs_dir, 2, owned=True)
    endpoint.faults.seed(0)
    endpoint.faults.set("*", slow_rate=0.3, slow_seconds=2.0)

    applied = apply_json(
        run_reconciler, specs_dir, endpoint, "--concurrency", "1",
        env={"RECONCILER_READ_TIMEOUT": "1"}, check_exit=0,
    )  # fmt: skip

    got = results(applied)
    slow_creates = {n for n, (r, _) in got.items() if r == "converged"}
    assert slow_creates, "the seed must slow at least one create"
    assert {r for n, (r, _) in got.items() if n not in slow_creates} == {"created", "tags-updated"}
    assert endpoint.calls.count("CreateWorkspaceImage") == 5
    # Some timed-out read or tag write was sent again: more calls than the run needed. (A
    # slow call is recorded when its late reply leaves, so wait for the last one.)
    time.sleep(2.0)
    needed = {
        "DescribeWorkspaceImages": 1 + len(slow_creates),  # the plan's listing, the lookups
        "DescribeTags": 2,
        "DescribeWorkspaces": 1,
        "CreateTags": 2,
        "DeleteTags": 2,
    }
    sent = endpoint.calls.by_operation()
    assert any(sent[op] > count for op, count in needed.items()), sent
    assert_converged(endpoint, declared)
    assert_no_changes(run_reconciler, specs_dir, endpoint)


# --- everything at once --------------------------------------------------------------------

# More seeds: FAULT_SEEDS=58,82,121 python -m pytest tests/e2e/test_faults.py
HEADLINE_SEEDS = [int(s) for s in os.environ.get("FAULT_SEEDS", "58").split(",")]


@pytest.mark.parametrize("seed", HEADLINE_SEEDS)
def test_twenty_specs_under_30pct_throttling_and_30pct_lost_replies_converge_in_one_apply(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, seed: int
) -> None:
    """Every operation is throttled 30% of the time and loses its reply 30% of the time
    (about half of all calls fail). One apply of 20 specs (14 creates, 3 tag updates, 3
    adoptions) converges: exit 0, each image exactly once with its declared tags."""
    declared = declare_creates(endpoint, specs_dir, 14)
    declared |= declare_retags(endpoint, specs_dir, 3, owned=True)
    declared |= declare_retags(endpoint, specs_dir, 3, first=60, owned=False)
    assert len(declared) == 20
    endpoint.faults.seed(seed)
    endpoint.faults.set("*", throttle_rate=0.3, lost_reply_rate=0.3)

    applied = apply_json(run_reconciler, specs_dir, endpoint, "--concurrency", "1", check_exit=0)

    calls = endpoint.calls.all()
    assert sum(c.throttled for c in calls) >= 5
    assert sum(c.status == 500 for c in calls) >= 5
    got = results(applied)
    assert all(error is None for _, error in got.values()), got
    for name, (result, _) in got.items():
        kind = name.split("-")[0]
        allowed = {"img": {"created", "converged"}, "retag": {"tags-updated"}}
        assert result in allowed.get(kind, {"adopted"}), (name, result)
    lost_creates = [c for c in calls if c.operation == "CreateWorkspaceImage" and c.status == 500]
    assert sum(r == "converged" for r, _ in got.values()) == len(lost_creates)
    # A create is sent again only after a throttle (which did not run it).
    assert endpoint.calls.count("CreateWorkspaceImage", throttled=False) == 14
    assert_converged(endpoint, declared)
    assert_no_changes(run_reconciler, specs_dir, endpoint)


# --- every documented CreateWorkspaceImage error --------------------------------------------

# code -> (result, exit code with --detailed-exitcode, words the error must carry)
CREATE_ERRORS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "ResourceAlreadyExistsException": ("converged", 0, ()),
    "InvalidResourceStateException": ("deferred", 2, ("busy", "run apply again")),
    "ResourceLimitExceededException": ("failed", 1, ("quota",)),
    "ResourceNotFoundException": ("failed", 1, ("WorkSpace", "no longer exists")),
    "OperationNotSupportedException": ("failed", 1, ("cannot image", "another source")),
    "AccessDeniedException": ("failed", 1, ("workspaces:CreateWorkspaceImage", "IAM")),
    "InvalidParameterValuesException": ("failed", 1, ("rejected a value", "spec")),
}


@pytest.mark.parametrize("code", list(CREATE_ERRORS))
def test_each_documented_create_error_gets_its_outcome_on_one_item_and_the_others_go_on(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, code: str
) -> None:
    declared = declare_creates(endpoint, specs_dir, 3)  # img-00, img-01, img-02
    victim = "img-01"
    raced: list[str] = []

    def refuse_victim(body: dict[str, Any]) -> bool:
        if body["Name"] != victim:
            return False
        if code == "ResourceAlreadyExistsException" and not raced:
            # The service says so because another run created it a moment ago.
            tags = {t["Key"]: t["Value"] for t in body["Tags"]}
            raced.append(endpoint.fidelity.add_image(REGION, victim, body["Description"], tags))
        return True

    message = f"The service refused {victim} ({code})."
    endpoint.faults.error_for("CreateWorkspaceImage", code, when=refuse_victim, message=message)
    result, exit_code, words = CREATE_ERRORS[code]

    applied = apply_json(
        run_reconciler, specs_dir, endpoint, "--detailed-exitcode", check_exit=exit_code
    )

    got = results(applied)
    assert got["img-00"] == ("created", None)
    assert got["img-02"] == ("created", None)
    assert got[victim][0] == result
    error = got[victim][1]
    if result == "converged":
        assert error is None
        assert_converged(endpoint, declared)
    else:
        assert error is not None
        assert error.startswith(f"{code}: {message}")
        assert "(hint: " in error
        for word in words:
            assert word in error, (word, error)
        assert set(live(endpoint)) == {"img-00", "img-02"}
    assert endpoint.calls.count("CreateWorkspaceImage") == 3  # none sent twice
    text = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--detailed-exitcode",
        endpoint=endpoint, check_exit=exit_code,
    )  # fmt: skip
    if result != "converged":
        assert code in text.stdout  # the text summary names the AWS code too
