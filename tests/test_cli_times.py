"""Every time a person reads is in its campaign's timezone with the abbreviation, UTC
with `--utc` (issue 13): pauses and rate-limit waits in `status`, `pause`, `resume`,
`report` (table and HTML), `notify status`, the alerts' own texts and `queue add`'s
errors. A time of no campaign (`users list`, a pause of everything) is in the
machine's timezone (`TZ`). At 80 and 200 columns, run in-process."""

from __future__ import annotations

import io
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.cells import cell_len
from sqlalchemy.engine import Engine
from sqlmodel import select

from scheduler.db import session
from scheduler.models import Account, AlertMessage, Campaign
from tests.conftest import CampaignFactory, CliResult, simple_toml

Cli = Callable[..., CliResult]
# 2099-01-18 14:00 UTC is 09:00 in New York (EST, the campaign's) and 23:00 in Tokyo
AT = datetime(2099, 1, 18, 14, 0, tzinfo=UTC)


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine's timezone is Asia/Tokyo (JST, no DST) for the test."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def db(cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> Iterator[Engine]:
    """A planned, approved campaign in America/New_York, and the CLI's database."""
    folder = make_campaign(simple_toml())
    assert cli("plan", str(folder)).code == 0
    assert cli("approve", "testcamp", "--by", "Ana").code == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path}/tminus.db")
    yield engine
    engine.dispose()


def _line(out: str, needle: str) -> str:
    found = [ln for ln in out.splitlines() if needle in ln]
    assert len(found) == 1, out
    return found[0]


@pytest.mark.parametrize("columns", ["80", "200"])
def test_status_gives_rate_limit_and_pause_times_in_the_campaign_timezone(
        cli: Cli, db: Engine, tokyo: None, monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    with session(db) as s:
        acc = s.exec(select(Account).where(Account.name == "org")).one()
        acc.resume_at = AT
        s.add(acc)
    assert cli("pause", "testcamp", "--reason", "news broke", "--by", "Ana").code == 0
    r = cli("status")
    assert r.code == 0, r.err
    assert _line(r.out, "rate limited until").endswith("until Sun 18 Jan 09:00:00 EST")
    paused = _line(r.out, "campaign testcamp paused since")
    assert " EST by Ana: news broke" in paused and "JST" not in paused
    # the activity entry of a campaign's pause: the campaign's zone too
    assert " EST Ana: paused campaign testcamp" in _line(r.out, "Ana: paused campaign testcamp")
    again = cli("pause", "testcamp", "--reason", "x", "--by", "Ben").out
    assert "already paused since " in again and " EST by Ana" in again
    utc = cli("status", "--utc").out
    assert _line(utc, "rate limited until").endswith("until Sun 18 Jan 14:00:00 UTC")
    assert " EST" not in utc and " UTC by Ana: news broke" in utc


def test_a_pause_of_everything_is_in_the_machine_timezone(cli: Cli, db: Engine, tokyo: None) -> None:
    assert cli("pause", "--all", "--reason", "news broke", "--by", "Ana").code == 0
    paused = _line(cli("status").out, "everything paused since")
    assert " JST by Ana" in paused
    assert " UTC by Ana" in _line(cli("status", "--utc").out, "everything paused since")
    r = cli("resume", "--all", "--by", "Ben")
    assert r.code == 0, r.err
    # what the activity log keeps says how long, not a time in some zone
    assert re.search(r"Ben: resumed everything \(paused \d+s? by Ana: news broke\)",
                     cli("status").out)


def test_resume_lists_what_expired_in_the_campaign_timezone(cli: Cli, db: Engine) -> None:
    assert cli("pause", "testcamp", "--reason", "wait", "--by", "Ana").code == 0
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with db.begin() as c:    # paused an hour ago; post 1's window ended while it held
        c.execute(sa.text("UPDATE pause SET paused_at = :p"), {"p": hour_ago})
        c.execute(sa.text("UPDATE post SET not_after = :n WHERE id = 1"),
                  {"n": hour_ago + timedelta(minutes=1)})
    r = cli("resume", "testcamp", "--by", "Ben")
    assert r.code == 0, r.err
    assert "expired while paused: 1" in r.out
    assert ", due Sun 18 Jan 09:00 EST: " in _line(r.out, "expired #1")
    assert "UTC" not in r.out


def test_users_list_is_in_the_machine_timezone(
        cli: Cli, db: Engine, tokyo: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert cli("users", "add", "Ana Ruiz", "--role", "admin", "--by", "root").code == 0
    line = _line(cli("users", "list").out, "Ana Ruiz")
    assert " JST by root" in line and "UTC" not in line
    assert " UTC by root" in _line(cli("users", "list", "--utc").out, "Ana Ruiz")


def test_notify_status_reads_in_the_campaign_timezone_or_the_machine(
        cli: Cli, db: Engine, tokyo: None) -> None:
    with session(db) as s:
        camp = s.exec(select(Campaign)).one()
        s.add(AlertMessage(kind="failed", campaign_id=camp.id, title="1 failed", body="b",
                           created_at=AT, next_try_at=AT, attempts=1, sent_at=AT))
        s.add(AlertMessage(kind="no-daemon", campaign_id=None, title="no daemon", body="b",
                           created_at=AT, next_try_at=AT, attempts=0))
    r = cli("notify", "status")
    assert r.code == 0, r.err
    assert _line(r.out, "1 failed").endswith("1 failed: sent Sun 18 Jan 09:00:00 EST")
    assert "Sun 18 Jan 23:00:00 JST no daemon" in _line(r.out, "no daemon")
    utc = cli("notify", "status", "--utc").out
    assert "sent Sun 18 Jan 14:00:00 UTC" in utc and "JST" not in utc and "EST" not in utc


@pytest.mark.parametrize("columns", ["80", "200"])
def test_report_table_and_html_in_the_campaign_timezone(
        cli: Cli, db: Engine, tokyo: None, monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    r = cli("report", "testcamp")
    assert r.code == 0, r.err
    assert "deadline Tue 20 Jan 2099 12:00 EST" in r.out and "UTC" not in r.out
    lines = r.out.splitlines()
    assert lines[2].split() == ["#", "account", "due", "(local)", "state", "went", "out",
                                "engagement", "text", "/", "why"]
    rows = [ln for ln in lines if ln[:1].isdigit()]
    assert len(rows) == 5 and all(cell_len(ln) <= int(columns) for ln in rows), rows
    assert rows[0].startswith("1  org      Sun 18 Jan 09:00 EST  queued ")   # nothing folded
    assert all("202-" not in ln or "202-555-0100" in ln for ln in rows)
    utc = cli("report", "testcamp", "--utc").out
    assert "deadline Tue 20 Jan 2099 17:00 UTC" in utc and "EST" not in utc
    html = cli("report", "testcamp", "--format", "html").out
    assert "deadline 2099-01-20 12:00 EST" in html and "2099-01-18 09:00:00 EST" in html
    assert " UTC" not in html


def test_queue_add_says_its_refusals_in_the_campaign_timezone(cli: Cli, db: Engine) -> None:
    r = cli("queue", "add", "--account", "org", "--at", "2099-01-21T09:00:00", "Too late")
    assert r.code == 2
    assert "2099-01-21 09:00:00 EST is not before the deadline of testcamp (2099-01-20 12:00 EST)" \
        in r.err and "UTC" not in r.err


def test_alert_texts_name_times_in_the_campaign_timezone(db: Engine) -> None:
    from scheduler.alerts import _conditions
    with session(db) as s:
        acc = s.exec(select(Account).where(Account.name == "org")).one()
        acc.resume_at = datetime(2099, 1, 19, 14, 0, tzinfo=UTC)   # after the first post's window
        s.add(acc)
    with session(db) as s:
        said = [n.text for n in _conditions(s, datetime(2099, 1, 17, tzinfo=UTC))]
    assert any("org may post again at 2099-01-19 09:00 EST" in t for t in said), said


def test_status_on_a_real_terminal_reads_local_times_and_fits(
        cli: Cli, db: Engine, tmp_path: Path, tokyo: None) -> None:
    """On a pty of 80 columns (no COLUMNS: rich asks the terminal), with colours."""
    from tests.test_cli_confirm import Terminal
    with session(db) as s:
        acc = s.exec(select(Account).where(Account.name == "org")).one()
        acc.resume_at = AT
        s.add(acc)
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"TERM": "xterm-256color"}
    code, shown = Terminal(env, tmp_path, "status").finish()
    assert code == 0, shown
    lines = shown.splitlines()
    assert lines[0].startswith("Test campaign (testcamp) — ") and " EST" in lines[0]
    assert "account org rate limited until Sun 18 Jan 09:00:00 EST" in shown
    nxt = [ln for ln in lines if ln.startswith("  #")]
    assert len(nxt) == 5 and all(cell_len(ln) <= 80 for ln in nxt), nxt
    assert all(" EST " in ln for ln in nxt) and "UTC" not in shown


def test_an_account_pause_reads_the_same_in_status_and_its_activity_line(
        cli: Cli, db: Engine, tokyo: None) -> None:
    assert cli("pause", "--account", "org", "--reason", "odd replies", "--by", "Ana").code == 0
    out = cli("status").out
    since = _line(out, "account org paused since").split("since ", 1)[1].split(" by ")[0]
    logged = _line(out, "Ana: paused account org").strip().split(" Ana: ")[0]
    assert since == logged and since.endswith(" JST")
