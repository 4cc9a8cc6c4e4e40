"""Whole-state specs: how often an action instance's guard, or its body, reads the same field
values as an earlier run of it (issue 11 item 3, ws10) — the hit rate a memo of guard verdicts
or step outcomes keyed by the values read (a trie read by read) would have, measured before
building one.

Each of the first N states of a BFS runs every action's domain, then for each argument its
guard and (where enabled) its body on an object whose fields note each read (field, value):
a hit is a (action, argument, reads in order) seen before.  Reads are at field level (a
field's whole value); the values are compared as a memo would, by type and equality.

    python tests/benchmarks/whole_state_read_hits.py specs/tla_lamport_mutex.py 3,4 20000
    python tests/benchmarks/whole_state_read_hits.py specs/tla_paxos_commit.py 1,3,3 10000
"""
from __future__ import annotations

import sys
from collections import defaultdict
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from assay.kernel.exec import Context  # noqa: E402
from assay.kernel.kernel import Kernel  # noqa: E402
from assay.model.load import load_module  # noqa: E402


def main(spec: str, params: tuple[int, ...], n: int) -> None:
    k = Kernel(load_module(spec).system(*params))
    inst = k.instances[0]
    info = inst.info
    fields, names = info.fields, set(info.fields)
    reads: list[tuple[str, object]] = []

    class Tracked(info.cls):                            # type: ignore[misc, name-defined]
        def __getattribute__(self, name: str) -> object:
            v = object.__getattribute__(self, name)
            if name in names:
                reads.append((name, v))
            return v

    def live(values: tuple) -> object:
        o = object.__new__(Tracked)
        o.__dict__.update(zip(fields, values))
        o.__dict__["__assay_ctx__"] = Context(inst.name, inst.runner.wirings)
        o.__dict__["__assay_ctx__"].handler = "?"
        return o

    start = k.initial_states()[0][0]
    seen, frontier, order = {start}, [start], []
    while frontier and len(order) < n:
        nxt = []
        for x in frontier:
            order.append(x)
            for _, t, _ in k.successors(x)[0]:
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    known: set = set()
    for x in order[:n]:
        values = inst.table.values[x[0][0]]
        for act in info.actions:
            dom = act.over
            args = [(False, None)] if dom is None else \
                [(True, a) for a in (dom(live(values)) if callable(dom) else dom)]
            for has, a in args:
                s = stats[act.name]
                reads.clear()
                ok = act.when is None or (act.when(live(values), a) if has
                                          else act.when(live(values)))
                key = ("guard", act.name, a, tuple((f, type(v), v) for f, v in reads))
                s[0] += 1
                s[1] += key in known
                known.add(key)
                if ok:
                    reads.clear()
                    with suppress(Exception):   # (a step that sends or chooses: its reads)
                        act.fn(live(values), a) if has else act.fn(live(values))
                    key = ("body", act.name, a, tuple((f, type(v), v) for f, v in reads))
                    s[2] += 1
                    s[3] += key in known
                    known.add(key)
    total = [0, 0, 0, 0]
    print(f"{spec} {params}, first {len(order[:n])} states of a BFS; hits / runs")
    for name, s in stats.items():
        print(f"  {name:20s} guard {s[1]}/{s[0]} ({s[1] / max(s[0], 1):.0%})  "
              f"body {s[3]}/{s[2]} ({s[3] / max(s[2], 1):.0%})")
        total = [a + b for a, b in zip(total, s)]
    print(f"  all: guards {total[1] / total[0]:.1%} of {total[0]:,}; "
          f"bodies {total[3] / max(total[2], 1):.1%} of {total[2]:,}")


if __name__ == "__main__":
    main(sys.argv[1], tuple(int(v) for v in sys.argv[2].split(",")), int(sys.argv[3]))
