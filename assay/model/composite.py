"""Composites: a system used as a component of another (`s.add("shard0", kv_shard)`).

A composite is a `System` whose chosen inner ports are its own (`s.export("client",
primary.clients)`).  Adding it to an outer system *flattens* it at build time: its instances
become instances of the outer system under hierarchical names (`shard0.primary`; nesting
gives `a.b.c`), its connections, properties, constraints, symmetries, fairness, externals
and elastic pools are carried over with their names prefixed and their view of the world
scoped to the composite.  Every engine therefore sees an ordinary flat system (one kernel
semantics); what stays of the hierarchy is `System.composites` (who is inside what, and the
exported ports), which the connection rules (encapsulation), `verify`'s report and a
deployment's placement read.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from assay.errors import Location, SpecError
from assay.model.component import InstanceStart

if TYPE_CHECKING:
    from assay.kernel.events import Envelope
    from assay.model.system import PortRef, System


@dataclass(frozen=True)
class Composite:
    """What is left of a composite once flattened: its name in the outer system, the name of
    the system it was built from, its instances (flat names, nested composites' included, in
    the order added) and its exported ports (export name -> the inner port, flat)."""

    name: str
    system: str
    instances: tuple[str, ...]
    exports: dict[str, PortRef]
    location: Location | None

    def holds(self, instance: str) -> bool:
        return instance.startswith(self.name + ".")


class CompositeRef:
    """Handle returned by `System.add` for a composite; its attributes are the composite's
    exported ports, its only ports as seen from outside."""

    def __init__(self, composite: Composite) -> None:
        self._composite = composite
        self.name = composite.name

    def __getattr__(self, attr: str) -> PortRef:
        if attr.startswith("_"):
            raise AttributeError(attr)
        c = self._composite
        port = c.exports.get(attr)
        if port is None:
            from assay.errors import caller_location

            raise SpecError(f"composite {c.name!r} ({c.system}) exports no port {attr!r}",
                            caller_location(2), [_exported_note(c)])
        return port

    def __repr__(self) -> str:
        return f"<composite {self.name} of {self._composite.system}>"


def _exported_note(c: Composite) -> str:
    ports = ", ".join(sorted(c.exports)) or "(none)"
    return (f"its instances are reachable from outside only through the ports it exports "
            f"(s.export(name, port) in its system function): {ports}")


class ScopedWorld:
    """The world as a composite's own predicates see it: `g["primary"]` is the composite's
    `primary`, `g.instances(Cls)` only the composite's instances, `in_flight()` the messages
    to or from them, `crashed()` those of them that are down (full names, as `view.name`
    says; a full name is also accepted by `g[...]`).  The composite's instances are those
    under its prefix (`shard0.`): no name outside it starts so.  A composite inside a
    composite sees the world of the whole system under both prefixes (`a.b.`)."""

    __slots__ = ("_root", "_prefix")
    _root: Any
    _prefix: str

    def __init__(self, g: Any, prefix: str) -> None:
        self._root = g              # the whole system's world (`scoped` composes prefixes)
        self._prefix = prefix

    def __getitem__(self, name: str) -> Any:
        if isinstance(name, str):
            try:
                return self._root[self._prefix + name]
            except KeyError:
                if name.startswith(self._prefix):     # a full name, e.g. a view's `name`
                    return self._root[name]
        raise KeyError(f"no instance named {name!r} in composite {self._prefix[:-1]!r}")

    def instances(self, cls: type | None = None) -> list[Any]:
        return [v for v in self._root.instances(cls) if v.name.startswith(self._prefix)]

    def in_flight(self, mtype: type | None = None) -> list[Envelope]:
        p = self._prefix
        return [e for e in self._root.in_flight(mtype)
                if e.src.startswith(p) or e.dst.startswith(p)]

    def crashed(self) -> list[str]:
        return [n for n in self._root.crashed() if n.startswith(self._prefix)]

    def __repr__(self) -> str:
        return f"<world of composite {self._prefix[:-1]}>"


def scoped(fn: Callable[[Any], bool], prefix: str) -> Callable[[Any], bool]:
    """`fn`, a predicate of a composite's world, as a predicate of the outer world.  A
    predicate scoped already (a composite's composite's) is scoped once, by both prefixes."""
    inner = getattr(fn, "__assay_scope__", None)
    if inner is not None:
        fn, prefix = inner[0], prefix + inner[1]

    def pred(g: Any) -> bool:
        return fn(ScopedWorld(g, prefix))

    pred.__assay_scope__ = (fn, prefix)     # type: ignore[attr-defined]
    pred.__name__ = getattr(fn, "__name__", "pred")
    pred.__qualname__ = getattr(fn, "__qualname__", pred.__name__)
    pred.__wrapped__ = fn        # type: ignore[attr-defined]  # object_location finds the source
    return pred


def _any_terminal(preds: list[tuple[Callable[[Any], bool], Location | None]],
                  ) -> Callable[[Any], bool]:
    def terminal(g: Any) -> bool:
        return any(p(g) for p, _ in preds)
    return terminal


def export(system: System, name: Any, port: Any, where: Location | None) -> None:
    """`s.export(name, port)`: make an inner port one of the system's own, for when the
    system is used as a composite."""
    from assay.model.system import InstanceRef, PortRef

    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise SpecError(f"export name {name!r} is not a valid port name", where,
                        ["use letters, digits and '_', starting with a letter: "
                         "s.export('client', primary.clients)"])
    if isinstance(port, InstanceRef | CompositeRef):
        raise SpecError(f"export({name!r}, ...) got the instance {port.name!r}, not a port",
                        where, [f"write s.export({name!r}, {port.name}.<port>)"])
    if not isinstance(port, PortRef) or port.instance not in system.instances:
        raise SpecError(f"export({name!r}, ...) needs a port of an instance of this system, "
                        f"got {port!r}", where)
    check_open(system, where)
    if name in system.exports:
        raise SpecError(f"port {name!r} is exported twice", where,
                        [f"it already exports {system.exports[name]}"])
    _check_reachable(system, port, where, f"export({name!r}, {port})")
    system.exports[name] = port


def check_open(system: System, where: Location | None) -> None:
    """A system already flattened into another as a composite takes no more instances,
    connections or exports: the outer system has its copy and would not see them."""
    if system._flattened_into is not None:
        raise SpecError(f"system {system.name!r} is already a composite of "
                        f"{system._flattened_into!r}: what is added to it now would not be "
                        "part of that", where,
                        ["build the composite completely before adding it, or pass the "
                         "function that builds it"])


def _check_reachable(system: System, end: PortRef, where: Location | None, what: str) -> None:
    """Encapsulation: a port of an instance inside a composite is reachable only if the
    composite exports it."""
    for c in system.composites.values():
        if c.holds(end.instance) and end not in c.exports.values():
            raise SpecError(f"{what}: port {end} is inside composite {c.name!r} and not "
                            "exported by it", where, [_exported_note(c)])


def check_outside(system: System, instance: str, where: Location | None, what: str,
                  fix: Callable[[str], str] | None = None) -> None:
    """Encapsulation: an instance inside a composite is not the outer system's to put on a
    connection (`via=`), to hand to a client (`external`), to declare symmetric or fair:
    only its exported ports are.  `fix(composite)`: what to write instead (by default, the
    exported ports)."""
    for c in system.composites.values():
        if c.holds(instance):
            raise SpecError(f"{what}: instance {instance!r} is inside composite {c.name!r}",
                            where, [fix(c.name) if fix else _exported_note(c)])


def check_connect(system: System, a: PortRef, b: PortRef, where: Location | None) -> None:
    for end in (a, b):
        _check_reachable(system, end, where, f"connect({a}, {b})")


@dataclass
class ParamOverrides:
    """`--param shard0.n=3`: parameters of composites, by the composite's path (`shard0`,
    nested `a.b`), given where the whole system is built (`load.build_function`).  `add`
    merges them into the keywords the composite's function is called with (over the spec's
    own) and notes each one used; what was given and never used is an error after the build
    (`unused`)."""

    given: dict[str, dict[str, Any]]                  # path -> parameter -> value (or text)
    typed: dict[str, Any] = field(default_factory=dict)   # "path.param" -> typed value
    seen: set[str] = field(default_factory=set)            # composite paths added
    prefix: str = ""                                       # the path being built, "a."


_OVERRIDES: ContextVar[ParamOverrides | None] = ContextVar("assay_composite_params",
                                                           default=None)


@contextmanager
def param_overrides(given: dict[str, dict[str, Any]]) -> Iterator[ParamOverrides]:
    """Within the block, composites added take their parameters from `given` too."""
    ov = ParamOverrides(given)
    token = _OVERRIDES.set(ov)
    try:
        yield ov
    finally:
        _OVERRIDES.reset(token)


def _overridden(ov: ParamOverrides, path: str, inner: Any, label: str,
                params: dict[str, Any], where: Location | None) -> dict[str, Any]:
    """`params` with the ones `--param <path>.<name>=` gives, typed by `inner`'s signature."""
    from assay.errors import UsageError
    from assay.model.load import _parse_param, parameters

    given = ov.given.get(path)
    ov.seen.add(path)
    if not given:
        return params
    if not callable(inner) or isinstance(inner, type):
        raise UsageError(f"--param {path}.{next(iter(given))}: composite {path!r} is a system "
                         "built before it is added, so it takes no parameters", where,
                         [f"add it with the function that builds it, s.add("
                          f"{path.rsplit('.', 1)[-1]!r}, build, ...), to set its parameters "
                          "from the command line"])
    known = parameters(inner)
    out = dict(params)
    for k, raw in given.items():
        if k not in known:
            raise UsageError(f"--param {path}.{k}: composite {path!r} ({label}) has no "
                             f"parameter {k!r}", where,
                             [f"its parameters: {', '.join(known) or '(none)'}"])
        try:
            value = _parse_param(k, raw, known[k], inner, where or Location("<spec>"))
        except UsageError as e:                 # said of `k`: say it of `path.k`
            raise UsageError(e.message.replace(f"--param {k}=", f"--param {path}.{k}=", 1),
                             e.location, e.notes) from None
        out[k] = ov.typed[f"{path}.{k}"] = value
    return out


def add(outer: System, name: str, inner: Any, where: Location | None, initially: Any,
        params: dict[str, Any]) -> CompositeRef:
    """`outer.add(name, inner)` for a composite: a `System`, or a function that returns one
    (called with `params`).  Flattens it into `outer` (see the module docstring)."""
    from assay.model.system import _NAME, Connection, PortRef, Property, System

    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"composite name {name!r} is not a valid name", where,
                        ["use letters, digits, '_' and '-', starting with a letter or '_'"])
    name = str.__str__(name)       # a plain str, as System.add makes an instance's name
    if name in outer.instances or name in outer.composites:
        raise SpecError(f"{name!r} is added twice", where)
    if initially is not None:
        raise SpecError(f"add({name!r}, ...): initially= sets an instance's initial states, "
                        "and a composite is a system", where,
                        ["set the initial values inside the composite's system function, or "
                         "pass them to it as keywords"])
    ov = _OVERRIDES.get()
    path = name if ov is None else ov.prefix + name
    if ov is not None and not isinstance(inner, System):
        params = _overridden(ov, path, inner, getattr(inner, "__name__", repr(inner)), params,
                             where)
    elif ov is not None:
        _overridden(ov, path, inner, inner.name, {}, where)
    if isinstance(inner, System):
        if params:
            raise SpecError(f"add({name!r}, system, {', '.join(params)}=...): keywords "
                            "are for a function that builds the composite", where,
                            [f"pass a function: s.add({name!r}, build, ...), or build the "
                             "system with its parameters first"])
    else:
        label = getattr(inner, "__name__", repr(inner))
        if ov is not None:                  # composites it adds are inside this one
            before, ov.prefix = ov.prefix, path + "."
        fn = inner
        try:
            inner = inner(**params)
        except TypeError as e:
            raise SpecError(f"add({name!r}, {label}, ...): {e}", where) from None
        finally:
            if ov is not None:
                ov.prefix = before
        if not isinstance(inner, System):
            raise SpecError(f"add({name!r}, {label}): {label} returned "
                            f"{type(inner).__name__}, not a System", where,
                            ["a composite's function returns the System it builds"])
        from assay.model.load import unregistered_properties

        inner.load_warnings[:0] = unregistered_properties(fn)
    for w in inner.load_warnings:       # (once, however many times the composite is added)
        if w not in outer.load_warnings:
            outer.load_warnings.append(w)
    if inner is outer:
        raise SpecError(f"add({name!r}, ...): a system cannot contain itself", where)
    if inner._flattened_into is not None:
        raise SpecError(f"add({name!r}, ...): system {inner.name!r} is already a composite "
                        f"of {inner._flattened_into!r}", where,
                        ["build a fresh one for each use: pass the function that builds it, "
                         f"s.add({name!r}, build)"])
    if inner.network != outer.network:
        raise SpecError(f"composite {name!r}: system {inner.name!r} is on the "
                        f"{inner.network!r} network and {outer.name!r} on "
                        f"{outer.network!r}", where,
                        ["one system runs on one network model: give both the same network"])
    if not inner.instances:
        raise SpecError(f"composite {name!r}: system {inner.name!r} has no instances", where)
    if len(outer.instances) + len(inner.instances) > outer.MAX_INSTANCES:
        raise SpecError(f"system {outer.name!r} would have more instances than assay allows "
                        f"(at most {outer.MAX_INSTANCES} instances)", where,
                        ["a parameter that sets the size of the system is too large"])
    if len(outer.connections) + len(inner.connections) > outer.MAX_CONNECTIONS:
        raise SpecError(f"system {outer.name!r} would have more connections than assay "
                        f"allows (at most {outer.MAX_CONNECTIONS} connections)", where,
                        ["a parameter that sets the size of the system is too large"])
    inner._flattened_into = outer.name
    prefix = name + "."

    def rename(n: str) -> str:
        return prefix + n

    def port(p: PortRef) -> PortRef:
        return PortRef(rename(p.instance), p.port, p.many)

    for n, cls in inner.instances.items():
        full = rename(n)
        start = inner.overrides[n]
        assert isinstance(start, InstanceStart)
        own = InstanceStart(dict(start), full, start.initially, start.location)
        outer.instances[full] = cls
        outer.overrides[full] = own
        outer.locations[full] = inner.locations.get(n)
    for c in inner.connections:
        outer.connections.append(Connection(port(c.a), port(c.b), c.location, c.capacity,
                                            c.full, c.lossy, tuple(map(rename, c.via)),
                                            c.local))
    # the hops of the composite's interceptor chains (`connect(..., via=)`)
    for c in inner.hops:
        outer.hops.append(Connection(port(c.a), port(c.b), c.location, c.capacity, c.full,
                                     c.lossy, tuple(map(rename, c.via)), c.local))
    for (inst, p), peers in inner._ends.items():
        outer._ends[(rename(inst), p)] = [port(q) for q in peers]

    def prop(p: Property) -> Property:
        trigger = None if p.trigger is None else scoped(p.trigger, prefix)
        return Property(rename(p.name), p.kind, scoped(p.fn, prefix), p.location,
                        trigger)

    outer.properties.extend(prop(p) for p in inner.properties)
    outer.liveness.extend(prop(p) for p in inner.liveness)
    outer.constraints.extend((scoped(fn, prefix), loc)
                             for fn, loc in inner.constraints)
    # a state is final when each part that declares final states is in one of them
    parts = list(inner.part_terminals)
    if inner.terminals:
        parts.append((_any_terminal(list(inner.terminals)), inner.terminals[0][1]))
    outer.part_terminals.extend((scoped(fn, prefix), loc) for fn, loc in parts)
    outer.symmetries.extend((tuple(rename(n) for n in group), loc)
                            for group, loc in inner.symmetries)
    outer.externals.extend(rename(n) for n in inner.externals)
    # elastic pools: slots and owner renamed, the name made unique in the outer system
    # (`shard0.worker`; it travels in Spawn/Retire/Retired), the owner's code still calling
    # it by the name it declared (`self.spawn("worker")`: `Pool.handle`)
    outer.pools.extend(replace(p, name=rename(p.name), slots=tuple(map(rename, p.slots)),
                               owner=rename(p.owner), called=p.handle)
                       for p in inner.pools)
    for p in inner.pools:               # `min=`: the owner's live field names them renamed
        own_start = outer.overrides.get(rename(p.owner))
        if p.min and isinstance(own_start, InstanceStart) and own_start.initially is None:
            from assay.model.types import Peer

            own_start[p.live] = frozenset(Peer(rename(x)) for x in p.slots[:p.min])
            own_start.cached = None
    outer.fair_rules.extend(_fairness(inner, rename))
    for sub in inner.composites.values():
        outer.composites[rename(sub.name)] = Composite(
            rename(sub.name), sub.system, tuple(rename(n) for n in sub.instances),
            {k: port(v) for k, v in sub.exports.items()}, sub.location)
    comp = Composite(name, inner.name, tuple(rename(n) for n in inner.instances),
                     {k: port(v) for k, v in inner.exports.items()}, where)
    outer.composites[name] = comp
    return CompositeRef(comp)


def _fairness(inner: System, rename: Callable[[str], str]) -> Iterator[tuple[str, str]]:
    """The composite's fairness as rules on its own instances (a class rule of the composite
    covers only its instances; its default, when it sets one, too): they come before any
    rule the outer system adds later, so the composite's own word holds."""
    for n, cls in inner.instances.items():
        kind = None
        by_class = None
        for target, k in inner.fair_rules:
            if target == n:
                kind = k
                break
            if isinstance(target, type) and issubclass(cls, target):
                by_class = k
        kind = kind or by_class or (inner.fairness if inner.fairness != "none" else None)
        if kind is not None:
            yield (rename(n), kind)


def members(system: System, ref: Any) -> tuple[str, ...] | None:
    """The flat instances of a composite ref of `system`, or None for anything else."""
    if isinstance(ref, CompositeRef) and ref.name in system.composites:
        return system.composites[ref.name].instances
    return None


def combined_terminals(system: System) -> list[tuple[Callable[[Any], bool], Location | None]]:
    """The terminal predicates the kernel uses: the system's own (any of them), and when
    composites declare final states, one predicate that needs every part in one."""
    own = list(system.terminals)
    parts = list(system.part_terminals)
    if not parts:
        return own
    if own:
        parts.append((_any_terminal(own), own[0][1]))

    def every_part_final(g: Any) -> bool:
        return all(p(g) for p, _ in parts)

    return [(every_part_final, parts[0][1])]


def owner(system: System, instance: str) -> str | None:
    """The outermost composite `instance` is inside, or None."""
    top = instance.partition(".")[0]
    return top if top in system.composites and top != instance else None


def _containing(system: System, instance: str) -> set[str]:
    return {c for c, comp in system.composites.items() if comp.holds(instance)}


def connection_label(system: System, a: str, b: str) -> tuple[str, str]:
    """How `verify` shows a connection between the ports `a` and `b` ("inst.port", flat
    names): the group it belongs to — "connection" outside every composite, the composite's
    name inside one, "<composite> boundary" when it crosses one's boundary (an outer port
    against an exported one) — and the connection as "a ~ b", an exported port under the
    name the composite gives it."""
    ia, ib = a.rpartition(".")[0], b.rpartition(".")[0]
    ca, cb = _containing(system, ia), _containing(system, ib)
    if ca == cb:
        group = max(ca, key=len) if ca else "connection"
        return group, f"{a} ~ {b}"
    crossed = min(ca ^ cb, key=lambda c: (c.count("."), c))
    comp = system.composites[crossed]

    def shown(end: str) -> str:
        inst, _, port = end.rpartition(".")
        if not comp.holds(inst):
            return end
        for name, ref in comp.exports.items():
            if (ref.instance, ref.port) == (inst, port):
                return f"{crossed}.{name}"
        return end

    return f"{crossed} boundary", f"{shown(a)} ~ {shown(b)}"


def group_connections(system: System, obligations: list[Any]) -> list[Any]:
    """`verify`'s connection obligations (component "connection") relabelled by
    `connection_label` and grouped: those outside every composite first, then each
    composite's, its boundary after its inside, in the order the composites were added."""
    if not system.composites:
        return obligations
    order = {"connection": (0, "")}
    for i, c in enumerate(system.composites):
        order[c] = (i + 1, "")
        order[f"{c} boundary"] = (i + 1, "boundary")
    rest = [o for o in obligations if o.component != "connection"]
    conns = []
    for o in obligations:
        if o.component != "connection":
            continue
        a, _, b = o.target.partition(" ~ ")
        group, target = connection_label(system, a, b)
        conns.append(replace(o, component=group, target=target))
    conns.sort(key=lambda o: order.get(o.component, (len(order), "")))
    return rest + conns


def describe(system: System) -> tuple[str, ...]:
    """One line per composite of `system`, for `verify`'s report: its instances (with their
    classes) and the ports it exports."""
    out = []
    for c in system.composites.values():
        insts = ", ".join(f"{n} ({system.instances[n].__name__})" for n in c.instances)
        ports = ", ".join(f"{e} = {ref}" for e, ref in c.exports.items()) or "nothing"
        out.append(f"composite {c.name} ({c.system}): {insts}; exports {ports}")
    return tuple(out)
