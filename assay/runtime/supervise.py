"""`assay run --deploy`: start every node of a deployment as a local process, restart the ones
that die (bounded retries with backoff), stop them all when the system has nothing left to do
(every node idle, no message unacknowledged, three polls in a row) or when time is up, and
merge their recorded steps into one trace.

Client nodes (hosting only external instances) are not started: a program becomes each with
`assay.runtime.connect`.  While a deployment has client nodes, nothing left to do is not the
end: the run waits until every client node has attached (its address answers, or a node has
had messages from it) and left again (it no longer does), and only then stops at quiescence —
or at `--for`, or Ctrl-C."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from assay.runtime.deploy import Deployment
from assay.runtime.private import private_open
from assay.runtime.steplog import merge_logs
from assay.runtime.tcp import control
from assay.runtime.wire import WireError


@dataclass
class DeployReport:
    logs: str                                    # the directory of the nodes' logs
    seconds: float
    ended: str                                   # quiescent | time | stopped | failed
    restarts: dict[str, int]
    final: dict[str, dict[str, Any] | None]      # None: the node did not answer
    violations: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)
    violation_count: int = 0                     # all of them (each node lists its first 20)
    # ended "failed": the node that could not be (re)started, its exit code and its last
    # words (the error lines of its log)
    failed: tuple[str, int, str] | None = None

    @property
    def exit_code(self) -> int:
        if self.failed is not None and self.failed[1] == 2:
            return 2                             # a node's configuration or usage error
        return 1 if self.violations or self.ended == "failed" else 0


UP_WAIT = 30.0      # seconds: the longest a `--for` window waits for every node to answer


async def supervise(dep_path: str, dep: Deployment, duration: float | None,
                    state_dir: str | None, monitor: str, time_unit: float,
                    max_restarts: int = 5, skip: frozenset[str] = frozenset(),
                    durability: str = "machine", fresh: bool = False,
                    store_db: str | None = None) -> DeployReport:
    """Run every node of `dep` but those in `skip` (client nodes: a program that calls
    `assay.runtime.connect` starts them); `fresh`: each starts over in `state_dir` (its
    first start only: a restarted node resumes what it saved since); `store_db`: the
    directory where each node keeps its instances' external stores (`<node>.db`)."""
    from assay.runtime.extstore import node_store_path

    logs = tempfile.mkdtemp(prefix="assay-run-")
    state_dir = state_dir or tempfile.mkdtemp(prefix="assay-state-")

    async def start(name: str, fresh: bool = False) -> asyncio.subprocess.Process:
        errlog = private_open(os.path.join(logs, f"{name}.log"), "a")    # the child's
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "assay.cli", "node", dep_path, "--name", name, "--supervised",
            "--monitor", monitor, "--state-dir", state_dir, "--time-unit", str(time_unit),
            "--trace-out", os.path.join(logs, f"{name}.jsonl"), "--durability", durability,
            *(["--fresh"] if fresh else []),
            *(["--store-db", node_store_path(store_db, name)] if store_db else []),
            stdin=asyncio.subprocess.DEVNULL, stdout=errlog, stderr=errlog)

    nodes = {n: s for n, s in dep.nodes.items() if n not in skip}
    interrupted = asyncio.Event()       # Ctrl-C or SIGTERM: stop every node, restart none
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, interrupted.set)
    procs = {n: await start(n, fresh) for n in nodes}
    restarts = dict.fromkeys(nodes, 0)
    clients = {n: dep.nodes[n] for n in skip if n in dep.nodes}
    attached: set[str] = set()          # client nodes that have answered at least once
    t0 = time.perf_counter()
    # `--for` counts from when every node has answered (a loaded machine may take seconds to
    # start a node: a window counted from their launch could end before any had run); a
    # deployment whose nodes do not all answer within UP_WAIT starts its window then
    up_at: float | None = None
    quiet = 0
    ended = "quiescent"
    statuses: dict[str, dict[str, Any]] = {}
    failed: tuple[str, int, str] | None = None
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(interrupted.wait(), 0.2)
        if interrupted.is_set():
            ended = "stopped"
            break
        for n, p in list(procs.items()):
            if p.returncode is not None:              # died: restart it, with backoff
                if p.returncode == 2 or restarts[n] >= max_restarts:
                    # exit 2 is a configuration error (a port in use, say): restarting the
                    # node would not help
                    ended = "failed"
                    failed = (n, p.returncode, _last_error(os.path.join(logs, f"{n}.log")))
                    break
                restarts[n] += 1
                await asyncio.sleep(min(0.1 * 2 ** restarts[n], 2.0))
                procs[n] = await start(n)
        if ended == "failed":
            break
        try:
            statuses = {n: await control(s.host, s.port, dep.secret, {"t": "status"}, 2.0,
                                         node=n) or {} for n, s in nodes.items()}
            idle = all(not st.get("busy") and not st.get("unacked")
                       for st in statuses.values())
            if up_at is None:
                up_at = time.perf_counter()
        except (TimeoutError, OSError, ConnectionError, WireError):
            idle = False
        if clients:
            up = await _client_statuses(dep, clients)
            attached |= up.keys()
            # one that attached and left between two polls: a node has had messages from it
            attached |= {p for st in statuses.values() for p in st.get("peers", ())
                         if p in clients}
            # a client may send more while it is attached; one that never came has not begun
            idle = idle and not up and attached == clients.keys()
        quiet = quiet + 1 if idle else 0
        if quiet >= 3:
            break
        begun = up_at if up_at is not None else t0 + UP_WAIT
        if duration is not None and time.perf_counter() - begun >= duration:
            ended = "time"
            break
    # the end: each node's last status and its instances' states, asked again with longer
    # timeouts when a loaded node is slow to answer (None: it never answered)
    final: dict[str, dict[str, Any] | None] = {}
    for n, s in nodes.items():
        if ended != "failed":
            st = await _ask(s, dep.secret, {"t": "status"})
            if st is not None:
                statuses[n] = st
        for inst in s.instances:
            reply = await _ask(s, dep.secret, {"t": "state", "instance": inst})
            # (an `error` reply — a state too large for one frame, say — is no state: it was
            # shown as one without fields)
            final[inst] = reply.get("fields") if reply and reply.get("t") == "state" else None
    violations = [v for st in statuses.values() for v in st.get("violations", [])]
    count = sum(int(st.get("violation_count", 0)) for st in statuses.values())
    for s in nodes.values():
        with contextlib.suppress(TimeoutError, OSError, ConnectionError, WireError):
            await control(s.host, s.port, dep.secret, {"t": "stop"}, 2.0, node=s.name)
    for p in procs.values():
        try:
            await asyncio.wait_for(p.wait(), 5.0)
        except TimeoutError:
            p.kill()
            await p.wait()
    events = merge_logs([os.path.join(logs, f"{n}.jsonl") for n in nodes])
    return DeployReport(logs, time.perf_counter() - t0, ended, restarts, final, violations, events,
                        max(count, len(violations)), failed)


async def _ask(s: Any, secret: bytes, frame: dict[str, Any]) -> dict[str, Any] | None:
    """A control request to node `s`, tried three times (timeouts of 2, 4 and 8 s) before it
    counts as unanswered (None): a node on a loaded machine may be slow to answer."""
    for timeout in (2.0, 4.0, 8.0):
        try:
            return await control(s.host, s.port, secret, frame, timeout, node=s.name) or {}
        except (TimeoutError, OSError, ConnectionError, WireError):
            await asyncio.sleep(0.1)
    return None


async def _client_statuses(dep: Deployment, clients: dict[str, Any]) -> dict[str, Any]:
    """The client nodes attached now (their address answers a status request)."""
    up = {}
    for n, s in clients.items():
        with contextlib.suppress(TimeoutError, OSError, ConnectionError, WireError,
                                 asyncio.IncompleteReadError):
            up[n] = await control(s.host, s.port, dep.secret, {"t": "status"}, 1.0,
                                  node=n) or {}
    return up


def _last_error(path: str) -> str:
    """The last `error:` line of a node's log and the notes after it (or its last line)."""
    try:
        with open(path, errors="replace") as f:
            lines = [ln.rstrip() for ln in f if ln.strip()]
    except OSError:
        return ""
    at = [i for i, ln in enumerate(lines) if "error:" in ln]
    if not at:
        return lines[-1] if lines else ""
    return "\n".join(lines[at[-1]:at[-1] + 6])
