"""The README is executable documentation: its two commands, its tour and CI agree."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from doc_blocks import fenced_blocks

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return fenced_blocks(README, lang)


def test_readme_starts_with_exactly_two_setup_commands():
    before_tour = README.split("## ")[0]
    commands = fenced_blocks(before_tour, "sh")
    assert [c.strip() for c in commands] == [
        "python3 -m pip install . && assay check specs/two_phase_commit.py",
        "python3 -m pip install -e '.[test]' && python3 -m pytest",
    ]


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _blocks("sh")[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111, ".ci/run must be executable"


def test_tour_spec_checks_clean(tmp_path):
    tour = next(b for b in _blocks("python") if b.startswith("# ping.py"))
    spec = tmp_path / "ping.py"
    spec.write_text(tour)
    run = subprocess.run([sys.executable, "-m", "assay.cli", "check", str(spec),
                          "--param", "clients=3"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all properties hold" in run.stdout


def test_tour_contract_bug_is_found(tmp_path):
    """The tour's @requires is not decoration: a server that answers the wrong ping breaks it."""
    tour = next(b for b in _blocks("python") if b.startswith("# ping.py"))
    buggy = tour.replace("Pong(m.n)", "Pong(m.n + 1)")
    assert buggy != tour
    spec = tmp_path / "ping_bug.py"
    spec.write_text(buggy)
    run = subprocess.run([sys.executable, "-m", "assay.cli", "check", str(spec)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "requires of c0.pong fails" in run.stdout or "requires of c1.pong" in run.stdout
    assert "blame: server" in run.stdout


def test_client_api_example_runs_as_written(tmp_path):
    example = next(b for b in _blocks("python") if "assay.runtime.connect(" in b)
    script = tmp_path / "client.py"
    script.write_text(example)
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "Done(balance=5)"
    assert lines[1] == "{'balance': 5}"
    assert "no action enabled now that sends Withdraw(amount=9) to bank" in lines[2]
