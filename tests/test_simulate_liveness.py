"""`simulate` and liveness (issue 10 §1): a run that walks a lasso breaking a liveness
property — back to a state it has been in, along a cycle that fairness allows and where the
property fails, or to a stop where it never held — reports a *suspected* liveness violation,
written as a trace `assay replay` confirms; without one, liveness is "not covered".

Each shipped liveness bug is found by some seeds, its correct twin never; the same seed
gives the same report with any number of worker processes; a spec without liveness
properties pays nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.checker import check
from assay.kernel.liveness import check_lasso
from assay.model.load import build
from assay.simulator import FaultRates, Options, campaign, run_once
from assay.simulator import run as run_module
from assay.simulator.campaign import derive, kernel_for
from assay.simulator.lasso import LassoMemo, _simple_path

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"
LIVE = REPO / "tests" / "fixtures" / "liveness"

BUGS = {                                    # spec -> the property its bug breaks
    SPECS / "lock_server_bug_priority.py": "c1 waits ~> c1 enters",
    SPECS / "ring_election_bug_swallow.py": "a_leader_is_elected",
    LIVE / "token_ring_bug_keep.py": "n0_holds_the_token",
    LIVE / "idle_loop.py": "turns_red",
}
GOOD = [SPECS / "lock_server.py", SPECS / "ring_election.py", LIVE / "token_ring.py",
        SPECS / "first_timeout.py", SPECS / "in_order_receiver.py"]


def _cli(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=180)


@pytest.mark.parametrize("spec", list(BUGS), ids=lambda p: p.stem)
def test_a_liveness_bug_is_found_by_some_seeds_as_a_lasso_check_lasso_accepts(spec):
    c = campaign(str(spec), None, {}, seed=0, runs=10, opts=Options(steps=300), jobs=1)
    assert c.suspected, "no run walked the lasso"
    assert not c.failures                    # safety holds: the finding is liveness alone
    assert {r.suspected["name"] for r in c.suspected} == {BUGS[spec]}
    assert c.exit_code == 1 and c.to_json()["verdict"] == "suspected"
    # the lasso is one by the checker's own definition, from the run's initial state
    system, _, _ = build(spec)
    k = kernel_for(system, FaultRates())
    r = run_once(k, derive(0, c.suspected[0].index), 300, FaultRates())
    sus = r.suspect
    assert sus is not None and sus.prop.name == BUGS[spec]
    states = [r.initial]
    for ev in sus.events:
        states.append(k.apply(states[-1], ev)[0])
    assert check_lasso(k, sus.prop, states, list(sus.events), sus.cycle_start) == \
        sus.violation
    assert check(system).violation.kind == "liveness"          # and check agrees


@pytest.mark.parametrize("spec", GOOD, ids=lambda p: p.stem)
def test_a_correct_spec_is_never_suspected(spec):
    c = campaign(str(spec), None, {}, seed=0, runs=30, opts=Options(steps=400), jobs=1)
    assert not c.suspected and not c.failures and c.exit_code == 0
    live = c.liveness([p.name for p in build(spec)[0].liveness])
    assert live and all(v.startswith("not covered") for v in live.values())


def test_an_election_that_stops_without_a_leader_is_a_lasso_with_an_empty_cycle():
    c = campaign(str(SPECS / "ring_election_bug_swallow.py"), None, {}, seed=0, runs=3,
                 opts=Options(steps=300), jobs=1)
    for r in c.suspected:
        assert r.ended == "final"
        assert r.suspected["cycle_start"] == len(r.suspected["events"])


def test_a_fair_cycle_takes_the_steps_that_change_nothing_the_run_skipped():
    c = campaign(str(LIVE / "idle_loop.py"), None, {}, seed=0, runs=3, opts=Options(steps=50),
                 jobs=1)
    assert len(c.suspected) == 3
    cycle = c.suspected[0].suspected["events"][c.suspected[0].suspected["cycle_start"]:]
    assert any(e["kind"] == "action" and e["action"] == "idle" for e in cycle)


def test_the_lasso_trace_replays_and_the_cli_says_suspected_and_not_covered(tmp_path):
    c = _cli("simulate", SPECS / "lock_server_bug_priority.py", "--runs", "5", "--steps",
             "200", "--jobs", "1", "--out", tmp_path)
    assert c.returncode == 1, c.stdout + c.stderr
    out = " ".join(c.stdout.split())
    assert "suspected liveness violations" in out and "`assay check` decides the property" \
        in out
    assert "liveness (c1 waits ~> c1 enters): suspected — confirm with `assay check`" in out
    assert "liveness (c0 waits ~> c0 enters): not covered" in out
    assert "✓ no safety violation in 5 runs" in out
    traces = sorted(tmp_path.glob("*-lasso.json"))
    assert traces and len(traces) == c.stdout.count("-lasso.json")
    doc = json.loads(traces[0].read_text())
    assert doc["engine"] == "simulate" and doc["verdict"]["kind"] == "liveness"
    assert doc["verdict"]["suspected"] is True and doc["verdict"]["fairness"] == "weak"
    again = _cli("replay", traces[0], "--json")
    assert again.returncode == 1, again.stdout + again.stderr
    got = json.loads(again.stdout)
    assert got["reproduced"] and got["lasso"]["confirmed"]
    assert got["lasso"]["cycle_start"] == doc["verdict"]["cycle_start"]


def test_json_says_suspected_or_not_covered_per_property(tmp_path):
    bad = _cli("simulate", LIVE / "token_ring_bug_keep.py", "--runs", "4", "--steps", "200",
               "--jobs", "1", "--json", "--quiet", "--out", tmp_path)
    doc = json.loads(bad.stdout)
    assert bad.returncode == 1 and doc["verdict"] == "suspected"
    assert doc["liveness"] == {"n0_holds_the_token":
                               "suspected (run 0): confirm with assay check"}
    first = doc["suspected"][0]
    assert first["name"] == "n0_holds_the_token" and first["formula"] == \
        "□◇ n0_holds_the_token"
    assert first["trace_file"].endswith("-lasso.json") and first["events"] > \
        first["cycle_start"]
    good = _cli("simulate", LIVE / "token_ring.py", "--runs", "4", "--steps", "200",
                "--jobs", "1", "--json", "--quiet", "--out", tmp_path)
    ok = json.loads(good.stdout)
    assert good.returncode == 0 and ok["verdict"] == "ok" and ok["suspected"] == []
    assert ok["liveness"]["n0_holds_the_token"].startswith("not covered")


@pytest.mark.parametrize("spec", [SPECS / "lock_server_bug_priority.py",
                                  LIVE / "token_ring_bug_keep.py"], ids=lambda p: p.stem)
def test_the_same_seed_gives_the_same_suspects_with_any_number_of_workers(spec):
    opts = Options(steps=200)
    one = campaign(str(spec), None, {}, seed=9, runs=24, opts=opts, jobs=1)
    two = campaign(str(spec), None, {}, seed=9, runs=24, opts=opts, jobs=2)
    assert one.to_json(with_timing=False) == two.to_json(with_timing=False)
    assert [r.suspected for r in one.reports] == [r.suspected for r in two.reports]


def test_a_spec_without_liveness_properties_makes_no_tracker(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a tracker was made for a spec without liveness properties")

    monkeypatch.setattr(run_module, "Tracker", refuse)
    c = campaign(str(SPECS / "two_phase_commit.py"), None, {}, seed=0, runs=5,
                 opts=Options(steps=100), jobs=1)
    assert c.runs == 5 and not c.suspected


def test_watching_for_lassos_never_changes_a_run():
    system, _, _ = build(SPECS / "lock_server_bug_priority.py")
    k = kernel_for(system, FaultRates())
    memo = LassoMemo(k)
    for i in range(5):
        watched = run_once(k, derive(1, i), 200, FaultRates(), lassos=memo)
        plain = run_once(k, derive(1, i), 200, FaultRates(), lassos=False)
        assert watched.events == plain.events and watched.ended == plain.ended
        assert plain.suspect is None


def test_the_prefix_of_a_lasso_is_cut_to_a_simple_path():
    states, events = list("abcbdad"), [1, 2, 3, 4, 5, 6]
    assert _simple_path(states, events) == (["a", "d"], [6])
    assert _simple_path(list("abc"), [1, 2]) == (["a", "b", "c"], [1, 2])
