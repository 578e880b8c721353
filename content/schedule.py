"""When posts go out: schedule specs expanded to concrete UTC instants.

A post's `schedule` is one of:

- `at = "T-4d"` / `"T-3h30m"` / `"T-90s"` — relative to the deadline;
  `at = 2017-01-19T09:00:00-05:00` — an absolute instant (a TOML datetime, or the same
  as a string); a naive local time is read in the campaign's timezone;
  `at = [...]` — several of those;
- `daily = "09:00"` (or a list of times) with `from` and `until` — every day at that
  local time in the range (both ends inclusive, `until` defaults to the deadline);
- `cron = "0 9,17 * * *"` with `from` and `until` — fire times computed by
  APScheduler's `CronTrigger` on local wall-clock time.

DST rule (one rule for daily, cron and naive absolute times): a local time that does
not exist (the clocks jump forward over it) is moved forward by the length of the jump
(02:30 becomes 03:30); a local time that happens twice (the clocks fall back) is taken
at its first occurrence. Both produce a warning naming the time.

Nothing is ever scheduled at or after the deadline: range expansions stop before it,
and an explicit `at` at or after it is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from content.limits import MAX_DURATION, MAX_DURATION_DIGITS, MAX_FIRES_PER_SCHEDULE, MAX_YEAR, MIN_YEAR

_REL = re.compile(
    r"^T\s*(?P<sign>[-+])\s*(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$"
)
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
_CLOCK = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)$")
_TEN_YEARS = f"{MAX_DURATION.days}d"


class ScheduleError(ValueError):
    """A schedule value is wrong; the message says what would be right."""


@dataclass(frozen=True)
class Fire:
    """One expanded time: the UTC instant, and a DST warning if the rule applied."""

    at: datetime
    warning: str | None = None


def parse_duration(value: str) -> timedelta:
    """`"3h"`, `"1d12h"`, `"90m"`, `"45s"` -> timedelta (must be > 0)."""
    m = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if not m or not any(m.groupdict().values()):
        raise ScheduleError(f"{_shown(value)} is not a duration; write e.g. \"3h\", \"1d12h\", \"90m\"")
    delta = _delta(m, value)
    if delta <= timedelta(0):
        raise ScheduleError(f"{value!r} is zero; a duration must be longer than that")
    return delta


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}… ({len(text):,} characters)"


def _delta(m: re.Match[str], value: str) -> timedelta:
    """The duration matched, if it is at most MAX_DURATION (ten years): a longer one is a
    typo, and "999999999d" would overflow every date it is added to."""
    digits = {k: v for k, v in m.groupdict().items() if k in "dhms" and v}
    if any(len(v) > MAX_DURATION_DIGITS for v in digits.values()):
        raise ScheduleError(f"{_shown(value)} is longer than {_TEN_YEARS} (ten years); "
                            "write e.g. \"4d\", \"3h30m\"")
    g = {k: int(v) for k, v in digits.items()}
    delta = timedelta(days=g.get("d", 0), hours=g.get("h", 0), minutes=g.get("m", 0),
                      seconds=g.get("s", 0))
    if delta > MAX_DURATION:
        raise ScheduleError(f"{_shown(value)} is longer than {_TEN_YEARS} (ten years); "
                            "write e.g. \"4d\", \"3h30m\"")
    return delta


def parse_relative(value: str) -> timedelta | None:
    """`"T-4d"` -> -4 days; `"T-0"` -> 0; None if `value` is not relative."""
    v = value.strip()
    if v in ("T-0", "T+0", "T0", "T"):
        return timedelta(0)
    m = _REL.match(v)
    if not m or not any(m.group(k) for k in "dhms"):
        return None
    delta = _delta(m, value)
    return -delta if m.group("sign") == "-" else delta


def localize(naive: datetime, tz: ZoneInfo) -> Fire:
    """A local wall-clock time -> UTC, by the DST rule in the module docstring."""
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    at = first.astimezone(UTC)
    roundtrip = at.astimezone(tz).replace(tzinfo=None)
    label = naive.strftime("%Y-%m-%d %H:%M")
    if roundtrip != naive:
        return Fire(at, f"{label} does not exist in {tz.key} (clocks go forward); "
                        f"moved to {roundtrip.strftime('%H:%M')}")
    if first.utcoffset() != second.utcoffset():
        return Fire(at, f"{label} happens twice in {tz.key} (clocks go back); "
                        f"using the first one")
    return Fire(at)


def parse_instant(value: Any, *, deadline: datetime, tz: ZoneInfo) -> Fire:
    """A relative spec, an aware or naive datetime (TOML or ISO string) -> a Fire, at most
    ten years (MAX_DURATION) from the deadline."""
    if isinstance(value, datetime):
        if not MIN_YEAR - 10 <= value.year <= MAX_YEAR + 10:
            raise ScheduleError(f"{value.isoformat()} is more than {_TEN_YEARS} (ten years) "
                                "from the deadline")
        fire = localize(value, tz) if value.tzinfo is None else Fire(value.astimezone(UTC))
        if abs(fire.at - deadline) > MAX_DURATION:
            raise ScheduleError(f"{value.isoformat()} is more than {_TEN_YEARS} (ten years) "
                                "from the deadline")
        return fire
    if isinstance(value, date):
        raise ScheduleError(f"{value} is a date without a time; write e.g. {value}T09:00:00")
    if isinstance(value, time):
        raise ScheduleError(f"{value:%H:%M} is a time of day without a date; write at = \"T-3h\", "
                            "a date-time like 2017-01-19T09:00:00, or daily = "
                            f"\"{value:%H:%M}\" with from = \"T-4d\" for every day")
    if not isinstance(value, str):
        raise ScheduleError(f"{_shown(value)} is not a time; write \"T-4d\", \"T-3h30m\" or an "
                            "ISO date-time like 2017-01-19T09:00:00-05:00")
    rel = parse_relative(value)
    if rel is not None:
        return Fire((deadline + rel).astimezone(UTC))
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ScheduleError(f"{_shown(value)} is not a time; write \"T-4d\", \"T-3h30m\" or an "
                            "ISO date-time like 2017-01-19T09:00:00-05:00") from None
    return parse_instant(parsed, deadline=deadline, tz=tz)


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    m = _CLOCK.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise ScheduleError(f"{_shown(value)} is not a time of day; write \"HH:MM\" like \"09:00\"")
    return time(int(m.group("h")), int(m.group("m")))


def _range(spec: dict[str, Any], *, deadline: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    if "from" not in spec:
        raise ScheduleError("a daily or cron schedule needs `from`, e.g. from = \"T-4d\"")
    start = parse_instant(spec["from"], deadline=deadline, tz=tz).at
    end = parse_instant(spec.get("until", "T-0"), deadline=deadline, tz=tz).at
    if end < start:
        raise ScheduleError("`until` is before `from`")
    return start, end


def _capped(fires: list[Fire]) -> list[Fire]:
    """Sorted, at most one fire per instant (two local times can meet when the DST
    rule moves one out of a gap: the post goes out once, with the warning kept)."""
    by_instant: dict[datetime, Fire] = {}
    for f in fires:
        seen = by_instant.get(f.at)
        if seen is None or (seen.warning is None and f.warning is not None):
            by_instant[f.at] = f
    fires = [by_instant[at] for at in sorted(by_instant)]
    if len(fires) > MAX_FIRES_PER_SCHEDULE:
        raise ScheduleError(f"expands to more than {MAX_FIRES_PER_SCHEDULE} posts; "
                            "narrow `from`/`until` or the cron expression")
    return fires


def expand(spec: Any, *, deadline: datetime, tz: ZoneInfo) -> list[Fire]:
    """Expand one schedule spec (see module docstring) to its fire times, sorted, all
    strictly before the deadline (a ScheduleError for an explicit `at` that is not)."""
    if isinstance(spec, str | datetime):
        spec = {"at": spec}
    if not isinstance(spec, dict):
        raise ScheduleError("write the schedule as { at = \"T-4d\" }, "
                            "{ daily = \"09:00\", from = \"T-4d\" } or "
                            "{ cron = \"0 9 * * *\", from = \"T-4d\" }")
    kinds = [k for k in ("at", "daily", "cron") if k in spec]
    if len(kinds) != 1:
        raise ScheduleError("give exactly one of `at`, `daily` or `cron`")
    allowed = {"at"} if kinds == ["at"] else {kinds[0], "from", "until"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ScheduleError(f"unknown schedule key(s) {', '.join(unknown)}; "
                            f"allowed here: {', '.join(sorted(allowed))}")
    kind = kinds[0]
    if kind == "at":
        values = spec["at"] if isinstance(spec["at"], list) else [spec["at"]]
        fires = [parse_instant(v, deadline=deadline, tz=tz) for v in values]
        for f in fires:
            if f.at >= deadline:
                raise ScheduleError(f"{f.at.astimezone(tz):%Y-%m-%d %H:%M %Z} is not before "
                                    "the deadline; nothing is sent at or after it")
        return sorted(fires, key=lambda f: f.at)
    start, end = _range(spec, deadline=deadline, tz=tz)
    if kind == "daily":
        return _capped(_daily(spec["daily"], start, end, deadline, tz))
    return _capped(_cron(spec["cron"], start, end, deadline, tz))


def _in_window(f: Fire, start: datetime, end: datetime, deadline: datetime) -> bool:
    return start <= f.at <= end and f.at < deadline


def _daily(value: Any, start: datetime, end: datetime, deadline: datetime,
           tz: ZoneInfo) -> list[Fire]:
    clocks = [_clock(v) for v in (value if isinstance(value, list) else [value])]
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    fires: list[Fire] = []
    while day <= last:
        for c in clocks:
            f = localize(datetime.combine(day, c), tz)
            if _in_window(f, start, end, deadline):
                fires.append(f)
        day += timedelta(days=1)
        if len(fires) > MAX_FIRES_PER_SCHEDULE:
            break
    return sorted(fires, key=lambda f: f.at)


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _standard_weekdays(expr: str) -> str:
    """APScheduler 3 numbers weekdays from Monday = 0; crontab from Sunday = 0 (and 7).
    Numeric items of the day-of-week field are rewritten as lists of day names, which
    both read the same way ("1-5" -> "mon,tue,wed,thu,fri", "*/2" -> "sun,tue,thu,sat")."""
    fields = expr.split()
    if len(fields) != 5:
        raise ScheduleError(f"{_shown(expr)} is not a valid cron expression: it has "
                            f"{len(fields)} field(s), not 5 (minute hour day month weekday, "
                            "e.g. \"0 12 * * mon-fri\")")
    items = []
    for item in fields[4].split(","):
        m = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", item)
        if not m or (m.group(1) == "*" and not m.group(3)):
            items.append(item)   # names, or a plain "*": the same in both
            continue
        if any(g and len(g) > 2 for g in m.groups()):
            raise ScheduleError(f"day of week {_shown(item)} in {_shown(expr)}: use 0-7 (0 and 7 "
                                "are Sunday) or names like mon-fri")
        first = 0 if m.group(1) == "*" else int(m.group(1))
        last = int(m.group(2)) if m.group(2) else (6 if m.group(1) == "*" or m.group(3) else first)
        step = int(m.group(3) or 1)
        if first > 7 or last > 7 or step < 1:
            raise ScheduleError(f"day of week {item!r} in {expr!r}: use 0-7 (0 and 7 are "
                                "Sunday) or names like mon-fri")
        if last < first:
            raise ScheduleError(f"day of week {item!r} in {expr!r} runs backwards; write the "
                                f"smaller day first ({last}-{first}) or list the days, e.g. "
                                "fri,sat,sun,mon")
        items.extend(_WEEKDAYS[n] for n in range(first, last + 1, step))
    fields[4] = ",".join(dict.fromkeys(items))
    return " ".join(fields)


def _cron(expr: Any, start: datetime, end: datetime, deadline: datetime,
          tz: ZoneInfo) -> list[Fire]:
    if not isinstance(expr, str) or len(expr) > 200:
        raise ScheduleError(f"{_shown(expr)} is not a cron expression; write e.g. \"0 9 * * *\"")
    # CronTrigger walks wall-clock time in UTC (which has no DST), so every local time
    # the expression names comes out once; our own DST rule then places it.
    # imported here: most campaigns have no cron schedule
    from apscheduler.triggers.cron import CronTrigger
    standard = _standard_weekdays(expr)
    try:
        trigger = CronTrigger.from_crontab(standard, timezone=UTC)
    except (ValueError, OverflowError) as e:
        raise ScheduleError(f"{_shown(expr)} is not a valid cron expression ({e})") from None
    wall = start.astimezone(tz).replace(tzinfo=None) - timedelta(hours=3)
    wall_end = end.astimezone(tz).replace(tzinfo=None) + timedelta(hours=3)
    cursor = wall.replace(tzinfo=UTC)
    prev: datetime | None = None
    fires: list[Fire] = []
    while True:
        nxt = trigger.get_next_fire_time(prev, cursor)
        if nxt is None or nxt.replace(tzinfo=None) > wall_end:
            break
        f = localize(nxt.replace(tzinfo=None), tz)
        if _in_window(f, start, end, deadline):
            fires.append(f)
        if len(fires) > MAX_FIRES_PER_SCHEDULE:
            break
        prev = nxt
        cursor = nxt + timedelta(microseconds=1)
    return sorted(fires, key=lambda f: f.at)
