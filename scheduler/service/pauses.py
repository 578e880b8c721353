"""The crisis button: pause everything, one campaign or one account, and resume.

A pause is a row in force until resumed. `scheduler.queue.sendable` holds every post it
covers, so no daemon claims one (checked in the claim's own transaction), and a daemon
mid-batch checks again before each request. A post whose `not_after` passes during the
pause expires with a reason beginning "paused" — never goes out late. Resuming says what
goes out now and what expired. Pauses and resumes are recorded in the activity log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from content.countdown import about
from content.errors import FieldError, TminusError
from scheduler.db import session
from scheduler.models import Account, ActivityKind, Campaign, Event, Pause, PauseScope, Post, PostState
from scheduler.notify import wake
from scheduler.queue import PAUSED_REASON, expire, find_account, find_campaign, sendable
from scheduler.service.activity import record
from scheduler.service.people import actor

S = PostState
MAX_REASON = 500
LISTED = 200        # posts named in a resume's report; the rest are counted


@dataclass(frozen=True)
class Target:
    """What to pause or resume: one campaign (slug), one account (name), or everything."""

    campaign: str | None = None
    account: str | None = None
    everything: bool = False

    def __post_init__(self) -> None:
        if sum([self.campaign is not None, self.account is not None, self.everything]) != 1:
            raise TminusError("name a campaign, or give --account NAME or --all")


@dataclass(frozen=True)
class PauseInfo:
    id: int
    scope: PauseScope
    what: str                   # "everything", "campaign petition", "account org_x"
    campaign: str | None
    account: str | None
    reason: str
    by: str
    at: datetime


@dataclass(frozen=True)
class Paused:
    pause: PauseInfo
    already: bool               # it was paused before: nothing new was written
    waiting: int                # queued posts it now holds
    in_flight: int              # posts being sent this moment (a request already made)


@dataclass(frozen=True)
class PostBrief:
    id: int
    campaign: str
    account: str
    due_at: datetime
    text: str


@dataclass(frozen=True)
class Resumed:
    pause: PauseInfo
    at: datetime
    going_now: list[PostBrief]  # due already: they go out at once (the first LISTED)
    going_total: int
    later: int                  # still to come at their time
    expired: list[PostBrief]    # their not_after passed during the pause (the first LISTED)
    expired_total: int
    still_paused: list[PauseInfo] = field(default_factory=list)  # other pauses in force


def pause(engine: Engine, target: Target, *, reason: str, by: str, now: datetime) -> Paused:
    """Stop `target`'s posts going out until it is resumed."""
    by = actor(by)
    why = " ".join(reason.split())
    if not why:
        raise FieldError("reason", "is needed: say why (it is shown to everyone and recorded)")
    if len(why) > MAX_REASON:
        raise FieldError("reason", f"is {len(why)} characters; keep it under {MAX_REASON}")
    with session(engine) as s:
        row = _in_force(s, target)
        already = row is not None
        if row is None:
            row = _new(s, target, why, by, now)
            record(s, ActivityKind.PAUSED, actor=by, now=now, campaign_id=row.campaign_id,
                   message=f"paused {_what(s, row)}: {why}")
        covers = _covers(row)
        counts = dict(s.execute(sa.select(col(Post.state), func.count()).where(
            covers, col(Post.state).in_([S.QUEUED, S.SENDING]), col(Post.not_after) > now)
            .group_by(col(Post.state))).all())
        return Paused(_info(s, row), already, counts.get(S.QUEUED, 0), counts.get(S.SENDING, 0))


def resume(engine: Engine, target: Target, *, by: str, now: datetime) -> Resumed:
    """Lift the pause of `target`: what it held and is due goes out now; what passed its
    not_after meanwhile is expired ("paused"), in this same transaction."""
    with session(engine) as s:
        row = _in_force(s, target)
        if row is None:
            others = [_info(s, p) for p in _all_in_force(s)]
            listed = "; ".join(f"{p.what} (for {about(now - p.at)})" for p in others)
            raise TminusError(f"{_label(target)} is not paused"
                              + (f"; paused now: {listed}" if listed else "; nothing is paused"))
        covers = _covers(row)
        expire(s, now, by, only=covers)     # while the pause still holds them: "paused"
        row.resumed_at, row.resumed_by = now, by
        s.add(row)
        s.flush()
        info = _info(s, row)
        record(s, ActivityKind.RESUMED, actor=by, now=now, campaign_id=row.campaign_id,
               # how long, not since when: the entry is read in any timezone
               message=f"resumed {info.what} (paused {about(now - row.paused_at)} "
                       f"by {row.paused_by}: {row.reason})")
        ready = sa.and_(covers, *sendable(now))
        going = sa.and_(ready, col(Post.next_attempt_at) <= now)
        expired_ids = sa.select(col(Event.post_id)).where(
            col(Event.to_state) == S.EXPIRED, col(Event.at) >= row.paused_at,
            col(Event.reason).startswith(PAUSED_REASON))
        expired = sa.and_(covers, col(Post.state) == S.EXPIRED, col(Post.id).in_(expired_ids))
        later = sa.and_(ready, col(Post.next_attempt_at) > now)
        still = [_info(s, p) for p in _all_in_force(s)]
        wake(s)
        return Resumed(info, now, _briefs(s, going), _count(s, going), _count(s, later),
                       _briefs(s, expired), _count(s, expired), still)


def pauses_in_force(engine: Engine) -> list[PauseInfo]:
    with session(engine) as s:
        return [_info(s, p) for p in _all_in_force(s)]


# -- helpers -----------------------------------------------------------------------------


def _label(target: Target) -> str:
    if target.everything:
        return "everything"
    return f"campaign {target.campaign}" if target.campaign else f"account {target.account}"


def _ids(s: Session, target: Target) -> tuple[PauseScope, int | None, int | None]:
    if target.everything:
        return PauseScope.ALL, None, None
    if target.campaign is not None:
        return PauseScope.CAMPAIGN, find_campaign(s, target.campaign).id, None
    assert target.account is not None
    return PauseScope.ACCOUNT, None, find_account(s, target.account).id


def _in_force(s: Session, target: Target) -> Pause | None:
    scope, campaign_id, account_id = _ids(s, target)
    return s.exec(select(Pause).where(
        col(Pause.resumed_at).is_(None), Pause.scope == scope,
        Pause.campaign_id == campaign_id if campaign_id is not None else col(Pause.campaign_id).is_(None),
        Pause.account_id == account_id if account_id is not None else col(Pause.account_id).is_(None))
        .order_by(col(Pause.id))).first()


def _all_in_force(s: Session) -> list[Pause]:
    return list(s.exec(select(Pause).where(col(Pause.resumed_at).is_(None))
                       .order_by(col(Pause.paused_at), col(Pause.id))).all())


def _new(s: Session, target: Target, reason: str, by: str, now: datetime) -> Pause:
    scope, campaign_id, account_id = _ids(s, target)
    row = Pause(scope=scope, campaign_id=campaign_id, account_id=account_id, reason=reason,
                paused_by=by, paused_at=now)
    s.add(row)
    s.flush()
    return row


def _covers(p: Pause) -> sa.ColumnElement[bool]:
    """The posts this pause holds."""
    if p.scope == PauseScope.CAMPAIGN:
        return col(Post.campaign_id) == p.campaign_id
    if p.scope == PauseScope.ACCOUNT:
        return col(Post.account_id) == p.account_id
    return sa.true()


def _what(s: Session, p: Pause) -> str:
    if p.scope == PauseScope.CAMPAIGN:
        c = s.get(Campaign, p.campaign_id)
        return f"campaign {c.slug if c else p.campaign_id}"
    if p.scope == PauseScope.ACCOUNT:
        a = s.get(Account, p.account_id)
        return f"account {a.name if a else p.account_id}"
    return "everything"


def _info(s: Session, p: Pause) -> PauseInfo:
    assert p.id is not None
    c = s.get(Campaign, p.campaign_id) if p.campaign_id is not None else None
    a = s.get(Account, p.account_id) if p.account_id is not None else None
    return PauseInfo(p.id, PauseScope(p.scope), _what(s, p), c.slug if c else None,
                     a.name if a else None, p.reason, p.paused_by, p.paused_at)


def _count(s: Session, where: sa.ColumnElement[bool]) -> int:
    return int(s.execute(sa.select(func.count()).select_from(Post).where(where)).scalar_one())


def _briefs(s: Session, where: sa.ColumnElement[bool], limit: int = LISTED) -> list[PostBrief]:
    rows = s.execute(
        sa.select(col(Post.id), col(Campaign.slug), col(Account.name), col(Post.due_at),
                  col(Post.text))
        .join(Campaign, col(Campaign.id) == Post.campaign_id)
        .join(Account, col(Account.id) == Post.account_id)
        .where(where).order_by(col(Post.due_at), col(Post.id)).limit(limit)).all()
    return [PostBrief(*r) for r in rows]
