"""Whole-state specs: what a state's actions cost in the kernel against the spec's own code
alone (issue 11 item 3: "where PaxosCommit's 250 us a state goes").

States are sampled by a BFS through `Kernel.successors` (the first 2,000 skipped: the
determinism sampler's full phase); then, per state, in one process, alternating, the minimum
of `--repeat` runs (process CPU time):

* kernel: `Kernel._action_outcomes` of each state on a fresh kernel (guards, domains, each
  enabled action run, type-checked and interned; the sampler's one-in-64 second runs on);
* spec alone: each action's domain and guard, and its body on an enabled argument, called on
  plain objects of the component class (no context, no check, no interning): the floor no
  kernel change can go below.

With `--calls`, the Python-visible calls per state of each (cProfile's count: the same in
every run, whatever the load).

    python tests/benchmarks/bench_whole_state_parts.py paxos 3000
    python tests/benchmarks/bench_whole_state_parts.py lamport 3000 --calls
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from assay.kernel.kernel import Kernel  # noqa: E402
from assay.model.load import load_module  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec", choices=["paxos", "lamport"])
    p.add_argument("states", type=int, nargs="?", default=3000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--calls", action="store_true")
    args = p.parse_args(argv)
    if args.spec == "paxos":
        system = load_module(ROOT / "specs/tla_paxos_commit.py").system(1, 3, 3)
    else:
        system = load_module(ROOT / "specs/tla_lamport_mutex.py").system(3, 4)
    gc.disable()
    k = Kernel(system)
    inst = k.instances[0]
    start = k.initial_states()[0][0]
    seen, frontier, order = {start}, [start], []
    while frontier and len(order) < args.states + 2000:
        nxt = []
        for x in frontier:
            order.append(x)
            for _, t, _ in k.successors(x)[0]:
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    vals = [inst.table.values[x[0][0]] for x in order[2000:2000 + args.states]]
    n = len(vals)

    def kernel() -> float:
        k2 = Kernel(system)
        i2 = k2.instances[0]
        k2._sampler.first = 0                       # past the full phase: one in 64
        lids = [i2.table.intern(v) for v in vals]
        t = time.process_time()
        for lid in lids:
            k2._action_outcomes(i2, lid)
        return time.process_time() - t

    def spec_alone() -> float:
        cls, fields, acts = inst.info.cls, inst.runner.fields, inst.info.actions
        t = time.process_time()
        for v in vals:
            for act in acts:
                o = object.__new__(cls)
                o.__dict__.update(zip(fields, v))
                dom = act.over(o) if callable(act.over) else [None]
                for a in dom:
                    if act.when is None or (act.when(o, a) if act.over else act.when(o)):
                        o2 = object.__new__(cls)
                        o2.__dict__.update(zip(fields, v))
                        act.fn(o2, a) if act.over else act.fn(o2)
                        tuple(map(o2.__dict__.__getitem__, fields))
        return time.process_time() - t

    ks, ss = [], []
    for _ in range(args.repeat):
        ks.append(kernel())
        ss.append(spec_alone())
    kt, st = min(ks), min(ss)
    print(f"{args.spec}: {n} states; kernel {1e6 * kt / n:.1f} us/state, spec alone "
          f"{1e6 * st / n:.1f} us/state, ratio {kt / st:.2f}")
    if args.calls:
        for name, fn in (("kernel", kernel), ("spec alone", spec_alone)):
            prof = cProfile.Profile()
            prof.enable()
            fn()
            prof.disable()
            calls = pstats.Stats(prof).total_calls       # type: ignore[attr-defined]
            print(f"{args.spec}: {name} {calls / n:.0f} calls/state")


if __name__ == "__main__":
    main()
