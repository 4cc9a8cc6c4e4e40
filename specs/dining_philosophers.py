"""Dining philosophers with resource ordering (Dijkstra): deadlock-free, but fair only under
strong fairness.

n philosophers sit at a round table with a fork between each two neighbours; a philosopher
takes the lower-numbered of its two forks first, then the other, eats, and puts both down.
Ordering the forks rules out the deadlock of "everyone holds a left fork", so `check` finds no
deadlock.  Whether every hungry philosopher eventually eats depends on fairness:

* under weak fairness (this spec's default) a philosopher can starve: its first fork is taken
  and released again and again by a neighbour, so "take the first fork" is enabled only now
  and then — weak fairness asks that an action *continuously* enabled be taken;
* under strong fairness (`--fairness strong`) an action enabled again and again is eventually
  taken, and every hungry philosopher eats.

    assay check specs/dining_philosophers.py                    # the starvation lasso
    assay check specs/dining_philosophers.py --fairness strong  # holds

The table is one component holding every philosopher and fork, as a TLA+ or PlusCal spec of
it would be written; each action is parameterised by the philosopher, and fairness applies to
each philosopher's action separately (TLA+'s `\\A p: WF(Take(p))`).
"""
from enum import Enum

from assay import Component, System, action


class Phase(Enum):
    THINKING = "thinking"; HUNGRY = "hungry"; ONE_FORK = "one fork"; EATING = "eating"


FREE = -1


def forks_of(p: int, n: int) -> tuple[int, int]:
    """The forks philosopher p uses, lower-numbered first."""
    a, b = p, (p + 1) % n
    return (min(a, b), max(a, b))


def philosophers(table):
    return range(len(table.phase))


class Table(Component):
    phase: tuple[Phase, ...] = ()
    fork: tuple[int, ...] = ()              # who holds each fork (FREE: nobody)

    def set_phase(self, p, phase):
        self.phase = self.phase[:p] + (phase,) + self.phase[p + 1:]

    def set_fork(self, f, holder):
        self.fork = self.fork[:f] + (holder,) + self.fork[f + 1:]

    @action(over=philosophers, when=lambda self, p: self.phase[p] == Phase.THINKING)
    def get_hungry(self, p):
        self.set_phase(p, Phase.HUNGRY)

    @action(over=philosophers, when=lambda self, p: self.phase[p] == Phase.HUNGRY
            and self.fork[forks_of(p, len(self.phase))[0]] == FREE)
    def take_first(self, p):
        self.set_fork(forks_of(p, len(self.phase))[0], p)
        self.set_phase(p, Phase.ONE_FORK)

    @action(over=philosophers, when=lambda self, p: self.phase[p] == Phase.ONE_FORK
            and self.fork[forks_of(p, len(self.phase))[1]] == FREE)
    def take_second(self, p):
        self.set_fork(forks_of(p, len(self.phase))[1], p)
        self.set_phase(p, Phase.EATING)

    @action(over=philosophers, when=lambda self, p: self.phase[p] == Phase.EATING)
    def put_down(self, p):
        first, second = forks_of(p, len(self.phase))
        self.set_fork(first, FREE)
        self.set_fork(second, FREE)
        self.set_phase(p, Phase.THINKING)


def system(n: int = 3, fairness: str = "weak") -> System:
    s = System("dining_philosophers", fairness=fairness)
    s.add("table", Table, phase=(Phase.THINKING,) * n, fork=(FREE,) * n)

    @s.always
    def forks_are_held_by_neighbours(g):
        t = g["table"]
        return all(h == FREE or f in forks_of(h, n) for f, h in enumerate(t.fork))

    for p in range(n):
        s.leads_to(lambda g, p=p: g["table"].phase[p] == Phase.HUNGRY,
                   lambda g, p=p: g["table"].phase[p] == Phase.EATING,
                   name=f"philosopher {p} eats")
    return s

# `pytest --assay specs/` (docs/API.md): the starvation lasso under weak fairness
ASSAY_EXPECT = {"verdict": "violation", "property": "philosopher 0 eats"}
