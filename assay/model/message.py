"""Messages: the records components send each other.

`class Prepared(Message): rm: Peer` declares a message type with one field.  A message is a
`Record` (`assay.model.record`: fields, types, equality by value, JSON form); what it adds is
`m.sender`, set by the kernel on delivery, which names the peer it came from and takes no part
in equality.  A delivered message a handler keeps in a field forgets its sender (and an
interceptor's meta) there (`undelivered`): keep `m.sender` in a field of its own.
"""
from __future__ import annotations

from operator import is_not
from typing import TYPE_CHECKING, Any, ClassVar

from assay.model.mapping import Map
from assay.model.record import (  # the slots' own setters: guards build many messages
    Record,
    RecordFieldError,
    _set_hash,
    _set_values,
    record_from_json,
)

MessageFieldError = RecordFieldError     # the name the kernel and older callers use


class Message(Record):
    """Base class of every message type in a spec."""

    __assay_kind__: ClassVar[str] = "message"

    # `_meta`: what interceptors piggy-back on a delivered message (see
    # `assay.model.interceptor`), read with `self.meta(m)`; no part of equality either
    __slots__ = ("sender", "_meta")
    if TYPE_CHECKING:               # set by the kernel on delivery; not a field
        @property
        def sender(self) -> Any: ...

    @classmethod
    def _fresh(cls, values: tuple[Any, ...]) -> Any:
        m = object.__new__(cls)
        _set_values(m, values)
        _set_hash(m, None)
        _set_sender(m, None)
        _set_meta(m, ())
        return m

    def with_sender(self, sender: str | None, meta: tuple[tuple[str, Any], ...] = ()
                    ) -> Message:
        """A copy of this message that names its sender (equal to this one), carrying the
        envelope's `meta` (sorted (key, value) pairs; interceptors only)."""
        m = object.__new__(type(self))
        object.__setattr__(m, "_values", self._values)
        object.__setattr__(m, "_hash", self._hash)
        object.__setattr__(m, "sender", sender)
        object.__setattr__(m, "_meta", meta)
        return m


def message_from_json(j: Any, known: dict[str, type[Message]]) -> Message:
    """Decode `{"type": ..., "fields": {...}}` into one of the `known` message classes only."""
    return record_from_json(j, known)   # type: ignore[no-any-return]


_set_sender = Message.__dict__["sender"].__set__
_set_meta = Message.__dict__["_meta"].__set__


def undelivered(v: Any) -> Any:
    """`v` (a value) with every message in it that names its sender or carries an
    interceptor's meta replaced by an equal one that does neither; `v` itself when there is
    none.  The kernel keeps a step's new field values so (`Runner._run`): a state is keyed by
    its values' equality, which ignores `sender` and meta, so a message kept in a field with
    them would carry the sender or meta of whichever of two equal messages was kept first —
    a later `m.sender` or `self.meta(m)` read from the field would depend on the order of
    the search (and `check` would miss the runs of the other)."""
    if isinstance(v, Record):
        vals = v._values
        new = tuple(map(undelivered, vals))
        changed = any(map(is_not, new, vals))
        if isinstance(v, Message):
            meta: tuple[Any, ...] = getattr(v, "_meta", ())
            changed = changed or v.sender is not None or bool(meta)
        if not changed:
            return v
        return type(v)._fresh(new)
    t = type(v)
    if t is tuple:
        new = tuple(map(undelivered, v))
        return new if any(map(is_not, new, v)) else v
    if t is frozenset:
        items = list(v)
        plain = list(map(undelivered, items))
        return frozenset(plain) if any(map(is_not, plain, items)) else v
    if isinstance(v, Map):
        pairs = list(v.items())
        out = [(undelivered(k), undelivered(x)) for k, x in pairs]
        if any(a[0] is not b[0] or a[1] is not b[1] for a, b in zip(out, pairs)):
            return Map(out)
    return v
