"""Traces: the unit of reproduction across engines.

A trace names the spec, the system and its parameters, and lists events by the spec's names.
`replay` runs one through the kernel's `step` from the initial state, checking at every step
that the event is enabled, and reports where it ends.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import TraceError
from assay.kernel.kernel import Change, Kernel, State
from assay.kernel.violation import Violation
from assay.model.component import FAIRNESS

Hook = Callable[[State, int, State], None]   # called after each replayed step: before, event, after

FORMAT = "assay-trace"
VERSION = 1


@dataclass(frozen=True)
class Step:
    """One step of a run: the event, what changed, what was sent, what broke."""

    index: int                      # 1-based
    event: int                      # the kernel's event id
    description: str
    event_json: dict[str, Any]
    changes: tuple[Change, ...]
    sent: tuple[str, ...]
    violations: tuple[Violation, ...]


@dataclass
class Trace:
    spec: str
    system: str
    params: dict[str, Any]
    events: list[dict[str, Any]]
    engine: str = "check"
    seed: int | None = None
    faults: dict[str, Any] | None = None
    initial: dict[str, dict[str, Any]] | None = None
    verdict: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc = {"format": FORMAT, "version": VERSION, "spec": self.spec, "system": self.system,
               "params": self.params, "engine": self.engine, "seed": self.seed,
               "faults": self.faults}
        if self.initial is not None:
            doc["initial"] = self.initial
        doc["events"] = [{"step": i + 1, **e} for i, e in enumerate(self.events)]
        doc["verdict"] = self.verdict
        return doc

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> Trace:
        try:
            doc = json.loads(Path(path).read_text())
        except OSError as e:
            raise TraceError(f"cannot read trace {path}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise TraceError(f"{path} is not JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise TraceError(f"{path} is not an assay trace (no \"format\": \"{FORMAT}\")")
        if doc.get("version") != VERSION:
            raise TraceError(f"{path} has trace version {doc.get('version')}, "
                             f"this assay reads version {VERSION}")
        for key, kind in (("spec", str), ("system", str), ("events", list)):
            if not isinstance(doc.get(key), kind):
                raise TraceError(f"{path}: the trace's {key!r} must be a {kind.__name__}, "
                                 f"not {doc.get(key)!r}")
        if not isinstance(doc.get("verdict") or {}, dict):
            raise TraceError(f"{path}: the trace's 'verdict' must be an object or null")
        if not isinstance(doc.get("params", {}), dict) or not all(
                isinstance(e, dict) for e in doc["events"]):
            raise TraceError(f"{path}: 'params' must be an object and every event an object")
        events = [{k: v for k, v in e.items() if k != "step"} for e in doc["events"]]
        try:
            return cls(doc["spec"], doc["system"], doc.get("params", {}), events,
                       doc.get("engine", "check"), doc.get("seed"), doc.get("faults"),
                       doc.get("initial"), doc.get("verdict"))
        except KeyError as e:
            raise TraceError(f"{path}: the trace has no {e.args[0]!r}") from None


def explain(kernel: Kernel, before: State, ev: int, index: int) -> tuple[Step, State]:
    """Run one step and describe it for a person."""
    res = kernel.step(before, ev)
    step = Step(index, ev, kernel.describe(ev), kernel.event(ev).to_json(),
                tuple(kernel.changes(before, res.state)), tuple(str(e) for e in res.sends),
                res.violations)
    return step, res.state


def initial_json(kernel: Kernel, state: State) -> dict[str, dict[str, Any]]:
    from assay.model.types import to_json

    return {inst.name: {f: to_json(v) for f, v in kernel.local_values(state, inst.name).items()}
            for inst in kernel.instances}


def find_initial(kernel: Kernel, initial: dict[str, dict[str, Any]] | None) -> State:
    """The initial state a trace starts from (the first one when it does not say)."""
    states = [s for s, _ in kernel.initial_states()]
    if initial is None:
        return states[0]
    for s in states:
        if initial_json(kernel, s) == initial:
            return s
    raise TraceError("the trace's initial state is not an initial state of this system",
                     notes=["the spec or its parameters changed since the trace was written"])


@dataclass(frozen=True)
class Replayed:
    """A trace run through the kernel: its steps, where it ended, and the first violation
    (a step's, a property's, or a deadlock at the end)."""

    steps: list[Step]
    state: State
    violation: Violation | None


def replay_checked(kernel: Kernel, events: Sequence[dict[str, Any]], start: State,
                   on_step: Hook | None = None) -> Replayed:
    """Replay `events`, checking properties after every step; stop at the first violation."""
    steps: list[Step] = []
    state = start
    pv = kernel.property_violations(state)
    if pv:
        return Replayed(steps, state, pv[0])
    for i, e in enumerate(events, 1):
        try:
            ev = kernel.event_id(state, e)
        except TraceError as err:
            raise TraceError(f"step {i}: {err.message}", notes=[
                *err.notes,
                "the event is not enabled at this point of the run: the spec changed, or a "
                "handler depends on something outside its state (set order, time, randomness)"]
            ) from None
        before = state
        step, state = explain(kernel, state, ev, i)
        if on_step is not None:
            on_step(before, ev, state)
        steps.append(step)
        if step.violations:
            return Replayed(steps, state, step.violations[0])
        pv = kernel.property_violations(state)
        if pv:
            return Replayed(steps, state, pv[0])
    if not kernel.can_progress(state) and not kernel.is_terminal(state):
        return Replayed(steps, state, kernel.deadlock())
    return Replayed(steps, state, None)


def replay(kernel: Kernel, events: Sequence[dict[str, Any]], start: State
           ) -> tuple[list[Step], State]:
    """Run `events` from `start`; every event must be enabled where it occurs."""
    steps: list[Step] = []
    state = start
    for i, e in enumerate(events, 1):
        try:
            ev = kernel.event_id(state, e)
            step, state = explain(kernel, state, ev, i)
        except TraceError as err:
            raise TraceError(f"step {i}: {err.message}", notes=[
                "the event is not enabled at this point of the run: the spec changed, or a "
                "handler depends on something outside its state (set order, time, randomness)"]
            ) from None
        steps.append(step)
    return steps, state


@dataclass(frozen=True)
class ReplayResult:
    steps: list[Step]
    violation: Violation | None
    instances: list[str]
    initial: dict[str, dict[str, Any]]
    time: int | None            # virtual time at the end (simulator engine)
    cycle_start: int | None = None      # a liveness lasso: the steps after it repeat
    note: str | None = None             # why a recorded lasso shows no violation


def replay_trace(trace: Trace, trace_path: str | Path,
                 clocked: Callable[[Kernel], tuple[Hook, Callable[[], int]]] | None = None,
                 ) -> ReplayResult:
    """Rebuild the trace's system from its spec and replay the trace through the kernel.

    `clocked` (the simulator's `replay_clock`) adds virtual time: given the kernel it returns
    the hook that advances a clock at each step and a function reading the clock at the end.
    The kernel knows nothing of time beyond which timers are pending."""
    import os

    from assay.kernel.faults import Faults
    from assay.model.load import build

    spec = trace.spec
    if not os.path.isfile(spec):
        beside = os.path.join(os.path.dirname(os.path.abspath(trace_path)), spec)
        if os.path.isfile(beside):
            spec = beside
    params = {k: str(v).lower() if isinstance(v, bool) else str(v)
              for k, v in trace.params.items()}
    system, _, _ = build(spec, trace.system, params)
    kinds = {e.get("kind") for e in trace.events}
    faulty = bool(trace.faults) or bool(kinds & {"crash", "restart", "drop", "duplicate",
                                                 "partition", "heal"})
    verdict = trace.verdict or {}
    cycle_start = verdict.get("cycle_start") if verdict.get("kind") == "liveness" else None
    fairness = verdict.get("fairness") if cycle_start is not None else None
    if fairness is not None and fairness not in FAIRNESS:
        raise TraceError(f"the trace's fairness {fairness!r} is not one of "
                         f"{', '.join(FAIRNESS)}")
    # a fault may occur wherever the trace has one: the budget is not what is replayed
    kernel = Kernel(system, Faults.unlimited() if faulty else None, fairness)
    start = find_initial(kernel, trace.initial)
    hook, now = clocked(kernel) if clocked else (None, None)
    done = replay_checked(kernel, trace.events, start, hook)
    violation, note = done.violation, None
    if cycle_start is not None and violation is None:
        violation, note = _lasso(kernel, verdict, start, done.steps, cycle_start)
    return ReplayResult(done.steps, violation, [i.name for i in kernel.instances],
                        initial_values(kernel, start), now() if now else None,
                        cycle_start, note)


def _lasso(kernel: Kernel, verdict: dict[str, Any], start: State, steps: list[Step],
           cycle_start: Any) -> tuple[Violation | None, str | None]:
    """Confirm a recorded liveness lasso: the cycle closes, is fair, and the property fails
    on it (`assay.kernel.liveness.check_lasso`, the checker's own definition)."""
    from assay.kernel.liveness import check_lasso

    name = verdict.get("name")
    prop = next((p for p in kernel.system.liveness if p.name == name), None)
    if prop is None:
        raise TraceError(f"the trace's liveness property {name!r} is not one of this system's",
                         notes=["the spec changed since the trace was written"])
    if type(cycle_start) is not int or not 0 <= cycle_start <= len(steps):
        raise TraceError(f"the trace's cycle_start {cycle_start!r} is not a step of the run "
                         f"(0 to {len(steps)})")
    states = [start]
    for st in steps:
        states.append(kernel.apply(states[-1], st.event)[0])
    got = check_lasso(kernel, prop, states, [st.event for st in steps], cycle_start)
    return (got, None) if isinstance(got, Violation) else (None, got)


def initial_values(kernel: Kernel, state: State) -> dict[str, dict[str, Any]]:
    return {inst.name: kernel.local_values(state, inst.name) for inst in kernel.instances}
