"""Sending in a child process (TMINUS_SEND_PROCESS, `scheduler/sendproc.py`): real SDKs
against the fake platforms through a real child; its crash cases as designed there — a
child that dies mid-request leaves an unknown outcome that is looked up, never sent
again; one that hangs is bounded by the attempt's time bound; one whose parent is gone
exits. Behaviour only: nothing here is timed."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.common import sealed_approval, seed_queue, table
from content.platforms import MastodonCredentials
from jobs.errors import UnknownOutcome
from jobs.outgoing import Outgoing
from scheduler.clock import SystemClock
from scheduler.daemon import Worker
from scheduler.db import make_engine, session, upgrade
from scheduler.models import Account, Post, PostState
from scheduler.publishers import Publishers
from scheduler.sendproc import ChildPublisher, SendingProcess
from scheduler.settings import Settings
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import accounts as fake_accounts

PLATFORMS = ("x", "mastodon", "bluesky")


def _world(tmp_path: Path, fake: FakePlatformServer, platforms: tuple[str, ...] = PLATFORMS
           ) -> tuple[Engine, Worker]:
    """One post due now on an account of each of `platforms` (fake accounts 1), sent
    through a sending process."""
    url = f"sqlite:///{tmp_path}/t.db"
    engine = make_engine(url)
    upgrade(engine)
    seed_queue(engine, [datetime.now(UTC) - timedelta(seconds=1)] * len(platforms),
               accounts=len(platforms))
    env = on_fake_platforms(engine, fake, platforms)
    settings = Settings(database_url=url, dryrun_outbox=tmp_path / "o.jsonl", env=env,
                        request_timeout=5.0, lease_seconds=30.0, send_process=1)
    publishers = Publishers(engine, settings, dry_run=False, send_process=1)
    return engine, Worker(engine, settings, SystemClock(), publishers)


def on_fake_platforms(engine: Engine, fake: FakePlatformServer, platforms: tuple[str, ...]
                      ) -> dict[str, str]:
    """The seeded accounts put on `platforms` in turn (fake accounts 1, credentials S<id>),
    their posts approved again for it; the environment with those credentials."""
    env: dict[str, str] = {}
    acc, post = table(Account), table(Post)
    with engine.begin() as conn:
        ids = conn.execute(sa.select(acc.c.id).order_by(acc.c.id)).scalars().all()
        for aid, platform in zip(ids, platforms, strict=True):
            env.update(fake_accounts.env(platform, 1, f"S{aid}", fake.url))
            conn.execute(sa.update(acc).where(acc.c.id == aid)
                         .values(platform=platform, credentials=f"S{aid}"))
        names = {r.id: r.name for r in conn.execute(sa.select(acc.c.id, acc.c.name))}
        on = dict(zip(ids, platforms, strict=True))
        for pid, aid, text in conn.execute(sa.select(post.c.id, post.c.account_id, post.c.text)):
            record, digest = sealed_approval(text, names[aid], on[aid], f"S{aid}")
            conn.execute(sa.update(post).where(post.c.id == pid)
                         .values(approved=record, approved_hash=digest))
    return env


def _states(engine: Engine) -> list[PostState]:
    with session(engine) as s:
        return [p.state for p in s.exec(sa.select(Post).order_by(Post.id)).scalars()]  # type: ignore[call-overload]


def _process(worker: Worker) -> SendingProcess:
    [process] = worker.publishers._processes
    return process


def test_posts_go_out_through_the_child_once_each_and_logins_are_kept(
        tmp_path: Path, fake: FakePlatformServer, caplog: pytest.LogCaptureFixture) -> None:
    engine, worker = _world(tmp_path, fake)
    caplog.set_level(logging.DEBUG)
    try:
        assert worker.warm_up() == 3
        process = _process(worker)
        assert process.pid is not None and process.pid != os.getpid()
        assert worker.tick().sent == 3
        assert sorted(p.platform for p in fake.posts()) == sorted(PLATFORMS)
        assert _states(engine) == [PostState.PUBLISHED] * 3
        assert process.started == 1
    finally:
        worker.publishers.close()
    # the Bluesky login the child made is in the account's row, for the next start
    with session(engine) as s:
        bluesky = s.exec(sa.select(Account).where(  # type: ignore[call-overload]
            Account.platform == "bluesky")).scalars().one()
        assert bluesky.session
    # no credential crossed into a log line
    secrets = [v for k, v in worker.settings.env.items() if "TOKEN" in k or "PASSWORD" in k]
    assert secrets and not any(v in caplog.text for v in secrets)


def test_a_child_killed_mid_request_is_an_unknown_outcome_looked_up_not_sent_again(
        tmp_path: Path, fake: FakePlatformServer) -> None:
    engine, worker = _world(tmp_path, fake, ("mastodon",))
    process = _process(worker)

    def kill_child(request: object) -> None:
        # the create left and the platform makes it; the answer reaches no one
        if getattr(request, "path", "") == "/api/v1/statuses" and process.pid:
            os.kill(process.pid, signal.SIGKILL)

    try:
        fake.on_request = kill_child
        result = worker.tick(tidy=False)
        fake.on_request = None
        assert result.sent == 0 and result.unknown == 1
        assert _states(engine) == [PostState.UNKNOWN]
        assert len(fake.posts()) == 1
        # looked up (in a new child: the SDKs stay out of the daemon), found, recorded:
        # never sent twice
        with engine.begin() as conn:
            post = table(Post)
            conn.execute(sa.update(post).values(
                updated_at=datetime.now(UTC) - timedelta(minutes=10),
                lease_until=datetime.now(UTC) - timedelta(minutes=10)))
        assert worker.housekeeping() == 1
        assert _states(engine) == [PostState.PUBLISHED]
        assert len(fake.posts()) == 1
        # the look-up was made in a new child (cold here: no fork server in this test)
        assert process.started == 2 and process.pid is not None
    finally:
        worker.publishers.close()


def _mastodon_post(fake: FakePlatformServer, seconds: float) -> tuple[ChildPublisher, Outgoing]:
    creds = MastodonCredentials(**{k.lower(): v for k, v in
                                   fake_accounts.credentials("mastodon", 1, fake.url).items()})
    now = datetime.now(UTC)
    post = Outgoing(1, "m", "mastodon", "a post", "key-1", now,
                    deadline=now + timedelta(seconds=seconds))
    return creds, post  # type: ignore[return-value]


HANGING_CHILD = """
import sys, threading
from scheduler.sendproc import _read, _write
lock = threading.Lock()
while (m := _read(sys.stdin.buffer)) is not None:
    if m[0] == "build":
        _write(sys.stdout.buffer, lock, ("ok", m[1], None))
"""


def test_a_child_that_hangs_is_bounded_by_the_attempt_and_killed(
        fake: FakePlatformServer) -> None:
    # a child that builds adapters and then never answers a request
    hanging = [sys.executable, "-c", HANGING_CHILD]
    process = SendingProcess(threads=4, on_session=lambda k, v: None, argv=hanging)
    creds, post = _mastodon_post(fake, 0.5)
    pub = ChildPublisher(process, 1, "mastodon", "m", creds,  # type: ignore[arg-type]
                         timeout=5.0, now=lambda: datetime.now(UTC), session=None,
                         local=lambda: pytest.fail("no look-up here"))
    try:
        with pytest.raises(UnknownOutcome, match="no answer within the attempt's time bound"):
            pub.publish(post)
        assert process.pid is None        # killed, and a new one only on the next call
        assert process.started == 1
    finally:
        process.close()


def test_a_child_whose_parent_is_gone_exits() -> None:
    # the parent's end of the pipe closes however it dies: the child stops at once
    child = subprocess.Popen([sys.executable, "-m", "scheduler.sendproc"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdin is not None
        child.stdin.close()
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_each_account_keeps_to_one_of_the_sending_processes(
        tmp_path: Path, fake: FakePlatformServer) -> None:
    engine, worker = _world(tmp_path, fake, ("mastodon", "mastodon", "mastodon"))
    publishers = Publishers(engine, worker.settings, dry_run=False, send_process=2)
    try:
        with session(engine) as s:
            accounts = list(s.exec(sa.select(Account).order_by(Account.id)).scalars())  # type: ignore[call-overload]
        senders = [publishers.sender(a) for a in accounts]
        assert all(isinstance(p, ChildPublisher) for p in senders)
        chosen = [p.process for p in senders if isinstance(p, ChildPublisher)]
        # by account id: the first and the third share one, the second has the other
        assert chosen[0] is chosen[2] and chosen[0] is not chosen[1]
        assert publishers.sender(accounts[0]) is senders[0]       # built once
        # a dry run has none
        dry = Publishers(engine, worker.settings, dry_run=True, send_process=2)
        assert dry._processes == []
    finally:
        publishers.close()
        worker.publishers.close()


def test_a_warm_up_crosses_the_pipe_again_only_for_an_adapter_that_warms(
        fake: FakePlatformServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # X's and Mastodon's adapters are ready once built: their warm-up is the build's
    # round trip alone; Bluesky's logs in (a "warm" call), and a publish follows either
    from content.platforms import platform as platform_entry
    from scheduler import sendproc
    sent: list[str] = []
    write = sendproc._write

    def counting(stream: object, lock: object, message: tuple[object, ...]) -> None:
        sent.append(str(message[0]))
        write(stream, lock, message)  # type: ignore[arg-type]

    monkeypatch.setattr(sendproc, "_write", counting)
    logins: list[int] = []
    process = SendingProcess(threads=4, on_session=lambda key, value: logins.append(key))
    now = lambda: datetime.now(UTC)  # noqa: E731
    try:
        for key, platform in enumerate(PLATFORMS, 1):
            creds = platform_entry(platform).credentials(**{
                k.lower(): v for k, v in fake_accounts.credentials(platform, 1, fake.url).items()})
            pub = ChildPublisher(process, key, platform, f"{platform}1", creds, timeout=5.0,
                                 now=now, session=None, local=lambda: None)  # type: ignore[arg-type,return-value]
            pub.warm()
            receipt = pub.publish(Outgoing(post_id=key, account=f"{platform}1", platform=platform,
                                           text=f"warmed {platform}", idempotency_key=f"w{key}",
                                           due_at=now(), deadline=now() + timedelta(seconds=30)))
            assert receipt.remote_id
    finally:
        process.close()
    assert sent == ["build", "publish", "build", "publish", "build", "warm", "publish"]
    assert logins == [3]        # Bluesky logged in at its warm-up, the session came up
    assert sorted(p.text for p in fake.posts()) == [f"warmed {p}" for p in sorted(PLATFORMS)]


# -- the fork server (`scheduler/prefork.py`) ------------------------------------------


def _forked_world(tmp_path: Path, fake: FakePlatformServer, platforms: tuple[str, ...] = PLATFORMS
                  ) -> tuple[Engine, Worker]:
    """As `_world`, prepared as `tminus run` prepares: the fork server started, primed
    with the platforms in use, and the sending process forked from it."""
    engine, worker = _world(tmp_path, fake, platforms)
    worker.publishers.prepare(platforms)
    return engine, worker


def _ended(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie not yet reaped by its parent counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    except (OSError, IndexError):
        return True


def test_children_are_forked_primed_from_the_fork_server_and_forked_again_after_one_dies(
        tmp_path: Path, fake: FakePlatformServer) -> None:
    engine, worker = _forked_world(tmp_path, fake)
    process = _process(worker)
    server = worker.publishers._server
    try:
        assert server is not None and server.pid is not None
        # forked by the server at `prepare`, so already primed: not a fresh interpreter
        assert (process.started, process.forked) == (1, 1)
        first = process.pid
        assert first is not None and first not in (os.getpid(), server.pid)
        assert worker.warm_up() == 3
        assert worker.tick().sent == 3
        assert sorted(p.platform for p in fake.posts()) == sorted(PLATFORMS)
        # a child killed (a hang, say) is replaced by another fork, not a cold start
        process.kill()
        assert process.pid is None and _ended(first)
        with engine.begin() as conn:
            conn.execute(sa.update(table(Post)).values(state="queued", remote_id=None))
        worker.publishers._warmed.clear()
        assert worker.warm_up() == 3        # the accounts' adapters built in the new child
        assert (process.started, process.forked) == (2, 2)
        assert process.pid not in (None, first)
    finally:
        worker.publishers.close()
    assert server.pid is None


def test_a_killed_fork_server_is_said_in_the_log_and_started_again_for_the_next_child(
        tmp_path: Path, fake: FakePlatformServer, caplog: pytest.LogCaptureFixture) -> None:
    _, worker = _forked_world(tmp_path, fake, ("mastodon",))
    process = _process(worker)
    server = worker.publishers._server
    assert server is not None
    caplog.set_level(logging.WARNING, logger="tminus.sendproc")
    try:
        old = server.pid
        assert old is not None and (process.started, process.forked) == (1, 1)
        os.kill(old, signal.SIGKILL)
        # the child it forked goes on serving the daemon
        assert worker.tick().sent == 1
        assert (process.started, process.forked) == (1, 1)
        # the next child: the server is found gone, started again, and waited for
        process.kill()
        process.start()
        assert "fork server ended" in caplog.text and "starting it again" in caplog.text
        assert (process.started, process.forked) == (2, 2)
        assert server.pid not in (None, old) and server.restarts == 1
        assert len(fake.posts()) == 1
    finally:
        worker.publishers.close()


def test_the_fork_server_is_guessed_from_the_credentials_and_started_before_the_database(
        ) -> None:
    from scheduler.publishers import early_fork_server
    env = {**fake_accounts.env("mastodon", 1, "ORG", "http://127.0.0.1:9"),
           **fake_accounts.env("bluesky", 1, "ALLY", "http://127.0.0.1:9"),
           "TMINUS_HALF_API_KEY": "only one of X's four"}
    settings = Settings(env=env, send_process=2)
    server = early_fork_server(settings)
    try:
        assert server is not None and server.platforms == ["mastodon", "bluesky"]
        assert server.pid is not None
    finally:
        if server is not None:
            server.close()
    assert early_fork_server(settings, dry_run=True) is None
    assert early_fork_server(replace(settings, send_process=0)) is None
    assert early_fork_server(replace(settings, env={})) is None


def test_a_fork_server_that_never_gets_ready_leaves_children_starting_cold(
        tmp_path: Path, fake: FakePlatformServer, caplog: pytest.LogCaptureFixture) -> None:
    _, worker = _world(tmp_path, fake, ("mastodon",))
    server = worker.publishers._server
    assert server is not None
    server.argv = [sys.executable, "-c", "import sys; sys.exit(3)"]   # dies at once, each time
    caplog.set_level(logging.WARNING, logger="tminus.sendproc")
    try:
        worker.publishers.prepare(["mastodon"])
        process = _process(worker)
        assert "fresh interpreters" in caplog.text      # restarted RESTARTS times, then no more
        assert worker.tick().sent == 1
        assert process.forked == 0 and process.started == 1
    finally:
        worker.publishers.close()


def test_the_fork_server_and_its_children_exit_when_the_daemon_is_gone(
        fake: FakePlatformServer) -> None:
    from scheduler.prefork import ForkServer
    server = ForkServer()
    server.start(["mastodon"])
    try:
        assert server.ready(120)
        child = server.fork(2, 0)
        assert child is not None and child.poll() is None
        server_pid = server.pid
        assert server_pid is not None
        # the daemon's ends close however it dies (its fds go with it)
        assert server._sock is not None
        server._sock.close()
        assert child.stdin is not None
        child.stdin.close()
        assert child.wait(timeout=30) == 0
        assert server._proc is not None and server._proc.wait(timeout=30) == 0
    finally:
        server.restarts = 99
        server.close()


def test_look_ups_are_made_in_the_child_and_the_daemon_never_imports_an_sdk(
        tmp_path: Path, fake: FakePlatformServer) -> None:
    # in a process of its own: this test process has imported the SDKs long ago
    script = f"""
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
import sqlalchemy as sa
sys.path.insert(0, {str(Path.cwd())!r})
from tests.test_sendproc import _forked_world, _states, table, Post, PostState
class Fake:
    url = {fake.url!r}
engine, worker = _forked_world(Path({str(tmp_path)!r}), Fake())
try:
    assert worker.tick().sent == 3
    # the record lost: each post is unknown, and looked up
    with engine.begin() as conn:
        conn.execute(sa.update(table(Post)).values(
            state="unknown", remote_id=None, unknown_at=datetime.now(UTC) - timedelta(minutes=10),
            updated_at=datetime.now(UTC) - timedelta(minutes=10),
            lease_until=datetime.now(UTC) - timedelta(minutes=10)))
    assert worker.housekeeping() == 3
    assert _states(engine) == [PostState.PUBLISHED] * 3, _states(engine)
    sdks = [m for m in ("tweepy", "mastodon", "atproto", "atproto_client") if m in sys.modules]
    assert not sdks, sdks
finally:
    worker.publishers.close()
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
    assert len(fake.posts()) == 3
