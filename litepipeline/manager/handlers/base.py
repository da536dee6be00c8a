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
