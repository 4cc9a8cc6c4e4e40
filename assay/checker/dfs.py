"""Depth-first exploration: memory for the visited set and the current path only.

The counterexample is the path on the stack (not necessarily a shortest one).  With
`keep_going` the search does not stop at a violation: it counts each kind (`Tally`), keeps the
first counterexample of each, and explores on from the violating states and steps.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from assay.checker.search import Outcome, Search, Tally
from assay.kernel.kernel import Kernel, State
from assay.kernel.violation import Violation

if TYPE_CHECKING:
    from assay.checker.symmetry import Symmetry


@dataclass
class Snapshot:
    """A depth-first search between two steps (`check --checkpoint`, `dfs_checkpoint.py`):
    `stack` holds each frame's state and how many of its steps were taken — the last one
    taken leads to the state to expand next —, in the tree of initial state number `init`."""

    visited: set[State]
    init: int
    stack: list[tuple[State, int]]
    found: list[list[Any]]               # `Tally.entries`
    terminal: int
    deadlocked: int
    transitions: int
    depth: int
    cut: bool
    expanded: int = 0                    # `Symmetry.expanded`: the same spot checks


class Saver(Protocol):
    """Where a depth-first search is saved now and then, and taken up from."""

    resume: Snapshot | None

    def due(self) -> bool: ...

    def save(self, snapshot: Snapshot) -> None: ...


def dfs(kernel: Kernel, search: Search, keep_going: bool = False,
        reduce: Symmetry | None = None, saver: Saver | None = None) -> Outcome:
    """With `reduce`, states are the representatives of their orbits (`symmetry.py`).  With
    `saver`, from its `resume` if it has one, and saved there (every 1,024 states, when it is
    due)."""
    resume = saver.resume if saver is not None else None
    visited: set[State] = set() if resume is None else resume.visited
    max_depth = search.max_depth
    limit = search.max_states if search.max_states is not None else float("inf")
    successors = kernel.successors if reduce is None else reduce.successors
    if saver is not None:       # resumable: each state's steps in an order every kernel agrees on
        successors = _in_key_order(successors, kernel.event_key)
    check_props = kernel.property_violations if kernel.properties else None
    within = kernel.within if kernel.system.constraints else None
    cut = False
    tally = Tally()
    terminal = deadlocked = 0
    if resume is not None:
        tally.restore(resume.found)
        terminal, deadlocked, cut = resume.terminal, resume.deadlocked, resume.cut
        search.transitions, search.depth = resume.transitions, resume.depth

    def done(reason: str, violation: Violation | None = None, start: State | None = None,
             path: list[int] | tuple[int, ...] = ()) -> Outcome:
        search.states = len(visited)
        found = tally.results(shortest=False)
        if found:
            violation, start, path = found[0].violation, found[0].start, found[0].path
        return Outcome(reason, len(visited), search.transitions, search.depth,  # type: ignore
                       time.perf_counter() - search.started, violation, start, tuple(path),
                       found, terminal, deadlocked)

    try:
        for number, (init, viol) in enumerate(kernel.initial_states()):
            if resume is not None and number <= resume.init:
                if number < resume.init:
                    continue                              # a tree searched before
                # stack[k] = [state, its successor steps, next index]
                stack: list[list] = [[s, successors(s)[0], k] for s, k in resume.stack]
                if reduce is not None:
                    reduce.expanded = resume.expanded
                path: list[int] = [f[1][f[2] - 1][0] for f in stack]
                init = stack[0][0]
                state: State | None = stack[-1][1][stack[-1][2] - 1][1]
                resume = None
            else:
                if reduce is not None:
                    init = reduce.canon(init)
                if init in visited:
                    continue
                visited.add(init)
                if viol:
                    if not keep_going:
                        return done("violation", viol[0], init)
                    if tally.add(viol, "transitions"):
                        tally.locate(init, ())
                pv = kernel.property_violations(init)
                if pv:
                    if not keep_going:
                        return done("violation", pv[0], init)
                    if tally.add(pv, "states"):
                        tally.locate(init, ())
                if within is not None and not within(init):
                    continue                                  # beyond a constraint: checked only
                # path[k] leads to stack[k + 1]
                stack = []
                path = []
                state = init
            while True:
                if state is not None:                     # expand a newly reached state
                    steps, enabled = successors(state)
                    search.transitions += enabled
                    if not enabled or kernel.has_faults and not kernel.can_progress(state):
                        if kernel.is_terminal(state):
                            terminal += 1
                        else:
                            deadlocked += 1
                            if not keep_going:
                                return done("violation", kernel.deadlock(), init, path)
                            if tally.add((kernel.deadlock(),), "states"):
                                tally.locate(init, tuple(path))
                    stack.append([state, steps, 0])
                    state = None
                if not stack:
                    break
                top = stack[-1]
                _, steps, k = top
                if k >= len(steps):
                    stack.pop()
                    if path:
                        path.pop()
                    continue
                top[2] = k + 1
                ev, t, viol = steps[k]
                if viol:
                    if not keep_going:
                        return done("violation", viol[0], init, [*path, ev])
                    if tally.add(viol, "transitions"):
                        tally.locate(init, (*path, ev))
                if t in visited:
                    continue
                if max_depth is not None and len(path) >= max_depth:
                    cut = True
                    continue
                if len(visited) >= limit:
                    return done("max-states")
                visited.add(t)
                path.append(ev)
                if len(path) > search.depth:
                    search.depth = len(path)
                if check_props is not None:
                    pv = check_props(t)
                    if pv:
                        if not keep_going:
                            return done("violation", pv[0], init, path)
                        if tally.add(pv, "states"):
                            tally.locate(init, tuple(path))
                if within is not None and not within(t):
                    path.pop()                            # beyond a constraint: checked only
                    continue
                if not len(visited) & 0x3FF:
                    search.states = len(visited)
                    bound = search.tick(len(stack))
                    if bound is not None:
                        return done(bound)
                    if saver is not None and saver.due():
                        saver.save(Snapshot(
                            visited, number, [(f[0], f[2]) for f in stack], tally.entries(),
                            terminal, deadlocked, search.transitions, search.depth, cut,
                            reduce.expanded if reduce is not None else 0))
                state = t
        return done("max-depth" if cut else "exhausted")
    except KeyboardInterrupt:                       # Ctrl-C: stop, with the counts so far
        return done("interrupted")


def _in_key_order(successors: Any, key: Any) -> Any:
    """`successors` with the steps sorted by their events' `Kernel.event_key` (see
    `dfs_checkpoint.py`)."""
    def ordered(state: State) -> tuple[list[tuple[int, State, tuple[Violation, ...]]], int]:
        steps, enabled = successors(state)
        return sorted(steps, key=lambda st: key(st[0])), enabled
    return ordered
