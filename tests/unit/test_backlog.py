"""The pending queue beyond the scheduler's window (manager/backlog.py).

The pure decisions first; then the backlog with a real scheduler core, dispatcher and
SQLite store (no node processes): admission order, the window's bound, stops and deletes
of backlogged tasks, and what a restart finds in the store at any round boundary.
"""
from __future__ import annotations

import asyncio

from litepipeline.manager.backlog import SLOT_FACTOR, UNPLACED_FACTOR, Backlog, BacklogCore
from litepipeline.manager.dbthread import DbThread
from litepipeline.manager.dispatcher import Dispatcher
from litepipeline.manager.scheduler import SchedulerCore
from litepipeline.manager.store.store import Store, sqlite_url
from litepipeline.manager.taskstate import ActionState, TaskState
from tests.unit.test_dispatcher import FakeLink
from tests.unit.test_scheduler import finish, make_task, node_up


# -- the pure core ---------------------------------------------------------------------
def test_new_tasks_stay_in_memory_until_the_window_is_full_then_queue_behind():
    core = BacklogCore(window=3)
    assert not core.takes_new(in_memory=2, slots=0)
    assert core.takes_new(in_memory=3, slots=0)
    core.add("a")
    # once a task waits in the store, every newer one waits behind it, however empty memory is
    assert core.takes_new(in_memory=0, slots=0)


def test_the_window_grows_with_the_action_slots():
    core = BacklogCore(window=3)
    assert core.target(slots=0) == 3
    assert core.target(slots=10) == SLOT_FACTOR * 10
    assert not core.takes_new(in_memory=30, slots=10)


def test_reads_come_oldest_first_once_three_quarters_of_the_window_drained():
    core = BacklogCore(window=8)
    core.extend(f"t{i}" for i in range(20))
    assert core.to_read(pending_in_memory=7, slots=0) == []   # still above 3/4 of 8
    assert core.to_read(pending_in_memory=6, slots=0) == ["t0", "t1"]   # refilled to 8, no more
    assert core.to_read(pending_in_memory=0, slots=0) == [f"t{i}" for i in range(8)]
    core.read_done(["t0", "t1"])
    assert "t0" not in core and len(core) == 18
    assert core.to_read(pending_in_memory=6, slots=0) == ["t2", "t3"]


def test_a_wanted_task_is_read_first_whatever_the_window():
    core = BacklogCore(window=2)
    core.extend(["a", "b", "c"])
    core.defer_stop("c", -9)
    core.want("nope")   # not backlogged: ignored
    assert core.busy()
    assert core.to_read(pending_in_memory=2, slots=0) == ["c"]     # window full: only the stop
    assert core.to_read(pending_in_memory=0, slots=0) == ["c", "a", "b"]
    core.read_done(["c"])
    assert not core.busy() and core.take_stops() == {"c": -9} and core.take_stops() == {}


def test_tasks_no_node_can_take_do_not_count_toward_the_window_up_to_a_bound():
    core = BacklogCore(window=4)
    assert core.counted(pending=4, unplaced=0, slots=0) == 4
    assert core.counted(pending=4, unplaced=4, slots=0) == 0
    assert core.counted(pending=20, unplaced=20, slots=0) == 20 - UNPLACED_FACTOR * 4   # memory stays bounded
    assert core.counted(pending=3, unplaced=5, slots=0) == 0


def test_parked_tasks_are_never_read_until_their_class_wakes_then_come_first():
    core = BacklogCore(window=2)
    core.extend(["new1", "new2"])
    gpu, tpu = [{"labels": {"gpu": "a"}}], [{"labels": {"tpu": "b"}}]
    core.park("g1", gpu)
    core.park("t1", tpu)
    core.park("g2", gpu)
    assert len(core) == 5 and "g1" in core and core.parked("g1") and not core.parked("new1")
    assert core.to_read(pending_in_memory=0, slots=0) == ["new1", "new2"]
    assert core.takes_new(in_memory=0, slots=0)         # FIFO behind the queued, not the parked
    key = next(k for k, targets in core.classes.items() if targets == gpu)
    assert core.wake([key]) == 2 and list(core.classes.values()) == [tpu]
    assert core.to_read(pending_in_memory=0, slots=0) == ["g1", "g2"]   # older: first
    core.defer_stop("t1", -15)       # a stop reads a parked task whatever the window
    assert core.to_read(pending_in_memory=2, slots=0) == ["t1"]
    core.read_done(["t1"])
    assert "t1" not in core and core.take_stops() == {"t1": -15}
    core.park("t2", tpu)
    core.discard("t2")
    assert "t2" not in core and core.parked_count() == 0
    assert core.to_read(pending_in_memory=0, slots=0) == ["g1", "g2"]   # still queued, oldest first


def test_a_new_task_the_backlog_takes_is_parked_at_once_when_its_class_is():
    """Never read from the store only to be parked again."""
    from litepipeline.common.targets import parse_target
    gpu = {"target": parse_target({"labels": {"gpu": "a100"}})}
    core = SchedulerCore()
    backlog = Backlog(core, store=None, db=None, window=1)
    backlog.state.park("old", core.ready_targets(make_task("old", ("train", [], gpu))))
    backlog.state.add("queued")   # older tasks wait in the store: new ones go there too (FIFO)
    core.add_task(make_task("new", ("train", [], gpu)))
    core.add_task(make_task("plain", ("a", [])))
    tpu = {"target": parse_target({"labels": {"tpu": "v5"}})}
    core.add_task(make_task("other", ("train", [], tpu)))
    assert backlog.state.parked("new") and not core.tasks
    assert not backlog.state.parked("plain") and "plain" in backlog.state
    assert not backlog.state.parked("other") and "other" in backlog.state
    assert [t.task_id for t in core.take_batch().new_tasks] == ["new", "plain", "other"]   # all written


def test_discard_and_position():
    core = BacklogCore(window=1)
    core.extend(["a", "b", "c"])
    assert [core.position(t) for t in ("a", "b", "c", "x")] == [0, 1, 2, None]
    core.defer_stop("b", -15)
    core.discard("b")
    assert "b" not in core and not core.busy() and core.position("c") == 1


# -- with a real core, dispatcher and SQLite store -----------------------------------------
def run_cluster(tmp_path, window, scenario):
    """``scenario(core, store, backlog, dispatcher, link)`` against a fresh manager state."""
    async def main() -> None:
        db = DbThread()
        store = Store(sqlite_url(str(tmp_path)))
        await db(store.migrate)
        try:
            await scenario(store, db)
        finally:
            store.close()
            db.shutdown()
    asyncio.run(main())


async def start(store, db, window):
    """What Manager.start does: load the window and the backlog's ids, start the rounds."""
    core = SchedulerCore(lost_grace=2)
    link = FakeLink(type("Saved", (), {"batches": []})())   # the link only counts saved batches
    dispatcher = Dispatcher(core, store, db, link, lambda message: (_ for _ in ()).throw(AssertionError(message)))
    backlog = Backlog(core, store, db, window)
    dispatcher.backlog = backlog
    loaded, backlogged = await db(store.load_start, window)
    for row, actions in loaded:
        task = TaskState.from_row(row)
        for action_row in actions:
            action = ActionState.from_row(action_row)
            task.actions[action.name] = action
        core.load(task)
    backlog.load(backlogged)
    dispatcher.start()
    return core, backlog, dispatcher, link


def stage_of(store, task_id):
    row = store.get_task(task_id)
    return (row["stage"], row["status"]) if row else None


async def settle(dispatcher):
    for _ in range(50):   # rounds the backlog asks for run by themselves; let them
        await asyncio.sleep(0.01)
        if not dispatcher.backlog.has_work() and not dispatcher._wake.is_set():
            return


def test_backlog_admits_oldest_first_stops_and_deletes_and_survives_a_restart(tmp_path):
    ids = [f"task-{i:03d}" for i in range(40)]

    async def scenario(store, db) -> None:
        core, backlog, dispatcher, link = await start(store, db, window=5)
        for task_id in ids:   # no node: everything waits
            await dispatcher.submit(lambda t=task_id: core.add_task(make_task(t, ("a", []), ("b", ["a"]))))
        # the window holds the oldest five in full; the store holds all forty
        assert list(core.tasks) == ids[:5] and len(backlog.state) == 35
        assert all(stage_of(store, t) == ("pending", None) for t in ids)
        assert core.unfinished("task-020") and not core.unfinished("task-999")

        # a stop of a backlogged task is a committed change: finished/kill when the call returns
        backlog.want("task-010")
        await dispatcher.submit(lambda: core.stop_task("task-010", -15))
        assert stage_of(store, "task-010") == ("finished", "kill")
        assert "task-010" not in core.tasks and "task-010" not in backlog
        # a delete: gone from the backlog, never admitted
        await dispatcher.submit(lambda: core.remove_task("task-011"))
        await db(store.delete_task, "task-011")
        await dispatcher.stop()

        # a restart (every round above committed): the same split, read from the store
        core, backlog, dispatcher, link = await start(store, db, window=5)
        assert list(core.tasks) == ids[:5] and list(backlog.state._ids) == [
            t for t in ids[5:] if t not in ("task-010", "task-011")]
        # a node with two slots: dispatches in creation order, the window refills as tasks end
        await dispatcher.submit(lambda: node_up(core, "n1", 2, [], True))
        started = []
        for _ in range(200):
            await settle(dispatcher)
            pending = [m for _, m, _ in link.runs if m.attempt_id not in {a for a in started}]
            if not pending:
                break
            for message in pending:
                started.append(message.attempt_id)
                dispatch = type("D", (), {"message": message, "node_id": "n1"})
                await dispatcher.submit(lambda d=dispatch: finish(core, d))
            # never more than the window (two slots: 4 per slot) plus the two running
            assert len(core.tasks) <= backlog.state.target(2) + 2
        await settle(dispatcher)
        firsts = [m.task_id for _, m, _ in link.runs if m.name == "a"]
        expected = [t for t in ids if t not in ("task-010", "task-011")]
        assert firsts == expected   # FIFO across the window and the backlog
        assert all(stage_of(store, t) == ("finished", "success") for t in expected)
        assert len(backlog.state) == 0 and core.tasks == {}
        # with the backlog empty, a new task goes straight to memory again
        await dispatcher.submit(lambda: core.add_task(make_task("late", ("a", []))))
        assert link.runs[-1][1].task_id == "late"
        await dispatcher.stop()

    run_cluster(tmp_path, 5, scenario)


def test_tasks_for_an_absent_label_do_not_hold_back_newer_tasks(tmp_path):
    """Tasks whose targets no live node offers, many windows of them: newer tasks that any
    node can run are still read and run, memory stays within the bound (the rest are
    parked in the store), and once a node with the label joins, every one of them runs."""
    from litepipeline.common.targets import parse_target
    from litepipeline.manager.placement import NodeFacts
    gpu = {"target": parse_target({"labels": {"gpu": "a100"}})}
    ids = [f"gpu-{i:02d}" for i in range(UNPLACED_FACTOR * 4)]   # as many as are held (window 4, 1 slot)

    async def scenario(store, db) -> None:
        core, backlog, dispatcher, link = await start(store, db, window=4)
        await dispatcher.submit(lambda: node_up(core, "n1", 1, [], True))   # one slot, no labels
        target = backlog.state.target(1)
        for task_id in ids:
            await dispatcher.submit(lambda t=task_id: core.add_task(make_task(t, ("train", [], gpu))))
        await dispatcher.submit(lambda: core.add_task(make_task("late", ("a", []))))
        await settle(dispatcher)
        assert [m.task_id for _, m, _ in link.runs] == ["late"]   # admitted past them, and run
        dispatch = type("D", (), {"message": link.runs[0][1], "node_id": "n1"})
        await dispatcher.submit(lambda: finish(core, dispatch))
        await settle(dispatcher)
        assert core.unplaced == len(ids) and list(core.tasks) == ids and not backlog.state.parked_count()
        # past the bound the newest are parked: memory stays bounded, and a newer task runs
        more = [f"gpu-{i:02d}" for i in range(len(ids), 40)]
        for task_id in more:
            await dispatcher.submit(lambda t=task_id: core.add_task(make_task(t, ("train", [], gpu))))
        await dispatcher.submit(lambda: core.add_task(make_task("later", ("a", []))))
        await settle(dispatcher)
        assert [m.task_id for _, m, _ in link.runs] == ["late", "later"]
        dispatch = type("D", (), {"message": link.runs[1][1], "node_id": "n1"})
        await dispatcher.submit(lambda: finish(core, dispatch))
        assert len(core.tasks) <= target * (1 + UNPLACED_FACTOR)
        parked = [t for t in ids + more if backlog.state.parked(t)]
        assert len(parked) == 40 - UNPLACED_FACTOR * target and set(core.tasks) == set(ids + more) - set(parked)
        assert all(stage_of(store, t) == ("pending", None) for t in parked)   # as stored
        assert not backlog.state.to_read(pending_in_memory=0, slots=1)       # never read while parked
        # newer ones of the class join the parked (memory holds the same tasks)
        held = set(core.tasks)
        extra = [f"gpu-{i:02d}" for i in range(40, 45)]
        for task_id in extra:
            await dispatcher.submit(lambda t=task_id: core.add_task(make_task(t, ("train", [], gpu))))
        await settle(dispatcher)
        assert all(backlog.state.parked(t) for t in extra) and set(core.tasks) == held
        more += extra
        # a node with the label joins: the ones in memory go first, then the parked come back
        gpu_node = NodeFacts.of({"gpu": "a100"}, None, None)
        await dispatcher.submit(lambda: core.node_up("n2", [], True, 2, False, gpu_node))
        await settle(dispatcher)
        ran = 2
        for _ in range(60):   # each pass finishes what was dispatched since the last
            if ran == len(link.runs) and not core.tasks:
                break
            for _, message, _ in link.runs[ran:]:
                d = type("D", (), {"message": message, "node_id": "n2"})
                await dispatcher.submit(lambda d=d: finish(core, d))
                ran += 1
            await settle(dispatcher)
        trained = [m.task_id for _, m, _ in link.runs if m.task_id.startswith("gpu-")]
        assert sorted(trained) == sorted(ids + more) and len(backlog.state) == 0
        assert all(stage_of(store, t) == ("finished", "success") for t in ids + more)
        await dispatcher.stop()

    run_cluster(tmp_path, 4, scenario)


def test_a_stop_decided_inside_a_round_is_applied_in_the_next(tmp_path):
    async def scenario(store, db) -> None:
        core, backlog, dispatcher, link = await start(store, db, window=1)
        for task_id in ("w1", "w2", "w3"):
            await dispatcher.submit(lambda t=task_id: core.add_task(make_task(t, ("a", []))))
        assert "w3" in backlog
        # as a work or a service does it: core.stop_task inside a round, no want() before
        assert await dispatcher.submit(lambda: core.stop_task("w3", -9)) == []
        await settle(dispatcher)
        assert stage_of(store, "w3") == ("finished", "kill")
        assert not core.unfinished("w3") and "w3" not in core.tasks
        assert "w2" in backlog and stage_of(store, "w2") == ("pending", None)
        await dispatcher.stop()

    run_cluster(tmp_path, 1, scenario)


# -- what a round writes for a backlogged task ---------------------------------------------
def test_a_backlogged_task_is_written_whole_in_its_round_and_not_held():
    core = SchedulerCore()
    Backlog(core, store=None, db=None, window=1)
    core.add_task(make_task("kept", ("a", [])))
    core.add_task(make_task("queued", ("a", []), ("b", ["a"])))
    batch = core.take_batch()
    # both tasks' rows are in the round's one transaction: a crash after it loses neither
    assert [t.task_id for t in batch.new_tasks] == ["kept", "queued"]
    assert sorted((a.task_id, a.name) for a in batch.new_actions) == [
        ("kept", "a"), ("queued", "a"), ("queued", "b")]
    assert list(core.tasks) == ["kept"] and "queued" in core.backlog
    # a stop inside a round writes nothing yet: it is applied once the task is admitted
    assert core.stop_task("queued", -15) == [] and not core.take_batch()
    assert core.unfinished("queued")


def test_a_backlogged_task_the_store_refuses_is_failed_like_the_others():
    class RefusingStore:
        inline_writes = True

        def __init__(self) -> None:
            self.saved: list = []

        def save(self, batch) -> None:
            if any("\x00" in t.task_name for t in batch.new_tasks):
                raise ValueError("A string literal cannot contain NUL (0x00) characters.")
            self.saved.append(batch)

    async def main() -> None:
        core = SchedulerCore()
        store = RefusingStore()
        dispatcher = Dispatcher(core, store, None, FakeLink(type("Saved", (), {"batches": []})()),
                                lambda message: None)
        dispatcher.backlog = Backlog(core, store, None, window=1)
        dispatcher.start()
        await dispatcher.submit(lambda: core.add_task(make_task("t1", ("a", []))))
        bad = make_task("t2", ("a", []))
        bad.task_name = "bad\x00name"
        await dispatcher.submit(lambda: core.add_task(bad))
        await dispatcher.stop()
        (batch,) = [b for b in store.saved if any(t.task_id == "t2" for t in b.new_tasks)]
        (update,) = [t for t in batch.tasks.values() if t.task_id == "t2"]
        assert (update.stage, update.status, update.task_name) == ("finished", "fail", "badname")
        assert "t2" not in core.backlog and "t2" not in core.tasks

    asyncio.run(main())


def test_a_stopping_works_backlogged_task_is_stopped_again_after_a_restart():
    from types import SimpleNamespace

    from litepipeline.manager.workservice import WorkService
    from tests.unit.test_workflows import T0, config, make_work

    def manager_parts(window):
        core = SchedulerCore(clock_fn=lambda: T0)   # no node: tasks stay pending
        backlog = Backlog(core, store=None, db=None, window=window)
        return core, backlog, WorkService(core, SimpleNamespace(controllers=[]), None, None, None, None, 1 << 20)

    core, backlog, works = manager_parts(window=1)
    work = make_work(config(("a", "A", []), ("b", "B", [])))
    works.create_in_round(work)
    batch = core.take_batch()
    first, second = (t.task_id for t in batch.new_tasks)
    assert list(core.tasks) == [first] and second in backlog
    rows = {t.task_id: (t.to_row(), [a.to_row() for a in t.actions.values()]) for t in batch.new_tasks}
    # the work's stop is committed in this round; its backlogged task's stop waits for the next
    works._apply(works.wcore.stop(work.work_id, -15))
    works.step()
    assert work.stage == "stopping" and second in backlog
    # a crash here; the restarted manager finds the work stopping and the task pending
    core, backlog, works = manager_parts(window=1)
    backlog.load([second])
    works.wcore.load(work)
    assert works.restop() == [] and backlog.state.busy()
    backlog._asked, backlog._read = [second], [rows[second]]   # what prepare() reads in the next round
    backlog.apply()
    works.step()
    batch = core.take_batch()
    assert batch.tasks[second].status == "kill" and work.stage == "finished" and work.status == "kill"
    assert not core.unfinished(second)
