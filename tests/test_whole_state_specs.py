"""The whole-state ports of TLA+ specs (one component holding every variable, actions over
parameters): LamportMutex and PaxosCommit check with the state counts of a plain BFS of the
same TLA+ actions, and the bug twin of each is found by `assay check`.

The state counts are those of tests/benchmarks/handwritten_whole_state.py, a hand-written BFS
of the TLA+ actions over tuples and frozensets (nothing of assay), which also gives the
numbers tlaplus/Examples records for TLC on the full models (724,274 and 1,321,761 distinct
states; too large for a unit test).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assay.checker import check
from assay.model.load import build

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def spec_system(name: str, **params):
    system, _, _ = build(SPECS / name, params={k: str(v) for k, v in params.items()})
    return system


@pytest.mark.parametrize(("n", "max_clock", "states", "depth"),
                         [(2, 3, 191, 21), (2, 5, 685, 33)])
def test_lamport_mutex_has_the_state_count_of_a_plain_bfs(n, max_clock, states, depth):
    r = check(spec_system("tla_lamport_mutex.py", n=n, max_clock=max_clock))
    assert (r.verdict, r.reason) == ("ok", "exhausted"), r.violation
    assert (r.states, r.depth) == (states, depth)


def test_lamport_mutex_stops_at_the_clock_bound_without_deadlock():
    """A state where only a receipt past max_clock is left is the model's edge (TLC's state
    constraint), declared terminal: not a deadlock."""
    r = check(spec_system("tla_lamport_mutex.py"))
    assert r.deadlocked == 0
    assert r.terminal > 0


def test_lamport_mutex_dfs_reaches_the_same_states():
    r = check(spec_system("tla_lamport_mutex.py"), strategy="dfs")
    assert (r.verdict, r.states) == ("ok", 191)


@pytest.mark.parametrize(("rm_count", "acceptors", "ballots", "states", "depth"),
                         [(1, 3, 2, 1461, 14), (2, 3, 1, 545, 11), (1, 1, 2, 45, 8)])
def test_paxos_commit_has_the_state_count_of_a_plain_bfs(rm_count, acceptors, ballots, states,
                                                         depth):
    r = check(spec_system("tla_paxos_commit.py", rm_count=rm_count, acceptors=acceptors,
                          ballots=ballots))
    assert (r.verdict, r.reason) == ("ok", "exhausted"), r.violation
    assert (r.states, r.depth) == (states, depth)
    assert r.deadlocked == 0            # Phase1a stays enabled, as in the TLA+ spec


@pytest.mark.parametrize(("spec", "prop", "steps"),
                         [("tla_lamport_mutex_bug_ties.py", "mutex", 8),
                          ("tla_paxos_commit_bug_any.py", "tc_consistent", 6)])
def test_check_finds_the_bug_twin(spec, prop, steps):
    run = subprocess.run([sys.executable, "-m", "assay", "check", f"specs/{spec}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"violation: property '{prop}' does not hold" in run.stdout
    assert f"shortest counterexample ({steps} steps)" in run.stdout


@pytest.mark.parametrize(("twin", "original"),
                         [("tla_lamport_mutex_bug_ties.py", "tla_lamport_mutex.py"),
                          ("tla_paxos_commit_bug_any.py", "tla_paxos_commit.py")])
def test_a_bug_twin_differs_from_its_spec_only_where_it_says(twin, original):
    """Past the docstring, the twin is its spec but for the line marked BUG, the system's
    name and (Paxos) the default parameters that make the bug quick to reach."""
    def code(name: str) -> list[str]:
        # without what the twin declares for `pytest --assay` (the bug it shows)
        text = (SPECS / name).read_text().split("\n\n# `pytest --assay specs/`")[0]
        return text[text.index('"""', 3) + 3:].splitlines()

    a, b = code(twin), code(original)
    assert len(a) == len(b)
    differ = [(x, y) for x, y in zip(a, b) if x != y]
    assert any("BUG" in x for x, _ in differ)
    assert all("BUG" in x or "System(" in x or x.startswith("def system(") for x, _ in differ)
