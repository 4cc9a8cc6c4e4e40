"""`assay replay`: re-run a trace file through the kernel."""
from __future__ import annotations

import json
import os
import sys

import click
from rich.console import Console

from assay.cli.common import (
    EXIT_INCOMPLETE,
    Seconds,
    _check_writable,
    _fail,
    write_output,
)
from assay.errors import AssayError, TraceError, UsageError
from assay.kernel.watchdog import SpecTimeLimit, SpecWatch


@click.command()
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--engine", type=click.Choice(["checker", "simulator"]), default="checker",
              show_default=True, help="Replay through the checker's kernel, or the simulator "
                                      "(with its virtual clock).")
@click.option("--mermaid", "mermaid_out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the run as a Mermaid sequence diagram (fenced as ```mermaid "
                   "when FILE ends in .md).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the trace explorer: one self-contained HTML page with the "
                   "sequence diagram and the global state at each step.")
@click.option("--against-store", "store_db", type=click.Path(), metavar="FILE|DIR",
              help="Also check that the run's external stores at its end hold what the "
                   "store database FILE (of assay run --store-db) holds; a DIR of "
                   "`assay run --deploy --store-db DIR`: its nodes' databases together.")
@click.option("--spec", "spec", type=click.Path(dir_okay=False), metavar="FILE",
              help="The spec file to replay the trace against (the trace names one: replay "
                   "runs that one only if it is inside the current directory, since a spec "
                   "is Python code that replaying runs).")
@click.option("--max-time", type=Seconds(min=0, min_open=True), metavar="SECONDS",
              help="Stop a replay still running after this long (spec code that never "
                   "returns): exit 3.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def replay(trace_file: str, engine: str, mermaid_out: str | None, html_out: str | None,
           store_db: str | None, spec: str | None, max_time: float | None,
           as_json: bool) -> None:
    """Re-execute a trace file step by step and confirm where it ends.

    Exit codes: 1 it ends in a violation (the recorded one at the recorded step, or another:
    said so), or the store database disagrees with the run's stores (--against-store), 0
    neither, 2 the trace does not fit the spec (an event not enabled where it occurs, a step
    that changes other fields than the trace recorded, a fault beyond the trace's fault
    budget or rates) or is not whole (cut before its failing step, or going on past it), 3
    stopped by --max-time (spec code that never returns), 130 interrupted (Ctrl-C).
    """
    from assay.kernel.trace import Trace, recorded_event, replay_trace, trace_spec

    try:
        trace = Trace.read(trace_file)
        if spec is None:          # the trace's, unless it is elsewhere: untrusted input
            spec = trace_spec(trace, trace_file, confine=os.getcwd())
        elif not os.path.isfile(spec):
            raise UsageError(f"--spec {spec}: no such file")
        inputs = [("the trace", trace_file), ("the spec", spec),
                  ("the --against-store database", store_db)]
        for option, out in (("--mermaid", mermaid_out), ("--html", html_out)):
            if out:
                _check_writable(out, inputs)
                inputs.append((f"the {option} file", out))
        from assay.simulator.run import replay_clock

        watch = SpecWatch(max_time, "the replay", "A time limit (--max-time) stops it")
        try:
            with watch:
                result = replay_trace(trace, trace_file,
                                      replay_clock if engine == "simulator" else None, spec)
        except TraceError as e:
            if any("outside its state" in n for n in e.notes):   # a step that does not
                # replay, for want of a cause in the trace: is it the hash seed?
                e.notes = (*e.notes, *_hash_seed_notes(e, trace_file, spec, engine))
            raise
        except SpecTimeLimit:
            why = watch.fired or f"the time limit ({max_time:g} s) passed"
            if as_json:
                click.echo(json.dumps({"command": "replay", "trace": trace_file,
                                       "engine": engine, "stopped": "max-time",
                                       "reason": why}, indent=2))
            else:
                click.echo(f"{trace_file}: stopped: max-time: {why}", err=True)
            sys.exit(EXIT_INCOMPLETE)
        if mermaid_out:
            from assay.explorer import flights
            from assay.report import to_mermaid

            assert result.kernel is not None and result.start is not None
            fl = flights(result.kernel, result.start, result.steps)
            write_output(mermaid_out, to_mermaid(
                result.steps, result.instances, result.violation, result.cycle_start,
                [(m.envelope, m.sent) for m in fl.in_flight_at_end()],
                fence=mermaid_out.lower().endswith(".md")))
        if html_out:
            from assay.explorer import page_data, to_html

            write_output(html_out, to_html(page_data(result, trace)))
        store_diff: list[str] | None = None
        if store_db:
            from assay.runtime.extstore import check_against_store

            assert result.kernel is not None and result.start is not None
            store_diff = check_against_store(result.kernel, result.start, result.steps,
                                             store_db)
    except AssayError as e:
        _fail(e)
        return
    recorded = (trace.verdict or {}).get("kind")
    v = result.violation
    at = (trace.verdict or {}).get("step")
    # reproduced: the recorded violation, at the recorded step (a run that breaks another
    # property first, or the same one earlier, stops there: not what the trace recorded)
    same = v is not None and recorded == v.kind and \
        (trace.verdict or {}).get("name") == v.name and \
        (type(at) is not int or at == len(result.steps))
    # the trace's events past the violation the replay stopped at (`check --keep-going`
    # traces may go on past another violation), never replayed
    unreplayed = len(trace.events) - len(result.steps) if v is not None else 0
    if as_json:
        doc = {"command": "replay", "trace": trace_file, "engine": engine,
               "steps": len(result.steps), "time": result.time,
               "violation": v.to_json() if v else None,
               "recorded": trace.verdict, "reproduced": same,
               "not_replayed": unreplayed,
               "lasso": None if result.cycle_start is None else {
                   "cycle_start": result.cycle_start, "confirmed": v is not None,
                   "note": result.note},
               "events": [recorded_event(s) for s in result.steps]}
        if store_diff is not None:
            doc["store"] = {"database": store_db, "agrees": not store_diff,
                            "differences": store_diff}
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        from assay.report import render_steps

        con = Console(highlight=False)
        con.print(f"assay replay {trace_file} ({trace.engine} trace of {spec} :: "
                  f"{trace.system}, {len(trace.events)} events) on the {engine}",
                  markup=False)
        render_steps(con, result.steps, result.initial, result.cycle_start)
        if v is None and result.note:
            con.print(f"✓ the trace's lasso shows no violation: {result.note}",
                      style="bold green", markup=False)
        elif v is None:
            con.print("✓ the run ends without a violation"
                      + (f" (the trace recorded {recorded})" if recorded else ""),
                      style="bold green")
        else:
            con.print(f"✗ {v.kind}: {v.message}", style="bold red", markup=False)
            if unreplayed:
                k = len(result.steps)
                con.print(f"  note: the replay stops at this violation, at step {k}: the "
                          "trace's " + (f"step {k + 1} is" if unreplayed == 1 else
                                        f"steps {k + 1} to {len(trace.events)} are")
                          + " not replayed", markup=False)
            name = (trace.verdict or {}).get("name")
            if recorded and not same and (recorded, name) == (v.kind, v.name):
                con.print(f"  note: the trace recorded this violation at step {at}, the "
                          f"replay meets it at step {len(result.steps)}: not the recorded "
                          "run", markup=False)
            elif recorded and not same:
                con.print(f"  note: the trace recorded {recorded} {name or ''}; this is a "
                          "different violation", markup=False)
            elif recorded and result.cycle_start is not None:
                fair = (trace.verdict or {}).get("fairness")
                how = ("the cycle closes, is fair"
                       + (f" (under {'no' if fair == 'none' else fair} fairness, as the "
                          "trace records)" if fair else "")
                       + ", and the property fails on it"
                       if result.cycle_start < len(result.steps) else
                       "the run stops where nothing but faults is enabled, and the property "
                       "fails")
                con.print(f"  the recorded violation is reproduced: {how}", markup=False)
                from assay.simulator.lasso import cycle_faults

                faults = cycle_faults(trace.events, result.cycle_start)
                if faults:
                    con.print(f"  note: {faults}", markup=False)
            elif recorded:
                con.print("  the recorded violation is reproduced", markup=False)
        if store_diff == []:
            con.print(f"✓ the store database {store_db} holds the run's external stores",
                      style="bold green", markup=False)
        elif store_diff:
            con.print(f"✗ the store database {store_db} disagrees with the run's external "
                      f"stores ({len(store_diff)}):", style="bold red", markup=False)
            for line in store_diff:
                con.print(f"  {line}", markup=False)
        if mermaid_out:
            con.print(f"sequence diagram written to {mermaid_out}", markup=False)
        if html_out:
            con.print(f"trace explorer written to {html_out}", markup=False)
    sys.exit(1 if v is not None or store_diff else 0)


PROBE = "ASSAY_HASH_PROBE"          # set in the replays `_hash_seed_notes` starts


def replay_elsewhere(trace_file: str, spec: str, engine: str, extra: tuple[str, ...] = (),
                     timeout: float = 60.0) -> list[tuple[str, int, str, str]] | None:
    """Replay `trace_file` against `spec` in two processes with other str hashes than this
    one's (PYTHONHASHSEED 0 and 1, or 2 for the one this process has), at once: for each,
    its seed, exit code, standard output and standard error; None when they could not be
    run (or this is such a process: no probes of probes).  The one home of the question
    "does this run depend on Python's hash of a str?", which `replay` asks of a step that
    does not replay and `simulate` of a failing run (`hash_seed_note`)."""
    import subprocess

    if os.environ.get(PROBE):
        return None
    ours = os.environ.get("PYTHONHASHSEED")
    seeds = [s for s in ("0", "1", "2") if s != ours][:2]
    args = [sys.executable, "-m", "assay.cli", "replay", trace_file, "--spec", spec,
            "--engine", engine, *extra]
    procs = []
    try:
        for seed in seeds:
            env = {**os.environ, "PYTHONHASHSEED": seed, PROBE: "1"}
            procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True,
                                          stdin=subprocess.DEVNULL))
        outs = [p.communicate(timeout=timeout) for p in procs]
    except (OSError, subprocess.SubprocessError):
        return None                         # (could not tell: say nothing)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [(seed, p.returncode, out, err) for seed, p, (out, err) in zip(seeds, procs, outs)]


_DEPENDS = ("the spec depends on Python's hash of a str (hash(), or the order of a set or "
            "dict of str, Enum members or peers), which changes from process to process")
_FIX = "make it a function of the state and the event (sorted(...), not a set's order; no hash())"


def _hash_seed_notes(error: TraceError, trace_file: str, spec: str, engine: str,
                     timeout: float = 60.0) -> list[str]:
    """When a step of a trace does not replay (`error`): whether that depends on Python's
    hash of a str (`replay_elsewhere`); when one replay there does not fail as here, the
    spec depends on it (a trace written by a process with other hashes does not replay
    here), and the notes say so.  No notes when both fail alike (the cause is elsewhere; a
    spec whose outcome turns on few hash bits may agree by chance), or in those replays
    themselves."""
    got = replay_elsewhere(trace_file, spec, engine, timeout=timeout)
    if got is None:
        return []
    alike = [code == 2 and any(line.endswith(f"error: {error.message}")
                               for line in err.splitlines())
             for _, code, _, err in got]
    if all(alike):
        return []
    replays = [seed for seed, code, _, _ in got if code in (0, 1)]
    return [f"replayed in processes with other str hashes (PYTHONHASHSEED={got[0][0]} and "
            f"{got[1][0]}) the trace does not fail as here: {_DEPENDS}; a trace written in "
            "one process does not replay in another",
            _FIX + (f"; `PYTHONHASHSEED={replays[0]} assay replay` replays this trace's steps"
                    if replays else "")]


def _fails_here(trace_file: str, spec: str) -> bool:
    """Whether the trace replays in this process (the simulator's clock) to the violation
    it records."""
    from assay.kernel.trace import Trace, replay_trace
    from assay.simulator.run import replay_clock

    try:
        trace = Trace.read(trace_file)
        v = replay_trace(trace, trace_file, replay_clock, spec).violation
    except AssayError:
        return False
    recorded = trace.verdict or {}
    return v is not None and (v.kind, v.name) == (recorded.get("kind"), recorded.get("name"))


def hash_seed_note(trace_file: str, spec: str, what: str) -> str | None:
    """A warning when the failing run in `trace_file` (`what`: "run 3 (seed ...)") does not
    fail as here when replayed in processes with other str hashes (`replay_elsewhere`):
    another `assay simulate` of the same seed, in a process with other hashes, may not find
    it.  None when both replays reproduce it, or when that could not be told — also when the
    trace does not replay even here, in this process (then the cause is not, or not only,
    the hashes: time, randomness, the spec edited meanwhile)."""
    if os.environ.get(PROBE) or not _fails_here(trace_file, spec):
        return None
    got = replay_elsewhere(trace_file, spec, "simulator", ("--json",))
    if got is None:
        return None

    def reproduced(code: int, out: str) -> bool:
        try:
            return code == 1 and json.loads(out).get("reproduced") is True
        except ValueError:
            return False

    if all(reproduced(code, out) for _, code, out, _ in got):
        return None
    return (f"the failure of {what} depends on the process: replayed in processes with "
            f"other str hashes (PYTHONHASHSEED={got[0][0]} and {got[1][0]}) it does not fail "
            f"as here; {_DEPENDS}, so another `assay simulate` of the same seed may give "
            f"another verdict; {_FIX}")
