"""The `assay` command: parses, calls an engine, prints.  Nothing here is semantics."""
from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from assay.errors import AssayError, UsageError

EXIT_OK, EXIT_VIOLATION, EXIT_ERROR, EXIT_INCOMPLETE = 0, 1, 2, 3


def _params(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise UsageError(f"--param {v!r} is not of the form name=value")
        k, _, val = v.partition("=")
        out[k.strip()] = val.strip()
    return out


def _fail(err: AssayError) -> None:
    click.echo(err.render(), err=True)          # never wrapped: `file:line: error:` stays whole
    sys.exit(err.exit_code)


EXIT_INTERNAL = 70


class _Group(click.Group):
    """Click usage errors exit 2 already; a bug in assay keeps its traceback, exit 70."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException,
                SystemExit, KeyboardInterrupt):
            raise
        except AssayError as e:
            _fail(e)
        except Exception:
            import traceback

            traceback.print_exc()
            click.echo("internal error: this is a bug in assay, not in your spec; please report "
                       "it with the traceback above", err=True)
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="assay")
def main() -> None:
    """assay: write a distributed system once; check, verify, simulate and run it."""


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--system", "system_name", metavar="NAME", help="Which system function to build.")
@click.option("--param", "-p", "params", multiple=True, metavar="K=V",
              help="A parameter of the system function (repeatable).")
@click.option("--bfs", "strategy", flag_value="bfs", default=True,
              help="Breadth-first: shortest counterexamples (default).")
@click.option("--dfs", "strategy", flag_value="dfs", help="Depth-first: less memory.")
@click.option("--max-states", type=click.IntRange(min=1), metavar="N",
              help="Stop after N distinct states (exit 3 if not done).")
@click.option("--max-depth", type=click.IntRange(min=0), metavar="N",
              help="Do not explore beyond depth N (exit 3 if states were left).")
@click.option("--faults", "faults_text", metavar="KIND=N,...",
              help="Fault budget: e.g. crash=1,drop=2,dup=1,partition=1.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--trace-out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the counterexample as a JSON trace file.")
def check(spec: str, system_name: str | None, params: tuple[str, ...], strategy: str,
          max_states: int | None, max_depth: int | None, faults_text: str | None,
          as_json: bool, trace_out: str | None) -> None:
    """Explore every reachable state of a system and check its properties.

    Exit codes: 0 all hold, 1 violation, 2 spec or usage error, 3 bound hit.
    """
    from assay.checker import check as run_check
    from assay.model.load import build

    try:
        if trace_out:
            _check_writable(trace_out)
        from assay.kernel import Faults, Kernel

        faults = Faults.parse(faults_text) if faults_text else None
        system, name, typed = build(spec, system_name, _params(params))
        kernel = Kernel(system, faults)
        progress = _Progress() if sys.stderr.isatty() and not as_json else None
        try:
            result = run_check(kernel, strategy=strategy, max_states=max_states,
                               max_depth=max_depth, spec=spec, system_name=name, params=typed,
                               on_progress=progress.update if progress else None)
        finally:
            if progress:
                progress.close()
    except AssayError as e:
        _fail(e)
        return
    if trace_out and result.trace is not None:
        try:
            result.trace.write(trace_out)
        except OSError as e:
            _fail(UsageError(f"cannot write the trace to {trace_out}: {e.strerror}"))
    if as_json:
        doc = {"command": "check", "spec": spec, "system": name, "params": typed,
               "faults": faults.to_json() if faults else None, **result.to_json()}
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        from assay.report import render_check

        render_check(Console(highlight=False), result, spec, name, typed, faults)
        if trace_out:
            msg = (f"trace written to {trace_out}" if result.trace is not None
                   else f"no counterexample, so no trace written to {trace_out}")
            click.echo(msg)
    sys.exit(result.exit_code)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--system", "system_name", metavar="NAME", help="Which system function to build.")
@click.option("--param", "-p", "params", multiple=True, metavar="K=V",
              help="A parameter of the system function (repeatable).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the campaign; run i uses a seed derived from it.")
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Events per run at most.")
@click.option("--faults", "faults_text", metavar="KIND=RATE,...",
              help="Per-step fault probabilities: drop, dup, crash, restart, partition, heal.")
@click.option("--scheduler", type=click.Choice(["random", "pct"]), default="random",
              show_default=True)
@click.option("--pct-depth", type=click.IntRange(min=1), default=3, show_default=True,
              help="PCT's bug depth d (d-1 priority change points).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: the machine's cores). Results do not depend "
                   "on it.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="assay-traces",
              show_default=True, help="Where failing runs are written as trace files.")
@click.option("--no-shrink", is_flag=True, help="Write failing runs as they happened.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def simulate(spec: str, system_name: str | None, params: tuple[str, ...], seed: int, runs: int,
             steps: int, faults_text: str | None, scheduler: str, pct_depth: int,
             jobs: int | None, out_dir: str, no_shrink: bool, as_json: bool) -> None:
    """Run seeded random (or PCT) schedules with fault injection; shrink and save failures.

    The same spec, parameters, seed and options give the same runs, on any machine.
    Exit codes: 0 no violation found, 1 violation, 2 spec or usage error.
    """
    import os

    from assay.model.load import build
    from assay.simulator import FaultRates, Options, campaign, trace_of

    try:
        rates = FaultRates.parse(faults_text) if faults_text else FaultRates()
        raw = _params(params)
        _, name, typed = build(spec, system_name, raw)
        opts = Options(steps=steps, rates=rates, scheduler=scheduler, pct_depth=pct_depth,
                       shrink=not no_shrink)
        progress = _RunProgress(runs) if sys.stderr.isatty() and not as_json else None
        try:
            result = campaign(spec, name, raw, seed=seed, runs=runs, opts=opts, jobs=jobs,
                              on_progress=progress.update if progress else None)
        finally:
            if progress:
                progress.close()
        if result.failures:
            try:
                os.makedirs(out_dir, exist_ok=True)
                for r in result.failures:
                    stem = os.path.splitext(os.path.basename(spec))[0]
                    path = os.path.join(out_dir, f"{stem}-run{r.index}-seed{r.seed}.json")
                    trace_of(r, spec, name, typed, opts).write(path)
                    result.trace_files[r.index] = path
            except OSError as e:
                raise UsageError(f"cannot write traces to {out_dir}: {e.strerror}") from None
    except AssayError as e:
        _fail(e)
        return
    if as_json:
        doc = {"command": "simulate", "spec": spec, "system": name, "params": typed,
               "seed": seed, "steps": steps, "scheduler": scheduler,
               "faults": rates.to_json(), **result.to_json()}
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        from assay.report import render_simulation

        render_simulation(Console(highlight=False), result, spec, name, typed, rates,
                          scheduler)
    sys.exit(result.exit_code)


@main.command()
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--engine", type=click.Choice(["checker", "simulator"]), default="checker",
              show_default=True, help="Replay through the checker's kernel, or the simulator "
                                      "(with its virtual clock).")
@click.option("--mermaid", "mermaid_out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the run as a Mermaid sequence diagram.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def replay(trace_file: str, engine: str, mermaid_out: str | None, as_json: bool) -> None:
    """Re-execute a trace file step by step and confirm where it ends.

    Exit codes: 1 it ends in a violation (the recorded one, or another: said so), 0 it ends
    without one, 2 the trace does not fit the spec.
    """
    from assay.kernel.trace import Trace, replay_trace

    try:
        if mermaid_out:
            _check_writable(mermaid_out)
        trace = Trace.read(trace_file)
        result = replay_trace(trace, trace_file, engine)
    except AssayError as e:
        _fail(e)
        return
    if mermaid_out:
        from assay.report import to_mermaid

        with open(mermaid_out, "w") as f:
            f.write(to_mermaid(result.steps, result.instances, result.violation))
    recorded = (trace.verdict or {}).get("kind")
    v = result.violation
    same = v is not None and recorded == v.kind and \
        (trace.verdict or {}).get("name") == v.name
    if as_json:
        doc = {"command": "replay", "trace": trace_file, "engine": engine,
               "steps": len(result.steps), "time": result.time,
               "violation": v.to_json() if v else None,
               "recorded": trace.verdict, "reproduced": same,
               "events": [s.event_json for s in result.steps]}
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        from assay.report import render_steps

        con = Console(highlight=False)
        con.print(f"assay replay {trace_file} ({trace.engine} trace of {trace.spec} :: "
                  f"{trace.system}, {len(trace.events)} events) on the {engine}",
                  markup=False)
        render_steps(con, result.steps, result.initial)
        if v is None:
            con.print("✓ the run ends without a violation"
                      + (f" (the trace recorded {recorded})" if recorded else ""),
                      style="bold green")
        else:
            con.print(f"✗ {v.kind}: {v.message}", style="bold red", markup=False)
            if recorded and not same:
                con.print(f"  note: the trace recorded {recorded} "
                          f"{(trace.verdict or {}).get('name') or ''}; this is a different "
                          "violation", markup=False)
            elif recorded:
                con.print("  the recorded violation is reproduced", markup=False)
        if mermaid_out:
            con.print(f"sequence diagram written to {mermaid_out}", markup=False)
    sys.exit(1 if v is not None else 0)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False), required=False)
@click.option("--system", "system_name", metavar="NAME", help="Which system function to build.")
@click.option("--param", "-p", "params", multiple=True, metavar="K=V",
              help="A parameter of the system function (repeatable).")
@click.option("--deploy", "deploy_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Run the nodes of this deployment as local processes over TCP, and "
                   "supervise them (instead of one process).")
@click.option("--state-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Keep persistent fields in SQLite there (one file per node) and resume "
                   "from them when started again.")
@click.option("--fresh", is_flag=True,
              help="Start over in --state-dir: move the earlier state there aside (to "
                   "<file>.old-<time>) instead of resuming it.  Needed where the earlier "
                   "state is damaged or gone; a new or empty directory starts fresh anyway.")
@click.option("--durability", type=click.Choice(["machine", "process"]), default="machine",
              show_default=True, help="What a committed step survives, with --state-dir: a "
                                      "crash of the machine (fsync every commit), or of the "
                                      "process only (faster).")
@click.option("--for", "duration", type=click.FloatRange(min=0), default=None,
              metavar="SECONDS", help="Stop after this long (default: when nothing is left "
                                      "to do).")
@click.option("--monitor", type=click.Choice(["enforce", "log", "off"]), default="enforce",
              show_default=True, help="What a violation does to its step: rejected, "
                                      "reported, or ignored.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the scheduler that picks the next ready instance.")
@click.option("--time-unit", type=click.FloatRange(min=0), default=0.01, show_default=True,
              metavar="SECONDS", help="Real time of one unit of timer delay.")
@click.option("--trace-out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Record the run as a trace (assay replay checks it against the model).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def run(spec: str | None, system_name: str | None, params: tuple[str, ...],
        deploy_file: str | None, state_dir: str | None, fresh: bool, durability: str,
        duration: float | None, monitor: str, seed: int, time_unit: float,
        trace_out: str | None, as_json: bool) -> None:
    """Run the system on asyncio — in this process over in-process links, or (--deploy) as
    one process per node over authenticated TCP — with its contracts and protocols monitored
    on every step: the same handlers as check, verify and simulate.

    Exit codes: 0 no violation, 1 violations were reported, 2 spec or usage error (a state
    directory that is damaged, or not this system's, included).
    """
    from assay.kernel import Kernel
    from assay.model.load import build
    from assay.runtime.local import run_local

    if deploy_file:
        _run_deployment(deploy_file, duration, state_dir, monitor, time_unit, trace_out,
                        as_json, durability, fresh)
        return
    try:
        if spec is None:
            raise UsageError("give a SPEC to run in this process, or --deploy FILE")
        if trace_out:
            _check_writable(trace_out)
        system, name, typed = build(spec, system_name, _params(params))
        kernel = Kernel(system)
        _check_fresh(fresh, state_dir)
        report, rt = run_local(kernel, duration, monitor, seed, time_unit,
                               record=bool(trace_out), state_dir=state_dir,
                               durability=durability, fresh=fresh)
        if trace_out:
            try:
                rt.trace(report, spec, name, typed).write(trace_out)
            except OSError as e:
                raise UsageError(f"cannot write the trace to {trace_out}: {e.strerror}") \
                    from None
    except AssayError as e:
        _fail(e)
        return
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_OK)
    if as_json:
        click.echo(json.dumps({"command": "run", "spec": spec, "system": name, "params": typed,
                               "monitor": monitor, "seed": seed, **report.to_json()},
                              indent=2, default=str))
    else:
        from assay.report import render_run

        render_run(Console(highlight=False), report, spec, name, typed, monitor, trace_out)
    sys.exit(report.exit_code)


def _run_deployment(deploy_file: str, duration: float | None, state_dir: str | None,
                    monitor: str, time_unit: float, trace_out: str | None,
                    as_json: bool, durability: str = "machine", fresh: bool = False) -> None:
    import asyncio

    from assay.kernel.trace import Trace, initial_json
    from assay.model.load import build
    from assay.runtime.deploy import check_placement, load_deployment
    from assay.runtime.supervise import supervise

    try:
        if trace_out:
            _check_writable(trace_out)
        dep = load_deployment(deploy_file)
        system, name, typed = build(dep.spec, dep.system, dep.params)
        check_placement(dep, list(system.instances))
        clients = frozenset(n for n, s in dep.nodes.items()
                            if s.instances and all(i in system.externals for i in s.instances))
        if clients and not as_json:
            click.echo(f"client node(s) {', '.join(sorted(clients))} host only external "
                       "instances: not started (a program attaches with "
                       "assay.runtime.connect)", err=True)
        _check_fresh(fresh, state_dir)
        if fresh:
            click.echo(f"--fresh: each node moves its earlier state in {state_dir} aside (to "
                       "<file>.old-<time>; its log says which)", err=True)
        report = asyncio.run(supervise(deploy_file, dep, duration, state_dir, monitor,
                                       time_unit, skip=clients, durability=durability,
                                       fresh=fresh))
        if trace_out:
            from assay.kernel import Kernel

            k = Kernel(system)
            Trace(dep.spec, name, typed, report.events, engine="run",
                  initial=initial_json(k, k.initial_states()[0][0])).write(trace_out)
    except AssayError as e:
        _fail(e)
        return
    doc = {"command": "run", "deploy": deploy_file, "ended": report.ended,
           "seconds": round(report.seconds, 3), "restarts": report.restarts,
           "steps": len(report.events), "violation_count": report.violation_count,
           "failed": None if report.failed is None else {
               "node": report.failed[0], "exit": report.failed[1], "log": report.failed[2]},
           "violations": report.violations,
           "final": report.final}
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        click.echo(f"assay run --deploy {deploy_file}: {len(dep.nodes)} nodes, ended: "
                   f"{report.ended} after {report.seconds:.2f} s, {len(report.events)} steps")
        if report.failed is not None:
            node, code, words = report.failed
            click.echo(f"  node {node} could not be (re)started (exit {code}):", err=True)
            for line in words.splitlines():
                click.echo(f"    {line}", err=True)
        for inst, fields in report.final.items():
            if dep.placement[inst] in clients:
                continue
            inner = ", ".join(f"{k}={v}" for k, v in fields.items())
            click.echo(f"  {inst} (on {dep.placement[inst]}): {inner}")
        for v in report.violations[:10]:
            click.echo(f"  ✗ {v.get('kind')}: {v.get('message')} (blame {v.get('blame')})")
        if report.violation_count > 10:
            click.echo(f"  ... and {report.violation_count - 10:,} more violation(s)")
        click.echo(f"  node logs: {report.logs}")
        if any(report.restarts.values()):
            click.echo("  restarts: " + ", ".join(f"{n}={c}" for n, c in
                                                  report.restarts.items() if c))
    sys.exit(report.exit_code)


@main.command()
@click.argument("deploy_file", metavar="DEPLOYFILE", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Which node of the deployment this is.")
@click.option("--monitor", type=click.Choice(["enforce", "log", "off"]), default="enforce",
              show_default=True)
@click.option("--state-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Keep persistent fields in DIR/<node>.sqlite.")
@click.option("--fresh", is_flag=True,
              help="Start over in --state-dir: move this node's earlier state aside (to "
                   "<file>.old-<time>) instead of resuming it.")
@click.option("--durability", type=click.Choice(["machine", "process"]), default="machine",
              show_default=True, help="What a committed step survives, with --state-dir: a "
                                      "crash of the machine (fsync every commit), or of the "
                                      "process only (faster).")
@click.option("--time-unit", type=click.FloatRange(min=0), default=0.01, show_default=True,
              metavar="SECONDS")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--trace-out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Append this node's steps to FILE as they happen (JSON lines, with "
                   "Lamport clocks); `assay run --deploy` merges them into one trace.")
@click.option("--supervised", is_flag=True, hidden=True,
              help="Ignore Ctrl-C: the supervisor stops the node (after reading its state).")
def node(deploy_file: str, name: str, monitor: str, state_dir: str | None, fresh: bool,
         durability: str, time_unit: float, seed: int, trace_out: str | None,
         supervised: bool) -> None:
    """Start one node of a deployment: its instances, its TCP server and links to its peers.
    Runs until stopped (SIGTERM, Ctrl-C, or a stop request)."""
    import asyncio
    import logging
    import signal

    from assay.runtime.deploy import load_deployment
    from assay.runtime.tcp import TcpNode

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def main_() -> None:
        _check_fresh(fresh, state_dir)
        dep = load_deployment(deploy_file)
        n = TcpNode(dep, name, monitor, state_dir, time_unit, seed, trace_out,
                    durability=durability, fresh=fresh)
        if supervised:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        await n.serve(signals=(signal.SIGTERM,) if supervised else
                      (signal.SIGTERM, signal.SIGINT))
        if n.failed is not None:
            raise n.failed                # a bug in assay: shown with its traceback

    try:
        asyncio.run(main_())
    except AssayError as e:
        _fail(e)


def _check_fresh(fresh: bool, state_dir: str | None) -> None:
    if fresh and state_dir is None:
        raise UsageError("--fresh starts over in a state directory: give --state-dir DIR too")


def _check_writable(path: str) -> None:
    """Fail before a long search, not after it, when an output file cannot be written."""
    import os

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied")


class _RunProgress:
    """A progress bar of runs on standard error."""

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.progress = Progress("[bold]simulating[/]", BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True),
                                 transient=True)
        self.task = self.progress.add_task("runs", total=total)
        self.progress.start()

    def update(self, done: int, total: int) -> None:
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        self.progress.stop()


class _Progress:
    """Live progress on standard error: states, frontier, depth and rate."""

    def __init__(self) -> None:
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, transient=True, refresh_per_second=4)
        self.live.start()

    def update(self, p: Any) -> None:
        rate = p.states / p.seconds if p.seconds else 0
        self.live.update(f"[bold]checking[/] {p.states:,} states, frontier {p.frontier:,}, "
                         f"depth {p.depth}, {rate:,.0f} states/s, {p.seconds:.0f} s")

    def close(self) -> None:
        self.live.stop()


def _register_verify() -> None:
    from assay.cli_verify import register

    register(main)


_register_verify()

if __name__ == "__main__":
    main()
