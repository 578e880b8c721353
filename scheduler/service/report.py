"""The campaign report (`tminus report CAMPAIGN`): what went out when, on time or late
by how much, what expired and why, what failed; and how each published post did —
likes, reposts, replies — as its platform counts them, read through each adapter's
`engagement(remote_ids)` by `fetch_engagement` (`tminus engagement fetch`, `report
--refresh`) and kept in `post_engagement`. X's counts are read only with
TMINUS_ENGAGEMENT_X=1: X bills every read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import col, func, select

from jobs.outgoing import Engagement
from scheduler import defaults
from scheduler.db import session
from scheduler.models import Account, Campaign, Event, Post, PostEngagement, PostState
from scheduler.publishers import Publishers
from scheduler.queue import find_campaign
from scheduler.settings import Settings

S = PostState
ON_TIME = timedelta(seconds=defaults.ON_TIME_SECONDS)


class EngagementReader(Protocol):
    def engagement(self, remote_ids: Sequence[str]) -> dict[str, Engagement]: ...


# -- reading the counts ----------------------------------------------------------------------


@dataclass
class EngagementFetch:
    read: int = 0                                     # posts whose counts were read
    accounts: int = 0
    skipped: list[str] = field(default_factory=list)  # accounts not read, and why
    errors: list[str] = field(default_factory=list)   # accounts whose read failed


def fetch_engagement(engine: Engine, settings: Settings, now: datetime, *,
                     campaign: str | None = None, publishers: Publishers | None = None
                     ) -> EngagementFetch:
    """Read the counts of published posts (of one campaign, or all), at most
    ENGAGEMENT_PER_ACCOUNT per account, least recently read first, none read within
    ENGAGEMENT_FRESH_SECONDS; a failure on one account is said and the others go on."""
    pubs = publishers or Publishers(engine, settings)
    out = EngagementFetch()
    fresh = now - timedelta(seconds=defaults.ENGAGEMENT_FRESH_SECONDS)
    with session(engine) as s:
        q = (sa.select(col(Post.id), col(Post.remote_id), col(Post.account_id))
             .outerjoin(PostEngagement, col(PostEngagement.post_id) == Post.id)
             .where(col(Post.state) == S.PUBLISHED, col(Post.remote_id).is_not(None),
                    sa.or_(col(PostEngagement.fetched_at).is_(None),
                           col(PostEngagement.fetched_at) < fresh))
             .order_by(col(PostEngagement.fetched_at).is_not(None), col(PostEngagement.fetched_at),
                       col(Post.published_at).desc()))
        if campaign is not None:
            q = q.where(col(Post.campaign_id) == find_campaign(s, campaign).id)
        by_account: dict[int, list[tuple[int, str]]] = {}
        for post_id, remote_id, account_id in s.execute(q):
            by_account.setdefault(account_id, []).append((post_id, remote_id))
        accounts = {a.id: a for a in s.exec(select(Account).where(
            col(Account.id).in_(list(by_account)))).all()}
    try:
        for account_id, posts in by_account.items():
            account = accounts[account_id]
            if account.platform == "dryrun":
                continue                  # the outbox has no likes
            if account.platform == "x" and not settings.engagement_x:
                out.skipped.append(f"{account.name}: X counts are not read unless "
                                   "TMINUS_ENGAGEMENT_X=1 (X bills reads)")
                continue
            if account.paused_reason:
                out.skipped.append(f"{account.name}: paused ({account.paused_reason})")
                continue
            posts = posts[:defaults.ENGAGEMENT_PER_ACCOUNT]
            try:
                reader = pubs.for_account(account)
                if not hasattr(reader, "engagement"):
                    continue
                counts = _read(reader, [r for _, r in posts])
            except Exception as e:  # a PublishError, a bad credential: said, not raised
                out.errors.append(f"{account.name}: {getattr(e, 'message', None) or e}")
                continue
            _store(engine, posts, counts, now)
            out.read += sum(1 for _, r in posts if r in counts)
            out.accounts += 1
    finally:
        if publishers is None:
            pubs.close()
    return out


def _read(reader: object, remote_ids: list[str]) -> dict[str, Engagement]:
    counts: dict[str, Engagement] = reader.engagement(remote_ids)  # type: ignore[attr-defined]
    return counts


def _store(engine: Engine, posts: list[tuple[int, str]], counts: dict[str, Engagement],
           now: datetime) -> None:
    with session(engine) as s:
        for post_id, remote_id in posts:
            c = counts.get(remote_id)
            if c is None:
                continue             # deleted on the platform since: the last counts stay
            row = s.get(PostEngagement, post_id) or PostEngagement(post_id=post_id, fetched_at=now)
            row.likes, row.reposts, row.replies, row.fetched_at = c.likes, c.reposts, c.replies, now
            s.add(row)


# -- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    id: int
    account: str
    platform: str
    language: str | None
    state: PostState
    due_at: datetime
    published_at: datetime | None
    late_seconds: float | None        # published: how long after its time (0: early or on it)
    url: str | None
    reason: str | None                # expired, failed, canceled, review: the last event's why
    text: str
    likes: int | None                 # None: not read (dry run, X not enabled, not yet)
    reposts: int | None
    replies: int | None

    @property
    def score(self) -> int:
        return (self.likes or 0) + (self.reposts or 0) + (self.replies or 0)


@dataclass(frozen=True)
class Best:
    platform: str
    language: str | None
    row: ReportRow


@dataclass
class CampaignReport:
    slug: str
    title: str
    deadline: datetime
    now: datetime
    rows: list[ReportRow]
    counts: dict[str, int]
    on_time: int                      # published within ON_TIME of its time
    late: int
    latest_seconds: float | None      # the latest post, how late
    best: list[Best]                  # the best post per platform and language (read counts)
    engagement_read_at: datetime | None
    timezone: str = "UTC"             # the campaign's: the times a person reads are in it


def campaign_report(engine: Engine, slug: str, now: datetime) -> CampaignReport:
    with session(engine) as s:
        c: Campaign = find_campaign(s, slug)
        earlier = aliased(Event)
        last = (sa.select(func.max(col(earlier.id))).where(col(earlier.post_id) == col(Post.id))
                .correlate(Post).scalar_subquery())
        found = s.execute(
            sa.select(Post, col(Account.name), col(Account.platform), col(Event.reason),
                      PostEngagement)
            .join(Account, col(Account.id) == Post.account_id)
            .outerjoin(Event, col(Event.id) == last)
            .outerjoin(PostEngagement, col(PostEngagement.post_id) == Post.id)
            .where(col(Post.campaign_id) == c.id)
            .order_by(col(Post.due_at), col(Post.id))).all()
    rows = [_row(p, name, platform, reason, e) for p, name, platform, reason, e in found]
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r.state)] = counts.get(str(r.state), 0) + 1
    lates = [r.late_seconds for r in rows if r.late_seconds is not None]
    best: dict[tuple[str, str | None], ReportRow] = {}
    for r in rows:
        if r.likes is None:
            continue
        key = (r.platform, r.language)
        if key not in best or r.score > best[key].score:
            best[key] = r
    read = [e.fetched_at for *_, e in found if e is not None]
    return CampaignReport(
        c.slug, c.title, c.deadline, now, rows, dict(sorted(counts.items())),
        sum(1 for x in lates if x <= ON_TIME.total_seconds()),
        sum(1 for x in lates if x > ON_TIME.total_seconds()), max(lates, default=None),
        [Best(p, lang, r) for (p, lang), r in sorted(best.items(),
                                                     key=lambda kv: (kv[0][0], kv[0][1] or ""))],
        max(read, default=None), c.timezone)


def _row(p: Post, account: str, platform: str, reason: str | None,
         e: PostEngagement | None) -> ReportRow:
    late = (max(0.0, (p.published_at - p.due_at).total_seconds())
            if p.state == S.PUBLISHED and p.published_at else None)
    why = reason if p.state in (S.EXPIRED, S.FAILED, S.CANCELED, S.REVIEW, S.UNKNOWN) else None
    return ReportRow(p.id or 0, account, platform, (p.options or {}).get("language"),
                     PostState(p.state), p.due_at, p.published_at, late, p.remote_url, why,
                     p.text, e.likes if e else None, e.reposts if e else None,
                     e.replies if e else None)
