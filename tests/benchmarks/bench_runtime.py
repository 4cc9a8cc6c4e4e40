"""Benchmark: the TCP runtime's ping-pong over loopback against a plain asyncio TCP echo.

What it measures
    1. assay: tests/benchmarks/ping_pong_spec.py deployed on two nodes (pinger on node a,
       ponger on node b, 127.0.0.1), each ``python -m assay.cli node DEPLOY --name X
       --trace-out X.jsonl --monitor M`` in its own process, M = enforce and M = off.  The
       benchmark polls the pinger's state (control frame ``state``) until ``got == limit``,
       then stops both nodes.  From node a's trace (one JSON line per applied step with its
       wall clock ``time``): a round's latency is the time of the step that delivered Pong(n)
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

Run it from anywhere:

    python tests/benchmarks/bench_runtime.py              # limit 2000, ~1 minute
    python tests/benchmarks/bench_runtime.py --limit 300  # quick
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPEC = HERE / "ping_pong_spec.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


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


# --- assay ping-pong -------------------------------------------------------------------------

def run_assay(limit: int, monitor: str, timeout: float) -> dict:
    from assay.runtime.tcp import control

    with tempfile.TemporaryDirectory(prefix="bench_runtime_") as tmp:
        tmpd = Path(tmp)
        secret = secrets.token_hex(16)                    # 32 characters
        pa, pb = free_port(), free_port()
        deploy = tmpd / "deploy.toml"
        deploy.write_text(
            f'spec = "{SPEC}"\n'
            f'secret = "{secret}"\n'
            f"[params]\nlimit = {limit}\n"
            f'[nodes.a]\nhost = "127.0.0.1"\nport = {pa}\ninstances = ["pinger"]\n'
            f'[nodes.b]\nhost = "127.0.0.1"\nport = {pb}\ninstances = ["ponger"]\n')
        procs: list[subprocess.Popen] = []
        logs = []
        try:
            for name in ("a", "b"):
                log = open(tmpd / f"{name}.log", "w")    # noqa: SIM115
                logs.append(log)
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "assay.cli", "node", str(deploy), "--name", name,
                     "--trace-out", str(tmpd / f"{name.upper()}.jsonl"), "--monitor", monitor],
                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))

            async def ask(port: int, frame: dict) -> dict | None:
                return await control("127.0.0.1", port, secret.encode(), frame)

            deadline = time.monotonic() + timeout
            got = -1
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"monitor={monitor}: pinger got {got}/{limit} "
                                       f"after {timeout:.0f} s")
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"a node exited: {(tmpd / 'a.log').read_text()}"
                                       f"{(tmpd / 'b.log').read_text()}")
                try:
                    r = asyncio.run(ask(pa, {"t": "state", "instance": "pinger"}))
                    got = r["fields"]["got"] if r and "fields" in r else got
                except (OSError, TimeoutError, asyncio.IncompleteReadError):
                    pass
                if got == limit:
                    break
                time.sleep(0.2)
            status = asyncio.run(ask(pa, {"t": "status"}))
            for port in (pa, pb):
                with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
                    asyncio.run(ask(port, {"t": "stop"}))
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=10)
        finally:
            stop(procs)
            for log in logs:
                log.close()
        sent: dict[int, float] = {}
        recv: dict[int, float] = {}
        with open(tmpd / "A.jsonl") as f:
            for line in f:
                if not line.strip():
                    continue
                e = json.loads(line)
                ev = e["event"]
                if ev.get("kind") == "action" and ev.get("instance") == "pinger" \
                        and ev.get("action") == "ping":
                    # the action's event does not carry the message it sent; the k-th ping
                    # action sends Ping(k) (it fires only when sent == got, and sent += 1)
                    sent[len(sent) + 1] = e["time"]
                elif ev.get("kind") == "deliver" and ev.get("to") == "pinger" \
                        and ev["message"]["type"] == "Pong":
                    recv[ev["message"]["fields"]["n"]] = e["time"]
    # round 1 waits for the link from a to b to connect and authenticate: warm-up, left out
    keys = [k for k in recv if k in sent and k > 1]
    if len(keys) != limit - 1:
        raise RuntimeError(f"matched {len(keys)} rounds of {limit - 1} in the trace")
    lat = [(recv[k] - sent[k]) * 1e3 for k in keys]
    span = max(recv[k] for k in keys) - min(sent[k] for k in keys)
    return {"rounds": len(lat), "rps": len(lat) / span, "p50": pct(lat, 50),
            "p99": pct(lat, 99), "violations": (status or {}).get("violation_count")}


# --- plain asyncio echo ----------------------------------------------------------------------

def _frame(n: int) -> bytes:
    # about the size of an assay message frame (src, dst, ports, clock, epoch, seq, message)
    body = json.dumps({"t": "msg", "src": "pinger", "src_port": "peer", "dst": "ponger",
                       "dst_port": "peer", "clock": 2 * n, "epoch": "0123456789abcdef",
                       "seq": n, "message": {"type": "Ping", "fields": {"n": n}}},
                      separators=(",", ":"), sort_keys=True).encode()
    return len(body).to_bytes(4, "big") + body


async def _read(reader: asyncio.StreamReader) -> dict:
    size = int.from_bytes(await reader.readexactly(4), "big")
    return json.loads(await reader.readexactly(size))


def echo_server(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                obj = await _read(reader)            # decode and re-encode, as a node would
                writer.write(_frame(obj["seq"]))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def echo_client(port: int, rounds: int) -> None:
    async def main() -> dict:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in range(1, 51):                       # warm-up, not measured
            writer.write(_frame(n))
            await writer.drain()
            await _read(reader)
        lat = []
        t0 = time.perf_counter_ns()
        for n in range(1, rounds + 1):
            s = time.perf_counter_ns()
            writer.write(_frame(n))
            await writer.drain()
            assert (await _read(reader))["seq"] == n
            lat.append((time.perf_counter_ns() - s) / 1e6)
        total = (time.perf_counter_ns() - t0) / 1e9
        writer.close()
        return {"rounds": rounds, "rps": rounds / total, "p50": pct(lat, 50),
                "p99": pct(lat, 99)}

    print(json.dumps(asyncio.run(main())), flush=True)


def run_plain(rounds: int, timeout: float) -> dict:
    port = free_port()
    me = str(Path(__file__).resolve())
    procs = []
    try:
        server = subprocess.Popen([sys.executable, me, "--echo-server", str(port)],
                                  stdout=subprocess.PIPE, text=True)
        procs.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = subprocess.Popen([sys.executable, me, "--echo-client", str(port),
                                   "--limit", str(rounds)], stdout=subprocess.PIPE, text=True)
        procs.append(client)
        out, _ = client.communicate(timeout=timeout)
        return json.loads(out)
    finally:
        stop(procs)


# --- main ------------------------------------------------------------------------------------

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
    ap.add_argument("--limit", type=int, default=2000, help="round trips per run")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    ap.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--echo-client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.echo_server is not None:
        return echo_server(a.echo_server)
    if a.echo_client is not None:
        return echo_client(a.echo_client, a.limit)
    sys.path.insert(0, str(ROOT))
    print(f"machine: {machine()}")
    print(f"ping-pong, {a.limit} round trips (assay: round 1, which waits for the link, is "
          "left out)\n", flush=True)
    plain = run_plain(a.limit, a.timeout)
    enforce = run_assay(a.limit, "enforce", a.timeout)
    off = run_assay(a.limit, "off", a.timeout)
    rows = [("plain asyncio echo", plain), ("assay, --monitor enforce", enforce),
            ("assay, --monitor off", off)]
    print("| run | rounds | rounds/s | msgs/s | p50 ms | p99 ms | throughput plain/x "
          "| p50 x/plain | p99 x/plain |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in rows:
        print(f"| {label} | {r['rounds']} | {r['rps']:,.0f} | {2 * r['rps']:,.0f} "
              f"| {r['p50']:.3f} | {r['p99']:.3f} | {plain['rps'] / r['rps']:.1f}x "
              f"| {r['p50'] / plain['p50']:.1f}x | {r['p99'] / plain['p99']:.1f}x |")
    print(f"\nmonitor violations reported by node a: enforce {enforce['violations']}, "
          f"off {off['violations']}")


if __name__ == "__main__":
    main()
