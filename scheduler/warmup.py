"""The warm-up: the accounts with posts due within WARM_AHEAD_SECONDS made ready to
post before their second (`Publishers.warm`: adapters built, Bluesky logged in), so that
the due second is spent on the posts alone; with several daemons on one database, each
warms its share. The daemon runs it every WARM_EVERY_SECONDS (`Worker.warm_up`)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from scheduler import defaults
from scheduler.db import transaction
from scheduler.queue import sendable
from scheduler.rows import AccountRow
from scheduler.tables import account as accounts
from scheduler.tables import daemon as daemons
from scheduler.tables import post as posts

if TYPE_CHECKING:
    from scheduler.worker import Worker


def warm_up(self: Worker) -> int:
    """Get the accounts with posts due within WARM_AHEAD_SECONDS ready to post
    (`Publishers.warm`: adapters built, Bluesky logged in), on up to WARM_THREADS
    threads of their own, so that the due second is spent on the posts alone.
    Returns how many accounts were warmed. Stops early when the daemon stops: its
    threads are daemon threads, never waited for on the way out."""
    if self.publishers.dry_run:
        return 0
    now = self.clock.now()
    ahead = now + timedelta(seconds=defaults.WARM_AHEAD_SECONDS)
    with transaction(self.engine) as conn:
        due = (sa.select(posts.c.account_id).distinct()
               .where(*sendable(now, cutoff=self.cutoff_now(), scope=self.scope),
                      posts.c.next_attempt_at <= ahead))
        ready = _warm_share(self, conn, now, [AccountRow.of(a) for a in conn.execute(
            sa.select(accounts).where(accounts.c.id.in_(due),
                                      accounts.c.platform != "dryrun"))])
    if not ready:
        return 0
    todo = list(ready)
    warmed = [0]
    lock = threading.Lock()

    def worker() -> None:
        while not self.stopping.is_set():
            with lock:
                if not todo:
                    return
                account = todo.pop()
            if self.publishers.warm(account):
                with lock:
                    warmed[0] += 1

    threads = [threading.Thread(target=worker, name="tminus-warm", daemon=True)
               for _ in range(min(len(todo), defaults.WARM_THREADS))]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive() and not self.stopping.is_set():
            t.join(0.1)
    return warmed[0]

def _warm_share(self: Worker, conn: sa.Connection, now: datetime, accounts: list[AccountRow]
                ) -> list[AccountRow]:
    """With several daemons on one database, each warms its share of `accounts` (by
    account id, among the daemons beating now): any of them may send an account's
    post, and a login one of them made is in the account's row for the others to
    restore without a request (`AccountSessionStore`), so an account logs in once,
    not once a daemon. A daemon not among them (yet) warms every account."""
    fresh = now - timedelta(seconds=3 * defaults.HEARTBEAT_SECONDS)
    live = sorted(conn.execute(sa.select(daemons.c.id).where(
        daemons.c.stopped_at.is_(None), daemons.c.beat_at > fresh,
        daemons.c.dry_run.is_(False))).scalars())
    if self.owner not in live:
        return accounts
    mine, of = live.index(self.owner), len(live)
    return [a for a in accounts if a.id is not None and a.id % of == mine]
