"""Benchmark: liveness under symmetry reduction, reduced against unreduced, in one run.

What it measures
    For each case, `check()` in a fresh subprocess with symmetry (the safety search and the
    liveness properties on the orbits: `assay/checker/symmetric_liveness.py`) and with
    `symmetry=False` (every state, the liveness graph of every state).  Printed: states
    (orbits with symmetry), the verdict, each liveness property's verdict and how it was
    decided, seconds of `check()` (kernel construction included, not the interpreter's start),
    and the child's peak resident memory (`ru_maxrss`).

    Cases: TwoPhase (specs/tla_twophase.py, its RMs symmetric) with ◇ "every RM has
    committed or aborted" under weak fairness (holds); the lock server of
    tests/fixtures/liveness/symmetric_lock.py, FIFO (holds) and LIFO (a client starves: a
    lasso).

Run from the repository root:

    python tests/benchmarks/bench_symmetry_liveness.py                    # the default cases
    python tests/benchmarks/bench_symmetry_liveness.py --twophase 5,6 --lock 4,5
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
from pathlib import Path
sys.path.insert(0, {root!r}); sys.path.insert(0, {specs!r})
from assay.checker import check
from assay.model.load import build
kind, n, sym = {kind!r}, {n}, {sym}
if kind == "twophase":
    import tla_twophase
    s = tla_twophase.system(n, symmetric=True)

    @s.eventually
    def all_decided(g):
        return all(rm.rm_state in (tla_twophase.RM.COMMITTED, tla_twophase.RM.ABORTED)
                   for rm in g.instances(tla_twophase.ResourceManager))
    fairness = "weak"
else:
    order = kind.split("-")[1]
    s = build(Path({lock!r}), None, {{"clients": str(n), "order": order}})[0]
    fairness = None
t = time.perf_counter()
r = check(s, symmetry=sym, fairness=fairness)
secs = time.perf_counter() - t
print(json.dumps({{"states": r.states, "seconds": secs, "verdict": r.verdict,
                  "liveness": r.liveness,
                  "how": (r.symmetry or {{}}).get("liveness"),
                  "mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run(kind: str, n: int, sym: bool, timeout: float) -> dict | None:
    code = CHILD.format(root=str(ROOT), specs=str(ROOT / "specs"), kind=kind, n=n, sym=sym,
                        lock=str(ROOT / "tests" / "fixtures" / "liveness" /
                                 "symmetric_lock.py"))
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--twophase", default="5,6")
    ap.add_argument("--lock", default="4,5")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    cases = [("twophase", int(n)) for n in a.twophase.split(",") if n] + [
        (f"lock-{order}", int(n)) for n in a.lock.split(",") if n for order in ("fifo", "lifo")]
    print(f"{'case':14} {'n':>3} {'orbits':>8} {'states':>9} {'reduced s':>10} "
          f"{'full s':>8} {'ratio':>6} {'MiB red/full':>13}  verdict")
    for kind, n in cases:
        red = run(kind, n, True, a.timeout)
        full = run(kind, n, False, a.timeout)
        if red is None or full is None:
            print(f"{kind:14} {n:>3} timed out")
            continue
        assert red["verdict"] == full["verdict"] and red["liveness"] == full["liveness"], \
            (red, full)
        print(f"{kind:14} {n:>3} {red['states']:>8,} {full['states']:>9,} "
              f"{red['seconds']:>10.2f} {full['seconds']:>8.2f} "
              f"{full['seconds'] / red['seconds']:>5.1f}x "
              f"{red['mib']:>6.0f}/{full['mib']:<6.0f}  {red['verdict']} "
              f"{json.dumps(red['how'])}", flush=True)


if __name__ == "__main__":
    main()
