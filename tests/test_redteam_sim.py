"""Red team of `assay simulate`, shrinking and `assay replay`: a verdict is a promise.

Replay of a trace that was cut, edited or written under other faults says exactly what it
did: never "✓" or "reproduced" for a failing step it did not run, a fault the run that wrote
the trace could not inject, or a violation met at another step.  `simulate` says when its runs
were cut at the step bound.  The specs are written inline (tmp_path); the commands run as a user
runs them (click's runner in this process, from the spec's directory).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

REGISTER = '''
from assay import Component, Message, Port, System, action, on, persistent


class Write(Message):
    value: int


class WriteAck(Message):
    value: int


class Server(Component):
    clients = Port(many=True)
    value: int = 0                         # lost on a crash: the bug

    @on(Write)
    def write(self, m):
        self.value = max(self.value, m.value)
        self.clients.send(WriteAck(m.value), to=m.sender)


class Client(Component):
    server = Port()
    writes: int = 2
    acked: int = persistent(0)
    pending: bool = False

    @action(when=lambda self: not self.pending and self.acked < self.writes)
    def write(self):
        self.pending = True
        self.server.send(Write(self.acked + 1))

    @on(WriteAck)
    def ack(self, m):
        self.pending = False
        self.acked = max(self.acked, m.value)


def system(writes: int = 2) -> System:
    s = System("register", network="unordered")
    server = s.add("server", Server)
    s.connect(s.add("client", Client, writes=writes).server, server.clients)

    @s.always
    def acknowledged_writes_survive(g):
        return "server" in g.crashed() or g["server"].value >= g["client"].acked

    @s.terminal
    def done(g):
        return g["client"].acked == writes

    return s
'''


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "register.py").write_text(REGISTER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assay(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`assay ARGS` in this process (click's runner), from the current directory."""
    from click.testing import CliRunner

    from assay.cli import main

    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def check_trace(work: Path) -> dict[str, Any]:
    """`check --faults crash=1`'s counterexample: write, ack, write, server crashes and
    restarts with its value lost (5 steps, the property fails at step 5)."""
    r = assay("check", "register.py", "--faults", "crash=1", "--trace-out", "t.json")
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads((work / "t.json").read_text())
    assert [e["kind"] for e in doc["events"]][-2:] == ["crash", "restart"]
    assert doc["verdict"]["step"] == len(doc["events"]) == 5
    return doc


def replay_of(work: Path, doc: dict[str, Any], *options: str
              ) -> subprocess.CompletedProcess[str]:
    (work / "edited.json").write_text(json.dumps(doc))
    return assay("replay", "edited.json", *options)


def assert_refused(r: subprocess.CompletedProcess[str], *says: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr
    assert "✓" not in r.stdout + r.stderr
    assert "reproduced" not in r.stdout
    for s in says:
        assert s in flat(r.stderr), r.stderr


# --- replay: cut traces ---------------------------------------------------------------------

def test_a_trace_cut_at_a_step_boundary_before_its_failing_step_is_refused(
        work: Path, check_trace: dict[str, Any]) -> None:
    # it replayed the 4 steps left and printed "✓ the run ends without a violation", exit 0:
    # the failing step was missing, not the failure gone
    for keep in (4, 1, 0):
        doc = {**check_trace, "events": check_trace["events"][:keep]}
        assert_refused(replay_of(work, doc),
                       "the trace is cut short: it records its violation (property "
                       f"acknowledged_writes_survive) at step 5, and has {keep} events",
                       "the failing step is missing")


def test_a_trace_cut_mid_file_is_refused(work: Path, check_trace: dict[str, Any]) -> None:
    # held when probed: not JSON
    text = (work / "t.json").read_text()
    for cut in (len(text) // 2, len(text) - 3):
        (work / "cut.json").write_text(text[:cut])
        assert_refused(assay("replay", "cut.json"), "is not JSON")


def test_a_whole_trace_still_reproduces(work: Path, check_trace: dict[str, Any]) -> None:
    r = assay("replay", "t.json")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the recorded violation is reproduced" in r.stdout
    doc = json.loads(assay("replay", "t.json", "--json").stdout)
    assert (doc["reproduced"], doc["not_replayed"], doc["steps"]) == (True, 0, 5)


# --- replay: events past the violation ------------------------------------------------------

def test_events_added_after_the_recorded_violation_are_refused(
        work: Path, check_trace: dict[str, Any]) -> None:
    # the replay stopped at the violation (step 5) and said "the recorded violation is
    # reproduced", exit 1: step 6 was never run
    doc = {**check_trace, "events": [*check_trace["events"], check_trace["events"][0]]}
    assert_refused(replay_of(work, doc), "the trace records its violation (property "
                   "acknowledged_writes_survive) at step 5, but goes on to step 6",
                   "the trace was edited")


def test_a_violation_met_before_its_recorded_step_is_not_reproduced(
        work: Path, check_trace: dict[str, Any]) -> None:
    # the same edit with the verdict moved to step 6: the run breaks the property at step 5
    # and stops there; that is not the run the trace recorded (step 6 is never run)
    doc = {**check_trace, "events": [*check_trace["events"], check_trace["events"][0]],
           "verdict": {**check_trace["verdict"], "step": 6}}
    r = replay_of(work, doc)
    assert r.returncode == 1, r.stdout + r.stderr
    out = flat(r.stdout)
    assert "reproduced" not in out
    assert "note: the replay stops at this violation, at step 5: the trace's step 6 is not " \
        "replayed" in out
    assert "the trace recorded this violation at step 6, the replay meets it at step 5: not " \
        "the recorded run" in out
    j = json.loads(replay_of(work, doc, "--json").stdout)
    assert (j["reproduced"], j["steps"], j["not_replayed"]) == (False, 5, 1)


# --- replay: faults the run could not inject ------------------------------------------------

@pytest.mark.parametrize("faults, says", [
    ({"crash": 0}, "it was checked without crash faults"),
    (None, "it was checked without crash faults"),
    ({"drop": 1}, "it was checked without crash faults"),
])
def test_a_crash_beyond_a_check_traces_fault_budget_is_refused_naming_the_step(
        work: Path, check_trace: dict[str, Any], faults: Any, says: str) -> None:
    # replay lets a fault occur wherever the trace has one: a trace whose "faults" was
    # edited to a smaller budget replayed as "the recorded violation is reproduced"
    assert_refused(replay_of(work, {**check_trace, "faults": faults}),
                   "step 4: crash 'server': fault 1 of kind crash, which the check run that "
                   f"wrote the trace could not inject: {says}")


def test_a_second_crash_beyond_a_budget_of_one_is_refused(
        work: Path, check_trace: dict[str, Any]) -> None:
    ev = check_trace["events"]
    # write, crash, restart, then the counterexample: two crashes under crash=1
    doc = {**check_trace, "events": [ev[3], ev[4], *ev], "verdict": {
        **check_trace["verdict"], "step": 7}}
    for e in doc["events"][:2]:
        e.pop("changes", None)
    assert_refused(replay_of(work, doc), "step 6: crash 'server': fault 2 of kind crash",
                   "its fault budget is crash=1")
    ok = replay_of(work, {**doc, "faults": {"crash": 2}})
    assert ok.returncode == 1 and "the recorded violation is reproduced" in ok.stdout, \
        ok.stdout + ok.stderr


def test_a_fault_of_a_kind_a_simulate_trace_never_injects_is_refused(work: Path) -> None:
    r = assay("simulate", "register.py", "--runs", "40", "--steps", "60", "--faults",
              "crash=0.05", "--jobs", "1", "-q", "--out", "out")
    assert r.returncode == 1, r.stdout + r.stderr
    path = sorted((work / "out").glob("*.json"))[0]
    doc = json.loads(path.read_text())
    step = next(i for i, e in enumerate(doc["events"], 1) if e["kind"] == "crash")
    assert assay("replay", path).returncode == 1
    doc["faults"]["crash"] = 0.0
    assert_refused(replay_of(work, doc), f"step {step}: crash 'server': fault 1 of kind "
                   "crash, which the simulate run that wrote the trace could not inject: its "
                   "fault rates inject none (crash=0)")


def test_a_hand_written_trace_that_names_no_engine_is_not_held_to_a_budget(
        work: Path, check_trace: dict[str, Any]) -> None:
    doc = {k: v for k, v in check_trace.items() if k not in ("engine", "faults")}
    r = replay_of(work, doc)
    assert r.returncode == 1 and "the recorded violation is reproduced" in r.stdout, \
        r.stdout + r.stderr


# --- simulate: what the summary says -------------------------------------------------------

def test_runs_cut_at_the_step_bound_are_said_to_be(work: Path) -> None:
    # "✓ no violation in 20 runs" when every run was cut after 2 events, with the bug at 5
    r = assay("simulate", "register.py", "--runs", "20", "--steps", "2", "--faults",
              "crash=0.05", "--jobs", "1", "-q", "--out", "out")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: 20 of the 20 runs were cut at the step bound (--steps 2) before they " \
        "ended: nothing past step 2 was run" in flat(r.stdout)
    whole = assay("simulate", "register.py", "--runs", "5", "--jobs", "1", "-q",
                  "--out", "out")
    assert whole.returncode == 0 and "step bound" not in whole.stdout, whole.stdout


# --- shrinking: a failing run that does not fail again --------------------------------------

def test_a_failing_run_that_fails_otherwise_when_run_again_to_shrink_it_is_the_specs_fault(
        work: Path) -> None:
    # a shrink worker runs a failing run again from its seed; when a spec's outcome depends
    # on its process (os.getpid(), the clock), the run did not fail there, and
    # `assert r.violation is not None, "a run changed"` ended simulate in an internal error
    # (exit 70, a traceback of assay).  Here: the reports of runs of this process, as a
    # worker would receive them, with the seed or the violation of another run
    from dataclasses import replace

    from assay.errors import SpecError
    from assay.model.load import build
    from assay.simulator import Options, campaign
    from assay.simulator.campaign import kernel_for, shrink_report
    from assay.simulator.rates import FaultRates

    opts = Options(steps=60, rates=FaultRates.parse("crash=0.05"), shrink=False)
    c = campaign("register.py", None, {}, seed=1, runs=40, opts=opts, jobs=1)
    bad = c.failures[0]
    good = next(r for r in c.reports if r.violation is None)
    system, _, _ = build("register.py")
    kernel = kernel_for(system, opts.rates)
    assert shrink_report(kernel, bad, opts).events          # the run itself shrinks
    for report, then in (
            (replace(bad, seed=good.seed), "it ended without a violation"),
            (replace(bad, violation={**(bad.violation or {}), "name": "other"}),
             "it broke property acknowledged_writes_survive at step")):
        with pytest.raises(SpecError) as e:
            shrink_report(kernel, report, opts)
        said = flat(e.value.render())
        assert f"run {bad.index} (seed {report.seed}) broke " in said
        assert f"run again from its seed in another process, to shrink it, {then}" in said
        assert "depends on something outside the state and the event" in said


PER_PROCESS = '''
import os
from assay import Component, Message, Port, System, action, on


class Ping(Message):
    pass


class A(Component):
    out = Port()
    sent: int = 0

    @action(when=lambda self: self.sent < 3)
    def go(self):
        self.sent += 1
        self.out.send(Ping())


class B(Component):
    inp = Port(many=True)
    got: int = 0
    bad: bool = False

    @on(Ping)
    def ping(self, m):
        self.got += 1
        self.bad = os.getpid() % 2 == 0         # the process, not the state


def system() -> System:
    s = System("per_process", network="unordered")
    b = s.add("b", B)
    s.connect(s.add("a", A).out, b.inp)

    @s.always
    def fine(g):
        return not g["b"].bad

    @s.terminal
    def done(g):
        return g["a"].sent == 3 and g["b"].got == 3

    return s
'''


def test_a_spec_whose_runs_depend_on_the_process_never_ends_simulate_in_a_traceback(
        work: Path) -> None:
    import os
    import sys

    (work / "per_process.py").write_text(PER_PROCESS)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-m", "assay.cli", "simulate", "per_process.py",
                        "--runs", "40", "--jobs", "2", "-q", "--out", "out"], cwd=work,
                       env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[-2000:]
    # (which worker runs and which shrinks what is the pool's choice: exit 1 when each
    # failing run was shrunk where it was found, 0 when none ran where the process id is even)
    assert r.returncode in (0, 1, 2), (r.returncode, r.stdout, r.stderr)
    if r.returncode == 2:
        assert "run again from its seed in another process, to shrink it" in flat(r.stderr)


IDLE = '''
from assay import Component, Port, System, action


class A(Component):
    out = Port()
    sent: int = 0

    @action(when=lambda self: self.sent > 5)      # never enabled
    def go(self):
        self.sent += 1


def system() -> System:
    s = System("idle")
    s.add("a", A)

    @s.always
    def few(g):
        return g["a"].sent < 3

    @s.terminal
    def done(g):
        return True

    return s
'''


def test_runs_that_take_no_step_are_said_to_be(work: Path) -> None:
    # "✓ no violation in 10 runs", 0 events, and no word that nothing was enabled (check
    # warns "0 transitions: is anything enabled?")
    (work / "idle.py").write_text(IDLE)
    r = assay("simulate", "idle.py", "--runs", "10", "--jobs", "1", "-q", "--out", "out")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: no run took a step: nothing is enabled in the initial states the runs " \
        "started from, so nothing beyond them was simulated" in flat(r.stdout)
    busy = assay("simulate", "register.py", "--runs", "5", "--jobs", "1", "-q", "--out", "out")
    assert busy.returncode == 0 and "no run took a step" not in busy.stdout


@pytest.mark.parametrize("option, value, says", [
    ("--pct-depth", "5", "--pct-depth is for --scheduler pct only"),
    ("--database", "db", "--database is for --engine hypothesis only"),
])
def test_an_option_of_another_scheduler_or_engine_is_refused_not_ignored(
        work: Path, option: str, value: str, says: str) -> None:
    # `--pct-depth 5` ran uniform random runs, `--database db` kept nothing there: silently
    r = assay("simulate", "register.py", option, value, "--runs", "2", "--jobs", "1",
              "--out", "out")
    assert_refused(r, says)
    assert not (work / "out").exists() and not (work / "db").exists()


def test_a_keyboard_interrupt_raised_by_a_handler_in_a_worker_is_the_specs_fault(
        work: Path) -> None:
    # a worker ignores SIGINT, so its KeyboardInterrupt came from the spec; handed back to
    # the parent it read as the user's Ctrl-C: "? interrupted (Ctrl-C) after 0 of 5 runs",
    # exit 130.  (In one process, --jobs 1, it cannot be told from Ctrl-C: it stays one.)
    import os
    import sys

    (work / "interrupts.py").write_text(PER_PROCESS.replace(
        "self.bad = os.getpid() % 2 == 0         # the process, not the state",
        "if self.got == 2:\n            raise KeyboardInterrupt"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-m", "assay.cli", "simulate", "interrupts.py",
                        "--runs", "6", "--jobs", "2", "-q", "--out", "out"], cwd=work,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "interrupts.py:29: error: code in the spec raised KeyboardInterrupt (a " \
        "BaseException, not an Exception)" in flat(r.stderr)
    assert "interrupted" not in r.stdout + r.stderr and "Traceback" not in r.stderr


SPIN = '''
from assay import Component, System, action


class A(Component):
    x: int = 0
    done: bool = False

    @action()
    def toggle(self):
        self.x = 1 - self.x

    @action(when=lambda self: self.x == 5)          # never enabled
    def finish(self):
        self.done = True


def system() -> System:
    s = System("spin")
    s.add("a", A)

    @s.eventually
    def finished(g):
        return g["a"].done

    return s
'''


@pytest.mark.parametrize("fairness, says", [("none", "no"), ("weak", "weak")])
def test_a_replayed_lasso_says_under_which_fairness_it_is_fair(
        work: Path, fairness: str, says: str) -> None:
    # "the cycle closes, is fair": under the fairness the trace records (a check option),
    # which the reader could not see
    (work / "spin.py").write_text(SPIN)
    assert assay("check", "spin.py", "--fairness", fairness, "--trace-out",
                 "l.json").returncode == 1
    r = assay("replay", "l.json")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"the recorded violation is reproduced: the cycle closes, is fair (under {says} " \
        "fairness, as the trace records), and the property fails on it" in flat(r.stdout)


COUNTER = '''
from assay import Component, Message, Port, System, action, on


class Ping(Message):
    pass


class A(Component):
    out = Port()
    sent: int = 0                         # volatile: a crash forgets what was sent

    @action(when=lambda self: self.sent < 2)
    def go(self):
        self.sent += 1
        self.out.send(Ping())


class B(Component):
    inp = Port(many=True)
    got: int = 0

    @on(Ping)
    def ping(self, m):
        self.got += 1


def system() -> System:
    s = System("counter", network="unordered")
    b = s.add("b", B)
    s.connect(s.add("a", A).out, b.inp)

    @s.always
    def no_more_than_sent(g):
        return "a" in g.crashed() or g["b"].got <= g["a"].sent

    @s.terminal
    def done(g):
        return g["a"].sent == 2 and g["b"].got == 2

    return s
'''


def test_the_hypothesis_engine_shrinks_with_only_the_faults_the_search_injects(
        work: Path) -> None:
    # its final shrink offered every fault the kernel's unlimited budget has: the run found
    # under crash=0.2 was written as [go, go, deliver, drop], a drop the search never makes
    # (and that replay, knowing the trace's rates, refuses)
    (work / "counter.py").write_text(COUNTER)
    r = assay("simulate", "counter.py", "--engine", "hypothesis", "--faults", "crash=0.2",
              "--runs", "300", "--database", "none", "-q", "--out", "out")
    assert r.returncode == 1, r.stdout + r.stderr
    (path,) = (work / "out").glob("*.json")
    kinds = {e["kind"] for e in json.loads(path.read_text())["events"]}
    assert kinds <= {"action", "deliver", "crash", "restart"}, kinds
    again = assay("replay", path)
    assert again.returncode == 1 and "the recorded violation is reproduced" in again.stdout, \
        again.stdout + again.stderr
