"""The compact BFS (`assay/checker/compact.py`, the default of `check`) against the full-state
BFS (`check(full_states=True)`, `bfs.py`): the same counts, the same verdicts and the same
counterexamples, also when fields widen, when states need more than 64 bits, and when the
search spills its states to disk past `max_memory`."""
from __future__ import annotations

from pathlib import Path

import pytest

from assay.checker import check, compact
from assay.checker.compact import CompactBFS, DiskRuns, Packing
from assay.model.load import build

SPECS = Path(__file__).resolve().parents[1] / "specs"


def outcome(r):
    return (r.verdict, r.reason, r.states, r.transitions, r.depth, r.terminal, r.deadlocked,
            r.violation and r.violation.name, [s.description for s in r.steps],
            [(f.violation.name, f.count, [s.description for s in f.steps]) for f in r.findings])


CASES = [
    ("tla_twophase.py", {"rm_count": "4"}, {}),
    ("tla_twophase.py", {"rm_count": "3", "symmetric": "true"}, {}),
    ("two_phase_commit_bug_majority.py", {}, {}),
    ("two_phase_commit_bug_majority.py", {}, {"keep_going": True}),
    ("tla_twophase.py", {"rm_count": "4"}, {"max_depth": 5}),
    ("tla_twophase.py", {"rm_count": "4"}, {"max_states": 500}),
    ("alternating_bit_bug_no_seq.py", {}, {}),
    ("abp_lossy_bug_any_ack.py", {}, {"keep_going": True}),
    ("ring_election_bug_swallow.py", {}, {}),
    ("tla_lamport_mutex_bug_ties.py", {}, {}),
]


@pytest.mark.parametrize("spec, params, options", CASES,
                         ids=[f"{c[0]}-{c[2] or ''}" for c in CASES])
def test_compact_and_full_states_agree(spec, params, options):
    system = build(SPECS / spec, None, params)[0]
    full = check(system, full_states=True, **options)
    compact = check(system, **options)
    assert compact.storage["mode"] == "compact" and compact.storage["exact"]
    assert full.storage["mode"] == "full"
    assert outcome(compact) == outcome(full)


def test_a_bug_is_found_with_the_same_counterexample_and_a_correct_spec_holds():
    bug = check(build(SPECS / "two_phase_commit_bug_majority.py")[0])
    assert bug.verdict == "violation" and bug.steps
    ok = check(build(SPECS / "two_phase_commit.py")[0])
    assert ok.verdict == "ok" and ok.violation is None


def test_states_wider_than_64_bits_are_kept_exactly(monkeypatch):
    monkeypatch.setattr(Packing, "START_WIDTH", 30)     # 4 instances: 120 bits a state
    system = build(SPECS / "tla_twophase.py", None, {"rm_count": "3"})[0]
    r = check(system)
    assert r.states == 288 and r.storage["bits"] > 64 and r.storage["exact"]
    bug = check(build(SPECS / "two_phase_commit_bug_majority.py")[0])
    full = check(build(SPECS / "two_phase_commit_bug_majority.py")[0], full_states=True)
    assert outcome(bug) == outcome(full)


def test_past_max_memory_the_search_spills_to_disk_and_counts_the_same(monkeypatch):
    monkeypatch.setattr(CompactBFS, "SPILL_EVERY", 0)      # spill at every check (1,024 states)
    monkeypatch.setattr(DiskRuns, "MOST_RUNS", 2)          # and merge the runs on disk
    system = build(SPECS / "tla_twophase.py", None, {"rm_count": "5"})[0]
    r = check(system, max_memory=1)
    assert r.reason == "exhausted" and r.states == 8832
    assert r.transitions == check(system, full_states=True).transitions
    assert r.storage["spills"] > 2 and r.storage["on_disk"] > 4000 and r.storage["exact"]
    assert r.storage["collision_probability"] == r.storage["collision_probability_observed"] == 0
    # a counterexample rebuilt from levels read back from disk
    bug = build(SPECS / "paxos_bug_own_value.py")[0]          # 10,763 states, 14 steps
    spilled, full = check(bug, max_memory=1), check(bug, full_states=True)
    assert spilled.storage["spills"] >= 1 and outcome(spilled) == outcome(full)


def test_levels_of_a_large_search_wait_on_disk_for_the_counterexample(monkeypatch):
    monkeypatch.setattr(compact, "LEVELS_IN_MEMORY", 100)
    bug = build(SPECS / "paxos_bug_own_value.py")[0]
    assert outcome(check(bug)) == outcome(check(bug, full_states=True))


def test_spilled_fingerprints_report_a_collision_probability(monkeypatch):
    monkeypatch.setattr(CompactBFS, "SPILL_EVERY", 0)
    monkeypatch.setattr(Packing, "START_WIDTH", 30)
    r = check(build(SPECS / "tla_twophase.py", None, {"rm_count": "5"})[0], max_memory=1)
    assert r.reason == "exhausted" and r.states == 8832
    assert not r.storage["exact"] and r.storage["fingerprints"] > 0
    assert 0 < r.storage["collision_probability"] < 1e-9
    assert 0 < r.storage["collision_probability_observed"] < 1e-6


def test_full_states_still_stops_at_max_memory():
    system = build(SPECS / "tla_twophase.py", None, {"rm_count": "5"})[0]
    r = check(system, max_memory=1, full_states=True)
    assert r.reason == "max-memory" and r.verdict == "incomplete"


def test_the_cli_spills_past_max_memory_and_says_so():
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    argv = [sys.executable, "-m", "assay.cli", "check", str(SPECS / "tla_twophase.py"),
            "-p", "rm_count=5", "--max-memory", "1", "-q"]
    r = subprocess.run([*argv, "--json"], cwd=root, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["states"] == 8832 and doc["reason"] == "exhausted"
    assert doc["storage"]["spills"] >= 1 and doc["storage"]["exact"]
    r = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    text = " ".join(r.stdout.split())
    assert r.returncode == 0 and "spilled to disk" in text and "exact" in text
    full = subprocess.run([*argv, "--full-states"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert full.returncode == 3 and "max-memory" in full.stdout


def test_a_system_of_thousands_of_instances_packs_without_a_compiler_error():
    # before: the generated `pack` was one expression of 3,001 terms (RecursionError while
    # compiling it, an internal error), and at ~10,000 instances a mask's decimal literal
    # passed Python's 4,300-digit limit (now written in hex)
    system = build(SPECS / "two_phase_commit.py", None, {"rm_count": "3000"})[0]
    r = check(system, max_states=20)
    assert r.reason == "max-states" and r.verdict == "incomplete" and r.states >= 20
