"""What lives on the nodes, seen from the manager: action logs and task workspaces.

Logs and workspaces stay on the node that ran the action; the manager finds that node
from the action's row (``node_id``, or the node of its last attempt while it waits for a
retry) and relays the node's answer chunk by chunk, never holding it whole:

- ``stream_log``: the node's ``GET /action/log`` (optionally followed live).
- ``stream_workspace``: every node holding actions of the task is asked for its
  ``GET /workspace/download`` tar, one after the other; a thread re-emits the members into
  one ``tar.gz`` (:func:`merge_tars`), fed and drained through bounded channels. Only the
  directories of actions whose row names that node are taken from it (an earlier attempt's
  leftovers on another node are not). Every needed node must be registered: a missing one
  is a 404 naming it (ask for one action with ``name`` to get what is reachable).
- ``delete``/``forget``: ``DELETE /workspace/delete`` on every node that ran an attempt of
  the task.

A node's error envelope (e.g. ``WorkspaceNotExists``) is passed on with its status; a node
that cannot be reached is ``502 NodeUnreachable``. Once bytes have been sent, an error can
only cut the stream short, which the client sees as a broken download.
"""
from __future__ import annotations

import asyncio
import logging
import tarfile
import threading
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from litepipeline.common.errors import ActionNotExists, LiteError, OperationFailed, parse_envelope
from litepipeline.common.states import Stage
from litepipeline.common.web import auth_headers
from litepipeline.common.streaming import EOF, Channel, ChannelAborted, ChannelReader, ChannelWriter

if TYPE_CHECKING:
    from litepipeline.manager.manager import Manager

LOG = logging.getLogger(__name__)
OnChunk = Callable[[bytes], Awaitable[None]]
TRANSFER_TIMEOUT = 3600.0      # a whole log or workspace from one node
FOLLOW_TIMEOUT = 0             # following a log: no limit (the node ends it with the action)
CALL_TIMEOUT = 10.0            # a workspace delete is a rename on the node
MAX_BODY = 1 << 50             # streamed answers are not buffered: no practical size limit
ERROR_BODY_LIMIT = 64 * 1024
FOLLOW_START_RETRIES = 10      # a just-dispatched action may not have reached its node yet


class DownstreamGone(Exception):
    """Ends a node's answer early because its reader went away (raised into tornado's client)."""


class _QuietRelayEnd(logging.Filter):
    """tornado logs whatever a streaming callback raises; the end of a relay is no error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DownstreamGone))


logging.getLogger("tornado.application").addFilter(_QuietRelayEnd())


class NodeNotExists(LiteError):
    name = "NodeNotExists"
    http_status = 404


class ActionNotStarted(LiteError):
    name = "ActionNotStarted"
    http_status = 404


class NodeError(LiteError):
    """A node's answer passed on: its error name and status, or 502 when it could not answer."""

    def __init__(self, name: str, http_status: int, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.http_status = http_status


def node_error(node_id: str, code: int, body: bytes) -> NodeError:
    """The error to pass on for a node's non-200 answer."""
    data = parse_envelope(body)
    if code == 401:
        return NodeError("NodeUnauthorized", 502, f"node {node_id} refused the manager's auth_token")
    if isinstance(data, dict) and isinstance(data.get("result"), str) and 400 <= code < 500:
        return NodeError(data["result"], code, str(data.get("message") or ""))
    message = data.get("message") if isinstance(data, dict) else None
    detail = f": {message}" if message else ""
    return NodeError("NodeError", 502, f"node {node_id} answered HTTP {code}{detail}")


def action_node(action: dict, attempts: list[dict]) -> Optional[str]:
    """The node holding ``action``'s workspace: its row's node, else its last attempt's."""
    if action.get("node_id"):
        return action["node_id"]
    for attempt in reversed(attempts):
        if attempt["name"] == action["name"] and attempt.get("node_id"):
            return attempt["node_id"]
    return None


def member_filter(task_id: str, names: Optional[set]) -> Callable[[str], bool]:
    """Keeps ``<task_id>/<name>/...`` members (of ``names`` only, when given)."""
    def keep(member_name: str) -> bool:
        if member_name.startswith("/"):
            return False
        parts = [p for p in member_name.split("/") if p not in ("", ".")]
        if len(parts) < 2 or parts[0] != task_id or ".." in parts:
            return False
        return names is None or parts[1] in names

    return keep


def merge_tars(sources: list[tuple[Channel, Callable[[str], bool]]], out: Channel) -> None:
    """Thread body: the kept members of each source's tar stream, in order, as one tar.gz in ``out``."""
    writer = ChannelWriter(out)
    try:
        with tarfile.open(fileobj=writer, mode="w|gz", format=tarfile.PAX_FORMAT) as dest:
            for channel, keep in sources:
                reader = ChannelReader(channel)
                with tarfile.open(fileobj=reader, mode="r|") as src:
                    for member in src:
                        if not keep(member.name):
                            continue
                        dest.addfile(member, src.extractfile(member) if member.isreg() else None)
                while reader.read(256 * 1024):   # the tar's padding after its end: let the feeder finish
                    pass
        writer.close()
    except ChannelAborted as exc:
        out.abort(exc.__cause__ or exc)
    except tarfile.TarError as exc:
        out.abort(NodeError("NodeError", 502, f"a node sent a broken workspace archive: {exc}"))
    except BaseException as exc:  # noqa: BLE001 - reported to the loop side
        out.abort(exc)


class NodeStreams:
    """Logs and workspaces of tasks, fetched from the nodes; owned by the :class:`Manager`."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self._http: Optional[AsyncHTTPClient] = None
        self._feeders: set[asyncio.Future] = set()

    @property
    def http(self) -> AsyncHTTPClient:
        if self._http is None:   # created on the running loop, apart from the dispatcher's client
            self._http = AsyncHTTPClient(force_instance=True, max_clients=256, max_body_size=MAX_BODY)
        return self._http

    # -- where things are ----------------------------------------------------------------
    async def _task(self, task_id: str) -> tuple[dict, list[dict], list[dict]]:
        manager = self.manager
        row = await manager.task_row(task_id)
        actions = await manager.db(manager.store.get_actions, task_id)
        attempts = await manager.db(manager.store.get_attempts, task_id)
        return row, actions, attempts

    async def holders(self, task_id: str) -> set[str]:
        """Every node that ran an attempt of the task (so may hold its workspaces)."""
        manager = self.manager
        actions = await manager.db(manager.store.get_actions, task_id)
        attempts = await manager.db(manager.store.get_attempts, task_id)
        return {r["node_id"] for r in actions + attempts if r.get("node_id")}

    def _address(self, node_id: str, what: str) -> str:
        address = self.manager.cluster.address(node_id)
        if address is None:
            raise NodeNotExists(f"node {node_id}, which holds {what}, is not registered (down or removed)")
        return address

    # -- one streamed GET ------------------------------------------------------------------
    async def _get(self, node_id: str, address: str, path: str, params: dict, on_chunk: OnChunk,
                   timeout: float) -> None:
        """Relay a node's 200 body to ``on_chunk``; a non-200 answer raises its :class:`NodeError`."""
        state: dict[str, Any] = {"code": None, "downstream": None}
        error_body = bytearray()

        def on_header(line: str) -> None:
            if state["code"] is None and line.startswith("HTTP/"):
                try:
                    state["code"] = int(line.split()[1])
                except (IndexError, ValueError):
                    state["code"] = 0

        async def on_body(chunk: bytes) -> None:
            if state["code"] != 200:
                if len(error_body) < ERROR_BODY_LIMIT:
                    error_body.extend(chunk)
                return
            try:
                await on_chunk(chunk)
            except BaseException as exc:  # noqa: BLE001 - whatever it is, it is re-raised below
                state["downstream"] = exc   # re-raised below, once tornado has closed the connection
                raise DownstreamGone() from None

        base = self.manager.cluster.url(node_id) or f"http://{address}"
        request = HTTPRequest(f"{base}{path}?{urlencode(params)}", headers=auth_headers(
            self.manager.config.auth_token), connect_timeout=5, request_timeout=timeout,
            header_callback=on_header, streaming_callback=on_body)
        try:
            response = await self.http.fetch(request, raise_error=False)
        except Exception as exc:  # noqa: BLE001
            if state["downstream"] is not None:
                raise state["downstream"] from None
            raise NodeError("NodeUnreachable", 502, f"node {node_id} at {address}: {exc}") from None
        if response.code != 200:
            if response.code == 599:
                raise NodeError("NodeUnreachable", 502, f"node {node_id} at {address}: {response.error}")
            raise node_error(node_id, response.code, bytes(error_body))

    # -- logs --------------------------------------------------------------------------------
    async def stream_log(self, task_id: str, name: str, follow: bool, on_chunk: OnChunk) -> None:
        """An action's stdout.data from its node; ``follow`` keeps it open while the action runs."""
        _, actions, attempts = await self._task(task_id)
        action = next((a for a in actions if a["name"] == name), None)
        if action is None:
            raise ActionNotExists(f"task {task_id} has no action '{name}'")
        node_id = action_node(action, attempts)
        if node_id is None:
            raise ActionNotStarted(f"action '{name}' of task {task_id} has not run (it has no log yet)")
        address = self._address(node_id, f"the log of action '{name}' of task {task_id}")
        running = action["stage"] == Stage.RUNNING.value
        params = {"task_id": task_id, "name": name, "offset": 0, "follow": 1 if follow else 0}
        sent = False

        async def relay(chunk: bytes) -> None:
            nonlocal sent
            sent = True
            await on_chunk(chunk)

        tries = FOLLOW_START_RETRIES if follow and running else 1
        for left in range(tries - 1, -1, -1):
            try:
                await self._get(node_id, address, "/action/log", params, relay,
                                FOLLOW_TIMEOUT if follow else TRANSFER_TIMEOUT)
                return
            except NodeError as exc:
                if sent or left == 0 or exc.name != "WorkspaceNotExists":
                    raise
            await asyncio.sleep(0.2)

    # -- workspaces ----------------------------------------------------------------------------
    async def workspace_plan(self, task_id: str, name: Optional[str]) -> list[tuple[str, str, set]]:
        """``[(node_id, address, action names)]`` to fetch, every node checked to be registered."""
        _, actions, attempts = await self._task(task_id)
        if name is not None:
            actions = [a for a in actions if a["name"] == name]
            if not actions:
                raise ActionNotExists(f"task {task_id} has no action '{name}'")
        by_node: dict[str, set] = {}
        for action in actions:
            node_id = action_node(action, attempts)
            if node_id is not None:
                by_node.setdefault(node_id, set()).add(action["name"])
        if not by_node:
            what = f"action '{name}' of task {task_id} has" if name else f"no action of task {task_id} has"
            raise ActionNotStarted(f"{what} not run (there is no workspace yet)")
        missing = [n for n in by_node if self.manager.cluster.address(n) is None]
        if missing:
            held = "; ".join(f"node {n} (actions {', '.join(sorted(by_node[n]))})" for n in sorted(missing))
            raise NodeNotExists(f"workspaces of task {task_id} are on nodes that are not registered: {held}")
        return [(n, self.manager.cluster.address(n), names) for n, names in sorted(by_node.items())]

    async def stream_workspace(self, task_id: str, name: Optional[str], on_chunk: OnChunk) -> None:
        """One tar.gz of the task's workspaces (or one action's), merged from every node holding them."""
        plan = await self.workspace_plan(task_id, name)
        out = Channel()
        sources = [Channel() for _ in plan]
        filters = [member_filter(task_id, names) for _, _, names in plan]
        thread = threading.Thread(target=merge_tars, args=(list(zip(sources, filters)), out), daemon=True,
                                  name=f"workspace-merge-{task_id}")
        thread.start()
        feeder = asyncio.ensure_future(self._feed(task_id, name, plan, sources))
        self._feeders.add(feeder)
        feeder.add_done_callback(self._feeders.discard)
        try:
            while True:
                try:
                    chunk = await out.get()
                except ChannelAborted:
                    error = out.error
                    if isinstance(error, LiteError):
                        raise error from None
                    raise
                if chunk == EOF:
                    return
                await on_chunk(chunk)
        finally:
            out.abort()
            for source in sources:
                source.abort()   # ends the feeder's fetch at its next chunk (a cancel would leak the request)

    async def _feed(self, task_id: str, name: Optional[str], plan: list, sources: list[Channel]) -> None:
        for (node_id, address, _), source in zip(plan, sources):
            params = {"task_id": task_id}
            if name is not None:
                params["name"] = name
            try:
                await self._get(node_id, address, "/workspace/download", params, source.put, TRANSFER_TIMEOUT)
                await source.put(EOF)
            except ChannelAborted:
                return   # the merge ended (the client went away or another node failed)
            except Exception as exc:  # noqa: BLE001 - handed to the merge, which ends the stream
                source.abort(exc)
                return

    async def delete_on(self, task_id: str, node_ids: set) -> list[str]:
        """``DELETE /workspace/delete`` on each node; returns one line per failure."""
        async def one(node_id: str) -> Optional[str]:
            address = self.manager.cluster.address(node_id)
            if address is None:
                return f"node {node_id}: not registered"
            base = self.manager.cluster.url(node_id) or f"http://{address}"
            request = HTTPRequest(f"{base}/workspace/delete?{urlencode({'task_id': task_id})}",
                                  method="DELETE", headers=auth_headers(self.manager.config.auth_token),
                                  connect_timeout=5, request_timeout=CALL_TIMEOUT)
            try:
                response = await self.http.fetch(request, raise_error=False)
            except Exception as exc:  # noqa: BLE001
                return f"node {node_id}: {exc}"
            if response.code == 200:
                return None
            return f"node {node_id}: {node_error(node_id, response.code, response.body or b'').message}"

        results = await asyncio.gather(*(one(n) for n in sorted(node_ids)))
        return [r for r in results if r]

    async def delete(self, task_id: str) -> list[str]:
        """Remove a finished task's workspaces on every node; returns the nodes asked."""
        row = await self.manager.task_row(task_id)
        if row["stage"] != Stage.FINISHED.value:
            raise OperationFailed(f"task {task_id} is {row['stage']}; its workspaces can be deleted once "
                                  f"it has finished")
        nodes = await self.holders(task_id)
        failures = await self.delete_on(task_id, nodes)
        if failures:
            raise OperationFailed(f"workspaces of task {task_id} not deleted on {'; '.join(failures)}")
        LOG.info("workspaces of task %s deleted on %d node(s)", task_id, len(nodes))
        return sorted(nodes)

    async def forget(self, task_id: str, node_ids: set) -> None:
        """Best effort removal after ``task delete``: failures are logged only."""
        if not node_ids:
            return
        for failure in await self.delete_on(task_id, node_ids):
            LOG.warning("workspaces of deleted task %s not removed: %s", task_id, failure)
