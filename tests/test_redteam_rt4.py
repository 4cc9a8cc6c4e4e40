"""Runtime red team, fourth round: a node against hostile peers that hold the secret, after
wire version 4 let acknowledgements ride on a peer node's own connection.

Each test runs node a (a real `TcpNode`, in this process, on 127.0.0.1) of
tests/fixtures/runtime/fanout.py and plays its peers b and c itself over the authenticated
wire: real sockets, the real handshake and MACs.  Probes that held are pinned here too (see
the CHANGELOG entry for the list); each fix's test fails before it.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from runtime_support import ROOT, free_ports, write_deployment

from assay.runtime.deploy import load_deployment
from assay.runtime.tcp import TcpNode
from assay.runtime.wire import (
    AuthError,
    Session,
    WireError,
    authenticate,
    encode_frame,
    envelope_from_wire,
    read_frame,
)

SECRET = "rt4-red-team-secret-0123456789"
FANOUT = ROOT / "tests" / "fixtures" / "runtime" / "fanout.py"


@dataclass
class A:
    """Node a, and what the test holds of its peers: the connections a's links opened to
    the peers the test listens as (`link(name)`, authenticated here)."""

    node: TcpNode
    port: int
    accepted: dict[str, asyncio.Queue[Session]] = field(default_factory=dict)
    connections: dict[str, int] = field(default_factory=dict)
    opened: list[Session] = field(default_factory=list)      # closed when the test ends

    async def link(self, peer: str) -> Session:
        return await asyncio.wait_for(self.accepted[peer].get(), 10)

    async def login(self, as_node: str, rcvbuf: int | None = None) -> Session:
        """A connection to a's server, authenticated as `as_node` (this test holds the
        secret)."""
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            s = await authenticate(reader, writer, SECRET.encode(), as_node, initiator=True)
        except BaseException:
            writer.close()
            raise
        self.opened.append(s)
        return s

    def unacked(self, peer: str) -> list[tuple[str, int]]:
        return sorted(self.node.links[peer].unacked)

    def got(self, instance: str) -> int:
        return int(self.node.node.state(instance)["got"])


@contextlib.asynccontextmanager
async def node_a(tmp_path: Path, hosted: list[str], peers: dict[str, list[str]],
                 listen: tuple[str, ...] = (), limit: int = 3,
                 hang_up: bool = False) -> AsyncIterator[A]:
    """Node a hosting `hosted`, its peers `peers` (node -> instances); the test listens as
    each node of `listen` and authenticates a's link to it (`A.link`), or, with `hang_up`,
    closes it at once once authenticated (`A.connections` counts them)."""
    ports = free_ports(1 + len(peers))
    dep = write_deployment(tmp_path / "deploy.toml", FANOUT,
                           {"a": (ports[0], hosted),
                            **{n: (p, i) for (n, i), p in zip(peers.items(), ports[1:])}},
                           params={"limit": limit}, secret=SECRET)
    logging.getLogger("assay.runtime").setLevel(logging.ERROR)
    node = TcpNode(load_deployment(dep), "a")
    a = A(node, ports[0])
    servers = []
    for name, port in zip(peers, ports[1:]):
        if name not in listen:
            continue
        a.accepted[name] = asyncio.Queue()
        a.connections[name] = 0

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         name: str = name) -> None:
            try:
                s = await authenticate(reader, writer, SECRET.encode(), name, initiator=False)
            except (AuthError, OSError):
                writer.close()
                return
            a.connections[name] += 1
            a.opened.append(s)
            if hang_up:
                writer.close()
            else:
                a.accepted[name].put_nowait(s)

        servers.append(await asyncio.start_server(accept, "127.0.0.1", port))
    started = asyncio.Event()
    serving = asyncio.create_task(node.serve(signals=(), started=started))
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield a
    finally:
        node.stop()
        await asyncio.wait_for(serving, 20)
        for server in servers:
            server.close()
        for s in a.opened:
            s.close()
        await asyncio.sleep(0.05)                   # (the transports close)
    assert node.failed is None


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())


async def until(pred: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def closed_by_a(s: Session, within: float = 5.0) -> bool:
    """Whether a closes `s` (EOF, or a reset) within `within` s (reading what it sends)."""
    try:
        async with asyncio.timeout(within):
            while await s.reader.read(1 << 16):
                pass
        return True
    except TimeoutError:                    # (an OSError: first)
        return False
    except (ConnectionError, OSError):
        return True
    finally:
        s.close()


def count(seq: int, n: int = 1, src: str = "to_c", dst: str = "on_c",
          epoch: str = "life-1") -> dict[str, Any]:
    """A Count from `src` (on node c) to `dst` (on node a), as the wire carries it."""
    return {"t": "msg", "src": src, "src_port": "out", "dst": dst, "dst_port": "src",
            "clock": 1, "message": {"type": "Count", "fields": {"n": n}}, "seq": seq,
            "epoch": epoch}


# --- acknowledgements on a peer's connection ----------------------------------------------------

THREE = {"hosted": ["to_b", "to_c"], "peers": {"b": ["on_b"], "c": ["on_c"]},
         "listen": ("b", "c")}


def test_a_peer_s_acknowledgements_clear_only_the_frames_sent_to_it(tmp_path):
    # probe that held: node b, authenticated as itself, acknowledges every frame number a
    # sent (to b and to c: a numbers each link from 1), on its connection to a's server and
    # on a's link to it: only a's frames to b are cleared, a's frames to c stay to be resent
    async def main() -> None:
        async with node_a(tmp_path, **THREE) as a:   # type: ignore[arg-type]
            link_b, link_c = await a.link("b"), await a.link("c")
            await until(lambda: len(a.unacked("b")) == len(a.unacked("c")) == 3,
                        "a's three frames to each of b and c")
            to_c = a.unacked("c")
            mine = a.node.epoch
            b = await a.login("b")
            b.write({"t": "acks", "seqs": [1, 2], "epoch": mine}, {"t": "ack", "seq": 3})
            await b.drain()
            await until(lambda: not a.unacked("b"), "b's acknowledgements handled")
            link_b.write({"t": "acks", "seqs": [1, 2, 3], "epoch": mine})   # once more,
            await link_b.drain()                                            # on a's link
            await asyncio.sleep(0.2)
            assert a.unacked("c") == to_c
            assert not b.is_closing() and not a.node.links["b"].session.is_closing()
            # and the frames kept for c are the ones c gets when it acknowledges them
            link_c.write({"t": "acks", "seqs": [1, 2, 3], "epoch": mine})
            await link_c.drain()
            await until(lambda: not a.unacked("c"), "c's acknowledgements handled")
            b.close()

    run(main)


HOSTILE_ACKS = {                               # (frame, whether a closes the connection)
    "never-sent": ({"t": "acks", "seqs": [4, 10**12, 2**63 - 1]}, False),
    "duplicates": ({"t": "acks", "seqs": [7, 7, 7]}, False),
    "another-life": ({"t": "ack", "seq": 1, "epoch": "not-a-s-life"}, False),
    "zero": ({"t": "ack", "seq": 0}, True),
    "negative": ({"t": "acks", "seqs": [1, -1]}, True),
    "2**63": ({"t": "ack", "seq": 2**63}, True),
    "2**64": ({"t": "acks", "seqs": [2**64]}, True),
    "a-string": ({"t": "ack", "seq": "1"}, True),
    "a-float": ({"t": "acks", "seqs": [1.0]}, True),
    "a-bool": ({"t": "ack", "seq": True}, True),
    "none": ({"t": "acks", "seqs": []}, True),
    "1025": ({"t": "acks", "seqs": list(range(1, 1026))}, True),
    "bad-epoch": ({"t": "ack", "seq": 1, "epoch": "../x"}, True),
    "extra-key": ({"t": "ack", "seq": 1, "to": "c"}, True),
}


def test_hostile_acknowledgements_clear_nothing_and_the_bad_ones_close_their_connection(
        tmp_path):
    # probes that held: acknowledgements of frames never sent (far beyond the last),
    # repeated, of another life; numbers 0, negative, 2**63, 2**64, of the wrong type, none,
    # too many, malformed: on b's connection to a's server (and a's link to b) nothing of
    # a's frames to c is cleared, nor of its frames to b; what is malformed closes its
    # connection, what is only unknown is ignored
    async def main() -> None:
        async with node_a(tmp_path, **THREE) as a:   # type: ignore[arg-type]
            link_b = await a.link("b")
            await a.link("c")
            await until(lambda: len(a.unacked("b")) == len(a.unacked("c")) == 3,
                        "a's three frames to each of b and c")
            before = {p: a.unacked(p) for p in "bc"}
            for name, (frame, closes) in HOSTILE_ACKS.items():
                b = await a.login("b")
                b.write({"epoch": a.node.epoch, **frame} if "epoch" not in frame else frame)
                await b.drain()
                assert await closed_by_a(b, 3.0 if closes else 0.3) == closes, name
                assert {p: a.unacked(p) for p in "bc"} == before, name
            # on a's link to b: a malformed one closes the link, which reconnects
            link_b.write({"t": "ack", "seq": 0})
            await link_b.drain()
            assert await closed_by_a(link_b)
            await a.link("b")                       # resent to b on the new connection
            assert {p: a.unacked(p) for p in "bc"} == before

    run(main)


def test_acknowledgements_from_a_control_client_or_before_the_handshake_are_refused(tmp_path):
    # probes that held: a control client (no node: no link of a's to acknowledge) sending an
    # acknowledgement has its connection closed; one sent instead of a hello, or between
    # the hello and the proof, ends the handshake; nothing is cleared either way
    async def main() -> None:
        async with node_a(tmp_path, **THREE) as a:   # type: ignore[arg-type]
            await a.link("b")
            await a.link("c")
            await until(lambda: len(a.unacked("b")) == len(a.unacked("c")) == 3,
                        "a's three frames to each of b and c")
            before = {p: a.unacked(p) for p in "bc"}
            ack = {"t": "acks", "seqs": [1, 2, 3], "epoch": a.node.epoch}
            ctl = await a.login("control")
            ctl.write(ack)
            await ctl.drain()
            assert await closed_by_a(ctl)
            for at in ("hello", "proof"):
                reader, writer = await asyncio.open_connection("127.0.0.1", a.port)
                if at == "proof":
                    writer.write(encode_frame({"t": "hello", "v": 4, "node": "b",
                                               "nonce": "ab" * 32}))
                    assert (await read_frame(reader))["t"] == "hello"
                writer.write(encode_frame(ack))
                with contextlib.suppress(ConnectionError, WireError):
                    while (await asyncio.wait_for(read_frame(reader), 5)) is not None:
                        pass                        # (a's hello or proof, then EOF)
                writer.close()
            assert {p: a.unacked(p) for p in "bc"} == before

    run(main)
