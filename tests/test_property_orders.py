"""A property's first evaluations again with its sets in other orders (`reorder`): only the
orders that differ are evaluated, and a property that reads a set's order (or the clock) is
still refused."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay.checker import check
from assay.errors import SpecError
from assay.kernel.reorder import PROPERTY_ORDERS, _permutation, orders_for
from assay.model.load import build


def _how(k: int, sizes: list[int]) -> tuple[tuple[int, ...], ...]:
    return tuple(_permutation(k, n) for n in sizes)


@given(st.sets(st.integers(2, 9), max_size=4))
def test_the_orders_evaluated_are_every_order_but_the_plain_one_once(sizes: set[int]) -> None:
    ns = sorted(sizes)
    plain = tuple(tuple(range(n)) for n in ns)
    every = {_how(k, ns) for k in range(PROPERTY_ORDERS)} - {plain}
    got = orders_for(sizes)
    assert len({_how(k, ns) for k in got}) == len(got)          # no order twice
    if every:
        assert {_how(k, ns) for k in got} == every
    else:
        assert got == [0]                   # no set to reorder: one evaluation still


def test_fewer_evaluations_where_sets_are_small() -> None:
    assert orders_for(set()) == [0]
    assert orders_for({2}) == [0]               # rotated by 1 or 3 is reversed, by 2 plain
    assert orders_for({3}) == [0, 1, 2]         # rotated by 3 is plain
    assert orders_for({2, 3}) == [0, 1, 2, 3]   # (2 reversed, 3 plain) only with k = 3
    assert orders_for({4}) == [0, 1, 2, 3]


SPEC = """
import itertools
from assay import Component, System, action

TICK = itertools.count()

class C(Component):
    names: frozenset[str] = frozenset(NAMES)
    n: int = 0

    @action(when=lambda self: self.n < 2)
    def up(self):
        self.n += 1

def system():
    s = System("orders")
    s.add("c", C)

    @s.always
    def prop(g):
        return BODY

    @s.terminal
    def end(g):
        return True

    return s
"""


@pytest.mark.parametrize("names, body", [
    # the first of two: reversed is the only other order
    ('{"alice", "bob"}', 'next(iter(g["c"].names)) != "alice"'),
    ('{"alice", "bob"}', 'next(iter(g["c"].names)) != "bob"'),
    # the last of three: caught in a rotation
    ('{"alice", "bob", "carol"}', 'list(g["c"].names)[1] != "alice"'),
    # no set of two or more: the one evaluation left still tells a counter
    ('{"alice"}', "next(TICK) % 2 == 0"),
    ("()", "next(TICK) % 2 == 0"),
])
def test_a_property_that_reads_an_order_or_a_counter_is_refused(
        tmp_path: Path, names: str, body: str) -> None:
    path = tmp_path / "orders.py"
    path.write_text(textwrap.dedent(SPEC).replace("NAMES", names).replace("BODY", body))
    system, _, _ = build(str(path), None, {})
    with pytest.raises(SpecError, match="property 'prop' is not a function of the state"):
        check(system)


def test_a_property_of_the_sets_contents_passes(tmp_path: Path) -> None:
    path = tmp_path / "orders.py"
    path.write_text(textwrap.dedent(SPEC).replace("NAMES", '{"alice", "bob", "carol"}')
                    .replace("BODY", 'min(g["c"].names) == "alice"'))
    system, _, _ = build(str(path), None, {})
    assert check(system).violation is None


def test_a_states_orders_are_found_once_for_all_its_properties(monkeypatch) -> None:
    """coin_election has two properties: the orders of a state's sets (and its reordered
    world) are prepared once per state evaluated, not once per property (before: twice)."""
    from assay.kernel import Kernel, reorder

    system, _, _ = build(str(Path(__file__).resolve().parents[1] / "specs" /
                             "coin_election_bug_ties.py"), None, {})
    assert len(system.properties) == 2
    found: list[object] = []
    plain = reorder._orders

    def noted(kernel: object, state: object) -> list[int]:
        found.append(state)
        return plain(kernel, state)

    monkeypatch.setattr(reorder, "_orders", noted)
    k = Kernel(system)
    states = [s for s, _ in k.initial_states()]
    for s in states:
        k.property_violations(s)
    assert found == states
