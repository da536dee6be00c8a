"""The original LitePipeline table format, which users' scripts parse.

::

    # | task_id                              | result | message
    1 | 0d50caed-760b-40a5-bcc7-dcdb46960675 | ok     |

A header row, then one numbered row per item. The ``#`` column is right-aligned, every
other column left-aligned and padded to its widest cell (header included); cells are
joined with ``" | "`` and each line is right-stripped.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SEPARATOR = " | "


def cell_text(value: Any) -> str:
    """One value as table text: ``None`` → ``None``, dicts/lists → compact JSON, else ``str``."""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    # A line break inside a cell would break every parser of the table; keep rows on one line.
    if "\n" in text or "\r" in text or "\t" in text:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return text


def rows_from(items: Iterable[Mapping], columns: Sequence[str]) -> list[list]:
    """Pick ``columns`` out of each mapping; a missing key becomes an empty cell."""
    return [[item.get(column, "") if isinstance(item, Mapping) else "" for column in columns]
            for item in items]


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None) -> str:
    """Render ``rows`` under ``columns`` (without the ``#`` column, which is added).

    Args:
        columns: header names of the data columns.
        rows: one sequence of values per row, in column order.
        width: when a positive number, every data cell is cut to this many characters
            before padding (headers stay whole, as in the original client).

    Returns:
        The table as lines joined by ``"\\n"``, without a trailing newline.
    """
    header = ["#", *columns]
    body = []
    for number, row in enumerate(rows, start=1):
        cells = [cell_text(value) for value in row]
        if len(cells) != len(columns):
            raise ValueError(f"row {number} has {len(cells)} cells for {len(columns)} columns")
        if width is not None and width > 0:
            cells = [cell[:width] for cell in cells]
        body.append([str(number), *cells])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = []
    for line in [header, *body]:
        parts = [line[0].rjust(widths[0])] + [cell.ljust(w) for cell, w in zip(line[1:], widths[1:])]
        lines.append(SEPARATOR.join(parts).rstrip())
    return "\n".join(lines)
