"""Use cases on campaign folders: validate, plan, preview, rehearse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from scheduler import preview as pv
from scheduler.planner import PlanReport, check, plan
from scheduler.service.rehearsal import Report, rehearse

__all__ = ["PlanReport", "Report", "Validation", "plan", "preview", "rehearse", "validate"]


@dataclass(frozen=True)
class Validation:
    slug: str
    posts: int
    accounts: int
    deadline: datetime
    warnings: list[str]


def validate(folder: Path, *, now: datetime) -> Validation:
    """Check a campaign folder as `plan` would, writing nothing. Raises `CampaignErrors`
    naming every problem."""
    campaign, expansion = check(folder, now=now)
    warnings = list(expansion.warnings)
    warnings += [f"{p.account} {p.due_at:%Y-%m-%d %H:%M} UTC: {w}"
                 for p in expansion.posts for w in p.warnings]
    return Validation(campaign.slug, len(expansion.posts), len(campaign.accounts),
                      campaign.deadline, warnings)


def preview(engine: Engine | None, target: str | None, *, as_of: datetime | None = None
            ) -> list[pv.Timeline]:
    """The timeline of every post: of a campaign folder (`target` is a folder: not
    planned, nothing written; `as_of` checks it as if it were then), else of the planned
    campaign with that slug (all campaigns when None)."""
    if target is not None and Path(target).is_dir():
        spec, expansion = check(Path(target), now=as_of)
        return [pv.from_expansion(spec, expansion)]
    assert engine is not None, "a planned campaign is previewed from the database"
    return pv.from_queue(engine, target)
