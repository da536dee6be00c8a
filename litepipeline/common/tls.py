"""Optional TLS: the manager's HTTP and TCP ports, the node's HTTP port, and their clients.

``tls_cert`` + ``tls_key`` make a daemon serve TLS; ``tls_ca`` is the certificate (or
bundle) its peers' certificates are verified against: on a node, the manager's (its HTTP
and TCP ports are then reached with TLS); on the manager, the nodes' (a node that
registers with ``"tls": true`` is reached with HTTPS). Clients always verify the
certificate and the host name.
"""
from __future__ import annotations

import ssl
import sys
from typing import Any, Optional


class TlsError(Exception):
    """A TLS setting that cannot work (the message names the key and the file)."""


def server_context(cert: Optional[str], key: Optional[str]) -> Optional[ssl.SSLContext]:
    """The context to serve with, or None without ``tls_cert``."""
    if not cert and not key:
        return None
    if not cert or not key:
        raise TlsError("tls_cert and tls_key must be set together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load tls_cert {cert} / tls_key {key}: {exc}") from None
    return context


def client_context(ca: Optional[str]) -> Optional[ssl.SSLContext]:
    """A verifying client context trusting ``tls_ca``, or None without it."""
    if not ca:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load tls_ca {ca}: {exc}") from None
    return context


class Tls:
    """A daemon's TLS set-up, built once at start from its configuration."""

    def __init__(self, config: Any) -> None:
        self.server = server_context(getattr(config, "tls_cert", None), getattr(config, "tls_key", None))
        self.client = client_context(getattr(config, "tls_ca", None))

    def configure_http_clients(self) -> None:
        """Every tornado HTTP client of this process verifies HTTPS peers against tls_ca
        (before any client exists: tornado keeps one per event loop)."""
        if self.client is not None:
            from tornado.httpclient import AsyncHTTPClient

            AsyncHTTPClient.configure(None, defaults={"ssl_options": self.client})


def tls_or_exit(prog: str, config: Any) -> Tls:
    try:
        return Tls(config)
    except TlsError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
