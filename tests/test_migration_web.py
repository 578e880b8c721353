"""Migration 0003 (the web dashboard's tables, people's edits): a database at 0001 with
posts in it is upgraded without losing one, and the schema it makes is the models',
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import select

from scheduler import tables
from scheduler.db import SCHEMA_HEAD, _alembic_config, current_revision, make_engine, session, upgrade
from scheduler.models import Post
from scheduler.planner import plan
from tests.conftest import CampaignFactory, simple_toml

NOW = datetime(2099, 1, 16, 17, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/old.db"
    return str(request.getfixturevalue("pg_url"))


def test_a_database_at_0001_is_upgraded_with_its_posts(url: str, make_campaign: CampaignFactory) -> None:
    engine = make_engine(url)
    command.upgrade(_alembic_config(engine), "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:      # a post as 0001 stored it, before the new columns
        conn.execute(sa.text(
            "INSERT INTO campaign (slug, title, deadline, timezone, hashtags, account_names, "
            "created_at, updated_at) VALUES ('old', 'Old', :d, 'UTC', '[]', '[\"org\"]', :n, :n)"),
            {"d": NOW + timedelta(days=4), "n": NOW})
        conn.execute(sa.text("INSERT INTO account (name, platform, credentials, tier) "
                             "VALUES ('org', 'dryrun', 'ORG', 'default')"))
        conn.execute(sa.text(
            "INSERT INTO post (campaign_id, account_id, plan_key, post_key, origin, state, text, "
            "text_hash, due_at, not_after, next_attempt_at, idempotency_key, attempt, options, "
            "warnings, length, length_limit, created_at, updated_at) VALUES (1, 1, 'k', 'k', 'plan', "
            "'draft', 'an old post', 'h', :n, :n, :n, 'idem', 0, '{}', '[]', 11, 280, :n, :n)"),
            {"n": NOW})
    before, after = upgrade(engine)
    assert (before, after, current_revision(engine)) == ("0001", SCHEMA_HEAD, SCHEMA_HEAD)
    with session(engine) as s:
        old = s.exec(select(Post)).one()
        assert old.text == "an old post" and old.plan_conflict is False and old.planned_text is None
    plan(engine, make_campaign(simple_toml()), now=NOW)   # and it works as any database
    engine.dispose()


def test_the_migrated_schema_is_the_models(url: str) -> None:
    engine: Engine = make_engine(url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    assert diff == []
    engine.dispose()
