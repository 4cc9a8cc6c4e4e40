"""The trace explorer: a replayed run as one self-contained HTML page.

The page is built from the same replayed steps the text and Mermaid renderers print (a trace run
through the kernel): a sequence diagram drawn here as SVG (every message from the step that sent
it to the step that delivered, dropped or lost it, or to the end of the run when it is still in
flight), and, for each step, the global state with the fields it changed or rewrote.  The data
is embedded as JSON; a little inline script shows the state of the step clicked.  No network.
"""
from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.kernel.events import (
    Crash,
    Deliver,
    Drop,
    Duplicate,
    Envelope,
    Fire,
    Lose,
    TimerFire,
    _meta_text,
)
from assay.kernel.kernel import Kernel, State
from assay.kernel.trace import ReplayResult, Step, Trace, replay_trace
from assay.model.message import Message
from assay.model.show import show

# what became of a message by the end of a run
FATES = ("delivered", "dropped", "lost", "lost (link full)", "discarded", "in flight")


@dataclass
class Flight:
    """One message of a run, from the step that sent it (0: the initial state) to the step
    that delivered, dropped or lost it (`end`; None while it is in flight)."""

    id: int
    envelope: Envelope
    sent: int
    fate: str = "in flight"
    end: int | None = None
    copy_of: int | None = None
    delivered: list[int] = field(default_factory=list)


@dataclass
class TimerSpan:
    """One timer of a run, from the step that set it (0: the initial state) to the step that
    fired or cancelled it (`end`; None while it is pending)."""

    id: int
    instance: str
    delay: int
    message: Message
    set: int
    fate: str = "pending"
    end: int | None = None


@dataclass
class Flights:
    """The messages and timers of a run and its global states (`states[k]`: after step k)."""

    messages: list[Flight]
    states: list[State]
    sent: list[list[int]]           # by step (index 0: the initial state): the ids it sent
    timers: list[TimerSpan] = field(default_factory=list)

    def in_flight_at_end(self) -> list[Flight]:
        return [m for m in self.messages if m.fate == "in flight"]


def flights(kernel: Kernel, start: State, steps: Sequence[Step]) -> Flights:
    """Follow every message of a replayed run through the kernel's steps: what each step
    sends, takes off the network (a delivery, a drop, a loss) or copies, checked against the
    kernel's own messages in flight after it (what else left — a crash — is "discarded")."""
    messages: list[Flight] = []
    pending: dict[Envelope, list[Flight]] = {}

    def new(env: Envelope, k: int, copy_of: int | None = None) -> Flight:
        m = Flight(len(messages) + 1, env, k, copy_of=copy_of)
        messages.append(m)
        pending.setdefault(env, []).append(m)
        return m

    def take(env: Envelope, k: int, fate: str) -> Flight:
        queue = pending.get(env) or [new(env, 0)]
        m = queue.pop(0)
        m.fate, m.end = fate, k
        return m

    timers: list[TimerSpan] = []
    armed: dict[tuple[str, int, Message], list[TimerSpan]] = {}

    def arm(key: tuple[str, int, Message], k: int) -> None:
        t = TimerSpan(len(timers) + 1, key[0], key[1], key[2], k)
        timers.append(t)
        armed.setdefault(key, []).append(t)

    def disarm(key: tuple[str, int, Message], k: int, fate: str) -> None:
        queue = armed.get(key)
        if queue:
            t = queue.pop(0)
            t.fate, t.end = fate, k

    for key in kernel.pending_timers(start):
        arm(key, 0)
    states = [start]
    sent: list[list[int]] = [[new(e, 0).id for e in kernel.in_flight(start)]]
    state = start
    for st in steps:
        k = st.index
        before = Counter(kernel.in_flight(state))
        res = kernel.step(state, st.event)
        ev = kernel.event(st.event)
        was = Counter(kernel.pending_timers(state))
        if isinstance(ev, TimerFire):
            key = (ev.instance, ev.delay, ev.message)
            disarm(key, k, "fired")
            was[key] -= 1
        now = Counter(kernel.pending_timers(res.state))
        for key, n in (was - now).items():
            for _ in range(n):
                disarm(key, k, "discarded" if isinstance(ev, Crash) else "cancelled")
        for key, n in (now - was).items():
            for _ in range(n):
                arm(key, k)
        after = Counter(kernel.in_flight(res.state))
        expected = Counter(before)
        ids: list[int] = []
        kept = Counter(res.sends) - Counter(st.lost)
        if isinstance(ev, Deliver):
            env = ev.envelope
            queue = pending.get(env)
            if queue:
                queue[0].delivered.append(k)
            if after[env] < before[env] + kept[env]:                  # it was consumed
                take(env, k, "delivered")
                expected[env] -= 1
        elif isinstance(ev, Drop | Lose):
            env = ev.envelope
            if after[env] < before[env]:
                take(env, k, "dropped" if isinstance(ev, Drop) else "lost")
                expected[env] -= 1
        elif isinstance(ev, Duplicate):
            env = ev.envelope
            queue = pending.get(env)
            ids.append(new(env, k, queue[0].id if queue else None).id)
            expected[env] += 1
        lost = Counter(st.lost)
        for env in res.sends:
            if lost[env]:                   # never on the network: not pending
                lost[env] -= 1
                m = Flight(len(messages) + 1, env, k, "lost (link full)", k)
                messages.append(m)
                ids.append(m.id)
            else:
                ids.append(new(env, k).id)
                expected[env] += 1
        for env, n in (expected - after).items():     # left without an event of its own
            for _ in range(n):
                take(env, k, "discarded")
        for env, n in (after - expected).items():     # not expected: keep the books right
            for _ in range(n):
                ids.append(new(env, k).id)
        sent.append(ids)
        state = res.state
        states.append(state)
    return Flights(messages, states, sent, timers)


# --- the data the page shows --------------------------------------------------------------------


def page_data(result: ReplayResult, trace: Trace | None = None,
              title: str | None = None) -> dict[str, Any]:
    """What the page embeds: instances, steps, the state after each step, messages, verdict."""

    kernel, start = result.kernel, result.start
    assert kernel is not None and start is not None, "a result of `replay_trace`"
    fl = flights(kernel, start, result.steps)

    def state_json(k: int) -> dict[str, Any]:
        state = fl.states[k]
        return {"fields": {name: {f: show(v) for f, v in kernel.local_values(state,
                                                                               name).items()}
                           for name in result.instances},
                "in_flight": [m.id for m in fl.messages
                              if m.sent <= k and (m.end is None or m.end > k)
                              and m.fate != "lost (link full)"],
                "timers": [t.id for t in fl.timers
                           if t.set <= k and (t.end is None or t.end > k)],
                "crashed": kernel.crashed(state)}

    steps = []
    for st in result.steps:
        k = st.index
        before = fl.states[k - 1]
        j = st.event_json
        changed = {(c.instance, c.field) for c in st.changes}
        rewritten = [{"instance": inst, "field": f,
                      "value": show(kernel.local_values(fl.states[k], inst)[f])}
                     for inst, fs in kernel.assigned(before, st.event).items()
                     for f in sorted(fs) if (inst, f) not in changed]
        owner = kernel.event_owner(st.event)
        ev = kernel.event(st.event)
        label = {"crash": "✕ crash", "restart": "↻ restart"}.get(j.get("kind", ""), "")
        if isinstance(ev, Fire):
            label = ev.action + (f"({show(ev.arg)})" if ev.has_arg else "")
        elif isinstance(ev, TimerFire):
            label = f"timer {type(ev.message).__name__}"
        steps.append({
            "index": k, "description": st.description, "kind": j.get("kind"), "label": label,
            "instance": result.instances[owner] if owner >= 0 else None,
            "changes": [{"instance": c.instance, "field": c.field, "old": show(c.old),
                         "new": show(c.new)} for c in st.changes],
            "rewritten": rewritten,
            "sent": fl.sent[k],
            "ended": [m.id for m in fl.messages if m.end == k],
            "violations": [v.to_json() for v in st.violations]})
    v = result.violation
    vstep = next((s.index for s in result.steps if v is not None and v in s.violations), None)
    if v is not None and vstep is None:
        vstep = len(result.steps)       # a property of the last state, a deadlock, a lasso
    messages = [{"id": m.id, "src": m.envelope.src, "src_port": m.envelope.src_port,
                 "dst": m.envelope.dst, "dst_port": m.envelope.dst_port,
                 "type": type(m.envelope.message).__name__,
                 "text": show(m.envelope.message), "sent": m.sent, "fate": m.fate,
                 "end": m.end, "copy_of": m.copy_of, "delivered": m.delivered,
                 # an interceptor's metadata in the envelope (`self.meta(m)`), as the text
                 # renderer writes it; "" for a message without
                 "meta": _meta_text(m.envelope.meta) if m.envelope.meta else ""}
                for m in fl.messages]
    head = title or (f"{trace.spec} :: {trace.system}" if trace else "a run")
    return {"title": head,
            "engine": trace.engine if trace else None,
            "params": trace.params if trace else {},
            "instances": result.instances,
            "steps": steps,
            "states": [state_json(k) for k in range(len(fl.states))],
            "messages": messages,
            "timers": [{"id": t.id, "instance": t.instance, "delay": t.delay,
                        "text": show(t.message), "set": t.set, "fate": t.fate, "end": t.end}
                       for t in fl.timers],
            "violation": v.to_json() if v else None,
            "violation_step": vstep,
            "cycle_start": result.cycle_start,
            # in a lasso the run goes on round the cycle: what is in flight at its end is not
            # lost, it is in flight again each time round
            "in_flight_label": "in flight as the cycle repeats"
            if result.cycle_start is not None and result.cycle_start < len(result.steps)
            else "never delivered",
            "note": result.note,
            "time": result.time}


# --- the page -----------------------------------------------------------------------------------


def embed_json(data: Any) -> str:
    """JSON safe inside a `<script>` element: no `<`, `>` or `&` (so no `</script>` nor
    `<!--`) and no line separators, all written as \\u escapes, which JSON reads back."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def headline(v: dict[str, Any]) -> str:
    """A violation in one line: its kind and name, then its message (which may start with
    its kind already)."""
    name = f" {v['name']}" if v.get("name") and v["name"] != v["kind"] else ""
    msg = v["message"]
    return msg if msg.startswith(f"{v['kind']}{name}") else f"{v['kind']}{name}: {msg}"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _clip(text: str, most: int = 30) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


COLW, ROWH, TOP, LEFT = 140, 30, 44, 56


def sequence_svg(data: dict[str, Any]) -> str:
    """The run as an SVG sequence diagram: a lifeline per instance, a row per step (row 0:
    the initial state), an arrow per message from the row that sent it to the row that ended
    it (delivered: to the receiver; dropped or lost: a cross; in flight at the end: dashed, to
    the bottom), a box per action, timer, crash or restart, and the lasso's cycle marked."""
    insts: list[str] = data["instances"]
    steps = data["steps"]
    n = len(steps)
    col = {name: LEFT + i * COLW + COLW // 2 for i, name in enumerate(insts)}
    width = LEFT + len(insts) * COLW + 16

    def y(k: int) -> int:
        return TOP + k * ROWH + ROWH // 2

    end_y = TOP + (n + 1) * ROWH + 18
    height = end_y + 26
    out = [f'<svg id="diagram" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="sequence diagram of the run">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
           'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
           '<path d="M0,0L10,5L0,10z"/></marker>'
           '<marker id="open" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="10" '
           'markerHeight="10" markerUnits="userSpaceOnUse" orient="auto">'
           '<path d="M0,0L10,5L0,10" fill="none" stroke="#e65100"/></marker></defs>']
    cycle = data["cycle_start"]
    vstep = data["violation_step"]
    for k in range(n + 1):
        cls = "row"
        if k and cycle is not None and k > cycle:
            cls += " cycle"
        if vstep == k:
            cls += " violation"
        label = "initial state" if k == 0 else steps[k - 1]["description"]
        out.append(f'<g class="{cls}" data-step="{k}"><title>{_e(label)}</title>'
                   f'<rect x="0" y="{TOP + k * ROWH}" width="{width}" height="{ROWH}"/>'
                   f'<text class="num" x="{LEFT - 10}" y="{y(k) + 4}">{k if k else "init"}'
                   '</text></g>')
    # lifelines, red and dashed while an instance is down
    for name, x in col.items():
        out.append(f'<g class="head"><rect x="{x - COLW // 2 + 8}" y="6" width="{COLW - 16}" '
                   f'height="26" rx="4"/><text x="{x}" y="24">{_e(_clip(name, 22))}</text></g>')
        k = 0
        while k <= n:
            down = name in data["states"][k]["crashed"]
            j = k
            while j + 1 <= n and (name in data["states"][j + 1]["crashed"]) == down:
                j += 1
            top = 32 if k == 0 else TOP + k * ROWH
            bottom = end_y if j == n else TOP + (j + 1) * ROWH
            out.append(f'<line class="life{" down" if down else ""}" x1="{x}" y1="{top}" '
                       f'x2="{x}" y2="{bottom}"/>')
            k = j + 1
    if cycle is not None:
        top, bottom = TOP + (cycle + 1) * ROWH, TOP + (n + 1) * ROWH
        if cycle < n:
            out.append(f'<g class="lasso"><path d="M{LEFT - 30},{bottom - 4} '
                       f'C{LEFT - 52},{bottom - 4} {LEFT - 52},{top + 4} {LEFT - 32},{top + 4}" '
                       f'marker-end="url(#arrow)"/><text x="4" y="{top - 4}">cycle '
                       f'{cycle + 1}–{n}</text></g>')
        else:
            out.append(f'<g class="lasso"><text x="4" y="{bottom + 12}">the run stops here'
                       '</text></g>')
    # messages
    for m in data["messages"]:
        x1, y1 = float(col[m["src"]]), float(y(m["sent"]))
        x2: float
        y2: float
        fate = m["fate"]
        if fate == "delivered":
            x2, y2 = col[m["dst"]], y(m["end"])
        elif fate == "in flight":
            x2, y2 = col[m["dst"]], end_y
        elif fate == "lost (link full)":
            x2, y2 = x1 + (col[m["dst"]] - x1) * 0.3 or x1 + 30, y1 + ROWH * 0.45
        else:
            x2 = x1 + (col[m["dst"]] - x1) * 0.6 if m["dst"] != m["src"] else x1 + 40
            y2 = y(m["end"])
        cls = "msg " + {"delivered": "delivered", "in flight": "inflight"}.get(fate, "dropped")
        if m["copy_of"] is not None:
            cls += " copy"
        if m["src"] == m["dst"] and fate in ("delivered", "in flight"):
            path = f"M{x1},{y1} C{x1 + 50},{y1} {x2 + 50},{y2} {x2},{y2}"
            lx, ly = x1 + 40, (y1 + y2) / 2
        else:
            path = f"M{x1},{y1} L{x2:.0f},{y2:.0f}"
            lx, ly = (x1 + x2) / 2, (y1 + y2) / 2 - 4
        marker = ' marker-end="url(#arrow)"' if fate == "delivered" else \
            (' marker-end="url(#open)"' if fate == "in flight" else "")
        what = {"delivered": f"delivered at step {m['end']}",
                "in flight": f"still in flight at the end: {data['in_flight_label']}"}.get(
                    fate, f"{fate} at step {m['end']}")
        sent = "in the initial state" if m["sent"] == 0 else f"at step {m['sent']}"
        if m["copy_of"] is not None:
            sent = f"{sent} (a copy of #{m['copy_of']} the network made)"
        meta = f" [meta: {m['meta']}]" if m.get("meta") else ""
        title = f"#{m['id']} {m['src']} → {m['dst']}: {m['text']}{meta}, sent {sent}; {what}"
        label = {"in flight": "in flight: ", "delivered": ""}.get(fate, f"{fate}: ")
        if m["copy_of"] is not None:
            label = "copy, " + label
        out.append(f'<g class="{cls}" data-msg="{m["id"]}" data-sent="{m["sent"]}" '
                   f'data-end="{m["end"] if m["end"] is not None else ""}">'
                   f'<title>{_e(title)}</title><path d="{path}"{marker}/>'
                   f'<text x="{lx:.0f}" y="{ly:.0f}">{_e(_clip(label + m["type"]))}</text>')
        if fate not in ("delivered", "in flight"):
            out.append(f'<path class="cross" d="M{x2 - 5:.0f},{y2 - 5:.0f}l10,10m0,-10l-10,10"/>')
        out.append("</g>")
    # timers: a dashed amber line beside the lifeline, from the step that set one to the step
    # that fired it (a dot) or cancelled it (a cross), or to the end while it is pending
    for t in data["timers"]:
        x = col[t["instance"]] + 9
        y1, y2 = y(t["set"]), (end_y if t["end"] is None else y(t["end"]))
        what = {"fired": f"fired at step {t['end']}", "pending": "still pending at the end"}.get(
            t["fate"], f"{t['fate']} at step {t['end']}")
        sent = "in the initial state" if t["set"] == 0 else f"at step {t['set']}"
        title = f"timer {t['text']} of {t['instance']} (delay {t['delay']}), set {sent}; {what}"
        out.append(f'<g class="timer {t["fate"]}" data-timer="{t["id"]}"><title>{_e(title)}'
                   f'</title><path d="M{x},{y1 + 5} L{x},{y2}"/>')
        out.append(f'<circle class="clock" cx="{x}" cy="{y1 + 5}" r="3.5"/>')
        if t["fate"] == "fired":
            out.append(f'<circle cx="{x}" cy="{y2}" r="2.5"/>')
        elif t["fate"] != "pending":
            out.append(f'<path class="cross" d="M{x - 4},{y2 - 4}l8,8m0,-8l-8,8"/>')
        out.append("</g>")

    # local events: actions, timers, crashes, restarts, partitions
    for s in steps:
        k, kind, inst = s["index"], s["kind"], s["instance"]
        if kind in ("partition", "heal"):
            out.append(f'<g class="event net"><text x="{LEFT + 8}" y="{y(k) + 4}">'
                       f'{_e(_clip(s["description"], 80))}</text></g>')
            continue
        if inst is None or kind in ("drop", "lose", "duplicate"):
            continue
        x = col[inst]
        if kind == "deliver":
            out.append(f'<circle class="event deliver" cx="{x}" cy="{y(k)}" r="3"/>')
            continue
        text = _clip(s["label"], 22)
        w = min(COLW - 20, 12 + 7 * len(text))
        out.append(f'<g class="event {kind}"><rect x="{x - w / 2:.0f}" y="{y(k) - 10}" '
                   f'width="{w}" height="20" rx="3"/><text x="{x}" y="{y(k) + 4}">{_e(text)}'
                   '</text></g>')
    if vstep is not None:
        out.append(f'<text class="vmark" x="{width - 14}" y="{y(vstep) + 5}">✗</text>')
    out.append(f'<text class="endlabel" x="{LEFT - 10}" y="{end_y + 4}">end</text>')
    out.append("</svg>")
    return "\n".join(out)


def to_html(data: dict[str, Any]) -> str:
    """The whole page: header with the verdict, the steps list, the diagram, the state panel,
    and the data as JSON for the script."""
    v = data["violation"]
    if v is not None:
        where = f" ({v['location']})" if v.get("location") else ""
        verdict = (f'<div id="verdict" class="bad">✗ {_e(headline(v))}'
                   f'<div class="blame">blame: {_e(v["blame"])}{_e(where)}'
                   + (f' — at step {data["violation_step"]}' if data["violation_step"] else "")
                   + "</div></div>")
    elif data["note"]:
        verdict = f'<div id="verdict" class="ok">the lasso shows no violation: ' \
                  f'{_e(data["note"])}</div>'
    else:
        verdict = '<div id="verdict" class="ok">the run ends without a violation</div>'
    cycle = data["cycle_start"]
    n = len(data["steps"])
    lasso = ""
    if cycle is not None:
        lasso = (f'<div id="lasso">liveness lasso: steps {cycle + 1}–{n} repeat forever</div>'
                 if cycle < n else
                 '<div id="lasso">liveness: the run stops where nothing but faults is '
                 'enabled</div>')
    items = []
    for s in data["steps"]:
        cls = []
        if cycle is not None and s["index"] > cycle:
            cls.append("cycle")
        if s["violations"] or data["violation_step"] == s["index"]:
            cls.append("violation")
        c = f' class="{" ".join(cls)}"' if cls else ""
        items.append(f'<li data-step="{s["index"]}"{c} value="{s["index"]}">'
                     f'{_e(s["description"])}</li>')
    params = ", ".join(f"{k}={v}" for k, v in data["params"].items())
    fly = sum(1 for m in data["messages"] if m["fate"] == "in flight")
    gone = sum(1 for m in data["messages"] if m["fate"] not in ("in flight", "delivered"))
    legend = (f'{n} steps, {len(data["messages"])} messages: {fly} still in flight at the end,'
              f' {gone} dropped or lost')
    return _PAGE.format(
        title=_e(data["title"]), params=_e(f"({params})" if params else ""),
        engine=_e(f"{data['engine']} trace" if data["engine"] else ""), verdict=verdict,
        lasso=lasso, legend=_e(legend), steps="\n".join(items), svg=sequence_svg(data),
        css=_CSS, js=_JS, data=embed_json(data))


def trace_page(trace: Trace, trace_path: str | Path,
               clocked: Callable[[Kernel], Any] | None = None) -> str:
    """The explorer page of a trace, replayed through the kernel (`trace_path`: where the
    trace is, or would be, written — its spec may be beside it)."""
    return to_html(page_data(replay_trace(trace, trace_path, clocked), trace))


_CSS = """
:root { --bad: #c62828; --fly: #e65100; --cyc: #8e24aa; --chg: #fff59d; --rew: #e1f5fe; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 10px 16px; border-bottom: 1px solid #ccc; background: #fafafa; }
h1 { font-size: 17px; margin: 0 0 4px; }
.sub { color: #666; font-size: 12px; }
#verdict { margin-top: 6px; font-weight: 600; }
#verdict.bad { color: var(--bad); } #verdict.ok { color: #2e7d32; }
.blame { font-weight: normal; color: #444; }
#lasso { color: var(--cyc); font-weight: 600; }
main { display: grid; grid-template-columns: minmax(200px, 22%) 1fr minmax(280px, 30%);
  height: calc(100vh - 110px); }
main > * { overflow: auto; padding: 8px; border-right: 1px solid #eee; }
#initial, #steps li { cursor: pointer; padding: 2px 4px; border-radius: 3px; }
#steps { margin: 0; padding-left: 36px; }
#steps li.cycle { border-left: 3px solid var(--cyc); }
#steps li.violation { color: var(--bad); }
#initial.selected, #steps li.selected { background: #bbdefb; }
svg text { font: 11px system-ui, sans-serif; }
g.row rect { fill: transparent; cursor: pointer; }
g.row:hover rect { fill: #f5f5f5; }
g.row.cycle rect { fill: #f3e5f5; }
g.row.violation rect { fill: #ffebee; }
g.row.selected rect { fill: #bbdefb; }
g.row text.num { text-anchor: end; fill: #888; }
g.head rect { fill: #eceff1; stroke: #90a4ae; } g.head text { text-anchor: middle;
  font-weight: 600; }
line.life { stroke: #b0bec5; stroke-width: 1.5; }
line.life.down { stroke: var(--bad); stroke-dasharray: 3 3; }
g.msg path { fill: none; stroke: #37474f; stroke-width: 1.3; }
g.msg text { fill: #37474f; text-anchor: middle; }
g.msg.inflight path { stroke: var(--fly); stroke-dasharray: 6 4; stroke-width: 2; }
g.msg.inflight text { fill: var(--fly); font-weight: 600; }
g.msg.dropped path { stroke: var(--bad); stroke-dasharray: 2 3; stroke-width: 2; }
g.msg.dropped text { fill: var(--bad); font-weight: 600; }
g.msg path.cross { stroke: var(--bad); stroke-dasharray: none; stroke-width: 2.5; }
g.msg.copy path { stroke: #6d4c41; }
g.msg.focus path { stroke-width: 3.5; } g.msg.focus text { font-weight: 700; }
marker path { fill: #37474f; }
g.event rect { fill: #e8f5e9; stroke: #81c784; } g.event text { text-anchor: middle; }
g.event.crash rect { fill: #ffebee; stroke: var(--bad); }
g.event.timer rect { fill: #fff8e1; stroke: #ffb300; }
g.event.net text { fill: #6a1b9a; font-weight: 600; text-anchor: start; }
circle.deliver { fill: #37474f; }
g.timer path { stroke: #ffb300; stroke-width: 2; stroke-dasharray: 4 3; fill: none; }
g.timer circle { fill: #ffb300; } g.timer path.cross { stroke: var(--bad); stroke-dasharray: none; }
g.timer circle.clock { fill: #fff; stroke: #ffb300; stroke-width: 1.5; }
g.lasso path { fill: none; stroke: var(--cyc); stroke-width: 2; }
g.lasso text { fill: var(--cyc); font-weight: 600; }
text.vmark { fill: var(--bad); font-size: 16px; font-weight: 700; }
text.endlabel { text-anchor: end; fill: #888; }
#state h2 { font-size: 15px; margin: 4px 0; } #state h3 { font-size: 14px; margin: 10px 0 2px; }
#state table { border-collapse: collapse; width: 100%; }
#state td { border-bottom: 1px solid #eee; padding: 2px 4px; vertical-align: top;
  word-break: break-word; }
#state td.f { color: #555; width: 35%; }
tr.changed td { background: var(--chg); } tr.rewritten td { background: var(--rew); }
.tag { font-size: 11px; border-radius: 3px; padding: 0 4px; margin-left: 4px; }
.tag.changed { background: #fbc02d; } .tag.rewritten { background: #81d4fa; }
.tag.down { background: var(--bad); color: #fff; }
.tag.never { background: var(--fly); color: #fff; }
.tag.gone { background: var(--bad); color: #fff; }
.tag.meta { background: #ce93d8; }
.viol { color: var(--bad); border: 1px solid var(--bad); border-radius: 4px; padding: 4px;
  margin: 4px 0; }
#state ul { margin: 2px 0; padding-left: 18px; }
"""

_JS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("assay-data").textContent);
  var n = data.steps.length;
  var msgs = {};
  data.messages.forEach(function (m) { msgs[m.id] = m; });
  var timers = {};
  data.timers.forEach(function (t) { timers[t.id] = t; });
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function tag(cls, text) { return el("span", "tag " + cls, text); }
  function msgLine(m, withFate) {
    var li = el("li", "", "#" + m.id + " " + m.src + "." + m.src_port + " \\u2192 " + m.dst +
      "." + m.dst_port + ": " + m.text +
      (m.sent === 0 ? " (in flight from the start)" : (m.copy_of !== null ? " (a copy of #" +
        m.copy_of + " made at step " : " (sent at step ") + m.sent + ")"));
    if (m.meta) { li.appendChild(tag("meta", "meta: " + m.meta)); }
    if (withFate && m.fate === "in flight") { li.appendChild(tag("never", data.in_flight_label)); }
    if (withFate && m.fate !== "in flight" && m.fate !== "delivered") {
      li.appendChild(tag("gone", m.fate + " at step " + m.end));
    }
    li.setAttribute("data-msg", m.id);
    return li;
  }
  function list(title, ids, withFate) {
    var box = el("div");
    box.appendChild(el("h3", "", title));
    var ul = el("ul");
    ids.forEach(function (id) { ul.appendChild(msgLine(msgs[id], withFate)); });
    if (!ids.length) { ul.appendChild(el("li", "", "none")); }
    box.appendChild(ul);
    return box;
  }
  function violation(v) {
    var head = v.kind + (v.name && v.name !== v.kind ? " " + v.name : "");
    var box = el("div", "viol", "\\u2717 " + (v.message.indexOf(head) === 0 ? v.message :
      head + ": " + v.message));
    box.appendChild(el("div", "blame", "blame: " + v.blame + (v.location ? " (" +
      v.location + ")" : "")));
    return box;
  }
  function render(k) {
    var panel = document.getElementById("state");
    panel.textContent = "";
    panel.setAttribute("data-step", k);
    var st = data.states[k], step = k ? data.steps[k - 1] : null;
    panel.appendChild(el("h2", "", k ? "Step " + k + " of " + n + ": " + step.description
      : "Initial state"));
    var changed = {}, rewritten = {};
    if (step) {
      step.changes.forEach(function (c) { changed[c.instance + "." + c.field] = c; });
      step.rewritten.forEach(function (c) { rewritten[c.instance + "." + c.field] = c; });
      step.violations.forEach(function (v) { panel.appendChild(violation(v)); });
    }
    if (data.violation && data.violation_step === k &&
        !(step && step.violations.length)) {
      panel.appendChild(violation(data.violation));
    }
    if (data.cycle_start !== null && k > data.cycle_start) {
      panel.appendChild(el("div", "sub", "in the cycle: steps " + (data.cycle_start + 1) +
        "\\u2013" + n + " repeat forever"));
    }
    data.instances.forEach(function (name) {
      var h = el("h3", "", name);
      if (st.crashed.indexOf(name) >= 0) { h.appendChild(tag("down", "crashed")); }
      panel.appendChild(h);
      var table = el("table");
      table.setAttribute("data-instance", name);
      var fields = st.fields[name];
      Object.keys(fields).forEach(function (f) {
        var key = name + "." + f, c = changed[key], r = rewritten[key];
        var tr = el("tr", c ? "changed" : (r ? "rewritten" : ""));
        tr.setAttribute("data-field", f);
        tr.appendChild(el("td", "f", f));
        var td = el("td", "v", c ? c.old + " \\u2192 " + c.new : fields[f]);
        if (c) { td.appendChild(tag("changed", "changed")); }
        if (r) { td.appendChild(tag("rewritten", "rewritten, same value")); }
        tr.appendChild(td);
        table.appendChild(tr);
      });
      panel.appendChild(table);
    });
    if (step) {
      panel.appendChild(list("Sent at this step", step.sent, true));
      if (step.ended.length) {
        panel.appendChild(list("Taken off the network at this step", step.ended, true));
      }
    }
    panel.appendChild(list(k === n ? "In flight at the end of the run" :
      "In flight after this step", st.in_flight, true));
    if (data.timers.length) {
      var box = el("div");
      box.appendChild(el("h3", "", k === n ? "Timers pending at the end" :
        "Timers pending after this step"));
      var ul = el("ul");
      st.timers.forEach(function (id) {
        var t = timers[id];
        ul.appendChild(el("li", "", t.instance + ": " + t.text + " (delay " + t.delay + ", " +
          (t.set === 0 ? "set at the start" : "set at step " + t.set) + ")"));
      });
      if (!st.timers.length) { ul.appendChild(el("li", "", "none")); }
      box.appendChild(ul);
      panel.appendChild(box);
    }
  }
  function select(k) {
    if (!(k >= 0 && k <= n)) { k = data.violation_step !== null ? data.violation_step : n; }
    var marked = document.querySelectorAll(".selected");
    for (var i = 0; i < marked.length; i++) { marked[i].classList.remove("selected"); }
    var mine = document.querySelectorAll('[data-step="' + k + '"]');
    for (var j = 0; j < mine.length; j++) {
      if (mine[j].id !== "state") { mine[j].classList.add("selected"); }
    }
    var focus = document.querySelectorAll("g.msg.focus");
    for (var f = 0; f < focus.length; f++) { focus[f].classList.remove("focus"); }
    if (k > 0) {
      focus = document.querySelectorAll('g.msg[data-sent="' + k + '"], g.msg[data-end="' + k +
        '"]');
      for (var g = 0; g < focus.length; g++) { focus[g].classList.add("focus"); }
    }
    render(k);
    var item = document.querySelector('#steps li[data-step="' + k + '"]');
    if (item && item.scrollIntoView) { item.scrollIntoView({block: "nearest"}); }
  }
  function fromHash() {
    var m = /^#step=(\\d+)$/.exec(window.location.hash);
    select(m ? parseInt(m[1], 10) : -1);
  }
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target.closest("[data-step]") : null;
    if (t && t.id !== "state") {
      var k = t.getAttribute("data-step");
      if (window.location.hash === "#step=" + k) { select(parseInt(k, 10)); }
      else { window.location.hash = "step=" + k; }
    }
  });
  document.addEventListener("keydown", function (ev) {
    var cur = parseInt(document.getElementById("state").getAttribute("data-step"), 10);
    if (ev.key === "ArrowDown" || ev.key === "j") { window.location.hash = "step=" +
      Math.min(n, cur + 1); ev.preventDefault(); }
    if (ev.key === "ArrowUp" || ev.key === "k") { window.location.hash = "step=" +
      Math.max(0, cur - 1); ev.preventDefault(); }
  });
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
  content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>assay trace explorer: {title}</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>assay trace explorer: {title} {params}</h1>
<div class="sub">{engine} — {legend}. Click a step (or use the arrow keys) to see the global
state after it; changed fields are yellow, fields rewritten with the same value blue.</div>
{verdict}
{lasso}
</header>
<main>
<nav><div id="initial" data-step="0">initial state</div>
<ol id="steps">
{steps}
</ol></nav>
<div id="sequence">
{svg}
</div>
<section id="state" data-step=""></section>
</main>
<script type="application/json" id="assay-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""
