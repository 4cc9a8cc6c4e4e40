"""What `check --checkpoint` costs in each search mode, and what a resume saves.

For each mode: the check without --checkpoint, the same with --checkpoint at the default
interval (300 s: none is saved in these runs, so this is the cost of the search that can be
saved — the level-by-level search of parallel.py for BFS, DFS's steps in event-key order),
with a checkpoint after every level (BFS) or every 1,024 states (DFS) —
`--checkpoint-every 0`, the worst case —, and a resume
from a checkpoint saved half-way (the search stopped at half its depth, or half its states).
For a spec with liveness properties, the liveness phase (the graph rebuilt from the initial
states, then the lasso search) is timed apart: a checkpoint saves the safety search only, and
a resumed check rebuilds the graph as a check without --checkpoint does.

    PYTHONPATH=$PWD python tests/benchmarks/bench_checkpoint.py
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from assay.checker import check
from assay.checker.liveness import build_graph, check_liveness, fair_tasks
from assay.checker.search import Search
from assay.kernel import Kernel
from assay.model.load import build

REPO = Path(__file__).resolve().parents[2]


def timed(spec: str, params: dict[str, str], **kwargs: Any) -> tuple[float, Any]:
    path = str(REPO / spec)
    system, name, typed = build(path, None, params)
    t = time.perf_counter()
    r = check(Kernel(system), spec=path, system_name=name, params=typed, **kwargs)
    return time.perf_counter() - t, r


def mode(label: str, spec: str, params: dict[str, str], half: dict[str, int],
         **kwargs: Any) -> None:
    ck = Path(tempfile.mkdtemp())
    try:
        plain_s, plain = timed(spec, params, **kwargs)
        saved_s, saved = timed(spec, params, checkpoint=str(ck / "a"), checkpoint_every=0,
                               **kwargs)
        # the default --checkpoint-every 300: no checkpoint in a run this short, so what the
        # search that can be saved costs by itself
        rare_s, rare = timed(spec, params, checkpoint=str(ck / "c"), **kwargs)
        assert (rare.states, rare.transitions) == (saved.states, saved.transitions)
        timed(spec, params, checkpoint=str(ck / "b"), checkpoint_every=0, **half, **kwargs)
        resumed_s, resumed = timed(spec, params, checkpoint=str(ck / "b"), checkpoint_every=0,
                                   **kwargs)
        assert (saved.states, saved.transitions, saved.verdict) == \
            (resumed.states, resumed.transitions, resumed.verdict)
        assert plain.states == saved.states or plain.verdict == "violation"
        print(f"{label}: {saved.states:,} states ({saved.verdict}); without --checkpoint "
              f"{plain_s:.2f} s; --checkpoint (every 300 s, none saved) {rare_s:.2f} s "
              f"({rare_s / plain_s:.2f}x); --checkpoint-every 0 {saved_s:.2f} s "
              f"({saved_s / plain_s:.2f}x); resumed from {half} {resumed_s:.2f} s "
              f"({resumed_s / saved_s:.2f}x of the uninterrupted checkpointed run)")
    finally:
        shutil.rmtree(ck, ignore_errors=True)


def liveness_phase(spec: str, params: dict[str, str]) -> None:
    system, _, _ = build(str(REPO / spec), None, params)
    total_s, r = timed(spec, params)
    k = Kernel(system)
    t = time.perf_counter()
    graph = build_graph(k, Search())
    graph_s = time.perf_counter() - t
    tasks = fair_tasks(k, graph)
    for p in system.liveness:
        check_liveness(k, graph, p, tasks)
    live_s = time.perf_counter() - t
    print(f"liveness phase of {spec} {params}: {len(graph.states):,} states; graph rebuilt in "
          f"{graph_s:.2f} s, with the lasso search {live_s:.2f} s, of {total_s:.2f} s for the "
          f"whole check ({live_s / total_s:.0%}): not saved by a checkpoint")


def main() -> None:
    mode("BFS, symmetry (sym_lock, 6 clients)", "tests/fixtures/checkpoint/sym_lock.py",
         {"clients": "6"}, {"max_depth": 30})
    mode("BFS, --keep-going (sym_lock bug, 4 clients, --no-symmetry)",
         "tests/fixtures/checkpoint/sym_lock.py", {"clients": "4", "bug": "true"},
         {"max_depth": 20}, keep_going=True, symmetry=False)
    mode("BFS, liveness (lock_server, 5 clients)", "specs/lock_server.py", {"clients": "5"},
         {"max_depth": 12})
    mode("DFS (sym_lock, 4 clients, --no-symmetry)", "tests/fixtures/checkpoint/sym_lock.py",
         {"clients": "4"}, {"max_states": 8500}, strategy="dfs", symmetry=False)
    liveness_phase("specs/lock_server.py", {"clients": "5"})


if __name__ == "__main__":
    main()
