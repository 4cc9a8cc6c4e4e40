"""The `assay verify` command: parses, calls `assay.verifier.verify.verify`, prints.

The summary is a rich table, one row per obligation, followed by the counterexample of each
refutation and, for a handler's, the precondition (or invariant) that would prove it, re-checked
(`assay.verifier.suggest`) — for a send that breaks its protocol, the run that gets there — and
a last line on whether the protocols fit (`assay.verifier.conformance.summary`: only when both
the connections' automata and the code's sends are proved); `--json` prints one JSON document
instead.
Exit codes: 0 all proved, 1 some obligation refuted, 2 spec or usage error, 3 none refuted but
some unknown (or vacuous), 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from assay.cli.common import _fail, _params, print_warnings
from assay.errors import AssayError
from assay.model.show import show

_STYLE = {"proved": "green", "refuted": "bold red", "vacuous": "yellow", "unknown": "yellow"}
_MARK = {"proved": "✓", "refuted": "✗", "vacuous": "∅", "unknown": "?"}


@click.command("verify")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--system", "system_name", metavar="NAME", help="Which system function to build.")
@click.option("--param", "-p", "params", multiple=True, metavar="K=V",
              help="A parameter of the system function (repeatable).")
@click.option("--component", metavar="NAME",
              help="Verify only this component (a class or instance name).")
@click.option("--timeout", type=float, default=5.0, show_default=True, metavar="SECONDS",
              help="Solver time limit per obligation.")
@click.option("--crashes", is_flag=True,
              help="The connections' protocols must fit also when either side crashes and "
                   "restarts (its sessions start again unless its port is persistent=True); "
                   "without it they are proved for runs without a crash, and said so.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def verify_command(spec: str, system_name: str | None, params: tuple[str, ...],
                   component: str | None, timeout: float, crashes: bool,
                   as_json: bool) -> None:
    """Prove each component's contracts with Z3, one component at a time.

    For every handler and action: the invariant and ensures hold after it, bounded fields stay
    in range, sends are well-typed and allowed by their port's protocol, nothing raises; and
    initial states satisfy the invariant.  For every connection: the protocols are compatible
    (for runs without a crash, said so where a crash could break it; across crashes with
    --crashes).
    Each obligation is proved, refuted (with concrete values, confirmed by running the real
    handler), vacuous or unknown (with the reason).

    \b
    Exit codes: 0 all proved, 1 some refuted, 2 spec or usage error, 3 some unknown,
    70 internal error, 130 interrupted (Ctrl-C: the obligations decided so far are printed,
    and what was not checked).
    """
    from assay.errors import UsageError
    from assay.model.load import build
    from assay.verifier.verify import verify

    try:
        if not timeout > 0:
            raise UsageError(f"--timeout must be positive, got {timeout}")
        system, name, typed = build(spec, system_name, _params(params))
        report = verify(system, component=component, timeout=timeout, crashes=crashes)
        from assay.api import only_component, spec_warnings, with_warnings

        report = with_warnings(report, spec_warnings(system, "verify"))
        report = with_warnings(report, only_component(system, report, component))
    except AssayError as e:
        _fail(e)
        return
    print_warnings(report.warnings)
    if as_json:
        doc = {"command": "verify", "spec": spec, "system": name, "params": typed,
               "timeout": timeout, "crashes": crashes, **report.to_json()}
        from assay.verifier.conformance import summary as protocol_summary

        fit = protocol_summary(report)
        doc["protocols"] = None if fit is None else {"verdict": fit[0], "summary": fit[1]}
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        wide = None if sys.stdout.isatty() else 120     # logs and pipes: do not squeeze
        render_verify(Console(highlight=False, width=wide), report, spec, name, typed)
    sys.exit(report.exit_code)


def _fields(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={show(v)}" for k, v in d.items()) or "(no fields)"


def _suggestion(s: Any) -> list[str]:
    """The re-checked precondition, guard, port contract or invariant that would prove a
    refuted obligation, and where it goes."""
    if s is None:
        return []
    lines = s.text.splitlines() or [s.text]
    span = ""
    if s.replaces is not None:
        _, a, b = s.replaces
        span = f" (replaces line {a})" if a == b else f" (replaces lines {a}-{b})"
    head = {"requires": "suggested", "invariant": "suggested invariant",
            "when": "suggested guard", "where": "suggested port contract"}.get(s.kind)
    if head is None:
        return [f"  {s.text}"]             # no simple precondition found
    out = [f"  {head}{span}: {lines[0]}", *(f"    {ln.strip()}" for ln in lines[1:])]
    if s.note:
        out.append(f"    ({s.note})")
    return out


def render_verify(console: Console, report: Any, spec: str, system: str,
                  params: dict[str, Any]) -> None:
    """The summary table, then each refutation's counterexample and each unknown's reason."""
    ptxt = ", ".join(f"{k}={v}" for k, v in params.items())
    console.print(Text.assemble(("assay verify ", "bold"), f"{spec} :: {system}({ptxt})"))
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("component")
    table.add_column("handler")
    table.add_column("obligation", overflow="fold")
    table.add_column("verdict")
    table.add_column("detail", overflow="fold")
    last = None
    for o in report.obligations:
        comp = o.component if o.component != last else ""
        last = o.component
        detail = o.reason if o.verdict != "proved" else ""
        if o.verdict == "refuted" and o.counterexample and o.counterexample.line:
            detail = f"breaks at line {o.counterexample.line}: {o.reason}"
        table.add_row(comp, o.target, o.title,
                      Text(f"{_MARK[o.verdict]} {o.verdict}", style=_STYLE[o.verdict]),
                      Text(detail))
    console.print(table)
    for line in getattr(report, "composites", ()):
        console.print(line, markup=False, highlight=False, soft_wrap=True, style="dim")
    if getattr(report, "properties", ()):
        console.print("not covered by verify: the system's properties "
                      + ", ".join(report.properties) + " (assay check decides)",
                      markup=False, highlight=False, style="dim", soft_wrap=True)
    for name in report.nothing_to_verify:
        console.print(f"{name}: no handler, action or invariant, so nothing to verify",
                      markup=False, highlight=False, style="dim")
    for o in report.obligations:
        if o.verdict != "refuted" or o.counterexample is None:
            continue
        c = o.counterexample
        where = f" ({o.location})" if o.location else ""
        console.print(Text(f"✗ {o.component}.{o.target}: {o.title}{where}", style="bold red"))
        lines = [f"  {c.instance}: {_fields(c.fields)}"]
        if c.ports:
            lines.append("  peers: " + ", ".join("{}={{{}}}".format(p, ", ".join(v))
                                                for p, v in c.ports.items()))
        if c.message is not None:
            sender = f" from {c.message.sender}" if c.message.sender is not None else \
                " (as a timer)"
            lines.append(f"  receives {c.message!r}{sender}")
        if c.has_arg:
            lines.append(f"  with argument {show(c.arg)}")
        if c.after is not None:
            lines.append(f"  after: {_fields(c.after)}")
        if c.line:
            lines.append(f"  breaks at line {c.line}: {c.detail}")
        else:
            lines.append(f"  {c.detail}")
        lines += _suggestion(o.suggestion)
        if o.kind == "protocol" and o.witness:
            lines.append("  a run that gets there:")
            lines += [f"    {i}. {step}" for i, step in enumerate(o.witness)]
        for ln in lines:
            console.print(ln, markup=False, highlight=False, soft_wrap=True)
    for o in report.obligations:
        if o.kind != "compatibility" or o.verdict == "proved" or not o.witness:
            continue
        if o.verdict == "refuted":
            console.print(Text(f"✗ connection {o.target}: the protocols do not fit",
                               style="bold red"))
        else:                   # --crashes: a run of the protocols after a crash
            console.print(Text(f"? connection {o.target}: the protocols may not fit after a "
                               "crash", style="bold yellow"))
        for i, step in enumerate(o.witness, 1):
            console.print(f"  {i}. {step}", markup=False, highlight=False)
        console.print(f"  then: {o.reason}", markup=False, highlight=False, soft_wrap=True)
    counts = report.counts()
    n = len(report.obligations)
    rate = n / report.seconds if report.seconds else 0.0
    summary = ", ".join(f"{counts[k]} {k}" for k in ("proved", "refuted", "vacuous", "unknown")
                        if counts[k])
    style = {"proved": "bold green", "refuted": "bold red", "unknown": "bold yellow"}[
        report.verdict]
    head = {"proved": "✓ every obligation proved", "refuted": "✗ some obligation refuted",
            "unknown": "? not everything could be proved"}[report.verdict]
    if not n and not report.interrupted:
        # nothing was proved: a ✓ would claim what no obligation checked
        head, style = "? nothing to verify: no obligation", "bold yellow"
    if report.interrupted:
        if report.verdict == "proved":
            head = "✓ every obligation decided so far proved"
        console.print(Text("? interrupted (Ctrl-C): not every obligation was decided",
                           style="bold yellow"))
        console.print("not checked: " + (", ".join(report.not_checked) or "nothing"),
                      markup=False, highlight=False, soft_wrap=True)
    console.print(Text(head, style=style))
    from assay.verifier.conformance import summary as protocol_summary

    fit = protocol_summary(report)
    if fit is not None:
        console.print(Text(fit[1], style=_STYLE[fit[0]]))
    console.print(f"{n} obligations: {summary or 'none'} in {report.seconds:.2f} s "
                  f"({rate:,.0f} obligations/s)", markup=False, highlight=False)
    for w in getattr(report, "warnings", ()):
        console.print(f"warning: {w}", markup=False, highlight=False, soft_wrap=True,
                      style="yellow")
