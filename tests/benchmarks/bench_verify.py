"""Benchmark: `assay verify`'s obligations per second, and CrossHair on the same contracts.

What it measures
    1. `assay verify` on every shipped spec (specs/*.py).  Each spec runs in a fresh
       subprocess, so Z3's context and assay's translation caches (``verify._ENCODINGS``,
       ``prove``'s memo tables) are cold; in that process, after importing assay and z3 (timed
       apart, as "import"), it times ``build(spec, None, {})`` ("build": loading the spec),
       then ``verify(system, timeout=...)`` once ("cold": validation, translation of every
       handler, guard and contract, and every Z3 check and confirmation run included), then the
       same call again in the same process ("warm": translations cached).  Obligations per
       second = obligations / verify() wall time (build not included; connection
       obligations, which are protocol compatibility checks and not Z3, are counted as the
       report counts them).  Each cell is the median of ``--repeat`` fresh subprocesses.  The
       slowest obligation is the one whose median ``Obligation.seconds`` (cold) is largest;
       an obligation's own seconds do not include the translation shared by its handler.

    2. The same contracts for CrossHair.  tests/benchmarks/crosshair_targets/*.py are the
       bank transfer `Account` handlers (specs/bank_transfer.py and its overdraft twin) and the
       2PC `TransactionManager` handlers (specs/two_phase_commit.py, and a majority-commit twin)
       written as plain Python with PEP 316 docstring contracts (a class with ``inv:``, methods
       with ``pre:``/``post:``, and the same steps as free functions).  Each file is checked by
       ``python -m crosshair check --analysis_kind=PEP316 --per_condition_timeout T
       --report_all FILE`` in a subprocess (T = ``--per-condition-timeout``, CPU seconds per
       condition, 10 by default); reported: the wall time of the command, the time at which
       its first counterexample was printed, its exit code and every message (CrossHair says
       "Confirmed over all paths" when it exhausted every path, "Not confirmed" when it ran
       out of time without a counterexample, "error: ..." with a counterexample).  Files that
       finish within 10 s are run ``--repeat`` times (median); the others once.  The wall time
       of ``crosshair check`` on a file without contracts is its start-up cost.

    3. Side by side: ``verify(system, component=...)`` for the matching component alone
       (fresh subprocess, cold, median of ``--repeat``), against CrossHair's run on the
       matching file.  For scale, the same obligations hand-encoded in Z3 (one fresh solver per
       obligation, formulas built inside the timed region; ``handwritten_z3`` below), also in
       a fresh subprocess.

Run it from anywhere (the repo root is found from this file's location); it needs
``pip install crosshair-tool`` (not a dependency of assay):

    python tests/benchmarks/bench_verify.py                   # ~7 minutes on 2 CPUs
    python tests/benchmarks/bench_verify.py --quick           # smoke test: ~2 minutes
    python tests/benchmarks/bench_verify.py --no-crosshair    # assay only: ~1 minute
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TARGETS = HERE / "crosshair_targets"


@dataclass(frozen=True)
class Pair:
    """A component of a shipped spec and the CrossHair file with the same contracts."""

    label: str
    spec: str
    component: str
    target: str
    has_bug: bool
    note: str = ""
    buggy: tuple[str, ...] = ()          # CrossHair targets (module.qualname) holding the bug


PAIRS = (
    Pair("bank_transfer Account", "specs/bank_transfer.py", "Account",
         "bank_transfer.py", False),
    Pair("bank_transfer_bug_overdraft Account", "specs/bank_transfer_bug_overdraft.py",
         "Account", "bank_transfer_bug_overdraft.py", True,
         buggy=("bank_transfer_bug_overdraft.Account.transfer",
                "bank_transfer_bug_overdraft.transfer")),
    Pair("two_phase_commit TransactionManager", "specs/two_phase_commit.py",
         "TransactionManager", "two_phase_commit.py", False),
    Pair("two_phase_commit_bug_majority TransactionManager",
         "specs/two_phase_commit_bug_majority.py", "TransactionManager",
         "two_phase_commit_bug_majority.py", True,
         "the shipped spec states only `prepared <= peers`; the CrossHair file keeps both "
         "invariants of two_phase_commit.py",
         buggy=("two_phase_commit_bug_majority.TransactionManager.commit",
                "two_phase_commit_bug_majority.commit")),
)

PYCACHE = Path(tempfile.gettempdir()) / "assay-bench-verify-pycache"


def child_env() -> dict[str, str]:
    """The environment of every child: bytecode cached outside the tree (PYTHONPYCACHEPREFIX),
    as an installed package has it, even where PYTHONDONTWRITEBYTECODE is set (as in CI); so a
    cold run does not include compiling assay's lazily imported modules from source."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPYCACHEPREFIX=str(PYCACHE))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# --- children: each runs in a fresh interpreter ----------------------------------------------

def child_verify(spec: str, component: str | None, timeout: float) -> dict[str, Any]:
    t = time.perf_counter()
    import z3  # noqa: F401

    from assay.model.load import build
    from assay.verifier.verify import verify
    imported = time.perf_counter() - t

    os.chdir(ROOT)
    t = time.perf_counter()
    system, _, _ = build(spec, None, {})
    built = time.perf_counter() - t
    t = time.perf_counter()
    cold = verify(system, component=component, timeout=timeout)
    cold_wall = time.perf_counter() - t
    t = time.perf_counter()
    warm = verify(system, component=component, timeout=timeout)
    warm_wall = time.perf_counter() - t

    def ob(o: Any) -> dict[str, Any]:
        d = {"component": o.component, "target": o.target, "kind": o.kind, "title": o.title,
             "verdict": o.verdict, "reason": o.reason, "seconds": o.seconds}
        if o.counterexample is not None:
            d["counterexample"] = o.counterexample.to_json()
        return d

    return {"import_s": imported, "build_s": built,
            "cold_s": cold_wall, "cold_report_s": cold.seconds,
            "warm_s": warm_wall, "warm_report_s": warm.seconds,
            "counts": cold.counts(), "warm_counts": warm.counts(),
            "obligations": [ob(o) for o in cold.obligations],
            "warm_seconds": [o.seconds for o in warm.obligations]}


def child_all(specs: list[str], timeout: float) -> dict[str, Any]:
    """Every spec in one process, one after the other: each spec's translation is cold (its
    classes are new), the imports and Z3's context are shared."""
    import z3  # noqa: F401

    from assay.model.load import build
    from assay.verifier.verify import verify

    os.chdir(ROOT)
    n = 0
    built = verified = 0.0
    for spec in specs:
        t = time.perf_counter()
        system, _, _ = build(spec, None, {})
        built += time.perf_counter() - t
        t = time.perf_counter()
        n += len(verify(system, timeout=timeout).obligations)
        verified += time.perf_counter() - t
    return {"n": n, "build_s": built, "verify_s": verified}


def child_z3_start() -> dict[str, float]:
    """What the first verify() in a process pays once: Z3's context and a first check."""
    import z3
    t = time.perf_counter()
    z3.main_ctx()
    ctx = time.perf_counter() - t
    t = time.perf_counter()
    x = z3.Int("x")
    s = z3.Solver()
    s.add(x > 0)
    s.check()
    first = time.perf_counter() - t
    return {"context_s": ctx, "first_check_s": first}


def handwritten_z3(which: str) -> list[tuple[str, str, float]]:
    """The bank `Account` or 2PC `TransactionManager` obligations written by hand in Z3: for
    each, a fresh solver, the premise and the negated conclusion, one check; returns (name,
    sat|unsat, seconds), the seconds including building the formulas."""
    import z3

    out = []

    def ob(name: str, build_formulas: Any) -> None:
        t = time.perf_counter()
        s = z3.Solver()
        s.set("timeout", 5000)
        premise, goal = build_formulas()
        s.add(*premise)
        s.add(z3.Not(goal))
        r = s.check()
        if r == z3.sat:
            s.model()                       # a counterexample is read, as assay reads it
        out.append((name, str(r), time.perf_counter() - t))

    if which.startswith("bank"):
        bug = which.endswith("overdraft")
        b, a = z3.Ints("balance amount")
        dom = z3.Or(a == 1, a == 2, a == 3)
        guard = b > 0 if bug else b >= a
        ob("initial state: invariant", lambda: ([b == 4], b >= 0))
        ob("deposit: no exception", lambda: ([b >= 0, a > 0], z3.BoolVal(True)))
        ob("deposit: invariant", lambda: ([b >= 0, a > 0], b + a >= 0))
        ob("deposit: ensures", lambda: ([b >= 0, a > 0], (b + a) == b + a))
        ob("transfer: no exception", lambda: ([b >= 0, dom, guard], z3.BoolVal(True)))
        ob("transfer: invariant", lambda: ([b >= 0, dom, guard], b - a >= 0))
        ob("transfer: ensures", lambda: ([b >= 0, dom, guard], (b - a) == b - a))
        return out

    peer = z3.DeclareSort("Peer")
    tm, (init, committed, aborted) = z3.EnumSort("TM", ["INIT", "COMMITTED", "ABORTED"])
    state = z3.Const("state", tm)
    prepared, peers = z3.Consts("prepared peers", z3.SetSort(peer))
    sender = z3.Const("sender", peer)

    def inv1(st: Any, prep: Any) -> Any:
        return z3.Or(st != committed, prep == peers)

    def inv2(prep: Any) -> Any:
        return z3.IsSubset(prep, peers)

    invs = [inv1(state, prepared), inv2(prepared)]
    after = z3.If(state == init, z3.SetAdd(prepared, sender), prepared)
    ob("initial state: invariant 1", lambda: ([state == init, prepared == z3.EmptySet(peer)],
                                               inv1(state, prepared)))
    ob("initial state: invariant 2", lambda: ([prepared == z3.EmptySet(peer)], inv2(prepared)))
    ob("on_prepared: invariant 1", lambda: ([*invs, z3.IsMember(sender, peers)],
                                            inv1(state, after)))
    ob("on_prepared: invariant 2", lambda: ([*invs, z3.IsMember(sender, peers)], inv2(after)))
    commit_guard = [state == init, prepared == peers]
    ob("commit: invariant 1", lambda: ([*invs, *commit_guard], inv1(committed, prepared)))
    ob("commit: invariant 2", lambda: ([*invs, *commit_guard], inv2(prepared)))
    ob("abort: invariant 1", lambda: ([*invs, state == init], inv1(aborted, prepared)))
    ob("abort: invariant 2", lambda: ([*invs, state == init], inv2(prepared)))
    return out


def run_child(args: list[str]) -> Any:
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], cwd=ROOT,
                       capture_output=True, text=True, env=child_env())
    if p.returncode != 0:
        raise SystemExit(f"child {args} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# --- 1. assay verify on every spec -----------------------------------------------------------

def med(xs: list[float]) -> float:
    return statistics.median(xs)


def verify_spec(spec: str, component: str | None, timeout: float, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        args = ["--child-verify", spec, "--timeout", str(timeout)]
        if component:
            args += ["--component", component]
        runs.append(run_child(args))
    first = runs[0]
    for r in runs[1:]:
        assert [o["verdict"] for o in r["obligations"]] == \
            [o["verdict"] for o in first["obligations"]], f"{spec}: verdicts differ between runs"
    n = len(first["obligations"])
    per_ob = [med([r["obligations"][i]["seconds"] for r in runs]) for i in range(n)]
    slow = max(range(n), key=lambda i: per_ob[i]) if n else None
    return {"spec": spec, "component": component, "n": n, "counts": first["counts"],
            "warm_counts_same": all(r["warm_counts"] == r["counts"] for r in runs),
            "import_s": med([r["import_s"] for r in runs]),
            "build_s": med([r["build_s"] for r in runs]),
            "cold_s": med([r["cold_s"] for r in runs]),
            "cold_min_s": min(r["cold_s"] for r in runs),
            "cold_max_s": max(r["cold_s"] for r in runs),
            "warm_s": med([r["warm_s"] for r in runs]),
            "ob_seconds": per_ob,
            "obligations": first["obligations"],
            "slowest": (first["obligations"][slow], per_ob[slow]) if slow is not None else None}


def table_specs(rows: list[dict]) -> list[str]:
    out = ["| spec | obligations | proved | refuted | vacuous | unknown | build ms | "
           "verify cold ms | cold ob/s | verify warm ms | warm ob/s | slowest obligation "
           "(cold) | its ms |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        c = r["counts"]
        o, ms = r["slowest"]
        out.append(
            f"| {Path(r['spec']).stem} | {r['n']} | {c['proved']} | {c['refuted']} | "
            f"{c['vacuous']} | {c['unknown']} | {r['build_s'] * 1e3:.1f} | "
            f"{r['cold_s'] * 1e3:.1f} | {r['n'] / r['cold_s']:,.0f} | "
            f"{r['warm_s'] * 1e3:.1f} | {r['n'] / r['warm_s']:,.0f} | "
            f"{o['component']}.{o['target']}: {o['title']} ({o['verdict']}) | {ms * 1e3:.2f} |")
    n = sum(r["n"] for r in rows)
    cold = sum(r["cold_s"] for r in rows)
    warm = sum(r["warm_s"] for r in rows)
    build = sum(r["build_s"] for r in rows)
    tot = {k: sum(r["counts"][k] for r in rows) for k in rows[0]["counts"]}
    out.append(f"| **all {len(rows)} specs** | **{n}** | {tot['proved']} | {tot['refuted']} | "
               f"{tot['vacuous']} | {tot['unknown']} | {build * 1e3:.1f} | "
               f"{cold * 1e3:.1f} | **{n / cold:,.0f}** | {warm * 1e3:.1f} | "
               f"**{n / warm:,.0f}** | | |")
    return out


# --- 2. CrossHair ------------------------------------------------------------------------------

LINE = re.compile(r"^(?P<file>.*?):(?P<line>\d+): (?P<level>error|info|warning): (?P<msg>.*)$")


def crosshair_version() -> str | None:
    try:
        from importlib.metadata import version
        return version("crosshair-tool")
    except Exception:
        return None


def crosshair_run(target: str, per_condition_timeout: float, cwd: Path = ROOT) -> dict:
    """`crosshair check` on `target` (a file, or module.Class.method importable from `cwd`)."""
    cmd = [sys.executable, "-m", "crosshair", "check", "--analysis_kind=PEP316",
           "--per_condition_timeout", f"{per_condition_timeout:g}", "--report_all", target]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=child_env())
    lines = []
    assert p.stdout is not None
    for raw in p.stdout:
        lines.append((time.perf_counter() - t0, raw.rstrip("\n")))
    err = p.stderr.read() if p.stderr else ""
    rc = p.wait()
    wall = time.perf_counter() - t0
    sources: dict[str, list[str]] = {}
    msgs = []
    for at, text in lines:
        m = LINE.match(text)
        if not m:
            msgs.append({"at": at, "line": None, "level": "?", "msg": text, "src": "",
                         "file": ""})
            continue
        n, f = int(m["line"]), m["file"]
        if f not in sources:
            sources[f] = Path(f).read_text().splitlines() if Path(f).exists() else []
        src = sources[f][n - 1].strip() if 0 < n <= len(sources[f]) else ""
        msgs.append({"at": at, "line": n, "level": m["level"], "msg": m["msg"], "src": src,
                     "file": Path(f).name})
    first_error = min((m["at"] for m in msgs if m["level"] == "error"), default=None)
    shown = target
    if Path(target).is_absolute() and Path(target).is_relative_to(ROOT):
        shown = str(Path(target).relative_to(ROOT))
    return {"cmd": " ".join(["crosshair", *cmd[3:-1], shown]),
            "rc": rc, "wall": wall, "messages": msgs, "stderr": err.strip(),
            "first_error": first_error}


def crosshair_file(target: str, pct: float, repeat: int, cwd: Path = ROOT) -> dict:
    runs = [crosshair_run(target, pct, cwd)]
    if runs[0]["wall"] < 10:
        runs += [crosshair_run(target, pct, cwd) for _ in range(repeat - 1)]
    r = dict(runs[0])
    r["walls"] = [x["wall"] for x in runs]
    r["wall"] = med(r["walls"])
    fe = [x["first_error"] for x in runs if x["first_error"] is not None]
    r["first_error"] = med(fe) if fe else None
    tally = {"error": 0, "confirmed": 0, "not confirmed": 0, "unmet": 0, "other": 0}
    for m in r["messages"]:
        if m["level"] == "error":
            tally["error"] += 1
        elif m["msg"].startswith("Confirmed over all paths"):
            tally["confirmed"] += 1
        elif m["msg"].startswith("Not confirmed"):
            tally["not confirmed"] += 1
        elif m["msg"].startswith("Unable to meet precondition"):
            tally["unmet"] += 1
        else:
            tally["other"] += 1
    r["tally"] = tally
    return r


def crosshair_startup(repeat: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "no_contracts.py"
        p.write_text("def f(x: int) -> int:\n    return x\n")
        return med([crosshair_run(str(p), 1)["wall"] for _ in range(repeat)])


def crosshair_verdict(t: dict) -> str:
    c = t["tally"]
    parts = []
    if c["error"]:
        parts.append(f"{c['error']} counterexample{'s' if c['error'] > 1 else ''}")
    if c["confirmed"]:
        parts.append(f"{c['confirmed']} confirmed over all paths")
    if c["not confirmed"]:
        parts.append(f"{c['not confirmed']} not confirmed (timeout, nothing found)")
    if c["unmet"]:
        parts.append(f"{c['unmet']} 'unable to meet precondition' (no input found that "
                     "satisfies the pre: within the timeout)")
    if c["other"]:
        parts.append(f"{c['other']} other")
    return ", ".join(parts) or "no messages"


# --- 3. side by side ---------------------------------------------------------------------------

def assay_verdict(r: dict) -> str:
    c = r["counts"]
    parts = [f"{c[k]} {k}" for k in ("proved", "refuted", "vacuous", "unknown") if c[k]]
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="fresh subprocesses per spec")
    ap.add_argument("--timeout", type=float, default=5.0, help="assay verify: s per obligation")
    ap.add_argument("--per-condition-timeout", type=float, default=10.0,
                    help="crosshair: CPU seconds per condition")
    ap.add_argument("--no-crosshair", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="repeat 1, CrossHair per-condition timeout 2 s")
    ap.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    ap.add_argument("--child-verify", metavar="SPEC", help=argparse.SUPPRESS)
    ap.add_argument("--component", help=argparse.SUPPRESS)
    ap.add_argument("--child-handwritten", metavar="WHICH", help=argparse.SUPPRESS)
    ap.add_argument("--child-all", nargs="+", metavar="SPEC", help=argparse.SUPPRESS)
    ap.add_argument("--child-z3-start", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.child_verify:
        print(json.dumps(child_verify(a.child_verify, a.component, a.timeout)))
        return
    if a.child_all:
        print(json.dumps(child_all(a.child_all, a.timeout)))
        return
    if a.child_z3_start:
        print(json.dumps(child_z3_start()))
        return
    if a.child_handwritten:
        print(json.dumps(handwritten_z3(a.child_handwritten)))
        return
    if a.quick:
        a.repeat, a.per_condition_timeout = 1, 2.0

    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started = datetime.datetime.now(datetime.UTC)
    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=ROOT, text=True,
                                capture_output=True).stdout.strip()
    except OSError:
        commit = "?"
    import z3
    print(f"date: {started:%Y-%m-%d %H:%M:%S} UTC")
    print(f"machine: nproc = {nproc}, uname -m = {platform.machine()}, Python "
          f"{platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.system()} {platform.release()}, z3 {z3.get_version_string()}, "
          f"crosshair-tool {crosshair_version() or 'not installed'}; load average at start: "
          f"{load}")
    status = subprocess.run(["git", "status", "--short", "--", "assay/", "specs/"], cwd=ROOT,
                            text=True, capture_output=True).stdout
    changed = ", ".join(line[3:] for line in status.splitlines())
    print(f"tree: commit {commit}; assay/ and specs/ "
          + (f"with uncommitted changes: {changed}" if status else "clean"))
    print(f"command: python tests/benchmarks/bench_verify.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    results: dict[str, Any] = {"date": started.isoformat(), "nproc": nproc, "load": load}

    # 1 (after one discarded run of every spec, to fill the bytecode cache)
    specs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("*.py"))
    for spec in specs:
        run_child(["--child-verify", spec, "--timeout", str(a.timeout)])
    rows = [verify_spec(s, None, a.timeout, a.repeat) for s in specs]
    results["specs"] = rows
    print(f"## 1. assay verify, every shipped spec (timeout {a.timeout:g} s per obligation; "
          f"median of {a.repeat} fresh processes)\n")
    print("\n".join(table_specs(rows)))
    imp = med([r["import_s"] for r in rows])
    print(f"\nimport assay + z3 in each fresh process (not in the times above): median "
          f"{imp * 1e3:.0f} ms.  warm verdicts equal cold verdicts: "
          f"{all(r['warm_counts_same'] for r in rows)}.")
    n = sum(r["n"] for r in rows)
    ob_sum = sum(sum(r["ob_seconds"]) for r in rows)
    cold = sum(r["cold_s"] for r in rows)
    print(f"Sum over all {n} obligations of their own Obligation.seconds (cold): "
          f"{ob_sum * 1e3:.1f} ms = {ob_sum / n * 1e3:.2f} ms each; the rest of the "
          f"{cold * 1e3:.1f} ms of cold verify() is translation, validation, confirmation of "
          "refutations, lazy imports and Z3's start.")
    zs = [run_child(["--child-z3-start"]) for _ in range(a.repeat)]
    ctx = med([z["context_s"] for z in zs])
    first = med([z["first_check_s"] for z in zs])
    print(f"Z3's start in a fresh process (once per process, inside the first verify()): "
          f"context {ctx * 1e3:.1f} ms + first check {first * 1e3:.1f} ms; without it the "
          f"cold rate over all specs would be {n / (cold - len(rows) * (ctx + first)):,.0f} "
          "obligations/s.")
    alls = [run_child(["--child-all", *specs, "--timeout", str(a.timeout)])
            for _ in range(a.repeat)]
    av = med([x["verify_s"] for x in alls])
    print(f"All {len(rows)} specs one after the other in one fresh process (each spec's "
          f"translation cold, imports and Z3 context shared): {alls[0]['n']} obligations in "
          f"{av * 1e3:.1f} ms of verify() = **{alls[0]['n'] / av:,.0f} obligations/s** "
          f"(build {med([x['build_s'] for x in alls]) * 1e3:.1f} ms more).\n")
    results["z3_start"] = {"context_s": ctx, "first_check_s": first}
    results["all_in_one_process"] = alls

    # 3 (assay side) and the hand-written reference
    side = [verify_spec(p.spec, p.component, a.timeout, a.repeat) for p in PAIRS]
    hand = {}
    for which in ("bank", "bank_overdraft", "twopc"):
        reps = [run_child(["--child-handwritten", which]) for _ in range(a.repeat)]
        hand[which] = [(reps[0][i][0], reps[0][i][1], med([r[i][2] for r in reps]))
                       for i in range(len(reps[0]))]
    results["components"] = side
    results["handwritten_z3"] = hand

    # 2
    ch: dict[str, dict] = {}
    per_fn: dict[str, dict] = {}
    if not a.no_crosshair:
        if crosshair_version() is None:
            print("crosshair-tool is not installed (pip install crosshair-tool); "
                  "skipping CrossHair\n")
        else:
            startup = crosshair_startup(a.repeat)
            for p in PAIRS:
                ch[p.target] = crosshair_file(str(TARGETS / p.target),
                                              a.per_condition_timeout, a.repeat)
            per_fn = {t: crosshair_file(t, a.per_condition_timeout, a.repeat, cwd=TARGETS)
                      for p in PAIRS for t in p.buggy}
            results["crosshair"] = ch
            results["crosshair_functions"] = per_fn
            results["crosshair_startup_s"] = startup
            print(f"## 2. CrossHair {crosshair_version()} on the same contracts "
                  f"(--analysis_kind=PEP316, --per_condition_timeout "
                  f"{a.per_condition_timeout:g}, --report_all)\n")
            print("| file | wall s | runs | exit | first counterexample at s | messages |")
            print("|---|---:|---:|---:|---:|---|")
            for p in PAIRS:
                t = ch[p.target]
                fe = f"{t['first_error']:.2f}" if t["first_error"] is not None else "—"
                print(f"| crosshair_targets/{p.target} | {t['wall']:.2f} | {len(t['walls'])} "
                      f"| {t['rc']} | {fe} | {crosshair_verdict(t)} |")
            print(f"\n`crosshair check` start-up (a file with no contracts): "
                  f"{startup:.2f} s wall.  CrossHair prints its messages when the whole target "
                  "is done, so 'first counterexample at' is the end of the run, not the time "
                  "to the bug; the per-function runs below narrow that down.\n")
            print("Only the functions holding the bug (targets module.qualname, run from "
                  "crosshair_targets/):\n")
            print("| target | wall s | runs | exit | messages |")
            print("|---|---:|---:|---:|---|")
            for name, t in per_fn.items():
                print(f"| {name} | {t['wall']:.2f} | {len(t['walls'])} | {t['rc']} | "
                      f"{crosshair_verdict(t)} |")
            print("\nEvery message (seconds since the command started; [the source line]):\n")
            for t in [*ch.values(), *per_fn.values()]:
                print(f"{t['cmd']}  (exit {t['rc']}, {t['wall']:.2f} s)")
                for m in t["messages"]:
                    where = f"{m['file']}:{m['line']}" if m["line"] else ""
                    print(f"    {m['at']:7.2f} s  {where}: {m['level']}: {m['msg']}"
                          + (f"    [{m['src']}]" if m["src"] else ""))
                if t["stderr"]:
                    print("    stderr: " + t["stderr"].replace("\n", "\n            "))
            print()

    # 3
    print("## 3. Side by side: the same component's contracts\n")
    print("| contracts | assay verify --component: cold ms (translation included) / warm ms | "
          "assay obligations: verdicts | assay found the bug | hand-written Z3 ms (same "
          "obligations) | CrossHair, whole file: wall s | CrossHair, whole file: result | "
          "CrossHair, the buggy functions alone: wall s each | CrossHair found the bug |")
    print("|---|---:|---|---|---:|---:|---|---:|---|")
    keys = {"bank_transfer.py": "bank", "bank_transfer_bug_overdraft.py": "bank_overdraft",
            "two_phase_commit.py": "twopc"}
    for p, r in zip(PAIRS, side):
        if r["counts"]["refuted"]:
            found = "yes (refuted, confirmed by running the handler)"
        elif p.has_bug:
            found = "no" + (" (unknown: the guard is not translated)" if r["counts"]["unknown"]
                            else "")
        else:
            found = "— (no bug)"
        h = hand.get(keys.get(p.target, ""))
        hcell = "—"
        if h:
            hsat = sum(1 for x in h if x[1] == "sat")
            hcell = f"{sum(x[2] for x in h) * 1e3:.1f} ({len(h)} obl., {hsat} sat)"
        if p.target in ch:
            t = ch[p.target]
            cwall, cres = f"{t['wall']:.2f}", crosshair_verdict(t)
            fns = [per_fn[n] for n in p.buggy]
            fwall = " / ".join(f"{f['wall']:.2f}" for f in fns) or "—"
            if p.has_bug:
                cfound = ", ".join(
                    [f"whole file: {'yes' if t['tally']['error'] else 'no'}"]
                    + [f"{n.split('.', 1)[1]} alone: {'yes' if f['tally']['error'] else 'no'}"
                       for n, f in zip(p.buggy, fns)])
            else:
                cfound = "— (no bug)" if not t["tally"]["error"] else "false alarm"
        else:
            cwall = cres = fwall = cfound = "not run"
        print(f"| {p.label} | {r['cold_s'] * 1e3:.1f} / {r['warm_s'] * 1e3:.1f} | {r['n']}: "
              f"{assay_verdict(r)} | {found} | {hcell} | {cwall} | {cres} | {fwall} | "
              f"{cfound} |")
    print()
    for p, r in zip(PAIRS, side):
        for o in r["obligations"]:
            if o["verdict"] in ("refuted", "unknown"):
                cex = o.get("counterexample")
                extra = (f"; counterexample fields {cex['fields']}, arg {cex['arg']}, after "
                         f"{cex.get('after')}" if cex else "")
                print(f"assay {Path(p.spec).stem} {o['component']}.{o['target']}: {o['title']}"
                      f": {o['verdict']}: {o['reason']}{extra}")
        if p.note:
            print(f"note ({p.label}): {p.note}")
    print("\nhand-written Z3, per obligation (ms, median of "
          f"{a.repeat} fresh processes; none for the majority twin, whose guard needs len() "
          "of a set, which this encoding does not have):")
    for which, obs in hand.items():
        print(f"    {which}: " + ", ".join(f"{n} {v} {s * 1e3:.2f}" for n, v, s in obs))
    hn = sum(len(v) for v in hand.values())
    hs = sum(x[2] for v in hand.values() for x in v)
    print(f"    {hn} obligations in {hs * 1e3:.1f} ms = {hs / hn * 1e3:.2f} ms each "
          f"({hn / hs:,.0f} per second)")
    ended = datetime.datetime.now(datetime.UTC)
    print(f"\nfinished {ended:%Y-%m-%d %H:%M:%S} UTC ({(ended - started).total_seconds():.0f} s);"
          f" load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
