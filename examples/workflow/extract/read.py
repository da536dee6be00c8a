"""extract/read: split the work's input text into lines.

The application names ``read`` as its ``output_action``, so in a workflow this action's
``data`` is the entry's whole result: downstream entries get ``{"lines": [...], "count": N}``
under the key ``extract``.
"""

import json
import os
import sys

SAMPLE = "the quick brown fox\njumps over\nthe lazy dog"

workspace = sys.argv[1]
with open(os.path.join(workspace, "input.data"), encoding="utf-8") as f:
    input_data = json.load(f)
lines = [line for line in str(input_data.get("text", SAMPLE)).splitlines() if line.strip()]
print(f"extract: {len(lines)} line(s)")
with open(os.path.join(workspace, "output.data"), "w", encoding="utf-8") as f:
    json.dump({"data": {"lines": lines, "count": len(lines)}}, f)
