"""Systems: named instances of components, connections between their ports, a network model
and the properties every reachable global state must satisfy.

A spec's system function builds one `System`; the kernel compiles it.  Every mistake in the
wiring is reported at the spec line that made it.

A connection is two links, one per direction.  On the `fifo` and `unordered` networks a link
may be bounded (`capacity=k`: at most k messages in flight on it; a send to a full link blocks
the step that makes it, or is lost, as `full=` says) and lossy (`lossy=True`: the network may
lose any message in flight on it, at any time, without a budget).  Both are set for the whole
system (`System(..., capacity=2, lossy=True)`) and per connection (`s.connect(a.out, b.inp,
capacity=1, full="drop")`), the connection's own choice first.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from assay.errors import Location, SpecError, caller_location, object_location
from assay.model import composite
from assay.model.component import (
    Component,
    InstanceStart,
    Port,
    _check_arity,
    check_fairness,
    check_rows,
    component_info,
)
from assay.model.composite import Composite
from assay.model.types import OneOf

NETWORKS = ("unordered", "fifo", "duplicating")
FULL = ("block", "drop")        # what a send to a full link does
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class PortRef:
    """A port of a named instance: what `System.connect` takes (`rm.tm`, `tm.rms`)."""

    instance: str
    port: str
    many: bool

    def __str__(self) -> str:
        return f"{self.instance}.{self.port}"


class InstanceRef:
    """Handle returned by `System.add`; its attributes are the instance's ports."""

    def __init__(self, system: System, name: str, cls: type[Component]) -> None:
        self._system = system
        self.name = name
        self.cls = cls

    def __getattr__(self, attr: str) -> PortRef:
        if attr.startswith("_"):
            raise AttributeError(attr)
        info = component_info(self.cls)
        ports = info.ports
        if attr not in ports:
            state = [f"{attr!r} is a field: a property reads the state through its world, "
                     f"g[{self.name!r}].{attr}, not through what s.add returned"] \
                if attr in info.fields else []
            raise SpecError(f"instance {self.name!r} ({self.cls.__name__}) has no port {attr!r}",
                            caller_location(2),
                            [*state, f"ports of {self.cls.__name__}: "
                             f"{', '.join(sorted(ports)) or '(none)'}"])
        return PortRef(self.name, attr, ports[attr].many)

    def __repr__(self) -> str:
        return f"<instance {self.name} of {self.cls.__name__}>"


@dataclass(frozen=True)
class Connection:
    """Two connected ports, and what each of the connection's two links (one per direction)
    is: `capacity` messages in flight at most (None: unbounded), what a send to a full link
    does (`full`: "block" or "drop"), and whether the network may lose its messages."""

    a: PortRef
    b: PortRef
    location: Location | None
    capacity: int | None = None
    full: str = "block"
    lossy: bool = False
    # the interceptors on the connection, from a's side to b's (`connect(..., via=)`)
    via: tuple[str, ...] = ()
    # a hop of an interceptor chain from an endpoint to its own interceptor: in-process
    # (reliable, unbounded, no faults); see `assay.model.interceptor`
    local: bool = False

    @property
    def self_loop(self) -> bool:
        """Whether the connection joins two ports of one instance (it messages itself)."""
        return self.a.instance == self.b.instance


@dataclass(frozen=True)
class Property:
    name: str
    kind: str                   # always | eventually | always_eventually | leads_to
    fn: Callable[[Any], bool]   # the state predicate (for leads_to: the goal q)
    location: Location | None
    trigger: Callable[[Any], bool] | None = None     # leads_to: p in p ~> q

    @property
    def formula(self) -> str:
        """How the property reads in temporal logic, for reports (q and p stand for
        predicates written as lambdas)."""
        q = _label(self.fn, "q")
        return {"always": f"□ {q}", "eventually": f"◇ {q}", "always_eventually": f"□◇ {q}",
                "leads_to": f"{_label(self.trigger, 'p')} ~> {q}"}[self.kind]


def _check_capacity(capacity: Any, network: str, who: str,
                    where: Location | None) -> int | None:
    """A link capacity: None (unbounded) or a whole number >= 1, on a network that consumes
    messages."""
    if capacity is None:
        return None
    if type(capacity) is not int:
        raise SpecError(f"{who}(capacity={capacity!r}): a capacity is a whole number of "
                        "messages", where, ["e.g. capacity=1; leave it out for unbounded links"])
    if capacity < 1:
        raise SpecError(f"{who}(capacity={capacity}): a link holds at least 1 message", where,
                        ["a link of capacity 0 could never carry a message; give capacity=1 or "
                         "more"])
    if network == "duplicating":
        raise SpecError(f"{who}(capacity={capacity}) on the duplicating network", where,
                        ["a duplicating network keeps every message ever sent, so its links "
                         "have no room to bound; use network='fifo' or 'unordered' with a "
                         "capacity"])
    return capacity


def _check_full(full: Any, where: Location | None) -> str:
    if full not in FULL:
        raise SpecError(f"full={full!r}: a send to a full link either blocks or is dropped",
                        where, ["full='block' (the step waits for room) or full='drop' (the "
                                "message is lost)"])
    return str(full)


def _check_lossy(lossy: Any, network: str, who: str, where: Location | None) -> bool:
    if type(lossy) is not bool:
        raise SpecError(f"{who}(lossy={lossy!r}): lossy is True or False", where)
    if lossy and network == "duplicating":
        raise SpecError(f"{who}(lossy=True) on the duplicating network", where,
                        ["a duplicating network keeps every message ever sent; use "
                         "network='fifo' or 'unordered' for lossy links"])
    return lossy


def _label(fn: Any, default: str) -> str:
    name = getattr(fn, "__name__", default)
    return default if name == "<lambda>" else name


def _world_predicate(fn: Any, kind: str, called: Location | None) -> Location | None:
    """Where a predicate of the world `g` (a property, a terminal, a constraint) is defined,
    once checked to be a plain function of one argument (see `check_plain`)."""
    from assay.model.component import _check_arity

    where = object_location(fn) if callable(fn) else None
    _check_arity(fn, 1, f"s.{kind} predicate {_label(fn, '')!s}".rstrip(), "def p(g): ...",
                 where or called)
    return where or called


class System:
    """A composition: `System("two_phase_commit", network="unordered")`.

    A system has at most `MAX_INSTANCES` instances and `MAX_CONNECTIONS` connections: far
    beyond what any engine can explore or run, and a bound on what a parameter (from the
    command line or a trace file) can make a spec build."""

    MAX_INSTANCES = 10_000
    MAX_CONNECTIONS = 100_000

    def __init__(self, name: str, network: str = "unordered", fairness: str = "none", *,
                 capacity: int | None = None, full: str = "block",
                 lossy: bool = False) -> None:
        where = caller_location(2)
        if network not in NETWORKS:
            raise SpecError(f"unknown network model {network!r}", where,
                            [f"choose one of: {', '.join(NETWORKS)}"])
        self.name = name
        self.network = network
        # the links' defaults (a connection may set its own): see the module docstring
        self.capacity = _check_capacity(capacity, network, "System", where)
        self.full = _check_full(full, where)
        self.lossy = _check_lossy(lossy, network, "System", where)
        # the fairness of every event no declaration covers (`check --fairness` overrides it)
        self.fairness = check_fairness(fairness, where)
        # (instance name or component class, kind): `s.fair(kind, ...)`
        self.fair_rules: list[tuple[str | type, str]] = []
        self.liveness: list[Property] = []
        self.instances: dict[str, type[Component]] = {}
        self.overrides: dict[str, dict[str, Any]] = {}
        self.connections: list[Connection] = []
        # the hops of connections with interceptors (`connect(..., via=)`): what the kernel
        # links, beside the connections without
        self.hops: list[Connection] = []
        self._ends: dict[tuple[str, str], list[PortRef]] = {}    # port -> its peers' ports
        self.properties: list[Property] = []
        self.terminals: list[tuple[Callable[[Any], bool], Location | None]] = []
        # TLC's CONSTRAINT: states where one is false are checked but not explored further
        self.constraints: list[tuple[Callable[[Any], bool], Location | None]] = []
        self.locations: dict[str, Location | None] = {}
        self.externals: list[str] = []
        # groups of interchangeable instances (`s.symmetric(...)`), with where each was declared
        self.symmetries: list[tuple[tuple[str, ...], Location | None]] = []
        # composites (assay/model/composite.py): the inner ports this system exports when
        # used as one, the composites flattened into it, and their terminal predicates
        self.exports: dict[str, PortRef] = {}
        self.composites: dict[str, Composite] = {}
        self.part_terminals: list[tuple[Callable[[Any], bool], Location | None]] = []
        self._flattened_into: str | None = None
        self.pools: list[Any] = []          # elastic pools (`pool`): `assay.model.pool.Pool`
        # what loading noticed and every engine reports (`assay.model.load.build_function`):
        # e.g. a property-shaped function the system function never registered
        self.load_warnings: list[str] = []

    # --- building --------------------------------------------------------------------------

    @overload
    def add(self, name: str, cls: type[Component], *, initially: Any = None,
            **initial: Any) -> InstanceRef: ...

    @overload
    def add(self, name: str, cls: System | Callable[..., System],
            **params: Any) -> composite.CompositeRef: ...

    def add(self, name: str, cls: Any, *, initially: Any = None,
            **initial: Any) -> InstanceRef | composite.CompositeRef:
        """Add an instance of `cls` named `name`; keyword arguments set initial field values
        (a value or a `one_of`).  `initially` gives correlated initial states: a list of dicts
        of field values (the instance starts in one of them; a field a dict does not name
        takes its value as above), or a predicate `lambda self: ...` that keeps the
        combinations of initial values where it holds (with the class's `initially`).

        `cls` may also be a composite: a `System`, or a function that builds one (keyword
        arguments are its parameters); see `assay/model/composite.py`."""
        where = caller_location(2)
        composite.check_open(self, where)
        if isinstance(cls, System) or (callable(cls) and not isinstance(cls, type)):
            return composite.add(self, name, cls, where, initially, initial)
        if not isinstance(name, str) or not _NAME.match(name):
            raise SpecError(f"instance name {name!r} is not a valid name", where,
                            ["use letters, digits, '_' and '-', starting with a letter or '_'"])
        name = str.__str__(name)   # a plain str: a Peer (a str subclass) names events as one
        if name in self.instances or name in self.composites:
            raise SpecError(f"instance {name!r} is added twice", where)
        if len(self.instances) >= self.MAX_INSTANCES:
            raise SpecError(f"system {self.name!r} would have more instances than assay "
                            f"allows (at most {self.MAX_INSTANCES} instances)", where,
                            ["a parameter that sets the size of the system is too large"])
        if not (isinstance(cls, type) and issubclass(cls, Component)):
            raise SpecError(f"System.add({name!r}, ...) needs a Component class, got {cls!r}",
                            where)
        info = component_info(cls)
        for k, v in initial.items():
            if k not in info.field_index:
                raise SpecError(f"{cls.__name__} has no field {k!r} to initialise", where,
                                [f"fields: {', '.join(info.fields) or '(none)'}"])
            spec = info.types[info.field_index[k]]
            for value in (v.values if isinstance(v, OneOf) else (v,)):
                if not spec.conforms(value):
                    raise SpecError(f"initial value {value!r} for {name}.{k} is not a "
                                    f"{spec.describe()}", where)
        own: Any = None
        if initially is not None and callable(initially) and not isinstance(initially, type):
            _check_arity(initially, 1, f"initially= of instance {name!r}", "lambda self: ...",
                         where)
            own = initially
        elif initially is not None:
            own = check_rows(cls, info.fields, info.types, initially, where,
                             f"initially= of instance {name!r}")
            for row in own:
                both = sorted(set(row) & set(initial))
                if both:
                    raise SpecError(f"instance {name!r}: field {both[0]!r} is given both as a "
                                    "keyword and in initially=", where,
                                    ["give it in one place: a keyword sets it in every "
                                     "initial state"])
        start = InstanceStart(initial, name, own, where)
        if info.correlated(start):            # no initial state, a predicate that raises: here
            info.initial_values(start)
        self.instances[name] = cls
        self.overrides[name] = start
        self.locations[name] = where
        return InstanceRef(self, name, cls)

    def connect(self, a: Any, b: Any, *, capacity: int | None = None, full: str | None = None,
                lossy: bool | None = None, via: Any = None) -> None:
        """Connect two ports: `s.connect(rm.tm, tm.rms)`.  The two ports may belong to one
        instance (it sends to itself through the network), but a port does not connect to
        itself.  `capacity`, `full` and `lossy` set this connection's links (in each
        direction); left out, they are the system's.  `via` puts interceptors on the
        connection (an instance or class of an `Interceptor`, or a list of them, from a's
        side to b's): see `assay.model.interceptor`."""
        where = caller_location(2)
        for end in (a, b):
            if isinstance(end, Port):
                raise SpecError(f"connect() got the class attribute {end.name!r}, not a port of "
                                "an instance", where,
                                ["connect ports of instances: x = s.add('x', C); "
                                 "s.connect(x.port, y.port)"])
            if isinstance(end, composite.CompositeRef):
                raise SpecError(f"connect() got the composite {end.name!r}, not one of its "
                                "exported ports", where,
                                [f"write {end.name}.<port>, e.g. one of: "
                                 f"{', '.join(sorted(end._composite.exports)) or '(none)'}"])
            if isinstance(end, InstanceRef):
                raise SpecError(f"connect() got the instance {end.name!r}, not one of its ports",
                                where, [f"write {end.name}.<port>, e.g. one of: "
                                        f"{', '.join(sorted(component_info(end.cls).ports))}"])
            if not isinstance(end, PortRef) or end.instance not in self.instances:
                raise SpecError(f"connect() needs ports of instances of this system, got {end!r}",
                                where)
        composite.check_open(self, where)
        if self.composites:
            composite.check_connect(self, a, b, where)
        if (a.instance, a.port) == (b.instance, b.port):
            others = sorted(set(component_info(self.instances[a.instance]).ports) - {a.port})
            raise SpecError(f"connect({a}, {b}) connects port {a} to itself", where,
                            ["a port reaches each peer through one session, which would be "
                             "both its ends here",
                             f"an instance messages itself through two of its ports: "
                             f"s.connect({a}, {a.instance}.{others[0]})" if others else
                             "an instance messages itself through two of its ports: give "
                             "the component a second port, e.g. one to send on and one to "
                             "receive on"])
        cap = self.capacity if capacity is None else _check_capacity(
            capacity, self.network, "connect", where)
        mode = self.full if full is None else _check_full(full, where)
        if full is not None and cap is None:
            raise SpecError(f"connect({a}, {b}, full={full!r}) without a capacity", where,
                            ["full= says what a send to a full link does; give the links a "
                             "capacity too: capacity=1"])
        lost = self.lossy if lossy is None else _check_lossy(lossy, self.network, "connect",
                                                             where)
        if len(self.connections) >= self.MAX_CONNECTIONS:
            raise SpecError(f"system {self.name!r} would have more connections than assay "
                            f"allows (at most {self.MAX_CONNECTIONS} connections)", where,
                            ["a parameter that sets the size of the system is too large"])
        ends = self._ends
        key_a, key_b = (a.instance, a.port), (b.instance, b.port)
        if any((p.instance, p.port) == key_b for p in ends.get(key_a, ())):
            raise SpecError(f"{a} and {b} are already connected", where)
        for end in (a, b):
            if not end.many and ends.get((end.instance, end.port)):
                raise SpecError(f"port {end} is a single port and is already connected", where,
                                ["declare it Port(many=True) to connect several peers"])
        for end, other in ((a, b), (b, a)):
            if any(p.instance == other.instance for p in ends.get((end.instance, end.port), ())):
                raise SpecError(f"port {end} is already connected to {other.instance!r}", where,
                                ["a port reaches each peer once; peers are named by instance"])
        chain: tuple[str, ...] = ()
        if via is not None:
            from assay.model.interceptor import chain_hops, interceptor_chain

            chain = interceptor_chain(self, via, a, b, where)
            for hop in chain_hops(a, b, chain, where, cap, mode, lost):
                self.hops.append(hop)
                for end, other in ((hop.a, hop.b), (hop.b, hop.a)):
                    if end.instance in chain:
                        ends.setdefault((end.instance, end.port), []).append(other)
        self.connections.append(Connection(a, b, where, cap, mode, lost, chain))
        ends.setdefault(key_a, []).append(b)
        ends.setdefault(key_b, []).append(a)

    def pool(self, name: str, cls: type[Component], *, size: int, owner: Any, port: str,
             live: str, min: int = 0) -> Any:
        """An elastic pool: `size` slots `name0 ..` of `cls`, dormant until the owner
        spawns them (`self.spawn(name, **init)`) — the first `min` live from the start —,
        connected by their port `port` to the owner's many-port `owner`; the owner keeps the
        live slots in its field `live`.  See `assay.model.pool`."""
        from assay.model.pool import declare
        return declare(self, name, cls, size, owner, port, live, caller_location(2), min)

    def external(self, *refs: Any) -> None:
        """Mark instances as the outside world: `s.external(client)`.

        In the model an external instance is an ordinary component — its actions are what the
        outside may do, checked, verified and simulated like any other.  At run time nothing
        fires them on its own: a program drives them through `assay.runtime.connect`, and only
        as the model allows (a message the model's actions cannot send is refused), so what
        `check` explored is what the deployment can see.
        """
        where = caller_location(2)
        if not refs:
            raise SpecError("external() needs at least one instance", where,
                            ["write s.external(client), with client = s.add('client', ...)"])
        for ref in refs:
            if isinstance(ref, composite.CompositeRef):
                raise SpecError(f"external() got the composite {ref.name!r}", where,
                                ["mark the outside world's instances external inside the "
                                 "composite's system function"])
            if isinstance(ref, PortRef):
                raise SpecError(f"external() got the port {ref}, not an instance", where,
                                [f"write s.external({ref.instance})"])
            if not isinstance(ref, InstanceRef) or ref.name not in self.instances:
                raise SpecError(f"external() needs instances of this system, got {ref!r}", where)
            if ref.name in self.externals:
                raise SpecError(f"instance {ref.name!r} is marked external twice", where)
            composite.check_outside(self, ref.name, where, f"external({ref.name})")
            self.externals.append(ref.name)

    def symmetric(self, *refs: Any) -> None:
        """Declare instances interchangeable: `s.symmetric(rm1, rm2, rm3)` (instances or their
        names, or one list of them).  `check` then explores one state per orbit under the
        permutations of the group (symmetry reduction, TLC's SYMMETRY): every reference to
        a member — a peer name in a field, a message, a set, a map, a session, the network —
        is renamed consistently.  The members must be of one class, with the same initial
        values, wired alike; `check` says so when they are not."""
        where = caller_location(2)
        if len(refs) == 1 and isinstance(refs[0], list | tuple):
            refs = tuple(refs[0])
        names: list[str] = []
        for ref in refs:
            if isinstance(ref, composite.CompositeRef):
                raise SpecError(f"symmetric() got the composite {ref.name!r}; interchanging "
                                "whole composites is not supported", where,
                                ["declare interchangeable instances inside the composite's "
                                 "system function: they are carried over"])
            name = ref.name if isinstance(ref, InstanceRef) else ref
            if isinstance(ref, PortRef):
                raise SpecError(f"symmetric() got the port {ref}, not an instance", where,
                                [f"write s.symmetric(..., {ref.instance!r}, ...)"])
            if not isinstance(name, str) or name not in self.instances or (
                    isinstance(ref, InstanceRef) and ref._system is not self):
                raise SpecError(f"symmetric() needs instances of this system, got {ref!r}",
                                where, ["add the instances first, then declare them symmetric"])
            composite.check_outside(
                self, name, where, "symmetric()",
                lambda c: f"declare it symmetric in {c}'s system function (s.symmetric there "
                          "is carried over); whole composites are not interchangeable")
            if name in names or any(name in g for g, _ in self.symmetries):
                raise SpecError(f"instance {name!r} is declared symmetric twice", where)
            names.append(name)
        if len(names) < 2:
            raise SpecError("symmetric() needs at least two instances to interchange", where)
        self.symmetries.append((tuple(names), where))

    def export(self, name: str, port: Any) -> None:
        """Make an inner port one of this system's own, for when it is used as a composite
        (`outer.add("shard0", kv_shard)`): `s.export("client", primary.clients)`.  From
        outside, `shard0.client` is that port; the composite's other ports are unreachable.
        A `many` port stays many."""
        composite.export(self, name, port, caller_location(2))

    # --- properties --------------------------------------------------------------------------

    def always(self, fn: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """Decorator: a safety property `fn(g)` that every reachable global state satisfies."""
        where = _world_predicate(fn, "always", caller_location(2))
        name = fn.__name__
        if name != "<lambda>" and any(p.name == name for p in self.properties):
            # the second would be reported under the first's name: which one failed?
            raise SpecError(f"there are two properties named {name!r}", where,
                            ["give one of them another name"])
        self.properties.append(Property(name, "always", fn, where))
        return fn

    def eventually(self, fn: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """Decorator: liveness ◇q — every behaviour from every initial state reaches a state
        where `fn(g)` holds (under the system's fairness)."""
        self._liveness("eventually", fn, None, fn.__name__)
        return fn

    def always_eventually(self, fn: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """Decorator: liveness □◇q — `fn(g)` holds again and again, forever, in every
        behaviour (under the system's fairness)."""
        self._liveness("always_eventually", fn, None, fn.__name__)
        return fn

    def leads_to(self, p: Callable[[Any], bool], q: Callable[[Any], bool],
                 name: str | None = None) -> None:
        """Liveness p ~> q: whenever `p(g)` holds, `q(g)` holds then or later, in every
        behaviour (under the system's fairness).  `s.leads_to(requested, granted)`."""
        for f in (p, q):
            if not callable(f):
                raise SpecError(f"leads_to() needs two predicates of the world, got {f!r}",
                                caller_location(2), ["s.leads_to(lambda g: ..., lambda g: ...)"])
        label = name or f"{getattr(p, '__name__', 'p')} ~> {getattr(q, '__name__', 'q')}"
        self._liveness("leads_to", q, p, label)

    def _liveness(self, kind: str, fn: Any, trigger: Any, name: str) -> None:
        where = _world_predicate(fn, kind, caller_location(3))
        if trigger is not None:
            _world_predicate(trigger, kind, caller_location(3))
        if any(p.name == name for p in self.liveness):
            raise SpecError(f"there are two liveness properties named {name!r}", where,
                            ["give one of them another name"])
        self.liveness.append(Property(name, kind, fn, where, trigger))

    def fair(self, kind: str, *targets: Any) -> None:
        """Declare the fairness of instances or of every instance of component classes:
        `s.fair("strong", philosopher)` or `s.fair("weak", Philosopher)`.  It covers their
        actions, the deliveries of messages to them and their timers; a handler's or action's
        own `fair=` takes precedence, then an instance's, then its class's, then the
        system's default.  A composite (what `s.add` returned for one) stands for every
        instance inside it that the composite's own system function left without fairness;
        an instance inside a composite is not named from outside (encapsulation).  A class
        names no instance: like the system's default, it covers the instances of the class
        inside composites too, those their composite's function left without fairness (its
        own word — a rule, a class rule, its default — holds first), before or after the
        composite is added."""
        where = caller_location(2)
        kind = check_fairness(kind, where)
        if not targets:
            raise SpecError("fair() needs at least one instance or component class", where,
                            [f"write s.fair({kind!r}, node) or s.fair({kind!r}, Node)"])
        for t in targets:
            inner = composite.members(self, t)
            if inner is not None:       # every instance of a composite
                self.fair_rules.extend((n, kind) for n in inner)
            elif isinstance(t, InstanceRef) and t._system is self and t.name in self.instances:
                composite.check_outside(
                    self, t.name, where, f"fair({kind!r}, ...)",
                    lambda c: f"declare its fairness in {c}'s system function, or the whole "
                              f"composite's: s.fair({kind!r}, {c}) covers those of its "
                              "instances it leaves without fairness of their own")
                self.fair_rules.append((t.name, kind))
            elif isinstance(t, type) and issubclass(t, Component):
                self.fair_rules.append((t, kind))
            else:
                raise SpecError(f"fair() needs instances of this system or component classes, "
                                f"got {t!r}", where)

    def constraint(self, pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """Decorator: bound the explored state space (TLC's CONSTRAINT).  A reachable state
        where `pred(g)` is false is still checked (contracts, properties) but `check` does
        not explore beyond it; having only such successors is no deadlock.  Liveness is
        decided on the states within the constraint.  `simulate` and `assay run` ignore
        it."""
        self.constraints.append((pred, _world_predicate(pred, "constraint",
                                                        caller_location(2))))
        return pred

    def terminal(self, pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """Decorator: states where `pred(g)` holds are final, so having no event is no deadlock."""
        self.terminals.append((pred, _world_predicate(pred, "terminal", caller_location(2))))
        return pred

    def __repr__(self) -> str:
        return f"<System {self.name}: {len(self.instances)} instances, network={self.network}>"
