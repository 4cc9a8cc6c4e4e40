"""specs/two_phase_commit_bug_majority.py's `TransactionManager` handlers as plain Python with
PEP 316 contracts, for CrossHair (`crosshair check --analysis_kind=PEP316`).

The twin of two_phase_commit.py in this folder; only the guard of `commit` differs (a majority
of the peers prepared, not all of them).  The shipped spec states only `prepared <= peers`
(its bug is caught by `assay check` as a protocol violation); here the coordinator keeps both
invariants of specs/two_phase_commit.py, so that CrossHair has the first one to break.

The component's two invariants become class invariants (`inv:`), which CrossHair assumes on
entry to each method and checks on exit.  The port's peers (`self.rms.peers`, a symbolic set in
`assay verify`) are a field `peers`, a frozenset of peer names fixed for the step; a message's
sender is one of them (a precondition).  The actions' guards become `pre:`.  The broadcasts
are the returned tuples of (peer, message name).  The free functions are the same steps on
plain values.
"""
from enum import Enum


class TMState(Enum):
    INIT = "init"
    COMMITTED = "committed"
    ABORTED = "aborted"


class TransactionManager:
    """
    inv: self.state != TMState.COMMITTED or self.prepared == self.peers
    inv: self.prepared <= self.peers
    """

    def __init__(self, state: TMState, prepared: frozenset[str], peers: frozenset[str]):
        self.state = state
        self.prepared = prepared
        self.peers = peers

    def on_prepared(self, sender: str) -> None:
        """
        pre: sender in self.peers
        """
        if self.state == TMState.INIT:
            self.prepared = self.prepared | {sender}

    def commit(self) -> tuple[tuple[str, str], ...]:
        """
        pre: self.state == TMState.INIT and 2 * len(self.prepared) > len(self.peers)  # BUG
        post: self.state == TMState.COMMITTED
        """
        self.state = TMState.COMMITTED
        return tuple((p, "Commit") for p in sorted(self.peers))

    def abort(self) -> tuple[tuple[str, str], ...]:
        """
        pre: self.state == TMState.INIT
        post: self.state == TMState.ABORTED
        """
        self.state = TMState.ABORTED
        return tuple((p, "Abort") for p in sorted(self.peers))


def on_prepared(state: TMState, prepared: frozenset[str], peers: frozenset[str],
                sender: str) -> frozenset[str]:
    """The new `prepared` set after a Prepared from `sender`.

    pre: state != TMState.COMMITTED or prepared == peers
    pre: prepared <= peers
    pre: sender in peers
    post: state != TMState.COMMITTED or __return__ == peers
    post: __return__ <= peers
    """
    if state == TMState.INIT:
        return prepared | {sender}
    return prepared


def commit(state: TMState, prepared: frozenset[str], peers: frozenset[str]) -> TMState:
    """The new state after the commit action.

    pre: state != TMState.COMMITTED or prepared == peers
    pre: prepared <= peers
    pre: state == TMState.INIT and 2 * len(prepared) > len(peers)  # BUG: a majority
    post: __return__ != TMState.COMMITTED or prepared == peers
    """
    return TMState.COMMITTED


def abort(state: TMState, prepared: frozenset[str], peers: frozenset[str]) -> TMState:
    """The new state after the abort action.

    pre: state != TMState.COMMITTED or prepared == peers
    pre: prepared <= peers
    pre: state == TMState.INIT
    post: __return__ != TMState.COMMITTED or prepared == peers
    """
    return TMState.ABORTED
