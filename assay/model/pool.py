"""Elastic pools: instances spawned and retired at run time, within a declared bound.

`workers = s.pool("worker", Worker, size=3, owner=boss.workers, port="boss", live="live")`
adds the slots `worker0 .. worker2`, instances of `Worker` that start *dormant*, and connects
each slot's port `boss` to the owner's many-port `workers`.  The owner keeps the live slots in
one of its own fields (`live`, a `frozenset[Peer]`, initially empty), so what it may do next
stays a function of its own state, as every step in assay is:

- `w = self.spawn("worker", job=3)` (in a handler or action of the owner) takes the lowest
  slot that is not in `self.live`, adds it there, and sends that slot a `Spawn` message with
  the initial values given (the class's defaults for the rest); it returns the slot's name
  (a `Peer`).  With every slot live, the step is a `pool` violation blamed on the spawner.
- `self.retire(w)` (in the owner) sends `w` a `Retire`.  The slot answers `Retired` when it
  has become dormant, and only then does the kernel take it out of the owner's `live`: a
  slot is not spawned again before its retire took effect, so no message meant for its next
  life reaches the one that is ending (on an unordered network a message can overtake a
  retire).  So `live` holds the slots that are live or retiring, and its size is the pool's.
  The other way round is the network's: a message sent to a slot's life that ended may still
  be in flight and reach its next life (a name is reused); `check` explores that, so a spec
  whose workers must not take it tells the lives apart (a value given at spawn, say).
- On the owner's pool port, `peers` and `broadcast` reach the slots in `live` only.

A dormant slot is one distinguished local state of its class (`dormant_values`: its fields
read None); it has no enabled action and takes no message but `Spawn`: any other message to
it waits in flight (as a receive guard keeps a message out) until it is spawned.  `Spawn`
makes it the class's initial state with the spawn's values, then runs its `@on_start` hook;
`Retire` makes it dormant again, dropping its timers, and sends `Retired` back.  A live slot
keeps a `Spawn` waiting and a dormant one a `Retire` (neither can happen to an owner that
keeps to `spawn` and `retire`, but a spec may send these messages itself).

The spawn is a message because it is one at run time: under `assay run --deploy` the slots
are placed on nodes like any instance, and a spawn is a frame to the slot's node.  Nothing of
this is engine-specific: the kernel's delivery (`delivery` here) is the one semantics, so
`check` explores every spawn and retire the owner's code can make, `simulate` draws them,
`replay` replays them and `assay run` performs them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.errors import Location, SpecError, caller_location
from assay.model.component import Component, InstanceStart, component_info
from assay.model.message import Message
from assay.model.types import Peer, to_json

if TYPE_CHECKING:
    from assay.model.system import InstanceRef, PortRef, System

DORMANT = "@dormant"        # the last item of a dormant slot's local state


class Spawn(Message):
    """Sent by a pool's owner to a dormant slot: become live with these initial values, each
    (field, its value's JSON text), in field order — typed text, so the wire can carry it
    and the slot decodes each value by its field's declared type (`live_values`)."""

    pool: str
    init: tuple[tuple[str, str], ...]


class Retire(Message):
    """Sent by a pool's owner to a live slot: become dormant."""

    pool: str


class Retired(Message):
    """Sent back by a slot that a `Retire` made dormant: the owner's live field forgets it."""

    pool: str


# the messages of the pools' protocol: only `spawn` and `retire` send them (`Context.emit`)
POOL_MESSAGES = frozenset({Spawn, Retire, Retired})


@dataclass(frozen=True)
class Pool:
    """A declared pool: its slots (instance names, in order), the owner, the owner's port and
    live field, and the slots' port the owner is connected to.

    `name` is unique in the system (the kernel keys its pools by it, and it travels in the
    pool's Spawn/Retire/Retired messages); `called` is the name the owner's code uses,
    `self.spawn("worker")` (its runner keys its pools by it).  They differ inside a
    composite: flattening `shard0` makes the pool `shard0.worker`, still called `worker`."""

    name: str
    cls: type[Component]
    slots: tuple[str, ...]
    owner: str
    owner_port: str
    port: str
    live: str
    location: Location | None
    called: str = ""            # "" for `name`
    min: int = 0                # slots[:min] are live from the start (`s.pool(..., min=)`)

    @property
    def handle(self) -> str:
        """The name the owner's code spawns from (`self.spawn(handle)`)."""
        return self.called or self.name


class PoolRef:
    """What `System.pool` returns: the slots' `InstanceRef`s (iterate it, index it), for
    connecting them further or declaring them symmetric: `s.symmetric(*workers)`."""

    def __init__(self, pool: Pool, refs: list[InstanceRef]) -> None:
        self.pool = pool
        self.refs = refs

    def __iter__(self) -> Any:
        return iter(self.refs)

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, k: int) -> InstanceRef:
        return self.refs[k]

    def __repr__(self) -> str:
        return f"<pool {self.pool.name} of {self.pool.cls.__name__}: {len(self.refs)} slots>"


def declare(system: System, name: str, cls: type[Component], size: int, owner: PortRef,
            port: str, live: str, where: Location | None, min: int = 0) -> PoolRef:
    """`System.pool`: check the declaration, add the slots and connect them to the owner."""
    from assay.model.system import PortRef as _PortRef
    fix = ["s.pool('worker', Worker, size=3, owner=boss.workers, port='boss', live='live')"]
    if type(size) is not int or size < 1:
        raise SpecError(f"pool {name!r}: size={size!r}; a pool has a whole number of slots, "
                        "at least 1", where, fix)
    if type(min) is not int or not 0 <= min <= size:
        raise SpecError(f"pool {name!r}: min={min!r}; the slots live from the start are a "
                        f"whole number from 0 to size ({size})", where,
                        [f"s.pool({name!r}, ..., size={size}, min=1, ...)"])
    if any(p.name == name for p in system.pools):
        raise SpecError(f"pool {name!r} is declared twice", where)
    if not isinstance(owner, _PortRef) or owner.instance not in system.instances:
        raise SpecError(f"pool {name!r}: owner= must be a port of an instance of this system, "
                        f"got {owner!r}", where, fix)
    oinfo = component_info(system.instances[owner.instance])
    if not owner.many:
        raise SpecError(f"pool {name!r}: the owner's port {owner} is a single port; a pool "
                        "needs a many-port (Port(many=True)) to reach its slots", where)
    if live not in oinfo.field_index:
        raise SpecError(f"pool {name!r}: the owner {owner.instance!r} "
                        f"({oinfo.cls.__name__}) has no field {live!r} to keep the live slots",
                        where, [f"declare it in {oinfo.cls.__name__}: "
                                f"{live}: frozenset[Peer] = frozenset()"])
    ltype = oinfo.types[oinfo.field_index[live]]
    if not (ltype.conforms(frozenset()) and ltype.conforms(frozenset({Peer("x")}))):
        raise SpecError(f"pool {name!r}: the owner's field {live!r} is a {ltype.describe()}, "
                        "not a set of peers", where,
                        [f"declare it as {live}: frozenset[Peer] = frozenset()"])
    for vals in oinfo.initial_values(system.overrides.get(owner.instance)):
        if vals[oinfo.field_index[live]] != frozenset():
            raise SpecError(f"pool {name!r}: the owner's field {live!r} starts as "
                            f"{vals[oinfo.field_index[live]]!r}; every slot starts dormant, "
                            "so it starts empty", where, [f"{live}: frozenset[Peer] = frozenset()"])
    if not (isinstance(cls, type) and issubclass(cls, Component)):
        raise SpecError(f"pool {name!r} needs a Component class, got {cls!r}", where)
    info = component_info(cls)
    if port not in info.ports:
        raise SpecError(f"pool {name!r}: {cls.__name__} has no port {port!r} to connect to the "
                        "owner", where, [f"ports of {cls.__name__}: "
                                         f"{', '.join(sorted(info.ports)) or '(none)'}"])
    if owner.instance in [f"{name}{k}" for k in range(size)]:
        raise SpecError(f"pool {name!r} would own itself", where)
    refs = []
    for k in range(size):
        ref = system.add(f"{name}{k}", cls)
        system.locations[ref.name] = where
        system.connect(owner, getattr(ref, port))
        refs.append(ref)
    pool = Pool(name, cls, tuple(r.name for r in refs), owner.instance, owner.port, port,
                live, where, name, min)
    if min:
        # the owner's live field starts with the slots live from the start (a field the
        # spec sets with `initially=` rows is left as they say)
        start = system.overrides.get(owner.instance)
        if isinstance(start, InstanceStart) and start.initially is None:
            start[live] = frozenset(Peer(s) for s in pool.slots[:min])
            start.cached = None
    system.pools.append(pool)
    return PoolRef(pool, refs)


# --- the owner's side: what `self.spawn` and `self.retire` do in a handler -------------------

def spawn(ctx: Any, obj: Any, name: Any, init: dict[str, Any]) -> Any:
    """`self.spawn(name, **init)` in the owner's step `ctx`, on its live object `obj`."""
    pool = _owned(ctx, name)
    live = getattr(obj, pool.live)
    slot = next((s for s in pool.slots if Peer(s) not in live), None)
    if slot is None:
        return ctx.abort("pool", f"{ctx.where()} spawns a {pool.name} with all {len(pool.slots)} "
                  f"slots of the pool live ({', '.join(pool.slots)})")
    info = component_info(pool.cls)
    for f, v in init.items():
        if f not in info.field_index:
            raise SpecError(f"{ctx.where()} spawns a {pool.name} with field {f!r}, which "
                            f"{pool.cls.__name__} does not have", caller_location(3),
                            [f"fields: {', '.join(info.fields) or '(none)'}"])
        t = info.types[info.field_index[f]]
        if not t.conforms(v):
            ctx.abort("type", f"{ctx.where()} spawns a {pool.name} with {f}={v!r}, which is "
                      f"not {t.describe()}")
    setattr(obj, pool.live, live | {Peer(slot)})
    if ctx.spawned is None:
        ctx.spawned = set()
    ctx.spawned.add(slot)
    given = tuple((f, json.dumps(to_json(init[f]), sort_keys=True, separators=(",", ":")))
                  for f in info.fields if f in init)
    _send(ctx, pool, slot, Spawn(pool.name, given))
    return Peer(slot)


def retire(ctx: Any, obj: Any, peer: Any) -> None:
    """`self.retire(peer)` in the owner's step: the slot becomes dormant.  `self.retire()`
    in a slot's own step: it becomes dormant at the end of the step (`Runner._run`), its
    timers cancelled, and tells the owner `Retired`, as a slot the owner retires does."""
    if peer is None:
        pool = getattr(ctx.runner, "slot_pool", None)
        if pool is None:
            raise SpecError(f"{ctx.where()} calls retire() without a slot, and "
                            f"{ctx.instance} is no slot of a pool", caller_location(3),
                            ["a pool's worker retires itself with self.retire(); its owner "
                             "retires one with self.retire(slot)"])
        if ctx.readonly:
            ctx.abort("exception", f"a guard or contract of {ctx.instance} tried to retire; "
                      "only a handler, an action or a hook may")
        from assay.kernel.exec import Send
        ctx.retiring = True
        ctx.outbox.append(Send(pool.port, pool.owner, pool.owner_port, Retired(pool.name)))
        if ctx.record is not None:
            ctx.record.append((None, Retired(pool.name)))
        return
    pools = getattr(ctx.runner, "pools", None) or {}
    pool = next((p for p in pools.values() if peer in p.slots), None)
    if pool is None:
        raise SpecError(f"{ctx.where()} retires {peer!r}, which is no slot of a pool it owns",
                        caller_location(3),
                        [f"pools of {ctx.instance}: {', '.join(sorted(pools)) or '(none)'}"])
    live = getattr(obj, pool.live)
    if peer not in live:
        ctx.abort("pool", f"{ctx.where()} retires {peer}, which is not live "
                  f"(live: {', '.join(sorted(live)) or 'none'})")
    _send(ctx, pool, str(peer), Retire(pool.name))


def _owned(ctx: Any, name: Any) -> Pool:
    pools = getattr(ctx.runner, "pools", None) or {}
    pool = pools.get(name)
    if pool is None:
        raise SpecError(f"{ctx.where()} spawns from pool {name!r}, which it does not own",
                        caller_location(4),
                        [f"pools of {ctx.instance}: {', '.join(sorted(pools)) or '(none)'}",
                         "declare one: s.pool(name, Worker, size=..., owner=<this>.<port>, "
                         "port=..., live=...)"])
    return pool  # type: ignore[no-any-return]


def _send(ctx: Any, pool: Pool, slot: str, message: Message) -> None:
    from assay.kernel.exec import Send
    if ctx.readonly:
        ctx.abort("exception", f"a guard or contract of {ctx.instance} tried to spawn or "
                  "retire; only a handler, an action or a hook may")
    ctx.outbox.append(Send(pool.owner_port, slot, pool.port, message))
    if ctx.record is not None:
        ctx.record.append((None, message))


# --- the kernel's side --------------------------------------------------------------------------

def dormant_values(cls: type[Component]) -> tuple[Any, ...]:
    """A dormant slot's local state: every field None, then the marker (no sessions)."""
    return (None,) * len(component_info(cls).fields) + (DORMANT,)


def decode_init(info: Any, init: tuple[tuple[str, str], ...]) -> dict[str, Any] | str:
    """The field values a `Spawn` carries, each decoded by its field's type; or what is
    wrong with them (a message that did not come from `spawn`)."""
    out: dict[str, Any] = {}
    for f, text in init:
        if f not in info.field_index or f in out:
            return f"field {f!r} is not a field of {info.cls.__name__}, or given twice"
        t = info.types[info.field_index[f]]
        try:
            v = t.from_json(json.loads(text))
        except (ValueError, TypeError, KeyError, RecursionError) as e:
            return f"{f}={text[:80]!r} is not a {t.describe()}: {e}"
        if not t.conforms(v):
            return f"{f}={text[:80]!r} is not a {t.describe()}"
        out[f] = v
    return out


def live_values(kernel: Any, inst: Any, init: dict[str, Any]) -> tuple[Any, ...]:
    """The local state a `Spawn` with `init` gives slot `inst`: its class's initial state with
    those values (one only: a field that is a `one_of` must be given)."""
    info = inst.info
    vals = info.initial_values(InstanceStart(init, inst.name, None, None))
    if len(vals) != 1:
        raise SpecError(f"spawning {inst.name} gives {len(vals)} initial states, not one",
                        info.location if hasattr(info, "location") else None,
                        ["give every one_of field of the class a value in spawn(...)"])
    return inst.runner.with_sessions(vals[0])  # type: ignore[no-any-return]
