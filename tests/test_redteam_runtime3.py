"""Red team of the runtime, its files and trace replay, third round (CHANGELOG, "Runtime red
team 3"); each test here failed before its fix, unless it says it pins a probe that held.
Real sockets on loopback, real SQLite files, `assay` in subprocesses as a user runs it."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assay.checker import check
from assay.kernel import Faults, Kernel
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]
VOLATILE = REPO / "specs" / "register_bug_volatile.py"


def assay(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


# --- a trace file received from someone else ---------------------------------------------------

@pytest.fixture(scope="module")
def trace_doc() -> dict[str, Any]:
    system, name, typed = build(VOLATILE)
    result = check(Kernel(system, Faults.parse("crash=1")), spec=str(VOLATILE),
                   system_name=name, params=typed)
    assert result.trace is not None
    return json.loads(json.dumps(result.trace.to_json()))


def hostile_spec(where: Path, mark: Path) -> Path:
    """A spec that does what the trace's author likes when it is loaded (here: leaves
    `mark`), and is otherwise the spec the trace was written from."""
    where.mkdir(parents=True, exist_ok=True)
    spec = where / "evil.py"
    spec.write_text(f"open({str(mark)!r}, 'w').write('ran')\n" + VOLATILE.read_text())
    return spec


@pytest.mark.parametrize("named", ["absolute", "relative", "symlink", "beside"])
def test_replay_does_not_run_a_spec_from_outside_the_current_directory_unless_named(
        tmp_path, trace_doc, named):
    # a trace names the spec replay runs as Python: a trace file from someone else ran any
    # .py file on the machine it named (by an absolute path, or ../, or a link that leads
    # out, or a spec shipped beside the trace in a download)
    project, mark = tmp_path / "project", tmp_path / "ran"
    project.mkdir()
    spec = hostile_spec(tmp_path / "elsewhere", mark)
    trace = (tmp_path / "elsewhere" if named == "beside" else project) / "trace.json"
    if named == "symlink":
        (project / "spec.py").symlink_to(spec)
    name = {"absolute": str(spec), "relative": "../elsewhere/evil.py", "symlink": "spec.py",
            "beside": "evil.py"}[named]
    trace.write_text(json.dumps({**trace_doc, "spec": name}))
    r = assay("replay", trace, cwd=project)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert not mark.exists(), "the trace's spec ran"
    assert "Traceback" not in r.stderr
    assert f"the trace names the spec {spec}, outside the current directory" in r.stderr
    assert f"--spec {spec}" in r.stderr
    # named by the user: run (and replayed)
    r = assay("replay", trace, "--spec", spec, cwd=project)
    assert mark.exists() and r.returncode == 1, (r.stdout, r.stderr)
    assert "the recorded violation is reproduced" in r.stdout


def test_replay_runs_the_trace_s_spec_inside_the_current_directory(tmp_path, trace_doc):
    # the usual workflow holds: a trace of the project's own spec, replayed from the project
    mark = tmp_path / "project" / "ran"
    spec = hostile_spec(tmp_path / "project" / "specs", mark)
    trace = tmp_path / "project" / "out" / "trace.json"
    trace.parent.mkdir()
    trace.write_text(json.dumps({**trace_doc, "spec": "specs/evil.py"}))
    r = assay("replay", trace, cwd=tmp_path / "project")
    assert r.returncode == 1 and mark.exists(), (r.stdout, r.stderr)
    assert f"trace of {Path('specs/evil.py')}" in r.stdout
    assert spec.exists()


# --- a checkpoint directory someone else wrote into ---------------------------------------------

class Planted:
    """What an attacker's pickle runs when it is loaded: here, it leaves a file."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.mark, "unpickled"))


def plant(folder: Path, mark: Path, key_name: str) -> None:
    """Swap worker 0's file for a pickle of the attacker's choosing, and make meta.json
    agree with it as far as anyone can without this user's key: SHA-256 digests."""
    import hashlib
    import pickle

    shard = folder / "shard-0"
    shard.write_bytes(pickle.dumps(Planted(mark)))
    meta = json.loads((folder / "meta.json").read_text())
    meta = {k: v for k, v in meta.items() if k not in ("meta_sha256", "meta_mac")}
    meta["shards"]["shard-0"] = hashlib.sha256(shard.read_bytes()).hexdigest()
    meta[key_name] = hashlib.sha256(json.dumps(meta, sort_keys=True, separators=(",", ":"))
                                    .encode()).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("strategy", ["bfs", "dfs"])
@pytest.mark.parametrize("key_name", ["meta_sha256", "meta_mac"])
def test_a_checkpoint_swapped_for_an_attacker_s_pickle_is_refused_before_unpickling(
        tmp_path, strategy, key_name):
    # the digests were SHA-256, which anyone can compute: a checkpoint directory others
    # could write (or one received) with a pickle of their choosing and digests to match
    # ran their code at `check --checkpoint DIR`
    from checkpoint_support import SYM_LOCK, run

    from assay.errors import AssayError

    ck, mark = tmp_path / "ck", tmp_path / "unpickled"
    kw: dict[str, Any] = {"params": {"clients": "4"}, "strategy": strategy,
                          "symmetry": False}
    run(SYM_LOCK, ck, **({"max_depth": 2} if strategy == "bfs" else {"max_states": 2000}), **kw)
    plant(ck / "current", mark, key_name)
    with pytest.raises(AssayError, match="is not the file that was saved"):
        run(SYM_LOCK, ck, **kw)
    assert not mark.exists(), "the planted pickle was loaded"


def test_a_checkpoint_made_with_another_user_s_key_does_not_resume(tmp_path, monkeypatch):
    from checkpoint_support import SYM_LOCK, counts, run

    from assay.checker.checkpoint import user_key
    from assay.errors import AssayError

    params = {"clients": "2"}
    monkeypatch.setenv("ASSAY_KEY_FILE", str(tmp_path / "theirs" / "key"))
    run(SYM_LOCK, tmp_path / "ck", params=params, max_depth=2)
    theirs = user_key()
    assert oct((tmp_path / "theirs" / "key").stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("ASSAY_KEY_FILE", str(tmp_path / "mine" / "key"))
    assert user_key() != theirs
    with pytest.raises(AssayError, match="not written by this user's assay"):
        run(SYM_LOCK, tmp_path / "ck", params=params)
    monkeypatch.setenv("ASSAY_KEY_FILE", str(tmp_path / "theirs" / "key"))   # theirs: resumes
    assert counts(run(SYM_LOCK, tmp_path / "ck", params=params)) == \
        counts(run(SYM_LOCK, None, params=params))


def test_a_worker_file_swapped_after_its_check_is_not_unpickled(tmp_path):
    # the digest was checked when the checkpoint was found, and the file read again (by
    # each worker) to unpickle it: a swap in between was loaded unchecked
    import pickle

    from checkpoint_support import SYM_LOCK, run

    from assay.checker.checkpoint import verified
    from assay.errors import UsageError

    run(SYM_LOCK, tmp_path / "ck", params={"clients": "2"}, max_depth=2)
    folder = tmp_path / "ck" / "current"
    assert pickle.loads(verified(str(folder), 0))        # as saved: read once, checked
    mark = tmp_path / "unpickled"
    (folder / "shard-0").write_bytes(pickle.dumps(Planted(mark)))
    with pytest.raises(UsageError, match="shard-0 is not the file that was saved"):
        pickle.loads(verified(str(folder), 0))
    assert not mark.exists()


# --- a state file with a byte changed inside a row ----------------------------------------------

def saved_store(path: Path) -> None:
    from assay.runtime.store import Store

    frame = {"t": "msg", "seq": 1, "epoch": "e1", "message": {"amount": 1}}
    with Store(path, system="bank", node="a") as s:
        s.save_steps([("acct0", {"balance": 5}, [("b", "e1", 1, frame)], ("b", "e9", 1), 7,
                       None)])


@pytest.mark.parametrize("row, text", [("fields", b'"balance":5'),
                                       ("outbox", b'"amount": 1')])
def test_a_byte_flipped_inside_a_saved_row_is_refused_not_restored(tmp_path, row, text):
    # SQLite checks the file's structure, not what its rows hold: one bit flipped inside a
    # saved value (a balance 5 read back as 4, a message's amount 1 as 0) passed the
    # integrity check and the row checks, and the node restarted on state it never had
    from assay.errors import StateError
    from assay.runtime.store import Store

    path = tmp_path / "a.sqlite"
    saved_store(path)
    data = bytearray(path.read_bytes())
    at = data.index(text) + len(text) - 1
    data[at] ^= 0x01                                          # 5 -> 4, 1 -> 0
    path.write_bytes(bytes(data))
    with pytest.raises(StateError, match=f"table {row}, row .*: the row is not what assay "
                                         "saved") as e:
        Store(path, system="bank", node="a")
    assert str(path) in str(e.value) and "--fresh" in str(e.value)
    data[at] ^= 0x01                                          # as saved: opens
    path.write_bytes(bytes(data))
    with Store(path, system="bank", node="a") as s:
        assert s.load("acct0") == {"balance": 5} and s.clock() == 7


# --- a hostile peer on the node port ------------------------------------------------------------

def register_node(children: Any, tmp_path: Path, *extra: str | Path) -> tuple[Any, int, Path]:
    """The register's server on node a (its client's node b is not running: the tests
    speak for b, holding the secret, or for nobody), and a's log."""
    from runtime_support import free_ports, write_deployment

    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", "register.py",
                           {"a": (pa, ["server"]), "b": (pb, ["client"])},
                           params={"writes": 2})
    log = tmp_path / "a.log"
    return children.node(dep, "a", pa, *extra, log=log), pa, log


def write_frame(value: Any, seq: int, src: str = "client", **over: Any) -> dict[str, Any]:
    return {"t": "msg", "src": src, "src_port": "server", "dst": "server",
            "dst_port": "clients", "clock": 1,
            "message": {"type": "Write", "fields": {"value": value}}, "seq": seq,
            "epoch": "e1", **over}


async def as_b(port: int) -> Any:
    import asyncio

    from runtime_support import HOST, SECRET

    from assay.runtime.wire import authenticate

    reader, writer = await asyncio.open_connection(HOST, port)
    return await authenticate(reader, writer, SECRET.encode(), "b", initiator=True)


async def closed_by_node(s: Any, within: float = 5.0) -> bool:
    """Whether the node closes the session (EOF, or a reset) within `within` seconds, after
    at most the frames it sends first (acknowledgements)."""
    import asyncio

    try:
        async with asyncio.timeout(within):
            while await s.reader.read(1 << 16):
                pass
        return True
    except TimeoutError:             # (an OSError: before it, or this could never fail)
        return False
    except (ConnectionError, OSError):
        return True
    finally:
        s.close()


def server_value(port: int) -> Any:
    from runtime_support import ctl

    reply = ctl(port, {"t": "state", "instance": "server"})
    assert reply is not None and reply["t"] == "state", reply
    return reply["fields"]["value"]


def huge_int_payload(digits: int) -> bytes:
    head = json.dumps(write_frame(0, 1), sort_keys=True, separators=(",", ":"))
    return head.replace('"value":0', '"value":' + "9" * digits).encode()


SEALED_EDGES = {                          # (what is sent after the handshake, how)
    "length-0": ("raw", (0).to_bytes(4, "big")),
    "length-2**31": ("raw", (2**31).to_bytes(4, "big") + b"x" * 64),
    "length-2**32-1": ("raw", (2**32 - 1).to_bytes(4, "big") + b"x" * 64),
    "int-5000-digits": ("payload", huge_int_payload(5000)),
    "int-1M-digits": ("payload", huge_int_payload(1_000_000)),
    "nested-1M": ("payload", b'{"t":"msg","x":' + b"[" * 1_000_000 + b"}"),
    "seq-2**63": ("frame", write_frame(1, 2**63)),
    "seq--2**63-1": ("frame", write_frame(1, -2**63 - 1)),
}


@pytest.mark.e2e
def test_hostile_frames_from_a_peer_holding_the_secret_close_its_connection_only(
        children, tmp_path):
    # probes that held: lengths at the edges of 32 bits, ints at and far beyond 64 bits
    # (a million digits: refused before any conversion), a million nested lists; each
    # closes its connection (logged), quickly, and the node serves on with its state
    import asyncio
    import time

    a, pa, log = register_node(children, tmp_path)

    async def probe(kind: str, data: Any) -> float:
        s = await as_b(pa)
        t0 = time.perf_counter()
        if kind == "raw":
            s.writer.write(data)
        elif kind == "payload":
            s.writer.write(s.seal(data))
        else:
            s.write(data)
        await s.drain()
        assert await closed_by_node(s), f"{kind}: the node kept the connection"
        return time.perf_counter() - t0

    for name, (kind, data) in SEALED_EDGES.items():
        took = asyncio.run(probe(kind, data))
        assert took < 3.0, f"{name}: {took:.1f} s to refuse"
        assert a.poll() is None, name
        assert server_value(pa) == 0, name
    text = log.read_text()
    assert "Traceback" not in text
    for said in ("has no room for its number", f"frame of {2**31} bytes exceeds",
                 f"frame of {2**32 - 1} bytes exceeds", "nested too deeply",
                 "'seq' must be an int"):
        assert said in text, said


@pytest.mark.e2e
def test_a_peer_may_speak_only_for_the_instances_of_the_node_it_proved(children, tmp_path):
    # probe that held: authenticated as node b (the client's), frames claiming to be from
    # the server itself (on a), or from no instance, or to a port not wired to the sender
    import asyncio

    a, pa, log = register_node(children, tmp_path)

    async def send() -> None:
        s = await as_b(pa)
        s.write(write_frame(7, 1, src="server"), write_frame(7, 2, src="nobody"),
                write_frame(7, 3, src="client", src_port="elsewhere"),
                write_frame(7, 4, dst_port="nowhere"))
        await s.drain()
        await asyncio.sleep(0.5)
        s.close()

    asyncio.run(send())
    assert server_value(pa) == 0
    from runtime_support import wait_for_log

    wait_for_log(log, "no such link from that node")
    assert a.poll() is None


@pytest.mark.e2e
def test_a_captured_session_replayed_on_a_new_connection_is_refused(children, tmp_path):
    # probe that held: every byte an honest client sent on one connection (its hello, its
    # proof, a Write), sent again on a new one: the node's nonce is fresh, so the old proof
    # does not verify and nothing is applied
    import asyncio

    from runtime_support import HOST, wait_for_log

    a, pa, log = register_node(children, tmp_path)
    sent: list[bytes] = []

    async def honest() -> None:
        s = await as_b(pa)
        s.write(write_frame(5, 1))
        await s.drain()
        await asyncio.sleep(0.3)
        s.close()

    real_write = asyncio.StreamWriter.write

    def tap(self: asyncio.StreamWriter, data: Any) -> None:
        sent.append(bytes(data))
        real_write(self, data)

    asyncio.StreamWriter.write = tap          # type: ignore[method-assign]
    try:
        asyncio.run(honest())
    finally:
        asyncio.StreamWriter.write = real_write   # type: ignore[method-assign]
    assert server_value(pa) == 5

    async def replay() -> bytes:
        reader, writer = await asyncio.open_connection(HOST, pa)
        writer.write(b"".join(sent))
        await writer.drain()
        got = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return got

    answer = asyncio.run(replay())
    assert b'"t":"hello"' in answer and b'"t":"proof"' in answer   # its own, then it closed
    wait_for_log(log, "failed to prove it holds the shared secret")
    assert server_value(pa) == 5


@pytest.mark.e2e
def test_slow_connections_that_never_finish_the_handshake_do_not_hold_the_node(
        children, tmp_path):
    # probe that held: connections sending one byte a second (a slowloris) are closed at
    # the handshake's 5 s, whatever they send; an honest client is served meanwhile
    import asyncio
    import time

    from runtime_support import HOST, SECRET

    from assay.runtime.tcp import control

    a, pa, log = register_node(children, tmp_path)

    async def slow() -> tuple[float, Any]:
        conns = [await asyncio.open_connection(HOST, pa) for _ in range(20)]
        t0 = time.perf_counter()

        async def drip(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> float:
            try:
                for b in b'\x00\x00\x00\x40{"t":"hello","v":3,"node":"b",':
                    w.write(bytes([b]))
                    await w.drain()
                    await asyncio.sleep(1.0)
            except (ConnectionError, OSError):
                pass
            return time.perf_counter() - t0

        drips = [asyncio.create_task(drip(r, w)) for r, w in conns]
        await asyncio.sleep(1.5)
        t = time.perf_counter()
        reply = await control(HOST, pa, SECRET.encode(), {"t": "status"}, 3.0)
        served = time.perf_counter() - t
        closed = await asyncio.gather(*drips)
        for _, w in conns:
            w.close()
        return served, (reply, max(closed))

    served, (reply, last) = asyncio.run(slow())
    assert reply is not None and reply["t"] == "status"
    assert served < 1.0, f"an honest client waited {served:.1f} s"
    assert last < 9.0, f"a slow connection was held {last:.1f} s"
    assert a.poll() is None


@pytest.mark.e2e
def test_a_flood_of_refusals_writes_a_bounded_log_and_says_how_many_it_held_back(
        children, tmp_path):
    # each refused connection, and each frame dropped from a peer, was a line of the
    # node's log: anyone who can reach the port wrote its disk full at the rate it could
    # open connections (300 lines here), a peer with the secret at the rate of its frames
    import asyncio

    from runtime_support import HOST, wait_for_log

    a, pa, log = register_node(children, tmp_path)

    async def garbage(n: int) -> None:
        async def one() -> None:
            reader, writer = await asyncio.open_connection(HOST, pa)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            with contextlib.suppress(ConnectionError, OSError):
                await asyncio.wait_for(reader.read(), 5)
            writer.close()
        for _ in range(0, n, 50):
            await asyncio.gather(*[one() for _ in range(50)])

    async def drops(n: int) -> None:
        s = await as_b(pa)
        s.write(*[write_frame(1, seq, src="nobody") for seq in range(1, n + 1)])
        await s.drain()
        await asyncio.sleep(1.0)
        s.close()

    asyncio.run(garbage(300))
    asyncio.run(drops(2000))
    assert server_value(pa) == 0
    text = wait_for_log(log, "not logged")
    refused = text.count("refused a connection")
    dropped = text.count("dropped ")
    assert 1 <= refused <= 3, f"{refused} lines for 300 refusals"
    assert 1 <= dropped <= 3, f"{dropped} lines for 2000 drops"
    assert "refusals like these in the next" in text
    assert a.poll() is None


# --- a step log cut short below the store's durable steps ----------------------------------------

def test_a_step_log_cut_below_the_store_s_durable_steps_is_said_not_silent(tmp_path, caplog):
    # the lines are written out, not synced, before their steps' commit (which is synced):
    # a power cut, or a file cut short, leaves a log that ends before the steps the store
    # holds, and the node went on silently; its trace then failed to replay, far from why
    from assay.runtime.steplog import log_line, open_step_log

    log = tmp_path / "a.jsonl"
    log.write_text("".join(log_line(c, "a", {"kind": "fire", "instance": "p", "action": "go"})
                           for c in range(1, 6)))
    with caplog.at_level("WARNING", logger="assay.runtime"):
        f, clock = open_step_log(log, 7)
    f.close()
    assert clock == 7
    assert f"{log}: the step log ends at clock 5, but the store holds steps up to clock 7" \
        in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="assay.runtime"):
        f, clock = open_step_log(log, 5)                  # whole: nothing said
        f.close()
        f, clock = open_step_log(tmp_path / "new.jsonl", 7)   # a new log: nothing lost
        f.close()
    assert caplog.text == ""


# --- Ctrl-C at the worst moment ----------------------------------------------------------------

@pytest.mark.e2e
def test_ctrl_c_twice_mid_run_loses_no_durable_step_and_the_restart_replays(tmp_path):
    # probe that held (12 runs, 6 per durability): a second Ctrl-C raises KeyboardInterrupt
    # wherever the run is (a commit included: with `process` durability, on the event loop);
    # the store opens again, the restart goes on from it, and the whole trace — both lives
    # — is a run of the model (money conserved)
    import signal
    import time

    durability, wait = "process", 0.6
    bank = REPO / "tests" / "fixtures" / "runtime" / "bank_persistent.py"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    state, trace = tmp_path / "state", tmp_path / "t.json"
    args = [sys.executable, "-m", "assay.cli", "run", str(bank), "--state-dir", str(state),
            "--durability", durability, "--trace-out", str(trace)]
    p = subprocess.Popen([*args, "--for", "30", "--time-unit", "0.001"], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        # mid-run: once the run has made its store (a Ctrl-C during Python's own start-up
        # is not this test's subject: under load a fixed wait landed there, exit -2)
        deadline = time.monotonic() + 60
        while not (state / "local.sqlite").exists() and p.poll() is None:
            assert time.monotonic() < deadline, "the run never made its store"
            time.sleep(0.02)
        time.sleep(wait)
        os.killpg(p.pid, signal.SIGINT)
        time.sleep(0.002)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode in (0, 130), err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    again = subprocess.run([*args, "--for", "0.5", "--json"], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr[-2000:]
    r = assay("replay", trace, "--json", cwd=REPO)
    assert r.returncode == 0 and json.loads(r.stdout)["violation"] is None, r.stderr[-2000:]
