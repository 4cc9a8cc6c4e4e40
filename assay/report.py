"""Rendering results for people: counterexamples as numbered steps, summaries, errors.

One renderer for every engine: a step is a step, whoever produced it.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from assay.checker import CheckResult
from assay.kernel.events import Envelope
from assay.kernel.trace import Step
from assay.model.show import show


def render_steps(console: Console, steps: tuple[Step, ...] | list[Step],
                 initial: dict[str, dict[str, Any]] | None = None,
                 cycle_start: int | None = None) -> None:
    """A run as a numbered list: the event, the fields that changed, messages sent.  With
    `cycle_start`, the run is a lasso: the steps after it repeat forever (none: it stops)."""
    if initial is not None:
        console.print(Text("initial state", style="bold"))
        for inst, fields in initial.items():
            inner = ", ".join(f"{k}={show(v)}" for k, v in fields.items())
            console.print(Text(f"     {inst}: {inner}", style="dim"))
    width = len(str(len(steps)))
    for s in steps:
        if cycle_start is not None and s.index == cycle_start + 1:
            console.print(Text(f"── cycle: steps {cycle_start + 1}-{len(steps)} repeat forever "
                               "──", style="bold magenta"))
        console.print(Text.assemble((f"{s.index:>{width}}. ", "bold"), (s.description, "cyan")))
        pad = " " * (width + 2)
        for c in s.changes:
            console.print(f"{pad}{c.instance}.{c.field}: {show(c.old)} -> {show(c.new)}",
                          markup=False, highlight=False)
        for m in s.sent:
            console.print(f"{pad}sends {m}", markup=False, highlight=False, style="dim")
        for e in s.lost:
            console.print(f"{pad}lost, its link is full: {e}", markup=False, highlight=False,
                          style="yellow")
        for v in s.violations:
            console.print(Text(f"{pad}✗ {v.kind}: {v.message}", style="bold red"),
                          soft_wrap=True)
    if cycle_start is not None:
        console.print(Text(f"── back to the state after step {cycle_start} ──"
                           if cycle_start < len(steps) else
                           "── the run stops here: nothing but faults is enabled ──",
                           style="bold magenta"))


def render_check(console: Console, r: CheckResult, spec: str, system: str,
                 params: dict[str, Any], faults: Any = None) -> None:
    ptxt = ", ".join(f"{k}={v}" for k, v in params.items())
    console.print(Text.assemble(("assay check ", "bold"), f"{spec} :: {system}",
                                f"({ptxt})" if ptxt else "()",
                                f" with faults {faults}" if faults else ""))
    if r.findings:
        _render_findings(console, r)
    elif r.verdict == "violation":
        v = r.violation
        assert v is not None
        console.print(Text(f"✗ violation: {v.message}", style="bold red"), soft_wrap=True)
        if r.trace is not None:
            _render_counterexample(console, r, v, r.steps, r.initial, r.cycle_start)
        console.print()
    elif r.verdict == "ok":
        console.print(Text(f"✓ all properties hold ({_exhaustive(r)})", style="bold green"))
        if r.liveness:
            under = _under(r)
            console.print(Text(f"  liveness, under {under}: " + ", ".join(r.liveness),
                               style="green"), soft_wrap=True)
    elif r.reason == "interrupted":
        console.print(Text("? interrupted (Ctrl-C): no violation found so far, but not every "
                           "state was explored", style="bold yellow"))
    else:
        console.print(Text(f"? incomplete: stopped at the {r.reason} bound; no violation found "
                           "so far, but not every state was explored", style="bold yellow"))
        if r.liveness:
            console.print(Text("  liveness not checked: it needs every state", style="yellow"))
    rows = [("states", f"{r.states:,}"), ("transitions", f"{r.transitions:,}")]
    sym = r.symmetry
    if sym is not None:
        groups = "; ".join(", ".join(g) for g in sym["groups"])
        rows[0] = (("orbits", f"{r.states:,} (one state each; symmetric: {groups})")
                   if sym["applied"] else rows[0])
        if not sym["applied"]:
            rows.append(("symmetry", f"not applied: {sym['why']}"))
        elif sym.get("code"):
            rows.append(("symmetry", "the members' code is taken not to tell them apart "
                         f"({sym['code']})"))
        how = sym.get("liveness") or {}
        reduced = [name for name, h in how.items() if h == "on orbits"]
        if how:
            rows.append(("liveness", (f"decided on {sym['liveness_orbits']:,} orbits: "
                                      f"{', '.join(reduced)}" if reduced else "")
                         + ("; " if reduced and len(reduced) < len(how) else "")
                         + (f"on every state: {', '.join(n for n in how if n not in reduced)}"
                            if len(reduced) < len(how) else "")))
    if r.por is not None:
        from assay.checker.por import summary_note

        rows.append(("por", summary_note(r.por)))
    if not r.deadlocks_checked:
        rows.append(("deadlocks", "not checked (--no-deadlock): a state where nothing is "
                     "enabled is taken as final"))
    if r.constraints is not None:
        from assay.checker.constraints import summary_note as constraints_note

        rows.append(("constraints", constraints_note(r.constraints)))
    if r.keep_going:
        rows += [("terminal states", f"{r.terminal:,}"),
                 ("deadlocked states", f"{r.deadlocked:,}")]
        # the line of a contract only where it tells two kinds apart
        kinds = [(f.violation.kind, f.violation.name, f.violation.blame) for f in r.findings]
        same = Counter(kinds)
        rows += [("violations" if i == 0 else "",
                  f"{_label(f.violation, same[k] > 1)}: {_count(f)}")
                 for i, (f, k) in enumerate(zip(r.findings, kinds))]
    st = r.storage
    if st.get("mode") == "compact":
        # TLC prints the probability of a fingerprint collision; packed states have none,
        # except those spilled to disk wider than 64 bits (fingerprints: TLC's two estimates)
        how = "exact: states packed into ints, no collision possible" if st["exact"] else (
            f"{st['fingerprints']:,} states on disk as 64-bit fingerprints: collision "
            f"probability {st['collision_probability']:.1e} (optimistic), "
            f"{st['collision_probability_observed']:.1e} (from the fingerprints)")
        if st.get("spills"):
            how += (f"; spilled to disk {st['spills']} time{'s' if st['spills'] > 1 else ''} "
                    f"past --max-memory, {st['on_disk']:,} states there")
        rows.append(("storage", how))
    search = f"{r.strategy}, kept going" if r.keep_going else r.strategy
    if r.workers > 1:
        search += f" on {r.workers} workers"
    _summary(console, [*rows, ("depth", str(r.depth)),
                       ("time", f"{r.seconds:.2f} s ({r.rate:,.0f} states/s)"),
                       ("search", f"{search}, stopped: {r.reason}"),
                       *(("warning", w) for w in r.warnings)])


# with --keep-going, the counterexamples printed in full; the rest are counted (and in --json)
SHOWN = 10


def _render_findings(console: Console, r: CheckResult) -> None:
    """A check that kept going: how many kinds of violation, then each one's first
    counterexample (the first `SHOWN` of them), numbered."""
    n = len(r.findings)
    kinds = f"{n} kinds of violation" if n > 1 else "1 kind of violation"
    if r.reason == "exhausted":
        how = "the search kept going past them: every state was explored"
    elif r.reason == "interrupted":
        how = "the search kept going past them, until interrupted (Ctrl-C): not every state " \
              "was explored"
    else:
        how = f"the search kept going past them, until the {r.reason} bound: not every " \
              "state was explored"
    console.print(Text(f"✗ {kinds} ({how})", style="bold red"), soft_wrap=True)
    if r.liveness:
        under = _under(r)
        console.print(f"  liveness, under {under}: " + ", ".join(
            f"{name} {verdict}" for name, verdict in r.liveness.items()),
            markup=False, highlight=False, soft_wrap=True)
    for i, f in enumerate(r.findings[:SHOWN], 1):
        v = f.violation
        console.print()
        count = "" if f.unit == "lasso" else f" ({_count(f)})"
        console.print(Text(f"[{i}/{n}] ✗ {v.message}{count}", style="bold red"), soft_wrap=True)
        _render_counterexample(console, r, v, f.steps, f.initial, f.cycle_start)
        if f.replay_stops_at is not None:
            at, other = f.replay_stops_at
            where = "in its initial state" if at == 0 else f"at step {at}"
            console.print(f"  note: this run breaks {_label(other)} first, {where} (the search "
                          "went on past it): `assay replay` of its trace stops there",
                          markup=False, highlight=False, soft_wrap=True)
    if n > SHOWN:
        console.print(f"\n... and {n - SHOWN} more kinds, counted below (each with its "
                      "counterexample in --json)", markup=False, highlight=False)
    console.print()


def _render_counterexample(console: Console, r: CheckResult, v: Any, steps: tuple[Step, ...],
                           initial: dict[str, dict[str, Any]] | None,
                           cycle_start: int | None) -> None:
    where = f" ({v.location})" if v.location else ""
    console.print(f"  blame: {v.blame}{where}", markup=False, highlight=False)
    if cycle_start is not None:
        under = _under(r)
        title = (f"lasso (under {under}), with a shortest prefix"
                 if r.strategy == "bfs" else f"lasso (under {under})")
    else:
        title = "shortest counterexample" if r.strategy == "bfs" and not _reduced(r) \
            else "counterexample"
    console.print(Text(f"\n{title} ({len(steps)} steps):", style="bold"))
    render_steps(console, steps, initial, cycle_start)
    if v.kind in ("property", "deadlock", "liveness"):
        console.print(Text(f"  ✗ {v.message}", style="bold red"), soft_wrap=True)


def _label(v: Any, line: bool = False) -> str:
    """A kind of violation in a few words: `property safe`, `deadlock`, `ensures, blame
    sink.note`; with `line`, the contract's (`spec.py:12`), which tells two contracts of one
    handler apart."""
    if v.kind == v.name:
        return str(v.kind)
    if v.name:
        return f"{v.kind} {v.name}"
    where = f" ({os.path.basename(v.location.file)}:{v.location.line})" \
        if line and v.location else ""
    return f"{v.kind}, blame {v.blame}{where}"


def _count(f: Any) -> str:
    if f.unit == "lasso":
        return "violated"
    unit = f.unit[:-1] if f.count == 1 else f.unit
    return f"{f.count:,} {unit}"


def _summary(console: Console, rows: list[tuple[str, str]]) -> None:
    """The figures at the end of a report, as an aligned two-column table."""
    t = Table(show_header=False, box=None, pad_edge=False)
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)


def render_simulation(console: Console, c: Any, spec: str, system: str,
                      params: dict[str, Any], rates: Any, scheduler: str) -> None:
    ptxt = ", ".join(f"{k}={v}" for k, v in params.items())
    console.print(Text.assemble(("assay simulate ", "bold"), f"{spec} :: {system}({ptxt})",
                                f" scheduler={scheduler}"))
    if c.interrupted:
        console.print(Text(f"? interrupted (Ctrl-C) after {c.runs:,} of {c.requested:,} runs"
                           if c.requested else f"? interrupted (Ctrl-C) while shrinking, "
                           f"after all {c.runs:,} runs", style="bold yellow"))
    timed_out = getattr(c, "timed_out", False)
    if timed_out:
        limit = f"the time limit ({c.max_time:g} s)"
        console.print(Text(f"? stopped: max-time: {limit} passed after {c.runs:,} of "
                           f"{c.requested:,} runs" if c.requested else
                           f"? stopped: max-time: {limit} passed while shrinking, after all "
                           f"{c.runs:,} runs", style="bold yellow"))
        if c.stuck:
            console.print(f"  {c.stuck}", markup=False, soft_wrap=True)
    if c.failures:
        console.print(Text(f"✗ {len(c.failures)} of {c.runs} runs found a violation",
                           style="bold red"))
        for r in c.failures[:20]:
            v = r.violation or {}
            what = f"{v.get('kind')} {v.get('name')}" if v.get("name") else v.get("kind")
            console.print(f"  run {r.index} (seed {r.seed}): {what}, blame {v.get('blame')}; "
                          f"{r.events} events, "
                          + (f"shrunk to {len(r.shrunk)}" + (
                              " so far (shrinking stopped: max-time)" if timed_out else
                              " so far (shrinking interrupted)") if _halfway(r)
                             else f"shrunk to {len(r.shrunk)}" if r.shrunk is not None
                             else "not shrunk (stopped: max-time)" if timed_out
                             else "not shrunk (interrupted)")
                          + (f" -> {c.trace_files[r.index]}" if r.index in c.trace_files
                             else ""), markup=False, soft_wrap=True)
        if len(c.failures) > 20:
            console.print(f"  ... and {len(c.failures) - 20} more")
    elif timed_out:
        console.print(Text(f"? incomplete: no violation in the {c.runs:,} runs done, but not "
                           "every run was done", style="bold yellow")
                      if c.requested else
                      Text(f"no violation in {c.runs} runs (a sample of the behaviours, not a "
                           "proof)", style="bold green"))
    elif not c.interrupted:
        what = "no safety violation" if getattr(c, "suspected", None) else "no violation"
        console.print(Text(f"✓ {what} in {c.runs} runs (a sample of the behaviours, "
                           "not a proof)", style="bold green"))
    if c.runs and not c.events and not c.failures:
        # (as `check` warns of 0 transitions: "no violation" of the initial states alone)
        console.print("  note: no run took a step: nothing is enabled in the initial states "
                      "the runs started from, so nothing beyond them was simulated",
                      markup=False, soft_wrap=True)
    cut = [r.events for r in c.reports if r.ended == "steps"]
    if cut:
        # a run cut at the step bound is a prefix of a run: "no violation" is of that prefix
        console.print(f"  note: {len(cut):,} of the {c.runs:,} runs were cut at the step bound "
                      f"(--steps {cut[0]:,}) before they ended: nothing past step {cut[0]:,} "
                      "was run", markup=False, soft_wrap=True)
    run_s = getattr(c, "run_seconds", c.seconds)
    rate = c.events / run_s if run_s else 0
    ended = ", ".join(f"{k}: {v}" for k, v in c.to_json(with_timing=False)["ended"].items())
    runs = f"{c.runs:,} of {c.requested:,} " + ("(stopped: max-time)" if timed_out else
                                                  "(interrupted)") \
        if c.requested else f"{c.runs:,}"
    rows = [("runs", runs), ("events", f"{c.events:,}"),
            ("distinct states", f"{c.distinct_states:,}"),
            ("time", f"{c.seconds:.2f} s (runs {run_s:.2f} s, {rate:,.0f} events/s)")]
    if c.failures:
        done = sum(1 for r in c.failures if r.shrunk is not None and not _halfway(r))
        halfway = sum(1 for r in c.failures if _halfway(r))
        rows.append(("shrinking", f"{c.shrink_seconds:.2f} s ({done} of "
                                  f"{len(c.failures)} failing runs shrunk"
                     + (f", {halfway} halfway" if halfway else "")
                     + ((", stopped: max-time" if timed_out else ", interrupted")
                        if done < len(c.failures) else "") + ")"))
    _summary(console, [*rows, ("runs ended", ended),
                       *(("warning", w) for w in getattr(c, "warnings", ()))])
    _render_liveness(console, c)


def _halfway(r: Any) -> bool:
    """Whether the failing run `r` was shrunk only halfway: shrinking was stopped (Ctrl-C,
    the time limit), and its trace is the shortest failing run found by then."""
    return r.shrunk is not None and bool(getattr(r.shrinking, "interrupted", False))


def to_mermaid(steps: Any, instances: list[str], violation: Any = None,
               cycle_start: int | None = None,
               in_flight: Sequence[tuple[Envelope, int]] = (), fence: bool = False) -> str:
    """A run as a Mermaid sequence diagram: instances are lifelines, deliveries arrows,
    actions, timers and faults notes, the violation a final note.  A liveness lasso's cycle is
    a `loop` block (an empty cycle: a note that the run stops).  `in_flight`: the messages
    still in flight at the end, with the step that sent each (0: the initial state), drawn
    as dashed open arrows — a message that is never delivered may be the bug.  `fence`: in a
    ```mermaid block, for a Markdown file."""
    def q(text: str) -> str:
        return text.replace(";", ",").replace("#", "").replace("\n", " ")

    lines = ["sequenceDiagram"]
    lines += [f"    participant {n}" for n in instances]
    span = f"{instances[0]},{instances[-1]}" if len(instances) > 1 else instances[0]
    for s in steps:
        if cycle_start is not None and s.index == cycle_start + 1:
            lines.append(f"    loop steps {s.index}-{len(steps)} repeat forever")
        j = s.event_json
        kind = j["kind"]
        if kind == "deliver":
            m = j["message"]
            fields = ", ".join(f"{k}={v}" for k, v in m["fields"].items())
            lines.append(f"    {j['from']}->>{j['to']}: {s.index}. {q(m['type'])}"
                         f"({q(fields)})")
            where = j["to"]
        elif kind in ("drop", "lose"):
            lines.append(f"    {j['from']}--x{j['to']}: {s.index}. "
                         f"{'dropped' if kind == 'drop' else 'lost'} "
                         f"{q(j['message']['type'])}")
            where = j["to"]
        elif kind == "duplicate":
            lines.append(f"    Note over {j['from']},{j['to']}: {s.index}. duplicated "
                         f"{q(j['message']['type'])}")
            where = j["to"]
        elif kind in ("partition", "heal"):
            lines.append(f"    Note over {span}: {s.index}. {q(s.description)}")
            where = None
        else:
            where = j.get("instance")
            lines.append(f"    Note over {where}: {s.index}. {q(s.description)}")
        if where and s.changes:
            ch = ", ".join(f"{c.field}={show(c.new)}" for c in s.changes
                           if c.instance == where)
            if ch:
                lines.append(f"    Note right of {where}: {q(ch)}")
        for e in s.lost:
            lines.append(f"    {e.src}--x{e.dst}: {s.index}. {q(type(e.message).__name__)} "
                         "lost (link full)")
        for v in s.violations:
            lines.append(f"    Note over {span}: ✗ {q(v.kind)}: {q(v.message)}")
    if cycle_start is not None:
        lines.append("    end" if cycle_start < len(steps) else
                     f"    Note over {span}: the run stops here")
    # in a lasso the run goes on round the cycle: what is in flight at its end is not lost
    fate = "in flight as the cycle repeats" if cycle_start is not None and \
        cycle_start < len(steps) else "never delivered"
    for e, sent in in_flight:
        when = "in flight from the start" if sent == 0 else f"sent at step {sent}"
        lines.append(f"    {e.src}--){e.dst}: still in flight at the end: "
                     f"{q(show(e.message))} ({when}, {fate})")
    if violation is not None and not any(violation in s.violations for s in steps):
        lines.append(f"    Note over {span}: ✗ {q(violation.kind)}: {q(violation.message)}")
    text = "\n".join(lines) + "\n"
    return f"```mermaid\n{text}```\n" if fence else text


def _render_liveness(console: Console, result: Any) -> None:
    """What the runs say of the liveness properties: the lassos some walked (suspected
    violations), and for the others that they are not covered."""
    from assay.simulator.lasso import cycle_faults

    liveness = result.liveness(list(getattr(result, "liveness_properties", ())))

    runs = result.suspected
    if runs:
        console.print(f"✗ {len(runs)} of {result.runs} runs walked a lasso that breaks a "
                      "liveness property: suspected liveness violations (`assay replay "
                      "FILE` confirms the lasso; `assay check` decides the property)",
                      style="bold red", markup=False, soft_wrap=True)
        for r in runs[:20]:
            sus = r.suspected or {}
            cycle = len(sus.get("events") or []) - int(sus.get("cycle_start") or 0)
            shape = f"a cycle of {cycle} steps after {sus.get('cycle_start')}" if cycle \
                else f"stops after {sus.get('cycle_start')} steps"
            console.print(f"  run {r.index} (seed {r.seed}): {sus.get('name')} "
                          f"({sus.get('formula')}): {shape}, under {sus.get('fairness')} "
                          "fairness" + (f" -> {result.lasso_files[r.index]}"
                                        if r.index in result.lasso_files else ""),
                          markup=False, soft_wrap=True)
            faults = cycle_faults(sus.get("events") or [], sus.get("cycle_start"))
            if faults:
                console.print(f"    note: {faults}", markup=False, soft_wrap=True)
        if len(runs) > 20:
            console.print(f"  ... and {len(runs) - 20} more")
    missed = [p for p, v in liveness.items() if v.startswith("not covered")]
    said = [p for p in liveness if p not in missed]
    if said:
        console.print(f"liveness ({', '.join(said)}): suspected — confirm with `assay check`",
                      markup=False, soft_wrap=True)
    if missed:
        console.print(f"liveness ({', '.join(missed)}): not covered — no run walked a lasso "
                      "that breaks it, and a finite run cannot show that something always "
                      "happens; `assay check` decides it", markup=False, soft_wrap=True)


def render_run(console: Console, r: Any, spec: str, system: str, params: dict[str, Any],
               monitor: str, trace_out: str | None, warnings: Iterable[str] = ()) -> None:
    ptxt = ", ".join(f"{k}={v}" for k, v in params.items())
    console.print(Text.assemble(("assay run ", "bold"), f"{spec} :: {system}({ptxt})",
                                f" monitor={monitor}"))
    if r.violations:
        # under enforce a step that breaks a contract is rejected; a restart cannot be
        # undone, so what it breaks is reported
        restarts = sum(1 for e, _ in r.violations if e.get("kind") == "restart")
        if monitor != "enforce":
            how = " reported"
        elif not restarts:
            how = " rejected"
        elif restarts >= r.violation_count:
            how = " at a restart (reported: a crash cannot be undone)"
        else:
            how = f" ({restarts} at a restart, reported; the rest rejected)"
        console.print(Text(f"✗ {r.violation_count:,} violation(s)" + how, style="bold red"))
        for _, v in r.violations[:10]:
            console.print(f"  {v.kind}: {v.message} (blame {v.blame})", markup=False,
                          soft_wrap=True)
        if r.violation_count > 10:
            console.print(f"  ... and {r.violation_count - 10:,} more")
    elif monitor == "off":
        # nothing was checked: "no violation" would be a claim about what was not looked at
        console.print(Text("? not monitored (--monitor off): no contract or protocol was "
                           "checked, so no violation can have been seen", style="bold yellow"),
                      soft_wrap=True)
    else:
        console.print(Text("✓ no violation", style="bold green"))
    for name, fields in r.final.items():
        inner = ", ".join(f"{k}={show(v)}" for k, v in fields.items())
        console.print(f"  {name}: {inner}", markup=False, highlight=False)
    rate = r.steps / r.seconds if r.seconds else 0
    _summary(console, [("steps", f"{r.steps:,}"),
                       ("time", f"{r.seconds:.2f} s ({rate:,.0f} steps/s)"),
                       ("ended", {"quiescent": "nothing left to do",
                                  "stopped": "stopped (Ctrl-C or SIGTERM)"}.get(
                                      r.ended, "time is up"))]
             + ([("lost", f"{r.lost:,} sends to full links")] if getattr(r, "lost", 0) else [])
             + ([("trace", trace_out)] if trace_out else [])
             + [("warning", w) for w in warnings])


def _under(r: Any) -> str:
    """The fairness a liveness verdict was decided under, as the summary says it."""
    base = "no fairness" if r.fairness == "none" else f"{r.fairness} fairness"
    if getattr(r, "fairness_declared", False):
        return f"the declared fairness ({base} by default)"
    return base


# --- results in Python: plain text, a one-line repr and HTML (notebooks) ------------------------

def plain_text(render: Any, width: int = 100) -> str:
    """What `render(console)` prints, as plain text: no colour, no terminal codes."""
    import io

    buf = io.StringIO()
    render(Console(file=buf, width=width, color_system=None, highlight=False,
                   force_terminal=False, no_color=True))
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


def _target(spec: str, system: str, params: dict[str, Any]) -> str:
    ptxt = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"{spec + ' :: ' if spec else ''}{system}({ptxt})"


def check_text(r: CheckResult) -> str:
    """The report `assay check` prints for `r`."""
    return plain_text(lambda c: render_check(c, r, r.spec or "(a System)", r.system_name,
                                             r.params, r.faults))


def _exhaustive(r: CheckResult) -> str:
    """What 'exhaustive' covered in a check that found nothing: within the state constraints
    if one cut the search; not deadlocks under `--no-deadlock` (a state where nothing is
    enabled was taken as final, never reported)."""
    from assay.checker.constraints import headline

    return (f"exhaustive{headline(r.constraints)}"
            + ("" if r.deadlocks_checked else "; deadlocks not checked"))


def _check_verdict(r: CheckResult) -> str:
    if r.verdict == "ok":
        return f"ok: all properties hold ({_exhaustive(r)})"
    if r.verdict == "violation":
        v = r.violation
        assert v is not None
        kinds = f" (and {len(r.findings) - 1} more kinds)" if len(r.findings) > 1 else ""
        label = _label(v)
        if "blame" not in label and v.blame != v.name:
            label += f", blame {v.blame}"
        return f"violation: {label}, after {len(r.steps)} steps: {v.message}{kinds}"
    if r.reason == "interrupted":
        return "incomplete: interrupted, no violation found so far"
    return f"incomplete: stopped at the {r.reason} bound, no violation found so far"


def _reduced(r: CheckResult) -> bool:
    """Whether partial-order reduction was applied (counts of the reduced graph, a
    counterexample not necessarily shortest)."""
    return r.por is not None and bool(r.por.get("applied"))


def check_repr(r: CheckResult) -> str:
    """One line: what was checked, the verdict (the first violation), the counts."""
    faults = r.faults_text()
    return (f"<CheckResult {_target(r.spec, r.system_name, r.params)}"
            f"{' with faults ' + faults if faults else ''}: {_check_verdict(r)}; "
            f"{r.states:,} states{' (POR: of the reduced graph)' if _reduced(r) else ''}, "
            f"{r.transitions:,} transitions, depth {r.depth}, "
            f"{r.strategy}, {r.seconds:.2f} s>")


_HTML_COLOUR = {"ok": "#1a7f37", "violation": "#cf222e", "incomplete": "#9a6700",
                "proved": "#1a7f37", "refuted": "#cf222e", "unknown": "#9a6700"}


def _html_table(title: str, verdict: str, colour: str, rows: list[tuple[str, str]]) -> str:
    from html import escape

    body = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:"
                   f"left'>{escape(v)}</td></tr>" for k, v in rows)
    return (f"<table><tr><th style='text-align:left'>{escape(title)}</th><td style='text-"
            f"align:left;color:{colour};font-weight:bold'>{escape(verdict)}</td></tr>{body}"
            "</table>")


def _html_steps(title: str, steps: tuple[Step, ...] | list[Step]) -> str:
    from html import escape

    items = []
    for s in steps:
        lines = [f"{c.instance}.{c.field}: {show(c.old)} → {show(c.new)}" for c in s.changes]
        lines += [f"sends {m}" for m in s.sent]
        lines += [f"✗ {v.kind}: {v.message}" for v in s.violations]
        inner = "".join(f"<br><small>{escape(x)}</small>" for x in lines)
        items.append(f"<li><code>{escape(s.description)}</code>{inner}</li>")
    return (f"<details open><summary>{escape(title)} ({len(steps)} steps)</summary>"
            f"<ol>{''.join(items)}</ol></details>")


def check_html(r: CheckResult) -> str:
    """A small HTML summary (a notebook shows it): the verdict, the counts, and the
    counterexample's steps."""
    faults = r.faults_text()
    rows = [("system", _target(r.spec, r.system_name, r.params)
             + (f" with faults {faults}" if faults else "")),
            ("states", f"{r.states:,}"), ("transitions", f"{r.transitions:,}"),
            ("depth", str(r.depth)), ("time", f"{r.seconds:.2f} s"),
            ("search", f"{r.strategy}, stopped: {r.reason}")]
    if r.por is not None:
        from assay.checker.por import summary_note

        rows.append(("por", summary_note(r.por)))
    if r.violation is not None:
        rows.insert(1, ("blame", r.violation.blame))
    rows += [("warning", w) for w in r.warnings]
    mark = {"ok": "✓ ", "violation": "✗ ", "incomplete": "? "}[r.verdict]
    out = _html_table("assay check", mark + _check_verdict(r), _HTML_COLOUR[r.verdict], rows)
    if r.steps:
        title = "shortest counterexample" if r.strategy == "bfs" and not _reduced(r) \
            else "counterexample"
        if r.cycle_start is not None:
            title = (f"lasso: steps {r.cycle_start + 1}-{len(r.steps)} repeat forever"
                     if r.cycle_start < len(r.steps) else "lasso: the run stops after its "
                     "last step")
        out += _html_steps(title, r.steps)
    return f"<div class='assay-result'>{out}</div>"


def simulation_text(c: Any) -> str:
    """The report `assay simulate` prints for the campaign `c` (`assay.simulate`)."""
    rates = c.options.rates if c.options is not None else None
    scheduler = c.options.scheduler if c.options is not None else "random"
    return plain_text(lambda con: render_simulation(con, c, c.spec or "(a System)",
                                                    c.system_name, c.params, rates, scheduler))


def _simulation_verdict(c: Any) -> tuple[str, str]:
    if c.failures:
        r = c.failures[0]
        v = r.violation or {}
        what = f"{v.get('kind')} {v.get('name')}" if v.get("name") else v.get("kind")
        blame = f", blame {v.get('blame')}" if v.get("blame") != v.get("name") else ""
        return "violation", (f"violation: {len(c.failures)} of {c.runs} runs; first run "
                             f"{r.index} (seed {r.seed}): {what}{blame}: {v.get('message')}")
    if c.suspected:
        return "violation", (f"suspected liveness violation in {len(c.suspected)} of "
                             f"{c.runs} runs (assay check decides it)")
    if c.interrupted:
        return "incomplete", f"interrupted after {c.runs} runs, no violation found so far"
    if c.timed_out and c.requested:
        return "incomplete", (f"stopped: max-time after {c.runs} of {c.requested} runs, no "
                              "violation found so far")
    return "ok", f"no violation in {c.runs} runs (a sample of the behaviours, not a proof)"


def simulation_repr(c: Any) -> str:
    _, verdict = _simulation_verdict(c)
    return (f"<Campaign {_target(c.spec, c.system_name, c.params)}: {verdict}; "
            f"{c.events:,} events, {c.distinct_states:,} distinct states, {c.seconds:.2f} s>")


def simulation_html(c: Any) -> str:
    kind, verdict = _simulation_verdict(c)
    mark = {"ok": "✓ ", "violation": "✗ ", "incomplete": "? "}[kind]
    rows = [("system", _target(c.spec, c.system_name, c.params)), ("runs", f"{c.runs:,}"),
            ("events", f"{c.events:,}"), ("distinct states", f"{c.distinct_states:,}"),
            ("time", f"{c.seconds:.2f} s")]
    rows += [(f"run {r.index}", f"seed {r.seed}: {(r.violation or {}).get('message')} "
                                f"({r.events} events, shrunk to {len(r.shrunk or [])})")
             for r in c.failures[:10]]
    rows += [("warning", w) for w in getattr(c, "warnings", ())]
    return ("<div class='assay-result'>"
            + _html_table("assay simulate", mark + verdict, _HTML_COLOUR[kind], rows)
            + "</div>")


def verify_text(r: Any) -> str:
    """The report `assay verify` prints for `r` (`assay.verify`)."""
    from assay.cli.verify import render_verify

    return plain_text(lambda c: render_verify(c, r, r.spec or "(a System)", r.system,
                                              r.params), width=120)


def _verify_verdict(r: Any) -> str:
    counts = r.counts()
    n = sum(counts.values())
    said = ", ".join(f"{counts[k]} {k}" for k in ("proved", "refuted", "vacuous", "unknown")
                     if counts[k])
    head = {"proved": "every obligation proved", "refuted": "some obligation refuted",
            "unknown": "not everything could be proved"}[r.verdict]
    if not n and not r.interrupted:
        head = "nothing to verify"
    if r.interrupted:
        head = ("every obligation decided so far proved" if r.verdict == "proved" else head) \
            + " (interrupted: not every obligation was decided)"
    first = next((o for o in r.obligations if o.verdict == "refuted"), None)
    tail = f"; first refuted: {first.component}.{first.target}: {first.title}" if first else ""
    return f"{r.stated}: {head}; {n} obligations: {said or 'none'}{tail}"


def verify_repr(r: Any) -> str:
    return (f"<VerifyReport {_target(r.spec, r.system, r.params)}: {_verify_verdict(r)}; "
            f"{r.seconds:.2f} s>")


def verify_html(r: Any) -> str:
    from html import escape

    mark = {"proved": "✓ " if r.obligations else "? ", "refuted": "✗ ", "unknown": "? "}[
        r.stated]
    head = _html_table("assay verify", mark + _verify_verdict(r), _HTML_COLOUR[r.stated],
                       [("system", _target(r.spec, r.system, r.params)),
                        ("time", f"{r.seconds:.2f} s"),
                        *(("warning", w) for w in getattr(r, "warnings", ()))])
    rows = "".join(
        f"<tr><td>{escape(o.component)}</td><td>{escape(o.target)}</td><td>{escape(o.title)}"
        f"</td><td style='color:{_HTML_COLOUR.get(o.verdict, '#9a6700')}'>{escape(o.verdict)}"
        f"</td><td>{escape(o.reason if o.verdict != 'proved' else '')}</td></tr>"
        for o in r.obligations)
    table = ("<details><summary>obligations</summary><table><tr><th>component</th><th>"
             "handler</th><th>obligation</th><th>verdict</th><th>detail</th></tr>"
             f"{rows}</table></details>")
    return f"<div class='assay-result'>{head}{table}</div>"
