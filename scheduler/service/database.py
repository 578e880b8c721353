"""Opening the database, and its schema version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine, make_url

from content.errors import TminusError
from scheduler.db import current_revision, ensure_schema, head_revision, make_engine, upgrade
from scheduler.settings import Settings


def open_database(settings: Settings, *, create: bool = True,
                  page_cache_kib: int | None = None) -> Engine:
    """The database of `settings`, checked to be at the newest schema. A new, empty one
    is created at it when `create` (the commands that write: plan, queue, run, …);
    otherwise (the commands that read: status, list, log, …) there being none yet is an
    error saying what to run, and no file is left behind. `page_cache_kib`: see
    `db.make_engine` (the daemon's)."""
    if not create and _no_sqlite_file(settings.database_url):
        raise _none_yet(settings.database_url)
    engine = make_engine(settings.database_url, page_cache_kib=page_cache_kib)
    if not create:
        import sqlalchemy as sa
        if current_revision(engine) is None and not sa.inspect(engine).get_table_names():
            engine.dispose()
            raise _none_yet(settings.database_url)
    ensure_schema(engine, create_if_new=create)
    return engine


def _no_sqlite_file(database_url: str) -> bool:
    """A SQLite URL whose file does not exist (connecting would create it)."""
    url = make_url(database_url)
    return url.drivername.startswith("sqlite") and (
        not url.database or url.database == ":memory:" or not Path(url.database).exists())


def no_database_at(settings: Settings) -> str | None:
    """Where the SQLite file of `settings` would be, when there is none (connecting would
    create it); None when there is one, or for a server database (PostgreSQL)."""
    return _where(settings.database_url) if _no_sqlite_file(settings.database_url) else None


def _where(database_url: str) -> str:
    """The database as a person finds it: a SQLite file's full path, else the URL
    without its password."""
    url = make_url(database_url)
    return (str(Path(url.database or "").absolute()) if url.drivername.startswith("sqlite")
            else url.render_as_string(hide_password=True))


def _none_yet(database_url: str) -> TminusError:
    where = _where(database_url)
    return TminusError(f"no tminus database yet at {where} (TMINUS_DATABASE_URL): plan a "
                       "campaign first with `tminus plan DIR`, or run this in the folder "
                       "(or with the TMINUS_DATABASE_URL) the daemon uses")


def existing_database(settings: Settings) -> Engine | None:
    """The database of `settings` if there is one at the newest schema, else None;
    never creates one (`validate` checks against it, and must not leave a file)."""
    if _no_sqlite_file(settings.database_url):
        return None
    engine = make_engine(settings.database_url)
    try:
        ensure_schema(engine, create_if_new=False)
    except TminusError:
        engine.dispose()
        return None
    return engine


@dataclass(frozen=True)
class SchemaVersion:
    before: str | None      # None: a database Alembic never touched
    now: str | None
    newest: str
    missing: str | None = None  # no database file here yet (its path)


def upgrade_database(settings: Settings) -> SchemaVersion:
    engine = make_engine(settings.database_url)
    before, after = upgrade(engine)
    return SchemaVersion(before, after, head_revision())


def schema_version(settings: Settings) -> SchemaVersion:
    if _no_sqlite_file(settings.database_url):     # `db current` must not create the file
        return SchemaVersion(None, None, head_revision(), _where(settings.database_url))
    current = current_revision(make_engine(settings.database_url))
    return SchemaVersion(current, current, head_revision())
