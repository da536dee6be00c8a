"""``/workflow/*`` and ``/work/*`` (SPEC §10), with the 0.1.5 client's request shapes."""
from __future__ import annotations

from typing import Any, Optional

from litepipeline.common.errors import InvalidParameters
from litepipeline.common.states import Stage, Status
from litepipeline.common.web import require
from litepipeline.manager.handlers.base import ManagerHandler
from litepipeline.common.messages import signal_value
from litepipeline.manager.manager import NAME_LIMIT
from litepipeline.manager.workservice import parse_enable

STAGES = [s.value for s in Stage]
STATUSES = [s.value for s in Status]


def _name(value: Any, key: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameters(f"field '{key}' must be a non-empty string")
    if len(value) > NAME_LIMIT:
        raise InvalidParameters(f"field '{key}' is longer than {NAME_LIMIT} characters")
    return value


def _optional_str(data: dict, key: str) -> Optional[str]:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidParameters(f"field '{key}' must be a string, got {type(value).__name__}")
    return value


def _input_data(data: dict) -> dict:
    value = data.get("input_data")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameters(f"field 'input_data' must be a JSON object, got {type(value).__name__}")
    return value


class WorkflowHandler(ManagerHandler):
    def _choice(self, name: str, choices: list) -> Optional[str]:
        value = self.arg_str(name, required=False)
        if value is not None and value not in choices:
            raise InvalidParameters(f"parameter '{name}' must be one of {', '.join(choices)}, got {value!r}")
        return value

    def _id_from(self, data: dict, key: str) -> str:
        """The id from the JSON body or, as 0.1.5's client sends it on updates, the query."""
        value = data.get(key)
        if value is None:
            value = self.get_query_argument(key, None)
        if not isinstance(value, str) or not value:
            raise InvalidParameters(f"missing field '{key}'")
        return value


class WorkflowCreateHandler(WorkflowHandler):
    async def post(self) -> None:
        data = self.json_body()
        if "configuration" not in data:
            raise InvalidParameters("missing field 'configuration'")
        workflow_id = await self.manager.works.create_workflow(
            _name(data.get("name")), data["configuration"], _optional_str(data, "description") or "",
            parse_enable(data.get("enable"), True))
        self.reply(workflow_id=workflow_id)


class WorkflowUpdateHandler(WorkflowHandler):
    async def put(self) -> None:
        data = self.json_body()
        workflow_id = self._id_from(data, "workflow_id")
        name = data.get("name")
        await self.manager.works.update_workflow(
            workflow_id, _name(name) if name is not None else None, data.get("configuration"),
            _optional_str(data, "description"), parse_enable(data.get("enable"), None))
        self.reply(workflow_id=workflow_id)

    post = put


class WorkflowListHandler(WorkflowHandler):
    async def get(self) -> None:
        offset, limit = self.arg_int("offset", 0), self.arg_int("limit", 0)
        # 0.1.5's client filters by id with 'id'
        workflow_id = self.arg_str("workflow_id", required=False) or self.arg_str("id", required=False)
        workflows, total = await self.manager.works.list_workflows(offset, limit, self.arg_str("name", required=False),
                                                                   workflow_id)
        self.reply(workflows=workflows, total=total, offset=offset, limit=limit)


class WorkflowInfoHandler(WorkflowHandler):
    async def get(self) -> None:
        info = await self.manager.works.workflow_info(self.arg_str("workflow_id"))
        self.reply(workflow_info=info, info=info)   # 'info': what 0.1.5's client reads


class WorkflowDeleteHandler(WorkflowHandler):
    async def delete(self) -> None:
        await self.manager.works.delete_workflow(self.arg_str("workflow_id"))
        self.reply()


class WorkCreateHandler(WorkflowHandler):
    async def post(self) -> None:
        data = self.json_body()
        workflow_id = require(data, "workflow_id", str, "a string")
        work_id = await self.manager.works.create_work(workflow_id, _name(data.get("name")), _input_data(data))
        self.reply(work_id=work_id)


class WorkListHandler(WorkflowHandler):
    async def get(self) -> None:
        offset, limit = self.arg_int("offset", 0), self.arg_int("limit", 0)
        works, total = await self.manager.works.list_works(
            offset, limit, work_id=self.arg_str("work_id", required=False),
            workflow_id=self.arg_str("workflow_id", required=False), name=self.arg_str("name", required=False),
            stage=self._choice("stage", STAGES), status=self._choice("status", STATUSES))
        self.reply(works=works, total=total, offset=offset, limit=limit)


class WorkInfoHandler(WorkflowHandler):
    async def get(self) -> None:
        info = await self.manager.works.work_info(self.arg_str("work_id"))
        self.reply(work_info=info, info=info)   # 'info': what 0.1.5's client reads


class WorkDeleteHandler(WorkflowHandler):
    async def delete(self) -> None:
        await self.manager.works.delete_work(self.arg_str("work_id"))
        self.reply()


class WorkStopHandler(WorkflowHandler):
    async def put(self) -> None:
        data = self.json_body()
        work_id = self._id_from(data, "work_id")
        await self.manager.works.stop_work(work_id, signal_value(data.get("signal", -15)))
        self.reply(work_id=work_id)


class WorkRerunHandler(WorkflowHandler):
    async def put(self) -> None:
        work_id = self._id_from(self.json_body(), "work_id")
        self.reply(work_id=await self.manager.works.rerun_work(work_id), rerun_of=work_id)

    post = put


class WorkRecoverHandler(WorkflowHandler):
    async def put(self) -> None:
        work_id = self._id_from(self.json_body(), "work_id")
        await self.manager.works.recover_work(work_id)
        self.reply(work_id=work_id)

    post = put


ROUTES = [
    (r"/workflow/create", WorkflowCreateHandler),
    (r"/workflow/update", WorkflowUpdateHandler),
    (r"/workflow/list", WorkflowListHandler),
    (r"/workflow/info", WorkflowInfoHandler),
    (r"/workflow/delete", WorkflowDeleteHandler),
    (r"/work/create", WorkCreateHandler),
    (r"/work/list", WorkListHandler),
    (r"/work/info", WorkInfoHandler),
    (r"/work/delete", WorkDeleteHandler),
    (r"/work/stop", WorkStopHandler),
    (r"/work/rerun", WorkRerunHandler),
    (r"/work/recover", WorkRecoverHandler),
]
