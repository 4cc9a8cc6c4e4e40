"""A bug in coin_election.py: the referee elects every node of a tied top draw.

`check` finds it in 4 steps: all three nodes draw 1, all three are elected, and n1 leads
though n0 won.  (The fix: elect only a unique top draw, and call a new round on a tie.)

A node draws with `self.choose(...)` when it starts and again whenever the referee calls a new
round after a tie.  `check` explores every draw of every node (a step that chooses is one step
per way it can go), `simulate` draws them from its seed and `assay run` at random; a trace
records what was drawn, so `assay replay` takes the same way.  Safety: at most one leader.
The referee gives up after `rounds` tied rounds: with coins, ties can repeat forever, and a
model checker looks at every path, not at probabilities.

    assay check specs/coin_election_bug_ties.py
"""
from assay import Component, Message, Peer, Port, System, invariant, on, on_start


class Draw(Message):
    value: int


class Retry(Message): ...
class Elected(Message): ...


class Node(Component):
    referee = Port()
    sides: int = 2
    value: int = 0
    leader: bool = False
    invariant(lambda self: self.sides >= 1)      # a die has a side (verify asks for it)

    @on_start
    def first_draw(self):
        self.draw()

    @on(Retry)
    def tied(self, m):
        self.draw()

    def draw(self):
        self.value = self.choose(range(1, self.sides + 1))
        self.referee.send(Draw(self.value))

    @on(Elected)
    def elected(self, m):
        self.leader = True


class Referee(Component):
    nodes = Port(many=True)
    rounds: int = 2
    draws: frozenset[tuple[Peer, int]] = frozenset()
    round: int = 0
    winner: Peer | None = None

    @on(Draw)
    def draw(self, m):
        self.draws = self.draws | {(m.sender, m.value)}
        if len(self.draws) < len(self.nodes.peers):
            return
        top = max(v for _, v in self.draws)
        at_top = sorted(p for p, v in self.draws if v == top)
        self.draws = frozenset()
        self.winner = at_top[0]
        for p in at_top:                    # BUG: a tie elects every node at the top
            self.nodes.send(Elected(), to=p)


def system(nodes: int = 3, sides: int = 2, rounds: int = 2) -> System:
    s = System("coin_election_bug_ties")
    referee = s.add("referee", Referee, rounds=rounds)
    for i in range(nodes):
        s.connect(s.add(f"n{i}", Node, sides=sides).referee, referee.nodes)

    @s.always
    def at_most_one_leader(g):
        return sum(n.leader for n in g.instances(Node)) <= 1

    @s.always
    def only_the_winner_leads(g):
        return all(g["referee"].winner == n.name for n in g.instances(Node) if n.leader)

    @s.terminal
    def settled(g):
        return not g.in_flight()

    return s

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "property": "only_the_winner_leads"}
