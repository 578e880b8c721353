"""The column types of our own, in the Core tables (`scheduler.tables`) and so in the
SQLModel classes mapped onto them: apart from both, with no SQLModel to import."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from scheduler.states import PostState


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike
    (SQLite keeps no zone: values are stored as naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; all instants are aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StateColumn(sa.types.TypeDecorator[PostState]):
    """A post state stored as its plain text and read back as a `PostState`."""

    # VARCHAR with no length, as the first migration made the columns (SQLModel's
    # AutoString is this on SQLite and PostgreSQL)
    impl = sa.String()
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else PostState(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> PostState | None:
        return None if value is None else PostState(value)
