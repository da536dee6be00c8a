"""Makes actions' process groups die with their node, whatever kills the node.

A small bash process, started with the node in a session of its own, holds the read end
of a pipe from the node and the list of live action process groups (``+PGID``/``-PGID``
lines). When the node dies — SIGKILL included — the pipe closes, and the reaper kills every
group still listed, then exits. This costs one pipe write per action instead of a
``preexec_fn`` (which forces a full fork of the node for every action), and it also
reaches the action's own children, which a parent-death signal on bash alone would not.
Groups left behind anyway (the node died between spawning and writing) are recorded in
``data_path/running`` and reaped at the next start.

It also enforces the node's lease (``L`` lines, see :mod:`litepipeline.node.lease`): when
the node has not heard from the manager for ``heartbeat_timeout`` — a partition, or the
node process itself frozen — the reaper kills every group it lists, and any group listed
after that, until a new lease arrives. The reaper runs on its own, so this holds even
while the node process is stopped.
"""
from __future__ import annotations

import logging
import subprocess
from typing import Optional

LOG = logging.getLogger(__name__)

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


class Reaper:
    """The node's side of the reaper process."""

    def __init__(self) -> None:
        self._proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        # blocking, once, at start-up: the reaper must exist before any action does
        self._proc = subprocess.Popen(["bash", "-c", SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    def watch(self, pgid: int) -> None:
        self._send(f"+ {pgid}\n")

    def forget(self, pgid: int) -> None:
        self._send(f"- {pgid}\n")

    def lease(self, seconds: float) -> None:
        """Kill every listed group if no new lease comes within ``seconds`` (see node/lease.py)."""
        self._send(f"L {max(int(seconds * 1_000_000), 1)}\n")

    def _send(self, line: str) -> None:
        if self._proc is None:
            return
        try:
            self._proc.stdin.write(line.encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            # the reaper was killed: start a new one; running groups are re-announced by the caller
            LOG.error("the process-group reaper died; starting a new one")
            self.start()
            try:
                self._proc.stdin.write(line.encode())
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
