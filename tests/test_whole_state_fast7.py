"""Whole-state specs, seventh round (issue 11 item 3): the determinism check made cheaper
without checking less; each shortcut next to the behaviour it must keep.

- `determinism.twice` sets each run's outside world cheaply: `random`'s state read once for
  both runs and the seeded states copied in, the stopped clocks made once per thread
  (`_clocks`, made again when a clock in place is not the one they were made from);
- `Kernel._enabled_all`: a checked state's guards and domains, every action's, in one pair of
  runs (one outside world per state, not one per action), each difference still named by
  its action.

Components are defined at module level (the kernel reads their source for some checks).
"""
from __future__ import annotations

import random
import time

import pytest

import assay.kernel.kernel as kernel_module
from assay import Component, System, action
from assay.errors import SpecError
from assay.kernel import Kernel
from assay.kernel.determinism import twice
from tests.test_whole_state_fast4 import _load


def test_each_run_draws_from_its_own_seed_and_the_callers_numbers_go_on():
    assert twice(random.random) == (random.Random(0).random(), random.Random(1).random())
    random.seed(3)
    expected = [random.gauss(0, 1), random.gauss(0, 1), random.random()]
    random.seed(3)
    first = random.gauss(0, 1)          # (draws two numbers: the second is kept for later)
    a, b = twice(lambda: (random.gauss(0, 1), random.random()))
    assert a != b
    assert [first, random.gauss(0, 1), random.random()] == expected


def now() -> float:
    return time.time()          # (read through the module, as a handler reads it)


def test_the_clocks_stopped_are_those_in_place_and_are_put_back():
    real = time.time
    first, second = twice(now)
    assert second - first == pytest.approx(1.500_000_001)
    calls = []

    def mine() -> float:            # a caller's own clock, put in place after a check
        calls.append(1)
        return 5.0

    time.time = mine
    try:
        assert twice(now) == (first, second)      # stopped in this thread, as before
        assert time.time is mine and time.time() == 5.0
        assert twice(now) == (first, second)
        assert time.time is mine
    finally:
        time.time = real
    assert twice(now) == (first, second) and time.time is real


def _count_twice(monkeypatch) -> list[str]:
    """The callers of each `twice` the kernel makes, from now on."""
    callers: list[str] = []
    import sys

    def counted(run):
        callers.append(sys._getframe(1).f_code.co_name)
        return twice(run)

    monkeypatch.setattr(kernel_module, "twice", counted)
    return callers


def test_a_checked_state_runs_every_guard_in_one_pair_of_runs(monkeypatch):
    m = _load("tla_lamport_mutex")
    k = Kernel(m.system(n=3, max_clock=4))
    k._sampler.first = 10**9                    # every state's guards and steps checked
    inst = k.instances[0]
    callers = _count_twice(monkeypatch)
    states = 0
    seen = {s for s, _ in k.initial_states()}
    todo = list(seen)
    callers.clear()                             # (the initial state's start step)
    while todo and states < 60:
        s = todo.pop(0)
        states += 1
        acts = k._action_outcomes(inst, s[0][0])
        guard_runs = [c for c in callers if c != "_run_checked"]
        assert len(guard_runs) == 1             # six actions, their guards checked at once
        assert callers.count("_run_checked") == len(acts)       # and each event's step
        callers.clear()
        for _, t, _ in k.successors(s)[0]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
        callers.clear()
    assert states == 60


class SecondGuardRandom(Component):
    """Its first action's guard is a function of the state; its second's draws a number."""
    n: int = 0

    @action(when=lambda self: self.n < 2)
    def step(self):
        self.n += 1

    @action(when=lambda self: random.random() < 0.5)
    def gamble(self):
        self.n = 0


class SecondDomainOrdered(Component):
    """Its second action's domain follows a set's order."""
    names: frozenset[str] = frozenset({"alpha", "beta"})
    n: int = 0

    @action(when=lambda self: self.n < 1)
    def step(self):
        self.n += 1

    @action(over=lambda self: [next(iter(self.names))])
    def pick(self, name):
        self.n = 0


@pytest.mark.parametrize(("cls", "name"), [(SecondGuardRandom, "gamble"),
                                           (SecondDomainOrdered, "pick")])
def test_a_guard_checked_with_the_others_is_still_named_by_its_action(cls, name):
    s = System("two")
    s.add("c", cls)
    k = Kernel(s)
    assert k._memo_once
    with pytest.raises(SpecError) as e:
        for st, _ in k.initial_states():
            k.successors(st)
    assert f"the guard or domain of {cls.__name__}.{name} (instance c)" in str(e.value)


DOMAIN_CALLS: list[int] = []


def counted_range(self):
    """A domain that notes each call (its value a function of the state all the same)."""
    DOMAIN_CALLS.append(self.n)
    return list(range(self.n, 3))


class SharedDomain(Component):
    """Two actions over one domain, a third over another."""
    n: int = 0

    @action(over=counted_range, when=lambda self, i: i == self.n)
    def up(self, i):
        self.n = i + 1

    @action(over=counted_range, when=lambda self, i: i > self.n)
    def jump(self, i):
        self.n = i

    @action(over=lambda self: [self.n], when=lambda self, i: i == 2)
    def reset(self, i):
        self.n = 0


def _reachable(k: Kernel) -> dict:
    """Every reachable state's successors (by values)."""
    inst = k.instances[0]
    seen = {s for s, _ in k.initial_states()}
    todo, out = list(seen), {}
    while todo:
        s = todo.pop(0)
        succ = k.successors(s)[0]
        out[inst.table.values[s[0][0]]] = sorted(
            (str(e), inst.table.values[t[0][0]]) for e, t, _ in succ)
        for _, t, _ in succ:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return out


def test_actions_over_one_domain_compute_it_once_per_state():
    s = System("shared")
    s.add("c", SharedDomain)
    unchecked = Kernel(s)
    unchecked._sampler.first, unchecked._sampler.every = 0, 10**9
    DOMAIN_CALLS.clear()
    once = _reachable(unchecked)
    assert len(once) == 4 and sorted(DOMAIN_CALLS) == [0, 1, 2, 3]     # one call a state
    checked = Kernel(s)
    checked._sampler.first = 10**9              # every state's guards run twice
    DOMAIN_CALLS.clear()
    assert _reachable(checked) == once
    assert sorted(DOMAIN_CALLS) == [0, 0, 1, 1, 2, 2, 3, 3]         # once in each run
