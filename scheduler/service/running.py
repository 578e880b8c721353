"""Running the daemon: for good (`tminus run`), once (`--once`), or for the demo."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col

from content.errors import FieldError
from scheduler.daemon import Daemon
from scheduler.db import session
from scheduler.demo import write_demo_campaign
from scheduler.models import CANCELABLE_STATES, Campaign, Post, PostState
from scheduler.planner import plan
from scheduler.service.approving import approve
from scheduler.service.database import open_database
from scheduler.service.run import run_daemon as run_daemon
from scheduler.service.run import run_once as run_once
from scheduler.service.run import worker as worker
from scheduler.settings import Settings
from scheduler.transitions import Seen, change

DEMO_SLUG = "demo"
DEMO_MIN_SECONDS = 20
DEMO_MAX_SECONDS = 86400   # longer is a typo, and 99999999999999 s overflows a date


@dataclass(frozen=True)
class DemoReady:
    folder: Path
    posts: int
    deadline: datetime
    outbox: Path
    database_url: str


def demo_database(folder: Path) -> str:
    """The demo's own database, inside its folder: a demo never touches the real queue."""
    return f"sqlite:///{folder / 'demo.db'}"


def demo(settings: Settings, *, folder: Path, seconds: int, now: datetime,
         on_ready: Callable[[DemoReady], None]) -> int:
    """Write a demo campaign whose deadline is `seconds` away, plan and approve it in
    the demo's own database, and run the daemon through the dry-run adapter until the
    deadline has passed. Returns how many posts went out."""
    if not DEMO_MIN_SECONDS <= seconds <= DEMO_MAX_SECONDS:
        raise FieldError("seconds", f"must be between {DEMO_MIN_SECONDS} and {DEMO_MAX_SECONDS} "
                         "(a day)")
    folder.mkdir(parents=True, exist_ok=True)
    settings = dataclasses.replace(settings, database_url=demo_database(folder))
    engine = open_database(settings)
    with session(engine) as s:
        old = sa.select(col(Campaign.id)).where(col(Campaign.slug) == DEMO_SLUG)
        rows = s.execute(sa.select(col(Post.id), col(Post.state)).where(
            col(Post.campaign_id).in_(old), col(Post.state).in_(CANCELABLE_STATES))).all()
        change(s, [Seen(r.id, r.state) for r in rows], PostState.CANCELED,
               reason="superseded by a new demo", now=now, actor="demo")
    deadline = write_demo_campaign(folder, now, seconds)
    planned = plan(engine, folder, now=now, actor="demo")
    approve(engine, campaign=DEMO_SLUG, post_ids=[], by="demo", now=now)
    on_ready(DemoReady(folder, planned.created, deadline, settings.dryrun_outbox,
                       settings.database_url))
    w = worker(engine, settings, dry_run=True)
    daemon = Daemon(w)
    stop_in = (deadline - w.clock.now()).total_seconds() + 2
    timer = threading.Timer(stop_in, lambda: daemon.stop("the demo's deadline has passed"))
    timer.daemon = True
    timer.start()
    daemon.run()
    return w.sent_total
