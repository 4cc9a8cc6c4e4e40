"""Elastic pools: `s.pool(..., min=k)` (the first k slots live from the start, in the owner's
live field) and a worker retiring itself (`self.retire()`: dormant at the end of its step, the
owner told with `Retired`), in every engine: check (exact counts, the bug twin found),
simulate, replay, run in one process and under --deploy over loopback."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from runtime_support import free_ports, write_deployment

import assay
from assay.cli import main as cli
from assay.errors import SpecError
from assay.kernel import Kernel
from assay.kernel.trace import Trace, replay_trace
from assay.model.load import build, load_module
from assay.model.types import Peer

ROOT = Path(__file__).resolve().parent.parent
SELF = ROOT / "specs" / "elastic_self_retire.py"
SELF_BUG = ROOT / "specs" / "elastic_self_retire_bug_early.py"
POOL = ROOT / "specs" / "elastic_pool.py"


def test_check_explores_a_pool_with_a_live_slot_and_workers_that_retire_themselves():
    r = assay.check(SELF)
    assert r.verdict == "ok" and (r.states, r.transitions) == (5192, 14906)
    assert r.liveness == {"all_done": "holds"}
    small = assay.check(SELF, jobs="2", size="1")
    assert small.verdict == "ok" and (small.states, small.transitions) == (76, 124)


def test_check_finds_the_worker_that_retires_with_its_job_in_hand():
    r = assay.check(SELF_BUG)
    assert r.verdict == "violation" and r.violation.name == "no_job_lost"
    assert len(r.steps) == 5
    last = r.trace.events[-1]
    assert last["kind"] == "deliver" and last["to"] == "worker0"
    # the counterexample replays, and the slot is dormant after it (its fields read None)
    done = replay_trace(r.trace, "bug")
    assert done.violation is not None and done.violation.name == "no_job_lost"


def test_the_first_min_slots_start_live_and_in_the_owners_live_field():
    system, _, _ = build(SELF, None, {})
    k = Kernel(system)
    (state, _), = k.initial_states()
    assert k.local_values(state, "dispatcher")["live"] == frozenset({Peer("worker0")})
    assert k.local_initial("worker0") != k.dormant[k.index["worker0"]]
    assert k.local_initial("worker1") == k.dormant[k.index["worker1"]]
    # worker0's start hook ran in the initial state: its Ready is in flight
    assert [type(e.message).__name__ for e in k.in_flight(state)] == ["Ready"]
    # min=0 (the default) keeps every slot dormant, as before
    assert assay.check(POOL).states == 2088


def test_simulate_draws_self_retires_and_finds_the_bug():
    good = assay.simulate(SELF, runs=20, seed=1)
    assert good.ok and good.events > 0, good.text()
    bad = assay.simulate(SELF_BUG, runs=20, seed=1)
    assert not bad.ok and {f.violation["name"] for f in bad.failures} == {"no_job_lost"}


def test_run_retires_workers_for_real_and_the_trace_replays(tmp_path):
    trace = tmp_path / "run.json"
    r = CliRunner().invoke(cli, ["run", str(SELF), "--json", "--trace-out", str(trace)])
    assert r.exit_code == 0, r.output
    final = json.loads(r.stdout)["final"]
    assert sorted(final["dispatcher"]["done"]) == [0, 1, 2]
    assert final["dispatcher"]["live"] == []               # every worker retired itself
    events = json.loads(trace.read_text())["events"]
    assert sum(1 for e in events if e.get("message", {}).get("type") == "Retired") == 3
    done = replay_trace(Trace.read(trace), trace)
    assert done.violation is None


def test_run_deploy_places_the_slots_on_another_node(children, tmp_path):
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", "elastic_self_retire.py",
                           {"a": (pa, ["client", "dispatcher"]),
                            "b": (pb, ["worker0", "worker1"])})
    trace = tmp_path / "run.json"
    r = children.run("run", "--deploy", dep, "--json", "--trace-out", trace, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert sorted(doc["final"]["dispatcher"]["done"]) == [0, 1, 2]
    assert doc["final"]["dispatcher"]["live"] == [] and doc["violations"] == []
    r = children.run("replay", trace, "--json", timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["violation"] is None, r.stdout[-2000:]


def _pool_spec(tmp_path: Path, body: str) -> Path:
    src = (SELF.read_text().split("def system(")[0]
           + "def system() -> System:\n"
           "    s = System('p', network='unordered')\n"
           "    d = s.add('dispatcher', Dispatcher)\n"
           f"    {body}\n"
           "    return s\n")
    path = tmp_path / "spec.py"
    path.write_text(src)
    return path


@pytest.mark.parametrize("min_", ["3", "-1", "True", "1.5"])
def test_a_min_that_is_not_0_to_size_is_a_spec_error_at_its_line(tmp_path, min_):
    path = _pool_spec(tmp_path, "s.pool('worker', Worker, size=2, owner=d.workers, "
                                f"port='boss', live='live', min={min_})")
    with pytest.raises(SpecError, match=r"min=.*whole number from 0 to size \(2\)") as e:
        build(path, None, {})
    assert e.value.location is not None and e.value.location.line == \
        path.read_text().count("\n") - 1


def test_retire_without_a_slot_outside_a_pool_is_a_spec_error(tmp_path):
    src = (SELF.read_text().replace("        self.spawn(\"worker\")\n",
                                    "        self.retire()\n"))
    path = tmp_path / "spec.py"
    path.write_text(src)
    with pytest.raises(SpecError, match="calls retire\\(\\) without a slot, and dispatcher "
                                        "is no slot of a pool"):
        assay.check(path)


def test_a_pool_with_min_inside_a_composite_starts_its_slot_live():
    outer = assay.System("outer", network="unordered", fairness="weak")
    outer.add("part", load_module(SELF).system, jobs=2, size=1)
    alone = assay.check(SELF, jobs="2", size="1")
    inside = assay.check(outer)
    assert inside.verdict == alone.verdict == "ok"
    assert (inside.states, inside.transitions) == (alone.states, alone.transitions) == (76, 124)
