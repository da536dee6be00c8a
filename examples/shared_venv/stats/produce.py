"""stats, first action: the numbers 1..count (count from the task's input, default 5).

Not named numbers.py: the application directory comes first on sys.path, and that name
would shadow the standard library module ``statistics`` imports.
"""
from litepipeline.action import Action

workspace, input_data = Action.get_input()
count = input_data.get("count", 5)
if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 1000:
    raise SystemExit(f"produce: count must be an integer from 1 to 1000, got {count!r}")
Action.set_output(data={"numbers": list(range(1, count + 1))})
print("produce: done")
