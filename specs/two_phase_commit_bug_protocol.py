"""Two-phase commit with incompatible ports: a resource manager that may send Prepared twice.

The twin of specs/two_phase_commit.py; the RM declares (and uses) a protocol that allows a
second Prepared — a retry — which the TM's side does not expect.  `assay verify` rejects the
connection before anything runs, with the shortest witness; `assay check` catches the second
Prepared at run time as a protocol violation blamed on the RM:

    assay verify specs/two_phase_commit_bug_protocol.py
    assay check specs/two_phase_commit_bug_protocol.py

The original protocol (after Gray & Lamport, 'Consensus on Transaction Commit'):

A transaction manager (TM) and resource managers (RMs) on an unordered network.  An RM may
prepare or, while still working, abort on its own.  The TM commits once every RM has prepared,
and may abort at any time before that.  Safety: no RM commits while another aborts.
"""
from enum import Enum

from assay import Component, Message, Port, System, action, ensures, invariant, on, requires
from assay import protocol as p


class RMState(Enum):
    WORKING = "working"
    PREPARED = "prepared"
    COMMITTED = "committed"
    ABORTED = "aborted"


class TMState(Enum):
    INIT = "init"
    COMMITTED = "committed"
    ABORTED = "aborted"


class Prepared(Message): ...
class Commit(Message): ...
class Abort(Message): ...


# The protocol of one TM-RM session, from the TM's side; the RM speaks its dual.  Messages
# cross in flight: the TM may abort while a Prepared is on its way.
TM_SIDE = (p.recv(Prepared) >> (p.send(Commit) | p.send(Abort))
           | p.send(Abort) >> p.recv(Prepared).opt())

# BUG: the RM's side allows a retry of Prepared, which is not the dual of TM_SIDE
RM_SIDE = (p.send(Prepared) >> p.send(Prepared).opt() >> (p.recv(Commit) | p.recv(Abort))
           | p.recv(Abort) >> p.send(Prepared).opt())


class ResourceManager(Component):
    tm = Port(RM_SIDE)                            # BUG: not TM_SIDE.dual()
    state: RMState = RMState.WORKING
    resent: bool = False

    @action(when=lambda self: self.state == RMState.WORKING)
    def prepare(self):
        self.state = RMState.PREPARED
        self.tm.send(Prepared())

    @action(when=lambda self: self.state == RMState.PREPARED and not self.resent)
    def resend(self):                             # a retry, "in case the first was lost"
        self.resent = True
        self.tm.send(Prepared())

    @action(when=lambda self: self.state == RMState.WORKING)
    def choose_to_abort(self):
        self.state = RMState.ABORTED

    @on(Commit)
    @requires(lambda self, m: self.state != RMState.ABORTED)
    @ensures(lambda old, self, m: self.state == RMState.COMMITTED)
    def commit(self, m):
        self.state = RMState.COMMITTED

    @on(Abort)
    @requires(lambda self, m: self.state != RMState.COMMITTED)
    @ensures(lambda old, self, m: self.state == RMState.ABORTED)
    def abort(self, m):
        self.state = RMState.ABORTED


class TransactionManager(Component):
    rms = Port(TM_SIDE, many=True)                # one session per connected RM
    state: TMState = TMState.INIT
    prepared: frozenset = frozenset()             # of peers on port rms

    invariant(lambda self: self.state != TMState.COMMITTED or self.prepared == self.rms.peers)
    invariant(lambda self: self.prepared <= self.rms.peers)

    @on(Prepared)
    def on_prepared(self, m):
        if self.state == TMState.INIT:
            self.prepared = self.prepared | {m.sender}

    @action(when=lambda self: self.state == TMState.INIT and self.prepared == self.rms.peers)
    def commit(self):
        self.state = TMState.COMMITTED
        self.rms.broadcast(Commit())

    @action(when=lambda self: self.state == TMState.INIT)
    def abort(self):
        self.state = TMState.ABORTED
        self.rms.broadcast(Abort())


def system(rm_count: int = 3) -> System:
    s = System("two_phase_commit_bug_protocol", network="unordered")
    tm = s.add("tm", TransactionManager)
    for i in range(rm_count):
        s.connect(s.add(f"rm{i}", ResourceManager).tm, tm.rms)

    @s.always
    def consistent(g):
        states = {rm.state for rm in g.instances(ResourceManager)}
        return not {RMState.COMMITTED, RMState.ABORTED} <= states

    @s.terminal
    def all_decided(g):
        return g["tm"].state != TMState.INIT and all(
            rm.state in (RMState.COMMITTED, RMState.ABORTED)
            for rm in g.instances(ResourceManager))

    return s

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "kind": "protocol"}
