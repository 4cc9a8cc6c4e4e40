"""`@on_start`: the step each instance takes when it starts, counted in the initial state.

Every engine starts from the state after the start hooks: `check` and `simulate` (the kernel's
initial states carry their sends and timers), `assay run` in one process and over TCP (a fresh
instance takes its start step, which is not recorded as a trace step, so the trace replays from
the model's initial state), never again after a restart; `verify` says it does not cover the
hooks yet.  Spec: specs/first_timeout.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assay import Component, Message, Port, System, invariant, on, on_start
from assay.checker import check
from assay.errors import SpecError
from assay.kernel.kernel import Kernel
from assay.model.load import build
from assay.verifier.verify import verify
from tests.runtime_support import Children, free_ports, replay, write_deployment

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "first_timeout.py"


def cli(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


class Go(Message): ...


def test_the_initial_state_is_after_the_start_hooks() -> None:
    system, _, _ = build(SPEC)
    k = Kernel(system)
    [(s0, viol)] = k.initial_states()
    assert viol == ()
    assert len(s0[2]) == 2                              # both election timers pending
    r = check(system)
    assert r.verdict == "ok" and r.states > 1 and r.liveness == {"a_leader": "holds"}


def test_without_a_start_hook_nothing_ever_happens() -> None:
    class Idle(Component):
        out = Port()
        sent: bool = False

        @on(Go)
        def go(self, m):
            self.sent = True

    class Starter(Idle):
        @on_start
        def begin(self):
            self.out.send(Go())

    for cls, states in ((Idle, 1), (Starter, 2)):
        s = System("s")
        s.connect(s.add("a", cls).out, s.add("b", Idle).out)
        s.terminal(lambda g: True)
        assert check(s).states == states, cls


def test_a_start_hook_that_breaks_an_invariant_is_an_initial_violation() -> None:
    class Bad(Component):
        x: int = 0
        invariant(lambda self: self.x == 0)

        @on_start
        def begin(self):
            self.x = 1

    s = System("s")
    s.add("b", Bad)
    r = check(s)
    assert r.verdict == "violation" and r.violation.kind == "invariant" and r.steps == ()


def test_start_hooks_are_spec_checked() -> None:
    with pytest.raises(SpecError, match="two @on_start hooks"):
        class Twice(Component):
            @on_start
            def a(self):
                pass

            @on_start
            def b(self):
                pass

        s = System("s")
        s.add("t", Twice)
        Kernel(s)


def test_simulate_fires_the_timers_a_start_hook_set() -> None:
    r = cli("simulate", SPEC, "--runs", "20", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "ok" and doc["events"] >= 20 * 4


def test_assay_run_takes_the_start_steps_and_its_trace_replays(tmp_path: Path) -> None:
    trace = tmp_path / "run.json"
    r = cli("run", SPEC, "--json", "--trace-out", trace)
    assert r.returncode == 0, r.stderr
    final = json.loads(r.stdout)["final"]
    assert sum(final[n]["leader"] for n in ("n0", "n1")) == 1
    events = json.loads(trace.read_text())["events"]
    assert not any(e["kind"] == "start" for e in events)
    rep = cli("replay", trace, "--json")
    assert rep.returncode == 0 and json.loads(rep.stdout)["violation"] is None


def test_a_resumed_run_does_not_start_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = cli("run", SPEC, "--json", "--state-dir", state)
    assert first.returncode == 0, first.stderr
    again = cli("run", SPEC, "--json", "--state-dir", state, "--for", "1")
    assert again.returncode == 0, again.stderr
    final = json.loads(again.stdout)["final"]
    # every instance restarted (nothing here is persistent) and no start hook ran: no timer
    assert not any(final[n]["claimed"] for n in ("n0", "n1"))


def test_assay_run_deploy_starts_every_node(tmp_path: Path) -> None:
    children = Children(tmp_path)
    try:
        ports = free_ports(3)
        dep = write_deployment(tmp_path / "deploy.toml", "first_timeout.py",
                               {"a": (ports[0], ["registry"]), "b": (ports[1], ["n0"]),
                                "c": (ports[2], ["n1"])})
        trace = tmp_path / "run.json"
        r = children.run("run", "--deploy", dep, "--json", "--trace-out", trace, timeout=60)
        assert r.returncode == 0, r.stderr
        final = json.loads(r.stdout)["final"]
        assert final["registry"]["holder"] in ("n0", "n1")
        assert replay(children, trace)["violation"] is None
    finally:
        children.close()


def test_verify_says_start_hooks_are_not_covered() -> None:
    system, _, _ = build(SPEC)
    report = verify(system)
    start = [o for o in report.obligations if o.kind == "start"]
    assert [(o.component, o.verdict) for o in start] == [("Node", "unknown")]
    assert report.verdict != "proved"
