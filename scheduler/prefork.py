"""The sending processes' fork server: children that start primed, in milliseconds.

A sending child (`scheduler.sendproc`) started as a fresh interpreter imports and
primes the SDKs first: seconds on an idle machine, ~20 s under load, so a daemon
restarted after a crash, or a child killed as hung, missed the posts due meanwhile.
Forking the children from the daemon itself is no cure: the daemon has threads (lanes,
the heartbeat, the lease renewer, the housekeeping), and a child forked while one of
them held a lock (logging's, the import lock, a connection pool's) inherits that lock
held forever by a thread that does not exist in the child.

So the daemon starts one small process of its own for forking (`python -m
scheduler.prefork FD PLATFORM...`): single-threaded by construction, it imports and
primes those platforms' adapters once, freezes what it imported out of the collector
(`gc.freeze()`: its pages stay shared with every child, no collection walks them), says
it is ready, and then forks a child for each request in a few milliseconds. The child
runs `sendproc.child_main` on two pipes the daemon made and handed over with the
request, exactly as a fresh child runs it on its stdin and stdout.

The control socket (an AF_UNIX SOCK_SEQPACKET pair; one message a datagram):
- server to daemon, once: `ready` (or nothing: it died while importing);
- daemon to server: `fork THREADS` with the child's two pipe ends (SCM_RIGHTS);
- server to daemon: the child's pid, with a pidfd of it (SCM_RIGHTS): the daemon
  signals and waits on the child by that, never by a pid that could be reused (the
  child is the server's; the server reaps it).

What can go wrong: the daemon gone (killed) ends the control socket, and the server
exits at once (its children read the end of their pipes and exit too); the server gone
(killed, out of memory) leaves its children serving the daemon as before, and the daemon
starts a new server for the next child, which waits for it, said in the log; after
RESTARTS such ends, or a server not ready in time, a child starts as a fresh interpreter
(`sendproc.SendingProcess`), which imports the SDKs itself.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref

log = logging.getLogger("tminus.sendproc")

# How long the daemon waits for a fork's answer before it takes the server to hang.
FORK_SECONDS = 5.0
# How many times a daemon starts its fork server again after it ended; then every child
# starts as a fresh interpreter.
RESTARTS = 3
_READY = b"ready"


class Forked:
    """A child the fork server made, as `subprocess.Popen` shows one to `SendingProcess`
    (`stdin`, `stdout`, `pid`, `poll`, `wait`, `kill`), through its pidfd: it is not this
    process's child, so its exit status is not known here (None while it runs, else 0)."""

    def __init__(self, pid: int, pidfd: int, stdin: int, stdout: int) -> None:
        self.pid = pid
        self._pidfd = pidfd
        # closed with this object: never while another thread may be waiting on it
        weakref.finalize(self, os.close, pidfd)
        self.stdin = open(stdin, "wb")      # noqa: SIM115 (closed by `close`, or with it)
        self.stdout = open(stdout, "rb")    # noqa: SIM115
        self.returncode: int | None = None

    def _ended(self, timeout: float | None) -> bool:
        if self.returncode is None:
            ready, _, _ = select.select([self._pidfd], [], [], timeout)
            if ready:       # readable once the process has ended
                self.returncode = 0
        return self.returncode is not None

    def poll(self) -> int | None:
        return self.returncode if self._ended(0) else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended(timeout):
            raise subprocess.TimeoutExpired(f"sending process {self.pid}", timeout or 0.0)
        return 0

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)


class ForkServer:
    """The daemon's end: starts the server (`start`), waits until it is ready (`ready`),
    and forks children (`fork`); starts it again, at most RESTARTS times, after it
    ended. Shared by every `SendingProcess` of one daemon."""

    def __init__(self, argv: list[str] | None = None) -> None:
        self.argv = argv or [sys.executable, "-m", "scheduler.prefork"]
        self._lock = threading.Lock()
        self._platforms: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._ready = False
        self.restarts = 0
        self.forked = 0                     # children forked so far (tests)

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None else None

    @property
    def platforms(self) -> list[str]:
        """What it primes (or will, once started)."""
        return list(self._platforms)

    def start(self, platforms: list[str]) -> None:
        """Start the server importing and priming `platforms` (no wait); once started,
        it keeps the platforms it was started with."""
        with self._lock:
            if self._proc is None and self.restarts < RESTARTS:
                self._platforms = list(platforms)
                self._spawn()

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [*self.argv, str(theirs.fileno()), *self._platforms], pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True)
        except OSError as e:
            ours.close()
            log.warning("could not start the sending processes' fork server (%s)",
                        type(e).__name__)
            self._proc = None
            self.restarts = RESTARTS            # nothing to gain by trying again
            return
        finally:
            theirs.close()
        self._sock, self._ready = ours, False

    @property
    def starting(self) -> bool:
        """Whether a server runs that is not ready yet (importing the SDKs)."""
        with self._lock:
            return self._sock is not None and not self._ready

    def ready(self, timeout: float, *, hung: bool = True) -> bool:
        """Whether the server is ready to fork, waiting up to `timeout` seconds for it;
        one still not ready then is taken to hang (ended, started again), unless not
        `hung` (a caller waiting in slices, with something to do between them)."""
        with self._lock:
            return self._is_ready(timeout, hung=hung)

    def _is_ready(self, timeout: float, *, hung: bool = True) -> bool:
        """Under `_lock`. A server that ends meanwhile is started again (`_ended`), and
        the new one waited for, within the same `timeout`."""
        limit = time.monotonic() + timeout
        while not self._ready and self._sock is not None:
            sock = self._sock
            waiting, _, _ = select.select([sock], [], [], max(0.0, limit - time.monotonic()))
            if not waiting:
                if hung and timeout > 0:    # it hangs: no use waiting on it again
                    self._ended(f"not ready within {timeout:.0f} s")
                return False
            said = sock.recv(64)
            if said == _READY:
                self._ready = True
            else:                           # ended before it was ready
                self._ended("before it was ready")
        return self._ready

    def fork(self, threads: int, wait: float) -> Forked | None:
        """A new child, primed, with `threads` sending threads, once the server is ready
        (waiting up to `wait` seconds for one still starting, or started again after it
        is found ended); None when there is none ready by then, or it gave up."""
        with self._lock:
            for _ in range(2):
                if not self._is_ready(wait):
                    return None
                child = self._fork(threads)
                if child is not None:
                    return child
            return None

    def _fork(self, threads: int) -> Forked | None:
        """Under `_lock`, the server ready."""
        assert self._sock is not None
        child_in, stdin = os.pipe()
        stdout, child_out = os.pipe()
        try:
            self._sock.settimeout(FORK_SECONDS)
            socket.send_fds(self._sock, [b"fork %d" % threads], [child_in, child_out])
            said, fds, _, _ = socket.recv_fds(self._sock, 64, 1)
        except OSError as e:                # a timeout too: it hangs
            said, fds, why = b"", [], type(e).__name__
        else:
            why = "while forking"
        finally:
            os.close(child_in)
            os.close(child_out)
        if not said or not fds:
            for fd in (stdin, stdout, *fds):
                os.close(fd)
            self._ended(why)
            return None
        self.forked += 1
        return Forked(int(said), fds[0], stdin, stdout)

    def _ended(self, why: str) -> None:
        """The server is gone or no use: killed if need be, and started again unless it
        did so RESTARTS times already. Under `_lock`."""
        if self._sock is not None:
            self._sock.close()
        self._sock, self._ready = None, False
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        if self.restarts >= RESTARTS:
            log.warning("the sending processes' fork server ended (%s); sending processes "
                        "now start as fresh interpreters (each imports the SDKs itself)", why)
            return
        self.restarts += 1
        log.warning("the sending processes' fork server ended (%s); starting it again",
                    why)
        self._spawn()

    def close(self, *, kill: bool = False) -> None:
        """End the server (its children are ended by their own pipes' end). `kill`: at
        once, not waiting for it to read the end of its socket (it reads it only once
        it has imported the SDKs: seconds); for a daemon with no child left."""
        with self._lock:
            sock, proc, self._sock, self._proc = self._sock, self._proc, None, None
            self.restarts = RESTARTS
        if sock is not None:
            sock.close()
        if proc is not None and kill:
            proc.kill()
            proc.wait()
        elif proc is not None:
            try:
                proc.wait(FORK_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- the server ----------------------------------------------------------------------------


def _reap() -> None:
    """Collect the children that ended (the server's: it forked them)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def server_main(fd: int, platforms: list[str]) -> int:
    """Import and prime `platforms`, then fork a child for each request on socket `fd`
    until the daemon's end closes."""
    # Ctrl-C reaches the whole process group: the daemon stops, and this process with it
    # (the end of its socket), and its children finish what they have under way first
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # never a log line of its own (children send theirs up to the daemon: `child_main`)
    logging.getLogger().handlers[:] = [logging.NullHandler()]
    ctl = socket.socket(fileno=fd)
    # no collection while importing: nearly all it makes lives as long as the process
    # (a tenth of the import's CPU, which a daemon restarted on a busy machine waits for)
    gc.disable()
    from scheduler import sendproc
    for name in platforms:
        with contextlib.suppress(Exception):    # the account's build meets it again
            sendproc.prime(name)
    # what the SDKs made stays as long as the process and its children: out of every
    # collection, and its pages shared with each child as long as it only reads them
    gc.collect()
    gc.freeze()
    gc.enable()
    ctl.sendall(_READY)
    while True:
        waiting, _, _ = select.select([ctl], [], [], 1.0)
        _reap()
        if not waiting:
            continue
        try:
            said, fds, _, _ = socket.recv_fds(ctl, 64, 2)
        except OSError:
            return 0
        if not said:
            return 0                        # the daemon is gone
        if len(fds) != 2 or not said.startswith(b"fork "):
            for fd_ in fds:
                os.close(fd_)
            continue
        threads = int(said.split()[1])
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ctl.close()
                code = sendproc.child_main(open(fds[0], "rb"), open(fds[1], "wb"),  # noqa: SIM115
                                           threads=threads)
            finally:
                os._exit(code)
        for fd_ in fds:
            os.close(fd_)
        pidfd = os.pidfd_open(pid)
        try:
            socket.send_fds(ctl, [str(pid).encode()], [pidfd])
        except OSError:
            return 0
        finally:
            os.close(pidfd)


if __name__ == "__main__":
    sys.exit(server_main(int(sys.argv[1]), sys.argv[2:]))
