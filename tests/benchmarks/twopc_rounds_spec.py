"""Repeated two-phase-commit rounds, used only by tests/benchmarks/bench_runtime.py --twopc: a
transaction manager starts round r by sending Prepare(r) to every resource manager; each
replies Prepared(r); once all have, the TM sends Commit(r) to every RM; each replies Ack(r);
once all have, round r is done and the TM may start round r+1, up to `limit` rounds.  One round
is 4 * rms messages (2 * rms request/response pairs).

Every vote is yes: the point is the message pattern of 2PC (a broadcast, then a gather, twice
per round), not its abort paths (specs/two_phase_commit.py has those).  Contracts on every
handler give the monitor something to check on each delivery; the handlers accept a message
again (a frame resent after a reconnection) without harm.

    assay check tests/benchmarks/twopc_rounds_spec.py -p limit=2
"""
from enum import Enum

from assay import Component, Message, Port, System, action, invariant, on, requires


class Prepare(Message):
    r: int


class Prepared(Message):
    r: int


class Commit(Message):
    r: int


class Ack(Message):
    r: int


class Phase(Enum):
    IDLE = "idle"                  # round `round` is done (or none has started)
    PREPARING = "preparing"        # Prepare(round) sent, gathering Prepared(round)
    COMMITTING = "committing"      # Commit(round) sent, gathering Ack(round)


class ResourceManager(Component):
    tm = Port()
    prepared: int = 0              # the last round it prepared
    committed: int = 0             # the last round it committed

    invariant(lambda self: self.committed <= self.prepared <= self.committed + 1)

    @on(Prepare)
    @requires(lambda self, m: self.committed <= m.r <= self.committed + 1)
    def on_prepare(self, m):
        if m.r == self.committed + 1:
            self.prepared = m.r
            self.tm.send(Prepared(m.r))

    @on(Commit)
    @requires(lambda self, m: m.r == self.prepared)
    def on_commit(self, m):
        self.committed = m.r
        self.tm.send(Ack(m.r))


class TransactionManager(Component):
    rms = Port(many=True)
    round: int = 0                 # the last round started
    done: int = 0                  # the last round completed
    phase: Phase = Phase.IDLE
    replied: frozenset = frozenset()   # peers on port rms that replied in this phase
    limit: int = 100

    invariant(lambda self: self.replied <= self.rms.peers)
    invariant(lambda self: self.done <= self.round)

    @action(when=lambda self: self.phase == Phase.IDLE and self.round < self.limit)
    def start(self):
        self.round = self.round + 1
        self.phase = Phase.PREPARING
        self.replied = frozenset()
        self.rms.broadcast(Prepare(self.round))

    @on(Prepared)
    @requires(lambda self, m: m.r <= self.round)
    def on_prepared(self, m):
        if self.phase == Phase.PREPARING and m.r == self.round:
            self.replied = self.replied | {m.sender}
            if self.replied == self.rms.peers:
                self.phase = Phase.COMMITTING
                self.replied = frozenset()
                self.rms.broadcast(Commit(self.round))

    @on(Ack)
    @requires(lambda self, m: m.r <= self.round)
    def on_ack(self, m):
        if self.phase == Phase.COMMITTING and m.r == self.round:
            self.replied = self.replied | {m.sender}
            if self.replied == self.rms.peers:
                self.phase = Phase.IDLE
                self.replied = frozenset()
                self.done = self.round


def system(rms: int = 2, limit: int = 100) -> System:
    s = System("twopc_rounds")
    tm = s.add("tm", TransactionManager, limit=limit)
    for i in range(rms):
        s.connect(s.add(f"rm{i}", ResourceManager).tm, tm.rms)

    @s.always
    def rounds_agree(g):
        # every RM has committed every completed round, and none beyond the started one
        t = g["tm"]
        return all(t.done <= rm.committed <= rm.prepared <= t.round
                   for rm in g.instances(ResourceManager))

    @s.terminal
    def all_rounds_done(g):
        return g["tm"].done == limit and all(rm.committed == limit
                                             for rm in g.instances(ResourceManager))

    return s
