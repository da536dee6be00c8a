"""third: waits for first and second; its input holds their output data by name."""

import json
import os
import sys

workspace = sys.argv[1]
with open(os.path.join(workspace, "input.data"), encoding="utf-8") as f:
    input_data = json.load(f)
first, second = input_data["first"], input_data["second"]
print(f"third: got first={first} second={second}")

data = {
    "joined": {"first": first["first"], "second": second["second"]},
    "sum": first["value"] + second["value"],
}
with open(os.path.join(workspace, "output.data"), "w", encoding="utf-8") as f:
    json.dump({"data": data, "actions": []}, f)
print("third: done")
