"""``litemanager -c CONFIG.yml``: the manager daemon.

With a PostgreSQL ``database_url`` several managers may share the database: each starts
as a standby (see :mod:`litepipeline.manager.standby`) until it holds the leadership
lease (:mod:`litepipeline.manager.leader`), then starts exactly as a manager restart
does. A leader that loses the lease re-executes itself and comes back as a standby.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import uuid
from typing import Optional

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from litepipeline.common import netresolve
from litepipeline.common.config import public_view
from litepipeline.common.daemon import (listen_failure, load_or_exit, on_stop_signals, parse_args,
                                       setup_logging)
from litepipeline.common.datalock import lock_or_exit
from litepipeline.common.httpmetrics import MeteredApplication
from litepipeline.common.tls import Tls, tls_or_exit
from litepipeline.common.web import NotFoundHandler
from litepipeline.manager.handlers import routes
from litepipeline.manager.leader import Leadership, is_postgres
from litepipeline.manager.leadership import identity
from litepipeline.manager.manager import Manager
from litepipeline.manager.metrics import ManagerMetrics
from litepipeline.manager.standby import HttpGate, Standby, TcpGate
from litepipeline.manager.store.store import Store
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
    failover = is_postgres(config.database_url)
    # a standby listens from the start; a single manager once it has started (as it always did)
    sockets = _bind(config) if failover else {}
    if sockets is None:
        return 2
    gate = HttpGate()
    http = HTTPServer(gate, max_body_size=max(JSON_BODY_LIMIT, config.max_output_size * 2),
                      max_buffer_size=JSON_BODY_LIMIT, idle_connection_timeout=300, ssl_options=tls.server)
    tcp = TcpGate(tls.server)

    def on_signal(signum: int) -> None:
        LOG.info("signal %d: shutting down", signum)
        stopping.set()

    on_stop_signals(on_signal)
    leadership = None
    if failover:
        try:
            leadership = await _standby(config, tls, gate, tcp, http, sockets)
        except Exception as exc:  # noqa: BLE001 - a start-up failure is one clear line, exit 2
            LOG.critical("cannot start: %s", exc)
            return 2
        acquired = asyncio.ensure_future(leadership.wait_to_lead())
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait([acquired, stopped], return_when=asyncio.FIRST_COMPLETED)
        if not acquired.done():
            acquired.cancel()
            http.stop()
            tcp.stop()
            leadership.close()
            LOG.info("manager stopped (standby)")
            return exit_code
        stopped.cancel()
        leadership.start_renewing()
    try:
        manager = Manager(config, fatal, tls.server, leadership)
        metrics = ManagerMetrics(manager.core)   # GET /metrics
        metrics.watch(manager.dispatcher)
        await manager.start()
    except Exception as exc:  # noqa: BLE001 - a start-up failure is one clear line, exit 2
        LOG.critical("cannot start: %s", exc)
        if leadership is not None:
            await leadership.release()
            leadership.close()
        return 2
    ui = WebUI(manager)   # the web interface at /ui/
    gate.app = application(manager, ui, metrics)
    tcp.handler = manager.cluster.handle_stream
    if leadership is not None:
        leadership.serving = True
    else:
        sockets = _bind(config)
        if sockets is None:
            await manager.close()
            return 2
        http.add_sockets(sockets["http_port"])
        tcp.add_sockets(sockets["tcp_port"])
    LOG.info("LitePipeline manager %s: http %s:%s, tcp %s:%s%s", __version__, config.http_host, config.http_port,
             config.tcp_host, config.tcp_port, f" (leader, epoch {leadership.epoch})" if leadership else "")
    LOG.debug("configuration: %s", public_view(config))

    sweep_task = asyncio.get_running_loop().create_task(_sweep(manager, config.scheduler_interval))
    await stopping.wait()
    http.stop()   # no new connections; requests in progress finish or are cut at close
    tcp.stop()
    sweep_task.cancel()
    ui.close()
    await manager.close()
    if leadership is not None:
        await leadership.release()   # after the last write: a standby takes over at once
        leadership.close()
    await http.close_all_connections()
    LOG.info("manager stopped")
    return exit_code


def _bind(config) -> Optional[dict]:  # noqa: ANN001
    """The listening sockets of ``http_port`` and ``tcp_port``; None (logged) when one cannot listen."""
    sockets: dict = {}
    for host_key, port_key in (("http_host", "http_port"), ("tcp_host", "tcp_port")):
        host, port = getattr(config, host_key), getattr(config, port_key)
        try:
            sockets[port_key] = bind_sockets(port, host)
        except OSError as exc:
            LOG.critical("%s", listen_failure(exc, host, port, host_key, port_key))
            for bound in sockets.values():
                for sock in bound:
                    sock.close()
            return None
    return sockets


async def _standby(config, tls: Tls, gate: HttpGate, tcp: TcpGate, http: HTTPServer,  # noqa: ANN001
                   sockets: dict) -> Leadership:
    """Migrate (one manager at a time), then serve as a standby until the lease is ours."""
    store = Store(config.database_url)
    try:
        await asyncio.get_running_loop().run_in_executor(None, store.migrate_in_child)
    finally:
        store.close()
    host = advertise_host(config)
    http_port = sockets["http_port"][0].getsockname()[1]
    tcp_port = sockets["tcp_port"][0].getsockname()[1]
    me = identity(str(uuid.uuid4()), host, http_port, host, tcp_port)
    leadership = Leadership(config.database_url, me, step_down)
    standby = Standby(leadership.view, config.auth_token, "https" if tls.server else "http")
    gate.app = standby.app()
    tcp.handler = standby.handle_stream
    http.add_sockets(sockets["http_port"])
    tcp.add_sockets(sockets["tcp_port"])
    LOG.info("LitePipeline manager %s: standby %s at %s (http %s, tcp %s); waiting for the leadership lease",
             __version__, me["manager_id"], me["address"], http_port, tcp_port)
    return leadership


def step_down(reason: str) -> None:
    """This manager lost the lease: stop acting at once and start again clean, as a standby.

    Re-executing drops every listener, connection, timer and thread in one step (nothing
    half-done can run after it), and the new process starts exactly as a standby does.
    """
    LOG.critical("stepping down as leader: %s; restarting as a standby", reason)
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:  # noqa: BLE001 - nothing may keep us from stepping down
            pass
    os.execv(sys.executable, sys.orig_argv)


def advertise_host(config) -> str:  # noqa: ANN001
    """The host others are told to use: ``advertise_host``, else ``http_host`` unless that is
    a wildcard, else this machine's primary address."""
    if config.advertise_host:
        return config.advertise_host
    if config.http_host not in ("0.0.0.0", "::", ""):
        return config.http_host
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))   # no packet is sent: this only picks the outgoing interface
            return sock.getsockname()[0]
    except OSError:
        return "127.0.0.1"


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
