"""``/service/*`` (SPEC §12): thin handlers around the manager's ServiceDriver."""
from __future__ import annotations

from litepipeline.manager.handlers.base import ManagerHandler
from litepipeline.manager.handlers.schedules import body_with_id, enable_arg


class ServiceCreateHandler(ManagerHandler):
    async def post(self) -> None:
        self.reply(service_id=await self.manager.services.create(self.json_body()))


class ServiceUpdateHandler(ManagerHandler):
    async def put(self) -> None:
        service_id, data = body_with_id(self, "service_id")
        await self.manager.services.update(service_id, data)
        self.reply(service_id=service_id)

    post = put


class ServiceListHandler(ManagerHandler):
    async def get(self) -> None:
        services, total = await self.manager.services.list(
            self.arg_int("offset", 0), self.arg_int("limit", 0),
            service_id=self.arg_str("service_id", required=False), app_id=self.arg_str("app_id", required=False),
            name=self.arg_str("name", required=False), enable=enable_arg(self))
        self.reply(services=services, total=total)


class ServiceInfoHandler(ManagerHandler):
    async def get(self) -> None:
        self.reply(service_info=await self.manager.services.info(self.arg_str("service_id")))


class ServiceDeleteHandler(ManagerHandler):
    async def delete(self) -> None:
        service_id = self.arg_str("service_id")
        await self.manager.services.delete(service_id)
        self.reply(service_id=service_id)
