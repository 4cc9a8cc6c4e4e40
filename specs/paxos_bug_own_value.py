"""Bug: specs/paxos.py with a proposer that proposes its own value, whatever its promises say.

Phase2a must propose the value of the highest vote a majority of promises reported: that vote
may already be chosen.  This proposer ignores it.  p1 gets value 1 chosen at ballot 1 by two
acceptors; p2 then prepares ballot 2, hears of that vote, and still proposes
2, which two acceptors accept: two values chosen.

    assay check specs/paxos_bug_own_value.py     # violation of agreement
"""

from assay import Component, Map, Message, Peer, Port, Record, System, action, on, persistent


class Vote(Record):          # [bal |-> b, val |-> v]
    bal: int
    val: int


class Prepare(Message):      # "1a"
    bal: int


class Promise(Message):      # "1b": the acceptor's last vote, if it has voted
    bal: int
    last: Vote | None


class Accept(Message):       # "2a"
    vote: Vote


class Acceptor(Component):
    proposers = Port(many=True)
    promised: int = persistent(0)                  # maxBal
    last: Vote | None = persistent(None)        # maxVBal, maxVal: the last vote cast
    votes: Map[int, int] = persistent(Map())       # ballot -> the value voted for in it

    @on(Prepare)
    def on_prepare(self, m):
        if m.bal > self.promised:
            self.promised = m.bal
            self.proposers.send(Promise(m.bal, self.last), to=m.sender)

    @on(Accept)
    def on_accept(self, m):
        if m.vote.bal >= self.promised:
            self.promised = m.vote.bal
            self.last = m.vote
            self.votes = self.votes.set(m.vote.bal, m.vote.val)


def highest(votes) -> Vote | None:
    """The vote of the highest ballot among `votes` (None if there is none)."""
    best = None
    for v in votes:
        if v is not None and (best is None or v.bal > best.bal):
            best = v
    return best


class Proposer(Component):
    acceptors = Port(many=True)
    ballot: int = 1
    value: int = 1                                 # what it proposes if it is free to
    started: bool = False
    promises: Map[Peer, Vote | None] = Map()    # acceptor -> its last vote
    proposed: Vote | None = None

    @action(when=lambda self: not self.started)
    def prepare(self):
        self.started = True
        self.acceptors.broadcast(Prepare(self.ballot))

    @on(Promise)
    def on_promise(self, m):
        if m.bal != self.ballot or self.proposed is not None:
            return
        self.promises = self.promises.set(m.sender, m.last)
        if 2 * len(self.promises) > len(self.acceptors.peers):
            self.proposed = Vote(self.ballot, self.choose_value())
            self.acceptors.broadcast(Accept(self.proposed))

    def choose_value(self) -> int:
        """BUG: its own value, even where a promise reported a vote (Phase2a needs that
        vote's value: it may have been chosen)."""
        return self.value


def chosen(g) -> frozenset:
    """The values a majority of acceptors voted for in one ballot."""
    acceptors = list(g.instances(Acceptor))
    ballots = {b for a in acceptors for b in a.votes}
    out = set()
    for b in ballots:
        for v in {a.votes[b] for a in acceptors if b in a.votes}:
            if 2 * sum(1 for a in acceptors if a.votes.get(b) == v) > len(acceptors):
                out.add(v)
    return frozenset(out)


def system(acceptors: int = 3, proposers: int = 2) -> System:
    s = System("paxos_bug_own_value", network="unordered")
    accs = [s.add(f"a{i}", Acceptor) for i in range(acceptors)]
    for i in range(1, proposers + 1):
        p = s.add(f"p{i}", Proposer, ballot=i, value=i)
        for a in accs:
            s.connect(p.acceptors, a.proposers)

    @s.always
    def agreement(g):
        return len(chosen(g)) <= 1

    @s.terminal
    def any_end(g):            # a pre-empted proposer gives up: a run may decide nothing
        return True

    return s

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "property": "agreement"}
