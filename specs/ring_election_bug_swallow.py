"""BUG: leader election on a ring where every node swallows larger ids too.

The twin of specs/ring_election.py.  A node forwards no id at all, so no id comes back to
its owner: every run ends with all messages handled and no leader.  `check` reports a lasso
whose cycle is empty — the run stops in a state with no leader — as TLC and SPIN report a
deadlock against an "eventually" property.

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
        # BUG: a larger id is swallowed instead of forwarded


def system(nodes: int = 3) -> System:
    s = System("ring_election_bug_swallow", network="unordered", fairness="weak")
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

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "property": "a_leader_is_elected"}
