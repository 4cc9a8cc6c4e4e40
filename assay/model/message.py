"""Messages: the records components send each other.

`class Prepared(Message): rm: Peer` declares a message type with one field.  A message is a
`Record` (`assay.model.record`: fields, types, equality by value, JSON form); what it adds is
`m.sender`, set by the kernel on delivery, which names the peer it came from and takes no part
in equality.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

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
