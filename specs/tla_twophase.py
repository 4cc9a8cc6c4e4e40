"""A faithful port of the TLA+ spec TwoPhase (tlaplus/Examples, transaction_commit),
Gray & Lamport, 'Consensus on Transaction Commit'.

As in the TLA+ spec, `msgs` is the set of every message ever sent: nothing is consumed, so a
message stays deliverable (the `duplicating` network).  TLC counts 288 distinct states for
3 RMs, 8,832 for 5 and 296,448 for 7; `assay check` reports the same numbers.  With
`--param symmetric=true` the RMs are declared interchangeable and `check` counts orbits
(80 for 3 RMs, 314 for 5).

TLA+ action              here
RMPrepare(r)             ResourceManager.prepare
RMChooseToAbort(r)       ResourceManager.choose_to_abort
RMRcvCommitMsg(r)        ResourceManager.on_commit
RMRcvAbortMsg(r)         ResourceManager.on_abort
TMRcvPrepared(r)         TransactionManager.on_prepared
TMCommit                 TransactionManager.commit   (its Commit reaches every RM)
TMAbort                  TransactionManager.abort
"""
from enum import Enum

from assay import Component, Message, Port, System, action, on


class RM(Enum):
    WORKING = "working"
    PREPARED = "prepared"
    COMMITTED = "committed"
    ABORTED = "aborted"


class TM(Enum):
    INIT = "init"
    COMMITTED = "committed"
    ABORTED = "aborted"


class Prepared(Message): ...   # [type |-> "Prepared", rm |-> r]: the sender is the rm
class Commit(Message): ...
class Abort(Message): ...


class ResourceManager(Component):
    tm = Port()
    rm_state: RM = RM.WORKING

    @action(when=lambda self: self.rm_state == RM.WORKING)
    def prepare(self):
        self.rm_state = RM.PREPARED
        self.tm.send(Prepared())

    @action(when=lambda self: self.rm_state == RM.WORKING)
    def choose_to_abort(self):
        self.rm_state = RM.ABORTED

    @on(Commit)
    def on_commit(self, m):
        self.rm_state = RM.COMMITTED

    @on(Abort)
    def on_abort(self, m):
        self.rm_state = RM.ABORTED


class TransactionManager(Component):
    rms = Port(many=True)
    tm_state: TM = TM.INIT
    tm_prepared: frozenset = frozenset()

    @on(Prepared)
    def on_prepared(self, m):
        if self.tm_state == TM.INIT:
            self.tm_prepared = self.tm_prepared | {m.sender}

    @action(when=lambda self: self.tm_state == TM.INIT and self.tm_prepared == self.rms.peers)
    def commit(self):
        self.tm_state = TM.COMMITTED
        self.rms.broadcast(Commit())

    @action(when=lambda self: self.tm_state == TM.INIT)
    def abort(self):
        self.tm_state = TM.ABORTED
        self.rms.broadcast(Abort())


def system(rm_count: int = 3, symmetric: bool = False) -> System:
    """`symmetric=True` declares the RMs interchangeable (TLC's SYMMETRY Permutations(RM)):
    `check` then explores one state per orbit (80 for 3 RMs, 314 for 5)."""
    s = System("tla_twophase", network="duplicating")
    tm = s.add("tm", TransactionManager)
    rms = [s.add(f"rm{i}", ResourceManager) for i in range(1, rm_count + 1)]
    for rm in rms:
        s.connect(rm.tm, tm.rms)
    if symmetric and rm_count > 1:
        s.symmetric(rms)

    @s.always
    def tc_consistent(g):        # TCConsistent: no RM committed while another aborted
        states = {rm.rm_state for rm in g.instances(ResourceManager)}
        return not (RM.COMMITTED in states and RM.ABORTED in states)

    return s
