"""Placement in the pure core: node labels and facts, action targets, the wait reason."""
from __future__ import annotations

import pytest

from litepipeline.common.errors import InvalidParameters
from litepipeline.common.messages import Register
from litepipeline.common.targets import BadTarget, merge_targets, parse_target
from litepipeline.manager.placement import (FreeNodes, NodeFacts, apply_input_targets, input_targets, matches,
                                            unmatched)
from litepipeline.manager.scheduler import SchedulerCore
from litepipeline.manager.waiting import waiting_for
from tests.unit.test_scheduler import add, finish, make_task, names

GPU_NODE = "11111111-1111-4111-8111-111111111111"


def join(core, node_id, slots=1, labels=None, platform="x86_64", ip="10.0.0.1"):
    """A REGISTER carrying labels and platform, as the manager hands it to the core."""
    message = Register.parse({"http_port": 1, "action_slots": slots, "labels": labels or {},
                              "platform": platform})
    return core.node_up(node_id, message.running, True, slots, message.draining,
                        NodeFacts.of(message.labels, message.platform, ip))


@pytest.fixture
def core(clock):
    return SchedulerCore(clock_fn=clock, monotonic=clock.mono, recovery_timeout=10, lost_grace=2)


def targeted(name, target, condition=()):
    return (name, list(condition), {"target": parse_target(target)})


def why(core, clock, task_id):
    return waiting_for(core.tasks[task_id], core.nodes, clock(), clock.mono())


# -- the matcher ---------------------------------------------------------------------------------
def test_matches_labels_as_a_subset_and_every_given_key():
    facts = NodeFacts.of({"gpu": "a100", "zone": "b"}, "X86_64", "10.0.0.1")
    assert matches({"labels": {"gpu": "a100"}}, "n1", facts)
    assert matches({"labels": {"gpu": "a100", "zone": "b"}, "platform": "x86_64", "node_ip": "10.0.0.1"},
                   "n1", facts)
    assert not matches({"labels": {"gpu": "a100", "zone": "c"}}, "n1", facts)
    assert not matches({"labels": {"ssd": "yes"}}, "n1", facts)
    assert not matches({"platform": "aarch64"}, "n1", facts)
    assert not matches({"node_ip": "10.0.0.2"}, "n1", facts)
    assert matches({"node_id": "n1"}, "n1", facts) and not matches({"node_id": "n2"}, "n1", facts)
    assert not matches({"labels": {"gpu": "a100"}}, "n1", NodeFacts())


def test_free_nodes_index_by_label():
    class Node:
        def __init__(self, labels, platform="x86_64"):
            self.facts = NodeFacts.of(labels, platform, None)

    nodes = {f"n{i}": Node({"zone": "a" if i % 2 else "b", **({"gpu": "a100"} if i < 3 else {})})
             for i in range(100)}
    nodes["arm"] = Node({"gpu": "a100"}, "aarch64")
    free = {k: 1 for k in nodes if k != "n2"}   # n2 is full
    index = FreeNodes(free, nodes)
    assert index.allowed({"labels": {"gpu": "a100"}}) == ["n0", "n1", "arm"]
    assert index.allowed({"labels": {"gpu": "a100", "zone": "a"}}) == ["n1"]
    assert index.allowed({"labels": {"gpu": "a100"}, "platform": "aarch64"}) == ["arm"]
    assert index.allowed({"labels": {"gpu": "h100"}}) == []
    assert index.allowed({"node_id": "n7"}) == ["n7"] and index.allowed({"node_id": "n2"}) == []
    assert index.allowed({"node_id": "gone"}) == []
    assert len(index.allowed({"platform": "x86_64"})) == 99
    del free["n0"]   # filled up during the round
    assert index.allowed({"labels": {"gpu": "a100"}}) == ["n1", "arm"]


# -- the core ------------------------------------------------------------------------------------
def test_actions_go_only_to_nodes_whose_labels_they_name(core):
    join(core, "cpu", slots=4, labels={"zone": "b"})
    join(core, "gpu", slots=4, labels={"gpu": "a100", "zone": "b"})
    add(core, make_task("t1", targeted("train", {"labels": {"gpu": "a100"}}),
                        targeted("prep", {"labels": {"zone": "b"}}), ("any", [])))
    ds = core.schedule()
    where = {d.message.name: d.node_id for d in ds}
    assert where["train"] == "gpu"
    assert set(where) == {"train", "prep", "any"}
    for _ in range(3):   # many rounds: the targeted action never lands elsewhere
        add(core, make_task(f"g{_}", targeted("train", {"labels": {"gpu": "a100"}})))
    assert {d.node_id for d in core.schedule()} == {"gpu"}


def test_unmatched_action_stays_pending_and_others_still_run(core, clock):
    join(core, "n1", slots=2, labels={"zone": "b"})
    add(core, make_task("t1", targeted("train", {"labels": {"gpu": "a100"}}), ("after", ["train"])))
    add(core, make_task("t2", ("a", []), ("b", [])))   # created later: no head-of-line blocking
    ds = core.schedule()
    assert names(ds) == ["a", "b"]
    assert core.tasks["t1"].actions["train"].stage == "pending" and core.tasks["t1"].stage == "pending"
    for d in ds:
        finish(core, d)
    assert "t2" not in core.tasks
    assert core.schedule() == []
    assert why(core, clock, "t1") == ("action 'train' waits for a node with labels gpu=a100 "
                                      "(no registered node offers it; nodes: n1 {zone: b})")


def test_unplaced_counts_the_pending_tasks_no_free_node_can_take(core):
    join(core, "n1", slots=2, labels={"zone": "b"})
    add(core, make_task("t1", targeted("train", {"labels": {"gpu": "a100"}})))
    add(core, make_task("t2", targeted("train", {"labels": {"gpu": "a100"}})))
    add(core, make_task("t3", ("a", []), ("b", [])))
    ds = core.schedule()
    assert names(ds) == ["a", "b"] and core.unplaced == 0   # the slots filled: nothing is unplaceable
    for d in ds:
        finish(core, d)
    # a task that runs an action is not pending, whatever its other actions wait for
    add(core, make_task("t4", targeted("train", {"labels": {"gpu": "a100"}}), ("prep", [])))
    assert names(core.schedule()) == ["prep"]
    assert core.unplaced == 2                  # t1 and t2, with a slot still free
    join(core, "gpu", slots=1, labels={"gpu": "a100"})
    (d,) = core.schedule()
    assert d.node_id == "gpu"
    assert core.unplaced == 1   # waiting for the busy gpu node while n1's slot is free
    assert [t.task_id for t in core.unplaced_tasks] == ["t2"] and core.free_after == {"n1": 1}


def test_unload_drops_only_a_pending_task_with_nothing_unsaved(core):
    join(core, "n1", slots=1, labels={"zone": "b"})
    gpu = {"labels": {"gpu": "a100"}}
    add(core, make_task("t1", targeted("train", gpu), targeted("eval", gpu), ("after", ["train"])))
    add(core, make_task("t2", ("a", []), ("b", [])))
    (d,) = core.schedule()
    core.take_batch()
    assert core.ready_targets(core.tasks["t1"]) == [gpu]     # distinct, of the ready actions only
    assert core.unload("t2") is None                          # it runs an action
    core.add_task(make_task("t3", ("c", [])))
    assert core.unload("t1") is None                          # this round's changes are not written yet
    core.take_batch()
    task = core.unload("t1")
    assert task is not None and task.task_id == "t1" and "t1" not in core.tasks
    assert core.unload("t1") is None and core.unload("nope") is None
    finish(core, d)
    assert names(core.schedule()) == ["b"] and core.free_after == {}   # the slot filled: nothing left


def test_tasks_sharing_one_target_fill_its_nodes_and_the_rest_wait(core):
    """The actions of one application's tasks share their target object; a round places
    them while a node it allows has a slot, then passes the rest over."""
    target = parse_target({"labels": {"gpu": "a100"}})
    join(core, "gpu", slots=2, labels={"gpu": "a100"})
    join(core, "cpu", slots=2)
    for i in range(5):
        add(core, make_task(f"g{i}", ("train", [], {"target": target})))
    add(core, make_task("c", ("prep", [])))
    ds = core.schedule()
    assert [(d.message.task_id, d.node_id) for d in ds] == [("g0", "gpu"), ("g1", "gpu"), ("c", "cpu")]
    assert core.unplaced == 3
    finish(core, ds[0])
    (d,) = core.schedule()
    assert (d.message.task_id, d.node_id) == ("g2", "gpu")


def test_a_node_joining_later_with_the_labels_gets_it(core):
    join(core, "n1", labels={})
    add(core, make_task("t1", targeted("train", {"labels": {"gpu": "a100"}})))
    assert core.schedule() == []
    join(core, "n2", labels={"gpu": "a100"})
    (d,) = core.schedule()
    assert (d.node_id, d.message.name) == ("n2", "train")


def test_busy_matching_node_is_not_replaced_by_a_free_other(core, clock):
    join(core, "gpu", slots=1, labels={"gpu": "a100"})
    join(core, "cpu", slots=4)
    add(core, make_task("t1", targeted("one", {"labels": {"gpu": "a100"}}),
                        targeted("two", {"labels": {"gpu": "a100"}})))
    ds = core.schedule()
    assert [(d.node_id, d.message.name) for d in ds] == [("gpu", "one")]
    assert why(core, clock, "t1") == ("action 'two' waits for a free slot on the node(s) its target allows: "
                                      "gpu (1 slots, all busy)")
    finish(core, ds[0])
    (d,) = core.schedule()
    assert (d.node_id, d.message.name) == ("gpu", "two")
    add(core, make_task("t2", targeted("three", {"labels": {"gpu": "a100"}})))
    core.node_up("gpu", [], False, draining=True)   # its heartbeat: shutting down
    assert core.schedule() == []
    assert why(core, clock, "t2") == ("action 'three' waits: the node(s) its target allows are shutting down: "
                                      "gpu")


def test_target_env_keys_node_id_node_ip_platform(core, clock):
    join(core, GPU_NODE, slots=2, ip="10.0.0.7", platform="aarch64")
    join(core, "n2", ip="10.0.0.8", platform="x86_64")
    add(core, make_task("t1", targeted("by_id", {"node_id": GPU_NODE.upper()}),
                        targeted("by_ip", {"node_ip": "10.0.0.8"}),
                        targeted("by_platform", {"platform": "AArch64", "docker_support": False})))
    where = {d.message.name: d.node_id for d in core.schedule()}
    assert where == {"by_id": GPU_NODE, "by_ip": "n2", "by_platform": GPU_NODE}
    add(core, make_task("t2", targeted("nowhere", {"platform": "riscv64", "node_ip": "10.0.0.7"})))
    assert core.schedule() == []
    assert why(core, clock, "t2") == (f"action 'nowhere' waits for a node with platform riscv64 (no registered "
                                      f"node offers it; nodes: {GPU_NODE} {{}} (aarch64, 10.0.0.7), "
                                      f"n2 {{}} (x86_64, 10.0.0.8))")


def test_labels_offered_only_apart_are_named_together(core, clock):
    join(core, "n1", labels={"gpu": "a100"})
    join(core, "n2", labels={"zone": "b"})
    add(core, make_task("t1", targeted("train", {"labels": {"gpu": "a100", "zone": "b"}})))
    assert core.schedule() == []
    assert why(core, clock, "t1") == ("action 'train' waits for a node with labels gpu=a100, zone=b (no "
                                      "registered node matches all of them together; nodes: n1 {gpu: a100}, "
                                      "n2 {zone: b})")


def test_generated_and_event_actions_take_their_targets(core):
    join(core, "plain", slots=4)
    join(core, "gpu", slots=4, labels={"gpu": "a100"})
    task = make_task("t1", ("gen", []), targeted("notify", {"labels": {"gpu": "a100"}}), on_success="notify")
    task.actions["notify"].kind = "event"
    add(core, task)
    (d,) = core.schedule()
    finish(core, d, actions=[{"name": "child", "main": "run", "target": {"labels": {"gpu": "a100"}}}])
    (child,) = core.schedule()
    assert (child.message.name, child.node_id) == ("child", "gpu")
    assert core.tasks["t1"].actions["child"].target == {"labels": {"gpu": "a100"}}
    finish(core, child)
    (event,) = core.schedule()
    assert (event.message.name, event.node_id) == ("notify", "gpu")


def test_a_task_of_unmatched_actions_can_be_stopped(core):
    join(core, "n1")
    add(core, make_task("t1", targeted("train", {"labels": {"gpu": "a100"}})))
    assert core.schedule() == []
    assert core.stop_task("t1", -15) == []
    assert "t1" not in core.tasks
    assert core.take_batch().tasks["t1"].status == "kill"


# -- a task's input ------------------------------------------------------------------------------
def test_input_targets_merge_over_the_configured_ones_per_key():
    task = make_task("t1", targeted("train", {"labels": {"gpu": "a100", "zone": "b"}, "platform": "x86_64"}),
                     ("load", []))
    input_data = {"target_env": {"train": {"platform": "aarch64", "node_ip": "10.0.0.1"},
                                 "load": {"node_id": GPU_NODE}},
                  "target": {"train": {"labels": {"zone": "c"}, "node_ip": "10.0.0.2"}}}
    apply_input_targets(task.actions, input_data)
    assert task.actions["train"].target == {"labels": {"gpu": "a100", "zone": "c"}, "platform": "aarch64",
                                            "node_ip": "10.0.0.2"}
    assert task.actions["load"].target == {"node_id": GPU_NODE}


def test_input_targets_are_validated_with_clear_messages():
    with pytest.raises(InvalidParameters) as info:
        input_targets({"target_env": {"trian": {"platform": "x86_64"}}}, ["train", "load"])
    assert info.value.message == "input_data.target_env names unknown action 'trian' (did you mean train?)"
    with pytest.raises(InvalidParameters) as info:
        input_targets({"target": {"train": {"lables": {"gpu": "a100"}}}}, ["train"])
    assert info.value.message == "input_data.target.train has unknown key 'lables' (did you mean labels?)"
    with pytest.raises(InvalidParameters) as info:
        input_targets({"target_env": {"train": {"docker_support": True}}}, ["train"])
    assert "docker_support true cannot be met" in info.value.message
    with pytest.raises(InvalidParameters) as info:
        input_targets({"target_env": ["train"]}, ["train"])
    assert info.value.message == "input_data.target_env must be an object of action name -> target"
    # a non-object 'target' is the task's own data
    assert input_targets({"target": "production"}, ["train"]) == {}


# -- targets -------------------------------------------------------------------------------------
def test_parse_target_normalises_and_refuses():
    assert parse_target({"labels": {}, "docker_support": False, "node_ip": None}) is None
    assert parse_target({"platform": " X86_64 ", "labels": {"gpu": "a100"}}) == {
        "platform": "x86_64", "labels": {"gpu": "a100"}}
    for raw, message in [
        ("gpu", "target must be an object like {\"labels\": {\"gpu\": \"a100\"}}, got str"),
        ({"labels": {"gpu": 100}}, "target.labels.gpu must be a string, got int 100 (quote it in YAML/JSON)"),
        ({"labels": {"g p u": "x"}}, "target.labels name 'g p u' must be 1-63 letters, digits, '.', '_' or '-', "
                                     "starting with a letter or digit"),
        ({"node_id": "n1"}, "target.node_id must be a node id (a uuid), got 'n1'"),
        ({"node_ip": "10.0.0.1/8"}, "target.node_ip must be a host address, got '10.0.0.1/8'"),
        ({"docker_support": "yes"}, "target.docker_support must be true or false, got 'yes'"),
        ({"platfrom": "x86_64"}, "target has unknown key 'platfrom' (did you mean platform?)"),
    ]:
        with pytest.raises(BadTarget) as info:
            parse_target(raw)
        assert str(info.value) == message


def test_merge_targets():
    assert merge_targets(None, None) is None
    assert merge_targets({"platform": "x"}, None) == {"platform": "x"}
    assert merge_targets(None, {"platform": "x"}) == {"platform": "x"}
    assert merge_targets({"labels": {"a": "1"}, "platform": "x"}, {"labels": {"b": "2"}}) == {
        "labels": {"a": "1", "b": "2"}, "platform": "x"}


def test_unmatched_is_none_when_a_node_matches():
    nodes = {"n1": NodeFacts.of({"gpu": "a100"}, None, None)}
    assert unmatched("a", {"labels": {"gpu": "a100"}}, nodes) is None
    assert unmatched("a", {"labels": {"gpu": "h100"}, "node_id": GPU_NODE}, nodes) == (
        f"action 'a' waits for a node with labels gpu=h100; node_id {GPU_NODE} (no registered node offers them; "
        "nodes: n1 {gpu: a100})")
