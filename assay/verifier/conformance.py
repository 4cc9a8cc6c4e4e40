"""Protocol conformance of handler code: every send keeps to its own port's protocol.

`compat.py` proves that the two automata at the ends of a connection fit; this module proves
that the *code* of a component sends only what its ports' protocols allow where it sends it.
One obligation per send site (`send`, `broadcast`) on a port with a protocol, of kind
`protocol`: in every local state in which the handler, action or restart hook can run, the
position of each session the send goes on allows sending that message type (sends earlier in
the same body having advanced it).

The model (the kernel's own rules, `assay.kernel.exec`).  An instance's local state is its
fields and, per port with a protocol and per connected peer, a session position (a state of the
port's automaton; 0 at first).  Positions change in three ways only: a delivery of M from x on
port P moves (P, x) by `recv M` — where the automaton has no such move the delivery is refused
(a protocol violation blamed on the sender) and the handler does not run; a send of M to y on Q
moves (Q, y) by `send M` — where there is none the step aborts (blamed on the sender, state
unchanged); a restart puts the sessions of non-persistent ports back to 0.  A timer's handler,
an action and a restart hook receive nothing.  So every position is reachable in the automaton
from its start, and a handler for M on P runs only where P's automaton can receive M.

Correlating positions with fields.  The automaton alone decides a reply on the session a
message came in on, and a sequence of sends in one body (each advances it).  For anything else
— an action's send, a broadcast to every peer, a send on another port — the position depends on
the history, which the component usually records in its fields (`waiting`, `state`, the set of
peers that have `prepared`).  assay infers that relation:

    R(fields, positions) = for every port Q with a protocol, every peer y of Q, and every
                           position s of Q's automaton: pos(Q, y) = s  ==>  phi[Q, s](fields, y)

where each phi is a conjunction of candidate atoms — `f != v` (an Enum field and each member),
`f` / `not f` (bool), `f ==` / `!=` / `<=` / `>=` c (int, for small constants in the class's
code), `y in f` / `y not in f` (a set of peers), `f == y` / `f != y` (a peer), `pos(Q', peer)
!= s'` (another single port's position), and `False` (the position never occurs).  Houdini's
algorithm: start from every candidate; drop those false in some initial state (the system's
instances, every session at 0); then, for every step — each handler on each port it can
receive on (and as a timer, when its message may be one), each action, and a crash + restart
(with the hook) — prove with Z3 that a state satisfying the invariants and R, after the step
(assuming only what the kernel guarantees for the step to happen: the receive allowed, the
requires, guard, message types and port contract, the body completing and every send allowed),
satisfies R again; drop the candidates of every counter-model and repeat until nothing is
dropped.  What remains is inductive, so it holds in every reachable local state of the
system's instances (as long as the invariants do, which are obligations of their own), whatever
their peers do: peers appear only through the messages the kernel lets through.  The candidates
false in a short run of the component (below) are dropped before Z3 is asked: cheaper, and
sound, since what remains is proved inductive anyway.  An untranslated body makes R empty
(nothing known but the automaton).

The obligation of send site k: invariants ∧ R (instantiated at the peers that matter) ∧ the
step's assumptions ∧ the site's path condition ∧ the earlier sites allowed ⇒ the position
(after the receive and the earlier sends of the body, as Z3 terms over an uninterpreted
`pos(Q, y)`) allows `send M` — for a broadcast, for a fresh peer of the port, i.e. every peer.
Universally quantified assumptions are instantiated at finitely many peer terms (the sender,
the destinations, the witnesses): a weaker premise, so `unsat` is still a proof.

Verdicts.  proved as above (an untranslated assumption gives unknown, as in `verify`);
vacuous when the send is unreachable under the assumptions; refuted only with a run: from one
of the component's initial states, with peers that speak exactly the duals of its ports'
protocols — they may deliver any message (sample field values, the model's among them) that the
component's automaton can receive at its current position, and on a port without a protocol
any message it handles; actions fire when enabled, timers as the kernel keeps them, a crash and
restart only for a restart hook's send — the component reaches a step that breaks the protocol
at that send (in the system's wiring, or the Z3 model's).  That run is the witness, and its
last step, re-run through the kernel's `Runner` with protocols on, is the counterexample: a
refutation never rests on a local state no run of the component reaches (its actual peers in
the system may be more particular than their protocols: `assay check` says whether they get
there).  Otherwise unknown, with the
reason: not translated, the solver's, or "a local state where it breaks exists (the model,
confirmed by the `Runner`) but no run reached one", which is what a correlation outside R looks
like (a disjunction, two sessions of a many-port in step, a pending timer).
"""
from __future__ import annotations

import ast
import contextlib
import functools
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import z3

from assay.errors import AssayError
from assay.kernel.exec import Runner
from assay.model.component import ANY_PORT, ActionInfo, ComponentInfo, HandlerInfo, component_info
from assay.model.message import Message
from assay.model.protocol import RECV, SEND, Automaton
from assay.model.show import show
from assay.model.system import System
from assay.model.types import Peer
from assay.verifier import prove, source
from assay.verifier import types as vtypes
from assay.verifier.concrete import (
    Scenario,
    correlated,
    initial_choices,
    initial_rows,
    real_wiring,
    spawned_with_values,
    wirings,
)
from assay.verifier.types import PEER, ModelReader, SelfObj, Unsupported, Val, peer_sort, to_z3
from assay.verifier.verify import (
    Counterexample,
    Obligation,
    _Component,
    _line,
    _line_of,
    _sample_value,
    _state_premise,
    _step_premise,
    _Target,
    encoding,
    restart_condition,
)

KIND = "protocol"
MAX_INITIAL = 4096           # initial states evaluated concretely (more: nothing known at 0)
SEARCH_STATES = 4000         # local states explored to confirm a refutation, per wiring
SEARCH_SECONDS = 5.0
MAX_TIMER_COPIES = 3         # pending copies of one timer a search keeps (the kernel: any)
PRUNE_STATES = 300           # local states explored to drop candidates before Z3 does
PRUNE_SECONDS = 1.0
INT_CONSTANTS = 6            # small int constants of a class's code tried in atoms


@dataclass(frozen=True)
class ProtocolScenario(Scenario):
    """A concrete local step with its session positions: what a `protocol` obligation is
    evaluated on."""

    sessions: tuple[tuple[str, str, int], ...] = ()    # (port, peer, position) before the step
    port: str | None = None              # the port a message arrives on (None: a timer)

    def positions(self) -> dict[tuple[str, str], int]:
        return {(p, y): s for p, y, s in self.sessions}


# --- the automata and positions as Z3 terms -------------------------------------------------------

class _Proto:
    """A port's automaton in Z3: positions are ints, -1 where a move is not allowed."""

    def __init__(self, tag: str, port: str, auto: Automaton, persistent: bool) -> None:
        self.port = port
        self.auto = auto
        self.n = auto.graph.number_of_nodes()
        self.persistent = persistent
        self.fn = z3.Function(f"{tag}.{port}.pos", peer_sort(), z3.IntSort())

    def step(self, s: Any, d: str, m: type) -> Any:
        out: Any = z3.IntVal(-1)
        for (a, dd, mm), b in sorted(self.auto.trans.items(), key=lambda kv: kv[0][0]):
            if dd == d and mm is m:
                out = z3.If(s == a, z3.IntVal(b), out)
        return out

    def allows(self, s: Any, d: str, m: type) -> Any:
        froms = [a for (a, dd, mm) in self.auto.trans if dd == d and mm is m]
        return z3.Or([s == a for a in froms]) if froms else z3.BoolVal(False)

    def expects(self, s: int) -> str:
        return ", ".join(self.auto.expects(s)) or "nothing"


class _Pos:
    """The positions of one port's sessions as a function of the peer (a Z3 term), memoised."""

    __slots__ = ("_f", "_memo")

    def __init__(self, f: Callable[[Any], Any]) -> None:
        self._f = f
        self._memo: dict[int, tuple[Any, Any]] = {}

    def at(self, y: Any) -> Any:
        k = y.get_id()
        got = self._memo.get(k)
        if got is None:
            got = self._memo[k] = (y, self._f(y))
        return got[1]


def _moved(prev: _Pos, cond: Any, who: Callable[[Any], Any], pr: _Proto, d: str,
           m: type, dest: Any = None) -> _Pos:
    """`prev` after a move `d m` of the sessions `who(y)` selects, where `cond` holds."""
    if dest is not None:
        return _Pos(lambda y: z3.If(z3.And(cond, who(y)), pr.step(prev.at(dest), d, m),
                                    prev.at(y)))
    return _Pos(lambda y: z3.If(z3.And(cond, who(y)), pr.step(prev.at(y), d, m), prev.at(y)))


# --- the candidate atoms of the relation R --------------------------------------------------------

@dataclass(frozen=True)
class _Atom:
    """One candidate fact about the fields (and the session's peer y) at a position."""

    kind: str          # never; ne (Enum); true, false; eq, neq, le, ge (int); in, out; is, isnt;
                       # at_not (another single port's position)
    field: str = ""
    value: Any = None  # an Enum member, an int, or (port, position) for at_not

    def z3(self, fields: dict[str, Any], pos: dict[str, _Pos], y: Any,
           c: _Class) -> Any:
        k = self.kind
        if k == "never":
            return z3.BoolVal(False)
        if k == "at_not":
            port, s = self.value
            penc = c.enc.ports[port]
            return z3.Or(z3.Not(penc.conn), pos[port].at(penc.peer) != s)
        v = fields[self.field]
        e = v.e
        if k == "ne":
            return e != to_z3(self.value, v.ty, {})
        if k == "true":
            return e
        if k == "false":
            return z3.Not(e)
        if k == "eq":
            return e == self.value
        if k == "neq":
            return e != self.value
        if k == "le":
            return e <= self.value
        if k == "ge":
            return e >= self.value
        if k == "in":
            return z3.IsMember(y, e)
        if k == "out":
            return z3.Not(z3.IsMember(y, e))
        if k == "is":
            return e == y
        assert k == "isnt"
        return e != y

    def holds(self, values: dict[str, Any], sessions: dict[tuple[str, str], int],
              ports: dict[str, tuple[str, ...]], y: str) -> bool:
        k = self.kind
        if k == "never":
            return False
        if k == "at_not":
            port, s = self.value
            peers = ports.get(port, ())
            return not peers or sessions.get((port, peers[0])) != s
        v = values[self.field]
        if k == "ne":
            return bool(v != self.value)
        if k in ("true", "false"):
            return bool(v) == (k == "true")
        if k == "eq":
            return bool(v == self.value)
        if k == "neq":
            return bool(v != self.value)
        if k == "le":
            return bool(v <= self.value)
        if k == "ge":
            return bool(v >= self.value)
        if k in ("in", "out"):
            return (y in {str(x) for x in v}) == (k == "in")
        return (str(v) == y) == (k == "is")


# --- the steps of a component ---------------------------------------------------------------------

@dataclass
class _Site:
    """A send on a port with a protocol, with the positions of that port just before it."""

    index: int
    send: Any                     # statements.SendSite
    pr: _Proto
    cond: Any                     # its path condition and the kernel's checks before the protocol
    prev: _Pos
    dest: Any = None              # a send's destination (None: a broadcast)

    def allowed_at(self, c: _Class, t: Any = None) -> Any:
        """The kernel's protocol check of this send passes (for a broadcast: on `t`)."""
        m = self.send.msg.cls
        if self.dest is not None:
            return z3.Implies(self.cond, self.pr.allows(self.prev.at(self.dest), SEND, m))
        peers = c.enc.ports[self.pr.port].peers.e
        return z3.Implies(z3.And(self.cond, z3.IsMember(t, peers)),
                          self.pr.allows(self.prev.at(t), SEND, m))


@dataclass
class _Step:
    """One way the component's local state can change: a handler on a port (or as a timer), an
    action, or a restart (with its hook)."""

    target: str
    case: str                                  # how it runs, for messages
    handler: HandlerInfo | None = None
    action: ActionInfo | None = None
    port: str | None = None                    # the port a message arrives on (None: a timer)
    fn: Any = None
    premise: list[Any] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    error: str | None = None
    args: list[Any] = field(default_factory=list)
    sender: Any = None
    pre_fields: dict[str, Any] = field(default_factory=dict)
    post_fields: dict[str, Any] = field(default_factory=dict)
    completed: Any = None
    post: dict[str, _Pos] = field(default_factory=dict)
    sites: list[_Site] = field(default_factory=list)
    terms: list[Any] = field(default_factory=list)  # peer terms to instantiate R at
    restart: dict[str, Any] | None = None           # the restart's fresh fields (restart step)
    memo: dict[str, Any] = field(default_factory=dict)  # Z3 terms of its atoms, per state

    @property
    def kind(self) -> str:
        if self.target == "restart" and self.handler is None and self.action is None:
            return "restart"
        if self.action is not None:
            return "action"
        return "handler" if self.port is not None else "timer"


class _Class:
    """The conformance obligations of one component class."""

    def __init__(self, system: System, cls: type, names: list[str], timeout: float) -> None:
        self.system = system
        self.cls = cls
        self.names = names
        self.info = component_info(cls)
        self.enc = encoding(self.info)
        self.timeout = timeout
        self.solver = z3.Solver()
        self.solver.set("timeout", max(1, int(timeout * 1000)))
        self.comp = _Component(system, cls, names, self.solver, timeout)
        tag = cls.__name__
        self.protos = {p: _Proto(tag, p, a, self.info.ports[p].persistent)
                       for p, a in sorted(self.info.automata.items())}
        self.witness = {p: z3.Const(f"{tag}.{p}.w", peer_sort()) for p in self.protos}
        self.base = {p: _Pos(pr.fn) for p, pr in self.protos.items()}
        self.cands: dict[str, dict[int, list[_Atom]]] = {}
        self.searched: list[tuple[dict[str, tuple[str, ...]], int, bool]] = []

    # --- the relation R -------------------------------------------------------------------------

    def atoms(self, port: str) -> list[_Atom]:
        out = [_Atom("never")]
        consts = _int_constants(self.info)
        for f in self.info.fields:
            v = self.enc.pre[f]
            if not isinstance(v, Val):
                continue
            k = v.ty.kind
            if k == "bool":
                out += [_Atom("true", f), _Atom("false", f)]
            elif k == "enum":
                out += [_Atom("ne", f, m) for m in v.ty.cls]  # type: ignore[attr-defined]
            elif k == "int":
                out += [_Atom(a, f, c) for c in consts for a in ("eq", "neq", "le", "ge")]
            elif k == "peer":
                out += [_Atom("is", f), _Atom("isnt", f)]
            elif k == "set" and v.ty.elem == PEER:
                out += [_Atom("in", f), _Atom("out", f)]
        for q, pr in self.protos.items():
            if q != port and not self.info.ports[q].many:
                out += [_Atom("at_not", "", (q, s)) for s in range(pr.n)]
        return out

    def relation(self, fields: dict[str, Any], pos: dict[str, _Pos], terms: list[Any],
                 memo: dict[Any, Any] | None = None) -> list[Any]:
        """R at the given peer terms (and every position in its automaton's range); `memo`
        keeps the atoms' terms of one state across Houdini's rounds."""
        memo = {} if memo is None else memo
        out = []
        for q, pr in self.protos.items():
            peers = self.enc.ports[q].peers.e
            for t in terms:
                p = pos[q].at(t)
                parts = [p >= 0, p < pr.n]
                for s, atoms in self.cands.get(q, {}).items():
                    if not atoms:
                        continue
                    terms_s = []
                    for a in atoms:
                        k = (a, t.get_id())
                        e = memo.get(k)
                        if e is None:
                            e = memo[k] = (t, a.z3(fields, pos, t, self))
                        terms_s.append(e[1])
                    parts.append(z3.Implies(p == s, _and(terms_s)))
                out.append(z3.Implies(z3.IsMember(t, peers), _and(parts)))
        return out

    def relation_holds(self, values: dict[str, Any], sessions: dict[tuple[str, str], int],
                       ports: dict[str, tuple[str, ...]]) -> str | None:
        """Why a concrete local state is outside R (or a position out of range), or None."""
        for q, pr in self.protos.items():
            for y in ports.get(q, ()):
                s = sessions.get((q, y))
                if s is None or not 0 <= s < pr.n:
                    return f"the session of port {q} with {y} has no position"
                for a in self.cands.get(q, {}).get(s, ()):
                    if not a.holds(values, sessions, ports, y):
                        return (f"the session of port {q} with {y} is where "
                                f"{self.cls.__name__} never is with these fields")
        return None

    def infer(self, steps: list[_Step]) -> None:
        """Houdini: the strongest conjunction of candidates that is inductive."""
        self.cands = {q: {s: self.atoms(q) for s in range(pr.n)}
                      for q, pr in self.protos.items()}
        if any(s.error for s in steps):
            self.cands = {}
            return
        self._prune_initial()
        self._prune_explored()
        changed = True
        while changed:
            changed = False
            for st in steps:
                while True:
                    got = self._preserved(st)
                    if got is None:           # the solver gave up: nothing is known
                        self.cands = {}
                        return
                    if not got:
                        break
                    changed = True

    def _prune_initial(self) -> None:
        info = self.info
        if spawned_with_values(self.system, self.names):   # nothing known at the start
            for q in self.cands:
                self.cands[q][0] = []
            return
        for name in self.names:
            wiring = real_wiring(self.system, name, info)
            combos = itertools.islice(
                initial_rows(self.system, name, info) if correlated(self.system, name, info)
                else itertools.product(*initial_choices(self.system, name, info)),
                MAX_INITIAL + 1)
            for n, vals in enumerate(combos):
                if n == MAX_INITIAL:                 # too many: nothing known at the start
                    for q in self.cands:
                        self.cands[q][0] = []
                    return
                values = dict(zip(info.fields, vals))
                sessions = {(q, y): 0 for q in self.protos for y in wiring.get(q, ())}
                for q in self.protos:
                    for y in wiring.get(q, ()):
                        self.cands[q][0] = [a for a in self.cands[q][0]
                                            if a.holds(values, sessions, wiring, y)]

    def _prune_explored(self) -> None:
        """Drop the candidates false in some local state a short run reaches (peers speaking
        the duals of the protocols): cheaper than Z3's counter-models, and sound — whatever
        remains is still proved inductive."""
        name = self.names[0]
        ports = real_wiring(self.system, name, self.info)
        if _unconnected_sends(self.enc, ports):
            return
        search = _Search(self, name, ports, [], None, None,
                         time.perf_counter() + PRUNE_SECONDS, PRUNE_STATES)
        runner = search.runner
        info = self.info

        def visit(local: tuple) -> None:
            values = dict(zip(info.fields, local[:-1] if runner.session_keys else local))
            sessions = runner.sessions(local)
            for q in self.protos:
                for y in ports.get(q, ()):
                    s = sessions[(q, y)]
                    atoms = self.cands[q].get(s)
                    if atoms:
                        self.cands[q][s] = [a for a in atoms
                                            if a.holds(values, sessions, ports, y)]
        with contextlib.suppress(AssayError):
            search.run(visit)

    def _preserved(self, st: _Step) -> list[Any] | None:
        """Drop the candidates `st` may break; returns those dropped (None: unknown)."""
        goals = []
        memo = st.memo.setdefault("post", {})
        for q, by_pos in self.cands.items():
            w = self.witness[q]
            inside = z3.IsMember(w, self.enc.ports[q].peers.e)
            for s, atoms in by_pos.items():
                for a in atoms:
                    g = memo.get((q, s, a))
                    if g is None:
                        g = memo[(q, s, a)] = z3.Implies(
                            z3.And(inside, st.post[q].at(w) == s),
                            a.z3(st.post_fields, st.post, w, self))
                    goals.append((q, s, a, g))
        if not goals:
            return []
        terms = _unique(st.terms + list(self.witness.values()))
        sv = self.solver
        sv.push()
        try:
            sv.add(*st.premise, *self.relation(st.pre_fields, self.base, terms,
                                               st.memo.setdefault("pre", {})))
            sv.add(st.completed, *self.sites_allowed(st.sites, terms))
            sv.add(*self.ranges(st))
            sv.add(z3.Not(_and([g for *_, g in goals])))
            r = sv.check()
            if r == z3.unsat:
                return []
            if r == z3.unknown:
                return None
            m = sv.model()
            bad = [(q, s, a) for q, s, a, g in goals
                   if not z3.is_true(m.eval(g, model_completion=True))]
        finally:
            sv.pop()
        if not bad:
            return None
        for q, s, a in bad:
            self.cands[q][s] = [x for x in self.cands[q][s] if x != a]
        return bad

    def ranges(self, st: _Step) -> list[Any]:
        """The kernel refuses a step that leaves a bounded field out of its range."""
        out = []
        for f, (lo, hi) in self.enc.ranges.items():
            v = st.post_fields.get(f)
            if isinstance(v, Val):
                out.append(z3.And(v.e >= lo, v.e <= hi))
        return out

    def sites_allowed(self, sites: list[_Site], terms: list[Any]) -> list[Any]:
        out = []
        for s in sites:
            if s.dest is not None:
                out.append(s.allowed_at(self))
            else:
                out += [s.allowed_at(self, t) for t in terms]
        return out

    # --- building the steps --------------------------------------------------------------------

    def steps(self) -> list[_Step]:
        info = self.info
        out: list[_Step] = []
        for h in sorted(info.handlers.values(), key=lambda h: _line(h.location) or 0):
            ports = [h.port] if h.port != ANY_PORT else \
                [p for p in sorted(info.ports) if (p, h.message) not in info.handlers]
            for p in ports:
                out.append(self.handler_step(h, p))
            timers = self.enc.timer_messages
            if (timers is None or h.message in timers) and info.timer_handler(h.message) is h:
                out.append(self.handler_step(h, None))
        for a in info.actions:
            out.append(self.action_step(a))
        out.append(self.restart_step())
        return out

    def _common(self, st: _Step, t: _Target, args: list[Any]) -> None:
        info, enc = self.info, self.enc
        pre = SelfObj(dict(enc.pre))
        premise = enc.port_assumptions() + enc.state_assumptions(enc.pre)
        for pred, ploc in info.invariants:
            self.comp._assume(premise, st.dropped, pred, [pre],
                              f"invariant (line {_line(ploc)})", key="pre")
        for pred, ploc in t.requires:
            self.comp._assume(premise, st.dropped, pred, [pre, *args],
                              f"requires (line {_line(ploc)})")
        st.premise += premise
        st.pre_fields = dict(enc.pre)

    def handler_step(self, h: HandlerInfo, port: str | None) -> _Step:
        enc = self.enc
        case = f"on port {port}" if port is not None else "as a timer"
        st = _Step(h.name, case, handler=h, port=port, fn=h.fn)
        msg, assume = enc.message(h.message, h.port)
        st.premise += assume
        st.args = [msg]
        t = _Target(h.name, h.fn, handler=h)
        if port is not None:
            contract = self.info.ports[port].where.get(h.message)
            if contract is not None:
                self.comp._assume(st.premise, st.dropped, contract, [msg],
                                  f"contract of port {port} for {h.message.__name__}")
            if isinstance(msg.sender, Val):
                st.sender = msg.sender.e
            else:
                st.sender = z3.Const(f"{self.cls.__name__}.{h.name}.sender@{port}",
                                     peer_sort())
            st.premise.append(z3.IsMember(st.sender, enc.ports[port].peers.e))
        self._common(st, t, st.args)
        start = dict(self.base)
        if port is not None and port in self.protos:
            pr = self.protos[port]
            x = st.sender
            st.premise.append(pr.allows(self.base[port].at(x), RECV, h.message))
            start[port] = _moved(self.base[port], z3.BoolVal(True), _equal_to(x), pr,
                                 RECV, h.message, dest=x)
        try:
            body = enc.body(h.fn, st.args, key=h.message)
        except Unsupported as u:
            st.error = f"not translated: {u}"
            return st
        self._body(st, body, start)
        return st

    def action_step(self, a: ActionInfo) -> _Step:
        enc = self.enc
        st = _Step(a.name, "", action=a, fn=a.fn)
        t = _Target(a.name, a.fn, action=a)
        pre = SelfObj(dict(enc.pre))
        args: list[Any] = []
        if a.over is not None:
            try:
                arg, assume = self.comp._arg(a, pre)
                st.premise += assume
                args = [arg]
            except Unsupported as u:
                st.error = f"the action's domain (over=) is not translated: {u}"
                return st
        st.args = args
        self._common(st, t, args)
        if a.when is not None:
            self.comp._assume(st.premise, st.dropped, a.when, [pre, *args],
                              f"guard (line {_first_line(a.when)})")
        try:
            body = enc.body(a.fn, args, key="action")
        except Unsupported as u:
            st.error = f"not translated: {u}"
            return st
        self._body(st, body, dict(self.base))
        return st

    def restart_step(self) -> _Step:
        """A crash and restart: persistent fields and sessions of persistent ports kept, the
        rest back to an initial value (and position 0), then the hook runs."""
        info, enc = self.info, self.enc
        hook = info.on_restart
        st = _Step("restart", "after a restart", fn=hook)
        pre = SelfObj(dict(enc.pre))
        premise = enc.port_assumptions() + enc.state_assumptions(enc.pre)
        for pred, ploc in info.invariants:
            self.comp._assume(premise, st.dropped, pred, [pre],
                              f"invariant (line {_line(ploc)})", key="pre")
        st.premise = premise
        st.pre_fields = dict(enc.pre)
        start: dict[str, Any] = {}
        fresh: dict[str, Val] = {}
        for f, keep in zip(info.fields, info.persistent):
            v = enc.pre[f]
            if keep or not isinstance(v, Val):
                start[f] = v
            else:
                fresh[f] = start[f] = Val(v.ty, z3.Const(f"{self.cls.__name__}.{f}@restart",
                                                         vtypes.sort_of(v.ty)))
        st.restart = fresh
        peers: dict[str, Any] = {}
        try:
            options = [restart_condition(self.system, name, info, fresh, enc.pre, peers)
                       for name in self.names]
            st.premise.append(z3.Or(options))
            if len(peers) > 1:
                st.premise.append(z3.Distinct(*peers.values()))
        except Unsupported as u:
            st.error = f"not translated: {u}"
            return st
        positions = {q: self.base[q] if pr.persistent else _Pos(lambda y: z3.IntVal(0))
                     for q, pr in self.protos.items()}
        if hook is None:
            st.post_fields, st.completed, st.post = start, z3.BoolVal(True), positions
            st.terms = _unique(self.enc.peer_terms())
            return st
        try:
            body = prove.translate_body(enc, hook, [], start=start)
        except Unsupported as u:
            st.error = f"not translated: {u}"
            return st
        self._body(st, body, positions)
        return st

    def _body(self, st: _Step, body: Any, start: dict[str, _Pos]) -> None:
        pos = dict(start)
        terms = list(self.enc.peer_terms())
        if st.sender is not None:
            terms.append(st.sender)
        for i, s in enumerate(body.sends):
            if s.kind == "timer" or s.port not in self.protos:
                continue
            if s.loops and not (len(s.loops) == 1 and s.kind == "send" and s.to is not None
                                and s.to.e.eq(s.loops[0])):
                # one site, one send per element: on one session that is as many sends as the
                # set has members (a send to the element itself is one per session, exact)
                st.error = (f"not translated: the {s.describe()} (line {s.line}) in a for loop "
                            "over a frozenset, which may send on one session once per member "
                            "(only send(..., to=x) to the loop's element x is translated)")
                st.sites = []
                return
            pr = self.protos[s.port]
            prev = pos[s.port]
            cond = z3.And(s.pc, s.ok)
            m = s.msg.cls
            if s.kind == "send":
                penc = self.enc.ports[s.port]
                dest = s.to.e if s.to is not None else penc.peer
                if dest is None:             # send() without to= on a many-port: aborts
                    continue
                terms.append(dest)
                site = _Site(i, s, pr, cond, prev, dest)
                pos[s.port] = _moved(prev, cond, _equal_to(dest), pr, SEND, m, dest=dest)
            else:
                peers = self.enc.ports[s.port].peers.e
                site = _Site(i, s, pr, cond, prev)
                pos[s.port] = _moved(prev, cond, _member_of(peers), pr, SEND, m)
            st.sites.append(site)
        st.post = pos
        st.post_fields = body.fields
        st.completed = body.completed
        st.terms = _unique(terms)

    # --- the obligations -----------------------------------------------------------------------

    def run(self) -> list[Obligation]:
        if not self.protos:
            return []
        steps = self.steps()
        self.infer(steps)
        # one obligation per (body, send site); the cases of a handler share its body
        groups: dict[tuple[str, int | None], list[tuple[_Step, _Site | None]]] = {}
        order: list[tuple[str, int | None]] = []
        for st in steps:
            if st.error is not None:
                if st.fn is not None and _may_send(st.fn):
                    key: tuple[str, int | None] = (st.target, None)
                    if key not in groups:
                        order.append(key)
                    groups.setdefault(key, []).append((st, None))
                continue
            for site in st.sites:
                key = (st.target, site.index)
                if key not in groups:
                    order.append(key)
                groups.setdefault(key, []).append((st, site))
        return [self.obligation(groups[k]) for k in order]

    def obligation(self, cases: list[tuple[_Step, _Site | None]]) -> Obligation:
        t0 = time.perf_counter()
        st0, site0 = cases[0]
        name = self.cls.__name__
        if site0 is None:
            ports = ", ".join(sorted(self.protos))
            title = f"its sends keep to the protocols of {ports}"
            line = _line_of(st0.fn)
            return Obligation(name, st0.target, KIND, title, self.comp.loc(line), "unknown",
                              st0.error or "", None, time.perf_counter() - t0)
        s = site0.send
        title = f"{s.describe()} (line {s.line}): its protocol allows it there"
        results = [self.discharge(st, site) for st, site in cases]  # type: ignore[arg-type]
        refuted = [r for r in results if r[0] == "refuted"]
        unknown = [(st, r) for (st, _), r in zip(cases, results) if r[0] == "unknown"]
        evaluate = self.evaluator([(st, site) for st, site in cases])  # type: ignore[misc]
        if refuted:
            verdict, reason, cex, witness = refuted[0]
        elif unknown:
            st, (verdict, reason, cex, witness) = unknown[0]
            if len(cases) > 1:
                reason = f"{st.case}: {reason}"
        elif all(r[0] == "vacuous" for r in results):
            verdict, reason, cex, witness = results[0]
        else:
            verdict, reason, cex, witness = "proved", "", None, ()
        return Obligation(name, st0.target, KIND, title, self.comp.loc(s.line), verdict,
                          reason, cex, time.perf_counter() - t0, evaluate, witness=witness)

    def discharge(self, st: _Step, site: _Site) -> tuple[str, str, Any, tuple[str, ...]]:
        sv = self.solver
        w = z3.Const(f"{self.cls.__name__}.{st.target}.{site.index}.w", peer_sort())
        terms = _unique(st.terms + ([w] if site.dest is None else []))
        earlier = [x for x in st.sites if x.index < site.index]
        premise = [*st.premise, *self.relation(st.pre_fields, self.base, terms,
                                               st.memo.setdefault("pre", {})), site.cond,
                   *self.sites_allowed(earlier, terms)]
        goal = site.allowed_at(self, w) if site.dest is None else site.allowed_at(self)
        sv.push()
        try:
            sv.add(*premise)
            if not st.dropped:
                r = sv.check()
                if r == z3.unsat:
                    return ("vacuous", "the send is unreachable under the assumptions", None,
                            ())
                if r == z3.unknown:
                    return ("unknown", "could not decide whether it is reached: "
                            + self.comp._gave_up(sv.reason_unknown()), None, ())
            sv.add(z3.Not(goal))
            r = sv.check()
            if r == z3.unsat:
                if st.dropped:
                    return ("unknown", "; ".join(st.dropped) + " (without it, the obligation "
                            "holds)", None, ())
                return ("proved", "", None, ())
            if r == z3.unknown:
                return ("unknown", self.comp._gave_up(sv.reason_unknown()), None, ())
            model = sv.model()
        finally:
            sv.pop()
        return self.confirm(st, site, model, w)

    # --- refutations: the concrete step, then a run that reaches it ---------------------------

    def show(self, sc: ProtocolScenario) -> str:
        """A local state with its positions, in one line."""
        parts = [_fields(self.info, sc.values)]
        if sc.sessions:
            parts.append("sessions: " + ", ".join(
                f"{p} with {y} expects {self.protos[p].expects(s)}" for p, y, s in sc.sessions))
        if sc.message is not None:
            parts.append(f"receiving {sc.message!r}")
        if sc.has_arg:
            parts.append(f"argument {sc.arg!r}")
        return "; ".join(parts)

    def confirm(self, st: _Step, site: _Site, model: z3.ModelRef, w: Any
                ) -> tuple[str, str, Any, tuple[str, ...]]:
        """Refuted only with a run from an initial state that breaks the protocol at the site
        (the model gives a wiring and message values to try); otherwise unknown, saying what
        the model showed."""
        prefix = "; ".join(st.dropped) + "; " if st.dropped else ""
        sc: ProtocolScenario | None = None
        try:
            sc = self.scenario(st, model, [w])
            ok_pre, ok_post, what = self.evaluate_case(st, site, sc)
            if ok_pre and not ok_post:
                seen = (f"a local state where it breaks exists ({self.show(sc)}; then: "
                        f"{what}), but")
            elif not ok_pre:
                seen = ("model not confirmed: its state does not meet the assumptions when "
                        f"checked concretely ({what}); and")
            else:
                seen = ("model not confirmed: the real handler, run on the model's state, does "
                        f"not break it ({what}); and")
        except (Unsupported, AssayError) as u:
            seen = f"model not confirmed: {u}; and"
        found = self.reach(st, site, sc)
        if found is None:
            runs = "; ".join(
                f"{n} local states{' (all)' if done else ''} with peers "
                + (", ".join(f"{p}={{{', '.join(ys)}}}" for p, ys in sorted(ports.items()) if ys)
                   or "none")
                for ports, n, done in self.searched)
            crashed = self.reach(st, site, sc, crashes=True) \
                if st.kind != "restart" and self.survives_crash() else None
            if crashed is not None:
                # a break only a crash reaches: the sessions of persistent ports and the
                # persistent fields survive it, the rest does not (it is no refutation of
                # runs without a crash, as the connections' compatibility says "no crash")
                return ("unknown", f"{prefix}{seen} no run of {self.cls.__name__} without a "
                        f"crash reached a break there ({runs}); a run with a crash and restart "
                        f"does: {' / '.join(crashed[0])} (assay check --faults crash=1 shows it "
                        "with the peers of the system)", None, crashed[0])
            return ("unknown", f"{prefix}{seen} no run of {self.cls.__name__} from its initial "
                    "states with peers that speak the duals of its protocols reached a break "
                    f"there ({runs or 'no wiring to try'}): it may be unreachable, but assay "
                    "cannot tell from its fields where the sessions are", None, ())
        run, found_sc, detail = found
        ok_pre, ok_post, what = self.evaluate_case(st, site, found_sc)
        if not (ok_pre and not ok_post):        # a reachable state R excludes: an assay bug
            return ("unknown", f"internal error (please report): the run {list(run)} reaches "
                    f"a state the inferred relation excludes ({what})", None, ())
        cex = Counterexample(found_sc.instance, dict(zip(self.info.fields, found_sc.values)),
                             found_sc.ports, found_sc.message, found_sc.arg, found_sc.has_arg,
                             None, site.send.line, detail, found_sc)
        return ("refuted", detail, cex, run)

    def scenario(self, st: _Step, model: z3.ModelRef, extra: list[Any]) -> ProtocolScenario:
        """The concrete local step a model describes, with its sessions' positions."""
        info, enc = self.info, self.enc
        terms = list(st.terms) + extra
        if st.handler is not None:
            msg0 = st.args[0]
            terms += [v.e for v in msg0.fields.values() if isinstance(v, Val) and v.ty == PEER]
        if st.action is not None and st.args:
            a = st.args[0]
            if isinstance(a, Val) and a.ty == PEER:
                terms.append(a.e)
        reader = ModelReader(model, set(self.system.instances) | {self.names[0]}, terms)
        values = [reader.value(enc.pre[f]) if isinstance(enc.pre[f], Val)
                  else self.comp._sample(f) for f in info.fields]
        message, arg, has_arg = None, None, False
        if st.handler is not None:
            mcls = st.handler.message
            msg = st.args[0]
            fvals = [reader.value(v) if isinstance(v, Val)
                     else _sample_value(mcls.field_types()[n])  # type: ignore[attr-defined]
                     for n, v in msg.fields.items()]
            message = mcls(*fvals)
            if st.sender is not None:
                message = message.with_sender(reader.value(st.sender, PEER))
        elif st.action is not None and st.args:
            has_arg = True
            arg = reader.value(st.args[0])
        restart = None
        if st.restart is not None:
            restart = tuple(reader.value(st.restart[f]) if f in st.restart else values[i]
                            for i, f in enumerate(info.fields))
        ports = {p: tuple(sorted(str(x) for x in reader.value(penc.peers)))
                 for p, penc in enc.ports.items()}
        by_name = {n: u for u in reader.universe for n in [reader._name(u)]}
        sessions = []
        for q, pr in self.protos.items():
            for y in ports[q]:
                s = model.eval(pr.fn(by_name[y]), model_completion=True).as_long()
                sessions.append((q, y, s))
        return ProtocolScenario(self.names[0], tuple(values), ports, message, arg, has_arg,
                                restart, tuple(sessions), st.port)

    def evaluator(self, cases: list[tuple[_Step, _Site]]
                  ) -> Callable[[Scenario], tuple[bool, bool, str]]:
        """Evaluate the obligation on a concrete scenario with positions (any of its cases)."""
        def evaluate(sc: Scenario) -> tuple[bool, bool, str]:
            if not isinstance(sc, ProtocolScenario):
                return False, True, "the scenario gives no session positions"
            for st, site in cases:
                if _case_of(st, sc):
                    return self.evaluate_case(st, site, sc)
            return False, True, "the scenario is none of the ways the body runs"
        return evaluate

    def evaluate_case(self, st: _Step, site: _Site, sc: ProtocolScenario
                      ) -> tuple[bool, bool, str]:
        info, enc = self.info, self.enc
        why = _state_premise(info, enc, sc)
        if why is None and (st.handler is not None or st.action is not None):
            t = _Target(st.target, st.fn, handler=st.handler, action=st.action)
            why = _step_premise(info, enc, t, sc)
        if why:
            return False, True, why
        pos = sc.positions()
        why = self.relation_holds(dict(zip(info.fields, sc.values)), pos, sc.ports)
        if why:
            return False, True, why
        runner = Runner(sc.instance, replace(info, invariants=()), wirings(info, sc))
        local = runner.with_sessions(sc.values)
        if runner.session_keys:
            local = (*sc.values, tuple(pos[k] for k in runner.session_keys))
        try:
            if st.handler is not None:
                m = sc.message
                assert m is not None
                if sc.port is not None:
                    if m.sender is None or str(m.sender) not in sc.ports.get(sc.port, ()):
                        return False, True, f"the sender is not a peer of port {sc.port}"
                    pr = self.protos.get(sc.port)
                    if pr is not None and pr.auto.step(pos[(sc.port, str(m.sender))], RECV,
                                                       type(m)) is None:
                        return False, True, f"port {sc.port}'s protocol does not receive it there"
                h = replace(st.handler, requires=(), ensures=())
                _, _, viol, _ = runner.run_handler(local, h, m, sc.port)
            elif st.action is not None:
                a = replace(st.action, ensures=())
                _, _, viol, _ = runner.run_action(local, a, sc.has_arg, sc.arg)
            else:
                if sc.restart is None or not any(
                        _same_values(sc.restart, r) for name in self.names
                        for r in info.restart_values(sc.values,
                                                     self.system.overrides.get(name))):
                    return False, True, "not a state a restart gives"
                _, _, viol, _ = runner.run_restart(runner.restarted(local, sc.restart))
        except AssayError as e:
            return False, True, f"the run stopped: {e}"
        bad = [v for v in viol if v.kind == "protocol" and v.location and v.location.line
               and site.send.line <= v.location.line <= site.send.end_line]
        if bad:
            return True, False, bad[0].message
        return True, True, "the send keeps to the protocol"

    def reach(self, st: _Step, site: _Site, sc: ProtocolScenario | None,
              crashes: bool = False) -> tuple[tuple[str, ...], ProtocolScenario, str] | None:
        """A run of the component, with peers speaking the duals of its protocols, that breaks
        the protocol at `site`: (its steps, the scenario of the last one, the violation).
        `crashes`: the run may also crash and restart the component (see `_Search`)."""
        tried: list[tuple[str, dict[str, tuple[str, ...]]]] = []
        for name in self.names:
            tried.append((name, real_wiring(self.system, name, self.info)))
        if sc is not None:
            tried.append((sc.instance, sc.ports))
        seen: set[Any] = set()
        extra = [sc.message] if sc is not None and sc.message is not None else []
        deadline = time.perf_counter() + SEARCH_SECONDS
        self.searched = []
        for name, ports in tried:
            key = (name, tuple(sorted(ports.items())))
            if key in seen or _unconnected_sends(self.enc, ports):
                continue
            seen.add(key)
            search = _Search(self, name, ports, extra, st, site, deadline, crashes=crashes)
            got = search.run()
            if got is not None:
                return got
            if not crashes:
                self.searched.append((ports, search.explored, search.exhausted))
        return None

    def survives_crash(self) -> bool:
        """Whether a crash and restart can lead the component where no run without one does:
        something survives it (a persistent field, a persistent port's sessions) or a restart
        hook runs; otherwise a restart is one of its initial states again."""
        info = self.info
        return any(info.persistent) or info.on_restart is not None or \
            any(pr.persistent for pr in self.protos.values())


# --- the search that confirms a refutation --------------------------------------------------------

class _Search:
    """Breadth-first over the local states of one instance with a given wiring: peers deliver
    any message its automata can receive (sample field values), actions and timers fire."""

    def __init__(self, c: _Class, name: str, ports: dict[str, tuple[str, ...]],
                 extra: list[Message], st: _Step | None, site: _Site | None, deadline: float,
                 limit: int = SEARCH_STATES, crashes: bool = False) -> None:
        self.c = c
        self.crashes = crashes          # also crash and restart it, whatever the step
        self.name = name
        self.ports = {p: tuple(ports.get(p, ())) for p in c.info.ports}
        sc = Scenario(name, (), self.ports)
        self.runner = Runner(name, c.info, wirings(c.info, sc))
        self.st = st
        self.site = site
        self.deadline = deadline
        self.pools: dict[type, list[Message]] = {}
        self.extra = extra
        self.limit = limit
        self.explored = 0
        self.exhausted = False

    def pool(self, mcls: type) -> list[Message]:
        got = self.pools.get(mcls)
        if got is None:
            peers = sorted({y for ys in self.ports.values() for y in ys})
            got = [m.with_sender(None) for m in self.extra if type(m) is mcls]
            try:
                specs = list(mcls.field_types().values())  # type: ignore[attr-defined]
                per = [_field_values(s, peers) for s in specs]
                for combo in itertools.islice(itertools.product(*per), 16):
                    m = mcls(*combo)
                    if m not in got:
                        got.append(m)
            except Exception:
                pass
            self.pools[mcls] = got
        return got

    def events(self, local: tuple, timers: tuple) -> list[tuple[str, Callable[[], Any],
                                                                       Any]]:
        """(description, run, (message or None, port, has_arg, arg, target name))."""
        info, runner = self.c.info, self.runner
        values = local[:-1] if runner.session_keys else local
        sessions = runner.sessions(local)
        out: list[tuple[str, Callable[[], Any], Any]] = []
        for port in sorted(info.ports):
            auto = info.automata.get(port)
            types = sorted({m for (p, m) in info.handlers if p in (port, ANY_PORT)},
                           key=lambda m: m.__qualname__)
            for mcls in types:
                h = info.handler_for(port, mcls)
                if h is None:
                    continue
                for y in self.ports[port]:
                    if auto is not None and auto.step(sessions[(port, y)], RECV, mcls) is None:
                        continue
                    for m in self.pool(mcls):
                        msg = m.with_sender(Peer(y))
                        out.append((f"receives {m!r} from {y} on {port}",
                                    functools.partial(runner.run_handler, local, h, msg, port),
                                    (msg, port, False, None, h.name)))
        for act in info.actions:
            try:
                enabled = runner.enabled(values, act)
            except AssayError:
                continue
            for has_arg, arg in enabled:
                what = f"fires {act.name}" + (f"({show(arg)})" if has_arg else "")
                out.append((what, functools.partial(runner.run_action, local, act, has_arg, arg),
                            (None, None, has_arg, arg, act.name)))
        for msg in dict.fromkeys(timers):
            h = info.timer_handler(type(msg))
            if h is not None:
                out.append((f"its timer {msg!r} fires",
                            functools.partial(runner.run_handler, local, h, msg),
                            (msg, None, False, None, h.name)))
        if self.crashes or (self.st is not None and self.st.kind == "restart"):
            for vals in info.restart_values(values, self.c.system.overrides.get(self.name)):
                out.append(("crashes and restarts",
                            functools.partial(runner.run_restart, runner.restarted(local, vals)),
                            (None, None, False, vals, "restart")))
        return out

    def run(self, visit: Callable[[tuple], None] | None = None
            ) -> tuple[tuple[str, ...], ProtocolScenario, str] | None:
        """Search for a break at the site (or, without one, visit the local states)."""
        info, runner = self.c.info, self.runner
        starts: list[tuple[tuple, tuple]] = []
        for vals in info.initial_values(self.c.system.overrides.get(self.name)):
            starts.append((runner.with_sessions(vals), ()))
        parent: dict[Any, tuple[Any, str] | None] = {s: None for s in starts}
        queue = deque(starts)
        target = self.st.target if self.st is not None and self.st.kind != "restart" else None
        lines = (self.site.send.line, self.site.send.end_line) if self.site else (0, -1)
        if visit is not None:
            for s0 in starts:
                visit(s0[0])
        while queue and len(parent) <= self.limit and time.perf_counter() < self.deadline:
            state = queue.popleft()
            local, timers = state
            for what, go, ev in self.events(local, timers):
                try:
                    new, _, viol, ops = go()
                except AssayError:
                    continue
                if viol:
                    hit = [v for v in viol if v.kind == "protocol" and v.location
                           and v.location.line and lines[0] <= v.location.line <= lines[1]
                           and (ev[4] == target or target is None and ev[4] == "restart")]
                    if hit:
                        return self.found(parent, state, what, ev, hit[0].message)
                    continue
                pending = list(timers)                  # a multiset, as in the kernel
                if ev[4] == "restart":
                    pending = []                        # a crash loses the timers
                elif ev[0] is not None and ev[1] is None:
                    pending.remove(ev[0])               # this timer fired
                for op in ops:
                    if op.set:
                        if pending.count(op.message) < MAX_TIMER_COPIES:
                            pending.append(op.message)
                    else:
                        pending = [t for t in pending if not (
                            isinstance(t, op.message) if isinstance(op.message, type)
                            else t == op.message)]
                nxt = (new, tuple(sorted(pending, key=repr)))
                if nxt not in parent:
                    parent[nxt] = (state, what)
                    queue.append(nxt)
                    if visit is not None:
                        visit(new)
        self.explored = len(parent)
        self.exhausted = not queue
        return None

    def found(self, parent: dict, state: Any, what: str, ev: Any, message: str
              ) -> tuple[tuple[str, ...], ProtocolScenario, str]:
        steps = []
        node = parent[state]
        cur = state
        while node is not None:
            prev, w = node
            steps.append(w)
            cur = prev
            node = parent[cur]
        steps.reverse()
        local = state[0]
        runner = self.runner
        values = local[:-1] if runner.session_keys else local
        pos = runner.sessions(local)
        sessions = tuple((p, y, s) for (p, y), s in sorted(pos.items()))
        msg, port, has_arg, arg, _ = ev
        restart = None
        if self.st is not None and self.st.kind == "restart":
            restart, has_arg, arg = arg, False, None
        sc = ProtocolScenario(self.name, tuple(values), dict(self.ports), msg, arg, has_arg,
                              restart, sessions, port)
        where = "; ".join(f"{p} with {y} expects {self.c.protos[p].expects(s)}"
                          for p, y, s in sessions)
        detail = message + (f" (sessions before the step: {where})" if where else "")
        first = cur[0][:-1] if runner.session_keys else cur[0]
        run = (f"{self.name} starts with {_fields(self.c.info, first)}", *steps,
               f"{what}: {message}")
        return run, sc, detail


# --- helpers --------------------------------------------------------------------------------------

def _case_of(st: _Step, sc: ProtocolScenario) -> bool:
    if st.handler is not None:
        return sc.message is not None and sc.port == st.port and sc.restart is None
    if st.action is not None:
        return sc.message is None and sc.restart is None
    return sc.restart is not None


def _equal_to(d: Any) -> Callable[[Any], Any]:
    return lambda y: y == d


def _member_of(peers: Any) -> Callable[[Any], Any]:
    return lambda y: z3.IsMember(y, peers)


def _and(xs: list[Any]) -> Any:
    """z3.And of Bool terms without z3.And's per-argument coercion (a hot spot here)."""
    if not xs:
        return z3.BoolVal(True)
    if len(xs) == 1:
        return xs[0]
    ctx = xs[0].ctx
    arr = (z3.Ast * len(xs))()
    for i, x in enumerate(xs):
        arr[i] = x.as_ast()
    return z3.BoolRef(z3.Z3_mk_and(ctx.ref(), len(xs), arr), ctx)


def _unique(terms: list[Any]) -> list[Any]:
    out, seen = [], set()
    for t in terms:
        if t is None:
            continue
        k = t.get_id()
        if k not in seen:
            seen.add(k)
            out.append(t)
    return out


def _same_values(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(type(x) is type(y) and x == y for x, y in zip(a, b))


def _first_line(fn: Any) -> int | None:
    code = getattr(fn, "__code__", None)
    return code.co_firstlineno if code else None


def _int_constants(info: ComponentInfo) -> list[int]:
    """0, 1 and the smallest other int literals of the class's code: the thresholds its
    fields are compared with."""
    found = {0, 1}
    for fn, _, _ in prove._component_functions(info):
        try:
            node = source.function_node(fn)
        except Unsupported:
            continue
        for n in ast.walk(node):
            if isinstance(n, ast.Constant) and type(n.value) is int:
                found.add(n.value)
    return sorted(found, key=lambda c: (abs(c), c))[:INT_CONSTANTS]


def _may_send(fn: Any) -> bool:
    """Whether an untranslated body may send: it calls a method or an unknown function."""
    try:
        node = source.function_node(fn)
    except Unsupported:
        return True
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            if isinstance(n.func, ast.Attribute):
                return True
            if isinstance(n.func, ast.Name) and n.func.id not in (
                    "len", "min", "max", "abs", "bool", "int", "frozenset", "range", "tuple",
                    "sorted", "set", "str"):
                closure, glob = source.fn_names(fn)
                target = closure.get(n.func.id, glob.get(n.func.id))
                if not (isinstance(target, type) and issubclass(target, Message)):
                    return True
    return False


def _unconnected_sends(enc: Any, ports: dict[str, tuple[str, ...]]) -> bool:
    """A wiring leaves a port the class sends on unconnected (a spec error, not a run)."""
    return any(p.sent_on and not ports.get(name) for name, p in enc.ports.items())


def _field_values(spec: Any, peers: list[str]) -> list[Any]:
    """A few values of a message field's type, for the peers' messages in a search."""
    from assay.model import types as T

    if isinstance(spec, T._Bool):
        return [False, True]
    if isinstance(spec, T._Int):
        if spec.range is not None:
            lo, hi = spec.range.lo, spec.range.hi
            return list(dict.fromkeys([lo, min(lo + 1, hi), hi]))
        return [0, 1, 2]
    if isinstance(spec, T._Enum):
        return list(spec.cls)[:4]
    if isinstance(spec, T._Peer):
        return [Peer(y) for y in peers[:3]] or [Peer("peer0")]
    return [_sample_value(spec)]


def _fields(info: ComponentInfo, values: tuple) -> str:
    return ", ".join(f"{f}={show(v)}" for f, v in zip(info.fields, values)) or "(no fields)"


# --- the entry points -----------------------------------------------------------------------------

def conformance_obligations(system: System, cls: type, names: list[str],
                            timeout: float = 5.0) -> list[Obligation]:
    """The `protocol` obligations of one component class (none without protocols)."""
    if not component_info(cls).automata:
        return []
    return _Class(system, cls, names, timeout).run()


def summary(report: Any) -> tuple[str, str] | None:
    """Whether the protocols fit, as far as `report` proves it: (verdict, sentence), or None
    when nothing in it is about protocols.  "fit" needs both halves proved: every connection's
    automata compatible and every send of the code allowed where it is made."""
    compat = [o for o in report.obligations if o.kind == "compatibility"]
    conf = [o for o in report.obligations if o.kind == KIND]
    if not compat and not conf:
        return None
    bad = [o for o in compat + conf if o.verdict == "refuted"]
    open_ = [o for o in compat + conf if o.verdict in ("unknown", "vacuous")]
    what = []
    if compat:
        what.append(f"{len(compat)} connection{'s' * (len(compat) != 1)} compatible")
    what.append(f"{len(conf)} send{'s' * (len(conf) != 1)} allowed by their port's protocol")
    if bad:
        names = sorted({f"{o.component}.{o.target}" if o.kind == KIND else o.target
                        for o in bad})
        return "refuted", "✗ protocols do not fit: " + ", ".join(names)
    # a start hook is not verified yet (its `start` obligation is unknown): what it sends is
    # not shown to keep to any protocol, so nothing here may say the protocols fit
    starts = [o for o in report.obligations if o.kind == "start" and o.verdict != "proved"]
    if open_ or starts:
        n_conf = sum(1 for o in open_ if o.kind == KIND)
        n_comp = len(open_) - n_conf
        parts = []
        if starts:
            hooks = ", ".join(sorted({f"{o.component}.{o.target}" for o in starts}))
            parts.append(f"the sends of start hook{'s' * (len(starts) != 1)} {hooks} not "
                         "checked")
        if n_conf:
            parts.append(f"{n_conf} send{'s' * (n_conf != 1)} not proved to keep to "
                         "its protocol")
        if n_comp:
            parts.append(f"{n_comp} connection{'s' * (n_comp != 1)} not proved compatible")
        return "unknown", "? protocols not shown to fit: " + ", ".join(parts)
    suffix = "" if compat else " (connections not checked)"
    from assay.verifier.compat import CRASH_NOTE

    # a connection proved for runs without a crash only: the fit is said for those runs
    no_crash = sorted(o.target for o in compat if o.reason.startswith(CRASH_NOTE))
    if no_crash:
        suffix += ("; without a crash only: after a crash and restart "
                   + ", ".join(no_crash) + " may not fit (assay verify --crashes)")
    return "proved", "✓ protocols fit: " + ", ".join(what) + suffix


def inferred_relation(system: System, cls: type, timeout: float = 5.0
                      ) -> Callable[[dict[str, Any], dict[tuple[str, str], int],
                                     dict[str, tuple[str, ...]]], str | None]:
    """The relation R inferred for `cls` in `system`, as a check of one concrete local state
    (field values by name, (port, peer) -> position, port -> peers): None when the state is in
    R, else why not.  Every reachable local state is in R; tests hold it to that."""
    names = [n for n, c in system.instances.items() if c is cls]
    c = _Class(system, cls, names, timeout)
    if c.protos:
        c.infer(c.steps())
    return c.relation_holds
