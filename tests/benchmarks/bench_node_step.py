"""Benchmark: the cost of one runtime step in the kernel and the monitors, without I/O.

bench_runtime_cpu.py measures two `TcpNode`s on one event loop: sockets, frames and the event
loop are most of its figure.  This drives the sans-IO `Node`s of the same deployments
(ping-pong, tests/benchmarks/ping_pong_spec.py, pinger on node a and ponger on node b; 2PC
rounds, twopc_rounds_spec.py, tm on a and two RMs on b), each node with its own `Kernel` as
`assay node` has, `--monitor enforce`, in the pattern `TcpNode` calls them: per step, the
hosted instances that are ready (`Node.first_taken` of the inbox, `Node.has_actions`), one
step (`deliver` or `fire_any`), the step-log line of its event (`steplog.log_line`), its sends
queued at the other node's inbox.  It prints the CPU microseconds a round (minimum over
`--reps` runs, after `WARM` rounds) and the calls a round (cProfile, `--calls`).

    python tests/benchmarks/bench_node_step.py                  # ping-pong, 20000 rounds
    python tests/benchmarks/bench_node_step.py --twopc --limit 5000
    python tests/benchmarks/bench_node_step.py --root /path/to/other/checkout
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WARM = 500


def one_run(root: Path, twopc: bool, limit: int, profile: bool = False) -> tuple[float, float]:
    """(CPU µs a round after WARM rounds, function calls a round) of one run."""
    from bench_runtime_cpu import case  # (this script's directory is on sys.path)

    from assay.kernel.kernel import Kernel
    from assay.model.load import build
    from assay.runtime.node import Node
    from assay.runtime.steplog import log_line

    spec, placement, params, probe = case(root, twopc, limit)
    nodes = {n: Node(Kernel(build(spec, None, params)[0]), hosted)
             for n, hosted in placement.items()}
    where = {i: nodes[n] for n, hosted in placement.items() for i in hosted}
    inbox: dict[str, deque[Any]] = {i: deque() for i in where}
    lines = 0

    def ready(node: Node) -> list[tuple[str, int | None]]:
        out = []
        for n in node.hosted:
            box = inbox[n]
            k = node.first_taken(n, box) if box else None
            if k is not None or node.has_actions(n):
                out.append((n, k))
        return out

    def group(node: Node) -> int:
        """The steps `node` can take now, one after another (as `TcpNode._take_group`)."""
        nonlocal lines
        steps = 0
        while True:
            r = ready(node)
            if not r:
                return steps
            name, k = r[0]
            if k is not None:
                env = inbox[name][k]
                del inbox[name][k]
                out = node.deliver(env)
            else:
                out = node.fire_any(name, node.rng)
                assert out is not None
            if not out.applied:
                raise RuntimeError(f"the monitor rejected a step: {out.violations}")
            lines += len(log_line(steps, "a", out.event))
            for env in out.sends:
                inbox[env.dst].append(env)
            steps += 1

    inst, fld = probe
    head = nodes["a"]
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
    start = None
    while True:
        got = head.state(inst)[fld]
        if start is None and got >= WARM:
            if prof is not None:
                prof.enable()
            start = (time.process_time(), got)
        if got >= limit:
            end = (time.process_time(), got)
            break
        moved = sum(group(n) for n in nodes.values())
        if not moved:
            raise RuntimeError(f"stuck at round {got}")
    calls = 0.0
    if prof is not None:
        import pstats
        prof.disable()
        calls = pstats.Stats(prof).total_calls          # type: ignore[attr-defined]
    if any(n.violation_count for n in nodes.values()):
        raise RuntimeError("the monitor reported violations")
    assert start is not None
    rounds = end[1] - start[1]
    return (end[0] - start[0]) / rounds * 1e6, calls / rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--twopc", action="store_true", help="2PC rounds (2 RMs), not ping-pong")
    ap.add_argument("--limit", type=int, default=20000, help="rounds per run")
    ap.add_argument("--reps", type=int, default=5, help="runs; the minimum is reported")
    ap.add_argument("--calls", action="store_true", help="also count calls a round (cProfile)")
    ap.add_argument("--root", type=Path, default=HERE.parents[1],
                    help="the checkout whose assay to measure (default: this one)")
    args = ap.parse_args()
    if args.limit <= WARM:
        ap.error(f"--limit must be above {WARM}")
    sys.path.insert(0, str(args.root.resolve()))
    runs = [one_run(args.root.resolve(), args.twopc, args.limit)[0] for _ in range(args.reps)]
    out: dict[str, Any] = {"root": str(args.root), "bench": "2pc" if args.twopc else "ping-pong",
                           "cpu_us_per_round_min": round(min(runs), 2),
                           "runs": [round(r, 2) for r in runs]}
    if args.calls:
        out["calls_per_round"] = round(one_run(args.root.resolve(), args.twopc, args.limit,
                                               profile=True)[1], 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
