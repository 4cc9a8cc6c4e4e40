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


def _check_writable(path: str) -> None:
    """Fail before a long search, not after it, when an output file cannot be written."""
    import os

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied")


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


if __name__ == "__main__":
    main()
