"""The manager's base handler: the Manager injected, auth from its config."""
from __future__ import annotations

import os

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

    async def send_tarball(self, name: str, path: str, sha1: str) -> None:
        """Streams the tarball at ``path`` as the download ``<name>.tar.gz``, its sha1 in a header."""
        self.set_header("Content-Type", "application/gzip")
        self.set_header("Content-Disposition", f'attachment; filename="{name}.tar.gz"')
        self.set_header("X-LitePipeline-SHA1", sha1)
        self.set_header("Content-Length", str(os.path.getsize(path)))
        async for chunk in self.manager.read_chunks(path):
            self.write(chunk)
            await self.flush()
        self.finish()
