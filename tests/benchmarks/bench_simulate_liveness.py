"""Benchmark: what watching for liveness lassos costs `simulate`, and how soon it finds one.

What it measures
    1. Cost.  For each spec, the same runs (seeds ``derive(0, i)``, 1,000 steps at most, no
       faults) through ``run_once`` on one warm kernel, with lasso watching (one shared
       ``LassoMemo``, as a campaign's worker has) and without (``lassos=False``); CPU time
       (``time.process_time``), the best of ``--repeat`` alternating rounds, so other jobs on
       the machine weigh less.  The kernel's step memo is warm before the clock starts: this
       is the simulator loop at its fastest, where the watch's share is the largest.  A spec
       without liveness properties never makes a tracker (its ratio is the noise floor).
    2. Time to the first suspect.  For each liveness bug and seeds 0..19: runs
       ``run_once(kernel, derive(seed, i), 1000, ...)`` for i = 0, 1, ... until one reports a
       suspect (cap ``--cap`` runs); median [min-max] of those runs and of the length of the
       lasso reported (its prefix, cut to a simple path, and its cycle).

Run it from anywhere:

    python tests/benchmarks/bench_simulate_liveness.py            # ~1 minute on 2 CPUs
    python tests/benchmarks/bench_simulate_liveness.py --quick
"""
from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from assay.model.load import build  # noqa: E402
from assay.simulator import FaultRates  # noqa: E402
from assay.simulator.campaign import derive, kernel_for  # noqa: E402
from assay.simulator.lasso import LassoMemo  # noqa: E402
from assay.simulator.run import run_once  # noqa: E402

COST = ["specs/lock_server.py", "tests/fixtures/liveness/token_ring.py",
        "specs/lock_server_bug_priority.py", "specs/dining_philosophers.py",
        "specs/two_phase_commit.py"]
BUGS = ["specs/lock_server_bug_priority.py", "specs/ring_election_bug_swallow.py",
        "tests/fixtures/liveness/token_ring_bug_keep.py"]


def cost(spec: str, runs: int, repeat: int) -> tuple[float, float, int, int]:
    system, _, _ = build(ROOT / spec)
    kernel = kernel_for(system, FaultRates())
    memo = LassoMemo(kernel)
    rates = FaultRates()
    events = 0
    for i in range(runs):                        # warm the kernel and the memo
        events += len(run_once(kernel, derive(0, i), 1000, rates, lassos=memo).events)
    on, off = [], []
    for _ in range(repeat):
        t = time.process_time()
        for i in range(runs):
            run_once(kernel, derive(0, i), 1000, rates, lassos=memo)
        on.append(time.process_time() - t)
        t = time.process_time()
        for i in range(runs):
            run_once(kernel, derive(0, i), 1000, rates, lassos=False)
        off.append(time.process_time() - t)
    return min(on), min(off), events, memo.checked


def first_suspect(spec: str, seeds: int, cap: int) -> tuple[list[int], list[int], int]:
    system, _, _ = build(ROOT / spec)
    kernel = kernel_for(system, FaultRates())
    memo = LassoMemo(kernel)
    runs, lengths, found = [], [], 0
    for seed in range(seeds):
        for i in range(cap):
            r = run_once(kernel, derive(seed, i), 1000, FaultRates(), lassos=memo)
            if r.suspect is not None:
                found += 1
                runs.append(i + 1)
                lengths.append(len(r.suspect.events))
                break
    return runs, lengths, found


def _spread(xs: list[int]) -> str:
    if not xs:
        return "-"
    return f"{statistics.median(xs):g} [{min(xs)}-{max(xs)}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cap", type=int, default=200)
    a = ap.parse_args()
    runs = 20 if a.quick else 100
    repeat = 2 if a.quick else a.repeat
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
          f"Python {platform.python_version()}, {platform.machine()}")
    print("\n| spec | runs | events | with watch s | without s | ratio | lassos checked |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for spec in COST:
        with_s, without_s, events, checked = cost(spec, runs, repeat)
        print(f"| {Path(spec).stem} | {runs} | {events:,} | {with_s:.3f} | {without_s:.3f} | "
              f"{with_s / without_s:.2f}x | {checked} |")
    print("\n| bug spec | seeds found | runs to first suspect | lasso length (events) |")
    print("|---|---:|---|---|")
    seeds = 5 if a.quick else 20
    for spec in BUGS:
        r, lengths, found = first_suspect(spec, seeds, a.cap)
        print(f"| {Path(spec).stem} | {found}/{seeds} | {_spread(r)} | {_spread(lengths)} |")


if __name__ == "__main__":
    main()
