"""The CLI's ``workflow`` and ``work`` operations (SPEC §10, with 0.1.5's flags).

:mod:`litepipeline.client.cli` adds :func:`operations` to its ``OPERATIONS``.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from litepipeline.client.api import ManagerClient, Reply
from litepipeline.common.states import Stage, Status

WORKFLOW_COLUMNS = ("workflow_id", "name", "create_at", "update_at", "enable")
WORK_COLUMNS = ("work_id", "workflow_id", "name", "create_at", "start_at", "end_at", "stage", "status")
RESULT_COLUMNS = ("result", "message")
WORK_PAGE = 50   # works a list shows unless -l says otherwise (cli.DEFAULT_PAGE; cli imports this module)


class ConfigFileError(Exception):
    """The ``-c`` file cannot be read as a JSON workflow configuration."""


def _workflow_id(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-w", "--workflow_id", "--workflow-id", dest="workflow_id", required=required,
                   help="workflow id")


def _work_id(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-w", "--work_id", "--work-id", dest="work_id", required=required, help="work id")


def _paging(p: argparse.ArgumentParser, page: int = 0) -> None:
    p.add_argument("-o", "--offset", type=int, default=0, help="list offset (default 0)")
    p.add_argument("-l", "--limit", type=int, default=page,
                   help=f"list limit (default {page}{': no limit' if not page else '; 0: no limit'})")


def _enable(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument("-e", "--enable", choices=["true", "false"], default=default,
                   help="whether works of it may be created" + (" (default true)" if default else ""))


def _workflow_fields(p: argparse.ArgumentParser, create: bool) -> None:
    p.add_argument("-n", "--name", required=create, help="workflow's name")
    p.add_argument("-c", "--config", required=create, help="workflow configuration, a JSON file")
    p.add_argument("-d", "--description", default="" if create else None, help="workflow's description")
    _enable(p, "true" if create else None)


def read_config(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fp:
            return json.load(fp)
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigFileError(f"{path} is not valid JSON: {exc}") from None


def _flag(value: Any) -> Any:
    return None if value is None else value == "true"


def workflow_create(client: ManagerClient, args: argparse.Namespace) -> Reply:
    body = {"name": args.name, "configuration": read_config(args.config), "description": args.description,
            "enable": _flag(args.enable)}
    return client.call("POST", "/workflow/create", json=body)


def workflow_update(client: ManagerClient, args: argparse.Namespace) -> Reply:
    body: dict = {"workflow_id": args.workflow_id, "name": args.name, "description": args.description,
                  "enable": _flag(args.enable)}
    if args.config:
        body["configuration"] = read_config(args.config)
    return client.call("PUT", "/workflow/update", json={k: v for k, v in body.items() if v is not None})


def _workflow_list_args(p: argparse.ArgumentParser) -> None:
    _paging(p)
    _workflow_id(p, required=False)
    p.add_argument("-n", "--name", help="only workflows of this name ('*' is a wildcard)")


def _work_create_args(p: argparse.ArgumentParser) -> None:
    _workflow_id(p)
    p.add_argument("-n", "--name", required=True, help="work's name")
    p.add_argument("-i", "--input_data", "--input-data", "--input", dest="input_data", default="{}",
                   help="work's input data, a JSON object (default {})")


def _work_list_args(p: argparse.ArgumentParser) -> None:
    _paging(p, WORK_PAGE)
    _work_id(p, required=False)
    p.add_argument("-W", "--workflow_id", "--workflow-id", dest="workflow_id", help="only works of this workflow")
    p.add_argument("-n", "--name", help="only works of this name ('*' is a wildcard)")
    p.add_argument("-s", "--stage", choices=[s.value for s in Stage], help="only works in this stage")
    p.add_argument("-S", "--status", choices=[s.value for s in Status], help="only works with this status")


def _work_stop_args(p: argparse.ArgumentParser, signal_type: Callable[[str], int]) -> None:
    _work_id(p)
    p.add_argument("-g", "--signal", type=signal_type, default=-15, metavar="{-9,-15}",
                   help="-15 (SIGTERM, default) or -9 (SIGKILL)")


def operations(operation: Callable[..., Any], input_data: Callable[[str], dict],
               signal_type: Callable[[str], int]) -> dict:
    """The ``(object, operation)`` → ``Operation`` entries of ``workflow`` and ``work``."""
    def get(path: str, **params: Any) -> Callable[[ManagerClient, argparse.Namespace], Reply]:
        return lambda c, a: c.call("GET", path, {k: getattr(a, v) for k, v in params.items()})

    def one(key: str) -> Callable[[Reply], list]:
        return lambda r: [r.get(key) or {}]

    return {
        ("workflow", "create"): operation("create a workflow from a JSON configuration file",
                                          lambda p: _workflow_fields(p, True), workflow_create,
                                          ("workflow_id", *RESULT_COLUMNS)),
        ("workflow", "update"): operation("update a workflow's name, configuration, description or enable flag",
                                          lambda p: (_workflow_id(p), _workflow_fields(p, False)), workflow_update,
                                          ("workflow_id", *RESULT_COLUMNS)),
        ("workflow", "list"): operation("list workflows", _workflow_list_args,
                                        get("/workflow/list", offset="offset", limit="limit", name="name",
                                            workflow_id="workflow_id"),
                                        WORKFLOW_COLUMNS, lambda r: r.get("workflows") or []),
        ("workflow", "info"): operation("show one workflow", _workflow_id,
                                        get("/workflow/info", workflow_id="workflow_id"),
                                        (*WORKFLOW_COLUMNS, "description"), one("workflow_info")),
        ("workflow", "delete"): operation("delete a workflow (refused while a work of it is unfinished)",
                                          _workflow_id,
                                          lambda c, a: c.call("DELETE", "/workflow/delete",
                                                              {"workflow_id": a.workflow_id})),
        ("work", "create"): operation("create a work (one run) of a workflow", _work_create_args,
                                      lambda c, a: c.call("POST", "/work/create", json={
                                          "workflow_id": a.workflow_id, "name": a.name,
                                          "input_data": input_data(a.input_data)}),
                                      ("work_id", *RESULT_COLUMNS)),
        ("work", "list"): operation("list works", _work_list_args,
                                    get("/work/list", offset="offset", limit="limit", work_id="work_id",
                                        workflow_id="workflow_id", name="name", stage="stage", status="status"),
                                    WORK_COLUMNS, lambda r: r.get("works") or []),
        ("work", "info"): operation("show one work", _work_id, get("/work/info", work_id="work_id"),
                                    WORK_COLUMNS, one("work_info")),
        ("work", "delete"): operation("delete a finished work", _work_id,
                                      lambda c, a: c.call("DELETE", "/work/delete", {"work_id": a.work_id})),
        ("work", "stop"): operation("stop every unfinished task of a work",
                                    lambda p: _work_stop_args(p, signal_type),
                                    lambda c, a: c.call("PUT", "/work/stop",
                                                        json={"work_id": a.work_id, "signal": a.signal}),
                                    ("work_id", *RESULT_COLUMNS)),
        ("work", "rerun"): operation("create a new work with a finished work's workflow, name and input", _work_id,
                                     lambda c, a: c.call("PUT", "/work/rerun", json={"work_id": a.work_id}),
                                     ("work_id", *RESULT_COLUMNS)),
        ("work", "recover"): operation("run a failed or killed work's unsucceeded applications again", _work_id,
                                       lambda c, a: c.call("PUT", "/work/recover", json={"work_id": a.work_id}),
                                       ("work_id", *RESULT_COLUMNS)),
    }
