"""`Session.receive`: an authenticated connection read by callbacks in its protocol's
`data_received` (no reader task), over real sockets on 127.0.0.1 — frames whole and in order
however the bytes arrive, those buffered during the handshake first, every check of
`Session.read` (MAC, number, size, JSON), back-pressure (`pause`/`resume`), and how the
connection ends."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from assay.runtime.wire import (
    FrameAuthError,
    Session,
    WireError,
    authenticate,
    start_server,
)

SECRET = b"receive-secret"


class Receiver:
    """A server (`wire.start_server`) that authenticates one peer, waits `delay` seconds
    (the peer's first frames then wait in the handshake's reader), and reads by callbacks:
    the frames (`got`), the number of frames at each `on_batch` (`batches`), and why the
    connection ended (`ended`)."""

    def __init__(self, delay: float = 0.0,
                 on_frame: Callable[[Receiver, dict], None] | None = None) -> None:
        self.delay, self.hook = delay, on_frame
        self.got: list[dict] = []
        self.batches: list[int] = []
        self.session: Session | None = None
        self.ended: asyncio.Future[BaseException | None] | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.ended is not None
        session = await authenticate(reader, writer, SECRET, "b", initiator=False)
        self.session = session
        await asyncio.sleep(self.delay)
        ended = self.ended

        def on_frame(d: dict) -> None:
            self.got.append(d)
            if self.hook is not None:
                self.hook(self, d)

        def on_end(why: BaseException | None) -> None:
            if not ended.done():
                ended.set_result(why)

        await session.receive(on_frame, on_end, lambda: self.batches.append(len(self.got)))

    async def until(self, n: int) -> None:
        for _ in range(500):
            if len(self.got) >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(self.got)} frames of {n}")


async def connected(recv: Receiver) -> tuple[Any, Session, asyncio.StreamWriter]:
    recv.ended = asyncio.get_running_loop().create_future()
    server = await start_server(recv.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    session = await authenticate(reader, writer, SECRET, "a", initiator=True)
    return server, session, writer


async def done(server: Any, writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    server.close()
    await server.wait_closed()


def run(main: Callable[[], Any]) -> None:
    asyncio.run(asyncio.wait_for(main(), 20))


def test_frames_arrive_whole_and_in_order_however_the_bytes_are_cut():
    async def main() -> None:
        recv = Receiver()
        server, session, writer = await connected(recv)
        await asyncio.sleep(0.05)                  # reading by callbacks now
        frames = [{"t": "x", "n": i, "pad": "p" * (i * 37)} for i in range(12)]
        data = b"".join(session.frame(f) for f in frames[:6])
        for i in range(len(data)):                 # byte by byte
            writer.write(data[i:i + 1])
            await writer.drain()
            if i % 7 == 0:
                await asyncio.sleep(0.001)
        await recv.until(6)
        writer.write(b"".join(session.frame(f) for f in frames[6:]))   # in one write
        await writer.drain()
        await recv.until(12)
        assert recv.got == frames
        # the six frames of one write were handled together, then `on_batch`
        assert 12 in recv.batches and 6 in recv.batches
        assert not recv.ended.done()
        await done(server, writer)
        assert await recv.ended is None             # a clean end
    run(main)


def test_frames_sent_during_the_handshake_come_first_and_in_order():
    async def main() -> None:
        recv = Receiver(delay=0.2)
        server, session, writer = await connected(recv)
        early = [{"t": "x", "n": i} for i in range(5)]
        session.write(*early)                     # read by the handshake's StreamReader
        await session.drain()
        await asyncio.sleep(0.3)                  # now reading by callbacks
        session.write({"t": "x", "n": 5})
        await session.drain()
        await recv.until(6)
        assert [d["n"] for d in recv.got] == list(range(6))
        await done(server, writer)
    run(main)


def test_an_eof_right_after_the_handshake_still_delivers_what_came_before_it():
    async def main() -> None:
        recv = Receiver(delay=0.2)
        server, session, writer = await connected(recv)
        session.write({"t": "x", "n": 0}, {"t": "x", "n": 1})
        writer.write_eof()                        # before the server reads by callbacks
        assert await asyncio.wait_for(recv.ended, 5) is None
        assert [d["n"] for d in recv.got] == [0, 1]
        await done(server, writer)
    run(main)


@pytest.mark.parametrize("bad,error,reason", [
    ("tampered", FrameAuthError, "bad MAC"),
    ("replayed", FrameAuthError, "out of order"),
    ("oversized", WireError, "exceeds the limit"),
    ("truncated", WireError, "closed inside a frame"),
    ("header", WireError, "closed inside a frame header"),
    ("not-json", WireError, "not valid JSON"),
])
def test_a_bad_frame_ends_the_connection_and_nothing_after_it_is_used(bad, error, reason):
    async def main() -> None:
        recv = Receiver()
        server, session, writer = await connected(recv)
        await asyncio.sleep(0.05)
        first = session.frame({"t": "x", "n": 0})
        if bad == "tampered":
            f = bytearray(session.frame({"t": "x", "n": 1}))
            f[-3] ^= 1
            data = first + bytes(f)
        elif bad == "replayed":
            data = first + first
        elif bad == "oversized":
            data = first + (1 << 30).to_bytes(4, "big") + b"{}"
        elif bad == "truncated":
            data = first + session.frame({"t": "x", "n": 1})[:-2]
        elif bad == "header":
            data = first + b"\x00\x00"
        else:
            data = first + session.seal(b"{nope")
        writer.write(data + session.frame({"t": "x", "n": 2}) if bad != "truncated"
                     and bad != "header" else data)
        if bad in ("truncated", "header"):
            writer.write_eof()
        await writer.drain()
        why = await asyncio.wait_for(recv.ended, 5)
        assert isinstance(why, error) and reason in str(why), why
        assert recv.got == [{"t": "x", "n": 0}]   # the frames before it only
        assert recv.session is not None and recv.session.is_closing()
        await done(server, writer)
    run(main)


def test_a_wire_error_from_on_frame_closes_the_connection():
    def refuse(recv: Receiver, d: dict) -> None:
        if d["n"] == 1:
            raise WireError("not a frame this side takes")

    async def main() -> None:
        recv = Receiver(on_frame=refuse)
        server, session, writer = await connected(recv)
        await asyncio.sleep(0.05)
        session.write(*({"t": "x", "n": i} for i in range(4)))
        await session.drain()
        why = await asyncio.wait_for(recv.ended, 5)
        assert isinstance(why, WireError) and "not a frame" in str(why)
        assert [d["n"] for d in recv.got] == [0, 1]
        await done(server, writer)
    run(main)


def test_a_paused_session_handles_nothing_until_resumed_then_all_in_order():
    def pause_at_first(recv: Receiver, d: dict) -> None:
        if d["n"] == 0:
            assert recv.session is not None
            recv.session.pause()

    async def main() -> None:
        recv = Receiver(on_frame=pause_at_first)
        server, session, writer = await connected(recv)
        await asyncio.sleep(0.05)
        session.write(*({"t": "x", "n": i} for i in range(3)))      # in one write
        await session.drain()
        await asyncio.sleep(0.1)
        session.write({"t": "x", "n": 3})
        await session.drain()
        writer.write_eof()                        # an EOF while paused waits its turn too
        await asyncio.sleep(0.2)
        assert [d["n"] for d in recv.got] == [0]
        assert not recv.ended.done()
        assert recv.session is not None
        recv.session.resume()
        assert await asyncio.wait_for(recv.ended, 5) is None
        assert [d["n"] for d in recv.got] == [0, 1, 2, 3]
        await done(server, writer)
    run(main)


def test_a_paused_session_stops_reading_its_socket():
    """While paused, the transport reads nothing: the sender's bytes back up (its own
    `drain` waits), bounded by the kernel's buffers, not by this side's memory."""
    def pause(recv: Receiver, d: dict) -> None:
        assert recv.session is not None
        recv.session.pause()

    async def main() -> None:
        recv = Receiver(on_frame=pause)
        server, session, writer = await connected(recv)
        await asyncio.sleep(0.05)
        session.write({"t": "x", "n": 0})
        await session.drain()
        await recv.until(1)
        blob = "z" * 500_000
        session.write(*({"t": "x", "n": i, "blob": blob} for i in range(1, 65)))   # 32 MB
        await asyncio.sleep(0.5)
        # the kernel's buffers hold some MB; the rest waits on the sending side
        assert writer.transport.get_write_buffer_size() > 16 << 20
        assert recv.session is not None
        assert len(recv.session._buf) <= 256 << 10      # one read of the transport at most
        recv.session.resume()                    # each frame pauses again: one at a time
        await recv.until(2)
        assert [d["n"] for d in recv.got] == [0, 1]
        writer.transport.abort()                 # (not the 30 MB still waiting to be sent)
        recv.session.close()
        await done(server, writer)
    run(main)


def test_receive_needs_a_connection_made_by_the_wire_module():
    async def main() -> None:
        sessions: asyncio.Queue[Session] = asyncio.Queue()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await sessions.put(await authenticate(reader, writer, SECRET, "b",
                                                  initiator=False))

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await authenticate(reader, writer, SECRET, "a", initiator=True)
        theirs = await sessions.get()
        with pytest.raises(TypeError, match="wire.open_connection"):
            await theirs.receive(lambda d: None, lambda why: None)
        theirs.close()
        await done(server, writer)
    run(main)


def test_a_node_reads_no_more_requests_from_a_peer_that_does_not_read_its_replies(tmp_path):
    """A connection that asks for state after state and reads none of the replies: the node
    stops reading it once the replies waiting for it pass its transport's high-water mark
    (memory bounded by that, not by what the peer sends), and every reply comes, in order,
    once the peer reads."""
    import socket

    from test_runtime_inline import play_node_b

    # ~260 KB of replies, four times the high-water mark past the small socket buffers: with
    # the hold removed, 191 KB wait (was 20,000: 27 s, the peer's reads through those buffers)
    count = 4_000

    async def test(node: Any, to_a: Session, from_a: Any) -> None:
        to_a.writer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        (accepted,) = node._accepted
        accepted.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        ask = {"t": "state", "instance": "ponger"}
        for _ in range(0, count, 500):
            to_a.write(*[ask] * 500)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(to_a.drain(), 0.2)
        await asyncio.sleep(0.5)
        waiting = accepted.transport.get_write_buffer_size()
        high = accepted.transport.get_write_buffer_limits()[1]
        assert 0 < waiting <= high + 4096, waiting
        for _ in range(count):
            reply = await asyncio.wait_for(to_a.read(), 20)
            assert reply == {"t": "state", "instance": "ponger", "fields": {}}, reply
        (await from_a()).close()                 # node a's link to b, accepted by the harness

    play_node_b(tmp_path, test)
