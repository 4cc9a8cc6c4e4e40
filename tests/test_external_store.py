"""External stores: a field kept in a real database (`external_store`, `assay run --store-db`).

Every engine sees the model (a `Map` in the state, kept across a crash); `assay run` keeps
it in SQLite too, and the boundary contract — the database holds exactly the model's maps —
is checked at every start of a run and by `assay replay --against-store`."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from assay import api
from assay.cli import main as cli
from assay.errors import SpecError, StateError
from assay.kernel import Kernel
from assay.kernel.kernel import LocalChoice
from assay.model.load import build
from assay.model.mapping import Map
from assay.runtime.extstore import DbApiAdapter, ExternalStores, SQLiteAdapter
from assay.runtime.local import run_local

ROOT = Path(__file__).resolve().parent.parent
BANK = ROOT / "specs" / "bank_store.py"
BANK_BUG = ROOT / "specs" / "bank_store_bug_self_transfer.py"
LEDGER = ROOT / "tests" / "fixtures" / "extstore" / "ledger.py"


def kernel_of(spec: Path, **params: str) -> Kernel:
    system, _, _ = build(spec, None, params)
    return Kernel(system)


def rows(db: Path, table: str) -> dict:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {json.loads(k): json.loads(v)
                for k, v in conn.execute(f"SELECT k, v FROM {table}")}


def assay(*args: object) -> subprocess.CompletedProcess:
    """`assay ARGS` in this process (as `click` runs it): exit code, stdout, stderr."""
    r = CliRunner().invoke(cli, [str(a) for a in args], env={"COLUMNS": "300"})
    if r.exit_code not in (0, 1, 2):
        raise AssertionError(r.output) from r.exception
    return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)


# --- the model: check, simulate, verify ----------------------------------------------------


def test_check_finds_the_self_transfer_bug_and_passes_the_correct_bank():
    ok = api.check(BANK)
    assert ok.verdict == "ok" and ok.states == 531
    bad = api.check(BANK_BUG)
    assert bad.verdict == "violation" and bad.violation is not None
    assert "invariant of Bank" in bad.violation.message
    assert "src='alice', dst='alice'" in bad.violation.message


def test_check_with_crashes_keeps_the_store_and_passes():
    # the store is external: a crash of the bank keeps the balances (were they reset, a
    # transfer before the crash and one after could still conserve the total, so look at
    # the restart itself too)
    assert api.check(BANK, faults="crash=1").verdict == "ok"
    k = kernel_of(BANK)
    info = k.instances[k.index["bank"]].info
    assert info.persistent[info.field_index["accounts"]]
    moved = Map({"alice": 1, "bob": 5})
    step = k.local_restore("bank", {"accounts": [["alice", 1], ["bob", 5]]})
    assert not isinstance(step, LocalChoice)
    assert k.local_view("bank", step.local)["accounts"] == moved


def test_simulate_finds_the_bug_and_not_in_the_correct_bank():
    bad = api.simulate(BANK_BUG, runs=100, seed=1)
    assert not bad.ok and bad.failures
    v = bad.failures[0].violation
    assert v is not None and "invariant of Bank" in str(v)
    assert api.simulate(BANK, runs=100, seed=1).ok


def test_verify_proves_the_bank_and_refutes_its_bug_twin_on_the_store():
    # the store is a Map, translated to Z3 (an array); the invariants (sum of the values,
    # all values non-negative) are proved of every transfer, for any accounts and message
    res = api.verify(BANK)
    bank = [o for o in res.obligations if o.component == "Bank"]
    assert bank and all(o.verdict == "proved" for o in bank), \
        [(o.title, o.verdict, o.reason) for o in bank]
    bad = api.verify(BANK_BUG)
    refuted = [o for o in bad.obligations if o.verdict == "refuted"]
    assert [o.target for o in refuted] == ["transfer"], [(o.title, o.reason) for o in refuted]
    assert "sum(self.accounts.values()) == TOTAL" in refuted[0].reason
    assert not bad.ok


def test_a_consistency_the_model_does_not_give_is_a_spec_error(tmp_path):
    spec = tmp_path / "eventual.py"
    spec.write_text(BANK.read_text().replace(
        'external_store(Map({"alice": 3, "bob": 3}))',
        'external_store(Map({"alice": 3, "bob": 3}), consistency="eventual")'))
    with pytest.raises(SpecError) as e:
        build(spec, None, {})
    assert "linearizable" in str(e.value) and e.value.location is not None
    assert e.value.location.line == 28


def test_a_store_that_is_not_a_map_is_a_spec_error(tmp_path):
    spec = tmp_path / "scalar.py"
    spec.write_text("from assay import Component, System, external_store\n"
                    "class C(Component):\n"
                    "    n: int = external_store(0)\n"
                    "def system():\n"
                    "    s = System('x')\n"
                    "    s.add('c', C)\n"
                    "    return s\n")
    r = assay("check", spec)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "external store but its type is int, not a Map" in r.stderr
    assert "scalar.py:3" in r.stderr


# --- assay run: SQLite, the boundary contract ----------------------------------------------


def test_run_keeps_the_store_in_sqlite_and_replay_agrees_then_catches_a_write_behind(tmp_path):
    db, trace = tmp_path / "bank.sqlite", tmp_path / "run.json"
    r = assay("run", BANK, "--store-db", db, "--trace-out", trace, "--json")
    assert r.returncode == 0, r.stderr
    final = json.loads(r.stdout)["final"]["bank"]["accounts"]
    assert rows(db, "store_bank_accounts") == dict(final)
    assert sum(v for _, v in final) == 6
    r = assay("replay", trace, "--against-store", db)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"✓ the store database {db} holds the run's external stores" in r.stdout
    # someone writes behind the component's back: the boundary contract fails
    with sqlite3.connect(db) as conn:
        conn.execute("""UPDATE store_bank_accounts SET v = '100' WHERE k = '"bob"'""")
        conn.execute("""INSERT INTO store_bank_accounts VALUES ('"carol"', '1')""")
    r = assay("replay", trace, "--against-store", db, "--json")
    assert r.returncode == 1
    store = json.loads(r.stdout)["store"]
    assert not store["agrees"] and len(store["differences"]) == 2
    assert any("'bob' is 100 in the database" in d for d in store["differences"])
    assert any("'carol' = 1 is in the database, not in the model's" in d
               for d in store["differences"])
    # and a run does not start on it
    r = assay("run", BANK, "--store-db", db)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "the store database disagrees with the state the run starts from" in r.stderr


def test_replay_against_a_store_missing_or_for_a_system_without_one(tmp_path):
    trace = tmp_path / "run.json"
    assert assay("run", BANK, "--store-db", tmp_path / "b.sqlite",
                 "--trace-out", trace).returncode == 0
    r = CliRunner().invoke(cli, ["replay", str(trace), "--against-store",
                                 str(tmp_path / "none.sqlite")])
    assert r.exit_code == 2 and "no such store database" in r.output
    assert not (tmp_path / "none.sqlite").exists()
    r = CliRunner().invoke(cli, ["run", str(ROOT / "specs" / "register.py"), "--store-db",
                                 str(tmp_path / "r.sqlite")])
    assert r.exit_code == 2 and "the system has no external store" in r.output


def test_a_run_resumed_from_its_state_dir_keeps_the_store_and_agrees(tmp_path):
    db, state = tmp_path / "bank.sqlite", tmp_path / "state"
    k = kernel_of(BANK)
    first, _ = run_local(k, duration=20, seed=3, state_dir=state,
                         stores=SQLiteAdapter(db))
    after_first = first.final["bank"]["accounts"]
    assert rows(db, "store_bank_accounts") == dict(after_first.items())
    # the second life: the bank restarts with its store, the tellers ask again
    trace = tmp_path / "run.json"
    r = assay("run", BANK, "--state-dir", state, "--store-db", db, "--trace-out", trace,
              "--seed", "4", "--json")
    assert r.returncode == 0, r.stderr
    final = json.loads(r.stdout)["final"]["bank"]["accounts"]
    assert rows(db, "store_bank_accounts") == dict(final)
    r = assay("replay", trace, "--against-store", db)
    assert r.returncode == 0 and "holds the run's external stores" in r.stdout, r.stdout


def test_a_step_the_database_holds_beyond_the_durable_state_is_undone(tmp_path):
    # a kill between the store's commit and the state directory's: the database is one step
    # ahead, with the undo record of that step; the next start undoes it (the record's clock
    # is not what decides: a run without --trace-out numbers its steps afresh in each life)
    db, state = tmp_path / "l.sqlite", tmp_path / "state"
    k = kernel_of(LEDGER, limit="4")
    report, _ = run_local(k, duration=20, state_dir=state, stores=SQLiteAdapter(db))
    assert dict(report.final["ledger"]["totals"].items()) == {"a": 2, "b": 1, "c": 1}
    ahead = SQLiteAdapter(db)
    ahead.apply([("store_ledger_totals", '"a"', "3")],
                ("ledger", 1, json.dumps([["store_ledger_totals", '"a"', "2"]])))
    ahead.close()
    again, _ = run_local(kernel_of(LEDGER, limit="4"), duration=20, state_dir=state,
                         stores=SQLiteAdapter(db))
    assert rows(db, "store_ledger_totals") == {"a": 2, "b": 1, "c": 1}
    assert dict(again.final["ledger"]["totals"].items()) == {"a": 2, "b": 1, "c": 1}
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM assay_undo").fetchone()[0] == 0
    # an undo record that does not bring the table back to the state: a write behind
    # assay's back, refused, and nothing is written
    ahead = SQLiteAdapter(db)
    ahead.apply([("store_ledger_totals", '"a"', "3")],
                ("ledger", 99, json.dumps([["store_ledger_totals", '"a"', "1"]])))
    ahead.close()
    with pytest.raises(StateError, match="key 'a' is 3 in the database, 2 in the model"):
        run_local(kernel_of(LEDGER, limit="4"), state_dir=state, stores=SQLiteAdapter(db))
    assert rows(db, "store_ledger_totals") == {"a": 3, "b": 1, "c": 1}


def test_a_step_ahead_whose_key_was_changed_since_is_refused_not_undone(tmp_path):
    # the database one step ahead (its record: 'a' was 2, the step wrote 3), and then 'a'
    # written behind assay's back (100): undoing the step would erase that write unseen
    db, state = tmp_path / "l.sqlite", tmp_path / "state"
    run_local(kernel_of(LEDGER, limit="4"), duration=20, state_dir=state,
              stores=SQLiteAdapter(db))
    ahead = SQLiteAdapter(db)
    ahead.apply([("store_ledger_totals", '"a"', "100")],
                ("ledger", 1, json.dumps([["store_ledger_totals", '"a"', "2", "3"]])))
    ahead.close()
    with pytest.raises(StateError, match="key 'a' is 100 in the database, 2 in the model"):
        run_local(kernel_of(LEDGER, limit="4"), state_dir=state, stores=SQLiteAdapter(db))
    assert rows(db, "store_ledger_totals") == {"a": 100, "b": 1, "c": 1}
    # the same record with the database holding what the step wrote: undone
    ahead = SQLiteAdapter(db)
    ahead.apply([("store_ledger_totals", '"a"', "3")], None)
    ahead.close()
    run_local(kernel_of(LEDGER, limit="4"), duration=5, state_dir=state,
              stores=SQLiteAdapter(db))
    assert rows(db, "store_ledger_totals")["a"] == 2


def test_kills_of_a_run_lose_no_write_and_count_none_twice(tmp_path):
    db, state, trace = tmp_path / "l.sqlite", tmp_path / "state", tmp_path / "run.json"
    argv = [sys.executable, "-m", "assay.cli", "run", str(LEDGER), "-p", "limit=200",
            "--state-dir", str(state), "--store-db", str(db), "--trace-out", str(trace)]
    log = state / "local.jsonl"
    for delay in (0.05, 0.02, 0.11):
        with open(tmp_path / "life.err", "w") as err:
            p = subprocess.Popen(argv + ["--for", "60"], stdout=subprocess.DEVNULL,
                                 stderr=err, start_new_session=True)
        lines = log.read_text().count("\n") if log.exists() else 0
        deadline = time.monotonic() + 30
        while (log.read_text().count("\n") if log.exists() else 0) <= lines + 6:
            assert p.poll() is None, (tmp_path / "life.err").read_text()
            assert time.monotonic() < deadline, "no steps logged"
            time.sleep(0.01)
        time.sleep(delay)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sum(rows(db, "store_ledger_totals").values()) == 200
    r = assay("replay", trace, "--against-store", db)
    assert r.returncode == 0 and "holds the run's external stores" in r.stdout, r.stdout


# --- the adapter interface -------------------------------------------------------------------


def test_any_db_api_connection_through_the_adapter(tmp_path):
    # the DB-API adapter over a connection the caller opened (here sqlite3's, in memory)
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    adapter = DbApiAdapter(conn, paramstyle="qmark", where="memory")
    report, _ = run_local(kernel_of(BANK), duration=20, seed=5, stores=adapter)
    final = report.final["bank"]["accounts"]
    got = {json.loads(k): json.loads(v)
           for k, v in conn.execute("SELECT k, v FROM store_bank_accounts")}
    assert got == dict(final.items()) and sum(got.values()) == 6
    stores = ExternalStores(kernel_of(BANK), adapter, ["bank"])
    assert stores.compare({"bank": {"accounts": final}}) == []
    assert stores.compare({"bank": {"accounts": final.set("alice", 99)}}) != []


def test_the_adapter_refuses_a_paramstyle_it_cannot_write():
    from assay.errors import UsageError

    with pytest.raises(UsageError, match="paramstyle 'named'"):
        DbApiAdapter(sqlite3.connect(":memory:"), paramstyle="named")


def test_a_step_the_monitor_rejects_never_reaches_the_database(tmp_path):
    # the bug twin's self-transfer breaks the invariant: under `--monitor enforce` that step
    # is rejected, so the database keeps the conserved total
    db = tmp_path / "bank.sqlite"
    report, _ = run_local(kernel_of(BANK_BUG), duration=20, seed=2, stores=SQLiteAdapter(db))
    assert report.violations and all(v.kind == "invariant" for _, v in report.violations)
    assert sum(rows(db, "store_bank_accounts").values()) == 6
    assert dict(report.final["bank"]["accounts"].items()) == rows(db, "store_bank_accounts")


def test_a_write_behind_assays_back_to_a_key_a_step_writes_stops_the_run(tmp_path):
    # another program writes to the ledger's table while the run is under way: the step that
    # would overwrite the key finds it changed, writes nothing and the run stops (no lost
    # update); the next start finds the difference too
    db = tmp_path / "l.sqlite"

    class Meddled(SQLiteAdapter):
        calls = 0

        def apply(self, writes, undo, drop_undo=(), expect=None):
            super().apply(writes, undo, drop_undo, expect)
            Meddled.calls += 1
            if Meddled.calls == 2:           # after the second step's write: someone else
                with sqlite3.connect(db) as other:
                    other.execute("""UPDATE store_ledger_totals SET v = '41' WHERE k = '"a"'""")
                other.close()

    with pytest.raises(StateError, match="changed behind assay's back") as e:
        run_local(kernel_of(LEDGER, limit="6"), duration=20, stores=Meddled(db))
    assert 'key "a": assay wrote v=1' in str(e.value)
    assert rows(db, "store_ledger_totals") == {"a": 41, "b": 1, "c": 1}   # the 4th: none
    with pytest.raises(StateError, match="disagrees with the state the run starts from"):
        run_local(kernel_of(LEDGER, limit="6"), stores=SQLiteAdapter(db))


def test_the_database_is_the_same_under_any_hash_seed(tmp_path):
    got = []
    for seed in ("1", "2"):
        db = tmp_path / f"bank{seed}.sqlite"
        r = subprocess.run([sys.executable, "-m", "assay.cli", "run", str(BANK), "--store-db",
                            str(db), "--seed", "7"], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        with sqlite3.connect(db) as conn:
            got.append((sorted(conn.execute("SELECT k, v FROM store_bank_accounts")),
                        sorted(conn.execute("SELECT * FROM assay_undo"))))
        conn.close()
    assert got[0] == got[1]


def test_a_database_that_is_not_a_store_is_refused_with_a_message(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database")
    odd = tmp_path / "odd.sqlite"
    with contextlib.closing(sqlite3.connect(odd)) as conn:
        conn.execute("CREATE TABLE store_bank_accounts (x INTEGER)")
        conn.commit()
    for db, says in ((junk, "file is not a database"), (odd, "no such column: k"),
                     (tmp_path / "no" / "dir.sqlite", "unable to open database file")):
        r = assay("run", BANK, "--store-db", db)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert says in r.stderr and db.name in r.stderr


def test_a_start_hook_and_an_override_write_the_store(tmp_path):
    # `@on_start` writes to the store (a step the model counts in the initial state), and
    # `s.add(..., counts=...)` gives one instance other initial contents: both reach the
    # database, and a second life on the same state directory agrees with it
    spec = tmp_path / "started.py"
    spec.write_text(
        "from assay import Component, Map, System, action, external_store, on_start\n"
        "class Counter(Component):\n"
        "    counts: Map[str, int] = external_store(Map())\n"
        "    @on_start\n"
        "    def boot(self):\n"
        "        self.counts = self.counts.set('boots', 1)\n"
        "    @action(when=lambda self: self.counts.get('n', 0) < 2)\n"
        "    def bump(self):\n"
        "        self.counts = self.counts.set('n', self.counts.get('n', 0) + 1)\n"
        "def system():\n"
        "    s = System('started')\n"
        "    s.add('a', Counter)\n"
        "    s.add('b', Counter, counts=Map({'n': 1, 'x': 7}))\n"
        "    s.terminal(lambda g: True)\n"
        "    return s\n")
    db, state = tmp_path / "c.sqlite", tmp_path / "state"
    for life in (1, 2):
        r = assay("run", spec, "--store-db", db, "--state-dir", state)
        assert r.returncode == 0, (life, r.stdout, r.stderr)
        assert rows(db, "store_a_counts") == {"boots": 1, "n": 2}
        assert rows(db, "store_b_counts") == {"boots": 1, "n": 2, "x": 7}
