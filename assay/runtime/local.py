"""Running a whole system in one process on asyncio, over in-process links.

Each instance has an inbox (messages arrive in send order on each link); a loop picks, among
the instances with something to do, one at random (seeded): it handles the oldest message of
its inbox, or fires one of its enabled actions.  Timers run on the event loop's clock (`delay`
units of `time_unit` seconds).  The run ends when nothing is left to do (no message, no enabled
action, no timer), or when `duration` elapses.

Links run as the model bounds them (`capacity=`): every message in flight is in an inbox
here, so a step whose sends a full "block" link cannot take is not taken (it waits for room,
as in `check`), and a send to a full "drop" link is lost (counted in the report).  A lossy
link loses nothing in one process: losing is what a lossy link may do, not what it must.

Every applied step is recorded by name, so the run is a trace: `assay replay` of it through the
checker's kernel confirms that the run is one the model allows (conformance).

With a state directory the run is durable as a TCP node is: each step's persistent fields, the
messages it sends and the end of the message it handled are committed to SQLite in one
transaction before its messages reach an inbox, and a run started again on the same directory
restarts every instance from them (the kernel's restart semantics: the rest of the state starts
over, the restart hook runs) with the messages that were in flight back in their inboxes.  The
steps of every life go to a step log there, so the trace of a resumed run starts from the
model's initial state and replays.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from assay.errors import Location, StateError
from assay.kernel.events import Envelope, Fire
from assay.kernel.kernel import Kernel, LocalChoice, LocalStep
from assay.kernel.trace import Trace, run_events
from assay.kernel.violation import Violation
from assay.runtime.extstore import ExternalStores, StoreAdapter, start_values
from assay.runtime.node import Node, Outcome
from assay.runtime.steplog import log_line, merge_logs, open_step_log, restore, saved_envelope
from assay.runtime.store import FRESH_NOTE, Store, open_store, storing
from assay.runtime.timers import Timers
from assay.runtime.wire import envelope_to_wire

NODE = "local"                  # the one node of the run: its store is `local.sqlite`
STEP_LOG = "local.jsonl"        # the step log of every life of the run, beside it


@dataclass
class RunReport:
    steps: int
    seconds: float
    ended: str                                   # quiescent | time | stopped
    events: list[dict[str, Any]]
    violations: list[tuple[dict[str, Any], Violation]]
    dead_letters: list[Envelope]
    final: dict[str, dict[str, Any]]
    initial: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: list[Envelope] = field(default_factory=list)
    violation_count: int = 0                     # all of them (`violations` lists the first)
    dead_letter_count: int = 0
    lost: int = 0                                # sends lost to full links (`full="drop"`)

    @property
    def exit_code(self) -> int:
        return 1 if self.violations else 0

    def to_json(self) -> dict[str, Any]:
        from assay.model.types import to_json

        return {"steps": self.steps, "seconds": round(self.seconds, 6), "ended": self.ended,
                "violation_count": self.violation_count,
                "violations": [{"step": e, **v.to_json()} for e, v in self.violations],
                "dead_letters": [str(e) for e in self.dead_letters],
                "refused": [str(e) for e in self.refused], "lost": self.lost,
                "final": {n: {k: to_json(v) for k, v in f.items()}
                          for n, f in self.final.items()}}


class LocalRuntime:
    """All instances of a system in this process (see the module docstring)."""

    def __init__(self, kernel: Kernel, monitor: str = "enforce", seed: int = 0,
                 time_unit: float = 0.01, driven: tuple[str, ...] = (),
                 record: bool = True, state_dir: str | os.PathLike | None = None,
                 durability: str = "machine", fresh: bool = False,
                 stores: StoreAdapter | None = None) -> None:
        self.kernel = kernel
        self.names = [inst.name for inst in kernel.instances]
        # instances a client drives (`assay.runtime.connect`): their actions fire only when
        # the client asks; the others' fire when enabled
        self.driven = set(driven)
        self.node = Node(kernel, self.names, monitor)
        self.inbox: dict[str, deque[Envelope]] = {n: deque() for n in self.names}
        # with a state directory, beside each inbox: the outbox row (epoch, seq) of each message
        self._rows: dict[str, deque[tuple[str, int] | None]] = {n: deque() for n in self.names}
        self._epoch = os.urandom(8).hex()
        self._seq = 0
        # every message in flight is in an inbox here: properties may read the network
        self.node.in_flight = self._in_flight
        # links with a capacity: steps are taken as the model allows (see the docstring)
        self.bounded = kernel.bounded
        if self.bounded:
            self.node.fits = self._fits
        self.lost = 0
        self.rng = random.Random(seed)
        self.wake = asyncio.Event()
        self.timers = Timers(self.names, time_unit, self.wake)
        # the applied steps, for the trace (record=False: none kept, a long run's memory stays
        # flat)
        self.events: list[dict[str, Any]] = []
        self.record = record
        self.stopped = False
        # called with each envelope delivered to a driven instance and the step's outcome
        self.on_delivered: Callable[[Envelope, Outcome], None] | None = None
        # with a state directory: persistent fields in SQLite (`local.sqlite`), saved before
        # a step's messages reach their inboxes; recording, the steps of every life of the
        # run in a step log (`local.jsonl`), which the trace is made from
        self.store: Store | None = None
        self.steplog: IO[str] | None = None
        self.steplog_path: Path | None = None
        self.clock = 0
        self._restarts: list[tuple[str, Outcome]] = []
        first_life = True                        # no earlier life in the store
        # external stores (extstore.py): checked against the state the run starts from
        self.stores = None if stores is None else ExternalStores(kernel, stores, self.names)
        initial = {n: self.node.state(n) for n in self.names} if self.stores else {}
        if state_dir is not None:
            # (fresh: the store and the step log of earlier lives are moved aside first)
            self.store = open_store(state_dir, NODE, durability, system=kernel.system.name,
                                    fresh=fresh, extra=(STEP_LOG,))
            if record:
                self.steplog_path = Path(state_dir) / STEP_LOG
                self.steplog, self.clock = open_step_log(self.steplog_path,
                                                         self.store.clock())
            # the messages in flight when it crashed (sent by durable steps, not yet handled)
            # first: the restart check reads them
            allowed = {(i, p): kernel.receivable(i, p) for i in self.names
                       for p in kernel.wirings[i]}
            for link, epoch, seq, frame in self.store.outbox():
                if link != NODE:
                    raise StateError(f"table outbox, row ({link!r}, {epoch!r}, {seq!r}): a "
                                     f"frame to node {link!r} in the store of a one-process "
                                     "run", Location(self.store.path), [FRESH_NOTE])
                env = saved_envelope(frame, allowed, self.store.path, link)
                self.inbox[env.dst].append(env)
                self._rows[env.dst].append((epoch, seq))
            # the whole system crashed with the process: every instance restarts
            restored = restore(kernel, self.store, self.names)
            first_life = restored is None
            restarted = restored or {}
            for inst in restarted:
                self._log({"kind": "crash", "instance": inst})
            self._restarts = self.node.restart_all(restarted)
        if self.stores:
            try:
                self.stores.attach(start_values(kernel, initial, self.store, first_life),
                                   undo=self.store is not None)
            except BaseException:            # no step taken: nothing more to make durable
                for f in (self.store, self.steplog):
                    if f is not None:
                        f.close()
                raise
        # a first life: each instance's start step (`@on_start`), part of the initial state
        self._starts = [(n, self.node.start(n)) for n in self.names
                        if first_life and self.node.has_start(n)]

    def _in_flight(self) -> list[Envelope]:
        return [e for q in self.inbox.values() for e in q]

    def _fits(self, step: LocalStep | LocalChoice, consumed: Envelope | None = None) -> bool:
        """Whether a step's sends find room on their links (always, without capacities); a
        step that chooses fits when one of its ways does (the node takes one that fits)."""
        if isinstance(step, LocalChoice):
            return any(self._fits(way, consumed) for way in step.steps)
        return not self.bounded or self.kernel.route(self._in_flight(), step.sends,
                                                     consumed) is not None

    def _route(self, out: Outcome) -> Outcome:
        """A step's outcome with the sends that full "drop" links lose taken out (and
        counted).  A step the loop took fits its "block" links; a start, a restart or a
        client's step is not held back (it cannot wait), so its sends all go."""
        if self.bounded and out.applied and out.sends:
            routed = self.kernel.route(self._in_flight(), out.sends)
            if routed is not None:
                self.lost += len(routed[1])
                return replace(out, sends=routed[0])
        return out

    def _take(self, name: str) -> int | None:
        """Where in its inbox the first message `name` takes now is: one its receive guards
        let in and whose step a full link does not block."""
        box = self.inbox[name]
        if not box:
            return None
        if not self.bounded:
            return self.node.first_taken(name, box)
        lid = self.node.local[name]
        k = self.kernel
        for i, env in enumerate(box):
            if k.local_accepts(lid, env) and self._fits(k.local_deliver(lid, env), env):
                return i
        return None

    def _due_timer(self) -> int | None:
        """Which due timer fires next (its place in `timers.due`): the first whose step a
        full link does not block."""
        due = self.timers.due
        if not due or not self.bounded:
            return 0 if due else None
        for i, (name, delay, message) in enumerate(due):
            if self._fits(self.kernel.local_timer(name, self.node.local[name], delay, message)):
                return i
        return None

    def _log(self, event: dict[str, Any]) -> int:
        self.clock += 1
        if self.steplog is not None:
            self.steplog.write(log_line(self.clock, NODE, event))
            self.steplog.flush()             # before the step is saved (see steplog.py)
        return self.clock

    async def _step_done(self, name: str, out: Outcome,
                         consumed: tuple[str, int] | None = None, record: bool = True) -> None:
        """Make the step durable, then route it.  With a store, one transaction holds the
        step's persistent fields, the messages it sends (as rows of the outbox) and the end
        of the message it handled (`consumed`, its row), committed in a thread before the
        messages reach their inboxes: a kill between two steps loses no message."""
        out = self._route(out)
        rows: list[tuple[str, int] | None] = [None] * len(out.sends)
        if self.stores and out.applied and name in self.stores.by_instance:
            # before the step is durable (extstore.py)
            await asyncio.to_thread(self.stores.commit, name, self.node.state(name),
                                    self.clock + 1 if record else self.clock)
        if self.store is not None:
            gone = None if consumed is None else (NODE, *consumed)
            if not out.applied:                  # rejected: its message is consumed
                if gone is not None:
                    await storing(self.store, self.store.save_step, name, None, [], None,
                                  None, gone)
            else:
                # a start is no step of the trace (the model's initial state includes it)
                clock = self._log(out.event) if record else self.clock
                frames = []
                for env in out.sends:
                    self._seq += 1
                    frame = envelope_to_wire(env, clock)
                    frame.update(seq=self._seq, epoch=self._epoch)
                    frames.append((NODE, self._epoch, self._seq, frame))
                rows = [(self._epoch, f[2]) for f in frames]
                saved = self.kernel.persisted(name, self.node.local[name])
                if saved is not None or frames or gone is not None \
                        or out.event["kind"] in ("restart", "start"):
                    await storing(self.store, self.store.save_step, name, saved, frames,
                                  None, clock, gone)
        self._handle(name, out, rows, record)

    def _handle(self, name: str, out: Outcome,
                rows: list[tuple[str, int] | None] | None = None, record: bool = True) -> None:
        if out.applied and self.record and record:
            self.events.append(out.event)
        for env, row in zip(out.sends, rows or [None] * len(out.sends)):
            self.inbox[env.dst].append(env)
            self._rows[env.dst].append(row)
        self.timers.apply(name, out.timer_ops)

    def _enabled(self, name: str) -> bool:
        if name in self.driven:
            return False
        if not self.bounded:
            return bool(self.node.actions(name))
        return any(self._fits(step) for _, step in self.node.enabled_steps(name))

    def fire(self, action: Fire) -> Outcome:
        """Fire `action` of a driven instance now (for the client API, which runs without a
        state directory: this step is not made durable)."""
        assert self.store is None, "a driven in-process run has no state directory"
        out = self._route(self.node.fire(action))
        if self.stores and out.applied and action.instance in self.stores.by_instance:
            self.stores.commit(action.instance, self.node.state(action.instance), self.clock)
        self._handle(action.instance, out)
        self.wake.set()
        return out

    def stop(self) -> None:
        self.stopped = True
        self.wake.set()

    async def run(self, duration: float | None = None, serve: bool = False) -> RunReport:
        """Run until quiescent (with `serve`, until `stop()`) or until `duration` ends."""
        for inst, started in self._starts:           # the start hooks' sends and timers
            # (recorded only when the hook chose: the way it took picks the initial state)
            await self._step_done(inst, started, record="choices" in started.event)
        self._starts = []
        start = {n: self.node.state(n) for n in self.names}
        for inst, restart in self._restarts:         # the restart hooks' sends and timers
            await self._step_done(inst, restart)
        self._restarts = []
        t0 = time.perf_counter()
        deadline = None if duration is None else t0 + duration
        ended = "quiescent"
        while not self.stopped:
            if deadline is not None and time.perf_counter() >= deadline:
                ended = "time"
                break
            due = self._due_timer()
            if due is not None:
                name, delay, message = self.timers.due[due]
                del self.timers.due[due]
                await self._step_done(name, self.node.timer(name, delay, message))
                await asyncio.sleep(0)
                continue
            takes = {n: self._take(n) for n in self.names}
            ready = [n for n in self.names if takes[n] is not None or self._enabled(n)]
            if ready:
                name = ready[self.rng.randrange(len(ready))]
                out: Outcome | None
                consumed = None
                k = takes[name]
                if k is not None and (not self._enabled(name) or self.rng.random() < .5):
                    env = self.inbox[name][k]
                    del self.inbox[name][k]
                    consumed = self._rows[name][k]
                    del self._rows[name][k]
                    out = self.node.deliver(env)
                    if name in self.driven and self.on_delivered is not None:
                        self.on_delivered(env, out)
                else:
                    out = self.node.fire_any(name, self.rng,
                                             self._fits if self.bounded else None)
                assert out is not None
                await self._step_done(name, out, consumed)
                await asyncio.sleep(0)        # let timers and other tasks run
                continue
            if not self.timers.any_pending() and not serve:
                break                         # nothing left to do, now or later
            self.wake.clear()
            timeout = None if deadline is None else max(0.0, deadline - time.perf_counter())
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except TimeoutError:
                ended = "time"
                break
        if self.stopped:
            ended = "stopped"
        self.timers.cancel_all()
        self.close()
        return RunReport(self.node.steps, time.perf_counter() - t0, ended, self.events,
                         self.node.violations, self.node.dead_letters,
                         {n: self.node.state(n) for n in self.names}, start,
                         self.node.refused, self.node.violation_count,
                         self.node.dead_letter_count, self.lost)

    def close(self) -> None:
        """A clean stop: every step logged is durable (a restart resumes after the last of
        them); the files are closed."""
        if self.store is not None:
            self.store.save_step(self.names[0], None, [], None, self.clock)
            self.store.close()
            self.store = None
        if self.steplog is not None:
            self.steplog.close()
            self.steplog = None

    def trace(self, report: RunReport, spec: str, system: str,
              params: dict[str, Any]) -> Trace:
        """The run as a trace file that `assay replay` checks against the model: with a
        state directory, every life of it (from the step log), else this one."""
        events = report.events if self.steplog_path is None else \
            merge_logs([str(self.steplog_path)])
        initial, events = run_events(self.kernel, events)
        return Trace(spec, system, params, events, engine="run", initial=initial,
                     verdict=None if not report.violations else {
                         "kind": report.violations[0][1].kind,
                         "name": report.violations[0][1].name,
                         "blame": report.violations[0][1].blame,
                         "message": report.violations[0][1].message,
                         "step": len(report.events)})


def run_local(kernel: Kernel, duration: float | None = None, monitor: str = "enforce",
              seed: int = 0, time_unit: float = 0.01, record: bool = True,
              state_dir: str | os.PathLike | None = None, durability: str = "machine",
              fresh: bool = False, stores: StoreAdapter | None = None
              ) -> tuple[RunReport, LocalRuntime]:
    """Run the system of `kernel` in this process until it is quiescent or `duration` ends
    (`record`: keep the applied steps, for `trace`; `state_dir`: persist and resume;
    `fresh`: start over there, the earlier state moved aside; `stores`: the database of the
    external stores, `assay.runtime.extstore`)."""
    async def main() -> tuple[RunReport, LocalRuntime]:
        rt = LocalRuntime(kernel, monitor, seed, time_unit, record=record, state_dir=state_dir,
                          durability=durability, fresh=fresh, stores=stores)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, rt.stop)    # stop after the current step
        try:
            with _ctrl_c_stops(loop, rt.stop):
                return await rt.run(duration), rt
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(main())


STUCK_AFTER = 3.0     # seconds after Ctrl-C within which the current step must have returned


@contextlib.contextmanager
def _ctrl_c_stops(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C asks the run to `stop` after the current step.  A step that does not return (a
    handler that loops) never gives the event loop that request: if the loop has not taken it
    STUCK_AFTER seconds later, or at a second Ctrl-C, KeyboardInterrupt is raised where the
    step is, and the run ends without a report."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked = False
    taken = False

    def take() -> None:                     # in the loop: the step returned
        nonlocal taken
        taken = True
        with contextlib.suppress(ValueError, OSError):
            signal.setitimer(signal.ITIMER_REAL, 0)
        stop()

    def on_alarm(signum: int, frame: Any) -> None:
        if not taken:
            raise KeyboardInterrupt

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal asked
        if asked and not taken:
            raise KeyboardInterrupt
        asked = True
        loop.call_soon_threadsafe(take)
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, STUCK_AFTER)

    before_int = signal.signal(signal.SIGINT, on_sigint)
    before_alarm = signal.getsignal(signal.SIGALRM)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before_alarm if before_alarm is not None
                      else signal.SIG_DFL)
        signal.signal(signal.SIGINT, before_int if before_int is not None
                      else signal.default_int_handler)
