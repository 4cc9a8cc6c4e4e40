"""The compact BFS's successor caches (`compact.py`, `_group_entry`): where a group's cache
does not hit (Raft's election with two terms: the network is new in almost every state), it
stops keeping entries — memory and time for nothing — and when no group's cache hits, the
instances form one group (one entry a state); the search finds the same states and
transitions; where a cache hits (TwoPhase) it keeps its entries."""
from __future__ import annotations

from pathlib import Path

from assay.checker import compact
from assay.checker.compact import CACHE_SAMPLE, CompactBFS
from assay.checker.search import Search
from assay.kernel.kernel import Kernel
from assay.model.load import build

SPECS = Path(__file__).resolve().parents[1] / "specs"


def search(spec, params, max_states=None):
    system = build(SPECS / spec, None, params)[0]
    bfs = CompactBFS(Kernel(system), Search(max_states=max_states))
    out = bfs.run()
    return bfs, (out.reason, out.states, out.transitions, out.depth,
                 out.violation and out.violation.name, out.path)


def test_a_cache_that_does_not_hit_stops_keeping_entries(monkeypatch):
    bfs, counts = search("raft_election.py", {"max_term": "2"}, max_states=120_000)
    assert counts[1] == 120_000
    # each group missed in (almost) every state expanded: judged after CACHE_SAMPLE misses
    assert bfs.fast and bfs.expanded is not None and bfs.expanded > CACHE_SAMPLE * 9 // 8
    assert [u[0] for u in bfs._use] == [False] * len(bfs._group_members)
    # then no group hits: one group of every instance, one entry a state
    assert bfs._whole and bfs._group_members == [(0, 1, 2)]
    assert sum(map(len, bfs._gcaches)) < len(bfs._gcaches) * CACHE_SAMPLE // 4
    # the same search keeping every entry (never judged) finds the same
    monkeypatch.setattr(compact, "CACHE_SAMPLE", 1 << 40)
    kept, same = search("raft_election.py", {"max_term": "2"}, max_states=120_000)
    assert same == counts and not kept._whole
    assert sum(map(len, kept._gcaches)) > len(kept._gcaches) * CACHE_SAMPLE


def test_every_spec_the_same_with_caches_judged_at_once(monkeypatch):
    """Judged after 64 misses (`expanded` is read every 1,024 states, so most caches are
    judged useless): whole groups early, in specs with violations too; the same outcome."""
    for spec, params in (("paxos_bug_own_value.py", {}), ("paxos.py", {}),
                         ("elastic_self_retire.py", {})):
        _, counts = search(spec, params)
        monkeypatch.setattr(compact, "CACHE_SAMPLE", 64)
        bfs, again = search(spec, params)
        monkeypatch.undo()
        assert bfs._whole and again == counts


def test_a_cache_that_hits_keeps_its_entries(monkeypatch):
    monkeypatch.setattr(compact, "CACHE_SAMPLE", 1 << 10)      # judged many times
    bfs, counts = search("tla_twophase.py", {"rm_count": "6"})
    assert counts[:2] == ("exhausted", 50816)
    assert all(u[0] for u in bfs._use) and not bfs._whole
    assert sum(map(len, bfs._gcaches)) > 1 << 10
