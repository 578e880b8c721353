"""Use cases on campaign folders: validate, plan, preview, rehearse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from content.paths import is_folder
from scheduler import preview as pv
from scheduler.models import Campaign
from scheduler.planner import PlanReport, check, instance_limits, known_platforms, plan
from scheduler.service.rehearsal import Report, rehearse

__all__ = ["PlanReport", "Report", "Validation", "plan", "preview", "rehearse", "validate"]


@dataclass(frozen=True)
class Validation:
    slug: str
    posts: int
    accounts: int
    deadline: datetime
    timezone: str
    warnings: list[str]
    with_database: bool      # also checked against the accounts the database knows


def validate(folder: Path, *, now: datetime, engine: Engine | None = None) -> Validation:
    """Check a campaign folder as `plan` would, writing nothing: with the database
    (`engine`, when there is one), also against the accounts it knows and the length
    limits their instances gave. Raises `CampaignErrors` naming every problem."""
    limits = instance_limits(engine) if engine is not None else None
    known = known_platforms(engine) if engine is not None else None
    campaign, expansion = check(folder, now=now, limits=limits, known=known)
    return Validation(campaign.slug, len(expansion.posts), len(campaign.accounts),
                      campaign.deadline, campaign.timezone.key, list(expansion.warnings),
                      engine is not None)


def preview(engine: Engine | None, target: str | None, *, as_of: datetime | None = None
            ) -> list[pv.Timeline]:
    """The timeline of every post: of a campaign folder (`target` is a folder: not
    planned, nothing written; `as_of` checks it as if it were then; with the database,
    when there is one, it says whether the slug is planned), else of the planned
    campaign with that slug (all campaigns when None)."""
    if target is not None and is_folder(target):
        spec, expansion = check(Path(target), now=as_of)
        return [pv.from_expansion(spec, expansion,
                                  in_queue=engine is not None and _planned(engine, spec.slug))]
    assert engine is not None, "a planned campaign is previewed from the database"
    return pv.from_queue(engine, target)


def _planned(engine: Engine, slug: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(col(Campaign.id)).where(col(Campaign.slug) == slug)
                            ).first() is not None
