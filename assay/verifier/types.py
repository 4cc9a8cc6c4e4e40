"""The translation's static types and values: `Ty` and its Z3 sorts, `Val`, the symbolic
objects a body manipulates (self, a message, a port), `Unsupported`, the way back from a
Z3 model to Python values, and the `Solver` every obligation is decided with.  The decisions
behind them are in `prove`'s docstring.
"""
from __future__ import annotations

import ast
import enum
import time
import types
from dataclasses import dataclass
from typing import Any

import z3

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


class Solver(z3.Solver):
    """Z3's solver, except that Ctrl-C stops the verifier, not only the current check.

    During a check Z3 catches SIGINT itself: it abandons that check (unknown, "interrupted
    from keyboard", or "canceled" as a timeout says) and Python never sees the signal, so each
    Ctrl-C would only turn one obligation into `unknown`.  A check canceled before its timeout
    could have fired was interrupted."""

    _timeout: float | None = None           # seconds, as given to set("timeout", ms)

    def set(self, *args: Any, **keys: Any) -> None:
        super().set(*args, **keys)
        pairs = dict(zip(args[::2], args[1::2]), **keys)
        if "timeout" in pairs:
            self._timeout = pairs["timeout"] / 1000

    def check(self, *assumptions: Any) -> z3.CheckSatResult:
        started = time.monotonic()
        r = super().check(*assumptions)
        if r == z3.unknown:
            why = self.reason_unknown()
            early = self._timeout is None or time.monotonic() - started < 0.9 * self._timeout
            if why == "interrupted from keyboard" or why == "canceled" and early:
                raise KeyboardInterrupt
        return r


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
