"""Records: immutable, typed values with named fields, equal by value.

`class Ballot(Record): n: int; leader: Peer` declares a record type; `Ballot(1, Peer("a"))`
builds one, `b.replace(n=2)` a changed copy, and assigning a field is an error.  A record is a
value like an int or a tuple: a component field, a message field, an item of a tuple, set or
`Map`.  `Message` (`assay.model.message`) is the record that travels between components: this
module is the one home of the fields, their types and their JSON form for both.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, dataclass_transform, get_type_hints

from assay.model.types import (
    ImmutableError,
    Peer,
    TypeSpec,
    UnsupportedType,
    _exact_kind,
    admits_any,
    is_mutable_default,
    parse_type,
    record_checker,
    to_json,
)

_MISSING = object()

# --- hash-consing -------------------------------------------------------------------------------
# `Phase2b(acc, rm, b, v)` returns the one record of its class with those values already built,
# when every value is of a type whose Python equality is identity of type and value (`_UNIQUE`:
# int, None, Peer and plain Enum members -- not str, which equals a Peer; not bool, which
# equals an int; nothing holding a message, whose sender is no part of equality): no new object
# and, in a set or dict lookup, no `__eq__` (CPython compares identity first), and its hash is
# computed once.  Equality stays by class and values, so a record built otherwise (`with_sender`,
# a symmetry's renaming, one from before a table was cleared) is equal all the same: nothing
# depends on which object a value is, only on how much work finding it costs.  Each class's
# table holds at most `INTERN_LIMIT` records and is emptied when full (a long simulation or
# runtime, whose messages carry ever new values, does not keep them all).
INTERN_LIMIT = 1 << 15
_UNIQUE: set[type] = {int, type(None), Peer}
_is_unique = _UNIQUE.issuperset           # of `map(type, values)`: one test in C
_SEEN: set[type] = {int, type(None), Peer, str, bool, tuple, frozenset}   # classified
_seen_all = _SEEN.issuperset


def _classify(values: tuple[Any, ...]) -> bool:
    """Note the types of `values` not seen before (a plain Enum's joins `_UNIQUE`); whether the
    values are now all unique-typed."""
    for t in map(type, values):
        if t not in _SEEN:
            _SEEN.add(t)
            if t is not bool and _exact_kind(t) == 1:
                _UNIQUE.add(t)
    return _is_unique(map(type, values))


class RecordFieldError(TypeError):
    """A record or message built with a missing or unknown field, or too many positional
    arguments: the spec's code is ill-formed (the kernel reports it as a spec error, not a
    violation)."""

    def __init__(self, message: str, cls: type[Record] | None = None) -> None:
        super().__init__(message)
        self.cls = cls


def _field_property(i: int) -> property:
    def get(self: Record) -> Any:
        return self._values[i]

    get.__assay_field__ = True     # type: ignore[attr-defined]
    return property(get)


def is_field_property(attr: Any) -> bool:
    """Whether a class attribute of a record class is the read of one of its fields (which
    `Record` defines for each field), not something of the spec's."""
    return isinstance(attr, property) and getattr(attr.fget, "__assay_field__", False)


# Type checkers (mypy, pyright) see a record type as a frozen dataclass: its fields, its
# constructor (missing and unknown fields are errors before any run) and no assignment.
@dataclass_transform(eq_default=True, frozen_default=True)
class Record:
    """Base class of a record type: fields are class-level annotations, optionally with
    defaults (`n: int = 0`), in declaration order (a subclass's after its base's)."""

    __assay_fields__: ClassVar[tuple[str, ...]] = ()
    __assay_defaults__: ClassVar[dict[str, Any]] = {}
    __assay_types__: ClassVar[dict[str, TypeSpec] | None] = None
    __assay_checks__: ClassVar[tuple[Callable[[Any], bool], ...] | None] = None
    __assay_kind__: ClassVar[str] = "record"      # how errors name it: "record", "message"
    __match_args__: ClassVar[tuple[str, ...]] = ()

    __assay_arity__: ClassVar[int] = 0
    __assay_table__: ClassVar[dict[tuple[Any, ...], Any]] = {}

    __slots__ = ("_values", "_hash")
    if TYPE_CHECKING:
        _values: tuple[Any, ...]
        _hash: int | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("_")]
        _check_field_names(cls, own)
        inherited = [n for n in cls.__assay_fields__ if n not in own]
        cls.__assay_fields__ = tuple(inherited + own)
        cls.__assay_arity__ = len(cls.__assay_fields__)
        cls.__assay_table__ = {}         # its own (hash-consing, above)
        defaults = dict(cls.__assay_defaults__)
        for n in own:
            if n in cls.__dict__:
                defaults[n] = cls.__dict__[n]
                delattr(cls, n)
        cls.__assay_defaults__ = defaults
        cls.__assay_types__ = None
        # its own first `__assay_conforms__` (which replaces itself with the class's check)
        type.__setattr__(cls, "__assay_conforms__", Record.__dict__["__assay_conforms__"])
        cls.__assay_checks__ = None      # each field's membership test, once the types are
        cls.__match_args__ = cls.__assay_fields__  # type: ignore[misc]  # `case Ballot(n, l):`
        # a field read is a property (not `__getattr__`, which runs only after a failed
        # lookup: ten times the cost), unless a class attribute of that name comes first
        for i, n in enumerate(cls.__assay_fields__):
            found = next((k.__dict__[n] for k in cls.__mro__ if n in k.__dict__), None)
            if found is None or is_field_property(found):
                setattr(cls, n, _field_property(i))
        if "__new__" not in cls.__dict__:
            type.__setattr__(cls, "__new__", staticmethod(_new_of(cls)))

    if not TYPE_CHECKING:   # a type checker sees the declared fields (dataclass_transform)
        def __new__(cls, /, *args: Any, **kwargs: Any) -> Any:   # a field may be "cls"
            # (each subclass has its own, `_new_of`: this one builds a record class with no
            # fields of its own, such as `Record` itself)
            return _construct(cls, args, kwargs)

    @classmethod
    def _fresh(cls, values: tuple[Any, ...]) -> Any:
        """A new record of this class with these field values (the constructor's checks done)."""
        r = object.__new__(cls)
        _set_values(r, values)
        _set_hash(r, None)
        return r

    @classmethod
    def _interned(cls, values: tuple[Any, ...]) -> Any:
        """A new record with these (unique-typed) values, noted in its class's table."""
        table = cls.__assay_table__
        if len(table) >= INTERN_LIMIT:
            table.clear()
        r = table[values] = cls._fresh(values)
        return r

    @classmethod
    def _build(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        fields = cls.__assay_fields__
        if not kwargs and len(args) == len(fields):       # every field, by position
            return args
        if len(args) > len(fields):
            raise RecordFieldError(f"{cls.__name__} takes {len(fields)} field(s), "
                                   f"got {len(args)} positional arguments", cls)
        values = list(args)
        for name in fields[len(args):]:
            if name in kwargs:
                values.append(kwargs.pop(name))
            elif name in cls.__assay_defaults__:
                values.append(cls.__assay_defaults__[name])
            else:
                raise RecordFieldError(f"{cls.__name__} is missing field {name!r}", cls)
        if kwargs:
            name = next(iter(kwargs))
            if name in fields:
                raise RecordFieldError(f"{cls.__name__} got field {name!r} twice "
                                       "(by position and by name)", cls)
            raise RecordFieldError(f"{cls.__name__} has no field {name!r}; "
                                   f"fields: {', '.join(fields) or '(none)'}", cls)
        return tuple(values)

    if not TYPE_CHECKING:            # a type checker sees the declared fields, not Any
        def __getattr__(self, name: str) -> Any:
            fields = type(self).__assay_fields__
            if name in fields:
                return self._values[fields.index(name)]
            raise AttributeError(f"{type(self).__name__} has no field {name!r}", name=name,
                                 obj=self)

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        raise ImmutableError(f"{cls.__name__} is immutable: a {cls.__assay_kind__} cannot be "
                             f"changed (assigning {name!r}); build a changed copy with "
                             f"replace({name}=...)", cls.__assay_kind__, "attribute", name)

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    def replace(self, **changes: Any) -> Any:
        """A copy of this record with the given fields changed: `b.replace(n=b.n + 1)`."""
        fields = type(self).__assay_fields__
        values = list(self._values)
        for k, v in changes.items():
            try:
                values[fields.index(k)] = v
            except ValueError:
                raise RecordFieldError(f"{type(self).__name__}.replace(): there is no field "
                                       f"{k!r}; fields: {', '.join(fields) or '(none)'}",
                                       type(self)) from None
        return type(self)(*values)

    @classmethod
    def describe_fields(cls) -> str:
        """The fields as a spec declares them: `rm: Peer, vote: bool = True`."""
        hints = cls.__dict__.get("__annotations__", {})
        out = []
        for n in cls.__assay_fields__:
            ann = hints.get(n) or next((k.__dict__["__annotations__"][n] for k in cls.__mro__
                                        if n in k.__dict__.get("__annotations__", {})), "?")
            t = ann if isinstance(ann, str) else getattr(ann, "__name__", repr(ann))
            d = cls.__assay_defaults__.get(n, _MISSING)
            out.append(f"{n}: {t}" + ("" if d is _MISSING else f" = {d!r}"))
        return ", ".join(out) or "(none)"

    def values(self) -> tuple[Any, ...]:
        """The field values, in declaration order."""
        return self._values

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values == other._values  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash((type(self).__qualname__, self._values))
            object.__setattr__(self, "_hash", h)
        return h

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(self.__assay_fields__, self._values))
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> Any:   # copy/deepcopy support; assay never pickles network input
        return (type(self), self._values)

    # --- typing -------------------------------------------------------------------------------

    @classmethod
    def field_types(cls) -> dict[str, TypeSpec]:
        """The type spec of each field; raises `UnsupportedType` naming the bad field."""
        if cls.__assay_types__ is None:
            kind = cls.__assay_kind__
            try:
                hints = get_type_hints(cls, include_extras=True)
            except Exception as e:  # a NameError in a forward reference, for instance
                raise UnsupportedType(f"cannot resolve the field types of {cls.__name__}: {e}") \
                    from None
            types: dict[str, TypeSpec] = {}
            for n in cls.__assay_fields__:
                try:
                    types[n] = parse_type(hints[n])
                except UnsupportedType as e:
                    raise UnsupportedType(f"field {n!r} of {kind} {cls.__name__}: {e}") \
                        from None
                d = cls.__assay_defaults__.get(n, _MISSING)
                if d is not _MISSING and is_mutable_default(d):
                    raise UnsupportedType(f"field {n!r} of {kind} {cls.__name__} has a mutable "
                                          f"default {d!r}; use an immutable value")
                if admits_any(types[n]):
                    raise UnsupportedType(
                        f"field {n!r} of {kind} {cls.__name__} has type "
                        f"{types[n].describe()}, which does not say what it holds; give the "
                        "element types (e.g. frozenset[Peer], tuple[int, ...]): "
                        f"{kind}s are decoded from traces and the wire by their declared types")
            cls.__assay_types__ = types
        return cls.__assay_types__

    @classmethod
    def __assay_conforms__(cls, r: Record) -> bool:
        """Whether the field values of `r` (a `cls`) have their declared types.  The first
        call on a class generates its check (`types.record_checker`) and puts it in the
        class's place of this method, so `cls.__assay_conforms__(r)` is one call from then
        on (each record class has its own: `__init_subclass__`)."""
        types = cls.field_types()
        check = record_checker(tuple(types[n] for n in cls.__assay_fields__))
        cls.__assay_checks__ = (check,)
        type.__setattr__(cls, "__assay_conforms__", staticmethod(check))
        return bool(check(r))

    def bad_field(self) -> str | None:
        """The first field whose value does not have its declared type, described."""
        types = type(self).field_types()
        for n, v in zip(self.__assay_fields__, self._values):
            t = types[n]
            if not t.conforms(v):
                inner = t.mismatch(v)
                where = f"field {n!r} of {type(self).__name__}"
                if inner is None or inner.endswith(f"is not {t.describe()}"):
                    return f"{where} is {v!r}, not {t.describe()}"
                return f"{where}: {inner}"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"type": type(self).__name__,
                "fields": {n: to_json(v) for n, v in zip(self.__assay_fields__, self._values)}}


def _construct(cls: type[Record], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A record of `cls` built from these constructor arguments: the one already built when
    there is one (hash-consing, above)."""
    if kwargs or len(args) != cls.__assay_arity__:
        args = cls._build(args, kwargs)
    if _is_unique(map(type, args)):
        r = cls.__assay_table__.get(args)
        return cls._interned(args) if r is None else r
    if _seen_all(map(type, args)) or not _classify(args):
        return cls._fresh(args)
    return cls._interned(args)


def _new_of(cls: type[Record]) -> Callable[..., Any]:
    """`cls.__new__`: `_construct` with the class's arity and table bound (guards build many
    records to look them up: every field by position is one test and one lookup)."""
    arity = cls.__assay_arity__
    get = cls.__assay_table__.get       # the table is emptied, never replaced

    fresh = cls._fresh

    def __new__(c: type[Record], /, *args: Any, **kwargs: Any) -> Any:  # a field "c" too
        if c is cls and not kwargs and len(args) == arity:
            if _is_unique(map(type, args)):
                r = get(args)
                return c._interned(args) if r is None else r
            if _seen_all(map(type, args)):          # a tuple, a str, ...: not interned
                return fresh(args)
        return _construct(c, args, kwargs)

    __new__.__qualname__ = f"{cls.__qualname__}.__new__"
    __new__.__assay_new__ = True       # type: ignore[attr-defined]
    return __new__


def is_assay_dunder(name: str, attr: Any) -> bool:
    """Whether a record class's `name` attribute is one `Record` itself gives each record
    class (its `__new__`, `_new_of`), not something of the spec's that changes its meaning."""
    return name == "__new__" and isinstance(attr, staticmethod) \
        and getattr(attr.__func__, "__assay_new__", False)


# the slots' own setters (no attribute lookup per field set)
_set_values = Record.__dict__["_values"].__set__
_set_hash = Record.__dict__["_hash"].__set__


def record_from_json(j: Any, known: Mapping[str, type[Record]]) -> Any:
    """Decode `{"type": ..., "fields": {...}}` into one of the `known` record (or message)
    classes only, every field by its declared type; a field left out takes its default."""
    if not isinstance(j, dict) or not isinstance(j.get("type"), str):
        raise ValueError(f"expected a record object with a 'type', got {j!r}")
    cls = known.get(j["type"])
    if cls is None:
        kind = next(iter(known.values())).__assay_kind__ if known else "record"
        raise ValueError(f"unknown {kind} type {j['type']!r}")
    fields = j.get("fields", {})
    if not isinstance(fields, dict):
        raise ValueError(f"'fields' of a {cls.__name__} must be an object")
    types = cls.field_types()
    unknown = set(fields) - set(cls.__assay_fields__)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    values = {n: types[n].from_json(fields[n]) for n in cls.__assay_fields__ if n in fields}
    return cls(**values)


def _check_field_names(cls: type, own: list[str]) -> None:
    """A field named like a method or attribute every record (or message) has — `values`,
    `replace`, `sender`... — would be shadowed by it: `m.values` would be the method, not the
    field, and compare unequal to every value, silently.  A spec error at the class."""
    from assay.errors import SpecError, caller_location

    base = next((k for k in cls.__mro__[1:] if k.__module__ == __name__
                 or k.__module__ == "assay.model.message"), Record)
    kind = getattr(cls, "__assay_kind__", "record")
    for n in own:
        if hasattr(base, n):
            what = "'m.sender' names the peer a message came from" if n == "sender" else \
                f"'{n}' is {'a method' if callable(getattr(base, n)) else 'an attribute'} of " \
                f"every {kind}"
            raise SpecError(f"field {n!r} of {kind} {cls.__name__} uses a reserved name",
                            caller_location(3), [f"{what}; rename the field"])
