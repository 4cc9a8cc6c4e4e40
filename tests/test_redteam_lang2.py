"""Red team of the spec language, round 2: the leftovers of `test_redteam_lang.py`.

Each mistake is refused at load time with `file:line: error: ...` naming the line of the
mistake and a note with the fix (as in round 1, whose cases and helpers this file reuses),
or, for a property that can only be vacuous, warned of the same way by every engine.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.test_redteam_lang import (
    Case,
    _run,
    assert_spec_error_at_its_line,
    counter,
    pair,
    run_cases,
)

CASES = [
    # @on over @staticmethod: the mark landed on the wrapper, the class had no handler, and
    # a message to it was a violation blamed on its sender
    Case("on-over-a-staticmethod", pair("""
        @on(Ping)  # <- error here
        @staticmethod
        def on_ping(m):
            pass
        """), ("check",),
         ("@on is applied to a @staticmethod", "drop @staticmethod", "plain method"),
         "check: 'Node has no handler for Ping', a violation blamed on a"),
    Case("on-over-a-classmethod", pair("""
        @on(Ping)  # <- error here
        @classmethod
        def on_ping(cls, m):
            pass
        """), ("run", "--for", "2"),
         ("@on is applied to a @classmethod", "drop @classmethod"),
         "run: 'Node has no handler for Ping', a violation blamed on a"),
    Case("action-over-a-staticmethod", pair("""
        @action()  # <- error here
        @staticmethod
        def tick():
            pass
        """), ("simulate", "--runs", "2", "--steps", "10", "-j", "1", "-q"),
         ("@action is applied to a @staticmethod",),
         "simulate: exit 0, the action silently missing"),
    # a field named as a port: one replaced the other in the class body
    Case("field-after-a-port-of-its-name", pair("""
        count: int = 0
        """).replace("    peer = Port()\n",
                     "    peer = Port()  # <- error here\n    peer: int = 0\n"),
         ("check",),
         ("port 'peer' of Node is replaced by a field of the same name", "rename one"),
         "check: \"instance 'a' (Node) has no port 'peer'; 'peer' is a field: a property "
         "reads the state through its world\", at s.connect"),
    Case("port-after-a-field-of-its-name", pair("""
        peer = Port()  # <- error here
        """).replace("    peer = Port()\n    got", "    peer: int = 0\n    got", 1),
         ("check",),
         ("Node.peer is both a field and a port", "the field, whose state would be lost",
          "rename one"),
         "check: exit 0, the field 'peer' silently dropped"),
]
IDS = [c.id for c in CASES]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, subprocess.CompletedProcess[str]]:
    return run_cases(CASES, tmp_path_factory.mktemp("redlang2"), 3)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_users_mistake_is_a_spec_error_at_its_line(
        case: Case, runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert_spec_error_at_its_line(case, runs[case.id])


# --- a property over the instances of a class the system has none of ------------------------

VACUOUS = counter(props="""
    @s.always
    def few_pongs(g):
        return all(o.got < 5 for o in g.instances(Other))
    """).replace("\n\ndef system(", """

class Other(Component):
    got: int = 0


def system(""")


@pytest.mark.parametrize("command", [
    ("check",), ("simulate", "--runs", "2", "--steps", "10", "-j", "2", "-q"),
    ("run", "--for", "2")], ids=lambda c: c[0])
def test_every_engine_warns_of_a_property_over_no_instance(tmp_path: Path,
                                                            command: tuple[str, ...]) -> None:
    # `g.instances(Other)` with no Other in the system: always an empty list, the property
    # constantly true; `check` warned "vacuous?", `simulate` and `run` said ✓ silently
    (tmp_path / "spec.py").write_text(VACUOUS)
    r = _run([command[0], "spec.py", *command[1:]], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning: property 'few_pongs' read nothing of the state: it is constantly true " \
        "(vacuous?)" in r.stderr, r.stderr
    # and a property that reads the state is not warned of
    (tmp_path / "spec.py").write_text(VACUOUS.replace("o.got < 5 for o in g.instances(Other)",
                                                       "o.x < 5 for o in g.instances(Counter)"))
    r = _run([command[0], "spec.py", *command[1:]], tmp_path)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stdout + r.stderr
