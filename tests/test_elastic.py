"""Elastic pools (`s.pool`, `self.spawn`, `self.retire`): one kernel semantics, seen by every
engine — `check` (exhaustive, with symmetry), `simulate`, `replay`, `assay run` in one process
and `assay run --deploy` across nodes — on specs/elastic_pool.py (no bug) and its twin
specs/elastic_pool_bug_retire_busy.py (a busy worker retired: its job is lost)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay import Component, Message, Peer, Port, System, action, on
from assay.api import check, simulate
from assay.errors import SpecError
from assay.kernel import Kernel
from assay.kernel.kernel import World
from assay.kernel.trace import Trace, find_initial, replay_checked, replay_trace
from assay.model.load import build
from assay.model.pool import Retire, Retired, Spawn
from assay.runtime.local import run_local

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOOD = SPECS / "elastic_pool.py"
BUG = SPECS / "elastic_pool_bug_retire_busy.py"


# --- a small pool, built here -------------------------------------------------------------------

class Ping(Message):
    n: int


class Pong(Message):
    n: int


class Boss(Component):
    workers = Port(many=True)
    live: frozenset[Peer] = frozenset()
    size: int = 2
    bounded: bool = True
    pinged: bool = False
    pongs: tuple[tuple[Peer, int], ...] = ()

    @action(when=lambda self: not self.bounded or len(self.live) < self.size)
    def grow(self):
        self.spawn("w", level=len(self.live) + 1, who=Peer(self.name))

    @action(when=lambda self: self.live and not self.pinged)
    def ping(self):
        self.pinged = True
        self.workers.broadcast(Ping(len(self.live)))

    @on(Pong)
    def pong(self, m):
        self.pongs = self.pongs + ((m.sender, m.n),)


class W(Component):
    boss = Port()
    level: int = 0
    who: Peer | None = None

    @on(Ping)
    def ping(self, m):
        self.boss.send(Pong(self.level))


def boss_system(size: int = 2, bounded: bool = True) -> System:
    s = System("small_pool", network="fifo")
    b = s.add("b", Boss, size=size, bounded=bounded)
    s.pool("w", W, size=size, owner=b.workers, port="boss", live="live")

    @s.always
    def within(g):
        return len(g["b"].live) <= size

    s.terminal(lambda g: True)
    return s


# --- check --------------------------------------------------------------------------------------

def test_check_explores_every_spawn_and_retire_and_the_pool_holds():
    r = check(GOOD)
    assert r.verdict == "ok", r.text()
    assert r.states == 2088                # exact: the state count is part of the contract
    assert not [n for n in r.text().splitlines() if "vacuous" in n]


def test_check_finds_the_job_lost_when_a_busy_worker_is_retired():
    r = check(BUG)
    assert r.verdict == "violation" and r.violation.name == "no_job_lost", r.text()
    text = r.text()
    assert len(r.steps) == 8
    assert "fires shrink" in text and "Retire(pool='worker')" in text
    assert "worker0.current: 0 -> None" in text          # the retire dropped job 0


def test_every_checker_agrees_on_the_pool():
    counts = {check(GOOD, strategy=strategy, params={"jobs": 2}).states
              for strategy in ("bfs", "dfs")}
    full = check(GOOD, params={"jobs": 2}, max_memory=None).states
    assert len(counts) == 1 and full in counts


def test_symmetric_slots_reduce_the_search_to_orbits_with_the_same_verdict():
    def sys_(spec: Path, symmetric: bool) -> System:
        s, _, _ = build(spec, None, {"size": "3"})
        s.liveness = []                 # liveness is checked unreduced: leave it out here
        if symmetric:
            s.symmetric(*[n for n in s.instances if n.startswith("worker")])
        return s
    plain, reduced = check(sys_(GOOD, False)), check(sys_(GOOD, True))
    assert plain.verdict == reduced.verdict == "ok"
    assert (plain.states, reduced.states) == (6762, 1886)
    bug = check(sys_(BUG, True))
    assert bug.verdict == "violation" and bug.violation.name == "no_job_lost"
    assert len(bug.steps) == 8


def test_a_spawn_beyond_the_bound_is_a_violation_blamed_on_the_spawner():
    r = check(boss_system(size=2, bounded=False))
    assert r.verdict == "violation", r.text()
    v = r.violation
    assert v.kind == "pool" and v.blame == "b.grow"
    assert "all 2 slots of the pool live" in v.message
    ok = check(boss_system(size=2, bounded=True))
    assert ok.verdict == "ok", ok.text()


# --- the kernel: dormant slots, spawn values, peers ---------------------------------------------

def _fire(k: Kernel, state, instance: str, action_name: str):
    ev = k.event_id(state, {"kind": "action", "instance": instance, "action": action_name,
                            "arg": None})
    return k.step(state, ev)


def _deliver_all(k: Kernel, state):
    """Deliver every message in flight, oldest first, until none is enabled."""
    while True:
        evs = [e for e in k.enabled_events(state) if e >= 0]
        if not evs:
            return state
        state = k.step(state, evs[0]).state


def test_a_dormant_slot_has_no_event_until_spawned_and_then_has_the_spawns_values():
    k = Kernel(boss_system())
    (s0, _), = k.initial_states()
    assert [k.describe(e) for e in k.enabled_events(s0)] == ["b fires grow"]
    assert k.local_values(s0, "w0") == {"level": None, "who": None}
    assert World(k, s0).instances(W) == []             # a dormant slot is no instance now
    r = _fire(k, s0, "b", "grow")
    assert [(e.dst, e.message) for e in r.sends] == [
        ("w0", Spawn("w", (("level", "1"), ("who", '"b"'))))]
    assert k.local_values(r.state, "b")["live"] == frozenset({"w0"})
    s = _deliver_all(k, r.state)
    assert k.local_values(s, "w0") == {"level": 1, "who": Peer("b")}
    assert [v.name for v in World(k, s).instances(W)] == ["w0"]
    s = _deliver_all(k, _fire(k, s, "b", "grow").state)       # the next slot, next value
    assert k.local_values(s, "w1") == {"level": 2, "who": Peer("b")}


def test_broadcast_and_peers_reach_only_the_live_slots():
    k = Kernel(boss_system(size=3))
    (s, _), = k.initial_states()
    s = _deliver_all(k, _fire(k, s, "b", "grow").state)
    r = _fire(k, s, "b", "ping")
    assert [(e.dst, e.message) for e in r.sends] == [("w0", Ping(1))]
    s = _deliver_all(k, r.state)
    assert k.local_values(s, "b")["pongs"] == ((Peer("w0"), 1),)


def _pool_kernel(**params: str) -> tuple[Kernel, object]:
    system, _, _ = build(GOOD, None, params)
    return Kernel(system), sys.modules[system.instances["dispatcher"].__module__]


def _deliver(k: Kernel, state, mtype: type):
    ev = next(e for e in k.enabled_events(state)
              if e >= 0 and isinstance(k.envs[e].message, mtype))
    return k.step(state, ev).state


def test_a_message_to_a_dormant_slot_waits_in_flight_for_its_spawn():
    # on an unordered network a job may overtake its worker's spawn: it is not delivered
    # (a receive guard's DEFERRED) until the spawn has been
    k, spec = _pool_kernel(jobs="1", size="1")
    (s, _), = k.initial_states()
    s = _fire(k, s, "client", "submit").state
    s = _deliver(k, s, spec.Submit)
    s = _fire(k, s, "dispatcher", "grow").state
    s = _fire(k, s, "dispatcher", "dispatch").state
    assert sorted(type(e.message).__name__ for e in k.in_flight(s)) == ["Job", "Spawn"]
    assert [k.describe(e) for e in k.enabled_events(s) if e >= 0] == [
        "worker0 receives Spawn(pool='worker', init=()) from dispatcher (on boss)"]
    s = _deliver(k, s, Spawn)
    s = _deliver(k, s, spec.Job)
    assert k.local_values(s, "worker0") == {"current": 0}


def test_retire_is_acknowledged_and_the_owner_forgets_the_slot_only_then():
    k, spec = _pool_kernel(jobs="1", size="1")
    (s, _), = k.initial_states()
    s = _deliver(k, _fire(k, s, "client", "submit").state, spec.Submit)
    s = _deliver(k, _fire(k, s, "dispatcher", "grow").state, Spawn)
    s = _deliver(k, _fire(k, s, "dispatcher", "dispatch").state, spec.Job)
    s = _deliver(k, _fire(k, s, "worker0", "finish").state, spec.Done)
    s = _fire(k, s, "dispatcher", "shrink").state
    assert k.local_values(s, "dispatcher")["live"] == frozenset({"worker0"})   # retiring
    s = _deliver(k, s, Retire)
    assert k.local_values(s, "worker0") == {"current": None}
    assert [type(e.message) for e in k.in_flight(s)] == [Retired]
    assert k.enabled_events(s) == [e for e in k.enabled_events(s) if e >= 0]  # dormant: no action
    s = _deliver(k, s, Retired)
    assert k.local_values(s, "dispatcher")["live"] == frozenset()
    assert k.is_terminal(s) and not k.enabled_events(s)
