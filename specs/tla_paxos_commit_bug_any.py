"""BUG: Paxos Commit where the leader commits once ANY resource manager's instance has chosen
"prepared".

The twin of specs/tla_paxos_commit.py; only `decide_commit` differs (`any` for `all`).  One RM
prepares, the acceptors choose "prepared" for it, the leader sends Commit while the other RM
has chosen to abort, and the first RM commits.  `assay check` finds it with two RMs (the
default here) and ballot 0 alone:

    assay check specs/tla_paxos_commit_bug_any.py
"""
from enum import Enum
from itertools import combinations

from assay import Component, Message, System, action


class RM(Enum):
    WORKING = "working"
    PREPARED = "prepared"
    COMMITTED = "committed"
    ABORTED = "aborted"


class Val(Enum):
    PREPARED = "prepared"
    ABORTED = "aborted"
    NONE = "none"


class Phase1a(Message):
    ins: int
    bal: int


class Phase1b(Message):
    ins: int
    mbal: int
    bal: int            # -1: the acceptor voted in no ballot of this instance
    val: Val
    acc: int


class Phase2a(Message):
    ins: int
    bal: int
    val: Val


class Phase2b(Message):
    acc: int
    ins: int
    bal: int
    val: Val


class Commit(Message): ...
class Abort(Message): ...


def put(t, i, v):
    """The tuple `t` with item i replaced by v (TLA+'s [t EXCEPT ![i] = v])."""
    return t[:i] + (v,) + t[i + 1:]


def rms(s):
    return range(len(s.rm_state))


def acceptors(s):
    return range(len(s.a_state[0]))


def majorities(s):
    """The sets of acceptors any two of which intersect: every set of a bare majority."""
    n = len(s.a_state[0])
    return [frozenset(ms) for ms in combinations(range(n), n // 2 + 1)]


def leader_ballots(s):
    """(bal, rm) for every ballot a leader may start (Ballot \\ {0}) and every instance."""
    return [(b, rm) for b in range(1, s.ballots) for rm in rms(s)]


def phase2a_choices(s):
    return [(b, rm, ms) for b, rm in leader_ballots(s) for ms in majorities(s)]


def phase1b_choices(s):
    return [(acc, ins, b) for acc in acceptors(s) for ins in rms(s) for b in range(1, s.ballots)]


def phase2b_choices(s):
    return [(acc, ins, b, v) for acc in acceptors(s) for ins in rms(s)
            for b in range(s.ballots) for v in (Val.PREPARED, Val.ABORTED)]


class PaxosCommit(Component):
    rm_state: tuple[RM, ...] = ()
    a_state: tuple[tuple[tuple[int, int, Val], ...], ...] = ()
    msgs: frozenset[Message] = frozenset()
    ballots: int = 1                        # Ballot = 0 .. ballots-1 (a constant)

    def decided(self, rm, v):
        """Instance rm has chosen v: a majority of acceptors voted v in one ballot."""
        return any(all(Phase2b(acc, rm, b, v) in self.msgs for acc in ms)
                   for b in range(self.ballots) for ms in majorities(self))

    def phase1b_from(self, rm, bal, ms):
        """The phase 1b messages of ballot bal in instance rm from the acceptors in ms."""
        return [m for m in self.msgs
                if type(m) is Phase1b and m.ins == rm and m.mbal == bal and m.acc in ms]

    # --- RM actions ---------------------------------------------------------------------

    @action(over=rms, when=lambda self, rm: self.rm_state[rm] == RM.WORKING)
    def rm_prepare(self, rm):
        self.rm_state = put(self.rm_state, rm, RM.PREPARED)
        self.msgs = self.msgs | {Phase2a(rm, 0, Val.PREPARED)}

    @action(over=rms, when=lambda self, rm: self.rm_state[rm] == RM.WORKING)
    def rm_choose_to_abort(self, rm):
        self.rm_state = put(self.rm_state, rm, RM.ABORTED)
        self.msgs = self.msgs | {Phase2a(rm, 0, Val.ABORTED)}

    @action(over=rms, when=lambda self, rm: Commit() in self.msgs)
    def rm_rcv_commit(self, rm):
        self.rm_state = put(self.rm_state, rm, RM.COMMITTED)

    @action(over=rms, when=lambda self, rm: Abort() in self.msgs)
    def rm_rcv_abort(self, rm):
        self.rm_state = put(self.rm_state, rm, RM.ABORTED)

    # --- leader actions -----------------------------------------------------------------

    @action(over=leader_ballots)
    def phase1a(self, bal_rm):
        bal, rm = bal_rm
        self.msgs = self.msgs | {Phase1a(rm, bal)}

    @action(over=phase2a_choices, when=lambda self, c: not any(
        type(m) is Phase2a and m.bal == c[0] and m.ins == c[1] for m in self.msgs)
        and {m.acc for m in self.phase1b_from(c[1], c[0], c[2])} == c[2])
    def phase2a(self, choice):
        bal, rm, ms = choice
        votes = self.phase1b_from(rm, bal, ms)
        maxbal = max(m.bal for m in votes)
        # none voted: abort; else the value of the highest ballot any of them voted in (a
        # ballot has one value; `min` only makes the choice independent of set order)
        val = Val.ABORTED if maxbal == -1 else \
            min((m.val for m in votes if m.bal == maxbal), key=lambda v: v.value)
        self.msgs = self.msgs | {Phase2a(rm, bal, val)}

    @action(when=lambda self: any(self.decided(rm, Val.PREPARED) for rm in rms(self)))  # BUG
    def decide_commit(self):
        self.msgs = self.msgs | {Commit()}

    @action(when=lambda self: any(self.decided(rm, Val.ABORTED) for rm in rms(self)))
    def decide_abort(self):
        self.msgs = self.msgs | {Abort()}

    # --- acceptor actions ---------------------------------------------------------------

    @action(over=phase1b_choices, when=lambda self, c: Phase1a(c[1], c[2]) in self.msgs
            and self.a_state[c[1]][c[0]][0] < c[2])
    def phase1b(self, choice):
        acc, ins, bal = choice
        _, vbal, val = self.a_state[ins][acc]
        self.a_state = put(self.a_state, ins, put(self.a_state[ins], acc, (bal, vbal, val)))
        self.msgs = self.msgs | {Phase1b(ins, bal, vbal, val, acc)}

    @action(over=phase2b_choices, when=lambda self, c: Phase2a(c[1], c[2], c[3]) in self.msgs
            and self.a_state[c[1]][c[0]][0] <= c[2])
    def phase2b(self, choice):
        acc, ins, bal, val = choice
        self.a_state = put(self.a_state, ins, put(self.a_state[ins], acc, (bal, bal, val)))
        self.msgs = self.msgs | {Phase2b(acc, ins, bal, val)}


def system(rm_count: int = 2, acceptors: int = 3, ballots: int = 1) -> System:
    s = System("tla_paxos_commit_bug_any")
    s.add("pc", PaxosCommit, rm_state=(RM.WORKING,) * rm_count,
          a_state=(((0, -1, Val.NONE),) * acceptors,) * rm_count,
          msgs=frozenset(), ballots=ballots)

    @s.always
    def tc_consistent(g):        # TCConsistent: no RM committed while another aborted
        states = set(g["pc"].rm_state)
        return not (RM.COMMITTED in states and RM.ABORTED in states)

    return s

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "property": "tc_consistent"}
