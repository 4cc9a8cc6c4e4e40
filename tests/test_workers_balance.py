"""The owner key of the packed workers with links (`CompactShard.choose_links`): Raft's
states mostly differ by their messages in flight only, so owners by servers put most of them
on one worker; the messages on a few links spread them.  Counts stay those of one process,
in this process (`InProcess`, with and without entries kept).  (`check` does not use
links yet: on Raft they spread the states but cost more than they save, RESULTS.md.)"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from assay.checker import check, compact
from assay.checker.parallel import InProcess, Options, parallel_bfs, shard_by
from assay.checker.parallel_compact import CompactShard
from assay.checker.search import Search
from assay.kernel import Kernel
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]
RAFT = str(REPO / "specs/raft_election.py")


def kernel(**params: str) -> Kernel:
    system, _, _ = build(RAFT, None, params)
    return Kernel(system)


def levels(k: Kernel) -> list[list[Any]]:
    """Every state of `k`'s system, level by level (a plain breadth-first search)."""
    level = [s for s, _ in k.initial_states()]
    seen = set(level)
    out = []
    while level:
        out.append(level)
        nxt = []
        for s in level:
            for _, t, _ in k.successors(s)[0]:
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        level = nxt
    return out


def counts(r: Any) -> tuple[Any, ...]:
    return (r.reason, r.states, r.transitions, r.depth, r.terminal, r.deadlocked)


def test_links_spread_states_that_differ_by_their_messages_only() -> None:
    # Raft, 3 servers, where every server has timed out (the largest class by servers:
    # 3^6 of the states, each link's vote asked, answered or done): owners by servers put
    # the whole class on one worker; with the links chosen on it, no worker holds 65%
    k = kernel(servers="3")
    states = [s for level in levels(k) for s in level]
    by_locals = Counter(s[0] for s in states)
    locals_, size = by_locals.most_common(1)[0]
    assert size >= 700
    heavy = [s for s in states if s[0] == locals_]
    shard = CompactShard(k, 0, 2, Options(shard_by=None, compact=True))
    xs = [shard.cb.pack(s) for s in heavy]
    assert len({shard.owner(x) for x in xs}) == 1
    links = shard.choose_links(None, xs)
    assert 1 <= len(links) <= 6
    spread = CompactShard(k, 0, 2, Options(shard_by=None, compact=True, shard_links=links))
    owners = Counter(spread.owner(spread.cb.pack(s)) for s in heavy)
    assert max(owners.values()) <= 0.65 * len(heavy)
    # whole: no worse than by servers alone
    whole = Counter(spread.owner(spread.cb.pack(s)) for s in states)
    assert max(whole.values()) <= 0.65 * len(states)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("kept", [True, False])
@pytest.mark.parametrize("table", [False, True])
def test_owners_with_links_count_what_one_process_counts(
        monkeypatch: pytest.MonkeyPatch, n: int, kept: bool, table: bool) -> None:
    # entries kept: a child's change of key in the entry (the network's in every group's
    # steps, its part counted once); not kept (a small sample, as Raft's network makes in
    # large runs): the owner of each new child.  `table`: owners of the keys of a level
    # chosen (`choose_table`), the others' by hash
    if not kept:
        monkeypatch.setattr(compact, "CACHE_SAMPLE", 64)
    one = check(kernel(servers="3"))
    k = kernel(servers="3")
    links = tuple(range(0, len(k.links), 2))
    by = shard_by(k, n)
    chosen: tuple[tuple[int, int], ...] = ()
    if table:
        shard = CompactShard(k, 0, n, Options(shard_by=by, compact=True))
        chosen = shard.choose_table(by, links, [shard.cb.pack(s) for s in levels(k)[7]])
        assert len(chosen) > n and {o for _, o in chosen} == set(range(n))
    workers = InProcess(k, n, Options(shard_by=by, compact=True, shard_links=links,
                                      shard_table=chosen))
    out, _ = parallel_bfs(k, Search(), workers)
    assert counts(out) == counts(one)
    assert all(s.links == frozenset(links) for s in workers.shards)
    assert all(s._lazy is not kept for s in workers.shards)
    assert sum(s.received for s in workers.shards) > 0
    assert min(len(s.xs) for s in workers.shards) > one.states // (2 * n)
