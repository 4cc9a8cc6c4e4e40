"""Guarded receives: `@on(Msg, when=lambda self, m: ...)` defers a message in every engine.

A message whose guard is false is not delivered and is not an enabled event: it stays in the
network (the kernel), is not picked (the simulator), waits in its inbox in its place (the
runtime, in one process and over TCP), and is assumed away by the handler's obligations
(`verify`).  Specs: specs/in_order_receiver.py and its unguarded twin.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assay import Component, Message, Port, System, action, on
from assay.checker import check
from assay.errors import SpecError
from assay.kernel.kernel import Kernel
from assay.model.load import build
from assay.verifier.verify import verify
from tests.runtime_support import Children, free_ports, replay, write_deployment

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
GOOD = SPECS / "in_order_receiver.py"
BAD = SPECS / "in_order_receiver_bug_no_guard.py"


def cli(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_a_deferred_message_is_in_flight_but_not_enabled() -> None:
    system, _, _ = build(GOOD)
    k = Kernel(system)
    s0 = k.initial_states()[0][0]
    (fire,) = k.enabled_events(s0)
    s1 = k.apply(s0, fire)[0]
    in_flight = sorted(e.message.seq for e in k.in_flight(s1))
    assert in_flight == [0, 1, 2]
    enabled = k.enabled_events(s1)
    assert [k.envs[e].message.seq for e in enabled] == [0]
    assert [k.envs[e].message.seq for e in k.network.deliverable(s1[1]) if k.deferred(s1, e)] \
        == [1, 2]
    steps, count = k.successors(s1)
    assert count == 1 and len(steps) == 1


@pytest.mark.parametrize("count", [2, 3, 5])
def test_the_guarded_receiver_logs_in_order_and_receives_everything(count: int) -> None:
    system, _, _ = build(GOOD, None, {"count": str(count)})
    r = check(system)
    assert r.verdict == "ok" and r.liveness == {"all_received": "holds"}
    assert r.states == count + 2                 # one order only: the guard admits no other


def test_without_the_guard_the_order_breaks() -> None:
    system, _, _ = build(BAD)
    r = check(system)
    assert r.verdict == "violation" and r.violation.name == "in_order"


def test_only_deferred_messages_left_is_a_deadlock() -> None:
    class Ping(Message):
        n: int

    class Pinger(Component):
        out = Port()
        done: bool = False

        @action(when=lambda self: not self.done)
        def go(self):
            self.done = True
            self.out.send(Ping(1))

    class Picky(Component):
        inp = Port()

        @on(Ping, when=lambda self, m: m.n > 5)
        def ping(self, m):
            pass

    s = System("picky")
    s.connect(s.add("p", Pinger).out, s.add("q", Picky).inp)
    r = check(s)
    assert r.verdict == "violation" and r.violation.kind == "deadlock"
    assert len(r.steps) == 1


def test_receive_guards_are_spec_checked() -> None:
    class M(Message): ...

    with pytest.raises(SpecError, match="guard of h"):
        class Bad(Component):
            inp = Port()

            @on(M, when=lambda self: True)
            def h(self, m):
                pass

        s = System("s")
        s.add("b", Bad)
        Kernel(s)


def test_simulate_respects_the_guard() -> None:
    good = cli("simulate", GOOD, "--runs", "30", "--json")
    assert good.returncode == 0 and json.loads(good.stdout)["verdict"] == "ok"


def test_simulate_finds_the_unguarded_twin(tmp_path: Path) -> None:
    bad = cli("simulate", BAD, "--runs", "30", "--json", "--out", tmp_path)
    assert bad.returncode == 1 and json.loads(bad.stdout)["verdict"] == "violation"


def test_verify_assumes_the_guard_of_the_handler() -> None:
    fix = ROOT / "tests" / "fixtures" / "verify"
    ok, _, _ = build(fix / "ok_receive_guard.py")
    bad, _, _ = build(fix / "bug_receive_guard.py")
    ok_r = {o.title: o.verdict for o in verify(ok).obligations if o.component == "Counter"}
    bad_r = {o.title: o.verdict for o in verify(bad).obligations if o.component == "Counter"}
    ensures = next(w for w in ok_r if "ensures" in w)
    assert ok_r[ensures] == "proved" and bad_r[ensures] == "refuted"


def test_assay_run_defers_in_one_process_and_its_trace_replays(tmp_path: Path) -> None:
    trace = tmp_path / "run.json"
    for _ in range(3):                    # the in-process scheduler is seeded: vary the seed
        r = cli("run", GOOD, "-p", "count=4", "--json", "--trace-out", trace)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["final"]["receiver"]["log"] == [0, 1, 2, 3]
        rep = cli("replay", trace, "--json")
        assert rep.returncode == 0 and json.loads(rep.stdout)["violation"] is None


def test_assay_run_deploy_defers_across_nodes(tmp_path: Path) -> None:
    children = Children(tmp_path)
    try:
        ports = free_ports(2)
        dep = write_deployment(tmp_path / "deploy.toml", "in_order_receiver.py",
                               {"a": (ports[0], ["sender"]), "b": (ports[1], ["receiver"])},
                               params={"count": 4})
        trace = tmp_path / "run.json"
        r = children.run("run", "--deploy", dep, "--json", "--trace-out", trace, timeout=60)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["final"]["receiver"]["log"] == [0, 1, 2, 3]
        assert replay(children, trace)["violation"] is None
    finally:
        children.close()
