"""`assay simulate` and `assay replay` end to end, in subprocesses as a user runs them.

Two module-scoped stages, each a batch of commands run several at a time: the first writes
traces (`check --trace-out`, `simulate --out`), the second replays them (both engines,
`--mermaid`, `--json`, hand-edited and malformed traces).  The tests assert on the finished
runs.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
VOLATILE = "specs/register_bug_volatile.py"
REG = "specs/register.py"
NOSEQ = "specs/alternating_bit_bug_no_seq.py"
ABP = "specs/alternating_bit.py"
MAJORITY = "specs/two_phase_commit_bug_majority.py"
TPC = "specs/two_phase_commit.py"

Run = subprocess.CompletedProcess


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    for k in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
              "CLICOLOR_FORCE", "PY_COLORS"):
        env.pop(k, None)
    return env


def run(argv: list[str]) -> Run[str]:
    return subprocess.run(argv, cwd=REPO, env=cli_env(), capture_output=True, text=True,
                          timeout=120)


def assay_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "assay.cli", *args]


def run_all(commands: dict[str, list[str]]) -> dict[str, Run[str]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(commands, pool.map(run, commands.values())))


def doc(r: Run[str]) -> dict[str, Any]:
    return json.loads(r.stdout)


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


# --- stage 1: traces ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replay")


@pytest.fixture(scope="module")
def made(work: Path) -> dict[str, Run[str]]:
    commands = {
        "check_volatile": assay_cli("check", VOLATILE, "--faults", "crash=1",
                                    "--trace-out", str(work / "volatile.json")),
        "check_majority": assay_cli("check", MAJORITY, "--trace-out", str(work / "major.json")),
        "check_noseq_dup": assay_cli("check", NOSEQ, "--faults", "dup=1",
                                     "--trace-out", str(work / "noseq.json")),
        "sim_noseq": assay_cli("simulate", NOSEQ, "--seed", "1", "--runs", "30", "--steps", "100",
                               "--faults", "dup=0.1", "--jobs", "1", "--out",
                               str(work / "sim_noseq"), "--json"),
        "sim_volatile": assay_cli("simulate", VOLATILE, "--seed", "1", "--runs", "40",
                                  "--steps", "60", "--faults", "crash=0.05", "--jobs", "1",
                                  "--out", str(work / "sim_volatile")),
        "sim_volatile_noshrink": assay_cli("simulate", VOLATILE, "--seed", "1", "--runs", "40",
                                           "--steps", "60", "--faults", "crash=0.05",
                                           "--jobs", "1", "--no-shrink", "--json",
                                           "--out", str(work / "sim_volatile_noshrink")),
        "sim_majority": assay_cli("simulate", MAJORITY, "--seed", "3", "--runs", "40",
                                  "--steps", "60", "--jobs", "1", "--json",
                                  "--out", str(work / "sim_majority")),
        "sim_tpc": assay_cli("simulate", TPC, "--seed", "1", "--runs", "20", "--steps", "60",
                             "--jobs", "1", "--json", "--out", str(work / "sim_tpc")),
        "sim_reg": assay_cli("simulate", REG, "--seed", "1", "--runs", "30", "--steps", "60",
                             "--faults", "crash=0.05", "--jobs", "1", "--out",
                             str(work / "sim_reg")),
        "sim_abp_json": assay_cli("simulate", ABP, "--seed", "1", "--runs", "20", "--steps", "200",
                                  "--faults", "drop=0.1,dup=0.1", "-p", "retries=10",
                                  "--jobs", "1", "--json", "--out", str(work / "sim_abp")),
    }
    return run_all(commands)


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch):
    """The command run in this process (click's runner): for the quick error cases."""
    from click.testing import CliRunner

    from assay.cli import main

    monkeypatch.chdir(REPO)

    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def trace_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


# --- stage 2: replays -----------------------------------------------------------------------------


def edited(src: Path, dst: Path, change) -> str:
    d = json.loads(src.read_text())
    change(d)
    dst.write_text(json.dumps(d))
    return str(dst)


def _events_not_objects(d):
    d["events"] = ["oops"]


def _events_not_a_list(d):
    d["events"] = 5


def _params_not_an_object(d):
    d["params"] = [1]


def _message_not_an_object(d):
    d["events"][1]["message"] = "Write"


def _verdict_not_an_object(d):
    d["verdict"] = "violation"


def _spec_null(d):
    d["spec"] = None


def _changes_not_an_object(d):
    d["events"][0]["changes"] = ["client", "pending"]


def _changes_of_an_instance_not_an_object(d):
    d["events"][0]["changes"] = {"client": 5}


MALFORMED = {                 # (each was a crash, exit 70 with a traceback, before 6ef03b2)
    "events_not_objects": _events_not_objects,
    "events_not_a_list": _events_not_a_list,
    "params_not_an_object": _params_not_an_object,
    "message_not_an_object": _message_not_an_object,
    "verdict_not_an_object": _verdict_not_an_object,
    "spec_null": _spec_null,
    "changes_not_an_object": _changes_not_an_object,
    "changes_of_an_instance_not_an_object": _changes_of_an_instance_not_an_object,
}


@pytest.fixture(scope="module")
def replays(made: dict[str, Run[str]], work: Path) -> dict[str, Run[str]]:
    assert made["check_volatile"].returncode == 1, made["check_volatile"].stderr
    assert made["check_majority"].returncode == 1, made["check_majority"].stderr
    vol = work / "volatile.json"
    sim_noseq = trace_files(work / "sim_noseq")[0]
    sim_vol = trace_files(work / "sim_volatile")[0]
    sim_vol_long = trace_files(work / "sim_volatile_noshrink")[0]
    sim_major = trace_files(work / "sim_majority")[0]

    def bad_step3(d):                      # WriteAck(value=1) -> WriteAck(value=2), step 3
        d["events"][2]["message"]["fields"]["value"] = 2

    def truncate(d):
        d["events"] = d["events"][:2]

    def other_verdict(d):
        d["verdict"]["name"] = "something_else"

    (work / "garbage.json").write_text("this is { not JSON\n")
    (work / "other.json").write_text(json.dumps({"hello": "world"}))
    (work / "list.json").write_text(json.dumps([1, 2, 3]))
    commands = {
        "vol_checker": assay_cli("replay", str(vol)),
        "vol_simulator": assay_cli("replay", str(vol), "--engine", "simulator"),
        "vol_json": assay_cli("replay", str(vol), "--json"),
        "vol_mermaid": assay_cli("replay", str(vol), "--mermaid", str(work / "vol.mmd")),
        "major_checker": assay_cli("replay", str(work / "major.json")),
        "noseq_checker": assay_cli("replay", str(work / "noseq.json")),
        "noseq_simulator": assay_cli("replay", str(work / "noseq.json"), "--engine",
                                     "simulator"),
        "sim_noseq_checker": assay_cli("replay", str(sim_noseq), "--engine", "checker"),
        "sim_noseq_simulator": assay_cli("replay", str(sim_noseq), "--engine", "simulator",
                                         "--json"),
        "sim_noseq_mermaid": assay_cli("replay", str(sim_noseq), "--mermaid",
                                       str(work / "noseq.mmd")),
        "sim_vol_checker": assay_cli("replay", str(sim_vol), "--engine", "checker"),
        "sim_vol_long": assay_cli("replay", str(sim_vol_long), "--engine", "checker", "--json"),
        "sim_major_checker": assay_cli("replay", str(sim_major), "--engine", "checker"),
        "bad_step": assay_cli("replay", edited(vol, work / "bad_step.json", bad_step3)),
        "truncated": assay_cli("replay", edited(vol, work / "truncated.json", truncate)),
        "other_verdict": assay_cli("replay", edited(vol, work / "other_verdict.json",
                                                    other_verdict)),
        "garbage": assay_cli("replay", str(work / "garbage.json")),
        "not_a_trace": assay_cli("replay", str(work / "other.json")),
    }
    return run_all(commands)


# --- simulate -------------------------------------------------------------------------------------


def test_no_run_prints_a_traceback(made, replays):
    for name, r in {**made, **replays}.items():
        assert "Traceback" not in r.stdout + r.stderr, (name, r.stderr)


def test_simulate_json_has_runs_events_states_and_violations_with_seed_and_trace_file(made):
    r = made["sim_noseq"]
    assert r.returncode == 1, r.stderr
    d = doc(r)
    assert d["command"] == "simulate" and d["verdict"] == "violation"
    assert d["runs"] == 30
    assert d["events"] > 0 and d["distinct_states"] > 0
    assert sum(d["ended"].values()) == 30
    assert d["violations"]
    assert d["ended"]["violation"] == len(d["violations"])
    for v in d["violations"]:
        assert isinstance(v["seed"], int) and isinstance(v["run"], int)
        assert v["kind"] == "property" and v["name"] == "in_order_once"
        assert 0 < v["shrunk_events"] <= v["events"]
        path = Path(v["trace_file"])
        assert path.is_file()
        assert f"run{v['run']}-seed{v['seed']}" in path.name
        t = json.loads(path.read_text())
        assert t["format"] == "assay-trace" and t["version"] == 1
        assert t["engine"] == "simulate" and t["seed"] == v["seed"]
        assert t["faults"]["dup"] == 0.1
        assert len(t["events"]) == v["shrunk_events"]
        assert [e["step"] for e in t["events"]] == list(range(1, len(t["events"]) + 1))
        assert t["verdict"]["name"] == "in_order_once"
    assert "seconds" in d and "events_per_second" in d


def test_simulate_exits_1_on_a_violation_and_0_without(made):
    assert made["sim_volatile"].returncode == 1, made["sim_volatile"].stderr
    assert made["sim_majority"].returncode == 1
    assert made["sim_tpc"].returncode == 0, made["sim_tpc"].stdout + made["sim_tpc"].stderr
    assert doc(made["sim_tpc"])["verdict"] == "ok"
    assert doc(made["sim_tpc"])["violations"] == []
    assert made["sim_reg"].returncode == 0, made["sim_reg"].stdout
    assert "no violation in 30 runs" in made["sim_reg"].stdout
    assert made["sim_abp_json"].returncode == 0, made["sim_abp_json"].stdout
    assert doc(made["sim_abp_json"])["violations"] == []


def test_simulate_writes_no_trace_directory_when_nothing_fails(made, work):
    assert not (work / "sim_tpc").exists()
    assert not (work / "sim_reg").exists()


def test_simulate_human_output_lists_failing_runs_and_their_trace_files(made, work):
    out = flat(made["sim_volatile"].stdout)
    assert re.search(r"✗ \d+ of 40 runs found a violation", out)
    assert "acknowledged_writes_survive" in out
    for f in trace_files(work / "sim_volatile"):
        assert f.name in out


def test_no_shrink_writes_the_runs_as_they_happened(made, work):
    d = doc(made["sim_volatile_noshrink"])
    assert all(v["shrunk_events"] == v["events"] for v in d["violations"])
    for v in d["violations"]:
        assert len(json.loads(Path(v["trace_file"]).read_text())["events"]) == v["events"]


@pytest.mark.parametrize("args,says", [
    (["--faults", "drop=2"], "a rate is a probability"),
    (["--faults", "boom=0.1"], "is not KIND=RATE"),
    (["--faults", "drop=lots"], "is not a number"),
])
def test_simulate_usage_errors_exit_2(in_process, args, says):
    r = in_process("simulate", REG, *args)
    assert r.exit_code == 2, r.output
    assert says in r.stderr
    assert "Traceback" not in r.stderr


def test_simulate_of_a_missing_spec_exits_2(in_process):
    r = in_process("simulate", "specs/nope.py")
    assert r.exit_code == 2
    assert "does not exist" in r.stderr


# --- replay of check traces -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vol_checker", "vol_simulator", "major_checker",
                                  "noseq_checker", "noseq_simulator"])
def test_a_check_trace_replays_and_reproduces_under_both_engines(replays, name):
    r = replays[name]
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the recorded violation is reproduced" in r.stdout
    engine = "simulator" if name.endswith("simulator") else "checker"
    assert f"on the {engine}" in flat(r.stdout)
    assert r.stderr == ""


def counterexample_lines(text: str) -> list[str]:
    """From 'initial state' to the last numbered step's details."""
    lines = text.splitlines()
    start = lines.index("initial state")
    out = []
    for line in lines[start:]:
        if not line.strip() or line.startswith(("✗", "  ✗")):
            break
        out.append(line)
    return out


def test_replay_renders_the_same_numbered_steps_and_field_changes_as_check(made, replays):
    check_out = made["check_volatile"].stdout
    replay_out = replays["vol_checker"].stdout
    a, b = counterexample_lines(check_out), counterexample_lines(replay_out)
    assert a == b
    text = "\n".join(b)
    assert re.search(r"^1\. client fires write$", text, re.M)
    assert "   client.pending: False -> True" in b
    assert re.search(r"^4\. server crashes$", text, re.M)
    assert re.search(r"^5\. server restarts$", text, re.M)
    assert "   server.value: 1 -> 0" in b
    assert "✗ property: property 'acknowledged_writes_survive' does not hold" in replay_out


def test_replay_json_says_reproduced_and_lists_the_events(replays, work):
    r = replays["vol_json"]
    assert r.returncode == 1
    d = doc(r)
    assert d["command"] == "replay" and d["engine"] == "checker"
    assert d["reproduced"] is True
    assert d["steps"] == 5
    assert d["violation"]["name"] == "acknowledged_writes_survive"
    assert d["recorded"]["name"] == "acknowledged_writes_survive"
    trace = json.loads((work / "volatile.json").read_text())
    assert d["events"] == [{k: v for k, v in e.items() if k != "step"}
                           for e in trace["events"]]
    assert [e["kind"] for e in d["events"]][-2:] == ["crash", "restart"]


def test_replay_on_the_simulator_reports_virtual_time(replays):
    d = doc(replays["sim_noseq_simulator"])
    assert d["engine"] == "simulator"
    assert isinstance(d["time"], int) and d["time"] >= d["steps"]
    assert d["reproduced"] is True


# --- replay of simulate traces --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sim_noseq_checker", "sim_vol_checker", "sim_major_checker"])
def test_a_simulate_trace_replays_on_the_checker_and_reproduces(replays, name):
    r = replays[name]
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the recorded violation is reproduced" in r.stdout
    assert "(simulate trace of" in flat(r.stdout)


def test_an_unshrunk_simulate_trace_replays_too(replays):
    r = replays["sim_vol_long"]
    assert r.returncode == 1
    assert doc(r)["reproduced"] is True


# --- mermaid --------------------------------------------------------------------------------------


def test_mermaid_diagram_of_a_crash_trace(replays, work):
    assert replays["vol_mermaid"].returncode == 1
    assert f"sequence diagram written to {work / 'vol.mmd'}" in flat(replays["vol_mermaid"].stdout)
    text = (work / "vol.mmd").read_text()
    lines = text.splitlines()
    assert lines[0] == "sequenceDiagram"
    assert [x.strip() for x in lines if x.strip().startswith("participant")] == [
        "participant server", "participant client"]
    arrows = [x.strip() for x in lines if "->>" in x]
    assert arrows == ["client->>server: 2. Write(value=1)",
                      "server->>client: 3. WriteAck(value=1)"]
    assert "    Note over server: 4. server crashes" in lines
    assert "    Note over server: 5. server restarts" in lines
    assert "Note right of server: value=0" in text
    assert lines[-1].strip().startswith("Note over server,client: ✗ property")
    assert "acknowledged_writes_survive" in lines[-1]


def test_mermaid_diagram_of_a_duplicating_simulate_trace(replays, work):
    assert replays["sim_noseq_mermaid"].returncode == 1
    text = (work / "noseq.mmd").read_text()
    lines = text.splitlines()
    assert lines[0] == "sequenceDiagram"
    assert sum(1 for x in lines if x.strip().startswith("participant")) == 2
    assert any("sender->>receiver:" in x and "Data(" in x for x in lines)
    assert any("✗" in x and "in_order_once" in x for x in lines[-1:])


def test_mermaid_to_an_unwritable_place_exits_2_before_replaying(in_process, made, work):
    r = in_process("replay", str(work / "volatile.json"), "--mermaid",
                   str(work / "no" / "such" / "dir.mmd"))
    assert r.exit_code == 2
    assert "does not exist" in r.stderr


# --- traces that do not fit -----------------------------------------------------------------------


def test_a_hand_edited_trace_with_an_event_not_enabled_exits_2_naming_the_step(replays):
    r = replays["bad_step"]
    assert r.returncode == 2, r.stdout + r.stderr
    assert "step 3" in r.stderr
    assert "not enabled" in r.stderr
    assert "WriteAck" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_step_whose_recorded_changes_differ_from_its_replay_exits_2_naming_it(
        in_process, made, work):
    def pending_stays_false(d):               # step 1 set client.pending to true
        d["events"][0]["changes"]["client"]["pending"] = False

    r = in_process("replay", edited(work / "volatile.json", work / "diverges.json",
                                    pending_stays_false))
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.stderr
    err = flat(r.stderr)
    assert "error: step 1: client fires write: replaying it does not give what the trace " \
           "recorded: client.pending: the trace recorded false, replaying gives true" in err
    assert "a handler depends on something outside its state" in err


def test_a_step_that_recorded_no_change_but_replays_one_exits_2(in_process, made, work):
    def nothing_changed(d):
        d["events"][1]["changes"] = {}

    r = in_process("replay", edited(work / "volatile.json", work / "diverges2.json",
                                    nothing_changed))
    assert r.exit_code == 2, r.output
    assert "step 2:" in r.stderr
    assert "the trace recorded no change, replaying gives" in flat(r.stderr)


def test_a_simulate_trace_records_changes_and_replay_checks_them(in_process, made, work):
    src = trace_files(work / "sim_volatile")[0]
    events = json.loads(src.read_text())["events"]
    assert all("changes" in e for e in events)
    step = next(i for i, e in enumerate(events) if e["changes"])
    inst, fields = next(iter(events[step]["changes"].items()))

    def edit(d):
        d["events"][step]["changes"][inst] = {**fields, "no_such_field": 1}

    r = in_process("replay", edited(src, work / "sim_diverges.json", edit))
    assert r.exit_code == 2, r.output
    assert f"step {step + 1}:" in r.stderr
    assert f"{inst}.no_such_field: the trace recorded 1, replaying gives no change" in \
        flat(r.stderr)


def test_a_trace_without_recorded_changes_still_replays(in_process, made, work):
    def forget_changes(d):
        for e in d["events"]:
            del e["changes"]

    r = in_process("replay", edited(work / "volatile.json", work / "old_style.json",
                                    forget_changes))
    assert r.exit_code == 1, r.output
    assert "the recorded violation is reproduced" in r.stdout


def test_a_trace_cut_before_its_violation_exits_2_and_never_reads_as_a_pass(replays):
    # it exited 0 with "✓ the run ends without a violation": the failing step was missing,
    # not the failure gone (tests/test_redteam_sim.py has the other cuts)
    r = replays["truncated"]
    assert r.returncode == 2, r.stdout + r.stderr
    assert "the trace is cut short: it records its violation (property " \
        "acknowledged_writes_survive) at step 5, and has 2 events" in flat(r.stderr)
    assert "✓" not in r.stdout + r.stderr


def test_a_trace_whose_recorded_violation_differs_says_so(replays):
    r = replays["other_verdict"]
    assert r.returncode == 1
    assert "this is a different violation" in flat(r.stdout)
    assert "reproduced" not in r.stdout


@pytest.mark.parametrize("name,says", [("garbage", "is not JSON"),
                                       ("not_a_trace", "is not an assay trace")])
def test_a_file_that_is_not_a_trace_exits_2(replays, name, says):
    r = replays[name]
    assert r.returncode == 2, r.stdout + r.stderr
    assert says in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("file,says", [("list.json", "is not an assay trace"),
                                       ("missing.json", "cannot read trace")])
def test_other_non_traces_exit_2(in_process, replays, work, file, says):
    r = in_process("replay", str(work / file))
    assert r.exit_code == 2, r.output
    assert says in r.stderr
    assert "Traceback" not in r.stderr


def test_a_wrong_trace_version_exits_2(in_process, made, work):
    path = edited(work / "volatile.json", work / "v2.json", lambda d: d.update(version=2))
    r = in_process("replay", path)
    assert r.exit_code == 2
    assert "trace version 2" in r.stderr


def test_a_trace_of_a_changed_spec_exits_2(in_process, made, work):
    def initial(d):
        d["initial"]["server"]["value"] = 5

    r = in_process("replay", edited(work / "volatile.json", work / "init.json", initial))
    assert r.exit_code == 2
    assert "not an initial state" in r.stderr


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_trace_exits_2_without_a_traceback(in_process, made, work, case):
    change = MALFORMED[case]
    r = in_process("replay", edited(work / "volatile.json", work / f"bad_{case}.json", change))
    assert r.exit_code == 2, r.stderr[-500:]
    assert "Traceback" not in r.stderr
    assert "error" in r.stderr


# --- the trace format -----------------------------------------------------------------------------


def test_a_check_trace_file_has_the_documented_fields(made, work):
    t = json.loads((work / "volatile.json").read_text())
    assert list(t) == ["format", "version", "spec", "system", "params", "engine", "seed",
                       "faults", "initial", "events", "verdict"]
    assert (t["format"], t["version"], t["engine"], t["seed"]) == ("assay-trace", 1, "check",
                                                                   None)
    assert (t["spec"], t["system"], t["params"]) == (VOLATILE, "system", {"writes": 2})
    assert t["faults"] == {"crash": 1}
    assert t["initial"] == {"server": {"value": 0},
                            "client": {"writes": 2, "acked": 0, "pending": False}}
    assert [e["step"] for e in t["events"]] == [1, 2, 3, 4, 5]
    assert [e["kind"] for e in t["events"]] == ["action", "deliver", "deliver", "crash",
                                                "restart"]
    assert t["events"][3] == {"step": 4, "kind": "crash", "instance": "server", "changes": {}}
    assert t["events"][0]["changes"] == {"client": {"pending": True}}
    assert t["verdict"]["kind"] == "property"
    assert t["verdict"]["name"] == "acknowledged_writes_survive"
    assert t["verdict"]["step"] == 5


# --- virtual time on replay -----------------------------------------------------------------------


TICKER_SPEC = '''
from assay import Component, Message, Port, System, action, on


class Tick(Message): ...


class Ticker(Component):
    p = Port()
    started: bool = False
    n: int = 0

    @action(when=lambda self: not self.started)
    def start(self):
        self.started = True
        self.after(10, Tick())

    @on(Tick)
    def tick(self, m):
        self.n += 1
        if self.n < 3:
            self.after(10, Tick())


class Idle(Component):
    p = Port()

    @on(Tick)
    def tick(self, m):
        pass


def system() -> System:
    s = System("ticker", network="unordered")
    s.connect(s.add("t", Ticker).p, s.add("i", Idle).p)

    @s.always
    def fewer_than_three_ticks(g):
        return g["t"].n < 3

    return s
'''


def test_replay_on_the_simulator_keeps_the_due_times_of_re_armed_timers(in_process, work):
    """Three ticks, each re-armed 10 units after the last: the third is at time 30 at least,
    in the simulator and in its replay.  (A re-armed timer used to keep its old due time.)"""
    spec = work / "ticker.py"
    spec.write_text(TICKER_SPEC)
    r = in_process("simulate", str(spec), "--runs", "1", "--jobs", "1", "--json",
                   "--out", str(work / "ticks"))
    assert r.exit_code == 1, r.output
    (v,) = json.loads(r.stdout)["violations"]
    assert v["name"] == "fewer_than_three_ticks"
    r = in_process("replay", v["trace_file"], "--engine", "simulator", "--json",
                   "--spec", str(spec))             # (outside the current directory)
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert d["reproduced"] is True
    assert [e["kind"] for e in d["events"]] == ["action", "timer", "timer", "timer"]
    assert d["time"] >= 30
    r = in_process("replay", v["trace_file"], "--engine", "checker", "--json",
                   "--spec", str(spec))
    assert r.exit_code == 1 and json.loads(r.stdout)["time"] is None
