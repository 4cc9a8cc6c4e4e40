"""`check --workers auto` (`assay/checker/auto.py`): one process that hands its search over
to forked workers at the end of a level.  Whether it hands over or not, and at whichever
level, the result is that of one process: the same counts, verdict and counterexample (a
violation the workers meet is searched for again by the paused one-process search); modes
it cannot hand over stay on one process without a warning."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.checker import check
from assay.checker.auto import ENV, TRIAL_ENV, Handover, threshold, trial, usable_cores
from assay.checker.compact import compact_bfs
from assay.checker.search import Search
from assay.kernel import Faults, Kernel
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]
TWO_BUGS = "tests/fixtures/keep_going/two_bugs.py"
TWO_CORES = pytest.mark.skipif(usable_cores() < 2, reason="one usable core: auto never forks")


def kernel(spec: str, faults: str | None = None, **params: str) -> Kernel:
    system, _, _ = build(str(REPO / spec), None, params)
    return Kernel(system, Faults.parse(faults) if faults else None)


def everything(r: Any) -> tuple[Any, ...]:
    """What must not change: counts, verdict, the counterexample event by event."""
    v = r.violation
    return (r.verdict, r.reason, r.states, r.transitions, r.depth, r.terminal, r.deadlocked,
            r.exit_code, v and (v.kind, v.name, v.blame, v.message),
            tuple(json.dumps(s.event_json, sort_keys=True, default=str) for s in r.steps),
            r.trace.to_json() if r.trace is not None else None,
            {n: (p["ever_false"], p["reads"], p["note"]) for n, p in r.properties.items()})


@pytest.fixture
def at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand over at the first level boundary (and keep the workers, however fast)."""
    monkeypatch.setenv(ENV, "0,1")
    monkeypatch.setenv(TRIAL_ENV, "0,0")


@pytest.fixture
def slow_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand over at the first level boundary, and find the workers too slow at once."""
    monkeypatch.setenv(ENV, "0,1")
    monkeypatch.setenv(TRIAL_ENV, "0,1000")


EXHAUSTED = [
    ("specs/tla_twophase.py", {"rm_count": "4"}),
    ("specs/bank_transfer.py", {}),
    ("specs/two_phase_commit.py", {}),                  # terminal states
    ("specs/tla_lamport_mutex.py", {"max_clock": "3"}),  # whole-state
]
VIOLATIONS = [
    ("specs/two_phase_commit_bug_majority.py", {}),      # a protocol violation
    ("specs/coin_election_bug_ties.py", {}),             # a property
    ("tests/fixtures/good/ping_pong.py", {}),            # a deadlock
    (TWO_BUGS, {"bugs": "false"}),                       # a deadlock after 7 steps
    ("specs/bank_transfer_bug_overdraft.py", {}),
]


@TWO_CORES
@pytest.mark.parametrize("spec, params", EXHAUSTED)
def test_an_exhausted_search_handed_over_counts_what_one_process_counts(
        at_once: None, spec: str, params: dict[str, str]) -> None:
    one = check(kernel(spec, **params))
    auto = check(kernel(spec, **params), workers="auto")
    assert one.reason == "exhausted" and one.states > 100
    assert everything(auto) == everything(one)
    assert auto.workers == usable_cores() and not auto.warnings
    assert auto.to_json()["workers"] == auto.workers


@TWO_CORES
@pytest.mark.parametrize("spec, params", EXHAUSTED + VIOLATIONS)
def test_workers_slower_than_one_process_hand_the_search_back(
        slow_workers: None, spec: str, params: dict[str, str]) -> None:
    # Raft's network changes in nearly every step: two workers searched it at half the
    # speed of one process, and auto (the default) made `check` twice as slow.  On trial,
    # the workers stop, and the paused search goes on: one process's counts and path
    one = check(kernel(spec, **params))
    auto = check(kernel(spec, **params), workers="auto")
    assert everything(auto) == everything(one)
    assert auto.workers == 1


@TWO_CORES
def test_a_slower_trial_is_why_the_search_came_back(slow_workers: None) -> None:
    one = compact_bfs(kernel("specs/tla_twophase.py", rm_count="4"), Search())
    h = Handover(2, (0, 1))
    auto = compact_bfs(kernel("specs/tla_twophase.py", rm_count="4"), Search(), handover=h)
    assert h.at == 1 and h.fell_back == "slower" and h.workers == 1
    assert (auto.reason, auto.states, auto.transitions, auto.depth) == \
        (one.reason, one.states, one.transitions, one.depth)


def test_the_trial_terms_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRIAL_ENV, raising=False)
    assert trial() == (2.0, 1.15)
    monkeypatch.setenv(TRIAL_ENV, "0.5,3")
    assert trial() == (0.5, 3.0)
    monkeypatch.setenv(TRIAL_ENV, "x")
    assert trial() == (2.0, 1.15)


@TWO_CORES
@pytest.mark.parametrize("spec, params", VIOLATIONS)
def test_a_violation_is_the_one_process_s_counterexample_and_counts(
        at_once: None, spec: str, params: dict[str, str]) -> None:
    one = check(kernel(spec, **params))
    auto = check(kernel(spec, **params), workers="auto")
    assert one.verdict == "violation"
    assert everything(auto) == everything(one)
    assert auto.workers == 1


@TWO_CORES
@pytest.mark.parametrize("n", [2, 3])
def test_the_workers_find_the_violation_and_hand_it_back(n: int) -> None:
    """The deadlock lies 7 levels beyond the hand-over: the workers meet it, and the paused
    search takes up the levels again to report its own counts and path."""
    one = compact_bfs(kernel(TWO_BUGS, bugs="false"), Search())
    h = Handover(n, (0, 1))
    auto = compact_bfs(kernel(TWO_BUGS, bugs="false"), Search(), handover=h)
    assert h.at == 1 and h.fell_back == "violation" and h.workers == 1
    assert (auto.reason, auto.states, auto.transitions, auto.depth, auto.path) == \
        (one.reason, one.states, one.transitions, one.depth, one.path)
    assert auto.violation is not None and one.violation is not None
    assert auto.violation.kind == one.violation.kind == "deadlock"


@TWO_CORES
def test_three_workers_on_two_cores_count_the_same() -> None:
    one = compact_bfs(kernel("specs/tla_twophase.py", rm_count="4"), Search())
    h = Handover(3, (0, 1))
    auto = compact_bfs(kernel("specs/tla_twophase.py", rm_count="4"), Search(), handover=h)
    assert h.at == 1 and h.workers == 3
    assert (auto.reason, auto.states, auto.transitions, auto.depth) == \
        (one.reason, one.states, one.transitions, one.depth)


@TWO_CORES
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frontier=st.integers(1, 400), spec=st.sampled_from(EXHAUSTED[:3] + VIOLATIONS[:2]))
def test_whatever_level_it_hands_over_at_the_result_is_one_process_s(
        frontier: int, spec: tuple[str, dict[str, str]]) -> None:
    path, params = spec
    one = check(kernel(path, **params))
    os.environ[ENV] = f"0,{frontier}"
    try:
        auto = check(kernel(path, **params), workers="auto")
    finally:
        del os.environ[ENV]
    assert everything(auto) == everything(one)


@TWO_CORES
def test_the_bounds_give_one_process_s_counts(at_once: None) -> None:
    for kw in ({"max_depth": 5}, {"max_depth": 40}, {"max_states": 700}, {"max_states": 1}):
        one = check(kernel("specs/tla_twophase.py", rm_count="4"), **kw)  # type: ignore[arg-type]
        auto = check(kernel("specs/tla_twophase.py", rm_count="4"), workers="auto",
                     **kw)  # type: ignore[arg-type]
        assert everything(auto) == everything(one), kw


@TWO_CORES
def test_the_time_bound_stops_the_workers(at_once: None) -> None:
    r = check(kernel("tests/fixtures/stop/endless.py"), workers="auto", max_time=1.0)
    assert r.reason == "max-time" and r.exit_code == 3 and r.workers == usable_cores()
    assert r.states > 1 and 1.0 <= r.seconds < 5


def test_a_small_check_stays_on_one_process() -> None:
    """Below the threshold (the default: a second into the search) nothing is forked."""
    h = Handover(2)
    out = compact_bfs(kernel("specs/tla_twophase.py", rm_count="3"), Search(), handover=h)
    assert out.reason == "exhausted" and h.at is None and h.workers == 1


@pytest.mark.parametrize("kwargs, spec, faults", [
    ({"strategy": "dfs"}, "specs/tla_twophase.py", None),
    ({"keep_going": True}, "specs/tla_twophase.py", None),
    ({"full_states": True}, "specs/tla_twophase.py", None),
    ({"max_memory": 1 << 40}, "specs/tla_twophase.py", None),
    ({"por": True}, "specs/tla_twophase.py", None),
    ({}, "specs/dining_philosophers.py", None),           # liveness
    ({}, "specs/elastic_pool.py", None),                  # symmetry... or not: the same
    ({}, "specs/alternating_bit.py", "drop=1"),           # faults: not packed workers
])
def test_what_auto_cannot_hand_over_stays_on_one_process_silently(
        at_once: None, kwargs: dict[str, Any], spec: str, faults: str | None) -> None:
    one = check(kernel(spec, faults), **kwargs)
    auto = check(kernel(spec, faults), workers="auto", **kwargs)
    assert auto.workers == 1
    assert auto.warnings == one.warnings
    assert everything(auto) == everything(one)


def test_the_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "2.5,100")
    assert threshold() == (2.5, 100)
    monkeypatch.setenv(ENV, "0")
    assert threshold()[0] == 0
    monkeypatch.setenv(ENV, "nonsense")
    assert threshold() == (1.0, 4096)


def test_usable_cores_are_at_most_the_affinity_mask() -> None:
    n = usable_cores()
    assert 1 <= n <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert n <= len(os.sched_getaffinity(0))
        # one core allowed: one worker (in a child, not to pin this process)
        code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
                "from assay.checker.auto import usable_cores; print(usable_cores())")
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
        assert out.stdout.strip() == "1", out.stderr


# --- the command line ---------------------------------------------------------------------------

def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@TWO_CORES
def test_the_command_s_default_hands_over_alike_under_any_hash_seed() -> None:
    """The default is auto; the same JSON as --workers 1 but the time, `workers` and the
    properties' evaluation counts (each worker's own memo), under any PYTHONHASHSEED (the
    owners follow the hash: the counts and trace do not)."""
    args = ("check", "specs/tla_twophase.py", "-p", "rm_count=4", "--json", "-q")
    docs = []
    for run in (_cli(*args, "--workers", "1", env={"PYTHONHASHSEED": "0"}),
                _cli(*args, env={"PYTHONHASHSEED": "0", ENV: "0,1", TRIAL_ENV: "0,0"}),
                _cli(*args, env={"PYTHONHASHSEED": "1", ENV: "0,1", TRIAL_ENV: "0,0"})):
        assert run.returncode == 0, run.stderr
        doc = json.loads(run.stdout)
        docs.append(doc)
        for k in ("seconds", "states_per_second", "storage"):
            doc.pop(k)
        for p in doc["properties"].values():
            assert p.pop("evaluated") > 0
    assert [d.pop("workers") for d in docs] == [1, usable_cores(), usable_cores()]
    assert docs[0] == docs[1] == docs[2]
    bug = ("check", TWO_BUGS, "-p", "bugs=false", "--json", "-q")
    one, auto = _cli(*bug, "-w", "1"), _cli(*bug, "-w", "auto", env={ENV: "0,1"})
    a, b = json.loads(one.stdout), json.loads(auto.stdout)
    assert one.returncode == auto.returncode == 1
    for doc in (a, b):
        for k in ("seconds", "states_per_second"):
            doc.pop(k)
    assert a == b and b["workers"] == 1


def test_a_bad_worker_count_names_auto() -> None:
    r = _cli("check", "specs/tla_twophase.py", "--workers", "some")
    assert r.returncode == 2 and "'some' is not a number of workers" in r.stderr
    assert "'auto'" in r.stderr and "Traceback" not in r.stderr
