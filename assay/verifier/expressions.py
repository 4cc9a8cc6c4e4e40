"""Expressions: the `Expressions` half of the translator (every `ex_*`, calls, builtins,
messages) and the comparisons and arithmetic with Python's meaning.
"""
from __future__ import annotations

import ast
import builtins
import enum
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import z3

from assay.model.component import Component
from assay.model.mapping import Map
from assay.model.message import Message
from assay.model.types import Peer, _Record
from assay.verifier import maps
from assay.verifier.types import (
    BOOL,
    EMPTY,
    EMPTY_MAP,
    INT,
    NONE,
    NOT_PLAIN,
    PEER,
    STR,
    ConstObj,
    MsgObj,
    MsgVal,
    MutableSet,
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
    _short,
    _unsupported,
    adds_nothing,
    card,
    coerce,
    conj,
    disj,
    finite,
    frozen,
    is_some,
    ite,
    item,
    make_tuple,
    members,
    message_types,
    named_peer,
    peer_truth,
    plain_record,
    py_const,
    set_literal,
    some_value,
    sort_of,
    str_of,
    tuple_items,
    ty_of_spec,
    unify,
)

if TYPE_CHECKING:
    from assay.verifier.prove import ComponentEncoding
    from assay.verifier.statements import St


_CMP: dict[Any, str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
_BIN: dict[Any, str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Div: "/", ast.Pow: "**", ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^",
    ast.LShift: "<<", ast.RShift: ">>", ast.MatMult: "@"}
_NAMES = {
    ast.While: "a while loop", ast.Try: "a try statement", ast.With: "a with statement",
    ast.Dict: "a dict", ast.DictComp: "a dict comprehension", ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension", ast.GeneratorExp: "a generator expression",
    ast.Subscript: "a subscript", ast.Lambda: "a lambda", ast.JoinedStr: "an f-string",
    ast.List: "a list", ast.Tuple: "a tuple", ast.Starred: "a starred expression",
    ast.NamedExpr: "an assignment expression (:=)", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield from", ast.Delete: "a del statement",
    ast.Global: "a global statement", ast.Nonlocal: "a nonlocal statement",
    ast.FunctionDef: "a nested function", ast.ClassDef: "a nested class",
    ast.Import: "an import", ast.ImportFrom: "an import", ast.Break: "break",
    ast.Continue: "continue", ast.Slice: "a slice", ast.AsyncFunctionDef: "an async function",
    ast.Match: "a match statement",
}


def construct(node: ast.AST) -> str:
    return _NAMES.get(type(node), f"the construct {type(node).__name__}")



class Expressions:
    """Translates expressions; `statements.Translator` adds statements and effects."""

    enc: ComponentEncoding
    contract: bool

    # hooks the statement half defines
    def run_function(self, fn: Any, args: list[Any], st: St, node_for_errors: Any = None,
                     value: bool = True) -> Any:
        raise NotImplementedError

    def send(self, port: PortObj, attr: str, node: ast.Call, st: St) -> Any:
        raise NotImplementedError

    def timer(self, attr: str, node: ast.Call, st: St) -> Any:
        raise NotImplementedError

    def choose(self, node: ast.Call, st: St) -> Any:
        raise NotImplementedError

    def check(self, st: St, ok: Any, node: ast.AST, what: str) -> None:
        raise NotImplementedError

    def cond(self, node: ast.expr, st: St) -> Any:
        """The truth value of an expression in a condition (Z3 Bool)."""
        if isinstance(node, ast.BoolOp):
            return self.bool_chain(node, st, self.cond)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return z3.Not(self.cond(node.operand, st))
        return truth(self.ex(node, st), node)

    def bool_chain(self, node: ast.BoolOp, st: St, conv: Callable[[ast.expr, St], Any]) -> Any:
        is_and = isinstance(node.op, ast.And)
        v = conv(node.values[0], st)
        for nxt in node.values[1:]:
            before = st.pc
            runs = v if is_and else z3.Not(v)
            enter = conj(before, runs)
            st.pc = enter
            saved = effects_of(st)
            w = conv(nxt, st)
            only_where(runs, saved, st, nxt)
            if st.pc is enter:
                st.pc = before
            else:
                st.pc = disj(conj(before, z3.Not(v) if is_and else v), st.pc)
            v = z3.And(v, w) if is_and else z3.Or(v, w)
        return v

    def _bool_operand(self, node: ast.expr, st: St) -> Any:
        v = self.ex(node, st)
        if not (isinstance(v, Val) and v.ty == BOOL):
            raise _unsupported(f"'and'/'or' used as a value with an operand of type "
                               f"{_describe(v)} (only bools)", node)
        return v.e

    def ex(self, node: ast.expr, st: St) -> Any:
        m = getattr(self, "ex_" + type(node).__name__, None)
        if m is None:
            raise _unsupported(construct(node), node)
        return m(node, st)

    def ex_Constant(self, node: ast.Constant, st: St) -> Any:
        v = node.value
        if v is None or type(v) in (bool, int, str):
            return py_const(v, node)
        raise _unsupported(f"the constant {v!r}", node)

    def ex_Name(self, node: ast.Name, st: St) -> Any:
        if node.id in st.locs:
            v = st.locs[node.id]
            if isinstance(v, Unbound):
                raise _unsupported(f"the local {node.id!r}, which may be unbound or has "
                                   "different kinds of value on different paths", node)
            return v
        act = st.act
        if node.id in act.local_names:
            raise _unsupported(f"the local {node.id!r}, read where it may not be bound yet "
                               "(UnboundLocalError)", node)
        if node.id in act.closure:
            return py_const(act.closure[node.id], node)
        if node.id in act.globals:
            return py_const(act.globals[node.id], node)
        if hasattr(builtins, node.id):
            b = getattr(builtins, node.id)
            if b in _BUILTINS:
                return ConstObj(b)
            raise _unsupported(f"the builtin {node.id}", node)
        raise _unsupported(f"the unknown name {node.id!r}", node)

    def ex_Attribute(self, node: ast.Attribute, st: St) -> Any:
        obj = self.ex(node.value, st)
        a = node.attr
        enc = self.enc
        if isinstance(obj, SelfObj):
            if a in enc.types:
                v = (st.fields if obj.fields is None else obj.fields)[a]
                if isinstance(v, Opaque):
                    raise _unsupported(f"field {a!r} {v.why}", node)
                return v
            if a in enc.ports and obj.ports:
                return PortObj(a)
            raise _unsupported(f"{obj.label}.{a}", node)
        if isinstance(obj, MsgObj):
            if a == "sender":
                if isinstance(obj.sender, str):
                    raise _unsupported(obj.sender, node)
                return obj.sender
            if a in obj.fields:
                v = obj.fields[a]
                if isinstance(v, Opaque):
                    raise _unsupported(f"message field {a!r} {v.why}", node)
                return v
            raise _unsupported(f"the attribute .{a} of a {obj.cls.__name__} message", node)
        if isinstance(obj, MsgVal):
            if a in obj.fields:
                return obj.fields[a]
            raise _unsupported(f"the attribute .{a} of a {obj.cls.__name__} message", node)
        if isinstance(obj, Val) and obj.ty.kind == "opt" and obj.ty.elem is not None \
                and obj.ty.elem.kind == "record":
            # `x.f` of an Optional record: None raises AttributeError, a check like any other
            self.check(st, is_some(obj.ty, obj.e), node,
                       f"None is used as a {obj.ty.elem.describe()} (AttributeError)")
            obj = some_value(obj.ty, obj.e)
        if isinstance(obj, Val) and obj.ty.kind == "record":
            fields = obj.ty.cls.__assay_fields__
            if a in fields:
                return item(obj.ty, obj.e, fields.index(a))
            raise _unsupported(f"the attribute .{a} of a {obj.ty.describe()} record", node)
        if isinstance(obj, PortObj):
            if a == "peers":
                return enc.ports[obj.name].peers
            raise _unsupported(f"self.{obj.name}.{a}", node)
        if isinstance(obj, ConstObj):
            c = obj.value
            if isinstance(c, type) and issubclass(c, enum.Enum):
                if a in c.__members__:
                    return py_const(c[a], node)
                raise _unsupported(f"{c.__name__}.{a}", node)
            if isinstance(c, types.ModuleType) and hasattr(c, a):
                return py_const(getattr(c, a), node)
        raise _unsupported(f"the attribute .{a} of {_describe(obj)}", node)

    def ex_BoolOp(self, node: ast.BoolOp, st: St) -> Any:
        return Val(BOOL, self.bool_chain(node, st, self._bool_operand))

    def ex_UnaryOp(self, node: ast.UnaryOp, st: St) -> Any:
        if isinstance(node.op, ast.Not):
            return Val(BOOL, z3.Not(self.cond(node.operand, st)))
        v = self.unwrap(self.ex(node.operand, st), st, node, "as an operand")
        if isinstance(v, Val) and v.ty == INT:
            if isinstance(node.op, ast.USub):
                return Val(INT, -v.e)
            if isinstance(node.op, ast.UAdd):
                return v
        raise _unsupported(f"the unary operator {type(node.op).__name__} on {_describe(v)}",
                           node)

    def ex_BinOp(self, node: ast.BinOp, st: St) -> Any:
        a = self.ex(node.left, st)
        b = self.ex(node.right, st)
        return self.binop(type(node.op), a, b, st, node)

    def binop(self, op: type, a: Any, b: Any, st: St, node: ast.AST) -> Any:
        sym = _BIN.get(op, "?")
        a = self.unwrap(a, st, node, f"as an operand of {sym}")
        b = self.unwrap(b, st, node, f"as an operand of {sym}")
        if op is ast.Add:
            ta, tb = tuple_items(a), tuple_items(b)
            if ta is not None and tb is not None:
                return TupleObj(ta + tb)
            for x, y in ((a, b), (b, a)):
                if isinstance(x, Val) and x.ty.kind == "seq":
                    cy = coerce(y, x.ty)
                    if cy is None:
                        raise _unsupported(f"+ of a {x.ty.describe()} and {_describe(y)}",
                                           node)
                    lhs, rhs = (x.e, cy.e) if x is a else (cy.e, x.e)
                    return Val(x.ty, z3.Concat(lhs, rhs))
        if isinstance(a, Val) and isinstance(b, Val):
            if a.ty == INT and b.ty == INT:
                x, y = a.e, b.e
                if op is ast.Add:
                    return Val(INT, x + y)
                if op is ast.Sub:
                    return Val(INT, x - y)
                if op is ast.Mult:
                    return Val(INT, x * y)
                if op in (ast.FloorDiv, ast.Mod):
                    self.check(st, y != 0, node, "division by zero")
                    q, r = floor_divmod(x, y)
                    return Val(INT, q if op is ast.FloorDiv else r)
                if op is ast.Pow:
                    k = _int_literal(b)
                    if k is None or k < 0 or k > 64:
                        raise _unsupported("** with an exponent that is not a constant in "
                                           "0..64", node)
                    out: Any = z3.IntVal(1)
                    for _ in range(k):
                        out = out * x
                    return Val(INT, z3.simplify(out) if _int_literal(a) is not None else out)
                if op is ast.Div:
                    raise _unsupported("true division / (its result is a float; use //)",
                                       node)
                raise _unsupported(f"the operator {sym} on ints", node)
            if a.ty == BOOL and b.ty == BOOL and op in (ast.BitAnd, ast.BitOr, ast.BitXor):
                f = {ast.BitAnd: z3.And, ast.BitOr: z3.Or, ast.BitXor: z3.Xor}[op]
                return Val(BOOL, f(a.e, b.e))
            if a.ty == STR and b.ty == STR and op is ast.Add:
                return Val(STR, z3.Concat(a.e, b.e))
            if a.ty.kind == "map" and b.ty.kind == "map" and op is ast.BitOr:
                return maps.union(a, b, node)
            if a.ty.kind == "set" and b.ty.kind == "set" and \
                    op in (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor):
                if a.ty == EMPTY and b.ty == EMPTY:
                    return a
                u = unify(a, b)
                if u is None:
                    raise _unsupported(f"{sym} of a {a.ty.describe()} and a {b.ty.describe()}",
                                       node)
                x, y = u[0].e, u[1].e
                if op is ast.BitOr:
                    e = z3.SetUnion(x, y)
                elif op is ast.BitAnd:
                    e = z3.SetIntersect(x, y)
                elif op is ast.Sub:
                    e = z3.SetDifference(x, y)
                else:
                    e = z3.SetUnion(z3.SetDifference(x, y), z3.SetDifference(y, x))
                # Python's result has the type of the left operand: `set | frozenset` is a set
                return MutableSet(u[0].ty, e) if isinstance(a, MutableSet) else Val(u[0].ty, e)
        raise _unsupported(f"the operator {sym} on {_describe(a)} and {_describe(b)}", node)

    def ex_IfExp(self, node: ast.IfExp, st: St) -> Any:
        c = self.cond(node.test, st)
        pc0 = st.pc
        st.pc = ea = conj(pc0, c)
        saved = effects_of(st)
        a = self.ex(node.body, st)
        pa = st.pc
        after_a = effects_of(st)
        st.fields, st.wline = dict(saved[0]), dict(saved[1])     # the orelse runs instead
        st.pc = eb = conj(pc0, z3.Not(c))
        b = self.ex(node.orelse, st)
        pb = st.pc
        only_where(z3.Not(c), after_a, st, node)
        st.pc = pc0 if (pa is ea and pb is eb) else disj(pa, pb)
        return _merge(c, a, b, "the conditional expression", node)

    def unwrap(self, v: Any, st: St, node: ast.AST, what: str) -> Any:
        """An Optional's value where Python needs the value itself (an operand, a container,
        `len`): None there raises TypeError, a check like any other exception."""
        if isinstance(v, Val) and v.ty.kind == "opt":
            self.check(st, is_some(v.ty, v.e), node, f"None is used {what} (TypeError)")
            return some_value(v.ty, v.e)
        if v is NONE:
            raise _unsupported(f"None used {what} (it raises TypeError)", node)
        return v

    def ex_Tuple(self, node: ast.Tuple, st: St) -> Any:
        if not isinstance(node.ctx, ast.Load):
            raise _unsupported("a tuple target here", node)
        return TupleObj([self.ex(e, st) for e in node.elts])

    def ex_Subscript(self, node: ast.Subscript, st: St) -> Any:
        if isinstance(node.slice, ast.Slice):
            raise _unsupported("a slice", node)
        v = self.unwrap(self.ex(node.value, st), st, node, "as a tuple")
        if isinstance(v, Val) and v.ty.kind == "map":
            return maps.subscript(self, v, self.ex(node.slice, st), node, st)
        i = self.unwrap(self.ex(node.slice, st), st, node, "as an index")
        if not (isinstance(i, Val) and i.ty == INT):
            raise _unsupported(f"an index that is {_describe(i)}, not an int", node)
        items = tuple_items(v)
        if items is not None:
            n = len(items)
            k = _int_literal(i)
            if k is not None:
                if not -n <= k < n:
                    self.check(st, z3.BoolVal(False), node, "the index is out of range "
                               "(IndexError)")
                    return items[0] if items else NONE
                return items[k]
            vals = [x for x in items if isinstance(x, Val)]
            if not items or len(vals) != n or any(x.ty != vals[0].ty for x in vals):
                raise _unsupported("a tuple indexed by a variable, whose items do not all "
                                   "have one type", node)
            self.check(st, z3.And(i.e >= -n, i.e < n), node,
                       "the index is out of range (IndexError)")
            out = vals[-1].e
            for j in range(n - 2, -1, -1):
                out = z3.If(z3.Or(i.e == j, i.e == j - n), vals[j].e, out)
            return Val(vals[0].ty, out)
        if isinstance(v, Val) and v.ty.kind == "seq":
            n = z3.Length(v.e)
            self.check(st, z3.And(i.e >= -n, i.e < n), node,
                       "the index is out of range (IndexError)")
            return Val(v.ty.elem, v.e[z3.If(i.e < 0, i.e + n, i.e)])  # type: ignore[arg-type]
        raise _unsupported(f"a subscript of {_describe(v)}", node)

    def ex_Compare(self, node: ast.Compare, st: St) -> Any:
        special = self._len_emptiness(node, st)
        if special is not None:
            return special
        left = self.ex(node.left, st)
        result: Any = None
        for op, right_node in zip(node.ops, node.comparators):
            before = st.pc
            enter = conj(before, result) if result is not None else before
            st.pc = enter
            saved = effects_of(st)
            if type(op) in (ast.In, ast.NotIn) and isinstance(right_node,
                                                              ast.Tuple | ast.List | ast.Set):
                opts = [self.ex(e, st) for e in right_node.elts]
                r = z3.Or([equal(left, o, node) for o in opts]) if opts else z3.BoolVal(False)
                if isinstance(op, ast.NotIn):
                    r = z3.Not(r)
                right = None
            else:
                right = self.ex(right_node, st)
                if left is None:
                    raise _unsupported("a comparison chained after 'in' of a display", node)
                if type(op) in (ast.Lt, ast.LtE, ast.Gt, ast.GtE):
                    left = self.unwrap(left, st, node, "in an ordering comparison")
                    right = self.unwrap(right, st, node, "in an ordering comparison")
                elif type(op) in (ast.In, ast.NotIn):
                    right = self.unwrap(right, st, node, "as the container of 'in'")
                r = compare(type(op), left, right, node)
            if result is not None:          # evaluated only where the comparisons before hold
                only_where(result, saved, st, right_node)
            if st.pc is enter:
                st.pc = before
            elif result is not None:        # the first comparison is always evaluated
                st.pc = disj(conj(before, z3.Not(result)), st.pc)
            result = r if result is None else z3.And(result, r)
            left = right
        return Val(BOOL, result)

    def _len_emptiness(self, node: ast.Compare, st: St) -> Any:
        """`len(s) == 0` and friends, for a set whose elements are not finitely many: an
        emptiness test needs no size (`card`)."""
        if len(node.ops) != 1:
            return None
        lhs, rhs, op = node.left, node.comparators[0], type(node.ops[0])
        flip = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE,
                ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}
        if _is_len_call(rhs) and isinstance(lhs, ast.Constant):
            lhs, rhs, op = rhs, lhs, flip.get(op, op)
        if not (_is_len_call(lhs) and isinstance(rhs, ast.Constant)
                and type(rhs.value) is int
                and self._is_builtin_len(lhs.func, st)):  # type: ignore[attr-defined]
            return None
        s = self.ex(lhs.args[0], st)  # type: ignore[attr-defined]
        if isinstance(s, Val) and s.ty.kind == "map":
            if s.ty.items is not None and finite(s.ty.items[0]):
                return None
            empty = maps.is_empty(s)
        elif not (isinstance(s, Val) and s.ty.kind == "set") or (s.ty.elem and finite(s.ty.elem)):
            return None
        elif s.ty == EMPTY:
            empty = z3.BoolVal(True)
        else:
            empty = s.e == z3.EmptySet(sort_of(s.ty.elem))  # type: ignore[arg-type]
        k = rhs.value
        table = {(ast.Eq, 0): empty, (ast.NotEq, 0): z3.Not(empty), (ast.Gt, 0): z3.Not(empty),
                 (ast.GtE, 1): z3.Not(empty), (ast.Lt, 1): empty, (ast.LtE, 0): empty,
                 (ast.GtE, 0): z3.BoolVal(True), (ast.Lt, 0): z3.BoolVal(False)}
        r = table.get((op, k))
        return None if r is None else Val(BOOL, r)       # else: `card`, in ex_Call

    def _is_builtin(self, name: str, st: St) -> bool:
        act = st.act
        return not (name in st.locs or name in act.local_names or name in act.closure
                    or name in act.globals)

    def _is_builtin_len(self, func: ast.expr, st: St) -> bool:
        try:
            f = self.ex(func, st)
        except Unsupported:
            return False
        return isinstance(f, ConstObj) and f.value is len

    def ex_Set(self, node: ast.Set, st: St) -> Any:
        v = set_literal([self.ex(e, st) for e in node.elts], node)
        return MutableSet(v.ty, v.e)             # a display is a set, not a frozenset

    def ex_Call(self, node: ast.Call, st: St) -> Any:
        f = node.func
        if isinstance(f, ast.Attribute):
            recv = self.ex(f.value, st)
            if isinstance(recv, PortObj):
                return self.send(recv, f.attr, node, st)
            if isinstance(recv, SelfObj):
                if f.attr in ("after", "cancel") and recv.fields is None:
                    return self.timer(f.attr, node, st)
                if f.attr == "choose" and recv.fields is None:
                    return self.choose(node, st)
                meth = _method(self.enc.cls, f.attr)
                if meth is not None and f.attr not in self.enc.types:
                    if node.keywords:
                        raise _unsupported("a method call with keyword arguments", node)
                    args = [self.ex(a, st) for a in node.args]
                    return self.run_function(meth, [recv, *args], st, node)
                raise _unsupported(f"the call {recv.label}.{f.attr}()", node)
            if isinstance(recv, Val) and recv.ty.kind == "record" and f.attr == "replace":
                return self.replace_record(recv, node, st)
            if isinstance(recv, Val) and recv.ty.kind == "map":
                return maps.method(self, recv, node, st)
            if isinstance(recv, Val):
                raise _unsupported(f"the method call .{f.attr}() on a {recv.ty.describe()}",
                                   node)
            if not isinstance(recv, ConstObj):
                raise _unsupported(f"the method call .{f.attr}() on {_describe(recv)}", node)
            if recv.value is Map and f.attr == "fromkeys":
                return maps.fromkeys(self, node, st)
            callee = self.ex_Attribute(f, st)
        else:
            if isinstance(f, ast.Name) and f.id in ("all", "any", "sum") \
                    and self._is_builtin(f.id, st):
                got = maps.aggregate(self, getattr(builtins, f.id), node, st)
                if got is not None:
                    return got
            callee = self.ex(f, st)
        if not isinstance(callee, ConstObj):
            raise _unsupported(f"a call of {_describe(callee)}", node)
        fn = callee.value
        if fn is Peer:
            return self.named_peer(node, st)
        if fn is Map:
            return maps.construct(self, node, st)
        if isinstance(fn, type) and issubclass(fn, Message):
            return self.build_message(fn, node, st)
        if plain_record(fn):
            return self.build_record(fn, node, st)
        if fn in _BUILTINS:
            if node.keywords:
                raise _unsupported(f"{fn.__name__}() with keyword arguments", node)
            return self.builtin(fn, node, st)
        if isinstance(fn, types.FunctionType) and fn.__module__ not in _LIBRARY_MODULES:
            if node.keywords:
                raise _unsupported(f"a call of {fn.__name__} with keyword arguments", node)
            args = [self.ex(a, st) for a in node.args]
            return self.run_function(fn, args, st, node)
        name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or _short(fn)
        mod = getattr(fn, "__module__", None)
        if mod and mod not in ("builtins", st.act.globals.get("__name__")):
            name = f"{mod}.{name}"
        raise _unsupported(f"a call to the unknown function {name}", node)

    def named_peer(self, node: ast.Call, st: St) -> Val:
        """`Peer("n1")`: the peer of that name, a constant (connected or not: a handler is
        verified for every wiring)."""
        if len(node.args) != 1 or node.keywords:
            raise _unsupported("Peer() with other than one argument", node)
        v = self.ex(node.args[0], st)
        e = z3.simplify(v.e) if isinstance(v, Val) and v.ty == STR else None
        if e is None or not z3.is_string_value(e):
            raise _unsupported("Peer() of a name that is not a constant str", node)
        return Val(PEER, named_peer(str_of(e)))

    def builtin(self, fn: Any, node: ast.Call, st: St) -> Any:
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise _unsupported("a call with *args", node)
        if fn is frozenset:
            if not node.args:
                return Val(EMPTY, None)
            if len(node.args) == 1:
                a = node.args[0]
                if isinstance(a, ast.Tuple | ast.List | ast.Set):
                    vals = [self.ex(e, st) for e in a.elts]
                    return set_literal(vals, node) if vals else Val(EMPTY, None)
                v = self.ex(a, st)
                if isinstance(v, Val) and v.ty.kind == "set":
                    return frozen(v)
            raise _unsupported("frozenset() of something other than a set or a display", node)
        args = [self.ex(a, st) for a in node.args]
        if fn is bool:
            if len(args) == 1:
                return Val(BOOL, truth(args[0], node))
            if not args:
                return Val(BOOL, z3.BoolVal(False))
        args = [self.unwrap(a, st, node, f"as the argument of {fn.__name__}()") for a in args]
        if fn is len:
            if len(args) == 1 and isinstance(args[0], Val) and args[0].ty.kind == "set":
                s = args[0]
                if s.ty == EMPTY:
                    return Val(INT, z3.IntVal(0))
                if finite(s.ty.elem):  # type: ignore[arg-type]
                    return Val(INT, z3.Sum([z3.If(z3.IsMember(c, s.e), 1, 0)
                                            for c in members(s.ty.elem)]))  # type: ignore
                return Val(INT, card(s.e))
            items = tuple_items(args[0]) if len(args) == 1 else None
            if items is not None:
                return Val(INT, z3.IntVal(len(items)))
            if len(args) == 1 and isinstance(args[0], Val) and args[0].ty.kind == "seq":
                return Val(INT, z3.Length(args[0].e))
            if len(args) == 1 and isinstance(args[0], Val) and args[0].ty.kind == "map":
                return Val(INT, maps.length(args[0], node))
            raise _unsupported(f"len() of {_describe(args[0]) if args else 'nothing'}", node)
        if fn in (min, max):
            if len(args) >= 2 and all(isinstance(a, Val) and a.ty == INT for a in args):
                out = args[0].e
                for a in args[1:]:
                    # Python keeps the first of equal values; for ints that is the same value
                    out = z3.If(a.e < out, a.e, out) if fn is min else z3.If(a.e > out, a.e, out)
                return Val(INT, out)
            raise _unsupported(f"{fn.__name__}() of anything but two or more ints", node)
        if fn is abs:
            if len(args) == 1 and isinstance(args[0], Val) and args[0].ty == INT:
                x = args[0].e
                return Val(INT, z3.If(x < 0, -x, x))
            raise _unsupported("abs() of anything but an int", node)
        if fn is range and 1 <= len(args) <= 3 and all(isinstance(a, Val) and a.ty == INT
                                                        for a in args):
            lo, hi = (z3.IntVal(0), args[0].e) if len(args) == 1 else (args[0].e, args[1].e)
            step = _int_literal(args[2]) if len(args) == 3 else 1
            if step is None or step == 0:
                raise _unsupported("range() with a step that is not a non-zero constant", node)
            return RangeObj(lo, hi, step)
        if fn is int and len(args) == 1 and isinstance(args[0], Val):
            if args[0].ty == INT:
                return args[0]
            if args[0].ty == BOOL:
                return Val(INT, z3.If(args[0].e, 1, 0))
        raise _unsupported(f"the call {fn.__name__}(...) with these arguments", node)

    def build_record(self, cls: type, node: ast.Call, st: St) -> Val:
        """`R(...)` of a translated record class: a term of its record type (the fields as
        a message's: by position or name, defaults for the rest)."""
        ty = ty_of_spec(_Record(cls))
        if isinstance(ty, Opaque):
            raise _unsupported(f"a record {ty.why}", node)
        built = self.build_message(cls, node, st)
        fields = cls.__assay_fields__  # type: ignore[attr-defined]
        return Val(ty, make_tuple(ty, [built.fields[n].e for n in fields]))

    def replace_record(self, rec: Val, node: ast.Call, st: St) -> Val:
        """`r.replace(f=v, ...)`: the record with those fields changed (keywords only, each a
        field; anything else raises in Python, and is refused here)."""
        cls, ty = rec.ty.cls, rec.ty
        fields = cls.__assay_fields__
        if node.args or any(k.arg is None or k.arg not in fields for k in node.keywords) \
                or len({k.arg for k in node.keywords}) != len(node.keywords):
            raise _unsupported(f"{cls.__name__}.replace() with arguments other than its "
                               "fields by name", node)
        given = {k.arg: self.ex(k.value, st) for k in node.keywords}
        items = []
        for i, (n, t) in enumerate(zip(fields, ty.items or ())):
            if n not in given:
                items.append(item(ty, rec.e, i).e)
                continue
            cv = coerce(given[n], t)
            if cv is None:
                raise _unsupported(f"{cls.__name__}.{n} (of type {t.describe()}) given "
                                   f"{_describe(given[n])}", node)
            items.append(cv.e)
        return Val(ty, make_tuple(ty, items))

    def build_message(self, cls: type, node: ast.Call, st: St) -> MsgVal:
        fields = cls.__assay_fields__  # type: ignore[attr-defined]
        if issubclass(cls, Message) and not adds_nothing(cls):
            raise _unsupported(f"{cls.__name__}(...): {NOT_PLAIN}", node)
        if any(k.arg is None for k in node.keywords):
            raise _unsupported(f"a {cls.__assay_kind__} built with ** arguments",  # type: ignore[attr-defined]
                               node)
        args: list[Any] = []
        for a in node.args:         # `M(*t)` of a tuple whose items are known: its items
            if isinstance(a, ast.Starred):
                items = tuple_items(self.ex(a.value, st))
                if items is None:
                    raise _unsupported(f"a {cls.__assay_kind__} built with * of something "  # type: ignore[attr-defined]
                                       "other than a tuple of a known length", node)
                args += items
            else:
                args.append(self.ex(a, st))
        if len(args) > len(fields):
            raise _unsupported(f"{cls.__name__}(...) with too many arguments", node)
        given: dict[str, Any] = dict(zip(fields, args))
        for k in node.keywords:
            if k.arg is None or k.arg not in fields or k.arg in given:
                raise _unsupported(f"{cls.__name__}(...) with a wrong keyword {k.arg!r}", node)
            given[k.arg] = self.ex(k.value, st)
        types_ = message_types(cls)
        out: dict[str, Val] = {}
        for n in fields:
            if n in given:
                v = given[n]
            elif n in cls.__assay_defaults__:  # type: ignore[attr-defined]
                v = py_const(cls.__assay_defaults__[n], node)  # type: ignore[attr-defined]
            else:
                raise _unsupported(f"{cls.__name__}(...) without a value for field {n!r}", node)
            ty = types_[n][0]
            if isinstance(ty, Opaque):
                raise _unsupported(f"message field {cls.__name__}.{n} {ty.why}", node)
            cv = coerce(v, ty)
            if cv is None:
                raise _unsupported(f"{cls.__name__}.{n} (of type {ty.describe()}) given "
                                   f"{_describe(v)}", node)
            out[n] = cv
        return MsgVal(cls, out)

    def _message_parts(self, msg: MsgVal) -> list[tuple[Any, str]]:
        parts = []
        for n, (_, rng) in message_types(msg.cls).items():
            if rng is not None:
                parts.append((rng.holds(msg.fields[n].e),
                              f"{msg.cls.__name__}.{n} is {rng.text}"))
        return parts


_BUILTINS = (len, min, max, abs, frozenset, bool, int, range)
_LIBRARY_MODULES = ("builtins", "operator", "functools", "itertools", "math", "random", "time",
                    "os", "sys")



def _is_len_call(n: ast.expr) -> bool:
    return (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "len"
            and len(n.args) == 1 and not n.keywords)


def _load(t: ast.expr) -> ast.expr:
    if isinstance(t, ast.Name):
        return ast.copy_location(ast.Name(t.id, ast.Load()), t)
    if isinstance(t, ast.Attribute):
        return ast.copy_location(ast.Attribute(t.value, t.attr, ast.Load()), t)
    raise _unsupported(f"an augmented assignment to {construct(t)}", t)



def effects_of(st: St) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields (and the lines that wrote them) along a path, before a sub-expression that
    may call a method of the component: see `only_where`."""
    return dict(st.fields), dict(st.wline)


def only_where(c: Any, saved: tuple[dict[str, Any], dict[str, Any]], st: St,
               node: ast.AST) -> None:
    """A sub-expression evaluated only where `c` holds (the right operand of `and`/`or`, a
    later link of a chained comparison, one arm of a conditional expression) writes fields
    only there: `x > 5 and self.bump()` leaves the state alone where x <= 5.  The writes it
    made in `st` (run as if it always ran) are kept where `c` holds, `saved` elsewhere."""
    fields0, wline0 = saved
    if all(st.fields[f] is fields0[f] for f in fields0) \
            and all(st.wline[f] is wline0[f] for f in wline0):
        return
    st.fields = {f: _merge(c, st.fields[f], fields0[f], f, node) for f in fields0}
    st.wline = {f: ite(c, st.wline[f], wline0[f]) for f in wline0}


def floor_divmod(x: Any, y: Any) -> tuple[Any, Any]:
    """Python's `x // y` and `x % y` (floor division) in Z3, for y != 0."""
    k = z3.simplify(y)
    if z3.is_int_value(k) and k.as_long() > 0:
        return x / y, x % y          # Euclidean and floor agree for a positive divisor
    q = z3.If(y > 0, x / y, (-x) / (-y))
    return q, x - y * q


def truth(v: Any, node: ast.AST | None) -> Any:
    """Python's truth value of a value, exactly."""
    items = tuple_items(v)
    if items is not None:
        return z3.BoolVal(len(items) > 0)
    if isinstance(v, Val):
        k = v.ty.kind
        if k == "bool":
            return v.e
        if k == "int":
            return v.e != 0
        if k == "str":
            return z3.Length(v.e) > 0
        if k == "set":
            if v.ty == EMPTY:
                return z3.BoolVal(False)
            return v.e != z3.EmptySet(sort_of(v.ty.elem))  # type: ignore[arg-type]
        if k == "enum":
            return z3.BoolVal(True)
        if k == "seq":
            return z3.Length(v.e) > 0
        if k == "peer":
            return peer_truth(v.e)
        if k == "opt":
            return z3.And(is_some(v.ty, v.e), truth(some_value(v.ty, v.e), node))
        if k == "record":
            return z3.BoolVal(True)          # a plain record has no __bool__ or __len__
        if k == "map":
            return z3.Not(maps.is_empty(v))
    if v is NONE:
        return z3.BoolVal(False)
    raise _unsupported(f"the truth value of {_describe(v)}", node)


def equal(a: Any, b: Any, node: ast.AST) -> Any:
    """Python's `a == b`, exactly."""
    if a is NONE or b is NONE:
        if a is NONE and b is NONE:
            return z3.BoolVal(True)
        other = b if a is NONE else a
        if isinstance(other, Val) and other.ty.kind == "opt":
            return z3.Not(is_some(other.ty, other.e))
        if isinstance(other, Val | TupleObj):
            return z3.BoolVal(False)
    ta, tb = tuple_items(a), tuple_items(b)
    if ta is not None and tb is not None:
        if isinstance(a, Val) and isinstance(b, Val) and a.ty == b.ty:
            return a.e == b.e
        if len(ta) != len(tb):
            return z3.BoolVal(False)
        return z3.And([equal(x, y, node) for x, y in zip(ta, tb)]) if ta else z3.BoolVal(True)
    for x, y in ((a, b), (b, a)):
        if isinstance(x, Val) and x.ty.kind == "seq":
            items = tuple_items(y)
            if items is not None:
                elem = x.ty.elem
                assert elem is not None
                return z3.And(z3.Length(x.e) == len(items),
                              *[equal(Val(elem, x.e[i]), it, node)
                                for i, it in enumerate(items)])
    for x, y in ((a, b), (b, a)):
        if isinstance(x, Val) and x.ty.kind == "opt" and isinstance(y, Val | TupleObj) \
                and not (isinstance(y, Val) and y.ty == x.ty):
            vx = some_value(x.ty, x.e)
            if isinstance(y, Val) and y.ty.kind == "opt":
                return z3.Or(z3.And(z3.Not(is_some(x.ty, x.e)), z3.Not(is_some(y.ty, y.e))),
                             z3.And(is_some(x.ty, x.e), is_some(y.ty, y.e),
                                    equal(vx, some_value(y.ty, y.e), node)))
            return z3.And(is_some(x.ty, x.e), equal(vx, y, node))
    if (ta is None) != (tb is None) and isinstance(a, Val | TupleObj) \
            and isinstance(b, Val | TupleObj):
        return z3.BoolVal(False)            # a tuple and a value of another kind
    if isinstance(a, Val) and isinstance(b, Val):
        u = unify(a, b)
        if u is not None:
            if u[0].ty in (EMPTY, EMPTY_MAP):
                return z3.BoolVal(True)
            return u[0].e == u[1].e
        kinds = {a.ty.kind, b.ty.kind}
        if kinds == {"map"}:       # maps of two types are equal when both are empty, or ...
            raise _unsupported(f"== between a {a.ty.describe()} and a {b.ty.describe()}", node)
        if kinds in ({"int", "bool"}, {"peer", "str"}) or kinds == {"set"} \
                or kinds == {"seq"}:
            raise _unsupported(f"== between a {a.ty.describe()} and a {b.ty.describe()}", node)
        return z3.BoolVal(False)
    raise _unsupported(f"== between {_describe(a)} and {_describe(b)}", node)


_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _lex(op: type, xs: list[Any], ys: list[Any], node: ast.AST) -> Any:
    """Python's ordering of tuples: the first items that differ decide, else the lengths."""
    n, m = len(xs), len(ys)
    lens: dict[Any, bool] = {ast.Lt: n < m, ast.LtE: n <= m, ast.Gt: n > m, ast.GtE: n >= m}
    out: Any = z3.BoolVal(lens[op])
    for x, y in reversed(list(zip(xs, ys))):
        out = z3.If(equal(x, y, node), out, compare(op, x, y, node))
    return out


def compare(op: type, a: Any, b: Any, node: ast.AST) -> Any:
    if op is ast.Eq:
        return equal(a, b, node)
    if op is ast.NotEq:
        return z3.Not(equal(a, b, node))
    if op in (ast.Is, ast.IsNot):
        ok = (a is NONE or b is NONE
              or (isinstance(a, Val) and isinstance(b, Val) and a.ty == b.ty
                  and a.ty.kind in ("enum", "bool")))
        if not ok:
            raise _unsupported(f"'is' between {_describe(a)} and {_describe(b)} (only enum "
                               "members, bools and None)", node)
        r = equal(a, b, node)
        return r if op is ast.Is else z3.Not(r)
    if op in (ast.In, ast.NotIn):
        r = _contains(b, a, node)
        return r if op is ast.In else z3.Not(r)
    ta, tb = tuple_items(a), tuple_items(b)
    if op in _ORDER and ta is not None and tb is not None:
        return _lex(op, ta, tb, node)
    if isinstance(a, Val) and isinstance(b, Val):
        if a.ty == INT and b.ty == INT:
            table: dict[Any, Any] = {ast.Lt: a.e < b.e, ast.LtE: a.e <= b.e,
                                     ast.Gt: a.e > b.e, ast.GtE: a.e >= b.e}
            return table[op]
        if a.ty.kind == "set" and b.ty.kind == "set":
            u = unify(a, b)
            if u is not None:
                if u[0].ty == EMPTY:
                    return z3.BoolVal(op in (ast.LtE, ast.GtE))
                x, y = u[0].e, u[1].e
                if op is ast.LtE:
                    return z3.IsSubset(x, y)
                if op is ast.GtE:
                    return z3.IsSubset(y, x)
                if op is ast.Lt:
                    return z3.And(z3.IsSubset(x, y), x != y)
                return z3.And(z3.IsSubset(y, x), x != y)
    raise _unsupported(f"the comparison {_CMP.get(op, '?')} between {_describe(a)} and "
                       f"{_describe(b)}", node)


def _contains(b: Any, a: Any, node: ast.AST) -> Any:
    """Python's `a in b`: None is in no set, range or tuple of values (no error)."""
    if isinstance(a, Val) and a.ty.kind == "opt" and tuple_items(b) is None and not (
            isinstance(b, Val) and b.ty.kind in ("set", "seq") and b.ty.elem == a.ty) and not (
            isinstance(b, Val) and b.ty.kind == "map" and b.ty.items and b.ty.items[0] == a.ty):
        return z3.And(is_some(a.ty, a.e), _contains(b, some_value(a.ty, a.e), node))
    items = tuple_items(b)
    if items is not None:
        return z3.Or([equal(a, x, node) for x in items]) if items else z3.BoolVal(False)
    if isinstance(b, RangeObj):
        if a is NONE:
            return z3.BoolVal(False)
        if not (isinstance(a, Val) and a.ty == INT):
            raise _unsupported(f"'in' of {_describe(a)} in a range", node)
        return b.contains(a.e)
    if isinstance(b, Val) and b.ty.kind == "map":
        return maps.contains(b, a, node)
    if isinstance(b, Val) and b.ty.kind in ("set", "seq"):
        if b.ty == EMPTY:
            return z3.BoolVal(False)
        a2 = coerce(a, b.ty.elem)  # type: ignore[arg-type]
        if a2 is None:
            if a is NONE:
                return z3.BoolVal(False)
            raise _unsupported(f"'in' of {_describe(a)} in a {b.ty.describe()}", node)
        if b.ty.kind == "set":
            return z3.IsMember(a2.e, b.e)
        return z3.Contains(b.e, z3.Unit(a2.e))
    raise _unsupported(f"'in' of {_describe(b)}", node)


def _method(cls: type, name: str) -> Any:
    """A plain method of a component class (not of Component itself), or None."""
    for k in cls.__mro__:
        if k in (Component, object):
            return None
        if name in vars(k):
            v = vars(k)[name]
            return v if isinstance(v, types.FunctionType) else None
    return None
