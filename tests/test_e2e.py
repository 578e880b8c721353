"""End to end: `tminus run` as a real process on a campaign whose deadline is seconds
away. Every post goes out once, in order, on time, none after the deadline; SIGTERM
stops the daemon cleanly."""

from __future__ import annotations

import functools
import json
import operator
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import CampaignFactory, CliResult

pytestmark = pytest.mark.slow
TMINUS = str(Path(sys.executable).parent / "tminus")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_")}
    env.update(TMINUS_DATABASE_URL=f"sqlite:///{tmp_path}/tminus.db",
               TMINUS_DRYRUN_OUTBOX=str(tmp_path / "outbox.jsonl"),
               TMINUS_POLL_SECONDS="0.5", COLUMNS="200")
    return env


def _tminus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TMINUS, *args], env=env, capture_output=True, text=True, timeout=60)


def _outbox(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _daemon_started(tmp_path: Path) -> bool:
    """The daemon's first heartbeat is in the database: its signal handlers are set."""
    try:
        with sqlite3.connect(tmp_path / "tminus.db") as conn:
            return bool(conn.execute("SELECT count(*) FROM daemon").fetchone()[0])
    except sqlite3.OperationalError:    # no schema yet
        return False


def test_daemon_sends_every_post_once_in_order_before_the_deadline(
        tmp_path: Path, make_campaign: CampaignFactory, cli: Callable[..., CliResult]) -> None:
    env = _env(tmp_path)
    # the daemon first, on an empty database, and the campaign once it is up: on a
    # loaded machine its start-up must not eat the seconds the posts are due in
    daemon = subprocess.Popen([TMINUS, "run"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    limit = time.monotonic() + 60
    while not _daemon_started(tmp_path) and time.monotonic() < limit and daemon.poll() is None:
        time.sleep(0.1)
    deadline = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
    folder = make_campaign(f"""
        [campaign]
        slug = "e2e"
        title = "End to end"
        deadline = {deadline.isoformat()}
        timezone = "UTC"
        hashtags = ["#E2E"]

        [accounts.org]
        platform = "dryrun"

        [accounts.ally]
        platform = "dryrun"

        [[posts]]
        key = "count"
        text = "{{{{ seconds_left }}}} seconds left {{{{ hashtags }}}}"
        accounts = ["org", "ally"]
        schedule = {{ at = ["T-6s", "T-4s", "T-2s"] }}
        expires = "5s"

        [[posts]]
        key = "too-late"
        text = "this one is never approved {{{{ hashtags }}}}"
        accounts = ["org"]
        schedule = {{ at = "T-3s" }}
    """)
    planned = cli("plan", str(folder))
    assert planned.code == 0, planned.err
    listing = json.loads(cli("preview", "e2e", "--format", "json").out)
    ids = [r["id"] for r in listing[0]["rows"] if r["text"].startswith(tuple("0123456789"))]
    assert len(ids) == 6
    approved = cli("approve", "e2e", "--by", "tester",
                   *functools.reduce(operator.iadd, [["--post", str(i)] for i in ids], []))
    assert approved.code == 0, approved.err

    try:
        # wait (bounded) until the deadline has passed and the last post had its chance
        limit = time.monotonic() + 30
        while datetime.now(UTC) < deadline + timedelta(seconds=1.5) and time.monotonic() < limit:
            time.sleep(0.2)
        assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, err
    assert "stopped" in err

    sent = _outbox(tmp_path)
    assert sorted(line["post_id"] for line in sent) == sorted(ids)          # each once
    ats = [datetime.fromisoformat(line["at"]) for line in sent]
    dues = [datetime.fromisoformat(line["due"]) for line in sent]
    assert ats == sorted(ats)                                                # in order
    assert all(a >= d for a, d in zip(ats, dues, strict=False))                            # never early
    assert all(a < deadline for a in ats)                                    # never late
    assert all(a < d + timedelta(seconds=5) for a, d in zip(ats, dues, strict=False))      # within expires

    status = _tminus(env, "list", "--state", "expired")
    assert status.returncode == 0 and "1 post(s)" in status.stdout          # the unapproved one
    after = _tminus(env, "status")
    assert "no daemon running" in after.stdout and "published 6" in after.stdout


def test_demo_shows_countdown_posts_going_out(tmp_path: Path) -> None:
    env = _env(tmp_path)
    done = subprocess.run([TMINUS, "demo", "--seconds", "20", "--folder", str(tmp_path / "demo")],
                          env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    sent = _outbox(tmp_path)
    assert len(sent) >= 2
    assert "seconds" in sent[0]["text"]
    assert "demo done" in done.stdout
