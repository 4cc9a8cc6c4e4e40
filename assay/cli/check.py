"""`assay check`: explicit-state model checking of a system."""
from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from assay.cli.common import (
    Seconds,
    Size,
    WorkerCount,
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
@click.option("--bfs", "strategy", flag_value="bfs", default=True,
              help="Breadth-first: shortest counterexamples (default).")
@click.option("--dfs", "strategy", flag_value="dfs", help="Depth-first: less memory.")
@click.option("--max-states", type=click.IntRange(min=1), metavar="N",
              help="Stop after N distinct states (exit 3 if not done).")
@click.option("--max-depth", type=click.IntRange(min=0), metavar="N",
              help="Do not explore beyond depth N (exit 3 if states were left).")
@click.option("--max-time", type=Seconds(min=0, min_open=True), metavar="SECONDS",
              help="Stop after this long (exit 3 if not done).")
@click.option("--max-memory", type=Size(), metavar="SIZE",
              help="When this process's resident memory reaches SIZE, e.g. 500M or 2G: BFS "
                   "moves its visited states and levels to disk and goes on; with --dfs or "
                   "--full-states, or when that frees nothing, stop (exit 3 if not done).")
@click.option("--faults", "faults_text", metavar="KIND=N,...",
              help="Fault budget: e.g. crash=1,drop=2,dup=1,partition=1.")
@click.option("--fairness", type=click.Choice(["none", "weak", "strong"]), default=None,
              help="Fairness of every event no declaration covers, for liveness properties "
                   "(default: the system's).")
@click.option("--no-deadlock", is_flag=True,
              help="Do not report deadlocks: a state with nothing enabled may be final "
                   "(TLC's CHECK_DEADLOCK FALSE).")
@click.option("--keep-going", is_flag=True,
              help="Do not stop at the first violation: explore every reachable state, count "
                   "the states (or transitions) breaking each property or contract, and show "
                   "the first counterexample of each (TLC's -continue).")
@click.option("--no-symmetry", is_flag=True,
              help="Explore every state even where the spec declares interchangeable "
                   "instances (s.symmetric(...)); by default one state per orbit.")
@click.option("--workers", "-w", type=WorkerCount(), default="auto", show_default=True,
              metavar="N|all|auto",
              help="Worker processes of a breadth-first search ('all': one per core): the "
                   "same counts and a shortest counterexample.  'auto': one process, handing "
                   "the search over to one worker per core at the end of a level once it runs "
                   "past a second with a large frontier; the counts, verdict and "
                   "counterexample of --workers 1 (a violation found by the workers is "
                   "searched for again by the one process).  With --dfs, --keep-going, "
                   "symmetry, liveness, --max-memory, --checkpoint, --full-states, --por, or "
                   "timers, faults, lossy links, choices, constraints, 'auto' stays on one "
                   "process; with a number, --dfs, --keep-going, symmetry or liveness stay on "
                   "one process and a warning says so.")
@click.option("--ray", "ray_address", metavar="ADDRESS",
              help="Search on a Ray cluster (pip install 'assay[ray]'): 'local' starts one "
                   "here, 'auto' joins the one `ray start` runs on this machine, or "
                   "ray://HOST:10001. --workers sets the number of actors (default: one per "
                   "CPU of the cluster).")
@click.option("--checkpoint", "checkpoint", type=click.Path(file_okay=False), metavar="DIR",
              help="Save the search in DIR (breadth-first at the end of a level, --dfs every "
                   "1,024 states; every --checkpoint-every seconds), and resume from a "
                   "checkpoint found there (after Ctrl-C or a crash) when it is of the same "
                   "spec, parameters, options and --workers.")
@click.option("--checkpoint-every", type=Seconds(min=0), default=300.0,
              show_default=True, metavar="SECONDS",
              help="At least this long between two checkpoints (each at the end of a "
                   "level, or with --dfs after 1,024 more states; 0: each time).")
@click.option("--full-states", is_flag=True,
              help="BFS: keep every full state and its parent in memory (the reference "
                   "search; more memory) instead of compact packed states.  Without it a "
                   "BFS past --max-memory moves its states to disk and goes on.")
@click.option("--por", is_flag=True,
              help="Partial-order reduction: expand only an ample set of each state's events "
                   "where that is sound (breadth-first, safety; see the report's 'por' line). "
                   "States are then those of the reduced graph, and a counterexample need "
                   "not be shortest.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--trace-out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the counterexample as a JSON trace file (with --keep-going: the "
                   "first one's).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the counterexample as a trace explorer page (self-contained HTML; "
                   "with --keep-going: the first one's).")
@click.option("--quiet", "-q", is_flag=True,
              help="No progress on standard error (by default: live on a terminal, else a "
                   "line every 5 s).")
def check(spec: str, system_name: str | None, params: tuple[str, ...], strategy: str,
          max_states: int | None, max_depth: int | None, max_time: float | None,
          max_memory: int | None, faults_text: str | None, fairness: str | None,
          no_deadlock: bool, keep_going: bool, no_symmetry: bool, workers: int | str,
          ray_address: str | None, checkpoint: str | None, checkpoint_every: float,
          full_states: bool, por: bool, as_json: bool, trace_out: str | None, html_out: str | None,
          quiet: bool) -> None:
    """Explore every reachable state of a system and check its properties.

    \b
    Exit codes: 0 all hold (every state explored), 1 violation (with --keep-going: any was
    found, even if a bound then stopped the search), 2 spec or usage error, 3 incomplete (a
    bound stopped the search), 70 internal error, 130 interrupted (Ctrl-C: the partial
    statistics are printed).
    """
    from assay.checker import check as run_check
    from assay.model.load import build

    try:
        if trace_out:
            _check_writable(trace_out, [("the spec", spec)])
        if html_out:
            _check_writable(html_out, [("the spec", spec),
                                       ("the --trace-out file", trace_out)])
        from assay.kernel import Faults, Kernel

        faults = Faults.parse(faults_text) if faults_text else None
        system, name, typed = build(spec, system_name, _params(params))
        kernel = Kernel(system, faults, fairness, deadlock=not no_deadlock)
        progress: _Progress | _ProgressLines | None = None
        if not quiet:
            progress = _Progress() if sys.stderr.isatty() else \
                _ProgressLines(progress_interval(5.0))
        try:
            result = run_check(kernel, strategy=strategy, max_states=max_states,
                               max_depth=max_depth, max_time=max_time, max_memory=max_memory,
                               spec=spec, system_name=name, params=typed,
                               on_progress=progress.update if progress else None,
                               progress_interval=progress.interval if progress else 0.5,
                               keep_going=keep_going, symmetry=not no_symmetry,
                               workers=workers, ray=ray_address, checkpoint=checkpoint,
                               checkpoint_every=checkpoint_every, full_states=full_states,
                               por=por)
        finally:
            if progress:
                progress.close()
        from assay.api import spec_warnings, with_warnings

        result = with_warnings(result, spec_warnings(system, "check"))
    except AssayError as e:
        _fail(e)
        return
    print_warnings(result.warnings)
    if trace_out and result.trace is not None:
        try:
            result.trace.write(trace_out)
        except OSError as e:
            _fail(UsageError(f"cannot write the trace to {trace_out}: {e.strerror}"))
    if html_out and result.trace is not None:
        from assay.explorer import trace_page

        try:
            write_output(html_out, trace_page(result.trace, trace_out or spec))
        except AssayError as e:
            _fail(e)
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
        if html_out:
            click.echo(f"trace explorer written to {html_out}" if result.trace is not None
                       else f"no counterexample, so no page written to {html_out}")
    sys.exit(result.exit_code)



class _Progress:
    """Live progress on standard error (a terminal): states, frontier, depth and rate."""

    interval = 0.5

    def __init__(self) -> None:
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, transient=True, refresh_per_second=4)
        self.live.start()

    def update(self, p: Any) -> None:
        if p.phase == "liveness":
            self.live.update(f"[bold]checking liveness[/] {_liveness_progress(p)}")
            return
        rate = p.states / p.seconds if p.seconds else 0
        self.live.update(f"[bold]checking[/] {p.states:,} states, frontier {p.frontier:,}, "
                         f"depth {p.depth}, {rate:,.0f} states/s, {p.seconds:.0f} s")

    def close(self) -> None:
        self.live.stop()


def _liveness_progress(p: Any) -> str:
    """The liveness phase: after the safety search, the graph of its states is built again
    with every edge, then searched for fair cycles."""
    return (f"safety search done ({p.states:,} states, depth {p.depth}); building the graph "
            f"of its states, {p.frontier:,} still to expand, {p.seconds:.0f} s")


class _ProgressLines:
    """Progress on standard error when it is not a terminal (a log, a pipe, CI): one plain
    line every `interval` seconds, none for a check that ends sooner."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def update(self, p: Any) -> None:
        if p.phase == "liveness":
            sys.stderr.write(f"checking liveness: {_liveness_progress(p)}\n")
            sys.stderr.flush()
            return
        rate = p.states / p.seconds if p.seconds else 0
        sys.stderr.write(f"checking: {p.states:,} states, {p.transitions:,} transitions, "
                         f"depth {p.depth}, {rate:,.0f} states/s, {p.seconds:.0f} s\n")
        sys.stderr.flush()

    def close(self) -> None:
        pass
