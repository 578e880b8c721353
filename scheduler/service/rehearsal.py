"""Rehearsal: the whole campaign through the real tick code on a virtual clock.

A throw-away SQLite database, the dry-run adapter, and a `VirtualClock` that jumps from
one due time to the next: a four-day campaign plays in seconds, through exactly the
code the daemon runs (`Worker.tick`), and the report says what went out when and what
expired. The playing is `rehearsal_play`.

This module imports no database code: a `tminus rehearse` process spends most of its
CPU importing it (SQLAlchemy, the tables, the daemon) and playing on it, and the rest
importing the command line (typer, rich) and checking the campaign folder (TOML,
Jinja2, the length rules), which need no database. So the two halves run side by side
on two cores: the console script calls `start_early` before it imports the command
line, which forks a child (`content.fork`) that imports the database code and makes
the throw-away database while this process imports typer and checks the folder; the
checked folder goes to the child through a pipe, the child plans, approves and plays
it, and its `Report` comes back. This process never imports the database code.
Whatever goes wrong in the child (or no child could be had, or the check found
mistakes), the campaign is played here instead, exactly as without a child, so an
error reads the same. Any other caller (a test, the benchmark's calls) plays here.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import importlib
import os
import pickle
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from content.errors import TminusError
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
    player = _player()
    expanded = None
    if player is not None:
        try:
            expanded = _expanded(folder, start)
            if expanded is not None and not expanded[1].errors:
                report = player.play({"folder": folder, "start": start, "skip": skip,
                                          "env": env, "expanded": expanded})
                if report is not None:
                    return report
        finally:
            player.close()
    # here: no child, or it failed, or the folder has mistakes (the check says them)
    play = importlib.import_module(PLAY)
    here: Report = play.play(folder, start=start, skip=skip, env=env, expanded=expanded)
    return here


_early: _Player | None = None


def start_early(args: Sequence[str]) -> None:
    """The console script's first step for a command line that is `rehearse FOLDER`
    (before it imports typer): the child that plays it is started now, so that it
    imports the database code while this process imports the command line. Any other
    command line, or no child to be had: nothing (the rehearsal does without)."""
    global _early
    if (_early is not None or len(args) != 2 or args[0] != "rehearse"
            or args[1].startswith("-") or not forking_is_safe()):
        return
    # What both halves import is imported once, before the fork: the campaign's code
    # (this process checks the folder with it, the child reads the checked folder with
    # it) and the settings. The child is as far along as if it had imported them itself.
    importlib.import_module("content.expand")
    importlib.import_module("content.campaign")
    importlib.import_module("scheduler.settings")
    with contextlib.suppress(OSError):
        _early = _Player()
        # a command line that never rehearses (a usage mistake) ends the child at exit
        atexit.register(_early.close)


def _player() -> _Player | None:
    """The child `start_early` started, once; None where the rehearsal is played here."""
    global _early
    player, _early = _early, None
    return player


def _expanded(folder: Path, start: datetime | None) -> tuple[Campaign, Expansion] | None:
    """The folder loaded and expanded at `start`, as `planner.check` begins (the rest of
    the check, which needs the database code, is the child's). A mistake that stops
    loading or expanding is raised as it is: `check` would raise the very same from the
    very same calls. Anything else unexpected: None, and the check is made here."""
    try:
        return _expand(folder, start)
    except TminusError:
        raise
    except Exception:
        return None


def _expand(folder: Path, start: datetime | None) -> tuple[Campaign, Expansion]:
    """Load and expand the folder as `planner.check` does it."""
    from content.campaign import load_campaign
    from content.expand import expand_campaign
    campaign = load_campaign(folder, now=start)
    return campaign, expand_campaign(campaign, now=start)


class _Player:
    """A forked child that imports the database code and makes the throw-away database
    (`rehearsal_play.Stage`) as soon as it starts, then waits for its job (the folder,
    checked here) and plays it; `play` gives its `Report`, or None if the child failed.
    The temporary folder is this process's: made before the fork, removed by `close`
    whatever became of the child."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="tminus-rehearse-"))
        read, job = os.pipe()
        self._job: int | None = job
        self.child: Forked[Report] = Forked(functools.partial(
            _play_when_told, self.tmp, read, job))
        try:
            self.child.__enter__()
        except BaseException:
            self.close()
            raise
        finally:
            os.close(read)

    def play(self, job: dict[str, object]) -> Report | None:
        assert self._job is not None
        try:
            with os.fdopen(self._job, "wb") as pipe:
                self._job = None
                pickle.dump(job, pipe, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:   # the child is gone
            return None
        return self.child.result()

    def close(self) -> None:
        """End the child (if it is still there) and remove the temporary folder; again:
        nothing."""
        if self._job is not None:
            os.close(self._job)
            self._job = None
        self.child.__exit__(None, None, None)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _play_when_told(tmp: Path, read: int, write: int) -> Report:
    """The child's share: the database code, the database, then the job."""
    os.close(write)          # the parent's end: gone with the parent, so no job is EOF
    gc.disable()             # its garbage is bounded, and it leaves with os._exit
    play = importlib.import_module(PLAY)
    stage = play.Stage(tmp)
    with os.fdopen(read, "rb") as pipe:
        job = pickle.load(pipe)
    report: Report = stage.play(**job)
    return report
