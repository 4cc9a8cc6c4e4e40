"""What the runtime's end-to-end tests share: deployments on free loopback ports, child
processes that die with their test, talking to nodes, waiting, replaying their traces.

Every child is the leader of its own process group and is killed with its group (the nodes an
`assay run` starts included) when the test ends, passed or failed; every wait is bounded.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assay.kernel import Kernel
from assay.kernel.trace import Trace, initial_json
from assay.model.load import build
from assay.runtime.deploy import load_deployment
from assay.runtime.steplog import merge_logs
from assay.runtime.store import Store
from assay.runtime.tcp import control
from assay.runtime.wire import WireError

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SECRET = "a-shared-secret-for-tests-only"
HOST = "127.0.0.1"
START = 30.0            # seconds a node may take to come up (a loaded CI machine is slow)


# --- deployments ----------------------------------------------------------------------------

# Ports for the nodes tests start: below the kernel's ephemeral range (32768-60999 here), so
# no client socket's local port can take one between the test choosing it and the node binding
# it (a port from bind(0) could be), and a window of its own for each pytest-xdist worker and
# process, walked in turn, so that two tests running at once do not choose the same port (a
# node of one answering another's supervisor: a reply that fails its MAC, read as no answer).
_WINDOW = 2000
_next_port: list[int] = []


def _first_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return 10_000 + (index % 8) * _WINDOW + (os.getpid() * 37) % _WINDOW


def free_ports(n: int) -> list[int]:
    """`n` distinct ports that were free a moment ago (each bound, then released): the next
    ones of this process's window."""
    if not _next_port:
        _next_port.append(_first_port())
    base = 10_000 + ((_next_port[0] - 10_000) // _WINDOW) * _WINDOW
    out: list[int] = []
    for _ in range(4 * _WINDOW):
        port = _next_port[0]
        _next_port[0] = base + (port + 1 - base) % _WINDOW
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
        out.append(port)
        if len(out) == n:
            return out
    raise RuntimeError(f"no {n} free ports in {base}-{base + _WINDOW - 1}")


def ping_frame(seq: int) -> dict[str, Any]:
    """The `seq`-th Ping of node b's pinger to node a's ponger
    (tests/benchmarks/ping_pong_spec.py), as the wire carries it."""
    return {"t": "msg", "src": "pinger", "src_port": "peer", "dst": "ponger",
            "dst_port": "peer", "clock": seq, "message": {"type": "Ping", "fields": {"n": seq}},
            "seq": seq, "epoch": "life-1"}


def _toml(v: Any) -> str:
    return json.dumps(v)          # strings, ints, lists of strings: JSON is valid TOML here


def write_deployment(path: Path, spec: str | Path, nodes: dict[str, tuple[int, list[str]]], *,
                     params: dict[str, Any] | None = None,
                     constraints: dict[str, Any] | None = None,
                     secret: str | None = SECRET, extra: str = "") -> Path:
    """A deployment TOML: `nodes` maps a node name to (port, instances); `spec` is a file of
    specs/ or a path."""
    lines = [f"spec = {_toml(str(SPECS / spec))}"]
    if secret is not None:
        lines.append(f"secret = {_toml(secret)}")
    lines.append(extra)
    if params:
        lines.append("[params]")
        lines += [f"{k} = {_toml(v)}" for k, v in params.items()]
    for name, (port, instances) in nodes.items():
        lines += [f"[nodes.{name}]", f"host = {_toml(HOST)}", f"port = {port}",
                  f"instances = {_toml(instances)}"]
    if constraints:
        lines.append("[constraints]")
        lines += [f"{k} = {_toml(v)}" for k, v in constraints.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- processes --------------------------------------------------------------------------------

def assay_argv(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "assay.cli", *map(str, args)]


def group_alive(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid` (Linux /proc; [] elsewhere)."""
    alive: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return alive
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        parts = stat[stat.rindex(")") + 2:].split()       # state ppid pgrp ...
        if int(parts[2]) == pgid and parts[0] != "Z":
            alive.append(int(d.name))
    return alive


class Children:
    """The processes a test starts, each the leader of its own process group; `close` kills
    every group (grandchildren included) and reaps the leaders."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.files: list[Any] = []
        self.env = dict(os.environ, TMPDIR=str(tmp))   # `assay run` keeps its logs there
        tmp.mkdir(parents=True, exist_ok=True)

    def popen(self, argv: list[str], *, log: Path | None = None,
              capture: bool = False) -> subprocess.Popen:
        kw: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if capture:
            kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        elif log is not None:
            kw["stderr"] = open(log, "ab")            # noqa: SIM115 - closed in close()
            self.files.append(kw["stderr"])
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True,
                             env=self.env, **kw)
        self.procs.append(p)
        return p

    def kill(self, p: subprocess.Popen) -> None:
        """kill -9 the process and its group, and reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            p.kill()
        p.wait(10)
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()

    def run(self, *args: str | Path, timeout: float = 40.0) -> subprocess.CompletedProcess:
        """`assay ARGS` to completion (killed, and the test failed, after `timeout` s)."""
        p = self.popen(assay_argv(*args), capture=True)
        return self.communicate(p, timeout)

    def communicate(self, p: subprocess.Popen, timeout: float) -> subprocess.CompletedProcess:
        """Wait for `p` (started with capture=True) and its output; it must leave no process
        of its group behind."""
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(p)
            pytest.fail(f"{p.args!r} did not finish within {timeout} s")
        deadline = time.monotonic() + 5
        while group_alive(p.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not group_alive(p.pid), f"{p.args!r} left processes behind"
        return subprocess.CompletedProcess(p.args, p.returncode, out.decode(), err.decode())

    def node(self, dep: Path, name: str, port: int, *extra: str | Path,
             log: Path) -> subprocess.Popen:
        """`assay node DEP --name NAME`, its stderr appended to `log`; returns once it answers
        a status request."""
        p = self.popen(assay_argv("node", dep, "--name", name, *extra), log=log)
        poll(lambda: p.poll() is None and ctl(port, {"t": "status"}), START,
             f"node {name} answering on port {port}", proc=p, log=log)
        return p

    def stop(self, p: subprocess.Popen, port: int) -> None:
        """Stop a node cleanly (a stop frame) and wait for it to exit."""
        assert ctl(port, {"t": "stop"}) == {"t": "stopping"}
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            self.kill(p)
            pytest.fail(f"node on port {port} did not stop")

    def close(self) -> None:
        for p in self.procs:
            self.kill(p)
        for f in self.files:
            f.close()


# --- talking to nodes -------------------------------------------------------------------------

NOT_YET = (OSError, TimeoutError, ConnectionError, WireError, asyncio.IncompleteReadError)


def ctl(port: int, frame: dict[str, Any], timeout: float = 3.0) -> dict[str, Any] | None:
    return asyncio.run(control(HOST, port, SECRET.encode(), frame, timeout))


def fields(port: int, instance: str) -> dict[str, Any]:
    reply = ctl(port, {"t": "state", "instance": instance})
    assert reply is not None and reply.get("t") == "state", reply
    return reply["fields"]


def poll(pred: Callable[[], Any], timeout: float, what: str, *,
         proc: subprocess.Popen | None = None, log: Path | None = None) -> Any:
    """The first truthy value of `pred()` within `timeout` s (connection errors count as not
    yet); fails the test otherwise, with the node's log."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = pred()
            if last:
                return last
        except NOT_YET as e:
            last = e
        if proc is not None and proc.poll() is not None:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    pytest.fail(f"no {what} within {timeout} s (last: {last!r}; exit code "
                f"{proc.poll() if proc else None})\n{tail}")


def wait_for_log(log: Path, text: str, timeout: float = 5.0) -> str:
    return poll(lambda: text in log.read_text() and log.read_text(), timeout,
                f"log line containing {text!r}", log=log)


def replay(children: Children, trace: Path, timeout: float = 60.0) -> dict[str, Any]:
    """`assay replay --json TRACE`: exit 0 and no violation means the model allows the run."""
    r = children.run("replay", trace, "--json", timeout=timeout)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    doc = json.loads(r.stdout)
    assert doc["violation"] is None
    return doc


def log_events(path: Path, *, growing: bool = False) -> list[dict[str, Any]]:
    """The step log lines (--trace-out) of one node; `growing`: the node is writing it, so
    a last line without its newline may be half written, and is left out."""
    text = path.read_text() if path.exists() else ""
    if growing:
        text = text[:text.rfind("\n") + 1]
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


def merged_trace(dep: Path, logs: list[Path], out: Path) -> Path:
    """The nodes' step logs merged into one trace file, as `assay run --deploy` writes it."""
    d = load_deployment(dep)
    system, name, typed = build(d.spec, d.system, d.params)
    k = Kernel(system)
    Trace(d.spec, name, typed, merge_logs([str(p) for p in logs]), engine="run",
          initial=initial_json(k, k.initial_states()[0][0])).write(out)
    return out


def saved(db: Path, instance: str) -> dict[str, Any] | None:
    """The fields of `instance` committed to a node's store (read beside the node): a
    step is durable once they show here; the node's state shows it before its save."""
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT data FROM fields WHERE instance = ?", (instance,)).fetchone()
    except sqlite3.OperationalError:                   # the node is creating its tables
        return None
    finally:
        conn.close()
    return None if row is None else json.loads(row[0])


@contextlib.contextmanager
def write_locked(db: Path, system: str):
    """Hold the write lock of the SQLite store of a node (named as the file) of `system`: the
    node's next `save` waits until the lock is released (as on a slow disk).  Tests use it to
    stop a node in the middle of a step, where they want it, deterministically."""
    Store(db, system=system, node=db.stem).close()    # the node opens it as it finds it
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        conn.close()


def child_node(run_pid: int, name: str) -> int | None:
    """The pid of the `assay node ... --name NAME` process `assay run` started."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == run_pid and b"node" in argv and name.encode() in argv:
            return int(d.name)
    return None
