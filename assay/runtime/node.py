"""The sans-IO core of the runtime: the local states of the instances a node hosts, and one
kernel step per event.

A `Node` takes events (a message arrived, an action is due, a timer fired) and returns what to
send, which timers to set or cancel, and what broke — it does no I/O and keeps no clock.  The
asyncio drivers around it (`local.py` for one process) move messages and fire timers.  Every
step is the kernel's local step: the same handler code `check`, `verify` and `simulate` run.

The `always` properties are monitored too, on the state after each step, as far as the node
can see it (`Kernel.local_property_violations`): a property that reads only hosted instances
(and, in one process where the driver knows every message in flight, the network) is checked;
one that reads an instance hosted elsewhere is not local: from then on this node leaves it to
the checker and to `assay replay` of the recorded run.

Monitoring policy, per step with a violation (a failed contract, an out-of-protocol message,
an exception in a handler, a property the step breaks):

- `enforce`: the step is rejected — the instance's state is unchanged and its sends are not
  sent (they are dead-lettered in the report); the violation is reported with its blame;
- `log`: the step is applied and the violation reported;
- `off`: the step is applied and the violation ignored.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from assay.kernel.events import Envelope, Fire, TimerFire, deliver_json
from assay.kernel.kernel import Kernel, LocalChoice, LocalStep
from assay.kernel.violation import Violation
from assay.model.types import canonical, to_json

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
    """The instances a node hosts, stepped through `kernel`.  A node that is the only one
    stepping its kernel makes it forget what it memoised as it grows (`Kernel.forget`); nodes
    that share a kernel hold ids into its tables, so none of them does."""

    # memo misses of each step family run twice (`assay.kernel.determinism`) before one in
    # `determinism.EVERY`: the checker's 1000 would double the cost of a deployment's first
    # thousand rounds (every state of a counter or balance is a miss); a handler that reads
    # the clock or random numbers is caught within its first steps all the same
    CHECK_FIRST = 32
    # The kernel's memo tables hit in a deployment within a step or two (a receive guard's
    # answer, then the delivery), rarely later: a counter's, a round's or a balance's states do
    # not repeat (ping-pong: half the deliveries and none of the actions of 3,000 rounds hit,
    # all of them in the step that asked).  Kept whole, every envelope, message and local
    # state survives the young garbage collections and makes each generation-1 pass long
    # (0.5-1 ms a node at 20,000; tests/benchmarks/RESULTS.md, rt7 and rt8).  So they are
    # kept small: every FORGET_EVERY steps, a kernel holding more than FORGET_AT states and
    # envelopes forgets them all, when the driver is about to wait (`tidy`), or in the step
    # if it did not wait for FORGET_EVERY more steps.  A system whose local states and
    # envelopes are fewer than FORGET_AT keeps every one (the memo's hits are never lost).
    FORGET_EVERY = 64         # steps between two looks at the kernel's memory
    FORGET_AT = 128           # local states and envelopes the kernel may hold
    KEEP = 1000               # violations and dead letters listed (all are counted)

    kernel: Kernel
    hosted: list[str]
    monitor: str = "enforce"
    local: dict[str, int] = field(default_factory=dict)
    # the first KEEP violations (with the event of their step) and sends of rejected steps;
    # the counts go on (a long run that breaks a contract again and again keeps its memory)
    violations: list[tuple[dict[str, Any], Violation]] = field(default_factory=list)
    dead_letters: list[Envelope] = field(default_factory=list)
    violation_count: int = 0
    dead_letter_count: int = 0
    refused_count: int = 0
    refused: list[Envelope] = field(default_factory=list)        # messages whose delivery was
    steps: int = 0                                               # rejected: kept, unhandled
    # the driver's messages in flight (called after a delivered message left them, before the
    # step's sends join them), when it knows them all; None: properties cannot read the network
    in_flight: Callable[[], list[Envelope]] | None = None
    # properties evaluated at least once here / found reading what this node cannot see
    monitored: set[str] = field(default_factory=set)
    not_local: set[str] = field(default_factory=set)
    _enabled_memo: dict[str, tuple[int, list[tuple[Fire, LocalStep | LocalChoice]]]] = field(
        default_factory=dict, repr=False)
    # what a step's `self.choose(...)` takes here: at random (the model checker explores
    # every way; `simulate` draws from its seed); the way taken is recorded with the event
    rng: random.Random = field(default_factory=random.SystemRandom, repr=False)
    # a driver that keeps to link capacities: which ways of a step that chooses fit
    fits: Callable[[LocalStep, Envelope | None], bool] | None = field(default=None, repr=False)

    # a driver that calls `tidy` when idle: the second run of a step sampled for the
    # determinism check waits for it (`Kernel.defer_checks`), off the messages' way
    defer_checks: bool = False
    # the kernel holds more than FORGET_AT: it forgets at the driver's next `tidy`
    _forget_due: bool = field(default=False, repr=False)
    _tidied: bool = field(default=False, repr=False)       # since the last look

    def __post_init__(self) -> None:
        if self.monitor not in POLICIES:
            raise ValueError(f"monitor policy {self.monitor!r}; use one of {POLICIES}")
        k = self.kernel
        self._actionless = frozenset(
            n for n in self.hosted if not k.instances[k.index[n]].info.actions)
        for name in self.hosted:
            self.local.setdefault(name, self.kernel.local_initial(name))
        self.kernel.steppers += 1
        self.kernel.check_first(self.CHECK_FIRST)
        if self.defer_checks:
            self.kernel.defer_checks = True

    # --- events --------------------------------------------------------------------------

    def deliver(self, envelope: Envelope) -> Outcome:
        """`envelope` arrived for one of the hosted instances."""
        name = envelope.dst
        step = self.kernel.local_deliver(self.local[name], envelope)
        # `Deliver(envelope).to_json()`, without the event object
        return self._apply(name, deliver_json(envelope), step, envelope)

    def first_taken(self, name: str, inbox: Iterable[Envelope]) -> int | None:
        """The position in `inbox` of the first message `name` takes now, or None.  A receive
        guard (`@on(..., when=)`) may keep the ones before it out: they keep their places and
        are looked at again after the instance's next step, as the kernel defers them."""
        lid = self.local[name]
        accepts = self.kernel.local_accepts
        for i, env in enumerate(inbox):
            if accepts(lid, env):
                return i
        return None

    def _enabled(self, name: str) -> list[tuple[Fire, LocalStep | LocalChoice]]:
        """The actions of `name` enabled now, each with its step (kept for its local state:
        a driver asks again and again while nothing changes)."""
        lid = self.local[name]
        memo = self._enabled_memo.get(name)
        if memo is not None and memo[0] == lid:
            return memo[1]
        enabled = self.kernel.local_actions(name, lid)
        self._enabled_memo[name] = (lid, enabled)
        return enabled

    def actions(self, name: str) -> list[Fire]:
        """The actions of `name` enabled now."""
        return [ev for ev, _ in self._enabled(name)]

    def has_actions(self, name: str) -> bool:
        """Whether `name` has an action enabled now (one whose component declares none has
        none, in any state: not asked of the kernel at each new state)."""
        return name not in self._actionless and bool(self._enabled(name))

    def fire(self, action: Fire) -> Outcome:
        """Fire `action`; if its step chooses, the way `action.choices` names (none named:
        one at random)."""
        base = replace(action, choices=())
        for ev, step in self.kernel.local_actions(action.instance, self.local[action.instance]):
            if ev == base:
                if isinstance(step, LocalChoice) and action.choices:
                    want = canonical(action.choices)
                    way = next((w for w in step.steps if canonical(w.choices) == want), None)
                    if way is None:
                        break
                    return self._apply(action.instance, ev.to_json(), way)
                return self._apply(action.instance, ev.to_json(), step)
        raise ValueError(f"{action} is not enabled")

    def enabled_steps(self, name: str) -> list[tuple[Fire, LocalStep | LocalChoice]]:
        """The actions of `name` enabled now, each with the step it would take."""
        return self._enabled(name)

    def fire_any(self, name: str, rng: random.Random,
                 fits: Callable[[Any], bool] | None = None) -> Outcome | None:
        """Fire one enabled action of `name`, chosen by `rng` (among those whose step `fits`,
        if given: a bounded link may block some); None when none is enabled."""
        enabled = self._enabled(name)
        if fits is not None:
            enabled = [pair for pair in enabled if fits(pair[1])]
        if not enabled:
            return None
        if len(enabled) == 1:             # (no draw: the one there is)
            ev, step = enabled[0]
            return self._apply(name, ev.to_json(), step)
        enabled = sorted(enabled, key=lambda pair: self.kernel_key(pair[0]))
        ev, step = enabled[rng.randrange(len(enabled))]
        return self._apply(name, ev.to_json(), step)

    def timer(self, name: str, delay: int, message: Any) -> Outcome:
        step = self.kernel.local_timer(name, self.local[name], delay, message)
        return self._apply(name, TimerFire(name, message, delay).to_json(), step)

    def state(self, name: str) -> dict[str, Any]:
        """The field values of a hosted instance, now."""
        return self.kernel.local_view(name, self.local[name])

    # --- the policy ----------------------------------------------------------------------

    def start(self, name: str) -> Outcome:
        """`name` takes its start step (`@on_start`; nothing without one) from its initial
        state: the first thing a fresh instance does, never after a restart.  The model
        counts it in the initial state, so drivers route its sends and timers but do not
        record it as a step.  Applied under every policy, like a restart."""
        step = self.kernel.local_start(name, self.local[name])
        return self._apply(name, {"kind": "start", "instance": name}, step, rejectable=False)

    def has_start(self, name: str) -> bool:
        return self.kernel.instances[self.kernel.index[name]].info.on_start is not None

    def restart_all(self, steps: dict[str, LocalStep | LocalChoice]) -> list[tuple[str, Outcome]]:
        """Every instance of `steps` restarted into its step (the node crashed with all of
        them; `Kernel.local_restore`), in order.  Applied under every policy — a crash cannot
        be undone — and what they break is reported unless the policy is `off`: a restart
        hook's own violations with its step, the properties once, with the last step, on the
        world after every restart (the messages in flight: the driver's, reloaded from its
        store before this, and the hooks' sends).  Checked restart by restart, a property
        would see restored instances beside others still at their initial states (or saved
        money without the money in flight): a world that never existed (issue 9 §3)."""
        outs = [(name, self._apply(name, {"kind": "restart", "instance": name, "choice": 0},
                                   step, rejectable=False, properties=False))
                for name, step in steps.items()]
        if not outs or self.monitor == "off" or not self.kernel.properties:
            return outs
        flight = None
        if self.in_flight is not None:
            flight = list(self.in_flight()) + self.refused + [
                env for _, out in outs for env in out.sends]
        broken, not_local = self.kernel.local_property_violations(self.local, flight,
                                                                  self.not_local)
        self.not_local |= not_local
        self.monitored |= {p.name for p in self.kernel.properties} - self.not_local
        if broken:
            name, last = outs[-1]
            self._report(last.event, broken)
            outs[-1] = (name, replace(last, violations=last.violations + broken))
        return outs

    def _apply(self, name: str, event: dict[str, Any], step: LocalStep | LocalChoice,
               consumed: Envelope | None = None, rejectable: bool = True,
               properties: bool = True) -> Outcome:
        if isinstance(step, LocalChoice):
            ways = [w for w in step.steps if self.fits is None or self.fits(w, consumed)]
            step = LocalChoice(tuple(ways)).pick(self.rng) if ways else step.pick(self.rng)
        if step.choices:
            event = {**event, "choices": [to_json(c) for c in step.choices]}
        self.steps += 1
        viol = step.violations
        # (every property found not local: none is evaluated, `_properties` would find none)
        if properties and self.monitor != "off" and self.kernel.properties \
                and len(self.not_local) < len(self.kernel.properties):
            viol = viol + self._properties(name, step, consumed)
        if viol and self.monitor != "off":
            self._report(event, viol)
        if viol and self.monitor == "enforce" and rejectable:
            self.dead_letter_count += len(step.sends)
            self.dead_letters.extend(step.sends[:max(0, self.KEEP - len(self.dead_letters))])
            if consumed is not None:
                self.refused_count += 1
                # where properties read the messages in flight, a refused one is among them
                # (kept whole); elsewhere it is only reported, like a dead letter
                if self.in_flight is not None or len(self.refused) < self.KEEP:
                    self.refused.append(consumed)
            return Outcome(event, False, (), (), viol)
        self.local[name] = step.local
        if self.steps % self.FORGET_EVERY == 0:
            if not self._tidied:            # no `tidy` for FORGET_EVERY steps: its work now
                self.tidy()
            self._tidied = False
            if self.kernel.steppers == 1 and self.kernel.interned() > self.FORGET_AT:
                self._forget_due = True
        return Outcome(event, True, step.sends, step.timer_ops,
                       viol if self.monitor != "off" else ())

    def tidy(self) -> None:
        """The work of the past steps that need not be on a message's way: the second runs
        of the steps sampled for the determinism check (`defer_checks`; a `SpecError` if
        one differs from its first: the node stops, after that step rather than before it),
        then the kernel's memo tables forgotten if they grew past FORGET_AT
        (`Kernel.forget`: only the current local states are kept).  A driver calls this when
        it is about to wait, its steps' messages written: the work (25-75 µs) then falls
        while the peers handle those messages, not on the way of the next one."""
        self._tidied = True
        self.kernel.check_deferred()
        if self._forget_due:
            self._forget_due = False
            self.local = self.kernel.forget(self.local)
            self._enabled_memo.clear()

    def _report(self, event: dict[str, Any], viol: tuple[Violation, ...]) -> None:
        """Count the violations of a step; list them while fewer than KEEP are listed."""
        self.violation_count += len(viol)
        for v in viol[:max(0, self.KEEP - len(self.violations))]:
            self.violations.append((event, v))

    def _properties(self, name: str, step: LocalStep,
                    consumed: Envelope | None) -> tuple[Violation, ...]:
        """The properties this step breaks: false after it, and not already false before it
        (a state broken earlier — by a rejected step's dead letter, say — blames no one new)."""
        k = self.kernel
        after = dict(self.local)
        after[name] = step.local
        flight = before_flight = None
        if self.in_flight is not None:
            now = list(self.in_flight()) + self.refused     # a refused message is not lost
            flight = now + list(step.sends)
            before_flight = now + ([consumed] if consumed is not None else [])
        # a property found reading what this node cannot see is not evaluated here again
        # (each evaluation that completes is exact; this only saves the attempts)
        broken, not_local = k.local_property_violations(after, flight, self.not_local)
        self.not_local |= not_local
        self.monitored |= {p.name for p in k.properties} - self.not_local
        if not broken:
            return ()
        already, _ = k.local_property_violations(self.local, before_flight,
                                                 not_local)
        was = {v.name for v in already}
        return tuple(v for v in broken if v.name not in was)

    @staticmethod
    def kernel_key(ev: Fire) -> str:
        import json

        return json.dumps(ev.to_json(), sort_keys=True)
