"""What every exploration loop shares: its outcome, its bounds and its progress reports.

A loop calls `Search.tick` now and then (every 1,024 states it expands): that is where the
progress callback runs and where the time and memory bounds are checked, off the hot path.
A loop also turns Ctrl-C (KeyboardInterrupt) into the outcome `interrupted`, with its counts.
A search that keeps going past violations (`check --keep-going`) counts them in a `Tally`.
"""
from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from assay.errors import Location
from assay.kernel.kernel import State
from assay.kernel.violation import Violation

StopReason = Literal["exhausted", "violation", "max-states", "max-depth", "max-time",
                     "max-memory", "interrupted",
                     "slower"]     # (auto's workers on trial: never a check's outcome)


def resident_bytes() -> int:
    """This process's resident set size now (Linux: /proc/self/statm), else its peak."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Progress:
    states: int
    transitions: int
    frontier: int
    depth: int
    seconds: float
    # "safety" while the search explores; "liveness" while the liveness graph is built after
    # it (the counts are then the safety search's, and `frontier` the graph's unexpanded states)
    phase: str = "safety"


@dataclass
class Search:
    """Bounds, counters and the progress callback of one exploration."""

    max_states: int | None = None
    max_depth: int | None = None
    max_time: float | None = None            # seconds
    max_memory: int | None = None            # bytes of resident memory
    on_progress: Callable[[Progress], None] | None = None
    interval: float = 0.5                    # seconds between two progress reports
    states: int = 0
    transitions: int = 0
    depth: int = 0
    started: float = field(default_factory=time.perf_counter)
    phase: str = "safety"                    # or "liveness": what `Progress.phase` says
    _next_report: float | None = None
    # why spec code that did not return was stopped at the time bound (see kernel/watchdog)
    overdue: str | None = None

    def tick(self, frontier: int, memory: bool = True) -> StopReason | None:
        """Report progress when it is time; the bound (time, memory) hit, if one is (the
        memory bound not with `memory=False`: a search that spills to disk checks it)."""
        now = time.perf_counter()
        if self.max_time is not None and now - self.started >= self.max_time:
            return "max-time"
        if memory and self.max_memory is not None and resident_bytes() >= self.max_memory:
            return "max-memory"
        if self.on_progress is not None:
            if self._next_report is None:
                self._next_report = self.started + self.interval
            if now >= self._next_report:
                self._next_report = now + self.interval
                self.on_progress(Progress(self.states, self.transitions, frontier, self.depth,
                                          now - self.started, self.phase))
        return None


Unit = Literal["states", "transitions", "lasso"]
Key = tuple[str, str | None, str, Location | None]


def path_back(visited: dict[State, tuple[State, int] | None], at: State,
              last: int | None = None) -> tuple[State, tuple[int, ...]]:
    """The start and the events of the path a search took to `at` (then `last`), from its
    parent pointers `visited` (state -> (parent, event), None for an initial state)."""
    path: list[int] = []
    start = at
    node = visited.get(at)
    while node is not None:
        start, ev = node
        path.append(ev)
        node = visited[start]
    path.reverse()
    if last is not None:
        path.append(last)
    return start, tuple(path)


def violation_key(v: Violation) -> Key:
    """What makes two violations the same for `--keep-going`'s counts: kind, name and blame
    (the simulator's shrinking `signature`), and the contract's or raise's line, so that two
    contracts of one handler are counted apart.  The message is not: it quotes values."""
    return (v.kind, v.name, v.blame, v.location)


@dataclass(frozen=True)
class Found:
    """One kind of violation a search kept going past: how many states break it (a property,
    a deadlock) or transitions (a contract, a protocol, an exception: every violating step,
    an instance's start included), and the first counterexample, `path` from `start` (the
    first one reached; with BFS one of least depth)."""

    violation: Violation
    count: int
    unit: Unit
    start: State
    path: tuple[int, ...]
    cycle_start: int | None = None       # a liveness lasso (unit "lasso")


class Tally:
    """The violations met by a search that keeps going, per `violation_key`.

    `add` counts the violations of one state or transition and says whether one of them is
    of a new kind; the loop then gives its counterexample to `locate` (only then: a path is
    rebuilt once per kind, not once per violation)."""

    def __init__(self) -> None:
        self._found: dict[Key, list] = {}        # key -> [violation, count, unit, start, path]
        self._new: list[list] = []

    def add(self, violations: tuple[Violation, ...], unit: Unit) -> bool:
        """Count `violations` (of one state, or one transition); whether one is of a kind not
        met before."""
        found = self._found
        new = False
        seen: set[Key] = set()
        for v in violations:
            key = violation_key(v)
            if key in seen:                      # the same kind twice in one step: once
                continue
            seen.add(key)
            entry = found.get(key)
            if entry is None:
                entry = found[key] = [v, 0, unit, None, ()]
                self._new.append(entry)
                new = True
            entry[1] += 1
        return new

    def locate(self, start: State, path: tuple[int, ...]) -> None:
        """The counterexample of the kinds `add` just met for the first time."""
        for entry in self._new:
            entry[3], entry[4] = start, path
        self._new.clear()

    def entries(self) -> list[list]:
        """Every kind met, in the order met: [violation, count, unit, start, path] (for a
        checkpoint, `dfs_checkpoint.py`)."""
        return list(self._found.values())

    def restore(self, entries: list[list]) -> None:
        """Take up the counts `entries` noted (a resumed search)."""
        self._found = {violation_key(e[0]): list(e) for e in entries}

    def results(self, shortest: bool) -> tuple[Found, ...]:
        """Every kind found, in the order met (with `shortest`, by counterexample length
        first: the first is then one a search that stops would have reported)."""
        out = [Found(v, n, unit, start, path) for v, n, unit, start, path
               in self._found.values() if start is not None]   # (None: Ctrl-C in between)
        if shortest:
            out.sort(key=lambda f: len(f.path))      # stable: ties stay in the order met
        return tuple(out)


@dataclass(frozen=True)
class Outcome:
    """How an exploration ended; `path` leads from `start` to the violation (with `found`, the
    first one's).  `terminal` and `deadlocked` count the states expanded where nothing but
    faults is enabled: declared terminal (or with deadlocks not checked), or not."""

    reason: StopReason
    states: int
    transitions: int
    depth: int
    seconds: float
    violation: Violation | None = None
    start: State | None = None
    path: tuple[int, ...] = ()
    found: tuple[Found, ...] = ()
    terminal: int = 0
    deadlocked: int = 0
    storage: dict[str, object] | None = None    # how the visited states were kept (compact)
