"""Plain rows the daemon reads through Core, in place of the ORM's objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class AccountLike(Protocol):
    """An account as the sending path reads it: an `AccountRow` (the daemon) or a
    `scheduler.models.Account` (a command)."""

    @property
    def id(self) -> int | None: ...
    @property
    def name(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def credentials(self) -> str: ...
    @property
    def tier(self) -> str: ...
    @property
    def handle(self) -> str | None: ...
    @property
    def session(self) -> str | None: ...
    @property
    def budget_posts(self) -> int | None: ...
    @property
    def budget_seconds(self) -> int | None: ...


@dataclass(frozen=True)
class AccountRow:
    """An `account` row as it was read (never written back: writes are statements)."""

    id: int
    name: str
    platform: str
    credentials: str
    tier: str
    budget_posts: int | None = None
    budget_seconds: int | None = None
    max_characters: int | None = None
    handle: str | None = None
    paused_reason: str | None = None
    paused_at: datetime | None = None
    resume_at: datetime | None = None
    session: str | None = field(default=None, repr=False)   # a login: never printed
    campaign_id: int | None = None

    @classmethod
    def of(cls, row: Any) -> AccountRow:
        """From a row of `SELECT account.*`."""
        return cls(**row._mapping)
