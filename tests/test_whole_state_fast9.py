"""Whole-state specs, ninth round (issue 11 item 3): one determinism check per sampled state.

Where no memo keeps a state's actions (one component holding every variable:
`Kernel._memo_once`), a state the sampler picks has every action's guards and domains and
then every enabled step run twice in one pair of runs (`Kernel._checked_state`): one outside
world set and put back, one reordering of the state — not one `twice` per checked step on a
state of its own.  Each action's steps are checked at the rate states are (the first
`Sampler.first`, then one in `Sampler.every`), and the first `Sampler.first` steps of each
action besides, wherever they fall.  What must hold: the same states and outcomes, every
kind of nondeterminism still refused where it is sampled (a body reading `random`, a domain
or a body following a set's order), an action first enabled past the sampled start still
checked, and the rate per action kept.

Components are defined at module level (the kernel reads their source for some checks).
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest

import assay.kernel.kernel as kernel_module
from assay import Component, System, action
from assay.errors import SpecError
from assay.kernel import Kernel
from assay.model.load import load_module

LAMPORT = Path(__file__).resolve().parent.parent / "specs" / "tla_lamport_mutex.py"
RUNS = {"up": 0, "late": 0}
# how `Flaky.late` and `Flaky.pick` go wrong: "random", "set body", "set domain" or "" (none)
FLAW = [""]


class Counter(Component):
    """Counts to 40; `late` is enabled from 30 on; each body counts its runs."""
    n: int = 0
    done: bool = False

    @action(when=lambda self: self.n < 40)
    def up(self):
        RUNS["up"] += 1
        self.n += 1

    @action(when=lambda self: self.n >= 30 and not self.done)
    def late(self):
        RUNS["late"] += 1
        self.done = True


def _flaky_domain(self):
    return [next(iter(self.names))] if FLAW[0] == "set domain" else sorted(self.names)[:1]


class Flaky(Component):
    """As `Counter`, with `late` (from 30 on) or `pick` nondeterministic as `FLAW` says."""
    n: int = 0
    x: int = 0
    names: frozenset[str] = frozenset({"a", "b", "c"})
    picked: str = ""

    @action(when=lambda self: self.n < 40)
    def up(self):
        self.n += 1

    @action(when=lambda self: self.n >= 30 and self.x == 0)
    def late(self):
        self.x = 1 + (FLAW[0] == "random" and random.random() < 0.5)

    @action(over=_flaky_domain, when=lambda self, s: self.n >= 30 and self.picked == "")
    def pick(self, s):
        self.picked = next(iter(self.names)) if FLAW[0] == "set body" else s


def _system(cls: type) -> System:
    s = System("whole")
    s.add("c", cls)
    return s


def _search(k: Kernel) -> dict:
    """Every reachable state of `k` and its successors (event, state), depth first."""
    (start, _), = k.initial_states()
    graph: dict = {}
    todo = [start]
    while todo:
        x = todo.pop()
        if x in graph:
            continue
        graph[x] = [(ev, t) for ev, t, _ in k.successors(x)[0]]
        todo.extend(t for _, t in graph[x])
    return graph


def _spy(monkeypatch: pytest.MonkeyPatch, obj: object, name: str) -> list:
    """Note the calls of `obj.name` (the real one runs)."""
    calls: list = []
    real = getattr(obj, name)

    def noted(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(obj, name, noted)
    return calls


def test_a_sampled_state_runs_its_guards_and_steps_in_one_pair_of_runs(monkeypatch):
    k = Kernel(_system(Counter))
    assert k._memo_once
    twice = _spy(monkeypatch, kernel_module, "twice")
    RUNS.update(up=0, late=0)
    graph = _search(k)
    # n = 0..40 with `late` not done, n = 30..40 with it done: every state sampled (the
    # first 1,000), one pair of runs each (and one for the start), and each of its steps
    # run twice
    assert len(graph) == 41 + 11
    assert len(twice) == len(graph) + 1
    assert sum("_checked_state" in run.__qualname__ for run, in twice) == len(graph)
    assert RUNS == {"up": 2 * (40 + 10), "late": 2 * 11}


def test_every_state_checked_or_none_the_same_states_and_outcomes():
    m = load_module(LAMPORT)
    graphs = []
    for every in (1, 10 ** 9):
        k = Kernel(m.system(3, 3))
        assert k._memo_once
        k._sampler.first, k._sampler.every = 0, every
        graph = _search(k)
        graphs.append({k.fingerprint(x): sorted((k.describe(ev), k.fingerprint(t))
                                                for ev, t in succ)
                       for x, succ in graph.items()})
    assert len(graphs[0]) == 10_209
    assert graphs[0] == graphs[1]


def test_past_the_start_each_action_is_checked_at_the_rate_of_its_states(monkeypatch):
    m = load_module(LAMPORT)
    k = Kernel(m.system(3, 3))
    k._sampler.first, k._sampler.every = 0, 16
    twice = _spy(monkeypatch, kernel_module, "twice")
    compared = _spy(monkeypatch, k, "_compare")
    graph = _search(k)
    assert sum("_checked_state" in run.__qualname__ for run, in twice) == len(graph) // 16
    # a step checked on its own only where its action went 64 steps unchecked: a few
    assert len(twice) - len(graph) // 16 < 20
    steps: dict[str, int] = {}
    for succ in graph.values():
        for ev, _ in succ:
            name = k.slots[~ev][2] if k.slots[~ev][0] == "action" else None
            act = k.instances[0].info.actions[name].name
            steps[act] = steps.get(act, 0) + 1
    checked: dict[str, int] = {}
    for call in compared:
        checked[call[3]] = checked.get(call[3], 0) + 1
    assert set(checked) == set(steps)
    for act, n in steps.items():
        assert n / 24 <= checked[act] <= n / 6, (act, n, checked[act])


@pytest.mark.parametrize("flaw", ["random", "set body", "set domain"])
def test_nondeterminism_past_the_start_is_refused_in_a_sampled_state(flaw):
    FLAW[0] = flaw
    try:
        k = Kernel(_system(Flaky))
        k._sampler.first, k._sampler.every = 0, 4
        with pytest.raises(SpecError, match="two different results"):
            _search(k)
        FLAW[0] = ""
        k = Kernel(_system(Flaky))
        k._sampler.first, k._sampler.every = 0, 4
        assert len(_search(k)) > 40                 # (deterministic: no error)
    finally:
        FLAW[0] = ""


@pytest.mark.parametrize("flaw", ["random", "set body"])
def test_an_action_first_enabled_past_the_sampled_start_is_checked_in_its_first_steps(flaw):
    """No state past the fifth is sampled; `late` and `pick`, first enabled at the 31st,
    are checked in their own first steps."""
    FLAW[0] = flaw
    try:
        k = Kernel(_system(Flaky))
        k._sampler.first, k._sampler.every = 5, 10 ** 9
        with pytest.raises(SpecError, match="two different results"):
            _search(k)
    finally:
        FLAW[0] = ""


class Alternate(Component):
    """Counts to 40, `odd` from odd counts, `even` from even ones: in a search with first 0
    and every 2, the states the sampler picks are those with n odd (the second, fourth, ...
    whose actions are computed), so `even` never runs in one."""
    n: int = 0

    @action(when=lambda self: self.n % 2 == 1 and self.n < 40)
    def odd(self):
        self.n += 1

    @action(when=lambda self: self.n % 2 == 0 and self.n < 40)
    def even(self):
        self.n += 1 + 2 * (FLAW[0] == "random" and random.random() < 0.5)


def test_an_action_whose_steps_the_sampled_states_never_hold_is_still_checked(monkeypatch):
    """Its steps are checked on their own where it went `4 * every` steps unchecked."""
    k = Kernel(_system(Alternate))
    k._sampler.first, k._sampler.every = 0, 2
    compared = _spy(monkeypatch, k, "_compare")
    _search(k)
    done = [call[3] for call in compared]
    assert done.count("odd") == 20                      # all in the states picked
    assert done.count("even") == 20 // (4 * 2 + 1)      # on their own: the 9th, the 18th
    FLAW[0] = "random"
    try:
        k = Kernel(_system(Alternate))
        k._sampler.first, k._sampler.every = 0, 2
        with pytest.raises(SpecError, match="two different results"):
            _search(k)
    finally:
        FLAW[0] = ""
