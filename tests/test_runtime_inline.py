"""Messages a node reads are stepped in the reader itself (`TcpNode._step_here`: no wake-up of
the step loop, one turn of the event loop less per message), in the order they came, and only
while nothing is waiting to be written to a peer: a peer that does not read still holds the
node back (back-pressure), and nothing is lost or reordered meanwhile.

Each test runs a real `TcpNode` (node a, hosting the ponger of
tests/benchmarks/ping_pong_spec.py) on 127.0.0.1 in this process and plays node b (the
pinger) itself over the authenticated wire: real sockets, the real handshake and MACs.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from runtime_support import free_ports, write_deployment
from runtime_support import ping_frame as ping

from assay.runtime.wire import Session, authenticate

SECRET = "inline-secret-0123456789abcdef"
SPEC = Path(__file__).parent / "benchmarks" / "ping_pong_spec.py"


async def pongs(session: Session, count: int) -> list[int]:
    """The numbers of the next `count` Pongs node a sends (acknowledging each)."""
    got: list[int] = []
    while len(got) < count:
        f = await asyncio.wait_for(session.read(), 20)
        assert f is not None
        if f["t"] == "msg":
            got.append(f["message"]["fields"]["n"])
            session.write({"t": "ack", "seq": f["seq"], "epoch": f["epoch"]})
    return got


def play_node_b(tmp_path: Path, test: Callable[[Any, Session, Callable[[], Awaitable[Session]]],
                                              Awaitable[None]],
                rcvbuf: int | None = None, spec: Path = SPEC,
                hosted: tuple[str, ...] = ("ponger",),
                params: dict[str, Any] | None = None, ack_delay: float = 0.005,
                clean: bool = True) -> None:
    """Start node a (hosting `hosted` of `spec`; default: the ping-pong's ponger), connect to
    it as node b (the pinger), and run `test(node, to_a, from_a)`: `to_a` the session on
    which node b sends, `from_a()` waits for node a's link to node b (accepted and
    authenticated here; with `rcvbuf`, its socket's receive buffer that small).  `clean`:
    node a must end without failing or reporting a violation."""
    from assay.runtime.deploy import load_deployment
    from assay.runtime.tcp import TcpNode

    pa, pb = free_ports(2)
    dep_file = write_deployment(tmp_path / "deploy.toml", spec,
                                {"a": (pa, list(hosted)), "b": (pb, ["pinger"])},
                                params={"limit": 10} if params is None else params,
                                secret=SECRET)
    logging.getLogger("assay.runtime").setLevel(logging.ERROR)

    async def main() -> None:
        node = TcpNode(load_deployment(dep_file), "a", ack_delay=ack_delay)
        links: asyncio.Queue[Session] = asyncio.Queue()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            links.put_nowait(await authenticate(reader, writer, SECRET.encode(), "b",
                                                initiator=False))

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf is not None:              # (set before listen: accepted sockets inherit it)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind(("127.0.0.1", pb))
        server = await asyncio.start_server(accept, sock=sock)
        started = asyncio.Event()
        serving = asyncio.create_task(node.serve(signals=(), started=started))
        await asyncio.wait_for(started.wait(), 10)
        reader, writer = await asyncio.open_connection("127.0.0.1", pa)
        try:
            to_a = await authenticate(reader, writer, SECRET.encode(), "b", initiator=True)
            await test(node, to_a, lambda: asyncio.wait_for(links.get(), 20))
        finally:
            writer.close()
            node.stop()
            await asyncio.wait_for(serving, 20)
            server.close()
        if clean:
            assert node.failed is None and node.node.violation_count == 0

    asyncio.run(main())


def test_messages_are_stepped_in_the_reader_in_the_order_they_came(tmp_path):
    """One Ping at a time: each is stepped in the reader (the step loop runs no group), and
    a flood of Pings in writes of many frames is answered in order, every one."""
    async def test(node: Any, to_a: Session, from_a: Callable[[], Awaitable[Session]]) -> None:
        groups = []
        run_group = node._run_group

        def counted(*args: Any) -> Any:
            groups.append(1)
            return run_group(*args)

        node._run_group = counted
        to_a.write(ping(1))
        from_a_session = await from_a()
        assert await pongs(from_a_session, 1) == [1]
        for n in range(2, 21):
            to_a.write(ping(n))
            assert await pongs(from_a_session, 1) == [n]
        assert groups == []                 # before: every step was a group of the loop's
        for first in range(21, 621, 40):    # a flood: 40 frames a write, none awaited
            to_a.write(*[ping(n) for n in range(first, first + 40)])
        assert await pongs(from_a_session, 600) == list(range(21, 621))
        assert node.node.steps == 620
        from_a_session.close()

    play_node_b(tmp_path, test)


def test_a_peer_that_does_not_read_still_holds_the_node_back(tmp_path):
    """Node b floods node a with Pings and reads none of the Pongs: node a's steps stop once
    its connection to b holds more than its transport takes (the bytes waiting stay bounded:
    the step loop waits for the connection to drain, and the reader steps nothing while
    bytes wait), and every Pong comes, in order, once b reads."""
    count = 5_000

    async def test(node: Any, to_a: Session, from_a: Callable[[], Awaitable[Session]]) -> None:
        to_a.write(ping(1))
        from_a_session = await from_a()
        assert await pongs(from_a_session, 1) == [1]    # then not read from until the end
        # the kernel's buffers on both sides small (autotuned, they take megabytes)
        sock = node.links["b"].session.writer.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        node.FAIR = 60.0          # no group ends on time: only bytes waiting stop the reader
        for n in range(2, count + 1):       # one frame a write: the reader steps each
            to_a.write(ping(n))              # alone, unless bytes wait for b
            await to_a.drain()
            if n % 4 == 0:
                await asyncio.sleep(0)
        steps = -1
        while node.node.steps != steps:             # until node a stops stepping
            steps = node.node.steps
            await asyncio.sleep(0.5)
        waiting = node.links["b"].session.writer.transport.get_write_buffer_size()
        assert steps < count, "node a stepped every Ping with its peer not reading"
        # the transport's high-water mark (64 KiB) and one group's frames (GROUP) at most
        assert 0 < waiting <= 64 * 1024 + node.GROUP * 512, waiting
        assert await pongs(from_a_session, count - 1) == list(range(2, count + 1))
        from_a_session.close()

    play_node_b(tmp_path, test, rcvbuf=4096)


RELAY = '''
from assay import Component, Message, Port, System, on


class Ping(Message):
    n: int


class Fwd(Message):
    n: int


class Pinger(Component):
    peer = Port()


class Relay(Component):
    peer = Port(many=True)
    out = Port()

    @on(Ping)
    def ping(self, m):
        self.out.send(Fwd(m.n))


class Sink(Component):
    inp = Port()
    seen: int = 0

    @on(Fwd)
    def fwd(self, m):
        self.seen += 1


def system() -> System:
    s = System("relay")
    pinger = s.add("pinger", Pinger)
    relay = s.add("ponger", Relay)
    sink = s.add("sink", Sink)
    s.connect(pinger.peer, relay.peer)
    s.connect(relay.out, sink.inp)
    return s
'''


def test_a_message_to_an_instance_on_the_same_node_is_stepped_without_another_frame(tmp_path):
    """A Ping stepped in the reader sends a message to an instance on the same node: that one
    is stepped too, with no further frame coming to wake the node (it waited for the next
    frame before; a ring of accounts on two nodes stopped for good, all its money in flight
    between two instances of one node)."""
    spec = tmp_path / "relay.py"
    spec.write_text(RELAY)

    async def test(node: Any, to_a: Session, from_a: Callable[[], Awaitable[Session]]) -> None:
        for n in (1, 2, 3):
            to_a.write(ping(n))
            for _ in range(500):
                if node.node.state("sink")["seen"] == n:
                    break
                await asyncio.sleep(0.01)
            assert node.node.state("sink")["seen"] == n, f"Fwd({n}) was never stepped"
        (await from_a()).close()                # node a's link to node b, never written to

    play_node_b(tmp_path, test, spec=spec, hosted=("ponger", "sink"), params={})


def test_young_garbage_collections_run_after_the_answer_is_written(tmp_path):
    """The young garbage collections come when node a has written its Pong and waits
    (`tcp.collect_young`), not when allocation counts trigger them, mostly while a Ping is
    being handled: of the collections during 1,000 round trips (this process plays node b too,
    whose allocations count as well), most start in `collect_young`, none of generation 2
    there.  Before, none did."""
    import gc
    import sys

    starts: list[tuple[int, bool]] = []        # (generation, started by collect_young)

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase != "start":
            return
        f = sys._getframe(1)
        while f is not None and f.f_code.co_name != "collect_young":
            f = f.f_back
        starts.append((info["generation"], f is not None))

    async def test(node: Any, to_a: Session, from_a: Callable[[], Awaitable[Session]]) -> None:
        to_a.write(ping(1))
        from_a_session = await from_a()
        assert await pongs(from_a_session, 1) == [1]
        gc.callbacks.append(on_gc)
        try:
            for n in range(2, 1002):
                to_a.write(ping(n))
                assert await pongs(from_a_session, 1) == [n]
        finally:
            gc.callbacks.remove(on_gc)
        from_a_session.close()

    before = gc.get_threshold()
    gc.set_threshold(400, *before[1:])          # (below the default: node a keeps few
    #                                             objects a round, ~1 young pass in 100 at 700)
    # A full pass first: `collect_young` stands aside while generation 2 is due, and in a
    # test process with a large heap left by earlier tests the interpreter postpones that
    # pass (it waits until a quarter of the long-lived objects are new), so it stayed due
    # through every round (CI: 4 young passes in 1,000 rounds, none of them ours).
    gc.collect()
    try:
        play_node_b(tmp_path, test, params={"limit": 1000})
    finally:
        gc.set_threshold(*before)
    young = [ours for gen, ours in starts if gen < 2]
    assert len(young) >= 5, starts
    assert sum(young) >= 0.8 * len(young), starts
    assert not any(ours for gen, ours in starts if gen == 2)


def test_acknowledgements_go_with_the_messages_to_their_sender(tmp_path):
    """Node a owes node b the acknowledgement of a Ping and sends it a Pong: one that has
    waited 3/4 of `ack_delay` leaves in the write of the Pong, just before it, on node a's own
    link (one connection, one wake-up of node b) — not on the connection the Ping came on
    when the timer fires.  Node b acknowledges the Pongs on its connection to node a (the
    other way), and node a takes those too.  Every Ping is acknowledged once."""
    from assay.runtime.wire import decode_ack

    delay = 0.5

    async def test(node: Any, to_a: Session, from_a: Callable[[], Awaitable[Session]]) -> None:
        to_a.write(ping(1))
        link = await from_a()
        seen: list[tuple[str, int]] = []         # what came on the link, in order
        for n in range(1, 6):
            if n > 1:
                await asyncio.sleep(delay * 0.85)    # the ack of Ping(n - 1) is nearly due
                to_a.write(ping(n))
            while True:
                f = await asyncio.wait_for(link.read(), 20)
                assert f is not None
                if f["t"] in ("ack", "acks"):
                    seen += [("ack", s) for s in decode_ack(f).seqs]
                elif f["t"] == "msg":
                    seen.append(("Pong", f["message"]["fields"]["n"]))
                    # b's acknowledgement of the Pong, on its own connection to a
                    to_a.write({"t": "ack", "seq": f["seq"], "epoch": f["epoch"]})
                    break
        # the ack of Ping(n) rode just before Pong(n + 1); the last one's waits for the timer
        assert seen == [("Pong", 1), ("ack", 1), ("Pong", 2), ("ack", 2), ("Pong", 3),
                        ("ack", 3), ("Pong", 4), ("ack", 4), ("Pong", 5)]
        f = await asyncio.wait_for(to_a.read(), 20)      # where Ping(5) came, at the timer
        assert f == {"t": "ack", "seq": 5, "epoch": "life-1"}
        for _ in range(200):                     # b's acknowledgements reached a's link
            if not node.links["b"].unacked:
                break
            await asyncio.sleep(0.01)
        assert node.links["b"].unacked == {}
        link.close()

    play_node_b(tmp_path, test, ack_delay=delay)


DRAWING = """
import random

from assay import Component, Message, Port, System, on


class Ping(Message):
    n: int


class Pong(Message):
    n: int


class Pinger(Component):
    peer = Port()


class Ponger(Component):
    peer = Port(many=True)

    @on(Ping)
    def ping(self, m):      # a draw of the process's random numbers: not a function of m
        self.peer.send(Pong(m.n + (random.random() < 0.5)), to=m.sender)


def system(limit: int = 10) -> System:
    s = System("drawing")
    pinger = s.add("pinger", Pinger)
    ponger = s.add("ponger", Ponger)
    s.connect(pinger.peer, ponger.peer)
    return s
"""


def test_a_nondeterministic_handler_still_stops_the_node_after_its_answer_is_written(
        tmp_path):
    """The determinism check's second run of a sampled step waits until the node has written
    what the step sent and is idle (`Node.tidy`, `Kernel.defer_checks`): the handler that
    draws random numbers is still caught on its first delivery (the first
    `Node.CHECK_FIRST` are all checked), and the node stops with the `SpecError` — one step
    later than when both runs came before the answer, which now leaves first."""
    from assay.errors import SpecError

    spec = tmp_path / "drawing.py"
    spec.write_text(DRAWING)
    failed: list[BaseException | None] = []

    async def test(node: Any, to_a: Session, from_a: Callable[[], Awaitable[Session]]) -> None:
        to_a.write(ping(1))
        session = await from_a()
        assert await pongs(session, 1) in ([1], [2])      # the first run's answer, sent
        for _ in range(1000):               # (until its links are closed: not reconnected)
            if node._closing.is_set():
                break
            await asyncio.sleep(0.01)
        failed.append(node.failed)
        await asyncio.sleep(0.1)
        session.close()

    play_node_b(tmp_path, test, spec=spec, params={}, clean=False)
    assert isinstance(failed[0], SpecError), failed
    assert "gave two different results" in str(failed[0])
    assert "Ponger.ping" in str(failed[0])
