"""What every exploration loop shares: its outcome, its bounds and its progress reports.

A loop calls `Search.tick` now and then (every 1,024 states it expands): that is where the
progress callback runs and where the time and memory bounds are checked, off the hot path.
A loop also turns Ctrl-C (KeyboardInterrupt) into the outcome `interrupted`, with its counts.
"""
from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from assay.kernel.kernel import State
from assay.kernel.violation import Violation

StopReason = Literal["exhausted", "violation", "max-states", "max-depth", "max-time",
                     "max-memory", "interrupted"]


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
    _next_report: float | None = None

    def tick(self, frontier: int) -> StopReason | None:
        """Report progress when it is time; the bound (time, memory) hit, if one is."""
        now = time.perf_counter()
        if self.max_time is not None and now - self.started >= self.max_time:
            return "max-time"
        if self.max_memory is not None and resident_bytes() >= self.max_memory:
            return "max-memory"
        if self.on_progress is not None:
            if self._next_report is None:
                self._next_report = self.started + self.interval
            if now >= self._next_report:
                self._next_report = now + self.interval
                self.on_progress(Progress(self.states, self.transitions, frontier, self.depth,
                                          now - self.started))
        return None


@dataclass(frozen=True)
class Outcome:
    """How an exploration ended; `path` leads from `start` to the violation."""

    reason: StopReason
    states: int
    transitions: int
    depth: int
    seconds: float
    violation: Violation | None = None
    start: State | None = None
    path: tuple[int, ...] = ()
