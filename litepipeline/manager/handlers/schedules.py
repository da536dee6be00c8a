"""``/schedule/*`` (SPEC §11): thin handlers around the manager's ScheduleDriver.

0.1.5's client shapes are accepted: the id of an update in the query string, ``enable``
as "true"/"false", ``input_data`` as a JSON string (see manager/schedules.py).
"""
from __future__ import annotations

from typing import Optional

from litepipeline.common.errors import InvalidParameters
from litepipeline.manager.handlers.base import ManagerHandler


def body_with_id(handler: ManagerHandler, key: str) -> tuple[str, dict]:
    """The JSON body and the object's id, from the body or (0.1.5) the query string."""
    data = handler.json_body()
    object_id = data.get(key) or handler.get_query_argument(key, None)
    if not isinstance(object_id, str) or not object_id:
        raise InvalidParameters(f"missing field '{key}'")
    return object_id, data


def enable_arg(handler: ManagerHandler) -> Optional[bool]:
    value = (handler.get_query_argument("enable", "") or "").strip().lower()
    if value in ("", "all"):
        return None
    if value not in ("true", "false"):
        raise InvalidParameters(f"parameter 'enable' must be true or false, got {value!r}")
    return value == "true"


class ScheduleCreateHandler(ManagerHandler):
    async def post(self) -> None:
        self.reply(schedule_id=await self.manager.schedules.create(self.json_body()))


class ScheduleUpdateHandler(ManagerHandler):
    async def put(self) -> None:
        schedule_id, data = body_with_id(self, "schedule_id")
        await self.manager.schedules.update(schedule_id, data)
        self.reply(schedule_id=schedule_id)

    post = put


class ScheduleListHandler(ManagerHandler):
    async def get(self) -> None:
        schedules, total = await self.manager.schedules.list(
            self.arg_int("offset", 0), self.arg_int("limit", 0),
            schedule_id=self.arg_str("schedule_id", required=False),
            source_id=self.arg_str("source_id", required=False), name=self.arg_str("name", required=False),
            enable=enable_arg(self))
        self.reply(schedules=schedules, total=total)


class ScheduleInfoHandler(ManagerHandler):
    async def get(self) -> None:
        self.reply(schedule_info=await self.manager.schedules.info(self.arg_str("schedule_id")))


class ScheduleDeleteHandler(ManagerHandler):
    async def delete(self) -> None:
        schedule_id = self.arg_str("schedule_id")
        await self.manager.schedules.delete(schedule_id)
        self.reply(schedule_id=schedule_id)


class ScheduleFiresHandler(ManagerHandler):
    """GET ``/schedule/fires?schedule_id=``: every fire, newest first (what it created, or skipped)."""

    async def get(self) -> None:
        fires, total = await self.manager.schedules.fires(self.arg_str("schedule_id"), self.arg_int("offset", 0),
                                                          self.arg_int("limit", 0))
        self.reply(fires=fires, total=total)
