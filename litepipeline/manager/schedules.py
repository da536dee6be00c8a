"""Schedules: when to fire, as pure functions of (schedule, last fire, now).

The calendar work is cronsim's (chosen over croniter because it fires a time of the
repeated hour once when a clock goes back, and a time of a skipped hour at the first
instant after the gap, as cron does) and zoneinfo's; nothing here does date arithmetic.
Every instant crossing this module's boundary is an aware datetime; the store keeps them
as naive UTC (:func:`to_utc_naive`, :func:`from_utc_naive`).

The driver that acts on these answers is :mod:`litepipeline.manager.scheduledriver`.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from litepipeline.common.errors import InvalidParameters

UTC = dt.timezone.utc
CATCHUP = ("skip", "latest", "all")
OVERLAP = ("allow", "skip")
SOURCES = ("application", "workflow")
MAX_CATCHUP = 100
#: a fire at most this late when the manager starts is on time, not missed: a manager
#: killed as a fire came due and started again at once still makes that fire
LATE_GRACE = 30.0
#: 0.1.5's time fields: name -> (lowest, highest) besides -1 (unset). day_of_week: 1-7 with
#: Sunday 7 as 0.1.5's manager had it, and 0 as Sunday as its CLI's help said
LEGACY_FIELDS = {"minute": (0, 59), "hour": (0, 23), "day_of_month": (1, 31), "day_of_week": (0, 7)}


@dataclass(frozen=True)
class Timing:
    """When a schedule fires: a 5-field cron expression read in an IANA zone."""

    cron: str
    zone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def after(self, instant: dt.datetime, reverse: bool = False) -> Iterator[dt.datetime]:
        """Fire times strictly after ``instant`` (strictly before it with ``reverse``), in UTC.

        UTC because Python compares two instants of different zones as unequal when one of
        them is in a repeated hour (PEP 495); in UTC they compare as instants."""
        for when in CronSim(self.cron, instant.astimezone(self.tz), reverse=reverse):
            yield when.astimezone(UTC)

    def upcoming(self, instant: dt.datetime, count: int) -> list[dt.datetime]:
        """The next ``count`` fire times after ``instant``, in UTC."""
        out = []
        for when in self.after(instant):
            out.append(when)
            if len(out) >= count:
                break
        return out


@dataclass(frozen=True)
class Due:
    """The answer of :func:`due`: what to fire now and when to look again."""

    fires: list          # aware datetimes to fire now, oldest first
    next_fire: Optional[dt.datetime]   # the first fire time after ``now`` (None: never again)


def due(timing: Timing, catchup: str, last: dt.datetime, now: dt.datetime, watched_since: dt.datetime,
        grace: float = 0.0) -> Due:
    """The fires due at ``now`` for a schedule whose last fire (or start of counting) is ``last``.

    Fire times in (``last``, ``now``] are due. Those after ``watched_since`` (when the
    driver started watching the schedule: the manager's start, the schedule's enabling)
    minus ``grace`` seconds are on time and all fire. Earlier ones were missed while nobody
    watched and follow ``catchup``: ``skip`` none, ``latest`` the most recent, ``all``
    every one (the most recent :data:`MAX_CATCHUP`).
    """
    on_time: list = []
    missed_window_end = max(last, min(watched_since - dt.timedelta(seconds=grace), now))
    # on time: forwards from the end of the missed window (few: normally exactly one)
    for when in timing.after(missed_window_end):
        if when > now:
            next_fire = when
            break
        on_time.append(when)
    else:
        next_fire = None
    # missed: backwards from the end of the missed window, only as far as the policy needs
    # (a year-long outage of an every-minute schedule is not walked through)
    missed: list = []
    want = {"skip": 0, "latest": 1, "all": MAX_CATCHUP}[catchup]
    if missed_window_end > last and want:
        end = missed_window_end + dt.timedelta(microseconds=1)   # reverse is strict: include the end itself
        for when in timing.after(end, reverse=True):
            if when <= last or len(missed) >= want:
                break
            missed.append(when)
        missed.reverse()
    return Due(missed + on_time, next_fire)


# -- request values --------------------------------------------------------------------------


def legacy_cron(minute: int, hour: int, day_of_month: int, day_of_week: int) -> str:
    """0.1.5's fields as a cron expression: unset (-1) minute/hour is 0, unset days are ``*``;
    both day fields set match either (cron's own rule); day_of_week 7 and 0 are Sunday."""
    values = {"minute": minute, "hour": hour, "day_of_month": day_of_month, "day_of_week": day_of_week}
    for name, value in values.items():
        low, high = LEGACY_FIELDS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not (value == -1 or low <= value <= high):
            raise InvalidParameters(f"field '{name}' must be -1 (unset) or {low}-{high}, got {value!r}")
    dom = "*" if day_of_month == -1 else str(day_of_month)
    dow = "*" if day_of_week == -1 else str(day_of_week % 7)
    return f"{max(minute, 0)} {max(hour, 0)} {dom} * {dow}"


def check_cron(expression: Any, zone: str, now: dt.datetime) -> str:
    """A valid 5-field cron expression that fires at least once, normalised; or a 400 naming it."""
    if not isinstance(expression, str):
        raise InvalidParameters(f"field 'cron' must be a string, got {type(expression).__name__}")
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidParameters(f"field 'cron' must have 5 fields (minute hour day-of-month month "
                                f"day-of-week), got {expression[:100]!r}")
    normal = " ".join(fields)
    try:
        fires = Timing(normal, zone).upcoming(now, 1)
    except CronSimError as exc:
        raise InvalidParameters(f"field 'cron' is not a valid cron expression: {expression[:100]!r} "
                                f"({exc})") from None
    if not fires:
        raise InvalidParameters(f"field 'cron' never fires: {expression[:100]!r}")
    return normal


def check_zone(name: Any) -> str:
    """An IANA zone name zoneinfo knows, or a 400 naming the field and the value."""
    if not isinstance(name, str) or not name:
        raise InvalidParameters(f"field 'timezone' must be an IANA zone name such as 'Europe/Berlin', "
                                f"got {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidParameters(f"field 'timezone' is not a known IANA zone name: {name[:100]!r}") from None
    return name


def check_choice(data: dict, key: str, choices: tuple, default: Optional[str]) -> Optional[str]:
    value = data.get(key, default)
    if value not in choices:
        raise InvalidParameters(f"field '{key}' must be one of {', '.join(choices)}, got {value!r}")
    return value


def local_zone() -> str:
    """The machine's IANA zone name (``TZ``, else ``/etc/localtime``'s target), else UTC."""
    candidates = []
    if os.environ.get("TZ"):
        candidates.append(os.environ["TZ"].lstrip(":"))
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
    return "UTC"


# -- instants in the store -------------------------------------------------------------------


def to_utc_naive(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def from_utc_naive(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    return None if value is None else value.replace(tzinfo=UTC)


def show(instant: Optional[dt.datetime], zone: str) -> Optional[str]:
    """An instant as the API shows a schedule's times: wall clock of its zone with the offset
    (``2026-10-25 02:30:00+01:00``: the offset tells the two 02:30 of a repeated hour apart)."""
    if instant is None:
        return None
    return instant.astimezone(ZoneInfo(zone)).isoformat(" ")


def plan(fires: list, overlap: str, previous_unfinished: bool) -> list[tuple[dt.datetime, bool]]:
    """Each due fire with whether it creates its task or work (``False``: skipped by
    ``overlap: skip`` because the previous fire's task or work is still unfinished)."""
    out = []
    busy = previous_unfinished
    for when in fires:
        create = overlap != "skip" or not busy
        out.append((when, create))
        busy = busy or create
    return out


# -- requests --------------------------------------------------------------------------------

NAME_LIMIT = 255
TIME_KEYS = ("cron", "timezone", *LEGACY_FIELDS)


def flag(data: dict, key: str, default: Optional[bool]) -> Optional[bool]:
    """A boolean field: true/false, or 0.1.5's strings "true"/"false"."""
    value = data.get(key, default)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if value is not None and not isinstance(value, bool):
        raise InvalidParameters(f"field '{key}' must be true or false, got {value!r}")
    return value


def json_object(data: dict, key: str) -> dict:
    """An object field that 0.1.5's client may send as a JSON string holding one."""
    value = data.get(key)
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise InvalidParameters(f"field '{key}' is a string but not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidParameters(f"field '{key}' must be a JSON object, got {type(value).__name__}")
    return value


def name_field(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameters(f"field '{key}' must be a non-empty string, got {value!r}")
    if len(value) > NAME_LIMIT:
        raise InvalidParameters(f"field '{key}' is longer than {NAME_LIMIT} characters")
    return value


def schedule_values(data: dict, current: Optional[dict], default_zone: str, now: dt.datetime) -> dict:
    """The columns a ``schedule/create`` (``current`` None) or ``schedule/update`` request sets.

    Validated here, before anything is written: a bad cron or zone, a 0.1.5 field out of
    range, an unknown policy is a 400 naming the field and the value.
    """
    out: dict = {}
    creating = current is None
    if creating or "schedule_name" in data:
        out["schedule_name"] = name_field(data, "schedule_name")
    if creating or "source" in data or "source_id" in data:
        source = data.get("source", current["source"] if current else None)
        if source not in SOURCES:
            raise InvalidParameters(f"field 'source' must be one of {', '.join(SOURCES)}, got {source!r}")
        source_id = data.get("source_id", current["source_id"] if current else None)
        if not isinstance(source_id, str) or not source_id:
            raise InvalidParameters(f"field 'source_id' must be a non-empty string, got {source_id!r}")
        out["source"], out["source_id"] = source, source_id
    if creating or "input_data" in data:
        out["input_data"] = json_object(data, "input_data")
    if creating or "enable" in data:
        out["enable"] = flag(data, "enable", False)
    for key, choices, default in (("catchup", CATCHUP, "latest"), ("overlap", OVERLAP, "allow")):
        if creating or key in data:
            out[key] = check_choice(data, key, choices, default)
    if creating or any(key in data for key in TIME_KEYS):
        zone = check_zone(data["timezone"]) if data.get("timezone") is not None else (
            current["timezone"] if current else default_zone)
        legacy_given = {k: data[k] for k in LEGACY_FIELDS if k in data}
        if data.get("cron") is not None:
            if any(v != -1 for v in legacy_given.values()):
                raise InvalidParameters("give either 'cron' or 0.1.5's minute/hour/day_of_month/day_of_week, "
                                        "not both")
            cron = check_cron(data["cron"], zone, now)
            legacy = {k: -1 for k in LEGACY_FIELDS}
        elif legacy_given or creating:
            # 0.1.5's fields given on an update change those fields of the ones it has (all -1
            # when it was made with a cron expression)
            base = {k: (current[k] if current else -1) for k in LEGACY_FIELDS}
            legacy = {**base, **legacy_given}
            cron = legacy_cron(**legacy)
        else:   # only the zone changed
            cron = check_cron(current["cron"], zone, now)
            legacy = {k: current[k] for k in LEGACY_FIELDS}
        out.update(legacy, cron=cron, timezone=zone, anchor_at=to_utc_naive(now))
    return out
