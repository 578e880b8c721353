"""Work done in a forked child process while this one does other work: the second core.

Planning 100,000 posts is mostly rendering and checking them, one by one, in Python;
a machine has two cores or more. `Forked(work)` forks, runs `work()` in the child and
sends back its result, pickled through a pipe, while the parent goes on with its own
share. The child shares nothing with the parent after the fork (copy-on-write memory:
the campaign, the compiled templates and the caches come along for free) and leaves
with `os._exit`, so no buffer, finalizer or database connection the parent holds is
touched twice.

A child that fails in any way gives `None`, and the caller does that share itself: a
user's mistake is an ordinary result of `work()` (a list of errors, say), never an
exception across processes, so the messages are the same one-line errors either way.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


def forking_is_safe() -> bool:
    """Linux (copy-on-write fork, no framework refusing a forked child) and this process
    runs one thread: a child gets only the thread that forked, and a lock another thread
    held at that moment (logging's, the import lock) would stay held in it forever."""
    return sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1


class Forked(Generic[T]):
    """`with Forked(work) as child: ...; child.result()` — `work()`'s result, or None
    if the child failed. Leaving the `with` early (an exception in the parent) kills
    the child: it never outlives the work it was started for."""

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.pid: int | None = None
        self.fd: int | None = None

    def __enter__(self) -> Forked[T]:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            status = 1
            try:
                data = pickle.dumps(self.work(), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as out:
                    out.write(data)
                status = 0
            finally:
                os._exit(status)   # whatever happened: never back into the parent's code
        os.close(write)
        self.pid, self.fd = pid, read
        return self

    def result(self) -> T | None:
        """Wait for the child; its result, or None if it did not finish it."""
        assert self.fd is not None and self.pid is not None
        with os.fdopen(self.fd, "rb") as pipe:
            self.fd = None
            data = pipe.read()   # until the child closes its end: done, or dead
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return None
        try:
            result: T = pickle.loads(data)
        except Exception:
            return None
        return result

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None
