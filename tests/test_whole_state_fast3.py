"""Whole-state specs, third round (issue 11 item 3): the shortcuts of that round, each next to
the bug it must still catch.

- guards share one live object per state; an assignment on it is noted by its class (no
  compare of every field after each action): a guard's helper that assigns, deletes or sets a
  field to an equal value of another type changes nothing the next guard sees;
- no successor cache and no property memo keyed by the whole state where each state is its
  own local state; the properties of one state share one view: a property that fails in one
  state only is found there, at its depth;
- packed fields are placed and read by runs of adjacent pieces: the same ints as piece by
  piece.

Components are defined at module level (the kernel reads their source for some checks).
"""
from __future__ import annotations

import random

import pytest

from assay import Component, System, action
from assay.checker import check
from assay.checker.compact import Packing
from assay.kernel import Kernel
from assay.kernel.determinism import Sampler


def _one_reader_per_state(s: System) -> Kernel:
    k = Kernel(s)
    k._sampler = Sampler(first=0, every=10**9)    # no determinism runs: one reader per state
    return k


# --- guards: one live object per state, assignments noted by its class ----------------------


class Deleter(Component):
    """`a`'s guard deletes a field (through a helper); `b`'s guard must still read it."""

    x: int = 0

    def drop(self):
        delattr(self, "x")      # (not `del self.x`: that is a spec error read from the code)
        return False

    @action(when=lambda self: self.drop())
    def a(self):
        pass

    @action(when=lambda self: self.x < 2)
    def b(self):
        self.x = self.x + 1


class Retyper(Component):
    """`a`'s guard sets x to True, equal to 1: `b`'s guard must still see the int 1."""

    x: int = 1

    def flip(self):
        setattr(self, "x", True)  # noqa: B010 (`self.x = True`: a spec error from the code)
        return False

    @action(when=lambda self: self.flip())
    def a(self):
        pass

    @action(when=lambda self: type(self.x) is int and self.x < 3)
    def b(self):
        self.x = self.x + 1


class Logged(Component):
    """A component with its own `__setattr__`: guards that assign go through it."""

    x: int = 0

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)

    def poke(self):
        setattr(self, "x", 5)  # noqa: B010 (`self.x = 5` is a spec error read from the code)
        return False

    @action(when=lambda self: self.poke())
    def a(self):
        pass

    @action(when=lambda self: self.x < 2)
    def b(self):
        self.x = self.x + 1


def _run(cls: type, name: str) -> tuple[str, int]:
    s = System(name)
    s.add("m", cls)
    s.terminal(lambda g: True)
    r = check(_one_reader_per_state(s))
    return r.verdict, r.states


def test_a_guard_that_deletes_a_field_does_not_change_what_other_guards_see():
    assert _run(Deleter, "deleter") == ("ok", 3)


def test_a_guard_that_sets_an_equal_value_of_another_type_is_undone():
    # without the undo, b's guard sees True (not an int) and b is never enabled: 1 state
    assert _run(Retyper, "retyper") == ("ok", 3)


def test_a_component_with_its_own_setattr_keeps_it_in_guards():
    assert _run(Logged, "logged") == ("ok", 3)


# --- properties of a whole-state spec: one view per state, no memo by the whole state --------


class Counter(Component):
    x: int = 0
    y: int = 0

    @action(when=lambda self: self.x < 4)
    def inc(self):
        self.x = self.x + 1

    @action(when=lambda self: self.y < 2)
    def other(self):
        self.y = self.y + 1


def _counter(bad: int | None) -> System:
    s = System("counter")
    s.add("c", Counter)
    s.terminal(lambda g: True)

    @s.always
    def positive(g):
        return g["c"].x >= 0

    @s.always
    def not_bad(g):                 # the second property: it shares the first one's view
        return bad is None or (g["c"].x, g["c"].y) != (bad, 1)

    @s.always
    def constant(g):                # reads nothing: its verdict is the same everywhere
        return True

    return s


def test_a_property_that_fails_in_one_state_only_is_found_there():
    r = check(_one_reader_per_state(_counter(bad=3)))
    assert r.verdict == "violation"
    assert r.violation.name == "not_bad"
    assert len(r.trace.events) == 4                 # x = 3 and y = 1: four steps
    assert check(_one_reader_per_state(_counter(bad=None))).states == 15


def test_a_whole_state_spec_keeps_no_cache_by_state():
    from assay.checker.compact import CompactBFS
    from assay.checker.search import Search

    k = _one_reader_per_state(_counter(bad=None))
    bfs = CompactBFS(k, Search())
    out = bfs.run()
    assert out.states == 15
    assert all(not c for c in (*bfs.caches, *bfs._gcaches))
    assert bfs._pmemos == []            # the properties together read the one instance


# --- packing by runs of pieces ----------------------------------------------------------------


class _K:
    """What `Packing` reads of a kernel."""

    def __init__(self, n: int) -> None:
        self.extended = False
        self.instances = [None] * n


def _by_pieces(p: Packing, f: int, v: int) -> int:
    x = 0
    for off, w, sh in p.pieces[f]:
        x |= (v >> sh & ((1 << w) - 1)) << off
    return x


def test_runs_of_pieces_place_and_read_as_the_pieces_do():
    rnd = random.Random(7)
    for _ in range(20):
        p = Packing(_K(rnd.randint(1, 3)))     # type: ignore[arg-type]
        for _ in range(rnd.randint(1, 8)):     # grow fields in a random order
            f = rnd.randrange(p.n + 1)
            p.grow(f, p.cap[f] * rnd.randint(1, 5))
        for f in range(p.n + 1):
            for _ in range(50):
                v = rnd.randrange(p.cap[f])
                x = p.place(f, v)
                assert x == _by_pieces(p, f, v)
                assert p.value(f, x | rnd.getrandbits(p.top) & ~p.mask(f)) == v


def test_a_field_that_grows_alone_is_one_run():
    p = Packing(_K(1))                          # type: ignore[arg-type]
    for _ in range(5):
        p.grow(0, p.cap[0])
    assert len(p.pieces[0]) == 6 and len(p.runs[0]) == 2     # the first piece, then the rest


# --- the collector after a search ----------------------------------------------------------------


class Grid(Component):
    x: int = 0
    y: int = 0

    @action(when=lambda self: self.x < 30)
    def right(self):
        self.x = self.x + 1

    @action(when=lambda self: self.y < 30)
    def up(self):
        self.y = self.y + 1


def _grid() -> System:
    s = System("grid")
    s.add("g", Grid)
    s.terminal(lambda g: True)
    return s


def test_after_a_search_the_collector_is_back_and_the_callers_frozen_objects_stay_frozen():
    import gc

    was = gc.isenabled()
    gc.enable()
    try:
        gc.collect()
        r = check(_one_reader_per_state(_grid()))
        assert r.states == 961 and gc.isenabled()
        # objects the caller froze stay frozen
        gc.freeze()
        frozen = gc.get_freeze_count()
        check(_one_reader_per_state(_counter(bad=None)))
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
        if not was:
            gc.disable()


@pytest.mark.parametrize("bad", [{"workers": "many"}, {"strategy": "sideways"},
                                 {"checkpoint": "/dev/null/cannot"}])
def test_a_check_refused_before_its_search_leaves_the_collector_on(bad):
    """A check refused before it searches (a checkpoint directory it cannot use, a `workers`
    that is no number) leaves the caller's process with its garbage collector on: it was
    turned off before those refusals and stayed off, so every later runtime test in the same
    process saw no collection at all (CI, test_runtime_inline's young collections)."""
    import gc

    gc.enable()
    with pytest.raises(ValueError):
        check(_grid(), **bad)
    assert gc.isenabled()


def test_the_shared_view_is_forgotten_with_the_local_states():
    k = Kernel(_counter(bad=None))
    s0 = k.initial_states()[0][0]
    steps, _ = k.successors(s0)
    t = next(t for _, t, _ in steps if k.view(0, t[0][0]).x == 1)
    assert k.view(0, s0[0][0]).x == 0              # the last view made: of local id 0
    ids = k.forget({"c": t[0][0]})                 # the runtime's forget: x = 1 is now id 0
    assert ids == {"c": 0}
    assert k.view(0, 0).x == 1
