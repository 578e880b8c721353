"""Login sessions (Bluesky) saved to the account rows: coalesced into few transactions
(a burst's sending processes log in hundreds of accounts at once), none lost when a
write fails. Behaviour only: nothing here is timed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.common import seed_queue
from scheduler.db import make_engine, upgrade
from scheduler.publishers import Publishers, SessionWriter
from scheduler.settings import Settings
from scheduler.tables import account as accounts

ACCOUNTS = 50


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    seed_queue(engine, [datetime.now(UTC)], accounts=ACCOUNTS)
    yield engine
    engine.dispose()


def _sessions(engine: Engine) -> dict[int, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(accounts.c.id, accounts.c.session)).all())  # type: ignore[arg-type]


def _session_writes(engine: Engine) -> list[int]:
    """Appended to on every statement that writes sessions: how many rows it carried."""
    writes: list[int] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def counted(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                executemany: bool) -> None:
        if statement.startswith("UPDATE account SET session"):
            writes.append(len(params) if executemany else 1)
    return writes


def test_sessions_held_together_are_written_in_one_statement(engine: Engine) -> None:
    writes = _session_writes(engine)
    writer = SessionWriter(engine)
    assert writer.hold(1, "one") is True          # the caller must see a write runs
    assert writer.hold(2, "two") is False         # one is promised: it takes these too
    assert writer.hold(1, "one again") is False   # the newer value of an account wins
    writer.write_waiting()
    assert writes == [2]
    assert _sessions(engine)[1] == "one again" and _sessions(engine)[2] == "two"
    assert writer.hold(3, "three") is True        # that write is over: promise another
    writer.write_waiting()
    assert writes == [2, 1] and _sessions(engine)[3] == "three"


def test_a_failed_write_leaves_its_sessions_waiting_for_the_next(engine: Engine) -> None:
    writer = SessionWriter(engine)
    failing = [True]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def refuse(*_: Any) -> None:
        if failing.pop() if failing else False:
            raise sa.exc.OperationalError("UPDATE", {}, Exception("database is locked"))

    writer.hold(1, "one")
    with pytest.raises(sa.exc.OperationalError):
        writer.write_waiting()
    assert _sessions(engine)[1] is None
    assert writer.hold(2, "two") is True          # nothing under way: promise a write
    writer.hold(1, "one, newer")
    writer.write_waiting()
    assert (_sessions(engine)[1], _sessions(engine)[2]) == ("one, newer", "two")


def test_logins_from_a_sending_process_are_a_few_transactions_not_one_each(
        engine: Engine, tmp_path: Path) -> None:
    """Publishers' pipe reader hands each login over as it comes up (`_child_session`);
    while a write is under way (held up here until all have come) the rest wait and go
    in one more statement — before, each was a transaction of its own."""
    writes = _session_writes(engine)
    held, release = threading.Event(), threading.Event()

    @sa.event.listens_for(engine, "before_cursor_execute")
    def slow(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE account SET session") and not held.is_set():
            held.set()
            assert release.wait(10)

    publishers = Publishers(engine, Settings(database_url=str(engine.url),
                                             dryrun_outbox=tmp_path / "o.jsonl", env={}),
                            dry_run=True, send_process=0)
    try:
        for aid in range(1, ACCOUNTS + 1):
            publishers._child_session(aid, f"session {aid}")
        release.set()
    finally:
        publishers.close()                        # waits for the writes
    assert sum(writes) == ACCOUNTS and len(writes) <= 2
    assert _sessions(engine) == {aid: f"session {aid}" for aid in range(1, ACCOUNTS + 1)}
