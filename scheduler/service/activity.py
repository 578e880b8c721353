"""The activity log: what happened that is not a post's change of state — pauses,
resumes (of a campaign, an account, everything), people added, removed, given a role
or a password, and logins to the dashboard. (A post's own changes are its events.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from scheduler.db import session
from scheduler.models import Activity, ActivityKind, Campaign
from scheduler.queue import find_campaign


def record(s: Session, kind: ActivityKind, *, actor: str, message: str, now: datetime,
           campaign_id: int | None = None) -> None:
    """Add one entry, in the caller's transaction (it is written with what it records)."""
    s.add(Activity(at=now, kind=kind, actor=actor, campaign_id=campaign_id, message=message))


@dataclass(frozen=True)
class ActivityEntry:
    at: datetime
    kind: ActivityKind
    actor: str
    campaign: str | None      # None: not about one campaign (everything, an account, people)
    message: str


# Kept in the log (and the audit page) but not in the short "latest" lists of `status`
# and the overview: a team logging in every morning would push a pause out of them.
ROUTINE = (ActivityKind.LOGGED_IN,)


def recent_activity(engine: Engine, *, campaign: str | None = None, limit: int = 20,
                    routine: bool = False) -> list[ActivityEntry]:
    """The newest entries first: all of them, or those about one campaign and those
    about no campaign in particular (a pause of everything concerns every campaign).
    Logins (`ROUTINE`) only with `routine`."""
    with session(engine) as s:
        q = (sa.select(col(Activity.at), col(Activity.kind), col(Activity.actor),
                       col(Campaign.slug), col(Activity.message))
             .outerjoin(Campaign, col(Campaign.id) == Activity.campaign_id))
        if not routine:
            q = q.where(col(Activity.kind).not_in(list(ROUTINE)))
        if campaign is not None:
            cid = find_campaign(s, campaign).id
            q = q.where(col(Activity.campaign_id).is_(None) | (col(Activity.campaign_id) == cid))
        rows = s.execute(q.order_by(col(Activity.at).desc(), col(Activity.id).desc())
                         .limit(limit)).all()
    return [ActivityEntry(r[0], ActivityKind(r[1]), r[2], r[3], r[4]) for r in rows]
