"""What a post costs the daemon in statements: claim, proof and record go in batches, so
a burst on a thousand accounts is a few hundred statements, not thousands. The counts
are kept here (an engine event sees every statement, an executemany once, BEGIN
included) so that a per-post statement cannot creep back in unnoticed; and the one
query that reads every rate budget of a claimed batch is checked window by window."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.common import seed_queue
from jobs.outgoing import Outgoing, Receipt
from scheduler import defaults
from scheduler.clock import SystemClock
from scheduler.db import make_engine, upgrade
from scheduler.dispatch import Delivered, _rooms, claim, prove, record_many
from scheduler.publishers import Publishers
from scheduler.rows import AccountRow
from scheduler.settings import Settings
from scheduler.states import PostState
from scheduler.tables import account as accounts
from scheduler.tables import post as posts
from scheduler.worker import Worker

PLATFORMS = ("x", "mastodon", "bluesky")    # four budget windows between them
OWNER = "test:1:statements"
LEASE = timedelta(seconds=60)


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def _burst(tmp_path: Path, n: int, *, mixed: bool = True) -> Engine:
    """`n` posts due now, one on each of `n` accounts: X, Mastodon and Bluesky in turn
    (`mixed`: then no longer what was approved, which a claim does not check), or
    Mastodon's."""
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    seed_queue(engine, [datetime.now(UTC) - timedelta(seconds=1)] * n, accounts=n,
               platform="mastodon")
    if not mixed:
        return engine
    with engine.begin() as conn:
        ids = conn.execute(sa.select(accounts.c.id).order_by(accounts.c.id)).scalars().all()
        conn.execute(sa.update(accounts).where(accounts.c.id == sa.bindparam("aid"))
                     .values(platform=sa.bindparam("p")),
                     [{"aid": a, "p": PLATFORMS[i % 3]} for i, a in enumerate(ids)])
    return engine


def test_a_claimed_batch_costs_seven_statements_its_proof_two_and_a_record_four(
        tmp_path: Path) -> None:
    batch = defaults.CLAIM_BATCH
    engine = _burst(tmp_path, 2 * batch)
    now = datetime.now(UTC)
    with counted(engine) as seen:
        first = claim(engine, now=now, owner=OWNER, lease=LEASE)
    # BEGIN, the candidates, their campaigns, their accounts, every rate budget of the
    # batch at once (four windows here), the UPDATE, the events
    assert len(first) == batch
    assert seen == ["BEGIN", "SELECT", "SELECT", "SELECT", "SELECT", "UPDATE", "INSERT"]
    with counted(engine) as seen:
        assert prove(engine, first, now=now, owner=OWNER, lease=LEASE) == {
            c.post_id for c in first}
    assert seen == ["BEGIN", "UPDATE"]
    done = [(c, Delivered(Receipt(f"r{c.post_id}", f"https://example.org/{c.post_id}"), now))
            for c in first[:defaults.RECORD_BATCH]]
    with counted(engine) as seen:
        assert len(record_many(engine, done, owner=OWNER)) == len(done)
    # BEGIN, the fenced UPDATE, each post's receipt (one executemany), the events
    assert seen == ["BEGIN", "UPDATE", "UPDATE", "INSERT"]


class Instant:
    """A publisher that takes every post at once."""

    platform = "mastodon"

    def publish(self, post: Outgoing) -> Receipt:
        return Receipt(remote_id=f"r{post.post_id}", url=None)

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        return None

    def close(self) -> None:
        pass


class InstantPublishers(Publishers):
    def for_account(self, account: Any) -> Any:
        return Instant()


def test_a_burst_costs_the_worker_a_fifth_of_a_statement_a_post(tmp_path: Path) -> None:
    # 500 posts on 500 accounts through the lanes: claims of 100, each proved in one
    # write, records of up to 50; a statement per post anywhere on the way would be
    # 500 more
    n = 500
    engine = _burst(tmp_path, n, mixed=False)
    settings = Settings(database_url=str(engine.url), dryrun_outbox=tmp_path / "o.jsonl",
                        concurrency=8)
    worker = Worker(engine, settings, SystemClock(),
                    InstantPublishers(engine, settings, dry_run=False))
    with counted(engine) as seen:
        result = worker.tick(tidy=False)
    assert result.sent == n
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(
            posts.c.state == PostState.PUBLISHED)).scalar_one() == n
    # claims 5 × 7 and the empty one (2), proofs 5 × 2, records (at least 10 × 4: up to
    # 50 each, and all of a batch's before the next claim), the pauses, the expiry
    assert len(seen) <= 0.25 * n, sorted(seen)


def test_the_budgets_of_every_window_are_read_in_one_query(tmp_path: Path) -> None:
    # one account on each platform: X free (17 a day), Mastodon (300 in 5 minutes),
    # Bluesky (1,666 an hour and 11,666 a day at once)
    engine = _burst(tmp_path, 3)
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as conn:
        rows = [AccountRow.of(a) for a in conn.execute(
            sa.select(accounts).order_by(accounts.c.id))]
        x, mastodon, bluesky = rows
        campaign = conn.execute(sa.select(posts.c.campaign_id).limit(1)).scalar_one()
        sent = [(mastodon, now - timedelta(minutes=10)), (mastodon, now - timedelta(minutes=1)),
                (bluesky, now - timedelta(hours=2)), (bluesky, now - timedelta(minutes=10)),
                (bluesky, now - timedelta(days=2))]
        conn.execute(sa.insert(posts), [{
            "account_id": a.id, "campaign_id": campaign, "plan_key": f"sent{i}", "post_key": f"sent{i}",
            "text": "out", "text_hash": "h", "idempotency_key": f"sent{i}", "due_at": at,
            "not_after": at + timedelta(hours=1), "next_attempt_at": at, "attempt": 1,
            "state": PostState.PUBLISHED, "options": {}, "warnings": [], "claimed_at": at,
            "created_at": at, "updated_at": at}
            for i, (a, at) in enumerate(sent)])
        with counted(engine) as seen:
            rooms = _rooms(conn, rows, now)
    assert len(seen) == 1
    # nothing sent: the posts taken now are the oldest, a day from now the first slot
    assert rooms[x.id] == (17, now + timedelta(days=1))
    # the post 10 minutes ago is outside the 5 minutes
    assert rooms[mastodon.id] == (299, now - timedelta(minutes=1) + timedelta(minutes=5))
    # an hour: one post (1,665 left); a day: two (11,664 left); the first slot of the
    # day frees the latest
    assert rooms[bluesky.id] == (1665, now - timedelta(hours=2) + timedelta(days=1))
