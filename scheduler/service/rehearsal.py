"""Rehearsal: the whole campaign through the real tick code on a virtual clock.

A throw-away SQLite database, the dry-run adapter, and a `VirtualClock` that jumps from
one due time to the next: a four-day campaign plays in seconds, through exactly the
code the daemon runs (`Worker.tick`), and the report says what went out when and what
expired. The playing is `rehearsal_play`.

This module imports no database code, because a `tminus rehearse` process has most of
its start-up ahead of it there (SQLAlchemy, SQLModel, the tables, the daemon: about
half a second). Checking the campaign folder needs none of that: while this process
imports it, a forked child (`content.fork`, on the second core) loads and expands the
folder, and the parent takes the result. A child that fails in any way (a mistake in
the folder, say) gives nothing, and the parent checks the folder itself, so an error
reads exactly as it would without a child. A process that has the database code
already (a test, the benchmark's warm calls) has nothing to overlap: it checks inline.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from content.fork import Forked, forking_is_safe

if TYPE_CHECKING:
    from content.campaign import Campaign
    from content.expand import Expansion

PLAY = "scheduler.service.rehearsal_play"


@dataclass
class Sent:
    at: datetime
    due: datetime
    t_minus: str
    account: str
    platform: str
    text: str

    @property
    def late_seconds(self) -> float:
        return (self.at - self.due).total_seconds()


@dataclass
class Report:
    slug: str
    deadline: datetime
    timezone: ZoneInfo
    sent: list[Sent] = field(default_factory=list)
    expired: list[tuple[datetime, str, str]] = field(default_factory=list)  # due, account, reason
    other: dict[str, int] = field(default_factory=dict)
    after_deadline: int = 0
    ticks: int = 0
    # accounts of the file whose credentials `env` lacks: name -> variables (names only).
    # Nothing real is sent in a rehearsal: a note for the day it runs for real.
    missing_credentials: dict[str, list[str]] = field(default_factory=dict)


def rehearse(folder: Path, *, start: datetime | None = None,
             skip: set[str] | None = None, env: Mapping[str, str] | None = None) -> Report:
    """Plan, approve and play the campaign in `folder`. `start` defaults to one minute
    before its first post. Posts whose key is in `skip` are left unapproved (they show
    up as expired, as they would in real life)."""
    expanded = _overlapped(folder, start) if PLAY not in sys.modules and forking_is_safe() \
        else None
    play = importlib.import_module(PLAY)
    report: Report = play.play(folder, start=start, skip=skip, env=env, expanded=expanded)
    return report


def _overlapped(folder: Path, start: datetime | None) -> tuple[Campaign, Expansion] | None:
    """The child's load and expansion of the folder, made while this process imports the
    database code; None if the child failed, or no child could be had."""
    try:
        with Forked(functools.partial(_expand, folder, start)) as child:
            importlib.import_module(PLAY)   # meanwhile, on this core
            return child.result()
    except OSError:   # no process to be had (a limit on processes or memory): inline
        return None


def _expand(folder: Path, start: datetime | None) -> tuple[Campaign, Expansion]:
    """The child's share: the folder loaded and expanded as `planner.check` does it."""
    from content.campaign import load_campaign
    from content.expand import expand_campaign
    campaign = load_campaign(folder, now=start)
    return campaign, expand_campaign(campaign, now=start)
