"""The daemon: APScheduler is the alarm clock, the `post` table is the truth.

A `BlockingScheduler(timezone=UTC)` with an in-memory job store runs:
- `tick`, a date job re-armed after every run to min(next due, now + poll cap), so a
  post is attempted at its time and one added by another process is noticed within
  the poll cap;
- `housekeeping`, an interval job: heartbeat row, expired leases, reconciliation.

`tick(now)`: expire stale -> claim due -> publish each -> record. SIGTERM or SIGINT lets
the attempt in flight finish, gives back what was claimed but not attempted, and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor as LanePool
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.engine import Engine

from content.errors import TminusError
from jobs.errors import AuthError
from jobs.outgoing import Receipt
from scheduler import defaults
from scheduler.clock import Clock
from scheduler.db import is_postgres, session
from scheduler.dispatch import (
    Claimed,
    account_blocked,
    claim,
    reap_leases,
    reconcile,
    record_failure,
    record_many,
    release,
    renew_leases,
    send,
)
from scheduler.models import Daemon as DaemonRow
from scheduler.models import PostState
from scheduler.notify import Listener
from scheduler.publishers import Publishers
from scheduler.queue import expire_stale, next_due
from scheduler.settings import Settings

log = logging.getLogger("tminus.daemon")


@dataclass
class TickResult:
    sent: int = 0
    expired: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0


class Worker:
    """The tick itself, free of APScheduler: the daemon, `--once` and rehearsal all
    run this same code."""

    def __init__(self, engine: Engine, settings: Settings, clock: Clock,
                 publishers: Publishers, owner: str | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.publishers = publishers
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.stopping = threading.Event()
        self.sent_total = 0
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def crash_point(self, point: str) -> None:
        """Crash tests: die here, as abruptly as a power cut, when the settings say so."""
        crash = self.settings.crash_at
        if crash is None or crash[0] != point:
            return
        self._hits[point] = self._hits.get(point, 0) + 1
        if self._hits[point] == crash[1]:
            os.kill(os.getpid(), signal.SIGKILL)

    def tick(self) -> TickResult:
        """Send everything due now, then tidy up: expired leases, unknown outcomes,
        stale posts. The sending comes first, so its lateness is the claim's alone;
        posts the tidy-up puts back in the queue go out in the same tick."""
        result = TickResult()
        self._send_due(result)
        if self.housekeeping():
            self._send_due(result)
        result.expired += len(expire_stale(self.engine, self.clock.now(), self.owner))
        return result

    def _send_due(self, result: TickResult) -> None:
        while not self.stopping.is_set():
            batch = claim(self.engine, now=self.clock.now(), owner=self.owner, lease=self.lease)
            if not batch:
                break
            self.crash_point("after_claim")
            lanes = self._lanes(batch)
            if len(lanes) == 1:
                self._run_lane(lanes[0], result)
            else:
                with LanePool(max_workers=len(lanes),
                                        thread_name_prefix="tminus-send") as pool:
                    for f in [pool.submit(self._run_lane, lane, result) for lane in lanes]:
                        f.result()

    def _lanes(self, batch: list[Claimed]) -> list[list[Claimed]]:
        """Posts of different accounts go out side by side (a platform request takes a
        few hundred ms; a burst across many accounts must not queue behind one), each
        account's own posts in due order. The dry-run adapter does no I/O worth a thread."""
        if self.settings.concurrency <= 1 or self.publishers.dry_run:
            return [batch]
        by_account: dict[int | None, list[Claimed]] = {}
        for item in batch:
            by_account.setdefault(item.account.id, []).append(item)
        lanes: list[list[Claimed]] = [[] for _ in range(min(self.settings.concurrency,
                                                             len(by_account)))]
        for i, posts in enumerate(by_account.values()):
            lanes[i % len(lanes)].extend(posts)
        return lanes

    def _run_lane(self, items: list[Claimed], result: TickResult) -> None:
        """Send `items` in order; successes are recorded in small groups (one
        transaction each), failures at once."""
        done: list[tuple[Claimed, Receipt, datetime]] = []
        first = 0.0
        # a request must end well inside the lease, or another daemon may take the post
        # (never more than half a lease, so a renewed lease always lets the next one go)
        margin = min(timedelta(seconds=2 * self.settings.request_timeout + 1), self.lease / 2)
        items = list(items)
        held_back: dict[int | None, str] = {}   # accounts paused or rate limited meanwhile
        try:
            i = 0
            while i < len(items):
                item = items[i]
                if self.stopping.is_set():
                    for rest in items[i:]:
                        release(self.engine, rest, now=self.clock.now(), owner=self.owner,
                                reason="daemon stopping; given back before any attempt")
                    break
                if self.clock.now() + margin >= item.lease_until:
                    self._record(done, result)
                    done = []
                    items[i:] = renew_leases(self.engine, items[i:], now=self.clock.now(),
                                             owner=self.owner, lease=self.lease)
                    continue
                i += 1
                if item.account.id in held_back:
                    release(self.engine, item, now=self.clock.now(), owner=self.owner,
                            reason=f"{item.account.name} is {held_back[item.account.id]}; "
                                   "given back before any attempt")
                    continue
                try:
                    publisher = self.publishers.for_account(item.account)
                except TminusError as e:
                    # a missing credential holds up this account only: paused, with the
                    # variable to set, its post back in the queue
                    state = record_failure(self.engine, item, AuthError(str(e)),
                                           now=self.clock.now(), owner=self.owner,
                                           max_attempts=self.settings.max_attempts)
                    self._count(result, state, item)
                    held_back[item.account.id] = "paused"
                    continue
                outcome = send(self.engine, item, publisher, now=self.clock.now,
                               owner=self.owner, max_attempts=self.settings.max_attempts,
                               hook=self.crash_point)
                if isinstance(outcome, str):
                    self._count(result, outcome, item)
                    if outcome != PostState.PUBLISHED:
                        blocked = account_blocked(self.engine, item.account, self.clock.now())
                        if blocked:  # its other posts in this batch would only hit it again
                            held_back[item.account.id] = blocked
                    continue
                if not done:
                    first = time.monotonic()
                done.append((item, outcome, self.clock.now()))
                if (len(done) >= defaults.RECORD_BATCH
                        or time.monotonic() - first > defaults.RECORD_WITHIN_SECONDS):
                    self._record(done, result)
                    done = []
        finally:
            self._record(done, result)

    def _record(self, done: list[tuple[Claimed, Receipt, datetime]], result: TickResult) -> None:
        if not done:
            return
        record_many(self.engine, done, owner=self.owner, hook=self.crash_point)
        for item, _, _ in done:
            self._count(result, PostState.PUBLISHED, item)

    def _count(self, result: TickResult, state: str, item: Claimed) -> None:
        with self._lock:
            if state == PostState.PUBLISHED:
                result.sent += 1
                self.sent_total += 1
                log.info("sent on %s: %s", item.account.name,
                         item.outgoing.text.replace("\n", " ")[:80])
            elif state == PostState.EXPIRED:
                result.expired += 1
            elif state == PostState.FAILED:
                result.failed += 1
            elif state == PostState.QUEUED:
                result.retried += 1
            else:
                result.unknown += 1

    def housekeeping(self) -> int:
        """Expired leases become unknown; unknown posts are looked up. Returns how many
        posts were looked up."""
        now = self.clock.now()
        reap_leases(self.engine, now=now, owner=self.owner)
        # never wait longer than a lease: a short lease (tests) means quick recovery
        after = min(self.lease, timedelta(seconds=defaults.RECONCILE_AFTER_SECONDS))
        return reconcile(self.engine, self.publishers.for_account, now=now, owner=self.owner,
                         lease=self.lease, after=after, stopping=self.stopping.is_set)

    def next_wake(self) -> datetime:
        now = self.clock.now()
        cap = now + timedelta(seconds=self.settings.poll_seconds)
        due = next_due(self.engine, now)
        return cap if due is None else max(now, min(due, cap))

    def drain(self) -> TickResult:
        """`--once`: reconcile, then do everything due now, then return."""
        return self.tick()


class Daemon:
    """`tminus run`: the Worker driven by APScheduler until SIGTERM."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.scheduler = BlockingScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._started = self.worker.clock.now()
        self._arm_lock = threading.Lock()

    def _arm(self) -> None:
        wake = self.worker.next_wake()
        # The stop check and add_job happen under one lock that shutdown passes through
        # first: otherwise a SIGTERM between them leaves add_job waiting on the job
        # store lock that shutdown(wait=True) holds while it waits for this very job.
        with self._arm_lock:
            if self.worker.stopping.is_set():
                return
            self.scheduler.add_job(self._tick_job, "date", run_date=wake, id="tick",
                                   replace_existing=True)

    def _tick_job(self) -> None:
        try:
            self.worker.tick()
        except Exception:  # keep the daemon alive; the next tick tries again
            log.exception("tick failed")
        finally:
            self._arm()

    def _housekeeping_job(self) -> None:
        try:
            self.worker.housekeeping()
            self.heartbeat()
        except Exception:
            log.exception("housekeeping failed")

    def heartbeat(self, stopped: bool = False) -> None:
        now = self.worker.clock.now()
        with session(self.worker.engine) as s:
            row = s.get(DaemonRow, self.worker.owner)
            if row is None:
                row = DaemonRow(id=self.worker.owner, hostname=socket.gethostname(),
                                pid=os.getpid(), started_at=self._started, beat_at=now,
                                dry_run=self.worker.publishers.dry_run)
            row.beat_at = now
            row.sent = self.worker.sent_total
            row.stopped_at = now if stopped else None
            s.add(row)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stop(signal.Signals(signum).name)

    def stop(self, why: str) -> None:
        """Finish the attempt in flight, give back what is claimed but not sent, stop."""
        log.info("%s: finishing the attempt in flight, then stopping", why)
        self.worker.stopping.set()
        # a signal handler must not block: the shutdown waits in its own thread
        threading.Thread(target=self._shutdown, daemon=True).start()

    def _shutdown(self) -> None:
        with self._arm_lock:
            pass  # any _arm in progress has finished; later ones see `stopping`
        self.scheduler.shutdown(wait=True)

    def _wake(self) -> None:
        """Another process added a post: tick now instead of at the poll cap."""
        with self._arm_lock:
            if self.worker.stopping.is_set():
                return
            # JobLookupError: the tick is running; it re-arms itself from the table when done
            with contextlib.suppress(JobLookupError):
                self.scheduler.modify_job("tick", next_run_time=self.worker.clock.now())

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        listener = Listener(self.worker.engine, self._wake) if is_postgres(self.worker.engine) else None
        if listener:
            listener.start()
        self.heartbeat()
        self.worker.housekeeping()
        self.scheduler.add_job(self._housekeeping_job, "interval",
                               seconds=defaults.HEARTBEAT_SECONDS, id="housekeeping")
        self.scheduler.add_job(self._tick_job, "date", run_date=self.worker.clock.now(), id="tick")
        log.info("tminus daemon %s started", self.worker.owner)
        try:
            self.scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if listener:
                listener.stop()
            self.worker.publishers.close()
            self.heartbeat(stopped=True)
            log.info("tminus daemon %s stopped (%d sent)", self.worker.owner,
                     self.worker.sent_total)
