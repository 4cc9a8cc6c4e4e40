"""Set order in the determinism check: the second run of a local step sees its sets iterated
the other way round.

A frozenset of strs, Peers or Enum members is iterated in an order that follows the strings'
hashes, which change with PYTHONHASHSEED (and equal sets of ints may iterate differently after
different histories).  A handler that takes "the first" element (`next(iter(self.peers))`,
`list(self.names)[0]`, a `for` that stops early) is then a function of the process, not of the
state: `assay check` would find a violation under one seed and not under another.  Running
the step twice (`determinism.twice`) in one process sees the same order both times, so on the
second run (`ACTIVE`) the sets a handler reads — its component's fields, inside tuples too,
and a port's peers — are `Reordered`: equal frozensets whose iteration is reversed.  A step
whose result depends on the order then gives two results: the `SpecError` of `determinism`.

What a second run makes goes back to plain frozensets where it leaves the handler (`plain`:
the new field values, a message sent or set as a timer: `plain`), so type checks see what
the first run saw.  Messages received are not reordered (their sets are read as they came).
"""
from __future__ import annotations

from typing import Any

from assay.model.message import Message
from assay.model.record import Record

ACTIVE = [False]        # set by `determinism.twice` during the second run


class Reordered(frozenset):
    """An equal frozenset that iterates the other way round."""

    __slots__ = ()

    def __iter__(self) -> Any:
        return reversed(list(frozenset.__iter__(self)))

    def __repr__(self) -> str:
        return repr(frozenset(self))


def reordered(v: Any) -> Any:
    """`v` with each set of two or more elements in it (itself, inside tuples) `Reordered`."""
    t = type(v)
    if t is frozenset:
        return Reordered(v) if len(v) > 1 else v
    if t is tuple and v:
        items = tuple(map(reordered, v))
        return items if any(a is not b for a, b in zip(items, v)) else v
    return v


def plain(v: Any) -> Any:
    """`v` with each `Reordered` in it (itself, inside tuples, records and messages) a plain
    frozenset again."""
    t = type(v)
    if t is Reordered:
        return frozenset(frozenset.__iter__(v))
    if t is tuple and v:
        items = tuple(map(plain, v))
        return items if any(a is not b for a, b in zip(items, v)) else v
    if isinstance(v, Record):
        old = v._values
        new = tuple(map(plain, old))
        if all(a is b for a, b in zip(new, old)):
            return v
        r = object.__new__(t)
        object.__setattr__(r, "_values", new)
        object.__setattr__(r, "_hash", None)
        if isinstance(v, Message):                  # the same sender and meta
            object.__setattr__(r, "sender", v.sender)
            object.__setattr__(r, "_meta", getattr(v, "_meta", ()))
        return r
    return v
