"""Comms staff add, approve and cancel posts from the CLI while the daemon sends, on
SQLite: no "database is locked", no lost edits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from scheduler.db import make_engine, session
from scheduler.models import Post, PostState
from scheduler.planner import plan
from scheduler.service import approve
from tests.conftest import CampaignFactory, CliResult

pytestmark = pytest.mark.slow
S = PostState


def test_cli_writes_while_the_daemon_drains_the_queue(
        tmp_path: Path, make_campaign: CampaignFactory, cli: Callable[..., CliResult]) -> None:
    now = datetime.now(UTC)
    deadline = (now + timedelta(seconds=90)).replace(microsecond=0)
    accounts = "".join(f'\n[accounts.a{i}]\nplatform = "dryrun"\n' for i in range(50))
    times = ", ".join(f'"T-{s}s"' for s in range(89, 79, -1))
    folder = make_campaign(f"""
        [campaign]
        slug = "busy"
        title = "Busy"
        deadline = {deadline.isoformat()}
        timezone = "UTC"
        hashtags = ["#Busy"]
        {accounts}
        [[posts]]
        key = "wave"
        text = "{{{{ seconds_left }}}} s from {{{{ account }}}} #Busy"
        accounts = [{", ".join(f'"a{i}"' for i in range(50))}]
        schedule = {{ at = [{times}] }}
        expires = "80s"
    """.replace("\n        ", "\n"))
    url = f"sqlite:///{tmp_path}/tminus.db"        # the `cli` fixture's database
    engine = make_engine(url)
    cli("db", "upgrade")
    plan(engine, folder, now=now)
    approve(engine, campaign="busy", post_ids=[], by="ana", now=now)

    env = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_")}
    env.update(TMINUS_DATABASE_URL=url, TMINUS_DRYRUN_OUTBOX=str(tmp_path / "outbox.jsonl"),
               TMINUS_POLL_SECONDS="0.2")
    daemon = subprocess.Popen([str(Path(sys.executable).parent / "tminus"), "run", "--dry-run"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    added: list[int] = []
    canceled: list[int] = []
    try:
        for i in range(30):
            r = cli("queue", "add", "--account", f"a{i}", "--at", "+2s", "--campaign", "busy",
                    f"one-off number {i} #Busy")
            assert r.code == 0, r.err
            post_id = int(r.out.split()[1])
            added.append(post_id)
            if i % 3 == 0:
                r = cli("cancel", "--post", str(post_id), "--by", "ben")
                canceled.append(post_id)
            else:
                r = cli("approve", "busy", "--by", "ana", "--post", str(post_id))
            assert r.code == 0, r.err
            assert "locked" not in r.out + r.err
        # wait (bounded) for the daemon to send everything approved
        limit = time.monotonic() + 60
        while time.monotonic() < limit:
            with session(engine) as s:
                pending = s.exec(select(Post).where(Post.state.in_([S.QUEUED, S.SENDING]))).all()  # type: ignore[attr-defined]
            if not pending:
                break
            time.sleep(0.2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert "locked" not in err.lower()
    assert daemon.returncode == 0, err

    with session(engine) as s:
        posts = {p.id: p for p in s.exec(select(Post)).all()}
    assert len(posts) == 500 + 30
    for pid in added:                                    # no lost edit
        want = S.CANCELED if pid in canceled else S.PUBLISHED
        assert posts[pid].state == want, (pid, posts[pid].state)
    assert sum(p.state == S.PUBLISHED for p in posts.values()) == 500 + 20
    lines = [json.loads(x) for x in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert len(lines) == len({x["post_id"] for x in lines}) == 520
