"""What every exploration loop shares: its outcome, its bounds and its progress reports."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from assay.kernel.kernel import State
from assay.kernel.violation import Violation

StopReason = Literal["exhausted", "violation", "max-states", "max-depth"]


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
    on_progress: Callable[[Progress], None] | None = None
    interval: float = 0.5
    states: int = 0
    transitions: int = 0
    depth: int = 0
    started: float = field(default_factory=time.perf_counter)
    _next_report: float = 0.0

    def tick(self, frontier: int) -> None:
        if self.on_progress is None:
            return
        now = time.perf_counter()
        if now >= self._next_report:
            self._next_report = now + self.interval
            self.on_progress(Progress(self.states, self.transitions, frontier, self.depth,
                                      now - self.started))


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
