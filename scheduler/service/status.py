"""The status summary: are daemons alive, what is queued, what goes out next, and what
needs a person."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from scheduler import defaults, tables
from scheduler.db import database_time, session
from scheduler.models import Account, AlertMessage, Campaign, Event, Post, PostState
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


@dataclass(frozen=True)
class AlertSent:
    id: int
    title: str
    campaign: str | None            # None: about no one campaign (the daemon, a test)
    at: datetime                    # when it was delivered, or last tried


@dataclass(frozen=True)
class AlertDestination:
    """One message's delivery to one TMINUS_NOTIFY destination."""

    destination: str                # as `notify test` shows it, its secrets masked
    attempts: int
    sent_at: datetime | None        # when it took the message; None: not (yet)
    last_error: str | None          # why it did not, the last time it was tried


def destinations_of(s: Session, message_ids: Sequence[int]) -> dict[int, list[AlertDestination]]:
    """Each message's deliveries, in TMINUS_NOTIFY's order (none for a message never
    tried since migration 0007)."""
    d = tables.alert_delivery
    out: dict[int, list[AlertDestination]] = {i: [] for i in message_ids}
    for r in s.execute(sa.select(d).where(d.c.message_id.in_(list(message_ids)))
                       .order_by(d.c.message_id, d.c.position, d.c.destination)):
        out[r.message_id].append(AlertDestination(r.destination, r.attempts, r.sent_at,
                                                  r.last_error))
    return out


@dataclass(frozen=True)
class AlertFailing:
    id: int
    title: str
    campaign: str | None
    attempts: int
    given_up: bool                  # no more tries (`tminus notify status` lists it)
    last_error: str | None          # names the destinations that refused, secrets masked
    destinations: list[AlertDestination] = field(default_factory=list)


@dataclass(frozen=True)
class AlertDeliveries:
    """How the alerts are getting out: the last one delivered, and those tried and not
    delivered since (a destination failing), newest first, the first few."""

    last_sent: AlertSent | None
    failing: list[AlertFailing]
    failing_total: int


FAILING_SHOWN = 3


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
    alerts: AlertDeliveries = field(default_factory=lambda: AlertDeliveries(None, [], 0))


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
        alerts = _alert_deliveries(s)
    return Status(now, daemons, dict(sorted(counts.items())), nxt, holds, attention,
                  pauses_in_force(engine), recent_activity(engine, limit=5), alerts)


def _alert_deliveries(s: Session) -> AlertDeliveries:
    m = AlertMessage
    slug = (sa.select(col(Campaign.slug)).where(col(Campaign.id) == col(m.campaign_id))
            .correlate(m).scalar_subquery())
    last = s.execute(sa.select(col(m.id), col(m.title), slug, col(m.sent_at))
                     .where(col(m.sent_at).is_not(None))
                     .order_by(col(m.id).desc()).limit(1)).first()
    # tried and not delivered, since the last one that was: what fails now
    unsent = sa.and_(col(m.sent_at).is_(None), col(m.attempts) > 0,
                     col(m.id) > (last[0] if last else 0))
    rows = s.execute(sa.select(col(m.id), col(m.title), slug, col(m.attempts), col(m.gave_up_at),
                               col(m.last_error))
                     .where(unsent).order_by(col(m.id).desc()).limit(FAILING_SHOWN)).all()
    where = destinations_of(s, [r[0] for r in rows])
    failing = [AlertFailing(r[0], r[1], r[2], r[3], r[4] is not None, r[5], where[r[0]])
               for r in rows]
    total = s.execute(sa.select(func.count()).select_from(m).where(unsent)).scalar_one()
    return AlertDeliveries(AlertSent(*last) if last else None, failing, int(total))
