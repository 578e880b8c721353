"""Sending in a child process: the SDKs' requests on the machine's second core.

In a burst the SDKs (tweepy, Mastodon.py, atproto) are three quarters of the daemon's
CPU, all under one interpreter lock (1,000 posts at 250 ms: 3.7 of 5.0 s). With
TMINUS_SEND_PROCESS the daemon keeps everything that decides (claims, ownership
proofs, lease renewal, the record, look-ups) and hands only each attempt — an
account's adapter built, warmed, and `publish(post)` — to one child process
(`python -m scheduler.sendproc`), which runs them on threads of its own.

The pipe: length-prefixed pickles both ways, between this process and the child it
started (nothing else reads or writes them; they are never logged). Parent to child:
`("build", id, key, platform, account, credentials, timeout, session)` (answered once
built, with whether the adapter warms: a first build imports the SDK, which the
attempt's bound does not count), `("publish", id, key, post, seconds_left)` (the post
whole; the child replaces its deadline by the seconds left on its own clock),
`("warm", id, key)` (only to an adapter that warms), `("prime", id, platforms)`
(answered once imported and primed: the daemon is ready only then). Child to parent:
`("ok", id, receipt)`, `("error", id, kind, message, retry_after, resume_at)`,
`("session", key, value)` (a Bluesky login, saved by the parent in the account's row),
`("log", level, logger, text)` (the adapters' log lines, redacted and written by the
parent).
A deadline crosses as seconds left, so the child holds the attempt to it by its own
clock.

What can go wrong, and what it means for a post:
- **The child dies** (killed, out of memory) with requests under way: each of them is
  an unknown outcome (the request may have left), looked up before any retry, never
  sent again blindly. The next attempt starts a new child; its adapters log in from
  the sessions the parent saved.
- **The child hangs**: every attempt has its time bound (`post.deadline`); an answer
  not back CHILD_GRACE_SECONDS after it is an unknown outcome, and the child is
  killed (what else it had under way is unknown too) and started afresh.
- **The parent dies**: the child reads the end of its pipe and exits at once; the
  posts it may have sent are unrecorded, their leases lapse, and the next daemon
  looks them up (as after any crash).
- A request that never reached the child (its pipe already broken) was never sent:
  a TransientError, retried as usual.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol

from content.platforms import Credentials
from content.platforms import platform as platform_entry
from jobs.adapters.base import (
    Clock,
    FindsMany,
    Primes,
    Publisher,
    SessionStore,
    Warms,
    adapter_class,
)
from jobs.errors import AuthError, PermanentError, PublishError, TransientError, UnknownOutcome
from jobs.outgoing import Identity, Outgoing, Receipt

if TYPE_CHECKING:
    from scheduler.prefork import ForkServer

# How long past an attempt's time bound its answer may take to come back through the
# pipe before the child is taken to hang (the adapter itself ends the attempt by then).
CHILD_GRACE_SECONDS = 2.0
# How long a child may take to build an account's adapter (a child just started first
# imports and primes the SDKs: seconds, more on a busy machine) before it is taken to hang.
CHILD_START_SECONDS = 120.0
# How long a child may take to answer a look-up (a walk of the account's recent posts,
# page by page) before it is taken to hang.
CHILD_LOOKUP_SECONDS = 120.0
# How long a stopping child gets to finish what it has under way before it is killed.
CHILD_STOP_SECONDS = 5.0
_HEADER = struct.Struct("!I")
_ERRORS: dict[str, type[PublishError]] = {
    c.__name__: c for c in (TransientError, PermanentError, AuthError, UnknownOutcome,
                            PublishError)}


def _write(stream: IO[bytes], lock: threading.Lock, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        stream.write(_HEADER.pack(len(data)) + data)
        stream.flush()


def _read(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """The next message, or None at the end of the pipe."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    message: tuple[Any, ...] = pickle.loads(data)
    return message


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Child(Protocol):
    """A running child as `SendingProcess` uses it: a `subprocess.Popen` (a fresh
    interpreter) or a `prefork.Forked` (forked by the fork server)."""

    pid: int

    @property
    def stdin(self) -> IO[bytes] | None: ...
    @property
    def stdout(self) -> IO[bytes] | None: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


class _Died(Exception):
    """The child ended (or was killed) before answering."""


@dataclass
class _Call:
    future: Future[Any]
    creating: bool          # a publish: once sent, a lost answer is an unknown outcome


class SendingProcess:
    """The parent's end: starts the child on first use (and again after it died), and
    turns each call into a message and its answer back into a return or a raise.
    `on_session(key, value)` keeps a login the child made (the parent's database)."""

    def __init__(self, *, threads: int, on_session: Callable[[int, str], None],
                 argv: list[str] | None = None, server: ForkServer | None = None) -> None:
        self.threads = threads
        self.on_session = on_session
        self.argv = argv or [sys.executable, "-m", "scheduler.sendproc"]
        self.server = server                    # children forked, primed, when it is ready
        self._lock = threading.Lock()           # the child, its pipe's writer, `_calls`
        self._write_lock = threading.Lock()
        self._proc: _Child | None = None
        # keys built in the current child -> whether its adapter warms (a warm-up of one
        # that does not is its build alone: no round trip more)
        self._built: dict[int, bool] = {}
        self._building: dict[int, Future[Any]] = {}     # key -> its build's answer
        self._building_in: dict[int, _Child] = {}
        self._calls: dict[int, _Call] = {}
        self._next = 0
        self.started = 0                        # children started so far (tests)
        self.forked = 0                         # of them, forked by the server

    @property
    def pid(self) -> int | None:
        with self._lock:
            alive = self._proc is not None and self._proc.poll() is None
            return self._proc.pid if alive and self._proc is not None else None

    def _child(self) -> _Child:
        """The running child (started now if there is none): forked by the fork server,
        primed, in milliseconds (once it is ready: a server still starting imports the
        SDKs, as a fresh child would), or else (no server, or none ready in time) a
        fresh interpreter, which imports the SDKs first. Under `_lock`."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        proc: _Child | None = (None if self.server is None
                               else self.server.fork(self.threads, CHILD_START_SECONDS))
        if proc is not None:
            self.forked += 1
        else:
            env = {**os.environ, "TMINUS_SEND_THREADS": str(self.threads)}
            try:
                proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, close_fds=True)
            except OSError as e:
                raise TransientError(f"the sending process could not be started "
                                     f"({type(e).__name__}); nothing was sent") from None
        self._proc, self._built = proc, {}
        self.started += 1
        threading.Thread(target=self._answers, args=(proc,), name="tminus-sendproc",
                         daemon=True).start()
        return proc

    def _answers(self, proc: _Child) -> None:
        """Read the child's answers until its pipe ends; then every call still waiting
        on this child learns that it died."""
        assert proc.stdout is not None
        try:
            while (message := _read(proc.stdout)) is not None:
                if message[0] == "log":
                    # through this process's logging: its redaction of secrets applies
                    _, level, name, text = message
                    logging.getLogger(name).log(level, "%s", text)
                    continue
                if message[0] == "session":
                    # not saved: the next login makes a new one
                    with contextlib.suppress(Exception):
                        self.on_session(message[1], message[2])
                    continue
                with self._lock:
                    call = self._calls.pop(message[1], None)
                if call is not None:
                    call.future.set_result(message)
        except (OSError, EOFError, pickle.UnpicklingError):
            pass
        finally:
            proc.wait()
            with self._lock:
                if self._proc is proc:
                    self._proc = None
                lost = [(i, c) for i, c in self._calls.items()
                        if getattr(c.future, "_tminus_proc", None) is proc]
                for i, _ in lost:
                    del self._calls[i]
            for _, call in lost:
                call.future.set_exception(_Died())

    def _send(self, message: tuple[Any, ...], *, creating: bool, proc: _Child | None = None
              ) -> tuple[Future[Any], _Child]:
        """Hand `message` (its call id put in second) to the child (`proc`, just found
        alive; else the running one, started if need be); returns the answer's future.
        Under `_lock`."""
        future: Future[Any] = Future()
        if proc is None:
            proc = self._child()
        assert proc.stdin is not None
        future._tminus_proc = proc  # type: ignore[attr-defined]
        self._next += 1
        call_id = self._next
        self._calls[call_id] = _Call(future, creating)
        try:
            _write(proc.stdin, self._write_lock, (message[0], call_id, *message[1:]))
        except OSError as e:
            # the pipe broke before the message was handed over: it never left
            self._calls.pop(call_id, None)
            raise TransientError("the sending process could not take the request "
                                 f"({type(e).__name__}); nothing was sent") from None
        return future, proc

    def _built_in_child(self, key: int, build: Callable[[], tuple[Any, ...]]) -> None:
        """The account's adapter built in the current child, waiting for it if need be.
        Not bounded by an attempt: a child just started imports and primes the SDKs
        first (seconds, longer on a busy machine), which is no hang."""
        with self._lock:
            live = self._child()    # the live one: `_built` is the current child's
            future = None if key in self._built else self._building.get(key)
            if future is None and key not in self._built:
                future, proc = self._send(build(), creating=False, proc=live)
                self._building[key] = future
                self._building_in[key] = proc
        if future is None:
            return
        warms = True
        try:
            warms = bool(self._answer(future, creating=False, wait=CHILD_START_SECONDS))
        finally:
            with self._lock:
                if self._building.get(key) is future:
                    del self._building[key]
                    proc = self._building_in.pop(key)
                    if future.done() and future.exception() is None and proc is self._proc:
                        self._built[key] = warms

    def _call(self, key: int, build: Callable[[], tuple[Any, ...]],
              message: Callable[[], tuple[tuple[Any, ...], float]], *, creating: bool) -> Any:
        """Send the message `message()` makes, once the account's adapter is built in
        this child (made right before it is sent, with how many seconds its answer may
        take from then), and wait for its answer. One look at the child a call when it
        has the adapter built already (the usual case: the warm-up built it)."""
        for _ in range(4):      # up to three builds, in children that kept ending
            with self._lock:
                live = self._child()
                # a child that ended since is followed by one that has not built it yet
                if key in self._built:
                    request, wait = message()
                    future = self._send(request, creating=creating, proc=live)[0]
                else:
                    future = None
            if future is not None:
                return self._answer(future, creating=creating, wait=wait)
            self._built_in_child(key, build)
        raise TransientError("the sending process kept ending before the request could be "
                             "handed over; nothing was sent")

    def _answer(self, future: Future[Any], *, creating: bool, wait: float) -> Any:
        try:
            answer = future.result(timeout=max(0.0, wait))
        except _Died:
            if creating:
                raise UnknownOutcome("the sending process ended while the request was "
                                     "under way; it is looked up before any retry") from None
            raise TransientError("the sending process ended before answering; "
                                 "nothing was posted") from None
        except FutureTimeout:
            self.kill(getattr(future, "_tminus_proc", None))
            if creating:
                raise UnknownOutcome("the sending process gave no answer within the "
                                     "attempt's time bound; it is looked up before any "
                                     "retry") from None
            raise TransientError("the sending process gave no answer in time; "
                                 "nothing was posted") from None
        if answer[0] == "ok":
            return answer[2]
        _, _, kind, text, retry_after, resume_at = answer
        error = _ERRORS.get(kind)
        if error is TransientError:
            raise TransientError(text, retry_after=retry_after, resume_at=resume_at)
        if error is not None:
            raise error(text)
        raise RuntimeError(text)        # an adapter bug: the attempt's usual ladder

    def publish(self, key: int, build: Callable[[], tuple[Any, ...]], post: Outgoing, now: Clock,
                timeout: float) -> Receipt:
        def message() -> tuple[tuple[Any, ...], float]:
            # the time left is taken once the adapter is ready, right before the request
            # (the post crosses whole: the child replaces its deadline by its own clock's)
            left = (None if post.deadline is None
                    else (post.deadline - now()).total_seconds())
            wait = (2 * timeout if left is None else left) + CHILD_GRACE_SECONDS
            return ("publish", key, post, left), wait

        receipt: Receipt = self._call(key, build, message, creating=True)
        return receipt

    def warm(self, key: int, build: Callable[[], tuple[Any, ...]], timeout: float) -> None:
        """The account's adapter built in the child, and warmed there if it warms (an
        adapter that does not, X's and Mastodon's, is ready once built: no round trip)."""
        self._built_in_child(key, build)
        with self._lock:
            warms = self._built.get(key, True)
        if warms:
            self._call(key, build, lambda: (("warm", key), 2 * timeout + CHILD_GRACE_SECONDS),
                       creating=False)

    def find_many(self, key: int, build: Callable[[], tuple[Any, ...]],
                  wanted: list[tuple[Outgoing, datetime]]
                  ) -> dict[int, Receipt | UnknownOutcome | None]:
        """The account's posts looked up in the child (its SDK is imported there only).
        Nothing is made: a child that ended meanwhile is asked again, once."""
        message = ("find", key, [(replace(post, deadline=None), since) for post, since in wanted])
        for attempt in (1, 2):
            try:
                found: dict[int, Receipt | UnknownOutcome | None] = self._call(
                    key, build, lambda: (message, CHILD_LOOKUP_SECONDS), creating=False)
                return found
            except TransientError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def prime(self, platforms: list[str]) -> Future[Any]:
        """Start the child now and have it import and prime these platforms' adapters
        (atproto alone takes seconds); `primed` waits for its answer."""
        with self._lock:
            future, _ = self._send(("prime", platforms), creating=False)
        return future

    def primed(self, future: Future[Any]) -> None:
        """Until the child has answered `prime` (at most CHILD_START_SECONDS)."""
        self._answer(future, creating=False, wait=CHILD_START_SECONDS)

    def start(self) -> None:
        """Start the child now if none runs (forked, when the fork server is ready)."""
        with self._lock:
            self._child()

    def kill(self, proc: _Child | None = None) -> None:
        """Kill the child (`proc`: only if it is still the current one)."""
        with self._lock:
            if self._proc is None or (proc is not None and self._proc is not proc):
                return
            target = self._proc
        target.kill()
        target.wait()       # its calls fail as it ends (`_answers`)

    def forget(self, key: int) -> None:
        """The account's calls go to another process now: should they come back, its
        adapter is built here again, from the latest login (a Bluesky refresh token is
        good for one refresh: the adapter left here may hold a spent one)."""
        with self._lock:
            self._built.pop(key, None)

    def close_if_idle(self) -> bool:
        """Close the child if it has nothing under way (a child beyond the daemon's
        share: `publishers.Publishers`); a later call starts one again. Whether it did."""
        with self._lock:
            if self._proc is None or self._calls or self._building:
                return False
            proc, self._proc = self._proc, None
        self._close(proc)
        return True

    def close(self) -> None:
        """The child finishes what it has under way and exits (killed after
        CHILD_STOP_SECONDS)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            self._close(proc)

    @staticmethod
    def _close(proc: _Child) -> None:
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(CHILD_STOP_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


class ChildPublisher:
    """An account's adapter whose publishing, warm-up and look-ups happen in a child
    (`process`); its checks are the parent's own adapter's (`local`, built on first
    use). With `route` (the account's place, asked before each call: `Publishers`'
    share of the host's cores), the account moves between calls — never while one is
    under way, so it is in one place at a time and its posts, one at a time in its lane,
    go out in order; None: the parent's own adapter makes them (no child)."""

    def __init__(self, process: SendingProcess | None, key: int, platform: str, account: str,
                 credentials: Credentials, *, timeout: float, now: Clock,
                 session: str | None, local: Callable[[], Publisher],
                 route: Callable[[int], SendingProcess | None] | None = None) -> None:
        self.process = process          # where its calls go now
        self.key = key
        self.platform = platform
        self.timeout = timeout
        self._now = now
        self._account = account
        self._credentials = credentials
        self.session = session          # the latest login known (a child restarted uses it)
        self._local_factory = local
        self._local: Publisher | None = None
        self._route = route
        self._lock = threading.Lock()
        self._busy = 0                  # calls under way

    def _build(self) -> tuple[Any, ...]:
        return ("build", self.key, self.platform, self._account, self._credentials,
                self.timeout, self.session)

    @contextlib.contextmanager
    def _placed(self) -> Iterator[SendingProcess | None]:
        """Where this call goes: where the account's calls under way are, or, with none
        under way, where `route` says now."""
        with self._lock:
            if self._busy == 0 and self._route is not None:
                where = self._route(self.key)
                if where is not self.process:
                    if self.process is not None:
                        self.process.forget(self.key)
                    self.process = where
            self._busy += 1
            where = self.process
        try:
            yield where
        finally:
            with self._lock:
                self._busy -= 1

    @classmethod
    def from_credentials(cls, account: str, credentials: Credentials, *, timeout: float,
                         now: Clock, session_store: SessionStore) -> ChildPublisher:
        raise TypeError("a ChildPublisher is made by Publishers.sender, beside its process")

    def local(self) -> Publisher:
        if self._local is None:
            self._local = self._local_factory()
        return self._local

    def publish(self, post: Outgoing) -> Receipt:
        with self._placed() as process:
            if process is None:
                return self.local().publish(post)
            return process.publish(self.key, self._build, post, self._now, self.timeout)

    def warm(self) -> None:
        with self._placed() as process:
            if process is None:
                pub = self.local()
                if isinstance(pub, Warms):
                    pub.warm()
                return
            process.warm(self.key, self._build, self.timeout)

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        found = self.find_many([(post, since)]).get(post.post_id)
        if isinstance(found, UnknownOutcome):
            raise found
        return found

    def find_many(self, wanted: list[tuple[Outgoing, datetime]]
                  ) -> dict[int, Receipt | UnknownOutcome | None]:
        with self._placed() as process:
            if process is None:
                return find_each(self.local(), list(wanted))
            return process.find_many(self.key, self._build, list(wanted))

    def check(self) -> Identity:
        return self.local().check()

    def max_characters(self) -> int | None:
        return self.local().max_characters()

    def close(self) -> None:
        pass        # the local adapter is the parent's `Publishers`' own, closed by it


def find_each(pub: Publisher, wanted: list[tuple[Outgoing, datetime]]
              ) -> dict[int, Receipt | UnknownOutcome | None]:
    """`wanted` looked up through `pub`: all at once where it can (`FindsMany`), else
    one by one, a post it could not tell about an UnknownOutcome saying why."""
    if isinstance(pub, FindsMany):
        return pub.find_many(wanted)
    found: dict[int, Receipt | UnknownOutcome | None] = {}
    for post, since in wanted:
        try:
            found[post.post_id] = pub.find(post, since)
        except Exception as e:  # the caller records why it could not tell
            found[post.post_id] = UnknownOutcome(
                e.message if isinstance(e, PublishError)
                else f"adapter error while looking the post up: {type(e).__name__}")
    return found


# -- the child ---------------------------------------------------------------------------


class _ChildSessions:
    """A login kept by the child's adapter: the one the parent read with the account
    first, then what the adapter saved (each save also goes up to the parent)."""

    def __init__(self, key: int, known: str | None, send: Callable[[tuple[Any, ...]], None]
                 ) -> None:
        self.key = key
        self.session = known
        self._send = send

    def load(self) -> str | None:
        return self.session

    def save(self, session: str) -> None:
        self.session = session
        self._send(("session", self.key, session))


def _error(call_id: int, e: BaseException) -> tuple[Any, ...]:
    if isinstance(e, PublishError):
        kind = next(c.__name__ for c in type(e).__mro__ if c.__name__ in _ERRORS
                    or c is PublishError)
        return ("error", call_id, kind, e.message, getattr(e, "retry_after", None),
                getattr(e, "resume_at", None))
    # an adapter bug: named by its class only here (its text could quote anything)
    return ("error", call_id, "bug", f"adapter error in the sending process: "
            f"{type(e).__name__}", None, None)


_PRIMED: set[type[Any]] = set()    # adapter classes primed in this process (or its parent)


def prime(platform: str) -> type[Publisher[Credentials]]:
    """The platform's adapter class, imported and primed (once a process; a child the
    fork server forked inherits what it primed)."""
    cls = adapter_class(platform_entry(platform))
    if cls not in _PRIMED:
        _PRIMED.add(cls)
        if isinstance(cls, Primes):
            cls.prime()
    return cls


def child_main(stdin: BinaryIO, stdout: BinaryIO, *, threads: int | None = None) -> int:
    """Serve the parent until its end of the pipe closes; then exit at once (what is
    under way is abandoned: the parent is gone or stopping, and looks it up). `threads`:
    how many requests at once (TMINUS_SEND_THREADS in a fresh interpreter)."""
    # Ctrl-C reaches the whole process group: the parent stops after the attempts under
    # way, and this process with it (the end of its pipe), not in the middle of them
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lock = threading.Lock()
    adapters: dict[int, Publisher] = {}
    if threads is None:
        threads = int(os.environ.get("TMINUS_SEND_THREADS", "256"))
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tminus-child")

    def send(message: tuple[Any, ...]) -> None:
        _write(stdout, lock, message)

    class _Up(logging.Handler):
        """The adapters' log lines go up to the parent, which redacts and writes them."""

        def emit(self, record: logging.LogRecord) -> None:
            with contextlib.suppress(Exception):
                send(("log", record.levelno, record.name, record.getMessage()))

    root = logging.getLogger()
    root.handlers[:] = [_Up()]
    root.setLevel(logging.INFO)

    def run(call_id: int, job: Callable[[], Any]) -> None:
        try:
            result = job()
        except BaseException as e:
            answer = _error(call_id, e)
        else:
            answer = ("ok", call_id, result)
        try:
            send(answer)
        except OSError:
            os._exit(0)             # the parent is gone

    def built(key: int) -> Publisher:
        pub = adapters.get(key)
        if pub is None:     # the parent builds first; never so, but never a blind guess
            raise TransientError("the account's adapter is not built in the sending "
                                 "process; nothing was sent")
        return pub

    def publish(key: int, post: Outgoing, left: float | None) -> Receipt:
        deadline = None if left is None else _utcnow() + timedelta(seconds=left)
        return built(key).publish(replace(post, deadline=deadline))

    def find_many(key: int, wanted: list[tuple[Outgoing, datetime]]
                  ) -> dict[int, Receipt | UnknownOutcome | None]:
        return find_each(built(key), wanted)

    def warm(key: int) -> None:
        pub = built(key)
        if isinstance(pub, Warms):
            pub.warm()

    while (message := _read(stdin)) is not None:
        kind = message[0]
        if kind == "prime":
            for name in message[2]:
                with contextlib.suppress(Exception):   # the first build meets it again
                    prime(name)
            # the SDKs' hundreds of thousands of objects, out of every later collection
            # (as the daemon does: `service.run_daemon`)
            gc.collect()
            gc.freeze()
            send(("ok", message[1], None))
        elif kind == "build":
            _, call_id, key, platform, account, credentials, timeout, session = message
            old = adapters.pop(key, None)
            if old is not None:
                old.close()
            store: SessionStore = _ChildSessions(key, session, send)
            try:
                adapters[key] = prime(platform).from_credentials(
                    account, credentials, timeout=timeout, now=_utcnow, session_store=store)
            except BaseException as e:      # the build's answer, and its calls' too
                adapters[key] = _Broken(e)  # type: ignore[assignment]
                send(_error(call_id, e))
            else:       # answered with whether it warms (the parent skips a warm-up if not)
                send(("ok", call_id, isinstance(adapters[key], Warms)))
        elif kind == "publish":
            _, call_id, key, post, left = message
            pool.submit(run, call_id, partial(publish, key, post, left))
        elif kind == "warm":
            _, call_id, key = message
            pool.submit(run, call_id, partial(warm, key))
        elif kind == "find":
            _, call_id, key, wanted = message
            pool.submit(run, call_id, partial(find_many, key, wanted))
    os._exit(0)


class _Broken:
    """An adapter the child could not build: every call raises why."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def publish(self, post: Outgoing) -> Receipt:
        raise self.error

    def warm(self) -> None:
        raise self.error

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        raise self.error

    def close(self) -> None:
        pass


if __name__ == "__main__":
    sys.exit(child_main(sys.stdin.buffer, sys.stdout.buffer))
