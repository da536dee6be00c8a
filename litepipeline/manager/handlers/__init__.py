"""The manager's HTTP routes (SPEC §3): thin handlers around the Manager."""
from __future__ import annotations

from litepipeline.common.web import NotFoundHandler
from litepipeline.manager.handlers import (
    apps, cluster, legacy, schedules, services, tasks, toolkit, versions, workflows,
)
from litepipeline.manager.handlers import metrics as metrics_handlers


def routes(manager, metrics=None) -> list:  # noqa: ANN001
    """Every API route; ``metrics``: the :class:`~litepipeline.manager.metrics.ManagerMetrics`
    ``GET /metrics`` answers from (without it that route is 404)."""
    args = {"manager": manager}
    table = [
        (r"/", cluster.IndexHandler),
        (r"/openapi.json", cluster.OpenApiHandler),   # describe a new route in manager/openapi.py
        (r"/cluster/info", cluster.ClusterInfoHandler),
        (r"/app/create", apps.AppCreateHandler),
        (r"/app/list", apps.AppListHandler),
        (r"/app/info", apps.AppInfoHandler),
        (r"/app/update", apps.AppUpdateHandler),
        (r"/app/delete", apps.AppDeleteHandler),
        (r"/app/download", apps.AppDownloadHandler),
        (r"/task/create", tasks.TaskCreateHandler),
        (r"/task/list", tasks.TaskListHandler),
        (r"/task/info", tasks.TaskInfoHandler),
        (r"/task/delete", tasks.TaskDeleteHandler),
        (r"/task/stop", tasks.TaskStopHandler),
        (r"/action/update", tasks.ActionUpdateHandler),
        (r"/task/log", toolkit.TaskLogHandler),
        (r"/task/workspace", toolkit.TaskWorkspaceHandler),
        (r"/task/rerun", toolkit.TaskRerunHandler),
        (r"/task/recover", toolkit.TaskRecoverHandler),
        (r"/schedule/create", schedules.ScheduleCreateHandler),
        (r"/schedule/update", schedules.ScheduleUpdateHandler),
        (r"/schedule/list", schedules.ScheduleListHandler),
        (r"/schedule/info", schedules.ScheduleInfoHandler),
        (r"/schedule/delete", schedules.ScheduleDeleteHandler),
        (r"/schedule/fires", schedules.ScheduleFiresHandler),
        (r"/service/create", services.ServiceCreateHandler),
        (r"/service/update", services.ServiceUpdateHandler),
        (r"/service/list", services.ServiceListHandler),
        (r"/service/info", services.ServiceInfoHandler),
        (r"/service/delete", services.ServiceDeleteHandler),
        *workflows.ROUTES,
    ]
    table += versions.ROUTES + legacy.ROUTES
    return [(path, handler, args) for path, handler in table] + metrics_handlers.routes(manager, metrics)


__all__ = ["routes", "NotFoundHandler"]
