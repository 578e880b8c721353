"""Building the adapter for each account: settings and credentials meet `jobs` here.

The registry (`content.platforms`) says, for the account's platform, which
credentials dataclass to read from the environment and which adapter class to build
from it; `Settings.credentials` reads one, `jobs.adapters.base.adapter_class` imports
the other. Every adapter built is closed by `close()` when the daemon stops.

The sending processes (`scheduler.sendproc`) are made here too: TMINUS_SEND_PROCESS of
them, or, unset, this daemon's share of the host's cores (`send_share`: the cores
split among the daemons alive on this host, by the daemons table), agreed at the start
with the daemons started beside it (`Publishers._agree`) and read again every
HEARTBEAT_SECONDS.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Engine

from content.platforms import PLATFORMS
from content.platforms import platform as platform_entry
from jobs.adapters.base import Clock, Primes, Publisher, Warms, adapter_class
from jobs.adapters.dryrun import DryRunPublisher
from jobs.errors import PublishError
from scheduler import defaults
from scheduler.db import transaction
from scheduler.rows import AccountLike
from scheduler.settings import Settings
from scheduler.tables import account as accounts
from scheduler.tables import daemon as daemons

if TYPE_CHECKING:
    # (imported where a sending process is wanted: a dry run, or TMINUS_SEND_PROCESS=0,
    # never imports them — 0.15 MB of the daemon's process; docs/DESIGN.md)
    from scheduler.prefork import ForkServer
    from scheduler.sendproc import ChildPublisher, SendingProcess

log = logging.getLogger("tminus.publishers")

def _utcnow() -> datetime:
    return datetime.now(UTC)


_UNREAD = object()     # no session read yet


class AccountSessionStore:
    """A login session (Bluesky) kept in the account's row, shared by every daemon.

    `known` is the session as read with the account (at the claim): the first `load`
    returns it without a query. Saves go through `writer`, which writes the sessions
    saved at about the same time in one transaction (a burst on Bluesky accounts logs
    in or refreshes hundreds at once)."""

    def __init__(self, engine: Engine, account_id: int, *, known: str | object | None = _UNREAD,
                 writer: SessionWriter | None = None) -> None:
        self.engine = engine
        self.account_id = account_id
        self._known = known
        self._writer = writer or SessionWriter(engine)

    def load(self) -> str | None:
        if self._known is not _UNREAD:
            known, self._known = self._known, _UNREAD
            return known if isinstance(known, str) else None
        with transaction(self.engine) as conn:
            return conn.execute(select(accounts.c.session)
                                .where(accounts.c.id == self.account_id)).scalar()

    def save(self, value: str) -> None:
        self._known = _UNREAD
        self._writer.save(self.account_id, value)


class SessionWriter:
    """Writes saved sessions, coalesced: the thread that finds no write under way
    writes every session saved until none is left waiting, in one transaction a
    round; a save arriving meanwhile only joins the next round. A round that fails
    leaves its sessions waiting (the newer value of an account wins) for the next."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._waiting: dict[int, str] = {}
        self._lock = threading.Lock()
        self._writing = False
        self._due = False        # a `write_waiting` is under way or promised

    def save(self, account_id: int, value: str) -> None:
        """Written before this returns, unless a write under way takes it."""
        self.hold(account_id, value)
        self.write_waiting()

    def hold(self, account_id: int, value: str) -> bool:
        """Keep a session for the next `write_waiting`. True when none is under way or
        promised: the caller must then see that one runs."""
        with self._lock:
            self._waiting[account_id] = value
            first, self._due = not self._due, True
            return first

    def write_waiting(self) -> None:
        with self._lock:
            if self._writing:
                return
            self._writing = True
        batch: dict[int, str] = {}
        try:
            while True:
                with self._lock:
                    batch, self._waiting = self._waiting, {}
                    if not batch:
                        self._writing = self._due = False
                        return
                with transaction(self.engine) as conn:
                    conn.execute(
                        update(accounts).where(accounts.c.id == bindparam("aid"))
                        .values(session=bindparam("value")),
                        [{"aid": k, "value": v} for k, v in batch.items()])
        except BaseException:
            with self._lock:
                self._waiting = {**batch, **self._waiting}
                self._writing = self._due = False
            raise


def split_cores(cores: int, daemons: int, rank: int) -> int:
    """The sending processes of the daemon `rank` (0: the longest running) of `daemons`
    on a host with `cores` for them. Fewer daemons than cores: an even split, the cores
    left over going to the longest running, so that the host's total is `cores`. As
    many daemons as cores or more: none, each daemon sends in its own process — the
    daemons alone keep every core busy in a burst, and children would only add their
    hand-offs (1,000 posts, 4 daemons on 2 cores: 6.8 s with none, 12.1 s with one
    each, 16.8 s with two each; `bench --only latency`, docs/DESIGN.md)."""
    daemons = max(1, daemons)
    if daemons >= cores:
        return 0
    base, extra = divmod(cores, daemons)
    return base + (1 if rank < extra else 0)


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` runs on this host (another user's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def send_share(engine: Engine, now: datetime, *, cores: int = defaults.SEND_PROCESSES,
               host: str | None = None, pid: int | None = None,
               alive: Callable[[int], bool] = pid_alive) -> tuple[int, int]:
    """This daemon's share of the host's sending processes, and how many daemons share
    them: the daemons table's rows of this host (by host name) that beat within
    HEARTBEAT_STALE_SECONDS of `now` (the daemons' own clock, the database's), not
    stopped, not dry runs (they send nothing), whose process is `alive` (on this host a
    daemon killed a moment ago is seen gone at once, not after its beats go stale: a
    daemon restarted after a crash has the cores at once); this process among them by
    its pid, counted as the newest while its first beat is not written yet."""
    host = socket.gethostname() if host is None else host
    pid = os.getpid() if pid is None else pid
    fresh = now - timedelta(seconds=defaults.HEARTBEAT_STALE_SECONDS)
    with transaction(engine) as conn:
        rows = conn.execute(select(daemons.c.pid, daemons.c.started_at, daemons.c.id).where(
            daemons.c.hostname == host, daemons.c.stopped_at.is_(None),
            daemons.c.beat_at > fresh, daemons.c.dry_run.is_(False))).all()
    order = sorted((r.started_at, r.id) for r in rows if r.pid != pid and alive(r.pid))
    mine = next(((r.started_at, r.id) for r in rows if r.pid == pid), None)
    rank = len(order) if mine is None else sum(1 for o in order if o < mine)
    count = len(order) + 1
    return split_cores(cores, count, rank), count


def send_processes(send_process: int | None) -> int:
    """The sending processes a daemon has room for: TMINUS_SEND_PROCESS (`send_process`),
    or, unset (None), one per core (SEND_PROCESSES), of which it uses its share."""
    return defaults.SEND_PROCESSES if send_process is None else send_process


def early_fork_server(settings: Settings, *, dry_run: bool = False) -> ForkServer | None:
    """The sending processes' fork server, started now, before the daemon opens its
    database, so that it imports and primes the SDKs beside the daemon's own start (on a
    busy machine both take seconds). Its platforms are guessed from the credentials in
    the environment (a platform every one of whose required variables is set under one
    prefix); `Publishers.prepare` has the children prime any it missed. None when no
    sending processes are wanted (or a dry run, or no such credentials)."""
    if dry_run or settings.dry_run or not send_processes(settings.send_process):
        return None
    env = settings.env
    guessed = []
    for entry in PLATFORMS.values():
        required = [v.suffix for v in entry.credentials.variables() if v.required]
        if entry.name == "dryrun" or not required:
            continue
        first = f"_{required[0]}"
        prefixes = {k[len("TMINUS_"):-len(first)] for k in env
                    if k.startswith("TMINUS_") and k.endswith(first) and env[k].strip()}
        if any(all(env.get(f"TMINUS_{p}_{s}", "").strip() for s in required) for p in prefixes):
            guessed.append(entry.name)
    if not guessed:
        return None
    from scheduler.prefork import ForkServer
    server = ForkServer()
    server.start(guessed)
    return server


class Publishers:
    """One adapter per account, built on first use. With `dry_run`, or for accounts on
    the dryrun platform, every post goes to the one dry-run outbox. `now` is the clock
    every adapter is told the time by (the system clock unless a test or rehearsal
    says otherwise)."""

    def __init__(self, engine: Engine, settings: Settings, *, now: Clock | None = None,
                 dry_run: bool | None = None, send_process: int | None = 0,
                 server: ForkServer | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.dry_run = settings.dry_run if dry_run is None else dry_run
        self.now: Clock = now or _utcnow
        self.dryrun = DryRunPublisher(settings.dryrun_outbox, now=self.now)
        self._cache: dict[int, Publisher] = {}
        self._warmed: dict[int, float] = {}     # account id -> when warmed (monotonic)
        self._sessions = SessionWriter(engine)
        self._lock = threading.Lock()
        # with `send_process` (TMINUS_SEND_PROCESS): publishing in that many child
        # processes (`scheduler.sendproc`), an account always in the same one (by id),
        # one ChildPublisher per account. None (unset): up to one per core, of which
        # this daemon uses its share (`send_share`: agreed at `prepare`, read again
        # every HEARTBEAT_SECONDS: `_resharing`); an account goes to its child by id
        # among those in use, or to this process's own adapter while the share is none.
        self.shared = send_process is None
        wanted = send_processes(send_process)
        self._processes: list[SendingProcess] = []
        self._senders: dict[int, ChildPublisher] = {}
        self._saver: ThreadPoolExecutor | None = None
        self.share: int | None = None if self.shared else wanted   # None: not read yet
        self._daemons = 1                       # the daemons sharing the host, last read
        self._platforms: list[str] = []         # the platforms in use (`prepare`)
        self._primed_here = False               # their adapters primed in this process
        self._resharing: threading.Thread | None = None
        self._share_lock = threading.Lock()
        self.pid_alive = pid_alive              # (tests: daemons of made-up pids)
        self.pid = os.getpid()                  # this daemon's row's (tests: several here)
        self._stop = threading.Event()
        # the children are forked, primed, by one fork server (`scheduler.prefork`):
        # `server`, started early (`early_fork_server`), or started by `prepare` with
        # the platforms in use
        self._server: ForkServer | None = None
        if not self.dry_run and wanted:
            from scheduler.prefork import ForkServer
            from scheduler.sendproc import SendingProcess
            self._server = server or ForkServer()
            self._processes = [SendingProcess(threads=settings.concurrency,
                                              on_session=self._child_session,
                                              server=self._server)
                               for _ in range(wanted)]

    def for_account(self, account: AccountLike) -> Publisher:
        if self.dry_run or account.platform == "dryrun":
            return self.dryrun
        assert account.id is not None
        with self._lock:
            pub = self._cache.get(account.id)
        if pub is not None:
            return pub
        # built outside the lock: a burst builds hundreds side by side, one per lane
        built = self.build(account)
        with self._lock:
            pub = self._cache.setdefault(account.id, built)
        if pub is not built:    # another thread built it first (a look-up, say): keep one
            built.close()
        return pub

    def sender(self, account: AccountLike) -> Publisher:
        """The adapter a post of `account` is published through: with a sending process,
        the account's `ChildPublisher` (its look-ups still `for_account`'s); otherwise
        `for_account`'s. A missing credential is a `TminusError` naming it, as there."""
        if not self._processes or account.platform == "dryrun":
            return self.for_account(account)
        assert account.id is not None
        with self._lock:
            pub = self._senders.get(account.id)
        if pub is not None:
            return pub
        entry = platform_entry(account.platform)
        credentials = self.settings.credentials(account.credentials, entry.credentials)
        if self.shared:
            if self.share is None:      # `tminus run --once`: read once, here
                self._apply_share(self._read_share())
            process, route = None, self._route
        else:
            process, route = self._processes[account.id % len(self._processes)], None
        from scheduler.sendproc import ChildPublisher
        built = ChildPublisher(process, account.id, account.platform, account.name,
                               credentials, timeout=self.settings.request_timeout, now=self.now,
                               session=account.session, local=lambda: self.for_account(account),
                               route=route)
        with self._lock:
            return self._senders.setdefault(account.id, built)

    def _route(self, key: int) -> SendingProcess | None:
        """Where account `key`'s next call goes: its child by id among the share in use,
        or None (this process's own adapter) while the share is none."""
        share = self.share
        return self._processes[key % share] if share else None

    def _read_share(self) -> int:
        """This daemon's share now (`send_share`; the whole of it, should the daemons
        table not answer: the next reading corrects it)."""
        try:
            share, self._daemons = send_share(self.engine, self.now(),
                                              cores=len(self._processes), pid=self.pid,
                                              alive=self.pid_alive)
        except Exception as e:
            log.warning("could not read the daemons on this host (%s); sending processes "
                        "kept as they are", type(e).__name__)
            return self.share if self.share is not None else len(self._processes)
        return share

    def _agree(self) -> int:
        """The share to start with, agreed with the daemons started beside this one:
        read once this daemon's row is written (`Daemon.prepare`, before this), and
        again every SEND_SHARE_AGREE_SECONDS while the fork server imports the SDKs,
        until it is ready to fork. Daemons started at one moment each write their row
        within a second (the database opened, before any SDK), and the server's import
        takes longer, so the reading once it is ready counts them all and no child
        beyond the share is ever forked; a single daemon waits for nothing it would not
        wait for anyway. A share of none is final at once (more daemons joining keep it
        none): the server is closed without waiting for it, its import being only CPU
        taken from the daemons' own."""
        share = self._read_share()
        server = self._server
        if not share or server is None or not self._platforms:
            return share
        server.start(self._platforms)
        from scheduler.sendproc import CHILD_START_SECONDS
        limit = time.monotonic() + CHILD_START_SECONDS
        while (server.starting and time.monotonic() < limit
               and not server.ready(defaults.SEND_SHARE_AGREE_SECONDS, hung=False)):
            share = self._read_share()
            if not share:
                return 0
        return self._read_share()

    def _apply_share(self, share: int) -> None:
        """Use `share` children from now on (each account's next call goes by it); a
        child beyond it is closed once it has nothing under way. The way is made ready
        first, so that no post waits for it: a share grown, its children forked (the
        fork server started again, and waited for, if it was closed); a share of none,
        the adapters imported and primed in this process, and the fork server closed
        once no child is left (it holds the SDKs: memory for nothing)."""
        with self._share_lock:
            if share != self.share:
                count = self._daemons
                log.info("sending processes: %d (this host's %d cores shared by the %d "
                         "daemon%s alive on it)", share, len(self._processes), count,
                         "" if count == 1 else "s")
            if share == 0:
                if self._server is not None and all(p.pid is None for p in self._processes):
                    # nothing forked (the start): its import is only CPU taken from ours
                    self._server.close(kill=True)
                    self._server = None
                self._prime_here()
                self.share = 0
                for process in self._processes:
                    process.close_if_idle()
                if self._server is not None and all(p.pid is None for p in self._processes):
                    self._server.close(kill=True)
                    self._server = None
                return
            before = self.share or 0
            if share > before:
                if self._server is None:
                    from scheduler.prefork import ForkServer
                    self._server = ForkServer()
                    for process in self._processes:
                        process.server = self._server
                self._start(self._processes[before:share])
            self.share = share
            for process in self._processes[share:]:
                process.close_if_idle()

    def _reshare(self) -> None:
        """The share read again every HEARTBEAT_SECONDS, until `close`: a daemon started
        later, or one that stopped or died, changes it."""
        while not self._stop.wait(defaults.HEARTBEAT_SECONDS):
            self._apply_share(self._read_share())

    def _child_session(self, account_id: int, value: str) -> None:
        """A login the sending process made: kept for its next start, and written to the
        row on a thread of its own (the pipe's reader goes on), with every other login
        that came up while a write was under way: a burst's hundreds of Bluesky logins
        are a few transactions, not one each."""
        with self._lock:
            pub = self._senders.get(account_id)
            if self._saver is None:
                self._saver = ThreadPoolExecutor(max_workers=1,
                                                 thread_name_prefix="tminus-sessions")
            saver = self._saver
        if pub is not None:
            pub.session = value
        if self._sessions.hold(account_id, value):
            saver.submit(self._save_logged)

    def _save_logged(self) -> None:
        try:
            self._sessions.write_waiting()
        except Exception as e:    # the next start logs in again; named by class only
            log.warning("could not save login sessions (%s): they wait for the next login, "
                        "or the next start logs in again", type(e).__name__)

    def warm(self, account: AccountLike) -> bool:
        """Get `account` ready to post before its posts are due: its adapter built and,
        where the platform needs a login (Bluesky), logged in or its session refreshed,
        so that the due second spends no round trip and no CPU on either. At most once
        every WARM_AGAIN_SECONDS an account; returns whether it was warmed now. A failure
        is logged (its class only: a message may quote a token) and left for the post's
        own attempt to meet and report, which pauses the account if it must."""
        if self.dry_run or account.platform == "dryrun":
            return False
        assert account.id is not None
        with self._lock:
            last = self._warmed.get(account.id)
            if last is not None and time.monotonic() - last < defaults.WARM_AGAIN_SECONDS:
                return False
            self._warmed[account.id] = time.monotonic()
        try:
            pub = self.sender(account)
            if isinstance(pub, Warms):
                pub.warm()
        except Exception as e:
            # an adapter's own errors never quote a secret; anything else is named only
            why = e.message if isinstance(e, PublishError) else type(e).__name__
            log.warning("could not get %s ready ahead of its posts (%s); its next post "
                        "tries again", account.name, why)
            return False
        return True

    def prepare(self, platforms: Iterable[str]) -> None:
        """Import the adapters (and so the SDKs) of `platforms` now, and prime them
        (`Primes`): atproto alone takes seconds to import, which the first post due on
        Bluesky must not wait for, and a burst's lanes must not each build what an SDK
        builds on first use. In the sending processes, or, with TMINUS_SEND_PROCESS
        unset, in as many as this daemon's share agreed with the daemons started beside
        it (`_agree`: called once its row is written), in this process if that is none.
        Once: the daemon's start."""
        if self.dry_run:
            return
        real = sorted(set(platforms) - {"dryrun"})
        self._platforms = real
        if self.shared and self._processes:
            self._apply_share(self._agree())
            if self._resharing is None:
                self._resharing = threading.Thread(target=self._reshare, daemon=True,
                                                   name="tminus-send-share")
                self._resharing.start()
            return
        if self._processes:
            self._start(self._processes)
            return
        self._prime_here()

    def _start(self, processes: list[SendingProcess]) -> None:
        """Start `processes` with the platforms in use imported and primed."""
        real = self._platforms
        if real and self._server is not None:
            # the fork server imports and primes them once, and the daemon is ready once
            # it has and has forked each sending process (its own adapters only look
            # posts up: imported on first use)
            self._server.start(real)
            from scheduler.sendproc import CHILD_START_SECONDS
            if self._server.ready(CHILD_START_SECONDS):
                try:
                    for process in processes:
                        process.start()
                    # a platform the server was not started with (its guess from the
                    # credentials missed it): imported and primed by each child
                    if missed := sorted(set(real) - set(self._server.platforms)):
                        for process, future in [(p, p.prime(missed)) for p in processes]:
                            process.primed(future)
                except PublishError as e:   # the first post starts one again
                    log.warning("a sending process could not be started (%s)", e.message)
                return
            log.warning("the sending processes' fork server did not get ready; each "
                        "sending process imports the SDKs itself")
        # the sending processes import and prime them, side by side
        try:
            primes = [(p, p.prime(real)) for p in processes] if real else []
            for process, future in primes:
                process.primed(future)
        except PublishError as e:   # only a head start lost: the first build primes
            log.warning("a sending process could not prime the adapters (%s)", e.message)

    def _prime_here(self) -> None:
        """Import and prime the adapters of the platforms in use in this process (it
        sends itself), once."""
        if self._primed_here or not self._platforms:
            return
        self._primed_here = True
        for name in self._platforms:
            try:
                adapter = adapter_class(platform_entry(name))
            except Exception:  # an unknown platform is the account's trouble, at its post
                log.warning("could not load the %s adapter", name, exc_info=True)
                continue
            if isinstance(adapter, Primes):
                try:
                    adapter.prime()
                except Exception:   # only a head start lost: the first posts build it
                    log.warning("could not prime the %s adapter", name, exc_info=True)

    def build(self, account: AccountLike) -> Publisher:
        """The account's adapter; a missing credential is a `TminusError` naming it."""
        assert account.id is not None
        entry = platform_entry(account.platform)
        credentials = self.settings.credentials(account.credentials, entry.credentials)
        return adapter_class(entry).from_credentials(
            account.name, credentials, timeout=self.settings.request_timeout, now=self.now,
            session_store=AccountSessionStore(self.engine, account.id, known=account.session,
                                              writer=self._sessions))

    def close(self) -> None:
        """Close every adapter built so far (the daemon is stopping)."""
        self._stop.set()
        if self._resharing is not None:
            self._resharing.join()
        for process in self._processes:
            process.close()
        if self._server is not None:
            self._server.close()
        if self._saver is not None:
            self._saver.shutdown(wait=True)
        with self._lock:
            built, self._cache = list(self._cache.values()), {}
        for pub in [*built, self.dryrun]:
            try:
                pub.close()
            except Exception:  # one adapter failing to close must not keep others open
                log.warning("closing the %s adapter failed", pub.platform, exc_info=True)
