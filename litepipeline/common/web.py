"""What the manager's and the node's tornado handlers share: JSON I/O, errors, auth.

Handlers stay thin: parse with the ``arg_*``/``json_body`` helpers, call the service
object, ``reply(...)``. Any :class:`LiteError` raised becomes the JSON envelope with its
status; anything unexpected becomes ``ServerException`` 500 and is logged with a trace.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
from typing import Any, Optional
from urllib.parse import quote

import tornado.web

from litepipeline.common.errors import InvalidParameters, LiteError, NotFound, PayloadTooLarge, Unauthorized
from litepipeline.common.textcheck import check_text, may_hold_poison, text_problem

LOG = logging.getLogger(__name__)
MAX_INT_ARG = 2 ** 63 - 1   # what SQL integers (and file offsets) hold
DEFAULT_JSON_BODY = 1024 * 1024   # max_json_body's default


def bearer_ok(header: Optional[str], token: Optional[str]) -> bool:
    """True when no token is configured or ``header`` is ``Bearer <token>`` (constant time)."""
    if not token:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` value for ``filename``, whatever it holds.

    Names come from the request (action names): a header carries only printable
    ISO-8859-1, so the plain ``filename`` is an ASCII stand-in and ``filename*`` (RFC 6266)
    the exact UTF-8 name.
    """
    plain = re.sub(r'[^\x20-\x7e]|["\\]', "_", filename)
    exact = quote(filename.encode("utf-8", "replace"), safe="")
    return f'attachment; filename="{plain}"; filename*=UTF-8\'\'{exact}'


def auth_headers(token: Optional[str]) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


@tornado.web.stream_request_body
class JsonHandler(tornado.web.RequestHandler):
    """Base handler: JSON envelope for every answer and every error.

    Bodies are streamed (``stream_request_body``) so that :meth:`prepare` runs when the
    headers have arrived: a request without the token, or announcing a body past the
    route's limit, is answered before a byte of its body is read or held.
    """

    #: set by subclasses' ``initialize``; None disables auth
    auth_token: Optional[str] = None
    #: paths reachable without a token
    public = False
    #: largest body a route reads (``max_json_body``), set by subclasses' ``initialize``
    max_json_body: int = DEFAULT_JSON_BODY

    def body_limit(self) -> Optional[int]:
        """The largest body this route takes; None: the route limits its body itself."""
        return self.max_json_body

    def authorized(self) -> bool:
        """Whether the request may go on (subclasses add other credentials than the token)."""
        return self.public or bearer_ok(self.request.headers.get("Authorization"), self.auth_token)

    def prepare(self) -> None:
        if not self.authorized():
            raise Unauthorized("missing or wrong 'Authorization: Bearer <token>' header")
        limit = self.body_limit()
        if limit is None:
            return
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"request body of {length} bytes is larger than the limit of {limit} bytes")
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            # a chunked body past the limit: tornado stops reading and closes the connection
            self.request.connection.set_max_body_size(limit)

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return   # answered already (401, 413, 404): nothing of the body is kept
        # grown in place (linear), and where handlers look for it: request.body
        if not isinstance(self.request.body, bytearray):
            self.request.body = bytearray()
        self.request.body.extend(chunk)

    def raw_body(self) -> bytes:
        """The whole request body (the verb method runs once it has all arrived)."""
        return self.request.body

    def reply(self, status: int = 200, **fields: Any) -> None:
        body = {"result": "ok"}
        body.update(fields)
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, LiteError):
            body = exc.envelope()
        elif isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            name = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}.get(
                status_code, "InvalidParameters")
            body = {"result": name, "message": exc.log_message or self._reason}
        else:
            body = {"result": "ServerException", "message": "internal server error"}
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if status_code in (401, 413):
            # the body was not read: this connection cannot carry another request
            self.set_header("Connection", "close")
        self.finish(json.dumps(body))

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, LiteError):
            status_code = exc.http_status
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb) -> None:  # noqa: ANN001
        if isinstance(value, LiteError):
            if value.http_status >= 500:
                LOG.error("%s %s: %s", self.request.method, self.request.path, value.message)
            return
        super().log_exception(typ, value, tb)

    # -- input helpers ---------------------------------------------------------------
    def arg_str(self, name: str, required: bool = True, default: Optional[str] = None) -> Optional[str]:
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            if required:
                raise InvalidParameters(f"missing parameter '{name}'")
            return default
        problem = text_problem(value)
        if problem:
            raise InvalidParameters(f"parameter '{name}' holds {problem}")
        return value

    def arg_int(self, name: str, default: int, minimum: int = 0, maximum: int = MAX_INT_ARG) -> int:
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise InvalidParameters(f"parameter '{name}' must be an integer, got {value!r}") from None
        if number < minimum:
            raise InvalidParameters(f"parameter '{name}' must be >= {minimum}, got {number}")
        if number > maximum:   # e.g. an offset past what the database's integers hold
            raise InvalidParameters(f"parameter '{name}' must be <= {maximum}, got {number}")
        return number

    def arg_float(self, name: str, default: float, minimum: float, maximum: float) -> float:
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return default
        try:
            number = float(value)
        except ValueError:
            raise InvalidParameters(f"parameter '{name}' must be a number, got {value[:60]!r}") from None
        if not minimum <= number <= maximum:   # NaN fails both comparisons
            raise InvalidParameters(f"parameter '{name}' must be between {minimum:g} and {maximum:g}, "
                                    f"got {value[:60]!r}")
        return number

    def json_body(self, max_size: Optional[int] = None, check: bool = True) -> dict:
        """The body as a JSON object; ``check``: refuse text no store can keep (see textcheck)."""
        body = self.raw_body()
        if max_size is not None and len(body) > max_size:
            raise PayloadTooLarge(f"request body is larger than {max_size} bytes")
        try:
            data = json.loads(body.decode("utf-8") if body else "")
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            raise InvalidParameters(f"request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidParameters("request body must be a JSON object")
        if check and may_hold_poison(body):
            check_text(data)
        return data


class NotFoundHandler(JsonHandler):
    """Default handler: unknown paths get the envelope, not tornado's HTML page."""

    public = True

    def prepare(self) -> None:
        raise NotFound(f"no such endpoint: {self.request.method} {self.request.path}")


def require(data: dict, key: str, kind: type, what: Optional[str] = None) -> Any:
    """``data[key]`` checked to be a ``kind``; InvalidParameters naming the key otherwise."""
    if key not in data:
        raise InvalidParameters(f"missing field '{key}'")
    value = data[key]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise InvalidParameters(f"field '{key}' must be {what or kind.__name__}, got {type(value).__name__}")
    return value
