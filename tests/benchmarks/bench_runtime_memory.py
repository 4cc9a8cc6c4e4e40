"""Benchmark: the memory of a long-running deployment (resident set size over time).

What it measures
    tests/benchmarks/twopc_rounds_spec.py with `limit` 10^9 (rounds without end), TM on node a
    and the RMs on node b, each an ``assay node`` process on 127.0.0.1 with ``--trace-out``;
    every sample it reads VmRSS of both processes from /proc and the rounds done (control
    frame ``state``).  With ``--local`` it runs ``assay run`` of the same spec in one process
    instead and samples that process.  A runtime whose memory grows with the steps it took
    (memo tables, step lists) shows here as a rising column; a flat one is the goal.

    python tests/benchmarks/bench_runtime_memory.py                  # 45 s, two nodes
    python tests/benchmarks/bench_runtime_memory.py --local --seconds 24
"""
from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPEC = HERE / "twopc_rounds_spec.py"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_runtime import free_port, machine, stop  # noqa: E402


def rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) // 1024


def samples(seconds: float) -> list[float]:
    out = [5.0]
    while out[-1] + 10 <= seconds:
        out.append(out[-1] + 10)
    return out


def two_nodes(seconds: float) -> None:
    from assay.runtime.tcp import control

    secret = secrets.token_hex(16)
    ports = {"a": free_port(), "b": free_port()}
    nodes = {"a": ["tm"], "b": ["rm0", "rm1"]}
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        deploy = Path(tmp) / "deploy.toml"
        deploy.write_text(
            f'spec = "{SPEC}"\nsecret = "{secret}"\n[params]\nrms = 2\nlimit = 1000000000\n'
            + "".join(f'[nodes.{n}]\nhost = "127.0.0.1"\nport = {ports[n]}\n'
                      f"instances = {json.dumps(i)}\n" for n, i in nodes.items()))
        procs = {n: subprocess.Popen(
            [sys.executable, "-m", "assay.cli", "node", str(deploy), "--name", n,
             "--trace-out", str(Path(tmp) / f"{n}.jsonl")], cwd=ROOT,
            stderr=subprocess.DEVNULL) for n in nodes}

        async def ask(port: int, frame: dict) -> dict | None:
            return await control("127.0.0.1", port, secret.encode(), frame)

        try:
            t0 = time.monotonic()
            print("| seconds | rounds | node a RSS MB | node b RSS MB |\n|---:|---:|---:|---:|")
            for t in samples(seconds):
                time.sleep(max(0.0, t - (time.monotonic() - t0)))
                done = (asyncio.run(ask(ports["a"], {"t": "state", "instance": "tm"}))
                        or {}).get("fields", {}).get("done")
                print(f"| {t:.0f} | {done:,} | {rss_mb(procs['a'].pid)} "
                      f"| {rss_mb(procs['b'].pid)} |", flush=True)
            for port in ports.values():
                asyncio.run(ask(port, {"t": "stop"}))
            for p in procs.values():
                p.wait(20)
        finally:
            stop(list(procs.values()))


def one_process(seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        out = Path(tmp) / "report.json"
        with open(out, "w") as f:
            p = subprocess.Popen([sys.executable, "-m", "assay.cli", "run", str(SPEC), "-p",
                                  "limit=1000000000", "--for", str(seconds + 1), "--json"],
                                 cwd=ROOT, stdout=f, stderr=subprocess.DEVNULL)
        try:
            t0 = time.monotonic()
            print("| seconds | RSS MB |\n|---:|---:|")
            for t in samples(seconds):
                time.sleep(max(0.0, t - (time.monotonic() - t0)))
                print(f"| {t:.0f} | {rss_mb(p.pid)} |", flush=True)
            p.wait(60)
        finally:
            stop([p])
        print(f"\nsteps: {json.loads(out.read_text())['steps']:,} in {seconds + 1:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=45.0, help="how long to sample")
    ap.add_argument("--local", action="store_true", help="one `assay run` process instead")
    a = ap.parse_args()
    print(f"machine: {machine()}\n")
    (one_process if a.local else two_nodes)(a.seconds)


if __name__ == "__main__":
    main()
