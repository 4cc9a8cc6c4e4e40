"""Two-phase commit with the majority-commit bug, shaped so that uniform random scheduling
rarely finds it: used by tests/benchmarks/bench_bug_finding.py (and its test).

Each resource manager (RM) does `work` units of work before it may prepare, and may abort on
its own while it works; the transaction manager (TM) may abort at any time before it decides,
and commits once a MAJORITY of the RMs have prepared (the bug: it should wait for all).  The
violation needs a majority to finish its work and prepare, and at least one other RM to abort,
before the TM gives up: a uniform pick fires the TM's abort (enabled at every step) or an RM's
abort long before that.

    assay check tests/benchmarks/twopc_majority_spec.py -p rm_count=3 -p work=2
"""
from enum import Enum

from assay import Component, Message, Port, System, action, on


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


class ResourceManager(Component):
    tm = Port()
    state: RMState = RMState.WORKING
    done: int = 0
    work: int = 3

    @action(when=lambda self: self.state == RMState.WORKING and self.done < self.work)
    def step(self):
        self.done = self.done + 1

    @action(when=lambda self: self.state == RMState.WORKING and self.done == self.work)
    def prepare(self):
        self.state = RMState.PREPARED
        self.tm.send(Prepared())

    @action(when=lambda self: self.state == RMState.WORKING)
    def choose_to_abort(self):
        self.state = RMState.ABORTED

    @on(Commit)
    def commit(self, m):
        self.state = RMState.COMMITTED

    @on(Abort)
    def abort(self, m):
        self.state = RMState.ABORTED


class TransactionManager(Component):
    rms = Port(many=True)
    state: TMState = TMState.INIT
    prepared: frozenset = frozenset()             # of peers on port rms

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


def system(rm_count: int = 5, work: int = 3) -> System:
    s = System("twopc_majority", network="unordered")
    tm = s.add("tm", TransactionManager)
    for i in range(rm_count):
        s.connect(s.add(f"rm{i}", ResourceManager, work=work).tm, tm.rms)

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
