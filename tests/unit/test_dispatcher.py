"""The dispatcher against a fake node link and a fake store: no processes, no network."""
from __future__ import annotations

import asyncio

from litepipeline.common.messages import Answer, RunAction, StopAction
from litepipeline.manager.dispatcher import Dispatcher
from litepipeline.manager.scheduler import SchedulerCore
from tests.unit.test_node_reporter import until
from tests.unit.test_scheduler import make_task, node_up


class FakeStore:
    inline_writes = True    # saved on the loop, as SQLite rounds are

    def __init__(self) -> None:
        self.batches: list = []

    def save(self, batch) -> None:
        self.batches.append(batch)


class FakeLink:
    """Records what the dispatcher sends; each RUN's answer is a future the test resolves."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.runs: list[tuple[str, RunAction, int]] = []     # (node, message, batches saved by then)
        self.answers: dict[str, asyncio.Future] = {}
        self.stops: list[tuple[str, StopAction]] = []

    def run(self, node_id: str, message: RunAction):
        self.runs.append((node_id, message, len(self.store.batches)))
        future = asyncio.get_running_loop().create_future()
        self.answers[message.attempt_id] = future
        return future

    async def stop(self, node_id: str, message: StopAction) -> Answer:
        self.stops.append((node_id, message))
        return Answer(message.attempt_id, 200, "ok", "")


def run_with(scenario) -> None:
    async def main() -> None:
        core = SchedulerCore(lost_grace=2)
        store = FakeStore()
        link = FakeLink(store)
        fatal: list = []
        dispatcher = Dispatcher(core, store, None, link, fatal.append)
        dispatcher.start()
        try:
            await scenario(core, store, link, dispatcher)
        finally:
            await dispatcher.stop()
        assert fatal == []

    asyncio.run(main())


def test_a_dispatch_is_sent_in_the_round_that_commits_it():
    async def scenario(core, store, link, dispatcher) -> None:
        await dispatcher.submit(lambda: node_up(core, "n1", 2, [], True))
        task = make_task("t1", ("a", []), ("b", ["a"]))
        await dispatcher.submit(lambda: core.add_task(task))
        # by the time the submitter hears back, the RUN has been handed to the link,
        # after the batch recording the attempt was saved
        ((node_id, message, saved),) = link.runs
        assert (node_id, message.task_id, message.name, message.attempt) == ("n1", "t1", "a", 1)
        assert saved >= 1 and any(r.attempt_id == message.attempt_id for b in store.batches for r in b.new_attempts)
        link.answers[message.attempt_id].set_result(Answer(message.attempt_id, 200, "ok", ""))
        await asyncio.sleep(0)
        assert task.actions["a"].stage == "running"

    run_with(scenario)


def test_a_refused_dispatch_goes_back_and_runs_elsewhere():
    async def scenario(core, store, link, dispatcher) -> None:
        await dispatcher.submit(lambda: node_up(core, "n1", 1, [], True))
        task = make_task("t1", ("a", []))
        await dispatcher.submit(lambda: core.add_task(task))
        (_, first, _), = link.runs
        await dispatcher.submit(lambda: node_up(core, "n2", 1, [], True))
        link.answers[first.attempt_id].set_result(Answer(first.attempt_id, 409, "OperationFailed", "full"))
        await until(lambda: len(link.runs) == 2)
        node_id, again, _ = link.runs[1]
        assert node_id == "n2" and again.attempt == 2 and again.attempt_id != first.attempt_id
        assert core.nodes["n1"].suspended_until is not None     # n1 said no: left alone a moment

    run_with(scenario)


def test_an_unreachable_node_is_an_answer_too():
    async def scenario(core, store, link, dispatcher) -> None:
        await dispatcher.submit(lambda: node_up(core, "n1", 1, [], True))
        task = make_task("t1", ("a", []))
        await dispatcher.submit(lambda: core.add_task(task))
        (_, first, _), = link.runs
        link.answers[first.attempt_id].set_result(Answer(first.attempt_id, 0, "NodeGone", "closed"))
        await until(lambda: task.actions["a"].attempt_id != first.attempt_id)
        assert task.actions["a"].message.startswith("dispatch to node n1 failed: HTTP 0: NodeGone")

    run_with(scenario)


def test_a_stop_goes_through_the_link():
    async def scenario(core, store, link, dispatcher) -> None:
        await dispatcher.submit(lambda: node_up(core, "n1", 2, [], True))
        await dispatcher.submit(lambda: core.add_task(make_task("t1", ("a", []))))
        (_, message, _), = link.runs
        await dispatcher.submit(lambda: core.stop_task("t1", -9))
        await until(lambda: link.stops)
        assert link.stops == [("n1", StopAction("t1", "a", -9, message.attempt_id))]

    run_with(scenario)


def test_a_retry_wakes_the_dispatcher_without_an_event():
    async def scenario(core, store, link, dispatcher) -> None:
        from litepipeline.common.messages import Report

        await dispatcher.submit(lambda: node_up(core, "n1", 1, [], True))
        await dispatcher.submit(lambda: core.add_task(make_task("t1", ("a", [], {"retries": 1,
                                                                                  "retry_delay": 0.05}))))
        (_, first, _), = link.runs
        link.answers[first.attempt_id].set_result(Answer(first.attempt_id, 200, "ok", ""))
        failed = Report(name="a", task_id="t1", attempt_id=first.attempt_id, stage="finished", node_id="n1",
                        status="fail", returncode=1, result={})
        await dispatcher.submit(lambda: core.report(failed))
        await until(lambda: len(link.runs) == 2)      # nothing else happened: the timer did it
        assert link.runs[1][1].attempt == 2

    run_with(scenario)
