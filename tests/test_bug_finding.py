"""Finding bugs sooner: the coverage and swarm schedulers, and Hypothesis as a search engine
(`assay.testing`, `assay simulate --engine hypothesis`): they find the bugs, find nothing in
the correct twins, are deterministic across hash seeds and worker counts, the example
database replays a failure first, and the failing example replays with `assay replay`.

The command-line runs happen once, in parallel, in a module-scoped fixture.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from assay.kernel.trace import Trace, replay_trace
from assay.model.load import build
from assay.simulator import FaultRates, Options, campaign
from assay.simulator.campaign import kernel_for
from assay.simulator.run import run_once
from assay.simulator.schedulers import BLOCK, SwarmScheduler
from assay.testing import SearchStats, runs, search

REPO = Path(__file__).resolve().parents[1]
MAJORITY = str(REPO / "specs" / "two_phase_commit_bug_majority.py")
TPC = str(REPO / "specs" / "two_phase_commit.py")
VOLATILE = str(REPO / "specs" / "register_bug_volatile.py")
REG = str(REPO / "specs" / "register.py")


def cli(args: list[str], hashseed: str = "0") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def as_json(r: subprocess.CompletedProcess[str]) -> dict:
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    doc.pop("seconds")
    doc.pop("events_per_second")
    doc.pop("shrink_seconds", None)
    return doc


@pytest.fixture(scope="module")
def runs_cli(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bugs")
    db = str(out / "db")
    det = {}
    for sched in ("coverage", "swarm"):
        base = ["simulate", MAJORITY, "-p", "rm_count=4", "--seed", "3", "--runs",
                str(BLOCK + 6), "--steps", "80", "--scheduler", sched, "--json"]
        det[(sched, "a")] = (base + ["-j", "1", "--out", str(out / sched / "a")], "0")
        det[(sched, "b")] = (base + ["-j", "2", "--out", str(out / sched / "b")], "4242")
    hyp = ["simulate", MAJORITY, "--engine", "hypothesis", "--runs", "200", "--steps", "60",
           "--json", "--seed", "5"]
    det[("hypothesis", "a")] = (hyp + ["--database", "none", "--out", str(out / "h" / "a")], "0")
    det[("hypothesis", "b")] = (hyp + ["--database", "none", "--out", str(out / "h" / "b")],
                                "4242")
    with ThreadPoolExecutor(4) as pool:
        # the example database: a first search stores the failure, a second tries it first
        stored = pool.submit(lambda: (cli(hyp + ["--database", db, "--out", str(out / "db1")]),
                                      cli(hyp + ["--database", db, "--out", str(out / "db2")])))
        futs = {k: pool.submit(cli, a, h) for k, (a, h) in det.items()}
        done = {k: f.result() for k, f in futs.items()}
        first, second = stored.result()
    return {"det": done, "first": first, "second": second, "out": out}


@pytest.mark.e2e
@pytest.mark.parametrize("engine", ["coverage", "swarm", "hypothesis"])
def test_a_search_is_the_same_across_hash_seeds_and_worker_counts(runs_cli, engine):
    a, b = (as_json(runs_cli["det"][(engine, k)]) for k in "ab")
    for doc in (a, b):
        for v in doc["violations"]:
            v["trace_file"] = os.path.basename(v["trace_file"])
    assert a == b
    assert a["events"] > 0
    if engine == "hypothesis":                 # the shrunk traces, byte for byte
        files = [sorted((runs_cli["out"] / "h" / k).iterdir()) for k in "ab"]
        assert [f.read_text() for f in files[0]] == [f.read_text() for f in files[1]]
        assert files[0]


@pytest.mark.e2e
def test_the_hypothesis_engine_finds_the_majority_bug_and_its_trace_replays(runs_cli):
    doc = as_json(runs_cli["first"])
    assert doc["engine"] == "hypothesis" and doc["verdict"] == "violation"
    (v,) = doc["violations"]
    assert v["name"] == "consistent" or v["blame"].startswith("tm"), v
    assert v["shrunk_events"] <= v["events"]
    r = cli(["replay", v["trace_file"], "--json"])
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    assert rep["reproduced"] and rep["steps"] == v["shrunk_events"]
    # the second search tries the stored failure first: found by its first run
    again = as_json(runs_cli["second"])
    assert again["runs"] == 1 and again["violations"][0]["shrunk_events"] == v["shrunk_events"]
    assert doc["runs"] > 1


def test_hypothesis_engine_finds_nothing_in_two_phase_commit_and_stores_nothing(tmp_path):
    system, name, _ = build(TPC, None, {})
    stats = SearchStats()
    c = search(system, spec=TPC, system_name=name, runs=60, opts=Options(steps=60),
               database=str(tmp_path / "db"), stats=stats)
    assert c.ok and c.failures == [] and c.runs == 60
    assert stats.first_failure is None and not stats.from_database
    assert c.to_json(False)["ended"] == {"final": 60}


def test_hypothesis_engine_finds_the_volatile_register_bug_with_crashes():
    system, name, _ = build(VOLATILE, None, {})
    opts = Options(steps=60, rates=FaultRates.parse("crash=0.05"))
    c = search(system, spec=VOLATILE, system_name=name, runs=300, opts=opts)
    (r,) = c.failures
    assert r.violation and r.violation["name"] == "acknowledged_writes_survive"
    assert any(e["kind"] == "crash" for e in r.shrunk or [])


def test_the_runs_strategy_in_a_hypothesis_test(tmp_path):
    """A Hypothesis test over runs fails on the bug (shrunk, the run in its message) and
    passes on the correct protocol; the failing run, written as a trace, replays."""
    failed = []

    def check(spec: str) -> None:
        system, _, _ = build(spec, None, {})

        @settings(max_examples=150, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(runs(system, steps=60))
        def test(run):
            if run.violation is not None:
                failed.append(run)
            assert run.violation is None, run.text()

        test()

    check(TPC)
    assert failed == []
    with pytest.raises(AssertionError, match="violation"):
        check(MAJORITY)
    last = failed[-1]                          # Hypothesis ends with its minimal example
    path = tmp_path / "run.json"
    last.trace(MAJORITY).write(path)
    done = replay_trace(Trace.read(path), path)
    assert done.violation is not None and done.violation.name == last.violation.name
    assert len(done.steps) == len(last.result.events)


@pytest.mark.parametrize("scheduler", ["coverage", "swarm"])
def test_the_new_schedulers_find_the_majority_bug_and_nothing_in_two_phase_commit(scheduler):
    opts = Options(steps=80, scheduler=scheduler)
    bug = campaign(MAJORITY, None, {}, seed=1, runs=60, opts=opts, jobs=1)
    assert bug.failures
    ok = campaign(TPC, None, {}, seed=1, runs=60, opts=opts, jobs=1)
    assert ok.failures == [] and ok.runs == 60


def test_swarm_leaves_fault_kinds_out_per_run_and_finds_the_volatile_bug():
    rates = FaultRates.parse("crash=0.05,drop=0.05")
    system, _, _ = build(REG, None, {})
    k = kernel_for(system, rates)
    import random

    kept = {SwarmScheduler(random.Random(s), k, 10).rates(rates) for s in range(20)}
    assert len(kept) == 4 and rates in kept           # drop and crash, each on or off
    assert {r.lose for r in kept} == {rates.lose}     # no lossy links: nothing to swarm
    opts = Options(steps=60, rates=FaultRates.parse("crash=0.05"), scheduler="swarm")
    assert campaign(VOLATILE, None, {}, seed=1, runs=80, opts=opts, jobs=1).failures
    assert campaign(REG, None, {}, seed=1, runs=40, opts=opts, jobs=1).failures == []
    # a run is a function of its seed
    a = [run_once(k, s, 60, rates, "swarm").events for s in range(5)]
    assert a == [run_once(k, s, 60, rates, "swarm").events for s in range(5)]


def test_hypothesis_engine_with_another_scheduler_is_a_usage_error():
    r = cli(["simulate", MAJORITY, "--engine", "hypothesis", "--scheduler", "pct"])
    assert r.returncode == 2
    assert "--engine hypothesis makes the choices itself" in r.stderr
    assert "Traceback" not in r.stderr
