"""A bounded bakery over messages, with ties not broken (for bench_shrink.py).

Each process takes a ticket one above the largest it knows of (at most `max_ticket`), tells
the others, and enters its critical section once every other process has answered with its
current ticket and none of those is smaller than its own.  BUG: equal tickets are not broken
by name, so two processes that took the same ticket both enter.  A process may crash and
restart (it then forgets its ticket); runs go round many take/enter/leave rounds first.

    assay check tests/benchmarks/shrink_specs/bakery_bug_ties.py
"""
from enum import Enum

from assay import Component, Message, Port, System, action, on


class Phase(Enum):
    IDLE = "idle"
    WAITING = "waiting"
    CRITICAL = "critical"


class Take(Message):
    ticket: int


class Answer(Message):
    ticket: int


class Proc(Component):
    peers = Port(many=True)
    max_ticket: int = 3
    phase: Phase = Phase.IDLE
    ticket: int = 0
    largest: int = 0                 # the largest ticket heard of
    answers: frozenset = frozenset()  # (who, their ticket) this round
    others: int = 1

    @action(when=lambda self: self.phase == Phase.IDLE and self.largest < self.max_ticket)
    def take(self):
        self.phase = Phase.WAITING
        self.ticket = self.largest + 1
        self.largest = self.ticket
        self.answers = frozenset()
        self.peers.broadcast(Take(self.ticket))

    @on(Take)
    def on_take(self, m):
        self.largest = max(self.largest, m.ticket)
        self.peers.send(Answer(self.ticket), to=m.sender)

    @on(Answer)
    def on_answer(self, m):
        if self.phase == Phase.WAITING:
            self.answers = self.answers | {(m.sender, m.ticket)}

    @action(when=lambda self: self.phase == Phase.WAITING and len(self.answers) == self.others
            and all(t == 0 or t >= self.ticket for _, t in self.answers))   # BUG: ties
    def enter(self):
        self.phase = Phase.CRITICAL

    @action(when=lambda self: self.phase == Phase.CRITICAL)
    def leave(self):
        self.phase = Phase.IDLE
        self.ticket = 0


def system(procs: int = 2, max_ticket: int = 3) -> System:
    s = System("bakery_bug_ties", network="unordered")
    ps = [s.add(f"p{i}", Proc, max_ticket=max_ticket, others=procs - 1) for i in range(procs)]
    for i, a in enumerate(ps):
        for b in ps[i + 1:]:
            s.connect(a.peers, b.peers)

    @s.always
    def mutual_exclusion(g):
        return sum(p.phase == Phase.CRITICAL for p in g.instances(Proc)) <= 1

    @s.terminal
    def out_of_tickets(g):           # the bound is reached: every process idle, for good
        return all(p.phase == Phase.IDLE for p in g.instances(Proc))

    return s
