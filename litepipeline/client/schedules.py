"""The CLI's ``schedule`` and ``service`` operations (SPEC §11, §12), with 0.1.5's flags.

Each entry of :data:`OPERATIONS` is ``(help, add_arguments, run, columns, items)`` for
:class:`litepipeline.client.cli.Operation`; ``run`` calls the manager through
``ManagerClient.call``.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Optional

from litepipeline.client.api import ManagerClient, Reply

SCHEDULE_COLUMNS = ("schedule_id", "schedule_name", "source", "source_id", "cron", "timezone", "enable",
                    "last_fire_at")
SERVICE_COLUMNS = ("service_id", "name", "application_id", "task_id", "stage", "status", "enable", "restarts",
                   "last_exit", "next_start_at")
ID_COLUMNS = {"schedule": ("schedule_id", "result", "message"), "service": ("service_id", "result", "message")}
RESULT = ("result", "message")


class CliUsageError(Exception):
    """Arguments that cannot be sent (the CLI turns it into its usage error)."""


def _json_object(text: Optional[str]) -> Optional[dict]:
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliUsageError(f"-i/--input_data is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliUsageError(f"-i/--input_data must be a JSON object, got {type(data).__name__}: {text}")
    return data


def _bool(text: Optional[str]) -> Optional[bool]:
    return None if text is None else text == "true"


def _drop_none(data: dict) -> dict:
    return {k: v for k, v in data.items() if v is not None}


# -- schedule ---------------------------------------------------------------------------------


def _schedule_id(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-s", "--schedule_id", "--schedule-id", dest="schedule_id", required=required,
                   help="schedule id")


def _schedule_fields(p: argparse.ArgumentParser, create: bool) -> None:
    p.add_argument("-n", "--name", required=create, help="schedule's name (also its tasks' name)")
    source = p.add_mutually_exclusive_group(required=create)
    source.add_argument("-a", "--app_id", "--app-id", dest="app_id", help="fire a task of this application")
    source.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id",
                        help="fire a work of this workflow")
    p.add_argument("-i", "--input_data", "--input-data", "--input", dest="input_data",
                   default="{}" if create else None, help="input data of what it fires, a JSON object")
    p.add_argument("-c", "--cron", help="cron expression, 5 fields: 'minute hour day-of-month month day-of-week'")
    p.add_argument("-m", "--minute", type=int, help="0.1.5 style: minute 0-59 (-1 unset: 0)")
    p.add_argument("-H", "--hour", type=int, help="0.1.5 style: hour 0-23 (-1 unset: 0)")
    p.add_argument("-d", "--day_of_month", "--day-of-month", dest="day_of_month", type=int,
                   help="0.1.5 style: day of month 1-31 (-1 unset)")
    p.add_argument("-D", "--day_of_week", "--day-of-week", dest="day_of_week", type=int,
                   help="0.1.5 style: day of week 1-7, Sunday 7 or 0 (-1 unset)")
    p.add_argument("--timezone", help="IANA zone of the times (default: the manager's)")
    p.add_argument("--catchup", choices=("skip", "latest", "all"),
                   help="fires missed while the manager was down or the schedule disabled (default latest)")
    p.add_argument("--overlap", choices=("allow", "skip"),
                   help="skip a fire while the previous one's task is unfinished (default allow)")
    p.add_argument("-e", "--enable", choices=("true", "false"), default="false" if create else None,
                   help="enabled (default false, as 0.1.5)")


def _schedule_body(args: argparse.Namespace) -> dict:
    legacy = {k: getattr(args, k) for k in ("minute", "hour", "day_of_month", "day_of_week")}
    if args.cron is not None and any(v is not None for v in legacy.values()):
        raise CliUsageError("give either -c/--cron or -m/-H/-d/-D, not both")
    body: dict[str, Any] = {"schedule_name": args.name, "input_data": _json_object(args.input_data),
                            "cron": args.cron, "timezone": args.timezone, "catchup": args.catchup,
                            "overlap": args.overlap, "enable": _bool(args.enable), **legacy}
    if args.app_id:
        body.update(source="application", source_id=args.app_id)
    elif args.workflow_id:
        body.update(source="workflow", source_id=args.workflow_id)
    return _drop_none(body)


def _schedule_update_args(p: argparse.ArgumentParser) -> None:
    _schedule_id(p)
    _schedule_fields(p, create=False)


def _schedule_list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--offset", type=int, default=0, help="list offset")
    p.add_argument("-l", "--limit", type=int, default=0, help="list limit (0: no limit)")
    _schedule_id(p, required=False)
    p.add_argument("-a", "--app_id", "--app-id", dest="app_id", help="only schedules of this application")
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id",
                   help="only schedules of this workflow")
    p.add_argument("-n", "--name", help="only this name ('*' is a wildcard)")
    p.add_argument("-e", "--enable", choices=("true", "false"), help="only enabled or disabled ones")


def _schedule_list(c: ManagerClient, a: argparse.Namespace) -> Reply:
    return c.call("GET", "/schedule/list", params={"offset": a.offset, "limit": a.limit,
                                                   "schedule_id": a.schedule_id,
                                                   "source_id": a.app_id or a.workflow_id, "name": a.name,
                                                   "enable": a.enable})


def _fire_items(reply: Reply) -> list:
    return reply.get("fires") or []


# -- service ----------------------------------------------------------------------------------


def _service_id(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-s", "--service_id", "--service-id", dest="service_id", required=required, help="service id")


def _signal(text: str) -> int:
    value = {"-9": -9, "9": -9, "-15": -15, "15": -15}.get(text.strip())
    if value is None:
        raise argparse.ArgumentTypeError(f"invalid signal {text!r}: use -9 (SIGKILL) or -15 (SIGTERM)")
    return value


def _service_fields(p: argparse.ArgumentParser, create: bool) -> None:
    p.add_argument("-n", "--name", required=create, help="service's name (also its tasks' name)")
    p.add_argument("-a", "--app_id", "--app-id", dest="app_id", required=create, help="application id")
    p.add_argument("-i", "--input_data", "--input-data", "--input", dest="input_data",
                   default="{}" if create else None, help="its task's input data, a JSON object")
    p.add_argument("-d", "--description", default="" if create else None, help="service's description")
    p.add_argument("-g", "--signal", type=_signal, metavar="{-9,-15}",
                   help="signal that stops it when disabled (default -15, then SIGKILL after a timeout)")
    p.add_argument("-e", "--enable", choices=("true", "false"), default="false" if create else None,
                   help="enabled (default false, as 0.1.5)")
    p.add_argument("--restart", choices=("always", "on-failure"), help="when to restart it (default always)")


def _service_body(args: argparse.Namespace) -> dict:
    return _drop_none({"name": args.name, "app_id": args.app_id, "input_data": _json_object(args.input_data),
                       "description": args.description, "signal": args.signal, "enable": _bool(args.enable),
                       "restart": args.restart})


def _service_update_args(p: argparse.ArgumentParser) -> None:
    _service_id(p)
    _service_fields(p, create=False)


def _service_list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--offset", type=int, default=0, help="list offset")
    p.add_argument("-l", "--limit", type=int, default=0, help="list limit (0: no limit)")
    _service_id(p, required=False)
    p.add_argument("-a", "--app_id", "--app-id", dest="app_id", help="only services of this application")
    p.add_argument("-n", "--name", help="only this name ('*' is a wildcard)")
    p.add_argument("-e", "--enable", choices=("true", "false"), help="only enabled or disabled ones")


def _service_enable(enable: bool) -> Any:
    return lambda c, a: c.call("PUT", "/service/update", json={"service_id": a.service_id, "enable": enable})


OPERATIONS: dict = {
    ("schedule", "create"): (
        "create a schedule: tasks of an application (or works of a workflow) at given times",
        lambda p: _schedule_fields(p, create=True),
        lambda c, a: c.call("POST", "/schedule/create", json=_schedule_body(a)), ID_COLUMNS["schedule"], None),
    ("schedule", "update"): (
        "change a schedule", _schedule_update_args,
        lambda c, a: c.call("PUT", "/schedule/update", json={"schedule_id": a.schedule_id, **_schedule_body(a)}),
        ID_COLUMNS["schedule"], None),
    ("schedule", "list"): ("list schedules", _schedule_list_args, _schedule_list, SCHEDULE_COLUMNS,
                           lambda r: r.get("schedules") or []),
    ("schedule", "info"): (
        "show one schedule and its next 5 fire times", _schedule_id,
        lambda c, a: c.call("GET", "/schedule/info", params={"schedule_id": a.schedule_id}),
        (*SCHEDULE_COLUMNS, "next_fire_at"), lambda r: [r.get("schedule_info") or {}]),
    ("schedule", "fires"): (
        "list a schedule's fires, newest first", _schedule_id,
        lambda c, a: c.call("GET", "/schedule/fires", params={"schedule_id": a.schedule_id}),
        ("fire_at", "outcome", "target_id", "create_at"), _fire_items),
    ("schedule", "delete"): (
        "delete a schedule", _schedule_id,
        lambda c, a: c.call("DELETE", "/schedule/delete", params={"schedule_id": a.schedule_id}), RESULT, None),
    ("service", "create"): (
        "create a service: an application kept running, one task at a time",
        lambda p: _service_fields(p, create=True),
        lambda c, a: c.call("POST", "/service/create", json=_service_body(a)), ID_COLUMNS["service"], None),
    ("service", "update"): (
        "change a service (application and input apply at its next start)", _service_update_args,
        lambda c, a: c.call("PUT", "/service/update", json={"service_id": a.service_id, **_service_body(a)}),
        ID_COLUMNS["service"], None),
    ("service", "list"): (
        "list services", _service_list_args,
        lambda c, a: c.call("GET", "/service/list", params={"offset": a.offset, "limit": a.limit,
                                                            "service_id": a.service_id, "app_id": a.app_id,
                                                            "name": a.name, "enable": a.enable}),
        SERVICE_COLUMNS, lambda r: r.get("services") or []),
    ("service", "info"): (
        "show one service", _service_id,
        lambda c, a: c.call("GET", "/service/info", params={"service_id": a.service_id}),
        (*SERVICE_COLUMNS, "restart", "signal"), lambda r: [r.get("service_info") or {}]),
    ("service", "delete"): (
        "delete a service (its task is stopped)", _service_id,
        lambda c, a: c.call("DELETE", "/service/delete", params={"service_id": a.service_id}), RESULT, None),
    ("service", "enable"): ("enable a service (it starts)", _service_id, _service_enable(True),
                            ID_COLUMNS["service"], None),
    ("service", "disable"): ("disable a service (its task is stopped with its signal)", _service_id,
                             _service_enable(False), ID_COLUMNS["service"], None),
}
