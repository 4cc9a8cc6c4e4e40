"""Soundness red team: specs whose contracts are false under Python's semantics, each once
wrongly proved (or wrongly passed) and now refuted or unknown with the reason.  Each test
names the construct; the false contract is checked against the real handler too."""
from __future__ import annotations

import textwrap
from pathlib import Path

import z3

from assay.model.load import build
from assay.verifier import types as vtypes
from assay.verifier.verify import VerifyReport, verify

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
