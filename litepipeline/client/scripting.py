"""What makes ``litepipeline`` usable from scripts and a terminal.

Global options accepted before or after the operation, the ``--json`` and ``-q`` outputs,
the operation list and exit codes of ``--help``, and shell completion. Everything here is
derived from the CLI's table of operations, so an operation added there gets it all.
"""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_CODES = ("exit status:\n"
              "  0  success\n"
              "  1  the manager answered an error (or a task ended other than success),\n"
              "     or could not be reached\n"
              "  2  usage error: nothing was sent")
SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")
COMPLETION_ENV = "_ARGCOMPLETE"   # set by the shell hook that argcomplete's script installs


def add_global_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """The options every command takes: on the top parser with their defaults, and on each
    object/operation parser with ``SUPPRESS`` defaults, so that given after the operation
    they override and, when absent there, leave the top parser's values alone.

    An option string an operation already uses for itself (say ``-w WORK_ID``) is left to
    the operation; the long spellings still work there.
    """
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    options: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("-r", "--raw"), dict(action="store_true", default=default(False),
                               help="print the manager's JSON answer, indented, keys sorted")),
        (("--json",), dict(action="store_true", default=default(False),
                           help="print the manager's JSON answer on one line (for scripts)")),
        (("-q", "--quiet"), dict(action="store_true", default=default(False),
                                 help="print only the ids of the answer, one per line")),
        (("-w", "--column_width", "--width"), dict(dest="width", type=count, default=default(0),
                                                   help="cut every table cell to this many characters "
                                                        "(default 0: no cut)")),
        (("--token",), dict(default=default(os.environ.get("LITEPIPELINE_TOKEN")),
                            help="API token (default: $LITEPIPELINE_TOKEN)")),
        (("--tls-ca",), dict(dest="tls_ca", metavar="FILE", default=default(os.environ.get("LITEPIPELINE_TLS_CA")),
                             help="the manager serves TLS: verify its certificate against this CA file "
                                  "(default: $LITEPIPELINE_TLS_CA; an https:// address uses the system's CAs)")),
        (("--timeout",), dict(type=float, default=default(30.0),
                              help="seconds to wait for the manager (default 30)")),
    ]
    taken = set(parser._option_string_actions)   # noqa: SLF001 - argparse has no public view of it
    for strings, kwargs in options:
        free = [s for s in strings if s not in taken]
        if free:
            parser.add_argument(*free, **kwargs)


def count(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def one_line_json(reply: Mapping) -> str:
    """The answer as one line of JSON, keys sorted (``--json``)."""
    return json.dumps(reply, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def id_key(columns: Sequence[str], explicit: Optional[str] = None) -> Optional[str]:
    """The key whose values ``-q`` prints: ``explicit``, else the first ``*_id`` column."""
    return explicit or next((c for c in columns if c.endswith("_id")), None)


def ids(items: Iterable[Any], key: Optional[str]) -> list[str]:
    """The ``key`` value of every item that has one (``-q``). Without a ``key`` (a table
    with no ``*_id`` column), an item's id is its one ``*_id`` key, if it has exactly one."""
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if key is None:
            keys = [k for k in item if isinstance(k, str) and k.endswith("_id")]
            value = item[keys[0]] if len(keys) == 1 else None
        else:
            value = item.get(key)
        if value not in (None, ""):
            out.append(str(value))
    return out


def operations_help(operations: Mapping[tuple[str, str], Any]) -> str:
    """The ``--help`` epilog: every operation with its one-line help, then the exit codes."""
    names = [f"{obj} {name}" for obj, name in operations]
    width = max(map(len, names), default=0) + 2
    lines = ["operations (litepipeline HOST:PORT OBJECT OPERATION -h shows an operation's options):"]
    lines += [f"  {name.ljust(width)}{op.help}" for name, op in zip(names, operations.values())]
    lines += ["", "output:",
              "  a table by default; -r the JSON answer indented; --json the JSON answer on one line;",
              "  -q only the ids (created id, or the listed items' ids), one per line",
              "", EXIT_CODES,
              "", "shell completion:",
              "  eval \"$(litepipeline completion bash)\"   (zsh, fish, tcsh, powershell too)"]
    return "\n".join(lines)


def completion_script(shell: str, prog: str) -> str:
    """The script that hooks ``prog``'s completion into ``shell`` (argcomplete's)."""
    import argcomplete   # only on demand: every other call of the CLI starts faster without it

    return argcomplete.shellcode([prog], shell=shell)


def no_completion(**_kwargs: Any) -> list:
    """An argcomplete completer offering nothing (instead of file names)."""
    return []


def complete_if_asked(parser: argparse.ArgumentParser) -> None:
    """When the shell's completion hook runs us, print the completions and exit."""
    if COMPLETION_ENV in os.environ:
        import argcomplete

        argcomplete.autocomplete(parser)


def unauthorized_hint(token_given: bool) -> str:
    """What to do about a 401: where the CLI takes the token from."""
    if token_given:
        return ("the manager refused the token given (--token or $LITEPIPELINE_TOKEN); "
                "use the auth_token of the manager's configuration")
    return ("the manager needs an API token: pass --token TOKEN or set LITEPIPELINE_TOKEN "
            "(the auth_token of the manager's configuration)")
