"""The daemon: a loop that sleeps on the monotonic clock until the next post is due; the
`post` table is the truth. This module owns the loop, its signals, the heartbeat and
the threads beside the loop; what each round does is the Worker's (`scheduler.worker`).

`Daemon.run()` ticks, then waits until min(next due, now + poll cap) — or until woken
by a NOTIFY (PostgreSQL) or a stop signal — and ticks again. Its ticks claim ahead: the
posts falling due within CLAIM_AHEAD_SECONDS are claimed before their instant, and a
sending thread makes each one's request at that instant, nothing else (the loop's
book-keeping keeps out of the way of an instant). Beside the loop, four more
threads each on their own monotonic interval, so that neither a long tick nor a step of
the wall clock holds them up: the heartbeat row (every 5 s), housekeeping (expired
leases reaped, unknown outcomes looked up), the lease renewer (every claimed post
not yet settled, every quarter lease) and the warm-up (every second: the adapters of
accounts with posts due in the next 10 minutes built, Bluesky logged in, so the due
second spends no login round trip); and with TMINUS_NOTIFY, the alerts
(`scheduler.alerts`), never joined on the way out.

(APScheduler 3, the first alarm clock, computes its wake-ups from the wall clock: a step
of the host's clock back by 30 s held up every job, the heartbeat too, for 30 s.)

SIGTERM or SIGINT lets the attempt in flight finish, gives back what was claimed but not
attempted, marks the daemon stopped and exits. `Worker` and `TickResult` are imported
from here by the service layer and the tests, as the daemon's parts.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING

import sqlalchemy as sa

from scheduler import defaults
from scheduler.db import is_postgres, transaction
from scheduler.notify import Listener
from scheduler.tables import account as accounts
from scheduler.tables import daemon as daemons
from scheduler.worker import TickResult, Worker

if TYPE_CHECKING:
    # The daemon runs on SQLAlchemy Core alone (`tests/test_daemon_imports.py`): no
    # SQLModel, pydantic or ORM in its process. Alerts (with TMINUS_NOTIFY) are imported
    # when their thread first runs.
    from scheduler.alerts import Sender

__all__ = ["AFTER_INSTANT", "Daemon", "TickResult", "Worker"]

log = logging.getLogger("tminus.daemon")
# How long past a post's instant the book-keeping keeps holding off, at most, while the
# post still waits to be sent (see `Daemon.quiet_for`).
AFTER_INSTANT = 0.02


class _Every(threading.Thread):
    """Runs `job` every `seconds` (monotonic) until stopped — at once first, with `now`;
    a failure is logged and the next round comes as usual."""

    def __init__(self, name: str, seconds: float, job: Callable[[], object], *,
                 now: bool = False, quiet: Callable[[], float] = lambda: 0.0) -> None:
        super().__init__(name=f"tminus-{name}", daemon=True)
        self.seconds = seconds
        self.job = job
        self.first = 0.0 if now else seconds
        self.halt = threading.Event()
        self.quiet = quiet      # seconds to hold off first (a post's instant is near)

    def run(self) -> None:
        wait = self.first
        while not self.halt.wait(wait):
            wait = self.seconds
            held_off = 0.0
            # a second at most: dense instants must not starve the heartbeat
            while held_off < 1.0 and (hold := self.quiet()) > 0 and not self.halt.wait(hold):
                held_off += hold
            try:
                self.job()
            except Exception:
                log.exception("%s failed", self.name)


class Daemon:
    """`tminus run`: the Worker's tick in a loop until SIGTERM. With `alerts` (a sender
    for TMINUS_NOTIFY), a thread of its own collects and delivers alerts: never joined
    on the way out, so a webhook that hangs holds up neither a post nor a stop."""

    def __init__(self, worker: Worker, alerts: Sender | None = None) -> None:
        self.worker = worker
        self.alerts = alerts
        self._wake = threading.Event()
        self._started = self.worker.clock.now()
        self._took: deque[float] = deque(maxlen=20)   # the last rounds' book-keeping, s
        self._prepared = False
        worker.ahead = timedelta(seconds=defaults.CLAIM_AHEAD_SECONDS)

    def heartbeat(self, stopped: bool = False) -> None:
        now = self.worker.clock.now()
        skew = self.worker.skew()
        beat = {"beat_at": now, "sent": self.worker.sent_total,
                "skew_seconds": None if skew is None else round(skew.total_seconds(), 3),
                **({"stopped_at": now} if stopped else {})}
        with transaction(self.worker.engine) as conn:
            row = conn.execute(sa.select(daemons.c.stopped_at)
                               .where(daemons.c.id == self.worker.owner)).first()
            if row is None:
                # the pid the host's daemons tell each other apart by (`send_share`)
                conn.execute(sa.insert(daemons).values(
                    id=self.worker.owner, hostname=socket.gethostname(),
                    pid=self.worker.publishers.pid,
                    started_at=self._started, dry_run=self.worker.publishers.dry_run, **beat))
            elif row.stopped_at is not None:
                return      # a beat racing the last one must not bring the daemon back
            else:
                conn.execute(sa.update(daemons).where(daemons.c.id == self.worker.owner)
                             .values(**beat))
        if skew is not None and abs(skew) > timedelta(seconds=defaults.CLOCK_SKEW_WARN_SECONDS):
            log.warning("this host's clock is %.1f s %s the database's; tminus keeps the "
                        "database's time, and holds posts to the deadline by both",
                        abs(skew.total_seconds()), "ahead of" if skew > timedelta(0) else "behind")

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stop(signal.Signals(signum).name)

    def stop(self, why: str) -> None:
        """Finish the attempt in flight, give back what is claimed but not sent, stop.
        Safe from a signal handler: it only sets flags."""
        log.info("%s: finishing the attempt in flight, then stopping", why)
        self.worker.stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Another process added a post: tick now instead of at the poll cap."""
        self._wake.set()

    def _housekeeping(self) -> None:
        # after a crash there may be many posts to look up: round after round until
        # fewer than a full round are left (each round is one short transaction)
        while not self.worker.stopping.is_set():
            looked_up = self.worker.housekeeping()
            if looked_up:
                self.wake()      # a post looked up and found absent goes out at once
            if looked_up < defaults.RECONCILE_BATCH:
                return

    def _alert_round(self) -> None:
        if self.alerts is not None:
            from scheduler.alerts import sweep
            w = self.worker
            sweep(w.engine, self.alerts, w.clock.now, timedelta(seconds=w.settings.notify_every),
                  stopping=w.stopping.is_set)

    def prepare(self) -> None:
        """This daemon's row written first (the other daemons of its host count it from
        now on: those started beside it agree with it on their shares of the host's
        sending processes before any of them forks one, `Publishers._agree`), then the
        SDKs of the platforms in use imported before anything is due. Once (`run` calls
        it too)."""
        if self._prepared:
            return
        self._prepared = True
        self.heartbeat()
        with transaction(self.worker.engine) as conn:
            platforms = list(conn.execute(sa.select(accounts.c.platform).distinct()).scalars())
        self.worker.publishers.prepare(platforms)

    def _seconds_to_next(self) -> float:
        wake = self.worker.next_wake()
        seconds = (wake - self.worker.clock.now()).total_seconds()
        return min(max(0.0, seconds), self.worker.settings.poll_seconds)

    def _step(self) -> float:
        """One round of the loop: the book-keeping (the record, the pauses, the claim,
        ahead, expiry); returns how long to wait for the next round. The sending thread
        meanwhile sends each post claimed ahead at its instant, and the book-keeping
        keeps out of its way: on a busy machine a thread in the middle of a query when
        its time slice ends holds the GIL, and a post's instant would wait for it."""
        w = self.worker
        quiet = self.quiet_for()
        if quiet > 0:
            return quiet
        started = time.monotonic()
        try:
            w.book_keep()
            w.tick(tidy=False)
        except Exception:  # keep the daemon alive; the next tick tries again
            log.exception("tick failed")
        try:
            seconds = self._seconds_to_next()
        except Exception:
            log.exception("could not tell when the next post is due")
            seconds = w.settings.poll_seconds
        self._took.append(time.monotonic() - started)
        if w.holds_ready():
            # the pauses read again before the next instant, so that its request goes
            # by a fresh reading without waiting for one (PAUSE_CHECK_SECONDS)
            seconds = min(seconds, w.pause_check * 0.8)
        return seconds

    def quiet_for(self) -> float:
        """Seconds until a round of book-keeping may start without running into the
        next post's instant (0: now). A round is given one and a half times the longest
        of the last rounds, between 2 ms and half of CLAIM_AHEAD_SECONDS.

        The quiet lasts until the sending thread has sent what falls due at that
        instant: it wakes the loop as soon as it has (`wake`), and AFTER_INSTANT only
        bounds the wait should it not. (Book-keeping that started a millisecond after
        the instant shared the interpreter with the request still being made, and
        made it late by as long as the round took.)"""
        ready = self.worker.next_ready()
        if ready is None:
            return 0.0
        until = (ready - self.worker.clock.now()).total_seconds()
        room = min(max(0.002, 1.5 * max(self._took, default=0.0)),
                   defaults.CLAIM_AHEAD_SECONDS / 2)
        return until + AFTER_INSTANT if -AFTER_INSTANT < until < room else 0.0

    def _send_at_instants(self) -> None:
        """The sending thread: each post claimed ahead goes out at its instant. Between
        instants it only waits, so the book-keeping (in the loop's thread) never makes
        a post late; the interpreter hands it the GIL within SWITCH_SECONDS (within
        BUSY_SWITCH_SECONDS while a burst's lanes run: `SwitchWhileBusy`)."""
        w = self.worker
        while not w.stopping.is_set():
            try:
                w.wait_ready(w.settings.poll_seconds)
                if w.send_ready():
                    self.wake()     # record it, and claim what follows
            except Exception:  # a broken send must not end the sending
                log.exception("sending failed")
                w.stopping.wait(1.0)

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        w = self.worker
        listener = Listener(w.engine, self.wake) if is_postgres(w.engine) else None
        quiet = self.quiet_for
        helpers = [_Every("heartbeat", defaults.HEARTBEAT_SECONDS, self.heartbeat, quiet=quiet),
                   # at once: what a crashed daemon left is looked up while sending starts
                   _Every("housekeeping", defaults.HOUSEKEEPING_SECONDS, self._housekeeping,
                          now=True, quiet=quiet),
                   _Every("lease-renewer", w.lease.total_seconds() / 4, w.renew_held,
                          quiet=quiet),
                   # adapters built and Bluesky logged in before the posts come due
                   _Every("warm-up", defaults.WARM_EVERY_SECONDS, w.warm_up, now=True,
                          quiet=quiet)]
        alerter = _Every("alerts", defaults.ALERT_SECONDS, self._alert_round, now=True)
        sender = threading.Thread(target=self._send_at_instants, name="tminus-instants",
                                  daemon=True)
        switch = sys.getswitchinterval()
        try:
            if listener:
                listener.start()
            self.prepare()
            for h in helpers:
                h.start()
            # a thread woken at an instant gets the GIL within this, not the default 5 ms
            sys.setswitchinterval(defaults.SWITCH_SECONDS)
            sender.start()
            if self.alerts is not None:
                alerter.start()
            log.info("tminus daemon %s started", w.owner)
            while not w.stopping.is_set():
                seconds = self._step()
                if w.stopping.is_set():
                    break
                self._wake.wait(seconds)       # a monotonic wait: wall-clock steps change nothing
                self._wake.clear()
        finally:
            if sender.is_alive():
                w.wake_ready()
                sender.join()               # the attempt in flight ends
            sys.setswitchinterval(switch)
            try:
                w.book_keep()               # what went out is recorded...
                w.give_back_ready()         # ...and what was claimed ahead goes back
            except Exception:
                log.exception("could not give back the posts claimed ahead (their lease "
                              "runs out and they are looked up)")
            alerter.halt.set()
            for h in helpers:
                h.halt.set()
            for h in helpers:
                if h.is_alive():
                    h.join()
            if listener:
                listener.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            w.publishers.close()
            self.heartbeat(stopped=True)
            log.info("tminus daemon %s stopped (%d sent)", w.owner, w.sent_total)
