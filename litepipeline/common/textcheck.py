"""Text every store can keep: no NUL character, no lone surrogate.

PostgreSQL refuses NUL in text (and in JSON), and a lone surrogate (``"\\ud800"`` in JSON)
cannot be encoded as UTF-8, which SQLite's driver needs. Either in one row makes the
whole transaction fail, so such text is refused where it enters (HTTP, TCP, uploads,
reports, generated actions) with a message naming the field, and :func:`scrub` is the
last resort of a store write that failed anyway.
"""
from __future__ import annotations

import re
from typing import Any, Optional

from litepipeline.common.errors import InvalidParameters

# JSON text can only carry either as an escape (raw control characters and invalid UTF-8
# are refused by the decoder): bodies without one of these need no walk at all
_ESCAPES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# a str holds a surrogate code point only when it is unpaired (Python joins valid pairs)
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> Optional[str]:
    """What makes ``text`` unstorable, or None."""
    if "\x00" in text:
        return "a NUL character"
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (not valid UTF-8)"
    return None


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def find_poison(value: Any, path: str = "") -> Optional[tuple[str, str]]:
    """The first unstorable string in a JSON-like value: (its path, the problem), or None.

    Keys count as strings too. Iterative, so a deeply nested value cannot exhaust the stack.
    """
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return where or "value", problem
        elif isinstance(item, dict):
            for key, sub in item.items():
                problem = text_problem(key) if isinstance(key, str) else None
                if problem:   # shown escaped: the message itself must be storable
                    return _join(where, repr(key)[1:-1]), f"{problem} in its name"
                stack.append((_join(where, key), sub))
        elif isinstance(item, (list, tuple)):
            stack.extend((_join(where, i), sub) for i, sub in enumerate(item))
    return None


def may_hold_poison(raw: bytes) -> bool:
    """Cheap screen of JSON bytes: False means :func:`find_poison` would find nothing."""
    return _ESCAPES.search(raw) is not None


def poison_message(found: tuple[str, str], what: str = "field") -> str:
    return f"{what} '{found[0]}' holds {found[1]}, which cannot be stored"


def check_text(value: Any, what: str = "field", path: str = "") -> None:
    """Raise :class:`InvalidParameters` naming the field when ``value`` holds unstorable text."""
    found = find_poison(value, path)
    if found:
        raise InvalidParameters(poison_message(found, what))


def scrub(value: Any) -> Any:
    """``value`` with NUL removed and lone surrogates replaced by U+FFFD (last resort)."""
    if isinstance(value, str):
        if text_problem(value) is None:
            return value
        return _SURROGATE.sub("\ufffd", value.replace("\x00", ""))
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
