"""A lean hand-written seeded random walk of TwoPhase: the obvious tight loop a Python
programmer writes for it, as a baseline for `assay simulate`'s events per second.

Unlike `handwritten_twophase.py` (a state of tuples and frozensets, every successor built,
then the ones that change something kept), the state here is a list of small ints and bit
masks, mutated in place, and the enabled actions that change something are listed directly:

    rm[r]      WORKING, PREPARED, COMMITTED or ABORTED
    tm         INIT, COMMITTED or ABORTED
    tm_prep    bit r: the TM has received Prepared from RM r
    sent       bit r: Prepared(r) was sent; COMMIT_SENT, ABORT_SENT: Commit, Abort were sent

Each run starts from the initial state with its own `random.Random(seed)`, picks one enabled
action uniformly (`rng.choice`), checks TCConsistent, and stops when nothing changes anything
(or after `steps` events).  It counts events only (no distinct states).

    python tests/benchmarks/lean_twophase.py 7 20000
"""
from __future__ import annotations

import random
import sys
import time

WORKING, PREPARED, COMMITTED, ABORTED = range(4)
INIT, TM_COMMITTED, TM_ABORTED = range(3)
# actions: (kind, r)
TM_RCV_PREPARED, TM_COMMIT, TM_ABORT, RM_PREPARE, RM_ABORT, RM_RCV_COMMIT, RM_RCV_ABORT = \
    range(7)


def walk(n: int, runs: int, steps: int = 1000, first_seed: int = 0) -> int:
    """`runs` seeded random walks of TwoPhase with `n` RMs; the events taken."""
    all_rms = (1 << n) - 1
    commit_sent, abort_sent = 1 << n, 1 << (n + 1)
    rms = range(n)
    events = 0
    for seed in range(first_seed, first_seed + runs):
        choice = random.Random(seed).choice
        rm = [WORKING] * n
        tm = INIT
        tm_prep = 0
        sent = 0
        for _ in range(steps):
            enabled = []
            if tm == INIT:
                for r in rms:
                    if sent >> r & 1 and not tm_prep >> r & 1:
                        enabled.append((TM_RCV_PREPARED, r))
                if tm_prep == all_rms:
                    enabled.append((TM_COMMIT, 0))
                enabled.append((TM_ABORT, 0))
            for r in rms:
                s = rm[r]
                if s == WORKING:
                    enabled.append((RM_PREPARE, r))
                    enabled.append((RM_ABORT, r))
                if sent & commit_sent and s != COMMITTED:
                    enabled.append((RM_RCV_COMMIT, r))
                if sent & abort_sent and s != ABORTED:
                    enabled.append((RM_RCV_ABORT, r))
            if not enabled:
                break
            kind, r = choice(enabled)
            if kind == TM_RCV_PREPARED:
                tm_prep |= 1 << r
            elif kind == TM_COMMIT:
                tm = TM_COMMITTED
                sent |= commit_sent
            elif kind == TM_ABORT:
                tm = TM_ABORTED
                sent |= abort_sent
            elif kind == RM_PREPARE:
                rm[r] = PREPARED
                sent |= 1 << r
            elif kind in (RM_ABORT, RM_RCV_ABORT):
                rm[r] = ABORTED
            else:
                rm[r] = COMMITTED
            events += 1
            if COMMITTED in rm and ABORTED in rm:      # TCConsistent
                break
    return events


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    t = time.perf_counter()
    ev = walk(n, runs)
    s = time.perf_counter() - t
    print(f"{n} RMs, {runs:,} runs: {ev:,} events in {s:.2f} s, {ev / s:,.0f} events/s")
