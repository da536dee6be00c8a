"""load/report: write a small report from both upstream entries' results.

Its input holds the work's input plus ``extract`` and ``transform`` (the entries in its
condition). The report goes to ``report_path`` when the work's input names one, else into
the action's workspace on the node.
"""

import json
import os
import sys

workspace = sys.argv[1]
with open(os.path.join(workspace, "input.data"), encoding="utf-8") as f:
    input_data = json.load(f)
extract = input_data["extract"]
longest = input_data["transform"]["longest"]
report = {"lines": extract["count"], "total_words": longest["total_words"], "longest_line": longest["line"]}
path = input_data.get("report_path") or os.path.join(workspace, "report.json")
with open(path, "w", encoding="utf-8") as f:
    json.dump(report, f, indent=2)
print(f"load: wrote {path}")
with open(os.path.join(workspace, "output.data"), "w", encoding="utf-8") as f:
    json.dump({"data": dict(report, report=path)}, f)
