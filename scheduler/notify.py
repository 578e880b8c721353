"""Waking daemons when posts are added: PostgreSQL's LISTEN/NOTIFY.

On PostgreSQL, whatever makes a post due — a person's approve, queue add or review
--requeue (all through `scheduler.transitions.change`), an account resumed — calls
`wake(s)` with its Session or Connection, which sends `NOTIFY tminus_posts` inside
that transaction: PostgreSQL delivers it when the transaction commits, and never if it
is rolled back. Each daemon listens on its own connection and re-arms its tick at once.
On SQLite there is no such channel: the daemon's poll cap (TMINUS_POLL_SECONDS) bounds
how long a new post waits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scheduler.db import connection_of, is_postgres

if TYPE_CHECKING:
    from scheduler.db import Bind

CHANNEL = "tminus_posts"
log = logging.getLogger("tminus.notify")


def wake(s: Bind) -> None:
    """Wake every daemon once the transaction of `s` (a Session or a Connection)
    commits (PostgreSQL only)."""
    conn = connection_of(s)
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"NOTIFY {CHANNEL}"))


def notify(engine: Engine) -> None:
    """Wake every daemon now (outside any transaction)."""
    if not is_postgres(engine):
        return
    with engine.begin() as conn:
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


def libpq_dsn(engine: Engine) -> str:
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Listener(threading.Thread):
    """Calls `on_notify()` whenever a post is added, until `stop()`."""

    def __init__(self, engine: Engine, on_notify: Callable[[], None]) -> None:
        super().__init__(name="tminus-listen", daemon=True)
        self.dsn = libpq_dsn(engine)
        self.on_notify = on_notify
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        import psycopg
        while not self._halt.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._halt.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.on_notify()
            except psycopg.Error as e:
                # the poll cap still finds new posts; try to listen again shortly
                log.warning("LISTEN connection lost (%s); retrying", e)
                self._halt.wait(2.0)

