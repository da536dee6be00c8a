"""``litepipeline`` given several managers: a fake standby and a fake leader answering per
the fail-over contract (in-process HTTP servers on free loopback ports)."""
from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler
from typing import Callable, Optional

import pytest

from litepipeline.client import api
from litepipeline.client.api import ClientError, ManagerClient
from litepipeline.client.cli import main
from litepipeline.client.managers import ManagerAddresses, none_leads, standby_answer
from tests.unit import test_cli
from tests.unit.test_cli import APP_ID, TASK_ID, TASK_INFO, parse_multipart

Hook = Callable[["FakeManager", BaseHTTPRequestHandler, str, str], bool]


class FakeManager(test_cli.FakeManager):
    """A manager that is a leader (answers ``routes``) or a standby (answers per the contract,
    naming ``leader``). ``hook`` may handle a request first (return True when it did)."""

    def __init__(self, role: str = "leader") -> None:
        self.role = role
        self.leader: Optional[dict] = None
        self.hook: Optional[Hook] = None
        super().__init__()

    def respond(self, handler: BaseHTTPRequestHandler, method: str, path: str) -> Optional[tuple[int, str, bytes]]:
        if self.hook is not None and self.hook(self, handler, method, path):
            return None
        if self.role == "standby":
            status, payload = self.standby_answer(path)
            return status, "application/json; charset=UTF-8", payload
        return super().respond(handler, method, path)

    def identity(self, epoch: int = 1) -> dict:
        """This manager as the contract's ``leader`` object."""
        return {"manager_id": f"m-{self.port}", "http_host": "127.0.0.1", "http_port": self.port,
                "tcp_host": "127.0.0.1", "tcp_port": 1, "address": self.address, "epoch": epoch}

    def standby_answer(self, path: str) -> tuple[int, bytes]:
        where = (f"the leader is at http://{self.leader['address']}" if self.leader
                 else "no manager leads right now; try again shortly")
        if path == "/":
            body = {"message": "LitePipeline manager service", "role": "standby", "leader": self.leader}
            return 200, json.dumps(body).encode()
        if path == "/cluster/info":
            body = {"result": "ok", "message": f"this manager is a standby; {where}", "role": "standby",
                    "leader": self.leader}
            return 200, json.dumps(body).encode()
        body = {"result": "NotLeader", "message": f"this manager is a standby; {where}", "leader": self.leader}
        return 503, json.dumps(body).encode()


@pytest.fixture
def fakes():
    made: list[FakeManager] = []

    def make(role: str = "leader") -> FakeManager:
        made.append(FakeManager(role))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


@pytest.fixture
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the pure part -----------------------------------------------------------------------


def test_addresses_parse_and_order():
    managers = ManagerAddresses("a:1, https://b:2/ ,http://c:3")
    assert [t.address for t in managers.targets] == ["a:1", "b:2", "c:3"]
    assert [t.base_url for t in managers.targets] == ["http://a:1", "https://b:2", "http://c:3"]
    assert managers.several
    managers.current = managers.targets[2]
    assert [t.address for t in managers.order()] == ["c:3", "a:1", "b:2"]
    assert not ManagerAddresses("a:1").several
    assert ManagerAddresses("a:1", tls=True).current.base_url == "https://a:1"


def test_leader_target_keeps_the_scheme_and_refuses_junk():
    managers = ManagerAddresses("https://a:1,b:2")
    via = managers.targets[0]
    assert managers.leader_target({"address": "c:3"}, via).base_url == "https://c:3"
    assert managers.leader_target({"address": ""}, via) is None
    assert managers.leader_target({"address": "c:3,d:4"}, via) is None
    assert managers.leader_target({"http_host": "c"}, via) is None


def test_standby_answer_recognised():
    not_leader = json.dumps({"result": "NotLeader", "message": "m", "leader": {"address": "x:1"}}).encode()
    assert standby_answer(503, "/app/list", not_leader) == {"leader": {"address": "x:1"}, "message": "m"}
    assert standby_answer(503, "/app/list", b"<html>busy</html>") is None   # a proxy's 503 is no standby
    assert standby_answer(200, "/app/list", not_leader) is None
    role = json.dumps({"result": "ok", "role": "standby", "leader": None}).encode()
    assert standby_answer(200, "/cluster/info", role)["leader"] is None
    assert standby_answer(200, "/cluster/info", json.dumps({"result": "ok", "role": "leader"}).encode()) is None
    assert none_leads([("a:1", "connection refused"), ("b:2", "standby")]) == (
        "no manager leads right now (tried a:1, b:2): a:1: connection refused; b:2: standby")


# -- against fake managers ----------------------------------------------------------------


def test_unreachable_first_manager_is_passed_over(fakes, free_port, capsys):
    leader = fakes()
    leader.json("GET", "/app/list", {"result": "ok", "message": "", "apps": [], "total": 0})
    assert main([f"127.0.0.1:{free_port},{leader.address}", "--json", "app", "list"]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == "ok"
    assert [r["path"] for r in leader.requests] == ["/app/list"]


def test_standby_sends_the_request_to_the_leader(fakes, capsys):
    leader, standby = fakes(), fakes("standby")
    standby.leader = leader.identity()
    leader.json("POST", "/task/create", {"result": "ok", "message": "", "task_id": TASK_ID})
    argv = [f"{standby.address},127.0.0.1:1", "task", "create", "-a", APP_ID, "-n", "t", "-i", '{"x": 1}']
    assert main(argv) == 0
    assert TASK_ID in capsys.readouterr().out
    assert [r["path"] for r in standby.requests] == ["/task/create"]
    assert [json.loads(r["body"]) for r in leader.requests] == [json.loads(standby.requests[0]["body"])]
    assert json.loads(leader.requests[0]["body"])["input_data"] == {"x": 1}


def test_the_client_keeps_to_the_manager_that_answered(fakes):
    leader, standby = fakes(), fakes("standby")
    standby.leader = leader.identity()
    leader.json("GET", "/app/list", {"result": "ok", "message": "", "apps": [], "total": 0})
    with ManagerClient(f"{standby.address},{leader.address}") as client:
        assert client.app_list().ok
        assert client.app_list().ok
        assert client.address == leader.address
    assert len(standby.requests) == 1 and len(leader.requests) == 2


def test_cluster_info_on_a_standby_follows_to_the_leader(fakes, capsys):
    leader, standby = fakes(), fakes("standby")
    standby.leader = leader.identity()
    node = {"node_id": "n1", "http_host": "h", "http_port": 1, "action_slots": 2, "app_path": "a", "data_path": "d"}
    leader.json("GET", "/cluster/info", {"result": "ok", "message": "", "role": "leader", "leader": leader.identity(),
                                         "info": {"number_of_nodes": 1, "nodes": [node]}})
    assert main([standby.address, "cluster", "info"]) == 0   # even named alone
    assert "n1" in capsys.readouterr().out


def test_no_leader_is_one_line(fakes, free_port, capsys):
    standby = fakes("standby")   # leader null: no manager leads right now
    assert main([f"127.0.0.1:{free_port},{standby.address}", "app", "list"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        f"litepipeline: error: no manager leads right now (tried 127.0.0.1:{free_port}, {standby.address}): "
        f"127.0.0.1:{free_port}: connection refused; {standby.address}: this manager is a standby; "
        "no manager leads right now; try again shortly\n")
    assert captured.out == ""


def test_following_happens_once_per_request(fakes):
    first, second = fakes("standby"), fakes("standby")
    first.leader, second.leader = second.identity(), first.identity()   # each names the other
    with pytest.raises(ClientError, match="no manager leads right now"):
        ManagerClient(first.address).app_list()
    assert len(first.requests) == 1 and len(second.requests) == 1


def test_upload_is_sent_again_whole_to_the_leader(fakes, tmp_path, capsys):
    leader, standby = fakes(), fakes("standby")
    standby.leader = leader.identity()
    leader.json("POST", "/app/create", {"result": "ok", "message": "", "app_id": APP_ID})
    tarball = tmp_path / "app.tar.gz"
    content = bytes(range(256)) * 4096   # 1 MiB
    tarball.write_bytes(content)
    assert main([standby.address, "app", "create", "-f", str(tarball), "-n", "demo"]) == 0
    assert APP_ID in capsys.readouterr().out
    request = leader.requests[0]
    fields = parse_multipart(request["headers"]["Content-Type"], request["body"])
    assert fields["up_file"] == ("app.tar.gz", content)
    assert fields["name"] == (None, b"demo")


def test_download_follows_to_the_leader(fakes, tmp_path, monkeypatch):
    leader, standby = fakes(), fakes("standby")
    standby.leader = leader.identity()
    leader.routes[("GET", "/app/download")] = (200, "application/octet-stream", b"tarball bytes")
    monkeypatch.chdir(tmp_path)
    assert main([standby.address, "app", "download", "-a", APP_ID]) == 0
    assert (tmp_path / f"{APP_ID}.tar.gz").read_bytes() == b"tarball bytes"


def test_a_post_whose_connection_broke_is_not_sent_again(fakes):
    def drop(fake, handler, method, path):
        handler.close_connection = True   # the request arrived; no answer comes
        return True

    first, second = fakes(), fakes()
    first.hook = drop
    second.json("PUT", "/task/stop", {"result": "ok", "message": ""})
    with pytest.raises(ClientError, match="cannot reach manager at"):
        ManagerClient(f"{first.address},{second.address}").task_stop(TASK_ID)
    assert second.requests == []   # a stop may have happened: not repeated elsewhere


def test_a_wait_that_loses_its_manager_follows_the_new_leader(fakes, monkeypatch, capsys):
    """task run: the leader answers the create, then dies during the held task/info; the
    standby takes over a moment later and the wait goes on there."""
    monkeypatch.setattr(api, "FAILOVER_RETRY", 0.01)
    first, second = fakes(), fakes("standby")
    running = {**TASK_INFO, "stage": "running"}
    finished = {**TASK_INFO, "stage": "finished", "status": "success", "end_at": "2020-01-16 22:48:00.000000"}
    first.json("POST", "/task/create", {"result": "ok", "message": "", "task_id": TASK_ID, "task_info": running})

    def crash(fake, handler, method, path):
        if path != "/task/info" or fake.role != "leader":
            return False
        fake.role = "standby"   # gone as a leader; it names nobody yet
        handler.close_connection = True
        return True

    def take_over(fake, handler, method, path):
        if fake.role == "standby" and len(fake.requests) >= 3:   # the lease ran out meanwhile
            fake.role = "leader"
        return False

    first.hook, second.hook = crash, take_over
    second.json("GET", "/task/info", {"result": "ok", "message": "", "task_info": finished})
    assert main([f"{first.address},{second.address}", "task", "run", "-a", APP_ID, "-n", "t"]) == 0
    assert "success" in capsys.readouterr().out
    create = first.requests[0]
    assert create["headers"].get("Idempotency-Key")   # safe to resend to a new leader
    assert second.requests[-1]["path"] == "/task/info"
    assert second.requests[-1]["query"]["task_id"] == [TASK_ID]


def test_a_wait_gives_up_after_failover_wait(fakes, monkeypatch):
    monkeypatch.setattr(api, "FAILOVER_RETRY", 0.01)
    first, second = fakes("standby"), fakes("standby")
    client = ManagerClient(f"{first.address},{second.address}")
    client.failover_wait = 0.2
    with pytest.raises(ClientError, match="no manager leads right now"):
        client.task_wait(TASK_ID)
    assert len(first.requests) >= 2   # it tried again before giving up


def test_one_manager_errors_are_unchanged(free_port):
    with pytest.raises(ClientError, match=f"^cannot reach manager at 127.0.0.1:{free_port}: connection refused$"):
        ManagerClient(f"127.0.0.1:{free_port}").task_wait(TASK_ID)


def test_a_leader_found_unreachable_is_not_tried_twice(fakes, free_port):
    standby = fakes("standby")
    dead = f"127.0.0.1:{free_port}"
    standby.leader = {"manager_id": "m", "http_host": "127.0.0.1", "http_port": free_port, "tcp_host": "127.0.0.1",
                      "tcp_port": 1, "address": dead, "epoch": 3}
    with pytest.raises(ClientError) as caught:
        ManagerClient(f"{dead},{standby.address}").app_list()
    assert str(caught.value).count(f"{dead}: connection refused") == 1
