"""How a run orders its work so that the reads a plan waits for are not held up: what makes
a plan over many accounts take about as long as one account's (issue 18's bound, measured
by benchmarks/bench_accounts.py).

- Discovery answers the regions the run reads first (`early`), then asks the others.
- The others are asked on one bounded pool shared by every account of the run.
- Each region's client is made once, under a lock of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import boto3
import pytest

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.aws import BACKGROUND, AwsSettings, Clients
from reconciler.errors import Interrupted
from reconciler.inventory import Discovery, discover
from tests.fidelity import Fidelity
from tests.inprocess import REGION

OTHER = "us-east-1"
OWN = {OWNERSHIP_TAG_KEY: "true"}


@pytest.fixture
def clients(fidelity: Fidelity) -> Iterator[Clients]:
    made = Clients(AwsSettings(region=REGION, api_rate=0, tagging_rate=0))
    try:
        yield made
    finally:
        made.close()


def test_discovery_answers_the_regions_the_run_reads_before_asking_any_other(
    fidelity: Fidelity, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    fidelity.add_image(OTHER, "copy", tags=OWN)
    fidelity.add_image("ap-south-1", "left-behind", tags=OWN)
    early: Future[Discovery] = Future()
    seen_when_the_others_were_asked: list[Discovery] = []
    ask_the_others = clients.in_background

    def in_background(fn, places):  # type: ignore[no-untyped-def]
        assert early.done(), "the others were asked before the early answer was given"
        seen_when_the_others_were_asked.append(early.result())
        assert OTHER not in places
        assert REGION not in places
        return ask_the_others(fn, places)

    monkeypatch.setattr(clients, "in_background", in_background)
    found = discover(clients, REGION, first=[REGION, OTHER], early=early)

    assert set(early.result().owned) == {REGION, OTHER}
    assert early.result().types_in(OTHER) == {"workspaceimage"}
    assert seen_when_the_others_were_asked == [early.result()]
    assert found.regions == {OTHER, "ap-south-1"}
    assert set(found.owned) == set(clients.workspaces_regions(REGION))


def test_discovery_refused_at_home_answers_early_too(fidelity: Fidelity, clients: Clients) -> None:
    fidelity.deny_tagging()
    early: Future[Discovery] = Future()
    assert discover(clients, REGION, first=[OTHER], early=early).denied
    assert early.result().denied


def test_every_account_asks_the_other_regions_on_one_bounded_pool(clients: Clients) -> None:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    accounts = [clients.for_account(f"{n:012d}", session) for n in range(3)]
    lock = threading.Lock()
    running, most, threads = 0, 0, set()

    def task(place: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.current_thread().name)
        time.sleep(0.02)
        with lock:
            running -= 1
        return place * 2

    answers: dict[str, dict[int, int]] = {}

    def ask(account: Clients) -> None:
        answers[account.account_key] = account.in_background(task, list(range(2 * BACKGROUND)))

    askers = [threading.Thread(target=ask, args=(a,)) for a in accounts]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(timeout=30)
    assert all(a == {p: p * 2 for p in range(2 * BACKGROUND)} for a in answers.values())
    assert len(answers) == 3
    assert most == BACKGROUND  # the pool was full, and never more than full
    assert len(threads) == BACKGROUND
    assert all(name.startswith("background") for name in threads)


def test_background_work_is_abandoned_once_the_run_stops(clients: Clients) -> None:
    release = threading.Event()

    def task(place: int) -> int:
        release.wait(10)
        return place

    stopper = threading.Timer(0.1, clients.stop.set)
    stopper.start()
    started = time.monotonic()
    try:
        with pytest.raises(Interrupted):
            clients.in_background(task, [1, 2, 3])
    finally:
        release.set()
        stopper.cancel()
    assert time.monotonic() - started < 2


def test_each_region_client_is_made_once_and_never_waits_for_another_region_s(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Region A's client is slow to make (another thread holds the GIL, say): region B's is
    made meanwhile, and every caller of A gets the one client A has (one pace bucket)."""
    make = clients._client
    in_a, go_on = threading.Event(), threading.Event()
    made: list[str] = []

    def slow(region: str, *, retries: bool):  # type: ignore[no-untyped-def]
        made.append(region)
        if region == REGION:
            in_a.set()
            assert go_on.wait(10)
        return make(region, retries=retries)

    monkeypatch.setattr(clients, "_client", slow)
    got: list[object] = []
    callers = [
        threading.Thread(target=lambda: got.append(clients.region(REGION))) for _ in range(4)
    ]
    for caller in callers:
        caller.start()
    assert in_a.wait(10)
    other = clients.region(OTHER)  # not held up behind region A's
    assert other.region == OTHER
    go_on.set()
    for caller in callers:
        caller.join(timeout=10)
    assert len(got) == 4
    assert all(g is got[0] for g in got)
    assert made.count(REGION) == 1
    assert clients.region(REGION) is got[0]
