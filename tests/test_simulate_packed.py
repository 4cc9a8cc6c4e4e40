"""The packed walk (`assay/simulator/packed.py`): plain runs on the compact checker's packed
states are `run_once`'s runs, event for event, and campaigns report the same with it or
without it (bugs found, correct specs pass, the same distinct states and shrunk traces)."""
from __future__ import annotations

from pathlib import Path

import pytest

from assay.model.load import build
from assay.simulator import Options, campaign, packed, run
from assay.simulator.campaign import derive, kernel_for
from assay.simulator.rates import FaultRates
from assay.simulator.run import run_once

SPECS = Path(__file__).resolve().parents[1] / "specs"

# plain specs (no timers, faults, lossy or bounded links, choices, liveness): ones with a
# known bug and ones without, whole-state and per-instance, growing fields (tla_twophase's
# TM), a consuming network and a duplicating one
CASES = [("tla_twophase.py", {"rm_count": "4"}), ("two_phase_commit.py", {}),
         ("two_phase_commit_bug_protocol.py", {}), ("two_phase_commit_bug_majority.py", {}),
         ("paxos_bug_own_value.py", {}), ("tla_lamport_mutex_bug_ties.py", {}),
         ("bank_transfer_bug_overdraft.py", {}), ("register_bug_volatile.py", {}),
         ("tla_paxos_commit.py", {}), ("kv_composite_bug_early_ack.py", {}),
         ("account_service.py", {})]


def _kernel(name: str, params: dict[str, str]):
    system, _, _ = build(str(SPECS / name), None, params)
    return kernel_for(system, FaultRates())


@pytest.mark.parametrize("name,params", CASES, ids=[c[0] for c in CASES])
def test_packed_runs_are_run_once_runs_event_for_event(name, params):
    ours, theirs = _kernel(name, params), _kernel(name, params)
    assert packed.plain(ours, "random", True)
    memo = packed.packed_moves(ours)
    for i in range(60):
        s = derive(3, i)
        a = run_once(theirs, s, 150, FaultRates(), lassos=False)
        b = packed.run_packed(ours, s, 150)
        assert [theirs.event(e).to_json() for e in a.events] == \
            [ours.event(e).to_json() for e in b.events], (name, i)
        assert (a.ended, a.violation and a.violation.to_json()) == \
            (b.ended, b.violation and b.violation.to_json()), (name, i)
        # the same states, first met in the same order
        assert list(dict.fromkeys(theirs.fingerprint(r.state) for r in a.path)) == \
            [ours.fingerprint(memo.state(x)) for x in b.new], (name, i)
        assert ours.fingerprint(memo.state(b.start)) == theirs.fingerprint(a.initial)


def test_packed_runs_end_every_way_and_without_stored_rows():
    """Violations (of a step and of a property), deadlocks, final states and the step bound;
    and the same runs when no row is kept (`limit` 0: every state expanded again)."""
    ended = set()
    # a retiring pool can deadlock (its liveness property is not watched here)
    for name, params in [*CASES, ("elastic_pool_bug_retire_busy.py", {})]:
        ours, bare, theirs = _kernel(name, params), _kernel(name, params), _kernel(name, params)
        packed.packed_moves(bare).limit = 0
        for i in range(15):
            steps = 3 if i % 5 == 0 else 200
            a = run_once(theirs, derive(8, i), steps, FaultRates(), lassos=False)
            for k in (ours, bare):
                b = packed.run_packed(k, derive(8, i), steps)
                assert [theirs.event(e).to_json() for e in a.events] == \
                    [k.event(e).to_json() for e in b.events], (name, i)
                assert a.ended == b.ended
            ended.add(a.ended)
        assert not packed.packed_moves(bare).rows
    assert ended >= {"violation", "final", "deadlock", "steps"}, ended


def _summary(spec: str, params: dict[str, str], runs: int, jobs: int = 1):
    c = campaign(str(SPECS / spec), None, params, seed=11, runs=runs,
                 opts=Options(steps=200), jobs=jobs)
    return c.to_json(with_timing=False), [t.to_json() for t in c.traces()]


@pytest.mark.parametrize("spec,params,verdict", [
    ("two_phase_commit_bug_protocol.py", {}, "violation"),        # a known bug: found
    ("paxos_bug_own_value.py", {}, "violation"),
    ("tla_twophase.py", {"rm_count": "5"}, "ok"),                 # no bug: passes
    ("two_phase_commit.py", {}, "ok")])
def test_campaigns_report_the_same_packed_or_not(monkeypatch, spec, params, verdict):
    got = {}
    for on in (True, False):
        monkeypatch.setattr(packed, "PACKED", on)
        got[on] = _summary(spec, params, 150)
    assert got[True] == got[False]
    assert got[True][0]["verdict"] == verdict
    if verdict == "violation":
        assert got[True][1]                   # shrunk traces, the same ones


def test_packed_campaigns_are_the_same_across_worker_counts():
    """Workers fingerprint the packed states new to them for the union: the same count."""
    one = _summary("tla_twophase.py", {"rm_count": "4"}, 200, jobs=1)
    two = _summary("tla_twophase.py", {"rm_count": "4"}, 200, jobs=2)
    assert one == two and one[0]["distinct_states"] > 100


def test_only_plain_runs_take_the_packed_walk():
    twophase = _kernel("tla_twophase.py", {})
    assert packed.plain(twophase, "random", True)
    assert not packed.plain(twophase, "pct", True)
    assert not packed.plain(twophase, "coverage", True)
    faulty = kernel_for(build(str(SPECS / "two_phase_commit.py"), None, {})[0],
                        FaultRates(crash=0.1, restart=0.3))
    assert not packed.plain(faulty, "random", True)
    for name in ("first_timeout.py", "abp_lossy.py", "lock_server.py"):   # timers, lossy,
        assert not packed.plain(_kernel(name, {}), "random", True), name  # liveness


def test_run_once_plain_flag_turns_the_packed_walk_off(monkeypatch):
    monkeypatch.setattr(run, "PLAIN", False)
    assert not packed.plain(_kernel("tla_twophase.py", {}), "random", True)


def test_a_kernel_and_its_simulator_memos_are_freed_when_no_longer_used():
    """The memos refer back to their kernel; kept in a weak-keyed table they kept it alive for
    the life of the process (a leak in long-lived processes: tests, notebooks, the API)."""
    import gc
    import weakref

    k = _kernel("tla_twophase.py", {"rm_count": "3"})
    run_once(k, 1, 50, FaultRates(), lassos=False)
    packed.run_packed(k, 1, 50)
    gone = weakref.ref(k)
    del k
    gc.collect()
    assert gone() is None
