"""The records and messages of the replicated key-value store (specs/kv/replicated_kv.py and
its twin), in a module of their own that both specs import: `from messages import Entry`.

A version is a bounded counter, as a real store's is (64 bits there, 0..MAX_VERSION here):
`Version` says so in its type, so every engine refuses a version out of range, and the
primary refuses a write that would need one (`PutAck(..., ok=False)`).
"""
from typing import Annotated

from assay import Map, Message, Range, Record

KEYS = (0, 1)
MAX_VERSION = 4
Version = Annotated[int, Range(0, MAX_VERSION)]


class Entry(Record):            # what a replica holds for a key
    value: int
    version: Version


EMPTY = Entry(0, 0)


def fresh_table() -> Map:
    """Every key at version 0: the table every replica starts with."""
    return Map.over(KEYS, lambda key: EMPTY)


class Put(Message):             # client -> primary
    key: int
    value: int


class PutAck(Message):          # primary -> client: on every backup (ok), or refused
    key: int
    version: Version
    ok: bool = True             # a refusal says ok=False: the key's versions are used up


class Get(Message):             # client -> primary: at least version `since`, please
    key: int
    since: Version


class Got(Message):             # primary -> client: the entry, for a Get of `since`
    key: int
    entry: Entry
    since: Version


class Replicate(Message):       # primary -> backup: store this entry
    key: int
    entry: Entry


class Replicated(Message):      # backup -> primary: stored
    key: int
    version: Version


class Sync(Message):            # a restarted backup -> primary: send me your table
    boot: int


class Snapshot(Message):        # primary -> backup: the table, for the request of `boot`
    table: Map[int, Entry]
    boot: int
