"""The compact BFS's generated loop over a level (`assay/checker/compact_loop.py`): it expands
the plain states, leaves the others to the general loop, and changes no count, order or
counterexample (each case against the full-state BFS, `bfs.py`); the states it keeps are
sized copies (32 bytes for up to 60 bits, not the 48 of a sum's int)."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from assay.checker import check, compact
from assay.checker.compact import CompactBFS
from assay.checker.search import Search
from assay.kernel.kernel import Kernel
from assay.model.load import build

SPECS = Path(__file__).resolve().parents[1] / "specs"


def outcome(r):
    return (r.verdict, r.reason, r.states, r.transitions, r.depth, r.terminal, r.deadlocked,
            r.violation and r.violation.name, [s.description for s in r.steps],
            [(f.violation.name, f.count, [s.description for s in f.steps]) for f in r.findings])


@pytest.fixture
def expanded(monkeypatch):
    """How many states the generated loop expanded, over the searches of the test."""
    count = [0]
    real = compact.level_loop

    def counting(*args):
        loops = real(*args)

        def wrap(loop):
            def level(lv, pos, *rest):
                to, *more = loop(lv, pos, *rest)
                count[0] += to - pos
                return (to, *more)
            return level
        return tuple(map(wrap, loops))
    monkeypatch.setattr(compact, "level_loop", counting)
    return count


@pytest.mark.parametrize("bound", [1, 2, 37, 500, 2000, 8831, 8832])
def test_max_states_is_exact_at_any_bound(bound, expanded):
    system = build(SPECS / "tla_twophase.py", None, {"rm_count": "5"})[0]
    full = check(system, full_states=True, max_states=bound)
    mine = check(system, max_states=bound)
    assert outcome(mine) == outcome(full)
    assert mine.states == min(bound, 8832)
    if bound >= 500:
        assert expanded[0] > 0


@pytest.mark.parametrize("spec, params, options", [
    ("two_phase_commit_bug_majority.py", {}, {}),
    ("two_phase_commit_bug_majority.py", {}, {"keep_going": True}),
    ("two_phase_commit.py", {}, {}),
    ("tla_twophase.py", {"rm_count": "5"}, {}),
])
def test_the_loop_changes_no_count_order_or_counterexample(spec, params, options, expanded):
    system = build(SPECS / spec, None, params)[0]
    full = check(system, full_states=True, **options)
    mine = check(system, **options)
    assert outcome(mine) == outcome(full)
    assert expanded[0] > 0                  # the generated loop did expand states here
    if spec == "two_phase_commit_bug_majority.py":
        assert mine.verdict == "violation" and mine.steps
    else:
        assert mine.verdict == "ok"


def test_the_plain_states_go_through_the_loop(expanded):
    system = build(SPECS / "tla_twophase.py", None, {"rm_count": "6"})[0]
    r = check(system)
    assert r.verdict == "ok"
    # every expanded state but a handful (a field widening, the last states) is the loop's
    assert expanded[0] > 0.95 * r.states


def test_kept_states_are_sized_copies(monkeypatch):
    monkeypatch.setattr(compact.Packing, "START_WIDTH", 6)     # 7 fields: 42 bits and more
    system = build(SPECS / "tla_twophase.py", None, {"rm_count": "5"})[0]
    tracemalloc.start()
    try:
        bfs = CompactBFS(Kernel(system), Search())
        out = bfs.run()
        traces = tracemalloc.take_snapshot().traces
    finally:
        tracemalloc.stop()
    kept = [x for sh in bfs.visited.shards for x in sh]
    assert len(kept) == out.states == 8832
    wide = [x for x in kept if 30 < x.bit_length() <= 60]         # two 30-bit digits
    assert len(wide) > 4000
    # what the generated code allocated and is still alive: the states kept (and cache keys),
    # 24 bytes of header and 8 of digits: none with the spare digit of a sum (36 bytes)
    sizes = [t.size for t in traces if t.traceback[0].filename == "<string>"]
    assert sizes.count(32) > len(wide) // 2 and 36 not in sizes
