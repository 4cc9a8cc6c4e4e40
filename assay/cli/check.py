"""`assay check`: explicit-state model checking of a system."""
from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from assay.cli.common import (
    _check_writable,
    _fail,
    _params,
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
@click.option("--faults", "faults_text", metavar="KIND=N,...",
              help="Fault budget: e.g. crash=1,drop=2,dup=1,partition=1.")
@click.option("--fairness", type=click.Choice(["none", "weak", "strong"]), default=None,
              help="Fairness of every event no declaration covers, for liveness properties "
                   "(default: the system's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--trace-out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the counterexample as a JSON trace file.")
def check(spec: str, system_name: str | None, params: tuple[str, ...], strategy: str,
          max_states: int | None, max_depth: int | None, faults_text: str | None,
          fairness: str | None, as_json: bool, trace_out: str | None) -> None:
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
        kernel = Kernel(system, faults, fairness)
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


