"""The Node: owns the app cache, workspaces, executor, reporter, manager link and HTTP server.

Started and stopped as a unit by ``litenode`` (and by tests, in-process). Disk layout
under ``data_path``: ``configuration.json`` (node_id), ``apps/``, ``workspaces/``,
``reports/``, ``running/``, ``trash/``.
"""
from __future__ import annotations

import asyncio
import logging
import os
import platform
import sys
import time
from typing import Optional

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from litepipeline.common.config import NodeConfig, node_managers
from litepipeline.common.daemon import ListenError, listen_failure
from litepipeline.common.tls import Tls
from litepipeline.common.errors import LiteError
from litepipeline.common.messages import Register, RunAction
from litepipeline.node.appcache import AppCache, VenvCache
from litepipeline.node.executor import Executor
from litepipeline.node.handlers import make_app
from litepipeline.node.lease import Lease
from litepipeline.node.managerlink import ManagerLink, id_path_for
from litepipeline.node.metrics import NodeMetrics
from litepipeline.node.reporter import Reporter
from litepipeline.node.workspace import Trash, Workspaces
from litepipeline.version import __version__

LOG = logging.getLogger(__name__)

REPORT_FLUSH_TIMEOUT = 5.0
# the workspace scan walks directories: no more often than this, whatever executor_interval is
WORKSPACE_SWEEP_MIN_INTERVAL = 60.0


class Node:
    """One node daemon; create inside the running event loop, then ``await start()``."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        data = config.data_path
        self.app_path = os.path.join(data, "apps")
        self.trash = Trash(os.path.join(data, "trash"))
        self.workspaces = Workspaces(os.path.join(data, "workspaces"), self.trash)
        scheme = "https" if config.tls_ca else "http"   # tls_ca: the manager serves TLS
        first = node_managers(config)[0]
        manager = f"{scheme}://{first[0]}:{first[1]}"
        self.appcache = AppCache(self.app_path, f"{manager}/app/download", config.auth_token,
                                 config.max_unpacked_size, self.trash)
        self.venvcache = VenvCache(os.path.join(data, "venvs"), f"{manager}/venv/download", config.auth_token,
                                   config.max_unpacked_size, self.trash)
        managers = node_managers(config)   # fail-over: the link registers with whichever leads
        self.link = ManagerLink(
            f"{manager}/action/update", config.auth_token, managers[0][2], managers[0][3],
            id_path_for(data), self.info, config.heartbeat_interval, config.heartbeat_timeout, config.retry_interval,
            managers=managers, scheme=scheme)
        self.link.on_manager = self._follow_manager
        self.link.on_stop = self.on_manager_stop
        self.link.on_registered = self._on_registered
        self.link.on_run = self.run_action
        self.reporter = Reporter(os.path.join(data, "reports"), self.link, config.retry_interval)
        self.executor = Executor(config, self.appcache, self.workspaces, self.reporter,
                                 os.path.join(data, "running"), venvcache=self.venvcache)
        self.reporter.on_rejected = lambda attempt_id, message: self.executor.abandon(
            attempt_id, f"manager refused its report: {message}")
        self.lease = Lease(config.heartbeat_timeout, self.executor.groups.reaper)   # actions run only while held
        self.tls = Tls(config)
        self.link.ssl_options = self.tls.client   # the manager's TCP port: verified against tls_ca
        self.link.on_heard = self.lease.renew
        self.executor.lease_lapsed = self.lease.lapsed_since
        self.metrics = NodeMetrics(self)   # GET /metrics
        self.http_port = config.http_port
        self._server: Optional[HTTPServer] = None
        self._sweeper: Optional[asyncio.Task] = None
        self._last_workspace_sweep = 0.0

    # -- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Recover what an earlier run left, listen on HTTP, register with the manager."""
        for sub in ("apps", "workspaces", "reports", "running", "trash"):
            os.makedirs(os.path.join(self.config.data_path, sub), exist_ok=True)
        self.executor.groups.start()
        self.executor.launcher.refill()
        await self.trash.empty()
        self.appcache.start()
        self.venvcache.start()
        self.link.open()
        self.reporter.start()
        try:
            sockets = bind_sockets(self.config.http_port, self.config.http_host)
        except OSError as exc:
            raise ListenError(exc.errno, listen_failure(exc, self.config.http_host, self.config.http_port,
                                                        "http_host", "http_port")) from None
        self.http_port = sockets[0].getsockname()[1]  # http_port 0 picks a free port
        self._server = HTTPServer(make_app(self), ssl_options=self.tls.server)
        self._server.add_sockets(sockets)
        LOG.info("LitePipeline node %s listening on %s:%d (data in %s)", __version__, self.config.http_host,
                 self.http_port, self.config.data_path)
        self.link.start()
        self._sweeper = asyncio.ensure_future(self._sweep_loop())

    async def stop(self) -> None:
        """Drain: refuse new actions, let running ones finish (up to drain_timeout), deliver
        reports (up to a few seconds; the rest stays on disk), then disconnect."""
        LOG.info("node shutting down")
        self.executor.draining = True
        self.link.heartbeat_soon()   # the manager sends nothing more from now on
        if self._server is not None:
            self._server.stop()
        await self.executor.drain(self.config.drain_timeout)
        await self.executor.launcher.close()
        if not await self.reporter.flush(REPORT_FLUSH_TIMEOUT):
            LOG.warning("%d report(s) not delivered; they will be sent at the next start",
                        len(self.reporter.pending))
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.link.stop()
        await self.reporter.close()
        self.link.close()
        await self.appcache.close()
        await self.venvcache.close()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.close_all_connections(), 2)
            except asyncio.TimeoutError:
                pass
        await self.trash.wait()
        self.executor.groups.close()
        LOG.info("node stopped")

    def run_action(self, message: RunAction) -> tuple[int, dict]:
        """Accept an action dispatched over the TCP channel; (status, envelope) as over HTTP."""
        try:
            accepted = self.executor.accept(message)
        except LiteError as exc:
            return exc.http_status, exc.envelope()
        return 200, {"result": "ok", "message": "" if accepted else "attempt already accepted"}

    def hurry(self) -> None:
        """A second SIGTERM/SIGINT: stop waiting for running actions."""
        self.executor.hurry()

    # -- what the manager hears and says ------------------------------------------------------------
    def info(self) -> Register:
        """REGISTER/HEARTBEAT message (the link sets node_id and features)."""
        config = self.config
        return Register(
            http_host=config.http_host, http_port=self.http_port, action_slots=config.action_slots,
            heartbeat_interval=config.heartbeat_interval, heartbeat_timeout=config.heartbeat_timeout,
            data_path=config.data_path, app_path=self.app_path, python3=sys.version.split()[0],
            python3_executable=sys.executable, version=__version__, token=config.auth_token,
            running=self.executor.running_entries(),
            free_slots=max(config.action_slots - self.executor.slots_used, 0), draining=self.executor.draining,
            tls=bool(config.tls_cert), labels=config.labels, platform=platform.machine())

    def on_manager_stop(self, entries: list) -> None:
        for entry in entries:
            self.executor.abandon_matching(entry)

    def _follow_manager(self, base: str) -> None:
        """The link turned to another manager (fail-over): downloads go to it as well."""
        self.appcache.download_url = f"{base}/app/download"
        self.venvcache.download_url = f"{base}/venv/download"

    def _on_registered(self) -> None:
        self.reporter.kick()

    # -- periodic repair ---------------------------------------------------------------------------
    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.executor_interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                LOG.exception("sweep failed")

    async def sweep(self) -> None:
        """Old application copies and, past workspace_retention, old workspaces."""
        self.appcache.sweep()
        self.venvcache.sweep()
        retention = self.config.workspace_retention
        now = time.monotonic()
        if retention > 0 and now - self._last_workspace_sweep >= min(WORKSPACE_SWEEP_MIN_INTERVAL, retention / 4):
            self._last_workspace_sweep = now
            await self.workspaces.sweep(retention, self.executor.busy_tasks)
