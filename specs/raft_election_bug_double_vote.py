"""BUG TWIN of specs/raft_election.py: a server grants its vote to every candidate of its term,
not only to the first, so two candidates of one term both reach a majority.

Raft's leader election (Ongaro and Ousterhout, section 5.2), message-passing, bounded by term.

Every server starts a follower in term 0.  A server that is not leader may time out (an
action: in the model any moment is a timeout): it becomes a candidate of the next term, votes
for itself and asks every other server for its vote.  A server grants at most one vote per
term, to the first candidate of that term that asks; any message of a higher term makes its
receiver a follower of that term.  A candidate with the votes of a majority becomes leader
and tells the others (`Heartbeat`), which makes the candidates of its term followers.

Election safety (Raft's Figure 3): at most one leader per term — over the whole run, not only
now (`led` records every term a server led, since a leader of an old term may still think it
leads).  Its twin, specs/raft_election_bug_double_vote.py, forgets that a server voted in the
term it is in, and two servers become leaders of one term.

Terms are bounded (`max_term`): Raft's terms grow without end, and a model checker needs a
bound (as TLC's Raft models bound them).  Servers are interchangeable: with
`-p symmetric=true` they are declared so, and `check` explores one state per orbit.

    assay check specs/raft_election.py                       # 3 servers, one term
    assay check specs/raft_election.py -p servers=4 -p symmetric=true
    assay check specs/raft_election_bug_double_vote.py       # two leaders of term 1
    assay simulate specs/raft_election.py -p max_term=6 --runs 200

A second term makes it large, as Raft models are for every model checker: messages of old
terms stay in flight until delivered (the network is a bag), so `-p max_term=2` has millions
of states at 3 servers (a benchmark, tests/benchmarks/).
"""
from enum import Enum

from assay import Component, Message, Peer, Port, System, action, on


class Role(Enum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"


class RequestVote(Message):
    term: int


class Vote(Message):
    term: int
    granted: bool


class Heartbeat(Message):           # AppendEntries with no entries: "I lead this term"
    term: int


class Server(Component):
    peers = Port(many=True)
    max_term: int = 1
    majority: int = 2
    term: int = 0
    role: Role = Role.FOLLOWER
    voted_for: Peer | None = None      # whom this server voted for in `term`
    votes: frozenset[Peer] = frozenset()   # as a candidate: who voted for it (not itself)
    led: frozenset[int] = frozenset()      # every term this server was leader of

    def follow(self, term: int) -> None:
        """A message of a later term: a follower of that term, no vote cast in it yet."""
        self.term = term
        self.role = Role.FOLLOWER
        self.voted_for = None
        self.votes = frozenset()

    @action(when=lambda self: self.role != Role.LEADER and self.term < self.max_term)
    def timeout(self):
        self.term += 1
        self.role = Role.CANDIDATE
        self.voted_for = self.name
        self.votes = frozenset()
        self.peers.broadcast(RequestVote(self.term))

    @on(RequestVote)
    def on_request_vote(self, m):
        if m.term > self.term:
            self.follow(m.term)
        grant = m.term == self.term        # BUG: a second candidate of the term gets a vote too
        if grant:
            self.voted_for = m.sender
        self.peers.send(Vote(self.term, grant), to=m.sender)

    @on(Vote)
    def on_vote(self, m):
        if m.term > self.term:
            self.follow(m.term)
        elif self.role == Role.CANDIDATE and m.term == self.term and m.granted:
            self.votes = self.votes | {m.sender}
            if len(self.votes) + 1 >= self.majority:     # its own vote, and the others'
                self.role = Role.LEADER
                self.led = self.led | {self.term}
                self.peers.broadcast(Heartbeat(self.term))

    @on(Heartbeat)
    def on_heartbeat(self, m):
        if m.term > self.term or m.term == self.term and self.role == Role.CANDIDATE:
            self.follow(m.term)
            self.voted_for = m.sender       # it won this term: the vote is spent


def system(servers: int = 3, max_term: int = 1, symmetric: bool = False) -> System:
    s = System("raft_election", network="unordered")
    nodes = [s.add(f"s{i}", Server, max_term=max_term, majority=servers // 2 + 1)
             for i in range(servers)]
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            s.connect(a.peers, b.peers)
    if symmetric and servers > 1:
        s.symmetric(nodes)

    @s.always
    def election_safety(g):             # at most one leader per term, ever
        led = [t for n in g.instances(Server) for t in n.led]
        return len(led) == len(set(led))

    @s.always
    def a_leader_holds_its_term(g):     # a leader is leader of the term it is in
        return all(n.term in n.led for n in g.instances(Server) if n.role == Role.LEADER)

    @s.terminal
    def quiet(g):                       # terms ran out and every message was handled
        return not g.in_flight()

    return s

# `pytest --assay specs/` (docs/API.md): two leaders of one term
ASSAY_EXPECT = {"verdict": "violation", "property": "election_safety"}
