"""The client API (`assay.runtime.connect`): a program plays a spec's external instance.

In process (a spec file): the whole system runs on the test's event loop; over TCP (a
deployment file): the test process becomes the client's node, and the bank runs in a real
`assay node` process on 127.0.0.1.  The account service (specs/account_service.py) is the
example; tests/fixtures/runtime/account_service_overdraft.py is its buggy twin (withdraw has no
balance check) for the runtime monitor.

Every child process is started in its own process group and killed with it when the test ends;
every wait is bounded.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_support import free_ports

from assay import Message
from assay.errors import UsageError
from assay.kernel import Kernel
from assay.kernel.trace import Trace, initial_json
from assay.model.load import build
from assay.runtime import (
    ClientError,
    NoReply,
    NotAccepted,
    NotAllowed,
    NotConnected,
    Rejected,
    UnknownInstance,
    Unreachable,
    connect,
)
from assay.runtime.deploy import load_deployment
from assay.runtime.steplog import merge_logs
from assay.runtime.tcp import control
from assay.runtime.wire import WireError

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = ROOT / "specs" / "account_service.py"
OVERDRAFT = ROOT / "tests" / "fixtures" / "runtime" / "account_service_overdraft.py"
SECRET = "a-shared-secret-for-tests-only"
HOST = "127.0.0.1"
START = 30.0            # seconds a node process may take to come up (a loaded CI machine)


def run(coro_fn: Callable[[], Any]) -> Any:
    """Run an async test body on a fresh event loop, bounded in time."""
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), 30)
    return asyncio.run(bounded())


def assay(*args: str | Path, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """`assay ARGS` in a subprocess, to completion."""
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=ROOT)


def replay(trace: Path) -> tuple[int, dict[str, Any]]:
    """`assay replay --json TRACE`: its exit code and its JSON document."""
    r = assay("replay", trace, "--json")
    assert r.returncode in (0, 1), (r.stdout[-2000:], r.stderr[-3000:])
    return r.returncode, json.loads(r.stdout)


# --- in process: the account service ----------------------------------------------------------

def test_requests_get_the_banks_replies_and_the_run_replays(tmp_path):
    async def body():
        async with connect(ACCOUNT, params={"limit": 4}, timeout=2.0) as c:
            T = c.types
            assert c.instance == "client"
            assert await c.request("bank", T.Deposit(5)) == T.Done(5)
            assert await c.request("bank", T.Withdraw(3)) == T.Done(2)
            refused = await c.request("bank", T.Withdraw(4))
            assert type(refused) is T.Refused and refused == T.Refused(2)
            assert await c.state("bank") == {"balance": 2}
            assert await c.state("client") == {"waiting": False, "requests": 3, "limit": 4,
                                               "balance": 2}
            trace = c.trace()
        return trace

    trace = run(body)
    assert [(e["kind"], e.get("to") or e.get("instance")) for e in trace.events] == \
        [("action", "client"), ("deliver", "bank"), ("deliver", "client")] * 3
    path = tmp_path / "run.json"
    trace.write(path)
    code, doc = replay(path)
    assert code == 0 and doc["violation"] is None
    assert doc["steps"] == 9


def reference(ops: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], int]:
    """The replies a correct bank gives to `ops`, and its final balance."""
    balance, replies = 0, []
    for op, amount in ops:
        if op == "deposit":
            balance += amount
            replies.append(("Done", balance))
        elif amount <= balance:
            balance -= amount
            replies.append(("Done", balance))
        else:
            replies.append(("Refused", balance))
    return replies, balance


LIMIT = 4


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["deposit", "withdraw"]), st.integers(1, 5)),
                max_size=LIMIT))
def test_any_request_sequence_within_the_limit_matches_a_reference_bank(ops):
    async def body():
        async with connect(ACCOUNT, params={"limit": LIMIT}, timeout=2.0) as c:
            replies = []
            for op, amount in ops:
                msg = (c.types.Deposit if op == "deposit" else c.types.Withdraw)(amount)
                r = await c.request("bank", msg)
                replies.append((type(r).__name__, r.balance))
            return replies, await c.state("bank"), await c.state("client")

    replies, bank, client = run(body)
    want, balance = reference(ops)
    assert replies == want
    assert bank == {"balance": balance}
    assert client == {"waiting": False, "requests": len(ops), "limit": LIMIT,
                      "balance": balance}


# --- in process: errors -------------------------------------------------------------------------

def test_unknown_instance_is_a_lookup_error():
    async def body():
        async with connect(ACCOUNT, timeout=1.0) as c:
            for call in (lambda: c.send("nobody", c.types.Deposit(1)),
                         lambda: c.request("nobody", c.types.Deposit(1)),
                         lambda: c.state("nobody")):
                with pytest.raises(UnknownInstance, match="'nobody'") as e:
                    await call()
                assert isinstance(e.value, LookupError) and isinstance(e.value, ClientError)
            assert await c.state("bank") == {"balance": 0}
            return c.trace()

    assert run(body).events == []


def test_messages_the_port_or_the_model_does_not_allow_are_refused_before_any_step():
    async def body():
        async with connect(ACCOUNT, params={"limit": 2}, timeout=1.0) as c:
            T = c.types
            # the client is not connected to itself
            with pytest.raises(NotConnected, match="reaches: bank"):
                await c.send("client", T.Deposit(1))
            # the bank's port does not take Done, nor what is not a message
            for m in (T.Done(1), {"amount": 1}, "Deposit(1)"):
                with pytest.raises(NotAccepted, match="accepts: Deposit, Withdraw") as e:
                    await c.send("bank", m)
                assert isinstance(e.value, TypeError)
            # the model's client deposits 1..5 only
            with pytest.raises(NotAllowed, match="Deposit\\(amount=9\\)"):
                await c.request("bank", T.Deposit(9))
            with pytest.raises(NotAllowed):
                await c.request("bank", T.Withdraw(0))
            assert c.trace().events == []           # nothing of the above took a step
            # one request at a time: no second one before the model's client has its reply
            # (an in-process send returns without yielding to the system's loop)
            await c.send("bank", T.Deposit(2))
            with pytest.raises(NotAllowed):
                await c.send("bank", T.Deposit(1))
            assert await c.receive(sender="bank") == T.Done(2)
            assert await c.request("bank", T.Withdraw(1)) == T.Done(1)
            # `limit` requests in all: the third is refused, and nothing changes
            with pytest.raises(NotAllowed, match="no action of it is enabled now"):
                await c.request("bank", T.Deposit(1))
            assert await c.state("bank") == {"balance": 1}
            assert (await c.state("client"))["requests"] == 2
            return c.trace()

    assert len(run(body).events) == 6


def test_a_spec_without_external_instances_is_a_usage_error_at_connect():
    async def body():
        async with connect(ROOT / "specs" / "register.py"):
            pytest.fail("connected to a system with no external instance")

    with pytest.raises(UsageError, match="no external instance"):
        run(body)


def test_instance_must_name_an_external_instance():
    async def non_external():
        async with connect(ACCOUNT, instance="bank"):
            pytest.fail("a client played the bank")

    async def unknown():
        async with connect(ACCOUNT, instance="teller"):
            pytest.fail("a client played an instance the system does not have")

    async def explicit():
        async with connect(ACCOUNT, instance="client", timeout=1.0) as c:
            return await c.request("bank", c.types.Deposit(1))

    with pytest.raises(UsageError, match="'bank' is not external"):
        run(non_external)
    with pytest.raises(UnknownInstance, match="'teller'"):
        run(unknown)
    assert run(explicit).balance == 1


def test_receive_with_nothing_coming_raises_no_reply_within_the_timeout():
    async def body():
        async with connect(ACCOUNT, timeout=5.0) as c:
            t0 = time.monotonic()
            with pytest.raises(NoReply) as e:
                await c.receive(timeout=0.3)
            waited = time.monotonic() - t0
            assert isinstance(e.value, TimeoutError)
            assert 0.25 <= waited < 2.0, waited
            t0 = time.monotonic()
            with pytest.raises(NoReply, match="from bank"):
                await c.receive(0.2, sender="bank")
            assert time.monotonic() - t0 < 2.0
            # the client still works after a NoReply
            return await c.request("bank", c.types.Deposit(3))

    assert run(body).balance == 3


def test_the_client_refuses_to_work_outside_its_async_with():
    async def body():
        c = connect(ACCOUNT, timeout=1.0)
        with pytest.raises(ClientError, match="not connected"):
            await c.state("bank")                   # never entered
        async with c:
            deposit = c.types.Deposit(1)
            assert await c.request("bank", deposit) == c.types.Done(1)
        for call in (lambda: c.send("bank", deposit), lambda: c.request("bank", deposit),
                     lambda: c.receive(0.1), lambda: c.state("bank")):
            with pytest.raises(ClientError, match="not connected"):
                await call()
        await c.close()                             # closing twice is harmless

    run(body)


# --- in process: messages from another import of the spec ---------------------------------------

def _import_as(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_message_class_from_another_import_of_the_spec_is_accepted_by_type_name():
    other = _import_as(ACCOUNT, "account_service_imported_elsewhere")

    async def body():
        async with connect(ACCOUNT, timeout=2.0) as c:
            assert other.Deposit is not c.types.Deposit
            done = await c.request("bank", other.Deposit(4))
            # the reply is the runtime's own class, equal in value
            assert type(done) is c.types.Done and done == c.types.Done(4)
            assert await c.request("bank", other.Withdraw(5)) == c.types.Refused(4)
            with pytest.raises(NotAllowed):
                await c.request("bank", other.Deposit(9))
            with pytest.raises(NotAccepted):
                await c.request("bank", other.Done(1))
            return await c.state("bank")

    assert run(body) == {"balance": 4}


def test_a_same_named_message_that_does_not_fit_the_port_is_a_client_error():
    class Deposit(Message):          # the bank's port takes Deposit(amount: int)
        value: int

    class Withdraw(Message):
        amount: str

    async def body():
        async with connect(ACCOUNT, timeout=1.0) as c:
            for m in (Deposit(3), Withdraw("1")):
                with pytest.raises(ClientError):
                    await c.send("bank", m)
            assert await c.state("bank") == {"balance": 0}

    run(body)


# --- in process: the monitor, on the buggy twin -------------------------------------------------

def test_enforce_rejects_the_overdraft_so_no_reply_comes_and_the_balance_stays(tmp_path):
    async def body():
        async with connect(OVERDRAFT, monitor="enforce", timeout=0.5) as c:
            T = c.types
            assert await c.request("bank", T.Deposit(2)) == T.Done(2)
            t0 = time.monotonic()
            with pytest.raises(NoReply):
                await c.request("bank", T.Withdraw(5))
            assert time.monotonic() - t0 < 3.0
            with pytest.raises(NoReply):           # nor later
                await c.receive(0.2)
            assert await c.state("bank") == {"balance": 2}
            # the client's model still waits for the answer the bank never sent
            assert await c.state("client") == {"waiting": True, "requests": 2, "limit": 3,
                                               "balance": 2}
            return c.trace()

    trace = run(body)
    path = tmp_path / "run.json"
    trace.write(path)
    # the rejected step is not in the run: what was applied is a run the model allows
    code, doc = replay(path)
    assert code == 0 and doc["violation"] is None
    assert doc["steps"] == 4        # deposit, its delivery and reply, the withdraw action


def test_enforce_rejects_the_clients_handling_of_a_bad_reply():
    # without the bank's invariant, the overdraft is applied at the bank and caught by the
    # precondition of the client's handler: that step is the client's, so receive says so
    async def body():
        async with connect(OVERDRAFT, params={"invariant": False}, timeout=1.0) as c:
            T = c.types
            await c.request("bank", T.Deposit(2))
            with pytest.raises(Rejected, match="requires of client.done"):
                await c.request("bank", T.Withdraw(5))
            return await c.state("bank"), await c.state("client")

    bank, client = run(body)
    assert bank == {"balance": -3}
    assert client == {"waiting": True, "requests": 2, "limit": 3, "balance": 2}


def test_log_lets_the_overdraft_through_and_its_trace_replays_to_the_violation(tmp_path):
    async def body():
        async with connect(OVERDRAFT, monitor="log", timeout=2.0) as c:
            T = c.types
            assert await c.request("bank", T.Deposit(2)) == T.Done(2)
            assert await c.request("bank", T.Withdraw(5)) == T.Done(-3)
            assert await c.state("bank") == {"balance": -3}
            return c.trace()

    trace = run(body)
    path = tmp_path / "run.json"
    trace.write(path)
    code, doc = replay(path)
    assert code == 1
    assert doc["violation"]["kind"] == "invariant"
    assert doc["violation"]["blame"] == "bank.withdraw"


@pytest.mark.e2e
@pytest.mark.parametrize("spec,args,code,kind", [
    pytest.param(ACCOUNT, [], 0, None, id="account_service"),
    pytest.param(OVERDRAFT, [], 1, "invariant", id="overdraft"),
    pytest.param(OVERDRAFT, ["-p", "invariant=false"], 1, "requires", id="overdraft-no-inv"),
])
def test_check_passes_the_account_service_and_finds_the_overdraft(spec, args, code, kind):
    r = assay("check", spec, *args, "--json")
    assert r.returncode == code, (r.stdout[-2000:], r.stderr[-2000:])
    doc = json.loads(r.stdout)
    assert (doc["violation"] or {}).get("kind") == kind
    if kind is None:
        assert doc["verdict"] == "ok" and doc["reason"] == "exhausted"


# --- over TCP: the bank in an `assay node` process ----------------------------------------------

def write_deployment(path: Path, bank_port: int, client_port: int, limit: int = 4) -> Path:
    path.write_text("\n".join([
        f"spec = {json.dumps(str(ACCOUNT))}", f"secret = {json.dumps(SECRET)}",
        "[params]", f"limit = {limit}",
        "[nodes.bank]", f'host = "{HOST}"', f"port = {bank_port}", 'instances = ["bank"]',
        "[nodes.client]", f'host = "{HOST}"', f"port = {client_port}",
        'instances = ["client"]']) + "\n")
    return path


def ctl(port: int, frame: dict[str, Any], timeout: float = 3.0) -> dict[str, Any] | None:
    return asyncio.run(control(HOST, port, SECRET.encode(), frame, timeout))


def kill_group(p: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        p.kill()
    p.wait(10)


class BankDeployment:
    """A deployment of the account service: the bank on an `assay node` process (started by
    `start`), the client's node for the test process to become."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bank_port, self.client_port = free_ports(2)
        self.dep = write_deployment(tmp / "deploy.toml", self.bank_port, self.client_port)
        self.trace = tmp / "bank.jsonl"
        self.client_trace = tmp / "client.jsonl"
        self.client_state = tmp / "client-state"
        self.log = tmp / "bank.log"
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        with open(self.log, "ab") as err:
            p = subprocess.Popen(
                [sys.executable, "-m", "assay.cli", "node", str(self.dep), "--name", "bank",
                 "--state-dir", str(self.tmp / "bank-state"), "--trace-out", str(self.trace)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True)
        self.procs.append(p)
        deadline = time.monotonic() + START
        while time.monotonic() < deadline and p.poll() is None:
            with contextlib.suppress(OSError, TimeoutError, WireError,
                                         asyncio.IncompleteReadError):
                if (ctl(self.bank_port, {"t": "status"}, 1.0) or {}).get("t") == "status":
                    return p
            time.sleep(0.02)
        pytest.fail(f"the bank node did not answer within {START} s (exit {p.poll()})\n"
                    + self.log.read_text()[-3000:])

    def connect(self, **options: Any) -> Any:
        options.setdefault("timeout", 3.0)
        return connect(self.dep, trace_out=str(self.client_trace),
                       state_dir=str(self.client_state), **options)

    def merged_trace(self, path: Path) -> Path:
        """The two nodes' step logs merged into one run trace (as `assay run --deploy`)."""
        dep = load_deployment(self.dep)
        system, name, typed = build(dep.spec, dep.system, dep.params)
        k = Kernel(system)
        events = merge_logs([str(self.trace), str(self.client_trace)])
        Trace(dep.spec, name, typed, events, engine="run",
              initial=initial_json(k, k.initial_states()[0][0])).write(path)
        return path

    def close(self) -> None:
        for p in self.procs:
            kill_group(p)


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[BankDeployment]:
    b = BankDeployment(tmp_path)
    try:
        yield b
    finally:
        b.close()


@pytest.mark.e2e
def test_tcp_requests_reach_the_bank_node_and_the_merged_logs_replay(bank, tmp_path):
    bank.start()

    async def body():
        async with bank.connect() as c:
            T = c.types
            assert await c.request("bank", T.Deposit(5)) == T.Done(5)
            assert await c.request("bank", T.Withdraw(3)) == T.Done(2)
            assert await c.request("bank", T.Withdraw(4)) == T.Refused(2)
            with pytest.raises(NotAllowed):
                await c.send("bank", T.Deposit(9))
            assert await c.state("bank") == {"balance": 2}           # asked of the bank node
            assert await c.state("client") == {"waiting": False, "requests": 3, "limit": 4,
                                               "balance": 2}
            with pytest.raises(ClientError, match="trace_out"):
                c.trace()

    run(body)
    assert ctl(bank.bank_port, {"t": "state", "instance": "bank"})["fields"] == {"balance": 2}
    assert (tmp_path / "client-state" / "client.sqlite").exists()
    code, doc = replay(bank.merged_trace(tmp_path / "run.json"))
    assert code == 0 and doc["violation"] is None
    assert doc["steps"] == 9
    assert [e["kind"] for e in doc["events"]] == ["action", "deliver", "deliver"] * 3


@pytest.mark.e2e
def test_tcp_unreachable_bank_node(bank):
    # the bank node is not running: nothing listens on its port
    async def body():
        async with bank.connect(timeout=0.5) as c:
            t0 = time.monotonic()
            with pytest.raises(Unreachable, match="did not acknowledge") as e:
                await c.request("bank", c.types.Deposit(1))
            assert isinstance(e.value, ConnectionError)
            assert 0.4 <= time.monotonic() - t0 < 3.0
            t0 = time.monotonic()
            with pytest.raises(Unreachable, match="did not answer"):
                await c.state("bank")
            assert time.monotonic() - t0 < 3.0
            # the request stays queued: the client's model waits for its answer
            assert (await c.state("client"))["waiting"] is True

    t0 = time.monotonic()
    run(body)
    assert time.monotonic() - t0 < 10.0


@pytest.mark.e2e
def test_tcp_a_later_session_continues_with_the_balance_kept_on_the_bank_node(bank):
    # two sessions, one after the other (each on its own event loop, as two runs of a
    # program): the second sees the balance the first left on the bank node
    bank.start()

    async def first():
        async with bank.connect() as c:
            return await c.request("bank", c.types.Deposit(5))

    async def second():
        async with bank.connect() as c:
            before = await c.state("bank")
            return before, await c.request("bank", c.types.Deposit(1))

    assert run(first).balance == 5
    before, done = run(second)
    assert before == {"balance": 5}
    assert done.balance == 6
    assert ctl(bank.bank_port, {"t": "state", "instance": "bank"})["fields"] == {"balance": 6}


@pytest.mark.e2e
def test_tcp_a_second_connect_in_the_same_event_loop_gets_its_replies(bank):
    bank.start()

    async def body():
        async with bank.connect() as c:
            assert await c.request("bank", c.types.Deposit(5)) == c.types.Done(5)
        async with bank.connect(timeout=2.0) as c:
            assert await c.state("bank") == {"balance": 5}
            assert await c.request("bank", c.types.Deposit(1)) == c.types.Done(6)

    run(body)


# --- `assay run --deploy` leaves the client node to the client ----------------------------------

def _group_cmdlines(pgid: int) -> list[str]:
    """The command lines of the live processes of process group `pgid` (Linux /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parts = stat[stat.rindex(")") + 2:].split()
        if int(parts[2]) == pgid and parts[0] != "Z":
            out.append(cmd)
    return out


@pytest.mark.e2e
def test_run_deploy_does_not_start_the_client_node(bank, tmp_path):
    # hold the client's port (bound, not listening): a client node `assay run` started could
    # not listen there and would fail the run (exit 2, "failed"); connecting is refused
    hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hold.bind((HOST, bank.client_port))
    # --for 6: under load (a loaded CI machine) the bank node took over 3 s to start and had
    # reported no state when the run ended
    env = dict(os.environ, TMPDIR=str(tmp_path))
    p = subprocess.Popen([sys.executable, "-m", "assay.cli", "run", "--deploy", str(bank.dep),
                          "--for", "6"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True, env=env)
    bank.procs.append(p)
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 40
        while p.poll() is None and time.monotonic() < deadline:
            seen += _group_cmdlines(p.pid)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                assert probe.connect_ex((HOST, bank.client_port)) != 0
            time.sleep(0.02)
        out, err = p.communicate(timeout=10)
    finally:
        hold.close()
    out, err = out.decode(), err.decode()
    assert p.returncode == 0, (out, err)
    assert "client node(s) client host only external instances: not started" in err
    # no program attached to the client node: the run waited for one until --for
    assert "ended: time" in out and "bank (on bank): balance=0" in out
    assert "(on client)" not in out
    nodes = [c for c in seen if " node " in c]
    assert any("--name bank" in c for c in nodes), seen
    assert not any("--name client" in c for c in nodes), nodes


@pytest.mark.e2e
def test_run_deploy_waits_for_the_client_and_assay_merge_makes_one_replayable_trace(bank,
                                                                                   tmp_path):
    """The bank alone has nothing to do: `assay run --deploy` waits for the client node to
    attach and leave, then ends at quiescence; `assay merge` of the bank's log and the
    client's is one trace that replays; without the client's log it does not."""
    p = subprocess.Popen([sys.executable, "-m", "assay.cli", "run", "--deploy", str(bank.dep),
                          "--state-dir", str(tmp_path / "nodes"), "--json", "--for", "60"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    bank.procs.append(p)
    deadline = time.monotonic() + START
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, TimeoutError, WireError, asyncio.IncompleteReadError):
            if (ctl(bank.bank_port, {"t": "status"}, 1.0) or {}).get("t") == "status":
                break
        time.sleep(0.05)
    time.sleep(1.5)                 # idle well past the three quiet polls that ended it before
    assert p.poll() is None, "the run ended before its client node attached"

    async def body():
        async with bank.connect() as c:
            assert await c.request("bank", c.types.Deposit(5)) == c.types.Done(5)
            assert await c.request("bank", c.types.Withdraw(2)) == c.types.Done(3)
            # the bank names the client among the nodes it had messages from: how the run
            # knows a client that attached and left between two of its polls
            status = await control(HOST, bank.bank_port, SECRET.encode(), {"t": "status"}, 3.0)
            assert "client" in (status or {}).get("peers", []), status

    run(body)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, (out, err)
    doc = json.loads(out)
    assert doc["ended"] == "quiescent" and doc["final"]["bank"] == {"balance": 3}
    assert doc["seconds"] < 50

    logs = Path(doc["logs"])
    merged = assay("merge", bank.dep, logs / "bank.jsonl", bank.client_trace,
                   "-o", tmp_path / "run.json")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "6 steps of node(s) bank, client merged" in merged.stdout
    code, replayed = replay(tmp_path / "run.json")
    assert code == 0 and replayed["violation"] is None and replayed["steps"] == 6
    # the bank's log alone lacks the client's actions: replay refuses the first delivery
    partial = assay("merge", bank.dep, logs / "bank.jsonl", "-o", tmp_path / "bank.json")
    assert partial.returncode == 0 and "no log of node(s) client" in partial.stderr
    r = assay("replay", tmp_path / "bank.json")
    assert r.returncode == 2 and "step 1" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("content, message", [
    ("not json\n{}\n", "log.jsonl:1: not a step log line"),
    ('{"clock": 1, "node": "elsewhere", "event": {}}\n', "node 'elsewhere', which"),
])
def test_merge_refuses_what_is_not_a_step_log_of_the_deployment(tmp_path, content, message):
    dep = write_deployment(tmp_path / "deploy.toml", 7101, 7102)
    (tmp_path / "log.jsonl").write_text(content)
    r = assay("merge", dep, tmp_path / "log.jsonl", "-o", tmp_path / "out.json")
    assert r.returncode == 2 and message in r.stdout + r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out.json").exists()
    missing = assay("merge", dep, tmp_path / "none.jsonl", "-o", tmp_path / "out.json")
    assert missing.returncode == 2 and "cannot read step log" in missing.stdout + missing.stderr


# --- failover: a request follows another path the model allows ------------------------------

FAILOVER = ROOT / "tests" / "fixtures" / "runtime" / "failover_lookup.py"


def start_node(dep: Path, name: str, port: int, tmp: Path) -> subprocess.Popen:
    """`assay node DEP --name NAME` in its own process group; returns once it answers."""
    log = tmp / f"{name}.log"
    with open(log, "ab") as err:
        p = subprocess.Popen([sys.executable, "-m", "assay.cli", "node", str(dep), "--name",
                              name, "--trace-out", str(tmp / f"{name}.jsonl")],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             start_new_session=True)
    deadline = time.monotonic() + START
    while time.monotonic() < deadline and p.poll() is None:
        with contextlib.suppress(OSError, TimeoutError, WireError, asyncio.IncompleteReadError):
            if (ctl(port, {"t": "status"}, 1.0) or {}).get("t") == "status":
                return p
        time.sleep(0.05)
    kill_group(p)
    pytest.fail(f"node {name} did not answer within {START} s\n" + log.read_text()[-3000:])


@pytest.mark.e2e
@pytest.mark.parametrize("failover", [True, False])
def test_a_request_follows_the_failover_the_model_allows(tmp_path, failover):
    """r0's node is down: the model's client may ask r1 the same question (its `retry`), so
    `request("r0", ...)` is answered by r1, and the run replays; where the model has no
    failover (`failover=false`), or the caller asks for none, it stays Unreachable."""
    ports = free_ports(3)
    dep = tmp_path / "deploy.toml"
    dep.write_text("\n".join([
        f"spec = {json.dumps(str(FAILOVER))}", f"secret = {json.dumps(SECRET)}",
        "[params]", f"failover = {str(failover).lower()}",
        *(line for name, port in zip(["r0", "r1", "client"], ports) for line in (
            f"[nodes.{name}]", f'host = "{HOST}"', f"port = {port}",
            f'instances = ["{name}"]'))]) + "\n")
    r1 = start_node(dep, "r1", ports[1], tmp_path)        # r0 is never started
    client_log = tmp_path / "client.jsonl"

    async def body():
        async with connect(dep, trace_out=str(client_log), timeout=0.5) as c:
            T = c.types
            if not failover:
                with pytest.raises(Unreachable, match="did not acknowledge"):
                    await c.request("r0", T.Lookup(1))
                return await c.state("client")
            assert await c.request("r0", T.Lookup(1)) == T.Answer(1, 10)
            # the caller may refuse a failover: the next question to r0 stays unanswered
            with pytest.raises(Unreachable, match="did not acknowledge"):
                await c.request("r0", T.Lookup(2), failover=False)
            return await c.state("client")

    try:
        client = run(body)
    finally:
        kill_group(r1)
    if not failover:
        assert client["pending"] == 1 and client["answered"] == 0
        return
    assert client["answered"] == 1 and client["pending"] == 2
    merged = assay("merge", dep, tmp_path / "r1.jsonl", client_log, "-o", tmp_path / "run.json")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    code, doc = replay(tmp_path / "run.json")
    assert code == 0 and doc["violation"] is None
    assert [e["kind"] for e in doc["events"]] == ["action", "action", "deliver", "deliver",
                                                  "action"]
