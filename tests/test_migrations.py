"""The migrations build exactly the schema the models describe, on SQLite and
PostgreSQL: a column added to a model without a migration (or the other way round)
fails here, not on a user's database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import scheduler.models  # noqa: F401 - the tables
from scheduler.db import SCHEMA_HEAD, current_revision


def test_the_migrations_give_the_models_schema(any_engine: Engine) -> None:
    assert current_revision(any_engine) == SCHEMA_HEAD
    with any_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []
