"""Whole-state specs, fourth round (issue 11 item 3): the shortcuts of that round, each next to
the bug it must still catch.

- a step's live object and its context no longer refer to each other (but for a pool's owner,
  whose ports read its live slots, and then `_run` breaks the cycle): a search runs with the
  collector off, so each step's object was kept to the end (LamportMutex (3, 4): 370 MiB
  peak instead of 78);
- a set that grew is type-checked by its new members (found in C), a channel appended to or
  popped at its head by its new last item: a new member equal to an old one but another
  object (and of a wrong type) is still checked.

Components are defined at module level (the kernel reads their source for some checks).
"""
from __future__ import annotations

import gc
import importlib.util
from pathlib import Path

from assay import Component, Message, System, action
from assay.checker import check
from assay.kernel import Kernel
from assay.model.types import _items_from, parse_type, state_checker

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SPECS / f"{name}.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)      # type: ignore[union-attr]
    return m


# --- no cycle per step ----------------------------------------------------------------------


def _objects_of(cls: type) -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, cls))


def test_the_steps_of_a_search_leave_no_object_for_the_collector():
    m = _load("tla_lamport_mutex")
    k = Kernel(m.system(n=2, max_clock=3))
    was = gc.isenabled()
    gc.collect()
    gc.disable()                        # as during a search
    try:
        before = _objects_of(m.LamportMutex)
        seen = {s for s, _ in k.initial_states()}
        todo = list(seen)
        while todo:
            steps, _ = k.successors(todo.pop())
            for _, t, _ in steps:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        assert len(seen) == 191
        # every step's live object (hundreds) was freed by its count of references
        assert _objects_of(m.LamportMutex) - before < 5
    finally:
        if was:
            gc.enable()


def test_a_pool_owner_still_reads_its_live_slots_through_its_ports():
    """The owner's objects keep their context's reference (a port reads the live slots)."""
    r = check(_load("elastic_pool").system())
    assert r.ok, r
    bug = check(_load("elastic_pool_bug_retire_busy").system())
    assert not bug.ok


# --- type checks of grown sets and channels -------------------------------------------------


class Vote(Message):
    n: int


class Other(Message):
    n: int


def test_a_set_that_grew_is_checked_by_its_new_members_and_equal_new_objects_too():
    t = parse_type(frozenset[Message])
    elem = t.elem                                       # type: ignore[attr-defined]
    old = frozenset({Vote(1), Vote(2)})
    assert _items_from(elem, old | {Vote(3)}, old)
    assert not _items_from(elem, old | {Vote("x")}, old)         # a new member, wrong
    # Vote(True) == Vote(1): not "added" by set difference, but a new object: checked
    grown = frozenset({Vote(True), Vote(2), Other(5)})
    assert Vote(True) == Vote(1)
    assert not _items_from(elem, grown, old)
    assert not parse_type(frozenset[Message]).conforms(grown)
    # the same old set again (its ids are remembered): still right
    assert _items_from(elem, old | {Other(7)}, old)
    assert not _items_from(elem, frozenset({Vote(True), Vote(2)}), old)


def test_a_channel_appended_to_or_popped_is_checked_by_what_is_new():
    check_state = state_checker((parse_type(tuple[tuple[Message, ...], ...]),))
    ch = (Vote(1), Vote(2))
    old = ((ch, ()),)
    assert check_state((((*ch, Vote(3)), ()),), old)              # appended
    assert not check_state((((*ch, Vote("x")), ()),), old)        # appended, wrong
    assert not check_state((((*ch, 3), ()),), old)                # not a message
    assert check_state(((ch[1:], ()),), old)                      # popped
    # the same length and one more item, but an old item replaced by an equal new object
    assert not check_state((((Vote(True), ch[1], Vote(3)), ()),), old)
    # one fewer item, but not the old tail: each new object checked
    assert not check_state((((Vote(True),), ()),), old)
    assert check_state((((Vote(5),), ()),), old)


class Grower(Component):
    """Grows a set of messages; at 2 it adds a Vote whose field is a string: a type error."""

    votes: frozenset[Message] = frozenset()
    n: int = 0

    @action(when=lambda self: self.n < 3)
    def add(self):
        self.n = self.n + 1
        self.votes = self.votes | {Vote("two") if self.n == 2 else Vote(self.n)}


def test_a_search_finds_a_bad_member_added_to_a_set():
    s = System("grower")
    s.add("g", Grower)
    r = check(s)
    assert not r.ok
    assert r.violation.kind == "type"
    assert "votes" in r.violation.message
