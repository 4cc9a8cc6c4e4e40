"""Persistent fields on disk: one SQLite file per node, one row per hosted instance.

`save` commits before it returns, in WAL mode with `synchronous=FULL`, so a step's persistent
fields survive a crash of the process (or of the machine, as far as the disk honours fsync)
from the moment `save` returns; the runtime saves before the step's sends leave.  The values
are JSON (the runtime passes `assay.model.types.to_json` of each field); nothing is pickled.

A `Store` may be used from any thread (the runtime calls it through `asyncio.to_thread`):
one connection, opened with `check_same_thread=False`, serialized by a lock.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any

from assay.runtime.private import create_private, private_dir

_SCHEMA = """CREATE TABLE IF NOT EXISTS fields (
    instance TEXT PRIMARY KEY NOT NULL,
    data     TEXT NOT NULL
)"""
# the frames a node has sent and its peers have not acknowledged yet: saved with the step that
# sent them, deleted on the acknowledgement, sent again after a restart
_OUTBOX = """CREATE TABLE IF NOT EXISTS outbox (
    link  TEXT NOT NULL,
    epoch TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    frame TEXT NOT NULL,
    PRIMARY KEY (link, epoch, seq)
)"""


# per (peer node, its epoch): the frame numbers whose steps are durable here, so a frame resent
# after this node restarts is acknowledged, not handled twice.  Frames are handled out of
# number order (one inbox per instance), so this is a set: a floor (every number up to it)
# in `handled`, and the numbers above the floor in `handled_above`
_HANDLED = """CREATE TABLE IF NOT EXISTS handled (
    peer  TEXT NOT NULL,
    epoch TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (peer, epoch)
)"""
_HANDLED_ABOVE = """CREATE TABLE IF NOT EXISTS handled_above (
    peer  TEXT NOT NULL,
    epoch TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (peer, epoch, seq)
)"""
# the Lamport clock of the last durable step: a step log line beyond it was written for a step
# that a crash undid
_META = """CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
)"""


@dataclass
class Handled:
    """A set of frame numbers (of one sender life), kept as a floor — every number from 1 up
    to it — and the numbers above it; the floor rises as the gaps fill."""

    floor: int = 0
    above: set[int] = field(default_factory=set)

    def __contains__(self, seq: int) -> bool:
        return seq <= self.floor or seq in self.above

    def add(self, seq: int) -> None:
        if seq <= self.floor:
            return
        self.above.add(seq)
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.remove(self.floor)

    def copy(self) -> Handled:
        return Handled(self.floor, set(self.above))


class StoreError(Exception):
    """The store is closed, or holds something that is not what `save` wrote."""


DURABILITY = ("machine", "process")


def open_store(state_dir: str | os.PathLike, node: str, durability: str = "machine") -> Store:
    """The store of `node` in `state_dir` (created 0700 if need be); a directory or file that
    cannot be made or opened is a usage error naming it.  `durability`: what a committed step
    survives — `machine` (a crash of the machine too: fsync on every commit) or `process` (a
    killed process, not a power cut: the write-ahead log is synced at checkpoints only)."""
    from assay.errors import UsageError

    try:
        private_dir(state_dir)
        return Store(os.path.join(state_dir, f"{node}.sqlite"),
                     sync="FULL" if durability == "machine" else "NORMAL")
    except (OSError, sqlite3.Error) as e:
        raise UsageError(f"cannot keep state in {os.fspath(state_dir)}: "
                         f"{getattr(e, 'strerror', None) or e}",
                         notes=["give --state-dir a directory this user may write"]) from None


class Store:
    def __init__(self, path: str | os.PathLike, sync: str = "FULL") -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        create_private(self.path)        # 0600, and so are the -wal and -shm SQLite makes
        # isolation_level=None: no implicit transactions; `save` opens and commits its own
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                               check_same_thread=False)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if sync not in ("FULL", "NORMAL"):
                raise ValueError(f"synchronous={sync!r}; use FULL or NORMAL")
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute(_SCHEMA)
            conn.execute(_OUTBOX)
            conn.execute(_HANDLED)
            conn.execute(_HANDLED_ABOVE)
            conn.execute(_META)
        except BaseException:
            conn.close()
            raise
        self.journal_mode: str = str(mode).lower()
        self._conn: sqlite3.Connection | None = conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self.path} is closed")
        return self._conn

    def save(self, instance: str, fields: dict[str, Any]) -> None:
        """Replace the saved fields of `instance`; durable when this returns."""
        if not isinstance(instance, str):
            raise TypeError(f"an instance name is a str, not {type(instance).__name__}")
        if not isinstance(fields, dict):
            raise TypeError(f"fields are a dict, not {type(fields).__name__}")
        data = json.dumps(fields, sort_keys=True, separators=(",", ":"), allow_nan=False)
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO fields (instance, data) VALUES (?, ?) "
                             "ON CONFLICT (instance) DO UPDATE SET data = excluded.data",
                             (instance, data))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def save_step(self, instance: str, fields: dict[str, Any] | None,
                  frames: list[tuple[str, str, int, dict[str, Any]]],
                  handled: tuple[str, str, int] | None = None,
                  clock: int | None = None,
                  consumed: tuple[str, str, int] | None = None) -> None:
        """One step, atomically: the instance's persistent fields (if it has any), the
        frames it sends, as (link, epoch, seq, frame), the frame from another node it
        handled, as (peer, epoch, seq), its Lamport clock, and the frame of its own outbox it
        handled (a message between two instances of this node), as (link, epoch, seq), which
        leaves the outbox; durable on return."""
        data = None if fields is None else json.dumps(fields, sort_keys=True,
                                                      separators=(",", ":"), allow_nan=False)
        rows = [(link, epoch, seq, json.dumps(frame, sort_keys=True, allow_nan=False))
                for link, epoch, seq, frame in frames]
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                if data is not None:
                    conn.execute("INSERT INTO fields (instance, data) VALUES (?, ?) "
                                 "ON CONFLICT (instance) DO UPDATE SET data = excluded.data",
                                 (instance, data))
                conn.executemany("INSERT OR REPLACE INTO outbox (link, epoch, seq, frame) "
                                 "VALUES (?, ?, ?, ?)", rows)
                if handled is not None:
                    self._add_handled(conn, *handled)
                if consumed is not None:
                    conn.execute("DELETE FROM outbox WHERE link = ? AND epoch = ? AND seq = ?",
                                 consumed)
                if clock is not None:
                    conn.execute("INSERT INTO meta (key, value) VALUES ('clock', ?) "
                                 "ON CONFLICT (key) DO UPDATE SET "
                                 "value = max(value, excluded.value)", (clock,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def save_handled(self, peer: str, epoch: str, seq: int) -> None:
        """A frame handled without a step (dropped): durable on return."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._add_handled(conn, peer, epoch, seq)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _add_handled(conn: sqlite3.Connection, peer: str, epoch: str, seq: int) -> None:
        """Within a transaction: add `seq` to the handled numbers of (peer, epoch)."""
        row = conn.execute("SELECT seq FROM handled WHERE peer = ? AND epoch = ?",
                           (peer, epoch)).fetchone()
        floor = 0 if row is None else int(row[0])
        # (a NOT NULL or type error surfaces here, inside the transaction)
        conn.execute("INSERT INTO handled_above (peer, epoch, seq) VALUES (?, ?, ?) "
                     "ON CONFLICT DO NOTHING", (peer, epoch, seq))
        if seq > floor + 1:
            return                       # a gap below it: the floor stays
        above = {r[0] for r in conn.execute(
            "SELECT seq FROM handled_above WHERE peer = ? AND epoch = ?", (peer, epoch))}
        new = floor
        while new + 1 in above:
            new += 1
        if new > floor:
            conn.execute("INSERT INTO handled (peer, epoch, seq) VALUES (?, ?, ?) "
                         "ON CONFLICT (peer, epoch) DO UPDATE SET seq = excluded.seq",
                         (peer, epoch, new))
        conn.execute("DELETE FROM handled_above WHERE peer = ? AND epoch = ? AND seq <= ?",
                     (peer, epoch, max(new, floor)))

    def forget(self, peer: str, epochs: list[str]) -> None:
        """Forget the handled numbers of these lives (`epochs`) of `peer`, which have ended
        (see `TcpNode._forget_lives`).  Named, not "all but the live ones": a life of the
        peer that began since is not touched."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                for table in ("handled", "handled_above"):
                    conn.executemany(f"DELETE FROM {table} WHERE peer = ? AND epoch = ?",
                                     [(peer, e) for e in epochs])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def acked(self, link: str, epoch: str, seq: int) -> None:
        """The peer acknowledged a frame: forget it."""
        with self._lock:
            self._connection().execute(
                "DELETE FROM outbox WHERE link = ? AND epoch = ? AND seq = ?",
                (link, epoch, seq))

    def outbox(self) -> list[tuple[str, str, int, dict[str, Any]]]:
        """The frames sent and not acknowledged, in the order they were sent per link."""
        with self._lock:
            rows = self._connection().execute(
                "SELECT link, epoch, seq, frame FROM outbox ORDER BY link, rowid").fetchall()
        return [(link, epoch, seq, json.loads(frame)) for link, epoch, seq, frame in rows]

    def handled(self) -> dict[tuple[str, str], Handled]:
        """Per (peer node, epoch): the frame numbers handled durably."""
        with self._lock:
            conn = self._connection()
            floors = conn.execute("SELECT peer, epoch, seq FROM handled").fetchall()
            above = conn.execute("SELECT peer, epoch, seq FROM handled_above").fetchall()
        out = {(peer, epoch): Handled(seq) for peer, epoch, seq in floors}
        for peer, epoch, seq in above:
            out.setdefault((peer, epoch), Handled()).above.add(seq)
        return out

    def clock(self) -> int:
        """The Lamport clock of the last durable step (0: none)."""
        with self._lock:
            row = self._connection().execute(
                "SELECT value FROM meta WHERE key = 'clock'").fetchone()
        return 0 if row is None else int(row[0])

    def load(self, instance: str) -> dict[str, Any] | None:
        """The fields last saved for `instance`, or None if it was never saved."""
        with self._lock:
            row = self._connection().execute(
                "SELECT data FROM fields WHERE instance = ?", (instance,)).fetchone()
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except ValueError as e:
            raise StoreError(f"the saved fields of {instance!r} in {self.path} are not JSON: "
                             f"{e}") from None
        if not isinstance(value, dict):
            raise StoreError(f"the saved fields of {instance!r} in {self.path} are not an "
                             "object")
        return value

    def close(self) -> None:
        """Close the file (idempotent); the store is unusable afterwards."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
