"""`tminus accounts check` against the fake platforms, every command on PostgreSQL,
and the daemon refusing a database whose schema is not at head."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from scheduler import tables
from scheduler.db import make_engine, session
from scheduler.models import Account
from tests.conftest import CampaignFactory, CliResult, simple_toml
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import mastodon as fm
from tests.platform_world import PLATFORMS, SECRETS
from tests.platform_world import campaign as faults_campaign
from tests.platform_world import env as _env


def _campaign(deadline: datetime) -> str:
    return faults_campaign(deadline, list(PLATFORMS))

Cli = Callable[..., CliResult]


def test_accounts_check_says_who_each_account_posts_as(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakePlatformServer() as fake:
        fm.set_max_characters(fake, 1000)
        for k, v in _env(fake.url).items():
            monkeypatch.setenv(k, v)
        folder = make_campaign(_campaign(datetime.now(UTC) + timedelta(days=2)))
        assert cli("plan", str(folder)).code == 0
        r = cli("accounts", "check")
    assert r.code == 0, r.err
    lines = {ln.split()[1]: ln for ln in r.out.splitlines() if ln.startswith("✓")}
    assert set(lines) == {"org_x", "org_masto", "org_bsky"}
    assert "posts as @" in lines["org_x"] and "1000 characters per post" in lines["org_masto"]
    assert all(secret not in r.out + r.err for secret in SECRETS)
    # the instance's own limit is kept and used when planning
    url = f"sqlite:///{folder.parent}/tminus.db"
    with session(make_engine(url)) as s:
        masto = s.exec(select(Account).where(Account.name == "org_masto")).one()
        assert masto.max_characters == 1000 and masto.handle


def test_accounts_check_reports_refused_credentials(
        cli: Cli, make_campaign: CampaignFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakePlatformServer() as fake:
        for k, v in _env(fake.url).items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("TMINUS_ORG_MASTO_ACCESS_TOKEN", "wrong-token-value")
        folder = make_campaign(_campaign(datetime.now(UTC) + timedelta(days=2)))
        assert cli("plan", str(folder)).code == 0
        r = cli("accounts", "check", "org_masto", "org_x")
    assert r.code == 2
    assert "✗ org_masto" in r.err and "✓ org_x" in r.out
    assert "wrong-token-value" not in r.out + r.err
    assert "Traceback" not in r.err


@pytest.mark.postgres
def test_every_step_works_on_postgres(cli: Cli, make_campaign: CampaignFactory,
                                      monkeypatch: pytest.MonkeyPatch, pg_url: str) -> None:
    monkeypatch.setenv("TMINUS_DATABASE_URL", pg_url)
    folder = make_campaign(simple_toml())
    assert cli("db", "upgrade").code == 0
    assert "5 new" in cli("plan", str(folder)).out
    assert "approved 5" in cli("approve", "testcamp", "--by", "ana").out
    r = cli("queue", "add", "--account", "org", "--at", "T-30m", "--by", "ana", "one more #TestTag")
    assert r.code == 0, r.err
    assert "6 post(s)" in cli("list", "--state", "queued").out
    assert "queued 6" in cli("status").out
    assert "sent 0" in cli("run", "--once", "--dry-run").out
    assert cli("cancel", "testcamp", "--by", "ben").code == 2      # a whole campaign: asks first
    assert cli("cancel", "testcamp", "--by", "ben", "--yes").code == 0
    assert "6 post(s)" in cli("list", "--state", "canceled").out
    assert "canceled by ben" in cli("log", "1").out


def test_schema_head_constant_is_the_newest_migration() -> None:
    from scheduler.db import SCHEMA_HEAD, head_revision
    assert head_revision() == SCHEMA_HEAD


def test_the_daemon_refuses_a_database_not_at_head(cli: Cli, tmp_path: object) -> None:
    from pathlib import Path
    assert isinstance(tmp_path, Path)
    engine = make_engine(f"sqlite:///{tmp_path}/tminus.db")
    tables.metadata.create_all(engine)       # tables, but no Alembic version
    r = cli("run", "--once")
    assert r.code == 2
    assert "run `tminus db upgrade` first" in r.err
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from post")).scalar() == 0


def _page_cache(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())


def test_the_page_cache_is_bounded_only_when_asked(tmp_path: object) -> None:
    """`page_cache_kib` sets every new SQLite connection's `cache_size` (negative: KiB);
    without it SQLite keeps its own default (the commands, the planner)."""
    url = f"sqlite:///{tmp_path}/tminus.db"
    assert _page_cache(make_engine(url)) == -2000
    bounded = make_engine(url, page_cache_kib=64)
    pooled = [bounded.raw_connection() for _ in range(2)]     # two connections at once
    try:
        assert [c.cursor().execute("PRAGMA cache_size").fetchone() for c in pooled] == [(-64,)] * 2
    finally:
        for c in pooled:
            c.close()


def test_tminus_run_opens_its_database_with_the_daemon_s_page_cache(
        cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.db import DAEMON_PAGE_CACHE_KIB
    opened: list[sa.Engine] = []

    def recording(url: str, **kw: int | None) -> sa.Engine:
        opened.append(make_engine(url, **kw))
        return opened[-1]

    monkeypatch.setattr("scheduler.service.database.make_engine", recording)
    assert cli("run", "--once", "--dry-run").code == 0
    assert [_page_cache(e) for e in opened] == [-DAEMON_PAGE_CACHE_KIB]
    assert DAEMON_PAGE_CACHE_KIB < 2000
    # the other commands keep SQLite's default
    opened.clear()
    assert cli("status").code == 0
    assert opened and all(_page_cache(e) == -2000 for e in opened)
