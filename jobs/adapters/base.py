"""The contract every platform adapter keeps, whole.

- **Built** by `Cls.from_credentials(account, credentials, *, timeout, now,
  session_store)`: `credentials` is the platform's own frozen dataclass from the
  registry (`content.platforms.XCredentials`, ...), read from TMINUS_<PREFIX>_<FIELD>
  by `Settings.credentials`; `timeout` bounds every HTTP request; `session_store` keeps
  a login between processes where the platform needs one (Bluesky). An empty required
  credential is an `AuthError` naming the variable, never its value.
- **Told the time** by `now`, a callable returning an aware UTC datetime. An adapter
  never reads the system clock itself (nothing under `jobs/adapters` does), so tests
  and rehearsal decide what time it is.
- **One attempt per call**: `publish`, `find` and `check` never sleep or retry; the
  scheduler decides what happens next from the `jobs.errors.PublishError` subclass
  raised (the tree is drawn in `jobs/errors.py`).
- **Bounded in time**: `publish(post)` is over by `post.deadline` (when set): an
  `AttemptBound` cuts every request's timeout to the time left on the adapter's clock
  and refuses to start a request once none is left, which the adapter reports as a
  request never sent (nothing created: TransientError; the create already out and
  cut short: UnknownOutcome, as any timeout after sending).
- **Warmed**, where the adapter offers `warm()` (`Warms`): a login made before the post
  is due, not at its due second.
- **Closed** by `close()`, which `Publishers.close()` calls when the daemon stops: it
  releases connections and files; the adapter is not used afterwards.

`Publisher[C]` is a Protocol generic in the credentials type it is built from. A bare
`Publisher` means any adapter: it is contravariant in `C` and defaults to `Never`,
so every `Publisher[XCredentials]`, `Publisher[BlueskyCredentials]`, ... is one. Each
adapter module states `type[Publisher[ItsCredentials]] = ItsClass` for mypy, which
then holds the class to the whole contract.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Never, Protocol, Self, cast, runtime_checkable

from typing_extensions import TypeVar

from content.platforms import Credentials, Platform, RegistryError
from jobs.errors import UnknownOutcome
from jobs.outgoing import Identity, Outgoing, Receipt

if TYPE_CHECKING:
    import requests

# The adapter's clock: an aware UTC datetime, "now".
Clock = Callable[[], datetime]

C = TypeVar("C", bound=Credentials, contravariant=True, default=Never)


class SessionStore(Protocol):
    """Where an adapter keeps a login session between attempts and processes
    (Bluesky: createSession is rate limited, so one login is reused). The scheduler
    backs it with the database; tests with a dict."""

    def load(self) -> str | None: ...

    def save(self, session: str) -> None: ...


@runtime_checkable
class Publisher(Protocol[C]):
    @property
    def platform(self) -> str:
        """The registry name: "x", "mastodon", "bluesky" or "dryrun"."""
        ...

    @classmethod
    def from_credentials(cls, account: str, credentials: C, *, timeout: float, now: Clock,
                         session_store: SessionStore) -> Self:
        """The adapter of `account` (its name in the campaign, for messages)."""
        ...

    def publish(self, post: Outgoing) -> Receipt:
        """Send `post` once. Raises `jobs.errors.PublishError` on failure."""
        ...

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        """Is `post` already on the platform (sent at or after `since`)?

        Returns its receipt if found, None if it is provably absent, and raises
        `UnknownOutcome` when the platform cannot tell."""
        ...

    def check(self) -> Identity:
        """Verify the credentials; return who the account posts as."""
        ...

    def max_characters(self) -> int | None:
        """The account's own length limit where its server sets one (a Mastodon
        instance); None where the registry's default applies."""
        ...

    def close(self) -> None:
        """Release connections and files; the adapter is not used afterwards."""
        ...


@runtime_checkable
class FindsMany(Protocol):
    """An adapter that can look several posts of its account up at once (Mastodon: one
    listing of recent statuses for all of them, instead of one listing each). The
    scheduler's reconciliation uses it where an adapter offers it."""

    def find_many(self, wanted: Sequence[tuple[Outgoing, datetime]]
                  ) -> dict[int, Receipt | UnknownOutcome | None]:
        """`find(post, since)` for each (post, since), by post id: its receipt, None if
        provably absent, or the UnknownOutcome saying why it cannot tell."""
        ...


@runtime_checkable
class Warms(Protocol):
    """An adapter that can get ready to publish ahead of time (Bluesky: log in, or
    refresh a session near its expiry), so that the due second spends no round trip on
    it. The scheduler warms the accounts with posts due soon where an adapter offers it."""

    def warm(self) -> None:
        """Make or refresh what the next publish needs; raises `PublishError` as
        `publish` would (nothing is posted)."""
        ...


@runtime_checkable
class Primes(Protocol):
    """An adapter class whose SDK builds some of its machinery on first use (pydantic
    models, type-hint caches, a TLS context). Threads meeting that first use at once
    each build it: a burst's hundreds of lanes would pay it hundreds of times over, in
    the due second. `prime()` builds it once, with no request, before anything is due."""

    @classmethod
    def prime(cls) -> None:
        ...


class AttemptBound:
    """The deadline of the publish attempt under way on this thread, for an adapter's
    transport to cut each request's timeout to. Thread-local: the daemon's housekeeping
    thread may look posts up on the same adapter while a lane publishes, and those
    look-ups are not bounded by that attempt."""

    def __init__(self, now: Clock) -> None:
        self._now = now
        self._local = threading.local()

    @contextmanager
    def attempt(self, post: Outgoing) -> Iterator[None]:
        """While publishing `post`: its requests are bounded by `post.deadline`."""
        self._local.deadline = post.deadline
        try:
            yield
        finally:
            self._local.deadline = None

    def timeout(self, timeout: float) -> float | None:
        """The timeout of the next request: `timeout`, or the time left when that is
        less; None when no time is left (the request must not go)."""
        deadline: datetime | None = getattr(self._local, "deadline", None)
        if deadline is None:
            return timeout
        left = (deadline - self._now()).total_seconds()
        return None if left <= 0 else min(timeout, left)


class MemorySessionStore:
    def __init__(self, session: str | None = None) -> None:
        self.session = session
        self.saves = 0

    def load(self) -> str | None:
        return self.session

    def save(self, session: str) -> None:
        self.session = session
        self.saves += 1


def env_once(session: requests.Session) -> None:
    """requests looks up proxy and CA-bundle variables on every request, walking the whole
    environment each time: with a thousand accounts' credentials in it, a tenth of a
    burst's CPU. Read here once instead: with no proxy set, the session stops looking
    and keeps the CA bundle the variables name (what requests would pick each time);
    with a proxy set, requests goes on as usual (no_proxy is decided per URL)."""
    import os
    if _proxies_set():
        return
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and session.verify is True:
        session.verify = bundle
    session.trust_env = False


_proxies: list[bool] = []          # whether the environment names a proxy, once read
_proxies_lock = threading.Lock()


def _proxies_set() -> bool:
    """Whether the environment names a proxy, read once a process: the walk over every
    variable costs milliseconds with a thousand accounts' credentials in it, and a
    burst builds a thousand adapters side by side (it was half the CPU of one)."""
    with _proxies_lock:
        if not _proxies:
            import urllib.request
            _proxies.append(bool(urllib.request.getproxies()))
        return _proxies[0]


def adapter_class(entry: Platform) -> type[Publisher[Credentials]]:
    """Import the adapter class the registry names for `entry` (on first use: each
    pulls in its SDK). The class must say it is that platform's and built from that
    platform's credentials; that pairing, checked here, is what lets `Publishers`
    hand it the credentials the registry read."""
    module_name, _, class_name = entry.adapter.partition(":")
    found: object = getattr(importlib.import_module(module_name), class_name, None)
    if (not isinstance(found, type) or getattr(found, "platform", None) != entry.name
            or getattr(found, "CREDENTIALS", None) is not entry.credentials):
        raise RegistryError(f"platform registry: {entry.name!r} adapter {entry.adapter} is "
                            f"not a {entry.name} publisher built from "
                            f"{entry.credentials.__name__}")
    return cast("type[Publisher[Credentials]]", found)
