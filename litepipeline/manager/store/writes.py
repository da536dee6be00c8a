"""Writes other controllers add to a scheduling round's one transaction.

A module registers a statement under a name (with the row keys it is given); a round adds
``(name, row)`` to ``Batch.extra`` (``SchedulerCore.record``), and ``Store.save`` writes
them in that order after the tasks and actions of the round, in the same transaction. Updates and
deletes match on ``k_<column>`` bind names, as the store's own updates do.
"""
from __future__ import annotations

from typing import Any

#: name -> (SQLAlchemy statement, the row keys it takes values from)
EXTRA: dict[str, tuple[Any, list]] = {}


def register(name: str, statement: Any, fields: list) -> None:
    EXTRA[name] = (statement, list(fields))


class Row(dict):
    """A plain row for ``Batch.extra`` (the store calls ``to_row()`` on what it writes)."""

    def to_row(self) -> dict:
        return self
