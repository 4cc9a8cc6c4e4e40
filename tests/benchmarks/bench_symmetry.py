"""Benchmark: symmetry reduction on TwoPhase (specs/tla_twophase.py), with and without it.

What it measures
    For each size, `check()` of `tla_twophase.system(N, symmetric=True)` in a fresh
    subprocess: with symmetry (one state per orbit of the RMs' permutations) and, up to
    ``--full-max`` RMs, with `symmetry=False` (every state).  Printed: states (orbits with
    symmetry), transitions, seconds of `check()` (the search, kernel construction included,
    not the interpreter's start), and the child's peak resident memory (`ru_maxrss`).

Run from the repository root:

    python tests/benchmarks/bench_symmetry.py                       # 5, 7, 9 RMs
    python tests/benchmarks/bench_symmetry.py --sizes 12,15,20 --full-max 0
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {specs!r})
import tla_twophase
from assay.checker import check
t = time.perf_counter()
r = check(tla_twophase.system({n}, symmetric=True), symmetry={sym})
s = time.perf_counter() - t
print(json.dumps({{"states": r.states, "transitions": r.transitions, "seconds": s,
                  "verdict": r.verdict,
                  "mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run(n: int, sym: bool, timeout: float) -> dict | None:
    code = CHILD.format(root=str(ROOT), specs=str(ROOT / "specs"), n=n, sym=sym)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="5,7,9")
    ap.add_argument("--full-max", type=int, default=9,
                    help="run without symmetry only up to this many RMs")
    ap.add_argument("--timeout", type=float, default=600.0)
    a = ap.parse_args()
    print("| RMs | symmetry | states (orbits) | transitions | seconds | peak MiB |")
    print("|----:|:--------:|----------------:|------------:|--------:|---------:|")
    for n in (int(x) for x in a.sizes.split(",")):
        for sym in (True, False):
            if not sym and n > a.full_max:
                continue
            r = run(n, sym, a.timeout)
            if r is None:
                print(f"| {n} | {'on' if sym else 'off'} | — | — | > {a.timeout:.0f} | — |",
                      flush=True)
                continue
            print(f"| {n} | {'on' if sym else 'off'} | {r['states']:,} | "
                  f"{r['transitions']:,} | {r['seconds']:.2f} | {r['mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
