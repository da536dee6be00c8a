"""Schedules and services end to end: real manager and node processes, driven over HTTP
and the CLI, with requests in 0.1.5's shapes too.

Schedules read a clock the manager runs 60 times faster for tests (the test-only
``test_clock_speed``/``test_clock_epoch`` settings): an every-minute schedule fires every
real second, and a manager stopped for 3 s misses about 3 fires. Every assertion is on
what was recorded (fires, tasks), never on how fast.
"""
from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from tests.e2e.harness import LiteCluster, wait_for
from tests.fixtures import dag, make_app

SPEED = 60
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "..", "examples", "service", "heartbeat.py"), encoding="utf-8") as _fp:
    HEARTBEAT = _fp.read()
STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(1)\n"


@pytest.fixture
def fast(tmp_path):
    """A manager whose schedules' clock runs 60x (the epoch is kept across restarts)."""
    with LiteCluster(str(tmp_path), test_clock_speed=SPEED, test_clock_epoch=time.time(),
                     service_stop_timeout=1) as c:
        c.start_manager()
        yield c


def restart(cluster, kill: bool) -> None:
    if kill:
        cluster.manager.kill()
    else:
        cluster.manager.stop()
    cluster.manager.log.close()
    cluster.start_manager()


def fires(cluster, schedule_id: str) -> list:
    reply = cluster.api.call("GET", "/schedule/fires", params={"schedule_id": schedule_id})
    assert reply["result"] == "ok", reply
    return list(reversed(reply["fires"]))   # oldest first


def instants(fire_list: list) -> list:
    return [dt.datetime.fromisoformat(f["fire_at"]) for f in fire_list]


def minutes_between(times: list) -> list:
    return [round((b - a).total_seconds() / 60) for a, b in zip(times, times[1:])]


def wait_fires(cluster, schedule_id: str, count: int, timeout: float = 30) -> list:
    return wait_for(lambda: (lambda f: f if len(f) >= count else None)(fires(cluster, schedule_id)), timeout,
                    0.1, f"{count} fires of {schedule_id}")


def assert_one_task_per_fire(cluster, app_id: str, schedule_ids) -> None:
    """Every task of ``app_id`` came from one fire and every fire made one task. The
    schedules go on firing meanwhile: the tasks are listed first, so a fire that is newer
    than the listing may lack its task there, and only such fires."""
    made = [t["task_id"] for t in cluster.api.task_list(app_id=app_id)["tasks"]]
    targets = []
    for schedule_id in schedule_ids:
        mine = [f["target_id"] for f in fires(cluster, schedule_id)]   # oldest first
        listed = [t in made for t in mine]
        assert listed == sorted(listed, reverse=True), mine   # unlisted ones only at the end
        assert listed.count(False) <= 2, mine
        targets += mine
    assert len(set(made)) == len(made) and len(set(targets)) == len(targets)
    assert set(made) <= set(targets)


def create_schedule(cluster, app_id: str, **fields) -> str:
    body = {"schedule_name": "every-minute", "source": "application", "source_id": app_id,
            "cron": "* * * * *", "enable": True, "timezone": "UTC", **fields}
    reply = cluster.api.call("POST", "/schedule/create", json=body)
    assert reply["result"] == "ok", reply
    return reply["schedule_id"]


def test_schedule_every_minute_creates_one_task_per_minute(fast, tmp_path):
    fast.add_node(slots=2)
    app_id = fast.upload(make_app(str(tmp_path), dag(("only", []))))
    out = fast.cli("schedule", "create", "-n", "minutely", "-a", app_id, "-c", "* * * * *", "-i", '{"k": 7}',
                   "--timezone", "Asia/Tokyo", "-e", "true", check=True).stdout
    schedule_id = out.splitlines()[1].split("|")[1].strip()
    got = wait_fires(fast, schedule_id, 4)
    assert minutes_between(instants(got)) == [1] * (len(got) - 1)
    assert all(f["outcome"] == "created" for f in got)
    assert all(f["fire_at"].endswith("+09:00") and f["fire_at"][17:19] == "00" for f in got)
    # each fire is one task named after the schedule, with the schedule's input
    task = fast.wait_task(got[0]["target_id"])["task_info"]
    assert task["task_name"] == "minutely" and task["status"] == "success"
    assert task["result"]["only"]["result"]["data"]["input"]["k"] == 7
    tasks = fast.api.task_list(app_id=app_id)["tasks"]
    assert {f["target_id"] for f in got} <= {t["task_id"] for t in tasks}
    info = fast.cli_json("schedule", "info", "-s", schedule_id)["schedule_info"]
    nxt = [dt.datetime.fromisoformat(t) for t in info["next_fire_at"]]
    assert len(nxt) == 5 and minutes_between(nxt) == [1, 1, 1, 1]
    assert info["last_fire_at"] is not None and nxt[0] > dt.datetime.fromisoformat(info["last_fire_at"])
    # disabled: no more fires, no next fire times
    fast.cli("schedule", "update", "-s", schedule_id, "-e", "false", check=True)
    before = len(fires(fast, schedule_id))
    time.sleep(2.5)
    assert len(fires(fast, schedule_id)) <= before + 1   # at most one committed as the update landed
    assert fast.api.call("GET", "/schedule/info", params={"schedule_id": schedule_id})[
        "schedule_info"]["next_fire_at"] == []
    assert fast.cli("schedule", "delete", "-s", schedule_id).returncode == 0
    assert fast.api.call("GET", "/schedule/info", params={"schedule_id": schedule_id}).http_status == 404


@pytest.mark.slow
def test_catchup_policies_after_a_manager_stop(fast, tmp_path):
    app_id = fast.upload(make_app(str(tmp_path), dag(("only", []))))   # no node: tasks just wait
    ids = {policy: create_schedule(fast, app_id, catchup=policy, schedule_name=policy)
           for policy in ("skip", "latest", "all")}
    for schedule_id in ids.values():
        wait_fires(fast, schedule_id, 2)
    fast.manager.stop()
    time.sleep(4)    # about 4 minutes of the schedules' clock
    fast.manager.log.close()
    fast.start_manager()
    got = {}
    for policy, schedule_id in ids.items():
        before = len(fires(fast, schedule_id))
        wait_fires(fast, schedule_id, before + 2)
        got[policy] = set(instants(fires(fast, schedule_id)))
    start = max(min(times) for times in got.values())
    end = min(max(times) for times in got.values())
    window = {p: {t for t in times if start <= t <= end} for p, times in got.items()}
    # "all" has every minute; "latest" lacks the missed ones but the last; "skip" lacks them
    # all (but one that came due less than LATE_GRACE before the restart: late, not missed)
    everything = sorted(window["all"])
    assert minutes_between(everything) == [1] * (len(everything) - 1)
    missed_by_skip = window["all"] - window["skip"]
    missed_by_latest = window["all"] - window["latest"]
    assert window["skip"] <= window["latest"] <= window["all"]
    assert len(missed_by_skip) >= 2 and len(missed_by_latest) >= 1
    latest_caught_up = window["latest"] - window["skip"]
    assert len(latest_caught_up) <= 1 and all(t > max(missed_by_latest) for t in latest_caught_up)
    assert missed_by_latest == missed_by_skip - latest_caught_up
    assert_one_task_per_fire(fast, app_id, ids.values())


def test_no_fire_lost_or_repeated_across_manager_kill9(fast, tmp_path):
    app_id = fast.upload(make_app(str(tmp_path), dag(("only", []))))
    schedule_id = create_schedule(fast, app_id, catchup="all")
    for delay in (0.3, 0.75, 1.6):
        count = len(wait_fires(fast, schedule_id, 1))
        time.sleep(delay)     # kill at different moments relative to the fires
        restart(fast, kill=True)
        wait_fires(fast, schedule_id, count + 2)
    got = fires(fast, schedule_id)
    times = instants(got)
    assert minutes_between(times) == [1] * (len(times) - 1)     # none lost, none twice
    assert_one_task_per_fire(fast, app_id, [schedule_id])
    assert all(t["task_name"] == "every-minute" for t in fast.api.task_list(app_id=app_id)["tasks"])


def test_schedule_requests_in_0_1_5_shapes_and_bad_input(cluster, tmp_path):
    app_id = cluster.upload(make_app(str(tmp_path), dag(("only", []))))
    call = cluster.api.call
    # 0.1.5 client's schedule create: its fields, day_of_week 0-6 (Sunday 0), enable a boolean
    reply = call("POST", "/schedule/create", json={"schedule_name": "nightly", "input_data": {"a": 1},
                                                   "source": "application", "source_id": app_id, "minute": 30,
                                                   "hour": 2, "day_of_month": -1, "day_of_week": 0,
                                                   "enable": False})
    assert reply["result"] == "ok", reply
    schedule_id = reply["schedule_id"]
    info = call("GET", "/schedule/info", params={"schedule_id": schedule_id})["schedule_info"]
    assert info["cron"] == "30 2 * * 0" and info["enable"] is False and info["next_fire_at"] == []
    # its update: id in the query string too, input_data as a JSON string, enable a boolean
    reply = call("PUT", f"/schedule/update?schedule_id={schedule_id}",
                 json={"schedule_id": schedule_id, "input_data": '{"b": 2}', "hour": 4, "enable": True})
    assert reply["result"] == "ok" and reply["schedule_id"] == schedule_id
    info = call("GET", "/schedule/info", params={"schedule_id": schedule_id})["schedule_info"]
    assert info["cron"] == "30 4 * * 0" and info["input_data"] == {"b": 2} and info["enable"] is True
    assert len(info["next_fire_at"]) == 5
    assert all(dt.datetime.fromisoformat(t).weekday() == 6 for t in info["next_fire_at"])   # Sundays
    # its list filters: source_id, enable as a string, name with '*'
    listed = call("GET", "/schedule/list", params={"offset": 0, "limit": 0, "source_id": app_id,
                                                   "enable": "true", "name": "*igh*"})
    assert [s["schedule_id"] for s in listed["schedules"]] == [schedule_id] and listed["total"] == 1
    assert call("GET", "/schedule/list", params={"enable": "false"})["total"] == 0
    # bad input names the field and the value, and writes nothing
    base = {"schedule_name": "x", "source": "application", "source_id": app_id}
    for body, status, words in (
            ({**base, "cron": "61 * * * *"}, 400, ["'cron'", "61 * * * *"]),
            ({**base, "cron": "* * *"}, 400, ["'cron'", "* * *"]),
            ({**base, "cron": "0 0 * * *", "timezone": "Mars/Base"}, 400, ["'timezone'", "Mars/Base"]),
            ({**base, "minute": 60}, 400, ["'minute'", "60"]),
            ({**base, "day_of_week": 9}, 400, ["'day_of_week'", "9"]),
            ({**base, "catchup": "some"}, 400, ["'catchup'", "some"]),
            ({**base, "source_id": "0d50caed-760b-40a5-bcc7-dcdb46960675"}, 404, ["0d50caed"]),
            ({**base, "source": "workflow", "source_id": "0d50caed-760b-40a5-bcc7-dcdb46960675"}, 404,
             ["workflow"]),
    ):
        reply = call("POST", "/schedule/create", json=body)
        assert reply.http_status == status, (body, reply)
        assert all(w in reply["message"] for w in words), (body, reply)
    reply = call("PUT", f"/schedule/update?schedule_id={schedule_id}", json={"minute": 60})
    assert reply.http_status == 400 and "'minute'" in reply["message"]
    assert call("GET", "/schedule/list")["total"] == 1
    assert call("PUT", "/schedule/update?schedule_id=nope", json={"hour": 1}).http_status == 404
    assert cluster.cli("schedule", "create", "-n", "x", "-a", app_id, "-c", "bad cron").returncode == 1


def service_app(tmp_path, name: str = "svc.tar.gz", script: str = HEARTBEAT) -> str:
    config = {"actions": [{"name": "heartbeat", "condition": [], "main": "python3 heartbeat.py"}]}
    return make_app(str(tmp_path), config, files={"heartbeat.py": script}, name=name)


def service_info(cluster, service_id: str) -> dict:
    reply = cluster.api.call("GET", "/service/info", params={"service_id": service_id})
    assert reply["result"] == "ok", reply
    return reply["service_info"]


def lines(path: str) -> list:
    try:
        with open(path, encoding="utf-8") as fp:
            return fp.read().splitlines()
    except FileNotFoundError:
        return []


def test_service_restarted_with_backoff_after_it_exits(cluster, tmp_path):
    cluster.add_node(slots=2)
    app_id = cluster.upload(service_app(tmp_path))
    # 0.1.5's service create: no signal, no restart; input_data and enable as its CLI sends them
    reply = cluster.api.call("POST", "/service/create", json={"name": "flaky", "app_id": app_id,
                                                              "description": "", "input_data": {"beats": 1,
                                                                                                "exit": 3},
                                                              "enable": True})
    service_id = reply["service_id"]
    wait_for(lambda: service_info(cluster, service_id)["restarts"] >= 3, 40, 0.2, "three restarts")
    info = service_info(cluster, service_id)
    assert info["last_exit"] == "fail" or info["stage"] in ("pending", "running")
    tasks = sorted((t for t in cluster.api.task_list(app_id=app_id)["tasks"]), key=lambda t: t["create_at"])
    ended = [t for t in tasks if t["stage"] == "finished"]
    assert len(ended) >= 3 and all(t["status"] == "fail" and t["task_name"] == "flaky" for t in ended)
    # never two live tasks; each start waited at least its back-off (1 s, 2 s, 4 s ...) after the end
    assert sum(t["stage"] != "finished" for t in tasks) <= 1
    parse = dt.datetime.fromisoformat
    for n, (prev, nxt) in enumerate(zip(tasks, tasks[1:])):
        assert parse(nxt["create_at"]) >= parse(prev["end_at"]) + dt.timedelta(seconds=2 ** n) \
            - dt.timedelta(milliseconds=50), (n, prev, nxt)
    # on-failure: a clean exit is not restarted
    reply = cluster.api.call("POST", "/service/create", json={"name": "once", "app_id": app_id,
                                                              "input_data": '{"beats": 1}', "enable": "true",
                                                              "restart": "on-failure"})
    once = reply["service_id"]
    wait_for(lambda: service_info(cluster, once)["last_exit"] == "success", 20, 0.1, "clean exit")
    time.sleep(1.5)
    info = service_info(cluster, once)
    assert info["restarts"] == 0 and info["next_start_at"] is None and info["status"] == "success"
    listed = cluster.api.call("GET", "/service/list", params={"app_id": app_id, "enable": "true"})
    assert listed["total"] == 2


def test_service_disable_stops_it_and_sigkill_follows_an_ignored_signal(fast, tmp_path):
    fast.add_node(slots=2)
    app_id = fast.upload(service_app(tmp_path))
    beat_file = str(tmp_path / "beats.txt")
    out = fast.cli("service", "create", "-n", "hb", "-a", app_id, "-i", f'{{"file": "{beat_file}"}}', "-e", "true",
                   check=True).stdout
    service_id = out.splitlines()[1].split("|")[1].strip()
    wait_for(lambda: len(lines(beat_file)) >= 2, 30, 0.1, "heartbeats")
    # 0.1.5's disable: its update with the id in the query string, enable false, no signal
    reply = fast.api.call("PUT", f"/service/update?service_id={service_id}",
                          json={"service_id": service_id, "enable": False})
    assert reply["result"] == "ok", reply
    task_id = service_info(fast, service_id)["task_id"]
    task = fast.wait_task(task_id, 20)["task_info"]
    assert task["status"] == "kill"
    count = len(lines(beat_file))
    time.sleep(1.5)
    assert len(lines(beat_file)) <= count + 1    # a line being written as SIGTERM landed, at most
    info = service_info(fast, service_id)
    assert info["enable"] is False and info["last_exit"] == "kill" and info["next_start_at"] is None
    assert len(fast.api.task_list(app_id=app_id)["tasks"]) == 1
    # a service that ignores SIGTERM is killed after service_stop_timeout
    stubborn_app = fast.upload(service_app(tmp_path, "stubborn.tar.gz", STUBBORN), "stubborn")
    reply = fast.api.call("POST", "/service/create", json={"name": "stubborn", "app_id": stubborn_app,
                                                           "enable": True})
    stubborn = reply["service_id"]
    wait_for(lambda: service_info(fast, stubborn)["stage"] == "running", 30, 0.1, "stubborn running")
    assert fast.cli("service", "disable", "-s", stubborn).returncode == 0
    task = fast.wait_task(service_info(fast, stubborn)["task_id"], 30)["task_info"]
    assert task["status"] == "kill"
    # enable again: it starts at once
    assert fast.cli("service", "enable", "-s", stubborn).returncode == 0
    wait_for(lambda: service_info(fast, stubborn)["task_id"] != task["task_id"], 20, 0.1, "a new start")
    assert fast.cli("service", "delete", "-s", stubborn).returncode == 0
    assert fast.api.call("GET", "/service/info", params={"service_id": stubborn}).http_status == 404


def test_service_adopted_after_manager_kill9(cluster, tmp_path):
    # the node's lease (heartbeat_timeout) outlasts a manager restart on a loaded machine:
    # past it the node's reaper would end the action, as it must
    cluster.add_node(slots=2, heartbeat_timeout=20)
    app_id = cluster.upload(service_app(tmp_path))
    beat_file = str(tmp_path / "beats.txt")
    reply = cluster.api.call("POST", "/service/create", json={"name": "hb", "app_id": app_id,
                                                              "input_data": {"file": beat_file}, "enable": True})
    service_id = reply["service_id"]
    wait_for(lambda: len(lines(beat_file)) >= 2, 30, 0.1, "heartbeats")
    task_id = service_info(cluster, service_id)["task_id"]
    restart(cluster, kill=True)
    count = len(lines(beat_file))
    wait_for(lambda: len(lines(beat_file)) >= count + 3, 30, 0.1, "heartbeats after the restart")
    info = service_info(cluster, service_id)
    assert info["task_id"] == task_id and info["stage"] == "running" and info["restarts"] == 0
    assert [t["task_id"] for t in cluster.api.task_list(app_id=app_id)["tasks"]] == [task_id]
    pids = {line.split(" pid ")[1].split()[0] for line in lines(beat_file)}
    assert len(pids) == 1    # the same process all along: adopted, never started twice
    # delete stops it
    assert cluster.api.call("DELETE", "/service/delete", params={"service_id": service_id})["result"] == "ok"
    assert cluster.wait_task(task_id, 20)["task_info"]["status"] == "kill"


def test_a_dead_nodes_service_action_runs_on_another_node(cluster, tmp_path):
    first = cluster.add_node(slots=1)
    app_id = cluster.upload(service_app(tmp_path))
    beat_file = str(tmp_path / "beats.txt")
    reply = cluster.api.call("POST", "/service/create", json={"name": "hb", "app_id": app_id,
                                                              "input_data": {"file": beat_file}, "enable": True})
    service_id = reply["service_id"]
    wait_for(lambda: len(lines(beat_file)) >= 2, 30, 0.1, "heartbeats on the first node")
    task_id = service_info(cluster, service_id)["task_id"]
    cluster.add_node(slots=1)
    first.kill()     # its heartbeats stop; after heartbeat_timeout the manager re-queues the action
    pids = {line.split(" pid ")[1].split()[0] for line in lines(beat_file)}
    wait_for(lambda: {line.split(" pid ")[1].split()[0] for line in lines(beat_file)} - pids, 40, 0.2,
             "heartbeats from another process")
    info = service_info(cluster, service_id)
    assert info["task_id"] == task_id and info["stage"] == "running" and info["restarts"] == 0
    running = cluster.api.task_info(task_id)["task_running_info"]
    assert [r["node_id"] for r in running] != [] and all(r["attempt"] == 2 for r in running)


def test_overlap_skip_skips_fires_while_the_last_task_runs(fast, tmp_path):
    fast.add_node(slots=4)
    app_id = fast.upload(make_app(str(tmp_path), dag(("slow", []))))
    # each task runs about 2.5 minutes of the schedules' clock
    schedule_id = create_schedule(fast, app_id, overlap="skip", input_data={"_slow": {"sleep": 2.5}})
    got = wait_fires(fast, schedule_id, 7, timeout=40)
    assert minutes_between(instants(got)) == [1] * (len(got) - 1)
    created = [f for f in got if f["outcome"] == "created"]
    assert len(created) >= 2 and any(f["outcome"] == "skipped" for f in got)
    # a fire is created only when the task of the one before it had finished
    for earlier, later in zip(created, created[1:]):
        end = fast.api.task_info(earlier["target_id"])["task_info"]["end_at"]
        start = fast.api.task_info(later["target_id"])["task_info"]["create_at"]
        assert end is not None and dt.datetime.fromisoformat(end) <= dt.datetime.fromisoformat(start)
    tasks = fast.api.task_list(app_id=app_id)["tasks"]
    assert sorted(f["target_id"] for f in created) == sorted(t["task_id"] for t in tasks)


HOLD = ("import json, os, sys, time\n"
        "data = json.load(open(os.path.join(sys.argv[1], 'input.data')))\n"
        "while os.path.exists(data['hold']):\n"
        "    time.sleep(0.05)\n")


def work_info(cluster, work_id: str) -> dict:
    reply = cluster.api.call("GET", "/work/info", params={"work_id": work_id})
    assert reply["result"] == "ok", reply
    return reply["work_info"]


def test_workflow_schedule_fires_works_and_overlap_skip_waits_for_the_last_one(fast, tmp_path):
    """``source: "workflow"``: each fire is a work of the workflow, run to success; with
    ``overlap: skip`` no fire creates a work while the previous one is held unfinished."""
    fast.add_node(slots=4)
    app_id = fast.upload(make_app(str(tmp_path), {"actions": [{"name": "main", "main": "python3 hold.py"}]},
                                  files={"hold.py": HOLD}))
    reply = fast.api.call("POST", "/workflow/create", json={
        "name": "nightly", "description": "", "enable": True,
        "configuration": {"applications": [{"name": "only", "app_id": app_id, "condition": []}]}})
    assert reply["result"] == "ok", reply
    workflow_id = reply["workflow_id"]
    hold = tmp_path / "hold"
    hold.write_text("")
    schedule_id = create_schedule(fast, workflow_id, source="workflow", overlap="skip",
                                  input_data={"hold": str(hold)})
    first = wait_fires(fast, schedule_id, 1)[0]
    assert first["outcome"] == "created"
    held = work_info(fast, first["target_id"])
    assert (held["workflow_id"], held["name"], held["input_data"]) == (workflow_id, "every-minute", {"hold": str(hold)})
    got = wait_fires(fast, schedule_id, 4)
    assert [f["outcome"] for f in got[1:4]] == ["skipped"] * 3      # the held work is still running
    assert work_info(fast, first["target_id"])["stage"] != "finished"
    hold.unlink()
    assert wait_for(lambda: (lambda w: w if w["stage"] == "finished" else None)(
        work_info(fast, first["target_id"])), 30, 0.1, "the held work to finish")["status"] == "success"
    created = wait_for(lambda: (lambda c: c if len(c) >= 2 else None)(
        [f for f in fires(fast, schedule_id) if f["outcome"] == "created"]), 30, 0.1, "a second work")
    assert fast.api.call("PUT", "/schedule/update", json={"schedule_id": schedule_id, "enable": False})["result"] == "ok"
    second = wait_for(lambda: (lambda w: w if w["stage"] == "finished" else None)(
        work_info(fast, created[1]["target_id"])), 30, 0.1, "the second work to finish")
    assert second["status"] == "success" and second["workflow_id"] == workflow_id
    assert second["result"]["only"]["status"] == "success"
    # the second work was created only after the first had ended
    first_end = dt.datetime.fromisoformat(work_info(fast, first["target_id"])["end_at"])
    assert first_end <= dt.datetime.fromisoformat(second["create_at"])
    works = fast.api.call("GET", "/work/list", params={"workflow_id": workflow_id})
    assert sorted(w["work_id"] for w in works["works"]) == sorted(f["target_id"] for f in fires(fast, schedule_id)
                                                                  if f["outcome"] == "created")
