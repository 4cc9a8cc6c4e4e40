"""`assay check` end to end, run in subprocesses as a user runs it.

Every command runs once, all of them in parallel, in a module-scoped fixture; the tests then
assert on the finished runs.  Commands are `python -m assay.cli ...` (independent of PATH), and
one test runs the `assay` console script found on PATH.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import assay

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
OK = "specs/two_phase_commit.py"
BUG = "specs/two_phase_commit_bug_majority.py"
TLA = "specs/tla_twophase.py"
PING = "tests/fixtures/good/ping_pong.py"

Run = subprocess.CompletedProcess


def cli_env() -> dict[str, str]:
    """The environment of a user's shell, minus what would make rich's output vary, and with
    progress lines (on a stderr that is not a terminal) far apart: however loaded the machine,
    none of these short checks prints one (tests/test_cli_stop.py tests them)."""
    env = dict(os.environ)
    for k in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
              "CLICOLOR_FORCE", "PY_COLORS"):
        env.pop(k, None)
    env["ASSAY_PROGRESS_INTERVAL"] = "3600"
    return env


def run(argv: list[str]) -> Run[str]:
    return subprocess.run(argv, cwd=REPO, env=cli_env(), capture_output=True, text=True,
                          timeout=120)


def assay_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "assay.cli", *args]


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="module")
def runs(trace_dir: Path) -> dict[str, Run[str]]:
    """Every command of this module, each run once, several at a time."""
    commands = {
        "ok": assay_cli("check", OK),
        "ok_rm2": assay_cli("check", OK, "--param", "rm_count=2"),
        "ok_json": assay_cli("check", OK, "--json"),
        "ok_dfs_json": assay_cli("check", OK, "--dfs", "--json"),
        "ok_trace_out": assay_cli("check", OK, "--trace-out", str(trace_dir / "none.json")),
        "tla": assay_cli("check", TLA),
        "tla_rm5": assay_cli("check", TLA, "-p", "rm_count=5"),
        "bug": assay_cli("check", BUG),
        "bug_json": assay_cli("check", BUG, "--json"),
        "bug_trace_out": assay_cli("check", BUG, "--trace-out", str(trace_dir / "bug.json")),
        "bug_dfs": assay_cli("check", BUG, "--dfs"),
        "bug_dfs_json": assay_cli("check", BUG, "--dfs", "--json"),
        "max_states": assay_cli("check", OK, "--max-states", "10"),
        "max_states_json": assay_cli("check", OK, "--max-states", "10", "--json"),
        "max_depth_2": assay_cli("check", OK, "--max-depth", "2"),
        "max_depth_100": assay_cli("check", OK, "--max-depth", "100"),
        "deadlock": assay_cli("check", PING),
        "deadlock_json": assay_cli("check", PING, "--json"),
        "deadlock_dfs": assay_cli("check", PING, "--dfs"),
        "terminal": assay_cli("check", PING, "--system", "system_with_terminal"),
        "help": assay_cli("--help"),
        "check_help": assay_cli("check", "--help"),
        "version": assay_cli("--version"),
    }
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        done = dict(zip(commands, pool.map(run, commands.values())))
    return done


def states(r: Run[str]) -> int:
    """The state count of the human-readable summary."""
    m = re.search(r"^states\s+([\d,]+)\s*$", r.stdout, re.M)
    assert m, r.stdout
    return int(m.group(1).replace(",", ""))


def doc(r: Run[str]) -> dict[str, Any]:
    """The one JSON document of a --json run (stdout holds nothing else)."""
    return json.loads(r.stdout)


def steps(r: Run[str]) -> list[int]:
    """The numbers of the counterexample's steps, in order."""
    return [int(n) for n in re.findall(r"^\s*(\d+)\. \S", r.stdout, re.M)]


# --- every run ------------------------------------------------------------------------------------

def test_no_run_prints_a_traceback_or_anything_on_stderr(runs: dict[str, Run[str]]) -> None:
    """stderr is not a terminal here, and no run lasts until a progress line; nothing else goes
    there unless there is an error or a warning, and none of these runs has one."""
    for name, r in runs.items():
        assert "Traceback" not in r.stdout + r.stderr, (name, r.stdout, r.stderr)
        assert r.stderr == "", (name, r.stderr)


# --- a correct spec -------------------------------------------------------------------------------

def test_correct_spec_holds(runs: dict[str, Run[str]]) -> None:
    r = runs["ok"]
    assert r.returncode == 0, r.stdout
    assert "all properties hold" in r.stdout
    assert f"{OK} :: system(rm_count=3)" in r.stdout
    assert states(r) == 801
    assert re.search(r"^search\s+bfs, stopped: exhausted", r.stdout, re.M)


def test_param_changes_the_system(runs: dict[str, Run[str]]) -> None:
    r = runs["ok_rm2"]
    assert r.returncode == 0, r.stdout
    assert "system(rm_count=2)" in r.stdout
    assert "all properties hold" in r.stdout
    assert states(r) == 101 != states(runs["ok"])


def test_json_of_a_passing_check(runs: dict[str, Run[str]]) -> None:
    r = runs["ok_json"]
    assert r.returncode == 0
    d = doc(r)
    assert d["command"] == "check"
    assert d["spec"] == OK
    assert d["system"] == "system"
    assert d["params"] == {"rm_count": 3}
    assert d["verdict"] == "ok"
    assert d["reason"] == "exhausted"
    assert d["strategy"] == "bfs"
    assert d["states"] == 801
    assert isinstance(d["transitions"], int) and d["transitions"] >= d["states"] - 1
    assert isinstance(d["depth"], int) and d["depth"] > 0
    assert isinstance(d["seconds"], float | int) and d["seconds"] >= 0
    assert d["violation"] is None and d["trace"] is None


def test_human_and_json_summaries_agree(runs: dict[str, Run[str]]) -> None:
    d, r = doc(runs["ok_json"]), runs["ok"].stdout
    assert re.search(rf"^transitions\s+{d['transitions']:,}\s*$", r, re.M)
    assert re.search(rf"^depth\s+{d['depth']}\s*$", r, re.M)


def test_tla_twophase_matches_tlc(runs: dict[str, Run[str]]) -> None:
    assert runs["tla"].returncode == 0 and runs["tla_rm5"].returncode == 0
    assert "all properties hold" in runs["tla"].stdout
    assert states(runs["tla"]) == 288
    assert states(runs["tla_rm5"]) == 8832


def test_trace_out_without_counterexample_writes_nothing(runs: dict[str, Run[str]],
                                                         trace_dir: Path) -> None:
    r = runs["ok_trace_out"]
    assert r.returncode == 0
    assert "no counterexample" in r.stdout
    assert not (trace_dir / "none.json").exists()


# --- a spec with a bug ----------------------------------------------------------------------------

def test_bug_is_found_with_a_numbered_shortest_counterexample(runs: dict[str, Run[str]]) -> None:
    r = runs["bug"]
    assert r.returncode == 1, r.stdout
    assert "violation" in r.stdout
    # the TM's protocol catches the bug at its boundary: it commits to an RM that never
    # prepared, which its session with that RM does not allow
    assert "which its protocol does not allow here" in r.stdout
    assert re.search(r"^\s*blame: tm\.commit\b", r.stdout, re.M)
    assert "shortest counterexample (5 steps)" in r.stdout
    assert steps(r) == [1, 2, 3, 4, 5]
    assert re.search(r"^\s*5\. tm fires commit", r.stdout, re.M), r.stdout
    assert re.search(r"^search\s+bfs, stopped: violation", r.stdout, re.M)


def test_json_of_a_violation(runs: dict[str, Run[str]]) -> None:
    r = runs["bug_json"]
    assert r.returncode == 1
    d = doc(r)
    assert d["verdict"] == "violation"
    assert d["reason"] == "violation"
    v = d["violation"]
    assert v["kind"] == "protocol" and v["blame"] == "tm.commit"
    t = d["trace"]
    assert t["format"] == "assay-trace"
    assert len(t["events"]) == 5
    assert [e["step"] for e in t["events"]] == list(range(1, 6))


def test_trace_out_writes_a_trace_file(runs: dict[str, Run[str]], trace_dir: Path) -> None:
    r = runs["bug_trace_out"]
    assert r.returncode == 1
    path = trace_dir / "bug.json"
    assert f"trace written to {path}" in r.stdout
    t = json.loads(path.read_text())
    assert t["format"] == "assay-trace"
    assert t["version"] == 1
    assert t["spec"] == BUG
    assert t["system"] == "system"
    assert t["params"] == {"rm_count": 3}
    events = t["events"]
    assert [e["step"] for e in events] == [1, 2, 3, 4, 5]
    assert all(e["kind"] in ("action", "deliver") for e in events)
    assert t["verdict"]["blame"] == "tm.commit"
    assert t["verdict"]["kind"] == "protocol"
    assert t["verdict"]["step"] == 5
    assert t == doc(runs["bug_json"])["trace"], "--trace-out and --json disagree"


def test_dfs_finds_the_bug_too(runs: dict[str, Run[str]]) -> None:
    r = runs["bug_dfs"]
    assert r.returncode == 1, r.stdout
    assert "which its protocol does not allow here" in r.stdout
    assert re.search(r"^search\s+dfs, stopped: violation", r.stdout, re.M)
    n = steps(r)
    assert n == list(range(1, len(n) + 1)) and len(n) >= 5      # BFS's is the shortest
    d = doc(runs["bug_dfs_json"])
    assert d["verdict"] == "violation" and d["strategy"] == "dfs"
    assert d["violation"]["kind"] == "protocol"


def test_dfs_explores_the_same_states_as_bfs(runs: dict[str, Run[str]]) -> None:
    d = doc(runs["ok_dfs_json"])
    assert runs["ok_dfs_json"].returncode == 0
    assert d["verdict"] == "ok" and d["strategy"] == "dfs" and d["reason"] == "exhausted"
    assert d["states"] == doc(runs["ok_json"])["states"] == 801


# --- bounds ---------------------------------------------------------------------------------------

def test_max_states_stops_incomplete(runs: dict[str, Run[str]]) -> None:
    r = runs["max_states"]
    assert r.returncode == 3, r.stdout
    assert "incomplete" in r.stdout
    assert "all properties hold" not in r.stdout
    assert states(r) == 10
    d = doc(runs["max_states_json"])
    assert runs["max_states_json"].returncode == 3
    assert d["verdict"] == "incomplete" and d["reason"] == "max-states" and d["states"] == 10


def test_max_depth_below_the_diameter_is_incomplete(runs: dict[str, Run[str]]) -> None:
    r = runs["max_depth_2"]
    assert r.returncode == 3, r.stdout
    assert "incomplete" in r.stdout
    assert re.search(r"^search\s+bfs, stopped: max-depth", r.stdout, re.M)
    assert states(r) < 801


def test_max_depth_above_the_diameter_is_complete(runs: dict[str, Run[str]]) -> None:
    r = runs["max_depth_100"]
    assert r.returncode == 0, r.stdout
    assert "all properties hold" in r.stdout
    assert states(r) == 801


# --- deadlock and terminal states -----------------------------------------------------------------

def test_deadlock_is_a_violation(runs: dict[str, Run[str]]) -> None:
    r = runs["deadlock"]
    assert r.returncode == 1, r.stdout
    assert "deadlock" in r.stdout
    assert steps(r) == [1, 2, 3, 4, 5, 6]
    d = doc(runs["deadlock_json"])
    assert d["verdict"] == "violation"
    assert d["violation"]["kind"] == "deadlock"
    assert d["violation"]["blame"] == "ping_pong"
    assert len(d["trace"]["events"]) == 6
    assert d["trace"]["verdict"]["kind"] == "deadlock"
    assert runs["deadlock_dfs"].returncode == 1
    assert "deadlock" in runs["deadlock_dfs"].stdout


def test_declared_terminal_state_is_no_deadlock(runs: dict[str, Run[str]]) -> None:
    r = runs["terminal"]
    assert r.returncode == 0, r.stdout
    assert "all properties hold" in r.stdout
    assert "deadlock" not in r.stdout
    assert states(r) == 7


# --- help and version -----------------------------------------------------------------------------

def test_help(runs: dict[str, Run[str]]) -> None:
    r = runs["help"]
    assert r.returncode == 0
    assert "Usage:" in r.stdout and "check" in r.stdout
    c = runs["check_help"]
    assert c.returncode == 0
    for opt in ("--system", "--param", "--bfs", "--dfs", "--max-states", "--max-depth",
                "--json", "--trace-out"):
        assert opt in c.stdout, opt
    assert "Exit codes" in c.stdout


def test_version(runs: dict[str, Run[str]]) -> None:
    r = runs["version"]
    assert r.returncode == 0
    assert assay.__version__ in r.stdout


def test_console_script_on_path() -> None:
    exe = shutil.which("assay")
    if exe is None:
        pytest.skip("the assay console script is not on PATH (pip install -e .)")
    v = run([exe, "--version"])
    assert v.returncode == 0, v.stderr
    assert re.fullmatch(rf"assay, version {re.escape(assay.__version__)}\s*", v.stdout), v.stdout
    r = run([exe, "check", OK, "--json"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert doc(r)["states"] == 801


def test_trace_out_to_an_unwritable_path_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "trace.json"
    r = run(assay_cli("check", BUG, "--trace-out", str(target)))
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    assert r.returncode == 2, r.stderr
    assert re.search(r"error: .*trace\.json", " ".join(r.stderr.split())), r.stderr


# --- warnings: a check that holds without proving much --------------------------------------------

IDLE = "tests/fixtures/good/idle.py"


def test_nothing_enabled_is_a_warning_on_stderr_and_in_the_summary() -> None:
    r = run(assay_cli("check", IDLE))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.startswith("warning: 0 transitions: is anything enabled?"), r.stderr
    out = " ".join(r.stdout.split())
    assert "all properties hold" in out
    assert "warning 0 transitions: is anything enabled?" in out, out


def test_json_says_what_each_property_read_and_warns_of_vacuous_ones() -> None:
    r = run(assay_cli("check", IDLE, "--system", "watched", "--json"))
    assert r.returncode == 0, r.stdout + r.stderr
    d = doc(r)                                           # stdout: one JSON document
    props = d["properties"]
    assert props["counted"] == {"evaluated": 4, "ever_false": False, "reads": ["counter"],
                                "note": None}
    assert "vacuous" in props["calm"]["note"] and "vacuous" in props["tautology"]["note"]
    assert d["warnings"] == [props["calm"]["note"], props["tautology"]["note"]]
    assert r.stderr.splitlines() == [f"warning: {w}" for w in d["warnings"]]
