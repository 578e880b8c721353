"""The daemon's wait and wake: posts claimed ahead of their instant and sent at it (never
before), at most a batch held so, given back on a stop, held by a pause begun after the
claim; a real daemon waking for the next post without a poll, and for a post moved
earlier. Behaviour only: no test here times anything."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from scheduler import defaults, queue
from scheduler.clock import SystemClock, VirtualClock
from scheduler.daemon import AFTER_INSTANT, Daemon, Worker
from scheduler.db import session
from scheduler.dispatch import claim
from scheduler.models import Post, PostState
from scheduler.notify import notify
from scheduler.planner import plan
from scheduler.publishers import Publishers
from scheduler.service import approve
from scheduler.service.pauses import Target, pause
from scheduler.settings import Settings
from tests.conftest import CampaignFactory, simple_toml
from tests.test_queue import START, _posts, _same_time_posts, _worker

S = PostState
AHEAD = timedelta(seconds=defaults.CLAIM_AHEAD_SECONDS)


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    return any_engine


def _approved(engine: Engine, make_campaign: CampaignFactory, n: int) -> datetime:
    """`n` approved posts on one account, all due at one instant; returns it."""
    plan(engine, make_campaign(simple_toml(posts=_same_time_posts(n))), now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    return _posts(engine)[0].next_attempt_at


def _states(engine: Engine) -> list[PostState]:
    return [p.state for p in _posts(engine)]


# -- the worker, on a virtual clock -------------------------------------------------------


def test_a_post_claimed_ahead_goes_out_at_its_instant_not_before(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    due = _approved(engine, make_campaign, 3)
    clock = VirtualClock(due - AHEAD / 2)
    w, pub = _worker(engine, clock)
    w.ahead = AHEAD
    assert w.next_wake() == clock.now()             # inside the claim's reach already
    w.tick()
    assert _states(engine) == [S.SENDING] * 3 and pub.calls == 0
    assert w.send_ready() == 0 and pub.calls == 0   # claimed, and waiting for the instant
    clock.set(due - timedelta(microseconds=1))
    assert w.send_ready() == 0 and pub.calls == 0
    clock.set(due)
    assert w.send_ready() == 3 and pub.calls == 3
    w.book_keep()                                   # the record comes after the requests
    assert _states(engine) == [S.PUBLISHED] * 3
    assert all(line["at"] >= line["due"] for line in pub.inner.sent)


def test_the_book_keeping_keeps_out_of_an_instant_until_its_post_is_sent(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    due = _approved(engine, make_campaign, 1)
    clock = VirtualClock(due - AHEAD / 2)
    w, pub = _worker(engine, clock)
    daemon = Daemon(w)                              # claims ahead
    w.tick()
    clock.set(due - timedelta(milliseconds=1))
    assert daemon.quiet_for() > 0                   # the instant is near: no round now
    clock.set(due + timedelta(milliseconds=5))
    assert daemon.quiet_for() > 0                   # past it and not yet sent: still none
    clock.set(due + timedelta(seconds=AFTER_INSTANT * 2))
    assert daemon.quiet_for() == 0                  # a sender that never comes: bounded
    clock.set(due + timedelta(milliseconds=5))
    assert w.send_ready() == 1 and pub.calls == 1
    assert daemon.quiet_for() == 0                  # sent: the round may start


def test_the_daemon_wakes_ahead_of_the_next_post_to_claim_it(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    due = _approved(engine, make_campaign, 1)
    clock = VirtualClock(due - timedelta(seconds=1))
    w, _ = _worker(engine, clock, poll_seconds=60)
    assert w.next_wake() == due                    # --once and rehearsal: at the instant
    w.ahead = AHEAD
    assert w.next_wake() == due - AHEAD            # the daemon: a claim ahead of it


def test_at_most_a_batch_is_held_claimed_ahead(engine: Engine, make_campaign: CampaignFactory,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    due = _approved(engine, make_campaign, 5)
    monkeypatch.setattr(defaults, "CLAIM_BATCH", 2)
    clock = VirtualClock(due - AHEAD / 2)
    w, pub = _worker(engine, clock)
    w.ahead = AHEAD
    w.tick()
    w.tick()                                        # held in full: nothing more is taken
    assert sorted(_states(engine)) == sorted([S.SENDING] * 2 + [S.QUEUED] * 3)
    clock.set(due)
    assert w.send_ready() == 2
    w.tick()                        # due now: claimed and sent at once, batch after batch
    w.book_keep()
    assert _states(engine) == [S.PUBLISHED] * 5 and pub.calls == 5
    assert len({line["post_id"] for line in pub.inner.sent}) == 5


def test_the_due_select_takes_at_most_its_limit(engine: Engine,
                                                make_campaign: CampaignFactory) -> None:
    due = _approved(engine, make_campaign, 5)
    got = claim(engine, now=due, owner="test", lease=timedelta(minutes=2), limit=2)
    assert len(got) == 2 and sorted(_states(engine)).count(S.SENDING) == 2


def test_a_daemon_back_after_a_long_outage_expires_the_stale_posts_in_bounded_rounds(
        engine: Engine, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    _approved(engine, make_campaign, 5)
    monkeypatch.setattr(queue, "EXPIRE_BATCH", 2)
    rounds: list[int] = []
    real = queue.expire

    def counted(*args: Any, **kw: Any) -> list[int]:
        got = real(*args, **kw)
        rounds.append(len(got))
        return got

    monkeypatch.setattr(queue, "expire", counted)
    late = max(p.not_after for p in _posts(engine)) + timedelta(seconds=1)
    assert len(queue.expire_stale(engine, late, "test")) == 5
    assert rounds == [2, 2, 1] and _states(engine) == [S.EXPIRED] * 5


def test_stopping_gives_back_what_was_claimed_ahead_untried(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    due = _approved(engine, make_campaign, 2)
    clock = VirtualClock(due - AHEAD / 2)
    w, pub = _worker(engine, clock)
    w.ahead = AHEAD
    w.tick()
    w.give_back_ready()
    posts = _posts(engine)
    assert [p.state for p in posts] == [S.QUEUED] * 2 and [p.attempt for p in posts] == [0, 0]
    assert all(p.lease_owner is None for p in posts)
    clock.set(due)
    assert w.send_ready() == 0
    assert w.tick().sent == 2 and pub.calls == 2     # each goes out once, later


def test_a_pause_begun_after_the_claim_ahead_still_holds_the_post(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    due = _approved(engine, make_campaign, 2)
    clock = VirtualClock(due - AHEAD / 2)
    w, pub = _worker(engine, clock)
    w.ahead = AHEAD
    w.tick()
    pause(engine, Target(everything=True), reason="news broke", by="Ana", now=clock.now())
    w.book_keep()                   # what the daemon's loop does before the next instant
    clock.set(due)
    w.send_ready()
    assert pub.calls == 0 and _states(engine) == [S.QUEUED] * 2


# -- a real daemon, on the real clock -----------------------------------------------------


def _daemon(engine: Engine, tmp_path: Path) -> tuple[Daemon, Path]:
    """A dry-run daemon whose poll cap (ten minutes) is far beyond any test's patience:
    whatever it sends within the test was woken for, not polled for."""
    outbox = tmp_path / "outbox.jsonl"
    settings = Settings(dryrun_outbox=outbox, dry_run=True, poll_seconds=600)
    worker = Worker(engine, settings, SystemClock(), Publishers(engine, settings, dry_run=True))
    return Daemon(worker), outbox


def _move(engine: Engine, when: datetime, post_id: int | None = None) -> None:
    """Move the queued posts (or one) to `when`."""
    with session(engine) as s:
        s.execute(sa.update(Post).where(col(Post.state) == S.QUEUED,
                                        sa.true() if post_id is None else col(Post.id) == post_id)
                  .values(due_at=when, next_attempt_at=when))


def _run_until_sent(daemon: Daemon, outbox: Path, n: int,
                    meanwhile: Callable[[], None] = lambda: None) -> list[dict[str, str]]:
    """Run `daemon` (in this thread: it takes the signals) until `n` lines are out."""
    lines: list[dict[str, str]] = []
    stopped = threading.Event()

    def watch() -> None:
        meanwhile()
        while not stopped.wait(0.05):
            if outbox.exists():
                lines[:] = [json.loads(x) for x in outbox.read_text().splitlines()]
            if len(lines) >= n:
                break
        daemon.stop("the test has seen its posts")

    watcher = threading.Thread(target=watch, daemon=True)
    limit = threading.Timer(60, lambda: daemon.stop("the test gave up"))
    watcher.start()
    limit.start()
    try:
        daemon.run()
    finally:
        stopped.set()
        limit.cancel()
        watcher.join()
    return lines


def test_the_daemon_wakes_for_the_next_post_without_a_poll(
        engine: Engine, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    _approved(engine, make_campaign, 3)
    now = datetime.now(UTC)
    # one after the other: the later ones go out only if the daemon wakes for them
    ids = [p.id for p in _posts(engine) if p.id is not None]
    dues = {post_id: now + timedelta(seconds=1 + i) for i, post_id in enumerate(ids)}
    for post_id, due in dues.items():
        _move(engine, due, post_id)
    daemon, outbox = _daemon(engine, tmp_path)
    lines = _run_until_sent(daemon, outbox, 3)
    assert sorted(int(x["post_id"]) for x in lines) == sorted(dues)
    assert all(datetime.fromisoformat(x["at"]) >= dues[int(x["post_id"])] for x in lines)
    assert _states(engine) == [S.PUBLISHED] * 3


def test_a_post_moved_earlier_is_sent_at_its_new_time(
        engine: Engine, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    _approved(engine, make_campaign, 1)
    _move(engine, datetime.now(UTC) + timedelta(hours=1))
    daemon, outbox = _daemon(engine, tmp_path)
    moved: list[datetime] = []

    def move_it() -> None:
        for _ in range(3000):       # its first round over, it sleeps until the poll cap
            if daemon._took or daemon.worker.stopping.wait(0.02):
                break
        moved.append(datetime.now(UTC) + timedelta(seconds=1))
        _move(engine, moved[0])
        # PostgreSQL: the NOTIFY every change sends; SQLite has none: what it would do
        notify(engine)
        if engine.dialect.name != "postgresql":
            daemon.wake()

    [line] = _run_until_sent(daemon, outbox, 1, move_it)
    assert datetime.fromisoformat(line["at"]) >= moved[0]
    assert _states(engine) == [S.PUBLISHED]


def test_the_next_wake_up_walks_the_queue_in_due_order(tmp_path: Path) -> None:
    """With a million posts queued, the next wake-up must read the first sendable post
    on the (state, next_attempt_at) index, not every queued post not yet stale."""
    from sqlmodel import func

    from scheduler.db import make_engine, upgrade
    from scheduler.queue import sendable
    sqlite = make_engine(f"sqlite:///{tmp_path}/plan.db")
    upgrade(sqlite)
    q = sa.select(func.min(Post.next_attempt_at)).where(*sendable(datetime.now(UTC)))
    sql = str(q.compile(sqlite, compile_kwargs={"literal_binds": True}))
    with sqlite.connect() as conn:
        plan_rows = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    assert plan_rows[0].startswith("SEARCH post USING INDEX ix_post_due"), plan_rows


def test_a_claim_finds_its_rows_by_id_whatever_the_size_of_the_queue(
        tmp_path: Path, make_campaign: CampaignFactory) -> None:
    """Every statement a claim runs on the post table looks its rows up by id or walks
    the due index in order: none reads every queued post (a second a claim at
    1,000,000 queued)."""
    from scheduler.db import make_engine, upgrade
    sqlite = make_engine(f"sqlite:///{tmp_path}/claim.db")
    upgrade(sqlite)
    due = _approved(sqlite, make_campaign, 3)
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("UPDATE POST", "SELECT")):
            seen.append((statement, parameters))

    sa.event.listen(sqlite, "before_cursor_execute", capture)
    try:
        assert len(claim(sqlite, now=due, owner="test", lease=timedelta(minutes=2))) == 3
    finally:
        sa.event.remove(sqlite, "before_cursor_execute", capture)
    updates = [x for x in seen if x[0].lstrip().upper().startswith("UPDATE POST")]
    assert updates
    with sqlite.connect() as conn:
        for statement, parameters in seen:
            plan_rows = [row[3] for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters)]
            # every post in a state (state=? alone), or every post not yet stale
            walks = [r for r in plan_rows if r.startswith("SCAN post")
                     or (r.startswith("SEARCH post ") and r.endswith("(state=?)"))
                     or "ix_post_expiry" in r]
            assert not walks, (statement, plan_rows)
