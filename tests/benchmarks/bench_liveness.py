"""Benchmark: the cost of checking liveness, against the safety-only check of the same spec.

What it measures
    For each case (a spec, its parameters and a fairness), `check()` twice on freshly built
    systems in this process: once as written (safety, then liveness on the explored graph) and
    once with the liveness properties removed (`system.liveness = []`: the safety search
    alone).  Each is the median of ``--repeat`` runs; the ratio is liveness / safety, so the
    machine's speed cancels out.  Also printed: states, transitions, the liveness properties
    and their verdicts.

Run from the repository root:

    python tests/benchmarks/bench_liveness.py             # ~1 minute on 2 CPUs
    python tests/benchmarks/bench_liveness.py --repeat 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from assay.checker import check  # noqa: E402
from assay.model.load import build  # noqa: E402

CASES = [
    ("dining_philosophers.py", {"n": "8"}, "strong"),
    ("dining_philosophers.py", {"n": "8"}, "weak"),
    ("lock_server.py", {"clients": "5"}, "weak"),
    ("ring_election.py", {"nodes": "9"}, "weak"),
]


def timed(spec: str, params: dict[str, str], fairness: str, liveness: bool) -> tuple[float, object]:
    system, name, typed = build(ROOT / "specs" / spec, None, params)
    if not liveness:
        system.liveness = []
    t = time.perf_counter()
    r = check(system, fairness=fairness)
    return time.perf_counter() - t, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'case':<42} {'states':>9} {'transitions':>12} {'safety s':>9} "
          f"{'+liveness s':>11} {'ratio':>6}  verdicts")
    for spec, params, fairness in CASES:
        safe, live = [], []
        result = None
        for _ in range(args.repeat):
            safe.append(timed(spec, params, fairness, False)[0])
            t, result = timed(spec, params, fairness, True)
            live.append(t)
        s, lv = statistics.median(safe), statistics.median(live)
        ptxt = ",".join(f"{k}={v}" for k, v in params.items())
        verdicts = sorted(set(result.liveness.values()))  # type: ignore[attr-defined]
        print(f"{spec + ' ' + ptxt + ' ' + fairness:<42} {result.states:>9,} "  # type: ignore
              f"{result.transitions:>12,} {s:>9.3f} {lv:>11.3f} {lv / s:>6.1f}  "  # type: ignore
              f"{', '.join(verdicts)}")


if __name__ == "__main__":
    main()
