"""The Core tables (`scheduler/tables.py`, what the daemon runs on) are the schema's one
definition; the SQLModel classes are mapped onto them, and what their fields declare
must make exactly those tables: the two can never drift apart."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel, col, select

from scheduler import models, tables
from scheduler.models import DECLARED, Post

DIALECTS = (sqlite.dialect(), postgresql.dialect())


@functools.cache
def _declared() -> sa.MetaData:
    """The tables the models' fields would make on their own (built once: their
    constraints and indexes can belong to one table only)."""
    md = sa.MetaData()
    for name, (args, kw) in DECLARED.items():
        sa.Table(name, md, *[a._copy() if isinstance(a, sa.Column) else a for a in args], **kw)
    return md


def _ddl(table: sa.Table) -> list[str]:
    out = []
    for dialect in DIALECTS:
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        out += sorted(str(CreateIndex(i).compile(dialect=dialect)).strip() for i in table.indexes)
    return out


def test_every_model_is_mapped_onto_its_core_table() -> None:
    mapped = {m.__tablename__: m for m in SQLModel.__subclasses__()[0].__subclasses__()
              if hasattr(m, "__table__")}
    assert set(mapped) == set(tables.metadata.tables) == set(DECLARED)
    for name, model in mapped.items():
        assert model.__table__ is tables.metadata.tables[name]  # type: ignore[attr-defined]
    assert models.metadata is tables.metadata
    # one column, whichever way it is named: no second FROM in a mixed statement
    mixed = select(col(Post.id)).where(tables.post.c.state == "queued", col(Post.attempt) > 0)
    assert str(mixed).count("FROM post") == 1 and "post_1" not in str(mixed)


def test_what_the_models_declare_is_the_core_tables() -> None:
    """Columns, types, nullability, keys, foreign keys, server defaults and indexes, as
    SQLite and PostgreSQL would create them."""
    declared = _declared()
    for name, table in tables.metadata.tables.items():
        assert _ddl(declared.tables[name]) == _ddl(table), name


def test_same_insert_defaults_and_python_types() -> None:
    """What DDL does not show: the values an INSERT fills in, and the types that convert
    values (aware datetimes, post states) on the way in and out."""
    declared = _declared()
    for name, table in tables.metadata.tables.items():
        for column in table.columns:
            theirs = declared.tables[name].c[column.name]
            kind = type(theirs.type).__name__
            assert type(column.type).__name__ == kind or (
                kind == "AutoString" and type(column.type) is sa.String), (name, column.name)
            ours = None if column.default is None else column.default.arg  # type: ignore[attr-defined]
            their = None if theirs.default is None else theirs.default.arg  # type: ignore[attr-defined]
            assert ours == their, (name, column.name)


def test_the_comparison_sees_a_difference() -> None:
    """A column made nullable, or an index dropped, shows in what is compared."""
    post = tables.post
    copy = sa.Table("post", sa.MetaData(), *[c._copy() for c in post.columns])
    assert _ddl(copy) != _ddl(post)          # no indexes, no constraints
    copy.c.text.nullable = True
    assert _ddl(copy)[0] != _ddl(sa.Table("post", sa.MetaData(),
                                          *[c._copy() for c in post.columns]))[0]
