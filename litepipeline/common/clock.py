"""Times as the API shows them: local time strings like ``2020-01-16 22:47:39.910642``.

Wall time is for timestamps that are shown and stored only: an NTP step or a DST change
moves it. Every duration (timeouts, grace periods, retry delays) is measured on
``time.monotonic`` (the scheduler core takes it as its ``monotonic`` clock).
"""
from __future__ import annotations

import datetime as _dt
from typing import Optional

FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def now() -> _dt.datetime:
    """The local wall time, for timestamps (never for durations)."""
    return _dt.datetime.now()


def fmt(value: Optional[_dt.datetime]) -> Optional[str]:
    """``None`` stays ``None``; microseconds are always printed (unlike ``str()``)."""
    if value is None:
        return None
    if value.tzinfo is None and value.year >= 1000:   # the same text as FORMAT, in C
        return value.isoformat(" ", "microseconds")
    return value.strftime(FORMAT)


def parse(text: Optional[str]) -> Optional[_dt.datetime]:
    """Inverse of :func:`fmt`; ``None``/empty or unparsable text gives ``None``."""
    if not text or not isinstance(text, str):
        return None
    # the common case, exactly fmt's shape, without strptime's Python-level parsing
    if len(text) == 26 and text[10] == " " and text[19] == "." and text[20:].isdigit():
        try:
            value = _dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        return value if value.tzinfo is None else None
    try:
        return _dt.datetime.strptime(text, FORMAT)
    except ValueError:
        return None
