"""second_NNN: a generated action; squares the `index` its generator gave it."""

import json
import os
import sys

workspace = sys.argv[1]
# A generated action without conditions gets task_id and workspace plus its own input_data.
with open(os.path.join(workspace, "input.data"), encoding="utf-8") as f:
    input_data = json.load(f)

index = input_data["index"]
print(f"second: task {input_data.get('task_id')} index {index}")

with open(os.path.join(workspace, "output.data"), "w", encoding="utf-8") as f:
    json.dump({"data": {"index": index, "square": index * index}, "actions": []}, f)
