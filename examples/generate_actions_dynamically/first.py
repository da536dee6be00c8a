"""first: generates `count` (task input, default 3) actions second_000, second_001, ...

Each generated action names `third` as its to_action, so third also waits for all of
them and receives their output. Plain JSON file handling, no helper import.
"""

import json
import os
import sys

workspace = sys.argv[1]
with open(os.path.join(workspace, "input.data"), encoding="utf-8") as f:
    input_data = json.load(f)

count = input_data.get("count", 3)
if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1000:
    print(f"first: count must be an integer from 0 to 1000, got {count!r}", file=sys.stderr)
    sys.exit(2)  # a non-zero exit fails the action, and so the task

actions = [
    {
        "name": f"second_{i:03d}",
        "main": "python3 second.py",
        "condition": [],
        "input_data": {"index": i},
        "to_action": "third",
    }
    for i in range(count)
]
print(f"first: task {input_data.get('task_id')} generates {[a['name'] for a in actions]}")

output = {"data": {"count": count, "generated": [a["name"] for a in actions]}, "actions": actions}
with open(os.path.join(workspace, "output.data"), "w", encoding="utf-8") as f:
    json.dump(output, f)
