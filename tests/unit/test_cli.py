"""``litepipeline`` against a tiny in-test HTTP server that answers canned JSON."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, urlsplit

import pytest

from litepipeline.client import cli
from litepipeline.client.api import ClientError, ManagerClient, MultipartBody
from litepipeline.client.cli import ProgressBar, build_parser, main

APP_ID = "daf41830-c2f9-4b68-8890-7dc286a7ac12"
TASK_ID = "0d50caed-760b-40a5-bcc7-dcdb46960675"
TASK_INFO = {
    "application_id": APP_ID, "create_at": "2020-01-16 22:47:39.910642", "end_at": None, "id": 58,
    "input_data": {}, "result": {}, "stage": "running", "start_at": "2020-01-16 22:47:40.792083",
    "status": None, "task_id": TASK_ID, "task_name": "task demo", "update_at": "2020-01-16 22:47:40.792184",
}


class FakeManager:
    """Records every request; answers ``routes[(method, path)] = (status, content_type, body)``."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[int, str, bytes]] = {}
        self.requests: list[dict] = []
        self.declared_length: dict[str, int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                                      "headers": dict(self.headers), "body": body})
                answer = fake.respond(self, self.command, url.path)
                if answer is None:   # written by respond() itself
                    return
                status, content_type, payload = answer
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                # A test may promise more bytes than it sends, to cut a transfer short.
                self.send_header("Content-Length", str(fake.declared_length.get(url.path, len(payload))))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def respond(self, handler: BaseHTTPRequestHandler, method: str, path: str) -> Optional[tuple[int, str, bytes]]:
        """(status, content type, body) for a recorded request; None when already answered."""
        return self.routes.get((method, path), (404, "text/html", b"<html>not found</html>"))

    def json(self, method: str, path: str, data: object, status: int = 200) -> None:
        self.routes[(method, path)] = (status, "application/json; charset=UTF-8", json.dumps(data).encode())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def manager():
    fake = FakeManager()
    yield fake
    fake.close()


@pytest.fixture
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """field name -> (filename or None, value bytes); strict enough to catch framing errors."""
    boundary = content_type.split("boundary=", 1)[1].encode()
    assert body.endswith(b"--" + boundary + b"--\r\n")
    parts = body.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    fields = {}
    for part in parts[1:-1]:
        assert part.startswith(b"\r\n") and part.endswith(b"\r\n")
        head, value = part[2:-2].split(b"\r\n\r\n", 1)
        disposition = head.split(b"\r\n")[0].decode()
        assert disposition.startswith("Content-Disposition: form-data; ")
        params = dict(p.strip().split("=", 1) for p in disposition.split(";")[1:])
        filename = params["filename"].strip('"') if "filename" in params else None
        fields[params["name"].strip('"')] = (filename, value)
    return fields


# -- argument parsing --------------------------------------------------------------------------


@pytest.mark.parametrize("argv, expected", [
    (["-g", "-9"], -9), (["--signal", "-9"], -9), (["--signal=-9"], -9), (["-g", "-15"], -15),
    ([], -15), (["-g", "KILL"], -9), (["-g", "15"], -15),
])
def test_stop_signal_parses(argv, expected):
    args = build_parser().parse_args(["h:1", "task", "stop", "-t", TASK_ID, *argv])
    assert args.signal == expected


def test_stop_signal_rejects_other_numbers(capsys):
    assert main(["h:1", "task", "stop", "-t", TASK_ID, "-g", "-2"]) == 2
    assert "use -9 (SIGKILL) or -15 (SIGTERM)" in capsys.readouterr().err


def test_long_and_dashed_flags():
    parser = build_parser()
    args = parser.parse_args(["-r", "-w", "10", "h:1", "task", "create", "--app-id", APP_ID, "--name", "n",
                              "--input-data", '{"a": 1}'])
    assert (args.raw, args.width, args.app_id, args.name) == (True, 10, APP_ID, "n")
    assert args.input_data == '{"a": 1}'
    args = parser.parse_args(["h:1", "task", "create", "--app_id", APP_ID, "-n", "n", "--input", "{}"])
    assert args.input_data == "{}"
    args = parser.parse_args(["h:1", "task", "info", "--task-id", TASK_ID])
    assert args.task_id == TASK_ID
    args = parser.parse_args(["h:1", "app", "list", "--offset", "5", "--limit", "7"])
    assert (args.offset, args.limit) == (5, 7)
    args = parser.parse_args(["h:1", "task", "list", "-s", "finished", "-a", APP_ID, "--status", "fail"])
    assert (args.stage, args.app_id, args.status) == ("finished", APP_ID, "fail")


@pytest.mark.parametrize("argv", [
    ["h:1", "app", "create", "-n", "x"],             # -f missing
    ["h:1", "app", "info"],                          # -a missing
    ["h:1", "task", "list", "-s", "sleeping"],       # bad stage
    ["h:1", "task", "list", "--status", "ok"],       # bad status
    ["h:1", "app", "list", "-l", "-1"],              # negative limit
    ["h:1", "app", "frobnicate"],
    ["h:1", "node", "info"],
    ["h:1"],
])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_version(capsys):
    assert main(["-v"]) == 0
    assert capsys.readouterr().out.strip() == f"litepipeline {cli.__version__}"


@pytest.mark.parametrize("text", ["[1, 2]", '"a string"', "3", "null", "{not json"])
def test_input_data_must_be_a_json_object(manager, capsys, text):
    assert main([manager.address, "task", "create", "-a", APP_ID, "-n", "t", "-i", text]) == 2
    err = capsys.readouterr().err
    assert err.startswith("litepipeline: error: -i/--input_data ") and err.count("\n") == 1
    assert manager.requests == []


def test_missing_upload_file(manager, tmp_path, capsys):
    missing = str(tmp_path / "nope.tar.gz")
    assert main([manager.address, "app", "create", "-f", missing, "-n", "x"]) == 2
    assert capsys.readouterr().err == f"litepipeline: error: file not found: {missing}\n"
    assert main([manager.address, "app", "update", "-a", APP_ID, "-f", str(tmp_path)]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert manager.requests == []


# -- transport errors ------------------------------------------------------------------------


def test_unreachable_manager_is_one_line(free_port, capsys):
    assert main([f"127.0.0.1:{free_port}", "app", "list"]) == 1
    captured = capsys.readouterr()
    expected = f"litepipeline: error: cannot reach manager at 127.0.0.1:{free_port}: connection refused\n"
    assert captured.err == expected
    assert captured.out == ""


def test_client_raises_client_error_when_unreachable(free_port):
    with pytest.raises(ClientError, match="connection refused"):
        ManagerClient(f"http://127.0.0.1:{free_port}").service_info()


def test_non_json_answer(manager, capsys):
    manager.routes[("GET", "/cluster/info")] = (502, "text/html", b"<html>bad gateway</html>")
    assert main([manager.address, "cluster", "info"]) == 1
    assert capsys.readouterr().err == (
        f"litepipeline: error: manager at {manager.address} answered HTTP 502 with a non-JSON body\n")


# -- output ------------------------------------------------------------------------------------


def test_task_info_table_matches_seed(manager, capsys):
    manager.json("GET", "/task/info", {"result": "ok", "task_info": TASK_INFO, "task_running_info": []})
    assert main([manager.address, "task", "info", "-t", TASK_ID]) == 0
    assert capsys.readouterr().out == (
        "# | task_id                              | application_id                       | task_name "
        "| create_at                  | start_at                   | end_at | stage   | status\n"
        "1 | 0d50caed-760b-40a5-bcc7-dcdb46960675 | daf41830-c2f9-4b68-8890-7dc286a7ac12 | task demo "
        "| 2020-01-16 22:47:39.910642 | 2020-01-16 22:47:40.792083 | None   | running | None\n")
    assert manager.requests[0]["query"] == {"task_id": [TASK_ID]}


def test_raw_output_is_sorted_indented_json(manager, capsys):
    answer = {"task_info": TASK_INFO, "result": "ok", "task_running_info": [{"name": "first", "b": 1}]}
    manager.json("GET", "/task/info", answer)
    assert main(["-r", manager.address, "task", "info", "-t", TASK_ID]) == 0
    out = capsys.readouterr().out
    assert out == json.dumps(answer, indent=4, sort_keys=True) + "\n"
    assert out.startswith('{\n    "result": "ok",\n    "task_info": {\n        "application_id"')


def test_error_envelope_prints_result_table_and_exits_1(manager, capsys):
    manager.json("GET", "/app/info", {"result": "AppNotExists", "message": "no such app"}, status=404)
    assert main([manager.address, "app", "info", "-a", "nope"]) == 1
    assert capsys.readouterr().out == (
        "# | result       | message\n"
        "1 | AppNotExists | no such app\n")
    assert main(["-r", manager.address, "app", "info", "-a", "nope"]) == 1
    assert json.loads(capsys.readouterr().out) == {"result": "AppNotExists", "message": "no such app"}


def test_error_envelope_with_http_200_still_exits_1(manager, capsys):
    manager.json("PUT", "/task/stop", {"result": "TaskAlreadyFinished", "message": "done"})
    assert main([manager.address, "task", "stop", "-t", TASK_ID, "-g", "-9"]) == 1
    assert "TaskAlreadyFinished" in capsys.readouterr().out
    assert json.loads(manager.requests[0]["body"]) == {"task_id": TASK_ID, "signal": -9}


def test_client_exposes_http_status(manager):
    manager.json("GET", "/app/info", {"result": "AppNotExists", "message": "x"}, status=404)
    reply = ManagerClient(manager.address).app_info("x")
    assert reply == {"result": "AppNotExists", "message": "x"}
    assert reply.http_status == 404 and not reply.ok


def test_the_environment_proxy_is_used_unless_no_proxy_names_the_manager(manager, monkeypatch):
    proxy = FakeManager()   # a proxy receives "GET http://host:port/path": the fake records the path
    try:
        proxy.json("GET", "/app/list", {"result": "ok", "apps": []})
        manager.json("GET", "/app/list", {"result": "ok", "apps": []})
        for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.address}")
        with ManagerClient(manager.address) as client:
            client.app_list()
            client.app_list()
        assert [r["path"] for r in proxy.requests] == ["/app/list", "/app/list"] and not manager.requests
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with ManagerClient(manager.address) as client:
            client.app_list()
        assert [r["path"] for r in manager.requests] == ["/app/list"] and len(proxy.requests) == 2
    finally:
        proxy.close()


def test_a_netrc_entry_does_not_replace_the_token(manager, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password other\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    manager.json("GET", "/app/list", {"result": "ok", "apps": []})
    with ManagerClient(manager.address, token="s3cret") as client:
        client.app_list()
    assert manager.requests[0]["headers"]["Authorization"] == "Bearer s3cret"


def test_app_list_with_width(manager, capsys):
    apps = [{"application_id": APP_ID, "name": "multiple actions demo",
             "create_at": "2020-01-16 22:44:10.886778",
             "update_at": "2020-01-16 22:44:10.886778", "sha1": "abc", "description": "demo"}]
    manager.json("GET", "/app/list", {"result": "ok", "apps": apps})
    assert main(["-w", "8", manager.address, "app", "list", "-o", "3", "-l", "4"]) == 0
    assert capsys.readouterr().out == (
        "# | application_id | name     | create_at | update_at\n"
        "1 | daf41830       | multiple | 2020-01-  | 2020-01-\n")
    assert manager.requests[0]["query"] == {"offset": ["3"], "limit": ["4"]}


def test_app_info_columns(manager, capsys):
    info = {"application_id": APP_ID, "name": "n", "create_at": "c", "update_at": "u", "sha1": "s1",
            "description": "d"}
    manager.json("GET", "/app/info", {"result": "ok", "app_info": info})
    assert main([manager.address, "app", "info", "--app-id", APP_ID]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split(" | ") == ["#", "application_id                      ", "name", "create_at",
                                   "update_at", "sha1", "description"]
    assert row == f"1 | {APP_ID} | n    | c         | u         | s1   | d"


def test_task_list_passes_filters_only_when_given(manager, capsys):
    manager.json("GET", "/task/list", {"result": "ok", "tasks": [TASK_INFO, dict(TASK_INFO, task_id="t2")]})
    assert main([manager.address, "task", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[2].startswith("2 | t2 ")
    assert manager.requests[0]["query"] == {"offset": ["0"], "limit": ["50"]}   # the newest 50 by default
    assert main([manager.address, "task", "list", "-s", "running", "-a", APP_ID, "--status", "kill", "-l", "0"]) == 0
    assert manager.requests[1]["query"] == {"offset": ["0"], "limit": ["0"], "stage": ["running"],
                                            "app_id": [APP_ID], "status": ["kill"]}


def test_a_list_with_more_rows_than_shown_says_how_to_see_them_on_stderr(manager, capsys):
    manager.json("GET", "/task/list", {"result": "ok", "tasks": [TASK_INFO] * 50, "total": 100000})
    assert main([manager.address, "task", "list"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 51
    assert err == "litepipeline: showing 50 of 100000; use -o/--offset and -l/--limit to see more\n"
    assert main([manager.address, "task", "list", "-o", "99950"]) == 0
    assert capsys.readouterr().err == ""   # the last page
    for flags in (["--json"], ["-q"], ["-r"]):   # what scripts parse gets no hint, on either stream
        assert main([manager.address, "task", "list", *flags]) == 0
        out, err = capsys.readouterr()
        assert "showing" not in out + err
    assert main([manager.address, "task", "list", "-o", "100"]) == 0
    assert "showing 50 of 100000 from offset 100;" in capsys.readouterr().err


def test_task_create_sends_json(manager, capsys):
    manager.json("POST", "/task/create", {"result": "ok", "task_id": TASK_ID})
    assert main([manager.address, "task", "create", "-a", APP_ID, "-n", "task demo", "-i", '{"x": [1]}']) == 0
    assert capsys.readouterr().out == (
        "# | task_id                              | result | message\n"
        "1 | 0d50caed-760b-40a5-bcc7-dcdb46960675 | ok     |\n")
    sent = manager.requests[0]
    assert sent["headers"]["Content-Type"] == "application/json"
    assert json.loads(sent["body"]) == {"app_id": APP_ID, "task_name": "task demo", "input_data": {"x": [1]}}


def test_delete_operations_use_query(manager, capsys):
    manager.json("DELETE", "/app/delete", {"result": "ok"})
    manager.json("DELETE", "/task/delete", {"result": "ok", "message": "deleted"})
    assert main([manager.address, "app", "delete", "-a", APP_ID]) == 0
    assert main([manager.address, "task", "delete", "-t", TASK_ID]) == 0
    assert capsys.readouterr().out == (
        "# | result | message\n1 | ok     |\n"
        "# | result | message\n1 | ok     | deleted\n")
    assert [(r["method"], r["path"], r["query"]) for r in manager.requests] == [
        ("DELETE", "/app/delete", {"app_id": [APP_ID]}), ("DELETE", "/task/delete", {"task_id": [TASK_ID]})]


def test_cluster_info_rows_from_nodes(manager, capsys):
    nodes = [{"node_id": "n1", "http_host": "10.0.0.2", "http_port": 8001, "action_slots": 2,
              "app_path": "/d/apps", "data_path": "/d", "version": "1.0.0"}]
    manager.json("GET", "/cluster/info", {"result": "ok", "version": "1.0.0",
                                          "info": {"number_of_nodes": 1, "nodes": nodes}})
    assert main([manager.address, "cluster", "info"]) == 0
    assert capsys.readouterr().out == (
        "# | node_id | http_host | http_port | action_slots | app_path | data_path\n"
        "1 | n1      | 10.0.0.2  | 8001      | 2            | /d/apps  | /d\n")


def test_token_header_from_flag_and_env(manager, monkeypatch, capsys):
    manager.json("GET", "/app/list", {"result": "ok", "apps": []})
    assert main(["--token", "s3cret", manager.address, "app", "list"]) == 0
    monkeypatch.setenv("LITEPIPELINE_TOKEN", "from-env")
    assert main([manager.address, "app", "list"]) == 0
    monkeypatch.delenv("LITEPIPELINE_TOKEN")
    assert main([manager.address, "app", "list"]) == 0
    auth = [r["headers"].get("Authorization") for r in manager.requests]
    assert auth == ["Bearer s3cret", "Bearer from-env", None]


# -- uploads and downloads -----------------------------------------------------------------------


def test_app_create_streams_multipart_upload(manager, tmp_path, capsys):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    tarball = tmp_path / "multiple actions.tar.gz"
    tarball.write_bytes(payload)
    manager.json("POST", "/app/create", {"result": "ok", "app_id": APP_ID})
    assert main([manager.address, "app", "create", "-f", str(tarball), "-n", "demo ü", "-d", "a demo"]) == 0
    captured = capsys.readouterr()
    assert captured.out == (
        "# | app_id                               | result | message\n"
        "1 | daf41830-c2f9-4b68-8890-7dc286a7ac12 | ok     |\n")
    assert captured.err == ""  # no progress bar when stderr is not a terminal
    sent = manager.requests[0]
    # A known length, not chunked: the manager can refuse an oversized upload up front.
    assert "Transfer-Encoding" not in sent["headers"]
    assert int(sent["headers"]["Content-Length"]) == len(sent["body"])
    fields = parse_multipart(sent["headers"]["Content-Type"], sent["body"])
    assert fields["up_file"] == ("multiple actions.tar.gz", payload)
    assert fields["name"] == (None, "demo ü".encode())
    assert fields["description"] == (None, b"a demo")


def test_app_update_without_file_sends_only_given_fields(manager, capsys):
    manager.json("PUT", "/app/update", {"result": "ok", "app_id": APP_ID})
    assert main([manager.address, "app", "update", "-a", APP_ID, "-n", "renamed"]) == 0
    sent = manager.requests[0]
    fields = parse_multipart(sent["headers"]["Content-Type"], sent["body"])
    assert fields == {"app_id": (None, APP_ID.encode()), "name": (None, b"renamed")}
    assert capsys.readouterr().out.splitlines()[1] == f"1 | {APP_ID} | ok     |"


def test_app_update_with_file(manager, tmp_path, capsys):
    tarball = tmp_path / "app.tar.gz"
    tarball.write_bytes(b"\r\n--not-a-boundary\r\n" * 1000)
    manager.json("PUT", "/app/update", {"result": "ok", "app_id": APP_ID})
    assert main([manager.address, "app", "update", "-a", APP_ID, "-f", str(tarball), "-d", ""]) == 0
    sent = manager.requests[0]
    fields = parse_multipart(sent["headers"]["Content-Type"], sent["body"])
    assert fields == {"app_id": (None, APP_ID.encode()), "description": (None, b""),
                      "up_file": ("app.tar.gz", tarball.read_bytes())}


def test_multipart_body_reads_in_bounded_chunks(tmp_path):
    data = os.urandom(1024 * 1024)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    calls = []
    body = MultipartBody({"name": "x"}, "up_file", str(path), progress=lambda d, t: calls.append((d, t)))
    chunks = []
    while True:
        chunk = body.read(16384)
        if not chunk:
            break
        assert len(chunk) <= 16384
        chunks.append(chunk)
    whole = b"".join(chunks)
    assert len(whole) == len(body)
    assert data in whole
    assert len(calls) >= len(chunks) and calls[-1] == (len(body), len(body))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    body.close()
    assert body._file is None


def test_upload_progress_callback_through_client(manager, tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(2 * 1024 * 1024))
    manager.json("POST", "/app/create", {"result": "ok", "app_id": APP_ID})
    seen = []
    client = ManagerClient(manager.address)
    reply = client.app_create(str(path), "n", progress=lambda d, t: seen.append((d, t)))
    assert reply.ok and reply["app_id"] == APP_ID
    assert len(seen) > 2
    assert seen[-1][0] == seen[-1][1] == int(manager.requests[0]["headers"]["Content-Length"])


def test_progress_bar_only_on_a_terminal(manager, tmp_path, monkeypatch, capsys):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100000)
    manager.json("POST", "/app/create", {"result": "ok", "app_id": APP_ID})
    assert main([manager.address, "app", "create", "-f", str(path), "-n", "n"]) == 0
    drawn = tty.getvalue()
    assert drawn.startswith("\ruploading [") and "100.0%" in drawn and drawn.endswith("\n")
    assert "uploading" not in capsys.readouterr().out


def test_progress_bar_rendering():
    out = io.StringIO()
    bar = ProgressBar("downloading", out)
    bar(512, 1024)
    bar(1024, 1024)
    bar.finish()
    text = out.getvalue()
    assert "[" + "#" * 15 + "." * 15 + "]  50.0%" in text
    assert "100.0% 1.0 KiB / 1.0 KiB" in text and text.endswith("\n")
    unknown = io.StringIO()
    bar = ProgressBar("downloading", unknown)
    bar(2048, None)
    bar(4096, None)  # too soon after the first to redraw...
    assert unknown.getvalue().startswith("\rdownloading 2.0 KiB") and "4.0 KiB" not in unknown.getvalue()
    bar.finish()  # ...but the final count is shown at the end
    assert unknown.getvalue().endswith("downloading 4.0 KiB\033[K\n")


def test_app_download_writes_file(manager, tmp_path, monkeypatch, capsys):
    payload = os.urandom(700000)
    manager.routes[("GET", "/app/download")] = (200, "application/octet-stream", payload)
    monkeypatch.chdir(tmp_path)
    assert main([manager.address, "app", "download", "-a", APP_ID]) == 0
    assert (tmp_path / f"{APP_ID}.tar.gz").read_bytes() == payload
    assert capsys.readouterr().out == (
        "# | app_id                               "
        "| file                                          | result | message\n"
        f"1 | {APP_ID} | ./{APP_ID}.tar.gz | ok     |\n")
    assert manager.requests[0]["query"] == {"app_id": [APP_ID]}
    # -o names the file, or a directory to put it in
    assert main([manager.address, "app", "download", "-a", APP_ID, "-o", "copy.tgz"]) == 0
    assert (tmp_path / "copy.tgz").read_bytes() == payload
    (tmp_path / "sub").mkdir()
    assert main([manager.address, "app", "download", "-a", APP_ID, "--output", "sub"]) == 0
    assert (tmp_path / "sub" / f"{APP_ID}.tar.gz").read_bytes() == payload


def test_app_download_error_leaves_no_file(manager, tmp_path, monkeypatch, capsys):
    manager.json("GET", "/app/download", {"result": "AppNotExists", "message": "no app"}, status=404)
    monkeypatch.chdir(tmp_path)
    assert main([manager.address, "app", "download", "-a", "nope"]) == 1
    assert capsys.readouterr().out == "# | result       | message\n1 | AppNotExists | no app\n"
    assert list(tmp_path.iterdir()) == []


def test_app_download_cut_short_is_client_error(manager, tmp_path, monkeypatch, capsys):
    manager.routes[("GET", "/app/download")] = (200, "application/gzip", b"x" * 1000)
    manager.declared_length["/app/download"] = 100000
    monkeypatch.chdir(tmp_path)
    assert main([manager.address, "app", "download", "-a", APP_ID]) == 1
    err = capsys.readouterr().err
    assert err == (f"litepipeline: error: download from manager at {manager.address} broke off: "
                   "connection closed after 1000 bytes, 99000 more expected\n")
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part remains


def test_module_runs_as_script(free_port):
    # The __main__ guard and exit code, as a console script would run it.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    command = [sys.executable, "-m", "litepipeline.client.cli", f"127.0.0.1:{free_port}", "cluster", "info"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("litepipeline: error: cannot reach manager")
    assert "Traceback" not in done.stderr
