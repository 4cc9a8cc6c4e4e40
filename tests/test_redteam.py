"""Soundness red team: specs whose contracts are false under Python's semantics, each once
wrongly proved (or wrongly passed) and now refuted or unknown with the reason.  Each test
names the construct; the false contract is checked against the real handler too."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import z3

from assay.model.load import build
from assay.verifier import types as vtypes
from assay.verifier.verify import VerifyReport, verify

REPO = Path(__file__).resolve().parents[1]

HEAD = """
from assay import Component, Message, Port, System, ensures, on, requires

class Go(Message):
    a: str

class C(Component):
    peer = Port()
    n: int = 0
"""


def verify_handler(tmp_path: Path, name: str, body: str, *, ens: str,
                   pre: str | None = None) -> VerifyReport:
    """verify one handler `go` of a component C with field `n`, on a message Go(a: str)."""
    src = HEAD + "\n    @on(Go)\n" + (f"    @requires({pre})\n" if pre else "") + \
        f"    @ensures({ens})\n    def go(self, m):\n" + \
        textwrap.indent(textwrap.dedent(body), "        ") + \
        "\n\ndef system():\n    s = System('t')\n    s.add('c', C)\n    return s\n"
    path = tmp_path / f"{name}.py"
    path.write_text(src)
    system, _, _ = build(str(path))
    return verify(system)


# --- strings: z3.StringVal reads backslash escapes --------------------------------------------

def test_a_backslash_in_a_str_constant_is_that_character_not_an_escape(tmp_path: Path) -> None:
    """Python's "\\\\u{41}" is six characters; z3.StringVal("\\\\u{41}") was the string "A", so
    a handler that sets n when they differ (always, in Python) was proved to leave n alone."""
    assert "\\u{41}" != "A"
    r = verify_handler(tmp_path, "esc", "if '\\\\u{41}' != 'A':\n    self.n = 1",
                       ens="lambda old, self, m: self.n == old.n")
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "refuted"
    r = verify_handler(tmp_path, "esc_msg", "if m.a == 'A':\n    self.n = 1",
                       pre="lambda self, m: m.a == '\\\\u0041'",
                       ens="lambda old, self, m: self.n == 1")
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "refuted"
    assert ens.counterexample.message.a == "\\u0041"  # type: ignore[union-attr]


def test_a_counterexample_str_with_a_backslash_is_read_back_exactly(tmp_path: Path) -> None:
    r = verify_handler(tmp_path, "esc_back", "if m.a == '\\\\u{41}\\x00é😀':\n    self.n = 1",
                       ens="lambda old, self, m: self.n == old.n")
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "refuted"
    assert ens.counterexample.message.a == "\\u{41}\x00é😀"  # type: ignore[union-attr]


def test_a_str_past_z3s_characters_is_unknown_with_the_reason(tmp_path: Path) -> None:
    r = verify_handler(tmp_path, "high", "if m.a == '\U00030000':\n    self.n = 1",
                       ens="lambda old, self, m: self.n == old.n")
    (ens,) = r.find("C", "go", "ensures")
    assert ens.verdict == "unknown" and "a str with a character past U+2FFFF" in ens.reason


def test_str_val_and_str_of_round_trip() -> None:
    for s in ["", "A", "\\", "\\u{41}", "\\u0041", "\\x41", "\x00", "\n", "é", "😀", "}{\\"]:
        e = z3.simplify(vtypes.str_val(s))
        assert vtypes.str_of(e) == s
        assert z3.simplify(z3.Length(e)).as_long() == len(s)


# --- check: a handler that reads a set's order -----------------------------------------------

SET_ORDER = REPO / "tests" / "fixtures" / "bad_specs" / "nondeterministic_set_order.py"


def _check_cli(path: Path, seed: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "assay", "check", str(path)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_first_element_of_a_set_of_peers_is_refused_under_every_hash_seed() -> None:
    """`next(iter(self.nodes.peers))` was explored with whichever peer the process's hash
    seed put first: the violation (alice leads) was found under some PYTHONHASHSEEDs and
    not under others.  Now the determinism check's second run iterates sets the other way
    round, and every seed gives the same SpecError."""
    for seed in (0, 1, 2, 3):
        r = _check_cli(SET_ORDER, seed)
        assert r.returncode == 2, (seed, r.stdout, r.stderr)
        assert "Coordinator.elect (instance c) gave two different results" in r.stderr
        assert "the second run iterated each set the other way round" in r.stderr


HUB = """
from assay import Component, Message, Port, System, action, on

class Ping(Message): ...

class Hub(Component):
    nodes = Port(many=True)
    names: frozenset[str] = frozenset({"a", "bb", "ccc", "dddd"})
    sent: bool = False
    total: int = 0
    pair: tuple[frozenset[str], int] = (frozenset({"x", "y"}), 0)

    @action(when=lambda self: not self.sent)
    def ping(self):
        self.sent = True
        BODY

class Node(Component):
    hub = Port()
    got: int = 0

    @on(Ping)
    def ping(self, m):
        self.got += 1

def system():
    s = System("hub")
    h = s.add("h", Hub)
    for i in range(4):
        s.connect(h.nodes, s.add(f"n{i}", Node).hub)

    @s.terminal
    def done(g):
        return True

    return s
"""

ORDER_FREE = """for p in self.nodes.peers:           # the kernel orders sends per link
            self.nodes.send(Ping(), to=p)
        for n in self.names:                 # a sum: the order does not matter
            self.total += len(n)
        self.names = self.names              # the same sets, back in the state
        self.pair = (self.pair[0], 1)"""


def test_an_order_free_loop_over_sets_is_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "free.py"
    path.write_text(HUB.replace("BODY", ORDER_FREE))
    for seed in (0, 5):
        r = _check_cli(path, seed)
        assert r.returncode == 0 and "all properties hold" in r.stdout, (r.stdout, r.stderr)


MSG_SET = """
from assay import Component, Message, Port, System, action, on

class Names(Message):
    names: frozenset[str]

class A(Component):
    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send(Names(frozenset({"alice", "bob", "carol", "dave"})))

class B(Component):
    inp = Port()
    first: str = ""
    kept: frozenset[str] = frozenset()

    @on(Names)
    def names(self, m):
        BODY

def system():
    s = System("msgset")
    s.connect(s.add("a", A).out, s.add("b", B).inp)

    @s.terminal
    def end(g):
        return True

    return s
"""


def test_a_message_set_read_in_order_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "msg.py"
    path.write_text(MSG_SET.replace("BODY", "self.first = next(iter(m.names))"))
    r = _check_cli(path, 0)
    assert r.returncode == 2 and "B.names (instance b) gave two different results" in r.stderr
    path.write_text(MSG_SET.replace("BODY", "self.first = min(m.names)\n        "
                                    "self.kept = m.names"))
    r = _check_cli(path, 0)
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_a_field_set_read_in_order_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "first.py"
    path.write_text(HUB.replace("BODY", "self.total = len(list(self.names)[0])"))
    r = _check_cli(path, 0)
    assert r.returncode == 2 and "Hub.ping (instance h) gave two different results" in r.stderr
    path.write_text(HUB.replace("BODY", "self.total = len(sorted(self.names)[0])"))
    r = _check_cli(path, 0)
    assert r.returncode == 0, (r.stdout, r.stderr)


# --- check --checkpoint: a module beside the spec ---------------------------------------------

CP_SPEC = """
from assay import Component, System, action

from lim import LIMIT, TOP


class C(Component):
    n: int = 0

    @action(when=lambda self: self.n < TOP)
    def up(self):
        self.n += 1


def system() -> System:
    s = System("cp")
    s.add("c", C)

    @s.always
    def below(g):
        return g["c"].n < LIMIT

    @s.terminal
    def end(g):
        return True

    return s
"""


def _check_args(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "assay", "check", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_checkpoint_is_not_resumed_when_an_imported_module_beside_the_spec_changed(
        tmp_path: Path) -> None:
    """The checkpoint's identity was the spec file's digest only: after `lim.py` (imported by
    the spec) changed, the search resumed past the states where the property now fails and
    printed "✓ all properties hold (exhaustive)"."""
    spec, lim, ck = tmp_path / "spec.py", tmp_path / "lim.py", tmp_path / "ck"
    spec.write_text(CP_SPEC)
    lim.write_text("LIMIT = 100\nTOP = 20\n")
    cp = ("--checkpoint", str(ck), "--checkpoint-every", "0")
    first = _check_args(str(spec), *cp, "--max-states", "10")
    assert first.returncode == 3 and "incomplete" in first.stdout
    same = _check_args(str(spec), *cp, "--max-states", "15")     # unchanged: resumed
    assert same.returncode == 3 and "incomplete" in same.stdout, same.stderr
    lim.write_text("LIMIT = 5\nTOP = 8\n")
    r = _check_args(str(spec), *cp)
    assert r.returncode == 2 and "holds a checkpoint of another check" in r.stderr
    assert "a module beside the spec that it imports changed" in r.stderr
    assert "hold" not in r.stdout
    fresh = _check_args(str(spec))
    assert fresh.returncode == 1 and "property 'below' does not hold" in fresh.stdout


# --- check: a property that reads the whole state through repr(g) -------------------------------

def test_a_property_that_reads_repr_of_the_world_is_not_memoised_as_reading_nothing(
        tmp_path: Path) -> None:
    """`repr(g)` noted no read: the compact search memoised the property's first verdict
    for every state and printed "✓ all properties hold (exhaustive)", while --full-states
    and simulate found the violation."""
    path = tmp_path / "reprprop.py"
    path.write_text(textwrap.dedent('''
        from assay import Component, System, action

        class C(Component):
            n: int = 0

            @action(when=lambda self: self.n < 5)
            def up(self):
                self.n += 1

        def system():
            s = System("reprprop")
            s.add("c", C)

            @s.always
            def never_three(g):
                return "n=3" not in repr(g)

            @s.terminal
            def end(g):
                return True

            return s
    '''))
    for extra in ((), ("--full-states",), ("--por",)):
        r = _check_args(str(path), *extra)
        assert r.returncode == 1, (extra, r.stdout, r.stderr)
        assert "property 'never_three' does not hold" in r.stdout


# --- check: a property that reads a set's order -----------------------------------------------

PROP_SET = """
from assay import Component, System, action

class C(Component):
    names: frozenset[str] = frozenset({"alice", "bob", "carol", "dave"})
    n: int = 0

    @action(when=lambda self: self.n < 2)
    def up(self):
        self.n += 1

def system():
    s = System("propset")
    s.add("c", C)

    @s.always
    def prop(g):
        return BODY

    @s.terminal
    def end(g):
        return True

    return s
"""


def test_a_property_that_reads_a_sets_order_is_refused_under_every_hash_seed(
        tmp_path: Path) -> None:
    """`next(iter(g["c"].names)) != "alice"` held or failed with PYTHONHASHSEED."""
    path = tmp_path / "propset.py"
    path.write_text(PROP_SET.replace("BODY", 'next(iter(g["c"].names)) != "alice"'))
    for seed in (0, 1, 2, 3):
        r = _check_cli(path, seed)
        assert r.returncode == 2, (seed, r.stdout, r.stderr)
        assert "property 'prop' is not a function of the state" in r.stderr
    path.write_text(PROP_SET.replace("BODY", "next(TICK) % 2 == 0").replace(
        "def system():", "import itertools\nTICK = itertools.count()\n\ndef system():"))
    r = _check_cli(path, 0)
    assert r.returncode == 2 and "property 'prop' is not a function of the state" in r.stderr
    path.write_text(PROP_SET.replace("BODY", 'min(g["c"].names) != "bob" and '
                                     'sum(len(x) for x in g["c"].names) == 17'))
    r = _check_cli(path, 1)
    assert r.returncode == 0 and "all properties hold" in r.stdout, (r.stdout, r.stderr)


# --- verify: a module global the system function sets -------------------------------------------

def test_a_second_verify_with_other_parameters_does_not_reuse_the_first_translation(
        tmp_path: Path) -> None:
    """Translations read module globals as constants and were cached per class for the whole
    process: after `system(limit=3)` was verified, `system(limit=10)` (which sets LIMIT = 10)
    was still proved with LIMIT = 3."""
    path = tmp_path / "gl.py"
    path.write_text(textwrap.dedent('''
        from assay import Component, Message, Port, System, ensures, on

        LIMIT = 3

        class Go(Message):
            x: int

        class C(Component):
            peer = Port()
            n: int = 0

            @on(Go)
            @ensures(lambda old, self, m: self.n <= 5)
            def go(self, m):
                self.n = LIMIT

        def system(limit: int = 3) -> System:
            global LIMIT
            LIMIT = limit
            s = System("gl")
            s.add("c", C)
            return s
    '''))
    verdicts = []
    for limit in ("3", "10", "3"):
        system, _, _ = build(str(path), None, {"limit": limit})
        (ens,) = verify(system).find("C", "go", "ensures")
        verdicts.append(ens.verdict)
    assert verdicts == ["proved", "refuted", "proved"]
