"""Breadth-first exploration: the first violation found has a shortest counterexample.

`visited` maps each state to (parent, event); properties are checked when a state is first
reached, so a violating state is reported at its least depth.  With `keep_going` the search
does not stop at a violation: it counts each kind (`Tally`), keeps a shortest counterexample
of each, and explores on from the violating states and steps, so it reaches every state.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from assay.checker.search import Outcome, Search, Tally, path_back
from assay.kernel.kernel import Kernel, State
from assay.kernel.violation import Violation

if TYPE_CHECKING:
    from assay.checker.symmetry import Symmetry


def bfs(kernel: Kernel, search: Search, keep_going: bool = False,
        reduce: Symmetry | None = None) -> Outcome:
    """With `reduce`, states are the representatives of their orbits (`symmetry.py`)."""
    visited: dict[State, tuple[State, int] | None] = {}
    tally = Tally()
    terminal = deadlocked = 0

    def trace(at: State, last: int | None = None) -> tuple[State, tuple[int, ...]]:
        return path_back(visited, at, last)

    def stop(reason: str, violation: Violation | None = None, at: State | None = None,
             last: int | None = None) -> Outcome:
        start, path = trace(at, last) if at is not None else (None, ())
        found = tally.results(shortest=True)
        if found:
            violation, start, path = found[0].violation, found[0].start, found[0].path
        return Outcome(reason, len(visited), search.transitions, search.depth,  # type: ignore
                       time.perf_counter() - search.started, violation, start, path,
                       found, terminal, deadlocked)

    transitions = 0
    try:
        max_states, max_depth = search.max_states, search.max_depth
        limit = max_states if max_states is not None else float("inf")
        level: list[State] = []
        within = kernel.within if kernel.system.constraints else None
        for s, viol in kernel.initial_states():
            if reduce is not None:
                s = reduce.canon(s)
            if s in visited:
                continue
            if len(visited) >= limit:
                return stop("max-states")
            visited[s] = None
            if viol:
                if not keep_going:
                    return stop("violation", viol[0], s)
                if tally.add(viol, "transitions"):
                    tally.locate(s, ())
            pv = kernel.property_violations(s)
            if pv:
                if not keep_going:
                    return stop("violation", pv[0], s)
                if tally.add(pv, "states"):
                    tally.locate(s, ())
            if within is None or within(s):
                level.append(s)
        search.states = len(visited)

        successors = kernel.successors if reduce is None else reduce.successors
        faulty = kernel.has_faults          # an enabled fault is not progress
        setdefault = visited.setdefault
        check_props = kernel.property_violations if kernel.properties else None
        expanded = 0
        while level:
            if max_depth is not None and search.depth >= max_depth:
                # The last level: its states are checked like any other (deadlock, violating
                # steps), but what lies beyond is only noted, not explored.
                beyond = False
                for s in level:
                    steps, enabled = successors(s)
                    transitions += enabled
                    search.transitions = transitions
                    if not enabled or faulty and not kernel.can_progress(s):
                        if kernel.is_terminal(s):
                            terminal += 1
                        else:
                            deadlocked += 1
                            if not keep_going:
                                return stop("violation", kernel.deadlock(), s)
                            if tally.add((kernel.deadlock(),), "states"):
                                tally.locate(*trace(s))
                    for ev, t, viol in steps:
                        if viol:
                            if not keep_going:
                                return stop("violation", viol[0], s, ev)
                            if tally.add(viol, "transitions"):
                                tally.locate(*trace(s, ev))
                        beyond = beyond or t not in visited
                return stop("max-depth" if beyond else "exhausted")
            nxt: list[State] = []
            # a violation one step beyond this level, reported after the level
            found: tuple[Violation, State, int | None] | None = None
            for s in level:
                steps, enabled = successors(s)
                transitions += enabled
                if not enabled or faulty and not kernel.can_progress(s):
                    if kernel.is_terminal(s):
                        terminal += 1
                    else:
                        deadlocked += 1
                        if not keep_going:
                            search.transitions = transitions
                            return stop("violation", kernel.deadlock(), s)  # shorter than found
                        if tally.add((kernel.deadlock(),), "states"):
                            tally.locate(*trace(s))
                if found is not None:
                    continue                                # only deadlocks can still be shorter
                for ev, t, viol in steps:
                    if viol:
                        if not keep_going:
                            found = (viol[0], s, ev)
                            break
                        if tally.add(viol, "transitions"):
                            tally.locate(*trace(s, ev))
                    n = len(visited)
                    setdefault(t, (s, ev))
                    if len(visited) == n:
                        continue                            # seen before (one hash, not two)
                    if n >= limit:                          # one state beyond --max-states
                        del visited[t]
                        search.transitions = transitions
                        return stop("max-states")
                    if check_props is not None:
                        pv = check_props(t)
                        if pv:
                            if not keep_going:
                                found = (pv[0], t, None)
                                break
                            if tally.add(pv, "states"):
                                tally.locate(*trace(t))
                    if within is None or within(t):     # beyond a constraint: checked only
                        nxt.append(t)
                expanded += 1
                if not expanded & 0x3FF:                    # now and then: progress, bounds
                    search.states = len(visited)
                    search.transitions = transitions
                    bound = search.tick(len(nxt))
                    if bound is not None:
                        return stop(bound)
            if found is not None:
                search.transitions = transitions
                violation, at, last = found
                search.depth += 1
                return stop("violation", violation, at, last)
            level = nxt
            if level:
                search.depth += 1
        search.transitions = transitions
        return stop("exhausted")
    except KeyboardInterrupt:                       # Ctrl-C: stop, with the counts so far
        search.transitions = max(search.transitions, transitions)
        return stop("interrupted")
