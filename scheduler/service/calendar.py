"""A campaign as a calendar (RFC 5545, via `icalendar`): `tminus calendar CAMPAIGN -o
FILE.ics`, and a feed a calendar app subscribes to behind a secret address.

One VEVENT per post: its UID is the post's idempotency key (random, fixed for its
life), its STATUS follows the post's state, its DESCRIPTION is the text. Calendar apps
replace an event only when its SEQUENCE grows, so each post's last shown time, text and
state are kept (`calendar_entry`) and its SEQUENCE goes up whenever one of them changed
since. The deadline is an event of its own with an alarm an hour before.

The feed's address holds a random token per campaign (in `web_config`), shown to
approvers and admins on the dashboard, regenerated to shut out whoever had the old one.
Anyone with the address reads the campaign's posts: it is as secret as a password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from icalendar import Alarm, Calendar, Event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from content.errors import TminusError
from scheduler.db import session
from scheduler.models import Account, CalendarEntry, Campaign, Post, PostState, WebConfig
from scheduler.queue import find_campaign

S = PostState
# What a calendar app shows for each state: going out (or gone) is confirmed, waiting
# for a person is tentative, never going out is cancelled.
STATUS = {S.QUEUED: "CONFIRMED", S.SENDING: "CONFIRMED", S.PUBLISHED: "CONFIRMED",
          S.DRAFT: "TENTATIVE", S.REVIEW: "TENTATIVE", S.UNKNOWN: "TENTATIVE",
          S.FAILED: "CANCELLED", S.EXPIRED: "CANCELLED", S.CANCELED: "CANCELLED"}
POST_MINUTES = 5                 # a post is a moment; calendars need a length to draw it
DEADLINE_ALARM = timedelta(hours=1)
PRODID = "-//tminus//campaign calendar//EN"


def calendar_ics(engine: Engine, slug: str, now: datetime) -> bytes:
    """The campaign's calendar as an .ics file's bytes. Two readers at once may both
    record a post's first sequence: the one that loses reads again."""
    for _ in range(2):
        try:
            return _calendar(engine, slug, now)
        except IntegrityError:
            continue
    return _calendar(engine, slug, now)


def _calendar(engine: Engine, slug: str, now: datetime) -> bytes:
    with session(engine) as s:
        c = find_campaign(s, slug)
        cal = Calendar()
        cal.add("prodid", PRODID)
        cal.add("version", "2.0")
        cal.add("calscale", "GREGORIAN")
        cal.add("x-wr-calname", f"{c.title} (tminus)")
        cal.add("x-wr-timezone", c.timezone)
        cal.add_component(_deadline(c, now))
        rows = s.execute(select(Post, Account.name, Account.platform)
                         .join(Account, col(Account.id) == Post.account_id)
                         .where(col(Post.campaign_id) == c.id)
                         .order_by(col(Post.due_at), col(Post.id))).all()
        sequences = _sequences(s, [p for p, _, _ in rows])
        for post, account, platform in rows:
            cal.add_component(_event(post, account, platform, sequences[post.id or 0], now))
    data: bytes = cal.to_ical()
    return data


def _fingerprint(p: Post) -> str:
    return hashlib.sha256(f"{p.due_at.isoformat()}|{p.text_hash}|{p.state}".encode()).hexdigest()


def _sequences(s: Session, posts: list[Post]) -> dict[int, int]:
    """Each post's SEQUENCE: one more than last shown when its time, text or state moved."""
    ids = [p.id for p in posts if p.id is not None]
    known: dict[int, CalendarEntry] = {}
    for i in range(0, len(ids), 500):
        known.update((e.post_id, e) for e in s.exec(select(CalendarEntry).where(
            col(CalendarEntry.post_id).in_(ids[i:i + 500]))).all())
    out: dict[int, int] = {}
    for p in posts:
        assert p.id is not None
        fp = _fingerprint(p)
        entry = known.get(p.id)
        if entry is None:
            s.add(CalendarEntry(post_id=p.id, fingerprint=fp, sequence=0))
        elif entry.fingerprint != fp:
            entry.fingerprint, entry.sequence = fp, entry.sequence + 1
            s.add(entry)
        out[p.id] = 0 if entry is None else entry.sequence
    return out


def _event(p: Post, account: str, platform: str, sequence: int, now: datetime) -> Event:
    e = Event()
    e.add("uid", f"{p.idempotency_key}@tminus")
    e.add("sequence", sequence)
    e.add("dtstamp", now)
    e.add("last-modified", p.updated_at)
    at = p.published_at if p.state == S.PUBLISHED and p.published_at else p.due_at
    e.add("dtstart", at)
    e.add("dtend", at + timedelta(minutes=POST_MINUTES))
    first = p.text.replace("\n", " ")
    e.add("summary", f"{account} ({platform}): {first[:60]}{'…' if len(first) > 60 else ''}")
    said = [p.text, "", f"#{p.id} {p.state} on {account} ({platform})"]
    if p.remote_url:
        said.append(p.remote_url)
        e.add("url", p.remote_url)
    e.add("description", "\n".join(said))
    e.add("status", STATUS[PostState(p.state)])
    e.add("categories", [platform, str(p.state)])
    return e


def _deadline(c: Campaign, now: datetime) -> Event:
    e = Event()
    e.add("uid", f"deadline-{c.id}-{c.slug}@tminus")
    # the campaign row changes when it is re-planned: a moved deadline is then seen
    e.add("sequence", max(0, int((c.updated_at - c.created_at).total_seconds())))
    e.add("dtstamp", now)
    e.add("dtstart", c.deadline)
    e.add("dtend", c.deadline + timedelta(minutes=POST_MINUTES))
    e.add("summary", f"Deadline: {c.title}")
    e.add("description", f"The deadline of {c.title} ({c.slug}). Nothing goes out after it.")
    e.add("status", "CONFIRMED")
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", f"{c.title}: the deadline is in an hour")
    alarm.add("trigger", -DEADLINE_ALARM)
    e.add_component(alarm)
    return e


# -- the feed's secret address -------------------------------------------------------------


@dataclass(frozen=True)
class Feed:
    slug: str
    token: str | None        # None: no feed (never made, or revoked)


def _key(campaign_id: int | None) -> str:
    return f"calendar-feed:{campaign_id}"


def calendar_feed(engine: Engine, slug: str) -> Feed:
    with session(engine) as s:
        c = find_campaign(s, slug)
        row = s.get(WebConfig, _key(c.id))
        return Feed(c.slug, row.value if row else None)


def new_calendar_feed(engine: Engine, slug: str) -> Feed:
    """A new secret address for the campaign's feed; the old one stops working."""
    with session(engine) as s:
        c = find_campaign(s, slug)
        row = s.get(WebConfig, _key(c.id)) or WebConfig(key=_key(c.id), value="")
        row.value = secrets.token_urlsafe(24)
        s.add(row)
        return Feed(c.slug, row.value)


def revoke_calendar_feed(engine: Engine, slug: str) -> Feed:
    with session(engine) as s:
        c = find_campaign(s, slug)
        row = s.get(WebConfig, _key(c.id))
        if row is not None:
            s.delete(row)
        return Feed(c.slug, None)


def feed_by_token(engine: Engine, token: str, now: datetime) -> bytes:
    """The calendar of the campaign whose feed token this is (compared in constant time)."""
    with session(engine) as s:
        rows = s.exec(select(WebConfig).where(col(WebConfig.key).startswith("calendar-feed:"))).all()
        match = [r for r in rows if hmac.compare_digest(r.value.encode(), token.encode())]
        if not match:
            raise TminusError("no such calendar feed (it may have been regenerated)")
        c = s.get(Campaign, int(match[0].key.partition(":")[2]))
        if c is None:
            raise TminusError("no such calendar feed")
        slug = c.slug
    return calendar_ics(engine, slug, now)
