"""Leader election on a unidirectional ring (Chang & Roberts, 1979).

Each node starts an election by sending its id to its successor — on its own, or when it
first hears of the election with an id smaller than its own.  A node forwards an id larger
than its own, swallows a smaller one, and declares itself leader when its own id comes back:
only the largest id survives the whole ring.  Safety: at most one leader.  Liveness:
eventually one node is leader — under weak fairness, since a message in flight must
eventually be delivered.  Its twin, specs/ring_election_bug_swallow.py, swallows larger ids
too: the election never ends, and the run stops with no leader (the lasso's cycle is empty).

    assay check specs/ring_election.py
    assay check specs/ring_election.py -p nodes=5
    assay check specs/ring_election_bug_swallow.py
"""
from assay import Component, Message, Port, System, action, on


class Elect(Message):
    candidate: int


class Node(Component):
    prev = Port()
    next = Port()
    uid: int = 0
    started: bool = False
    leader: bool = False

    @action(when=lambda self: not self.started)
    def start(self):
        self.started = True
        self.next.send(Elect(self.uid))

    @on(Elect, port="prev")
    def elect(self, m):
        if m.candidate < self.uid and not self.started:
            self.next.send(Elect(self.uid))      # join the election with its own, larger id
        self.started = True
        if m.candidate == self.uid:
            self.leader = True
        elif m.candidate > self.uid:
            self.next.send(Elect(m.candidate))


def system(nodes: int = 3) -> System:
    s = System("ring_election", network="unordered", fairness="weak")
    # ids in an order that is not the ring's, so the winner's message travels
    uids = list(range(nodes))[1::2] + list(range(nodes))[0::2]
    refs = [s.add(f"n{i}", Node, uid=uids[i]) for i in range(nodes)]
    for i, r in enumerate(refs):
        s.connect(r.next, refs[(i + 1) % nodes].prev)

    @s.always
    def at_most_one_leader(g):
        return sum(n.leader for n in g.instances(Node)) <= 1

    @s.eventually
    def a_leader_is_elected(g):
        return any(n.leader for n in g.instances(Node))

    @s.terminal
    def quiet(g):                           # every message handled: the election is over
        return not g.in_flight() and all(n.started for n in g.instances(Node))

    return s
