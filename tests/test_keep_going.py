"""`check --keep-going` (TLC's -continue): the search goes on past violations, explores every
reachable state, counts each kind of violation and keeps a counterexample of each.

The counts are held against an independent enumeration of the reachable graph (every enabled
event applied, as the liveness checker builds it), on the fixture with two properties, a
contract and a deadlock (`tests/fixtures/keep_going/two_bugs.py`, counted by hand in its
docstring) and on the shipped buggy specs, with and without faults, breadth and depth first.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from assay import Component, Port, System, action, ensures
from assay.checker import CheckResult, check
from assay.checker.liveness import build_graph
from assay.checker.search import Search, violation_key
from assay.kernel import Faults, Kernel
from assay.kernel.trace import Trace, replay_trace
from assay.model.load import build
from assay.report import SHOWN, render_check

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
FIXTURE = ROOT / "tests" / "fixtures" / "keep_going" / "two_bugs.py"
STRATEGIES = ("bfs", "dfs")


def kernel_of(path: Path, faults: str | None = None, deadlock: bool = True,
              **params: Any) -> Kernel:
    system, _, _ = build(path, None, {k: str(v).lower() for k, v in params.items()})
    return Kernel(system, Faults.parse(faults) if faults else None, deadlock=deadlock)


def run(path: Path, strategy: str = "bfs", keep_going: bool = True, faults: str | None = None,
        deadlock: bool = True, **params: Any) -> CheckResult:
    return check(kernel_of(path, faults, deadlock, **params), strategy=strategy,
                 keep_going=keep_going, spec=str(path), system_name="system")


def counts(r: CheckResult) -> dict[tuple[str, str | None, str], tuple[int, str]]:
    return {(f.violation.kind, f.violation.name, f.violation.blame): (f.count, f.unit)
            for f in r.findings}


# --- the fixture: two properties, a contract, a deadlock ----------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_kind_of_violation_is_counted(strategy: str) -> None:
    r = run(FIXTURE, strategy)
    assert counts(r) == {
        ("property", "a_below_2", "a_below_2"): (14, "states"),
        ("property", "b_below_2", "b_below_2"): (16, "states"),
        ("ensures", None, "sink.note"): (8, "transitions"),
        ("deadlock", "deadlock", "two_bugs"): (1, "states"),
    }
    assert (r.verdict, r.reason, r.exit_code) == ("violation", "exhausted", 1)
    assert (r.states, r.transitions, r.terminal, r.deadlocked) == (28, 53, 0, 1)
    assert r.properties["a_below_2"]["ever_false"] and r.properties["b_below_2"]["ever_false"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_search_reaches_as_many_states_as_the_spec_without_its_bugs(strategy: str) -> None:
    clean = run(FIXTURE, strategy, keep_going=False, bugs=False, terminal=True)
    assert clean.verdict == "ok" and not clean.findings
    buggy = run(FIXTURE, strategy)
    assert (buggy.states, buggy.transitions) == (clean.states, clean.transitions) == (28, 53)


def test_bfs_keeps_a_shortest_counterexample_of_each_kind() -> None:
    r = run(FIXTURE, "bfs")
    lengths = {f.violation.kind + ":" + str(f.violation.name): len(f.steps) for f in r.findings}
    assert lengths == {"property:a_below_2": 2, "property:b_below_2": 2, "ensures:None": 3,
                       "deadlock:deadlock": 7}
    assert [len(f.steps) for f in r.findings] == sorted(len(f.steps) for f in r.findings)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_counterexample_ends_in_its_own_violation(strategy: str) -> None:
    k = kernel_of(FIXTURE)
    r = check(k, strategy=strategy, keep_going=True)
    for f in r.findings:
        state = next(s for s, _ in k.initial_states()
                     if {i.name: k.local_values(s, i.name) for i in k.instances} == f.initial)
        for step in f.steps[:-1]:
            state = k.apply(state, step.event)[0]
        last = f.steps[-1]
        after, _, viol = k.apply(state, last.event)
        key = violation_key(f.violation)
        if f.unit == "transitions":
            assert key in {violation_key(v) for v in viol}
        elif f.violation.kind == "deadlock":
            assert not k.can_progress(after) and not k.is_terminal(after)
        else:
            assert key in {violation_key(v) for v in k.property_violations(after)}


def test_a_counterexample_through_another_violation_says_where_replay_stops(
        tmp_path: Path) -> None:
    r = run(FIXTURE, "bfs")
    first, ensures = r.findings[0], next(f for f in r.findings if f.violation.kind == "ensures")
    assert first.replay_stops_at is None
    assert ensures.replay_stops_at is not None
    step, other = ensures.replay_stops_at
    assert (step, other.name) == (2, "b_below_2")   # b.x reaches 2 before note 2 is delivered
    for f, want in ((first, first.violation), (ensures, other)):
        path = tmp_path / "t.json"
        f.trace.write(path)
        got = replay_trace(Trace.read(path), path)
        assert got.violation is not None
        assert violation_key(got.violation) == violation_key(want)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_terminal_states_are_counted_apart_from_deadlocks(strategy: str) -> None:
    declared = run(FIXTURE, strategy, terminal=True)
    assert (declared.terminal, declared.deadlocked) == (1, 0)
    assert "deadlock" not in {f.violation.kind for f in declared.findings}
    unchecked = run(FIXTURE, strategy, deadlock=False)
    assert (unchecked.terminal, unchecked.deadlocked) == (1, 0)
    assert unchecked.trace is not None and unchecked.trace.verdict["deadlock"] is False


def test_bounds_still_stop_a_search_that_keeps_going() -> None:
    r = check(kernel_of(FIXTURE), keep_going=True, max_states=10)
    assert (r.reason, r.states, r.verdict, r.exit_code) == ("max-states", 10, "violation", 1)
    shallow = check(kernel_of(FIXTURE), keep_going=True, max_depth=1)
    assert (shallow.reason, shallow.verdict, shallow.exit_code) == ("max-depth", "incomplete", 3)
    assert not shallow.findings
    two = check(kernel_of(FIXTURE), keep_going=True, max_depth=2)
    assert two.reason == "max-depth" and two.exit_code == 1
    # the states at depth 2 are checked, and so are the steps out of them (the ensures, step 3)
    assert {(f.violation.kind, len(f.steps)) for f in two.findings} == {
        ("property", 2), ("ensures", 3)}
    assert len(two.findings) == 3
    clean = check(kernel_of(FIXTURE, bugs=False), keep_going=True, max_states=5)
    assert (clean.reason, clean.exit_code) == ("max-states", 3)


# --- liveness -----------------------------------------------------------------------------------


def test_every_liveness_property_is_decided() -> None:
    r = run(FIXTURE, live=True, terminal=True)
    assert r.liveness == {"a_reaches_4": "violated", "b_reaches_3": "violated",
                          "a_reaches_3": "holds"}
    lassos = [f for f in r.findings if f.unit == "lasso"]
    assert [f.violation.name for f in lassos] == ["a_reaches_4", "b_reaches_3"]
    assert all(f.count == 1 and f.cycle_start is not None for f in lassos)
    assert r.findings[0].violation.kind == "property"      # safety first, liveness after
    # without --keep-going: the first that fails, the others not checked
    once = run(FIXTURE, keep_going=False, live=True, bugs=False, terminal=True)
    assert once.liveness["a_reaches_4"] == "violated"
    assert once.liveness["b_reaches_3"].startswith("not checked")


def test_liveness_alone_leads_with_its_lasso() -> None:
    r = run(SPECS / "dining_philosophers.py")
    assert set(r.liveness.values()) == {"violated"} and len(r.liveness) == 3
    assert [f.violation.kind for f in r.findings] == ["liveness"] * 3
    once = run(SPECS / "dining_philosophers.py", keep_going=False)
    assert r.violation == once.violation and r.cycle_start == once.cycle_start
    assert [s.event for s in r.steps] == [s.event for s in once.steps]
    assert r.trace is not None and r.trace.verdict["cycle_start"] == r.cycle_start


def test_liveness_is_not_decided_on_an_incomplete_search() -> None:
    r = check(kernel_of(FIXTURE, live=True), keep_going=True, max_states=10)
    assert all(v.startswith("not checked") for v in r.liveness.values())


# --- against an independent enumeration, on the shipped specs -----------------------------------


def enumerate_graph(k: Kernel) -> tuple[int, Counter[Any], int, int]:
    """States, violations per kind, terminal and deadlocked states of the whole reachable
    graph, from every enabled event of every state (`build_graph`), not from the searches."""
    graph = build_graph(k, Search())
    found: Counter[Any] = Counter()
    terminal = deadlocked = 0
    for _, viol in k.initial_states():
        found.update({violation_key(v) for v in viol})
    for i, s in enumerate(graph.states):
        found.update({violation_key(v) for v in k.property_violations(s)})
        if k.system.constraints and not k.within(s):
            continue
        if not k.can_progress(s):
            if k.is_terminal(s):
                terminal += 1
            else:
                deadlocked += 1
                found[violation_key(k.deadlock())] += 1
        for ev, _ in graph.succ[i]:
            found.update({violation_key(v) for v in k.apply(s, ev)[2]})
    return len(graph.states), found, terminal, deadlocked


CASES = [
    (FIXTURE, None, {}),
    (FIXTURE, None, {"terminal": True}),
    (FIXTURE, "crash=1", {}),
    (SPECS / "bank_transfer_bug_overdraft.py", None, {}),
    (SPECS / "two_phase_commit_bug_majority.py", None, {}),
    (SPECS / "lock_server_bug_priority.py", None, {}),
    (SPECS / "register_bug_volatile.py", "crash=1", {}),
    (SPECS / "alternating_bit_bug_no_seq.py", "dup=1", {}),
]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("path", "faults", "params"), CASES,
                         ids=[f"{p.stem}-{f}-{'+'.join(ps)}" for p, f, ps in CASES])
def test_counts_agree_with_the_whole_reachable_graph(path: Path, faults: str | None,
                                                     params: dict[str, Any],
                                                     strategy: str) -> None:
    r = run(path, strategy, faults=faults, **params)
    states, found, terminal, deadlocked = enumerate_graph(kernel_of(path, faults, **params))
    assert r.reason == "exhausted"
    assert (r.states, r.terminal, r.deadlocked) == (states, terminal, deadlocked)
    safety = {violation_key(f.violation): f.count for f in r.findings if f.unit != "lasso"}
    assert safety == dict(found)
    assert r.exit_code == (1 if r.findings else 0)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("path", "faults", "params"), CASES,
                         ids=[f"{p.stem}-{f}-{'+'.join(ps)}" for p, f, ps in CASES])
def test_the_first_finding_is_what_a_search_that_stops_reports(
        path: Path, faults: str | None, params: dict[str, Any], strategy: str) -> None:
    going = run(path, strategy, faults=faults, **params)
    stopping = run(path, strategy, keep_going=False, faults=faults, **params)
    assert going.violation == stopping.violation
    assert [s.event_json for s in going.steps] == [s.event_json for s in stopping.steps]
    assert going.initial == stopping.initial
    if going.trace is not None and stopping.trace is not None:
        assert going.trace.to_json() == stopping.trace.to_json()


class Up(Component):
    x: int = 0

    @action()
    def inc(self):
        self.x += 1


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_constraint_still_bounds_a_search_that_keeps_going(strategy: str) -> None:
    s = System("up")
    s.add("c", Up)
    s.constraint(lambda g: g["c"].x <= 5)

    @s.always
    def low(g):
        return g["c"].x <= 3

    r = check(s, strategy=strategy, keep_going=True)
    # x = 0..6: 6 is beyond the constraint, checked (it breaks `low`) but not expanded, so
    # it is neither terminal nor deadlocked
    assert (r.states, r.terminal, r.deadlocked, r.reason) == (7, 0, 0, "exhausted")
    assert counts(r) == {("property", "low", "low"): (3, "states")}
    states, found, terminal, deadlocked = enumerate_graph(Kernel(s))
    assert (states, dict(found), terminal, deadlocked) == (
        7, {violation_key(r.findings[0].violation): 3}, 0, 0)


def test_faults_are_explored_past_violations_too() -> None:
    r = run(SPECS / "register_bug_volatile.py", faults="crash=1")
    assert r.findings and r.exit_code == 1
    assert any(s.event_json["kind"] == "crash" for s in r.steps)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_ctrl_c_keeps_what_was_found_so_far(strategy: str) -> None:
    def interrupt(_: Any) -> None:
        raise KeyboardInterrupt

    r = check(kernel_of(SPECS / "bank_transfer_bug_overdraft.py"), strategy=strategy,
              keep_going=True, on_progress=interrupt, progress_interval=0)
    assert (r.reason, r.verdict, r.exit_code) == ("interrupted", "violation", 130)
    assert r.findings and r.states < 3990
    assert "until interrupted (Ctrl-C): not every state was explored" in text(r)


# --- reports ------------------------------------------------------------------------------------


def text(r: CheckResult) -> str:
    buf = io.StringIO()
    render_check(Console(file=buf, width=200, highlight=False), r, "spec.py", "system", {})
    return buf.getvalue()


def test_the_report_shows_each_kind_then_counts_them() -> None:
    out = text(run(FIXTURE))
    assert "✗ 4 kinds of violation (the search kept going past them: every state was " \
           "explored)" in out
    for i in range(1, 5):
        assert f"[{i}/4] ✗" in out
    assert out.count("shortest counterexample") == 4
    assert "[1/4] ✗ property 'a_below_2' does not hold (14 states)" in out
    assert "note: this run breaks property b_below_2 first, at step 2" in out
    lines = {ln.split("  ")[0]: ln for ln in out.splitlines()}
    assert lines["terminal states"].split()[-1] == "0"
    assert lines["deadlocked states"].split()[-1] == "1"
    assert "ensures, blame sink.note: 8 transitions" in out
    assert "deadlock: 1 state" in out
    assert "search             bfs, kept going, stopped: exhausted" in out


class Tally(Component):
    p = Port()
    x: int = 0

    @action(when=lambda self: self.x < 1)
    def inc(self):
        self.x += 1


def many_kinds(n: int) -> System:
    """n counters that each break their own property, in one step."""
    def zero(i: int) -> Any:
        def prop(g: Any) -> bool:
            return g[f"t{i}"].x == 0
        prop.__name__ = f"t{i}_zero"
        return prop

    s = System("many")
    for i in range(n):
        s.add(f"t{i}", Tally)
        s.always(zero(i))
    s.terminal(lambda g: True)
    return s


class Twice(Component):
    x: int = 0

    @action(when=lambda self: self.x < 2)
    @ensures(lambda old, self: self.x < 2)
    @ensures(lambda old, self: self.x < 1)
    def inc(self):
        self.x += 1


def test_two_contracts_of_one_handler_are_counted_apart_by_their_line() -> None:
    s = System("twice")
    s.add("t", Twice)
    s.terminal(lambda g: True)
    r = check(s, keep_going=True)
    got = sorted((f.violation.location.line, f.count) for f in r.findings
                 if f.violation.location is not None)
    assert [n for _, n in got] == [1, 2]            # x < 2 breaks once, x < 1 twice
    assert got[0][0] + 1 == got[1][0]
    out = text(r)
    for line, n in got:
        assert f"ensures, blame t.inc (test_keep_going.py:{line}): {n} transition" in out


def test_past_a_few_kinds_the_report_counts_the_rest() -> None:
    r = check(many_kinds(SHOWN + 2), keep_going=True)
    assert len(r.findings) == SHOWN + 2
    out = text(r)
    assert out.count("counterexample (1 steps)") == SHOWN
    assert "... and 2 more kinds, counted below" in out
    assert f"property t{SHOWN + 1}_zero: " in out


def test_json_always_has_terminal_and_deadlocked_counts() -> None:
    stopped = run(ROOT / "tests" / "fixtures" / "good" / "ping_pong.py", keep_going=False)
    d = stopped.to_json()
    assert (d["terminal"], d["deadlocked"], d["keep_going"], d["violations"]) == \
        (0, 1, False, None)
    ok = run(SPECS / "two_phase_commit.py", keep_going=False).to_json()
    assert (ok["verdict"], ok["deadlocked"], ok["violations"]) == ("ok", 0, None)
    assert ok["terminal"] > 0
    going = run(SPECS / "two_phase_commit.py").to_json()
    assert (going["verdict"], going["violations"], going["terminal"]) == \
        ("ok", [], ok["terminal"])


# --- the command, end to end --------------------------------------------------------------------


def assay(*args: str, seed: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "ASSAY_PROGRESS_INTERVAL": "3600"}
    env.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "assay.cli", "check", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def without_timing(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in ("seconds", "states_per_second")}


@pytest.mark.e2e
@pytest.mark.parametrize("strategy", ("--bfs", "--dfs"))
def test_cli_keep_going_json(strategy: str, tmp_path: Path) -> None:
    spec = "tests/fixtures/keep_going/two_bugs.py"
    out = tmp_path / "first.json"
    a = assay(spec, strategy, "--keep-going", "--json", "--trace-out", str(out), seed="1")
    b = assay(spec, strategy, "--keep-going", "--json", seed="2")
    assert a.returncode == b.returncode == 1, a.stderr
    assert a.stderr == ""
    da, db = json.loads(a.stdout), json.loads(b.stdout)
    assert without_timing(da) == without_timing(db)           # the same on every run
    assert (da["states"], da["terminal"], da["deadlocked"], da["keep_going"]) == (28, 0, 1, True)
    assert [(v["kind"], v["name"], v["count"], v["unit"]) for v in da["violations"]][:2] == [
        ("property", "a_below_2", 14, "states"), ("property", "b_below_2", 16, "states")]
    assert {v["kind"]: v["count"] for v in da["violations"]} == {
        "property": 16, "ensures": 8, "deadlock": 1}
    assert da["violation"] == {k: da["violations"][0][k] for k in da["violation"]}
    assert json.loads(out.read_text()) == da["violations"][0]["trace"] == da["trace"]
    for v in da["violations"]:
        assert len(v["trace"]["events"]) == v["length"]


@pytest.mark.e2e
def test_cli_keep_going_text_and_exit_codes() -> None:
    spec = "tests/fixtures/keep_going/two_bugs.py"
    r = assay(spec, "--keep-going")
    assert r.returncode == 1 and "[4/4] ✗ deadlock" in r.stdout
    assert "terminal states" in r.stdout and "deadlocked states" in r.stdout
    clean = assay(spec, "--keep-going", "-p", "bugs=false", "-p", "terminal=true")
    assert clean.returncode == 0 and "all properties hold (exhaustive)" in clean.stdout
    assert "terminal states    1" in clean.stdout
    bounded = assay(spec, "--keep-going", "--max-states", "10")
    assert bounded.returncode == 1
    assert "until the max-states bound: not every state was explored" in bounded.stdout
    stopping = assay(spec)                  # without --keep-going: as before
    assert stopping.returncode == 1 and "[1/" not in stopping.stdout
    assert "terminal states" not in stopping.stdout
    assert "search       bfs, stopped: violation" in stopping.stdout
