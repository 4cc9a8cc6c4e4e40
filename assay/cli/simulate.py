"""`assay simulate`: seeded random runs with faults, shrunk and written as traces."""
from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
from rich.console import Console

from assay.cli.common import (
    Seconds,
    _check_writable,
    _fail,
    _params,
    print_warnings,
    progress_interval,
    write_output,
)
from assay.errors import AssayError, UsageError


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--system", "system_name", metavar="NAME", help="Which system function to build.")
@click.option("--param", "-p", "params", multiple=True, metavar="K=V",
              help="A parameter of the system function (repeatable).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the campaign; run i uses a seed derived from it.")
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Events per run at most.")
@click.option("--max-time", type=Seconds(min=0, min_open=True), metavar="SECONDS",
              help="Stop after this long (exit 3 if no violation was found): the runs "
                   "finished by then are reported (the same runs as without the limit), "
                   "their failures written and shrunk while time is left.")
@click.option("--faults", "faults_text", metavar="KIND=RATE,...",
              help="Per-step fault probabilities: drop, dup, crash, restart, partition, heal, "
                   "lose (losses on lossy links; default 0.05), and delay (time jumps to the "
                   "next timer while messages are in flight: timeouts that fire early).  "
                   "A run where nothing else can happen restarts a crashed instance or heals "
                   "a partition whatever their rates (restart=0 is not crash-stop).")
@click.option("--scheduler", type=click.Choice(["random", "pct", "coverage", "swarm"]),
              default="random", show_default=True,
              help="How a run picks the next event: uniformly at random, PCT priorities, "
                   "toward the states the campaign visited least (coverage), or among a "
                   "random subset of event classes and fault kinds per run (swarm).")
@click.option("--pct-depth", type=click.IntRange(min=1), default=3, show_default=True,
              help="PCT's bug depth d (d-1 priority change points).")
@click.option("--engine", type=click.Choice(["native", "hypothesis"]), default="native",
              show_default=True,
              help="Who makes a run's choices: the seeded scheduler, or Hypothesis (its "
                   "shrinker and example database; --runs is its number of examples, in one "
                   "process).")
@click.option("--database", "database", metavar="DIR", default=".hypothesis/examples",
              show_default=True,
              help="With --engine hypothesis: where failures are stored and tried first the "
                   "next time (none: no database).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: the machine's cores). Results do not depend "
                   "on it.")
@click.option("--ray", "ray_address", metavar="ADDRESS",
              help="Run the runs as tasks on a Ray cluster (pip install 'assay[ray]'): "
                   "'local', 'auto' or ray://HOST:10001; the same results as --jobs.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="assay-traces",
              show_default=True, help="Where failing runs are written as trace files.")
@click.option("--no-shrink", is_flag=True, help="Write failing runs as they happened.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the first failing run (else the first suspected liveness lasso) as "
                   "a trace explorer page (self-contained HTML).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--quiet", "-q", is_flag=True,
              help="No progress on standard error (by default: a bar on a terminal, else a "
                   "line every 5 s).")
def simulate(spec: str, system_name: str | None, params: tuple[str, ...], seed: int, runs: int,
             steps: int, max_time: float | None, faults_text: str | None, scheduler: str,
             pct_depth: int,
             engine: str, database: str, jobs: int | None, ray_address: str | None,
             out_dir: str, no_shrink: bool,
             html_out: str | None, as_json: bool, quiet: bool) -> None:
    """Run seeded random (or PCT) schedules with fault injection; shrink and save failures.

    The same spec, parameters, seed and options give the same runs, on any machine.
    A run that comes back to a state along a fair cycle where a liveness property fails (or
    stops where it never held) reports a suspected liveness violation, written as a trace
    that `assay replay` confirms; `assay check` decides the property.  Without one, liveness
    is not covered: a finite run cannot show that something always happens.

    \b
    Exit codes: 0 no violation found, 1 violation (or suspected liveness violation), 2 spec
    or usage error, 3 incomplete (--max-time stopped it before every run was done, and no
    violation was found), 70 internal error, 130 interrupted (Ctrl-C: the summary of the runs
    finished is printed).
    """
    from assay.model.load import build
    from assay.simulator import FaultRates, Options, campaign, trace_of
    from assay.simulator.campaign import lasso_trace_of

    try:
        if html_out:
            _check_writable(html_out, [("the spec", spec)])
        if engine == "hypothesis" and database != "none" and os.path.exists(database) \
                and not os.path.isdir(database):
            # (Hypothesis keeps no failure there, silently: the next search would not
            # start from it)
            raise UsageError(f"--database {database}: not a directory",
                             notes=["give a directory (made if missing), or --database none"])
        given = click.get_current_context().get_parameter_source
        for option, name, applies, to in (
                ("--pct-depth", "pct_depth", scheduler == "pct", "--scheduler pct"),
                ("--database", "database", engine == "hypothesis", "--engine hypothesis")):
            if not applies and given(name) not in (click.core.ParameterSource.DEFAULT, None):
                # (ignored, silently: the runs were not the ones asked for)
                raise UsageError(f"{option} is for {to} only", notes=[
                    f"add {to}, or drop {option}"])
        rates = FaultRates.parse(faults_text) if faults_text else FaultRates()
        raw = _params(params)
        system, name, typed = build(spec, system_name, raw)
        from assay.api import spec_warnings, with_warnings

        warnings = spec_warnings(system, "simulate")
        print_warnings(warnings)
        opts = Options(steps=steps, rates=rates, scheduler=scheduler, pct_depth=pct_depth,
                       shrink=not no_shrink)
        if engine == "hypothesis" and (scheduler != "random" or ray_address or max_time):
            raise UsageError("--engine hypothesis makes the choices itself, in one process: "
                             "drop " + (f"--scheduler {scheduler}" if scheduler != "random"
                                        else "--ray" if ray_address else "--max-time")
                             + " (or use --engine native)")
        progress: _RunProgress | _RunLines | None = None
        if not quiet:
            progress = _RunProgress(runs) if sys.stderr.isatty() else \
                _RunLines(progress_interval(5.0))
        stem = os.path.splitext(os.path.basename(spec))[0]
        written: dict[int, str] = {}

        def write(r: Any) -> None:
            """Write a failing run at once (as it happened; again when it is shrunk), so
            Ctrl-C while the campaign goes on or shrinks loses nothing."""
            path = os.path.join(out_dir, f"{stem}-run{r.index}-seed{r.seed}.json")
            try:
                os.makedirs(out_dir, exist_ok=True)
                trace_of(r, spec, name, typed, opts).write(path)
            except OSError as e:
                raise UsageError(f"cannot write traces to {out_dir}: {e.strerror}") from None
            written[r.index] = path

        try:
            if engine == "hypothesis":
                from dataclasses import replace

                from assay.testing import search

                opts = replace(opts, scheduler="hypothesis")     # as traces record it
                result = search(system, spec=spec, system_name=name, params=raw, seed=seed,
                                runs=runs, opts=opts,
                                database=None if database == "none" else database)
                for r in result.failures:
                    write(r)
            else:
                result = campaign(spec, name, raw, seed=seed, runs=runs, opts=opts, jobs=jobs,
                                  on_progress=progress.update if progress else None,
                                  ray=ray_address, on_failure=write, on_shrunk=write,
                                  max_time=max_time)
        finally:
            if progress:
                progress.close()
        result.trace_files.update(written)
        result = with_warnings(result, [*warnings, *hash_seed_warning(result, spec)])
        if result.suspected:
            try:
                os.makedirs(out_dir, exist_ok=True)
                for r in result.suspected:
                    path = os.path.join(out_dir,
                                        f"{stem}-run{r.index}-seed{r.seed}-lasso.json")
                    lasso_trace_of(r, spec, name, typed, opts).write(path)
                    result.lasso_files[r.index] = path
            except OSError as e:
                raise UsageError(f"cannot write traces to {out_dir}: {e.strerror}") from None
        first = next(iter([*result.trace_files.values(), *result.lasso_files.values()]), None)
        if html_out and first is not None:
            from assay.explorer import trace_page
            from assay.kernel.trace import Trace
            from assay.simulator.run import replay_clock

            write_output(html_out, trace_page(Trace.read(first), first, replay_clock))
        result.liveness_properties = tuple(p.name for p in system.liveness)
        liveness = result.liveness(list(result.liveness_properties))
    except AssayError as e:
        from assay.simulator.campaign import killed_a_pool

        if killed_a_pool():
            # a spec error in a worker killed the pool (`_kill_workers`): its management
            # thread may still report the broken pool as the interpreter joins it at exit;
            # leave at once, the error printed and flushed
            click.echo(e.render(), err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(e.exit_code)
        _fail(e)
        return
    if as_json:
        doc = {"command": "simulate", "spec": spec, "system": name, "params": typed,
               "seed": seed, "steps": steps, "engine": engine,
               "scheduler": "hypothesis" if engine == "hypothesis" else scheduler,
               "faults": rates.to_json(), **result.to_json(), "liveness": liveness}
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        from assay.report import render_simulation

        console = Console(highlight=False)
        render_simulation(console, result, spec, name, typed, rates,
                          "hypothesis" if engine == "hypothesis" else scheduler)
        if html_out:
            console.print(f"trace explorer of {first} written to {html_out}" if first else
                          f"no failing run, so no page written to {html_out}", markup=False,
                          soft_wrap=True)
    from assay.simulator.campaign import killed_a_pool

    if result.interrupted or killed_a_pool():
        # workers are killed; the pool's threads may be stuck where Ctrl-C caught them, and
        # the interpreter would join them at exit: leave at once, output flushed
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result.exit_code)
    sys.exit(result.exit_code)



def hash_seed_warning(result: Any, spec: str) -> list[str]:
    """A warning (printed at once, and for the result's) when the first failing run of a
    campaign that ran to its end fails only with this process's str hashes
    (`assay.cli.replay.hash_seed_note`: its trace replayed in two other processes)."""
    from assay.cli.replay import hash_seed_note

    first = next(iter(result.failures), None)
    if first is None or result.interrupted or result.timed_out \
            or first.index not in result.trace_files:
        return []
    note = hash_seed_note(result.trace_files[first.index], spec,
                          f"run {first.index} (seed {first.seed})")
    print_warnings([note] if note else [])
    return [note] if note else []


class _RunProgress:
    """A progress bar of runs on standard error."""

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.progress = Progress("[bold]simulating[/]", BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True),
                                 transient=True)
        self.task = self.progress.add_task("runs", total=total)
        self.progress.start()

    def update(self, done: int, total: int, events: int) -> None:
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        self.progress.stop()


class _RunLines:
    """Progress on standard error when it is not a terminal: a plain line every `interval`
    seconds (as runs finish), none for a campaign that ends sooner."""

    def __init__(self, interval: float) -> None:
        import time

        self.interval = interval
        self.started = time.perf_counter()
        self.next = self.started + interval

    def update(self, done: int, total: int, events: int) -> None:
        import time

        now = time.perf_counter()
        if now >= self.next:
            self.next = now + self.interval
            sys.stderr.write(f"simulating: {done:,} of {total:,} runs, {events:,} events, "
                             f"{now - self.started:.0f} s\n")
            sys.stderr.flush()

    def close(self) -> None:
        pass
