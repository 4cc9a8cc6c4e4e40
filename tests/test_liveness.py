"""Liveness: ◇q, □◇q and p ~> q under no, weak and strong fairness.

1. Textbook cases with known answers: a lock server (holds under weak fairness; the priority
   twin starves a client), dining philosophers with ordered forks (starve under weak, eat under
   strong), a ring election (elects under weak; the swallowing twin stops with no leader), a
   token ring (□◇).
2. Every lasso `check` reports replays: `assay replay` confirms the cycle closes, is fair and
   breaks the property, and rejects a lasso whose fairness or cycle was tampered with.
3. The graph algorithm against an independent oracle on generated graphs: a behaviour breaks
   ◇q / □◇q / p ~> q exactly when the states it visits forever form a strongly connected set
   that fairness allows, or it stops; every such set is enumerated.
"""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay import Component, Message, Port, System, action, on
from assay.checker import check
from assay.errors import SpecError
from assay.kernel.faults import Faults
from assay.kernel.kernel import Kernel
from assay.kernel.liveness import check_lasso
from assay.kernel.violation import Violation
from assay.model.load import build

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
FIX = ROOT / "tests" / "fixtures" / "liveness"


def run(path: Path, fairness: str | None = None, faults: Faults | None = None,
        **params: Any) -> Any:
    system, name, typed = build(path, None, {k: str(v) for k, v in params.items()})
    return check(system, spec=str(path), system_name=name, params=typed,
                 fairness=fairness, faults=faults)


def cli(*args: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


# --- textbook cases ----------------------------------------------------------------------------

def test_the_lock_server_serves_every_client_under_weak_fairness() -> None:
    r = run(SPECS / "lock_server.py", clients=3)
    assert r.verdict == "ok" and r.fairness == "weak"
    assert r.liveness == {f"c{i} waits ~> c{i} enters": "holds" for i in range(3)}


def test_without_fairness_a_waiting_client_may_wait_forever() -> None:
    r = run(SPECS / "lock_server.py", fairness="none")
    assert r.verdict == "violation" and r.violation.kind == "liveness"
    assert r.cycle_start is not None and r.cycle_start < len(r.steps)


def test_the_priority_lock_server_starves_a_client_even_under_strong_fairness() -> None:
    for fairness in ("weak", "strong"):
        r = run(SPECS / "lock_server_bug_priority.py", fairness=fairness)
        assert r.verdict == "violation", fairness
        assert r.violation.name == "c1 waits ~> c1 enters"
        cycle = r.steps[r.cycle_start:]
        # c0 goes round and round; c1 stays waiting and never enters
        assert any("c0 fires ask" in s.description for s in cycle)
        assert not any(c.instance == "c1" for s in cycle for c in s.changes)


def test_ordered_dining_philosophers_starve_under_weak_but_not_strong_fairness() -> None:
    weak = run(SPECS / "dining_philosophers.py")
    assert weak.verdict == "violation" and weak.violation.kind == "liveness"
    starving = weak.violation.name
    assert starving.startswith("philosopher ")
    p = int(starving.split()[1])
    cycle = weak.steps[weak.cycle_start:]
    assert not any(f"take_first({p})" in s.description for s in cycle)
    strong = run(SPECS / "dining_philosophers.py", fairness="strong")
    assert strong.verdict == "ok"
    assert set(strong.liveness.values()) == {"holds"} and len(strong.liveness) == 3


@pytest.mark.parametrize("nodes", [3, 4])
def test_the_ring_election_eventually_elects_a_leader(nodes: int) -> None:
    r = run(SPECS / "ring_election.py", nodes=nodes)
    assert r.verdict == "ok", r.violation
    assert r.liveness == {"a_leader_is_elected": "holds"}


def test_the_swallowing_ring_stops_with_no_leader() -> None:
    r = run(SPECS / "ring_election_bug_swallow.py")
    assert r.verdict == "violation" and r.violation.kind == "liveness"
    assert r.cycle_start == len(r.steps)              # the run stops: an empty cycle
    assert "stops" in r.violation.message


def test_always_eventually_on_a_token_ring() -> None:
    assert run(FIX / "token_ring.py").verdict == "ok"
    assert run(FIX / "token_ring.py", fairness="none").verdict == "violation"
    bad = run(FIX / "token_ring_bug_keep.py")
    assert bad.verdict == "violation" and bad.violation.name == "n0_holds_the_token"
    assert all("n1" in s.description for s in bad.steps[bad.cycle_start:])


class Hello(Message): ...


class Greeter(Component):
    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def greet(self):
        self.sent = True
        self.out.send(Hello())


class Listener(Component):
    inp = Port()
    heard: bool = False
    ticks: int = 0

    @on(Hello)
    def hello(self, m):
        self.heard = True

    @action()
    def tick(self):                               # always enabled: the system never stops
        self.ticks = 1 - self.ticks


def greeting() -> System:
    s = System("greeting", fairness="weak")
    s.connect(s.add("g", Greeter).out, s.add("l", Listener).inp)
    s.eventually(lambda g: g["l"].heard)
    return s


def test_a_dropped_message_is_never_delivered_so_liveness_fails_with_drops() -> None:
    assert check(greeting()).verdict == "ok"
    r = check(greeting(), faults=Faults(drop=1))
    assert r.verdict == "violation" and r.violation.kind == "liveness"
    assert [s.event_json["kind"] for s in r.steps[:r.cycle_start]] == ["action", "drop"]
    assert [s.description for s in r.steps[r.cycle_start:]] == ["l fires tick"] * 2


def test_liveness_is_not_checked_on_an_incomplete_search() -> None:
    system, _, _ = build(SPECS / "lock_server.py")
    r = check(system, max_states=5)
    assert r.verdict == "incomplete"
    assert all(v.startswith("not checked") for v in r.liveness.values()) and r.liveness


def test_a_safety_violation_comes_first() -> None:
    class Bad(Component):
        x: int = 0

        @action(when=lambda self: self.x < 2)
        def inc(self):
            self.x += 1

    s = System("bad", fairness="weak")
    s.add("b", Bad)
    s.always(lambda g: g["b"].x < 2)
    s.eventually(lambda g: g["b"].x == 5)
    r = check(s)
    assert r.violation.kind == "property" and r.cycle_start is None
    assert list(r.liveness.values()) == ["not checked: a safety violation was found first"]


# --- the command line: lassos printed, written, replayed ---------------------------------------

def test_check_prints_the_lasso_and_replay_confirms_it(tmp_path: Path) -> None:
    trace = tmp_path / "lasso.json"
    c = cli("check", SPECS / "lock_server_bug_priority.py", "--trace-out", trace)
    assert c.returncode == 1, c.stderr
    assert "lasso (under weak fairness)" in c.stdout and "repeat forever" in c.stdout
    doc = json.loads(trace.read_text())
    assert doc["verdict"]["kind"] == "liveness" and doc["verdict"]["fairness"] == "weak"
    k = doc["verdict"]["cycle_start"]
    md = tmp_path / "lasso.md"
    r = cli("replay", trace, "--mermaid", md)
    assert r.returncode == 1, r.stderr
    assert "the cycle closes, is fair" in r.stdout
    assert f"loop steps {k + 1}-{len(doc['events'])} repeat forever" in md.read_text()
    j = json.loads(cli("replay", trace, "--json").stdout)
    assert j["reproduced"] and j["lasso"] == {"cycle_start": k, "confirmed": True, "note": None}


def test_replay_rejects_a_lasso_that_is_not_fair_or_does_not_close(tmp_path: Path) -> None:
    trace = tmp_path / "dining.json"
    assert cli("check", SPECS / "dining_philosophers.py", "--trace-out", trace).returncode == 1
    doc = json.loads(trace.read_text())
    doc["verdict"]["fairness"] = "strong"             # the starvation is not strongly fair
    (tmp_path / "strong.json").write_text(json.dumps(doc))
    r = cli("replay", tmp_path / "strong.json")
    assert r.returncode == 0 and "strong fairness rules the cycle out" in r.stdout
    doc["verdict"]["fairness"] = "weak"
    doc["verdict"]["cycle_start"] -= 1                # a cycle that does not come back
    (tmp_path / "open.json").write_text(json.dumps(doc))
    r = cli("replay", tmp_path / "open.json")
    assert r.returncode == 0 and "does not close" in r.stdout
    doc["verdict"]["cycle_start"] = 10 ** 6
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    r = cli("replay", tmp_path / "bad.json")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_check_json_has_the_lasso_and_the_verdicts(tmp_path: Path) -> None:
    c = cli("check", SPECS / "ring_election_bug_swallow.py", "--json")
    doc = json.loads(c.stdout)
    assert c.returncode == 1 and doc["lasso"] == {"cycle_start": len(doc["trace"]["events"])}
    assert doc["liveness"] == {"a_leader_is_elected": "violated"} and doc["fairness"] == "weak"
    ok = json.loads(cli("check", SPECS / "ring_election.py", "--json").stdout)
    assert ok["liveness"] == {"a_leader_is_elected": "holds"} and ok["lasso"] is None


def test_check_fairness_overrides_the_system_default() -> None:
    c = cli("check", SPECS / "dining_philosophers.py", "--fairness", "strong")
    assert c.returncode == 0 and "liveness, under strong fairness" in c.stdout


# --- the language ------------------------------------------------------------------------------

def test_fairness_declarations_are_checked_where_they_are_written() -> None:
    with pytest.raises(SpecError, match="unknown fairness 'sometimes'"):
        action(fair="sometimes")
    with pytest.raises(SpecError, match="unknown fairness"):
        System("s", fairness="fair")
    s = System("s")
    with pytest.raises(SpecError, match="fair\\(\\) needs instances"):
        s.fair("weak", "n0")
    s.eventually(lambda g: True)
    with pytest.raises(SpecError, match="two liveness properties"):
        s.eventually(lambda g: True)


def test_a_handler_or_action_fairness_beats_its_instance_and_class() -> None:
    class C(Component):
        x: int = 0

        @action(fair="strong")
        def a(self):
            self.x = 1 - self.x

        @action()
        def b(self):
            self.x = 1 - self.x

    s = System("s", fairness="none")
    one, two = s.add("one", C), s.add("two", C)
    s.fair("weak", C)
    s.fair("none", two)
    k = Kernel(s)
    state = k.initial_states()[0][0]
    got = {k.describe(ev): k.fair_task(ev) for ev in k.enabled_events(state)}
    assert got["one fires a"][1] == 2 and got["two fires a"][1] == 2
    assert got["one fires b"][1] == 1 and got["two fires b"] is None
    assert one.name == "one"


def test_check_lasso_refuses_malformed_lassos() -> None:
    system, _, _ = build(SPECS / "lock_server_bug_priority.py")
    k = Kernel(system)
    prop = system.liveness[1]
    r = check(k)
    state = k.initial_states()[0][0]
    states = [state]
    for s in r.steps:
        state = k.apply(state, s.event)[0]
        states.append(state)
    events = [s.event for s in r.steps]
    assert isinstance(check_lasso(k, prop, states, events, r.cycle_start), Violation)
    assert check_lasso(k, prop, states[:-1], events, r.cycle_start) == "the lasso is malformed"
    assert "does not close" in str(check_lasso(k, prop, states, events, 0))
    assert "an event other than a fault is enabled" in str(
        check_lasso(k, prop, states, events, len(events)))


# --- the algorithm against an oracle ------------------------------------------------------------

N = 5                       # states 0..N-1 of a generated graph
WEAK, STRONG, NONE = (0, 1), (2, 3), (4, 5)


class Graph(Component):
    """A generated graph as a component: `table[x][k]` is where task k leads from x (-1: it is
    disabled there); tasks 0-1 are weakly fair, 2-3 strongly, 4-5 not at all."""

    x: int = 0
    table: tuple[tuple[int, ...], ...] = ()

    @action(over=range(2), when=lambda self, k: self.table[self.x][k] >= 0, fair="weak")
    def weak(self, k):
        self.x = self.table[self.x][k]

    @action(over=range(2, 4), when=lambda self, k: self.table[self.x][k] >= 0, fair="strong")
    def strong(self, k):
        self.x = self.table[self.x][k]

    @action(over=range(4, 6), when=lambda self, k: self.table[self.x][k] >= 0, fair="none")
    def unfair(self, k):
        self.x = self.table[self.x][k]


def oracle(table: tuple[tuple[int, ...], ...], kind: str, goal: set[int], trigger: set[int]
           ) -> bool:
    """Whether the property is violated, by enumerating every set of states a behaviour could
    visit forever."""
    def reach(starts: set[int], allowed: set[int]) -> set[int]:
        seen, todo = set(starts), list(starts)
        while todo:
            v = todo.pop()
            for w in table[v]:
                if w >= 0 and w in allowed and w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen

    everything = set(range(N))
    reachable = reach({0}, everything)
    bad = everything - goal
    if kind == "eventually":
        region = reach({0}, bad) if 0 in bad else set()
    elif kind == "always_eventually":
        region = reachable & bad
    else:
        region = reach(reachable & trigger & bad, bad)
    if any(all(w < 0 for w in table[v]) for v in region):
        return True                                    # a behaviour stops there
    for size in range(1, len(region) + 1):
        for S in map(set, itertools.combinations(sorted(region), size)):
            edges = [(v, k, table[v][k]) for v in S for k in range(6) if table[v][k] in S]
            if not edges or reach({min(S)}, S) != S or any(reach({v}, S) != S for v in S):
                continue
            if size == 1 and not edges:
                continue
            taken = {k for _, k, _ in edges}
            enabled = [{k for k in range(6) if table[v][k] >= 0} for v in S]
            weak_ok = all(k in taken or any(k not in e for e in enabled) for k in WEAK)
            strong_ok = all(k in taken or all(k not in e for e in enabled) for k in STRONG)
            if weak_ok and strong_ok:
                return True
    return False


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(table=st.lists(st.lists(st.integers(-1, N - 1), min_size=6, max_size=6),
                      min_size=N, max_size=N),
       kind=st.sampled_from(["eventually", "always_eventually", "leads_to"]),
       goal=st.sets(st.integers(0, N - 1)), trigger=st.sets(st.integers(0, N - 1)))
def test_liveness_agrees_with_the_oracle(table: list[list[int]], kind: str, goal: set[int],
                                         trigger: set[int]) -> None:
    t = tuple(tuple(row) for row in table)
    s = System("g")
    s.add("g", Graph, table=t)
    s.terminal(lambda g: True)                         # stopping is not a safety matter here

    def q(g: Any) -> bool:
        return g["g"].x in goal

    if kind == "eventually":
        s.eventually(q)
    elif kind == "always_eventually":
        s.always_eventually(q)
    else:
        s.leads_to(lambda g: g["g"].x in trigger, q)
    r = check(s)
    expected = oracle(t, kind, goal, trigger)
    assert (r.verdict == "violation") == expected, (r.violation, r.steps)
    if expected:
        assert r.violation.kind == "liveness" and r.cycle_start is not None


def test_a_handlers_own_fairness_reaches_deliveries_on_any_of_several_ports() -> None:
    """`@on(Msg, fair=...)` without `port=` on a component with several ports handles the
    message on every port: its fairness covers those deliveries too (it was looked up by the
    delivery's port alone, so the system's default applied)."""
    from assay import Component, Message, Port, System, action, on, on_start
    from assay.checker import check

    class Note(Message): ...

    class Writer(Component):
        out = Port()

        @on_start
        def write(self):
            self.out.send(Note())

    class Reader(Component):
        left = Port()
        right = Port()
        got: bool = False

        @on(Note, fair="weak")
        def note(self, m):
            self.got = True

    class Spinner(Component):               # a cycle that never delivers a note
        bit: bool = False

        @action()
        def flip(self):
            self.bit = not self.bit

    s = System("notes")                     # no fairness but the handler's own
    s.add("spinner", Spinner)
    r = s.add("r", Reader)
    s.connect(s.add("w", Writer).out, r.left)
    s.connect(s.add("w2", Writer).out, r.right)

    @s.eventually
    def read(g):
        return g["r"].got

    assert check(s).liveness == {"read": "holds"}


def test_the_summary_names_declared_fairness() -> None:
    """A spec whose default is no fairness but which declares some (`s.fair`, `fair=`) is not
    checked "under no fairness": the summary says the declared fairness counts."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    c = subprocess.run([sys.executable, "-m", "assay", "check", "specs/kv/replicated_kv.py"],
                       capture_output=True, text=True, cwd=root, timeout=120)
    assert c.returncode == 0, c.stdout + c.stderr
    assert "liveness, under the declared fairness (no fairness by default)" in c.stdout
