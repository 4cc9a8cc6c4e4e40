"""One simulated run: a seeded scheduler picks among the kernel's enabled events, faults are
injected at their rates, timers fire at their virtual time, and every contract, protocol and
property is checked at every step.

A run is its list of events: the seed produces them, `replay` feeds them back, shrinking
minimises them.  Nothing here knows what an event means; the kernel does.
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay.errors import AssayError
from assay.kernel.kernel import Kernel, State
from assay.kernel.violation import Violation
from assay.simulator.lasso import LassoMemo, Suspect, Tracker
from assay.simulator.rates import FaultRates

NORMAL = ("deliver", "action", "timer")


@dataclass
class RunResult:
    """The outcome of one run: its events (ids of the run's kernel), why it ended, the
    violation it found, if any, and the first lasso it walked that breaks a liveness
    property (`lasso.Suspect`), if any."""

    seed: int
    initial: State
    events: list[int]
    violation: Violation | None
    ended: str                  # violation | steps | final | deadlock
    time: int                   # virtual time at the end
    path: list[Row] = field(default_factory=list)   # the rows of the states it went through
    suspect: Suspect | None = None

    @property
    def states(self) -> set[State]:
        """The states the run went through."""
        return {r.state for r in self.path}


class Clock:
    """Virtual time and the due times of pending timers (the kernel's state holds only which
    timers are pending; when they are due is the simulator's business)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.now = 0
        self.due: dict[int, list[int]] = {}

    def update(self, before: tuple[int, ...], after: tuple[int, ...],
               fired: int | None = None) -> None:
        """Follow the pending timers from `before` to `after` a step; `fired` is the timer the
        step fired, if it was a timer (a handler may re-arm the same one: a new due time)."""
        if fired is not None:
            dues = self.due[fired]
            dues.sort()
            del dues[0]                       # the earliest copy is the one that fired
            if not dues:
                del self.due[fired]
            k = before.index(fired)
            before = before[:k] + before[k + 1:]
        if before == after:
            return
        old, new = Counter(before), Counter(after)
        for t, n in (new - old).items():
            self.due.setdefault(t, []).extend([self.now + self.kernel.timer_delay(t)] * n)
        for t, n in (old - new).items():
            dues = self.due[t]
            dues.sort()
            del dues[:n]                      # the earliest copies fired or were cancelled
            if not dues:
                del self.due[t]

    def is_due(self, timer: int) -> bool:
        return min(self.due[timer]) <= self.now

    def next_due(self) -> int | None:
        return min((min(d) for d in self.due.values()), default=None)


class Scheduler:
    """Picks the next event among the enabled normal (non-fault) ones."""

    def __init__(self, rng: random.Random, kernel: Kernel, steps: int) -> None:
        self.rng = rng

    def pick(self, events: list[int], step: int, state: State | None = None) -> int:
        return events[self.rng.randrange(len(events))]

    def rates(self, rates: FaultRates) -> FaultRates:
        """The fault rates of this run (swarm testing leaves some kinds out)."""
        return rates


class PCTScheduler(Scheduler):
    """Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010): instances get
    random distinct priorities, the highest-priority instance with an enabled event runs, and
    at d-1 random steps the running instance drops to the lowest priorities."""

    def __init__(self, rng: random.Random, kernel: Kernel, steps: int, depth: int = 3) -> None:
        super().__init__(rng, kernel, steps)
        n = len(kernel.instances)
        order = list(range(n))
        rng.shuffle(order)
        self.priority = {inst: depth + k for k, inst in enumerate(order)}
        # PCT draws its change points over the expected length of a run; the step bound is
        # usually far longer than the runs of small protocols, so take the shorter of the
        # two, counting a few events per instance
        length = max(depth, min(steps, 8 * n))
        points = sorted(rng.sample(range(1, length + 1), depth - 1)) if depth > 1 else []
        self.change = {p: depth - 1 - k for k, p in enumerate(points)}
        self.kernel = kernel

    def pick(self, events: list[int], step: int, state: State | None = None) -> int:
        owner = self.kernel.event_owner
        best = max(self.priority.get(owner(e), -1) for e in events)
        mine = [e for e in events if self.priority.get(owner(e), -1) == best]
        ev = mine[self.rng.randrange(len(mine))]
        if step in self.change:
            self.priority[owner(ev)] = self.change[step]
        return ev


def make_scheduler(name: str, rng: random.Random, kernel: Kernel, steps: int,
                   depth: int = 3) -> Scheduler:
    if name == "pct":
        return PCTScheduler(rng, kernel, steps, depth)
    if name in ("coverage", "swarm"):
        from assay.simulator import schedulers

        return schedulers.make(name, rng, kernel, steps)
    return Scheduler(rng, kernel, steps)


# `run_once` takes its plain loop where it can (False: always the general one, for tests)
PLAIN = True

_NONE: dict[Any, Any] = {}          # the empty table rows share (never written to)


class Row:
    """What a run needs of one state, computed once per kernel and process (`Moves`): its
    property violations and, when a run first moves on from it, its events that change
    something, in a canonical order and by kind, with the violations of each."""

    __slots__ = ("state", "pv", "normal", "timers", "faults", "viols", "after", "stored",
                 "end")

    def __init__(self, state: State, pv: tuple[Violation, ...], stored: bool) -> None:
        self.state = state
        self.pv = pv
        self.normal: tuple[int, ...] | None = None     # None: not expanded yet
        self.timers: tuple[int | None, ...] | None = None    # per normal event, if any timer
        self.faults: dict[str, tuple[int, ...]] = _NONE         # (shared while empty)
        self.viols: dict[int, tuple[Violation, ...]] = _NONE
        self.after: dict[int, Row] = {}                 # the rows the runs went on to
        self.stored = stored
        self.end: str | None = None                     # nothing moves: final or deadlock


class Moves:
    """The simulator's memo of one kernel, shared by every run in a process: the initial
    states, and per state a `Row` (its moving events: `Kernel.moving_events` or `successors`,
    sorted and split by kind), linked to the rows runs went on to.  A run that comes back to a
    state pays a dictionary lookup or a pointer, not a successor computation.  It holds at
    most `limit` rows (beyond, rows are computed as needed and not kept).  Nothing in it
    changes a run: only its cost."""

    def __init__(self, kernel: Kernel, limit: int = 200_000) -> None:
        self.kernel = kernel
        self.limit = limit
        self.rows: dict[State, Row] = {}
        self.inits: list[tuple[Row, tuple[Violation, ...]]] | None = None
        self.kinds: dict[int, str] = {}
        self.keys: dict[int, bytes] = {}                # `Kernel.event_key`, by event
        # `shrink.shrink_run`'s final searches, by the run they start from
        self.shrunk: dict[Any, Any] = {}
        # list a new state's events without its next states (`Kernel.moving_events`), where
        # that is cheaper; False: `successors` (the same events, order and violations)
        self.listing = kernel.lists_moves

    def kept_all(self) -> bool:
        """Whether every row made so far is stored (then a run's rows stand for its states)."""
        return len(self.rows) < self.limit

    def initial(self) -> list[tuple[Row, tuple[Violation, ...]]]:
        if self.inits is None:
            self.inits = [(self.row(st), viol) for st, viol in self.kernel.initial_states()]
        return self.inits

    def row(self, state: State) -> Row:
        r = self.rows.get(state)
        if r is None:
            stored = len(self.rows) < self.limit
            r = Row(state, self.kernel.property_violations(state), stored)
            if stored:
                self.rows[state] = r
        return r

    def expand(self, row: Row, states: bool = False) -> dict[int, State] | None:
        """Fill in `row`'s events; returns their next states (for the step at hand only), or
        None where the kernel lists them without building next states (`Kernel.moving_events`:
        the step taken is then `apply`'d alone).  `states`: always the next states (one
        `Kernel.successors`, for an engine that takes several of the steps, or whose kernel
        does not keep what `apply` would compute again: a whole-state spec)."""
        kernel = self.kernel
        kinds = self.kinds
        key = kernel.event_key
        nexts: dict[int, State] | None = None
        if self.listing and not states:
            moves = kernel.moving_events(row.state)
        else:
            steps, _ = kernel.successors(row.state)
            nexts = {e: nxt for e, nxt, _ in steps}
            moves = [(e, viol) for e, _, viol in steps]
        normal: list[int] = []
        faults: dict[str, list[int]] = {}
        viols: dict[int, tuple[Violation, ...]] = {}
        keys = self.keys
        for e, viol in moves:
            if viol:
                viols[e] = viol
            k = kinds.get(e)
            if k is None:
                k = kinds[e] = kernel.event_kind(e)
                keys[e] = key(e)
            if k in NORMAL:
                normal.append(e)
            else:
                faults.setdefault(k, []).append(e)
        # choices are made among events in a canonical order, not the kernel's id order
        # (which depends on what the kernel saw before): the same seed, the same run
        by_key = keys.__getitem__
        normal.sort(key=by_key)
        row.normal = tuple(normal)
        if kernel.extended and any(kinds[e] == "timer" for e in normal):
            row.timers = tuple(kernel.timer_of(e) for e in normal)
        if faults:
            row.faults = {k: tuple(sorted(lst, key=by_key)) for k, lst in faults.items()}
        if viols:
            row.viols = viols
        return nexts


def moves_of(kernel: Kernel) -> Moves:
    """The `Moves` memo of `kernel` in this process (it lives as long as the kernel)."""
    m: Moves | None = kernel.engine_memos.get("moves")
    if m is None:
        m = kernel.engine_memos["moves"] = Moves(kernel)
    return m


def ran_into(err: AssayError, seed: int, events: list[int]) -> AssayError:
    """`err`, met by the run of `seed` after `events` (event ids): kept on it (`run_seed`,
    `run_events`) for the campaign to name the run and step, so it can be run again."""
    if getattr(err, "run_seed", None) is None:
        err.run_seed = seed                      # type: ignore[attr-defined]
        err.run_events = list(events)            # type: ignore[attr-defined]
    return err


def run_once(kernel: Kernel, seed: int, steps: int, rates: FaultRates,
             scheduler: str = "random", pct_depth: int = 3,
             lassos: LassoMemo | bool = True, rng: random.Random | None = None) -> RunResult:
    """One seeded run of at most `steps` events.  With liveness properties it also watches
    for a lasso that breaks one (`assay.simulator.lasso`; `lassos` is the memo the runs of
    this kernel share, or False not to watch); its result never changes the run.  `rng`
    replaces the seeded generator (`assay.testing` draws the choices from Hypothesis).
    A spec error it meets says which run, after which events (`ran_into`)."""
    events: list[int] = []
    try:
        return _run_once(kernel, seed, steps, rates, scheduler, pct_depth, lassos, rng, events)
    except AssayError as e:
        raise ran_into(e, seed, events) from None


def _run_once(kernel: Kernel, seed: int, steps: int, rates: FaultRates, scheduler: str,
              pct_depth: int, lassos: LassoMemo | bool, rng: random.Random | None,
              events: list[int]) -> RunResult:
    memo = moves_of(kernel)
    rng = rng or random.Random(seed)
    inits = memo.initial()
    row, viol = inits[rng.randrange(len(inits))]
    state = start = row.state
    clock = Clock(kernel)
    extended = kernel.extended
    if extended and state[2]:
        clock.update((), state[2])           # timers a start hook set are due from time 0
    path = [row]
    first = viol[0] if viol else (row.pv or (None,))[0]
    if first is not None:
        return RunResult(seed, start, events, first, "violation", 0, path)
    # liveness: None when there is nothing to watch, or once a lasso was found
    watch: Tracker | None = None
    suspect: Suspect | None = None
    if lassos is not False and kernel.system.liveness:
        watch = Tracker(lassos if isinstance(lassos, LassoMemo) else LassoMemo(kernel), state,
                        events)

    def ended(violation: Violation | None, why: str) -> RunResult:
        found = suspect
        if watch is not None and why == "final":
            found = watch.stop()
        # without timers the clock only counts the steps (it is not kept step by step)
        now = clock.now if extended else len(events)
        return RunResult(seed, start, events, violation, why, now, path, found)

    def stopped(row: Row) -> RunResult:
        """The end of a run in `row`, where nothing changes anything: final or a deadlock."""
        if row.end is None:
            st = row.state
            row.end = "deadlock" if not kernel.can_progress(st) and \
                not kernel.is_terminal(st) else "final"
        if row.end == "deadlock":
            return ended(kernel.deadlock(), "deadlock")
        return ended(None, "final")

    sched = make_scheduler(scheduler, rng, kernel, steps, pct_depth)
    rates = sched.rates(rates)
    # the uniform scheduler's pick, inlined below (the same draw as `Scheduler.pick`)
    pick = None if type(sched) is Scheduler else sched.pick
    random_ = rng.random
    # `Random.randrange(n)` for n > 0 is `_randbelow(n)` (CPython 3.11-3.13): the same
    # draws, without its argument checks (every list drawn from below is non-empty)
    randrange: Callable[[int], int] = rng.randrange
    if type(rng) is random.Random:
        randrange = rng._randbelow  # type: ignore[attr-defined]
    fault_rates = tuple((k, r) for k, r in (
        ("drop", rates.drop), ("dup", rates.dup), ("crash", rates.crash),
        ("restart", rates.restart), ("partition", rates.partition), ("heal", rates.heal),
        ("lose", rates.lose)) if r)
    timer_of = kernel.timer_of
    apply = kernel.apply
    expand = memo.expand
    new_row = memo.row
    if PLAIN and not extended and not kernel.lossy and pick is None and watch is None:
        # the same steps as the loop below where it has nothing else to do: no timers, no
        # faults (a kernel with them or timers is `extended`; one with lossy links may lose
        # messages), the uniform pick, no liveness
        add_event, add_row = events.append, path.append
        for _ in range(steps):
            nexts = None
            normal = row.normal
            if normal is None:
                nexts = expand(row)
                normal = row.normal
            random_()                        # the general loop's fault draw: the same draws
            if not normal:
                return stopped(row)
            e = normal[randrange(len(normal))]
            after = row.after
            nxt_row = after.get(e)
            if nxt_row is None:
                nxt = nexts[e] if nexts is not None else apply(row.state, e)[0]
                try:
                    nxt_row = new_row(nxt)
                except AssayError:           # met judging the state `e` leads to
                    add_event(e)
                    raise
                if row.stored and nxt_row.stored:
                    after[e] = nxt_row
            add_event(e)
            add_row(nxt_row)
            viols = row.viols
            row = nxt_row
            if viols and e in viols:
                return ended(viols[e][0], "violation")
            if row.pv:
                return ended(row.pv[0], "violation")
        return ended(None, "steps")
    delay = rates.delay if extended else 0.0
    for step in range(1, steps + 1):
        if delay and random_() < delay:      # (its own draw: without it, the same runs)
            due = clock.next_due()
            if due is not None and due > clock.now:
                clock.now = due              # slow messages: time passes to the next timer
        # the events that change something (a self-loop would only burn a step)
        nexts = None
        normal = row.normal
        if normal is None:
            nexts = expand(row)
            normal = row.normal
        faults = row.faults
        if row.timers is not None:
            normal = tuple(e for e, t in zip(normal, row.timers)  # type: ignore[arg-type]
                           if t is None or clock.is_due(t))
        ev = None
        u = random_()
        if faults:
            for k, r in fault_rates:         # at most one fault per step, by its rate
                if k in faults:
                    if u < r:
                        lst = faults[k]
                        ev = lst[randrange(len(lst))]
                        break
                    u -= r
        if ev is None:
            if not normal:
                due = clock.next_due()
                if due is not None and due > clock.now:
                    clock.now = due          # idle: jump to the next timer
                    continue
                if faults.get("restart") or faults.get("heal"):
                    k = "restart" if faults.get("restart") else "heal"
                    ev = faults[k][randrange(len(faults[k]))]
                else:                        # final, or nothing left that changes anything
                    return stopped(row)
            else:
                ev = normal[randrange(len(normal))] if pick is None \
                    else pick(normal, step, state)  # type: ignore[arg-type]
        nxt_row = row.after.get(ev)
        if nxt_row is None:
            nxt = nexts[ev] if nexts is not None else apply(state, ev)[0]
            try:
                nxt_row = new_row(nxt)
            except AssayError:               # met judging the state `ev` leads to
                events.append(ev)
                raise
            if row.stored and nxt_row.stored:
                row.after[ev] = nxt_row
        viol = row.viols.get(ev, ()) if row.viols else ()
        events.append(ev)
        if extended:
            clock.update(state[2], nxt_row.state[2], timer_of(ev))
            clock.now += 1
        row = nxt_row
        state = row.state
        path.append(row)
        if viol:
            return ended(viol[0], "violation")
        if row.pv:
            return ended(row.pv[0], "violation")
        if watch is not None:
            suspect = watch.step(state)
            if suspect is not None:
                watch = None
    return ended(None, "steps")


def replay_clock(kernel: Kernel) -> tuple[Callable[[State, int, State], None], Callable[[], int]]:
    """For `kernel.trace.replay_trace`: a step hook that keeps the virtual clock as a run does
    (a timer fires at its due time, every step takes one tick) and the clock's reading."""
    clock = Clock(kernel)
    started = False

    def hook(before: State, ev: int, after: State) -> None:
        nonlocal started
        if not started and kernel.extended and before[2]:
            clock.update((), before[2])      # timers a start hook set: due from time 0
        started = True
        fired = kernel.timer_of(ev)
        if fired is not None:
            due = min(clock.due.get(fired, [clock.now]))
            clock.now = max(clock.now, due)
        if kernel.extended:
            clock.update(before[2], after[2], fired)
        clock.now += 1

    return hook, lambda: clock.now
