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
from typing import Any

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


# per (peer node, its epoch): the highest frame number whose step is durable here, so a frame
# resent after this node restarts is acknowledged, not handled twice
_HANDLED = """CREATE TABLE IF NOT EXISTS handled (
    peer  TEXT NOT NULL,
    epoch TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (peer, epoch)
)"""
# the Lamport clock of the last durable step: a step log line beyond it was written for a step
# that a crash undid
_META = """CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
)"""


class StoreError(Exception):
    """The store is closed, or holds something that is not what `save` wrote."""


class Store:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        # isolation_level=None: no implicit transactions; `save` opens and commits its own
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                               check_same_thread=False)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(_SCHEMA)
            conn.execute(_OUTBOX)
            conn.execute(_HANDLED)
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
                  clock: int | None = None) -> None:
        """One step, atomically: the instance's persistent fields (if it has any), the
        frames it sends to other nodes, as (link, epoch, seq, frame), the frame it handled,
        as (peer, epoch, seq), and its Lamport clock; durable on return."""
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
                    conn.execute("INSERT INTO handled (peer, epoch, seq) VALUES (?, ?, ?) "
                                 "ON CONFLICT (peer, epoch) DO UPDATE SET "
                                 "seq = max(seq, excluded.seq)", handled)
                if clock is not None:
                    conn.execute("INSERT INTO meta (key, value) VALUES ('clock', ?) "
                                 "ON CONFLICT (key) DO UPDATE SET "
                                 "value = max(value, excluded.value)", (clock,))
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

    def handled(self) -> dict[tuple[str, str], int]:
        """Per (peer node, epoch): the highest frame number handled durably."""
        with self._lock:
            rows = self._connection().execute("SELECT peer, epoch, seq FROM handled").fetchall()
        return {(peer, epoch): seq for peer, epoch, seq in rows}

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
