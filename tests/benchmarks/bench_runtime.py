"""Benchmark: the TCP runtime's ping-pong over loopback against a plain asyncio TCP echo.

What it measures
    1. assay: tests/benchmarks/ping_pong_spec.py deployed on two nodes (pinger on node a,
       ponger on node b, 127.0.0.1), each ``python -m assay.cli node DEPLOY --name X
       --trace-out X.jsonl --monitor M`` in its own process, M = enforce and M = off.  The
       benchmark reads node a's trace as it is written (every 0.2 s, from the file) until the
       step that delivered Pong(limit) is in it, then stops both nodes.  (It asked node a for
       the pinger's state over a control connection every 0.2 s before: a handshake and a
       request on the measured node that plain asyncio's client does not have, in 3 of the
       23 slowest rounds of 2,000: tests/benchmarks/RESULTS.md, rt7.  The file costs node a
       nothing: it writes and flushes its trace lines anyway.)  From node a's trace (one
       JSON line per applied step with its wall clock ``time``): a round's latency is the
       time of the step that delivered Pong(n)
       minus the time of the action step that sent Ping(n); throughput is rounds / (time of
       the last Pong delivery - time of the first Ping action).  One round = 2 messages.
       Round 1 is left out: it waits for the link from a to b to connect and authenticate.
       Node start-up and authentication are outside the measured window.
    2. plain asyncio: a server process that echoes 4-byte-length-prefixed frames and a client
       process that sends N frames of similar JSON size one at a time (waiting for each echo),
       timing each round with perf_counter_ns (after 50 warm-up rounds); throughput is
       N / total.  Both sides parse and re-encode the JSON.  No authentication,
       acknowledgements, monitoring, persistence or trace writing: the floor for one round
       trip of Python asyncio over loopback.

CPU per round (the CPU x/plain column): user + system CPU time of both node processes
(/proc/PID/stat) between the first look at the trace that saw a round done and the last, per
round; for
plain asyncio, the client's own CPU over the measured rounds plus the server's over all of them
(the warm-up rounds taken out in proportion).  On a shared machine the wall-clock ratios move
with the other processes' load; the CPU ratio much less.

With ``--twopc`` it measures repeated two-phase-commit rounds instead
(tests/benchmarks/twopc_rounds_spec.py): the TM on node a, ``--rms`` resource managers (default
2) on node b; a round is Prepare(r) to every RM, Prepared(r) back from each, Commit(r) to every
RM, Ack(r) back from each (4 * rms messages).  A round's latency, from node a's trace, is the
time of the TM's ``start`` action that began round r to the delivery of the last Ack(r);
throughput is rounds / (last Ack - first start), round 1 left out.  The plain asyncio analogue
sends, per round, ``rms`` frames and waits for their ``rms`` echoes, twice (2 * rms
request/response frames on one connection, as the TM's broadcasts go to node b on one link).

Run it from anywhere:

    python tests/benchmarks/bench_runtime.py              # limit 2000, 3 repetitions, ~1 min
    python tests/benchmarks/bench_runtime.py --limit 300  # quick
    python tests/benchmarks/bench_runtime.py --twopc --rms 3 --limit 500
    python tests/benchmarks/bench_runtime.py --twopc --persist   # and with SQLite state
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPEC = HERE / "ping_pong_spec.py"
TWOPC_SPEC = HERE / "twopc_rounds_spec.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# a profiler to run each node under (see /tmp scripts; empty: none): called with the node's
# name, returns the argv prefix, e.g. ["py-spy", "record", "-o", f"{name}.txt", "--"]
NODE_PREFIX: Callable[[str], list[str]] | None = None
PIN = False      # --pin: the side that starts a round on CPU 0, the side that answers on CPU 1


def on_cpu(cpu: int) -> Callable[[], None] | None:
    """A `preexec_fn` that pins the child to `cpu` (with --pin), else None."""
    if not PIN:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux: /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# --- assay: two node processes ------------------------------------------------------------

class TraceTail:
    """The events of a node's trace file as the node writes them (complete lines only): read
    from the file by this process, so the measured node does no work for them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.rest = b""

    def size(self) -> int:
        """The file's size now (0 before it exists): a look that costs no parsing."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def new_events(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *lines, self.rest = (self.rest + data).split(b"\n")
        return [json.loads(line)["event"] for line in lines if line.strip()]


def run_nodes(spec: Path, params: dict[str, int], nodes: dict[str, list[str]],
              probe: tuple[str, int, Callable[[dict], int | None]], monitor: str,
              timeout: float, parse: Callable[[Path], dict],
              persist: bool | str = False) -> dict:
    """Deploy `spec` on the `nodes` (name -> instances; the first is watched), each an ``assay
    node`` process on 127.0.0.1, until the first node's trace has the step that completes
    round `target` of `probe` = (what, target, round_of: the round an event completes, or
    None); then stop them and return `parse` of the first node's trace, with the violation
    count of its status."""
    from assay.runtime.tcp import control

    with tempfile.TemporaryDirectory(prefix="bench_runtime_") as tmp:
        tmpd = Path(tmp)
        secret = secrets.token_hex(16)                    # 32 characters
        ports = {n: free_port() for n in nodes}
        deploy = tmpd / "deploy.toml"
        deploy.write_text(
            f'spec = "{spec}"\n'
            f'secret = "{secret}"\n'
            "[params]\n" + "".join(f"{k} = {v}\n" for k, v in params.items())
            + "".join(f'[nodes.{n}]\nhost = "127.0.0.1"\nport = {ports[n]}\n'
                      f"instances = {json.dumps(insts)}\n" for n, insts in nodes.items()))
        first = next(iter(nodes))
        pa = ports[first]
        what, target, round_of = probe
        tail = TraceTail(tmpd / f"{first.upper()}.jsonl")
        procs: list[subprocess.Popen] = []
        logs = []
        try:
            for cpu, name in enumerate(nodes):
                log = open(tmpd / f"{name}.log", "w")    # noqa: SIM115
                logs.append(log)
                procs.append(subprocess.Popen(
                    [*(NODE_PREFIX(name) if NODE_PREFIX else []),
                     sys.executable, "-m", "assay.cli", "node", str(deploy), "--name", name,
                     "--trace-out", str(tmpd / f"{name.upper()}.jsonl"), "--monitor", monitor,
                     *(["--state-dir", str(tmpd / "state")] if persist else []),
                     *(["--durability", persist] if isinstance(persist, str) else [])],
                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=on_cpu(cpu)))

            async def ask(port: int, frame: dict) -> dict | None:
                return await control("127.0.0.1", port, secret.encode(), frame)

            deadline = time.monotonic() + timeout
            got = -1
            # (rounds done, CPU seconds of every node) at the first look that saw a round
            # done, and at the last: the CPU per round, start-up left out
            cpu_marks: list[tuple[int, float]] = []
            # the trace is parsed while no round is seen done yet (the first CPU mark), then
            # only once it has stopped growing: parsing each look's new lines (~1,300 a look
            # for 2PC) took a CPU from the two nodes for milliseconds five times a second,
            # on a machine of two — in the p99 band, and plain asyncio's driver does nothing
            # while its rounds run
            size = -1
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"monitor={monitor}: {what} {got} of {target} done "
                                       f"after {timeout:.0f} s")
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError("a node exited: " + "".join(
                        (tmpd / f"{n}.log").read_text() for n in nodes))
                grown, size = size, tail.size()
                if got > 0 and size != grown:
                    time.sleep(0.2)
                    continue
                for ev in tail.new_events():
                    r = round_of(ev)
                    if r is not None:
                        got = max(got, r)
                if got > 0:
                    with contextlib.suppress(OSError):
                        mark = (got, sum(cpu_seconds(p.pid) for p in procs))
                        cpu_marks[1:] = [mark] if cpu_marks else []
                        if not cpu_marks:
                            cpu_marks.append(mark)
                if got == target:
                    break
                time.sleep(0.2)
            status = asyncio.run(ask(pa, {"t": "status"}))
            for port in ports.values():
                with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
                    asyncio.run(ask(port, {"t": "stop"}))
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=10)
        finally:
            stop(procs)
            for log in logs:
                log.close()
        result = parse(tmpd / f"{first.upper()}.jsonl")
    result["violations"] = (status or {}).get("violation_count")
    if len(cpu_marks) == 2 and cpu_marks[1][0] > cpu_marks[0][0]:
        (k0, c0), (k1, c1) = cpu_marks
        result["cpu_ms"] = (c1 - c0) / (k1 - k0) * 1e3
    return result


def trace_events(path: Path) -> list[tuple[float, dict]]:
    """(wall-clock time, event) of each step in a node's trace."""
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                e = json.loads(line)
                out.append((e["time"], e["event"]))
    return out


def summarize(sent: dict[int, float], recv: dict[int, float], limit: int) -> dict:
    """Per round k: from `sent[k]` to `recv[k]` (seconds); round 1, which waits for the link
    from a to b to connect and authenticate, is left out as warm-up."""
    keys = [k for k in recv if k in sent and k > 1]
    if len(keys) != limit - 1:
        raise RuntimeError(f"matched {len(keys)} rounds of {limit - 1} in the trace")
    lat = [(recv[k] - sent[k]) * 1e3 for k in keys]
    span = max(recv[k] for k in keys) - min(sent[k] for k in keys)
    return {"rounds": len(lat), "rps": len(lat) / span, "p50": pct(lat, 50),
            "p99": pct(lat, 99)}


# --- assay ping-pong -------------------------------------------------------------------------

def run_assay(limit: int, monitor: str, timeout: float, persist: bool | str = False) -> dict:
    def parse(path: Path) -> dict:
        sent: dict[int, float] = {}
        recv: dict[int, float] = {}
        for t, ev in trace_events(path):
            if ev.get("kind") == "action" and ev.get("instance") == "pinger" \
                    and ev.get("action") == "ping":
                # the action's event does not carry the message it sent; the k-th ping
                # action sends Ping(k) (it fires only when sent == got, and sent += 1)
                sent[len(sent) + 1] = t
            elif ev.get("kind") == "deliver" and ev.get("to") == "pinger" \
                    and ev["message"]["type"] == "Pong":
                recv[ev["message"]["fields"]["n"]] = t
        return summarize(sent, recv, limit)

    def round_of(ev: dict) -> int | None:           # a Pong delivered: its round is done
        if ev.get("kind") == "deliver" and ev.get("to") == "pinger":
            return int(ev["message"]["fields"]["n"])
        return None

    return run_nodes(SPEC, {"limit": limit}, {"a": ["pinger"], "b": ["ponger"]},
                     ("round trips", limit, round_of), monitor, timeout, parse, persist)


# --- assay 2PC rounds ------------------------------------------------------------------------

def run_assay_twopc(limit: int, rms: int, monitor: str, timeout: float,
                    persist: bool | str = False) -> dict:
    def parse(path: Path) -> dict:
        start: dict[int, float] = {}
        done: dict[int, float] = {}
        for t, ev in trace_events(path):
            if ev.get("kind") == "action" and ev.get("instance") == "tm" \
                    and ev.get("action") == "start":
                start[len(start) + 1] = t          # the k-th start begins round k
            elif ev.get("kind") == "deliver" and ev.get("to") == "tm" \
                    and ev["message"]["type"] == "Ack":
                r = ev["message"]["fields"]["r"]
                done[r] = max(done.get(r, t), t)   # the last Ack(r) completes round r
        return summarize(start, done, limit)

    acks: dict[int, int] = {}

    def round_of(ev: dict) -> int | None:           # the last Ack(r) delivered: r is done
        if ev.get("kind") == "deliver" and ev.get("to") == "tm" \
                and ev["message"]["type"] == "Ack":
            r = int(ev["message"]["fields"]["r"])
            acks[r] = acks.get(r, 0) + 1
            return r if acks[r] == rms else None
        return None

    return run_nodes(TWOPC_SPEC, {"rms": rms, "limit": limit},
                     {"a": ["tm"], "b": [f"rm{i}" for i in range(rms)]},
                     ("rounds", limit, round_of), monitor, timeout, parse, persist)


# --- plain asyncio echo ----------------------------------------------------------------------

def _frame(n: int, kind: str = "Ping") -> bytes:
    # about the size of an assay message frame (src, dst, ports, clock, epoch, seq, message)
    body = json.dumps({"t": "msg", "src": "pinger", "src_port": "peer", "dst": "ponger",
                       "dst_port": "peer", "clock": 2 * n, "epoch": "0123456789abcdef",
                       "seq": n, "message": {"type": kind, "fields": {"n": n}}},
                      separators=(",", ":"), sort_keys=True).encode()
    return len(body).to_bytes(4, "big") + body


async def _read(reader: asyncio.StreamReader) -> dict:
    size = int.from_bytes(await reader.readexactly(4), "big")
    return json.loads(await reader.readexactly(size))


def durable(db: str | None) -> Callable[[int, str], None] | None:
    """With `db`: a function that commits one row to the SQLite database there, as assay's
    store does with `--durability machine` (WAL, ``synchronous=FULL``: an fsync per commit),
    before it returns."""
    if db is None:
        return None
    import sqlite3

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS msgs (seq INTEGER, kind TEXT)")

    def commit(seq: int, kind: str) -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO msgs VALUES (?, ?)", (seq, kind))
        conn.execute("COMMIT")

    return commit


def echo_server(port: int, db: str | None = None) -> None:
    save = durable(db)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                obj = await _read(reader)            # decode and re-encode, as a node would
                if save is not None:                 # durable before it is answered
                    save(obj["seq"], obj["message"]["type"])
                writer.write(_frame(obj["seq"], obj["message"]["type"]))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def echo_client(port: int, rounds: int, rms: int = 0, db: str | None = None) -> None:
    """`rounds` echo round trips of one frame; with `rms` > 0, 2PC-shaped rounds: `rms`
    frames out and their `rms` echoes back, twice (Prepare/Prepared, Commit/Ack).  With `db`,
    each phase is committed to SQLite (`durable`) before its frames leave."""
    phases = [("Prepare", rms), ("Commit", rms)] if rms > 0 else [("Ping", 1)]
    save = durable(db)

    async def one_round(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        n: int) -> None:
        for kind, count in phases:
            if save is not None:
                save(n, kind)
            for _ in range(count):                   # a broadcast: all frames, then
                writer.write(_frame(n, kind))
            await writer.drain()
            for _ in range(count):                   # gather every reply
                assert (await _read(reader))["seq"] == n

    async def main() -> dict:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in range(1, 51):                       # warm-up, not measured
            await one_round(reader, writer, n)
        lat = []
        c0 = time.process_time()
        t0 = time.perf_counter_ns()
        for n in range(1, rounds + 1):
            s = time.perf_counter_ns()
            await one_round(reader, writer, n)
            lat.append((time.perf_counter_ns() - s) / 1e6)
        total = (time.perf_counter_ns() - t0) / 1e9
        cpu = time.process_time() - c0
        writer.close()
        return {"rounds": rounds, "rps": rounds / total, "p50": pct(lat, 50),
                "p99": pct(lat, 99), "client_cpu": cpu}

    print(json.dumps(asyncio.run(main())), flush=True)


def run_plain(rounds: int, timeout: float, rms: int = 0, sqlite: bool = False) -> dict:
    """Plain asyncio's echo; with `sqlite`, each side commits what it sends or receives to a
    SQLite database of its own with an fsync (`durable`): the client each phase of a round
    before sending it, the server each frame before answering it."""
    port = free_port()
    me = str(Path(__file__).resolve())
    procs = []
    tmp = tempfile.TemporaryDirectory(prefix="bench_runtime_plain_")
    dbs = ([["--echo-db", f"{tmp.name}/{side}.sqlite"] for side in ("server", "client")]
           if sqlite else [[], []])
    try:
        server = subprocess.Popen([sys.executable, me, "--echo-server", str(port), *dbs[0]],
                                  stdout=subprocess.PIPE, text=True, preexec_fn=on_cpu(1))
        procs.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        s0 = cpu_seconds(server.pid)
        client = subprocess.Popen([sys.executable, me, "--echo-client", str(port),
                                   "--limit", str(rounds), "--echo-rms", str(rms), *dbs[1]],
                                  stdout=subprocess.PIPE, text=True, preexec_fn=on_cpu(0))
        procs.append(client)
        out, _ = client.communicate(timeout=timeout)
        r = json.loads(out)
        # the server's CPU over all rounds, the 50 warm-up ones taken out in proportion
        server_cpu = (cpu_seconds(server.pid) - s0) * rounds / (rounds + 50)
        r["cpu_ms"] = (r.pop("client_cpu") + server_cpu) / rounds * 1e3
        return r
    finally:
        stop(procs)
        tmp.cleanup()


# --- main ------------------------------------------------------------------------------------

PLAIN_FSYNC = "plain asyncio echo + SQLite synchronous=FULL"
MACHINE = "assay, --monitor enforce, --state-dir"


def medians(rs: list[tuple[float, ...]]) -> str:
    """The columns of a ratio table: each ratio's median over the repetitions (min-max)."""
    cols = []
    for i in range(4):
        xs = [r[i] for r in rs]
        cols.append(f"{statistics.median(xs):.1f}x ({min(xs):.1f}-{max(xs):.1f})")
    return " | ".join(cols)


def machine() -> str:
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
            f"{platform.machine()}, Python {platform.python_version()}, "
            f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, load {load}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=2000, help="round trips (or 2PC rounds) per run")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    ap.add_argument("--twopc", action="store_true",
                    help="measure 2PC rounds (twopc_rounds_spec.py) instead of ping-pong")
    ap.add_argument("--rms", type=int, default=2, help="resource managers, with --twopc")
    ap.add_argument("--pin", action="store_true",
                    help="pin each side's process to its own CPU (the machine's noise, less)")
    ap.add_argument("--persist", action="store_true",
                    help="also run with --state-dir (SQLite, a commit per step that sends), "
                         "with each --durability")
    ap.add_argument("--repeat", type=int, default=3,
                    help="repetitions of the three runs (medians and ranges are reported)")
    ap.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--echo-client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--echo-rms", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--echo-db", help=argparse.SUPPRESS)
    a = ap.parse_args()
    global PIN
    PIN = a.pin and len(os.sched_getaffinity(0)) >= 2
    if a.echo_server is not None:
        return echo_server(a.echo_server, a.echo_db)
    if a.echo_client is not None:
        return echo_client(a.echo_client, a.limit, a.echo_rms, a.echo_db)
    if a.limit < 2 or (a.twopc and a.rms < 1) or a.repeat < 1:
        ap.error("--limit must be at least 2 (round 1 is left out), --rms and --repeat at "
                 "least 1")
    sys.path.insert(0, str(ROOT))
    print(f"machine: {machine()}")
    if a.twopc:
        print(f"2PC rounds, {a.limit} rounds, TM on node a, {a.rms} RMs on node b: "
              f"{4 * a.rms} messages a round (assay: round 1, which waits for the link, is "
              "left out)", flush=True)
        per_round = 4 * a.rms
        plain_label = f"plain asyncio, {a.rms} + {a.rms} echoes twice a round"
        runs: list[tuple[str, Callable[[], dict]]] = [
            (plain_label, lambda: run_plain(a.limit, a.timeout, a.rms)),
            ("assay, --monitor enforce",
             lambda: run_assay_twopc(a.limit, a.rms, "enforce", a.timeout)),
            ("assay, --monitor off", lambda: run_assay_twopc(a.limit, a.rms, "off", a.timeout))]
        if a.persist:
            runs.append(("assay, --monitor enforce, --state-dir",
                         lambda: run_assay_twopc(a.limit, a.rms, "enforce", a.timeout, True)))
            runs.append(("assay, --monitor enforce, --state-dir --durability process",
                         lambda: run_assay_twopc(a.limit, a.rms, "enforce", a.timeout,
                                                 "process")))
            runs.append((PLAIN_FSYNC, lambda: run_plain(a.limit, a.timeout, a.rms, True)))
    else:
        print(f"ping-pong, {a.limit} round trips (assay: round 1, which waits for the link, "
              "is left out)", flush=True)
        per_round = 2
        plain_label = "plain asyncio echo"
        runs = [(plain_label, lambda: run_plain(a.limit, a.timeout)),
                ("assay, --monitor enforce", lambda: run_assay(a.limit, "enforce", a.timeout)),
                ("assay, --monitor off", lambda: run_assay(a.limit, "off", a.timeout))]
        if a.persist:
            runs.append(("assay, --monitor enforce, --state-dir",
                         lambda: run_assay(a.limit, "enforce", a.timeout, True)))
            runs.append(("assay, --monitor enforce, --state-dir --durability process",
                         lambda: run_assay(a.limit, "enforce", a.timeout, "process")))
            runs.append((PLAIN_FSYNC, lambda: run_plain(a.limit, a.timeout, 0, True)))
    print(f"{a.repeat} repetition(s), each running every configuration once, one after the "
          "other; ratios are taken within a repetition (the machine is shared and noisy)\n",
          flush=True)
    header = ("| run | rounds | rounds/s | msgs/s | p50 ms | p99 ms | throughput plain/x "
              "| p50 x/plain | p99 x/plain | CPU ms/round | CPU x/plain |"
              "\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(header)
    ratios: dict[str, list[tuple[float, ...]]] = {label: [] for label, _ in runs}
    durable_ratios: list[tuple[float, ...]] = []      # machine durability / plain + SQLite
    violations: dict[str, list] = {label: [] for label, _ in runs}
    for rep in range(1, a.repeat + 1):
        results = [(label, run()) for label, run in runs]
        plain = results[0][1]
        for label, r in results:
            cpu = r.get("cpu_ms", float("nan"))
            ratio = (plain["rps"] / r["rps"], r["p50"] / plain["p50"], r["p99"] / plain["p99"],
                     cpu / plain.get("cpu_ms", float("nan")))
            ratios[label].append(ratio)
            violations[label].append(r.get("violations"))
            print(f"| {label} (#{rep}) | {r['rounds']} | {r['rps']:,.0f} "
                  f"| {per_round * r['rps']:,.0f} | {r['p50']:.3f} | {r['p99']:.3f} "
                  f"| {ratio[0]:.1f}x | {ratio[1]:.1f}x | {ratio[2]:.1f}x | {cpu:.3f} "
                  f"| {ratio[3]:.1f}x |", flush=True)
        by = dict(results)
        if PLAIN_FSYNC in by:
            d, m = by[PLAIN_FSYNC], by[MACHINE]
            durable_ratios.append((d["rps"] / m["rps"], m["p50"] / d["p50"],
                                   m["p99"] / d["p99"], m.get("cpu_ms", float("nan"))
                                   / d.get("cpu_ms", float("nan"))))
    print("\nmedian ratio over the repetitions (min-max):\n")
    print("| run | throughput plain/x | p50 x/plain | p99 x/plain | CPU x/plain |"
          "\n|---|---:|---:|---:|---:|")
    for label, rs in ratios.items():
        print(f"| {label} | {medians(rs)} |")
    if durable_ratios:
        print(f"\n{MACHINE} (an fsync per group commit) against {PLAIN_FSYNC} (an fsync per "
              "message received and per phase sent), median (min-max):\n")
        print("| run | throughput durable plain/x | p50 x/durable plain | p99 x/durable plain "
              "| CPU x/durable plain |\n|---|---:|---:|---:|---:|")
        print(f"| {MACHINE} | {medians(durable_ratios)} |")
    print("\nmonitor violations reported by node a: " + ", ".join(
        f"{label.removeprefix('assay, ')} {sum(v or 0 for v in vs)}"
        for label, vs in violations.items()
        if label.startswith("assay")))

if __name__ == "__main__":
    main()
