"""Checkpoints of a depth-first search (`check --dfs --checkpoint DIR`), and resuming from one.

Every 1,024 states (when `--checkpoint-every` seconds have passed) `dfs` hands its state
between two steps to `DfsSaver.save` (a `dfs.Snapshot`): the visited states, the stack — each
frame's state and how many of its steps were taken —, the violations counted so far with
`--keep-going`, and its counters.  They are written, encoded as `portable.py` does (an event
as its JSON), into `DIR/next/shard-0` and swapped in by `Checkpoints.commit`, with the same
identity check, digest and atomic renames as the breadth-first search's (`checkpoint.py`).

A resumed search must take the very steps the uninterrupted one takes, but a kernel orders a
state's steps by ids it interns in the order it meets values, and a resumed kernel has met
them in another order.  So a checkpointed DFS takes each state's steps in the order of their
events' `Kernel.event_key` (the same in every kernel): its counts, verdict and
counterexample are then a function of the spec alone, stopped and resumed or not.  (Without
--checkpoint DFS keeps the kernel's order: the counts of an exhausted search are the same,
its counterexample may be another.)  Restoring recomputes each frame's steps: as many
expansions as the stack is deep.
"""
from __future__ import annotations

import os
import pickle
import time
from typing import TYPE_CHECKING, Any

from assay.checker.checkpoint import Checkpoints, shard_file, verified
from assay.checker.dfs import Snapshot, dfs
from assay.checker.parallel import Extra, _merge_summaries, summary
from assay.checker.portable import Portable
from assay.checker.search import Outcome, Search
from assay.kernel.kernel import Kernel, State

if TYPE_CHECKING:
    from assay.checker.symmetry import Symmetry


class DfsSaver:
    """`dfs.Saver` into a checkpoint directory (and the snapshot found there, if any)."""

    def __init__(self, kernel: Kernel, reduce: Symmetry | None,
                 checkpoints: Checkpoints) -> None:
        self.kernel = kernel
        self.reduce = reduce
        self.checkpoints = checkpoints
        self.codec = Portable(kernel)
        found = checkpoints.found()
        # the property statistics of the searches before this one (see `parallel_bfs`)
        self.earlier: list[dict[str, Any]] = found["properties"] if found is not None else []
        self.resume = self._load(found["path"]) if found is not None else None
        self.saved = time.perf_counter()

    def due(self) -> bool:
        return time.perf_counter() - self.saved >= self.checkpoints.every

    def save(self, snap: Snapshot) -> None:
        encode = self.codec.encode
        data = {"visited": [encode(s) for s in snap.visited], "init": snap.init,
                "stack": [(encode(s), k) for s, k in snap.stack],
                "found": [(v, n, unit, encode(start), self._events(start, path))
                          for v, n, unit, start, path in snap.found],
                "terminal": snap.terminal, "deadlocked": snap.deadlocked,
                "transitions": snap.transitions, "depth": snap.depth, "cut": snap.cut,
                "expanded": snap.expanded}
        name = shard_file(self.checkpoints.begin(), 0)
        with open(name + ".tmp", "wb") as f:
            pickle.dump(data, f, pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(name + ".tmp", name)
        self.checkpoints.commit({"states": len(snap.visited), "transitions": snap.transitions,
                                 "depth": snap.depth, "terminal": snap.terminal,
                                 "deadlocked": snap.deadlocked,
                                 "properties": self.earlier + [summary(self.kernel)]})
        self.saved = time.perf_counter()

    def _load(self, path: str) -> Snapshot:
        data = pickle.loads(verified(path, 0))       # (checked with this user's key)
        decode = self.codec.decode
        found = []
        for v, n, unit, start, events in data["found"]:
            s = decode(start)
            found.append([v, n, unit, s, self._ids(s, events)])
        return Snapshot({decode(e) for e in data["visited"]}, data["init"],
                        [(decode(e), k) for e, k in data["stack"]], found, data["terminal"],
                        data["deadlocked"], data["transitions"], data["depth"], data["cut"],
                        data["expanded"])

    def _next(self, s: State, ev: int) -> State:
        t = self.kernel.apply(s, ev)[0]
        return self.reduce.canon(t) if self.reduce is not None else t

    def _events(self, start: State, path: tuple[int, ...]) -> list[Any]:
        """A path's events as JSON (ids are this kernel's)."""
        out = []
        for ev in path:
            out.append(self.kernel.event(ev).to_json())
            start = self._next(start, ev)
        return out

    def _ids(self, start: State, events: list[Any]) -> tuple[int, ...]:
        out = []
        for j in events:
            ev = self.kernel.event_id(start, j)
            out.append(ev)
            start = self._next(start, ev)
        return tuple(out)


def checkpointed_dfs(kernel: Kernel, search: Search, keep_going: bool,
                     reduce: Symmetry | None, checkpoints: Checkpoints) -> tuple[Outcome, Extra]:
    """`dfs` saved in `checkpoints`, from the search saved there if there is one; with what
    the property report needs of the searches before (`parallel.Extra`)."""
    saver = DfsSaver(kernel, reduce, checkpoints)
    out = dfs(kernel, search, keep_going, reduce, saver)
    extra = _merge_summaries(kernel, [summary(kernel), *saver.earlier]) if saver.earlier \
        else Extra(kernel.property_evaluations, None)
    return out, extra
