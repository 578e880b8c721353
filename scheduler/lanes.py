"""Sending many accounts' posts side by side, and recording what went out in groups:
`Lanes` (one lane per account, on a bounded thread pool: each account's posts in
order), `Recorder` (publications of every lane written in one fenced transaction per
group) and `SwitchWhileBusy` (the interpreter's switch interval while a burst runs).
The Worker (`scheduler.worker`) makes them for each batch it sends; what a lane does
with each post is `Worker._run_lane`."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from scheduler import defaults
from scheduler.dispatch import Claimed, Delivered

if TYPE_CHECKING:
    from scheduler.worker import TickResult, Worker


class Recorder:
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


class SwitchWhileBusy:
    """The interpreter's switch interval while a burst's lanes run (`Lanes` with more
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


SWITCH = SwitchWhileBusy()


class Lanes:
    """One lane per account with posts claimed, run side by side on a pool of at most
    `ceiling` threads (TMINUS_CONCURRENCY): threads are started only as lanes need
    them, so a burst on 30 accounts uses 30 and one on 1,000 the ceiling. An account's
    posts claimed in a later batch join its lane, if it is still running, so they go
    out after the earlier ones, in order."""

    def __init__(self, worker: Worker, result: TickResult, recorder: Recorder,
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
        self._busy = False      # holding the busy switch interval (`SwitchWhileBusy`)

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
            SWITCH.enter()
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
                SWITCH.leave()
