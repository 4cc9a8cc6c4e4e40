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
                 hang_up: bool = False, spec: Path = FANOUT,
                 state_dir: Path | None = None) -> AsyncIterator[A]:
    """Node a hosting `hosted`, its peers `peers` (node -> instances); the test listens as
    each node of `listen` and authenticates a's link to it (`A.link`), or, with `hang_up`,
    closes it at once once authenticated (`A.connections` counts them).  With `state_dir`,
    a keeps its state there (and resumes what is there)."""
    ports = free_ports(1 + len(peers))
    dep = write_deployment(tmp_path / "deploy.toml", spec,
                           {"a": (ports[0], hosted),
                            **{n: (p, i) for (n, i), p in zip(peers.items(), ports[1:])}},
                           params={"limit": limit}, secret=SECRET)
    logging.getLogger("assay.runtime").setLevel(logging.ERROR)
    node = TcpNode(load_deployment(dep), "a",
                   state_dir=None if state_dir is None else str(state_dir))
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
            except BaseException:               # (cancelled: the test is ending)
                writer.close()
                raise
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
                assert await closed_by_a(b, 5.0 if closes else 0.3) == closes, name
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
                try:
                    if at == "proof":
                        writer.write(encode_frame({"t": "hello", "v": 4, "node": "b",
                                                   "nonce": "ab" * 32}))
                        assert (await read_frame(reader))["t"] == "hello"
                    writer.write(encode_frame(ack))
                    with contextlib.suppress(ConnectionError, WireError):
                        while (await asyncio.wait_for(read_frame(reader), 5)) is not None:
                            pass                    # (a's hello or proof, then EOF)
                finally:
                    writer.close()
            assert {p: a.unacked(p) for p in "bc"} == before

    run(main)


# --- a peer that sends and does not read ----------------------------------------------------------

ON_A = {"hosted": ["on_c", "to_b", "on_b"], "peers": {"c": ["to_c"]}, "limit": 0}


def test_a_peer_that_reads_none_of_its_acknowledgements_is_read_no_more(tmp_path):
    # found wrong: node c sends Counts and reads nothing; a acknowledged each on c's
    # connection all the same, and what waited to be written to c grew without bound (20,000
    # Counts: 390 KB, linearly).  Now a reads no more from c while more waits than the
    # transport takes; once c reads, a reads on and every Count is handled once
    sent = 20_000
    big = 10**18                     # (numbers of 19 digits: more bytes to acknowledge)

    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            c = await a.login("c", rcvbuf=4096)
            c.writer.transport.pause_reading()
            await until(lambda: "c" in a.node._peer_sessions, "a's end of c's connection")
            at_a = a.node._peer_sessions["c"].writer.transport
            # (the kernel's send buffer small: autotuned, it takes megabytes first)
            at_a.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
            high = at_a.get_write_buffer_limits()[1]
            peak = written = 0
            for first in range(1, sent + 1, 100):
                c.write(*[count(big + n, n) for n in range(first, first + 100)])
                written = first + 99
                try:
                    await asyncio.wait_for(c.drain(), 0.5)
                except TimeoutError:        # held back: the kernels' buffers are full
                    break
                finally:
                    peak = max(peak, at_a.get_write_buffer_size())
            await asyncio.sleep(0.3)
            peak = max(peak, at_a.get_write_buffer_size())
            assert peak < 2 * high, f"{peak} bytes wait for c (the transport takes {high})"
            assert a.got("on_c") < written                  # held back meanwhile
            c.writer.transport.resume_reading()             # c reads: a goes on

            async def read_all() -> None:
                while await c.reader.read(1 << 16):
                    pass

            reading = asyncio.create_task(read_all())
            await until(lambda: a.got("on_c") == written, "every Count handled", 60)
            reading.cancel()

    run(main)



def test_a_connection_held_twice_is_read_again_only_when_both_holds_end(tmp_path):
    # found wrong: the first of two holds on a connection to end (say, the saves of frames
    # to drop, under way in the background) resumed reading it while the other (its unread
    # acknowledgements) still waited, so a peer sending frames to drop read on past the hold
    # above; now a connection is read again once every hold on it has ended
    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            c = await a.login("c")
            await until(lambda: "c" in a.node._peer_sessions, "a's end of c's connection")
            at_a = a.node._peer_sessions["c"]
            loop = asyncio.get_running_loop()
            first, second = loop.create_future(), loop.create_future()
            a.node._hold(at_a, first)
            a.node._hold(at_a, second)
            c.write(count(1))
            await c.drain()
            first.set_result(None)
            await asyncio.sleep(0.3)
            assert a.got("on_c") == 0, "read while a hold was under way"
            second.set_result(None)
            await until(lambda: a.got("on_c") == 1, "the Count handled once both ended")

    run(main)

# --- a reconnect storm ----------------------------------------------------------------------------

def test_a_peer_that_authenticates_and_hangs_up_at_once_does_not_make_the_link_spin(tmp_path):
    # found wrong: a's link to c, whose peer authenticates and closes the connection at once,
    # reconnected at once, each time (backoff starts over on every handshake) resending every
    # frame it keeps for c: ~500 connections a second, as long as c does so.  Now the link
    # backs off as for a peer that is down until a connection stays up (`LINK_STEADY`)
    async def main() -> None:
        async with node_a(tmp_path, ["to_c", "to_b", "on_b"], {"c": ["on_c"]},
                          listen=("c",), limit=50, hang_up=True) as a:
            await until(lambda: a.connections["c"] >= 1, "a's first connection to c")
            await asyncio.sleep(2.0)
            assert a.connections["c"] < 15, f"{a.connections['c']} connections in 2 s"
            assert len(a.unacked("c")) == 50                # kept, to be sent when c is up

    run(main)


# --- a peer's messages: replayed, backwards, to a port not wired to it, ill-typed ---------------

def test_a_message_resent_or_numbered_backwards_in_one_session_is_handled_once(tmp_path):
    # probe that held: on one connection, c's numbers go 5, 3, 5, 3, 4, 1 (a resend of one
    # queued, of one handled, and lower numbers after higher): each message is handled once
    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            c = await a.login("c")
            c.write(count(5), count(3), count(5))
            await c.drain()
            await until(lambda: a.got("on_c") == 2, "two Counts handled")
            c.write(count(3), count(4), count(1), count(5))
            await c.drain()
            await until(lambda: a.got("on_c") == 4, "four Counts handled")
            await asyncio.sleep(0.3)
            assert a.got("on_c") == 4
            # a frame replayed whole (its bytes again) does not verify: its number is past
            raw = c.seal(b'{"t":"status"}')
            c.writer.write(raw + raw)
            assert await closed_by_a(c)
            assert a.got("on_c") == 4

    run(main)


def test_a_message_to_a_port_not_wired_to_its_sender_reaches_nothing(tmp_path):
    # probe that held: c (hosting to_c, wired to on_c) sends a valid Count to on_b's port
    # (wired to to_b, on a), claiming its own instance, or a's to_b: each is dropped (and
    # acknowledged), no sink counts it, and c's connection serves on
    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            c = await a.login("c")
            c.write(count(1, dst="on_b"), count(2, src="to_b", dst="on_b"),
                    count(3, src="to_b", dst="on_c"), count(4))
            await c.drain()
            await until(lambda: a.got("on_c") == 1, "the Count to on_c handled")
            await asyncio.sleep(0.3)
            assert a.got("on_b") == 0 and a.got("on_c") == 1
            assert not await closed_by_a(c, 0.3)

    run(main)


PING_PONG = ROOT / "tests" / "benchmarks" / "ping_pong_spec.py"


def test_a_peer_s_clock_at_the_limit_does_not_make_every_later_frame_refused(tmp_path):
    # found wrong: node b sent a Ping stamped with clock 2**62 - 1 (the most a frame may
    # carry); a adopted it, and its Pong, and every frame it sent after, carried 2**62 or
    # more: honest nodes refuse those (and close the connection, which a's link resends on,
    # for ever; the clock is saved, so a restart kept it).  Now a received clock is adopted
    # only up to 2**61 (`wire.CLOCK_ADOPT`), 2**61 steps short of what peers refuse
    from runtime_support import ping_frame

    from assay.runtime.wire import CLOCK_LIMIT, decode_frame

    async def main() -> None:
        async with node_a(tmp_path, ["ponger"], {"b": ["pinger"]}, listen=("b",),
                          limit=10, spec=PING_PONG) as a:
            b = await a.login("b")
            b.write({**ping_frame(1), "clock": CLOCK_LIMIT - 1})
            await b.drain()
            link = await a.link("b")
            frame = await asyncio.wait_for(link.read(), 10)
            while frame is not None and frame["t"] != "msg":      # (acknowledgements)
                frame = await asyncio.wait_for(link.read(), 10)
            assert frame is not None and frame["message"]["type"] == "Pong"
            assert decode_frame(frame).clock == 2**61 + 1     # an honest b takes it

    run(main)


TYPED = '''
from enum import Enum
from typing import Annotated, Optional
from assay import Component, Map, Message, Peer, Port, Range, Record, System, on

class Color(Enum):
    RED = "red"

class Entry(Record):
    k: Annotated[int, Range(0, 9)]

class Big(Message):
    b: bool
    i: int
    r: Annotated[int, Range(0, 7)]
    s: str
    c: Color
    p: Peer
    fs: frozenset[int]
    t: tuple[int, str]
    ts: tuple[int, ...]
    o: Optional[int]
    m: Map[str, int]
    e: Entry

class Sink(Component):
    src = Port(many=True)

    @on(Big)
    def big(self, m):
        pass

class Source(Component):
    out = Port()

def system():
    s = System("typed")
    s.connect(s.add("sx", Source).out, s.add("x", Sink).src)
    return s
'''
GOOD = {"b": True, "i": 3, "r": 5, "s": "hi", "c": "RED", "p": "sx", "fs": [1, 2],
        "t": [1, "a"], "ts": [1, 2, 3], "o": None, "m": [["a", 1]],
        "e": {"type": "Entry", "fields": {"k": 3}}}
ILL_TYPED = {                                  # field: a value of JSON its type does not take
    "b=1": ("b", 1), "i=true": ("i", True), "i=1.0": ("i", 1.0), "r=8": ("r", 8),
    "r=-1": ("r", -1), "c=its-value": ("c", "red"), "c=_missing_": ("c", "_missing_"),
    "p=1": ("p", 1), "fs=[true]": ("fs", [True]), "t=[1]": ("t", [1]),
    "t=[1,'a',2]": ("t", [1, "a", 2]), "ts=[1,'a']": ("ts", [1, "a"]), "o='x'": ("o", "x"),
    "m-key-twice": ("m", [["a", 1], ["a", 2]]), "m-key-int": ("m", [[1, 1]]),
    "e.k=10": ("e", {"type": "Entry", "fields": {"k": 10}}),
    "e-of-Big": ("e", {"type": "Big", "fields": {"k": 3}}),
    "e-missing-k": ("e", {"type": "Entry", "fields": {}}), "s=surrogate": ("s", "\ud800"),
    "s=null": ("s", None),
}


def test_a_value_its_declared_type_does_not_take_is_refused_by_the_typed_decode(tmp_path):
    # probes that held: each field of a message of every kind of type, given a JSON value
    # the wire's parser takes but the field's declared type does not (a bool for an int, an
    # int out of its Range, an Enum's value for its name, a tuple of the wrong length, a
    # Map key twice, a record of another class or missing a field, a lone surrogate, ...)
    from assay.kernel.kernel import Kernel
    from assay.model.load import build

    spec = tmp_path / "typed.py"
    spec.write_text(TYPED)
    kernel = Kernel(build(str(spec), None, {})[0])
    ports = {("x", "src"): kernel.receivable("x", "src")}

    def decode(fields: dict[str, Any]) -> Any:
        frame = {"t": "msg", "src": "sx", "src_port": "out", "dst": "x", "dst_port": "src",
                 "clock": 1, "message": {"type": "Big", "fields": fields}}
        return envelope_from_wire(frame, lambda d, p: ports[(d, p)])[0].message

    assert decode(GOOD).e.k == 3
    for name, (f, value) in ILL_TYPED.items():
        with pytest.raises(WireError):
            decode({**GOOD, f: value})
            pytest.fail(name)


# --- the secret -----------------------------------------------------------------------------------

def test_a_secret_from_the_environment_is_its_bytes_and_one_of_two_is_refused(tmp_path,
                                                                            monkeypatch):
    # found wrong: a secret_env variable whose bytes are not UTF-8 (a secret read from
    # /dev/urandom) ended `assay run --deploy` and `assay node` in an internal error (a
    # UnicodeEncodeError traceback); `secret` and `secret_env` both given used the first and
    # ignored the other, silently.  Now the variable's bytes are the secret, and both given
    # is a usage error at the file
    from assay.errors import UsageError

    nodes = {"a": (free_ports(1)[0], ["to_b", "to_c", "on_b", "on_c"])}
    monkeypatch.setenv("RT4_SECRET", "not-utf-8-bytes:\udcff\udcfe")   # (os.environ's form)
    dep = write_deployment(tmp_path / "env.toml", FANOUT, nodes, secret=None,
                           extra='secret_env = "RT4_SECRET"')
    assert load_deployment(dep).secret == b"not-utf-8-bytes:\xff\xfe"
    both = write_deployment(tmp_path / "both.toml", FANOUT, nodes,
                            extra='secret_env = "RT4_SECRET"')
    with pytest.raises(UsageError, match="both secret and secret_env") as e:
        load_deployment(both)
    assert e.value.location is not None and e.value.location.file == str(both)


# --- a hostile node answering `assay run --deploy` ------------------------------------------------

@pytest.mark.parametrize("violations", [[1], ["a string"], [{"kind": "x"}, None]])
def test_a_status_reply_whose_violations_are_not_objects_is_refused(violations):
    # found wrong: a node (a process holding the secret on a node's port) answering a status
    # request with violations that are not objects was taken at its word, and `assay run
    # --deploy` ended in an internal error printing them (`v.get`: an AttributeError); now the
    # reply is refused, as any malformed reply (the supervisor counts the node unanswered)
    from assay.runtime.wire import decode_reply

    assert decode_reply({"t": "status", "violations": [{"kind": "requires"}]}) is not None
    with pytest.raises(WireError, match="'violations' must be a list of objects"):
        decode_reply({"t": "status", "steps": 1, "violations": violations})


BIG = '''
from assay import Component, System


class Holder(Component):
    blob: str = "x" * 1_100_000             # more than one frame carries


class Other(Component):
    n: int = 0


def system():
    s = System("big")
    s.add("h", Holder)
    s.add("o", Other)
    return s
'''


@pytest.mark.e2e
def test_run_deploy_does_not_show_an_error_reply_as_an_empty_state(children, tmp_path):
    # found wrong: a node that could not send an instance's state (too large for one frame:
    # an `error` reply) had it shown by `assay run --deploy` as a state without fields
    # ("h (on a): ", `--json`: {}); now as not reported
    import json

    (tmp_path / "big.py").write_text(BIG)
    dep = write_deployment(tmp_path / "deploy.toml", tmp_path / "big.py",
                           {"a": (free_ports(1)[0], ["h", "o"])})
    out = children.run("run", "--deploy", dep, "--for", "1", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["final"] == {"h": None, "o": {"n": 0}}
