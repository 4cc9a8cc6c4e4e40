"""Where `assay check`'s memory per state goes: the search's visited map and the kernel's
tables, measured part by part (for issue 11's "memory per state").

It builds the kernel of a spec and runs the loop of `assay/checker/bfs.py` (visited map
state -> (parent, event), `Kernel.successors`, `Kernel.property_violations` on each new state;
no bounds, no counterexample), then adds up `sys.getsizeof` of what stays alive, each object
once (shared objects count where first met, in the order printed):

* the visited map: the dict itself, the state tuples `(locals, net)`, the `locals` tuples,
  the network values, the `(parent, event)` tuples and the ints too large to be cached;
* per component class: the interned local states (`_LocalTable.values`, deep), the
  interning dict (`ids`, the dict alone), the memo of action outcomes (`amemo`, deep) and
  the state views (`views`, deep);
* the property memo (verdicts by tuple of local ids), deep.

Peak RSS is printed for comparison (it also holds the interpreter, the imports and the
allocator's slack).

    python tests/benchmarks/memory_per_state.py specs/tla_twophase.py rm_count=8
    python tests/benchmarks/memory_per_state.py specs/tla_lamport_mutex.py n=3 max_clock=4
"""
from __future__ import annotations

import gc
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1].parent
sys.path.insert(0, str(ROOT))

from assay.kernel.kernel import Kernel  # noqa: E402
from assay.model.load import build  # noqa: E402


def explore(kernel: Kernel) -> dict[Any, Any]:
    """The visited map of a breadth-first search, built as bfs.py builds it."""
    visited: dict[Any, Any] = {}
    level = []
    for s, _ in kernel.initial_states():
        if s not in visited:
            visited[s] = None
            kernel.property_violations(s)
            level.append(s)
    while level:
        nxt = []
        for s in level:
            steps, _ = kernel.successors(s)
            for ev, t, _ in steps:
                n = len(visited)
                visited.setdefault(t, (s, ev))
                if len(visited) > n:
                    kernel.property_violations(t)
                    nxt.append(t)
        level = nxt
    return visited


class Sizer:
    """`sys.getsizeof` summed over objects not met before (small ints and singletons are
    shared by the interpreter and never counted)."""

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def one(self, o: Any) -> int:
        if o is None or o is True or o is False or id(o) in self.seen \
                or type(o) is int and -5 <= o <= 256:
            return 0
        self.seen.add(id(o))
        return sys.getsizeof(o)

    def deep(self, root: Any) -> int:
        total = 0
        stack = [root]
        while stack:
            o = stack.pop()
            size = self.one(o)
            if not size:
                continue
            total += size
            t = type(o)
            if t in (tuple, list, frozenset, set):
                stack.extend(o)
            elif t is dict:
                stack.extend(o.keys())
                stack.extend(o.values())
            elif hasattr(o, "_values") and hasattr(o, "with_sender"):     # a Message
                stack.append(o._values)
            elif hasattr(t, "_fields") and hasattr(t, "__slots__"):        # a StateView
                for f in t.__slots__:
                    stack.append(getattr(o, f, None))
        return total


def main(argv: list[str]) -> None:
    spec, *pairs = argv
    params = dict(p.split("=", 1) for p in pairs)
    system, _, _ = build(spec, params=params)
    kernel = Kernel(system)
    gc.disable()                            # as bfs.py: the states hold no cycles
    start = time.perf_counter()
    visited = explore(kernel)
    seconds = time.perf_counter() - start
    n = len(visited)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{spec} {params}: {n:,} states in {seconds:.1f} s, peak RSS {peak:,.0f} MiB "
          f"({peak * 1024 * 1024 / n:,.0f} B/state)")
    sizer = Sizer()
    rows: list[tuple[str, int]] = []
    parts = dict.fromkeys(("state tuples", "locals tuples", "network values",
                           "(parent, event) tuples", "large ints (ids, events)"), 0)
    for s, v in visited.items():
        parts["state tuples"] += sizer.one(s)
        parts["locals tuples"] += sizer.one(s[0])
        parts["large ints (ids, events)"] += sum(sizer.one(x) for x in s[0])
        parts["network values"] += sizer.deep(s[1])
        if v is not None:
            parts["(parent, event) tuples"] += sizer.one(v)
            parts["large ints (ids, events)"] += sizer.one(v[1])
        for extra in s[2:]:
            parts["network values"] += sizer.deep(extra)
    rows.append(("visited: the dict", sys.getsizeof(visited)))
    rows += [(f"visited: {k}", b) for k, b in parts.items()]
    tables = {id(inst.table): inst for inst in kernel.instances}
    for inst in tables.values():
        cls = inst.cls.__name__
        rows.append((f"{cls}: local states (deep)", sizer.deep(inst.table.values)))
        rows.append((f"{cls}: interning dict", sizer.one(inst.table.ids)))
    for inst in kernel.instances:           # memos are per instance
        rows.append((f"{inst.cls.__name__}: action memo (deep)", sizer.deep(inst.amemo)))
        rows.append((f"{inst.cls.__name__}: state views (deep)", sizer.deep(inst.views)))
    rows.append(("property memo (deep)", sizer.deep(kernel._property_memo)))
    merged: dict[str, int] = {}
    for name, b in rows:
        merged[name] = merged.get(name, 0) + b
    print(f"  {'part':44s} {'MiB':>8s} {'B/state':>8s}")
    for name, b in merged.items():
        if b:
            print(f"  {name:44s} {b / 2**20:8.1f} {b / n:8.0f}")
    total = sum(merged.values())
    print(f"  {'total counted':44s} {total / 2**20:8.1f} {total / n:8.0f}")
    nets = {id(s[1]) for s in visited}
    print(f"  network objects: {len(nets):,} for {len({s[1] for s in visited}):,} distinct values")


if __name__ == "__main__":
    main(sys.argv[1:] or ["specs/tla_twophase.py", "rm_count=5"])
