"""Explicit-state model checking of a composed system: `check(system) -> CheckResult`."""
from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from assay.checker.bfs import bfs
from assay.checker.dfs import dfs
from assay.checker.liveness import Lasso, build_graph, check_liveness, fair_tasks
from assay.checker.search import Outcome, Progress, Search
from assay.kernel.faults import Faults
from assay.kernel.kernel import Kernel
from assay.kernel.trace import Step, Trace, explain, initial_json, recorded_event
from assay.kernel.violation import Violation
from assay.model.system import System

Verdict = Literal["ok", "violation", "incomplete"]

__all__ = ["CheckResult", "Progress", "check"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of `check`: the verdict, why the search stopped, counts and a counterexample."""

    verdict: Verdict
    reason: str                      # exhausted | violation | max-states | max-depth
    strategy: str
    states: int
    transitions: int
    depth: int
    seconds: float
    violation: Violation | None
    steps: tuple[Step, ...]          # the counterexample, when there is one
    trace: Trace | None
    initial: dict[str, dict[str, Any]] | None = None   # its initial state, field values
    # a liveness counterexample is a lasso: steps[cycle_start:] repeat forever (none of them:
    # the run stops after its last step)
    cycle_start: int | None = None
    # each liveness property: "holds", "violated", or why it was not checked
    liveness: dict[str, str] = field(default_factory=dict)
    fairness: str = "none"

    @property
    def exit_code(self) -> int:
        return {"ok": 0, "violation": 1, "incomplete": 3}[self.verdict]

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict, "reason": self.reason, "strategy": self.strategy,
            "states": self.states, "transitions": self.transitions, "depth": self.depth,
            "seconds": round(self.seconds, 6), "states_per_second": round(self.rate, 1),
            "violation": self.violation.to_json() if self.violation else None,
            "lasso": None if self.cycle_start is None else {"cycle_start": self.cycle_start},
            "liveness": self.liveness, "fairness": self.fairness,
            "trace": self.trace.to_json() if self.trace else None,
        }


def check(system: System | Kernel, *, strategy: str = "bfs", max_states: int | None = None,
          max_depth: int | None = None, on_progress: Callable[[Progress], None] | None = None,
          spec: str = "", system_name: str = "", params: dict[str, Any] | None = None,
          faults: Faults | None = None, fairness: str | None = None) -> CheckResult:
    """Explore every reachable state of `system` and check its contracts and properties.

    With `faults`, every placement of at most that many faults of each kind is explored too.
    Liveness properties are decided on the explored graph once the search has finished
    without a safety violation, under the system's fairness (or `fairness`, which overrides
    its default).
    """
    if isinstance(system, Kernel):
        if faults is not None and system.faults != faults:
            raise ValueError("give the fault budget to the Kernel, or a System to check()")
        if fairness is not None and system.fairness != fairness:
            raise ValueError("give the fairness to the Kernel, or a System to check()")
        kernel = system
    else:
        kernel = Kernel(system, faults, fairness)
    search = Search(max_states=max_states, max_depth=max_depth, on_progress=on_progress)
    explore = {"bfs": bfs, "dfs": dfs}.get(strategy)
    if explore is None:
        raise ValueError(f"unknown strategy {strategy!r}; use 'bfs' or 'dfs'")
    # States are tuples of ints: they form no reference cycles, and the cyclic collector's
    # passes over millions of them cost a fifth of the run.  Pause it during the search.
    was_enabled = gc.isenabled()
    gc.disable()
    lasso = None
    liveness: dict[str, str] = {}
    try:
        out = explore(kernel, search)
        if kernel.system.liveness:
            out, lasso, liveness = _liveness(kernel, search, out)
    finally:
        if was_enabled:
            gc.enable()
    return _result(kernel, out, strategy, spec, system_name, params or {}, lasso, liveness)


def _liveness(kernel: Kernel, search: Search, out: Outcome
              ) -> tuple[Outcome, Lasso | None, dict[str, str]]:
    """Decide the liveness properties once the safety search is done: on the whole graph when
    it was exhausted; otherwise they are not checked (and the verdict says why)."""
    props = kernel.system.liveness
    if out.reason != "exhausted":
        why = ("not checked: a safety violation was found first" if out.reason == "violation"
               else f"not checked: the search stopped at the {out.reason} bound")
        return out, None, {p.name: why for p in props}
    graph = build_graph(kernel, search)
    tasks = fair_tasks(kernel, graph)
    verdicts: dict[str, str] = {}
    for i, p in enumerate(props):
        lasso = check_liveness(kernel, graph, p, tasks)
        if lasso is not None:
            verdicts[p.name] = "violated"
            verdicts.update({q.name: "not checked: another liveness property failed first"
                             for q in props[i + 1:]})
            seconds = time.perf_counter() - search.started
            return (Outcome("violation", out.states, out.transitions, out.depth, seconds,
                            lasso.violation, lasso.start, lasso.events), lasso, verdicts)
        verdicts[p.name] = "holds"
    seconds = time.perf_counter() - search.started
    return replace(out, seconds=seconds), None, verdicts


def _result(kernel: Kernel, out: Outcome, strategy: str, spec: str, system_name: str,
            params: dict[str, Any], lasso: Lasso | None = None,
            liveness: dict[str, str] | None = None) -> CheckResult:
    verdict: Verdict = {"exhausted": "ok", "violation": "violation"}.get(  # type: ignore
        out.reason, "incomplete")
    steps: list[Step] = []
    trace = None
    if out.violation is not None and out.start is not None:
        state = out.start
        for i, ev in enumerate(out.path, 1):
            step, state = explain(kernel, state, ev, i)
            steps.append(step)
        v = out.violation
        trace = Trace(spec, system_name or kernel.system.name, params,
                      [recorded_event(s) for s in steps], engine="check",
                      faults=kernel.faults.to_json() if kernel.faults else None,
                      initial=initial_json(kernel, out.start),
                      verdict={"kind": v.kind, "name": v.name, "blame": v.blame,
                               "message": v.message, "step": len(steps),
                               **({"cycle_start": lasso.cycle_start,
                                   "fairness": kernel.fairness} if lasso else {})})
    initial = None
    if out.start is not None:
        initial = {inst.name: kernel.local_values(out.start, inst.name)
                   for inst in kernel.instances}
    return CheckResult(verdict, out.reason, strategy, out.states, out.transitions, out.depth,
                       out.seconds, out.violation, tuple(steps), trace, initial,
                       lasso.cycle_start if lasso else None, liveness or {}, kernel.fairness)
