"""Liveness under symmetry reduction (`symmetric_liveness.py`): decided on the orbits, with the
same verdicts as the unreduced search, and concrete lassos that `assay replay` confirms.

1. Known answers, reduced against unreduced: a lock server with interchangeable clients (FIFO
   serves everyone under weak and strong fairness; the LIFO twin starves a client, and the
   lasso is found, concrete, fair and replayed), TwoPhase's RMs, each under no, weak and
   strong fairness; the orbit counts against a brute-force count.
2. Properties that are not symmetric (one names a client, one tells the clients apart by
   their order) are decided on every state, with a warning that says which and why.
3. The argument of the module docstring, on generated symmetric systems: every fair
   component of the full graph's region projects into a bad end of the quotient (so no
   candidate on the quotient means none on the full graph), and the verdicts and liveness
   reports are the unreduced ones.
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

import assay
from assay import Component, Message, Port, System, action, on
from assay.checker import check
from assay.checker.liveness import bad_ends, build_graph, fair_tasks
from assay.checker.search import Search
from assay.checker.symmetric_liveness import OrbitTasks, build_quotient, permute_task
from assay.checker.symmetry import Symmetry
from assay.kernel.kernel import Kernel
from assay.kernel.liveness import check_lasso
from assay.kernel.trace import find_initial
from assay.kernel.violation import Violation
from assay.model.load import build

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "tests" / "fixtures" / "liveness" / "symmetric_lock.py"
sys.path.insert(0, str(ROOT / "specs"))

import tla_twophase  # noqa: E402


def lock(**params: Any) -> tuple[System, str, dict[str, Any]]:
    return build(LOCK, None, {k: str(v) for k, v in params.items()})


def run(params: dict[str, Any], **kw: Any) -> Any:
    system, name, typed = lock(**params)
    return check(system, spec=str(LOCK), system_name=name, params=typed, **kw)


def replayed(system: System, fairness: str, r: Any) -> Violation | str:
    """`check_lasso` on the lasso of `r`'s trace, replayed event by event on a fresh kernel
    from the trace's initial state (what `assay replay` does)."""
    k = Kernel(system, None, fairness)
    path = [find_initial(k, r.trace.initial)]
    events = []
    for e in r.trace.events:
        ev = k.event_id(path[-1], e)
        events.append(ev)
        path.append(k.apply(path[-1], ev)[0])
    prop = next(p for p in system.liveness if p.name == r.violation.name)
    return check_lasso(k, prop, path, events, r.cycle_start)


# --- known answers, reduced against unreduced ----------------------------------------------

@pytest.mark.parametrize("order,fairness,verdict", [
    ("fifo", None, "ok"), ("fifo", "strong", "ok"), ("fifo", "none", "violation"),
    ("lifo", None, "violation"), ("lifo", "strong", "violation"),
    ("lifo", "none", "violation")])
def test_the_lock_server_reduced_and_unreduced_agree(order: str, fairness: str | None,
                                                     verdict: str) -> None:
    reduced = run({"order": order}, fairness=fairness)
    full = run({"order": order}, fairness=fairness, symmetry=False)
    assert reduced.verdict == full.verdict == verdict
    assert reduced.liveness == full.liveness
    assert reduced.symmetry["applied"] and set(reduced.symmetry["liveness"].values()) == {
        "on orbits"}
    assert reduced.states == reduced.symmetry["orbits"] == 146 and full.states == 760
    assert reduced.symmetry["liveness_orbits"] == 146
    assert not reduced.warnings
    if verdict == "violation":
        system = lock(order=order)[0]
        fair = fairness or "weak"
        got = replayed(system, fair, reduced)
        assert isinstance(got, Violation), got
        assert got.name == reduced.violation.name == full.violation.name


def test_the_starving_client_is_found_concrete_and_replays(tmp_path: Path) -> None:
    trace = tmp_path / "lasso.json"
    c = subprocess.run([sys.executable, "-m", "assay.cli", "check", str(LOCK), "-p",
                        "order=lifo", "--trace-out", str(trace)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert c.returncode == 1, c.stderr
    assert "orbits" in c.stdout and "lasso (under weak fairness)" in c.stdout
    assert "decided on 146 orbits: everyone_served" in c.stdout
    doc = json.loads(trace.read_text())
    assert doc["verdict"]["kind"] == "liveness" and doc["verdict"]["name"] == "everyone_served"
    r = subprocess.run([sys.executable, "-m", "assay.cli", "replay", str(trace), "--json"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    j = json.loads(r.stdout)
    assert j["reproduced"] and j["lasso"]["confirmed"], r.stdout


def brute_force_orbits(system: System) -> int:
    """Orbits of the reachable states, counted from the unreduced state space with every
    permutation of the group (independently of the representatives)."""
    k = Kernel(system)
    sym = Symmetry(k)
    (g,) = sym.groups
    perms = []
    for q in itertools.permutations(g):
        p = list(sym.identity)
        for a, b in zip(g, q):
            p[a] = b
        perms.append(tuple(p))
    seen = {s for s, _ in k.initial_states()}
    todo = list(seen)
    while todo:
        s = todo.pop()
        for _, t, _ in k.successors(s)[0]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return len({frozenset(sym.permute(s, p) for p in perms) for s in seen})


def test_the_orbits_counted_are_the_orbits() -> None:
    r = run({"order": "fifo"})
    assert r.states == brute_force_orbits(lock(order="fifo")[0]) == 146
    assert "orbits" in r.text()


@pytest.mark.parametrize("fairness,verdict", [("weak", "ok"), ("strong", "ok"),
                                              ("none", "violation")])
def test_twophase_rms_decide_reduced_as_unreduced(fairness: str, verdict: str) -> None:
    def system() -> System:
        s = tla_twophase.system(3, symmetric=True)

        @s.eventually
        def all_decided(g: Any) -> bool:
            return all(rm.rm_state in (tla_twophase.RM.COMMITTED, tla_twophase.RM.ABORTED)
                       for rm in g.instances(tla_twophase.ResourceManager))

        return s

    reduced = check(system(), fairness=fairness)
    full = check(system(), fairness=fairness, symmetry=False)
    assert reduced.verdict == full.verdict == verdict
    assert reduced.liveness == full.liveness
    assert reduced.states == 80 and full.states == 288
    assert reduced.symmetry["liveness"] == {"all_decided": "on orbits"}
    if verdict == "violation":
        assert isinstance(replayed(system(), fairness, reduced), Violation)


def test_keep_going_finds_the_lasso_on_the_orbits() -> None:
    r = run({"order": "lifo"}, keep_going=True)
    full = run({"order": "lifo"}, keep_going=True, symmetry=False)
    assert r.liveness == full.liveness == {"everyone_served": "violated", "released": "holds"}
    assert [f.unit for f in r.findings] == ["lasso"]


# --- properties that are not symmetric ------------------------------------------------------

def test_a_property_naming_a_member_is_checked_on_every_state() -> None:
    r = run({"order": "fifo", "named": True})
    full = run({"order": "fifo", "named": True}, symmetry=False)
    assert r.verdict == full.verdict == "ok" and r.liveness == full.liveness
    how = r.symmetry["liveness"]
    assert how["everyone_served"] == how["released"] == "on orbits"
    assert how["c0 waits ~> c0 enters"].startswith("checked on every state")
    assert "reads 'c0' by name" in how["c0 waits ~> c0 enters"]
    assert any("'c0 waits ~> c0 enters' checked on every state" in w for w in r.warnings)
    assert r.states == 146          # the safety search stays reduced
    text = " ".join(r.text().split())
    assert "decided on 146 orbits: everyone_served, released; on every state: c0 waits" in text


def test_a_property_that_tells_members_apart_by_order_is_checked_on_every_state() -> None:
    def system() -> System:
        s = lock(order="lifo")[0]
        s.liveness.clear()

        @s.eventually
        def first_client_enters(g: Any) -> bool:      # c0, by its place, not its name
            return g.instances()[1].phase.value == "critical"

        return s

    r = check(system())
    full = check(system(), symmetry=False)
    assert r.verdict == full.verdict and r.liveness == full.liveness
    assert "not the same on a state" in r.symmetry["liveness"]["first_client_enters"]


# --- the argument, on generated symmetric systems ---------------------------------------------

class Poke(Message): ...
class Ack(Message): ...


class Member(Component):
    hub = Port()
    s: int = 0
    poked: bool = False
    table: tuple = ()           # state -> (next by go, next by alt, go pokes the hub once)
    on_ack: tuple = ()          # state -> the next state when the hub's Ack comes

    @on(Ack)
    def acked(self, m):
        self.s = self.on_ack[self.s]

    @action(when=lambda self: self.table[self.s][0] >= 0)
    def go(self):
        nxt, _, poke = self.table[self.s]
        self.s = nxt
        if poke and not self.poked:
            self.poked = True
            self.hub.send(Poke())

    @action(when=lambda self: self.table[self.s][1] >= 0)
    def alt(self):
        self.s = self.table[self.s][1]


class Hub(Component):
    members = Port(many=True)
    pokes: int = 0

    @on(Poke)
    def poked(self, m):
        self.pokes = min(self.pokes + 1, 2)
        self.members.send(Ack(), to=m.sender)


def generated(table: tuple, n: int, kind: str, target: int, fairness: str,
              symmetric: bool, on_ack: tuple = (0, 1, 2)) -> System:
    s = System("generated", fairness=fairness)
    hub = s.add("hub", Hub)
    refs = [s.add(f"m{i}", Member, table=table, on_ack=on_ack) for i in range(n)]
    for r in refs:
        s.connect(r.hub, hub.members)
    if symmetric:
        s.symmetric(*refs)

    def some(g: Any) -> bool:
        return any(m.s == target for m in g.instances(Member))

    def p(g: Any) -> bool:
        if kind == "eventually":
            return all(m.s == target for m in g.instances(Member)) or g["hub"].pokes == 2
        return some(g)

    if kind == "eventually":
        s.eventually(p)
    elif kind == "always_eventually":
        s.always_eventually(p)
    else:
        s.leads_to(some, lambda g: all(m.s != target for m in g.instances(Member)), name="p")
    return s


STATES = 3
rows = st.tuples(st.integers(-1, STATES - 1), st.integers(-1, STATES - 1), st.booleans())


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(table=st.tuples(*[rows] * STATES), n=st.integers(2, 3),
       kind=st.sampled_from(["eventually", "always_eventually", "leads_to"]),
       target=st.integers(0, STATES - 1), fairness=st.sampled_from(["none", "weak", "strong"]),
       on_ack=st.tuples(*[st.integers(0, STATES - 1)] * STATES))
def test_generated_systems_reduced_and_unreduced_agree(table: tuple, n: int, kind: str,
                                                       target: int, fairness: str,
                                                       on_ack: tuple) -> None:
    def generated_(symmetric: bool) -> System:
        return generated(table, n, kind, target, fairness, symmetric, on_ack)

    reduced = assay.check(generated_(True), deadlock=False)
    full = assay.check(generated_(False), deadlock=False)
    assert reduced.verdict == full.verdict
    assert reduced.liveness == full.liveness
    if reduced.liveness:
        assert reduced.symmetry["liveness"] == {"p": "on orbits"}
    if reduced.violation is not None and reduced.violation.kind == "liveness":
        got = replayed(generated_(True), fairness, reduced)
        assert isinstance(got, Violation), got

    # the lemma: every bad end of the full graph (a state where a behaviour may stop, or in
    # a fair component of the region) is, as an orbit, a bad end of the quotient
    k = Kernel(generated_(True))
    sym = Symmetry(k)
    prop = k.system.liveness[0]
    search = Search()
    g = build_graph(k, search)
    _, _, ends = bad_ends(k, g, prop, fair_tasks(k, g))
    q = build_quotient(k, sym, search)
    _, _, qends = bad_ends(k, q, prop, OrbitTasks(k, q, sym))
    assert {sym.canon(g.states[v]) for v in ends} <= {q.states[v] for v in qends}


@pytest.mark.parametrize("order", ["fifo", "lifo"])
def test_a_constraint_cuts_the_orbits_as_it_cuts_the_states(order: str) -> None:
    def system() -> System:
        s = lock(order=order)[0]

        @s.constraint
        def short_queue(g: Any) -> bool:       # beyond it: checked, not explored (a stop)
            return len(g["server"].waiting) <= 1

        return s

    reduced, full = check(system()), check(system(), symmetry=False)
    assert reduced.verdict == full.verdict and reduced.liveness == full.liveness
    assert reduced.states < full.states
    if reduced.violation is not None and reduced.violation.kind == "liveness":
        assert isinstance(replayed(system(), "weak", reduced), Violation)


def test_renaming_a_task_is_renaming_the_state() -> None:
    """The events enabled in a permuted state are the permuted events of the state, task by
    task (`permute_task`: deliveries, actions), on every reachable state of the lock server
    and every permutation of its clients."""
    k = Kernel(lock(order="lifo")[0])
    sym = Symmetry(k)
    (g,) = sym.groups
    perms = []
    for q in itertools.permutations(g):
        p = list(sym.identity)
        for a, b in zip(g, q):
            p[a] = b
        perms.append(tuple(p))
    seen = {s for s, _ in k.initial_states()}
    todo = list(seen)
    checked = 0
    while todo:
        s = todo.pop()
        tasks = [k.fair_task(e)[0] for e in k.enabled_events(s) if k.fair_task(e)]
        for p in perms:
            other = sym.permute(s, p)
            theirs = sorted(k.fair_task(e)[0] for e in k.enabled_events(other) if k.fair_task(e))
            assert sorted(permute_task(sym, t, p) for t in tasks) == theirs
            checked += 1
        for _, t, _ in k.successors(s)[0]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    assert checked == 760 * 6


def test_an_orbit_too_large_sends_the_property_to_every_state(monkeypatch: Any) -> None:
    import assay.checker.symmetric_liveness as symmetric_liveness

    monkeypatch.setattr(symmetric_liveness, "ORBIT_CAP", 2)        # a client's ask: 3 tasks
    r = run({"order": "lifo"})
    full = run({"order": "lifo"}, symmetry=False)
    assert r.verdict == full.verdict == "violation" and r.liveness == full.liveness
    how = r.symmetry["liveness"]["everyone_served"]
    assert how.startswith("checked on every state: the orbit of") and "more than 2" in how
    assert any("'everyone_served' checked on every state" in w for w in r.warnings)


def test_an_elastic_pools_slots_decide_its_liveness_on_the_orbits() -> None:
    def system(symmetric: bool) -> System:
        s, _, _ = build(ROOT / "specs" / "elastic_pool.py", None, {"size": "2"})
        if symmetric:
            s.symmetric(*[n for n in s.instances if n.startswith("worker")])
        return s

    reduced, full = check(system(True)), check(system(False))
    assert reduced.verdict == full.verdict == "ok"
    assert reduced.liveness == full.liveness == {"all_done": "holds"}
    assert reduced.symmetry["liveness"] == {"all_done": "on orbits"}
    assert reduced.states < full.states == 2088
