"""The one step semantics every engine calls.

A `Kernel` is compiled once from a `System`.  A global state is a plain tuple

    (locals, net)

where `locals[i]` is the interned id of instance i's local state (the tuple of its field
values) and `net` is the network (see `network.py`) over interned envelope ids.  Tuples of small
ints make states cheap to hash, compare and copy; later issues append components (protocol
positions, crashed set, fault budget) without changing what the first two mean.

A component's step depends only on (instance, local state, event), so its outcome — new local
state id, envelopes sent, violations — is memoised and shared by every global state with that
local state.  `successors` is the checker's hot path; `step` is the same computation for one
named event, for the simulator, replay and the runtime.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from itertools import product
from typing import Any

from assay.errors import SpecError, TraceError, traceback_location
from assay.kernel.events import Deliver, Envelope, Event, Fire
from assay.kernel.exec import Runner, StateView, Wiring
from assay.kernel.network import Duplicating, Fifo, Unordered
from assay.kernel.violation import Violation
from assay.model.component import ComponentInfo, component_info
from assay.model.message import Message, message_from_json
from assay.model.system import System
from assay.model.types import Peer, admits_any, canonical, to_json
from assay.model.validate import validate

State = tuple[Any, ...]
Outcome = tuple[int, tuple[int, ...], tuple[Violation, ...]]   # new local id, sends, violations
_NOOP = object()     # a memoised delivery that changes nothing (same local state, no sends)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did: the next global state, the envelopes it sent, its violations."""

    state: State
    sends: tuple[Envelope, ...]
    violations: tuple[Violation, ...]


@dataclass(frozen=True, slots=True)
class Change:
    instance: str
    field: str
    old: Any
    new: Any


class _LocalTable:
    """Interns the local states of one component class: values tuple <-> small int.

    Python equality merges values of different types (`1 == True`, an IntEnum and its int);
    where a field's type admits such mixtures (a bare `tuple` or `frozenset`), states are
    keyed by their canonical bytes instead, so that no two different states share an id.
    """

    __slots__ = ("values", "ids", "exact")

    def __init__(self, exact: bool) -> None:
        self.values: list[tuple[Any, ...]] = []
        self.ids: dict[Any, int] = {}
        self.exact = exact

    def intern(self, values: tuple[Any, ...]) -> int:
        key = canonical(values) if self.exact else values
        i = self.ids.get(key)
        if i is None:
            i = self.ids[key] = len(self.values)
            self.values.append(values)
        return i


class _Instance:
    __slots__ = ("index", "name", "info", "runner", "table", "amemo", "views", "cls")

    def __init__(self, index: int, name: str, info: ComponentInfo, runner: Runner,
                 table: _LocalTable) -> None:
        self.index = index
        self.name = name
        self.info = info
        self.cls = info.cls
        self.runner = runner
        self.table = table
        self.amemo: dict[int, tuple[tuple[int, Outcome], ...]] = {}
        self.views: dict[int, StateView] = {}


class Kernel:
    """The compiled semantics of one system."""

    def __init__(self, system: System) -> None:
        validate(system)
        self.system = system
        names = list(system.instances)
        self.index = {n: i for i, n in enumerate(names)}
        tables: dict[type, _LocalTable] = {}
        wirings: dict[str, dict[str, list[tuple[str, str]]]] = {
            n: {p: [] for p in component_info(c).ports} for n, c in system.instances.items()}
        for c in system.connections:
            wirings[c.a.instance][c.a.port].append((c.b.instance, c.b.port))
            wirings[c.b.instance][c.b.port].append((c.a.instance, c.a.port))
        self.instances: list[_Instance] = []
        for i, (name, cls) in enumerate(system.instances.items()):
            info = component_info(cls)
            w = {p: Wiring(p, info.ports[p].many, tuple(sorted(peers)),
                           frozenset(Peer(x) for x, _ in peers))
                 for p, peers in wirings[name].items()}
            table = tables.get(cls)
            if table is None:
                table = tables[cls] = _LocalTable(any(admits_any(t) for t in info.types))
            self.instances.append(_Instance(i, name, info, Runner(name, info, w), table))
        self.wirings = wirings
        # memoised local steps: deliveries by (local id << 32 | envelope id) (the envelope
        # fixes the instance), actions per instance by local id
        self._dmemo: dict[int, Outcome | object] = {}
        self._amemos = [inst.amemo for inst in self.instances]
        self._views = [inst.views for inst in self.instances]
        self._class_indices: dict[type | None, tuple[int, ...]] = {}

        # links: one per direction of each connection (FIFO queues, canonical order)
        links = sorted({(a, ap, b, bp) for a, ports in wirings.items()
                        for ap, peers in ports.items() for b, bp in peers})
        self.link_index = {lk: i for i, lk in enumerate(links)}
        self.links = links

        self.envs: list[Envelope] = []
        self.env_ids: dict[Envelope, int] = {}
        self.env_dst: list[int] = []
        self.env_link: list[int] = []
        self.slots: list[tuple[int, int, bool, Any]] = []      # (inst, action index, has_arg, arg)
        self.slot_ids: dict[tuple[int, int, bool, Any], int] = {}

        if system.network == "unordered":
            self.network: Any = Unordered()
        elif system.network == "duplicating":
            self.network = Duplicating()
        else:
            self.network = Fifo(len(links), self.env_link)
        self.messages = _known_messages(system)
        self.properties = list(system.properties)
        # property verdicts by local states, for evaluations that did not read the network
        self._property_memo: dict[tuple[int, ...], tuple[Violation, ...]] = {}
        self.terminals = list(system.terminals)

    # --- interning ----------------------------------------------------------------------------

    def _env_id(self, env: Envelope) -> int:
        i = self.env_ids.get(env)
        if i is None:
            i = self.env_ids[env] = len(self.envs)
            self.envs.append(env)
            self.env_dst.append(self.index[env.dst])
            self.env_link.append(self.link_index[(env.src, env.src_port, env.dst, env.dst_port)])
        return i

    def _slot_id(self, key: tuple[int, int, bool, Any]) -> int:
        i = self.slot_ids.get(key)
        if i is None:
            i = self.slot_ids[key] = len(self.slots)
            self.slots.append(key)
        return i

    # --- initial states -----------------------------------------------------------------------

    def initial_states(self) -> list[tuple[State, tuple[Violation, ...]]]:
        """Every initial global state, with the invariant violations of its instances."""
        per_instance = []
        for inst in self.instances:
            vals = inst.info.initial_values(self.system.overrides.get(inst.name))
            per_instance.append([inst.table.intern(v) for v in vals])
        out = []
        net = self.network.initial()
        for combo in product(*per_instance):
            violations: list[Violation] = []
            for inst, lid in zip(self.instances, combo):
                violations += inst.runner.invariant_violations(
                    inst.table.values[lid], f"{inst.name} (initial state)")
            out.append(((tuple(combo), net), tuple(violations)))
        return out

    # --- the memoised local step --------------------------------------------------------------

    def _deliver_outcome(self, dst: int, lid: int, env_id: int) -> Outcome:
        inst = self.instances[dst]
        env = self.envs[env_id]
        msg = env.message.with_sender(Peer(env.src))
        values = inst.table.values[lid]
        h = inst.info.handler_for(env.dst_port, type(msg))
        if h is None:
            o: Outcome = (lid, (), (Violation(
                "unhandled", env.src,
                f"{env.src} sent {msg!r} to {inst.name} on port {env.dst_port!r}, where "
                f"{inst.info.cls.__name__} has no handler for {type(msg).__name__}"),))
        else:
            new, sends, violations = inst.runner.run_handler(values, h, msg)
            o = (inst.table.intern(new), self._sends(inst, sends), tuple(violations))
        self._dmemo[lid << 32 | env_id] = _NOOP if o == (lid, (), ()) else o
        return o

    def _action_outcomes(self, inst: _Instance, lid: int) -> tuple[tuple[int, Outcome], ...]:
        values = inst.table.values[lid]
        out = []
        for ai, act in enumerate(inst.info.actions):
            for has_arg, arg in inst.runner.enabled(values, act):
                new, sends, violations = inst.runner.run_action(values, act, has_arg, arg)
                slot = self._slot_id((inst.index, ai, has_arg, arg))
                out.append((slot, (inst.table.intern(new), self._sends(inst, sends),
                                   tuple(violations))))
        res = tuple(out)
        inst.amemo[lid] = res
        return res

    def _sends(self, inst: _Instance, sends: list) -> tuple[int, ...]:
        """Intern a handler's sends.  Only the order on each link can matter (fifo), so the
        envelopes are put in a canonical order first — a handler that loops over a set of
        peers then gives the same ids, and the same exploration, under any PYTHONHASHSEED."""
        envs = [Envelope(inst.name, s.port, s.dst, s.dst_port, s.message) for s in sends]
        if len(envs) > 1:
            if isinstance(self.network, Fifo):
                envs.sort(key=lambda e: (e.src_port, e.dst, e.dst_port))   # stable per link
            else:
                envs.sort(key=lambda e: canonical((e.src_port, e.dst, e.dst_port, e.message)))
        return tuple(self._env_id(e) for e in envs)

    # --- successors: the checker's hot path ---------------------------------------------------

    def successors(self, state: State) -> tuple[list[tuple[int, State, tuple[Violation, ...]]],
                                                  int]:
        """Every enabled event of `state` with its next state and violations.

        Returns (steps, enabled) where `enabled` counts enabled events including those that
        change nothing (self-loops, left out of `steps` unless they report a violation).
        Events are ints: an envelope id (>= 0) to deliver, or ~slot for an action.
        """
        locals_, net = state
        network = self.network
        consumes = network.consumes
        deliver, add = network.deliver, network.add
        env_dst = self.env_dst
        dmemo = self._dmemo
        noop = _NOOP
        out = []
        enabled = 0
        for env in network.deliverable(net):
            enabled += 1
            dst = env_dst[env]
            lid = locals_[dst]
            o = dmemo.get(lid << 32 | env)
            if o is None:
                o = self._deliver_outcome(dst, lid, env)
            if o is noop:                          # changes nothing but the network, if that
                if consumes:
                    out.append((env, (locals_, deliver(net, env, ())), ()))
                continue
            new_lid, sends, viol = o
            new_net = deliver(net, env, sends) if sends or consumes else net
            if new_lid == lid:
                if new_net is net and not viol:
                    continue
                new_locals = locals_
            else:
                new_locals = locals_[:dst] + (new_lid,) + locals_[dst + 1:]
            out.append((env, (new_locals, new_net), viol))
        amemos = self._amemos
        for i, lid in enumerate(locals_):
            acts = amemos[i].get(lid)
            if acts is None:
                acts = self._action_outcomes(self.instances[i], lid)
            for slot, (new_lid, sends, viol) in acts:
                enabled += 1
                new_net = add(net, sends) if sends else net
                if new_lid == lid:
                    if new_net is net and not viol:
                        continue
                    new_locals = locals_
                else:
                    new_locals = locals_[:i] + (new_lid,) + locals_[i + 1:]
                out.append((~slot, (new_locals, new_net), viol))
        return out, enabled

    # --- one named step: simulator, replay, runtime -------------------------------------------

    def enabled_events(self, state: State) -> list[int]:
        """The enabled events of `state` (ints, in a deterministic order), self-loops included."""
        locals_, net = state
        out = list(self.network.deliverable(net))
        for i, lid in enumerate(locals_):
            inst = self.instances[i]
            acts = inst.amemo.get(lid)
            if acts is None:
                acts = self._action_outcomes(inst, lid)
            out.extend(~slot for slot, _ in acts)
        return out

    def step(self, state: State, event: int | Event) -> StepResult:
        """Apply one enabled event: pure, deterministic, the same in every engine."""
        ev = self.event_id(state, event) if not isinstance(event, int) else event
        locals_, net = state
        if ev >= 0:
            if not self.network.contains(net, ev) or ev not in set(
                    self.network.deliverable(net)):
                raise TraceError(f"{self.describe(ev)}: the message is not deliverable here")
            dst = self.env_dst[ev]
            inst = self.instances[dst]
            lid = locals_[dst]
            o = self._dmemo.get(lid << 32 | ev) or self._deliver_outcome(dst, lid, ev)
            new_lid, sends, viol = (lid, (), ()) if o is _NOOP else o  # type: ignore[misc]
            new_net = self.network.deliver(net, ev, sends)
            i = dst
        else:
            slot = ~ev
            i = self.slots[slot][0]
            inst = self.instances[i]
            lid = locals_[i]
            acts = inst.amemo.get(lid)
            if acts is None:
                acts = self._action_outcomes(inst, lid)
            for s, o in acts:  # noqa: B007 - the match is used after the loop
                if s == slot:
                    break
            else:
                raise TraceError(f"{self.describe(ev)}: the action is not enabled here")
            new_lid, sends, viol = o
            new_net = self.network.add(net, sends)
        new_locals = locals_[:i] + (new_lid,) + locals_[i + 1:]
        return StepResult((new_locals, new_net), tuple(self.envs[s] for s in sends), viol)

    # --- properties and final states ----------------------------------------------------------

    def property_violations(self, state: State) -> tuple[Violation, ...]:
        """The `always` properties that `state` breaks.  A property that raises is a spec error."""
        if not self.properties:
            return ()
        memo = self._property_memo
        known = memo.get(state[0])
        if known is not None:
            return known
        g = World(self, state)
        out = []
        for p in self.properties:
            try:
                ok = p.fn(g)
            except Exception as e:
                raise SpecError(f"property {p.name!r} raised {type(e).__name__}: {e}",
                                traceback_location(sys.exc_info()[2]) or p.location,
                                ["a property must be total: it is evaluated on every reachable "
                                 "state, including initial ones",
                                 f"in state: {self.render_state(state)}"]) from None
            if not ok:
                out.append(Violation("property", p.name,
                                     f"property {p.name!r} does not hold", name=p.name,
                                     location=p.location))
        res = tuple(out)
        if not g._net_read:         # a function of the local states alone: share the verdict
            memo[state[0]] = res
        return res

    def is_terminal(self, state: State) -> bool:
        if not self.terminals:
            return False
        g = World(self, state)
        for pred, loc in self.terminals:
            try:
                if pred(g):
                    return True
            except Exception as e:
                raise SpecError(f"terminal predicate raised {type(e).__name__}: {e}",
                                traceback_location(sys.exc_info()[2]) or loc) from None
        return False

    def deadlock(self) -> Violation:
        return Violation("deadlock", self.system.name,
                         "deadlock: no event is enabled and the state is not declared terminal",
                         name="deadlock")

    # --- names, views, fingerprints -----------------------------------------------------------

    def view(self, i: int, lid: int) -> StateView:
        inst = self.instances[i]
        v = inst.views.get(lid)
        if v is None:
            v = inst.views[lid] = inst.runner.view(inst.table.values[lid])
        return v

    def local_values(self, state: State, name: str) -> dict[str, Any]:
        inst = self.instances[self.index[name]]
        return dict(zip(inst.info.fields, inst.table.values[state[0][inst.index]]))

    def in_flight(self, state: State) -> list[Envelope]:
        return [self.envs[e] for e in self.network.in_flight(state[1])]

    def event(self, ev: int) -> Event:
        """The named form of an event id."""
        if ev >= 0:
            return Deliver(self.envs[ev])
        i, ai, has_arg, arg = self.slots[~ev]
        return Fire(self.instances[i].name, self.instances[i].info.actions[ai].name, arg, has_arg)

    def describe(self, ev: int) -> str:
        return str(self.event(ev))

    def event_id(self, state: State, event: Event | dict[str, Any]) -> int:
        """The id of a named event (or its JSON form) in `state`; `TraceError` if unknown."""
        if isinstance(event, dict):
            event = self.event_from_json(event)
        if isinstance(event, Deliver):
            e = event.envelope
            i = self.env_ids.get(e)
            if i is None or not self.network.contains(state[1], i):
                raise TraceError(f"{event}: no such message is in flight")
            return i
        i = self.index.get(event.instance)
        if i is None:
            raise TraceError(f"{event}: there is no instance {event.instance!r}")
        acts = self.instances[i].info.actions
        ai = next((k for k, a in enumerate(acts) if a.name == event.action), None)
        if ai is None:
            raise TraceError(f"{event}: {event.instance} has no action {event.action!r}")
        inst = self.instances[i]
        lid = state[0][i]
        acts_now = inst.amemo.get(lid)
        if acts_now is None:
            acts_now = self._action_outcomes(inst, lid)
        want = to_json(event.arg) if event.has_arg else None
        for slot, _ in acts_now:
            _, sai, has_arg, arg = self.slots[slot]
            if sai == ai and has_arg == event.has_arg and (
                    not has_arg or arg == event.arg or to_json(arg) == want):
                break
        else:
            raise TraceError(f"{event}: the action is not enabled in this state")
        return ~slot

    def event_from_json(self, j: dict[str, Any]) -> Event:
        """Decode an event of a trace file (names only, never code)."""
        try:
            kind = j["kind"]
            if kind == "deliver":
                dst, src = j["to"], j["from"]
                for n in (dst, src):
                    if n not in self.index:
                        raise ValueError(f"there is no instance {n!r}")
                msg = message_from_json(j["message"], self.messages)
                port = j["port"]
                src_port = j.get("from_port")
                if src_port is None:
                    cands = [p for (a, p, b, bp) in self.links
                             if a == src and b == dst and bp == port]
                    if len(cands) != 1:
                        raise ValueError(f"cannot tell which port of {src} sent it")
                    src_port = cands[0]
                return Deliver(Envelope(src, src_port, dst, port, msg))
            if kind == "action":
                name = j["instance"]
                if name not in self.index:
                    raise ValueError(f"there is no instance {name!r}")
                inst = self.instances[self.index[name]]
                act = next((a for a in inst.info.actions if a.name == j["action"]), None)
                if act is None:
                    raise ValueError(f"{name} has no action {j['action']!r}")
                if act.over is None:
                    return Fire(name, act.name)
                arg = _decode_arg(j.get("arg"), act.over, inst)
                return Fire(name, act.name, arg, True)
            raise ValueError(f"unknown event kind {kind!r}")
        except (KeyError, TypeError, ValueError) as e:
            raise TraceError(f"event {j!r} does not fit the spec: {e}") from None

    def fingerprint(self, state: State) -> str:
        """A 16-hex-digit key of the state, the same in every process (no `hash()`)."""
        locals_, net = state
        h = hashlib.blake2b(digest_size=8)
        for inst, lid in zip(self.instances, locals_):
            h.update(canonical(inst.table.values[lid]))
        if isinstance(self.network, Fifo):
            for q in net:
                h.update(b"q")
                for e in q:
                    h.update(self._env_bytes(e))
        else:
            h.update(b"n")
            for b in sorted(self._env_bytes(e) for e in self.network.in_flight(net)):
                h.update(b)
        return h.hexdigest()

    def _env_bytes(self, e: int) -> bytes:
        env = self.envs[e]
        return canonical((env.src, env.src_port, env.dst, env.dst_port, env.message))

    def changes(self, before: State, after: State) -> list[Change]:
        """Which fields of which instances differ between two states, in instance order."""
        out = []
        for inst, a, b in zip(self.instances, before[0], after[0]):
            if a == b:
                continue
            va, vb = inst.table.values[a], inst.table.values[b]
            for f, x, y in zip(inst.info.fields, va, vb):
                if x != y:
                    out.append(Change(inst.name, f, x, y))
        return out

    def render_state(self, state: State) -> str:
        parts = []
        for inst, lid in zip(self.instances, state[0]):
            parts.append(repr(self.view(inst.index, lid)))
        flight = self.in_flight(state)
        if flight:
            parts.append("in flight: " + "; ".join(str(e) for e in flight))
        return ", ".join(parts)


class World:
    """The global state as a property sees it: `g["tm"]`, `g.instances(ResourceManager)`."""

    __slots__ = ("_k", "_state", "_net_read")

    def __init__(self, kernel: Kernel, state: State) -> None:
        self._k = kernel
        self._state = state
        self._net_read = False

    def __getitem__(self, name: str) -> StateView:
        i = self._k.index.get(name)
        if i is None:
            raise KeyError(f"no instance named {name!r}")
        return self._k.view(i, self._state[0][i])

    def instances(self, cls: type | None = None) -> list[StateView]:
        """The state of every instance (of `cls`, if given), in the order they were added."""
        k = self._k
        idx = k._class_indices.get(cls)
        if idx is None:
            idx = k._class_indices[cls] = tuple(
                i for i, inst in enumerate(k.instances) if cls is None or issubclass(inst.cls, cls))
        locals_ = self._state[0]
        views = k._views
        out = []
        for i in idx:
            lid = locals_[i]
            v = views[i].get(lid)
            out.append(k.view(i, lid) if v is None else v)
        return out

    def in_flight(self, mtype: type | None = None) -> list[Envelope]:
        """The messages in the network (of type `mtype`, if given)."""
        self._net_read = True
        return [e for e in self._k.in_flight(self._state)
                if mtype is None or isinstance(e.message, mtype)]

    def __repr__(self) -> str:
        return f"<World {self._k.render_state(self._state)}>"


def _known_messages(system: System) -> dict[str, type[Message]]:
    """Message classes a trace may name, by name: those the components handle, then those of
    the modules that define the components, then any other (first come, first kept)."""
    out: dict[str, type[Message]] = {}
    for cls in system.instances.values():
        for h in component_info(cls).handlers.values():
            out.setdefault(h.message.__name__, h.message)
    modules = {c.__module__ for c in system.instances.values()}
    everything: list[type[Message]] = []
    stack = list(Message.__subclasses__())
    while stack:
        c = stack.pop()
        stack.extend(c.__subclasses__())
        everything.append(c)
    for c in sorted(everything, key=lambda c: c.__module__ not in modules):
        out.setdefault(c.__name__, c)
    return out


def _decode_arg(j: Any, over: Any, inst: _Instance) -> Any:
    """The value of an action's parameter from its JSON form (matched on the JSON form when
    the domain depends on the state)."""
    if callable(over):
        return _from_json_like(j)
    for v in over:
        if to_json(v) == j:
            return v
    raise ValueError(f"{j!r} is not in the domain of the action")


def _from_json_like(j: Any) -> Any:
    if isinstance(j, list):
        return tuple(_from_json_like(x) for x in j)
    return j
