"""A small HTTP client for the manager API (SPEC §3), used by the CLI and the tests.

Every route method returns a :class:`Reply`: the JSON object exactly as the manager sent
it (a ``dict``), whether ``result`` is ``"ok"`` or an error envelope, with the HTTP status
on ``reply.http_status``. Only transport trouble raises: :class:`ClientError`, carrying one
line meant for a human (manager unreachable, timed out, or an answer that is not JSON).

Uploads and downloads stream: a file is never held whole in memory.
Adding a route is one method calling :meth:`ManagerClient.call`.
"""
from __future__ import annotations

import http.client
import os
import socket
import time
import uuid
from typing import Any, BinaryIO, Callable, Optional

import requests
from requests_toolbelt.multipart.encoder import MultipartEncoder, MultipartEncoderMonitor
from urllib3.exceptions import NewConnectionError

from litepipeline.client.managers import ROLE_ROUTES, ManagerAddresses, Target, none_leads, standby_answer
from litepipeline.common.errors import parse_envelope

Progress = Callable[[int, Optional[int]], None]
"""Called as ``progress(bytes_done, bytes_total_or_None)`` while a transfer runs."""

CHUNK_SIZE = 256 * 1024
TRANSFER_TIMEOUT = 600.0
FAILOVER_WAIT = 60.0   # seconds a wait tries to find the new leader: a lease runs out well within
FAILOVER_RETRY = 1.0   # seconds between those tries


class ClientError(Exception):
    """The manager could not be talked to; the message is one line for the user."""


class Reply(dict):
    """The manager's JSON object, plus the HTTP status it came with.

    It is a plain ``dict`` for everything else (``json.dumps`` prints only the server's keys).
    """

    http_status: int = 200

    def __init__(self, data: dict, http_status: int = 200) -> None:
        super().__init__(data)
        self.http_status = http_status

    @property
    def ok(self) -> bool:
        """True when the manager answered ``"result": "ok"``."""
        return self.get("result") == "ok"


class MultipartBody:
    """A streamed ``multipart/form-data`` body (requests-toolbelt's encoder): the file is
    read in chunks as it is sent, and ``Content-Length`` is exact, which lets the manager
    reject an oversized upload before reading it. :meth:`close` closes the file."""

    def __init__(self, fields: dict[str, str], file_field: str | None = None,
                 file_path: str | None = None, progress: Progress | None = None) -> None:
        parts: dict[str, Any] = {name: str(value) for name, value in fields.items()}
        self._file: BinaryIO | None = None
        if file_field is not None and file_path is not None:
            self._file = open(file_path, "rb")  # noqa: SIM115 - closed by close(), after the request
            parts[file_field] = (os.path.basename(file_path), self._file, "application/octet-stream")
        report = (lambda monitor: progress(monitor.bytes_read, monitor.len)) if progress is not None else None
        self.encoder = MultipartEncoderMonitor(MultipartEncoder(fields=parts), report)
        self.content_type = self.encoder.content_type

    def __len__(self) -> int:
        return self.encoder.len

    def read(self, size: int = -1) -> bytes:
        return self.encoder.read(size)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _reason(exc: BaseException) -> str:
    """The root cause of a requests/urllib3 connection error, in a few words."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return f"unknown host ({current.strerror or current})"
        if isinstance(current, ConnectionResetError):
            return "connection reset"
        if isinstance(current, (socket.timeout, TimeoutError)):
            return "timed out"
        if isinstance(current, http.client.IncompleteRead):
            got = current.partial if isinstance(current.partial, int) else len(current.partial)
            return f"connection closed after {got} bytes, {current.expected} more expected"
        # urllib3 nests the real cause in .reason, in args, and in the exception chain.
        for nxt in (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text


class _Unreached(Exception):
    """A send that got no answer: ``delivered`` when the request may have reached the manager."""

    def __init__(self, reason: str, message: str, delivered: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.delivered = delivered


def _never_sent(exc: BaseException) -> bool:
    """True when a connection error happened before the request left (no connection was made)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, ConnectionRefusedError, socket.gaierror)):
            return True
        for nxt in (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    return False


def _small_body(response: requests.Response, path: str) -> bytes:
    """The body of an answer that may be a standby's (a 503, or a 200 on ``/`` or
    ``/cluster/info``: small JSON); nothing for the rest, which may be a streamed file."""
    if response.status_code == 503 or (response.status_code == 200 and path in ROLE_ROUTES):
        try:
            return response.content
        except requests.exceptions.RequestException:
            return b""
    return b""


class ManagerClient:
    """Talks to the manager at ``address`` (``HOST:PORT`` or ``http(s)://HOST:PORT``), or to
    whichever of several leads (``HOST:PORT,HOST:PORT,...``, see
    :mod:`~litepipeline.client.managers`).

    Args:
        address: where the manager listens; with several, the client tries them in order
            (an unreachable one or a standby is passed over; a standby naming the leader
            sends the request there) and keeps to the one that answered.
        tls_ca: a CA certificate file: the manager serves TLS and its certificate is verified
            against this CA (an ``https://`` address without it uses the system's CAs).
        token: when given, sent as ``Authorization: Bearer <token>`` on every call.
        timeout: seconds to connect and to wait for an answer; uploads and downloads wait
            up to ``max(timeout, TRANSFER_TIMEOUT)`` between bytes, as the manager may hash
            and check a large tarball before it answers.
    """

    def __init__(self, address: str, token: str | None = None, timeout: float = 30,
                 tls_ca: str | None = None) -> None:
        # tls_ca: the manager serves TLS, with a certificate signed by that CA
        self.managers = ManagerAddresses(address, tls=bool(tls_ca))
        self.base_url = self.managers.current.base_url
        self.address = self.managers.current.address
        self.timeout = timeout
        #: seconds a wait (``task_wait``, ``task_run``) keeps trying to reach a leader after
        #: losing its manager, when several managers were named or a standby was met
        self.failover_wait = FAILOVER_WAIT
        self._standby_seen = False
        self.session = requests.Session()
        # The environment (proxies, $REQUESTS_CA_BUNDLE) is read once per address instead of
        # by requests on every call, where walking os.environ was half of a call's CPU; and
        # ~/.netrc, which requests would apply over the bearer token, is not consulted.
        self.session.trust_env = False
        self._verify: Any = tls_ca or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._proxies: dict[str, dict] = {}
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    # -- transport ---------------------------------------------------------------------

    @property
    def fails_over(self) -> bool:
        """True when more than one manager may answer: several were named, or a standby was met."""
        return self.managers.several or self._standby_seen

    def _send(self, method: str, path: str, *, transfer: bool = False, follow: bool = False,
              held: float = 0, resend: bool = False, make_body: Callable[[], MultipartBody] | None = None,
              **kwargs: Any) -> requests.Response:
        """Send one request to the manager that leads, trying each named manager in turn.

        A manager that cannot be reached (the request never left) is passed over for the
        next; a standby's answer sends the request to the leader it names, once. A
        connection that breaks after the request went out is passed over only when
        ``resend`` (the request may safely reach a manager twice). ``make_body`` gives a
        fresh body for each send (an upload's file is re-opened).
        """
        read_timeout: float | None = max(self.timeout, TRANSFER_TIMEOUT) if transfer else self.timeout
        read_timeout += held   # the manager holds the answer this long on purpose
        if follow:   # a followed log may stay silent as long as its action prints nothing
            read_timeout = None
        order = self.managers.order()
        tried: list[tuple[str, str]] = []
        unreached: set[str] = set()   # addresses that could not be reached in this request
        followed = False
        while order:
            target = order.pop(0)
            try:
                response = self._send_to(target, method, path, (self.timeout, read_timeout), make_body, kwargs)
            except _Unreached as exc:
                if exc.delivered and not resend:
                    raise ClientError(exc.message) from None
                if not self.fails_over and not tried:   # one manager: the error as it always was
                    raise ClientError(exc.message) from None
                tried.append((target.address, exc.reason))
                unreached.add(target.address)
                continue
            standby = standby_answer(response.status_code, path, _small_body(response, path))
            if standby is None:
                self.managers.current = target
                self.base_url, self.address = target.base_url, target.address
                return response
            response.close()
            self._standby_seen = True
            tried.append((target.address, standby["message"]))
            leader = None if followed else self.managers.leader_target(standby["leader"], target)
            if leader is not None and leader.address not in unreached:   # no second wait on a dead address
                followed = True
                order = [leader, *(t for t in order if t.address != leader.address)]
        raise ClientError(none_leads(tried))

    def _send_to(self, target: Target, method: str, path: str, timeout: tuple, make_body: Any,
                 kwargs: dict) -> requests.Response:
        body = make_body() if make_body is not None else None
        if body is not None:
            kwargs = {**kwargs, "data": body.encoder,
                      "headers": {**(kwargs.get("headers") or {}), "Content-Type": body.content_type}}
        address = target.address
        proxies = self._proxies.get(target.base_url)
        if proxies is None:   # $HTTP_PROXY and the like, unless $NO_PROXY names the manager
            proxies = self._proxies[target.base_url] = requests.utils.get_environ_proxies(target.base_url)
        try:
            return self.session.request(method, target.base_url + path, timeout=timeout,
                                        verify=self._verify, proxies=proxies, **kwargs)
        except requests.exceptions.ConnectTimeout:
            reason = f"timed out after {self.timeout:g} s"
            raise _Unreached(reason, f"cannot reach manager at {address}: {reason}") from None
        except requests.exceptions.ReadTimeout:
            reason = f"did not answer within {timeout[1]:g} s"
            raise ClientError(f"manager at {address} {reason}") from None
        except requests.exceptions.ConnectionError as exc:
            reason = _reason(exc)
            raise _Unreached(reason, f"cannot reach manager at {address}: {reason}",
                             delivered=not _never_sent(exc)) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:
            raise ClientError(f"invalid manager address {address!r}: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise ClientError(f"request to manager at {address} failed: {_reason(exc)}") from None
        finally:
            if body is not None:
                body.close()

    def _reply(self, response: requests.Response) -> Reply:
        data = parse_envelope(response.content)
        if data is None:
            raise ClientError(f"manager at {self.address} answered HTTP {response.status_code} with a "
                              f"non-JSON body")
        return Reply(data, response.status_code)

    def call(self, method: str, path: str, params: dict | None = None, json: Any = None, held: float = 0,
             headers: dict | None = None) -> Reply:
        """One JSON request; ``None`` values in ``params`` are left out of the query.

        ``held``: seconds the manager may keep the answer back on purpose (a wait), added
        to the read timeout.
        """
        query = {k: v for k, v in (params or {}).items() if v is not None}
        # a GET, or a create carrying an idempotency key, may reach a manager twice harmlessly
        resend = method == "GET" or "Idempotency-Key" in (headers or {})
        with self._send(method, path, params=query, json=json, held=held, headers=headers,
                        resend=resend) as response:
            return self._reply(response)

    def upload(self, method: str, path: str, fields: dict[str, str | None],
               file_path: str | None = None, progress: Progress | None = None) -> Reply:
        """A streamed multipart request; the file (if any) goes in field ``up_file``."""
        present = {k: v for k, v in fields.items() if v is not None}

        def make_body() -> MultipartBody:   # once per manager tried: the file is read again
            return MultipartBody(present, "up_file" if file_path else None, file_path, progress)

        with self._send(method, path, transfer=True, make_body=make_body) as response:
            return self._reply(response)

    def download(self, path: str, params: dict, dest: str, progress: Progress | None = None) -> Reply:
        """Stream a file answer to ``dest``; an error answer comes back as its envelope.

        The bytes go to ``dest + ".part"`` first and are renamed at the end, so ``dest``
        never holds half a file. On success the reply is a client-made
        ``{"result": "ok", "message": "", "file": dest, "size": n}``.
        """
        with self._send("GET", path, transfer=True, params=params, stream=True, resend=True) as response:
            content_type = response.headers.get("Content-Type", "")
            if response.status_code != 200 or content_type.startswith("application/json"):
                return self._reply(response)
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            partial = dest + ".part"
            done = 0
            try:
                with open(partial, "wb") as fp:
                    for chunk in response.iter_content(chunk_size=CHUNK_SIZE):
                        fp.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
                # urllib3 already refuses a short body; this catches what it cannot see. A
                # Content-Encoding makes Content-Length count encoded bytes, so skip it then.
                if total is not None and done != total and not response.headers.get("Content-Encoding"):
                    raise ClientError(f"download from manager at {self.address} ended after {done} "
                                      f"of {total} bytes")
                os.replace(partial, dest)
            except requests.exceptions.RequestException as exc:
                reason = _reason(exc)
                raise ClientError(f"download from manager at {self.address} broke off: {reason}") from None
            except OSError as exc:
                raise ClientError(f"cannot write {dest}: {exc.strerror or exc}") from None
            finally:
                if os.path.exists(partial):
                    os.remove(partial)
        return Reply({"result": "ok", "message": "", "file": dest, "size": done}, response.status_code)

    # -- routes (SPEC §3) ----------------------------------------------------------------

    def service_info(self) -> Reply:
        """GET ``/``: ``{"message": "LitePipeline manager service"}``."""
        return self.call("GET", "/")

    def cluster_info(self) -> Reply:
        """GET ``/cluster/info``: ``version`` and ``info: {number_of_nodes, nodes}``."""
        return self.call("GET", "/cluster/info")

    def app_create(self, file_path: str, name: str, description: str = "",
                   progress: Progress | None = None) -> Reply:
        """POST ``/app/create`` with the tarball at ``file_path``: ``app_id``."""
        fields = {"name": name, "description": description}
        return self.upload("POST", "/app/create", fields, file_path, progress)

    def app_list(self, offset: int = 0, limit: int = 0) -> Reply:
        """GET ``/app/list``: ``apps``. ``limit=0`` means no limit."""
        return self.call("GET", "/app/list", {"offset": offset, "limit": limit})

    def app_info(self, app_id: str, config: bool = False) -> Reply:
        """GET ``/app/info``: ``app_info`` (with ``config``, ``app_config`` too)."""
        return self.call("GET", "/app/info", {"app_id": app_id, "config": "true" if config else None})

    def app_update(self, app_id: str, file_path: str | None = None, name: str | None = None,
                   description: str | None = None, progress: Progress | None = None) -> Reply:
        """PUT ``/app/update``; fields left ``None`` are not sent: ``app_id``."""
        fields = {"app_id": app_id, "name": name, "description": description}
        return self.upload("PUT", "/app/update", fields, file_path, progress)

    def app_delete(self, app_id: str) -> Reply:
        """DELETE ``/app/delete``."""
        return self.call("DELETE", "/app/delete", {"app_id": app_id})

    def app_download(self, app_id: str, dest: str, progress: Progress | None = None) -> Reply:
        """GET ``/app/download`` streamed into the file ``dest``; see :meth:`download`."""
        reply = self.download("/app/download", {"app_id": app_id}, dest, progress)
        if reply.ok:
            reply["app_id"] = app_id
        return reply

    def task_create(self, app_id: str, task_name: str, input_data: dict | None = None,
                    wait: float | None = None, idempotency_key: str | None = None) -> Reply:
        """POST ``/task/create``: ``task_id``; with ``wait``, answered once the task has finished
        (or after ``wait`` seconds), with ``task_info`` too. A repeated ``idempotency_key``
        (within 24 h) gets the first request's task instead of a new one."""
        body: dict[str, Any] = {"app_id": app_id, "task_name": task_name, "input_data": input_data or {}}
        if wait:
            body["wait"] = wait
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.call("POST", "/task/create", json=body, held=wait or 0, headers=headers)

    def task_list(self, offset: int = 0, limit: int = 0, stage: str | None = None,
                  app_id: str | None = None, status: str | None = None, work_id: str | None = None) -> Reply:
        """GET ``/task/list``: ``tasks``; filters left ``None`` are not sent."""
        params = {"offset": offset, "limit": limit, "stage": stage, "app_id": app_id, "status": status,
                  "work_id": work_id}
        return self.call("GET", "/task/list", params)

    def task_info(self, task_id: str, wait: float | None = None) -> Reply:
        """GET ``/task/info``: ``task_info`` (and ``task_running_info`` while running).

        ``wait``: seconds the manager may hold the answer until the task has finished.
        """
        return self.call("GET", "/task/info", {"task_id": task_id, "wait": wait}, held=wait or 0)

    def task_run(self, app_id: str, task_name: str, input_data: dict | None = None,
                 timeout: float | None = None, step: float = 60, idempotency_key: str | None = None) -> Reply:
        """Create a task and wait for it like :meth:`task_wait`: one request when it ends
        within ``step`` seconds. The reply has ``task_id`` and ``task_info``.

        With several managers named, the create carries an idempotency key (one is made
        when none is given), so a create whose manager is lost mid-way is sent again to
        the new leader and gets the same task.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if idempotency_key is None and self.managers.several:
            idempotency_key = str(uuid.uuid4())
        created = self._riding_out(lambda: self.task_create(
            app_id, task_name, input_data, wait=step if timeout is None else min(step, timeout) or None,
            idempotency_key=idempotency_key), resendable=idempotency_key is not None)
        if not created.ok or (created.get("task_info") or {}).get("stage") == "finished":
            return created
        left = None if deadline is None else max(deadline - time.monotonic(), 0)
        if left == 0 and "task_info" in created:
            return created
        reply = self.task_wait(created["task_id"], left, step)
        reply.setdefault("task_id", created["task_id"])
        return reply

    def task_wait(self, task_id: str, timeout: float | None = None, step: float = 60) -> Reply:
        """``task_info`` once the task has finished (or ``timeout`` seconds have passed; None:
        no limit), asking the manager to hold each answer up to ``step`` seconds. A wait
        that loses its manager follows the new leader (see :meth:`_riding_out`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = step if deadline is None else min(step, max(deadline - time.monotonic(), 0))
            reply = self._riding_out(lambda wait=wait: self.task_info(task_id, wait=wait or None))
            finished = (reply.get("task_info") or {}).get("stage") == "finished"
            if not reply.ok or finished or (deadline is not None and time.monotonic() >= deadline):
                return reply

    def _riding_out(self, request: Callable[[], Reply], resendable: bool = True) -> Reply:
        """``request()``, tried again for up to :attr:`failover_wait` seconds while no manager
        answers as the leader, when more than one manager may lead (a fail-over takes a
        lease's length); else once."""
        given_up_at: float | None = None
        while True:
            try:
                reply = request()
            except ClientError:
                if not (resendable and self.fails_over):
                    raise
                now = time.monotonic()
                given_up_at = given_up_at or now + self.failover_wait
                if now >= given_up_at:
                    raise
                time.sleep(FAILOVER_RETRY)
                continue
            return reply

    def task_delete(self, task_id: str) -> Reply:
        """DELETE ``/task/delete``."""
        return self.call("DELETE", "/task/delete", {"task_id": task_id})

    def task_stop(self, task_id: str, signal: int = -15) -> Reply:
        """PUT ``/task/stop`` with ``signal`` -15 (SIGTERM) or -9 (SIGKILL)."""
        return self.call("PUT", "/task/stop", json={"task_id": task_id, "signal": signal})

    def task_log(self, task_id: str, name: str, out: BinaryIO, follow: bool = False) -> Reply:
        """GET ``/task/log``: an action's output written to ``out`` as it arrives (flushed per chunk).

        With ``follow`` the call returns when the action has ended. On success the reply is
        a client-made ``{"result": "ok", "message": "", "size": n}``; an error answer comes
        back as its envelope (nothing written to ``out``).
        """
        params = {"task_id": task_id, "name": name, "follow": 1 if follow else 0}
        done = 0
        with self._send("GET", "/task/log", transfer=True, follow=follow, params=params,
                        stream=True, resend=True) as response:
            content_type = response.headers.get("Content-Type", "")
            if response.status_code != 200 or content_type.startswith("application/json"):
                return self._reply(response)
            try:
                for chunk in response.iter_content(chunk_size=None):
                    out.write(chunk)
                    out.flush()
                    done += len(chunk)
            except requests.exceptions.RequestException as exc:
                raise ClientError(f"log from manager at {self.address} broke off: {_reason(exc)}") from None
        return Reply({"result": "ok", "message": "", "size": done}, response.status_code)

    def task_workspace(self, task_id: str, dest: str, name: str | None = None,
                       progress: Progress | None = None) -> Reply:
        """GET ``/task/workspace`` (one tar.gz of the task's or one action's workspaces) into ``dest``."""
        params = {"task_id": task_id}
        if name:
            params["name"] = name
        reply = self.download("/task/workspace", params, dest, progress)
        if reply.ok:
            reply["task_id"] = task_id
        return reply

    def task_workspace_delete(self, task_id: str) -> Reply:
        """DELETE ``/task/workspace``: the task's workspaces on every node: ``nodes``."""
        return self.call("DELETE", "/task/workspace", {"task_id": task_id})

    def task_rerun(self, task_id: str) -> Reply:
        """POST ``/task/rerun``: a new task with the same application and input: ``task_id``."""
        return self.call("POST", "/task/rerun", json={"task_id": task_id})

    def task_recover(self, task_id: str) -> Reply:
        """PUT ``/task/recover``: a failed or killed task runs again in place."""
        return self.call("PUT", "/task/recover", json={"task_id": task_id})

    # -- versions (SPEC §8, §9) --------------------------------------------------------

    def history_list(self, kind: str, owner_id: str, offset: int = 0, limit: int = 0) -> Reply:
        """GET ``/{app,venv}/history/list``: ``app_histories`` / ``venv_histories``."""
        params = {f"{kind}_id": owner_id, "offset": offset, "limit": limit}
        return self.call("GET", f"/{kind}/history/list", params)

    def history_info(self, kind: str, owner_id: str, history_id: str, config: bool = False) -> Reply:
        """GET ``/{app,venv}/history/info``: ``history_info`` (``history_config`` with ``config``)."""
        return self.call("GET", f"/{kind}/history/info", {f"{kind}_id": owner_id, "history_id": history_id,
                                                           "config": "true" if config else None})

    def history_activate(self, kind: str, owner_id: str, history_id: str) -> Reply:
        """PUT ``/{app,venv}/history/activate``: that version becomes the active one."""
        body = {f"{kind}_id": owner_id, "history_id": history_id}
        return self.call("PUT", f"/{kind}/history/activate", json=body)

    def history_delete(self, kind: str, owner_id: str, history_id: str) -> Reply:
        """DELETE ``/{app,venv}/history/delete``."""
        params = {f"{kind}_id": owner_id, "history_id": history_id}
        return self.call("DELETE", f"/{kind}/history/delete", params)

    def venv_create(self, file_path: str, name: str, description: str = "",
                    progress: Progress | None = None) -> Reply:
        """POST ``/venv/create`` with a venv-pack tarball: ``venv_id``."""
        fields = {"name": name, "description": description}
        return self.upload("POST", "/venv/create", fields, file_path, progress)

    def venv_update(self, venv_id: str, file_path: str | None = None, name: str | None = None,
                    description: str | None = None, progress: Progress | None = None) -> Reply:
        """PUT ``/venv/update``; fields left ``None`` are not sent: ``venv_id``."""
        fields = {"venv_id": venv_id, "name": name, "description": description}
        return self.upload("PUT", "/venv/update", fields, file_path, progress)

    def venv_list(self, offset: int = 0, limit: int = 0) -> Reply:
        """GET ``/venv/list``: ``venvs``, ``total``."""
        return self.call("GET", "/venv/list", {"offset": offset, "limit": limit})

    def venv_info(self, venv_id: str) -> Reply:
        """GET ``/venv/info``: ``venv_info``."""
        return self.call("GET", "/venv/info", {"venv_id": venv_id})

    def venv_delete(self, venv_id: str) -> Reply:
        """DELETE ``/venv/delete``."""
        return self.call("DELETE", "/venv/delete", {"venv_id": venv_id})

    def venv_download(self, venv_id: str, dest: str, sha1: str | None = None,
                      progress: Progress | None = None) -> Reply:
        """GET ``/venv/download`` streamed into the file ``dest``; see :meth:`download`."""
        params = {"venv_id": venv_id}
        if sha1:
            params["sha1"] = sha1
        reply = self.download("/venv/download", params, dest, progress)
        if reply.ok:
            reply["venv_id"] = venv_id
        return reply

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ManagerClient:  # noqa: PYI034 (typing.Self needs 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
