"""Benchmark: `assay simulate`'s events per second on TwoPhase against a hand-written seeded
random walk of the same protocol, measured in the same run.

assay: ``campaign("specs/tla_twophase.py", rm_count=N, runs=R, jobs=1)`` — the whole
campaign in this process (spec and kernel built, every contract and the TCConsistent
property checked at every step, the distinct-state count); events/s is
``c.events / c.seconds``.

Hand-written: ``tests/benchmarks/handwritten_twophase.py``'s `successors` and `consistent`,
walked as the simulator walks: R runs, each from the initial state with its own
``random.Random(seed)``, at each step the successors that change the state, one picked
uniformly, TCConsistent checked, until no successor changes anything (or 1,000 steps).  Both
count the events taken; their run lengths agree (about 6 events per run at 3 RMs, 12 at 7).

Lean: ``tests/benchmarks/lean_twophase.py``'s `walk`, the obvious tight loop (a state of small
ints and bit masks mutated in place, the enabled actions that change something listed
directly, ``random.Random(seed).choice``).  It lists the actions in the order
`handwritten_twophase.successors` yields them, so it takes the same runs as the walk above
(the same event count), only cheaper.

Each measurement is repeated (`--repeat`, alternating assay and hand-written so that load
changes hit both) and the median is reported, with the ratio hand-written / assay.

    python tests/benchmarks/bench_sim_throughput.py                  # 3 and 7 RMs, ~1 min
    python tests/benchmarks/bench_sim_throughput.py --runs 2000 --repeat 1   # smoke test
    python tests/benchmarks/bench_sim_throughput.py --clock cpu      # CPU time, not wall
    python tests/benchmarks/bench_sim_throughput.py --profile 7      # cProfile one campaign
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from handwritten_twophase import consistent, initial, successors  # noqa: E402
from lean_twophase import walk as lean_walk  # noqa: E402

from assay.simulator import Options, campaign  # noqa: E402

SPEC = str(ROOT / "specs" / "tla_twophase.py")


def handwritten_walk(n: int, runs: int, steps: int = 1000) -> int:
    """`runs` seeded random walks of TwoPhase with `n` RMs; the events taken."""
    all_rms = frozenset(range(n))
    prepared = tuple(("Prepared", r) for r in range(n))
    events = 0
    for i in range(runs):
        rng = random.Random(i)
        state = initial(n)
        for _ in range(steps):
            nxt = [s for s in successors(state, n, all_rms, prepared) if s != state]
            if not nxt:
                break
            state = nxt[rng.randrange(len(nxt))]
            events += 1
            if not consistent(state):
                break
    return events


# the clock every measurement reads: wall time, or with `--clock cpu` this process's CPU time
# (steadier on a shared, loaded machine: time spent waiting for a core is not counted)
clock = time.perf_counter


def assay_campaign(n: int, runs: int) -> tuple[int, float, int]:
    t = clock()
    c = campaign(SPEC, None, {"rm_count": str(n)}, seed=0, runs=runs,
                 opts=Options(steps=1000), jobs=1)
    seconds = c.seconds if clock is time.perf_counter else clock() - t
    assert not c.failures
    return c.events, seconds, c.distinct_states


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rms", type=int, nargs="*", default=[3, 7])
    ap.add_argument("--runs", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--profile", type=int, metavar="RMS",
                    help="profile one assay campaign with this many RMs instead")
    a = ap.parse_args()
    global clock
    clock = time.process_time if a.clock == "cpu" else time.perf_counter
    if a.profile:
        import cProfile
        import pstats

        cProfile.runctx("assay_campaign(a.profile, a.runs)", globals(), locals(),
                        "/tmp/bench_sim_throughput.prof")
        pstats.Stats("/tmp/bench_sim_throughput.prof").sort_stats("tottime").print_stats(20)
        return
    print(f"load average before: {os.getloadavg()}; runs per measurement: {a.runs:,}; "
          f"clock: {a.clock}")
    print("| RMs | assay events | assay s | assay ev/s | distinct states | hand-written events "
          "| hand-written s | hand-written ev/s | lean events | lean s | lean ev/s "
          "| hand-written / assay | lean / assay |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in a.rms:
        ours, theirs, leans = [], [], []
        events = hw_events = lean_events = distinct = 0
        for _ in range(a.repeat):
            # each starts with no garbage left by the other (the campaign's per-state memo
            # is garbage after it, and collecting it used to land in the hand-written walk)
            gc.collect()
            events, seconds, distinct = assay_campaign(n, a.runs)
            ours.append(seconds)
            gc.collect()
            t = clock()
            hw_events = handwritten_walk(n, a.runs)
            theirs.append(clock() - t)
            gc.collect()
            t = clock()
            lean_events = lean_walk(n, a.runs)
            leans.append(clock() - t)
        s, hs, ls = statistics.median(ours), statistics.median(theirs), statistics.median(leans)
        rate, hrate, lrate = events / s, hw_events / hs, lean_events / ls
        print(f"| {n} | {events:,} | {s:.2f} | {rate:,.0f} | {distinct:,} | {hw_events:,} | "
              f"{hs:.2f} | {hrate:,.0f} | {lean_events:,} | {ls:.2f} | {lrate:,.0f} | "
              f"{hrate / rate:.2f} | {lrate / rate:.2f} |", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
