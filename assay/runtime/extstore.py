"""External stores in `assay run`: the contents of `external_store` fields in a real database.

In the model an external store is a `Map` in its instance's state (`assay.model.extstore`);
here its contents are also a table in a database — one table per (instance, field), named
`store_<instance>_<field>` (an instance inside a composite by its full name, `shard0.bank`),
a row per key: `k` the key and `v` the value, each the JSON text of the value's JSON form
(`assay.model.types.to_json`, keys sorted), so any assay value fits and nothing is pickled.

`StoreAdapter` is the interface to the database: `tables`, `read`, `ensure` and `apply`
(one transaction).  `DbApiAdapter` implements it over any DB-API 2.0 connection (the
`qmark` and `format` parameter styles); `SQLiteAdapter` is that over a SQLite file, the
default of `assay run --store-db FILE`.

The store keeps a step's writes atomic with the step, as its declared consistency
(`linearizable`) promises: `ExternalStores.commit` writes the keys the step changed in one
transaction, before the runtime makes the step durable (with `--state-dir`) and before its
messages leave.  The same transaction keeps, per instance, the step's number (for the
reader; nothing compares it) and the values the keys had before it (table `assay_undo`): a
crash between the two commits leaves the store one step ahead of the durable state, and the
next start undoes that step — exactly when undoing it makes the instance's tables agree with
the state restored from the state directory (no clock is compared: a run without
`--trace-out` numbers its steps afresh in each life).

The boundary contract: the database holds exactly the model's maps.  `compare` lists every
disagreement (a key on one side only, a different value, a row that is not a value of the
field's type, a missing table); a run refuses to start on a database that disagrees with the
state it starts from (written behind its back), each step's transaction deletes a key only
if it holds what assay wrote there (else `StoreConflict`: nothing written, the run stops —
no lost update), and `assay replay TRACE --against-store FILE` checks a recorded run's final
state against the database.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from assay.errors import Location, StateError, UsageError
from assay.model.mapping import Map
from assay.model.types import to_json

UNDO = "assay_undo"
_NAME = re.compile(r"[A-Za-z0-9_]+")
# an instance's name in a table's: also the '.' of a composite's (`shard0.bank`) and the '-'
# an instance name may have (the table is always a quoted identifier in the SQL)
_INSTANCE = re.compile(r"[A-Za-z0-9_.\-]+")


class StoreConflict(Exception):
    """Keys a step was to write that do not hold what assay wrote there: (table, k, the value
    assay wrote or None for no row), each."""

    def __init__(self, keys: list[tuple[str, str, str | None]]) -> None:
        super().__init__(keys)
        self.keys = keys


class StoreAdapter(Protocol):
    """What assay needs of a database (see `DbApiAdapter`)."""

    where: str                          # for messages: the file or connection

    def tables(self) -> set[str]:
        """The names of the tables that exist."""

    def ensure(self, tables: Iterable[str]) -> None:
        """Create the store tables (and `assay_undo`) that do not exist yet."""

    def read(self, table: str) -> list[tuple[Any, Any]]:
        """Every (k, v) row of `table`."""

    def undo_rows(self) -> list[tuple[Any, Any, Any]]:
        """Every (instance, clock, before) row of `assay_undo`."""

    def apply(self, writes: list[tuple[str, str, str | None]],
              undo: tuple[str, int, str] | None, drop_undo: Iterable[str] = (),
              expect: dict[tuple[str, str], str | None] | None = None) -> None:
        """In one transaction: each (table, k, v) write (v None: delete the row), the `undo`
        row (instance, clock, before) replacing that instance's, and the undo rows of
        `drop_undo` deleted.  With `expect` ((table, k) -> the value each written key must
        hold now, None: no row), a key that holds something else is a `StoreConflict`, and
        nothing is written."""

    def close(self) -> None: ...


# what a driver says of a table not of a store's shape (SQLite: "no such column: k", "table
# t has 1 columns but 2 values were supplied", "NOT NULL constraint failed", "datatype
# mismatch"; PostgreSQL: 'column "k" does not exist', "violates ... constraint"): the only
# errors the note on a store table's shape explains, not an I/O error, a lock, a read-only
# file (where it misled)
_OTHER_SHAPE = re.compile(r"\bcolumns?\b|constraint|datatype|mismatch|invalid input syntax",
                          re.IGNORECASE)


class DbApiAdapter:
    """A `StoreAdapter` over a DB-API 2.0 connection (`paramstyle` "qmark" or "format").

    Portable SQL only: CREATE TABLE, SELECT, DELETE and INSERT (an update is a delete and an
    insert in the same transaction), `commit` or `rollback` per call.  `list_tables` is the
    query that lists the tables, its rows (name,); the default is SQLite's."""

    def __init__(self, connection: Any, paramstyle: str = "qmark", where: str = "database",
                 list_tables: str = "SELECT name FROM sqlite_master WHERE type = 'table'"
                 ) -> None:
        if paramstyle not in ("qmark", "format"):
            raise UsageError(f"DbApiAdapter: paramstyle {paramstyle!r} is not supported",
                             notes=["use a connection whose driver takes 'qmark' (?) or "
                                    "'format' (%s) parameters"])
        self.conn = connection
        # the driver's exceptions (PEP 249: `Connection.Error`, where the driver has it)
        self.errors: type[BaseException] = getattr(connection, "Error", None) or Exception
        self.p = "?" if paramstyle == "qmark" else "%s"
        self.where = where
        self.list_tables = list_tables
        self.lock = threading.Lock()          # the runtime calls it from worker threads

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        cur = self.conn.cursor()
        try:
            cur.execute(sql, args) if args else cur.execute(sql)
            return list(cur.fetchall()) if cur.description is not None else []
        except self.errors as e:
            raise StateError(f"the store database refused {sql.split(' (')[0]!r}: {e}",
                             Location(self.where),
                             ["a store table is (k TEXT PRIMARY KEY, v TEXT), as assay creates "
                              "it: give the database --store-db wrote, or a new file"]
                             if _OTHER_SHAPE.search(str(e)) else []) from None
        finally:
            cur.close()

    def tables(self) -> set[str]:
        with self.lock:
            return {str(r[0]) for r in self._run(self.list_tables)}

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction under the lock: committed when the block ends, rolled back when it
        raises (a database error becomes a `StateError`)."""
        with self.lock:
            try:
                yield
                self.conn.commit()
            except Exception as e:
                try:
                    self.conn.rollback()
                except self.errors as r:
                    # (the connection is gone, say): the driver's error would hide why
                    why = getattr(e, "message", e)
                    raise StateError(f"the store database did not commit ({why}) nor roll "
                                     f"back: {r}", Location(self.where),
                                     ["what it holds now is unknown: check it against the "
                                      "run (assay replay --against-store) before running "
                                      "on it again"]) from None
                if isinstance(e, self.errors):
                    raise StateError(f"the store database did not commit: {e}",
                                     Location(self.where)) from None
                raise

    def ensure(self, tables: Iterable[str]) -> None:
        with self._transaction():
            for t in tables:
                self._run(f'CREATE TABLE IF NOT EXISTS "{t}" '
                          "(k TEXT PRIMARY KEY NOT NULL, v TEXT NOT NULL)")
            self._run(f'CREATE TABLE IF NOT EXISTS "{UNDO}" (instance TEXT PRIMARY KEY '
                      "NOT NULL, clock INTEGER NOT NULL, before TEXT NOT NULL)")

    def read(self, table: str) -> list[tuple[Any, Any]]:
        with self.lock:
            return [(r[0], r[1]) for r in self._run(f'SELECT k, v FROM "{table}"')]

    def undo_rows(self) -> list[tuple[Any, Any, Any]]:
        with self.lock:
            return [(r[0], r[1], r[2])
                    for r in self._run(f'SELECT instance, clock, before FROM "{UNDO}"')]

    def apply(self, writes: list[tuple[str, str, str | None]],
              undo: tuple[str, int, str] | None, drop_undo: Iterable[str] = (),
              expect: dict[tuple[str, str], str | None] | None = None) -> None:
        p = self.p
        with self._transaction():
            conflicts = []
            for table, k, v in writes:
                if expect is None:
                    self._delete(f'DELETE FROM "{table}" WHERE k = {p}', (k,))
                else:
                    # the row is deleted only if it holds what assay wrote: a row count
                    # that differs is a write behind assay's back
                    old = expect[table, k]
                    n = self._delete(f'DELETE FROM "{table}" WHERE k = {p}', (k,)) \
                        if old is None else \
                        self._delete(f'DELETE FROM "{table}" WHERE k = {p} AND v = {p}',
                                     (k, old))
                    if n != (0 if old is None else 1):
                        conflicts.append((table, k, old))
                        continue
                if v is not None:
                    self._run(f'INSERT INTO "{table}" (k, v) VALUES ({p}, {p})', (k, v))
            for inst in drop_undo:
                self._run(f'DELETE FROM "{UNDO}" WHERE instance = {p}', (inst,))
            if undo is not None:
                self._run(f'DELETE FROM "{UNDO}" WHERE instance = {p}', (undo[0],))
                self._run(f'INSERT INTO "{UNDO}" (instance, clock, before) '
                          f"VALUES ({p}, {p}, {p})", undo)
            if conflicts:
                raise StoreConflict(conflicts)

    def _delete(self, sql: str, args: tuple[Any, ...]) -> int:
        cur = self.conn.cursor()
        try:
            cur.execute(sql, args)
            return int(cur.rowcount)
        except self.errors as e:
            raise StateError(f"the store database refused {sql!r}: {e}",
                             Location(self.where)) from None
        finally:
            cur.close()

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class SQLiteAdapter(DbApiAdapter):
    """The default adapter: a SQLite file in WAL mode; `durability` as `--durability` says:
    "machine" (`synchronous=FULL`, a commit survives a crash of the machine) or "process"
    (`NORMAL`, a crash of the process)."""

    def __init__(self, path: str | os.PathLike, readonly: bool = False,
                 durability: str = "machine") -> None:
        self.path = os.fspath(path)
        try:
            if readonly:
                if not os.path.isfile(self.path):
                    raise StateError("no such store database", Location(self.path),
                                     ["give the file that --store-db wrote"])
                uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            else:
                conn = sqlite3.connect(self.path, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous="
                             + ("FULL" if durability == "machine" else "NORMAL"))
        except sqlite3.Error as e:
            raise StateError(f"cannot open the store database: {e}", Location(self.path),
                             ["give --store-db a SQLite file (it is created if missing)"]
                             ) from None
        super().__init__(conn, "qmark", self.path)


def _text(j: Any) -> str:
    return json.dumps(j, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_EMPTY = Map()


def contents(value: Map | None) -> Map:
    """What a store field's value keeps in its table: the map; nothing for None, the value
    of every field of a pool's dormant slot (`assay.model.pool`): a slot's store is empty
    until it is spawned, and emptied when it is retired, as the model has it."""
    return _EMPTY if value is None else value


def table_name(instance: str, field: str) -> str:
    return f"store_{instance}_{field}"


@dataclass(frozen=True)
class StoreTable:
    instance: str
    field: str
    table: str
    spec: Any                            # the field's `_Map` type spec (key, value)


def store_tables(kernel: Any) -> list[StoreTable]:
    """Every external store of the system: one table per (instance, field)."""
    from assay.model.extstore import store_fields

    out = []
    named: dict[str, str] = {}                  # table -> the store it keeps
    for inst in kernel.instances:
        info = inst.info
        for f in store_fields(info):
            if not (_INSTANCE.fullmatch(inst.name) and _NAME.fullmatch(f)):
                raise UsageError(f"the external store {inst.name}.{f} cannot be a table name",
                                 notes=["name instances with letters, digits and _ only"])
            table = table_name(inst.name, f)
            if table in named:
                # `a`.`b_c` and `a_b`.`c` would both be `store_a_b_c`: one table for two
                # stores, each step of one overwriting the other's keys
                raise UsageError(f"the external stores {named[table]} and {inst.name}.{f} "
                                 f"would share the table {table}", notes=[
                                     "rename one of the instances or fields: a store's table "
                                     "is store_<instance>_<field>"])
            named[table] = f"{inst.name}.{f}"
            out.append(StoreTable(inst.name, f, table, info.types[info.field_index[f]]))
    return out


class ExternalStores:
    """The external stores of a system's instances, kept in one database (`adapter`)."""

    def __init__(self, kernel: Any, adapter: StoreAdapter, names: Iterable[str]) -> None:
        hosted = set(names)
        self.adapter = adapter
        self.tables = [t for t in store_tables(kernel) if t.instance in hosted]
        self.by_instance: dict[str, list[StoreTable]] = {}
        for t in self.tables:
            self.by_instance.setdefault(t.instance, []).append(t)
        # per table, what it holds now (as committed): key text -> value text; and the Map
        # it was written from
        self.held: dict[str, dict[str, str]] = {}
        self.last: dict[str, Map] = {}

    def __bool__(self) -> bool:
        return bool(self.tables)

    # --- the boundary contract -----------------------------------------------------------

    def compare(self, values: dict[str, dict[str, Any]]) -> list[str]:
        """Where the database and the model's maps (`values`: instance -> field -> value)
        disagree, one line each; [] when they agree."""
        return self._diff(self._snapshot(), values)

    def _snapshot(self) -> dict[str, dict[str, str] | None]:
        """What each store table holds (key text -> value text; None: no such table)."""
        found = self.adapter.tables()
        return {t.table: dict((str(k), str(v)) for k, v in self.adapter.read(t.table))
                if t.table in found else None for t in self.tables}

    def _diff(self, snap: dict[str, dict[str, str] | None],
              values: dict[str, dict[str, Any]], only: set[str] | None = None) -> list[str]:
        out: list[str] = []
        for t in self.tables:
            if only is not None and t.table not in only:
                continue
            model = contents(values[t.instance][t.field])
            held = snap[t.table]
            if held is None:
                out.append(f"table {t.table} is missing (the model's {t.instance}.{t.field} "
                           f"holds {len(model)} keys)")
                continue
            out.extend(self._diff_table(t, held, model))
        return out

    def _diff_table(self, t: StoreTable, held: dict[str, str], model: Map) -> list[str]:
        out = []
        want = {_text(to_json(k)): (k, v) for k, v in model.items()}
        seen = set()
        for k_text, v_text in held.items():
            try:
                key = t.spec.key.from_json(json.loads(k_text))
                value = t.spec.value.from_json(json.loads(v_text))
            except (TypeError, ValueError) as e:
                out.append(f"table {t.table}, row k={k_text!r}: not a "
                           f"{t.spec.describe()} entry ({e})")
                continue
            seen.add(k_text)
            if k_text not in want:
                out.append(f"table {t.table}: key {key!r} = {value!r} is in the database, not "
                           f"in the model's {t.instance}.{t.field}")
            elif want[k_text][1] != value:
                out.append(f"table {t.table}: key {key!r} is {value!r} in the database, "
                           f"{want[k_text][1]!r} in the model's {t.instance}.{t.field}")
        for k_text, (key, value) in want.items():
            if k_text not in seen:
                out.append(f"table {t.table}: key {key!r} = {value!r} is in the model's "
                           f"{t.instance}.{t.field}, not in the database")
        return out

    # --- a run ---------------------------------------------------------------------------

    def attach(self, start: dict[str, dict[str, Any]], undo: bool = True) -> None:
        """Before a run's first step: create the tables a fresh database lacks (filled from
        `start`, instance -> field -> value: the state the run starts from) and check that
        the database holds the model's maps in `start`.  With `undo` (a run with a state
        directory), a database that holds one step more than `start` — a kill between the
        store's commit and the state directory's — is brought back by the undo records
        (exactly when undoing makes it agree; nothing is written otherwise).  A disagreement
        is a `StateError`: assay does not overwrite what someone else wrote."""
        a = self.adapter
        found = a.tables()
        new = [t for t in self.tables if t.table not in found]
        a.ensure(t.table for t in new)
        writes: list[tuple[str, str, str | None]] = []
        for t in new:
            for k, v in contents(start[t.instance][t.field]).items():
                writes.append((t.table, _text(to_json(k)), _text(to_json(v))))
        if writes:
            a.apply(writes, None)
        snap = self._snapshot()
        bad = self._diff(snap, start)
        records = self._undo_records() if UNDO in found else []
        if bad and undo:
            # per instance (its tables are its own): a record whose undoing makes them agree
            # is of a step the state directory does not hold
            back: list[tuple[str, str, str | None]] = []
            for inst, ws, wrote in records:
                mine = {t.table for t in self.by_instance.get(inst, [])}
                part = {t: held for t, held in snap.items() if t in mine}
                if not part or not self._diff(part, start, mine):
                    continue
                if any((part.get(table) or {}).get(k) != v for table, k, v in wrote):
                    # a key no longer holds what that step wrote: someone else wrote there
                    # since, and undoing the step would erase it unseen
                    continue
                trial = {t: None if held is None else dict(held) for t, held in part.items()}
                for table, k, v in ws:
                    held = trial.get(table)
                    if held is None:
                        continue
                    if v is None:
                        held.pop(k, None)
                    else:
                        held[k] = v
                if not self._diff(trial, start, mine):
                    back.extend(ws)
                    snap.update(trial)
            if back:
                bad = self._diff(snap, start)
                if not bad:                            # written only if it all agrees then
                    a.apply(back, None, [r[0] for r in records])
        elif not bad and records:                      # every step they record is durable
            a.apply([], None, [r[0] for r in records])
        if bad:
            raise StateError(f"the store database disagrees with the state the run starts from "
                             f"({len(bad)} difference{'s' if len(bad) != 1 else ''}): "
                             + "; ".join(bad[:5]), Location(a.where),
                             ["something wrote to the store behind assay's back, or it holds "
                              "another run's contents: restore it, or give a new --store-db "
                              "file (a run without --state-dir starts from the model's "
                              "initial state)"])
        for t in self.tables:
            self.held[t.table] = {_text(to_json(k)): _text(to_json(v))
                                  for k, v in contents(start[t.instance][t.field]).items()}

    def _undo_records(self) -> list[tuple[str, list[tuple[str, str, str | None]],
                                          list[tuple[str, str, str | None]]]]:
        """Each instance's undo record: its last step's keys and the values they had before
        (None: no row), and the values the step wrote (none listed in a record of an older
        assay, which kept only the first)."""
        out = []
        for inst, _clock, before in self.adapter.undo_rows():
            try:
                rows = json.loads(before)
                back = [(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]))
                        for r in rows]
                wrote = [(str(r[0]), str(r[1]), None if r[3] is None else str(r[3]))
                         for r in rows if len(r) == 4]
                if any(len(r) not in (3, 4) for r in rows):
                    raise ValueError("a row is not [table, key, before(, after)]")
                out.append((str(inst), back, wrote))
            except (TypeError, ValueError, IndexError, KeyError) as e:
                raise StateError(f"table {UNDO}, row {inst!r}: not an undo record ({e})",
                                 Location(self.adapter.where),
                                 ["the store database was edited: restore it"]) from None
        return out

    def commit(self, instance: str, values: dict[str, Any], clock: int) -> None:
        """One step of `instance` (its fields now `values`): write the keys of its stores that
        changed, with the undo record, in one transaction.  Nothing changed: nothing
        written."""
        tables = self.by_instance.get(instance)
        if not tables:
            return
        writes: list[tuple[str, str, str | None]] = []
        before: list[tuple[str, str, str | None]] = []
        for t in tables:
            value = contents(values[t.field])
            if value is self.last.get(t.table):       # a Map is immutable: not changed
                continue
            held = self.held[t.table]
            now = {_text(to_json(k)): _text(to_json(v)) for k, v in value.items()}
            for k, v in now.items():
                if held.get(k) != v:
                    writes.append((t.table, k, v))
                    before.append((t.table, k, held.get(k)))
            for k in sorted(held.keys() - now.keys()):
                writes.append((t.table, k, None))
                before.append((t.table, k, held[k]))
        if not writes:
            return
        try:
            # the record: each key's value before the step and the one it writes (undone at
            # the next start only if the database still holds exactly what this step wrote)
            record = [(t, k, old, w) for (t, k, old), (_, _, w) in zip(before, writes)]
            self.adapter.apply(writes, (instance, clock, _text(record)),
                               expect={(t, k): old for t, k, old in before})
        except StoreConflict as e:
            what = "; ".join(f"table {t}, key {k}: assay wrote "
                             + ("no row" if old is None else f"v={old}") for t, k, old in e.keys)
            raise StateError(f"the store database changed behind assay's back, at a step of "
                             f"{instance} that writes there: {what}", Location(self.adapter.where),
                             ["nothing else may write to the store's tables while assay runs; "
                              "the step was not taken (nothing of it is durable)"]) from None
        for table, k, w in writes:
            if w is None:
                del self.held[table][k]
            else:
                self.held[table][k] = w
        for t in tables:
            self.last[t.table] = contents(values[t.field])

    def close(self) -> None:
        self.adapter.close()


def start_values(kernel: Any, initial: dict[str, dict[str, Any]], store: Any,
                 first_life: bool) -> dict[str, dict[str, Any]]:
    """The store fields' values in the state a run starts from, before its start and restart
    steps: the initial values (`initial`, instance -> fields), or on a restart the saved
    ones of `store` (the state directory's; an instance never saved starts initial)."""
    out = {n: dict(v) for n, v in initial.items()}
    if store is None or first_life:
        return out
    for t in store_tables(kernel):
        if t.instance not in out:
            continue
        saved = store.load(t.instance) or {}
        if t.field in saved:
            try:
                out[t.instance][t.field] = t.spec.from_json(saved[t.field])
            except (TypeError, ValueError) as e:        # restore() has refused it already
                raise StateError(f"table fields, row {t.instance!r}: {t.field} is not a "
                                 f"{t.spec.describe()} ({e})", Location(store.path)) from None
    return out


def open_store_db(kernel: Any, path: str | os.PathLike,
                  durability: str = "machine") -> SQLiteAdapter:
    """`--store-db FILE`: the SQLite adapter, for a system that has external stores."""
    if not store_tables(kernel):
        raise UsageError(f"--store-db {os.fspath(path)}: the system has no external store",
                         notes=["declare a field with external_store(...) to keep it in a "
                                "database, or leave --store-db out"])
    return SQLiteAdapter(path, durability=durability)


NODE_DB = ".db"                  # `run --deploy --store-db DIR`: DIR/<node>.db per node


def node_store_path(directory: str | os.PathLike, node: str) -> str:
    """The store database of one node of a deployment (`run --deploy --store-db DIR`)."""
    return os.path.join(os.fspath(directory), node + NODE_DB)


def hosts_store(kernel: Any, names: Iterable[str]) -> bool:
    """Whether any of the instances `names` has an external store."""
    hosted = set(names)
    return any(t.instance in hosted for t in store_tables(kernel))


def check_against_store(kernel: Any, start: Any, steps: Iterable[Any],
                        path: str | os.PathLike) -> list[str]:
    """The boundary contract of a recorded run: replay `steps` from `start` through the
    kernel and compare the model's maps at the end with the store database at `path`
    (`ExternalStores.compare`: [] when they agree).  A directory `path` is a deployment's
    (`run --deploy --store-db DIR`): each node's `<node>.db` holds the stores of the
    instances placed on it, so every store table must be in exactly one of its files, and
    each file is compared for the instances whose tables it holds."""
    if not store_tables(kernel):
        raise UsageError(f"--against-store {os.fspath(path)}: the trace's system has no "
                         "external store", notes=["leave --against-store out"])
    state = start
    for st in steps:
        state = kernel.apply(state, st.event)[0]
    values = {inst.name: kernel.local_values(state, inst.name) for inst in kernel.instances}
    if os.path.isdir(path):
        return _against_node_stores(kernel, values, os.fspath(path))
    adapter = SQLiteAdapter(path, readonly=True)
    try:
        return ExternalStores(kernel, adapter, values).compare(values)
    except sqlite3.DatabaseError as e:
        raise StateError(f"cannot read the store database: {e}", Location(os.fspath(path)),
                         ["give the SQLite file that --store-db wrote"]) from None
    finally:
        adapter.close()


def _against_node_stores(kernel: Any, values: dict[str, dict[str, Any]],
                         directory: str) -> list[str]:
    """`check_against_store` on the directory of a deployment's node databases."""
    files = sorted(f for f in os.listdir(directory) if f.endswith(NODE_DB))
    if not files:
        raise StateError("no store database (<node>.db) in this directory", Location(directory),
                         ["give the directory that `assay run --deploy --store-db` wrote, "
                          "or one node's file"])
    every = {t.table: t for t in store_tables(kernel)}
    where: dict[str, list[str]] = {}
    out: list[str] = []
    for f in files:
        path = os.path.join(directory, f)
        adapter = SQLiteAdapter(path, readonly=True)
        try:
            mine = adapter.tables() & every.keys()
            for table in mine:
                where.setdefault(table, []).append(f)
            hosted = {every[t].instance for t in mine}
            # an instance's tables all live on its node: one missing beside the others is a
            # difference of this file
            out.extend(f"{f}: {line}" for line in
                       ExternalStores(kernel, adapter, hosted).compare(values))
        except sqlite3.DatabaseError as e:
            raise StateError(f"cannot read the store database: {e}", Location(path),
                             ["give the directory that --store-db wrote"]) from None
        finally:
            adapter.close()
    for table, t in every.items():
        if table not in where:
            out.append(f"table {table} is in no database of {directory} (the model's "
                       f"{t.instance}.{t.field} holds {len(values[t.instance][t.field])} keys)")
        elif len(where[table]) > 1:
            out.append(f"table {table} is in {len(where[table])} databases "
                       f"({', '.join(where[table])}): an instance runs on one node")
    return out
