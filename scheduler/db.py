"""Opening the database: SQLite by default, PostgreSQL for several daemons.

SQLite is set up for one writer and many readers across processes: WAL, a long busy
timeout, `synchronous=NORMAL`, foreign keys on, and every transaction started with
`BEGIN IMMEDIATE` so a writer takes its lock up front instead of failing to upgrade a
read lock half-way ("database is locked"). No transaction is ever held open across a
platform request.

The schema belongs to Alembic (`scheduler/migrations`). A brand-new database is
brought to head by any command; an existing one that is behind must be upgraded with
`tminus db upgrade` (the daemon refuses to start on it).

The database holds saved platform sessions (Bluesky's access and refresh tokens), so
a SQLite file tminus creates is readable by its owner only (0600; SQLite gives its
-wal and -shm files the same mode), and engines hide bound parameters in their error
messages, which would otherwise print post texts and tokens.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from content.errors import TminusError
from scheduler import defaults

if TYPE_CHECKING:   # the daemon never imports the ORM (see `transaction`)
    from sqlmodel import Session

    # what the queries shared by the daemon and the commands take: the daemon's
    # Connection, or a command's Session (its connection is used)
    Bind: TypeAlias = sa.Connection | Session

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision. Every command checks the database against it, so it
# is a constant rather than a walk through the migration scripts on each start (Alembic
# is imported only to migrate); tests/test_accounts_and_db.py checks it is the head.
SCHEMA_HEAD = "0008"


# The daemon's SQLite page cache, per connection (`PRAGMA cache_size`; SQLite's own default
# is 2,000 KiB): a tick that reads across a big queue filled the default cache, and the
# pages it freed again stayed in the process for good. In WAL mode a connection's cache
# is emptied anyway whenever another connection has written since, which the daemon's
# threads do all the time. 64 KiB saved more at the start (0.4 MB) but cost a burst 13%
# more CPU (its transactions' dirty pages spilled); 256 KiB costs none (docs/DESIGN.md).
DAEMON_PAGE_CACHE_KIB = 256


def make_engine(url: str, *, page_cache_kib: int | None = None) -> Engine:
    """An engine on `url`; `page_cache_kib` bounds each SQLite connection's page cache
    (None: SQLite's default; the daemon's is DAEMON_PAGE_CACHE_KIB)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, hide_parameters=True,
                                      connect_args={"check_same_thread": False,
                                                    "timeout": defaults.SQLITE_BUSY_TIMEOUT_MS / 1000})
            _create_private(engine.url.database, engine.url.query)
            _tune_sqlite(engine, page_cache_kib)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as e:
        # (SQLAlchemy's messages name the driver, never the URL and its password)
        raise TminusError(f"TMINUS_DATABASE_URL is not a usable database URL ({e}); "
                          "use sqlite:///tminus.db or postgresql+psycopg://user@host/db") from None
    return engine


def _create_private(database: str | None, query: Any) -> None:
    """Create a new SQLite database file readable by its owner only. (An existing file
    keeps the mode it has: its owner may have chosen it.)"""
    if not database or database == ":memory:" or database.startswith("file:") \
            or query.get("mode") == "memory":
        return
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as e:
        raise TminusError(f"TMINUS_DATABASE_URL: cannot create {database!r} "
                          f"({e.strerror}); check the folder exists and is writable") from None
    os.close(fd)


def _tune_sqlite(engine: Engine, page_cache_kib: int | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite would
        # otherwise start a deferred transaction lazily).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={defaults.SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        if page_cache_kib is not None:
            cur.execute(f"PRAGMA cache_size=-{int(page_cache_kib)}")     # negative: KiB
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def database_time(engine: Engine) -> datetime:
    """The database's own clock: PostgreSQL's `clock_timestamp()` (one clock for every
    daemon on it, whatever their hosts say); for SQLite, which lives on this host and
    reads this host's clock, that clock."""
    if not is_postgres(engine):
        return datetime.now(UTC)
    with engine.connect() as conn:
        value = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
    assert isinstance(value, datetime)
    return value.astimezone(UTC)


@contextmanager
def transaction(engine: Engine) -> Iterator[sa.Connection]:
    """One short transaction on Core, committed on success, rolled back on any error:
    the daemon's, which runs without SQLModel and the ORM (importing them would cost
    its process more memory than APScheduler's whole one)."""
    with engine.begin() as conn:
        yield conn


def connection_of(s: Bind) -> sa.Connection:
    """The Connection to run Core statements on: `s` itself, or a Session's."""
    return s if isinstance(s, sa.Connection) else s.connection()


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """One short transaction of the ORM (the commands and the web): committed on
    success, rolled back on any error."""
    from sqlmodel import Session
    with Session(engine, expire_on_commit=False) as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


# -- schema ----------------------------------------------------------------------------


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest revision as the migration scripts say (see SCHEMA_HEAD)."""
    from alembic.script import ScriptDirectory
    script = ScriptDirectory.from_config(_alembic_config(sa.create_engine("sqlite://")))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (None for a database Alembic never touched)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to head; returns (before, after)."""
    from alembic import command
    before = current_revision(engine)
    command.upgrade(_alembic_config(engine), "head")
    return before, SCHEMA_HEAD


def ensure_schema(engine: Engine, *, create_if_new: bool = True) -> None:
    """A new, empty database is created at head; one behind head is refused with what
    to run."""
    current = current_revision(engine)
    head = SCHEMA_HEAD
    if current == head:
        return
    if current is None and create_if_new and not sa.inspect(engine).get_table_names():
        upgrade(engine)
        return
    raise TminusError(f"the database schema is at {current or 'no version'}, not {head}; "
                      "run `tminus db upgrade` first")
