"""first: no condition, so it starts at once, in parallel with second.

Built by pack.sh into a PyInstaller one-file binary that bundles Python and
litepipeline.action, so the node needs neither.
"""

from litepipeline.action import Action

workspace, input_data = Action.get_input()
# Anything printed goes to WORKSPACE/stdout.data on the node.
print(f"first: task {input_data.get('task_id')} in {workspace}, input {input_data}")
Action.set_output(data={"first": "hello from first", "value": 1})
print("first: done")
