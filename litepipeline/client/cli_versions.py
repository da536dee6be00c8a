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


def _app_info_columns() -> tuple:   # the cli module's APP_COLUMNS, once it is handed over
    return (*cli.APP_COLUMNS, "sha1", "description")


def _app_id(p: argparse.ArgumentParser) -> None:
    cli._app_id(p)


def _paging(p: argparse.ArgumentParser, page: int = 0) -> None:
    cli._paging(p, page)


def _venv_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--venv_id", "--venv-id", dest="venv_id", required=True, help="venv id")


def _history_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("-H", "--history_id", "--history-id", dest="history_id", required=True, help="history id")


def _config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="store_true", help="also show the version's configuration.json")


def _with_config(columns: tuple, key: str, items_key: str):  # noqa: ANN202
    """A run function printing the table and, with --config, the configuration below it."""
    def show(reply: Reply, args: argparse.Namespace) -> None:
        if args.quiet:
            return   # main prints the ids (the operation's columns and items say which)
        operation = cli.Operation("", lambda p: None, lambda c, a: reply, columns, _item(items_key))
        print(cli.render(operation, reply, args.raw, args.width, one_line=args.json))
        if args.config and not (args.raw or args.json):   # raw and JSON output hold it already
            print()
            print(json.dumps(reply.get(key), indent=4, sort_keys=True))
    return show




def _app_info_args(p: argparse.ArgumentParser) -> None:
    _app_id(p)
    _config_flag(p)


def _app_info(client: ManagerClient, args: argparse.Namespace) -> Reply:
    reply = client.app_info(args.app_id, args.config)
    if reply.ok:
        _with_config(_app_info_columns(), "app_config", "app_info")(reply, args)
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
    _paging(p, cli.DEFAULT_PAGE)


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
    _paging(p, cli.DEFAULT_PAGE)


def _history(kind: str, call: str):  # noqa: ANN202
    """A run function calling ``history_<call>`` for an app (``-a``) or a venv (``-v``)."""
    def run(client: ManagerClient, args: argparse.Namespace) -> Reply:
        owner_id = args.app_id if kind == "app" else args.venv_id
        if call == "list":
            return client.history_list(kind, owner_id, args.offset, args.limit)
        if call == "info":
            return client.history_info(kind, owner_id, args.history_id)
        return getattr(client, f"history_{call}")(kind, owner_id, args.history_id)
    return run


def _items(key: str):  # noqa: ANN202
    return lambda reply: reply.get(key) or []


def _item(key: str):  # noqa: ANN202
    return lambda reply: [reply.get(key) or {}]


def operations(module: ModuleType) -> dict:
    """The operations, built with the cli module's ``Operation`` and helpers."""
    global cli
    cli = module
    op = module.Operation
    created = ("venv_id", "result", "message")
    return {
        # quiet: the run prints the table (and --config's configuration); -q's ids come from main
        ("app", "info"): op("show one application (--config: and its configuration.json)", _app_info_args,
                            _app_info, _app_info_columns(), _item("app_info"), quiet=True),
        ("app_history", "list"): op("list an application's versions, newest first", _app_history_list_args,
                                    _history("app", "list"), APP_HISTORY_COLUMNS, _items("app_histories")),
        ("app_history", "info"): op("show one version of an application", _app_history_info_args,
                                    _app_history_info, APP_HISTORY_COLUMNS, _item("history_info"), quiet=True),
        ("app_history", "activate"): op("make a version the active one (new tasks run it)", _app_history_args,
                                        _history("app", "activate")),
        ("app_history", "delete"): op("delete a version (not the active one, nor one a task runs or a work pinned)",
                                      _app_history_args, _history("app", "delete")),
        ("venv", "create"): op("create a venv from a venv-pack tarball", lambda p: _venv_fields(p, True),
                               _venv_create, created),
        ("venv", "update"): op("update a venv's tarball, name or description", _venv_update_args, _venv_update,
                               created),
        ("venv", "list"): op("list venvs", _paging, lambda c, a: c.venv_list(a.offset, a.limit), VENV_COLUMNS,
                             _items("venvs")),
        ("venv", "info"): op("show one venv", _venv_id, lambda c, a: c.venv_info(a.venv_id),
                             (*VENV_COLUMNS, "sha1", "description"), _item("venv_info")),
        ("venv", "download"): op("download a venv's tarball", _venv_download_args, _venv_download,
                                 ("venv_id", "file", "result", "message")),
        ("venv", "delete"): op("delete a venv (refused while an unfinished task uses it)", _venv_id,
                               lambda c, a: c.venv_delete(a.venv_id)),
        ("venv_history", "list"): op("list a venv's versions, newest first", _venv_history_list_args,
                                     _history("venv", "list"), VENV_HISTORY_COLUMNS, _items("venv_histories")),
        ("venv_history", "info"): op("show one version of a venv", _venv_history_args, _history("venv", "info"),
                                     VENV_HISTORY_COLUMNS, _item("history_info")),
        ("venv_history", "activate"): op("make a venv version the active one", _venv_history_args,
                                         _history("venv", "activate")),
        ("venv_history", "delete"): op("delete a venv version (not the active one, nor one a task uses)",
                                       _venv_history_args, _history("venv", "delete")),
    }
