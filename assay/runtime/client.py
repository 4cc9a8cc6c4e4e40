"""The client API: drive a system's external instances from ordinary Python code.

    async with assay.runtime.connect("specs/account_service.py") as c:     # in this process
        reply = await c.request("bank", c.types.Deposit(5))                 # Done(balance=5)
        await c.state("bank")                                               # {"balance": 5}

    async with assay.runtime.connect("deploy.toml") as c:                   # over TCP
        ...

A spec marks the instances that stand for the outside world with `s.external(...)`; in the
model they are ordinary components whose actions are what the outside may do.  A client plays
one of them: `send(to, m)` fires the action of the client's model that sends exactly `m` to
`to` — a step of the kernel like any other, monitored, recorded, replayable — and a message the
model could not send at this point is refused with `NotAllowed`, so the deployment never sees
what `check` did not explore.  Messages the system sends to the client are handled by the
model's handlers (their contracts and protocol are monitored) and handed to `request` or
`receive`.

With a spec, the whole system runs in this process on asyncio (the client's event loop); with
a deployment file, the client becomes the node that hosts its instance (the deployment lists
it, with the address the others reach it at) and talks to the other nodes over authenticated
TCP links — `assay run --deploy` leaves such client nodes for clients to start.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from assay.errors import UsageError
from assay.kernel.events import Envelope, Fire
from assay.kernel.kernel import Kernel, LocalChoice
from assay.model.message import Message, message_from_json
from assay.runtime.node import Node, Outcome


class ClientError(Exception):
    """Something a client asked for cannot be done; the message says why."""


class UnknownInstance(ClientError, LookupError):
    """The system has no instance of that name."""


class NotConnected(ClientError):
    """The client's instance has no port connected to that instance."""


class NotAccepted(ClientError, TypeError):
    """The receiving port does not accept messages of that type."""


class NotAllowed(ClientError):
    """The client's model has no enabled action that sends this message now."""


class Rejected(ClientError):
    """The monitor rejected the step (a contract or protocol violation); nothing was sent."""


class Unreachable(ClientError, ConnectionError):
    """A node did not answer (or acknowledge a message) in time."""


class NoReply(ClientError, TimeoutError):
    """No message came back in time."""


def choose_action(node: Node, me: str, to: str, message: Message) -> Fire:
    """The action of `me` (hosted by `node`) that, enabled now, sends exactly `message` to
    `to` and nothing else; the errors above say why there is none."""
    kernel = node.kernel
    if to not in kernel.index:
        raise UnknownInstance(f"the system has no instance {to!r} "
                              f"(instances: {', '.join(sorted(kernel.index))})")
    ports = [(port, peer_port) for port, peers in kernel.wirings[me].items()
             for peer, peer_port in peers if peer == to]
    if not ports:
        reach = sorted({peer for peers in kernel.wirings[me].values() for peer, _ in peers})
        raise NotConnected(f"{me} has no port connected to {to} (it reaches: "
                           f"{', '.join(reach) or 'nothing'})")
    tname = type(message).__name__
    accepted = {}
    for _, peer_port in ports:
        accepted.update(kernel.receivable(to, peer_port))
    cls = accepted.get(tname)
    if not isinstance(message, Message) or cls is None:
        raise NotAccepted(f"{to} does not accept {tname} from {me} "
                          f"(it accepts: {', '.join(sorted(accepted)) or 'nothing'})")
    if type(message) is not cls:        # the same type from another import of the spec
        try:
            message = message_from_json(message.to_json(), {tname: cls})
        except (ValueError, TypeError, KeyError) as e:
            raise NotAccepted(f"{to} does not accept this {tname}: {e} (the spec's {tname} "
                              f"has fields: {', '.join(cls.__assay_fields__) or 'none'})"
                              ) from None
    # each way of an action that chooses is an action of its own
    enabled: list[tuple[Fire, Any]] = []
    for ev, step in kernel.local_actions(me, node.local[me]):
        if isinstance(step, LocalChoice):
            enabled.extend((replace(ev, choices=way.choices), way) for way in step.steps)
        else:
            enabled.append((ev, step))
    enabled.sort(key=lambda pair: Node.kernel_key(pair[0]))
    for ev, step in enabled:
        if len(step.sends) == 1 and step.sends[0].dst == to and step.sends[0].message == message:
            return ev
    could = [f"{ev} sends " + (", ".join(f"{e.message!r} to {e.dst}" for e in step.sends)
                               or "nothing") for ev, step in enabled]
    raise NotAllowed(f"{me}'s model has no action enabled now that sends {message!r} to {to}, "
                     "so the checked system never receives it here"
                     + (f"; enabled now: {'; '.join(could[:4])}"
                        + (f" (and {len(could) - 4} more)" if len(could) > 4 else "")
                        if could else "; no action of it is enabled now"))


class Client:
    """A connection to a running system, playing one external instance (see `connect`)."""

    def __init__(self, target: str | Path, *, system: str | None = None,
                 params: dict[str, Any] | None = None, instance: str | None = None,
                 monitor: str = "enforce", timeout: float = 5.0, state_dir: str | None = None,
                 trace_out: str | None = None, seed: int = 0, time_unit: float = 0.01) -> None:
        self._target = Path(target)
        self._system = system
        self._params = {k: str(v).lower() if isinstance(v, bool) else str(v)
                        for k, v in (params or {}).items()}
        self._want = instance
        self._monitor = monitor
        self.timeout = timeout
        self._state_dir = state_dir
        self._trace_out = trace_out
        self._seed = seed
        self._time_unit = time_unit
        self._arrived: deque[tuple[Envelope, Outcome]] = deque()
        self._signal = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None
        self._engine: Any = None
        self._system_name = system or "system"
        self.instance = ""
        self.types = SimpleNamespace()

    # --- starting and stopping --------------------------------------------------------------

    async def __aenter__(self) -> Client:
        if self._target.suffix == ".toml":
            await self._start_tcp()
        else:
            await self._start_local()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _pick(self, kernel: Kernel) -> str:
        externals = list(kernel.system.externals)
        if self._want is not None:
            if self._want not in kernel.index:
                raise UnknownInstance(f"the system has no instance {self._want!r}")
            if self._want not in externals:
                raise UsageError(f"instance {self._want!r} is not external; a client plays "
                                 "only instances the spec marks with s.external(...)",
                                 notes=[f"external instances: {', '.join(externals) or 'none'}"])
            return self._want
        if not externals:
            raise UsageError(f"{self._target} declares no external instance for a client to "
                             "play", notes=["mark one in the system: s.external(client)"])
        if len(externals) > 1:
            raise UsageError(f"several external instances ({', '.join(externals)}): choose "
                             "one with connect(..., instance=NAME)")
        return externals[0]

    def _types(self, kernel: Kernel) -> None:
        from assay.kernel.kernel import _known_messages

        self.types = SimpleNamespace(**_known_messages(kernel.system))

    def _delivered(self, env: Envelope, out: Outcome) -> None:
        if env.dst == self.instance:
            self._arrived.append((env, out))
            self._signal.set()

    async def _start_local(self) -> None:
        from assay.model.load import build
        from assay.runtime.local import LocalRuntime

        system, self._system_name, _ = build(self._target, self._system, self._params)
        kernel = Kernel(system)
        self.instance = self._pick(kernel)
        self._types(kernel)
        rt = LocalRuntime(kernel, self._monitor, self._seed, self._time_unit,
                          driven=(self.instance,))
        rt.on_delivered = self._delivered
        self._engine = rt
        self._task = asyncio.create_task(rt.run(serve=True))

    async def _start_tcp(self) -> None:
        from assay.runtime.deploy import load_deployment, placed
        from assay.runtime.tcp import TcpNode

        dep = load_deployment(self._target)
        from assay.model.load import build

        system, _, _ = build(dep.spec, dep.system, dep.params)
        dep = placed(dep, system)          # a composite placed whole: its instances
        kernel = Kernel(system)
        self.instance = self._pick(kernel)
        node_name = dep.placement.get(self.instance)
        if node_name is None:
            raise UsageError(f"the deployment places {self.instance!r} on no node",
                             notes=["add a client node: [nodes.client] host, port, "
                                    f"instances = [{self.instance!r}]"])
        others = [i for i in dep.nodes[node_name].instances if i not in system.externals]
        if others:
            raise UsageError(f"node {node_name!r} hosts {', '.join(others)} besides the "
                             f"client's {self.instance!r}; a client node hosts external "
                             "instances only")
        node = TcpNode(dep, node_name, self._monitor, self._state_dir, self._time_unit,
                       self._seed, self._trace_out, driven=(self.instance,))
        self._types(node.kernel)
        node.on_delivered = self._delivered
        self._engine = node
        started = asyncio.Event()
        self._task = asyncio.create_task(node.serve(signals=(), started=started))
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()              # raises why the node could not start

    async def close(self) -> None:
        """Stop this client's part of the system (in-process: the whole system)."""
        if self._task is None:
            return
        self._engine.stop()
        with contextlib.suppress(asyncio.CancelledError):
            self._report = await self._task
        self._task = None

    # --- talking to the system --------------------------------------------------------------

    def _check_running(self) -> None:
        if self._task is None:
            raise ClientError("the client is not connected: use `async with connect(...)`")
        if self._task.done():
            self._task.result()
            raise ClientError("the system this client ran has stopped")

    async def send(self, to: str, message: Message) -> None:
        """Send `message` to instance `to`, through the client's model (see the module
        docstring).  With a deployment, returns once `to`'s node acknowledged it, i.e. once
        the step that handles it is durable there; `Unreachable` after `timeout` seconds (the
        message stays queued and is resent when the node is back)."""
        await self._send(to, message)

    async def _send(self, to: str, message: Message) -> None:
        self._check_running()
        node: Node = self._engine.node
        action = choose_action(node, self.instance, to, message)
        if hasattr(self._engine, "fire_now"):
            out, frames = await self._engine.fire_now(action)
        else:
            out, frames = self._engine.fire(action), []
        if not out.applied:
            raise Rejected(f"the monitor rejected {action}: "
                           + "; ".join(v.message for v in out.violations))
        deadline = asyncio.get_running_loop().time() + self.timeout
        for link, key in frames:
            while key in link.unacked:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise Unreachable(f"node {link.peer} ({link.host}:{link.port}) did not "
                                      f"acknowledge {message!r} within {self.timeout} s; it "
                                      "stays queued and is resent when the node is back")
                self._engine.acked.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._engine.acked.wait(), min(left, 0.05))

    async def receive(self, timeout: float | None = None,
                      sender: str | None = None) -> Message:
        """The next message the system sent to the client (from `sender`, if given), once
        the client's model handled it; `NoReply` after `timeout` seconds."""
        self._check_running()
        limit = self.timeout if timeout is None else timeout
        deadline = asyncio.get_running_loop().time() + limit
        while True:
            for i, (env, out) in enumerate(self._arrived):
                if sender is None or env.src == sender:
                    del self._arrived[i]
                    if not out.applied:
                        raise Rejected(f"the monitor rejected {self.instance}'s handling of "
                                       f"{env.message!r} from {env.src}: "
                                       + "; ".join(v.message for v in out.violations))
                    return env.message
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise NoReply(f"no message for {self.instance}"
                              + (f" from {sender}" if sender else "")
                              + f" within {limit} s")
            self._signal.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._signal.wait(), left)
            self._check_running()

    async def request(self, to: str, message: Message, timeout: float | None = None,
                      failover: bool = True) -> Message:
        """Send `message` to `to` and return the next message `to` sends the client.

        With a deployment, when `to`'s node does not acknowledge in time and `failover` is
        true, the request follows a failover the model allows: the same message to another
        instance on another node, if the client's model has an action enabled now that sends
        exactly that (tried in name order, each with the full timeout); the answer is then
        the one that instance sends.  `Unreachable` when no such instance acknowledges.  The
        first message stays queued for `to` (the model allowed both sends: its handlers must
        take the late answer)."""
        try:
            await self._send(to, message)
        except Unreachable as unreachable:
            if not failover:
                raise
            to = await self._fail_over(to, message, unreachable)
        return await self.receive(timeout, sender=to)

    async def _fail_over(self, to: str, message: Message, unreachable: Unreachable) -> str:
        """The instance that took `message` after `to`'s node did not: see `request`."""
        dep = getattr(self._engine, "dep", None)
        if dep is None:                      # in process: every instance is reachable
            raise unreachable
        down = {dep.placement[to]}
        tried = []
        for alt in sorted(self._engine.kernel.index):
            node_name = dep.placement.get(alt)
            if alt in (to, self.instance) or node_name in down or node_name is None:
                continue
            try:
                choose_action(self._engine.node, self.instance, alt, message)
            except ClientError:
                continue                     # the model does not allow it: not a failover
            try:
                await self._send(alt, message)
                return alt
            except Unreachable:
                down.add(node_name)
                tried.append(alt)
        if tried:
            raise Unreachable(f"{unreachable}; failover to {', '.join(tried)} (which the "
                              "model allows) was not acknowledged either") from None
        raise unreachable

    async def state(self, name: str) -> dict[str, Any]:
        """The field values of instance `name` now (JSON form: enums by value, sets as
        sorted lists)."""
        from assay.model.types import to_json

        self._check_running()
        engine = self._engine
        kernel: Kernel = engine.kernel
        if name not in kernel.index:
            raise UnknownInstance(f"the system has no instance {name!r} "
                                  f"(instances: {', '.join(sorted(kernel.index))})")
        if name in engine.node.local:
            return {k: to_json(v) for k, v in engine.node.state(name).items()}
        from assay.runtime.tcp import control
        from assay.runtime.wire import WireError

        spec = engine.dep.nodes[engine.dep.placement[name]]
        try:
            reply = await control(spec.host, spec.port, engine.dep.secret,
                                  {"t": "state", "instance": name}, self.timeout,
                                  node=spec.name)
        except (OSError, TimeoutError, WireError, asyncio.IncompleteReadError) as e:
            raise Unreachable(f"node {spec.name} ({spec.host}:{spec.port}) did not answer: "
                              f"{e or type(e).__name__}") from None
        if not isinstance(reply, dict) or reply.get("t") != "state":
            raise ClientError(f"node {spec.name} answered {json.dumps(reply)[:200]}")
        return dict(reply["fields"])

    def trace(self) -> Any:
        """In-process: the run so far as a trace `assay replay` checks against the model."""
        from assay.kernel.trace import Trace, run_events

        engine = self._engine
        if not hasattr(engine, "events"):
            raise ClientError("over TCP, each node records its steps: pass trace_out=")
        initial, events = run_events(engine.kernel, list(engine.events))
        return Trace(str(self._target), self._system_name, self._params,
                     events, engine="run", initial=initial)


def connect(target: str | Path, **options: Any) -> Client:
    """A client of the system in `target`: a spec file (run in this process) or a deployment
    file (`.toml`: this process becomes the client's node).  Use it as `async with`.

    Options: `system`, `params` (the spec's), `instance` (the external instance to play, when
    the spec has several), `monitor` (enforce | log | off), `timeout` (seconds, for
    acknowledgements, replies and state queries), and over TCP `state_dir` and `trace_out`
    for the client's node.
    """
    return Client(target, **options)


__all__ = ["Client", "ClientError", "NoReply", "NotAccepted", "NotAllowed", "NotConnected",
           "Rejected", "Unreachable", "UnknownInstance", "connect", "choose_action"]

