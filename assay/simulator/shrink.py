"""Shrinking a failing run to a minimal one: delta debugging (Zeller & Hildebrandt, 'Simplifying
and Isolating Failure-Inducing Input', TSE 2002) over the run's events.

A candidate (a subsequence of the events, by name) is kept only if it replays — every event is
enabled where it occurs — and fails the same way (same kind of violation, same property or
blame).  The result is 1-minimal: removing any single event loses the failure.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assay.errors import TraceError
from assay.kernel.kernel import Kernel, State
from assay.kernel.violation import Violation

Signature = tuple[str, str | None, str]


def signature(v: Violation) -> Signature:
    return (v.kind, v.name, v.blame)


def fails(kernel: Kernel, start: State, events: list[dict[str, Any]],
          want: Signature) -> int | None:
    """If the events replay from `start` and hit the violation `want`, how many events it
    took; else None."""
    state = start
    for n, e in enumerate(events, 1):
        try:
            ev = kernel.event_id(state, e)
        except TraceError:
            return None
        state, _, viol = kernel.apply(state, ev)
        if viol:
            return n if signature(viol[0]) == want else None
        if want[0] == "deadlock":
            continue
        pv = kernel.property_violations(state)
        if pv:
            return n if signature(pv[0]) == want else None
    if want[0] == "deadlock" and not kernel.can_progress(state) \
            and not kernel.is_terminal(state):
        return len(events)
    return None


def ddmin(items: list[Any], test: Callable[[list[Any]], bool]) -> list[Any]:
    """The classic ddmin: a 1-minimal sublist of `items` for which `test` holds."""
    n = 2
    while len(items) >= 2:
        chunk = len(items) // n
        subsets = [items[i:i + chunk] for i in range(0, len(items), chunk)]
        reduced = False
        for i in range(len(subsets)):              # try each complement
            complement = [x for j, s in enumerate(subsets) if j != i for x in s]
            if test(complement):
                items = complement
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            for s in subsets:                      # then each subset alone
                if len(s) < len(items) and test(s):
                    items = s
                    n = 2
                    reduced = True
                    break
        if not reduced:
            if n >= len(items):
                break
            n = min(n * 2, len(items))
    return items


def shrink(kernel: Kernel, start: State, events: list[dict[str, Any]],
           violation: Violation) -> list[dict[str, Any]]:
    """A minimal prefix-closed subsequence of `events` that still ends in `violation`."""
    want = signature(violation)
    n = fails(kernel, start, events, want)
    if n is None:
        return events
    events = events[:n]

    def test(candidate: list[dict[str, Any]]) -> bool:
        return fails(kernel, start, candidate, want) is not None

    small = ddmin(events, test)
    m = fails(kernel, start, small, want)
    return small[:m] if m else small
