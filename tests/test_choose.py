"""Nondeterministic choice in a step: `self.choose(options)`.

A step whose code chooses is one step per way its choices can go: `check` explores every way
(each is an event of its own, named with the values taken), `simulate` draws a way from its
seed, `assay run` at random, and a trace records the values so `assay replay` takes the same
way.  Fairness speaks of the step, whichever way it goes.  `verify` proves what follows a
choice for every option.  Specs: specs/coin_election.py and its twin _bug_ties.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import Component, Message, Port, System, action, invariant, on, on_start
from assay.checker import check
from assay.errors import SpecError
from assay.kernel.kernel import Kernel
from assay.model.load import build
from assay.verifier.verify import verify

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "specs" / "coin_election.py"
BUG = ROOT / "specs" / "coin_election_bug_ties.py"


def cli(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


class Rolled(Message):
    value: int


def dice(sides: int, rolls: int, chooses: bool) -> System:
    """A die rolled `rolls` times; each roll is sent to a sink.  With `chooses` the roll is
    `self.choose(...)` in the action's body, else the action ranges over the sides (`over=`):
    the same behaviours, so the same states and transitions."""
    class Sink(Component):
        inp = Port()
        seen: frozenset[int] = frozenset()

        @on(Rolled)
        def got(self, m):
            self.seen = self.seen | {m.value}

    if chooses:
        class Die(Component):
            out = Port()
            left: int = 0
            total: int = 0

            @action(when=lambda self: self.left > 0)
            def roll(self):
                v = self.choose(range(1, sides + 1))
                self.left -= 1
                self.total += v
                self.out.send(Rolled(v))
    else:
        class Die(Component):           # type: ignore[no-redef]
            out = Port()
            left: int = 0
            total: int = 0

            @action(when=lambda self, v: self.left > 0, over=range(1, sides + 1))
            def roll(self, v):
                self.left -= 1
                self.total += v
                self.out.send(Rolled(v))

    s = System("dice")
    d = s.add("die", Die, left=rolls)
    s.connect(d.out, s.add("sink", Sink).inp)

    @s.terminal
    def rolled(g):
        return not g.in_flight()

    return s


@settings(max_examples=12, deadline=None)
@given(sides=st.integers(1, 4), rolls=st.integers(0, 3))
def test_choosing_in_the_body_explores_what_a_parameter_domain_does(sides: int,
                                                                     rolls: int) -> None:
    a = check(dice(sides, rolls, chooses=True))
    b = check(dice(sides, rolls, chooses=False))
    assert a.verdict == b.verdict == "ok"
    assert (a.states, a.transitions, a.depth) == (b.states, b.transitions, b.depth)


def test_each_way_is_an_event_named_with_what_was_chosen() -> None:
    k = Kernel(dice(3, 1, chooses=True))
    [(s0, _)] = k.initial_states()
    evs = k.enabled_events(s0)
    assert [k.describe(e) for e in evs] == [f"die fires roll, choosing {v}" for v in (1, 2, 3)]
    assert [k.event(e).to_json()["choices"] for e in evs] == [[1], [2], [3]]
    assert {k.event_kind(e) for e in evs} == {"action"}
    # fairness speaks of the step: every way is the same task
    assert len({k.fair_task(e) for e in evs}) == 1
    totals = sorted(k.local_values(k.apply(s0, e)[0], "die")["total"] for e in evs)
    assert totals == [1, 2, 3]
    # an event given by name (as in a trace) finds its way by the values chosen
    j = k.event(evs[1]).to_json()
    assert k.event_id(s0, j) == evs[1]


def test_a_start_hook_that_chooses_gives_one_initial_state_per_way() -> None:
    class Coin(Component):
        out = Port()
        face: str = "?"

        @on_start
        def toss(self):
            self.face = self.choose(("heads", "tails"))

    s = System("coins")
    a, b = s.add("a", Coin), s.add("b", Coin)
    s.connect(a.out, b.out)
    k = Kernel(s)
    faces = sorted((k.local_values(st_, "a")["face"], k.local_values(st_, "b")["face"])
                   for st_, _ in k.initial_states())
    assert faces == [("heads", "heads"), ("heads", "tails"), ("tails", "heads"),
                     ("tails", "tails")]


def test_the_coin_election_holds_and_its_bug_is_found_with_the_draws() -> None:
    good, _, _ = build(GOOD)
    r = check(good)
    assert r.verdict == "ok" and r.states == 489 and r.transitions == 1365
    bug, _, _ = build(BUG)
    r = check(bug)
    assert r.verdict == "violation" and len(r.steps) == 4
    assert r.violation is not None and r.violation.name == "only_the_winner_leads"
    # a larger table: ties are likelier, every draw of every round explored
    big, _, _ = build(GOOD, params={"nodes": "3", "sides": "3", "rounds": "3"})
    assert check(big).verdict == "ok"


def test_a_trace_with_choices_replays_and_a_changed_choice_does_not(tmp_path: Path) -> None:
    # a trace through a tie and into the second round, whose draws are choice events
    good, _, _ = build(GOOD)
    k = Kernel(good)
    state = next(s for s, _ in k.initial_states()
                 if all(k.local_values(s, n)["value"] == 1 for n in ("n0", "n1", "n2")))
    events = []
    for _ in range(3):                             # the referee takes the three tied draws
        ev = next(e for e in k.enabled_events(state) if k.event_kind(e) == "deliver")
        events.append(k.event(ev).to_json())
        state = k.apply(state, ev)[0]
    retry = [e for e in k.enabled_events(state) if "choosing" in k.describe(e)]
    assert len(retry) == 6                         # three nodes to retry, two sides each
    ev = next(e for e in retry if k.event(e).to_json()["choices"] == [2])
    events.append(k.event(ev).to_json())
    from assay.kernel.trace import Trace, initial_json

    s0 = next(s for s, _ in k.initial_states()
              if all(k.local_values(s, n)["value"] == 1 for n in ("n0", "n1", "n2")))
    path = tmp_path / "hand.json"
    Trace(str(GOOD), "system", {}, events, engine="check", initial=initial_json(k, s0)
          ).write(path)
    rep = cli("replay", path)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "choosing 2" in rep.stdout
    events[-1]["choices"] = [3]                    # a die of two sides never shows 3
    path.write_text(json.dumps({**json.loads(path.read_text()), "events": events}))
    rep = cli("replay", path)
    assert rep.returncode == 2 and "not enabled" in rep.stderr, rep.stdout + rep.stderr


def test_simulate_draws_choices_from_the_seed() -> None:
    a = cli("simulate", GOOD, "--runs", "30", "--seed", "7", "--json")
    b = cli("simulate", GOOD, "--runs", "30", "--seed", "7", "--json")
    c = cli("simulate", GOOD, "--runs", "30", "--seed", "8", "--json")
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr
    ja, jb, jc = (json.loads(x.stdout) for x in (a, b, c))
    assert ja == jb | {"seconds": ja["seconds"]} or \
        {k: v for k, v in ja.items() if "second" not in k and "rate" not in k} == \
        {k: v for k, v in jb.items() if "second" not in k and "rate" not in k}
    assert ja["distinct_states"] > 30 and jc["distinct_states"] > 30


def test_assay_run_chooses_at_random_and_records_the_way(tmp_path: Path) -> None:
    initials = set()
    for i in range(6):
        trace = tmp_path / f"run{i}.json"
        r = cli("run", GOOD, "--json", "--trace-out", trace)
        assert r.returncode == 0, r.stderr
        final = json.loads(r.stdout)["final"]
        assert sum(final[n]["leader"] for n in ("n0", "n1", "n2")) <= 1
        doc = json.loads(trace.read_text())
        assert not any(e["kind"] == "start" for e in doc["events"])
        initials.add(tuple(doc["initial"][n]["value"] for n in ("n0", "n1", "n2")))
        rep = cli("replay", trace, "--json")
        assert rep.returncode == 0, rep.stdout + rep.stderr
    assert len(initials) > 1        # 8 equally likely first draws: all 6 alike is 8^-5


def test_a_guard_or_contract_that_chooses_is_a_spec_error() -> None:
    class Picky(Component):
        out = Port()
        x: int = 0

        @action(when=lambda self: self.choose((True, False)))
        def go(self):
            self.x = 1

    s = System("picky")
    s.add("p", Picky)
    with pytest.raises(SpecError, match="outside the body"):
        check(s)


def test_choices_that_depend_on_outside_state_are_a_spec_error() -> None:
    calls = []

    class Drifting(Component):
        out = Port()
        x: int = 0

        @action(when=lambda self: self.x == 0)
        def go(self):
            calls.append(1)
            self.x = self.choose(range(1, 1 + len(calls) % 3))

    s = System("drifting")
    s.add("d", Drifting)
    with pytest.raises(SpecError, match="outside state"):
        check(s)


def test_too_many_options_and_no_options() -> None:
    class Huge(Component):
        out = Port()
        x: int = 0

        @action(when=lambda self: self.x == 0)
        def go(self):
            self.x = self.choose(range(10**9))

    s = System("huge")
    s.add("h", Huge)
    with pytest.raises(SpecError, match="too many to explore"):
        check(s)

    class Empty(Component):
        out = Port()
        n: int = 0
        x: int = 0

        @action(when=lambda self: self.x == 0)
        def go(self):
            self.x = 1 + self.choose(range(self.n))

    s = System("empty")
    s.add("e", Empty)
    r = check(s)
    assert r.verdict == "violation" and r.violation is not None
    assert "chose from no options" in r.violation.message


def test_a_fair_step_that_chooses_may_always_choose_the_same() -> None:
    """A model checker sees paths, not probabilities: a fair coin that is flipped forever may
    show tails forever, and `eventually heads` fails with that lasso."""
    class Coin(Component):
        out = Port()
        face: str = "tails"

        @action(fair="weak")
        def flip(self):
            self.face = self.choose(("heads", "tails"))

    s = System("coin")
    s.add("c", Coin)

    @s.eventually
    def heads(g):
        return g["c"].face == "heads"

    r = check(s)
    assert r.liveness == {"heads": "violated"} and r.cycle_start is not None
    assert [st_.event_json["choices"] for st_ in r.steps[r.cycle_start:]] == [["tails"]]


def test_verify_proves_what_follows_a_choice_for_every_option() -> None:
    good, _, _ = build(GOOD)
    rep = verify(good)
    tied = {o.kind: o.verdict for o in rep.obligations
            if o.component == "Node" and o.target == "tied"}
    assert tied == {"no-exception": "proved", "send": "proved", "invariant": "proved"}

    class Step(Message): ...

    def walker(lo: int) -> System:
        class Walker(Component):
            inp = Port()
            pos: int = 0
            invariant(lambda self: self.pos >= 0)

            @on(Step)
            def step(self, m):
                self.pos = self.pos + self.choose(range(lo, 2))

        class Kick(Component):
            out = Port()

        s = System("walk")
        s.connect(s.add("k", Kick).out, s.add("w", Walker).inp)
        return s

    def verdict(rep: Any) -> str:
        return next(o.verdict for o in rep.obligations
                    if o.target == "step" and o.kind == "invariant")

    assert verdict(verify(walker(0))) == "proved"
    back = verify(walker(-1))                     # a step back from 0 breaks the invariant
    assert verdict(back) == "refuted" and back.verdict == "refuted"


def test_assay_run_deploy_records_each_nodes_choices(tmp_path: Path) -> None:
    from tests.runtime_support import Children, free_ports, replay, write_deployment

    children = Children(tmp_path)
    try:
        ports = free_ports(3)
        dep = write_deployment(tmp_path / "deploy.toml", "coin_election.py",
                               {"a": (ports[0], ["referee"]), "b": (ports[1], ["n0"]),
                                "c": (ports[2], ["n1", "n2"])})
        trace = tmp_path / "run.json"
        r = children.run("run", "--deploy", dep, "--json", "--trace-out", trace, timeout=60)
        assert r.returncode == 0, r.stderr
        final = json.loads(r.stdout)["final"]
        assert sum(final[n]["leader"] for n in ("n0", "n1", "n2")) <= 1
        doc = json.loads(trace.read_text())
        drawn = tuple(doc["initial"][n]["value"] for n in ("n0", "n1", "n2"))
        assert drawn == tuple(final[n]["value"] for n in ("n0", "n1", "n2")) \
            or any("choices" in e for e in doc["events"])
        assert replay(children, trace)["violation"] is None
    finally:
        children.close()


def test_a_way_that_overfills_a_blocking_link_is_not_enabled() -> None:
    """Channels and choice: each way of a step is an event of its own, so a full "block" link
    blocks the ways that would overfill it, not the step as a whole."""
    class Burst(Component):
        out = Port()
        sent: int = 0

        @action(when=lambda self: self.sent == 0)
        def burst(self):
            n = self.choose((1, 2))
            for k in range(n):
                self.out.send(Rolled(k))
            self.sent = n

    class Sink(Component):
        inp = Port()
        got: int = 0

        @on(Rolled)
        def take(self, m):
            self.got += 1

    s = System("burst", network="fifo")
    s.connect(s.add("b", Burst).out, s.add("s", Sink).inp, capacity=1)

    @s.terminal
    def done(g):
        return not g.in_flight()

    k = Kernel(s)
    [(s0, _)] = k.initial_states()
    assert [k.describe(e) for e in k.enabled_events(s0)] == ["b fires burst, choosing 1"]
    r = check(s)
    assert r.verdict == "ok" and r.states == 3
