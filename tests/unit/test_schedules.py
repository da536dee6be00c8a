"""The schedule time logic (litepipeline.manager.schedules): pure, no clock, no sleeping."""
from __future__ import annotations

import datetime as dt

import pytest

from litepipeline.common.errors import InvalidParameters
from litepipeline.manager.schedules import (MAX_CATCHUP, UTC, Timing, check_cron, check_zone, due, from_utc_naive,
                                            legacy_cron, plan, show, to_utc_naive)
from zoneinfo import ZoneInfo

BERLIN = "Europe/Berlin"
NY = "America/New_York"


def at(zone: str, *fields: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*fields, tzinfo=ZoneInfo(zone), fold=fold)


def walk(timing: Timing, start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> list:
    """Drive ``due`` as the driver does: wake at each step, fire what is due, remember the last."""
    fired, last, now = [], start, start
    while now < end:
        now = min(now + step, end)
        answer = due(timing, "latest", last, now, start)
        fired.extend(answer.fires)
        if answer.fires:
            last = answer.fires[-1]
        assert answer.next_fire is None or answer.next_fire > now
    return fired


def test_spring_forward_time_in_the_gap_fires_once_right_after_it():
    timing = Timing("30 2 * * *", BERLIN)   # 2026-03-29: 02:00 -> 03:00 in Berlin
    start = at(BERLIN, 2026, 3, 28, 12, 0)
    fired = walk(timing, start, start + dt.timedelta(days=2), dt.timedelta(minutes=7))
    assert [show(f, BERLIN) for f in fired] == ["2026-03-29 03:00:00+02:00", "2026-03-30 02:30:00+02:00"]


def test_spring_forward_in_new_york_too():
    timing = Timing("15 2 * * *", NY)   # 2026-03-08: 02:00 -> 03:00
    answer = due(timing, "all", at(NY, 2026, 3, 7, 12, 0), at(NY, 2026, 3, 9, 12, 0), at(NY, 2026, 3, 7, 12, 0))
    assert [show(f, NY) for f in answer.fires] == ["2026-03-08 03:00:00-04:00", "2026-03-09 02:15:00-04:00"]


def test_fall_back_time_in_the_repeated_hour_fires_once():
    timing = Timing("30 2 * * *", BERLIN)   # 2026-10-25: 03:00 -> 02:00 in Berlin
    start = at(BERLIN, 2026, 10, 24, 12, 0)
    fired = walk(timing, start, start + dt.timedelta(days=2), dt.timedelta(minutes=5))
    assert [show(f, BERLIN) for f in fired] == ["2026-10-25 02:30:00+02:00", "2026-10-26 02:30:00+01:00"]
    # woken inside the second pass of the hour, after the first 02:30 fired: nothing more
    second_pass = at(BERLIN, 2026, 10, 25, 2, 45, fold=1)
    answer = due(timing, "all", fired[0], second_pass, start)
    assert answer.fires == []
    assert show(answer.next_fire, BERLIN) == "2026-10-26 02:30:00+01:00"


def test_hourly_schedule_keeps_real_hours_across_both_changes():
    timing = Timing("0 * * * *", BERLIN)
    spring = due(timing, "all", at(BERLIN, 2026, 3, 29, 0, 30), at(BERLIN, 2026, 3, 29, 4, 30),
                 at(BERLIN, 2026, 3, 29, 0, 30))
    assert [show(f, BERLIN)[11:] for f in spring.fires] == ["01:00:00+01:00", "03:00:00+02:00", "04:00:00+02:00"]
    fall = due(timing, "all", at(BERLIN, 2026, 10, 25, 0, 30), at(BERLIN, 2026, 10, 25, 3, 30),
               at(BERLIN, 2026, 10, 25, 0, 30))
    # four real hours: 02:00 happens twice on the wall clock, each a distinct instant
    assert [show(f, BERLIN)[11:] for f in fall.fires] == ["01:00:00+02:00", "02:00:00+02:00", "02:00:00+01:00",
                                                          "03:00:00+01:00"]


def test_month_ends_skip_short_months():
    timing = Timing("0 9 31 * *", "UTC")
    fires = timing.upcoming(dt.datetime(2026, 1, 1, tzinfo=UTC), 4)
    assert [f.date().isoformat() for f in fires] == ["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31"]
    last_day = Timing("0 0 L * *", "UTC").upcoming(dt.datetime(2026, 1, 15, tzinfo=UTC), 3)
    assert [f.date().isoformat() for f in last_day] == ["2026-01-31", "2026-02-28", "2026-03-31"]


def test_feb_29_fires_only_in_leap_years():
    timing = Timing("0 12 29 2 *", "UTC")
    fires = timing.upcoming(dt.datetime(2025, 1, 1, tzinfo=UTC), 2)
    assert [f.date().isoformat() for f in fires] == ["2028-02-29", "2032-02-29"]
    # a manager down across Feb 29 catches up that one fire with "latest"
    answer = due(timing, "latest", dt.datetime(2028, 2, 1, tzinfo=UTC), dt.datetime(2028, 3, 2, tzinfo=UTC),
                 dt.datetime(2028, 3, 2, tzinfo=UTC))
    assert [f.isoformat() for f in answer.fires] == ["2028-02-29T12:00:00+00:00"]


OUTAGE_LAST = dt.datetime(2026, 5, 1, 10, 0, tzinfo=UTC)        # the last fire before the outage
RESTART = dt.datetime(2026, 5, 4, 10, 0, 30, tzinfo=UTC)       # three days later


@pytest.mark.parametrize("cron, policy, expected", [
    ("0 * * * *", "skip", []),
    ("0 * * * *", "latest", ["2026-05-04T10:00:00+00:00"]),
    ("0 * * * *", "all", None),    # every hour of the three days: 72
    ("*/10 * * * *", "all", None),  # 432 missed: the most recent 100
])
def test_catchup_after_a_three_day_outage(cron, policy, expected):
    timing = Timing(cron, "UTC")
    answer = due(timing, policy, OUTAGE_LAST, RESTART, RESTART)
    fires = [f.isoformat() for f in answer.fires]
    if expected is not None:
        assert fires == expected
    elif cron.startswith("0 "):
        assert len(fires) == 72
        assert fires[0] == "2026-05-01T11:00:00+00:00" and fires[-1] == "2026-05-04T10:00:00+00:00"
        assert len(set(fires)) == 72
    else:
        assert len(fires) == MAX_CATCHUP
        assert fires[-1] == "2026-05-04T10:00:00+00:00"
        assert fires[0] == (dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
                            - dt.timedelta(minutes=10 * (MAX_CATCHUP - 1))).isoformat()
        assert fires == sorted(fires)
    assert answer.next_fire.isoformat() == ("2026-05-04T11:00:00+00:00" if cron.startswith("0 ")
                                            else "2026-05-04T10:10:00+00:00")


def test_fires_after_the_restart_are_on_time_whatever_the_policy():
    timing = Timing("* * * * *", "UTC")
    later = RESTART + dt.timedelta(minutes=2)
    answer = due(timing, "skip", OUTAGE_LAST, later, RESTART)
    assert [f.isoformat() for f in answer.fires] == ["2026-05-04T10:01:00+00:00", "2026-05-04T10:02:00+00:00"]


def test_a_fire_just_before_the_restart_is_late_not_missed():
    timing = Timing("* * * * *", "UTC")
    restart = dt.datetime(2026, 5, 4, 10, 0, 20, tzinfo=UTC)   # 10:00 came due 20 s before
    late = due(timing, "skip", OUTAGE_LAST, restart, restart, grace=30)
    assert [f.isoformat() for f in late.fires] == ["2026-05-04T10:00:00+00:00"]
    assert due(timing, "skip", OUTAGE_LAST, restart, restart, grace=10).fires == []


def test_nothing_due_before_the_first_fire_time():
    timing = Timing("0 0 * * *", "UTC")
    now = dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    answer = due(timing, "all", now - dt.timedelta(hours=1), now, now - dt.timedelta(hours=1))
    assert answer.fires == []
    assert answer.next_fire == dt.datetime(2026, 5, 5, tzinfo=UTC)


def test_overlap_skip_skips_while_the_previous_fire_is_unfinished():
    times = [OUTAGE_LAST + dt.timedelta(minutes=i) for i in range(3)]
    assert plan(times, "allow", True) == [(t, True) for t in times]
    assert plan(times, "skip", True) == [(t, False) for t in times]
    # the first creates its task, which is then the unfinished previous fire of the others
    assert plan(times, "skip", False) == [(times[0], True), (times[1], False), (times[2], False)]


def test_legacy_fields_mean_what_they_meant_in_0_1_5():
    assert legacy_cron(-1, -1, -1, -1) == "0 0 * * *"        # unset minute and hour are 0
    assert legacy_cron(30, 4, -1, -1) == "30 4 * * *"
    assert legacy_cron(0, 8, -1, 7) == "0 8 * * 0"           # Sunday is 7 ...
    assert legacy_cron(0, 8, -1, 0) == "0 8 * * 0"           # ... and 0, as its CLI said
    assert legacy_cron(5, -1, 13, 5) == "5 0 13 * 5"
    # both day fields set: either matches (the 13th, and every Friday)
    fires = Timing(legacy_cron(0, 0, 13, 5), "UTC").upcoming(dt.datetime(2026, 2, 1, tzinfo=UTC), 4)
    assert [f.strftime("%a %d") for f in fires] == ["Fri 06", "Fri 13", "Fri 20", "Fri 27"]
    fires = Timing(legacy_cron(0, 0, 13, 5), "UTC").upcoming(dt.datetime(2026, 1, 1, tzinfo=UTC), 3)
    assert [f.strftime("%a %d") for f in fires] == ["Fri 02", "Fri 09", "Tue 13"]


@pytest.mark.parametrize("field, args", [("minute", (60, -1, -1, -1)), ("hour", (0, 24, -1, -1)),
                                         ("day_of_month", (0, 0, 0, -1)), ("day_of_week", (0, 0, -1, 8)),
                                         ("minute", (-2, 0, -1, -1)), ("hour", (0, "1", -1, -1))])
def test_legacy_fields_out_of_range_name_the_field(field, args):
    with pytest.raises(InvalidParameters) as err:
        legacy_cron(*args)
    assert f"'{field}'" in err.value.message


def test_cron_and_zone_validation_names_field_and_value():
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert check_cron("  */5   * * * 1-5 ", "UTC", now) == "*/5 * * * 1-5"
    for bad in ("61 * * * *", "* * * *", "* * * * * *", "@daily", "0 0 30 2 *", "nonsense here a b c"):
        with pytest.raises(InvalidParameters) as err:
            check_cron(bad, "UTC", now)
        assert "'cron'" in err.value.message and bad[:10] in err.value.message
    assert check_zone("Asia/Tokyo") == "Asia/Tokyo"
    for bad in ("Mars/Olympus", "../../etc/passwd", "", None):
        with pytest.raises(InvalidParameters) as err:
            check_zone(bad)
        assert "'timezone'" in err.value.message and repr(bad)[:12] in err.value.message


def test_store_instants_round_trip_as_naive_utc():
    when = at(BERLIN, 2026, 10, 25, 2, 30, fold=1)
    stored = to_utc_naive(when)
    assert stored == dt.datetime(2026, 10, 25, 1, 30) and stored.tzinfo is None
    assert from_utc_naive(stored).timestamp() == when.timestamp()
    assert show(from_utc_naive(stored), BERLIN) == "2026-10-25 02:30:00+01:00"


NOW = dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
APP = "5fed2da0-3aa4-484d-beaa-8a82f1192d9d"


def test_create_request_defaults_and_0_1_5_shapes():
    from litepipeline.manager.schedules import schedule_values

    values = schedule_values({"schedule_name": "n", "source": "application", "source_id": APP,
                              "input_data": '{"a": 1}', "enable": "true", "minute": 5, "hour": -1,
                              "day_of_month": -1, "day_of_week": 7}, None, "Europe/Berlin", NOW)
    assert values["cron"] == "5 0 * * 0" and values["input_data"] == {"a": 1} and values["enable"] is True
    assert (values["timezone"], values["catchup"], values["overlap"]) == ("Europe/Berlin", "latest", "allow")
    assert values["anchor_at"] == dt.datetime(2026, 5, 4, 10, 0)
    cron = schedule_values({"schedule_name": "n", "source": "application", "source_id": APP, "cron": "0 * * * *",
                            "minute": -1}, None, "UTC", NOW)
    assert cron["cron"] == "0 * * * *" and cron["enable"] is False and cron["minute"] == -1
    with pytest.raises(InvalidParameters, match="either 'cron'"):
        schedule_values({"schedule_name": "n", "source": "application", "source_id": APP, "cron": "0 * * * *",
                         "minute": 3}, None, "UTC", NOW)
    for bad, field in (({"source": "ftp"}, "'source'"), ({"enable": "yes"}, "'enable'"),
                       ({"input_data": "[1]"}, "'input_data'"), ({"input_data": "{nope"}, "'input_data'"),
                       ({"overlap": "never"}, "'overlap'"), ({"schedule_name": ""}, "'schedule_name'")):
        body = {"schedule_name": "n", "source": "application", "source_id": APP, **bad}
        with pytest.raises(InvalidParameters) as err:
            schedule_values(body, None, "UTC", NOW)
        assert field in err.value.message


def test_update_request_changes_only_what_it_names():
    from litepipeline.manager.schedules import schedule_values

    current = {"schedule_name": "n", "source": "application", "source_id": APP, "cron": "30 2 * * 0",
               "minute": 30, "hour": 2, "day_of_month": -1, "day_of_week": 0, "timezone": "UTC"}
    assert schedule_values({"schedule_name": "m"}, current, "UTC", NOW) == {"schedule_name": "m"}
    hour = schedule_values({"hour": 4}, current, "UTC", NOW)
    assert hour["cron"] == "30 4 * * 0" and hour["minute"] == 30 and "anchor_at" in hour
    zone = schedule_values({"timezone": "Asia/Tokyo"}, current, "UTC", NOW)
    assert zone["cron"] == "30 2 * * 0" and zone["timezone"] == "Asia/Tokyo"
    made_with_cron = dict(current, cron="*/5 * * * *", minute=-1, hour=-1, day_of_week=-1)
    assert schedule_values({"hour": 4}, made_with_cron, "UTC", NOW)["cron"] == "0 4 * * *"
    assert schedule_values({"cron": "0 1 * * *"}, current, "UTC", NOW)["day_of_week"] == -1
    assert schedule_values({"source_id": "other"}, current, "UTC", NOW)["source"] == "application"


def test_manager_timezone_setting_is_checked_when_loaded():
    from litepipeline.common.config import config_from_dict
    from litepipeline.common.errors import ConfigError

    config, _ = config_from_dict("manager", {"timezone": "America/New_York", "test_clock_speed": 60})
    assert config.timezone == "America/New_York" and config.test_clock_speed == 60.0
    with pytest.raises(ConfigError, match="'timezone'.*Mars/Base"):
        config_from_dict("manager", {"timezone": "Mars/Base"})
    with pytest.raises(ConfigError, match="'test_clock_speed'"):
        config_from_dict("manager", {"test_clock_speed": 0.5})
