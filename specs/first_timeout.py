"""Nodes arm their first timeout when they start (`@on_start`), and the first to time out
claims leadership from a registry.

Without a start step a node could arm no timer before some message arrived, and nothing would
ever happen: `check` would explore one state and call every property satisfied.  Each node's
`@on_start` hook sets its election timer; the model counts the hook in the initial state, so
the timers are pending from the start in every engine (`check`, `simulate`, `assay run`).
Safety: at most one leader.  Liveness: eventually there is one (under weak fairness, since a
pending timer eventually fires and a message in flight is eventually delivered).

    assay check specs/first_timeout.py -p nodes=3
    assay run specs/first_timeout.py
"""

from assay import Component, Message, Peer, Port, System, on, on_start


class Timeout(Message): ...
class Claim(Message): ...
class Granted(Message): ...


class Node(Component):
    registry = Port()
    leader: bool = False
    claimed: bool = False

    @on_start
    def arm(self):
        self.after(5, Timeout())

    @on(Timeout)
    def timeout(self, m):
        if not self.claimed:
            self.claimed = True
            self.registry.send(Claim())

    @on(Granted)
    def granted(self, m):
        self.leader = True


class Registry(Component):
    nodes = Port(many=True)
    holder: Peer | None = None

    @on(Claim)
    def claim(self, m):
        if self.holder is None:
            self.holder = m.sender
            self.nodes.send(Granted(), to=m.sender)


def system(nodes: int = 2) -> System:
    s = System("first_timeout", fairness="weak")
    registry = s.add("registry", Registry)
    for i in range(nodes):
        s.connect(s.add(f"n{i}", Node).registry, registry.nodes)

    @s.always
    def at_most_one_leader(g):
        return sum(n.leader for n in g.instances(Node)) <= 1

    @s.eventually
    def a_leader(g):
        return any(n.leader for n in g.instances(Node))

    @s.terminal
    def settled(g):
        return all(n.claimed for n in g.instances(Node)) and not g.in_flight()

    return s
