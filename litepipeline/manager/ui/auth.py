"""Browser sessions for the web interface, when the manager has an ``auth_token``.

The login page exchanges the token for a random session id, kept here in memory and
sent back as an HttpOnly, SameSite=Strict cookie: the token itself never reaches a
cookie or a page. Every state-changing request made with the cookie must also carry the
session's CSRF value in a header. Pure (clock injected), so it is tested without a server.
"""
from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

COOKIE = "litepipeline_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDLE_SECONDS = 8 * 3600        # a session unused this long is gone
MAX_AGE_SECONDS = 7 * 86400    # and none outlives this, used or not
MAX_SESSIONS = 1000            # the oldest is dropped beyond this


@dataclass
class Session:
    session_id: str
    csrf: str
    created: float
    used: float


class Sessions:
    """The manager's live browser sessions (in memory: a restart logs everyone out)."""

    def __init__(self, token: Optional[str], clock: Callable[[], float] = time.monotonic,
                 idle: float = IDLE_SECONDS, max_age: float = MAX_AGE_SECONDS,
                 limit: int = MAX_SESSIONS) -> None:
        self.token = token or None
        self.clock = clock
        self.idle = idle
        self.max_age = max_age
        self.limit = limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    @property
    def required(self) -> bool:
        """Whether the UI needs a login at all (no token: it just works)."""
        return self.token is not None

    def login(self, offered: str) -> Optional[Session]:
        """A new session when ``offered`` is the token (constant-time compare), else None."""
        if self.token is None or not offered:
            return None
        if not hmac.compare_digest(offered.strip().encode(), self.token.encode()):
            return None
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        self._sessions[session.session_id] = session
        while len(self._sessions) > self.limit:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: Optional[str]) -> Optional[Session]:
        """The live session of that id (its idle time restarts), or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self.clock()
        if now - session.used > self.idle or now - session.created > self.max_age:
            del self._sessions[session_id]
            return None
        session.used = now
        self._sessions.move_to_end(session_id)
        return session

    def logout(self, session_id: Optional[str]) -> bool:
        return self._sessions.pop(session_id or "", None) is not None

    def authorizes(self, method: str, session_id: Optional[str], csrf: Optional[str]) -> bool:
        """Whether a request with this cookie (and CSRF header) may go through.

        Reads need the session; anything else needs the session's CSRF value too, so a
        page on another site can make the browser send the cookie but not the header.
        """
        session = self.get(session_id)
        if session is None:
            return False
        if method.upper() in SAFE_METHODS:
            return True
        return bool(csrf) and hmac.compare_digest(csrf.encode(), session.csrf.encode())

    def __len__(self) -> int:
        return len(self._sessions)

    def allows(self, request) -> bool:  # noqa: ANN001 - a tornado HTTPServerRequest
        """:meth:`authorizes` for a tornado request (its cookie and CSRF header)."""
        morsel = request.cookies.get(COOKIE)
        return self.authorizes(request.method, morsel.value if morsel is not None else None,
                               request.headers.get(CSRF_HEADER))
