"""Network models: how in-flight messages are held, delivered and added.

Messages are interned envelope ids (small ints), so a network is a compact, hashable value:

- `unordered`   a multiset, as a sorted tuple of ids (with repeats); delivery consumes one;
- `duplicating` the set of every message ever sent, as a frozenset; delivery consumes nothing,
                so a message stays deliverable (TLA+ specs' `msgs` variable);
- `fifo`        one queue per directed link, a tuple of tuples; only heads are deliverable.

A link (one direction of a connection) may be bounded or lossy (`System(capacity=, full=,
lossy=)`, `System.connect(...)`).  Then the kernel uses `UnorderedChannels` or `FifoChannels`:
the same values, but a step's sends to a full link are held back — the step is `blocked`, not
enabled ("block") — or lost ("drop": `lost` names them), and `losable` lists the messages the
network may lose (any one in flight on a lossy link; on a fifo link at any position, not only
the head).  Networks without these features keep the plain classes: the checker's hot path
does not pay for them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class Unordered:
    name = "unordered"
    consumes = True

    def initial(self) -> tuple[int, ...]:
        return ()

    def deliverable(self, net: tuple[int, ...]) -> Iterable[int]:
        prev = -1
        for e in net:
            if e != prev:
                yield e
                prev = e

    def in_flight(self, net: tuple[int, ...]) -> Sequence[int]:
        return net

    def contains(self, net: tuple[int, ...], env: int) -> bool:
        return env in net

    def deliver(self, net: tuple[int, ...], env: int, sends: tuple[int, ...]) -> tuple[int, ...]:
        i = net.index(env)
        rest = net[:i] + net[i + 1:]
        if sends:
            return tuple(sorted(rest + sends))
        return rest

    def add(self, net: tuple[int, ...], sends: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(net + sends)) if sends else net

    def keeps(self, net: tuple[int, ...], sends: tuple[int, ...]) -> bool:
        """Whether `add(net, sends)` is `net` itself (nothing changes)."""
        return not sends

    def duplicate(self, net: tuple[int, ...], env: int) -> tuple[int, ...]:
        return self.add(net, (env,))


class Duplicating:
    name = "duplicating"
    consumes = False

    def initial(self) -> frozenset[int]:
        return frozenset()

    def deliverable(self, net: frozenset[int]) -> Iterable[int]:
        return sorted(net)

    def in_flight(self, net: frozenset[int]) -> Sequence[int]:
        return sorted(net)

    def contains(self, net: frozenset[int], env: int) -> bool:
        return env in net

    def deliver(self, net: frozenset[int], env: int, sends: tuple[int, ...]) -> frozenset[int]:
        return self.add(net, sends)

    def add(self, net: frozenset[int], sends: tuple[int, ...]) -> frozenset[int]:
        if not sends or net.issuperset(sends):
            return net
        return net.union(sends)

    def keeps(self, net: frozenset[int], sends: tuple[int, ...]) -> bool:
        """Whether `add(net, sends)` (and `deliver`) is `net` itself (nothing changes)."""
        return not sends or net.issuperset(sends)


class Fifo:
    name = "fifo"
    consumes = True

    def __init__(self, n_links: int, env_link: list[int]) -> None:
        self.n_links = n_links
        self.env_link = env_link        # env id -> link index; grows as envelopes are interned

    def initial(self) -> tuple[tuple[int, ...], ...]:
        return ((),) * self.n_links

    def deliverable(self, net: tuple[tuple[int, ...], ...]) -> Iterable[int]:
        return [q[0] for q in net if q]

    def in_flight(self, net: tuple[tuple[int, ...], ...]) -> Sequence[int]:
        return [e for q in net for e in q]

    def contains(self, net: tuple[tuple[int, ...], ...], env: int) -> bool:
        q = net[self.env_link[env]]
        return bool(q) and q[0] == env

    def deliver(self, net: tuple[tuple[int, ...], ...], env: int,
                sends: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        queues = list(net)
        link = self.env_link[env]
        queues[link] = queues[link][1:]
        for s in sends:
            link = self.env_link[s]
            queues[link] = queues[link] + (s,)
        return tuple(queues)

    def duplicate(self, net: tuple[tuple[int, ...], ...],
                  env: int) -> tuple[tuple[int, ...], ...]:
        """A copy of a head message right behind it: duplication keeps the link's order."""
        queues = list(net)
        link = self.env_link[env]
        queues[link] = (env,) + queues[link]
        return tuple(queues)

    def add(self, net: tuple[tuple[int, ...], ...],
            sends: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        if not sends:
            return net
        queues = list(net)
        for s in sends:
            link = self.env_link[s]
            queues[link] = queues[link] + (s,)
        return tuple(queues)

    def keeps(self, net: tuple[tuple[int, ...], ...], sends: tuple[int, ...]) -> bool:
        """Whether `add(net, sends)` is `net` itself (nothing changes)."""
        return not sends


def split_sends(sends: Sequence[T], links: Sequence[int], count: Callable[[int], int],
                capacity: Sequence[int], drop_full: Sequence[bool]
                ) -> tuple[tuple[T, ...], tuple[T, ...], bool]:
    """The rule of bounded links, for the kernel and for a runtime that knows every message in
    flight: `sends` (in order, each on the link of the same place in `links`) join links that
    hold `count(link)` messages now; a send to a link at its capacity (0: unbounded) is lost
    where `drop_full`, else it blocks the whole step.  Returns (sent, lost, blocked)."""
    counts: dict[int, int] = {}
    kept: list[T] = []
    lost: list[T] = []
    blocked = False
    for s, link in zip(sends, links):
        c = capacity[link]
        if not c:
            kept.append(s)
            continue
        n = counts.get(link)
        if n is None:
            n = count(link)
        if n >= c:
            if drop_full[link]:
                lost.append(s)
            else:
                blocked = True
            counts[link] = n
        else:
            kept.append(s)
            counts[link] = n + 1
    return tuple(kept), tuple(lost), blocked


class _Channels:
    """Capacity and loss per link, over `Unordered` or `Fifo` (a mixin: the network value and
    everything else stay those of the base class).

    `capacity[link]` is the most messages in flight on the link (0: unbounded), `drop_full`
    whether a send to it when full is lost (else the step is blocked), `lossy` whether the
    network may lose its messages."""

    env_link: list[int]
    capacity: list[int]
    drop_full: list[bool]
    lossy: list[bool]

    def _setup(self, env_link: list[int], capacity: list[int], drop_full: list[bool],
               lossy: list[bool]) -> None:
        self.env_link = env_link
        self.capacity = capacity
        self.drop_full = drop_full
        self.lossy = lossy
        self.bounded = any(capacity)

    def count(self, net: Any, link: int) -> int:
        """How many messages are in flight on `link`."""
        raise NotImplementedError

    def split(self, net: Any, env: int, sends: tuple[int, ...]
              ) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
        """A step that consumes `env` (-1: none) and sends `sends`, in order: the sends that
        enter the network, those lost to a full "drop" link, and whether a full "block" link
        blocks the step."""
        if not self.bounded or not sends:
            return sends, (), False
        link_of = self.env_link
        if len(sends) == 1:                     # the common case, without the general rule
            link = link_of[sends[0]]
            c = self.capacity[link]
            if not c or self.count(net, link) - (env >= 0 and link_of[env] == link) < c:
                return sends, (), False
            return ((), sends, False) if self.drop_full[link] else ((), (), True)
        return split_sends(sends, [link_of[s] for s in sends],
                           lambda link: self.count(net, link)
                           - (env >= 0 and link_of[env] == link),
                           self.capacity, self.drop_full)

    def blocked(self, net: Any, env: int, sends: tuple[int, ...]) -> bool:
        return self.split(net, env, sends)[2]

    def lost(self, net: Any, env: int, sends: tuple[int, ...]) -> tuple[int, ...]:
        return self.split(net, env, sends)[1]

    def room(self, net: Any, env: int) -> bool:
        """Whether the link of `env` can take one more message (a duplicate of it)."""
        c = self.capacity[self.env_link[env]]
        return not c or self.count(net, self.env_link[env]) < c

    def deliver(self, net: Any, env: int, sends: tuple[int, ...]) -> Any:
        return super().deliver(net, env, self.split(net, env, sends)[0])  # type: ignore[misc]

    def deliver_as_is(self, net: Any, env: int, sends: tuple[int, ...]) -> Any:
        """`deliver` of sends that `split` has kept already."""
        return super().deliver(net, env, sends)  # type: ignore[misc]

    def add_as_is(self, net: Any, sends: tuple[int, ...]) -> Any:
        return super().add(net, sends)  # type: ignore[misc]

    def add(self, net: Any, sends: tuple[int, ...]) -> Any:
        return super().add(net, self.split(net, -1, sends)[0])  # type: ignore[misc]

    def losable(self, net: Any) -> list[tuple[int, int]]:
        """The messages the network may lose now, as (envelope, position): the position in
        its fifo link (0: the head), or -1 on an unordered network."""
        raise NotImplementedError

    def lose(self, net: Any, env: int, position: int) -> Any:
        raise NotImplementedError


class UnorderedChannels(_Channels, Unordered):
    def __init__(self, env_link: list[int], capacity: list[int], drop_full: list[bool],
                 lossy: list[bool]) -> None:
        self._setup(env_link, capacity, drop_full, lossy)

    def count(self, net: tuple[int, ...], link: int) -> int:
        link_of = self.env_link
        return [link_of[e] for e in net].count(link)

    def losable(self, net: tuple[int, ...]) -> list[tuple[int, int]]:
        lossy, link_of = self.lossy, self.env_link
        return [(e, -1) for e in Unordered.deliverable(self, net) if lossy[link_of[e]]]

    def lose(self, net: tuple[int, ...], env: int, position: int) -> tuple[int, ...]:
        i = net.index(env)
        return net[:i] + net[i + 1:]


class FifoChannels(_Channels, Fifo):
    def __init__(self, n_links: int, env_link: list[int], capacity: list[int],
                 drop_full: list[bool], lossy: list[bool]) -> None:
        Fifo.__init__(self, n_links, env_link)
        self._setup(env_link, capacity, drop_full, lossy)

    def count(self, net: tuple[tuple[int, ...], ...], link: int) -> int:
        return len(net[link])

    def losable(self, net: tuple[tuple[int, ...], ...]) -> list[tuple[int, int]]:
        out = []
        for link, q in enumerate(net):
            if q and self.lossy[link]:
                prev = -1
                for i, e in enumerate(q):
                    if e != prev:        # losing either of two equal neighbours: one result
                        out.append((e, i))
                    prev = e
        return out

    def lose(self, net: tuple[tuple[int, ...], ...], env: int,
             position: int) -> tuple[tuple[int, ...], ...]:
        link = self.env_link[env]
        q = net[link]
        if not 0 <= position < len(q) or q[position] != env:
            raise ValueError(f"envelope {env} is not at position {position} of its link")
        queues = list(net)
        queues[link] = q[:position] + q[position + 1:]
        return tuple(queues)
