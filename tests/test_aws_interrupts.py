"""How the AWS layer stops: work abandoned once interrupted, with real threads and pools
(the end-to-end tests in tests/e2e/test_interrupts.py signal the real command)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from reconciler.aws import IN_FLIGHT_GRACE, AwsSettings, Clients, gather, until_stopped
from reconciler.errors import Interrupted

SLACK = 0.5  # seconds a loaded machine may add to a wait


@pytest.fixture
def hang() -> Iterator[threading.Event]:
    """Released at the end of the test: what waits on it stands for a call that hangs."""
    released = threading.Event()
    yield released
    released.set()


def test_no_note_is_printed_once_the_run_is_interrupted() -> None:
    lines: list[str] = []
    clients = Clients(AwsSettings(region="eu-west-1"), notify=lines.append)
    clients.notify("Retrying before")
    clients.interrupt(lambda: lines.append("Interrupted"))
    clients.interrupt(lambda: lines.append("Interrupted again"))  # said once
    clients.notify("Retrying after")
    assert lines == ["Retrying before", "Interrupted"]
    assert clients.stop.is_set()


def test_gather_gives_the_results_in_order() -> None:
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(lambda n=n: (time.sleep(0.01 * (4 - n)), n)[1]) for n in range(4)]
        assert gather(futures, range(4), threading.Event()) == [0, 1, 2, 3]


def test_reads_in_flight_are_abandoned_at_once(hang: threading.Event) -> None:
    stop = threading.Event()
    pool = ThreadPoolExecutor(2)
    futures = [pool.submit(hang.wait) for _ in range(3)]
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        gather(futures, range(3), stop)
    assert time.monotonic() - started < 0.1 + SLACK  # no grace for reads
    pool.shutdown(wait=False, cancel_futures=True)


def test_changes_in_flight_get_the_grace_then_are_abandoned(hang: threading.Event) -> None:
    """Three threads: two changes hang, one answers soon after the signal; of the two
    queued, one then takes the free thread and hangs, the other never starts. The answer
    counts; the hung ones are abandoned as started, the last as never started."""
    stop = threading.Event()
    pool = ThreadPoolExecutor(3)

    def soon() -> str:
        stop.wait()
        time.sleep(IN_FLIGHT_GRACE / 4)
        return "made"

    futures = [pool.submit(hang.wait), pool.submit(soon), pool.submit(hang.wait)]
    futures += [pool.submit(hang.wait), pool.submit(hang.wait)]  # queued
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    results = gather(futures, "abcde", stop, lambda item, running: (item, running))
    took = time.monotonic() - started
    assert results == [("a", True), "made", ("c", True), ("d", True), ("e", False)]
    assert 0.1 + IN_FLIGHT_GRACE - SLACK < took < 0.1 + IN_FLIGHT_GRACE + SLACK
    pool.shutdown(wait=False, cancel_futures=True)


def test_until_stopped_returns_the_result_or_raises_the_error_of_the_work() -> None:
    assert until_stopped(lambda: 42, threading.Event()) == 42

    def fails() -> None:
        raise ValueError("the work's own error")

    with pytest.raises(ValueError, match="the work's own error"):
        until_stopped(fails, threading.Event())


@pytest.mark.parametrize("grace", [0.0, 0.5])
def test_until_stopped_abandons_hung_work_after_the_grace(
    hang: threading.Event, grace: float
) -> None:
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        until_stopped(hang.wait, stop, grace)
    took = time.monotonic() - started
    assert 0.1 + grace <= took + 0.06 < 0.1 + grace + SLACK


def test_until_stopped_keeps_work_that_ends_within_the_grace() -> None:
    stop = threading.Event()

    def work() -> str:
        stop.set()  # the signal, then the work ends soon after
        time.sleep(0.2)
        return "summary"

    assert until_stopped(work, stop, grace=1.0) == "summary"
