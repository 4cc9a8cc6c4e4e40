"""The Python → Z3 translation behind `assay verify`: a whitelist of constructs, split by concern.

A handler, action, guard or contract is read from its source (ast) and turned into Z3 terms by
static single assignment: each field and local is a term; an assignment makes a new term; the
two sides of an `if` (or of `a if c else b`, `and`, `or`) are merged with `If`; a `for` over a
literal finite domain is unrolled; a call to a helper function or method is inlined.  Nothing is
executed symbolically and no path is enumerated: a loop-free body is one formula.

Whatever is not on the whitelist raises `Unsupported` naming the construct and its line; the
caller turns that into an *unknown* verdict.  Nothing is approximated: a construct is either
translated exactly (with Python's meaning) or refused — with one exception, the size of a set
of ints, peers or tuples, which is *under-specified*: an uninterpreted function known through
facts true of every finite set (`background`).  That can make a proof fail, never succeed
wrongly, and a model that uses the slack is not confirmed by the real handler (unknown).

What is translated, and how (decisions):

* Values have a static type `Ty`: bool (Z3 Bool), int (Z3 Int, unbounded like Python's), str
  (Z3 String, equality and `+` only), a plain Enum (one Z3 EnumSort per class; IntEnum, StrEnum,
  Flag and enums with `__bool__` are refused), Peer (an uninterpreted sort: peers are only ever
  compared), frozenset of those (Z3 array sets), a fixed-length tuple `tuple[A, B]` (a Z3
  datatype with one constructor; items of any of these types), `tuple[T, ...]` (a Z3 sequence)
  and `Optional[T]` (a Z3 datatype `none | some(val)`).  A bounded int (`Annotated[int,
  Range]`) is an int whose bounds are assumed on entry and proved on exit (`types` bounds);
  they are not part of its type.  The same holds of Ranges inside a set (`frozenset[Annotated[
  int, Range(0, 7)]]`: a subset of the literal set of its range), a tuple, a sequence or an
  Optional (`types.bounds`): assumed of the state and of a message, proved of every write
  (the `types` obligation) and every message sent, since the kernel checks them there too.
* A tuple display `(a, b)` is kept as its items (`TupleObj`) until a type is needed (a field,
  a message field, a set element, a merge of two paths), so `(None, 0)` can become a
  `tuple[Optional[int], int]`.  Indexing by a constant (negative too) picks an item; by a
  variable (items of one type) an `If` chain with an IndexError check; unpacking `a, b = t`
  assigns items (a length mismatch is a ValueError check); `+` concatenates; `==`, `in` (on
  a tuple: any item equal) and `<`, `<=`, ... are Python's (lexicographic: the first items
  that differ decide, else the lengths).  `tuple[T, ...]`: `+`, `len`, `==`, `in`
  (`Contains`), indexing with an IndexError check.
* `Optional[T]`: `x is None`, `x == None`, `x is not None`, truth (`None` is false), `==` with
  a T (false for None), `x in s` (false for None).  Where Python needs the value itself — an
  operand, an ordering, a container, `len`, an index — a None raises TypeError: the
  translation takes `val(x)` and records that exception's check (`is_some(x)`), so after `if
  x is not None:` the check holds by the path condition (narrowing needs nothing more).  Two
  paths that give None and a T merge into an `Optional[T]`.  `send(to=x)` with an Optional
  peer sends as `to=None` does when it is None (an error on a many-port).
* `//` and `%` follow Python's floor semantics, not Z3's Euclidean div/mod:
  `a // b = If(b > 0, a div b, (-a) div (-b))` and `a % b = a - b * (a // b)`; each division
  records the side condition `b != 0`.  `/` (a float) and bitwise operators on ints are refused.
* `and`/`or`, chained comparisons and conditional expressions keep Python's short-circuit
  meaning: a partial operation (division, an `assert`) to the right is only checked under the
  condition that evaluates it.  Operands of `and`/`or` used as values must be bools; in a
  condition (`if`, `assert`, a contract's result) any operand's truth value is used exactly.
* Equality between values of different static types is Python's: False — except int/bool and
  Peer/str, which Python may find equal, and which are refused.
* `len` of a frozenset of Enum members (or bools) is the sum over the members (exact).  Of a
  set whose elements are not finitely many (ints, peers, strs, tuples) it is `types.card`, an
  uninterpreted function of the set (Z3 array sets have no cardinality), and `background`
  adds, for the sizes an obligation mentions, facts true of every finite set — the sizes of
  `∅`, `s ∪ {x}`, `A ∪ B`, `A ∩ B`, `A - B`, a conditional, and `A <= B ⇒ len(A) <= len(B)`
  (strictly for a proper subset) for each comparison of sets it holds.  Every set a component
  holds is a finite frozenset, so these facts exclude no real state: a proof with them is a
  proof, for every number of peers and every wiring (no bound, unlike a finite universe of
  peer slots, which would only prove "for up to N peers").  They are not complete, so a model
  may give a set a size it does not have: `finite_model` solves a refuting obligation again
  with each set constant a set of a few explicit elements (4, then 8), every size then being
  its set's true size, and that model (or, if there is none, the first one) is confirmed by
  running the real handler; an unconfirmed one is unknown.  The emptiness tests (`len(s) ==
  0`, `len(s) > 0`, ...) need no size and are translated as emptiness.  The same models make
  every set constant finite, so a counterexample's sets of ints can always be read back.
* A bare `frozenset` field's element type is inferred from how the component uses it
  (`self.f | {m.sender}`, `self.f == self.port.peers`, `x in self.f`, `self.f = ...`): every hint
  must agree, else the field is opaque.  The inference only picks a candidate; every write is
  then type-checked by the translation, so a wrong guess gives unknown, never a wrong proof.
  The inferred element type is an implicit invariant (like a declared one): the proof of one
  handler assumes it of the state before, and holds as long as every other writer of the
  field is proved too.
* A `Record` (not a `Message`) whose fields all have Z3 forms is a Z3 datatype with one
  constructor, its fields the accessors (`types.record_ty`): `r.f` reads one (on an
  Optional record, None raises AttributeError: a check), `R(...)` builds one like a message
  (by position or name, defaults for the rest), `r.replace(f=v)` builds the changed copy,
  `==` is Python's (the same class and equal fields; records of two classes are never
  equal), its truth value is True; an ordering, `in` a record, iteration and its own
  methods are refused.  Records in sets, tuples, Optionals and messages are values like any
  other.  A record class that defines what changes these meanings (`__eq__`, `__bool__`,
  `__init__`, another dunder but `__repr__`/`__str__`, a `replace`, a class attribute
  named like a field) or that contains itself is opaque; so is a message class that does
  (`types.adds_nothing`): building one, or reading a received one's fields, is refused.
* A `Map[K, V]` is a Z3 array K -> `Optional[V]` (`maps`, whose docstring says what is
  translated; iteration and `len` over keys that are not finitely many are refused).
  `sum(m.values())` is, like a set's size, under-specified: an uninterpreted function known
  through facts true of every finite map (`maps.sum_facts`, added by `background`), and
  `finite_model` makes the map constants of a refuting model finite.
* A field whose type has no Z3 form (a Message, a map of maps, a set of sets, a bare `tuple`
  or a type containing one of those) is *opaque*: reading or writing it is refused; a
  handler that does not touch it keeps it unchanged.
* Effects: assignments to fields and locals, `self.port.send(Msg(...), to=...)`,
  `broadcast`, `self.after(delay, Msg(...))` (all recorded as send sites with their path
  condition and the checks the kernel makes: message field types, `to` a peer of the port,
  `delay >= 0`) and `self.cancel(...)` (no effect on the local state).  A failed check aborts
  the handler, as in the kernel, so later code runs only where it held.
* `return` ends a path: the final state is the `If`-merge of every exit.  `assert` and `raise`
  record an exception condition; a path that raises does not reach the end.
* Names resolve like Python's: locals, then the function's closure cells, module globals and
  builtins.  Globals and closure cells are read once, as constants (a spec's module state is
  assumed not to change while it is verified).  Only constants of the types above, Enum and
  Message classes, functions (inlined), `Peer` and the builtins `len`, `min`, `max`, `abs`,
  `bool`, `int`, `frozenset`, `range` (in `for`) are understood.
* Names follow Python's scoping: a name bound anywhere in a function is local throughout it,
  so reading it before it is bound is refused (it would raise UnboundLocalError), and a local
  bound on only some paths cannot be read after they join.
* `range(lo, hi[, step])` with a constant step is a value for `in` and for `over=` domains;
  `for` unrolls finite domains whose order is known (a tuple or list display, a tuple value,
  `range` of constants, an Enum class).  `for x in a_set:` is translated only when the body's
  effect cannot depend on the set's order, which is unknown: it may read, send and raise, but
  not assign a field, set a timer or return (else refused).  The body is translated once with
  `x` a fresh constant and `x in a_set` on its path: every check and send site in it is then
  proved for every member (the obligation quantifies over `x` as over every input), and after
  the loop the path continues where the body completed for every member (a `ForAll`).  The
  locals the body binds are unbound after the loop (their values would depend on the order).
  A `self.choose()` in the body is made anew for each member (existential inside the
  `ForAll`), and a send there is one per member: on a port with a protocol only a send
  `to=` the element itself counts once per session (`conformance`; else unknown).
* Peers: `m.sender`, `self.<port>.peers`, Peer-typed fields.  A port's peers are a set fixed
  for the step, for any wiring: a single port's are `{p}` or `{}`; a port the class sends on
  (by the same test as the system validation) has at least one peer, since validation
  guarantees it is connected.  A sender is a peer of the handler's port (of any port, for a
  handler without one), except for a message type the component also sets as a timer
  (`self.after(d, M())`), whose sender may be None: reading `m.sender` there is refused.
  `self.name` is refused.  `Peer("n1")` (or a constant peer of the module) is the peer of
  that name: one constant per name, different names different peers (`background`), equal or
  not to `m.sender` and in a port's peers or not — a handler is verified for every wiring, so
  a named peer may or may not be connected; a counterexample reads it back by its name.  A
  peer's truth value (a non-empty name) is uninterpreted but for named peers.
* Contracts (requires, ensures, invariants, guards) are translated like bodies but may not
  assign fields or send; a contract holds when it returns a true value without raising.
* Lambdas are found in their file's ast by the first line of their code object, their argument
  names, and the source positions of their instructions (`co_positions`), so several lambdas on
  one line are told apart; if two different lambdas still match, the contract is refused.
* Translations are cached per component class and function (`ComponentEncoding`); Z3 terms
  live in Z3's global context, so a cached term serves every later solver.

Layout: `types` (static types, values, Z3 sorts and models), `source` (finding a function's
ast), `expressions` and `statements` (the two halves of `Translator`), and this module: a
component's encoding, the entry points `translate_body` and `translate_predicate`, and what
the solver must be told beside a translation (`background`: the facts of sizes and named
peers; `finite_model`: a counterexample whose sets are finite and sizes exact).
"""
from __future__ import annotations

import ast
import enum
import types
from dataclasses import dataclass, field
from typing import Any

import z3

from assay.model.component import Component, ComponentInfo
from assay.model.message import Message
from assay.model.types import (
    Peer,
    TypeSpec,
    _FrozenSet,
    _Int,
)
from assay.verifier import maps
from assay.verifier.expressions import (
    truth,
)
from assay.verifier.source import (
    fn_names,
    function_node,
)
from assay.verifier.statements import (
    Check,
    PortEnc,
    SendSite,
    St,
    Translator,
    _Activation,
)
from assay.verifier.types import (
    BOOL,
    INT,
    NOT_PLAIN,
    PEER,
    STR,
    Bounds,
    MsgObj,
    Opaque,
    RangeObj,
    SelfObj,
    Ty,
    Unsupported,
    Val,
    _describe,
    adds_nothing,
    bounds,
    card,
    conj,
    enum_ty,
    finite_members,
    is_card,
    message_types,
    peer_name,
    peer_sort,
    peer_truth,
    plain_enum,
    set_ty,
    sort_of,
    ty_of_spec,
)

# --- a component's encoding -----------------------------------------------------------------------

class ComponentEncoding:
    """The Z3 vocabulary of one component class: field constants (the state before a step),
    their types and ranges, the peer sets of its ports."""

    def __init__(self, info: ComponentInfo, sent_ports: set[str]) -> None:
        self.info = info
        self.cls = info.cls
        tag = f"{info.cls.__name__}"
        hints = infer_set_elements(info)
        self.types: dict[str, Ty | Opaque] = {}
        self.ranges: dict[str, tuple[int, int]] = {}
        # the Ranges inside every field's type (bounded ints, also in sets, tuples, Optional)
        self.bounds: dict[str, Bounds] = {}
        self.specs: dict[str, TypeSpec] = {}
        for f, spec in zip(info.fields, info.types):
            self.specs[f] = spec
            ty = ty_of_spec(spec, hints.get(f))
            self.types[f] = ty
            if isinstance(spec, _Int) and spec.range is not None:
                self.ranges[f] = (spec.range.lo, spec.range.hi)
            b = bounds(spec, ty)
            if b is not None:
                self.bounds[f] = b
        self.pre: dict[str, Any] = {
            f: (ty if isinstance(ty, Opaque) else Val(ty, z3.Const(f"{tag}.{f}", sort_of(ty))))
            for f, ty in self.types.items()}
        self.ports: dict[str, PortEnc] = {}
        ps = peer_sort()
        for p, port in info.ports.items():
            sent = p in sent_ports
            if port.many:
                s = z3.Const(f"{tag}.{p}.peers", z3.SetSort(ps))
                assume = []
                if sent:          # the system validation guarantees a connection
                    w = z3.Const(f"{tag}.{p}.some_peer", ps)
                    assume.append(z3.IsMember(w, s))
                self.ports[p] = PortEnc(p, True, Val(set_ty(PEER), s), assume, sent_on=sent)
            else:
                conn = z3.Bool(f"{tag}.{p}.connected")
                peer = z3.Const(f"{tag}.{p}.peer", ps)
                s = z3.If(conn, z3.SetAdd(z3.EmptySet(ps), peer), z3.EmptySet(ps))
                self.ports[p] = PortEnc(p, False, Val(set_ty(PEER), s), [conn] if sent else [],
                                        conn, peer, sent)
        self.timer_messages = timer_messages(info)
        self._cache: dict[Any, Any] = {}

    def state_assumptions(self, values: dict[str, Any]) -> list[Any]:
        """What the kernel guarantees of a state: bounded ints within their ranges."""
        out = []
        for f, b in self.bounds.items():
            v = values[f]
            if isinstance(v, Val):
                out.append(b.holds(v.e))
        return out

    def bound_text(self, f: str) -> str:
        """What the Ranges in field `f`'s type say, for a `types` obligation's title."""
        return f"{f} {self.bounds[f].text}"

    def peer_terms(self) -> list[Any]:
        """The Peer constants of the encoding: fields, ports' peers and witnesses."""
        out = [v.e for v in self.pre.values() if isinstance(v, Val) and v.ty == PEER]
        for p in self.ports.values():
            if p.peer is not None:
                out.append(p.peer)
            out += [z3.Const(f"{self.cls.__name__}.{p.name}.some_peer", peer_sort())] \
                if p.many and p.sent_on else []
        return out

    def port_assumptions(self) -> list[Any]:
        out = []
        for p in self.ports.values():
            out += p.assumptions
        return out

    def sender_peers(self, port: str) -> Any:
        """The set a message's sender is in, when it arrives on `port` (or on any port)."""
        if port in self.ports:
            return self.ports[port].peers.e
        sets = [p.peers.e for p in self.ports.values()]
        out = sets[0]
        for s in sets[1:]:
            out = z3.SetUnion(out, s)
        return out

    def message(self, cls: type, port: str) -> tuple[MsgObj, list[Any]]:
        """The symbolic message `m` of a handler, and what is known of it."""
        assume: list[Any] = []
        fields: dict[str, Any] = {}
        for n, (ty, rng) in message_types(cls).items():
            if isinstance(ty, Opaque):
                fields[n] = ty
                continue
            v = z3.Const(f"m.{n}", sort_of(ty))
            fields[n] = Val(ty, v)
            if rng is not None:
                assume.append(rng.holds(v))
        if not adds_nothing(cls):
            sender: Any = f"m.sender of a {cls.__name__}: {NOT_PLAIN}"
        elif self.timer_messages is None or cls in self.timer_messages:
            sender = (f"m.sender of a {cls.__name__}, which may also arrive as a timer of "
                      "this component (then its sender is None)")
        else:
            sv = z3.Const("m.sender", peer_sort())
            sender = Val(PEER, sv)
            assume.append(z3.IsMember(sv, self.sender_peers(port)))
        return MsgObj(cls, fields, sender), assume

    # --- translations, cached per function -------------------------------------------------------

    def body(self, fn: Any, args: list[Any], key: Any) -> Body:
        """Translate a handler or action body run on the state before the step."""
        ck = ("body", fn, key)
        got = self._cache.get(ck)
        if got is None:
            try:
                got = translate_body(self, fn, args)
            except Unsupported as u:
                got = u
            self._cache[ck] = got
        if isinstance(got, Unsupported):
            raise got
        return got  # type: ignore[no-any-return]

    def predicate(self, fn: Any, args: list[Any], key: Any = None) -> Any:
        """A contract's meaning: it returns a true value without raising (Z3 Bool)."""
        ck = ("pred", fn, key)
        if key is not None and ck in self._cache:
            got = self._cache[ck]
        else:
            try:
                got = translate_predicate(self, fn, args)
            except Unsupported as u:
                got = u
            if key is not None:
                self._cache[ck] = got
        if isinstance(got, Unsupported):
            raise got
        return got

    def over(self, fn: Any, pre: SelfObj) -> Val | RangeObj:
        """An action's domain given as a function of the state: a set, or a range."""
        tr = Translator(self, contract=True)
        st = St(z3.BoolVal(True), dict(self.pre), {}, {}, _Activation(fn))
        v = tr.run_function(fn, [pre], st)
        if tr.checks:
            raise Unsupported("an over= domain that may raise")
        if isinstance(v, RangeObj) or (isinstance(v, Val) and v.ty.kind == "set"
                                       and v.ty.elem is not None):
            return v
        raise Unsupported(f"an over= domain that is {_describe(v)}, not a frozenset or a range")


@dataclass
class Body:
    """A translated body: the state after it, the conditions under which it completes, its
    exception checks and send sites."""

    fields: dict[str, Any]
    wline: dict[str, Any]
    completed: Any
    checks: list[Check]
    sends: list[SendSite]
    written: set[str]


def translate_body(enc: ComponentEncoding, fn: Any, args: list[Any],
                   start: dict[str, Any] | None = None) -> Body:
    """Translate a body run from the state before the step (or from `start`)."""
    tr = Translator(enc, contract=False)
    st = St(z3.BoolVal(True), dict(start or enc.pre), {f: z3.IntVal(0) for f in enc.pre}, {},
            _Activation(fn))
    tr.run_function(fn, [SelfObj(None), *args], st, value=False)
    return Body(st.fields, st.wline, st.pc, tr.checks, tr.sends, tr.written)


def translate_predicate(enc: ComponentEncoding, fn: Any, args: list[Any]) -> Any:
    tr = Translator(enc, contract=True)
    st = St(z3.BoolVal(True), dict(enc.pre), {}, {}, _Activation(fn))
    v = tr.run_function(fn, args, st)
    return conj(st.pc, truth(v, function_node(fn)))


# --- what the source says about a component -------------------------------------------------------

def _component_functions(info: ComponentInfo) -> list[tuple[Any, str | None, type | None]]:
    """Every function and contract of a component: (fn, message parameter name, its class)."""
    out: list[tuple[Any, str | None, type | None]] = []
    for h in info.handlers.values():
        out.append((h.fn, _param(h.fn, 1), h.message))
        if h.when is not None:
            out.append((h.when, _param(h.when, 1), h.message))
        out += [(p, _param(p, 1), h.message) for p, _ in h.requires]
        out += [(p, _param(p, 2), h.message) for p, _ in h.ensures]
    for a in info.actions:
        out.append((a.fn, None, None))
        if a.when is not None:
            out.append((a.when, None, None))
        if callable(a.over):
            out.append((a.over, None, None))
        out += [(p, None, None) for p, _ in a.ensures]
    out += [(p, None, None) for p, _ in info.invariants]
    if info.on_restart is not None:
        out.append((info.on_restart, None, None))
    for k in info.cls.__mro__:
        if k in (Component, object):
            break
        for v in vars(k).values():
            if isinstance(v, types.FunctionType):
                out.append((v, None, None))
    return out


def _param(fn: Any, i: int) -> str | None:
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None or code.co_argcount <= i:
        return None
    return code.co_varnames[i]  # type: ignore[no-any-return]


def infer_set_elements(info: ComponentInfo) -> dict[str, Ty]:
    """Element types of bare `frozenset` fields, from how the component uses them; a field
    with no hint, or with hints that disagree, is left out (and stays opaque)."""
    bare = [f for f, t in zip(info.fields, info.types)
            if isinstance(t, _FrozenSet) and type(t.elem).__name__ == "_AnyValue"]
    if not bare:
        return {}
    typed_sets = {f: ty_of_spec(t) for f, t in zip(info.fields, info.types) if f not in bare}
    hints: dict[str, set[Ty]] = {f: set() for f in bare}
    conflict: set[str] = set()
    for f, init in zip(info.fields, info.initial):
        if f in hints:
            for v in init:
                for x in v:
                    t = _value_ty(x)
                    if t is None:
                        conflict.add(f)
                    else:
                        hints[f].add(t)
    for fn, mname, mcls in _component_functions(info):
        try:
            node = function_node(fn)
        except Unsupported:
            continue
        closure, glob = fn_names(fn)

        def resolve(n: ast.expr, closure: dict = closure, glob: dict = glob) -> Any:
            if isinstance(n, ast.Name):
                return closure.get(n.id, glob.get(n.id))
            return None

        def field_of(n: ast.expr) -> str | None:
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.attr in hints:
                return n.attr
            return None

        def elem_of(n: ast.expr, mname: str | None = mname, mcls: Any = mcls) -> Ty | None:
            if isinstance(n, ast.Set) and n.elts:
                return value_of(n.elts[0])
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) \
                    and n.func.id == "frozenset" and len(n.args) == 1:
                a = n.args[0]
                if isinstance(a, ast.Tuple | ast.List | ast.Set) and a.elts:
                    return value_of(a.elts[0])
                return elem_of(a)
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr | ast.BitAnd | ast.Sub):
                return elem_of(n.left) or elem_of(n.right)
            if isinstance(n, ast.Attribute):
                if n.attr == "peers" and isinstance(n.value, ast.Attribute) \
                        and n.value.attr in info.ports:
                    return PEER
                if isinstance(n.value, ast.Name):
                    t = typed_sets.get(n.attr)
                    if isinstance(t, Ty) and t.kind == "set":
                        return t.elem
                    if mname is not None and n.value.id == mname and mcls is not None:
                        mt = message_types(mcls).get(n.attr)
                        if mt and isinstance(mt[0], Ty) and mt[0].kind == "set":
                            return mt[0].elem
            return None

        def value_of(n: ast.expr, mname: str | None = mname, mcls: Any = mcls) -> Ty | None:
            if isinstance(n, ast.Attribute):
                if n.attr == "sender" and isinstance(n.value, ast.Name) and n.value.id == mname:
                    return PEER
                base = resolve(n.value)
                if isinstance(base, type) and issubclass(base, enum.Enum) \
                        and n.attr in base.__members__:
                    return enum_ty(base) if plain_enum(base) else None
                if isinstance(n.value, ast.Name) and mname is not None \
                        and n.value.id == mname and mcls is not None:
                    mt = message_types(mcls).get(n.attr)
                    if mt and isinstance(mt[0], Ty) and mt[0].kind != "set":
                        return mt[0]
                if isinstance(n.value, ast.Name):
                    t = typed_sets.get(n.attr)
                    if isinstance(t, Ty) and t.kind != "set":
                        return t
            if isinstance(n, ast.Constant) and type(n.value) in (int, str, bool):
                return {int: INT, str: STR, bool: BOOL}[type(n.value)]
            return None

        def hint(f: str, t: Ty | None) -> None:
            if t is not None:
                hints[f].add(t)

        for n in ast.walk(node):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr | ast.BitAnd | ast.Sub
                                                       | ast.BitXor):
                for a, b in ((n.left, n.right), (n.right, n.left)):
                    fld = field_of(a)
                    if fld:
                        hint(fld, elem_of(b))
            elif isinstance(n, ast.Compare):
                operands = [n.left, *n.comparators]
                for op, a, b in zip(n.ops, operands, operands[1:]):
                    if isinstance(op, ast.In | ast.NotIn):
                        fld = field_of(b)
                        if fld:
                            hint(fld, value_of(a))
                    else:
                        for x, y in ((a, b), (b, a)):
                            fld = field_of(x)
                            if fld:
                                hint(fld, elem_of(y))
            elif isinstance(n, ast.Assign | ast.AugAssign):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                for target in targets:
                    fld = field_of(target)
                    if fld:
                        hint(fld, elem_of(n.value))
    return {f: next(iter(ts)) for f, ts in hints.items() if len(ts) == 1 and f not in conflict}


def _value_ty(x: Any) -> Ty | None:
    if isinstance(x, Peer):
        return PEER
    if isinstance(x, enum.Enum):
        return enum_ty(type(x)) if plain_enum(type(x)) else None
    if type(x) in (bool, int, str):
        return {bool: BOOL, int: INT, str: STR}[type(x)]
    return None


def timer_messages(info: ComponentInfo) -> set[type] | None:
    """The message classes a component sets as timers (`self.after(d, M(...))`); None when a
    timer's message is not built in place, so that any message may be a timer."""
    out: set[type] = set()
    for fn, _, _ in _component_functions(info):
        try:
            node = function_node(fn)
        except Unsupported:
            continue
        closure, glob = fn_names(fn)
        for n in ast.walk(node):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                    and n.func.attr == "after":
                msg = n.args[1] if len(n.args) > 1 else None
                if isinstance(msg, ast.Call) and isinstance(msg.func, ast.Name):
                    cls = closure.get(msg.func.id, glob.get(msg.func.id))
                    if isinstance(cls, type) and issubclass(cls, Message):
                        out.add(cls)
                        continue
                return None
    return out


# --- background facts: what the encoding's uninterpreted symbols mean ----------------------------

_SCANS: dict[int, tuple[Any, _Scan]] = {}    # a term's id -> (the term, kept alive; its scan)
MAX_SCANS = 20000


@dataclass
class _Scan:
    """The uninterpreted symbols a term mentions (each a dict id -> term, so that it keeps
    the terms alive and its order is deterministic)."""

    cards: dict[int, Any]          # len@ applications
    peers: dict[int, Any]          # named peers (`Peer("n1")`)
    subsets: dict[int, Any]        # IsSubset atoms: (the smaller set, the larger)
    leaves: dict[int, Any]         # constants of set sorts
    equals: dict[int, Any] = field(default_factory=dict)     # equations between sets


def _scan(root: Any) -> _Scan:
    got = _SCANS.get(root.get_id())
    if got is not None and got[0].eq(root):
        return got[1]
    out = _Scan({}, {}, {}, {})
    seen: set[int] = set()
    todo = [root]
    while todo:
        t = todo.pop()
        if not z3.is_app(t):
            continue        # a quantifier's body has bound variables: no facts about them
        i = t.get_id()
        if i in seen:
            continue
        seen.add(i)
        if is_card(t):
            out.cards[i] = t
        elif peer_name(t) is not None:
            out.peers[i] = t
        elif t.num_args() == 0 and _is_set_sort(t.sort()) \
                and t.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.leaves[i] = t
        elif t.decl().kind() == z3.Z3_OP_SET_SUBSET:
            out.subsets[i] = (t.arg(0), t.arg(1))
        elif z3.is_eq(t) and _is_set_sort(t.arg(0).sort()):
            out.equals[i] = (t.arg(0), t.arg(1))
        todo.extend(t.children())
    if len(_SCANS) > MAX_SCANS:
        _SCANS.clear()
    _SCANS[root.get_id()] = (root, out)
    return out


def _is_set_sort(s: Any) -> bool:
    return isinstance(s, z3.ArraySortRef) and s.range() == z3.BoolSort()


def _finite_sort(s: Any) -> bool:
    """Bool, or an enum (a datatype of constants only)."""
    if s == z3.BoolSort():
        return True
    return isinstance(s, z3.DatatypeSortRef) and all(
        s.constructor(i).arity() == 0 for i in range(s.num_constructors()))


def _scan_all(terms: Any) -> _Scan:
    out = _Scan({}, {}, {}, {})
    for t in terms:
        sc = _scan(t)
        out.cards.update(sc.cards)
        out.peers.update(sc.peers)
        out.subsets.update(sc.subsets)
        out.leaves.update(sc.leaves)
        out.equals.update(sc.equals)
    return out


def background(terms: Any, solver: z3.Solver | None = None) -> list[Any]:
    """Valid facts about the uninterpreted symbols that `terms` mention, to be assumed beside
    them: the sizes of finite sets and the names of peers.

    The size of a set whose elements are not finitely many (`len` of a frozenset[int],
    frozenset[Peer], ...) is `types.card`, an uninterpreted function of the set.  Each fact
    below holds of every *finite* set with `card` its number of elements — and every set a
    component holds is a finite frozenset — so assuming them never excludes a real state: a
    proof with them is a proof.  They are not complete (a model of them may give a set a size
    it does not have), so a model is only used once it is confirmed (`finite_model`, then the
    concrete run).  For each `card(S)` mentioned, and the sets it leads to:

    * `card(S) >= 0`, and `card(S) == 0` exactly when `S` is empty;
    * by the form of `S`: `card(∅) = 0`; `card(T ∪ {x}) = card(T) + (0 if x ∈ T else 1)`;
      `card(T - {x}) = card(T) - (1 if x ∈ T else 0)`; `card(A ∪ B) = card(A) + card(B) -
      card(A ∩ B)`; `card(A - B) = card(A) - card(A ∩ B)`; `card(A ∩ B) <= card(A), card(B)`
      (`= card(A)` when `A ⊆ B`); `card(If(c, A, B)) = If(c, card(A), card(B))`;
    * for each equation `A == B` of sets the terms mention where the size of one is
      mentioned: `A == B ⇒ card(A) == card(B)` (so a set equal to a display has its size);
    * for each comparison `A <= B` of sets (a subset atom) the terms mention, of a sort whose
      sizes they mention: `A ⊆ B ⇒ card(A) <= card(B)` and `A ⊆ B ∧ A ≠ B ⇒ card(A) <
      card(B)` (for every pair of sets these facts made some proofs slow: Z3 then reasons
      about the extensionality of every pair of arrays).

    Named peers: `Peer("a")` and `Peer("b")` are different peers, and a peer's truth value
    is whether its name is not empty.

    With `solver`, the facts are those of `terms` and the solver's assertions together (a
    size in `terms` and a comparison `A <= B` it holds make a fact), less those it holds."""
    held = list(solver.assertions()) if solver is not None else []
    sc = _scan_all([*terms, *held])
    ids = {a.get_id() for a in held}
    facts = _facts(sc) + maps.sum_facts([*terms, *held])
    return [f for f in facts if f.get_id() not in ids]


def _facts(sc: _Scan) -> list[Any]:
    out: list[Any] = []
    named_list = [sc.peers[k] for k in sorted(sc.peers)]
    if len(named_list) > 1:
        out.append(z3.Distinct(*named_list))
    for p in named_list:
        out.append(peer_truth(p) == z3.BoolVal(peer_name(p) != ""))
    if not sc.cards:
        return out
    sorts = {str(c.arg(0).sort()) for c in sc.cards.values()}
    todo = list(sc.cards.values())
    for a, b in sc.subsets.values():
        if str(a.sort()) in sorts:
            sub = z3.IsSubset(a, b)
            ca, cb = card(a), card(b)
            out += [z3.Implies(sub, ca <= cb), z3.Implies(z3.And(sub, a != b), ca < cb)]
            todo += [ca, cb]
    for a, b in sc.equals.values():       # `A == B` with one size mentioned: the other's
        if str(a.sort()) in sorts and (card(a).get_id() in sc.cards
                                       or card(b).get_id() in sc.cards):
            ca, cb = card(a), card(b)
            out.append(z3.Implies(a == b, ca == cb))
            todo += [ca, cb]
    done: set[int] = set()
    while todo:
        c = todo.pop()
        if c.get_id() not in done:
            done.add(c.get_id())
            out += _size_facts(c, todo)
    return out


def _literal_size(s: Any) -> int | None:
    """The size of a set of constant values (`{0, 1, 2}`), or None."""
    vals: dict[str, bool] = {}
    while z3.is_app(s) and s.decl().kind() == z3.Z3_OP_STORE:
        x, v = s.arg(1), s.arg(2)
        if not (_constant(x) and (z3.is_true(v) or z3.is_false(v))):
            return None
        vals.setdefault(str(x), z3.is_true(v))      # the outermost store of a value wins
        s = s.arg(0)
    if z3.is_app(s) and s.decl().kind() == z3.Z3_OP_CONST_ARRAY and z3.is_false(s.arg(0)):
        return sum(vals.values())
    return None


def _constant(x: Any) -> bool:
    if z3.is_int_value(x) or z3.is_string_value(x) or z3.is_true(x) or z3.is_false(x):
        return True
    return z3.is_app(x) and x.decl().kind() == z3.Z3_OP_DT_CONSTRUCTOR \
        and all(_constant(a) for a in x.children())


def _size_facts(c: Any, todo: list[Any]) -> list[Any]:
    """The facts of `background` about one `card(S)`, by the form of `S`; the sizes of the
    sets they mention go on `todo`."""
    s = c.arg(0)
    n = _literal_size(s)
    if n is not None:
        return [c == n]
    out = [c >= 0, (c == 0) == (s == z3.EmptySet(s.sort().domain()))]
    k = s.decl().kind() if z3.is_app(s) else None

    def size(x: Any) -> Any:
        t = card(x)
        todo.append(t)
        return t
    if k == z3.Z3_OP_CONST_ARRAY:
        if z3.is_false(s.arg(0)):
            out.append(c == 0)
    elif k == z3.Z3_OP_STORE:
        t, x, v = s.arg(0), s.arg(1), s.arg(2)
        inside = z3.IsMember(x, t)
        if z3.is_true(v):
            out.append(c == size(t) + z3.If(inside, 0, 1))
        elif z3.is_false(v):
            out.append(c == size(t) - z3.If(inside, 1, 0))
    elif k in (z3.Z3_OP_SET_UNION, z3.Z3_OP_SET_DIFFERENCE) and s.num_args() == 2:
        a, b = s.arg(0), s.arg(1)
        both = size(z3.SetIntersect(a, b))
        if k == z3.Z3_OP_SET_UNION:
            out.append(c == size(a) + size(b) - both)
        else:
            out.append(c == size(a) - both)
    elif k == z3.Z3_OP_SET_INTERSECT and s.num_args() == 2:
        a, b = s.arg(0), s.arg(1)
        ca, cb = size(a), size(b)
        out += [c <= ca, c <= cb, z3.Implies(z3.IsSubset(a, b), c == ca),
                z3.Implies(z3.IsSubset(b, a), c == cb)]
    elif k == z3.Z3_OP_ITE:
        out.append(c == z3.If(s.arg(0), size(s.arg(1)), size(s.arg(2))))
    return out


# elements per set constant in the models `finite_model` looks for
UNIVERSE_SIZES: tuple[int, ...] = (4, 8)


def finite_model(solver: z3.Solver, model: z3.ModelRef) -> z3.ModelRef:
    """A model of the solver's assertions in which every set is finite and every `card` is
    its set's size: `model` itself when it is one, else one found by solving the assertions
    again with each set constant defined as a set of a few fresh elements, each one in it or
    not (`UNIVERSE_SIZES`), and each `card(S)` the number of distinct elements, among those
    `S` is made of (its constants' and the ones added to it), that are in `S`.  A model of
    that is a real state (up to the concrete run, which still confirms it).  None may exist
    within the bound: then `model` is all there is (`background`'s facts may give a set a
    size it does not have; the concrete run tells)."""
    sc = _scan_all(solver.assertions())
    leaves = [x for x in sc.leaves.values() if not _finite_sort(x.sort().domain())]
    map_leaves = maps.leaves(solver.assertions())
    if not sc.cards and not leaves and not map_leaves \
            or _exact(model, sc) and maps.all_finite(model, map_leaves):
        return model
    for n in UNIVERSE_SIZES:
        solver.push()
        try:
            solver.add(*maps.finite_definitions(map_leaves, n))
            elements: dict[int, list[Any] | None] = {}
            for leaf in leaves:
                fresh = [z3.Const(f"{leaf}@{i}", leaf.sort().domain()) for i in range(n)]
                chain = z3.EmptySet(leaf.sort().domain())
                for i, x in enumerate(fresh):
                    chain = z3.Store(chain, x, z3.Bool(f"{leaf}@{i}?"))
                solver.add(leaf == chain)
                elements[leaf.get_id()] = fresh
            for c in sc.cards.values():
                xs = _elements(c.arg(0), elements)
                if xs is not None:
                    solver.add(c == _count(c.arg(0), xs))
            if solver.check() == z3.sat:
                return solver.model()
        finally:
            solver.pop()
    return model


def _elements(s: Any, known: dict[int, list[Any] | None]) -> list[Any] | None:
    """Element terms `s` is within, given those of the set constants; None: not known."""
    i = s.get_id()
    if i in known:
        return known[i]
    out: list[Any] | None = None
    if z3.is_app(s):
        k = s.decl().kind()
        if k == z3.Z3_OP_CONST_ARRAY and z3.is_false(s.arg(0)):
            out = []
        elif k == z3.Z3_OP_STORE:
            base = _elements(s.arg(0), known)
            out = None if base is None else base + ([s.arg(1)] if not z3.is_false(s.arg(2))
                                                    else [])
        elif k in (z3.Z3_OP_SET_UNION, z3.Z3_OP_ITE):
            parts = [_elements(a, known) for a in s.children()[-2:]]
            out = None if any(p is None for p in parts) else [x for p in parts
                                                              for x in p]  # type: ignore
        elif k in (z3.Z3_OP_SET_INTERSECT, z3.Z3_OP_SET_DIFFERENCE):
            parts = [_elements(a, known) for a in s.children()]
            if k == z3.Z3_OP_SET_DIFFERENCE:
                parts = parts[:1]
            got = [p for p in parts if p is not None]
            out = min(got, key=len) if got else None
    known[i] = out
    return out


def _count(s: Any, xs: list[Any]) -> Any:
    """How many distinct terms of `xs` are in `s`."""
    if not xs:
        return z3.IntVal(0)
    return z3.Sum([z3.If(z3.And(z3.IsMember(x, s), *[x != y for y in xs[:i]]), 1, 0)
                   for i, x in enumerate(xs)])


def _exact(model: z3.ModelRef, sc: _Scan) -> bool:
    """Every set constant has a finite value in `model`, and every `card` its set's size."""
    try:
        for s in sc.leaves.values():
            if not _finite_sort(s.sort().domain()):
                finite_members(model, model.eval(s, model_completion=True), s.sort().domain())
        for c in sc.cards.values():
            s = c.arg(0)
            n = len(finite_members(model, model.eval(s, model_completion=True),
                                   s.sort().domain()))
            if model.eval(c, model_completion=True).as_long() != n:
                return False
    except (Unsupported, z3.Z3Exception, AttributeError):
        return False
    return True
