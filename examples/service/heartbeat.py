"""A service: writes a heartbeat line every second until it is stopped.

Input (the service's input_data, all optional):
  "file":  also append each line to this file (absolute path on the node)
  "beats": exit after this many beats (default: run until stopped)
  "exit":  the exit code then (default 0; non-zero makes the task fail)
SIGTERM ends it cleanly (exit 0) after the line it is writing.
"""
import datetime
import json
import os
import signal
import sys
import time

workspace = sys.argv[1]
with open(os.path.join(workspace, "input.data"), encoding="utf-8") as fp:
    data = json.load(fp)
stopping = False


def stop(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
beats = data.get("beats")
count = 0
while not stopping and (beats is None or count < beats):
    count += 1
    line = f"{datetime.datetime.now().isoformat()} heartbeat {count} pid {os.getpid()} task {data['task_id']}"
    print(line, flush=True)
    if data.get("file"):
        with open(data["file"], "a", encoding="utf-8") as fp:
            fp.write(line + "\n")
    if beats is not None and count >= beats:
        break
    time.sleep(1)
with open(os.path.join(workspace, "output.data"), "w", encoding="utf-8") as fp:
    json.dump({"data": {"beats": count, "stopped": stopping}}, fp)
sys.exit(0 if stopping else int(data.get("exit", 0)))
