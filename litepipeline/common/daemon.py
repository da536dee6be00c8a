"""Start-up pieces shared by ``litemanager`` and ``litenode``: config, logging, signals."""
from __future__ import annotations

import argparse
import errno
import logging
import logging.handlers
import os
import signal
import sys
from typing import Callable

from litepipeline.common.config import Config, load_config
from litepipeline.common.errors import ConfigError
from litepipeline.version import __version__

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def parse_args(prog: str, argv: list | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=f"LitePipeline {prog.removeprefix('lite')}")
    parser.add_argument("-c", "--config", help="path of configuration.yml")
    parser.add_argument("-v", "--version", action="version", version=f"{prog} {__version__}")
    args = parser.parse_args(argv)
    if not args.config:
        parser.error("the following arguments are required: -c/--config")
    return args


def load_or_exit(prog: str, role: str, path: str) -> Config:
    """Load the config; on any problem print one line and exit with code 2."""
    try:
        config, warnings = load_config(role, path)
        for key in ("log_path", "data_path"):
            os.makedirs(getattr(config, key), exist_ok=True)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        print(f"{prog}: error: cannot create directory: {exc}", file=sys.stderr)
        sys.exit(2)
    for warning in warnings:
        print(f"{prog}: warning: {warning}", file=sys.stderr)
    return config


def setup_logging(name: str, config: Config) -> None:
    """Log to ``log_path/<name>.log`` (rotating) and to the console, as text or JSON lines
    (``log_format``)."""
    level_name = config.log_level.upper()
    level = logging.NOTSET if level_name in ("NOSET", "NOTSET") else getattr(logging, level_name)
    root = logging.getLogger()
    root.setLevel(level if level != logging.NOTSET else logging.DEBUG)
    formatter = json_formatter() if config.log_format == "json" else logging.Formatter(LOG_FORMAT)
    file_handler = logging.handlers.RotatingFileHandler(
        os.path.join(config.log_path, f"{name}.log"), maxBytes=32 * 1024 * 1024, backupCount=5)
    console = logging.StreamHandler(sys.stderr)
    for handler in (file_handler, console):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    # tornado's access log at INFO would write a line per action report; keep it quiet
    logging.getLogger("tornado.access").setLevel(logging.WARNING)


class ListenError(OSError):
    """A socket that cannot listen; ``str()`` is :func:`listen_failure`'s line."""

    def __str__(self) -> str:
        return str(self.strerror)


def listen_failure(exc: OSError, host: str, port: int, host_key: str, port_key: str) -> str:
    """One line for a socket that cannot listen: the address, why, and the configuration
    key to change."""
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot listen on {where}: address already in use (another process, perhaps another "
                f"LitePipeline daemon, listens there); stop it or change '{port_key}' in the configuration")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"cannot listen on {where}: {host} is not an address of this machine; "
                f"change '{host_key}' in the configuration")
    if exc.errno == errno.EACCES:
        return (f"cannot listen on {where}: permission denied (ports below 1024 need privileges); "
                f"change '{port_key}' in the configuration")
    reason = exc.strerror or str(exc)
    return f"cannot listen on {where} ('{host_key}', '{port_key}' in the configuration): {reason}"


def json_formatter() -> logging.Formatter:
    """One JSON object per line: ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, and ``exc_info`` with a traceback."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter("{levelname}{name}{message}", style="{", timestamp=True, json_ensure_ascii=False,
                         rename_fields={"levelname": "level", "name": "logger"})


def on_stop_signals(callback: Callable[[int], None]) -> None:
    """Call ``callback(signum)`` on the running asyncio loop for SIGINT and SIGTERM."""
    import asyncio

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, callback, signum)
