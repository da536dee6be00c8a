"""transform: count the words of each line (``words``), then pick the longest line (``longest``).

No ``output_action`` here, so the entry's result is ``{action name: data}`` of the actions
nothing in the task waits for: ``{"longest": {...}}``.
"""

import json
import os
import sys

step, workspace = sys.argv[1], sys.argv[2]
with open(os.path.join(workspace, "input.data"), encoding="utf-8") as f:
    input_data = json.load(f)
if step == "words":
    # the first action of the task gets the entry's input: the work's input + upstream results
    lines = input_data["extract"]["lines"]
    data = {"words": [[line, len(line.split())] for line in lines]}
else:
    counted = input_data["words"]["words"]
    line, words = max(counted, key=lambda item: item[1]) if counted else ("", 0)
    data = {"line": line, "words": words, "total_words": sum(n for _, n in counted)}
print(f"transform {step}: {data}")
with open(os.path.join(workspace, "output.data"), "w", encoding="utf-8") as f:
    json.dump({"data": data}, f)
