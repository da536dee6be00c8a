"""IP literals resolve without a thread; names still resolve."""
from __future__ import annotations

import asyncio
import socket

from litepipeline.common.netresolve import LiteralResolver


def test_literals_and_names():
    async def run():
        resolver = LiteralResolver()
        v4 = await resolver.resolve("127.0.0.1", 80)
        v6 = await resolver.resolve("::1", 81)
        name = await resolver.resolve("localhost", 82, socket.AF_INET)
        return v4, v6, name

    v4, v6, name = asyncio.run(run())
    assert v4 == [(socket.AF_INET, ("127.0.0.1", 80))]
    assert v6 == [(socket.AF_INET6, ("::1", 81, 0, 0))]
    assert (socket.AF_INET, ("127.0.0.1", 82)) in name
