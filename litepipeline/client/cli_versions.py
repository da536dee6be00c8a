"""CLI operations of versions (SPEC §8, §9): ``app_history``, ``venv``, ``venv_history``,
and ``app info --config``; merged into :data:`litepipeline.client.cli.OPERATIONS`.

Flags are the original 0.1.5 client's: ``-a APP_ID``, ``-v VENV_ID``, ``-H HISTORY_ID``.
"""
from __future__ import annotations

import argparse
import json
import os

from types import ModuleType
from typing import Any

from litepipeline.client.api import ManagerClient, Reply

# the cli module (its Operation and helpers), handed over by operations(): importing it
# here would be circular (cli merges these operations as it loads)
cli: Any = None

VENV_COLUMNS = ("venv_id", "name", "create_at", "update_at")
APP_HISTORY_COLUMNS = ("history_id", "application_id", "create_at", "sha1", "description")
VENV_HISTORY_COLUMNS = ("history_id", "venv_id", "create_at", "sha1", "description")


def _app_id(p: argparse.ArgumentParser) -> None:
    cli._app_id(p)


def _paging(p: argparse.ArgumentParser) -> None:
    cli._paging(p)


def _venv_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--venv_id", "--venv-id", dest="venv_id", required=True, help="venv id")


def _history_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("-H", "--history_id", "--history-id", dest="history_id", required=True, help="history id")


def _config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="store_true", help="also show the version's configuration.json")


def _with_config(columns: tuple, key: str, items_key: str):  # noqa: ANN202
    """A run function printing the table and, with --config, the configuration below it."""
    def show(reply: Reply, args: argparse.Namespace) -> None:
        operation = cli.Operation("", lambda p: None, lambda c, a: reply, columns, lambda r: [r.get(items_key) or {}])
        print(cli.render(operation, reply, args.raw, args.width))
        if args.config and not args.raw:
            print()
            print(json.dumps(reply.get(key), indent=4, sort_keys=True))
    return show




def _app_info_args(p: argparse.ArgumentParser) -> None:
    _app_id(p)
    _config_flag(p)


def _app_info(client: ManagerClient, args: argparse.Namespace) -> Reply:
    reply = client.app_info(args.app_id, args.config)
    if reply.ok:
        _with_config((*cli.APP_COLUMNS, "sha1", "description"), "app_config", "app_info")(reply, args)
    return reply


def _app_history_args(p: argparse.ArgumentParser) -> None:
    _app_id(p)
    _history_id(p)


def _app_history_info_args(p: argparse.ArgumentParser) -> None:
    _app_history_args(p)
    _config_flag(p)


def _app_history_info(client: ManagerClient, args: argparse.Namespace) -> Reply:
    reply = client.history_info("app", args.app_id, args.history_id, args.config)
    if reply.ok:
        _with_config(APP_HISTORY_COLUMNS, "history_config", "history_info")(reply, args)
    return reply


def _app_history_list_args(p: argparse.ArgumentParser) -> None:
    _app_id(p)
    _paging(p)


def _venv_fields(p: argparse.ArgumentParser, create: bool) -> None:
    p.add_argument("-f", "--file", required=create, help="venv-pack tarball (.tar.gz)")
    p.add_argument("-n", "--name", required=create, help="venv's name")
    p.add_argument("-d", "--description", default="" if create else None, help="venv's description")


def _venv_create(client: ManagerClient, args: argparse.Namespace) -> Reply:
    path = cli._upload_file(args.file)
    with cli.progress_bar("uploading") as bar:
        return client.venv_create(path, args.name, args.description, progress=bar)


def _venv_update_args(p: argparse.ArgumentParser) -> None:
    _venv_id(p)
    _venv_fields(p, create=False)


def _venv_update(client: ManagerClient, args: argparse.Namespace) -> Reply:
    path = cli._upload_file(args.file) if args.file else None
    with cli.progress_bar("uploading") as bar:
        return client.venv_update(args.venv_id, path, args.name, args.description, progress=bar)


def _venv_download_args(p: argparse.ArgumentParser) -> None:
    _venv_id(p)
    p.add_argument("-s", "--sha1", help="a version's SHA-1 (default: the active one)")
    p.add_argument("-o", "--output", help="file (or existing directory) to write; default ./VENV_ID.tar.gz")


def _venv_download(client: ManagerClient, args: argparse.Namespace) -> Reply:
    name = f"{args.venv_id}.tar.gz"
    dest = args.output or os.path.join(".", name)
    if os.path.isdir(dest):
        dest = os.path.join(dest, name)
    with cli.progress_bar("downloading") as bar:
        return client.venv_download(args.venv_id, dest, args.sha1, progress=bar)


def _venv_history_args(p: argparse.ArgumentParser) -> None:
    _venv_id(p)
    _history_id(p)


def _venv_history_list_args(p: argparse.ArgumentParser) -> None:
    _venv_id(p)
    _paging(p)


def operations(module: ModuleType) -> dict:
    """The operations, built with the cli module's ``Operation`` and helpers."""
    global cli
    cli = module
    Operation = module.Operation
    return {
        ("app", "info"): Operation("show one application (--config: and its configuration.json)", _app_info_args,
                                   _app_info, quiet=True),
        ("app_history", "list"): Operation("list an application's versions, newest first", _app_history_list_args,
                                           lambda c, a: c.history_list("app", a.app_id, a.offset, a.limit),
                                           APP_HISTORY_COLUMNS, lambda r: r.get("app_histories") or []),
        ("app_history", "info"): Operation("show one version of an application", _app_history_info_args,
                                           _app_history_info, quiet=True),
        ("app_history", "activate"): Operation("make a version the active one (new tasks run it)", _app_history_args,
                                               lambda c, a: c.history_activate("app", a.app_id, a.history_id)),
        ("app_history", "delete"): Operation("delete a version (not the active one, nor one a task runs)",
                                             _app_history_args,
                                             lambda c, a: c.history_delete("app", a.app_id, a.history_id)),
        ("venv", "create"): Operation("create a venv from a venv-pack tarball", lambda p: _venv_fields(p, True),
                                      _venv_create, ("venv_id", "result", "message")),
        ("venv", "update"): Operation("update a venv's tarball, name or description", _venv_update_args,
                                      _venv_update, ("venv_id", "result", "message")),
        ("venv", "list"): Operation("list venvs", _paging, lambda c, a: c.venv_list(a.offset, a.limit),
                                    VENV_COLUMNS, lambda r: r.get("venvs") or []),
        ("venv", "info"): Operation("show one venv", _venv_id, lambda c, a: c.venv_info(a.venv_id),
                                    (*VENV_COLUMNS, "sha1", "description"), lambda r: [r.get("venv_info") or {}]),
        ("venv", "download"): Operation("download a venv's tarball", _venv_download_args, _venv_download,
                                        ("venv_id", "file", "result", "message")),
        ("venv", "delete"): Operation("delete a venv (refused while an unfinished task uses it)", _venv_id,
                                      lambda c, a: c.venv_delete(a.venv_id)),
        ("venv_history", "list"): Operation("list a venv's versions, newest first", _venv_history_list_args,
                                            lambda c, a: c.history_list("venv", a.venv_id, a.offset, a.limit),
                                            VENV_HISTORY_COLUMNS, lambda r: r.get("venv_histories") or []),
        ("venv_history", "info"): Operation("show one version of a venv", _venv_history_args,
                                            lambda c, a: c.history_info("venv", a.venv_id, a.history_id),
                                            VENV_HISTORY_COLUMNS, lambda r: [r.get("history_info") or {}]),
        ("venv_history", "activate"): Operation("make a venv version the active one", _venv_history_args,
                                                lambda c, a: c.history_activate("venv", a.venv_id, a.history_id)),
        ("venv_history", "delete"): Operation("delete a venv version (not the active one, nor one a task uses)",
                                              _venv_history_args,
                                              lambda c, a: c.history_delete("venv", a.venv_id, a.history_id)),
    }
