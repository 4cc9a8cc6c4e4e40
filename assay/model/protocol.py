"""Session types on ports: protocols written from one side, compiled to finite automata.

    TM_SIDE = (p.recv(Prepared) >> (p.send(Commit) | p.send(Abort))
               | p.send(Abort) >> p.recv(Prepared).opt())

`p.send(M)` / `p.recv(M)` exchange one message; `a >> b` is sequence, `a | b` choice,
`a.opt()` zero or one, `a.many()` zero or more, `p.loop(lambda again: ...)` named recursion
(`again` continues the loop), `p.end` ends the session.  `dual()` flips every direction: the
other end of a connection speaks the dual.

A protocol compiles (once) to a deterministic automaton over labels ("send"|"recv", message
type); a session's position is a state of that automaton.  An ill-formed protocol — an empty
choice, a recursion or repetition that can loop without exchanging a message, or a message
written where no session gets (after `p.end`, which ends the whole session even inside a loop)
— is a `SpecError` at the line that wrote it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assay.errors import Location, SpecError, caller_location

if TYPE_CHECKING:
    import networkx as nx

SEND, RECV = "send", "recv"
Label = tuple[str, type]


class Protocol:
    """A session type (build it with the functions of this module)."""

    location: Location | None = None

    def __rshift__(self, other: Protocol) -> Protocol:
        return _at(Seq(self, _check(other, ">>")))

    def __or__(self, other: Protocol) -> Protocol:
        return _at(Choice((self, _check(other, "|"))))

    def opt(self) -> Protocol:
        """This, or nothing."""
        return _at(Choice((self, Skip())))

    def many(self) -> Protocol:
        """This, zero or more times."""
        return _at(Many(self))

    def dual(self) -> Protocol:
        """The same protocol seen from the other end: every send a receive and back."""
        return _at(self._dual())

    def _dual(self) -> Protocol:
        raise NotImplementedError

    def automaton(self) -> Automaton:
        """The deterministic automaton of this protocol (compiled once)."""
        a = self.__dict__.get("_automaton")
        if a is None:
            a = self.__dict__["_automaton"] = _compile(self)
        return a

    def __str__(self) -> str:
        return self._show(0)

    def _show(self, prec: int) -> str:
        raise NotImplementedError


def _at(p: Protocol) -> Protocol:
    p.location = caller_location(3)
    return p


def _check(other: Any, op: str) -> Protocol:
    if not isinstance(other, Protocol):
        raise SpecError(f"protocol {op} {other!r}: both sides must be protocols",
                        caller_location(3), ["build them with p.send(M), p.recv(M), p.end"])
    return other


@dataclass(eq=False)
class Msg(Protocol):
    direction: str
    message: type

    def _dual(self) -> Protocol:
        return Msg(RECV if self.direction == SEND else SEND, self.message)

    def _show(self, prec: int) -> str:
        return f"{self.direction}({self.message.__name__})"


@dataclass(eq=False)
class Seq(Protocol):
    first: Protocol
    then: Protocol

    def _dual(self) -> Protocol:
        return Seq(self.first._dual(), self.then._dual())

    def _show(self, prec: int) -> str:
        s = f"{self.first._show(2)} >> {self.then._show(2)}"
        return f"({s})" if prec > 2 else s


@dataclass(eq=False)
class Choice(Protocol):
    options: tuple[Protocol, ...]

    def _dual(self) -> Protocol:
        return Choice(tuple(o._dual() for o in self.options))

    def _show(self, prec: int) -> str:
        if len(self.options) == 2 and isinstance(self.options[1], Skip):
            return f"{self.options[0]._show(3)}.opt()"
        s = " | ".join(o._show(1) for o in self.options)
        return f"({s})" if prec > 1 else s


@dataclass(eq=False)
class Many(Protocol):
    body: Protocol

    def _dual(self) -> Protocol:
        return Many(self.body._dual())

    def _show(self, prec: int) -> str:
        return f"{self.body._show(3)}.many()"


@dataclass(eq=False)
class Skip(Protocol):
    def _dual(self) -> Protocol:
        return self

    def _show(self, prec: int) -> str:
        return "skip"


@dataclass(eq=False)
class End(Protocol):
    def _dual(self) -> Protocol:
        return self

    def _show(self, prec: int) -> str:
        return "end"


@dataclass(eq=False)
class Var(Protocol):
    name: str
    binder: Loop | None = None

    def _dual(self) -> Protocol:
        return self          # re-bound by the dual loop

    def _show(self, prec: int) -> str:
        return self.name


@dataclass(eq=False)
class Loop(Protocol):
    var: Var
    body: Protocol = field(default_factory=Skip)

    def _dual(self) -> Protocol:
        v = Var(self.var.name)
        dual = Loop(v)
        dual.body = _rebind(self.body._dual(), self.var, v)
        return dual

    def _show(self, prec: int) -> str:
        return f"loop {self.var.name}. ({self.body._show(0)})"


def _rebind(p: Protocol, old: Var, new: Var) -> Protocol:
    if p is old:
        return new
    if isinstance(p, Seq):
        return Seq(_rebind(p.first, old, new), _rebind(p.then, old, new))
    if isinstance(p, Choice):
        return Choice(tuple(_rebind(o, old, new) for o in p.options))
    if isinstance(p, Many):
        return Many(_rebind(p.body, old, new))
    if isinstance(p, Loop):
        inner = Loop(p.var)
        inner.body = _rebind(p.body, old, new)
        return inner
    return p


# --- the public constructors ---------------------------------------------------------------------

def send(message: type) -> Protocol:
    """This side sends one `message`."""
    return _at(Msg(SEND, _message_type(message)))


def recv(message: type) -> Protocol:
    """This side receives one `message`."""
    return _at(Msg(RECV, _message_type(message)))


def choice(*options: Protocol) -> Protocol:
    """One of `options` (`a | b | c`)."""
    if not options:
        raise SpecError("an empty choice: p.choice() needs at least one option",
                        caller_location(2))
    for o in options:
        _check(o, "choice")
    return _at(Choice(tuple(options)))


def loop(body: Callable[[Protocol], Protocol], name: str = "again") -> Protocol:
    """Named recursion: `p.loop(lambda again: p.send(Ping) >> p.recv(Pong) >> again | p.end)`."""
    var = Var(name)
    lp = Loop(var)
    var.binder = lp
    inner = body(var)
    lp.body = _check(inner, "loop")
    return _at(lp)


end: Protocol = End()


def _message_type(m: Any) -> type:
    from assay.model.message import Message

    if not (isinstance(m, type) and issubclass(m, Message)):
        raise SpecError(f"{m!r} is not a Message class", caller_location(3),
                        ["protocols name message types: p.send(Prepared)"])
    return m


# --- compilation ---------------------------------------------------------------------------------

@dataclass
class Automaton:
    """A deterministic automaton: states 0..n-1, 0 the start, `accepting` where the session may
    end, `trans[(state, direction, message type)]` the next state."""

    trans: dict[tuple[int, str, type], int]
    accepting: frozenset[int]
    graph: nx.MultiDiGraph
    protocol: Protocol

    def step(self, state: int, direction: str, message: type) -> int | None:
        return self.trans.get((state, direction, message))

    def expects(self, state: int) -> list[str]:
        """What may happen next from `state`, for messages ("recv Prepared", "end")."""
        out = sorted(f"{d} {m.__name__}" for (s, d, m) in self.trans if s == state)
        if state in self.accepting:
            out.append("end")
        return out

    def labels(self, state: int) -> list[tuple[str, type, int]]:
        return [(d, m, t) for (s, d, m), t in self.trans.items() if s == state]


def _compile(protocol: Protocol) -> Automaton:
    """Thompson construction of an NFA with silent moves, checks, then the subset construction."""
    import networkx as nx  # imported here: a spec without protocols does not pay for it

    edges: list[tuple[int, int, Label | None]] = []     # None: a silent move
    count = [1]                                           # state 0 is the final state
    FINAL = 0
    loop_entry: dict[int, int] = {}

    def new() -> int:
        count[0] += 1
        return count[0] - 1

    def build(p: Protocol, nxt: int) -> int:
        if isinstance(p, Msg):
            s = new()
            edges.append((s, nxt, (p.direction, p.message)))
            return s
        if isinstance(p, Seq):
            return build(p.first, build(p.then, nxt))
        if isinstance(p, Choice):
            s = new()
            for o in p.options:
                edges.append((s, build(o, nxt), None))
            return s
        if isinstance(p, Skip):
            return nxt
        if isinstance(p, End):
            return FINAL
        if isinstance(p, Many):
            s = new()
            edges.append((s, nxt, None))
            edges.append((s, build(p.body, s), None))
            return s
        if isinstance(p, Loop):
            s = new()
            loop_entry[id(p.var)] = s
            edges.append((s, build(p.body, nxt), None))
            return s
        if isinstance(p, Var):
            entry = loop_entry.get(id(p))
            if entry is None:
                raise SpecError(f"protocol variable {p.name!r} is used outside its loop",
                                protocol.location)
            s = new()
            edges.append((s, entry, None))
            return s
        raise SpecError(f"{p!r} is not a protocol", protocol.location)

    start = build(protocol, FINAL)
    silent = nx.DiGraph()
    silent.add_nodes_from(range(count[0]))
    silent.add_edges_from((a, b) for a, b, lab in edges if lab is None)
    try:
        cycle = nx.find_cycle(silent)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        raise SpecError(f"protocol {protocol} can loop without exchanging a message "
                        "(an unguarded recursion, or a repetition of something that may be "
                        "empty)", protocol.location,
                        ["put a p.send(...) or p.recv(...) before every 'again', and repeat "
                         "only what exchanges at least one message"])

    # a message written where no run can get (after a `p.end`, or after a loop that has no
    # way out) is a mistake the automaton would hide: the session ends before it
    every = nx.DiGraph()
    every.add_nodes_from(range(count[0]))
    every.add_edges_from((a, b) for a, b, _ in edges)
    reached = nx.descendants(every, start) | {start}
    dead = sorted({f"{lab[0]}({lab[1].__name__})" for a, _, lab in edges
                   if lab is not None and a not in reached})
    if dead:
        raise SpecError(f"protocol {protocol} has {', '.join(dead)} where no session gets: "
                        "the session ends before it", protocol.location,
                        ["p.end ends the whole session, also inside a loop: to go on after "
                         "a loop, write what follows in the loop's exit (`... | rest`)"])

    closure = {s: frozenset(nx.descendants(silent, s) | {s}) for s in range(count[0])}
    moves: dict[int, list[tuple[Label, int]]] = {}
    for a, b, lab in edges:
        if lab is not None:
            moves.setdefault(a, []).append((lab, b))

    def key(label: Label) -> tuple[str, str, str]:
        return (label[0], label[1].__module__, label[1].__qualname__)

    sets: dict[frozenset[int], int] = {}
    order: list[frozenset[int]] = []
    trans: dict[tuple[int, str, type], int] = {}
    first = closure[start]
    sets[first] = 0
    order.append(first)
    k = 0
    while k < len(order):
        current = order[k]
        targets: dict[Label, set[int]] = {}
        for s in current:
            for lab, b in moves.get(s, ()):
                targets.setdefault(lab, set()).update(closure[b])
        for lab in sorted(targets, key=key):             # deterministic state numbering
            t = frozenset(targets[lab])
            if t not in sets:
                sets[t] = len(order)
                order.append(t)
            trans[(k, lab[0], lab[1])] = sets[t]
        k += 1
    accepting = frozenset(i for i, st in enumerate(order) if FINAL in st)
    g = nx.MultiDiGraph()
    g.add_nodes_from(range(len(order)))
    for (a, d, m), b in trans.items():
        g.add_edge(a, b, direction=d, message=m)
    return Automaton(trans, accepting, g, protocol)
