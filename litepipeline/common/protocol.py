"""The node ↔ manager TCP channel (SPEC §5): frames and messages.

A frame is ``JSON bytes + b"\\r\\n\\r\\n" + CRC32(JSON) as 8 upper-case hex digits +
b"\\r\\n\\r\\n\\r\\n"``. A message is ``{"command": ..., "data": {...}}``. Anything else — a
bad CRC, bytes that are not a JSON object, an unknown command, a frame past
``MAX_FRAME_SIZE`` — is a :class:`ProtocolError`; the reader closes that one connection.
"""
from __future__ import annotations

import json
import zlib
from typing import Any, Optional

JSON_END = b"\r\n\r\n"
FRAME_END = b"\r\n\r\n\r\n"
CRC_LEN = 8
MAX_FRAME_SIZE = 1024 * 1024  # a REGISTER with a few thousand running actions fits easily

REGISTER = "REGISTER"
HEARTBEAT = "HEARTBEAT"
ERROR = "ERROR"
# Extensions, used only between peers that both list them in ``features`` at REGISTER, so
# an original node or manager keeps talking plain SPEC §5 (and HTTP for the rest):
RUN = "RUN"        # manager -> node: an action to run (the POST /action/run body); answered RUN
REPORT = "REPORT"  # node -> manager: an action report (the PUT /action/update body); answered REPORT
COMMANDS = (REGISTER, HEARTBEAT, ERROR, RUN, REPORT)
FEATURES = [RUN, REPORT]
# a RUN or REPORT bigger than this goes over HTTP instead: frames stay small and quick
CHANNEL_MESSAGE_LIMIT = 256 * 1024

SUCCESS = "SUCCESS"
FAILURE = "FAILURE"


class ProtocolError(Exception):
    """A peer sent something that is not a valid frame or message."""


def encode(command: str, data: dict) -> bytes:
    """One frame carrying ``{"command": command, "data": data}``."""
    body = json.dumps({"command": command, "data": data}, separators=(",", ":")).encode("utf-8")
    return body + JSON_END + b"%08X" % zlib.crc32(body) + FRAME_END


def decode(body: bytes, trailer: bytes) -> dict:
    """Check one frame's JSON part (without ``JSON_END``) against its trailer; return the message.

    ``trailer`` is the CRC digits followed by ``FRAME_END``.
    """
    if len(trailer) != CRC_LEN + len(FRAME_END) or not trailer.endswith(FRAME_END):
        raise ProtocolError("malformed frame trailer")
    crc_text = trailer[:CRC_LEN]
    try:
        crc = int(crc_text, 16)
    except ValueError:
        raise ProtocolError(f"frame CRC is not hex: {crc_text!r}") from None
    if crc != zlib.crc32(body):
        raise ProtocolError(f"frame CRC mismatch: got {crc:08X}, computed {zlib.crc32(body):08X}")
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise ProtocolError(f"frame is not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    command = message.get("command")
    if command not in COMMANDS:
        raise ProtocolError(f"unknown command {command!r}")
    data = message.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProtocolError(f"{command} data is not a JSON object")
    message["data"] = data
    return message


async def read_message(stream: Any, max_size: int = MAX_FRAME_SIZE) -> dict:
    """Read one message from a tornado ``IOStream``; raise :class:`ProtocolError` on garbage.

    Stream errors (``StreamClosedError``) propagate unchanged.
    """
    return (await read_frame(stream, max_size))[0]


async def read_frame(stream: Any, max_size: int = MAX_FRAME_SIZE) -> tuple[dict, bytes]:
    """:func:`read_message` with the frame's JSON bytes it was decoded from (a reader can
    size or screen the raw text instead of walking the decoded value)."""
    from tornado.iostream import StreamClosedError, UnsatisfiableReadError

    try:
        head = await stream.read_until(JSON_END, max_bytes=max_size + len(JSON_END))
    except UnsatisfiableReadError:
        raise ProtocolError(f"frame larger than {max_size} bytes") from None
    except StreamClosedError as exc:
        # tornado closes the stream itself when max_bytes is exceeded; tell that apart
        if isinstance(exc.real_error, UnsatisfiableReadError):
            raise ProtocolError(f"frame larger than {max_size} bytes") from None
        raise
    trailer = await stream.read_bytes(CRC_LEN + len(FRAME_END))
    body = head[: -len(JSON_END)]
    return decode(body, trailer), body


def reply(command: str, status: str, message: str = "", **extra: Any) -> bytes:
    """A manager's answer frame: ``{"status": ..., "message": ...}`` plus extra fields."""
    data: dict[str, Optional[Any]] = {"status": status, "message": message or status}
    data.update(extra)
    return encode(command, data)
