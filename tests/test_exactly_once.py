"""Exactly once, in-process: ownership proved right before each request, leases renewed
while a request is in flight, time from the database, a host clock held to as well,
an account whose adapter cannot be built held alone, and the look-up before a late
retry on a platform whose repeat protection is short-lived. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from jobs.errors import UnknownOutcome
from jobs.outgoing import Outgoing, Receipt
from scheduler import approval
from scheduler.clock import AnchoredClock, SystemClock, VirtualClock
from scheduler.daemon import Daemon, Worker
from scheduler.db import session
from scheduler.models import Account, Event, Post, PostState
from scheduler.models import Daemon as DaemonRow
from scheduler.planner import plan
from scheduler.queue import Scope
from scheduler.service import approve, status
from tests.conftest import CampaignFactory, simple_toml
from tests.test_queue import DEADLINE, START, Scripted, _posts, _same_time_posts, _worker

S = PostState


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    return any_engine


def _ready(engine: Engine, make_campaign: CampaignFactory, n: int = 3, **kw: str) -> None:
    plan(engine, make_campaign(simple_toml(posts=_same_time_posts(n), **kw)), now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)


DUE = DEADLINE - timedelta(hours=1)


# -- the clocks ------------------------------------------------------------------------


def test_an_anchored_clock_counts_on_the_monotonic_clock_between_readings() -> None:
    mono = [100.0]
    source = [datetime(2030, 1, 1, 12, 0, tzinfo=UTC)]
    reads = []

    def read() -> datetime:
        reads.append(mono[0])
        return source[0]

    clock = AnchoredClock(read, every=60, monotonic=lambda: mono[0])
    mono[0] += 10
    assert clock.now() == source[0] + timedelta(seconds=10) and len(reads) == 1
    # the source is read again only after a minute; a failing source keeps the count
    source[0] += timedelta(seconds=75)          # the database moved 5 s further than we did
    mono[0] += 60
    assert clock.now() == source[0] and len(reads) == 2
    assert clock.last_jump == timedelta(seconds=5)

    def broken() -> datetime:
        raise OSError("database away")

    clock._source = broken
    mono[0] += 61
    assert clock.now() == source[0] + timedelta(seconds=61)


def test_the_test_clock_offset_file_steps_the_host_clock(tmp_path: Path) -> None:
    offset = tmp_path / "offset"
    offset.write_text("-30")
    clock = SystemClock(offset)
    assert abs((datetime.now(UTC) - clock.now()).total_seconds() - 30) < 1
    offset.write_text("+45.5")
    import os
    os.utime(offset, (1, 1))                    # a new mtime, as any write would give
    assert abs((clock.now() - datetime.now(UTC)).total_seconds() - 45.5) < 1


# -- ownership ---------------------------------------------------------------------------


def test_a_post_whose_lease_another_daemon_took_is_not_sent(engine: Engine,
                                                            make_campaign: CampaignFactory) -> None:
    _ready(engine, make_campaign, n=2)
    clock = VirtualClock(DUE)
    a, pub_a = _worker(engine, clock, lease_seconds=2.0, request_timeout=0.5)
    b, pub_b = _worker(engine, clock, lease_seconds=2.0, request_timeout=0.5)
    b.owner = "daemon-b"
    pub_b.inner = pub_a.inner                 # one platform, both daemons post to it
    pub_b.find = pub_a.inner.find             # type: ignore[method-assign]
    real = pub_a.publish

    def stalls_then_b_takes_over(post: Outgoing) -> Receipt:
        # the first request takes longer than the lease and nothing renews it (no
        # daemon threads here): B reaps both posts meanwhile
        receipt = real(post)
        clock.advance(3.0)
        b.tick()
        return receipt

    pub_a.publish = stalls_then_b_takes_over  # type: ignore[method-assign]
    a.tick()
    # A's second post was proved lost before its request: never sent from A
    assert pub_a.calls == 1
    clock.advance(3.0)
    b.tick()                                  # B looks both up: one is out, one is not
    sent = [line["post_id"] for line in pub_a.inner.sent]
    assert sorted(sent) == sorted(p.id for p in _posts(engine))   # each once
    assert {p.state for p in _posts(engine)} == {S.PUBLISHED}


def test_a_slow_request_keeps_its_lease_while_in_flight(engine: Engine,
                                                        make_campaign: CampaignFactory) -> None:
    _ready(engine, make_campaign, n=1)
    clock = VirtualClock(DUE)
    a, pub_a = _worker(engine, clock, lease_seconds=2.0, request_timeout=0.5)
    b, pub_b = _worker(engine, clock, lease_seconds=2.0, request_timeout=0.5)
    b.owner = "daemon-b"
    real = pub_a.publish

    def slow(post: Outgoing) -> Receipt:
        for _ in range(6):                  # 6 s in flight, three leases' worth...
            clock.advance(1.0)
            a.renew_held()                  # ...while the renewer thread keeps it ours
            b.tick()
        return real(post)

    pub_a.publish = slow  # type: ignore[method-assign]
    a.tick()
    assert pub_b.calls == 0 and len(pub_a.inner.sent) == 1
    [post] = _posts(engine)
    assert post.state == S.PUBLISHED
    with session(engine) as s:
        states = [e.to_state for e in s.exec(select(Event).where(Event.post_id == post.id))]
    assert S.UNKNOWN not in states            # never reaped


# -- time --------------------------------------------------------------------------------


def test_nothing_goes_out_once_the_host_clock_says_the_deadline_passed(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _ready(engine, make_campaign, n=1)
    db_time = VirtualClock(DEADLINE - timedelta(seconds=20))   # the database: 20 s to go
    host = VirtualClock(DEADLINE + timedelta(seconds=10))      # this host: 10 s too late
    w, pub = _worker(engine, db_time)
    w.wall = host
    assert w.next_wake() == db_time.now() + timedelta(seconds=w.settings.poll_seconds)
    w.tick()
    assert pub.calls == 0
    [post] = _posts(engine)
    assert post.state == S.QUEUED             # not expired on one host's word
    w.wall = VirtualClock(db_time.now())      # a host whose clock is right sends it
    w.tick()
    assert pub.calls == 1 and _posts(engine)[0].state == S.PUBLISHED


def test_a_slow_host_clock_does_not_send_after_the_deadline(engine: Engine,
                                                            make_campaign: CampaignFactory) -> None:
    _ready(engine, make_campaign, n=1)
    db_time = VirtualClock(DEADLINE + timedelta(seconds=20))   # the database: too late
    w, pub = _worker(engine, db_time)
    w.wall = VirtualClock(DEADLINE - timedelta(seconds=10))    # this host: 30 s slow
    w.tick()
    assert pub.calls == 0 and _posts(engine)[0].state == S.EXPIRED


# -- one account's trouble stays its own ---------------------------------------------------


def test_an_adapter_that_cannot_be_built_pauses_its_account_only(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _ready(engine, make_campaign, n=1)        # posts on "org"
    clock = VirtualClock(DUE)
    w, pub = _worker(engine, clock)
    good = w.publishers.for_account

    def builder(account: Account) -> object:
        if account.name == "org":
            raise ValueError("Bluesky PDS must be an http:// or https:// URL")
        return good(account)

    w.publishers.for_account = builder  # type: ignore[assignment,method-assign]
    w.tick()
    [post] = _posts(engine)
    assert post.state == S.QUEUED and post.attempt == 0 and pub.calls == 0
    with session(engine) as s:
        org = s.exec(select(Account).where(Account.name == "org")).one()
        reason = s.exec(select(Event.reason).where(Event.post_id == post.id)
                        .order_by(col(Event.id).desc())).first()
    assert org.paused_reason is not None and "https:// URL" in org.paused_reason
    assert reason is not None and "paused" in reason


def test_an_adapter_bug_is_an_unknown_outcome_and_pauses_the_account(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _ready(engine, make_campaign, n=2)
    clock = VirtualClock(DUE)
    w, pub = _worker(engine, clock, Scripted(clock, [KeyError("oops")]))
    w.tick()
    states = sorted(p.state for p in _posts(engine))
    assert pub.calls == 1 and states == [S.QUEUED, S.UNKNOWN]
    with session(engine) as s:
        assert s.exec(select(Account).where(Account.name == "org")).one().paused_reason


# -- a late retry is looked up first ------------------------------------------------------


def test_a_retry_long_after_an_unknown_outcome_looks_the_post_up_first(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _ready(engine, make_campaign, n=1)
    clock = VirtualClock(DUE - timedelta(hours=1))
    with session(engine) as s:     # the account is on a platform whose key is forgotten
        for acc in s.exec(select(Account)).all():
            acc.platform = "mastodon"
            s.add(acc)
        post = s.exec(select(Post)).one()
        post.due_at = post.next_attempt_at = clock.now()
        post.not_after = DEADLINE
        # ... and was approved as such (else the check before the request holds it back)
        assert post.approved is not None
        post.approved = {**post.approved,
                         "account": {**post.approved["account"], "platform": "mastodon"}}
        post.approved_hash = approval.digest(post.approved)
        s.add(post)
    w, pub = _worker(engine, clock, Scripted(clock, [UnknownOutcome("502 after accepting")]))
    w.tick()
    assert _posts(engine)[0].state == S.UNKNOWN
    # the look-up says absent (the platform's listing lagged), the post is queued again,
    # and an hour passes (the account was paused meanwhile, say) before the retry
    clock.advance(6)
    pub.found = None
    w.housekeeping()
    assert _posts(engine)[0].state == S.QUEUED
    clock.advance(55 * 60)
    out_there = Receipt(remote_id="109", url="https://social.example/@org/109")
    pub.found = out_there                     # it had gone out after all
    w.tick()
    assert pub.calls == 1                     # no second create
    p = _posts(engine)[0]
    assert (p.state, p.remote_id) == (S.PUBLISHED, "109")


def test_an_unknown_outcome_past_its_expiry_is_looked_up_never_expired_blindly(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _ready(engine, make_campaign, n=3)
    clock = VirtualClock(DUE)
    w, pub = _worker(engine, clock, Scripted(clock, [UnknownOutcome("503 after accepting")
                                                    for _ in range(3)]))
    w.tick(tidy=False)
    posts = _posts(engine)
    assert [p.state for p in posts] == [S.UNKNOWN] * 3
    ids = [p.id for p in posts if p.id is not None]
    answers: dict[int | None, Receipt | Exception | None] = {
        ids[0]: Receipt(remote_id="1", url="https://x.com/org/status/1"),   # it went out
        ids[1]: None,                                                      # provably not
        ids[2]: UnknownOutcome("X find: 503"),                             # cannot tell
    }
    looked_up: list[int] = []

    def find(post: Outgoing, since: datetime) -> Receipt | None:
        looked_up.append(post.post_id)
        answer = answers[post.post_id]
        if isinstance(answer, Exception):
            raise answer
        return answer

    pub.find = find  # type: ignore[method-assign]
    clock.set(DEADLINE + timedelta(minutes=1))      # past every post's not_after
    w.tick()                                        # expiry and look-up in one tick
    assert sorted(looked_up) == sorted(ids)
    got = {p.id: p for p in _posts(engine)}
    assert got[ids[0]].state == S.PUBLISHED and got[ids[0]].remote_id == "1"
    assert got[ids[1]].state == S.EXPIRED            # expired only once proven absent
    assert got[ids[2]].state == S.REVIEW
    assert "could not tell" in (_last_reason(engine, ids[2]) or "")
    assert pub.calls == 3                           # nothing sent again


def test_an_unknown_outcome_found_absent_goes_again_after_the_backoff_a_crash_at_once(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    """A platform answering every create with a 5xx is not hammered: absent on look-up,
    the post waits its backoff (30 s, 60 s, ...). A post whose daemon died goes at once."""
    _ready(engine, make_campaign, n=1)
    clock = VirtualClock(DUE)
    w, pub = _worker(engine, clock, Scripted(clock, [UnknownOutcome("X create tweet: 503")]))
    w.tick()
    assert _posts(engine)[0].state == S.UNKNOWN
    clock.advance(6)
    pub.found = None
    w.tick()                                   # looked up: absent; not sent again yet
    p = _posts(engine)[0]
    assert p.state == S.QUEUED and pub.calls == 1
    assert p.next_attempt_at == DUE + timedelta(seconds=30)
    assert "retry in 24 s" in (_last_reason(engine, p.id) or "")
    clock.set(DUE + timedelta(seconds=30))
    w.tick()
    assert pub.calls == 2 and _posts(engine)[0].state == S.PUBLISHED


def _last_reason(engine: Engine, post_id: int | None) -> str | None:
    with session(engine) as s:
        return s.exec(select(Event.reason).where(Event.post_id == post_id)
                      .order_by(col(Event.id).desc())).first()


# -- dry runs touch only dry-run accounts ---------------------------------------------------


def test_a_dry_run_leaves_real_accounts_posts_alone(engine: Engine,
                                                    make_campaign: CampaignFactory) -> None:
    accounts = """
        [accounts.org]
        platform = "dryrun"

        [accounts.partner]
        platform = "mastodon"
        credentials = "PARTNER"
    """
    plan(engine, make_campaign(simple_toml(accounts=accounts)), now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    clock = VirtualClock(DEADLINE - timedelta(minutes=5))
    w, _ = _worker(engine, clock)
    w.scope = Scope(dry_run_only=True)
    w.tick()
    with session(engine) as s:
        rows = s.exec(select(Post, Account).join(Account)).all()
    real = {p.state for p, a in rows if a.platform == "mastodon"}
    dry = {p.state for p, a in rows if a.platform == "dryrun"}
    assert real == {S.QUEUED} and S.PUBLISHED in dry      # nothing used up, nothing expired


# -- two daemons, one clock 30 s off, one slow request -------------------------------------


class _Offset:
    """A host's own clock: the database's time off by `seconds` (stepped by the test)."""

    def __init__(self, of: VirtualClock, seconds: float) -> None:
        self.of, self.seconds = of, seconds

    def now(self) -> datetime:
        return self.of.now() + timedelta(seconds=self.seconds)


def test_two_daemons_one_clock_30s_off_and_a_slow_request_send_nothing_twice(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    posts = "".join(f"""
        [[posts]]
        key = "p{i}"
        text = "post {i} {{{{ hashtags }}}}"
        accounts = ["org"]
        schedule = {{ at = "T-{60 - i // 2}m" }}
    """ for i in range(4))                    # two due at T-60m, two a minute later
    plan(engine, make_campaign(simple_toml(posts=posts)), now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    db = VirtualClock(min(p.due_at for p in _posts(engine)))
    a, pub_a = _worker(engine, db, lease_seconds=10.0, request_timeout=2.0)
    b, pub_b = _worker(engine, db, lease_seconds=10.0, request_timeout=2.0)
    a.owner, b.owner = "daemon-a", "daemon-b"
    a.wall, b.wall = _Offset(db, -30.0), _Offset(db, 0.0)    # A's host is 30 s slow
    pub_b.inner = pub_a.inner                 # one platform, both daemons post to it
    pub_b.find = pub_a.inner.find             # type: ignore[method-assign]
    real = pub_a.publish
    slow = [True]

    def a_is_slow(post: Outgoing) -> Receipt:
        if slow:                              # one request of 70 s (seven leases)
            slow.clear()
            for step in range(70):
                db.advance(1.0)
                if step % 2 == 0:
                    a.renew_held()            # A's renewer thread, every 2 s
                b.tick()                      # B works meanwhile: the later two are B's
        return real(post)

    pub_a.publish = a_is_slow  # type: ignore[method-assign]
    a.tick()
    for _ in range(3):
        db.advance(6.0)
        a.tick()
        b.tick()
    sent = [line["post_id"] for line in pub_a.inner.sent]
    assert sorted(sent) == sorted(p.id for p in _posts(engine) if p.id is not None)  # once each
    assert {p.state for p in _posts(engine)} == {S.PUBLISHED}
    assert pub_a.calls == 2 and pub_b.calls == 2       # each sent its own two


# -- a wall-clock step ---------------------------------------------------------------------


def test_a_wall_clock_step_back_and_forward_stops_nothing_and_sends_nothing_early(
        engine: Engine, make_campaign: CampaignFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The real daemon loop and its threads, the host's clock stepped 30 s back, then
    30 s forward: heartbeats go on through both, each post goes out when the database's
    clock says it is due, not before and not later than the next tick."""
    import threading

    from scheduler import defaults
    posts = "".join(f"""
        [[posts]]
        key = "p{i}"
        text = "post {i} {{{{ hashtags }}}}"
        accounts = ["org"]
        schedule = {{ at = "T-{60 - i}m" }}
    """ for i in range(2))
    plan(engine, make_campaign(simple_toml(posts=posts)), now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    due = [p.due_at for p in _posts(engine)]
    monkeypatch.setattr(defaults, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(defaults, "HOUSEKEEPING_SECONDS", 0.05)
    db = VirtualClock(due[0] - timedelta(seconds=5))
    w, pub = _worker(engine, db, poll_seconds=0.05)
    host = _Offset(db, 0.0)
    w.wall = host
    sent_at: list[datetime] = []
    real = pub.publish

    def publish(post: Outgoing) -> Receipt:
        sent_at.append(db.now())
        return real(post)

    pub.publish = publish  # type: ignore[method-assign]
    d = Daemon(w)
    beats: list[datetime] = []
    heartbeat = d.heartbeat

    def counting(stopped: bool = False) -> None:
        beats.append(db.now())
        heartbeat(stopped)

    d.heartbeat = counting  # type: ignore[method-assign]
    seen: dict[str, object] = {}

    def wait_for(check: object, limit: float = 10.0) -> bool:
        import time
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if callable(check) and check():
                return True
            time.sleep(0.02)
        return False

    def script() -> None:
        try:
            assert wait_for(lambda: len(beats) >= 2)
            host.seconds = -30.0                     # stepped back
            n = len(beats)
            seen["beats after the step back"] = wait_for(lambda: len(beats) >= n + 3)
            seen["nothing early"] = not sent_at
            db.set(due[0])                           # the first post falls due
            seen["first sent"] = wait_for(lambda: len(sent_at) == 1)
            host.seconds = +30.0                     # stepped forward, past the second
            n = len(beats)
            seen["beats after the step forward"] = wait_for(lambda: len(beats) >= n + 3)
            seen["second not early"] = len(sent_at) == 1
            db.set(due[1])
            seen["second sent"] = wait_for(lambda: len(sent_at) == 2)
        finally:
            d.stop("test over")

    helper = threading.Thread(target=script)
    helper.start()
    d.run()                                          # signal handlers: the main thread
    helper.join()
    assert seen == {"beats after the step back": True, "nothing early": True,
                    "first sent": True, "beats after the step forward": True,
                    "second not early": True, "second sent": True}
    assert sent_at == due                            # each exactly at its due time
    assert {p.state for p in _posts(engine)} == {S.PUBLISHED}


# -- alive and dead ----------------------------------------------------------------------


def test_status_tells_a_dead_daemon_from_a_live_one(engine: Engine) -> None:
    now = datetime.now(UTC)
    with session(engine) as s:
        for name, beat in (("live", now - timedelta(seconds=4)),
                           ("dead", now - timedelta(seconds=16)),
                           ("stopped", now)):
            s.add(DaemonRow(id=name, hostname="h", pid=1, started_at=now, beat_at=beat,
                            stopped_at=now if name == "stopped" else None))
    st = status(engine, now=now)
    assert [(d.id, d.alive) for d in st.daemons] == [("live", True), ("dead", False)]


def test_a_beat_after_the_last_one_does_not_bring_a_stopped_daemon_back(
        engine: Engine, tmp_path: Path) -> None:
    from scheduler.publishers import Publishers
    from scheduler.settings import Settings
    settings = Settings(dryrun_outbox=tmp_path / "o.jsonl", dry_run=True)
    w = Worker(engine, settings, SystemClock(), Publishers(engine, settings, dry_run=True))
    d = Daemon(w)
    d.heartbeat()
    d.heartbeat(stopped=True)
    d.heartbeat()                              # the heartbeat thread, late
    with session(engine) as s:
        assert s.get(DaemonRow, w.owner).stopped_at is not None  # type: ignore[union-attr]
    assert status(engine).daemons == []
