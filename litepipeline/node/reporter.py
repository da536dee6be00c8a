"""Reliable delivery of action reports to the manager (``PUT /action/update``).

A finished report is sent at once and, unless the manager acknowledges it within
``PERSIST_AFTER``, written to ``data_path/reports/<attempt_id>.json``; it is sent
until the manager answers 2xx (backoff 0.05 s doubling up to ``retry_interval``), then the
file is removed; reports found there at start-up are sent again. A 4xx answer (e.g. 409
``StaleAttempt``: the manager gave the attempt to someone else) drops the report. A
"running" report is best effort: sent once, never persisted.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, Callable, Optional

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from litepipeline.common.web import auth_headers
from litepipeline.node.registrant import ChannelUnavailable
from litepipeline.node.workspace import read_json, remove_file, write_json_atomic

LOG = logging.getLogger(__name__)

FIRST_DELAY = 0.05
PERSIST_AFTER = 0.1   # seconds without an acknowledgement before a report is written to disk
REQUEST_TIMEOUT = 30
# 4xx answers that say "not now" or "not you" rather than "never": keep the report
RETRY_4XX = (401, 403, 408, 429)
# answers to a running report that mean the manager has given the attempt up
DISOWNED = (404, 409, 410)

OK, RETRY, REJECTED = "ok", "retry", "rejected"


class Reporter:
    """Sends reports; ``on_rejected(attempt_id, message)`` hears when the manager refuses a
    running report, i.e. disowns an attempt whose process still runs."""

    def __init__(self, reports_dir: str, update_url: str, token: Optional[str], retry_interval: float,
                 node_id: Callable[[], Optional[str]]) -> None:
        self.reports_dir = reports_dir
        self.update_url = update_url
        self.token = token
        self.retry_interval = retry_interval
        self.node_id = node_id
        self.on_rejected: Callable[[str, str], None] = lambda attempt_id, message: None
        self.pending: dict[str, dict] = {}
        self._deliveries: dict[str, asyncio.Task] = {}
        self._running_sends: dict[str, asyncio.Task] = {}
        self._wake: Optional[asyncio.Future] = None
        #: the registrant, when reports may travel over the TCP channel (set by the Node)
        self.channel: Optional[Any] = None
        self._persisting: set = set()
        self._client: Optional[AsyncHTTPClient] = None

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> int:
        """Open the HTTP client and resend reports left by an earlier run; returns how many."""
        os.makedirs(self.reports_dir, exist_ok=True)
        self._client = AsyncHTTPClient(force_instance=True, max_clients=32)
        loaded = 0
        for fname in sorted(os.listdir(self.reports_dir)):
            path = os.path.join(self.reports_dir, fname)
            if not fname.endswith(".json"):
                remove_file(path)  # a temp file from an interrupted write
                continue
            try:
                report = read_json(path)
                attempt_id = report["attempt_id"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                LOG.error("dropping unreadable report %s: %s", path, exc)
                remove_file(path)
                continue
            self.pending[attempt_id] = report
            self._start_delivery(attempt_id, persist=False)
            loaded += 1
        if loaded:
            LOG.info("re-sending %d report(s) left by an earlier run", loaded)
        return loaded

    async def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for every pending report to be delivered; True if none is left."""
        self.kick()
        tasks = list(self._deliveries.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        return not self.pending

    async def close(self) -> None:
        """Stop sending; undelivered finished reports stay on disk for the next start."""
        tasks = list(self._deliveries.values()) + list(self._running_sends.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- queries -----------------------------------------------------------------------------
    def has(self, attempt_id: str) -> bool:
        return attempt_id in self.pending

    def pending_entries(self) -> list[dict]:
        return [{"task_id": r.get("task_id"), "name": r.get("name"), "attempt_id": aid, "state": "reporting"}
                for aid, r in self.pending.items()]

    # -- commands ----------------------------------------------------------------------------
    def submit(self, report: dict) -> None:
        """Take a finished report: persist it, then deliver it until acknowledged."""
        attempt_id = report["attempt_id"]
        self.pending[attempt_id] = report
        started = None
        # the first try is written at once, not a loop turn later, unless a "running"
        # report of the same attempt is still on its way (it must arrive first)
        if self.channel is not None and self._client is not None and attempt_id not in self._running_sends:
            if report.get("node_id") is None:
                report["node_id"] = self.node_id()
            try:
                started = self.channel.start_report(report)
            except ChannelUnavailable:
                started = None
        self._start_delivery(attempt_id, persist=True, started=started)

    def send_running(self, report: dict) -> None:
        """Best effort: one try, nothing kept."""
        attempt_id = report["attempt_id"]
        task = asyncio.ensure_future(self._send_running(report))
        self._running_sends[attempt_id] = task
        task.add_done_callback(lambda t: self._running_sends.pop(attempt_id, None)
                               if self._running_sends.get(attempt_id) is t else None)

    def drop(self, attempt_id: str) -> None:
        """Forget a report the manager does not want (its attempt was given up)."""
        if self.pending.pop(attempt_id, None) is not None:
            LOG.info("dropping report of attempt %s", attempt_id)
        task = self._deliveries.pop(attempt_id, None)
        if task is not None:
            task.cancel()
        remove_file(self._path(attempt_id))

    def kick(self) -> None:
        """Retry waiting deliveries now (the manager is back)."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        self._wake = None

    # -- internals ---------------------------------------------------------------------------
    def _path(self, attempt_id: str) -> str:
        return os.path.join(self.reports_dir, f"{attempt_id}.json")

    def _start_delivery(self, attempt_id: str, persist: bool, started: Any = None) -> None:
        old = self._deliveries.get(attempt_id)
        if old is not None:
            old.cancel()
        task = asyncio.ensure_future(self._deliver(attempt_id, persist, started))
        self._deliveries[attempt_id] = task
        task.add_done_callback(lambda t: self._deliveries.pop(attempt_id, None)
                               if self._deliveries.get(attempt_id) is t else None)

    async def _sleep(self, delay: float) -> None:
        if self._wake is None or self._wake.done():
            self._wake = asyncio.get_running_loop().create_future()
        await asyncio.wait([asyncio.shield(self._wake)], timeout=delay)

    async def _deliver(self, attempt_id: str, persist: bool, started: Any = None) -> None:
        report = self.pending.get(attempt_id)
        if report is None:
            return
        path = self._path(attempt_id)
        # Persisted unless the manager acknowledges at once (the normal case, ~1 ms): three
        # file operations saved on the path of every action, at the price of a re-run (never
        # a lost or doubled result) if the node dies within PERSIST_AFTER of the action's end.
        persist_timer = None
        if persist:
            persist_timer = asyncio.get_running_loop().call_later(
                PERSIST_AFTER, self._persist_soon, attempt_id, report, path)
        try:
            running = self._running_sends.get(attempt_id)
            if running is not None:  # keep the order: running, then finished
                await asyncio.wait([running], timeout=REQUEST_TIMEOUT)
            delay = FIRST_DELAY
            while attempt_id in self.pending:
                if report.get("node_id") is None:
                    report["node_id"] = self.node_id()
                outcome, code, message = await self._put(report, started)
                started = None   # a retry writes its frame anew
                if outcome == OK:
                    break
                if outcome == REJECTED:
                    # the process has ended already (a finished report is made after it exits)
                    LOG.warning("manager refused report of task %s action %s attempt %s: HTTP %d %s; "
                                "dropping it", report.get("task_id"), report.get("name"), attempt_id, code,
                                message)
                    break
                LOG.debug("report of attempt %s not delivered (HTTP %d %s); retrying in %g s", attempt_id,
                          code, message, delay)
                if persist_timer is not None:   # not acknowledged: to disk now, not later
                    persist_timer.cancel()
                    persist_timer = None
                    await self._persist(attempt_id, report, path)
                await self._sleep(delay)
                delay = min(delay * 2, self.retry_interval)
        finally:
            if persist_timer is not None:
                persist_timer.cancel()
        if self.pending.pop(attempt_id, None) is not None:
            remove_file(path)

    def _persist_soon(self, attempt_id: str, report: dict, path: str) -> None:
        task = asyncio.ensure_future(self._persist(attempt_id, report, path))
        self._persisting.add(task)      # a strong reference until it is done
        task.add_done_callback(self._persisting.discard)

    async def _persist(self, attempt_id: str, report: dict, path: str) -> None:
        try:
            if len(json.dumps(report)) <= 64 * 1024:
                write_json_atomic(path, report)    # small (the common case): in place
            else:
                await asyncio.to_thread(write_json_atomic, path, report)
        except OSError as exc:  # delivered anyway; only a node restart would lose it
            LOG.error("cannot persist report of attempt %s: %s", attempt_id, exc)
        if attempt_id not in self.pending:  # delivered or dropped while being written
            remove_file(path)

    async def _send_running(self, report: dict) -> None:
        outcome, code, message = await self._put(report)
        if outcome == REJECTED and code in DISOWNED:
            attempt_id = report["attempt_id"]
            LOG.warning("manager refused running report of attempt %s: HTTP %d %s", attempt_id, code, message)
            self.on_rejected(attempt_id, message)

    async def _put(self, report: dict, started: Any = None) -> tuple[str, int, str]:
        """One delivery; returns (OK|RETRY|REJECTED, HTTP code or 599, the manager's message).

        Over the registration channel when the manager supports it (no new connection on
        the path of every action), else with ``PUT /action/update``.
        """
        if self._client is None:
            return RETRY, 599, "reporter closed"
        if self.channel is not None:
            try:
                code, envelope = await self.channel.send_report(report, REQUEST_TIMEOUT, started)
                return _outcome(code, str(envelope.get("result")) + ": " + str(envelope.get("message")))
            except ChannelUnavailable:
                pass   # not connected, or an original manager: HTTP below
            except asyncio.TimeoutError:
                return RETRY, 599, "no answer to the report frame"
        headers = {"Content-Type": "application/json"}
        headers.update(auth_headers(self.token))
        request = HTTPRequest(self.update_url, method="PUT", body=json.dumps(report), headers=headers,
                              connect_timeout=5, request_timeout=REQUEST_TIMEOUT)
        try:
            response = await self._client.fetch(request, raise_error=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused, reset, timed out: the manager is away
            return RETRY, 599, str(exc) or type(exc).__name__
        return _outcome(response.code, _envelope_message(response.body))


def _outcome(code: int, message: str) -> tuple[str, int, str]:
    if 200 <= code < 300:
        return OK, code, ""
    if 400 <= code < 500 and code not in RETRY_4XX:
        return REJECTED, code, message
    return RETRY, code, message


def _envelope_message(body: Optional[bytes]) -> str:
    try:
        data = json.loads((body or b"").decode("utf-8"))
        return f"{data.get('result', '')}: {data.get('message', '')}".strip(": ")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return (body or b"")[:200].decode("utf-8", "replace")
