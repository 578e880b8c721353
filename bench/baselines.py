"""The obvious ways to build the same thing from the same packages, for comparison.

1. APScheduler alone: one `date` job per post in APScheduler 3's own
   `SQLAlchemyJobStore` (SQLite file), run by a `BackgroundScheduler` with its default
   executor (a pool of 10 threads). The job appends the same JSON line the dry-run
   adapter writes (one write, flush, fsync). Jobs get `misfire_grace_time` = 2 h,
   tminus's default expiry; APScheduler's own default (1 s) would silently drop most
   of a burst instead of sending it late.
2. A polling daemon: every 30 s, SELECT the queued posts that are due from tminus's
   own `post` table (SQLAlchemy core), append each one's line and mark it published,
   one transaction per post.

APScheduler itself runs in `python -m bench.aps` (bench/aps.py), a program holding only
it and the job; `python -m bench.baselines poll-once` is the polling daemon's first
poll. Each is a child process of its own, so each measures its own memory.
"""

from __future__ import annotations

import argparse
import itertools
import os
import pickle
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.aps import append_line
from bench.common import peak_rss_mb, print_json, table

GRACE_SECONDS = 7200        # tminus's default expiry: a post may go out up to 2 h late
POLL_PERIOD = 30.0          # the polling daemon's period
JOB_FUNC = "bench.aps:send"     # the job lives in the lean program that runs it


@dataclass(frozen=True)
class Job:
    """One post, as the baselines see it."""

    post_id: int
    account: str
    due: datetime
    text: str


# -- 1. APScheduler with its SQLAlchemyJobStore -----------------------------------------


def aps_scheduler(url: str) -> Any:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    return BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone=UTC)


def aps_add_jobs(scheduler: Any, outbox: Path, jobs: Sequence[Job]) -> None:
    """The obvious way to queue posts: `add_job` once per post."""
    for j in jobs:
        scheduler.add_job(JOB_FUNC, "date", run_date=j.due, id=f"post-{j.post_id}",
                          args=[str(outbox), j.post_id, j.account, j.due.isoformat(), j.text],
                          misfire_grace_time=GRACE_SECONDS)


def aps_fill(url: str, outbox: Path | str, jobs: Iterable[Job], chunk: int = 50_000,
             func: str = JOB_FUNC) -> None:
    """Write the rows `add_job` would write (the same pickled job state) in a few
    transactions instead of one per job: only for setting up the start, burst and
    accuracy runs, whose subject is running jobs, not adding them. The scheduler is
    never started here (a paused one that is shut down still runs what is due). `func`
    is the job (`outbox` its first argument: the latency benchmark's job takes the fake
    platforms' URL there)."""
    from apscheduler.job import Job as ApsJob
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.util import datetime_to_utc_timestamp
    scheduler = aps_scheduler(url)
    store = SQLAlchemyJobStore(url=url)
    store.start(scheduler, "default")
    template: dict[str, Any] | None = None
    try:
        for batch in _chunks(jobs, chunk):
            rows = []
            for j in batch:
                trigger = DateTrigger(j.due, timezone=UTC)
                args = (str(outbox), j.post_id, j.account, j.due.isoformat(), j.text)
                if template is None:
                    # what BaseScheduler.add_job builds from its arguments and job defaults
                    template = ApsJob(scheduler, id="template", func=func, trigger=trigger,
                                      executor="default", args=args, kwargs={}, name="send",
                                      misfire_grace_time=GRACE_SECONDS, coalesce=True,
                                      max_instances=1, next_run_time=j.due).__getstate__()
                state = dict(template, id=f"post-{j.post_id}", args=args, trigger=trigger,
                             next_run_time=j.due)
                rows.append({"id": state["id"], "next_run_time": datetime_to_utc_timestamp(j.due),
                             "job_state": pickle.dumps(state, store.pickle_protocol)})
            with store.engine.begin() as conn:
                conn.execute(store.jobs_t.insert(), rows)
    finally:
        store.shutdown()


def _chunks(items: Iterable[Job], size: int) -> Iterable[list[Job]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


# The latency benchmark's job: the same SDK request tminus's adapter makes, through that
# adapter, one per account (built on the account's first post, kept for its next).
SDK_JOB_FUNC = "bench.baselines:send_sdk"
_adapters: dict[str, Any] = {}
_adapters_lock = threading.Lock()


def send_sdk(url: str, post_id: int, account: str, due: str, text: str) -> None:
    """The APScheduler job of the latency benchmark: `account` is "PLATFORM:N", the
    fake platforms' account N (tests/fakeplatform/accounts.py)."""
    from content.platforms import platform as platform_entry
    from jobs.adapters.base import MemorySessionStore, adapter_class
    from jobs.outgoing import Outgoing
    from tests.fakeplatform import accounts
    name, _, number = account.partition(":")
    with _adapters_lock:
        pub = _adapters.get(account)
        if pub is None:
            entry = platform_entry(name)
            creds = accounts.credentials(name, int(number), url)
            pub = adapter_class(entry).from_credentials(
                account, entry.credentials(**{k.lower(): v for k, v in creds.items()}),
                timeout=10.0, now=lambda: datetime.now(UTC), session_store=MemorySessionStore())
            _adapters[account] = pub
    pub.publish(Outgoing(post_id=post_id, account=account, platform=name, text=text,
                         idempotency_key=f"aps{post_id:08d}{os.getpid()}",
                         due_at=datetime.fromisoformat(due)))


# -- 2. a daemon that polls the table every 30 s ----------------------------------------


class PollingDaemon:
    """Every POLL_PERIOD seconds: send everything due, one transaction per post."""

    def __init__(self, url: str, outbox: Path) -> None:
        import sqlalchemy as sa
        self.engine = sa.create_engine(url)
        self.outbox = outbox

    def poll(self, now: datetime) -> int:
        import sqlalchemy as sa

        from scheduler.models import Account, Post
        post, account = table(Post), table(Account)
        with self.engine.connect() as conn:
            due = conn.execute(
                sa.select(post.c.id, post.c.text, post.c.due_at, account.c.name)
                .join(account, account.c.id == post.c.account_id)
                .where(post.c.state == "queued", post.c.next_attempt_at <= now)
                .order_by(post.c.next_attempt_at)).all()
        for post_id, text, due_at, name in due:
            append_line(self.outbox, {"at": datetime.now(UTC).isoformat(), "post_id": post_id,
                                      "account": name, "platform": "dryrun",
                                      "due": due_at.isoformat(), "text": text})
            with self.engine.begin() as conn:
                conn.execute(sa.update(post).where(post.c.id == post_id, post.c.state == "queued")
                             .values(state="published", published_at=datetime.now(UTC)))
        return len(due)


def next_poll_lateness(dues: Sequence[float], phase: float, period: float = POLL_PERIOD) -> list[float]:
    """Lateness of posts due at `dues` (seconds on any axis) under a daemon that polls
    at phase + k * period: the wait until the next poll at or after each due time. The
    work done at the poll is not counted (it only adds)."""
    import math
    return [phase + math.ceil((d - phase) / period) * period - d for d in dues]


# -- children -------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.baselines")
    sub = p.add_subparsers(dest="cmd", required=True)
    poll = sub.add_parser("poll-once", help="the polling daemon's first poll")
    poll.add_argument("--url", required=True)
    poll.add_argument("--outbox", required=True)
    args = p.parse_args()
    if args.cmd == "poll-once":
        t0 = time.perf_counter()
        daemon = PollingDaemon(args.url, Path(args.outbox))
        started = datetime.now(UTC)
        sent = daemon.poll(started)
        print_json({"poll_started": started.isoformat(), "sent": sent,
                    "setup_to_first_poll_s": time.perf_counter() - t0,
                    "peak_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main()
