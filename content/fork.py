"""Work done in a forked child process while this one does other work: the second core.

Planning 100,000 posts is mostly rendering and checking them, one by one, in Python,
then writing them; a machine has two cores or more. `Forked(work)` forks and runs
`work()` in the child, a generator: each part it yields is pickled and sent back as
soon as it is made, while the parent goes on with its own share (the planner writes
the posts already rendered meanwhile). The child shares nothing with the parent after
the fork (copy-on-write memory: the campaign, the compiled templates and the caches
come along for free) and leaves with `os._exit`, so no buffer, finalizer or database
connection the parent holds is touched twice.

`Forked(work)` is the same for a `work()` of one result (`child.result()`).

The parts go through an anonymous in-memory file, each announced on a pipe by its
size: the parent reads them when it is ready to, and a child that is ahead never waits
for a full pipe. A child that fails in any way ends its parts early, and the caller
does the rest itself: a user's mistake is an ordinary part of `work()`'s result (a
list of errors, say), never an exception across processes, so the messages are the
same one-line errors either way.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_SIZE = struct.Struct("<Q")   # each part's size in bytes, on the pipe


def forking_is_safe() -> bool:
    """Linux (copy-on-write fork, no framework refusing a forked child) and this process
    runs one thread: a child gets only the thread that forked, and a lock another thread
    held at that moment (logging's, the import lock) would stay held in it forever."""
    return sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1


def _buffer() -> int:
    """A file descriptor both processes share: an anonymous memory file where there is
    one (Linux), else an unlinked temporary file."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("tminus-forked", getattr(os, "MFD_CLOEXEC", 0))
    return os.dup(tempfile.TemporaryFile().fileno())


class Parts(Generic[T]):
    """`with Parts(work) as child: ...; for part in child.parts(): ...` — the parts
    `work()` yields, in order, as the child makes them; `child.complete` says afterwards
    whether that was all of them (False if the child failed: the caller does the rest).
    Leaving the `with` early (an exception in the parent) kills the child: it never
    outlives the work it was started for."""

    def __init__(self, work: Callable[[], Iterable[T]]) -> None:
        self.work = work
        self.pid: int | None = None
        self.fd: int | None = None       # the pipe's reading end
        self.data: int | None = None     # the shared file the parts are in
        self.complete = False

    def __enter__(self) -> Parts[T]:
        data = _buffer()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            status = 1
            try:
                with os.fdopen(write, "wb", buffering=0) as sizes, \
                        os.fdopen(data, "wb", buffering=0) as out:
                    for part in self.work():
                        blob = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
                        out.write(blob)
                        sizes.write(_SIZE.pack(len(blob)))
                status = 0
            finally:
                os._exit(status)   # whatever happened: never back into the parent's code
        os.close(write)
        self.pid, self.fd, self.data = pid, read, data
        return self

    def parts(self) -> Iterator[T]:
        """Each part as it comes (waiting for the next); ends when the child is done or
        dead. A part that does not arrive whole ends them too."""
        assert self.fd is not None and self.data is not None and self.pid is not None
        offset = 0
        with os.fdopen(self.fd, "rb") as sizes:
            self.fd = None
            while len(head := sizes.read(_SIZE.size)) == _SIZE.size:
                (size,) = _SIZE.unpack(head)
                blob = os.pread(self.data, size, offset)
                offset += size
                try:
                    part: T = pickle.loads(blob)
                except Exception:
                    break
                yield part
            else:
                _, status = os.waitpid(self.pid, 0)
                self.pid = None
                self.complete = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        self._close()

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.data is not None:
            os.close(self.data)
            self.data = None
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._close()


class Forked(Parts[T]):
    """`with Forked(work) as child: ...; child.result()` — `work()`'s one result, or
    None if the child failed."""

    def __init__(self, work: Callable[[], T]) -> None:
        super().__init__(lambda: (work(),))

    def __enter__(self) -> Forked[T]:
        super().__enter__()
        return self

    def result(self) -> T | None:
        """Wait for the child; its result, or None if it did not finish it."""
        got = list(self.parts())
        return got[0] if self.complete and len(got) == 1 else None
