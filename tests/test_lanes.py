"""The daemon's sending lanes under concurrency (issue 12): a pool of threads that grows
with the accounts due up to the ceiling (TMINUS_CONCURRENCY), each account's posts in
order across claimed batches, every post recorded once, and the housekeeping thread
running while a burst is in flight. Behaviour only: nothing here is timed."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bench.common import seed_queue
from jobs.outgoing import Outgoing, Receipt
from scheduler import defaults, dispatch
from scheduler import worker as worker_module
from scheduler.clock import SystemClock
from scheduler.daemon import Daemon, Worker
from scheduler.db import make_engine, session, upgrade
from scheduler.dispatch import reap_leases
from scheduler.models import Account, Post, PostState
from scheduler.publishers import Publishers
from scheduler.settings import Settings

WAIT = 20.0     # seconds a gate waits at most: only a broken daemon gets near it


class Gate:
    """A publisher for every account that notes who sends what, on which thread, and
    holds each request until `ready()` says the burst has reached the state the test
    wants (e.g. as many requests in flight as there should be)."""

    def __init__(self, ready: Callable[[Gate], bool]) -> None:
        self.ready = ready
        self.changed = threading.Condition()
        self.in_flight = 0
        self.peak = 0
        self.sent: list[tuple[str, int]] = []          # (account, post id) in send order
        self.threads: set[str] = set()
        self.timed_out = False

    platform = "mastodon"

    def publish(self, post: Outgoing) -> Receipt:
        with self.changed:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.threads.add(threading.current_thread().name)
            self.changed.notify_all()
            if not self.changed.wait_for(lambda: self.ready(self), timeout=WAIT):
                self.timed_out = True
            self.sent.append((post.account, post.post_id))
            self.in_flight -= 1
            self.changed.notify_all()
        return Receipt(remote_id=f"r{post.post_id}", url=None)

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        return None

    def close(self) -> None:
        pass


class GatedPublishers(Publishers):
    def __init__(self, engine: Engine, settings: Settings, gate: Gate) -> None:
        super().__init__(engine, settings, dry_run=False)
        self.gate = gate

    def for_account(self, account: Account) -> Any:
        return self.gate


def _world(tmp_path: Path, *, accounts: int, posts: int, concurrency: int,
           gate: Gate) -> tuple[Engine, Worker]:
    url = f"sqlite:///{tmp_path}/t.db"
    engine = make_engine(url)
    upgrade(engine)
    first = datetime.now(UTC) - timedelta(minutes=5)
    # post i on account i % accounts, due one millisecond apart: each account's due order
    # is its post ids' order, and its posts span several claimed batches
    # a real platform (the gate answers), its rate budget roomy
    seed_queue(engine, [first + timedelta(milliseconds=i) for i in range(posts)],
               accounts=accounts, platform="mastodon")
    settings = Settings(database_url=url, dryrun_outbox=tmp_path / "o.jsonl",
                        concurrency=concurrency)
    return engine, Worker(engine, settings, SystemClock(), GatedPublishers(engine, settings, gate))


def _published(engine: Engine) -> list[int]:
    with session(engine) as s:
        return sorted(p.id for p in s.exec(select(Post).where(Post.state == PostState.PUBLISHED))
                      if p.id is not None)


def test_the_pool_grows_with_the_accounts_due_and_stops_at_the_ceiling(tmp_path: Path) -> None:
    # 10 accounts due, a ceiling of 4: each request is held until 4 are in flight at
    # once; a fifth would have to come from a thread past the ceiling
    gate = Gate(lambda g: g.peak >= 4)
    engine, worker = _world(tmp_path, accounts=10, posts=10, concurrency=4, gate=gate)
    result = worker.tick(tidy=False)
    assert result.sent == 10 and not gate.timed_out
    assert gate.peak == 4
    assert len(gate.threads) == 4 and all(t.startswith("tminus-send") for t in gate.threads)
    assert _published(engine) == list(range(1, 11))


def test_fewer_accounts_than_the_ceiling_get_one_thread_each(tmp_path: Path) -> None:
    # 3 accounts, a ceiling of 50: all three go at once, on three threads, no more
    gate = Gate(lambda g: g.peak >= 3)
    engine, worker = _world(tmp_path, accounts=3, posts=6, concurrency=50, gate=gate)
    assert worker.tick(tidy=False).sent == 6 and not gate.timed_out
    assert gate.peak == 3 and len(gate.threads) == 3
    assert _published(engine) == list(range(1, 7))


class SwitchGate(Gate):
    """A gate that notes the interpreter's switch interval while each request is made."""

    def __init__(self, ready: Callable[[Gate], bool]) -> None:
        super().__init__(ready)
        self.switch: set[float] = set()

    def publish(self, post: Outgoing) -> Receipt:
        self.switch.add(round(sys.getswitchinterval(), 6))
        return super().publish(post)


@pytest.mark.parametrize(("accounts", "busy"), [(defaults.BUSY_LANES + 4, True),
                                                (defaults.BUSY_LANES, False)])
def test_a_wide_burst_sends_at_the_busy_switch_interval_and_restores_it(
        tmp_path: Path, accounts: int, busy: bool) -> None:
    # every account's request is held until all are in flight: with more lanes than
    # BUSY_LANES side by side the interpreter hands the GIL on less often; a few lanes
    # keep the daemon's quick hand-off; either way it is as it was once they are done
    gate = SwitchGate(lambda g: g.peak >= accounts)
    _, worker = _world(tmp_path, accounts=accounts, posts=accounts, concurrency=64,
                       gate=gate)
    before = sys.getswitchinterval()
    sys.setswitchinterval(defaults.SWITCH_SECONDS)
    try:
        assert worker.tick(tidy=False).sent == accounts and not gate.timed_out
        assert sys.getswitchinterval() == pytest.approx(defaults.SWITCH_SECONDS)
    finally:
        sys.setswitchinterval(before)
    assert gate.peak == accounts
    wanted = defaults.BUSY_SWITCH_SECONDS if busy else defaults.SWITCH_SECONDS
    # the first lanes may start before the pool is wide enough to count as busy
    assert wanted in gate.switch
    if not busy:
        assert gate.switch == {defaults.SWITCH_SECONDS}


def test_each_accounts_posts_stay_in_order_across_batches(tmp_path: Path) -> None:
    # 250 posts on 5 accounts: three claimed batches, each account in all of them; the
    # first batch's requests are held until all five accounts are sending side by side
    gate = Gate(lambda g: g.peak >= 5 or len(g.sent) >= 5)
    engine, worker = _world(tmp_path, accounts=5, posts=250, concurrency=8, gate=gate)
    assert worker.tick(tidy=False).sent == 250 and not gate.timed_out
    assert gate.peak == 5
    by_account: dict[str, list[int]] = {}
    for account, post_id in gate.sent:
        by_account.setdefault(account, []).append(post_id)
    assert len(by_account) == 5
    for ids in by_account.values():
        assert ids == sorted(ids) and len(ids) == 50
    assert sorted(pid for _, pid in gate.sent) == list(range(1, 251))   # each once
    assert _published(engine) == list(range(1, 251))


def test_housekeeping_runs_while_a_burst_is_in_flight(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "HOUSEKEEPING_SECONDS", 0.05)
    rounds = {"n": 0}
    gate = Gate(lambda g: rounds["n"] >= 3)     # every request waits for housekeeping
    engine, worker = _world(tmp_path, accounts=20, posts=20, concurrency=8, gate=gate)
    housekeeping = worker.housekeeping

    def counted() -> int:
        with gate.changed:
            rounds["n"] += 1
            gate.changed.notify_all()
        return housekeeping()

    worker.housekeeping = counted       # type: ignore[method-assign]
    daemon = Daemon(worker)
    done = threading.Event()

    def stop_when_sent() -> None:
        with gate.changed:
            gate.changed.wait_for(lambda: len(gate.sent) >= 20, timeout=WAIT)
        done.set()
        daemon.stop("test over")

    stopper = threading.Thread(target=stop_when_sent, daemon=True)
    stopper.start()
    daemon.run()        # here: it sets signal handlers, which only the main thread may
    stopper.join(WAIT)
    assert done.is_set() and not gate.timed_out
    assert _published(engine) == list(range(1, 21))


# -- a batch that breaks off: nothing stays held (the lease renewer would keep it
# `sending` until the daemon stops), nothing is sent twice --------------------------------

def _states(engine: Engine) -> dict[int, tuple[PostState, int, datetime | None]]:
    with session(engine) as s:
        return {p.id: (p.state, p.attempt, p.lease_until) for p in s.exec(select(Post))
                if p.id is not None}


def _renewed_and_reaped(engine: Engine, worker: Worker) -> dict[int, tuple[PostState, int,
                                                                           datetime | None]]:
    """What the lease renewer and then, once every lease has run out, the reaper make
    of the posts: a post still held would have its lease renewed past the reaping."""
    before = _states(engine)
    worker.renew_held()
    assert _states(engine) == before        # nothing is held any more: nothing renewed
    later = datetime.now(UTC) + timedelta(seconds=worker.settings.lease_seconds + 1)
    reap_leases(engine, now=later, owner="reaper")
    return _states(engine)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_an_attempt_that_breaks_off_is_let_go_and_the_rest_given_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, concurrency: int) -> None:
    # one account, three posts: the first goes out and is recorded; the second's
    # attempt raises after its request went out (its outcome is unknown); the third
    # was never tried
    gate = Gate(lambda g: True)
    engine, worker = _world(tmp_path, accounts=1, posts=3, concurrency=concurrency, gate=gate)
    real_send = dispatch.send

    def breaks_on_2(*args: Any, **kwargs: Any) -> Any:
        outcome = real_send(*args, **kwargs)
        if args[1].post_id == 2:
            raise RuntimeError("the database went away mid-attempt")
        return outcome

    monkeypatch.setattr(worker_module, "send", breaks_on_2)
    with pytest.raises(RuntimeError, match="went away"):
        worker.tick(tidy=False)
    assert [pid for _, pid in gate.sent] == [1, 2]
    states = _renewed_and_reaped(engine, worker)
    assert states[1][0] == PostState.PUBLISHED
    assert states[2][0] == PostState.UNKNOWN         # looked up, never sent blindly again
    assert states[3][:2] == (PostState.QUEUED, 0)    # untried: back in the queue as it was


def test_a_record_that_fails_lets_its_posts_go_to_be_looked_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the posts are out on the platform; their record fails: given back they would be
    # sent again, so they are only let go (reaped as unknown, then looked up)
    gate = Gate(lambda g: True)
    engine, worker = _world(tmp_path, accounts=2, posts=4, concurrency=4, gate=gate)

    def fails(*args: Any, **kwargs: Any) -> list[int]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(worker_module, "record_many", fails)
    with pytest.raises(RuntimeError, match="disk full"):
        worker.tick(tidy=False)
    assert sorted(pid for _, pid in gate.sent) == [1, 2, 3, 4]
    states = _renewed_and_reaped(engine, worker)
    assert {s for s, _, _ in states.values()} == {PostState.UNKNOWN}


def test_a_batch_whose_proof_fails_goes_back_untried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(lambda g: True)
    engine, worker = _world(tmp_path, accounts=3, posts=3, concurrency=4, gate=gate)

    def fails(*args: Any, **kwargs: Any) -> set[int]:
        raise RuntimeError("connection reset")

    monkeypatch.setattr(worker_module, "prove", fails)
    with pytest.raises(RuntimeError, match="connection reset"):
        worker.tick(tidy=False)
    assert gate.sent == []
    states = _renewed_and_reaped(engine, worker)
    assert {s[:2] for s in states.values()} == {(PostState.QUEUED, 0)}
