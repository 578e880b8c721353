"""Building the adapter for each account: settings and credentials meet `jobs` here.

The registry (`content.platforms`) says, for the account's platform, which
credentials dataclass to read from the environment and which adapter class to build
from it; `Settings.credentials` reads one, `jobs.adapters.base.adapter_class` imports
the other. Every adapter built is closed by `close()` when the daemon stops.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from content.platforms import platform as platform_entry
from jobs.adapters.base import Clock, Publisher, adapter_class
from jobs.adapters.dryrun import DryRunPublisher
from scheduler.db import session
from scheduler.models import Account
from scheduler.settings import Settings

log = logging.getLogger("tminus.publishers")

def _utcnow() -> datetime:
    return datetime.now(UTC)


class AccountSessionStore:
    """A login session (Bluesky) kept in the account's row, shared by every daemon."""

    def __init__(self, engine: Engine, account_id: int) -> None:
        self.engine = engine
        self.account_id = account_id

    def load(self) -> str | None:
        with session(self.engine) as s:
            acc = s.get(Account, self.account_id)
            return acc.session if acc else None

    def save(self, value: str) -> None:
        with session(self.engine) as s:
            acc = s.get(Account, self.account_id)
            if acc is not None:
                acc.session = value
                s.add(acc)


class Publishers:
    """One adapter per account, built on first use. With `dry_run`, or for accounts on
    the dryrun platform, every post goes to the one dry-run outbox. `now` is the clock
    every adapter is told the time by (the system clock unless a test or rehearsal
    says otherwise)."""

    def __init__(self, engine: Engine, settings: Settings, *, now: Clock | None = None,
                 dry_run: bool | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.dry_run = settings.dry_run if dry_run is None else dry_run
        self.now: Clock = now or _utcnow
        self.dryrun = DryRunPublisher(settings.dryrun_outbox, now=self.now)
        self._cache: dict[int, Publisher] = {}
        self._lock = threading.Lock()

    def for_account(self, account: Account) -> Publisher:
        if self.dry_run or account.platform == "dryrun":
            return self.dryrun
        assert account.id is not None
        with self._lock:
            pub = self._cache.get(account.id)
            if pub is None:
                pub = self.build(account)
                self._cache[account.id] = pub
            return pub

    def build(self, account: Account) -> Publisher:
        """The account's adapter; a missing credential is a `TminusError` naming it."""
        assert account.id is not None
        entry = platform_entry(account.platform)
        credentials = self.settings.credentials(account.credentials, entry.credentials)
        return adapter_class(entry).from_credentials(
            account.name, credentials, timeout=self.settings.request_timeout, now=self.now,
            session_store=AccountSessionStore(self.engine, account.id))

    def close(self) -> None:
        """Close every adapter built so far (the daemon is stopping)."""
        with self._lock:
            built, self._cache = list(self._cache.values()), {}
        for pub in [*built, self.dryrun]:
            try:
                pub.close()
            except Exception:  # one adapter failing to close must not keep others open
                log.warning("closing the %s adapter failed", pub.platform, exc_info=True)
