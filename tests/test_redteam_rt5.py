"""Runtime red team, fifth round: a hostile peer against a node — connection floods, names
and strings meant for a terminal or a log, numbers at every edge of a frame, replays, frames
that do not fit their port, and the control client.

As in tests/test_redteam_rt4.py (whose harness this reuses), node a is a real `TcpNode` in
this process on 127.0.0.1, and the test plays its peers over the authenticated wire: real
sockets, the real handshake and MACs.  Probes that held are pinned here too (see the
CHANGELOG entry for the list); each fix's test fails before it.
"""
from __future__ import annotations

import asyncio

import pytest
from test_redteam_rt4 import ON_A, SECRET, closed_by_a, count, node_a, run, until

from assay.runtime.wire import AuthError, authenticate

# --- connection floods ------------------------------------------------------------------------


async def _open(port: int, n: int) -> list[asyncio.StreamWriter]:
    out = []
    for _ in range(n):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        out.append(writer)
    return out


def test_a_flood_of_connections_authenticated_or_not_holds_a_bounded_number_open(tmp_path):
    # found wrong: a peer holding the secret that opened connections and kept them (as
    # control clients, or as node c) held every one of them: 200 here, thousands until the
    # node's descriptors ran out and it refused its real peers.  Now a node keeps at most 4
    # connections of each node and 16 of control clients (the oldest goes), besides the 64
    # that may be authenticating; node c's messages, sent after the flood, are handled
    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            raw = await _open(a.port, 150)              # never authenticate
            control = [await a.login("control") for _ in range(100)]
            as_c = [await a.login("c") for _ in range(100)]
            c = await a.login("c")
            c.write(count(1), count(2))
            await c.drain()
            await until(lambda: a.got("on_c") == 2, "c's two Counts handled")
            bound = 64 + 16 + 4    # authenticating, control clients, node c's connections
            await until(lambda: len(a.node._accepted) <= bound,
                        f"a holding at most {bound} connections "
                        f"(it holds {len(a.node._accepted)})")
            # the newest of each kind are the ones kept
            assert not await closed_by_a(control[-1], 0.2)
            assert not await closed_by_a(as_c[-1], 0.2)
            assert await closed_by_a(control[0]) and await closed_by_a(as_c[0])
            assert not await closed_by_a(c, 0.2)
            for w in raw:
                w.close()

    run(main)


def test_a_connection_claiming_a_name_the_deployment_does_not_have_is_refused(tmp_path):
    # found wrong: a peer holding the secret could authenticate as any name (a newline and
    # a terminal escape in it, 64 characters), which every later line of the log about it
    # carried.  Now a node's server accepts only the deployment's other nodes and control
    # clients, and refuses the rest before proving anything itself
    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            for name in ("mallory", "b\n2026-01-01 assay.runtime INFO forged", "\x1b[2Jz"):
                reader, writer = await asyncio.open_connection("127.0.0.1", a.port)
                try:
                    with pytest.raises(AuthError):
                        await authenticate(reader, writer, SECRET.encode(), name,
                                           initiator=True)
                finally:
                    writer.close()
            c = await a.login("c")                      # (a node's name: accepted)
            c.write(count(1))
            await c.drain()
            await until(lambda: a.got("on_c") == 1, "c's Count handled")

    run(main)
