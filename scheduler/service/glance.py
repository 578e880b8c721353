"""`tminus status` at a glance: one line per active campaign (the dashboard's overview,
`overview.overview`), then what needs a person before it is too late — drafts due
soon that nobody approved, accounts whose credentials are missing from the
environment or were never verified, posts falling due while no daemon runs — and the
details (`status.status`).

Credentials are looked up by variable name in the environment the caller passes
(`Settings.env`); their values are never read into the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, func

from scheduler import defaults
from scheduler.db import database_time, session
from scheduler.models import Post, PostState
from scheduler.service.accounts import Readiness, not_ready
from scheduler.service.overview import CampaignLine, Need, overview
from scheduler.service.status import Status, status

S = PostState
DUE_SOON = timedelta(seconds=defaults.DUE_SOON_SECONDS)


@dataclass(frozen=True)
class DueSoon:
    """A draft due within `DUE_SOON` that nobody approved: it will not go out."""

    campaign: str
    timezone: str
    need: Need


@dataclass(frozen=True)
class Glance:
    campaigns: list[CampaignLine]   # active ones (deadline not passed), soonest first
    due_soon: list[DueSoon]
    not_ready: list[Readiness]      # accounts with posts to go out that cannot post yet
    unattended: int                 # queued posts due within DUE_SOON while no daemon is alive
    details: Status

    @property
    def daemon_alive(self) -> bool:
        return any(d.alive for d in self.details.daemons)


def glance(engine: Engine, env: Mapping[str, str], *, now: datetime | None = None,
           next_count: int = 5) -> Glance:
    """The status summary. `env`: the TMINUS_* variables (`Settings.env`), to tell which
    accounts lack credentials; `now` defaults to the database's time (the daemons')."""
    now = database_time(engine) if now is None else now
    details = status(engine, now=now, next_count=next_count)
    lines = [c for c in overview(engine, now=now).campaigns if not c.head.over]
    due_soon = [DueSoon(c.head.slug, c.head.timezone, n)
                for c in lines for n in c.need_list if n.kind == "due soon"]
    unattended = 0
    if not any(d.alive for d in details.daemons):
        with session(engine) as s:
            unattended = int(s.execute(sa.select(func.count()).select_from(Post).where(
                col(Post.state) == S.QUEUED, col(Post.next_attempt_at) <= now + DUE_SOON)
            ).scalar() or 0)
    return Glance(lines, due_soon, not_ready(engine, env), unattended, details)
