"""Rendering results for people: counterexamples as numbered steps, summaries, errors.

One renderer for every engine: a step is a step, whoever produced it.
"""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from assay.checker import CheckResult
from assay.kernel.trace import Step
from assay.model.types import Peer


def _value(v: Any) -> str:
    import enum

    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, Peer):
        return str(v)
    if isinstance(v, frozenset):
        return "{" + ", ".join(sorted(_value(x) for x in v)) + "}"
    if isinstance(v, tuple):
        return "(" + ", ".join(_value(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def render_steps(console: Console, steps: tuple[Step, ...] | list[Step],
                 initial: dict[str, dict[str, Any]] | None = None) -> None:
    """A run as a numbered list: the event, the fields that changed, messages sent."""
    if initial is not None:
        console.print(Text("initial state", style="bold"))
        for inst, fields in initial.items():
            inner = ", ".join(f"{k}={_value(v)}" for k, v in fields.items())
            console.print(Text(f"     {inst}: {inner}", style="dim"))
    width = len(str(len(steps)))
    for s in steps:
        console.print(Text.assemble((f"{s.index:>{width}}. ", "bold"), (s.description, "cyan")))
        pad = " " * (width + 2)
        for c in s.changes:
            console.print(f"{pad}{c.instance}.{c.field}: {_value(c.old)} -> {_value(c.new)}",
                          markup=False, highlight=False)
        for m in s.sent:
            console.print(f"{pad}sends {m}", markup=False, highlight=False, style="dim")
        for v in s.violations:
            console.print(Text(f"{pad}✗ {v.kind}: {v.message}", style="bold red"))


def render_check(console: Console, r: CheckResult, spec: str, system: str,
                 params: dict[str, Any], faults: Any = None) -> None:
    ptxt = ", ".join(f"{k}={v}" for k, v in params.items())
    console.print(Text.assemble(("assay check ", "bold"), f"{spec} :: {system}",
                                f"({ptxt})" if ptxt else "()",
                                f" with faults {faults}" if faults else ""))
    if r.verdict == "violation":
        v = r.violation
        assert v is not None
        console.print(Text(f"✗ violation: {v.message}", style="bold red"))
        if r.trace is not None:
            where = f" ({v.location})" if v.location else ""
            console.print(f"  blame: {v.blame}{where}", markup=False, highlight=False)
            title = "shortest counterexample" if r.strategy == "bfs" else "counterexample"
            console.print(Text(f"\n{title} ({len(r.steps)} steps):", style="bold"))
            render_steps(console, r.steps, r.initial)
            if v.kind in ("property", "deadlock"):
                console.print(Text(f"  ✗ {v.message}", style="bold red"))
        console.print()
    elif r.verdict == "ok":
        console.print(Text("✓ all properties hold (exhaustive)", style="bold green"))
    else:
        console.print(Text(f"? incomplete: stopped at the {r.reason} bound; no violation found "
                           "so far, but not every state was explored", style="bold yellow"))
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_row("states", f"{r.states:,}")
    t.add_row("transitions", f"{r.transitions:,}")
    t.add_row("depth", str(r.depth))
    t.add_row("time", f"{r.seconds:.2f} s ({r.rate:,.0f} states/s)")
    t.add_row("search", f"{r.strategy}, stopped: {r.reason}")
    console.print(t)
