"""The operator's toolkit without a cluster: channels, tar writing and merging, the node's
log/workspace routes in process, and the CLI's new operations against a canned manager."""
from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
import threading
import time

import pytest

from litepipeline.client.cli import TASK_COLUMNS, main
from litepipeline.client.table import format_table, rows_from
from litepipeline.client.toolkit import duration
from litepipeline.manager.workspaces import action_node, member_filter, merge_tars, node_error
from litepipeline.node.wsarchive import write_tar
from litepipeline.common.streaming import EOF, Channel, ChannelAborted
from tests.unit.test_cli import TASK_ID, TASK_INFO, FakeManager
from tests.unit.test_node_handlers import Harness, action


def tar_bytes(members: dict, gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def drain(channel: Channel) -> bytes:
    out = bytearray()
    while True:
        chunk = await channel.get()
        if chunk == EOF:
            return bytes(out)
        out += chunk


# -- channels and tars ---------------------------------------------------------------------------


def test_channel_is_bounded_and_carries_aborts():
    async def run() -> None:
        channel = Channel(maxsize=2)
        progress = []

        def producer() -> None:
            for i in range(5):
                channel.put_blocking(b"%d" % i)
                progress.append(i)
            channel.put_blocking(EOF)

        thread = threading.Thread(target=producer)
        thread.start()
        await asyncio.sleep(0.2)
        assert progress == [0, 1]                 # blocked: two chunks wait, nobody reads
        assert await drain(channel) == b"01234"
        thread.join(2)

        broken = Channel()
        failure = ValueError("node went away")
        threading.Thread(target=broken.abort, args=(failure,)).start()
        with pytest.raises(ChannelAborted) as caught:
            await broken.get()
        assert caught.value.__cause__ is failure and broken.error is failure
        with pytest.raises(ChannelAborted):
            await broken.put(b"x")

    asyncio.run(run())


def test_merge_tars_keeps_each_nodes_own_actions():
    node_a = tar_bytes({"t1/a": None, "t1/a/stdout.data": b"from a\n", "t1/b/stdout.data": b"stale b\n",
                        "other/x": b"no", "t1/../evil": b"no"})
    node_b = tar_bytes({"t1/b": None, "t1/b/stdout.data": b"from b\n" * 50000})

    async def run() -> bytes:
        sources = [Channel(), Channel()]
        out = Channel()
        thread = threading.Thread(target=merge_tars, args=(
            [(sources[0], member_filter("t1", {"a"})), (sources[1], member_filter("t1", {"b"}))], out))
        thread.start()

        async def feed() -> None:
            for channel, data in zip(sources, (node_a, node_b)):
                for i in range(0, len(data), 7000):
                    await channel.put(data[i:i + 7000])
                await channel.put(EOF)

        feeder = asyncio.ensure_future(feed())
        merged = await drain(out)
        await feeder
        thread.join(2)
        return merged

    merged = asyncio.run(run())
    with tarfile.open(fileobj=io.BytesIO(merged), mode="r:gz") as tar:
        assert tar.getnames() == ["t1/a", "t1/a/stdout.data", "t1/b", "t1/b/stdout.data"]
        assert tar.extractfile("t1/a/stdout.data").read() == b"from a\n"
        assert tar.extractfile("t1/b/stdout.data").read() == b"from b\n" * 50000


def test_merge_tars_passes_a_nodes_error_on():
    async def run() -> None:
        source, out = Channel(), Channel()
        thread = threading.Thread(target=merge_tars, args=([(source, member_filter("t1", None))], out))
        thread.start()
        failure = node_error("n1", 404, b'{"result": "WorkspaceNotExists", "message": "gone"}')
        source.abort(failure)
        with pytest.raises(ChannelAborted):
            await drain(out)
        assert out.error is failure and (failure.name, failure.http_status) == ("WorkspaceNotExists", 404)
        thread.join(2)

    asyncio.run(run())


def test_node_error_mapping():
    assert node_error("n1", 409, b'{"result": "OperationFailed", "message": "busy"}').envelope() == \
        {"result": "OperationFailed", "message": "busy"}
    unauthorized = node_error("n1", 401, b'{"result": "Unauthorized", "message": "x"}')
    assert (unauthorized.name, unauthorized.http_status) == ("NodeUnauthorized", 502)
    broken = node_error("n1", 500, b"<html>")
    assert (broken.name, broken.http_status, broken.message) == ("NodeError", 502, "node n1 answered HTTP 500")


def test_action_node_falls_back_to_last_attempt():
    attempts = [{"name": "a", "node_id": "n1"}, {"name": "b", "node_id": "n2"}, {"name": "a", "node_id": "n3"}]
    assert action_node({"name": "a", "node_id": "n9"}, attempts) == "n9"
    assert action_node({"name": "a", "node_id": None}, attempts) == "n3"      # waiting for a retry
    assert action_node({"name": "c", "node_id": None}, attempts) is None       # never ran


def test_write_tar_streams_a_task_tree(tmp_path):
    root = tmp_path / "workspaces"
    (root / "t1" / "a" / "sub").mkdir(parents=True)
    (root / "t1" / "a" / "stdout.data").write_bytes(b"hello\n")
    (root / "t1" / "a" / "sub" / "big.bin").write_bytes(os.urandom(600000))
    os.symlink("/etc/passwd", root / "t1" / "a" / "link")
    (root / "t1" / "b").mkdir()

    async def run(name):
        channel = Channel()
        thread = threading.Thread(target=write_tar, args=(str(root), "t1", name, channel))
        thread.start()
        data = await drain(channel)
        thread.join(2)
        return data

    with tarfile.open(fileobj=io.BytesIO(asyncio.run(run(None)))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"t1/a", "t1/a/link", "t1/a/stdout.data", "t1/a/sub", "t1/a/sub/big.bin", "t1/b"}
        assert members["t1/a/link"].issym() and members["t1/a/link"].linkname == "/etc/passwd"
        assert tar.extractfile("t1/a/sub/big.bin").read() == (root / "t1" / "a" / "sub" / "big.bin").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(asyncio.run(run("b")))) as tar:
        assert tar.getnames() == ["t1/b"]


# -- the node's routes, in process ---------------------------------------------------------------


def test_node_log_routes(tmp_path):
    async def run() -> None:
        async with Harness(tmp_path, action_slots=2) as h:
            code, body = await h.call("GET", "/action/log?task_id=t1&name=s")
            assert (code, body) == (404, {"result": "WorkspaceNotExists",
                                          "message": "workspace of action 's' of task t1 is gone"})
            code, body = await h.call("GET", "/action/log?task_id=t1&name=..")
            assert code == 400 and body["result"] == "InvalidParameters"
            ws = tmp_path / "data" / "workspaces" / "t0" / "done"
            ws.mkdir(parents=True)
            (ws / "stdout.data").write_bytes(b"hello world\n")
            url = f"http://127.0.0.1:{h.node.http_port}/action/log?task_id=t0&name=done"
            response = await h.client.fetch(url + "&offset=6&follow=1")
            assert response.body == b"world\n"                        # not running: follow ends at EOF

            main = "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done; true"
            assert (await h.call("POST", "/action/run", action("att-9", name="p", main=main)))[0] == 200
            chunks: list[tuple[float, bytes]] = []
            started = time.monotonic()
            await h.client.fetch(f"http://127.0.0.1:{h.node.http_port}/action/log?task_id=t1&name=p&follow=1",
                                 streaming_callback=lambda c: chunks.append((time.monotonic() - started, c)),
                                 request_timeout=20)
            assert b"".join(c for _, c in chunks) == b"".join(b"line%d\n" % i for i in range(1, 6))
            assert len(chunks) >= 3 and chunks[0][0] < 0.6           # streamed as printed, not at the end
            assert "att-9" not in h.node.executor.attempts           # ...and ended with the action

    asyncio.run(run())


def test_node_workspace_download_and_delete(tmp_path):
    async def run() -> None:
        async with Harness(tmp_path) as h:
            base = f"http://127.0.0.1:{h.node.http_port}"
            code, body = await h.call("GET", "/workspace/download?task_id=t1")
            assert (code, body["result"]) == (404, "WorkspaceNotExists")
            assert body["message"] == "workspaces of task t1 are gone"
            assert (await h.call("POST", "/action/run", action("att-1", name="s")))[0] == 200
            ws = tmp_path / "data" / "workspaces" / "t1" / "s"
            for _ in range(200):
                if (ws / "input.data").exists():
                    break
                await asyncio.sleep(0.02)
            response = await h.client.fetch(base + "/workspace/download?task_id=t1&name=s")
            assert response.headers["Content-Type"] == "application/x-tar"
            with tarfile.open(fileobj=io.BytesIO(response.body)) as tar:
                assert "t1/s/input.data" in tar.getnames()
            code, body = await h.call("DELETE", "/workspace/delete?task_id=t1")
            assert (code, body["result"]) == (409, "OperationFailed")   # an action of t1 runs here
            await h.call("PUT", "/action/stop", {"task_id": "t1", "name": "s", "signal": -9})
            await h.reports("finished")
            for _ in range(200):
                if not h.node.executor.busy_tasks():
                    break
                await asyncio.sleep(0.02)
            assert await h.call("DELETE", "/workspace/delete?task_id=t1") == (200, {"result": "ok"})
            assert not ws.exists()
            assert await h.call("DELETE", "/workspace/delete?task_id=t1") == \
                (200, {"result": "ok", "message": "nothing to delete"})

    asyncio.run(run())


# -- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def manager():
    fake = FakeManager()
    yield fake
    fake.close()


FINISHED = dict(TASK_INFO, stage="finished", status="fail", end_at="2020-01-16 22:47:42.042083",
                message="action 'b' failed")


def test_default_task_tables_unchanged_and_long_adds_duration_and_message(manager, capsys):
    manager.json("GET", "/task/list", {"result": "ok", "tasks": [FINISHED, TASK_INFO], "total": 2})
    assert main([manager.address, "task", "list"]) == 0
    seed = format_table(TASK_COLUMNS, rows_from([FINISHED, TASK_INFO], TASK_COLUMNS)) + "\n"
    assert capsys.readouterr().out == seed
    assert main([manager.address, "task", "list", "--long"]) == 0
    rows = [[c.strip() for c in line.split("|")] for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["#", *TASK_COLUMNS, "duration", "message"]
    assert rows[1][-2:] == ["1.250s", "action 'b' failed"]
    assert rows[2][-2].endswith("s") and float(rows[2][-2][:-1]) > 1e8   # running: the time so far
    assert rows[2][-1] == ""
    manager.json("GET", "/task/info", {"result": "ok", "task_info": FINISHED})
    assert main([manager.address, "task", "info", "-t", TASK_ID, "--long"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("| finished | fail   | 1.250s   | action 'b' failed")
    assert main([manager.address, "task", "info", "-t", TASK_ID]) == 0
    assert capsys.readouterr().out == format_table(TASK_COLUMNS, rows_from([FINISHED], TASK_COLUMNS)) + "\n"


def test_duration():
    assert duration("2020-01-16 22:47:40.000000", "2020-01-16 22:47:41.234000", False) == "1.234s"
    assert duration(None, None, True) == ""
    assert duration("2020-01-16 22:47:40.000000", None, False) == ""
    import datetime as dt
    assert duration("2020-01-16 22:47:40.000000", None, True, now=dt.datetime(2020, 1, 16, 22, 47, 42)) == \
        "2.000s"


def test_task_attempts_table(manager, capsys):
    attempts = [{"name": "r", "attempt": 1, "node_id": "n1", "dispatched_at": "x",
                 "start_at": "2020-01-16 22:47:40.000000", "end_at": "2020-01-16 22:47:40.500000",
                 "status": "fail", "returncode": 4, "message": "action exited with code 4"},
                {"name": "r", "attempt": 2, "node_id": "n2", "dispatched_at": "x",
                 "start_at": "2020-01-16 22:47:41.000000", "end_at": "2020-01-16 22:47:41.100000",
                 "status": "success", "returncode": 0, "message": None}]
    manager.json("GET", "/task/info", {"result": "ok", "task_info": dict(FINISHED, attempts=attempts)})
    assert main([manager.address, "task", "attempts", "-t", TASK_ID]) == 0
    assert capsys.readouterr().out == (
        "# | name | attempt | node_id | start_at                   | end_at                     | duration "
        "| status  | returncode | message\n"
        "1 | r    | 1       | n1      | 2020-01-16 22:47:40.000000 | 2020-01-16 22:47:40.500000 | 0.500s   "
        "| fail    | 4          | action exited with code 4\n"
        "2 | r    | 2       | n2      | 2020-01-16 22:47:41.000000 | 2020-01-16 22:47:41.100000 | 0.100s   "
        "| success | 0          | None\n")


def test_task_log_prints_bytes_only(manager, capsys):
    manager.routes[("GET", "/task/log")] = (200, "application/octet-stream", b"line 1\nline 2\n")
    assert main([manager.address, "task", "log", "-t", TASK_ID, "-a", "first", "-f"]) == 0
    assert capsys.readouterr().out == "line 1\nline 2\n"
    assert manager.requests[0]["query"] == {"task_id": [TASK_ID], "name": ["first"], "follow": ["1"]}
    manager.json("GET", "/task/log", {"result": "WorkspaceNotExists", "message": "gone"}, status=404)
    assert main([manager.address, "task", "log", "-t", TASK_ID, "-a", "first"]) == 1
    assert capsys.readouterr().out == "# | result             | message\n1 | WorkspaceNotExists | gone\n"


def test_task_workspace_and_the_other_new_operations(manager, tmp_path, monkeypatch, capsys):
    payload = tar_bytes({"t/a/stdout.data": b"x"}, gz=True)
    manager.routes[("GET", "/task/workspace")] = (200, "application/gzip", payload)
    monkeypatch.chdir(tmp_path)
    assert main([manager.address, "task", "workspace", "-t", TASK_ID, "-a", "first"]) == 0
    assert (tmp_path / f"{TASK_ID}-first.tar.gz").read_bytes() == payload
    assert manager.requests[-1]["query"] == {"task_id": [TASK_ID], "name": ["first"]}
    assert f"./{TASK_ID}-first.tar.gz | ok" in capsys.readouterr().out
    assert main([manager.address, "task", "workspace", "-t", TASK_ID]) == 0
    assert (tmp_path / f"{TASK_ID}.tar.gz").exists()
    capsys.readouterr()
    manager.json("DELETE", "/task/workspace", {"result": "ok", "nodes": ["n1"]})
    manager.json("POST", "/task/rerun", {"result": "ok", "task_id": "new-id", "rerun_of": TASK_ID})
    manager.json("PUT", "/task/recover", {"result": "ok", "task_id": TASK_ID})
    assert main([manager.address, "task", "workspace-delete", "-t", TASK_ID]) == 0
    assert main([manager.address, "task", "rerun", "-t", TASK_ID]) == 0
    assert main([manager.address, "task", "recover", "-t", TASK_ID]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "1 | ok     |" and out[3] == "1 | new-id  | ok     |" and out[5] == f"1 | {TASK_ID} | ok     |"
    sent = [(r["method"], r["path"], r["query"], json.loads(r["body"]) if r["body"] else None)
            for r in manager.requests[-3:]]
    assert sent == [("DELETE", "/task/workspace", {"task_id": [TASK_ID]}, None),
                    ("POST", "/task/rerun", {}, {"task_id": TASK_ID}),
                    ("PUT", "/task/recover", {}, {"task_id": TASK_ID})]
