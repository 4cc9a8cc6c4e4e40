"""A shrinking search that would not end within its budget stops early: halfway through a
level whose first half, projected on the whole level and the next, would outgrow what is left
(`shrink._outgrows_level`), and a plain search whose levels would, even not growing.  A search
that does not end finds nothing, so what it would have spent is saved; the shrunk runs stay
as short as `check`'s counterexamples."""
from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

from assay import Component, System, action
from assay.checker import check
from assay.kernel import Kernel
from assay.kernel.trace import RECORDED, find_initial, replay_checked
from assay.model.load import build
from assay.simulator import FaultRates, Options
from assay.simulator.campaign import kernel_for, recorded, run_indices, shrink_report
from assay.simulator.run import moves_of
from assay.simulator.shrink import Search, Walker, _outgrows_level, bfs_shortest, signature

REPO = Path(__file__).resolve().parents[1]
COIN = REPO / "specs" / "coin_election_bug_ties.py"


def test_the_halfway_projection_is_exact():
    """`_outgrows_level` in integers against the same sum in fractions: the level's rest,
    new * size / done - new, then P * (P / size) ** k for k = 1 .. levels."""
    rng = random.Random(7)
    for _ in range(20_000):
        new, done, size = rng.randrange(60), rng.randrange(1, 30), rng.randrange(1, 60)
        levels, left = rng.randrange(4), rng.randrange(800)
        p = Fraction(new * size, done)
        total, at = p - new, p
        for _ in range(levels):
            at *= p / size
            total += at
        assert _outgrows_level(new, done, size, levels, left) == (total > left)


def _coin() -> tuple[Kernel, Walker]:
    system, _, _ = build(str(COIN), None, {})
    k = Kernel(system)
    want = signature(check(system).violation)           # type: ignore[arg-type]
    return k, Walker(k, want)


def test_a_plain_search_whose_first_level_outgrows_the_budget_stops_halfway_through_it():
    """coin_election's 8 initial states (every draw of 3 nodes) come to 24 states in one
    step; with 20 states left the search to depth 3 cannot end: it stops after expanding 4 of
    the 8 (before: 7, when the budget ran out)."""
    k, w = _coin()
    inits = [r for r, _ in moves_of(k).initial()]
    assert len(inits) == 8
    w.limit = 20
    search = Search()
    assert bfs_shortest(w, inits, set(), 4, None, 1000, search) is None
    assert not search.complete
    assert search.expanded == 4 and w.cost < 20
    # with room for it the same search ends: no run of 3 events or less breaks the property
    k, w = _coin()
    search = Search()
    assert bfs_shortest(w, [r for r, _ in moves_of(k).initial()], set(), 4, None, 10_000,
                        search) is None
    assert search.complete and search.everything


class Counter(Component):
    n: int = 0

    @action(when=lambda self: self.n < 40)
    def tick(self):
        self.n += 1


def counter() -> System:
    s = System("counter")
    s.add("c", Counter)

    @s.always
    def below_forty(g):
        return g["c"].n < 40

    return s


def test_a_plain_search_whose_levels_outgrow_the_budget_even_not_growing_stops_at_once():
    """One state a level, 39 levels to go and 10 states left: it cannot end, and stops after
    its first level (before: it went on, one state a level, until the budget was spent)."""
    k = Kernel(counter())
    w = Walker(k, ("property", "below_forty", "below_forty"))
    w.limit = 10
    search = Search()
    inits = [r for r, _ in moves_of(k).initial()]
    assert bfs_shortest(w, inits, set(), 40, None, 1000, search) is None
    assert not search.complete
    assert search.expanded == 1 and w.cost == 1


def test_coin_elections_first_failures_shrink_to_checks_shortest_for_less():
    """Each first failure (a campaign's walk and shrinking, on a fresh kernel) shrinks to
    `check`'s 4 steps or the 5 of its other violation, as before, coming to at most 20
    states off the run (before: 28 or 30, a plain search and a wider one that could not
    end)."""
    system, _, _ = build(str(COIN), None, {})
    opts = Options(steps=1000, rates=FaultRates())
    for seed in range(6):
        k = kernel_for(system, opts.rates)
        known: set[object] = set()
        searched = 0
        for i in range(3000):
            rep = run_indices(k, seed, [i], opts, known, fingerprints=False)[0]
            searched += rep.events
            if rep.violation is not None:
                break
        assert rep.violation is not None
        sh = shrink_report(k, rep, opts, searched)
        assert len(sh.events) == rep.events in (4, 5)
        assert sh.cost <= 20, (seed, sh.cost)


def test_a_shrunk_trace_is_recorded_without_checking_its_events_again():
    """Shrinking replayed every event of its result, checking each is enabled: recording the
    trace applies them (`explain(..., enabled=True)`), the same trace as `step` records,
    without asking again whether each is enabled (before: once per event)."""
    system, _, _ = build(str(REPO / "specs" / "tla_paxos_commit_bug_any.py"), None, {})
    opts = Options(steps=1000, rates=FaultRates())
    for seed in range(3):
        k = kernel_for(system, opts.rates)
        known: set[object] = set()
        for i in range(3000):
            rep = run_indices(k, seed, [i], opts, known, fingerprints=False)[0]
            if rep.violation is not None:
                break
        asked: list[int] = []

        def noted(state: object, ev: int, asked: list[int] = asked,
                  plain: object = k.enabled_alone) -> bool:
            asked.append(ev)
            return plain(state, ev)  # type: ignore[operator, no-any-return]

        k.enabled_alone = noted  # type: ignore[method-assign, assignment]
        sh = shrink_report(k, rep, opts, rep.events)
        assert asked == [], seed                  # shrinking itself steps events alone
        del k.enabled_alone
        fresh = kernel_for(system, opts.rates)
        start = find_initial(fresh, sh.initial)
        names = [{f: v for f, v in e.items() if f not in RECORDED} for e in sh.events]
        ids = [st.event for st in replay_checked(fresh, names, start).steps]
        assert recorded(fresh, start, ids) == sh.events
