"""Health for machines: is tminus ready (`/readyz`), and the figures Prometheus
scrapes (`/metrics`), read from the database at the moment they are asked for — the
database is the truth, so every web worker and every daemon agree on them.

Ready means: the database answers, a daemon is alive, and no account is held by
something nobody intended (a refused login). A person's pause is intended: it is said,
and does not make tminus unready.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from scheduler import defaults
from scheduler.db import session
from scheduler.dispatch import _rooms as rooms  # the claim's own arithmetic
from scheduler.models import Account, AlertMessage, Campaign, Event, Post, PostState
from scheduler.models import Daemon as DaemonRow
from scheduler.service.pauses import pauses_in_force

S = PostState
DEAD_AFTER = timedelta(seconds=defaults.HEARTBEAT_STALE_SECONDS)
# The lateness histogram's buckets, in seconds: on time, within the minute, ... an hour.
LATENESS_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: list[str]          # why not, one line each
    notes: list[str]            # intended holds: a person's pause


def readiness(engine: Engine, now: datetime) -> Readiness:
    try:
        with session(engine) as s:
            s.execute(sa.text("SELECT 1"))
    except Exception as e:
        return Readiness(False, [f"database unreachable ({type(e).__name__})"], [])
    reasons: list[str] = []
    with session(engine) as s:
        alive = s.execute(sa.select(func.count()).select_from(DaemonRow).where(
            col(DaemonRow.stopped_at).is_(None), col(DaemonRow.beat_at) > now - DEAD_AFTER)).scalar()
        if not alive:
            reasons.append(f"no daemon alive (none beat within {int(DEAD_AFTER.total_seconds())} s)")
        for a in s.exec(select(Account).where(col(Account.paused_reason).is_not(None))
                        .order_by(col(Account.name))).all():
            reasons.append(f"account {a.name} paused: {a.paused_reason}")
    notes = [f"{p.what} paused by {p.by}: {p.reason}" for p in pauses_in_force(engine)]
    return Readiness(not reasons, reasons, notes)


@dataclass(frozen=True)
class Lateness:
    """Published posts by how late they went out (cumulative, as Prometheus counts)."""

    buckets: list[tuple[float, int]]     # (upper bound in seconds, posts at most that late)
    count: int
    total_seconds: float


@dataclass
class Metrics:
    now: datetime
    posts: dict[tuple[str, str, str], int] = field(default_factory=dict)    # (campaign, platform, state)
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)      # (platform, outcome)
    lateness: dict[str, Lateness] = field(default_factory=dict)             # by platform
    deadline_seconds: dict[str, float] = field(default_factory=dict)        # by campaign
    heartbeats: dict[str, datetime] = field(default_factory=dict)           # live daemons
    budget_left: dict[tuple[str, str], int] = field(default_factory=dict)   # (account, platform)
    alerts_pending: int = 0     # alert messages not yet delivered, still being tried
    alerts_given_up: int = 0


def metrics(engine: Engine, now: datetime) -> Metrics:
    """Everything `/metrics` shows, in a few grouped queries."""
    m = Metrics(now)
    with session(engine) as s:
        for slug, platform, state, n in s.execute(
                sa.select(col(Campaign.slug), col(Account.platform), col(Post.state), func.count())
                .join(Campaign, col(Campaign.id) == Post.campaign_id)
                .join(Account, col(Account.id) == Post.account_id)
                .group_by(col(Campaign.slug), col(Account.platform), col(Post.state))):
            m.posts[(slug, platform, str(state))] = n
        # the outcome of each attempt: a move out of `sending`
        for platform, to, n in s.execute(
                sa.select(col(Account.platform), col(Event.to_state), func.count())
                .join(Post, col(Post.id) == Event.post_id)
                .join(Account, col(Account.id) == Post.account_id)
                .where(col(Event.from_state) == S.SENDING)
                .group_by(col(Account.platform), col(Event.to_state))):
            m.outcomes[(platform, _OUTCOME.get(str(to), str(to)))] = n
        late: dict[str, list[float]] = {}
        for platform, due, published in s.execute(
                sa.select(col(Account.platform), col(Post.due_at), col(Post.published_at))
                .join(Account, col(Account.id) == Post.account_id)
                .where(col(Post.state) == S.PUBLISHED, col(Post.published_at).is_not(None))):
            late.setdefault(platform, []).append(max(0.0, (published - due).total_seconds()))
        m.lateness = {p: _histogram(v) for p, v in late.items()}
        for c in s.exec(select(Campaign)).all():
            m.deadline_seconds[c.slug] = (c.deadline - now).total_seconds()
        for d in s.exec(select(DaemonRow).where(col(DaemonRow.stopped_at).is_(None),
                                                col(DaemonRow.beat_at) > now - DEAD_AFTER)).all():
            m.heartbeats[d.id] = d.beat_at
        accounts = list(s.exec(select(Account).order_by(col(Account.name))).all())
        room = rooms(s, accounts, now)
        for a in accounts:
            left, _ = room.get(a.id or 0, (None, now))
            if left is not None:
                m.budget_left[(a.name, a.platform)] = left
        unsent = (sa.select(func.count()).select_from(AlertMessage)
                  .where(col(AlertMessage.sent_at).is_(None)))
        m.alerts_pending = s.execute(unsent.where(col(AlertMessage.gave_up_at).is_(None))).scalar() or 0
        m.alerts_given_up = s.execute(unsent.where(col(AlertMessage.gave_up_at).is_not(None))).scalar() or 0
    return m


_OUTCOME = {"published": "published", "failed": "failed", "queued": "retry",
            "unknown": "unknown", "expired": "expired"}


def _histogram(values: list[float]) -> Lateness:
    return Lateness([(b, sum(1 for v in values if v <= b)) for b in LATENESS_BUCKETS],
                    len(values), sum(values))
