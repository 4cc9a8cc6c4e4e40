"""Depth-first exploration: memory for the visited set and the current path only.

The counterexample is the stack itself (not necessarily a shortest one).
"""
from __future__ import annotations

import time

from assay.checker.search import Outcome, Search
from assay.kernel.kernel import Kernel, State


def dfs(kernel: Kernel, search: Search) -> Outcome:
    visited: set[State] = set()
    max_states, max_depth = search.max_states, search.max_depth
    successors = kernel.successors
    check_props = kernel.property_violations if kernel.properties else None
    cut = False

    def done(reason: str, violation=None, start=None, path=()) -> Outcome:  # type: ignore
        return Outcome(reason, len(visited), search.transitions, search.depth,  # type: ignore
                       time.perf_counter() - search.started, violation, start, tuple(path))

    for init, viol in kernel.initial_states():
        if init in visited:
            continue
        visited.add(init)
        if viol:
            return done("violation", viol[0], init)
        pv = kernel.property_violations(init)
        if pv:
            return done("violation", pv[0], init)
        # stack of (state, successor steps, next index); path[k] leads to stack[k + 1]
        stack: list[list] = []
        path: list[int] = []

        def push(s: State) -> Outcome | None:
            steps, enabled = successors(s)
            search.transitions += enabled
            if not enabled and not kernel.is_terminal(s):
                return done("violation", kernel.deadlock(), init, path)
            stack.append([s, steps, 0])
            return None

        out = push(init)
        if out:
            return out
        while stack:
            top = stack[-1]
            s, steps, k = top
            if k >= len(steps):
                stack.pop()
                if path:
                    path.pop()
                continue
            top[2] = k + 1
            ev, t, viol = steps[k]
            if viol:
                return done("violation", viol[0], init, [*path, ev])
            if t in visited:
                continue
            if max_depth is not None and len(path) >= max_depth:
                cut = True
                continue
            visited.add(t)
            path.append(ev)
            search.depth = max(search.depth, len(path))
            if check_props is not None:
                pv = check_props(t)
                if pv:
                    return done("violation", pv[0], init, path)
            if max_states is not None and len(visited) >= max_states:
                search.states = len(visited)
                return done("max-states")
            out = push(t)
            if out:
                return out
            if len(visited) & 0x3FF == 0:
                search.states = len(visited)
                search.tick(len(stack))
    search.states = len(visited)
    return done("max-depth" if cut else "exhausted")
