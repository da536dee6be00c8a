"""Queries of schedules, their fires and services; and the writes rounds make to them.

Every change of a schedule or a service is written by a scheduling round (through the
statements registered here, see store/writes.py), in the same transaction as the tasks
it creates or the task end it follows. The methods below only read.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import Table, and_, bindparam, delete, func, insert, select, update

from litepipeline.manager.store import writes
from litepipeline.manager.store.models_schedules import SCHEDULE_FIRES as FIRES, SCHEDULES, SERVICES

MAX_LIMIT = 10000


def _columns(table: Table) -> list:
    return [c.name for c in table.columns if c.name != "id"]


SCHEDULE_FIELDS = _columns(SCHEDULES)
FIRE_FIELDS = _columns(FIRES)
SERVICE_FIELDS = _columns(SERVICES)


def _updater(table: Table, key: str, fields: list) -> Any:
    return update(table).where(table.c[key] == bindparam("k_" + key)).values(
        {f: bindparam(f) for f in fields if f != key})


def _deleter(table: Table, key: str) -> Any:
    return delete(table).where(table.c[key] == bindparam("k_" + key))


writes.register("insert_schedule", insert(SCHEDULES), SCHEDULE_FIELDS)
writes.register("update_schedule", _updater(SCHEDULES, "schedule_id", SCHEDULE_FIELDS), SCHEDULE_FIELDS)
writes.register("delete_schedule_fires", _deleter(FIRES, "schedule_id"), ["schedule_id"])
writes.register("delete_schedule", _deleter(SCHEDULES, "schedule_id"), ["schedule_id"])
writes.register("insert_fire", insert(FIRES), FIRE_FIELDS)
writes.register("insert_service", insert(SERVICES), SERVICE_FIELDS)
writes.register("update_service", _updater(SERVICES, "service_id", SERVICE_FIELDS), SERVICE_FIELDS)
writes.register("delete_service", _deleter(SERVICES, "service_id"), ["service_id"])


def _rows(result: Any) -> list[dict]:
    return [dict(row._mapping) for row in result]


def _like(column: Any, pattern: str) -> Any:
    """0.1.5's name filter: ``*`` is a wildcard (``'*actions*'``); without one, the exact name."""
    if "*" not in pattern:
        return column == pattern
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
    return column.like(escaped, escape="\\")


class ScheduleStore:
    """Reads of schedules and services, on the manager's store engine (blocking: DbThread)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def _one(self, table: Table, key: str, value: str) -> Optional[dict]:
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(select(table).where(table.c[key] == value)))
        return rows[0] if rows else None

    def _list(self, table: Table, conditions: list, offset: int, limit: int) -> tuple[list[dict], int]:
        query = select(table).order_by(table.c.id.desc())
        count = select(func.count()).select_from(table)
        if conditions:
            query, count = query.where(and_(*conditions)), count.where(and_(*conditions))
        query = query.offset(offset).limit(limit if 0 < limit <= MAX_LIMIT else MAX_LIMIT)
        with self.engine.connect() as conn:
            return _rows(conn.execute(query)), conn.execute(count).scalar_one()

    # -- schedules ----------------------------------------------------------------------
    def get_schedule(self, schedule_id: str) -> Optional[dict]:
        return self._one(SCHEDULES, "schedule_id", schedule_id)

    def list_schedules(self, offset: int, limit: int, schedule_id: Optional[str] = None,
                       source_id: Optional[str] = None, name: Optional[str] = None,
                       enable: Optional[bool] = None) -> tuple[list[dict], int]:
        conditions = []
        if schedule_id:
            conditions.append(SCHEDULES.c.schedule_id == schedule_id)
        if source_id:
            conditions.append(SCHEDULES.c.source_id == source_id)
        if name:
            conditions.append(_like(SCHEDULES.c.schedule_name, name))
        if enable is not None:
            conditions.append(SCHEDULES.c.enable == enable)
        return self._list(SCHEDULES, conditions, offset, limit)

    def all_schedules(self) -> list[dict]:
        with self.engine.connect() as conn:
            return _rows(conn.execute(select(SCHEDULES).order_by(SCHEDULES.c.id)))

    def list_fires(self, schedule_id: str, offset: int, limit: int) -> tuple[list[dict], int]:
        return self._list(FIRES, [FIRES.c.schedule_id == schedule_id], offset, limit)

    # -- services -----------------------------------------------------------------------
    def get_service(self, service_id: str) -> Optional[dict]:
        return self._one(SERVICES, "service_id", service_id)

    def list_services(self, offset: int, limit: int, service_id: Optional[str] = None,
                      app_id: Optional[str] = None, name: Optional[str] = None,
                      enable: Optional[bool] = None) -> tuple[list[dict], int]:
        conditions = []
        if service_id:
            conditions.append(SERVICES.c.service_id == service_id)
        if app_id:
            conditions.append(SERVICES.c.application_id == app_id)
        if name:
            conditions.append(_like(SERVICES.c.name, name))
        if enable is not None:
            conditions.append(SERVICES.c.enable == enable)
        return self._list(SERVICES, conditions, offset, limit)

    def all_services(self) -> list[dict]:
        with self.engine.connect() as conn:
            return _rows(conn.execute(select(SERVICES).order_by(SERVICES.c.id)))
