"""second: no condition, so it starts at once, in parallel with first.

Built by pack.sh into a PyInstaller one-file binary that bundles Python and
litepipeline.action, so the node needs neither.
"""

from litepipeline.action import Action

workspace, input_data = Action.get_input()
print(f"second: task {input_data.get('task_id')} in {workspace}, input {input_data}")
Action.set_output(data={"second": "hello from second", "value": 2})
print("second: done")
