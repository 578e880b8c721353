"""Running the daemon: for good (`tminus run`), once (`--once`), or for the demo."""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from content.errors import FieldError
from scheduler import defaults
from scheduler.alerts import AppriseSender
from scheduler.clock import AnchoredClock, SystemClock
from scheduler.daemon import Daemon, TickResult, Worker
from scheduler.db import database_time, session
from scheduler.demo import write_demo_campaign
from scheduler.logs import secret_values
from scheduler.models import CANCELABLE_STATES, Campaign, Post, PostState
from scheduler.planner import plan
from scheduler.publishers import Publishers
from scheduler.queue import Scope
from scheduler.service.database import open_database
from scheduler.service.posts import approve
from scheduler.settings import Settings
from scheduler.transitions import Seen, change

DEMO_SLUG = "demo"
DEMO_MIN_SECONDS = 20
DEMO_MAX_SECONDS = 86400   # longer is a typo, and 99999999999999 s overflows a date


def worker(engine: Engine, settings: Settings, *, dry_run: bool = False) -> Worker:
    """The daemon's tick, with every account's adapter — or, in a dry run, the dry-run
    adapter for the posts of dry-run accounts only, so that no real post is used up.
    Its clock is the database's, carried forward on the monotonic clock."""
    dry = dry_run or settings.dry_run
    clock = AnchoredClock(lambda: database_time(engine), every=defaults.CLOCK_ANCHOR_SECONDS)
    publishers = Publishers(engine, settings, now=clock.now, dry_run=dry,
                            send_process=settings.send_process)
    return Worker(engine, settings, clock, publishers,
                  wall=SystemClock(settings.clock_offset_file), scope=Scope(dry_run_only=dry))


def run_once(w: Worker) -> TickResult:
    """Send what is due now, look up unknown outcomes, expire what is too late."""
    return w.drain()


def run_daemon(w: Worker) -> None:
    """Publish each post at its time until SIGTERM or Ctrl-C; alerts to TMINUS_NOTIFY
    when it is set (a URL Apprise cannot read stops it before it starts)."""
    daemon = Daemon(w, alert_sender(w.settings))
    daemon.prepare()
    # What is imported by now (the SDKs: hundreds of thousands of objects) lives as long
    # as the process: frozen, no garbage collection walks it again (a tenth of a
    # burst's CPU was spent doing so).
    gc.collect()
    gc.freeze()
    daemon.run()
    # Stopped and recorded: the process is about to exit. Python's last full garbage
    # collection at exit walks every object the SDKs and a thousand adapters left (it
    # took over 5 s of a busy machine, and the daemon was killed as hung after
    # SIGTERM); frozen, they are simply freed with the process.
    gc.freeze()


def alert_sender(settings: Settings) -> AppriseSender | None:
    """TMINUS_NOTIFY's sender, or None when alerts are off."""
    if not settings.notify_urls:
        return None
    return AppriseSender(settings.notify_urls, secrets=secret_values(settings))


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
