"""The Celery side of ``bench/peers.py``: one task that runs an action as LitePipeline does.

Imported by the Celery workers that ``peers.py`` starts (``celery -A celery_peer worker``,
with this directory as the working directory) and by ``peers.py`` itself. The broker and
result backend are Redis, named by ``LP_PEER_REDIS``; ``LP_PEER_QUEUE`` is a queue of this
run's own, so runs on a shared Redis do not take each other's tasks.
"""
from __future__ import annotations

import os
import subprocess
import time

from celery import Celery

REDIS = os.environ.get("LP_PEER_REDIS", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("LP_PEER_QUEUE", "litepipeline-peer")

app = Celery("celery_peer", broker=REDIS, backend=REDIS)
app.conf.update(task_default_queue=QUEUE, result_expires=600, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True, worker_send_task_events=False)


@app.task(name="celery_peer.run_action")
def run_action(appdir: str, workspace: str) -> float:
    """What a LitePipeline node does for an action, as bench.py's floor does it: a
    workspace with an ``input.data``, then the action's command under bash as a process
    of its own. Returns when it ended (``time.time()``), for the throughput's span."""
    os.makedirs(workspace, exist_ok=True)
    with open(os.path.join(workspace, "input.data"), "w") as fp:
        fp.write("{}")
    subprocess.run(["bash", "-c", f"cd {appdir} && python3 noop.py {workspace}"], check=True)
    return time.time()
