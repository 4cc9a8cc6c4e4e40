"""Statements and effects: the path state `St`, send sites and checks, and `Translator`,
which inlines a function body statement by statement (static single assignment).
"""
from __future__ import annotations

import ast
import enum
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import z3

from assay.model.message import Message
from assay.verifier import maps
from assay.verifier.expressions import (
    Expressions,
    _load,
    construct,
)
from assay.verifier.source import (
    fn_names,
    function_node,
)
from assay.verifier.types import (
    EMPTY,
    INT,
    NONE,
    PEER,
    ConstObj,
    MsgVal,
    Opaque,
    PortObj,
    RangeObj,
    SelfObj,
    TupleObj,
    Unbound,
    Unsupported,
    Val,
    _describe,
    _int_literal,
    _merge,
    _unsupported,
    coerce,
    conj,
    disj,
    is_some,
    ite,
    opt_ty,
    plain_enum,
    py_const,
    some_value,
    sort_of,
    tuple_items,
)

if TYPE_CHECKING:
    from assay.verifier.prove import ComponentEncoding


MAX_UNROLL = 256          # iterations of one unrolled `for`
_LOOPS = itertools.count(1)   # names the element constants of loops over sets, once each
MAX_INLINE_DEPTH = 16     # nested inlined calls


@dataclass
class Check:
    """A condition the kernel would stop on: an exception (kind 'raise')."""

    pc: Any
    ok: Any
    line: int
    end_line: int
    what: str


@dataclass
class SendSite:
    """A send (`send`, `broadcast`) or timer (`after`) with its path condition and checks."""

    kind: str                      # send | broadcast | timer
    port: str | None
    msg: MsgVal
    to: Val | None
    pc: Any
    parts: list[tuple[Any, str]]   # (condition the kernel checks, what it says)
    line: int
    end_line: int
    # the element constants of the `for x in a_set:` loops around it (innermost last): the
    # site stands for one send per element, which `conformance` must count as such
    loops: tuple[Any, ...] = ()

    @property
    def ok(self) -> Any:
        out: Any = z3.BoolVal(True)
        for c, _ in self.parts:
            out = conj(out, c)
        return out

    def describe(self) -> str:
        what = {"send": "send", "broadcast": "broadcast", "timer": "timer"}[self.kind]
        port = f" on {self.port}" if self.port else ""
        return f"{what} {self.msg.cls.__name__}{port}"


@dataclass
class PortEnc:
    name: str
    many: bool
    peers: Val                     # the peer set, fixed for a step
    assumptions: list[Any]
    conn: Any = None               # single port: connected
    peer: Any = None               # single port: the peer
    sent_on: bool = False


class _Activation:
    """One inlined call: its exits (returns), and where its free names resolve."""

    __slots__ = ("exits", "closure", "globals", "code", "local_names")

    def __init__(self, fn: Any) -> None:
        self.exits: list[tuple[Any, dict[str, Any], dict[str, Any], Any]] = []
        self.closure, self.globals = fn_names(fn)
        self.code = getattr(getattr(fn, "__func__", fn), "__code__", None)
        # Python's scoping: a name bound anywhere in a function is local everywhere in it
        # (reading it before it is bound raises UnboundLocalError, it never reads a global)
        self.local_names = frozenset(self.code.co_varnames) if self.code else frozenset()


class St:
    """The state along the current path: its condition, the fields, the locals."""

    __slots__ = ("pc", "fields", "wline", "locs", "act")

    def __init__(self, pc: Any, fields: dict[str, Any], wline: dict[str, Any],
                 locs: dict[str, Any], act: _Activation) -> None:
        self.pc = pc
        self.fields = fields
        self.wline = wline
        self.locs = locs
        self.act = act

    def copy(self) -> St:
        return St(self.pc, dict(self.fields), dict(self.wline), dict(self.locs), self.act)



class Translator(Expressions):
    """Translates one body or contract of one component against its encoding."""

    def __init__(self, enc: ComponentEncoding, contract: bool) -> None:
        self.enc = enc
        self.contract = contract
        self.checks: list[Check] = []
        self.sends: list[SendSite] = []
        self.written: set[str] = set()
        self.depth = 0
        self.stack: list[Any] = []
        self.set_loops: list[Any] = []      # the elements of the set loops being translated
        self.choices: list[Any] = []        # the constants of every self.choose() so far

    # --- entry points ------------------------------------------------------------------------

    def run_function(self, fn: Any, args: list[Any], st: St, node_for_errors: Any = None,
                     value: bool = True) -> Any:
        """Inline `fn(*args)` at state `st` (updated in place); returns its value (None when
        `value` is false: a handler's return value means nothing)."""
        node = function_node(fn)
        code = getattr(getattr(fn, "__func__", fn), "__code__", None)
        if code in self.stack:
            raise _unsupported(f"the recursive call of {getattr(code, 'co_name', '?')}",
                               node_for_errors or node)
        if len(self.stack) >= MAX_INLINE_DEPTH:
            raise _unsupported("calls nested too deeply", node_for_errors or node)
        params = [a.arg for a in node.args.args]
        if node.args.vararg or node.args.kwarg or node.args.kwonlyargs \
                or node.args.posonlyargs:
            raise _unsupported("a function with *args, **kwargs or keyword-only parameters",
                               node)
        defaults = list(getattr(fn, "__defaults__", None) or ())
        if len(args) > len(params):
            raise _unsupported(f"a call with {len(args)} arguments to a function of "
                               f"{len(params)}", node_for_errors or node)
        bound = list(args)
        missing = params[len(bound):]
        if len(missing) > len(defaults):
            raise _unsupported(f"a call without a value for parameter {missing[0]!r}",
                               node_for_errors or node)
        for d in defaults[len(defaults) - len(missing):] if missing else ():
            bound.append(py_const(d, node))
        act = _Activation(fn)
        saved = (st.locs, st.act)
        st.locs = dict(zip(params, bound))
        st.act = act
        self.stack.append(code)
        try:
            if isinstance(node, ast.Lambda):
                value = self.ex(node.body, st)
                act.exits.append((st.pc, st.fields, st.wline, value))
            else:
                self.block(node.body, st)
                act.exits.append((st.pc, st.fields, st.wline, NONE))
        finally:
            self.stack.pop()
            st.locs, st.act = saved
        if not value:
            act.exits = [(pc, f, w, NONE) for pc, f, w, _ in act.exits]
        return self._join_exits(act.exits, st, node)

    def _join_exits(self, exits: list, st: St, node: ast.AST) -> Any:
        live = [e for e in exits if not z3.is_false(e[0])]
        if not live:
            st.pc = z3.BoolVal(False)
            return NONE
        pc, fields, wline, ret = live[-1]
        for epc, efields, ewline, eret in reversed(live[:-1]):
            fields = {f: _merge(epc, efields[f], fields[f], f, node) for f in fields}
            wline = {f: ite(epc, ewline[f], wline[f]) for f in wline}
            ret = _merge(epc, eret, ret, "the return value", node)
            pc = disj(epc, pc)
        st.pc = pc
        st.fields = fields
        st.wline = wline
        return ret

    # --- statements ----------------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt], st: St) -> None:
        for s in stmts:
            if z3.is_false(st.pc):
                return               # after a return: never runs
            self.stmt(s, st)

    def stmt(self, s: ast.stmt, st: St) -> None:
        if isinstance(s, ast.Expr):
            if isinstance(s.value, ast.Constant):
                return                           # a docstring
            self.ex(s.value, st)
        elif isinstance(s, ast.Pass):
            return
        elif isinstance(s, ast.Assign):
            if isinstance(s.value, ast.List):
                v: Any = TupleObj([self.ex(e, st) for e in s.value.elts])   # only unpacked
                if not all(isinstance(t, ast.Tuple | ast.List) for t in s.targets):
                    raise _unsupported("a list", s.value)
            else:
                v = self.ex(s.value, st)
            for t in s.targets:
                self.assign(t, v, st, s)
        elif isinstance(s, ast.AugAssign):
            cur = self.ex(_load(s.target), st)
            rhs = self.ex(s.value, st)
            self.assign(s.target, self.binop(type(s.op), cur, rhs, st, s), st, s)
        elif isinstance(s, ast.AnnAssign):
            if s.value is not None:
                self.assign(s.target, self.ex(s.value, st), st, s)
        elif isinstance(s, ast.If):
            c = self.cond(s.test, st)
            self.branch(c, lambda a: self.block(s.body, a), lambda b: self.block(s.orelse, b),
                        st, s)
        elif isinstance(s, ast.Return):
            v = self.ex(s.value, st) if s.value is not None else NONE
            st.act.exits.append((st.pc, st.fields, st.wline, v))
            st.pc = z3.BoolVal(False)
        elif isinstance(s, ast.Assert):
            self.check(st, self.cond(s.test, st), s, "the assert fails")
        elif isinstance(s, ast.Raise):
            self.check(st, z3.BoolVal(False), s, "the raise statement runs")
        elif isinstance(s, ast.For):
            self.for_loop(s, st)
        else:
            raise _unsupported(construct(s), s)

    def branch(self, c: Any, then: Callable[[St], None], other: Callable[[St], None], st: St,
               node: ast.AST) -> None:
        pc0 = st.pc
        a = st.copy()
        a.pc = enter_a = conj(pc0, c)
        then(a)
        b = st.copy()
        b.pc = enter_b = conj(pc0, z3.Not(c))
        other(b)
        if z3.is_false(a.pc):
            _assign_state(st, b)
            return
        if z3.is_false(b.pc):
            _assign_state(st, a)
            return
        plain = a.pc is enter_a and b.pc is enter_b
        sel = c if plain else a.pc
        st.pc = pc0 if plain else disj(a.pc, b.pc)
        st.fields = {f: _merge(sel, a.fields[f], b.fields[f], f, node) for f in a.fields}
        st.wline = {f: ite(sel, a.wline[f], b.wline[f]) for f in a.wline}
        locs = {}
        for k in a.locs.keys() | b.locs.keys():
            if k in a.locs and k in b.locs:
                try:
                    locs[k] = _merge(sel, a.locs[k], b.locs[k], k, node)
                except Unsupported:
                    locs[k] = Unbound(k)
            else:
                locs[k] = Unbound(k)
        st.locs = locs

    def for_loop(self, s: ast.For, st: St) -> None:
        if s.orelse:
            raise _unsupported("a for loop with an else clause", s)
        if not isinstance(s.target, ast.Name | ast.Tuple | ast.List):
            raise _unsupported("a for loop whose target is not a name or a tuple of names", s)
        domain = self.domain(s.iter, st, s)
        if isinstance(domain, Val):
            self.for_set(s, domain, st)
            return
        if len(domain) > MAX_UNROLL:
            raise _unsupported(f"a for loop over {len(domain)} values (at most {MAX_UNROLL} "
                               "are unrolled)", s)
        for v in domain:
            if z3.is_false(st.pc):
                return
            self.assign(s.target, v, st, s)
            self.block(s.body, st)

    def for_set(self, s: ast.For, dom: Val, st: St) -> None:
        """`for x in a_set:` — the order of a frozenset is not known, so only a body whose
        effect does not depend on it is translated: it may read, send (each send site is
        checked for every member: its element is a fresh constant `x` with `x in the_set`,
        universally quantified by the obligation, as every input is) and raise, but not
        assign a field, set a timer or return, and the locals it binds are unbound after the
        loop (which values they keep depends on the order).  After the loop, the path goes on
        where the body completed for every member (a quantified condition)."""
        elem = dom.ty.elem
        assert elem is not None
        n = next(_LOOPS)
        x = z3.Const(f"for@{s.lineno}#{n}", sort_of(elem))
        pc0 = st.pc
        body = st.copy()
        body.pc = enter = conj(pc0, z3.IsMember(x, dom.e))
        n_exits, n_sends, written = len(st.act.exits), len(self.sends), set(self.written)
        n_choices = len(self.choices)
        self.assign(s.target, Val(elem, x), body, s)
        self.set_loops.append(x)
        try:
            self.block(s.body, body)
        finally:
            self.set_loops.pop()
        why = None
        if len(st.act.exits) != n_exits:
            why = "returns"
        elif any(site.kind == "timer" for site in self.sends[n_sends:]):
            why = "sets a timer"
        elif self.written != written or any(body.fields[f] is not v
                                            for f, v in st.fields.items()):
            why = "assigns a field"
        if why:
            raise _unsupported(f"a for loop over a frozenset whose body {why} (its effect "
                               "may depend on the set's order, which is not known)", s)
        if body.pc is not enter:
            v = z3.Const(f"for@{s.lineno}#{n}'", sort_of(elem))
            done = z3.substitute(body.pc, (x, v))
            chosen = self.choices[n_choices:]
            if chosen:          # each member's run chooses anew: some choice completes it
                done = z3.Exists(chosen, done)
            st.pc = conj(pc0, z3.ForAll([v], z3.Implies(z3.IsMember(v, dom.e), done)))
        for k in body.locs:
            if k not in st.locs or body.locs[k] is not st.locs[k]:
                st.locs[k] = Unbound(k)

    def domain(self, it: ast.expr, st: St, s: ast.AST) -> list[Any] | Val:
        """The values of a literal finite domain, in iteration order (or a set, whose order
        is not known)."""
        if isinstance(it, ast.Tuple | ast.List):
            return [self.ex(e, st) for e in it.elts]
        if isinstance(it, ast.Call) and not it.keywords:
            f = self.ex(it.func, st)
            if isinstance(f, ConstObj) and f.value is range:
                bounds = []
                for a in it.args:
                    v = self.ex(a, st)
                    lit = _int_literal(v)
                    if lit is None:
                        raise _unsupported("a for loop over a range whose bounds are not "
                                           "constants", s)
                    bounds.append(lit)
                try:
                    r = range(*bounds)
                except (TypeError, ValueError):
                    raise _unsupported("a for loop over an invalid range", s) from None
                if len(r) > MAX_UNROLL:
                    raise _unsupported(f"a for loop over {len(r)} values (at most "
                                       f"{MAX_UNROLL} are unrolled)", s)
                return [Val(INT, z3.IntVal(i)) for i in r]
        v = self.ex(it, st)
        if isinstance(v, ConstObj) and isinstance(v.value, type) \
                and issubclass(v.value, enum.Enum):
            if not plain_enum(v.value):
                raise _unsupported(f"a for loop over {v.value.__name__}", s)
            return [py_const(m, s) for m in v.value]
        items = tuple_items(v)
        if items is not None:
            return items
        if isinstance(v, Val) and v.ty.kind == "set":
            return [] if v.ty == EMPTY else v
        if isinstance(v, Val) and v.ty.kind == "map":    # its keys, in an unknown order
            keys = maps.key_set(v)
            return [] if keys.ty == EMPTY else keys
        raise _unsupported("a for loop over something other than a finite domain (a tuple, "
                           "range(constants), an Enum class or a frozenset)", s)

    def assign(self, t: ast.expr, v: Any, st: St, s: ast.AST) -> None:
        if isinstance(t, ast.Name):
            st.locs[t.id] = v
            return
        if isinstance(t, ast.Tuple | ast.List):       # unpacking: `a, b = t`
            if any(isinstance(e, ast.Starred) for e in t.elts):
                raise _unsupported("unpacking into a starred target", s)
            items = tuple_items(self.unwrap(v, st, s, "as the value unpacked"))
            if items is None:
                raise _unsupported(f"unpacking {_describe(v)} (only tuples of a known length)",
                                   s)
            if len(items) != len(t.elts):
                self.check(st, z3.BoolVal(False), s, f"unpacking {len(items)} values into "
                           f"{len(t.elts)} names (ValueError)")
                return
            for e, x in zip(t.elts, items):
                self.assign(e, x, st, s)
            return
        if isinstance(t, ast.Attribute):
            obj = self.ex(t.value, st)
            if isinstance(obj, SelfObj):
                if obj.fields is not None or self.contract:
                    raise _unsupported(f"an assignment to {obj.label}.{t.attr} in a contract",
                                       s)
                enc = self.enc
                if t.attr in enc.ports:
                    raise _unsupported(f"an assignment to the port {t.attr}", s)
                fty = enc.types.get(t.attr)
                if fty is None:
                    raise _unsupported(f"an assignment to self.{t.attr}, which is not a field",
                                       s)
                if isinstance(fty, Opaque):
                    raise _unsupported(f"an assignment to field {t.attr!r} {fty.why}", s)
                cv = coerce(v, fty)
                if cv is None:
                    raise _unsupported(f"an assignment of {_describe(v)} to field {t.attr!r} "
                                       f"of type {fty.describe()}", s)
                st.fields[t.attr] = cv
                st.wline[t.attr] = z3.IntVal(getattr(s, "lineno", 0))
                self.written.add(t.attr)
                return
            raise _unsupported(f"an assignment to the attribute .{t.attr} of {_describe(obj)}",
                               s)
        if isinstance(t, ast.Subscript):
            raise _unsupported("an assignment to a subscript (a Map is immutable: "
                               "m[k] = v raises; write self.m = self.m.set(k, v))", s)
        raise _unsupported(f"an assignment to {construct(t)}", s)

    def check(self, st: St, ok: Any, node: ast.AST, what: str) -> None:
        if z3.is_true(ok):
            return
        line = getattr(node, "lineno", 0)
        self.checks.append(Check(st.pc, ok, line, getattr(node, "end_lineno", None) or line,
                                 what))
        st.pc = conj(st.pc, ok)

    # --- expressions ------------------------------------------------------------------------------


    def send(self, port: PortObj, attr: str, node: ast.Call, st: St) -> Any:
        if self.contract:
            raise _unsupported("a send in a contract", node)
        if attr not in ("send", "broadcast"):
            raise _unsupported(f"self.{port.name}.{attr}()", node)
        penc = self.enc.ports[port.name]
        kw = {k.arg: k.value for k in node.keywords}
        if None in kw or any(isinstance(a, ast.Starred) for a in node.args):
            raise _unsupported("a send with * or ** arguments", node)
        nargs = [*node.args]
        if attr == "send":
            if len(nargs) > 2 or set(kw) - {"message", "to"}:
                raise _unsupported("send() with unexpected arguments", node)
            msg_node = nargs[0] if nargs else kw.get("message")
            to_node = nargs[1] if len(nargs) > 1 else kw.get("to")
        else:
            if len(nargs) > 1 or set(kw) - {"message"}:
                raise _unsupported("broadcast() with unexpected arguments", node)
            msg_node = nargs[0] if nargs else kw.get("message")
            to_node = None
        if msg_node is None:
            raise _unsupported(f"{attr}() without a message", node)
        msg = self.ex(msg_node, st)
        to = None
        parts: list[tuple[Any, str]] = []
        maybe: Any = None            # to= an Optional[Peer]: whether it is a peer
        if to_node is not None:
            to = self.ex(to_node, st)
            if isinstance(to, Val) and to.ty == opt_ty(PEER):
                maybe = is_some(to.ty, to.e)
                to = some_value(to.ty, to.e)
            if to is NONE:
                to = None
            elif not (isinstance(to, Val) and to.ty == PEER):
                raise _unsupported(f"send(to=...) given {_describe(to)} (the verifier "
                                   "translates peers only)", node)
        if not isinstance(msg, MsgVal):
            raise _unsupported(f"{attr}() of {_describe(msg)}, not a message built with its "
                               "class", node)
        if attr == "send":
            if maybe is not None:       # None sends as to=None does: to a single port's peer
                assert to is not None
                member = z3.IsMember(to.e, penc.peers.e)
                parts.append((z3.And(maybe, member) if penc.many else
                              z3.Or(z3.Not(maybe), member),
                              f"the destination is a peer of port {port.name}"
                              + (" (not None)" if penc.many else "")))
            elif to is not None:
                parts.append((z3.IsMember(to.e, penc.peers.e),
                              f"the destination is a peer of port {port.name}"))
            elif penc.many:
                parts.append((z3.BoolVal(False),
                              f"send() on the many-port {port.name} names its destination "
                              "(to=)"))
        parts += self._message_parts(msg)
        parts += port_contract(self.enc, port.name, msg)
        site = SendSite(attr, port.name, msg, to, st.pc, parts, node.lineno,
                        node.end_lineno or node.lineno, tuple(self.set_loops))
        self.sends.append(site)
        st.pc = conj(st.pc, site.ok)
        return NONE

    def timer(self, attr: str, node: ast.Call, st: St) -> Any:
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _unsupported(f"self.{attr}() with keyword or * arguments", node)
        if attr == "cancel":
            if len(node.args) != 1:
                raise _unsupported("self.cancel() with other than one argument", node)
            what = self.ex(node.args[0], st)
            if isinstance(what, MsgVal) or (isinstance(what, ConstObj)
                                            and isinstance(what.value, type)
                                            and issubclass(what.value, Message)):
                return NONE              # timers are not part of the local state
            raise _unsupported(f"self.cancel() of {_describe(what)}", node)
        if len(node.args) != 2:
            raise _unsupported("self.after() with other than two arguments", node)
        delay = self.ex(node.args[0], st)
        msg = self.ex(node.args[1], st)
        if not (isinstance(delay, Val) and delay.ty == INT):
            raise _unsupported(f"self.after() with a delay of {_describe(delay)}", node)
        if not isinstance(msg, MsgVal):
            raise _unsupported(f"self.after() of {_describe(msg)}", node)
        parts = [(delay.e >= 0, "the delay is >= 0"), *self._message_parts(msg)]
        site = SendSite("timer", None, msg, None, st.pc, parts, node.lineno,
                        node.end_lineno or node.lineno, tuple(self.set_loops))
        self.sends.append(site)
        st.pc = conj(st.pc, site.ok)
        return NONE


    def choose(self, node: ast.Call, st: St) -> Any:
        """`self.choose(options)`: every option is a way the step can go, so what follows is
        proved for all of them — a fresh constant, assumed to be one of the options (the
        obligations are validity checks: a free constant is universally quantified).  No
        options at all is an exception (the kernel's violation)."""
        if len(node.args) != 1 or node.keywords:
            raise _unsupported("self.choose() with other than one argument", node)
        opts = self.ex(node.args[0], st)
        if isinstance(opts, RangeObj):
            c = z3.FreshInt(f"choice@{node.lineno}")
            self.choices.append(c)
            self.check(st, opts.contains(opts.lo), node, "choose() from an empty range")
            st.pc = conj(st.pc, opts.contains(c))
            return Val(INT, c)
        if isinstance(opts, Val) and opts.ty.kind == "set" and opts.ty.elem is not None:
            c = z3.FreshConst(sort_of(opts.ty.elem), f"choice@{node.lineno}")
            w = z3.FreshConst(sort_of(opts.ty.elem), f"some@{node.lineno}")
            self.choices.append(c)
            self.check(st, z3.Exists([w], z3.IsMember(w, opts.e)), node,
                       "choose() from an empty set")
            st.pc = conj(st.pc, z3.IsMember(c, opts.e))
            return Val(opts.ty.elem, c)
        raise _unsupported(f"self.choose() from {_describe(opts)} (the verifier translates "
                           "a range or a set)", node)


def _assign_state(dst: St, src: St) -> None:
    dst.pc, dst.fields, dst.wline, dst.locs = src.pc, src.fields, src.wline, src.locs


def port_contract(enc: ComponentEncoding, port: str, msg: MsgVal) -> list[tuple[Any, str]]:
    """What the sending port guarantees of the message (`Port(where=...)`), to be proved at
    the send site.  (What the receiving port assumes is another component's: a connection
    obligation proves the guarantee implies it.)  A contract that cannot be translated makes
    the whole body unknown."""
    p = enc.info.ports.get(port)
    pred = None if p is None else p.where.get(msg.cls)
    if pred is None:
        return []
    return [(enc.predicate(pred, [msg]),
             f"the contract of port {port} for {msg.cls.__name__}")]
