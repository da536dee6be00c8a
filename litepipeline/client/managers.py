"""Which manager the client talks to, when it is given several (fail-over on PostgreSQL).

The CLI's address may name several managers, ``HOST:PORT,HOST:PORT,...``: one of them
leads, the others are standbys. A standby answers every route but ``/`` and
``/cluster/info`` with HTTP 503 ``{"result": "NotLeader", "leader": {...} | null}`` (and
those two with ``"role": "standby"``). :class:`ManagerAddresses` holds the list and the
one that answered last; :func:`standby_answer` recognises a standby's answer. No
network here: :class:`~litepipeline.client.api.ManagerClient` does the sending.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from litepipeline.common.errors import parse_envelope

NOT_LEADER = "NotLeader"
STANDBY = "standby"
# the routes a standby answers 200 itself, naming its role
ROLE_ROUTES = ("/", "/cluster/info")


@dataclass(frozen=True)
class Target:
    """One manager's address: ``address`` as the user wrote it (no scheme), ``base_url`` to send to."""

    address: str
    base_url: str


def target(address: str, tls: bool = False) -> Target:
    """``HOST:PORT`` or ``http(s)://HOST:PORT`` as a :class:`Target` (https when ``tls``
    and no scheme is given)."""
    address = address.strip().rstrip("/")
    if address.startswith(("http://", "https://")):
        return Target(address.split("://", 1)[1], address)
    return Target(address, f"{'https' if tls else 'http'}://{address}")


class ManagerAddresses:
    """The managers the user named, in order, and the one to try first.

    Args:
        address: ``HOST:PORT`` or a comma-separated list of them (each may carry
            ``http://`` or ``https://``).
        tls: addresses without a scheme use https.
    """

    def __init__(self, address: str, tls: bool = False) -> None:
        parts = [part for part in address.split(",") if part.strip()] or [address]
        self.tls = tls
        self.targets = [target(part, tls) for part in parts]
        self.current = self.targets[0]

    @property
    def several(self) -> bool:
        """True when the user named more than one manager."""
        return len(self.targets) > 1

    def order(self) -> list[Target]:
        """The managers to try for one request: the one that answered last, then the
        user's list in its order."""
        return [self.current, *(t for t in self.targets if t != self.current)]

    def leader_target(self, leader: dict, via: Target) -> Optional[Target]:
        """Where a standby's ``leader`` object says to go (with ``via``'s scheme), or None
        when it names no usable address."""
        address = leader.get("address") if isinstance(leader, dict) else None
        if not isinstance(address, str) or not address.strip() or "," in address:
            return None
        scheme = via.base_url.split("://", 1)[0]
        return Target(address.strip(), f"{scheme}://{address.strip()}")


def standby_answer(status: int, path: str, body: bytes) -> Optional[dict]:
    """When an answer comes from a standby, ``{"leader": {...} | None, "message": ...}``; else None.

    A standby says so with a 503 ``NotLeader`` envelope, or, on ``/`` and
    ``/cluster/info``, a 200 answer carrying ``"role": "standby"``.
    """
    if status == 503:
        data = parse_envelope(body)
        if data is None or data.get("result") != NOT_LEADER:
            return None
    elif status == 200 and path in ROLE_ROUTES:
        data = parse_envelope(body)
        if data is None or data.get("role") != STANDBY:
            return None
    else:
        return None
    leader: Any = data.get("leader")
    return {"leader": leader if isinstance(leader, dict) else None,
            "message": str(data.get("message") or "this manager is a standby")}


def none_leads(tried: list[tuple[str, str]]) -> str:
    """The one-line error when no named manager leads: each address and why it was passed over."""
    addresses = ", ".join(dict.fromkeys(address for address, _ in tried))
    reasons = "; ".join(f"{address}: {reason}" for address, reason in tried)
    return f"no manager leads right now (tried {addresses}): {reasons}"
