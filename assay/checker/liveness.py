"""Liveness on the explored graph: ◇q, □◇q and p ~> q under fairness, decided exactly.

Once the safety search has explored every reachable state without a violation, the reachable
graph is built again with every enabled event as an edge — self-loops included, since a fair
cycle may consist of one delivery that changes nothing — and for each liveness property:

1. the *region*: the states where q does not hold that a violating behaviour can be in — for
   ◇q those reachable from an initial ¬q state through ¬q states; for p ~> q those reachable
   through ¬q states from a state with p ∧ ¬q; for □◇q every ¬q state;
2. its *bad ends*: states of the region where a behaviour may stop (nothing but faults is
   enabled), and the fair strongly connected components of the region: Tarjan's SCCs, each
   held against the fairness conditions (a Streett condition, decided as Emerson and Lei do): a
   weakly fair task enabled in every state of a component but taken on none of its edges rules
   the component out; a strongly fair task enabled somewhere in it but never taken removes the
   states that enable it, and what is left is decomposed again;
3. a shortest prefix to the nearest bad end (breadth-first; for p ~> q over the product
   "before / after the trigger"), and a cycle inside the component through one edge of each
   task fairness demands and, for a weak task enabled only in part of it, a state where that
   task is disabled.

A lasso is confirmed by `assay.kernel.liveness.check_lasso` — the definition `assay replay`
uses too — before it is reported; one that the definition rejects would be a bug here, and is
raised as one.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from assay.checker.search import Search
from assay.kernel.kernel import Kernel, State
from assay.kernel.liveness import can_stop, check_lasso
from assay.kernel.violation import Violation
from assay.model.system import Property

Edge = tuple[int, int]                 # (event, successor's node id)


@dataclass
class Graph:
    """The reachable graph: node ids index `states`; `succ[i]` every enabled event of node i
    with the node it leads to."""

    states: list[State]
    succ: list[list[Edge]]
    initial: list[int]
    seconds: float


@dataclass(frozen=True)
class Lasso:
    """A counterexample to a liveness property: `events` from `start`; the cycle is
    `events[cycle_start:]` (empty: the run stops in its last state)."""

    violation: Violation
    start: State
    events: tuple[int, ...]
    cycle_start: int


def build_graph(kernel: Kernel, search: Search,
                canon: Callable[[State], State] | None = None) -> Graph:
    """Every reachable state and every enabled event (the same states the safety search saw:
    this runs only after it finished).  With `canon` (a symmetry's representative), the
    quotient graph: every reachable representative and, per event enabled there, the
    representative of its successor (`symmetric_liveness`)."""
    started = time.perf_counter()
    search.phase = "liveness"           # progress reports say so: the counts stay the search's
    index: dict[State, int] = {}
    states: list[State] = []
    initial: list[int] = []
    for s, _ in kernel.initial_states():
        if canon is not None:
            s = canon(s)
        if s not in index:
            index[s] = len(states)
            states.append(s)
            initial.append(index[s])
    succ: list[list[Edge]] = []
    enabled, apply = kernel.enabled_events, kernel.apply
    within = kernel.within if kernel.system.constraints else None
    i = 0
    while i < len(states):
        s = states[i]
        out: list[Edge] = []
        if within is not None and not within(s):     # beyond a constraint: not explored
            succ.append(out)
            i += 1
            continue
        for ev in enabled(s):
            t = apply(s, ev)[0]
            if canon is not None:
                t = canon(t)
            j = index.get(t)
            if j is None:
                j = index[t] = len(states)
                states.append(t)
            out.append((ev, j))
        succ.append(out)
        i += 1
        if not i & 0x3FF:
            search.tick(len(states) - i)
    return Graph(states, succ, initial, time.perf_counter() - started)


def fair_tasks(kernel: Kernel, graph: Graph) -> _Tasks:
    """The fairness bookkeeping of a graph, to share between its properties."""
    return _Tasks(kernel, graph)


class _Tasks:
    """The fair tasks of the graph as small ints: per edge event its task, per node the tasks
    enabled there (weak and strong apart)."""

    def __init__(self, kernel: Kernel, graph: Graph) -> None:
        self.kernel = kernel
        self.graph = graph
        self.ids: dict[object, int] = {}
        self.strength: list[int] = []
        self._of_event: dict[int, int] = {}
        self._enabled: dict[int, frozenset[int]] = {}

    def of(self, ev: int) -> int:
        """The task id of an event, -1 for none."""
        t = self._of_event.get(ev)
        if t is None:
            ft = self.kernel.fair_task(ev)
            if ft is None:
                t = -1
            else:
                t = self.ids.get(ft[0], -1)
                if t < 0:
                    t = self.ids[ft[0]] = len(self.strength)
                    self.strength.append(ft[1])
            self._of_event[ev] = t
        return t

    def enabled(self, node: int) -> frozenset[int]:
        got = self._enabled.get(node)
        if got is None:
            got = self._enabled[node] = frozenset(
                t for ev, _ in self.graph.succ[node] if (t := self.of(ev)) >= 0)
        return got


def _sccs(graph: Graph, nodes: Iterable[int], inside: set[int]) -> list[list[int]]:
    """Tarjan's strongly connected components of the subgraph induced by `inside` (started
    from `nodes`), iteratively."""
    succ = graph.succ
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, k = work[-1]
            edges = succ[v]
            while k < len(edges):
                w = edges[k][1]
                k += 1
                if w not in inside:
                    continue
                if w not in index:
                    work[-1] = (v, k)
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, 0))
                    break
                if w in on_stack and index[w] < low[v]:
                    low[v] = index[w]
            else:
                work.pop()
                if work:
                    u = work[-1][0]
                    if low[v] < low[u]:
                        low[u] = low[v]
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    out.append(comp)
    return out


def _fair_components(graph: Graph, tasks: _Tasks, comp: list[int]) -> list[list[int]]:
    """The fair sub-components of one strongly connected component (Emerson–Lei)."""
    inside = set(comp)
    succ = graph.succ
    taken: set[int] = set()
    cyclic = len(comp) > 1
    for v in comp:
        for ev, w in succ[v]:
            if w in inside:
                t = tasks.of(ev)
                if t >= 0:
                    taken.add(t)
                if w == v:
                    cyclic = True
    if not cyclic:
        return []
    strength = tasks.strength
    everywhere: frozenset[int] | None = None
    somewhere: set[int] = set()
    for v in comp:
        en = tasks.enabled(v)
        everywhere = en if everywhere is None else everywhere & en
        somewhere |= en
    assert everywhere is not None
    if any(strength[t] == 1 for t in everywhere - taken):
        return []                       # no part of it is fair either
    bad = {t for t in somewhere - taken if strength[t] == 2}
    if not bad:
        return [comp]
    rest = [v for v in comp if not tasks.enabled(v) & bad]
    out = []
    for sub in _sccs(graph, rest, set(rest)):
        out.extend(_fair_components(graph, tasks, sub))
    return out


def check_liveness(kernel: Kernel, graph: Graph, prop: Property,
                   tasks: _Tasks | None = None) -> Lasso | None:
    """A shortest-prefix lasso violating `prop`, or None when it holds on `graph`.  `tasks`
    (from `fair_tasks`) may be shared by the properties of one graph."""
    found = lasso_candidate(kernel, graph, prop, tasks)
    if found is None:
        return None
    first, prefix, cycle = found
    states = graph.states
    events = tuple(ev for ev, _ in prefix) + tuple(ev for ev, _ in cycle)
    path = [states[first]] + [states[v] for _, v in prefix] + [states[v] for _, v in cycle]
    got = check_lasso(kernel, prop, path, events, len(prefix))
    if not isinstance(got, Violation):
        raise AssertionError(f"liveness: the lasso found for {prop.name!r} is rejected: {got}")
    return Lasso(got, states[first], events, len(prefix))


def lasso_candidate(kernel: Kernel, graph: Graph, prop: Property,
                    tasks: _Tasks | None = None) -> tuple[int, list[Edge], list[Edge]] | None:
    """A shortest-prefix lasso of `graph` violating `prop` as `graph`'s fairness bookkeeping
    (`tasks`; a subclass may say what a task is: `symmetric_liveness.OrbitTasks`) sees it:
    (its initial node, the prefix's edges, the cycle's edges — empty: the run stops), or None
    when there is none.  Not confirmed: `check_liveness` confirms it on a graph of states."""
    tasks = tasks or _Tasks(kernel, graph)
    triggers, region, ends = bad_ends(kernel, graph, prop, tasks)
    if not ends:
        return None
    first, prefix, entry = prefix_to(graph, prop.kind, triggers, region, ends)
    fair_comp = ends[entry]
    cycle = [] if fair_comp is None else fair_cycle(graph, tasks, fair_comp, entry)
    return first, prefix, cycle


def bad_ends(kernel: Kernel, graph: Graph, prop: Property, tasks: _Tasks
             ) -> tuple[list[int], set[int], dict[int, list[int] | None]]:
    """The triggers of `prop` in `graph`, its region, and its bad ends: each node of the
    region where a behaviour may stop (None) or that is in a fair component (the component)."""
    states, succ = graph.states, graph.succ

    def holds(fn: Callable, node: int) -> bool:
        return kernel.evaluate(fn, states[node], f"property {prop.name!r}", prop.location)

    n = len(states)
    not_q = [not holds(prop.fn, i) for i in range(n)]
    if prop.kind == "eventually":
        triggers = [i for i in graph.initial if not_q[i]]
    elif prop.kind == "leads_to":
        assert prop.trigger is not None
        triggers = [i for i in range(n) if not_q[i] and holds(prop.trigger, i)]
    else:                                           # always_eventually
        triggers = [i for i in range(n) if not_q[i]]
    region: set[int] = set(triggers)
    todo = list(triggers)
    while todo:
        v = todo.pop()
        for _, w in succ[v]:
            if not_q[w] and w not in region:
                region.add(w)
                todo.append(w)
    ends: dict[int, list[int] | None] = {v: None for v in region
                                         if can_stop(kernel, states[v])}
    for comp in _sccs(graph, sorted(region), region):
        for fair in _fair_components(graph, tasks, comp):
            for v in fair:
                ends.setdefault(v, fair)
    return triggers, region, ends


def prefix_to(graph: Graph, kind: str, triggers: list[int], region: set[int],
              ends: dict[int, list[int] | None]) -> tuple[int, list[Edge], int]:
    """A shortest path from an initial node to a bad end, inside the region once the trigger
    has been met (from the start, for ◇q): (its initial node, its edges, the bad end).
    Breadth-first over (node, phase)."""
    parent, found = prefix_search(graph, kind, triggers, region, ends, every=False)
    assert found, "a bad end of the region is reachable by construction"
    first, path = prefix_path(parent, found[0])
    return first, path, found[0]


Parents = dict[tuple[int, int], tuple[tuple[int, int], int | None] | None]


def prefix_search(graph: Graph, kind: str, triggers: list[int], region: set[int],
                  ends: dict[int, list[int] | None], every: bool = True
                  ) -> tuple[Parents, list[int]]:
    """`prefix_to`'s breadth-first search: its parents, and the bad ends it reached in the
    order it reached them (nearest first; only the first unless `every`)."""
    succ = graph.succ
    trigger_set = set(triggers)
    # (node, phase) -> (where from, by which event; None: meeting the trigger, no step)
    parent: Parents = {}
    queue: deque[tuple[int, int]] = deque()
    first_phase = 1 if kind == "eventually" else 0
    for i in graph.initial:
        key = (i, first_phase)
        if first_phase == 1 and i not in region:
            continue
        if key not in parent:
            parent[key] = None
            queue.append(key)
    found: list[int] = []
    while queue:
        v, phase = queue.popleft()
        if phase == 0 and v in trigger_set and (v, 1) not in parent:
            parent[(v, 1)] = ((v, 0), None)         # meeting the trigger costs no step
            queue.appendleft((v, 1))
        if phase == 1 and v in ends:
            found.append(v)
            if not every:
                break
        for ev, w in succ[v]:
            if phase == 1 and w not in region:
                continue
            key = (w, phase)
            if key not in parent:
                parent[key] = ((v, phase), ev)
                queue.append(key)
    return parent, found


def prefix_path(parent: Parents, end: int) -> tuple[int, list[Edge]]:
    """The path `prefix_search` found to the bad end `end`: (its initial node, its edges)."""
    path: list[Edge] = []
    node: tuple[int, int] = (end, 1)
    while True:
        link = parent[node]
        if link is None:
            break
        prev, by = link
        if by is not None:
            path.append((by, node[0]))
        node = prev
    path.reverse()
    return node[0], path


def _path(graph: Graph, inside: set[int], a: int, b: int) -> list[Edge]:
    """A shortest path from a to b inside a component (empty when a == b)."""
    if a == b:
        return []
    parent: dict[int, tuple[int, int]] = {a: (a, 0)}
    queue = deque([a])
    while queue:
        v = queue.popleft()
        for ev, w in graph.succ[v]:
            if w in inside and w not in parent:
                parent[w] = (v, ev)
                if w == b:
                    out = []
                    while w != a:
                        p, e = parent[w]
                        out.append((e, w))
                        w = p
                    out.reverse()
                    return out
                queue.append(w)
    raise AssertionError("a strongly connected component is connected")


def fair_cycle(graph: Graph, tasks: _Tasks, comp: list[int], entry: int) -> list[Edge]:
    """A cycle from `entry` back to it inside the fair component `comp`, fair by itself:
    through an edge of every task fairness demands, and past a state disabling every weak
    task that would otherwise stay enabled along it."""
    inside = set(comp)
    succ = graph.succ
    strength = tasks.strength
    edge_of: dict[int, tuple[int, int, int]] = {}         # task -> (from, event, to)
    for v in comp:
        for ev, w in succ[v]:
            if w in inside:
                t = tasks.of(ev)
                if t >= 0:
                    edge_of.setdefault(t, (v, ev, w))
    everywhere: frozenset[int] | None = None
    somewhere: set[int] = set()
    for v in comp:
        en = tasks.enabled(v)
        everywhere = en if everywhere is None else everywhere & en
        somewhere |= en
    assert everywhere is not None
    demanded = sorted({t for t in everywhere if strength[t] == 1}
                      | {t for t in somewhere if strength[t] == 2})
    visit: list[int] = []                                 # states to pass (weak tasks)
    while True:
        tour: list[Edge] = []
        at = entry
        for t in demanded:
            u, ev, w = edge_of[t]
            tour += _path(graph, inside, at, u) + [(ev, w)]
            at = w
        for v in visit:
            tour += _path(graph, inside, at, v)
            at = v
        tour += _path(graph, inside, at, entry)
        if not tour:                                      # nothing demanded: any cycle
            best = min(((ev, w) for ev, w in succ[entry] if w in inside),
                       key=lambda e: len(_path(graph, inside, e[1], entry)))
            tour = [best] + _path(graph, inside, best[1], entry)
        on_cycle = [entry] + [w for _, w in tour[:-1]]
        taken = {t for ev, _ in tour if (t := tasks.of(ev)) >= 0}
        stuck = None
        common = frozenset.intersection(*(tasks.enabled(v) for v in on_cycle))
        for t in sorted(common - taken):
            if strength[t] == 1:
                stuck = t
                break
        if stuck is None:
            return tour
        visit.append(next(v for v in comp if stuck not in tasks.enabled(v)))
