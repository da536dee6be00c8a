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

from litepipeline.common.errors import LiteError
from litepipeline.common.messages import Answer, HeldAttempt, Report
from litepipeline.common.states import AttemptState
from litepipeline.node.managerlink import REQUEST_TIMEOUT, ManagerLink
from litepipeline.node.workspace import read_json, remove_file, write_json_atomic

LOG = logging.getLogger(__name__)

FIRST_DELAY = 0.05
PERSIST_AFTER = 0.1   # seconds without an acknowledgement before a report is written to disk
# 4xx answers that say "not now" or "not you" rather than "never": keep the report
RETRY_4XX = (401, 403, 408, 429)
# answers to a running report that mean the manager has given the attempt up
DISOWNED = (404, 409, 410)

OK, RETRY, REJECTED = "ok", "retry", "rejected"


class Reporter:
    """Sends reports; ``on_rejected(attempt_id, message)`` hears when the manager refuses a
    running report, i.e. disowns an attempt whose process still runs."""

    def __init__(self, reports_dir: str, link: ManagerLink, retry_interval: float) -> None:
        self.reports_dir = reports_dir
        self.link = link
        self.retry_interval = retry_interval
        self.on_rejected: Callable[[str, str], None] = lambda attempt_id, message: None
        self.pending: dict[str, Report] = {}
        self._deliveries: dict[str, asyncio.Task] = {}
        self._running_sends: dict[str, asyncio.Task] = {}
        self._wake: Optional[asyncio.Future] = None
        self._persisting: set = set()
        self._on_disk: set[str] = set()   # attempts whose report file may exist
        self._open = False

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> int:
        """Resend reports left by an earlier run (the link must be started); returns how many."""
        os.makedirs(self.reports_dir, exist_ok=True)
        self._open = True
        loaded = 0
        for fname in sorted(os.listdir(self.reports_dir)):
            path = os.path.join(self.reports_dir, fname)
            if not fname.endswith(".json"):
                remove_file(path)  # a temp file from an interrupted write
                continue
            try:
                report = Report.parse(read_json(path))
                attempt_id = report.attempt_id
            except (OSError, ValueError, LiteError) as exc:
                LOG.error("dropping unreadable report %s: %s", path, exc)
                remove_file(path)
                continue
            self.pending[attempt_id] = report
            self._on_disk.add(attempt_id)
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
        self._open = False

    # -- queries -----------------------------------------------------------------------------
    def has(self, attempt_id: str) -> bool:
        return attempt_id in self.pending

    def pending_entries(self) -> list[HeldAttempt]:
        return [HeldAttempt(r.task_id, r.name, aid, AttemptState.REPORTING.value) for aid, r in self.pending.items()]

    # -- commands ----------------------------------------------------------------------------
    def submit(self, report: Report) -> None:
        """Take a finished report: persist it, then deliver it until acknowledged."""
        attempt_id = report.attempt_id
        self.pending[attempt_id] = report
        started = None
        # the first try is written at once, not a loop turn later, unless a "running"
        # report of the same attempt is still on its way (it must arrive first)
        if self._open and attempt_id not in self._running_sends:
            if report.node_id is None:
                report.node_id = self.link.node_id
            started = self.link.start_report(report)
        self._start_delivery(attempt_id, persist=True, started=started)

    def send_running(self, report: Report) -> None:
        """Best effort: one try, nothing kept."""
        attempt_id = report.attempt_id
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
        self._forget_file(attempt_id)

    def kick(self) -> None:
        """Retry waiting deliveries now (the manager is back)."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        self._wake = None

    # -- internals ---------------------------------------------------------------------------
    def _path(self, attempt_id: str) -> str:
        return os.path.join(self.reports_dir, f"{attempt_id}.json")

    def _forget_file(self, attempt_id: str) -> None:
        # most reports are acknowledged before they are written: no file to remove
        if attempt_id in self._on_disk:
            self._on_disk.discard(attempt_id)
            remove_file(self._path(attempt_id))

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
        # Persisted unless the manager acknowledges at once (the normal case): three
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
                if report.node_id is None:
                    report.node_id = self.link.node_id
                outcome, code, message = await self._put(report, started)
                started = None   # a retry writes its frame anew
                if outcome == OK:
                    break
                if outcome == REJECTED:
                    # the process has ended already (a finished report is made after it exits)
                    LOG.warning("manager refused report of task %s action %s attempt %s: HTTP %d %s; "
                                "dropping it", report.task_id, report.name, attempt_id, code, message)
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
            self._forget_file(attempt_id)

    def _persist_soon(self, attempt_id: str, report: dict, path: str) -> None:
        task = asyncio.ensure_future(self._persist(attempt_id, report, path))
        self._persisting.add(task)      # a strong reference until it is done
        task.add_done_callback(self._persisting.discard)

    async def _persist(self, attempt_id: str, report: Report, path: str) -> None:
        data = report.to_dict()
        self._on_disk.add(attempt_id)
        try:
            if len(json.dumps(data)) <= 64 * 1024:
                write_json_atomic(path, data)    # small (the common case): in place
            else:
                await asyncio.to_thread(write_json_atomic, path, data)
        except OSError as exc:  # delivered anyway; only a node restart would lose it
            LOG.error("cannot persist report of attempt %s: %s", attempt_id, exc)
        if attempt_id not in self.pending:  # delivered or dropped while being written
            self._on_disk.discard(attempt_id)
            remove_file(path)

    async def _send_running(self, report: Report) -> None:
        outcome, code, message = await self._put(report)
        if outcome == REJECTED and code in DISOWNED:
            attempt_id = report.attempt_id
            LOG.warning("manager refused running report of attempt %s: HTTP %d %s", attempt_id, code, message)
            self.on_rejected(attempt_id, message)

    async def _put(self, report: Report, started: Any = None) -> tuple[str, int, str]:
        """One delivery through the link; returns (OK|RETRY|REJECTED, HTTP code or 599, the
        manager's message)."""
        if not self._open:
            return RETRY, 599, "reporter closed"
        return _outcome(await self.link.report(report, started))


def _outcome(answer: Answer) -> tuple[str, int, str]:
    code = answer.code
    if 200 <= code < 300:
        return OK, code, ""
    if 400 <= code < 500 and code not in RETRY_4XX:
        return REJECTED, code, answer.describe()
    return RETRY, code, answer.describe()
