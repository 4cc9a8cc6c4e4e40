"""The parallel search (`check --workers N`, `check --ray`) and `simulate --ray`: the same
counts and verdicts as one process, a shortest counterexample that replays, the same
violation for any number of workers; and the portable state codec under it."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from assay.checker import check
from assay.checker.parallel import InProcess, Options, check_parallel
from assay.checker.portable import Portable
from assay.checker.search import Search
from assay.errors import AssayError
from assay.kernel import Faults, Kernel
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]
TWO_BUGS = "tests/fixtures/keep_going/two_bugs.py"


def kernel(spec: str, faults: str | None = None, **params: str) -> Kernel:
    system, _, _ = build(str(REPO / spec), None, params)
    return Kernel(system, Faults.parse(faults) if faults else None)


def counts(r: Any) -> tuple[Any, ...]:
    return (r.verdict, r.reason, r.states, r.transitions, r.depth, r.terminal, r.deadlocked,
            r.exit_code)


def verdict(r: Any) -> tuple[Any, ...]:
    v = r.violation
    return (r.verdict, r.reason, v and (v.kind, v.name, v.blame), len(r.steps), r.exit_code)


# --- the codec ----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, faults, params", [
    ("specs/tla_twophase.py", None, {"rm_count": "3"}),          # duplicating network
    ("specs/two_phase_commit.py", "crash=1", {}),                 # unordered, long states
    ("specs/alternating_bit.py", "drop=1,dup=1", {}),             # fifo links, timers
    ("specs/abp_lossy.py", None, {}),                             # bounded, lossy links
    ("specs/dining_philosophers.py", "crash=1", {}),              # crashed instances
])
def test_a_state_decoded_in_another_kernel_is_the_same_state(spec: str, faults: str | None,
                                                             params: dict[str, str]) -> None:
    a = kernel(spec, faults, **params)
    # up to 500 states of `a`, through a kernel that has seen none of them
    seen: dict[Any, None] = {}
    frontier = [s for s, _ in a.initial_states()]
    while frontier and len(seen) < 500:
        s = frontier.pop()
        if s not in seen:
            seen[s] = None
            frontier += [t for _, t, _ in a.successors(s)[0]]
    assert len(seen) > 10
    b = kernel(spec, faults, **params)
    ca, cb = Portable(a), Portable(b)
    for s in seen:
        t = cb.decode(ca.encode(s))
        assert b.fingerprint(t) == a.fingerprint(s)
        assert cb.owner_key(t) == ca.owner_key(s)
        assert ca.decode(cb.encode(t)) == s                    # and back: the very same ids


# --- the same counts and verdicts as one process ------------------------------------------------

@pytest.mark.parametrize("spec, faults, params", [
    ("specs/tla_twophase.py", None, {"rm_count": "4"}),
    ("specs/bank_transfer.py", None, {}),
    ("specs/alternating_bit.py", "drop=1,dup=1", {}),
    ("specs/two_phase_commit.py", None, {}),
])
def test_two_workers_count_what_one_counts(spec: str, faults: str | None,
                                           params: dict[str, str]) -> None:
    one = check(kernel(spec, faults, **params))
    two = check(kernel(spec, faults, **params), workers=2)
    assert one.reason == "exhausted" and one.states > 100
    assert counts(two) == counts(one)
    assert two.workers == 2 and not two.warnings
    assert two.to_json()["workers"] == 2


@pytest.mark.parametrize("spec, faults, params", [
    ("specs/two_phase_commit_bug_majority.py", None, {}),     # a protocol violation
    ("specs/coin_election_bug_ties.py", None, {}),             # a property
    ("specs/alternating_bit.py", "crash=1", {}),               # a property, under a crash
    ("tests/fixtures/good/ping_pong.py", None, {}),            # a deadlock
    (TWO_BUGS, None, {"bugs": "false"}),                       # a deadlock after 7 steps
])
def test_two_workers_find_a_violation_as_short_as_one_does(spec: str, faults: str | None,
                                                           params: dict[str, str]) -> None:
    one = check(kernel(spec, faults, **params))
    two = check(kernel(spec, faults, **params), workers=2)
    assert one.verdict == "violation"
    assert verdict(two) == verdict(one)
    # the counterexample is a real run: its trace replays to the same violation
    assert two.trace is not None and len(two.trace.events) == len(two.steps)


def test_the_violation_is_the_same_for_any_number_of_workers() -> None:
    """Two properties break at the same depth (2): each number of workers reports the
    same one, a shortest."""
    found = set()
    for n in (1, 2, 3, 5):
        k = kernel(TWO_BUGS)
        out, _ = check_parallel(k, Search(), n, make=lambda o, k=k, n=n: InProcess(k, n, o))
        assert out.reason == "violation" and len(out.path) == 2
        assert out.violation is not None
        found.add((out.violation.name, k.fingerprint(k.apply(*_last(k, out))[0])))
    assert len(found) == 1


def _last(k: Kernel, out: Any) -> tuple[Any, int]:
    state = out.start
    for ev in out.path[:-1]:
        state = k.apply(state, ev)[0]
    return state, out.path[-1]


def test_the_depth_bound_is_the_same() -> None:
    for depth in (4, 10):
        one = check(kernel("specs/tla_twophase.py", rm_count="3"), max_depth=depth)
        two = check(kernel("specs/tla_twophase.py", rm_count="3"), max_depth=depth,
                    workers=2)
        assert counts(two) == counts(one)
    assert one.reason == "exhausted"


def test_the_state_bound_stops_at_the_end_of_a_level() -> None:
    two = check(kernel("specs/tla_twophase.py", rm_count="3"), max_states=100, workers=2)
    assert two.reason == "max-states" and two.exit_code == 3
    assert 100 < two.states < 288


@pytest.mark.parametrize("why, kwargs, spec", [
    ("breadth-first", {"strategy": "dfs"}, "specs/tla_twophase.py"),
    ("--keep-going", {"keep_going": True}, "specs/tla_twophase.py"),
    ("liveness", {}, "specs/dining_philosophers.py"),
])
def test_what_the_parallel_search_does_not_do_runs_on_one_worker_and_says_so(
        why: str, kwargs: dict[str, Any], spec: str) -> None:
    r = check(kernel(spec), workers=2, **kwargs)
    assert r.workers == 1
    assert any(w.startswith("--workers 2: ") and why in w for w in r.warnings), r.warnings


def test_a_worker_stops_at_the_time_bound() -> None:
    k = kernel("tests/fixtures/stop/endless.py")
    out, _ = check_parallel(k, Search(max_time=0.5), 2)
    assert out.reason == "max-time" and out.states >= 1


def test_the_property_report_comes_from_the_workers() -> None:
    r = check(kernel("specs/tla_twophase.py", rm_count="3"), workers=2)
    one = check(kernel("specs/tla_twophase.py", rm_count="3"))
    for name, p in r.properties.items():
        assert p["evaluated"] > 0 and p["reads"] == one.properties[name]["reads"]
        assert p["note"] == one.properties[name]["note"]


# --- the command line ---------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_check_workers_on_the_command_line() -> None:
    one = _cli("check", "specs/tla_twophase.py", "-p", "rm_count=4", "--json", "-q")
    two = _cli("check", "specs/tla_twophase.py", "-p", "rm_count=4", "--json", "-q",
               "--workers", "2")
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert one.returncode == two.returncode == 0
    assert [a[k] for k in ("states", "transitions", "depth")] == \
        [b[k] for k in ("states", "transitions", "depth")]
    assert b["workers"] == 2
    human = _cli("check", "specs/two_phase_commit_bug_majority.py", "-w", "2")
    assert human.returncode == 1 and "bfs on 2 workers, stopped: violation" in \
        " ".join(human.stdout.split())


def test_a_bad_number_of_workers_is_a_usage_error() -> None:
    r = _cli("check", "specs/tla_twophase.py", "--workers", "0")
    assert r.returncode == 2 and "'0' is not a number of workers" in r.stderr
    assert "Traceback" not in r.stderr


def test_options_are_plain_data() -> None:
    assert Options(None, None, True).forked


@pytest.mark.parametrize("by", [None, (0,), (1, 2), (0, 1, 2, 3, 4)])
def test_any_sharding_gives_the_same_counts(by: tuple[int, ...] | None) -> None:
    k = kernel("specs/tla_twophase.py", rm_count="4")
    one = check(kernel("specs/tla_twophase.py", rm_count="4"))
    out, _ = check_parallel(k, Search(), 3,
                            make=lambda o: InProcess(k, 3, replace(o, shard_by=by)))
    assert (out.reason, out.states, out.transitions, out.depth) == \
        (one.reason, one.states, one.transitions, one.depth)


@pytest.mark.parametrize("spec, faults", [
    ("specs/abp_lossy.py", None),                 # lossy, bounded links
    ("specs/coin_election.py", None),             # steps that choose
    ("specs/self_scheduler.py", None),            # timers
    ("specs/dining_philosophers.py", "crash=1"),  # crashes and restarts
])
def test_the_shards_count_what_bfs_counts(spec: str, faults: str | None) -> None:
    """The safety search of specs whose liveness keeps `check` on one process."""
    from assay.checker.bfs import bfs

    one = bfs(kernel(spec, faults), Search())
    k = kernel(spec, faults)
    out, _ = check_parallel(k, Search(), 2, make=lambda o: InProcess(k, 2, o))
    assert (out.reason, out.states, out.transitions, out.depth, out.terminal,
            out.deadlocked) == (one.reason, one.states, one.transitions, one.depth,
                                one.terminal, one.deadlocked)


def test_a_spec_error_in_a_worker_is_the_user_s_error(tmp_path: Path) -> None:
    from assay.errors import SpecError

    spec = tmp_path / "boom.py"
    spec.write_text('''from assay import Component, System, action


class Counter(Component):
    x: int = 0

    @action(when=lambda self: self.x < 5)
    def tick(self):
        self.x += 1


def system() -> System:
    s = System("boom")
    s.add("a", Counter)
    s.add("b", Counter)

    @s.always
    def fine(g):
        if g["a"].x == 3 and g["b"].x == 2:
            raise ValueError("boom")
        return True
    return s
''')
    system, _, _ = build(str(spec), None, {})
    with pytest.raises(SpecError, match="property 'fine' raised ValueError: boom"):
        check(Kernel(system), workers=2)


# --- checkpoints ----------------------------------------------------------------------------------

def _resumable(tmp_path: Path, workers: int, **kwargs: Any) -> Any:
    spec = str(REPO / "specs/tla_twophase.py")
    system, name, typed = build(spec, None, {"rm_count": "4"})
    return check(Kernel(system), spec=spec, system_name=name, params=typed, workers=workers,
                 checkpoint=str(tmp_path / "ck"), checkpoint_every=0, **kwargs)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_search_stopped_at_a_bound_resumes_from_its_checkpoint(tmp_path: Path,
                                                                  workers: int) -> None:
    whole = check(kernel("specs/tla_twophase.py", rm_count="4"))
    first = _resumable(tmp_path, workers, max_depth=5)
    assert first.reason == "max-depth"
    assert json.loads((tmp_path / "ck" / "current" / "meta.json").read_text())["depth"] == 5
    resumed = _resumable(tmp_path, workers)
    assert counts(resumed) == counts(whole)
    # (how often a property ran is not: its memo starts empty again)
    assert [{k: v for k, v in p.items() if k != "evaluated"} for p in
            resumed.properties.values()] == [{k: v for k, v in p.items() if k != "evaluated"}
                                             for p in whole.properties.values()]
    with pytest.raises(AssayError, match="holds a checkpoint of another check") as e:
        _resumable(tmp_path, 3 - workers)
    assert "--workers differs" in str(e.value)


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove"])
def test_a_damaged_checkpoint_is_refused_before_it_is_read(tmp_path: Path, damage: str) -> None:
    _resumable(tmp_path, 2, max_depth=5)
    shard = tmp_path / "ck" / "current" / "shard-1"
    data = shard.read_bytes()
    if damage == "truncate":
        shard.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        shard.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    else:
        shard.unlink()
    with pytest.raises(AssayError, match="the checkpoint in .* is damaged") as e:
        _resumable(tmp_path, 2)
    assert "shard-1" in str(e.value.notes) and "start over" in str(e.value.notes)


# --- Ray (last: no worker is forked from a process with its threads) ---------------------------

@pytest.fixture(scope="module")
def ray_local() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False, _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()


def _check(spec: str, **kwargs: Any) -> Any:
    system, name, typed = build(str(REPO / spec), None, {})
    return check(Kernel(system), spec=str(REPO / spec), system_name=name, params=typed,
                 **kwargs)


def test_ray_actors_count_what_one_process_counts(ray_local: Any) -> None:
    for spec in ("specs/two_phase_commit.py", "specs/two_phase_commit_bug_majority.py"):
        one = _check(spec)
        on_ray = _check(spec, ray="local", workers=2)
        assert on_ray.workers == 2
        if one.verdict == "ok":
            assert counts(on_ray) == counts(one)
        else:
            assert verdict(on_ray) == verdict(one)


def test_simulate_on_ray_gives_what_jobs_give(ray_local: Any) -> None:
    from assay.simulator import Options as SimOptions
    from assay.simulator import campaign

    spec = str(REPO / "specs/bank_transfer_bug_overdraft.py")
    opts = SimOptions(steps=100)
    jobs = campaign(spec, None, {}, seed=3, runs=8, opts=opts, jobs=2)
    on_ray = campaign(spec, None, {}, seed=3, runs=8, opts=opts, ray="local")
    assert jobs.failures
    assert on_ray.to_json(with_timing=False) == jobs.to_json(with_timing=False)
    assert [(r.trace, r.shrunk) for r in on_ray.reports] == \
        [(r.trace, r.shrunk) for r in jobs.reports]
