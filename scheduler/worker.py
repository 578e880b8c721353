"""The Worker: one tick of the scheduler — claim what is due (and, in the daemon, what
falls due within CLAIM_AHEAD_SECONDS), prove each post still ours, send it, record what
went out, give back what was not tried; and the upkeep the daemon runs beside its loop
(lease renewal, housekeeping: expired leases reaped, unknown outcomes looked up). The
daemon (`scheduler.daemon`), `--once` and rehearsal all run this same code.

`Worker.tick()`: send what is due → reap and reconcile (in the daemon: in its own
thread instead) → expire stale. Posts claimed ahead wait in the Worker's ready list
for their instant (`send_ready`). The lanes that send many accounts' posts side by side
and the recorder that writes their publications in groups are `scheduler.lanes`; the
warm-up before posts fall due is `scheduler.warmup`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from scheduler import defaults
from scheduler.clock import Clock
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
from scheduler.lanes import Lanes, Recorder
from scheduler.publishers import Publishers
from scheduler.queue import ALL, Held, Scope, expire_stale, held, next_due
from scheduler.settings import Settings
from scheduler.states import PostState
from scheduler.warmup import warm_up

log = logging.getLogger("tminus.daemon")


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
        self._ready_recorder = Recorder(self, TickResult())

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
        together (`Recorder`).

        With `ahead` (the daemon), a claim also takes posts falling due within `ahead`
        (at most CLAIM_BATCH held at once): they wait in `_ready` for their instant
        (`send_ready`), so that at the instant only the request is left to make."""
        recorder = Recorder(self, result)
        lanes: Lanes | None = None
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

    def _send(self, batch: list[Claimed], result: TickResult, recorder: Recorder,
              lanes: Lanes | None, *, record: bool = True) -> Lanes | None:
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
            lanes = Lanes(self, result, recorder, self.settings.concurrency)
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

    def _run_lane(self, items: list[Claimed], result: TickResult, recorder: Recorder,
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
        """The accounts with posts due soon made ready to post (`scheduler.warmup`);
        returns how many were warmed."""
        return warm_up(self)

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
