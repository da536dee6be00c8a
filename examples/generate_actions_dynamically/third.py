"""third: waits for first (condition) and every second_NNN (their to_action).

Its input holds each upstream action's output data under that action's name.
"""

import json
import os
import sys

workspace = sys.argv[1]
with open(os.path.join(workspace, "input.data"), encoding="utf-8") as f:
    input_data = json.load(f)

names = sorted(name for name in input_data if name.startswith("second_"))
if names != sorted(input_data["first"]["generated"]):
    # Fail loudly: every generated action should have reached third through to_action.
    print(f"third: expected {input_data['first']['generated']}, got {names}", file=sys.stderr)
    sys.exit(1)
results = [input_data[name] for name in names]
print(f"third: collected {len(results)} results")

data = {
    "count": len(results),
    "results": results,
    "sum_of_squares": sum(r["square"] for r in results),
}
with open(os.path.join(workspace, "output.data"), "w", encoding="utf-8") as f:
    json.dump({"data": data, "actions": []}, f)
