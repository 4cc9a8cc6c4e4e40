"""Whole-state specs: instructions per state of the kernel's part, counted by valgrind — a
figure the load of a shared machine does not move (issue 11 item 3).

`bench_whole_state_parts.py` times `Kernel._action_outcomes` per state; on this machine (two
cores, often eight processes) its CPU times move by 2x from one minute to the next.  Here the
same work is counted in machine instructions (`valgrind --tool=callgrind`, `Collected`): the
states (sampled by a BFS past its first 2,000, as there) are saved once, then a child loads
them into a fresh kernel and runs `_action_outcomes` on each inside `functools.reduce`, the
only part valgrind counts (`--toggle-collect=functools_reduce`).  Variants switch one piece
off to give its share: `--no-type-check` (the generated check of each new state),
`--no-determinism` (the one-in-64 second runs).  Slow: about 50x a plain run (a minute or
two for 300 LamportMutex states at load 10).  Counts repeat to within 0.1 % (PYTHONHASHSEED
is fixed); compare trees by running each tree's copy of this script.

    python tests/benchmarks/bench_whole_state_instr.py lamport 300
    python tests/benchmarks/bench_whole_state_instr.py paxos 150 --no-type-check
"""
from __future__ import annotations

import argparse
import functools
import gc
import os
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from assay.kernel.kernel import Kernel  # noqa: E402
from assay.model.load import load_module  # noqa: E402

SPECS = {"lamport": ("specs/tla_lamport_mutex.py", (3, 4)),
         "paxos": ("specs/tla_paxos_commit.py", (1, 3, 3))}


def _system(spec: str) -> tuple[object, object]:
    path, params = SPECS[spec]
    mod = load_module(ROOT / path)
    return mod, mod.system(*params)


def _save(spec: str, n: int, out: Path) -> None:
    """The local states of `n` states past a BFS's first 2,000, pickled to `out`."""
    _, system = _system(spec)
    k = Kernel(system)                                      # type: ignore[arg-type]
    inst = k.instances[0]
    start = k.initial_states()[0][0]
    seen, frontier, order = {start}, [start], []
    while frontier and len(order) < n + 2000:
        nxt = []
        for x in frontier:
            order.append(x)
            for _, t, _ in k.successors(x)[0]:
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    with open(out, "wb") as f:
        pickle.dump([inst.table.values[x[0][0]] for x in order[2000:2000 + n]], f)


def _child(spec: str, saved: Path, variant: str) -> None:
    """Load the saved states into a fresh kernel, then run each state's actions (counted)."""
    mod, system = _system(spec)

    class Loader(pickle.Unpickler):       # the spec's classes, whatever its module's name
        def find_class(self, module: str, name: str) -> object:
            if module.startswith("assay_spec_"):
                return getattr(mod, name)
            return super().find_class(module, name)

    gc.disable()
    with open(saved, "rb") as f:
        vals = Loader(f).load()
    k = Kernel(system)                                      # type: ignore[arg-type]
    inst = k.instances[0]
    k._sampler.first = 0                    # past the full phase: one in 64
    if variant == "no-determinism":
        k._sampler.every = 10 ** 9
    if variant == "no-type-check":
        inst.runner.state_conforms = lambda new, old: True
    lids = [inst.table.intern(v) for v in vals]
    functools.reduce(lambda _, lid: k._action_outcomes(inst, lid), lids, None)


def _count(argv: list[str]) -> int:
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          "--toggle-collect=functools_reduce", sys.executable, *argv],
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        sys.exit(f"no instruction count from valgrind:\n{out.stderr[-2000:]}")
    return int(m.group(1))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec", choices=sorted(SPECS))
    p.add_argument("states", type=int, nargs="?", default=300)
    p.add_argument("--no-type-check", action="store_true")
    p.add_argument("--no-determinism", action="store_true")
    p.add_argument("--child", nargs=2, metavar=("SAVED", "VARIANT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.spec, Path(args.child[0]), args.child[1])
        return
    variant = "no-type-check" if args.no_type_check else \
        "no-determinism" if args.no_determinism else "full"
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "states.pkl"
        _save(args.spec, args.states, saved)
        me = [str(Path(__file__).resolve()), args.spec, str(args.states), "--child",
              str(saved)]
        ran = _count([*me, variant])
    print(f"{args.spec} ({variant}): {args.states} states; kernel "
          f"{ran / args.states:,.0f} instructions/state")


if __name__ == "__main__":
    main()
