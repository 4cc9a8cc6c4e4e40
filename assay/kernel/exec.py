"""Running one handler or action of one instance: the local half of a step.

`run` takes an instance's local state (a tuple of field values) and one event, and returns the
new local state, the messages sent (in order) and the violations, with blame.  It is a pure
function of its inputs as long as the spec's handlers are (no clocks, no randomness), which is
what lets the kernel memoise it.
"""
from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import is_
from typing import Any

from assay.errors import (
    Location,
    SpecError,
    caller_location,
    exit_error,
    not_exceptions,
    object_location,
    traceback_location,
    verdict,
)
from assay.kernel.reorder import ACTIVE as REORDERED
from assay.kernel.reorder import plain, plain_values, reordered, reordered_values
from assay.kernel.violation import Violation
from assay.model.component import ActionInfo, Component, ComponentInfo, HandlerInfo, component_info
from assay.model.frozen import fast_init
from assay.model.mapping import Map
from assay.model.message import Message, undelivered
from assay.model.pool import POOL_MESSAGES
from assay.model.record import Record, RecordFieldError
from assay.model.show import show
from assay.model.types import (
    OneOf,
    Peer,
    UnsupportedType,
    canonical,
    exact_key,
    scalars_only,
    state_checker,
)
from assay.model.wellformed import field_notes, immutable_change


@dataclass(frozen=True, slots=True)
class Wiring:
    """One port of one instance: its peers, each with the peer's port."""

    port: str
    many: bool
    peers: tuple[tuple[str, str], ...]          # (peer instance, peer port), sorted
    peer_set: frozenset[Peer]
    live: str | None = None     # an elastic pool's port: the owner's field of live slots


@dataclass(frozen=True, slots=True)
class TimerOp:
    """Set a timer (`delay`, `message`) or cancel pending ones (`message`: a message or type)."""

    set: bool
    delay: int
    message: Any


@fast_init
@dataclass(frozen=True, slots=True)
class Send:
    port: str
    dst: str
    dst_port: str
    message: Message
    meta: tuple[tuple[str, Any], ...] = ()      # an interceptor's forward (else nothing)


Result = tuple[tuple[Any, ...], list[Send], list[Violation], list[TimerOp]]
# the most branches one step may have, and the most options one `choose` may offer: past
# them a step is not something to explore exhaustively (a spec error, with the fix)
MAX_BRANCHES = 10_000
# the pools' protocol (`Context.emit`: sent by `spawn` and `retire` only)
POOL_CLASSES = tuple(POOL_MESSAGES)
POOL_NAMES = frozenset(m.__name__ for m in POOL_MESSAGES)
MAX_OPTIONS = 10_000


class Branched:
    """The results of a step whose code called `choose`: one per way its choices can go,
    in the order of the choices (the options' order, depth first), each with the values
    taken."""

    __slots__ = ("runs",)

    def __init__(self, runs: list[tuple[tuple[Any, ...], Result]]) -> None:
        self.runs = runs

    def __repr__(self) -> str:
        return f"Branched({[c for c, _ in self.runs]!r})"


class Chooser:
    """The choices of one run of a step: the positions in `prefix` first (to reach one
    branch again), then the first option of every further `choose`."""

    __slots__ = ("prefix", "taken", "sizes", "values")

    def __init__(self, prefix: tuple[int, ...] = ()) -> None:
        self.prefix = prefix
        self.taken: list[int] = []
        self.sizes: list[int] = []
        self.values: list[Any] = []

    def pick(self, options: list[Any]) -> Any:
        k = len(self.taken)
        i = self.prefix[k] if k < len(self.prefix) else 0
        if i >= len(options):
            raise _Diverged(k, len(options))
        self.taken.append(i)
        self.sizes.append(len(options))
        self.values.append(options[i])
        return options[i]


class _Diverged(Exception):
    """A run of a step offered fewer options at a `choose` than an earlier run of the same
    step did: the step is not a function of its inputs."""

    def __init__(self, at: int, options: int) -> None:
        self.at = at
        self.options = options


class _Abort(Exception):
    """Raised inside a handler when it breaks a port rule; carries the violation."""

    def __init__(self, violation: Violation) -> None:
        self.violation = violation


class PortHandle:
    """What `self.<port>` is inside a handler: send, broadcast, peers."""

    __slots__ = ("_ctx", "_w")

    def __init__(self, ctx: Context, wiring: Wiring) -> None:
        self._ctx = ctx
        self._w = wiring

    @property
    def peers(self) -> frozenset[Peer]:
        """The instances connected to this port (on a pool's port: the live slots)."""
        w = self._w
        if w.live is not None:
            peers = w.peer_set & getattr(self._ctx.obj, w.live)
        else:
            peers = w.peer_set
        return reordered(peers) if REORDERED[0] else peers  # type: ignore[no-any-return]

    @property
    def peer(self) -> Peer | None:
        """The one peer of a single port (None when unconnected)."""
        return Peer(self._w.peers[0][0]) if len(self._w.peers) == 1 else None

    def send(self, message: Message, to: str | None = None) -> None:
        """Send `message` on this port; on a many-port, `to=` names the peer."""
        w = self._w
        if to is None:
            if w.many:
                self._ctx.abort("port", f"{self._ctx.where()}.{w.port}.send() needs to=<peer> "
                                "on a many-port (or use broadcast)")
            if not w.peers:
                self._ctx.unconnected(w.port)
            dst, dst_port = w.peers[0]
        else:
            for dst, dst_port in w.peers:  # noqa: B007 - the match is used after the loop
                if dst == to:
                    break
            else:
                if not w.peers:
                    self._ctx.unconnected(w.port)
                self._ctx.abort("port", f"{self._ctx.instance} sent {message!r} on port "
                                f"{w.port!r} to {to!r}, which is not connected to that port "
                                f"(peers: {', '.join(sorted(w.peer_set)) or 'none'})")
        self._ctx.emit(w.port, dst, dst_port, message)

    def broadcast(self, message: Message) -> None:
        """Send `message` to every peer of this port."""
        if not self._w.peers:
            self._ctx.unconnected(self._w.port)
        live = None if self._w.live is None else getattr(self._ctx.obj, self._w.live)
        for dst, dst_port in self._w.peers:
            if live is None or dst in live:
                self._ctx.emit(self._w.port, dst, dst_port, message)

    def __repr__(self) -> str:
        return f"<port {self._w.port} peers={sorted(self._w.peer_set)}>"


# per message class: whether a value of one of its fields may hold a message (`emit`)
_NESTS: dict[type, bool] = {}


def _nests(cls: type[Message]) -> bool:
    """Whether a field of message class `cls` may hold a message (`_NESTS`)."""
    nests = _NESTS.get(cls)
    if nests is None:
        nests = _NESTS[cls] = not all(map(scalars_only, cls.field_types().values()))
    return nests


def _sent(message: Message) -> Message:
    """`message` as a step sends it (or sets it as a timer): without a sender or meta, nor
    the messages inside it (a delivered one a handler wraps in another, `undelivered`)."""
    if _nests(type(message)):
        return undelivered(message)  # type: ignore[no-any-return]
    if message.sender is not None or getattr(message, "_meta", None):
        return message.with_sender(None)
    return message


class UnconnectedSend(SpecError):
    """A step sent on a port with no peer: in a system, a spec error (`validate` finds most
    before anything runs); in a wiring the verifier made up, a run that cannot be set up."""

    def __init__(self, instance: str, port: str, location: Location | None) -> None:
        super().__init__(f"{instance} sends on port {port!r}, which is not connected in this "
                         "system", location,
                         [f"connect it with s.connect({instance}.{port}, <peer>.<port>)"])
        self.instance, self.port, self.at = instance, port, location

    def __reduce__(self) -> Any:       # rebuilt from its own arguments (parallel workers)
        return UnconnectedSend, (self.instance, self.port, self.at)


class Context:
    """The execution context of one handler run: ports and the outbox."""

    __slots__ = ("instance", "wirings", "outbox", "timer_ops", "readonly", "handler",
                 "sessions", "runner", "record", "chooser", "assigned", "arrived", "obj",
                 "retiring", "spawned")

    def __init__(self, instance: str, wirings: dict[str, Wiring],
                 runner: Runner | None = None) -> None:
        self.instance = instance
        self.wirings = wirings
        self.outbox: list[Send] = []
        self.timer_ops: list[TimerOp] = []
        self.readonly = True
        self.handler = ""
        self.runner = runner
        self.retiring = False           # a pool's slot called self.retire() (pool.retire)
        self.spawned: set[Any] | None = None    # the slots an owner's step spawned (pool.spawn)
        self.sessions: dict[tuple[str, str], int] | None = None   # (port, peer) -> position
        # when a list (the verifier's concrete runs): (spec line, message) of every message
        # sent and timer set, to tell which send site of a handler sent what
        self.record: list[tuple[int | None, Message]] | None = None
        self.chooser: Chooser | None = None
        # when a set (`Runner.recorder`): the names the body assigns on `self`
        self.assigned: set[str] | None = None
        self.arrived: str | None = None      # the port the handled message came in on
        self.obj: Any = None            # the live object of the instance (`Runner.live`)

    def forward(self, message: Message, meta: Any, to: str | None) -> None:
        """An interceptor's `self.forward(...)`: see `Interceptor.forward`."""
        from assay.model.interceptor import SIDES, meta_items

        if to is None:
            if self.arrived not in SIDES:
                self.abort("port", f"{self.where()} forwards {message!r} outside the handling "
                           "of a message that crossed it; say where: "
                           "self.forward(m, to='left') or to='right'")
            to = SIDES[1 - SIDES.index(self.arrived)]       # type: ignore[arg-type]
        elif to not in SIDES:
            self.abort("port", f"{self.where()} forwards to {to!r}; an interceptor forwards "
                       "to 'left' (the connection's first end) or 'right' (its second)")
        if meta is None:
            items = getattr(message, "_meta", ())
        else:
            items, bad = meta_items(meta)
            if bad is not None:
                self.abort("type", f"{self.where()} forwards {message!r} with meta {bad}")
        self.port(to).send(message)
        if items:
            last = self.outbox[-1]
            self.outbox[-1] = Send(last.port, last.dst, last.dst_port, last.message, items)

    def choose(self, options: Any) -> Any:
        """`self.choose(options)`: see `Component.choose`."""
        if self.readonly or self.chooser is None:
            raise SpecError(f"{self.where()}: self.choose(...) outside the body of a handler, "
                            "an action or a start or restart hook", caller_location(3),
                            ["guards, contracts, invariants and properties are predicates: "
                             "they must not choose; choose in the body and keep what was "
                             "chosen in a field"])
        if isinstance(options, dict | str | bytes) or not hasattr(options, "__iter__"):
            self.abort("type", f"{self.where()} chose from {options!r}; give a collection "
                       "of values (a range, a tuple, a list or a set)")
        try:
            n = len(options)
        except TypeError:
            n = None
        if n is not None and n > MAX_OPTIONS:
            raise SpecError(f"{self.where()} chooses among {n:,} options: too many to explore "
                            f"(at most {MAX_OPTIONS:,})", caller_location(3),
                            ["choose among fewer values (a smaller range), or draw the value "
                             "outside the model"])
        if isinstance(options, frozenset | set):     # no order of its own: a canonical one
            items = sorted(options, key=canonical)
        else:
            items = list(itertools.islice(options, MAX_OPTIONS + 1))
        if REORDERED[0]:
            items = [plain(x) for x in items]
        opts: list[Any] = []
        seen: set[bytes] = set()
        for x in items:                              # a set of options: each value once
            c = canonical(x)
            if c not in seen:
                seen.add(c)
                opts.append(x)
        if not opts:
            self.abort("exception", f"{self.where()} chose from no options ({options!r})")
        return self.chooser.pick(opts)

    def set_timer(self, delay: int, message: Message) -> None:
        if self.readonly:
            self.abort("exception", f"a contract of {self.instance} tried to set a timer")
        if type(delay) is not int or delay < 0:
            self.abort("type", f"{self.where()} set a timer with delay {delay!r}; use an int "
                       ">= 0 (units of virtual time)")
        if REORDERED[0]:
            message = plain(message)
        if not isinstance(message, Message) or message.bad_field() is not None:
            self.abort("type", f"{self.where()} set a timer with {message!r}, which is not a "
                       "well-typed Message")
        self.timer_ops.append(TimerOp(True, delay, _sent(message)))
        if self.record is not None:
            self.record.append((_line(caller_location(2)), message))

    def cancel_timer(self, what: Any) -> None:
        if self.readonly:
            self.abort("exception", f"a contract of {self.instance} tried to cancel a timer")
        if not (isinstance(what, Message) or isinstance(what, type) and issubclass(what, Message)):
            self.abort("type", f"{self.where()} cancel({what!r}): give a message or a message "
                       "type")
        self.timer_ops.append(TimerOp(False, 0, what))

    def port(self, name: str) -> PortHandle:
        # a new handle each time, not one cached on the context: the handle refers to the
        # context, so a cache would make a cycle, which only the garbage collector frees (a
        # runtime node's young passes ran for it every ~25 rounds; a search, which runs with
        # the collector off, kept every step's context until its end)
        return PortHandle(self, self.wirings[name])

    def where(self) -> str:
        return f"{self.instance}.{self.handler}" if self.handler else self.instance

    def emit(self, port: str, dst: str, dst_port: str, message: Message) -> None:
        if self.readonly:
            self.abort("exception", f"a contract of {self.instance} tried to send {message!r}; "
                       "contracts must not have effects")
        if not isinstance(message, Message):
            self.abort("type", f"{self.where()} sent {message!r} on port {port!r}, "
                       "which is not a Message")
        if type(message) in POOL_MESSAGES or self._poses_as_pool(port, message):
            # what `self.spawn` and `self.retire` send (`assay.model.pool`), which keep the
            # owner's live field in step with its slots: sent by hand, they would not
            self.abort("pool", f"{self.where()} sent {type(message).__name__} on port "
                       f"{port!r} itself; a pool's slots are spawned and retired with "
                       "self.spawn(...) and self.retire(...) only")
        if REORDERED[0]:                    # the determinism check's second run (`reorder`)
            message = plain(message)
        try:        # the class's generated check first; the description only when it fails
            bad = None if type(message).__assay_conforms__(message) else message.bad_field()
        except UnsupportedType as e:
            raise SpecError(str(e), object_location(type(message)) or caller_location(3)) \
                from None
        if bad is not None:
            self.abort("type", f"{self.where()} sent a message whose {bad}")
        if self.runner is not None:
            contract = self.runner.info.ports[port].where.get(type(message))
            if contract is not None:             # what this port guarantees of the message
                try:
                    ok = contract(message)
                except Exception as e:
                    self.abort("exception", f"the contract of {type(message).__name__} on port "
                               f"{port!r} of {self.instance} raised {type(e).__name__}: {e}")
                if not ok:
                    self.abort("contract", f"{self.where()} sent {message!r} on port {port!r}, "
                               f"which breaks the port's contract for "
                               f"{type(message).__name__}")
        if self.sessions is not None:
            auto = self.runner.info.automata.get(port)      # type: ignore[union-attr]
            if auto is not None:
                key = (port, dst)
                nxt = auto.step(self.sessions[key], "send", type(message))
                if nxt is None:
                    self.abort("protocol", f"{self.where()} sent {type(message).__name__} to "
                               f"{dst} on port {port!r}, which its protocol does not allow "
                               "here (it allows: "
                               f"{', '.join(auto.expects(self.sessions[key])) or 'nothing'})")
                self.sessions[key] = nxt
        # a message built in the handler names no sender already: kept as it is (a copy only
        # of one that arrived, which names its sender); one with a message inside goes
        # without the sender and meta of those too (`undelivered`)
        message = _sent(message)
        self.outbox.append(Send(port, dst, dst_port, message))
        if self.record is not None:
            self.record.append((_line(caller_location(2)), message))

    def _poses_as_pool(self, port: str, message: Message) -> bool:
        """Whether `message` passes for a pool message without being one: of a subclass of
        one, or of a class of the same name sent on a pool's port (the owner's, or a slot's
        to its owner), which the wire decodes, by name, as the pool's own."""
        kind = type(message)
        if kind.__name__ not in POOL_NAMES:
            return False
        if issubclass(kind, POOL_CLASSES):
            return True
        runner = self.runner
        if runner is None:
            return False
        slot = runner.slot_pool
        return (slot is not None and slot.port == port) or any(
            p.owner_port == port for p in (runner.pools or {}).values())

    def abort(self, kind: Any, message: str) -> None:
        loc = caller_location(3)
        raise _Abort(Violation(kind, self.where(), message, location=loc))

    def unconnected(self, port: str) -> None:
        raise UnconnectedSend(self.instance, port, caller_location(3))


class StateView:
    """A read-only view of an instance's state: what `old`, `g[...]` and properties see.

    Each component class gets a subclass with one slot per field, so reading a field in a
    property is a plain attribute access.
    """

    __slots__ = ("name",)
    _fields: tuple[str, ...] = ()

    def __getattr__(self, attr: str) -> Any:       # only reached when the field does not exist
        raise AttributeError(f"{object.__getattribute__(self, 'name')} has no field {attr!r}; "
                             f"fields: {', '.join(self._fields) or '(none)'}", name=attr, obj=self)

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"{self.name}: a state view is read-only")

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={show(getattr(self, f))}" for f in self._fields)
        return f"{self.name}({inner})"


_VIEW_CLASSES: dict[type, type[StateView]] = {}


def view_class(info: ComponentInfo) -> type[StateView]:
    vc = _VIEW_CLASSES.get(info.cls)
    if vc is None:
        vc = _VIEW_CLASSES[info.cls] = type(f"{info.cls.__name__}State", (StateView,),
                                            {"__slots__": info.fields, "_fields": info.fields})
    return vc


_VIEW_MAKERS: dict[type, Callable[[str, tuple[Any, ...]], StateView]] = {}


def view_maker(vc: type[StateView]) -> Callable[[str, tuple[Any, ...]], StateView]:
    """`make(name, values)`: a view of class `vc` holding the first `len(vc._fields)` values
    (a local state's fields; its sessions after them are not shown), generated once per
    class as straight-line code that sets each slot through its descriptor (a property
    reads a view of every state a search finds)."""
    make = _VIEW_MAKERS.get(vc)
    if make is None:
        env: dict[str, Any] = {"new": object.__new__, "vc": vc,
                               "set_name": StateView.__dict__["name"].__set__}
        lines = ["def make(name, values):", "    v = new(vc)", "    set_name(v, name)"]
        for i, f in enumerate(vc._fields):
            env[f"set{i}"] = vc.__dict__[f].__set__
            lines.append(f"    set{i}(v, values[{i}])")
        lines.append("    return v")
        exec("\n".join(lines), env)           # noqa: S102  (names of slots, by index only)
        make = _VIEW_MAKERS[vc] = env["make"]
    return make


class Runner:
    """Runs handlers, actions and contracts of one instance of a component."""

    pools: dict[str, Any] = {}      # the elastic pools the instance owns, by `Pool.handle`
    slot_pool: Any = None           # the pool the instance is a slot of (`self.retire()`)

    def __init__(self, name: str, info: ComponentInfo, wirings: dict[str, Wiring]) -> None:
        self.name = name
        self.info = info
        self.wirings = wirings
        self.fields = info.fields
        self.field_index = info.field_index
        self.view_class = view_class(info)
        self._make_view = view_maker(self.view_class)
        # the check of a step's new state against the old one, generated for the field types
        self.state_conforms = state_checker(info.types)
        # the fields that may hold a message: what a step puts there keeps no sender or meta
        # (`undelivered`)
        self.message_fields = tuple(i for i, t in enumerate(info.types) if not scalars_only(t))
        # one session per (port with a protocol, connected peer); its automaton position is
        # kept after the fields, as the last item of the local state
        self.session_keys = tuple(sorted((p, peer) for p in info.automata
                                         for peer, _ in wirings[p].peers))
        self.kept_sessions = tuple(info.ports[p].persistent for p, _ in self.session_keys)
        self._chooser: Chooser | None = None
        # a chooser that a step's first run left as it was made (nothing chosen): the next
        # `explore` takes it, not a new one (four objects fewer a step, where steps rarely
        # choose); taken out while a step runs, so no two runs share one
        self._spare: Chooser | None = None
        # set by a `reader` object when a guard assigns on it (see `_reader_class`)
        self.touched = False
        self._reader_cls: type | None = None
        # when a list (`Kernel.assigned`): each run appends the set of names its body assigns
        # on `self`, also those it sets to the value they had
        self.recorder: list[set[str]] | None = None
        # per action (by name), its last domain that had no two values equal: a domain equal
        # to it item by item has none either (one list comparison in C, not a hash per item)
        self._distinct: dict[str, list[Any]] = {}
        # a context that `quick_action` may use again (see there)
        self._quick_ctx: Context | None = None
        # the domains (over=) computed on the last `reader`, by domain function: a state's
        # actions over one domain (`over=pairs` for three of them) share its value
        self._domains_of: Any = None
        self._domains: dict[int, list[Any]] = {}
        # "instance.handler" by handler name: who a run's violations blame, made once
        self._blames: dict[str, str] = {}

    def explore(self, run: Callable[[], Result]) -> Result | Branched:
        """Run a step (`run` calls one of the `run_*` methods); if its code chose, run it
        again for every other way its choices can go (each run replays the choices of an
        earlier one up to the one it changes), in lexicographic order of the options taken."""
        ch = self._spare
        if ch is None:
            ch = Chooser()
        else:
            self._spare = None
        self._chooser = ch
        try:
            first = run()
            if not ch.sizes:                # (nothing chosen: it is as it was made)
                self._spare = ch
                return first
            runs = [(tuple(ch.values), first)]
            while True:
                taken, sizes = ch.taken, ch.sizes
                j = len(taken) - 1
                while j >= 0 and taken[j] + 1 >= sizes[j]:
                    j -= 1
                if j < 0:
                    return Branched(runs)
                if len(runs) >= MAX_BRANCHES:
                    raise SpecError(f"{self.name}: one step of {self.info.cls.__name__} "
                                    f"chooses in more than {MAX_BRANCHES:,} ways",
                                    object_location(self.info.cls),
                                    ["choose among fewer values, or fewer times in one step"])
                ch = self._chooser = Chooser((*taken[:j], taken[j] + 1))
                try:
                    res = run()
                except _Diverged as d:
                    raise SpecError(
                        f"{self.name}: a step of {self.info.cls.__name__} offered "
                        f"{d.options} option(s) at its choice {d.at + 1} when run again from "
                        "the same state and event: it reads the clock, random numbers or "
                        "other outside state", object_location(self.info.cls),
                        ["the options of self.choose(...) must depend only on the "
                         "instance's state, the event and earlier choices"]) from None
                runs.append((tuple(ch.values), res))
        finally:
            self._chooser = None

    def restarted(self, old: tuple[Any, ...], fields: tuple[Any, ...]) -> tuple[Any, ...]:
        """The local state after a restart from `old`, with these field values: sessions of
        persistent ports keep their positions, the others start afresh."""
        if not self.session_keys:
            return fields
        return (*fields, tuple(pos if keep else 0
                               for pos, keep in zip(old[-1], self.kept_sessions)))

    def with_sessions(self, fields: tuple[Any, ...]) -> tuple[Any, ...]:
        """A local state from field values: every session at its protocol's start."""
        if not self.session_keys:
            return fields
        return (*fields, (0,) * len(self.session_keys))

    def sessions(self, values: tuple[Any, ...]) -> dict[tuple[str, str], int]:
        return dict(zip(self.session_keys, values[-1])) if self.session_keys else {}

    # --- the live object a handler sees ----------------------------------------------------

    def live(self, values: tuple[Any, ...], ctx: Context) -> Any:
        obj: Any = object.__new__(self.info.cls if ctx.assigned is None else self._recording())
        d = obj.__dict__
        d.update(zip(self.fields, reordered_values(values) if REORDERED[0] else values))
        d["__assay_ctx__"] = ctx
        if self.pools:
            # the object and its context refer to each other: a cycle, which only the
            # collector frees — and a search runs with it off.  So only where a port needs
            # the object (an owner's pool port reads its live slots), and `_run` breaks
            # the cycle at its end
            ctx.obj = obj
        return obj

    def _recording(self) -> type:
        """A subclass of the component whose objects note each name assigned on them (off
        the hot path: only while `recorder` is set); made once per runner."""
        made: type | None = self.__dict__.get("_recording_class")
        if made is None:
            cls = self.info.cls

            def note(obj: Any, name: str, value: Any) -> None:
                obj.__dict__["__assay_ctx__"].assigned.add(name)
                object.__setattr__(obj, name, value)

            made = self._recording_class = type(cls.__name__, (cls,), {
                "__setattr__": note, "__module__": cls.__module__})
        return made

    def view(self, values: tuple[Any, ...]) -> StateView:
        return self._make_view(self.name, values)

    # --- local steps -------------------------------------------------------------------------

    def invariant_violations(self, values: tuple[Any, ...], blame: str) -> list[Violation]:
        ctx = Context(self.name, self.wirings)
        obj = self.live(values, ctx)
        out = []
        for pred, loc in self.info.invariants:
            v = self._holds(pred, (obj,), "invariant", blame, loc, _invariant_fails,
                            (self.info.cls.__name__, self.name, None, ()))
            if v:
                out.append(v)
        return out

    def reader(self, values: tuple[Any, ...]) -> Any:
        """A live object of this state for guards and domains, to share among the actions
        of one state (`enabled(..., obj)`): they cannot send, and `enabled` puts back any
        field a guard assigns (its class notes every assignment: `_reader_class`)."""
        obj: Any = object.__new__(self._reader_cls or self._reader_class())
        d = obj.__dict__
        d.update(zip(self.fields, reordered_values(values) if REORDERED[0] else values))
        d["__assay_ctx__"] = Context(self.name, self.wirings)
        self._domains_of = obj          # (held: no other object gets its id meanwhile)
        self._domains = {}
        return obj

    def _reader_class(self) -> type:
        """A subclass of the component whose objects set `touched` on this runner when a
        name is assigned or deleted on them (a guard's helper that assigns a field): made
        once per runner."""
        cls = self.info.cls
        runner = self
        setter: Any = cls.__setattr__        # the component's own, if it has one
        deleter: Any = cls.__delattr__

        def note(obj: Any, name: str, value: Any) -> None:
            runner.touched = True
            setter(obj, name, value)

        def forget(obj: Any, name: str) -> None:
            runner.touched = True
            deleter(obj, name)

        made: type = type(cls.__name__, (cls,), {
            "__setattr__": note, "__delattr__": forget, "__module__": cls.__module__,
            "__qualname__": cls.__qualname__})
        self._reader_cls = made
        return made

    def enabled(self, values: tuple[Any, ...], act: ActionInfo,
                obj: Any = None) -> list[tuple[bool, Any]]:
        """The arguments with which `act` is enabled in this state: [(has_arg, arg)].
        `obj`: a `reader` of this state (else a fresh one)."""
        if obj is None:
            ctx = Context(self.name, self.wirings)
            ctx.handler = act.name
            return self._enabled(self.live(values, ctx), act)
        d = obj.__dict__
        d["__assay_ctx__"].handler = act.name
        out = self._enabled(obj, act)
        # a guard that assigned a field (in a helper, say) changed only its own object,
        # as when each action had its own: put the state back for the next action
        fields = self.fields
        if self.touched or len(d) != len(fields) + 1 or type(obj) is not self._reader_cls \
                and not all(map(is_, map(d.get, fields), values)):
            self.touched = False
            ctx = d.get("__assay_ctx__")
            d.clear()
            d.update(zip(fields, values))
            d["__assay_ctx__"] = ctx
        return out

    def enabled_all(self, values: tuple[Any, ...], actions: Sequence[ActionInfo]
                    ) -> list[list[tuple[bool, Any]]]:
        """`enabled` of each action in turn, on one `reader` of this state (in a determinism
        check's second run, of its reordered values: a guard's assignment is put back to
        them)."""
        obj = self.reader(values)
        shown = reordered_values(values) if REORDERED[0] else values
        return [self.enabled(shown, act, obj) for act in actions]

    def _enabled(self, obj: Any, act: ActionInfo) -> list[tuple[bool, Any]]:
        when = act.when
        dom = act.over
        if dom is None:
            if when is None:
                return [(False, None)]
            try:
                ok = when(obj)
                if ok is not True and ok is not False:
                    ok = verdict(ok, f"the guard of {self.name}.{act.name}",
                                 object_location(when) or act.location)
                return [(False, None)] if ok else []
            except KeyboardInterrupt:
                raise
            except BaseException as e:
                raise self._guard_error(act, e) from None
        if callable(dom) and obj is self._domains_of and id(dom) in self._domains:
            # a domain is a function of the state (the determinism check runs it twice), and
            # a reader's fields are put back after each action (`enabled`): its value on
            # this state, computed for an earlier action
            dom = self._domains[id(dom)]
        elif callable(dom):
            fn = id(dom)                # (an action's domain: held by it, so is its id)
            try:
                dom = dom(obj)
                # a set has no order of its own: sort it, so events come in the same
                # order in every process
                t = type(dom)
                if REORDERED[0]:        # the determinism check's second run: plain values
                    if t is tuple or isinstance(dom, frozenset):
                        dom = plain(dom)
                    elif t is list:
                        dom = [plain(a) for a in dom]
                    t = type(dom)
                dom = dom if t is list else list(dom) if t is not frozenset and t is not set \
                    and not isinstance(dom, frozenset | set) else sorted(dom, key=canonical)
            except not_exceptions() as e:
                raise exit_error(e, f"the domain (over=) of {self.name}.{act.name}") \
                    from None
            except Exception as e:
                raise SpecError(f"the domain (over=) of {self.name}.{act.name} raised "
                                f"{type(e).__name__}: {e}",
                                traceback_location(sys.exc_info()[2])
                                or object_location(act.over) or act.location) from None
            if obj is self._domains_of:
                self._domains[fn] = dom
        try:               # no two values equal in Python: no two values the same
            last = self._distinct.get(act.name)
            if last is not None and last == dom:
                distinct = True
            else:
                distinct = len(set(dom)) == len(dom)
                if distinct and not REORDERED[0] and type(dom) is list:
                    self._distinct[act.name] = dom[:]      # (a copy: the spec keeps its list)
        except TypeError:
            distinct = False
        if not distinct:
            vals = []
            seen: set[Any] = set()
            for a in dom:                       # a domain is a set: each value once
                c = exact_key(a)
                if c not in seen:
                    seen.add(c)
                    vals.append(a)
            dom = vals
        if when is None:
            return [(True, a) for a in dom]
        out = []
        for a in dom:
            try:
                ok = when(obj, a)
                if ok is not True and ok is not False:
                    ok = verdict(ok, f"the guard of {self.name}.{act.name}",
                                 object_location(when) or act.location)
            except KeyboardInterrupt:
                raise
            except BaseException as e:
                raise self._guard_error(act, e) from None
            if ok:
                out.append((True, a))
        return out

    def _guard_error(self, act: ActionInfo, e: BaseException) -> Exception:
        """The error to raise for a guard that raised `e` (a `SpecError` as it is)."""
        if isinstance(e, SpecError):
            return e
        if not isinstance(e, Exception):
            return exit_error(e, f"the guard of {self.name}.{act.name}")
        return SpecError(f"the guard of {self.name}.{act.name} raised {type(e).__name__}: {e}",
                         traceback_location(e.__traceback__))

    def accepts(self, values: tuple[Any, ...], h: HandlerInfo, message: Message) -> bool:
        """Whether the handler's receive guard (`@on(..., when=)`) lets `message` in now; a
        message it keeps out stays where it is (deferred).  A guard that raises is a spec
        error, as an action's guard is."""
        if h.when is None:
            return True
        ctx = Context(self.name, self.wirings)
        ctx.handler = h.name
        obj = self.live(values, ctx)
        try:
            ok = h.when(obj, message)
            if ok is not True and ok is not False:
                ok = verdict(ok, f"the receive guard of {self.name}.{h.name}",
                             object_location(h.when) or h.location)
            return bool(ok)
        except SpecError:
            raise
        except not_exceptions() as e:
            raise exit_error(e, f"the receive guard of {self.name}.{h.name}") from None
        except Exception as e:
            raise SpecError(f"the receive guard of {self.name}.{h.name} raised "
                            f"{type(e).__name__}: {e}",
                            traceback_location(sys.exc_info()[2])) from None

    def run_action(self, values: tuple[Any, ...], act: ActionInfo, has_arg: bool,
                   arg: Any) -> Result:
        args = (arg,) if has_arg else ()
        return self._run(values, act.name, act.fn, args, (), act.ensures,
                         requires_blame=f"{self.name}.{act.name}")

    def quick_action(self, values: tuple[Any, ...], act: ActionInfo, has_arg: bool,
                     arg: Any) -> tuple[Any, ...] | None:
        """The new state of `explore(run_action(...))` where that is all the step makes: it
        chose nothing, sent nothing, set no timer, raised nothing, assigned only fields and
        kept their types; the action has no `ensures`, its component no invariants, pool or
        session, and nothing records assignments.  Anything else: None, and the caller runs
        the step the general way (`explore(run_action(...))`), which gives its outcome,
        violation or error — a step is a function of the state and its argument, so running
        it again gives what this run saw.  For the kernel's actions of a component holding
        every variable (`Kernel._memo_once`): one frame, no `Chooser` search, no result
        tuple."""
        if act.ensures or self.info.invariants or self.session_keys or self.pools \
                or self.recorder is not None or REORDERED[0]:
            return None
        # the context (and its chooser) of the last quick run, when that run left them as
        # they were made: nothing chosen, sent, set or retired (any run that did is dropped
        # here, with its context); else a fresh one
        ctx = self._quick_ctx
        if ctx is None or ctx.chooser is None:
            ctx = Context(self.name, self.wirings, self)
            ch = ctx.chooser = Chooser()
        else:
            self._quick_ctx = None
            ch = ctx.chooser
        ctx.handler = act.name
        obj: Any = object.__new__(self.info.cls)
        d = obj.__dict__
        fields = self.fields
        d.update(zip(fields, values))
        d["__assay_ctx__"] = ctx
        ctx.readonly = False
        try:
            if has_arg:
                act.fn(obj, arg)
            else:
                act.fn(obj)
        except (Exception, SystemExit):
            return None
        ctx.readonly = True
        if ch.sizes or ctx.outbox or ctx.timer_ops or ctx.retiring \
                or len(d) != len(fields) + 1 or d.get("__assay_ctx__") is not ctx:
            return None
        if ctx.chooser is ch and not ch.taken and ctx.record is None \
                and ctx.assigned is None and ctx.sessions is None and ctx.obj is None:
            self._quick_ctx = ctx
        try:
            new = tuple(map(d.__getitem__, fields))
        except KeyError:
            return None
        return new if self.state_conforms(new, values) else None

    def run_handler(self, values: tuple[Any, ...], h: HandlerInfo, message: Message,
                    port: str | None = None, sent_by: str | None = None) -> Result:
        """Handle `message`, arrived on `port` (None: a timer); `sent_by`: who is blamed for
        it, when not its sender (the interceptor that forwarded it)."""
        sender = message.sender
        by = str(sender) if sender is not None else None
        blame = sent_by or (by if by is not None else f"{self.name}.{h.name}")
        recv = (port, by) if port is not None and by else None
        return self._run(values, h.name, h.fn, (message,), h.requires, h.ensures,
                         requires_blame=blame, recv=recv, port=port)

    def run_start(self, values: tuple[Any, ...]) -> Result:
        """The instance's first step: its `@on_start` hook from its initial values; either way
        the component's invariants must hold afterwards."""
        hook = self.info.on_start
        if hook is None:
            return values, [], self.invariant_violations(
                values, f"{self.name} (initial state)"), []
        return self._run(values, hook.__name__, hook, (), (), (),
                         requires_blame=f"{self.name}.{hook.__name__}")

    def run_restart(self, values: tuple[Any, ...]) -> Result:
        """The restarted local state: run the `@on_restart` hook, if any; either way the
        component's invariants must hold afterwards."""
        hook = self.info.on_restart
        if hook is None:
            return values, [], self.invariant_violations(
                values, f"{self.name} (restart)"), []
        return self._run(values, hook.__name__, hook, (), (), (),
                         requires_blame=f"{self.name}.{hook.__name__}")

    def _run(self, values: tuple[Any, ...], hname: str, fn: Callable, args: tuple[Any, ...],
             requires: tuple, ensures: tuple, requires_blame: str,
             recv: tuple[str, str] | None = None, port: str | None = None) -> Result:
        """Run one handler atomically: (new values, sends, violations, timer operations).
        On a violation that aborts it, the state is unchanged and nothing is sent."""
        blame = self._blames.get(hname) or self._blame(hname)
        ctx = Context(self.name, self.wirings, self)
        ctx.handler = hname
        ctx.arrived = port
        if self.recorder is not None:
            ctx.assigned = set()
            self.recorder.append(ctx.assigned)
        # outside `explore` (the verifier's concrete runs): every choice takes its first option
        ctx.chooser = self._chooser if self._chooser is not None else Chooser()
        if self.session_keys:
            ctx.sessions = self.sessions(values)
            if recv is not None and recv in ctx.sessions:
                auto = self.info.automata[recv[0]]
                pos = ctx.sessions[recv]
                m = args[0]
                nxt = auto.step(pos, "recv", type(m))
                if nxt is None:
                    # an interceptor's forward is blamed on it, and said so: the endpoint
                    # whose session it is may never have sent that message
                    hop = requires_blame != recv[1]
                    who = f"{requires_blame} forwarded" if hop else f"{recv[1]} sent"
                    return values, [], [Violation(
                        "protocol", requires_blame,
                        f"{who} {type(m).__name__} to {self.name} on port {recv[0]!r}"
                        + (f" in its session with {recv[1]}" if hop else "") + ", "
                        f"where {self.name}'s protocol does not expect it (it expects: "
                        f"{', '.join(auto.expects(pos)) or 'nothing'})")], []
                ctx.sessions[recv] = nxt
        if port is not None:                     # what the receiving port assumes
            contract = self.info.ports[port].where.get(type(args[0]))
            if contract is not None:
                p = self.info.ports[port]
                v = self._holds(contract, (args[0],), "contract", requires_blame, p.location,
                                _breaks_port, (requires_blame, args[0], self.name, port),
                                error_blame=blame)
                if v:
                    return values, [], [v], []
        if REORDERED[0] and args:            # the determinism check's second run
            args = tuple(map(reordered, args))
        obj = self.live(values, ctx)
        for pred, loc in requires:                  # (`_holds`, inline)
            try:
                ok = pred(obj, *args)
            except BaseException as e:
                return values, [], [self._raised(e, "requires", requires_blame, loc, _fails,
                                                 ("requires", blame, args), blame)], []
            if ok is not True:
                v = self._unmet(ok, "requires", requires_blame, loc, _fails,
                                ("requires", blame, args))
                if v:
                    return values, [], [v], []
        ctx.readonly = False
        try:
            fn(obj, *args)
        except _Abort as a:
            return values, [], [a.violation], []
        except (SpecError, _Diverged):
            raise
        except not_exceptions() as e:                 # not a violation: it would end the engine
            raise exit_error(e, blame) from None
        except Exception as e:
            tb = sys.exc_info()[2]
            self._raise_if_ill_formed(e, tb, blame)
            return values, [], [Violation("exception", blame,
                                          f"{blame} raised {type(e).__name__}: {e}",
                                          location=traceback_location(tb))], []
        ctx.readonly = True
        d = obj.__dict__
        fields = self.fields
        # the fields and the context, and no other attribute: read them (as many names as
        # fields and the context, all of the fields there: no other name)
        new: Any = None
        if len(d) == len(fields) + 1 and "__assay_ctx__" in d:
            try:                                                    # noqa: SIM105
                new = tuple(map(d.__getitem__, fields))
            except KeyError:
                pass
        if new is None:
            bad = self._odd_names(d, values, fn, args, blame)
            if bad is not None:
                return values, [], [bad], []
            new = tuple(map(d.__getitem__, fields))
        if REORDERED[0]:
            new = plain_values(new)
        if port is not None and self.message_fields:
            # (only a delivery brings a message that names its sender or carries meta: the
            # kernel's state keeps none, `emit` sends none inside another)
            new = self._undelivered(new, values)
        if ctx.sessions is not None:
            new = (*new, tuple(map(ctx.sessions.__getitem__, self.session_keys)))
        # the input state conforms (the kernel's states, the verifier's scenarios are
        # checked): only the fields the step changed are checked, and of them what is new
        if not self.state_conforms(new, values):
            for f, t, v, o in zip(fields, self.info.types, new, values):
                if isinstance(v, OneOf):        # a spec error, not a behaviour: say how
                    raise SpecError(f"{blame} sets self.{f} to one_of{v.values!r}: one_of "
                                    "gives a field its initial values, in the class body",
                                    object_location(fn),
                                    [f"to choose in a step: self.{f} = "
                                     f"self.choose({v.values!r})"])
                if v is not o and not t.conforms_from(v, o):
                    return values, [], [Violation(
                        "type", blame, f"{blame} set {self.name}.{f} to {v!r}, which is not "
                        f"{_a(t.describe())}")], []
        violations: list[Violation] = []
        if ensures:
            old = self.view(values)
            for pred, loc in ensures:
                v = self._holds(pred, (old, obj, *args), "ensures", blame, loc,
                                _fails, ("ensures", blame, args))
                if v:
                    violations.append(v)
        for pred, loc in self.info.invariants:      # (`_holds`, inline)
            try:
                ok = pred(obj)
            except BaseException as e:
                violations.append(self._raised(e, "invariant", blame, loc, _invariant_fails,
                                               (self.info.cls.__name__, self.name, hname,
                                                args)))
                continue
            if ok is not True:
                v = self._unmet(ok, "invariant", blame, loc, _invariant_fails,
                                (self.info.cls.__name__, self.name, hname, args))
                if v:
                    violations.append(v)
        ctx.obj = None                          # (see `live`)

        if self.pools:
            v = self._live_kept(values, new, ctx.spawned or set(), blame)
            if v is not None:
                return values, [], [v], []
        if ctx.retiring:                # a slot that retired itself: dormant after the step
            from assay.model.pool import dormant_values
            new = dormant_values(self.info.cls)
            if self.info.uses_timers:
                ctx.timer_ops.append(TimerOp(False, 0, Message))
        return new, ctx.outbox, violations, ctx.timer_ops

    def _blame(self, hname: str) -> str:
        """`instance.handler`, kept for the next run of that handler (`_blames`)."""
        made = self._blames[hname] = f"{self.name}.{hname}"
        return made

    def _odd_names(self, d: dict[str, Any], values: tuple[Any, ...], fn: Callable,
                   args: tuple[Any, ...], blame: str) -> Violation | None:
        """After a run whose object's names are not exactly the fields and the context: a
        `SpecError` for a name that is no field, the violation for a deleted field, or None
        (the names are the fields, in another order)."""
        extra = [k for k in d if k not in self.field_index and k != "__assay_ctx__"]
        if extra:
            raise SpecError(f"{blame} assigns self.{extra[0]}, which is not a field of "
                            f"{self.info.cls.__name__}",
                            self._assignment_location(values, fn, args, extra[0]),
                            self._field_notes(extra[0]))
        missing = next((f for f in self.fields if f not in d), None)
        if missing is not None:
            return Violation("type", blame, f"{blame} deleted field {missing!r}")
        return None

    def _live_kept(self, values: tuple[Any, ...], new: tuple[Any, ...], spawned: set[Any],
                   blame: str) -> Violation | None:
        """An owner's step changes a pool's live field only by `spawn` (the kernel takes a
        slot out when its `Retired` arrives): set by hand, the field would no longer say
        which slots are live, and a spawn would pick a live one (its Spawn waiting forever)."""
        for pool in self.pools.values():
            f = self.field_index[pool.live]
            old, now = values[f], new[f]
            if now is not old and now != old | {s for s in spawned if s in pool.slots}:
                return Violation("pool", blame, f"{blame} set {self.name}.{pool.live} to "
                                 f"{show(now)}: the live slots of pool {pool.name} change "
                                 "only by self.spawn(...) and their retire taking effect")
        return None

    def _undelivered(self, new: tuple[Any, ...], values: tuple[Any, ...]) -> tuple[Any, ...]:
        """`new` with the messages a step put in its fields plain (`undelivered`): only
        the fields that may hold one and that the step changed are looked at."""
        out = None
        for i in self.message_fields:
            v = new[i]
            if v is not values[i]:
                u = undelivered(v)
                if u is not v:
                    if out is None:
                        out = list(new)
                    out[i] = u
        return new if out is None else tuple(out)

    def _raise_if_ill_formed(self, e: Exception, tb: Any, blame: str) -> None:
        """A handler's exception that says the spec's code is ill-formed — it reads an
        attribute its component, a message or a port does not have, or builds a message with
        missing or unknown fields — is a `SpecError` at the line, not a violation: it is a
        mistake in the spec, not behaviour of the model."""
        bad = ill_formed(e)
        if bad is not None:
            raise SpecError(f"{blame} {bad[0]}", traceback_location(tb), bad[1]) from None

    def _field_notes(self, attr: str) -> list[str]:
        return field_notes(self.info.cls.__name__, self.fields, attr)

    def _assignment_location(self, values: tuple[Any, ...], fn: Callable,
                             args: tuple[Any, ...], attr: str) -> Location | None:
        """Where a handler assigns the undeclared attribute `attr`: it runs once more, on an
        object whose class refuses that one assignment (only on this error path, so the hot
        path keeps plain attribute writes)."""
        cls = self.info.cls

        class _Found(Exception):
            pass

        def refuse(obj: Any, name: str, value: Any) -> None:
            if name == attr:
                raise _Found
            object.__setattr__(obj, name, value)

        probe = type(cls.__name__, (cls,), {"__setattr__": refuse, "__module__": cls.__module__})
        ctx = Context(self.name, self.wirings, self)
        obj: Any = object.__new__(probe)
        obj.__dict__.update(zip(self.fields, values))
        obj.__dict__["__assay_ctx__"] = ctx
        ctx.readonly = False
        try:
            fn(obj, *args)
        except _Found:
            return traceback_location(sys.exc_info()[2]) or object_location(fn)
        except Exception:
            pass
        return object_location(fn)

    @staticmethod
    def _holds(pred: Callable, args: tuple[Any, ...], kind: Any, blame: str,
               loc: Location | None, say: Callable[..., str], said: tuple[Any, ...],
               error_blame: str | None = None) -> Violation | None:
        """None if `pred` holds; else the violation.  A contract that raises is blamed on the
        component that declared it (`error_blame`), whoever a `False` would blame.  The
        message, `say(*said)`, is made only for a violation (it prints the handler's input):
        a module-level function and its arguments, not a closure, so that a run whose
        contracts hold makes no function object and `_run` keeps no cell variables.  (`_run`
        calls the contracts every run has — `requires`, invariants — itself, and these two
        halves only when one raised or did not return True: one call fewer per contract.)"""
        try:
            ok = pred(*args)
        except BaseException as e:
            return Runner._raised(e, kind, blame, loc, say, said, error_blame)
        return None if ok is True else Runner._unmet(ok, kind, blame, loc, say, said)

    @staticmethod
    def _raised(e: BaseException, kind: Any, blame: str, loc: Location | None,
                say: Callable[..., str], said: tuple[Any, ...],
                error_blame: str | None = None) -> Violation:
        """`_holds` of a contract that raised `e` (called while `e` is handled): the
        violation it makes, or the error it is (a `SpecError` or Ctrl-C raised again)."""
        if isinstance(e, _Abort):
            return e.violation
        if isinstance(e, SpecError):
            raise e
        if not isinstance(e, Exception):
            if isinstance(e, not_exceptions()):     # not an exception of the model's
                raise exit_error(e, say(*said).split(' fails')[0], loc) from None
            raise e                                 # Ctrl-C
        tb = e.__traceback__
        bad = ill_formed(e)
        if bad is not None:
            text = say(*said)
            what = text.split(" fails")[0] if " fails" in text else f"a {kind} contract"
            raise SpecError(f"{what} {bad[0]}", traceback_location(tb) or loc,
                            bad[1]) from None
        where = traceback_location(tb) or loc
        return Violation("exception", error_blame or blame,
                         f"{say(*said).split(' fails')[0]} raised {type(e).__name__}: {e}",
                         location=where)

    @staticmethod
    def _unmet(ok: Any, kind: Any, blame: str, loc: Location | None, say: Callable[..., str],
               said: tuple[Any, ...]) -> Violation | None:
        """`_holds` of a contract that returned `ok`, not True: the violation of a False;
        any other value is read as a truth value by `verdict` (or refused there)."""
        if ok is not False:
            text = say(*said)
            ok = verdict(ok, text.split(" fails")[0] if " fails" in text else f"a {kind} "
                         "contract", loc)
        return None if ok else Violation(kind, blame, say(*said), location=loc)

def _a(noun: str) -> str:
    """`noun` with its indefinite article: "an int in [0, 2]", "a bool"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _line(loc: Location | None) -> int | None:
    return loc.line if loc is not None else None


def ill_formed(e: BaseException) -> tuple[str, list[str]] | None:
    """If `e` says the spec's code is ill-formed, what it did and notes on the fix: an
    `AttributeError` for a name that a component (fields, ports, methods), a message or record
    (fields), a Map, an `old` state or a port handle does not have, a message or record built
    with missing or unknown fields, or a value changed in place (`self.flag[i] = True` on a
    tuple: `wellformed.immutable_change`).  Other exceptions are the model's behaviour
    (None)."""
    if isinstance(e, RecordFieldError):
        notes = [f"fields of {e.cls.__name__}: {e.cls.describe_fields()}"] if e.cls else []
        kind = e.cls.__assay_kind__ if e.cls else "message"
        return f"builds a {kind} wrongly: {e}", [
            *notes, "give every field without a default, by position or by name, and no others"]
    change = immutable_change(e)
    if change is not None:
        return change
    if not isinstance(e, AttributeError) or e.name is None:
        return None
    obj = e.obj
    if isinstance(obj, Component | StateView):
        info = component_info(type(obj)) if isinstance(obj, Component) else None
        fields = info.fields if info else object.__getattribute__(obj, "_fields")
        if e.name in fields:
            return None                           # a field deleted by the handler: behaviour
        cname = type(obj).__name__ if info else object.__getattribute__(obj, "name")
        owner = "self" if info else "old"
        return (f"reads {owner}.{e.name}, which is not a field of {cname}",
                field_notes(cname, fields, e.name))
    if isinstance(obj, Record):
        fields = type(obj).__assay_fields__
        return (f"reads {e.name!r} of a {type(obj).__name__}, which has no such field",
                field_notes(type(obj).__name__, fields, e.name))
    if isinstance(obj, Map):
        return (f"uses {e.name!r} of a Map, which maps do not have",
                ["a Map has set(k, v), remove(k), get(k, default), keys(), values() and "
                 "items(); m[k], k in m and len(m) read it"])
    if isinstance(obj, PortHandle):
        return (f"uses {e.name!r} of port {obj._w.port!r}, which ports do not have",
                ["a port has send(m), send(m, to=peer), broadcast(m), peers and peer"])
    return None


def _fails(kind: str, blame: str, args: tuple[Any, ...]) -> str:
    """The message of a failed `requires` or `ensures` of handler `blame` on `args`."""
    return f"{kind} of {blame} fails" + _on(args)


def _invariant_fails(cname: str, instance: str, after: str | None,
                     args: tuple[Any, ...]) -> str:
    """The message of an invariant of component `cname` that fails in `instance` (after
    handler `after` ran on `args`; None: in a state no handler made)."""
    said = f"invariant of {cname} fails in {instance}"
    return said if after is None else f"{said} after {after}" + _on(args)


def _breaks_port(by: str, m: Message, instance: str, port: str | None) -> str:
    """The message of a port's `where` contract that `m`, sent by `by`, breaks."""
    return (f"{by} sent {m!r} to {instance} on port {port!r}, which breaks what the port "
            f"assumes of {type(m).__name__}")


def _on(args: tuple[Any, ...]) -> str:
    """How a handler's input reads after its name: ` on Msg(...)`, or `(arg)` for an action."""
    if not args:
        return ""
    return f" on {args[0]!r}" if isinstance(args[0], Message) else f"({args[0]!r})"
