"""The sans-IO core of the runtime: the local states of the instances a node hosts, and one
kernel step per event.

A `Node` takes events (a message arrived, an action is due, a timer fired) and returns what to
send, which timers to set or cancel, and what broke — it does no I/O and keeps no clock.  The
asyncio drivers around it (`local.py` for one process) move messages and fire timers.  Every
step is the kernel's local step: the same handler code `check`, `verify` and `simulate` run.

Monitoring policy, per step with a violation (a failed contract, an out-of-protocol message,
an exception in a handler):

- `enforce`: the step is rejected — the instance's state is unchanged and its sends are not
  sent (they are dead-lettered in the report); the violation is reported with its blame;
- `log`: the step is applied and the violation reported;
- `off`: the step is applied and the violation ignored.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from assay.kernel.events import Envelope, Fire, TimerFire
from assay.kernel.kernel import Kernel, LocalStep
from assay.kernel.violation import Violation

POLICIES = ("enforce", "log", "off")


@dataclass
class Outcome:
    """What one step did, for the driver."""

    event: dict[str, Any]                       # the event, by name (trace form)
    applied: bool
    sends: tuple[Envelope, ...]
    timer_ops: tuple[tuple[str, Any, Any], ...]
    violations: tuple[Violation, ...]


@dataclass
class Node:
    """The instances a node hosts, stepped through `kernel`."""

    kernel: Kernel
    hosted: list[str]
    monitor: str = "enforce"
    local: dict[str, int] = field(default_factory=dict)
    violations: list[tuple[dict[str, Any], Violation]] = field(default_factory=list)
    dead_letters: list[Envelope] = field(default_factory=list)
    steps: int = 0

    def __post_init__(self) -> None:
        if self.monitor not in POLICIES:
            raise ValueError(f"monitor policy {self.monitor!r}; use one of {POLICIES}")
        for name in self.hosted:
            self.local.setdefault(name, self.kernel.local_initial(name))

    # --- events --------------------------------------------------------------------------

    def deliver(self, envelope: Envelope) -> Outcome:
        """`envelope` arrived for one of the hosted instances."""
        name = envelope.dst
        step = self.kernel.local_deliver(self.local[name], envelope)
        from assay.kernel.events import Deliver

        return self._apply(name, Deliver(envelope).to_json(), step)

    def actions(self, name: str) -> list[Fire]:
        """The actions of `name` enabled now."""
        return [ev for ev, _ in self.kernel.local_actions(name, self.local[name])]

    def fire(self, action: Fire) -> Outcome:
        for ev, step in self.kernel.local_actions(action.instance, self.local[action.instance]):
            if ev == action:
                return self._apply(action.instance, ev.to_json(), step)
        raise ValueError(f"{action} is not enabled")

    def fire_any(self, name: str, rng: random.Random) -> Outcome | None:
        """Fire one enabled action of `name`, chosen by `rng`; None when none is enabled."""
        enabled = self.kernel.local_actions(name, self.local[name])
        if not enabled:
            return None
        enabled.sort(key=lambda pair: self.kernel_key(pair[0]))
        ev, step = enabled[rng.randrange(len(enabled))]
        return self._apply(name, ev.to_json(), step)

    def timer(self, name: str, delay: int, message: Any) -> Outcome:
        step = self.kernel.local_timer(name, self.local[name], delay, message)
        return self._apply(name, TimerFire(name, message, delay).to_json(), step)

    def state(self, name: str) -> dict[str, Any]:
        """The field values of a hosted instance, now."""
        return self.kernel.local_view(name, self.local[name])

    # --- the policy ----------------------------------------------------------------------

    def _apply(self, name: str, event: dict[str, Any], step: LocalStep) -> Outcome:
        self.steps += 1
        viol = step.violations
        if viol and self.monitor != "off":
            for v in viol:
                self.violations.append((event, v))
        if viol and self.monitor == "enforce":
            self.dead_letters.extend(step.sends)
            return Outcome(event, False, (), (), viol)
        self.local[name] = step.local
        return Outcome(event, True, step.sends, step.timer_ops,
                       viol if self.monitor != "off" else ())

    @staticmethod
    def kernel_key(ev: Fire) -> str:
        import json

        return json.dumps(ev.to_json(), sort_keys=True)
