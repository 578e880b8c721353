"""How much time is left: the countdown values templates print.

All values are computed for the post's scheduled time, not for the moment of
planning, so "4 days" is true when the post goes out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

_UNITS = {
    "en": {"day": ("day", "days"), "hour": ("hour", "hours"),
           "minute": ("minute", "minutes"), "second": ("second", "seconds"), "and": " "},
    "es": {"day": ("día", "días"), "hour": ("hora", "horas"),
           "minute": ("minuto", "minutos"), "second": ("segundo", "segundos"), "and": " y "},
}
LANGUAGES = tuple(_UNITS)


def _parts(seconds: int) -> list[tuple[int, str]]:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return [(days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second")]


def time_left(due: datetime, deadline: datetime, lang: str = "en") -> str:
    """The two largest non-zero units, floored: "4 days", "3 days 12 hours",
    "3 hours 30 minutes", "45 seconds"; Spanish with lang="es" ("3 días y 12 horas")."""
    if lang not in _UNITS:
        raise ValueError(f"no countdown words for language {lang!r}; have {', '.join(LANGUAGES)}")
    words = _UNITS[lang]
    seconds = max(0, int((deadline - due).total_seconds()))
    if seconds == 0:
        return {"en": "no time", "es": "nada de tiempo"}[lang]
    parts = [(n, unit) for n, unit in _parts(seconds) if n]
    # two adjacent units at most: "3 days 12 hours", never "3 days 5 seconds"
    first_index = [u for _, u in _parts(seconds)].index(parts[0][1])
    shown = [parts[0]]
    if len(parts) > 1 and parts[1][1] == ["day", "hour", "minute", "second"][first_index + 1]:
        shown.append(parts[1])
    texts = []
    for n, unit in shown:
        singular, plural = words[unit]
        texts.append(f"{n} {singular if n == 1 else plural}")
    return str(words["and"]).join(texts)


def countdown_context(due: datetime, deadline: datetime) -> dict[str, object]:
    """The countdown variables for a post due at `due`."""
    seconds = max(0, int((deadline - due).total_seconds()))
    return {
        "days_left": seconds // 86400,
        "hours_left": seconds // 3600,
        "minutes_left": seconds // 60,
        "seconds_left": seconds,
        "time_left": time_left(due, deadline),
    }


def duration(delta: timedelta, *, spaced: bool = False, days: bool = True) -> str:
    """A span of time in its largest units, for people to read at a glance (the one
    formatter of durations): "4d3h", "3h30m", "45s"; with `spaced`, as a window reads in
    a sentence: "24 h", "15 min", "4 d 3 h"; without `days`, hours are the largest unit
    (a rate window of "24 h"). Seconds show only under a day."""
    seconds = abs(int(delta.total_seconds()))
    names = ("d", "h", "min", "s") if spaced else ("d", "h", "m", "s")
    values = [n for n, _ in _parts(seconds)]
    if not days:
        values = [0, values[0] * 24 + values[1], *values[2:]]
    shown = [f"{n}{' ' if spaced else ''}{name}" for n, name in zip(values, names, strict=True)
             if n and not (name == "s" and seconds >= 86400)]
    return (" " if spaced else "").join(shown) or ("0 s" if spaced else "0")


def about(delta: timedelta) -> str:
    """A span between now and a time, rounded as a person says it: seconds only under
    two minutes ("45s", "1m30s"), then to the minute under a day ("17h56m", "3h"), then
    to the hour ("2d 3h", "4d"). `duration` is exact; this is for "in …" and "… ago",
    where the seconds of a time hours away are noise that changes at every look."""
    seconds = abs(delta.total_seconds())
    if seconds < 120:
        return duration(timedelta(seconds=int(seconds)))
    minutes = int(seconds / 60 + 0.5)      # half up: 2m30s is 3m
    if minutes < 24 * 60:
        hours, mins = divmod(minutes, 60)
        return f"{hours}h{mins}m" if hours and mins else f"{hours}h" if hours else f"{mins}m"
    days, hours = divmod(int(seconds / 3600 + 0.5), 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def t_minus(delta: timedelta) -> str:
    """A post's place before the deadline, `delta` = deadline - its time: "T-4d3h",
    "T-45m"; "T+5m" once past it."""
    return ("T-" if delta >= timedelta(0) else "T+") + duration(delta)
