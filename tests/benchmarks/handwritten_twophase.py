"""A plain hand-written breadth-first search of the TLA+ spec TwoPhase, as a baseline for assay.

This is the protocol of tlaplus/Examples `transaction_commit/TwoPhase.tla` (Gray & Lamport),
written the way one would explore it by hand in Python, with no framework: a state is a tuple

    (rm_state, tm_state, tm_prepared, msgs)

where `rm_state` is a tuple of one small int per resource manager, `tm_state` a small int,
`tm_prepared` a frozenset of RM indices and `msgs` a frozenset of every message ever sent
(messages are never removed, as in the TLA+ spec).  Messages are ("Prepared", r), ("Commit",)
and ("Abort",).  The search keeps one set of seen states and works level by level, checking
the invariant TCConsistent on every new state.

TLC counts 288 distinct states for 3 RMs, 8,832 for 5 and 296,448 for 7; so does `bfs`.

    python tests/benchmarks/handwritten_twophase.py 3 5 7
"""
from __future__ import annotations

import sys
from collections.abc import Iterator

# rmState values
WORKING, PREPARED, COMMITTED, ABORTED = range(4)
# tmState values
INIT, TM_COMMITTED, TM_ABORTED = range(3)

COMMIT = ("Commit",)
ABORT = ("Abort",)

State = tuple[tuple[int, ...], int, frozenset[int], frozenset[tuple]]


def initial(n: int) -> State:
    """TPInit: every RM working, the TM in init, nothing prepared, no messages."""
    return (WORKING,) * n, INIT, frozenset(), frozenset()


def _with(rm: tuple[int, ...], r: int, value: int) -> tuple[int, ...]:
    """`rm` with entry `r` replaced by `value` (rmState' = [rmState EXCEPT ![r] = value])."""
    return rm[:r] + (value,) + rm[r + 1:]


def successors(state: State, n: int, all_rms: frozenset[int],
               prepared_msg: tuple[tuple, ...]) -> Iterator[State]:
    """Every state reachable from `state` in one TPNext step (stuttering steps included)."""
    rm, tm, tm_prepared, msgs = state
    if tm == INIT:
        for r in range(n):
            if prepared_msg[r] in msgs:                                   # TMRcvPrepared(r)
                yield rm, tm, tm_prepared | {r}, msgs
        if tm_prepared == all_rms:                                        # TMCommit
            yield rm, TM_COMMITTED, tm_prepared, msgs | {COMMIT}
        yield rm, TM_ABORTED, tm_prepared, msgs | {ABORT}                 # TMAbort
    commit_sent = COMMIT in msgs
    abort_sent = ABORT in msgs
    for r, s in enumerate(rm):
        if s == WORKING:
            yield _with(rm, r, PREPARED), tm, tm_prepared, msgs | {prepared_msg[r]}  # RMPrepare
            yield _with(rm, r, ABORTED), tm, tm_prepared, msgs            # RMChooseToAbort
        if commit_sent:
            yield _with(rm, r, COMMITTED), tm, tm_prepared, msgs          # RMRcvCommitMsg
        if abort_sent:
            yield _with(rm, r, ABORTED), tm, tm_prepared, msgs            # RMRcvAbortMsg


def consistent(state: State) -> bool:
    """TCConsistent: no RM has committed while another has aborted."""
    rm = state[0]
    return not (COMMITTED in rm and ABORTED in rm)


def bfs(n: int) -> tuple[int, int]:
    """Explore every reachable state of TwoPhase with `n` RMs; return (distinct states, depth).

    The depth is the number of steps from the initial state to the farthest state found, as
    assay reports it.  Raises AssertionError if a reachable state breaks TCConsistent.
    """
    all_rms = frozenset(range(n))
    prepared_msg = tuple(("Prepared", r) for r in range(n))
    init = initial(n)
    assert consistent(init), "TCConsistent fails in the initial state"
    seen = {init}
    frontier = [init]
    depth = 0
    while True:
        next_level = []
        for state in frontier:
            for succ in successors(state, n, all_rms, prepared_msg):
                if succ not in seen:
                    seen.add(succ)
                    if not consistent(succ):
                        raise AssertionError(f"TCConsistent violated in {succ!r}")
                    next_level.append(succ)
        if not next_level:
            return len(seen), depth
        depth += 1
        frontier = next_level


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["3", "5", "7"]:
        states, depth = bfs(int(arg))
        print(f"{arg} RMs: {states} states, depth {depth}")
