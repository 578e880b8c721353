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
from typing import Any

import pytest
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
         "scheduler.web", "content.campaign", "content.render",
         # the length rules (X's character data, the regex module: 3.4 MB) and difflib:
         # the daemon never measures a post, and diffs a text only when it changed
         "content.rules", "regex", "difflib",
         # the tables only the commands, the web and the alerts use (scheduler/tables.py);
         # in a dry run, the sending processes and their fork server
         "scheduler.tables_rest", "scheduler.sendproc", "scheduler.prefork"]

# What `tminus run --dry-run` builds (as bench/start.py's child does), run until its
# first tick is over, then stopped the daemon's own way (SIGTERM).
DAEMON = """
import json, os, signal, sys
from pathlib import Path
from typing import Any
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


# The same through the command line, `tminus run --dry-run` itself: the console script
# (scheduler.entry), or typer's command line when ENTRY is scheduler.cli. (Typer imports
# pydantic for its own parameters: the command line's, not the daemon's.)
CLI = """
import json, os, signal, sys
from scheduler import daemon
tick, sent = daemon.Worker.tick, []

def first_tick(self, **kw):
    result = tick(self, **kw)
    sent.append(result.sent)
    if sum(sent):
        os.kill(os.getpid(), signal.SIGTERM)
    return result

daemon.Worker.tick = first_tick
sys.argv = ["tminus", "run", "--dry-run"]
from ENTRY import main
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
print(json.dumps({"sent": sum(sent), "modules": sorted(sys.modules)}))
"""
# typer's `tminus run` (`python -m scheduler.cli run`)
TYPER_NEVER = [*(n for n in NEVER if n not in ("pydantic", "pydantic_core", "typer", "click", "rich",
                                                "scheduler.service", "difflib")),   # click's
               # of the service layer, only what runs the daemon (`run`, `readiness`, `database`)
               "scheduler.service.running", "scheduler.service.accounts",
               "scheduler.service.posts", "scheduler.service.campaigns"]
# the console script's `tminus run`: no command line library at all (scheduler/entry.py)
SCRIPT_NEVER = [*TYPER_NEVER,
                "pydantic", "pydantic_core", "typer", "click", "rich", "scheduler.cli"]


def _loaded(modules: list[str], names: list[str]) -> list[str]:
    return [n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)]


def _one_post_due(engine: Engine, make_campaign: CampaignFactory) -> int:
    now = datetime.now(UTC)
    plan(engine, make_campaign(simple_toml()), now=now, actor="test")
    approve(engine, campaign="testcamp", post_ids=[], by="test", now=now)
    post = tables.post
    with engine.begin() as conn:
        first = int(conn.execute(sa.select(sa.func.min(post.c.id))).scalar_one())
        conn.execute(sa.update(post).where(post.c.id == first).values(next_attempt_at=now))
    return first


def _run(code: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=base | env)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert "scheduler.daemon" in out["modules"] and "sqlalchemy" in out["modules"]
    return out


def _published(engine: Engine, post_id: int) -> bool:
    with engine.begin() as conn:
        return conn.execute(sa.select(tables.post.c.state)
                            .where(tables.post.c.id == post_id)).scalar() == "published"


def test_the_daemon_sends_without_the_orm_sqlmodel_or_pydantic(
        engine: Engine, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    first = _one_post_due(engine, make_campaign)
    outbox = tmp_path / "outbox.jsonl"
    out = _run(DAEMON, [str(engine.url), str(outbox)], {})
    assert out["sent"] == 1 and len(outbox.read_text().splitlines()) == 1
    assert _published(engine, first)
    assert _loaded(out["modules"], NEVER) == []


@pytest.mark.parametrize(("entry", "never"), [("scheduler.entry", SCRIPT_NEVER),
                                               ("scheduler.cli", TYPER_NEVER)],
                         ids=["console script", "typer"])
def test_tminus_run_sends_without_the_orm_or_sqlmodel(
        engine: Engine, make_campaign: CampaignFactory, tmp_path: Path, entry: str,
        never: list[str]) -> None:
    first = _one_post_due(engine, make_campaign)
    outbox = tmp_path / "outbox.jsonl"
    out = _run(CLI.replace("ENTRY", entry), [], {"TMINUS_DATABASE_URL": str(engine.url),
                                                "TMINUS_DRYRUN_OUTBOX": str(outbox)})
    assert out["sent"] == 1 and len(outbox.read_text().splitlines()) == 1
    assert _published(engine, first)
    assert entry in out["modules"]
    assert _loaded(out["modules"], never) == []


def test_alerts_run_on_core_too() -> None:
    """With TMINUS_NOTIFY the daemon imports `scheduler.alerts` (and Apprise) for its
    alert thread: that brings no ORM either."""
    out = _run("""
        import json, sys
        import scheduler.alerts, scheduler.daemon
        print(json.dumps({"modules": sorted(sys.modules)}))
        """, [], {})
    assert "scheduler.alerts" in out["modules"]
    assert _loaded(out["modules"], [n for n in NEVER if n != "scheduler.alerts"]) == []


def test_the_check_sees_an_import() -> None:
    """`_loaded` finds a package by any of its modules (the check above can fail)."""
    assert _loaded(["sqlalchemy", "sqlalchemy.orm.session"], NEVER) == ["sqlalchemy.orm"]
