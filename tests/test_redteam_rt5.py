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

from assay.runtime.wire import AuthError, WireError, authenticate, encode_frame

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


def test_a_flood_of_handshakes_from_one_host_does_not_close_another_host_s(tmp_path):
    # found wrong: past 64 connections authenticating, a node closed the oldest of all, so
    # a flood (no secret needed) of 64 connections per round trip of an honest peer's
    # handshake closed every honest handshake: here node c, from 127.0.0.2, stalls 0.3 s
    # before its hello (a long round trip) while 127.0.0.1 opens connections.  Now the
    # oldest of the host that has the most goes: c authenticates, its Count is handled
    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            flooding = asyncio.Event()
            opened: list[asyncio.StreamWriter] = []

            async def flood() -> None:
                while True:
                    _, writer = await asyncio.open_connection("127.0.0.1", a.port)
                    opened.append(writer)
                    if len(opened) == 70:
                        flooding.set()

            task = asyncio.create_task(flood())
            try:
                await asyncio.wait_for(flooding.wait(), 10)
                reader, writer = await asyncio.open_connection("127.0.0.1", a.port,
                                                               local_addr=("127.0.0.2", 0))
                before = len(opened)
                await asyncio.sleep(0.3)
                assert len(opened) - before > 64          # (the flood went on meanwhile)
                c = await authenticate(reader, writer, SECRET.encode(), "c", initiator=True)
                c.write(count(1))
                await c.drain()
                await until(lambda: a.got("on_c") == 1, "c's Count handled")
                c.close()
            finally:
                task.cancel()
                for w in opened:
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


# --- numbers at every edge of a frame ---------------------------------------------------------

def _count_payload(seq: int, n: str = "1", clock: str = "1", seq_text: str | None = None
                   ) -> bytes:
    """A Count from to_c (node c) to on_c (node a) as raw JSON, its numbers written as given
    (what the encoder would refuse to write: 5,000 digits, NaN)."""
    seq_text = str(seq) if seq_text is None else seq_text
    return (f'{{"clock":{clock},"dst":"on_c","dst_port":"src","epoch":"life-1","message":'
            f'{{"fields":{{"n":{n}}},"type":"Count"}},"seq":{seq_text},"src":"to_c",'
            '"src_port":"out","t":"msg"}').encode()


DEEP = "[" * 100_000 + "]" * 100_000
EDGES = {                     # name: (payload, whether a closes the connection, Counts handled)
    "n of 5,000 digits": (_count_payload(1, n="1" * 5000), True, 0),
    "n of 4,300 digits": (_count_payload(2, n="1" * 4300), False, 1),  # (an int: unbounded)
    "n = 2**63": (_count_payload(3, n=str(2**63)), False, 1),
    "n = -0.0": (_count_payload(4, n="-0.0"), False, 0),                # dropped: not an int
    "n = 1e999": (_count_payload(5, n="1e999"), False, 0),              # (inf): dropped
    "n = NaN": (_count_payload(6, n="NaN"), True, 0),
    "n = -Infinity": (_count_payload(7, n="-Infinity"), True, 0),
    "n nested 100,000 deep": (_count_payload(8, n=DEEP), True, 0),
    "seq = 2**63": (_count_payload(0, seq_text=str(2**63)), True, 0),
    "seq = 1.0": (_count_payload(0, seq_text="1.0"), True, 0),
    "seq = -0": (_count_payload(0, seq_text="-0"), True, 0),
    "seq of 5,000 digits": (_count_payload(0, seq_text="9" * 5000), True, 0),
    "clock = -0.0": (_count_payload(9, clock="-0.0"), True, 0),
    "clock = 2**62": (_count_payload(10, clock=str(2**62)), True, 0),
    "clock nested": (_count_payload(11, clock=DEEP), True, 0),
}


@pytest.mark.parametrize("edge", EDGES)
def test_numbers_at_every_edge_of_a_frame_are_refused_or_typed_never_a_crash(tmp_path, edge):
    # probes that held: each number a JSON frame can carry at an edge (more digits than
    # Python reads, 2**63, -0.0, NaN, Infinity, 1e999, nested past the recursion limit) in a
    # message's field, its number or its clock: a frame that is not JSON a node reads, or
    # whose own numbers are out of range, closes its connection; a field its declared type
    # does not take is dropped (acknowledged); an int field takes any int, as in the model.
    # The node goes on, and c's next Count on a new connection is handled
    payload, closes, handled = EDGES[edge]

    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            c = await a.login("c")
            c.write_payloads([payload])
            await c.drain()
            assert await closed_by_a(c, 5.0 if closes else 0.3) == closes
            assert a.got("on_c") == handled
            c = await a.login("c")
            c.write(count(20))
            await c.drain()
            await until(lambda: a.got("on_c") == handled + 1, "c's next Count handled")
            assert a.node.failed is None

    run(main)


# --- replays ----------------------------------------------------------------------------------

def test_a_frame_replayed_on_its_connection_or_after_a_restart_is_handled_once(tmp_path):
    # probes that held: a sealed frame written twice on its connection (the second closes
    # it: its number is not the next one); the handshake's hello sent again after it (no
    # MAC: closes); and, after a's restart from its state directory, c's handled message
    # sent again (same life, same number) on a new connection: acknowledged, not handled
    # again (the numbers handled are durable), while a new one is
    state = tmp_path / "state"

    async def first() -> None:
        async with node_a(tmp_path, **ON_A, state_dir=state) as a:   # type: ignore[arg-type]
            c = await a.login("c")
            sealed = c.seal(_count_payload(1))
            c.writer.write(sealed + sealed)
            await c.drain()
            assert await closed_by_a(c)
            assert a.got("on_c") == 1
            c = await a.login("c")
            c.writer.write(encode_frame({"t": "hello", "v": 4, "node": "c",
                                         "nonce": "ab" * 32}))
            await c.drain()
            assert await closed_by_a(c)
            assert a.got("on_c") == 1

    async def again() -> None:
        async with node_a(tmp_path, **ON_A, state_dir=state) as a:   # type: ignore[arg-type]
            assert a.got("on_c") == 0                # (not a persistent field)
            c = await a.login("c")
            c.write_payloads([_count_payload(1), _count_payload(2)])
            await c.drain()
            await until(lambda: a.got("on_c") == 1, "the new Count handled")
            await asyncio.sleep(0.3)
            assert a.got("on_c") == 1                # the replayed one was not
            assert not await closed_by_a(c, 0.2)

    run(first)
    run(again)


# --- messages a port does not take now ------------------------------------------------------------

ORDER = '''
from assay import Component, Message, Port, System, on
from assay import protocol as p


class First(Message):
    n: int


class Then(Message):
    n: int


SIDE = p.send(First) >> p.send(Then)


class Src(Component):
    out = Port(SIDE)


class Dst(Component):
    inp = Port(SIDE.dual())
    got: str = ""

    @on(First)
    def first(self, m):
        self.got += "F"

    @on(Then)
    def then(self, m):
        self.got += "T"


def system(limit: int = 0):
    s = System("order")
    s.connect(s.add("src", Src).out, s.add("dst", Dst).inp)
    return s
'''


def test_a_message_its_port_s_protocol_does_not_take_now_is_a_rejected_step(tmp_path):
    # probe that held: c (hosting src) sends Then before First, against the protocol of
    # dst's port: the step is a protocol violation, rejected (dst's state unchanged, under
    # enforce); First then Then are handled; the node goes on
    spec = tmp_path / "order.py"
    spec.write_text(ORDER)

    def msg(seq: int, mtype: str) -> dict[str, object]:
        return {"t": "msg", "src": "src", "src_port": "out", "dst": "dst", "dst_port": "inp",
                "clock": 1, "message": {"type": mtype, "fields": {"n": seq}}, "seq": seq,
                "epoch": "life-1"}

    async def main() -> None:
        async with node_a(tmp_path, ["dst"], {"c": ["src"]}, spec=spec) as a:
            c = await a.login("c")
            c.write(msg(1, "Then"))
            await c.drain()
            await until(lambda: a.node.node.violation_count == 1, "a protocol violation")
            [(_, v)] = a.node.node.violations
            assert v.kind == "protocol", v
            assert a.node.node.state("dst")["got"] == ""
            c.write(msg(2, "First"), msg(3, "Then"))
            await c.drain()
            await until(lambda: a.node.node.state("dst")["got"] == "FT", "First, then Then")
            assert a.node.node.violation_count == 1

    run(main)


# --- the control client ---------------------------------------------------------------------------

def test_the_control_client_with_a_wrong_secret_is_refused_and_a_status_flood_stops_nothing(
        tmp_path):
    # probes that held: a status request with a wrong secret is an `AuthError` (nothing of
    # the node's state is read); 300 status requests at once, with the secret, each end
    # (answered, or the connection closed: control clients keep 16 connections at most),
    # none hangs, and c's Counts sent meanwhile are all handled
    from assay.runtime.tcp import control

    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            with pytest.raises(AuthError):
                await control("127.0.0.1", a.port, b"not-the-secret-0123456789",
                              {"t": "status"})
            c = await a.login("c")

            async def status() -> object:
                try:
                    return await control("127.0.0.1", a.port, SECRET.encode(),
                                         {"t": "status"}, timeout=10)
                except (OSError, WireError) as e:
                    return e

            flood = [asyncio.create_task(status()) for _ in range(300)]
            for seq in range(1, 51):
                c.write(count(seq))
            await c.drain()
            replies = await asyncio.wait_for(asyncio.gather(*flood), 30)
            await until(lambda: a.got("on_c") == 50, "c's 50 Counts handled")
            answered = [r for r in replies if isinstance(r, dict) and r["t"] == "status"]
            assert answered, replies[:3]
            reply = await control("127.0.0.1", a.port, SECRET.encode(), {"t": "status"})
            assert reply is not None and reply["t"] == "status"

    run(main)


def test_a_frame_s_megabyte_is_not_one_line_of_the_log(tmp_path, caplog):
    # found wrong: a frame refused for a field of 900,000 characters (a str where an int
    # goes, a port or a type of that length) was logged with the whole value: 900 KB a
    # line, 50 distinct lines a minute (the log's budget), and as much held in memory by
    # the budget.  Now a line says at most 2,000 characters of it, and how many more
    big = "x" * 900_000

    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            logging.getLogger("assay.runtime").setLevel(logging.WARNING)
            c = await a.login("c")
            c.write({**count(1), "message": {"type": "Count", "fields": {"n": big}}},
                    {**count(2), "dst_port": big}, {**count(3), "dst": "to_b"})
            await c.drain()
            await until(lambda: sum("dropped" in r.getMessage() for r in caplog.records) >= 3,
                        "three drops logged")
            logging.getLogger("assay.runtime").setLevel(logging.ERROR)

    with caplog.at_level(logging.WARNING, logger="assay.runtime"):
        run(main)
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 3, [line[:200] for line in lines]
    for line in lines[:2]:
        assert len(line) < 2100 and "more characters)" in line, line[:200]
