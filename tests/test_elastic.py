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

from assay import Component, Message, Peer, Port, System, action, on, on_start, persistent
from assay.api import check, simulate
from assay.errors import SpecError
from assay.kernel import Kernel
from assay.kernel.faults import Faults
from assay.kernel.kernel import PartialWorld, World
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


def test_every_search_agrees_on_the_pool():
    from assay.checker import check as run_check

    system = build(GOOD, None, {"jobs": "2"})[0]
    system.liveness = []
    found = {name: run_check(Kernel(system), **opts) for name, opts in {
        "compact": {}, "full": {"full_states": True}, "dfs": {"strategy": "dfs"},
        "workers": {"workers": 2}}.items()}
    assert {r.verdict for r in found.values()} == {"ok"}
    assert len({r.states for r in found.values()}) == 1, {n: r.states for n, r in found.items()}
    bug = build(BUG, None, {"jobs": "2"})[0]
    lost = {name: run_check(Kernel(bug), **opts) for name, opts in {
        "compact": {}, "full": {"full_states": True}, "workers": {"workers": 2}}.items()}
    assert {(r.violation.name, len(r.steps)) for r in lost.values()} == {("no_job_lost", 8)}


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
    part = PartialWorld(k, dict(enumerate(s0[0])), [])   # what a runtime node's monitor sees
    assert part.instances(W) == []
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


# --- simulate, replay ---------------------------------------------------------------------------

def test_simulate_draws_spawns_and_retires_and_finds_the_lost_job():
    good = simulate(GOOD, runs=40, seed=1)
    assert good.ok and good.events > 0, good.text()
    bug = simulate(BUG, runs=40, seed=1)
    assert not bug.ok
    trace = bug.traces()[0]
    assert trace.verdict["name"] == "no_job_lost"
    assert any(e.get("message", {}).get("type") == "Retire" for e in trace.events)


def test_a_counterexample_with_spawns_and_retires_replays(tmp_path):
    r = check(BUG)
    path = tmp_path / "bug.json"
    r.trace.write(path)
    done = replay_trace(Trace.read(path), path)
    assert done.violation is not None and done.violation.name == "no_job_lost"
    kinds = [e["message"]["type"] for e in json.loads(path.read_text())["events"]
             if e["kind"] == "deliver"]
    assert "Spawn" in kinds and "Retire" in kinds


def test_the_same_search_under_any_hash_seed():
    code = (f"from assay.api import check; r = check({str(GOOD)!r}); "
            f"b = check({str(BUG)!r}); "
            "print(r.states, r.transitions, [s.event for s in b.steps])")
    outs = set()
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, check=True, timeout=120).stdout)
    assert len(outs) == 1, outs


# --- assay run: in one process, and across nodes ------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_run_spawns_and_retires_real_workers_and_the_run_conforms(seed):
    k = Kernel(build(GOOD)[0])
    report, _ = run_local(k, duration=20, seed=seed)
    assert report.ended == "quiescent" and not report.violations
    assert sorted(report.final["dispatcher"]["done"]) == [0, 1, 2]
    assert report.final["dispatcher"]["live"] == frozenset()
    spawned = [e for e in report.events if e.get("message", {}).get("type") == "Spawn"]
    assert spawned
    fresh = Kernel(build(GOOD)[0])
    done = replay_checked(fresh, report.events, find_initial(fresh, None))
    assert done.violation is None and len(done.steps) == len(report.events)


def test_a_run_restarted_on_its_state_directory_keeps_dormant_slots_dormant(tmp_path):
    system = build(GOOD, None, {"jobs": "1"})[0]
    report, rt = run_local(Kernel(system), duration=20, seed=0, state_dir=tmp_path / "st")
    assert report.ended == "quiescent" and not report.violations
    report2, rt2 = run_local(Kernel(build(GOOD, None, {"jobs": "1"})[0]), duration=20,
                             seed=0, state_dir=tmp_path / "st")
    assert report2.ended == "quiescent" and not report2.violations, report2.violations
    k = rt2.kernel
    assert rt2.node.local["worker0"] == k.dormant[k.index["worker0"]]
    assert rt2.node.local["worker1"] == k.dormant[k.index["worker1"]]
    # both lives, the restart between them (crash and restart of every instance) included
    trace = rt2.trace(report2, str(GOOD), "system", {"jobs": 1})
    assert any(e["kind"] == "restart" and e["instance"] == "worker0" for e in trace.events)
    assert replay_trace(trace, tmp_path / "t.json").violation is None


@pytest.mark.e2e
def test_deployed_workers_are_spawned_on_their_own_nodes(children, tmp_path):
    from runtime_support import free_ports, replay, write_deployment

    ports = free_ports(3)
    dep = write_deployment(tmp_path / "deploy.toml", "elastic_pool.py", {
        "n1": (ports[0], ["client", "dispatcher"]), "n2": (ports[1], ["worker0"]),
        "n3": (ports[2], ["worker1"])})
    trace = tmp_path / "run.json"
    r = children.run("run", "--deploy", dep, "--json", "--trace-out", trace, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ended"] == "quiescent" and doc["violations"] == []
    assert sorted(doc["final"]["dispatcher"]["done"]) == [0, 1, 2]
    events = json.loads(trace.read_text())["events"]
    spawned = {e["to"] for e in events if e.get("message", {}).get("type") == "Spawn"}
    assert "worker0" in spawned                 # a frame from n1 woke the slot on n2
    done = replay(children, trace)
    assert len(done["events"]) == doc["steps"]


# --- a pool declared wrong: a SpecError at the line, with the fix -------------------------------

class NotOwner(Component):
    out = Port()
    live: frozenset[Peer] = frozenset()


class NoLive(Component):
    workers = Port(many=True)


def _declare(owner_cls: type, **kw):
    s = System("bad")
    o = s.add("o", owner_cls)
    args = {"size": 2, "owner": getattr(o, "workers" if owner_cls is not NotOwner else "out"),
            "port": "boss", "live": "live"}
    args.update(kw)
    s.pool("w", W, **args)            # the line the error names
    return s


@pytest.mark.parametrize("owner_cls, kw, says", [
    (NotOwner, {}, "is a single port"),
    (NoLive, {}, "has no field 'live'"),
    (Boss, {"size": 0}, "at least 1"),
    (Boss, {"port": "nope"}, "W has no port 'nope'"),
    (Boss, {"live": "size"}, "not a set of peers"),
])
def test_a_wrong_declaration_is_a_spec_error_at_its_line(owner_cls, kw, says):
    with pytest.raises(SpecError) as e:
        _declare(owner_cls, **kw)
    assert says in str(e.value)
    assert e.value.location is not None and e.value.location.line is not None
    assert Path(e.value.location.file).name == "test_elastic.py"


class Stray(Component):
    workers = Port(many=True)
    live: frozenset[Peer] = frozenset()
    go: bool = True

    @action(when=lambda self: self.go)
    def grow(self):
        self.go = False
        self.spawn("w", colour=1)


def test_spawning_a_field_the_class_does_not_have_is_a_spec_error_naming_the_line():
    s = System("stray")
    o = s.add("o", Stray)
    s.pool("w", W, size=1, owner=o.workers, port="boss", live="live")
    with pytest.raises(SpecError) as e:
        check(s)
    assert "field 'colour', which W does not have" in str(e.value)


# --- timers, start hooks and crashes of slots ---------------------------------------------------

class Tick(Message): ...


class Ticker(Component):
    boss = Port()
    ticks: int = 0

    @on_start
    def arm(self):
        self.after(1, Tick())

    @on(Tick)
    def tick(self, m):
        self.ticks += 1


class Owner(Component):
    workers = Port(many=True)
    live: frozenset[Peer] = frozenset()
    spawned: bool = False
    retired: bool = False

    @action(when=lambda self: not self.spawned)
    def grow(self):
        self.spawned = True
        self.spawn("t")

    @action(when=lambda self: self.spawned and not self.retired)
    def shrink(self):
        self.retired = True
        self.retire(Peer("t0"))


def ticker_kernel(faults: Faults | None = None) -> Kernel:
    s = System("tickers")
    o = s.add("o", Owner)
    s.pool("t", Ticker, size=1, owner=o.workers, port="boss", live="live")
    return Kernel(s, faults)


def test_a_spawn_runs_the_start_hook_and_a_retire_drops_the_slots_timers():
    k = ticker_kernel()
    (s, _), = k.initial_states()
    assert k.pending_timers(s) == []                 # a dormant slot did not start
    s = _deliver(k, _fire(k, s, "o", "grow").state, Spawn)
    assert k.pending_timers(s) == [("t0", 1, Tick())]
    s = _deliver(k, _fire(k, s, "o", "shrink").state, Retire)
    assert k.pending_timers(s) == []
    assert k.local_values(s, "t0") == {"ticks": None}


def test_a_dormant_slot_that_crashes_restarts_dormant():
    k = ticker_kernel(Faults(crash=1))
    (s, _), = k.initial_states()
    s = k.step(s, {"kind": "crash", "instance": "t0"}).state
    assert k.crashed(s) == ["t0"]
    s = k.step(s, {"kind": "restart", "instance": "t0", "choice": 0}).state
    assert s[0][k.index["t0"]] == k.dormant[k.index["t0"]]
    s = _deliver(k, _fire(k, s, "o", "grow").state, Spawn)     # and is spawned as usual
    assert k.local_values(s, "t0") == {"ticks": 0}


class DurableOwner(Component):
    workers = Port(many=True)
    live: frozenset[Peer] = persistent(frozenset())
    spawned: bool = persistent(False)
    retired: bool = persistent(False)

    grow = Owner.grow
    shrink = Owner.shrink


def test_an_owner_that_crashes_needs_its_live_field_persistent():
    def system(cls: type) -> System:
        s = System("tickers")
        o = s.add("o", cls)
        s.pool("t", Ticker, size=1, owner=o.workers, port="boss", live="live")
        s.terminal(lambda g: True)
        return s
    forgets = check(system(Owner), faults="crash=1")
    assert forgets.verdict == "violation" and forgets.violation.kind == "pool", forgets.text()
    assert "retires t0, which is not live" in forgets.violation.message
    assert any("o restarts" in line for line in forgets.text().splitlines())
    durable = check(system(DurableOwner), faults="crash=1")
    assert durable.verdict == "ok" and durable.states == 38, durable.text()


def test_a_long_run_that_forgets_its_interned_states_keeps_dormant_slots_dormant():
    k = Kernel(boss_system())
    names = {n: k.local_initial(n) for n in ("b", "w0", "w1")}
    step = k.local_actions("b", names["b"])[0][1]            # b grows: w0 is sent a Spawn
    names["b"] = step.local
    spawn = step.sends[0]
    names["w0"] = k.local_deliver(names["w0"], spawn).local
    for _ in range(2):                   # forget everything but the current local states
        names = k.forget(names)
        assert names["w1"] == k.dormant[k.index["w1"]] != names["w0"]
        assert k.local_actions("w1", names["w1"]) == []
        assert k.local_view("w0", names["w0"]) == {"level": 1, "who": Peer("b")}
        assert k.local_accepts(names["w1"], spawn.__class__("b", "workers", "w1", "boss",
                                                             Ping(1))) is False
