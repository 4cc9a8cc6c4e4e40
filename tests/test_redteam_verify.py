"""Soundness red team of `assay verify` (second round): specs whose contracts are false under
Python's semantics.  Each false contract must be refuted or unknown (with the reason), never
proved, and each has a true twin that must be proved (so a fix is not "everything unknown").
The ones marked "was proved" were proved before their fix; the table at the end pins the
constructs probed and found right."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.errors import SpecError
from assay.model.load import build
from assay.verifier.verify import VerifyReport, verify

REPO = Path(__file__).resolve().parents[1]

HEAD = """
from enum import Enum
from typing import Optional
from assay import Component, Map, Message, Port, System, action, ensures, on, requires

class Go(Message):
    a: int

class Color(Enum):
    RED = 1
    GREEN = 2
    CRIMSON = 1

class C(Component):
    peer = Port()
    n: int = 0
    b: bool = False
    s: frozenset[int] = frozenset()
    t: tuple[int, ...] = ()
    o: Optional[int] = None
    mp: Map[int, int] = Map()

    def bump(self):
        self.n = self.n + 1
        return 1
"""


def _spec(tmp_path: Path, name: str, body: str, ens: str, pre: str | None = None,
          prelude: str = "") -> Path:
    src = prelude + HEAD + "\n    @on(Go)\n" + (f"    @requires({pre})\n" if pre else "") + \
        f"    @ensures(lambda old, self, m: {ens})\n    def go(self, m):\n" + \
        textwrap.indent(textwrap.dedent(body), "        ") + \
        "\n\ndef system():\n    s = System('t')\n    s.add('c', C)\n    return s\n"
    path = tmp_path / f"{name}.py"
    path.write_text(src)
    return path


def verify_go(tmp_path: Path, name: str, body: str, ens: str, pre: str | None = None,
              prelude: str = "") -> VerifyReport:
    """verify one handler `go` of C (fields n, b, s, t, o, mp; method bump) on Go(a: int)."""
    system, _, _ = build(str(_spec(tmp_path, name, body, ens, pre, prelude)))
    return verify(system)


def verdicts(r: VerifyReport) -> dict[str, str]:
    return {o.kind: o.verdict for o in r.obligations}


# --- effects of a sub-expression that runs only on some paths (was proved) ---------------------

SHORT_CIRCUIT = [
    # (body, the false ensures, the true twin)
    ("if m.a > 5 and self.bump():\n    pass", "self.n == old.n + 1",
     "self.n == (old.n + 1 if m.a > 5 else old.n)"),
    ("if m.a > 5 or self.bump():\n    pass", "self.n == old.n + 1",
     "self.n == (old.n if m.a > 5 else old.n + 1)"),
    ("self.b = m.a > 5 and self.bump() == 1", "self.n == old.n + 1",
     "self.n == (old.n + 1 if m.a > 5 else old.n)"),
    ("if 5 < m.a < self.bump():\n    pass", "self.n == old.n + 1",
     "self.n == (old.n + 1 if m.a > 5 else old.n)"),
    ("x = self.bump() if m.a > 5 else 0", "self.n == old.n + 1",
     "self.n == (old.n + 1 if m.a > 5 else old.n)"),
    ("x = self.bump() if m.a > 5 else self.bump() + self.bump()", "self.n <= old.n + 1",
     "self.n == (old.n + 1 if m.a > 5 else old.n + 2)"),
]


@pytest.mark.parametrize("i", range(len(SHORT_CIRCUIT)))
def test_a_call_that_short_circuiting_skips_writes_no_field(tmp_path: Path, i: int) -> None:
    """`x > 5 and self.bump()` calls bump only where x > 5; its field writes were kept on
    every path, so `self.n == old.n + 1` was proved though Python leaves n alone."""
    body, false, true = SHORT_CIRCUIT[i]
    r = verify_go(tmp_path, f"sc{i}", body, false)
    assert verdicts(r)["ensures"] == "refuted", r.text()
    assert verify_go(tmp_path, f"sc{i}_ok", body, true).verdict == "proved"


def test_all_over_a_map_whose_condition_writes_a_field_is_unknown(tmp_path: Path) -> None:
    """The generator's effect was dropped: `all(self.bump() for k in self.mp)` was proved to
    leave n alone (Python bumps it once per key, until one is false)."""
    r = verify_go(tmp_path, "all_eff", "x = all(self.bump() == 1 for k in self.mp)",
                  "self.n == old.n")
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "unknown" and "has an effect" in ens.reason
    r = verify_go(tmp_path, "all_pure", "self.b = all(v > 0 for v in self.mp.values())",
                  "self.n == old.n")
    assert r.verdict == "proved"


def test_short_circuit_from_the_command_line(tmp_path: Path) -> None:
    path = _spec(tmp_path, "cli_sc", "if m.a > 5 and self.bump():\n    pass",
                 "self.n == old.n + 1")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "assay", "verify", str(path)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "every obligation proved" not in out.stdout
    assert "self.n == old.n + 1" in out.stdout


# --- a set display is a set, not a frozenset (was proved) ----------------------------------------

SETACT = """
from assay import Component, System, action, ensures

class C(Component):
    n: int = 0
    s: frozenset[int] = frozenset()

    @action(when=lambda self: self.n == 0)
    @ensures(lambda old, self: True)
    def go(self):
        self.n = 1
        self.s = {ASSIGN}

def system():
    s = System('t')
    s.add('c', C)
    return s
"""


@pytest.mark.parametrize("value,ok", [("{5}", False), ("{5} | self.s", False),
                                      ("self.s | {5}", True), ("frozenset({5})", True)])
def test_a_set_stored_in_a_frozenset_field_is_not_proved(tmp_path: Path, value: str,
                                                         ok: bool) -> None:
    """`self.s = {5}` stores a set, which the kernel refuses ("not a frozenset[int]"), and
    `set | frozenset` is a set too; verify proved both handlers."""
    path = tmp_path / "setact.py"
    path.write_text(SETACT.replace("{ASSIGN}", value))
    system, _, _ = build(str(path))
    r = verify(system)
    if ok:
        assert r.verdict == "proved", r.text()
        return
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "unknown" and "a mutable set: use frozenset" in ens.reason
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "assay", "check", str(path)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "which is not a frozenset[int]" in out.stdout


def test_a_set_on_one_path_is_a_set_after_the_merge(tmp_path: Path) -> None:
    r = verify_go(tmp_path, "set_path", "x = {m.a}\nif m.a > 0:\n    x = frozenset({1})\n"
                  "self.s = x", "True")
    assert verdicts(r)["ensures"] == "unknown"
    r = verify_go(tmp_path, "set_frozen", "x = {m.a}\nself.s = frozenset(x)", "m.a in self.s")
    assert r.verdict == "proved"


# --- an Enum whose != is its own (was proved) ----------------------------------------------------

def test_an_enum_with_its_own_ne_is_not_a_plain_enum(tmp_path: Path) -> None:
    ne = "\nclass N(Enum):\n    A = 0\n    Z = 1\n\n    def __ne__(self, o):\n" \
         "        return False\n"
    r = verify_go(tmp_path, "enum_ne", "if N.A != N.Z:\n    self.n = 1", "self.n == 1",
                  prelude="from enum import Enum\n" + ne)
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "unknown" and "only plain Enums" in ens.reason
    r = verify_go(tmp_path, "enum_ne_ok", "if Color.RED != Color.GREEN:\n    self.n = 1",
                  "self.n == 1")
    assert r.verdict == "proved"


# --- a protocol at one end of a connection only (was: no obligation) ----------------------------

ONE_SIDED = """
from assay import Component, Message, Port, System, action, on
from assay import protocol as p

class X(Message):
    n: int

class Y(Message):
    n: int

class A(Component):
    inp = Port(p.recv(X))
    got: int = 0

    @on(X)
    def x(self, m):
        self.got = 1

    @on(Y)
    def y(self, m):
        self.got = 2

class B(Component):
    out = Port(OUT)
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send(SENT(1))

def system():
    s = System('np')
    s.connect(s.add('a', A).inp, s.add('b', B).out)
    return s
"""


def test_a_connection_with_a_protocol_at_one_end_is_not_proved(tmp_path: Path) -> None:
    """b.out had no protocol: b sends Y, which a's protocol does not expect (`check` finds
    it), and verify said "every obligation proved"."""
    path = tmp_path / "one_sided.py"
    path.write_text(ONE_SIDED.replace("OUT", "").replace("SENT", "Y"))
    system, _, _ = build(str(path))
    r = verify(system)
    (conn,) = r.find(kind="compatibility")
    assert conn.verdict == "unknown" and "b.out has no protocol" in conn.reason
    assert r.verdict == "unknown"
    path.write_text(ONE_SIDED.replace("OUT", "p.send(X)").replace("SENT", "X"))
    system, _, _ = build(str(path))
    assert verify(system).verdict == "proved"
    path.write_text(ONE_SIDED.replace("OUT", "p.send(X)").replace("SENT", "Y"))
    system, _, _ = build(str(path))
    assert verify(system).verdict == "refuted"     # the send breaks b's own protocol


# --- probed and found right: a false contract and its true twin ---------------------------------

RIGHT = [
    # (body, false ensures, true ensures, requires or None)
    ("self.n = m.a // 2", "self.n * 2 <= m.a < self.n * 2 + 1",
     "self.n * 2 <= m.a < self.n * 2 + 2", None),
    ("self.n = m.a % -3", "self.n >= 0", "-3 < self.n <= 0", None),
    ("self.n = 7 // m.a", "self.n == -3", "self.n == -4", "lambda self, m: m.a == -2"),
    ("self.n = 10 // m.a", "True and False", "True", "lambda self, m: m.a != 0"),
    ("self.n = m.a ** 3", "self.n >= 0", "m.a < 0 or self.n >= 0", None),
    ("self.n = int(m.a > 0)", "self.n == 1", "self.n in (0, 1)", None),
    ("if (1, m.a) < (1, 2):\n    self.n = 1", "self.n == 1 or m.a > 2",
     "self.n == 1 or m.a >= 2", None),
    ("if (1,) < (1, m.a):\n    self.n = 1", "self.n == old.n", "self.n == 1", None),
    ("if m.a in (1, 2):\n    self.n = m.a", "self.n in (old.n, 1)", "self.n in (old.n, 1, 2)",
     None),
    ("if m.a in range(10, 0, -3):\n    self.n = m.a", "self.n in (old.n, 10, 7, 4)",
     "self.n in (old.n, 10, 7, 4, 1)", None),
    ("if self.o:\n    self.n = 1", "self.n == 1 or self.o is None",
     "self.n == 1 or self.o is None or self.o == 0", None),
    ("if self.t:\n    self.n = 1", "self.n == 1", "self.n == 1 or len(self.t) == 0", None),
    ("if 0 < self.bump() < 2:\n    pass", "self.n == old.n", "self.n == old.n + 1", None),
    ("if Color.RED is Color.CRIMSON:\n    self.n = 1", "self.n == old.n", "self.n == 1", None),
    ("for x in Color:\n    self.n = self.n + 1", "self.n == old.n + 3", "self.n == old.n + 2",
     None),
    ("self.n = self.t[-1]", "self.n == self.t[0]", "self.n == self.t[len(self.t) - 1]",
     "lambda self, m: len(self.t) > 0"),
    ("self.s = self.s ^ frozenset({m.a})", "m.a in self.s",
     "(m.a in self.s) != (m.a in old.s)", None),
    ("self.n = len(frozenset({m.a, 1}))", "self.n == 2", "self.n == 2 or m.a == 1", None),
    ("self.n = self.mp.get(m.a, 7)", "self.n == 7", "self.n == 7 or m.a in self.mp", None),
    ("for i in range(3):\n    if i == m.a:\n        return\n    self.n = self.n + 1",
     "self.n == old.n + 3", "self.n <= old.n + 3", None),
    ("if m.a > 0:\n    raise ValueError('x')\nself.n = 1", "True", "self.n == 1",
     "lambda self, m: m.a <= 0"),
]


@pytest.mark.parametrize("i", range(len(RIGHT)))
def test_probed_and_right(tmp_path: Path, i: int) -> None:
    body, false, true, pre = RIGHT[i]
    r = verify_go(tmp_path, f"right{i}", body, false, None if "raise" in body else pre)
    assert r.verdict == "refuted", r.text()
    assert verify_go(tmp_path, f"right{i}_ok", body, true, pre).verdict == "proved"


UNKNOWN = [
    # constructs whose Python meaning the translation does not model: unknown, never proved
    ("self.n = m.a and 5", "self.n == 5"),                # `and` returns an operand
    ("self.n = True + 1", "self.n == 1"),                 # bool as int
    ("if True == 1:\n    self.n = 1", "self.n == old.n"),
    ("if 0.1 + 0.2 == 0.3:\n    self.n = 1", "self.n == 1"),
    ("self.n = m.a / 2", "True"),
    ("self.n = 2 ** m.a", "True"),
    ("self.n = 2 ** 100", "self.n < 2 ** 64"),
    ("if m.a is self.n:\n    self.n = 1", "self.n == 1 or m.a != old.n"),
    ("self.t = self.t[-1:]", "len(self.t) == 1"),
    ("self.n = min(())", "True"),
    ("self.n = sum(())", "self.n == 1"),
    ("for i in range(3):\n    if i == m.a:\n        break\n    self.n = self.n + 1",
     "self.n == old.n + 3"),
    ("try:\n    self.n = 10 // m.a\nexcept ZeroDivisionError:\n    self.n = -1",
     "self.n != -1"),
    ("while self.n < 3:\n    self.n = self.n + 1", "self.n == 2"),
]


@pytest.mark.parametrize("i", range(len(UNKNOWN)))
def test_probed_and_unknown(tmp_path: Path, i: int) -> None:
    body, false = UNKNOWN[i]
    r = verify_go(tmp_path, f"unk{i}", body, false)
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "unknown" and ens.reason, r.text()


# --- a message the receiver has no handler for (was: every obligation proved) --------------------

UNHANDLED = """
from assay import Component, Message, Port, System, action, on

class Go(Message):
    a: int

class Tick(Message):
    k: int

class C(Component):
    peer = Port()
    n: int = 0
HANDLER

class E(C):
OVERRIDE

class D(Component):
    peer = Port()
    k: int = 0

    @action(when=lambda self: self.k == 0)
    def fire(self):
        self.k = 1
        self.peer.send(Go(0))
        self.after(1, Tick(0))
TIMER

def system():
    s = System('t')
    s.connect(s.add('c', E).peer, s.add('d', D).peer)
    return s
"""

ON_GO = "\n    @on(Go)\n    def go(self, m):\n        self.n = 1\n"
ON_TICK = "\n    @on(Tick)\n    def tick(self, m):\n        self.k = 2\n"


@pytest.mark.parametrize("handler,override,timer,missing", [
    pytest.param("", "    pass", ON_TICK, ["connection"], id="no-handler"),
    pytest.param(ON_GO, "    pass", "", ["D"], id="timer-without-handler"),
    pytest.param(ON_GO, "    pass", ON_TICK, [], id="all-handled"),
])
def test_a_message_without_a_handler_is_not_proved(tmp_path: Path, handler: str,
                                                    override: str, timer: str,
                                                    missing: list[str]) -> None:
    """`check` reports the delivery of a Go to a component with no handler for it (an
    override without `@on` removes the handler) as "unhandled"; verify had no obligation for
    it and said "every obligation proved"."""
    path = tmp_path / "unhandled.py"
    path.write_text(UNHANDLED.replace("HANDLER", handler).replace("OVERRIDE", override)
                    .replace("TIMER", timer))
    system, _, _ = build(str(path))
    r = verify(system)
    handled = r.find(kind="handled")
    assert sorted(o.component for o in handled) == missing, r.text()
    assert all(o.verdict == "unknown" and "no handler" in o.reason for o in handled)
    assert r.verdict == ("unknown" if missing else "proved"), r.text()


def test_an_override_without_on_is_a_spec_error(tmp_path: Path) -> None:
    """An override without `@on` removed the handler (verify: unknown, "no handler"); it is
    now refused when the spec is loaded, naming the fix."""
    path = tmp_path / "unhandled.py"
    path.write_text(UNHANDLED.replace("HANDLER", ON_GO)
                    .replace("OVERRIDE", "    def go(self, m):\n        self.n = 2")
                    .replace("TIMER", ON_TICK))
    with pytest.raises(SpecError, match="overrides C.go without its @on"):
        build(str(path))


# --- a spec edited between two verify calls in one process (was: the old text proved) ----------

def test_a_spec_edited_since_it_was_loaded_is_verified_anew(tmp_path: Path) -> None:
    """`load_module` kept the first module of a path for the process: a notebook that
    verified a spec, fixed (or broke) it and verified again got the old verdict — here the
    old "proved" of a spec whose contract is now false.  A module beside the spec too."""
    import assay

    (tmp_path / "helper.py").write_text("def f(x):\n    return x\n")
    body, imp = "self.n = helper.f(m.a)", "import helper\n"
    path = _spec(tmp_path, "edited", body, "self.n == m.a", prelude=imp)
    assert assay.verify(str(path)).verdict == "proved"
    _spec(tmp_path, "edited", body, "self.n == m.a + 1", prelude=imp)
    assert assay.verify(str(path)).verdict == "refuted"
    _spec(tmp_path, "edited", body, "self.n == m.a", prelude=imp)
    assert assay.verify(str(path)).verdict == "proved"
    (tmp_path / "helper.py").write_text("def f(x):\n    return x - 10\n")
    assert assay.verify(str(path)).verdict == "refuted"


# --- hypothesis: effects under short-circuits agree with Python ----------------------------------

def _expressions() -> st.SearchStrategy[str]:
    atom = st.sampled_from(["m.a > 2", "m.a < 1", "self.bump() > 1", "self.bump() == 1",
                            "self.n > 1"])
    return st.recursive(atom, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(st.sampled_from(["0", "m.a", "self.bump()"]),
                  st.sampled_from(["self.bump()", "m.a", "3"])).map(
            lambda t: f"(1 < {t[0]} < {t[1]})"),
        inner.map(lambda e: f"(not {e})")), max_leaves=5)


_HYP = itertools.count()


class _Bump:
    def __init__(self, n: int) -> None:
        self.n = n

    def bump(self) -> int:
        self.n = self.n + 1
        return 1


class _M:
    def __init__(self, a: int) -> None:
        self.a = a


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expr=_expressions(), a=st.integers(-1, 4), n=st.integers(0, 2))
def test_effects_in_conditional_expressions_agree_with_python(tmp_path: Path, expr: str,
                                                               a: int, n: int) -> None:
    me = _Bump(n)
    eval(expr, {}, {"self": me, "m": _M(a)})  # noqa: S307 -- the spec's own expression
    pre = f"lambda self, m: m.a == {a} and self.n == {n}"
    name = f"hyp{next(_HYP)}"
    r = verify_go(tmp_path, name, f"x = {expr}", f"self.n == {me.n}", pre)
    assert r.verdict == "proved", (expr, r.text())
    r = verify_go(tmp_path, name + "_not", f"x = {expr}", f"self.n != {me.n}", pre)
    assert verdicts(r)["ensures"] == "refuted", (expr, r.text())
