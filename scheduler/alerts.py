"""Alerts: telling a person when something needs them, outside the sending path.

Three steps, each its own short transaction, run by the daemon's alert thread (and by
`tminus notify check` from a timer, which is how a dead daemon is noticed at all):

1. `collect` reads what happened since it last looked — post events (failed, needs
   review, expired unsent) and activity (paused, resumed) by a cursor over their ids —
   and what holds now (an account paused on a refused login or rate limited past its
   posts' time, posts due and no daemon alive, a deadline passed), and writes one
   `alert_item` per thing. Each item has a `key` saying what it is about, unique, so a
   second collector or a second look never says a thing twice.
2. `group` puts the waiting items of one kind and campaign into one `alert_message`,
   at most one per TMINUS_NOTIFY_EVERY for that kind and campaign: 200 failures in a
   burst are one message listing them.
3. `deliver` sends each message due through a `Sender` (Apprise, for TMINUS_NOTIFY),
   claimed first by a conditional update so that two daemons never both send it,
   retried with backoff, every attempt and failure recorded on the message.

Nothing here runs in the tick: a webhook that hangs holds up this thread only, and the
posts go out on time. The first time alerts are on, the cursors start an hour back:
turning TMINUS_NOTIFY on does not replay a campaign's history.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from content.errors import TminusError
from scheduler import defaults
from scheduler.db import session
from scheduler.localtime import local
from scheduler.models import (
    Account,
    Activity,
    ActivityKind,
    AlertItem,
    AlertMessage,
    Campaign,
    Event,
    OpsCursor,
    Post,
    PostState,
)
from scheduler.models import Daemon as DaemonRow

S = PostState
log = logging.getLogger("tminus.alerts")


class AlertKind(StrEnum):
    FAILED = "failed"
    REVIEW = "review"
    EXPIRED = "expired"
    ACCOUNT_PAUSED = "account paused"
    RATE_LIMITED = "rate limited"
    PAUSED = "paused"
    RESUMED = "resumed"
    NO_DAEMON = "no daemon"
    DEADLINE = "deadline"
    TEST = "test"


# How a message of each kind begins: "3 posts failed".
_HEADLINE = {
    AlertKind.FAILED: "post(s) failed",
    AlertKind.REVIEW: "post(s) need review: did they go out?",
    AlertKind.EXPIRED: "post(s) expired unsent",
    AlertKind.ACCOUNT_PAUSED: "account(s) paused: their posts wait for a person",
    AlertKind.RATE_LIMITED: "account(s) rate limited past their posts' time",
    AlertKind.PAUSED: "pause(s)",
    AlertKind.RESUMED: "resume(s)",
    AlertKind.NO_DAEMON: "no daemon is running and posts are due",
    AlertKind.DEADLINE: "deadline(s) passed",
    AlertKind.TEST: "test message",
}
_FROM_EVENT = {S.FAILED: AlertKind.FAILED, S.REVIEW: AlertKind.REVIEW, S.EXPIRED: AlertKind.EXPIRED}
_FROM_ACTIVITY = {ActivityKind.PAUSED: AlertKind.PAUSED, ActivityKind.RESUMED: AlertKind.RESUMED}
_DEAD_AFTER = timedelta(seconds=defaults.HEARTBEAT_STALE_SECONDS)
# The first collection says what happened this long before it, not all history before.
_LOOK_BACK = timedelta(seconds=defaults.ALERT_LOOK_BACK_SECONDS)


class Sender(Protocol):
    def send(self, title: str, body: str) -> str | None:
        """Deliver one message; None when it was delivered, else why not (no secret)."""


# -- 1. collect -------------------------------------------------------------------------


@dataclass(frozen=True)
class _New:
    key: str
    kind: AlertKind
    campaign_id: int | None
    post_id: int | None
    at: datetime
    text: str


def collect(engine: Engine, now: datetime) -> int:
    """Write an item for everything new worth a person; returns how many. A collector
    racing another is rolled back (the cursor moved under it) and finds nothing new the
    next time round."""
    with session(engine) as s:
        found = [*_from_events(s, now), *_from_activity(s, now), *_conditions(s, now)]
        keys = [f.key for f in found]
        known: set[str] = set()
        for i in range(0, len(keys), 500):
            known.update(s.exec(select(AlertItem.key).where(col(AlertItem.key).in_(keys[i:i + 500]))))
        fresh = {f.key: f for f in found if f.key not in known}     # one per key
        s.add_all(AlertItem(key=f.key, kind=f.kind, campaign_id=f.campaign_id, post_id=f.post_id,
                            at=f.at, text=f.text[:1000]) for f in fresh.values())
    return len(fresh)


def _advance(s: Session, name: str, newest: sa.Select[Any],
             before: sa.Select[Any]) -> tuple[int, int] | None:
    """(from, to]: the ids to read this round, and the cursor moved to `to` — fenced on
    its old value, so two collectors never both read the same ids. None: nothing new.
    The first time, the cursor starts at `before`, the newest id older than the
    look-back: what just happened is said, a campaign's history is not replayed."""
    cur = s.get(OpsCursor, name)
    top = s.execute(newest).scalar() or 0
    if cur is None:
        s.add(OpsCursor(name=name, last_id=s.execute(before).scalar() or 0))
        s.flush()
        cur = s.get(OpsCursor, name)
        assert cur is not None
    start = cur.last_id
    end = min(top, start + defaults.ALERT_SCAN)
    if end <= start:
        return None
    moved = s.execute(sa.update(OpsCursor).where(col(OpsCursor.name) == name,
                                                 col(OpsCursor.last_id) == start)
                      .values(last_id=end)).rowcount   # type: ignore[attr-defined]
    if moved != 1:
        raise _Raced()
    s.expire(cur)
    return start, end


class _Raced(Exception):
    """Another collector moved the cursor first: this round is rolled back."""



def _from_events(s: Session, now: datetime) -> list[_New]:
    span = _advance(s, "alerts.event", sa.select(func.max(col(Event.id))),
                    sa.select(func.max(col(Event.id))).where(col(Event.at) < now - _LOOK_BACK))
    if span is None:
        return []
    rows = s.execute(
        sa.select(col(Event.id), col(Event.post_id), col(Event.at), col(Event.to_state),
                  col(Event.reason), col(Post.campaign_id), col(Post.due_at), col(Account.name),
                  col(Campaign.timezone))
        .join(Post, col(Post.id) == Event.post_id).join(Account, col(Account.id) == Post.account_id)
        .join(Campaign, col(Campaign.id) == Post.campaign_id)
        .where(col(Event.id) > span[0], col(Event.id) <= span[1],
               col(Event.to_state).in_(list(_FROM_EVENT)))
        .order_by(col(Event.id))).all()
    return [_New(f"event:{r.id}", _FROM_EVENT[PostState(r.to_state)], r.campaign_id, r.post_id,
                 r.at, f"#{r.post_id} on {r.name}, due {local(r.due_at, r.timezone)}: {r.reason}")
            for r in rows]


def _from_activity(s: Session, now: datetime) -> list[_New]:
    span = _advance(s, "alerts.activity", sa.select(func.max(col(Activity.id))),
                    sa.select(func.max(col(Activity.id))).where(col(Activity.at) < now - _LOOK_BACK))
    if span is None:
        return []
    rows = s.exec(select(Activity).where(col(Activity.id) > span[0], col(Activity.id) <= span[1],
                                         col(Activity.kind).in_(list(_FROM_ACTIVITY)))
                  .order_by(col(Activity.id))).all()
    return [_New(f"activity:{a.id}", _FROM_ACTIVITY[ActivityKind(a.kind)], a.campaign_id, None,
                 a.at, f"{a.actor}: {a.message}") for a in rows]


def _conditions(s: Session, now: datetime) -> list[_New]:
    """What holds now. Each key names the episode (the pause's time, the last beat), so
    an account paused twice is said twice, and once per pause."""
    out: list[_New] = []
    for a in s.exec(select(Account).where(col(Account.paused_reason).is_not(None))).all():
        at = a.paused_at or now
        out.append(_New(f"account-paused:{a.id}:{at.isoformat()}", AlertKind.ACCOUNT_PAUSED,
                        None, None, at, f"{a.name} ({a.platform}): {a.paused_reason} — "
                        f"`tminus accounts resume {a.name}` once fixed"))
    limited = s.execute(
        sa.select(col(Account.id), col(Account.name), col(Account.resume_at), func.count(),
                  func.min(col(Campaign.timezone)))
        .join(Post, col(Post.account_id) == Account.id)
        .join(Campaign, col(Campaign.id) == Post.campaign_id)
        .where(col(Account.resume_at) > now, col(Post.state) == S.QUEUED,
               col(Post.not_after) < Account.resume_at)
        .group_by(col(Account.id), col(Account.name), col(Account.resume_at))).all()
    for acc_id, name, until, n, tz in limited:
        out.append(_New(f"rate-limited:{acc_id}:{until.isoformat()}", AlertKind.RATE_LIMITED, None,
                        None, now, f"{name} may post again at {local(until, tz)}; "
                        f"{n} of its queued post(s) expire before that"))
    out.extend(_no_daemon(s, now))
    # a minute after the deadline: the daemon has expired what was left by then, so the
    # totals are the final ones
    settled = now - timedelta(seconds=defaults.NO_DAEMON_GRACE_SECONDS)
    for c in s.exec(select(Campaign).where(col(Campaign.deadline) <= settled,
                                           col(Campaign.deadline) > now - timedelta(days=1))).all():
        totals = s.execute(sa.select(col(Post.state), func.count()).where(col(Post.campaign_id) == c.id)
                           .group_by(col(Post.state)).order_by(col(Post.state))).all()
        said = ", ".join(f"{n} {st}" for st, n in totals) or "no posts"
        out.append(_New(f"deadline:{c.id}", AlertKind.DEADLINE, c.id, None, c.deadline,
                        f"{c.title} ({c.slug}) reached its deadline "
                        f"{local(c.deadline, c.timezone)}: {said}"))
    return out


def _no_daemon(s: Session, now: datetime) -> list[_New]:
    alive = s.execute(sa.select(func.count()).select_from(DaemonRow)
                      .where(col(DaemonRow.stopped_at).is_(None),
                             col(DaemonRow.beat_at) > now - _DEAD_AFTER)).scalar()
    if alive:
        return []
    grace = timedelta(seconds=defaults.NO_DAEMON_GRACE_SECONDS)
    late = s.execute(sa.select(func.count(), func.min(col(Post.next_attempt_at)))
                     .where(col(Post.state) == S.QUEUED, col(Post.next_attempt_at) <= now - grace,
                            col(Post.not_after) > now)).one()
    if not late[0]:
        return []
    last = s.execute(sa.select(func.max(col(DaemonRow.beat_at)))).scalar()
    episode = last.isoformat() if last else "never"
    since = f"the last heartbeat was at {local(last, None)}" if last else "none ever ran"
    return [_New(f"no-daemon:{episode}", AlertKind.NO_DAEMON, None, None, now,
                 f"{late[0]} queued post(s) are due since {local(late[1], None)} and no "
                 f"daemon is alive ({since}): start one with `tminus run`")]


# -- 2. group ---------------------------------------------------------------------------


def group(engine: Engine, now: datetime, every: timedelta) -> int:
    """One message per kind and campaign from their waiting items, unless one of that
    kind and campaign was made less than `every` ago; returns how many were made."""
    made = 0
    with session(engine) as s:
        waiting = s.exec(select(AlertItem).where(col(AlertItem.message_id).is_(None))
                         .order_by(col(AlertItem.id))).all()
        by_group: dict[tuple[str, int | None], list[AlertItem]] = defaultdict(list)
        for item in waiting:
            by_group[(item.kind, item.campaign_id)].append(item)
        slugs = {r.id: r.slug for r in s.execute(sa.select(col(Campaign.id), col(Campaign.slug)))}
        for (kind, campaign_id), items in by_group.items():
            last = s.execute(sa.select(func.max(col(AlertMessage.created_at)))
                             .where(col(AlertMessage.kind) == kind,
                                    _same(col(AlertMessage.campaign_id), campaign_id))).scalar()
            if last is not None and now - last < every:
                continue
            title, body = compose(AlertKind(kind), slugs.get(campaign_id) if campaign_id else None,
                                  [i.text for i in items])
            msg = AlertMessage(kind=kind, campaign_id=campaign_id, title=title, body=body,
                               created_at=now, next_try_at=now)
            s.add(msg)
            s.flush()
            ids = [i.id for i in items]
            taken = s.execute(sa.update(AlertItem).where(col(AlertItem.id).in_(ids),
                                                         col(AlertItem.message_id).is_(None))
                              .values(message_id=msg.id)).rowcount   # type: ignore[attr-defined]
            if taken != len(ids):
                raise _Raced()      # another daemon grouped them first: roll back
            made += 1
    return made


def _same(column: Any, value: int | None) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value  # type: ignore[no-any-return]


def compose(kind: AlertKind, campaign: str | None, lines: Sequence[str]) -> tuple[str, str]:
    """The title and body of one message: how many of what, about which campaign, and
    the first ALERT_LISTED items one a line."""
    where = f" — {campaign}" if campaign else ""
    count = "" if kind in (AlertKind.NO_DAEMON, AlertKind.TEST) else f"{len(lines)} "
    title = f"tminus: {count}{_HEADLINE[kind]}{where}"
    shown = [f"- {line}" for line in lines[:defaults.ALERT_LISTED]]
    if len(lines) > defaults.ALERT_LISTED:
        shown.append(f"… and {len(lines) - defaults.ALERT_LISTED} more: see `tminus status`")
    return title, "\n".join(shown)


# -- 3. deliver -------------------------------------------------------------------------


@dataclass
class Delivered:
    sent: int = 0
    failed: int = 0
    gave_up: int = 0


def backoff(attempt: int) -> timedelta:
    """Wait before try number `attempt + 1`: 30 s, 60 s, 120 s, ... at most 15 min."""
    return timedelta(seconds=min(defaults.ALERT_BACKOFF_CAP_SECONDS,
                                 defaults.ALERT_BACKOFF_SECONDS * 2 ** max(0, attempt - 1)))


def deliver(engine: Engine, sender: Sender, now: Callable[[], datetime],
            stopping: Callable[[], bool] = lambda: False, only: int | None = None) -> Delivered:
    """Send every message due (or the one `only`), oldest first; `now` is asked again
    after each send (a slow webhook takes time)."""
    result = Delivered()
    with session(engine) as s:
        q = (sa.select(col(AlertMessage.id), col(AlertMessage.attempts))
             .where(col(AlertMessage.sent_at).is_(None), col(AlertMessage.gave_up_at).is_(None),
                    col(AlertMessage.next_try_at) <= now())
             .order_by(col(AlertMessage.id)))
        due = s.execute(q if only is None else q.where(col(AlertMessage.id) == only)).all()
    for msg_id, attempts in due:
        if stopping():
            break
        msg = _claim(engine, msg_id, attempts, now())
        if msg is None:
            continue            # another daemon is at it
        try:
            error = sender.send(msg.title, msg.body)
        except Exception as e:   # a sender must never end the alert thread
            error = f"{type(e).__name__}: {e}"
        _record(engine, msg, error, now(), result)
    return result


def _claim(engine: Engine, msg_id: int, attempts: int, now: datetime) -> AlertMessage | None:
    """Count the attempt and push its next try out by the backoff before sending: a
    daemon that dies mid-send leaves the message to be tried again then."""
    with session(engine) as s:
        moved = s.execute(sa.update(AlertMessage)
                          .where(col(AlertMessage.id) == msg_id,
                                 col(AlertMessage.attempts) == attempts,
                                 col(AlertMessage.sent_at).is_(None))
                          .values(attempts=attempts + 1,
                                  next_try_at=now + backoff(attempts + 1))).rowcount   # type: ignore[attr-defined]
        return s.get(AlertMessage, msg_id) if moved == 1 else None


def _record(engine: Engine, msg: AlertMessage, error: str | None, now: datetime,
            result: Delivered) -> None:
    with session(engine) as s:
        row = s.get(AlertMessage, msg.id)
        assert row is not None
        if error is None:
            row.sent_at, row.last_error = now, None
            result.sent += 1
            log.info("alert %s delivered: %s", row.id, row.title)
        else:
            row.last_error = error[:500]
            result.failed += 1
            if row.attempts >= defaults.ALERT_MAX_ATTEMPTS:
                row.gave_up_at = now
                result.gave_up += 1
                log.error("alert %s not delivered after %d attempts, given up: %s",
                          row.id, row.attempts, error)
            else:
                log.warning("alert %s not delivered (attempt %d; next at %s): %s", row.id,
                            row.attempts, f"{row.next_try_at:%H:%M:%S} UTC", error)
        s.add(row)


# -- the three together, and Apprise ------------------------------------------------------


@dataclass
class Sweep:
    collected: int = 0
    grouped: int = 0
    delivered: Delivered | None = None


def sweep(engine: Engine, sender: Sender, now: Callable[[], datetime], every: timedelta,
          stopping: Callable[[], bool] = lambda: False) -> Sweep:
    """Collect, group and deliver once (the alert thread's round; `tminus notify check`)."""
    out = Sweep()
    for _ in range(100):          # a long backlog: round after round, each one short
        try:
            n = collect(engine, now())
        except (_Raced, sa.exc.IntegrityError):
            break                 # another collector got there first (its cursor, its keys)
        out.collected += n
        if n == 0:
            break
    with contextlib.suppress(_Raced):
        out.grouped = group(engine, now(), every)
    out.delivered = deliver(engine, sender, now, stopping)
    return out


def add_test_message(engine: Engine, now: datetime) -> int:
    """A message saying that alerts reach this place, sent by the next delivery."""
    title, body = compose(AlertKind.TEST, None, ["tminus alerts reach this place."])
    with session(engine) as s:
        msg = AlertMessage(kind=AlertKind.TEST, title=title, body=body, created_at=now,
                           next_try_at=now)
        s.add(msg)
        s.flush()
        assert msg.id is not None
        return msg.id


class AppriseSender:
    """TMINUS_NOTIFY's URLs, through Apprise. A URL Apprise cannot read is an error
    naming its place in the list and its scheme only: the rest may be a token."""

    def __init__(self, urls: Iterable[str], timeout: float = defaults.ALERT_TIMEOUT_SECONDS,
                 secrets: Iterable[str] = ()) -> None:
        import apprise
        self.apprise = apprise.Apprise()
        self.timeout = timeout
        self.secrets = list(secrets)
        self.urls = list(urls)
        for n, url in enumerate(self.urls, 1):
            if not _quietly(self.apprise.add, url):
                scheme = url.partition("://")[0] if "://" in url else "(no scheme)"
                raise TminusError(f"TMINUS_NOTIFY: URL {n} ({scheme}://…) is not one Apprise "
                                  "can send to; see https://github.com/caronc/apprise/wiki "
                                  "for the form of each service's URL")
        if len(self.apprise) == 0:
            raise TminusError("TMINUS_NOTIFY is not set: give one or more Apprise URLs "
                              "(e.g. ntfys://ntfy.sh/your-topic); see .env.example")

    def describe(self) -> list[str]:
        """Where alerts go, as a person wrote each address, every secret part masked
        (Apprise's privacy mode knows which parts of each service's URL are secrets)."""
        from scheduler.logs import redact
        private = [str(server.url(privacy=True)) for server in self.apprise]  # type: ignore[no-untyped-call]
        if len(private) != len(self.urls):      # one URL made several servers: as Apprise says
            return [redact(p, self.secrets) for p in private]
        return [redact(_as_written(p, url), self.secrets) for p, url in zip(private, self.urls,
                                                                             strict=True)]

    def send(self, title: str, body: str) -> str | None:
        """None when every destination took it; else why not, naming the destinations
        that failed as `describe` shows them (secrets masked), so a person knows which."""
        from scheduler.logs import redact
        result = self.apprise.notify(body=body, title=title, timeout=self.timeout)
        if result:
            return None
        said = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        why = "; ".join(said[-3:]) or result.status.name.lower()
        # each service's result carries its URL as Apprise masks it (privacy mode)
        shown = dict(zip((str(server.url(privacy=True)) for server in self.apprise),  # type: ignore[no-untyped-call]
                         self.describe(), strict=True))
        failed = [shown.get(r.url, r.url) for r in result if not r]
        to = f" (to {', '.join(failed)})" if failed else ""
        return redact(f"{result.status.name.lower()}{to}: {why}", self.secrets)


def _as_written(private: str, written: str) -> str:
    """Apprise's masked URL without the options it adds to every one
    (`?method=POST&overflow=upstream&retry=0&…`): only those the person wrote stay, and
    a path ends as they wrote it."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
    mine, theirs = urlsplit(private), urlsplit(written)
    keys = {k.lower() for k, _ in parse_qsl(theirs.query, keep_blank_values=True)}
    query = [(k, v) for k, v in parse_qsl(mine.query, keep_blank_values=True) if k.lower() in keys]
    path = mine.path if theirs.path.endswith("/") else mine.path.rstrip("/")
    return urlunsplit(mine._replace(path=path, query=urlencode(query, safe="*.")))


def _quietly(add: Callable[[str], bool], url: str) -> bool:
    """Apprise logs a URL it cannot read, in part: the error we raise says it instead."""
    logger = logging.getLogger("apprise")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        return add(url)
    finally:
        logger.setLevel(level)
