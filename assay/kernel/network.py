"""Network models: how in-flight messages are held, delivered and added.

Messages are interned envelope ids (small ints), so a network is a compact, hashable value:

- `unordered`   a multiset, as a sorted tuple of ids (with repeats); delivery consumes one;
- `duplicating` the set of every message ever sent, as a frozenset; delivery consumes nothing,
                so a message stays deliverable (TLA+ specs' `msgs` variable);
- `fifo`        one queue per directed link, a tuple of tuples; only heads are deliverable.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence


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
