"""Shrinking's candidate replays take one event's step alone (`Kernel.moving_step`) in states
no run expanded: the same step as `Kernel.successors` gives, on every event the kernel knows
(enabled or not), in every state of a breadth-first search of several specs; and bug specs
still shrink to `check`'s shortest counterexample, whose trace `assay replay` accepts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.checker import check
from assay.kernel import Kernel
from assay.model.load import build
from assay.simulator import FaultRates
from assay.simulator.campaign import derive, kernel_for
from assay.simulator.run import run_once
from assay.simulator.shrink import Walker, budget_for, shrink_run, signature

REPO = Path(__file__).resolve().parents[1]

# plain specs (`Kernel.lists_moves`): whole-state ones (one instance), networks of several
# kinds, properties and handler violations
PLAIN = ["tla_paxos_commit_bug_any", "tla_lamport_mutex_bug_ties", "paxos_bug_own_value",
         "two_phase_commit_bug_protocol", "bank_transfer_bug_overdraft", "tla_twophase"]


def kernel_of(name: str) -> Kernel:
    system, _, _ = build(str(REPO / "specs" / f"{name}.py"), None, {})
    return Kernel(system)


@pytest.mark.parametrize("name", PLAIN)
def test_one_step_alone_is_the_step_successors_gives(name: str) -> None:
    kernel = kernel_of(name)
    assert kernel.lists_moves
    frontier = [st for st, _ in kernel.initial_states()]
    seen = set(frontier)
    checked = moved = 0
    n = 0
    while frontier and n < 150:
        st = frontier.pop(0)
        n += 1
        # every event the kernel knows so far (enabled here or not), each step taken alone
        # before the state is expanded (its local steps are then computed for the first time)
        known = list(range(len(kernel.envs))) + [~s for s in range(len(kernel.slots))]
        alone = {ev: kernel.moving_step(st, ev) for ev in known}
        steps = {e: (nxt, viol) for e, nxt, viol in kernel.successors(st)[0]}
        for ev, got in alone.items():
            checked += 1
            want = steps.get(ev)
            if want is None:
                assert got is None, (st, kernel.describe(ev))
            else:
                moved += 1
                assert got is not None, (st, kernel.describe(ev))
                assert got[0] == want[0]
                assert [v.to_json() for v in got[1]] == [v.to_json() for v in want[1]]
        for nxt, _ in steps.values():
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert moved > 20 and checked > moved


def _shortest(system, name: str) -> int:
    r = check(system)
    assert r.violation is not None
    return len(r.steps)


@pytest.mark.parametrize("name", ["tla_paxos_commit_bug_any", "tla_lamport_mutex_bug_ties",
                                  "two_phase_commit_bug_protocol"])
def test_a_bug_shrinks_to_checks_shortest_through_single_steps(name: str) -> None:
    system, _, _ = build(str(REPO / "specs" / f"{name}.py"), None, {})
    shortest = _shortest(system, name)
    want = signature(check(system).violation)          # type: ignore[arg-type]
    for seed in range(3):
        kernel = kernel_for(system, FaultRates())
        searched = 0
        for i in range(500):
            run = run_once(kernel, derive(seed, i), 1000, FaultRates(), lassos=False)
            searched += len(run.events)
            if run.violation is not None:
                break
        assert run.violation is not None
        if signature(run.violation) != want:
            continue
        small = shrink_run(kernel, run.initial, run.events, run.violation,
                           budget=budget_for(searched), faults=frozenset())
        assert len(small.events) >= shortest
        w = Walker(kernel, want)
        # it replays (expanding every state: not through single steps) to the same failure
        assert w.fails(w.memo.row(small.start.state), small.events) == len(small.events)
        if len(small.events) == shortest:
            return
    raise AssertionError(f"{name}: no seed shrank to check's shortest ({shortest})")


def test_a_simulated_bug_is_written_shrunk_to_checks_shortest_and_replays(tmp_path: Path
                                                                         ) -> None:
    spec = "specs/two_phase_commit_bug_protocol.py"
    system, _, _ = build(str(REPO / spec), None, {})
    shortest = _shortest(system, spec)
    out = tmp_path / "out"
    sim = run([sys.executable, "-m", "assay.cli", "simulate", spec, "--runs", "30", "--seed",
               "0", "--jobs", "1", "--out", str(out)])
    assert sim.returncode == 1, sim.stdout + sim.stderr
    traces = sorted(out.glob("*.json"))
    assert traces
    lengths = [len(json.loads(t.read_text())["events"]) for t in traces]
    assert min(lengths) == shortest, lengths
    best = traces[lengths.index(shortest)]
    r = run([sys.executable, "-m", "assay.cli", "replay", str(best)])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the recorded violation is reproduced" in r.stdout


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("spec", ["specs/tla_paxos_commit_bug_any.py",
                                  "specs/register_bug_volatile.py"])
def test_a_campaign_shrinks_its_own_failing_runs_from_their_ids_as_from_a_second_run(
        spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from assay.simulator import Options, campaign

    campaign_mod = importlib.import_module("assay.simulator.campaign")  # (not the function)

    rates = FaultRates.parse("crash=0.05") if "register" in spec else FaultRates()
    opts = Options(steps=200, rates=rates)

    def shrunk() -> list[tuple[object, ...]]:
        c = campaign(str(REPO / spec), None, {}, seed=3, runs=25, opts=opts, jobs=1)
        assert c.failures
        return [(r.index, r.shrunk_initial, r.shrunk) for r in c.failures]

    kept: list[int] = []
    remember = campaign_mod._remember

    def counted(*args: object) -> None:
        kept.append(1)
        remember(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(campaign_mod, "_remember", counted)
    from_ids = shrunk()
    assert kept                                   # the runs were kept, and shrunk from them
    monkeypatch.setattr(campaign_mod, "_remember", lambda *a: None)
    assert shrunk() == from_ids                   # each run taken again from its seed


@pytest.mark.parametrize("spec,rates", [
    ("specs/register_bug_volatile.py", "crash=0.05"),
    ("specs/coin_election_bug_ties.py", ""),
    ("specs/alternating_bit_bug_no_seq.py", "dup=0.1"),
    ("tests/benchmarks/shrink_specs/bakery_bug_ties.py", "crash=0.01,restart=0.3"),
])
def test_one_step_alone_with_faults_or_choices_is_the_step_successors_gives(
        spec: str, rates: str) -> None:
    from assay.simulator.shrink import fault_kinds

    system, _, _ = build(str(REPO / spec), None, {})
    fr = FaultRates.parse(rates) if rates else FaultRates()
    kernel = kernel_for(system, fr)
    assert not kernel.lists_moves
    allowed = fault_kinds(fr)
    w = Walker(kernel, ("property", None, ""), allowed)
    assert w.enabled
    frontier = [st for st, _ in kernel.initial_states()]
    seen = set(frontier)
    moved = refused = n = 0
    while frontier and n < 120:
        st = frontier.pop(0)
        n += 1
        known = list(range(len(kernel.envs))) + [~s for s in range(len(kernel.slots))]
        alone = {ev: w.step_alone(st, ev) for ev in known}
        steps = {e: (nxt, viol) for e, nxt, viol in kernel.successors(st)[0]
                 if kernel.event_kind(e) in ("deliver", "action", "timer")
                 or kernel.event_kind(e) in allowed}
        for ev, got in alone.items():
            want = steps.get(ev)
            if want is None:
                refused += 1
                assert got is None, (st, kernel.describe(ev))
            else:
                moved += 1
                assert got is not None and got[0] == want[0], (st, kernel.describe(ev))
                assert [v.to_json() for v in got[1]] == [v.to_json() for v in want[1]]
        for nxt, _ in steps.values():
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert moved > 20 and refused > 20


@pytest.mark.parametrize("spec,faults", [
    ("specs/register_bug_volatile.py", "crash=1"),
    ("specs/alternating_bit_bug_no_seq.py", "dup=1,drop=1"),
    ("specs/exactly_once_link.py", "crash=1,drop=1,dup=1"),      # hops: in-process links
    ("specs/two_phase_commit_bug_protocol.py", "crash=1,partition=1,drop=1"),
    ("specs/first_timeout.py", "crash=1,partition=1"),            # timers
    ("tests/benchmarks/shrink_specs/bakery_bug_ties.py", "crash=2"),
    ("specs/tla_paxos_commit_bug_any.py", ""),          # whole-state: an action alone
    ("specs/tla_lamport_mutex_bug_ties.py", ""),
    ("specs/paxos_bug_own_value.py", ""),
])
def test_one_events_enabledness_alone_is_enabled_events(spec: str, faults: str) -> None:
    """`Kernel.enabled_alone` (a candidate replay's step in a state with faults, `step`'s
    check) says of every event the kernel knows what `enabled_events` says, before the
    state is expanded; and `apply` of each step (one action alone where no memo keeps the
    state's actions) is the step of `successors`."""
    from assay.kernel import Faults

    system, _, _ = build(str(REPO / spec), None, {})
    kernel = Kernel(system, Faults.parse(faults) if faults else None)
    assert kernel.extended == bool(faults)
    frontier = [st for st, _ in kernel.initial_states()]
    seen = set(frontier)
    enabled = n = 0
    kinds: set[str] = set()
    while frontier and n < 120:
        st = frontier.pop(0)
        n += 1
        known = list(range(len(kernel.envs))) + [~s for s in range(len(kernel.slots))]
        alone = {ev: kernel.enabled_alone(st, ev) for ev in known}
        want = set(kernel.enabled_events(st))
        for ev, got in alone.items():
            assert got == (ev in want), (st, kernel.describe(ev))
            enabled += got
            if got:
                kinds.add(kernel.event_kind(ev))
        for ev, nxt, viol in kernel.successors(st)[0]:
            got = kernel.apply(st, ev)
            assert got[0] == nxt and got[2] == viol, (st, kernel.describe(ev))
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert enabled > 50, enabled
    assert len(kinds) >= (3 if faults else 1), kinds
