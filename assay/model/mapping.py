"""`Map`: the immutable map of the spec language (a TLA+ function, a Promela array).

A field declared `votes: Map[Peer, bool] = Map()` holds one; a handler changes it by replacing
it, `self.votes = self.votes.set(m.sender, True)`.  Two maps with the same items are equal and
hash equal, however they were built; they iterate, print and encode (`assay.model.types`) in
the canonical order of their keys, so a run does not depend on the order of insertion, on the
process or on `PYTHONHASHSEED`.
"""
from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Mapping as _Mapping
from typing import Any

from assay.model.types import ImmutableError, canonical

_NO_DEFAULT: Any = object()


class Map:
    """An immutable map from keys to values, both assay values.

    `Map()`, `Map({k: v, ...})`, `Map(pairs)`, or from a function over a finite domain,
    `Map.over(domain, lambda k: ...)` (TLA+'s `[k \\in S |-> e]`).  `m.set(k, v)` and
    `m.remove(k)` return new maps; `m[k]`, `m.get(k, d)`, `k in m`, `len(m)`, iteration,
    `keys()`, `values()` and `items()` read it, in the canonical order of the keys.
    In an annotation, `Map[K, V]` (or `typing.Mapping[K, V]`) gives the key and value types.
    """

    __slots__ = ("_d", "_keys", "_hash")
    _d: dict[Any, Any]
    _keys: tuple[Any, ...] | None
    _hash: int | None
    __class_getitem__: Any = classmethod(types.GenericAlias)   # Map[K, V] in an annotation

    def __init__(self, items: Any = (), /) -> None:
        if isinstance(items, Map):
            d = items._d
        elif isinstance(items, dict | _Mapping):
            d = dict(items)
        else:
            d = {}
            for pair in items:
                k, v = pair
                d[k] = v
        object.__setattr__(self, "_d", d)
        object.__setattr__(self, "_keys", None)
        object.__setattr__(self, "_hash", None)

    @classmethod
    def _of(cls, d: dict[Any, Any]) -> Map:
        m = object.__new__(cls)
        object.__setattr__(m, "_d", d)
        object.__setattr__(m, "_keys", None)
        object.__setattr__(m, "_hash", None)
        return m

    @classmethod
    def over(cls, domain: Iterable[Any], fn: Callable[[Any], Any]) -> Map:
        """The map from each `k` of `domain` to `fn(k)` (TLA+'s `[k \\in domain |-> fn(k)]`)."""
        return cls._of({k: fn(k) for k in domain})

    @classmethod
    def fromkeys(cls, domain: Iterable[Any], value: Any) -> Map:
        """The map from each key of `domain` to `value` (TLA+'s `[k \\in domain |-> value]`)."""
        return cls._of(dict.fromkeys(domain, value))

    # --- functional update ---------------------------------------------------------------------

    def set(self, key: Any, value: Any) -> Map:
        """This map with `key` mapped to `value` (added or replaced)."""
        d = self._d
        if key in d and d[key] is value:
            return self
        new = dict(d)
        new[key] = value
        return Map._of(new)

    def remove(self, key: Any) -> Map:
        """This map without `key`; KeyError if it has no such key."""
        if key not in self._d:
            raise KeyError(key)
        new = dict(self._d)
        del new[key]
        return Map._of(new)

    def __or__(self, other: Any) -> Map:
        """This map with the items of `other` (a Map or a dict) added or replacing its own."""
        if not isinstance(other, Map | dict):
            return NotImplemented
        return Map._of({**self._d, **(other._d if isinstance(other, Map) else other)})

    # --- reading -------------------------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        return self._d[key]

    def get(self, key: Any, default: Any = None) -> Any:
        return self._d.get(key, default)

    def __contains__(self, key: Any) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def _order(self) -> tuple[Any, ...]:
        """The keys in canonical order (computed once per map)."""
        keys = self._keys
        if keys is None:
            keys = tuple(sorted(self._d, key=canonical))
            object.__setattr__(self, "_keys", keys)
        return keys

    def __iter__(self) -> Iterator[Any]:
        return iter(self._order())

    def keys(self) -> tuple[Any, ...]:
        """The keys, in canonical order."""
        return self._order()

    def values(self) -> tuple[Any, ...]:
        """The values, in the canonical order of their keys."""
        d = self._d
        return tuple(d[k] for k in self._order())

    def items(self) -> tuple[tuple[Any, Any], ...]:
        """The (key, value) pairs, in the canonical order of the keys."""
        d = self._d
        return tuple((k, d[k]) for k in self._order())

    # --- a value -------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Map):
            return self._d == other._d
        if isinstance(other, dict):
            return self._d == other
        return NotImplemented

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash(frozenset(self._d.items()))
            object.__setattr__(self, "_hash", h)
        return h

    def __repr__(self) -> str:
        if not self._d:
            return "Map()"
        return "Map({" + ", ".join(f"{k!r}: {v!r}" for k, v in self.items()) + "})"

    def __reduce__(self) -> Any:   # copy/deepcopy support; assay never pickles network input
        return (Map, (self._d,))

    # --- what a map does not do ------------------------------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        raise ImmutableError(f"a Map is immutable: m[{key!r}] = ... cannot change it",
                             "Map", "assignment")

    def __delitem__(self, key: Any) -> None:
        raise ImmutableError(f"a Map is immutable: del m[{key!r}] cannot change it",
                             "Map", "deletion")

    def __setattr__(self, name: str, value: Any) -> None:
        raise ImmutableError(f"a Map is immutable (assigning {name!r})", "Map", "attribute")


_Mapping.register(Map)
