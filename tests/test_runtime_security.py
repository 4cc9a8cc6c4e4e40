"""Runtime security (issue 9 §2), end to end over loopback: a node's own handshake reflected
into its server, frames with numbers out of range, a flood of sender lives from one logged-in
peer, a man in the middle of an authenticated link, and the permissions of state files.

Real `assay node` processes on 127.0.0.1 (ports found free by binding port 0), each killed
with its process group when the test ends; the attacker is this test process, speaking the
wire protocol itself.  Every wait is bounded.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_support import (
    HOST,
    ROOT,
    SECRET,
    ctl,
    fields,
    free_ports,
    log_events,
    poll,
    wait_for_log,
    write_deployment,
)

from assay.runtime.wire import WireError, authenticate, encode_frame, read_frame

pytestmark = pytest.mark.e2e

SINKS = ROOT / "tests" / "fixtures" / "runtime" / "sinks.py"
ERRORS = (WireError, OSError, asyncio.IncompleteReadError, TimeoutError)


def register_deployment(tmp_path: Path, name: str = "deploy.toml",
                        ports: tuple[int, int] | None = None) -> tuple[Path, int, int]:
    """The register: its server on node a, its client on node b."""
    pa, pb = ports or free_ports(2)
    dep = write_deployment(tmp_path / name, "register.py",
                           {"a": (pa, ["server"]), "b": (pb, ["client"])}, params={"writes": 2})
    return dep, pa, pb


def alive(port: int, proc: Any) -> None:
    assert proc.poll() is None, "the node died"
    st = ctl(port, {"t": "status"})
    assert st is not None and st["t"] == "status"


def local_address(writer: asyncio.StreamWriter) -> str:
    """This end's host:port, as the node at the other end logs it."""
    host, port = writer.get_extra_info("sockname")[:2]
    return f"{host}:{port}"


def plain(reader: asyncio.StreamReader) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    """Read the plain frames of a handshake from `reader`."""
    return lambda: read_frame(reader)


async def reply_or_none(read: Callable[[], Awaitable[dict[str, Any] | None]],
                        timeout: float = 5.0) -> Any:
    """The next frame `read` returns; None if the connection ends (or breaks) first."""
    try:
        return await asyncio.wait_for(read(), timeout)
    except ERRORS:
        return None


async def closed_by_peer(read: Callable[[], Awaitable[dict[str, Any] | None]],
                         timeout: float = 5.0) -> bool:
    """Whether the other end closes the connection (EOF or reset) within `timeout` s, with
    nothing but acknowledgements before."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                frame = await read()
                if frame is None:
                    return True
                assert frame.get("t") in ("ack", "acks"), frame
    except TimeoutError:
        return False
    except (WireError, OSError, asyncio.IncompleteReadError):
        return True


@contextlib.asynccontextmanager
async def logged_in(port: int, as_node: str) -> AsyncIterator[Any]:
    """An authenticated connection to a node, as node `as_node` (this test holds the
    secret): `send(frame)`, `recv()`."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    try:
        session = await authenticate(reader, writer, SECRET.encode(), as_node, initiator=True)

        class Conn:
            address = local_address(writer)

            @staticmethod
            async def send(*frames: dict[str, Any]) -> None:
                session.write(*frames)
                await session.drain()

            @staticmethod
            async def recv(timeout: float = 5.0) -> Any:
                return await reply_or_none(session.read, timeout)

            @staticmethod
            async def closed(timeout: float = 5.0) -> bool:
                return await closed_by_peer(session.read, timeout)

        yield Conn
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def write(value: int, seq: int, epoch: str = "e1", clock: Any = 1) -> dict[str, Any]:
    """A `Write(value)` from the register's client (on node b) to its server (on node a)."""
    return {"t": "msg", "src": "client", "src_port": "server", "dst": "server",
            "dst_port": "clients", "clock": clock,
            "message": {"type": "Write", "fields": {"value": value}}, "seq": seq,
            "epoch": epoch}


# --- 1. a node's own handshake, reflected into its server --------------------------------------

async def reflect(node_port: int, peer_port: int, rename: str | None) -> dict[str, Any]:
    """Listen where the node dials its peer; when it dials, open a connection to the node's
    server and relay each side's hello and proof to the other (as its own, or renamed to
    `rename`), then ask the server for state and tell it to stop.  What each step got."""
    dialled: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = \
        asyncio.get_running_loop().create_future()

    async def on_dial(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if dialled.done():
            writer.close()
        else:
            dialled.set_result((reader, writer))

    listener = await asyncio.start_server(on_dial, HOST, peer_port)
    got: dict[str, Any] = {}
    try:
        lr, lw = await asyncio.wait_for(dialled, 10)         # the node's link, to "its peer"
        sr, sw = await asyncio.open_connection(HOST, node_port)
        got["address"] = local_address(sw)
        link_hello = await reply_or_none(plain(lr))
        server_hello = await reply_or_none(plain(sr))
        assert link_hello is not None and server_hello is not None
        for hello in (link_hello, server_hello):
            if rename is not None:
                hello["node"] = rename
        sw.write(encode_frame(link_hello))                   # the node's hello, to itself
        lw.write(encode_frame(server_hello))
        link_proof = await reply_or_none(plain(lr), 3)
        if link_proof is not None:
            sw.write(encode_frame(link_proof))
        server_proof = await reply_or_none(plain(sr), 3)
        if server_proof is not None:
            lw.write(encode_frame(server_proof))
        got["proofs"] = (link_proof, server_proof)
        with contextlib.suppress(OSError):
            sw.write(encode_frame({"t": "state", "instance": "server"}))
        got["state"] = await reply_or_none(plain(sr), 3)
        with contextlib.suppress(OSError):
            sw.write(encode_frame({"t": "stop"}))
        got["stop"] = await reply_or_none(plain(sr), 3)
        lw.close()
        sw.close()
    finally:
        listener.close()
    return got


@pytest.mark.parametrize("rename", [None, "b"], ids=["as-itself", "as-its-peer"])
def test_a_node_s_own_handshake_reflected_into_its_server_logs_nobody_in(children, tmp_path,
                                                                          rename):
    dep, pa, pb = register_deployment(tmp_path)
    log = tmp_path / "a.log"
    a = children.node(dep, "a", pa, log=log)           # its peer b is not running: the
    got = asyncio.run(reflect(pa, pb, rename))          # attacker takes b's port
    if rename is None:                  # the node proves nothing to a peer claiming its name
        assert got["proofs"] == (None, None), got["proofs"]
    assert got["state"] is None, f"the attacker read the node's state: {got['state']}"
    assert got["stop"] is None, f"the node accepted a stop from the attacker: {got['stop']}"
    text = wait_for_log(log, f"refused a connection from {got['address']}")
    assert "stopping" not in text
    alive(pa, a)
    assert fields(pa, "server") == {"value": 0}


# --- 2. numbers out of range in a frame from an authenticated peer ------------------------------

OUT_OF_RANGE = [2**63, 2**64, -1, True, False, 1.5, "1", None, [1], {"n": 1}]


@pytest.mark.parametrize("frame", [
    *[pytest.param(write(5, seq), id=f"seq={seq!r}") for seq in OUT_OF_RANGE + [0]],
    *[pytest.param(write(5, 1, clock=c), id=f"clock={c!r}")
      for c in OUT_OF_RANGE + [2**63 - 1]],
    *[pytest.param(write(5, 1, epoch=e), id=f"epoch={e!r}") for e in [5, None, "", "x" * 1000]],
])
def test_a_frame_with_a_number_out_of_range_closes_the_link_and_the_node_serves_on(
        children, tmp_path, frame):
    dep, pa, _ = register_deployment(tmp_path)
    log = tmp_path / "a.log"
    a = children.node(dep, "a", pa, "--state-dir", tmp_path / "state", log=log)

    async def attack() -> tuple[bool, str]:
        async with logged_in(pa, "b") as conn:
            await conn.send(frame)
            return await conn.closed(), conn.address

    closed, address = asyncio.run(attack())
    assert closed, "the node kept the connection of a peer that sent a malformed frame"
    wait_for_log(log, f"from b at {address}")
    alive(pa, a)
    assert fields(pa, "server") == {"value": 0}

    async def honest() -> Any:                          # and it serves an honest peer
        async with logged_in(pa, "b") as conn:
            await conn.send(write(1, 1))
            return await conn.recv()

    assert asyncio.run(honest()) == {"t": "ack", "seq": 1, "epoch": "e1"}
    poll(lambda: fields(pa, "server") == {"value": 1}, 5, "value 1", log=log)
    alive(pa, a)


# --- 3. a flood of sender lives (epochs) from one logged-in peer --------------------------------

def count(n: int, seq: int, epoch: str) -> dict[str, Any]:
    """A `Count` of tests/fixtures/runtime/sinks.py from source sx (node b) to sink x."""
    return {"t": "msg", "src": "sx", "src_port": "out", "dst": "x", "dst_port": "src",
            "clock": 1, "message": {"type": "Count", "fields": {"n": n}}, "seq": seq,
            "epoch": epoch}


def handled_rows(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                   for t in ("handled", "handled_ranges"))
    finally:
        conn.close()


# Far more lives than the 16 a node keeps of one peer (`MAX_LIVES`), and than the 256 saves
# it lets run in the background: without the bound, 300 rows and 300 acknowledged lives
# (it was 2,000: 25 s of a CI process on handshakes, for the same two failures)
FLOOD = 300


@pytest.mark.parametrize("announce", [True, False], ids=["restarts", "made-up-epochs"])
def test_a_flood_of_fresh_epochs_from_one_peer_keeps_the_handled_rows_bounded(
        children, tmp_path, announce):
    # `restarts`: each connection is a new life of b that says which of its lives may still
    # resend (only itself), as a restarted node does; `made-up-epochs`: a peer that never says
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", SINKS,
                           {"a": (pa, ["x", "y"]), "b": (pb, ["sx", "sy"])})
    state, log = tmp_path / "state", tmp_path / "a.log"
    a = children.node(dep, "a", pa, "--state-dir", state, "--durability", "process", log=log)

    async def flood() -> int:
        acked = 0
        for i in range(FLOOD):
            epoch = f"life{i}"
            async with logged_in(pa, "b") as conn:
                if announce:
                    await conn.send({"t": "epochs", "live": [epoch]})
                await conn.send(count(i, 1, epoch))
                reply = await conn.recv()
                acked += reply == {"t": "ack", "seq": 1, "epoch": epoch}
        return acked

    acked = asyncio.run(flood())
    status = ctl(pa, {"t": "status"})
    assert status is not None and status.get("epochs", FLOOD) <= 16, status
    if announce:                                   # every life's frame was handled
        assert acked == FLOOD
        assert fields(pa, "x") == {"got": FLOOD}
    else:                                          # the first 16 lives, then none
        assert acked == fields(pa, "x")["got"] == 16
        wait_for_log(log, "has 16 lives on record here")
    alive(pa, a)

    async def restarted() -> Any:                  # b restarts once more: served
        async with logged_in(pa, "b") as conn:
            await conn.send({"t": "epochs", "live": ["last"]}, count(0, 1, "last"))
            return await conn.recv()

    assert asyncio.run(restarted()) == {"t": "ack", "seq": 1, "epoch": "last"}
    # (read once the node stopped: with --durability process its steps reach the SQLite file
    # at checkpoints, storelog.py)
    children.stop(a, pa)
    rows = handled_rows(state / "a.sqlite")
    assert rows <= 16, f"{rows} rows of handled frame numbers after {FLOOD} epochs"


# --- 4. a man in the middle of an authenticated link --------------------------------------------

class Tamperer:
    """A relay between node b's link and node a: it passes the handshake through untouched,
    then does `mode` to the first frame that carries a `Write` (once, on the first
    connection only), and passes everything else through.

    alter: change the value the Write carries (same length); replay: send the frame twice;
    inject: pass it, then send a forged copy (another seq, another value; numbered as the
    frame after it, if frames are numbered)."""

    def __init__(self, target: int, mode: str) -> None:
        self.target, self.mode = target, mode
        self.tampered = False
        self.node_closed = asyncio.Event()      # node a closed the tampered connection
        self.address = ""                       # the relay's address, as node a sees it
        self.tasks: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(HOST, self.target)
        tamper = not self.tampered
        self.tampered = True
        if tamper:
            self.address = local_address(up_w)
        down = asyncio.create_task(self._down(up_r, writer, tamper))
        self.tasks.add(down)
        try:
            while True:
                header = await reader.readexactly(4)
                payload = await reader.readexactly(int.from_bytes(header, "big"))
                frame = header + payload
                if tamper and b'"Write"' in payload:
                    tamper = False
                    frame = self._tampered(frame)
                up_w.write(frame)
                await up_w.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass                 # (cancelled: the test is over; the relay's tasks end quietly)
        finally:
            up_w.close()
            writer.close()

    def _tampered(self, frame: bytes) -> bytes:
        assert b'"value":1' in frame, frame
        if self.mode == "alter":
            return frame.replace(b'"value":1', b'"value":7')
        if self.mode == "replay":
            return frame + frame
        assert b'"seq":1' in frame, frame
        forged = frame.replace(b'"value":1', b'"value":7').replace(b'"seq":1', b'"seq":9')
        if not forged[4:].startswith(b"{"):         # frames are numbered: the next number
            n = int.from_bytes(forged[4:12], "big") + 1
            forged = forged[:4] + n.to_bytes(8, "big") + forged[12:]
        return frame + forged

    async def _down(self, up_r: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    watched: bool) -> None:
        try:
            while data := await up_r.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        if watched:
            self.node_closed.set()
        writer.close()


@pytest.mark.parametrize("mode", ["alter", "replay", "inject"])
def test_a_frame_tampered_with_in_flight_closes_the_link_and_is_not_applied(
        children, tmp_path, mode):
    pa, pb, pm = free_ports(3)
    # node a's file has a's true address; node b's reaches a through the man in the middle
    dep_a, _, _ = register_deployment(tmp_path, "a.toml", (pa, pb))
    dep_b, _, _ = register_deployment(tmp_path, "b.toml", (pm, pb))
    la, lb, trace = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "a.jsonl"

    async def main() -> Tamperer:
        mitm = Tamperer(pa, mode)
        relay = await asyncio.start_server(mitm.handle, HOST, pm)
        try:
            await asyncio.to_thread(children.node, dep_a, "a", pa, "--trace-out", trace,
                                    log=la)
            await asyncio.to_thread(children.node, dep_b, "b", pb, log=lb)
            await asyncio.wait_for(mitm.node_closed.wait(), 10)
            # the link comes back (through the relay, untouched now) and the run completes
            await asyncio.to_thread(poll, lambda: fields(pb, "client")["acked"] == 2, 20,
                                    "client acked == 2", log=lb)
        finally:
            relay.close()
        return mitm

    try:
        mitm = asyncio.run(main())
    except TimeoutError:
        pytest.fail(f"node a did not close the connection after the {mode}ed frame")
    text = wait_for_log(la, f"from b at {mitm.address}")
    assert "MAC" in text or "out of order" in text, text[-2000:]

    def writes() -> list[int]:
        delivered = [e["event"]["message"] for e in log_events(trace, growing=True)
                     if e["event"]["kind"] == "deliver"]
        return [m["fields"]["value"] for m in delivered if m["type"] == "Write"]

    # without a store a node writes its step log in batches: the line of the last Write may
    # trail the client's acknowledgement by a moment; a tampered Write would be there too
    poll(lambda: len(writes()) >= 2, 10, "both Writes in node a's step log", log=la)
    assert writes() == [1, 2], f"the server handled the Writes {writes()}"
    assert fields(pa, "server") == {"value": 2}


# --- 5. state files are private to the user that runs the node ----------------------------------

def test_a_node_creates_its_state_files_and_directories_private(children, tmp_path):
    dep, pa, _ = register_deployment(tmp_path)
    state, trace, log = tmp_path / "state" / "sub", tmp_path / "logs" / "a.jsonl", \
        tmp_path / "a.log"
    trace.parent.mkdir(mode=0o755)
    old = os.umask(0o022)                 # the usual umask: files 0644, directories 0755
    try:
        a = children.node(dep, "a", pa, "--state-dir", state, "--trace-out", trace, log=log)
    finally:
        os.umask(old)
    db = state / "a.sqlite"
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), trace]
    poll(lambda: all(f.exists() for f in files), 5, "the store and the step log")
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}   # while the node runs
    modes.update({d.name: stat.S_IMODE(d.stat().st_mode) for d in (state.parent, state)})
    children.stop(a, pa)
    wait_for_log(log, "stopping, as control at 127.0.0.1:")     # who asked, logged
    assert modes == {"a.sqlite": 0o600, "a.sqlite-wal": 0o600, "a.sqlite-shm": 0o600,
                     "a.jsonl": 0o600, "state": 0o700, "sub": 0o700}
