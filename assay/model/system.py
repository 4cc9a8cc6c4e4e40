"""Systems: named instances of components, connections between their ports, a network model
and the properties every reachable global state must satisfy.

A spec's system function builds one `System`; the kernel compiles it.  Every mistake in the
wiring is reported at the spec line that made it.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assay.errors import Location, SpecError, caller_location, object_location
from assay.model.component import (
    Component,
    InstanceStart,
    Port,
    _check_arity,
    check_fairness,
    check_rows,
    component_info,
)
from assay.model.types import OneOf

NETWORKS = ("unordered", "fifo", "duplicating")
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
        ports = component_info(self.cls).ports
        if attr not in ports:
            raise SpecError(f"instance {self.name!r} ({self.cls.__name__}) has no port {attr!r}",
                            caller_location(2),
                            [f"ports of {self.cls.__name__}: "
                             f"{', '.join(sorted(ports)) or '(none)'}"])
        return PortRef(self.name, attr, ports[attr].many)

    def __repr__(self) -> str:
        return f"<instance {self.name} of {self.cls.__name__}>"


@dataclass(frozen=True)
class Connection:
    a: PortRef
    b: PortRef
    location: Location | None


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


def _label(fn: Any, default: str) -> str:
    name = getattr(fn, "__name__", default)
    return default if name == "<lambda>" else name


class System:
    """A composition: `System("two_phase_commit", network="unordered")`.

    A system has at most `MAX_INSTANCES` instances and `MAX_CONNECTIONS` connections: far
    beyond what any engine can explore or run, and a bound on what a parameter (from the
    command line or a trace file) can make a spec build."""

    MAX_INSTANCES = 10_000
    MAX_CONNECTIONS = 100_000

    def __init__(self, name: str, network: str = "unordered", fairness: str = "none") -> None:
        if network not in NETWORKS:
            raise SpecError(f"unknown network model {network!r}", caller_location(2),
                            [f"choose one of: {', '.join(NETWORKS)}"])
        self.name = name
        self.network = network
        # the fairness of every event no declaration covers (`check --fairness` overrides it)
        self.fairness = check_fairness(fairness, caller_location(2))
        # (instance name or component class, kind): `s.fair(kind, ...)`
        self.fair_rules: list[tuple[str | type, str]] = []
        self.liveness: list[Property] = []
        self.instances: dict[str, type[Component]] = {}
        self.overrides: dict[str, dict[str, Any]] = {}
        self.connections: list[Connection] = []
        self._ends: dict[tuple[str, str], list[PortRef]] = {}    # port -> its peers' ports
        self.properties: list[Property] = []
        self.terminals: list[tuple[Callable[[Any], bool], Location | None]] = []
        # TLC's CONSTRAINT: states where one is false are checked but not explored further
        self.constraints: list[tuple[Callable[[Any], bool], Location | None]] = []
        self.locations: dict[str, Location | None] = {}
        self.externals: list[str] = []

    # --- building --------------------------------------------------------------------------

    def add(self, name: str, cls: type[Component], *, initially: Any = None,
            **initial: Any) -> InstanceRef:
        """Add an instance of `cls` named `name`; keyword arguments set initial field values
        (a value or a `one_of`).  `initially` gives correlated initial states: a list of dicts
        of field values (the instance starts in one of them; a field a dict does not name
        takes its value as above), or a predicate `lambda self: ...` that keeps the
        combinations of initial values where it holds (with the class's `initially`)."""
        where = caller_location(2)
        if not isinstance(name, str) or not _NAME.match(name):
            raise SpecError(f"instance name {name!r} is not a valid name", where,
                            ["use letters, digits, '_' and '-', starting with a letter"])
        if name in self.instances:
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

    def connect(self, a: Any, b: Any) -> None:
        """Connect two ports of different instances: `s.connect(rm.tm, tm.rms)`."""
        where = caller_location(2)
        for end in (a, b):
            if isinstance(end, Port):
                raise SpecError(f"connect() got the class attribute {end.name!r}, not a port of "
                                "an instance", where,
                                ["connect ports of instances: x = s.add('x', C); "
                                 "s.connect(x.port, y.port)"])
            if isinstance(end, InstanceRef):
                raise SpecError(f"connect() got the instance {end.name!r}, not one of its ports",
                                where, [f"write {end.name}.<port>, e.g. one of: "
                                        f"{', '.join(sorted(component_info(end.cls).ports))}"])
            if not isinstance(end, PortRef) or end.instance not in self.instances:
                raise SpecError(f"connect() needs ports of instances of this system, got {end!r}",
                                where)
        if a.instance == b.instance:
            raise SpecError(f"connect({a}, {b}) connects {a.instance!r} to itself", where,
                            ["a port connects two different instances"])
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
        self.connections.append(Connection(a, b, where))
        ends.setdefault(key_a, []).append(b)
        ends.setdefault(key_b, []).append(a)

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
            if isinstance(ref, PortRef):
                raise SpecError(f"external() got the port {ref}, not an instance", where,
                                [f"write s.external({ref.instance})"])
            if not isinstance(ref, InstanceRef) or ref.name not in self.instances:
                raise SpecError(f"external() needs instances of this system, got {ref!r}", where)
            if ref.name in self.externals:
                raise SpecError(f"instance {ref.name!r} is marked external twice", where)
            self.externals.append(ref.name)

    # --- properties --------------------------------------------------------------------------

    def always(self, fn: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """Decorator: a safety property `fn(g)` that every reachable global state satisfies."""
        self.properties.append(Property(fn.__name__, "always", fn, object_location(fn)))
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
        where = object_location(fn) or caller_location(3)
        if any(p.name == name for p in self.liveness):
            raise SpecError(f"there are two liveness properties named {name!r}", where,
                            ["give one of them another name"])
        self.liveness.append(Property(name, kind, fn, where, trigger))

    def fair(self, kind: str, *targets: Any) -> None:
        """Declare the fairness of instances or of every instance of component classes:
        `s.fair("strong", philosopher)` or `s.fair("weak", Philosopher)`.  It covers their
        actions, the deliveries of messages to them and their timers; a handler's or action's
        own `fair=` takes precedence, then an instance's, then its class's, then the
        system's default."""
        where = caller_location(2)
        kind = check_fairness(kind, where)
        if not targets:
            raise SpecError("fair() needs at least one instance or component class", where,
                            [f"write s.fair({kind!r}, node) or s.fair({kind!r}, Node)"])
        for t in targets:
            if isinstance(t, InstanceRef) and t.name in self.instances:
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
        self.constraints.append((pred, object_location(pred) or caller_location(2)))
        return pred

    def terminal(self, pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """Decorator: states where `pred(g)` holds are final, so having no event is no deadlock."""
        self.terminals.append((pred, object_location(pred) or caller_location(2)))
        return pred

    def __repr__(self) -> str:
        return f"<System {self.name}: {len(self.instances)} instances, network={self.network}>"
