"""Composites cost nothing at check time beyond their properties' scoped view: a shipped spec
checked as it is, and the same system used whole as composite `part` of an outer system
(`outer.add("part", system)`), explore the same states; the difference is the `ScopedWorld`
each of the composite's property, constraint and terminal evaluations goes through.

    PYTHONPATH=. python tests/benchmarks/bench_composites.py [--repeat 3]

Prints, per spec, the states and the best of `--repeat` check times of each form (alternated,
in one process), and their ratio."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import assay
from assay import System
from assay.model.load import load_module

ROOT = Path(__file__).resolve().parent.parent.parent
SPECS = ["paxos.py", "two_phase_commit.py", "bank_transfer.py"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for spec in SPECS:
        fn = load_module(ROOT / "specs" / spec).system

        def outer(fn=fn) -> System:
            inner = fn()
            s = System("outer", network=inner.network, fairness=inner.fairness)
            s.add("part", fn)
            return s

        best = {"flat": float("inf"), "composite": float("inf")}
        states = {}
        for _ in range(args.repeat):
            for form, build in (("flat", fn), ("composite", outer)):
                system = build()
                t0 = time.perf_counter()
                r = assay.check(system)
                best[form] = min(best[form], time.perf_counter() - t0)
                states[form] = r.states
        assert states["flat"] == states["composite"], states
        print(f"{spec:24} {states['flat']:>8,} states  flat {best['flat']:.2f} s  "
              f"composite {best['composite']:.2f} s  ratio {best['composite'] / best['flat']:.2f}")


if __name__ == "__main__":
    main()
