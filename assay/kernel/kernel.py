"""The one step semantics every engine calls.

A `Kernel` is compiled once from a `System`.  A global state is a plain tuple

    (locals, net)                                    a system without timers or faults
    (locals, net, timers, down, budget, cut)         with timers, or with a fault budget

where `locals[i]` is the interned id of instance i's local state (the tuple of its field
values), `net` the network (see `network.py`) over interned envelope ids, `timers` the sorted
tuple of pending timer ids, `down` the bitmask of crashed instances, `budget` the faults left
(drop, dup, crash, partition; -1 is unlimited) and `cut` the bitmask of the instances a
partition has cut off (0: none).  Tuples of small ints make states cheap to hash, compare and
copy.  Bounded and lossy links (`System(capacity=, lossy=)`) add nothing to the state: what is
in flight on a link is in `net`, and a lossy link's losses need no budget.

A component's step depends only on (instance, local state, event), so its outcome — new local
state id, envelopes sent, violations, timer operations — is memoised and shared by every global
state with that local state.  `_apply` defines what every event does; `successors` is the
checker's hot path, a specialisation of "`_apply` every enabled event" for the short state
without bounded or lossy links, and `step` is `_apply` for one named event, for the
simulator, replay and the runtime.
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from itertools import product
from typing import Any

from assay.errors import (
    SpecError,
    TraceError,
    exit_error,
    not_exceptions,
    traceback_location,
    verdict,
)
from assay.kernel.determinism import (
    Sampler,
    enabled_difference,
    in_world,
    nondeterministic,
    outside,
    step_difference,
    twice,
)
from assay.kernel.events import (
    Crash,
    Deliver,
    Drop,
    Duplicate,
    Envelope,
    Event,
    Fire,
    Heal,
    Lose,
    Partition,
    Restart,
    TimerFire,
)
from assay.kernel.exec import Branched, Result, Runner, Send, StateView, TimerOp, Wiring
from assay.kernel.extended import successors_extended
from assay.kernel.faults import Faults
from assay.kernel.network import (
    Duplicating,
    Fifo,
    FifoChannels,
    Unordered,
    UnorderedChannels,
    split_sends,
)
from assay.kernel.reorder import prepare as prepare_orders
from assay.kernel.reorder import property_reads_order
from assay.kernel.violation import Violation
from assay.model.component import ActionInfo, Component, ComponentInfo, component_info
from assay.model.composite import combined_terminals
from assay.model.frozen import fast_init
from assay.model.message import Message
from assay.model.pool import (
    DORMANT,
    Retire,
    Retired,
    Spawn,
    decode_init,
    dormant_values,
    live_values,
)
from assay.model.show import show
from assay.model.system import System
from assay.model.types import Peer, admits_any, as_declared, canonical, exact_key, to_json
from assay.model.validate import validate

State = tuple[Any, ...]
# new local id, envelopes sent, violations, timer operations (set: timer id, cancel: ~id)
Outcome = tuple[int, tuple[int, ...], tuple[Violation, ...], tuple[int, ...]]
# the key under which `persisted` keeps the positions of sessions on persistent ports
SESSIONS = "@sessions"
_OPTIONAL_FAULTS = frozenset({"crash", "drop", "dup", "partition", "lose"})
_NOOP = object()     # a memoised delivery that changes nothing (same local state, no sends)
_NONE_PART = (1).to_bytes(4, "big") + canonical(None)   # None's part of a tuple's `canonical`


def _first_of(pair: tuple[Any, Any]) -> Any:
    return pair[0]

DEFERRED = object()  # a delivery a receive guard keeps out now: not enabled, stays in flight


class Branches:
    """The outcome of a step whose code chose (`self.choose`): one outcome per way the
    choices can go, with the values taken.  Each way is an event of its own,
    ("choice", base event, k, values): the base event with its k-th way."""

    __slots__ = ("outcomes", "choices")

    def __init__(self, outcomes: tuple[Outcome, ...],
                 choices: tuple[tuple[Any, ...], ...]) -> None:
        self.outcomes = outcomes
        self.choices = choices

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Branches) and self.outcomes == other.outcomes \
            and self.choices == other.choices

    __hash__ = None        # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did: the next global state, the envelopes it sent, its violations."""

    state: State
    sends: tuple[Envelope, ...]
    violations: tuple[Violation, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class LocalStep:
    """One step of one instance: its next local state id, what it sent (in order), what broke,
    and its timer operations: ("set", delay, message) or ("cancel", message or type, None)."""

    local: int
    sends: tuple[Envelope, ...]
    violations: tuple[Violation, ...]
    timer_ops: tuple[tuple[str, Any, Any], ...]
    choices: tuple[Any, ...] = ()      # what the step's `choose` calls took


@dataclass(frozen=True, slots=True)
class LocalChoice:
    """A local step whose code chose: one `LocalStep` per way its choices can go.  The
    runtime takes one at random (`pick`); the model checker explores them all."""

    steps: tuple[LocalStep, ...]

    def pick(self, rng: Any) -> LocalStep:
        return self.steps[rng.randrange(len(self.steps))]


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
    keyed by `exact_key` instead — the values themselves where they hold no such type (a
    bare frozenset of peers, say), else their canonical bytes — so that no two different
    states share an id.
    """

    __slots__ = ("values", "ids", "exact", "canon")

    def __init__(self, exact: bool) -> None:
        self.values: list[tuple[Any, ...]] = []
        self.ids: dict[Any, int] = {}
        self.exact = exact
        self.canon: dict[int, bytes] = {}

    def canonical(self, lid: int) -> bytes:
        """The canonical bytes of a local state (for fingerprints), computed once."""
        b = self.canon.get(lid)
        if b is None:
            b = self.canon[lid] = canonical(self.values[lid])
        return b

    def intern(self, values: tuple[Any, ...]) -> int:
        # one lookup (a tuple's hash is computed anew at each): the id a new state would take
        n = len(self.values)
        i: int = self.ids.setdefault(exact_key(values) if self.exact else values, n)
        if i == n:
            self.values.append(values)
        return i


def _fires(name: str, action: str, has_arg: bool, arg: Any) -> str:
    """How a determinism error names an action's step."""
    return f"{name} fires {action}" + (f"({show(arg)})" if has_arg else "")


class _Instance:
    __slots__ = ("index", "name", "info", "runner", "table", "amemo", "views", "cls", "bit",
                 "last_view")

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
        self.bit = 1 << index
        # (lid, view): the last view made where views are not kept (`Kernel._memo_once`),
        # for the other properties of the same state
        self.last_view: tuple[int, StateView] | None = None


class Kernel:
    """The compiled semantics of one system (with a fault budget, if given)."""

    def __init__(self, system: System, faults: Faults | None = None,
                 fairness: str | None = None, deadlock: bool = True) -> None:
        validate(system)
        self.system = system
        self.faults = faults
        # the memos engines keep for this kernel (the simulator's moves), which refer back to
        # it: held here, they die with it (a WeakKeyDictionary's values would keep it alive)
        self.engine_memos: dict[str, Any] = {}
        # False (`check --no-deadlock`, TLC's CHECK_DEADLOCK FALSE): a state with nothing
        # enabled is no violation; every state may be final
        self.check_deadlock = deadlock
        # the fairness of events no declaration covers: the system's, unless overridden
        self.fairness = fairness or system.fairness
        self._fair: dict[int, tuple[Any, int] | None] = {}
        names = list(system.instances)
        self.index = {n: i for i, n in enumerate(names)}
        tables: dict[type, _LocalTable] = {}
        wirings: dict[str, dict[str, list[tuple[str, str]]]] = {
            n: {p: [] for p in component_info(c).ports} for n, c in system.instances.items()}
        for c in system.connections:
            wirings[c.a.instance][c.a.port].append((c.b.instance, c.b.port))
            wirings[c.b.instance][c.b.port].append((c.a.instance, c.a.port))
        # interceptors (`connect(..., via=)`): the endpoints stay wired to each other, the
        # interceptors' sides to their hops; see `_route_interceptors`
        chained = {n for c in system.connections for n in c.via}
        for h in system.hops:
            for end, other in ((h.a, h.b), (h.b, h.a)):
                if end.instance in chained:
                    wirings[end.instance][end.port].append((other.instance, other.port))
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
        # elastic pools (`System.pool`): a slot's dormant local id (-1: not a slot); the
        # owner's runner knows its pools, its pool port the field of live slots
        self.dormant = [-1] * len(self.instances)
        self.pools = {p.name: p for p in system.pools}
        for p in system.pools:
            owner = self.instances[self.index[p.owner]].runner
            owner.pools = {**owner.pools, p.handle: p}    # the name its code uses
            owner.wirings[p.owner_port] = replace(owner.wirings[p.owner_port], live=p.live)
            for slot in p.slots:
                inst = self.instances[self.index[slot]]
                self.dormant[inst.index] = inst.table.intern(dormant_values(p.cls))
                inst.runner.slot_pool = p
        # the slots live from the start (`s.pool(..., min=k)`: the first k of each pool)
        self._live_start = {self.index[s] for p in system.pools for s in p.slots[:p.min]}
        # The long state form carries timers, crashes, partitions and the fault budget.
        self.extended = faults is not None or any(i.info.uses_timers for i in self.instances)
        # some step may choose (`self.choose`): then a step may have several outcomes, and
        # `successors` takes the general path (`enabled_events` and `apply`)
        self.chooses = any(i.info.uses_choose for i in self.instances)
        # memoised local steps: deliveries by (local id << 32 | envelope id) (the envelope
        # fixes the instance), actions per instance by local id
        self._dmemo: dict[int, Outcome | object] = {}
        self._amemos = [inst.amemo for inst in self.instances]
        self._tmemo: dict[tuple[int, int], Outcome] = {}          # (local id, timer id)
        # (inst, local id, choice) of a restart; choice -1: the start
        self._rmemo: dict[tuple[int, int, int], Outcome] = {}
        self._views = [inst.views for inst in self.instances]
        self._sampler = Sampler()           # which memo misses run twice (`determinism`)
        # where no memo keeps a state's actions (`_memo_once`): those run twice, by sampler
        # key (`_due_once`)
        self._checked: dict[Any, set[Any]] = {}
        # where the steps are checked with their states (`_checked_state`): per action's
        # sampler key, [its steps computed, the count at its last checked step]; past four
        # times `Sampler.every` steps unchecked (its steps fall in states the sampler does
        # not pick), the next is checked on its own (`_one_action`)
        self._step_marks: dict[Any, list[int]] = {}
        # (instance, action index) -> {exact_key(argument): event id} (`_action_outcomes`)
        self._arg_slots: dict[tuple[int, int], dict[Any, int]] = {}
        self._class_indices: dict[type | None, tuple[int, ...]] = {}
        self._fault_slots: dict[Any, int] = {}  # ("crash", i)... -> event id (extended.py)
        self._restarts: dict[int, int] = {}     # instance -> its initial values' count

        # links: one per direction of each connection (FIFO queues, canonical order)
        links = sorted({(a, ap, b, bp) for a, ports in wirings.items()
                        for ap, peers in ports.items() for b, bp in peers}
                       if not system.hops else _hop_links(system))
        self.link_index = {lk: i for i, lk in enumerate(links)}
        self.links = links

        self.envs: list[Envelope] = []
        self.env_ids: dict[Any, int] = {}       # envelope (and canonical meta) -> id
        self.env_src: list[int] = []
        self.env_dst: list[int] = []
        self.env_link: list[int] = []
        # events other than deliveries, interned: ("action", i, action index, has_arg, arg),
        # ("timer", timer id), ("crash", i), ("restart", i, choice), ("drop", env),
        # ("dup", env), ("partition", mask), ("heal",)
        self.slots: list[tuple[Any, ...]] = []
        self.slot_ids: dict[tuple[Any, ...], int] = {}
        self.timers: list[tuple[int, int, Message]] = []           # (instance, delay, message)
        self.timer_ids: dict[tuple[int, int, Message], int] = {}
        self.cancels: list[tuple[int, Any]] = []                   # (instance, message or type)
        self.cancel_ids: dict[tuple[int, Any], int] = {}

        # per link, from its connection: capacity (0: unbounded), a full link drops (else
        # blocks), lossy
        conn = {}
        for c in (*system.connections, *system.hops):
            conn[(c.a.instance, c.a.port, c.b.instance, c.b.port)] = c
            conn[(c.b.instance, c.b.port, c.a.instance, c.a.port)] = c
        self.link_conns = [conn[lk] for lk in links]
        capacity = [c.capacity or 0 for c in self.link_conns]
        drop_full = [c.full == "drop" for c in self.link_conns]
        lossy = [c.lossy for c in self.link_conns]
        # a network with bounded or lossy links: successors take the general path (enabled
        # events, then `apply`), and `enabled_events` leaves out blocked steps and adds losses
        self.channels = any(capacity) or any(lossy)
        # the hops from an endpoint to its own interceptor: no drop or dup fault there
        self._local_link = [c.local for c in self.link_conns] if system.hops else None
        self._route_interceptors(system)
        self.lossy = any(lossy)
        self.bounded = any(capacity)
        self._capacity, self._drop_full = capacity, drop_full
        if system.network == "unordered":
            self.network: Any = UnorderedChannels(self.env_link, capacity, drop_full, lossy) \
                if self.channels else Unordered()
        elif system.network == "duplicating":
            self.network = Duplicating()
        elif self.channels:
            self.network = FifoChannels(len(links), self.env_link, capacity, drop_full, lossy)
        else:
            self.network = Fifo(len(links), self.env_link)
        # whether an enabled event may be an optional fault (not progress: see `can_progress`)
        self.has_faults = self.extended or self.lossy
        # `successors` specialises the short state without channels; the rest is general
        self._general = self.extended or self.channels
        n = len(self.instances)
        # a partition cuts a group off from the rest; the group never holds instance 0, so
        # each split is listed once
        # (a range, not a list: 2^(n-1) of them, enumerated only under a partition budget)
        self.partitions = range(2, 1 << n, 2) if n > 1 else range(0)
        self.messages = _known_messages(system)
        self.properties = list(system.properties)
        # property verdicts by local states, for evaluations that did not read beyond them
        self._property_memo: dict[tuple[int, ...], tuple[Violation, ...]] = {}
        self._memo_partial = False      # some evaluation read the network: not in the memo
        # one instance, no network, no timers or faults (a whole-state spec): a state is its
        # local state, which a search expands once, so memos by local state cannot hit there
        # and are not kept (actions, property verdicts, views)
        self._memo_once = n == 1 and not links and not self.extended and not self.chooses
        # what `check` reports of the properties: how often they ran (all of them, on each
        # state not in the memo), and per property the instances it read and whether it read
        # the network or the crashes, noted in the first TRACK_READS evaluations only (cheap;
        # enough to tell a property whose inputs never change, see `unchanged_instances`)
        self.property_evaluations = 0
        self.property_reads: list[set[int]] = [set() for _ in self.properties]
        self.property_beyond = [False] * len(self.properties)
        self._track_reads = TRACK_READS
        self.terminals = combined_terminals(system)     # a composite's too
        self._event_json: dict[int, dict[str, Any]] = {}
        self._env_canon: dict[int, bytes] = {}
        self._event_keys: dict[int, bytes] = {}
        self.steppers = 0           # runtime nodes stepping this kernel (see `forget`)
        # a runtime node's: a step sampled for the determinism check runs once on its way
        # (in the first run's world) and again when the node is idle (`check_deferred`)
        self.defer_checks = False
        self._deferred: list[Callable[[], None]] = []
        # the runtime's envelopes by object (`_runtime_env_id`): id(envelope) -> (envelope,
        # its id); the envelope held keeps its address from being reused
        self._env_objs: dict[int, tuple[Envelope, int]] = {}
        # (src_port, dst, dst_port) -> the first bytes of its envelopes' canonical sort key
        self._link_heads: dict[tuple[str, str, str], bytes] = {}
        # a sender's name as the `Peer` a delivered message's `sender` holds (made once)
        self._peers: dict[str, Peer] = {}

    def _route_interceptors(self, system: System) -> None:
        """What a connection with interceptors changes in a step: an endpoint's send to the
        other endpoint goes to the first interceptor on its way (`redirect`), and a message
        an interceptor forwards to an endpoint is delivered as sent by the other endpoint
        (`origin`), so the endpoints' senders and sessions are each other."""
        self.redirect: dict[tuple[str, str, str, str], tuple[str, str]] = {}
        self.origin: dict[tuple[str, str, str, str], str] = {}
        for c in system.connections:
            if c.via:
                a, ap, b, bp = c.a.instance, c.a.port, c.b.instance, c.b.port
                first, last = c.via[0], c.via[-1]
                self.redirect[(a, ap, b, bp)] = (first, "left")
                self.redirect[(b, bp, a, ap)] = (last, "right")
                self.origin[(last, "right", b, bp)] = a
                self.origin[(first, "left", a, ap)] = b

    # --- interning ----------------------------------------------------------------------------

    def _env_id(self, env: Envelope) -> int:
        # an interceptor's meta is untyped: True == 1 in Python, not in the state
        key: Any = (env, canonical(env.meta)) if env.meta else env
        n = len(self.envs)
        i: int = self.env_ids.setdefault(key, n)      # one hash of the envelope, not two
        if i == n:
            self.envs.append(env)
            self.env_src.append(self.index[env.src])
            self.env_dst.append(self.index[env.dst])
            self.env_link.append(self.link_index[(env.src, env.src_port, env.dst, env.dst_port)])
        return i

    ENV_OBJS = 256          # envelopes the runtime's cache by object holds at most

    def _runtime_env_id(self, env: Envelope) -> int:
        """`_env_id` for the runtime, which asks about the same envelope object again and again
        (a driver asks whether each one in an inbox is taken at every step, then delivers
        it): found by the object's identity, not by hashing its message and comparing it."""
        got = self._env_objs.get(id(env))
        if got is not None and got[0] is env:
            return got[1]
        if len(self._env_objs) >= self.ENV_OBJS:
            self._env_objs.clear()
        i = self._env_id(env)
        self._env_objs[id(env)] = (env, i)
        return i

    def _slot_id(self, slot: tuple[Any, ...], key: Any = None) -> int:
        """Intern an event; `key` identifies it when Python equality of `slot` is too coarse
        (an action's argument `True` is not `1`)."""
        key = slot if key is None else key
        i = self.slot_ids.get(key)
        if i is None:
            i = self.slot_ids[key] = len(self.slots)
            self.slots.append(slot)
        return i

    # --- initial states -----------------------------------------------------------------------

    def initial_states(self) -> list[tuple[State, tuple[Violation, ...]]]:
        """Every initial global state, with the violations of its instances' start: each
        instance's initial values (every choice of them), then its `@on_start` hook — its
        sends in flight, its timers pending — and its invariants."""
        per_instance = []
        for inst in self.instances:
            if self.dormant[inst.index] >= 0 and inst.index not in self._live_start:
                # a pool's slot starts dormant (but the first `min`)
                asleep: list[Outcome] = [(self.dormant[inst.index], (), (), ())]
                per_instance.append(asleep)
                continue
            vals = inst.info.initial_values(self.system.overrides.get(inst.name))
            starts: list[Outcome] = []
            for v in vals:
                o = self._start_outcome(inst, inst.table.intern(inst.runner.with_sessions(v)))
                if type(o) is Branches:         # a start hook that chooses: each way is an
                    starts.extend(o.outcomes)   # initial state of its own
                else:
                    starts.append(o)            # type: ignore[arg-type]
            per_instance.append(starts)
        return [self._initial_state(combo) for combo in product(*per_instance)]

    def _initial_state(self, starts: tuple[Outcome, ...]
                       ) -> tuple[State, tuple[Violation, ...]]:
        """The initial global state after each instance's start step (in instance order)."""
        budget = self.faults.budget() if self.faults is not None else (0, 0, 0, 0)
        net = self.network.initial()
        timers: tuple[int, ...] = ()
        violations: list[Violation] = []
        for _, sends, viol, tops in starts:
            if sends and self.channels and self.network.blocked(net, -1, sends):
                raise self._blocked_start(starts, sends)
            if sends:
                net = self.network.add(net, sends)
            if tops:
                timers = self._apply_timer_ops(timers, tops)
            violations += viol
        locals_ = tuple(o[0] for o in starts)
        state = (locals_, net, timers, 0, budget, 0) if self.extended else (locals_, net)
        return state, tuple(violations)

    def run_initial(self, chose: dict[str, list[Any]]) -> State:
        """The initial state of a run of the runtime: each instance from its first initial
        values (`local_initial`), then its start step — the way `chose[name]` names (JSON
        values, as recorded) where the start hook chose.  `TraceError` if no way matches."""
        starts = []
        for inst in self.instances:
            o = self._start_outcome(inst, self.local_initial(inst.name))
            if type(o) is Branches:
                want = chose.get(inst.name)
                k = next((k for k, c in enumerate(o.choices)
                          if _same_json([to_json(v) for v in c], want)), None)
                if k is None:
                    raise TraceError(f"{inst.name}'s start chose {want!r}, which its start "
                                     "hook cannot choose",
                                     notes=[f"it can choose: "
                                            f"{', '.join(repr(list(c)) for c in o.choices)}"])
                o = o.outcomes[k]
            starts.append(o)
        return self._initial_state(tuple(starts))[0]

    def _blocked_start(self, combo: Any, sends: tuple[int, ...]) -> SpecError:
        inst = self.instances[next(i for i, o in enumerate(combo) if o[1] is sends)]
        link = self.env_link[sends[0]]
        c = self.link_conns[link]
        return SpecError(f"the start of {inst.name} sends more messages than the links' "
                         f"capacity ({c.capacity}) takes, and a full link blocks",
                         c.location, ["an initial state cannot wait for room: send fewer "
                                      "messages at the start, or give the connection "
                                      "full='drop' or a larger capacity"])

    def _start_outcome(self, inst: _Instance, lid: int) -> Any:
        """An instance's start from the initial local state `lid` (memoised like a step;
        `Branches` when the start hook chooses)."""
        key = (inst.index, lid, -1)
        o = self._rmemo.get(key)
        if o is None and lid == self.dormant[inst.index]:
            o = self._rmemo[key] = (lid, (), (), ())        # a dormant slot does not start
        if o is None:
            values = inst.table.values[lid]
            o = self._rmemo[key] = self._run_local(
                inst, values, lambda: inst.runner.run_start(values), inst.info.on_start,
                "start", "start", lambda: f"{inst.name} starts")
        return o

    # --- the memoised local step --------------------------------------------------------------

    def _outcome(self, inst: _Instance, result: Result | Branched) -> Any:
        """The interned form of a step's result: an `Outcome`, or `Branches` of them."""
        if type(result) is tuple:
            new, sends, violations, timer_ops = result
            return (inst.table.intern(new), self._sends(inst, sends) if sends else (),
                    tuple(violations) if violations else (),
                    self._timer_ops(inst, timer_ops) if timer_ops else ())
        if isinstance(result, Branched):
            if not self.chooses:
                raise SpecError(f"{inst.name} chooses (self.choose) in a way assay did not "
                                f"see in the source of {inst.info.cls.__name__}",
                                notes=["call self.choose(...) directly in the component's "
                                       "methods"])
            return Branches(tuple(self._outcome(inst, r) for _, r in result.runs),
                            tuple(c for c, _ in result.runs))
        new, sends, violations, timer_ops = result
        return (inst.table.intern(new), self._sends(inst, sends), tuple(violations),
                self._timer_ops(inst, timer_ops))

    def _deliver_outcome(self, dst: int, lid: int, env_id: int) -> Any:
        """The memoised outcome of delivering an envelope, or DEFERRED when the handler's
        receive guard keeps it out in this local state."""
        inst = self.instances[dst]
        env = self.envs[env_id]
        if self.origin:
            msg = env.message.with_sender(Peer(self.origin.get(
                (env.src, env.src_port, env.dst, env.dst_port), env.src)), env.meta)
        else:
            sender = self._peers.get(env.src)
            if sender is None:
                sender = self._peers[env.src] = Peer(env.src)
            msg = env.message.with_sender(sender)
        if self.dormant[dst] >= 0 or (inst.runner.pools and type(msg) is Retired):
            done = self._pool_delivery(inst, lid, msg)
            if done is not None:
                self._dmemo[lid << 32 | env_id] = done
                return done
        values = inst.table.values[lid]
        h = inst.info.handler_for(env.dst_port, type(msg))
        if h is not None and h.when is not None and not inst.runner.accepts(values, h, msg):
            self._dmemo[lid << 32 | env_id] = DEFERRED
            return DEFERRED
        if h is None:
            o: Outcome = (lid, (), (Violation(
                "unhandled", env.src,
                f"{env.src} sent {msg!r} to {inst.name} on port {env.dst_port!r}, where "
                f"{inst.info.cls.__name__} has no handler for {type(msg).__name__}"),), ())
        else:
            hop = env.src if msg.sender != env.src else None     # an interceptor's forward
            o = self._run_local(inst, values, partial(
                inst.runner.run_handler, values, h, msg, env.dst_port, hop), h.fn, h.name,
                "message", lambda: f"on {show(msg)} from {env.src}")
        self._dmemo[lid << 32 | env_id] = _NOOP if o == (lid, (), (), ()) else o
        return o

    def _pool_delivery(self, inst: _Instance, lid: int, msg: Any) -> Any:
        """A delivery to a pool's slot that is not its handler's: `Spawn` makes a dormant
        slot live (its start hook runs), `Retire` a live one dormant (its timers go); every
        other message waits for a dormant slot to be spawned (DEFERRED), as a spawn waits for
        a live slot and a retire for a dormant one.  None: the handler's delivery."""
        dormant = self.dormant[inst.index]
        kind = type(msg)
        if kind is Retired:                 # at the owner: the slot is dormant now
            pool = self.pools.get(msg.pool)
            if pool is None or pool.owner != inst.name or msg.sender not in pool.slots:
                return None
            f = inst.info.field_index[pool.live]
            old = inst.table.values[lid]
            new = old[:f] + (old[f] - {msg.sender},) + old[f + 1:]
            return (inst.table.intern(new), (), (), ())
        if kind is Spawn or kind is Retire:
            # only the pool's owner spawns and retires its slots (`spawn`, `retire`): from
            # anyone else the slot would be live outside the owner's `live`, or gone from it
            pool = next(p for p in self.pools.values() if inst.name in p.slots)
            if msg.sender != pool.owner or msg.pool != pool.name:
                return (lid, (), (Violation(
                    "pool", str(msg.sender), f"{msg.sender} sent {show(msg)} to {inst.name}, "
                    f"a slot of pool {pool.name}, which only its owner {pool.owner} spawns "
                    "and retires"),), ())
        if kind is Spawn:
            if lid != dormant:
                return DEFERRED
            init = decode_init(inst.info, msg.init)
            if isinstance(init, str):
                return (lid, (), (Violation("type", str(msg.sender), f"{msg.sender} spawned "
                                            f"{inst.name} with {init}"),), ())
            fresh = live_values(self, inst, init)
            return self._run_local(inst, fresh, lambda: inst.runner.run_start(fresh),
                                   inst.info.on_start, "start", "start",
                                   lambda: f"{inst.name} is spawned")
        if kind is Retire:
            if lid == dormant:
                return DEFERRED
            cancel = [TimerOp(False, 0, Message)] if self.extended else []
            pool = next(p for p in self.pools.values() if inst.name in p.slots)
            ack = Send(pool.port, pool.owner, pool.owner_port, Retired(pool.name))
            return (dormant, self._sends(inst, [ack]), (), self._timer_ops(inst, cancel))
        return DEFERRED if lid == dormant else None

    def _delivery(self, lid: int, env: int) -> Any:
        """The outcome of delivering `env` in local state `lid` (DEFERRED: not now)."""
        o = self._dmemo.get(lid << 32 | env)
        if o is None:
            return self._deliver_outcome(self.env_dst[env], lid, env)
        return (lid, (), (), ()) if o is _NOOP else o

    def deferred(self, state: State, env: int) -> bool:
        """Whether a receive guard keeps the in-flight envelope `env` out in `state`."""
        return self._delivery(state[0][self.env_dst[env]], env) is DEFERRED

    def _action_outcomes(self, inst: _Instance, lid: int) -> tuple[tuple[int, Outcome], ...]:
        if lid == self.dormant[inst.index]:                 # a dormant slot does nothing
            inst.amemo[lid] = ()
            return ()
        if not inst.info.actions:       # (a server's every new state: no reader to build)
            return ()
        values = inst.table.values[lid]
        # the guards and domains of a local state run twice where the sampler says (see
        # `determinism`); else once each, on one live object
        key = (inst.index, "guards")
        both = self._due_once(key, lid) if self._memo_once else self._sampler.due(key)
        if both and self._memo_once and not self.defer_checks:
            return self._checked_state(inst, values, lid)
        reader = None if both else inst.runner.reader(values)
        # checked: every action's guards and domains in one pair of runs (`_enabled_all`)
        given = self._enabled_all(inst, values) if both else None
        out: list[tuple[int, Outcome]] = []
        for ai, act in enumerate(inst.info.actions):
            self._one_action(inst, values, ai, act, both, reader, out, lid,
                             None if given is None else given[ai])
        res = tuple(out)
        if not self._memo_once:
            inst.amemo[lid] = res
        return res

    def _one_action(self, inst: _Instance, values: tuple[Any, ...], ai: int, act: ActionInfo,
                    both: bool, reader: Any, out: list[tuple[int, Outcome]], lid: int,
                    given: list[tuple[bool, Any]] | None = None) -> None:
        """Append to `out` the (event, outcome) of action `act` for each argument with which
        it is enabled in the local state `values` (`_action_outcomes`, one action; `lid` is
        its id); `given`: those arguments, already computed (and checked)."""
        runner = inst.runner
        index = inst.index
        args = given if given is not None else self._enabled(inst, values, act) if both \
            else runner.enabled(values, act, reader)
        if not args:                    # (most of a whole-state spec's actions, most states)
            return
        sampled = (index, act.name, "action")       # `_run_local`'s key
        # the action's events by argument (an action has an argument always or never)
        arg_slots = self._arg_slots.get((index, ai))
        if arg_slots is None:
            arg_slots = self._arg_slots[(index, ai)] = {}
        due = self._sampler.due
        once = self._due_once if self._memo_once else None
        explore, run_action, outcome = runner.explore, runner.run_action, self._outcome
        # a component holding every variable: the plain action's new state in one call
        quick = runner.quick_action if self._memo_once else None
        intern = inst.table.intern
        # where no memo keeps a state's actions (and no check is deferred), a step is checked
        # with its state's guards (`both`; all of a state's actions: `_checked_state`), and
        # besides among the first `Sampler.first` steps of its action, and where its action
        # went unchecked for four times `Sampler.every` steps (`_step_marks`)
        mark = None
        if once is not None and not self.defer_checks:
            mark = self._step_marks.get(sampled)
            if mark is None:
                mark = self._step_marks[sampled] = [0, 0]
        first, counts, gap = self._sampler.first, self._sampler.counts, 4 * self._sampler.every
        for has_arg, arg in args:
            ek = exact_key(arg)
            slot = arg_slots.get(ek)
            if slot is None:
                slot = self._new_action_slot(arg_slots, index, ai, has_arg, arg, ek)
            if mark is not None:
                mark[0] += 1
                checked = both or mark[0] - mark[1] > gap or counts.get(sampled, 0) < first \
                    and once(sampled, (lid, slot))                  # type: ignore[misc]
                if checked:
                    mark[1] = mark[0]
            else:
                checked = due(sampled) if once is None else once(sampled, (lid, slot))
            if checked:                                                 # run twice
                o = self._run_checked(inst, values, partial(
                    run_action, values, act, has_arg, arg), act.fn, act.name, "action",
                    partial(_fires, inst.name, act.name, has_arg, arg))
            else:
                new = quick(values, act, has_arg, arg) if quick is not None else None
                o = outcome(inst, explore(partial(run_action, values, act, has_arg, arg))) \
                    if new is None else (intern(new), (), (), ())
            out.append((slot, o))

    def _new_action_slot(self, arg_slots: dict[Any, int], index: int, ai: int, has_arg: bool,
                         arg: Any, ek: Any) -> int:
        """The event id of action `ai` of instance `index` with argument `arg` (`ek`: its
        `exact_key`), interned and noted in `arg_slots`, the action's events by argument."""
        key = ("action", index, ai, has_arg, ek)
        slot = self.slot_ids.get(key)
        if slot is None:
            slot = self._slot_id(("action", index, ai, has_arg, arg), key)
        arg_slots[ek] = slot
        return slot

    def _checked_state(self, inst: _Instance, values: tuple[Any, ...], lid: int
                       ) -> tuple[tuple[int, Outcome], ...]:
        """`_action_outcomes` of a state the sampler picked for the determinism check, where
        no memo keeps a state's actions (`_memo_once`): every action's guards and domains and
        then every enabled step, all in one pair of runs (`twice`), so one outside world set
        and put back and one reordering of the state serve them all — not one per step, each
        on a state of its own, as sampling steps by their action would.  Each action's steps
        are checked at the rate its states are sampled (the first `Sampler.first` states, then
        one in `Sampler.every`); `_one_action` checks besides the first `Sampler.first` steps
        of each action, wherever they are, and the next step of an action whose last four
        times `Sampler.every` steps went unchecked (`_step_marks`).  The second run runs the
        steps with the first run's arguments (as `_enabled_all` then `_run_checked` do); the
        guards are compared first, then each step, in order."""
        acts = inst.info.actions
        runner = inst.runner
        explore, run_action = runner.explore, runner.run_action
        firsts: list[list[list[tuple[bool, Any]]]] = []

        def run() -> tuple[list[list[tuple[bool, Any]]], list[list[Any]]]:
            enabled = runner.enabled_all(values, acts)
            if not firsts:
                firsts.append(enabled)
            return enabled, [[explore(partial(run_action, values, act, has_arg, arg))
                              for has_arg, arg in args]
                             for act, args in zip(acts, firsts[0])]

        (enabled, first), (again, second) = twice(run)
        for act, a, b in zip(acts, enabled, again):
            self._same_enabled(inst, values, act, a, b)
        index = inst.index
        checked, counts, most = self._checked, self._sampler.counts, self._sampler.first
        marks = self._step_marks
        out: list[tuple[int, Outcome]] = []
        for ai, act in enumerate(acts):
            if not enabled[ai]:
                continue
            arg_slots = self._arg_slots.get((index, ai))
            if arg_slots is None:
                arg_slots = self._arg_slots[(index, ai)] = {}
            sampled = (index, act.name, "action")       # `_one_action`'s key
            for (has_arg, arg), x, y in zip(enabled[ai], first[ai], second[ai]):
                self._compare(inst, values, act.fn, act.name, "action",
                              partial(_fires, inst.name, act.name, has_arg, arg), x, y)
                ek = exact_key(arg)
                slot = arg_slots.get(ek)
                if slot is None:
                    slot = self._new_action_slot(arg_slots, index, ai, has_arg, arg, ek)
                mark = marks.get(sampled)
                if mark is None:
                    mark = marks[sampled] = [0, 0]
                mark[0] += 1
                mark[1] = mark[0]
                # counted and noted as `_due_once` would have: an action's first steps
                n = counts.get(sampled, 0)
                if n < most:
                    done = checked.get(sampled)
                    if done is None:
                        done = checked[sampled] = set()
                    if (lid, slot) not in done:
                        counts[sampled] = n + 1
                        done.add((lid, slot))
                out.append((slot, self._outcome(inst, x)))
        return tuple(out)

    def _action_alone(self, i: int, lid: int, ai: int) -> tuple[tuple[int, Outcome], ...]:
        """The (event, outcome) of action `ai` of instance `i` in local state `lid`, for each
        argument with which it is enabled: from the memo of the instance's actions, else that
        action's alone (not every action of the instance)."""
        acts = self._amemos[i].get(lid)
        if acts is not None:
            return acts
        if lid == self.dormant[i]:
            return ()
        inst = self.instances[i]
        values = inst.table.values[lid]
        both = self._due_once((i, "guards"), lid, False) if self._memo_once \
            else self._sampler.due((i, "guards"))
        found: list[tuple[int, Outcome]] = []
        self._one_action(inst, values, ai, inst.info.actions[ai], both,
                         None if both else inst.runner.reader(values), found, lid)
        return tuple(found)

    def _due_once(self, key: Any, at: Any, mark: bool = True) -> bool:
        """`Sampler.due` where no memo keeps a state's actions (`_memo_once`: each state is
        its own local state, and every visit computes them again): a step already run twice
        `at` a local state (an action's guards: its id; an action's step: its id and event) is
        not run twice again, nor counted — the check is of a function of (state, event), made
        once per state and event.  `mark` False: not noted (one action's guards of a
        state, `moving_step`, are not all of them).  The first `Sampler.first` checks of each
        key are noted."""
        checked = self._checked.get(key)
        if checked is None:
            checked = self._checked[key] = set()
        elif at in checked:
            return False
        if not self._sampler.due(key):
            return False
        if mark and len(checked) < self._sampler.first:
            checked.add(at)
        return True

    def _enabled(self, inst: _Instance, values: tuple[Any, ...],
                 act: ActionInfo) -> list[tuple[bool, Any]]:
        """The arguments with which `act` is enabled, computed twice (see `determinism`)."""
        enabled, again = twice(lambda: inst.runner.enabled(values, act))
        self._same_enabled(inst, values, act, enabled, again)
        return enabled

    def _enabled_all(self, inst: _Instance, values: tuple[Any, ...]
                     ) -> list[list[tuple[bool, Any]]]:
        """`_enabled` of each of the instance's actions, in order: all of them in one pair of
        runs (`Runner.enabled_all`), each run's own object shared by its actions as outside a
        check (`Runner.reader`) — one outside world set and put back per state checked,
        not one per action."""
        acts = inst.info.actions
        if self.defer_checks:                   # the second run when idle (`check_deferred`)
            enabled = in_world(0, lambda: inst.runner.enabled_all(values, acts))
            self._deferred.append(partial(self._enabled_again, inst, values, enabled))
            return enabled
        enabled, again = twice(lambda: inst.runner.enabled_all(values, acts))
        for act, a, b in zip(acts, enabled, again):
            self._same_enabled(inst, values, act, a, b)
        return enabled

    def _enabled_again(self, inst: _Instance, values: tuple[Any, ...],
                       enabled: list[list[tuple[bool, Any]]]) -> None:
        """The deferred second run of `_enabled_all`, compared with the first."""
        acts = inst.info.actions
        again = in_world(1, lambda: inst.runner.enabled_all(values, acts))
        for act, a, b in zip(acts, enabled, again):
            self._same_enabled(inst, values, act, a, b)

    def _same_enabled(self, inst: _Instance, values: tuple[Any, ...], act: ActionInfo,
                      a: list[tuple[bool, Any]], b: list[tuple[bool, Any]]) -> None:
        """Raise the determinism error where two computations of `act`'s enabled arguments
        differ."""
        diff = enabled_difference(a, b)
        if diff is not None:
            code = next((f for f in (act.when, act.over) if callable(f)), act.fn)
            raise nondeterministic(
                f"the guard or domain of {inst.info.cls.__name__}.{act.name} (instance "
                f"{inst.name})",
                f"{inst.name} fires {act.name}", "action", code, diff,
                repr(inst.runner.view(values)))

    def _run_action(self, inst: _Instance, values: tuple[Any, ...], act: ActionInfo,
                    has_arg: bool, arg: Any) -> Outcome:
        return self._run_local(
            inst, values, lambda: inst.runner.run_action(values, act, has_arg, arg), act.fn,
            act.name, "action",
            lambda: f"{inst.name} fires {act.name}" + (f"({show(arg)})" if has_arg else ""))

    def _actions(self, i: int, lid: int) -> tuple[tuple[int, Outcome], ...]:
        acts = self._amemos[i].get(lid)
        return self._action_outcomes(self.instances[i], lid) if acts is None else acts

    def _timer_outcome(self, lid: int, tid: int) -> Outcome:
        o = self._tmemo.get((lid, tid))
        if o is None:
            i, _, msg = self.timers[tid]
            inst = self.instances[i]
            h = inst.info.timer_handler(type(msg))
            if h is not None and h.when is not None:
                raise SpecError(f"{inst.name} set a timer with {show(msg)}, whose handler "
                                f"{h.name} has a receive guard (when=)", h.location,
                                ["a guard defers messages from other instances; for a timer, "
                                 "test the condition in the handler, or set the timer only "
                                 "when it holds"])
            if h is None:
                o = (lid, (), (Violation(
                    "unhandled", inst.name, f"{inst.name} set a timer with {msg!r}, but "
                    f"{inst.info.cls.__name__} has no handler for {type(msg).__name__}"),), ())
            else:
                values = inst.table.values[lid]
                o = self._run_local(inst, values, lambda: inst.runner.run_handler(
                    values, h, msg.with_sender(None)), h.fn, h.name, "timer message",
                    lambda: f"timer {show(msg)}")
            self._tmemo[(lid, tid)] = o
        return o

    def _restart_outcome(self, i: int, lid: int, choice: int) -> Outcome:
        o = self._rmemo.get((i, lid, choice))
        if o is None and lid == self.dormant[i]:           # a dormant slot restarts dormant
            o = self._rmemo[(i, lid, choice)] = (lid, (), (), ())
        if o is None:
            inst = self.instances[i]
            values = inst.info.restart_values(inst.table.values[lid],
                                              self.system.overrides.get(inst.name))[choice]
            # a restarted instance starts its sessions afresh, but on persistent ports
            local = inst.runner.restarted(inst.table.values[lid], values)
            o = self._run_local(inst, local, lambda: inst.runner.run_restart(local),
                                inst.info.on_restart, "restart", "restart",
                                lambda: f"{inst.name} restarts")
            self._rmemo[(i, lid, choice)] = o
        return o

    def _run_local(self, inst: _Instance, values: tuple[Any, ...], run: Callable[[], Any],
                   fn: Any, hname: str, subject: str, event: Callable[[], str]) -> Any:
        """A local step on a memo miss: run it (twice where the sampler says: see
        `determinism`) and intern the result; two different results are a `SpecError` naming
        the handler `fn`."""
        if not self._sampler.due((inst.index, hname, subject)):
            return self._outcome(inst, inst.runner.explore(run))
        return self._run_checked(inst, values, run, fn, hname, subject, event)

    def _run_checked(self, inst: _Instance, values: tuple[Any, ...], run: Callable[[], Any],
                     fn: Any, hname: str, subject: str, event: Callable[[], str]) -> Any:
        """`_run_local` where the sampler said to run the step twice."""
        explore = inst.runner.explore
        if self.defer_checks:                   # the second run when idle (`check_deferred`)
            first = in_world(0, lambda: explore(run))
            self._deferred.append(partial(self._run_again, inst, values, run, fn, hname,
                                          subject, event, first))
            return self._outcome(inst, first)
        first, second = twice(lambda: explore(run))
        self._compare(inst, values, fn, hname, subject, event, first, second)
        return self._outcome(inst, first)

    def _run_again(self, inst: _Instance, values: tuple[Any, ...], run: Callable[[], Any],
                   fn: Any, hname: str, subject: str, event: Callable[[], str],
                   first: Any) -> None:
        """The deferred second run of `_run_checked`, compared with the first."""
        second = in_world(1, partial(inst.runner.explore, run))
        self._compare(inst, values, fn, hname, subject, event, first, second)

    def _compare(self, inst: _Instance, values: tuple[Any, ...], fn: Any, hname: str,
                 subject: str, event: Callable[[], str], first: Any, second: Any) -> None:
        """Two runs of one step that differ are a `SpecError` naming the handler `fn`."""
        diff = step_difference(inst.info.fields, first, second, inst.table.exact)
        if diff is not None:
            raise nondeterministic(f"{inst.info.cls.__name__}.{hname} (instance {inst.name})",
                                   event(), subject, fn, diff,
                                   repr(inst.runner.view(values)))

    def check_deferred(self) -> None:
        """The second runs of the steps (and of a state's guards) whose determinism check was
        deferred (`defer_checks`), each compared with its first: a `SpecError` at the first
        that differs, as `_run_checked` (`_enabled_all`) raises it in the step — here after
        the step was applied and its messages sent (a runtime node stops then, one step
        later than it would)."""
        while self._deferred:
            self._deferred.pop(0)()

    def _sends(self, inst: _Instance, sends: list) -> tuple[int, ...]:
        """Intern a handler's sends.  Only the order on each link can matter (fifo), so the
        envelopes are put in a canonical order first — a handler that loops over a set of
        peers then gives the same ids, and the same exploration, under any PYTHONHASHSEED."""
        if self.redirect:
            name, to = inst.name, self.redirect.get
            envs = []
            for s in sends:
                dst, dst_port = to((name, s.port, s.dst, s.dst_port), (s.dst, s.dst_port))
                envs.append(Envelope(name, s.port, dst, dst_port, s.message, s.meta))
        elif len(sends) == 1:
            s = sends[0]
            return (self._env_id(Envelope(inst.name, s.port, s.dst, s.dst_port, s.message)),)
        else:
            envs = [Envelope(inst.name, s.port, s.dst, s.dst_port, s.message) for s in sends]
        if len(envs) > 1:
            if isinstance(self.network, Fifo):
                envs.sort(key=lambda e: (e.src_port, e.dst, e.dst_port))   # stable per link
            else:
                envs = self._canonical_order(envs)
        return tuple(self._env_id(e) for e in envs)

    def _canonical_order(self, envs: list[Envelope]) -> list[Envelope]:
        """`envs` sorted by `canonical((src_port, dst, dst_port, message))`, computed once per
        link, not per envelope: the key's bytes are the link's part (cached) followed by the
        message's, and the link's parts are self-delimiting (each length-prefixed), so two
        envelopes on different links are ordered by their links' parts alone — a broadcast
        (one envelope per peer) never encodes its message.  Envelopes that share a link are
        ordered by the whole key, the same bytes `canonical` gives."""
        heads = self._link_heads
        keyed = []
        for e in envs:
            link = (e.src_port, e.dst, e.dst_port)
            head = heads.get(link)
            if head is None:
                whole = canonical((*link, None))         # b"t", the count, three parts, None's
                head = heads[link] = whole[:-len(_NONE_PART)]
            keyed.append((head, e))
        if len({h for h, _ in keyed}) < len(keyed):       # two on one link: the messages too
            return sorted(envs, key=lambda e: canonical((e.src_port, e.dst, e.dst_port,
                                                         e.message)))
        keyed.sort(key=_first_of)
        return [e for _, e in keyed]

    def _timer_ops(self, inst: _Instance, ops: list[TimerOp]) -> tuple[int, ...]:
        if not ops:
            return ()
        if not self.extended:
            raise SpecError(f"{inst.name} uses a timer in a way assay did not see in the "
                            f"source of {inst.info.cls.__name__}",
                            notes=["call self.after(...) / self.cancel(...) directly in the "
                                   "component's methods"])
        out = []
        for op in ops:
            if op.set:
                key = (inst.index, op.delay, op.message)
                t = self.timer_ids.get(key)
                if t is None:
                    t = self.timer_ids[key] = len(self.timers)
                    self.timers.append(key)
                out.append(t)
            else:
                ckey = (inst.index, op.message)
                c = self.cancel_ids.get(ckey)
                if c is None:
                    c = self.cancel_ids[ckey] = len(self.cancels)
                    self.cancels.append(ckey)
                out.append(~c)
        return tuple(out)

    def _apply_timer_ops(self, timers: tuple[int, ...], ops: tuple[int, ...]) -> tuple[int, ...]:
        pending = list(timers)
        for op in ops:
            if op >= 0:
                pending.append(op)
                continue
            i, what = self.cancels[~op]
            is_type = isinstance(what, type)
            pending = [t for t in pending if not (
                self.timers[t][0] == i and (isinstance(self.timers[t][2], what) if is_type
                                            else self.timers[t][2] == what))]
        return tuple(sorted(pending))

    # --- local steps: one instance at a time (the runtime's view) -----------------------------

    def local_initial(self, name: str, choice: int = 0) -> int:
        """The id of one initial local state of instance `name`, before its start."""
        inst = self.instances[self.index[name]]
        if self.dormant[inst.index] >= 0 and inst.index not in self._live_start:
            return self.dormant[inst.index]
        vals = inst.info.initial_values(self.system.overrides.get(inst.name))
        return inst.table.intern(inst.runner.with_sessions(vals[choice]))

    def local_start(self, name: str, lid: int) -> LocalStep | LocalChoice:
        """The start of instance `name` from its initial local state `lid` (`local_initial`):
        the `@on_start` hook's step (no hook: nothing changes)."""
        return self._local_step(self._start_outcome(self.instances[self.index[name]], lid))

    def local_deliver(self, lid: int, envelope: Envelope) -> LocalStep | LocalChoice:
        """Handle `envelope` at its destination, whose local state is `lid` (which must
        accept it: `local_accepts`)."""
        o = self._delivery(lid, self._runtime_env_id(envelope))
        if o is DEFERRED:
            raise ValueError(f"{envelope}: the receive guard keeps it out in this state")
        return self._local_step(o)

    def local_accepts(self, lid: int, envelope: Envelope) -> bool:
        """Whether the destination, in local state `lid`, takes `envelope` now (its handler's
        receive guard does not defer it)."""
        return self._delivery(lid, self._runtime_env_id(envelope)) is not DEFERRED

    def local_actions(self, name: str, lid: int) -> list[tuple[Fire, LocalStep | LocalChoice]]:
        """The actions of `name` enabled in local state `lid`, each with its step."""
        out = []
        for slot, o in self._actions(self.index[name], lid):
            ev = self.event(~slot)
            assert isinstance(ev, Fire)
            out.append((ev, self._local_step(o)))
        return out

    def local_timer(self, name: str, lid: int, delay: int,
                    message: Message) -> LocalStep | LocalChoice:
        """A timer of `name` fires: `message`, set with `delay`."""
        key = (self.index[name], delay, message)
        t = self.timer_ids.get(key)
        if t is None:
            t = self.timer_ids[key] = len(self.timers)
            self.timers.append(key)
        return self._local_step(self._timer_outcome(lid, t))

    def _local_step(self, o: Any, choices: tuple[Any, ...] = ()) -> Any:
        """The runtime's form of an outcome: a `LocalStep`, or a `LocalChoice` of them."""
        if type(o) is Branches:
            return LocalChoice(tuple(self._local_step(x, c)
                                     for x, c in zip(o.outcomes, o.choices)))
        new_lid, sends, viol, tops = o
        ops: list[tuple[str, Any, Any]] = []
        for op in tops:
            if op >= 0:
                _, delay, msg = self.timers[op]
                ops.append(("set", delay, msg))
            else:
                ops.append(("cancel", self.cancels[~op][1], None))
        return LocalStep(new_lid, tuple(map(self.envs.__getitem__, sends)) if sends else (),
                         viol, tuple(ops) if ops else (), choices)

    def local_restore(self, name: str, saved: dict[str, Any]) -> LocalStep | LocalChoice:
        """Restart `name` from its persisted fields (JSON form, as `persisted` gives them):
        the other fields take their initial values and the restart hook runs — the same
        semantics as a restart event."""
        inst = self.instances[self.index[name]]
        info = inst.info
        if self.dormant[inst.index] >= 0 and saved.get(DORMANT) is not False:
            # a pool's slot never saved live (dormant since the start, or retired)
            return LocalStep(self.dormant[inst.index], (), (), ())
        values = list(info.initial_values(self.system.overrides.get(inst.name))[0])
        for f, j in saved.items():
            k = info.field_index.get(f)
            if k is not None and info.persistent[k]:
                try:
                    values[k] = info.types[k].from_json(j)
                except (ValueError, TypeError, KeyError) as e:
                    raise ValueError(f"field {f!r}: {e}") from None
        # restart choice 0, as the node records it (correlated initial states: the first
        # that agrees with the persistent fields)
        values = list(info.restart_values(tuple(values), self.system.overrides.get(name))[0])
        local = inst.runner.with_sessions(tuple(values))
        kept = saved.get(SESSIONS)
        if isinstance(kept, dict) and inst.runner.session_keys:
            positions = [_saved_position(info, p, peer, kept) if keep else 0
                         for (p, peer), keep in zip(inst.runner.session_keys,
                                                    inst.runner.kept_sessions)]
            local = (*local[:-1], tuple(positions))
        return self._local_step(self._run_local(
            inst, local, lambda: inst.runner.run_restart(local), info.on_restart, "restart",
            "restart", lambda: f"{name} restarts from its saved state"))

    def persisted(self, name: str, lid: int) -> dict[str, Any] | None:
        """The persistent fields of `name` in local state `lid`, in JSON form (None: it has
        none)."""
        inst = self.instances[self.index[name]]
        info = inst.info
        runner = inst.runner
        slot = self.dormant[inst.index] >= 0
        if slot and lid == self.dormant[inst.index]:    # a pool's slot: whether it is live
            return {DORMANT: True}
        if not any(info.persistent) and not any(runner.kept_sessions) and not slot:
            return None
        values = inst.table.values[lid]
        out: dict[str, Any] = {f: to_json(values[k]) for k, f in enumerate(info.fields)
                               if info.persistent[k]}
        if slot:
            out[DORMANT] = False
        if any(runner.kept_sessions):
            out[SESSIONS] = {f"{p}/{peer}": pos for ((p, peer), keep, pos)
                             in zip(runner.session_keys, runner.kept_sessions, values[-1])
                             if keep}
        return out

    def receivable(self, name: str, port: str) -> dict[str, type[Message]]:
        """The message types instance `name` accepts on `port` (by name): those its protocol
        mentions, and those it has a handler for there."""
        inst = self.instances[self.index[name]]
        info = inst.info
        out: dict[str, type[Message]] = {}
        auto = info.automata.get(port)
        if auto is not None:
            for (_, d, m) in auto.trans:
                if d == "recv":
                    out[m.__name__] = m
        for (p, m), _ in info.handlers.items():
            if p in (port, "*"):
                out.setdefault(m.__name__, m)
        if out.pop("Message", None) is Message:     # an interceptor's catch-all: what
            for c in self.system.connections:       # crosses its connection
                if name in c.via:
                    for end in (c.a, c.b):
                        out.update(self.receivable(end.instance, end.port))
                    for n in c.via:
                        for (_, m), _ in self.instances[self.index[n]].info.handlers.items():
                            if m is not Message:
                                out.setdefault(m.__name__, m)
        if self.dormant[inst.index] >= 0 and any(
                p.port == port for p in self.pools.values() if name in p.slots):
            out.update(Spawn=Spawn, Retire=Retire)        # from the pool's owner
        if any(p.owner == name and p.owner_port == port for p in self.pools.values()):
            out["Retired"] = Retired                      # from a slot of its pool
        return out

    def local_view(self, name: str, lid: int) -> dict[str, Any]:
        inst = self.instances[self.index[name]]
        return dict(zip(inst.info.fields, inst.table.values[lid]))

    # --- memory: what a long run may forget ---------------------------------------------------

    def check_first(self, n: int) -> None:
        """Run only the first `n` memo misses of each step family twice (then one in
        `determinism.EVERY`, as before): a deployment's states rarely repeat, so the
        checker's default would run every step of its first rounds twice (`runtime.node`)."""
        self._sampler.first = min(self._sampler.first, n)

    def interned(self) -> int:
        """How many local states and envelopes the kernel holds (its memo tables grow with
        them): the checker keeps every one it met, a long-running deployment must not."""
        tables = {id(inst.table): inst.table for inst in self.instances}
        return sum(len(t.values) for t in tables.values()) + len(self.envs)

    def forget(self, keep: dict[str, int]) -> dict[str, int]:
        """Forget every memoised step and every interned state, envelope and event, except
        the local states `keep` (instance name -> local id); returns their new ids.

        For the runtime, whose states never repeat when they count (a round number, a
        balance): it holds nothing but the current local state of each instance (as ids)
        and events by value, never by number.  A checker's states hold ids: it never calls
        this."""
        values = {name: self.instances[self.index[name]].table.values[lid]
                  for name, lid in keep.items()}
        for t in {id(inst.table): inst.table for inst in self.instances}.values():
            t.values.clear()
            t.ids.clear()
            t.canon.clear()
        for inst in self.instances:                 # (cleared in place: shared by reference)
            inst.amemo.clear()
            inst.views.clear()
            inst.last_view = None
        for table in (self._dmemo, self._tmemo, self._rmemo, self._property_memo,
                      self.env_ids, self.slot_ids, self._arg_slots, self.timer_ids,
                      self.cancel_ids, self._event_json, self._env_canon, self._event_keys,
                      self._fault_slots, self._env_objs):
            table.clear()
        for lst in (self.envs, self.env_src, self.env_dst, self.env_link, self.slots,
                    self.timers, self.cancels):
            lst.clear()
        for checked in self._checked.values():      # (by local id: the ids start over)
            checked.clear()
        for p in self.pools.values():               # a pool's dormant state, interned anew
            for slot in p.slots:
                inst = self.instances[self.index[slot]]
                self.dormant[inst.index] = inst.table.intern(dormant_values(p.cls))
        return {name: self.instances[self.index[name]].table.intern(v)
                for name, v in values.items()}

    # --- successors: the checker's hot path ---------------------------------------------------

    def successors(self, state: State) -> tuple[list[tuple[int, State, tuple[Violation, ...]]],
                                                  int]:
        """Every enabled event of `state` with its next state and violations.

        Returns (steps, enabled) where `enabled` counts enabled events including those that
        change nothing (self-loops, left out of `steps` unless they report a violation).
        Events are ints: an envelope id (>= 0) to deliver, or ~slot for any other event.
        """
        if self._general or self.chooses:
            if self.extended or self.chooses:
                return self._successors_extended(state)
            return self._successors_channels(state)
        locals_, net = state
        network = self.network
        consumes = network.consumes
        deliver, add = network.deliver, network.add
        env_dst = self.env_dst
        dmemo: dict[int, Any] = self._dmemo
        noop = _NOOP
        out: list[tuple[int, State, tuple[Violation, ...]]] = []
        enabled = 0
        deferred = DEFERRED
        for env in network.deliverable(net):
            dst = env_dst[env]
            lid = locals_[dst]
            o = dmemo.get(lid << 32 | env)
            if o is None:
                o = self._deliver_outcome(dst, lid, env)
            if o is deferred:
                continue
            enabled += 1
            if o is noop:                          # changes nothing but the network, if that
                if consumes:
                    out.append((env, (locals_, deliver(net, env, ())), ()))
                continue
            new_lid, sends, viol, _ = o
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
            for slot, (new_lid, sends, viol, _) in acts:
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

    @property
    def lists_moves(self) -> bool:
        """Whether `moving_events` is cheaper than `successors` (it builds no next state): the
        hot path, without faults, timers, choices or bounded/lossy links.  Elsewhere it is
        `successors` less the next states."""
        return not (self._general or self.chooses)

    def moving_events(self, state: State) -> list[tuple[int, tuple[Violation, ...]]]:
        """The events of `successors(state)`'s steps with their violations, in the same order,
        without building the next states (an engine that takes one of them then calls
        `apply`): the enabled events that change something or report a violation."""
        if self._general or self.chooses:
            return [(e, viol) for e, _, viol in self.successors(state)[0]]
        locals_, net = state
        network = self.network
        consumes = network.consumes
        keeps = network.keeps
        env_dst = self.env_dst
        dmemo: dict[int, Any] = self._dmemo
        noop = _NOOP
        deferred = DEFERRED
        out: list[tuple[int, tuple[Violation, ...]]] = []
        for env in network.deliverable(net):
            lid = locals_[env_dst[env]]
            o = dmemo.get(lid << 32 | env)
            if o is None:
                o = self._deliver_outcome(env_dst[env], lid, env)
            if o is deferred:
                continue
            if o is noop:                     # changes nothing but the network, if that
                if consumes:
                    out.append((env, ()))
                continue
            new_lid, sends, viol, _ = o
            # as `successors`: the network changes when it consumes or the sends add to it
            if new_lid == lid and not viol and not consumes and keeps(net, sends):
                continue
            out.append((env, viol))
        amemos = self._amemos
        for i, lid in enumerate(locals_):
            acts = amemos[i].get(lid)
            if acts is None:
                acts = self._action_outcomes(self.instances[i], lid)
            for slot, (new_lid, sends, viol, _) in acts:
                if new_lid == lid and not viol and keeps(net, sends):
                    continue
                out.append((~slot, viol))
        return out

    def moving_step(self, state: State, ev: int) -> tuple[State, tuple[Violation, ...]] | None:
        """The step of `successors(state)` for event `ev` alone: (next state, violations), or
        None when `ev` is not one of its steps (not enabled, or it changes nothing and
        reports nothing).  It computes that event's outcome only (an action's, not every
        action of the instance), for an engine that replays one event in a state it has not
        expanded.  Where `lists_moves` only (no faults, timers, choices, bounded or lossy
        links)."""
        assert not (self._general or self.chooses), "moving_step: where lists_moves"
        locals_, net = state
        network = self.network
        o: Any
        if ev >= 0:                                            # deliver
            if not any(e == ev for e in network.deliverable(net)):
                return None
            dst = self.env_dst[ev]
            lid = locals_[dst]
            o = self._dmemo.get(lid << 32 | ev)
            if o is None:
                o = self._deliver_outcome(dst, lid, ev)
            if o is DEFERRED:
                return None
            if o is _NOOP:
                return ((locals_, network.deliver(net, ev, ())), ()) if network.consumes \
                    else None
            new_lid, sends, viol, _ = o
            new_net = network.deliver(net, ev, sends) if sends or network.consumes else net
            i = dst
        else:
            slot = self.slots[~ev]
            if slot[0] != "action":
                return None
            i = slot[1]
            lid = locals_[i]
            o = next((o for s, o in self._action_alone(i, lid, slot[2]) if s == ~ev), None)
            if o is None:
                return None
            new_lid, sends, viol, _ = o
            new_net = network.add(net, sends) if sends else net
        if new_lid == lid:
            if new_net is net and not viol:
                return None
            return (locals_, new_net), viol
        return (locals_[:i] + (new_lid,) + locals_[i + 1:], new_net), viol

    def _successors_channels(self, state: State
                             ) -> tuple[list[tuple[int, State, tuple[Violation, ...]]], int]:
        """`successors` of a short state with bounded or lossy links: the hot path's loops
        with the capacity rule on each step's sends (`network.split`: a blocked step is not
        enabled, a full "drop" link loses its sends), then a loss of each message a lossy
        link may lose — what `enabled_events` and `apply` give, in the same order."""
        locals_, net = state
        network = self.network
        split, deliver, add = network.split, network.deliver_as_is, network.add_as_is
        env_dst = self.env_dst
        out: list[tuple[int, State, tuple[Violation, ...]]] = []
        enabled = 0
        for env in network.deliverable(net):
            dst = env_dst[env]
            lid = locals_[dst]
            o = self._delivery(lid, env)
            if o is DEFERRED:
                continue
            new_lid, sends, viol, _ = o
            if sends:
                sends, _, blocked = split(net, env, sends)
                if blocked:
                    continue
            enabled += 1
            new_locals = locals_ if new_lid == lid else \
                locals_[:dst] + (new_lid,) + locals_[dst + 1:]
            out.append((env, (new_locals, deliver(net, env, sends)), viol))
        for i, lid in enumerate(locals_):
            for slot, (new_lid, sends, viol, _) in self._actions(i, lid):
                if sends:
                    sends, _, blocked = split(net, -1, sends)
                    if blocked:
                        continue
                enabled += 1
                new_net = add(net, sends) if sends else net
                if new_lid == lid:
                    if new_net is net and not viol:
                        continue
                    new_locals = locals_
                else:
                    new_locals = locals_[:i] + (new_lid,) + locals_[i + 1:]
                out.append((~slot, (new_locals, new_net), viol))
        if self.lossy:
            for env, pos in network.losable(net):
                enabled += 1
                out.append((~self._slot_id(("lose", env, pos)),
                            (locals_, network.lose(net, env, pos)), ()))
        return out, enabled

    def _successors_extended(self, state: State
                             ) -> tuple[list[tuple[int, State, tuple[Violation, ...]]], int]:
        if self.extended and not (self.chooses or self.channels):
            steps, enabled, _ = successors_extended(self, state)     # (one pass: extended.py)
            return steps, enabled
        out = []
        events = self.enabled_events(state)
        for ev in events:
            nxt, _, viol = self.apply(state, ev)
            if nxt != state or viol:
                out.append((ev, nxt, viol))
        return out, len(events)

    # --- what is enabled, and what each event does -------------------------------------------

    def enabled_events(self, state: State) -> list[int]:
        """The enabled events of `state` (ints, in a deterministic order), self-loops included:
        deliveries, actions, then timers and faults."""
        locals_, net = state[0], state[1]
        delivery, env_dst = self._delivery, self.env_dst
        if not self.extended:
            out = [e for e in self.network.deliverable(net)
                   if delivery(locals_[env_dst[e]], e) is not DEFERRED]
            for i, lid in enumerate(locals_):
                out.extend(~slot for slot, _ in self._actions(i, lid))
            out = self._ways(state, out) if self.chooses else out
            return self._channel_events(state, out) if self.channels else out
        _, _, timers, down, budget, cut = state
        env_src = self.env_src
        deliverable = list(self.network.deliverable(net))
        out = [e for e in deliverable if not (down >> env_dst[e]) & 1
               and not (cut and ((cut >> env_src[e]) ^ (cut >> env_dst[e])) & 1)
               and delivery(locals_[env_dst[e]], e) is not DEFERRED]
        for i, lid in enumerate(locals_):
            if not (down >> i) & 1:
                out.extend(~slot for slot, _ in self._actions(i, lid))
        prev = -1
        for t in timers:
            if t != prev and not (down >> self.timers[t][0]) & 1:
                out.append(~self._slot_id(("timer", t)))
            prev = t
        drop, dup, crash, part = budget
        if (drop or dup) and self._local_link is not None:     # in-process hops: no faults
            local, link = self._local_link, self.env_link
            deliverable = [e for e in deliverable if not local[link[e]]]
        if drop and self.network.consumes:        # a duplicating network loses nothing
            out.extend(~self._slot_id(("drop", e)) for e in deliverable)
        if dup and self.network.consumes:
            out.extend(~self._slot_id(("dup", e)) for e in deliverable)
        for i in range(len(self.instances)):
            if (down >> i) & 1:
                out.extend(~self._slot_id(("restart", i, c))
                           for c in range(self._restart_choices(i)))
            elif crash:
                out.append(~self._slot_id(("crash", i)))
        if cut:
            out.append(~self._slot_id(("heal",)))
        elif part:
            out.extend(~self._slot_id(("partition", m)) for m in self.partitions)
        out = self._ways(state, out) if self.chooses else out
        return self._channel_events(state, out) if self.channels else out

    def enabled_alone(self, state: State, ev: int) -> bool:
        """`ev in enabled_events(state)`, computing that event's enabledness alone (for an
        engine that replays one event in a state it has not expanded: not every delivery's
        and action's outcome); where the kernel chooses or has bounded or lossy links, by
        `enabled_events`."""
        if self.chooses or self.channels:
            return ev in self.enabled_events(state)
        if not -len(self.slots) <= ev < len(self.envs):
            return False                                       # not an event of this kernel
        if not self.extended:
            locals_, net = state
            if ev >= 0:
                return any(e == ev for e in self.network.deliverable(net)) \
                    and self._delivery(locals_[self.env_dst[ev]], ev) is not DEFERRED
            slot = self.slots[~ev]
            if slot[0] != "action":
                return False
            acts = self._action_alone(slot[1], locals_[slot[1]], slot[2]) if self._memo_once \
                else self._actions(slot[1], locals_[slot[1]])
            return any(s == ~ev for s, _ in acts)
        locals_, net, timers, down, budget, cut = state
        network = self.network
        if ev >= 0:                                            # deliver
            dst = self.env_dst[ev]
            return any(e == ev for e in network.deliverable(net)) \
                and not (down >> dst) & 1 \
                and not (cut and ((cut >> self.env_src[ev]) ^ (cut >> dst)) & 1) \
                and self._delivery(locals_[dst], ev) is not DEFERRED
        slot = self.slots[~ev]
        kind = slot[0]
        drop, dup, crash, part = budget
        if kind == "action":
            i = slot[1]
            return not (down >> i) & 1 and any(s == ~ev for s, _ in self._actions(i, locals_[i]))
        if kind == "timer":
            return slot[1] in timers and not (down >> self.timers[slot[1]][0]) & 1
        if kind in ("drop", "dup"):
            e = slot[1]
            return bool(drop if kind == "drop" else dup) and network.consumes \
                and not (self._local_link is not None and self._local_link[self.env_link[e]]) \
                and any(x == e for x in network.deliverable(net))
        if kind == "restart":
            return bool((down >> slot[1]) & 1) and slot[2] < self._restart_choices(slot[1])
        if kind == "crash":
            return bool(crash) and not (down >> slot[1]) & 1
        if kind == "heal":
            return bool(cut)
        if kind == "partition":
            return not cut and bool(part) and slot[1] in self.partitions
        return ev in self.enabled_events(state)

    def _restart_choices(self, i: int) -> int:
        """How many ways instance i can restart (its initial values)."""
        n = self._restarts.get(i)
        if n is None:
            inst = self.instances[i]
            n = self._restarts[i] = len(inst.info.initial_values(
                self.system.overrides.get(inst.name)))
        return n

    def _ways(self, state: State, events: list[int]) -> list[int]:
        """`events` with each whose step chooses replaced by one event per way it can go:
        ("choice", event, k, values taken)."""
        out: list[int] = []
        for ev in events:
            o = self._outcome_at(state, ev)
            if type(o) is Branches:
                out.extend(~self._slot_id(("choice", ev, k, c), ("choice", ev, k, canonical(c)))
                           for k, c in enumerate(o.choices))
            else:
                out.append(ev)
        return out

    def _outcome_at(self, state: State, ev: int) -> Any:
        """The outcome of event `ev` of an instance in `state` (None: a network or fault
        event, which runs no code)."""
        locals_ = state[0]
        if ev >= 0:
            return self._delivery(locals_[self.env_dst[ev]], ev)
        slot = self.slots[~ev]
        kind = slot[0]
        if kind == "choice":
            return self._outcome_at(state, slot[1]).outcomes[slot[2]]
        if kind == "action":
            i = slot[1]
            return next(o for s, o in self._actions(i, locals_[i]) if s == ~ev)
        if kind == "timer":
            return self._timer_outcome(locals_[self.timers[slot[1]][0]], slot[1])
        if kind == "restart":
            return self._restart_outcome(slot[1], locals_[slot[1]], slot[2])
        return None

    def _channel_events(self, state: State, events: list[int]) -> list[int]:
        """Bounded and lossy links: `events` without the steps a full "block" link blocks
        (they do not happen, so they do not count against a deadlock either) and without
        duplicates on a full link, then a loss of each message a lossy link may lose."""
        network = self.network
        net = state[1]
        out = events
        if network.bounded:
            out = [ev for ev in events if not self._blocked(state, ev)]
        if self.lossy:
            # any message in flight on a lossy link, also one to a crashed or cut-off
            # instance (it stays in flight, so it may be lost)
            out.extend(~self._slot_id(("lose", env, pos)) for env, pos in network.losable(net))
        return out

    def _blocked(self, state: State, ev: int) -> bool:
        """Whether event `ev` (enabled but for capacity) would overfill a "block" link, or
        is a duplicate on a full link."""
        net = state[1]
        network = self.network
        if ev < 0 and self.slots[~ev][0] == "dup":
            return not network.room(net, self.slots[~ev][1])
        o = self._outcome_at(state, ev)
        return o is not None and bool(o[1]) and network.blocked(net, self._consumed(ev), o[1])

    def lost(self, state: State, ev: int) -> tuple[Envelope, ...]:
        """The messages the enabled event `ev` sends that a full "drop" link loses."""
        if not self.channels or not self.network.bounded:
            return ()
        o = self._outcome_at(state, ev)
        if o is None:
            return ()
        return tuple(self.envs[e] for e in self.network.lost(state[1], self._consumed(ev), o[1]))

    def _consumed(self, ev: int) -> int:
        """The envelope a delivery (or a way of one that chooses) takes off the network; -1
        for other events."""
        while ev < 0 and self.slots[~ev][0] == "choice":
            ev = self.slots[~ev][1]
        return ev if ev >= 0 else -1

    def route(self, in_flight: Iterable[Envelope], sends: tuple[Envelope, ...],
              consumed: Envelope | None = None
              ) -> tuple[tuple[Envelope, ...], tuple[Envelope, ...]] | None:
        """The capacity rule for a runtime that knows every message in flight (`in_flight`;
        `consumed`, if given, is among them and leaves as the step takes it): the step's sends
        that join their links and those a full "drop" link loses, or None when a full "block"
        link blocks the step (it must not be taken now).  Without bounded links: (sends, ())."""
        if not self.bounded or not sends:
            return sends, ()
        index = self.link_index
        links = [index[(e.src, e.src_port, e.dst, e.dst_port)] for e in sends]
        counts: dict[int, int] = {}
        for e in in_flight:
            link = index[(e.src, e.src_port, e.dst, e.dst_port)]
            counts[link] = counts.get(link, 0) + 1
        if consumed is not None:
            link = index[(consumed.src, consumed.src_port, consumed.dst, consumed.dst_port)]
            counts[link] -= 1
        kept, lost, blocked = split_sends(sends, links, lambda link: counts.get(link, 0),
                                          self._capacity, self._drop_full)
        return None if blocked else (kept, lost)

    def apply(self, state: State, ev: int) -> tuple[State, tuple[int, ...],
                                                      tuple[Violation, ...]]:
        """The meaning of one event: (next state, envelopes sent, violations).

        `ev` must be one of `enabled_events(state)` (engines that pick from that list call
        this directly; `step` checks it first)."""
        ext = self.extended
        locals_, net = state[0], state[1]
        timers, down, budget, cut = state[2:] if ext else ((), 0, (0, 0, 0, 0), 0)
        network = self.network
        i = -1
        o: Any = None
        way = -1                        # a choice event: its base event's `way`-th outcome
        if ev < 0 and self.slots[~ev][0] == "choice":
            _, ev, way, _ = self.slots[~ev]
        if ev >= 0:                                            # deliver
            i = self.env_dst[ev]
            o = self._delivery(locals_[i], ev)
            if way >= 0:
                o = o.outcomes[way]
            net = network.deliver(net, ev, o[1])
        else:
            slot = self.slots[~ev]
            kind = slot[0]
            if kind == "action":
                i = slot[1]
                # (where no memo keeps the state's actions: that action's alone)
                o = next(o for s, o in (self._action_alone(i, locals_[i], slot[2])
                                        if self._memo_once else self._actions(i, locals_[i]))
                         if s == ~ev)
                if way >= 0:
                    o = o.outcomes[way]
                net = network.add(net, o[1])
            elif kind == "timer":
                t = slot[1]
                i = self.timers[t][0]
                k = timers.index(t)
                timers = timers[:k] + timers[k + 1:]
                o = self._timer_outcome(locals_[i], t)
                if way >= 0:
                    o = o.outcomes[way]
                net = network.add(net, o[1])
            elif kind == "restart":
                i = slot[1]
                down &= ~(1 << i)
                o = self._restart_outcome(i, locals_[i], slot[2])
                if way >= 0:
                    o = o.outcomes[way]
                net = network.add(net, o[1])
            elif kind == "crash":
                i = slot[1]
                down |= 1 << i
                timers = tuple(t for t in timers if self.timers[t][0] != i)
                budget = _spend(budget, 2)
            elif kind == "drop":
                net = network.deliver(net, slot[1], ()) if network.consumes else net
                budget = _spend(budget, 0)
            elif kind == "dup":
                net = network.duplicate(net, slot[1])
                budget = _spend(budget, 1)
            elif kind == "lose":                               # a lossy link: no budget
                net = network.lose(net, slot[1], slot[2])
            elif kind == "partition":
                cut = slot[1]
                budget = _spend(budget, 3)
            else:                                              # heal
                cut = 0
        sends: tuple[int, ...] = ()
        viol: tuple[Violation, ...] = ()
        if o is not None:
            new_lid, sends, viol, tops = o
            if new_lid != locals_[i]:
                locals_ = locals_[:i] + (new_lid,) + locals_[i + 1:]
            if tops:
                timers = self._apply_timer_ops(timers, tops)
        nxt = (locals_, net, timers, down, budget, cut) if ext else (locals_, net)
        return nxt, sends, viol

    def step(self, state: State, event: int | Event | dict[str, Any]) -> StepResult:
        """Apply one enabled event: pure, deterministic, the same in every engine."""
        if isinstance(event, int):
            if not self.enabled_alone(state, event):
                raise TraceError(f"{self.describe(event)}: not enabled in this state")
            ev = event
        else:
            ev = self.event_id(state, event)
        nxt, sends, viol = self.apply(state, ev)
        return StepResult(nxt, tuple(self.envs[s] for s in sends), viol)

    # --- properties and final states ----------------------------------------------------------

    def property_violations(self, state: State) -> tuple[Violation, ...]:
        """The `always` properties that `state` breaks.  A property that raises is a spec error."""
        if not self.properties:
            return ()
        known = self._property_memo.get(state[0])
        if known is not None:
            return known
        return self._evaluate_properties(state, None)[0]

    def property_verdict(self, state: State) -> tuple[tuple[Violation, ...], frozenset[int] | None]:
        """The `always` properties that `state` breaks, evaluated now, and the instances the
        evaluation read (None: it read the network or the crashes too).  Properties are pure:
        in any state whose local states agree with `state`'s on those instances they take
        the same path and give the same verdict (the compact search's memo)."""
        if not self.properties:
            return (), frozenset()
        reads: set[int] = set()
        res, beyond = self._evaluate_properties(state, reads)
        return res, None if beyond else frozenset(reads)

    def _evaluate_properties(self, state: State, reads: set[int] | None
                             ) -> tuple[tuple[Violation, ...], bool]:
        """Evaluate every property on `state` (noting into `reads` the instances read):
        (violations, whether some read beyond the local states)."""
        memo = self._property_memo
        g = World(self, state)
        out = []
        beyond = False
        track = self._track_reads > 0       # note what each property reads, at first only
        prepared = None
        if track:
            self._track_reads -= 1
        for j, p in enumerate(self.properties):
            if track:
                # each property notes into its own set, across evaluations: `reads` gets
                # their union, a superset of what this evaluation read (still a sound key)
                g._read = self.property_reads[j]
                if reads is not None and j:
                    reads |= self.property_reads[j - 1]
            elif reads is not None:
                g._read = reads
            try:
                if track:       # its random numbers and clock not those of the evaluation
                    with outside(0):                # again (`property_reads_order`)
                        ok = p.fn(g)
                else:
                    ok = p.fn(g)
            except not_exceptions() as e:
                raise exit_error(e, f"property {p.name!r}", p.location,
                                 [f"in state: {self.render_state(state)}"]) from None
            except SpecError:           # assay's own word on the spec (a misused API)
                raise
            except Exception as e:
                raise SpecError(f"property {p.name!r} raised {type(e).__name__}: {e}",
                                traceback_location(sys.exc_info()[2]) or p.location,
                                ["a property must be total: it is evaluated on every reachable "
                                 "state, including initial ones",
                                 f"in state: {self.render_state(state)}"]) from None
            if ok is not True and ok is not False:
                ok = verdict(ok, f"property {p.name!r}", p.location)
            if track and prepared is None:
                prepared = prepare_orders(self, state)      # (once for every property)
            if track and property_reads_order(self, p.fn, state, ok, prepared):
                raise SpecError(f"property {p.name!r} is not a function of the state: "
                                "evaluated again on the same state, with its sets iterated "
                                "in other orders, it gave another verdict", p.location,
                                ["a set has no order of its own (a set of strs iterates in an "
                                 "order that follows PYTHONHASHSEED): take sorted(s), min(s) "
                                 "or max(s), not the first element of s; nor may a property "
                                 "read the clock or random numbers",
                                 f"in state: {self.render_state(state)}"])
            if g._beyond:
                beyond = True
                if track:
                    self.property_beyond[j] = True
                    g._beyond = False
            if not ok:
                out.append(Violation("property", p.name,
                                     f"property {p.name!r} does not hold", name=p.name,
                                     location=p.location))
        if track and reads is not None:
            reads |= self.property_reads[-1]
        self.property_evaluations += 1
        res = tuple(out)
        if not beyond and not self._memo_once:    # a function of the local states alone:
            memo[state[0]] = res                      # share the verdict
        elif beyond:
            self._memo_partial = True           # the memo's keys are not every state's
        return res, beyond

    def vacuous_notes(self) -> list[str]:
        """A note for each property that read nothing of the state when evaluated on the
        first initial state: it is then constantly true (nothing it did depended on the
        state), e.g. `all(... for c in g.instances(C))` with no instance of C.  `simulate`
        and `run` warn with it before they start; `check` notes the same from its search
        (`_property_report`).  A property that raises is left to the engine to report."""
        if not self.properties:
            return []
        starts = self.initial_states()
        if not starts:
            return []
        state = starts[0][0]
        notes = []
        for p in self.properties:
            g = World(self, state)
            g._read = set()
            try:
                with outside(0):
                    p.fn(g)
            except Exception:
                continue
            if not g._read and not g._beyond:
                notes.append(read_nothing(p.name))
        return notes

    def unchanged_instances(self) -> set[int]:
        """The instances whose local state was the same in every state the properties were
        evaluated on (from the property memo's keys; else: their class never had a second
        local state).  A property that read only these (and not the network) where its reads
        were noted held trivially: with the same inputs everywhere, a property (a pure
        function) takes the same path and reads the same instances in every state."""
        keys = iter(self._property_memo)
        first = next(keys, None)
        if first is None or self._memo_partial:
            return {i for i, inst in enumerate(self.instances) if len(inst.table.values) <= 1}
        same = set(range(len(first)))
        for key in keys:
            for i in [i for i in same if key[i] != first[i]]:
                same.discard(i)
            if not same:
                break
        return same

    def local_property_violations(self, lids: dict[str, int], in_flight: list[Envelope] | None,
                                  skip: set[str]) -> tuple[tuple[Violation, ...], set[str]]:
        """The `always` properties broken in a partial world (`PartialWorld`): instances by
        local state id, the messages in flight if known.  Properties in `skip` are not
        evaluated; returns the violations and the properties found not local here (they read
        an instance or the network this world does not have)."""
        g = PartialWorld(self, {self.index[n]: lid for n, lid in lids.items()}, in_flight)
        out = []
        not_local: set[str] = set()
        for p in self.properties:
            if p.name in skip:
                continue
            try:
                ok = p.fn(g)
            except NotLocal:
                not_local.add(p.name)
                continue
            except not_exceptions() as e:
                raise exit_error(e, f"property {p.name!r}", p.location) from None
            except Exception as e:
                out.append(Violation("property", p.name,
                                     f"property {p.name!r} raised {type(e).__name__}: {e}",
                                     name=p.name, location=p.location))
                continue
            if ok is not True and ok is not False:
                ok = verdict(ok, f"property {p.name!r}", p.location)
            if not ok:
                out.append(Violation("property", p.name, f"property {p.name!r} does not hold",
                                     name=p.name, location=p.location))
        return tuple(out), not_local

    def is_terminal(self, state: State) -> bool:
        """Whether `state` may be final: declared so by `@s.terminal`, or every state when
        deadlocks are not checked."""
        if not self.check_deadlock:
            return True
        if not self.terminals:
            return False
        g = World(self, state)
        for pred, loc in self.terminals:
            try:
                if pred(g):
                    return True
            except not_exceptions() as e:
                raise exit_error(e, "terminal predicate", loc) from None
            except Exception as e:
                raise SpecError(f"terminal predicate raised {type(e).__name__}: {e}",
                                traceback_location(sys.exc_info()[2]) or loc) from None
        return False

    def within(self, state: State) -> bool:
        """Whether `state` satisfies every `@s.constraint` (`check` explores beyond it)."""
        return all(self.evaluate(fn, state, "constraint", loc)
                   for fn, loc in self.system.constraints)

    def can_progress(self, state: State) -> bool:
        """Whether some event other than an optional fault (a crash, drop, loss, duplicate or
        partition) is enabled.  A system that can only move by failing is deadlocked."""
        if not self.has_faults:
            return bool(self.enabled_events(state))
        return any(ev >= 0 or self.slots[~ev][0] not in _OPTIONAL_FAULTS
                   for ev in self.enabled_events(state))

    def deadlock(self) -> Violation:
        return Violation("deadlock", self.system.name,
                         "deadlock: no event is enabled and the state is not declared terminal",
                         name="deadlock")

    # --- fairness (liveness) -----------------------------------------------------------------

    def fair_task(self, ev: int) -> tuple[Any, int] | None:
        """The fairness task of an event and its strength (1 weak, 2 strong); None when no
        fairness covers it.  A task is what fairness speaks of: one message's delivery (the
        envelope), one timer, or one action of one instance with one argument (as TLA+'s
        `\\A p: WF(A(p))`: each philosopher is fair, not only "some philosopher").
        Faults (crash, restart, drop, lose, duplicate, partition, heal) are never fair: the
        adversary may or may not take them.  The strength is the handler's or action's own
        `fair=`, else its instance's (`s.fair(kind, instance)`), else its class's, else the
        kernel's default (the system's `fairness=`, or `check --fairness`)."""
        got = self._fair.get(ev, self)
        if got is not self:
            return got                                      # type: ignore[return-value]
        if ev < 0 and self.slots[~ev][0] == "choice":     # any way of a step is the step
            got = self._fair[ev] = self.fair_task(self.slots[~ev][1])
            return got
        own: str | None = None
        if ev >= 0:
            env = self.envs[ev]
            i = self.env_dst[ev]
            h = self.instances[i].info.handler_for(env.dst_port, type(env.message))
            own = h.fair if h is not None else None
        else:
            slot = self.slots[~ev]
            if slot[0] == "action":
                i = slot[1]
                own = self.instances[i].info.actions[slot[2]].fair
            elif slot[0] == "timer":
                i, _, msg = self.timers[slot[1]]
                h = self.instances[i].info.timer_handler(type(msg))
                own = h.fair if h is not None else None
            else:
                self._fair[ev] = None
                return None
        kind = own or self._instance_fairness(i)
        out = (ev, {"weak": 1, "strong": 2}[kind]) if kind != "none" else None
        self._fair[ev] = out
        return out

    def _instance_fairness(self, i: int) -> str:
        inst = self.instances[i]
        by_class = None
        for target, kind in self.system.fair_rules:
            if target == inst.name:
                return kind
            if isinstance(target, type) and issubclass(inst.info.cls, target):
                by_class = kind
        return by_class or self.fairness

    def evaluate(self, fn: Any, state: State, what: str, location: Any = None) -> bool:
        """A predicate of the world (`fn(g)`) on `state`; one that raises is a spec error."""
        try:
            ok = fn(World(self, state))
        except not_exceptions() as e:
            raise exit_error(e, what, location) from None
        except Exception as e:
            raise SpecError(f"{what} raised {type(e).__name__}: {e}",
                            traceback_location(sys.exc_info()[2]) or location,
                            ["a property must be total: it is evaluated on every reachable "
                             "state, including initial ones",
                             f"in state: {self.render_state(state)}"]) from None
        if ok is not True and ok is not False:
            ok = verdict(ok, what, location)
        return bool(ok)

    # --- names, views, fingerprints -----------------------------------------------------------

    def view(self, i: int, lid: int) -> StateView:
        inst = self.instances[i]
        v = inst.views.get(lid)
        if v is None:
            last = inst.last_view
            if last is not None and last[0] == lid:
                return last[1]
            v = inst.runner.view(inst.table.values[lid])
            if not self._memo_once:
                inst.views[lid] = v
            else:
                inst.last_view = (lid, v)
        return v

    def local_values(self, state: State, name: str) -> dict[str, Any]:
        inst = self.instances[self.index[name]]
        return dict(zip(inst.info.fields, inst.table.values[state[0][inst.index]]))

    def in_flight(self, state: State) -> list[Envelope]:
        return [self.envs[e] for e in self.network.in_flight(state[1])]

    def pending_timers(self, state: State) -> list[tuple[str, int, Message]]:
        """The timers pending in `state`: (instance, delay, message), in canonical order."""
        if not self.extended:
            return []
        return [(self.instances[i].name, delay, msg)
                for i, delay, msg in (self.timers[t] for t in state[2])]

    def event(self, ev: int) -> Event:
        """The named form of an event id."""
        if ev >= 0:
            return Deliver(self.envs[ev])
        slot = self.slots[~ev]
        kind = slot[0]
        if kind == "choice":
            return replace(self.event(slot[1]), choices=slot[3])     # type: ignore[arg-type]
        if kind == "action":
            _, i, ai, has_arg, arg = slot
            inst = self.instances[i]
            return Fire(inst.name, inst.info.actions[ai].name, arg, has_arg)
        if kind == "timer":
            i, delay, msg = self.timers[slot[1]]
            return TimerFire(self.instances[i].name, msg, delay)
        if kind == "crash":
            return Crash(self.instances[slot[1]].name)
        if kind == "restart":
            return Restart(self.instances[slot[1]].name, slot[2])
        if kind == "drop":
            return Drop(self.envs[slot[1]])
        if kind == "dup":
            return Duplicate(self.envs[slot[1]])
        if kind == "lose":
            return Lose(self.envs[slot[1]], None if slot[2] < 0 else slot[2])
        if kind == "partition":
            return Partition(tuple(inst.name for inst in self.instances
                                   if (slot[1] >> inst.index) & 1))
        return Heal()

    def describe(self, ev: int) -> str:
        return str(self.event(ev))

    def event_key(self, ev: int) -> bytes:
        """A sort key of an event, the same in every kernel and process (interned ids
        depend on what a kernel has seen before; this does not)."""
        k = self._event_keys.get(ev)
        if k is None:
            j = self._event_json.get(ev)
            if j is None:
                j = self._event_json[ev] = self.event(ev).to_json()
            k = self._event_keys[ev] = json.dumps(j, sort_keys=True).encode()
        return k

    def event_kind(self, ev: int) -> str:
        """deliver, action, timer, crash, restart, drop, dup, lose, partition or heal (a way
        of a step that chooses is of its step's kind)."""
        if ev >= 0:
            return "deliver"
        slot = self.slots[~ev]
        return self.event_kind(slot[1]) if slot[0] == "choice" else slot[0]

    def timer_of(self, ev: int) -> int | None:
        """The timer a timer event fires (also for a way of one that chooses), else None."""
        if ev >= 0:
            return None
        slot = self.slots[~ev]
        if slot[0] == "choice":
            return self.timer_of(slot[1])
        return slot[1] if slot[0] == "timer" else None

    def event_owner(self, ev: int) -> int:
        """The instance an event runs on (the receiver of a delivery), -1 for the network."""
        if ev >= 0:
            return self.env_dst[ev]
        slot = self.slots[~ev]
        kind = slot[0]
        if kind == "choice":
            return self.event_owner(slot[1])
        if kind in ("action", "crash", "restart"):
            return slot[1]
        if kind == "timer":
            return self.timers[slot[1]][0]
        if kind in ("drop", "dup", "lose"):
            return self.env_dst[slot[1]]
        return -1

    def timer_delay(self, timer: int) -> int:
        return self.timers[timer][1]

    def event_id(self, state: State, event: Event | dict[str, Any]) -> int:
        """The id of an enabled event given by name (an `Event` or its JSON form, as in a
        trace file); `TraceError` when no enabled event of `state` has that name."""
        want = event if isinstance(event, dict) else event.to_json()
        want = {k: v for k, v in want.items() if k not in ("step", "changes", "lost")}
        if "kind" not in want:
            raise TraceError(f"event {_clip(repr(want))} has no 'kind'")
        cache = self._event_json
        found: int | None = None
        for ev in self.enabled_events(state):
            have = cache.get(ev)
            if have is None:
                have = cache[ev] = self.event(ev).to_json()
            if all(_same_json(have.get(k), v) for k, v in want.items()):
                if found is None:
                    found = ev
                elif ev != found and self.step(state, ev).state != self.step(state, found).state:
                    # values of different types with one JSON form (a tuple and a frozenset
                    # are both a list, an enum member and its name a string): the name does
                    # not say which, and taking the first would replay another run
                    raise TraceError(
                        f"{_clip(_describe_json(want))}: ambiguous — two enabled events with "
                        f"different outcomes have this JSON form: {self.describe(found)}; "
                        f"{self.describe(ev)}",
                        notes=["their values differ only in type (e.g. a tuple and a set), "
                               "which a trace's JSON does not record; give the action's "
                               "domain values of one type"])
        if found is not None:
            return found
        raise TraceError(f"{_clip(_describe_json(want))}: not enabled in this state",
                         notes=[f"enabled here: {self._enabled_summary(state)}"])

    def _enabled_summary(self, state: State, most: int = 6) -> str:
        evs = self.enabled_events(state)
        names = [self.describe(e) for e in evs[:most]]
        more = f"; and {len(evs) - most} more" if len(evs) > most else ""
        return "; ".join(names) + more if names else "nothing (a final state)"

    def fingerprint(self, state: State) -> str:
        """A 16-hex-digit key of the state, the same in every process (no `hash()`)."""
        locals_, net = state[0], state[1]
        h = hashlib.blake2b(digest_size=8)
        for inst, lid in zip(self.instances, locals_):
            h.update(inst.table.canonical(lid))
        if isinstance(self.network, Fifo):
            for q in net:
                h.update(b"q")
                for e in q:
                    h.update(self._env_bytes(e))
        else:
            h.update(b"n")
            for b in sorted(self._env_bytes(e) for e in self.network.in_flight(net)):
                h.update(b)
        if self.extended:
            _, _, timers, down, budget, cut = state
            h.update(b"t")
            for b in sorted(canonical((self.instances[i].name, d, m))
                            for i, d, m in (self.timers[t] for t in timers)):
                h.update(b)
            names = [inst.name for inst in self.instances]
            h.update(canonical((tuple(n for k, n in enumerate(names) if (down >> k) & 1), budget,
                                tuple(n for k, n in enumerate(names) if (cut >> k) & 1))))
        return h.hexdigest()

    def _env_bytes(self, e: int) -> bytes:
        b = self._env_canon.get(e)
        if b is None:
            env = self.envs[e]
            b = self._env_canon[e] = canonical(
                (env.src, env.src_port, env.dst, env.dst_port, env.message, env.meta)
                if env.meta else (env.src, env.src_port, env.dst, env.dst_port, env.message))
        return b

    def changes(self, before: State, after: State) -> list[Change]:
        """Which fields of which instances differ between two states, in instance order."""
        out = []
        for inst, a, b in zip(self.instances, before[0], after[0]):
            if a == b:
                continue
            va, vb = inst.table.values[a], inst.table.values[b]
            for f, t, x, y in zip(inst.info.fields, inst.info.types, va, vb):
                if x != y:
                    out.append(Change(inst.name, f, as_declared(t, x), as_declared(t, y)))
        return out

    def assigned(self, state: State, ev: int) -> dict[str, frozenset[str]]:
        """The fields the code of the enabled event `ev` assigns, by instance: also those it
        sets to the value they had, which `changes` cannot tell from untouched ones.  For a
        person reading a run, off the hot path: the step's code runs again, recording.  A step
        that a violation aborts assigns nothing (its state is unchanged)."""
        way = 0
        if ev < 0 and self.slots[~ev][0] == "choice":
            _, ev, way, _ = self.slots[~ev]
        i = self.event_owner(ev)
        kind = self.event_kind(ev)
        if i < 0 or kind not in ("deliver", "action", "timer", "restart"):
            return {}
        inst = self.instances[i]
        lid = state[0][i]
        runs: list[set[str]] = []
        inst.runner.recorder = runs
        try:
            if kind == "deliver":
                o = self._deliver_outcome(i, lid, ev)
            elif kind == "action":
                _, _, ai, has_arg, arg = self.slots[~ev]
                o = self._run_action(inst, inst.table.values[lid], inst.info.actions[ai],
                                     has_arg, arg)
            elif kind == "timer":
                self._tmemo.pop((lid, self.slots[~ev][1]), None)
                o = self._timer_outcome(lid, self.slots[~ev][1])
            else:
                self._rmemo.pop((i, lid, self.slots[~ev][2]), None)
                o = self._restart_outcome(i, lid, self.slots[~ev][2])
        finally:
            inst.runner.recorder = None
        if isinstance(o, Branches):
            o = o.outcomes[way]
        # each way of the step ran once in order, then all once more (`twice`)
        names = runs[way] if way < len(runs) else set()
        if o is DEFERRED or (o[0] == lid and o[2]):
            return {}
        fields = [f for f in inst.info.fields if f in names]
        return {inst.name: frozenset(fields)} if fields else {}

    def render_state(self, state: State) -> str:
        parts = []
        for inst, lid in zip(self.instances, state[0]):
            parts.append(repr(self.view(inst.index, lid)))
        flight = self.in_flight(state)
        if flight:
            parts.append("in flight: " + "; ".join(str(e) for e in flight))
        if self.extended:
            down = [inst.name for inst in self.instances if (state[3] >> inst.index) & 1]
            if down:
                parts.append("crashed: " + ", ".join(down))
        return ", ".join(parts)

    def crashed(self, state: State) -> list[str]:
        """The instances that are down in `state`."""
        if not self.extended:
            return []
        return [inst.name for inst in self.instances if (state[3] >> inst.index) & 1]


def read_nothing(name: str) -> str:
    """The warning for a property that read nothing of the state (every engine's words)."""
    return f"property {name!r} read nothing of the state: it is constantly true (vacuous?)"


TRACK_READS = 100     # evaluations of the properties whose reads are noted (see Kernel)


class World:
    """The global state as a property sees it: `g["tm"]`, `g.instances(ResourceManager)`."""

    __slots__ = ("_k", "_state", "_beyond", "_read")

    def __init__(self, kernel: Kernel, state: State) -> None:
        self._k = kernel
        self._state = state
        self._beyond = False        # read more than the local states (network, crashes)
        self._read: set[int] | None = None      # where to note the instances read

    def __getitem__(self, name: str) -> StateView:
        i = self._k.index.get(name)
        if i is None:
            raise KeyError(_no_instance(self._k, name))
        if self._read is not None:
            self._read.add(i)
        return self._k.view(i, self._state[0][i])

    def instances(self, cls: type | None = None) -> list[StateView]:
        """The state of every instance (of `cls`, if given), in the order they were added."""
        k = self._k
        idx = k._class_indices.get(cls)
        if idx is None:
            if cls is not None and not (isinstance(cls, type) and issubclass(cls, Component)):
                # (a Message class, or a name: the list would be empty, and a property
                # over it vacuously true)
                what = f"{cls.__name__}, which is not a Component" if isinstance(cls, type) \
                    else repr(cls)
                raise TypeError(f"g.instances() takes a Component class, not {what}")
            idx = k._class_indices[cls] = tuple(
                i for i, inst in enumerate(k.instances) if cls is None or issubclass(inst.cls, cls))
        if self._read is not None:
            self._read.update(idx)
        locals_ = self._state[0]
        views = k._views
        dormant = k.dormant
        out = []
        for i in idx:
            lid = locals_[i]
            if lid == dormant[i]:                   # a pool's dormant slot: not an instance now
                continue
            v = views[i].get(lid)
            out.append(k.view(i, lid) if v is None else v)
        return out

    def in_flight(self, mtype: type | None = None) -> list[Envelope]:
        """The messages in the network (of type `mtype`, if given)."""
        self._beyond = True
        return [e for e in self._k.in_flight(self._state)
                if mtype is None or isinstance(e.message, mtype)]

    def crashed(self) -> list[str]:
        """The names of the instances that are down."""
        self._beyond = True
        return self._k.crashed(self._state)

    def __repr__(self) -> str:
        # the whole state, network included: a property that reads it (`"x" in repr(g)`)
        # read everything, or its verdict would be shared by states that differ
        self._beyond = True
        if self._read is not None:
            self._read.update(range(len(self._k.instances)))
        return f"<World {self._k.render_state(self._state)}>"


class NotLocal(Exception):
    """A property read something a partial world does not have."""


class PartialWorld(World):
    """What one runtime node sees of the global state: the local states of the instances it
    hosts, and the messages in flight when the driver knows them all (one process).  Reading
    anything else raises `NotLocal`: such a property cannot be monitored there."""

    __slots__ = ("_lids", "_flight")

    def __init__(self, kernel: Kernel, lids: dict[int, int],
                 in_flight: list[Envelope] | None) -> None:
        super().__init__(kernel, ((), ()))
        self._lids = lids
        self._flight = in_flight

    def __getitem__(self, name: str) -> StateView:
        i = self._k.index.get(name)
        if i is None:
            raise KeyError(f"no instance named {name!r}")
        lid = self._lids.get(i)
        if lid is None:
            raise NotLocal(name)
        return self._k.view(i, lid)

    def instances(self, cls: type | None = None) -> list[StateView]:
        k = self._k
        idx = [i for i, inst in enumerate(k.instances) if cls is None or issubclass(inst.cls, cls)]
        if any(i not in self._lids for i in idx):
            raise NotLocal(cls)
        return [k.view(i, self._lids[i]) for i in idx
                if self._lids[i] != k.dormant[i]]           # as `World.instances`

    def in_flight(self, mtype: type | None = None) -> list[Envelope]:
        if self._flight is None:
            raise NotLocal("in_flight")
        return [e for e in self._flight if mtype is None or isinstance(e.message, mtype)]

    def crashed(self) -> list[str]:
        if self._flight is None:
            raise NotLocal("crashed")
        return []

    def __repr__(self) -> str:
        return f"<PartialWorld of {len(self._lids)} instances>"


def _no_instance(kernel: Any, name: Any) -> str:
    """What `g[name]` says of a name no instance has: the closest names, if any."""
    import difflib

    near = difflib.get_close_matches(str(name), [str(n) for n in kernel.index], n=1)
    return f"no instance named {name!r}" + (f"; did you mean {near[0]!r}?" if near else "")


def _hop_links(system: System) -> set[tuple[str, str, str, str]]:
    """The links of a system with interceptors: both directions of each connection without
    them and of each hop of the chains of those with."""
    out = set()
    for c in (*system.connections, *system.hops):
        if not c.via:
            out.add((c.a.instance, c.a.port, c.b.instance, c.b.port))
            out.add((c.b.instance, c.b.port, c.a.instance, c.a.port))
    return out


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


def _same_json(a: Any, b: Any) -> bool:
    """Equality of JSON values, where `true` is not `1`."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _spend(budget: tuple[int, int, int, int], k: int) -> tuple[int, int, int, int]:
    """The budget after one fault of kind `k` (-1, unlimited, stays so)."""
    if budget[k] < 0:
        return budget
    b = list(budget)
    b[k] -= 1
    return (b[0], b[1], b[2], b[3])


def _clip(text: str, most: int = 200) -> str:
    """Text from a trace file, cut short for a message (the file is untrusted input)."""
    return text if len(text) <= most else text[:most] + "..."


def _describe_json(j: dict[str, Any]) -> str:
    kind = j.get("kind")
    if kind in ("deliver", "drop", "duplicate", "lose"):
        m = j.get("message")
        mtype = m.get("type", "?") if isinstance(m, dict) else repr(m)
        return f"{kind} {mtype} from {j.get('from')} to {j.get('to')}"
    if kind == "action":
        arg = f"({j['arg']!r})" if j.get("arg") is not None else ""
        return f"{j.get('instance')} fires {j.get('action')}{arg}"
    if kind == "partition":
        return f"partition {j.get('group')}"
    if "instance" in j:
        return f"{kind} of {j['instance']}"
    return str(kind)


def _saved_position(info: Any, port: str, peer: str, kept: dict[str, Any]) -> int:
    """The saved position of the session (port, peer) of a persistent port: a state of the
    port's automaton (0, its start, when the save has none), else ValueError — a position
    that is no state would leave the session refusing every message, or accepting a wrong
    one, with nothing said."""
    pos = kept.get(f"{port}/{peer}", 0)
    states = len(info.automata[port].graph)
    if type(pos) is not int or not 0 <= pos < states:
        raise ValueError(f"session {port}/{peer}: {pos!r} is not a position of port "
                         f"{port!r}'s protocol (0 to {states - 1})")
    return pos
