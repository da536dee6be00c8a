"""``/task/*`` and the nodes' ``/action/update``."""
from __future__ import annotations

from litepipeline.common.errors import InvalidParameters
from litepipeline.common.messages import Report, signal_value
from litepipeline.common.states import Stage, Status
from litepipeline.common.textcheck import may_hold_poison
from litepipeline.common.web import require
from litepipeline.manager import idempotency
from litepipeline.manager.handlers.base import ManagerHandler
from litepipeline.manager.manager import MAX_WAIT, NAME_LIMIT

STAGES = [s.value for s in Stage]
STATUSES = [s.value for s in Status]
BODY_SLACK = 64 * 1024   # a body's room beyond its largest field


class TaskCreateHandler(ManagerHandler):
    def body_limit(self) -> int:
        return max(self.max_json_body, self.manager.config.max_input_size + BODY_SLACK)

    async def post(self) -> None:
        data = self.json_body()
        app_id = require(data, "app_id", str, "a string")
        task_name = require(data, "task_name", str, "a string")
        if not task_name.strip():
            raise InvalidParameters("field 'task_name' must not be empty")
        if len(task_name) > NAME_LIMIT:
            raise InvalidParameters(f"field 'task_name' is longer than {NAME_LIMIT} characters")
        input_data = data.get("input_data")
        if input_data is None:
            input_data = {}
        if not isinstance(input_data, dict):
            raise InvalidParameters(f"field 'input_data' must be a JSON object, got {type(input_data).__name__}")
        # wait (an extension): answer once the task has finished, with its task info too
        wait = data.get("wait") or 0
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= MAX_WAIT:
            raise InvalidParameters(f"field 'wait' must be a number of seconds between 0 and {MAX_WAIT:g}, "
                                    f"got {str(wait)[:60]!r}")
        key = self.request.headers.get(idempotency.HEADER)
        key = idempotency.check_key(key) if key is not None else None
        task_id = await self.manager.create_task(app_id, task_name, input_data, idempotency_key=key)
        if wait:
            self.reply(task_id=task_id, **await self.manager.task_info(task_id, wait))
        else:
            self.reply(task_id=task_id)


class TaskListHandler(ManagerHandler):
    async def get(self) -> None:
        stage = self.arg_str("stage", required=False)
        if stage is not None and stage not in STAGES:
            raise InvalidParameters(f"parameter 'stage' must be one of {', '.join(STAGES)}, got {stage!r}")
        status = self.arg_str("status", required=False)
        if status is not None and status not in STATUSES:
            raise InvalidParameters(f"parameter 'status' must be one of {', '.join(STATUSES)}, got {status!r}")
        tasks, total = await self.manager.list_tasks(self.arg_int("offset", 0), self.arg_int("limit", 0), stage,
                                                     self.arg_str("app_id", required=False), status,
                                                     self.arg_str("work_id", required=False))
        self.reply(tasks=tasks, total=total)


class TaskInfoHandler(ManagerHandler):
    async def get(self) -> None:
        # wait (an extension): hold the answer until the task has finished, at most this long
        task_id = self.arg_str("task_id")
        self.reply(**await self.manager.task_info(task_id, self.arg_float("wait", 0, 0, MAX_WAIT)))


class TaskDeleteHandler(ManagerHandler):
    async def delete(self) -> None:
        await self.manager.delete_task(self.arg_str("task_id"))
        self.reply()


class TaskStopHandler(ManagerHandler):
    async def put(self) -> None:
        data = self.json_body()
        task_id = require(data, "task_id", str, "a string")
        await self.manager.stop_task(task_id, signal_value(data.get("signal", -15)))
        self.reply()


class ActionUpdateHandler(ManagerHandler):
    def body_limit(self) -> int:
        # a report carries the action's output; one past max_output_size is recorded as a failure
        return max(self.max_json_body, 2 * self.manager.config.max_output_size + BODY_SLACK)

    async def put(self) -> None:
        # validated as over the TCP channel; its text by Manager.action_update (unless the
        # raw JSON was seen to hold none a store refuses)
        report = Report.parse(self.json_body(check=False))
        body = self.raw_body()
        await self.manager.action_update(report, len(body), may_hold_poison(body))
        self.reply()
