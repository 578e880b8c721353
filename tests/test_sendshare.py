"""The default number of sending processes: the host's cores shared by the daemons alive
on it (`scheduler.publishers.send_share`, read again every HEARTBEAT_SECONDS), while an
explicit TMINUS_SEND_PROCESS means exactly that many. The share read from the daemons
table with an injected clock; an account moved between children (or to the daemon's own
adapter) only between its calls, its posts going out once each and in order as the
share changes. Behaviour only: nothing here is timed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.common import seed_queue, table
from content.platforms import MastodonCredentials
from jobs.outgoing import Outgoing, Receipt
from scheduler import defaults
from scheduler.clock import VirtualClock
from scheduler.daemon import Daemon, Worker
from scheduler.db import make_engine, upgrade
from scheduler.models import Post
from scheduler.prefork import ForkServer
from scheduler.publishers import Publishers, send_share, split_cores
from scheduler.sendproc import ChildPublisher, SendingProcess
from scheduler.settings import Settings
from scheduler.tables import daemon as daemons
from tests.fakeplatform import FakePlatformServer
from tests.test_sendproc import on_fake_platforms

HOST = "host-a"
MY_PID = 4242
T0 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def _engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    return engine


def _daemon(engine: Engine, name: str, *, host: str = HOST, pid: int, started: datetime,
            beat: datetime, stopped: datetime | None = None, dry_run: bool = False) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(daemons).values(
            id=f"{host}:{pid}:{name}", hostname=host, pid=pid, started_at=started,
            beat_at=beat, stopped_at=stopped, sent=0, dry_run=dry_run))


def test_fewer_daemons_than_cores_split_them_more_send_in_their_own_processes() -> None:
    assert split_cores(2, 1, 0) == 2
    assert [split_cores(2, 2, r) for r in range(2)] == [0, 0]
    assert [split_cores(2, 4, r) for r in range(4)] == [0, 0, 0, 0]
    assert [split_cores(4, 3, r) for r in range(3)] == [2, 1, 1]
    assert [split_cores(8, 3, r) for r in range(3)] == [3, 3, 2]
    # the host's total is its cores while there are fewer daemons than cores
    assert all(sum(split_cores(c, n, r) for r in range(n)) == (c if n < c else 0)
               for c in range(0, 17) for n in range(1, 9))
    assert split_cores(0, 1, 0) == 0


def test_the_share_counts_live_daemons_of_this_host_only(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    now = T0 + timedelta(minutes=10)

    def share(cores: int = 4) -> tuple[int, int]:
        return send_share(engine, now, cores=cores, host=HOST, pid=MY_PID, alive=alive)

    gone: set[int] = set()

    def alive(pid: int) -> bool:
        return pid not in gone

    # alone (its first beat not written yet): every core
    assert share() == (4, 1)
    # daemons elsewhere, dead (no beat within HEARTBEAT_STALE_SECONDS), stopped, or dry
    # runs (they send nothing) do not count
    stale = now - timedelta(seconds=defaults.HEARTBEAT_STALE_SECONDS + 1)
    _daemon(engine, "other-host", host="host-b", pid=1, started=T0, beat=now)
    _daemon(engine, "dead", pid=2, started=T0, beat=stale)
    _daemon(engine, "stopped", pid=3, started=T0, beat=now, stopped=now)
    _daemon(engine, "dry", pid=4, started=T0, beat=now, dry_run=True)
    assert share() == (4, 1)
    # one other live daemon here: half the cores each; on two cores, none each
    _daemon(engine, "older", pid=5, started=T0, beat=now - timedelta(seconds=3))
    assert share() == (2, 2)
    assert share(cores=2) == (0, 2)
    # two others, both started before this one (whose row is not written yet: the
    # newest): the longest running take the core left over
    _daemon(engine, "older2", pid=6, started=T0 + timedelta(seconds=1), beat=now)
    assert share() == (1, 3)
    # with its own row, started before "older2": it takes that core, "older2" does not
    _daemon(engine, "me", pid=MY_PID, started=T0 + timedelta(microseconds=1), beat=now)
    assert share() == (1, 3)
    assert send_share(engine, now, cores=4, host=HOST, pid=5, alive=alive) == (2, 3)
    assert send_share(engine, now, cores=4, host=HOST, pid=6, alive=alive) == (1, 3)
    # a daemon of this host whose process is gone (killed a moment ago: its last beat
    # is fresh) does not count
    gone.add(5)
    assert share() == (2, 2)
    gone.clear()
    # the clock moves on past the others' last beats (the injected clock, the
    # database's: not this host's): they are dead, every core is this one's again
    later = now + timedelta(seconds=defaults.HEARTBEAT_STALE_SECONDS + 1)
    with engine.begin() as conn:
        conn.execute(sa.update(daemons).where(daemons.c.pid == MY_PID).values(beat_at=later))
    assert send_share(engine, later, cores=4, host=HOST, pid=MY_PID, alive=alive) == (4, 1)
    # and by default the process is looked for on this host: no process has a pid
    # beyond 2**22 (Linux's largest pid_max), so a fresh row of one does not count
    _daemon(engine, "never", pid=2**22 + 1, started=T0, beat=later)
    assert send_share(engine, later, cores=4, host=HOST, pid=MY_PID,
                      alive=lambda pid: True) == (2, 2)
    assert send_share(engine, later, cores=4, host=HOST, pid=MY_PID) == (4, 1)


def test_an_explicit_send_process_is_that_many_whatever_runs_on_the_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(tmp_path)
    assert Settings.from_env({}).send_process is None
    assert Settings.from_env({"TMINUS_SEND_PROCESS": ""}).send_process is None
    assert Settings.from_env({"TMINUS_SEND_PROCESS": "3"}).send_process == 3
    assert Settings.from_env({"TMINUS_SEND_PROCESS": "0"}).send_process == 0
    now = datetime.now(UTC)
    for pid in (11, 12, 13):     # three others live on this host
        _daemon(engine, f"d{pid}", host=_hostname(), pid=pid, started=now, beat=now)
    settings = Settings(database_url="sqlite://", dryrun_outbox=tmp_path / "o.jsonl",
                        send_process=2)
    explicit = Publishers(engine, settings, dry_run=False, send_process=2)
    monkeypatch.setattr(defaults, "SEND_PROCESSES", 2)
    shared = Publishers(engine, settings, dry_run=False, send_process=None)
    shared.pid_alive = lambda pid: True     # the made-up daemons' processes
    try:
        assert not explicit.shared and explicit.share == 2 and len(explicit._processes) == 2
        assert shared.shared and len(shared._processes) == 2
        assert shared._read_share() == 0        # the newest of four on two cores
        explicit.prepare([])
        assert explicit.share == 2              # nothing read
    finally:
        explicit.close()
        shared.close()


def _hostname() -> str:
    import socket
    return socket.gethostname()


class _Blocking:
    """The daemon's own adapter in a test: `publish` waits for `go`."""

    platform = "mastodon"

    def __init__(self) -> None:
        self.go = threading.Event()
        self.entered = threading.Event()
        self.calls: list[str] = []

    def publish(self, post: Outgoing) -> Receipt:
        self.calls.append("publish")
        self.entered.set()
        assert self.go.wait(30)
        return Receipt(remote_id="1")

    def warm(self) -> None:
        self.calls.append("warm")


class _Elsewhere(SendingProcess):
    """A sending process that records what reaches it and starts no child."""

    def __init__(self) -> None:
        super().__init__(threads=1, on_session=lambda k, v: None)
        self.calls: list[str] = []
        self.forgotten: list[int] = []

    def warm(self, key: int, build: Any, timeout: float) -> None:
        self.calls.append("warm")

    def forget(self, key: int) -> None:
        self.forgotten.append(key)


def test_an_account_moves_only_between_its_calls() -> None:
    local, child = _Blocking(), _Elsewhere()
    place: list[SendingProcess | None] = [None]
    pub = ChildPublisher(None, 7, "mastodon", "m",
                         MastodonCredentials(instance="http://x.invalid", access_token="t"),
                         timeout=5.0, now=lambda: datetime.now(UTC), session=None,
                         local=lambda: local, route=lambda key: place[0])  # type: ignore[arg-type,return-value]
    post = Outgoing(post_id=1, account="m", platform="mastodon", text="hello",
                    idempotency_key="k1", due_at=datetime.now(UTC))
    sending = threading.Thread(target=pub.publish, args=(post,))
    sending.start()
    try:
        assert local.entered.wait(30)
        # the share changes while the account's post is under way in this process: its
        # warm-up meanwhile goes where the post is, not to the child
        place[0] = child
        pub.warm()
        assert local.calls == ["publish", "warm"] and child.calls == []
    finally:
        local.go.set()
        sending.join()
    # nothing under way: the next call goes to the child
    pub.warm()
    assert child.calls == ["warm"] and pub.process is child
    # and back: the child forgets the account (built again, from the latest login,
    # should it come back)
    place[0] = None
    pub.warm()
    assert local.calls[-1] == "warm" and child.forgotten == [7] and pub.process is None


# -- real children, the share changing between an account's posts ---------------------


def _seeded(tmp_path: Path, fake: FakePlatformServer, clock: VirtualClock
            ) -> tuple[Engine, Settings]:
    """Three accounts (X, Mastodon, Bluesky), three posts each a minute apart from the
    clock's now; the default TMINUS_SEND_PROCESS (unset)."""
    platforms = ("x", "mastodon", "bluesky")
    engine = _engine(tmp_path)
    start = clock.now()
    seed_queue(engine, [start + timedelta(minutes=m) for m in range(3) for _ in platforms],
               accounts=3)
    env = on_fake_platforms(engine, fake, platforms)
    settings = Settings(database_url=str(engine.url), dryrun_outbox=tmp_path / "o.jsonl",
                        env=env, request_timeout=5.0, lease_seconds=30.0)
    assert settings.send_process is None
    return engine, settings


def _world(tmp_path: Path, fake: FakePlatformServer, clock: VirtualClock
           ) -> tuple[Engine, Worker]:
    """`_seeded`, sent by one Worker."""
    engine, settings = _seeded(tmp_path, fake, clock)
    publishers = Publishers(engine, settings, now=clock.now, dry_run=False,
                            send_process=settings.send_process)
    return engine, Worker(engine, settings, clock, publishers)


def _once_each_in_order(engine: Engine, fake: FakePlatformServer) -> None:
    """Every seeded post published, on the platform once, each account's in order."""
    texts = [p.text for p in fake.posts()]
    assert len(texts) == 9 and len(set(texts)) == 9          # each once
    with engine.connect() as conn:
        states = conn.execute(sa.select(table(Post).c.state)).scalars().all()
        order = conn.execute(sa.select(table(Post).c.account_id, table(Post).c.text)
                             .order_by(table(Post).c.id)).all()
    assert set(states) == {"published"}
    # each account's posts reached the platform in their order
    for account_id in {a for a, _ in order}:
        mine = [t for a, t in order if a == account_id]
        assert [t for t in texts if t in mine] == mine


def test_posts_go_out_once_each_and_in_order_as_the_share_changes(
        tmp_path: Path, fake: FakePlatformServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "SEND_PROCESSES", 3)
    clock = VirtualClock(datetime.now(UTC).replace(microsecond=0))
    engine, worker = _world(tmp_path, fake, clock)
    publishers = worker.publishers
    publishers.pid_alive = lambda pid: pid != 0     # the made-up daemons' processes
    host = _hostname()

    def others(n: int) -> None:
        """n other daemons beating on this host now, all started before this one."""
        with engine.begin() as conn:
            conn.execute(sa.delete(daemons))
        for i in range(n):
            _daemon(engine, f"o{i}", host=host, pid=10_000 + i,
                    started=clock.now() - timedelta(hours=1), beat=clock.now())
        publishers._apply_share(publishers._read_share())

    try:
        publishers.prepare(["x", "mastodon", "bluesky"])
        assert publishers.share == 3                # alone on three cores
        first = [p.pid for p in publishers._processes]
        assert all(first)
        assert worker.tick().sent == 3
        others(1)                                   # a second, older daemon: 2 and 1
        assert publishers.share == 1
        assert [p.pid is None for p in publishers._processes] == [False, True, True]
        clock.advance(60)
        assert worker.tick().sent == 3
        others(2)                                   # three daemons on three cores
        assert publishers.share == 0
        assert all(p.pid is None for p in publishers._processes)
        assert publishers._server is None           # no child left: the fork server closed
        clock.advance(60)
        assert worker.tick().sent == 3              # in this process's own adapters
        senders = list(publishers._senders.values())
        assert senders and all(s.process is None for s in senders)
        others(0)                                   # alone again: forked again at once
        assert publishers.share == 3
        assert all(p.pid for p in publishers._processes) and publishers._server is not None
        clock.advance(60)
        assert worker.tick().sent == 0              # (nothing left to send)
    finally:
        publishers.close()
    _once_each_in_order(engine, fake)


# -- daemons started together: their shares agreed before any child is forked ---------


A_PID, B_PID, C_PID = 20_001, 20_002, 20_003


class _Counting(ForkServer):
    """A real fork server (it counts what it forks: `forked`) that runs `meanwhile`
    the first time its daemon waits for it to be ready: what happens on the host while
    the server imports the SDKs (another daemon starting beside this one)."""

    def __init__(self, meanwhile: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.meanwhile = meanwhile
        self.spawned = 0                # servers started (again) so far

    def _spawn(self) -> None:
        self.spawned += 1
        super()._spawn()

    def ready(self, timeout: float, *, hung: bool = True) -> bool:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return super().ready(timeout, hung=hung)


def _started(engine: Engine, settings: Settings, clock: VirtualClock, pid: int, owner: str,
             server: ForkServer, alive: Callable[[int], bool], *,
             send_process: int | None = None) -> Daemon:
    """A daemon of this host known by `pid` (several in this test process), whose
    children `server` forks; the processes `alive` says run are the host's."""
    publishers = Publishers(engine, settings, now=clock.now, dry_run=False,
                            send_process=send_process, server=server)
    publishers.pid, publishers.pid_alive = pid, alive
    daemon = Daemon(Worker(engine, settings, clock, publishers, owner=owner))
    daemon.worker.ahead = None      # the test's ticks send what is due, nothing ahead
    return daemon


def _pids(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(daemons.c.pid)).scalars())


def test_daemons_started_together_fork_only_their_shares(
        tmp_path: Path, fake: FakePlatformServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "SEND_PROCESSES", 3)      # three cores
    clock = VirtualClock(datetime.now(UTC).replace(microsecond=0))
    engine, settings = _seeded(tmp_path, fake, clock)
    # a live daemon on another host, and one of this host whose process is gone (its
    # last beat still fresh): neither counts, or the share below would be less
    _daemon(engine, "elsewhere", host="host-b", pid=30_001,
            started=clock.now() - timedelta(hours=1), beat=clock.now())
    _daemon(engine, "dead", host=_hostname(), pid=30_002,
            started=clock.now() - timedelta(hours=1), beat=clock.now())

    def alive(pid: int) -> bool:
        return pid in {A_PID, B_PID, 30_001}

    seen: set[int] = set()
    b_server = _Counting()
    b = _started(engine, settings, clock, B_PID, "b", b_server, alive)

    def meanwhile() -> None:
        seen.update(_pids(engine))      # what the host knew as A waited for its server
        b.heartbeat()                   # B starts beside A: its row is written

    a_server = _Counting(meanwhile)
    a = _started(engine, settings, clock, A_PID, "a", a_server, alive)
    try:
        # A starts "alone" (its first reading: all three cores), B's row is written
        # while A's fork server imports the SDKs, and A forks by the reading taken
        # once the server is ready: two daemons on three cores, 2 and 1
        a.prepare()
        assert A_PID in seen and B_PID not in seen      # A counted before it waited
        b.prepare()
        assert (a.worker.publishers.share, b.worker.publishers.share) == (2, 1)
        # never a child beyond the share forked, not even for a moment
        assert (a_server.forked, b_server.forked) == (2, 1)
        assert [p.pid is not None for p in a.worker.publishers._processes] == [True, True, False]
        assert [p.pid is not None for p in b.worker.publishers._processes] == [True, False, False]
        assert a.worker.tick().sent == 3
        clock.advance(60)
        assert b.worker.tick().sent == 3
        clock.advance(60)
        assert a.worker.tick().sent == 3
        assert (a_server.forked, b_server.forked) == (2, 1)
    finally:
        a.worker.publishers.close()
        b.worker.publishers.close()
    _once_each_in_order(engine, fake)


def test_as_many_daemons_as_cores_started_together_fork_nothing(
        tmp_path: Path, fake: FakePlatformServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "SEND_PROCESSES", 2)      # two cores
    clock = VirtualClock(datetime.now(UTC).replace(microsecond=0))
    engine, settings = _seeded(tmp_path, fake, clock)

    def alive(pid: int) -> bool:
        return pid in {A_PID, B_PID, C_PID}

    b_server, c_server = _Counting(), _Counting()
    b = _started(engine, settings, clock, B_PID, "b", b_server, alive)
    # an explicit TMINUS_SEND_PROCESS=1 beside them: exactly that many, whatever runs
    c = _started(engine, settings, clock, C_PID, "c", c_server, alive, send_process=1)
    a_server = _Counting(b.heartbeat)   # B's row written while A's server imports
    a = _started(engine, settings, clock, A_PID, "a", a_server, alive)
    try:
        a.prepare()
        # two daemons on two cores: none each; A's server, started, is ended then and
        # there (its import is CPU the daemons need), the SDKs imported in A itself
        assert a.worker.publishers.share == 0 and a_server.forked == 0
        assert a_server.spawned == 1 and a_server.pid is None
        assert a.worker.publishers._server is None
        assert a.worker.publishers._primed_here
        b.prepare()
        c.prepare()
        # B read "none" at once: its fork server was never even started
        assert b.worker.publishers.share == 0 and b_server.forked == 0
        assert b_server.spawned == 0 and b.worker.publishers._server is None
        assert c.worker.publishers.share == 1 and c_server.forked == 1
        assert a.worker.tick().sent == 3                # in A's own process
        clock.advance(60)
        assert b.worker.tick().sent == 3                # in B's
        clock.advance(60)
        assert c.worker.tick().sent == 3                # in C's one child
        assert (a_server.forked, b_server.forked, c_server.forked) == (0, 0, 1)
    finally:
        for d in (a, b, c):
            d.worker.publishers.close()
    _once_each_in_order(engine, fake)
