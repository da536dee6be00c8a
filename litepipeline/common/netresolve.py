"""A tornado resolver that answers IP literals at once.

tornado's default resolver hands every host, ``127.0.0.1`` included, to a thread for
``getaddrinfo``. The manager and nodes address each other by IP almost always, and every
HTTP call between them (dispatches and reports to and from peers without the TCP channel's
RUN/REPORT, stops, downloads, logs) opens a new connection: no thread hop for those.
"""
from __future__ import annotations

import socket
from typing import Any

from tornado.netutil import DefaultLoopResolver, Resolver, is_valid_ip


class LiteralResolver(DefaultLoopResolver):
    """IP literals resolve to themselves; names go to the default resolver."""

    async def resolve(self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC) -> Any:
        if is_valid_ip(host):
            literal_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            if family in (socket.AF_UNSPEC, literal_family):
                address = (host, port, 0, 0) if literal_family == socket.AF_INET6 else (host, port)
                return [(literal_family, address)]
        return await super().resolve(host, port, family)


def install() -> None:
    """Make every tornado HTTP/TCP client of this process use :class:`LiteralResolver`."""
    Resolver.configure(LiteralResolver)
