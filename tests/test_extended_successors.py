"""The one-pass successors of the long state form (`kernel/extended.py`: faults, timers) are
`enabled_events` then `apply` of each event, and `can_progress`, exactly: on specs with every
kind of fault, timers, pools, interceptors and each network, two kernels of one spec — one
stepping by the definition, one in one pass — meet the same events, ids and next states in
the same order, state after state of a breadth-first search."""
from __future__ import annotations

from pathlib import Path

import pytest

from assay.checker import check
from assay.kernel import Faults, Kernel
from assay.kernel.extended import successors_extended
from assay.model.load import build

SPECS = Path(__file__).resolve().parent.parent / "specs"


def by_definition(k: Kernel, s):
    events = k.enabled_events(s)
    out = []
    for ev in events:
        nxt, _, viol = k.apply(s, ev)
        if nxt != s or viol:
            out.append((ev, nxt, viol))
    return out, len(events), k.can_progress(s)


CASES = [
    ("paxos.py", Faults(crash=1), {}),
    ("register_bug_volatile.py", Faults(crash=1, drop=1, dup=1, partition=1), {}),
    ("first_timeout.py", Faults(crash=1, partition=1), {"nodes": "3"}),
    ("alternating_bit.py", Faults(drop=2, dup=1), {}),
    ("provenance_interceptor.py", Faults(crash=1, drop=1, dup=1), {}),
    ("elastic_pool.py", Faults(crash=1), {}),
    ("tla_twophase.py", Faults(crash=1, dup=1), {}),
    ("ring_election.py", Faults(crash=2, drop=1), {}),
    # timers, restart hooks, receive guards and persistent protocol sessions together
    ("primary_backup.py", Faults(crash=1, dup=1), {}),
]


@pytest.mark.parametrize(("spec", "faults", "params"), CASES, ids=[c[0] for c in CASES])
def test_one_pass_successors_are_the_definition(spec, faults, params):
    ref = Kernel(build(str(SPECS / spec), params=params)[0], faults)
    new = Kernel(build(str(SPECS / spec), params=params)[0], faults)
    assert ref.extended and not (new.chooses or new.channels)
    start = [s for s, _ in ref.initial_states()]
    assert start == [s for s, _ in new.initial_states()]
    seen = set(start)
    frontier = list(start)
    kinds = set()
    steps = 0
    while frontier and len(seen) < 1500:
        s = frontier.pop(0)
        want = by_definition(ref, s)
        got = successors_extended(new, s)
        assert got == want, s
        assert new.successors(s) == want[:2]
        kinds.update(new.slots[~ev][0] for ev, _, _ in got[0] if ev < 0)
        steps += len(got[0])
        for _, t, _ in got[0]:
            if t not in seen:
                seen.add(t)
                frontier.append(t)
    assert ref.slots == new.slots and ref.envs == new.envs
    assert steps > 100
    if faults.crash:
        assert {"crash", "restart"} <= kinds


def test_crashes_keep_the_counts():
    """The compact search with one-pass successors: the counts and the deadlock verdicts
    (`can_progress`) of known searches, and a crash bug still found."""
    r = check(build(str(SPECS / "register_bug_volatile.py"))[0], faults=Faults(crash=1))
    assert r.verdict == "violation"
    ok = check(build(str(SPECS / "register.py"))[0], faults=Faults(crash=1))
    assert (ok.verdict, ok.reason) == ("ok", "exhausted")
