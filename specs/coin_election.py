"""Anonymous leader election by coin flips: nodes draw numbers until one draw is the unique
highest (Itai and Rodeh's idea, with a referee to compare the draws).

A node draws with `self.choose(...)` when it starts and again whenever the referee calls a new
round after a tie.  `check` explores every draw of every node (a step that chooses is one step
per way it can go), `simulate` draws them from its seed and `assay run` at random; a trace
records what was drawn, so `assay replay` takes the same way.  Safety: at most one leader.
The referee gives up after `rounds` tied rounds: with coins, ties can repeat forever, and a
model checker looks at every path, not at probabilities.  Its twin,
specs/coin_election_bug_ties.py, elects every node of a tied top draw.

    assay check specs/coin_election.py
    assay check specs/coin_election.py -p nodes=4 -p sides=3
    assay simulate specs/coin_election.py --runs 200
    assay run specs/coin_election.py
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
        if len(at_top) == 1:
            self.winner = at_top[0]
            self.nodes.send(Elected(), to=at_top[0])
        elif self.round < self.rounds:
            self.round += 1
            self.nodes.broadcast(Retry())


def system(nodes: int = 3, sides: int = 2, rounds: int = 2) -> System:
    s = System("coin_election")
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
