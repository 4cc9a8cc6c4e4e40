"""specs/primary_backup.py and its twin, used as a user would, through the CLI, in every engine:
verify, check (with and without a crash), replay, simulate (found and shrunk to check's length)
and `run --deploy` on loopback with a replica's node killed -9 and restarted by the supervisor."""
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from runtime_support import (
    START,
    Children,
    assay_argv,
    child_node,
    fields,
    free_ports,
    poll,
    replay,
)
from runtime_support import write_deployment as deployment

from assay import Component, Message, Peer, Port, System, on
from assay.checker import check
from assay.kernel import Kernel
from assay.kernel.trace import Trace, find_initial, replay_checked

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "primary_backup.py"
BUG = ROOT / "specs" / "primary_backup_bug_early_reply.py"


@pytest.fixture
def children(tmp_path):
    c = Children(tmp_path / "proc")
    yield c
    c.close()


def _json(children: Children, *args: str | Path, code: int | None = None) -> dict:
    r = children.run(*args, "--json", timeout=120)
    assert code is None or r.returncode == code, (r.returncode, r.stdout[-2000:],
                                                  r.stderr[-2000:])
    return json.loads(r.stdout)


def test_verify_proves_or_says_why_and_refutes_nothing(children):
    doc = _json(children, "verify", SPEC, code=3)             # 3: unknowns, no refutation
    assert doc["counts"]["refuted"] == 0 and doc["counts"]["proved"] >= 40
    for ob in doc["obligations"]:
        if ob["verdict"] == "unknown":                         # each unknown gives its reason
            assert ob.get("detail") or ob.get("reason"), ob


def test_check_the_spec_holds_with_and_without_a_crash(children):
    doc = _json(children, "check", SPEC, code=0)
    assert doc["verdict"] == "ok" and doc["states"] == 19_623
    assert doc["liveness"] == {"every_write_acknowledged": "holds"}
    doc = _json(children, "check", SPEC, "-p", "replicas=2", "-p", "writes=1",
                "--faults", "crash=1", code=0)
    assert doc["verdict"] == "ok" and doc["states"] == 3_672


@pytest.mark.parametrize("faults", [(), ("--faults", "crash=1")], ids=["no-faults", "crash"])
def test_check_finds_the_twins_lost_write_and_replay_reproduces_it(children, tmp_path, faults):
    trace = tmp_path / "cex.json"
    doc = _json(children, "check", BUG, *faults, "--trace-out", trace, code=1)
    assert doc["violation"]["name"] == "acknowledged_writes_survive"
    assert doc["depth"] == 6                                   # the shortest counterexample
    r = children.run("replay", trace)
    assert r.returncode == 1 and "the recorded violation is reproduced" in r.stdout, r.stdout


@pytest.mark.parametrize("how", [("--scheduler", "coverage"),
                                 ("--faults", "crash=0.02,restart=0.3")],
                         ids=["coverage", "crashes"])
def test_simulate_finds_the_twins_bug_and_shrinks_it_to_checks_length(children, tmp_path, how):
    # the uniform scheduler rarely lets the master's Tick overtake a Pong (a step is one
    # tick, the timer 10): a campaign finds the lost write by coverage or by crashing
    doc = _json(children, "simulate", BUG, "--runs", "100", "--seed", "1", *how,
                "--out", tmp_path / "traces", "-q", code=1)
    assert doc["violations"], doc
    for v in doc["violations"]:
        assert v["name"] == "acknowledged_writes_survive"
        assert v["shrunk_events"] == 6, v                      # check's shortest
    r = children.run("replay", doc["violations"][0]["trace_file"])
    assert r.returncode == 1 and "the recorded violation is reproduced" in r.stdout


def test_an_instance_named_by_a_peer_gets_a_plain_name():
    # the spec names its replicas Peer("r0"), ...: a check trace of such a system did not
    # replay (an event's "to" was the Peer, not a str: "not enabled in this state")
    class Hi(Message):
        pass

    class A(Component):
        out = Port()

        @on(Hi)
        def hi(self, m):
            pass

    def system() -> System:
        s = System("peer_names")
        a, b = s.add(Peer("a"), A), s.add(Peer("b"), A)
        s.connect(a.out, b.out)
        return s

    s = system()
    assert all(type(n) is str for n in s.instances)


def test_run_deploy_a_killed_primary_restarts_and_every_write_survives(children, tmp_path):
    ports = free_ports(4)
    nodes = {"n0": (ports[0], ["r0"]), "n1": (ports[1], ["r1"]), "n2": (ports[2], ["r2"]),
             "front": (ports[3], ["master", "c0"])}
    dep = deployment(tmp_path / "deploy.toml", SPEC, nodes, params={"writes": 40})
    trace = tmp_path / "run.json"
    run = children.popen(assay_argv("run", "--deploy", dep, "--json", "--trace-out", trace,
                                    "--state-dir", tmp_path / "state", "--durability",
                                    "process", "--for", "30"), capture=True)
    poll(lambda: fields(ports[3], "c0")["acked"] >= 3, START, "3 writes acknowledged",
         proc=run)
    primary = fields(ports[3], "master")["primary"]           # r0, or r1 after a view change
    node = next(n for n, (_, instances) in nodes.items() if primary in instances)
    pid = child_node(run.pid, node)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)                      # the supervisor restarts it
    try:
        out, _ = run.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        children.kill(run)
        pytest.fail("assay run did not finish")
    doc = json.loads(out)
    assert run.returncode == 0 and doc["violation_count"] == 0, doc
    if doc["restarts"][node] != 1:
        pytest.skip("the run ended before the kill was noticed")
    final = doc["final"]
    assert final["c0"]["acked"] == 40, final
    now = final["master"]["primary"]
    assert final[now]["log"][:40] == list(range(1, 41)), final  # on the current primary
    replay(children, trace)




def test_check_of_a_system_named_by_peers_replays(tmp_path):
    spec = str(BUG)
    from assay.model.load import build

    res = check(build(spec, None, {})[0])
    assert res.violation is not None
    res.trace.write(tmp_path / "cex.json")
    trace = Trace.read(tmp_path / "cex.json")
    k = Kernel(build(spec, None, {})[0])
    out = replay_checked(k, trace.events, find_initial(k, trace.initial))
    assert out.violation is not None and len(out.steps) == 6


def test_check_progress_says_when_it_decides_liveness():
    # after the safety search, the liveness graph is built again (a large part of the time
    # with `--faults crash=1`): its progress lines repeated the search's last counts, as if
    # the search were stuck
    env = dict(os.environ, ASSAY_PROGRESS_INTERVAL="0.001")
    r = subprocess.run(assay_argv("check", SPEC), env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stderr.splitlines()
    live = [x for x in lines if x.startswith("checking liveness: ")]
    assert live, r.stderr[-2000:]
    assert "safety search done (" in live[-1] and "still to expand" in live[-1]
    first = lines.index(live[0])
    assert all(x.startswith("checking liveness: ") for x in lines[first:] if x.strip())
