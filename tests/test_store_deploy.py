"""External stores under `assay run --deploy --store-db DIR`: each node keeps the stores of
the instances placed on it in its own SQLite file, DIR/<node>.db, with the per-step
transaction, undo record and boundary checks of a run in one process (extstore.py), over real
loopback TCP, across kill -9 of the node that hosts the store."""
from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
from runtime_support import (
    START,
    ctl,
    fields,
    free_ports,
    log_events,
    merged_trace,
    poll,
    write_deployment,
    write_locked,
)

INITIAL = {"alice": 3, "bob": 3}


def rows(db: Path, table: str = "store_bank_accounts") -> dict:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
        return {json.loads(k): json.loads(v) for k, v in c.execute(f"SELECT k, v FROM {table}")}


def flat(text: str) -> str:
    """`text` with its lines (wrapped at the terminal's width) joined."""
    return " ".join(text.split())


def bank_deployment(tmp_path: Path, tellers: int = 2, spec: str = "bank_store.py"
                    ) -> tuple[Path, int, int]:
    """The bank on node a, its tellers on node b."""
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", spec,
                           {"a": (pa, ["bank"]), "b": (pb, [f"teller{i}" for i in range(tellers)])},
                           params={"tellers": tellers})
    return dep, pa, pb


def test_run_deploy_keeps_each_nodes_stores_in_its_file_and_replay_checks_them(children,
                                                                               tmp_path):
    dep, _, _ = bank_deployment(tmp_path)
    stores, trace = tmp_path / "stores", tmp_path / "run.json"
    r = children.run("run", "--deploy", dep, "--store-db", stores, "--trace-out", trace,
                     "--json", timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    final = dict(json.loads(r.stdout)["final"]["bank"]["accounts"])
    # the bank's node has its database; the tellers' node hosts no store, so has none
    assert sorted(p.name for p in stores.iterdir() if p.suffix == ".db") == ["a.db"]
    assert rows(stores / "a.db") == final and sum(final.values()) == 6
    r = children.run("replay", trace, "--against-store", stores, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"✓ the store database {stores} holds the run's external stores" in flat(r.stdout)
    # one node's file alone is fine too
    r = children.run("replay", trace, "--against-store", stores / "a.db", timeout=60)
    assert r.returncode == 0, r.stdout[-2000:]
    # a write behind assay's back: the boundary contract fails, naming the node's file ...
    with contextlib.closing(sqlite3.connect(stores / "a.db")) as c, c:
        c.execute("""INSERT INTO store_bank_accounts VALUES ('"carol"', '1')""")
    r = children.run("replay", trace, "--against-store", stores, "--json", timeout=60)
    assert r.returncode == 1
    diffs = json.loads(r.stdout)["store"]["differences"]
    assert diffs == ["a.db: table store_bank_accounts: key 'carol' = 1 is in the database, "
                     "not in the model's bank.accounts"]
    # ... and a node does not start on it: the run fails with the node's words, exit 2
    r = children.run("run", "--deploy", dep, "--store-db", stores, "--state-dir",
                     tmp_path / "other-state", timeout=90)
    assert r.returncode == 2, (r.stdout[-2000:], r.stderr[-2000:])
    assert "node a could not be (re)started" in r.stderr
    assert "the store database disagrees with the state the run starts from" in flat(r.stderr)
    assert "Traceback" not in r.stderr
    # a directory with no node database, or none at all
    empty = tmp_path / "empty"
    empty.mkdir()
    r = children.run("replay", trace, "--against-store", empty, timeout=60)
    assert r.returncode == 2
    assert "no store database (<node>.db) in this directory" in flat(r.stderr)


def test_store_db_under_deploy_is_a_directory_for_a_system_with_stores(children, tmp_path):
    dep, _, _ = bank_deployment(tmp_path)
    f = tmp_path / "file.sqlite"
    f.write_text("")
    r = children.run("run", "--deploy", dep, "--store-db", f)
    assert r.returncode == 2 and "with --deploy this is a directory" in flat(r.stderr)
    assert "Traceback" not in r.stderr
    pa, pb = free_ports(2)
    reg = write_deployment(tmp_path / "reg.toml", "register.py",
                           {"a": (pa, ["server"]), "b": (pb, ["client"])})
    r = children.run("run", "--deploy", reg, "--store-db", tmp_path / "s")
    assert r.returncode == 2 and "the system has no external store" in flat(r.stderr)
    assert not (tmp_path / "s").exists()


def _idle(*ports: int) -> bool:
    sts = [ctl(p, {"t": "status"}) or {} for p in ports]
    return all(not st.get("busy") and not st.get("unacked") for st in sts)


def _finish(children, tmp_path: Path, dep: Path, pa: int, pb: int, tellers: int,
            logs: list[Path], stores: Path, crashes: bool = True) -> None:
    """Wait until every teller is done and both nodes are idle; then the database holds the
    bank's balances, conserved, and the merged trace replays against the store directory."""
    poll(lambda: all(fields(pb, f"teller{i}")["left"] == 0 for i in range(tellers))
         and _idle(pa, pb) and _idle(pa, pb), 60, "every transfer handled")
    accounts = dict(fields(pa, "bank")["accounts"])
    assert sum(accounts.values()) == 6 and min(accounts.values()) >= 0
    assert rows(stores / "a.db") == accounts
    for p in (pa, pb):
        assert ctl(p, {"t": "stop"}) == {"t": "stopping"}
    for p in children.procs:
        if p.poll() is None:
            p.wait(15)
    trace = merged_trace(dep, logs, tmp_path / "run.json")
    r = children.run("replay", trace, "--against-store", stores, "--json", timeout=90)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["violation"] is None, r.stdout[-2000:]
    assert doc["store"]["agrees"], doc["store"]
    # (a node killed before its first durable step starts its first life again: no crash)
    assert any(e.get("kind") == "crash" for e in doc["events"]) == crashes


def test_a_kill_between_the_stores_commit_and_the_nodes_is_undone_at_restart(children,
                                                                            tmp_path):
    # the state directory's disk is slow (its write lock held): the bank's first transfer is
    # in a.db (its own transaction, with the undo record) and not yet in the node's state
    # when the node is killed; the restarted node undoes it — no refusal — and the teller's
    # message, never acknowledged, is handled again
    tellers = 2
    dep, pa, pb = bank_deployment(tmp_path, tellers)
    state, stores = tmp_path / "state", tmp_path / "stores"
    state.mkdir()
    stores.mkdir()
    la, lb = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a_args = ("--state-dir", state, "--store-db", stores / "a.db", "--trace-out", la)
    children.node(dep, "b", pb, "--state-dir", state, "--trace-out", lb, log=tmp_path / "b.log")
    with write_locked(state / "a.sqlite", "bank_store"):
        a = children.node(dep, "a", pa, *a_args, log=tmp_path / "a.log")
        poll(lambda: (stores / "a.db").exists() and rows(stores / "a.db") != INITIAL, START,
             "a transfer in the store database", proc=a, log=tmp_path / "a.log")
        ahead = rows(stores / "a.db")
        children.kill(a)
    assert ahead != INITIAL and sum(ahead.values()) == 6
    children.node(dep, "a", pa, *a_args, log=tmp_path / "a.log")
    _finish(children, tmp_path, dep, pa, pb, tellers, [la, lb], stores, crashes=False)


@pytest.mark.parametrize("kills", [2])
def test_kill_9_of_the_stores_node_loses_no_transfer_and_refuses_nothing(children, tmp_path,
                                                                        kills):
    tellers = 12                        # 24 transfers: the bank's node is killed among them
    dep, pa, pb = bank_deployment(tmp_path, tellers)
    state, stores = tmp_path / "state", tmp_path / "stores"
    stores.mkdir()
    la, lb = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a_args = ("--state-dir", state, "--store-db", stores / "a.db", "--trace-out", la)
    children.node(dep, "b", pb, "--state-dir", state, "--trace-out", lb, log=tmp_path / "b.log")
    for _ in range(kills):
        a = children.node(dep, "a", pa, *a_args, log=tmp_path / "a.log")
        seen = len(log_events(la, growing=True))
        # killed in its second step (the first is durable then: a step's log line is written
        # after the commit of the step before), or once every transfer is handled
        poll(lambda n=seen: len(log_events(la, growing=True)) > n + 1 or _idle(pa, pb), START,
             "a bank step", proc=a, log=tmp_path / "a.log")
        children.kill(a)
        assert sum(rows(stores / "a.db").values()) == 6
    children.node(dep, "a", pa, *a_args, log=tmp_path / "a.log")
    _finish(children, tmp_path, dep, pa, pb, tellers, [la, lb], stores)
    assert "disagrees" not in (tmp_path / "a.log").read_text()


def test_a_write_behind_assays_back_stops_the_node_before_the_step(children, tmp_path):
    # the bank's node attached its database (the table made from the initial balances); then
    # someone changes alice's balance: the bank's first transfer that writes alice finds
    # what it did not write there, is not taken, and the node stops, exit 2, saying why
    dep, pa, pb = bank_deployment(tmp_path, 1)
    state, stores = tmp_path / "state", tmp_path / "stores"
    stores.mkdir()
    a = children.node(dep, "a", pa, "--state-dir", state, "--store-db", stores / "a.db",
                      log=tmp_path / "a.log")
    assert rows(stores / "a.db") == INITIAL
    with contextlib.closing(sqlite3.connect(stores / "a.db", timeout=10)) as c, c:
        c.execute("""UPDATE store_bank_accounts SET v = '1' WHERE k = '"alice"'""")
        c.execute("""UPDATE store_bank_accounts SET v = '1' WHERE k = '"bob"'""")
    children.node(dep, "b", pb, "--state-dir", state, log=tmp_path / "b.log")
    assert a.wait(30) == 2
    words = flat((tmp_path / "a.log").read_text())
    assert "the store database changed behind assay's back, at a step of bank" in words
    assert "Traceback" not in words
    assert rows(stores / "a.db") == {"alice": 1, "bob": 1}        # nothing of it written
