"""The campaign at a glance: time left in the campaign's own words, posts by state,
whether a daemon is alive, the next posts, and everything that needs a person — posts
in review, failures with the platform's reason, pauses and paused accounts, drafts due
soon that nobody approved, edits the campaign file changed. And the audit: every
event of a campaign's posts with the activity around them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from content.countdown import about, t_minus
from scheduler import defaults
from scheduler.db import session
from scheduler.localtime import when
from scheduler.models import Account, Activity, Campaign, Event, PauseScope, Post, PostState
from scheduler.queue import find_campaign
from scheduler.service.activity import ActivityEntry, recent_activity
from scheduler.service.pauses import PauseInfo, pauses_in_force
from scheduler.service.status import AccountHold, AlertDeliveries, DaemonInfo, status
from scheduler.service.timeline import CampaignHead, head_of

S = PostState


@dataclass(frozen=True)
class NextUp:
    id: int
    account: str
    platform: str
    at: datetime                 # its next attempt
    at_local: str
    t_minus: str                 # before the deadline, at that time
    text: str


@dataclass(frozen=True)
class Need:
    """One thing a person has to look at."""

    kind: str                    # review | failed | due soon | conflict
    post_id: int
    account: str
    at_local: str
    text: str
    detail: str                  # the platform's reason, how soon, ...


@dataclass(frozen=True)
class CampaignOverview:
    head: CampaignHead
    counts: dict[PostState, int]
    total: int
    daemons: list[DaemonInfo]
    next: list[NextUp]
    needs: list[Need]
    pauses: list[PauseInfo]      # in force over this campaign or any of its accounts
    holds: list[AccountHold]     # its accounts paused by a refused login or rate limited
    activity: list[ActivityEntry]

    @property
    def paused(self) -> bool:
        return bool(self.pauses)


def campaign_overview(engine: Engine, slug: str, *, now: datetime, next_count: int = 5
                      ) -> CampaignOverview:
    st = status(engine, now=now, next_count=0)
    pauses = pauses_in_force(engine)   # read before: one session at a time (SQLite locks)
    with session(engine) as s:
        c = find_campaign(s, slug)
        tz = ZoneInfo(c.timezone)
        counts = {PostState(k): n for k, n in s.execute(
            sa.select(col(Post.state), func.count()).where(col(Post.campaign_id) == c.id)
            .group_by(col(Post.state))).all()}
        names = set(c.account_names)
        nxt = [NextUp(p.id or 0, a.name, a.platform, p.next_attempt_at, when(p.next_attempt_at, tz),
                      t_minus(c.deadline - p.next_attempt_at), p.text)
               for p, a in s.exec(select(Post, Account).join(Account, col(Account.id) == Post.account_id)
                                  .where(Post.campaign_id == c.id, Post.state == S.QUEUED)
                                  .order_by(col(Post.next_attempt_at), col(Post.id))
                                  .limit(next_count)).all()]
        needs = _needs(s, c, now, tz)
    in_force = [p for p in pauses if _over(p, c, names)]
    holds = [h for h in st.holds if h.name in names]
    return CampaignOverview(head_of(c, now), dict(sorted(counts.items())), sum(counts.values()),
                            st.daemons, nxt, needs, in_force, holds,
                            recent_activity(engine, campaign=slug, limit=8))


def _over(p: PauseInfo, c: Campaign, accounts: set[str]) -> bool:
    return (p.scope == PauseScope.ALL or p.campaign == c.slug
            or (p.scope == PauseScope.ACCOUNT and p.account in accounts))


def _needs(s: Session, c: Campaign, now: datetime, tz: ZoneInfo) -> list[Need]:
    soon = now + timedelta(seconds=defaults.DUE_SOON_SECONDS)
    q = (select(Post, Account).join(Account, col(Account.id) == Post.account_id)
         .where(Post.campaign_id == c.id,
                col(Post.state).in_([S.REVIEW, S.UNKNOWN, S.FAILED])
                | ((col(Post.state) == S.DRAFT) & (col(Post.due_at) <= soon)
                   & (col(Post.not_after) > now))
                | (col(Post.plan_conflict) & col(Post.state).in_([S.DRAFT, S.QUEUED])))
         .order_by(col(Post.due_at), col(Post.id)).limit(200))
    out = []
    for p, a in s.exec(q).all():
        assert p.id is not None
        at = when(p.due_at, tz)
        if p.state in (S.REVIEW, S.UNKNOWN):
            out.append(Need("review", p.id, a.name, at, p.text,
                            p.last_error or "tminus could not tell whether it went out"))
        elif p.state == S.FAILED:
            out.append(Need("failed", p.id, a.name, at, p.text, p.last_error or "refused"))
        elif p.plan_conflict:
            out.append(Need("conflict", p.id, a.name, at, p.text,
                            f"the campaign file changed it after {p.edited_by}'s edit"))
        else:
            wait = p.due_at - now
            out.append(Need("due soon", p.id, a.name, at, p.text,
                            "not approved; due " + (f"in {about(wait)}" if wait > timedelta(0)
                                                   else "now")))
    order = {"review": 0, "failed": 1, "conflict": 2, "due soon": 3}
    return sorted(out, key=lambda n: order[n.kind])


# -- every campaign ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignLine:
    head: CampaignHead
    counts: dict[PostState, int]
    needs: int
    next_at_local: str | None
    paused: bool
    next_at: datetime | None = None          # its next queued post's attempt
    need_list: tuple[Need, ...] = ()         # what `needs` counts, most urgent first


@dataclass(frozen=True)
class Overview:
    campaigns: list[CampaignLine]   # those not over first, by deadline
    daemons: list[DaemonInfo]
    pauses: list[PauseInfo]
    activity: list[ActivityEntry]
    alerts: AlertDeliveries | None = None   # the last delivered, those failing since


def overview(engine: Engine, *, now: datetime) -> Overview:
    st = status(engine, now=now, next_count=0)
    pauses = pauses_in_force(engine)
    lines = []
    with session(engine) as s:
        camps = list(s.exec(select(Campaign).order_by(col(Campaign.deadline))).all())
        counts: dict[int, dict[PostState, int]] = {}
        for cid, state, n in s.execute(sa.select(col(Post.campaign_id), col(Post.state), func.count())
                                       .group_by(col(Post.campaign_id), col(Post.state))).all():
            counts.setdefault(cid, {})[PostState(state)] = n
        for c in camps:
            assert c.id is not None
            tz = ZoneInfo(c.timezone)
            first = s.execute(sa.select(func.min(Post.next_attempt_at)).where(
                col(Post.campaign_id) == c.id, col(Post.state) == S.QUEUED)).scalar()
            needs = _needs(s, c, now, tz)
            lines.append(CampaignLine(head_of(c, now), dict(sorted(counts.get(c.id, {}).items())),
                                      len(needs), when(first, tz) if first else None,
                                      any(_over(p, c, set(c.account_names)) for p in pauses),
                                      first, tuple(needs)))
    lines.sort(key=lambda line: (line.head.over, line.head.deadline))
    return Overview(lines, st.daemons, pauses, recent_activity(engine, limit=8), st.alerts)


# -- audit -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    at_local: str
    post_id: int | None          # None: activity (a pause, a person added, ...)
    account: str | None
    from_state: PostState | None
    to_state: PostState | None
    actor: str
    reason: str


@dataclass(frozen=True)
class Audit:
    head: CampaignHead
    entries: list[AuditEntry]    # newest first
    more: bool                   # older entries exist beyond `limit`


def campaign_audit(engine: Engine, slug: str, *, now: datetime, limit: int = 300) -> Audit:
    """The event log of a campaign: its posts' events and the activity that concerns
    it (pauses of it, of its accounts or of everything; people), newest first."""
    with session(engine) as s:
        c = find_campaign(s, slug)
        tz = ZoneInfo(c.timezone)
        events = s.execute(
            sa.select(col(Event.at), col(Event.post_id), col(Account.name), col(Event.from_state),
                      col(Event.to_state), col(Event.actor), col(Event.reason))
            .join(Post, col(Post.id) == Event.post_id).join(Account, col(Account.id) == Post.account_id)
            .where(col(Post.campaign_id) == c.id)
            .order_by(col(Event.at).desc(), col(Event.id).desc()).limit(limit + 1)).all()
        acts = s.execute(
            sa.select(col(Activity.at), col(Activity.actor), col(Activity.message))
            .where(col(Activity.campaign_id).is_(None) | (col(Activity.campaign_id) == c.id))
            .order_by(col(Activity.at).desc(), col(Activity.id).desc()).limit(limit + 1)).all()
        head = head_of(c, now)
    entries = [AuditEntry(e.at, when(e.at, tz), e.post_id, e.name,
                          PostState(e.from_state) if e.from_state else None, PostState(e.to_state),
                          e.actor, e.reason) for e in events]
    entries += [AuditEntry(a.at, when(a.at, tz), None, None, None, None, a.actor, a.message)
                for a in acts]
    entries.sort(key=lambda e: e.at, reverse=True)
    return Audit(head, entries[:limit], len(entries) > limit)
