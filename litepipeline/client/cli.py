"""``litepipeline``: the command line client of the manager API (SPEC §1).

``litepipeline [-r] [-w WIDTH] [--token TOKEN] HOST:PORT {app,task,cluster} OPERATION [options]``

Every operation is one :class:`Operation` in :data:`OPERATIONS`: its arguments, a small
function calling :class:`~litepipeline.client.api.ManagerClient`, and the table columns of
a successful answer. Output is the seed's table (or the raw JSON with ``-r``).

Exit codes: 0 success; 1 the manager answered an error envelope, or could not be reached;
2 a usage error (nothing was sent).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Callable, TextIO

from litepipeline.client import toolkit
from litepipeline.client.api import ClientError, ManagerClient, Progress, Reply
from litepipeline.client.table import format_table, rows_from
from litepipeline.common.states import Stage, Status
from litepipeline.version import __version__

PROG = "litepipeline"
APP_COLUMNS = ("application_id", "name", "create_at", "update_at")
TASK_COLUMNS = ("task_id", "application_id", "task_name", "create_at", "start_at", "end_at", "stage",
                "status")
NODE_COLUMNS = ("node_id", "http_host", "http_port", "action_slots", "app_path", "data_path")
RESULT_COLUMNS = ("result", "message")
SIGNALS = {"-9": -9, "9": -9, "kill": -9, "sigkill": -9, "-15": -15, "15": -15, "term": -15, "sigterm": -15}


class UsageError(Exception):
    """Arguments that argparse accepts but that cannot be sent (exit 2, nothing sent)."""


# -- progress ------------------------------------------------------------------------------


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class ProgressBar:
    """A one-line progress bar redrawn in place, at most ten times a second."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self._last = 0.0
        self._drawn = False
        self._skipped: tuple[int, int | None] | None = None

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and done != total:
            self._skipped = (done, total)
            return
        self._last = now
        self._skipped = None
        if total:
            filled = int(30 * done / total)
            line = f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {100 * done / total:5.1f}% " \
                   f"{_human(done)} / {_human(total)}"
        else:
            line = f"{self.label} {_human(done)}"
        self.stream.write(f"\r{line}\033[K")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._skipped is not None:  # show the final count even if it came too soon to draw
            done, total = self._skipped
            self._last = 0.0
            self(done, total)
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[Progress | None]:
    """A progress callback drawing on stderr, or ``None`` when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    bar = ProgressBar(label, sys.stderr)
    try:
        yield bar
    finally:
        bar.finish()


# -- argument types and shared arguments -------------------------------------------------------


def _signal(text: str) -> int:
    try:
        return SIGNALS[text.strip().lower()]
    except KeyError:
        message = f"invalid signal {text!r}: use -9 (SIGKILL) or -15 (SIGTERM)"
        raise argparse.ArgumentTypeError(message) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0: {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _app_id(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-a", "--app_id", "--app-id", dest="app_id", required=required, help="application id")


def _task_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--task_id", "--task-id", dest="task_id", required=True, help="task id")


def _app_fields(p: argparse.ArgumentParser, create: bool) -> None:
    p.add_argument("-f", "--file", required=create, help="application tarball (.tar.gz)")
    p.add_argument("-n", "--name", required=create, help="application's name")
    p.add_argument("-d", "--description", default="" if create else None, help="application's description")


def _paging(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--offset", type=_count, default=0, help="list offset (default 0)")
    p.add_argument("-l", "--limit", type=_count, default=0, help="list limit (default 0: no limit)")


def _upload_file(path: str) -> str:
    if not os.path.exists(path):
        raise UsageError(f"file not found: {path}")
    if not os.path.isfile(path):
        raise UsageError(f"not a regular file: {path}")
    return path


def _input_data(text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"-i/--input_data is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"-i/--input_data must be a JSON object, got {type(data).__name__}: {text}")
    return data


# -- operations ------------------------------------------------------------------------------


def _app_create_args(p: argparse.ArgumentParser) -> None:
    _app_fields(p, create=True)


def _app_create(client: ManagerClient, args: argparse.Namespace) -> Reply:
    path = _upload_file(args.file)
    with progress_bar("uploading") as bar:
        return client.app_create(path, args.name, args.description, progress=bar)


def _app_update_args(p: argparse.ArgumentParser) -> None:
    _app_id(p)
    _app_fields(p, create=False)


def _app_update(client: ManagerClient, args: argparse.Namespace) -> Reply:
    path = _upload_file(args.file) if args.file else None
    with progress_bar("uploading") as bar:
        return client.app_update(args.app_id, path, args.name, args.description, progress=bar)


def _app_download_args(p: argparse.ArgumentParser) -> None:
    _app_id(p)
    p.add_argument("-o", "--output", help="file (or existing directory) to write; default ./APP_ID.tar.gz")


def _app_download(client: ManagerClient, args: argparse.Namespace) -> Reply:
    name = f"{args.app_id}.tar.gz"
    dest = args.output or os.path.join(".", name)
    if os.path.isdir(dest):
        dest = os.path.join(dest, name)
    with progress_bar("downloading") as bar:
        return client.app_download(args.app_id, dest, progress=bar)


def _task_create_args(p: argparse.ArgumentParser) -> None:
    _app_id(p)
    p.add_argument("-n", "--name", required=True, help="task's name")
    # --input is the original client's spelling; scripts may still use it.
    p.add_argument("-i", "--input_data", "--input-data", "--input", dest="input_data", default="{}",
                   help="task's input data, a JSON object (default {})")
    p.add_argument("--idempotency-key", default=None, metavar="KEY",
                   help="repeating a create with the same KEY within 24 h returns the first task, "
                        "never a second one (safe to retry after a lost answer)")


def _task_create(client: ManagerClient, args: argparse.Namespace) -> Reply:
    return client.task_create(args.app_id, args.name, _input_data(args.input_data),
                              idempotency_key=args.idempotency_key)


def _task_run_args(p: argparse.ArgumentParser) -> None:
    _task_create_args(p)
    p.add_argument("--wait", type=_seconds, default=None, metavar="SECONDS",
                   help="give up waiting after SECONDS (default: wait until the task finishes)")
    toolkit.add_long(p)


def _task_run(client: ManagerClient, args: argparse.Namespace) -> Reply:
    return client.task_run(args.app_id, args.name, _input_data(args.input_data), args.wait,
                           idempotency_key=args.idempotency_key)


def _task_succeeded(reply: Reply) -> bool:
    return reply.ok and (reply.get("task_info") or {}).get("status") == "success"


def _task_list_args(p: argparse.ArgumentParser) -> None:
    _paging(p)
    p.add_argument("-s", "--stage", choices=[s.value for s in Stage], help="only tasks in this stage")
    _app_id(p, required=False)
    p.add_argument("--status", choices=[s.value for s in Status], help="only finished tasks with this status")
    toolkit.add_long(p)


def _task_info_args(p: argparse.ArgumentParser) -> None:
    _task_id(p)
    p.add_argument("--wait", type=_seconds, default=None, metavar="SECONDS",
                   help="wait up to SECONDS for the task to finish before showing it")
    toolkit.add_long(p)


def _task_stop_args(p: argparse.ArgumentParser) -> None:
    _task_id(p)
    p.add_argument("-g", "--signal", type=_signal, default=-15, metavar="{-9,-15}",
                   help="-15 (SIGTERM, default) or -9 (SIGKILL)")


def _one(reply: Reply) -> list[dict]:
    return [reply]


@dataclass(frozen=True)
class Operation:
    """One ``OBJECT OPERATION`` of the CLI."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[ManagerClient, argparse.Namespace], Reply]
    columns: Sequence[str] = RESULT_COLUMNS
    items: Callable[[Reply], list] = _one  # the rows of a successful answer
    quiet: bool = False  # the operation printed its own output: no table on success
    succeeded: Callable[[Reply], bool] = lambda reply: reply.ok  # exit status 0 when true


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("app", "create"): Operation("create an application from a tarball", _app_create_args, _app_create,
                                 ("app_id", "result", "message")),
    ("app", "list"): Operation("list applications", _paging,
                               lambda c, a: c.app_list(a.offset, a.limit),
                               APP_COLUMNS, lambda r: r.get("apps") or []),
    ("app", "info"): Operation("show one application", _app_id, lambda c, a: c.app_info(a.app_id),
                               (*APP_COLUMNS, "sha1", "description"), lambda r: [r.get("app_info") or {}]),
    ("app", "update"): Operation("update an application's tarball, name or description", _app_update_args,
                                 _app_update, ("app_id", "result", "message")),
    ("app", "delete"): Operation("delete an application", _app_id, lambda c, a: c.app_delete(a.app_id)),
    ("app", "download"): Operation("download an application's tarball", _app_download_args, _app_download,
                                   ("app_id", "file", "result", "message")),
    ("task", "create"): Operation("create a task", _task_create_args, _task_create,
                                  ("task_id", "result", "message")),
    ("task", "run"): Operation("create a task, wait for it to finish and show it (exit status 0 on success)",
                               _task_run_args, _task_run, TASK_COLUMNS, lambda r: [r.get("task_info") or {}],
                               succeeded=_task_succeeded),
    ("task", "list"): Operation("list tasks", _task_list_args,
                                lambda c, a: c.task_list(a.offset, a.limit, a.stage, a.app_id, a.status),
                                TASK_COLUMNS, lambda r: r.get("tasks") or []),
    ("task", "info"): Operation("show one task", _task_info_args,
                                lambda c, a: c.task_wait(a.task_id, a.wait) if a.wait else c.task_info(a.task_id),
                                TASK_COLUMNS, lambda r: [r.get("task_info") or {}]),
    ("task", "delete"): Operation("delete a finished task", _task_id, lambda c, a: c.task_delete(a.task_id)),
    ("task", "stop"): Operation("stop a task's running actions", _task_stop_args,
                                lambda c, a: c.task_stop(a.task_id, a.signal)),
    ("task", "log"): Operation("print an action's output (-f: follow it until the action ends)",
                               toolkit.log_args, toolkit.task_log, quiet=True),
    ("task", "workspace"): Operation("download a task's (or one action's) workspaces as one tar.gz",
                                     toolkit.workspace_args,
                                     lambda c, a: toolkit.task_workspace(c, a, progress_bar),
                                     ("task_id", "file", "result", "message")),
    ("task", "workspace-delete"): Operation("delete a finished task's workspaces on every node", _task_id,
                                            lambda c, a: c.task_workspace_delete(a.task_id)),
    ("task", "rerun"): Operation("create a new task with a finished task's application and input", _task_id,
                                 lambda c, a: c.task_rerun(a.task_id), ("task_id", "result", "message")),
    ("task", "recover"): Operation("run a failed or killed task again, keeping what succeeded", _task_id,
                                   lambda c, a: c.task_recover(a.task_id), ("task_id", "result", "message")),
    ("task", "attempts"): Operation("show every attempt of a task's actions", _task_id,
                                    lambda c, a: c.task_info(a.task_id), toolkit.ATTEMPT_COLUMNS,
                                    toolkit.attempt_items),
    ("cluster", "info"): Operation("show the registered nodes", lambda p: None, lambda c, a: c.cluster_info(),
                                   NODE_COLUMNS, lambda r: (r.get("info") or {}).get("nodes") or []),
}


# -- parser and main -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser of every operation in :data:`OPERATIONS`."""
    parser = argparse.ArgumentParser(prog=PROG, description="Command line client of a LitePipeline manager.")
    parser.add_argument("-r", "--raw", action="store_true", help="print the manager's JSON answer")
    parser.add_argument("-w", "--column_width", "--width", dest="width", type=_count, default=0,
                        help="cut every table cell to this many characters (default 0: no cut)")
    parser.add_argument("--token", default=os.environ.get("LITEPIPELINE_TOKEN"),
                        help="API token (default: $LITEPIPELINE_TOKEN)")
    parser.add_argument("--tls-ca", default=os.environ.get("LITEPIPELINE_TLS_CA"), metavar="FILE",
                        help="the manager serves TLS: verify its certificate against this CA file "
                             "(default: $LITEPIPELINE_TLS_CA; an https:// address uses the system's CAs)")
    parser.add_argument("--timeout", type=float, default=30,
                        help="seconds to wait for the manager (default 30)")
    parser.add_argument("-v", "--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("address", metavar="HOST:PORT", help="the manager's HTTP address")
    objects = parser.add_subparsers(dest="object", metavar="{app,task,cluster}", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for (obj, name), operation in OPERATIONS.items():
        if obj not in groups:
            sub = objects.add_parser(obj, help=f"{obj} operations")
            groups[obj] = sub.add_subparsers(dest="operation", metavar="OPERATION", required=True)
        op_parser = groups[obj].add_parser(name, help=operation.help, description=operation.help)
        operation.add_arguments(op_parser)
    return parser


def render(operation: Operation, reply: Reply, raw: bool, width: int) -> str:
    """The text printed for ``reply``: raw JSON, the operation's table, or the error table."""
    if raw:
        return json.dumps(reply, indent=4, sort_keys=True)
    if reply.ok:
        return format_table(operation.columns, rows_from(operation.items(reply), operation.columns), width)
    return format_table(RESULT_COLUMNS, rows_from([reply], RESULT_COLUMNS), width)


def _fail(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return int(exc.code or 0)
    operation = OPERATIONS[(args.object, args.operation)]
    if getattr(args, "long", False):
        operation = dataclasses.replace(operation, columns=(*operation.columns, *toolkit.LONG_COLUMNS),
                                        items=toolkit.long_items(operation.items))
    try:
        with ManagerClient(args.address, token=args.token, timeout=args.timeout,
                           tls_ca=args.tls_ca) as client:
            reply = operation.run(client, args)
    except UsageError as exc:
        _fail(str(exc))
        return 2
    except ClientError as exc:
        _fail(str(exc))
        return 1
    if not (operation.quiet and reply.ok):
        print(render(operation, reply, args.raw, args.width))
    return 0 if operation.succeeded(reply) else 1


if __name__ == "__main__":
    sys.exit(main())
