"""The append-only log of a store kept with `--durability process`: a step is durable once its
record is written (one `write()` of one record per group commit, no fsync, no transaction, no
thread), and the records are folded into the SQLite file at checkpoints (`Store.checkpoint`:
when the log passes `CHECKPOINT_BYTES`, when the store closes, and when it next opens).

A killed process loses nothing written: the kernel holds what `write()` took.  A power cut may
lose the last records (what `process` durability does not promise to survive: the SQLite file
itself is synced at checkpoints only, as before).

The file, `<node>.sqlite-log` beside the store, private like it: the line `HEADER`, then
records, each `0xA5`, the payload's length and CRC-32 (4 bytes each, big-endian), and the
payload, a JSON array:

- `["s", steps, acked]`: `Store.save_steps` (each step `[instance, fields|null, frames,
  handled|null, clock|null, consumed|null]`, frames `[link, epoch, seq, frame]`, the rest as
  `StepRecord` says; acked `[link, epoch, seq]`);
- `["h", peer, epoch, seq]`: `save_handled`; `["f", peer, epochs]`: `forget`;
  `["a", rows]`: `acked_many`.

Reading it back (`read_log`) every record is checked: its CRC, then every field's type.  A
record cut short at the end of the file (the process was killed inside the `write()`, so none
of its steps had left the node: nothing of them was sent or acknowledged) or a tail of zero
bytes (a power cut) is dropped, with a warning — only when what follows its header can be
part of one payload (ASCII, and not a whole payload with its checksum: a length damaged on
disk must not drop the durable records after it); anything else that is not what assay writes —
a bad CRC, a record that does not decode, damage followed by more records — is a `StateError`
at the file, never a guess.

Folding (`Delta`) keeps what the records change since the last checkpoint, per row: the last
fields of each instance, each outbox row inserted or deleted, the handled numbers added (and
lives forgotten) per (peer, epoch), the highest clock.  Applying it is idempotent (every change
is "set this row" or "add to this set"), so a kill between a checkpoint's commit and the log's
truncation is harmless: the records are applied again, to the same result.
"""
from __future__ import annotations

import json
import logging
import struct
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable
from typing import Any

from assay.errors import Location, StateError

log = logging.getLogger("assay.runtime")

SUFFIX = "-log"                      # <node>.sqlite-log
HEADER = b"assay store log 1\n"
MARK = 0xA5
_HEAD = struct.Struct(">BII")        # mark, payload length, CRC-32
MAX_RECORD = 1 << 30
CHECKPOINT_BYTES = 1 << 20           # fold the log into SQLite past this size

_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def encode(record: list[Any]) -> bytes:
    """One record, framed."""
    payload = _dumps(record).encode()
    return _HEAD.pack(MARK, len(payload), zlib.crc32(payload)) + payload


class Handled:
    """A set of frame numbers (of one sender life), kept as a floor — every number from 1 up
    to it — and sorted, disjoint ranges of numbers above it (`ranges`, `lo`..`hi` both in,
    never touching one another or the floor); the floor rises as the gaps fill.  A run of
    numbers costs one range whatever its length: the honest cases (numbers in order, a few
    frames handled out of order, a receiver that restarted without a store seeing the numbers
    of a sender go on far above 0) stay at a few ranges; what makes many is a sparse numbering
    (2, 4, 6, …), which the receiver bounds (`opens`, `MAX_RANGES`)."""

    __slots__ = ("floor", "_lo", "_hi")

    MAX_RANGES = 1024   # ranges above the floor a receiver lets one sender life make

    def __init__(self, floor: int = 0, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self.floor = floor
        self._lo: list[int] = []
        self._hi: list[int] = []
        for lo, hi in ranges:
            self.add_range(lo, hi)

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """The ranges above the floor, lowest first, as (lo, hi), both in."""
        return list(zip(self._lo, self._hi))

    @property
    def above(self) -> set[int]:
        """The numbers above the floor, one by one (for a small set: a test's)."""
        return {n for lo, hi in zip(self._lo, self._hi) for n in range(lo, hi + 1)}

    def __len__(self) -> int:
        """The number of ranges above the floor (what `MAX_RANGES` bounds)."""
        return len(self._lo)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Handled):
            return NotImplemented
        return (self.floor, self._lo, self._hi) == (other.floor, other._lo, other._hi)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Handled({self.floor}, {self.ranges})"

    def __contains__(self, seq: int) -> bool:
        if seq <= self.floor:
            return True
        i = bisect_right(self._lo, seq) - 1
        return i >= 0 and seq <= self._hi[i]

    def opens(self, seq: int) -> bool:
        """Whether adding `seq` makes a new range: it is not in the set, and neither `seq - 1`
        nor `seq + 1` is."""
        if seq <= self.floor + 1:
            return False
        i = bisect_right(self._lo, seq) - 1
        if i >= 0 and seq <= self._hi[i] + 1:
            return False
        return not (i + 1 < len(self._lo) and self._lo[i + 1] == seq + 1)

    def add(self, seq: int) -> None:
        floor = self.floor
        if seq <= floor:
            return
        lo = self._lo
        if seq == floor + 1:                              # meets the floor (the usual)
            if lo and lo[0] == seq + 1:
                self.floor = self._hi[0]
                del lo[0], self._hi[0]
            else:
                self.floor = seq
            return
        hi = self._hi
        if not lo:
            lo.append(seq)
            hi.append(seq)
            return
        i = bisect_right(lo, seq) - 1
        if i >= 0 and seq <= hi[i]:
            return                                        # in a range already
        right = i + 1 < len(lo) and lo[i + 1] == seq + 1
        if i >= 0 and hi[i] == seq - 1:                   # meets the range below
            if right:
                hi[i] = hi[i + 1]
                del lo[i + 1], hi[i + 1]
            else:
                hi[i] = seq
        elif right:                                       # meets the range above
            lo[i + 1] = seq
        else:
            lo.insert(i + 1, seq)
            hi.insert(i + 1, seq)

    def add_range(self, first: int, last: int) -> None:
        """Add the numbers `first` to `last` (both in; none if `last < first`)."""
        if last <= self.floor or last < first:
            return
        first = max(first, self.floor + 1)
        lo, hi = self._lo, self._hi
        # the ranges that overlap or touch [first, last] merge with it
        i = bisect_left(hi, first - 1)                    # first range ending at first-1 or later
        j = bisect_right(lo, last + 1)                    # past the last starting by last+1
        if i < j:
            first, last = min(first, lo[i]), max(last, hi[j - 1])
        del lo[i:j], hi[i:j]
        if first == self.floor + 1:
            self.floor = last
        else:
            lo.insert(i, first)
            hi.insert(i, last)

    def copy(self) -> Handled:
        h = Handled(self.floor)
        h._lo, h._hi = list(self._lo), list(self._hi)
        return h

    def update(self, other: Handled) -> None:
        """Add the numbers of `other`."""
        self.add_range(1, other.floor)
        for first, last in zip(other._lo, other._hi):
            self.add_range(first, last)


class Delta:
    """What the records since the last checkpoint change (module docstring)."""

    def __init__(self) -> None:
        self.fields: dict[str, dict[str, Any]] = {}
        # (link, epoch, seq) -> the frame, or None: deleted
        self.outbox: dict[tuple[str, str, int], dict[str, Any] | None] = {}
        # (peer, epoch) -> (whether the rows saved before are forgotten, numbers added)
        self.handled: dict[tuple[str, str], tuple[bool, Handled]] = {}
        self.clock: int | None = None
        self.records = 0

    def steps(self, steps: list[Any], acked: Collection[Any]) -> None:
        outbox = self.outbox
        for instance, fields, frames, handled, clock, consumed in steps:
            if fields is not None:
                self.fields[instance] = fields
            for link, epoch, seq, frame in frames:
                outbox[(link, epoch, seq)] = frame
            if handled is not None:
                self.add_handled(*handled)
            if consumed is not None:
                self._gone(tuple(consumed))             # type: ignore[arg-type]
            if clock is not None and (self.clock is None or clock > self.clock):
                self.clock = clock
        self.acked(acked)

    def add_handled(self, peer: str, epoch: str, seq: int) -> None:
        entry = self.handled.get((peer, epoch))
        if entry is None:
            entry = self.handled[(peer, epoch)] = (False, Handled())
        entry[1].add(seq)

    def forget(self, peer: str, epochs: Collection[str]) -> None:
        for epoch in epochs:
            self.handled[(peer, epoch)] = (True, Handled())

    def acked(self, rows: Collection[Any]) -> None:
        for link, epoch, seq in rows:
            self._gone((link, epoch, seq))

    def _gone(self, key: tuple[str, str, int]) -> None:
        """An outbox row deleted.  One inserted since the checkpoint is simply dropped: it
        never reached the file (a frame's key is new with its sender's life, and the file is
        either before the whole log or, after a kill between a checkpoint and the log's
        truncation, after it — where this row is gone already)."""
        if self.outbox.get(key) is not None:
            del self.outbox[key]
        else:
            self.outbox[key] = None

    def add(self, record: list[Any]) -> None:
        """Fold one record (as `check_record` passed it)."""
        kind = record[0]
        if kind == "s":
            self.steps(record[1], record[2])
        elif kind == "h":
            self.add_handled(record[1], record[2], record[3])
        elif kind == "f":
            self.forget(record[1], record[2])
        else:
            self.acked(record[1])
        self.records += 1


# --- reading a log back, every record checked ----------------------------------------------

def _name(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _seq(v: Any) -> bool:
    return type(v) is int and v >= 1


def _row(v: Any) -> bool:                     # [link|peer, epoch, seq]
    return isinstance(v, list) and len(v) == 3 and _name(v[0]) and _name(v[1]) and _seq(v[2])


def _step(v: Any) -> bool:
    if not (isinstance(v, list) and len(v) == 6 and _name(v[0])):
        return False
    _, fields, frames, handled, clock, consumed = v
    return ((fields is None or isinstance(fields, dict))
            and isinstance(frames, list)
            and all(isinstance(f, list) and len(f) == 4 and _row(f[:3])
                    and isinstance(f[3], dict) and f[3].get("t") == "msg"
                    and f[3].get("epoch") == f[1] and f[3].get("seq") == f[2] for f in frames)
            and (handled is None or _row(handled))
            and (clock is None or (type(clock) is int and clock >= 0))
            and (consumed is None or _row(consumed)))


def check_record(v: Any) -> bool:
    """Whether `v` is a record as assay writes it (module docstring)."""
    if not isinstance(v, list) or not v:
        return False
    kind = v[0]
    if kind == "s":
        return (len(v) == 3 and isinstance(v[1], list) and all(_step(s) for s in v[1])
                and isinstance(v[2], list) and all(_row(r) for r in v[2]))
    if kind == "h":
        return len(v) == 4 and _row(v[1:])
    if kind == "f":
        return (len(v) == 3 and _name(v[1]) and isinstance(v[2], list)
                and all(_name(e) for e in v[2]))
    if kind == "a":
        return len(v) == 2 and isinstance(v[1], list) and all(_row(r) for r in v[1])
    return False


def _damaged(path: str, what: str) -> StateError:
    from assay.runtime.store import FRESH_NOTE

    return StateError(f"damaged store log: {what}", Location(path), [FRESH_NOTE])


def read_log(path: str) -> tuple[Delta, int]:
    """The records of the log at `path`, folded, and the length of its whole records (a torn
    tail beyond it is dropped, with a warning; damage is a `StateError`, module docstring)."""
    with open(path, "rb") as f:
        data = f.read()
    delta = Delta()
    if len(data) < len(HEADER):
        if HEADER.startswith(data):            # made, and killed before its header was out
            return delta, 0
        raise _damaged(path, "the file does not begin with a store log's header")
    if not data.startswith(HEADER):
        raise _damaged(path, "the file does not begin with a store log's header "
                             f"({HEADER!r}): not a log of this assay")
    pos, end = len(HEADER), len(data)
    while pos < end:
        if data[pos] == 0 and data.count(0, pos) == end - pos:
            log.warning("%s: dropped %d zero bytes at its end (a power cut while it was "
                        "written: --durability process does not keep the steps of its "
                        "last moments through one)", path, end - pos)
            return delta, pos
        where = f"the record at byte {pos}"
        if data[pos] != MARK:
            raise _damaged(path, f"{where} does not begin as a record does")
        if end - pos < _HEAD.size:
            return _torn(path, delta, pos, end)
        _, length, crc = _HEAD.unpack_from(data, pos)
        if length > MAX_RECORD:
            raise _damaged(path, f"{where} does not begin as a record does (its length, "
                                 f"{length}, is beyond any record's)")
        body = pos + _HEAD.size
        if body + length > end:
            # a record cut short holds part of one payload: ASCII JSON (no record's mark,
            # no other byte >= 0x80), not a whole one.  More is damage to the record's
            # length (a bit flip in the middle of the log), not a torn end: the records
            # after it were durable, and may have been sent and acknowledged
            rest = data[body:end]
            if not rest.isascii():
                raise _damaged(path, f"{where} says it is {length} bytes long, more than the "
                                     "file holds, and records follow it (its length is "
                                     "damaged: altered on disk?)")
            if zlib.crc32(rest) == crc:
                raise _damaged(path, f"{where} says it is {length} bytes long, but its "
                                     f"checksum matches the {len(rest)} bytes that follow "
                                     "(its length is damaged: altered on disk?)")
            return _torn(path, delta, pos, end)
        payload = data[body:body + length]
        if zlib.crc32(payload) != crc:
            raise _damaged(path, f"{where}: its checksum does not match (altered on disk?)")
        try:
            record = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as e:
            raise _damaged(path, f"{where} is not JSON ({e})") from None
        if not check_record(record):
            raise _damaged(path, f"{where} is not a record as assay writes it")
        delta.add(record)
        pos = body + length
    return delta, pos


def _torn(path: str, delta: Delta, pos: int, end: int) -> tuple[Delta, int]:
    log.warning("%s: dropped a record cut short at byte %d (%d bytes: the process was killed "
                "while writing it, before any of its steps was sent or acknowledged)",
                path, pos, end - pos)
    return delta, pos
