"""A value of a spec as assay prints it to a person (counterexamples, verify's models, protocol
witnesses): Enum members by name, peers bare, sets in sorted braces, maps in braces, records
as `Type(field=value, ...)` — one notation, the same in every report."""
from __future__ import annotations

import enum
from typing import Any

from assay.model.mapping import Map
from assay.model.record import Record
from assay.model.types import Peer


def show(v: Any) -> str:
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, Peer):
        return str(v)
    if isinstance(v, frozenset):
        return "{" + ", ".join(sorted(show(x) for x in v)) + "}"
    if isinstance(v, tuple):
        return "(" + ", ".join(show(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, Map):
        return "{" + ", ".join(f"{show(k)}: {show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Record):
        inner = ", ".join(f"{n}={show(x)}" for n, x in zip(v.__assay_fields__, v.values()))
        return f"{type(v).__name__}({inner})"
    return repr(v)


def printable(text: str, most: int | None = None) -> str:
    """`text` with every character a terminal or a log reader would act on — line breaks,
    escape sequences, other control and format characters (a bidirectional override), a lone
    surrogate — written as its Python escape (``\\n``, ``\\x1b``, ``\\u202e``); the rest as it
    is; cut after `most` characters (if given), saying how many more there were.  For a
    string another party chose (a peer's frame, a state's str, a node's log line) printed or
    logged: it stays on its line and cannot forge one, move the cursor or clear the screen
    (nor, with `most`, fill a disk one line at a time)."""
    if most is not None and len(text) > most:
        text = f"{text[:most]}... ({len(text) - most:,} more characters)"
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
