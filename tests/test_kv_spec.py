"""The replicated key-value store, specs/kv/replicated_kv.py: the shipped example of one_of and
initially, Range fields, port contracts, fair= and s.fair, @on_restart, self.name and
port.peer, always_eventually, a constraint, Map.over and Map.fromkeys, replace, a message
field default, a sibling module (specs/kv/messages.py) and component subclasses.

It holds (with and without a crash), its twin _bug_snapshot loses an acknowledged write after
one crash, verify refutes only what a component alone cannot know, and simulate, run and
replay agree, through the command line as a user runs them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assay.checker import check
from assay.kernel.faults import Faults
from assay.kernel.kernel import Kernel
from assay.model.load import build
from assay.verifier.verify import verify

ROOT = Path(__file__).resolve().parents[1]
KV = ROOT / "specs" / "kv"
GOOD = KV / "replicated_kv.py"
BUG = KV / "replicated_kv_bug_snapshot.py"


def cli(*args: Any, cwd: Path = ROOT, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m assay ARGS`, run from `cwd`."""
    return subprocess.run([sys.executable, "-m", "assay", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_the_store_holds_with_its_liveness_property() -> None:
    r = check(build(GOOD)[0])
    assert r.verdict == "ok" and r.reason == "exhausted"
    assert (r.states, r.transitions) == (1498, 3516)
    assert r.liveness == {"settles": "holds"}


def test_the_store_holds_with_a_crash_and_restart() -> None:
    r = check(build(GOOD)[0], faults=Faults(crash=1))
    assert r.verdict == "ok" and r.states == 111_746
    assert r.liveness == {"settles": "holds"}


def test_the_snapshot_bug_needs_a_restart_and_loses_an_acknowledged_write() -> None:
    r = check(build(BUG)[0])
    assert r.verdict == "ok" and r.states == 1498          # no restart, no snapshot: as GOOD
    r = check(build(BUG)[0], faults=Faults(crash=1))
    assert r.verdict == "violation" and len(r.steps) == 11
    assert r.violation is not None and r.violation.name == "acknowledged_writes_are_durable"


def test_the_constraint_cuts_the_search_where_the_store_has_settled() -> None:
    # bound=4 (MAX_VERSION) cuts nothing: every version, every refusal
    counts = {b: check(build(GOOD, params={"bound": str(b)})[0]) for b in (0, 1, 4)}
    assert {b: r.states for b, r in counts.items()} == {0: 388, 1: 1498, 4: 10468}
    assert all(r.verdict == "ok" and r.liveness == {"settles": "holds"}
               for r in counts.values())


def test_the_clients_start_with_their_own_values_and_any_key() -> None:
    k = Kernel(build(GOOD)[0])
    starts = sorted((k.local_values(s, "c1")["key"], k.local_values(s, "c1")["value"],
                     k.local_values(s, "c2")["key"], k.local_values(s, "c2")["value"])
                    for s, _ in k.initial_states())
    # one_of(10, 20, 30) for the value, kept where it names its writer: c1 10, c2 20
    assert starts == [(0, 10, 0, 20), (0, 10, 1, 20), (1, 10, 0, 20), (1, 10, 1, 20)]


@pytest.mark.parametrize("declaration,faults,params", [
    ('    s.fair("weak", Backup)\n', None, {}),
    ('@on(Replicated, fair="weak")', None, {}),
    ('@on(Sync, fair="weak")', Faults(crash=1), {"clients": "1", "backups": "1"}),
], ids=["s.fair Backup", "fair= Replicated", "fair= Sync"])
def test_each_fairness_declaration_is_needed_for_the_liveness_property(
        tmp_path: Path, declaration: str, faults: Faults | None, params: dict[str, str]) -> None:
    assert check(build(GOOD, params=params)[0], faults=faults).verdict == "ok"
    source = GOOD.read_text()
    assert declaration in source
    shutil.copy(KV / "messages.py", tmp_path / "messages.py")
    spec = tmp_path / "unfair.py"
    spec.write_text(source.replace(declaration, declaration.replace(', fair="weak"', "")
                                   if "fair=" in declaration else ""))
    r = check(build(spec, params=params)[0], faults=faults)
    assert r.verdict == "violation" and r.violation is not None
    assert r.violation.kind == "liveness" and r.violation.name == "settles"


def test_verify_refutes_only_what_each_component_alone_cannot_know() -> None:
    # verify proves each component alone, for any state its invariants allow and any
    # message its ports' contracts allow.  The maps are translated (Z3 arrays), so what was
    # unknown is now decided; what is refuted is confirmed by running the real handler on a
    # state of the component that the system never reaches: a table without the key asked
    # for (the table holds every key from the start, `Map.over`, which no invariant says), a
    # request from a peer on another port (a Get from a backup), a Got older than the
    # client's own write.  `check` explores the system and finds nothing (above).
    report = verify(build(GOOD)[0])
    refuted = sorted((o.component, o.target, o.kind) for o in report.obligations
                     if o.verdict == "refuted")
    assert refuted == [("Backup", "replicate", "no-exception"),
                       ("Primary", "get", "no-exception"),
                       ("Primary", "get", "requires-at-sender"),
                       ("Primary", "get", "send"),
                       ("Primary", "put", "no-exception"),
                       ("Primary", "put", "send"),
                       ("Primary", "replicated", "send"),
                       ("Primary", "sync", "send")], refuted
    assert all(o.counterexample is not None and o.counterexample.scenario is not None
               for o in report.obligations if o.verdict == "refuted")
    why = {o.reason for o in report.obligations if o.verdict == "unknown"}
    assert all("self.primary.peer" in w or "depends on the receiver's state" in w
               for w in why), why


def test_simulate_finds_nothing_with_and_without_crashes() -> None:
    for extra in ((), ("--faults", "crash=0.01,restart=0.3")):
        r = cli("simulate", GOOD, "--runs", "200", "--json", "--quiet", *extra)
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        assert doc["verdict"] == "ok" and doc["ended"] == {"final": 200}


def test_run_ends_without_violation_and_its_trace_replays(tmp_path: Path) -> None:
    trace = tmp_path / "kv.json"
    # from another folder: the spec still finds messages.py beside it
    r = cli("run", GOOD, "--json", "--trace-out", trace, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    final = json.loads(r.stdout)["final"]
    assert all(final[c]["done"] for c in ("c1", "c2"))          # until the primary refused
    assert final["b1"]["table"] == final["b2"]["table"] == final["primary"]["table"]
    rep = cli("replay", trace, "--json", cwd=tmp_path)       # a spec from elsewhere: named
    assert rep.returncode == 2 and "--spec" in rep.stderr, rep.stdout + rep.stderr
    rep = cli("replay", trace, "--json", "--spec", GOOD, cwd=tmp_path)
    assert rep.returncode == 0, rep.stdout + rep.stderr


def test_check_from_the_command_line_names_the_shortest_counterexample() -> None:
    r = cli("check", BUG, "--faults", "crash=1", "--json", "--quiet")
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "violation"
    assert "acknowledged_writes_are_durable" in doc["violation"]["message"]
