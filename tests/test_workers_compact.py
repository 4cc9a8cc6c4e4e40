"""The parallel search on packed states (`parallel_compact.py`): workers running the compact
BFS's fast path, exchanging packed ints, count what one process counts and find a
counterexample as short, with 2 and 3 workers, in this process (`InProcess`) and in forked
worker processes (`check(workers=N)`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assay.checker import check, compact
from assay.checker.compact import Packing
from assay.checker.parallel import InProcess, Options, check_parallel, shard_by
from assay.checker.parallel_compact import CompactShard, supported
from assay.checker.search import Search
from assay.kernel import Faults, Kernel
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]


def kernel(spec: str, faults: str | None = None, **params: str) -> Kernel:
    system, _, _ = build(str(REPO / spec), None, params)
    return Kernel(system, Faults.parse(faults) if faults else None)


def in_process(spec: str, n: int, search: Search | None = None, by: Any = "sample",
               **params: str) -> tuple[Any, InProcess]:
    """The parallel search on packed states by `n` shards in this process."""
    k = kernel(spec, **params)
    assert supported(k)
    opts = Options(shard_by=shard_by(k, n) if by == "sample" else by, compact=True)
    made: list[InProcess] = []

    def make(o: Options) -> InProcess:
        made.append(InProcess(k, n, opts))
        return made[0]

    out, _ = check_parallel(k, search or Search(), n, make=make)
    assert all(isinstance(s, CompactShard) for s in made[0].shards)
    made[0].driver = k              # type: ignore[attr-defined]  (the events' kernel)
    return out, made[0]


def counts(r: Any) -> tuple[Any, ...]:
    return (r.reason, r.states, r.transitions, r.depth, r.terminal, r.deadlocked)


SPECS = [
    ("specs/tla_twophase.py", {"rm_count": "4"}),              # fields grow, many groups
    ("specs/bank_transfer.py", {}),
    ("specs/two_phase_commit.py", {}),                          # terminal states
    ("specs/tla_lamport_mutex.py", {"max_clock": "3"}),         # whole-state: one instance
    ("specs/elastic_pool.py", {}),
]


@pytest.mark.parametrize("spec, params", SPECS)
@pytest.mark.parametrize("n", [2, 3])
def test_packed_shards_count_what_one_process_counts(spec: str, params: dict[str, str],
                                                     n: int) -> None:
    one = check(kernel(spec, **params))
    out, workers = in_process(spec, n, **params)
    assert one.reason == "exhausted" and one.states > 100
    assert counts(out) == counts(one)
    # the states were spread, and some crossed between shards as packed ints
    owned = [len(s.xs) for s in workers.shards]
    assert sum(owned) == one.states and min(owned) > 0
    assert sum(s.received for s in workers.shards) > 0


@pytest.mark.parametrize("by", [None, (0,), (1, 2)])
def test_any_sharding_gives_the_same_counts(by: Any) -> None:
    one = check(kernel("specs/tla_twophase.py", rm_count="4"))
    out, _ = in_process("specs/tla_twophase.py", 2, by=by, rm_count="4")
    assert counts(out) == counts(one)


@pytest.mark.parametrize("n, by", [(2, "sample"), (2, None), (3, (0,))])
def test_shards_stop_keeping_entries_that_never_hit_as_one_process_does(
        monkeypatch: pytest.MonkeyPatch, n: int, by: Any) -> None:
    # Raft's network is new in almost every state: one process regroups its instances into
    # one group and keeps no entries (`CompactBFS._judge`); the shards did neither (2 workers
    # spent 2.6x one process's CPU on Raft, 4 servers).  A small sample makes 3 servers enough.
    monkeypatch.setattr(compact, "CACHE_SAMPLE", 64)
    one = check(kernel("specs/raft_election.py", servers="3"))
    out, workers = in_process("specs/raft_election.py", n, by=by, servers="3")
    assert counts(out) == counts(one)
    for s in workers.shards:
        assert s.cb._whole and s._lazy         # owners found child by child, for the new only
        assert not any(s._ecaches)
    assert sum(s.received for s in workers.shards) > 0


BUGS = [
    ("specs/two_phase_commit_bug_majority.py", {}),             # a protocol violation
    ("specs/tla_lamport_mutex_bug_ties.py", {}),                # a property, whole-state
    ("specs/bank_transfer_bug_overdraft.py", {}),               # a property
    ("specs/two_phase_commit_bug_protocol.py", {}),
    ("specs/elastic_pool_bug_retire_busy.py", {}),
    ("tests/fixtures/good/ping_pong.py", {}),                   # a deadlock
]


@pytest.mark.parametrize("spec, params", BUGS)
@pytest.mark.parametrize("n", [2, 3])
def test_packed_shards_find_a_counterexample_as_short_as_one_process(
        spec: str, params: dict[str, str], n: int) -> None:
    one = check(kernel(spec, **params))
    assert one.verdict == "violation"
    out, _ = in_process(spec, n, **params)
    assert out.reason == "violation" and len(out.path) == len(one.steps)
    assert out.violation is not None and one.violation is not None
    assert out.violation.kind == one.violation.kind
    # (`parallel._counterexample` replayed the path in the driver's kernel, and found the
    # violation again at its end)
    assert out.start is not None


@pytest.mark.parametrize("spec, params", [
    ("specs/tla_twophase.py", {"rm_count": "5"}),
    ("specs/tla_lamport_mutex.py", {"max_clock": "3"}),
])
def test_worker_processes_count_what_one_process_counts(spec: str,
                                                        params: dict[str, str]) -> None:
    one = check(kernel(spec, **params))
    for n in (2, 3):
        r = check(kernel(spec, **params), workers=n)
        assert r.workers == n and not r.warnings
        assert counts(r) == counts(one)


@pytest.mark.parametrize("spec", ["specs/two_phase_commit_bug_majority.py",
                                  "specs/tla_lamport_mutex_bug_ties.py"])
def test_worker_processes_find_a_counterexample_that_replays(spec: str) -> None:
    one = check(kernel(spec))
    for n in (2, 3):
        r = check(kernel(spec), workers=n)
        assert r.verdict == "violation" and r.workers == n
        assert r.violation is not None and one.violation is not None
        assert (r.violation.kind, r.violation.name) == (one.violation.kind,
                                                         one.violation.name)
        assert len(r.steps) == len(one.steps)
        assert r.trace is not None and len(r.trace.events) == len(r.steps)


def test_states_wider_than_64_bits_cross_as_fixed_width_bytes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Fields of 8 bits from the start: TwoPhase at 4 RMs (6 fields) packs into 48 bits, at
    8 RMs into more than 64: the shards keep lists and send fixed-width bytes."""
    monkeypatch.setattr(Packing, "START_WIDTH", 8)
    one = check(kernel("specs/tla_twophase.py", rm_count="8"), max_depth=5)
    out, workers = in_process("specs/tla_twophase.py", 2, Search(max_depth=5),
                              rm_count="8")
    assert all(s.packing.wide and type(s.xs) is list for s in workers.shards)
    assert counts(out) == counts(one)


@pytest.mark.parametrize("spec, params, renumbered", [
    ("specs/kv_composite.py", {}, True),                        # fifo: a queue per link
    ("specs/tla_twophase.py", {"rm_count": "3"}, False),        # duplicating: a set
    ("specs/raft_election.py", {"servers": "3"}, True),         # unordered: a sorted bag
])
def test_a_network_crosses_as_the_senders_envelope_ids(spec: str, params: dict[str, str],
                                                       renumbered: bool) -> None:
    """A network goes to another shard as the sender's envelope ids, read through the
    envelopes it published (`Incoming.envs`): each shard interns envelopes in its own
    order, so the receiver renumbers them and puts the network back in its canonical form
    (per link in order, as a set, or sorted).  Counts as one process; the received states
    that the receiver had already are counted apart (`known`)."""
    one = check(kernel(spec, **params))
    out, workers = in_process(spec, 2, **params)
    assert counts(out) == counts(one)
    for s in workers.shards:
        other, sender = s._in[1 - s.index], workers.shards[1 - s.index].kernel
        # each envelope the other shard published maps to the same envelope here
        assert other.envs and len(set(other.envs)) == len(other.envs)
        assert [s.kernel.envs[e] for e in other.envs] == sender.envs[:len(other.envs)]
        assert 0 <= s.known <= s.received
    maps = [s._in[1 - s.index].envs for s in workers.shards]
    assert any(m != list(range(len(m))) for m in maps) == renumbered
    assert sum(s.received for s in workers.shards) > sum(s.known for s in workers.shards)


def test_the_bounds_are_those_of_the_parallel_search() -> None:
    one = check(kernel("specs/tla_twophase.py", rm_count="3"), max_depth=6)
    out, _ = in_process("specs/tla_twophase.py", 2, Search(max_depth=6), rm_count="3")
    assert counts(out) == counts(one) and out.reason == "max-depth"
    out, _ = in_process("specs/tla_twophase.py", 2, Search(max_states=100), rm_count="3")
    assert out.reason == "max-states" and 100 < out.states < 288


def test_what_packed_shards_do_not_search_goes_to_full_state_shards() -> None:
    assert not supported(kernel("specs/alternating_bit.py", "drop=1"))   # faults, timers
    assert not supported(kernel("specs/abp_lossy.py"))                    # lossy links
    r = check(kernel("specs/alternating_bit.py", "drop=1,dup=1"), workers=2)
    one = check(kernel("specs/alternating_bit.py", "drop=1,dup=1"))
    assert counts(r) == counts(one)


def test_the_violation_is_the_same_for_any_number_of_packed_shards() -> None:
    """Two properties break at the same depth (2): each number of shards reports the same
    one, a shortest (the least of the level by length, fingerprint, kind, event)."""
    found = set()
    for n in (1, 2, 3, 5):
        out, workers = in_process("tests/fixtures/keep_going/two_bugs.py", n, by=None)
        assert out.reason == "violation" and len(out.path) == 2
        k = workers.driver
        state = out.start
        for ev in out.path:
            state = k.apply(state, ev)[0]
        found.add((out.violation.name, k.fingerprint(state)))
    assert len(found) == 1


def test_the_same_result_under_any_hash_seed() -> None:
    """Forked workers key owners by `hash()` (a per-process seed): the owners change with
    PYTHONHASHSEED, the counts and the counterexample do not."""
    import json
    import os
    import subprocess
    import sys

    docs = []
    for seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-m", "assay.cli", "check",
             "specs/two_phase_commit_bug_majority.py", "--json", "-q", "--workers", "2"],
            cwd=REPO, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed})
        assert proc.returncode == 1, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["workers"] == 2
        docs.append((doc["states"], doc["transitions"], doc["depth"], doc["violation"],
                     doc["trace"]["events"]))
    assert docs[0] == docs[1]
