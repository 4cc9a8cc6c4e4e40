"""`check --checkpoint` beyond a plain breadth-first safety search: with symmetry reduction,
with --keep-going, and with liveness properties (depth first: test_checkpoint_dfs.py).  For
each, a search stopped (at a bound, or by SIGKILL at a checkpoint) and resumed ends with
exactly the counts, verdict and counterexample of the same check never stopped — and, where
the search is exhausted, the counts of the check without --checkpoint; a correct spec passes,
its bug twin's counterexample is found and is the same after the resume; an option changed on
resume is refused with the reason."""
from __future__ import annotations

import json
import pickle
import signal
from pathlib import Path
from typing import Any

import pytest

from assay.checker import CheckResult
from assay.checker.parallel import InProcess, Options, parallel_bfs
from assay.checker.search import Search
from assay.checker.symmetry import StableSymmetry
from assay.errors import AssayError
from assay.kernel import Kernel
from assay.kernel.trace import Trace, replay_trace
from assay.model.load import build
from tests.checkpoint_support import (
    REPO,
    SYM_LOCK,
    TWO_BUGS,
    assay_check,
    counts,
    example,
    run,
    saved_depth,
    signalled_at_a_checkpoint,
    stopped_then_resumed,
)

# --- symmetry reduction ------------------------------------------------------------------------

def test_a_reduced_search_resumes_to_the_same_orbit_count(tmp_path: Path) -> None:
    params = {"clients": "4"}
    whole, resumed = stopped_then_resumed(tmp_path, SYM_LOCK, params)
    plain = run(SYM_LOCK, None, params=params)
    assert counts(resumed) == counts(plain) == ("ok", "exhausted", 908, plain.transitions,
                                                40, plain.terminal, 0)
    assert resumed.symmetry == plain.symmetry == {
        "groups": [["c0", "c1", "c2", "c3"]], "applied": True, "why": None, "orbits": 908,
        "properties": "every permutation, every state",
        "code": "assumed; spot-checked on the first 200 states expanded, then one in 1,000"}


def test_a_reduced_search_of_the_bug_twin_resumes_to_the_same_concrete_counterexample(
        tmp_path: Path) -> None:
    params = {"clients": "4", "bug": "true"}
    whole, resumed = stopped_then_resumed(tmp_path, SYM_LOCK, params)
    assert resumed.verdict == "violation" and resumed.violation is not None
    assert resumed.violation.name == "mutual_exclusion" and len(resumed.steps) == 6
    assert resumed.symmetry is not None and resumed.symmetry["applied"]
    # concrete: it replays through the unreduced kernel to the same violation
    assert resumed.trace is not None
    resumed.trace.write(tmp_path / "t.json")
    got = replay_trace(Trace.read(tmp_path / "t.json"), tmp_path / "t.json")
    assert got.violation is not None and got.violation.name == "mutual_exclusion"
    assert len(got.steps) == 6


def test_resuming_with_symmetry_turned_off_or_on_is_refused(tmp_path: Path) -> None:
    run(SYM_LOCK, tmp_path / "ck", params={"clients": "3"}, max_depth=3)
    with pytest.raises(AssayError, match="holds a checkpoint of another check") as e:
        run(SYM_LOCK, tmp_path / "ck", params={"clients": "3"}, symmetry=False)
    assert "symmetry reduction (--no-symmetry) differs (it was True, now False)" in \
        str(e.value.notes)


def test_a_property_that_is_not_symmetric_makes_the_checkpointed_search_unreduced(
        tmp_path: Path) -> None:
    """The checkpoint notes it: the resumed search explores every state too (the same counts
    as the unreduced search), not orbits counted on top of states."""
    params = {"clients": "3", "c0_name": "true"}
    plain = run(SYM_LOCK, None, params=params)
    first = run(SYM_LOCK, tmp_path / "ck", params=params, max_depth=3)
    assert first.symmetry is not None and not first.symmetry["applied"]
    why = first.symmetry["why"]
    assert "is not symmetric" in why
    meta = json.loads((tmp_path / "ck" / "current" / "meta.json").read_text())
    assert meta["unreduced"] == why
    resumed = run(SYM_LOCK, tmp_path / "ck", params=params)
    assert counts(resumed) == counts(plain)
    assert resumed.symmetry == plain.symmetry
    assert plain.symmetry is not None and not plain.symmetry["applied"]
    assert any("symmetry reduction not applied" in w for w in resumed.warnings)


def test_the_stable_representative_does_not_depend_on_the_states_seen_before() -> None:
    """What lets workers and a resumed search agree: two `StableSymmetry`s that met the states
    in opposite orders pick the same representative of each."""
    system, _, _ = build(str(REPO / SYM_LOCK), None, {"clients": "4"})
    k = Kernel(system)
    seen = {s for s, _ in k.initial_states()}
    frontier = list(seen)
    while frontier and len(seen) < 3000:
        frontier = [t for s in frontier for _, t, _ in k.successors(s)[0]
                    if t not in seen and not seen.add(t)]       # type: ignore[func-returns-value]
    states = sorted(seen, key=k.fingerprint)
    a, b = StableSymmetry(k), StableSymmetry(k)
    forward = [a.canon(s) for s in states]
    backward = [b.canon(s) for s in reversed(states)][::-1]
    assert forward == backward
    assert len(set(forward)) < len(states)


# --- keep going --------------------------------------------------------------------------------

def test_a_search_that_keeps_going_resumes_with_every_finding(tmp_path: Path) -> None:
    whole, resumed = stopped_then_resumed(tmp_path, TWO_BUGS, {}, keep_going=True)
    plain = run(TWO_BUGS, None, keep_going=True)
    assert counts(resumed) == counts(plain) == ("violation", "exhausted", 28, 53, 7, 0, 1)

    def kinds(r: CheckResult) -> set[tuple[Any, ...]]:
        return {(f.violation.kind, f.violation.name, f.count, f.unit, len(f.steps))
                for f in r.findings}
    assert kinds(resumed) == kinds(plain) == {
        ("property", "a_below_2", 14, "states", 2), ("property", "b_below_2", 16, "states", 2),
        ("ensures", None, 8, "transitions", 3), ("deadlock", "deadlock", 1, "states", 7)}
    assert resumed.keep_going and len(resumed.steps) == 2
    with pytest.raises(AssayError, match="holds a checkpoint of another check") as e:
        run(TWO_BUGS, tmp_path / "ck")
    assert "--keep-going differs (it was True, now False)" in str(e.value.notes)


def test_a_search_that_keeps_going_finds_nothing_in_the_correct_twin(tmp_path: Path) -> None:
    params = {"bugs": "false", "terminal": "true"}
    whole, resumed = stopped_then_resumed(tmp_path, TWO_BUGS, params, keep_going=True)
    plain = run(TWO_BUGS, None, params=params, keep_going=True)
    assert counts(resumed) == counts(plain) == ("ok", "exhausted", 28, 53, 7, 1, 0)
    assert resumed.findings == ()


def test_keep_going_and_symmetry_together_resume_alike(tmp_path: Path) -> None:
    params = {"clients": "3", "bug": "true"}
    whole, resumed = stopped_then_resumed(tmp_path, SYM_LOCK, params, keep_going=True)
    plain = run(SYM_LOCK, None, params=params, keep_going=True)
    assert counts(resumed) == counts(plain)
    assert resumed.states == 1719
    assert [(f.violation.name, f.count) for f in resumed.findings] == \
        [(f.violation.name, f.count) for f in plain.findings] == [("mutual_exclusion", 225)]


@pytest.mark.parametrize("spec, params, keep_going", [
    (TWO_BUGS, {}, True),
    (SYM_LOCK, {"clients": "3", "bug": "true"}, True),
    (SYM_LOCK, {"clients": "3", "bug": "true"}, False),
])
def test_the_level_search_gives_the_same_findings_for_any_number_of_workers(
        spec: str, params: dict[str, str], keep_going: bool) -> None:
    """The workers' part (`Shard`) of keep-going and symmetry, on 1 and 3 shards: the same
    counts, the same findings with counterexamples of the same length to the same state (the
    path there may differ: which parent a state keeps depends on the shards); `check`
    itself searches these with one worker."""
    system, _, _ = build(str(REPO / spec), None, params)
    out = []
    for n in (1, 3):
        k = Kernel(system)
        reduce = StableSymmetry(k) if system.symmetries else None
        opts = Options(symmetry=reduce is not None, keep_going=keep_going)
        got, _ = parallel_bfs(k, Search(), InProcess(k, n, opts), reduce=reduce,
                              keep_going=keep_going)
        def end(start: Any, path: tuple[int, ...], k: Kernel = k,
                reduce: StableSymmetry | None = reduce) -> Any:   # (representatives' path)
            for ev in path:
                start = k.apply(start, ev)[0]
                start = reduce.canon(start) if reduce is not None else start
            return k.fingerprint(start)
        out.append((got.reason, got.states, got.transitions, got.depth,
                    [(f.violation.name, f.count, f.unit, len(f.path), end(f.start, f.path))
                     for f in got.found],
                    got.violation and got.violation.name, len(got.path)))
    assert out[0] == out[1]


# --- liveness ----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, verdict", [("specs/lock_server.py", "ok"),
                                           ("specs/lock_server_bug_priority.py", "violation")])
def test_a_search_with_liveness_properties_resumes_to_the_same_lasso(
        tmp_path: Path, spec: str, verdict: str) -> None:
    """The safety search is resumed; the graph of the liveness check is rebuilt after it (as
    it is without --checkpoint)."""
    params = {"clients": "3"}
    whole, resumed = stopped_then_resumed(tmp_path, spec, params)
    plain = run(spec, None, params=params)
    assert counts(resumed) == counts(plain)
    assert resumed.verdict == verdict
    assert resumed.liveness == plain.liveness
    assert example(resumed) == example(plain)
    if verdict == "violation":
        assert resumed.cycle_start is not None
        assert resumed.liveness["c1 waits ~> c1 enters"] == "violated"


def test_a_search_with_liveness_properties_that_keeps_going_resumes_alike(
        tmp_path: Path) -> None:
    params = {"live": "true"}
    whole, resumed = stopped_then_resumed(tmp_path, TWO_BUGS, params, keep_going=True)
    plain = run(TWO_BUGS, None, params=params, keep_going=True)
    assert counts(resumed) == counts(plain)
    assert resumed.liveness == plain.liveness
    assert sorted(v for v in resumed.liveness.values()) == ["holds", "violated", "violated"]
    assert {f.violation.name for f in resumed.findings if f.unit == "lasso"} == \
        {f.violation.name for f in plain.findings if f.unit == "lasso"}


# --- a crash ---------------------------------------------------------------------------------

def test_a_reduced_check_killed_at_a_checkpoint_resumes_to_the_count_of_one_never_stopped(
        tmp_path: Path) -> None:
    """SIGKILL (no chance to clean up) once a checkpoint at depth 8 or more is saved; the same
    command then ends with the orbit count and transitions of the check without
    --checkpoint."""
    ck = tmp_path / "ck"
    args = [SYM_LOCK, "-p", "clients=5", "--json", "--checkpoint", str(ck),
            "--checkpoint-every", "0"]
    code, _ = signalled_at_a_checkpoint(args, lambda: saved_depth(ck) >= 8, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert saved_depth(ck) >= 8
    again = assay_check(args)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    plain = run(SYM_LOCK, None, params={"clients": "5"})
    assert (doc["states"], doc["transitions"], doc["depth"], doc["reason"]) == \
        (plain.states, plain.transitions, plain.depth, "exhausted") == \
        (2548, plain.transitions, 50, "exhausted")
    assert doc["symmetry"]["orbits"] == 2548


def test_a_checkpoint_written_before_these_modes_still_resumes(tmp_path: Path) -> None:
    """A checkpoint of an unreduced BFS as the previous version wrote it — no symmetry in
    its identity, worker files without the findings and spot-check count — resumes."""
    params = {"clients": "3"}
    whole = run(SYM_LOCK, None, params=params, symmetry=False)
    run(SYM_LOCK, tmp_path / "ck", params=params, symmetry=False, max_depth=5)
    folder = tmp_path / "ck" / "current"
    shard = folder / "shard-0"
    shard.write_bytes(pickle.dumps(pickle.loads(shard.read_bytes())[:5]))
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["identity"].pop("symmetry") is False
    # (MACed with this user's key: a checkpoint of an older assay, unkeyed, does not resume)
    from assay.checker.checkpoint import META_DIGEST, _digest, _meta_digest

    del meta[META_DIGEST]
    meta["shards"]["shard-0"] = _digest(shard)
    meta[META_DIGEST] = _meta_digest(meta)
    (folder / "meta.json").write_text(json.dumps(meta))
    resumed = run(SYM_LOCK, tmp_path / "ck", params=params, symmetry=False)
    assert counts(resumed) == counts(whole)
    with pytest.raises(AssayError, match="holds a checkpoint of another check"):
        run(SYM_LOCK, tmp_path / "ck", params=params)
