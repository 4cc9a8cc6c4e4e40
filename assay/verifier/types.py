"""The translation's static types and values: `Ty` and its Z3 sorts, `Val`, the symbolic
objects a body manipulates (self, a message, a port), `Unsupported`, the way back from a
Z3 model to Python values, and the `Solver` every obligation is decided with.  The decisions
behind them are in `prove`'s docstring.
"""
from __future__ import annotations

import ast
import ctypes
import enum
import time
import types
from dataclasses import dataclass
from typing import Any

import z3

from assay.model.mapping import Map
from assay.model.message import Message
from assay.model.record import Record, is_assay_dunder, is_field_property
from assay.model.types import (
    Peer,
    TypeSpec,
    _Bool,
    _Enum,
    _FrozenSet,
    _Int,
    _Map,
    _Optional,
    _Peer,
    _Record,
    _Str,
    _Tuple,
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
    kind: str                       # bool | int | str | peer | enum | set | tuple | seq | opt
                                    # | record
    cls: Any = None                 # the Enum class of an enum, the Record class of a record
    elem: Ty | None = None          # the element type of a set (None: the empty literal), of a
                                    # seq (`tuple[T, ...]`) or of an opt (`Optional[T]`)
    items: tuple[Ty, ...] | None = None     # the item types of a (fixed-length) tuple, the
                                            # field types of a record (in declaration order)

    def describe(self) -> str:
        if self.kind in ("enum", "record"):
            return self.cls.__name__
        if self.kind == "set":
            return f"frozenset[{self.elem.describe()}]" if self.elem else "frozenset()"
        if self.kind == "tuple":
            assert self.items is not None
            return f"tuple[{', '.join(t.describe() for t in self.items) or '()'}]"
        if self.kind == "seq":
            return f"tuple[{self.elem.describe()}, ...]"  # type: ignore[union-attr]
        if self.kind == "opt":
            return f"Optional[{self.elem.describe()}]"  # type: ignore[union-attr]
        if self.kind == "map":
            if self.items is None:
                return "Map()"
            return f"Map[{self.items[0].describe()}, {self.items[1].describe()}]"
        return {"peer": "Peer"}.get(self.kind, self.kind)


BOOL, INT, STR, PEER = Ty("bool"), Ty("int"), Ty("str"), Ty("peer")
EMPTY = Ty("set")
EMPTY_MAP = Ty("map")              # `Map()`: the empty map literal, its types not known yet


def enum_ty(cls: type) -> Ty:
    return Ty("enum", cls)


def set_ty(elem: Ty) -> Ty:
    return Ty("set", elem=elem)


def tuple_ty(items: tuple[Ty, ...] | list[Ty]) -> Ty:
    return Ty("tuple", items=tuple(items))


def record_ty(cls: type, items: tuple[Ty, ...] | list[Ty]) -> Ty:
    return Ty("record", cls, items=tuple(items))


def plain_record(cls: Any) -> bool:
    """A `Record` class (not a `Message`) whose classes add nothing to what `Record` does:
    no method that changes equality, truth, construction or attribute lookup, and no class
    attribute named like a field (which a field read would find first).  Only those are
    translated: their values mean exactly their fields."""
    if not (isinstance(cls, type) and issubclass(cls, Record)) or issubclass(cls, Message):
        return False
    return adds_nothing(cls)


def adds_nothing(cls: type) -> bool:
    """Whether a record or message class adds nothing to what `Record` (and `Message`) do:
    the test of `plain_record`, which a message class must pass too for its values to mean
    exactly their fields (a `__new__` of its own changes what `M(...)` builds, a property
    named like a field or a `__getattribute__` what `m.f` reads)."""
    fields = set(cls.__assay_fields__)  # type: ignore[attr-defined]
    for k in cls.__mro__:
        if k in (Record, Message, object):
            continue
        for name in vars(k):
            if (name in fields or name == "sender" and issubclass(cls, Message)) \
                    and not is_field_property(vars(k)[name]):
                return False
            if name.startswith("__") and name.endswith("__") and name not in _PLAIN_DUNDERS \
                    and not name.startswith("__assay_") \
                    and not is_assay_dunder(name, vars(k)[name]):
                return False
        if "replace" in vars(k) or "values" in vars(k):
            return False
    return True


_PLAIN_DUNDERS = frozenset({"__module__", "__qualname__", "__doc__", "__annotations__",
                            "__dict__", "__weakref__", "__match_args__", "__slots__",
                            "__orig_bases__", "__firstlineno__", "__static_attributes__",
                            "__annotate_func__", "__annotations_cache__",   # Python 3.14
                            # how it prints: `repr()` and `str()` are not translated
                            "__repr__", "__str__"})


def seq_ty(elem: Ty) -> Ty:
    return Ty("seq", elem=elem)


def opt_ty(elem: Ty) -> Ty:
    return Ty("opt", elem=elem)


def plain_enum(cls: Any) -> bool:
    """An Enum whose members compare only with themselves and are always true."""
    return (isinstance(cls, type) and issubclass(cls, enum.Enum)
            and not issubclass(cls, int | str | enum.Flag) and len(cls) > 0
            and not any(d in vars(k) for d in ("__bool__", "__len__", "__eq__", "__ne__",
                                               "__hash__")
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


_DATATYPES: dict[Ty, Any] = {}


def datatype(ty: Ty) -> Any:
    """The Z3 datatype of a tuple type (one constructor `mk`, accessors `_0`, `_1`, ...) or an
    Optional type (constructors `none` and `some`, accessor `val`), made once per type."""
    got = _DATATYPES.get(ty)
    if got is None:
        n = len(_DATATYPES)             # names unique across datatypes (SMT-LIB dumps)
        d = z3.Datatype(f"{ty.describe()}#{n}")
        if ty.kind == "tuple":
            assert ty.items is not None
            d.declare(f"mk#{n}", *[(f"_{i}#{n}", sort_of(t)) for i, t in enumerate(ty.items)])
        elif ty.kind == "record":
            assert ty.items is not None
            d.declare(f"{ty.cls.__name__}#{n}",
                      *[(f"{f}#{n}", sort_of(t))
                        for f, t in zip(ty.cls.__assay_fields__, ty.items)])
        else:
            assert ty.kind == "opt" and ty.elem is not None
            d.declare(f"none#{n}")
            d.declare(f"some#{n}", (f"val#{n}", sort_of(ty.elem)))
        got = _DATATYPES[ty] = d.create()
    return got


def item(ty: Ty, e: Any, i: int) -> Val:
    """Item `i` of a tuple term (field `i` of a record term)."""
    assert ty.items is not None
    return Val(ty.items[i], datatype(ty).accessor(0, i)(e))


def make_tuple(ty: Ty, items: list[Any]) -> Any:
    return datatype(ty).constructor(0)(*items)


def is_some(ty: Ty, e: Any) -> Any:
    return datatype(ty).recognizer(1)(e)


def some_value(ty: Ty, e: Any) -> Val:
    assert ty.elem is not None
    return Val(ty.elem, datatype(ty).accessor(1, 0)(e))


def none_of(ty: Ty) -> Any:
    return datatype(ty).constructor(0)()


def some_of(ty: Ty, e: Any) -> Any:
    return datatype(ty).constructor(1)(e)


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
    if k in ("tuple", "opt", "record"):
        return datatype(ty)  # type: ignore[no-any-return]
    if k == "map":
        from assay.verifier import maps
        return maps.map_sort(ty)
    assert ty.elem is not None
    if k == "seq":
        return z3.SeqSort(sort_of(ty.elem))
    return z3.SetSort(sort_of(ty.elem))


def finite(ty: Ty) -> bool:
    return ty.kind in ("bool", "enum")


# --- what the encoding adds to Z3: sizes of sets, named peers -------------------------------------

_CARDS: dict[str, z3.FuncDeclRef] = {}


def card(s: Any) -> Any:
    """`len` of a set term whose elements are not finitely many (ints, peers, strs, tuples):
    an uninterpreted function of the set, per element sort.  What is known of it are the
    valid facts `prove.background` adds for the terms an obligation mentions."""
    key = str(s.sort())
    f = _CARDS.get(key)
    if f is None:
        f = _CARDS[key] = z3.Function(f"len@{key}", s.sort(), z3.IntSort())
    return f(s)


def is_card(e: Any) -> bool:
    return z3.is_app(e) and e.num_args() == 1 and e.decl().name().startswith("len@") \
        and e.decl().name()[4:] in _CARDS


def named_peer(name: str) -> Any:
    """`Peer(name)`: the peer of that name, one constant per name (two names, two peers)."""
    return z3.Const(f"peer:{name}", peer_sort())


def peer_name(e: Any) -> str | None:
    """The name of a named-peer constant, or None."""
    if z3.is_const(e) and e.sort() == peer_sort() and e.decl().kind() == z3.Z3_OP_UNINTERPRETED:
        n = e.decl().name()
        if n.startswith("peer:"):
            return n[5:]  # type: ignore[no-any-return]
    return None


_NONEMPTY: z3.FuncDeclRef | None = None


def peer_truth(e: Any) -> Any:
    """The truth value of a peer (a str: its name is not empty), uninterpreted but for named
    peers (`prove.background`)."""
    global _NONEMPTY
    if _NONEMPTY is None:
        _NONEMPTY = z3.Function("peer.nonempty", peer_sort(), z3.BoolSort())
    return _NONEMPTY(e)


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
    if isinstance(spec, _Tuple):
        if spec.elems is None:
            assert spec.rest is not None
            if type(spec.rest).__name__ == "_AnyValue":
                return Opaque(f"of type {spec.describe()} (annotate its items, e.g. "
                              "tuple[int, ...])")
            e = ty_of_spec(spec.rest)
            return Opaque(f"of type {spec.describe()}") if isinstance(e, Opaque) else seq_ty(e)
        items = [ty_of_spec(t) for t in spec.elems]
        if any(isinstance(t, Opaque) for t in items):
            return Opaque(f"of type {spec.describe()}")
        return tuple_ty(items)  # type: ignore[arg-type]
    if isinstance(spec, _Optional):
        e = ty_of_spec(spec.inner)
        return Opaque(f"of type {spec.describe()}") if isinstance(e, Opaque) else opt_ty(e)
    if isinstance(spec, _Record) and plain_record(spec.cls):
        return _record_of(spec.cls)
    if isinstance(spec, _Map):
        kt, vt = ty_of_spec(spec.key), ty_of_spec(spec.value)
        for part, t in (("keys", kt), ("values", vt)):
            if isinstance(t, Opaque):
                return Opaque(f"of type {spec.describe()}, whose {part} are {t.why}")
            if t.kind == "map":
                return Opaque(f"of type {spec.describe()} (a map of maps is not translated)")
        from assay.verifier import maps
        return maps.map_ty(kt, vt)  # type: ignore[arg-type]
    if isinstance(spec, _Record) and issubclass(spec.cls, Record) \
            and not issubclass(spec.cls, Message):
        return Opaque(f"of type {spec.describe()} (only records without methods of their own "
                      "that change equality, truth, construction or attribute lookup are "
                      "translated)")
    return Opaque(f"of type {spec.describe()}")


_RECORDS: dict[type, Ty | Opaque] = {}


def _record_of(cls: type) -> Ty | Opaque:
    got = _RECORDS.get(cls)
    if got is None:
        _RECORDS[cls] = Opaque(f"of type {cls.__name__}, which contains itself")  # recursion
        items: list[Ty] = []
        for f, spec in cls.field_types().items():  # type: ignore[attr-defined]
            t = ty_of_spec(spec)
            if isinstance(t, Opaque):
                got = Opaque(f"of type {cls.__name__}, whose field {f!r} is {t.why}")
                break
            items.append(t)
        else:
            got = record_ty(cls, items)
        _RECORDS[cls] = got
    return got


@dataclass(frozen=True)
class Bounds:
    """What the kernel's type check adds to a value's static type: the Ranges of its bounded
    ints, wherever they are nested.  `holds(e)` is that condition on a term."""

    holds: Any                       # Callable[[z3 term], z3 Bool]
    text: str


MAX_RANGE_LITERAL = 64     # a set of bounded ints: within the literal set of its range


def bounds(spec: TypeSpec, ty: Ty | Opaque) -> Bounds | None:
    """The Ranges inside a declared type, or None when it has none."""
    if isinstance(ty, Opaque):
        return None
    if isinstance(spec, _Int):
        if spec.range is None:
            return None
        lo, hi = spec.range.lo, spec.range.hi
        return Bounds(lambda e: z3.And(e >= lo, e <= hi), f"in [{lo}, {hi}]")
    text = f"a {spec.describe()}"
    if isinstance(spec, _FrozenSet) and ty.kind == "set":
        assert ty.elem is not None
        inner = bounds(spec.elem, ty.elem)
        if inner is None:
            return None
        r = spec.elem.range if isinstance(spec.elem, _Int) else None
        if r is not None and r.hi - r.lo < MAX_RANGE_LITERAL:
            allowed = z3.EmptySet(z3.IntSort())
            for v in range(r.lo, r.hi + 1):
                allowed = z3.SetAdd(allowed, v)
            return Bounds(lambda e: z3.IsSubset(e, allowed), text)
        x = z3.Const("x@bounds", sort_of(ty.elem))
        return Bounds(lambda e: z3.ForAll([x], z3.Implies(z3.IsMember(x, e), inner.holds(x))),
                      text)
    if isinstance(spec, _Record) and ty.kind == "record":
        specs = list(spec.cls.field_types().values())  # type: ignore[attr-defined]
        parts = [(i, bounds(t, it)) for i, (t, it) in enumerate(zip(specs, ty.items or ()))]
        parts = [(i, b) for i, b in parts if b is not None]
        if not parts:
            return None
        return Bounds(lambda e: z3.And([b.holds(item(ty, e, i).e)  # type: ignore[union-attr]
                                        for i, b in parts]), text)
    if isinstance(spec, _Tuple) and ty.kind == "tuple" and spec.elems is not None:
        parts = [(i, bounds(t, it)) for i, (t, it) in enumerate(zip(spec.elems, ty.items or ()))]
        parts = [(i, b) for i, b in parts if b is not None]
        if not parts:
            return None
        return Bounds(lambda e: z3.And([b.holds(item(ty, e, i).e)  # type: ignore[union-attr]
                                        for i, b in parts]), text)
    if isinstance(spec, _Tuple) and ty.kind == "seq" and spec.rest is not None:
        assert ty.elem is not None
        inner = bounds(spec.rest, ty.elem)
        if inner is None:
            return None
        i = z3.Int("i@bounds")
        return Bounds(lambda e: z3.ForAll([i], z3.Implies(z3.And(i >= 0, i < z3.Length(e)),
                                                          inner.holds(e[i]))), text)
    if isinstance(spec, _Map) and ty.kind == "map":
        from assay.verifier import maps
        return maps.bounds(bounds(spec.key, maps.key_ty(ty)), bounds(spec.value, maps.value_ty(ty)),
                           ty, text)
    if isinstance(spec, _Optional) and ty.kind == "opt":
        assert ty.elem is not None
        inner = bounds(spec.inner, ty.elem)
        if inner is None:
            return None
        return Bounds(lambda e: z3.Or(z3.Not(is_some(ty, e)),
                                      inner.holds(some_value(ty, e).e)), text)
    return None


# --- values and the objects a body can name -------------------------------------------------------

class Val:
    """A value of a static type, as a Z3 term."""

    __slots__ = ("ty", "e")

    def __init__(self, ty: Ty, e: Any) -> None:
        self.ty = ty
        self.e = e

    def __repr__(self) -> str:
        return f"Val({self.ty.describe()}, {self.e})"


class MutableSet(Val):
    """A Python `set` (a display `{x, y}`, or `s | t` whose left operand is one): the same
    members as a frozenset, but not a value a field, a message or a record may hold (the
    kernel refuses it as not a frozenset[T]: Python's `set | frozenset` is a set)."""

    __slots__ = ()


def frozen(v: Any) -> Any:
    """`v` with a `set` taken as the frozenset of its members (`frozenset(v)`)."""
    return Val(v.ty, v.e) if isinstance(v, MutableSet) else v


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


class TupleObj:
    """A tuple display (`(a, b)`) or a constant tuple: its items, each a value (or None, or a
    tuple), kept apart until a static type is needed (`coerce`, `as_val`)."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __repr__(self) -> str:
        return f"TupleObj({self.items})"


def tuple_items(v: Any) -> list[Any] | None:
    """The items of a tuple value (a display or a term of a tuple type), else None."""
    if isinstance(v, TupleObj):
        return v.items
    if isinstance(v, Val) and v.ty.kind == "tuple":
        return [item(v.ty, v.e, i) for i in range(len(v.ty.items or ()))]
    return None


def as_val(v: Any, node: ast.AST | None = None) -> Any:
    """A tuple display as a term of the tuple type of its items (other values unchanged)."""
    if not isinstance(v, TupleObj):
        return v
    items = [as_val(x, node) for x in v.items]
    if not all(isinstance(x, Val) and x.ty not in (EMPTY, EMPTY_MAP) for x in items):
        raise _unsupported("a tuple holding None or frozenset() where its type is not known "
                           "(assign it to a field or message field of a declared type)", node)
    ty = tuple_ty([x.ty for x in items])
    return Val(ty, make_tuple(ty, [x.e for x in items]))


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
    """`v` as a value of type `ty`, or None: the empty literal takes any set type, a value of
    type T or None an Optional[T], a tuple display a tuple type (item by item) or a
    `tuple[T, ...]`.  Python values are unchanged: only their static type is chosen (so a
    `set` is no frozenset)."""
    if isinstance(v, MutableSet):
        return None
    if isinstance(v, Val) and v.ty == ty:
        return v
    k = ty.kind
    if k == "opt":
        assert ty.elem is not None
        if v is NONE:
            return Val(ty, none_of(ty))
        c = coerce(v, ty.elem)
        return None if c is None else Val(ty, some_of(ty, c.e))
    if k == "tuple":
        items = tuple_items(v)
        assert ty.items is not None
        if items is None or len(items) != len(ty.items):
            return None
        cs = [coerce(x, t) for x, t in zip(items, ty.items)]
        if any(c is None for c in cs):
            return None
        return Val(ty, make_tuple(ty, [c.e for c in cs]))  # type: ignore[union-attr]
    seq_items = tuple_items(v) if k == "seq" else None
    if seq_items is not None:
        assert ty.elem is not None
        cs = [coerce(x, ty.elem) for x in seq_items]
        if any(c is None for c in cs):
            return None
        return Val(ty, seq_of(ty, [c.e for c in cs]))  # type: ignore[union-attr]
    if not isinstance(v, Val):
        return None
    if v.ty == EMPTY and k == "set" and ty.elem is not None:
        return empty_set(ty.elem)
    if v.ty.kind == "map" and v.ty.items is None and k == "map" and ty.items is not None:
        from assay.verifier import maps
        return maps.empty_map(ty)
    return None


def seq_of(ty: Ty, items: list[Any]) -> Any:
    if not items:
        return z3.Empty(sort_of(ty))
    units = [z3.Unit(x) for x in items]
    return units[0] if len(units) == 1 else z3.Concat(*units)


def unify(a: Val, b: Val) -> tuple[Val, Val] | None:
    """Both values at one type, or None."""
    if a.ty == b.ty:
        return a, b
    if a.ty == EMPTY and b.ty.kind == "set":
        return (empty_set(b.ty.elem), b) if b.ty.elem else None
    if b.ty == EMPTY and a.ty.kind == "set":
        return (a, empty_set(a.ty.elem)) if a.ty.elem else None
    if a.ty.kind == "map" and b.ty.kind == "map" and (a.ty.items is None) != (b.ty.items is None):
        from assay.verifier import maps
        return (maps.empty_map(b.ty), b) if a.ty.items is None else (a, maps.empty_map(a.ty))
    if a.ty.kind == "opt" and a.ty.elem == b.ty:
        return a, Val(a.ty, some_of(a.ty, b.e))
    if b.ty.kind == "opt" and b.ty.elem == a.ty:
        return Val(b.ty, some_of(b.ty, a.e)), b
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


Z3_MAX_CHAR = 0x2FFFF        # the last character of Z3's strings (its default "unicode" encoding)


def str_val(s: str, node: ast.AST | None = None) -> Any:
    """A Python str as the Z3 string of the same characters.  `z3.StringVal` passes a
    backslash through, and Z3 reads `\\u{41}` or `\\u0041` in it as an escape ("A"): the six
    characters of Python's "\\\\u{41}" would be equal to "A".  So each backslash goes in escaped.
    A character past Z3's range is not translated (Z3 would keep its escape as text)."""
    if any(ord(c) > Z3_MAX_CHAR for c in s):
        raise _unsupported(f"a str with a character past U+{Z3_MAX_CHAR:X} ({s!r})", node)
    return z3.StringVal(s.replace("\\", "\\u{5c}"))


def str_of(e: Any) -> str:
    """The Python str of a Z3 string value, character for character (`as_string` gives some
    characters as escapes)."""
    n = z3.Z3_get_string_length(e.ctx_ref(), e.as_ast())
    buf = (ctypes.c_uint * n)()
    z3.Z3_get_string_contents(e.ctx_ref(), e.as_ast(), n, buf)
    return "".join(map(chr, buf))


def py_const(v: Any, node: ast.AST | None = None) -> Any:
    """A Python constant (a global, a closure cell, a default) as a value or object."""
    if v is None:
        return NONE
    if type(v) is bool:
        return Val(BOOL, z3.BoolVal(v))
    if type(v) is int:
        return Val(INT, z3.IntVal(v))
    if type(v) is str:
        return Val(STR, str_val(v, node))
    if isinstance(v, enum.Enum):
        if not plain_enum(type(v)):
            raise _unsupported(f"the enum member {v!r} (only plain Enums are translated)", node)
        return Val(enum_ty(type(v)), enum_sort(type(v))[1][v])
    if type(v) is frozenset:
        vals = [py_const(x, node) for x in sorted(v, key=repr)]
        if not vals:
            return Val(EMPTY, None)
        return set_literal(vals, node)
    if type(v) is tuple:
        return TupleObj([py_const(x, node) for x in v])
    if type(v) is Peer:
        return Val(PEER, named_peer(str(v)))
    if v is Peer or (isinstance(v, type) and (issubclass(v, enum.Enum)
                                             or issubclass(v, Message))):
        return ConstObj(v)
    if isinstance(v, types.FunctionType | types.BuiltinFunctionType | types.ModuleType) \
            or v is range:
        return ConstObj(v)
    if plain_record(v):
        return ConstObj(v)
    if isinstance(v, Record) and not isinstance(v, Message):
        ty = ty_of_spec(_Record(type(v)))
        if isinstance(ty, Opaque):
            raise _unsupported(f"a record {ty.why}", node)
        return Val(ty, to_z3(v, ty, {}))
    if isinstance(v, type) and issubclass(v, Record) and not issubclass(v, Message):
        raise _unsupported(f"the record type {v.__name__} (only records without methods of "
                           "their own that change equality, truth, construction or attribute "
                           "lookup are translated)", node)
    if v is Map:
        return ConstObj(v)
    if type(v) is Map:
        from assay.verifier import maps
        return maps.constant(v, node)
    raise _unsupported(f"a {type(v).__name__} constant ({_short(v)})", node)


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def set_literal(vals: list[Any], node: ast.AST | None) -> Val:
    vals = [as_val(v, node) for v in vals]
    elems = [v for v in vals if isinstance(v, Val)]
    if len(elems) != len(vals):
        raise _unsupported("a set of values the verifier does not translate", node)
    ty = elems[0].ty
    if ty.kind == "set" or ty == EMPTY_MAP or any(v.ty != ty for v in elems):
        raise _unsupported("a set whose elements have different types", node)
    s = z3.EmptySet(sort_of(ty))
    for v in elems:
        s = z3.SetAdd(s, v.e)
    return Val(set_ty(ty), s)



def _merge(c: Any, a: Any, b: Any, what: str, node: ast.AST) -> Any:
    if a is b:
        return a
    if isinstance(a, MutableSet) or isinstance(b, MutableSet):   # a set on some path: a set
        m = _merge(c, frozen(a), frozen(b), what, node)
        return MutableSet(m.ty, m.e) if isinstance(m, Val) else m
    ta, tb = tuple_items(a), tuple_items(b)
    if ta is not None and tb is not None and (isinstance(a, TupleObj) or isinstance(b, TupleObj)
                                              or a.ty != b.ty):
        if len(ta) != len(tb):
            raise _unsupported(f"{what} is a tuple of {len(ta)} items on one path and of "
                               f"{len(tb)} on another", node)
        return TupleObj([_merge(c, x, y, what, node) for x, y in zip(ta, tb)])
    if a is NONE and isinstance(b, Val) and b.ty not in (EMPTY, EMPTY_MAP):
        ty = b.ty if b.ty.kind == "opt" else opt_ty(b.ty)
        return Val(ty, ite(c, none_of(ty), coerce(b, ty).e))  # type: ignore[union-attr]
    if b is NONE and isinstance(a, Val) and a.ty not in (EMPTY, EMPTY_MAP):
        ty = a.ty if a.ty.kind == "opt" else opt_ty(a.ty)
        return Val(ty, ite(c, coerce(a, ty).e, none_of(ty)))  # type: ignore[union-attr]
    for x, y, flip in ((a, b, False), (b, a, True)):
        if isinstance(x, Val) and x.ty.kind in ("opt", "seq") \
                and not (isinstance(y, Val) and y.ty == x.ty):
            cy = coerce(y, x.ty)
            if cy is not None:
                return Val(x.ty, ite(c, cy.e, x.e) if flip else ite(c, x.e, cy.e))
    if isinstance(a, Val) and isinstance(b, Val):
        if a.ty == EMPTY and b.ty == EMPTY or a.ty == EMPTY_MAP and b.ty == EMPTY_MAP:
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
        return str_val(v)
    if k == "peer" and isinstance(v, str):
        c = peers.get(str(v))
        if c is None:
            c = peers[str(v)] = named_peer(str(v))
        return c
    if k == "enum" and type(v) is ty.cls:
        return enum_sort(ty.cls)[1][v]
    if k == "set" and type(v) is frozenset:
        s = z3.EmptySet(sort_of(ty.elem))  # type: ignore[arg-type]
        for x in sorted(v, key=repr):
            s = z3.SetAdd(s, to_z3(x, ty.elem, peers))  # type: ignore[arg-type]
        return s
    if k == "tuple" and type(v) is tuple and len(v) == len(ty.items or ()):
        return make_tuple(ty, [to_z3(x, t, peers) for x, t in zip(v, ty.items or ())])
    if k == "record" and type(v) is ty.cls:
        return make_tuple(ty, [to_z3(x, t, peers) for x, t in zip(v.values(), ty.items or ())])
    if k == "seq" and type(v) is tuple:
        return seq_of(ty, [to_z3(x, ty.elem, peers) for x in v])  # type: ignore[arg-type]
    if k == "opt":
        return none_of(ty) if v is None else some_of(ty, to_z3(v, ty.elem, peers))  # type: ignore
    if k == "map" and ty.items is not None:
        from assay.verifier import maps
        return maps.to_z3(v, ty, peers)
    raise Unsupported(f"the value {_short(v)} as a {ty.describe()}")


def conforms(v: Any, ty: Ty) -> bool:
    """A Python value is one of the static type `ty` (as the translation reads them back)."""
    k = ty.kind
    if k == "bool":
        return type(v) is bool
    if k == "int":
        return type(v) is int
    if k == "str":
        return isinstance(v, str)
    if k == "peer":
        return isinstance(v, str)
    if k == "enum":
        return type(v) is ty.cls
    if k == "tuple":
        its = ty.items or ()
        return type(v) is tuple and len(v) == len(its) and all(conforms(x, t)
                                                               for x, t in zip(v, its))
    if k == "record":
        return type(v) is ty.cls and all(conforms(x, t)
                                         for x, t in zip(v.values(), ty.items or ()))
    if k == "seq":
        return type(v) is tuple and all(conforms(x, ty.elem) for x in v)  # type: ignore
    if k == "opt":
        return v is None or conforms(v, ty.elem)  # type: ignore[arg-type]
    if k == "map":
        from assay.verifier import maps
        return ty.items is not None and maps.conforms(v, ty)
    return type(v) is frozenset and all(conforms(x, ty.elem) for x in v)  # type: ignore


class ModelReader:
    """Reads Python values out of a Z3 model; peers get readable names (a named peer,
    `Peer("n1")`, its own)."""

    def __init__(self, model: z3.ModelRef, taken: set[str],
                 peer_terms: tuple[Any, ...] | list[Any] = ()) -> None:
        """`peer_terms`: Peer constants whose values must be among the peers read (a model
        leaves out constants that do not matter to it; completing them adds peers)."""
        self.model = model
        # the constants the model interprets, before reading completes it with others
        self.interpreted = {d.name() for d in model.decls() if d.arity() == 0}
        self.names: dict[str, str] = {}
        self.taken = set(taken)
        universe = model.get_universe(peer_sort()) if _PEER_SORT is not None else None
        self.universe: list[Any] = list(universe or [])
        named = []
        for d in model.decls():
            if d.arity() == 0 and d.name().startswith("peer:") and _PEER_SORT is not None \
                    and d.range() == _PEER_SORT:
                named.append((d.name()[5:], model.eval(d(), model_completion=True)))
        self.taken |= {n for n, _ in named}
        for n, x in named:
            self.names.setdefault(str(x), n)
        for t in [*peer_terms, *(x for _, x in named)]:
            x = model.eval(t, model_completion=True)
            if not any(str(x) == str(u) for u in self.universe):
                self.universe.append(x)

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
            return str_of(x)
        if k == "enum":
            return enum_sort(ty.cls)[2][x.decl().name()]
        if k == "peer":
            if not any(str(x) == str(u) for u in self.universe):
                self.universe.append(x)
            return Peer(self._name(x))
        if k == "tuple":
            return tuple(self.value(item(ty, x, i)) for i in range(len(ty.items or ())))
        if k == "record":
            return ty.cls(*[self.value(item(ty, x, i)) for i in range(len(ty.items or ()))])
        if k == "opt":
            if not z3.is_true(m.eval(is_some(ty, x), model_completion=True)):
                return None
            return self.value(some_value(ty, x))
        if k == "map":
            from assay.verifier import maps
            return maps.read_back(self, maps.complete(self, e), ty)
        assert ty.elem is not None
        if k == "seq":
            n = m.eval(z3.Length(x), model_completion=True).as_long()
            return tuple(self.value(x[i], ty.elem) for i in range(n))
        if finite(ty.elem) or ty.elem.kind == "peer":
            cands = members(ty.elem) if finite(ty.elem) else list(self.universe)
            out = set()
            for c in cands:
                if z3.is_true(m.eval(z3.IsMember(c, e), model_completion=True)):
                    out.add(self.value(c, ty.elem))
            return frozenset(out)
        return frozenset(self.value(c, ty.elem) for c in self._members(x, ty.elem))

    def _members(self, x: Any, elem: Ty) -> list[Any]:
        return finite_members(self.model, x, sort_of(elem))


def model_candidates(model: z3.ModelRef, x: Any, sort: Any) -> list[Any]:
    """The values of `sort` a model mentions: model values inside the term `x` and the
    model's constants of that sort (where a set's or a map's members are looked for)."""
    cands: dict[str, Any] = {}
    for t in _subterms(x):
        if t.sort() == sort and _is_model_value(t):
            cands.setdefault(str(t), t)
    for d in model.decls():
        if d.arity() == 0 and d.range() == sort:
            t = model.eval(d(), model_completion=True)
            cands.setdefault(str(t), t)
    return list(cands.values())


def finite_members(model: z3.ModelRef, x: Any, sort: Any) -> list[Any]:
    """The members of a set value of the model: read off its stores, or else found among the
    element values the model mentions (checked: the set must be exactly those; else it is
    infinite, or not known to be finite: Unsupported)."""
    if isinstance(sort, z3.SortRef) and sort.kind() == z3.Z3_UNINTERPRETED_SORT:
        universe = model.get_universe(sort) or []
        found = [u for u in universe
                 if z3.is_true(model.eval(z3.IsMember(u, x), model_completion=True))]
    else:
        try:
            return _finite_set(x)
        except Unsupported:
            pass
        found = [c for c in model_candidates(model, x, sort)
                 if z3.is_true(model.eval(z3.IsMember(c, x), model_completion=True))]
    lit = z3.EmptySet(sort)
    for c in found:
        lit = z3.SetAdd(lit, c)
    if not z3.is_true(model.eval(x == lit, model_completion=True)):
        raise Unsupported("the model has an infinite set")
    return found


def _subterms(x: Any) -> list[Any]:
    out, todo, seen = [], [x], set()
    while todo:
        t = todo.pop()
        if not z3.is_app(t) or t.get_id() in seen:
            continue
        seen.add(t.get_id())
        out.append(t)
        todo.extend(t.children())
    return out


def _is_model_value(t: Any) -> bool:
    if z3.is_int_value(t) or z3.is_string_value(t) or z3.is_true(t) or z3.is_false(t):
        return True
    if z3.is_app(t) and t.decl().kind() == z3.Z3_OP_DT_CONSTRUCTOR:
        return all(_is_model_value(c) for c in t.children())
    return False


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
    if isinstance(v, MutableSet):
        return f"a set of {v.ty.elem.describe() if v.ty.elem else 'values'} (a mutable set: " \
            "use frozenset({...}))"
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
    if isinstance(v, TupleObj):
        return f"a tuple of {len(v.items)} items"
    if isinstance(v, ConstObj):
        return getattr(v.value, "__name__", None) or _short(v.value)
    return type(v).__name__


# --- message types --------------------------------------------------------------------------------

NOT_PLAIN = ("a message class whose own methods change construction or attribute lookup "
             "(__new__, __init__, __getattribute__, a property named like a field, ...) is "
             "not translated")
_MSG_TYPES: dict[type, dict[str, tuple[Ty | Opaque, Bounds | None]]] = {}


def message_types(cls: type) -> dict[str, tuple[Ty | Opaque, Bounds | None]]:
    """Each field of a message class: its static type (or Opaque) and the Ranges inside its
    declared type, if any."""
    got = _MSG_TYPES.get(cls)
    if got is None:
        got = {}
        plain = adds_nothing(cls)
        for n, spec in cls.field_types().items():  # type: ignore[attr-defined]
            if not plain:
                got[n] = (Opaque(f"of {cls.__name__} ({NOT_PLAIN})"), None)
                continue
            ty = ty_of_spec(spec)
            got[n] = (ty, bounds(spec, ty))
        _MSG_TYPES[cls] = got
    return got
