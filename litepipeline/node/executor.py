"""Runs actions: one awaited bash process group per attempt, bounded by ``action_slots``.

An attempt's life: accepted (slot reserved) → preparing (app cache, env, workspace) →
running (process group alive) → finished (report handed to the :class:`Reporter`). A stop
request, a timeout, a node shutdown or the manager disowning the attempt can cut any phase.

The process group must not outlive the node: :class:`~litepipeline.node.groups.ProcessGroups`
sees to that.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from litepipeline.common import clock
from litepipeline.common.config import NodeConfig
from litepipeline.common.diskspace import describe, is_disk_full, no_space, volume_full
from litepipeline.common.errors import ActionNotExists, InvalidParameters, OperationFailed, ServiceUnavailable
from litepipeline.common.messages import HeldAttempt, Report, RunAction
from litepipeline.common.states import AttemptState, Stage, Status
from litepipeline.node.appcache import AppCache, AppCacheError, VenvCache
from litepipeline.node.groups import ProcessGroups, Reaper
from litepipeline.node.launcher import Launcher, build_script, shell_returncode
from litepipeline.node.outputtail import read_tail, with_tail
from litepipeline.node.reporter import Reporter
from litepipeline.node.workspace import (
    OUTPUT_FILE,
    STDOUT_FILE,
    OutputError,
    Workspaces,
    read_output,
)

LOG = logging.getLogger(__name__)

# The manager marks an action running when it dispatches it; the node's own "running"
# report (with the real start time) only matters for long actions, and sending it for
# every short one would double the manager's work per action.
RUNNING_REPORT_DELAY = 1.0
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL when an action times out
RECENT_ATTEMPTS = 10000  # finished attempt ids remembered so a re-sent /action/run is not re-run


SMALL_FILE = 64 * 1024


def _small(path: str) -> bool:
    """True for a missing or small file: reading it inline costs less than a thread hop."""
    try:
        return os.stat(path).st_size <= SMALL_FILE
    except OSError:
        return True


@dataclass
class Attempt:
    """One dispatched attempt held by this node."""

    request: RunAction
    accepted_at: Any = field(default_factory=clock.now)
    state: AttemptState = AttemptState.FETCHING   # → RUNNING → FINISHED
    start_at: Any = None
    pgid: Optional[int] = None
    prep: Optional[asyncio.Task] = None
    task: Optional[asyncio.Task] = None
    kill_reason: Optional[str] = None  # set by a stop request or shutdown: status "kill"
    kill_signal: Optional[int] = None
    timed_out: bool = False
    abandoned: bool = False  # the manager no longer expects it: no report
    launched_at: float = 0.0   # time.monotonic() just before its process was started
    holds_slot: bool = True
    reported: bool = False  # its finished report was handed to the reporter (or dropped on purpose)

    @property
    def attempt_id(self) -> str:
        return self.request.attempt_id

    def entry(self) -> HeldAttempt:
        req = self.request
        return HeldAttempt(req.task_id, req.name, req.attempt_id, self.state.value)


class Executor:
    """Accepts, runs, stops and reports actions; see the module docstring."""

    def __init__(self, config: NodeConfig, appcache: AppCache, workspaces: Workspaces, reporter: Reporter,
                 running_dir: str, reaper: Optional[Reaper] = None,
                 venvcache: Optional[VenvCache] = None) -> None:
        self.config = config
        self.appcache = appcache
        self.venvcache = venvcache
        self.workspaces = workspaces
        self.reporter = reporter
        self.groups = ProcessGroups(running_dir, reaper)
        self.attempts: dict[str, Attempt] = {}
        self.slots_used = 0
        self.draining = False
        # counts for GET /metrics (node/metrics.py reads them when scraped)
        self.accepted = 0                  # attempts accepted (a slot reserved)
        self.launched = 0                  # their processes started
        self.ended: Counter = Counter()    # attempts ended, by reported status ("abandoned": not reported)
        self._recent: OrderedDict[str, None] = OrderedDict()
        #: whether the node's lease was out at any moment since a time.monotonic() mark (see
        #: node/lease.py): an action running then is not reported
        self.lease_lapsed: Callable[[float], bool] = lambda mark: False
        self._env = dict(os.environ, PYTHONUNBUFFERED="1")  # stdout.data fills as the action prints
        self.launcher = Launcher(self._env, config.action_slots)
        self._hurry = asyncio.Event()

    # -- queries ---------------------------------------------------------------------------
    @property
    def full(self) -> bool:
        return self.slots_used >= self.config.action_slots

    def knows(self, attempt_id: str) -> bool:
        return attempt_id in self.attempts or attempt_id in self._recent or self.reporter.has(attempt_id)

    def running_entries(self) -> list[HeldAttempt]:
        """Every attempt held: preparing, running, or finished with the report not yet acknowledged."""
        entries = [a.entry() for a in self.attempts.values() if not a.abandoned]
        held = {e.attempt_id for e in entries}
        entries.extend(e for e in self.reporter.pending_entries() if e.attempt_id not in held)
        return entries

    def busy_tasks(self) -> set[str]:
        return {a.request.task_id for a in self.attempts.values()}

    def current_attempt(self, task_id: str, name: str) -> Optional[str]:
        """The id of the attempt of (task_id, name) held here, if any."""
        attempt = self._find(task_id, name, None)
        return attempt.attempt_id if attempt is not None else None

    def attempt_state(self, attempt_id: str) -> Optional[AttemptState]:
        """Where a held attempt is; None once it has ended here."""
        attempt = self.attempts.get(attempt_id)
        return attempt.state if attempt is not None else None

    # -- commands ----------------------------------------------------------------------------
    def accept(self, request: RunAction) -> bool:
        """Reserve a slot and start the attempt; False when it is already known (idempotent)."""
        if self.draining:
            raise ServiceUnavailable("node is shutting down")
        if request.venv_sha1 is not None and not request.venv_id:
            raise InvalidParameters("field 'venv_id' is required with field 'venv_sha1'")
        if self.knows(request.attempt_id):
            return False
        for other in list(self.attempts.values()):
            if (other.request.task_id, other.request.name) == (request.task_id, request.name):
                # the manager re-dispatched this action, so it gave the older attempt up
                LOG.warning("task %s action %s: attempt %s replaces attempt %s still held here",
                            request.task_id, request.name, request.attempt_id, other.attempt_id)
                self.abandon(other.attempt_id, "replaced by a newer attempt")
        if self.full:
            raise OperationFailed("node has no free action slot")
        attempt = Attempt(request)
        self.attempts[request.attempt_id] = attempt
        self.slots_used += 1
        self.accepted += 1
        attempt.task = asyncio.ensure_future(self._run(attempt))
        return True

    def stop(self, task_id: str, name: str, signum: int, attempt_id: Optional[str] = None) -> str:
        """Send ``signum`` to an action's process group (or cancel its fetch); returns a message."""
        attempt = self._find(task_id, name, attempt_id)
        if attempt is None:
            if any(e.task_id == task_id and e.name == name and (attempt_id is None or e.attempt_id == attempt_id)
                   for e in self.reporter.pending_entries()):
                return "action already finished"
            raise ActionNotExists(f"no action '{name}' of task {task_id} on this node")
        self._kill(attempt, signum, f"stopped by signal {signum}")
        return ""

    def abandon(self, attempt_id: str, reason: str) -> None:
        """The manager no longer expects this attempt: kill it and send nothing about it."""
        self.reporter.drop(attempt_id)
        attempt = self.attempts.get(attempt_id)
        if attempt is None or attempt.abandoned:
            return
        LOG.warning("task %s action %s attempt %s abandoned: %s", attempt.request.task_id,
                    attempt.request.name, attempt_id, reason)
        attempt.abandoned = True
        self._kill(attempt, signal.SIGKILL, reason)

    def abandon_matching(self, entry: HeldAttempt) -> None:
        """Abandon by ``attempt_id`` or, lacking it, by ``task_id`` and ``name``."""
        attempt_id = entry.attempt_id
        if not attempt_id:
            attempt = self._find(entry.task_id, entry.name, None)
            if attempt is None:
                return
            attempt_id = attempt.attempt_id
        self.abandon(attempt_id, "the manager asked to stop it")

    async def drain(self, timeout: float) -> None:
        """Shutdown: accept nothing more, let accepted actions (fetching ones too) end within
        ``timeout``, then kill the rest (reported ``kill``, "node shut down")."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            while True:
                pending = [a.task for a in self.attempts.values() if a.task is not None and not a.task.done()]
                remaining = deadline - loop.time()
                if not pending or remaining <= 0 or self._hurry.is_set():
                    break
                LOG.info("waiting up to %.3g s for %d running action(s)", remaining, len(pending))
                await asyncio.wait(pending + [hurry], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurry.cancel()
        for attempt in list(self.attempts.values()):
            if attempt.state != AttemptState.FINISHED:
                self._kill(attempt, signal.SIGKILL, "node shut down")
        tasks = [a.task for a in self.attempts.values() if a.task is not None and not a.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    def hurry(self) -> None:
        """A second stop signal: end the drain now."""
        self._hurry.set()

    # -- internals ----------------------------------------------------------------------------
    def _find(self, task_id: Any, name: Any, attempt_id: Optional[str]) -> Optional[Attempt]:
        if attempt_id:
            attempt = self.attempts.get(attempt_id)
            return attempt if attempt is not None and not attempt.abandoned else None
        for attempt in self.attempts.values():
            if attempt.request.task_id == task_id and attempt.request.name == name and not attempt.abandoned:
                return attempt
        return None

    def _kill(self, attempt: Attempt, signum: int, reason: str) -> None:
        if attempt.state == AttemptState.FINISHED:
            return
        if attempt.kill_reason is None:
            attempt.kill_reason = reason
        attempt.kill_signal = signum
        if attempt.state == AttemptState.FETCHING:
            if attempt.prep is not None:
                attempt.prep.cancel()
        elif attempt.pgid is not None:
            self._signal_group(attempt, signum)

    def _signal_group(self, attempt: Attempt, signum: int) -> None:
        try:
            os.killpg(attempt.pgid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _release_slot(self, attempt: Attempt) -> None:
        if attempt.holds_slot:
            attempt.holds_slot = False
            self.slots_used -= 1

    def _report(self, attempt: Attempt, stage: Stage, status: Optional[Status] = None,
                returncode: Optional[int] = None, result: Any = None, message: str = "",
                end_at: Any = None) -> Report:
        req = attempt.request
        return Report(name=req.name, task_id=req.task_id, attempt_id=req.attempt_id, stage=stage.value,
                      node_id=self.reporter.link.node_id, attempt=req.attempt,
                      status=status.value if status is not None else None,
                      start_at=clock.fmt(attempt.start_at or attempt.accepted_at), end_at=clock.fmt(end_at),
                      returncode=returncode, result=result, message=message)

    def _prepare_now(self, attempt: Attempt) -> Optional[tuple[str, Optional[str], str]]:
        """What :meth:`_prepare` gives, when it can be had without waiting (a ready copy of
        the application, no env to unpack, a small input); else None."""
        req = attempt.request
        if req.env or not self.workspaces.can_prepare_now(req.input_data):
            return None
        top = self.appcache.acquire_ready(req.app_id, req.app_sha1)
        if top is None:
            return None
        try:
            return top, None, self.workspaces.prepare_now(req.task_id, req.name, req.input_data)
        except BaseException:
            self.appcache.release(req.app_id, req.app_sha1)
            raise

    async def _prepare(self, attempt: Attempt) -> tuple[str, Optional[str], str]:
        req = attempt.request
        top = await self.appcache.ensure(req.app_id, req.app_sha1)
        venv_held = False
        try:
            if req.venv_sha1 is not None:
                if self.venvcache is None:
                    raise AppCacheError("this node cannot fetch venvs")
                env_dir = await self.venvcache.ensure(req.venv_id, req.venv_sha1)
                venv_held = True
            else:
                env_dir = await self.appcache.ensure_env(top, req.env) if req.env else None
            workspace = await self.workspaces.prepare(req.task_id, req.name, req.input_data)
        except BaseException:
            self.appcache.release(req.app_id, req.app_sha1)
            if venv_held:
                self.venvcache.release(req.venv_id, req.venv_sha1)
            raise
        return top, env_dir, workspace

    async def _run(self, attempt: Attempt) -> None:
        req = attempt.request
        LOG.info("action accepted: task %s action %s attempt %s (#%d)", req.task_id, req.name,
                 req.attempt_id, req.attempt)
        try:
            await self._run_inner(attempt)
        except Exception:
            LOG.exception("task %s action %s attempt %s: unexpected error", req.task_id, req.name,
                          req.attempt_id)
            self._release_slot(attempt)
            if not attempt.reported:   # whatever broke, the manager must hear of the attempt
                self._finish(attempt, self._report(attempt, Stage.FINISHED, Status.FAIL,
                                                   message="node error while running the action",
                                                   end_at=clock.now()))
        finally:
            self._release_slot(attempt)
            self.attempts.pop(req.attempt_id, None)

    async def _run_inner(self, attempt: Attempt) -> None:
        req = attempt.request
        if attempt.kill_reason is not None:  # stopped before it even began
            self._release_slot(attempt)
            self._finish(attempt, self._report(attempt, Stage.FINISHED, Status.KILL,
                                               message=attempt.kill_reason, end_at=clock.now()))
            return
        try:
            prepared = self._prepare_now(attempt)
            if prepared is None:   # something to fetch or unpack first: a task a stop can cancel
                attempt.prep = asyncio.ensure_future(self._prepare(attempt))
                prepared = await attempt.prep
        except asyncio.CancelledError:
            if attempt.kill_reason is None:
                raise  # our own task was cancelled, not the preparation
            self._release_slot(attempt)
            self._finish(attempt, self._report(attempt, Stage.FINISHED, Status.KILL,
                                               message=attempt.kill_reason, end_at=clock.now()))
            return
        except (AppCacheError, OSError) as exc:  # OSError: e.g. the disk is full
            message = str(exc) if isinstance(exc, AppCacheError) else \
                f"cannot prepare the action: {describe(exc) if is_disk_full(exc) else exc}"
            self._release_slot(attempt)
            self._finish(attempt, self._report(attempt, Stage.FINISHED, Status.FAIL, message=message,
                                               end_at=clock.now()))
            return
        top, env_dir, workspace = prepared
        try:
            await self._execute(attempt, top, env_dir, workspace)
        finally:
            self.appcache.release(req.app_id, req.app_sha1)
            if req.venv_sha1 is not None:   # the venv copy is never removed while an action uses it
                self.venvcache.release(req.venv_id, req.venv_sha1)

    async def _execute(self, attempt: Attempt, top: str, env_dir: Optional[str], workspace: str) -> None:
        req = attempt.request
        if attempt.kill_reason is not None:  # stopped while the workspace was being made
            self._release_slot(attempt)
            self._finish(attempt, self._report(attempt, Stage.FINISHED, Status.KILL,
                                               message=attempt.kill_reason, end_at=clock.now()))
            return
        attempt.launched_at = time.monotonic()
        try:
            proc = await self.launcher.launch(build_script(top, req.main, workspace, env_dir),
                                              os.path.join(workspace, STDOUT_FILE))
        except OSError as exc:
            self._release_slot(attempt)
            self._finish(attempt, self._report(attempt, Stage.FINISHED, Status.FAIL,
                                               message=f"cannot start the action: {exc}", end_at=clock.now()))
            return
        attempt.pgid = proc.pid
        self.groups.started(req.attempt_id, proc.pid, req.task_id, req.name)
        attempt.start_at = clock.now()
        attempt.state = AttemptState.RUNNING
        self.launched += 1
        if attempt.kill_reason is not None:  # a stop arrived while the process was being spawned
            self._signal_group(attempt, attempt.kill_signal or signal.SIGKILL)
        LOG.info("action started: task %s action %s attempt %s pid %d", req.task_id, req.name,
                 req.attempt_id, proc.pid)
        running_report = asyncio.get_running_loop().call_later(
            RUNNING_REPORT_DELAY, self._send_running, attempt)
        try:
            returncode = await self._wait(attempt, proc)
        finally:
            running_report.cancel()
        end_at = clock.now()
        # leftovers of the action (daemonized helpers still in its group) end with it
        self._signal_group(attempt, signal.SIGKILL)
        self._release_slot(attempt)
        attempt.state = AttemptState.FINISHED
        await self._finish_run(attempt, workspace, returncode, end_at)
        # after the report is on its way: the group is dead already, this only tidies up
        self.groups.ended(req.attempt_id)
        # right away: the next task's actions would otherwise meet the new shell's start-up
        self.launcher.refill()

    def _send_running(self, attempt: Attempt) -> None:
        if not attempt.abandoned and attempt.state == AttemptState.RUNNING:
            self.reporter.send_running(self._report(attempt, Stage.RUNNING))

    async def _wait(self, attempt: Attempt, proc: asyncio.subprocess.Process) -> int:
        waiter = asyncio.ensure_future(proc.wait())
        timeout = attempt.request.timeout
        if timeout is not None:
            done, _ = await asyncio.wait([waiter], timeout=timeout)
            if not done:
                attempt.timed_out = True
                LOG.warning("task %s action %s timed out after %g s", attempt.request.task_id,
                            attempt.request.name, timeout)
                self._signal_group(attempt, signal.SIGTERM)
                done, _ = await asyncio.wait([waiter], timeout=STOP_GRACE)
                if not done:
                    self._signal_group(attempt, signal.SIGKILL)
        return shell_returncode(await waiter)

    async def _finish_run(self, attempt: Attempt, workspace: str, returncode: int, end_at: Any) -> None:
        req = attempt.request
        message = ""
        try:
            output = os.path.join(workspace, OUTPUT_FILE)
            if _small(output):   # the common case: parse in place, no thread hop on the hot path
                result = read_output(output, self.config.max_output_size)
            else:
                result = await asyncio.to_thread(read_output, output, self.config.max_output_size)
            output_ok = True
        except OutputError as exc:
            result, message, output_ok = {}, str(exc), False
        if attempt.kill_reason is not None:
            status = Status.KILL
            message = attempt.kill_reason + (f"; {message}" if message else "")
        elif attempt.timed_out:
            status = Status.FAIL
            message = await self._with_output_tail(f"action timed out after {req.timeout:g} s", workspace)
        elif not output_ok:
            status = Status.FAIL
        elif returncode != 0:
            status = Status.FAIL
            message = await self._with_output_tail(f"action exited with code {returncode}", workspace)
        else:
            status = Status.SUCCESS
        if self.lease_lapsed(attempt.launched_at) and not attempt.abandoned:
            # the reaper ended it (or it ended) after the lease ran out: the manager re-queues
            # it on its own, and a report now could only be stale
            LOG.warning("task %s action %s attempt %s ended after the node's lease ran out; not reported",
                        req.task_id, req.name, req.attempt_id)
            attempt.abandoned = True
        if status == Status.FAIL and volume_full(workspace):
            # its own error message may not even have reached stdout.data: say what happened
            message = f"{message}; {no_space(workspace)}" if message else no_space(workspace)
        self._finish(attempt, self._report(attempt, Stage.FINISHED, status, returncode, result, message, end_at))

    @staticmethod
    async def _with_output_tail(message: str, workspace: str) -> str:
        """``message`` ending with the action's last output lines: the task's message then
        says why without a trip to the log."""
        return with_tail(message, await asyncio.to_thread(read_tail, os.path.join(workspace, STDOUT_FILE)))

    def _finish(self, attempt: Attempt, report: Report) -> None:
        req = attempt.request
        attempt.state = AttemptState.FINISHED
        attempt.reported = True
        self.attempts.pop(req.attempt_id, None)
        self._recent[req.attempt_id] = None
        while len(self._recent) > RECENT_ATTEMPTS:
            self._recent.popitem(last=False)
        self.ended["abandoned" if attempt.abandoned else report.status] += 1
        if attempt.abandoned:
            LOG.info("action ended: task %s action %s attempt %s (abandoned, not reported)", req.task_id,
                     req.name, req.attempt_id)
            return
        LOG.info("action finished: task %s action %s attempt %s status %s returncode %s%s", req.task_id,
                 req.name, req.attempt_id, report.status, report.returncode,
                 f" ({report.message})" if report.message else "")
        self.reporter.submit(report)
