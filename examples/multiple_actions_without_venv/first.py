"""first: no condition, so it starts at once, in parallel with second.

Plain JSON file handling, no helper import: the node runs `python3 first.py WORKSPACE`,
the input is WORKSPACE/input.data and the output goes to WORKSPACE/output.data.
"""

import json
import os
import sys

workspace = sys.argv[1]
with open(os.path.join(workspace, "input.data"), encoding="utf-8") as f:
    input_data = json.load(f)
# Anything printed goes to WORKSPACE/stdout.data on the node.
print(f"first: task {input_data.get('task_id')} in {workspace}, input {input_data}")

with open(os.path.join(workspace, "output.data"), "w", encoding="utf-8") as f:
    json.dump({"data": {"first": "hello from first", "value": 1}, "actions": []}, f)
print("first: done")
