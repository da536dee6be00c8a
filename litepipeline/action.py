"""Helper for action scripts: read ``input.data``, write ``output.data``.

Standard library only: this module is imported inside applications' own venvs
(and PyInstaller binaries), which must not need LitePipeline's dependencies.

A node runs an action as ``cd APP_DIR && MAIN WORKSPACE``; the script reads its
input from ``WORKSPACE/input.data`` and may write ``WORKSPACE/output.data``::

    from litepipeline.action import Action

    workspace, input_data = Action.get_input()        # workspace = sys.argv[1]
    count = input_data.get("count", 3)
    Action.set_output(
        data={"count": count},
        actions=[                                     # optional: grow the task's DAG
            Action("second_%03d" % i, "python second.py", env="venvs/venv",
                   input_data={"index": i}, to_action="third")
            for i in range(count)
        ],
    )
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

INPUT_FILE = "input.data"
OUTPUT_FILE = "output.data"

__all__ = ["INPUT_FILE", "OUTPUT_FILE", "Action"]


def _check_name(value: Any, what: str) -> str:
    """Return ``value`` if it is a usable action name, else raise ValueError.

    Names become directory names on the node (one workspace per action), so path
    separators, ``..`` and NUL are refused here rather than at run time.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if "/" in value or "\\" in value or ".." in value or "\x00" in value:
        raise ValueError(f"{what} must not contain '/', '\\', '..' or NUL: {value!r}")
    return value


def _check_number(value: Any, what: str, *, integer: bool = False, positive: bool = False) -> Any:
    """Validate an optional numeric field (bool is refused although it is an int)."""
    if value is None:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ValueError(f"{what} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{what} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return value


def _check_action_dict(action: dict) -> dict:
    """Check the fields a plain-dict action shares with :class:`Action`; return a copy."""
    _check_name(action.get("name"), "action name")
    main = action.get("main")
    if not isinstance(main, str) or not main.strip():
        raise ValueError(f"action main must be a non-empty string, got {main!r}")
    condition = action.get("condition", [])
    if isinstance(condition, str) or not isinstance(condition, (list, tuple)):
        raise ValueError(f"action condition must be a list of names, got {condition!r}")
    for upstream in condition:
        _check_name(upstream, "condition entry")
    if action.get("to_action") is not None:
        _check_name(action["to_action"], "to_action")
    return dict(action)


def _workspace(workspace: str | os.PathLike | None) -> str:
    """The workspace argument, defaulting to the one the node passes as ``argv[1]``."""
    if workspace is not None:
        return os.fspath(workspace)
    if len(sys.argv) < 2:
        raise ValueError("no workspace given: the node runs actions as 'MAIN WORKSPACE'")
    return sys.argv[1]


class Action:
    """An action generated at run time (an entry of ``output.data``'s ``actions``).

    Args:
        name: unique action name within the task (no ``/``, ``\\``, ``..`` or NUL).
        main: command run in the application directory, e.g. ``"python second.py"``.
        condition: names of actions that must succeed before this one runs.
        env: venv-pack env path relative to the application top directory.
        input_data: extra input for the action (a JSON object).
        to_action: an existing action that must also wait for this one and
            receives its output.
        timeout: seconds before the node kills the action (extension; omitted when None).
        retries: how many times a failed action is retried (extension; omitted when None).
        retry_delay: seconds between retries (extension; omitted when None).
        target: where it may run, e.g. ``{"labels": {"gpu": "a100"}}`` (keys ``labels``,
            ``node_id``, ``node_ip``, ``platform``; checked by the manager; omitted when None).
    """

    def __init__(
        self,
        name: str,
        main: str,
        condition: Iterable[str] | None = None,
        env: str | None = None,
        input_data: dict | None = None,
        to_action: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        retry_delay: float | None = None,
        target: dict | None = None,
    ) -> None:
        if condition is None:
            condition = []
        if isinstance(condition, str):
            # A bare string would otherwise be split into one-letter names.
            raise ValueError(f"condition must be a list of names, got {condition!r}")
        if input_data is None:
            input_data = {}
        if not isinstance(input_data, dict):
            raise ValueError(f"input_data must be a dict, got {type(input_data).__name__}")
        if env is not None:
            if not isinstance(env, str) or not env or "\x00" in env:
                raise ValueError(f"env must be a non-empty string, got {env!r}")
            if env.startswith("/") or ".." in env.replace("\\", "/").split("/"):
                raise ValueError(f"env must be a path inside the application: {env!r}")
        checked = _check_action_dict(
            {"name": name, "main": main, "condition": list(condition), "to_action": to_action}
        )
        self.name: str = checked["name"]
        self.main: str = checked["main"]
        self.condition: list[str] = checked["condition"]
        self.env = env
        self.input_data: dict = dict(input_data)
        self.to_action = to_action
        self.timeout = _check_number(timeout, "timeout", positive=True)
        self.retries = _check_number(retries, "retries", integer=True)
        self.retry_delay = _check_number(retry_delay, "retry_delay")
        if target is not None and not isinstance(target, dict):
            raise ValueError(f"target must be a dict, got {type(target).__name__}")
        self.target = dict(target) if target is not None else None

    def to_dict(self) -> dict:
        """The JSON-ready dict for ``output.data``; unset optional keys are omitted."""
        result: dict[str, Any] = {
            "name": self.name,
            "main": self.main,
            "condition": list(self.condition),
            "input_data": dict(self.input_data),
        }
        for key in ("env", "to_action", "timeout", "retries", "retry_delay", "target"):
            value = getattr(self, key)
            if value is not None:
                result[key] = value
        return result

    def __repr__(self) -> str:
        return f"Action({self.to_dict()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Action):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    @staticmethod
    def get_input(workspace: str | os.PathLike | None = None) -> tuple[str, dict]:
        """Return ``(workspace, input_data)``; workspace defaults to ``sys.argv[1]``.

        ``input_data`` holds ``task_id`` and ``workspace`` plus the task's input for an
        action without conditions, or one key per upstream action with its output data.
        """
        path = _workspace(workspace)
        with open(os.path.join(path, INPUT_FILE), encoding="utf-8") as f:
            return path, json.load(f)

    @staticmethod
    def set_output(
        data: Any = None,
        actions: Iterable[Action | dict] | None = None,
        workspace: str | os.PathLike | None = None,
    ) -> str:
        """Write ``WORKSPACE/output.data`` atomically and return its path.

        Args:
            data: this action's result (a JSON object; None means ``{}``), handed to
                downstream actions under this action's name.
            actions: :class:`Action` objects or plain dicts to add to the task.
            workspace: defaults to ``sys.argv[1]``.
        """
        path = _workspace(workspace)
        entries = []
        for action in actions or []:
            if isinstance(action, Action):
                entries.append(action.to_dict())
            elif isinstance(action, dict):
                entries.append(_check_action_dict(action))
            else:
                raise TypeError(f"actions must be Action objects or dicts, got {type(action).__name__}")
        # Serialize before touching the disk so a bad value leaves no partial file.
        payload = json.dumps({"data": {} if data is None else data, "actions": entries})
        # The node reads output.data after the process exits; writing a temp file in the
        # same directory and renaming it means a crash never leaves half a JSON document.
        fd, tmp = tempfile.mkstemp(prefix=f".{OUTPUT_FILE}.", suffix=".tmp", dir=path)
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the result from other readers
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            target = os.path.join(path, OUTPUT_FILE)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return target
