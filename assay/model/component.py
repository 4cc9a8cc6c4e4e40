"""Components: typed state, message handlers, guarded actions, contracts and ports.

A component class is a template.  Its state is the tuple of its fields' values; its behaviour
is the set of its handlers (`@on`) and actions (`@action`).  Nothing here runs a handler: the
kernel does, the same way for every engine.  `component_info` turns a class into the checked,
immutable description the kernel compiles.
"""
from __future__ import annotations

import difflib
import inspect
import itertools
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, dataclass_transform, get_origin, get_type_hints

from assay.errors import (
    Location,
    SpecError,
    caller_location,
    object_location,
    traceback_location,
    verdict,
)
from assay.model.message import Message
from assay.model.types import (
    SUPPORTED,
    OneOf,
    TypeSpec,
    UnsupportedType,
    canonical,
    is_mutable_default,
    parse_type,
)

T = TypeVar("T")
# a decorated method keeps its type (a spec type-checks under mypy --strict)
F = TypeVar("F", bound=Callable[..., Any])

RESERVED = frozenset({"name", "after", "cancel", "choose", "initially"})
ANY_PORT = "*"          # the port of a handler declared without one, on a many-ported component


class Port:
    """A component's only way to talk to others: `tm = Port()` or `rms = Port(many=True)`.

    A single port has at most one peer; a many-port has one session per connected peer.
    `protocol` (see `assay.protocol`) is the session type this side speaks on every session
    of the port; without one, any typed message may pass.  With `persistent=True` the
    sessions' positions survive a crash and restart, like persistent fields (a conversation
    the component picks up where it was); otherwise a restarted instance starts them afresh.

    `where` gives message contracts: `Port(where={Write: lambda m: 0 <= m.value <= 7})` says
    every `Write` on this port satisfies the predicate — a `Write` this component sends on it
    (it guarantees: a send that breaks it is a violation of the sender), and one it receives
    on it (it assumes: a delivery that breaks it is the sender's violation, and `verify`
    assumes it in the handler).  `verify` proves each connection: what one side's port
    guarantees implies what the other side's port assumes.
    """

    def __init__(self, protocol: Any = None, *, many: bool = False,
                 persistent: bool = False, where: dict[type, Callable[..., Any]] | None = None
                 ) -> None:
        self.protocol = protocol
        self.many = bool(many)
        self.persistent = bool(persistent)
        self.where: dict[type, Callable[..., Any]] = dict(where) if isinstance(where, dict) \
            else {}                            # anything else: a SpecError when it is built
        self._where_arg = where
        self.name = "?"
        self.location = caller_location(2)
        ns = sys._getframe(1).f_locals
        if "__module__" in ns and "__qualname__" in ns:
            # made in a class body: noted there, so that `component_info` can tell a port
            # a later field of the same name replaced (`peer = Port()` then `peer: int = 0`)
            ns.setdefault("__assay_ports__", []).append(self)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__["__assay_ctx__"].port(self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"port {self.name!r} cannot be assigned; send through it instead")

    def __repr__(self) -> str:
        return f"Port({'many=True' if self.many else ''})"


@dataclass(frozen=True, slots=True)
class Persistent:
    """Marks a field whose value survives a crash (see `persistent`)."""

    value: Any


def _check_where(cls: type, name: str, port: Port) -> None:
    """`where=` of a port: a dict from Message classes to one-argument predicates."""
    w = port._where_arg
    fix = ["write where={MessageType: lambda m: ...}, one predicate per message type"]
    if w is None:
        return
    if not isinstance(w, dict):
        raise SpecError(f"where= of port {name!r} of {cls.__name__} is a "
                        f"{type(w).__name__}, not a dict", port.location, fix)
    for t, pred in w.items():
        if not (isinstance(t, type) and issubclass(t, Message)):
            raise SpecError(f"where= of port {name!r} of {cls.__name__}: the key {t!r} is not a "
                            "Message class", port.location, fix)
        if not callable(pred):
            raise SpecError(f"where= of port {name!r} of {cls.__name__}: the contract of "
                            f"{t.__name__} is not callable", port.location, fix)
        try:
            params = inspect.signature(pred).parameters
        except (TypeError, ValueError):
            continue
        if len(params) != 1:
            raise SpecError(f"where= of port {name!r} of {cls.__name__}: the contract of "
                            f"{t.__name__} takes {len(params)} arguments; it takes the "
                            "message alone", port.location, fix)


def persistent(value: T) -> T:
    """Declare a field that survives a crash and restart: `log: tuple = persistent(())`.

    Other fields return to their initial values on restart.  `value` may be a `one_of(...)`.
    Typed as `value`'s type, so that `acked: int = persistent(0)` type-checks; what it
    returns is the `Persistent` mark that `component_info` reads.
    """
    return Persistent(value)        # type: ignore[return-value]


# --- decorators ---------------------------------------------------------------------------------

FAIRNESS = ("none", "weak", "strong")


def check_fairness(kind: Any, where: Location | None) -> str:
    """A fairness kind as given by a spec (`fair=` or `fairness=`), checked."""
    if kind not in FAIRNESS:
        raise SpecError(f"unknown fairness {kind!r}", where,
                        [f"choose one of: {', '.join(repr(k) for k in FAIRNESS)}"])
    return str(kind)


def _plain_method(fn: Any, deco: str, loc: Location | None) -> None:
    """Refuse a decorator of assay's applied over `@staticmethod` or `@classmethod`: its mark
    would land on the wrapper, which the component's class never lists as a handler or
    action (a message to it was "no handler", blamed on its sender, at run time)."""
    if isinstance(fn, (staticmethod, classmethod)):
        kind = type(fn).__name__
        raise SpecError(f"{deco} is applied to a @{kind}: assay calls handlers and actions "
                        "on the instance", loc,
                        [f"drop @{kind} and write it as a plain method taking self"])


def on(message_type: type[Message], port: str | None = None, fair: str | None = None,
       when: Callable[..., bool] | None = None) -> Callable[[F], F]:
    """Mark a method as the handler of `message_type` arriving on `port`.

    `when(self, m)` guards the receive: a message for which it is false is not delivered — it
    stays in the network (deferred, as P's `defer` or a TLA+ enabling condition) until the
    receiver's state makes it true, and it does not count as an enabled event (a state with
    only such messages left is a deadlock).  `fair` ("weak", "strong" or "none") is the
    fairness of delivering such a message (liveness checking)."""
    loc = caller_location(2)
    if fair is not None:
        check_fairness(fair, loc)

    def mark(fn: F) -> F:
        _plain_method(fn, "@on", loc)
        fn.__dict__.setdefault("__assay_on__", []).append((message_type, port, loc))
        if fair is not None:
            fn.__dict__.setdefault("__assay_fair_on__", {})[(message_type, port)] = fair
        if when is not None:
            fn.__dict__.setdefault("__assay_when_on__", {})[(message_type, port)] = when
        return fn
    # `@on` without a message type: the method became `message_type` and `mark` is left as
    # the class attribute (see `action`)
    mark.__assay_unapplied__ = ("@on", loc, "@on(Msg)")   # type: ignore[attr-defined]
    return mark


def action(when: Callable[..., bool] | None = None,
           over: Iterable[Any] | Callable[[Any], Iterable[Any]] | None = None,
           fair: str | None = None) -> Callable[[F], F]:
    """Mark a method as an internal action, enabled when `when(self[, arg])` holds.

    `over` makes it a family of actions, one per value of a finite domain (an iterable, an Enum
    class, or a function of `self` returning an iterable); the method then takes that value.
    `fair` ("weak", "strong" or "none") is its fairness for liveness checking, for each member
    of a family alike (weak: a member that stays enabled is eventually taken).
    """
    loc = caller_location(2)
    if fair is not None:
        check_fairness(fair, loc)

    def mark(fn: F) -> F:
        _plain_method(fn, "@action", loc)
        fn.__assay_action__ = (when, over, loc)   # type: ignore[attr-defined]
        if fair is not None:
            fn.__assay_fair__ = fair              # type: ignore[attr-defined]
        return fn
    # `@action` without parentheses makes the method `when` and leaves `mark` as the class
    # attribute: `component_info` finds the mark and says so, instead of an action missing
    mark.__assay_unapplied__ = (           # type: ignore[attr-defined]
        "@action", loc, "@action() (or with its arguments, e.g. @action(when=lambda self: "
        "...))")
    return mark


def on_start(fn: F) -> F:
    """Mark a method `(self)` as the step each instance takes when it starts: it may send,
    set its first timers and change fields.  It runs once, as part of the initial state (every
    engine starts from the state after it); a restart after a crash runs `@on_restart`
    instead.  Its violations are the initial state's."""
    loc = caller_location(2)
    _plain_method(fn, "@on_start", loc)
    fn.__assay_on_start__ = loc   # type: ignore[attr-defined]
    return fn


def on_restart(fn: F) -> F:
    """Mark a method `(self)` to run when the instance restarts after a crash."""
    loc = caller_location(2)
    _plain_method(fn, "@on_restart", loc)
    fn.__assay_on_restart__ = loc   # type: ignore[attr-defined]
    return fn


def requires(pred: Callable[..., bool]) -> Callable[[F], F]:
    """Precondition of a handler (`lambda self, m: ...`): what the message's sender must
    establish (a delivery that breaks it is the sender's violation).  Not for actions: an
    action has no caller, its condition is its guard, `@action(when=...)`."""
    loc = caller_location(2)

    def mark(fn: F) -> F:
        fn.__dict__.setdefault("__assay_requires__", []).insert(0, (pred, loc))
        return fn
    mark.__assay_unapplied__ = (           # type: ignore[attr-defined]
        "@requires", loc, "@requires(lambda self, m: ...)")
    return mark


def ensures(pred: Callable[..., bool]) -> Callable[[F], F]:
    """Postcondition: `lambda old, self, m: ...` (`old` is the state before the handler ran)."""
    loc = caller_location(2)

    def mark(fn: F) -> F:
        fn.__dict__.setdefault("__assay_ensures__", []).insert(0, (pred, loc))
        return fn
    mark.__assay_unapplied__ = (           # type: ignore[attr-defined]
        "@ensures", loc, "@ensures(lambda old, self, m: ...)")
    return mark


def invariant(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """Declare, in a class body, a predicate every state of the component satisfies."""
    frame = sys._getframe(1)
    ns = frame.f_locals
    if "__module__" not in ns or "__qualname__" not in ns:
        raise SpecError("invariant(...) must be called in the body of a Component class",
                        caller_location(2))
    ns.setdefault("__assay_invariants__", []).append(
        (pred, Location(frame.f_code.co_filename, frame.f_lineno)))
    return pred


def initially(*what: Any) -> Any:
    """Declare, in a class body, which field values the component may start with, when
    they are correlated (a `one_of` per field gives every combination):

    * `initially(lambda self: self.x != self.y)` (or `@initially` on a method `(self)`): a
      predicate that keeps those combinations of the fields' initial values where it holds;
      several predicates must all hold;
    * `initially(dict(x=0, y=1), dict(x=1, y=0))`: the initial states listed, one dict of
      field values each (a field a dict does not name takes its declared value; a value may
      be a `one_of`).

    `s.add(name, C, initially=...)` does the same for one instance (a list of dicts, or a
    predicate).  Every engine starts from exactly these states; `assay run` from the first."""
    frame = sys._getframe(1)
    ns = frame.f_locals
    where = Location(frame.f_code.co_filename, frame.f_lineno)
    if "__module__" not in ns or "__qualname__" not in ns:
        raise SpecError("initially(...) must be called in the body of a Component class",
                        where, ["for one instance, write s.add(name, C, initially=...)"])
    if len(what) == 1 and callable(what[0]) and not isinstance(what[0], type):
        ns.setdefault("__assay_initially__", []).append((what[0], where))
        return what[0]
    rows = what[0] if len(what) == 1 and isinstance(what[0], list | tuple) else what
    if "__assay_initial_rows__" in ns:
        raise SpecError("initially(...) lists the initial states twice in this class", where,
                        ["give every initial state in one initially(dict(...), ...)"])
    ns["__assay_initial_rows__"] = (tuple(rows), where)
    return None


# --- the component base class ---------------------------------------------------------------------

# Type checkers see a component class as a dataclass: its fields are typed attributes (a
# misspelled one is an error before any run); the kernel, not a constructor, builds instances.
@dataclass_transform(eq_default=False)
class Component:
    """Base class of every component in a spec.

    Fields are class-level annotations with initial values (`state: RMState = RMState.WORKING`,
    or `one_of(...)` for a choice).  `self.name` is the instance's name in the system.
    """

    __assay_invariants__: ClassVar[list] = []

    @property
    def name(self) -> str:
        return self.__dict__["__assay_ctx__"].instance

    def after(self, delay: int, message: Message) -> None:
        """Send `message` to this instance itself after `delay` units of time (a timer).

        The checker lets a timer fire at any point after it is set (time is abstract); the
        simulator fires it at its virtual time.  A crash loses the instance's timers.
        """
        self.__dict__["__assay_ctx__"].set_timer(delay, message)

    def cancel(self, what: Message | type[Message]) -> None:
        """Cancel this instance's pending timers equal to `what`, or of message type `what`."""
        self.__dict__["__assay_ctx__"].cancel_timer(what)

    def meta(self, m: Message) -> dict[str, Any]:
        """What the interceptors on the way piggy-backed on the delivered message `m` (a
        fresh dict; empty for a message that crossed none): an endpoint sees it only if it
        asks here.  See `assay.model.interceptor`."""
        return dict(getattr(m, "_meta", ()))

    def spawn(self, pool: str, **init: Any) -> Any:
        """Spawn an instance of the elastic pool `pool` this instance owns (`System.pool`):
        the lowest dormant slot, with these initial field values; returns its name."""
        from assay.model.pool import spawn
        return spawn(self.__dict__["__assay_ctx__"], self, pool, init)

    def retire(self, peer: Any = None) -> None:
        """Retire the live slot `peer` of a pool this instance owns: it becomes dormant.
        Without `peer`, in a slot of a pool: this slot retires itself at the end of the
        step (its owner is told, as when it retires a slot)."""
        from assay.model.pool import retire
        retire(self.__dict__["__assay_ctx__"], self, peer)

    def choose(self, options: Iterable[T]) -> T:
        """One of `options`, chosen nondeterministically (a randomized timeout, a backoff, a
        coin): `check` explores every choice as a step of its own, `simulate` draws it from
        the run's seed and `assay run` at random.  Options are a set of values (a repeated
        one counts once; a set's are taken in a canonical order); none is a violation.
        Only a handler, an action, or a start or restart hook may choose."""
        return self.__dict__["__assay_ctx__"].choose(options)

    def __repr__(self) -> str:
        info = component_info(type(self))
        inner = ", ".join(f"{f}={self.__dict__.get(f)!r}" for f in info.fields)
        return f"{type(self).__name__}({inner})"


@dataclass(frozen=True)
class HandlerInfo:
    name: str
    fn: Callable
    message: type[Message]
    port: str
    requires: tuple[tuple[Callable, Location | None], ...]
    ensures: tuple[tuple[Callable, Location | None], ...]
    location: Location | None
    fair: str | None = None        # its own fairness declaration (`@on(..., fair=)`)
    when: Callable | None = None   # the receive's guard (`@on(..., when=)`): false defers


@dataclass(frozen=True)
class ActionInfo:
    """An internal action.  It has no `requires`: nobody calls it, so the only condition on
    its inputs is its guard `when` (a `@requires` on an action is a spec error)."""

    name: str
    fn: Callable
    when: Callable | None
    over: Any                      # None, a tuple of values, or a callable of self
    ensures: tuple[tuple[Callable, Location | None], ...]
    location: Location | None
    fair: str | None = None        # its own fairness declaration (`@action(fair=)`)

    @property
    def parameterised(self) -> bool:
        return self.over is not None


@dataclass(frozen=True)
class ComponentInfo:
    cls: type
    fields: tuple[str, ...]
    types: tuple[TypeSpec, ...]
    initial: tuple[tuple[Any, ...], ...]           # per field, the initial choices
    ports: dict[str, Port]
    handlers: dict[tuple[str, type], HandlerInfo]  # (port, message type) -> handler
    actions: tuple[ActionInfo, ...]
    invariants: tuple[tuple[Callable, Location | None], ...]
    field_index: dict[str, int] = field(default_factory=dict)
    persistent: tuple[bool, ...] = ()
    on_restart: Callable | None = None
    uses_timers: bool = False
    uses_choose: bool = False                      # its code calls self.choose(...)
    automata: dict[str, Any] = field(default_factory=dict)    # port -> protocol automaton
    on_start: Callable | None = None
    # `initially(lambda self: ...)` predicates, and `initially(dict(...), ...)` rows (field ->
    # its values; a field a row does not name takes its declared values)
    initially: tuple[tuple[Callable, Location | None], ...] = ()
    rows: tuple[dict[str, tuple[Any, ...]], ...] = ()
    rows_location: Location | None = None

    def handler_for(self, port: str, mtype: type) -> HandlerInfo | None:
        # an interceptor's catch-all `@on(Message)` last
        return self.handlers.get((port, mtype)) or self.handlers.get((ANY_PORT, mtype)) \
            or self.handlers.get((port, Message)) or self.handlers.get((ANY_PORT, Message))

    def timer_handler(self, mtype: type) -> HandlerInfo | None:
        """The handler of a timer's message: the one for its type (first port by name)."""
        found = [h for (_, t), h in sorted(self.handlers.items(), key=lambda kv: kv[0][0])
                 if t is mtype]
        return found[0] if found else None

    def correlated(self, overrides: dict[str, Any] | None = None) -> bool:
        """Whether the initial states are not simply every combination of the fields'
        initial values (an `initially` of the class or of the instance)."""
        return bool(self.initially or self.rows
                    or getattr(overrides, "initially", None) is not None)

    def field_choices(self, overrides: dict[str, Any] | None = None
                      ) -> list[tuple[Any, ...]]:
        """Per field, the values it takes in some initial state (their product is every
        initial state unless `correlated`)."""
        if not self.correlated(overrides):
            choices = list(self.initial)
            for k, v in (overrides or {}).items():
                choices[self.field_index[k]] = v.values if isinstance(v, OneOf) else (v,)
            return choices
        out: list[dict[bytes, Any]] = [{} for _ in self.fields]
        for row in self.initial_values(overrides):
            for seen, v in zip(out, row):
                seen.setdefault(canonical(v), v)
        return [tuple(seen.values()) for seen in out]

    def restart_values(self, values: tuple[Any, ...],
                       overrides: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The local states a restart may give, one per initial state (in their order):
        persistent fields keep their values, the others take those of an initial state.
        When the initial states are correlated, the others come from an initial state that
        agrees with the kept persistent fields if there is one (an initial state that does
        not agree gives the first that does); when none agrees (the persistent fields moved
        on), from any initial state."""
        rows = self.initial_values(overrides)
        keep = self.persistent
        if not any(keep):
            return list(rows)
        kept = [i for i, k in enumerate(keep) if k]
        agree = [all(r[i] == values[i] for i in kept) for r in rows]
        first = next((r for r, a in zip(rows, agree) if a), None)
        return [tuple(old if k else new for old, new, k
                      in zip(values, r if a or first is None else first, keep))
                for r, a in zip(rows, agree)]

    def initial_values(self, overrides: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Every initial state of an instance (its field values), in a fixed order: the
        product of the fields' initial values (`one_of`, `s.add` keywords), or, with
        `initially`, the states listed and those the predicates keep.  `overrides` is the
        instance's `System.overrides` entry (an `InstanceStart`: computed once, then
        shared — do not change the list)."""
        if isinstance(overrides, InstanceStart):
            if overrides.cached is None:
                overrides.cached = self._initial_values(overrides)
            return overrides.cached
        return self._initial_values(overrides)

    def _initial_values(self, overrides: dict[str, Any] | None) -> list[tuple[Any, ...]]:
        fields = dict(overrides or {})
        if not self.correlated(overrides):
            return [tuple(c) for c in itertools.product(*self.field_choices(overrides))]
        instance = getattr(overrides, "instance", None)
        own = getattr(overrides, "initially", None)
        where = getattr(overrides, "location", None)
        preds = list(self.initially)
        if callable(own):
            preds.append((own, where))
            rows: tuple[dict[str, Any], ...] = self.rows or ({},)
        elif own is not None:
            rows = own
        else:
            rows = self.rows or ({},)
        out: dict[bytes, tuple[Any, ...]] = {}
        candidates = 0
        for row in rows:
            choices = list(self.initial)
            for k, vs in row.items():
                choices[self.field_index[k]] = vs
            for k, v in fields.items():
                choices[self.field_index[k]] = v.values if isinstance(v, OneOf) else (v,)
            n = 1
            for c in choices:
                n *= len(c)
            candidates += n
            if candidates > MAX_CANDIDATES:
                raise SpecError(f"{instance or self.cls.__name__}: more than "
                                f"{MAX_CANDIDATES:,} combinations of initial values to filter "
                                "with initially(...)", where or self.rows_location,
                                ["list the initial states with initially(dict(...), ...), or "
                                 "give fewer values with one_of"])
            for combo in itertools.product(*choices):
                if all(self._admits(p, loc, instance, combo) for p, loc in preds):
                    out.setdefault(canonical(combo), combo)
        if not out:
            said = [f"line {loc.line}" for _, loc in preds if loc is not None and loc.line]
            raise SpecError(
                f"{'instance ' + repr(instance) if instance else self.cls.__name__} of "
                f"{self.cls.__name__} has no initial state: initially(...) "
                f"{'(' + ', '.join(said) + ') ' if said else ''}holds for none of its "
                f"{candidates:,} candidate combinations of field values",
                where or (preds[0][1] if preds else self.rows_location),
                ["fix the predicate, or list the initial states: "
                 "initially(dict(field=value, ...), ...)"])
        return list(out.values())

    def _admits(self, pred: Callable, loc: Location | None, instance: str | None,
                values: tuple[Any, ...]) -> bool:
        """An `initially` predicate on one combination of field values (`self` is the
        component with these fields; it has no ports or timers)."""
        obj: Any = object.__new__(self.cls)
        obj.__dict__.update(zip(self.fields, values))
        obj.__dict__["__assay_ctx__"] = _Starting(instance or "?")
        try:
            ok = pred(obj)
            if ok is not True and ok is not False:
                ok = verdict(ok, "initially predicate", loc)
            return bool(ok)
        except SpecError:
            raise
        except Exception as e:
            shown = ", ".join(f"{f}={v!r}" for f, v in zip(self.fields, values))
            raise SpecError(f"the initially predicate of {self.cls.__name__} raised "
                            f"{type(e).__name__}: {e}",
                            traceback_location(sys.exc_info()[2]) or loc,
                            [f"on {instance or self.cls.__name__}({shown})",
                             "it must be a function of the fields alone, true or false on "
                             "every combination of their initial values"]) from None


MAX_CANDIDATES = 1_000_000      # combinations of initial values an `initially` filters


class _Starting:
    """What `self` stands on in an `initially` predicate: the instance's name, nothing
    else (no ports, no timers: the component has not started)."""

    __slots__ = ("instance",)

    def __init__(self, instance: str) -> None:
        self.instance = instance

    def port(self, name: str) -> Any:
        raise AttributeError(f"port {name!r} cannot be used in an initially predicate: it "
                             "reads the fields only")


class InstanceStart(dict):
    """An instance's initial values as `System.add` was given them: the field keywords (the
    dict's items), the instance's name and its `initially=` (a list of rows, each a dict from
    field to a tuple of values, or a predicate).  It keeps the initial states once computed."""

    def __init__(self, fields: dict[str, Any], instance: str, initially: Any = None,
                 location: Location | None = None) -> None:
        super().__init__(fields)
        self.instance = instance
        self.initially = initially
        self.location = location
        self.cached: list[tuple[Any, ...]] | None = None


_INFO: dict[type, ComponentInfo] = {}


def component_info(cls: type) -> ComponentInfo:
    """The checked description of a component class; raises `SpecError` at the faulty line."""
    info = _INFO.get(cls)
    if info is None:
        info = _INFO[cls] = _build_info(cls)
    return info


def _build_info(cls: type) -> ComponentInfo:
    where = object_location(cls)
    try:
        hints = get_type_hints(cls, include_extras=True)
    except Exception as e:
        raise SpecError(f"cannot resolve the field types of {cls.__name__}: {e}", where) from None

    for klass in cls.__mro__:
        if klass is Component or klass is object or "__init__" not in vars(klass):
            continue
        # the kernel makes instances from the fields' initial values, never by calling the
        # class: what an __init__ sets would silently not be the initial state
        raise SpecError(f"{klass.__name__} defines __init__, which assay never calls: an "
                        "instance starts from its fields' initial values",
                        object_location(vars(klass)["__init__"]) or where,
                        ["give each field its initial value in the class body (x: int = 5; "
                         "one_of(...) or initially(...) for a choice), or per instance: "
                         f"s.add(name, {cls.__name__}, x=5); work done when an instance "
                         "starts goes in an @on_start method"])
    ports: dict[str, Port] = {}
    for klass in reversed(cls.__mro__):
        for n, v in vars(klass).items():
            if isinstance(v, Port):
                ports[n] = v
    automata: dict[str, Any] = {}
    for n, port in sorted(ports.items()):
        if port.protocol is None:
            continue
        from assay.model.protocol import Protocol

        if not isinstance(port.protocol, Protocol):
            raise SpecError(f"port {n!r} of {cls.__name__}: {port.protocol!r} is not a protocol",
                            port.location, ["build one with assay.protocol: p.send(M) >> ..."])
        automata[n] = port.protocol.automaton()     # a SpecError at the protocol's line
    for n, port in sorted(ports.items()):
        _check_where(cls, n, port)

    fields: list[str] = []
    keeps: list[bool] = []
    types: list[TypeSpec] = []
    initial: list[tuple[Any, ...]] = []
    _check_port_names(cls, hints, ports)
    for n, ann in hints.items():
        if n.startswith("_") or n in ports or get_origin(ann) is ClassVar or ann is ClassVar:
            continue
        line = _field_location(cls, n) or where
        if n in RESERVED:
            why = {"name": "'self.name' is the instance's name in the system",
                   "initially": "'initially=' of s.add gives an instance's initial states"
                   }.get(n, f"'self.{n}' is a method of every component")
            raise SpecError(f"field {n!r} of {cls.__name__} uses a reserved name", line,
                            [f"{why}; rename the field"])
        try:
            spec = parse_type(ann)
        except UnsupportedType as e:
            raise SpecError(f"field {n!r} of {cls.__name__}: {e}", line,
                            [f"use {SUPPORTED}"]) from None
        if not hasattr(cls, n):
            raise SpecError(f"field {n!r} of {cls.__name__} has no initial value", line,
                            [f"write '{n}: {spec.describe()} = <value>' or use one_of(...)"])
        default = getattr(cls, n)
        keep = isinstance(default, Persistent)
        if keep and type(default) is not Persistent:     # an external store (extstore.py)
            from assay.model.extstore import check_store_field
            check_store_field(cls, n, spec, default, line)
        if keep:
            default = default.value
        values = default.values if isinstance(default, OneOf) else (default,)
        for v in values:
            if is_mutable_default(v):
                kind = type(v).__name__
                raise SpecError(f"field {n!r} of {cls.__name__} has a mutable default "
                                f"({kind})", line,
                                ["state must be immutable: use frozenset instead of set, "
                                 "a tuple instead of list, and a Map (assay.Map) for a dict"])
            if not spec.conforms(v):
                raise SpecError(f"initial value {v!r} of field {n!r} of {cls.__name__} is not "
                                f"a {spec.describe()}", line)
        fields.append(n)
        types.append(spec)
        initial.append(tuple(values))
        keeps.append(keep)

    handlers: dict[tuple[str, type], HandlerInfo] = {}
    actions: list[ActionInfo] = []
    restart_hook: Callable | None = None
    start_hook: Callable | None = None
    for attr in dir(cls):
        fn = getattr(cls, attr, None)
        if not callable(fn):
            continue
        unapplied = getattr(fn, "__assay_unapplied__", None)
        if unapplied is not None:
            raise SpecError(f"{cls.__name__}.{attr}: {unapplied[0]} is written without its "
                            "arguments, so it defines nothing", unapplied[1],
                            [f"write {unapplied[2]}"])
        fn_loc = object_location(fn)
        _check_override(cls, attr, fn, fn_loc)
        if getattr(fn, "__assay_on_restart__", None) is not None:
            _check_arity(fn, 1, f"restart hook {cls.__name__}.{attr}", "(self)", fn_loc)
            restart_hook = fn
        if getattr(fn, "__assay_on_start__", None) is not None:
            _check_arity(fn, 1, f"start hook {cls.__name__}.{attr}", "(self)", fn_loc)
            if start_hook is not None:
                raise SpecError(f"{cls.__name__} has two @on_start hooks: "
                                f"{start_hook.__name__} and {attr}", fn_loc)
            start_hook = fn
        req = tuple(getattr(fn, "__assay_requires__", ()))
        ens = tuple(getattr(fn, "__assay_ensures__", ()))
        for mtype, port, loc in getattr(fn, "__assay_on__", ()):
            port_name = _resolve_handler_port(cls, attr, mtype, port, ports, loc or fn_loc)
            key = (port_name, mtype)
            if key in handlers:
                raise SpecError(f"{cls.__name__} has two handlers for {mtype.__name__} on port "
                                f"{port_name!r}: {handlers[key].name} and {attr}", loc or fn_loc)
            _check_arity(fn, 2, f"handler {cls.__name__}.{attr}", "(self, m)", fn_loc)
            for pred, ploc in req:
                _check_arity(pred, 2, f"requires of {attr}", "lambda self, m: ...", ploc)
            for pred, ploc in ens:
                _check_arity(pred, 3, f"ensures of {attr}", "lambda old, self, m: ...", ploc)
                _check_old_first(pred, f"ensures of {attr}", "lambda old, self, m: ...", ploc)
            fair = getattr(fn, "__assay_fair_on__", {}).get((mtype, port))
            guard = getattr(fn, "__assay_when_on__", {}).get((mtype, port))
            if guard is not None:
                _check_arity(guard, 2, f"guard of {attr}", "lambda self, m: ...", loc or fn_loc)
                _check_pure(guard, cls, tuple(fields), f"the receive guard of "
                            f"{cls.__name__}.{attr}", loc or fn_loc)
            for pred, ploc in req:
                _check_pure(pred, cls, tuple(fields), f"requires of {cls.__name__}.{attr}", ploc)
            for pred, ploc in ens:
                _check_pure(pred, cls, tuple(fields), f"ensures of {cls.__name__}.{attr}", ploc)
            handlers[key] = HandlerInfo(attr, fn, mtype, port_name, req, ens, fn_loc, fair,
                                        guard)
        act = getattr(fn, "__assay_action__", None)
        if act is not None:
            when, over, loc = act
            if hasattr(fn, "__assay_on__"):
                raise SpecError(f"{cls.__name__}.{attr} is both a handler and an action", loc)
            arity = 2 if over is not None else 1
            sig = "(self, arg)" if over is not None else "(self)"
            _check_arity(fn, arity, f"action {cls.__name__}.{attr}", sig, fn_loc)
            if when is not None:
                _check_arity(when, arity, f"guard of {attr}", f"lambda {sig[1:-1]}: ...", loc)
                _check_pure(when, cls, tuple(fields), f"the guard of {cls.__name__}.{attr}", loc)
            if callable(over) and not isinstance(over, type):
                _check_pure(over, cls, tuple(fields), f"the domain (over=) of "
                            f"{cls.__name__}.{attr}", loc)
            if req:
                # a handler's requires is what its sender must establish (the sender is
                # blamed); an action has no sender, so the only condition it can have is its
                # guard -- one meaning in every engine
                raise SpecError(f"{cls.__name__}.{attr}: an action has no caller to require "
                                "something of: put the condition in @action(when=...)",
                                req[0][1] or fn_loc,
                                [f"write @action(when=lambda {sig[1:-1]}: ...): the action "
                                 "is enabled only where it holds"])
            for pred, ploc in ens:
                _check_arity(pred, arity + 1, f"ensures of {attr}",
                             f"lambda old, {sig[1:-1]}: ...", ploc)
                _check_old_first(pred, f"ensures of {attr}", f"lambda old, {sig[1:-1]}: ...",
                                 ploc)
                _check_pure(pred, cls, tuple(fields), f"ensures of {cls.__name__}.{attr}", ploc)
            actions.append(ActionInfo(attr, fn, when, _resolve_over(over, attr, loc), ens,
                                      fn_loc, getattr(fn, "__assay_fair__", None)))
        elif (req or ens) and not hasattr(fn, "__assay_on__"):
            loc = (req or ens)[0][1]
            raise SpecError(f"{cls.__name__}.{attr} has a contract but is neither a handler "
                            "nor an action", loc, ["add @on(MessageType) or @action(...)"])


    invariants: list[tuple[Callable, Location | None]] = []
    for klass in reversed(cls.__mro__):
        for pred, loc in vars(klass).get("__assay_invariants__", ()):
            _check_arity(pred, 1, "invariant", "lambda self: ...", loc)
            _check_pure(pred, cls, tuple(fields), f"invariant of {cls.__name__}", loc)
            invariants.append((pred, loc))

    starts: list[tuple[Callable, Location | None]] = []
    for klass in reversed(cls.__mro__):
        for pred, loc in vars(klass).get("__assay_initially__", ()):
            _check_arity(pred, 1, "initially predicate", "lambda self: ...", loc)
            starts.append((pred, loc))
    rows: tuple[dict[str, tuple[Any, ...]], ...] = ()
    rows_loc = None
    declared = next((vars(k)["__assay_initial_rows__"] for k in cls.__mro__
                     if "__assay_initial_rows__" in vars(k)), None)
    if declared is not None:
        given, rows_loc = declared
        rows = check_rows(cls, tuple(fields), tuple(types), given, rows_loc,
                          "initially(...)")

    actions.sort(key=lambda a: (a.location.line if a.location and a.location.line else 0, a.name))
    from assay.model.wellformed import check_code

    check_code(cls, tuple(fields), tuple(types))
    return ComponentInfo(cls, tuple(fields), tuple(types), tuple(initial), ports, handlers,
                         tuple(actions), tuple(invariants),
                         {n: i for i, n in enumerate(fields)}, tuple(keeps), restart_hook,
                         _calls(cls, ("after", "cancel")), _calls(cls, ("choose",)), automata,
                         start_hook, tuple(starts), rows, rows_loc)


def check_rows(cls: type, fields: tuple[str, ...], types: tuple[TypeSpec, ...], given: Any,
               where: Location | None, what: str) -> tuple[dict[str, tuple[Any, ...]], ...]:
    """Initial states listed by a spec (`initially(dict(...), ...)`, `s.add(...,
    initially=[...])`), checked: a non-empty list of dicts naming fields of `cls` with values
    of their types (or `one_of` them).  Each becomes a dict from field to its values."""
    name = cls.__name__
    if what.startswith("initially("):
        fix = ["write initially(dict(field=value, ...), ...), one dict of field values per "
               "initial state, or a predicate: initially(lambda self: ...)"]
    else:
        fix = ["write initially=[dict(field=value, ...), ...], one dict of field values per "
               "initial state, or a predicate: initially=lambda self: ..."]
    if not isinstance(given, list | tuple):
        raise SpecError(f"{what} of {name} takes a list of dicts of field values, not "
                        f"{_a(type(given).__name__)}", where,
                        ["put it in a list: initially=[dict(...)]"] if isinstance(given, dict)
                        else fix)
    if not given:
        raise SpecError(f"{what} of {name} lists no initial state", where,
                        [*fix, "a component needs at least one initial state"])
    index = {f: i for i, f in enumerate(fields)}
    out = []
    for n, row in enumerate(given, 1):
        if not isinstance(row, dict):
            raise SpecError(f"{what} of {name}: initial state {n} is "
                            f"{type(row).__name__} {_short(row)}, not a dict of field values",
                            where, fix)
        values: dict[str, tuple[Any, ...]] = {}
        for k, v in row.items():
            if k not in index:
                near = difflib.get_close_matches(str(k), fields, n=1)
                raise SpecError(f"{what} of {name}: initial state {n} names {k!r}, which is "
                                f"not a field of {name}", where,
                                ([f"did you mean {near[0]!r}?"] if near else [])
                                + [f"fields of {name}: {', '.join(fields) or '(none)'}"])
            spec = types[index[k]]
            vs = v.values if isinstance(v, OneOf) else (v,)
            for x in vs:
                if is_mutable_default(x) or not spec.conforms(x):
                    raise SpecError(f"{what} of {name}: initial state {n} gives {k} the "
                                    f"value {_short(x)}, which is not of type "
                                    f"{spec.describe()}", where)
            values[k] = tuple(vs)
        out.append(values)
    return tuple(out)


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _short(v: Any, most: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= most else text[:most] + "..."


def _calls(cls: type, methods: tuple[str, ...]) -> bool:
    """Whether the class's code (or a base's) uses `self.<one of methods>` (timers: `after`,
    `cancel`; nondeterminism: `choose`)."""
    import ast
    import textwrap

    for klass in cls.__mro__:
        if klass is Component or klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            return True                  # cannot tell: assume it does
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in methods \
                    and isinstance(node.value, ast.Name) and node.value.id == "self":
                return True
    return False


def _resolve_handler_port(cls: type, attr: str, mtype: Any, port: str | None,
                          ports: dict[str, Port], loc: Location | None) -> str:
    if not (isinstance(mtype, type) and issubclass(mtype, Message)):
        raise SpecError(f"@on({getattr(mtype, '__name__', mtype)!s}) on {cls.__name__}.{attr}: "
                        "the argument is not a Message class", loc,
                        ["declare it as 'class X(Message): ...'"])
    if not ports:
        if port is None and _calls(cls, ("after",)):
            return ANY_PORT              # a portless component's own timers
        raise SpecError(f"{cls.__name__}.{attr} handles {mtype.__name__}, but {cls.__name__} "
                        "has no port that could carry it, and sets no timer", loc,
                        ["declare a port on the component, e.g. 'peer = Port()', or set the "
                         "message as a timer: self.after(delay, Msg())"])
    if port is None:                     # from any port (and from a timer)
        return next(iter(ports)) if len(ports) == 1 else ANY_PORT
    if port not in ports:
        raise SpecError(f"{cls.__name__}.{attr} handles {mtype.__name__} on port {port!r}, "
                        f"which {cls.__name__} does not have; no port can carry it", loc,
                        [f"ports of {cls.__name__}: {', '.join(sorted(ports))}"])
    return port


def _resolve_over(over: Any, attr: str, loc: Location | None) -> Any:
    if over is None or callable(over) and not isinstance(over, type):
        return over
    try:
        values = tuple(over)
    except TypeError:
        raise SpecError(f"over= of action {attr} is not a finite domain", loc,
                        ["give a list, a range, an Enum class or a function of self"]) from None
    if not values:
        raise SpecError(f"over= of action {attr} is empty", loc)
    for v in values:
        try:
            hash(v)
        except TypeError:
            raise SpecError(f"over= of action {attr} holds {_short(v)}, {_a(type(v).__name__)}"
                            ", which is not a value assay can use as an action's argument",
                            loc, ["use immutable values: a tuple instead of a list, a "
                                  "frozenset instead of a set, a Map instead of a dict"]
                            ) from None
    return values


def _assigned_fields(code: Any, cls: type, fields: set[str], seen: set[Any]) -> str | None:
    """A field of `cls` that the code assigns or deletes (`STORE_ATTR`/`DELETE_ATTR` of its
    name), itself or in a method of `cls` it calls by name, or in code nested in it (a
    comprehension): read from the bytecode, so a lambda is covered as well as a `def`."""
    import dis

    if code in seen:
        return None
    seen.add(code)
    for ins in dis.get_instructions(code):
        if ins.opname in ("STORE_ATTR", "DELETE_ATTR") and ins.argval in fields:
            return str(ins.argval)
        if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and isinstance(ins.argval, str):
            m = inspect.getattr_static(cls, ins.argval, None)
            m = getattr(m, "__func__", m)
            if inspect.isfunction(m):
                found = _assigned_fields(m.__code__, cls, fields, seen)
                if found is not None:
                    return found
    for const in code.co_consts:
        if inspect.iscode(const):
            found = _assigned_fields(const, cls, fields, seen)
            if found is not None:
                return found
    return None


def _check_pure(pred: Any, cls: type, fields: tuple[str, ...], what: str,
                loc: Location | None) -> None:
    """A guard, contract or invariant that assigns a field: a predicate runs on a copy of the
    state whose changes every engine discards, so the assignment would silently do nothing."""
    code = getattr(getattr(pred, "__func__", pred), "__code__", None)
    if code is None or not fields:
        return
    found = _assigned_fields(code, cls, set(fields), set())
    if found is not None:
        raise SpecError(f"{what} assigns self.{found}: a predicate must not change the state "
                        "(it runs on a copy, and what it assigns is thrown away)", loc,
                        ["compute the condition without assigning; change the field in the "
                         "handler or action itself"])


def check_plain(fn: Any, what: str, loc: Location | None) -> None:
    """A handler, action, hook, guard, contract or property must be a plain function: an
    `async def` or a function with `yield` returns a coroutine or generator when called, so
    its body would never run (a step is atomic and runs to completion) and the spec would
    silently mean something else."""
    target = getattr(fn, "__func__", fn)            # a bound or static method: its function
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        raise SpecError(f"{what} is an 'async def': calling it only makes a coroutine, so its "
                        "body would never run", loc or object_location(target),
                        ["write it as a plain 'def': a step runs to completion, atomically; "
                         "waiting is a timer (self.after(delay, Msg())) and its handler"])
    if inspect.isgeneratorfunction(target):
        raise SpecError(f"{what} contains 'yield': calling it only makes a generator, so its "
                        "body would never run", loc or object_location(target),
                        ["remove the yield: a step returns nothing (send with "
                         "self.<port>.send(...)); a predicate returns a bool"])


_MARKS = {"__assay_on__": "@on", "__assay_action__": "@action",
          "__assay_on_start__": "@on_start", "__assay_on_restart__": "@on_restart"}


def _check_override(cls: type, attr: str, fn: Any, loc: Location | None) -> None:
    """A method that overrides a base class's handler, action or hook without its decorator:
    Python keeps the override, so the subclass would silently have no such handler (a
    message for it unhandled, the action never enabled)."""
    if any(hasattr(fn, m) for m in _MARKS):
        return
    for base in cls.__mro__[1:]:
        old = vars(base).get(attr)
        if old is None:
            continue
        marks = [d for m, d in _MARKS.items() if hasattr(old, m)]
        if marks:
            owner = next(k for k in cls.__mro__ if attr in vars(k))
            raise SpecError(f"{owner.__name__}.{attr} overrides {base.__name__}.{attr} without "
                            f"its {marks[0]}, so {cls.__name__} has no such "
                            f"{'action' if marks[0] == '@action' else 'handler'}",
                            loc, [f"repeat the decorator ({marks[0]}(...)) on the override, "
                                  "or give the new method another name"])
        return


def _check_old_first(pred: Callable, what: str, expected: str, loc: Location | None) -> None:
    """An `ensures` whose parameters say `(self, old, ...)`: assay passes the state before the
    step first, so `self` would be the old state and `old` the new one — the contract would
    silently check the step backwards."""
    try:
        names = [p.name for p in inspect.signature(pred).parameters.values()]
    except (TypeError, ValueError):
        return
    if len(names) >= 2 and names[0] == "self" and names[1] == "old":
        raise SpecError(f"{what} is written (self, old, ...), but assay passes the state "
                        "before the step first: here 'self' would be the old state and 'old' "
                        "the new one", loc, [f"write it as {expected}"])


def _check_arity(fn: Callable, n: int, what: str, expected: str, loc: Location | None) -> None:
    if not callable(fn):
        raise SpecError(f"{what} is {_a(type(fn).__name__)} ({_short(fn)}), not a function",
                        loc, [f"write it as {expected}"])
    check_plain(fn, what, loc)
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if not (len(required) <= n <= len(positional)):
        raise SpecError(f"{what} takes {len(positional)} argument(s), assay passes {n}",
                        loc or object_location(fn), [f"write it as {expected}"])


def _check_port_names(cls: type, hints: dict[str, Any], ports: dict[str, Port]) -> None:
    """Refuse a field and a port of the same name: one replaced the other in the class body
    (a port replaced by a later field was "has no port" at `s.connect`, blamed on the
    connection; a field replaced by a later port silently lost its state)."""
    fix = "a port, a field and a method share the class's names: rename one (e.g. 'peer' and " \
        "'peer_count')"
    for n, port in ports.items():
        ann = hints.get(n)
        if ann is not None and ann is not Port and get_origin(ann) is not ClassVar \
                and ann is not ClassVar and not n.startswith("_"):
            raise SpecError(f"{cls.__name__}.{n} is both a field and a port: the port replaces "
                            "the field, whose state would be lost", port.location, [fix])
    for klass in cls.__mro__:
        made = vars(klass).get("__assay_ports__", ())
        kept = {id(v) for v in vars(klass).values()}
        for port in made:
            if id(port) in kept:
                continue
            # the name it was assigned to: the one whose value is now something else
            import linecache

            line = linecache.getline(port.location.file, port.location.line) \
                if port.location is not None else ""
            name = line.split("=")[0].split(":")[0].strip()
            if name.isidentifier() and name in vars(klass):
                what = "a field" if name in hints else "a later definition"
                raise SpecError(f"port {name!r} of {klass.__name__} is replaced by {what} of "
                                "the same name", port.location, [fix])


def _field_location(cls: type, name: str) -> Location | None:
    """The line of a field's annotation in its class body (only used to report errors)."""
    import ast
    import textwrap

    for klass in cls.__mro__:
        if name not in vars(klass).get("__annotations__", {}):
            continue
        try:
            lines, start = inspect.getsourcelines(klass)
            file = inspect.getsourcefile(klass)
        except (OSError, TypeError):
            return None
        tree = ast.parse(textwrap.dedent("".join(lines)))
        for node in ast.walk(tree):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                    and node.target.id == name:
                return Location(file or "?", start + node.lineno - 1)
        return Location(file or "?", start)
    return None
