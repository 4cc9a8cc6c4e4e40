"""The explicit-state checker: verdicts, shortest counterexamples, deadlocks, bounds, traces
and replay, and the state counts of the shipped specs (which TLC confirms).

Every feature is shown on a spec with a known bug (the checker finds it) and without (it
passes).
"""
from __future__ import annotations

import enum
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest

from assay import Component, Message, Port, Range, System, action, on, one_of
from assay.checker import check
from assay.errors import TraceError
from assay.kernel import Kernel
from assay.kernel.kernel import Change
from assay.kernel.trace import Trace, find_initial, replay
from assay.model.load import build

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
STRATEGIES = ("bfs", "dfs")


# --- specs ------------------------------------------------------------------------------------


class Walker(Component):
    """Walks from 0 to 6: one step at a time, or a leap of 3 from a multiple of 3.

    6 is reached by 0 -3-> 3 -3-> 6 (two events) or by six steps; a depth-first search taking
    `step` first finds the long way.
    """

    p = Port()
    pos: int = 0

    @action(when=lambda self: self.pos < 6)
    def step(self):
        self.pos += 1

    @action(when=lambda self: self.pos % 3 == 0 and self.pos < 6)
    def leap(self):
        self.pos += 3


def walker(limit: int | None = 6, terminal: bool = True) -> System:
    """`limit`: the property says pos never reaches it (6: a bug; None: no property)."""
    s = System("walker")
    s.add("w", Walker)
    if limit is not None:
        @s.always
        def below_limit(g):
            return g["w"].pos < limit
    if terminal:
        @s.terminal
        def arrived(g):
            return g["w"].pos == 6
    return s


class Chain(Component):
    """Counts up to `top`: a line of top + 1 states, depth `top`."""

    p = Port()
    top: int = 5
    x: int = 0

    @action(when=lambda self: self.x < self.top)
    def inc(self):
        self.x += 1


def chain(top: int = 5, terminal: bool = True, start=0) -> System:
    s = System("chain")
    s.add("c", Chain, top=top, x=start)
    if terminal:
        s.terminal(lambda g: g["c"].x == g["c"].top)
    return s


class Token(Message):
    n: int


class Passer(Component):
    """Passes a token to its right neighbour until the count reaches 3."""

    right = Port()
    left = Port()
    holds: bool = False
    passed: int = 0

    @action(when=lambda self: self.holds and self.passed < 3)
    def pass_on(self):
        self.holds = False
        self.passed += 1
        self.right.send(Token(self.passed))

    @on(Token, port="left")
    def token(self, m):
        self.holds = True


def ring(n: int = 3, bad_at: int | None = None) -> System:
    s = System("ring")
    refs = [s.add(f"p{i}", Passer, holds=(i == 0)) for i in range(n)]
    for i in range(n):
        s.connect(refs[i].right, refs[(i + 1) % n].left)

    if bad_at is not None:
        @s.always
        def few_passes(g):
            return sum(p.passed for p in g.instances(Passer)) < bad_at

    s.terminal(lambda g: not g.in_flight() and all(
        not p.holds or p.passed == 3 for p in g.instances(Passer)))
    return s


# --- verdicts and shortest counterexamples ----------------------------------------------------


def test_bfs_returns_a_shortest_counterexample():
    r = check(walker(6), strategy="bfs")
    assert r.verdict == "violation" and r.reason == "violation"
    assert r.violation.kind == "property" and r.violation.name == "below_limit"
    assert len(r.steps) == 2
    assert [s.description for s in r.steps] == ["w fires leap", "w fires leap"]
    assert r.depth == 2


def test_dfs_finds_the_violation_too_by_a_longer_path():
    r = check(walker(6), strategy="dfs")
    assert r.verdict == "violation"
    assert r.violation.name == "below_limit"
    assert len(r.steps) >= 2
    assert r.steps[-1].changes[-1].new == 6


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_property_that_holds_everywhere_passes(strategy):
    r = check(walker(7), strategy=strategy)
    assert (r.verdict, r.reason) == ("ok", "exhausted")
    assert r.violation is None and r.steps == () and r.trace is None
    assert r.states == 7


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_bfs_and_dfs_agree_on_the_number_of_states(strategy):
    r = check(ring(3), strategy=strategy)
    assert r.verdict == "ok", r.violation
    assert r.states == check(ring(3), strategy="bfs").states


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_violation_reached_through_messages_is_found(strategy):
    r = check(ring(3, bad_at=4), strategy=strategy)
    assert r.verdict == "violation" and r.violation.name == "few_passes"
    if strategy == "bfs":
        assert len(r.steps) == 7           # 4 passes and 3 deliveries between them


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_property_violated_in_an_initial_state_has_an_empty_counterexample(strategy):
    s = chain(start=one_of(0, 6), top=5)       # from 0, x never passes 5

    @s.always
    def starts_low(g):
        return g["c"].x < 6

    r = check(s, strategy=strategy)
    assert r.verdict == "violation"
    assert r.violation.name == "starts_low"
    assert r.steps == ()
    assert r.trace.events == []
    assert r.trace.initial == {"c": {"top": 5, "x": 6}}


def test_unknown_strategy_is_rejected():
    with pytest.raises(ValueError, match="strategy"):
        check(walker(7), strategy="random")


# --- deadlock -----------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_deadlock_is_reported_when_nothing_is_enabled_and_the_state_is_not_terminal(strategy):
    r = check(chain(terminal=False), strategy=strategy)
    assert r.verdict == "violation"
    v = r.violation
    assert (v.kind, v.name, v.blame) == ("deadlock", "deadlock", "chain")
    assert len(r.steps) == 5
    assert r.steps[-1].changes == (Change("c", "x", 4, 5),)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_deadlock_where_a_terminal_predicate_holds(strategy):
    r = check(chain(terminal=True), strategy=strategy)
    assert (r.verdict, r.reason) == ("ok", "exhausted")
    assert r.states == 6


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_terminal_predicate_that_misses_the_stuck_state_still_gives_a_deadlock(strategy):
    s = chain(terminal=False)
    s.terminal(lambda g: g["c"].x == 3)          # not where it stops
    r = check(s, strategy=strategy)
    assert r.violation is not None and r.violation.kind == "deadlock"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_deadlock_in_the_initial_state(strategy):
    r = check(chain(top=0, terminal=False), strategy=strategy)
    assert r.violation.kind == "deadlock"
    assert r.steps == ()


# --- bounds -------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_max_states_stops_the_search_as_incomplete_at_exactly_that_many_states(strategy):
    r = check(chain(top=100), strategy=strategy, max_states=10)
    assert (r.verdict, r.reason) == ("incomplete", "max-states")
    assert r.states == 10
    assert r.violation is None and r.exit_code == 3


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_max_states_not_reached_gives_ok(strategy):
    r = check(chain(top=5), strategy=strategy, max_states=6)
    assert (r.verdict, r.reason, r.states) == ("ok", "exhausted", 6)
    r = check(chain(top=5), strategy=strategy, max_states=100)
    assert (r.verdict, r.reason, r.states) == ("ok", "exhausted", 6)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_max_states_also_bounds_the_initial_states(strategy):
    r = check(chain(top=20, start=one_of(0, 1, 2, 3)), strategy=strategy, max_states=2)
    assert (r.verdict, r.reason) == ("incomplete", "max-states")
    assert r.states == 2


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_max_depth_with_states_beyond_is_incomplete(strategy):
    r = check(chain(top=5), strategy=strategy, max_depth=3)
    assert (r.verdict, r.reason) == ("incomplete", "max-depth")
    assert r.depth == 3
    assert r.states == 4


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("bound", [5, 6, 50])
def test_max_depth_not_exceeded_gives_ok(strategy, bound):
    r = check(chain(top=5), strategy=strategy, max_depth=bound)
    assert (r.verdict, r.reason) == ("ok", "exhausted")
    assert r.states == 6 and r.depth == 5


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_max_depth_still_finds_a_deadlock_at_the_bound(strategy):
    # the stuck state is at depth 5, within a bound of 5: it is no less a deadlock
    r = check(chain(top=5, terminal=False), strategy=strategy, max_depth=5)
    assert r.verdict == "violation", (r.verdict, r.reason)
    assert r.violation.kind == "deadlock"


class Overfull(Component):
    """Counts to 5 in a field bounded to [0, 3]: the 4th increment breaks the type."""

    p = Port()
    x: Annotated[int, Range(0, 3)] = 0

    @action(when=lambda self: self.x < 5)
    def inc(self):
        self.x += 1


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("bound", [3, 4])
def test_max_depth_never_says_ok_when_a_violation_lies_just_beyond(strategy, bound):
    # the breaking step leaves the state as it was (a handler's violation changes nothing),
    # so the bound's edge must still check the steps out of its states
    s = System("overfull")
    s.add("o", Overfull)
    assert check(s, strategy=strategy).violation.kind == "type"
    r = check(s, strategy=strategy, max_depth=bound)
    assert r.verdict != "ok", (r.verdict, r.reason)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_max_depth_finds_a_violation_within_the_bound(strategy):
    r = check(walker(6), strategy=strategy, max_depth=6)
    assert r.verdict == "violation"
    r = check(walker(6), strategy="bfs", max_depth=1)
    assert (r.verdict, r.reason) == ("incomplete", "max-depth")


# --- the counterexample: steps and changes ----------------------------------------------------


def test_counterexample_steps_list_the_changed_fields():
    r = check(walker(6))
    assert [s.index for s in r.steps] == [1, 2]
    assert r.steps[0].changes == (Change("w", "pos", 0, 3),)
    assert r.steps[1].changes == (Change("w", "pos", 3, 6),)
    c = r.steps[0].changes[0]
    assert (c.instance, c.field, c.old, c.new) == ("w", "pos", 0, 3)


def test_counterexample_steps_list_messages_sent_and_delivered():
    r = check(ring(3, bad_at=2))
    assert [s.description for s in r.steps] == [
        "p0 fires pass_on", "p1 receives Token(n=1) from p0 (on left)", "p1 fires pass_on"]
    assert r.steps[0].sent == ("p0.right -> p1.left: Token(n=1)",)
    assert r.steps[0].changes == (Change("p0", "holds", True, False),
                                  Change("p0", "passed", 0, 1))
    assert r.steps[1].changes == (Change("p1", "holds", False, True),)
    assert r.steps[1].event_json == {
        "kind": "deliver", "to": "p1", "port": "left", "from": "p0", "from_port": "right",
        "message": {"type": "Token", "fields": {"n": 1}}}


# --- traces: JSON and replay ------------------------------------------------------------------


def test_trace_json_names_events_and_has_no_memory_addresses():
    r = check(ring(3, bad_at=2))
    doc = r.trace.to_json()
    assert doc["format"] == "assay-trace" and doc["version"] == 1
    assert doc["system"] == "ring"
    assert doc["initial"]["p0"] == {"holds": True, "passed": 0}
    assert [e["step"] for e in doc["events"]] == [1, 2, 3]
    assert doc["events"][0] == {"step": 1, "kind": "action", "instance": "p0",
                                "action": "pass_on", "arg": None,
                                "changes": {"p0": {"holds": False, "passed": 1}}}
    assert doc["events"][1]["kind"] == "deliver"
    assert doc["verdict"]["name"] == "few_passes" and doc["verdict"]["step"] == 3
    text = json.dumps(doc)
    assert "0x" not in text
    assert "0x" not in json.dumps(r.to_json())


def replay_in_fresh_kernel(trace: Trace, system: System):
    k2 = Kernel(system)
    steps, final = replay(k2, trace.events, find_initial(k2, trace.initial))
    return k2, steps, final


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_replaying_a_property_counterexample_ends_in_the_same_violation(strategy, tmp_path):
    r = check(ring(3, bad_at=3), strategy=strategy)
    path = tmp_path / "cex.json"
    r.trace.write(path)
    trace = Trace.read(path)
    k2, steps, final = replay_in_fresh_kernel(trace, ring(3, bad_at=3))
    assert len(steps) == len(r.steps)
    assert [s.description for s in steps] == [s.description for s in r.steps]
    assert [v.name for v in k2.property_violations(final)] == ["few_passes"]


class Greedy(Component):
    """Takes tokens into a field bounded to [0, 1]: the second one overflows it."""

    left = Port()
    got: Annotated[int, Range(0, 1)] = 0

    @on(Token, port="left")
    def token(self, m):
        self.got += 1


class Burst(Component):
    right = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.right.send(Token(1))
        self.right.send(Token(2))


def greedy_system() -> System:
    s = System("greedy")
    src = s.add("src", Burst)
    dst = s.add("dst", Greedy)
    s.connect(src.right, dst.left)
    return s


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_replaying_a_contract_counterexample_ends_in_the_same_violation(strategy):
    r = check(greedy_system(), strategy=strategy)
    assert r.verdict == "violation"
    assert (r.violation.kind, r.violation.blame) == ("type", "dst.token")
    assert r.trace.verdict["step"] == len(r.steps)
    doc = json.loads(json.dumps(r.trace.to_json()))
    events = [{k: v for k, v in e.items() if k != "step"} for e in doc["events"]]
    k2 = Kernel(greedy_system())
    steps, _ = replay(k2, events, find_initial(k2, doc["initial"]))
    last = steps[-1].violations[0]
    assert (last.kind, last.blame, last.message) == (
        r.violation.kind, r.violation.blame, r.violation.message)
    assert all(not s.violations for s in steps[:-1])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_replaying_a_deadlock_counterexample_ends_where_nothing_is_enabled(strategy):
    r = check(chain(terminal=False), strategy=strategy)
    k2, steps, final = replay_in_fresh_kernel(r.trace, chain(terminal=False))
    assert k2.enabled_events(final) == [] and not k2.is_terminal(final)


class Shade(enum.Enum):
    DARK = 1
    LIGHT = 2


class Pick(Message):
    shade: Shade


class Chooser(Component):
    """Paints (over an Enum) and sends its shade to a peer it picks (over its peers)."""

    out = Port(many=True)
    chosen: frozenset = frozenset()
    shade: Shade = Shade.DARK

    @action(over=Shade, when=lambda self, c: c != self.shade)
    def paint(self, c):
        self.shade = c

    @action(over=lambda self: self.out.peers - self.chosen)
    def choose(self, p):
        self.chosen = self.chosen | {p}
        self.out.send(Pick(self.shade), to=p)


class Taker(Component):
    inp = Port()
    got: int = 0

    @on(Pick)
    def pick(self, m):
        self.got += 1


def chooser_system(bug: bool = True) -> System:
    s = System("chooser")
    c = s.add("c", Chooser)
    for n in ("y", "x"):
        s.connect(c.out, s.add(n, Taker).inp)
    banned = Pick(Shade.LIGHT) if bug else Pick(Shade.DARK).with_sender(None)

    @s.always
    def no_light_pick_in_flight(g):
        return not bug or all(e.message != banned for e in g.in_flight())

    s.terminal(lambda g: True)
    return s


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_counterexample_with_parameterised_actions_replays(strategy):
    assert check(chooser_system(bug=False), strategy=strategy).verdict == "ok"
    r = check(chooser_system(), strategy=strategy)
    assert r.verdict == "violation"
    if strategy == "bfs":
        # step text as `show` prints values: an Enum member by name, a peer bare
        assert [s.description for s in r.steps][0] == "c fires paint(LIGHT)"
        assert r.steps[1].description.startswith("c fires choose(")
        assert "Peer(" not in r.steps[1].description
    doc = json.loads(json.dumps(r.trace.to_json()))
    assert doc["events"][0]["arg"] == "LIGHT"
    events = [{k: v for k, v in e.items() if k != "step"} for e in doc["events"]]
    k2 = Kernel(chooser_system())
    steps, final = replay(k2, events, find_initial(k2, doc["initial"]))
    assert [s.description for s in steps] == [s.description for s in r.steps]
    assert [v.name for v in k2.property_violations(final)] == ["no_light_pick_in_flight"]


def test_replay_of_an_event_that_is_not_enabled_names_the_step():
    r = check(ring(3, bad_at=3))
    events = list(r.trace.events)
    events.insert(1, events[0])          # p0 fires pass_on twice: it no longer holds the token
    k2 = Kernel(ring(3, bad_at=3))
    with pytest.raises(TraceError, match="step 2"):
        replay(k2, events, find_initial(k2, r.trace.initial))


def test_replay_of_a_message_that_is_not_in_flight_names_the_step():
    r = check(ring(3, bad_at=3))
    events = [r.trace.events[1]] + list(r.trace.events)   # deliver before it is sent
    k2 = Kernel(ring(3, bad_at=3))
    with pytest.raises(TraceError, match="step 1"):
        replay(k2, events, find_initial(k2, r.trace.initial))


def test_find_initial_rejects_an_initial_state_the_system_does_not_have():
    r = check(ring(3, bad_at=3))
    k2 = Kernel(ring(3, bad_at=3))
    bad = json.loads(json.dumps(r.trace.initial))
    bad["p0"]["passed"] = 2
    with pytest.raises(TraceError):
        find_initial(k2, bad)


# --- shipped specs ------------------------------------------------------------------------------


def spec_system(name: str, **params):
    system, _, _ = build(SPECS / name, params={k: str(v) for k, v in params.items()})
    return system


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("rm_count", "states"), [(3, 288), (5, 8832)])
def test_tla_twophase_has_as_many_states_as_tlc_counts(strategy, rm_count, states):
    r = check(spec_system("tla_twophase.py", rm_count=rm_count), strategy=strategy)
    assert (r.verdict, r.reason) == ("ok", "exhausted"), r.violation
    assert r.states == states


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_two_phase_commit_holds(strategy):
    r = check(spec_system("two_phase_commit.py"), strategy=strategy)
    assert r.verdict == "ok", r.violation
    assert r.states == 801


def test_two_phase_commit_on_a_majority_breaks_the_tm_protocol_in_5_steps():
    """The TM commits to an RM that never prepared: its session with that RM does not allow
    a Commit there, so the protocol catches the bug before any RM decides."""
    r = check(spec_system("two_phase_commit_bug_majority.py"))
    assert r.verdict == "violation"
    v = r.violation
    assert (v.kind, v.blame) == ("protocol", "tm.commit")
    assert len(r.steps) == 5
    assert v.location is not None and v.location.file.endswith(
        "two_phase_commit_bug_majority.py")
    assert r.steps[-1].description == "tm fires commit"
    k2, steps, final = replay_in_fresh_kernel(r.trace,
                                              spec_system("two_phase_commit_bug_majority.py"))
    assert [x.kind for x in steps[-1].violations] == ["protocol"]


def test_two_phase_commit_on_a_majority_is_found_by_dfs_too():
    r = check(spec_system("two_phase_commit_bug_majority.py"), strategy="dfs")
    assert r.verdict == "violation" and r.violation.kind == "protocol"
    assert len(r.steps) >= 5


_DETERMINISM = """
import json, sys
from assay.checker import check
from assay.kernel import Kernel
from assay.model.load import build
system, _, _ = build(sys.argv[1], params={"rm_count": "3"})
k = Kernel(system)
seen, todo = set(), [s for s, _ in k.initial_states()]
fps = set()
while todo:
    st = todo.pop()
    if st in seen:
        continue
    seen.add(st)
    fps.add(k.fingerprint(st))
    todo.extend(t for _, t, _ in k.successors(st)[0])
system, _, _ = build(sys.argv[2])
r = check(system, strategy="dfs")
print(json.dumps({"fps": sorted(fps), "trace": r.trace.to_json()["events"]}))
"""


def test_fingerprints_and_counterexamples_are_the_same_in_every_process():
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        p = subprocess.run([sys.executable, "-c", _DETERMINISM,
                            str(SPECS / "two_phase_commit.py"),
                            str(SPECS / "two_phase_commit_bug_majority.py")],
                           capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
        assert p.returncode == 0, p.stderr
        outs.append(json.loads(p.stdout))
    assert len(outs[0]["fps"]) == 801
    assert outs[0] == outs[1]


# --- what a check that holds did not prove --------------------------------------------------------

IDLE = ROOT / "tests" / "fixtures" / "good" / "idle.py"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_check_where_nothing_is_enabled_warns_of_its_0_transitions(strategy):
    r = check(build(IDLE)[0], strategy=strategy)
    assert (r.verdict, r.states, r.transitions) == ("ok", 1, 0)
    assert r.warnings and r.warnings[0].startswith("0 transitions: is anything enabled?")
    assert r.to_json()["warnings"] == list(r.warnings)


def test_a_deadlock_in_the_initial_state_warns_of_its_0_transitions_too():
    r = check(build(IDLE, "system_deadlocked")[0])
    assert r.verdict == "violation" and r.violation is not None
    assert r.violation.kind == "deadlock" and r.transitions == 0
    assert r.warnings[0].startswith("0 transitions: is anything enabled?")


def test_a_check_that_moves_has_no_0_transitions_warning():
    r = check(build(SPECS / "two_phase_commit.py")[0])
    assert r.verdict == "ok" and r.warnings == ()
    s = build(IDLE, "watched")[0]

    @s.always
    def never(g):
        return False

    r = check(s)                             # stopped at the initial state, before looking
    assert r.verdict == "violation" and r.transitions == 0 and r.warnings == ()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_property_says_how_often_it_ran_what_it_read_and_if_it_held_trivially(strategy):
    r = check(build(IDLE, "watched")[0], strategy=strategy)
    assert r.verdict == "ok" and r.states == 4
    props = r.to_json()["properties"]
    assert list(props) == ["counted", "calm", "tautology"]
    assert {p["evaluated"] for p in props.values()} == {4}
    assert not any(p["ever_false"] for p in props.values())
    assert props["counted"] == {"evaluated": 4, "ever_false": False, "reads": ["counter"],
                                "note": None}
    assert props["calm"]["reads"] == ["watcher"]
    assert "never changed" in props["calm"]["note"] and "vacuous" in props["calm"]["note"]
    assert props["tautology"]["reads"] == []
    assert "read nothing" in props["tautology"]["note"]
    assert list(r.warnings) == [props["calm"]["note"], props["tautology"]["note"]]


def test_the_property_found_false_says_so_and_nothing_is_called_vacuous():
    r = check(build(SPECS / "two_phase_commit_bug_majority.py")[0])
    assert r.verdict == "violation"
    props = r.to_json()["properties"]
    assert all(p["note"] is None for p in props.values())
    if r.violation is not None and r.violation.kind == "property":
        assert props[r.violation.name]["ever_false"]
    system = build(SPECS / "tla_twophase.py")[0]
    tla = check(system).to_json()["properties"]
    assert tla and all(p["evaluated"] > 0 and p["reads"] and p["note"] is None
                       and not p["ever_false"] for p in tla.values())


def test_a_property_that_reads_the_network_is_read_at_every_state():
    class Ping(Message): ...

    class Sender(Component):
        peer = Port()
        sent: int = 0

        @action(when=lambda self: self.sent < 2)
        def send(self):
            self.sent += 1
            self.peer.send(Ping())

    class Sink(Component):
        peer = Port()

        @on(Ping)
        def got(self, m):
            pass

    s = System("net")
    a, b = s.add("a", Sender), s.add("b", Sink)
    s.connect(a.peer, b.peer)

    @s.always
    def few(g):
        return len(g.in_flight(Ping)) <= 2

    r = check(s)
    p = r.to_json()["properties"]["few"]
    assert p["reads"] == ["network"] and p["note"] is None and p["evaluated"] == r.states
