"""``litepipeline``: the command line client of the manager API (SPEC §1).

``litepipeline [-r|--json|-q] [-w WIDTH] [--token TOKEN] HOST:PORT OBJECT OPERATION [options]`` (OBJECT:
app, task, cluster, workflow, work, schedule, service, app_history, venv, venv_history, ...)

Every operation is one :class:`Operation` in :data:`OPERATIONS`: its arguments, a small
function calling :class:`~litepipeline.client.api.ManagerClient`, and the table columns of
a successful answer. Output is the seed's table, the raw JSON with ``-r`` (one line with
``--json``), or the ids with ``-q``; global options go before or after the operation
(:mod:`litepipeline.client.scripting`). ``litepipeline completion bash`` prints a
completion script.

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
from typing import Callable, Optional, TextIO

from litepipeline.client import schedules, scripting, toolkit, workflows
from litepipeline.client.api import ClientError, ManagerClient, Progress, Reply
from litepipeline.client.table import format_table, rows_from
from litepipeline.common.messages import Bad, parse_signal
from litepipeline.common.states import Stage, Status
from litepipeline.version import __version__

PROG = "litepipeline"
DEFAULT_PAGE = 50   # rows a task, work or history list shows unless -l says otherwise
APP_COLUMNS = ("application_id", "name", "create_at", "update_at")
TASK_COLUMNS = ("task_id", "application_id", "task_name", "create_at", "start_at", "end_at", "stage",
                "status")
NODE_COLUMNS = ("node_id", "http_host", "http_port", "action_slots", "app_path", "data_path")
RESULT_COLUMNS = ("result", "message")


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
        return parse_signal(text, words=True)
    except Bad:
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


_count = scripting.count


def _app_id(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-a", "--app_id", "--app-id", dest="app_id", required=required, help="application id")


def _task_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--task_id", "--task-id", dest="task_id", required=True, help="task id")


def _app_fields(p: argparse.ArgumentParser, create: bool) -> None:
    p.add_argument("-f", "--file", required=create, help="application tarball (.tar.gz)")
    p.add_argument("-n", "--name", required=create, help="application's name")
    p.add_argument("-d", "--description", default="" if create else None, help="application's description")


def _paging(p: argparse.ArgumentParser, page: int = 0) -> None:
    """``-o``/``-l``; ``page``: the default limit of a list that grows without bound (tasks)."""
    p.add_argument("-o", "--offset", type=_count, default=0, help="list offset (default 0)")
    p.add_argument("-l", "--limit", type=_count, default=page,
                   help=f"list limit (default {page}{': no limit' if not page else '; 0: no limit'})")


def more_hint(operation: "Operation", args: argparse.Namespace, reply: Reply) -> Optional[str]:
    """For a list whose answer holds fewer rows than ``total``: how to see the others."""
    total, offset = reply.get("total"), getattr(args, "offset", None)
    if not reply.ok or not isinstance(total, int) or not isinstance(offset, int):
        return None
    shown = len(operation.items(reply))
    if offset + shown >= total:
        return None
    start = f" from offset {offset}" if offset else ""
    return f"showing {shown} of {total}{start}; use -o/--offset and -l/--limit to see more"


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


def _task_outcome(reply: Reply) -> Optional[str]:
    """Why ``task run`` exits 1 although the manager answered: the task failed, or is not
    finished yet (and what it waits for)."""
    info = reply.get("task_info") or {}
    task_id = info.get("task_id") or reply.get("task_id")
    if info.get("stage") == Stage.FINISHED.value:
        if info.get("status") == Status.SUCCESS.value:
            return None
        return f"task {task_id} ended {info.get('status')}: {info.get('message') or 'no message'}"
    text = f"task {task_id} is still {info.get('stage') or 'unfinished'}"
    waiting = info.get("waiting_for")
    return f"{text}: {waiting}" if waiting else text


def _task_waiting(reply: Reply) -> Optional[str]:
    """A note for ``task info`` of a task whose actions wait for something (no node, ...)."""
    info = reply.get("task_info") or {}
    waiting = info.get("waiting_for")
    return f"task {info.get('task_id')} is {info.get('stage')}: {waiting}" if waiting else None


def _task_list_args(p: argparse.ArgumentParser) -> None:
    _paging(p, DEFAULT_PAGE)
    p.add_argument("-s", "--stage", choices=[s.value for s in Stage], help="only tasks in this stage")
    _app_id(p, required=False)
    p.add_argument("--status", choices=[s.value for s in Status], help="only finished tasks with this status")
    p.add_argument("-w", "--work", "--work_id", "--work-id", dest="work_id", help="only the tasks of this work")
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


def _app_list_args(p: argparse.ArgumentParser) -> None:
    _paging(p)
    p.add_argument("--long", action="store_true", help="add the sha1 and description columns")


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
    long_columns: Sequence[str] = ()  # columns ``--long`` adds (tasks: toolkit's duration and message)
    id_key: Optional[str] = None  # what ``-q`` prints; default: the first ``*_id`` column (or an item's only one)
    # a line for stderr about an ok answer: why it still exits 1, or a note (what a task waits for)
    explain: Optional[Callable[[Reply], Optional[str]]] = None


def _cluster_info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--long", action="store_true", help="add the platform and labels columns")


def _node_items(reply: Reply) -> list:
    """The nodes of ``cluster info``, labels as ``name=value,...`` (as targets name them)."""
    nodes = (reply.get("info") or {}).get("nodes") or []
    return [dict(n, labels=",".join(f"{k}={v}" for k, v in (n.get("labels") or {}).items()))
            for n in nodes if isinstance(n, dict)]


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("app", "create"): Operation("create an application from a tarball", _app_create_args, _app_create,
                                 ("app_id", "result", "message")),
    ("app", "list"): Operation("list applications", _app_list_args,
                               lambda c, a: c.app_list(a.offset, a.limit),
                               APP_COLUMNS, lambda r: r.get("apps") or [],
                               long_columns=("sha1", "description")),
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
                               succeeded=_task_succeeded, explain=_task_outcome),
    ("task", "list"): Operation("list tasks", _task_list_args,
                                lambda c, a: c.task_list(a.offset, a.limit, a.stage, a.app_id, a.status, a.work_id),
                                TASK_COLUMNS, lambda r: r.get("tasks") or []),
    ("task", "info"): Operation("show one task", _task_info_args,
                                lambda c, a: c.task_wait(a.task_id, a.wait) if a.wait else c.task_info(a.task_id),
                                TASK_COLUMNS, lambda r: [r.get("task_info") or {}], explain=_task_waiting),
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
                                    toolkit.attempt_items, id_key="attempt_id"),
    ("cluster", "info"): Operation("show the registered nodes (--long: their platform and labels)",
                                   _cluster_info_args, lambda c, a: c.cluster_info(),
                                   NODE_COLUMNS, _node_items, long_columns=("platform", "labels")),
}
OPERATIONS.update(workflows.operations(Operation, _input_data, _signal))


OPERATIONS.update({key: Operation(help, add, run, columns, items or _one)
                   for key, (help, add, run, columns, items) in schedules.OPERATIONS.items()})


# -- parser and main -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser of every operation in :data:`OPERATIONS`."""
    objects_names = list(dict.fromkeys(obj for obj, _ in OPERATIONS))
    parser = argparse.ArgumentParser(prog=PROG, description="Command line client of a LitePipeline manager.",
                                     epilog=scripting.operations_help(OPERATIONS),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    scripting.add_global_options(parser, top=True)
    parser.add_argument("-v", "--version", action="version", version=f"%(prog)s {__version__}")
    address = parser.add_argument("address", metavar="HOST:PORT", help="the manager's HTTP address; with fail-over, every manager's, "
                                                                   "comma-separated (HOST:PORT,HOST:PORT): the one that "
                                                                   "leads answers")
    address.completer = scripting.no_completion   # not a file name
    objects = parser.add_subparsers(dest="object", metavar="{" + ",".join(objects_names) + "}", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for (obj, name), operation in OPERATIONS.items():
        if obj not in groups:
            sub = objects.add_parser(obj, help=f"{obj} operations")
            scripting.add_global_options(sub, top=False)
            groups[obj] = sub.add_subparsers(dest="operation", metavar="OPERATION", required=True)
        op_parser = groups[obj].add_parser(name, help=operation.help, description=operation.help)
        operation.add_arguments(op_parser)
        scripting.add_global_options(op_parser, top=False)
    return parser


def render(operation: Operation, reply: Reply, raw: bool, width: int, one_line: bool = False) -> str:
    """The text printed for ``reply``: raw JSON (one line or indented), the operation's table,
    or the error table."""
    if one_line:
        return scripting.one_line_json(reply)
    if raw:
        return json.dumps(reply, indent=4, sort_keys=True)
    if reply.ok:
        return format_table(operation.columns, rows_from(operation.items(reply), operation.columns), width)
    return format_table(RESULT_COLUMNS, rows_from([reply], RESULT_COLUMNS), width)


def ids(operation: Operation, reply: Reply) -> list[str]:
    """What ``-q`` prints for a successful answer: the ids of its items."""
    return scripting.ids(operation.items(reply), scripting.id_key(operation.columns, operation.id_key))


def _fail(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _completion(argv: Sequence[str]) -> int:
    """``litepipeline completion [SHELL]``: print the shell's completion hook."""
    parser = argparse.ArgumentParser(prog=f"{PROG} completion",
                                     description="Print a script that makes the shell complete "
                                                 "litepipeline's operations and options: "
                                                 "eval \"$(litepipeline completion bash)\"")
    parser.add_argument("shell", nargs="?", default="bash", choices=scripting.SHELLS)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    sys.stdout.write(scripting.completion_script(args.shell, PROG))
    return 0


def _with_long(operation: Operation) -> Operation:
    if operation.long_columns:
        return dataclasses.replace(operation, columns=(*operation.columns, *operation.long_columns))
    return dataclasses.replace(operation, columns=(*operation.columns, *toolkit.LONG_COLUMNS),
                               items=toolkit.long_items(operation.items))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 error answer or unreachable, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["completion"]:   # never an address: HOST:PORT has a colon
        return _completion(argv[1:])
    parser = build_parser()
    scripting.complete_if_asked(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return int(exc.code or 0)
    operation = OPERATIONS[(args.object, args.operation)]
    if getattr(args, "long", False):
        operation = _with_long(operation)
    try:
        with ManagerClient(args.address, token=args.token, timeout=args.timeout,
                           tls_ca=args.tls_ca) as client:
            reply = operation.run(client, args)
    except (UsageError, schedules.CliUsageError, workflows.ConfigFileError) as exc:
        _fail(str(exc))
        return scripting.EXIT_USAGE
    except ClientError as exc:
        _fail(str(exc))
        return scripting.EXIT_ERROR
    if args.quiet:
        if reply.ok:
            for value in ids(operation, reply):
                print(value)
        else:   # stdout holds ids only; the error goes to stderr
            message = reply.get("message")
            _fail(f"{reply.get('result')}: {message}" if message else str(reply.get("result")))
    elif not (operation.quiet and reply.ok):
        print(render(operation, reply, args.raw, args.width, one_line=args.json))
        hint = None if args.raw or args.json else more_hint(operation, args, reply)
        if hint:   # stderr: the table on stdout stays what scripts parse
            print(f"{PROG}: {hint}", file=sys.stderr)
    succeeded = operation.succeeded(reply)
    if reply.http_status == 401:
        _fail(scripting.unauthorized_hint(bool(args.token)))
    elif reply.ok and operation.explain is not None:
        reason = operation.explain(reply)
        if reason:
            print(f"{PROG}: {'note' if succeeded else 'error'}: {reason}", file=sys.stderr)
    return scripting.EXIT_OK if succeeded else scripting.EXIT_ERROR


# versions' operations live in their own module (it uses the helpers above)
from litepipeline.client import cli_versions  # noqa: E402

OPERATIONS.update(cli_versions.operations(sys.modules[__name__]))


if __name__ == "__main__":
    sys.exit(main())
