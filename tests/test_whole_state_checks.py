"""The kernel's per-step checks made cheap for whole-state components (issue 11): a type check of
only what a step changed, and the determinism check on a sample of memo misses.  Each shortcut
is shown to still catch the bug it must catch, next to a spec without the bug.

Components are defined at module level (the kernel reads their source for some checks).
"""
from __future__ import annotations

import enum
import random
from typing import Annotated

import pytest

from assay import Component, Map, Message, Range, Record, System, action
from assay.checker import check
from assay.errors import SpecError
from assay.kernel import Kernel
from assay.kernel.determinism import Sampler
from assay.model.types import exact_key, parse_type, state_checker
from assay.verifier.types import plain_record


class Vote(Message):
    n: int


# --- type checks of only what changed ---------------------------------------------------------


def test_conforms_from_checks_what_is_new_and_passes_what_is_kept():
    t = parse_type(tuple[tuple[int, ...], ...])
    old = ((1, 2), (3,))
    assert t.conforms_from(old, old)
    assert t.conforms_from((old[0], (3, 4)), old)
    assert not t.conforms_from((old[0], (3, True)), old)        # equal to 1 in Python
    assert not t.conforms_from((old[0], (3, "4")), old)
    assert t.conforms_from((old[0],), old)
    assert not t.conforms_from((*old, (True,)), old)            # an item added: checked
    assert not t.conforms_from(((True,), old[1]), old)          # (True,) == (1,) is new


def test_conforms_from_an_equal_message_of_another_field_type_is_not_the_old_one():
    t = parse_type(frozenset[Message])
    good = frozenset({Vote(1), Vote(2), Vote(3)})
    assert t.conforms_from(good | {Vote(4)}, good)
    bad = frozenset({Vote(True), Vote(2), Vote(3)})           # == good, but Vote(True) is new
    assert bad == good
    assert not t.conforms_from(bad, good)
    shifted = tuple(good)[1:] + (Vote(True),)                 # a channel popped and pushed
    assert not parse_type(tuple[Message, ...]).conforms_from(shifted, tuple(good))
    assert parse_type(tuple[Message, ...]).conforms_from(tuple(good)[1:], tuple(good))


class Color(enum.Enum):
    RED = 1
    BLUE = 2


_GEN_TYPES = [tuple[tuple[int, ...], ...], frozenset[Message], tuple[Message, ...],
              tuple[tuple[tuple[Message, ...], ...], ...], tuple[frozenset[int], ...],
              tuple[tuple[int, int, Color], ...], tuple[Annotated[int, Range(0, 3)], ...],
              Map[int, int], tuple[tuple[int, ...] | None, ...], frozenset[tuple[int, ...]],
              tuple[bool, str, Color], Vote | None, tuple[()]]


def _value(t, rng, bad):
    """A random value of type spec `t`'s annotation form; `bad`: sometimes a wrong leaf."""
    from assay.model import types as ty
    if bad and rng.random() < 0.15:
        return rng.choice([True, "x", 7, Vote(True), (1,), Color.RED, None, frozenset()])
    if isinstance(t, ty._Bool):
        return rng.random() < 0.5
    if isinstance(t, ty._Int):
        return rng.randint(0, 3)
    if isinstance(t, ty._Str):
        return rng.choice("ab")
    if isinstance(t, ty._Enum):
        return rng.choice(list(t.cls))
    if isinstance(t, ty._Record):
        return Vote(rng.choice([1, 2, True]) if bad else rng.randint(1, 2))
    if isinstance(t, ty._Optional):
        return None if rng.random() < 0.3 else _value(t.inner, rng, bad)
    if isinstance(t, ty._FrozenSet):
        return frozenset(_value(t.elem, rng, bad) for _ in range(rng.randint(0, 3)))
    if isinstance(t, ty._Map):
        return Map({_value(t.key, rng, bad): _value(t.value, rng, bad)
                    for _ in range(rng.randint(0, 3))})
    if t.elems is not None:
        return tuple(_value(e, rng, bad) for e in t.elems)
    return tuple(_value(t.rest, rng, bad) for _ in range(rng.randint(0, 3)))


def _changed(t, old, rng):
    """`old` with a random part replaced, appended, dropped or rotated (the rest kept: the
    same objects), possibly by a value of the wrong type."""
    from assay.model import types as ty
    if isinstance(t, ty._Optional):
        t = t.inner
    if type(old) is tuple and old and isinstance(t, ty._Tuple) and rng.random() < 0.6:
        i = rng.randrange(len(old))
        sub = t.elems[i] if t.elems is not None else t.rest
        r = rng.random()
        if r < 0.5:
            return old[:i] + (_changed(sub, old[i], rng),) + old[i + 1:]
        if t.elems is None:
            if r < 0.7:
                return old[1:] + (_value(sub, rng, True),)
            if r < 0.85:
                return old[1:]
            return old[1:] + old[:1]
    if type(old) is frozenset and old and isinstance(t, ty._FrozenSet) and rng.random() < 0.5:
        return old | {_value(t.elem, rng, True)}
    return _value(t, rng, True)


def test_the_generated_state_checker_agrees_with_the_type_specs():
    """The generated per-type check (`state_checker`) gives `conforms(new)` for a new state
    sharing parts with a conforming old one: a wrong value deep in a nested tuple, an item
    appended to a channel, a rotated channel, a set that grew — and accepts the right ones."""
    rng = random.Random(11)
    specs = [parse_type(a) for a in _GEN_TYPES]
    check = state_checker(tuple(specs))
    both = [0, 0]
    for _ in range(800):
        olds = []
        for t in specs:
            old = _value(t, rng, False)
            assert t.conforms(old)
            olds.append(old)
        news = list(olds)
        for _ in range(rng.randint(1, 2)):
            k = rng.randrange(len(specs))
            news[k] = _changed(specs[k], news[k], rng)
        want = all(t.conforms(v) for t, v in zip(specs, news))
        assert check(tuple(news), tuple(olds)) == want, (news, olds)
        both[want] += 1
        for t, v, o in zip(specs, news, olds):
            assert state_checker((t,))((v,), (o,)) == t.conforms(v) == t.conforms_from(v, o)
    assert min(both) > 100                     # many bad states caught, many good ones passed


def test_the_generated_checker_catches_a_bad_message_appended_deep_in_a_channel():
    t = parse_type(tuple[tuple[tuple[Message, ...], ...], ...])
    check = state_checker((t,))
    old = (((Vote(1),), ()), ((), (Vote(2), Vote(1))))
    ok = ((old[0][0], (Vote(3),)), old[1])
    assert check((ok,), (old,))
    for bad in [((old[0][0], (Vote(True),)), old[1]),
                (old[0], ((), old[1][1][1:] + (Vote("2"),))),
                (old[0], ((), old[1][1] + (3,)))]:
        assert not check((bad,), (old,)) and not t.conforms(bad)
    assert check(((old[0], ((), old[1][1][1:] + old[1][1][:1])),), (old,))


def test_conforms_from_a_map_checks_every_key_and_each_new_value():
    t = parse_type(Map[int, int])
    old = Map({1: 10, 2: 20})
    assert t.conforms_from(old.set(3, 30), old)
    assert not t.conforms_from(Map({True: 10, 2: 20}), old)      # key True finds 1's entry
    assert not t.conforms_from(old.set(2, "x"), old)


class Ledger(Component):
    """One component holding every variable; `rebuild` makes its set of messages afresh, with
    one message whose field is a bool (equal to an int, so equal to the message it replaces)
    when `bad`."""

    msgs: frozenset[Vote] = frozenset({Vote(1), Vote(2)})
    rows: tuple[tuple[int, ...], ...] = ((0, 0), (0, 0))
    bad: bool = False
    done: bool = False

    @action(when=lambda self: not self.done)
    def rebuild(self):
        self.msgs = frozenset([Vote(True if self.bad else 1), Vote(2)])
        self.rows = (self.rows[0], (0, True if self.bad else 0))
        self.done = True


def ledger(bad: bool) -> System:
    s = System("ledger")
    s.add("l", Ledger, bad=bad)
    s.terminal(lambda g: True)
    return s


def test_a_value_equal_to_the_old_one_but_of_another_type_is_a_type_violation():
    r = check(ledger(True))
    assert r.verdict == "violation"
    assert (r.violation.kind, r.violation.blame) == ("type", "l.rebuild")
    assert "l.msgs" in r.violation.message


def test_a_rebuilt_state_of_the_right_types_passes():
    r = check(ledger(False))
    assert (r.verdict, r.states) == ("ok", 2)


# --- the determinism check on a sample of misses ----------------------------------------------


RUNS: list[int] = []


class Counter(Component):
    """Counts to `top`; from `wild` on, `tick` stores a random number (nondeterministic)."""

    n: int = 0
    top: int = 40
    wild: int = 1000
    noise: int = 0

    @action(when=lambda self: self.n < self.top)
    def tick(self):
        RUNS.append(self.n)
        self.n += 1
        if self.n >= self.wild:
            self.noise = random.randrange(10**9)


def counter(top: int, wild: int) -> Kernel:
    s = System("counter")
    s.add("c", Counter, top=top, wild=wild)
    s.terminal(lambda g: True)

    @s.always
    def bounded(g):
        return g["c"].n <= top
    k = Kernel(s)
    k._sampler = Sampler(first=5, every=4)     # small, to see past the first misses here
    return k


def test_sampled_misses_run_once_past_the_first_ones():
    RUNS.clear()
    # the full-state BFS expands each state once; the compact one expands a state again when
    # its packed fields had to widen (here twice: n reaches 4 and 16), which is a memo miss too
    assert check(counter(40, 1000), full_states=True).verdict == "ok"
    # 40 misses of tick: the first 5 and then every 4th (8, 12, ..., 40) run twice
    assert len(RUNS) == 40 + 5 + 9


def test_a_step_nondeterministic_only_past_the_first_misses_is_still_caught():
    with pytest.raises(SpecError) as e:
        check(counter(40, 20))
    assert "Counter.tick (instance c) gave two different results" in e.value.message


def test_the_sampler_is_a_fixed_rule():
    a, b = Sampler(first=3, every=5), Sampler(first=3, every=5)
    due = [a.due("x") for _ in range(20)]
    assert due == [b.due("x") for _ in range(20)]
    assert [i + 1 for i, d in enumerate(due) if d] == [1, 2, 3, 5, 10, 15, 20]
    assert a.due("y")                              # per key


# --- deduplicating domains and interning events without canonical bytes ------------------------


class Picky(Component):
    got: tuple = ()

    @action(over=lambda self: [1, True, 1, (1, 2), (True, 2), (1, 2), Vote(1), Vote(True)],
            when=lambda self, x: not self.got)
    def pick(self, x):
        self.got = (x,)


def test_domain_values_equal_in_python_but_of_different_types_are_different_events():
    s = System("picky")
    s.add("p", Picky)
    s.terminal(lambda g: True)
    k = Kernel(s)
    (state, _), = k.initial_states()
    args = [k.event(e).arg for e in k.enabled_events(state)]
    assert [(type(a), a) for a in args] == [
        (int, 1), (bool, True), (tuple, (1, 2)), (tuple, (True, 2)), (Vote, Vote(1)),
        (Vote, Vote(True))]
    assert args[3][0] is True and args[5].n is True
    assert check(k).states == 7


def test_exact_key_is_the_value_where_python_equality_is_exact():
    assert exact_key((1, "a", frozenset({2}))) == (1, "a", frozenset({2}))
    assert exact_key(True) != exact_key(1)
    assert exact_key((True,)) != exact_key((1,))
    assert exact_key(Vote(True)) != exact_key(Vote(1))
    assert exact_key(Vote(1)) == Vote(1)


# --- one live object for every guard of a state ---------------------------------------------


class Meddler(Component):
    """`a`'s guard assigns a field (through a helper); `b`'s guard must still see the state."""

    x: int = 0

    def bump(self):
        setattr(self, "x", 7)  # noqa: B010 (`self.x = 7` is a spec error read from the code)
        return False

    @action(when=lambda self: self.bump())
    def a(self):
        pass

    @action(when=lambda self: self.x == 0)
    def b(self):
        self.x = 1


def test_a_guard_that_assigns_a_field_does_not_change_what_other_guards_see():
    s = System("meddler")
    s.add("m", Meddler)
    s.terminal(lambda g: True)
    k = Kernel(s)
    k._sampler = Sampler(first=0, every=10**9)    # no determinism runs: one reader per state
    r = check(k)
    assert (r.verdict, r.states) == ("ok", 2)


# --- records: field reads as properties ---------------------------------------------------------


class Point(Record):
    x: int
    y: int = 0


class Point3(Point):
    z: int = 0


class Moved(Point):
    x: int = 5          # re-declared: now after y


def test_record_fields_read_as_properties_through_subclasses():
    p = Point3(1, 2, 3)
    assert (p.x, p.y, p.z) == (1, 2, 3)
    assert Point(4).y == 0 and Point(x=4, y=1).y == 1
    assert Moved.__assay_fields__ == ("y", "x")
    assert (Moved(1).y, Moved(1).x) == (1, 5)
    with pytest.raises(AttributeError):
        _ = p.w
    assert plain_record(Point3)          # what the verifier translates: still plain


def test_a_message_built_by_position_equals_one_built_by_name():
    assert Vote(3) == Vote(n=3) and Vote(3).values() == (3,)


# --- memos that cannot hit are not kept -------------------------------------------------------


def test_a_whole_state_search_keeps_no_memo_by_local_state_and_counts_the_same():
    k = counter(40, 1000)
    r = check(k)
    assert (r.verdict, r.states) == ("ok", 41)
    assert k.instances[0].amemo == {} and k.instances[0].views == {}
    assert k._property_memo == {} and k.property_evaluations == 41
    assert check(k).states == 41                  # a second search recomputes: the same


class Deleter(Component):
    x: int = 0

    @action(when=lambda self: self.x == 0)
    def drop(self):
        del self.x


def test_a_step_that_deletes_a_field_is_a_type_violation():
    s = System("deleter")
    s.add("d", Deleter)
    r = check(s)
    assert (r.violation.kind, r.violation.blame) == ("type", "d.drop")
    assert "deleted field 'x'" in r.violation.message
