"""Building the adapter for each account: settings and credentials meet `jobs` here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from content.errors import TminusError
from jobs.adapters.base import Publisher
from jobs.adapters.dryrun import DryRunPublisher
from scheduler.db import session
from scheduler.models import Account
from scheduler.settings import Settings


def adapter_class(platform: str) -> Any:
    """The adapter class of a platform (imported lazily: each pulls in its SDK)."""
    if platform == "x":
        from jobs.adapters.x import XPublisher
        return XPublisher
    if platform == "mastodon":
        from jobs.adapters.mastodon import MastodonPublisher
        return MastodonPublisher
    if platform == "bluesky":
        from jobs.adapters.bluesky import BlueskyPublisher
        return BlueskyPublisher
    raise TminusError(f"unknown platform {platform!r}")


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
    the dryrun platform, every post goes to the one dry-run outbox."""

    def __init__(self, engine: Engine, settings: Settings, *,
                 now: Callable[[], datetime] | None = None,
                 dry_run: bool | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.dry_run = settings.dry_run if dry_run is None else dry_run
        kwargs: dict[str, Any] = {} if now is None else {"now": now}
        self.dryrun = DryRunPublisher(settings.dryrun_outbox, **kwargs)
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
        cls = adapter_class(account.platform)
        assert account.id is not None
        creds = self.settings.credentials(account.credentials, cls.CREDENTIALS,
                                          getattr(cls, "OPTIONAL", {}))
        pub: Publisher = cls.from_credentials(
            account.name, creds, timeout=self.settings.request_timeout,
            session_store=AccountSessionStore(self.engine, account.id))
        return pub
