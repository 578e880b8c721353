"""The contract every platform adapter keeps.

An adapter performs one attempt and never sleeps or retries by itself: the scheduler
decides what happens next from the `PublishError` subclass it raises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from jobs.outgoing import Identity, Outgoing, Receipt


@runtime_checkable
class Publisher(Protocol):
    @property
    def platform(self) -> str:
        """"x", "mastodon", "bluesky" or "dryrun"."""
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


class SessionStore(Protocol):
    """Where an adapter keeps a login session between attempts and processes
    (Bluesky: createSession is rate limited, so one login is reused). The scheduler
    backs it with the database; tests with a dict."""

    def load(self) -> str | None: ...

    def save(self, session: str) -> None: ...


class MemorySessionStore:
    def __init__(self, session: str | None = None) -> None:
        self.session = session
        self.saves = 0

    def load(self) -> str | None:
        return self.session

    def save(self, session: str) -> None:
        self.session = session
        self.saves += 1
