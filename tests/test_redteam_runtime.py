"""Red team of the runtime (its network and the files it reads back): each test here failed
before its fix (CHANGELOG, "Runtime red team").  Damaged files: a store log's record length,
a step log's middle line, a checkpoint's counts; hostile peers: connections that never
authenticate, frames to drop, a str with a lone surrogate, a reply too large for a frame; a
deployment file that crashed a node.  Real sockets on loopback, real SQLite files."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from runtime_support import HOST, SECRET, ctl, free_ports, wait_for_log, write_deployment
from test_storelog import logged

from assay.errors import StateError, UsageError
from assay.runtime import storelog
from assay.runtime.steplog import log_line, merge_logs, open_step_log, read_step_log
from assay.runtime.store import Store
from assay.runtime.tcp import TcpNode, control
from assay.runtime.wire import authenticate

# --- damaged files: the store log --------------------------------------------------------------


def record_starts(data: bytes) -> list[int]:
    out, pos = [], len(storelog.HEADER)
    while pos < len(data):
        out.append(pos)
        pos += storelog._HEAD.size + storelog._HEAD.unpack_from(data, pos)[1]
    return out


@pytest.mark.parametrize("record", ["first", "middle", "last"])
@pytest.mark.parametrize("bit", [0x01, 0x80])
def test_a_record_length_damaged_on_disk_is_refused_not_taken_for_a_torn_end(tmp_path, record,
                                                                               bit):
    # a bit flipped in a record's length makes it reach past the end of the file: that is
    # not a record cut short by a kill (the steps of the records after it, or of this whole
    # one, were durable: sent and acknowledged), so nothing may be dropped with a warning
    path = logged(tmp_path, 5)
    log = Path(str(path) + "-log")
    data = bytearray(log.read_bytes())
    starts = record_starts(bytes(data))
    at = {"first": starts[0], "middle": starts[2], "last": starts[-1]}[record]
    data[at + 1 + (1 if bit == 0x80 else 0)] ^= bit      # the length's 1st or 2nd byte
    log.write_bytes(bytes(data))
    with pytest.raises(StateError, match=f"record at byte {at} says it is .* long") as e:
        Store(path, "NORMAL", log=True)
    assert "a.sqlite-log" in str(e.value) and "--fresh" in str(e.value)
    with pytest.raises(StateError):                     # and the store was left as it was
        Store(path, "NORMAL", log=True)
    # the same record truly cut short (its last 3 bytes never written): dropped, the steps
    # before it kept
    data[at + 1 + (1 if bit == 0x80 else 0)] ^= bit
    end = starts[starts.index(at) + 1] if at != starts[-1] else len(data)
    log.write_bytes(bytes(data[:end - 3]))
    with Store(path, "NORMAL", log=True) as s:
        assert s.clock() == starts.index(at)


# --- a flood of connections that never authenticate -------------------------------------------

def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


FLOOD = 600


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts a process's fds")
def test_a_flood_of_connections_that_never_authenticate_holds_a_bounded_number_open(
        children, tmp_path):
    # each stays open for the handshake's 5 s: without a bound, a client opening connections
    # faster than that holds as many sockets (file descriptors, buffers) in the node as it
    # likes, up to the process's limit, after which no honest peer gets in
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", "register.py",
                           {"a": (pa, ["server"]), "b": (pb, ["client"])},
                           params={"writes": 2})
    log = tmp_path / "a.log"
    a = children.node(dep, "a", pa, log=log)
    before = open_fds(a.pid)

    async def flood() -> tuple[int, Any]:
        held = []
        try:
            for _ in range(FLOOD):
                held.append(await asyncio.open_connection(HOST, pa))
            await asyncio.sleep(0.3)                   # the node has accepted them all
            most = open_fds(a.pid)
            # an honest client, amid the flood: served at once
            reply = await control(HOST, pa, SECRET.encode(), {"t": "status"}, 3.0)
            return most, reply
        finally:
            for _, w in held:
                w.close()

    most, reply = asyncio.run(flood())
    assert reply is not None and reply["t"] == "status", reply
    assert most - before <= TcpNode.MAX_HANDSHAKES + 8, \
        f"{most - before} more file descriptors open in the node during a flood of {FLOOD}"
    wait_for_log(log, "connections were authenticating at once")
    assert a.poll() is None
    assert ctl(pa, {"t": "status"})["t"] == "status"


# --- hostile values: a str that is no Unicode text -----------------------------------------------

LEDGER = Path(__file__).resolve().parent / "fixtures" / "extstore" / "ledger.py"


def add(key: str, seq: int, epoch: str = "e1") -> dict[str, Any]:
    """An `Add(key)` of tests/fixtures/extstore/ledger.py from the writer (node b)."""
    return {"t": "msg", "src": "writer", "src_port": "out", "dst": "ledger",
            "dst_port": "inp", "clock": 1, "message": {"type": "Add", "fields": {"key": key}},
            "seq": seq, "epoch": epoch}


@pytest.mark.e2e
async def read_acks(s: Any, n: int, timeout: float) -> list[int]:
    """The numbers of the next `n` acknowledgements, from `ack` frames (one number) or `acks`
    frames (those owed together)."""
    got: list[int] = []
    while len(got) < n:
        r = await asyncio.wait_for(s.read(), timeout)
        got += r["seqs"] if r["t"] == "acks" else [r["seq"]]
    return got


def test_a_lone_surrogate_in_a_str_kept_in_an_external_store_does_not_stop_the_node(
        children, tmp_path):
    # JSON's "\\ud800" is a Python str that UTF-8 cannot encode: the node took the Add, and
    # its step loop failed on it (ordering the map's keys, `canonical`, then SQLite) and the
    # node stopped, for every peer
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", LEDGER,
                           {"a": (pa, ["ledger"]), "b": (pb, ["writer"])})
    log, db = tmp_path / "a.log", tmp_path / "a.db"
    a = children.node(dep, "a", pa, "--state-dir", tmp_path / "state", "--store-db", db,
                      log=log)

    async def send(*frames: dict[str, Any]) -> list[Any]:
        reader, writer = await asyncio.open_connection(HOST, pa)
        try:
            s = await authenticate(reader, writer, SECRET.encode(), "b", initiator=True)
            s.write(*frames)
            await s.drain()
            return await read_acks(s, len(frames), 5)
        finally:
            writer.close()

    acks = asyncio.run(send(add("\ud800", 1), add("x\udfff", 2), add("a", 3)))
    assert acks == [1, 2, 3], acks
    assert a.poll() is None, log.read_text()[-2000:]
    # dropped (logged) and acknowledged, as any message that does not fit its port
    assert ctl(pa, {"t": "state", "instance": "ledger"})["fields"]["totals"] == [["a", 1]]
    wait_for_log(log, "lone surrogate ('\\ud800') is not Unicode text")
    children.stop(a, pa)                      # and a restart agrees with the database
    a = children.node(dep, "a", pa, "--state-dir", tmp_path / "state", "--store-db", db,
                      log=log)
    assert ctl(pa, {"t": "state", "instance": "ledger"})["fields"]["totals"] == [["a", 1]]


def test_no_decoder_takes_a_lone_surrogate_into_a_value():
    from assay.model.interceptor import meta_from_json
    from assay.model.types import _AnyValue, _Str

    for decode in (_Str().from_json, _AnyValue().from_json,
                   lambda j: _AnyValue().from_json([1, [j]]),
                   lambda j: meta_from_json({"k": j}), lambda j: meta_from_json({j: 1}),
                   lambda j: meta_from_json({"k": ["x", j]})):
        with pytest.raises(ValueError, match="lone surrogate"):
            decode("ok\udc80")
        assert decode("ok \u00e9\U0001f600") is not None      # text, astral plane too


# --- damaged files: a checkpoint's meta.json ----------------------------------------------------

@pytest.mark.parametrize("edit", ["transitions", "depth", "terminal", "bit-flip"])
def test_a_checkpoint_whose_counts_were_altered_is_refused_not_resumed(tmp_path, edit):
    # the workers' files carry digests, meta.json's counts did not: a digit altered there
    # (by hand, or a bit flip that keeps it JSON) resumed to counts that no search gave
    from checkpoint_support import SYM_LOCK, counts, run

    from assay.errors import AssayError

    params = {"clients": "3"}
    ck = tmp_path / "ck"
    run(SYM_LOCK, ck, params=params, max_depth=3)
    meta_file = ck / "current" / "meta.json"
    text = meta_file.read_text()
    if edit == "bit-flip":                 # a digit of a count, one bit off: still JSON
        at = text.index(",", text.index('"transitions": ')) - 1      # its last digit
        text = text[:at] + chr(ord(text[at]) ^ 0x01) + text[at + 1:]
        assert json.loads(text)
    else:
        meta = json.loads(text)
        meta[edit] += 1
        text = json.dumps(meta)
    meta_file.write_text(text)
    with pytest.raises(AssayError, match="meta.json is not the file that was saved") as e:
        run(SYM_LOCK, ck, params=params)
    assert "remove the directory" in str(e.value.notes)
    # a checkpoint left as it was resumes to the counts of the check never stopped
    run(SYM_LOCK, tmp_path / "ck2", params=params, max_depth=3)
    assert counts(run(SYM_LOCK, tmp_path / "ck2", params=params)) == \
        counts(run(SYM_LOCK, None, params=params))


# --- damaged files: a node's step log -----------------------------------------------------------

def step_log(path: Path, n: int) -> list[str]:
    lines = [log_line(c, "a", {"kind": "fire", "instance": "p", "action": "go"})
             for c in range(1, n + 1)]
    path.write_text("".join(lines))
    return lines


@pytest.mark.parametrize("damage", ["not-json", "not-utf-8", "nested"])
def test_a_step_log_damaged_in_the_middle_is_refused_not_cut_there(tmp_path, damage):
    # a line that did not parse was taken for the end a kill cut short: the node rewrote its
    # log without it and every line after it (the steps of the run, which replay checks)
    log = tmp_path / "a.jsonl"
    lines = step_log(log, 6)
    bad = {"not-json": lines[2][:20] + "\n", "not-utf-8": lines[2][:20] + "\udcff\n",
           "nested": "[" * 100_000 + "\n"}[damage]
    log.write_bytes("".join(lines[:2] + [bad] + lines[3:]).encode("utf-8", "surrogateescape"))
    before = log.read_bytes()
    with pytest.raises(StateError, match="line 3|:3: not a step log line") as e:
        open_step_log(log, None)
    assert str(log) in str(e.value) and "note: move it aside" in str(e.value)
    assert log.read_bytes() == before                     # left as it was
    with pytest.raises(UsageError, match="line 3|:3: not a step log line"):
        merge_logs([str(log)])                            # (`run --deploy`'s merge)


def test_a_step_log_cut_short_by_a_kill_loses_only_its_last_line(tmp_path):
    log = tmp_path / "a.jsonl"
    lines = step_log(log, 4)
    log.write_text("".join(lines)[:-7])                   # inside the last line
    assert [e["clock"] for e in read_step_log(str(log))] == [1, 2, 3]
    assert [e["kind"] for e in merge_logs([str(log)])] == ["fire"] * 3
    f, clock = open_step_log(log, None)
    f.close()
    assert clock == 3 and log.read_text() == "".join(lines[:3])
    log.write_text("".join(lines)[:-1])                   # only its newline missing
    f, clock = open_step_log(log, None)
    f.close()
    assert clock == 4 and log.read_text() == "".join(lines)


# --- a flood of frames to drop from a logged-in peer --------------------------------------------

def rss_kb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])


DROPS = 10_000


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads a process's RSS")
def test_a_flood_of_frames_to_drop_keeps_the_node_s_memory_bounded(children, tmp_path):
    # each message that does not fit is saved as handled in the background (then
    # acknowledged); a peer sending them faster than the store commits grew the node by
    # 3.5 KB a frame (the saves waiting their turn), without bound
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", "register.py",
                           {"a": (pa, ["server"]), "b": (pb, ["client"])},
                           params={"writes": 2})
    log = tmp_path / "a.log"
    a = children.node(dep, "a", pa, "--state-dir", tmp_path / "state", log=log)
    before = rss_kb(a.pid)

    def nope(seq: int) -> dict[str, Any]:
        return {"t": "msg", "src": "client", "src_port": "server", "dst": "server",
                "dst_port": "clients", "clock": 1, "message": {"type": "Nope", "fields": {}},
                "seq": seq, "epoch": "e1"}

    async def flood() -> int:
        reader, writer = await asyncio.open_connection(HOST, pa)
        try:
            s = await authenticate(reader, writer, SECRET.encode(), "b", initiator=True)
            for i in range(1, DROPS + 1, 500):
                s.write(*[nope(seq) for seq in range(i, i + 500)])
                await s.drain()
            await asyncio.sleep(0.5)
            return rss_kb(a.pid)
        finally:
            writer.close()

    grown = asyncio.run(flood()) - before
    assert grown < 8_000, f"the node grew by {grown} KB reading {DROPS} frames to drop"
    assert a.poll() is None and ctl(pa, {"t": "status"})["t"] == "status"
    assert ctl(pa, {"t": "state", "instance": "server"})["fields"] == {"value": 0}


# --- a reply too large for a frame ------------------------------------------------------------

@pytest.mark.e2e
def test_a_state_too_large_for_a_frame_is_an_error_reply_not_a_traceback(children, tmp_path):
    # the reply's encoding raised WireError out of the connection's task: a traceback in the
    # node's log, and the asker got a closed connection
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", LEDGER,
                           {"a": (pa, ["ledger"]), "b": (pb, ["writer"])})
    log = tmp_path / "a.log"
    a = children.node(dep, "a", pa, log=log)

    async def send() -> list[Any]:
        reader, writer = await asyncio.open_connection(HOST, pa)
        try:
            s = await authenticate(reader, writer, SECRET.encode(), "b", initiator=True)
            for i in range(4):                       # 4 keys of 300 kB: 1.2 MB of state
                s.write(add(str(i) * 300_000, i + 1))
                await s.drain()
            return await read_acks(s, 4, 10)
        finally:
            writer.close()

    assert asyncio.run(send()) == [1, 2, 3, 4]
    reply = ctl(pa, {"t": "state", "instance": "ledger"})
    assert reply is not None and reply["t"] == "error", reply
    assert "exceeds the limit" in reply["error"]
    assert ctl(pa, {"t": "status"})["t"] == "status" and a.poll() is None
    assert "Traceback" not in log.read_text()


# --- a hostile deployment file ------------------------------------------------------------------

def deployment_text(node: str = "a", host: str = '"127.0.0.1"', spec: str | None = None) -> str:
    register = Path(__file__).resolve().parent.parent / "specs" / "register.py"
    spec = json.dumps(str(register)) if spec is None else spec
    return (f'spec = {spec}\nsecret = "{SECRET}"\n[params]\nwrites = 2\n'
            f'[nodes.{node}]\nhost = {host}\nport = 7101\ninstances = ["server", "client"]\n')


@pytest.mark.parametrize("text, message", [
    # a node name longer than the handshake carries: every link of the node failed (a
    # ValueError in its tasks), silently
    (deployment_text(node="n" * 257), "a node's name is 1 to 256 characters"),
    (deployment_text(host='"127.0.0.1\\u0000"'), "nodes.a.host is"),        # ValueError
    (deployment_text(spec='"x\\u0000.py"'), "spec is"),                      # ValueError
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),         # RecursionError
], ids=["long-name", "nul-in-host", "nul-in-spec", "nested"])
def test_a_deployment_file_that_would_crash_a_node_is_refused_at_the_file(tmp_path, text,
                                                                             message):
    from assay.runtime.deploy import load_deployment

    path = tmp_path / "deploy.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as e:
        load_deployment(path)
    assert "deploy.toml" in str(e.value)
    assert load_deployment(_write(tmp_path / "ok.toml", deployment_text(node="n" * 256)))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
