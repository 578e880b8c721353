"""Opening the database, and its schema version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine, make_url

from content.errors import TminusError
from scheduler.db import current_revision, ensure_schema, head_revision, make_engine, upgrade
from scheduler.settings import Settings


def open_database(settings: Settings, *, create: bool = True) -> Engine:
    """The database of `settings`, checked to be at the newest schema (a new, empty one
    is created at it when `create`)."""
    engine = make_engine(settings.database_url)
    ensure_schema(engine, create_if_new=create)
    return engine


def existing_database(settings: Settings) -> Engine | None:
    """The database of `settings` if there is one at the newest schema, else None;
    never creates one (`validate` checks against it, and must not leave a file)."""
    url = make_url(settings.database_url)
    if url.drivername.startswith("sqlite") and (
            not url.database or url.database == ":memory:" or not Path(url.database).exists()):
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


def upgrade_database(settings: Settings) -> SchemaVersion:
    engine = make_engine(settings.database_url)
    before, after = upgrade(engine)
    return SchemaVersion(before, after, head_revision())


def schema_version(settings: Settings) -> SchemaVersion:
    current = current_revision(make_engine(settings.database_url))
    return SchemaVersion(current, current, head_revision())
