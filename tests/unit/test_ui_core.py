"""The web interface's pure parts: sessions, the push channel, the DAG layout, the views."""
from __future__ import annotations

import asyncio
import json

import pytest

from litepipeline.common.errors import ServiceUnavailable
from litepipeline.manager.scheduler import SchedulerCore
from litepipeline.manager.ui.auth import Sessions
from litepipeline.manager.ui.layout import NODE_H, NODE_W, assign_layers, layout
from litepipeline.manager.ui.push import Hub, Subscriber, list_event, task_events
from litepipeline.manager.ui.states import action_state, task_state
from litepipeline.manager.ui.views import task_page, upstream
from tests.unit.test_scheduler import T0, Clock, finish, make_task, node_up

# -- sessions ---------------------------------------------------------------------------------

class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_login_needs_the_token_and_gives_random_ids():
    sessions = Sessions("s3cret", clock=Ticks())
    assert sessions.required
    assert sessions.login("wrong") is None and sessions.login("") is None
    one, two = sessions.login("s3cret"), sessions.login(" s3cret\n")
    assert one and two and one.session_id != two.session_id and one.csrf != two.csrf
    assert "s3cret" not in one.session_id + one.csrf
    assert len(sessions) == 2


def test_without_a_token_there_is_no_login():
    sessions = Sessions(None)
    assert not sessions.required
    assert sessions.login("anything") is None


def test_reads_need_the_session_changes_need_its_csrf_value_too():
    sessions = Sessions("tok", clock=Ticks())
    s = sessions.login("tok")
    assert sessions.authorizes("GET", s.session_id, None)
    assert not sessions.authorizes("GET", "forged", None)
    assert not sessions.authorizes("GET", None, s.csrf)
    for method in ("POST", "PUT", "DELETE"):
        assert not sessions.authorizes(method, s.session_id, None)
        assert not sessions.authorizes(method, s.session_id, "wrong")
        other = sessions.login("tok")
        assert not sessions.authorizes(method, s.session_id, other.csrf)   # another session's value
        assert sessions.authorizes(method, s.session_id, s.csrf)


def test_sessions_expire_when_idle_and_at_their_maximum_age():
    ticks = Ticks()
    sessions = Sessions("tok", clock=ticks, idle=100, max_age=250)
    s = sessions.login("tok")
    ticks.now += 90
    assert sessions.get(s.session_id)        # used: idle time restarts
    ticks.now += 90
    assert sessions.get(s.session_id)
    ticks.now += 101
    assert sessions.get(s.session_id) is None and len(sessions) == 0
    s = sessions.login("tok")
    for _ in range(3):
        ticks.now += 90
        result = sessions.get(s.session_id)
    assert result is None                     # 270 s old, though never idle for 100 s


def test_logout_and_the_session_limit():
    sessions = Sessions("tok", clock=Ticks(), limit=3)
    made = [sessions.login("tok") for _ in range(5)]
    assert len(sessions) == 3
    assert sessions.get(made[0].session_id) is None and sessions.get(made[4].session_id)
    assert sessions.logout(made[4].session_id)
    assert not sessions.authorizes("GET", made[4].session_id, None)
    assert not sessions.logout(made[4].session_id)


# -- states -----------------------------------------------------------------------------------

@pytest.mark.parametrize("stage, status, retry_at, ended, word", [
    ("pending", None, None, False, "waiting"),
    ("pending", None, T0, False, "retrying"),
    ("pending", None, None, True, "not-run"),
    ("running", None, None, False, "running"),
    ("stopping", None, None, False, "stopping"),
    ("finished", "success", None, True, "success"),
    ("finished", "fail", None, True, "failed"),
    ("finished", "kill", None, True, "killed"),
])
def test_action_state_words(stage, status, retry_at, ended, word):
    assert action_state(stage, status, retry_at, ended) == word


def test_task_state_words():
    assert [task_state(*x) for x in [("pending", None), ("running", None), ("finished", "fail")]] == \
        ["waiting", "running", "failed"]


# -- push -------------------------------------------------------------------------------------

@pytest.fixture
def core():
    core = SchedulerCore(clock_fn=Clock(), recovery_timeout=10, lost_grace=2)
    node_up(core, "n1", 4, [], True)
    core.take_batch()
    return core


def test_task_events_carry_what_the_round_changed(core):
    core.add_task(make_task("t1", ("first", []), ("third", ["first"])))
    (d1,) = core.schedule()
    events = task_events(core.take_batch())
    assert list(events) == ["t1"]
    states = {a["name"]: (a["state"], a["new"]) for a in events["t1"]["actions"]}
    assert states == {"first": ("running", True), "third": ("waiting", True)}
    assert events["t1"]["task"]["state"] == "running"
    assert [(a["name"], a["attempt"], a["node_id"]) for a in events["t1"]["attempts"]] == [("first", 1, "n1")]

    gen = [{"name": "second_0", "main": "x", "to_action": "third"}]
    finish(core, d1, actions=gen)
    core.schedule()
    events = task_events(core.take_batch())["t1"]
    by_name = {a["name"]: a for a in events["actions"]}
    assert by_name["first"]["state"] == "success" and not by_name["first"]["new"]
    assert by_name["second_0"]["new"] and by_name["second_0"]["parent"] == "first"
    assert by_name["second_0"]["to_action"] == "third"
    json.dumps(events)   # plain JSON


def test_task_events_only_for_the_tasks_watched(core):
    core.add_task(make_task("t1", ("a", [])))
    core.add_task(make_task("t2", ("a", [])))
    core.schedule()
    batch = core.take_batch()
    assert set(task_events(batch)) == {"t1", "t2"}
    assert set(task_events(batch, {"t2"})) == {"t2"}
    assert task_events(batch, set()) == {}


def test_list_event_names_created_tasks(core):
    core.add_task(make_task("t1", ("a", [])))
    event = list_event(core.take_batch())
    assert event["created"] == ["t1"] and event["tasks"][0]["task_id"] == "t1"
    assert list_event(core.take_batch()) is None


def test_hub_routes_events_by_topic_and_task(core):
    async def run():
        hub = Hub()
        watcher, other, lister, cluster = (hub.subscribe("task", "t1"), hub.subscribe("task", "t2"),
                                           hub.subscribe("tasks"), hub.subscribe("cluster"))
        core.add_task(make_task("t1", ("a", [])))
        core.schedule()
        hub.publish(core.take_batch())
        frames = watcher.take()
        assert len(frames) == 1 and frames[0].startswith("data: ") and frames[0].endswith("\n\n")
        assert json.loads(frames[0][6:])["task_id"] == "t1"
        assert other.take() == []
        assert json.loads(lister.take()[0][6:])["created"] == ["t1"]
        assert cluster.take() == ['data: {"slots": true}\n\n']   # an attempt started
        hub.unsubscribe(watcher)
        assert watcher.closed and len(hub) == 3
        hub.close()
        assert len(hub) == 0 and lister.closed

    asyncio.run(run())


def test_node_changes_reach_the_cluster_page_only():
    async def run():
        hub = Hub()
        cluster, lister = hub.subscribe("cluster"), hub.subscribe("tasks")
        hub.nodes_changed()
        assert cluster.take() == ['data: {"nodes": true}\n\n'] and lister.take() == []

    asyncio.run(run())


def test_hub_does_nothing_without_subscribers(core):
    hub = Hub()
    core.add_task(make_task("t1", ("a", [])))
    hub.publish(core.take_batch())
    assert hub.published == 0


def test_a_slow_subscriber_is_told_to_resync_instead_of_growing():
    async def run():
        sub = Subscriber("tasks", limit=3)
        for i in range(10):
            sub.offer(json.dumps({"i": i}))   # never blocks, whatever the reader does
        assert len(sub.queue) == 0 and sub.overflowed
        assert sub.take() == ["event: resync\ndata: {}\n\n"]
        sub.offer('{"i": 11}')
        assert sub.take() == ['data: {"i": 11}\n\n']
        await sub.wait(0.01)   # nothing waiting: returns after the timeout
        sub.close()
        await sub.wait(10)     # closed: returns at once
        sub.offer("{}")
        assert sub.take() == []

    asyncio.run(run())


def test_subscriber_wakes_when_an_event_arrives():
    async def run():
        sub = Subscriber("cluster")
        waiter = asyncio.ensure_future(sub.wait(30))
        await asyncio.sleep(0)
        assert not waiter.done()
        sub.offer("{}")
        await asyncio.wait_for(waiter, 5)

    asyncio.run(run())


def test_the_number_of_streams_is_bounded():
    async def run():
        hub = Hub(max_subscribers=2)
        first = hub.subscribe("tasks")
        hub.subscribe("cluster")
        with pytest.raises(ServiceUnavailable):
            hub.subscribe("task", "t1")
        hub.unsubscribe(first)
        hub.subscribe("task", "t1")

    asyncio.run(run())


def test_unknown_topic_is_refused():
    with pytest.raises(ValueError):
        Subscriber("secrets")


# -- layout -----------------------------------------------------------------------------------

def test_layers_follow_the_longest_path():
    graph = [("a", []), ("b", ["a"]), ("c", ["a", "b"]), ("d", []), ("ev", [])]
    assert assign_layers(graph, after_all=["ev"]) == {"a": 0, "b": 1, "c": 2, "d": 0, "ev": 3}


def test_layers_ignore_unknown_names_and_survive_a_cycle():
    assert assign_layers([("a", ["ghost"]), ("b", ["a"])]) == {"a": 0, "b": 1}
    layers = assign_layers([("a", []), ("x", ["y"]), ("y", ["x"])])
    assert layers["a"] == 0 and layers["x"] == layers["y"] == 1


def test_layout_places_boxes_left_to_right_without_overlap():
    graph = [("first", []), ("second", []), ("third", ["first", "second"]), ("late", ["first", "third"])]
    drawn = layout(graph).to_json()
    nodes = drawn["nodes"]
    assert nodes["first"]["x"] == nodes["second"]["x"] < nodes["third"]["x"] < nodes["late"]["x"]
    boxes = [(n["x"], n["y"]) for n in nodes.values()]
    for i, (x1, y1) in enumerate(boxes):
        for x2, y2 in boxes[i + 1:]:
            assert abs(x1 - x2) >= NODE_W or abs(y1 - y2) >= NODE_H   # no two boxes overlap
    for n in nodes.values():
        assert 0 <= n["x"] and n["x"] + NODE_W <= drawn["width"] and n["y"] + NODE_H <= drawn["height"]
    edges = {(e["from"], e["to"]): e["points"] for e in drawn["edges"]}
    assert set(edges) == {("first", "third"), ("second", "third"), ("first", "late"), ("third", "late")}
    # each edge leaves its source's right side and enters its target's left side
    for (src, dst), points in edges.items():
        assert points[0][0] == nodes[src]["x"] + NODE_W and points[-1][0] == nodes[dst]["x"]
    # first -> late skips a column: it bends through it (two points across that column)
    assert len(edges[("first", "late")]) == 4 and len(edges[("third", "late")]) == 2


def test_layout_top_to_bottom_for_narrow_screens():
    drawn = layout([("a", []), ("b", ["a"]), ("c", ["a"])], down=True).to_json()
    n = drawn["nodes"]
    assert n["a"]["y"] < n["b"]["y"] == n["c"]["y"] and n["b"]["x"] != n["c"]["x"]
    assert drawn["width"] < 420   # two boxes side by side fit a phone
    for e in drawn["edges"]:
        assert e["points"][0][1] == n[e["from"]]["y"] + NODE_H and e["points"][-1][1] == n[e["to"]]["y"]


def test_barycenter_ordering_removes_a_crossing():
    # given in a crossing order: a->y, b->x; the sweep puts x beside b and y beside a
    drawn = layout([("a", []), ("b", []), ("x", ["b"]), ("y", ["a"])]).to_json()
    n = drawn["nodes"]
    assert (n["a"]["y"] < n["b"]["y"]) == (n["y"]["y"] < n["x"]["y"])


def test_edges_are_drawn_straight_past_the_bend_budget(monkeypatch):
    import litepipeline.manager.ui.layout as module
    graph = [("a", []), ("b", ["a"]), ("c", ["b"]), ("d", ["c", "a"])]
    assert len({(e["from"], e["to"]): e for e in layout(graph).edges}[("a", "d")]["points"]) == 6   # 2 bends
    monkeypatch.setattr(module, "MAX_BENDS", 1)
    assert len({(e["from"], e["to"]): e for e in layout(graph).edges}[("a", "d")]["points"]) == 2


def test_layout_of_many_generated_actions():
    graph = [("first", [])] + [(f"g{i:03}", ["first"]) for i in range(500)] + \
        [("third", [f"g{i:03}" for i in range(500)])]
    drawn = layout(graph).to_json()
    assert len(drawn["nodes"]) == 502 and len(drawn["edges"]) == 1000


# -- views ------------------------------------------------------------------------------------

def _action(name, condition=(), stage="finished", status="success", **extra):
    row = {"name": name, "condition": list(condition), "kind": "dag", "parent": None, "to_action": None,
           "main": "x", "stage": stage, "status": status, "retry_at": None, "attempt": 1, "retries": 0,
           "node_id": "n1", "start_at": T0, "end_at": T0, "returncode": 0, "message": None}
    row.update(extra)
    return row


def test_upstream_adds_generated_actions_and_their_parent():
    actions = [_action("first"), _action("third", ["first"]),
               _action("second_0", parent="first", to_action="third")]
    assert upstream(actions) == {"first": [], "third": ["first", "second_0"], "second_0": ["first"]}


def test_task_page_draws_states_and_marks_generated_edges():
    row = {"id": 1, "task_id": "t1", "task_name": "n", "application_id": "app", "app_sha1": "s",
           "create_at": T0, "start_at": T0, "end_at": T0, "stage": "finished", "status": "fail", "message": "x",
           "input_data": {}}
    actions = [_action("first"), _action("gen", parent="first", to_action="third", status="fail"),
               _action("third", ["first"], stage="pending", status=None, node_id=None),
               _action("on_fail", kind="event")]
    attempts = [{"attempt_id": "a1", "name": "first", "attempt": 1, "node_id": "n1", "dispatched_at": T0,
                 "start_at": T0, "end_at": T0, "status": "success", "returncode": 0, "message": None}]
    page = task_page(row, actions, attempts, {"n1": "127.0.0.1:9"}.get)
    states = {a["name"]: a["state"] for a in page["actions"]}
    assert states == {"first": "success", "gen": "failed", "third": "not-run", "on_fail": "success"}
    assert page["task"]["state"] == "failed"
    assert page["attempts"][0]["node"] == "127.0.0.1:9"
    edges = {(e["from"], e["to"]): e["generated"] for e in page["layout"]["edges"]}
    assert edges == {("first", "third"): False, ("gen", "third"): False, ("first", "gen"): True}
    layers = {k: v["layer"] for k, v in page["layout"]["nodes"].items()}
    assert layers["on_fail"] == max(layers.values())   # event actions come last
    json.dumps(page)
