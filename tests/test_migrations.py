"""The migrations build exactly the schema the models describe, on SQLite and
PostgreSQL: a column added to a model without a migration (or the other way round)
fails here, not on a user's database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import col, select

import scheduler.models  # noqa: F401 - the tables
from scheduler import tables
from scheduler.db import SCHEMA_HEAD, _alembic_config, current_revision, make_engine, session, upgrade
from scheduler.models import Post
from scheduler.planner import plan
from tests.conftest import CampaignFactory, simple_toml

NOW = datetime(2099, 1, 16, 17, 0, tzinfo=UTC)


def test_the_migrations_give_the_models_schema(any_engine: Engine) -> None:
    assert current_revision(any_engine) == SCHEMA_HEAD
    with any_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, tables.metadata)
    assert diff == []


THREAD = """
    [[posts]]
    key = "explainer"
    text = "Why this matters, in three posts. {{ hashtags }}"
    thread = ["Two: it is the law.", "Three: call 202-555-0100."]
    accounts = ["org"]
    schedule = { at = "T-2d" }
"""


def test_0006_indexes_a_threads_posts_so_deleting_posts_scans_nothing(
        tmp_path: Path, make_campaign: CampaignFactory) -> None:
    """A database at 0005 with a planned thread in it is upgraded with every post kept;
    then deleting a post looks its followers up by index (before 0006 SQLite scanned
    the whole post table twice per deleted post: 5,000 deletes took 10 s of CPU); and
    0006 downgrades and upgrades again cleanly."""
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    command.upgrade(_alembic_config(engine), "0005")
    plan(engine, make_campaign(simple_toml(posts=THREAD)), now=NOW)
    with session(engine) as s:
        ids = [p.id for p in s.exec(select(Post).order_by(col(Post.id))).all()]
        root = ids[0]

    def delete_plan() -> str:
        engine.dispose()            # a new connection: the plan of the schema as it is now
        with engine.connect() as conn:
            rows = conn.execute(sa.text("EXPLAIN QUERY PLAN DELETE FROM post WHERE id = :i"),
                                {"i": root}).all()
        return " | ".join(str(r[-1]) for r in rows)

    assert "SCAN post" in delete_plan()                 # what 0006 is for
    assert upgrade(engine) == ("0005", SCHEMA_HEAD)
    assert "SCAN post" not in delete_plan()
    assert "ix_post_parent_id" in delete_plan() and "ix_post_thread_root_id" in delete_plan()
    with session(engine) as s:
        assert [p.id for p in s.exec(select(Post).order_by(col(Post.id))).all()] == ids
        followers = s.exec(select(Post).where(Post.thread_root_id == root)).all()
        assert len(followers) == 2 and all(p.parent_id in ids for p in followers)
    command.downgrade(_alembic_config(engine), "0005")
    assert "SCAN post" in delete_plan()
    assert upgrade(engine) == ("0005", SCHEMA_HEAD)
    engine.dispose()


def test_0007_keeps_alert_messages_and_records_each_destination_from_their_next_try(
        tmp_path: Path) -> None:
    """A database at 0006 with a delivered message and one still being tried: both are
    kept; the next try of the undelivered one makes a row per destination; 0007
    downgrades (the rows go, the messages stay) and upgrades again."""
    from scheduler import alerts
    from scheduler.clock import VirtualClock
    from tests.test_alerts import Webhook

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    command.upgrade(_alembic_config(engine), "0006")
    with engine.begin() as conn:
        conn.execute(sa.insert(tables.alert_message), [
            {"kind": "test", "title": "sent before", "body": "-", "created_at": NOW,
             "next_try_at": NOW, "attempts": 1, "sent_at": NOW, "last_error": None},
            {"kind": "test", "title": "still tried", "body": "-", "created_at": NOW,
             "next_try_at": NOW, "attempts": 2, "sent_at": None,
             "last_error": "failure (to …): error=500"}])
    assert upgrade(engine) == ("0006", SCHEMA_HEAD)
    one, two = Webhook(), Webhook()
    try:
        r = alerts.deliver(engine, alerts.AppriseSender([one.url, two.url]), VirtualClock(NOW).now)
    finally:
        one.close()
        two.close()
    assert (r.sent, r.failed) == (1, 0) and one.titles() == two.titles() == ["still tried"]
    with engine.connect() as conn:
        sent = conn.execute(sa.select(tables.alert_message.c.title, tables.alert_message.c.attempts)
                            .where(tables.alert_message.c.sent_at.is_not(None))
                            .order_by(tables.alert_message.c.id)).all()
        rows = conn.execute(sa.select(tables.alert_delivery.c.message_id,
                                      tables.alert_delivery.c.destination)
                            .order_by(tables.alert_delivery.c.position)).all()
    assert [tuple(s) for s in sent] == [("sent before", 1), ("still tried", 3)]
    assert [tuple(x) for x in rows] == [(2, one.url), (2, two.url)]
    command.downgrade(_alembic_config(engine), "0006")
    with engine.connect() as conn:
        assert "alert_delivery" not in sa.inspect(conn).get_table_names()
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.alert_message)).scalar() == 2
    assert upgrade(engine) == ("0006", SCHEMA_HEAD)
    engine.dispose()


def test_0008_thread_indexes_hold_thread_posts_only_and_still_find_followers(
        any_engine: Engine, tmp_path: Path, make_campaign: CampaignFactory) -> None:
    """After 0008 the indexes on parent_id and thread_root_id are partial (NULLs, most
    posts, left out), and a look-up of a post's followers still goes through them, on
    both databases; a plan's thread is found by them as before; 0008 downgrades to the
    plain indexes and upgrades again."""
    plan(any_engine, make_campaign(simple_toml(posts=THREAD)), now=NOW)
    with session(any_engine) as s:
        root = min(p.id for p in s.exec(select(Post)).all() if p.id is not None)
        assert len(s.exec(select(Post).where(Post.thread_root_id == root)).all()) == 2
    pg = any_engine.dialect.name == "postgresql"

    def uses(column: str, name: str) -> bool:
        with any_engine.connect() as conn:
            if pg:          # (a table this small is scanned unless told otherwise)
                conn.exec_driver_sql("SET enable_seqscan = off")
            explain = "EXPLAIN" if pg else "EXPLAIN QUERY PLAN"
            rows = conn.exec_driver_sql(f"{explain} SELECT id FROM post WHERE {column} = {root}")
            return name in " | ".join(str(r[-1]) for r in rows)

    def partial() -> set[str]:
        with any_engine.connect() as conn:
            if pg:
                return {r[0] for r in conn.exec_driver_sql(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'post' "
                    "AND indexdef LIKE '%%WHERE%%'")}
            return {r[1] for r in conn.exec_driver_sql("PRAGMA index_list(post)") if r[4]}

    both = {"ix_post_parent_id", "ix_post_thread_root_id"}
    assert partial() == both
    assert uses("parent_id", "ix_post_parent_id") and uses("thread_root_id", "ix_post_thread_root_id")
    any_engine.dispose()
    command.downgrade(_alembic_config(any_engine), "0007")
    assert partial() == set()
    assert uses("parent_id", "ix_post_parent_id")
    assert upgrade(any_engine) == ("0007", SCHEMA_HEAD)
    assert partial() == both
