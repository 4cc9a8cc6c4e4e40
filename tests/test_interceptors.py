"""Interceptors (issue 14, item 2): components declared on a connection (`connect(...,
via=)`) that see every message crossing it — in the spec language, the kernel, check,
simulate, replay, verify and `assay run`.

The two shipped examples are checked both ways: specs/exactly_once_link.py (retry + dedup over
a lossy, duplicating link: exactly-once holds under `--faults drop,dup`) and its twin without
dedup (refuted), specs/provenance_interceptor.py (meta the server asks for).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assay import Component, Interceptor, Message, Port, System, action, on, requires
from assay.checker import check
from assay.errors import SpecError
from assay.kernel import Faults, Kernel
from assay.kernel.events import Envelope
from assay.kernel.trace import Trace, replay_trace
from assay.model.load import build
from assay.simulator import FaultRates
from assay.simulator.run import run_once

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"


def spec(name: str, **params) -> System:
    return build(SPECS / name, params={k: str(v) for k, v in params.items()})[0]


def assay_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


# --- components ----------------------------------------------------------------------------

class Ping(Message):
    n: int


class Pong(Message):
    n: int


class Pinger(Component):
    out = Port()
    sent: int = 0
    got: tuple[str, ...] = ()           # the senders of the pongs, as the pinger saw them

    @action(when=lambda self: self.sent < 1)
    def go(self):
        self.sent += 1
        self.out.send(Ping(self.sent))

    @on(Pong)
    def pong(self, m):
        self.got = (*self.got, m.sender)


class Ponger(Component):
    inp = Port()
    senders: tuple[str, ...] = ()
    metas: tuple[tuple[str, ...], ...] = ()     # the path each ping arrived with

    @on(Ping)
    def ping(self, m):
        self.senders = (*self.senders, m.sender)
        self.metas = (*self.metas, self.meta(m).get("path", ()))
        self.inp.send(Pong(m.n))


class Tag(Interceptor):
    @on(Message)
    def cross(self, m):
        self.forward(m, meta={"path": (*self.meta(m).get("path", ()), self.name)})


class Swallow(Interceptor):
    """Drops every ping: the ponger never hears of it."""

    @on(Ping, port="left")
    def ping(self, m):
        pass


class Stray(Interceptor):
    @action(when=lambda self: True)
    def push(self):
        self.forward(Ping(0))           # no message was handled: no side to forward to


class BadMeta(Interceptor):
    @on(Message)
    def cross(self, m):
        self.forward(m, meta={"when": frozenset({1})})


def pair(via, network: str = "fifo") -> System:
    s = System("pair", network=network)
    a, b = s.add("a", Pinger), s.add("b", Ponger)
    s.connect(a.out, b.inp, via=via)
    return s


# --- the kernel: routing, senders, meta ----------------------------------------------------

def test_messages_cross_the_chain_and_endpoints_see_each_other_as_sender():
    from assay.runtime.local import run_local

    s = pair([Tag, Tag])
    assert list(s.instances) == ["a", "b", "a-b-1", "a-b-2"]
    report, _ = run_local(Kernel(s), duration=5)
    assert report.ended == "quiescent"
    assert report.final["b"]["senders"] == ("a",)          # not the interceptor
    assert report.final["a"]["got"] == ("b",)
    assert report.final["b"]["metas"] == (("a-b-1", "a-b-2"),)   # asked for, in order


def test_the_hops_are_links_of_their_own_and_meta_is_part_of_the_envelope():
    k = Kernel(pair([Tag, Tag]))
    assert k.links == sorted([("a", "out", "a-b-1", "left"), ("a-b-1", "left", "a", "out"),
                              ("a-b-1", "right", "a-b-2", "left"),
                              ("a-b-2", "left", "a-b-1", "right"),
                              ("a-b-2", "right", "b", "inp"), ("b", "inp", "a-b-2", "right")])
    plain = Envelope("a-b-1", "right", "a-b-2", "left", Ping(1))
    tagged = Envelope("a-b-1", "right", "a-b-2", "left", Ping(1), (("path", ("a-b-1",)),))
    assert plain != tagged and k._env_id(plain) != k._env_id(tagged)
    assert k._env_bytes(k._env_id(plain)) != k._env_bytes(k._env_id(tagged))
    one = Envelope("a-b-1", "right", "a-b-2", "left", Ping(1), (("x", 1),))
    true = Envelope("a-b-1", "right", "a-b-2", "left", Ping(1), (("x", True),))
    assert k._env_id(one) != k._env_id(true)                # equal in Python, not in the state
    from assay.kernel.events import Deliver
    assert Deliver(tagged).to_json()["meta"] == {"path": ["a-b-1"]}
    assert "meta" not in Deliver(plain).to_json()          # other specs' traces unchanged


def test_an_interceptor_that_drops_is_a_deadlock_check_finds():
    r = check(pair(Swallow))
    assert r.verdict == "violation" and r.violation.kind == "deadlock"
    assert [st.event_json["kind"] for st in r.steps] == ["action", "deliver"]


def test_forward_outside_a_handled_message_and_bad_meta_are_violations():
    r = check(pair(Stray))
    assert r.verdict == "violation" and r.violation.kind == "port"
    assert "to='left'" in r.violation.message
    r = check(pair(BadMeta))
    assert r.verdict == "violation" and r.violation.kind == "type"
    assert "when=" in r.violation.message


def test_wiring_mistakes_are_spec_errors_at_the_line():
    s = System("bad")
    a, b = s.add("a", Pinger), s.add("b", Ponger)
    with pytest.raises(SpecError) as e:
        s.connect(a.out, b.inp, via=Ponger)
    assert "not an interceptor" in str(e.value) and "test_interceptors.py" in str(e.value)
    t = s.add("t", Tag)
    with pytest.raises(SpecError, match="is not an Interceptor"):
        s.connect(a.out, b.inp, via=a)
    s.connect(a.out, b.inp, via=t)
    c, d = s.add("c", Pinger), s.add("d", Ponger)
    with pytest.raises(SpecError, match="already on a connection"):
        s.connect(c.out, d.inp, via=t)
    with pytest.raises(SpecError, match="single port and is already connected"):
        s.connect(c.out, t.left)


def test_symmetry_with_interceptors_is_refused_not_unsound():
    s = System("sym")
    srv = s.add("b", Ponger)
    a1, a2 = s.add("a1", Pinger), s.add("a2", Pinger)
    s.connect(a1.out, srv.inp, via=Tag)
    s.symmetric(a1, a2)
    with pytest.raises(SpecError, match="interceptors"):
        check(s)


# --- the exactly-once link ------------------------------------------------------------------

def test_exactly_once_holds_under_losses_drop_and_dup_faults():
    r = check(spec("exactly_once_link.py"), faults=Faults(drop=1, dup=1))
    assert (r.verdict, r.reason, r.states) == ("ok", "exhausted", 763)
    assert r.liveness == {"all_delivered": "holds"}         # strong fairness, the spec's own
    r = check(spec("exactly_once_link.py"))
    assert (r.verdict, r.states) == ("ok", 383)


def test_delivery_needs_strong_fairness_over_the_lossy_link():
    r = check(spec("exactly_once_link.py"), fairness="weak")
    assert r.verdict == "violation" and r.violation.kind == "liveness"
    cycle = [st.event_json["kind"] for st in r.steps[r.cycle_start:]]
    assert "lose" in cycle                      # the link loses every resend


def test_faults_never_touch_the_in_process_hops():
    k = Kernel(spec("exactly_once_link.py"), faults=Faults(drop=1, dup=1))
    seen, todo, hops = set(), [s for s, _ in k.initial_states()], set()
    while todo:
        st = todo.pop()
        if st in seen:
            continue
        seen.add(st)
        for ev in k.enabled_events(st):
            if k.event_kind(ev) in ("drop", "dup"):
                env = k.event(ev).envelope          # type: ignore[union-attr]
                hops.add((env.src, env.dst))
            todo.append(k.apply(st, ev)[0])
    assert hops == {("retry", "dedup"), ("dedup", "retry")}


def test_without_dedup_check_finds_the_duplicate():
    r = check(spec("exactly_once_link_bug_no_dedup.py"))
    assert r.verdict == "violation" and r.violation.name == "exactly_once"
    assert r.steps[-1].event_json["to"] == "consumer"


class NoResend(Interceptor):
    """Retry without its resend: a lost item stays lost."""

    next_seq: int = 0

    @on(Message, port="left")
    def outgoing(self, m):
        self.forward(m, meta={"seq": self.next_seq})
        self.next_seq += 1

    @on(Message, port="right")
    def incoming(self, m):
        pass                      # acknowledgements: nothing to do


def test_without_resend_a_dropped_item_is_never_delivered():
    system = spec("exactly_once_link.py")
    ns = sys.modules[system.instances["producer"].__module__]
    s = System("no_resend", network="unordered")
    p, c = s.add("producer", ns.Producer), s.add("consumer", ns.Consumer)
    s.connect(p.out, c.inp, via=[s.add("retry", NoResend), s.add("dedup", ns.Dedup)])
    s.terminal(lambda g: sorted(g["consumer"].got) == [1, 2])
    assert check(s).verdict == "ok"                             # no fault: all delivered
    r = check(s, faults=Faults(drop=1))
    assert r.verdict == "violation" and r.violation.kind == "deadlock"
    assert "drop" in [st.event_json["kind"] for st in r.steps]


def test_check_cli_proves_it_and_refutes_the_twin_with_a_trace_that_replays(tmp_path):
    r = assay_cli("check", "specs/exactly_once_link.py", "--faults", "drop=1,dup=1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all properties hold (exhaustive)" in r.stdout
    out = tmp_path / "cex.json"
    r = assay_cli("check", "specs/exactly_once_link_bug_no_dedup.py", "--trace-out", out)
    assert r.returncode == 1, r.stdout + r.stderr
    events = json.loads(out.read_text())["events"]
    assert any(e.get("meta") == {"seq": 0} for e in events)     # meta is in the trace
    r = assay_cli("replay", out)
    assert r.returncode == 1 and "reproduced" in r.stdout, r.stdout + r.stderr


def test_the_same_counterexample_under_any_hash_seed():
    import os
    outs = set()
    for seed in ("1", "2"):
        r = subprocess.run([sys.executable, "-m", "assay.cli", "check",
                            "specs/provenance_interceptor.py", "-p", "rounds=2", "--json"],
                           cwd=REPO, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        outs.add((doc["states"], doc["transitions"]))
    r = [subprocess.run([sys.executable, "-m", "assay.cli", "check",
                         "specs/exactly_once_link_bug_no_dedup.py"], cwd=REPO,
                        capture_output=True, text=True, timeout=120,
                        env={**os.environ, "PYTHONHASHSEED": seed}).stdout
         for seed in ("1", "2")]
    assert len(outs) == 1 and r[0].split("time")[0] == r[1].split("time")[0]


# --- simulate and run --------------------------------------------------------------------------

def test_simulate_with_fault_rates_keeps_exactly_once_and_finds_the_twin(tmp_path):
    k = Kernel(spec("exactly_once_link.py"), faults=Faults.unlimited())
    rates = FaultRates.parse("drop=0.2,dup=0.2")
    runs = [run_once(k, seed, 300, rates) for seed in range(20)]
    assert all(r.violation is None for r in runs)
    assert any(k.event_kind(e) == "drop" for r in runs for e in r.events)
    r = assay_cli("simulate", "specs/exactly_once_link_bug_no_dedup.py", "--runs", "20",
                  "--out", tmp_path, "-j", "1", "-q")
    assert r.returncode == 1, r.stdout + r.stderr
    traces = sorted(tmp_path.glob("*.json"))
    done = replay_trace(Trace.read(traces[0]), traces[0])
    assert done.violation is not None and done.violation.name == "exactly_once"


def test_assay_run_delivers_exactly_once_through_the_interceptors():
    from assay.runtime.local import run_local

    for seed in range(3):
        report, _ = run_local(Kernel(spec("exactly_once_link.py", count=3)), duration=10,
                              seed=seed)
        assert report.violations == [] and report.ended == "quiescent"
        assert sorted(report.final["consumer"]["got"]) == [1, 2, 3]
        assert len(report.final["consumer"]["got"]) == 3


@pytest.mark.e2e
def test_deployed_over_tcp_the_interceptors_run_on_the_real_link(children, tmp_path):
    from runtime_support import free_ports, write_deployment

    ports = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", "exactly_once_link.py",
                           {"n1": (ports[0], ["producer", "retry"]),
                            "n2": (ports[1], ["consumer", "dedup"])}, params={"count": 3})
    r = children.run("run", "--deploy", dep, "--json", timeout=40)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ended"] == "quiescent" and doc["violations"] == []
    assert sorted(doc["final"]["consumer"]["got"]) == [1, 2, 3]
    assert len(doc["final"]["consumer"]["got"]) == 3


@pytest.mark.e2e
def test_deployed_provenance_reaches_the_server_and_the_trace_replays(children, tmp_path):
    from runtime_support import free_ports, replay, write_deployment

    ports = free_ports(3)
    dep = write_deployment(tmp_path / "deploy.toml", "provenance_interceptor.py",
                           {"n1": (ports[0], ["c1", "c1-server"]),
                            "n2": (ports[1], ["c2"]), "n3": (ports[2], ["server", "c2-server"])},
                           params={"rounds": 2})
    trace = tmp_path / "run.json"
    r = children.run("run", "--deploy", dep, "--json", "--trace-out", trace, timeout=40)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ended"] == "quiescent" and doc["violations"] == []
    log = doc["final"]["server"]["log"]
    assert sorted(map(tuple, (x[:2] for x in log))) == [("c1", "c1")] * 2 + [("c2", "c2")] * 2
    assert sorted(x[2] for x in log) == [["c1-server"]] * 2 + [["c2-server"]] * 2
    done = replay(children, trace)               # meta and all: a run the model allows
    assert len(done["events"]) == doc["steps"] > 0


def test_meta_on_the_wire_is_checked_before_use():
    from assay.runtime.wire import WireError, envelope_from_wire, envelope_to_wire

    env = Envelope("retry", "right", "dedup", "left", Ping(1), (("path", ("x", 2, None)),))
    frame = envelope_to_wire(env, 5)
    allowed = {("dedup", "left"): {"Ping": Ping}}
    got, clock = envelope_from_wire(frame, lambda d, p: allowed[(d, p)])
    assert (got, clock) == (env, 5) and got.meta == env.meta
    assert "meta" not in envelope_to_wire(Envelope("a", "out", "b", "inp", Ping(1)), 1)
    nested = envelope_from_wire({**frame, "meta": {"x": [[1], []]}}, lambda d, p: allowed[(d, p)])
    assert nested[0].meta == (("x", ((1,), ())),)          # lists are tuples, exactly
    for bad in ({"x": 1.5}, {"x": {"y": 1}}, [["x", 1]], {"x": 1 << 70}, {}):
        with pytest.raises(WireError):
            envelope_from_wire({**frame, "meta": bad}, lambda d, p: allowed[(d, p)])


# --- provenance ---------------------------------------------------------------------------------

def test_provenance_is_checked_and_seen_by_the_server_only():
    r = check(spec("provenance_interceptor.py", rounds=2))
    assert (r.verdict, r.reason) == ("ok", "exhausted")


class Forgetful(Interceptor):
    """Stamps the hop, not the origin: on a chain of two the origin is the first interceptor."""

    @on(Message)
    def cross(self, m):
        self.forward(m, meta={"origin": m.sender,
                              "path": (*self.meta(m).get("path", ()), self.name)})


def test_a_provenance_bug_is_found():
    system = spec("provenance_interceptor.py")
    ns = sys.modules[system.instances["server"].__module__]
    s = System("prov_bug", network="unordered")
    srv = s.add("server", ns.Server)
    c = s.add("c1", ns.Client)
    s.connect(c.srv, srv.clients, via=[s.add("x", Forgetful), s.add("y", Forgetful)])
    s.always(lambda g: all(origin == sender for sender, origin, _ in g["server"].log))
    r = check(s)
    assert r.verdict == "violation" and r.violation.kind == "property"


def test_verify_proves_each_hop_fits_and_leaves_meta_unknown():
    from assay.verifier.verify import connection_obligations
    obs = connection_obligations(spec("provenance_interceptor.py"))
    subjects = {o.target: o.verdict for o in obs}
    assert subjects == {"c1.srv ~ server.clients": "proved",
                        "c2.srv ~ server.clients": "proved",
                        "c1.srv ~ c1-server.left": "proved",
                        "c1-server.right ~ server.clients": "proved",
                        "c2.srv ~ c2-server.left": "proved",
                        "c2-server.right ~ server.clients": "proved"}

    from assay.verifier.verify import verify
    report = verify(spec("provenance_interceptor.py"))
    cross = [o for o in report.obligations if o.component == "Provenance" and o.target == "cross"]
    assert cross and all(o.verdict == "unknown" for o in cross)     # never "proved" unread


class Amount(Message):
    n: int


class Payer(Component):
    out = Port()
    paid: bool = False

    @action(when=lambda self: not self.paid)
    def pay(self):
        self.paid = True
        self.out.send(Amount(1))


class Payee(Component):
    inp = Port()
    total: int = 0

    @on(Amount)
    @requires(lambda self, m: m.n > 0)
    def got(self, m):
        self.total += m.n


class Negate(Interceptor):
    """Transforms: what reaches the payee is not what the payer sent."""

    @on(Amount, port="left")
    def flip(self, m):
        self.right.send(Amount(-m.n))


def test_a_transforming_interceptor_is_blamed_and_verify_does_not_prove_the_payer_for_it():
    from assay.verifier.verify import verify

    s = System("negated")
    payer, payee = s.add("payer", Payer), s.add("payee", Payee)
    s.connect(payer.out, payee.inp, via=s.add("neg", Negate))
    r = check(s)
    assert r.verdict == "violation" and r.violation.kind == "requires"
    assert r.violation.blame == "neg"                          # not the payer
    report = verify(s)
    at_sender = {(o.component, o.verdict) for o in report.obligations
                 if o.kind == "requires-at-sender"}
    assert ("Payer", "proved") not in at_sender                # the payer reaches neg only
    assert ("Negate", "refuted") in at_sender
