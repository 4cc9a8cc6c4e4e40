"""Two-phase commit with a bug: the coordinator commits once a MAJORITY has prepared.

The twin of specs/two_phase_commit.py; only TransactionManager.commit differs.  An RM that
chose to abort is outvoted, so one RM commits while another has aborted.
`assay check` finds the shortest counterexample:

    assay check specs/two_phase_commit_bug_majority.py

The original, correct protocol (after Gray & Lamport, 'Consensus on Transaction Commit'):

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


class ResourceManager(Component):
    tm = Port(TM_SIDE.dual())                     # the only channel this component may use
    state: RMState = RMState.WORKING

    @action(when=lambda self: self.state == RMState.WORKING)
    def prepare(self):
        self.state = RMState.PREPARED
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

    invariant(lambda self: self.prepared <= self.rms.peers)

    @on(Prepared)
    def on_prepared(self, m):
        if self.state == TMState.INIT:
            self.prepared = self.prepared | {m.sender}

    @action(when=lambda self: self.state == TMState.INIT
            and 2 * len(self.prepared) > len(self.rms.peers))       # BUG: a majority, not all
    def commit(self):
        self.state = TMState.COMMITTED
        self.rms.broadcast(Commit())

    @action(when=lambda self: self.state == TMState.INIT)
    def abort(self):
        self.state = TMState.ABORTED
        self.rms.broadcast(Abort())


def system(rm_count: int = 3) -> System:
    s = System("two_phase_commit_bug_majority", network="unordered")
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
