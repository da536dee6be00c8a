"""The node's action process groups: they must never outlive the node.

Three nets, owned by :class:`ProcessGroups`:

- The **reaper**: a small bash process, started with the node in a session of its own,
  holds the read end of a pipe from the node and the list of live action process groups
  (``+PGID``/``-PGID`` lines). When the node dies (SIGKILL included) the pipe closes and
  the reaper kills every group still listed, then exits. This costs one pipe write per
  action instead of a ``preexec_fn`` (which forces a full fork of the node per action),
  and it reaches the action's own children, which a parent-death signal on bash would
  not. A reaper that died is started again and told every group still running (and the
  lease). It also enforces the node's lease (``L <microseconds>`` lines, see
  :mod:`litepipeline.node.lease`): when the node has not heard from the manager for
  ``heartbeat_timeout`` (a partition, or the node process itself frozen by SIGSTOP) the
  reaper kills every group it lists, and any group listed after that, until a new lease
  arrives. The reaper runs on its own, so this holds even while the node is stopped.
- The **journal**, ``data_path/running/journal``, the net under the reaper (should it die
  with the node): one append-only file, a JSON line when a group starts (``pgid``,
  ``start_time``, ``boot_id``, ``task_id``, ``name``, ``attempt_id``) and
  ``{"end": attempt_id}`` when it has ended; an event costs one ``write``. Past
  :data:`COMPACT_AT` it is rewritten with only the groups still running.
- **Reaping at start-up**: the groups the journal still lists are killed, if they are
  still the same processes (same boot, same start time).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from typing import Any, Optional

LOG = logging.getLogger(__name__)

COMPACT_AT = 256 * 1024   # bytes: the journal is rewritten past this


SCRIPT = r"""
trap '' INT TERM HUP
declare -A groups
deadline=0    # microseconds (EPOCHREALTIME) the lease runs until; 0: no lease yet
expired=0
kill_all() {
  for pgid in "${!groups[@]}"; do kill -KILL -- "-$pgid" 2>/dev/null; done
  groups=()
}
while true; do
  if (( deadline > 0 )); then
    now=${EPOCHREALTIME//[!0-9]/}
    left=$(( deadline - now ))
    if (( left <= 0 )); then
      kill_all; deadline=0; expired=1
      continue
    fi
    printf -v wait '%d.%06d' $(( left / 1000000 )) $(( left % 1000000 ))
    read -r -t "$wait" op arg
  else
    read -r op arg
  fi
  status=$?
  (( status > 128 )) && continue      # timed out: the loop checks the lease again
  (( status != 0 )) && break          # end of input: the node is gone
  case "$op" in
    +) groups[$arg]=1; (( expired )) && kill_all ;;
    -) unset "groups[$arg]" ;;
    L) deadline=$(( ${EPOCHREALTIME//[!0-9]/} + arg )); expired=0 ;;
  esac
done
kill_all
exit 0
"""


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fp:
            return fp.read().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> Optional[int]:
    """Field 22 of /proc/PID/stat (clock ticks since boot); None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fp:
            stat = fp.read()
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _lease_line(seconds: float) -> str:
    return f"L {max(int(seconds * 1_000_000), 1)}\n"


class Reaper:
    """The node's side of the reaper process; it knows the groups it was told of."""

    def __init__(self) -> None:
        self._proc: Optional[subprocess.Popen] = None
        self.groups: set[int] = set()
        self._lease_until: Optional[float] = None   # time.monotonic() the last lease runs until

    def start(self) -> None:
        # blocking, once, at start-up: the reaper must exist before any action does
        self._proc = subprocess.Popen(["bash", "-c", SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)

    def watch(self, pgid: int) -> None:
        self.groups.add(pgid)
        self._send(f"+ {pgid}\n")

    def forget(self, pgid: int) -> None:
        self.groups.discard(pgid)
        self._send(f"- {pgid}\n")

    def lease(self, seconds: float) -> None:
        """Kill every listed group if no new lease comes within ``seconds`` (see node/lease.py)."""
        self._lease_until = time.monotonic() + seconds
        self._send(_lease_line(seconds))

    def _send(self, line: str) -> None:
        if self._proc is None:
            return
        try:
            self._proc.stdin.write(line.encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            # the reaper was killed: a new one must hear of every group still running, not
            # only of this line's
            LOG.error("the process-group reaper died; starting a new one")
            self._proc.kill()    # (if it still lived, its pipe is unusable anyway)
            self._proc.wait()
            self.start()
            try:
                lines = "".join(f"+ {pgid}\n" for pgid in self.groups)
                if self._lease_until is not None:   # the lease first: it may have run out meanwhile
                    lines = _lease_line(self._lease_until - time.monotonic()) + lines
                self._proc.stdin.write(lines.encode())
                self._proc.stdin.flush()
            except OSError:
                LOG.error("cannot talk to the process-group reaper")

    def close(self) -> None:
        """Graceful stop: the reaper kills what is still listed (nothing, after a drain) and exits."""
        if self._proc is None:
            return
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._proc = None


class Journal:
    """The start records: ``started``/``ended`` while the node runs; ``leftovers`` and
    ``reset`` at its start."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, "journal")
        self._fd = -1
        self._size = 0

    def started(self, record: dict) -> None:
        self._append(record)

    def ended(self, attempt_id: str, running: list[dict]) -> None:
        """``running``: the records of the groups that still run (kept by a compaction)."""
        self._append({"end": attempt_id})
        if self._size <= COMPACT_AT or self._fd < 0:
            return
        try:
            if not running:
                os.ftruncate(self._fd, 0)   # O_APPEND: the next line goes to the new end
                self._size = 0
                return
            # a new file in place of the old in one rename: a crash leaves one or the other
            tmp = self.path + ".tmp"
            data = b"".join((json.dumps(r) + "\n").encode() for r in running)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            self.close()   # the next line reopens the new file
        except OSError as exc:
            LOG.warning("cannot compact %s: %s", self.path, exc)

    def leftovers(self) -> list[dict]:
        """The groups listed as started and never as ended (a torn last line is skipped)."""
        try:
            with open(self.path, "rb") as fp:
                lines = fp.read().splitlines()
        except FileNotFoundError:
            return []
        started: dict[str, dict] = {}
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            if "end" in entry:
                started.pop(str(entry["end"]), None)
            elif "attempt_id" in entry:
                started[str(entry["attempt_id"])] = entry
        return list(started.values())

    def reset(self) -> None:
        """Start afresh (after the leftovers were dealt with)."""
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _append(self, entry: Any) -> None:
        line = (json.dumps(entry) + "\n").encode()
        try:
            if self._fd < 0:
                os.makedirs(self.directory, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._size = os.fstat(self._fd).st_size
            os.write(self._fd, line)   # one line, O_APPEND: whole, after the others
            self._size += len(line)
        except OSError as exc:   # only the crash-recovery net is lost; the action runs on
            LOG.warning("cannot write to %s: %s", self.path, exc)


class ProcessGroups:
    """The one owner of the node's action process groups (see the module docstring)."""

    def __init__(self, directory: str, reaper: Optional[Reaper] = None) -> None:
        self.reaper = reaper or Reaper()
        self.journal = Journal(directory)
        self.boot_id = boot_id()
        self._running: dict[str, dict] = {}    # attempt_id -> its journal record

    def start(self) -> int:
        """Reap what an earlier run left, then start the reaper; returns how many groups were killed."""
        killed = self.reap_leftovers()
        self.reaper.start()
        return killed

    def started(self, attempt_id: str, pgid: int, task_id: str, name: str) -> None:
        self.reaper.watch(pgid)
        record = {"pgid": pgid, "start_time": process_start_time(pgid), "boot_id": self.boot_id,
                  "task_id": task_id, "name": name, "attempt_id": attempt_id}
        self._running[attempt_id] = record
        self.journal.started(record)

    def ended(self, attempt_id: str) -> None:
        record = self._running.pop(attempt_id, None)
        if record is None:
            return
        self.reaper.forget(record["pgid"])
        self.journal.ended(attempt_id, list(self._running.values()))

    def close(self) -> None:
        self.reaper.close()
        self.journal.close()

    def reap_leftovers(self) -> int:
        """Kill the process groups the journal of an earlier run still lists; returns how many."""
        killed = 0
        for record in self.journal.leftovers():
            try:
                pgid = int(record["pgid"])
            except (ValueError, KeyError, TypeError):
                continue
            if pgid <= 1 or record.get("boot_id") != self.boot_id:
                continue
            if _is_ours(pgid, record.get("start_time")):
                try:
                    os.killpg(pgid, signal.SIGKILL)
                    killed += 1
                    LOG.warning("killed orphaned process group %d of task %s action %s", pgid,
                                record.get("task_id"), record.get("name"))
                except (ProcessLookupError, PermissionError):
                    pass
        self.journal.reset()
        return killed


def _is_ours(pgid: int, start_time: Optional[int]) -> bool:
    started = process_start_time(pgid)
    if started is not None:
        return started == start_time  # the leader lives: same process only if same start
    # leader gone: while any member lives the id cannot be reused, so the group is ours
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
