"""Benchmark: CPU per round of two runtime nodes in ONE process, the least noisy figure.

bench_runtime.py runs each node in its own process and compares against plain asyncio in two
processes: that is the deployment's real cost, but on a shared machine its wall-clock and even
its CPU figures move with the other processes' load.  This runs both `TcpNode`s of the same
deployment (ping-pong or 2PC rounds, tests/benchmarks/ping_pong_spec.py and
twopc_rounds_spec.py, node a and node b on 127.0.0.1, authenticated links, `--monitor
enforce`, a step log each) on one event loop and measures `time.process_time()` from round
200 to the last, per round; the minimum over `--reps` runs is the figure (the least disturbed
run).  It is for before/after comparisons of the node's own code (`--root` another checkout,
run alternately), not for ratios against plain asyncio: in one process there are no process
wake-ups, which are a large part of the two-process figures.

    python tests/benchmarks/bench_runtime_cpu.py                      # ping-pong, 2000 rounds
    python tests/benchmarks/bench_runtime_cpu.py --twopc --limit 1000
    python tests/benchmarks/bench_runtime_cpu.py --root /path/to/other/checkout
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WARM = 200                      # rounds left out: connecting, first memo misses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def case(root: Path, twopc: bool, limit: int
         ) -> tuple[Path, dict[str, list[str]], dict[str, int], tuple[str, str]]:
    """The spec of a run (of the tree at `root`), its placement on nodes a and b, its
    parameters, and the field that counts its rounds (instance, field)."""
    bench = root / "tests" / "benchmarks"
    if twopc:
        return (bench / "twopc_rounds_spec.py", {"a": ["tm"], "b": ["rm0", "rm1"]},
                {"limit": limit, "rms": 2}, ("tm", "done"))
    return (bench / "ping_pong_spec.py", {"a": ["pinger"], "b": ["ponger"]},
            {"limit": limit}, ("pinger", "got"))


async def one_run(root: Path, tmp: str, twopc: bool, limit: int, persist: str) -> float:
    from assay.runtime.deploy import load_deployment
    from assay.runtime.tcp import TcpNode

    spec, nodes, params, probe = case(root, twopc, limit)
    dep = Path(tmp) / "deploy.toml"
    dep.write_text(
        f'spec = "{spec}"\nsecret = "{secrets.token_hex(16)}"\n[params]\n'
        + "".join(f"{k} = {v}\n" for k, v in params.items())
        + "".join(f'[nodes.{n}]\nhost = "127.0.0.1"\nport = {free_port()}\n'
                  f"instances = {json.dumps(i)}\n" for n, i in nodes.items()))
    d = load_deployment(dep)
    kw: dict = {}
    if persist != "none":
        kw = {"state_dir": f"{tmp}/state",
              "durability": "process" if persist == "process" else "machine"}
    a = TcpNode(d, "a", trace_out=f"{tmp}/A.jsonl", **kw)
    b = TcpNode(d, "b", trace_out=f"{tmp}/B.jsonl", **kw)
    tasks = [asyncio.create_task(n.serve(signals=())) for n in (a, b)]
    inst, fld = probe
    start: tuple[float, int] | None = None
    while True:
        got = a.node.state(inst)[fld]
        if start is None and got >= WARM:
            start = (time.process_time(), got)
        if got >= limit:
            end = (time.process_time(), got)
            break
        await asyncio.sleep(0.005)
    if a.node.violation_count or b.node.violation_count:
        raise RuntimeError("the monitor reported violations")
    a.stop()
    b.stop()
    await asyncio.gather(*tasks)
    assert start is not None
    return (end[0] - start[0]) / (end[1] - start[1]) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--twopc", action="store_true", help="2PC rounds (2 RMs), not ping-pong")
    ap.add_argument("--limit", type=int, default=2000, help="rounds per run")
    ap.add_argument("--reps", type=int, default=3, help="runs; the minimum is reported")
    ap.add_argument("--persist", choices=("none", "machine", "process"), default="none",
                    help="with a store (--state-dir) and this durability")
    ap.add_argument("--root", type=Path, default=HERE.parents[1],
                    help="the checkout whose assay to measure (default: this one)")
    args = ap.parse_args()
    if args.limit <= WARM:
        ap.error(f"--limit must be above {WARM}")
    sys.path.insert(0, str(args.root.resolve()))
    logging.disable(logging.WARNING)
    runs = []
    for _ in range(args.reps):
        with tempfile.TemporaryDirectory(prefix="bench_runtime_cpu_") as tmp:
            runs.append(asyncio.run(one_run(args.root.resolve(), tmp, args.twopc, args.limit,
                                            args.persist)))
    print(json.dumps({"root": str(args.root), "bench": "2pc" if args.twopc else "ping-pong",
                      "persist": args.persist, "cpu_ms_per_round_min": round(min(runs), 4),
                      "runs": [round(r, 4) for r in runs]}))


if __name__ == "__main__":
    main()
