"""The status summary: are daemons alive, what is queued, what goes out next, and what
needs a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import col, func, select

from scheduler import defaults
from scheduler.db import database_time, session
from scheduler.models import Account, Campaign, Event, Post, PostState
from scheduler.models import Daemon as DaemonRow
from scheduler.service.activity import ActivityEntry, recent_activity
from scheduler.service.pauses import PauseInfo, pauses_in_force

S = PostState
NEEDS_A_PERSON = (S.FAILED, S.REVIEW, S.UNKNOWN)


@dataclass(frozen=True)
class DaemonInfo:
    id: str
    beat_at: datetime
    sent: int
    dry_run: bool
    alive: bool                     # its heartbeat is younger than DEAD_AFTER
    skew_seconds: float | None      # its host's clock against the database's


# A daemon is alive while its heartbeat is younger than this; one that stops cleanly
# marks itself stopped at once. Daemons dead for longer than an hour are not listed.
DEAD_AFTER = timedelta(seconds=defaults.HEARTBEAT_STALE_SECONDS)
_FORGET_DEAD_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class NextPost:
    id: int
    campaign: str
    deadline: datetime
    account: str
    at: datetime           # its next attempt
    text: str
    timezone: str = "UTC"  # its campaign's, for the times a person reads


@dataclass(frozen=True)
class AccountHold:
    name: str
    paused_reason: str | None       # paused until a person resumes it
    resume_at: datetime | None      # else: rate limited until then


@dataclass(frozen=True)
class Attention:
    id: int
    state: PostState
    reason: str


@dataclass
class Status:
    now: datetime
    daemons: list[DaemonInfo]                 # alive ones, then those dead within the hour
    counts: dict[PostState, int]
    next: list[NextPost] = field(default_factory=list)
    holds: list[AccountHold] = field(default_factory=list)
    attention: list[Attention] = field(default_factory=list)
    pauses: list[PauseInfo] = field(default_factory=list)        # in force
    activity: list[ActivityEntry] = field(default_factory=list)  # the latest, newest first


def status(engine: Engine, *, now: datetime | None = None, next_count: int = 5) -> Status:
    """`now` defaults to the database's own time, the one the daemons keep: a heartbeat's
    age is then right whatever this host's clock says."""
    now = database_time(engine) if now is None else now
    with session(engine) as s:
        beats = s.exec(select(DaemonRow).where(col(DaemonRow.stopped_at).is_(None),
                                              col(DaemonRow.beat_at) > now - _FORGET_DEAD_AFTER)
                      .order_by(col(DaemonRow.beat_at).desc())).all()
        daemons = sorted((DaemonInfo(d.id, d.beat_at, d.sent, d.dry_run,
                                     now - d.beat_at < DEAD_AFTER, d.skew_seconds) for d in beats),
                         key=lambda d: not d.alive)
        counts = {PostState(st): n for st, n in s.execute(
            sa.select(col(Post.state), func.count()).group_by(col(Post.state))).all()}
        rows = s.execute(
            sa.select(col(Post.id), col(Campaign.slug), col(Campaign.deadline), col(Account.name),
                      col(Post.next_attempt_at), col(Post.text), col(Campaign.timezone))
            .join(Campaign, col(Campaign.id) == Post.campaign_id)
            .join(Account, col(Account.id) == Post.account_id)
            .where(col(Post.state) == S.QUEUED)
            .order_by(col(Post.next_attempt_at), col(Post.id)).limit(next_count)).all()
        nxt = [NextPost(*r) for r in rows]
        holds = [AccountHold(a.name, a.paused_reason, a.resume_at)
                 for a in s.exec(select(Account).order_by(col(Account.name))).all()
                 if a.paused_reason or (a.resume_at is not None and a.resume_at > now)]
        # the reason of each one's last transition: what happened to it last, not an
        # error an earlier attempt left behind
        earlier = aliased(Event)
        last = (sa.select(func.max(col(earlier.id))).where(col(earlier.post_id) == col(Post.id))
                .correlate(Post).scalar_subquery())
        attention = [Attention(r.id, r.state, r.reason or "") for r in s.execute(
            sa.select(col(Post.id), col(Post.state), col(Event.reason))
            .join(Event, col(Event.id) == last, isouter=True)
            .where(col(Post.state).in_(NEEDS_A_PERSON)).order_by(col(Post.id))).all()]
    return Status(now, daemons, dict(sorted(counts.items())), nxt, holds, attention,
                  pauses_in_force(engine), recent_activity(engine, limit=5))
