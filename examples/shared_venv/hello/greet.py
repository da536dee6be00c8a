"""hello: greets whoever the task's input names, from the shared venv's python."""
import sys

from litepipeline.action import Action

workspace, input_data = Action.get_input()
name = input_data.get("name", "world")
print(f"greet: running in {sys.prefix}", flush=True)
Action.set_output(data={"greeting": f"hello, {name}", "python": sys.prefix})
print("greet: done")
