"""`reconciler.wait.wait_for_captures` in-process, against moto with the fidelity layer.

Plans are built and applied the real way; the poll interval is shortened so that captures
of a tenth of a second are followed to the end in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from reconciler import OWNERSHIP_TAG_KEY, wait
from reconciler.apply import AppliedItem, Result, apply_plan
from reconciler.aws import Clients
from reconciler.wait import wait_for_captures
from tests.fidelity import Fidelity, FidelityConfig
from tests.inprocess import (
    REGION,
    by_name,
    live,
    plan_for,
    spec,
)

OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
WS_B = "ws-0b1b2c3d4"
CAPTURE = 0.1  # seconds a capture takes


@pytest.fixture
def fidelity_config() -> FidelityConfig:
    return FidelityConfig(capture_seconds=CAPTURE)


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wait, "FIRST_POLL", 0.02)
    monkeypatch.setattr(wait, "MAX_POLL", 0.05)


class Reports:
    """The wait's progress reports: (names and states waited for, elapsed) each time."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], float]] = []

    def __call__(self, items: Sequence[AppliedItem], elapsed: float) -> None:
        self.seen.append(({i.name: i.state or i.result.value for i in items}, elapsed))


def test_same_source_creates_run_in_turn_and_other_sources_at_once(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    fidelity.add_workspace(REGION, WS_B)
    plan = plan_for(
        tmp_path,
        clients,
        spec("a-1", WS_A, {"n": "1"}),
        spec("a-2", WS_A, {"n": "2"}),
        spec("b-1", WS_B),
        spec("a-3", WS_A, {"n": "3"}),
    )
    applied = apply_plan(plan, clients)
    assert [i.result for i in applied.items] == [
        Result.CREATED,
        Result.DEFERRED,
        Result.CREATED,
        Result.DEFERRED,
    ]
    reports = Reports()
    outcome = wait_for_captures(applied, clients, timeout=30, report=reports)

    assert outcome.timed_out == ()
    done = by_name(outcome.applied)
    assert {n: (i.result, i.state) for n, i in done.items()} == {
        name: (Result.CREATED, "AVAILABLE") for name in ("a-1", "a-2", "b-1", "a-3")
    }
    assert {n: i["state"] for n, i in live(fidelity).items()} == dict.fromkeys(done, "AVAILABLE")
    assert live(fidelity)["a-3"]["tags"] == {"n": "3", **OWN}
    assert not outcome.applied.failed
    assert not outcome.applied.work_left
    # Never two captures of WS_A at once, and the deferred ones in spec order.
    for waited, _ in reports.seen:
        capturing = [n for n, state in waited.items() if n.startswith("a-") and state == "PENDING"]
        assert len(capturing) <= 1, waited
    first_pending = {
        name: next(k for k, (w, _) in enumerate(reports.seen) if w.get(name) == "PENDING")
        for name in ("a-1", "a-2", "a-3")
    }
    assert first_pending["a-1"] < first_pending["a-2"] < first_pending["a-3"]
    assert reports.seen[-1][0] == {}  # the last report: nothing left to wait for


@pytest.mark.parametrize("fidelity_config", [FidelityConfig(capture_seconds=0)])
def test_timeout_returns_the_images_still_pending_and_the_deferred_ones(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    plan = plan_for(tmp_path, clients, spec("slow", WS_A), spec("behind", WS_A))
    applied = apply_plan(plan, clients)
    ticks = iter(range(1000))
    outcome = wait_for_captures(applied, clients, timeout=5, clock=lambda: float(next(ticks)))

    assert [(i.name, i.state, i.result) for i in outcome.timed_out] == [
        ("slow", "PENDING", Result.CREATED),
        ("behind", None, Result.DEFERRED),
    ]
    assert set(live(fidelity)) == {"slow"}


@pytest.mark.parametrize("fidelity_config", [FidelityConfig(capture_seconds=0)])
def test_a_capture_ending_in_error_fails_its_item_with_the_code_and_message(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    applied = apply_plan(plan_for(tmp_path, clients, spec("breaks", WS_A)), clients)
    image_id = by_name(applied)["breaks"].image_id
    assert image_id is not None
    fidelity.finish_capture(REGION, image_id, state="ERROR", error_code="E1",
                            error_message="disk full")  # fmt: skip
    outcome = wait_for_captures(applied, clients, timeout=30)

    item = by_name(outcome.applied)["breaks"]
    assert item.result is Result.FAILED
    assert item.state == "ERROR"
    assert item.error is not None
    assert "E1: disk full" in item.error
    assert outcome.applied.failed


def test_a_replacement_deferred_behind_a_same_source_create_runs_in_turn(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    failed = fidelity.add_image(REGION, "broken", "Image broken", OWN, "ERROR", error_code="E1")
    plan = plan_for(tmp_path, clients, spec("fresh", WS_A), spec("broken", WS_A, {"t": "1"}))
    applied = apply_plan(plan.model_copy(update={"replace_failed": True}), clients)
    assert by_name(applied)["broken"].result is Result.DEFERRED
    assert applied.work_left  # the failed image is still there: not converged
    assert live(fidelity)["broken"]["id"] == failed

    outcome = wait_for_captures(applied, clients, timeout=30)
    assert outcome.timed_out == ()
    broken = by_name(outcome.applied)["broken"]
    assert (broken.result, broken.state) == (Result.CREATED, "AVAILABLE")
    assert broken.image_id == live(fidelity)["broken"]["id"] != failed
    assert live(fidelity)["broken"]["tags"] == {"t": "1", **OWN}


def test_an_interruption_stops_the_wait_at_once(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_workspace(REGION, WS_A)
    applied = apply_plan(plan_for(tmp_path, clients, spec("a", WS_A), spec("b", WS_A)), clients)
    clients.stop.set()
    outcome = wait_for_captures(applied, clients, timeout=30)
    assert outcome.timed_out == ()
    assert by_name(outcome.applied)["b"].result is Result.DEFERRED
    assert set(live(fidelity)) == {"a"}
