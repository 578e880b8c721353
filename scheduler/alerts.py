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
   retried with backoff, every attempt and failure recorded on the message and on
   each destination's `alert_delivery`: a retry goes only to the destinations that
   have not taken the message, so the working ones never get copies.

Nothing here runs in the tick: a webhook that hangs holds up this thread only, and the
posts go out on time. The first time alerts are on, the cursors start an hour back:
turning TMINUS_NOTIFY on does not replay a campaign's history.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.engine import Engine

from content.errors import TminusError
from scheduler import defaults
from scheduler import tables as t
from scheduler.db import transaction
from scheduler.localtime import local
from scheduler.states import ActivityKind, PostState

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
    def destinations(self) -> list[str]:
        """Where messages go, each as a person reads it (secrets masked), no two alike:
        a message's delivery to each is recorded under that name."""

    def send(self, title: str, body: str, to: Sequence[str]) -> dict[str, str | None]:
        """Deliver one message to the destinations `to` (names from `destinations`);
        for each, None when it took the message, else why not (no secret)."""


# A destination's name is kept to this many characters (the column's length).
DESTINATION_LENGTH = 500


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
    with transaction(engine) as s:
        found = [*_from_events(s, now), *_from_activity(s, now), *_conditions(s, now)]
        keys = [f.key for f in found]
        known: set[str] = set()
        for i in range(0, len(keys), 500):
            known.update(s.execute(sa.select(t.alert_item.c.key)
                                   .where(t.alert_item.c.key.in_(keys[i:i + 500]))).scalars())
        fresh = {f.key: f for f in found if f.key not in known}     # one per key
        if fresh:
            s.execute(sa.insert(t.alert_item), [
                {"key": f.key, "kind": f.kind, "campaign_id": f.campaign_id,
                 "post_id": f.post_id, "at": f.at, "text": f.text[:1000]}
                for f in fresh.values()])
    return len(fresh)


def _advance(s: sa.Connection, name: str, newest: sa.Select[Any],
             before: sa.Select[Any]) -> tuple[int, int] | None:
    """(from, to]: the ids to read this round, and the cursor moved to `to` — fenced on
    its old value, so two collectors never both read the same ids. None: nothing new.
    The first time, the cursor starts at `before`, the newest id older than the
    look-back: what just happened is said, a campaign's history is not replayed."""
    cursor = sa.select(t.ops_cursor.c.last_id).where(t.ops_cursor.c.name == name)
    last = s.execute(cursor).scalar()
    top = s.execute(newest).scalar() or 0
    if last is None:
        last = s.execute(before).scalar() or 0
        s.execute(sa.insert(t.ops_cursor).values(name=name, last_id=last))
    start = int(last)
    end = min(top, start + defaults.ALERT_SCAN)
    if end <= start:
        return None
    moved = s.execute(sa.update(t.ops_cursor).where(t.ops_cursor.c.name == name,
                                                 t.ops_cursor.c.last_id == start)
                      .values(last_id=end)).rowcount
    if moved != 1:
        raise _Raced()
    return start, end


class _Raced(Exception):
    """Another collector moved the cursor first: this round is rolled back."""



def _from_events(s: sa.Connection, now: datetime) -> list[_New]:
    span = _advance(s, "alerts.event", sa.select(func.max(t.event.c.id)),
                    sa.select(func.max(t.event.c.id)).where(t.event.c.at < now - _LOOK_BACK))
    if span is None:
        return []
    rows = s.execute(
        sa.select(t.event.c.id, t.event.c.post_id, t.event.c.at, t.event.c.to_state,
                  t.event.c.reason, t.post.c.campaign_id, t.post.c.due_at, t.account.c.name,
                  t.campaign.c.timezone)
        .join(t.post, t.post.c.id == t.event.c.post_id).join(t.account, t.account.c.id == t.post.c.account_id)
        .join(t.campaign, t.campaign.c.id == t.post.c.campaign_id)
        .where(t.event.c.id > span[0], t.event.c.id <= span[1],
               t.event.c.to_state.in_(list(_FROM_EVENT)))
        .order_by(t.event.c.id)).all()
    return [_New(f"event:{r.id}", _FROM_EVENT[PostState(r.to_state)], r.campaign_id, r.post_id,
                 r.at, f"#{r.post_id} on {r.name}, due {local(r.due_at, r.timezone)}: {r.reason}")
            for r in rows]


def _from_activity(s: sa.Connection, now: datetime) -> list[_New]:
    span = _advance(s, "alerts.activity", sa.select(func.max(t.activity.c.id)),
                    sa.select(func.max(t.activity.c.id)).where(t.activity.c.at < now - _LOOK_BACK))
    if span is None:
        return []
    rows = s.execute(sa.select(t.activity).where(
        t.activity.c.id > span[0], t.activity.c.id <= span[1],
        t.activity.c.kind.in_(list(_FROM_ACTIVITY))).order_by(t.activity.c.id)).all()
    return [_New(f"activity:{a.id}", _FROM_ACTIVITY[ActivityKind(a.kind)], a.campaign_id, None,
                 a.at, f"{a.actor}: {a.message}") for a in rows]


def _conditions(s: sa.Connection, now: datetime) -> list[_New]:
    """What holds now. Each key names the episode (the pause's time, the last beat), so
    an account paused twice is said twice, and once per pause."""
    out: list[_New] = []
    for a in s.execute(sa.select(t.account).where(t.account.c.paused_reason.is_not(None))).all():
        at = a.paused_at or now
        out.append(_New(f"account-paused:{a.id}:{at.isoformat()}", AlertKind.ACCOUNT_PAUSED,
                        None, None, at, f"{a.name} ({a.platform}): {a.paused_reason} — "
                        f"`tminus accounts resume {a.name}` once fixed"))
    limited = s.execute(
        sa.select(t.account.c.id, t.account.c.name, t.account.c.resume_at, func.count(),
                  func.min(t.campaign.c.timezone))
        .join(t.post, t.post.c.account_id == t.account.c.id)
        .join(t.campaign, t.campaign.c.id == t.post.c.campaign_id)
        .where(t.account.c.resume_at > now, t.post.c.state == S.QUEUED,
               t.post.c.not_after < t.account.c.resume_at)
        .group_by(t.account.c.id, t.account.c.name, t.account.c.resume_at)).all()
    for acc_id, name, until, n, tz in limited:
        out.append(_New(f"rate-limited:{acc_id}:{until.isoformat()}", AlertKind.RATE_LIMITED, None,
                        None, now, f"{name} may post again at {local(until, tz)}; "
                        f"{n} of its queued post(s) expire before that"))
    out.extend(_no_daemon(s, now))
    # a minute after the deadline: the daemon has expired what was left by then, so the
    # totals are the final ones
    settled = now - timedelta(seconds=defaults.NO_DAEMON_GRACE_SECONDS)
    for c in s.execute(sa.select(t.campaign).where(
            t.campaign.c.deadline <= settled, t.campaign.c.deadline > now - timedelta(days=1))).all():
        totals = s.execute(sa.select(t.post.c.state, func.count()).where(t.post.c.campaign_id == c.id)
                           .group_by(t.post.c.state).order_by(t.post.c.state)).all()
        said = ", ".join(f"{n} {st}" for st, n in totals) or "no posts"
        out.append(_New(f"deadline:{c.id}", AlertKind.DEADLINE, c.id, None, c.deadline,
                        f"{c.title} ({c.slug}) reached its deadline "
                        f"{local(c.deadline, c.timezone)}: {said}"))
    return out


def _no_daemon(s: sa.Connection, now: datetime) -> list[_New]:
    alive = s.execute(sa.select(func.count()).select_from(t.daemon)
                      .where(t.daemon.c.stopped_at.is_(None),
                             t.daemon.c.beat_at > now - _DEAD_AFTER)).scalar()
    if alive:
        return []
    grace = timedelta(seconds=defaults.NO_DAEMON_GRACE_SECONDS)
    late = s.execute(sa.select(func.count(), func.min(t.post.c.next_attempt_at))
                     .where(t.post.c.state == S.QUEUED, t.post.c.next_attempt_at <= now - grace,
                            t.post.c.not_after > now)).one()
    if not late[0]:
        return []
    last = s.execute(sa.select(func.max(t.daemon.c.beat_at))).scalar()
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
    with transaction(engine) as s:
        waiting = s.execute(sa.select(t.alert_item).where(t.alert_item.c.message_id.is_(None))
                            .order_by(t.alert_item.c.id)).all()
        by_group: dict[tuple[str, int | None], list[sa.Row[Any]]] = defaultdict(list)
        for item in waiting:
            by_group[(item.kind, item.campaign_id)].append(item)
        slugs = {r.id: r.slug for r in s.execute(sa.select(t.campaign.c.id, t.campaign.c.slug))}
        for (kind, campaign_id), items in by_group.items():
            last = s.execute(sa.select(func.max(t.alert_message.c.created_at))
                             .where(t.alert_message.c.kind == kind,
                                    _same(t.alert_message.c.campaign_id, campaign_id))).scalar()
            if last is not None and now - last < every:
                continue
            title, body = compose(AlertKind(kind), slugs.get(campaign_id) if campaign_id else None,
                                  [i.text for i in items])
            msg_id = s.execute(sa.insert(t.alert_message).values(
                kind=kind, campaign_id=campaign_id, title=title, body=body, created_at=now,
                next_try_at=now).returning(t.alert_message.c.id)).scalar_one()
            ids = [i.id for i in items]
            taken = s.execute(sa.update(t.alert_item).where(t.alert_item.c.id.in_(ids),
                                                         t.alert_item.c.message_id.is_(None))
                              .values(message_id=msg_id)).rowcount
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


# What a destination's row says once it is no longer in TMINUS_NOTIFY: it is not waited for.
DROPPED = "no longer in TMINUS_NOTIFY: not tried again"


def deliver(engine: Engine, sender: Sender, now: Callable[[], datetime],
            stopping: Callable[[], bool] = lambda: False, only: int | None = None) -> Delivered:
    """Send every message due (or the one `only`), oldest first, to the destinations
    that have not taken it yet; `now` is asked again after each send (a slow webhook
    takes time)."""
    result = Delivered()
    names = [name[:DESTINATION_LENGTH] for name in sender.destinations()]
    with transaction(engine) as s:
        q = (sa.select(t.alert_message.c.id, t.alert_message.c.attempts)
             .where(t.alert_message.c.sent_at.is_(None), t.alert_message.c.gave_up_at.is_(None),
                    t.alert_message.c.next_try_at <= now())
             .order_by(t.alert_message.c.id))
        due = s.execute(q if only is None else q.where(t.alert_message.c.id == only)).all()
    for msg_id, attempts in due:
        if stopping():
            break
        claimed = _claim(engine, msg_id, attempts, now(), names)
        if claimed is None:
            continue            # another daemon is at it
        msg, pending = claimed
        outcome: dict[str, str | None] = {}
        if pending:
            try:
                outcome = sender.send(msg.title, msg.body, pending)
            except Exception as e:   # a sender must never end the alert thread
                outcome = dict.fromkeys(pending, f"{type(e).__name__}: {e}")
        # a destination the sender said nothing of did not take it
        outcome = {name: outcome.get(name, "the sender said nothing of it") for name in pending}
        _record(engine, msg, names, outcome, now(), result)
    return result


def _claim(engine: Engine, msg_id: int, attempts: int, now: datetime, names: Sequence[str]
           ) -> tuple[sa.Row[Any], list[str]] | None:
    """Count the attempt and push its next try out by the backoff before sending: a
    daemon that dies mid-send leaves the message to be tried again then. Every
    destination gets its row here (fenced by the claim: one daemon makes them); the
    ones that have not taken the message are this attempt's."""
    with transaction(engine) as s:
        moved = s.execute(sa.update(t.alert_message)
                          .where(t.alert_message.c.id == msg_id,
                                 t.alert_message.c.attempts == attempts,
                                 t.alert_message.c.sent_at.is_(None))
                          .values(attempts=attempts + 1,
                                  next_try_at=now + backoff(attempts + 1))).rowcount
        if moved != 1:
            return None
        d = t.alert_delivery
        rows = {r.destination: r for r in s.execute(sa.select(d).where(d.c.message_id == msg_id))}
        new = [{"message_id": msg_id, "destination": name, "position": n, "attempts": 0}
               for n, name in enumerate(names) if name not in rows]
        if new:
            s.execute(sa.insert(d), new)
        pending = [name for name in names if name not in rows or rows[name].sent_at is None]
        return s.execute(sa.select(t.alert_message).where(t.alert_message.c.id == msg_id)).one(), pending


def _record(engine: Engine, msg: sa.Row[Any], names: Sequence[str],
            outcome: dict[str, str | None], now: datetime, result: Delivered) -> None:
    """The attempt's outcome on each destination's row and on the message (`msg` as its
    claim left it): sent once every destination in TMINUS_NOTIFY has taken it."""
    d = t.alert_delivery
    refused = {name: why for name, why in outcome.items() if why is not None}
    if not refused:
        values: dict[str, Any] = {"sent_at": now, "last_error": None}
        result.sent += 1
        log.info("alert %s delivered: %s", msg.id, msg.title)
    else:
        said = "; ".join(f"{name}: {why}" for name, why in refused.items())
        values = {"last_error": f"{len(refused)} of {len(names)} destination(s) refused it "
                                f"({said})"[:500]}
        result.failed += 1
        took = len(outcome) - len(refused)
        also = f" ({took} other(s) took it this time)" if took else ""
        if msg.attempts >= defaults.ALERT_MAX_ATTEMPTS:
            values["gave_up_at"] = now
            result.gave_up += 1
            log.error("alert %s not delivered after %d attempts, given up%s: %s",
                      msg.id, msg.attempts, also, said)
        else:
            log.warning("alert %s not delivered (attempt %d; next at %s)%s: %s", msg.id,
                        msg.attempts, f"{msg.next_try_at:%H:%M:%S} UTC", also, said)
    with transaction(engine) as s:
        for name, why in outcome.items():
            s.execute(sa.update(d).where(d.c.message_id == msg.id, d.c.destination == name,
                                         d.c.sent_at.is_(None))
                      .values(attempts=d.c.attempts + 1, sent_at=now if why is None else None,
                              last_error=None if why is None else why[:500]))
        # a destination taken out of TMINUS_NOTIFY is not waited for (nor tried again)
        s.execute(sa.update(d).where(d.c.message_id == msg.id, d.c.sent_at.is_(None),
                                     d.c.destination.not_in(list(names)),
                                     sa.or_(d.c.last_error.is_(None), d.c.last_error != DROPPED))
                  .values(last_error=DROPPED))
        s.execute(sa.update(t.alert_message).where(t.alert_message.c.id == msg.id).values(**values))


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
    with transaction(engine) as s:
        return int(s.execute(sa.insert(t.alert_message).values(
            kind=AlertKind.TEST, title=title, body=body, created_at=now, next_try_at=now)
            .returning(t.alert_message.c.id)).scalar_one())


class AppriseSender:
    """TMINUS_NOTIFY's URLs, through Apprise. A URL Apprise cannot read is an error
    naming its place in the list and its scheme only: the rest may be a token. Each URL
    is a destination, tagged with its place (`tminus-N`) so that one message can go to
    some of them; Apprise still sends to those side by side."""

    def __init__(self, urls: Iterable[str], timeout: float = defaults.ALERT_TIMEOUT_SECONDS,
                 secrets: Iterable[str] = ()) -> None:
        import apprise

        from scheduler.logs import redact
        self.apprise = apprise.Apprise()
        self.timeout = timeout
        self.secrets = list(secrets)
        self.urls = list(urls)
        self._tags: dict[str, str] = {}         # a destination's name → its URL's tag
        parts = [v for v in self.secrets if v not in self.urls]
        for n, url in enumerate(self.urls, 1):
            before = len(self.apprise)
            if not _quietly(functools.partial(self.apprise.add, tag=f"tminus-{n}"), url):
                scheme = url.partition("://")[0] if "://" in url else "(no scheme)"
                raise TminusError(f"TMINUS_NOTIFY: URL {n} ({scheme}://…) is not one Apprise "
                                  "can send to; see https://github.com/caronc/apprise/wiki "
                                  "for the form of each service's URL")
            # Apprise's privacy mode knows which parts of each service's URL are secrets
            private = [str(self.apprise[i].url(privacy=True))  # type: ignore[no-untyped-call]
                       for i in range(before, len(self.apprise))]
            name = (_as_written(private[0], url) if len(private) == 1  # as a person wrote it
                    else ", ".join(private))                          # several: as Apprise says
            # its secret parts masked; the URL as a whole is a secret too (of log lines),
            # but redacting it here would leave nothing to tell one destination by
            name = redact(name, parts)[:DESTINATION_LENGTH - 6]
            if "://" not in name:       # nothing of it can be shown
                scheme = url.partition("://")[0] if "://" in url else "(no scheme)"
                name = f"URL {n} ({scheme}://…)"
            elif name in self._tags:    # two alike once masked: told apart by their place
                name = f"{name} (#{n})"
            self._tags[name] = f"tminus-{n}"
        if len(self.apprise) == 0:
            raise TminusError("TMINUS_NOTIFY is not set: give one or more Apprise URLs "
                              "(e.g. ntfys://ntfy.sh/your-topic); see .env.example")

    def destinations(self) -> list[str]:
        """Where alerts go, as a person wrote each address, every secret part masked."""
        return list(self._tags)

    describe = destinations

    def send(self, title: str, body: str, to: Sequence[str]) -> dict[str, str | None]:
        """Each destination of `to`: None when it took the message; else why not, in
        Apprise's words (its last warnings for that service), secrets masked."""
        from scheduler.logs import redact
        named = {self._tags[name]: name for name in to}
        if not named:
            return {}
        try:
            result = self.apprise.notify(body=body, title=title, timeout=self.timeout,
                                         tag=list(named))
        except Exception as e:  # Apprise's own failure may quote a URL: mask it here
            return dict.fromkeys(to, redact(f"{type(e).__name__}: {e}", self.secrets))
        services: dict[str, list[Any]] = defaultdict(list)
        for r in result:
            for tag in r.tag:
                if str(tag) in named:
                    services[named[str(tag)]].append(r)
        out: dict[str, str | None] = {}
        for name in to:
            mine = services.get(name, [])
            if mine and all(mine):
                out[name] = None
                continue
            said = [e.message for r in mine for e in r.logs()
                    if e.level in ("WARNING", "ERROR", "CRITICAL")]
            status = next((r.status.name.lower() for r in mine if not r), result.status.name.lower())
            why = "; ".join(said[-3:]) or ("not sent" if mine else "Apprise did not send to it")
            out[name] = redact(f"{status}: {why}", self.secrets)
        return out


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


class _Hush(logging.Filter):
    """Drops Apprise's records made by a thread while it reads a URL for us. The logger's
    level is left alone: lowering and restoring it around each read, two threads reading
    at once could leave it raised for good, and every later failure's reason unsaid."""

    def __init__(self) -> None:
        super().__init__()
        self._reading = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self._reading, "on", False)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        self._reading.on = True
        try:
            yield
        finally:
            self._reading.on = False


_HUSH = _Hush()


def _quietly(add: Callable[[str], bool], url: str) -> bool:
    """Apprise logs a URL it cannot read, in part: the error we raise says it instead."""
    logging.getLogger("apprise").addFilter(_HUSH)     # once: a filter is added only once
    with _HUSH.reading():
        return add(url)
