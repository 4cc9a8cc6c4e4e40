"""Persistent fields on disk: one SQLite file per node, one row per hosted instance.

`save` commits before it returns, in WAL mode with `synchronous=FULL`, so a step's persistent
fields survive a crash of the process (or of the machine, as far as the disk honours fsync)
from the moment `save` returns; the runtime saves before the step's sends leave.  The values
are JSON (the runtime passes `assay.model.types.to_json` of each field); nothing is pickled.

`save_steps` commits several steps (and acknowledged outbox rows) in one transaction: the
runtime's group commit of the steps that were ready together.

With `log=True` (`--durability process`) the writes are records appended to a log beside the
file (`storelog.py`: one `write()` per call, no transaction) and folded into it at checkpoints;
a store whose log is left from an earlier life (killed) takes it in when it opens, whichever
durability opens it.  `Store.fast` says which: a caller need not hand a write to a thread.

A `Store` may be used from any thread (the runtime calls it through `asyncio.to_thread`):
one connection, opened with `check_same_thread=False`, serialized by a lock.

A store is trusted only as far as it is exactly what assay wrote: it is made whole (tables and
a `meta` table naming its format, system and node, in one file renamed into place), and on
every open it must pass SQLite's integrity check, have exactly these tables and this format
(a store of an older format assay wrote is first brought to it in place: `_upgrade`),
belong to the system and node that open it; every row is checked as it is read.  Anything else
is a `StateError` at the file — never a repair, never a silent fresh start.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import os
import sqlite3
import threading
import urllib.request
import zlib
from collections.abc import Callable, Collection
from typing import Any

from assay.errors import Location, StateError
from assay.runtime import storelog
from assay.runtime.private import FILE_MODE, create_private, private_dir
from assay.runtime.storelog import HEADER, SUFFIX, Delta, Handled, encode, read_log

_SCHEMA = """CREATE TABLE IF NOT EXISTS fields (
    instance TEXT PRIMARY KEY NOT NULL,
    data     TEXT NOT NULL,
    crc      INTEGER
)"""
# the frames a node has sent and its peers have not acknowledged yet: saved with the step that
# sent them, deleted on the acknowledgement, sent again after a restart
_OUTBOX = """CREATE TABLE IF NOT EXISTS outbox (
    link  TEXT NOT NULL,
    epoch TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    frame TEXT NOT NULL,
    crc   INTEGER,
    PRIMARY KEY (link, epoch, seq)
)"""


# per (peer node, its epoch): the frame numbers whose steps are durable here, so a frame resent
# after this node restarts is acknowledged, not handled twice.  Frames are handled out of
# number order (one inbox per instance), so this is a set: a floor (every number up to it)
# in `handled`, and the ranges of numbers above the floor (`lo` to `hi`, both in: a run of
# numbers is one row, `storelog.Handled`) in `handled_ranges`
_HANDLED = """CREATE TABLE IF NOT EXISTS handled (
    peer  TEXT NOT NULL,
    epoch TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    crc   INTEGER,
    PRIMARY KEY (peer, epoch)
)"""
_HANDLED_RANGES = """CREATE TABLE IF NOT EXISTS handled_ranges (
    peer  TEXT NOT NULL,
    epoch TEXT NOT NULL,
    lo    INTEGER NOT NULL,
    hi    INTEGER NOT NULL,
    crc   INTEGER,
    PRIMARY KEY (peer, epoch, lo)
)"""
# what the file is: its format, the system and node whose state it holds (text), and the
# Lamport clock of the last durable step (a step log line beyond it was written for a step that
# a crash undid); `value` has no type, so a name is never taken for a number
_META = """CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value NOT NULL,
    crc   INTEGER
)"""
_TABLES = (_SCHEMA, _OUTBOX, _HANDLED, _HANDLED_RANGES, _META)
# format 2 (and 1) kept a row per handled number above the floor: `_upgrade_2` takes it in
_HANDLED_ABOVE = """CREATE TABLE IF NOT EXISTS handled_above (
    peer  TEXT NOT NULL,
    epoch TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    crc   INTEGER,
    PRIMARY KEY (peer, epoch, seq)
)"""
_TABLES_2 = (_SCHEMA, _OUTBOX, _HANDLED, _HANDLED_ABOVE, _META)
# each table's columns that its `crc` covers (all the others)
_SUMMED = {"fields": ("instance", "data"), "outbox": ("link", "epoch", "seq", "frame"),
           "handled": ("peer", "epoch", "seq"), "handled_ranges": ("peer", "epoch", "lo", "hi"),
           "meta": ("key", "value")}
# format 2's tables, which `_upgrade` brings a format 1 store to first
_SUMMED_2 = {**{t: c for t, c in _SUMMED.items() if t != "handled_ranges"},
             "handled_above": ("peer", "epoch", "seq")}

# the layout of a store file: a store of another format is refused, not guessed at
# (2: every row with its checksum; 3: the numbers handled above the floor as ranges, not one
# row each)
FORMAT = 3


def row_crc(table: str, *values: Any) -> int:
    """The checksum of a row of `table` (its values in `_SUMMED` order): CRC-32 of the
    table's name and the values, by `repr` (unambiguous for the str and int a row holds, any
    other type a mismatch).  SQLite checks the file's structure, not what a row holds: a byte
    flipped inside a saved value (a balance 5 read back as 4, a handled frame number one
    off) would be read back as if assay had saved it."""
    return zlib.crc32(repr((table, *values)).encode("utf-8", "surrogatepass"))


def _sums(conn: sqlite3.Connection) -> None:
    """Let SQL on `conn` compute row checksums: ``assay_crc('table', col, ...)``."""
    conn.create_function("assay_crc", -1, row_crc, deterministic=True)
_META_KEYS = ("format", "system", "node", "clock")
# one step as `Store.save_step` takes it: (instance, persistent fields or None, frames sent as
# (link, epoch, seq, frame), frame handled as (peer, epoch, seq) or None, Lamport clock or None,
# frame of its own outbox handled as (link, epoch, seq) or None)
StepRecord = tuple[str, dict[str, Any] | None, list[tuple[str, str, int, dict[str, Any]]],
                   tuple[str, str, int] | None, int | None, tuple[str, str, int] | None]
# every write of a row sets its checksum (`row_crc`, in SQL `assay_crc`)
_FIELDS_UPSERT = ("INSERT INTO fields (instance, data, crc) VALUES "
                  "(?1, ?2, assay_crc('fields', ?1, ?2)) ON CONFLICT (instance) "
                  "DO UPDATE SET data = excluded.data, crc = excluded.crc")
_OUTBOX_PUT = ("INSERT OR REPLACE INTO outbox (link, epoch, seq, frame, crc) VALUES "
               "(?1, ?2, ?3, ?4, assay_crc('outbox', ?1, ?2, ?3, ?4))")
_HANDLED_PUT = ("INSERT INTO handled (peer, epoch, seq, crc) VALUES "
                "(?1, ?2, ?3, assay_crc('handled', ?1, ?2, ?3))")
_RANGE_PUT = ("INSERT INTO handled_ranges (peer, epoch, lo, hi, crc) VALUES "
              "(?1, ?2, ?3, ?4, assay_crc('handled_ranges', ?1, ?2, ?3, ?4))")
_CLOCK_UP = ("INSERT INTO meta (key, value, crc) VALUES ('clock', ?1, assay_crc('meta', "
             "'clock', ?1)) ON CONFLICT (key) DO UPDATE SET value = max(value, "
             "excluded.value), crc = assay_crc('meta', 'clock', max(value, excluded.value))")
FRESH_NOTE = ("assay does not guess at lost state: restore the file from a backup, or start "
              "over with --fresh (which moves the old files aside)")


class StoreError(Exception):
    """The store is closed (a bug in its caller; damage is a `StateError`)."""


DURABILITY = ("machine", "process")


def open_store(state_dir: str | os.PathLike, node: str, durability: str = "machine", *,
               system: str | None = None, others: Collection[str] = (), fresh: bool = False,
               extra: Collection[str] = ()) -> Store:
    """The store of `node` (of `system`) in `state_dir`, created if the directory shows no
    earlier run of it (`statedir.earlier_life`; `others`: the other nodes sharing the
    directory); a directory or file that cannot be made or opened is a usage error naming it.
    `fresh`: start over — the store and the files named in `extra` are moved aside first.
    `durability`: what a committed step survives — `machine` (a crash of the machine too:
    fsync on every commit) or `process` (a killed process, not a power cut: the write-ahead
    log is synced at checkpoints only)."""
    from assay.errors import UsageError
    from assay.runtime.statedir import earlier_life, move_aside

    path = os.path.join(state_dir, f"{node}.sqlite")
    try:
        private_dir(state_dir)                   # 0700 if it is made here
        if fresh:
            move_aside(state_dir, node, extra)
        elif not os.path.exists(path):
            found = earlier_life(state_dir, node, others)
            if found:
                raise StateError(
                    f"the store is missing, but the directory holds {', '.join(found)}: the "
                    "state of an earlier run is gone", Location(path),
                    ["assay does not start over silently: start over with --fresh, or give "
                     "a new or empty --state-dir"])
        return Store(path, sync="FULL" if durability == "machine" else "NORMAL",
                     system=system, node=node, log=durability == "process")
    except (OSError, sqlite3.Error) as e:
        raise UsageError(f"cannot keep state in {os.fspath(state_dir)}: "
                         f"{getattr(e, 'strerror', None) or e}",
                         notes=["give --state-dir a directory this user may write"]) from None


async def storing(store: Store, write: Callable[..., None], *args: Any) -> None:
    """`write(*args)`, a write to `store`, from the event loop: at once if it returns at once
    (`Store.fast`: appended to its log), else in a thread (a SQLite transaction, and an
    fsync with `machine` durability)."""
    if store.fast:
        write(*args)
    else:
        await asyncio.to_thread(write, *args)


def _damaged(path: str, what: str) -> StateError:
    """The error for a store that is not what assay wrote, at its file."""
    return StateError(f"damaged store: {what}", Location(path), [FRESH_NOTE])


def _create(path: str, system: str | None, node: str | None) -> None:
    """Make a store at `path` whole or not at all: its tables and meta rows are committed in a
    file beside it that is then renamed into place, so a store that exists is one assay
    finished writing (an empty or half-made one is damage, not a new store)."""
    for log, what in (("-wal", "its write-ahead log"), (SUFFIX, "its log of steps")):
        if os.path.exists(path + log):
            raise _damaged(path, f"the file is missing, but {what} is there")
    tmp = path + ".new"
    for leftover in (tmp, tmp + "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
    create_private(tmp)                          # 0600, and so is its journal
    conn = sqlite3.connect(tmp, isolation_level=None)
    _sums(conn)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for table in _TABLES:
            conn.execute(table)
        conn.executemany("INSERT INTO meta (key, value, crc) VALUES "
                         "(?1, ?2, assay_crc('meta', ?1, ?2))",
                         [("format", FORMAT)] + [(k, v) for k, v in (("system", system),
                                                                       ("node", node))
                                                 if v is not None])
        conn.execute("COMMIT")
    finally:
        conn.close()
    os.replace(tmp, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)                      # the rename survives a crash too
    finally:
        os.close(directory)


def _layout(conn: sqlite3.Connection) -> dict[tuple[str, str], Any]:
    """The tables (with their columns) and indexes of a database."""
    out: dict[tuple[str, str], Any] = {}
    for kind, name, table in conn.execute("SELECT type, name, tbl_name FROM sqlite_master"):
        out[(kind, name)] = tuple(conn.execute("SELECT * FROM pragma_table_info(?)", (name,))
                                  ) if kind == "table" else table
    return out


@functools.cache
def _expected_layout(tables: tuple[str, ...] = _TABLES) -> dict[tuple[str, str], Any]:
    """The layout of a store, read from one made in memory (never written out twice)."""
    conn = sqlite3.connect(":memory:")
    try:
        for table in tables:
            conn.execute(table)
        return _layout(conn)
    finally:
        conn.close()


def _check_tables(found: dict[tuple[str, str], Any], path: str, older: bool = False) -> None:
    """Exactly the tables and indexes assay writes, no more, no fewer (`older`: or those of
    format 1 or 2, which `_upgrade` brings to this format)."""
    want = _expected_layout()
    if older and ("table", "handled_above") in found:
        want = _expected_layout(_TABLES_2)
    if not found:
        raise _damaged(path, "the file is empty (0 bytes)" if os.path.getsize(path) == 0
                       else "the file holds no tables")
    missing = sorted(want.keys() - found.keys(), key=lambda k: (k[0] != "table", k))
    if missing:
        raise _damaged(path, f"no {missing[0][0]} '{missing[0][1]}' (dropped?)")
    extra = sorted(found.keys() - want.keys())
    if extra:
        raise _damaged(path, f"a {extra[0][0]} '{extra[0][1]}' that assay does not write")


def _upgrade(conn: sqlite3.Connection, path: str) -> bool:
    """A store of an older format brought to this one in place (`_upgrade_1`, then
    `_upgrade_2`).  Whether it was one (anything else is left to the format check)."""
    one = _upgrade_1(conn)
    return _upgrade_2(conn, path) or one


def _upgrade_2(conn: sqlite3.Connection, path: str) -> bool:
    """A store of format 2 (a row per handled number above the floor, `handled_above`)
    brought to format 3 in one transaction: each row's checksum checked (`_check_sums`, as
    format 2 is read), the numbers folded into ranges (`handled_ranges`), the old table
    dropped.  Whether it was one."""
    if conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchall() != [(2,)]:
        return False

    def upgrade() -> bool:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = "
                                            "'table'")}
        if conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchall() != [(2,)] \
                or "handled_above" not in names or "handled_ranges" in names:
            return False                   # (not format 2's layout: the checks say what)
        _check_sums(conn, path, _SUMMED_2)
        conn.execute(_HANDLED_RANGES)
        keys = conn.execute("SELECT DISTINCT peer, epoch FROM handled_above").fetchall()
        for peer, epoch in keys:
            have = _handled_of(conn, peer, epoch)
            for (seq,) in conn.execute("SELECT seq FROM handled_above WHERE peer = ? AND "
                                       "epoch = ?", (peer, epoch)):
                if not _count(seq, 1):
                    raise _damaged(path, f"table handled_above, row ({peer!r}, {epoch!r}, "
                                         f"{seq!r}): not a frame number")
                have.add(seq)
            _put_handled(conn, peer, epoch, have)
        conn.execute("DROP TABLE handled_above")
        conn.execute("UPDATE meta SET value = ?1, crc = assay_crc('meta', 'format', ?1) "
                     "WHERE key = 'format'", (FORMAT,))
        return True

    return _in_one_transaction(conn, upgrade)


def _upgrade_1(conn: sqlite3.Connection) -> bool:
    """A store of format 1 (before each row had its checksum) brought to format 2 in place,
    in one transaction: each row's checksum computed from what it holds.  Format 1 had no
    checksums to check, so its rows are taken as they are (as they were before the upgrade);
    from here on they are checked.  Whether it was one."""
    if conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchall() != [(1,)]:
        return False

    def upgrade() -> bool:
        # (again, within the transaction: another process may have upgraded it meanwhile)
        if conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchall() != [(1,)] \
                or any(c[1] == "crc" for c in
                       conn.execute("SELECT * FROM pragma_table_info('meta')")):
            return False                   # (not format 1's layout: the checks say what)
        for table, cols in _SUMMED_2.items():
            conn.execute(f"ALTER TABLE {table} ADD COLUMN crc INTEGER")   # noqa: S608
            conn.execute(f"UPDATE {table} SET crc = assay_crc('{table}', "      # noqa: S608
                         f"{', '.join(cols)})")
        conn.execute("UPDATE meta SET value = 2, crc = assay_crc('meta', 'format', 2) "
                     "WHERE key = 'format'")
        return True

    return _in_one_transaction(conn, upgrade)


def _in_one_transaction(conn: sqlite3.Connection, upgrade: Callable[[], bool]) -> bool:
    """`upgrade()` in one immediate transaction: committed if it says it upgraded, rolled
    back if it says the store was not what it upgrades, or if it raises.  What it said."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = upgrade()
        conn.execute("COMMIT" if done else "ROLLBACK")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return done


def _check_format(conn: sqlite3.Connection, path: str) -> None:
    """This format (checked before the columns: an older store is told as such)."""
    rows = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchall()
    if not rows:
        raise _damaged(path, "no format version in table meta (written by an older assay?)")
    if rows[0][0] != FORMAT:
        raise StateError(f"the store is format {rows[0][0]!r}; this assay reads format "
                         f"{FORMAT}", Location(path), [FRESH_NOTE])


def _check_columns(found: dict[tuple[str, str], Any], path: str) -> None:
    """Each table with exactly the columns (names, types, keys) assay writes."""
    want = _expected_layout()
    for key in sorted(want):
        if found[key] != want[key]:
            raise _damaged(path, f"{key[0]} '{key[1]}' is not as assay writes it")


def _check_meta(conn: sqlite3.Connection, path: str, system: str | None,
                node: str | None) -> None:
    """The meta rows: known keys, a clock that is a count, and — when the caller says whose
    state it opens — the same system and node."""
    meta: dict[str, Any] = {}
    for key, value in conn.execute("SELECT key, value FROM meta"):
        if key not in _META_KEYS:
            raise _damaged(path, f"table meta, row {key!r}: a key assay does not write")
        meta[key] = value
    if not _count(meta.get("clock", 0), 0):
        raise _damaged(path, f"table meta, row 'clock': {meta['clock']!r} is not a step count")
    for key, want in (("system", system), ("node", node)):
        have = meta.get(key)
        if have is not None and not _name(have):
            raise _damaged(path, f"table meta, row {key!r}: {have!r} is not a name")
        if want is None or have == want:
            continue
        if have is not None:
            raise StateError(f"the store holds the state of {key} {have!r}, not of {want!r}",
                             Location(path), [f"give each {key} its own --state-dir, or "
                                              "start over with --fresh (which moves the old "
                                              "files aside)"])
        if _holds_state(conn):
            raise _damaged(path, f"no {key} name in table meta")
        # a store made without a name (`Store(path)`) and never used: it becomes this one's
        conn.execute("INSERT INTO meta (key, value, crc) VALUES "
                     "(?1, ?2, assay_crc('meta', ?1, ?2))", (key, want))


def _check_sums(conn: sqlite3.Connection, path: str,
                summed: dict[str, tuple[str, ...]] = _SUMMED) -> None:
    """Every row as assay saved it: its checksum matches (`row_crc`; `summed`: the tables of
    this format, or of the one being upgraded)."""
    for table, cols in summed.items():
        for row in conn.execute(f"SELECT {', '.join(cols)}, crc FROM {table}"):  # noqa: S608
            if row[-1] is None or row[-1] != row_crc(table, *row[:-1]):
                key = row[0] if len(cols) == 2 else tuple(row[:3])
                raise _damaged(path, f"table {table}, row {key!r}: the row is not what assay "
                                     "saved (its checksum does not match: a byte changed on "
                                     "disk, or the row was edited)")


def _holds_state(conn: sqlite3.Connection) -> bool:
    """Whether anything was saved in the store (a step, a frame, a handled number)."""
    return any(conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()      # noqa: S608
               for t in ("fields", "outbox", "handled", "handled_ranges")) or bool(
        conn.execute("SELECT 1 FROM meta WHERE key = 'clock' AND value > 0").fetchone())


def _handled_of(conn: sqlite3.Connection, peer: str, epoch: str) -> Handled:
    """Within a transaction: the handled numbers of (peer, epoch) as the file holds them."""
    have = Handled()
    for (seq,) in conn.execute("SELECT seq FROM handled WHERE peer = ? AND epoch = ?",
                               (peer, epoch)):
        have.add_range(1, int(seq))
    for lo, hi in conn.execute("SELECT lo, hi FROM handled_ranges WHERE peer = ? AND "
                               "epoch = ?", (peer, epoch)):
        have.add_range(int(lo), int(hi))
    return have


def _put_handled(conn: sqlite3.Connection, peer: str, epoch: str, have: Handled) -> None:
    """Within a transaction: make the rows of (peer, epoch) say `have`."""
    for table in ("handled", "handled_ranges"):
        conn.execute(f"DELETE FROM {table} WHERE peer = ? AND epoch = ?",  # noqa: S608
                     (peer, epoch))
    if have.floor:
        conn.execute(_HANDLED_PUT, (peer, epoch, have.floor))
    conn.executemany(_RANGE_PUT, [(peer, epoch, lo, hi) for lo, hi in have.ranges])


def _json(fields: dict[str, Any]) -> str:
    """Persistent fields as the `fields` table holds them."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _count(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _name(value: Any) -> bool:
    return isinstance(value, str) and value != ""


class Store:
    """One node's store (see the module docstring).  `system` and `node`, when given, are
    written into a new store and must match an existing one."""

    def __init__(self, path: str | os.PathLike, sync: str = "FULL", *,
                 system: str | None = None, node: str | None = None,
                 log: bool = False) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._log: int | None = None              # the log's descriptor (`log=True`)
        self._delta = Delta()                     # its records since the last checkpoint
        self._logged = 0                          # its bytes past the header
        self.checkpoint_bytes = storelog.CHECKPOINT_BYTES
        if sync not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous={sync!r}; use FULL or NORMAL")
        if not os.path.exists(self.path):
            _create(self.path, system, node)
        # isolation_level=None: no implicit transactions; `save` opens and commits its own.
        # mode=rw: a file that went away since is not made again, empty
        uri = "file:" + urllib.request.pathname2url(os.path.abspath(self.path)) + "?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None,
                               check_same_thread=False)
        self._conn: sqlite3.Connection | None = conn
        _sums(conn)
        try:
            self._check(conn, system, node, log)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute(f"PRAGMA synchronous={sync}")
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            self._close_files()
            raise _damaged(self.path, f"SQLite cannot read it ({e})") from None
        except BaseException:
            self._close_files()
            raise
        self.journal_mode: str = str(mode).lower()
        # whether a write returns at once (appended to the log, no fsync): no thread needed
        self.fast = log

    def _open_log(self, keep: bool) -> None:
        """Take in the log an earlier life left (`storelog.read_log`), then keep one (`keep`)
        or none.  The log is locked while open: a second process (or `Store`) opening the
        same store is refused rather than let two writers interleave."""
        path = self.path + SUFFIX
        if not keep and not os.path.exists(path):
            return
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, FILE_MODE)
        except OSError as e:
            raise StateError(f"cannot open the store's log: {e.strerror}", Location(path),
                             ["give --state-dir a directory this user may write"]) from None
        self._log = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            self._log = None
            raise StateError("the store is in use by another process (or is open twice)",
                             Location(self.path), ["stop the node that runs on it first"]
                             ) from None
        delta, _ = read_log(path)
        if delta.records:
            with self._lock:
                self._transaction(lambda conn: self._fold(conn, delta))
        if keep:
            os.ftruncate(fd, 0)
            self._append(HEADER, 0)
            self._logged = 0
        else:                              # (the records are in the file: durably, FULL)
            os.close(fd)
            self._log = None
            os.remove(path)

    def _append(self, data: bytes, at: int) -> None:
        """Write `data` at the end of the log, which is `at` bytes long."""
        assert self._log is not None
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._log, view)
                view = view[n:]
        except OSError:
            # (a disk full, say) the part written goes, so the log stays whole records
            with contextlib.suppress(OSError):
                os.ftruncate(self._log, at)
            raise

    def _record(self, record: list[Any], fold: Any, *args: Any) -> None:
        """Append one record to the log (the caller holds the lock), fold it in memory, and
        fold the log into the file once it is large (`checkpoint`)."""
        data = encode(record)
        self._append(data, len(HEADER) + self._logged)
        fold(*args)
        self._delta.records += 1
        self._logged += len(data)
        if self._logged >= self.checkpoint_bytes:
            self._checkpoint()

    def checkpoint(self) -> None:
        """Fold the log's records into the file (one transaction) and empty the log."""
        with self._lock:
            if self._log is not None and self._delta.records:
                self._checkpoint()

    def _checkpoint(self) -> None:
        delta = self._delta
        self._transaction(lambda conn: self._fold(conn, delta))
        self._delta = Delta()            # (not before: a failed commit keeps its records)
        # a kill here: the records are taken in again when the store opens, to the same
        # result (`storelog`: folding is idempotent)
        assert self._log is not None
        os.ftruncate(self._log, len(HEADER))
        self._logged = 0

    def _transaction(self, work: Any) -> None:
        """`work(conn)` in one transaction (the caller holds the lock)."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            work(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _fold(self, conn: sqlite3.Connection, delta: Delta) -> None:
        """Within a transaction: what `delta` changes (rows set, numbers added)."""
        conn.executemany(_FIELDS_UPSERT,
                         [(i, _json(f)) for i, f in delta.fields.items()])
        conn.executemany("DELETE FROM outbox WHERE link = ? AND epoch = ? AND seq = ?",
                         [k for k, f in delta.outbox.items() if f is None])
        conn.executemany(_OUTBOX_PUT, [(*k, json.dumps(f, sort_keys=True, allow_nan=False))
                                          for k, f in delta.outbox.items() if f is not None])
        for (peer, epoch), (reset, added) in delta.handled.items():
            have = Handled() if reset else _handled_of(conn, peer, epoch)
            have.update(added)
            _put_handled(conn, peer, epoch, have)
        if delta.clock is not None:
            conn.execute(_CLOCK_UP, (delta.clock,))

    def _close_files(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.close()
            self._conn = None
        if self._log is not None:
            os.close(self._log)
            self._log = None

    def _check(self, conn: sqlite3.Connection, system: str | None, node: str | None,
               log: bool) -> None:
        """The whole file as SQLite sees it, then what assay wrote in it (module docstring)."""
        # (its report may quote damaged names: read as bytes, shown escaped)
        conn.text_factory = bytes
        try:
            problems = [r[0].decode("utf-8", "backslashreplace")
                        for r in conn.execute("PRAGMA integrity_check(4)")]
        finally:
            conn.text_factory = str
        if problems != ["ok"]:
            raise _damaged(self.path, "SQLite's integrity check fails: " + "; ".join(problems))
        found = _layout(conn)
        _check_tables(found, self.path, older=True)
        _upgrade(conn, self.path)         # a store an earlier assay wrote (format 1 or 2)
        # read again whether or not this process upgraded it: another one opening it at the
        # same time may have, between the read above and the upgrade's own check
        found = _layout(conn)
        _check_format(conn, self.path)
        _check_tables(found, self.path)
        _check_columns(found, self.path)
        # the log an earlier life left is taken in before the meta rows are read: whether the
        # store holds state (an unnamed one is adopted only if it does not) includes it
        self._open_log(log)
        _check_meta(conn, self.path, system, node)
        _check_sums(conn, self.path)

    def _read(self, table: str, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """The rows of a query on `table`; a file SQLite cannot read there is damage."""
        with self._lock:
            try:
                return self._connection().execute(sql, args).fetchall()
            except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
                raise _damaged(self.path, f"table {table} cannot be read ({e})") from None

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
        if self._log is not None:
            self.save_steps([(instance, fields, [], None, None, None)])
            return
        data = _json(fields)
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(_FIELDS_UPSERT,
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
        self.save_steps([(instance, fields, frames, handled, clock, consumed)])

    def save_steps(self, steps: list[StepRecord],
                   acked: Collection[tuple[str, str, int]] = ()) -> None:
        """Several steps (each as `save_step` takes it, in the order they were applied) and
        the frames peers acknowledged, as (link, epoch, seq), in ONE transaction: a group
        commit (one commit, one fsync, for the steps that were ready together).  All or
        nothing; durable on return."""
        if self._log is not None:
            with self._lock:
                self._connection()
                self._record(["s", steps, list(acked)], self._delta.steps, steps, acked)
            return
        encoded = [(instance, None if fields is None else _json(fields),
                    [(link, epoch, seq, json.dumps(frame, sort_keys=True, allow_nan=False))
                     for link, epoch, seq, frame in frames],
                    handled, clock, consumed)
                   for instance, fields, frames, handled, clock, consumed in steps]
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                top = None
                for instance, data, rows, handled, clock, consumed in encoded:
                    if data is not None:
                        conn.execute(_FIELDS_UPSERT, (instance, data))
                    if rows:
                        conn.executemany(_OUTBOX_PUT, rows)
                    if handled is not None:
                        self._add_handled(conn, *handled)
                    if consumed is not None:
                        conn.execute("DELETE FROM outbox WHERE link = ? AND epoch = ? AND "
                                     "seq = ?", consumed)
                    if clock is not None:
                        top = clock if top is None else max(top, clock)
                if acked:
                    conn.executemany("DELETE FROM outbox WHERE link = ? AND epoch = ? AND "
                                     "seq = ?", acked)
                if top is not None:
                    conn.execute(_CLOCK_UP, (top,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def save_handled(self, peer: str, epoch: str, seq: int) -> None:
        """A frame handled without a step (dropped): durable on return."""
        with self._lock:
            if self._log is not None:
                self._connection()
                self._record(["h", peer, epoch, seq], self._delta.add_handled, peer, epoch,
                             seq)
                return
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
        if type(seq) is not int:
            # (a NOT NULL error surfaces here, as SQLite's, inside the transaction)
            conn.execute(_RANGE_PUT, (peer, epoch, seq, seq))
            raise TypeError(f"a frame number is an int, not {seq!r}")
        have = _handled_of(conn, peer, epoch)
        if seq in have:
            return                       # handled already
        if seq == have.floor + 1 and not len(have):
            # the usual case, numbers handled in order: the floor's row only
            conn.execute(_HANDLED_PUT + " ON CONFLICT (peer, epoch) DO UPDATE SET "
                         "seq = excluded.seq, crc = excluded.crc", (peer, epoch, seq))
            return
        have.add(seq)
        _put_handled(conn, peer, epoch, have)

    def forget(self, peer: str, epochs: list[str]) -> None:
        """Forget the handled numbers of these lives (`epochs`) of `peer`, which have ended
        (see `TcpNode._forget_lives`).  Named, not "all but the live ones": a life of the
        peer that began since is not touched."""
        with self._lock:
            if self._log is not None:
                self._connection()
                self._record(["f", peer, list(epochs)], self._delta.forget, peer, epochs)
                return
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                for table in ("handled", "handled_ranges"):
                    conn.executemany(f"DELETE FROM {table} WHERE peer = ? AND epoch = ?",
                                     [(peer, e) for e in epochs])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def acked(self, link: str, epoch: str, seq: int) -> None:
        """The peer acknowledged a frame: forget it."""
        self.acked_many([(link, epoch, seq)])

    def acked_many(self, rows: Collection[tuple[str, str, int]]) -> None:
        """The peer acknowledged these frames, as (link, epoch, seq): forget them (in one
        transaction)."""
        with self._lock:
            if self._log is not None:
                self._connection()
                self._record(["a", list(rows)], self._delta.acked, rows)
                return
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("DELETE FROM outbox WHERE link = ? AND epoch = ? AND seq = ?",
                                 rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def outbox(self) -> list[tuple[str, str, int, dict[str, Any]]]:
        """The frames sent and not acknowledged, in the order they were sent per link; each
        row checked (`StateError` naming it)."""
        rows = self._read("outbox", "SELECT link, epoch, seq, frame FROM outbox "
                                    "ORDER BY link, rowid")
        return [self._outbox_row(*row) for row in rows]

    def _outbox_row(self, link: Any, epoch: Any, seq: Any, text: Any
                    ) -> tuple[str, str, int, dict[str, Any]]:
        def bad(what: str) -> StateError:
            return _damaged(self.path, f"table outbox, row ({link!r}, {epoch!r}, {seq!r}): "
                                       f"{what}")

        if not _name(link) or not _name(epoch):
            raise bad("the link and epoch are not names")
        if not _count(seq, 1):
            raise bad("seq is not a frame number")
        try:
            frame = json.loads(text) if isinstance(text, str) else None
        except ValueError as e:
            raise bad(f"the frame is not JSON ({e})") from None
        if not isinstance(frame, dict):
            raise bad("the frame is not a JSON object")
        if frame.get("t") != "msg" or frame.get("seq") != seq or frame.get("epoch") != epoch:
            raise bad(f"the frame is not the message of this row (its t, seq, epoch: "
                      f"{frame.get('t')!r}, {frame.get('seq')!r}, {frame.get('epoch')!r})")
        return link, epoch, seq, frame

    def handled(self) -> dict[tuple[str, str], Handled]:
        """Per (peer node, epoch): the frame numbers handled durably; each row checked."""
        out: dict[tuple[str, str], Handled] = {}
        for peer, epoch, seq in self._read("handled", "SELECT peer, epoch, seq FROM handled"):
            if not (_name(peer) and _name(epoch) and _count(seq, 1)):
                raise _damaged(self.path, f"table handled, row ({peer!r}, {epoch!r}, "
                                          f"{seq!r}): not a peer, epoch and frame number")
            out[(peer, epoch)] = Handled(seq)
        for peer, epoch, lo, hi in self._read("handled_ranges", "SELECT peer, epoch, lo, hi "
                                                                "FROM handled_ranges"):
            if not (_name(peer) and _name(epoch) and _count(lo, 1) and _count(hi, lo)):
                raise _damaged(self.path, f"table handled_ranges, row ({peer!r}, {epoch!r}, "
                                          f"{lo!r}, {hi!r}): not a peer, epoch and range of "
                                          "frame numbers")
            out.setdefault((peer, epoch), Handled()).add_range(lo, hi)
        return out

    def clock(self) -> int:
        """The Lamport clock of the last durable step (0: none)."""
        rows = self._read("meta", "SELECT value FROM meta WHERE key = 'clock'")
        clock = rows[0][0] if rows else 0
        if not _count(clock, 0):
            raise _damaged(self.path, f"table meta, row 'clock': {clock!r} is not a step count")
        return int(clock)

    def instances(self) -> list[str]:
        """The instances with saved fields."""
        rows = self._read("fields", "SELECT instance FROM fields ORDER BY instance")
        for (inst,) in rows:
            if not _name(inst):
                raise _damaged(self.path, f"table fields, row {inst!r}: not an instance name")
        return [inst for (inst,) in rows]

    def load(self, instance: str) -> dict[str, Any] | None:
        """The fields last saved for `instance`, or None if it was never saved."""
        rows = self._read("fields", "SELECT data FROM fields WHERE instance = ?", (instance,))
        if not rows:
            return None
        try:
            value = json.loads(rows[0][0]) if isinstance(rows[0][0], str) else None
        except ValueError as e:
            raise _damaged(self.path, f"table fields, row {instance!r}: the fields are not "
                                      f"JSON ({e})") from None
        if not isinstance(value, dict):
            raise _damaged(self.path, f"table fields, row {instance!r}: the fields are not a "
                                      "JSON object")
        return value

    def close(self) -> None:
        """Close the file (idempotent), its log folded in first; the store is unusable
        afterwards."""
        with self._lock:
            try:
                if self._log is not None and self._conn is not None and self._delta.records:
                    self._checkpoint()
            finally:
                self._close_files()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
