"""Liveness under symmetry reduction: decided on the graph of orbits, confirmed concretely.

With `s.symmetric(...)` groups and liveness properties, `check` builds the *quotient graph* Q:
one node per representative (`Symmetry.canon`), and from a representative r an edge
r --e--> canon(t) for every event e enabled at r with successor t (self-loops included).  Each
quotient edge stands for a concrete edge up to a permutation τ (`Symmetry.representative`
returns it: canon(t) = τ(t)); the permutations are not stored, only recomputed along a lasso.

**Tasks by orbit.**  A fair task (`Kernel.fair_task`: one envelope, one timer, one action of
one instance with one argument) is renamed by a permutation (`permute_task`); its *class* is
its orbit under the group (the closure under the group's transpositions), and all of an
orbit's tasks must have one strength.  Fairness in Q is read permissively, by class:

* a strong class is *enabled* at a node when some task of it is enabled there;
* a weak class is *enabled* at a node only when every task of its orbit is enabled there;
* an edge *takes* the class of its event's task.

The existing Emerson–Lei search (`liveness.lasso_candidate`) then runs on Q with these classes
(`OrbitTasks`).

**Why no candidate on Q means the property holds on the full graph G.**  Let ρ = s0 e0 s1 …
be a fair behaviour of G that violates a property P which is symmetric (P's predicates give
the same value on a state and on any permutation of it — spot-checked, `asymmetry`; a
property that names a member is refused here and decided on G).  Project it: q0 = canon(s0)
= τ0(s0), and q_i --τ_i(e_i)--> q_{i+1} = canon(τ_i(s_{i+1})) is an edge of Q, since the
members are interchangeable (enabled(τ s) = τ(enabled(s)), apply(τ s, τ e) = τ(apply(s, e))).
Each q_i is a permutation of s_i, so P's predicates have the same values along the projection,
the trigger and the region of P are met at the same steps, and a state where a behaviour may
stop projects to one (nothing but faults enabled is invariant).  If ρ stops, the projection
ends in a bad end of Q's region.  Otherwise the projection visits a set V of nodes and E of
edges infinitely often; V is strongly connected inside the region, so inside one of its SCCs
C.  Emerson–Lei removes C only for a weak class c enabled at every node of C (every task of
the orbit enabled) and taken on no edge of C: then every task of c is enabled at every s_i
from some point on (τ_i maps the orbit onto itself), and none is taken — ρ is not weakly fair.
It removes the nodes of C that enable a strong class c taken on no edge of C: were such a
node in V, some task of c would be enabled at infinitely many s_i (an orbit is finite), so
taken infinitely often by strong fairness, so c is taken on E ⊆ C.  By induction V stays in
a fair sub-component, and the search returns a candidate.  Contrapositive: no candidate on Q,
no fair violating behaviour of G.  (tests/test_symmetry_liveness.py checks this, reduced
against unreduced, on several specs and fairness variants.)

**A candidate is confirmed concretely.**  The permissive reading can accept a quotient cycle
that no concrete cycle realises fairly, so a candidate is only a candidate: `lift` replays
it from its initial state (a representative of an initial state is one: initial states are
closed under the group), keeping σ with concrete = σ(representative) (σ' = σ∘τ⁻¹ at each
step), taking the concrete event that reaches σ(t) — the one whose task is σ of the quotient
event's task where there is one.  The cycle is a path from c to π(c); repeated until the
concrete state is c again (at most the order of π times), it is a concrete cycle.  The lasso
is then checked exactly, property and fairness, by `kernel/liveness.check_lasso` (what
`assay replay` uses), and a real violation is reported, concrete and replayable.

**A candidate that is not is settled exactly on its component's orbits.**  When the unrolled
cycle is not fair (a member's weak task stays enabled along it, say), the states of the
orbits of the quotient component F are searched concretely from c, the concrete state the
prefix led to: every state reachable from c through states whose orbit invariant
(`Symmetry.invariant`, the same on a whole orbit) is one of F's and where the goal fails,
with the exact fairness of `liveness.py` (`_in_orbits`).  This is complete for F: the
infinitely visited part V of a fair violating behaviour projecting into F is, renamed by
some π, reachable from c that way (lift the quotient path from F's entry to V's projection
from c: it ends in π(V); π(V) is the infinitely visited part of π(ρ), fair and violating,
since fairness and the property are symmetric, and its orbits are F's).  A fair cycle found
there is a real lasso (confirmed again); none means F holds no violation, and the next
component is tried; when none is left, the property holds.  The full graph is built only
for a property that is not symmetric, or where the quotient cannot be used (an orbit of
tasks larger than ORBIT_CAP, fairness that tells members apart); the result says which
(`symmetry["liveness"]`, and a warning).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from assay.checker.liveness import (
    Edge,
    Graph,
    Lasso,
    _Tasks,
    bad_ends,
    build_graph,
    check_liveness,
    fair_cycle,
    fair_tasks,
    lasso_candidate,
    prefix_path,
    prefix_search,
)
from assay.checker.search import Search
from assay.checker.symmetry import Symmetry, _NamedWorld, rename_value
from assay.kernel.kernel import Kernel, State
from assay.kernel.liveness import check_lasso
from assay.kernel.violation import Violation
from assay.model.system import Property
from assay.model.types import exact_key

ORBIT_CAP = 20_000          # a task orbit larger than this: decided on the full graph
MAX_PASSES = 1_000          # passes around a quotient cycle to close it concretely

REDUCED = "on orbits"


class Unreduced(Exception):
    """The quotient cannot decide this: decide on the full graph, for the reason given."""


def permute_task(sym: Symmetry, ev: int, p: Sequence[int]) -> int:
    """The fair task `ev` (a delivery, a timer, an action: `Kernel.fair_task`'s key) with
    instance i renamed to p[i] everywhere, as an event id of the kernel."""
    k = sym.kernel
    if ev >= 0:
        return sym._renamed_env(ev, p)
    slot = k.slots[~ev]
    if slot[0] == "action":
        _, i, ai, has_arg, arg = slot
        arg2 = rename_value(arg, sym._mapping(p)) if has_arg else arg
        key = ("action", p[i], ai, has_arg, exact_key(arg2))
        sid = k.slot_ids.get(key)
        if sid is None:
            sid = k._slot_id(("action", p[i], ai, has_arg, arg2), key)
        return ~sid
    if slot[0] == "timer":
        return ~k._slot_id(("timer", sym._rename_timer(slot[1], p)))
    raise Unreduced(f"a fair event of kind {slot[0]!r} is not renamed by symmetry reduction")


class OrbitTasks(_Tasks):
    """Fairness bookkeeping of the quotient graph: a task's class is its orbit (see the
    module docstring: a weak class is enabled where its whole orbit is)."""

    def __init__(self, kernel: Kernel, graph: Graph, sym: Symmetry) -> None:
        super().__init__(kernel, graph)
        self.sym = sym
        self.size: list[int] = []                  # per class: the tasks of its orbit
        self._class_of: dict[int, int] = {}         # task event -> class

    def _class(self, task: int, strength: int) -> int:
        c = self._class_of.get(task)
        if c is not None:
            return c
        orbit = {task}
        todo = [task]
        while todo:
            e = todo.pop()
            for p in self.sym.perms:
                f = permute_task(self.sym, e, p)
                if f not in orbit:
                    orbit.add(f)
                    todo.append(f)
                    if len(orbit) > ORBIT_CAP:
                        raise Unreduced(f"the orbit of {self.kernel.describe(task)} has more "
                                        f"than {ORBIT_CAP:,} tasks")
        c = len(self.strength)
        self.strength.append(strength)
        self.size.append(len(orbit))
        for e in orbit:
            ft = self.kernel.fair_task(e)
            if ft is None or ft[1] != strength:
                raise Unreduced(f"fairness tells the members apart: {self.kernel.describe(e)} "
                                f"and {self.kernel.describe(task)}")
            self._class_of[e] = c
        return c

    def of(self, ev: int) -> int:
        t = self._of_event.get(ev)
        if t is None:
            ft = self.kernel.fair_task(ev)
            t = -1 if ft is None else self._class(ft[0], ft[1])
            self._of_event[ev] = t
        return t

    def enabled(self, node: int) -> frozenset[int]:
        got = self._enabled.get(node)
        if got is None:
            seen: dict[int, set[int]] = {}
            for ev, _ in self.graph.succ[node]:
                c = self.of(ev)
                if c >= 0:
                    ft = self.kernel.fair_task(ev)
                    assert ft is not None
                    seen.setdefault(c, set()).add(ft[0])
            strength, size = self.strength, self.size
            got = self._enabled[node] = frozenset(
                c for c, tasks in seen.items() if strength[c] == 2 or len(tasks) == size[c])
        return got


def build_quotient(kernel: Kernel, sym: Symmetry, search: Search) -> Graph:
    """The quotient graph: every reachable representative and, per event enabled there, the
    representative of its successor (`liveness.build_graph` with `sym.canon`)."""
    return build_graph(kernel, search, sym.canon)


def spot_permutations(sym: Symmetry) -> list[tuple[int, ...]]:
    """The permutations a property is compared under (`Symmetry.compared`)."""
    return sym.compared()[0]


Spots = list[tuple[State, list[State]]]


def spots(sym: Symmetry, graph: Graph) -> Spots:
    """The states of `graph` a property is compared on — every one, as the safety
    properties are (`Symmetry.judged`: a property may tell members apart only on states
    deep in the graph) — each with its permutations (`spot_permutations`) that differ from
    it."""
    perms = spot_permutations(sym)
    return [(s, [o for p in perms if (o := sym.permute(s, p)) != s]) for s in graph.states]


def asymmetry(sym: Symmetry, prop: Property, where: Spots) -> str | None:
    """Why `prop` is not symmetric — it reads a member by name, or tells a state from a
    permutation of it, on the states `where` —, or None."""
    k = sym.kernel
    what = f"property {prop.name!r}"
    fns = [prop.fn] + ([prop.trigger] if prop.trigger is not None else [])
    for s, others in where:
        for fn in fns:
            g = _NamedWorld(k, s, sym.member_names)
            base = k.evaluate(lambda _g, fn=fn, g=g: fn(g), s, what, prop.location)
            if g.named:
                return f"it reads {sorted(g.named)[0]!r} by name"
            for other in others:
                if k.evaluate(fn, other, what, prop.location) != base:
                    return ("it is not the same on a state and on that state with the "
                            "symmetric instances interchanged")
    return None


Walk = tuple[State, State, tuple[int, ...], tuple[State, ...], tuple[int, ...]]


def lift(kernel: Kernel, sym: Symmetry, graph: Graph, first: int, prefix: list[Edge],
         cycle: list[Edge], memo: dict[tuple[Any, ...], Walk] | None = None
         ) -> tuple[list[State], list[int]] | str:
    """The concrete lasso of a quotient lasso (states, events; its cycle starts after
    `len(prefix)` events), or why there is none.  `memo` keeps the prefixes lifted, for
    prefixes that share their beginnings (the paths of one breadth-first tree)."""
    states = graph.states
    q = conc = states[first]
    sigma = sym.identity
    path: list[State] = [conc]
    events: list[int] = []
    done = 0
    if memo is not None:
        for n in range(len(prefix), 0, -1):
            got = memo.get((first, *prefix[:n]))
            if got is not None:
                q, conc, sigma, walked, evs = got
                path, events, done = list(walked), list(evs), n
                break

    def step(ev: int, node: int) -> str | None:
        nonlocal q, conc, sigma
        t = kernel.apply(q, ev)[0]
        rep, tau = sym.representative(t)
        if rep != states[node]:
            return "a representative differs from the quotient's"
        target = sym.permute(t, sigma)
        task = kernel.fair_task(ev)
        want = permute_task(sym, task[0], sigma) if task is not None else None
        enabled = kernel.enabled_events(conc)
        pick = None
        if want is not None and want in enabled and kernel.apply(conc, want)[0] == target:
            pick = want
        else:
            for e2 in enabled:
                if kernel.apply(conc, e2)[0] != target:
                    continue
                ft = kernel.fair_task(e2)
                if want is None or ft is not None and ft[0] == want:
                    pick = e2
                    break
                if pick is None:
                    pick = e2
        if pick is None:
            return "no concrete step reaches the renamed successor"
        inverse = [0] * len(tau)
        for a, b in enumerate(tau):
            inverse[b] = a
        sigma = tuple(sigma[inverse[j]] for j in range(len(tau)))
        q, conc = rep, target
        path.append(conc)
        events.append(pick)
        return None

    for n in range(done, len(prefix)):
        ev, node = prefix[n]
        why = step(ev, node)
        if why is not None:
            return why
        if memo is not None:
            memo[(first, *prefix[:n + 1])] = (q, conc, sigma, tuple(path), tuple(events))
    if not cycle:
        return path, events
    start = conc
    for _ in range(MAX_PASSES):
        for ev, node in cycle:
            why = step(ev, node)
            if why is not None:
                return why
        if conc == start:
            return path, events
    return f"the cycle does not close within {MAX_PASSES:,} passes"


class Decider:
    """Decides the liveness properties of one exhausted search: on the quotient graph where
    `sym` is given and the property allows it, else (or when the quotient's candidate is not
    a fair concrete run) on the full graph.  `how[name]` says which, and why."""

    def __init__(self, kernel: Kernel, search: Search, sym: Symmetry | None) -> None:
        self.kernel, self.search, self.sym = kernel, search, sym
        self.how: dict[str, str] = {}
        self._full: tuple[Graph, _Tasks] | None = None
        self.quotient: Graph | None = None
        self._qtasks: OrbitTasks | None = None
        self._spots: Spots | None = None
        if sym is not None:
            self.quotient = build_quotient(kernel, sym, search)
            self._qtasks = OrbitTasks(kernel, self.quotient, sym)
        else:
            self.full()

    def full(self) -> tuple[Graph, _Tasks]:
        if self._full is None:
            graph = build_graph(self.kernel, self.search)
            self._full = (graph, fair_tasks(self.kernel, graph))
        return self._full

    def check(self, prop: Property) -> Lasso | None:
        """A lasso violating `prop` (concrete), or None when it holds."""
        if self.sym is not None:
            try:
                got = self._reduced(prop)
            except Unreduced as e:
                self.how[prop.name] = f"checked on every state: {e}"
            else:
                if not isinstance(got, str):
                    self.how[prop.name] = REDUCED
                    return got
                self.how[prop.name] = f"checked on every state: {got}"
        graph, tasks = self.full()
        return check_liveness(self.kernel, graph, prop, tasks)

    def _reduced(self, prop: Property) -> Lasso | None | str:
        """Decided on the quotient: a confirmed lasso, None (it holds), or why not."""
        sym, graph, tasks = self.sym, self.quotient, self._qtasks
        assert sym is not None and graph is not None and tasks is not None
        if self._spots is None:
            self._spots = spots(sym, graph)
        why = asymmetry(sym, prop, self._spots)
        if why is not None:
            return f"{prop.name!r} is not symmetric: {why}"
        kernel = self.kernel
        triggers, region, ends = bad_ends(kernel, graph, prop, tasks)
        if not ends:
            return None
        parent, found = prefix_search(graph, prop.kind, triggers, region, ends)
        tried: set[int] = set()          # first nodes of the components already settled
        memo: dict[tuple[Any, ...], Walk] = {}
        for entry in found:              # nearest first: each component at its nearest node
            comp = ends[entry]
            if comp is not None and comp[0] in tried:
                continue
            first, prefix = prefix_path(parent, entry)
            cycle = [] if comp is None or tried else fair_cycle(graph, tasks, comp, entry)
            got = lift(kernel, sym, graph, first, prefix, cycle, memo)
            if isinstance(got, str):
                return f"the lasso found on the orbits has no concrete counterpart ({got})"
            path, events = got
            verdict = check_lasso(kernel, prop, path, events, len(prefix))
            if isinstance(verdict, Violation):
                return Lasso(verdict, path[0], tuple(events), len(prefix))
            if comp is None:
                return (f"the lasso found on the orbits is not a violation when made concrete "
                        f"({verdict})")
            # the cycle unrolled is not fair (or, after the first component, not tried):
            # search the states of the component's orbits from where the prefix led, exactly
            n = len(prefix)
            inside = {sym.invariant(graph.states[v]) for v in comp}
            more = self._in_orbits(prop, path[n], inside)
            if more is not None:
                steps, cycle_start = more
                events = events[:n] + steps
                path = path[:n + 1]
                for ev in steps:
                    path.append(kernel.apply(path[-1], ev)[0])
                verdict = check_lasso(kernel, prop, path, events, n + cycle_start)
                if not isinstance(verdict, Violation):
                    return f"a lasso in the orbits of a component is not confirmed ({verdict})"
                return Lasso(verdict, path[0], tuple(events), n + cycle_start)
            tried.add(comp[0])
        return None

    def _in_orbits(self, prop: Property, start: State, inside: set[Any]
                   ) -> tuple[list[int], int] | None:
        """A fair cycle of states where `prop`'s goal fails, in the orbits whose invariant is
        in `inside`, reachable from `start` through them: (the events from `start`, where the
        cycle starts among them), or None when there is none."""
        kernel, sym = self.kernel, self.sym
        assert sym is not None
        what = f"property {prop.name!r}"

        within = kernel.within if kernel.system.constraints else None

        def member(s: State) -> bool:      # (beyond a constraint: not explored, as check)
            return sym.invariant(s) in inside and not kernel.evaluate(
                prop.fn, s, what, prop.location) and (within is None or within(s))

        index: dict[State, int] = {start: 0}
        states: list[State] = [start]
        succ: list[list[Edge]] = []
        expand = [True]
        i = 0
        while i < len(states):
            s = states[i]
            out: list[Edge] = []
            if expand[i]:
                for ev in kernel.enabled_events(s):
                    t = kernel.apply(s, ev)[0]
                    j = index.get(t)
                    if j is None:
                        j = index[t] = len(states)
                        states.append(t)
                        expand.append(member(t))
                    out.append((ev, j))
            succ.append(out)
            i += 1
            if not i & 0x3FF:
                self.search.tick(len(states) - i)
        sub = Graph(states, succ, [0], 0.0)
        # from `start` on, the goal must fail at every state: ◇q from `start`
        from_start = replace(prop, kind="eventually", trigger=None)
        got = lasso_candidate(kernel, sub, from_start, fair_tasks(kernel, sub))
        if got is None:
            return None
        _, prefix, cycle = got
        return [ev for ev, _ in prefix] + [ev for ev, _ in cycle], len(prefix)

    def summary(self) -> dict[str, Any]:
        """What the result's `symmetry` says of liveness."""
        return {"liveness": dict(self.how),
                "liveness_orbits": None if self.quotient is None else len(self.quotient.states)}
