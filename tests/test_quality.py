"""The code's own checks, run as tests so CI keeps them: ruff (the rules in pyproject.toml)
over the whole tree, and mypy over the package."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_ruff_finds_nothing():
    pytest.importorskip("ruff", reason="installed with the test extras")
    r = _run("ruff", "check", ".")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_mypy_finds_nothing_in_the_package():
    pytest.importorskip("mypy", reason="installed with the test extras")
    r = _run("mypy", "assay")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
