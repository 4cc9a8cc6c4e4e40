"""Schedulers that find bugs sooner than a uniform pick (`--scheduler coverage|swarm`; PCT is
`run.PCTScheduler`).

* coverage: prefer the events that lead to local states (of an instance, by component class)
  the campaign has not reached yet, then to the global states it visited least; an event that
  breaks a contract, protocol or property one step ahead counts as new.  The campaign's memory
  is shared by the runs of a block of `BLOCK` consecutive runs (run i sees what runs
  `BLOCK*(i//BLOCK)` .. i-1 visited), and a campaign hands whole blocks to its workers, so the
  runs are the same whatever `--jobs`.
* swarm (Groce et al., 'Swarm Testing', ISSTA 2012): each run enables a random half of the
  classes of events (an action by name, a delivery or a timer by message type) and of the
  fault kinds it may inject; when nothing enabled can move, it falls back to everything.

Both draw only from the run's seeded generator and compare events by their canonical keys:
the same seed gives the same run in every process and under any PYTHONHASHSEED.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from typing import Any
from weakref import WeakKeyDictionary

from assay.kernel.events import Deliver, Fire, TimerFire
from assay.kernel.kernel import Kernel, State
from assay.simulator.rates import FaultRates
from assay.simulator.run import RunResult, Scheduler

NAMES = ("random", "pct", "coverage", "swarm")
BLOCK = 64           # runs that share the coverage scheduler's memory
MEMO = 200_000       # (state, event) successors the coverage scheduler keeps at most


class Coverage:
    """What the runs of one block visited: the local states of instances (by component
    class: rm0 and rm1 aborted are one local state), visits per global state, and the
    successor of each (state, event) pair a run looked at (memoised: one kernel `apply`)."""

    def __init__(self, block: int) -> None:
        self.block = block
        self.locals: set[tuple[str, Any]] = set()
        self.visits: dict[State, int] = {}
        # per (state, event): the local states of the next state it reaches that no run
        # had reached when it was computed (a contract or protocol broken: None, an error
        # state, always new), and the next state
        self.next: dict[tuple[State, int], tuple[tuple[tuple[str, Any], ...] | None,
                                                 State | None]] = {}


_COVERAGE: WeakKeyDictionary[Kernel, Coverage] = WeakKeyDictionary()


def begin_run(kernel: Kernel, index: int) -> None:
    """Run `index` of a campaign is about to start on `kernel`: a new block of runs starts
    with an empty coverage memory."""
    cov = _COVERAGE.get(kernel)
    if cov is None or cov.block != index // BLOCK or index % BLOCK == 0:
        _COVERAGE[kernel] = Coverage(index // BLOCK)


def chunk_size(scheduler: str, size: int) -> int:
    """The size of the chunks of runs a campaign hands its workers: whole coverage blocks."""
    if scheduler != "coverage":
        return size
    return max(BLOCK, size // BLOCK * BLOCK)


class CoverageScheduler(Scheduler):
    """Prefer the events whose next state holds local states (of some instance) no run of
    the block has reached; among those, or when there are none, the events whose next state
    the block visited least; a random one of the best."""

    def __init__(self, rng: random.Random, kernel: Kernel, steps: int) -> None:
        super().__init__(rng, kernel, steps)
        self.kernel = kernel
        cov = _COVERAGE.get(kernel)
        if cov is None:
            cov = _COVERAGE[kernel] = Coverage(0)
        self.cov = cov
        self.classes = [(inst.info.cls.__name__, inst.table.values, inst.index)
                        for inst in kernel.instances]

    def local_states(self, state: State) -> list[tuple[str, Any]]:
        locs = state[0]
        return [(name, values[locs[i]]) for name, values, i in self.classes]

    def pick(self, events: list[int], step: int, state: Any = None) -> int:
        if state is None:
            return super().pick(events, step)
        cov = self.cov
        seen = cov.locals
        seen.update(self.local_states(state))
        visits = cov.visits
        visits[state] = visits.get(state, 0) + 1
        if len(events) == 1:
            return events[0]
        nexts = cov.next
        apply = self.kernel.apply
        prop = self.kernel.property_violations
        best: list[int] = []
        top = (-1, 0)
        for e in events:
            key = (state, e)
            hit = nexts.get(key)
            if hit is None:
                if len(nexts) >= MEMO:
                    nexts.clear()        # a memo only: what it held is computed again
                nxt, _, viol = apply(state, e)
                hit = nexts[key] = (None, None) if viol or prop(nxt) else \
                    (tuple(x for x in self.local_states(nxt) if x not in seen), nxt)
            new, after = hit
            fresh = 1 << 30 if new is None else sum(1 for x in new if x not in seen)
            score = (fresh, -visits.get(after, 0) if after is not None else 0)
            if score > top:
                top, best = score, [e]
            elif score == top:
                best.append(e)
        return best[self.rng.randrange(len(best))]


def event_class(kernel: Kernel, ev: int) -> str:
    """The class of an event swarm testing enables or not: an action by instance type and
    name, a delivery or a timer by its message type."""
    e = kernel.event(ev)
    if isinstance(e, Fire):
        cls = kernel.instances[kernel.event_owner(ev)].info.cls
        return f"action {cls.__name__}.{e.action}"
    if isinstance(e, Deliver):
        return f"deliver {type(e.envelope.message).__name__}"
    if isinstance(e, TimerFire):
        return f"timer {type(e.message).__name__}"
    return kernel.event_kind(ev)


class SwarmScheduler(Scheduler):
    SWARMED = ("drop", "dup", "crash", "partition", "lose", "delay")  # restart, heal: recovery

    def __init__(self, rng: random.Random, kernel: Kernel, steps: int) -> None:
        super().__init__(rng, kernel, steps)
        self.kernel = kernel
        self.salt = rng.getrandbits(64)
        self.on: dict[int, bool] = {}

    def enabled(self, name: str) -> bool:
        d = hashlib.blake2b(f"{self.salt}:{name}".encode(), digest_size=1).digest()
        return bool(d[0] & 1)

    def rates(self, rates: FaultRates) -> FaultRates:
        # (a system without lossy links never loses a message, whatever the rate)
        return replace(rates, **{k: 0.0 for k in self.SWARMED
                                 if getattr(rates, k) and (k != "lose" or self.kernel.lossy)
                                 and not self.enabled(f"fault {k}")})

    def pick(self, events: list[int], step: int, state: Any = None) -> int:
        on = self.on
        mine = []
        for e in events:
            ok = on.get(e)
            if ok is None:
                ok = on[e] = self.enabled(event_class(self.kernel, e))
            if ok:
                mine.append(e)
        return super().pick(mine or events, step)


def make(name: str, rng: random.Random, kernel: Kernel, steps: int) -> Scheduler:
    if name == "coverage":
        return CoverageScheduler(rng, kernel, steps)
    return SwarmScheduler(rng, kernel, steps)


def rerun_recorded(kernel: Kernel, report: Any) -> RunResult:
    """A campaign's failing run followed again from its record (`report.initial`, its events
    by name), in `kernel`'s ids: a coverage run cannot be run again from its seed alone (it
    depends on what the runs before it in its block visited)."""
    from assay.kernel.trace import RECORDED, find_initial, replay_checked

    start = find_initial(kernel, report.initial)
    names = [{k: v for k, v in e.items() if k not in RECORDED} for e in report.trace or []]
    done = replay_checked(kernel, names, start)
    violation = done.violation
    if violation is None and (report.violation or {}).get("kind") == "deadlock":
        violation = kernel.deadlock()
    return RunResult(report.seed, start, [s.event for s in done.steps], violation,
                     "violation", 0)
