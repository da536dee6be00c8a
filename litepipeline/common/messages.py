"""One typed class per manager <-> node message, used by both roles.

Each message is a dataclass whose fields are its wire fields: ``parse(data)`` validates a
received dict (raising the class's error kind, naming the field) and ``to_dict()`` gives
the wire shape (SPEC §4/§5 and the RUN/REPORT extension). A field is declared with
:func:`wire`, which takes the check that parses it, so a new optional field is one line::

    labels: dict = wire(optional(json_object, dict), factory=dict)

The same shapes travel as TCP frames (``to_frame``) or as HTTP bodies.
"""
from __future__ import annotations

import dataclasses
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

from litepipeline.common import protocol
from litepipeline.common.appspec import check_plain_name, check_relative_path
from litepipeline.common.errors import InvalidApplication, InvalidParameters
from litepipeline.common.states import Stage
from litepipeline.common.targets import MAX_PLATFORM, BadTarget, check_labels

MISSING: Any = dataclasses.MISSING
SHA1_RE = re.compile(r"^[0-9a-fA-F]{40}$")
HOST_RE = re.compile(r"^[A-Za-z0-9._:\[\]-]+$")
MAX_INFO_TEXT = 4096


class Bad(Exception):
    """A check's refusal; the message class turns it into its own error kind."""


Check = Callable[[Any, str], Any]   # (raw value or MISSING, the field's label) -> parsed value


# -- checks ------------------------------------------------------------------------------------
def anything(value: Any, label: str) -> Any:
    return None if value is MISSING else value


def required(check: Check) -> Check:
    def need(value: Any, label: str) -> Any:
        if value is MISSING:
            raise Bad(f"missing {label}")
        return check(value, label)
    return need


def optional(check: Check, default: Any = None) -> Check:
    """``None`` or absent gives ``default`` (called when callable); anything else must pass ``check``."""
    def maybe(value: Any, label: str) -> Any:
        if value is MISSING or value is None:
            return default() if callable(default) else default
        return check(value, label)
    return maybe


def text(value: Any, label: str) -> str:
    if not isinstance(value, str):
        raise Bad(f"{label} must be a string or null")
    return value


def nonempty(value: Any, label: str) -> str:
    """A non-empty string; absent is the same refusal."""
    if not isinstance(value, str) or not value:
        raise Bad(f"{label} must be a non-empty string")
    return value


def short_text(value: Any, label: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_INFO_TEXT:
        raise Bad(f"{label} must be a string of at most {MAX_INFO_TEXT} characters")
    return value


def of_type(kind: type, what: Optional[str] = None) -> Check:
    """``kind`` (a bool is no int), or "must be <what>, got <type>"."""
    def check(value: Any, label: str) -> Any:
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise Bad(f"{label} must be {what or kind.__name__}, got {type(value).__name__}")
        return value
    return check


def then(*checks: Check) -> Check:
    """Each check in turn, on what the one before returned."""
    def check(value: Any, label: str) -> Any:
        for one in checks:
            value = one(value, label)
        return value
    return check


def not_blank(value: str, label: str) -> str:
    if not value.strip():
        raise Bad(f"{label} must not be empty")
    return value


def plain(value: Any, label: str) -> str:
    try:
        return check_plain_name(value, label)
    except InvalidApplication as exc:
        raise Bad(exc.message) from None


def relative_path(value: Any, label: str) -> Optional[str]:
    if value == "":
        return None
    try:
        return check_relative_path(value, label)
    except InvalidApplication as exc:
        raise Bad(exc.message) from None


def sha1(value: Any, label: str) -> str:
    if not isinstance(value, str) or not SHA1_RE.match(value):
        raise Bad(f"{label} must be 40 hex digits, got {str(value)[:60]!r}")
    return value.lower()


def positive_int(value: Any, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Bad(f"{label} must be a positive integer, got {value!r}")
    return value


def int_between(low: int, high: int) -> Check:
    def check(value: Any, label: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Bad(f"{label} must be an integer between {low} and {high}")
        return value
    return check


def positive(message: str) -> Check:
    """A finite number > 0 (a bool is none); ``message`` may use ``{label}`` and ``{value}``."""
    def check(value: Any, label: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise Bad(message.format(label=label, value=repr(value)))
        return value
    return check


def instance(kind: type, message: str) -> Check:
    """A ``kind``; ``message`` may use ``{label}`` and ``{kind}`` (the value's type)."""
    def check(value: Any, label: str) -> Any:
        if not isinstance(value, kind):
            raise Bad(message.format(label=label, kind=type(value).__name__))
        return value
    return check


positive_number = positive("{label} must be a positive number")
timeout_seconds = positive("{label} must be a positive number or null, got {value}")
json_object = instance(dict, "{label} must be a JSON object")
an_object = instance(dict, "{label} must be an object, got {kind}")
json_list = instance(list, "{label} must be a list")


def node_uuid(value: Any, label: str) -> str:
    """A node id in its canonical form (``uuid.UUID`` also reads braces, urn: and bare hex)."""
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else _bad_uuid(value, label)
    except ValueError:
        return _bad_uuid(value, label)


def _bad_uuid(value: Any, label: str) -> str:
    raise Bad(f"{label} must be a uuid, got {str(value)[:60]!r}")


def host(value: Any, label: str) -> str:
    if not isinstance(value, str) or len(value) > 255:
        raise Bad(f"{label} must be a string")
    if value and not HOST_RE.match(value):   # it becomes http://{host}:{port}/...
        raise Bad(f"{label} must be a host name or an IP address, got {value[:60]!r}")
    return value


def label_map(value: Any, label: str) -> dict:
    """A node's labels: short plain names and values (see :mod:`litepipeline.common.targets`)."""
    try:
        return check_labels(value, label)
    except BadTarget as exc:
        raise Bad(str(exc)) from None


def platform_name(value: Any, label: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_PLATFORM:
        raise Bad(f"{label} must be a string of at most {MAX_PLATFORM} characters")
    return value


def lenient_int(value: Any, label: str) -> Optional[int]:
    """An integer, or None for anything else (a node's report is recorded whatever it holds)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def flag(value: Any, label: str) -> bool:
    return value is True


def strict_bool(value: Any, label: str) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"{label} must be true or false")
    return value


def held_list(value: Any, label: str) -> list:
    """Attempts a node holds, or the manager's stop list: malformed entries are left out."""
    if not isinstance(value, list):
        return []
    return [HeldAttempt.parse(entry) for entry in value
            if isinstance(entry, dict) and isinstance(entry.get("attempt_id", ""), (str, type(None)))]


def one_of(*choices: str) -> Check:
    def check(value: Any, label: str) -> str:
        if value not in choices:
            raise Bad(f"{label} must be {' or '.join(repr(c) for c in choices)}")
        return value
    return check


def wire(check: Check, default: Any = None, *, factory: Optional[Callable[[], Any]] = None,
         omit_none: bool = False, nested: bool = False) -> Any:
    """A message field: ``check`` parses it; ``omit_none`` leaves a None out of ``to_dict``
    (a field added later, so that older peers see the shape they know); ``nested``: a list
    that may hold messages."""
    meta = {"check": check, "omit_none": omit_none, "nested": nested}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# -- the base ----------------------------------------------------------------------------------
class Message:
    """Base of every message: ``parse`` and ``to_dict`` driven by the fields' checks."""

    COMMAND: ClassVar[Optional[str]] = None
    LABEL: ClassVar[str] = "field '{}'"    # how an error names a field
    ERROR: ClassVar[type] = InvalidParameters
    _plan: ClassVar[Optional[tuple]] = None
    _plain: ClassVar[Optional[bool]] = None

    @classmethod
    def _fields(cls) -> tuple:
        plan = cls.__dict__.get("_plan")
        if plan is None:
            plan = tuple((f.name, f.metadata.get("check", anything), cls.LABEL.format(f.name),
                          f.metadata.get("omit_none", False)) for f in dataclasses.fields(cls))
            cls._plan = plan
        return plan

    @classmethod
    def parse(cls, data: Any) -> Any:
        """Validate a received dict; raises ``cls.ERROR`` naming the first bad field."""
        if not isinstance(data, dict):
            raise cls.ERROR(f"{cls.__name__} must be a JSON object")
        values = {}
        try:
            for name, check, label, _ in cls._fields():
                values[name] = check(data.get(name, MISSING), label)
        except Bad as exc:
            raise cls.ERROR(str(exc)) from None
        return cls(**values)

    def to_dict(self) -> dict:
        plain = self.__class__.__dict__.get("_plain")
        if plain is None:
            plain = self.__class__._plain = not any(omit for _, _, _, omit in self._fields()) and \
                not any(f.metadata.get("nested") for f in dataclasses.fields(self))
        if plain:   # the hot path (RUN, REPORT): no field left out, no message inside
            return {name: getattr(self, name) for name, _, _, _ in self._fields()}
        out = {}
        for name, _, _, omit_none in self._fields():
            value = getattr(self, name)
            if value is None and omit_none:
                continue
            out[name] = [v.to_dict() if isinstance(v, Message) else v for v in value] \
                if isinstance(value, list) else value
        return out

    def to_frame(self) -> bytes:
        return protocol.encode(self.COMMAND, self.to_dict())


# -- manager -> node ---------------------------------------------------------------------------
@dataclass
class RunAction(Message):
    """RUN frame / ``POST /action/run``: one attempt of an action to run."""

    COMMAND: ClassVar[str] = protocol.RUN

    # (checked in this order: the first bad field is the one named)
    name: str = wire(required(then(of_type(str), plain)))
    task_id: str = wire(required(then(of_type(str), plain)))
    app_id: str = wire(required(then(of_type(str), plain)))
    attempt_id: str = wire(required(then(of_type(str), plain)))
    main: str = wire(required(then(of_type(str), not_blank)))
    app_sha1: str = wire(required(then(of_type(str), sha1)))
    env: Optional[str] = wire(optional(relative_path))
    condition: list = wire(lambda v, label: json_list(v, label) if v is not MISSING and v else [], factory=list)
    input_data: dict = wire(optional(an_object, dict), factory=dict)
    attempt: int = wire(optional(positive_int, 1), 1)
    timeout: Optional[float] = wire(optional(timeout_seconds))
    # a venv deployed on its own (``env`` is then its id), fetched by id and SHA-1; left out when None
    venv_id: Optional[str] = wire(optional(then(of_type(str), plain)), omit_none=True)
    venv_sha1: Optional[str] = wire(optional(sha1), omit_none=True)


@dataclass
class StopAction(Message):
    """``PUT /action/stop``: signal one attempt (or the action's current one)."""

    task_id: str = wire(required(of_type(str)))
    name: str = wire(required(of_type(str)))
    signal: int = wire(optional(lambda v, label: parse_signal(v, label), -15), -15)
    attempt_id: Optional[str] = wire(optional(instance(str, "{label} must be a string")))


@dataclass
class HeldAttempt(Message):
    """An attempt a node holds (``running`` lists), or one the manager wants gone (``stop``)."""

    task_id: Optional[str] = wire(anything)
    name: Optional[str] = wire(anything)
    attempt_id: Optional[str] = wire(optional(text))   # None: the action's attempt, whichever it is
    state: Optional[str] = wire(anything, omit_none=True)


@dataclass
class Answer(Message):
    """The answer to a RUN or REPORT frame, and the envelope of the HTTP routes."""

    attempt_id: Optional[str] = wire(anything)
    code: int = wire(lambda v, label: lenient_int(v, label) or 500, 500)
    result: Optional[str] = wire(anything)
    message: str = wire(lambda v, label: "" if v in (MISSING, None) else str(v), "")

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300 and self.result == "ok"

    def describe(self) -> str:
        return f"{self.result or ''}: {self.message}".strip(": ")


# -- node -> manager ---------------------------------------------------------------------------
@dataclass
class Report(Message):
    """REPORT frame / ``PUT /action/update``: an attempt is running, or has finished."""

    COMMAND: ClassVar[str] = protocol.REPORT
    LABEL: ClassVar[str] = "report field '{}'"

    # (checked in this order: the first bad field is the one named)
    task_id: str = wire(nonempty)
    name: str = wire(nonempty)
    attempt_id: str = wire(nonempty)
    node_id: Optional[str] = wire(optional(text))
    message: Optional[str] = wire(optional(text))
    start_at: Optional[str] = wire(optional(text))
    end_at: Optional[str] = wire(optional(text))
    stage: str = wire(one_of(Stage.RUNNING.value, Stage.FINISHED.value))
    result: Optional[dict] = wire(optional(json_object))
    attempt: Optional[int] = wire(lenient_int)
    status: Optional[str] = wire(anything)     # an unknown one fails the action (the core says why)
    returncode: Optional[int] = wire(lenient_int)


@dataclass
class Register(Message):
    """REGISTER (and, the same info, HEARTBEAT) from a node: who it is and what it holds."""

    COMMAND: ClassVar[str] = protocol.REGISTER
    LABEL: ClassVar[str] = "{}"

    http_port: int = wire(required(int_between(1, 65535)))
    action_slots: int = wire(required(int_between(1, 10000)))
    node_id: Optional[str] = wire(optional(node_uuid))
    http_host: Optional[str] = wire(optional(host))
    heartbeat_interval: Optional[float] = wire(optional(positive_number))
    heartbeat_timeout: Optional[float] = wire(optional(positive_number))
    data_path: Optional[str] = wire(optional(short_text))
    app_path: Optional[str] = wire(optional(short_text))
    python3: Optional[str] = wire(optional(short_text))
    python3_executable: Optional[str] = wire(optional(short_text))
    version: Optional[str] = wire(optional(short_text))
    token: Optional[str] = wire(anything)
    features: list = wire(lambda v, label: [f for f in v if isinstance(f, str)] if isinstance(v, list) else [],
                          factory=list)
    running: list = wire(optional(lambda v, label: held_list(json_list(v, label), label), list), factory=list,
                         nested=True)
    free_slots: Optional[int] = wire(lenient_int)
    draining: bool = wire(flag, False)
    tls: Optional[bool] = wire(optional(strict_bool))   # the node's HTTP port serves TLS
    labels: dict = wire(optional(label_map, dict), factory=dict)   # placement (SPEC §14)
    platform: Optional[str] = wire(optional(platform_name))       # platform.machine(), e.g. x86_64


@dataclass
class Heartbeat(Message):
    """What the manager reads of a HEARTBEAT (the node sends its whole REGISTER info)."""

    COMMAND: ClassVar[str] = protocol.HEARTBEAT

    running: list = wire(held_list, factory=list, nested=True)
    free_slots: Optional[int] = wire(lenient_int)
    draining: bool = wire(flag, False)


@dataclass
class RegisterAnswer(Message):
    """The manager's answer to REGISTER (and, without ``node_id``/``features``, HEARTBEAT)."""

    status: str = wire(anything)
    message: str = wire(anything, "")
    node_id: Optional[str] = wire(anything, omit_none=True)
    stop: Optional[list] = wire(held_list, omit_none=True, nested=True)   # absent from a FAILURE
    features: Optional[list] = wire(lambda v, label: v if isinstance(v, list) else None, omit_none=True)
    leader: Optional[dict] = wire(anything, omit_none=True)   # a standby names the leader

    @property
    def ok(self) -> bool:
        return self.status == protocol.SUCCESS

    def frame(self, command: str, **extra: Any) -> bytes:
        """The answer frame; the message defaults to the status, as SPEC §5 shows it."""
        data = self.to_dict()
        if not data["message"]:
            data["message"] = self.status
        data.update(extra)
        return protocol.encode(command, data)


# -- signals -----------------------------------------------------------------------------------
SIGNAL_WORDS = {"kill": -9, "sigkill": -9, "term": -15, "sigterm": -15}


def parse_signal(value: Any, label: str = "field 'signal'", words: bool = False) -> int:
    """-9/-15 (SPEC) or 9/15, as a number or numeric string (and, with ``words``, as the
    CLI takes them, kill/term): -9 or -15."""
    number: Any = None
    if isinstance(value, str):
        word = value.strip().lower()
        number = SIGNAL_WORDS.get(word) if words else None
        if number is None and word.lstrip("-").isdigit():
            number = -abs(int(word))
    elif isinstance(value, int) and not isinstance(value, bool):
        number = -abs(value)
    if number not in (-9, -15):
        raise Bad(f"{label} must be -9 or -15, got {value!r}")
    return number


def signal_value(value: Any, label: str = "field 'signal'") -> int:
    """:func:`parse_signal` raising :class:`InvalidParameters` (for handlers and the CLI)."""
    try:
        return parse_signal(value, label)
    except Bad as exc:
        raise InvalidParameters(str(exc)) from None
