"""Property tests of the kernel's step semantics and of the checker built on it.

1. BFS and DFS reach the same states, and so does an independent exploration of `successors`
   (and of `enabled_events` + `step`), keyed by `fingerprint`, on generated small systems.
2. Fingerprints, state counts and counterexample traces do not depend on PYTHONHASHSEED.
3. `step` is deterministic: the same event from the same state gives the same result, in the
   same kernel and in a freshly built one, and it agrees with `successors`.
4. Every counterexample replays through `step` (on a fresh kernel) to the violation it reports,
   and BFS counterexamples are shortest.

The generated systems are built from a few parameterised component classes defined below; the
knobs (which actions are on, bounds, budgets, bugs) are fields with initial values set per
instance, so no class is created per example.

Explicit examples at the end pin down the assay bugs these properties found.
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import textwrap
from collections import deque
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st

from assay import (
    Component,
    Message,
    Port,
    System,
    action,
    ensures,
    invariant,
    on,
    one_of,
    requires,
)
from assay.checker import check
from assay.errors import TraceError
from assay.kernel.kernel import Kernel
from assay.kernel.trace import find_initial, initial_json, recorded_event, replay
from assay.model.load import build
from assay.model.types import canonical, to_json

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
NETWORKS = ("unordered", "fifo", "duplicating")
LIMIT = 2000          # generated systems larger than this are rejected (rare)

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --- the parameterised components of generated systems -------------------------------------------

class Color(Enum):
    RED = "red"
    BLUE = "blue"


class GPing(Message):
    n: int
    color: Color = Color.RED


class GAck(Message):
    n: int


class DeafCounter(Component):
    """Counts up to `bound`; may reset, jump, and send pings.  Has no handler for GAck."""

    out = Port(many=True)
    x: int = 0
    bound: int = 1
    budget: int = 0                 # pings it may still send (keeps the state space finite)
    color: Color = Color.RED
    inc_on: bool = True
    reset_on: bool = False
    jump_on: bool = False
    pick_on: bool = False
    halt_on: bool = False
    halted: bool = False            # a halted counter has no enabled action
    inv_cap: int = 99               # bug knob: the invariant x <= inv_cap
    acks: int = 0
    ack_limit: int = 99             # bug knob: requires of the GAck handler (in Counter)

    invariant(lambda self: self.x <= self.inv_cap)

    @action(when=lambda self: self.inc_on and not self.halted and self.x < self.bound)
    def inc(self):
        self.x += 1
        if self.budget > 0:
            self.budget -= 1
            self.out.broadcast(GPing(self.x, self.color))

    @action(when=lambda self: self.reset_on and not self.halted and self.x >= self.bound)
    def reset(self):
        self.x = 0

    @action(over=(0, 1, 2, 3), when=lambda self, v: self.jump_on and not self.halted
            and v <= self.bound and v != self.x)
    def jump(self, v):
        self.x = v

    @action(over=lambda self: self.out.peers,
            when=lambda self, p: self.pick_on and not self.halted and self.budget > 0)
    def pick(self, p):
        self.budget -= 1
        self.color = Color.BLUE if self.color == Color.RED else Color.RED
        self.out.send(GPing(self.x, self.color), to=p)

    @action(when=lambda self: self.halt_on and not self.halted)
    def halt(self):
        self.halted = True


class Counter(DeafCounter):
    @on(GAck)
    @requires(lambda self, m: m.n <= self.ack_limit)
    def ack(self, m):
        self.acks = min(self.acks + 1, 2)


class Relay(Component):
    """Records pings, optionally forwards them downstream and acknowledges them upstream."""

    inp = Port(many=True)
    out = Port(many=True)
    seen: frozenset = frozenset()
    forward: bool = False
    ack_on: bool = False
    boom_at: int = -1               # bug knob: raise on a ping with this n
    ens_cap: int = 99               # bug knob: ensures len(seen) <= ens_cap

    @on(GPing, port="inp")
    @ensures(lambda old, self, m: len(self.seen) <= self.ens_cap)
    def ping(self, m):
        if m.n == self.boom_at:
            raise ValueError(f"boom at {m.n}")
        self.seen = self.seen | {m.n}
        if self.forward:
            self.out.broadcast(GPing(m.n, m.color))
        if self.ack_on:
            self.inp.send(GAck(m.n), to=m.sender)

    @on(GAck, port="out")
    def ack(self, m):
        pass


class Sink(Component):
    inp = Port(many=True)
    got: int = 0

    @on(GPing)
    def ping(self, m):
        self.got = min(self.got + 1, 2)


def make(cfg: dict[str, Any]) -> System:
    """Build the system a config describes: counters -> relay chain -> sink."""
    s = System("generated", network=cfg["network"])
    relays = [s.add(f"r{j}", Relay, **r) for j, r in enumerate(cfg["relays"])]
    sink = s.add("sink", Sink)
    for a, b in zip(relays, relays[1:]):
        s.connect(a.out, b.inp)
    if relays:
        s.connect(relays[-1].out, sink.inp)
    for i, c in enumerate(cfg["counters"]):
        c = dict(c)
        cls = DeafCounter if c.pop("deaf", False) else Counter
        x0 = c.pop("x0", (0,))
        fan = c.pop("fan", 1)
        ref = s.add(f"c{i}", cls, x=one_of(*x0), **c)
        for r in relays[:fan] or [sink]:
            s.connect(ref.out, r.inp)
    if cfg.get("terminal", True):
        s.terminal(lambda g: True)
    k = cfg.get("prop")
    if k is not None:
        def below(g):
            return (sum(c.x for c in g.instances(DeafCounter))
                    + sum(len(r.seen) for r in g.instances(Relay))) < k
        s.always(below)
    return s


@st.composite
def configs(draw: Any, bugs: bool = False) -> dict[str, Any]:
    network = draw(st.sampled_from(NETWORKS))
    n_counters = draw(st.integers(1, 3))
    n_relays = draw(st.integers(0, 2))
    budget_left = draw(st.integers(0, 2))
    counters = []
    for _ in range(n_counters):
        budget = min(budget_left, draw(st.integers(0, 1)))
        budget_left -= budget
        counters.append(dict(
            bound=draw(st.integers(1, 3)), budget=budget,
            inc_on=draw(st.booleans()), reset_on=draw(st.booleans()),
            jump_on=draw(st.booleans()), pick_on=draw(st.booleans()),
            halt_on=draw(st.booleans()),
            fan=draw(st.integers(1, 2)), x0=draw(st.sampled_from([(0,), (0, 1)]))))
    relays = [dict(forward=draw(st.booleans()), ack_on=draw(st.booleans()))
              for _ in range(n_relays)]
    cfg: dict[str, Any] = dict(network=network, counters=counters, relays=relays,
                               terminal=True, prop=None)
    if bugs:
        # each bug knob independently, half the time; several bugs may compete
        def maybe(strategy: Any) -> Any:
            return draw(st.none() | strategy)
        cfg["prop"] = maybe(st.integers(1, 5))                          # property
        cfg["terminal"] = draw(st.booleans())                           # deadlock
        for c in counters:
            if (limit := maybe(st.integers(0, 3))) is not None:          # requires
                c["ack_limit"] = limit
            if (cap := maybe(st.integers(0, 2))) is not None:            # invariant
                c["inv_cap"] = cap
            c["deaf"] = draw(st.booleans())                             # unhandled
        for r in relays:
            if (boom := maybe(st.integers(1, 3))) is not None:           # exception
                r["boom_at"] = boom
            if (cap := maybe(st.integers(0, 2))) is not None:            # ensures
                r["ens_cap"] = cap
    return cfg


# --- independent explorations --------------------------------------------------------------------

def explore(kernel: Kernel, order: str = "bfs", via: str = "successors") -> tuple[set[str], int]:
    """The fingerprints of every reachable state (violations ignored), and how many distinct
    state tuples carry them.  `order` is bfs or dfs; `via` is successors or step."""
    todo = deque(s for s, _ in kernel.initial_states())
    seen: dict[str, Any] = {}
    fps: dict[Any, str] = {}        # cache: a state tuple's fingerprint (a pure function)
    while todo:
        s = todo.popleft() if order == "bfs" else todo.pop()
        fp = fps.get(s)
        if fp is None:
            fp = fps[s] = kernel.fingerprint(s)
        if fp in seen:
            continue
        seen[fp] = s
        if len(seen) > LIMIT:
            reject()
        if via == "successors":
            todo.extend(t for _, t, _ in kernel.successors(s)[0])
        else:
            todo.extend(kernel.step(s, ev).state for ev in kernel.enabled_events(s))
    return set(seen), len(fps)


def first_violation_depth(kernel: Kernel) -> int | None:
    """The length of a shortest counterexample, found level by level; None if there is none.

    A counterexample of length d: an initial state whose invariants fail (d = 0), a state at
    depth d that breaks a property or deadlocks, or a transition with a violation out of a state
    at depth d - 1.
    """
    level, seen = [], set()
    for s, viol in kernel.initial_states():
        if viol:
            return 0
        fp = kernel.fingerprint(s)
        if fp not in seen:
            seen.add(fp)
            level.append(s)
    depth = 0
    while level:
        nxt, bad_transition = [], False
        for s in level:
            if kernel.property_violations(s):
                return depth
            steps, enabled = kernel.successors(s)
            if not enabled and not kernel.is_terminal(s):
                return depth
            for _, t, viol in steps:
                bad_transition = bad_transition or bool(viol)
                fp = kernel.fingerprint(t)
                if fp not in seen:
                    seen.add(fp)
                    nxt.append(t)
            if len(seen) > LIMIT:
                reject()
        if bad_transition:
            return depth + 1
        level, depth = nxt, depth + 1
    return None


def event_key(kernel: Kernel, ev: int) -> str:
    return json.dumps(kernel.event(ev).to_json(), sort_keys=True)


def run_check(system: System, strategy: str) -> tuple[Any, str | None]:
    """`check` on a kernel we keep; also the fingerprint of the state its counterexample
    ends in, stepping the checker's own steps on the checker's own kernel."""
    kernel = Kernel(system)
    result = check(kernel, strategy=strategy)
    if result.trace is None:
        return result, None
    state = find_initial(kernel, result.trace.initial)
    for step in result.steps:
        state = kernel.step(state, step.event).state
    return result, kernel.fingerprint(state)


def assert_replays(system_factory: Any, result: Any, last_fp: str) -> None:
    """Replay `result`'s counterexample on a fresh kernel and find the violation it reports."""
    k2 = Kernel(system_factory())
    start = find_initial(k2, result.trace.initial)
    steps, final = replay(k2, result.trace.events, start)
    v = result.violation
    assert len(steps) == len(result.steps) == result.trace.verdict["step"]
    assert [recorded_event(s) for s in steps] == result.trace.events
    assert k2.fingerprint(final) == last_fp
    if v.kind == "property":
        assert v.name in {w.name for w in k2.property_violations(final)}
    elif v.kind == "deadlock":
        assert k2.enabled_events(final) == []
        assert not k2.is_terminal(final)
    elif not steps:                                 # an initial state breaks an invariant
        viols = {k2.fingerprint(s): w for s, w in k2.initial_states()}[k2.fingerprint(start)]
        assert (v.kind, v.blame) in {(w.kind, w.blame) for w in viols}
    else:
        assert (v.kind, v.blame) in {(w.kind, w.blame) for w in steps[-1].violations}


# --- 1. BFS and DFS reach the same states --------------------------------------------------------

@SETTINGS
@given(cfg=configs())
def test_bfs_dfs_and_independent_exploration_reach_the_same_states(cfg):
    fps_bfs, tuples_bfs = explore(Kernel(make(cfg)), "bfs")
    fps_dfs, tuples_dfs = explore(Kernel(make(cfg)), "dfs")
    fps_step, _ = explore(Kernel(make(cfg)), "dfs", via="step")
    assert fps_bfs == fps_dfs == fps_step
    # one state tuple per fingerprint: interning and fingerprints agree on state identity
    assert tuples_bfs == tuples_dfs == len(fps_bfs)

    bfs = check(make(cfg), strategy="bfs")
    dfs = check(make(cfg), strategy="dfs")
    assert bfs.verdict == dfs.verdict == "ok"
    assert bfs.states == dfs.states == len(fps_bfs)
    assert bfs.violation is None and dfs.violation is None and bfs.trace is None


@SETTINGS
@given(cfg=configs(bugs=True))
def test_bfs_and_dfs_agree_on_the_verdict(cfg):
    depth = first_violation_depth(Kernel(make(cfg)))
    bfs = check(make(cfg), strategy="bfs")
    dfs = check(make(cfg), strategy="dfs")
    expected = "ok" if depth is None else "violation"
    assert bfs.verdict == dfs.verdict == expected
    if expected == "ok":
        fps, _ = explore(Kernel(make(cfg)))
        assert bfs.states == dfs.states == len(fps)
    else:
        assert len(dfs.steps) >= depth


@pytest.mark.parametrize("path", ["two_phase_commit.py", "tla_twophase.py"])
def test_spec_state_sets_agree(path):
    def system():
        return build(SPECS / path, params={"rm_count": "3"})[0]
    fps_bfs, n = explore(Kernel(system()), "bfs")
    fps_dfs, _ = explore(Kernel(system()), "dfs", via="step")
    assert fps_bfs == fps_dfs and n == len(fps_bfs)
    assert check(system(), strategy="bfs").states == check(system(), strategy="dfs").states \
        == len(fps_bfs)
    if path == "tla_twophase.py":
        assert len(fps_bfs) == 288          # TLC's count for 3 RMs


# --- 2. nothing depends on PYTHONHASHSEED --------------------------------------------------------

SEED_SCRIPT = textwrap.dedent('''
    import hashlib, json, sys
    from assay.checker import check
    from assay.kernel.kernel import Kernel
    from assay.model.load import build

    def reachable(kernel):
        seen = {}
        todo = [s for s, _ in kernel.initial_states()]
        while todo:
            s = todo.pop()
            if s not in seen:
                seen[s] = kernel.fingerprint(s)
                todo.extend(t for _, t, _ in kernel.successors(s)[0])
        return seen

    out = {"hash": hash("assay is hash-seed independent")}
    for key, path, params in json.loads(sys.argv[1]):
        seen = reachable(Kernel(build(path, params=params)[0]))
        fps = sorted(seen.values())
        res = {"tuples": len(seen), "fingerprints": len(set(fps)),
               "sha256": hashlib.sha256(" ".join(fps).encode()).hexdigest()}
        for strategy in ("bfs", "dfs"):
            r = check(build(path, params=params)[0], strategy=strategy)
            res[strategy] = {"verdict": r.verdict, "states": r.states,
                             "trace": r.trace.to_json() if r.trace else None}
        out[key] = res
    print(json.dumps(out))
''')

SEEDS = ("0", "1", "12345", "random")

BUGGY_COMMIT = '''
"""Two-phase commit whose TM commits once two RMs have prepared: RMs can disagree."""
from enum import Enum

from assay import Component, Message, Port, System, action, on


class RS(Enum):
    WORKING = "working"
    PREPARED = "prepared"
    COMMITTED = "committed"
    ABORTED = "aborted"


class Prep(Message): ...
class Decide(Message):
    commit: bool


class RM(Component):
    tm = Port()
    st: RS = RS.WORKING

    @action(when=lambda self: self.st == RS.WORKING)
    def prepare(self):
        self.st = RS.PREPARED
        self.tm.send(Prep())

    @action(when=lambda self: self.st == RS.WORKING)
    def give_up(self):
        self.st = RS.ABORTED

    @on(Decide)
    def decide(self, m):
        if self.st != RS.ABORTED:
            self.st = RS.COMMITTED if m.commit else RS.ABORTED


class TM(Component):
    rms = Port(many=True)
    prepared: frozenset = frozenset()
    done: bool = False

    @on(Prep)
    def prep(self, m):
        self.prepared = self.prepared | {m.sender}

    @action(when=lambda self: not self.done and len(self.prepared) >= 2)   # the bug
    def commit(self):
        self.done = True
        self.rms.broadcast(Decide(True))


def system(rm_count: int = 3, network: str = "unordered") -> System:
    s = System("buggy_commit", network=network)
    tm = s.add("tm", TM)
    for i in range(rm_count):
        s.connect(s.add(f"rm{i}", RM).tm, tm.rms)

    @s.always
    def agree(g):
        sts = {rm.st for rm in g.instances(RM)}
        return not (RS.COMMITTED in sts and RS.ABORTED in sts)

    @s.terminal
    def quiet(g):
        return True

    return s
'''

PEERS_LOOP = '''
"""A hub greets its leaves by iterating its port's peers (a frozenset of names)."""
from assay import Component, Message, Port, System, action, on


class Hello(Message): ...


class Hub(Component):
    out = Port(many=True)
    done: bool = False

    @action(when=lambda self: not self.done)
    def hello_all(self):
        self.done = True
        for p in self.out.peers:
            self.out.send(Hello(), to=p)


class Leaf(Component):
    inp = Port()
    got: bool = False

    @on(Hello)
    def hello(self, m):
        self.got = True


def system(n: int = 4, network: str = "unordered") -> System:
    s = System("peers_loop", network=network)
    hub = s.add("hub", Hub)
    for i in range(n):
        s.connect(hub.out, s.add(f"leaf{i}", Leaf).inp)

    @s.always
    def fewer_than_two(g):
        return sum(leaf.got for leaf in g.instances(Leaf)) < 2

    return s
'''


def run_seeds(jobs: list[list[Any]]) -> list[dict[str, Any]]:
    outs = []
    for seed in SEEDS:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        p = subprocess.run([sys.executable, "-c", SEED_SCRIPT, json.dumps(jobs)], env=env,
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        outs.append(json.loads(p.stdout))
    # the seeds really differ: str hashes are not all the same
    assert len({o.pop("hash") for o in outs}) > 1
    return outs


def test_fingerprints_counts_and_traces_do_not_depend_on_the_hash_seed(tmp_path):
    buggy = tmp_path / "buggy_commit.py"
    buggy.write_text(BUGGY_COMMIT)
    jobs = [["2pc", str(SPECS / "two_phase_commit.py"), {"rm_count": "3"}],
            ["tla", str(SPECS / "tla_twophase.py"), {"rm_count": "3"}]]
    jobs += [[f"buggy-{net}", str(buggy), {"rm_count": "3", "network": net}]
             for net in NETWORKS]
    outs = run_seeds(jobs)
    for key, *_ in jobs:
        first = outs[0][key]
        for other in outs[1:]:
            assert other[key] == first, key
        assert first["tuples"] == first["fingerprints"]
    assert outs[0]["tla"]["fingerprints"] == 288
    assert outs[0]["tla"]["bfs"]["states"] == 288
    for key in ("2pc", "tla"):
        r = outs[0][key]
        assert r["bfs"]["verdict"] == r["dfs"]["verdict"] == "ok"
        assert r["bfs"]["states"] == r["dfs"]["states"] == r["fingerprints"]
    for net in NETWORKS:
        r = outs[0][f"buggy-{net}"]
        assert r["bfs"]["verdict"] == r["dfs"]["verdict"] == "violation"
        assert r["bfs"]["trace"]["verdict"]["name"] == "agree"


def test_bfs_counterexample_does_not_depend_on_the_iteration_order_of_port_peers(tmp_path):
    """Was a bug (found here; fixed by sorting a handler's sends in Kernel._sends): a handler
    that loops over `self.<port>.peers` (a frozenset of str) sends in hash order, the kernel
    interned envelope ids in that order and delivers in id order, so the BFS counterexample
    differed between PYTHONHASHSEEDs (the states did not)."""
    spec = tmp_path / "peers_loop.py"
    spec.write_text(PEERS_LOOP)
    jobs = [[net, str(spec), {"network": net}] for net in NETWORKS]
    outs = run_seeds(jobs)
    for net in NETWORKS:
        assert {o[net]["sha256"] for o in outs} == {outs[0][net]["sha256"]}  # states agree
    for net in NETWORKS:
        traces = {json.dumps(o[net]["bfs"]["trace"], sort_keys=True) for o in outs}
        assert len(traces) == 1, f"{net}: {len(traces)} different BFS counterexamples"


# --- 3. step is deterministic --------------------------------------------------------------------

SPEC_FACTORIES = {
    "two_phase_commit": lambda: build(SPECS / "two_phase_commit.py",
                                      params={"rm_count": "3"})[0],
    "tla_twophase": lambda: build(SPECS / "tla_twophase.py", params={"rm_count": "3"})[0],
}


@SETTINGS
@given(source=st.one_of(st.sampled_from(sorted(SPEC_FACTORIES)), configs(bugs=True)),
       choices=st.lists(st.integers(0, 2**16), min_size=1, max_size=40))
def test_step_is_deterministic(source, choices):
    factory = SPEC_FACTORIES[source] if isinstance(source, str) else (lambda: make(source))
    k1, k2 = Kernel(factory()), Kernel(factory())
    inits = [s for s, _ in k1.initial_states()]
    s1 = inits[choices[0] % len(inits)]
    s2 = find_initial(k2, initial_json(k1, s1))
    assert k1.fingerprint(s1) == k2.fingerprint(s2)
    for c in choices[1:]:
        evs = k1.enabled_events(s1)
        evs2 = k2.enabled_events(s2)
        assert sorted(event_key(k1, e) for e in evs) == sorted(event_key(k2, e) for e in evs2)
        if not evs:
            assert not k1.successors(s1)[0]
            break
        ev = evs[c % len(evs)]
        a, b = k1.step(s1, ev), k1.step(s1, ev)
        assert a == b
        assert k1.fingerprint(a.state) == k1.fingerprint(b.state)
        # the same event by name on a kernel built separately (different interning order)
        ev2 = k2.event_id(s2, k1.event(ev).to_json())
        assert event_key(k2, ev2) == event_key(k1, ev)
        c2 = k2.step(s2, ev2)
        assert k2.fingerprint(c2.state) == k1.fingerprint(a.state)
        assert c2.sends == a.sends
        assert c2.violations == a.violations
        # step agrees with successors (which leaves out silent self-loops)
        succ = {e: (t, v) for e, t, v in k1.successors(s1)[0]}
        if ev in succ:
            assert succ[ev] == (a.state, a.violations)
        else:
            assert a.state == s1 and not a.violations
        s1, s2 = a.state, c2.state


# --- 4. counterexamples replay, and BFS ones are shortest ----------------------------------------

@SETTINGS
@given(cfg=configs(bugs=True), strategy=st.sampled_from(["bfs", "dfs"]))
def test_every_counterexample_replays_to_its_violation(cfg, strategy):
    first_violation_depth(Kernel(make(cfg)))        # rejects systems that are too large
    result, last_fp = run_check(make(cfg), strategy)
    if result.verdict == "ok":
        return
    assert result.verdict == "violation"
    assert_replays(lambda: make(cfg), result, last_fp)


# found by the property (was a bug): a deadlock after 1 step, BFS reported a property after 2
SHALLOW_DEADLOCK = dict(network="unordered", relays=[], terminal=False, prop=2,
                        counters=[dict(bound=2, budget=0, inc_on=True, halt_on=True)])


@SETTINGS
@given(cfg=configs(bugs=True))
@example(cfg=SHALLOW_DEADLOCK)
def test_bfs_counterexamples_are_shortest(cfg):
    depth = first_violation_depth(Kernel(make(cfg)))
    result = check(make(cfg), strategy="bfs")
    if depth is None:
        assert result.verdict == "ok"
    else:
        assert result.verdict == "violation"
        assert len(result.steps) == depth, (result.violation.kind, depth,
                                            [s.description for s in result.steps])


# Typed message payloads: their JSON form must decode back to the same message.
class Note(Message):
    tags: tuple[Color, ...]
    nums: frozenset[int]
    pair: tuple[frozenset[Color], bool]
    ack: GAck | None = None


notes = st.builds(
    Note, st.lists(st.sampled_from(Color), max_size=2).map(tuple),
    st.frozensets(st.integers(-2, 2), max_size=2),
    st.tuples(st.frozensets(st.sampled_from(Color)), st.booleans()),
    st.none() | st.builds(GAck, st.integers(0, 2)))


class NoteSender(Component):
    out = Port()
    note: Note = Note((), frozenset(), (frozenset(), False))
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def send_it(self):
        self.sent = True
        self.out.send(self.note)


class NoteReceiver(Component):
    inp = Port()

    @on(Note)
    @requires(lambda self, m: False)            # every delivery is a violation to replay
    def note(self, m):
        pass


def note_system(note: Message, network: str) -> System:
    s = System("notes", network=network)
    a = s.add("a", NoteSender, note=note)
    s.connect(a.out, s.add("b", NoteReceiver).inp)
    return s


@SETTINGS
@given(note=notes, network=st.sampled_from(NETWORKS))
def test_counterexample_with_typed_payload_replays(note, network):
    result, last_fp = run_check(note_system(note, network), "bfs")
    assert result.violation.kind == "requires"
    assert result.trace.events[-1]["kind"] == "deliver"
    assert_replays(lambda: note_system(note, network), result, last_fp)


# Values a component field of bare type `tuple` / `frozenset` may hold (small ints and bools,
# so that values equal in Python but of different types, 1 and True, come up often).
values = st.recursive(
    st.none() | st.booleans() | st.integers(-1, 2) | st.sampled_from(["a", "b"])
    | st.sampled_from(list(Color)) | st.builds(GAck, st.integers(0, 3)),
    lambda inner: st.tuples(inner, inner) | st.lists(inner, max_size=2).map(frozenset),
    max_leaves=3)


class Chooser(Component):
    choices: tuple = ()
    v: tuple = ()

    @action(over=lambda self: self.choices, when=lambda self, c: self.v == ())
    def choose(self, c):
        self.v = (c,)


def chooser_system(choices: tuple) -> System:
    s = System("chooser")
    s.add("ch", Chooser, choices=choices)
    s.terminal(lambda g: True)
    return s


@SETTINGS
@given(choices=st.lists(values, min_size=1, max_size=3).map(tuple))
@example(choices=(True, 1))                                  # found by the property (was a bug)
@example(choices=((None, (False, False)), frozenset({None, (False, False)})))  # one JSON form
def test_values_with_different_canonical_forms_are_different_states_and_events(choices):
    distinct = {canonical(c) for c in choices}
    assert check(chooser_system(choices)).states == 1 + len(distinct)
    k = Kernel(chooser_system(choices))
    fps, n = explore(k)
    assert len(fps) == n == 1 + len(distinct)
    # each distinct choice is its own event, named by its own JSON, which replays to its own
    # state (a value repeated in the domain may give its event twice)
    (s0, _), = k.initial_states()
    evs = list(dict.fromkeys(k.enabled_events(s0)))
    assert len(evs) == len(distinct)
    names = [k.event(e).to_json() for e in evs]
    assert sorted(json.dumps(j, sort_keys=True) for j in names) == sorted(
        json.dumps({"kind": "action", "instance": "ch", "action": "choose", "arg": to_json(c)},
                   sort_keys=True) for c in {canonical(c): c for c in choices}.values())
    by_json = collections.Counter(json.dumps(j, sort_keys=True) for j in names)
    for ev, name in zip(evs, names):
        want = k.fingerprint(k.step(s0, ev).state)
        k2 = Kernel(chooser_system(choices))
        start = find_initial(k2, initial_json(k, s0))
        if by_json[json.dumps(name, sort_keys=True)] > 1:
            # values that differ only in type share a JSON form: replay says so rather
            # than take the first (which replayed another run)
            with pytest.raises(TraceError, match="ambiguous"):
                replay(k2, [name], start)
            continue
        _, final = replay(k2, [name], start)
        assert k2.fingerprint(final) == want, name


# --- explicit examples of the bugs found ---------------------------------------------------------

class Stepper(Component):
    x: int = 0

    @action(when=lambda self: self.x == 0)
    def to_two(self):                       # declared first: explored first
        self.x = 2

    @action(when=lambda self: self.x == 0)
    def to_one(self):                       # x == 1 has no enabled event: a deadlock
        self.x = 1

    @action(when=lambda self: self.x == 2)
    def to_three(self):
        self.x = 3


def stepper_system() -> System:
    s = System("stepper")
    s.add("s", Stepper)

    @s.always
    def not_three(g):
        return g["s"].x != 3

    return s


def test_bfs_prefers_a_shallower_deadlock():
    """Was a bug (found here; assay/checker/bfs.py): a state's deadlock was detected only when
    the state was expanded, while the properties of the next level were checked, and reported,
    as soon as a state was generated.  Here `to_one` leads to a deadlock after 1 step, but BFS
    expanded the state of `to_two` first, generated x == 3 and reported `to_two, to_three`
    (2 steps): not a shortest counterexample."""
    result = check(stepper_system(), strategy="bfs")
    assert first_violation_depth(Kernel(stepper_system())) == 1
    assert [s.description for s in result.steps] == ["s fires to_one"]
    assert result.violation.kind == "deadlock"


class LooseNote(Message):
    tag: tuple


class LooseSender(Component):
    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def send_it(self):
        self.sent = True
        self.out.send(LooseNote((Color.RED, frozenset({1}), GAck(1))))


class LooseReceiver(Component):
    inp = Port()

    @on(LooseNote)
    @requires(lambda self, m: False)
    def note(self, m):
        pass


def loose_system() -> System:
    s = System("loose")
    a = s.add("a", LooseSender)
    s.connect(a.out, s.add("b", LooseReceiver).inp)
    return s


def test_untyped_message_field_is_rejected_or_replays():
    """Was a bug (found here; now rejected by Message.field_types): a message field of bare
    type `tuple` decoded its JSON form into lists as tuples, enum names as str and messages as
    dicts, so the replayed delivery named another message (TraceError) or crashed (TypeError:
    unhashable type: 'dict').  Either fix will do: reject the spec up front, or replay."""
    from assay.errors import SpecError

    try:
        result, last_fp = run_check(loose_system(), "bfs")
    except SpecError as e:
        assert "tag" in e.message
        return
    assert_replays(loose_system, result, last_fp)


def test_action_arguments_equal_in_python_are_distinct_events():
    """Was a bug (found here; fixed in assay/kernel/kernel.py, Kernel._slot_id and event_id):
    action slots were interned by Python equality of (instance, action, has_arg, arg), so
    `choose(True)` and `choose(1)` shared one slot, both named `choose(true)`; and event_id
    matched JSON with `==`, where true == 1.  The counterexample that reaches v == (1,) then
    replayed, by name, to v == (True,), where the property holds."""
    def system():
        s = chooser_system((True, 1))

        @s.always
        def not_one(g):
            v = g["ch"].v
            return not (len(v) == 1 and type(v[0]) is int)

        return s

    result, last_fp = run_check(system(), "bfs")
    assert result.verdict == "violation"
    assert json.dumps(result.trace.events[0]["arg"]) == "1"     # the event that reached (1,)
    assert_replays(system, result, last_fp)


def test_peers_loop_gives_the_same_events_in_two_kernels(tmp_path):
    """In-process companion of the PYTHONHASHSEED test: after a handler that loops over
    `port.peers`, two kernels agree on the sends and on the order of the enabled events."""
    spec = tmp_path / "peers_loop_inproc.py"
    spec.write_text(PEERS_LOOP)
    for net in NETWORKS:
        k1, k2 = (Kernel(build(spec, params={"network": net})[0]) for _ in range(2))
        (s1, _), = k1.initial_states()
        (s2, _), = k2.initial_states()
        a, b = k1.step(s1, k1.enabled_events(s1)[0]), k2.step(s2, k2.enabled_events(s2)[0])
        assert [str(e) for e in a.sends] == [str(e) for e in b.sends]
        assert [event_key(k1, e) for e in k1.enabled_events(a.state)] == \
            [event_key(k2, e) for e in k2.enabled_events(b.state)]


MESSAGES_MODULE = '''
from assay import Message


class Shared(Message):
    n: int
'''

SPLIT_SPEC = '''
from assay import Component, Port, System, action, on, requires
from split_messages import Shared


class Src(Component):
    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send(Shared(1))


class Dst(Component):
    inp = Port()

    @on(Shared)
    @requires(lambda self, m: m.n > 1)
    def shared(self, m):
        pass


def system() -> System:
    s = System("split")
    a = s.add("a", Src)
    s.connect(a.out, s.add("b", Dst).inp)
    return s
'''


def test_counterexample_with_message_from_another_module_replays(tmp_path, monkeypatch):
    """Was a bug (found here; fixed in assay/kernel/kernel.py, _known_messages): a trace could
    only name message classes defined in the modules that define the components, so a spec that
    imports its messages from a module of its own got counterexamples it could not replay
    ("unknown message type")."""
    (tmp_path / "split_messages.py").write_text(MESSAGES_MODULE)
    (tmp_path / "split_spec.py").write_text(SPLIT_SPEC)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "split_messages", raising=False)

    def system():
        return build(tmp_path / "split_spec.py")[0]

    result, last_fp = run_check(system(), "bfs")
    assert result.violation.kind == "requires"
    assert_replays(system, result, last_fp)
