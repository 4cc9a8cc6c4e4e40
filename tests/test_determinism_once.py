"""Where the kernel keeps no memo of a state's actions (one component holding every variable:
`Kernel._memo_once`), every visit of a state computes them again; the determinism check
(run twice, `determinism`) is made once per state and event, not at every visit — and a
nondeterministic action is still refused."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from assay.checker import check
from assay.errors import SpecError
from assay.kernel import Kernel
from assay.model.load import build
from assay.simulator import FaultRates, Options, campaign

SPEC = """
import random
from assay import Component, System, action

CALLS = [0, 0]

class C(Component):
    n: int = 0
    m: int = 0

    @action(when=lambda self: self.n < 3)
    def up(self):
        CALLS[0] += 1
        self.n += BODY

    @action(over=lambda self: range(2), when=lambda self, k: self.m < 2)
    def step(self, k):
        CALLS[1] += 1
        self.m += 1

def system():
    s = System("once")
    s.add("c", C)

    @s.always
    def small(g):
        return g["c"].n < 3

    return s
"""


def test_a_state_visited_again_runs_its_actions_once(tmp_path: Path) -> None:
    path = tmp_path / "once.py"
    path.write_text(textwrap.dedent(SPEC).replace("BODY", "1"))
    system, _, _ = build(str(path), None, {})
    kernel = Kernel(system)
    assert kernel._memo_once
    calls = _calls()
    (start, _), = kernel.initial_states()
    first = kernel.successors(start)
    ran = list(calls)
    assert ran == [2, 4]                     # checked: each step run twice (2 args of step)
    again = kernel.successors(start)
    assert again == first
    assert [c - r for c, r in zip(calls, ran)] == [1, 2]     # visited again: once each
    # a state of its own is checked again
    nxt = first[0][0][1]
    before = list(calls)
    kernel.successors(nxt)
    assert calls[0] - before[0] == 2


def _calls() -> list[int]:
    import sys
    for mod in list(sys.modules.values()):
        got = getattr(mod, "CALLS", None)
        if isinstance(got, list) and str(getattr(mod, "__file__", "")).endswith("once.py"):
            return got
    raise AssertionError("no CALLS")


@pytest.mark.parametrize("body", ["random.randint(1, 1000)"])
def test_a_nondeterministic_whole_state_action_is_still_refused(tmp_path: Path,
                                                               body: str) -> None:
    path = tmp_path / "once.py"
    path.write_text(textwrap.dedent(SPEC).replace("BODY", body))
    system, _, _ = build(str(path), None, {})
    with pytest.raises(SpecError, match="gave two different results"):
        check(system)
    with pytest.raises(SpecError, match="gave two different results"):
        campaign(str(path), None, {}, seed=0, runs=20,
                 opts=Options(steps=20, rates=FaultRates()), jobs=1)


# --- the two runs' outside worlds (`determinism.twice`) ----------------------------------------

def test_the_two_runs_see_the_seeded_generators_and_stopped_clocks_and_then_the_real_ones(
        ) -> None:
    """Run 0 draws what `random.seed(0)` gives, run 1 what `random.seed(1)` gives, each with
    its own stopped clocks; afterwards the caller's generator goes on as if nothing had drawn
    from it and its clocks are the real ones again (one save and restore for both runs)."""
    import random
    import time

    from assay.kernel.determinism import twice

    def draws() -> tuple[float, int, float, int, float]:
        return (random.random(), random.randrange(10 ** 9), time.time(), time.monotonic_ns(),
                time.perf_counter())

    real = (time.time, time.monotonic_ns, time.perf_counter)
    random.seed(5)
    expected_next = (random.random(), random.random())
    random.seed(5)
    first, second = twice(draws)
    assert (random.random(), random.random()) == expected_next
    assert (time.time, time.monotonic_ns, time.perf_counter) == real
    for run, got in ((0, first), (1, second)):
        gen = random.Random(run)
        assert got[:2] == (gen.random(), gen.randrange(10 ** 9))
    assert first[2] != second[2] and first[3] != second[3] and first[4] != second[4]
    assert twice(draws) == (first, second)            # the same worlds every time
