"""Shared fixtures: a fresh SQLite database per test, campaign folders written on the
fly, a fixed clock, the CLI run in-process, and the three fake platforms."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.engine import Engine

from jobs.adapters.base import Clock, MemorySessionStore, SessionStore
from scheduler.db import make_engine, upgrade

if TYPE_CHECKING:
    from tests.fakeplatform import FakePlatformServer

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["tests.browser"]     # `chromium` and `browser_context`: a real browser


def utcnow() -> datetime:
    """The real clock, for adapters built in tests that do not fix the time."""
    return datetime.now(UTC)


def build_adapter(cls: Any, account: str, values: dict[str, str], *, timeout: float,
                  now: Clock = utcnow, session_store: SessionStore | None = None) -> Any:
    """`cls.from_credentials` with its credentials dataclass filled from `values`
    ({"API_KEY": ...}, as the variables are named); a required one left out is empty,
    which the adapter refuses as missing."""
    fields = {v.suffix.lower(): values.get(v.suffix, "" if v.required else None)
              for v in cls.CREDENTIALS.variables()}
    return cls.from_credentials(account, cls.CREDENTIALS(**fields), timeout=timeout, now=now,
                                session_store=session_store or MemorySessionStore())


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path}/tminus.db")
    upgrade(eng)
    yield eng
    eng.dispose()


CampaignFactory = Callable[..., Path]


@pytest.fixture
def make_campaign(tmp_path: Path) -> CampaignFactory:
    """Write a campaign folder: `make_campaign(toml, templates={name: text})`."""
    counter = iter(range(1000))

    def make(toml: str, templates: dict[str, str] | None = None, name: str | None = None) -> Path:
        folder = tmp_path / (name or f"campaign{next(counter)}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "campaign.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
        for fname, text in (templates or {}).items():
            (folder / fname).write_text(textwrap.dedent(text), encoding="utf-8")
        return folder

    return make


# simple_toml's accounts and posts, for a test that adds to them
SIMPLE_ACCOUNTS = """
    [accounts.org]
    platform = "dryrun"

    [accounts.partner]
    platform = "dryrun"
"""
SIMPLE_POSTS = """
    [[posts]]
    key = "daily"
    text = "{{ time_left }} left. Call {{ call_line }}. {{ hashtags }}"
    accounts = ["org"]
    schedule = { daily = "09:00", from = "T-3d" }

    [[posts]]
    key = "last-call"
    text = "Last call from {{ account }}: {{ hours_left }} hours. {{ hashtags }}"
    accounts = ["org", "partner"]
    schedule = { at = "T-2h" }
"""


def simple_toml(deadline: str = "2099-01-20T12:00:00-05:00", *, slug: str = "testcamp",
                posts: str | None = None, accounts: str | None = None) -> str:
    """A small valid campaign: two dry-run accounts, a daily countdown and a last call."""
    accounts = accounts or SIMPLE_ACCOUNTS
    posts = posts or SIMPLE_POSTS
    return textwrap.dedent(f"""
        [campaign]
        slug = "{slug}"
        title = "Test campaign"
        deadline = {deadline}
        timezone = "America/New_York"
        hashtags = ["#TestTag"]

        [vars]
        call_line = "202-555-0100"
    """) + textwrap.dedent(accounts) + textwrap.dedent(posts)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `tminus ARGS` in-process against a database in tmp_path."""
    monkeypatch.setenv("TMINUS_DATABASE_URL", f"sqlite:///{tmp_path}/tminus.db")
    monkeypatch.setenv("TMINUS_DRYRUN_OUTBOX", str(tmp_path / "outbox.jsonl"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    from scheduler.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["tminus", *args])
        with pytest.raises(SystemExit) as exc:
            main()
        captured = capsys.readouterr()
        code = exc.value.code
        return CliResult(int(code) if isinstance(code, int) else (0 if code is None else 1),
                         captured.out, captured.err)

    return run


@pytest.fixture
def fake() -> Iterator[FakePlatformServer]:
    """The three fake platforms (X, Mastodon, Bluesky) in one server, with two accounts
    on each (`tests.fakeplatform.accounts`: numbers 1 and 2). A test module that needs
    other accounts defines its own `fake`."""
    from tests.fakeplatform import FakePlatformServer
    from tests.fakeplatform import accounts as fake_accounts
    with FakePlatformServer() as server:
        for platform in ("x", "mastodon", "bluesky"):
            fake_accounts.add(server, platform, 2)
        yield server


NOW = datetime(2099, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its cheapest parameters for the passwords hashed in the test process:
    the production hasher costs a quarter of a second of CPU per hash and per check, and
    the web tests log people in hundreds of times. What is checked stays the same (a hash
    is made, verified, refused when wrong; argon2 reads a hash's parameters from the
    hash, so one made elsewhere is still checked); test_web.py checks the production
    parameters themselves. Daemons and commands in subprocesses hash as in production."""
    from argon2 import PasswordHasher, profiles

    from scheduler.service import people
    cheap = PasswordHasher.from_parameters(profiles.CHEAPEST)
    monkeypatch.setattr(people, "_hasher", lambda: cheap)


# -- order: the long tests first ---------------------------------------------------------
# `make test` runs the suite on several workers (pytest-xdist, `--dist loadgroup`), which
# hands out an xdist_group whole (the largest first) and every other test on its own, in
# collection order. The end-to-end tests (marked `slow`: daemons in subprocesses, the
# benchmark's quick run, chaos, browsers) take from seconds to a minute each and mostly
# wait: started first, they run beside the quick tests, instead of one of them starting
# last and leaving the other workers idle.

def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)   # stable


# -- PostgreSQL -------------------------------------------------------------------------
# A private server for the test session, from the machine's PostgreSQL binaries
# (Debian's `postgresql` package; .ci/run installs it), or the server named by
# TMINUS_TEST_POSTGRES_URL. Missing binaries fail the PostgreSQL tests: never skipped.


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A base URL (without database name) of a running PostgreSQL server: a private
    one from the machine's binaries (bench/pg.py starts it), or TMINUS_TEST_POSTGRES_URL."""
    from bench.pg import server
    try:
        with server("TMINUS_TEST_POSTGRES_URL") as url:
            yield url
    except RuntimeError as e:  # no binaries: fail, never skip
        pytest.fail(str(e))


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server for one test."""
    import uuid

    import psycopg
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = pg_server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"{pg_server}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The queue tests run on both databases."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/tminus.db"
    else:
        url = request.getfixturevalue("pg_url")
    eng = make_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()
