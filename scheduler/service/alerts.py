"""Alerts as a person sees them: a test message (`tminus notify test`), one round of
collecting and delivering from a timer (`tminus notify check`: the one that notices no
daemon is alive), and the record of what was sent or failed, to each destination
(`tminus notify status`).
The mechanism is `scheduler.alerts`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from scheduler.alerts import AppriseSender, Sender, Sweep, add_test_message, deliver, sweep
from scheduler.db import session
from scheduler.logs import secret_values
from scheduler.models import AlertItem, AlertMessage, Campaign
from scheduler.service.status import AlertDestination, destinations_of
from scheduler.settings import Settings


@dataclass(frozen=True)
class NotifyTest:
    destinations: list[str]      # each URL with its secrets masked
    delivered: bool              # every destination took it
    error: str | None
    outcomes: list[AlertDestination] = field(default_factory=list)   # each destination's


def sender_for(settings: Settings) -> AppriseSender:
    """TMINUS_NOTIFY's sender; an error naming the setting when it is unset or wrong."""
    return AppriseSender(settings.notify_urls, secrets=secret_values(settings))


def notify_test(engine: Engine, settings: Settings, now: Callable[[], datetime],
                sender: Sender | None = None, *, apprise: AppriseSender | None = None
                ) -> NotifyTest:
    """Send a test message to TMINUS_NOTIFY now (through `apprise` when the caller built
    it already, to check the setting first), recorded like every alert."""
    if sender is None and apprise is None:
        apprise = sender_for(settings)
    use: Sender = sender or apprise      # type: ignore[assignment]
    msg_id = add_test_message(engine, now())
    deliver(engine, use, now, only=msg_id)
    with session(engine) as s:
        msg = s.get(AlertMessage, msg_id)
        assert msg is not None
        outcomes = destinations_of(s, [msg_id])[msg_id]
    return NotifyTest(apprise.describe() if apprise else [], msg.sent_at is not None,
                      msg.last_error, outcomes)


def check_alerts(engine: Engine, settings: Settings, now: Callable[[], datetime],
                 sender: Sender | None = None) -> Sweep:
    """One round of what the daemon's alert thread does: collect, group, deliver."""
    return sweep(engine, sender or sender_for(settings), now,
                 timedelta(seconds=settings.notify_every))


@dataclass(frozen=True)
class AlertLine:
    id: int
    kind: str
    campaign: str | None
    title: str
    created_at: datetime
    attempts: int
    sent_at: datetime | None
    gave_up_at: datetime | None
    last_error: str | None
    items: int
    destinations: list[AlertDestination] = field(default_factory=list)   # its deliveries


@dataclass(frozen=True)
class AlertLog:
    messages: list[AlertLine]    # newest first
    waiting_items: int           # collected, not yet in a message (grouping window)


def alert_log(engine: Engine, *, limit: int = 20) -> AlertLog:
    with session(engine) as s:
        slugs = dict(s.exec(select(Campaign.id, Campaign.slug)).all())
        msgs = s.exec(select(AlertMessage).order_by(col(AlertMessage.id).desc()).limit(limit)).all()
        counts: dict[int, int] = {}
        for item in s.exec(select(AlertItem.message_id).where(
                col(AlertItem.message_id).in_([m.id for m in msgs]))).all():
            if item is not None:
                counts[item] = counts.get(item, 0) + 1
        waiting = len(s.exec(select(AlertItem.id).where(col(AlertItem.message_id).is_(None))).all())
        where = destinations_of(s, [m.id or 0 for m in msgs])
    return AlertLog([AlertLine(m.id or 0, m.kind, slugs.get(m.campaign_id) if m.campaign_id else None,
                               m.title, m.created_at, m.attempts, m.sent_at, m.gave_up_at,
                               m.last_error, counts.get(m.id or 0, 0), where[m.id or 0])
                     for m in msgs], waiting)
