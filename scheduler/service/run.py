"""Running the daemon, for good (`tminus run`) or once (`--once`): what its process
needs and no more. The daemon runs on SQLAlchemy Core; nothing here imports the ORM,
SQLModel or pydantic (docs/DESIGN.md, "The daemon runs on Core"; the demo, which plans a
campaign first, is in `running`)."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from scheduler import defaults
from scheduler.clock import AnchoredClock, SystemClock
from scheduler.daemon import Daemon, TickResult, Worker
from scheduler.db import database_time
from scheduler.logs import secret_values
from scheduler.publishers import Publishers
from scheduler.queue import Scope
from scheduler.settings import Settings

if TYPE_CHECKING:
    from scheduler.alerts import Sender
    from scheduler.prefork import ForkServer


def worker(engine: Engine, settings: Settings, *, dry_run: bool = False,
           server: ForkServer | None = None) -> Worker:
    """The daemon's tick, with every account's adapter — or, in a dry run, the dry-run
    adapter for the posts of dry-run accounts only, so that no real post is used up.
    Its clock is the database's, carried forward on the monotonic clock. `server`: the
    sending processes' fork server, if one was started early (`early_fork_server`)."""
    dry = dry_run or settings.dry_run
    clock = AnchoredClock(lambda: database_time(engine), every=defaults.CLOCK_ANCHOR_SECONDS)
    publishers = Publishers(engine, settings, now=clock.now, dry_run=dry,
                            send_process=settings.send_process, server=server)
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


def alert_sender(settings: Settings) -> Sender | None:
    """TMINUS_NOTIFY's sender, or None when alerts are off."""
    if not settings.notify_urls:
        return None
    from scheduler.alerts import AppriseSender  # (and Apprise) only with alerts on
    return AppriseSender(settings.notify_urls, secrets=secret_values(settings))
