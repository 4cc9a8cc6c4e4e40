"""The kernel's keys that must not depend on Python's hash or equality, computed the cheap way
and held here to the slow formula they replace.

- The canonical order of a step's sends (`Kernel._sends`): on a network that does not keep
  fifo order, a handler's envelopes are ordered by `canonical((src_port, dst, dst_port,
  message))`, so that a handler looping over a set of peers gives the same envelope ids — and
  the same exploration — under any PYTHONHASHSEED.  The kernel computes that order from a
  cached head of the key per link (`Kernel._canonical_order`): byte for byte the formula's, on
  broadcasts, on several sends over one link, and on arbitrary names.
- The local states of a component whose fields admit values Python's equality merges (`True
  == 1`): keyed by `exact_key` (`_LocalTable.intern`), so that they differ as their canonical
  bytes do.

Components are defined at module level (the kernel reads their source).
"""
from __future__ import annotations

import enum

from hypothesis import given, settings
from hypothesis import strategies as st

from assay import Component, Message, Peer, Port, System, action, on
from assay.checker import check
from assay.kernel import Envelope, Kernel
from assay.model.types import canonical


class Go(Message):
    n: int


class Note(Message):
    text: str
    tags: frozenset[int]


class Hub(Component):
    out = Port(many=True)
    sent: int = 0

    @action(when=lambda self: self.sent == 0)
    def go(self):
        self.sent = 1
        self.out.broadcast(Go(7))                     # one envelope per peer
        for p in sorted(self.out.peers, reverse=True):
            self.out.send(Note("b", frozenset({2, 1})), to=p)     # a second on each link
            self.out.send(Note("a", frozenset()), to=p)


class Leaf(Component):
    hub = Port()

    @on(Go)
    def go(self, m):
        pass

    @on(Note)
    def note(self, m):
        pass


def hub_system(leaves: list[str]) -> System:
    s = System("hub")
    hub = s.add("hub", Hub)
    for name in leaves:
        s.connect(hub.out, s.add(name, Leaf).hub)
    return s


def by_formula(envs: list[Envelope]) -> list[Envelope]:
    return sorted(envs, key=lambda e: canonical((e.src_port, e.dst, e.dst_port, e.message)))


# names whose canonical order is not their string order (a name's bytes are length-prefixed)
LEAVES = ["b", "aa", "a10", "a9", "zz", "c"]


def test_a_broadcast_and_sends_sharing_links_come_in_the_canonical_order() -> None:
    k = Kernel(hub_system(LEAVES))
    (ev, step), = k.local_actions("hub", k.local_initial("hub"))
    sends = list(step.sends)
    assert len(sends) == 3 * len(LEAVES)
    assert sends == by_formula(sends)
    # the links' canonical order, with each link's three messages after one another
    assert [e.dst for e in sends[::3]] == ["b", "c", "a9", "aa", "zz", "a10"]


def test_a_broadcast_alone_is_ordered_by_its_links() -> None:
    k = Kernel(hub_system(LEAVES))
    envs = [Envelope("hub", "out", d, "hub", Go(n)) for n, d in enumerate(LEAVES)]
    assert k._canonical_order(envs) == by_formula(envs)
    assert k._canonical_order(list(reversed(envs))) == by_formula(envs)


names = st.text(alphabet="ab9Zé_", min_size=1, max_size=4)
messages = st.one_of(st.builds(Go, st.integers(-300, 70_000)),
                     st.builds(Note, st.text(max_size=3),
                               st.frozensets(st.integers(0, 5), max_size=3)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names, names, names, messages), min_size=2, max_size=8))
def test_the_cached_link_heads_give_the_formula_s_order(sends: list) -> None:
    envs = [Envelope("hub", sp, d, dp, m) for sp, d, dp, m in sends]
    assert KERNEL._canonical_order(envs) == by_formula(envs)


KERNEL = Kernel(hub_system(LEAVES))       # one kernel: its cache of link heads fills up


# --- local states with bare containers: keyed so that no two different states share an id ----

class Level(enum.IntEnum):
    ONE = 1


class Bag(Component):
    """Fields whose types admit values Python's equality merges (`True == 1 == Level.ONE`)."""

    items: frozenset = frozenset()
    pair: tuple = ()
    peers: frozenset = frozenset()

    @action(when=lambda self, v: not self.items, over=lambda self: (True, 1, Level.ONE, "x"))
    def put(self, v):
        self.items = frozenset({v})
        self.pair = (v,)
        self.peers = frozenset({Peer("a"), Peer(str(v))})


def test_a_bare_container_s_states_differ_as_their_canonical_bytes_do() -> None:
    s = System("bag")
    s.add("bag", Bag)
    k = Kernel(s)
    start = k.local_initial("bag")
    after = [step.local for _, step in k.local_actions("bag", start)]
    assert len(set(after)) == 4                           # True, 1, Level.ONE, "x": four
    again = [step.local for _, step in k.local_actions("bag", start)]
    assert again == after                                 # each interned once
    table = k.instances[k.index["bag"]].table
    for lid in after:                      # the same id for a value equal in canonical bytes
        assert table.intern(tuple(table.values[lid])) == lid
    assert check(s, strategy="bfs").states == 5
