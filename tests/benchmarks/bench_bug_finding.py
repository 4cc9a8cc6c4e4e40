"""Benchmark: runs and seconds to the first bug per scheduler (uniform random, PCT, coverage,
swarm) and for the Hypothesis engine, on a corpus of bug specs; shrunk lengths against the
shortest counterexample (`check`, BFS).

What it measures, per spec and engine, over seeds 0..S-1 (median, and how many seeds found
the bug within the cap):

* native schedulers: single runs `run_once(kernel, derive(seed, i), steps, rates, scheduler)`
  for i = 0, 1, ... until the first run with a violation, at most `--cap` runs; the coverage
  scheduler's memory starts afresh at every block of 64 runs, as in a campaign
  (`schedulers.begin_run`).  The kernel is built once per spec, not timed, and shared by the
  engines (its memo tables are warm after the first runs).  Time to bug excludes shrinking;
  the shrunk length is `shrink` (the simulator's) of that first failing run.
* hypothesis: `assay.testing.search(system, seed=seed, runs=cap, database=None)`: runs until
  the first failure and the seconds to it (`SearchStats`), the length of the trace it writes
  (Hypothesis's shrinking, then `shrink`) and, in parentheses, of Hypothesis's alone;
  "total" includes both shrinkings.
* bfs: `assay.check(spec, faults=..., max_time=...)`: the shortest counterexample's length.

    python tests/benchmarks/bench_bug_finding.py              # ~3-6 minutes on 2 loaded CPUs
    python tests/benchmarks/bench_bug_finding.py --quick      # smoke test
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from assay.model.load import build  # noqa: E402
from assay.simulator import FaultRates, Options, derive, run_once, shrink  # noqa: E402
from assay.simulator.campaign import kernel_for  # noqa: E402
from assay.simulator.schedulers import begin_run  # noqa: E402
from assay.testing import SearchStats, search  # noqa: E402

S = REPO / "specs"
B = REPO / "tests" / "benchmarks"
# (label, spec, params, simulate fault rates, check fault budget)
CORPUS: list[tuple[str, Path, dict[str, str], str, str | None]] = [
    ("2pc majority (3 RMs)", S / "two_phase_commit_bug_majority.py", {}, "", None),
    ("2pc majority (5 RMs)", S / "two_phase_commit_bug_majority.py", {"rm_count": "5"}, "",
     None),
    ("2pc majority, work=3 (5 RMs)", B / "twopc_majority_spec.py", {}, "", None),
    ("2pc majority, work=2 (3 RMs)", B / "twopc_majority_spec.py",
     {"rm_count": "3", "work": "2"}, "", None),
    ("2pc protocol", S / "two_phase_commit_bug_protocol.py", {}, "", None),
    ("tla paxos commit any", S / "tla_paxos_commit_bug_any.py", {}, "", None),
    ("tla lamport mutex ties", S / "tla_lamport_mutex_bug_ties.py", {}, "", None),
    ("paxos own value", S / "paxos_bug_own_value.py", {}, "", None),
    ("coin election ties", S / "coin_election_bug_ties.py", {}, "", None),
    ("bank transfer overdraft", S / "bank_transfer_bug_overdraft.py", {}, "", None),
    ("in-order receiver no guard", S / "in_order_receiver_bug_no_guard.py", {}, "", None),
    ("abp lossy any ack", S / "abp_lossy_bug_any_ack.py", {}, "", None),
    ("alternating bit no seq (dup)", S / "alternating_bit_bug_no_seq.py", {}, "dup=0.1",
     "dup=1"),
    ("register volatile (crash)", S / "register_bug_volatile.py", {}, "crash=0.05", "crash=1"),
]
NATIVE = ("random", "pct", "coverage", "swarm")


def native(kernel: Any, scheduler: str, seed: int, cap: int, steps: int,
           rates: FaultRates) -> tuple[int | None, float, int | None]:
    """Runs and seconds to the first violation, and the shrunk length of that run."""
    started = time.perf_counter()
    for i in range(cap):
        if scheduler == "coverage":
            begin_run(kernel, i)
        r = run_once(kernel, derive(seed, i), steps, rates, scheduler, 3, lassos=False)
        if r.violation is not None:
            took = time.perf_counter() - started
            names = [kernel.event(e).to_json() for e in r.events]
            return i + 1, took, len(shrink(kernel, r.initial, names, r.violation))
    return None, time.perf_counter() - started, None


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3g}" if xs else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--cap", type=int, default=500, help="runs per seed at most")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="only corpus entries whose label contains this")
    ap.add_argument("--bfs-time", type=float, default=60.0)
    ap.add_argument("--engines", default=",".join((*NATIVE, "hypothesis")),
                    help="comma-separated: random,pct,coverage,swarm,hypothesis")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.cap = 2, 100
    import assay

    print(f"seeds 0..{args.seeds - 1}, at most {args.cap} runs of {args.steps} steps per seed")
    print("| spec | engine | found | runs to bug (median) | s to bug (median) | shrunk len "
          "(median) | bfs shortest |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, spec, params, faults, budget in CORPUS:
        if args.only and args.only not in label:
            continue
        rates = FaultRates.parse(faults) if faults else FaultRates()
        system, name, _ = build(str(spec), None, params)
        kernel = kernel_for(system, rates)
        try:
            r = assay.check(str(spec), faults=budget, max_time=args.bfs_time, **params)
            bfs = str(len(r.steps)) if r.verdict == "violation" else r.verdict
        except Exception as e:           # noqa: BLE001 (a benchmark reports, never stops)
            bfs = f"error: {e}"
        for engine in args.engines.split(","):
            runs: list[float] = []
            secs: list[float] = []
            lens: list[float] = []
            total: list[float] = []
            hyp: list[float] = []         # Hypothesis's own shrinking, before `shrink`
            for seed in range(args.seeds):
                if engine == "hypothesis":
                    stats = SearchStats()
                    t0 = time.perf_counter()
                    c = search(system, spec=str(spec), system_name=name, params=params,
                               seed=seed, runs=args.cap, opts=Options(steps=args.steps,
                                                                     rates=rates),
                               stats=stats)
                    total.append(time.perf_counter() - t0)
                    if stats.first_failure is not None:
                        runs.append(stats.first_failure)
                        secs.append(stats.first_seconds or 0.0)
                        lens.append(len(c.failures[0].shrunk or []))
                        hyp.append(stats.hypothesis_shrunk or 0)
                else:
                    n, s, ln = native(kernel, engine, seed, args.cap, args.steps, rates)
                    if n is not None:
                        runs.append(n)
                        secs.append(s)
                        lens.append(ln or 0)
            extra = f" (total with shrinking {med(total)} s)" if total else ""
            by = f" (Hypothesis alone: {med(hyp)})" if hyp else ""
            print(f"| {label} | {engine} | {len(runs)}/{args.seeds} | {med(runs)} | "
                  f"{med(secs)}{extra} | {med(lens)}{by} | {bfs} |", flush=True)


if __name__ == "__main__":
    main()
