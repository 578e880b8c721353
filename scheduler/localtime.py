"""A time as a person reads it: in its campaign's timezone, with the abbreviation.

One formatter for every text a person reads that is written once and read later (an
event's reason, an alert) or drawn by a page. A time of no campaign (`tz=None`) is in
this machine's local timezone (`TZ`), as `scheduler.service.zones` explains.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def local(at: datetime, tz: str | ZoneInfo | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """`at` in `tz` as `fmt` followed by the zone's abbreviation ("CST", "EDT")."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    # no zone: astimezone() takes the machine's offset at that instant, DST included
    shown = at.astimezone(zone)
    return f"{shown:{fmt}} {shown.tzname()}"


def when(at: datetime, tz: str | ZoneInfo | None) -> str:
    """A post's or a deadline's time with its day: "Mon 16 Jan 2017 09:00 EST"."""
    return local(at, tz, "%a %d %b %Y %H:%M")
