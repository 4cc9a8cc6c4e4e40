"""`check --workers auto` (the command's default): one process first, every core once the
search is large enough to pay for them, with the counts and counterexample of one process.

The compact BFS (`compact.py`) runs in this process.  At the end of a level — at least
`seconds` into the search, with a frontier of at least `states` — it hands the search over
(`Handover`): worker processes are forked there, so each inherits the visited set, the
packing and the frontier as they are; each keeps the frontier states it owns
(`CompactShard.adopt`) and the level-by-level search of `parallel.py` goes on from that
level.  Nothing is searched twice, and this process keeps its own search as it was, paused.

Exact.  An exhausted search (or one stopped at --max-depth) has the same states,
transitions, depth and terminal/deadlocked counts in any number of workers
(`parallel.py`), so the workers' outcome is that of one process.  Where the parallel search
would differ — a violation (one process stops at the first state that breaks something, in
its order, and reports that state's counterexample) or --max-states (checked at the end of
a level) — the workers stop, and this process takes up its paused search at the level it
handed over: the counts and the counterexample are those of `--workers 1`, at the cost of
searching those levels again.  The time bound and Ctrl-C stop the workers with their counts,
as `--workers N` does.

Where the search cannot be handed over — `--dfs`, `--keep-going`, symmetry reduction,
liveness properties, `--full-states`, `--max-memory` (one process spills to disk and goes
on), `--checkpoint`, `--ray`, `--por`, a spec the packed workers do not search (timers,
faults, bounded or lossy links, choices, constraints), one usable core, no `fork` — it
stays on one process (`why_one_process`), and says nothing: that is the search it asked for.

The workers are on trial (`Trial`): at the first level boundary TRIAL seconds after the
hand-over, unless they found states MARGIN times as fast as this process did alone, they
stop ("slower") and this process takes up its paused search, as after a violation.  A spec
whose every step moves its state to another worker (Raft: the network changes in nearly
every step) searched on two workers at half the speed of one; a busy machine does the same.

The threshold comes from the environment variable ASSAY_WORKERS_AUTO, "SECONDS,STATES"
(tests set "0,1": hand over at the first level boundary).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from assay.checker.search import Outcome, Search, StopReason

if TYPE_CHECKING:
    from assay.checker.compact import CompactBFS
    from assay.kernel.kernel import Kernel

AUTO = "auto"
ENV = "ASSAY_WORKERS_AUTO"
# hand over at the end of a level at least this long into the search, with a frontier of at
# least this many states (a check that ends sooner never pays for forking)
SECONDS = 1.0
STATES = 4096

# the search being handed over, for the forked workers: (CompactBFS, frontier, depth, states
# before the frontier); set only while they are forked
_taken: tuple[Any, Any, int, int] | None = None


def taken() -> tuple[Any, Any, int, int]:
    """In a forked worker: what the search handed over (see `Handover`)."""
    assert _taken is not None, "a worker that adopts a search is forked by Handover"
    return _taken


def usable_cores() -> int:
    """The cores this process may run on: os.cpu_count(), or fewer when the affinity mask or
    a cgroup CPU quota allows fewer (a whole core each; at least 1)."""
    n = os.cpu_count() or 1
    with contextlib.suppress(AttributeError, OSError):
        n = min(n, len(os.sched_getaffinity(0)))         # type: ignore[attr-defined]
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, int(quota)))
    return max(1, n)


def _cgroup_quota() -> float | None:
    """The cgroup's CPU quota in cores (v2 cpu.max, v1 cfs quota/period), None if none."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            q = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            p = int(f.read())
        return None if q <= 0 or p <= 0 else q / p
    return None


def threshold() -> tuple[float, int]:
    """(seconds, frontier states) before a hand-over: ASSAY_WORKERS_AUTO or the defaults."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return SECONDS, STATES
    try:
        a, _, b = text.partition(",")
        return float(a), int(b) if b.strip() else STATES
    except ValueError:
        return SECONDS, STATES


def why_one_process(kernel: Kernel, *, strategy: str, keep_going: bool, reduced: bool,
            full_states: bool, max_memory: int | None, checkpoint: bool, ray: bool,
            por: bool, cores: int) -> str | None:
    """Why `--workers auto` stays on one process (None: it may hand over; the spec itself
    is looked at then, `Handover`: the modules of the parallel search are not even imported
    by a check that ends sooner)."""
    why = {"one usable core": cores < 2, "--dfs": strategy != "bfs",
           "--keep-going": keep_going, "symmetry reduction": reduced,
           "liveness properties": bool(kernel.system.liveness),
           "--full-states": full_states, "--max-memory": max_memory is not None,
           "--checkpoint": checkpoint, "--ray": ray, "--por": por,
           "no fork": not sys.platform.startswith("linux")}   # as parallel._fork
    return next((k for k, v in why.items() if v), None)


# the workers' first seconds are a trial: at the first level boundary this long after the
# hand-over, they must have found states at least MARGIN times as fast as this process did
# alone, else they stop and this process goes on (a spec whose every step moves its state to
# another worker — Raft's network changes in nearly every step — is slower on two)
TRIAL = 2.0
MARGIN = 1.15
TRIAL_ENV = "ASSAY_WORKERS_TRIAL"       # "SECONDS,MARGIN" (tests: "0,1000" always fails)


def trial() -> tuple[float, float]:
    """(seconds, margin) of the workers' trial: ASSAY_WORKERS_TRIAL or the defaults."""
    a, _, b = os.environ.get(TRIAL_ENV, "").partition(",")
    try:
        return float(a) if a.strip() else TRIAL, float(b) if b.strip() else MARGIN
    except ValueError:
        return TRIAL, MARGIN


@dataclass
class Trial(Search):
    """The workers' search after a hand-over, on trial (see TRIAL): its `tick` says
    "slower" from the first level boundary after the trial on, if they were."""

    alone: float = 0.0                   # states/s of this process before the hand-over
    since: float = 0.0                   # when the search was handed over
    counted: tuple[int, float] = (0, 0.0)   # (states, when) the last time the count moved
    verdict: StopReason | None = None
    decided: bool = False
    counted_from: int = 0                # states when the search was handed over
    terms: tuple[float, float] = (TRIAL, MARGIN)

    def tick(self, frontier: int, memory: bool = True) -> StopReason | None:
        bound = super().tick(frontier, memory)
        if bound is not None:
            return bound
        now = time.perf_counter()
        if self.states != self.counted[0]:          # (the workers count at level ends)
            self.counted = (self.states, now)
        seconds, margin = self.terms
        if not self.decided and self.counted[1] - self.since >= seconds \
                and self.counted[1] > self.since:
            self.decided = True
            states, when = self.counted
            rate = (states - self.counted_from) / (when - self.since)
            if rate < self.alone * margin:
                self.verdict = "slower"
        return self.verdict


class Handover:
    """`CompactBFS.handover`: called at the end of each level; hands the search over to
    `n` forked workers once past the threshold (once).  Returns the workers' outcome, or
    None: one process goes on (not yet past the threshold, or the workers met what only one
    process reports alike)."""

    def __init__(self, n: int, after: tuple[float, int] | None = None) -> None:
        self.n = n
        self.seconds, self.states = after if after is not None else threshold()
        self.workers = 1                  # processes that searched to the end
        self.at: int | None = None        # the depth handed over at, if it was
        self.fell_back: str | None = None  # why this process took its search up again
        self.unchanged: set[int] | None = None

    def __call__(self, cb: CompactBFS, depth: int, terminal: int,
                 deadlocked: int) -> Outcome | None:
        global _taken
        search = cb.search
        frontier = cb.levels.levels[depth]
        if time.perf_counter() - search.started < self.seconds or len(frontier) < self.states:
            return None
        from assay.checker.parallel import (
            Options,
            Processes,
            _merge_summaries,
            parallel_bfs,
            summary,
        )
        cb.handover = None                # once
        kernel = cb.kernel
        from assay.checker.parallel_compact import supported

        if not supported(kernel):         # timers, faults, links, choices, constraints
            return None
        before = len(cb.visited) - len(frontier)
        deadline = None if search.max_time is None else \
            time.time() + search.max_time - (time.perf_counter() - search.started)
        now = time.perf_counter()
        there = Trial(max_states=search.max_states, max_depth=search.max_depth,
                      max_time=search.max_time, on_progress=search.on_progress,
                      interval=search.interval, states=len(cb.visited),
                      transitions=search.transitions, depth=depth, started=search.started,
                      alone=len(cb.visited) / max(now - search.started, 1e-9), since=now,
                      counted=(len(cb.visited), now), counted_from=len(cb.visited),
                      terms=trial())
        opts = Options(deadline, None, True, None, compact=True, handover=True)
        _taken = (cb, frontier, depth, before)
        try:
            workers = Processes(kernel, self.n, opts)
        except KeyboardInterrupt:
            return Outcome("interrupted", len(cb.visited), search.transitions, depth,
                           time.perf_counter() - search.started, terminal=terminal,
                           deadlocked=deadlocked, storage=cb.report())
        finally:
            _taken = None
        try:
            by = workers.one(0, "sample")
        except BaseException:
            workers.close()
            raise
        workers.shard_by = by
        resume = {"adopt": by, "transitions": search.transitions, "terminal": terminal,
                  "deadlocked": deadlocked, "depth": depth, "properties": []}
        out, extra = parallel_bfs(kernel, there, workers, resume=resume, adopted=True)
        self.at = depth
        if out.reason in ("violation", "max-states", "slower"):
            self.fell_back = out.reason
            return None
        self.workers = self.n
        self.unchanged = _merge_summaries(kernel, [*extra.summaries, summary(kernel)]) \
            .unchanged if extra.summaries else None
        search.states, search.transitions, search.depth = out.states, out.transitions, \
            out.depth
        return replace(out, storage=cb.report())
