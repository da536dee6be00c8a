"""The manager's base handler: the Manager injected, auth from its config."""
from __future__ import annotations

from litepipeline.common.web import JsonHandler
from litepipeline.manager.manager import Manager


class ManagerHandler(JsonHandler):
    """Every manager handler gets the :class:`Manager` through ``initialize``."""

    def initialize(self, manager: Manager) -> None:
        self.manager = manager
        self.auth_token = manager.config.auth_token
        self.max_json_body = manager.config.max_json_body

    def authorized(self) -> bool:
        # the web interface's session cookie (with its CSRF header for changes) stands in
        # for the token; a request with an Authorization header is judged by that alone.
        # The route's body limit is checked after this, whichever credential was used.
        sessions = self.settings.get("ui_sessions")
        if (sessions is not None and self.auth_token and "Authorization" not in self.request.headers
                and sessions.allows(self.request)):
            return True
        return super().authorized()
