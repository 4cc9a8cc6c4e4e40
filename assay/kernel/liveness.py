"""What a liveness counterexample is, in one place.

A liveness counterexample is a *lasso*: a run from an initial state (the prefix) followed by a
cycle repeated forever — or, when the cycle is empty, a final state where the run stops
because nothing but faults is enabled there (stuttering, as SPIN and TLC report a deadlock
against ◇q).  This module says when a lasso is a behaviour at all under the kernel's fairness
(`Kernel.fair_task`) and when it breaks a property:

* ◇q (`eventually`): q holds on no state of the lasso;
* □◇q (`always_eventually`): q holds on no state of the cycle;
* p ~> q (`leads_to`): some state has p and not q, and q holds on no later state (the
  cycle included).

A cycle repeated forever is fair when every weakly fair task that is enabled at every state
of the cycle is taken on it, and every strongly fair task enabled at some state of the cycle
is taken on it.  Behaviours never stop while an event other than a fault is enabled (the
scheduler is not allowed to idle), whatever the fairness; with fairness "none" any cycle is a
behaviour.

The checker finds lassos on the explored graph (`assay.checker.liveness`) and confirms each
one here before it reports it; `assay replay` confirms a trace's lasso here too.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assay.kernel.kernel import Kernel, State
from assay.kernel.violation import Violation
from assay.model.system import Property

LIVENESS_KINDS = ("eventually", "always_eventually", "leads_to")


def enabled_tasks(kernel: Kernel, state: State) -> dict[Any, tuple[int, int]]:
    """The fair tasks enabled in `state`: task key -> (strength, one of its events)."""
    out: dict[Any, tuple[int, int]] = {}
    for ev in kernel.enabled_events(state):
        t = kernel.fair_task(ev)
        if t is not None:
            out.setdefault(t[0], (t[1], ev))
    return out


def unfair(kernel: Kernel, cycle_states: Sequence[State], cycle_events: Sequence[int]
           ) -> str | None:
    """Why repeating the cycle forever is not a fair behaviour, or None when it is fair.
    `cycle_states[j]` is the state before `cycle_events[j]`."""
    taken = set()
    for ev in cycle_events:
        t = kernel.fair_task(ev)
        if t is not None:
            taken.add(t[0])
    per_state = [enabled_tasks(kernel, s) for s in cycle_states]
    everywhere = set(per_state[0]) if per_state else set()
    for tasks in per_state[1:]:
        everywhere &= tasks.keys()
    somewhere: dict[Any, tuple[int, int]] = {}
    for tasks in per_state:
        somewhere.update(tasks)
    for key, (strength, ev) in sorted(somewhere.items(), key=lambda kv: kv[1][1]):
        if key in taken:
            continue
        if strength == 1 and key in everywhere:
            return (f"{kernel.describe(ev)} stays enabled along the cycle but is never taken: "
                    "weak fairness rules the cycle out")
        if strength == 2:
            return (f"{kernel.describe(ev)} is enabled on the cycle but never taken: strong "
                    "fairness rules the cycle out")
    return None


def can_stop(kernel: Kernel, state: State) -> bool:
    """Whether a behaviour may end (stutter forever) in `state`: nothing but faults is
    enabled there — or `state` is outside an `@s.constraint`, where `check` cuts every
    behaviour (it explores nothing beyond; as TLC, the cut behaviour stops there)."""
    return not kernel.can_progress(state) or bool(kernel.system.constraints) \
        and not kernel.within(state)


def check_lasso(kernel: Kernel, prop: Property, states: Sequence[State],
                events: Sequence[int], cycle_start: int) -> Violation | str:
    """The violation of `prop` this lasso shows, or why it shows none.

    `states[0]` is an initial state and `states[j]` the state after `events[j - 1]`; the cycle
    is `events[cycle_start:]`, which must lead from `states[cycle_start]` back to it (an empty
    cycle: the run stops in its last state)."""
    n = len(events)
    if len(states) != n + 1 or not 0 <= cycle_start <= n:
        return "the lasso is malformed"
    if cycle_start == n:
        if not can_stop(kernel, states[n]):
            return ("the run stops where an event other than a fault is enabled: "
                    "a behaviour does not end there")
        shape = "stops in a state where"
    else:
        if states[cycle_start] != states[n]:
            return (f"the cycle does not close: the state after step {n} is not the state "
                    f"after step {cycle_start}")
        why = unfair(kernel, states[cycle_start:n], events[cycle_start:n])
        if why is not None:
            return why
        shape = "repeats a cycle where"

    def q(s: State) -> bool:
        return kernel.evaluate(prop.fn, s, f"property {prop.name!r}", prop.location)

    if prop.kind == "eventually":
        if any(q(s) for s in states):
            return "it holds on the run"
        what = f"it never holds: the run {shape} it does not"
    elif prop.kind == "always_eventually":
        if any(q(s) for s in states[cycle_start:]):
            return "it holds on the cycle"
        what = f"it stops holding for good: the run {shape} it does not"
    elif prop.kind == "leads_to":
        trigger = prop.trigger
        assert trigger is not None
        start = next((i for i, s in enumerate(states) if kernel.evaluate(
            trigger, s, f"property {prop.name!r}", prop.location)
            and not any(q(t) for t in states[min(i, cycle_start):])), None)
        if start is None:
            return "no state of the run has p without q holding then or later"
        what = (f"p holds after step {start} but q never does from there: the run {shape} "
                "q does not")
    else:
        return f"{prop.name} is not a liveness property"
    return Violation("liveness", prop.name,
                     f"liveness property {prop.name!r} ({prop.formula}) does not hold: {what}",
                     name=prop.name, location=prop.location)
