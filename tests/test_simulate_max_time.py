"""`assay simulate --max-time` (and `assay replay --max-time`), run as a user runs them.

The campaign stops at the limit with the runs finished by then, the same runs as without a
limit; the failures found so far are written; exit 3 when no violation was found ("stopped:
max-time", as `check --max-time`).  Spec code that never returns is stopped there too.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.test_cli_stop import ENDLESS, SPIN, children, run_cli, wait_gone

pytestmark = pytest.mark.e2e

RAFT_BUG = "specs/raft_election_bug_double_vote.py"


@pytest.mark.parametrize("mode", [("--jobs", "1"), ("--jobs", "2", "--scheduler", "swarm")],
                         ids=["jobs1", "swarm-jobs2"])
def test_max_time_stops_simulate_incomplete(mode: tuple[str, ...], tmp_path: Path) -> None:
    # before: no --max-time; a campaign of 10^7 runs went on for hours.  (Two workers get
    # longer to start and hand back a chunk: at load 15-35, one second saw no run finished.)
    limit = 1.0 if mode[1] == "1" else 3.0
    t0 = time.monotonic()
    r = run_cli("simulate", ENDLESS, "--runs", "10000000", "--steps", "100", "--max-time",
                str(limit), "--json", "--out", str(tmp_path), *mode)
    assert time.monotonic() - t0 < 60
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    assert doc["stopped"] == "max-time" and doc["verdict"] == "incomplete"
    assert doc["max_time"] == limit and doc["runs_requested"] == 10000000
    assert 0 < doc["runs"] < 10000000 and doc["events"] == 100 * doc["runs"]
    assert limit <= doc["seconds"] < 30


def test_max_time_in_the_human_report(tmp_path: Path) -> None:
    r = run_cli("simulate", ENDLESS, "--runs", "10000000", "--steps", "100", "--max-time", "0.5",
                "--jobs", "1", "--out", str(tmp_path))
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    out = " ".join(r.stdout.split())
    assert "? stopped: max-time: the time limit (0.5 s) passed after" in out, out
    assert "of 10,000,000 runs" in out and "(stopped: max-time)" in out, out
    assert "✓" not in out, out


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_failures_found_before_the_limit_are_kept_and_the_same_runs(jobs: str,
                                                                    tmp_path: Path) -> None:
    # long enough for the workers to start and hand back a chunk on a loaded machine
    limit = "1" if jobs == "1" else "3"
    limited = run_cli("simulate", RAFT_BUG, "--runs", "10000000", "--max-time", limit,
                      "--no-shrink", "--jobs", jobs, "--json", "--out", str(tmp_path / "a"))
    assert limited.returncode == 1, (limited.returncode, limited.stdout, limited.stderr)
    doc = json.loads(limited.stdout)
    assert doc["stopped"] == "max-time" and doc["verdict"] == "violation"
    assert doc["violations"], doc
    for v in doc["violations"]:                      # each written as it was found
        assert Path(v["trace_file"]).is_file(), v
    # the runs up to the stop are those of a campaign of that many runs, without a limit
    whole = run_cli("simulate", RAFT_BUG, "--runs", str(doc["runs"]), "--no-shrink",
                    "--jobs", jobs, "--json", "--out", str(tmp_path / "b"))
    ref = json.loads(whole.stdout)
    assert ref["stopped"] == "completed"
    for key in ("runs", "events", "distinct_states", "ended"):
        assert doc[key] == ref[key], key

    def runs(d: dict) -> list:
        return [{k: v for k, v in x.items() if k != "trace_file"} for x in d["violations"]]
    assert runs(doc) == runs(ref)
    a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert a == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_max_time_stops_simulate_inside_spec_code_that_never_returns(tmp_path: Path) -> None:
    # before (no --max-time): only Ctrl-C stopped it
    t0 = time.monotonic()
    r = run_cli("simulate", SPIN, "--runs", "8", "--max-time", "1", "--jobs", "1", "--json",
                "--out", str(tmp_path), timeout=90)
    assert time.monotonic() - t0 < 60
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    assert doc["stopped"] == "max-time" and doc["runs"] == 0 and doc["verdict"] == "incomplete"
    assert "Spinner.step (spin.py:" in doc["stuck"], doc       # the call the watch stopped


def test_max_time_stops_workers_inside_spec_code_and_leaves_none_behind(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.test_cli_stop import REPO, cli_env

    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", "simulate", SPIN, "--runs", "8",
                             "--jobs", "2", "--max-time", "1", "--out", str(tmp_path)],
                            cwd=REPO, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        workers: list[int] = []
        end = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < end and proc.poll() is None:
            workers = children(proc.pid)
            time.sleep(0.05)
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 3, (proc.returncode, out, err)
    assert "stopped: max-time" in out, out
    assert wait_gone(workers) == [], "worker processes left behind"


def test_max_time_from_python(tmp_path: Path) -> None:
    import assay

    c = assay.simulate(str(Path(__file__).parents[1] / ENDLESS), runs=10_000_000, steps=50,
                       max_time=0.5)
    assert c.timed_out and not c.ok and 0 < c.runs < 10_000_000
    assert c.to_json()["stopped"] == "max-time"
    with pytest.raises(assay.errors.UsageError, match="max_time"):
        assay.simulate(str(Path(__file__).parents[1] / ENDLESS), max_time=0)


def test_max_time_is_refused_with_the_hypothesis_engine(tmp_path: Path) -> None:
    r = run_cli("simulate", ENDLESS, "--engine", "hypothesis", "--max-time", "1")
    assert r.returncode == 2 and "drop --max-time" in r.stderr, (r.stdout, r.stderr)


def test_replay_of_spec_code_that_never_returns_stops_at_max_time(tmp_path: Path) -> None:
    trace = tmp_path / "spin.json"
    trace.write_text(json.dumps({
        "format": "assay-trace", "version": 1, "spec": str(Path(__file__).parents[1] / SPIN),
        "system": "system", "params": {}, "engine": "check", "seed": None, "faults": None,
        "events": [{"kind": "action", "instance": "s", "action": "step", "arg": None}] * 2,
        "verdict": None}))
    # before: no --max-time; the replay ran until Ctrl-C
    r = run_cli("replay", str(trace), "--max-time", "1", timeout=60)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "stopped: max-time" in r.stderr and "Spinner.step (spin.py:" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
