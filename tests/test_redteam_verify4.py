"""Soundness red team of `assay verify` (fourth round).  First: protocols under crashes — a
restarted instance starts its sessions again (unless the port is `persistent=True`) while its
peer goes on, so "compatible" proved for runs without a crash must say so, and `--crashes`
must refute what `check --faults crash=1` shows breaks.  Then the constructs probed this round:
false contracts refuted (or unknown with the reason), never proved, each with a true twin that
stays proved."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay import api
from assay.errors import SpecError
from assay.verifier.compat import CRASH_BREAKS, CRASH_NOTE
from assay.verifier.conformance import summary
from tests.test_redteam_verify import verify_go

REPO = Path(__file__).resolve().parents[1]


# --- protocols under crashes (was: "✓ protocols fit", and check --faults crash=1 breaks it) ---

ASK = """
from assay import Component, Message, Port, System, action, on, persistent
from assay import protocol as p

class Req(Message): ...
class Resp(Message): ...

CLIENT = p.loop(lambda again: p.send(Req) >> p.recv(Resp) >> again)

class Client(Component):
    srv = Port(CLIENT KEEP)
    waiting: bool = FIELD(False)
    got: int = FIELD(0)

    @action(when=lambda self: not self.waiting and self.got < 2)
    def ask(self):
        self.waiting = True
        self.srv.send(Req())

    @on(Resp)
    def resp(self, m):
        self.waiting = False
        self.got = self.got + 1

class Server(Component):
    cli = Port(CLIENT.dual() KEEP)
    n: int = FIELD(0)

    @on(Req)
    def req(self, m):
        self.n = self.n + 1
        self.cli.send(Resp())

def system():
    s = System("ask", network="fifo")
    s.connect(s.add("c", Client).srv, s.add("v", Server).cli)
    return s
"""


def _ask(tmp_path: Path, kept: bool, fields: bool | None = None) -> Path:
    """The request-reply loop; `kept`: both ports survive a crash, and so do the fields
    (unless `fields` says otherwise)."""
    fields = kept if fields is None else fields
    src = ASK.replace(" KEEP", ", persistent=True" if kept else "") \
        .replace("FIELD", "persistent" if fields else "")
    path = tmp_path / f"ask_{int(kept)}{int(fields)}.py"
    path.write_text(src)
    return path


def test_a_fit_that_a_crash_breaks_is_proved_for_runs_without_a_crash_only(tmp_path: Path
                                                                          ) -> None:
    """c asks, crashes and restarts: its session starts again (send Req) while v's Resp is
    on its way, which `check --faults crash=1` reports as a protocol violation.  `verify`
    said "compatible (fifo network)" and "✓ protocols fit" without a word about crashes."""
    path = _ask(tmp_path, kept=False)
    res = api.check(path, faults="crash=1")
    assert res.verdict == "violation" and res.violation.kind == "protocol", res.text()
    r = api.verify(path)
    (o,) = r.find(kind="compatibility")
    assert o.verdict == "proved" and o.title.endswith("(fifo network, no crash)"), o
    assert o.reason.startswith(CRASH_NOTE) and any("crashes and restarts" in w
                                                   for w in o.witness)
    fit = summary(r)
    assert fit is not None and fit[0] == "proved" and "without a crash only" in fit[1]
    # asked to cover crashes: not proved, with a run of the protocols that breaks (unknown,
    # not refuted: that run may need a crash between a receive and its reply; `check` decides)
    r = api.verify(path, crashes=True)
    (o,) = r.find(kind="compatibility")
    assert o.verdict == "unknown" and "across crashes" in o.title
    assert o.reason.startswith(CRASH_BREAKS) and "check --faults crash=1" in o.reason
    assert any("crashes and restarts: its session starts again" in w for w in o.witness)
    assert r.verdict == "unknown" and summary(r)[0] == "unknown"


def test_a_run_of_the_protocols_after_a_crash_is_not_a_refutation_of_the_code() -> None:
    """specs/account_service: the bank answers in the step that receives, so it never rests
    between the two, and `check --faults crash=2` holds; the protocols alone break after a
    crash there.  `--crashes` leaves it unknown (with that run), never refuted."""
    spec = REPO / "specs" / "account_service.py"
    r = api.verify(spec, crashes=True)
    (o,) = r.find(kind="compatibility")
    assert o.verdict == "unknown" and "bank crashes and restarts" in " ".join(o.witness)
    assert r.verdict == "unknown"
    assert api.check(spec, faults="crash=1").verdict == "ok"


def test_the_simulator_with_crashes_reports_the_break_rather_than_hang(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under random crashes and restarts every failing run ends in a protocol violation or a
    deadlock (both sides waiting): reported, shrunk, none accepted or left hanging."""
    monkeypatch.chdir(tmp_path)             # the campaign writes its traces here
    camp = api.simulate(_ask(tmp_path, kept=False), faults="crash=0.2,restart=0.5", runs=20,
                        steps=60, seed=1)
    kinds = {r.violation["kind"] for r in camp.failures}
    assert kinds and kinds <= {"protocol", "deadlock"}, kinds


def test_persistent_ports_and_fields_fit_across_crashes(tmp_path: Path) -> None:
    """The twin whose ports (and fields) survive a crash: proved with no "no crash" in the
    title, also with `--crashes`, and `check --faults crash=1` agrees."""
    path = _ask(tmp_path, kept=True)
    r = api.verify(path)
    (o,) = r.find(kind="compatibility")
    assert (o.verdict, o.title, o.reason) == (
        "proved", "the protocols at c.srv and v.cli are compatible (fifo network)", "")
    assert r.verdict == "proved" and "without a crash" not in summary(r)[1]
    r = api.verify(path, crashes=True)
    assert r.verdict == "proved", r.text()
    assert api.check(path, faults="crash=1", deadlock=False).verdict == "ok"


def test_a_send_only_a_crash_takes_out_of_protocol_says_so_with_the_run(tmp_path: Path
                                                                         ) -> None:
    """Persistent ports, fields not: after a crash c's session still waits for Resp while
    `waiting` is False again, so `ask` sends Req out of turn (`check --faults crash=1`).  The
    obligation was unknown with "it may be unreachable"; it stays unknown (no run without a
    crash breaks it) but now shows the run with the crash that does."""
    path = _ask(tmp_path, kept=True, fields=False)
    res = api.check(path, faults="crash=1")
    assert res.verdict == "violation" and res.violation.blame == "c.ask", res.text()
    (o,) = api.verify(path).find("Client", "ask", "protocol")
    assert o.verdict == "unknown" and "a run with a crash and restart does" in o.reason, o
    assert "crashes and restarts" in o.witness and "fires ask" in o.witness[-1]


STREAM = """
from assay import Component, Message, Port, System, action, on
from assay import protocol as p

class X(Message): ...

OUT = p.loop(lambda again: p.send(X) >> again)

class A(Component):
    out = Port(OUT)
    k: int = 0

    @action(when=lambda self: self.k < 2)
    def go(self):
        self.k = self.k + 1
        self.out.send(X())

class B(Component):
    inp = Port(OUT.dual())
    n: int = 0

    @on(X)
    def got(self, m):
        self.n = self.n + 1

def system():
    s = System("stream")
    s.connect(s.add("a", A).out, s.add("b", B).inp, capacity=2)
    return s
"""


def test_a_protocol_a_restart_cannot_break_fits_across_crashes_without_persistence(
        tmp_path: Path) -> None:
    """A one-way stream has one position on each side: a restart changes nothing there, so
    the fit holds across crashes with ordinary ports, and is not qualified."""
    path = tmp_path / "stream.py"
    path.write_text(STREAM)
    r = api.verify(path)
    (o,) = r.find(kind="compatibility")
    assert (o.verdict, o.title) == (
        "proved", "the protocols at a.out and b.inp are compatible (unordered network, capacity 2)")
    assert api.verify(path, crashes=True).verdict == "proved"
    assert api.check(path, faults="crash=1", deadlock=False).verdict == "ok"


def test_crashes_from_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    path = _ask(tmp_path, kept=False)
    out = subprocess.run([sys.executable, "-m", "assay", "verify", str(path)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "no crash" in out.stdout and \
        "without a crash only" in out.stdout, out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-m", "assay", "verify", "--crashes", str(path)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 3 and "may not fit after a crash" in out.stdout and \
        "crashes and restarts" in out.stdout, out.stdout + out.stderr


# --- probed this round and found right: a false contract and its true twin ----------------------

RIGHT = [
    # (body, false ensures, true ensures, requires or None)
    ("self.o = None if m.a > 0 else m.a", "self.o is None", "self.o is None or self.o <= 0",
     None),
    ("self.o = m.a\nif self.o is not None and self.o > 3:\n    self.n = 1", "self.n == 1",
     "self.n == 1 or m.a <= 3", None),
    ("self.mp = self.mp.set(m.a, m.a)\nself.n = self.mp[m.a]", "self.n == 0",
     "self.n == m.a", None),
    ("self.n = abs(m.a)", "self.n == m.a", "self.n >= 0", None),
    ("self.b = bool(self.s)", "self.b", "self.b == (len(self.s) > 0)", None),
    ("self.n = sum(self.mp.values())", "self.n >= 0", "len(self.mp) > 0 or self.n == 0",
     None),
    ("self.s = self.s | {m.a}\nself.n = len(self.s)", "self.n == len(old.s) + 1",
     "self.n == len(old.s) + (0 if m.a in old.s else 1)", None),
    ("self.n = self.n + 1", "self.n == old.n + 1 and old.t[0] == 0", "self.n == old.n + 1",
     None),
    ("self.n = m.a", "self.n == m.a if m.a > 0 else self.n == -m.a",
     "self.n == m.a if m.a > 0 else self.n == m.a", None),
]


@pytest.mark.parametrize("i", range(len(RIGHT)))
def test_probed_and_right(tmp_path: Path, i: int) -> None:
    body, false, true, pre = RIGHT[i]
    r = verify_go(tmp_path, f"right{i}", body, false, pre)
    assert r.verdict == "refuted", r.text()
    assert verify_go(tmp_path, f"right{i}_ok", body, true, pre).verdict == "proved"


UNKNOWN = [
    # sorted / reversed / slices, comprehensions with conditions, enumerate / zip, string
    # methods, effects inside contracts: not translated, so unknown (never proved)
    ("self.t = tuple(sorted(self.t))", "self.t == old.t"),
    ("self.t = tuple(reversed(self.t))", "self.t == old.t"),
    ("self.t = self.t[::-1]", "self.t == old.t"),
    ("self.t = self.t + (m.a,)\nself.t = self.t[-3:]", "len(self.t) == len(old.t) + 1"),
    ("self.s = frozenset(x for x in self.s if x > m.a)", "m.a in self.s or len(self.s) == 0"),
    ("self.n = len([x for x in self.t if x == m.a])", "self.n <= 1"),
    ("self.b = any(x > m.a for x in self.t)", "not self.b"),
    ("for i, x in enumerate(self.t):\n    self.n = i", "self.n == old.n"),
    ("for x, y in zip(self.t, self.t):\n    self.n = x", "self.n == old.n"),
    ("self.b = 'ab'.startswith('b')", "self.b"),
    ("self.b = str(m.a) == '1'", "not self.b"),
    ("self.n = self.t.count(m.a)", "self.n <= 1"),
    ("self.n = m.a", "(lambda x: x + 2)(self.n) == m.a + 1"),
]

# effects inside contracts: a method that assigns the state, called from `ensures`, is a spec
# error when the spec is loaded (the language's red team), before verify sees it
EFFECTS = [
    ("self.n = self.n + 1", "self.bump() == 1 and self.n == old.n + 1"),
    ("self.n = self.n + 1", "old.bump() == 1 and old.n == self.n"),
]


@pytest.mark.parametrize("i", range(len(UNKNOWN)))
def test_probed_and_unknown(tmp_path: Path, i: int) -> None:
    body, false = UNKNOWN[i]
    r = verify_go(tmp_path, f"unk{i}", body, false)
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "unknown" and ens.reason, r.text()


@pytest.mark.parametrize("i", range(len(EFFECTS)))
def test_a_contract_that_changes_the_state_is_a_spec_error(tmp_path: Path, i: int) -> None:
    body, false = EFFECTS[i]
    with pytest.raises(SpecError, match="must not change the state"):
        verify_go(tmp_path, f"eff{i}", body, false)


# --- probed: components (subclasses, guarded receives, bounded and nested fields) -------------

COMPONENT_HEAD = """
from typing import Annotated
from assay import Component, Message, Port, Range, System, ensures, invariant, on

class Go(Message):
    a: int

class B(Component):
    peer = Port()
    n: Annotated[int, Range(0, 7)] = 0
    t: tuple[tuple[int, int], ...] = ()

    def val(self, a):
        return a % 8

    @on(Go)
    @ensures(lambda old, self, m: self.n >= 0)
    def go(self, m):
        self.n = self.val(m.a)
"""

COMPONENTS = [
    # (the class C, its verdict): a subclass's override of a helper the handler calls, a
    # subclass's own invariant, a guard the handler's contract relies on, a bounded field
    # overflowing, nested tuples
    ("class C(B):\n    def val(self, a):\n        return a\n", "refuted"),
    ("class C(B):\n    def val(self, a):\n        return abs(a) % 3\n", "proved"),
    ("class C(B):\n    invariant(lambda self: self.n > 0)\n", "refuted"),
    ("class C(B):\n    invariant(lambda self: self.n >= 0)\n", "proved"),
    ("class C(B):\n    @on(Go, when=lambda self, m: m.a > 0 or self.n > 5)\n"
     "    @ensures(lambda old, self, m: self.n > 0)\n    def go(self, m):\n"
     "        self.n = min(m.a, 7)\n", "refuted"),
    ("class C(B):\n    @on(Go, when=lambda self, m: m.a > 0)\n"
     "    @ensures(lambda old, self, m: self.n > 0)\n    def go(self, m):\n"
     "        self.n = min(m.a, 7)\n", "proved"),
    ("class C(B):\n    @on(Go)\n    def go(self, m):\n        self.n = self.n + 1\n",
     "refuted"),
    ("class C(B):\n    @on(Go)\n    @ensures(lambda old, self, m: self.t[-1][0] == self.t[-1][1])"
     "\n    def go(self, m):\n        self.t = self.t + ((m.a, m.a + 1),)\n", "refuted"),
    ("class C(B):\n    @on(Go)\n    @ensures(lambda old, self, m: self.t[-1][1] == "
     "self.t[-1][0] + 1)\n    def go(self, m):\n        self.t = self.t + ((m.a, m.a + 1),)\n",
     "proved"),
]


@pytest.mark.parametrize("i", range(len(COMPONENTS)))
def test_probed_components(tmp_path: Path, i: int) -> None:
    body, verdict = COMPONENTS[i]
    path = tmp_path / f"comp{i}.py"
    path.write_text(COMPONENT_HEAD + "\n" + body + "\n\ndef system():\n    s = System('t')\n"
                    "    s.add('c', C)\n    return s\n")
    r = api.verify(path)
    assert r.verdict == verdict, r.text()


# --- a system property over instances (was: "✓ every obligation proved", not a word on it) -----

COUNTERS = """
from assay import Component, Message, Port, System, action

class C(Component):
    peer = Port()
    n: int = 0

    @action(when=lambda self: self.n < 3)
    def inc(self):
        self.n = self.n + 1

def system():
    s = System("counters")
    s.add("a", C)
    s.add("b", C)

    @s.always
    def below_three(g):
        return all(c.n < 3 for c in g.instances(C))
    return s
"""


def test_a_false_property_over_instances_is_not_read_as_proved(tmp_path: Path) -> None:
    """verify proves handlers and connections, not the system's properties: every obligation
    here is proved while `below_three` is false (check: a counter reaches 3).  The report now
    names the properties it does not cover, in its text and its JSON."""
    path = tmp_path / "counters.py"
    path.write_text(COUNTERS)
    res = api.check(path, deadlock=False)
    assert res.verdict == "violation" and res.violation.kind == "property"
    r = api.verify(path)
    assert r.verdict == "proved" and r.properties == ("below_three",)
    assert r.to_json()["properties_not_covered"] == ["below_three"]
    assert "not covered by verify: the system's properties below_three" in r.text()
