"""Shrinking a failing run toward a shortest one with the same failure.

A candidate (a sequence of events from an initial state) is kept only if it replays — every
event is enabled where it occurs and changes something — and fails the same way (same kind of
violation, same property or blame).  The passes, in order:

1. `cut_loops`: a state-based shortcut.  When the run visits the same state twice, the events
   in between are a loop: cut them (what follows replays identically).
2. `drop_groups`: remove events that only go together — a crash and the restart of the same
   instance, a partition and its heal, a send and the deliveries (drops, duplicates, losses)
   of what it sent.  Removing either half alone never replays.
3. `ddmin`: delta debugging (Zeller & Hildebrandt, 'Simplifying and Isolating
   Failure-Inducing Input', TSE 2002) over single events: the result is 1-minimal.
4. `bfs_shortest`: a breadth-first search from the initial states toward the same failure,
   for a shorter run: first through the states the failing run (and its shrunk forms)
   visited and their neighbours (radius 1); then through every state (a plain search, on half
   the budget left: when it ends, the result is a shortest failing run of all, and
   `Search.bound` says how many levels it went through when it does not); else through wider
   neighbourhoods, radius 2 to 4, while the budget lasts.  A search whose next level,
   growing as the last one did, would outgrow what is left of the budget stops there
   (`_outgrows`), and so does one halfway through a level whose first half, projected on
   the whole level and the next, would (`_outgrows_level`), or a plain search whose levels
   would even not growing: a search that does not end finds nothing.  Then 1-3 again on
   the result, so it is also 1-minimal.

The budget (`budget_for`): shrinking a failure costs in proportion to what finding it took.
It counts the states shrinking comes to that the failing run did not visit (`Walker.cost`;
each is a successor computation or a property evaluation in a fresh process), whether this
process's memo had them or not, so the result is the same in every process (any `--jobs`).
The removal passes may spend up to `PASS_RATIO` states per event of the failing run where that
is more than the budget.  A failing run of a violation another one already shrank to takes
that run (`earlier`), unless cutting its loops leaves a shorter one.

A candidate replay takes one event in each state it comes to; in a state no run moved on from
it computes that event's step alone (`Kernel.moving_step`: one action's outcome, not every
action's), and a row's successors come from one `Kernel.successors` (a whole-state spec keeps
no memo of its actions: an `apply` per event computed all of them again).

Everything works on the kernel's event ids through the simulator's per-state rows
(`run.Moves`): the same semantics as `kernel.successors`, computed once per state and shared
with the runs.  Every choice is made in a canonical order (events by `kernel.event_key`), so
the same failing run shrinks to the same trace in every process.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay.errors import TraceError
from assay.kernel.events import Crash, Heal, Partition, Restart
from assay.kernel.kernel import Kernel, State
from assay.kernel.violation import Violation
from assay.simulator.rates import FaultRates
from assay.simulator.run import NORMAL, Moves, Row, moves_of

Signature = tuple[str, str | None, str]


class OutOfTime(Exception):
    """Shrinking went past its deadline (`shrink_run`'s): a campaign's time limit."""

# what shrinking a failure may spend, in states off the failing run (`Walker.cost`): a failure
# the runs found in `searched` events gets SHRINK_RATIO states per event, at least
# SHRINK_FLOOR, rounded down to a power of two (failures found at a similar cost share their
# search, `Moves.shrunk`); a failure found cheaply is shrunk cheaply
SHRINK_FLOOR = 64
SHRINK_RATIO = 1
# the removal passes may spend up to PASS_RATIO states per event of the failing run when
# that is more than the budget
PASS_RATIO = 4
MAX_RADIUS = 4
# a breadth-first search stops when its next OUTGROW_LEVELS levels, growing as the last one
# did, would outgrow the budget (`_outgrows`)
OUTGROW_LEVELS = 1
SHRUNK_MEMO = 10_000            # final searches remembered per kernel (`Moves.shrunk`)


def fault_kinds(rates: FaultRates) -> frozenset[str]:
    """The kinds of faults runs with `rates` may take: those with a rate, and the restarts
    and heals a run takes when nothing else is enabled."""
    return frozenset(k for k, r in rates.to_json().items() if r) | {"restart", "heal"}


def budget_for(searched: int) -> int:
    """The shrinking budget (`shrink_run`) of a failure the runs found in `searched` events."""
    b = max(SHRINK_FLOOR, searched * SHRINK_RATIO)
    return 1 << (b.bit_length() - 1)


def signature(v: Violation) -> Signature:
    return (v.kind, v.name, v.blame)


def fails(kernel: Kernel, start: State, events: list[dict[str, Any]],
          want: Signature) -> int | None:
    """If the events (by name) replay from `start` and hit the violation `want`, how many
    events it took; else None."""
    state = start
    for n, e in enumerate(events, 1):
        try:
            ev = kernel.event_id(state, e)
        except TraceError:
            return None
        state, _, viol = kernel.apply(state, ev)
        if viol:
            return n if signature(viol[0]) == want else None
        if want[0] == "deadlock":
            continue
        pv = kernel.property_violations(state)
        if pv:
            return n if signature(pv[0]) == want else None
    if want[0] == "deadlock" and not kernel.can_progress(state) \
            and not kernel.is_terminal(state):
        return len(events)
    return None


def ddmin(items: list[Any], test: Callable[[list[Any]], bool]) -> list[Any]:
    """The classic ddmin: a 1-minimal sublist of `items` for which `test` holds."""
    n = 2
    while len(items) >= 2:
        chunk = len(items) // n
        subsets = [items[i:i + chunk] for i in range(0, len(items), chunk)]
        reduced = False
        for i in range(len(subsets)):              # try each complement
            complement = [x for j, s in enumerate(subsets) if j != i for x in s]
            if test(complement):
                items = complement
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            for s in subsets:                      # then each subset alone
                if len(s) < len(items) and test(s):
                    items = s
                    n = 2
                    reduced = True
                    break
        if not reduced:
            if n >= len(items):
                break
            n = min(n * 2, len(items))
    return items


_MISSING: Any = object()


# --- replaying event ids on the rows --------------------------------------------------------


class Walker:
    """Replays event ids on a kernel's rows (`run.Moves`) and judges where they end."""

    def __init__(self, kernel: Kernel, want: Signature,
                 faults: frozenset[str] | None = None, deadline: float | None = None) -> None:
        self.kernel = kernel
        # a `time.perf_counter()` past which a candidate replay or an expansion raises
        # `OutOfTime` (None: none)
        self.deadline = deadline
        self.memo: Moves = moves_of(kernel)
        self.want = want
        # the kinds of faults a shrunk run may use (None: any the kernel offers): those the
        # campaign injects, not every one its unlimited fault budget enables
        self.faults = faults
        self.replays = 0                          # candidates replayed (for measurements)
        # what shrinking spent: the states it came to that the failing run had not visited
        # (`seen` starts as the run's), each a successor computation or a property
        # evaluation in a fresh process; counted the same whether this process's memo had
        # the row or not, so a budget of them gives the same result in every process
        self.seen: set[State] = set()
        self.cost = 0
        self.limit: int | None = None             # at most this many steps (None: no limit)
        self._allowed: dict[Row, tuple[int, ...]] = {}    # `_faults`, by row
        # steps taken one at a time from rows not expanded (`Kernel.moving_step`)
        self.alone = kernel.lists_moves           # `Kernel.moving_step` applies
        # `Kernel.successors` is the enabled events that change something: one is stepped
        # alone by `Kernel.enabled_alone` and `apply`
        self.enabled = kernel.extended or kernel.chooses
        self._single: dict[tuple[Row, int], tuple[Row, tuple[Violation, ...]] | None] = {}
        # the shortest failing run (the wanted violation) replayed so far: what shrinking
        # stopped halfway (Ctrl-C, a time limit) still has (`shrink_run`)
        self.best: tuple[Row, list[int]] | None = None

    def over(self) -> bool:
        """Whether the budget of steps is spent."""
        return self.limit is not None and self.cost >= self.limit

    def _faults(self, row: Row) -> tuple[int, ...]:
        if not row.faults:
            return ()
        got = self._allowed.get(row)
        if got is None:
            allowed = self.faults
            got = self._allowed[row] = tuple(
                e for k in sorted(row.faults) if allowed is None or k in allowed
                for e in row.faults[k])
        return got

    def step_alone(self, state: State, ev: int) -> tuple[State, tuple[Violation, ...]] | None:
        """The step of `ev` from `state` as `successors` would give it, and that a run may
        take (a fault of a kind allowed), or None; computed for that event alone where the
        kernel can (`alone`, `enabled`)."""
        kernel = self.kernel
        if self.alone:
            return kernel.moving_step(state, ev)
        if self.faults is not None:
            kinds = self.memo.kinds
            kind = kinds.get(ev)
            if kind is None:
                kind = kinds[ev] = kernel.event_kind(ev)
                self.memo.keys[ev] = kernel.event_key(ev)
            if kind not in NORMAL and kind not in self.faults:
                return None
        if not kernel.enabled_alone(state, ev):
            return None
        nxt, _, viol = kernel.apply(state, ev)
        return (nxt, viol) if nxt != state or viol else None

    def go(self, row: Row, ev: int) -> tuple[Row, tuple[Violation, ...]] | None:
        """The row `ev` leads to from `row`, with the step's violations; None when `ev` is
        not an event of `row` that changes something (or reports a violation)."""
        nxt = row.after.get(ev)
        if nxt is None:
            if row.normal is None:
                # a state no run moved on from: this event's step alone, not the state's
                # every step (a candidate replay goes through many such states, and takes
                # one event in each)
                single = self._single
                got = single.get((row, ev), _MISSING)
                if got is _MISSING and (self.alone or self.enabled):
                    step = self.step_alone(row.state, ev)
                    got = None if step is None else (self.memo.row(step[0]), step[1])
                    if got is not None and not got[1] and row.stored and got[0].stored:
                        row.after[ev] = got[0]    # (shared: every walker and run follows it)
                    else:
                        single[(row, ev)] = got
                if got is not _MISSING:
                    if got is None:
                        return None
                    if got[0].state not in self.seen:
                        self.seen.add(got[0].state)
                        self.cost += 1
                    return got
            nexts = self.memo.expand(row, True) if row.normal is None else None
            if not (ev in row.normal or ev in self._faults(row)):  # type: ignore[operator]
                return None
            if nexts is not None:
                state = nexts[ev]
            else:
                step = self.kernel.moving_step(row.state, ev) if self.alone else None
                state = step[0] if step else self.kernel.apply(row.state, ev)[0]
            nxt = self.memo.row(state)
            if row.stored and nxt.stored:
                row.after[ev] = nxt
        if nxt.state not in self.seen:
            self.seen.add(nxt.state)
            self.cost += 1
        return nxt, row.viols.get(ev, ()) if row.viols else ()

    def moves(self, row: Row) -> list[tuple[int, Row, tuple[Violation, ...]]]:
        """Every event of `row` that changes something, in a canonical order: the normal ones
        (as a run orders them), then the faults by kind."""
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise OutOfTime
        nexts = self.memo.expand(row, True) if row.normal is None else None
        out = []
        memo = self.memo
        seen = self.seen
        evs = row.normal + self._faults(row)  # type: ignore[operator]
        after = row.after
        if nexts is None and len(after) < len(evs):
            # every next state at once (`apply` per event computes the instance's actions
            # again where the kernel keeps no memo of them: a whole-state spec)
            nexts = {e: nxt for e, nxt, _ in self.kernel.successors(row.state)[0]}
        for ev in evs:
            nxt = after.get(ev)
            if nxt is None:
                nxt = memo.row(nexts[ev] if nexts is not None
                               else self.kernel.apply(row.state, ev)[0])
                if row.stored and nxt.stored:
                    row.after[ev] = nxt
            if nxt.state not in seen:
                seen.add(nxt.state)
                self.cost += 1
            out.append((ev, nxt, row.viols.get(ev, ()) if row.viols else ()))
        return out

    def deadlocked(self, row: Row) -> bool:
        if row.end is None:
            k = self.kernel
            row.end = "deadlock" if not k.can_progress(row.state) and \
                not k.is_terminal(row.state) else "final"
        return row.end == "deadlock"

    def hit(self, row: Row, viol: tuple[Violation, ...]) -> bool | None:
        """After a step with violations `viol` into `row`: True when the run fails as wanted
        there, False when it fails another way (it stops), None when it goes on."""
        if viol:
            return signature(viol[0]) == self.want
        if self.want[0] == "deadlock":
            return True if self.deadlocked(row) else None
        if row.pv:
            return signature(row.pv[0]) == self.want
        return None

    def fails(self, start: Row, events: list[int]) -> int | None:
        """If `events` replay from `start` and hit the wanted violation, after how many."""
        self.replays += 1
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise OutOfTime
        row = start
        deadlock = self.want[0] == "deadlock"
        for n, ev in enumerate(events, 1):
            got = self.go(row, ev)
            if got is None:
                return None
            row, viol = got
            if viol:
                return self._found(start, events, n) if signature(viol[0]) == self.want \
                    else None
            if not deadlock and row.pv:
                return self._found(start, events, n) if signature(row.pv[0]) == self.want \
                    else None
        if deadlock and self.deadlocked(row):
            return self._found(start, events, len(events))
        return None

    def _found(self, start: Row, events: list[int], n: int) -> int:
        """`events[:n]` from `start` fail as wanted: the best so far if it is shorter."""
        best = self.best
        if best is None or n < len(best[1]):
            self.best = (start, events[:n])
        return n

    def rows(self, start: Row, events: list[int]) -> list[Row]:
        """The rows `events` go through from `start` (they must replay)."""
        out = [start]
        for ev in events:
            got = self.go(out[-1], ev)
            assert got is not None, "a shrunk run no longer replays"
            out.append(got[0])
        return out


# --- the passes -------------------------------------------------------------------------------


def cut_loops(w: Walker, start: Row, events: list[int]) -> list[int]:
    """Cut every loop: the events between two visits of the same state."""
    states = [start.state]
    at = {start.state: 0}
    # a plain walk keeping, for each state on the path so far, its position
    out: list[int] = []
    row = start
    for ev in events:
        got = w.go(row, ev)
        assert got is not None
        row = got[0]
        k = at.get(row.state)
        if k is not None:                         # back to a state of the path: cut the loop
            for s in states[k + 1:]:
                del at[s]
            del states[k + 1:]
            del out[k:]
            continue
        out.append(ev)
        states.append(row.state)
        at[row.state] = len(states) - 1
    if len(out) == len(events):
        return events
    return out if w.fails(start, out) is not None else events


def groups(w: Walker, start: Row, events: list[int]) -> list[list[int]]:
    """Positions of events that only go together: a crash and the next restart of its
    instance, a partition and the next heal, a send and the later events on what it sent."""
    kernel = w.kernel
    named = [kernel.event(ev) for ev in events]
    out: list[list[int]] = []
    for i, e in enumerate(named):
        if isinstance(e, Crash):
            inst = e.instance
            j = next((j for j, r in enumerate(named) if j > i and isinstance(r, Restart)
                      and r.instance == inst), None)
            if j is not None:
                out.append([i, j])
        elif isinstance(e, Partition):
            j = next((j for j, h in enumerate(named) if j > i and isinstance(h, Heal)), None)
            if j is not None:
                out.append([i, j])
    if not any(getattr(e, "envelope", None) is not None for e in named):
        return out                                # nothing delivered: no send has a group
    state = start.state
    for i, ev in enumerate(events):
        state, sends, _ = kernel.apply(state, ev)
        if not sends:
            continue
        sent = {kernel.envs[s] for s in sends}
        later = [j for j in range(i + 1, len(named))
                 if getattr(named[j], "envelope", None) in sent]
        if later:
            out.append([i, *later])
    return out


def drop_groups(w: Walker, start: Row, events: list[int]) -> list[int]:
    """Remove groups (`groups`) while one can be removed and the run still fails."""
    changed = True
    while changed and not w.over():
        changed = False
        for g in groups(w, start, events):
            if w.over():
                break
            gone = set(g)
            candidate = [ev for i, ev in enumerate(events) if i not in gone]
            n = w.fails(start, candidate)
            if n is not None:
                events = candidate[:n]
                changed = True
                break
    return events


def ddmin_events(w: Walker, start: Row, events: list[int]) -> list[int]:
    if w.over():
        return events
    small = ddmin(events, lambda c: not w.over() and w.fails(start, c) is not None)
    if small is events:
        return events
    n = w.fails(start, small)
    return small[:n] if n else small


@dataclass
class Search:
    """How the final breadth-first search went."""

    radius: int = 0                # the widest neighbourhood searched to the end
    expanded: int = 0              # states expanded, over every radius
    complete: bool = False         # searched to the end within `radius`
    everything: bool = False       # ... and no state was left out for being too far: the
    #                                result is a shortest failing run of all
    bound: int = 0                 # no failing run is shorter than this (the levels the
    #                                search from the initial states went through in full)


def bfs_shortest(w: Walker, inits: list[Row], near: set[State], best: int,
                 radius: int | None, budget: int, search: Search) -> tuple[Row, list[int]] | None:
    """A shortest run (shorter than `best`) from one of `inits` to the wanted failure through
    states within `radius` steps of `near` (a state of `near` is 0 steps away; the last
    state of the run may be one step further), or None.  Expands at most `budget` states:
    `search.complete` says whether it got to the end.  `radius` None: every state (a plain
    breadth-first search to depth `best - 1`); it stops when the walker's budget is spent
    (`Walker.over`), having raised `search.bound` level by level."""
    parent: dict[State, tuple[State, int] | None] = {}
    tag: dict[State, int] = {}
    level: list[Row] = []
    first: dict[State, Row] = {}
    left_out = False
    for r in inits:
        if r.state in parent:
            continue
        parent[r.state] = None
        tag[r.state] = 0 if r.state in near else 1
        first[r.state] = r
        level.append(r)
    depth = 0
    found: Row | None = None
    while level and depth + 1 < best and found is None:
        nxt_level: list[Row] = []
        # halfway through the states of a level to expand: what the first half came to,
        # projected on the whole level and the next (`_outgrows`), must fit in what is left
        todo = len(level) if radius is None else \
            sum(tag[r.state] < radius for r in level)
        half = (todo + 1) // 2 if w.limit is not None else 0
        done = 0
        for row in level:
            t = tag[row.state]
            if radius is not None and t >= radius:
                left_out = True
                continue
            if search.expanded >= budget or w.over():
                return None
            if done == half and done and _outgrows_level(
                    len(nxt_level), done, todo, min(OUTGROW_LEVELS, best - 2 - depth),
                    w.limit - w.cost):  # type: ignore[operator]
                return None                       # it would not end within the budget
            done += 1
            search.expanded += 1
            for ev, nxt, viol in w.moves(row):
                s = nxt.state
                if s in parent:
                    continue
                h = w.hit(nxt, viol)
                if h is False:
                    continue                      # fails another way: no way on from here
                parent[s] = (row.state, ev)
                tag[s] = 0 if s in near else t + 1
                first[s] = nxt
                if h:
                    found = nxt
                    break
                nxt_level.append(nxt)
            if found is not None:
                break
        was = len(level)
        level = nxt_level
        depth += 1
        if radius is None and found is None:      # no failing run of `depth` events or less
            search.bound = max(search.bound, depth + 1)
        if found is None and w.limit is not None and (
                _outgrows(len(level), was, min(OUTGROW_LEVELS, best - 1 - depth),
                          w.limit - w.cost)
                or radius is None and len(level) * (best - 1 - depth) > w.limit - w.cost):
            # it would not end within the budget: growing as the last level did, or (a plain
            # search, where levels seldom shrink) not growing at all
            return None
    search.complete = True
    search.everything = not left_out
    if found is None:
        return None
    events: list[int] = []
    s = found.state
    while (p := parent[s]) is not None:
        events.append(p[1])
        s = p[0]
    events.reverse()
    return first[s], events


def _outgrows(size: int, was: int, levels: int, left: int) -> bool:
    """Whether a breadth-first search whose level of `size` states came from one of `was`
    states, with `levels` more levels to expand, would come to more than `left` new states if
    it went on growing so (then it would not end within the budget, and a search that does not
    end finds nothing: better stop now than spend the rest).  A function of the search so
    far, so the same in every process (exact, in integers: level k after this one has
    size * (size / was) ** k states; after k levels, `total` is their sum times was ** k)."""
    total, scale, at = 0, 1, size
    for _ in range(levels):
        at *= size
        scale *= was
        total = total * was + at
        if total > left * scale:
            return True
    return False


def _outgrows_level(new: int, done: int, size: int, levels: int, left: int) -> bool:
    """Whether a level of `size` states, whose first `done` came to `new` new states, would
    come to more than `left` new states with the rest of it and `levels` more levels
    (`_outgrows`), its whole projected as its first part went: P = new * size / done states,
    then P * (P / size) ** k at the k-th level after (exact, in integers: everything times
    done ** (levels + 1) * size ** levels)."""
    at = new * size                               # P times done
    dn, sz = done ** levels, size ** levels
    total = (at - new * done) * dn * sz           # the rest of this level
    for k in range(1, levels + 1):
        total += at ** (k + 1) * done ** (levels - k) * size ** (levels - k)
    return total > left * done * dn * sz


@dataclass
class Shrunk:
    """A shrunk failing run: its initial row and events, and what each pass did."""

    start: Row
    events: list[int]
    removed: dict[str, int] = field(default_factory=dict)   # events removed, by pass
    search: Search = field(default_factory=Search)
    replays: int = 0
    cost: int = 0                  # states shrinking came to off the run (`Walker.cost`)
    interrupted: bool = False      # stopped halfway: the shortest found by then


_PASSES: tuple[tuple[str, Callable[[Walker, Row, list[int]], list[int]]], ...] = (
    ("loops", cut_loops), ("groups", drop_groups), ("ddmin", ddmin_events),
    ("loops", cut_loops))


def _passes(w: Walker, start: Row, events: list[int], removed: dict[str, int],
            which: slice = slice(None)) -> list[int]:
    for name, fn in _PASSES[which]:
        before = len(events)
        events = fn(w, start, events)
        removed[name] = removed.get(name, 0) + before - len(events)
    return events


def _fresh(w: Walker, start: Row, events: list[int], limit: int) -> None:
    """Count what `w` spends from here on against `limit`, from the states of this run."""
    w.seen = {r.state for r in w.rows(start, events)}
    w.cost = 0
    w.limit = limit


def shrink_run(kernel: Kernel, start: State, events: list[int], violation: Violation,
               any_initial: bool = True, budget: int | None = None,
               faults: frozenset[str] | None = None,
               earlier: tuple[State, list[int], Search] | None = None,
               deadline: float | None = None) -> Shrunk:
    """Shrink a failing run (event ids of `kernel`, from `start`) that ends in `violation`.
    With `any_initial` the result may start in another initial state (a shorter way to the
    same failure); `faults` are the kinds of faults the result may use (None: any the
    kernel offers).

    `budget` (default `budget_for(0)`) bounds the work in states off the run (`Walker.cost`):
    the removal passes may come to `budget` states the failing run did not visit (or
    `PASS_RATIO` per event of the run, if more), then the search to what is left of the
    budget, off the run they left, and what was found by then stands
    (a replay under way ends first).  The search (`bfs_shortest`) goes first through the
    run's states and their neighbours (radius 1), then through every state (a plain
    breadth-first search from the initial states, on half of what is left: when it ends, the
    result is a shortest failing run of all), else through wider neighbourhoods of the run
    while the budget lasts.

    `earlier`: what shrinking another failing run with the same violation gave (its start,
    events and search).  When it was found to be a shortest of all, it is the result at the
    cost of one replay; else it is the result unless cutting loops leaves a shorter run,
    which is then shrunk as usual.  The result is the shorter of the two (`earlier` on a
    tie).  (A campaign shrinks the first failing run of a violation with the budget of all
    of them, then the others with it as `earlier`.)

    Stopped halfway (KeyboardInterrupt: Ctrl-C, or `SpecTimeLimit`; `OutOfTime` past
    `deadline`, a `time.perf_counter()`), it lets the exception through with the shortest
    failing run it had replayed so far as its `shrunk` attribute (a `Shrunk` whose
    `interrupted` is set), when that is shorter than the run given."""
    w = Walker(kernel, signature(violation), faults, deadline)
    try:
        return _shrink(w, kernel, start, events, violation, any_initial, budget, faults,
                       earlier)
    except (KeyboardInterrupt, OutOfTime) as e:
        best = w.best
        if best is not None and len(best[1]) < len(events):
            e.shrunk = Shrunk(  # type: ignore[union-attr]
                best[0], list(best[1]), {"interrupted": len(events) - len(best[1])},
                replays=w.replays, cost=w.cost, interrupted=True)
        raise


def _shrink(w: Walker, kernel: Kernel, start: State, events: list[int],
            violation: Violation, any_initial: bool, budget: int | None,
            faults: frozenset[str] | None,
            earlier: tuple[State, list[int], Search] | None) -> Shrunk:
    """`shrink_run`'s work, with the walker whose `best` it leaves if it is stopped."""
    memo = w.memo
    row = memo.row(start)
    n = w.fails(row, events)
    if n is None:
        return Shrunk(row, events)
    events = events[:n]
    budget = budget if budget is not None else budget_for(0)
    out = Shrunk(row, events)
    _fresh(w, row, events, max(budget, PASS_RATIO * len(events)))
    other: Shrunk | None = None
    if earlier is not None:
        e_row = memo.row(earlier[0])
        if (any_initial or e_row.state == row.state) and \
                w.fails(e_row, list(earlier[1])) == len(earlier[1]):
            other = Shrunk(e_row, list(earlier[1]),
                           {"earlier": len(events) - len(earlier[1])}, earlier[2])
            if earlier[2].everything:             # a shortest of all: nothing to look for
                other.replays, other.cost = w.replays, w.cost
                return other
    # the cheap passes; with a shrunk run of another failure, the rest only if they left a
    # shorter run (it was shrunk with the budget of every failure of the violation)
    events = _passes(w, row, events, out.removed, slice(0, 1))
    if other is not None and len(other.events) <= len(events):
        other.replays, other.cost = w.replays, w.cost
        return other
    events = _passes(w, row, events, out.removed, slice(1, None))
    spent = w.cost
    budget = max(0, budget - spent)               # what is left for the search
    # what follows is a function of the run shrunk so far (and the budget left): the failing
    # runs of a campaign often come to the same one, and then share the search
    key = (row.state, tuple(events), w.want, budget, faults, any_initial)
    done = memo.shrunk.get(key)
    if done is not None:
        out.start, out.events, out.search = done[0], list(done[1]), done[2]
        for k, v in done[3].items():
            out.removed[k] = out.removed.get(k, 0) + v
        out.replays, out.cost = w.replays, spent + done[4]
        return out     # (shorter than `other`: the search only finds runs shorter than `best`)
    removed_before = dict(out.removed)
    _fresh(w, row, events, budget)
    # the neighbourhood: the states the run visits, shrunk so far, and then each shorter one
    near = set(w.seen)
    inits = [r for r, _ in memo.initial()] if any_initial else [row]
    if any_initial:                               # the run's own initial state first
        inits = [row] + [r for r in inits if r.state != row.state]
    search = out.search
    shortened = False

    def shorter(got: tuple[Row, list[int]] | None) -> None:
        nonlocal row, events, shortened
        if got is not None:
            before = len(events)
            row, events = got
            w._found(row, events, len(events))
            out.removed["bfs"] = out.removed.get("bfs", 0) + before - len(events)
            near.update(r.state for r in w.rows(row, events))
            shortened = True

    if events:                                    # the run's next-door neighbours first
        got = bfs_shortest(w, inits, near, len(events), 1, budget, search)
        if search.complete:
            search.radius = 1
            shorter(got)
    if events and not search.everything and not w.over():
        plain = Search()                          # then every state, on half what is left
        w.limit = w.cost + (budget - w.cost) // 2
        got = bfs_shortest(w, inits, set(), len(events), None, budget, plain)
        w.limit = budget
        search.expanded += plain.expanded
        search.bound = plain.bound
        if plain.complete:
            search.everything = True
            shorter(got)
    if events and not search.everything and search.radius == 1:
        for radius in range(2, MAX_RADIUS + 1):   # then wider neighbourhoods
            search.complete = False
            got = bfs_shortest(w, inits, near, len(events), radius, budget, search)
            if not search.complete:
                break                             # out of budget: the last radius stands
            search.radius = radius
            shorter(got)
            if search.everything or not events:
                break
    search.complete = search.everything or search.radius > 0
    if search.everything:
        search.bound = len(events)
    if shortened:
        events = _passes(w, row, events, out.removed)
    out.start, out.events, out.replays, out.cost = row, events, w.replays, spent + w.cost
    if len(memo.shrunk) < SHRUNK_MEMO:
        memo.shrunk[key] = (row, tuple(events), out.search,
                            {k: v - removed_before.get(k, 0) for k, v in out.removed.items()},
                            w.cost)
    return out


def proved_earlier(kernel: Kernel, want: Signature,
                   earlier: tuple[State, list[int], Search] | None,
                   faults: frozenset[str] | None = None) -> Shrunk | None:
    """`earlier` (`shrink_run`'s) as the result for any failing run with the violation `want`,
    without that run: when it was found to be a shortest of all and it replays to `want`."""
    if earlier is None or not earlier[2].everything:
        return None
    w = Walker(kernel, want, faults)
    start = w.memo.row(earlier[0])
    if w.fails(start, list(earlier[1])) != len(earlier[1]):
        return None
    return Shrunk(start, list(earlier[1]), {}, earlier[2], w.replays, len(earlier[1]))


def shrink(kernel: Kernel, start: State, events: list[dict[str, Any]],
           violation: Violation, faults: frozenset[str] | None = None
           ) -> list[dict[str, Any]]:
    """A short failing run (by name, from `start`, as `events` is) with the same failure;
    `faults`: the kinds of faults it may use (`fault_kinds` of the runs' rates; None: any
    the kernel offers, whose unlimited budget offers every kind once one rate is set).
    Ctrl-C lets KeyboardInterrupt through with the shortest failing run found by then as its
    `shrunk_events`, when shrinking had found one."""
    want = signature(violation)
    n = fails(kernel, start, events, want)
    if n is None:
        return events
    ids = []
    state = start
    for e in events[:n]:
        ev = kernel.event_id(state, e)
        nxt, _, viol = kernel.apply(state, ev)
        if nxt != state or viol:                  # a step that changes nothing goes
            ids.append(ev)
        state = nxt
    try:
        small = shrink_run(kernel, start, ids, violation, any_initial=False, faults=faults)
    except KeyboardInterrupt as e:            # (its shortest so far, by name, for the caller)
        part = getattr(e, "shrunk", None)
        if part is not None:
            e.shrunk_events = [  # type: ignore[attr-defined]
                kernel.event(ev).to_json() for ev in part.events]
        raise
    return [kernel.event(ev).to_json() for ev in small.events]
