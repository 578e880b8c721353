"""The daemon: a loop that sleeps on the monotonic clock until the next post is due; the
`post` table is the truth.

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

`Worker.tick()`: send what is due → reap and reconcile (in the daemon: in its own
thread instead) → expire stale. SIGTERM or SIGINT
lets the attempt in flight finish, gives back what was claimed but not attempted, marks
the daemon stopped and exits.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scheduler import defaults
from scheduler.clock import Clock
from scheduler.db import is_postgres, transaction
from scheduler.dispatch import (
    Claimed,
    Delivered,
    Settled,
    account_blocked,
    claim,
    pause_account,
    prove,
    reap_leases,
    reconcile,
    record_many,
    release,
    renew_leases,
    send,
)
from scheduler.notify import Listener
from scheduler.publishers import Publishers
from scheduler.queue import ALL, Held, Scope, expire_stale, held, next_due, sendable
from scheduler.rows import AccountRow
from scheduler.settings import Settings
from scheduler.states import PostState
from scheduler.tables import account as accounts
from scheduler.tables import daemon as daemons
from scheduler.tables import post as posts

if TYPE_CHECKING:
    # The daemon runs on SQLAlchemy Core alone (`tests/test_daemon_imports.py`): no
    # SQLModel, pydantic or ORM in its process. Alerts (with TMINUS_NOTIFY) are imported
    # when their thread first runs.
    from scheduler.alerts import Sender

log = logging.getLogger("tminus.daemon")
# How long past a post's instant the book-keeping keeps holding off, at most, while the
# post still waits to be sent (see `Daemon.quiet_for`).
AFTER_INSTANT = 0.02


@dataclass
class TickResult:
    sent: int = 0
    expired: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    held_back: int = 0      # not what was approved: back to draft, nothing sent


class Worker:
    """The tick itself: the daemon, `--once` and rehearsal all run this same code.

    `clock` is the time that decides (the database's, in the daemon); `wall`, when
    given, is the host's own clock, held to as well for the deadline and not_after
    (`cutoff_now`). `scope` limits which posts it touches (a dry run: dry-run accounts'
    only)."""

    def __init__(self, engine: Engine, settings: Settings, clock: Clock,
                 publishers: Publishers, owner: str | None = None, *,
                 wall: Clock | None = None, scope: Scope = ALL) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.wall = wall
        self.scope = scope
        self.publishers = publishers
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.stopping = threading.Event()
        self.sent_total = 0
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self._held: dict[int, Claimed] = {}     # claimed by us and not yet settled
        self._housekeeping = threading.Lock()
        self._pauses: Held | None = None         # the pauses in force, as last read
        self._pauses_at = 0.0
        self._pauses_lock = threading.Lock()
        self.pause_check = defaults.PAUSE_CHECK_SECONDS
        # The daemon claims ahead: posts due within `ahead` are claimed before their
        # instant and wait in `_ready` for it (None: only what is due now is claimed).
        self.ahead: timedelta | None = None
        self._ready: list[Claimed] = []
        self._ready_changed = threading.Condition()
        self._ready_recorder = _Recorder(self, TickResult())

    def crash_point(self, point: str) -> None:
        """Crash tests: die here, as abruptly as a power cut, when the settings say so."""
        crash = self.settings.crash_at
        if crash is None or crash[0] != point:
            return
        self._hits[point] = self._hits.get(point, 0) + 1
        if self._hits[point] == crash[1]:
            os.kill(os.getpid(), signal.SIGKILL)

    def cutoff_now(self) -> datetime:
        """The later of the daemon's clock and the host's: nothing goes out once either
        says its time has passed."""
        now = self.clock.now()
        return now if self.wall is None else max(now, self.wall.now())

    def skew(self) -> timedelta | None:
        """How far the host's own clock is from the daemon's (None: no host clock kept)."""
        return None if self.wall is None else self.wall.now() - self.clock.now()

    def tick(self, *, tidy: bool = True) -> TickResult:
        """Send everything due now, then tidy up: expired leases, unknown outcomes (with
        `tidy`; the daemon leaves those to its housekeeping thread, so that look-ups on a
        slow platform never hold up sending), stale posts. The sending comes first, so
        its lateness is the claim's alone; posts the tidy-up puts back in the queue go
        out in the same tick."""
        result = TickResult()
        self._send_due(result, self.ahead)
        if tidy and self.housekeeping():
            self._send_due(result)
        result.expired += len(expire_stale(self.engine, self.clock.now(), self.owner,
                                           scope=self.scope))
        return result

    def _send_due(self, result: TickResult, ahead: timedelta | None = None) -> None:
        """Claim batch after batch while posts are due. Each batch is proved ours in one
        fenced write and handed to the lanes at once, so the next batch is claimed while
        the first requests are under way; publications of every lane are recorded
        together (`_Recorder`).

        With `ahead` (the daemon), a claim also takes posts falling due within `ahead`
        (at most CLAIM_BATCH held at once): they wait in `_ready` for their instant
        (`send_ready`), so that at the instant only the request is left to make."""
        recorder = _Recorder(self, result)
        lanes: _Lanes | None = None
        # a dry run takes what is already due DRY_RUN_BATCH at a time first, then claims
        # ahead as usual
        bulk = self.publishers.dry_run
        try:
            while not self.stopping.is_set():
                if lanes is not None:
                    # the next batch only once the pool has room for it: what this daemon
                    # cannot start on yet is left for the others (no hoarding)
                    lanes.wait(below=max(1, lanes.ceiling - defaults.CLAIM_BATCH + 1))
                now = self.clock.now()
                if bulk:
                    batch = self._claim(now, limit=defaults.DRY_RUN_BATCH)
                    bulk = len(batch) == defaults.DRY_RUN_BATCH
                    if batch:
                        lanes = self._send(batch, result, recorder, lanes)
                        continue
                with self._ready_changed:
                    room = defaults.CLAIM_BATCH - len(self._ready)
                early = ahead is not None and room > 0
                limit = room if early else defaults.CLAIM_BATCH
                batch = self._claim(now, limit=limit,
                                    due_by=now + ahead if early and ahead else None)
                if not batch:
                    break
                later = [x for x in batch if early and _send_at(x) > now]
                if later:
                    with self._ready_changed:
                        self._ready = sorted(self._ready + later, key=_send_at)
                        self._ready_changed.notify_all()
                    batch = batch[:len(batch) - len(later)]     # in due order: later ones last
                if batch:
                    lanes = self._send(batch, result, recorder, lanes)
                if ahead is not None and len(batch) + len(later) < limit:
                    break       # all that was due is taken: no empty claim to end on
            if lanes is not None:
                lanes.wait(below=1)
        finally:
            if lanes is not None:
                lanes.close()
            recorder.flush()

    def _claim(self, now: datetime, *, limit: int = defaults.CLAIM_BATCH,
               due_by: datetime | None = None) -> list[Claimed]:
        batch = claim(self.engine, now=now, cutoff=self.cutoff_now(), owner=self.owner,
                      lease=self.lease, scope=self.scope, limit=limit, due_by=due_by)
        if batch:
            with self._lock:
                self._held.update((item.post_id, item) for item in batch)
            self.crash_point("after_claim")
        return batch

    def _send(self, batch: list[Claimed], result: TickResult, recorder: _Recorder,
              lanes: _Lanes | None, *, record: bool = True) -> _Lanes | None:
        """Hand a claimed batch to the sending: the dry run's one lane here (recorded by
        its end, with `record`), or the lanes. The claim is the first proof that each
        post is ours (its lease was just taken), good until its lease less the margin."""
        if self.settings.concurrency <= 1 or self.publishers.dry_run:
            # the dry-run adapter does no I/O worth a thread: one lane, here
            margin = self._margin()
            self._run_lane(batch, result, recorder,
                           {x.post_id: x.lease_until - margin for x in batch})
            if record:
                recorder.flush()
            return lanes
        try:
            batch, proved = self._prove_batch(batch)
        except BaseException:
            self._abandon(batch)
            raise
        if lanes is None:
            lanes = _Lanes(self, result, recorder, self.settings.concurrency)
        lanes.submit(batch, proved)
        return lanes

    # -- the daemon's hot path: claimed ahead, sent at the instant ------------------------

    def send_ready(self) -> int:
        """Send every post claimed ahead whose instant has come, with no query before its
        request (the claim was its proof; the pauses were read beforehand, `book_keep`).
        What went out is recorded by the next `book_keep` (or once RECORD_WITHIN_SECONDS
        old). Returns how many posts were handed to the sending."""
        now = self.clock.now()
        with self._ready_changed:
            due = [x for x in self._ready if _send_at(x) <= now]
            self._ready = self._ready[len(due):]
        if not due:
            return 0
        recorder = self._ready_recorder
        lanes = self._send(due, recorder.result, recorder, None, record=False)
        if lanes is not None:       # real platforms: the lanes' requests, then the record
            try:
                lanes.wait(below=1)
            finally:
                lanes.close()
        return len(due)

    def wait_ready(self, longest: float) -> None:
        """Until the first post claimed ahead is due (on the monotonic clock, as the
        daemon's clock is carried), another is claimed, or at most `longest` seconds."""
        with self._ready_changed:
            if self._ready and not self.stopping.is_set():
                longest = min(longest, (_send_at(self._ready[0]) - self.clock.now()).total_seconds())
            if longest > 0 and not self.stopping.is_set():
                self._ready_changed.wait(longest)

    def next_ready(self) -> datetime | None:
        """The instant of the first post claimed ahead (None: none held)."""
        with self._ready_changed:
            return _send_at(self._ready[0]) if self._ready else None

    def wake_ready(self) -> None:
        with self._ready_changed:
            self._ready_changed.notify_all()

    def holds_ready(self) -> bool:
        with self._ready_changed:
            return bool(self._ready)

    def book_keep(self) -> None:
        """What the daemon does between instants: record what went out, and read the
        pauses in force afresh for the next requests."""
        self._ready_recorder.flush()
        with self._pauses_lock:
            self._pauses, self._pauses_at = held(self.engine), time.monotonic()

    def give_back_ready(self) -> None:
        """Stopping: the posts claimed ahead go back to the queue untried."""
        with self._ready_changed:
            ready, self._ready = self._ready, []
        for item in ready:
            self._give_back(item, "daemon stopping; given back before any attempt")

    def _prove_batch(self, batch: list[Claimed]) -> tuple[list[Claimed], dict[int, datetime]]:
        """The proof for a whole claimed batch in one write (the lanes would otherwise
        make one each); returns the posts proved ours and when each proof lapses."""
        start = self.clock.now()
        ours = prove(self.engine, batch, now=start, owner=self.owner, lease=self.lease)
        for item in batch:
            if item.post_id not in ours:
                log.warning("post %s is no longer ours (its lease ran out); not sending it",
                            item.post_id)
                self._settled(item)
        fresh = start + self.lease - self._margin()
        return ([x for x in batch if x.post_id in ours],
                {x.post_id: fresh for x in batch if x.post_id in ours})

    def _margin(self) -> timedelta:
        # a request must end well inside the lease, or another daemon may take the post
        # (never more than half a lease, so a renewed lease always lets the next one go)
        return min(timedelta(seconds=2 * self.settings.request_timeout + 1), self.lease / 2)

    def _settled(self, *items: Claimed) -> None:
        with self._lock:
            for item in items:
                self._held.pop(item.post_id, None)

    def _give_back(self, item: Claimed, reason: str) -> None:
        release(self.engine, item, now=self.clock.now(), owner=self.owner, reason=reason)
        self._settled(item)

    def _run_lane(self, items: list[Claimed], result: TickResult, recorder: _Recorder,
                  proved: dict[int, datetime] | None = None) -> None:
        """Send `items` (one account's, or the dry run's) in order; successes go to
        `recorder` (written in groups), failures are recorded at once. `proved`: post
        id -> when the proof already made for it lapses."""
        # A request goes only under a fresh proof that its post is still ours: one fenced
        # write proves the rest of the lane at once (and renews their leases), and is
        # made again once that proof is older than the lease less the margin.
        margin = self._margin()
        fresh_for = self.lease - margin
        proved = dict(proved or {})             # post id -> when its proof lapses
        # post id -> the lease its proof gave it (a proof lapses `margin` before it)
        leased = {pid: lapses + margin for pid, lapses in proved.items()}
        lost: set[int] = set()
        items = list(items)
        held_back: dict[int | None, str] = {}   # accounts paused or rate limited meanwhile
        i = 0
        current: Claimed | None = None      # taken from `items`, not yet dealt with
        attempting: Claimed | None = None   # its attempt under way
        try:
            while i < len(items):
                item, current = items[i], None
                if self.stopping.is_set():
                    for rest in items[i:]:
                        self._give_back(rest, "daemon stopping; given back before any attempt")
                    break
                i += 1
                current = item
                if item.account.id in held_back:
                    self._give_back(item, f"{item.account.name} is {held_back[item.account.id]}; "
                                          "given back before any attempt")
                    continue
                if item.post_id not in lost and (item.post_id not in proved
                                                 or self.clock.now() >= proved[item.post_id]):
                    # what went out is recorded first: its lease would lapse unrenewed
                    recorder.flush()
                    ahead = [x for x in items[i - 1:]
                             if x.post_id not in lost and x.account.id not in held_back]
                    start = self.clock.now()
                    ours = prove(self.engine, ahead, now=start, owner=self.owner, lease=self.lease)
                    proved.update((x.post_id, start + fresh_for) for x in ahead if x.post_id in ours)
                    leased.update((x.post_id, start + self.lease) for x in ahead if x.post_id in ours)
                    lost.update(x.post_id for x in ahead if x.post_id not in ours)
                if item.post_id in lost:
                    log.warning("post %s is no longer ours (its lease ran out); not sending it",
                                item.post_id)
                    self._settled(item)
                    continue
                if self._paused(item):
                    self._give_back(item, "paused; given back before any attempt")
                    continue
                try:
                    publisher = self.publishers.sender(item.account)
                except Exception as e:
                    # A missing credential or a bad setting holds up this account only:
                    # paused with the reason, its posts back in the queue untried.
                    reason = f"cannot set up its {item.account.platform} adapter: {e}"
                    pause_account(self.engine, item.account, reason, self.clock.now())
                    self._give_back(item, f"account {item.account.name} paused: {reason}")
                    self._count(result, PostState.QUEUED, item)
                    held_back[item.account.id] = "paused"
                    continue
                attempting = item
                outcome = send(self.engine, item, publisher, now=self.clock.now,
                               cutoff=self.cutoff_now, owner=self.owner,
                               max_attempts=self.settings.max_attempts, hook=self.crash_point,
                               leased_until=leased[item.post_id], attempt_for=self.lease / 2)
                attempting = current = None
                if isinstance(outcome, Settled):
                    self._settled(item)
                    self._count(result, outcome.state, item)
                    blocked = account_blocked(self.engine, item.account, self.clock.now())
                    if blocked:  # its other posts in this batch would only hit it again
                        held_back[item.account.id] = blocked
                    continue
                recorder.add(item, outcome)
        except BaseException:
            # (a post sent and waiting in `recorder` is never given back: it is out)
            self._abandon(([current] if current and not attempting else []) + items[i:],
                          attempting)
            raise
        finally:
            recorder.flush(only_due=True)

    def _abandon(self, untried: list[Claimed], attempting: Claimed | None = None) -> None:
        """A lane or batch broke off (an error escaped it): none of its posts may stay
        held, or the lease renewer would keep them `sending` until the daemon stops.
        What was not tried goes back to the queue; the post whose attempt broke off may
        have gone out, so it is only let go: its lease runs out, and it is reaped as
        unknown and looked up (never sent again blindly). Should giving back fail too
        (the database is away), the rest are let go the same way."""
        if attempting is not None:
            self._settled(attempting)
        for n, item in enumerate(untried):
            try:
                self._give_back(item, "its batch broke off; given back before any attempt")
            except Exception:
                log.exception("could not give back %d posts claimed; their leases run out "
                              "and they are looked up", len(untried) - n)
                self._settled(*untried[n:])
                return

    def _paused(self, item: Claimed) -> bool:
        """Whether a pause begun since the claim holds this post. The pauses in force are
        read again at most every PAUSE_CHECK_SECONDS: a burst sends thousands of posts,
        and a person's pause must stop the rest of a batch within a second."""
        pauses = self._pauses
        if pauses is None or time.monotonic() - self._pauses_at > self.pause_check:
            # one lane reads them again; the others meanwhile go by the last reading (at
            # most one read's time older), rather than queue behind that read
            if self._pauses_lock.acquire(blocking=pauses is None):
                try:
                    if self._pauses is None or (time.monotonic() - self._pauses_at
                                                > self.pause_check):
                        self._pauses, self._pauses_at = held(self.engine), time.monotonic()
                finally:
                    self._pauses_lock.release()
            pauses = self._pauses
        assert pauses is not None
        return pauses.holds(item.campaign_id, item.account.id)

    def _record(self, done: list[tuple[Claimed, Delivered]], result: TickResult) -> None:
        if not done:
            return
        recorded = set(record_many(self.engine, done, owner=self.owner, hook=self.crash_point))
        self._settled(*[item for item, _ in done])
        for item, _ in done:
            if item.post_id in recorded:
                self._count(result, PostState.PUBLISHED, item)

    def _count(self, result: TickResult, state: PostState, item: Claimed) -> None:
        with self._lock:
            if state == PostState.PUBLISHED:
                result.sent += 1
                self.sent_total += 1
                log.info("sent on %s: %s", item.account.name,
                         item.outgoing.text.replace("\n", " ")[:80],
                         extra={"post_id": item.post_id, "account": item.account.name})
            elif state == PostState.EXPIRED:
                result.expired += 1
            elif state == PostState.FAILED:
                result.failed += 1
            elif state == PostState.QUEUED:
                result.retried += 1
            elif state == PostState.DRAFT:
                result.held_back += 1
            else:
                result.unknown += 1

    def renew_held(self) -> None:
        """Extend the lease of every post claimed and not yet settled — the one in
        flight too — so that no other daemon takes a post over while a slow request is
        under way. (Each request also proves, right before it goes, that its post is
        still ours.)"""
        with self._lock:
            held = list(self._held.values())
        if held:
            kept = {x.post_id for x in renew_leases(self.engine, held, now=self.clock.now(),
                                                    owner=self.owner, lease=self.lease)}
            self._settled(*[x for x in held if x.post_id not in kept])

    def warm_up(self) -> int:
        """Get the accounts with posts due within WARM_AHEAD_SECONDS ready to post
        (`Publishers.warm`: adapters built, Bluesky logged in), on up to WARM_THREADS
        threads of their own, so that the due second is spent on the posts alone.
        Returns how many accounts were warmed. Stops early when the daemon stops: its
        threads are daemon threads, never waited for on the way out."""
        if self.publishers.dry_run:
            return 0
        now = self.clock.now()
        ahead = now + timedelta(seconds=defaults.WARM_AHEAD_SECONDS)
        with transaction(self.engine) as conn:
            due = (sa.select(posts.c.account_id).distinct()
                   .where(*sendable(now, cutoff=self.cutoff_now(), scope=self.scope),
                          posts.c.next_attempt_at <= ahead))
            ready = self._warm_share(conn, now, [AccountRow.of(a) for a in conn.execute(
                sa.select(accounts).where(accounts.c.id.in_(due),
                                          accounts.c.platform != "dryrun"))])
        if not ready:
            return 0
        todo = list(ready)
        warmed = [0]
        lock = threading.Lock()

        def worker() -> None:
            while not self.stopping.is_set():
                with lock:
                    if not todo:
                        return
                    account = todo.pop()
                if self.publishers.warm(account):
                    with lock:
                        warmed[0] += 1

        threads = [threading.Thread(target=worker, name="tminus-warm", daemon=True)
                   for _ in range(min(len(todo), defaults.WARM_THREADS))]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive() and not self.stopping.is_set():
                t.join(0.1)
        return warmed[0]

    def _warm_share(self, conn: sa.Connection, now: datetime, accounts: list[AccountRow]
                    ) -> list[AccountRow]:
        """With several daemons on one database, each warms its share of `accounts` (by
        account id, among the daemons beating now): any of them may send an account's
        post, and a login one of them made is in the account's row for the others to
        restore without a request (`AccountSessionStore`), so an account logs in once,
        not once a daemon. A daemon not among them (yet) warms every account."""
        fresh = now - timedelta(seconds=3 * defaults.HEARTBEAT_SECONDS)
        live = sorted(conn.execute(sa.select(daemons.c.id).where(
            daemons.c.stopped_at.is_(None), daemons.c.beat_at > fresh,
            daemons.c.dry_run.is_(False))).scalars())
        if self.owner not in live:
            return accounts
        mine, of = live.index(self.owner), len(live)
        return [a for a in accounts if a.id is not None and a.id % of == mine]

    def housekeeping(self) -> int:
        """Expired leases become unknown; unknown posts are looked up. Returns how many
        posts were looked up (0 if another thread of this daemon is at it)."""
        if not self._housekeeping.acquire(blocking=False):
            return 0
        try:
            now = self.clock.now()
            reap_leases(self.engine, now=now, owner=self.owner, scope=self.scope)
            # never wait longer than a lease: a short lease (tests) means quick recovery
            after = min(self.lease, timedelta(seconds=defaults.RECONCILE_AFTER_SECONDS))
            return reconcile(self.engine, self.publishers.sender, now=now, owner=self.owner,
                             lease=self.lease, after=after, stopping=self.stopping.is_set,
                             scope=self.scope)
        finally:
            self._housekeeping.release()

    def next_wake(self) -> datetime:
        """When to tick next: the next post's instant, at most the poll cap away (claiming
        ahead, the daemon: `ahead` before it while fewer than CLAIM_BATCH are held)."""
        now = self.clock.now()
        cap = now + timedelta(seconds=self.settings.poll_seconds)
        due = next_due(self.engine, now, cutoff=self.cutoff_now(), scope=self.scope)
        with self._ready_changed:
            room = len(self._ready) < defaults.CLAIM_BATCH
        if due is not None and self.ahead is not None and room:
            due -= self.ahead
        return cap if due is None else max(now, min(due, cap))

    def drain(self) -> TickResult:
        """`--once`: reconcile, then do everything due now, then return."""
        return self.tick()


def _send_at(item: Claimed) -> datetime:
    assert item.send_at is not None     # every claim says when
    return item.send_at


class _Recorder:
    """Publications of every lane, recorded together: one fenced transaction for up to
    RECORD_BATCH of them (a dry run: DRY_RUN_BATCH), at most RECORD_WITHIN_SECONDS after
    the first went out (a burst on a thousand accounts is twenty writes, not a
    thousand)."""

    def __init__(self, worker: Worker, result: TickResult) -> None:
        self.worker = worker
        self.result = result
        self.batch = (defaults.DRY_RUN_BATCH if worker.publishers.dry_run
                      else defaults.RECORD_BATCH)
        self._done: list[tuple[Claimed, Delivered]] = []
        self._first = 0.0
        self._lock = threading.Lock()

    def add(self, item: Claimed, outcome: Delivered) -> None:
        with self._lock:
            if not self._done:
                self._first = time.monotonic()
            self._done.append((item, outcome))
            full = len(self._done) >= self.batch
        if full:
            self.flush()
        else:
            self.flush(only_due=True)

    def flush(self, *, only_due: bool = False) -> None:
        """Record what is held (with `only_due`: only once the group is old enough)."""
        with self._lock:
            if not self._done or (only_due and time.monotonic() - self._first
                                  <= defaults.RECORD_WITHIN_SECONDS):
                return
            done, self._done = self._done, []
        try:
            self.worker._record(done, self.result)
        except BaseException:
            # out on the platform, unrecorded: let go, their leases run out and the
            # look-up finds them (as after a crash), never given back to be sent again
            self.worker._settled(*[item for item, _ in done])
            raise


class _SwitchWhileBusy:
    """The interpreter's switch interval while a burst's lanes run (`_Lanes` with more
    than BUSY_LANES accounts at once): BUSY_SWITCH_SECONDS instead of the daemon's short
    SWITCH_SECONDS, back as it was once the last busy pool has closed. Process-wide, as
    the interval is; counted, as two pools may overlap (the instants' and a tick's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0
        self._saved = 0.0

    def enter(self) -> None:
        with self._lock:
            self._busy += 1
            if self._busy == 1:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(max(self._saved, defaults.BUSY_SWITCH_SECONDS))

    def leave(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy == 0:
                sys.setswitchinterval(self._saved)


_SWITCH = _SwitchWhileBusy()


class _Lanes:
    """One lane per account with posts claimed, run side by side on a pool of at most
    `ceiling` threads (TMINUS_CONCURRENCY): threads are started only as lanes need
    them, so a burst on 30 accounts uses 30 and one on 1,000 the ceiling. An account's
    posts claimed in a later batch join its lane, if it is still running, so they go
    out after the earlier ones, in order."""

    def __init__(self, worker: Worker, result: TickResult, recorder: _Recorder,
                 ceiling: int) -> None:
        self.worker = worker
        self.result = result
        self.recorder = recorder
        self.ceiling = ceiling
        self._pool = ThreadPoolExecutor(max_workers=ceiling, thread_name_prefix="tminus-send")
        self._waiting: dict[int | None, list[Claimed]] = {}   # account -> posts not yet taken
        self._proved: dict[int, datetime] = {}
        self._pending = 0                                   # posts handed in, not yet done
        self._changed = threading.Condition()
        self._futures: list[Future[None]] = []
        self._busy = False      # holding the busy switch interval (`_SwitchWhileBusy`)

    def submit(self, batch: list[Claimed], proved: dict[int, datetime]) -> None:
        new: list[int | None] = []
        with self._changed:
            self._proved.update(proved)
            self._pending += len(batch)
            for item in batch:
                lane = self._waiting.get(item.account.id)
                if lane is not None:
                    lane.append(item)
                else:
                    self._waiting[item.account.id] = [item]
                    new.append(item.account.id)
            busy = not self._busy and len(self._waiting) > defaults.BUSY_LANES
            self._busy = self._busy or busy
        if busy:
            _SWITCH.enter()
        # outside the lock: starting a thread takes a while on a busy machine
        self._futures.extend(self._pool.submit(self._lane, account) for account in new)

    def _lane(self, account_id: int | None) -> None:
        while True:
            with self._changed:
                items = self._waiting[account_id]
                if not items:
                    del self._waiting[account_id]     # later posts start a lane of their own
                    return
                self._waiting[account_id] = []
                proved = {x.post_id: self._proved.pop(x.post_id) for x in items
                          if x.post_id in self._proved}
            try:
                self.worker._run_lane(items, self.result, self.recorder, proved)
            except BaseException:
                # the lane is over: what joined it meanwhile goes back to the queue untried
                with self._changed:
                    left = self._waiting.pop(account_id, [])
                    self._pending -= len(left)
                self.worker._abandon(left)
                raise
            finally:
                with self._changed:
                    self._pending -= len(items)
                    self._changed.notify_all()

    def wait(self, *, below: int) -> None:
        """Until fewer than `below` posts are left to send, recording what went out
        meanwhile on time, and all of it before the next claim (what a crash leaves
        unrecorded is looked up: the less, the sooner it is repaired)."""
        with self._changed:
            while self._pending >= below:
                self._changed.wait(defaults.RECORD_WITHIN_SECONDS / 5)
                self._changed.release()
                try:
                    self.recorder.flush(only_due=True)
                finally:
                    self._changed.acquire()
        self.recorder.flush()
        for f in [f for f in self._futures if f.done()]:
            f.result()      # a lane's own failure is the tick's
            self._futures.remove(f)

    def close(self) -> None:
        try:
            self._pool.shutdown(wait=True)
        finally:
            if self._busy:
                self._busy = False
                _SWITCH.leave()


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
                conn.execute(sa.insert(daemons).values(
                    id=self.worker.owner, hostname=socket.gethostname(), pid=os.getpid(),
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
        """The SDKs of the platforms in use, imported before anything is due."""
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
        BUSY_SWITCH_SECONDS while a burst's lanes run: `_SwitchWhileBusy`)."""
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
            self.heartbeat()
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
