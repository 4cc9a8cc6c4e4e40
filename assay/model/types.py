"""The value types every engine understands, and their three forms.

A field or message field has a *type spec* parsed from its annotation.  Each type has a
membership test (used on every step to catch a handler that stores something else), a JSON form
(traces, the wire) and a canonical byte form (fingerprints stable across processes).
Anything not listed here is rejected when the spec loads.
"""
from __future__ import annotations

import collections.abc
import enum
import types
import typing
from dataclasses import dataclass
from itertools import compress, islice
from operator import is_, is_not
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

SUPPORTED = ("bool, int (optionally Annotated[int, Range(lo, hi)]), str, an Enum, a Record or "
             "Message, Peer, frozenset[T], tuple[...], Map[K, V], Optional[T]")


@dataclass(frozen=True, slots=True)
class Range:
    """Bounds (inclusive) of an int field: `Annotated[int, Range(0, 7)]`."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ValueError(f"Range({self.lo}, {self.hi}) is empty")


class Peer(str):
    """The name of a connected instance: what `m.sender` holds and `port.peers` contains."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Peer({str.__repr__(self)})"


@dataclass(frozen=True, slots=True)
class OneOf:
    """A finite set of initial values for a field; the checker explores each."""

    values: tuple[Any, ...]


T = TypeVar("T")


def one_of(*values: T) -> T:
    """Declare that a field starts with any one of `values`: `x: int = one_of(0, 1, 2)`.

    Typed as one of the values, so that `x: int = one_of(0, 1)` type-checks: the field holds
    one of them; what it returns is the `OneOf` that `component_info` reads."""
    if not values:
        raise ValueError("one_of() needs at least one value")
    return OneOf(tuple(values))     # type: ignore[return-value]


class UnsupportedType(Exception):
    """An annotation assay cannot check; the message says what to use instead."""


class ImmutableError(AttributeError, TypeError):
    """A change made in place to an assay value — an item of a `Map`, a field of a record or
    message — which values do not allow: the spec's code is ill-formed (the kernel reports a
    spec error at the line, with the fix).  `kind` names the value's type, `op` the change
    (`assignment` or `deletion` of an item, `attribute` assignment), `attr` the field."""

    def __init__(self, message: str, kind: str, op: str, attr: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.op = op
        self.attr = attr


# --- type specs ---------------------------------------------------------------------------------

class TypeSpec:
    def conforms(self, v: Any) -> bool:
        raise NotImplementedError

    def conforms_from(self, v: Any, old: Any) -> bool:
        """`conforms(v)`, given that `old` conforms: the parts of `v` that are parts of `old`
        (the same objects: values are immutable) are not checked again.  The kernel checks a
        step's new state this way against the state the step started from."""
        return v is old or self.conforms(v)

    def from_json(self, j: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def mismatch(self, v: Any) -> str | None:
        """None if `v` conforms; else where and how it does not, down to the innermost value
        that is wrong (`at key 'a': field 'n' of Entry is 10, not int in [0, 9]`)."""
        return None if self.conforms(v) else f"{_short(v)} is not {self.describe()}"


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


class _Scalar(TypeSpec):
    """A type with no parts (bool, int, str, an Enum): a membership test of a few
    operations."""


class _Bool(_Scalar):
    def conforms(self, v: Any) -> bool:
        return v is True or v is False

    def from_json(self, j: Any) -> Any:
        if not isinstance(j, bool):
            raise ValueError(f"expected a bool, got {j!r}")
        return j

    def describe(self) -> str:
        return "bool"


@dataclass(frozen=True)
class _Int(_Scalar):
    range: Range | None = None

    def conforms(self, v: Any) -> bool:
        if type(v) is not int:
            return False
        return self.range is None or self.range.lo <= v <= self.range.hi

    def from_json(self, j: Any) -> Any:
        if type(j) is not int:
            raise ValueError(f"expected an int, got {j!r}")
        return j

    def describe(self) -> str:
        return f"int in [{self.range.lo}, {self.range.hi}]" if self.range else "int"


def unicode_text(j: str) -> str:
    """`j` if it is Unicode text: JSON's "\\ud800" decodes to a str with a lone surrogate,
    which UTF-8 cannot encode (SQLite, files, `canonical` refuse it); `ValueError` then."""
    if not j.isascii():
        try:
            j.encode()
        except UnicodeEncodeError as e:
            raise ValueError(f"a str with a lone surrogate ({ascii(j[e.start])}) is not "
                             "Unicode text") from None
    return j


class _Str(_Scalar):
    def conforms(self, v: Any) -> bool:
        return isinstance(v, str)

    def from_json(self, j: Any) -> Any:
        if not isinstance(j, str):
            raise ValueError(f"expected a str, got {j!r}")
        return unicode_text(j)

    def describe(self) -> str:
        return "str"


class _Peer(_Str):
    def from_json(self, j: Any) -> Any:
        return Peer(super().from_json(j))

    def describe(self) -> str:
        return "Peer"


def as_declared(t: TypeSpec, v: Any) -> Any:
    """`v`, a field's value, as its declared type `t` has it, for a person to read: a plain
    str in a Peer field is a `Peer` (a spec may assign `self.name`, and a state keeps the
    first of equal values: 's0' == Peer('s0')), so `show` prints it bare as every peer."""
    if type(v) is str:
        inner = t.inner if isinstance(t, _Optional) else t
        if isinstance(inner, _Peer):
            return Peer(v)
    return v


@dataclass(frozen=True)
class _Enum(_Scalar):
    cls: type[enum.Enum]

    def conforms(self, v: Any) -> bool:
        return type(v) is self.cls

    def from_json(self, j: Any) -> Any:
        try:
            return self.cls[j]
        except (KeyError, TypeError):
            raise ValueError(f"{j!r} is not a member of {self.cls.__name__}") from None

    def describe(self) -> str:
        return self.cls.__name__


@dataclass(frozen=True)
class _Record(TypeSpec):
    """A `Record` class (a `Message` is one): values of that class whose fields conform."""

    cls: type

    def conforms(self, v: Any) -> bool:
        return isinstance(v, self.cls) and v.__class__.__assay_conforms__(v)  # type: ignore[attr-defined]

    def from_json(self, j: Any) -> Any:
        from assay.model.record import record_from_json

        return record_from_json(j, {self.cls.__name__: self.cls})

    def describe(self) -> str:
        return self.cls.__name__

    def mismatch(self, v: Any) -> str | None:
        if not isinstance(v, self.cls):
            return super().mismatch(v)
        return v.bad_field()  # type: ignore[attr-defined, no-any-return]


class _AnyValue(TypeSpec):
    """Element type of a bare `frozenset` or `tuple`: any supported value."""

    def conforms(self, v: Any) -> bool:
        return is_value(v)

    def from_json(self, j: Any) -> Any:
        if isinstance(j, list):
            return tuple(self.from_json(x) for x in j)
        if isinstance(j, dict):
            raise ValueError(f"a record, message or map inside a bare tuple or frozenset cannot "
                             f"be decoded (got {j!r}); annotate the element types, e.g. "
                             "frozenset[Ballot]")
        return unicode_text(j) if isinstance(j, str) else j

    def describe(self) -> str:
        return "value"


@dataclass(frozen=True)
class _FrozenSet(TypeSpec):
    elem: TypeSpec

    def conforms(self, v: Any) -> bool:
        return type(v) is frozenset and all(map(self.elem.conforms, v))

    def conforms_from(self, v: Any, old: Any) -> bool:
        if v is old:
            return True
        if type(v) is not frozenset:
            return False
        return _items_from(self.elem, v, old)

    def from_json(self, j: Any) -> Any:
        if not isinstance(j, list):
            raise ValueError(f"expected a list for a frozenset, got {j!r}")
        return frozenset(self.elem.from_json(x) for x in j)

    def describe(self) -> str:
        return f"frozenset[{self.elem.describe()}]"

    def mismatch(self, v: Any) -> str | None:
        if type(v) is not frozenset:
            return super().mismatch(v)
        bad = (self.elem.mismatch(x) for x in sorted(v, key=_canonical_or_repr))
        return next((f"an element: {b}" for b in bad if b is not None), None)


@dataclass(frozen=True)
class _Tuple(TypeSpec):
    elems: tuple[TypeSpec, ...] | None   # None: homogeneous, see `rest`
    rest: TypeSpec | None = None

    def __post_init__(self) -> None:
        # items as cheap to check whole as to compare with the old ones (`conforms_from`)
        object.__setattr__(self, "flat_rest", self.rest is not None and _flat(self.rest))

    def conforms(self, v: Any) -> bool:
        if type(v) is not tuple:
            return False
        if self.elems is not None:
            return len(v) == len(self.elems) and all(t.conforms(x) for t, x in zip(self.elems, v))
        assert self.rest is not None
        return all(map(self.rest.conforms, v))

    def conforms_from(self, v: Any, old: Any) -> bool:
        if v is old:
            return True
        if type(v) is not tuple:
            return False
        if type(old) is not tuple or len(v) != len(old):
            if self.elems is not None:
                return self.conforms(v)
            return _items_from(self.rest, v, old)    # type: ignore[arg-type]
        # item by item, only where the item is not the old one (in C but for the checks)
        changed = list(map(is_not, v, old))
        if self.elems is not None:
            return all(map(conforms_from, compress(self.elems, changed), compress(v, changed),
                           compress(old, changed)))
        rest = self.rest
        assert rest is not None
        if self.flat_rest:                                   # type: ignore[attr-defined]
            return all(map(rest.conforms, compress(v, changed)))
        if not isinstance(rest, _Tuple | _FrozenSet | _Map) and changed.count(True) > 1:
            return _items_from(rest, v, old)      # values shifted, say: found by identity
        return all(map(rest.conforms_from, compress(v, changed), compress(old, changed)))

    def from_json(self, j: Any) -> Any:
        if not isinstance(j, list):
            raise ValueError(f"expected a list for a tuple, got {j!r}")
        if self.elems is not None:
            if len(j) != len(self.elems):
                raise ValueError(f"expected {len(self.elems)} items, got {len(j)}")
            return tuple(t.from_json(x) for t, x in zip(self.elems, j))
        assert self.rest is not None
        return tuple(self.rest.from_json(x) for x in j)

    def describe(self) -> str:
        if self.elems is not None:
            return f"tuple[{', '.join(t.describe() for t in self.elems)}]"
        assert self.rest is not None
        return f"tuple[{self.rest.describe()}, ...]"

    def mismatch(self, v: Any) -> str | None:
        if type(v) is not tuple or self.elems is not None and len(v) != len(self.elems):
            return super().mismatch(v)
        types = self.elems if self.elems is not None else (self.rest,) * len(v)
        for i, (t, x) in enumerate(zip(types, v)):
            bad = t.mismatch(x)  # type: ignore[union-attr]
            if bad is not None:
                return f"item {i}: {bad}"
        return None


@dataclass(frozen=True)
class _Optional(TypeSpec):
    inner: TypeSpec

    def conforms(self, v: Any) -> bool:
        return v is None or self.inner.conforms(v)

    def conforms_from(self, v: Any, old: Any) -> bool:
        if v is old or v is None:
            return True
        return self.inner.conforms(v) if old is None else self.inner.conforms_from(v, old)

    def from_json(self, j: Any) -> Any:
        return None if j is None else self.inner.from_json(j)

    def describe(self) -> str:
        return f"Optional[{self.inner.describe()}]"

    def mismatch(self, v: Any) -> str | None:
        return None if v is None else self.inner.mismatch(v)


@dataclass(frozen=True)
class _Map(TypeSpec):
    """`Map[K, V]`.  Its JSON form is a list of `[key, value]` pairs in the canonical order of
    the keys; decoding takes them in any order but refuses a key given twice."""

    key: TypeSpec
    value: TypeSpec

    def conforms(self, v: Any) -> bool:
        if type(v) is not _map_class():
            return False
        k, t = self.key, self.value
        return all(k.conforms(x) and t.conforms(y) for x, y in v._d.items())

    def conforms_from(self, v: Any, old: Any) -> bool:
        if v is old:
            return True
        if type(v) is not _map_class() or type(old) is not _map_class():
            return self.conforms(v)
        k, t, od = self.key, self.value, old._d
        # every key is checked (an equal key of another type, `True` for `1`, finds the old
        # entry); a value only where it is not the old entry's
        return all(k.conforms(x) and (y is od.get(x, _ABSENT) or t.conforms(y))
                   for x, y in v._d.items())

    def from_json(self, j: Any) -> Any:
        if not isinstance(j, list):
            raise ValueError(f"expected a list of [key, value] pairs for a Map, got {j!r}")
        d: dict[Any, Any] = {}
        for pair in j:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"expected a [key, value] pair in a Map, got {pair!r}")
            k = self.key.from_json(pair[0])
            if k in d:
                raise ValueError(f"key {pair[0]!r} appears twice in a Map")
            d[k] = self.value.from_json(pair[1])
        return _map_class()._of(d)

    def describe(self) -> str:
        return f"Map[{self.key.describe()}, {self.value.describe()}]"

    def mismatch(self, v: Any) -> str | None:
        if type(v) is not _map_class():
            return super().mismatch(v)
        for k, x in v.items():
            bad = self.key.mismatch(k)
            if bad is not None:
                return f"a key: {bad}"
            bad = self.value.mismatch(x)
            if bad is not None:
                return f"at key {_short(k)}: {bad}"
        return None


BOOL, INT, STR, PEER, ANY = _Bool(), _Int(), _Str(), _Peer(), _AnyValue()
_ABSENT = object()


def _flat(t: TypeSpec) -> bool:
    """A scalar type, or a tuple or frozenset of scalars."""
    if isinstance(t, _Scalar):
        return True
    if isinstance(t, _Tuple):
        return t.rest is not None and isinstance(t.rest, _Scalar) or \
            t.elems is not None and all(isinstance(e, _Scalar) for e in t.elems)
    return isinstance(t, _FrozenSet) and isinstance(t.elem, _Scalar)


def conforms_from(t: TypeSpec, v: Any, old: Any) -> bool:
    """`t.conforms_from(v, old)`, as a function (for `map`)."""
    return t.conforms_from(v, old)


def _items_from(elem: TypeSpec, v: Any, old: Any) -> bool:
    """Every item of the collection `v` conforms to `elem`, given that every item of `old`
    (a collection, or anything else) does: an item that is one of `old`'s objects is not
    checked again.  Scalars are cheaper to check than to look up."""
    if type(old) not in (tuple, frozenset) or isinstance(elem, _Scalar) or not old:
        return all(map(elem.conforms, v))
    ids = _old_ids(old)
    if type(v) is frozenset and type(old) is frozenset:
        # the items equal to none of `old`'s (`added`, in C with the sets' stored hashes)
        # are none of its objects; when every other item is one of its objects (counted
        # by id), `added` is all there is to check — the usual case: a set that grew
        added = v - old
        if sum(map(ids.__contains__, map(id, v))) + len(added) == len(v):
            return all(map(elem.conforms, added))
    return all(map(elem.conforms, [x for x in v if id(x) not in ids]))


# the last `old` collection `_items_from` saw and the ids of its items, as one tuple (one
# assignment: no thread sees the ids of another collection), the collection held so that no
# id is reused while it is kept: the state a search expands is the old state of each of its
# steps, so the same `old` comes several times in a row
_last_old: tuple[Any, Any] = (None, frozenset())


def _old_ids(old: Any) -> Any:
    global _last_old
    last = _last_old
    if last[0] is old:
        return last[1]
    ids = set(map(id, old))
    _last_old = (old, ids)
    return ids


_MapClass: Any = None                 # assay.model.mapping.Map (which imports this module)


def _map_class() -> Any:
    global _MapClass
    if _MapClass is None:
        from assay.model.mapping import Map

        _MapClass = Map
    return _MapClass


def parse_type(ann: Any) -> TypeSpec:
    """The type spec of an annotation, or `UnsupportedType` naming what is wrong."""
    from assay.model.record import Record

    if ann is bool:
        return BOOL
    if ann is int:
        return INT
    if ann is Peer:
        return PEER
    if ann is str:
        return STR
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return _Enum(ann)
    if isinstance(ann, type) and issubclass(ann, Record):
        return _Record(ann)
    if ann is _map_class() or ann in (typing.Mapping, collections.abc.Mapping):
        raise UnsupportedType("Map needs its key and value types: Map[K, V], e.g. "
                              "Map[Peer, int]")
    if ann is frozenset:
        return _FrozenSet(ANY)
    if ann is tuple:
        return _Tuple(None, ANY)
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:
        base, *extra = args
        ranges = [e for e in extra if isinstance(e, Range)]
        if base is int and len(ranges) == 1:
            return _Int(ranges[0])
        if ranges:
            raise UnsupportedType("Range(lo, hi) applies to int only, once")
        return parse_type(base)
    if origin is frozenset:
        return _FrozenSet(parse_type(args[0]) if args else ANY)
    if origin is _map_class() or origin is collections.abc.Mapping:
        if len(args) != 2:
            raise UnsupportedType("Map takes two types, of its keys and of its values: "
                                  "Map[K, V]")
        key, value = parse_type(args[0]), parse_type(args[1])
        if admits_any(key) or admits_any(value):
            raise UnsupportedType(f"Map[{key.describe()}, {value.describe()}] does not say what "
                                  "it holds; give the element types (e.g. frozenset[Peer], "
                                  "tuple[int, ...]): maps are decoded from traces, stores and "
                                  "the wire by their declared types")
        return _Map(key, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _Tuple(None, parse_type(args[0]))
        if args == ((),):
            return _Tuple(())
        return _Tuple(tuple(parse_type(a) for a in args))
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return _Optional(parse_type(rest[0]))
        raise UnsupportedType(f"union {ann} is not supported; only Optional[T] (T | None) is")
    if origin in (set, list, dict) or ann in (set, list, dict):
        kind = getattr(origin, "__name__", None) or getattr(ann, "__name__", str(ann))
        fix = "frozenset" if kind in ("set", "list") else \
            "Map[K, V] (assay.Map, an immutable map)"
        raise UnsupportedType(f"type {kind} is mutable; use {fix} instead")
    if ann is float:
        raise UnsupportedType("type float is not supported (its equality is not exact); "
                              "use int, e.g. in milli-units")
    if ann is typing.Any or ann is object:
        raise UnsupportedType(f"type {getattr(ann, '__name__', ann)} says nothing assay can check")
    name = getattr(ann, "__name__", None) or repr(ann)
    raise UnsupportedType(f"type {name} is not supported")


# --- values: membership, JSON and canonical bytes ------------------------------------------------

def is_value(v: Any) -> bool:
    """True for a value of one of the supported types (recursively)."""
    from assay.model.record import Record

    t = type(v)
    if t in (bool, int, str, Peer) or v is None or isinstance(v, enum.Enum):
        return True
    if isinstance(v, Record):
        return True
    if t is frozenset or t is tuple:
        return all(is_value(x) for x in v)
    if t is _map_class():
        return all(is_value(k) and is_value(x) for k, x in v._d.items())
    return False


def to_json(v: Any) -> Any:
    """The JSON form of a value; frozensets become lists sorted canonically, maps lists of
    [key, value] pairs in the canonical order of their keys."""
    t = type(v)
    if t is int or t is str or t is bool or v is None:      # (most fields: no import, no
        return v                                            # isinstance)
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, str):
        return str(v)
    global _RecordClass
    if _RecordClass is None:
        from assay.model.record import Record

        _RecordClass = Record
    if isinstance(v, _RecordClass):
        return v.to_json()
    if t is frozenset:
        return [to_json(x) for x in sorted(v, key=canonical)]
    if t is tuple:
        return [to_json(x) for x in v]
    if t is _map_class():
        return [[to_json(k), to_json(x)] for k, x in v.items()]
    raise TypeError(f"{v!r} is not a value assay can encode")


_RecordClass: Any = None              # assay.model.record.Record (which imports this module)


def canonical(v: Any) -> bytes:
    """A byte string that identifies a value, the same in every process (no `hash()`).

    The encoding is part of every fingerprint: it must not change.  (Hot: the kernel interns
    local states with it, so enum members and small ints are encoded once.)"""
    global _RecordClass
    if v is None:
        return b"N"
    t = type(v)
    if t is int:
        b = _INTS.get(v)
        if b is None:
            s = str(v).encode()
            b = b"i" + len(s).to_bytes(2, "big") + s
            if -1024 <= v <= 65536:
                _INTS[v] = b
        return b
    if t is bool:
        return b"T" if v else b"F"
    if t is tuple:
        return b"t" + _join([canonical(x) for x in v])
    if t is frozenset:
        return b"f" + _join(sorted([canonical(x) for x in v]))
    if isinstance(v, enum.Enum):
        # by class (held here, so never another class at the same address) and member name
        names = _ENUMS.get(t)
        if names is None:
            names = _ENUMS[t] = {}
        b = names.get(v.name)
        if b is None:
            s = f"{t.__qualname__}.{v.name}".encode()
            b = names[v.name] = b"e" + len(s).to_bytes(2, "big") + s
        return b
    if isinstance(v, str):
        s = v.encode()
        return b"s" + len(s).to_bytes(4, "big") + s
    if _RecordClass is None:
        from assay.model.record import Record

        _RecordClass = Record
    if isinstance(v, _RecordClass):
        # a message is "m", as it always was; any other record "r"
        parts = [t.__qualname__.encode()] + [canonical(x) for x in v.values()]
        return (b"m" if t.__assay_kind__ == "message" else b"r") + _join(parts)
    if t is _map_class():
        d = v._d
        pairs = sorted([(canonical(k), k) for k in d], key=_first)
        return b"d" + _join([b for ck, k in pairs for b in (ck, canonical(d[k]))])
    raise TypeError(f"{v!r} is not a value assay can encode")


_INTS: dict[int, bytes] = {}


def exact_key(v: Any) -> Any:
    """A key for `v` whose equality is that of `canonical(v)`: `v` itself where Python's
    equality already is (ints, strings, plain Enum members, None, and tuples, frozensets and
    records of those), else its canonical bytes (`True == 1` in Python; bytes equal no
    value).  For deduplicating values and interning events: cheaper than `canonical` for the
    usual ones."""
    t = type(v)
    # the usual arguments inline (an int, a flat tuple of leaves): one call, not two
    if t in _EXACT_LEAVES or t is tuple and _EXACT_LEAVES.issuperset(map(type, v)):
        return v
    return v if _exact(v) else canonical(v)


def _exact(v: Any) -> bool:
    t = type(v)
    if t in _EXACT_LEAVES:
        return True
    if t is tuple or t is frozenset:
        # a flat collection of leaves (an action's argument (p, q), (acc, ins, Val.X)):
        # one test in C, not a call per item; else a call only per item that is no leaf (a
        # local state's one frozenset among its ints)
        leaves = _EXACT_LEAVES
        return leaves.issuperset(map(type, v)) \
            or all(map(_exact, [x for x in v if type(x) not in leaves]))
    kind = _EXACT_KINDS.get(t)
    if kind is None:
        kind = _EXACT_KINDS[t] = _exact_kind(t)
        if kind == 1:
            _EXACT_LEAVES.add(t)
    if kind == 2:
        return all(map(_exact, v._values))
    return kind != 0


def _exact_kind(t: type) -> int:
    """0: Python's equality of a `t` may differ from its canonical one (bool, IntEnum, a
    class with its own `__eq__`); 1: it is the same (Peer, a plain Enum); 2: a record, the
    same if its values' is."""
    from assay.model.record import Record

    if t is Peer or issubclass(t, enum.Enum) and t.__eq__ is object.__eq__:
        return 1
    if issubclass(t, Record) and t.__eq__ is Record.__eq__:
        return 2
    return 0


_EXACT_KINDS: dict[type, int] = {}
# the types whose values are exact by themselves (kind 1 above, found as they come)
_EXACT_LEAVES: set[type] = {int, str, type(None)}


def _first(pair: tuple[bytes, Any]) -> bytes:
    return pair[0]


def _canonical_or_repr(v: Any) -> Any:
    """A sort key for values that may not all be encodable (one of them is the wrong one)."""
    try:
        return (0, canonical(v))
    except TypeError:
        return (1, repr(v).encode())

_ENUMS: dict[type, dict[str, bytes]] = {}


def _join(parts: list[bytes]) -> bytes:
    """`parts`, each with its length, after their count (4-byte big-endian numbers)."""
    return len(parts).to_bytes(4, "big") + b"".join(
        [len(p).to_bytes(4, "big") + p for p in parts])


def admits_any(t: TypeSpec) -> bool:
    """True if a value of type `t` may hold values of unconstrained type somewhere."""
    if t is ANY:
        return True
    if isinstance(t, _FrozenSet):
        return admits_any(t.elem)
    if isinstance(t, _Tuple):
        return any(admits_any(e) for e in t.elems) if t.elems is not None \
            else admits_any(t.rest)  # type: ignore[arg-type]
    if isinstance(t, _Optional):
        return admits_any(t.inner)
    if isinstance(t, _Map):
        return admits_any(t.key) or admits_any(t.value)
    return False


def is_mutable_default(v: Any) -> bool:
    return isinstance(v, list | dict | set | bytearray)


# --- generated checkers ---------------------------------------------------------------------
#
# The kernel checks every step's new state (`conforms_from` on each changed field).  Through the
# type specs' methods that is a method call, a `map` and a `compress` per level of nesting;
# here the same checks are written out once per field type as Python source and compiled: one
# function per component, nested loops instead of calls, scalar tests inline.  The result is
# the same boolean (`conforms(new)`, given that the old state conforms); a failure is then
# described by the specs' own methods.

class _Gen:
    """Source lines of one generated checker and the objects its code refers to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {"_items_from": _items_from, "_is": is_, "_islice": islice}
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def bind(self, obj: Any, base: str = "T") -> str:
        for k, x in self.env.items():
            if x is obj:
                return k
        k = self.name(base)
        self.env[k] = obj
        return k

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def _inline(t: TypeSpec, v: str, g: _Gen) -> str | None:
    """A Python expression for `t.conforms(v)` (`v` a name), or None where there is none."""
    if isinstance(t, _Bool):
        return f"({v} is True or {v} is False)"
    if type(t) is _Int:
        if t.range is None:
            return f"type({v}) is int"
        lo, hi = g.bind(t.range.lo, "lo"), g.bind(t.range.hi, "hi")     # not as text
        return f"(type({v}) is int and {lo} <= {v} <= {hi})"
    if isinstance(t, _Str):
        return f"isinstance({v}, str)"
    if type(t) is _Enum:
        return f"type({v}) is {g.bind(t.cls, 'E')}"
    if type(t) is _Record:
        return f"(isinstance({v}, {g.bind(t.cls, 'C')}) and {v}.__class__.__assay_conforms__({v}))"
    item = t.rest if type(t) is _Tuple else t.elem if type(t) is _FrozenSet else None
    every = _all_of(item, v, g) if item is not None else None
    if every is not None:                   # a tuple or set of exactly typed scalars
        return f"(type({v}) is {'tuple' if type(t) is _Tuple else 'frozenset'} and {every})"
    return None


def _all_of(t: TypeSpec, v: str, g: _Gen) -> str | None:
    """A Python expression, in C but for one frame-less call or two, for "every item of the
    collection `v` conforms to the scalar `t`" where `t`'s test is its values' exact type
    (int, bool, an Enum; an int range by `min` and `max` besides): `{int}.issuperset(map(type,
    v))` walks the items in C, where a loop of inline tests runs bytecode per item.  None for
    a type tested otherwise (a str: `isinstance`, which admits subclasses)."""
    if isinstance(t, _Bool):
        exact: type = bool
    elif type(t) is _Int:
        exact = int
    elif type(t) is _Enum:
        exact = t.cls
    else:
        return None
    e = f"{g.bind(frozenset({exact}), 'S')}.issuperset(map(type, {v}))"
    if type(t) is _Int and t.range is not None:
        lo, hi = g.bind(t.range.lo, "lo"), g.bind(t.range.hi, "hi")     # not as text
        e = f"({e} and (not {v} or {lo} <= min({v}) and max({v}) <= {hi}))"
    return e


def _gen_conforms(t: TypeSpec, v: str, g: _Gen, depth: int) -> None:
    """Lines that return False unless `t.conforms(v)`."""
    e = _inline(t, v, g)
    if e is None:
        e = f"{g.bind(t.conforms, 'c')}({v})"
    g.emit(depth, f"if not {e}: return False")


def _gen_from(t: TypeSpec, v: str, o: str, g: _Gen, depth: int) -> None:
    """Lines that return False unless `t.conforms_from(v, o)` (`o` conforms to `t`)."""
    if isinstance(t, _Scalar) or type(t) is _Record:       # as cheap as the identity test
        e = _inline(t, v, g)
        if e is not None:
            g.emit(depth, f"if {v} is not {o} and not {e}: return False")
            return
    if type(t) is _Tuple:
        g.emit(depth, f"if {v} is not {o}:")
        d = depth + 1
        g.emit(d, f"if type({v}) is not tuple: return False")
        if t.elems is not None:
            n = len(t.elems)
            g.emit(d, f"if len({v}) != {n}: return False")
            g.emit(d, f"if type({o}) is not tuple or len({o}) != {n}:")
            if not t.elems:
                g.emit(d + 1, "pass")
            for i, et in enumerate(t.elems):
                x = g.name("x")
                g.emit(d + 1, f"{x} = {v}[{i}]")
                _gen_conforms(et, x, g, d + 1)
            g.emit(d, "else:")
            if not t.elems:
                g.emit(d + 1, "pass")
            for i, et in enumerate(t.elems):
                x, y = g.name("x"), g.name("y")
                g.emit(d + 1, f"{x} = {v}[{i}]; {y} = {o}[{i}]")
                _gen_from(et, x, y, g, d + 1)
            return
        rest = t.rest
        assert rest is not None
        every = _all_of(rest, v, g) if isinstance(rest, _Scalar) else None
        if every is not None:           # every item, in C: cheaper than finding the new ones
            g.emit(d, f"if not {every}: return False")
            return
        g.emit(d, f"if type({o}) is not tuple or len({v}) != len({o}):")
        # as `_items_from`: an item that is one of the old items' objects conforms
        x = g.name("x")
        if isinstance(rest, _Scalar):
            g.emit(d + 1, f"for {x} in {v}:")
            _gen_conforms(rest, x, g, d + 2)
        else:
            # a channel appended to, or popped at its head (every other item the old one's
            # object, compared in C): the appended item is all there is to check
            g.emit(d + 1, f"if type({o}) is tuple and len({v}) == len({o}) + 1 "
                          f"and all(map(_is, {v}, {o})):")
            g.emit(d + 2, f"{x} = {v}[-1]")
            _gen_conforms(rest, x, g, d + 2)
            g.emit(d + 1, f"elif type({o}) is tuple and len({v}) == len({o}) - 1 "
                          f"and all(map(_is, {v}, _islice({o}, 1, None))):")
            g.emit(d + 2, "pass")
            g.emit(d + 1, "else:")
            ids = g.name("ids")
            g.emit(d + 2, f"{ids} = set(map(id, {o})) if type({o}) is tuple else ()")
            g.emit(d + 2, f"for {x} in {v}:")
            g.emit(d + 3, f"if id({x}) not in {ids}:")
            _gen_conforms(rest, x, g, d + 4)
        g.emit(d, "else:")
        x, y = g.name("x"), g.name("y")
        g.emit(d + 1, f"for {x}, {y} in zip({v}, {o}):")
        _gen_from(rest, x, y, g, d + 2)
        return
    if type(t) is _FrozenSet:
        g.emit(depth, f"if {v} is not {o}:")
        g.emit(depth + 1, f"if type({v}) is not frozenset: return False")
        x = g.name("x")
        every = _all_of(t.elem, v, g) if isinstance(t.elem, _Scalar) else None
        if every is not None:
            g.emit(depth + 1, f"if not {every}: return False")
            return
        e = _inline(t.elem, x, g) if isinstance(t.elem, _Scalar) else None
        if e is not None:               # scalars: cheaper to check than to look up
            g.emit(depth + 1, f"for {x} in {v}:")
            g.emit(depth + 2, f"if not {e}: return False")
        else:
            g.emit(depth + 1, f"if not _items_from({g.bind(t.elem)}, {v}, {o}): return False")
        return
    g.emit(depth, f"if {v} is not {o} and not {g.bind(t.conforms_from, 'f')}({v}, {o}): "
                  "return False")


def record_checker(types: tuple[TypeSpec, ...]) -> Any:
    """A function `(r) -> bool`: whether the field values of record `r` conform to `types`
    (its fields' types, in order) — `all(t.conforms(x) for t, x in zip(types, r._values))`,
    generated once per record class: scalar fields tested inline, one frame per record."""
    g = _Gen()
    g.emit(0, "def check(r):")
    if types:
        g.emit(1, "v = r._values")
    for i, t in enumerate(types):
        x = g.name("x")
        g.emit(1, f"{x} = v[{i}]")
        _gen_conforms(t, x, g, 1)
    g.emit(1, "return True")
    src = "\n".join(g.lines)
    exec(compile(src, "<assay record checker>", "exec"), g.env)
    check = g.env["check"]
    check.__assay_source__ = src
    return check


def state_checker(types: tuple[TypeSpec, ...]) -> Any:
    """A function `(new, old) -> bool`: whether the state `new` (a tuple of field values, of
    which the first `len(types)` are checked) conforms to `types`, given that `old` does —
    `all(t.conforms_from(new[i], old[i]))`, generated and compiled once (see above)."""
    g = _Gen()
    g.emit(0, "def check(new, old):")
    for i, t in enumerate(types):
        v, o = g.name("v"), g.name("o")
        g.emit(1, f"{v} = new[{i}]; {o} = old[{i}]")
        _gen_from(t, v, o, g, 1)
    g.emit(1, "return True")
    src = "\n".join(g.lines)
    exec(compile(src, "<assay state checker>", "exec"), g.env)
    check = g.env["check"]
    check.__assay_source__ = src
    return check


def scalars_only(t: TypeSpec) -> bool:
    """Whether every value of `t` is made of scalars only (no record, message or value of any
    kind inside): a field of such a type cannot hold a delivered message (`Runner._run`)."""
    if isinstance(t, _Scalar):
        return True
    if isinstance(t, _Tuple):
        return all(map(scalars_only, t.elems or ())) and (t.rest is None
                                                           or scalars_only(t.rest))
    if isinstance(t, _FrozenSet):
        return scalars_only(t.elem)
    if isinstance(t, _Optional):
        return scalars_only(t.inner)
    if isinstance(t, _Map):
        return scalars_only(t.key) and scalars_only(t.value)
    return False
