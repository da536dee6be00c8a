"""second: no condition, so it starts at once, in parallel with first (plain JSON)."""

import json
import os
import sys

workspace = sys.argv[1]
with open(os.path.join(workspace, "input.data"), encoding="utf-8") as f:
    input_data = json.load(f)
print(f"second: task {input_data.get('task_id')} in {workspace}, input {input_data}")

with open(os.path.join(workspace, "output.data"), "w", encoding="utf-8") as f:
    json.dump({"data": {"second": "hello from second", "value": 2}, "actions": []}, f)
print("second: done")
