"""The packed walk's rows (`assay/simulator/packed.py`, fourth round): one generator walks a
campaign's runs, a state's row is made when it is met, the rows say which states were met
(whatever sets the runs are given), events that share a key keep the kernel's order, and the
compact search's group caches survive a relayout.  Every run is still `run_once`'s."""
from __future__ import annotations

import hashlib
from pathlib import Path

from assay.checker.compact import Relayout
from assay.kernel.kernel import Kernel
from assay.model.load import build
from assay.simulator import Options, campaign, packed
from assay.simulator.campaign import derive, kernel_for
from assay.simulator.rates import FaultRates
from assay.simulator.run import run_once

SPECS = Path(__file__).resolve().parents[1] / "specs"


def _kernel(name: str, params: dict[str, str]):
    system, _, _ = build(str(SPECS / name), None, params)
    return kernel_for(system, FaultRates())


def _fps(kernel, xs):
    memo = packed.packed_moves(kernel)
    return [kernel.fingerprint(memo.state(x)) for x in xs]


def test_derive_is_blake2b_of_the_seed_and_index_as_text():
    """Seeds of earlier campaigns stay the same (the bytes are formatted another way)."""
    for seed in (0, 7, -3, 2 ** 70):
        for i in (0, 1, 99, 123_456):
            d = hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest()
            assert derive(seed, i) == int.from_bytes(d, "big") >> 1


def test_one_generator_walks_the_runs_run_packed_walks_one_by_one():
    """`walks` (one generator reseeded per run) gives each seed's `run_packed` run."""
    seeds = [derive(4, i) for i in range(80)]
    ours, theirs = _kernel("tla_twophase.py", {"rm_count": "4"}), \
        _kernel("tla_twophase.py", {"rm_count": "4"})
    a, b = set(), set()
    for s, w in zip(seeds, packed.walks(ours, seeds, 120, a)):
        v = packed.run_packed(theirs, s, 120, b)
        assert (w.seed, w.ended, w.violation) == (v.seed, v.ended, v.violation)
        assert [ours.event(e).to_json() for e in w.events] == \
            [theirs.event(e).to_json() for e in v.events]
        assert _fps(ours, w.new) == _fps(theirs, v.new)


def test_new_states_are_counted_whatever_set_the_runs_are_given():
    """A run given the campaign's set tests it only for states without a row; a run given
    another set (here in the middle of a campaign) finds every state of its run new to that
    set, and afterwards the campaign's set is tested at every step: its counts stay exact."""
    seeds = [derive(9, i) for i in range(200)]
    one = _kernel("tla_twophase.py", {"rm_count": "5"})
    whole = [x for w in packed.walks(one, seeds, 200, set()) for x in w.new]

    k = _kernel("tla_twophase.py", {"rm_count": "5"})
    mine: set[int] = set()
    got = [x for w in packed.walks(k, seeds[:100], 200, mine) for x in w.new]
    assert packed.packed_moves(k).seen_by is mine          # the rows stand for the set
    other = packed.run_packed(k, seeds[3], 200, set())
    assert packed.packed_moves(k).seen_by is None          # ... no longer
    alone = _kernel("tla_twophase.py", {"rm_count": "5"})
    first = packed.run_packed(alone, seeds[3], 200, set())
    assert _fps(k, other.new) == _fps(alone, first.new) and other.new
    got += [x for w in packed.walks(k, seeds[100:], 200, mine) for x in w.new]
    assert _fps(k, got) == _fps(one, whole)
    assert len(mine) == len(whole) == len(set(got))


def test_a_full_row_table_counts_and_walks_the_same():
    """Past `limit` rows the states met are found in the set: the same runs, the same new
    states, in the same order."""
    seeds = [derive(2, i) for i in range(150)]
    free = _kernel("tla_twophase.py", {"rm_count": "5"})
    full = _kernel("tla_twophase.py", {"rm_count": "5"})
    packed.packed_moves(full).limit = 40
    a = list(packed.walks(free, seeds, 200, set()))
    b = list(packed.walks(full, seeds, 200, set()))
    assert len(packed.packed_moves(full).rows) == 40
    assert [(w.ended, w.events, _fps(free, w.new)) for w in a] == \
        [(w.ended, w.events, _fps(full, w.new)) for w in b]
    assert sum(len(w.new) for w in a) > 40


def test_events_that_share_a_key_keep_the_kernels_order(monkeypatch):
    """The canonical sort is stable: where two events have one key their order is the
    kernel's, which the packed walk then takes from `CompactBFS.successors` itself."""
    monkeypatch.setattr(Kernel, "event_key",
                        lambda self, ev: b"deliver" if ev >= 0 else b"action")
    for name, params in [("tla_twophase.py", {"rm_count": "4"}),
                         ("two_phase_commit_bug_protocol.py", {}),
                         ("paxos_bug_own_value.py", {})]:
        ours, theirs = _kernel(name, params), _kernel(name, params)
        for i in range(40):
            s = derive(6, i)
            a = run_once(theirs, s, 150, FaultRates(), lassos=False)
            b = packed.run_packed(ours, s, 150)
            assert [theirs.event(e).to_json() for e in a.events] == \
                [ours.event(e).to_json() for e in b.events], (name, i)
            assert a.ended == b.ended
        assert packed.packed_moves(ours).ties


def test_campaigns_with_a_bug_and_without_report_the_same_packed_or_not(monkeypatch):
    """A known bug is found and a correct spec passes, with the same JSON and traces as the
    general loop (distinct states, shrunk traces), at 6 RMs too."""
    got = {}
    for spec, params in [("two_phase_commit_bug_majority.py", {}),
                         ("tla_twophase.py", {"rm_count": "6"})]:
        for on in (True, False):
            monkeypatch.setattr(packed, "PACKED", on)
            c = campaign(str(SPECS / spec), None, params, seed=5, runs=120,
                         opts=Options(steps=150), jobs=1)
            got[spec, on] = (c.to_json(with_timing=False), [t.to_json() for t in c.traces()])
        assert got[spec, True] == got[spec, False]
    assert got["two_phase_commit_bug_majority.py", True][0]["verdict"] == "violation"
    assert got["tla_twophase.py", True][0]["verdict"] == "ok"


def test_group_caches_survive_a_relayout():
    """A field growing (here the network's) keeps the caches of groups whose members did not
    change, and every state's steps are the same after it."""
    k = _kernel("tla_twophase.py", {"rm_count": "5"})
    memo = packed.packed_moves(k)
    xs = sorted({x for w in packed.walks(k, [derive(1, i) for i in range(100)], 100, set())
                 for x in w.new})
    c = memo.compact
    before = {x: c.steps(x)[1] for x in xs}
    masks, caches, _ = c.groups()
    sizes = [len(g) for g in caches]
    assert sum(sizes) > 0
    c.relayout(Relayout(-1, c.packing.cap[c.packing.n] * 4), 0)
    masks2, caches2, _ = c.groups()
    assert caches2 is not caches and [m1 & m2 for m1, m2 in zip(masks, masks2)] == masks
    assert [g is h for g, h in zip(caches, caches2)] == [True] * len(caches)
    assert {x: c.steps(x)[1] for x in xs} == before
