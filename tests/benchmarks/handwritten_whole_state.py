"""Plain hand-written breadth-first searches of the TLA+ specs LamportMutex and PaxosCommit:
the reference state counts for specs/tla_lamport_mutex.py and specs/tla_paxos_commit.py, and
the speed of plain Python on the same actions (a floor for assay's whole-state checking).

Each is the TLA+ spec (tlaplus/Examples: lamport_mutex/LamportMutex.tla,
transaction_commit/PaxosCommit.tla) written the way one would explore it by hand, with no
framework: a state is a tuple of the TLA+ variables (tuples for functions, frozensets for
sets, tuples for records and messages); one set of seen states, level by level; the safety
property (Mutex, TCConsistent) asserted on every new state.

LamportMutex's model bound is TLC's state constraint ClockConstraint: a successor with a clock
above max_clock is neither counted nor explored.  `lamport_mutex(3, 6)` finds 724,274 distinct
states and PaxosCommit's `paxos_commit(2, 3, 2)` (PaxosCommit.cfg) 1,321,761: the numbers
tlaplus/Examples records for TLC on those models.

    python tests/benchmarks/handwritten_whole_state.py lamport 3 4
    python tests/benchmarks/handwritten_whole_state.py paxos 2 3 2
"""
from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import combinations
from typing import Any

State = tuple[Any, ...]


def _put(t: tuple, i: int, v: Any) -> tuple:
    return t[:i] + (v,) + t[i + 1:]


def bfs(init: State, successors: Callable[[State], Iterable[State]],
        ok: Callable[[State], bool], keep: Callable[[State], bool] = lambda s: True
        ) -> tuple[int, int]:
    """(distinct states, depth) of the states reachable from `init` through successors that
    `keep` admits; AssertionError if one breaks `ok`.  The cyclic garbage collector is paused,
    as assay's search pauses it (states hold no cycles)."""
    gc.disable()
    try:
        return _bfs(init, successors, ok, keep)
    finally:
        gc.enable()


def _bfs(init: State, successors: Callable[[State], Iterable[State]],
         ok: Callable[[State], bool], keep: Callable[[State], bool]) -> tuple[int, int]:
    seen = {init}
    frontier = [init]
    depth = 0
    while True:
        nxt = []
        for s in frontier:
            for t in successors(s):
                if t not in seen and keep(t):
                    seen.add(t)
                    if not ok(t):
                        raise AssertionError(f"property violated in {t!r}")
                    nxt.append(t)
        if not nxt:
            return len(seen), depth
        depth += 1
        frontier = nxt


# --- LamportMutex: (clock, req, ack, network, crit) ------------------------------------------

def lamport_mutex(n: int, max_clock: int) -> tuple[int, int]:
    procs = range(n)
    init = ((1,) * n, ((0,) * n,) * n, (frozenset(),) * n, (((),) * n,) * n, frozenset())

    def send(net: tuple, p: int, q: int, m: tuple) -> tuple:
        return _put(net, p, _put(net[p], q, net[p][q] + (m,)))

    def pop(net: tuple, p: int, q: int) -> tuple:            # the head of the channel q -> p
        return _put(net, q, _put(net[q], p, net[q][p][1:]))

    def beats(req: tuple, p: int, q: int) -> bool:
        return req[p][q] == 0 or req[p][p] < req[p][q] or (req[p][p] == req[p][q] and p < q)

    def successors(s: State) -> Iterator[State]:
        clock, req, ack, net, crit = s
        for p in procs:
            if req[p][p] == 0:                                                  # Request(p)
                n2 = net
                for q in procs:
                    if q != p:
                        n2 = send(n2, p, q, ("req", clock[p]))
                yield clock, _put(req, p, _put(req[p], p, clock[p])), \
                    _put(ack, p, frozenset({p})), n2, crit
            if len(ack[p]) == n and all(beats(req, p, q) for q in procs if q != p):
                yield clock, req, ack, net, crit | {p}                         # Enter(p)
            if p in crit:                                                      # Exit(p)
                n2 = net
                for q in procs:
                    if q != p:
                        n2 = send(n2, p, q, ("rel", 0))
                yield clock, _put(req, p, _put(req[p], p, 0)), _put(ack, p, frozenset()), \
                    n2, crit - {p}
            for q in procs:
                if q == p or not net[q][p]:
                    continue
                kind, c = net[q][p][0]
                if kind == "req":                                      # ReceiveRequest(p, q)
                    yield _put(clock, p, max(c, clock[p]) + 1), _put(req, p, _put(req[p], q, c)), \
                        ack, send(pop(net, p, q), p, q, ("ack", 0)), crit
                elif kind == "ack":                                    # ReceiveAck(p, q)
                    yield clock, req, _put(ack, p, ack[p] | {q}), pop(net, p, q), crit
                else:                                                  # ReceiveRelease(p, q)
                    yield clock, _put(req, p, _put(req[p], q, 0)), ack, pop(net, p, q), crit

    return bfs(init, successors, lambda s: len(s[4]) <= 1,
               keep=lambda s: max(s[0]) <= max_clock)                  # ClockConstraint


# --- PaxosCommit: (rmState, aState, msgs) ------------------------------------------------------

def paxos_commit(rm_count: int, acceptors: int, ballots: int) -> tuple[int, int]:
    rms, accs = range(rm_count), range(acceptors)
    majorities = [frozenset(c) for c in combinations(accs, acceptors // 2 + 1)]
    init = (("working",) * rm_count, (((0, -1, "none"),) * acceptors,) * rm_count, frozenset())
    commit, abort = ("Commit",), ("Abort",)

    def decided(msgs: frozenset, rm: int, v: str) -> bool:
        return any(all(("2b", ac, rm, b, v) in msgs for ac in ms)
                   for b in range(ballots) for ms in majorities)

    def successors(s: State) -> Iterator[State]:
        rs, a, msgs = s
        for rm in rms:
            if rs[rm] == "working":
                yield _put(rs, rm, "prepared"), a, msgs | {("2a", rm, 0, "prepared")}
                yield _put(rs, rm, "aborted"), a, msgs | {("2a", rm, 0, "aborted")}
            if commit in msgs:
                yield _put(rs, rm, "committed"), a, msgs
            if abort in msgs:
                yield _put(rs, rm, "aborted"), a, msgs
        for b in range(1, ballots):
            for rm in rms:
                yield rs, a, msgs | {("1a", rm, b)}                            # Phase1a
                if any(m[0] == "2a" and m[1] == rm and m[2] == b for m in msgs):
                    continue
                for ms in majorities:                                          # Phase2a
                    mset = [m for m in msgs
                            if m[0] == "1b" and m[1] == rm and m[2] == b and m[5] in ms]
                    if {m[5] for m in mset} != ms:
                        continue
                    top = max(m[3] for m in mset)
                    val = "aborted" if top == -1 else min(m[4] for m in mset if m[3] == top)
                    yield rs, a, msgs | {("2a", rm, b, val)}
        if all(decided(msgs, rm, "prepared") for rm in rms):                   # Decide
            yield rs, a, msgs | {commit}
        if any(decided(msgs, rm, "aborted") for rm in rms):
            yield rs, a, msgs | {abort}
        for acc in accs:
            for m in msgs:
                if m[0] == "1a":                                               # Phase1b
                    _, ins, bal = m
                    mbal, vbal, vval = a[ins][acc]
                    if mbal < bal:
                        yield rs, _put(a, ins, _put(a[ins], acc, (bal, vbal, vval))), \
                            msgs | {("1b", ins, bal, vbal, vval, acc)}
                elif m[0] == "2a":                                             # Phase2b
                    _, ins, bal, val = m
                    if a[ins][acc][0] <= bal:
                        yield rs, _put(a, ins, _put(a[ins], acc, (bal, bal, val))), \
                            msgs | {("2b", acc, ins, bal, val)}

    def consistent(s: State) -> bool:
        return not ("committed" in s[0] and "aborted" in s[0])

    return bfs(init, successors, consistent)


if __name__ == "__main__":
    which, *args = sys.argv[1:] or ["lamport", "2", "3"]
    fn = lamport_mutex if which == "lamport" else paxos_commit
    start = time.perf_counter()
    states, depth = fn(*(int(a) for a in args))       # type: ignore[operator]
    seconds = time.perf_counter() - start
    print(f"{which} {' '.join(args)}: {states:,} states, depth {depth}, {seconds:.1f} s, "
          f"{states / seconds:,.0f} states/s")
