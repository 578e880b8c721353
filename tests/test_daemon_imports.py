"""The daemon's process runs on SQLAlchemy Core alone: what `tminus run` builds, run until
it has sent a post and stopped, imports neither the ORM nor SQLModel nor pydantic (nor
anything else a command needs and the daemon does not). Their import alone cost more
memory than APScheduler's whole process (bench/start.py measures the peak; this test
checks only which modules are loaded, in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scheduler import tables
from scheduler.planner import plan
from scheduler.service import approve
from tests.conftest import CampaignFactory, simple_toml

ROOT = Path(__file__).resolve().parent.parent
NEVER = ["sqlalchemy.orm", "sqlmodel", "pydantic", "pydantic_core", "scheduler.models",
         "alembic", "jinja2", "phonenumbers", "langcodes", "typer", "click", "rich",
         "apscheduler", "scheduler.alerts", "scheduler.planner", "scheduler.service",
         "scheduler.web", "content.campaign", "content.render"]

# What `tminus run --dry-run` builds (as bench/start.py's child does), run until its
# first tick is over, then stopped the daemon's own way (SIGTERM).
DAEMON = """
import json, os, signal, sys
from pathlib import Path
from scheduler.clock import SystemClock
from scheduler.daemon import Daemon, Worker
from scheduler.db import ensure_schema, make_engine
from scheduler.publishers import Publishers
from scheduler.settings import Settings

settings = Settings(database_url=sys.argv[1], dryrun_outbox=Path(sys.argv[2]), dry_run=True,
                    log_level="WARNING")
engine = make_engine(settings.database_url)
ensure_schema(engine)
worker = Worker(engine, settings, SystemClock(), Publishers(engine, settings, dry_run=True))
daemon = Daemon(worker)
tick, sent = worker.tick, []

def first_tick(**kw):
    result = tick(**kw)
    sent.append(result.sent)
    if sum(sent):
        worker.housekeeping()           # reaping and look-ups: the housekeeping thread's
        os.kill(os.getpid(), signal.SIGTERM)
    return result

worker.tick = first_tick
daemon.run()
print(json.dumps({"sent": sum(sent), "modules": sorted(sys.modules)}))
"""


def _loaded(modules: list[str], names: list[str]) -> list[str]:
    return [n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)]


def test_the_daemon_sends_without_the_orm_sqlmodel_or_pydantic(
        engine: Engine, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    plan(engine, make_campaign(simple_toml()), now=now, actor="test")
    approve(engine, campaign="testcamp", post_ids=[], by="test", now=now)
    post = tables.post
    with engine.begin() as conn:
        first = conn.execute(sa.select(sa.func.min(post.c.id))).scalar_one()
        conn.execute(sa.update(post).where(post.c.id == first).values(next_attempt_at=now))
    url, outbox = str(engine.url), tmp_path / "outbox.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(DAEMON), url, str(outbox)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["sent"] == 1 and len(outbox.read_text().splitlines()) == 1
    assert "scheduler.daemon" in out["modules"] and "sqlalchemy" in out["modules"]
    assert _loaded(out["modules"], NEVER) == []
    with engine.begin() as conn:
        assert conn.execute(sa.select(post.c.state).where(post.c.id == first)).scalar() \
            == "published"


def test_the_check_sees_an_import() -> None:
    """`_loaded` finds a package by any of its modules (the check above can fail)."""
    assert _loaded(["sqlalchemy", "sqlalchemy.orm.session"], NEVER) == ["sqlalchemy.orm"]
