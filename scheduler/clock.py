"""Where time comes from. The clock is injected: the daemon asks it once per step;
rehearsal and tests move a `VirtualClock` by hand.

The daemon's clock is an `AnchoredClock`: the database's time (PostgreSQL's
`clock_timestamp()`; on SQLite, the host's clock the database itself reads), read
every minute and carried forward in between by the host's monotonic clock. Every
daemon on one database then agrees on the time within milliseconds whatever the
hosts' own clocks say, a step of a host's wall clock changes nothing, and waits are
measured on the monotonic clock. The host's wall clock is kept only to be careful
with: nothing is sent once the deadline has passed by it either (`Worker.cutoff_now`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The host's wall clock. For the clock tests only, `offset_file` names a file
    holding a number of seconds to add (re-read when it changes): a host whose clock
    is off, or is stepped while the daemon runs (TMINUS_TEST_CLOCK_OFFSET_FILE)."""

    def __init__(self, offset_file: Path | None = None) -> None:
        self.offset_file = offset_file
        self._stamp: float | None = None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        real = datetime.now(UTC)
        if self.offset_file is None:
            return real
        try:
            stamp = os.stat(self.offset_file).st_mtime
        except OSError:
            return real + self._offset
        if stamp != self._stamp:
            self._stamp = stamp
            text = self.offset_file.read_text(encoding="utf-8").strip() or "0"
            self._offset = timedelta(seconds=float(text))
        return real + self._offset


class AnchoredClock:
    """`source` (the database's time) carried forward by the monotonic clock, read
    again every `every` seconds. A failed reading keeps the last anchor."""

    def __init__(self, source: Callable[[], datetime], *, every: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._every = every
        self._mono = monotonic
        self._lock = threading.Lock()
        self._anchor: tuple[float, datetime] | None = None
        self.last_jump = timedelta(0)   # how far the source moved against our count
        self.anchor()

    def anchor(self) -> timedelta:
        """Read the source now; returns how far it was from what this clock said."""
        before = self._mono()
        at = self._source()
        after = self._mono()
        mid = (before + after) / 2       # the source was read half-way through the trip
        with self._lock:
            jump = timedelta(0) if self._anchor is None else at - self._carry(mid)
            self._anchor = (mid, at)
            self.last_jump = jump
        return jump

    def _carry(self, mono: float) -> datetime:
        assert self._anchor is not None
        base_mono, base = self._anchor
        return base + timedelta(seconds=mono - base_mono)

    def now(self) -> datetime:
        mono = self._mono()
        # (one look at the anchor, a (monotonic, time) pair replaced whole, in the usual
        # case: the daemon reads its clock several times a post)
        with self._lock:
            anchor = self._anchor
        if anchor is None or mono - anchor[0] >= self._every:
            # the database is away: keep counting from the last anchor
            with contextlib.suppress(Exception):
                self.anchor()
            with self._lock:
                return self._carry(mono)
        return anchor[1] + timedelta(seconds=mono - anchor[0])


class VirtualClock:
    """A clock that only moves when told to (rehearsal and tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            if when > self._now:
                self._now = when

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
