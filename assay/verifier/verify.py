"""`assay verify`: proof obligations per component class, discharged with Z3.

Each component class of a system is verified alone, against the contracts at its boundary,
for *every* wiring of its ports (a port's peers are a symbolic set fixed for the step; a
message's sender is one of them).  The obligations (`prove.py` does the translation):

1. `init`       every initial state of every instance (with its real wiring) satisfies each
                invariant;
2. `invariant`, `ensures`, `types`
                for each handler and action: invariant ∧ requires ∧ guard ∧ message field
                types ∧ the body completes ⇒ after the body each invariant, each ensures, and
                every bounded int field written stays in its Range (one obligation each, so a
                refutation names the contract that breaks);
3. `send`       for each send site (`send`, `broadcast`, `self.after`): its path condition ⇒
                the message's field types hold, the destination is a peer of the port, the
                delay is >= 0, and what the sending port guarantees of the message
                (`Port(where=...)`: `statements.port_contract`); whether the receiving port's
                contract follows is a connection obligation, and whether the port's protocol
                allows the send is obligation 7;
4. `requires-at-sender`
                the other half of assume-guarantee: a handler assumes its `@requires`, so
                every send site (and timer, and send of a restart hook) that reaches, in this
                system, a handler with a requires proves it of the message it sends (the step
                completes and the receiving port's contract holds ⇒ the requires holds), as
                an obligation of the *sending* component.  Only the part that reads the
                message and its sender (the sending instance) can be proved there: the
                conjuncts that read the receiver's state are reported unknown ("depends on
                the receiver's state: not proved compositionally"; `assay check` covers
                them), a requires mixing both in one expression is unknown as a whole, and a
                body that is not translated leaves each requires it may reach unknown
                (`preconditions.py`);
5. `no-exception` the body raises nothing (division by zero, a failed assert, `raise`) under
                its assumptions;
6. `restart`    (components with persistent fields or an `@on_restart` hook) an invariant
                holds again after a crash and restart;
7. `protocol`   (`conformance.py`) each send or broadcast on a port with a protocol is allowed
                by the position of its session wherever the handler, action or restart hook
                can run (after the receive and the body's earlier sends), using a relation
                between fields and positions that is inferred and proved inductive;
8. `start`      a component's `@on_start` hook: not covered yet, always unknown (`assay check`
                checks it).

And per connection (`compat.py`, `contract_obligations`): the two ends' protocols are
compatible (unknown when only one end has a protocol; for runs without a crash, said so where a
crash and restart could break the fit, or across crashes with `crashes=True`: see
`connection_obligations`), and what one end's port guarantees of
a message meets what the other assumes; `handler_obligations`: a message type a send site
sends (or a timer sets) that its receiver has no handler for is an unknown `handled`
obligation (the kernel reports its delivery as "unhandled").

Verdicts, in the order they are decided:

* **vacuous** — the assumptions (invariant ∧ requires ∧ guard ∧ message types) cannot all hold
  (checked first, so an impossible precondition never reads as a proof); for a send, its path
  condition cannot hold; for a post-condition, the body never completes;
* **proved** — Z3 finds the negated conclusion unsatisfiable;
* **refuted** — Z3 finds a model, AND the model is confirmed: its local state, message, peer
  sets and action argument are built as Python values, the real handler runs through the
  kernel's runner (`assay.kernel.exec.Runner`) with a `Wiring` for those peers, the
  assumptions are evaluated concretely (invariants, requires, guard, types) and the
  conclusion is seen to fail concretely (for `requires-at-sender`: the message this send
  site really sent, as the receiver gets it, and the requires — or its message part — run on
  it).  A model that is not confirmed gives unknown ("model not confirmed"), never refuted.
  A refuted handler or action obligation also carries a suggestion (`suggest.py`): the
  weakest condition found on the step's inputs under which it would hold, where it belongs
  (an action's guard, the receiving port's contract, a `@requires` or an `invariant`),
  re-checked through this same solver — or "no simple precondition found";
* **unknown** — with the reason: a construct the translation does not support (and its line),
  the solver's reason (e.g. timeout), or an unconfirmed model.  When an *assumption* (an
  invariant, a requires, a guard) cannot be translated, the obligation is still tried without
  it: a confirmed counterexample (whose concrete run checks the untranslated assumption too)
  is a refutation, anything else is unknown — never proved.

Every handler and action gets at least its `no-exception` obligation, so none is silent.
An action has no `requires` (it has no caller: its only precondition is its guard, and
`@requires` on one is a spec error).
Exit codes: 0 all proved, 1 some refuted, 3 none refuted but some unknown or vacuous
(vacuous is not a proof).

Decisions:

* Compositional: a handler is verified for every wiring of its component's ports (and every
  sender among the peers), so a proof holds in any system; a refutation's peers are the
  model's, not necessarily the system's.  Two exceptions: initial states are the system's
  instances' initial values (class defaults, `s.add(..., field=...)` overrides, `one_of`
  choices; with `initially`, exactly the states listed or kept by the predicates, which are
  evaluated on concrete values, never translated, and encoded one by one) with their real
  wiring; and which handlers a send reaches, for
  `requires-at-sender`, is the system's wiring (a send to one peer is proved for every
  connected receiver).
* Protocols (session types on ports) are part of the obligations in two halves, both needed
  before "the protocols fit" is said: every connection's automata are compatible
  (`assay.verifier.compat`), and every send of the code is allowed where it is made — the
  `protocol` obligations of `assay.verifier.conformance`, which reason about session
  positions and confirm a refutation by running the handler with protocols on and by a run
  of the component, from its initial states, that reaches the break.  The obligations 1-5
  are about fields alone: their confirmation runs the handler with protocols off, so a local
  state there is its fields.
* One Z3 solver per run, one frame per handler (its premise, checked for vacuity once), one
  per group of goals with the same extra assumptions, one per goal; the timeout applies to
  each check.
* Restarts: the kernel checks the invariant after a restart, so components with persistent
  fields or a restart hook get `restart` obligations (persistent fields keep their values,
  the others take one of their initial values — with `initially`, those of an initial state
  that agrees with the persistent fields when one does — then the hook runs).
* Beside each premise, group and goal the solver holds `prove.background`'s facts (sizes of
  sets, named peers), and a model goes through `prove.finite_model` (its sets finite, their
  sizes exact, where it can) before it is confirmed.
"""
from __future__ import annotations

import ast
import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import z3

from assay.errors import Location, UsageError
from assay.kernel.exec import Runner, UnconnectedSend
from assay.model.component import ActionInfo, ComponentInfo, HandlerInfo, component_info
from assay.model.composite import describe, group_connections
from assay.model.mapping import Map
from assay.model.message import Message
from assay.model.system import System
from assay.model.types import Peer, to_json
from assay.model.validate import _send_site, validate
from assay.verifier import preconditions, prove, source, statements
from assay.verifier import types as vtypes
from assay.verifier.concrete import (
    Scenario,
    correlated,
    holds,
    initial_choices,
    initial_rows,
    real_wiring,
    runner_for,
    spawned_with_values,
)
from assay.verifier.prove import ComponentEncoding
from assay.verifier.types import (
    PEER,
    ModelReader,
    MsgObj,
    SelfObj,
    Ty,
    Unbound,
    Unsupported,
    Val,
    to_z3,
)

VERDICTS = ("proved", "refuted", "vacuous", "unknown")
REQUIRES_AT_SENDER = "requires-at-sender"


# --- results --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Counterexample:
    """Concrete values that break an obligation, confirmed by running the real handler."""

    instance: str
    fields: dict[str, Any]
    ports: dict[str, tuple[str, ...]]
    message: Message | None
    arg: Any
    has_arg: bool
    after: dict[str, Any] | None     # the state after the step, when it completed
    line: int | None                 # the line that breaks
    detail: str                      # what the concrete run showed
    scenario: Scenario | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "fields": {k: to_json(v) for k, v in self.fields.items()},
            "ports": {k: list(v) for k, v in self.ports.items()},
            "message": None if self.message is None else {
                **self.message.to_json(), "sender": self.message.sender},
            "arg": to_json(self.arg) if self.has_arg else None,
            "after": None if self.after is None else {k: to_json(v)
                                                       for k, v in self.after.items()},
            "line": self.line, "detail": self.detail,
        }


@dataclass(frozen=True)
class Obligation:
    """One proof obligation and its verdict."""

    component: str          # the component class
    target: str             # the handler or action, "initial state" or "restart"
    kind: str               # init | invariant | ensures | types | send | no-exception | restart
                            # | requires-at-sender | protocol (conformance.py)
                            # | start (not covered yet: always unknown) | compatibility
                            # | contract
    title: str
    location: Location | None
    verdict: str            # proved | refuted | vacuous | unknown
    reason: str = ""
    counterexample: Counterexample | None = None
    seconds: float = 0.0
    # Evaluates the obligation on a concrete scenario: (assumptions hold, conclusion holds,
    # what happened).  Used to confirm refutations; tests use it to re-check proofs.
    evaluate: Callable[[Scenario], tuple[bool, bool, str]] | None = \
        field(default=None, compare=False, repr=False)
    witness: tuple[str, ...] = ()       # a connection's shortest failing exchange, or the run
                                        # that breaks a `protocol` obligation
    # a refuted handler obligation: the re-checked precondition (or invariant) that would
    # make it proved, or Suggestion(kind="none") when none was found (`assay.verifier.suggest`)
    suggestion: Any = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"component": self.component, "target": self.target, "kind": self.kind,
                "title": self.title,
                "location": str(self.location) if self.location else None,
                "verdict": self.verdict, "reason": self.reason or None,
                "counterexample": self.counterexample.to_json() if self.counterexample
                else None, "witness": list(self.witness) or None,
                "suggestion": self.suggestion.to_json() if self.suggestion else None,
                "seconds": round(self.seconds, 6)}


@dataclass(frozen=True)
class VerifyReport:
    """Every obligation of the verified components, in order, and the time taken."""

    system: str
    components: tuple[str, ...]
    obligations: tuple[Obligation, ...]
    seconds: float
    nothing_to_verify: tuple[str, ...] = ()   # components without handlers, actions or invariants
    not_checked: tuple[str, ...] = ()         # interrupted: what was not decided (see verify)
    interrupted: bool = False                 # Ctrl-C stopped it
    spec: str = ""                            # the spec file, when known (`assay.verify`)
    params: dict[str, Any] = field(default_factory=dict)   # the system's parameters
    composites: tuple[str, ...] = ()          # each composite: its instances and exports
    # the system's properties (always, eventually, ...): no obligation of verify proves them,
    # so its "every obligation proved" is not about them (`assay check` decides)
    properties: tuple[str, ...] = ()
    # what a person should look at even when all is proved (`assay.api.spec_warnings`)
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every obligation proved."""
        return self.verdict == "proved" and not self.interrupted

    def text(self) -> str:
        """The report `assay verify` prints, as plain text."""
        from assay.report import verify_text

        return verify_text(self)

    def __repr__(self) -> str:
        from assay.report import verify_repr

        return verify_repr(self)

    def _repr_html_(self) -> str:
        from assay.report import verify_html

        return verify_html(self)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for o in self.obligations:
            out[o.verdict] += 1
        return out

    @property
    def verdict(self) -> str:
        c = self.counts()
        if c["refuted"]:
            return "refuted"
        if c["unknown"] or c["vacuous"]:
            return "unknown"
        return "proved"

    @property
    def stated(self) -> str:
        """The verdict a summary states (JSON, repr, HTML): `verdict`, except "unknown" for a
        run stopped (Ctrl-C) with every obligation decided so far proved — not every
        obligation was, so nothing says "proved"."""
        return "unknown" if self.interrupted and self.verdict == "proved" else self.verdict

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130                        # 128 + SIGINT, as a shell reports Ctrl-C
        return {"proved": 0, "refuted": 1, "unknown": 3}[self.verdict]

    def find(self, component: str | None = None, target: str | None = None,
             kind: str | None = None) -> list[Obligation]:
        return [o for o in self.obligations
                if (component is None or o.component == component)
                and (target is None or o.target == target)
                and (kind is None or o.kind == kind)]

    def to_json(self) -> dict[str, Any]:
        n = len(self.obligations)
        return {"verdict": self.stated, "counts": self.counts(), "obligations_total": n,
                "seconds": round(self.seconds, 6),
                "obligations_per_second": round(n / self.seconds, 1) if self.seconds else None,
                "stopped": "interrupted" if self.interrupted else "completed",
                "not_checked": list(self.not_checked),
                "components": list(self.components),
                "nothing_to_verify": list(self.nothing_to_verify),
                "composites": list(self.composites),
                "properties_not_covered": list(self.properties),
                "warnings": list(self.warnings),
                "obligations": [o.to_json() for o in self.obligations]}


# --- connections: the protocols at both ends must fit --------------------------------------------

def connection_obligations(system: System, bound: int = 3,
                           crashes: bool = False) -> list[Obligation]:
    """One obligation per connection whose ends both carry a protocol: compatible (proved),
    incompatible (refuted, with the shortest witness), or compatible only up to the buffer
    bound that was reached (unknown, said so).

    Crashes (`compat`'s module docstring): a restarted instance starts the sessions of its
    ports that are not `persistent=True` again, while its peer goes on (`check --faults
    crash=1` reports what follows as a protocol violation or a deadlock).  Without `crashes`
    the obligation is about runs without a crash, and says so ("no crash" in its title, the
    reason and witness of what may break after one) where a crash could break the fit.  With
    `crashes` the crash case is the obligation: proved where the fit holds across crashes,
    else unknown with the run — never refuted: that run is one of the protocols, where each
    side may rest wherever its protocol has it send next, and so crash there, while a handler
    that receives and answers in one step never rests between the two (specs/account_service
    is such a case: `check --faults crash=2` holds), so `check --faults crash=1` decides."""
    from assay.verifier.compat import CRASH_BREAKS, CRASH_NOTE, Compatibility, connections

    out = []
    links = {(f"{c.a.instance}.{c.a.port}", f"{c.b.instance}.{c.b.port}"): c
             for c in (*system.connections, *system.hops)}

    def fits(c: Compatibility) -> bool:
        return c.ok and not c.bounded

    for plain, crash in zip(connections(system, bound), connections(system, bound, True)):
        t0 = time.perf_counter()
        conn = links[(plain.a, plain.b)]
        if plain.problem is not None and plain.problem.startswith("not checked"):
            one_sided = _one_sided(system, conn)
            if one_sided is not None:
                out.append(Obligation("connection", f"{plain.a} ~ {plain.b}", "compatibility",
                                      f"the protocols at {plain.a} and {plain.b} are "
                                      "compatible", None, "unknown", one_sided, None,
                                      time.perf_counter() - t0))
            continue
        # a run without a crash that breaks the fit is the shorter story: it comes first
        c = crash if crashes and fits(plain) else plain
        crash_breaks = fits(plain) and not fits(crash)
        how = ", ".join([system.network + " network"]
                        + (["lossy"] if conn.lossy else [])
                        + ([f"capacity {conn.capacity}"
                            + (", a send to a full link is lost" if conn.full == "drop" else "")]
                           if conn.capacity is not None else [])
                        + (["across crashes and restarts"] if crashes
                           else ["no crash"] if crash_breaks else []))
        title = f"the protocols at {c.a} and {c.b} are compatible ({how})"
        witness = c.witness
        if not c.ok and c is crash:
            verdict, reason = "unknown", (
                f"{CRASH_BREAKS}: {c.problem}; a run of the protocols, which this code may "
                "never make (a crash between a receive and the reply sent in the same step "
                "cannot happen): assay check --faults crash=1 decides")
        elif not c.ok:
            verdict, reason = "refuted", c.problem or ""
        elif c.bounded:
            verdict, reason = "unknown", (f"compatible with at most {c.bound} messages in "
                                          "flight each way; a longer run was not explored")
        else:
            verdict, reason = "proved", ""
        if crash_breaks and not crashes:
            reason = CRASH_NOTE + ": " + (
                f"{crash.problem}" if not crash.ok else
                f"compatible with at most {crash.bound} messages in flight each way")
            witness = crash.witness
        out.append(Obligation("connection", f"{c.a} ~ {c.b}", "compatibility", title, None,
                              verdict, reason, None, time.perf_counter() - t0,
                              witness=witness))
    return out


def _one_sided(system: System, conn: Any) -> str | None:
    """Why a connection with a protocol at one end only is not shown to fit (None when both
    ends, or neither, have one).  The kernel checks each message against the receiving
    port's protocol, so what the end without one sends may break the other's: `check`
    finds it, nothing here proves it cannot happen."""
    from assay.model.component import component_info

    ends = [(f"{e.instance}.{e.port}", component_info(system.instances[e.instance])
             .automata.get(e.port)) for e in (conn.a, conn.b)]
    bare = [name for name, a in ends if a is None]
    if len(bare) != 1:
        return None
    other = next(name for name, a in ends if a is not None)
    return (f"{bare[0]} has no protocol, so what it sends is not checked against the protocol "
            f"of {other} (give {bare[0]} one, e.g. the dual of {other}'s; `assay check` "
            "checks the messages of a concrete run)")


def contract_obligations(system: System, timeout: float = 5.0,
                         sends: dict[type, set[tuple[str, type]] | None] | None = None
                         ) -> list[Obligation]:
    """One obligation per connected pair of ports and message type that the receiving port
    has a contract for (`Port(where=...)`): what the sending port guarantees of that type
    (nothing, without a contract of its own) implies what the receiving port assumes, for
    every message of the type's fields.  A refutation gives the message, confirmed by
    evaluating both contracts on it.

    No obligation where the sender cannot send the type on that port: its port's protocol
    has no such send, or `sends` (the (port, type) of every send site of its class, from
    `verify`'s translations; None: not all translated) has none.  Where it is not known, a
    mismatch is unknown, not refuted: the sender may never send one."""
    sends = sends or {}
    solver = vtypes.Solver()
    solver.set("timeout", max(1, int(timeout * 1000)))
    seen: set[tuple[type, str, type, str, type]] = set()
    out: list[Obligation] = []
    # with interceptors (`connect(..., via=)`) the receiving end gets what the last one on
    # the chain sends, which may be transformed: each hop is a connection (its sending side
    # guarantees what the next one assumes), not the endpoints' pair
    for c in (*(c for c in system.connections if not c.via), *system.hops):
        for src, dst in ((c.a, c.b), (c.b, c.a)):
            s_cls, d_cls = system.instances[src.instance], system.instances[dst.instance]
            s_info, d_info = component_info(s_cls), component_info(d_cls)
            for mtype, assumed in d_info.ports[dst.port].where.items():
                key = (s_cls, src.port, d_cls, dst.port, mtype)
                if key in seen:
                    continue
                seen.add(key)
                auto = s_info.automata.get(src.port)
                if auto is not None and not any(d == "send" and m is mtype
                                                for (_, d, m) in auto.trans):
                    continue                     # its protocol never sends one there
                known = sends.get(s_cls)
                if known is not None and (src.port, mtype) not in known:
                    continue                     # every body translated: none sends one
                guaranteed = s_info.ports[src.port].where.get(mtype)
                ob = _contract_obligation(solver, f"{src.instance}.{src.port}",
                                          f"{dst.instance}.{dst.port}", s_info, d_info,
                                          dst.port, mtype, guaranteed, assumed)
                if ob.verdict == "refuted" and known is None:
                    ob = replace(ob, verdict="unknown", reason=(
                        f"{ob.reason} — if it sends one: assay cannot tell whether "
                        f"{s_cls.__name__} sends a {mtype.__name__} on {src.port} (not all "
                        "of its handlers are translated)"))
                out.append(ob)
    return out


def handler_obligations(system: System, sends: dict[type, set[tuple[str, type]] | None]
                        ) -> list[Obligation]:
    """A message delivered where the receiver has no handler for it is a violation of the
    sender ("unhandled"), and so is a timer whose message the component does not handle.
    For each send site of a class whose bodies are all translated (`sends`: its (port,
    type)s, a timer's with port ""), every receiver it reaches in this system needs a
    handler for the type on that port.  Where one has none the obligation is unknown (the
    send may be unreachable: `check` decides), never left out: without it `verify` said
    "every obligation proved" of a system that `check` refutes at the first delivery."""
    out: list[Obligation] = []
    seen: set[tuple[str, str, type]] = set()

    def add(target: str, component: str, what: str, why: str) -> None:
        out.append(Obligation(component, target, "handled", what, None, "unknown", why))

    for c in (*(c for c in system.connections if not c.via), *system.hops):
        for src, dst in ((c.a, c.b), (c.b, c.a)):
            known = sends.get(system.instances[src.instance])
            d_cls = system.instances[dst.instance]
            d_info = component_info(d_cls)
            for port, mtype in sorted(known or (), key=lambda pt: (pt[0], pt[1].__name__)):
                a, b = f"{src.instance}.{src.port}", f"{dst.instance}.{dst.port}"
                if port != src.port or d_info.handler_for(dst.port, mtype) is not None \
                        or (a, b, mtype) in seen:
                    continue
                seen.add((a, b, mtype))
                add(f"{a} ~ {b}", "connection",
                    f"every {mtype.__name__} {a} sends has a handler at {b}",
                    f"{system.instances[src.instance].__name__} sends {mtype.__name__} on "
                    f"{src.port}, and {d_cls.__name__} has no handler for it on {dst.port} "
                    f"(add @on({mtype.__name__}) to {d_cls.__name__}, or show the send "
                    "unreachable: `assay check` reports a delivery as 'unhandled')")
    for cls, known in sends.items():
        info = component_info(cls)
        for port, mtype in sorted(known or (), key=lambda pt: (pt[0], pt[1].__name__)):
            if port == "" and info.timer_handler(mtype) is None:
                add("timers", cls.__name__, f"every timer's {mtype.__name__} has a handler",
                    f"{cls.__name__} sets a timer with {mtype.__name__} and has no handler "
                    f"for it (add @on({mtype.__name__}); `assay check` reports it as "
                    "'unhandled')")
    return out


def _contract_obligation(solver: z3.Solver, src: str, dst: str, s_info: ComponentInfo,
                         d_info: ComponentInfo, port: str, mtype: type, guaranteed: Any,
                         assumed: Any) -> Obligation:
    t0 = time.perf_counter()
    gives = f"what {src} guarantees" if guaranteed is not None else f"anything {src} sends"
    title = f"{gives} of {mtype.__name__} meets what {dst} assumes"
    where = d_info.ports[port].location

    def done(verdict: str, reason: str = "", witness: tuple[str, ...] = ()) -> Obligation:
        return Obligation("connection", f"{src} ~ {dst}", "contract", title, where, verdict,
                          reason, None, time.perf_counter() - t0, witness=witness)

    d_enc, s_enc = encoding(d_info), encoding(s_info)
    msg, assume = d_enc.message(mtype, port)
    opaque = [n for n, v in msg.fields.items() if not isinstance(v, Val)]
    if opaque:
        return done("unknown", f"field {opaque[0]} of {mtype.__name__} has a type the "
                               "verifier does not translate")
    try:
        premise = list(assume)
        if guaranteed is not None:
            premise.append(s_enc.predicate(guaranteed, [msg]))
        goal = d_enc.predicate(assumed, [msg])
    except Unsupported as u:
        return done("unknown", f"not translated: {u}")
    solver.push()
    try:
        solver.add(*premise, z3.Not(goal))
        r = solver.check()
        if r == z3.unsat:
            return done("proved")
        if r == z3.unknown:
            return done("unknown", f"the solver gave up: {solver.reason_unknown()}")
        reader = vtypes.ModelReader(solver.model(), set())
        fields = {n: reader.value(v) for n, v in msg.fields.items()}
    finally:
        solver.pop()
    try:                      # confirmed on the real message, by the contracts themselves
        m = mtype(**fields)
        confirmed = (guaranteed is None or bool(guaranteed(m))) and not bool(assumed(m))
    except Exception as e:
        return done("unknown", f"model not confirmed: {type(e).__name__}: {e}")
    if not confirmed:
        return done("unknown", "model not confirmed: the contracts evaluate otherwise on "
                               f"{m!r}")
    return done("refuted", f"{src} may send {m!r}, which {dst} does not accept",
                (f"{src} -> {dst}: {m!r}",))


# --- the entry point ------------------------------------------------------------------------------

def verify(system: System, component: str | None = None, timeout: float = 5.0,
           crashes: bool = False) -> VerifyReport:
    """Generate and discharge the proof obligations of each component class of `system` (or
    only `component`, a class or instance name); `timeout` is per obligation, in seconds;
    `crashes`: the connections' protocols must fit also across crashes and restarts (see
    `connection_obligations`)."""
    if not (timeout > 0):
        raise UsageError(f"--timeout must be positive, got {timeout}")
    validate(system)
    # translations read module globals as constants (`prove`); a spec's system function may
    # set them from its parameters, so one built with other parameters in this process must
    # not reuse the last one's translations
    _ENCODINGS.clear()
    t0 = time.perf_counter()
    classes: dict[type, list[str]] = {}
    for name, cls in system.instances.items():
        classes.setdefault(cls, []).append(name)
    if component is not None:
        chosen = [c for c in classes if c.__name__ == component] or \
                 [cls for cls, names in classes.items() if component in names]
        if not chosen:
            raise UsageError(f"system {system.name!r} has no component {component!r}",
                             notes=["components: " + ", ".join(
                                 sorted({c.__name__ for c in classes}))])
        classes = {c: classes[c] for c in chosen}
    solver = vtypes.Solver()
    solver.set("timeout", max(1, int(timeout * 1000)))
    out: list[Obligation] = []
    empty = []
    sends: dict[type, set[tuple[str, type]] | None] = {}
    from assay.verifier.conformance import conformance_obligations

    done: list[type] = []
    comp: _Component | None = None
    stage = "components"
    try:
        for cls, names in classes.items():
            before = len(out)
            comp = _Component(system, cls, names, solver, timeout)
            comp.run(out)
            out += conformance_obligations(system, cls, names, timeout)
            done.append(cls)
            sends[cls] = comp.sends
            if len(out) == before:
                empty.append(cls.__name__)
        if component is None:
            stage = "connections"
            out += connection_obligations(system, crashes=crashes)
            stage = "port contracts"
            out += contract_obligations(system, timeout, sends)
            out += handler_obligations(system, sends)
    except KeyboardInterrupt:               # Ctrl-C: what was decided, and what was not
        clear_caches()                      # a translation may have been cut half-way
        left = _not_checked(classes, done, comp, stage,
                            component is None and bool(system.connections), out)
        return VerifyReport(system.name, tuple(c.__name__ for c in classes), tuple(out),
                            time.perf_counter() - t0, tuple(empty), left, interrupted=True)
    out = group_connections(system, out)      # a composite's inside and boundary apart
    return VerifyReport(system.name, tuple(c.__name__ for c in classes), tuple(out),
                        time.perf_counter() - t0, tuple(empty), composites=describe(system),
                        properties=tuple(p.name for p in (*system.properties,
                                                          *system.liveness)))


def _not_checked(classes: dict[type, list[str]], done: list[type],
                 current: _Component | None, stage: str, whole: bool,
                 out: list[Obligation]) -> tuple[str, ...]:
    """What an interrupted `verify` did not decide: `Class.target` for the rest of the
    component it was in (the first one "(in part)" if some of its obligations were decided),
    `Class` for those it did not reach, then the connections and port contracts."""
    left: list[str] = []
    if stage == "components":
        if current is not None and current.cls not in done:
            name = current.cls.__name__
            rest = current.plan()[getattr(current, "finished", 0):]
            left += [f"{name}.{n}" for n in rest]
            if rest and any(o.component == name and o.target == rest[0] for o in out):
                left[0] += " (in part)"
        left += [cls.__name__ for cls in classes
                 if cls not in done and (current is None or cls is not current.cls)]
    if whole:
        stages = ["connections", "port contracts"]
        left += stages[stages.index(stage):] if stage in stages else stages
    return tuple(left)


_ENCODINGS: dict[type, ComponentEncoding] = {}


def clear_caches() -> None:
    """Forget cached encodings and translations."""
    _ENCODINGS.clear()
    source.clear_caches()
    preconditions.clear_caches()


def encoding(info: ComponentInfo) -> ComponentEncoding:
    """The Z3 vocabulary of a component class (cached: translations are reused)."""
    enc = _ENCODINGS.get(info.cls)
    if enc is None:
        sent = {p for p in info.ports if _send_site(info.cls, p) is not None}
        enc = _ENCODINGS[info.cls] = ComponentEncoding(info, sent)
    return enc


# --- obligations of one component -----------------------------------------------------------------

@dataclass
class _Goal:
    kind: str
    title: str
    line: int | None
    goal: Any = None                 # Z3 Bool, when translated
    error: str | None = None         # why it could not be translated
    evaluate: Callable[[Scenario], tuple[bool, bool, str]] | None = None
    locate: Callable[[z3.ModelRef], int | None] | None = None


@dataclass
class _Group:
    """Obligations sharing extra assumptions (a send's path condition, 'the body completes')."""

    extra: list[Any]
    unreachable: str                 # what it means when the extra assumptions cannot hold
    goals: list[_Goal]


@dataclass
class _Target:
    name: str
    fn: Any
    handler: HandlerInfo | None = None
    action: ActionInfo | None = None
    args: list[Any] | None = None        # the symbolic message or argument (suggestions)
    body: Any = None                     # the translated body (suggestions)

    @property
    def requires(self) -> tuple:
        return self.handler.requires if self.handler is not None else ()   # actions: none

    @property
    def ensures(self) -> tuple:
        return (self.handler or self.action).ensures  # type: ignore[union-attr]


class _Component:
    def __init__(self, system: System, cls: type, names: list[str], solver: z3.Solver,
                 timeout: float) -> None:
        self.system = system
        self.info = component_info(cls)
        self.cls = cls
        self.names = names
        self.solver = solver
        self.timeout = timeout
        self.enc = encoding(self.info)
        self.file = _file_of(cls)

    def loc(self, line: int | None) -> Location | None:
        return Location(self.file, line) if self.file and line else None

    # --- generation ----------------------------------------------------------------------------

    def plan(self) -> list[str]:
        """What `run` decides, in order: the initial state, each handler and action, the
        restart (the names a report lists as not checked when Ctrl-C stops it)."""
        info = self.info
        names = ["initial state"] if info.invariants else []
        names += [t.name for t in self._targets()]
        if info.invariants and any(info.persistent) or info.on_restart is not None:
            names.append("restart")
        return names

    def _targets(self) -> list[_Target]:
        info = self.info
        targets = [_Target(h.name, h.fn, handler=h) for h in
                   sorted(info.handlers.values(), key=lambda h: _line(h.location) or 0)]
        return targets + [_Target(a.name, a.fn, action=a) for a in info.actions]

    def run(self, out: list[Obligation]) -> None:
        info = self.info
        # the (port, message type) of every send site its bodies have, once all of them are
        # translated (None: some are not, so what it may send is not known)
        self.sends: set[tuple[str, type]] | None = set()
        self.finished = 0                      # how many entries of plan() are decided
        if info.invariants:
            self.initial(out)
            self.finished += 1
        for t in self._targets():
            self.target(t, out)
            self.finished += 1
        if info.invariants and any(info.persistent) or info.on_restart is not None:
            self.restart(out)
            self.finished += 1
        if info.on_start is not None:              # its obligations are not generated yet,
            try:                                   # but what it sends counts
                self._sent(prove.translate_body(self.enc, info.on_start, []))
            except Unsupported:
                self.sends = None
            hook = info.on_start
            out.append(Obligation(
                self.cls.__name__, hook.__name__, "start",
                f"the start hook {hook.__name__}: its sends and the invariants after it",
                self.loc(_first_line(hook)), "unknown",
                "not covered: verify does not prove @on_start hooks yet; `assay check` checks "
                "them"))

    def _sent(self, body: Any) -> None:
        if self.sends is not None:       # a timer's as ("", type): "" is no port's name
            self.sends |= {("" if s.kind == "timer" else s.port, s.msg.cls)
                           for s in body.sends}

    def initial(self, out: list[Obligation]) -> None:
        enc, info = self.enc, self.info
        peers: dict[str, Any] = {}
        options = []
        matchers: list[tuple[str, Any, list[list[tuple[Any, Any]]]]] = []
        error = None
        try:
            for name in self.names:
                wiring = real_wiring(self.system, name, info)
                wired = []
                for p, penc in enc.ports.items():
                    conc = to_z3(frozenset(Peer(x) for x in wiring[p]), vtypes.set_ty(PEER), peers)
                    wired.append(penc.peers.e == conc)
                if correlated(self.system, name, info):
                    # `initially`: exactly the listed (or kept) states, one option each; the
                    # predicates ran on concrete values, nothing of them is translated
                    for row in _rows(self.system, name, info):
                        option = z3.And(row_condition(enc.pre, info, row, peers) + wired)
                        options.append(option)
                        matchers.append((name, option, [[(c, None)] for c in row]))
                    continue
                conds = []
                per_field = []
                for f, choices in zip(info.fields, initial_choices(self.system, name, info)):
                    v = enc.pre[f]
                    if isinstance(v, Val):
                        eqs = [(c, v.e == to_z3(c, v.ty, peers)) for c in choices]
                        conds.append(z3.Or([e for _, e in eqs]))
                        per_field.append(eqs)
                    else:
                        per_field.append([(choices[0], None)])
                option = z3.And(conds + wired)
                options.append(option)
                matchers.append((name, option, per_field))
        except Unsupported as u:
            error = f"not translated: {u}"
        spawned = spawned_with_values(self.system, self.names)
        if spawned and not error:
            error = f"not known: {spawned}"
        if info.on_start is not None:
            # the kernel checks the invariants after the start hook, from these values
            error = (f"not covered: the @on_start hook {info.on_start.__name__} runs before the "
                     "initial state is checked; `assay check` checks it")
        premise = [z3.Or(options)] if options else []
        if len(peers) > 1:
            premise.append(z3.Distinct(*peers.values()))
        pre_self = SelfObj(dict(enc.pre))
        goals = []
        for pred, ploc in info.invariants:
            g = _Goal("init", f"initial state satisfies the invariant (line {_line(ploc)})",
                      _line(ploc), evaluate=self._eval_init(pred))
            if error:
                g.error = error
            else:
                try:
                    g.goal = enc.predicate(pred, [pre_self], key="pre")
                except Unsupported as u:
                    g.error = f"not translated: {u}"
            goals.append(g)
        self.solve("initial state", premise, [], [_Group([], "", goals)], out,
                   vacuity=False, init=matchers)

    def target(self, t: _Target, out: list[Obligation]) -> None:
        enc, info = self.enc, self.info
        pre = SelfObj(dict(enc.pre))
        old = SelfObj(dict(enc.pre), ports=False, label="old")
        premise = enc.port_assumptions() + enc.state_assumptions(enc.pre)
        dropped: list[str] = []
        args: list[Any] = []
        if t.handler is not None:
            msg, assume = enc.message(t.handler.message, t.handler.port)
            premise += assume
            args = [msg]
            contract = _port_assumption(info, t.handler, enc)
            if contract is not None:
                self._assume(premise, dropped, contract, [msg],
                             f"contract of port {t.handler.port} for "
                             f"{t.handler.message.__name__}")
            if t.handler.when is not None:          # a deferred message is not handled
                self._assume(premise, dropped, t.handler.when, [pre, msg],
                             f"receive guard (line {_first_line(t.handler.when)})")
        elif t.action is not None and t.action.over is not None:
            try:
                arg, assume = self._arg(t.action, pre)
                premise += assume
                args = [arg]
            except Unsupported as u:
                args = [None]
                dropped.append(f"the action's domain (over=) is not translated: {u}")
        for pred, ploc in info.invariants:
            self._assume(premise, dropped, pred, [pre], f"invariant (line {_line(ploc)})",
                         key="pre")
        for pred, ploc in t.requires:
            self._assume(premise, dropped, pred, [pre, *args], f"requires (line {_line(ploc)})")
        if t.action is not None and t.action.when is not None:
            self._assume(premise, dropped, t.action.when, [pre, *args],
                         f"guard (line {_first_line(t.action.when)})")
        over_error = dropped[0] if args and args[0] is None else None
        t.args = args
        groups = self._goals(t, [] if over_error else args, pre, old, over_error)
        self.solve(t.name, premise, dropped, groups, out, vacuity=True, t=t)

    def _assume(self, premise: list, dropped: list, pred: Any, args: list, what: str,
                key: Any = None) -> None:
        if any(a is None for a in args):
            dropped.append(f"the {what} is not translated (it needs the action's argument)")
            return
        try:
            premise.append(self.enc.predicate(pred, args, key=key))
        except Unsupported as u:
            dropped.append(f"the {what} is not translated: {u}")

    def _arg(self, act: ActionInfo, pre: SelfObj) -> tuple[Val, list[Any]]:
        over = act.over
        if callable(over):
            dom = self.enc.over(over, pre)
            if isinstance(dom, vtypes.RangeObj):
                a = z3.Int("arg")
                return Val(vtypes.INT, a), [dom.contains(a)]
            assert dom.ty.elem is not None
            a = z3.Const("arg", vtypes.sort_of(dom.ty.elem))
            return Val(dom.ty.elem, a), [z3.IsMember(a, dom.e)]
        try:            # a tuple of constants is a value of its tuple type
            vals = [vtypes.as_val(vtypes.py_const(v)) for v in over]
        except Unsupported:
            vals = [None]
        tys = {v.ty for v in vals if isinstance(v, Val)}
        if len(tys) != 1 or not all(isinstance(v, Val) for v in vals):
            raise Unsupported("an over= domain whose values do not all have one translatable "
                              "type")
        ty = next(iter(tys))
        a = z3.Const("arg", vtypes.sort_of(ty))
        return Val(ty, a), [z3.Or([a == v.e for v in vals])]

    def _goals(self, t: _Target, args: list[Any], pre: SelfObj, old: SelfObj,
               error: str | None = None) -> list[_Group]:
        """The goals of a handler or action, grouped by their extra assumptions; when the
        body cannot be translated (or `error` says why not), each goal is unknown."""
        enc, info = self.enc, self.info
        try:
            if error:
                raise Unsupported(error)
            body = enc.body(t.fn, args, key=t.handler.message if t.handler else "action")
            t.body = body
            self._sent(body)
        except Unsupported as u:
            self.sends = None
            why = error or f"not translated: {u}"
            goals = [_Goal("no-exception", "raises no exception", _line_of(t.fn), error=why)]
            if _sends_syntactically(t.fn):
                goals.append(_Goal("send", "its sends are well-typed", _line_of(t.fn),
                                   error=why))
            if enc.bounds:
                goals.append(_Goal("types", "keeps the bounded fields in range", _line_of(t.fn),
                                   error=why))
            for _, ploc in info.invariants:
                goals.append(_Goal("invariant", f"keeps the invariant (line {_line(ploc)})",
                                   _line(ploc), error=why))
            for _, ploc in t.ensures:
                goals.append(_Goal("ensures", f"meets its ensures (line {_line(ploc)})",
                                   _line(ploc), error=why))
            goals += self._requires_unknown(t.fn, why)
            return [_Group([], "", goals)]
        groups = []
        safe: Any = z3.BoolVal(True)
        for c in body.checks:
            safe = vtypes.conj(safe, z3.Implies(c.pc, c.ok))
        checks = body.checks
        groups.append(_Group([], "", [_Goal(
            "no-exception", "raises no exception", _line_of(t.fn), goal=safe,
            evaluate=self._eval_body(t, "no-exception"),
            locate=functools.partial(_first_failing, checks=checks))]))
        for site in body.sends:
            detail = ", ".join(d for _, d in site.parts) or "nothing to check"
            groups.append(_Group([site.pc], "the send is unreachable under the assumptions", [
                _Goal("send", f"{site.describe()} (line {site.line}): {detail}", site.line,
                      goal=site.ok, evaluate=self._eval_body(t, "send", site=site))]))
        groups += self._requires_groups(t, body.sends, body.completed)
        post = SelfObj(body.fields)
        types_ok: Any = z3.BoolVal(True)
        post_goals = []
        ranged = sorted(f for f in body.written if f in enc.bounds)
        for f in ranged:
            types_ok = vtypes.conj(types_ok, enc.bounds[f].holds(body.fields[f].e))
        if ranged:
            wl = body.wline
            post_goals.append(_Goal(
                "types", "keeps " + ", ".join(enc.bound_text(f) for f in ranged),
                _line_of(t.fn), goal=types_ok,
                evaluate=self._eval_body(t, "types", fields=ranged),
                locate=functools.partial(_bad_write, wline=wl, ranged=ranged, body=body,
                                         enc=enc)))
        for pred, ploc in info.invariants:
            g = _Goal("invariant", f"keeps the invariant (line {_line(ploc)})", _line(ploc),
                      evaluate=self._eval_body(t, "invariant", pred=pred))
            try:
                g.goal = z3.Implies(types_ok, enc.predicate(pred, [post]))
            except Unsupported as u:
                g.error = f"not translated: {u}"
            post_goals.append(g)
        for pred, ploc in t.ensures:
            g = _Goal("ensures", f"meets its ensures (line {_line(ploc)})", _line(ploc),
                      evaluate=self._eval_body(t, "ensures", pred=pred))
            try:
                g.goal = z3.Implies(types_ok, enc.predicate(pred, [old, post, *args]))
            except Unsupported as u:
                g.error = f"not translated: {u}"
            post_goals.append(g)
        if post_goals:
            groups.append(_Group([body.completed], "the body never completes under the "
                                 "assumptions (it always raises or aborts)", post_goals))
        return groups

    def restart(self, out: list[Obligation]) -> None:
        enc, info = self.enc, self.info
        pre = SelfObj(dict(enc.pre))
        premise = enc.port_assumptions() + enc.state_assumptions(enc.pre)
        dropped: list[str] = []
        for pred, ploc in info.invariants:
            self._assume(premise, dropped, pred, [pre], f"invariant (line {_line(ploc)})",
                         key="pre")
        start: dict[str, Any] = {}
        options = []
        error = None
        peers: dict[str, Any] = {}
        try:
            fresh = {}
            for f, keep in zip(info.fields, info.persistent):
                v = enc.pre[f]
                if keep or not isinstance(v, Val):
                    start[f] = v
                else:
                    fresh[f] = start[f] = Val(v.ty, z3.Const(f"{self.cls.__name__}.{f}@restart",
                                                             vtypes.sort_of(v.ty)))
            for name in self.names:
                options.append(restart_condition(self.system, name, info, fresh, enc.pre,
                                                 peers))
            premise.append(z3.Or(options))
            if len(peers) > 1:
                premise.append(z3.Distinct(*peers.values()))
            hook_sends = []
            if info.on_restart is not None:
                body = prove.translate_body(enc, info.on_restart, [], start=start)
                self._sent(body)
                post_fields = body.fields
                completed = body.completed
                hook_sends = body.sends
            else:
                post_fields, completed = start, z3.BoolVal(True)
        except Unsupported as u:
            error = f"not translated: {u}"
            self.sends = None
        goals = []
        for pred, ploc in info.invariants:
            g = _Goal("restart", f"a restart keeps the invariant (line {_line(ploc)})",
                      _line(ploc), evaluate=self._eval_restart(pred))
            if error:
                g.error = error
            else:
                try:
                    g.goal = enc.predicate(pred, [SelfObj(post_fields)])
                except Unsupported as u:
                    g.error = f"not translated: {u}"
            goals.append(g)
        extra = [] if error else [completed]
        groups = [_Group(extra, "the restart hook never completes", goals)] if goals else []
        hook = info.on_restart
        if hook is not None:
            # the hook's own body, as a handler's: it raises nothing, its sends are well-typed
            if error:
                body_goals = [_Goal("no-exception", f"the restart hook {hook.__name__} raises "
                                    "no exception", _line_of(hook), error=error)]
                if _sends_syntactically(hook):
                    body_goals.append(_Goal("send", f"the restart hook {hook.__name__}: its "
                                            "sends are well-typed", _line_of(hook),
                                            error=error))
                groups.append(_Group([], "", body_goals))
            else:
                safe: Any = z3.BoolVal(True)
                for c in body.checks:
                    safe = vtypes.conj(safe, z3.Implies(c.pc, c.ok))
                groups.append(_Group([], "", [_Goal(
                    "no-exception", f"the restart hook {hook.__name__} raises no exception",
                    _line_of(hook), goal=safe,
                    evaluate=self._eval_restart_body("no-exception"),
                    locate=functools.partial(_first_failing, checks=body.checks))]))
                for site in hook_sends:
                    detail = ", ".join(d for _, d in site.parts) or "nothing to check"
                    groups.append(_Group(
                        [site.pc], "the send is unreachable under the assumptions",
                        [_Goal("send", f"the restart hook {hook.__name__}: {site.describe()} "
                               f"(line {site.line}): {detail}", site.line, goal=site.ok,
                               evaluate=self._eval_restart_body("send", site))]))
        if hook is not None:                # what its sends must establish at their receivers
            if error:
                groups.append(_Group([], "", self._requires_unknown(hook, error)))
            else:
                groups += self._requires_groups(None, hook_sends, completed)
        if any(g.goals for g in groups):
            self.solve("restart", premise, dropped, groups, out, vacuity=True,
                       restart_fields=None if error else start)

    # --- a receiver's requires, at the send sites (`preconditions.py`) ------------------------

    def _requires_groups(self, t: _Target | None, sites: list[statements.SendSite],
                         completed: Any) -> list[_Group]:
        """For each send site (and timer) that reaches a handler with a requires in this
        system: the requires, proved of the message it sends (t None: the restart hook)."""
        enc, name = self.enc, self.cls.__name__
        # the sending instance: one of the class's, none of its ports' peers
        me = Val(PEER, z3.Const(f"{name}.name", vtypes.peer_sort()))
        facts = [z3.Not(z3.IsMember(me.e, p.peers.e)) for p in enc.ports.values()]
        groups = []
        for site in sites:
            timer = site.kind == "timer"
            msg = MsgObj(site.msg.cls, dict(site.msg.fields),
                         "m.sender of a timer, which is None" if timer else me)
            for rcv in preconditions.receivers(self.system, self.names, self.info, site.kind,
                                               site.port, site.msg.cls):
                extra = [site.pc, site.ok, completed, *([] if timer else facts)]
                if rcv.contract is not None:     # the kernel refuses what breaks it first
                    with contextlib.suppress(Unsupported):
                        extra.append(enc.predicate(rcv.contract, [msg]))
                goals = [g for pred, ploc in rcv.handler.requires
                         for g in self._requires_goals(t, site, rcv, pred, ploc, msg)]
                groups.append(_Group(extra, "the send never happens under the assumptions "
                                     "(unreachable, the step never completes, or the "
                                     "receiving port refuses what it sends)", goals))
        return groups

    def _requires_goals(self, t: _Target | None, site: statements.SendSite,
                        rcv: preconditions.Receiver, pred: Any, ploc: Location | None,
                        msg: MsgObj) -> list[_Goal]:
        where = f"{rcv.cls.__name__}.{rcv.handler.name}"
        title = (f"{site.describe()} (line {site.line}) meets the requires of {where} "
                 f"(line {_line(ploc)})")
        try:
            sp = preconditions.split(pred)
        except Unsupported as u:
            return [_Goal(REQUIRES_AT_SENDER, title, site.line, error=f"not translated: {u}")]
        out = []
        if sp.message is not None:
            g = _Goal(REQUIRES_AT_SENDER, title if sp.whole else f"{title}: `{sp.message_text}`",
                      site.line, evaluate=self._eval_sent(t, site, rcv, sp, where))
            try:
                g.goal = self.enc.predicate(sp.message, [Unbound("the receiver"), msg])
            except Unsupported as u:
                g.error = f"not translated: {u}"
            out.append(g)
        if sp.receiver_text is not None:
            out.append(_Goal(REQUIRES_AT_SENDER, f"{title}: `{sp.receiver_text}`", site.line,
                             error=preconditions.RECEIVER_STATE))
        return out

    def _requires_unknown(self, fn: Any, why: str) -> list[_Goal]:
        """A body that is not translated: each requires its sends may have to meet, unknown."""
        try:
            node = source.function_node(fn)
            calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)
                     and isinstance(n.func, ast.Attribute)]
            ports = sorted({n.func.value.attr for n in calls  # type: ignore[attr-defined]
                            if n.func.attr in ("send", "broadcast")  # type: ignore[attr-defined]
                            and isinstance(n.func.value, ast.Attribute)})  # type: ignore
            timers = any(n.func.attr == "after" for n in calls)  # type: ignore[attr-defined]
        except Unsupported:
            ports, timers = sorted(self.info.ports), True
        rcvs = [r for p in ports if p in self.info.ports
                for r in preconditions.receivers(self.system, self.names, self.info, "send", p,
                                                 None)]
        if timers:
            rcvs += preconditions.receivers(self.system, self.names, self.info, "timer", None,
                                            None)
        return [_Goal(REQUIRES_AT_SENDER, f"its sends meet the requires of "
                      f"{r.cls.__name__}.{r.handler.name} (line {_line(ploc)})",
                      _line_of(fn), error=why)
                for r in rcvs for _, ploc in r.handler.requires]

    # --- solving --------------------------------------------------------------------------------

    def solve(self, target: str, premise: list[Any], dropped: list[str], groups: list[_Group],
              out: list[Obligation], vacuity: bool, t: _Target | None = None,
              init: Any = None, restart_fields: dict[str, Any] | None = None) -> None:
        """Discharge the goals of one handler, action, initial state or restart: the premise
        once (vacuity), each group's extra assumptions once, each goal in its own frame."""
        s = self.solver
        name = self.cls.__name__
        t0 = time.perf_counter()

        def emit(g: _Goal, verdict: str, reason: str = "", cex: Counterexample | None = None,
                 started: float | None = None, suggestion: Any = None) -> None:
            out.append(Obligation(name, target, g.kind, g.title, self.loc(g.line), verdict,
                                  reason, cex, time.perf_counter() - (started or t0),
                                  g.evaluate, suggestion=suggestion))

        s.push()
        try:
            s.add(*premise)
            s.add(*prove.background(premise, s))      # valid facts: sizes of sets, named peers
            assumptions_state = None
            if vacuity and not dropped:
                r = s.check()
                if r == z3.unsat:
                    assumptions_state = ("vacuous", "its assumptions (invariant, requires, "
                                         "guard, message types) cannot all hold")
                elif r == z3.unknown:
                    assumptions_state = ("unknown", "could not decide whether its assumptions "
                                         f"can hold: {self._gave_up(s.reason_unknown())}")
            for grp in groups:
                if assumptions_state is not None:
                    for g in grp.goals:
                        if g.error:
                            emit(g, "unknown", g.error)
                        else:
                            emit(g, *assumptions_state)
                    continue
                s.push()
                try:
                    s.add(*grp.extra)
                    s.add(*prove.background(grp.extra, s))
                    group_state = None
                    if grp.extra and not dropped and any(g.error is None for g in grp.goals):
                        r = s.check()
                        if r == z3.unsat:
                            group_state = ("vacuous", grp.unreachable)
                        elif r == z3.unknown:
                            group_state = ("unknown", "could not decide whether it is "
                                           f"reached: {self._gave_up(s.reason_unknown())}")
                    for g in grp.goals:
                        started = time.perf_counter()
                        if g.error:
                            emit(g, "unknown", g.error, started=started)
                        elif group_state is not None:
                            emit(g, *group_state, started=started)
                        else:
                            self._discharge(g, dropped, emit, started, t, init,
                                            restart_fields, premise)
                finally:
                    s.pop()
        finally:
            s.pop()

    def _gave_up(self, why: str) -> str:
        if why in ("canceled", "timeout"):
            return f"the solver timed out ({self.timeout:g} s per obligation)"
        return f"the solver gave up: {why}"

    def _discharge(self, g: _Goal, dropped: list[str], emit: Callable, started: float,
                   t: _Target | None, init: Any, restart_fields: dict[str, Any] | None,
                   premise: list[Any] | None = None) -> None:
        s = self.solver
        unwired = ""
        wired: list[Any] = []      # single ports the real step sent on: connected (below)
        while True:
            s.push()
            try:
                s.add(z3.Not(g.goal), *wired)
                s.add(*prove.background([g.goal], s))
                r = s.check()
                if r == z3.unsat and wired:
                    emit(g, "unknown", unwired, started=started)
                    return
                if r == z3.unsat:
                    if dropped:
                        emit(g, "unknown", "; ".join(dropped) + " (without it, the obligation "
                             "holds)", started=started)
                    else:
                        emit(g, "proved", started=started)
                    return
                if r == z3.unknown:
                    emit(g, "unknown", self._gave_up(s.reason_unknown()), started=started)
                    return
                model = prove.finite_model(s, s.model())   # one whose sets are finite, if any
            finally:
                s.pop()
            try:
                sc = self._scenario(model, t, init, restart_fields)
            except Unsupported as u:
                emit(g, "unknown", f"model not confirmed: {u}", started=started)
                return
            try:
                ok_pre, ok_post, what = g.evaluate(sc) if g.evaluate else (False, True, "")
                if ok_pre and not ok_post:
                    cex = self._counterexample(sc, t, what, (g.locate(model) if g.locate
                                                             else None) or g.line, init)
                break
            except UnconnectedSend as e:   # a send assay did not see in the class's source
                unwired = (f"model not confirmed: the real step sends on port {e.port}, which "
                           "has no peer in the model's wiring")
                penc = self.enc.ports.get(e.port)
                if penc is None or penc.conn is None or any(c is penc.conn for c in wired):
                    emit(g, "unknown", unwired, started=started)
                    return
                wired.append(penc.conn)      # a wiring the system can have: try again
        if ok_pre and not ok_post:
            suggestion = None
            if t is not None and init is None and restart_fields is None and not dropped:
                from assay.verifier.suggest import suggest  # the solver holds premise ∧ extra
                suggestion = suggest(self, g, t, premise or [], cex)
            emit(g, "refuted", what, cex, started=started, suggestion=suggestion)
            return
        if not ok_pre:
            why = f"its state does not meet the assumptions when checked concretely ({what})"
        else:
            why = f"the real handler, run on the model's state, does not break it ({what})"
        reason = "model not confirmed: " + why
        if dropped:
            reason = "; ".join(dropped) + "; " + reason
        emit(g, "unknown", reason, started=started)

    # --- models to concrete scenarios ----------------------------------------------------------

    def _scenario(self, model: z3.ModelRef, t: _Target | None, init: Any,
                  restart_fields: dict[str, Any] | None) -> Scenario:
        """The concrete step a model describes: state, peers, message or argument."""
        enc, info = self.enc, self.info
        if init is not None:
            return self._init_scenario(model, init)
        # the Peer constants whose values must be named (and be members of the sets read)
        terms = enc.peer_terms()
        if t is not None and t.handler is not None:
            msg0, _ = enc.message(t.handler.message, t.handler.port)
            terms += [v.e for v in msg0.fields.values() if isinstance(v, Val) and v.ty == PEER]
            if isinstance(msg0.sender, Val):
                terms.append(msg0.sender.e)
        if t is not None and t.action is not None and t.action.over is not None \
                and self._arg_ty(t.action) == PEER:
            terms.append(z3.Const("arg", vtypes.peer_sort()))
        reader = ModelReader(model, set(self.system.instances) | {self.names[0]}, terms)
        values = []
        for f in info.fields:
            v = enc.pre[f]
            values.append(reader.value(v) if isinstance(v, Val) else self._sample(f))
        message, arg, has_arg = None, None, False
        if t is not None and t.handler is not None:
            mcls = t.handler.message
            msg, _ = enc.message(mcls, t.handler.port)
            fvals = [reader.value(v) if isinstance(v, Val)
                     else _sample_value(mcls.field_types()[n])  # type: ignore[attr-defined]
                     for n, v in msg.fields.items()]
            message = mcls(*fvals)
            if isinstance(msg.sender, Val):       # else: delivered as a timer, sender None
                message = message.with_sender(reader.value(msg.sender))
        elif t is not None and t.action is not None and t.action.over is not None:
            has_arg = True
            arg = self._arg_value(reader, t.action)
        restart = None
        if restart_fields is not None:
            restart = tuple(reader.value(restart_fields[f]) if isinstance(restart_fields[f], Val)
                            else values[i] for i, f in enumerate(info.fields))
        ports = {p: tuple(sorted(str(x) for x in reader.value(penc.peers)))
                 for p, penc in enc.ports.items()}
        return Scenario(self.names[0], tuple(values), ports, message, arg, has_arg, restart)

    def _arg_ty(self, act: ActionInfo) -> Ty:
        over = act.over
        if callable(over):
            dom = self.enc.over(over, SelfObj(dict(self.enc.pre)))
            if isinstance(dom, vtypes.RangeObj):
                return vtypes.INT
            assert dom.ty.elem is not None
            return dom.ty.elem
        return vtypes.py_const(over[0]).ty  # type: ignore[no-any-return]

    def _arg_value(self, reader: ModelReader, act: ActionInfo) -> Any:
        ty = self._arg_ty(act)
        return reader.value(z3.Const("arg", vtypes.sort_of(ty)), ty)

    def _init_scenario(self, model: z3.ModelRef, matchers: list) -> Scenario:
        """The instance and initial values a model of an `init` obligation picked."""
        for name, option, per_field in matchers:
            if not z3.is_true(model.eval(option, model_completion=True)):
                continue
            values = []
            for eqs in per_field:
                hit = [c for c, e in eqs if e is None
                       or z3.is_true(model.eval(e, model_completion=True))]
                if not hit:
                    break
                values.append(hit[0])
            else:
                return Scenario(name, tuple(values),
                                real_wiring(self.system, name, self.info))
        raise Unsupported("the model matches no instance's initial state")

    def _sample(self, f: str) -> Any:
        i, name = self.info.field_index[f], self.names[0]
        if correlated(self.system, name, self.info):
            return initial_rows(self.system, name, self.info)[0][i]
        return initial_choices(self.system, name, self.info)[i][0]

    def _counterexample(self, sc: Scenario, t: _Target | None, what: str, line: int | None,
                        init: bool) -> Counterexample:
        info = self.info
        after = None
        if t is not None and not init:
            new, _, viol = _bare_run(info, sc, t)
            if not viol:
                after = dict(zip(info.fields, new))
        elif sc.restart is not None:
            new, _, viol, _ = runner_for(_bare_info(info), sc).run_restart(sc.restart)
            after = dict(zip(info.fields, new)) if not viol else None
        return Counterexample(sc.instance, dict(zip(info.fields, sc.values)), sc.ports,
                              sc.message, sc.arg, sc.has_arg, after, line, what, sc)

    # --- concrete evaluation -----------------------------------------------------------------

    def _eval_init(self, pred: Any) -> Callable[[Scenario], tuple[bool, bool, str]]:
        info = self.info

        def evaluate(sc: Scenario) -> tuple[bool, bool, str]:
            ok, err = holds(info, sc, pred, [])
            return True, ok, err or f"the invariant {_text(pred)} is false in this initial state"
        return evaluate

    def _restart_premise(self, sc: Scenario) -> str | None:
        """Why a scenario is not a restart the proof assumes, or None."""
        info = self.info
        why = _state_premise(info, self.enc, sc)
        if why:
            return why
        if sc.restart is None:
            return "no restart state"
        if not any(_same_values(sc.restart, r) for name in self.names
                   for r in info.restart_values(sc.values, self.system.overrides.get(name))):
            return "not a state a restart gives"
        return None

    def _eval_sent(self, t: _Target | None, site: statements.SendSite,
                   rcv: preconditions.Receiver, sp: preconditions.Split, where: str
                   ) -> Callable[[Scenario], tuple[bool, bool, str]]:
        """Run the real step (t None: the restart hook) and the receiver's requires (its
        message part: the requires itself when nothing was split off) on what this send site
        sent, as the receiver will get it."""
        info, enc = self.info, self.enc
        text = f"`{sp.message_text}`" if sp.whole else f"part `{sp.message_text}`"
        part = sp.message
        assert part is not None

        def evaluate(sc: Scenario) -> tuple[bool, bool, str]:
            why = self._restart_premise(sc) if t is None else \
                _state_premise(info, enc, sc) or _step_premise(info, enc, t, sc)
            if why:
                return False, True, why
            runner = _Recording(runner_for(_bare_info(info), sc))
            if t is None:
                assert sc.restart is not None
                _, _, viol, _ = runner.run_restart(sc.restart)
            else:
                _, _, viol = _bare_run(info, sc, t, runner)
            if viol:          # an aborted step sends nothing
                return False, True, f"the step did not complete: {viol[0].message}"
            sent = [m for line, m in runner.sent
                    if line is not None and site.line <= line <= site.end_line
                    and type(m) is site.msg.cls]
            if not sent:
                return False, True, "this send did not happen"
            sends = "sets a timer with" if site.kind == "timer" else "sends"
            for m in sent:
                m = m.with_sender(None if site.kind == "timer" else Peer(sc.instance))
                if rcv.contract is not None:
                    try:
                        if not rcv.contract(m):
                            continue         # refused by the receiving port, before
                    except Exception:
                        continue
                try:
                    ok = part(preconditions.NoReceiver(), m)
                except preconditions.ReadsReceiver:
                    return False, True, "the requires read the receiver's state"
                except Exception as e:
                    return True, False, (f"{sc.instance} {sends} {m!r}, on which the "
                                         f"requires {text} of {where} raises "
                                         f"{type(e).__name__}: {e}")
                if not ok:
                    return True, False, (f"{sc.instance} {sends} {m!r}, which breaks the "
                                         f"requires {text} of {where}")
            return True, True, f"what it sent meets the requires of {where}"
        return evaluate

    def _eval_restart(self, pred: Any) -> Callable[[Scenario], tuple[bool, bool, str]]:
        info = self.info

        def evaluate(sc: Scenario) -> tuple[bool, bool, str]:
            why = self._restart_premise(sc)
            if why:
                return False, True, why
            assert sc.restart is not None
            runner = runner_for(_bare_info(info), sc)
            new, _, viol, _ = runner.run_restart(sc.restart)
            if viol:
                return False, True, f"the restart hook did not complete: {viol[0].message}"
            ok, err = holds(info, replace(sc, values=tuple(new)), pred, [])
            return True, ok, err or f"the invariant {_text(pred)} is false after the restart"
        return evaluate

    def _eval_restart_body(self, kind: str, site: Any = None
                           ) -> Callable[[Scenario], tuple[bool, bool, str]]:
        """A scenario of the restart hook's own obligations (`no-exception`, `send`), run
        through the kernel's restart."""
        info = self.info

        def evaluate(sc: Scenario) -> tuple[bool, bool, str]:
            why = self._restart_premise(sc)
            if why:
                return False, True, why
            assert sc.restart is not None
            _, _, viol, _ = runner_for(_bare_info(info), sc).run_restart(sc.restart)
            if kind == "no-exception":
                bad = [v for v in viol if v.kind == "exception"]
                return True, not bad, bad[0].message + _at(bad[0]) if bad else "no exception"
            bad = [v for v in viol if v.kind in ("type", "port", "contract") and v.location
                   and v.location.line and site.line <= v.location.line <= site.end_line]
            return True, not bad, bad[0].message + _at(bad[0]) if bad else \
                "the send went through"
        return evaluate

    def _eval_body(self, t: _Target, kind: str, pred: Any = None, site: Any = None,
                   fields: list[str] | None = None
                   ) -> Callable[[Scenario], tuple[bool, bool, str]]:
        info, enc = self.info, self.enc

        def evaluate(sc: Scenario) -> tuple[bool, bool, str]:
            why = _state_premise(info, enc, sc) or _step_premise(info, enc, t, sc)
            if why:
                return False, True, why
            new, _, viol = _bare_run(info, sc, t)
            if kind == "no-exception":
                bad = [v for v in viol if v.kind == "exception"]
                return True, not bad, bad[0].message + _at(bad[0]) if bad else \
                    "no exception"
            if kind == "send":
                bad = [v for v in viol if v.kind in ("type", "port", "contract") and v.location
                       and v.location.line and site.line <= v.location.line <= site.end_line]
                return True, not bad, bad[0].message + _at(bad[0]) if bad else \
                    "the send went through"
            if kind == "types":
                marks = [f" set {sc.instance}.{f} to " for f in fields or ()]
                bad = [v for v in viol if v.kind == "type" and any(mk in v.message
                                                                   for mk in marks)]
                return True, not bad, bad[0].message if bad else "fields keep their types"
            if viol:
                return False, True, f"the handler did not complete: {viol[0].message}"
            after = replace(sc, values=tuple(new))
            if kind == "invariant":
                ok, err = holds(info, after, pred, [])
                return True, ok, err or f"the invariant {_text(pred)} is false after {t.name}"
            args = [sc.message] if t.handler else ([sc.arg] if sc.has_arg else [])
            ok, err = holds(info, after, pred, args, old=sc.values)
            return True, ok, err or f"the ensures {_text(pred)} is false after {t.name}"
        return evaluate


# --- concrete semantics, through the kernel's runner ----------------------------------------------

def _bare_info(info: ComponentInfo) -> ComponentInfo:
    return replace(info, invariants=())


class _Recording(Runner):
    """The kernel's runner for one scenario, keeping the spec line each message was sent (or
    timer set) at: which send site sent what."""

    def __init__(self, base: Runner) -> None:
        super().__init__(base.name, base.info, base.wirings)
        self.sent: list[tuple[int | None, Message]] = []

    def live(self, values: tuple[Any, ...], ctx: Any) -> Any:
        ctx.record = self.sent = []
        return super().live(values, ctx)


def _bare_run(info: ComponentInfo, sc: Scenario, t: _Target,
              runner: Runner | None = None) -> tuple[tuple, list, list]:
    """Run the real body (no contracts): the new values, sends and the body's violations."""
    runner = runner or runner_for(_bare_info(info), sc)
    if t.handler is not None:
        h = replace(t.handler, requires=(), ensures=())
        assert sc.message is not None
        new, sends, viol, _ = runner.run_handler(sc.values, h, sc.message)
    else:
        assert t.action is not None
        a = replace(t.action, ensures=())
        new, sends, viol, _ = runner.run_action(sc.values, a, sc.has_arg, sc.arg)
    return new, sends, viol


MAX_ROWS = 4096          # correlated initial states encoded one by one (more: unknown)


def _rows(system: System, name: str, info: ComponentInfo) -> list[tuple[Any, ...]]:
    """The correlated initial states of instance `name`, if few enough to encode."""
    rows = initial_rows(system, name, info)
    if len(rows) > MAX_ROWS:
        raise Unsupported(f"instance {name!r} has {len(rows):,} initial states from "
                          f"initially(...); at most {MAX_ROWS:,} are encoded one by one")
    return rows


def row_condition(fields: dict[str, Any], info: ComponentInfo, row: tuple[Any, ...],
                  peers: dict[str, Any], only: Any = None) -> list[Any]:
    """The fields (translated ones; `only` restricts them) equal one initial state's."""
    return [fields[f].e == to_z3(c, fields[f].ty, peers) for f, c in zip(info.fields, row)
            if (only is None or f in only) and isinstance(fields.get(f), Val)]


def restart_condition(system: System, name: str, info: ComponentInfo, fresh: dict[str, Val],
                      kept: dict[str, Any], peers: dict[str, Any]) -> Any:
    """The values a restart of instance `name` gives its fields `fresh` (the non-persistent
    ones translated), as `ComponentInfo.restart_values` does: one of their initial values —
    with `initially`, those of an initial state that agrees with the persistent fields `kept`
    if one does, else of any initial state.  Where a kept field is not translated, the
    agreement is left out (more restarts are assumed than happen: a proof stays sound, and a
    refutation is confirmed on a real restart, `_restart_premise`)."""
    if not correlated(system, name, info):
        conds = [z3.Or([fresh[f].e == to_z3(c, fresh[f].ty, peers) for c in choices])
                 for f, choices in zip(info.fields, initial_choices(system, name, info))
                 if f in fresh]
        return z3.And(conds) if conds else z3.BoolVal(True)
    rows = _rows(system, name, info)
    persistent = [f for f, keep in zip(info.fields, info.persistent) if keep]
    exact = all(isinstance(kept[f], Val) for f in persistent)
    agree = [z3.And(row_condition(kept, info, row, peers, persistent)) for row in rows]
    none_agrees = z3.Not(z3.Or(agree)) if exact and persistent else z3.BoolVal(False)
    options = []
    for row, a in zip(rows, agree):
        gives = z3.And(row_condition(fresh, info, row, peers, fresh))
        options.append(z3.And(gives, z3.Or(a, none_agrees)) if exact and persistent
                       else gives)
    return z3.Or(options)


def _state_premise(info: ComponentInfo, enc: ComponentEncoding, sc: Scenario) -> str | None:
    """Why a scenario's state is not one the proof assumes, or None."""
    for f, spec, v in zip(info.fields, info.types, sc.values):
        if not spec.conforms(v):
            return f"field {f} = {v!r} is not a {spec.describe()}"
        ty = enc.types[f]
        if isinstance(ty, Ty) and not _conforms(v, ty):
            return f"field {f} = {v!r} is not a {ty.describe()}"
    for p, penc in enc.ports.items():
        n = len(sc.ports.get(p, ()))
        if not penc.many and n > 1:
            return f"the single port {p} has {n} peers"
        if penc.sent_on and n == 0:
            return f"port {p}, which the component sends on, has no peer"
        if sc.instance in sc.ports.get(p, ()):
            return f"port {p} is connected to the instance itself"
    for pred, _ in info.invariants:
        ok, err = holds(info, sc, pred, [])
        if not ok:
            return err or "the invariant does not hold before the step"
    return None


def _step_premise(info: ComponentInfo, enc: ComponentEncoding, t: _Target,
                  sc: Scenario) -> str | None:
    if t.handler is not None:
        m = sc.message
        if m is None or type(m) is not t.handler.message:
            return "no message of the handled type"
        bad = m.bad_field()
        if bad:
            return f"the message's {bad}"
        if m.sender is None:
            if enc.timer_messages is not None and type(m) not in enc.timer_messages:
                return "the message has no sender and is not a timer"
        else:
            ports = [t.handler.port] if t.handler.port in info.ports else list(info.ports)
            if not any(m.sender in sc.ports.get(p, ()) for p in ports):
                return f"the sender {m.sender} is not a peer of the port"
        contract = _port_assumption(info, t.handler, enc)
        if contract is not None:
            try:
                ok = bool(contract(m))
            except Exception as e:
                return f"the contract of port {t.handler.port} raised {type(e).__name__}: {e}"
            if not ok:
                return f"the message breaks the contract of port {t.handler.port}"
        if t.handler.when is not None:
            ok, err = holds(info, sc, t.handler.when, [m])
            if not ok:
                return err or "the receive guard is false"
        args = [m]
    else:
        assert t.action is not None
        args = [sc.arg] if sc.has_arg else []
        if t.action.over is not None:
            runner = runner_for(info, sc)
            if not any(h and _same(a, sc.arg) for h, a in runner.enabled(
                    sc.values, replace(t.action, when=None))):
                return f"{sc.arg!r} is not in the action's domain"
        if t.action.when is not None:
            ok, err = holds(info, sc, t.action.when, args)
            if not ok:
                return err or "the guard is false"
    for pred, _ in t.requires:
        ok, err = holds(info, sc, pred, args)
        if not ok:
            return err or "a requires is false"
    return None


def _port_assumption(info: ComponentInfo, h: Any, enc: ComponentEncoding) -> Any:
    """What a handler may assume of its message: the contract its port declares for the
    message type (`Port(where=...)`).  A handler for any port assumes none (the message may
    come on a port without one), nor one whose message may be a timer the component set (a
    timer meets no port: the kernel checks no contract when it fires)."""
    port = info.ports.get(h.port)
    if port is None or enc.timer_messages is None or h.message in enc.timer_messages:
        return None
    return port.where.get(h.message)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _same_values(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))


def _conforms(v: Any, ty: Ty) -> bool:
    return vtypes.conforms(v, ty)


# --- helpers --------------------------------------------------------------------------------------

def _first_failing(m: z3.ModelRef, checks: list[statements.Check]) -> int | None:
    for c in checks:
        if z3.is_true(m.eval(z3.And(c.pc, z3.Not(c.ok)), model_completion=True)):
            return c.line
    return None


def _bad_write(m: z3.ModelRef, wline: dict[str, Any], ranged: list[str], body: Any,
               enc: ComponentEncoding) -> int | None:
    for f in ranged:
        if not z3.is_true(m.eval(enc.bounds[f].holds(body.fields[f].e), model_completion=True)):
            line = m.eval(wline[f], model_completion=True).as_long()
            return line or None
    return None


def _at(v: Any) -> str:
    return f" (line {v.location.line})" if v.location and v.location.line else ""


def _line(loc: Location | None) -> int | None:
    return loc.line if loc else None


def _text(pred: Any) -> str:
    """A contract's source, as the user wrote it (shortened), for messages."""
    try:
        node = source.function_node(pred)
    except Unsupported:
        return "(source not found)"
    body = node.body if isinstance(node, ast.Lambda) else node
    text = " ".join(ast.unparse(body).split())
    return f"`{text if len(text) <= 80 else text[:77] + '...'}`"


def _first_line(fn: Any) -> int | None:
    code = getattr(fn, "__code__", None)
    return code.co_firstlineno if code else None


def _line_of(fn: Any) -> int | None:
    try:
        node = source.function_node(fn)
        return node.lineno
    except Unsupported:
        return _first_line(fn)


def _file_of(cls: type) -> str | None:
    import inspect

    try:
        return inspect.getsourcefile(cls)
    except TypeError:
        return None


def _sends_syntactically(fn: Any) -> bool:
    try:
        node = source.function_node(fn)
    except Unsupported:
        return False
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
               and n.func.attr in ("send", "broadcast", "after") for n in ast.walk(node))


def _sample_value(spec: Any) -> Any:
    """Some value of a declared type (for message fields no obligation reads)."""
    from assay.model import types as T

    if isinstance(spec, T._Bool):
        return False
    if isinstance(spec, T._Int):
        return spec.range.lo if spec.range else 0
    if isinstance(spec, T._Peer):
        return Peer("peer0")
    if isinstance(spec, T._Str):
        return ""
    if isinstance(spec, T._Enum):
        return next(iter(spec.cls))
    if isinstance(spec, T._FrozenSet):
        return frozenset()
    if isinstance(spec, T._Tuple):
        return tuple(_sample_value(e) for e in spec.elems) if spec.elems is not None else ()
    if isinstance(spec, T._Optional):
        return None
    if isinstance(spec, T._Record):
        return spec.cls(*[_sample_value(t) for t in
                          spec.cls.field_types().values()])  # type: ignore[attr-defined]
    if isinstance(spec, T._Map):
        return Map()
    return None
