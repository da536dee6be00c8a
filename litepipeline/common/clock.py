"""Times as the API shows them: local time strings like ``2020-01-16 22:47:39.910642``."""
from __future__ import annotations

import datetime as _dt
from typing import Optional

FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def now() -> _dt.datetime:
    return _dt.datetime.now()


def fmt(value: Optional[_dt.datetime]) -> Optional[str]:
    """``None`` stays ``None``; microseconds are always printed (unlike ``str()``)."""
    return value.strftime(FORMAT) if value is not None else None


def parse(text: Optional[str]) -> Optional[_dt.datetime]:
    """Inverse of :func:`fmt`; ``None``/empty or unparsable text gives ``None``."""
    if not text or not isinstance(text, str):
        return None
    try:
        return _dt.datetime.strptime(text, FORMAT)
    except ValueError:
        return None
