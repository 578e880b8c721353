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
    settings = Settings(database_url=url, dryrun_outbox=tmp_path / "o.jsonl", env=env,
                        request_timeout=5.0, lease_seconds=30.0, send_process=1)
    publishers = Publishers(engine, settings, dry_run=False, send_process=1)
    return engine, Worker(engine, settings, SystemClock(), publishers)


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
        # looked up (by the parent's own adapter), found, recorded: never sent twice
        with engine.begin() as conn:
            post = table(Post)
            conn.execute(sa.update(post).values(
                updated_at=datetime.now(UTC) - timedelta(minutes=10),
                lease_until=datetime.now(UTC) - timedelta(minutes=10)))
        assert worker.housekeeping() == 1
        assert _states(engine) == [PostState.PUBLISHED]
        assert len(fake.posts()) == 1
        # a later post starts a new child
        assert process.pid is None or process.started == 1
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
