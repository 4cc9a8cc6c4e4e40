"""The TCP runtime end to end: real `assay node` processes on 127.0.0.1, started by
`assay run --deploy` or one by one, talking over authenticated links.

Every deployment file is written per test into its tmp_path, with ports found free by binding
port 0, so tests may run in parallel.  Every child process is started in its own process group
and killed with its group (the nodes `assay run` starts included) when the test ends, passed or
failed; every wait is bounded.

The helpers (deployments, child processes, waiting, replay) are in tests/runtime_support.py.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_support import (
    HOST,
    SECRET,
    SPECS,
    START,
    Children,
    assay_argv,
    child_node,
    ctl,
    fields,
    free_ports,
    group_alive,
    poll,
    replay,
    wait_for_log,
    write_deployment,
    write_locked,
)

from assay.runtime.wire import (
    AuthError,
    WireError,
    authenticate,
    encode_frame,
)

pytestmark = pytest.mark.e2e


# --- deployments ----------------------------------------------------------------------------


# --- processes --------------------------------------------------------------------------------


# --- talking to nodes -------------------------------------------------------------------------


def run_deploy(children: Children, dep: Path, *args: str | Path,
               timeout: float = 40.0) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    r = children.run("run", "--deploy", dep, "--json", *args, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    try:
        return r, json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"assay run printed no JSON (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")


# --- 1. whole deployments: consistent, conformant ---------------------------------------------

@pytest.mark.parametrize("placement", [
    pytest.param({"n1": ["tm"], "n2": ["rm0", "rm1"]}, id="tm|rm0+rm1"),
    pytest.param({"n1": ["tm"], "n2": ["rm0"], "n3": ["rm1"]}, id="tm|rm0|rm1"),
])
def test_two_phase_commit_deployed_decides_consistently_and_its_trace_replays(
        children, tmp_path, placement):
    ports = free_ports(len(placement))
    dep = write_deployment(tmp_path / "deploy.toml", "two_phase_commit.py",
                           {n: (p, insts) for (n, insts), p in zip(placement.items(), ports)},
                           params={"rm_count": 2})
    trace = tmp_path / "run.json"
    r, doc = run_deploy(children, dep, "--trace-out", trace)
    assert r.returncode == 0, r.stderr
    assert doc["ended"] == "quiescent" and doc["violations"] == []
    assert doc["restarts"] == dict.fromkeys(placement, 0)
    final = doc["final"]
    assert set(final) == {"tm", "rm0", "rm1"}
    decision = final["tm"]["state"]
    assert decision in ("COMMITTED", "ABORTED")
    assert final["rm0"]["state"] == final["rm1"]["state"] == decision, final
    # the nodes' Lamport-ordered steps, merged, are a run the model allows
    done = replay(children, trace)
    assert len(done["events"]) == doc["steps"] > 0


@pytest.mark.parametrize("accounts", [2, 3])
def test_bank_transfer_one_account_per_node_conserves_money_at_every_step(children, tmp_path,
                                                                          accounts):
    # the accounts never stop transferring: the run ends on time, with money in flight, so
    # `final` alone cannot show conservation; the merged trace can: replay checks the
    # model's `money_is_conserved` (balances + money in flight == 8) and `no_overdraft`
    # after every step the deployment took
    ports = free_ports(accounts)
    dep = write_deployment(tmp_path / "deploy.toml", "bank_transfer.py",
                           {f"n{i}": (p, [f"acct{i}"]) for i, p in enumerate(ports)},
                           params={"accounts": accounts})
    trace = tmp_path / "run.json"
    # (2 s counted from when every node answers: a loaded machine's slow start, which once
    # ate a 2 s window before every account received a transfer, does not count)
    r, doc = run_deploy(children, dep, "--for", "2", "--trace-out", trace)
    assert r.returncode == 0, r.stderr
    assert doc["ended"] == "time" and doc["violations"] == []
    assert doc["steps"] > 10
    assert all(f["balance"] >= 0 for f in doc["final"].values()), doc["final"]
    done = replay(children, trace)
    assert len(done["events"]) == doc["steps"]
    # money did cross the wire both ways
    delivered = {e["to"] for e in done["events"] if e["kind"] == "deliver"}
    assert delivered == {f"acct{i}" for i in range(accounts)}


def test_run_for_counts_from_when_every_node_answers(children, tmp_path):
    # each node takes 3 s to start (its spec sleeps on import): a 1 s window counted from
    # the launch ended before either answered (`final` all null, exit 0); counted from when
    # both answer, the client has written and the server acknowledged by the end
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml",
                           SPECS.parent / "tests" / "fixtures" / "slow_start_register.py",
                           {"a": (pa, ["server"]), "b": (pb, ["client"])},
                           params={"writes": 1_000_000_000})
    children.env["ASSAY_TEST_SLOW_START"] = "3"
    t0 = time.monotonic()
    r, doc = run_deploy(children, dep, "--for", "1")
    assert r.returncode == 0, r.stderr
    assert doc["ended"] == "time" and doc["violations"] == []
    assert time.monotonic() - t0 >= 4
    final = doc["final"]
    assert final["client"] is not None and final["server"] is not None, final
    assert final["client"]["acked"] > 0 and final["server"]["value"] > 0   # (asked apart)


def test_register_on_two_nodes_runs_to_completion(children, tmp_path):
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", "register.py",
                           {"a": (pa, ["server"]), "b": (pb, ["client"])})
    trace = tmp_path / "run.json"
    r, doc = run_deploy(children, dep, "--trace-out", trace,
                        "--state-dir", tmp_path / "state")
    assert r.returncode == 0, r.stderr
    assert doc["ended"] == "quiescent" and doc["violations"] == []
    assert doc["final"] == {"server": {"value": 2},
                            "client": {"acked": 2, "pending": False, "writes": 2}}
    assert (tmp_path / "state" / "a.sqlite").exists()
    replay(children, trace)


# --- 2. deployments refused before anything starts ---------------------------------------------

def _two_nodes(ports: list[int], n1: list[str], n2: list[str]) -> dict:
    return {"n1": (ports[0], n1), "n2": (ports[1], n2)}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# case -> (how to write it, what stderr must say; {port} is the deployment's first port)
INVALID: dict[str, tuple[Callable[[Path, list[int]], Path], list[str]]] = {
    "apart": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", _two_nodes(ports, ["tm", "rm0"], ["rm1"]),
        params={"rm_count": 2}, constraints={"apart": [["tm", "rm0"]]}),
        ["apart", "'tm'", "'rm0'", "'n1'"]),
    "together": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", _two_nodes(ports, ["tm", "rm0"], ["rm1"]),
        params={"rm_count": 2}, constraints={"together": [["rm0", "rm1"]]}),
        ["together", "rm0", "rm1", "n1", "n2"]),
    "unknown-instance": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", _two_nodes(ports, ["tm"], ["rm0", "rm1", "rm7"]),
        params={"rm_count": 2}),
        ["'rm7'", "does not have"]),
    "unplaced-instance": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", _two_nodes(ports, ["tm"], ["rm0"]), params={"rm_count": 2}),
        ["'rm1'", "not placed"]),
    "no-secret": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", _two_nodes(ports, ["tm"], ["rm0", "rm1"]),
        params={"rm_count": 2}, secret=None),
        ["secret"]),
    "short-secret": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", _two_nodes(ports, ["tm"], ["rm0", "rm1"]),
        params={"rm_count": 2}, secret="short"),
        ["secret", "16"]),
    "node-named-control": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", {"control": (ports[0], ["tm"]), "n2": (ports[1], ["rm0", "rm1"])},
        params={"rm_count": 2}),
        ["'control'", "control connections"]),
    "secret-env-unset": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", _two_nodes(ports, ["tm"], ["rm0", "rm1"]),
        params={"rm_count": 2}, secret=None,
        extra='secret_env = "ASSAY_TEST_SECRET_THAT_IS_NOT_SET"'),
        ["ASSAY_TEST_SECRET_THAT_IS_NOT_SET"]),
    # the ones below were bugs: each has its own test further down
    "nodes-not-tables": (lambda p, ports: _write(
        p, f'spec = "{SPECS / "two_phase_commit.py"}"\nsecret = "{SECRET}"\n'
           '[params]\nrm_count = 2\n[nodes]\nn1 = 5\n'),
        ["n1"]),
    "port-out-of-range": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", {"n1": (70000, ["tm", "rm0", "rm1"])},
        params={"rm_count": 2}),
        ["70000"]),
    "same-host-and-port": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", {"n1": (ports[0], ["tm"]), "n2": (ports[0], ["rm0", "rm1"])},
        params={"rm_count": 2}),
        ["{port}"]),
    "constraint-names-unknown-instance": (lambda p, ports: write_deployment(
        p, "two_phase_commit.py", _two_nodes(ports, ["tm"], ["rm0", "rm1"]),
        params={"rm_count": 2}, constraints={"apart": [["tm", "rm9"]]}),
        ["'rm9'"]),
}
BUGGY = {"nodes-not-tables", "port-out-of-range", "same-host-and-port",
         "constraint-names-unknown-instance"}


def _malformed(p: Path, ports: list[int], replace: dict[str, str | None],
               add: str = "") -> Path:
    """A deployment of two_phase_commit on n1 and n2 with lines of it replaced: `replace`
    maps a line's start (e.g. "port = P1") to what to write instead (None: drop the line)."""
    lines = [f'spec = "{SPECS / "two_phase_commit.py"}"', f'secret = "{SECRET}"', add,
             "[params]", "rm_count = 2",
             "[nodes.n1]", 'host = "127.0.0.1"', "port = P1", 'instances = ["tm"]',
             "[nodes.n2]", 'host = "127.0.0.1"', "port = P2", 'instances = ["rm0", "rm1"]']
    out = []
    for line in lines:
        key = next((k for k in replace if line.startswith(k)), None)
        line = line if key is None else replace[key]
        if line is not None:
            out.append(line.replace("P1", str(ports[0])).replace("P2", str(ports[1])))
    return _write(p, "\n".join(out) + "\n")


# issue 9 §4.6: a field of the wrong type was a traceback; each is now an error naming the
# field, what was found and what to write (case -> (replace, add, what stderr must say))
MALFORMED: dict[str, tuple[dict[str, str | None], str, list[str]]] = {
    "params-not-a-table": ({"[params]": None, "rm_count": None}, "params = 5",
                           ["params is 5 (an integer), not a table", "write [params]"]),
    "param-an-array": ({"rm_count": "rm_count = [2]"}, "",
                       ["params.rm_count is [2] (an array)"]),
    "param-a-table": ({"rm_count": "rm_count = {n = 2}"}, "", ["params.rm_count", "a table"]),
    "host-a-number": ({'host = "127.0.0.1"': "host = 7"}, "",
                      ["nodes.n1.host is 7 (an integer)", 'host = "127.0.0.1"']),
    "host-empty": ({'host = "127.0.0.1"': 'host = ""'}, "", ["nodes.n1.host is \"\""]),
    "port-a-boolean": ({"port = P1": "port = true"}, "",
                       ["nodes.n1.port is true (a boolean)", "port = 7101"]),
    "port-a-string": ({"port = P1": 'port = "7101"'}, "",
                      ['nodes.n1.port is "7101" (a string)', "1..65535"]),
    "port-a-float": ({"port = P1": "port = 7101.5"}, "", ["nodes.n1.port is 7101.5 (a float)"]),
    "port-negative": ({"port = P1": "port = -1"}, "", ["nodes.n1.port is -1", "1..65535"]),
    "port-zero": ({"port = P1": "port = 0"}, "", ["nodes.n1.port is 0", "1..65535"]),
    "port-a-date": ({"port = P1": "port = 1979-05-27"}, "",
                    ["nodes.n1.port is 1979-05-27 (a date or time)"]),
    "port-missing": ({"port = P1": None}, "", ["nodes.n1.port is missing", "port = 7101"]),
    "instances-a-string": ({'instances = ["tm"]': 'instances = "tm"'}, "",
                           ['nodes.n1.instances is "tm" (a string)', 'instances = ["tm"']),
    "instances-of-numbers": ({'instances = ["tm"]': "instances = [1, 2]"}, "",
                             ["nodes.n1.instances is [1, 2] (an array)", "instance names"]),
    "node-unknown-field": ({"port = P1": "prot = P1"}, "",
                           ["nodes.n1.prot is not a field", "host, port, instances"]),
    "nodes-an-array": ({"[nodes.n1]": None, 'host = "127.0.0.1"': None, "port = P": None,
                        'instances = ["tm"]': None, "[nodes.n2]": None,
                        'instances = ["rm0"': None},
                       'nodes = ["n1", "n2"]', ['nodes is ["n1", "n2"] (an array)']),
    "spec-a-number": ({"spec =": "spec = 5"}, "", ["spec is 5 (an integer), not a string"]),
    "system-an-array": ({}, 'system = ["system"]', ['system is ["system"] (an array)']),
    "secret-a-number": ({"secret =": "secret = 12345678901234567"}, "",
                        ["secret is 12345678901234567 (an integer)"]),
    "secret-env-a-boolean": ({"secret =": "secret_env = true"}, "",
                             ["secret_env is true (a boolean)"]),
    "constraints-a-number": ({}, "constraints = 5", ["constraints is 5 (an integer)"]),
    "constraint-flat": ({}, 'constraints = {together = ["tm", "rm0"]}',
                        ["constraints.together", "list of lists"]),
    "constraint-unknown": ({}, 'constraints = {beside = [["tm"]]}',
                           ["constraints.beside is not a field", "together, apart"]),
    "unknown-field": ({}, 'secret-env = "ASSAY_SECRET"', ["secret-env is not a field",
                                                          "secret_env"]),
}
for _case, (_replace, _add, _needles) in MALFORMED.items():
    INVALID[_case] = ((lambda r, a: lambda p, ports: _malformed(p, ports, r, a))(_replace, _add),
                      _needles)


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """Every invalid deployment given to `assay run --deploy` (and a few to `assay node`), all
    at once: case -> (deployment path, ports, completed process, TMPDIR of the run, whether
    it was accepted: `assay run` started its nodes, and was killed there)."""
    base = tmp_path_factory.mktemp("invalid")
    c = Children(base / "proc")
    started = {}
    try:
        jobs = [(case, "run") for case in INVALID] + [("apart", "node"),
                                                       ("unplaced-instance", "node")]
        for case, cmd in jobs:
            d = base / f"{case}-{cmd}"
            d.mkdir()
            ports = free_ports(2)
            dep = INVALID[case][0](d / "deploy.toml", ports)
            tmp = d / "tmp"
            tmp.mkdir()
            c.env = dict(os.environ, TMPDIR=str(tmp))
            argv = assay_argv("run", "--deploy", dep, "--json", "--for", "1") if cmd == "run" \
                else assay_argv("node", dep, "--name", "n1")
            started[(case, cmd)] = (dep, ports, tmp, c.popen(argv, capture=True))
        # a deployment that is wrongly accepted starts its nodes (`assay run` makes its log
        # directory in TMPDIR first): stop it there, the verdict is in
        deadline = time.monotonic() + 45
        running = dict(started)
        accepted: set[tuple[str, str]] = set()
        while running and time.monotonic() < deadline:
            for key, (_, _, tmp, p) in list(running.items()):
                if p.poll() is not None:
                    del running[key]
                elif any(tmp.glob("assay-run-*")):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGKILL)
                    accepted.add(key)
                    del running[key]
            time.sleep(0.05)
        out = {}
        for key, (dep, ports, tmp, p) in started.items():
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
            so, se = p.communicate(timeout=10)
            out[key] = (dep, ports, subprocess.CompletedProcess(p.args, p.returncode,
                                                                so.decode(), se.decode()),
                        tmp, key in accepted)
        yield out
    finally:
        c.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def check_refused(refused, case: str, cmd: str = "run") -> None:
    dep, ports, r, tmp, accepted = refused[(case, cmd)]
    assert not accepted, f"{case}: the deployment was accepted, `assay run` started its nodes"
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stdout[-1500:], r.stderr[-1500:])
    assert r.stdout == ""
    assert str(dep) in r.stderr and "error:" in r.stderr, r.stderr
    for needle in INVALID[case][1]:
        needle = needle.format(port=ports[0])
        assert needle in r.stderr, (needle, r.stderr)
    # no node was started: nobody listens on the deployment's ports, and `assay run` made no
    # log or state directory
    assert not any(_listening(p) for p in ports)
    assert list(tmp.iterdir()) == []


@pytest.mark.parametrize("case", [c for c in INVALID if c not in BUGGY])
def test_an_invalid_deployment_is_refused_before_any_node_starts(refused, case):
    check_refused(refused, case)


@pytest.mark.parametrize("case", ["apart", "unplaced-instance"])
def test_assay_node_refuses_an_invalid_deployment_too(refused, case):
    check_refused(refused, case, "node")


def test_a_node_entry_that_is_not_a_table_is_a_usage_error(refused):
    check_refused(refused, "nodes-not-tables")


def test_a_port_out_of_range_is_a_usage_error(refused):
    check_refused(refused, "port-out-of-range")


def test_two_nodes_on_one_host_and_port_is_a_usage_error(refused):
    check_refused(refused, "same-host-and-port")


def test_a_constraint_naming_an_unknown_instance_is_a_usage_error(refused):
    check_refused(refused, "constraint-names-unknown-instance")


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_deployment_field_of_the_wrong_type_is_refused_naming_it(refused, case):
    check_refused(refused, case)


def test_assay_node_on_a_port_in_use_says_so_without_a_traceback(children, tmp_path):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        (other,) = free_ports(1)
        dep = write_deployment(tmp_path / "deploy.toml", "register.py",
                               {"a": (port, ["server"]), "b": (other, ["client"])})
        r = children.run("node", dep, "--name", "a", timeout=30)
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 2, r.stderr
    assert f"{port}" in r.stderr


@contextlib.contextmanager
def squatted_port():
    """A port held by a program that is not an assay node: it accepts and hangs up."""
    import threading

    sock = socket.socket()
    sock.bind((HOST, 0))
    sock.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield sock.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        t.join(5)


def test_a_port_taken_by_another_program_fails_the_run_cleanly(children, tmp_path):
    with squatted_port() as port:
        (other,) = free_ports(1)
        dep = write_deployment(tmp_path / "deploy.toml", "register.py",
                               {"a": (other, ["server"]), "b": (port, ["client"])})
        run = children.popen(assay_argv("run", "--deploy", dep, "--json", "--for", "3"),
                             capture=True)
        try:
            out, err = run.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            children.kill(run)
            pytest.fail("assay run did not finish")
    time.sleep(0.5)
    left = group_alive(run.pid)
    assert "Traceback" not in err.decode(), err.decode()[-2000:]
    assert run.returncode == 2                   # the node's configuration error
    assert left == [], "assay run left its nodes running"
    doc = json.loads(out)
    assert doc["ended"] == "failed" and doc["failed"]["node"] == "b"
    assert doc["failed"]["exit"] == 2 and "cannot listen" in doc["failed"]["log"]


# --- 3. crashes: persistent state and links survive a kill -9 -----------------------------------

def register_deployment(tmp_path: Path, writes: int = 2) -> tuple[Path, int, int]:
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", "register.py",
                           {"a": (pa, ["server"]), "b": (pb, ["client"])},
                           params={"writes": writes})
    return dep, pa, pb


def test_a_killed_server_restarts_from_its_state_without_losing_an_acknowledged_write(
        children, tmp_path):
    # Where the kill lands matters: this one is placed, with slow disks, where nothing is in
    # flight — the client has Write(1) acknowledged and its Write(2) has not left yet (the
    # tests below kill nodes with messages between them).
    dep, pa, pb = register_deployment(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    la, lb = tmp_path / "a.log", tmp_path / "b.log"
    with write_locked(state / "a.sqlite", "register") as server_disk, \
            write_locked(state / "b.sqlite", "register") as client_disk:
        client_disk.execute("ROLLBACK")               # the client's disk is fast, for now
        a = children.node(dep, "a", pa, "--state-dir", state, log=la)
        children.node(dep, "b", pb, "--state-dir", state, log=lb)
        # the server is saving its step for Write(1); the frame stays unacknowledged until
        # that step is durable
        poll(lambda: ctl(pa, {"t": "status"})["steps"] == 1, START, "Write(1) at the server",
             log=la)
        assert ctl(pb, {"t": "status"})["unacked"] == 1
        client_disk.execute("BEGIN IMMEDIATE")        # now the client's disk is slow
        server_disk.execute("ROLLBACK")
        # Write(1) is durable and acknowledged: the client saw acked = 1 ...
        poll(lambda: fields(pb, "client")["acked"] >= 1, 10, "acknowledged write", log=lb)
        # ... and its step is not durable yet, so Write(2) has not left the client
        time.sleep(0.2)
        assert ctl(pb, {"t": "status"})["unacked"] == 0
        assert ctl(pa, {"t": "status"})["steps"] == 1
        acked = fields(pb, "client")["acked"]
        assert acked == 1
        children.kill(a)                              # kill -9 the server
        client_disk.execute("ROLLBACK")               # Write(2) leaves, for a node that is down
        poll(lambda: ctl(pb, {"t": "status"})["unacked"] == 1, 10, "Write(2) queued", log=lb)
    children.node(dep, "a", pa, "--state-dir", state, log=la)
    wait_for_log(la, "restored server")
    # the restarted server holds every write the client saw acknowledged
    assert fields(pa, "server")["value"] >= acked
    # and the client's link sends Write(2) to it: the run completes
    poll(lambda: fields(pb, "client")["acked"] == 2, 20, "client acked == 2", log=lb)
    assert fields(pa, "server")["value"] == 2
    # the transport's acknowledgement of Write(2) may trail the WriteAck by its ack delay
    poll(lambda: ctl(pb, {"t": "status"})["unacked"] == 0, 5, "Write(2) acknowledged", log=lb)


def test_a_message_acknowledged_by_the_link_survives_a_crash_of_its_receiver(
        children, tmp_path):
    dep, pa, pb = register_deployment(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    la, lb = tmp_path / "a.log", tmp_path / "b.log"
    with write_locked(state / "a.sqlite", "register") as lock:
        a = children.node(dep, "a", pa, "--state-dir", state, log=la)
        children.node(dep, "b", pb, "--state-dir", state, log=lb)
        # the server is handling Write(1) (its save waits on the disk): the frame is not
        # acknowledged before that step is durable, so the client's link still holds it
        poll(lambda: ctl(pa, {"t": "status"})["steps"] == 1, 20, "Write(1) handed over",
             log=la)
        assert ctl(pb, {"t": "status"})["unacked"] == 1
        children.kill(a)
        lock.execute("ROLLBACK")
    children.node(dep, "a", pa, "--state-dir", state, log=la)
    # the link resends Write(1) to the restarted server: nothing acknowledged was lost
    poll(lambda: fields(pb, "client")["acked"] == 2, 20, "client acked == 2", log=lb)


@contextlib.asynccontextmanager
async def _listening_as(node: str, port: int):
    """Listen as node `node`: authenticate whoever connects, record (the list yielded) and
    acknowledge the frames it sends."""
    got: list[dict[str, Any]] = []
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            session = await authenticate(reader, writer, SECRET.encode(), node,
                                         initiator=False)
            while (frame := await session.read()) is not None:
                got.append(frame)
                if frame.get("t") == "msg":
                    session.write({"t": "ack", "seq": frame["seq"], "epoch": frame["epoch"]})
                    await session.drain()
        except (WireError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, port)
    try:
        yield got
    finally:
        server.close()
        for w in writers:
            w.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)


async def _send_as(node: str, port: int, frames: list[dict[str, Any]], *,
                   secret: str = SECRET, reply: bool = True) -> list[Any]:
    """Authenticate to a node as `node` and send each frame; the reply to each (a frame, None
    at EOF, or the exception)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    out: list[Any] = []
    try:
        session = await authenticate(reader, writer, secret.encode(), node, initiator=True)
        for f in frames:
            session.write(f)
            await session.drain()
            if reply:
                try:
                    out.append(await asyncio.wait_for(session.read(), 5))
                except (WireError, OSError) as e:
                    out.append(e)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return out


def msg(src: str, src_port: str, dst: str, dst_port: str, mtype: str,
        fields_: dict[str, Any], seq: int, epoch: str = "test-epoch") -> dict[str, Any]:
    return {"t": "msg", "src": src, "src_port": src_port, "dst": dst, "dst_port": dst_port,
            "clock": 1, "message": {"type": mtype, "fields": fields_}, "seq": seq,
            "epoch": epoch}


def test_the_sends_of_a_durable_step_survive_a_crash_of_their_sender(children, tmp_path):
    dep, pa, pb = register_deployment(tmp_path)
    state = tmp_path / "state"
    la = tmp_path / "a.log"
    a = children.node(dep, "a", pa, "--state-dir", state, log=la)
    # play node b (nobody listens on its port yet): Write(1) from the client
    [ack] = asyncio.run(_send_as("b", pa, [msg("client", "server", "server", "clients",
                                                 "Write", {"value": 1}, 1)]))
    assert ack == {"t": "ack", "seq": 1, "epoch": "test-epoch"}
    poll(lambda: fields(pa, "server")["value"] == 1
         and ctl(pa, {"t": "status"})["unacked"] == 1, 10, "WriteAck(1) owed to b", log=la)
    children.kill(a)
    children.node(dep, "a", pa, "--state-dir", state, log=la)
    assert fields(pa, "server")["value"] == 1

    async def listen() -> list[dict[str, Any]]:
        async with _listening_as("b", pb) as got:
            for _ in range(150):                      # the link retries within 1 s
                if got:
                    break
                await asyncio.sleep(0.02)
        return got

    got = asyncio.run(listen())
    assert [f["message"] for f in got if f.get("t") == "msg"] == \
        [{"type": "WriteAck", "fields": {"value": 1}}]
    # the link first says which lives of a may still send: the restarted one, and the one
    # before it, whose WriteAck is resent (so b must not forget what it handled of it)
    [resent] = [f for f in got if f.get("t") == "msg"]
    assert got[0]["t"] == "epochs"
    now, *before = got[0]["live"]
    assert before == [resent["epoch"]] and now != resent["epoch"]




@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds node processes through /proc")
def test_the_merged_trace_of_a_run_with_a_restarted_node_replays(children, tmp_path):
    dep, pa, pb = register_deployment(tmp_path)
    trace = tmp_path / "run.json"
    run = children.popen(assay_argv("run", "--deploy", dep, "--json", "--trace-out", trace,
                                    "--state-dir", tmp_path / "state"), capture=True)
    poll(lambda: fields(pb, "client")["acked"] == 2, START, "client acked == 2", proc=run)
    pid = child_node(run.pid, "a")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)                      # the supervisor restarts it
    try:
        out, err = run.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        children.kill(run)
        pytest.fail("assay run did not finish")
    doc = json.loads(out)
    if doc["restarts"]["a"] != 1:
        pytest.skip("the run ended before the kill was noticed")
    assert run.returncode == 0 and doc["final"]["client"]["acked"] == 2
    replay(children, trace)


def test_assay_run_does_not_stop_a_node_in_the_middle_of_a_step(children, tmp_path):
    dep, pa, pb = register_deployment(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    with write_locked(state / "b.sqlite", "register"):  # the client's disk is slow for 3 s
        run = children.popen(assay_argv("run", "--deploy", dep, "--json",
                                        "--state-dir", state), capture=True)
        poll(lambda: fields(pb, "client")["pending"], START, "client pending", proc=run)
        time.sleep(3)
    try:
        out, err = run.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        children.kill(run)
        pytest.fail("assay run did not finish")
    doc = json.loads(out)
    assert doc["final"]["client"] == {"acked": 2, "pending": False, "writes": 2}, doc


# --- 4. bad input against a running node ------------------------------------------------------

@pytest.fixture(scope="module")
def lone_server(tmp_path_factory):
    """The register server's node alone (its client's node is not running): port, process,
    log."""
    base = tmp_path_factory.mktemp("lone")
    c = Children(base / "proc")
    try:
        dep, pa, _ = register_deployment(base)
        log = base / "a.log"
        p = c.node(dep, "a", pa, log=log)
        yield pa, p, log
    finally:
        c.close()


def _alive(port: int, proc: subprocess.Popen) -> None:
    assert proc.poll() is None, "the node died"
    st = ctl(port, {"t": "status"})
    assert st is not None and st["t"] == "status" and st["node"] == "a"


async def _raw(port: int, data: bytes) -> bytes:
    """Send `data` without authenticating; everything the node answers until it closes."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def test_unauthenticated_connections_are_refused_and_the_node_keeps_running(lone_server):
    port, proc, log = lone_server
    # garbage instead of a hello: the node sends its own hello, then closes
    answer = asyncio.run(_raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert b"hello" in answer and b"proof" not in answer
    _alive(port, proc)
    # a hello and a proof with the wrong secret
    with pytest.raises(AuthError):
        asyncio.run(_send_as("b", port, [{"t": "status"}], secret="not-the-shared-secret!"))
    _alive(port, proc)
    text = poll(lambda: log.read_text().count("refused a connection") >= 2 and log.read_text(),
                5, "two refusals in the log", log=log)
    assert "malformed hello" in text
    assert "failed to prove" in text


@pytest.mark.parametrize("data,sealed,logged", [
    pytest.param(b"this is not a frame at all", False,
                 f"frame of {int.from_bytes(b'this', 'big')} bytes exceeds", id="garbage"),
    pytest.param((100).to_bytes(4, "big") + b'{"t":"st', False, "closed inside a frame",
                 id="truncated"),
    pytest.param((2**32 - 1).to_bytes(4, "big") + b"{}", False,
                 f"frame of {2**32 - 1} bytes exceeds", id="oversized"),
    pytest.param((7).to_bytes(4, "big") + b"[1,2,3]", False, "no room for its number and MAC",
                 id="too-short-for-a-mac"),
    pytest.param(encode_frame({"t": "state", "instance": "server"}), False, "out of order",
                 id="plain-frame"),
    pytest.param((38).to_bytes(4, "big") + bytes(24) + b'{"t":"status"}', False,
                 "has a bad MAC", id="forged-mac"),
    # MACed as the session requires, and still not a frame
    pytest.param(b"[1,2,3]", True, "not an object", id="json-list"),
    pytest.param(b"\xff\xfe\xfd\xfc", True, "not UTF-8", id="not-utf8"),
    pytest.param(b"{nope", True, "not valid JSON", id="not-json"),
])
def test_bad_frames_after_authentication_are_dropped_and_the_node_keeps_running(
        lone_server, data, sealed, logged):
    port, proc, log = lone_server
    before = fields(port, "server")

    async def send() -> Any:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            session = await authenticate(reader, writer, SECRET.encode(), "b", initiator=True)
            writer.write(session.seal(data) if sealed else data)
            await writer.drain()
            if logged == "closed inside a frame":
                writer.write_eof()
            try:
                return await asyncio.wait_for(session.read(), 10)
            except (WireError, OSError) as e:
                return e
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    # the node drops the frame and the connection: no reply
    assert not isinstance(asyncio.run(send()), dict)
    wait_for_log(log, logged)
    _alive(port, proc)
    assert fields(port, "server") == before


def test_messages_off_the_system_s_links_are_dropped(lone_server):
    port, proc, log = lone_server
    assert fields(port, "server") == {"value": 0}
    write = {"value": 5}
    drops = [
        # a type the server's port does not declare (WriteAck goes the other way)
        ("b", msg("client", "server", "server", "clients", "WriteAck", write, 1),
         "does not accept a message of type 'WriteAck'"),
        # a Write claimed to come from the client, by a control client (no node)
        ("control", msg("client", "server", "server", "clients", "Write", write, 1),
         "no such link from that node"),
        # a port the server does not have, an instance this node does not host
        ("b", msg("client", "server", "server", "nope", "Write", write, 2), "server.nope"),
        ("b", msg("server", "clients", "client", "server", "WriteAck", write, 3),
         "client.server"),
        # a Write whose field has the wrong type, or is missing, or is extra
        ("b", msg("client", "server", "server", "clients", "Write", {"value": "5"}, 4),
         "bad Write"),
        ("b", msg("client", "server", "server", "clients", "Write", {}, 5),
         "missing field 'value'"),
        ("b", msg("client", "server", "server", "clients", "Write",
                  {"value": 5, "evil": 1}, 6), "has no field 'evil'"),
    ]
    for sender, frame, logged in drops:
        [reply] = asyncio.run(_send_as(sender, port, [frame]))
        assert reply == {"t": "ack", "seq": frame["seq"],       # acknowledged, and dropped
                         "epoch": frame["epoch"]}
        wait_for_log(log, logged)
        assert fields(port, "server") == {"value": 0}, (sender, frame)
    # a name that is no node of the deployment is refused at the handshake
    with pytest.raises(AuthError):
        asyncio.run(_send_as("mallory", port, [msg("client", "server", "server", "clients",
                                                   "Write", write, 1)]))
    wait_for_log(log, "which is no node of the deployment")
    _alive(port, proc)
    # the same Write, from the node that hosts the client, is handled: the frames above were
    # well formed, only their origin or type was wrong
    [reply] = asyncio.run(_send_as("b", port, [msg("client", "server", "server", "clients",
                                                   "Write", write, 7)]))
    assert reply == {"t": "ack", "seq": 7, "epoch": "test-epoch"}
    poll(lambda: fields(port, "server") == {"value": 5}, 5, "value 5", log=log)
    _alive(port, proc)


def test_a_control_frame_with_a_bad_field_is_answered_or_dropped_cleanly(lone_server):
    port, proc, log = lone_server
    size = len(log.read_text())
    [reply] = asyncio.run(_send_as("b", port, [{"t": "state", "instance": ["x"]}]))
    time.sleep(0.3)
    _alive(port, proc)
    new = log.read_text()[size:]
    assert "Traceback" not in new and "Unhandled exception" not in new, new
    assert (isinstance(reply, dict) and reply.get("t") == "error") or "dropped" in new


# --- 5. the monitor, deployed -----------------------------------------------------------------

def test_enforce_rejects_overdrafts_in_a_deployment(children, tmp_path):
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", "bank_transfer_bug_overdraft.py",
                           {"a": (pa, ["acct0"]), "b": (pb, ["acct1"])},
                           params={"accounts": 2})
    trace = tmp_path / "run.json"
    r, doc = run_deploy(children, dep, "--for", "2", "--monitor", "enforce",
                        "--trace-out", trace)
    assert r.returncode == 1, r.stderr                 # violations were reported
    assert doc["violations"], doc
    for v in doc["violations"]:
        assert v["blame"] in ("acct0.transfer", "acct1.transfer"), v
        assert v["kind"] == "invariant"
        assert v["event"]["action"] == "transfer"
    assert all(f["balance"] >= 0 for f in doc["final"].values()), doc["final"]
    # the steps that were applied are ones the model allows: no overdraft, money conserved
    replay(children, trace)
