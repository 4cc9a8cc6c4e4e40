"""Real-time timers for the asyncio drivers: one home for setting, firing and cancelling.

A timer set by a step (`("set", delay, message)` in its timer operations) fires after `delay`
units of `time_unit` seconds: it then joins `due`, and `wake` is set so the driver's loop runs
its handler as the next step.  A cancel removes pending and due timers equal to a message, or
of a message type.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class Timers:
    def __init__(self, names: list[str], time_unit: float, wake: asyncio.Event) -> None:
        self.time_unit = time_unit
        self.wake = wake
        self.pending: dict[str, list[tuple[asyncio.TimerHandle, int, Any]]] = \
            {n: [] for n in names}
        self.due: deque[tuple[str, int, Any]] = deque()

    def apply(self, name: str, ops: tuple[tuple[str, Any, Any], ...]) -> None:
        """Carry out a step's timer operations for instance `name`."""
        for op, a, b in ops:
            if op == "set":
                self.set(name, a, b)
            else:
                self.cancel(name, a)

    def set(self, name: str, delay: int, message: Any) -> None:
        loop = asyncio.get_running_loop()
        entry: list[Any] = []

        def fire() -> None:
            self.pending[name].remove(entry[0])
            self.due.append((name, delay, message))
            self.wake.set()

        entry.append((loop.call_later(delay * self.time_unit, fire), delay, message))
        self.pending[name].append(entry[0])

    def cancel(self, name: str, what: Any) -> None:
        def hit(m: Any) -> bool:
            return isinstance(m, what) if isinstance(what, type) else m == what

        for handle, _, m in self.pending[name]:
            if hit(m):
                handle.cancel()
        self.pending[name] = [e for e in self.pending[name] if not hit(e[2])]
        self.due = deque(d for d in self.due if not (d[0] == name and hit(d[2])))

    def any_pending(self) -> bool:
        return any(self.pending.values())

    def cancel_all(self) -> None:
        for handles in self.pending.values():
            for handle, _, _ in handles:
                handle.cancel()
