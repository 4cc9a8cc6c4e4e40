"""Red team of the runtime, its files and trace replay, third round (CHANGELOG, "Runtime red
team 3"); each test here failed before its fix, unless it says it pins a probe that held.
Real sockets on loopback, real SQLite files, `assay` in subprocesses as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assay.checker import check
from assay.kernel import Faults, Kernel
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]
VOLATILE = REPO / "specs" / "register_bug_volatile.py"


def assay(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


# --- a trace file received from someone else ---------------------------------------------------

@pytest.fixture(scope="module")
def trace_doc() -> dict[str, Any]:
    system, name, typed = build(VOLATILE)
    result = check(Kernel(system, Faults.parse("crash=1")), spec=str(VOLATILE),
                   system_name=name, params=typed)
    assert result.trace is not None
    return json.loads(json.dumps(result.trace.to_json()))


def hostile_spec(where: Path, mark: Path) -> Path:
    """A spec that does what the trace's author likes when it is loaded (here: leaves
    `mark`), and is otherwise the spec the trace was written from."""
    where.mkdir(parents=True, exist_ok=True)
    spec = where / "evil.py"
    spec.write_text(f"open({str(mark)!r}, 'w').write('ran')\n" + VOLATILE.read_text())
    return spec


@pytest.mark.parametrize("named", ["absolute", "relative", "symlink", "beside"])
def test_replay_does_not_run_a_spec_from_outside_the_current_directory_unless_named(
        tmp_path, trace_doc, named):
    # a trace names the spec replay runs as Python: a trace file from someone else ran any
    # .py file on the machine it named (by an absolute path, or ../, or a link that leads
    # out, or a spec shipped beside the trace in a download)
    project, mark = tmp_path / "project", tmp_path / "ran"
    project.mkdir()
    spec = hostile_spec(tmp_path / "elsewhere", mark)
    trace = (tmp_path / "elsewhere" if named == "beside" else project) / "trace.json"
    if named == "symlink":
        (project / "spec.py").symlink_to(spec)
    name = {"absolute": str(spec), "relative": "../elsewhere/evil.py", "symlink": "spec.py",
            "beside": "evil.py"}[named]
    trace.write_text(json.dumps({**trace_doc, "spec": name}))
    r = assay("replay", trace, cwd=project)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert not mark.exists(), "the trace's spec ran"
    assert "Traceback" not in r.stderr
    assert f"the trace names the spec {spec}, outside the current directory" in r.stderr
    assert f"--spec {spec}" in r.stderr
    # named by the user: run (and replayed)
    r = assay("replay", trace, "--spec", spec, cwd=project)
    assert mark.exists() and r.returncode == 1, (r.stdout, r.stderr)
    assert "the recorded violation is reproduced" in r.stdout


def test_replay_runs_the_trace_s_spec_inside_the_current_directory(tmp_path, trace_doc):
    # the usual workflow holds: a trace of the project's own spec, replayed from the project
    mark = tmp_path / "project" / "ran"
    spec = hostile_spec(tmp_path / "project" / "specs", mark)
    trace = tmp_path / "project" / "out" / "trace.json"
    trace.parent.mkdir()
    trace.write_text(json.dumps({**trace_doc, "spec": "specs/evil.py"}))
    r = assay("replay", trace, cwd=tmp_path / "project")
    assert r.returncode == 1 and mark.exists(), (r.stdout, r.stderr)
    assert f"trace of {Path('specs/evil.py')}" in r.stdout
    assert spec.exists()
