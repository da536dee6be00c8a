"""third: waits for first and second; its input holds their output data by name."""

from litepipeline.action import Action

workspace, input_data = Action.get_input()
first, second = input_data["first"], input_data["second"]
print(f"third: got first={first} second={second}")
Action.set_output(
    data={
        "joined": {"first": first["first"], "second": second["second"]},
        "sum": first["value"] + second["value"],
    }
)
print("third: done")
