"""Tests of content.schedule: schedule specs expanded to UTC instants.

Every expected instant is worked out by hand from the zone rules, e.g. 09:00 in
America/New_York in January (EST, UTC-5) is 14:00 UTC; in June (EDT, UTC-4) 13:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from content import schedule
from content.schedule import (
    MAX_FIRES_PER_SCHEDULE,
    Fire,
    ScheduleError,
    expand,
    localize,
    parse_duration,
    parse_instant,
    parse_relative,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
# Noon Eastern on 20 Jan 2017 (EST, UTC-5) is 17:00 UTC.
DEADLINE = datetime(2017, 1, 20, 17, 0, tzinfo=UTC)
# A deadline well after both 2017 DST changes in New York, for the DST tests.
LATE_DEADLINE = datetime(2017, 12, 1, 17, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def instants(fires: list[Fire]) -> list[datetime]:
    return [f.at for f in fires]


def run(spec: object, deadline: datetime = DEADLINE, tz: ZoneInfo = NY) -> list[Fire]:
    return expand(spec, deadline=deadline, tz=tz)


# --------------------------------------------------------------------- durations


@pytest.mark.parametrize(("text", "expected"), [
    ("3h", timedelta(hours=3)),
    ("1d12h", timedelta(hours=36)),
    ("90m", timedelta(minutes=90)),
    ("45s", timedelta(seconds=45)),
    ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ("  2h  ", timedelta(hours=2)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "3", "h", "3x", "-3h", "1.5h", "3 h", "h3", "3h3d", "T-3h"])
def test_parse_duration_rejects_text_that_is_not_a_duration(bad: str) -> None:
    with pytest.raises(ScheduleError, match="not a duration") as info:
        parse_duration(bad)
    assert repr(bad) in str(info.value)
    assert "3h" in str(info.value)  # says what would be right


@pytest.mark.parametrize("bad", [3, None, 1.5, ["3h"]])
def test_parse_duration_rejects_non_strings(bad: object) -> None:
    with pytest.raises(ScheduleError, match="not a duration"):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("zero", ["0s", "0h", "0d0h0m0s"])
def test_parse_duration_rejects_zero(zero: str) -> None:
    # The docstring promises "must be > 0": a zero `expires` would expire every post
    # the moment it is due, a zero budget window divides by zero.
    with pytest.raises(ScheduleError):
        parse_duration(zero)


# --------------------------------------------------------------- relative specs


@pytest.mark.parametrize(("text", "expected"), [
    ("T-4d", timedelta(days=-4)),
    ("T-3h30m", -timedelta(hours=3, minutes=30)),
    ("T-90s", timedelta(seconds=-90)),
    ("T-4d3h", -timedelta(days=4, hours=3)),
    ("T+1h", timedelta(hours=1)),
    ("T - 2h", timedelta(hours=-2)),
    ("T-0", timedelta(0)),
    ("T+0", timedelta(0)),
])
def test_parse_relative(text: str, expected: timedelta) -> None:
    assert parse_relative(text) == expected


@pytest.mark.parametrize("text", ["2017-01-19T09:00:00", "4d", "T-", "T-4x", "t-4d", "hello"])
def test_parse_relative_returns_none_for_other_text(text: str) -> None:
    assert parse_relative(text) is None


@pytest.mark.parametrize(("spec", "expected"), [
    ("T-4d", utc(2017, 1, 16, 17, 0)),
    ("T-3h30m", utc(2017, 1, 20, 13, 30)),
    ("T-90s", utc(2017, 1, 20, 16, 58, 30)),
    ("T-4d3h", utc(2017, 1, 16, 14, 0)),   # 09:00 EST on the Monday
])
def test_relative_at(spec: str, expected: datetime) -> None:
    fires = run({"at": spec})
    assert instants(fires) == [expected]
    assert fires[0].warning is None
    assert fires[0].at.utcoffset() == timedelta(0)


def test_bare_string_schedule_is_an_at() -> None:
    assert instants(run("T-1h")) == [utc(2017, 1, 20, 16, 0)]


def test_t_minus_zero_is_the_deadline_and_therefore_refused() -> None:
    assert parse_instant("T-0", deadline=DEADLINE, tz=NY).at == DEADLINE
    with pytest.raises(ScheduleError, match="not before the deadline"):
        run({"at": "T-0"})


# -------------------------------------------------------------- absolute instants


def test_aware_string_instant() -> None:
    assert instants(run({"at": "2017-01-19T09:00:00-05:00"})) == [utc(2017, 1, 19, 14, 0)]


def test_aware_instant_in_another_offset_is_converted() -> None:
    # 09:00 in Berlin (CET, UTC+1) is 08:00 UTC, whatever the campaign's zone.
    assert instants(run({"at": "2017-01-19T09:00:00+01:00"})) == [utc(2017, 1, 19, 8, 0)]


def test_aware_toml_datetime() -> None:
    value = datetime(2017, 1, 19, 9, 0, tzinfo=ZoneInfo("America/Chicago"))  # CST, UTC-6
    assert instants(run({"at": value})) == [utc(2017, 1, 19, 15, 0)]


def test_naive_string_is_read_in_the_campaign_timezone() -> None:
    assert instants(run({"at": "2017-01-19T09:00:00"})) == [utc(2017, 1, 19, 14, 0)]
    assert instants(run({"at": "2017-01-19T09:00:00"}, tz=BERLIN)) == [utc(2017, 1, 19, 8, 0)]


def test_naive_toml_datetime_is_read_in_the_campaign_timezone() -> None:
    assert instants(run({"at": datetime(2017, 1, 19, 9, 0)})) == [utc(2017, 1, 19, 14, 0)]
    # In summer New York is UTC-4.
    fire = parse_instant(datetime(2017, 7, 4, 9, 0), deadline=LATE_DEADLINE, tz=NY)
    assert fire.at == utc(2017, 7, 4, 13, 0)
    assert fire.warning is None


def test_naive_instant_in_the_spring_gap_moves_forward_with_a_warning() -> None:
    fire = parse_instant("2017-03-12T02:30:00", deadline=LATE_DEADLINE, tz=NY)
    assert fire.at == utc(2017, 3, 12, 7, 30)            # 03:30 EDT
    assert fire.at.astimezone(NY).strftime("%H:%M %Z") == "03:30 EDT"
    assert fire.warning is not None
    assert "2017-03-12 02:30" in fire.warning and "03:30" in fire.warning


def test_naive_instant_in_the_fall_overlap_takes_the_first_with_a_warning() -> None:
    fire = parse_instant("2017-11-05T01:30:00", deadline=LATE_DEADLINE, tz=NY)
    assert fire.at == utc(2017, 11, 5, 5, 30)            # 01:30 EDT, not 01:30 EST (06:30)
    assert fire.warning is not None
    assert "2017-11-05 01:30" in fire.warning and "twice" in fire.warning


def test_aware_instants_never_warn_even_in_a_dst_change() -> None:
    fire = parse_instant("2017-11-05T01:30:00-05:00", deadline=LATE_DEADLINE, tz=NY)
    assert fire.at == utc(2017, 11, 5, 6, 30)            # the second 01:30, as written
    assert fire.warning is None


def test_localize_ordinary_time_has_no_warning() -> None:
    assert localize(datetime(2017, 1, 19, 9, 0), NY) == Fire(utc(2017, 1, 19, 14, 0))


@pytest.mark.parametrize("bad", ["tomorrow", "2017-13-01T09:00:00", "T-4x", "9am"])
def test_unreadable_instant(bad: str) -> None:
    with pytest.raises(ScheduleError, match="is not a time") as info:
        run({"at": bad})
    assert repr(bad) in str(info.value)


def test_date_without_time_is_refused() -> None:
    with pytest.raises(ScheduleError, match="date without a time"):
        run({"at": date(2017, 1, 19)})


@pytest.mark.parametrize("bad", [5, 1.5, True, {"x": 1}])
def test_non_time_values_are_refused(bad: object) -> None:
    with pytest.raises(ScheduleError):
        run({"at": bad})


# ------------------------------------------------------------------- `at` lists


def test_at_list_is_sorted_and_mixes_kinds() -> None:
    fires = run({"at": ["T-1h", "2017-01-19T09:00:00-05:00", "T-5h", "2017-01-18T09:00:00"]})
    assert instants(fires) == [
        utc(2017, 1, 18, 14, 0),
        utc(2017, 1, 19, 14, 0),
        utc(2017, 1, 20, 12, 0),
        utc(2017, 1, 20, 16, 0),
    ]


@pytest.mark.parametrize("late", [
    "T-0", "T+1s", "T+1h",
    "2017-01-20T12:00:00-05:00",          # exactly the deadline
    "2017-01-20T17:00:00+00:00",          # the same instant in UTC
    "2017-01-20T12:00:01",                # naive, one second after
])
def test_at_at_or_after_the_deadline_is_an_error(late: str) -> None:
    with pytest.raises(ScheduleError, match="not before the deadline"):
        run({"at": late})


def test_one_late_time_in_an_at_list_fails_the_whole_list() -> None:
    with pytest.raises(ScheduleError, match="not before the deadline"):
        run({"at": ["T-2h", "T+1m"]})


def test_one_second_before_the_deadline_is_fine() -> None:
    assert instants(run({"at": "T-1s"})) == [utc(2017, 1, 20, 16, 59, 59)]


# ------------------------------------------------------------------------- daily


def test_daily_from_until_inclusive_both_ends() -> None:
    # from T-3d = Tue 17 Jan 12:00 EST, until T-1d = Thu 19 Jan 12:00 EST;
    # 12:00 daily lands exactly on both ends, and both count.
    fires = run({"daily": "12:00", "from": "T-3d", "until": "T-1d"})
    assert instants(fires) == [utc(2017, 1, d, 17, 0) for d in (17, 18, 19)]
    assert all(f.warning is None for f in fires)


def test_daily_times_before_from_and_after_until_are_left_out() -> None:
    # from 12:00 on the 17th: 09:00 that day is before it; until 12:00 on the 19th:
    # 13:00 that day is after it.
    fires = run({"daily": ["09:00", "13:00"], "from": "T-3d", "until": "T-1d"})
    assert instants(fires) == [
        utc(2017, 1, 17, 18, 0),   # 13:00 EST
        utc(2017, 1, 18, 14, 0),   # 09:00
        utc(2017, 1, 18, 18, 0),   # 13:00
        utc(2017, 1, 19, 14, 0),   # 09:00
    ]


def test_daily_like_the_potuspardon_example() -> None:
    # from T-4d3h = Mon 16 Jan 09:00, until T-1d = Thu 19 Jan 12:00: Mon..Thu at 09:00.
    fires = run({"daily": "09:00", "from": "T-4d3h", "until": "T-1d"})
    assert instants(fires) == [utc(2017, 1, d, 14, 0) for d in (16, 17, 18, 19)]


def test_daily_until_defaults_to_the_deadline_which_is_excluded() -> None:
    # 12:00 on the 20th *is* the deadline: nothing goes out at it.
    fires = run({"daily": "12:00", "from": "T-2d"})
    assert instants(fires) == [utc(2017, 1, 18, 17, 0), utc(2017, 1, 19, 17, 0)]


def test_daily_until_after_the_deadline_still_stops_before_it() -> None:
    fires = run({"daily": ["11:59", "12:00", "13:00"], "from": "T-1d", "until": "T+2d"})
    assert instants(fires) == [
        utc(2017, 1, 19, 17, 0),   # 12:00 on the 19th (= from, inclusive)
        utc(2017, 1, 19, 18, 0),   # 13:00 on the 19th
        utc(2017, 1, 20, 16, 59),  # 11:59 on the 20th, one minute before the deadline
    ]
    assert all(f.at < DEADLINE for f in fires)


def test_daily_accepts_absolute_from_and_until() -> None:
    fires = run({"daily": "9:05", "from": "2017-01-18T00:00:00", "until": "2017-01-19T23:00:00-05:00"})
    assert instants(fires) == [utc(2017, 1, 18, 14, 5), utc(2017, 1, 19, 14, 5)]


def test_daily_in_another_timezone() -> None:
    # 09:00 in Berlin in January is 08:00 UTC.
    fires = run({"daily": "09:00", "from": "T-2d"}, tz=BERLIN)
    assert instants(fires) == [utc(2017, 1, 19, 8, 0), utc(2017, 1, 20, 8, 0)]


def test_daily_spring_forward_gap() -> None:
    # 02:30 does not exist on Sun 12 Mar 2017 in New York: 03:30 EDT = 07:30 UTC.
    fires = run({"daily": "02:30", "from": "2017-03-11T00:00:00", "until": "2017-03-13T23:00:00"},
                deadline=LATE_DEADLINE)
    assert instants(fires) == [
        utc(2017, 3, 11, 7, 30),   # 02:30 EST
        utc(2017, 3, 12, 7, 30),   # moved to 03:30 EDT
        utc(2017, 3, 13, 6, 30),   # 02:30 EDT
    ]
    assert fires[0].warning is None and fires[2].warning is None
    warning = fires[1].warning
    assert warning is not None
    assert "2017-03-12 02:30" in warning and "03:30" in warning
    assert "America/New_York" in warning


def test_daily_fall_back_overlap() -> None:
    # 01:30 happens twice on Sun 5 Nov 2017: the first (EDT) is 05:30 UTC.
    fires = run({"daily": "01:30", "from": "2017-11-04T00:00:00", "until": "2017-11-06T23:00:00"},
                deadline=LATE_DEADLINE)
    assert instants(fires) == [
        utc(2017, 11, 4, 5, 30),   # 01:30 EDT
        utc(2017, 11, 5, 5, 30),   # first 01:30, EDT
        utc(2017, 11, 6, 6, 30),   # 01:30 EST
    ]
    assert [f.warning is not None for f in fires] == [False, True, False]
    assert "2017-11-05 01:30" in (fires[1].warning or "")


@pytest.mark.parametrize("bad", ["9am", "24:00", "09:60", "9:5", "0900", 9])
def test_daily_bad_clock(bad: object) -> None:
    with pytest.raises(ScheduleError, match="time of day"):
        run({"daily": bad, "from": "T-2d"})


# -------------------------------------------------------------------------- cron


def test_cron_weekdays_by_number_like_crontab() -> None:
    # crontab: day-of-week 1-5 is Monday to Friday. From Fri 13 Jan 12:00 EST to the
    # deadline, Fri 20 Jan 12:00 EST, at 09:00 (14:00 UTC) and 17:00 (22:00 UTC).
    fires = run({"cron": "0 9,17 * * 1-5", "from": "T-7d"})
    expected = [utc(2017, 1, 13, 22, 0)]                       # Fri 17:00 (09:00 is before from)
    for d in (16, 17, 18, 19):                                 # Mon..Thu; no Sat 14 / Sun 15
        expected += [utc(2017, 1, d, 14, 0), utc(2017, 1, d, 22, 0)]
    expected += [utc(2017, 1, 20, 14, 0)]                      # Fri 09:00; 17:00 is after the deadline
    assert instants(fires) == expected


def test_cron_sunday_is_zero_like_crontab() -> None:
    # 15 Jan 2017 is the only Sunday between T-7d and the deadline.
    fires = run({"cron": "0 10 * * 0", "from": "T-7d"})
    assert instants(fires) == [utc(2017, 1, 15, 15, 0)]


@pytest.mark.parametrize(("dow", "days"), [
    ("7", [15]),                    # crontab also writes Sunday as 7
    ("6,0", [14, 15]),              # Sat, Sun
    ("5-7", [13, 14, 15]),          # Fri 13 (13:00 is after from), Sat, Sun
    ("*/3", [14, 15, 18]),          # 0, 3, 6 = Sun, Wed, Sat
    ("*", [13, 14, 15, 16, 17, 18, 19]),
])
def test_cron_weekday_numbers(dow: str, days: list[int]) -> None:
    # 13:00 EST = 18:00 UTC; from Fri 13 Jan 12:00 EST, deadline Fri 20 Jan 12:00 EST.
    fires = run({"cron": f"0 13 * * {dow}", "from": "T-7d"})
    assert instants(fires) == [utc(2017, 1, d, 18, 0) for d in days]


@pytest.mark.parametrize("dow", ["8", "1-9"])
def test_cron_weekday_number_out_of_range(dow: str) -> None:
    with pytest.raises(ScheduleError) as info:
        run({"cron": f"0 13 * * {dow}", "from": "T-7d"})
    assert repr(f"0 13 * * {dow}") in str(info.value)


def test_cron_weekdays_by_name() -> None:
    fires = run({"cron": "0 9 * * mon-fri", "from": "T-7d"})
    assert instants(fires) == [utc(2017, 1, d, 14, 0) for d in (16, 17, 18, 19, 20)]


def test_cron_from_until_inclusive_and_nothing_at_the_deadline() -> None:
    fires = run({"cron": "0 12 * * *", "from": "T-2d", "until": "T-1d"})
    assert instants(fires) == [utc(2017, 1, 18, 17, 0), utc(2017, 1, 19, 17, 0)]
    fires = run({"cron": "0 12 * * *", "from": "T-2d"})        # until = deadline, excluded
    assert instants(fires) == [utc(2017, 1, 18, 17, 0), utc(2017, 1, 19, 17, 0)]


def test_cron_every_30_minutes_in_the_last_two_hours() -> None:
    fires = run({"cron": "*/30 * * * *", "from": "T-2h"})
    assert instants(fires) == [utc(2017, 1, 20, 15, 0), utc(2017, 1, 20, 15, 30),
                               utc(2017, 1, 20, 16, 0), utc(2017, 1, 20, 16, 30)]


def test_cron_spring_forward_gap() -> None:
    fires = run({"cron": "30 2 * * *", "from": "2017-03-11T00:00:00", "until": "2017-03-13T23:00:00"},
                deadline=LATE_DEADLINE)
    assert instants(fires) == [utc(2017, 3, 11, 7, 30), utc(2017, 3, 12, 7, 30),
                               utc(2017, 3, 13, 6, 30)]
    assert [f.warning is not None for f in fires] == [False, True, False]
    assert "2017-03-12 02:30" in (fires[1].warning or "")
    assert "03:30" in (fires[1].warning or "")


def test_cron_fall_back_overlap_fires_once_at_the_first() -> None:
    fires = run({"cron": "30 1 * * *", "from": "2017-11-04T00:00:00", "until": "2017-11-06T23:00:00"},
                deadline=LATE_DEADLINE)
    assert instants(fires) == [utc(2017, 11, 4, 5, 30), utc(2017, 11, 5, 5, 30),
                               utc(2017, 11, 6, 6, 30)]
    assert [f.warning is not None for f in fires] == [False, True, False]


def test_cron_hourly_through_the_fall_back_names_each_local_hour_once() -> None:
    # 00:00 EDT, 01:00 (first, EDT), 02:00 EST, 03:00 EST; 01:00 EST (06:00 UTC) is the
    # repeat of a local time already used.
    fires = run({"cron": "0 * * * *", "from": "2017-11-05T00:00:00-04:00",
                 "until": "2017-11-05T03:00:00-05:00"}, deadline=LATE_DEADLINE)
    assert instants(fires) == [utc(2017, 11, 5, 4, 0), utc(2017, 11, 5, 5, 0),
                               utc(2017, 11, 5, 7, 0), utc(2017, 11, 5, 8, 0)]


def test_cron_hourly_through_the_spring_gap_has_no_duplicates() -> None:
    # Local 01:00 EST = 06:00 UTC; 02:00 does not exist and moves to 03:00 EDT = 07:00
    # UTC, the very instant of the real 03:00 EDT; 04:00 EDT = 08:00 UTC. One instant
    # must come out once: two fires at 07:00 would be two posts with one plan key.
    fires = run({"cron": "0 * * * *", "from": "2017-03-12T01:00:00-05:00",
                 "until": "2017-03-12T04:00:00-04:00"}, deadline=LATE_DEADLINE)
    assert instants(fires) == [utc(2017, 3, 12, 6, 0), utc(2017, 3, 12, 7, 0),
                               utc(2017, 3, 12, 8, 0)]


def test_daily_times_that_meet_in_the_spring_gap_come_out_once() -> None:
    # On 12 Mar 2017 02:30 moves to 03:30 EDT (07:30 UTC), where 03:30 already is.
    fires = run({"daily": ["02:30", "03:30"], "from": "2017-03-12T00:00:00",
                 "until": "2017-03-12T23:00:00"}, deadline=LATE_DEADLINE)
    assert instants(fires) == [utc(2017, 3, 12, 7, 30)]


@pytest.mark.parametrize("bad", ["0 9 * *", "61 * * * *", "0 25 * * *", "hello", "0 9 * * * *"])
def test_cron_invalid_expression(bad: str) -> None:
    with pytest.raises(ScheduleError, match="not a valid cron expression") as info:
        run({"cron": bad, "from": "T-1d"})
    assert repr(bad) in str(info.value)


def test_cron_must_be_a_string() -> None:
    with pytest.raises(ScheduleError, match="not a cron expression"):
        run({"cron": 9, "from": "T-1d"})


# ------------------------------------------------------------------ spec shape


@pytest.mark.parametrize(("spec", "unknown", "allowed"), [
    ({"at": "T-1h", "from": "T-2d"}, "from", "at"),
    ({"at": "T-1h", "every": "1h"}, "every", "at"),
    ({"daily": "09:00", "from": "T-2d", "untill": "T-1d"}, "untill", "daily, from, until"),
    ({"cron": "0 9 * * *", "from": "T-2d", "tz": "UTC"}, "tz", "cron, from, until"),
])
def test_unknown_schedule_keys(spec: dict[str, object], unknown: str, allowed: str) -> None:
    with pytest.raises(ScheduleError, match="unknown schedule key") as info:
        run(spec)
    assert unknown in str(info.value)
    assert f"allowed here: {allowed}" in str(info.value)


@pytest.mark.parametrize("spec", [
    {"at": "T-1h", "daily": "09:00", "from": "T-2d"},
    {"daily": "09:00", "cron": "0 9 * * *", "from": "T-2d"},
    {"at": "T-1h", "daily": "09:00", "cron": "0 9 * * *"},
    {"from": "T-2d", "until": "T-1d"},
    {},
])
def test_exactly_one_kind(spec: dict[str, object]) -> None:
    with pytest.raises(ScheduleError, match="exactly one of `at`, `daily` or `cron`"):
        run(spec)


@pytest.mark.parametrize("spec", [{"daily": "09:00"}, {"cron": "0 9 * * *"},
                                  {"daily": "09:00", "until": "T-1d"}])
def test_range_needs_from(spec: dict[str, object]) -> None:
    with pytest.raises(ScheduleError, match="needs `from`"):
        run(spec)


@pytest.mark.parametrize("kind", [{"daily": "09:00"}, {"cron": "0 9 * * *"}])
def test_until_before_from(kind: dict[str, object]) -> None:
    with pytest.raises(ScheduleError, match="`until` is before `from`"):
        run({**kind, "from": "T-1d", "until": "T-2d"})


def test_from_after_the_deadline_with_default_until() -> None:
    with pytest.raises(ScheduleError, match="`until` is before `from`"):
        run({"daily": "09:00", "from": "T+1d"})


@pytest.mark.parametrize("spec", [5, ["T-1h"], None, 1.5])
def test_schedule_of_the_wrong_type(spec: object) -> None:
    with pytest.raises(ScheduleError, match="write the schedule as"):
        run(spec)


def test_range_with_bad_from() -> None:
    with pytest.raises(ScheduleError, match="is not a time"):
        run({"daily": "09:00", "from": "last week"})


# ---------------------------------------------------------------------- the cap


def test_cron_exactly_at_the_cap_is_allowed() -> None:
    # Every minute from T-(cap) minutes, inclusive, to the deadline, exclusive: cap fires.
    fires = run({"cron": "* * * * *", "from": f"T-{MAX_FIRES_PER_SCHEDULE}m"})
    assert len(fires) == MAX_FIRES_PER_SCHEDULE
    assert fires[0].at == DEADLINE - timedelta(minutes=MAX_FIRES_PER_SCHEDULE)
    assert fires[-1].at == DEADLINE - timedelta(minutes=1)


def test_cron_one_over_the_cap_is_refused() -> None:
    with pytest.raises(ScheduleError, match=f"more than {MAX_FIRES_PER_SCHEDULE}"):
        run({"cron": "* * * * *", "from": f"T-{MAX_FIRES_PER_SCHEDULE + 1}m"})


def test_cron_far_over_the_cap_is_refused() -> None:
    with pytest.raises(ScheduleError, match="narrow"):
        run({"cron": "* * * * *", "from": "T-30d"})


def test_daily_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedule, "MAX_FIRES_PER_SCHEDULE", 3)
    assert len(run({"daily": "12:00", "from": "T-3d"})) == 3      # 17th, 18th, 19th
    with pytest.raises(ScheduleError, match="more than 3"):
        run({"daily": "12:00", "from": "T-4d"})


def test_at_lists_are_not_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    # Explicit times are what the person wrote, not a runaway expansion.
    monkeypatch.setattr(schedule, "MAX_FIRES_PER_SCHEDULE", 1)
    assert len(run({"at": ["T-2h", "T-1h"]})) == 2


# -------------------------------------------------------------- general promises


@pytest.mark.parametrize("spec", [
    {"at": ["T-3h", "T-2h"]},
    {"daily": ["00:00", "12:00", "23:59"], "from": "T-4d"},
    {"cron": "*/7 * * * *", "from": "T-1d"},
])
def test_results_are_sorted_aware_utc_and_before_the_deadline(spec: dict[str, object]) -> None:
    fires = run(spec)
    ats = instants(fires)
    assert ats == sorted(ats)
    assert all(a.utcoffset() == timedelta(0) for a in ats)
    assert all(a < DEADLINE for a in ats)
    assert len(set(ats)) == len(ats)
