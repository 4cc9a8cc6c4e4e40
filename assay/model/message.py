"""Messages: immutable, typed records, equal by value.

`class Prepared(Message): rm: Peer` declares a message type with one field.  Instances are
hashable and compare by type and field values; `m.sender` (set by the kernel on delivery) names
the peer it came from and takes no part in equality.
"""
from __future__ import annotations

from typing import Any, ClassVar, get_type_hints

from assay.model.types import (
    TypeSpec,
    UnsupportedType,
    admits_any,
    is_mutable_default,
    parse_type,
    to_json,
)

_MISSING = object()


class MessageFieldError(TypeError):
    """A message built with a missing or unknown field, or too many positional arguments:
    the spec's code is ill-formed (the kernel reports it as a spec error, not a violation)."""

    def __init__(self, message: str, cls: type[Message] | None = None) -> None:
        super().__init__(message)
        self.cls = cls


class Message:
    """Base class of every message type in a spec."""

    __assay_fields__: ClassVar[tuple[str, ...]] = ()
    __assay_defaults__: ClassVar[dict[str, Any]] = {}
    __assay_types__: ClassVar[dict[str, TypeSpec] | None] = None

    __slots__ = ("_values", "_hash", "sender")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("_")]
        inherited = [n for n in cls.__assay_fields__ if n not in own]
        cls.__assay_fields__ = tuple(inherited + own)
        defaults = dict(cls.__assay_defaults__)
        for n in own:
            if n in cls.__dict__:
                defaults[n] = cls.__dict__[n]
                delattr(cls, n)
        cls.__assay_defaults__ = defaults
        cls.__assay_types__ = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self.__assay_fields__
        if len(args) > len(fields):
            raise MessageFieldError(f"{type(self).__name__} takes {len(fields)} field(s), "
                                    f"got {len(args)} positional arguments", type(self))
        values = list(args)
        for name in fields[len(args):]:
            if name in kwargs:
                values.append(kwargs.pop(name))
            elif name in self.__assay_defaults__:
                values.append(self.__assay_defaults__[name])
            else:
                raise MessageFieldError(f"{type(self).__name__} is missing field {name!r}",
                                        type(self))
        if kwargs:
            name = next(iter(kwargs))
            if name in fields:
                raise MessageFieldError(f"{type(self).__name__} got field {name!r} twice "
                                        "(by position and by name)", type(self))
            raise MessageFieldError(f"{type(self).__name__} has no field {name!r}; "
                                    f"fields: {', '.join(fields) or '(none)'}", type(self))
        object.__setattr__(self, "_values", tuple(values))
        object.__setattr__(self, "_hash", None)
        object.__setattr__(self, "sender", None)

    def __getattr__(self, name: str) -> Any:
        fields = type(self).__assay_fields__
        if name in fields:
            return self._values[fields.index(name)]
        raise AttributeError(f"{type(self).__name__} has no field {name!r}", name=name, obj=self)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; build a new message instead")

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

    def with_sender(self, sender: str | None) -> Message:
        """A copy of this message that names its sender (equal to this one)."""
        m = object.__new__(type(self))
        object.__setattr__(m, "_values", self._values)
        object.__setattr__(m, "_hash", self._hash)
        object.__setattr__(m, "sender", sender)
        return m

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
                    raise UnsupportedType(f"field {n!r} of message {cls.__name__}: {e}") from None
                d = cls.__assay_defaults__.get(n, _MISSING)
                if d is not _MISSING and is_mutable_default(d):
                    raise UnsupportedType(f"field {n!r} of message {cls.__name__} has a mutable "
                                          f"default {d!r}; use an immutable value")
                if admits_any(types[n]):
                    raise UnsupportedType(
                        f"field {n!r} of message {cls.__name__} has type "
                        f"{types[n].describe()}, which does not say what it holds; give the "
                        "element types (e.g. frozenset[Peer], tuple[int, ...]): messages are "
                        "decoded from traces and the wire by their declared types")
            cls.__assay_types__ = types
        return cls.__assay_types__

    @classmethod
    def __assay_conforms__(cls, m: Message) -> bool:
        types = cls.field_types()
        return all(types[n].conforms(v) for n, v in zip(cls.__assay_fields__, m._values))

    def bad_field(self) -> str | None:
        """The first field whose value does not have its declared type, described."""
        types = type(self).field_types()
        for n, v in zip(self.__assay_fields__, self._values):
            if not types[n].conforms(v):
                return f"field {n!r} of {type(self).__name__} is {v!r}, not {types[n].describe()}"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"type": type(self).__name__,
                "fields": {n: to_json(v) for n, v in zip(self.__assay_fields__, self._values)}}


def message_from_json(j: Any, known: dict[str, type[Message]]) -> Message:
    """Decode `{"type": ..., "fields": {...}}` into one of the `known` message classes only."""
    if not isinstance(j, dict) or not isinstance(j.get("type"), str):
        raise ValueError(f"expected a message object with a 'type', got {j!r}")
    cls = known.get(j["type"])
    if cls is None:
        raise ValueError(f"unknown message type {j['type']!r}")
    fields = j.get("fields", {})
    if not isinstance(fields, dict):
        raise ValueError(f"'fields' of a {cls.__name__} must be an object")
    types = cls.field_types()
    unknown = set(fields) - set(cls.__assay_fields__)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    values = {n: types[n].from_json(fields[n]) for n in cls.__assay_fields__ if n in fields}
    return cls(**values)
