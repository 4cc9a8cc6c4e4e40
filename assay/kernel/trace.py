"""Traces: the unit of reproduction across engines.

A trace names the spec, the system and its parameters, and lists events by the spec's names.
`replay` runs one through the kernel's `step` from the initial state, checking at every step
that the event is enabled, and reports where it ends.  An event may also carry what its step
did when the trace was written (`"changes"`: the fields it changed, by instance, in JSON form;
`check` and `simulate` write them): replay checks that recomputing the step gives the same.
A step whose sends a full link with `full="drop"` lost records them too (`"lost"`: the
envelopes, by name); a lossy link's loss is an event of its own (`"kind": "lose"`).
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import Location, TraceError
from assay.kernel.events import Envelope, envelope_json
from assay.kernel.kernel import Change, Kernel, State
from assay.kernel.violation import Violation
from assay.model.component import FAIRNESS

Hook = Callable[[State, int, State], None]   # called after each replayed step: before, event, after

FORMAT = "assay-trace"
VERSION = 1
EVENT_KINDS = ("deliver", "action", "timer", "crash", "restart", "drop", "lose", "duplicate",
               "partition", "heal")
# keys of an event that record what its step did, not which event it is
RECORDED = ("step", "changes", "lost")


@dataclass(frozen=True)
class Step:
    """One step of a run: the event, what changed, what was sent, what broke."""

    index: int                      # 1-based
    event: int                      # the kernel's event id
    description: str
    event_json: dict[str, Any]
    changes: tuple[Change, ...]
    sent: tuple[str, ...]
    violations: tuple[Violation, ...]
    lost: tuple[Envelope, ...] = ()       # sends a full link lost (`full="drop"`)


@dataclass
class Trace:
    spec: str
    system: str
    params: dict[str, Any]
    events: list[dict[str, Any]]
    engine: str = "check"
    seed: int | None = None
    faults: dict[str, Any] | None = None
    initial: dict[str, dict[str, Any]] | None = None
    verdict: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # whether the file named the engine that wrote it (one written by hand may not: then
    # nothing is assumed of how its run was made, `_check_fault_budget` and `_check_whole`)
    engine_named: bool = True

    def to_json(self) -> dict[str, Any]:
        doc = {"format": FORMAT, "version": VERSION, "spec": self.spec, "system": self.system,
               "params": self.params, "engine": self.engine, "seed": self.seed,
               "faults": self.faults}
        if self.initial is not None:
            doc["initial"] = self.initial
        doc["events"] = [{"step": i + 1, **e} for i, e in enumerate(self.events)]
        doc["verdict"] = self.verdict
        return doc

    def write(self, path: str | Path) -> None:
        """Write the trace file, whole or not at all (`assay.outfile`): a file written again,
        as `simulate` does once a failing run is shrunk, is never seen half written, and one
        that cannot be written all (a full disk) leaves nothing behind."""
        from assay.outfile import write_whole

        write_whole(path, json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> Trace:
        """Load a trace file: untrusted input, so every way it can be wrong (not a regular
        file, too large, not UTF-8, not JSON, nested too deeply, a field of the wrong shape)
        is a `TraceError`."""
        doc = _load_json(path)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise TraceError(f"{path} is not an assay trace (no \"format\": \"{FORMAT}\")")
        if doc.get("version") != VERSION:
            raise TraceError(f"{path} has trace version {_clip(doc.get('version'))}, "
                             f"this assay reads version {VERSION}")
        for key, kinds, what in (
                ("spec", (str,), "a string"), ("system", (str,), "a string"),
                ("events", (list,), "a list"), ("params", (dict,), "an object"),
                ("engine", (str,), "a string"), ("seed", (int, type(None)), "an integer or null"),
                ("faults", (dict, type(None)), "an object or null"),
                ("initial", (dict, type(None)), "an object or null"),
                ("verdict", (dict, type(None)), "an object or null")):
            if key in doc and (not isinstance(doc[key], kinds) or isinstance(doc[key], bool)):
                raise TraceError(f"{path}: the trace's {key!r} must be {what}, not "
                                 f"{_clip(doc[key])}")
            if key in ("spec", "system", "events") and key not in doc:
                raise TraceError(f"{path}: the trace has no {key!r}")
        for k, v in doc.get("params", {}).items():
            if not isinstance(v, str | int | bool):
                raise TraceError(f"{path}: parameter {_clip(k)} of the trace must be a string, "
                                 f"an integer or a boolean, not {_clip(v)}")
        for i, e in enumerate(doc["events"], 1):
            if not isinstance(e, dict):
                raise TraceError(f"{path}: every event of the trace must be an object; event "
                                 f"{i} is {_clip(e)}")
            if e.get("kind") not in EVENT_KINDS:
                raise TraceError(f"{path}: event {i} has kind {_clip(e.get('kind'))}; the kinds "
                                 f"are {', '.join(EVENT_KINDS)}")
        if not all(isinstance(v, dict) for v in (doc.get("initial") or {}).values()):
            raise TraceError(f"{path}: the trace's 'initial' must map instances to objects "
                             "of fields")
        verdict = doc.get("verdict") or {}
        for key in ("kind", "name"):
            if not isinstance(verdict.get(key), str | None):
                raise TraceError(f"{path}: the verdict's {key!r} must be a string or null")
        # (a step of another type was not compared, and any step read as the recorded one)
        if verdict.get("step") is not None and type(verdict.get("step")) is not int:
            raise TraceError(f"{path}: the verdict's 'step' must be an integer or null, not "
                             f"{_clip(verdict.get('step'))}")
        events = [{k: v for k, v in e.items() if k != "step"} for e in doc["events"]]
        return cls(doc["spec"], doc["system"], doc.get("params", {}), events,
                   doc.get("engine", "check"), doc.get("seed"), doc.get("faults"),
                   doc.get("initial"), doc.get("verdict"), engine_named="engine" in doc)


MAX_BYTES = 64 * 1024 * 1024    # a trace of a million steps is smaller
MAX_DEPTH = 32                  # a trace nests events, messages and their values; no more


def _load_json(path: str | Path) -> Any:
    """The JSON document in a trace file, read within the bounds above."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise TraceError(f"{path} is not a regular file, so not a trace")
        if info.st_size > MAX_BYTES:
            raise TraceError(f"{path} is too large for a trace ({info.st_size:,} bytes; at "
                             f"most {MAX_BYTES // 1024 ** 2} MiB)")
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise TraceError(f"cannot read trace {path}: {e.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise TraceError(f"{path} is too large for a trace (at most {MAX_BYTES // 1024 ** 2} "
                         "MiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TraceError(f"{path} is not a text file (not UTF-8), so not a trace") from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise TraceError(f"{path}: the JSON is nested too deeply for a trace (at most "
                         f"{MAX_DEPTH} levels)") from None
    except json.JSONDecodeError as e:
        raise TraceError(f"{path} is not JSON: {e}") from None
    except ValueError as e:                  # an integer of more digits than Python converts
        raise TraceError(f"{path}: {e}") from None
    if _depth(doc) > MAX_DEPTH:
        raise TraceError(f"{path}: the JSON is nested too deeply for a trace (at most "
                         f"{MAX_DEPTH} levels)")
    return doc


def _depth(doc: Any) -> int:
    """How deeply lists and objects nest in `doc` (without recursion: it is untrusted)."""
    deepest = 0
    stack = [(doc, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, d)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((v, d + 1) for v in (node.values() if isinstance(node, dict)
                                               else node))
    return deepest


def changes_json(changes: Sequence[Change]) -> dict[str, dict[str, Any]]:
    """What a step changed, as a trace records it: instance -> field -> new value (JSON)."""
    from assay.model.types import to_json

    out: dict[str, dict[str, Any]] = {}
    for c in changes:
        out.setdefault(c.instance, {})[c.field] = to_json(c.new)
    return out


def recorded_event(step: Step) -> dict[str, Any]:
    """A step as a trace file lists it: the event, the fields it changed, and the messages a
    full link lost, if any."""
    out = {**step.event_json, "changes": changes_json(step.changes)}
    if step.lost:
        out["lost"] = [envelope_json(e) for e in step.lost]
    return out


def with_changes(kernel: Kernel, start: State, events: Sequence[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """`events` (by name, enabled in turn from `start`), each with the fields its step
    changes (computed with the kernel that ran them, so from its memo)."""
    out = []
    state = start
    for i, e in enumerate(events, 1):
        step, state = explain(kernel, state, kernel.event_id(state, e), i)
        out.append(recorded_event(step))
    return out


def _check_recorded(index: int, recorded: dict[str, Any], step: Step) -> None:
    """A `TraceError` if the trace recorded other changes for this step than replaying it
    gives (an event without `"changes"` records nothing to compare)."""
    if "lost" in recorded:
        from assay.kernel.kernel import _same_json

        have_lost = [envelope_json(e) for e in step.lost]
        if not _same_json(recorded["lost"], have_lost):
            raise TraceError(
                f"step {index}: {step.description}: the trace recorded "
                f"{_clip(recorded['lost'])} as lost to a full link, replaying loses "
                f"{_clip(have_lost)}",
                notes=["the spec changed since the trace was written (a capacity, say), or the "
                       "trace was edited"])
    if "changes" not in recorded:
        return
    want = recorded["changes"]
    if not isinstance(want, dict) or not all(isinstance(v, dict) for v in want.values()):
        raise TraceError(f"step {index}: 'changes' must map instances to objects of fields, "
                         f"not {_clip(want)}")
    have = changes_json(step.changes)
    from assay.kernel.kernel import _same_json

    if _same_json(want, have):
        return
    keys = sorted({(inst, f) for side in (want, have) for inst, fs in side.items() for f in fs})
    diffs = []
    for inst, f in keys:
        w = want.get(inst, {}).get(f, _UNCHANGED)
        h = have.get(inst, {}).get(f, _UNCHANGED)
        if w is _UNCHANGED or h is _UNCHANGED or not _same_json(w, h):
            diffs.append(f"{inst}.{f}: the trace recorded {_shown(w)}, replaying gives "
                         f"{_shown(h)}")
    raise TraceError(
        f"step {index}: {step.description}: replaying it does not give what the trace "
        f"recorded: {'; '.join(diffs[:4])}" + (f"; and {len(diffs) - 4} more"
                                              if len(diffs) > 4 else ""),
        notes=["the spec changed since the trace was written, the trace was edited, or a "
               "handler depends on something outside its state (time, randomness, set "
               "order)"])


_UNCHANGED = object()


def _shown(v: Any) -> str:
    return "no change" if v is _UNCHANGED else _clip(v)


def _shell(path: str) -> str:
    """A path as a shell word (quoted if need be), or escaped if it holds a character a
    terminal would act on."""
    import shlex

    return shlex.quote(path) if path.isprintable() else repr(path)


def _clip(v: Any, most: int = 80) -> str:
    """A JSON value for a message, cut short: a trace file is untrusted input."""
    text = json.dumps(v) if not isinstance(v, str) else repr(v)
    return text if len(text) <= most else text[:most] + "..."


def explain(kernel: Kernel, before: State, ev: int, index: int,
            enabled: bool = False) -> tuple[Step, State]:
    """Run one step and describe it for a person.  `enabled`: `ev` is known to be enabled in
    `before` (a replay that checked it took it there): `apply`, not `step`, which checks it
    again."""
    if enabled:
        after, sent, viol = kernel.apply(before, ev)
        sends = tuple(str(kernel.envs[s]) for s in sent)
    else:
        res = kernel.step(before, ev)
        after, sends, viol = res.state, tuple(str(e) for e in res.sends), res.violations
    step = Step(index, ev, kernel.describe(ev), kernel.event(ev).to_json(),
                tuple(kernel.changes(before, after)), sends, viol, kernel.lost(before, ev))
    return step, after


def initial_json(kernel: Kernel, state: State) -> dict[str, dict[str, Any]]:
    from assay.model.types import to_json

    return {inst.name: {f: to_json(v) for f, v in kernel.local_values(state, inst.name).items()}
            for inst in kernel.instances}


def run_events(kernel: Kernel, events: list[dict[str, Any]]
               ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """A runtime run's recorded events as a trace's initial state and events: the start
    steps whose hooks chose are recorded as "start" events (the model counts a start in the
    initial state, not as a step), which pick the run's initial state among the model's."""
    chose = {e.get("instance"): e.get("choices") for e in events if e.get("kind") == "start"}
    state = kernel.run_initial(chose)                # type: ignore[arg-type]
    return initial_json(kernel, state), [e for e in events if e.get("kind") != "start"]


def find_initial(kernel: Kernel, initial: dict[str, dict[str, Any]] | None) -> State:
    """The initial state a trace starts from (the first one when it does not say)."""
    states = [s for s, _ in kernel.initial_states()]
    if initial is None:
        return states[0]
    for s in states:
        if initial_json(kernel, s) == initial:
            return s
    raise TraceError("the trace's initial state is not an initial state of this system",
                     notes=["the spec or its parameters changed since the trace was written"])


@dataclass(frozen=True)
class Replayed:
    """A trace run through the kernel: its steps, where it ended, and the first violation
    (a step's, a property's, or a deadlock at the end)."""

    steps: list[Step]
    state: State
    violation: Violation | None


def replay_checked(kernel: Kernel, events: Sequence[dict[str, Any]], start: State,
                   on_step: Hook | None = None) -> Replayed:
    """Replay `events`, checking properties after every step; stop at the first violation."""
    steps: list[Step] = []
    state = start
    # an initial state may break an invariant (or its start hook a contract) before any step
    pv = next((v for s, v in kernel.initial_states() if s == start and v), None) \
        or kernel.property_violations(state)
    if pv:
        return Replayed(steps, state, pv[0])
    for i, e in enumerate(events, 1):
        try:
            ev = kernel.event_id(state, e)
        except TraceError as err:
            raise TraceError(f"step {i}: {err.message}", notes=[
                *err.notes,
                "the event is not enabled at this point of the run: the spec changed, or a "
                "handler depends on something outside its state (set order, time, randomness)"]
            ) from None
        before = state
        step, state = explain(kernel, state, ev, i)
        _check_recorded(i, e, step)
        if on_step is not None:
            on_step(before, ev, state)
        steps.append(step)
        if step.violations:
            return Replayed(steps, state, step.violations[0])
        pv = kernel.property_violations(state)
        if pv:
            return Replayed(steps, state, pv[0])
    if not kernel.can_progress(state) and not kernel.is_terminal(state):
        return Replayed(steps, state, kernel.deadlock())
    return Replayed(steps, state, None)


def replay(kernel: Kernel, events: Sequence[dict[str, Any]], start: State
           ) -> tuple[list[Step], State]:
    """Run `events` from `start`; every event must be enabled where it occurs."""
    steps: list[Step] = []
    state = start
    for i, e in enumerate(events, 1):
        try:
            ev = kernel.event_id(state, e)
            step, state = explain(kernel, state, ev, i)
        except TraceError as err:
            raise TraceError(f"step {i}: {err.message}", notes=[
                "the event is not enabled at this point of the run: the spec changed, or a "
                "handler depends on something outside its state (set order, time, randomness)"]
            ) from None
        _check_recorded(i, e, step)
        steps.append(step)
    return steps, state


@dataclass(frozen=True)
class ReplayResult:
    steps: list[Step]
    violation: Violation | None
    instances: list[str]
    initial: dict[str, dict[str, Any]]
    time: int | None            # virtual time at the end (simulator engine)
    cycle_start: int | None = None      # a liveness lasso: the steps after it repeat
    note: str | None = None             # why a recorded lasso shows no violation
    kernel: Kernel | None = None        # the kernel it was replayed through, from `start`
    start: State | None = None


def trace_spec(trace: Trace, trace_path: str | Path, confine: str | None = None) -> str:
    """The spec file the trace names, found as written or beside the trace file.

    A trace is untrusted (a file received from someone else): it names the file replay runs
    as Python code.  Only a spec file (.py) is run, and with `confine` (a directory: the
    current one, for `assay replay`) only one inside it, symbolic links resolved; a spec
    elsewhere is a `TraceError` that names it and says how to confirm it (`--spec`)."""
    spec = trace.spec
    if not spec.endswith(".py"):
        # an error would quote it: only spec files are run (and so quoted)
        raise TraceError(f"the trace's spec {_clip(spec)} is not a Python file (.py)",
                         notes=["a trace names the spec file it was written from"])
    if not os.path.isfile(spec):
        beside = os.path.join(os.path.dirname(os.path.abspath(trace_path)), spec)
        if os.path.isfile(beside):
            spec = beside
    if confine is not None:
        real, root = os.path.realpath(spec), os.path.realpath(confine)
        if os.path.commonpath([real, root]) != root:
            raise TraceError(
                f"the trace names the spec {_shell(real)}, outside the current directory "
                f"{_shell(root)}: replaying runs its spec as Python code, so replay runs a "
                "spec from elsewhere only when you name it", Location(str(trace_path)),
                [f"if you trust that file: assay replay {_shell(str(trace_path))} --spec "
                 f"{_shell(real)} (or run replay from its project's directory)"])
    return spec


def replay_trace(trace: Trace, trace_path: str | Path,
                 clocked: Callable[[Kernel], tuple[Hook, Callable[[], int]]] | None = None,
                 spec: str | None = None) -> ReplayResult:
    """Rebuild the trace's system from its spec and replay the trace through the kernel.

    `clocked` (the simulator's `replay_clock`) adds virtual time: given the kernel it returns
    the hook that advances a clock at each step and a function reading the clock at the end.
    The kernel knows nothing of time beyond which timers are pending.  `spec`: the spec file
    to replay against (the caller's choice); None: the one the trace names (`trace_spec`)."""
    from assay.kernel.faults import Faults
    from assay.model.load import build

    if spec is None:
        spec = trace_spec(trace, trace_path)
    params = {k: str(v).lower() if isinstance(v, bool) else str(v)
              for k, v in trace.params.items()}
    system, _, _ = build(spec, trace.system, params)
    kinds = {e.get("kind") for e in trace.events}
    faulty = bool(trace.faults) or bool(kinds & {"crash", "restart", "drop", "duplicate",
                                                 "partition", "heal"})
    verdict = trace.verdict or {}
    cycle_start = verdict.get("cycle_start") if verdict.get("kind") == "liveness" else None
    fairness = verdict.get("fairness") if cycle_start is not None else None
    if fairness is not None and fairness not in FAIRNESS:
        raise TraceError(f"the trace's fairness {_clip(fairness)} is not one of "
                         f"{', '.join(FAIRNESS)}")
    # checked before replaying, not only once the run is over: a run that ends in a
    # violation is shown with its lasso marked, so this is used either way
    if cycle_start is not None and (type(cycle_start) is not int
                                    or not 0 <= cycle_start <= len(trace.events)):
        raise TraceError(f"the trace's cycle_start {_clip(cycle_start)} is not a step of the "
                         f"run (0 to {len(trace.events)})", Location(str(trace_path)))
    # a fault may occur wherever the trace has one: the budget is not what is replayed
    # a run checked with --no-deadlock may end where nothing is enabled
    _check_fault_budget(trace)
    kernel = Kernel(system, Faults.unlimited() if faulty else None, fairness,
                    deadlock=verdict.get("deadlock") is not False)
    start = find_initial(kernel, trace.initial)
    hook, now = clocked(kernel) if clocked else (None, None)
    done = replay_checked(kernel, trace.events, start, hook)
    _check_whole(trace, done)
    violation, note = done.violation, None
    if cycle_start is not None and violation is None:
        violation, note = _lasso(kernel, verdict, start, done.steps, cycle_start)
    return ReplayResult(done.steps, violation, [i.name for i in kernel.instances],
                        initial_values(kernel, start), now() if now else None,
                        cycle_start, note, kernel, start)


# the fault events a budget counts, by the name `check --faults` and `simulate --faults` use
BUDGETED = {"drop": "drop", "duplicate": "dup", "crash": "crash", "partition": "partition"}
# and a lossy link's losses: no budget for `check`, a rate for `simulate` (0: none)
RATED = {**BUDGETED, "lose": "lose"}
# the engines whose traces end at their violation, with the budget or rates they ran under
WRITTEN_WHOLE = ("check", "simulate")


def _check_fault_budget(trace: Trace) -> None:
    """A `TraceError` naming the first fault event the run that wrote the trace could not
    have injected: beyond a `check` trace's fault budget (`"faults": {"crash": 1}`, a
    count per kind, none when null), or of a kind a `simulate` trace's rates never inject
    (rate 0).  Replay itself lets a fault occur wherever the trace has one, so without this
    an edited trace with one crash more replays as "reproduced" under a budget it breaks."""
    if trace.engine not in WRITTEN_WHOLE or not trace.engine_named or \
            (trace.engine == "simulate" and not trace.faults):
        return           # a runtime run's crashes are real; an API simulate trace says none
    recorded = trace.faults or {}
    counted = RATED if trace.engine == "simulate" else BUDGETED
    for name in counted.values():
        v = recorded.get(name, 0)
        if type(v) not in (int, float) or v != v:
            what = "rate" if trace.engine == "simulate" else "budget"
            raise TraceError(f"the trace's fault {what} {name}={_clip(v)} is not a number")
    used: dict[str, int] = {}
    for i, e in enumerate(trace.events, 1):
        key = counted.get(e.get("kind", ""))
        if key is None:
            continue
        used[key] = used.get(key, 0) + 1
        have = recorded.get(key, 0)
        if trace.engine == "simulate":
            # (the rates a trace leaves out are the defaults: 0, but for lossy links' losses)
            over = have == 0 and (key != "lose" or key in recorded)
            why = f"its fault rates inject none ({key}={have:g})"
        else:
            over = 0 <= have < used[key]          # (a negative budget is unlimited)
            why = f"its fault budget is {key}={have}" if have else \
                f"it was checked without {key} faults"
        if over:
            raise TraceError(
                f"step {i}: {e['kind']} {_clip(_fault_target(e))}: fault {used[key]} of kind "
                f"{key}, which the {trace.engine} run that wrote the trace could not inject: "
                f"{why}", notes=["the trace was edited (its events or its \"faults\")"])


def _fault_target(e: dict[str, Any]) -> Any:
    """What a fault event hits, for a message: an instance, or a message on a link."""
    if "instance" in e:
        return e["instance"]
    msg = e.get("message")
    kind = msg.get("type") if isinstance(msg, dict) else None
    return f"{kind} from {e.get('from')} to {e.get('to')}" if kind else e.get("group", "")


def _check_whole(trace: Trace, done: Replayed) -> None:
    """A `TraceError` when a `check` or `simulate` trace does not end where its verdict
    says: those engines write a run up to the step of its violation (`"step"`), so a
    verdict at a step the trace does not have means it was cut short (the failing step is
    missing: replaying to its end shows no violation, which is not the failure gone), and
    one before its last event means events were added.  (A `check --keep-going` trace may
    meet another violation before its own: replay stops there and says so.)"""
    if trace.engine not in WRITTEN_WHOLE or not trace.engine_named:
        return           # a runtime run under a logging monitor goes on past a violation
    verdict = trace.verdict or {}
    step, n = verdict.get("step"), len(trace.events)
    if type(step) is not int or step == n:
        return
    what = f"{verdict.get('kind')} {verdict.get('name') or verdict.get('blame') or ''}".strip()
    if step > n:
        v = done.violation
        met = "" if v is None else \
            f" (the replay meets {v.kind} {v.name or v.blame} at step {len(done.steps)})"
        raise TraceError(
            f"the trace is cut short: it records its violation ({what}) at step {step}, and "
            f"has {n} events", notes=[
                "the failing step is missing, so replaying cannot reproduce the recorded "
                f"violation{met}: use the whole file"])
    raise TraceError(
        f"the trace records its violation ({what}) at step {step}, but goes on to step {n}",
        notes=["the trace was edited: a run ends at its violation"])


def _lasso(kernel: Kernel, verdict: dict[str, Any], start: State, steps: list[Step],
           cycle_start: Any) -> tuple[Violation | None, str | None]:
    """Confirm a recorded liveness lasso: the cycle closes, is fair, and the property fails
    on it (`assay.kernel.liveness.check_lasso`, the checker's own definition)."""
    from assay.kernel.liveness import check_lasso

    name = verdict.get("name")
    prop = next((p for p in kernel.system.liveness if p.name == name), None)
    if prop is None:
        raise TraceError(f"the trace's liveness property {name!r} is not one of this system's",
                         notes=["the spec changed since the trace was written"])
    if type(cycle_start) is not int or not 0 <= cycle_start <= len(steps):
        raise TraceError(f"the trace's cycle_start {cycle_start!r} is not a step of the run "
                         f"(0 to {len(steps)})")
    states = [start]
    for st in steps:
        states.append(kernel.apply(states[-1], st.event)[0])
    got = check_lasso(kernel, prop, states, [st.event for st in steps], cycle_start)
    return (got, None) if isinstance(got, Violation) else (None, got)


def initial_values(kernel: Kernel, state: State) -> dict[str, dict[str, Any]]:
    return {inst.name: kernel.local_values(state, inst.name) for inst in kernel.instances}
