"""Partial-order reduction (`check --por`, `assay/checker/por.py`): on every corpus spec the
verdict is the one of the full search, every bug is still found and its counterexample
replays; where the reduction applies it explores fewer states; on random small systems
(hypothesis) POR and the full search agree; and where it is not sound it says why and
explores every state."""
from __future__ import annotations

import glob
import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from assay import Component, Message, Port, System, action, on
from assay import protocol as p
from assay.checker import check
from assay.cli.check import check as check_command
from assay.kernel import Kernel
from assay.kernel.trace import Trace, find_initial, replay_checked
from assay.model.load import build

ROOT = Path(__file__).resolve().parent.parent
SENSORS = str(ROOT / "tests/fixtures/por/sensors.py")
# the corpus specs POR applies to (no liveness, timers, faults, lossy or bounded links, and
# properties of the local states only), each with a bug twin or not
APPLIES = ["account_service", "coin_election", "coin_election_bug_ties", "paxos",
           "paxos_bug_own_value", "tla_lamport_mutex", "tla_lamport_mutex_bug_ties",
           "tla_paxos_commit", "tla_paxos_commit_bug_any", "tla_twophase",
           "two_phase_commit", "two_phase_commit_bug_majority",
           "two_phase_commit_bug_protocol", "bank_store", "bank_store_bug_self_transfer",
           "kv_composite", "kv_composite_bug_early_ack", "raft_election",
           "raft_election_bug_double_vote"]


def _replays(kernel_of, result) -> None:
    """The counterexample, written and read back, replays to the same violation."""
    with tempfile.TemporaryDirectory() as d:
        result.trace.write(Path(d) / "cex.json")
        trace = Trace.read(Path(d) / "cex.json")
    k = kernel_of()
    out = replay_checked(k, trace.events, find_initial(k, trace.initial))
    assert out.violation is not None
    assert (out.violation.kind, out.violation.name) == (result.violation.kind,
                                                         result.violation.name)
    assert len(out.steps) == len(result.steps)


@pytest.mark.parametrize("name", APPLIES)
def test_corpus_same_verdict_bug_found_counterexample_replays(name):
    spec = str(ROOT / "specs" / f"{name}.py")
    full = check(build(spec, None, {})[0], symmetry=False, full_states=True)
    red = check(build(spec, None, {})[0], symmetry=False, por=True)
    assert red.por is not None and red.por["applied"], red.por
    assert red.verdict == full.verdict
    assert red.states <= full.states
    if full.violation is not None:
        assert (red.violation.kind, red.violation.name) == (full.violation.kind,
                                                             full.violation.name)
        assert len(red.steps) >= len(full.steps)          # need not be shortest under POR
        _replays(lambda: Kernel(build(spec, None, {})[0]), red)
    else:
        assert red.ok


def test_every_corpus_spec_is_covered():
    """A spec POR refuses says why, and explores every state (the full count)."""
    names = sorted(Path(f).stem for f in glob.glob(str(ROOT / "specs/*.py")))
    for name in names:
        if name in APPLIES:
            continue
        spec = str(ROOT / "specs" / f"{name}.py")
        full = check(build(spec, None, {})[0], symmetry=False)
        red = check(build(spec, None, {})[0], symmetry=False, por=True)
        assert not red.por["applied"] and red.por["why"], name
        assert any("partial-order reduction not applied" in w for w in red.warnings)
        assert red.states == full.states and red.verdict == full.verdict, name


def test_two_phase_commit_reduced_through_its_protocols():
    """The protocols say when a session can send no more: then a TM-RM link is no link."""
    spec = str(ROOT / "specs/two_phase_commit.py")
    full = check(build(spec, None, {})[0], full_states=True)
    red = check(build(spec, None, {})[0], por=True)
    assert (full.states, red.states) == (801, 764)
    assert red.por["visible"] == ["rm0", "rm1", "rm2"]
    assert red.por["reduced_states"] > 0


@pytest.mark.parametrize("n", [3, 4, 5])
def test_sensors_reduced(n):
    args = {"sensors": str(n), "ticks": "3"}
    full = check(build(SENSORS, None, args)[0], full_states=True)
    red = check(build(SENSORS, None, args)[0], por=True)
    assert full.ok and red.ok
    assert red.states < full.states
    assert {3: (142, 25), 4: (824, 77), 5: (5144, 341)}[n] == (full.states, red.states)
    assert red.por["visible"] == ["collector"]


@pytest.mark.parametrize("n", [3, 5])
def test_sensors_bug_found_with_a_replayable_counterexample(n):
    args = {"sensors": str(n), "ticks": "3", "bug": "true"}
    full = check(build(SENSORS, None, args)[0], full_states=True)
    red = check(build(SENSORS, None, args)[0], por=True)
    assert full.verdict == red.verdict == "violation"
    assert red.violation.name == full.violation.name == "s1_not_second"
    assert red.states < full.states
    _replays(lambda: Kernel(build(SENSORS, None, args)[0]), red)


def test_refusals_say_why():
    spec = str(ROOT / "specs/two_phase_commit.py")
    sym = str(ROOT / "specs/tla_twophase.py")
    assert "--dfs" in check(build(spec, None, {})[0], por=True, strategy="dfs").por["why"]
    assert "keep-going" in check(build(spec, None, {})[0], por=True,
                                 keep_going=True).por["why"]
    r = check(build(sym, None, {"symmetric": "true"})[0], por=True)
    assert "symmetry" in r.por["why"] and r.symmetry["applied"]
    live = check(build(str(ROOT / "specs/ring_election.py"), None, {})[0], por=True)
    assert "liveness" in live.por["why"]
    net = check(build(str(ROOT / "specs/bank_transfer.py"), None, {})[0], por=True)
    assert "messages in flight" in net.por["why"]


def test_visible_set_grows_and_the_search_starts_again():
    """A property that reads an instance only in later states widens the visible set."""
    def system() -> System:
        s = build(SENSORS, None, {"sensors": "3", "ticks": "2"})[0]

        @s.always
        def late(g):            # reads s2 only once the collector has a report
            return not g["collector"].order or g["s2"].count >= 0
        return s

    red = check(system(), por=True)
    assert red.ok and red.por["restarts"] == 1
    assert red.por["visible"] == ["collector", "s2"]


def test_cli_por_line(tmp_path):
    out = CliRunner().invoke(check_command, [SENSORS, "-p", "sensors=3", "--por", "-q"])
    assert out.exit_code == 0, out.output
    assert "por" in out.output and "reduced graph" in out.output
    out = CliRunner().invoke(check_command, [SENSORS, "-p", "sensors=3", "--por", "--json",
                                    "-q"])
    doc = json.loads(out.output)
    assert doc["por"]["applied"] and doc["states"] == 22


def test_reports_say_reduced_and_not_shortest():
    args = {"sensors": "3", "ticks": "3", "bug": "true"}
    red = check(build(SENSORS, None, args)[0], por=True)
    text = red.text()
    assert "reduced graph" in text and "may not be shortest" in text
    assert "shortest counterexample" not in text and "counterexample (" in text
    assert "reduced graph" in repr(red) and "reduced graph" in red._repr_html_()
    full = check(build(SENSORS, None, args)[0])
    assert "shortest counterexample" in full.text() and "reduced" not in full.text()


def test_same_result_under_any_hash_seed():
    import os
    import subprocess
    import sys

    code = ("import json, assay; r = assay.check({spec!r}, sensors=4, bug=True, por=True); "
            "print(json.dumps([r.states, r.trace.to_json()['events'], "
            "r.por['reduced_states']]))")
    code = code.format(spec=SENSORS)
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": seed,
                                            "PYTHONPATH": str(ROOT)}).stdout
            for seed in ("0", "12345")}
    assert len(outs) == 1


class Toggler(Component):
    """Flips a bit for ever, alone: its steps are invisible and close a cycle."""
    x: int = 0

    @action()
    def flip(self):
        self.x = 1 - self.x


class Setter(Component):
    done: bool = False

    @action(when=lambda self: not self.done)
    def set(self):
        self.done = True


def test_cycle_proviso_keeps_an_event_from_being_ignored():
    """Without C3 the toggler's cycle would be the only ample path and the setter's step,
    the one that breaks the property, would be ignored for ever."""
    def system() -> System:
        s = System("ignoring")
        s.add("toggler", Toggler)
        s.add("setter", Setter)

        @s.always
        def never_set(g):
            return not g["setter"].done
        return s

    red = check(system(), por=True)
    assert red.verdict == "violation" and red.violation.name == "never_set"
    assert red.por["visible"] == ["setter"] and red.por["proviso"] > 0
    _replays(lambda: Kernel(system()), red)


def test_api_por():
    import assay

    r = assay.check(SENSORS, sensors=3, por=True)
    assert r.ok and r.states == 22 and r.por["applied"]
    assert "reduced graph" in r.text()


# --- random small systems: POR and the full search agree -----------------------------------

class Msg(Message):
    v: int


class Node(Component):
    """Counts to 2 on its own, sending on `out` when the count reaches `at`; adds what it
    receives (relaying once past 1 if `relays`)."""
    out = Port(many=True)
    inp = Port(p.recv(Msg).many(), many=True)
    x: int = 0
    got: int = 0
    relayed: bool = False
    at: int = 1
    relays: bool = False

    @action(when=lambda self: self.x < 2)
    def step(self):
        self.x = self.x + 1
        if self.x == self.at:
            self.out.broadcast(Msg(v=self.x))

    @on(Msg)
    def recv(self, m):
        self.got = min(self.got + m.v, 3)
        if self.relays and not self.relayed and self.got > 1:
            self.relayed = True
            self.out.broadcast(Msg(v=1))


class OneShot(Node):
    """A node whose out port's protocol allows one send: a second is a protocol violation."""
    out = Port(p.send(Msg), many=True)


class Sink(Component):
    """A node that sends nothing: counts on its own and adds what it receives."""
    inp = Port(p.recv(Msg).many(), many=True)
    x: int = 0
    got: int = 0

    @action(when=lambda self: self.x < 2)
    def step(self):
        self.x = self.x + 1

    @on(Msg)
    def recv(self, m):
        self.got = min(self.got + m.v, 3)


def _random_system(n: int, targets: list[list[int]], send_at: list[int],
                   relay: list[bool], reads: list[int], bad: list[int],
                   one_shot: list[bool], network: str = "unordered") -> System:
    """`n` nodes on `network`, node i sending to `targets[i]` (none: a `Sink`); a property over the
    nodes `reads` that fails when each has received (`got`) its `bad` value."""
    s = System("random", network=network)
    nodes = [s.add(f"n{i}", OneShot if one_shot[i] else Node, at=send_at[i], relays=relay[i])
             if targets[i] else s.add(f"n{i}", Sink) for i in range(n)]
    for a, bs in enumerate(targets):
        for b in bs:
            s.connect(nodes[a].out, nodes[b].inp)

    @s.always
    def prop(g):
        return not all(g[f"n{i}"].got == b for i, b in zip(reads, bad))

    return s


@st.composite
def systems(draw):
    n = draw(st.integers(2, 5))
    targets = [draw(st.lists(st.sampled_from([b for b in range(n) if b != a]), unique=True,
                             max_size=2)) for a in range(n)]
    # a node with no target never sends (send_at 0: its count never equals it)
    send_at = [draw(st.integers(0, 2)) if targets[i] else 0 for i in range(n)]
    relay = [draw(st.booleans()) and bool(targets[i]) for i in range(n)]
    one_shot = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    reads = draw(st.lists(st.integers(0, n - 1), unique=True, min_size=1, max_size=3))
    bad = draw(st.lists(st.integers(1, 4), min_size=len(reads), max_size=len(reads)))
    deadlock = draw(st.booleans())
    network = draw(st.sampled_from(["unordered", "fifo", "duplicating"]))
    return (n, targets, send_at, relay, reads, bad, one_shot, network), deadlock


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
@given(systems())
def test_random_systems_por_agrees_with_the_full_search(case):
    """Same verdict; a violation POR reports is one the full search finds too (it may find
    another kind first: its order differs), and when the full search finds one kind only,
    POR finds that kind."""
    args, deadlock = case
    full = check(Kernel(_random_system(*args), deadlock=deadlock), full_states=True,
                 keep_going=True)
    red = check(Kernel(_random_system(*args), deadlock=deadlock), por=True)
    assert red.por["applied"], red.por
    assert red.verdict == full.verdict
    if full.violation is None:
        assert red.states <= full.states
        return
    kinds = {(f.violation.kind, f.violation.name) for f in full.findings}
    assert (red.violation.kind, red.violation.name) in kinds
    _replays(lambda: Kernel(_random_system(*args), deadlock=deadlock), red)


def test_interceptors_and_pools_are_refused_with_the_reason():
    # neither is modelled by the independence analysis (C1): refused, every state explored
    for spec, why in (("provenance_interceptor.py", "interceptors"),
                      ("elastic_pool.py", "elastic pools")):
        s = build(str(ROOT / "specs" / spec), None, {})[0]
        s.liveness = []                    # past the liveness refusal, to the one at hand
        full = check(s, symmetry=False)
        red = check(s, symmetry=False, por=True)
        assert not red.por["applied"] and red.por["why"].startswith(why), red.por
        assert red.states == full.states and red.verdict == full.verdict
