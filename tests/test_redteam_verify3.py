"""Soundness red team of `assay verify` (third round): specs whose contracts are false under
Python's semantics (each shown so by running the spec's own code, or by `assay check`) must be
refuted or unknown with the reason, never proved; each has a true twin that stays proved.
The table at the end pins the constructs probed this round and found right."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.model.load import build, load_module
from assay.verifier.verify import VerifyReport, verify
from tests.test_redteam_verify import verdicts, verify_go

REPO = Path(__file__).resolve().parents[1]


def verify_file(path: Path) -> VerifyReport:
    system, _, _ = build(str(path))
    return verify(system)


def run_cli(cmd: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "assay", cmd, str(path)], env=env,
                          capture_output=True, text=True, timeout=120)


# --- a message class whose own methods change what it builds or reads (was proved) ------------

OWN = {
    "new": "    def __new__(cls, a):\n        return Message.__new__(cls, a + 1)\n",
    "init": "    def __init__(self, a):\n        raise ValueError('no')\n",
    "getattribute": "    def __getattribute__(self, k):\n"
                    "        return 7 if k == 'a' else object.__getattribute__(self, k)\n",
    "property": "    @property\n    def a(self):\n        return 42\n",
}


def _own(kind: str) -> str:
    if kind == "property":      # a field's name given to a property in a subclass
        return "from assay import Message\n\nclass Base(Message):\n    a: int\n\n" \
               f"class Go2(Base):\n{OWN[kind]}\n"
    return f"from assay import Message\n\nclass Go2(Message):\n    a: int\n\n{OWN[kind]}\n"


@pytest.mark.parametrize("kind", sorted(OWN))
def test_a_message_class_with_methods_of_its_own_is_not_translated(tmp_path: Path,
                                                                    kind: str) -> None:
    """`Go2(m.a).a == m.a` was proved: the translation built the message from its fields as
    if the class added nothing, while Python runs the class's own `__new__`, `__init__`,
    `__getattribute__` or property (4, a ValueError, 7, 42 for `Go2(3).a`)."""
    prelude = _own(kind)
    mod = load_module(str(_write(tmp_path / f"own_{kind}.py", prelude)))
    try:
        assert mod.Go2(3).a != 3
    except ValueError:
        assert kind == "init"
    r = verify_go(tmp_path, f"own_{kind}", "x = Go2(m.a)\nself.n = x.a", "self.n == m.a",
                  prelude=prelude)
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "unknown" and "a message class whose own methods" in ens.reason, \
        r.text()
    assert r.verdict != "proved"
    # the plain message class: still proved
    assert verify_go(tmp_path, f"plain_{kind}", "x = Go(m.a)\nself.n = x.a",
                     "self.n == m.a").verdict == "proved"


def test_a_message_class_that_only_prints_its_own_way_is_still_translated(
        tmp_path: Path) -> None:
    """`__repr__` and `__str__` change how a message prints, not what it holds or reads (and
    `repr()`/`str()` are not translated): such a class stays plain, as a record does."""
    prelude = ("from assay import Message\n\nclass Go2(Message):\n    a: int\n\n"
               "    def __repr__(self):\n        return 'go'\n\n"
               "    def __str__(self):\n        return 'go'\n")
    r = verify_go(tmp_path, "own_repr", "x = Go2(m.a)\nself.n = x.a", "self.n == m.a",
                  prelude=prelude)
    assert r.verdict == "proved", r.text()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


RECEIVE = """
from typing import Optional
from assay import Component, Message, Port, System, action, on

class Go2(Message):
    a: Optional[int]
OWN

class C(Component):
    peer = Port()
    n: int = 0

    @on(Go2)
    def go(self, m):
        if m.a is not None:
            self.n = m.a + 1

class D(Component):
    peer = Port()
    k: int = 0

    @action(when=lambda self: self.k == 0)
    def fire(self):
        self.k = 1
        self.peer.send(Go2(SENT))

def system():
    s = System('t')
    s.connect(s.add('c', C).peer, s.add('d', D).peer)
    return s
"""


def test_a_received_message_of_such_a_class_is_not_read_as_its_fields(tmp_path: Path) -> None:
    """The receiver's `m.a` runs the class's `__getattribute__` too: here `m.a is not None`
    is True and `m.a + 1` then raises TypeError, which `check` finds; verify proved "raises
    no exception" reading `m.a` as the field."""
    own = ("\n    def __getattribute__(self, k):\n        v = object.__getattribute__(self, k)"
           "\n        return 'x' if k == 'a' and v is None else v\n")
    path = _write(tmp_path / "receive.py", RECEIVE.replace("OWN", own).replace("SENT", "None"))
    out = run_cli("check", path)
    assert out.returncode == 1 and "TypeError" in out.stdout, out.stdout
    r = verify_file(path)
    (exc,) = r.find("C", "go", "no-exception")
    assert exc.verdict == "unknown" and "a message class whose own methods" in exc.reason
    path = _write(tmp_path / "receive_ok.py", RECEIVE.replace("OWN", "").replace("SENT", "1"))
    assert verify_file(path).verdict == "proved"


# --- a send in a for loop over a set, on a port with a protocol (was proved) --------------------

LOOP = """
from assay import Component, Message, Peer, Port, System, action, on
from assay import protocol as p

class X(Message):
    n: int

ONE = p.send(X) >> p.end

class A(Component):
    out = Port(ONE, many=MANY)
    s: frozenset[int] = frozenset({1, 2})
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        BODY

class B(Component):
    inp = Port(ONE.dual())
    got: int = 0

    @on(X)
    def x(self, m):
        self.got = self.got + 1

def system():
    s = System('pl')
    a = s.add('a', A)
    s.connect(a.out, s.add('b', B).inp)
    if MANY:
        s.connect(a.out, s.add('c', B).inp)

    @s.terminal
    def done(g):
        return True
    return s
"""

SEND_PER_MEMBER = [
    # (many-port, body, the protocol is kept)
    (False, "for x in self.s:\n            self.out.send(X(x))", False),
    (True, "for x in self.s:\n            self.out.broadcast(X(x))", False),
    (True, "for x in self.s:\n            self.out.send(X(x), to=Peer('b'))", False),
    (True, "for q in self.out.peers:\n            self.out.send(X(1), to=q)", True),
]


@pytest.mark.parametrize("i", range(len(SEND_PER_MEMBER)))
def test_a_send_in_a_loop_over_a_set_counts_once_per_member(tmp_path: Path, i: int) -> None:
    """The body of `for x in self.s:` is translated once, for an arbitrary member, so its send
    site was counted as one send on the session: `p.send(X) >> p.end` was proved kept by a
    loop that sends X twice on it (`check`: "which its protocol does not allow here").  A
    send to the loop's element (one per peer) is still proved."""
    many, body, kept = SEND_PER_MEMBER[i]
    path = _write(tmp_path / f"loop{i}.py",
                  LOOP.replace("MANY", str(many)).replace("BODY", body))
    out = run_cli("check", path)
    assert (out.returncode == 0) == kept, out.stdout
    r = verify_file(path)
    (proto,) = r.find("A", "go", "protocol")
    if kept:
        assert proto.verdict == "proved", r.text()
        return
    assert "which its protocol does not allow" in out.stdout
    assert proto.verdict == "unknown" and "in a for loop over a frozenset" in proto.reason, \
        r.text()


# --- a choice made in a loop over a set (was proved) ---------------------------------------------

CHOOSE = ("if m.a > 0:\n    for x in self.s:\n        c = self.choose(range(2))\n"
          "        assert c == x % 2\n    self.n = 1\nelse:\n    self.n = 2")


def test_a_choice_in_a_loop_over_a_set_is_made_for_each_member(tmp_path: Path) -> None:
    """One constant stood for the choice of every iteration, so the loop completed only
    where one value suited every member: with s = {1, 2} none does, and `self.n == 2` was
    proved after it — but the kernel chooses 1 for x = 1 and 0 for x = 2 and ends with
    n == 1."""
    pre = "lambda self, m: self.s == frozenset({1, 2})"
    r = verify_go(tmp_path, "choose_loop", CHOOSE, "self.n == 2", pre)
    assert verdicts(r)["ensures"] != "proved", r.text()
    r = verify_go(tmp_path, "choose_loop_ok", CHOOSE, "self.n in (1, 2)", pre)
    assert verdicts(r)["ensures"] == "proved", r.text()


# --- probed and found right: a false contract and its true twin ---------------------------------

HELPER = ("def h(c, x, k=3):\n    if x > 0:\n        return 1\n    c.n = 5\n    return k\n\n"
          "def loop(c, x):\n    for i in range(2):\n        for j in range(2):\n"
          "            if i + j == x:\n                return\n            c.n = c.n + 1\n")

RIGHT = [
    # (body, false ensures, true ensures, requires or None); the module defines h and loop
    ("for x in self.s:\n    if x == m.a:\n        raise ValueError()\nself.n = 1",
     "m.a in old.s", "m.a not in old.s", "lambda self, m: m.a not in self.s"),
    ("self.n = h(self, m.a)", "self.n == 5 or self.n == 1",
     "self.n == (1 if m.a > 0 else 3)", None),
    ("loop(self, m.a)", "self.n == old.n + 4",
     "self.n == old.n + (0 if m.a == 0 else 1 if m.a == 1 else 3 if m.a == 2 else 4)", None),
    ("self.n += self.bump()", "self.n == old.n + 2", "self.n == old.n + 1", None),
    ("x = (self.n, self.bump())\nself.n = x[0] - x[1]", "self.n == old.n",
     "self.n == old.n - 1", None),
    ("self.n = max(self.bump(), self.n)", "self.n == max(old.n, 1)",
     "self.n == max(1, old.n + 1)", None),
    ("self.n, self.n = 1, 2", "self.n == 1", "self.n == 2", None),
    ("x = self\nx.n = 5", "self.n == old.n", "self.n == 5", None),
    ("for a, b in ((1, 2), (3, 4)):\n    self.n = self.n + a * b", "self.n == old.n + 10",
     "self.n == old.n + 14", None),
    ("self.t = (m.a,) + self.t", "self.t[-1] == m.a", "self.t[0] == m.a", None),
    ("self.n = m.a // -3", "self.n * -3 <= m.a", "self.n * -3 >= m.a", None),
    ("self.mp = self.mp.set(m.a, 1)", "len(self.mp) == len(old.mp) + 1",
     "len(self.mp) == len(old.mp) + (0 if m.a in old.mp else 1)", None),
    ("self.mp = Map({1: 2}) | Map({1: 3})", "self.mp[1] == 2", "self.mp[1] == 3", None),
    ("self.b = all(self.mp[k] > 0 for k in self.mp)", "self.b",
     "self.b == all(v > 0 for v in self.mp.values())", None),
    ("self.b = 'ab' + 'c' == 'a' + 'bc'", "not self.b", "self.b", None),
    ("x = self.mp.get(m.a)\nif x is not None:\n    self.n = x + 0",
     "self.n == self.mp[m.a]", "self.n == self.mp.get(m.a, old.n)", None),
]


@pytest.mark.parametrize("i", range(len(RIGHT)))
def test_probed_and_right(tmp_path: Path, i: int) -> None:
    body, false, true, pre = RIGHT[i]
    r = verify_go(tmp_path, f"right{i}", body, false, None if "raise" in body else pre,
                  prelude=HELPER)
    assert r.verdict == "refuted", r.text()
    assert verify_go(tmp_path, f"right{i}_ok", body, true, pre,
                     prelude=HELPER).verdict == "proved"


UNKNOWN = [
    # constructs whose meaning the translation does not model: unknown, never proved
    ("for x in self.t:\n    self.n = self.n + 1", "self.n == old.n"),
    ("for x in self.s:\n    self.n = x", "self.n == old.n"),
    ("a, b = self.t\nself.n = a", "True"),
    ("self.n = h(self, m.a, k=5)", "self.n == 5"),
    ("self.n = ~m.a", "self.n == -m.a"),
    ("self.n = self.t.index(m.a)", "True"),
    ("self.b = 'a' < 'b'", "not self.b"),
    ("x: int\nself.n = x", "True"),
]


@pytest.mark.parametrize("i", range(len(UNKNOWN)))
def test_probed_and_unknown(tmp_path: Path, i: int) -> None:
    body, false = UNKNOWN[i]
    r = verify_go(tmp_path, f"unk{i}", body, false, prelude=HELPER)
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "unknown" and ens.reason, r.text()


# --- a pool's slot spawned with values (was proved from the class's initial state) ---------------

POOL = """
from assay import Component, Message, Peer, Port, System, action, invariant, on
from assay import protocol as p


class Job(Message):
    job: int


class Done(Message):
    job: int


W = p.loop(lambda again: p.recv(Job) >> p.send(Done) >> again | p.end)


class Dispatcher(Component):
    workers = Port(W.dual(), many=True)
    live: frozenset[Peer] = frozenset()
    grown: bool = False

    @action(when=lambda self: not self.grown)
    def grow(self):
        self.grown = True
        SPAWN

    @on(Done)
    def finished(self, m):
        pass


class Worker(Component):
    boss = Port(W)
    busy: bool = False

    @invariant
    def at_most_one(self):
        return not self.busy or self.busy

    @on(Job)
    def take(self, m):
        self.busy = True

    @action(when=lambda self: self.busy)
    def finish(self):
        self.boss.send(Done(0))
        self.busy = False


def system():
    s = System("pool_spawn", network="fifo")
    d = s.add("dispatcher", Dispatcher)
    s.pool("worker", Worker, size=1, owner=d.workers, port="boss", live="live")

    @s.terminal
    def end(g):
        return True
    return s
"""


@pytest.mark.parametrize("spawn,kept", [('self.spawn("worker", busy=True)', False),
                                        ('self.spawn("worker")', True)])
def test_a_slot_spawned_with_values_does_not_start_in_its_initial_state(
        tmp_path: Path, spawn: str, kept: bool) -> None:
    """A slot starts, each time it is spawned, from its class's initial state with the values
    the spawn gives: here busy=True, so `finish` sends Done where the protocol expects a Job
    (`check` finds it).  Worker's initial state and the relation inferred from it (busy
    exactly after a Job) were proved from the class's defaults alone."""
    path = _write(tmp_path / "pool.py", POOL.replace("SPAWN", spawn))
    out = run_cli("check", path)
    assert (out.returncode == 0) == kept, out.stdout
    r = verify_file(path)
    (init,) = r.find("Worker", kind="init")
    (proto,) = r.find("Worker", "finish", "protocol")
    if kept:
        assert init.verdict == "proved" and proto.verdict == "proved", r.text()
        return
    assert "which its protocol does not allow" in out.stdout
    assert init.verdict == "unknown" and "may start from the values" in init.reason, r.text()
    assert proto.verdict != "proved", r.text()
