"""Whole-state specs, eighth round (issue 11 item 3): what each shortcut skips would still be
caught.  The generated state check tests a tuple or frozenset of exactly typed scalars (int,
bool, an Enum, an int range) in C (`set.issuperset(map(type, v))`, `min`/`max`) rather than
item by item in bytecode: it must give what the type specs give, on the values Python's
equality confuses (`True == 1`, an IntEnum and its int, `1.0 == 1`).
"""
from __future__ import annotations

import enum
import random
from typing import Annotated

from assay import Range
from assay.model.types import parse_type, record_checker, state_checker
from tests.test_whole_state_checks import Color, _changed, _value


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


_SCALAR_COLLECTIONS = [tuple[int, ...], tuple[bool, ...], tuple[Color, ...],
                       tuple[Annotated[int, Range(0, 3)], ...], frozenset[int],
                       frozenset[bool], frozenset[Color], frozenset[Annotated[int, Range(0, 3)]],
                       tuple[tuple[int, ...], ...], tuple[frozenset[Color], ...],
                       tuple[tuple[bool, ...] | None, ...]]

# values equal in Python to a right one, of another type: each must fail where it is wrong
_IMPOSTORS = [True, False, 1.0, 0.0, Level.LOW, 4, -1, Color.RED, None, "1"]


def test_scalar_collections_checked_in_c_agree_with_the_type_specs():
    """800 random old/new pairs per type (a part replaced, appended, dropped, a set grown,
    sometimes by a wrong value), then every impostor put in every collection type: the
    generated check says what `conforms` says."""
    rng = random.Random(8)
    specs = [parse_type(a) for a in _SCALAR_COLLECTIONS]
    check = state_checker(tuple(specs))
    both = [0, 0]
    for _ in range(800):
        olds = [_value(t, rng, False) for t in specs]
        assert all(t.conforms(o) for t, o in zip(specs, olds))
        news = list(olds)
        k = rng.randrange(len(specs))
        news[k] = _changed(specs[k], news[k], rng)
        want = all(t.conforms(v) for t, v in zip(specs, news))
        assert check(tuple(news), tuple(olds)) == want, (news, olds)
        both[want] += 1
    assert min(both) > 100
    for t in specs[:8]:
        one = state_checker((t,))
        kind = tuple if isinstance(t, type(parse_type(tuple[int, ...]))) else frozenset
        good = _value(t, rng, False)
        for bad in _IMPOSTORS:
            for new in (kind([bad]), kind([*good, bad]) if kind is tuple else good | {bad}):
                assert one((new,), (good,)) == t.conforms(new), (t.describe(), new)
                assert one((new,), (None,)) == t.conforms(new), (t.describe(), new)


def test_a_bool_or_an_intenum_among_ints_is_still_a_type_violation():
    """The cases the C test must not let through: `True` in a tuple of ints (`True == 1`), an
    IntEnum member, a float; an int out of its range, at either end; a member of another
    Enum; in a nested tuple and in a record's field too."""
    ints = state_checker((parse_type(tuple[tuple[int, ...], ...]),))
    old = ((1, 2), (3,))
    assert ints((((1, 2), (3, 4)),), (old,))
    for bad in (True, Level.LOW, 1.0):
        assert not ints((((1, 2), (3, bad)),), (old,))
    ranged = state_checker((parse_type(frozenset[Annotated[int, Range(1, 2)]]),))
    assert ranged((frozenset({1, 2}),), (frozenset(),))
    assert not ranged((frozenset({0, 1}),), (frozenset(),))
    assert not ranged((frozenset({2, 3}),), (frozenset(),))
    assert not ranged((frozenset({True}),), (frozenset(),))
    colors = state_checker((parse_type(tuple[Color, ...]),))
    assert not colors(((Color.RED, Level.HIGH),), ((Color.RED,),))
    rec = record_checker((parse_type(tuple[int, ...]), parse_type(frozenset[bool])))

    class R:
        def __init__(self, *v):
            self._values = v

    assert rec(R((1, 2), frozenset({True})))
    assert not rec(R((1, True), frozenset({True})))
    assert not rec(R((1, 2), frozenset({1})))
