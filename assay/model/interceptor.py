"""Interceptors: runtime layers as components, declared on a connection.

`s.connect(a.out, b.inp, via=Provenance)` (or `via=s.add("link", Provenance)`, or a chain
`via=[Retry, Dedup]`) puts an interceptor between the two ports: every message that crosses
the connection, either way, is delivered to it first, and it may forward it (`self.forward(m)`,
to the other side), transform it (forward another message), delay it (keep it in a field and
forward it from an action or a timer), drop it (not forward it), or annotate it: `meta=` of
`forward` piggy-backs values on the message, in an envelope the endpoints never see unless they
ask (`self.meta(m)`, any component).  An interceptor is a component like any other — fields,
handlers, actions, timers, contracts, invariants, protocols on its ports — so every engine
runs, checks and explores it through the kernel.

The endpoints keep talking to each other: `m.sender` is the other endpoint (not the
interceptor), their sessions and protocols are with each other, and `verify` still proves that
their two ports fit.  The kernel sends what `a` sends on that connection to the first
interceptor's `left` port; each interceptor's `right` reaches the next one's `left`, the last
one's `right` reaches `b` (and back the same way).  An interceptor sees the actual hop
(`m.sender` is its neighbour on the chain).

Where the network is: in a chain of two or more, the first interceptor is at `a`'s side and
the last at `b`'s — the hops from an endpoint to its own interceptor are in-process: reliable,
unbounded, never dropped, duplicated or lost — and the hops between interceptors are the
connection's link (its `capacity`, `full`, `lossy`, and the faults of `--faults`).  A single
interceptor is a middlebox: both its hops are the link.  Crashes and partitions are the
instances' as ever: an interceptor may crash (its fields not `persistent` are lost) or be cut
off from its endpoint.

Meta is a dict from names (str) to values of the JSON-exact kinds: None, bool, int, str, and
tuples of them — canonical, hashable, part of the state, shown in traces.  `forward(m)` keeps the
meta `m` arrived with; `forward(m, meta={...})` replaces it.  A message kept in a field (to
forward later) keeps no meta, as it keeps no sender (`assay.model.message.undelivered`): keep
what is needed of `self.meta(m)` in a field beside it, and give it back with `meta=`.
"""
from __future__ import annotations

import re
from typing import Any

from assay.model.component import Component, Port, on
from assay.model.message import Message
from assay.model.types import unicode_text

SIDES = ("left", "right")           # towards the connection's first end, towards its second
META_KINDS = "None, bool, int, str, or a tuple of those"


def is_meta_value(v: Any) -> bool:
    """Whether `v` may be a value of an interceptor's meta (it encodes to JSON and back
    exactly: a tuple is a JSON list, read back as a tuple)."""
    t = type(v)
    if v is None or t is bool or t is int or isinstance(v, str):
        return True
    return t is tuple and all(is_meta_value(x) for x in v)


def meta_items(meta: Any) -> tuple[tuple[tuple[str, Any], ...], str | None]:
    """`meta=` of a forward as the envelope holds it (sorted (key, value) pairs; strings as
    plain `str`), or what is wrong with it."""
    if not isinstance(meta, dict):
        return (), f"{meta!r}: give a dict of names to values"
    out = []
    for k, v in meta.items():
        if not isinstance(k, str):
            return (), f"key {k!r}: the keys are names (str)"
        if not is_meta_value(v):
            return (), f"{k}={v!r}: a value is {META_KINDS}"
        out.append((str(k), _plain(v)))
    return tuple(sorted(out)), None


def meta_from_json(j: Any) -> tuple[tuple[str, Any], ...]:
    """Meta from its JSON form (a trace, a frame); `ValueError` unless it is one exactly."""
    if not isinstance(j, dict):
        raise ValueError(f"meta must be an object, got {type(j).__name__}")
    items = {unicode_text(k): _from_json(v) for k, v in j.items()}
    out, bad = meta_items(items)
    if bad is not None:
        raise ValueError(f"bad meta {bad}")
    return out


def _from_json(j: Any) -> Any:
    if isinstance(j, list):
        return tuple(_from_json(x) for x in j)
    if type(j) is str:
        return unicode_text(j)
    if j is None or type(j) in (bool, int):
        return j
    raise ValueError(f"a meta value is {META_KINDS}, got {type(j).__name__}")


def _plain(v: Any) -> Any:
    if isinstance(v, str):
        return str(v)
    if type(v) is tuple:
        return tuple(_plain(x) for x in v)
    return v


class Interceptor(Component):
    """Base class of an interceptor: a component with two sides, `left` (towards the
    connection's first end) and `right` (towards its second).  By default it forwards every
    message unchanged (`cross`); override `cross`, or add handlers `@on(Msg)` for the types it
    treats specially (a handler for a type comes before the catch-all `@on(Message)`)."""

    left = Port()
    right = Port()

    def forward(self, m: Message, meta: dict[str, Any] | None = None, *,
                to: str | None = None) -> None:
        """Send `m` on: by default to the other side from the one the handled message came in
        on; `to="left"` or `"right"` says (needed in an action or a timer).  `meta=None` keeps
        the meta `m` arrived with; a dict replaces it."""
        self.__dict__["__assay_ctx__"].forward(m, meta, to)

    @on(Message)
    def cross(self, m: Message) -> None:
        """Every message without a handler of its own: forwarded unchanged."""
        self.forward(m)


def is_interceptor(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, Interceptor)


# --- wiring: what `System.connect(..., via=)` records -------------------------------------------

def interceptor_chain(system: Any, via: Any, a: Any, b: Any, where: Any) -> tuple[str, ...]:
    """The names of the interceptors of `connect(a, b, via=...)`, from a's side to b's;
    a class in `via` adds an instance named after the connection."""
    from assay.errors import SpecError
    from assay.model.composite import check_outside
    from assay.model.system import InstanceRef

    items = list(via) if isinstance(via, list | tuple) else [via]
    if not items:
        raise SpecError(f"connect({a}, {b}, via=[]): no interceptor", where,
                        ["leave via= out for a plain connection"])
    fix = ["via= takes an Interceptor class, an instance of one (s.add('link', Cls)), or a "
           "list of them"]
    names: list[str] = []
    for k, item in enumerate(items):
        if is_interceptor(item):
            # (an instance name of a composite may hold characters a name may not: "_")
            base = re.sub(r"[^A-Za-z0-9_\-]", "_", f"{a.instance}-{b.instance}")
            name = base if len(items) == 1 else f"{base}-{k + 1}"
            if name in system.instances:
                raise SpecError(f"connect({a}, {b}, via={item.__name__}): the interceptor's "
                                f"name {name!r} is taken", where,
                                [f"add it yourself: via=s.add('<name>', {item.__name__})"])
            system.add(name, item)
            system.locations[name] = where
            names.append(name)
            continue
        if not isinstance(item, InstanceRef) or item.name not in system.instances:
            raise SpecError(f"connect({a}, {b}, via={item!r}): not an interceptor", where, fix)
        check_outside(system, item.name, where, f"connect({a}, {b}, via={item.name})")
        if not is_interceptor(item.cls):
            raise SpecError(f"connect({a}, {b}, via={item.name}): {item.cls.__name__} is not an "
                            "Interceptor", where,
                            [f"declare it as 'class {item.cls.__name__}(Interceptor): ...'"])
        if item.name in (a.instance, b.instance) or item.name in names or any(
                item.name in c.via for c in system.connections):
            raise SpecError(f"connect({a}, {b}, via=...): interceptor {item.name!r} is already "
                            "on a connection (or is one of its ends)", where,
                            ["an interceptor sits on one connection, once: add one instance "
                             "per connection"])
        if system._ends.get((item.name, "left")) or system._ends.get((item.name, "right")):
            raise SpecError(f"interceptor {item.name!r} is connected by its ports already",
                            where, ["an interceptor is wired by via= alone"])
        names.append(item.name)
    for end in (a, b):
        if is_interceptor(system.instances[end.instance]) and end.port in SIDES:
            raise SpecError(f"connect({a}, {b}, via=...): {end} is a side of an interceptor",
                            where, ["put the interceptors in one chain: via=[First, Second]"])
    return tuple(names)


def chain_hops(a: Any, b: Any, chain: tuple[str, ...], where: Any, capacity: int | None,
               full: str, lossy: bool) -> list[Any]:
    """The hops of a connection's interceptor chain, as connections the kernel links: in a
    chain of two or more the first and last hops are in-process (`local`), the others carry
    the connection's link; a single interceptor's two hops both do."""
    from assay.model.system import Connection, PortRef

    nodes = [a]
    for name in chain:
        nodes += [PortRef(name, "left", False), PortRef(name, "right", False)]
    nodes.append(b)
    last = len(chain)
    hops = []
    for j in range(last + 1):
        local = last >= 2 and j in (0, last)
        hops.append(Connection(nodes[2 * j], nodes[2 * j + 1], where,
                               None if local else capacity, "block" if local else full,
                               False if local else lossy, (), local))
    return hops
