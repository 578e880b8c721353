"""The timeline: every post of a campaign as a card that reads like a post on its
platform, grouped by day in the campaign's timezone.

A card carries what the platform will show — account name and handle, the text cut
into plain runs, links, hashtags and mentions, media with their alt text, the content
warning, the thread it belongs to — and what a person needs beside it: length against
the limit as the platform counts, state, local time, T-minus, the published link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from content.countdown import t_minus, time_left
from content.entities import Segment, segments
from content.errors import NotFound, TminusError
from content.rules import check_length
from scheduler import defaults
from scheduler.db import session
from scheduler.localtime import when
from scheduler.models import Account, Campaign, Post, PostState
from scheduler.queue import find_campaign, parse_states

S = PostState
_UNITS = {"weighted chars": "characters as X counts them", "chars": "characters",
          "graphemes": "characters (graphemes)"}


@dataclass(frozen=True)
class CampaignHead:
    """A campaign as a page's header shows it."""

    slug: str
    title: str
    deadline: datetime
    timezone: str
    deadline_local: str          # "Fri 20 Jan 2017 12:00 EST"
    hashtags: list[str]
    time_left: str               # in the campaign's words: "3 days 4 hours"
    seconds_left: int
    over: bool


def head_of(c: Campaign, now: datetime) -> CampaignHead:
    tz = ZoneInfo(c.timezone)
    left = int((c.deadline - now).total_seconds())
    return CampaignHead(c.slug, c.title, c.deadline, c.timezone, when(c.deadline, tz),
                        list(c.hashtags), time_left(now, c.deadline), max(0, left), left <= 0)


@dataclass(frozen=True)
class MediaRef:
    index: int
    alt: str
    name: str


@dataclass
class Card:
    id: int
    campaign: str
    account: str
    handle: str | None           # who it posts as, once `tminus accounts check` verified it
    platform: str
    segments: list[Segment]
    text: str
    content_warning: str | None
    media: list[MediaRef]
    language: str | None
    visibility: str | None
    length: int
    limit: int
    unit: str                    # how the platform counts, in words
    fits: bool
    state: PostState
    due_at: datetime
    due_local: str
    time_local: str              # "09:00"
    t_minus: str                 # the post's place before the deadline: "T-3d3h"
    next_attempt_at: datetime
    remote_url: str | None       # the published post (http and https links only)
    approved_by: str | None
    edited_by: str | None
    conflict: bool               # the campaign file changed it after a person's edit
    warnings: list[str]
    last_error: str | None
    reply_to: int | None
    thread_root: int | None
    replies: list[Card] = field(default_factory=list)


def _card(p: Post, acc: Account, c: Campaign, tz: ZoneInfo) -> Card:
    assert p.id is not None
    opts: dict[str, Any] = p.options or {}
    cw = opts.get("content_warning") or None
    fit = check_length(acc.platform, p.text, limit=acc.max_characters, spoiler_text=cw or "")
    media = [MediaRef(i, m.get("alt", ""), Path(m.get("path", "")).name)
             for i, m in enumerate(opts.get("media") or [])]
    url = p.remote_url if p.remote_url and p.remote_url.startswith(("https://", "http://")) else None
    return Card(p.id, c.slug, acc.name, acc.handle, acc.platform, segments(p.text, acc.platform),
                p.text, cw, media, opts.get("language"), opts.get("visibility"), fit.length,
                fit.limit, _UNITS.get(fit.unit, fit.unit), fit.ok, p.state, p.due_at,
                when(p.due_at, tz), p.due_at.astimezone(tz).strftime("%H:%M"),
                t_minus(c.deadline - p.due_at), p.next_attempt_at, url, p.approved_by,
                p.edited_by, p.plan_conflict, list(p.warnings), p.last_error, p.parent_id,
                p.thread_root_id)


def cards(s: Session, posts: Sequence[Post]) -> list[Card]:
    """Cards for `posts` (in their order), loading their accounts and campaigns once."""
    accounts = {a.id: a for a in s.exec(select(Account).where(
        col(Account.id).in_({p.account_id for p in posts}))).all()}
    camps = {c.id: c for c in s.exec(select(Campaign).where(
        col(Campaign.id).in_({p.campaign_id for p in posts}))).all()}
    zones = {cid: ZoneInfo(c.timezone) for cid, c in camps.items()}
    return [_card(p, accounts[p.account_id], camps[p.campaign_id], zones[p.campaign_id])
            for p in posts]


def threaded(flat: list[Card]) -> list[Card]:
    """Each thread's later posts under its first one, when that is among `flat`."""
    by_id = {c.id: c for c in flat}
    top = []
    for c in flat:
        root = by_id.get(c.thread_root) if c.thread_root is not None else None
        if root is not None and root is not c:
            root.replies.append(c)
        else:
            top.append(c)
    return top


@dataclass
class Day:
    day: date
    label: str                   # "Monday 16 January"
    cards: list[Card]


@dataclass(frozen=True)
class Filters:
    account: str | None = None
    platform: str | None = None
    state: str | None = None
    language: str | None = None


@dataclass
class TimelineView:
    head: CampaignHead
    days: list[Day]
    chosen: Filters
    accounts: list[str]          # what the filters offer
    platforms: list[str]
    states: list[str]
    languages: list[str]
    total: int                   # posts matching the filters
    shown: int                   # at most defaults.TIMELINE_CARDS


def timeline(engine: Engine, slug: str, *, now: datetime, filters: Filters = Filters(),
             limit: int = defaults.TIMELINE_CARDS) -> TimelineView:
    with session(engine) as s:
        c = find_campaign(s, slug)
        tz = ZoneInfo(c.timezone)
        q = select(Post).where(Post.campaign_id == c.id)
        if filters.account:
            q = q.where(col(Post.account_id).in_(sa.select(col(Account.id)).where(
                col(Account.name) == filters.account)))
        if filters.platform:
            q = q.where(col(Post.account_id).in_(sa.select(col(Account.id)).where(
                col(Account.platform) == filters.platform)))
        if filters.state:
            q = q.where(col(Post.state).in_(parse_states([filters.state])))
        language = col(Post.options)["language"].as_string()
        if filters.language:
            q = q.where(language == filters.language)
        total = int(s.execute(sa.select(func.count()).select_from(
            q.with_only_columns(col(Post.id)).subquery())).scalar_one())
        posts = list(s.exec(q.order_by(col(Post.due_at), col(Post.id)).limit(limit)).all())
        flat = cards(s, posts)
        names = list(c.account_names)
        platforms = sorted(set(s.exec(select(Account.platform).where(
            col(Account.name).in_(names))).all()))
        languages = sorted(lang for (lang,) in s.execute(
            sa.select(language).where(col(Post.campaign_id) == c.id).distinct()).all() if lang)
        head = head_of(c, now)
    days: list[Day] = []
    for card in threaded(flat):
        d = card.due_at.astimezone(tz).date()
        if not days or days[-1].day != d:
            days.append(Day(d, card.due_at.astimezone(tz).strftime("%A %d %B"), []))
        days[-1].cards.append(card)
    return TimelineView(head, days, filters, names, platforms, [st.value for st in S], languages,
                        total, len(flat))


def post_card(engine: Engine, post_id: int) -> Card:
    """One post's card (with the rest of its thread, when it is a thread's first)."""
    with session(engine) as s:
        p = s.get(Post, post_id)
        if p is None:
            raise NotFound(f"no post {post_id}", "see `tminus list`")
        thread = [p, *s.exec(select(Post).where(Post.thread_root_id == post_id)
                             .order_by(col(Post.due_at), col(Post.id))).all()]
        return threaded(cards(s, thread))[0]


def count_posts(engine: Engine, slug: str) -> int:
    with session(engine) as s:
        c = find_campaign(s, slug)
        return int(s.execute(sa.select(func.count()).select_from(Post)
                             .where(col(Post.campaign_id) == c.id)).scalar_one())


def media_file(engine: Engine, post_id: int, index: int) -> Path:
    """The image a post attaches, as its campaign file named it (only a path stored
    with the post is ever served)."""
    with session(engine) as s:
        p = s.get(Post, post_id)
        media = ((p.options or {}).get("media") or []) if p is not None else []
    if not 0 <= index < len(media):
        raise NotFound(f"post {post_id} has no image {index}")
    path = Path(media[index]["path"])
    if not path.is_file():
        raise TminusError(f"the image {path.name} of post {post_id} is no longer in its folder")
    return path
