"""`check --no-deadlock` (`assay.check(..., deadlock=False)`): a state where nothing is enabled
is taken as final, never reported; a check that finds nothing then says that deadlocks were not
looked for — in its headline, a summary row, its JSON and its repr — rather than a bare
"✓ all properties hold (exhaustive)".  The command run as a user runs it, on a spec that
deadlocks after two steps."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import assay
from tests.test_redteam_claims import cli, flat

DEADLOCKS = """
from assay import Component, System, action


class Counter(Component):
    n: int = 0

    @action(when=lambda self: self.n < LIMIT)
    def bump(self):
        self.n += 1


def system() -> System:
    s = System("counter")
    s.add("c", Counter)

    @s.always
    def bounded(g):
        return all(c.n <= 2 for c in g.instances(Counter))

    return s
"""

HEADLINE = "✓ all properties hold (exhaustive; deadlocks not checked)"
ROW = ("deadlocks not checked (--no-deadlock): a state where nothing is enabled is taken as "
       "final")


def _spec(tmp_path: Path, limit: int) -> Path:
    path = tmp_path / "spec.py"
    path.write_text(textwrap.dedent(DEADLOCKS).lstrip().replace("LIMIT", str(limit)))
    return path


def test_without_the_option_the_deadlock_is_found(tmp_path: Path) -> None:
    _spec(tmp_path, 2)
    r = cli(["check", "spec.py"], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "✗ violation: deadlock: no event is enabled" in r.stdout
    assert "deadlocks not checked" not in r.stdout
    doc = json.loads(cli(["check", "spec.py", "--json"], tmp_path).stdout)
    assert doc["violation"]["kind"] == "deadlock" and doc["deadlocks_checked"] is True


def test_with_no_deadlock_the_summary_says_deadlocks_were_not_checked(tmp_path: Path) -> None:
    # before: "✓ all properties hold (exhaustive)", nothing saying the deadlock was not looked for
    path = _spec(tmp_path, 2)
    r = cli(["check", "spec.py", "--no-deadlock"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert HEADLINE in r.stdout.splitlines()
    assert ROW in flat(r.stdout)
    doc = json.loads(cli(["check", "spec.py", "--no-deadlock", "--json"], tmp_path).stdout)
    assert doc["verdict"] == "ok" and doc["deadlocks_checked"] is False
    # from Python the same: the result's text, its repr
    result = assay.check(str(path), deadlock=False)
    assert result.ok and not result.deadlocks_checked
    assert HEADLINE in result.text() and "deadlocks not checked" in repr(result)


def test_an_incomplete_check_without_deadlocks_says_so_too(tmp_path: Path) -> None:
    _spec(tmp_path, 2)
    r = cli(["check", "spec.py", "--no-deadlock", "--max-states", "2"], tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    assert ROW in flat(r.stdout)


def test_nothing_enabled_at_all_keeps_its_0_transitions_warning(tmp_path: Path) -> None:
    """With nothing enabled in the initial state, --no-deadlock turns the deadlock into a pass:
    both the headline's qualification and the "0 transitions" warning say what it is worth."""
    _spec(tmp_path, 0)
    r = cli(["check", "spec.py", "--no-deadlock"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert HEADLINE in r.stdout.splitlines()
    assert "0 transitions: is anything enabled?" in flat(r.stdout)
    doc = json.loads(cli(["check", "spec.py", "--no-deadlock", "--json"], tmp_path).stdout)
    assert doc["deadlocks_checked"] is False and doc["transitions"] == 0
    assert any(w.startswith("0 transitions") for w in doc["warnings"])
