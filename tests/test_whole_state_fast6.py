"""Whole-state specs, sixth round (issue 11 item 3): the determinism check's second runs of a
state's steps share one reordering of the state, and give the kept parts of it back by
identity; each shortcut next to the bug it must still catch.

- `reorder.reordered_values`: a local state's values with their sets `Reordered`, made once
  for all the second runs of that state (its guards, then each action);
- `reorder.plain_values`: a second run's new values with plain sets again, where a part the
  step kept (a field, a channel) is the original object — equal to `map(plain, ...)`;
- `Runner.quick_action` keeps its context for the next run only where that run left it as
  it was made.

Components are defined at module level (the kernel reads their source for some checks).
"""
from __future__ import annotations

import random

import pytest

from assay import Component, Message, System, action
from assay.errors import SpecError
from assay.kernel import Kernel
from assay.kernel.reorder import Reordered, plain, plain_values, reordered, reordered_values
from tests.test_whole_state_fast4 import _load


class Tag(Message):
    names: frozenset[str]
    n: int


def _value(rng: random.Random, depth: int = 0):
    """A random field value: ints, strs, frozensets, tuples and messages, nested."""
    k = rng.randrange(6 if depth < 3 else 3)
    if k == 0:
        return rng.randrange(5)
    if k == 1:
        return rng.choice("abcdef")
    if k == 2:
        return frozenset(rng.sample("abcdefgh", rng.randrange(4)))
    if k == 3:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(4)))
    if k == 4:
        return Tag(frozenset(rng.sample("pqrs", rng.randrange(4))), rng.randrange(3))
    return (_value(rng, depth + 1),)


def _has_reordered(v) -> bool:
    if type(v) is Reordered:
        return True
    if type(v) is tuple:
        return any(map(_has_reordered, v))
    if isinstance(v, Message):
        return any(map(_has_reordered, v._values))
    return False


def _keep_some(rng: random.Random, v, fresh):
    """A new value made from `v` (a second run's input) as a step makes one: parts kept as
    they are, parts rebuilt around them, parts replaced."""
    k = rng.randrange(3)
    if k == 0:
        return v
    if k == 1 and type(v) is tuple and v:
        return tuple(_keep_some(rng, x, fresh) for x in v) + (fresh,) * rng.randrange(2)
    return fresh


def test_a_state_is_reordered_once_for_all_its_second_runs():
    values = ((1, 2), frozenset("abc"), (frozenset("xy"), Tag(frozenset("pq"), 1)), 7)
    again = reordered_values(values)
    assert reordered_values(values) is again
    assert again == tuple(map(reordered, values))
    assert type(again[1]) is Reordered and list(again[1]) == list(values[1])[::-1]
    assert again[0] is values[0] and again[3] is values[3]      # no set: not copied
    other = (values[0], frozenset("de"))
    assert reordered_values(other) is not again                  # another state: made anew


def test_plain_values_equal_plain_and_give_kept_parts_back_by_identity():
    rng = random.Random(11)
    for _ in range(400):
        values = tuple(_value(rng) for _ in range(rng.randrange(1, 5)))
        again = reordered_values(values)
        fresh = Tag(Reordered(frozenset("rs")), 2)
        new = tuple(_keep_some(rng, x, fresh) for x in again)
        out = plain_values(new)
        assert out == tuple(map(plain, new))
        assert not any(map(_has_reordered, out))
        for i, n in enumerate(new):
            if n is again[i]:
                assert out[i] is values[i]          # a field the step kept: the original


# --- the second runs still catch what they catch ----------------------------------------------


class OrderedBody(Component):
    """`pick`'s new state follows the set's order; `touch`'s guard reads the same set first
    (so the state's reordering is made by the guards' second run and used again)."""
    names: frozenset[str] = frozenset({"alpha", "beta", "gamma"})
    first: str = ""

    @action(when=lambda self: len(self.names) > 0 and self.first == "")
    def pick(self):
        self.first = next(iter(self.names))

    @action(when=lambda self: "alpha" in self.names and self.first == "zzz")
    def touch(self):
        self.first = "x"


class OrderedGuard(Component):
    """Two names: "alpha" comes first in exactly one of the two orders, whatever the seed."""
    names: frozenset[str] = frozenset({"alpha", "beta"})
    done: bool = False

    @action(when=lambda self: next(iter(self.names)) == "alpha" and not self.done)
    def go(self):
        self.done = True


def _one(cls) -> System:
    s = System("order")
    s.add("c", cls)
    return s


@pytest.mark.parametrize("cls", [OrderedBody, OrderedGuard])
def test_a_step_that_follows_set_order_is_still_refused(cls):
    k = Kernel(_one(cls))
    assert k._memo_once                     # a whole-state component: the path changed here
    with pytest.raises(SpecError, match="(?i)order|nondetermin|twice|another|differ"):
        for s, _ in k.initial_states():
            k.successors(s)


def _every_outcome(system: System, first: int, every: int) -> list:
    """Every reachable state's action outcomes (by values), the sampler set as given."""
    k = Kernel(system)
    k._sampler.first, k._sampler.every = first, every
    inst = k.instances[0]
    seen = {s for s, _ in k.initial_states()}
    todo = list(seen)
    out = []
    while todo:
        s = todo.pop(0)
        acts = k._action_outcomes(inst, s[0][0])
        out.append((inst.table.values[s[0][0]],
                    [(slot, inst.table.values[o[0]], o[1:]) for slot, o in acts]))
        for _, t, _ in k.successors(s)[0]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return out


@pytest.mark.parametrize(("spec", "params", "states"),
                         [("tla_lamport_mutex", {"n": 2, "max_clock": 3}, 191),
                          ("tla_paxos_commit", {"ballots": 2}, 1461)])
def test_every_step_run_twice_gives_the_outcomes_of_one_run(spec, params, states):
    m = _load(spec)
    twice = _every_outcome(m.system(**params), 10**9, 1)       # every step, twice
    once = _every_outcome(m.system(**params), 0, 10**9)        # none
    assert len(twice) == states
    assert twice == once
