"""`@s.constraint` (TLC's CONSTRAINT) and `check --no-deadlock` (TLC's CHECK_DEADLOCK FALSE).

A state outside a constraint is checked (contracts, properties) but not explored beyond, in
BFS, DFS and the liveness graph alike; without deadlock checking a state with nothing enabled
may be final, and a trace checked that way replays that way.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assay import Component, Message, Port, System, action, on
from assay.checker import check

ROOT = Path(__file__).resolve().parents[1]


class Counter(Component):
    x: int = 0

    @action()
    def inc(self):
        self.x += 1


def counter(bound: int | None, safe: int) -> System:
    s = System("counter", fairness="weak")
    s.add("c", Counter)
    if bound is not None:
        s.constraint(lambda g: g["c"].x <= bound)
    s.always(lambda g: g["c"].x <= safe)
    return s


@pytest.mark.parametrize("strategy", ["bfs", "dfs"])
def test_a_constraint_bounds_the_search_and_the_state_beyond_it_is_still_checked(
        strategy: str) -> None:
    r = check(counter(5, 100), strategy=strategy)
    assert r.verdict == "ok" and r.states == 7          # x = 0..6; 6 is checked, not expanded
    bad = check(counter(5, 5), strategy=strategy)
    assert bad.verdict == "violation" and len(bad.steps) == 6
    assert check(counter(None, 100), max_states=50).verdict == "incomplete"


def test_liveness_is_decided_within_the_constraint() -> None:
    s = counter(5, 100)
    s.eventually(lambda g: g["c"].x == 3)
    assert check(s).liveness == {"<lambda>": "holds"}
    s2 = counter(5, 100)
    s2.eventually(lambda g: g["c"].x == 9)               # beyond the constraint: never seen
    r = check(s2)
    # the behaviour is cut where it leaves the constraint: it stops there, as in TLC
    assert r.verdict == "violation" and r.violation.kind == "liveness"
    assert r.cycle_start == len(r.steps) == 6


class Ping(Message): ...


class Once(Component):
    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send(Ping())


class Sink(Component):
    inp = Port()
    got: bool = False

    @on(Ping)
    def ping(self, m):
        self.got = True


def once() -> System:
    s = System("once")
    s.connect(s.add("a", Once).out, s.add("b", Sink).inp)
    return s


def test_no_deadlock_lets_a_run_end_where_nothing_is_enabled() -> None:
    from assay.kernel.kernel import Kernel

    assert check(once()).violation.kind == "deadlock"
    r = check(Kernel(once(), deadlock=False))
    assert r.verdict == "ok" and r.states == 3


def cli(*args: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_no_deadlock_on_the_command_line_and_its_lasso_replays(tmp_path: Path) -> None:
    spec = tmp_path / "stuck.py"
    spec.write_text('''from assay import Component, System, action


class Stuck(Component):
    done: bool = False

    @action(when=lambda self: not self.done)
    def finish(self):
        self.done = True


def system() -> System:
    s = System("stuck", fairness="weak")
    s.add("s", Stuck)

    @s.eventually
    def never(g):
        return False

    return s
''')
    assert cli("check", spec).returncode == 1                     # a deadlock first
    trace = tmp_path / "lasso.json"
    r = cli("check", spec, "--no-deadlock", "--trace-out", trace, "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["violation"]["kind"] == "liveness"
    assert doc["lasso"] == {"cycle_start": 1}                     # the run stops after step 1
    rep = cli("replay", trace, "--json", "--spec", spec)      # (not under the current dir)
    assert rep.returncode == 1 and json.loads(rep.stdout)["reproduced"]
