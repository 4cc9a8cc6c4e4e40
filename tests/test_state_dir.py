"""A state directory that is not exactly what assay wrote (issue 9 §3): a damaged store is a
usage error (exit 2) naming the file and what is wrong — never a silent fresh start, never a
traceback — and `--fresh` starts over by moving the old state aside, saying so.

End to end, as a user meets it: `assay run SPEC --state-dir` and `assay node --state-dir` in
subprocesses on real SQLite files, damaged with the sqlite3 module or by writing bytes.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from runtime_support import (
    ROOT,
    START,
    Children,
    assay_argv,
    ctl,
    free_ports,
    poll,
    write_deployment,
)

pytestmark = pytest.mark.e2e

BANK = ROOT / "tests" / "fixtures" / "runtime" / "bank_persistent.py"
FOLLOWER = ROOT / "tests" / "fixtures" / "runtime" / "follower.py"
TOTAL = 3 * 4                           # three accounts of 4


def _run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(assay_argv(*args), capture_output=True, text=True, timeout=timeout)


def _bank(state: Path, *extra: str | Path, seconds: str = "0.3") -> subprocess.CompletedProcess:
    """`assay run` of the persistent bank (three accounts) on `state` for `seconds`."""
    return _run("run", BANK, "-p", "accounts=3", "--for", seconds, "--state-dir", state,
                "--json", *extra)


def _saved_bank(tmp_path: Path) -> Path:
    """A state directory the bank left after a clean run (money in flight or not)."""
    state = tmp_path / "state"
    r = _bank(state)
    assert r.returncode == 0, r.stderr
    return state


def _refused(r: subprocess.CompletedProcess, store: Path, *problem: str) -> None:
    """Exit 2, no traceback, an error naming the store file and each word of the problem."""
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr
    assert "error:" in r.stderr and store.name in r.stderr, r.stderr
    for word in problem:
        assert word in r.stderr, (word, r.stderr)
    assert "--fresh" in r.stderr, r.stderr        # the way out is named


def _sql(store: Path, *statements: str) -> None:
    """Run `statements` on the store, then give every row the checksum assay would have
    (`store.row_crc`): what they leave is refused by the checks of what rows hold, not by
    the checksum's (tests/test_redteam_runtime3.py has that)."""
    from assay.runtime.store import _SUMMED, row_crc

    conn = sqlite3.connect(store, isolation_level=None)
    conn.create_function("assay_crc", -1, row_crc, deterministic=True)
    try:
        for s in statements:
            conn.execute(s)
        if not any(s.startswith(("CREATE", "DROP")) for s in statements):
            for table, cols in _SUMMED.items():
                conn.execute(f"UPDATE {table} SET crc = assay_crc('{table}', "
                             f"{', '.join(cols)})")
    finally:
        conn.close()


def _contents(store: Path) -> list[tuple] | None:
    """Every row of every table of `store` (None: it cannot be read whole)."""
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            out = []
            for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
                out += [(name, *row) for row in
                        conn.execute(f"SELECT * FROM {name} ORDER BY rowid")]   # noqa: S608
            return out
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None


# --- the damage: one function per kind, each leaving a store that is not what assay wrote ------

def _truncate(store: Path) -> None:
    store.write_bytes(b"")


def _garbage_pages(store: Path, seed: int, where: str) -> None:
    """Overwrite 16 seeded random bytes from the start of one row (a cell, picked by the seed)
    of the page that holds `where` (a table, or the schema on page 1): bytes assay wrote,
    never free space."""
    conn = sqlite3.connect(store)
    try:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        page = 1 if where == "schema" else conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (where,)).fetchone()[0]
    finally:
        conn.close()
    data = bytearray(store.read_bytes())
    base = (page - 1) * size
    header = base + (100 if page == 1 else 0)
    assert data[header] == 13, f"page {page} is not a table leaf"   # (small tables: one page)
    cells = int.from_bytes(data[header + 3:header + 5], "big")
    assert cells, f"page {page} holds no rows"
    rng = random.Random(seed)
    k = rng.randrange(cells)
    cell = base + int.from_bytes(data[header + 8 + 2 * k:header + 10 + 2 * k], "big")
    data[cell:cell + 16] = rng.randbytes(16)
    store.write_bytes(bytes(data))


# --- assay run --state-dir -------------------------------------------------------------------

def test_a_store_truncated_to_zero_bytes_is_refused_not_reset(tmp_path):
    # the bug: SQLite took the empty file for a new database: "✓", exit 0, balances back to 4
    state = _saved_bank(tmp_path)
    _truncate(state / "local.sqlite")
    _refused(_bank(state), state / "local.sqlite", "empty")
    assert (state / "local.sqlite").stat().st_size == 0      # left as it was found


@pytest.mark.parametrize("table", ["fields", "outbox", "handled", "handled_ranges", "meta"])
def test_a_store_with_a_dropped_table_is_refused(tmp_path, table):
    # the bug: the table was created again, empty; dropping `fields` reset every balance
    state = _saved_bank(tmp_path)
    _sql(state / "local.sqlite", f"DROP TABLE {table}")
    _refused(_bank(state), state / "local.sqlite", f"no table '{table}'")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("where", ["schema", "fields", "meta"])
def test_random_bytes_over_what_assay_wrote_are_refused(tmp_path, where, seed):
    # the bug: a traceback (exit 70), or rows read as they were damaged
    state = _saved_bank(tmp_path)
    _garbage_pages(state / "local.sqlite", seed, where)
    _refused(_bank(state), state / "local.sqlite", "damaged")


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_in_the_middle_of_the_file_never_pass_silently(tmp_path, seed):
    # where the bytes land depends on the layout the first run left: on rows or on the
    # structure of a page the store is refused; on free space inside a page they change
    # nothing assay wrote (SQLite keeps no checksum of it), and the run goes on from exactly
    # the saved state — never from anything else
    state = _saved_bank(tmp_path)
    store = state / "local.sqlite"
    before = _contents(store)
    data = bytearray(store.read_bytes())
    rng = random.Random(seed)
    at = rng.randrange(len(data) // 4, 3 * len(data) // 4)
    data[at:at + 64] = rng.randbytes(64)
    store.write_bytes(bytes(data))
    untouched = _contents(store) == before          # (read before assay opens it)
    r = _bank(state, seconds="0")
    if r.returncode != 0:
        _refused(r, store, "damaged")
        return
    assert untouched, "the damaged rows were taken for saved state"
    doc = json.loads(r.stdout)
    assert before is not None
    saved = {row[1]: json.loads(row[2])["balance"] for row in before if row[0] == "fields"}
    assert {a: f["balance"] for a, f in doc["final"].items()} == saved


@pytest.mark.parametrize("frame,problem", [
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"t": "msg", "seq": 1, "epoch": "e0"}', "does not fit the spec"),
    ('{"t": "msg", "seq": 2, "epoch": "e0", "src": "acct0", "src_port": "out", '
     '"dst": "acct1", "dst_port": "inp", "clock": 1, '
     '"message": {"type": "Transfer", "fields": {"amount": 1}}}', "seq"),
])
def test_a_garbage_outbox_row_is_refused_naming_the_table_and_row(tmp_path, frame, problem):
    # the bug: a traceback (exit 70) from json.loads, or a message made of garbage
    state = _saved_bank(tmp_path)
    _sql(state / "local.sqlite",
         f"INSERT INTO outbox (link, epoch, seq, frame) VALUES ('local', 'e0', 1, '{frame}')")
    _refused(_bank(state), state / "local.sqlite", "outbox", "row", problem)


def test_an_outbox_row_whose_number_is_not_a_number_is_refused(tmp_path):
    state = _saved_bank(tmp_path)
    _sql(state / "local.sqlite",
         "INSERT INTO outbox (link, epoch, seq, frame) VALUES ('local', 'e0', 'one', '{}')")
    _refused(_bank(state), state / "local.sqlite", "outbox", "row", "seq")


@pytest.mark.parametrize("statement,problem", [
    ("UPDATE meta SET value = 99 WHERE key = 'format'", "format 99"),
    ("DELETE FROM meta WHERE key = 'format'", "no format version"),
    ("UPDATE meta SET value = 'x' WHERE key = 'clock'", "clock"),
    ("INSERT INTO meta (key, value) VALUES ('colour', 'blue')", "colour"),
    ("UPDATE fields SET data = 'garbage' WHERE instance = 'acct1'", "acct1"),
    ("INSERT INTO fields (instance, data) VALUES ('acct9', '{\"balance\": 4}')", "acct9"),
    ("CREATE TABLE extra (x)", "extra"),
])
def test_a_wrong_version_or_meta_row_is_refused(tmp_path, statement, problem):
    state = _saved_bank(tmp_path)
    _sql(state / "local.sqlite", statement)
    _refused(_bank(state), state / "local.sqlite", problem)


def test_the_state_of_another_system_is_refused(tmp_path):
    state = tmp_path / "state"
    r = _run("run", FOLLOWER, "-p", "limit=3", "--state-dir", state)
    assert r.returncode == 0, r.stderr
    _refused(_bank(state), state / "local.sqlite", "'follower'", "'bank_transfer'")


def test_a_state_dir_whose_store_is_gone_is_not_a_silent_fresh_start(tmp_path):
    # the step log of the earlier lives is there, the store is not: starting over would
    # quietly give every account its initial balance again
    state = tmp_path / "state"
    r = _bank(state, "--trace-out", tmp_path / "run.json")
    assert r.returncode == 0, r.stderr
    (state / "local.sqlite").unlink()
    r = _bank(state)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "local.sqlite" in r.stderr and "local.jsonl" in r.stderr and "--fresh" in r.stderr
    assert not (state / "local.sqlite").exists()


@pytest.mark.parametrize("damage", [_truncate, lambda s: _sql(s, "DROP TABLE fields"),
                                    lambda s: _garbage_pages(s, 0, "fields")],
                         ids=["truncated", "dropped", "garbage"])
def test_fresh_starts_over_a_damaged_state_dir_and_says_where_the_old_files_went(
        tmp_path, damage: Callable[[Path], None]):
    state = tmp_path / "state"
    r = _bank(state, "--trace-out", tmp_path / "run.json")
    assert r.returncode == 0, r.stderr
    damage(state / "local.sqlite")
    r = _bank(state, "--fresh", seconds="0")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert all(f["balance"] == 4 for f in doc["final"].values())      # a fresh start
    moved = sorted(p.name for p in state.iterdir() if ".old-" in p.name)
    assert [m.split(".old-")[0] for m in moved] == ["local.jsonl", "local.sqlite"]
    assert "--fresh" in r.stderr and all(m in r.stderr for m in moved), r.stderr
    r = _bank(state)                                  # and the new state resumes as usual
    assert r.returncode == 0, r.stderr


def test_a_new_or_empty_state_dir_starts_fresh_without_a_flag(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for state in (tmp_path / "new" / "deeper", empty):
        r = _bank(state, seconds="0")
        assert r.returncode == 0, r.stderr
        assert "moved" not in r.stderr
        r = _bank(state)
        assert r.returncode == 0, r.stderr


def test_fresh_needs_a_state_dir(tmp_path):
    r = _run("run", BANK, "--fresh")
    assert r.returncode == 2 and "--fresh" in r.stderr and "--state-dir" in r.stderr


# --- assay node --state-dir: the same store, the same checks ----------------------------------

def _bank_node(children: Children, tmp_path: Path) -> tuple[Path, int, Path, Path]:
    """A deployment of the bank on one node `a`, run until it has saved steps, stopped."""
    (pa,) = free_ports(1)
    dep = write_deployment(tmp_path / "deploy.toml", BANK,
                           {"a": (pa, ["acct0", "acct1", "acct2"])}, params={"accounts": 3})
    state, log = tmp_path / "state", tmp_path / "a.log"
    a = children.node(dep, "a", pa, "--state-dir", state, log=log)
    poll(lambda: (ctl(pa, {"t": "status"}) or {}).get("steps", 0) > 30, START, "steps",
         log=log)
    children.stop(a, pa)
    return dep, pa, state, log


@pytest.mark.parametrize("damage,problem", [
    (_truncate, "empty"),
    (lambda s: _sql(s, "DROP TABLE outbox"), "no table 'outbox'"),
    (lambda s: _garbage_pages(s, 1, "fields"), "damaged"),
    (lambda s: _sql(s, "INSERT INTO outbox (link, epoch, seq, frame) VALUES "
                       "('a', 'e0', 1, 'not json')"), "outbox"),
    (lambda s: _sql(s, "INSERT INTO outbox (link, epoch, seq, frame) VALUES "
                       "('zz', 'e0', 1, '{}')"), "outbox"),
    (lambda s: _sql(s, "UPDATE meta SET value = 4 WHERE key = 'format'"), "format 4"),
    (lambda s: _sql(s, "UPDATE meta SET value = 'b' WHERE key = 'node'"), "node 'b'"),
], ids=["truncated", "dropped", "garbage", "outbox-row", "outbox-link", "version", "node"])
def test_a_node_refuses_a_damaged_store_and_starts_over_with_fresh(
        children, tmp_path, damage, problem):
    dep, pa, state, log = _bank_node(children, tmp_path)
    damage(state / "a.sqlite")
    r = children.run("node", dep, "--name", "a", "--state-dir", state)
    _refused(r, state / "a.sqlite", problem)
    a = children.node(dep, "a", pa, "--state-dir", state, "--fresh", log=log)
    assert "a.sqlite.old-" in log.read_text()
    children.stop(a, pa)
    assert any(p.name.startswith("a.sqlite.old-") for p in state.iterdir())


def test_a_node_whose_store_is_gone_from_a_state_dir_it_used_is_refused(children, tmp_path):
    dep, pa, state, log = _bank_node(children, tmp_path)
    os.replace(state / "a.sqlite", tmp_path / "elsewhere.sqlite")
    (state / "a.sqlite-wal").write_bytes(b"")        # what a kill -9 leaves beside it
    r = children.run("node", dep, "--name", "a", "--state-dir", state)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "a.sqlite" in r.stderr and "--fresh" in r.stderr


def test_nodes_sharing_a_state_dir_start_fresh_beside_each_other(children, tmp_path):
    # another node's files in the directory are not an earlier life of this one
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", FOLLOWER,
                           {"a": (pa, ["leader"]), "b": (pb, ["follower"])})
    state = tmp_path / "state"
    a = children.node(dep, "a", pa, "--state-dir", state, log=tmp_path / "a.log")
    b = children.node(dep, "b", pb, "--state-dir", state, log=tmp_path / "b.log")
    children.stop(a, pa)
    children.stop(b, pb)
    assert {p.name for p in state.iterdir()} >= {"a.sqlite", "b.sqlite"}


def test_assay_run_deploy_reports_a_damaged_store_and_fresh_starts_over(children, tmp_path):
    (pa,) = free_ports(1)
    dep = write_deployment(tmp_path / "deploy.toml", FOLLOWER, {"a": (pa, ["leader",
                                                                          "follower"])},
                           params={"limit": 5})
    state = tmp_path / "state"
    r = children.run("run", "--deploy", dep, "--state-dir", state, "--json")
    assert r.returncode == 0, r.stderr
    _sql(state / "a.sqlite", "DROP TABLE fields")
    r = children.run("run", "--deploy", dep, "--state-dir", state, "--json")
    assert r.returncode == 2, (r.stdout, r.stderr)
    doc = json.loads(r.stdout)
    assert doc["failed"]["node"] == "a" and "no table 'fields'" in doc["failed"]["log"]
    r = children.run("run", "--deploy", dep, "--state-dir", state, "--json", "--fresh")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["final"]["follower"]["n"] == 5
    assert "--fresh" in r.stderr
    assert any(p.name.startswith("a.sqlite.old-") for p in state.iterdir())
