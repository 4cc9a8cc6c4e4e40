/*
 * TwoPhase (Gray & Lamport, "Consensus on Transaction Commit"; the TLA+ spec TwoPhase of
 * tlaplus/Examples) in Promela, for SPIN: the same protocol as specs/tla_twophase.py, for
 * tests/benchmarks/bench_scale.py.
 *
 * The global state is exactly TwoPhase.tla's variables and nothing else:
 *   rmState[r]        working / prepared / committed / aborted
 *   tmState           init / committed / aborted
 *   tmPrepared        the set of RMs the TM knows prepared (bit r)
 *   msgs              the set of messages ever sent: nothing consumes them, so a message
 *                     stays deliverable (assay's `duplicating` network): Prepared(r) is bit r
 *                     of msgPrepared; [type |-> "Commit"] and [type |-> "Abort"] are
 *                     msgCommit and msgAbort.
 * Every TLA+ action is one `d_step` (one transition, no intermediate state), guarded as in
 * the TLA+ spec.  Each process is a `do` loop whose every branch returns to the loop head,
 * so a process's program counter is the same in every reachable state and adds no states:
 * SPIN's "states stored" is the number of distinct (rmState, tmState, tmPrepared, msgs):
 * TLC's count for 3 / 5 / 7 RMs (288 / 8,832 / 296,448), and assay's (those, and 1,745,408
 * and 10,340,352 for 8 and 9 RMs).
 *
 * Process RM(r) takes RMPrepare(r), RMChooseToAbort(r), RMRcvCommitMsg(r), RMRcvAbortMsg(r)
 * and also TMRcvPrepared(r): which process takes a step does not change the state it leads
 * to, and putting the TM's receipt of r's message here spares the TM a nondeterministic
 * choice of r (a `select` would add intermediate states).  Process TM takes TMCommit and
 * TMAbort.  As in TwoPhase.tla, the receive actions stay enabled when they change nothing
 * (stuttering steps: a self-loop, not a new state).
 *
 * The invariant TCConsistent (no RM committed while another aborted) is asserted at the end
 * of every step that changes rmState (every other step keeps it, and it holds initially).
 * The loop counter `i` is `hidden`: not part of the state vector.
 *
 *   spin -DN=7 -a twophase.pml && gcc -O2 -DSAFETY -DNOREDUCE -o pan pan.c && ./pan -m1000
 *
 * N is the number of RMs (default 3; at most 16: tmPrepared and msgPrepared are bit fields).
 */
#ifndef N
#define N 3
#endif

mtype = { working, prepared, committed, aborted, initial };  /* "init" is a Promela keyword */

mtype rmState[N] = working;
mtype tmState = initial;
unsigned tmPrepared : N = 0;     /* bit r: the TM received Prepared from RM r */
unsigned msgPrepared : N = 0;    /* bit r: [type |-> "Prepared", rm |-> r] \in msgs */
bool msgCommit = false;          /* [type |-> "Commit"] \in msgs */
bool msgAbort = false;           /* [type |-> "Abort"] \in msgs */

hidden byte i;
hidden byte anyCommitted, anyAborted;   /* (a hidden variable cannot be a bit) */

/* TCConsistent: \A r1, r2 \in RM : ~(rmState[r1] = "aborted" /\ rmState[r2] = "committed") */
inline consistent() {
    anyCommitted = false;
    anyAborted = false;
    i = 0;
    do
    :: i < N ->
        anyCommitted = anyCommitted || rmState[i] == committed;
        anyAborted = anyAborted || rmState[i] == aborted;
        i++
    :: else -> break
    od;
    assert(!(anyCommitted && anyAborted));
    i = 0
}

active [N] proctype RM() {
    /* the RM processes are instantiated first: _pid is 0 .. N-1 */
#define r _pid
    do
    :: d_step { rmState[r] == working ->                    /* RMPrepare(r) */
                rmState[r] = prepared;
                msgPrepared = msgPrepared | (1 << r) }
    :: d_step { rmState[r] == working ->                    /* RMChooseToAbort(r) */
                rmState[r] = aborted;
                consistent() }
    :: d_step { msgCommit ->                                /* RMRcvCommitMsg(r) */
                rmState[r] = committed;
                consistent() }
    :: d_step { msgAbort ->                                 /* RMRcvAbortMsg(r) */
                rmState[r] = aborted;
                consistent() }
    :: d_step { tmState == initial && (msgPrepared & (1 << r)) ->   /* TMRcvPrepared(r) */
                tmPrepared = tmPrepared | (1 << r) }
    od
}

active proctype TM() {
    do
    :: d_step { tmState == initial && tmPrepared == (1 << N) - 1 ->   /* TMCommit */
                tmState = committed;
                msgCommit = true }
    :: d_step { tmState == initial ->                                 /* TMAbort */
                tmState = aborted;
                msgAbort = true }
    od
}
