"""Small named exceptions; each knows its API error name and HTTP status.

The manager's and the node's base handler turn any of these into the JSON envelope
``{"result": <name>, "message": <message>}`` with the status code.
"""
from __future__ import annotations

import json
from typing import Optional


class LiteError(Exception):
    """Base of every error that reaches a user as an envelope."""

    name = "ServerException"
    http_status = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def envelope(self) -> dict:
        return {"result": self.name, "message": self.message}


class InvalidParameters(LiteError):
    name = "InvalidParameters"
    http_status = 400


class InvalidApplication(LiteError):
    """An application tarball or its configuration.json breaks a rule."""

    name = "InvalidParameters"
    http_status = 400


class Unauthorized(LiteError):
    name = "Unauthorized"
    http_status = 401


class NotFound(LiteError):
    name = "NotFound"
    http_status = 404


class AppNotExists(LiteError):
    name = "AppNotExists"
    http_status = 404


class VenvNotExists(LiteError):
    name = "VenvNotExists"
    http_status = 404


class HistoryNotExists(LiteError):
    """A history id unknown, or belonging to another application or venv."""

    name = "HistoryNotExists"
    http_status = 404


class TaskNotExists(LiteError):
    name = "TaskNotExists"
    http_status = 404


class ActionNotExists(LiteError):
    name = "ActionNotExists"
    http_status = 404


class TaskAlreadyFinished(LiteError):
    name = "TaskAlreadyFinished"
    http_status = 409


class OperationFailed(LiteError):
    """The request is valid but cannot be done in the current state (409)."""

    name = "OperationFailed"
    http_status = 409


class StaleAttempt(LiteError):
    """A node reported on an attempt the manager no longer expects (fencing)."""

    name = "StaleAttempt"
    http_status = 409


class PayloadTooLarge(LiteError):
    name = "PayloadTooLarge"
    http_status = 413


class ServiceUnavailable(LiteError):
    name = "ServiceUnavailable"
    http_status = 503


class ConfigError(Exception):
    """A configuration file is missing, unreadable or has a wrong value (exit code 2)."""


def parse_envelope(body: Optional[bytes]) -> Optional[dict]:
    """The JSON object of an answer's body, or None when it is not one (the one parser of
    answers from a manager or node, whatever the transport)."""
    try:
        data = json.loads((body or b"").decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def envelope_of(code: int, body: Optional[bytes]) -> tuple[Optional[str], str]:
    """``(result, message)`` of an HTTP answer; a body that is not an envelope is described."""
    data = parse_envelope(body)
    if data is None:
        text = (body or b"")[:200].decode("utf-8", "replace")
        return "BadResponse", f"HTTP {code} with a non-JSON body" + (f": {text}" if text else "")
    result = data.get("result")
    return (result if isinstance(result, str) else None), str(data.get("message") or "")
