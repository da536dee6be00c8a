"""Application tarballs: safe inspection and extraction, configuration.json → validated DAG.

The manager inspects every upload with :func:`inspect_tarball` before recording it; the
node extracts with :func:`safe_extract`, which applies the same member rules again (a node
never trusts bytes just because the manager accepted them). Every rejection is an
:class:`InvalidApplication` whose message names the rule that failed.
"""
from __future__ import annotations

import difflib
import json
import os
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from litepipeline.common.envtar import EnvChecker, check_env_stream
from litepipeline.common.errors import InvalidApplication
from litepipeline.common.targets import BadTarget, parse_target
from litepipeline.common.textcheck import find_poison, poison_message

CONFIG_NAME = "configuration.json"
MAX_CONFIG_SIZE = 4 * 1024 * 1024
MAX_MEMBERS = 200_000
MAX_NAME_LENGTH = 200
MAX_PATH_LENGTH = 1024
# an action's env that is a venv id names a venv deployed on its own (``/venv/create``), not
# a tarball inside the application
VENV_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ACTION_KEYS = ("name", "main", "condition", "env", "input_data", "to_action", "timeout", "retries",
               "retry_delay")
# keys an action may carry: ours, plus 0.1.5's placement keys (SPEC §14), which its
# applications already use; anything else is a typo and refused (it would change what runs)
KNOWN_ACTION_KEYS = ACTION_KEYS + ("target", "target_env")
# configuration.json's top level: ours plus 0.1.5's forms (SPEC §10, §13a)
KNOWN_TOP_KEYS = ("actions", "on_success", "on_fail", "event_actions", "output_action")
#: default limit on the actions of one application and of one task (generated ones included)
MAX_ACTIONS = 10_000


@dataclass
class ActionSpec:
    """One action as configured or generated; validated, JSON-ready."""

    name: str
    main: str
    condition: list = field(default_factory=list)
    env: Optional[str] = None
    input_data: dict = field(default_factory=dict)
    to_action: Optional[str] = None
    timeout: Optional[float] = None
    retries: int = 0
    retry_delay: float = 0
    #: where it may run (normalised, see :mod:`litepipeline.common.targets`); None: anywhere
    target: Optional[dict] = None

    def to_dict(self) -> dict:
        """The action as configuration.json states it (works keep their pinned specs this way)."""
        out = {"name": self.name, "main": self.main, "condition": list(self.condition), "env": self.env,
               "input_data": self.input_data, "to_action": self.to_action, "timeout": self.timeout,
               "retries": self.retries, "retry_delay": self.retry_delay}
        if self.target is not None:
            out["target"] = self.target
        return out


@dataclass
class AppSpec:
    """A validated configuration.json: the DAG's actions plus the event actions."""

    actions: list
    on_success: Optional[str] = None
    on_fail: Optional[str] = None
    #: the action whose output ``data`` is the task's result in a workflow (0.1.5's key)
    output_action: Optional[str] = None

    def dag_actions(self) -> list:
        """Actions that run as the task's DAG (event actions excluded)."""
        events = {self.on_success, self.on_fail}
        return [a for a in self.actions if a.name not in events]

    def by_name(self, name: str) -> Optional[ActionSpec]:
        return next((a for a in self.actions if a.name == name), None)


@dataclass
class TarballInfo:
    """What :func:`inspect_tarball` learned: the top directory, unpacked size and the spec."""

    top_dir: str
    unpacked_size: int
    spec: AppSpec


def is_venv_id(env: Optional[str]) -> bool:
    """True when an action's ``env`` names a venv by id rather than a path in the application."""
    return bool(env) and VENV_ID_RE.fullmatch(env) is not None


def check_plain_name(name: Any, what: str = "action name") -> str:
    """A name usable as one path component: no separators, no '..', no NUL, not empty."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidApplication(f"{what} must be a non-empty string, got {name!r}")
    if "/" in name or "\\" in name or "\x00" in name or name in (".", "..") or ".." in name:
        raise InvalidApplication(f"{what} {name!r} must be a plain name (no '/', '\\' or '..')")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidApplication(f"{what} {name[:40]!r}... is longer than {MAX_NAME_LENGTH} characters")
    return name


def check_relative_path(path: Any, what: str) -> str:
    """A relative path that stays inside the application directory."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidApplication(f"{what} must be a non-empty string, got {path!r}")
    if len(path) > MAX_PATH_LENGTH:   # the store keeps at most this much
        raise InvalidApplication(f"{what} {path[:40]!r}... is longer than {MAX_PATH_LENGTH} characters")
    if path.startswith("/") or "\\" in path or "\x00" in path:
        raise InvalidApplication(f"{what} {path!r} must be a relative path inside the application")
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../") or ".." in norm.split("/") or norm == ".":
        raise InvalidApplication(f"{what} {path!r} points outside the application")
    return norm


def check_keys(raw: dict, known: tuple, what: str) -> None:
    """Refuse a key of ``raw`` that is not in ``known``, naming the nearest known key."""
    for key in raw:
        if key in known:
            continue
        hint = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        suggestion = f" (did you mean {hint[0]}?)" if hint else f" (known keys: {', '.join(known)})"
        raise InvalidApplication(f"{what} has unknown key {str(key)[:60]!r}{suggestion}")


def _number(value: Any, what: str, minimum: float, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        kind = "an integer" if integer else "a number"
        raise InvalidApplication(f"{what} must be {kind}, got {value!r}")
    if value < minimum:
        raise InvalidApplication(f"{what} must be >= {minimum}, got {value!r}")
    return value


def parse_action(raw: Any, where: str = "configuration.json") -> ActionSpec:
    """Validate one action dict (configured or generated) into an :class:`ActionSpec`."""
    if not isinstance(raw, dict):
        raise InvalidApplication(f"{where}: every action must be a JSON object, got {type(raw).__name__}")
    if "name" not in raw:
        raise InvalidApplication(f"{where}: an action has no 'name'")
    found = find_poison(raw)   # generated actions come here straight from output.data
    if found:
        raise InvalidApplication(f"{where}: an action's {poison_message(found)}")
    name = check_plain_name(raw["name"])
    check_keys(raw, KNOWN_ACTION_KEYS, f"{where}: action '{name}'")
    main = raw.get("main")
    if not isinstance(main, str) or not main.strip():
        raise InvalidApplication(f"{where}: action '{name}' has no 'main' command")
    condition = raw.get("condition")
    if condition is None:
        condition = []
    if not isinstance(condition, list) or not all(isinstance(c, str) for c in condition):
        raise InvalidApplication(f"{where}: action '{name}' condition must be a list of action names")
    if len(set(condition)) != len(condition):
        raise InvalidApplication(f"{where}: action '{name}' lists a condition twice")
    env = raw.get("env")
    if env is not None and env != "":
        env = check_relative_path(env, f"action '{name}' env")
    else:
        env = None
    input_data = raw.get("input_data")
    if input_data is None:
        input_data = {}
    if not isinstance(input_data, dict):
        raise InvalidApplication(f"{where}: action '{name}' input_data must be a JSON object")
    to_action = raw.get("to_action")
    if to_action is not None:
        to_action = check_plain_name(to_action, f"action '{name}' to_action")
    timeout = raw.get("timeout")
    if timeout is not None:
        timeout = _number(timeout, f"action '{name}' timeout", 0.001)
    retries = raw.get("retries")
    retries = 0 if retries is None else _number(retries, f"action '{name}' retries", 0, integer=True)
    retry_delay = raw.get("retry_delay")
    retry_delay = 0 if retry_delay is None else _number(retry_delay, f"action '{name}' retry_delay", 0)
    target = _target(raw, f"{where}: action '{name}'")
    return ActionSpec(name, main, list(condition), env, input_data, to_action, timeout, retries, retry_delay,
                      target)


def _target(raw: dict, what: str) -> Optional[dict]:
    """An action's ``target`` or 0.1.5's ``target_env`` (the same keys; one of them)."""
    given = [key for key in ("target", "target_env") if raw.get(key) is not None]
    if len(given) > 1:
        raise InvalidApplication(f"{what} has both 'target' and 'target_env'; keep one")
    if not given:
        return None
    try:
        return parse_target(raw[given[0]], given[0])
    except BadTarget as exc:
        raise InvalidApplication(f"{what} {exc}") from None


def find_cycle(graph: dict) -> Optional[list]:
    """A cycle in ``graph`` (name → names it waits for) as a path ``[a, b, a]``, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {node: WHITE for node in graph}
    for root in graph:
        if color[root] != WHITE:
            continue
        stack = [(root, iter(graph[root]))]
        path = [root]
        color[root] = GREY
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                color[node] = BLACK
                stack.pop()
                path.pop()
            elif color.get(child, BLACK) == GREY:
                return path[path.index(child):] + [child]
            elif color.get(child) == WHITE:
                color[child] = GREY
                stack.append((child, iter(graph[child])))
                path.append(child)
    return None


def check_dag(actions: Iterable[ActionSpec], where: str = "configuration.json") -> None:
    """Unique names, conditions naming existing actions, no self-loop, no cycle."""
    actions = list(actions)
    names = set()
    for action in actions:
        if action.name in names:
            raise InvalidApplication(f"{where}: duplicate action name '{action.name}'")
        names.add(action.name)
    graph = {}
    for action in actions:
        for upstream in action.condition:
            if upstream == action.name:
                raise InvalidApplication(f"{where}: action '{action.name}' lists itself in its condition")
            if upstream not in names:
                raise InvalidApplication(
                    f"{where}: action '{action.name}' condition names unknown action '{upstream}'")
        graph[action.name] = list(action.condition)   # a copy: to_action edges are appended below
    for action in actions:
        if action.to_action is not None:
            if action.to_action not in names:
                raise InvalidApplication(
                    f"{where}: action '{action.name}' to_action names unknown action '{action.to_action}'")
            graph[action.to_action].append(action.name)
    cycle = find_cycle(graph)
    if cycle:
        raise InvalidApplication(f"{where}: actions form a cycle: {' -> '.join(cycle)}")


def _event_actions(raw: dict) -> dict:
    """0.1.5's ``event_actions: {"success": {action}, "fail": {action}}`` as
    ``{"on_success": ActionSpec, "on_fail": ActionSpec}`` (absent ones left out).

    Each is a whole action definition; a missing ``name`` defaults to its key. Naming the
    same event both ways (``on_success`` and ``event_actions.success``) is refused.
    """
    block = raw.get("event_actions")
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise InvalidApplication("configuration.json: 'event_actions' must be an object "
                                 "{\"success\": {action}, \"fail\": {action}}")
    check_keys(block, ("success", "fail"), "configuration.json: event_actions")
    out = {}
    for event, key in (("success", "on_success"), ("fail", "on_fail")):
        item = block.get(event)
        if item is None:
            continue
        if raw.get(key) is not None:
            raise InvalidApplication(f"configuration.json: both '{key}' and 'event_actions.{event}' "
                                     f"are given; keep one")
        if isinstance(item, dict) and "name" not in item:
            item = {**item, "name": event}
        out[key] = parse_action(item, f"configuration.json event_actions.{event}")
    return out


def parse_configuration(data: bytes, max_actions: int = MAX_ACTIONS) -> AppSpec:
    """Parse and validate configuration.json's bytes into an :class:`AppSpec`."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise InvalidApplication(f"configuration.json is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidApplication("configuration.json must be a JSON object with an 'actions' list")
    found = find_poison(raw)
    if found:
        raise InvalidApplication(f"configuration.json: {poison_message(found)}")
    check_keys(raw, KNOWN_TOP_KEYS, "configuration.json")
    actions_raw = raw.get("actions")
    if not isinstance(actions_raw, list):
        raise InvalidApplication("configuration.json: 'actions' must be a list")
    if not actions_raw:
        raise InvalidApplication("configuration.json: 'actions' is empty")
    if len(actions_raw) > max_actions:   # before parsing them: a huge list costs nothing more
        raise InvalidApplication(f"configuration.json has {len(actions_raw)} actions, more than the limit of "
                                 f"{max_actions}")
    actions = [parse_action(a) for a in actions_raw]
    events = _event_actions(raw)
    actions += list(events.values())
    if len(actions) > max_actions:
        raise InvalidApplication(f"configuration.json has {len(actions)} actions, more than the limit of "
                                 f"{max_actions}")
    check_dag(actions)
    spec = AppSpec(actions)
    for key in ("on_success", "on_fail"):
        if key in events:
            setattr(spec, key, events[key].name)
            continue
        name = raw.get(key)
        if name is None:
            continue
        if not isinstance(name, str) or spec.by_name(name) is None:
            raise InvalidApplication(f"configuration.json: {key} names unknown action {name!r}")
        setattr(spec, key, name)
    events = {spec.on_success, spec.on_fail} - {None}
    for action in actions:
        if action.name in events and action.condition:
            raise InvalidApplication(f"configuration.json: event action '{action.name}' must have no condition")
        for upstream in action.condition:
            if upstream in events:
                raise InvalidApplication(
                    f"configuration.json: action '{action.name}' waits for event action '{upstream}'")
    if not spec.dag_actions():
        raise InvalidApplication("configuration.json: no action to run besides event actions")
    output_action = raw.get("output_action")
    if output_action is not None:
        if not isinstance(output_action, str) or spec.by_name(output_action) is None or output_action in events:
            raise InvalidApplication(
                f"configuration.json: output_action names unknown action {str(output_action)[:60]!r}")
        spec.output_action = output_action
    return spec


def _member_path(member: tarfile.TarInfo) -> str:
    """The member's path without a leading './', checked to be relative and '..'-free."""
    name = member.name
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InvalidApplication(f"tarball member '{name}' has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidApplication(f"tarball member '{name}' contains '..'")
    if "\x00" in name or "\\" in name:
        raise InvalidApplication(f"tarball member {name!r} has an invalid character")
    return "/".join(parts)


class MemberRules:
    """The one set of tar member rules (manager and node, applications and envs), applied
    one member at a time, tracking the top directory and the unpacked size.

    Every archive: relative, ``..``-free names; files, directories and links only; no
    member inside a symlink (writing through one could escape); hard links to members
    inside; at most ``max_unpacked_size`` bytes. An application (``one_top``) also holds
    one top directory, and its symlinks stay inside it. A venv-pack env tarball has no top
    directory, and its ``bin/python`` links to the interpreter by absolute path: its
    members are judged by the stricter env rules of :mod:`litepipeline.common.envtar`
    (hard links only to earlier regular files, nothing written over a link), the rules
    the manager checks at upload and the node applies when extracting.
    """

    def __init__(self, max_unpacked_size: int, one_top: bool = True) -> None:
        self.max_unpacked_size = max_unpacked_size
        self.one_top = one_top
        self.top: Optional[str] = None
        self.size = 0
        self.count = 0
        self.files: set[str] = set()
        self.paths: set[str] = set()
        self.links: dict[str, str] = {}   # symlink path -> its target joined to the link's directory
        self._env = None if one_top else EnvChecker(max_unpacked_size)

    def _inside(self, path: Optional[str]) -> bool:
        if not self.one_top:
            return path is not None
        return path is not None and (path == self.top or path.startswith(self.top + "/"))

    def _resolve(self, path: str, depth: int = 0) -> Optional[str]:
        """``path`` with every known symlink followed; None when it climbs above the root."""
        out: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not out:
                    return None
                out.pop()
                continue
            out.append(part)
            current = "/".join(out)
            if current in self.links:
                if depth > 40:
                    return None
                resolved = self._resolve(self.links[current], depth + 1)
                if resolved is None:
                    return None
                out = resolved.split("/") if resolved else []
        return "/".join(out)

    def finish(self) -> None:
        """Checks that need the whole archive: links through links, members under links."""
        if self._env is not None:
            return   # the env rules are all checked member by member
        for path, target in self.links.items():
            if self.one_top and not self._inside(self._resolve(target)):
                raise InvalidApplication(f"tarball link '{path}' points outside the top directory")
        for path in self.paths:
            parent = posixpath.dirname(path)
            while parent and parent != self.top:
                if parent in self.links:
                    raise InvalidApplication(f"tarball member '{path}' is inside the link '{parent}'")
                parent = posixpath.dirname(parent)

    def check(self, member: tarfile.TarInfo) -> Optional[str]:
        """Return the member's normalized path ('' for the archive root), or raise."""
        if self._env is not None:
            self.top = ""
            path = self._env.check(member)
            self.size = self._env.size
            self.count = self._env.count
            if path and (member.isfile() or member.islnk()):
                self.files.add(path)
            return path
        path = _member_path(member)
        self.count += 1
        if self.count > MAX_MEMBERS:
            raise InvalidApplication(f"tarball has more than {MAX_MEMBERS} members")
        if not path:
            if not member.isdir():
                raise InvalidApplication(f"tarball member '{member.name}' is not a directory")
            return ""
        if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
            raise InvalidApplication(f"tarball member '{member.name}' is a device or fifo")
        if member.issparse():
            raise InvalidApplication(f"tarball member '{member.name}' is a sparse file")
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise InvalidApplication(f"tarball member '{member.name}' has an unsupported type")
        top = path.split("/", 1)[0]
        if self.one_top:
            if self.top is None:
                self.top = top
            elif top != self.top:
                raise InvalidApplication(
                    f"tarball must hold one top directory, found '{self.top}' and '{top}'")
            if path == top and not member.isdir():
                raise InvalidApplication(f"tarball top entry '{top}' is not a directory")
        else:
            self.top = ""
            parent = posixpath.dirname(path)
            while parent:                     # refused at once: nothing is extracted through it
                if parent in self.links:
                    raise InvalidApplication(f"tarball member '{member.name}' lies below a symlink")
                parent = posixpath.dirname(parent)
        if path in self.paths and (member.issym() or path in self.links):
            raise InvalidApplication(f"tarball member '{member.name}' replaces an earlier link or member")
        self.paths.add(path)
        if member.issym():
            if self.one_top and member.linkname.startswith("/"):
                raise InvalidApplication(f"tarball link '{member.name}' points to an absolute path")
            self.links[path] = posixpath.join(posixpath.dirname(path), member.linkname)
            if self.one_top and not self._inside(self._resolve(self.links[path])):
                raise InvalidApplication(f"tarball link '{member.name}' points outside the top directory")
        elif member.islnk():
            target = _member_path(tarfile.TarInfo(member.linkname))
            if not self._inside(target):
                raise InvalidApplication(f"tarball link '{member.name}' points outside the top directory")
        self.size += max(member.size, 0)
        if self.size > self.max_unpacked_size:
            raise InvalidApplication(
                f"tarball unpacks to more than the limit of {self.max_unpacked_size} bytes")
        if member.isfile() or member.islnk():
            self.files.add(path)
        return path


def _open(path: str, mode: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode)
    except (tarfile.ReadError, OSError, EOFError) as exc:
        raise InvalidApplication(f"application file is not a gzip tar archive: {exc}") from None


def inspect_tarball(path: str, max_unpacked_size: int, max_actions: int = MAX_ACTIONS) -> TarballInfo:
    """Validate the tarball at ``path`` without extracting it; blocking, run it in a thread.

    Streams through the archive once: member rules, one top directory, the unpacked-size
    limit (checked on each header before its data is read, so a gzip bomb stops early),
    configuration.json, and every action's env tarball present as a regular file.
    """
    checker = MemberRules(max_unpacked_size)
    config_bytes = None
    try:
        with _open(path, "r|gz") as tar:
            for member in tar:
                relpath = checker.check(member)
                if relpath and relpath.count("/") == 1 and relpath.endswith("/" + CONFIG_NAME):
                    if not member.isfile():
                        raise InvalidApplication("configuration.json is not a regular file")
                    if member.size > MAX_CONFIG_SIZE:
                        raise InvalidApplication(f"configuration.json is larger than {MAX_CONFIG_SIZE} bytes")
                    fp = tar.extractfile(member)
                    config_bytes = fp.read() if fp else b""
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidApplication(f"application file is not a valid gzip tar archive: {exc}") from None
    if checker.top is None:
        raise InvalidApplication("tarball is empty")
    checker.finish()
    if config_bytes is None:
        raise InvalidApplication(f"tarball has no {checker.top}/{CONFIG_NAME}")
    spec = parse_configuration(config_bytes, max_actions)
    envs = {}
    for action in spec.actions:
        if is_venv_id(action.env):
            continue   # a venv of its own: the manager checks that it exists
        if action.env is not None and f"{checker.top}/{action.env}.tar.gz" not in checker.files:
            raise InvalidApplication(f"action '{action.name}' env tarball '{action.env}.tar.gz' "
                                     "is not in the application")
        if action.env is not None:
            envs[f"{checker.top}/{action.env}.tar.gz"] = f"{action.env}.tar.gz"
    if envs:
        _check_envs(path, envs, max_unpacked_size)
    return TarballInfo(checker.top, checker.size, spec)


def _check_envs(path: str, envs: dict, max_unpacked_size: int) -> None:
    """Second pass, streaming: every env tarball the actions name obeys the env rules (the
    node extracts them with the same rules; see :mod:`litepipeline.common.envtar`)."""
    try:
        with _open(path, "r|gz") as tar:
            for member in tar:
                label = envs.get(_member_path(member))
                if label is None or not member.isfile():
                    continue
                try:
                    check_env_stream(tar.extractfile(member), max_unpacked_size)
                except InvalidApplication as exc:
                    raise InvalidApplication(f"env tarball '{label}': {exc.message}") from None
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidApplication(f"application file is not a valid gzip tar archive: {exc}") from None


def safe_extract(path: str, dest: str, max_unpacked_size: int, one_top: bool = True) -> str:
    """Extract the tarball at ``path`` into directory ``dest`` under the member rules.

    Returns the absolute path of the extracted top directory (``dest`` itself for an env
    tarball, ``one_top=False``). Blocking: run in a thread.
    """
    checker = MemberRules(max_unpacked_size, one_top)
    try:
        with _open(path, "r:gz") as tar:
            members = []
            for member in tar:
                relpath = checker.check(member)
                if relpath:
                    member.name = relpath
                    if member.islnk():
                        member.linkname = _member_path(tarfile.TarInfo(member.linkname))
                    members.append(member)
            if checker.top is None:
                raise InvalidApplication("tarball is empty")
            checker.finish()
            # the "data" filter refuses absolute links, which an env's bin/python is
            kwargs = {"filter": "data" if one_top else "tar"} if hasattr(tarfile, "data_filter") else {}
            os.makedirs(dest, exist_ok=True)
            tar.extractall(dest, members=members, **kwargs)
    except tarfile.FilterError as exc:
        raise InvalidApplication(f"tarball member rejected: {exc}") from None
    except (tarfile.TarError, EOFError, ValueError) as exc:
        raise InvalidApplication(f"application file is not a valid gzip tar archive: {exc}") from None
    return os.path.join(os.path.abspath(dest), checker.top) if checker.top else os.path.abspath(dest)
