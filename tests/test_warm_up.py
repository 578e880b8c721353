"""The daemon's warm-up (issue 12): accounts with posts due soon get their adapters built
and their Bluesky login made before the due second, so that the burst itself sends
only the posts. Real SDKs against the fake platforms; behaviour only, nothing timed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.common import sealed_approval, seed_queue, table
from scheduler.clock import SystemClock
from scheduler.daemon import Worker
from scheduler.db import make_engine, session, upgrade
from scheduler.models import Account, Post
from scheduler.models import Daemon as DaemonRow
from scheduler.publishers import Publishers
from scheduler.settings import Settings
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import accounts as fake_accounts

PLATFORMS = ("x", "mastodon", "bluesky")
LOGIN = "/xrpc/com.atproto.server.createSession"
CREATES = {"/2/tweets", "/api/v1/statuses", "/xrpc/com.atproto.repo.createRecord"}


def _world(tmp_path: Path, fake: FakePlatformServer, due: datetime, *,
           dry_run: bool = False) -> tuple[Engine, Worker]:
    """One post due at `due` on each of an X, a Mastodon and a Bluesky account (fake
    accounts 1), credentials pointing at the fake, approvals sealed for them."""
    url = f"sqlite:///{tmp_path}/t.db"
    engine = make_engine(url)
    upgrade(engine)
    seed_queue(engine, [due] * len(PLATFORMS), accounts=len(PLATFORMS))
    env: dict[str, str] = {}
    acc, post = table(Account), table(Post)
    with engine.begin() as conn:
        ids = conn.execute(sa.select(acc.c.id).order_by(acc.c.id)).scalars().all()
        for aid, platform in zip(ids, PLATFORMS, strict=True):
            prefix = f"W{aid}"
            env.update(fake_accounts.env(platform, 1, prefix, fake.url))
            conn.execute(sa.update(acc).where(acc.c.id == aid)
                         .values(platform=platform, credentials=prefix))
        names = {r.id: r.name for r in conn.execute(sa.select(acc.c.id, acc.c.name))}
        on = dict(zip(ids, PLATFORMS, strict=True))
        for pid, aid, text in conn.execute(sa.select(post.c.id, post.c.account_id, post.c.text)).all():
            record, digest = sealed_approval(text, names[aid], on[aid], f"W{aid}")
            conn.execute(sa.update(post).where(post.c.id == pid)
                         .values(approved=record, approved_hash=digest))
    settings = Settings(database_url=url, dryrun_outbox=tmp_path / "o.jsonl", env=env,
                        request_timeout=5.0)
    publishers = Publishers(engine, settings, dry_run=dry_run)
    return engine, Worker(engine, settings, SystemClock(), publishers)


def _make_due(engine: Engine) -> None:
    post = table(Post)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.update(post).values(due_at=now, next_attempt_at=now))


def _paths(fake: FakePlatformServer) -> list[str]:
    return [r.path for r in fake.requests if not r.path.startswith("/_fake")]


def test_warm_up_logs_in_ahead_and_the_due_second_sends_only_the_posts(
        tmp_path: Path, fake: FakePlatformServer) -> None:
    engine, worker = _world(tmp_path, fake, datetime.now(UTC) + timedelta(minutes=5))
    try:
        assert worker.warm_up() == 3
        # the Bluesky login went out, and nothing was posted
        assert _paths(fake) == [LOGIN]
        assert fake.posts() == []
        fake.requests.clear()
        _make_due(engine)
        result = worker.tick()
        assert result.sent == 3
        # at the due second: the three creates, no login
        assert sorted(_paths(fake)) == sorted(CREATES)
        assert len(fake.posts()) == 3
    finally:
        worker.publishers.close()


def test_warm_up_again_within_the_minute_sends_nothing(
        tmp_path: Path, fake: FakePlatformServer) -> None:
    _, worker = _world(tmp_path, fake, datetime.now(UTC) + timedelta(minutes=5))
    try:
        assert worker.warm_up() == 3
        fake.requests.clear()
        assert worker.warm_up() == 0
        assert _paths(fake) == []
    finally:
        worker.publishers.close()


def test_posts_due_later_than_the_warm_up_window_are_left_alone(
        tmp_path: Path, fake: FakePlatformServer) -> None:
    _, worker = _world(tmp_path, fake, datetime.now(UTC) + timedelta(hours=2))
    try:
        assert worker.warm_up() == 0
        assert _paths(fake) == []
    finally:
        worker.publishers.close()


def test_a_paused_account_is_not_warmed(tmp_path: Path, fake: FakePlatformServer) -> None:
    engine, worker = _world(tmp_path, fake, datetime.now(UTC) + timedelta(minutes=5))
    acc = table(Account)
    with engine.begin() as conn:
        conn.execute(sa.update(acc).where(acc.c.platform == "bluesky")
                     .values(paused_reason="a person paused it", paused_at=datetime.now(UTC)))
    try:
        assert worker.warm_up() == 2          # X and Mastodon: built, nothing sent
        assert _paths(fake) == []
    finally:
        worker.publishers.close()


def test_a_login_refused_at_warm_up_is_left_for_the_post_to_report(
        tmp_path: Path, fake: FakePlatformServer, caplog: pytest.LogCaptureFixture) -> None:
    engine, worker = _world(tmp_path, fake, datetime.now(UTC) + timedelta(minutes=5))
    bluesky = next(k for k in worker.settings.env if k.endswith("_APP_PASSWORD"))
    worker.settings.env[bluesky] = "not-the-app-password"   # type: ignore[index]
    try:
        assert worker.warm_up() == 2
        assert "could not get" in caplog.text and "createSession: HTTP 401" in caplog.text
        assert "not-the-app-password" not in caplog.text
        _make_due(engine)
        result = worker.tick()
        # the post meets the refusal itself: its account is paused, the post waits
        assert result.sent == 2 and result.retried == 1
        acc = table(Account)
        with engine.connect() as conn:
            reason = conn.execute(sa.select(acc.c.paused_reason)
                                  .where(acc.c.platform == "bluesky")).scalar_one()
        assert reason is not None and "credentials refused" in reason
    finally:
        worker.publishers.close()


def test_a_dry_run_warms_nothing(tmp_path: Path, fake: FakePlatformServer) -> None:
    _, worker = _world(tmp_path, fake, datetime.now(UTC) + timedelta(minutes=5), dry_run=True)
    assert worker.warm_up() == 0
    assert _paths(fake) == []


def test_several_daemons_share_the_warm_up_and_an_account_logs_in_once(
        tmp_path: Path, fake: FakePlatformServer) -> None:
    # two daemons beating on one database: each warms its share of the accounts, the
    # Bluesky login is made once, and the daemon that did not make it sends the post
    # with the session from the account's row, with no login of its own
    engine, first = _world(tmp_path, fake, datetime.now(UTC) + timedelta(minutes=5))
    second = Worker(engine, first.settings, SystemClock(),
                    Publishers(engine, first.settings, dry_run=False), owner="daemon-b")
    first.owner = "daemon-a"
    now = datetime.now(UTC)
    with session(engine) as s:
        for owner in ("daemon-a", "daemon-b"):
            s.add(DaemonRow(id=owner, hostname="h", pid=1, started_at=now, beat_at=now))
    try:
        warmed = first.warm_up()
        first_logged_in = _paths(fake).count(LOGIN) == 1
        assert warmed + second.warm_up() == 3                 # each account once
        assert _paths(fake).count(LOGIN) == 1
        sender = second if first_logged_in else first         # the one that made no login
        fake.requests.clear()
        _make_due(engine)
        assert sender.tick().sent == 3
        assert sorted(_paths(fake)) == sorted(CREATES)        # and makes none now
    finally:
        first.publishers.close()
        second.publishers.close()


PRIMED = r"""
import sys, threading
from datetime import UTC, datetime
import pydantic
from scheduler.publishers import Publishers
from scheduler.settings import Settings
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import accounts as fake_accounts
from jobs.adapters.bluesky import BlueskyPublisher
from jobs.adapters.mastodon import MastodonPublisher
from jobs.outgoing import Outgoing
from mastodon import types_base

settings = Settings(database_url="sqlite://")
Publishers(None, settings, dry_run=False).prepare(["bluesky", "mastodon"])   # type: ignore
built = []
rebuild = pydantic.BaseModel.model_rebuild.__func__
def counted(cls, *a, **k):
    built.append(cls.__qualname__)
    return rebuild(cls, *a, **k)
pydantic.BaseModel.model_rebuild = classmethod(counted)
hints_before = types_base._cached_type_hints.cache_info().misses
now = lambda: datetime.now(UTC)
with FakePlatformServer() as fake:
    fake_accounts.add(fake, "bluesky", 1)
    fake_accounts.add(fake, "mastodon", 1)
    b = fake_accounts.credentials("bluesky", 1, fake.url)
    m = fake_accounts.credentials("mastodon", 1, fake.url)
    pubs = [BlueskyPublisher(b["HANDLE"], b["APP_PASSWORD"], pds=b["PDS"], now=now),
            MastodonPublisher(m["INSTANCE"], m["ACCESS_TOKEN"], now=now)]
    for n, pub in enumerate(pubs):
        pub.publish(Outgoing(post_id=n + 1, account="a", platform=pub.platform,
                             text=f"first post #{n} https://example.org #Tag",
                             idempotency_key=f"k{n}", due_at=now()))
print(len(fake.posts()), built, types_base._cached_type_hints.cache_info().misses - hints_before)
"""


def test_a_primed_sdk_builds_nothing_at_its_first_post(tmp_path: Path) -> None:
    # What an SDK builds on first use (atproto's pydantic models, Mastodon.py's type
    # hints) is built by `prepare` at the daemon's start, not by each of a burst's
    # lanes at once: the first posts, logging in and publishing, build none of it.
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", PRIMED], cwd=root, capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                                                      "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "[]", "0"]
