"""Single-decree Paxos, after Lamport's Paxos.tla (tlaplus/Examples), with records and maps.

The TLA+ spec keeps, per acceptor, `maxBal`, and the last vote as two functions `maxVBal` and
`maxVal`; its messages are records (`[type |-> "1b", bal |-> b, mbal |-> .., mval |-> ..]`) and
what an acceptor voted for is a function from ballots to values (`votes`, in Voting.tla).  Here
a `Vote` is a `Record`, a promise carries the acceptor's last vote (`Optional[Vote]`), an
acceptor's `votes` is a `Map[int, int]` (ballot -> value), and a proposer collects promises in a
`Map[Peer, Optional[Vote]]` (acceptor -> its last vote).

TLA+ action        here
Phase1a(b)         Proposer.prepare        (each proposer owns one ballot)
Phase1b(a)         Acceptor.on_prepare
Phase2a(b, v)      Proposer.on_promise     (on a majority of promises)
Phase2b(a)         Acceptor.on_accept
Chosen(v)          chosen(g), below

Agreement (`agreement`: at most one value is ever chosen) holds; its twin
specs/paxos_bug_own_value.py has a proposer that proposes its own value whatever the promises
say, and two values get chosen.  Acceptors keep their state `persistent` (they must: a
promise forgotten in a crash lets an older ballot through), so it also holds with
`--faults crash=1`.  A proposer pre-empted by a higher ballot does not retry, so a run may end
with nothing chosen: every final state is allowed (`terminal`).
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
        """The value of the highest vote a majority reported, else its own (Phase2a)."""
        last = highest(self.promises.values())
        return self.value if last is None else last.val


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
    s = System("paxos", network="unordered")
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
