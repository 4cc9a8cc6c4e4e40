"""Liveness in a simulated run: a *suspected* violation is a lasso the run itself walked.

A finite run cannot show that something never happens, and so cannot show that a liveness
property holds.  What it can show is a run that comes back to a global state it has been in:
the events between the two visits form a cycle that can repeat forever.  When that lasso —
the run up to the first visit, then the cycle — is a behaviour under the kernel's fairness
and breaks a property (◇q: q nowhere on it; □◇q: q nowhere on the cycle; p ~> q: p, then q
never again), the run has walked a counterexample.  The same holds for a run that ends where
nothing but faults is enabled (it stops there: an empty cycle).  Whether a lasso is one is
decided by `assay.kernel.liveness.check_lasso`, the definition `check` and `replay` use; this
module only finds candidates cheaply and hands them over.

The verdict is "suspected": `assay replay` confirms the lasso on the checker's kernel, but
the simulator ignores `@s.constraint` and injects faults without a budget, so whether the
property fails as `check` would decide it (within the constraint, with the budget given) is
`check`'s to say.  A run with no such lasso says nothing: liveness is then "not covered".

Cost: nothing for a system without liveness properties (no tracker is made).  With them, each
step looks up the predicates' values of the new state (memoised per state for all the runs of
a kernel) and the state's last visit in this run; only a revisit whose cycle already breaks a
property by those values is given to `check_lasso` (its cycle, as sets of states and events,
is remembered when fairness rejects it, so a run going round the same unfair cycle pays
once).  A run reports the first lasso it walks and stops looking.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assay.kernel.kernel import Kernel, State
from assay.kernel.liveness import can_stop, check_lasso
from assay.kernel.violation import Violation
from assay.model.system import Property

NORMAL = ("deliver", "action", "timer")


def cycle_faults(events: list[dict[str, Any]], cycle_start: Any) -> str | None:
    """When the cycle of a lasso (trace events, the cycle from `cycle_start`) injects
    faults of a fault budget (crash, drop, duplicate, partition): a note that the lasso
    repeats them forever, a behaviour no finite budget has (`check --faults` never explores
    it: under finitely many faults the property may hold).  None otherwise."""
    from assay.kernel.trace import BUDGETED

    if type(cycle_start) is not int:
        return None
    kinds: dict[str, int] = {}
    for e in events[cycle_start:]:
        k = e.get("kind") if isinstance(e, dict) else None
        if k in BUDGETED:
            kinds[str(k)] = kinds.get(str(k), 0) + 1
    if not kinds:
        return None
    what = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return (f"its cycle injects faults each time round ({what}): the lasso needs infinitely "
            "many of them, which no fault budget allows (`assay check --faults` never "
            "explores it); with finitely many faults the property may hold")


@dataclass(frozen=True)
class Suspect:
    """A lasso a run walked that breaks a liveness property: `events` from the run's initial
    state; the cycle is `events[cycle_start:]` (empty: the run stops in its last state)."""

    prop: Property
    violation: Violation
    events: tuple[int, ...]
    cycle_start: int


@dataclass
class LassoMemo:
    """What the runs of one kernel share, for speed only (a run's verdict never depends on
    it): the liveness predicates' values per state, and the cycles found unfair."""

    kernel: Kernel
    props: tuple[Property, ...] = ()
    # per state: (property index, Q if q holds there, P if p does and q does not), ...
    marks: dict[State, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    rejected: set[Any] = field(default_factory=set)
    checked: int = 0                       # lassos given to check_lasso (for measurements)

    def __post_init__(self) -> None:
        self.props = tuple(self.kernel.system.liveness)

    def mark(self, state: State) -> tuple[tuple[int, int], ...]:
        """(property index, Q or P) for each property whose q (or, for leads_to, p without
        q) holds in `state`."""
        got = self.marks.get(state)
        if got is None:
            out = []
            for i, p in enumerate(self.props):
                what = f"property {p.name!r}"
                if self.kernel.evaluate(p.fn, state, what, p.location):
                    out.append((i, Q))
                elif p.trigger is not None and self.kernel.evaluate(p.trigger, state, what,
                                                                    p.location):
                    out.append((i, P))
            got = self.marks[state] = tuple(out)
        return got


Q, P = 1, 2
EVENTUALLY, ALWAYS_EVENTUALLY, LEADS_TO = 0, 1, 2
KINDS = {"eventually": EVENTUALLY, "always_eventually": ALWAYS_EVENTUALLY,
         "leads_to": LEADS_TO}


class Tracker:
    """One run's watch for a lasso: `step` after every event, `stop` when the run ends
    because nothing changes any more."""

    def __init__(self, memo: LassoMemo, start: State, events: list[int]) -> None:
        self.memo = memo
        self.kernel = memo.kernel
        self.marks = memo.marks
        self.states: list[State] = [start]
        self.events = events                              # the run's own list: shared
        self.last: dict[State, int] = {start: 0}         # a state's last visit in this run
        n = len(memo.props)
        self.last_q = [-1] * n                            # the last index where q held
        self.last_p = [-1] * n                            # leads_to: where p last held
        self.indices = range(n)
        self.kinds = [KINDS[p.kind] for p in memo.props]
        self._note(0, start)

    def _note(self, index: int, state: State) -> None:
        marks = self.marks.get(state)
        if marks is None:
            marks = self.memo.mark(state)
        for i, m in marks:
            if m == Q:
                self.last_q[i] = index
            else:
                self.last_p[i] = index

    def _breaks(self, i: int, k: int) -> bool:
        """Whether, by the predicates' values, the lasso whose cycle starts at `k` breaks
        property i (what `check_lasso` will decide again): ◇q — q nowhere on the run;
        □◇q — q nowhere on the cycle; p ~> q — q nowhere on the cycle and p somewhere after
        the last q."""
        lq = self.last_q[i]
        if lq >= k:
            return False
        kind = self.kinds[i]
        return kind == ALWAYS_EVENTUALLY or kind == EVENTUALLY and lq < 0 \
            or kind == LEADS_TO and self.last_p[i] > lq

    def step(self, state: State) -> Suspect | None:
        """The run took its latest event (the last of `events`) and is now in `state`: the
        lasso it closes, if it breaks a property.  (The hot path: a memo lookup and a dict
        operation when it closes nothing that breaks a property.)"""
        states = self.states
        n = len(states)
        states.append(state)
        marks = self.marks.get(state)
        if marks is None:
            marks = self.memo.mark(state)
        if marks:
            for i, m in marks:
                if m == Q:
                    self.last_q[i] = n
                else:
                    self.last_p[i] = n
        last = self.last
        k = last.get(state)
        last[state] = n
        if k is None:
            return None
        last_q = self.last_q
        for i in self.indices:
            if last_q[i] < k and self._breaks(i, k):
                got = self._judge(i, k)
                if got is not None:
                    return got
        return None

    def stop(self) -> Suspect | None:
        """The run ended in a state where nothing changes any more: a behaviour either stops
        there (nothing but faults enabled) or repeats the steps that change nothing."""
        n = len(self.events)
        state = self.states[-1]
        for i in range(len(self.memo.props)):
            if not self._breaks(i, n):
                continue
            if can_stop(self.kernel, state):
                got = self._confirm(i, self.states, self.events, n)
            else:
                loops = self._self_loops(state, set())
                got = self._confirm(i, self.states + [state] * len(loops),
                                    self.events + loops, n) if loops else None
            if got is not None:
                return got
        return None

    # --- confirming a candidate -----------------------------------------------------------

    def _judge(self, i: int, k: int) -> Suspect | None:
        n = len(self.events)
        cycle_states, cycle_events = self.states[k:n], self.events[k:n]
        key = (i, frozenset(cycle_states), frozenset(cycle_events))
        memo = self.memo
        if key in memo.rejected:
            return None
        got = self._confirm(i, self.states, self.events, k)
        if got is None:
            # a fair cycle may need steps that change nothing (the run never takes them):
            # a delivery or action enabled along the cycle that loops back to its state
            taken = {t[0] for t in map(self.kernel.fair_task, cycle_events) if t is not None}
            states, events = list(self.states[:k + 1]), list(self.events[:k])
            added = False
            for j in range(k, n):
                loops = self._self_loops(self.states[j], taken)
                if loops:
                    added = True
                    taken |= {t[0] for t in map(self.kernel.fair_task, loops)
                              if t is not None}
                    events += loops
                    states += [self.states[j]] * len(loops)
                events.append(self.events[j])
                states.append(self.states[j + 1])
            if added:
                got = self._confirm(i, states, events, k)
        if got is None:
            memo.rejected.add(key)
        return got

    def _self_loops(self, state: State, taken: set[Any]) -> list[int]:
        """The fair events enabled in `state` that lead back to it without a violation and
        whose task is not in `taken`, in a canonical order (the same in every process)."""
        kernel = self.kernel
        out = []
        for ev in kernel.enabled_events(state):
            t = kernel.fair_task(ev)
            if t is None or t[0] in taken or kernel.event_kind(ev) not in NORMAL:
                continue
            nxt, _, viol = kernel.apply(state, ev)
            if nxt == state and not viol:
                out.append(ev)
        out.sort(key=kernel.event_key)
        return out

    def _confirm(self, i: int, states: list[State], events: list[int],
                 k: int) -> Suspect | None:
        """`check_lasso` on the lasso, then on it with the prefix made a simple path (loops
        the run made before the cycle cut out), which is kept if it still breaks the
        property."""
        prop = self.memo.props[i]
        self.memo.checked += 1
        got = check_lasso(self.kernel, prop, states, events, k)
        if not isinstance(got, Violation):
            return None
        ps, pe = _simple_path(states[:k + 1], events[:k])
        if len(pe) < k:
            short_states, short_events = ps + states[k + 1:], pe + events[k:]
            again = check_lasso(self.kernel, prop, short_states, short_events, len(pe))
            if isinstance(again, Violation):
                return Suspect(prop, again, tuple(short_events), len(pe))
        return Suspect(prop, got, tuple(events), k)


def _simple_path(states: list[State], events: list[int]) -> tuple[list[State], list[int]]:
    """The path `states` (joined by `events`) with every loop cut out: from the same first
    state to the same last one, visiting no state twice."""
    ps: list[State] = [states[0]]
    pe: list[int] = []
    where = {states[0]: 0}
    for ev, s in zip(events, states[1:]):
        at = where.get(s)
        if at is not None:
            for gone in ps[at + 1:]:
                del where[gone]
            del ps[at + 1:]
            del pe[at:]
        else:
            where[s] = len(ps)
            ps.append(s)
            pe.append(ev)
    return ps, pe
