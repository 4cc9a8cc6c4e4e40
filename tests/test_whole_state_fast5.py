"""Whole-state specs, fifth round (issue 11 item 3): the shortcuts of that round, each next to
the bug it must still catch.

- a plain action of a component holding every variable runs in one call
  (`Runner.quick_action`): anything that is not plain — a choice, a send, an exception, an
  attribute that is not a field, a value of the wrong type — goes the general way
  (`explore(run_action(...))`) and gives its outcome, violation or error as before;
- a record class checks its fields with one generated function (`types.record_checker`),
  its own (a subclass's is not its base's);
- a flat tuple of exact values is exact in one C test (`types._exact`); a bool or an IntEnum
  in it still is not;
- a domain equal to the action's last distinct domain is distinct without hashing it.

Components are defined at module level (the kernel reads their source for some checks).
"""
from __future__ import annotations

import enum
import random

import pytest

from assay import Component, Message, Record, System, action
from assay.checker import check
from assay.errors import SpecError
from assay.kernel import Kernel
from assay.kernel.exec import Runner
from assay.model.types import exact_key, parse_type
from tests.test_whole_state_fast4 import _load


def _general_only(monkeypatch) -> None:
    monkeypatch.setattr(Runner, "quick_action", lambda self, *a: None)


def _every_outcome(system: System) -> list:
    """Every reachable state's action outcomes, in BFS order (by the values of local states,
    not their ids, so two kernels compare)."""
    k = Kernel(system)
    inst = k.instances[0]
    seen = {s for s, _ in k.initial_states()}
    todo = list(seen)
    out = []
    while todo:
        s = todo.pop(0)
        acts = k._action_outcomes(inst, s[0][0])
        out.append((inst.table.values[s[0][0]],
                    [(slot, inst.table.values[o[0]], o[1:]) for slot, o in acts]))
        steps, _ = k.successors(s)
        for _, t, _ in steps:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return out


# --- the quick path gives what the general one gives ---------------------------------------


@pytest.mark.parametrize(("spec", "params"), [("tla_lamport_mutex", {"n": 2, "max_clock": 3}),
                                              ("tla_paxos_commit", {"ballots": 2})])
def test_the_quick_path_gives_every_outcome_of_the_general_one(spec, params, monkeypatch):
    m = _load(spec)
    quick = _every_outcome(m.system(**params))
    _general_only(monkeypatch)
    general = _every_outcome(m.system(**params))
    assert len(quick) in (191, 1461)
    assert quick == general


@pytest.mark.parametrize(("spec", "params", "states", "transitions"),
                         [("tla_lamport_mutex", {"n": 3, "max_clock": 3}, 10209, None),
                          ("tla_paxos_commit", {"ballots": 2}, 1461, None)])
def test_counts_and_verdicts_are_those_of_the_general_path(spec, params, states, transitions,
                                                           monkeypatch):
    m = _load(spec)
    fast = check(m.system(**params))
    _general_only(monkeypatch)
    slow = check(m.system(**params))
    assert fast.ok and slow.ok
    assert fast.states == slow.states == states
    assert fast.transitions == slow.transitions


@pytest.mark.parametrize(("spec", "prop"), [("tla_lamport_mutex_bug_ties", "mutex"),
                                            ("tla_paxos_commit_bug_any", "tc_consistent")])
def test_the_bug_twins_are_still_found(spec, prop, monkeypatch):
    fast = check(_load(spec).system())
    assert not fast.ok
    assert fast.violation.kind == "property" and prop in fast.violation.message
    _general_only(monkeypatch)
    slow = check(_load(spec).system())
    assert (fast.states, len(fast.steps)) == (slow.states, len(slow.steps))


class Vote(Message):
    n: int


class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Unplain(Component):
    """Each action is plain but for one thing, which the general path must see."""

    n: int = 0
    votes: frozenset[Message] = frozenset()
    level: Level = Level.LOW

    @action(when=lambda self: self.n == 0)
    def count(self):                                    # plain
        self.n = 1

    @action(when=lambda self: self.n == 1)
    def wrong_type(self):                               # a bool for an int
        self.n = True

    @action(when=lambda self: self.n == 1)
    def bad_vote(self):                                 # a member of the wrong type
        self.votes = self.votes | {Vote("x")}

    @action(when=lambda self: self.n == 1)
    def raises(self):
        raise ValueError("no")

    @action(when=lambda self: self.n == 1)
    def wrong_enum(self):
        self.level = "high"


def test_a_step_that_is_not_plain_gives_its_violation_as_before(monkeypatch):
    s = System("unplain")
    s.add("u", Unplain)
    k = Kernel(s)
    inst = k.instances[0]
    lid = k.initial_states()[0][0][0][0]
    (_, first), = k._action_outcomes(inst, lid)
    after = inst.table.values[first[0]]
    quick = [(o[0], o[2]) for _, o in k._action_outcomes(inst, first[0])]
    _general_only(monkeypatch)
    k2 = Kernel(s)
    lid2 = k2.instances[0].table.intern(after)
    general = [(o[0], o[2]) for _, o in k2._action_outcomes(k2.instances[0], lid2)]
    assert [v for _, v in quick] == [v for _, v in general]
    kinds = [v[0].kind for _, v in quick]
    assert kinds == ["type", "type", "exception", "type"]
    assert "u.wrong_type set u.n to True" in quick[0][1][0].message
    assert "votes" in quick[1][1][0].message
    assert "ValueError: no" in quick[2][1][0].message
    assert "level" in quick[3][1][0].message


class Sneaky(Component):
    n: int = 0

    @action(when=lambda self: self.n == 0)
    def stray(self):
        self.n = 1
        setattr(self, "ex" + "tra", 2)              # (not seen in the source)


def test_an_attribute_that_is_not_a_field_is_still_a_spec_error():
    with pytest.raises(SpecError, match="assigns self.extra, which is not a field"):
        s = System("sneaky")
        s.add("s", Sneaky)
        check(s)


class Chooses(Component):
    n: int = 0

    @action(when=lambda self: self.n == 0)
    def pick(self):
        self.n = self.choose([1, 2, 3])


class HiddenChoice(Component):
    n: int = 0

    @action(when=lambda self: self.n == 0)
    def pick(self):
        self.n = getattr(self, "cho" + "ose")([1, 2, 3])     # (not seen in the source)


def test_a_step_that_chooses_still_branches():
    s = System("chooses")
    s.add("c", Chooses)
    r = check(s)
    assert r.states == 4 and r.transitions == 3         # then a deadlock: nothing enabled
    h = System("hidden")
    h.add("h", HiddenChoice)
    with pytest.raises(SpecError, match="chooses .self.choose. in a way assay did not see"):
        check(h)


# --- generated record checks ----------------------------------------------------------------


class Base(Record):
    a: int


class Child(Base):
    b: str


class Inner(Record):
    level: Level
    ns: tuple[int, ...]


class Outer(Message):
    inner: Inner
    maybe: int | None
    tag: frozenset[str]


def test_a_record_class_checks_its_own_fields_not_its_bases():
    assert Base.__assay_conforms__(Base(1))             # Base's check is made first
    assert not Base.__assay_conforms__(Base(True))
    assert Child.__assay_conforms__(Child(1, "x"))
    assert not Child.__assay_conforms__(Child(1, 2))    # b is not a str
    assert not Child.__assay_conforms__(Child(False, "x"))
    assert "__assay_conforms__" in Child.__dict__


def test_generated_record_checks_agree_with_the_field_types():
    rng = random.Random(5)
    t = parse_type(Outer)
    leaves = [0, 7, True, None, "s", Level.LOW, "low", (1, 2), (1, True), (), frozenset({"a"}),
              frozenset({1}), Inner(Level.HIGH, (3,))]
    good = bad = 0
    def pick(good: list) -> object:
        return rng.choice(good) if rng.random() < 0.75 else rng.choice(leaves)

    for _ in range(600):
        inner = Inner(pick([Level.LOW, Level.HIGH]), pick([(), (1, 2), (5,)]))
        r = Outer(pick([inner]), pick([None, 0, 7]), pick([frozenset(), frozenset({"a"})]))
        expected = isinstance(r.inner, Inner) and \
            type(r.inner.level) is Level and type(r.inner.ns) is tuple and \
            all(type(x) is int for x in r.inner.ns) and \
            (r.maybe is None or type(r.maybe) is int) and \
            type(r.tag) is frozenset and all(type(x) is str for x in r.tag)
        assert t.conforms(r) == expected, r
        assert (r.bad_field() is None) == expected, r
        good += expected
        bad += not expected
    assert good > 20 and bad > 100


# --- exact keys -----------------------------------------------------------------------------


class Rank(enum.IntEnum):
    ONE = 1


def test_a_flat_tuple_is_exact_unless_a_value_equals_another_kind():
    assert exact_key((1, 2)) == (1, 2) and type(exact_key((1, 2))) is tuple
    assert exact_key((1, "a", None, Level.LOW)) == (1, "a", None, Level.LOW)
    for v in [(1, True), (True,), (1, Rank.ONE), frozenset({True, 2}), ((1, 2), (True,))]:
        assert type(exact_key(v)) is bytes, v           # canonical bytes: 1 != True there
    assert exact_key((1, True)) != exact_key((1, 1))
    assert exact_key(Level.LOW) is Level.LOW and type(exact_key(Rank.ONE)) is bytes


# --- domains --------------------------------------------------------------------------------

SHARED: list = []


def _shared(self):
    """The same list object every time, which grows a duplicate at n == 1."""
    if self.n == 1 and len(SHARED) == 2:
        SHARED.append(SHARED[0])
    return SHARED


class Over(Component):
    n: int = 0

    @action(over=_shared, when=lambda self, k: self.n < 2)
    def step(self, k):
        self.n = self.n + 1


def test_a_domain_that_gains_a_duplicate_is_still_a_set():
    SHARED[:] = [10, 20]
    s = System("over")
    s.add("o", Over)
    r = check(s)
    # n = 0, 1, 2 (then nothing is enabled); two events from each of the first two states,
    # not three from the second (whose domain is [10, 20, 10])
    assert len(SHARED) == 3
    assert r.states == 3 and r.transitions == 4
