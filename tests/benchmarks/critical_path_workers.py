"""The speed-up `check --workers N` would have on N idle cores, measured on a busy machine.

The parallel search's shards run here one after the other in one process
(`parallel.InProcess`), each round of each shard timed in CPU seconds (`time.process_time`,
which other processes' load does not inflate much, unlike wall time); on N free cores a
level takes as long as its slowest shard, so the critical path is the sum over rounds of the
slowest shard's time.  It leaves out what processes add (a fork per worker, the batches
through pipes: measured apart by bench_workers.py) and includes all the rest (encoding,
pickling, decoding, the choice of `shard_by`).  Compared with the one-process search
(`compact.py`, what one worker runs) in the same run.  The shards search packed states
(`parallel_compact.py`) where `check` would; `--full-shards`: `parallel.Shard` instead.
`--links[=N]`: their owner key adds the links (at most N) `CompactShard.choose_links` picks
on the first level of at least auto.STATES states; `--table`: and the owners of that level's
keys are chosen (`CompactShard.choose_table`).  An experiment: `check` uses neither
(RESULTS.md, rafw2).

    python tests/benchmarks/critical_path_workers.py specs/raft_election.py servers=4 \
        --links=1 --table

    python tests/benchmarks/critical_path_workers.py specs/tla_twophase.py rm_count=7
    python tests/benchmarks/critical_path_workers.py specs/tla_lamport_mutex.py n=3 max_clock=4
    python tests/benchmarks/critical_path_workers.py specs/tla_twophase.py rm_count=7 --full-shards
"""
from __future__ import annotations

import gc
import sys
import time
from typing import Any

from assay.checker import parallel_compact
from assay.checker.auto import STATES
from assay.checker.compact import compact_bfs
from assay.checker.parallel import InProcess, Options, parallel_bfs, shard_by
from assay.checker.parallel_compact import CompactShard, supported
from assay.checker.search import Search
from assay.kernel import Kernel
from assay.model.load import build


class Timed(InProcess):
    """InProcess with each round of each shard timed; `path` the sum of the slowest."""

    def __init__(self, kernel: Kernel, n: int, opts: Options) -> None:
        super().__init__(kernel, n, opts)
        self.path = 0.0
        self.total = 0.0

    def _round(self, calls: list[Any]) -> list[Any]:
        out, times = [], []
        for f in calls:
            t = time.process_time()
            out.append(f())
            times.append(time.process_time() - t)
        self.path += max(times)
        self.total += sum(times)
        return out

    def call(self, method: str, *args: Any) -> list[Any]:
        return self._round([lambda s=s: getattr(s, method)(*args) for s in self.shards])

    def expand(self, last: bool) -> list[dict[str, Any]]:
        got = self._round([lambda s=s: s.expand(last) for s in self.shards])
        self._batches = [blobs for _, blobs in got]
        return [rep for rep, _ in got]

    def merge(self, last: bool) -> list[dict[str, Any]]:
        b, self._batches = self._batches, []
        return self._round([lambda j=j, s=s: s.merge([b[i][j] for i in range(self.n)], last)
                            for j, s in enumerate(self.shards)])


def owner_links(system: Any, by: tuple[int, ...] | None, n: int, most: int, table: bool
                ) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """The links `CompactShard.choose_links` adds to the owner key (and with `table`, the
    owners `choose_table` chooses), on a frontier like the one `check --workers auto`
    hands over (the first level of at least auto.STATES states, found by a breadth-first
    search of this process)."""
    kernel = Kernel(system)
    level = [s for s, _ in kernel.initial_states()]
    seen = set(level)
    while level and len(level) < STATES:
        nxt = []
        for s in level:
            for _, t, _ in kernel.successors(s)[0]:
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        level = nxt
    shard = CompactShard(kernel, 0, n, Options(forked=True, shard_by=by, compact=True))
    xs = [shard.cb.pack(s) for s in level]
    saved, parallel_compact.MOST_LINKS = parallel_compact.MOST_LINKS, most
    try:
        links = shard.choose_links(by, xs)
    finally:
        parallel_compact.MOST_LINKS = saved
    return links, shard.choose_table(by, links, xs) if table else ()


def main() -> None:
    spec, *rest = sys.argv[1:]
    n = 2
    params = {}
    old = False
    with_links = table = False
    most = parallel_compact.MOST_LINKS
    for a in rest:
        if a == "--full-shards":
            old = True
        elif a.startswith("--links"):
            with_links = True
            if "=" in a:
                most = int(a.split("=", 1)[1])
        elif a == "--table":
            table = True
        elif a.startswith("--workers="):
            n = int(a.split("=", 1)[1])
        else:
            k, v = a.split("=", 1)
            params[k] = v
    system, _, _ = build(spec, None, params)
    gc.disable()
    t = time.process_time()
    one = compact_bfs(Kernel(system), Search())
    seq = time.process_time() - t
    kernel = Kernel(system)
    t = time.process_time()
    by = shard_by(kernel, n)
    compact = supported(kernel) and not old
    links: tuple[int, ...] = ()
    chosen: tuple[tuple[int, int], ...] = ()
    if compact and with_links:
        links, chosen = owner_links(system, by, n, most, table)
    choose = time.process_time() - t
    workers = Timed(kernel, n, Options(forked=True, shard_by=by, compact=compact,
                                       shard_links=links, shard_table=chosen))
    out, _ = parallel_bfs(kernel, Search(), workers)
    assert (out.states, out.transitions) == (one.states, one.transitions), (out, one)
    path = workers.path + choose
    print(f"{spec} {params}: {one.states:,} states; one process {seq:.2f} CPU s; {n} shards "
          f"({'packed' if compact else 'full'} states, shard_by={by}, links={links}"
          f"{f', {len(chosen)} owners chosen' if chosen else ''}): "
          f"{workers.total + choose:.2f} CPU s in all "
          f"({(workers.total + choose) / seq:.2f}x), critical path {path:.2f} s: "
          f"speed-up on {n} idle cores {seq / path:.2f}x (shard_by sample {choose:.2f} s)")


if __name__ == "__main__":
    main()
