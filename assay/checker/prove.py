"""The Python → Z3 translation behind `assay verify`: a whitelist of constructs, in one module.

A handler, action, guard or contract is read from its source (ast) and turned into Z3 terms by
static single assignment: each field and local is a term; an assignment makes a new term; the
two sides of an `if` (or of `a if c else b`, `and`, `or`) are merged with `If`; a `for` over a
literal finite domain is unrolled; a call to a helper function or method is inlined.  Nothing is
executed symbolically and no path is enumerated: a loop-free body is one formula.

Whatever is not on the whitelist raises `Unsupported` naming the construct and its line; the
caller turns that into an *unknown* verdict.  Nothing is approximated: a construct is either
translated exactly (with Python's meaning) or refused.

What is translated, and how (decisions):

* Values have a static type `Ty`: bool (Z3 Bool), int (Z3 Int, unbounded like Python's), str
  (Z3 String, equality and `+` only), a plain Enum (one Z3 EnumSort per class; IntEnum, StrEnum,
  Flag and enums with `__bool__` are refused), Peer (an uninterpreted sort: peers are only ever
  compared) and frozenset of those (Z3 array sets).  A bounded int (`Annotated[int, Range]`) is
  an int whose bounds are assumed on entry and proved on exit; they are not part of its type.
* `//` and `%` follow Python's floor semantics, not Z3's Euclidean div/mod:
  `a // b = If(b > 0, a div b, (-a) div (-b))` and `a % b = a - b * (a // b)`; each division
  records the side condition `b != 0`.  `/` (a float) and bitwise operators on ints are refused.
* `and`/`or`, chained comparisons and conditional expressions keep Python's short-circuit
  meaning: a partial operation (division, an `assert`) to the right is only checked under the
  condition that evaluates it.  Operands of `and`/`or` used as values must be bools; in a
  condition (`if`, `assert`, a contract's result) any operand's truth value is used exactly.
* Equality between values of different static types is Python's: False — except int/bool and
  Peer/str, which Python may find equal, and which are refused.
* `len` of a frozenset of Enum members (or bools) is the sum over the members; of a set of peers
  it has no meaning in this encoding (Z3 array sets have no cardinality), except the emptiness
  tests `len(s) == 0`, `len(s) > 0`, `len(s) != 0`, `len(s) >= 1`, ...; anything else is
  refused.
* A bare `frozenset` field's element type is inferred from how the component uses it
  (`self.f | {m.sender}`, `self.f == self.port.peers`, `x in self.f`, `self.f = ...`): every hint
  must agree, else the field is opaque.  The inference only picks a candidate; every write is
  then type-checked by the translation, so a wrong guess gives unknown, never a wrong proof.
  The inferred element type is an implicit invariant (like a declared one): the proof of one
  handler assumes it of the state before, and holds as long as every other writer of the
  field is proved too.
* A field whose type has no Z3 form (tuple, Optional, a Message, a set of those) is *opaque*:
  reading or writing it is refused; a handler that does not touch it keeps it unchanged.
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
  Message classes, functions (inlined) and the builtins `len`, `min`, `max`, `abs`, `bool`,
  `int`, `frozenset`, `range` (in `for`) are understood.
* Names follow Python's scoping: a name bound anywhere in a function is local throughout it,
  so reading it before it is bound is refused (it would raise UnboundLocalError), and a local
  bound on only some paths cannot be read after they join.
* `range(lo, hi[, step])` with a constant step is a value for `in` and for `over=` domains;
  `for` unrolls only literal domains (a tuple or list display, `range` of constants, an Enum
  class), never a set (its order is unknown).
* Peers: `m.sender`, `self.<port>.peers`, Peer-typed fields.  A port's peers are a set fixed
  for the step, for any wiring: a single port's are `{p}` or `{}`; a port the class sends on
  (by the same test as the system validation) has at least one peer, since validation
  guarantees it is connected.  A sender is a peer of the handler's port (of any port, for a
  handler without one), except for a message type the component also sets as a timer
  (`self.after(d, M())`), whose sender may be None: reading `m.sender` there is refused.
  `self.name` is refused.
* Contracts (requires, ensures, invariants, guards) are translated like bodies but may not
  assign fields or send; a contract holds when it returns a true value without raising.
* Lambdas are found in their file's ast by the first line of their code object, their argument
  names, and the source positions of their instructions (`co_positions`), so several lambdas on
  one line are told apart; if two different lambdas still match, the contract is refused.
* Translations are cached per component class and function (`ComponentEncoding`); Z3 terms
  live in Z3's global context, so a cached term serves every later solver.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import enum
import linecache
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from assay.model.component import Component, ComponentInfo
from assay.model.message import Message
from assay.model.types import (
    Peer,
    TypeSpec,
    _Bool,
    _Enum,
    _FrozenSet,
    _Int,
    _Peer,
    _Str,
)

MAX_UNROLL = 256          # iterations of one unrolled `for`
MAX_INLINE_DEPTH = 16     # nested inlined calls


class Unsupported(Exception):
    """A construct the translation does not cover: the obligation that needs it is unknown."""

    def __init__(self, what: str, line: int | None = None, file: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.line = line
        self.file = file

    def __str__(self) -> str:
        return f"{self.what} (line {self.line})" if self.line else self.what


def _unsupported(what: str, node: ast.AST | None) -> Unsupported:
    return Unsupported(what, getattr(node, "lineno", None))


# --- static types ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ty:
    kind: str                       # bool | int | str | peer | enum | set
    cls: Any = None                 # the Enum class of an enum
    elem: Ty | None = None          # the element type of a set (None: the empty literal)

    def describe(self) -> str:
        if self.kind == "enum":
            return self.cls.__name__
        if self.kind == "set":
            return f"frozenset[{self.elem.describe()}]" if self.elem else "frozenset()"
        return {"peer": "Peer"}.get(self.kind, self.kind)


BOOL, INT, STR, PEER = Ty("bool"), Ty("int"), Ty("str"), Ty("peer")
EMPTY = Ty("set")


def enum_ty(cls: type) -> Ty:
    return Ty("enum", cls)


def set_ty(elem: Ty) -> Ty:
    return Ty("set", elem=elem)


def plain_enum(cls: Any) -> bool:
    """An Enum whose members compare only with themselves and are always true."""
    return (isinstance(cls, type) and issubclass(cls, enum.Enum)
            and not issubclass(cls, int | str | enum.Flag) and len(cls) > 0
            and not any("__bool__" in vars(k) or "__len__" in vars(k) or "__eq__" in vars(k)
                        for k in cls.__mro__ if k not in (enum.Enum, object)))


_PEER_SORT: z3.SortRef | None = None
_ENUMS: dict[type, tuple[z3.SortRef, dict[Any, z3.ExprRef], dict[str, Any]]] = {}


def peer_sort() -> z3.SortRef:
    global _PEER_SORT
    if _PEER_SORT is None:
        _PEER_SORT = z3.DeclareSort("Peer")
    return _PEER_SORT


def enum_sort(cls: type) -> tuple[z3.SortRef, dict[Any, z3.ExprRef], dict[str, Any]]:
    """The Z3 EnumSort of an Enum class: (sort, member -> constant, constant name -> member)."""
    got = _ENUMS.get(cls)
    if got is None:
        tag = f"{id(cls):x}"
        members = list(cls)  # type: ignore[call-overload]
        sort, consts = z3.EnumSort(f"{cls.__name__}@{tag}",
                                   [f"{cls.__name__}.{m.name}@{tag}" for m in members])
        got = _ENUMS[cls] = (sort, dict(zip(members, consts)),
                             {c.decl().name(): m for m, c in zip(members, consts)})
    return got


def sort_of(ty: Ty) -> z3.SortRef:
    k = ty.kind
    if k == "bool":
        return z3.BoolSort()
    if k == "int":
        return z3.IntSort()
    if k == "str":
        return z3.StringSort()
    if k == "peer":
        return peer_sort()
    if k == "enum":
        return enum_sort(ty.cls)[0]
    assert ty.elem is not None
    return z3.SetSort(sort_of(ty.elem))


def finite(ty: Ty) -> bool:
    return ty.kind in ("bool", "enum")


def members(ty: Ty) -> list[z3.ExprRef]:
    if ty.kind == "bool":
        return [z3.BoolVal(False), z3.BoolVal(True)]
    return list(enum_sort(ty.cls)[1].values())


@dataclass(frozen=True)
class Opaque:
    """A field (or message field) the translation cannot represent; `why` says what it is."""

    why: str


def ty_of_spec(spec: TypeSpec, elem_hint: Ty | None = None) -> Ty | Opaque:
    """The static type of a declared field type, or Opaque."""
    if isinstance(spec, _Bool):
        return BOOL
    if isinstance(spec, _Int):
        return INT
    if isinstance(spec, _Peer):
        return PEER
    if isinstance(spec, _Str):
        return STR
    if isinstance(spec, _Enum):
        if plain_enum(spec.cls):
            return enum_ty(spec.cls)
        return Opaque(f"of type {spec.cls.__name__} (only plain Enums are translated)")
    if isinstance(spec, _FrozenSet):
        if isinstance(spec.elem, _FrozenSet):
            return Opaque(f"of type {spec.describe()}")
        if type(spec.elem).__name__ == "_AnyValue":
            if elem_hint is None:
                return Opaque("of type frozenset, whose element type cannot be inferred from "
                              "its uses; annotate it, e.g. frozenset[Peer]")
            return set_ty(elem_hint)
        e = ty_of_spec(spec.elem)
        if isinstance(e, Opaque) or e.kind == "set":
            return Opaque(f"of type {spec.describe()}")
        return set_ty(e)
    return Opaque(f"of type {spec.describe()}")


# --- values and the objects a body can name -------------------------------------------------------

class Val:
    """A value of a static type, as a Z3 term."""

    __slots__ = ("ty", "e")

    def __init__(self, ty: Ty, e: Any) -> None:
        self.ty = ty
        self.e = e

    def __repr__(self) -> str:
        return f"Val({self.ty.describe()}, {self.e})"


class _NoneType:
    def __repr__(self) -> str:
        return "None"


NONE = _NoneType()


@dataclass(eq=False)
class SelfObj:
    """`self` (fields None: the current state of the body) or a fixed state (contracts, `old`)."""

    fields: dict[str, Any] | None
    ports: bool = True
    label: str = "self"


@dataclass(eq=False)
class MsgObj:
    """The received message `m`: field values, and the sender (a Val, or why it is unknown)."""

    cls: type
    fields: dict[str, Any]
    sender: Any


@dataclass(eq=False)
class MsgVal:
    """A message built in the body: `Data(self.bit, self.next)`."""

    cls: type
    fields: dict[str, Val]


@dataclass(eq=False)
class PortObj:
    name: str


@dataclass(eq=False)
class ConstObj:
    """A Python object named in the code: a class, a function, a module."""

    value: Any


@dataclass(eq=False)
class Unbound:
    name: str


@dataclass(eq=False)
class RangeObj:
    """`range(lo, hi, step)` with int bounds and a constant step: a domain, or `in`'s right."""

    lo: Any
    hi: Any
    step: int

    def contains(self, x: Any) -> Any:
        inside = z3.And(x >= self.lo, x < self.hi) if self.step > 0 else \
            z3.And(x <= self.lo, x > self.hi)
        if abs(self.step) == 1:
            return inside
        return z3.And(inside, (x - self.lo) % abs(self.step) == 0)


def empty_set(elem: Ty) -> Val:
    return Val(set_ty(elem), z3.EmptySet(sort_of(elem)))


def coerce(v: Any, ty: Ty) -> Val | None:
    """`v` as a value of type `ty` (the empty literal takes any set type), or None."""
    if not isinstance(v, Val):
        return None
    if v.ty == ty:
        return v
    if v.ty == EMPTY and ty.kind == "set" and ty.elem is not None:
        return empty_set(ty.elem)
    return None


def unify(a: Val, b: Val) -> tuple[Val, Val] | None:
    """Both values at one type, or None."""
    if a.ty == b.ty:
        return a, b
    if a.ty == EMPTY and b.ty.kind == "set":
        return (empty_set(b.ty.elem), b) if b.ty.elem else None
    if b.ty == EMPTY and a.ty.kind == "set":
        return (a, empty_set(a.ty.elem)) if a.ty.elem else None
    return None


def conj(a: Any, b: Any) -> Any:
    if z3.is_true(a):
        return b
    if z3.is_true(b):
        return a
    if z3.is_false(a) or z3.is_false(b):
        return z3.BoolVal(False)
    return z3.And(a, b)


def disj(a: Any, b: Any) -> Any:
    if z3.is_false(a):
        return b
    if z3.is_false(b):
        return a
    if z3.is_true(a) or z3.is_true(b):
        return z3.BoolVal(True)
    return z3.Or(a, b)


def ite(c: Any, a: Any, b: Any) -> Any:
    if a.eq(b):
        return a
    if z3.is_true(c):
        return a
    if z3.is_false(c):
        return b
    return z3.If(c, a, b)


def py_const(v: Any, node: ast.AST | None = None) -> Any:
    """A Python constant (a global, a closure cell, a default) as a value or object."""
    if v is None:
        return NONE
    if type(v) is bool:
        return Val(BOOL, z3.BoolVal(v))
    if type(v) is int:
        return Val(INT, z3.IntVal(v))
    if type(v) is str:
        return Val(STR, z3.StringVal(v))
    if isinstance(v, enum.Enum):
        if not plain_enum(type(v)):
            raise _unsupported(f"the enum member {v!r} (only plain Enums are translated)", node)
        return Val(enum_ty(type(v)), enum_sort(type(v))[1][v])
    if type(v) is frozenset:
        vals = [py_const(x, node) for x in v]
        if not vals:
            return Val(EMPTY, None)
        if isinstance(v, frozenset) and any(isinstance(x, Peer) for x in v):
            raise _unsupported("a constant set of peers", node)
        return set_literal(vals, node)
    if isinstance(v, Peer):
        raise _unsupported(f"the constant peer {str(v)!r}", node)
    if isinstance(v, type) and (issubclass(v, enum.Enum) or issubclass(v, Message)):
        return ConstObj(v)
    if isinstance(v, types.FunctionType | types.BuiltinFunctionType | types.ModuleType) \
            or v is range:
        return ConstObj(v)
    raise _unsupported(f"a {type(v).__name__} constant ({_short(v)})", node)


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def set_literal(vals: list[Any], node: ast.AST | None) -> Val:
    elems = [v for v in vals if isinstance(v, Val)]
    if len(elems) != len(vals):
        raise _unsupported("a set of values the verifier does not translate", node)
    ty = elems[0].ty
    if ty.kind == "set" or any(v.ty != ty for v in elems):
        raise _unsupported("a set whose elements have different types", node)
    s = z3.EmptySet(sort_of(ty))
    for v in elems:
        s = z3.SetAdd(s, v.e)
    return Val(set_ty(ty), s)


# --- finding the source of a function or a lambda -------------------------------------------------

@dataclass
class _FileIndex:
    lambdas: dict[int, list[ast.Lambda]]
    defs: dict[int, list[ast.FunctionDef]]


_FILES: dict[tuple[str, int], _FileIndex] = {}
_NODES: dict[Any, ast.AST] = {}


def _file_index(filename: str, module_globals: dict[str, Any] | None) -> _FileIndex:
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        raise Unsupported(f"the source of {filename} is not available")
    key = (filename, hash("".join(lines)))
    idx = _FILES.get(key)
    if idx is None:
        try:
            tree = ast.parse("".join(lines), filename)
        except SyntaxError:
            raise Unsupported(f"the source of {filename} does not parse") from None
        idx = _FileIndex({}, {})
        for n in ast.walk(tree):
            if isinstance(n, ast.Lambda):
                idx.lambdas.setdefault(n.lineno, []).append(n)
            elif isinstance(n, ast.FunctionDef):
                first = n.decorator_list[0].lineno if n.decorator_list else n.lineno
                idx.defs.setdefault(first, []).append(n)
        _FILES[key] = idx
    return idx


def clear_caches() -> None:
    """Forget parsed sources and message types (after a spec file changed in place)."""
    _FILES.clear()
    _NODES.clear()
    _MSG_TYPES.clear()


def function_node(fn: Any) -> ast.FunctionDef | ast.Lambda:
    """The ast of a function or lambda, found in its file; Unsupported if ambiguous."""
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        raise Unsupported(f"{_short(fn)} is not a Python function")
    got = _NODES.get(code)
    if got is not None:
        return got  # type: ignore[return-value]
    idx = _file_index(code.co_filename, getattr(fn, "__globals__", None))
    argnames = list(code.co_varnames[:code.co_argcount])
    if code.co_name == "<lambda>":
        cands = [n for n in idx.lambdas.get(code.co_firstlineno, ())
                 if [a.arg for a in n.args.args] == argnames]
        if len(cands) > 1:
            cands = _by_positions(code, cands)
        if len(cands) > 1 and all(ast.dump(c) == ast.dump(cands[0]) for c in cands):
            cands = cands[:1]        # the same text twice means the same function
        where = f"line {code.co_firstlineno}"
        if not cands:
            raise Unsupported(f"cannot find the source of the lambda on {where}",
                              code.co_firstlineno)
        if len(cands) > 1:
            raise Unsupported(f"cannot tell apart the {len(cands)} lambdas on {where}",
                              code.co_firstlineno)
        node: ast.AST = cands[0]
    else:
        cands2 = [n for n in idx.defs.get(code.co_firstlineno, ()) if n.name == code.co_name]
        if len(cands2) != 1:
            raise Unsupported(f"cannot find the source of function {code.co_name}",
                              code.co_firstlineno)
        node = cands2[0]
    _NODES[code] = node
    return node  # type: ignore[return-value]


def _by_positions(code: types.CodeType, cands: list[ast.Lambda]) -> list[ast.Lambda]:
    """The lambdas whose body spans every source position of the code's instructions."""
    try:
        pos = [p for p in code.co_positions()
               if p[0] is not None and p[2] is not None and p[3] is not None
               and not (p[2] == 0 and p[3] == 0)]
    except AttributeError:                  # Python < 3.11: no positions
        return cands
    if not pos:
        return cands

    def spans(n: ast.Lambda) -> bool:
        b = n.body
        lo = (b.lineno, b.col_offset)
        hi = (b.end_lineno, b.end_col_offset)
        return all(lo <= (p[0], p[2]) and (p[1], p[3]) <= hi for p in pos)  # type: ignore
    return [n for n in cands if spans(n)]


def fn_names(fn: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The closure cells and the globals a function's free names resolve in."""
    fn = getattr(fn, "__func__", fn)
    closure: dict[str, Any] = {}
    code = fn.__code__
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        with contextlib.suppress(ValueError):          # an empty cell: the name is unbound
            closure[name] = cell.cell_contents
    return closure, fn.__globals__


# --- the translation ------------------------------------------------------------------------------

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


class Translator:
    """Translates one body or contract of one component against its encoding."""

    def __init__(self, enc: ComponentEncoding, contract: bool) -> None:
        self.enc = enc
        self.contract = contract
        self.checks: list[Check] = []
        self.sends: list[SendSite] = []
        self.written: set[str] = set()
        self.depth = 0
        self.stack: list[Any] = []

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
            if len(s.targets) == 1 and isinstance(s.targets[0], ast.Tuple | ast.List):
                tgt = s.targets[0]
                if not isinstance(s.value, ast.Tuple | ast.List) \
                        or len(s.value.elts) != len(tgt.elts):
                    raise _unsupported("tuple unpacking of a value that is not a tuple "
                                       "display of the same length", s)
                vals = [self.ex(e, st) for e in s.value.elts]
                for t, v in zip(tgt.elts, vals):
                    self.assign(t, v, st, s)
                return
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
        if not isinstance(s.target, ast.Name):
            raise _unsupported("a for loop whose target is not a name", s)
        domain = self.domain(s.iter, st, s)
        if len(domain) > MAX_UNROLL:
            raise _unsupported(f"a for loop over {len(domain)} values (at most {MAX_UNROLL} "
                               "are unrolled)", s)
        for v in domain:
            if z3.is_false(st.pc):
                return
            st.locs[s.target.id] = v
            self.block(s.body, st)

    def domain(self, it: ast.expr, st: St, s: ast.AST) -> list[Any]:
        """The values of a literal finite domain, in iteration order."""
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
        if isinstance(it, ast.Name | ast.Attribute):
            v = self.ex(it, st)
            if isinstance(v, ConstObj) and isinstance(v.value, type) \
                    and issubclass(v.value, enum.Enum):
                if not plain_enum(v.value):
                    raise _unsupported(f"a for loop over {v.value.__name__}", s)
                return [py_const(m, s) for m in v.value]
            if isinstance(v, Val) and v.ty.kind == "set":
                raise _unsupported("a for loop over a frozenset (not a literal finite domain; "
                                   "its order is not known)", s)
        raise _unsupported("a for loop over something other than a literal finite domain "
                           "(a tuple or list display, range(constants) or an Enum class)", s)

    def assign(self, t: ast.expr, v: Any, st: St, s: ast.AST) -> None:
        if isinstance(t, ast.Name):
            st.locs[t.id] = v
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
        raise _unsupported(f"an assignment to {construct(t)}", s)

    def check(self, st: St, ok: Any, node: ast.AST, what: str) -> None:
        if z3.is_true(ok):
            return
        line = getattr(node, "lineno", 0)
        self.checks.append(Check(st.pc, ok, line, getattr(node, "end_lineno", None) or line,
                                 what))
        st.pc = conj(st.pc, ok)

    # --- expressions ------------------------------------------------------------------------------

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
            enter = conj(before, v if is_and else z3.Not(v))
            st.pc = enter
            w = conv(nxt, st)
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
        v = self.ex(node.operand, st)
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
                return Val(u[0].ty, e)
        raise _unsupported(f"the operator {sym} on {_describe(a)} and {_describe(b)}", node)

    def ex_IfExp(self, node: ast.IfExp, st: St) -> Any:
        c = self.cond(node.test, st)
        pc0 = st.pc
        st.pc = ea = conj(pc0, c)
        a = self.ex(node.body, st)
        pa = st.pc
        st.pc = eb = conj(pc0, z3.Not(c))
        b = self.ex(node.orelse, st)
        pb = st.pc
        st.pc = pc0 if (pa is ea and pb is eb) else disj(pa, pb)
        return _merge(c, a, b, "the conditional expression", node)

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
                r = compare(type(op), left, right, node)
            if st.pc is enter:
                st.pc = before
            elif result is not None:        # the first comparison is always evaluated
                st.pc = disj(conj(before, z3.Not(result)), st.pc)
            result = r if result is None else z3.And(result, r)
            left = right
        return Val(BOOL, result)

    def _len_emptiness(self, node: ast.Compare, st: St) -> Any:
        """`len(s) == 0` and friends for a set without cardinality (a set of peers)."""
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
        if not (isinstance(s, Val) and s.ty.kind == "set") or (s.ty.elem and finite(s.ty.elem)):
            return None
        if s.ty == EMPTY:
            empty: Any = z3.BoolVal(True)
        else:
            empty = s.e == z3.EmptySet(sort_of(s.ty.elem))  # type: ignore[arg-type]
        k = rhs.value
        table = {(ast.Eq, 0): empty, (ast.NotEq, 0): z3.Not(empty), (ast.Gt, 0): z3.Not(empty),
                 (ast.GtE, 1): z3.Not(empty), (ast.Lt, 1): empty, (ast.LtE, 0): empty,
                 (ast.GtE, 0): z3.BoolVal(True), (ast.Lt, 0): z3.BoolVal(False)}
        r = table.get((op, k))
        if r is None:
            raise _unsupported(f"len() of a {s.ty.describe()} compared with {k} (sets of peers "
                               "have no cardinality in this encoding; only emptiness tests "
                               "are translated)", node)
        return Val(BOOL, r)

    def _is_builtin_len(self, func: ast.expr, st: St) -> bool:
        try:
            f = self.ex(func, st)
        except Unsupported:
            return False
        return isinstance(f, ConstObj) and f.value is len

    def ex_Set(self, node: ast.Set, st: St) -> Any:
        return set_literal([self.ex(e, st) for e in node.elts], node)

    def ex_Call(self, node: ast.Call, st: St) -> Any:
        f = node.func
        if isinstance(f, ast.Attribute):
            recv = self.ex(f.value, st)
            if isinstance(recv, PortObj):
                return self.send(recv, f.attr, node, st)
            if isinstance(recv, SelfObj):
                if f.attr in ("after", "cancel") and recv.fields is None:
                    return self.timer(f.attr, node, st)
                meth = _method(self.enc.cls, f.attr)
                if meth is not None and f.attr not in self.enc.types:
                    if node.keywords:
                        raise _unsupported("a method call with keyword arguments", node)
                    args = [self.ex(a, st) for a in node.args]
                    return self.run_function(meth, [recv, *args], st, node)
                raise _unsupported(f"the call {recv.label}.{f.attr}()", node)
            if isinstance(recv, Val):
                raise _unsupported(f"the method call .{f.attr}() on a {recv.ty.describe()}",
                                   node)
            if not isinstance(recv, ConstObj):
                raise _unsupported(f"the method call .{f.attr}() on {_describe(recv)}", node)
            callee = self.ex_Attribute(f, st)
        else:
            callee = self.ex(f, st)
        if not isinstance(callee, ConstObj):
            raise _unsupported(f"a call of {_describe(callee)}", node)
        fn = callee.value
        if isinstance(fn, type) and issubclass(fn, Message):
            return self.build_message(fn, node, st)
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
                    return v
            raise _unsupported("frozenset() of something other than a set or a display", node)
        args = [self.ex(a, st) for a in node.args]
        if fn is len:
            if len(args) == 1 and isinstance(args[0], Val) and args[0].ty.kind == "set":
                s = args[0]
                if s.ty == EMPTY:
                    return Val(INT, z3.IntVal(0))
                if finite(s.ty.elem):  # type: ignore[arg-type]
                    return Val(INT, z3.Sum([z3.If(z3.IsMember(c, s.e), 1, 0)
                                            for c in members(s.ty.elem)]))  # type: ignore
                raise _unsupported(f"len() of a {s.ty.describe()} (sets of peers have no "
                                   "cardinality in this encoding)", node)
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
        if fn is bool:
            if len(args) == 1:
                return Val(BOOL, truth(args[0], node))
            if not args:
                return Val(BOOL, z3.BoolVal(False))
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

    def build_message(self, cls: type, node: ast.Call, st: St) -> MsgVal:
        fields = cls.__assay_fields__  # type: ignore[attr-defined]
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None
                                                                      for k in node.keywords):
            raise _unsupported("a message built with * or ** arguments", node)
        if len(node.args) > len(fields):
            raise _unsupported(f"{cls.__name__}(...) with too many arguments", node)
        given: dict[str, Any] = {}
        for n, a in zip(fields, node.args):
            given[n] = self.ex(a, st)
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
                v = msg.fields[n].e
                parts.append((z3.And(v >= rng[0], v <= rng[1]),
                              f"{msg.cls.__name__}.{n} is in [{rng[0]}, {rng[1]}]"))
        return parts

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
        if to_node is not None:
            to = self.ex(to_node, st)
            if to is NONE:
                to = None
            elif not (isinstance(to, Val) and to.ty == PEER):
                raise _unsupported(f"send(to=...) given {_describe(to)} (the verifier "
                                   "translates peers only)", node)
        if not isinstance(msg, MsgVal):
            raise _unsupported(f"{attr}() of {_describe(msg)}, not a message built with its "
                               "class", node)
        if attr == "send":
            if to is not None:
                parts.append((z3.IsMember(to.e, penc.peers.e),
                              f"the destination is a peer of port {port.name}"))
            elif penc.many:
                parts.append((z3.BoolVal(False),
                              f"send() on the many-port {port.name} names its destination "
                              "(to=)"))
        parts += self._message_parts(msg)
        parts += port_contract(self.enc, port.name, msg)
        site = SendSite(attr, port.name, msg, to, st.pc, parts, node.lineno,
                        node.end_lineno or node.lineno)
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
                        node.end_lineno or node.lineno)
        self.sends.append(site)
        st.pc = conj(st.pc, site.ok)
        return NONE


_BUILTINS = (len, min, max, abs, frozenset, bool, int, range)
_LIBRARY_MODULES = ("builtins", "operator", "functools", "itertools", "math", "random", "time",
                    "os", "sys")


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


def _method(cls: type, name: str) -> Any:
    """A plain method of a component class (not of Component itself), or None."""
    for k in cls.__mro__:
        if k in (Component, object):
            return None
        if name in vars(k):
            v = vars(k)[name]
            return v if isinstance(v, types.FunctionType) else None
    return None


def _is_len_call(n: ast.expr) -> bool:
    return (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "len"
            and len(n.args) == 1 and not n.keywords)


def _load(t: ast.expr) -> ast.expr:
    if isinstance(t, ast.Name):
        return ast.copy_location(ast.Name(t.id, ast.Load()), t)
    if isinstance(t, ast.Attribute):
        return ast.copy_location(ast.Attribute(t.value, t.attr, ast.Load()), t)
    raise _unsupported(f"an augmented assignment to {construct(t)}", t)


def _assign_state(dst: St, src: St) -> None:
    dst.pc, dst.fields, dst.wline, dst.locs = src.pc, src.fields, src.wline, src.locs


def _int_literal(v: Any) -> int | None:
    if isinstance(v, Val) and v.ty == INT:
        e = z3.simplify(v.e)
        if z3.is_int_value(e):
            return e.as_long()
    return None


def _describe(v: Any) -> str:
    if isinstance(v, Val):
        return f"a {v.ty.describe()}"
    if v is NONE:
        return "None"
    if isinstance(v, SelfObj):
        return v.label
    if isinstance(v, MsgObj | MsgVal):
        return f"a {v.cls.__name__} message"
    if isinstance(v, PortObj):
        return f"the port {v.name}"
    if isinstance(v, RangeObj):
        return "a range"
    if isinstance(v, ConstObj):
        return getattr(v.value, "__name__", None) or _short(v.value)
    return type(v).__name__


def _merge(c: Any, a: Any, b: Any, what: str, node: ast.AST) -> Any:
    if a is b:
        return a
    if isinstance(a, Val) and isinstance(b, Val):
        if a.ty == EMPTY and b.ty == EMPTY:
            return a
        u = unify(a, b)
        if u is None:
            raise _unsupported(f"{what} has type {a.ty.describe()} on one path and "
                               f"{b.ty.describe()} on another", node)
        return Val(u[0].ty, ite(c, u[0].e, u[1].e))
    if a is NONE and b is NONE:
        return NONE
    if isinstance(a, Opaque) and isinstance(b, Opaque):
        return a
    raise _unsupported(f"{what} is {_describe(a)} on one path and {_describe(b)} on another",
                       node)


def floor_divmod(x: Any, y: Any) -> tuple[Any, Any]:
    """Python's `x // y` and `x % y` (floor division) in Z3, for y != 0."""
    k = z3.simplify(y)
    if z3.is_int_value(k) and k.as_long() > 0:
        return x / y, x % y          # Euclidean and floor agree for a positive divisor
    q = z3.If(y > 0, x / y, (-x) / (-y))
    return q, x - y * q


def truth(v: Any, node: ast.AST | None) -> Any:
    """Python's truth value of a value, exactly."""
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
    if v is NONE:
        return z3.BoolVal(False)
    raise _unsupported(f"the truth value of {_describe(v)}", node)


def equal(a: Any, b: Any, node: ast.AST) -> Any:
    """Python's `a == b`, exactly."""
    if a is NONE or b is NONE:
        if a is NONE and b is NONE:
            return z3.BoolVal(True)
        if isinstance(a, Val) or isinstance(b, Val):
            return z3.BoolVal(False)
    if isinstance(a, Val) and isinstance(b, Val):
        u = unify(a, b)
        if u is not None:
            if u[0].ty == EMPTY:
                return z3.BoolVal(True)
            return u[0].e == u[1].e
        kinds = {a.ty.kind, b.ty.kind}
        if kinds in ({"int", "bool"}, {"peer", "str"}) or kinds == {"set"}:
            raise _unsupported(f"== between a {a.ty.describe()} and a {b.ty.describe()}", node)
        return z3.BoolVal(False)
    raise _unsupported(f"== between {_describe(a)} and {_describe(b)}", node)


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
        if isinstance(b, RangeObj):
            if not (isinstance(a, Val) and a.ty == INT):
                raise _unsupported(f"'in' of {_describe(a)} in a range", node)
            r = b.contains(a.e)
            return r if op is ast.In else z3.Not(r)
        if isinstance(b, Val) and b.ty.kind == "set":
            if b.ty == EMPTY:
                r = z3.BoolVal(False)
            elif isinstance(a, Val) and a.ty == b.ty.elem:
                r = z3.IsMember(a.e, b.e)
            else:
                raise _unsupported(f"'in' of {_describe(a)} in a {b.ty.describe()}", node)
            return r if op is ast.In else z3.Not(r)
        raise _unsupported(f"'in' of {_describe(b)}", node)
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


# --- message types --------------------------------------------------------------------------------

_MSG_TYPES: dict[type, dict[str, tuple[Ty | Opaque, tuple[int, int] | None]]] = {}


def message_types(cls: type) -> dict[str, tuple[Ty | Opaque, tuple[int, int] | None]]:
    """Each field of a message class: its static type (or Opaque) and its Range, if any."""
    got = _MSG_TYPES.get(cls)
    if got is None:
        got = {}
        for n, spec in cls.field_types().items():  # type: ignore[attr-defined]
            rng = (spec.range.lo, spec.range.hi) if isinstance(spec, _Int) and spec.range \
                else None
            got[n] = (ty_of_spec(spec), rng)
        _MSG_TYPES[cls] = got
    return got


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
        self.specs: dict[str, TypeSpec] = {}
        for f, spec in zip(info.fields, info.types):
            self.specs[f] = spec
            ty = ty_of_spec(spec, hints.get(f))
            self.types[f] = ty
            if isinstance(spec, _Int) and spec.range is not None:
                self.ranges[f] = (spec.range.lo, spec.range.hi)
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
        for f, (lo, hi) in self.ranges.items():
            v = values[f]
            if isinstance(v, Val):
                out.append(z3.And(v.e >= lo, v.e <= hi))
        return out

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
                assume.append(z3.And(v >= rng[0], v <= rng[1]))
        if self.timer_messages is None or cls in self.timer_messages:
            sender: Any = (f"m.sender of a {cls.__name__}, which may also arrive as a timer of "
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
        out += [(p, _param(p, 1), h.message) for p, _ in h.requires]
        out += [(p, _param(p, 2), h.message) for p, _ in h.ensures]
    for a in info.actions:
        out.append((a.fn, None, None))
        if a.when is not None:
            out.append((a.when, None, None))
        if callable(a.over):
            out.append((a.over, None, None))
        out += [(p, None, None) for p, _ in (*a.requires, *a.ensures)]
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


# --- from Z3 values back to Python, and Python constants to Z3 -----------------------------------

def to_z3(v: Any, ty: Ty, peers: dict[str, Any]) -> Any:
    """A Python value as a Z3 term of type `ty`; `peers` names the Peer constants by name."""
    k = ty.kind
    if k == "bool" and type(v) is bool:
        return z3.BoolVal(v)
    if k == "int" and type(v) is int:
        return z3.IntVal(v)
    if k == "str" and isinstance(v, str) and not isinstance(v, Peer):
        return z3.StringVal(v)
    if k == "peer" and isinstance(v, str):
        c = peers.get(str(v))
        if c is None:
            c = peers[str(v)] = z3.Const(f"peer:{v}", peer_sort())
        return c
    if k == "enum" and type(v) is ty.cls:
        return enum_sort(ty.cls)[1][v]
    if k == "set" and type(v) is frozenset:
        s = z3.EmptySet(sort_of(ty.elem))  # type: ignore[arg-type]
        for x in sorted(v, key=repr):
            s = z3.SetAdd(s, to_z3(x, ty.elem, peers))  # type: ignore[arg-type]
        return s
    raise Unsupported(f"the value {_short(v)} as a {ty.describe()}")


class ModelReader:
    """Reads Python values out of a Z3 model; peers get readable names."""

    def __init__(self, model: z3.ModelRef, taken: set[str],
                 peer_terms: tuple[Any, ...] | list[Any] = ()) -> None:
        """`peer_terms`: Peer constants whose values must be among the peers read (a model
        leaves out constants that do not matter to it; completing them adds peers)."""
        self.model = model
        self.names: dict[str, str] = {}
        self.taken = set(taken)
        universe = model.get_universe(peer_sort()) if _PEER_SORT is not None else None
        self.universe: list[Any] = list(universe or [])
        for t in peer_terms:
            x = model.eval(t, model_completion=True)
            if not any(str(x) == str(u) for u in self.universe):
                self.universe.append(x)
        for u in self.universe:
            self._name(u)

    def _name(self, e: Any) -> str:
        key = str(e)
        got = self.names.get(key)
        if got is None:
            i = len(self.names) + 1
            while f"peer{i}" in self.taken:
                i += 1
            got = self.names[key] = f"peer{i}"
            self.taken.add(got)
        return got

    def value(self, v: Val | Any, ty: Ty | None = None) -> Any:
        if isinstance(v, Val):
            ty, e = v.ty, v.e
        else:
            e = v
        assert ty is not None
        m = self.model
        k = ty.kind
        x = m.eval(e, model_completion=True)
        if k == "bool":
            return z3.is_true(x)
        if k == "int":
            return x.as_long()
        if k == "str":
            return x.as_string()
        if k == "enum":
            return enum_sort(ty.cls)[2][x.decl().name()]
        if k == "peer":
            if not any(str(x) == str(u) for u in self.universe):
                self.universe.append(x)
            return Peer(self._name(x))
        assert ty.elem is not None
        if finite(ty.elem) or ty.elem.kind == "peer":
            cands = members(ty.elem) if finite(ty.elem) else list(self.universe)
            out = set()
            for c in cands:
                if z3.is_true(m.eval(z3.IsMember(c, e), model_completion=True)):
                    out.add(self.value(c, ty.elem))
            return frozenset(out)
        return frozenset(self.value(c, ty.elem) for c in _finite_set(x))


def _finite_set(x: Any) -> list[Any]:
    """The members of a Z3 set value built as stores over an all-false constant array."""
    out = []
    seen: set[str] = set()
    while z3.is_app_of(x, z3.Z3_OP_STORE):
        arr, idx, val = x.arg(0), x.arg(1), x.arg(2)
        if str(idx) not in seen:          # the outermost store of an index wins
            seen.add(str(idx))
            if z3.is_true(val):
                out.append(idx)
        x = arr
    if z3.is_app_of(x, z3.Z3_OP_CONST_ARRAY) and z3.is_false(x.arg(0)):
        return out
    raise Unsupported("the model has an infinite set")
