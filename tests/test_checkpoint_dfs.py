"""`check --dfs --checkpoint`: a depth-first search stopped (at --max-states, after
checkpoints every 1,024 states) and resumed ends with exactly the counts, verdict and
counterexample of the same check never stopped, and an exhausted one with the counts of DFS
without --checkpoint; with symmetry reduction and --keep-going too; the bug twin's
counterexample is the same after the resume and replays; a changed option or a damaged file
is refused."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from assay.errors import AssayError
from assay.kernel.trace import Trace, replay_trace
from tests.checkpoint_support import (
    SYM_LOCK,
    assay_check,
    counts,
    run,
    signalled_at_a_checkpoint,
    stopped_then_resumed,
)

# --- depth first ------------------------------------------------------------------------------

DFS_STOP = {"max_states": 4000}       # (saved every 1,024 states: at 3,072)


def test_a_depth_first_search_resumes_to_the_same_counts(tmp_path: Path) -> None:
    params = {"clients": "4"}
    whole, resumed = stopped_then_resumed(tmp_path, SYM_LOCK, params, DFS_STOP,
                                          strategy="dfs", symmetry=False)
    plain = run(SYM_LOCK, None, params=params, strategy="dfs", symmetry=False)
    assert counts(resumed) == counts(plain) == ("ok", "exhausted", 16937, 43936, 40,
                                                plain.terminal, 0)
    with pytest.raises(AssayError, match="holds a checkpoint of another check") as e:
        run(SYM_LOCK, tmp_path / "ck", params=params, symmetry=False)
    assert "the search strategy differs (--dfs) (it was 'dfs', now 'bfs')" in \
        str(e.value.notes)


def test_a_depth_first_search_of_the_bug_twin_resumes_to_the_same_counterexample(
        tmp_path: Path) -> None:
    """The server grants a held lock only after 6 grants: the depth-first search meets it
    past 9,000 states, after checkpoints; resumed at 3,072 states it ends at the same state
    count with the same 36-step counterexample, which replays."""
    params = {"clients": "4", "bug": "true", "late": "6"}
    whole, resumed = stopped_then_resumed(tmp_path, SYM_LOCK, params, DFS_STOP,
                                          strategy="dfs", symmetry=False)
    assert (resumed.verdict, resumed.states, len(resumed.steps)) == ("violation", 9127, 36)
    assert resumed.violation is not None and resumed.violation.name == "mutual_exclusion"
    assert resumed.trace is not None
    resumed.trace.write(tmp_path / "t.json")
    got = replay_trace(Trace.read(tmp_path / "t.json"), tmp_path / "t.json")
    assert got.violation is not None and got.violation.name == "mutual_exclusion"


def test_a_reduced_depth_first_search_that_keeps_going_resumes_alike(tmp_path: Path) -> None:
    params = {"clients": "4", "bug": "true", "late": "2"}
    whole, resumed = stopped_then_resumed(tmp_path, SYM_LOCK, params, DFS_STOP,
                                          strategy="dfs", keep_going=True)
    plain = run(SYM_LOCK, None, params=params, strategy="dfs", keep_going=True)
    assert counts(resumed) == counts(plain)
    assert resumed.states == 8293 and resumed.symmetry is not None
    assert resumed.symmetry["orbits"] == 8293
    assert [(f.violation.name, f.count) for f in resumed.findings] == \
        [(f.violation.name, f.count) for f in plain.findings]


def test_a_damaged_depth_first_checkpoint_is_refused(tmp_path: Path) -> None:
    params = {"clients": "4"}
    run(SYM_LOCK, tmp_path / "ck", params=params, strategy="dfs", symmetry=False,
        max_states=2000)
    shard = tmp_path / "ck" / "current" / "shard-0"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(AssayError, match="the checkpoint in .* is damaged"):
        run(SYM_LOCK, tmp_path / "ck", params=params, strategy="dfs", symmetry=False)


def test_ctrl_c_stops_a_depth_first_search_that_resumes_from_its_checkpoint(
        tmp_path: Path) -> None:
    """Ctrl-C (SIGINT: exit 130) once 3,072 states are saved, of a reduced DFS that keeps
    going; the same command then ends with the counts and the findings of the check never
    stopped.  (Five clients: 37,549 states, ~4 s, so that the signal comes well before the
    end; with four the search ran ~0.6 s, ~0.4 s after the state it waits for.)"""
    ck = tmp_path / "ck"
    args = [SYM_LOCK, "-p", "clients=5", "-p", "bug=true", "-p", "late=2", "--dfs",
            "--keep-going", "--json", "--checkpoint", str(ck), "--checkpoint-every", "0"]
    meta = ck / "current" / "meta.json"
    code, out = signalled_at_a_checkpoint(
        args, lambda: json.loads(meta.read_text())["states"] >= 3072, signal.SIGINT)
    assert code == 130 and json.loads(out)["stopped"] == "interrupted"
    again = assay_check(args)
    assert again.returncode == 1, again.stderr
    doc = json.loads(again.stdout)
    plain = run(SYM_LOCK, None, params={"clients": "5", "bug": "true", "late": "2"},
                strategy="dfs", keep_going=True)
    assert (doc["states"], doc["transitions"], doc["depth"], doc["reason"]) == \
        (plain.states, plain.transitions, plain.depth, "exhausted") == \
        (37549, 216007, 50, "exhausted")
    assert [(v["name"], v["count"]) for v in doc["violations"]] == \
        [(f.violation.name, f.count) for f in plain.findings] == [("mutual_exclusion", 10158)]
