"""A store written by an earlier assay (format 1, before each row carried its checksum) is
brought to this format when it opens, keeping the node's state — not refused, which made an
upgraded node start over with --fresh and lose it.  Real SQLite files."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from assay.errors import StateError
from assay.runtime.store import FORMAT, Store

# the tables as format 1 wrote them: these, without the `crc` columns
_SUMMED = ("fields", "outbox", "handled", "handled_above", "meta")


def _format_1_store(path: Path) -> None:
    """A store with a node's state, then taken back to format 1's layout and rows."""
    s = Store(path, system="bank", node="n1")
    s.save("alice", {"balance": 5, "log": ["a", "b"]})
    s.save("bob", {"balance": 7, "log": []})
    s.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        # (format 3 keeps ranges of handled numbers; formats 1 and 2 one row per number)
        conn.execute("DROP TABLE handled_ranges")
        conn.execute("CREATE TABLE handled_above (peer TEXT NOT NULL, epoch TEXT NOT NULL, "
                     "seq INTEGER NOT NULL, crc INTEGER, PRIMARY KEY (peer, epoch, seq))")
        for table in _SUMMED:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN crc")
        conn.execute("UPDATE meta SET value = 1 WHERE key = 'format'")
        conn.execute("VACUUM")
    finally:
        conn.close()


def test_a_format_1_store_opens_with_its_state(tmp_path: Path) -> None:
    path = tmp_path / "n1.sqlite"
    _format_1_store(path)
    s = Store(path, system="bank", node="n1")
    try:
        assert s.load("alice") == {"balance": 5, "log": ["a", "b"]}
        assert s.load("bob") == {"balance": 7, "log": []}
        s.save("alice", {"balance": 6, "log": ["a", "b", "c"]})
    finally:
        s.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchall() \
            == [(FORMAT,)]
        assert conn.execute("SELECT count(*) FROM fields WHERE crc IS NULL").fetchone() == (0,)
    finally:
        conn.close()
    again = Store(path, system="bank", node="n1")          # checked as any store now
    try:
        assert again.load("alice") == {"balance": 6, "log": ["a", "b", "c"]}
    finally:
        again.close()


def test_after_the_upgrade_a_changed_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n1.sqlite"
    _format_1_store(path)
    Store(path, system="bank", node="n1").close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("UPDATE fields SET data = replace(data, '7', '4') WHERE instance = 'bob'")
    finally:
        conn.close()
    with pytest.raises(StateError, match="checksum"):
        Store(path, system="bank", node="n1")


def test_a_format_1_store_of_another_node_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "n1.sqlite"
    _format_1_store(path)
    with pytest.raises(StateError, match="not of 'n2'"):
        Store(path, system="bank", node="n2")


def test_two_processes_opening_a_format_1_store_at_once_both_get_its_state(
        tmp_path: Path) -> None:
    import subprocess
    import sys

    # A process that read the old layout while another upgraded the store (format 1 -> 2 ->
    # 3) found its own upgrade had nothing to do and checked the stale layout: "damaged
    # store: no table 'handled_ranges'" in about one round in four, so several rounds.
    code = ("import sys; from assay.runtime.store import Store; "
            "s = Store(sys.argv[1], system='bank', node='n1'); "
            "print(s.load('bob')['balance']); s.close()")
    for n in range(6):
        path = tmp_path / f"n{n}.sqlite"
        _format_1_store(path)
        procs = [subprocess.Popen([sys.executable, "-c", code, str(path)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, outs
        assert [o.strip() for o, _ in outs] == ["7"] * 4


def test_a_store_another_opener_upgraded_meanwhile_is_read_as_upgraded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The interleaving the test above meets by chance, made to happen: this opener reads
    the old layout, then another one upgrades the store before this one's upgrade looks, so
    this one's has nothing to do; it must check the layout the store has now, not the one it
    read ("damaged store: no table 'handled_ranges'" before)."""
    from assay.runtime import store as store_module

    path = tmp_path / "n1.sqlite"
    _format_1_store(path)
    upgrade = store_module._upgrade
    others: list[Store] = []

    def another_opener_first(conn: sqlite3.Connection, p: str) -> bool:
        if not others:
            monkeypatch.setattr(store_module, "_upgrade", upgrade)   # (the other: as it is)
            others.append(Store(path, system="bank", node="n1"))   # upgrades it, whole
            assert others[0].load("bob")["balance"] == 7
        return upgrade(conn, p)

    monkeypatch.setattr(store_module, "_upgrade", another_opener_first)
    s = Store(path, system="bank", node="n1")
    try:
        assert others and s.load("bob")["balance"] == 7
    finally:
        s.close()
        others[0].close()
