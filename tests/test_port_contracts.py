"""Message contracts on ports (`Port(where={Msg: lambda m: ...})`): what a port guarantees of
the messages its component sends on it and assumes of those it receives, in every engine.

* the kernel: a send that breaks its port's contract is the sender's violation (the step is
  aborted); a delivery that breaks the receiving port's contract is the sender's violation too
  (the handler does not run) — so `check`, `simulate`, `replay` and the runtime all see them;
* `verify`: a send site proves its port's guarantee, a handler assumes its port's contract,
  and each connection proves that what one side guarantees implies what the other assumes
  (refuted with a message both contracts are evaluated on);
* the runtime: a deployment's monitor rejects a delivery that breaks a port's contract.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import Component, Message, Port, Range, System, action, on
from assay.checker import check
from assay.kernel import Kernel
from assay.kernel.events import Envelope
from assay.model.load import build
from assay.runtime.local import run_local
from assay.runtime.node import Node
from assay.verifier.verify import contract_obligations, verify

REPO = Path(__file__).resolve().parents[1]
FIX = REPO / "tests" / "fixtures" / "verify"


class Reading(Message):
    value: int


class Watcher(Component):
    inp = Port(where={Reading: lambda m: 0 <= m.value <= 100})
    last: int = 0

    @on(Reading)
    def got(self, m):
        self.last = m.value


def system_of(name: str):
    return build(str(FIX / f"{name}.py"))[0]


def assay(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


# --- the kernel ----------------------------------------------------------------------------------

def test_a_send_that_breaks_its_port_s_contract_is_the_sender_s_violation_and_is_aborted():
    k = Kernel(system_of("bug_port_guarantee"))
    node = Node(k, ["sensor"], monitor="log")
    fired = [node.fire_any("sensor", __import__("random").Random(0)) for _ in range(3)]
    assert [o.applied for o in fired] == [True, True, True]
    assert [len(o.sends) for o in fired] == [1, 1, 0]            # the third send aborts
    (v,) = fired[2].violations
    assert v.kind == "contract" and v.blame == "sensor.report"
    assert "Reading(value=120)" in v.message and "port 'out'" in v.message
    assert v.location is not None and v.location.line == 21      # the send's line
    assert node.state("sensor")["n"] == 2                         # aborted: nothing changed


def test_a_delivery_that_breaks_the_receiving_port_s_contract_blames_the_sender():
    k = Kernel(system_of("port_mismatch"))
    reading = k.messages["Reading"]
    node = Node(k, ["monitor"])
    ok = node.deliver(Envelope("sensor", "out", "monitor", "inp", reading(100)))
    assert ok.applied and node.state("monitor")["peak"] == 100
    bad = node.deliver(Envelope("sensor", "out", "monitor", "inp", reading(150)))
    assert not bad.applied
    (v,) = bad.violations
    assert v.kind == "contract" and v.blame == "sensor"
    assert "Reading(value=150)" in v.message and "port 'inp'" in v.message
    assert node.state("monitor")["peak"] == 100                   # the handler did not run


def test_a_contract_that_raises_is_an_exception_of_the_component_that_declared_it():
    class Item(Message):
        n: int

    class Src(Component):
        out = Port()
        done: bool = False

        @action(when=lambda self: not self.done)
        def go(self):
            self.done = True
            self.out.send(Item(0))

    class Dst(Component):
        inp = Port(where={Item: lambda m: 10 // m.n > 1})        # divides by zero on Item(0)
        got: int = 0

        @on(Item)
        def take(self, m):
            self.got += 1

    s = System("raises")
    s.connect(s.add("src", Src).out, s.add("dst", Dst).inp)
    r = check(s)
    assert r.verdict == "violation" and r.violation.kind == "exception"
    assert r.violation.blame == "dst.take" and "ZeroDivisionError" in r.violation.message


@pytest.mark.parametrize("name, verdict, kind", [
    ("bug_port_guarantee", "violation", "contract"),       # the sender breaks its own port's
    ("port_mismatch", "violation", "contract"),            # the receiver's port refuses it
    ("ok_port_guarantee", "ok", None),
    ("ok_port_assume", "ok", None),
])
def test_check_finds_what_breaks_a_port_contract_and_passes_the_rest(name, verdict, kind):
    r = check(system_of(name))
    assert r.verdict == verdict
    assert (r.violation.kind if r.violation else None) == kind


# --- verify: each component against its ports, each connection between them ---------------------

def test_a_connection_whose_guarantee_is_weaker_than_the_assumption_is_refuted():
    r = verify(system_of("port_mismatch"))
    contracts = [o for o in r.obligations if o.kind == "contract"]
    assert [(o.target, o.verdict) for o in contracts] == [
        ("sensor.out ~ monitor.inp", "refuted")]
    (o,) = contracts
    assert "may send Reading(value=" in o.reason and o.witness
    # each component alone is proved: the mismatch is only at the boundary
    assert all(x.verdict == "proved" for x in r.obligations if x.component != "connection")
    assert r.exit_code == 1


def test_a_sender_that_promises_nothing_cannot_satisfy_an_assumption():
    class Sensor(Component):
        out = Port()                                     # guarantees nothing
        sent: bool = False

        @action(when=lambda self: not self.sent)
        def report(self):
            self.sent = True
            self.out.send(Reading(5))

    class Monitor(Component):
        inp = Port(where={Reading: lambda m: m.value >= 0})
        last: int = 0

        @on(Reading)
        def got(self, m):
            self.last = m.value

    s = System("promise")
    s.connect(s.add("sensor", Sensor).out, s.add("monitor", Monitor).inp)
    (o,) = [o for o in verify(s).obligations if o.kind == "contract"]
    assert o.verdict == "refuted" and "anything sensor.out sends" in o.title
    assert "Reading(value=-" in o.reason


def test_a_sender_whose_sends_are_not_all_translated_is_unknown_not_refuted_nor_skipped():
    # the relay forwards what it receives (`send(m)`: not translated), so whether it sends a
    # Reading on `out` is not known: the mismatch is unknown — never proved, never skipped
    class Relay(Component):
        inp = Port()
        out = Port()
        n: int = 0

        @on(Reading, port="inp")
        def forward(self, m):
            self.n += 1
            self.out.send(m)

    class Source(Component):
        out = Port()
        sent: bool = False

        @action(when=lambda self: not self.sent)
        def go(self):
            self.sent = True
            self.out.send(Reading(500))

    s = System("relay")
    r = s.add("relay", Relay)
    s.connect(s.add("source", Source).out, r.inp)
    s.connect(r.out, s.add("monitor", Watcher).inp)
    report = verify(s)
    (o,) = [o for o in report.obligations if o.kind == "contract"]
    assert o.target == "relay.out ~ monitor.inp"
    assert o.verdict == "unknown" and "cannot tell whether Relay sends a Reading" in o.reason
    assert report.verdict != "proved"
    assert check(s).violation.kind == "contract"       # and it does: Reading(500) is refused


def test_a_sender_that_never_sends_the_type_has_no_connection_obligation():
    # every body of the watcher is translated and none sends a Reading: nothing to prove
    # from it towards the sensor's port (which assumes its own contract of Readings)
    s = system_of("ok_port_assume")
    targets = [o.target for o in verify(s).obligations if o.kind == "contract"]
    assert targets == ["sensor.out ~ monitor.inp"]


def test_a_contract_the_verifier_cannot_translate_is_unknown_never_proved():
    class Word(Message):
        text: str

    class Src(Component):
        out = Port(where={Word: lambda m: m.text.isupper()})
        sent: bool = False

        @action(when=lambda self: not self.sent)
        def say(self):
            self.sent = True
            self.out.send(Word("HI"))

    class Dst(Component):
        inp = Port(where={Word: lambda m: m.text.isupper()})
        n: int = 0

        @on(Word)
        def hear(self, m):
            self.n += 1

    s = System("untranslated")
    s.connect(s.add("src", Src).out, s.add("dst", Dst).inp)
    r = verify(s)
    (conn,) = [o for o in r.obligations if o.kind == "contract"]
    assert conn.verdict == "unknown" and "not translated" in conn.reason
    sends = [o for o in r.obligations if o.component == "Src" and o.kind == "send"]
    assert sends and all(o.verdict == "unknown" for o in sends)
    assert r.verdict != "proved"


def test_a_handler_for_any_port_assumes_no_port_s_contract():
    # the message may come on a port without a contract: nothing may be assumed of it
    class Reading(Message):
        value: int

    class Monitor(Component):
        a = Port(where={Reading: lambda m: 0 <= m.value <= 9})
        b = Port()
        last: Annotated[int, Range(0, 9)] = 0

        @on(Reading)                                     # on either port
        def got(self, m):
            self.last = m.value

    class Peer_(Component):
        out = Port()

    s = System("any_port")
    m = s.add("monitor", Monitor)
    s.connect(s.add("p", Peer_).out, m.a)
    s.connect(s.add("q", Peer_).out, m.b)
    r = verify(s, component="Monitor")
    (types,) = [o for o in r.obligations if o.kind == "types"]
    assert types.verdict == "refuted"


def test_a_handler_whose_message_may_be_a_timer_assumes_no_port_contract():
    # the kernel checks no port's contract when a timer fires (a timer meets no port), so a
    # handler of a message the component also sets as a timer cannot assume its port's
    class Tick(Message):
        n: int

    class Clock(Component):
        peer = Port(where={Tick: lambda m: 0 <= m.n <= 5})
        last: Annotated[int, Range(0, 5)] = 0
        fired: bool = False

        @action(when=lambda self: not self.fired)
        def start(self):
            self.fired = True
            self.after(1, Tick(9))

        @on(Tick)
        def tick(self, m):
            self.last = m.n

    class Other(Component):
        clock = Port()

    s = System("timer_contract")
    s.connect(s.add("clock", Clock).peer, s.add("other", Other).clock)
    (types,) = verify(s, component="Clock").find("Clock", "tick", "types")
    assert types.verdict == "refuted"
    assert types.counterexample is not None and types.counterexample.message.sender is None
    assert check(s).violation.kind == "type"                    # Tick(9), fired as a timer


@settings(max_examples=200, deadline=None)
@given(st.integers(-10**6, 10**6))
def test_a_proved_connection_holds_on_every_message(value):
    # ok_port_assume: proved that the sensor's guarantee implies the monitor's assumption
    s = system_of("ok_port_assume")
    (o,) = [o for o in contract_obligations(s) if o.target == "sensor.out ~ monitor.inp"]
    assert o.verdict == "proved"
    from assay.model.component import component_info

    inst = dict(s.instances)
    give = component_info(inst["sensor"]).ports["out"].where
    take = component_info(inst["monitor"]).ports["inp"].where
    reading = next(iter(give))
    m = reading(value)
    assert not give[reading](m) or take[reading](m)


def test_verify_cli_reports_the_connection_refutation(tmp_path):
    r = assay("verify", FIX / "port_mismatch.py", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    (o,) = [o for o in doc["obligations"] if o["kind"] == "contract"]
    assert o["verdict"] == "refuted" and o["witness"]
    assert o["location"].endswith("port_mismatch.py:23")          # the assuming port's line


# --- the runtime ---------------------------------------------------------------------------------

def test_a_deployment_s_monitor_rejects_a_delivery_that_breaks_a_port_contract():
    k = Kernel(system_of("port_mismatch"))
    report, _ = run_local(k, duration=10)
    kinds = [(v.kind, v.blame) for _, v in report.violations]
    assert kinds == [("contract", "sensor")]                     # Reading(150), refused
    assert report.final["monitor"]["peak"] == 100
    assert len(report.refused) == 1 and report.refused[0].message.value == 150
