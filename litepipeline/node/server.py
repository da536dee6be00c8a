"""``litenode -c CONFIG.yml``: run a LitePipeline node until SIGTERM/SIGINT."""
from __future__ import annotations

import asyncio
import logging
import sys
from typing import Optional

from litepipeline.common import netresolve
from litepipeline.common.config import NodeConfig
from litepipeline.common.daemon import load_or_exit, on_stop_signals, parse_args, setup_logging
from litepipeline.common.datalock import lock_or_exit
from litepipeline.common.tls import Tls, tls_or_exit

LOG = logging.getLogger("litepipeline.node")


def use_pidfd_child_watcher() -> None:
    """Learn of action exits through pidfds on the event loop (Linux 5.3+).

    Python < 3.12 otherwise starts a thread per subprocess just to wait for it; newer
    Pythons use pidfds by themselves.
    """
    if sys.version_info >= (3, 12) or not hasattr(asyncio, "PidfdChildWatcher"):
        return
    try:
        import os

        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return   # kernel without pidfd: keep the default watcher
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)


async def serve(config: NodeConfig) -> None:
    """Start a node, wait for a stop signal, drain, return. A second signal cuts the drain short."""
    from litepipeline.node.node import Node  # after logging is set up

    use_pidfd_child_watcher()
    netresolve.install()
    Tls(config).configure_http_clients()   # checked in main()

    node = Node(config)
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            LOG.warning("signal %d again: killing running actions now", signum)
            node.hurry()
        else:
            LOG.info("signal %d received", signum)
            stop.set()

    on_stop_signals(on_signal)
    await node.start()
    await stop.wait()
    await node.stop()


def main(argv: Optional[list] = None) -> None:
    args = parse_args("litenode", argv)
    config = load_or_exit("litenode", "node", args.config)
    _data_lock = lock_or_exit("litenode", config.data_path)   # its descriptor stays open until exit
    tls_or_exit("litenode", config)   # files and keys checked before anything starts
    setup_logging("node", config)
    try:
        asyncio.run(serve(config))
    except OSError as exc:  # e.g. the HTTP port is taken
        LOG.error("litenode cannot start: %s", exc)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
