"""stats, second action: the mean and median of what produce made."""
import statistics

from litepipeline.action import Action

workspace, input_data = Action.get_input()
numbers = input_data["produce"]["numbers"]
Action.set_output(data={"count": len(numbers), "mean": statistics.mean(numbers),
                        "median": statistics.median(numbers)})
print("summary: done")
