"""A spec imports the modules beside it (issue 10 §5): `from common import Ping` in
`folder/x.py` finds `folder/common.py`, in every engine and every process that loads a spec,
without touching `sys.path`, and two folders with a `common.py` each do not collide in one
process.

Fixtures: `tests/fixtures/siblings/left/` (`ping.py` importing `common.py`, which imports
`limits.py`, and the package `proto/`, whose `__init__` imports relatively; `missing.py`
misspells a module) and `tests/fixtures/siblings/right/` (its own `common.py` with another
`Ping` and another limit, imported again inside a handler when it runs; `uses_broken.py`
imports a module that does not parse).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.checker import check
from assay.errors import SpecError
from assay.model.load import FOLDER_PREFIX, build, load_module

REPO = Path(__file__).resolve().parents[1]
FIX = REPO / "tests" / "fixtures" / "siblings"
LEFT, RIGHT = FIX / "left" / "ping.py", FIX / "right" / "ping.py"
MARKER = "# <- error here"


def _cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """`assay ARGS` from `cwd` (not the spec's folder, not the repository)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


def _marker(path: Path) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if MARKER in line)


def test_a_spec_imports_modules_and_packages_beside_it():
    s, _, _ = build(LEFT)
    r = check(s)
    assert r.verdict == "ok" and r.states == 7          # LIMIT = 2, from limits.py via common


def test_two_folders_with_a_common_module_each_do_not_collide_in_one_process():
    path_before = list(sys.path)
    left, right = load_module(LEFT), load_module(RIGHT)
    assert left.Ping is not right.Ping
    assert list(left.Ping.field_types()) == ["n"] and list(right.Ping.field_types()) == ["word"]
    assert left.Ping.__module__.startswith(FOLDER_PREFIX)
    assert left.Ping.__module__ != right.Ping.__module__
    assert "common" not in sys.modules and "limits" not in sys.modules
    assert sys.path == path_before
    # the right folder's handler imports `common` when it runs: its own (LIMIT 3), else the
    # client would stop at 2 and the run deadlock
    r = check(build(RIGHT)[0])
    assert r.verdict == "ok" and r.states == 10
    assert check(build(LEFT)[0]).states == 7           # loaded again: the same modules


def test_a_misspelt_module_beside_the_spec_is_a_spec_error_at_the_import():
    path = FIX / "left" / "missing.py"
    with pytest.raises(SpecError) as e:
        build(path)
    err = e.value
    assert "import failed: No module named 'commn'" in err.message
    assert err.location is not None and err.location.line == _marker(path)
    assert Path(err.location.file).resolve() == path.resolve()
    assert "did you mean 'common', beside the spec?" in err.notes
    assert any("imports the modules in its folder" in n for n in err.notes)


def test_a_module_beside_the_spec_that_does_not_parse_is_a_spec_error_at_its_line():
    with pytest.raises(SpecError) as e:
        build(FIX / "right" / "uses_broken.py")
    err = e.value
    assert err.message.startswith("syntax error")
    assert err.location is not None and err.location.file.endswith("broken.py")
    assert err.location.line == 2
    assert any(n.startswith("imported at") and "uses_broken.py:2" in n for n in err.notes)


def test_the_cli_loads_sibling_modules_from_any_working_directory(tmp_path):
    for spec in (LEFT, RIGHT):
        c = _cli("check", spec, cwd=tmp_path)
        assert c.returncode == 0, c.stdout + c.stderr
    c = _cli("verify", LEFT, cwd=tmp_path)
    assert c.returncode in (0, 3), c.stdout + c.stderr
    bad = _cli("check", FIX / "left" / "missing.py", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert f"missing.py:{_marker(FIX / 'left' / 'missing.py')}: error: import failed" \
        in bad.stderr


def test_simulate_workers_load_sibling_modules_and_agree_with_one_process(tmp_path):
    docs = []
    for jobs in ("1", "2"):
        c = _cli("simulate", RIGHT, "--runs", "8", "--seed", "3", "--jobs", jobs, "--json",
                 "--quiet", cwd=tmp_path)
        assert c.returncode == 0, c.stdout + c.stderr
        doc = json.loads(c.stdout)
        for k in ("seconds", "events_per_second"):
            doc.pop(k)
        docs.append(doc)
    assert docs[0] == docs[1] and docs[0]["runs"] == 8


def test_run_and_replay_load_sibling_modules(tmp_path):
    trace = tmp_path / "run.json"
    c = _cli("run", RIGHT, "--trace-out", trace, "--json", cwd=tmp_path)
    assert c.returncode == 0, c.stdout + c.stderr
    assert json.loads(c.stdout)["final"]["c"]["acked"] == 3
    other = tmp_path / "elsewhere"
    other.mkdir()
    again = _cli("replay", trace, cwd=other)        # a spec from outside: named to run
    assert again.returncode == 2 and "--spec" in again.stderr, again.stdout + again.stderr
    again = _cli("replay", trace, "--spec", RIGHT, cwd=other)
    assert again.returncode == 0, again.stdout + again.stderr


def test_nodes_of_a_deployment_load_sibling_modules(children, tmp_path):
    from runtime_support import free_ports, write_deployment

    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", LEFT,
                           {"a": (pa, ["server"]), "b": (pb, ["c"])})
    r = children.run("run", "--deploy", dep, "--json", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["violations"] == [] and doc["final"]["c"]["acked"] == 2
