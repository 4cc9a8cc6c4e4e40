"""Composites (issue 14, item 1): a system used as a component of another, in every engine.

`s.add("shard0", kv_shard)` flattens the system `kv_shard` builds into the outer one under
hierarchical names (`shard0.primary`); only its exported ports are reachable from outside;
its properties read its own world.  The example is specs/kv_composite.py (two shards of a
replicated store behind a router) and its bug twin specs/kv_composite_bug_early_ack.py."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import assay
from assay import Component, Message, Port, System, action, invariant, on
from assay import protocol as p
from assay.errors import SpecError, UsageError
from assay.kernel.trace import Trace, replay_trace
from assay.model.load import load_module
from assay.model.system import PortRef

ROOT = Path(__file__).resolve().parent.parent
GOOD = ROOT / "specs" / "kv_composite.py"
BUG = ROOT / "specs" / "kv_composite_bug_early_ack.py"
kv = load_module(GOOD)


def cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "assay", *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, cwd=ROOT)
    assert "Traceback" not in r.stderr, r.stderr
    return r


# --- building: names, connections, exports, encapsulation -------------------------------------

def test_a_composite_is_flattened_under_hierarchical_names():
    s = kv.system()
    assert list(s.instances) == ["client", "router", "shard0.primary", "shard0.backup",
                                 "shard1.primary", "shard1.backup"]
    ends = {(str(c.a), str(c.b)) for c in s.connections}
    assert ("shard0.primary.backup", "shard0.backup.primary") in ends      # copied inside
    assert ("router.shard0", "shard0.primary.client") in ends              # via the export
    assert set(s.composites) == {"shard0", "shard1"}
    assert s.composites["shard0"].instances == ("shard0.primary", "shard0.backup")
    assert [pr.name for pr in s.properties] == ["shard0.in_sync", "shard1.in_sync",
                                                 "acknowledged_writes_are_on_a_backup"]


def test_nested_composites_give_dotted_paths_and_exports_pass_through():
    def outer_shard() -> System:
        s = System("pair", network="fifo")
        inner = s.add("inner", kv.kv_shard)
        s.export("client", inner.client)          # an export of an export
        return s

    s = System("top", network="fifo")
    router = s.add("router", kv.Router)
    a = s.add("a", outer_shard)
    s.connect(router.shard0, a.client)
    assert "a.inner.primary" in s.instances and "a.inner" in s.composites
    assert a.client == PortRef("a.inner.primary", "client", False)
    assert [pr.name for pr in s.properties] == ["a.inner.in_sync"]


def test_a_nested_composites_property_reads_its_own_world():
    seen: list[tuple[list[str], str]] = []

    def shard():
        s = kv.kv_shard()

        @s.always
        def own(g):
            seen.append(([v.name for v in g.instances()], g["backup"].name))
            return g[g["primary"].name] is not None      # a full name is accepted too

        return s

    def pair():
        s = System("pair", network="fifo")
        s.export("client", s.add("inner", shard).client)
        return s

    s = System("top", network="fifo")
    router = s.add("router", kv.Router)
    s.connect(s.add("client", kv.Client).kv, router.client)
    s.connect(router.shard0, s.add("a", pair).client)
    s.connect(router.shard1, s.add("b", shard).client)
    assert assay.check(s, deadlock=False).verdict == "ok"
    assert (["a.inner.primary", "a.inner.backup"], "a.inner.backup") in seen
    assert (["b.primary", "b.backup"], "b.backup") in seen
    assert {len(names) for names, _ in seen} == {2}


def test_an_inner_port_that_is_not_exported_is_unreachable_from_outside():
    s = System("t", network="fifo")
    router = s.add("router", kv.Router)
    shard = s.add("shard0", kv.kv_shard)
    with pytest.raises(SpecError, match="exports no port 'backup'") as e:
        _ = shard.backup
    assert "client" in str(e.value)
    with pytest.raises(SpecError, match="inside composite 'shard0' and not exported") as e:
        s.connect(router.shard0, PortRef("shard0.backup", "primary", False))
    assert "client" in str(e.value)
    with pytest.raises(SpecError, match="composite 'shard0', not one of its exported ports"):
        s.connect(router.shard0, shard)


def test_an_exported_port_left_unconnected_is_named_by_its_export():
    s = System("t", network="fifo")
    s.add("shard0", kv.kv_shard)
    with pytest.raises(SpecError, match="not connected") as e:
        assay.check(s)
    assert "exported as shard0.client" in str(e.value)


def test_a_composite_cannot_export_what_an_inner_composite_hides():
    s = System("pair", network="fifo")
    s.add("inner", kv.kv_shard)
    with pytest.raises(SpecError, match="inside composite 'inner' and not exported"):
        s.export("backup", PortRef("inner.backup", "primary", False))


def test_a_top_level_name_cannot_collide_with_an_inner_one():
    s = System("t", network="fifo")
    s.add("shard0", kv.kv_shard)
    with pytest.raises(SpecError, match="not a valid name"):
        s.add("shard0.primary", kv.Primary)
    with pytest.raises(SpecError, match="added twice"):
        s.add("shard0", kv.Primary)
    with pytest.raises(SpecError, match="added twice"):
        s.add("shard0", kv.kv_shard)


def test_bad_composites_are_spec_errors_that_say_what_to_do():
    s = System("t", network="fifo")
    with pytest.raises(SpecError, match="returned int, not a System"):
        s.add("x", lambda: 3)
    with pytest.raises(SpecError, match="on the 'unordered' network"):
        s.add("x", lambda: _unordered())
    with pytest.raises(SpecError, match="unexpected keyword"):
        s.add("x", kv.kv_shard, backups=2)
    built = kv.kv_shard()
    s.add("x", built)
    with pytest.raises(SpecError, match="already a composite"):
        s.add("y", built)
    with pytest.raises(SpecError, match="already a composite of 't'"):
        built.add("late", kv.Backup)
    with pytest.raises(SpecError, match="exported twice"):
        inner = System("i", network="fifo")
        pr = inner.add("p", kv.Primary)
        inner.export("c", pr.client)
        inner.export("c", pr.client)
    with pytest.raises(SpecError, match="not a port"):
        System("i").export("c", System("j").add("p", kv.Primary))


def _unordered() -> System:
    s = System("u")
    s.add("p", kv.Primary)
    return s


class Ping(Message): ...


class Hub(Component):
    peers = Port(many=True)
    seen: int = 0

    @on(Ping)
    def ping(self, m):
        self.seen += 1


class Pinger(Component):
    hub = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.hub.send(Ping())


def test_an_exported_many_port_stays_many():
    def hub() -> System:
        s = System("hub")
        s.export("peers", s.add("h", Hub).peers)
        return s

    s = System("t")
    h = s.add("hub", hub)
    for i in range(3):
        s.connect(s.add(f"p{i}", Pinger).hub, h.peers)
    assert h.peers.many
    r = assay.check(s, deadlock=False)
    assert r.verdict == "ok"
    assert r.states == 27         # each ping unsent, in flight or counted by the one hub


# --- check: the same counts as the flat system written by hand; the bug found --------------

def flat_by_hand(writes: int = 2) -> System:
    s = System("kv_flat", network="fifo")
    client = s.add("client", kv.Client, writes=writes)
    router = s.add("router", kv.Router)
    s.connect(client.kv, router.client)
    for k in kv.KEYS:
        primary = s.add(f"shard{k}_primary", kv.Primary)
        s.connect(primary.backup, s.add(f"shard{k}_backup", kv.Backup).primary)
        s.connect(getattr(router, f"shard{k}"), primary.client)

    for k in kv.KEYS:
        s.always(lambda g, k=k: g[f"shard{k}_primary"].busy
                 or g[f"shard{k}_backup"].value == g[f"shard{k}_primary"].value)

    @s.always
    def durable(g):
        c = g["client"]
        return g["shard0_backup"].value >= c.acked0 and g["shard1_backup"].value >= c.acked1

    @s.terminal
    def all_written(g):
        return g["client"].written == writes and not g["client"].waiting

    return s


@pytest.mark.parametrize("writes", [1, 2, 3])
def test_check_explores_exactly_the_states_of_the_flat_system(writes):
    comp = assay.check(GOOD, writes=writes)
    flat = assay.check(flat_by_hand(writes))
    assert comp.verdict == flat.verdict == "ok"
    assert (comp.states, comp.transitions) == (flat.states, flat.transitions)
    assert comp.reason == "exhausted"


def test_check_finds_the_early_ack_in_the_shard_with_its_hierarchical_name(tmp_path):
    r = assay.check(BUG)
    assert r.verdict == "violation"
    assert r.violation.name == "shard0.in_sync"
    assert [s.event_json.get("to") or s.event_json.get("instance") for s in r.steps] == \
        ["client", "router", "shard0.primary"]
    # the outer property is broken too, a step later, once the acknowledgement is back
    r = assay.check(BUG, keep_going=True)
    assert {f.violation.name for f in r.findings} >= {"shard0.in_sync",
                                                       "acknowledged_writes_are_on_a_backup"}


def test_a_composites_property_reads_only_its_own_world():
    seen: list[list[str]] = []

    def shard() -> System:
        s = kv.kv_shard()

        @s.always
        def own(g):
            seen.append([v.name for v in g.instances()])
            return g["primary"].name.endswith(".primary") and not g.crashed()

        return s

    s = System("t", network="fifo")
    router = s.add("router", kv.Router)
    s.connect(s.add("client", kv.Client).kv, router.client)
    for k in kv.KEYS:
        s.connect(getattr(router, f"shard{k}"), s.add(f"shard{k}", shard).client)
    assert assay.check(s, deadlock=False).verdict == "ok"
    assert ["shard0.primary", "shard0.backup"] in seen
    assert ["shard1.primary", "shard1.backup"] in seen
    assert all(len(names) == 2 for names in seen)


class Worker(Component):
    out = Port()
    done: bool = False

    @action(when=lambda self: not self.done)
    def work(self):
        self.done = True


def test_a_composites_terminal_states_need_the_outer_ones_too():
    def part() -> System:
        s = System("part")
        s.add("w", Worker)

        @s.terminal
        def finished(g):
            return g["w"].done

        return s

    s = System("t")
    s.add("a", part)
    s.add("lone", Worker)
    assert assay.check(s).verdict == "ok"            # every part that says when it is done
    s.add("b", part)

    @s.terminal
    def never(g):                                    # the outer part is never final
        return False

    r = assay.check(s)
    assert r.verdict == "violation" and r.violation.kind == "deadlock"


def test_a_composites_fairness_covers_only_its_own_instances():
    def part() -> System:
        s = System("part")
        s.add("w", Worker)
        s.fair("strong", Worker)
        return s

    s = System("t")
    s.add("a", part)
    s.add("lone", Worker)
    assert ("a.w", "strong") in s.fair_rules
    assert not any(target is Worker for target, _ in s.fair_rules)


def pinged_hub(pingers: int = 2) -> System:
    """A hub and its pingers, interchangeable; every ping is eventually counted."""
    s = System("pinged_hub", fairness="weak")
    hub = s.add("hub", Hub)
    names = []
    for i in range(pingers):
        pinger = s.add(f"p{i}", Pinger)
        s.connect(pinger.hub, hub.peers)
        names.append(pinger)
    s.symmetric(*names)

    @s.eventually
    def all_counted(g):
        return g["hub"].seen == len(g.instances(Pinger))

    return s


def test_a_composites_symmetry_and_liveness_are_carried_over():
    s = System("t")
    for k in range(2):
        s.add(f"part{k}", pinged_hub)
    assert [g for g, _ in s.symmetries] == [("part0.p0", "part0.p1"), ("part1.p0", "part1.p1")]
    assert [pr.name for pr in s.liveness] == ["part0.all_counted", "part1.all_counted"]
    assert ("part0.hub", "weak") in s.fair_rules         # the composite's default fairness
    r = assay.check(s, deadlock=False, symmetry=False)
    assert r.verdict == "ok" and r.states == 9 * 9       # each part alone: 9 states
    assert r.liveness == {"part0.all_counted": "holds", "part1.all_counted": "holds"}
    r = assay.check(s, deadlock=False)                   # liveness on the orbits too
    assert r.verdict == "ok" and r.symmetry["applied"] and r.states == 6 * 6    # orbits
    assert r.liveness == {"part0.all_counted": "holds", "part1.all_counted": "holds"}
    assert set(r.symmetry["liveness"].values()) == {"on orbits"}
    s.liveness.clear()
    r = assay.check(s, deadlock=False)
    assert r.verdict == "ok" and r.symmetry["applied"] and r.states == 6 * 6    # orbits


def test_symmetric_members_need_the_same_fairness_of_their_own():
    def part(fair_one: bool) -> System:
        s = System("part")
        hub = s.add("hub", Hub)
        ps = [s.add(f"p{i}", Pinger) for i in range(2)]
        for x in ps:
            s.connect(x.hub, hub.peers)
        s.symmetric(*ps)
        s.fair("weak", *(ps[:1] if fair_one else ps))
        return s

    assert assay.check(part(False), deadlock=False).symmetry["applied"]
    with pytest.raises(SpecError, match="a fairness declaration names 'p0'"):
        assay.check(part(True), deadlock=False)


def test_a_composites_liveness_property_that_fails_is_found_under_its_name():
    def overcounted() -> System:
        s = pinged_hub()

        @s.eventually
        def one_too_many(g):           # never: the hub counts each of its pingers once
            return g["hub"].seen > len(g.instances(Pinger))

        return s

    s = System("t")
    s.add("part", overcounted)
    r = assay.check(s, deadlock=False)
    assert r.verdict == "violation" and r.violation.name == "part.one_too_many"


def wrapped(spec: str) -> tuple[System, System]:
    """A shipped spec's system, and an outer system holding it whole as composite `part`."""
    fn = load_module(ROOT / "specs" / spec).system
    inner = fn()
    outer = System("outer", network=inner.network, fairness=inner.fairness)
    outer.add("part", fn)
    return inner, outer


@pytest.mark.parametrize("spec", ["two_phase_commit.py", "lock_server.py", "bank_transfer.py",
                                  "tla_twophase.py", "exactly_once_link.py",
                                  "provenance_interceptor.py"])
def test_a_whole_spec_used_as_a_composite_explores_the_same_states(spec):
    inner, outer = wrapped(spec)
    a, b = assay.check(inner), assay.check(outer)
    assert a.verdict == b.verdict == "ok"
    assert (a.states, a.transitions, a.depth) == (b.states, b.transitions, b.depth)
    assert b.liveness == {f"part.{k}": v for k, v in a.liveness.items()}


@pytest.mark.parametrize("spec", ["two_phase_commit_bug_majority.py", "lock_server_bug_priority.py",
                                  "bank_transfer_bug_overdraft.py",
                                  "exactly_once_link_bug_no_dedup.py"])
def test_a_bug_twin_used_as_a_composite_shows_the_same_bug(spec):
    inner, outer = wrapped(spec)
    a, b = assay.check(inner), assay.check(outer)
    assert a.verdict == b.verdict == "violation"
    assert b.violation.kind == a.violation.kind and len(b.steps) == len(a.steps)
    assert b.violation.blame in (a.violation.blame, f"part.{a.violation.blame}")


# --- simulate, replay ---------------------------------------------------------------------------

def test_simulate_runs_the_composite_and_finds_the_bug():
    ok = assay.simulate(GOOD, runs=30, seed=1)
    assert not ok.failures
    bad = assay.simulate(BUG, runs=30, seed=1)
    assert bad.failures
    assert {f.violation["name"] for f in bad.failures} <= {"shard0.in_sync", "shard1.in_sync",
                                                           "acknowledged_writes_are_on_a_backup"}


def test_a_trace_with_hierarchical_names_replays(tmp_path):
    trace = tmp_path / "bug.json"
    r = cli("check", BUG, "--trace-out", trace)
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(trace.read_text())
    assert "shard0.primary" in doc["initial"]
    assert doc["events"][-1]["to"] == "shard0.primary"
    r = cli("replay", trace, "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["reproduced"] is True, out


# --- verify: the boundary ----------------------------------------------------------------------

def test_verify_proves_the_composite_and_groups_its_connections():
    report = assay.verify(GOOD)
    assert report.verdict == "proved", [o for o in report.obligations if o.verdict != "proved"]
    groups = {o.component: o.target for o in report.obligations
              if o.kind == "compatibility"}
    assert groups["shard0 boundary"] == "router.shard0 ~ shard0.client"
    assert groups["shard1 boundary"] == "router.shard1 ~ shard1.client"
    assert groups["shard0"] == "shard0.primary.backup ~ shard0.backup.primary"
    assert groups["connection"] == "client.kv ~ router.client"
    assert report.composites[0] == ("composite shard0 (kv_shard): shard0.primary (Primary), "
                                    "shard0.backup (Backup); exports client = "
                                    "shard0.primary.client")
    assert "composite shard1 (kv_shard)" in report.text()


class Reader(Message): ...


class SloppyRouter(Component):
    """Sends a shard two puts without waiting: against the shard's protocol."""
    shard0 = Port(p.loop(lambda again: p.send(kv.Put) >> p.send(kv.Put) >> p.recv(kv.PutAck)
                         >> again))
    sent: int = 0

    @action(when=lambda self: self.sent < 2)
    def put(self):
        self.sent += 1
        self.shard0.send(kv.Put(0, self.sent))

    @on(kv.PutAck)
    def ack(self, m):
        pass


def test_verify_refutes_a_protocol_mismatch_at_the_boundary():
    s = System("t", network="fifo")
    router = s.add("router", SloppyRouter)
    s.connect(router.shard0, s.add("shard0", kv.kv_shard).client)
    report = assay.verify(s)
    boundary = [o for o in report.obligations if o.component == "shard0 boundary"]
    assert [o.verdict for o in boundary] == ["refuted"]
    assert boundary[0].target == "router.shard0 ~ shard0.client"
    inside = [o for o in report.obligations if o.component == "shard0"]
    assert [o.verdict for o in inside] == ["proved"]


class StrictPrimary(kv.Primary):
    """A primary that assumes every value written is positive (a port contract)."""
    client = Port(kv.WRITER.dual(), where={kv.Put: lambda m: m.value > 0})


class PositiveWriter(Component):
    """Writes 1, 2, ... to one shard, and guarantees so on its port."""
    shard0 = Port(kv.WRITER, where={kv.Put: lambda m: m.value > 0})
    sent: int = 0
    waiting: bool = False
    invariant(lambda self: self.sent >= 0)

    @action(when=lambda self: not self.waiting and self.sent < 2)
    def put(self):
        self.sent += 1
        self.waiting = True
        self.shard0.send(kv.Put(0, self.sent))

    @on(kv.PutAck)
    def ack(self, m):
        self.waiting = False


class CarelessWriter(PositiveWriter):
    """The same writer, guaranteeing nothing on its port."""
    shard0 = Port(kv.WRITER)


def strict_shard():
    s = System("strict_shard", network="fifo")
    primary = s.add("primary", StrictPrimary)
    s.connect(primary.backup, s.add("backup", kv.Backup).primary)
    s.export("client", primary.client)
    return s


@pytest.mark.parametrize("writer, verdict", [(CarelessWriter, "refuted"),
                                             (PositiveWriter, "proved")])
def test_verify_proves_or_refutes_a_port_contract_at_the_boundary(writer, verdict):
    s = System("t", network="fifo")
    s.connect(s.add("writer", writer).shard0, s.add("shard0", strict_shard).client)
    contracts = [o for o in assay.verify(s).obligations if o.kind == "contract"]
    assert [(o.component, o.target, o.verdict) for o in contracts] == [
        ("shard0 boundary", "writer.shard0 ~ shard0.client", verdict)]


# --- run: locally, and deployed with a composite placed whole --------------------------------

def test_assay_run_runs_the_composite():
    r = cli("run", GOOD, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["violations"] == []
    final = doc["final"]
    assert final["shard0.backup"]["value"] == final["shard0.primary"]["value"]
    assert final["client"]["written"] == 2


def test_placing_a_composite_places_every_instance_inside_it(tmp_path):
    from runtime_support import write_deployment

    from assay.runtime.deploy import load_deployment, placed

    system = kv.system()
    dep = load_deployment(write_deployment(
        tmp_path / "d.toml", "kv_composite.py",
        {"n1": (7101, ["client", "router"]), "n2": (7102, ["shard0"]),
         "n3": (7103, ["shard1"])},
        constraints={"apart": [["shard0", "shard1"]], "together": [["shard0", "router"]]}))
    with pytest.raises(UsageError, match="together.*does not hold"):
        placed(dep, system)
    dep = load_deployment(write_deployment(
        tmp_path / "d.toml", "kv_composite.py",
        {"n1": (7101, ["client", "router"]), "n2": (7102, ["shard0"]),
         "n3": (7103, ["shard1"])},
        constraints={"apart": [["shard0", "shard1", "router"]]}))
    out = placed(dep, system)
    assert out.nodes["n2"].instances == ("shard0.primary", "shard0.backup")
    assert out.placement["shard1.backup"] == "n3"
    both = load_deployment(write_deployment(
        tmp_path / "d.toml", "kv_composite.py",
        {"n1": (7101, ["client", "router", "shard1"]), "n2": (7102, ["shard0"])},
        constraints={"apart": [["shard0", "shard1"]]}))
    assert placed(both, system).placement["shard1.primary"] == "n1"
    clash = load_deployment(write_deployment(
        tmp_path / "d.toml", "kv_composite.py",
        {"n1": (7101, ["client", "router", "shard1", "shard0.backup"]),
         "n2": (7102, ["shard0"])}))
    with pytest.raises(UsageError, match="'shard0.backup' is placed on both"):
        placed(clash, system)
    apart = load_deployment(write_deployment(
        tmp_path / "d.toml", "kv_composite.py",
        {"n1": (7101, ["client", "router", "shard1", "shard0.backup"]),
         "n2": (7102, ["shard0.primary"])},
        constraints={"apart": [["shard0", "shard1"]]}))
    with pytest.raises(UsageError,
                       match="apart.*'shard0' and 'shard1' both have instances on 'n1'"):
        placed(apart, system)


def test_a_deployment_that_places_whole_composites_runs_and_its_trace_replays(children,
                                                                             tmp_path):
    from runtime_support import free_ports, replay, write_deployment

    ports = free_ports(3)
    dep = write_deployment(tmp_path / "deploy.toml", "kv_composite.py",
                           {"n1": (ports[0], ["client", "router"]),
                            "n2": (ports[1], ["shard0"]), "n3": (ports[2], ["shard1"])},
                           constraints={"apart": [["shard0", "shard1"]]})
    trace = tmp_path / "run.json"
    r = children.run("run", "--deploy", dep, "--json", "--trace-out", trace, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ended"] == "quiescent" and doc["violations"] == []
    final = doc["final"]
    assert set(final) == {"client", "router", "shard0.primary", "shard0.backup",
                          "shard1.primary", "shard1.backup"}
    assert final["client"]["written"] == 2
    done = replay(children, trace)
    assert len(done["events"]) == doc["steps"] > 0


# --- elastic pools inside composites --------------------------------------------------------------

POOL = ROOT / "specs" / "elastic_pool.py"
POOL_BUG = ROOT / "specs" / "elastic_pool_bug_retire_busy.py"


@pytest.mark.parametrize("spec, verdict", [("elastic_pool.py", "ok"),
                                           ("elastic_pool_bug_retire_busy.py", "violation")])
def test_an_elastic_pool_spec_used_whole_as_a_composite_explores_the_same_states(spec, verdict):
    inner, outer = wrapped(spec)
    assert [(p.name, p.handle, p.owner, p.slots) for p in outer.pools] == [
        ("part.worker", "worker", "part.dispatcher", ("part.worker0", "part.worker1"))]
    a, b = assay.check(inner), assay.check(outer)
    assert a.verdict == b.verdict == verdict
    assert (a.states, a.transitions, a.depth) == (b.states, b.transitions, b.depth)
    if verdict == "ok":
        assert b.liveness == {f"part.{k}": v for k, v in a.liveness.items()} == {
            "part.all_done": "holds"}
    else:
        assert (b.violation.kind, b.violation.name) == ("property", "part.no_job_lost")
        assert len(b.steps) == len(a.steps) == 8


def two_pools(spec: Path, jobs: int) -> System:
    """Two composites side by side, each with its own pool named `worker`."""
    fn = load_module(spec).system
    s = System("two_pools", network="unordered", fairness="weak")
    s.add("a", fn, jobs=jobs, size=1)
    s.add("b", fn, jobs=jobs, size=1)
    return s


def test_two_composites_each_with_a_pool_of_the_same_name_are_independent():
    s = two_pools(POOL, 2)
    assert [(p.name, p.handle, p.owner) for p in s.pools] == [
        ("a.worker", "worker", "a.dispatcher"), ("b.worker", "worker", "b.dispatcher")]
    alone = assay.check(load_module(POOL).system(jobs=2, size=1))
    both = assay.check(s)
    assert alone.verdict == both.verdict == "ok"
    assert both.states == alone.states ** 2 == 5776     # two independent copies: the product
    assert both.liveness == {"a.all_done": "holds", "b.all_done": "holds"}
    bug = assay.check(two_pools(POOL_BUG, 1))
    assert bug.verdict == "violation" and bug.violation.name == "a.no_job_lost"
    spawns = [e for e in bug.trace.events if e.get("message", {}).get("type") == "Spawn"]
    assert spawns and {(e["to"], e["message"]["fields"]["pool"]) for e in spawns} == {
        ("a.worker0", "a.worker")}


def test_a_symmetric_pool_inside_a_composite_reduces_as_it_does_alone():
    def build(size: int = 3) -> System:
        s = load_module(POOL).system(size=size)
        s.liveness = []                 # liveness is checked unreduced: leave it out here
        s.symmetric(*[n for n in s.instances if n.startswith("worker")])
        return s
    outer = System("outer", network="unordered", fairness="weak")
    outer.add("part", build)
    alone, inside = assay.check(build()), assay.check(outer)
    assert alone.verdict == inside.verdict == "ok"
    assert alone.states == inside.states == 1886


def test_a_trace_with_spawns_inside_composites_replays(tmp_path):
    spec = tmp_path / "two_pools.py"
    spec.write_text(
        "from assay import System\n"
        "from assay.model.load import load_module\n"
        f"fn = load_module({str(POOL_BUG)!r}).system\n\n\n"
        "def system(jobs: int = 1) -> System:\n"
        "    s = System('two_pools', network='unordered', fairness='weak')\n"
        "    s.add('a', fn, jobs=jobs, size=1)\n"
        "    s.add('b', fn, jobs=jobs, size=1)\n"
        "    return s\n")
    r = assay.check(spec)
    assert r.verdict == "violation" and r.violation.name == "a.no_job_lost"
    path = tmp_path / "bug.json"
    r.trace.write(path)
    events = json.loads(path.read_text())["events"]
    spawns = [e for e in events if e["kind"] == "deliver" and e["message"]["type"] == "Spawn"]
    assert spawns and {e["message"]["fields"]["pool"] for e in spawns} == {"a.worker"}
    done = replay_trace(Trace.read(path), path)
    assert done.violation is not None and done.violation.name == "a.no_job_lost"


def test_simulate_draws_spawns_inside_composites_and_finds_the_lost_job():
    good = assay.simulate(two_pools(POOL, 2), runs=20, seed=1)
    assert good.ok and good.events > 0, good.text()
    bad = assay.simulate(two_pools(POOL_BUG, 2), runs=40, seed=1)
    assert not bad.ok
    assert bad.traces()[0].verdict["name"] in ("a.no_job_lost", "b.no_job_lost")


@pytest.mark.parametrize("seed", range(2))
def test_run_spawns_real_workers_inside_composites_and_the_run_conforms(seed):
    from assay.kernel import Kernel
    from assay.kernel.trace import find_initial, replay_checked
    from assay.runtime.local import run_local

    report, _ = run_local(Kernel(two_pools(POOL, 2)), duration=20, seed=seed)
    assert report.ended == "quiescent" and not report.violations
    for part in ("a", "b"):
        assert sorted(report.final[f"{part}.dispatcher"]["done"]) == [0, 1]
        assert report.final[f"{part}.dispatcher"]["live"] == frozenset()
    pools = {e["message"]["fields"]["pool"] for e in report.events
             if e.get("message", {}).get("type") == "Spawn"}
    assert pools == {"a.worker", "b.worker"}
    fresh = Kernel(two_pools(POOL, 2))
    done = replay_checked(fresh, report.events, find_initial(fresh, None))
    assert done.violation is None and len(done.steps) == len(report.events)
