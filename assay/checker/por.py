"""Partial-order reduction (`check --por`): a breadth-first search that expands, where it is
sound, only an *ample set* of a state's events — those of a set S of instances — instead of
every enabled event (Peled's conditions C0–C3).

Independence.  An event runs on one instance (`Kernel.event_owner`): it changes that
instance's local state and adds its sends to the network; a delivery also takes its own
message off.  Two events of different instances therefore commute and neither disables the
other on an unordered network (a multiset), a fifo one (a delivery takes a link's head, a
send appends to a tail) and a duplicating one.  Bounded links (a send can block another
send), lossy links, timers and faults (crash, partition: events of the network, not of one
instance) break that, and a search with them is not reduced.

C1 (persistence).  Any event of an instance depends on any other event of the same instance,
including the delivery of a message not sent yet: an ample set of S's events is only sound if
no path of other instances' events can send a message to S first.  `Por._closure` computes S
by a fixpoint over the system's links (instance j may send to k when a connection joins them,
unless the protocol of j's port, at the position of j's session with k — part of j's local
state —, allows no send any more: a send it does not allow is a violation, which stops the
search): the instances outside S that can move before S does are those with an enabled event
and those they can send to (and so on); while one of them can send to S it joins S. The
ample set is the enabled events of S; it reduces when it leaves out some instance's events.
Actors receive from anyone at any time, so in a system where every instance can reach every
other through the links, S grows to every active instance and nothing is reduced: POR helps
where parts of the system cannot hear each other (one-way clients, finished or independent
groups).

C2 (visibility).  Every event in a proper ample set is of an instance no `always` property
reads.  What the properties read is noted as they are evaluated (`Kernel.property_verdict`):
the search starts from the instances read in the initial states, and when an evaluation reads
an instance outside that set the search starts again with it added (at most once per
instance); a property that reads the network or the crashes stops the reduction (the search
is then done unreduced).  Every evaluation of the final search read only the visible
instances, so a property's verdict is a function of their local states, which every reordered
path reaches unchanged.  Deadlocks and violating steps (contracts, exceptions, protocols) need
no visibility: a state with nothing enabled, and a step of an instance from a local state,
are kept by any reordering of independent events.  Every step of an expanded state is still
checked for violations (the successors are computed anyway); only ample ones are followed.

C3 (cycle proviso, breadth-first).  A state is expanded fully when one of its ample successors
was visited before this level's expansion began, i.e. lies at its depth or less.  The state
of a cycle of the reduced graph expanded last has its successor on the cycle visited already,
at a depth no greater than its own (a state one level deeper is expanded after it): so every
cycle has a fully expanded state and no event is ignored forever.

It is off by default although sound: a breadth-first counterexample is otherwise a shortest
one, the reduced search keeps full states (more memory than `compact.py`), and on most specs
nothing is reduced (see tests/benchmarks/RESULTS.md).

Counterexamples are paths of the real system (the reduced graph is a subgraph of the full
one) and replay as any other, but need not be shortest.  State counts are of the reduced
graph.  The search keeps full states (as `bfs.py`, `--full-states`); state constraints,
`--keep-going`, symmetry, liveness, DFS and workers are not combined with it (`refusal`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from assay.checker.search import Outcome, Search, path_back
from assay.kernel.kernel import Kernel, State
from assay.kernel.violation import Violation


class NotReducible(Exception):
    """The search cannot be reduced after all (a property reads the network)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _Wider(Exception):
    """A property read an instance outside the visible set: search again with it."""

    def __init__(self, visible: int) -> None:
        super().__init__(visible)
        self.visible = visible


def refusal(kernel: Kernel, strategy: str, keep_going: bool, symmetric: bool,
            workers: int) -> str | None:
    """Why partial-order reduction cannot be applied to this check, or None."""
    if strategy != "bfs":
        return "it is implemented for the breadth-first search (not --dfs)"
    if keep_going:
        return "not with --keep-going (its counts are of every state)"
    if symmetric:
        return "not combined with symmetry reduction (add --no-symmetry)"
    if kernel.system.liveness:
        return ("liveness properties are decided on the whole graph (C2 for liveness and "
                "fairness is not implemented)")
    if workers > 1:
        return "the parallel search does not reduce (use one worker)"
    if kernel.extended:
        return ("timers or faults are not independent of other instances' events (a timer "
                "is in the global state; a crash or partition is an event of the network)")
    if kernel.channels:
        return ("bounded or lossy links: a send can block another instance's send, and a "
                "loss is an event of the network")
    if kernel.system.constraints:
        return "state constraints cut paths that a reordering would take"
    if kernel.system.hops:
        return ("interceptors on a connection: the links a message takes are the chain's "
                "hops, which the independence analysis does not model yet")
    if kernel.system.pools:
        return ("elastic pools: a spawn or retire changes which peers another instance "
                "reaches, which the independence analysis does not model yet")
    return None


@dataclass
class PorStats:
    reduced: int = 0          # states expanded with a proper ample set
    full: int = 0             # states expanded fully (no proper ample set)
    proviso: int = 0          # of those: a proper ample set existed, the cycle proviso (C3)


class Por:
    """The ample sets of one search, with `visible` the bitmask of the instances the
    properties may read."""

    def __init__(self, kernel: Kernel, visible: int) -> None:
        self.kernel = kernel
        self.visible = visible
        n = len(kernel.instances)
        self.n = n
        index = kernel.index
        # per instance, its links: (peer bit, session index or -1: the port has no protocol,
        # the automaton's states from which a send is still reachable)
        self._links: list[list[tuple[int, int, frozenset[int]]]] = [[] for _ in range(n)]
        sends_to = [0] * n
        for a, ap, b, _ in kernel.links:
            i, k = index[a], index[b]
            sends_to[i] |= 1 << k
            inst = kernel.instances[i]
            auto = inst.info.automata.get(ap)
            if auto is None:
                self._links[i].append((1 << k, -1, frozenset()))
            else:
                keys = inst.runner.session_keys
                self._links[i].append((1 << k, keys.index((ap, b)), _may_send(auto)))
        self.sends_to = sends_to              # the static graph (every link)
        self._protocols = any(j >= 0 for links in self._links for _, j, _ in links)
        self._masks: list[dict[int, int]] = [{} for _ in range(n)]
        self._memo: dict[Any, tuple[int, ...]] = {}   # -> the proper ample owner sets

    def _may_send_to(self, i: int, lid: int) -> int:
        """The instances instance i in local state `lid` may ever send to: over each link,
        unless the link's port has a protocol whose session with that peer can send no
        more (a send the protocol does not allow is a violation, which stops the search)."""
        mask = self._masks[i].get(lid)
        if mask is None:
            mask = 0
            sessions = None
            for bit, j, live in self._links[i]:
                if j >= 0:
                    if sessions is None:
                        sessions = self.kernel.instances[i].table.values[lid][-1]
                    if sessions[j] not in live:
                        continue
                mask |= bit
            self._masks[i][lid] = mask
        return mask

    def _closure(self, s_mask: int, active: int, sends_to: tuple[int, ...]) -> int:
        """The smallest S containing `s_mask` such that no instance that can move before S
        (an active one outside S, or one such an instance can send to) can send to S."""
        while True:
            outside = ~s_mask
            moving = active & outside
            frontier = moving
            while frontier:                       # everything `moving` can reach, avoiding S
                nxt = 0
                m = frontier
                while m:
                    low = m & -m
                    nxt |= sends_to[low.bit_length() - 1]
                    m ^= low
                nxt &= outside & ~moving
                moving |= nxt
                frontier = nxt
            bad = 0
            m = moving
            while m:
                low = m & -m
                if sends_to[low.bit_length() - 1] & s_mask:
                    bad |= low
                m ^= low
            if not bad:
                return s_mask
            s_mask |= bad

    def owners(self, locals_: tuple[int, ...], active: int, who: list[int]) -> int:
        """The instances whose enabled events form the ample set (a bitmask; 0: expand every
        event).  `active`: the instances with an enabled event that moves; `who`: the
        instance of each such event.  The set with the fewest events, the first found (the
        lowest instance) on a tie."""
        if self._protocols:
            may = self._may_send_to
            sends_to = tuple(may(i, lid) for i, lid in enumerate(locals_))
            key: Any = (active, sends_to)
        else:
            sends_to = tuple(self.sends_to)
            key = active
        options = self._memo.get(key)
        if options is None:
            found = []
            visible = self.visible
            m = active & ~visible
            while m:
                low = m & -m
                m ^= low
                owners = self._closure(low, active, sends_to) & active
                if owners != active and not owners & visible and owners not in found:
                    found.append(owners)
            options = tuple(found)
            if len(self._memo) < 1 << 18:
                self._memo[key] = options
        if len(options) < 2:
            return options[0] if options else 0
        best, best_n = 0, -1
        for owners in options:
            k = sum(1 for i in who if owners >> i & 1)
            if best_n < 0 or k < best_n:
                best, best_n = owners, k
        return best


def _may_send(auto: Any) -> frozenset[int]:
    """The states of a protocol automaton from which some send is reachable."""
    succ: dict[int, set[int]] = {}
    sending: set[int] = set()
    for (a, d, _), b in auto.trans.items():
        succ.setdefault(a, set()).add(b)
        if d == "send":
            sending.add(a)
    out = set(sending)
    changed = True
    while changed:
        changed = False
        for a, bs in succ.items():
            if a not in out and bs & out:
                out.add(a)
                changed = True
    return frozenset(out)


def _initial_visible(kernel: Kernel) -> int:
    """The instances the properties read in the initial states (a bitmask)."""
    visible = 0
    for s, _ in kernel.initial_states():
        _, reads = kernel.property_verdict(s)
        if reads is None:
            raise NotReducible(_NETWORK)
        for i in reads:
            visible |= 1 << i
    return visible


_NETWORK = ("a property reads the messages in flight or the crashes, which every send "
            "changes (no event is invisible to it)")


def por_check(kernel: Kernel, new_search: Any) -> tuple[Outcome, dict[str, Any]]:
    """The reduced search; what the result says of the reduction.  `new_search()` gives a
    fresh `Search` (the search starts again when the visible set grows).  Raises
    `NotReducible` when a property reads the network (the caller searches unreduced)."""
    visible = _initial_visible(kernel) if kernel.properties else 0
    restarts = 0
    while True:
        search = new_search()
        stats = PorStats()
        try:
            out = por_bfs(kernel, search, Por(kernel, visible), stats)
        except _Wider as e:
            visible = e.visible
            restarts += 1
            continue
        names = [inst.name for inst in kernel.instances]
        info = {"applied": True, "why": None, "reduced_states": stats.reduced,
                "full_states": stats.full, "proviso": stats.proviso, "restarts": restarts,
                "visible": [names[i] for i in range(len(names)) if visible >> i & 1]}
        return out, info


def por_bfs(kernel: Kernel, search: Search, por: Por, stats: PorStats) -> Outcome:
    """Breadth-first search of the reduced graph (`bfs.py`'s loop, with ample sets)."""
    visited: dict[State, tuple[State, int] | None] = {}
    terminal = deadlocked = 0
    visible = por.visible
    verdicts: dict[Any, tuple[Violation, ...]] = {}
    owner = kernel.event_owner
    env_dst = kernel.env_dst

    def props(s: State) -> tuple[Violation, ...]:
        known = verdicts.get(s[0])
        if known is not None:
            return known
        res, reads = kernel.property_verdict(s)
        if reads is None:
            raise NotReducible(_NETWORK)
        wider = visible
        for i in reads:
            wider |= 1 << i
        if wider != visible:
            raise _Wider(wider)
        verdicts[s[0]] = res
        return res

    check_props = props if kernel.properties else None

    def trace(at: State, last: int | None = None) -> tuple[State, tuple[int, ...]]:
        return path_back(visited, at, last)

    def stop(reason: str, violation: Violation | None = None, at: State | None = None,
             last: int | None = None) -> Outcome:
        start, path = trace(at, last) if at is not None else (None, ())
        return Outcome(reason, len(visited), search.transitions, search.depth,  # type: ignore
                       time.perf_counter() - search.started, violation, start, path,
                       (), terminal, deadlocked)

    transitions = 0
    try:
        max_states, max_depth = search.max_states, search.max_depth
        limit = max_states if max_states is not None else float("inf")
        level: list[State] = []
        for s, viol in kernel.initial_states():
            if s in visited:
                continue
            if len(visited) >= limit:
                return stop("max-states")
            visited[s] = None
            if viol:
                return stop("violation", viol[0], s)
            if check_props is not None:
                pv = check_props(s)
                if pv:
                    return stop("violation", pv[0], s)
            level.append(s)
        search.states = len(visited)
        successors = kernel.successors
        expanded = 0
        while level:
            last_level = max_depth is not None and search.depth >= max_depth
            fresh: set[State] = set()      # visited during it (one level deeper)
            nxt: list[State] = []
            found: tuple[Violation, State, int | None] | None = None
            beyond = False
            for s in level:
                steps, enabled = successors(s)
                if not enabled:
                    if kernel.is_terminal(s):
                        terminal += 1
                    else:
                        deadlocked += 1
                        search.transitions = transitions
                        return stop("violation", kernel.deadlock(), s)
                if found is not None:
                    continue
                for ev, _, viol in steps:             # every step is checked...
                    if viol:
                        found = (viol[0], s, ev)
                        break
                if found is not None:
                    continue
                follow = steps                        # ...the ample ones followed
                if len(steps) > 1:
                    who = [env_dst[ev] if ev >= 0 else owner(ev) for ev, _, _ in steps]
                    active = 0
                    for i in who:
                        active |= 1 << i
                    # an ample set needs two instances moving, one of them invisible
                    chosen = por.owners(s[0], active, who) \
                        if active & (active - 1) and active & ~visible else 0
                    if chosen:
                        ample = [st for st, i in zip(steps, who) if chosen >> i & 1]
                        if any(t in visited and t not in fresh for _, t, _ in ample):
                            stats.proviso += 1        # C3: a successor at depth <= this one
                            stats.full += 1
                        else:
                            follow = ample
                            stats.reduced += 1
                    else:
                        stats.full += 1
                else:
                    stats.full += 1
                transitions += enabled if follow is steps else len(follow)
                if last_level:
                    beyond = beyond or any(t not in visited for _, t, _ in follow)
                    continue
                for ev, t, _ in follow:
                    if t in visited:
                        continue
                    if len(visited) >= limit:
                        search.transitions = transitions
                        return stop("max-states")
                    visited[t] = (s, ev)
                    fresh.add(t)
                    if check_props is not None:
                        pv = check_props(t)
                        if pv:
                            found = (pv[0], t, None)
                            break
                    nxt.append(t)
                expanded += 1
                if not expanded & 0x3FF:
                    search.states = len(visited)
                    search.transitions = transitions
                    bound = search.tick(len(nxt))
                    if bound is not None:
                        return stop(bound)
            search.transitions = transitions
            if found is not None:
                violation, at, last = found
                search.depth += 1
                return stop("violation", violation, at, last)
            if last_level:
                return stop("max-depth" if beyond else "exhausted")
            level = nxt
            if level:
                search.depth += 1
        search.states = len(visited)
        return stop("exhausted")
    except KeyboardInterrupt:
        search.transitions = max(search.transitions, transitions)
        return stop("interrupted")


def summary_note(info: dict[str, Any]) -> str:
    """The line a report prints of the reduction."""
    if not info.get("applied"):
        return f"not applied: {info['why']}"
    return (f"applied: states and transitions are of the reduced graph ({info['reduced_states']:,}"
            f" states expanded with an ample set, {info['full_states']:,} fully); a "
            "counterexample is a real run but may not be shortest")


__all__ = ["NotReducible", "Por", "PorStats", "por_bfs", "por_check", "refusal",
           "summary_note"]
