"""`simulate --faults delay=R`: with probability R per step, while a timer is pending, time
jumps to its due time before anything else happens — messages slower than timeouts.  Without
it a run's clock advances one tick per event, so a timeout rarely fires while the reply it
waits for is still in flight, and a bug that needs such a false suspicion is hardly found.

The primary-backup twin loses an acknowledged write after a view change that the master
starts on a timeout (specs/primary_backup_bug_early_reply.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.errors import UsageError
from assay.kernel.trace import Trace, replay_trace
from assay.simulator import FaultRates, Options, campaign
from assay.simulator.run import replay_clock

REPO = Path(__file__).resolve().parents[1]
PB_BUG = str(REPO / "specs" / "primary_backup_bug_early_reply.py")
MAJORITY = str(REPO / "specs" / "two_phase_commit_bug_majority.py")


def test_delay_is_a_rate() -> None:
    assert FaultRates.parse("delay=0.25,drop=0.1") == FaultRates(delay=0.25, drop=0.1)
    assert FaultRates.parse("delay=0.25").any is False       # needs no fault budget
    with pytest.raises(UsageError):
        FaultRates.parse("delay=2")


def test_delay_finds_the_bug_that_needs_a_timeout_before_the_replies() -> None:
    plain = campaign(PB_BUG, None, {}, seed=7, runs=60, opts=Options(), jobs=1)
    slow = campaign(PB_BUG, None, {}, seed=7, runs=60,
                    opts=Options(rates=FaultRates(delay=0.3)), jobs=1)
    assert plain.failures == [], [r.index for r in plain.failures]
    assert slow.failures, "delay=0.3 found nothing"
    for r in slow.failures:
        assert r.violation is not None
        assert r.violation["name"] == "acknowledged_writes_survive"
        assert r.shrunk is not None and len(r.shrunk) == 6     # check's shortest


@pytest.mark.e2e
def test_a_delayed_run_replays_unshrunk_on_both_engines(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "assay.cli", "simulate", PB_BUG, "--runs", "60",
                        "--seed", "7", "--faults", "delay=0.3", "--jobs", "1", "--no-shrink",
                        "-q", "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    files = sorted(tmp_path.glob("*.json"))
    assert files
    for path in files:
        trace = Trace.read(path)
        assert len(trace.events) > 6                        # as it happened, not shrunk
        for clocked in (None, replay_clock):
            got = replay_trace(trace, path, clocked)
            assert got.violation is not None
            assert got.violation.name == "acknowledged_writes_survive"
            assert len(got.steps) == len(trace.events)


def test_delay_changes_nothing_without_timers() -> None:
    # no timer is ever pending: the same runs, event for event
    a = campaign(MAJORITY, None, {}, seed=3, runs=20, opts=Options(steps=80, shrink=False),
                 jobs=1)
    b = campaign(MAJORITY, None, {}, seed=3, runs=20,
                 opts=Options(steps=80, shrink=False, rates=FaultRates(delay=0.5)), jobs=1)
    assert [(r.events, r.ended, r.trace) for r in a.reports] == \
        [(r.events, r.ended, r.trace) for r in b.reports]


@pytest.mark.e2e
def test_simulate_cli_takes_delay_and_is_the_same_on_two_jobs(tmp_path: Path) -> None:
    docs = []
    for jobs, hashseed in (("1", "0"), ("2", "123")):
        r = subprocess.run([sys.executable, "-m", "assay.cli", "simulate", PB_BUG, "--runs", "60",
                            "--seed", "7", "--faults", "delay=0.3", "--jobs", jobs, "--json",
                            "-q", "--out", str(tmp_path / jobs)], cwd=REPO,
                           env={**os.environ, "PYTHONHASHSEED": hashseed},
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
        doc = json.loads(r.stdout)
        assert doc["faults"]["delay"] == 0.3
        docs.append([(v["run"], v["seed"], v["events"], v["shrunk_events"])
                     for v in doc["violations"]])
    assert docs[0] == docs[1] and docs[0]
