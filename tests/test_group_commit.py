"""Group commit in the TCP runtime: the steps a node has ready together are saved in one SQLite
transaction (`Store.save_steps`), before any of their messages leave the node, and the outbox
rows its peers acknowledged go with them.

A real node (`TcpNode`, not serving) with a real store on disk; frames arrive through the
node's own frame handler, as its server hands them over.  The crash side (an acknowledged step
survives a kill -9) is tests/test_runtime_restart.py's, which runs these groups too.
"""
from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from runtime_support import ROOT, free_ports, write_deployment

from assay.runtime.deploy import load_deployment
from assay.runtime.store import Store, StoreError
from assay.runtime.tcp import TcpNode
from assay.runtime.wire import decode_frame

PING_PONG = ROOT / "tests" / "benchmarks" / "ping_pong_spec.py"


def _ping(n: int, seq: int) -> dict[str, Any]:
    return {"t": "msg", "src": "pinger", "src_port": "peer", "dst": "ponger",
            "dst_port": "peer", "clock": 1, "message": {"type": "Ping", "fields": {"n": n}},
            "seq": seq, "epoch": "e"}


def _ponger(tmp_path: Path) -> TcpNode:
    """Node b of the ping-pong (the ponger), with a store, three Pings from node a queued."""
    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", PING_PONG,
                           {"a": (pa, ["pinger"]), "b": (pb, ["ponger"])})
    node = TcpNode(load_deployment(dep), "b", state_dir=str(tmp_path / "state"),
                   trace_out=str(tmp_path / "b.jsonl"))
    for seq in (1, 2, 3):
        assert node._on_frame("a", decode_frame(_ping(10 * seq, seq))) is None
    return node


def _close(node: TcpNode) -> None:
    if node.logfile is not None:
        node.logfile.close()
    if node.store is not None:
        node.store.close()


def test_steps_ready_together_are_saved_in_one_transaction_before_any_message_leaves(
        tmp_path):
    node = _ponger(tmp_path)
    assert node.store is not None
    node.FAIR = 60.0            # a group ends after FAIR s of stepping: not on a slow machine
    link = node.links["a"]
    commits: list[tuple[int, int]] = []           # (steps saved, frames sent by then)
    save = node.store.save_steps

    def spy(records: list, acked: Any = ()) -> None:
        commits.append((len(records), len(link.unacked)))
        save(records, acked)

    node.store.save_steps = spy                   # type: ignore[method-assign]
    try:
        group = asyncio.run(node._run_group())
        assert [st.out.event["kind"] for st, _ in group] == ["deliver"] * 3
        assert commits == [(3, 0)], "one commit for the three steps, before any Pong left"
        assert sorted(f["message"]["fields"]["n"] for f in link.unacked.values()) == [10, 20,
                                                                                      30]
        # durable: the three Pongs in the outbox, the three Pings handled, the clock
        assert sorted(f["message"]["fields"]["n"] for *_, f in node.store.outbox()) == [
            10, 20, 30]
        assert node.store.handled()[("a", "e")].floor == 3
        assert node.store.clock() == node.clock == 4           # (a Ping came at clock 1)
        assert node.handled[("a", "e")].floor == 3          # (so they are acknowledged)
    finally:
        _close(node)


def test_a_group_whose_commit_fails_sends_nothing_and_acknowledges_nothing(tmp_path):
    node = _ponger(tmp_path)
    assert node.store is not None
    node.store.close()                            # the commit raises
    try:
        with pytest.raises(StoreError):
            asyncio.run(node._run_group())
        assert node.links["a"].unacked == {}      # no Pong left
        assert ("a", "e") not in node.handled     # no Ping is acknowledged: a resends them
    finally:
        _close(node)


def test_save_steps_is_all_or_nothing_and_deletes_the_acknowledged_rows_with_the_steps(
        tmp_path):
    frame = {"t": "msg", "seq": 1, "epoch": "mine", "clock": 1}
    with Store(tmp_path / "a.sqlite") as s:
        s.save_step("x", {"n": 1}, [("b", "mine", 1, frame), ("b", "mine", 2,
                                                              {**frame, "seq": 2})], clock=1)
        # the second step fails inside the transaction: the first is not saved either, and
        # the acknowledged row is not deleted
        with pytest.raises(sqlite3.IntegrityError):
            s.save_steps([("x", {"n": 2}, [], ("c", "e1", 1), 2, None),
                          ("x", {"n": 3}, [], ("c", "e1", None), 3, None)],   # type: ignore
                         [("b", "mine", 1)])
        assert s.load("x") == {"n": 1} and s.clock() == 1 and s.handled() == {}
        assert [seq for _, _, seq, _ in s.outbox()] == [1, 2]
        s.save_steps([("x", {"n": 2}, [], ("c", "e1", 1), 5, None),
                      ("y", {"m": 1}, [], ("c", "e1", 2), 4, None)], [("b", "mine", 1)])
        assert (s.load("x"), s.load("y"), s.clock()) == ({"n": 2}, {"m": 1}, 5)
        assert s.handled()[("c", "e1")].floor == 2
        assert [seq for _, _, seq, _ in s.outbox()] == [2]
        s.acked_many([("b", "mine", 2)])
        assert s.outbox() == []
