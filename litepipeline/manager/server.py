"""``litemanager -c CONFIG.yml``: the manager daemon."""
from __future__ import annotations

import asyncio
import logging
import sys
from typing import Optional

from tornado.httpserver import HTTPServer

from litepipeline.common import netresolve
from litepipeline.common.config import public_view
from litepipeline.common.daemon import (listen_failure, load_or_exit, on_stop_signals, parse_args,
                                       setup_logging)
from litepipeline.common.datalock import lock_or_exit
from litepipeline.common.httpmetrics import MeteredApplication
from litepipeline.common.tls import Tls, tls_or_exit
from litepipeline.common.web import NotFoundHandler
from litepipeline.manager.handlers import routes
from litepipeline.manager.manager import Manager
from litepipeline.manager.metrics import ManagerMetrics
from litepipeline.manager.ui.app import WebUI
from litepipeline.version import __version__

LOG = logging.getLogger("litepipeline.manager")
# JSON bodies (task input, action reports) are bounded separately; uploads raise their own limit
JSON_BODY_LIMIT = 64 * 1024 * 1024


def application(manager: Manager, ui: WebUI, metrics: ManagerMetrics) -> MeteredApplication:
    """Every HTTP route of the manager: the API, GET /metrics and the web interface (see
    manager/openapi.py), each request counted in ``metrics``."""
    return MeteredApplication(routes(manager, metrics) + ui.routes(), metrics.http,
                              default_handler_class=NotFoundHandler, **ui.settings())


async def serve(config) -> int:  # noqa: ANN001
    stopping = asyncio.Event()
    exit_code = 0

    def fatal(reason: str) -> None:
        nonlocal exit_code
        LOG.critical("stopping: %s", reason)
        exit_code = 1
        stopping.set()

    netresolve.install()
    tls = Tls(config)   # checked in main()
    tls.configure_http_clients()
    try:
        manager = Manager(config, fatal, tls.server)
        metrics = ManagerMetrics(manager.core)   # GET /metrics
        metrics.watch(manager.dispatcher)
        await manager.start()
    except Exception as exc:  # noqa: BLE001 - a start-up failure is one clear line, exit 2
        LOG.critical("cannot start: %s", exc)
        return 2
    ui = WebUI(manager)   # the web interface at /ui/
    app = application(manager, ui, metrics)
    http = HTTPServer(app, max_body_size=max(JSON_BODY_LIMIT, config.max_output_size * 2),
                      max_buffer_size=JSON_BODY_LIMIT, idle_connection_timeout=300, ssl_options=tls.server)
    for listen, host_key, port_key in ((http.listen, "http_host", "http_port"),
                                       (manager.cluster.listen, "tcp_host", "tcp_port")):
        host, port = getattr(config, host_key), getattr(config, port_key)
        try:
            listen(port, host)
        except OSError as exc:
            LOG.critical("%s", listen_failure(exc, host, port, host_key, port_key))
            http.stop()
            await manager.close()
            return 2
    LOG.info("LitePipeline manager %s: http %s:%s, tcp %s:%s", __version__, config.http_host, config.http_port,
             config.tcp_host, config.tcp_port)
    LOG.debug("configuration: %s", public_view(config))

    def on_signal(signum: int) -> None:
        LOG.info("signal %d: shutting down", signum)
        stopping.set()

    on_stop_signals(on_signal)
    sweep_task = asyncio.get_running_loop().create_task(_sweep(manager, config.scheduler_interval))
    await stopping.wait()
    http.stop()   # no new connections; requests in progress finish or are cut at close
    sweep_task.cancel()
    ui.close()
    await manager.close()
    await http.close_all_connections()
    LOG.info("manager stopped")
    return exit_code


async def _sweep(manager: Manager, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            manager.sweep()
        except Exception:  # noqa: BLE001 - the sweep must keep running
            LOG.exception("repair sweep failed")


def main(argv: Optional[list] = None) -> int:
    args = parse_args("litemanager", argv)
    config = load_or_exit("litemanager", "manager", args.config)
    _data_lock = lock_or_exit("litemanager", config.data_path)   # its descriptor stays open until exit
    tls_or_exit("litemanager", config)   # files and keys checked before anything starts
    setup_logging("manager", config)
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
