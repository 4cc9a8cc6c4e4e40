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
import logging

import pytest
from runtime_support import free_ports, write_deployment
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


# --- strings another party chose, in the log and on the terminal --------------------------------

FORGED = "on_c\n2026-01-01 00:00:00 assay.runtime ERROR forged\x1b[2J\x1b]0;title\x07\u202e"


def test_what_a_peer_s_frame_says_is_logged_escaped_on_its_one_line(tmp_path, caplog):
    # found wrong: a frame to port "on_c\n2026-... ERROR forged\x1b[2J" was logged as
    # refused with that text as it is: a forged line in the node's log, and the screen of
    # whoever read it cleared.  Now every line the runtime logs is escaped (`printable`)
    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            logging.getLogger("assay.runtime").setLevel(logging.WARNING)
            c = await a.login("c")
            c.write({**count(1), "dst_port": FORGED}, {**count(2), "dst": FORGED},
                    {**count(3), "message": {"type": FORGED, "fields": {}}})
            await c.drain()
            await until(lambda: sum("dropped" in r.getMessage() for r in caplog.records) >= 3,
                        "three drops logged")
            logging.getLogger("assay.runtime").setLevel(logging.ERROR)

    with caplog.at_level(logging.WARNING, logger="assay.runtime"):
        run(main)
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 3, lines
    for line in lines:
        assert line.isprintable(), line
        assert "\\n2026-01-01 00:00:00 assay.runtime ERROR forged\\x1b[2J" in line, line


STRINGS = '''
from assay import Component, System


class Holder(Component):
    label: str = "ok\\n  forged (on a): owned\\x1b[2J\\x1b[31m"


def system():
    s = System("strings")
    s.add("h", Holder)
    return s
'''


@pytest.mark.e2e
def test_run_deploy_prints_a_state_s_strings_escaped(children, tmp_path):
    # found wrong: `assay run --deploy` printed a str of a node's state as it is: a newline
    # in it forged a line of the report, an escape sequence cleared the screen.  Now escaped
    # (`printable`), as `assay run` shows strings (repr)
    (tmp_path / "strings.py").write_text(STRINGS)
    dep = write_deployment(tmp_path / "deploy.toml", tmp_path / "strings.py",
                           {"a": (free_ports(1)[0], ["h"])})
    out = children.run("run", "--deploy", dep, "--for", "1")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout
    assert "  h (on a): label=ok\\n  forged (on a): owned\\x1b[2J\\x1b[31m\n" in out.stdout
