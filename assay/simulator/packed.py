"""Plain runs on packed states: `run.run_once`'s plain loop (no timers, faults, lossy or
bounded links, choices or liveness watching; the uniform scheduler) walked on the compact
checker's packed ints instead of the kernel's state tuples.

A state is the int `checker.compact.Packing` makes of it (exact: no fingerprint), and its
moving events come from `CompactBFS.steps`: the generated code that reads each group of
instances' local ids and looks up their cached steps with the network at hand (one kernel
evaluation per instance, local state and network, not per global state), each step an event
and the difference of the packed state.  Per state the memo keeps a `PRow`: the property
verdict (`CompactBFS.property_violations`, memoised by the local states it read), then, once a
run moves on from it, its events sorted by `Kernel.event_key` with their differences and
violations.  A step is then a draw, an addition and a dictionary lookup of an int.

The runs are the same as `run_once`'s, event for event: the same draws (the unused fault
draw included) among the same events in the same canonical order, ended by the same
violation or the same final/deadlock verdict (`tests/test_simulator.py` compares them).
Nothing is fingerprinted or unpacked unless a report needs it (a failing run's states, a
worker's fingerprints).  Kernel semantics are untouched: every outcome is the kernel's.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from assay.checker.compact import CompactBFS, Relayout
from assay.checker.search import Search
from assay.kernel.kernel import Kernel, State
from assay.kernel.violation import Violation
from assay.simulator import run


def plain(kernel: Kernel, scheduler: str, watch_liveness: bool) -> bool:
    """Whether runs of `kernel` with this scheduler take the packed walk: `run_once`'s plain
    loop would (no timers, faults, bounded or lossy links, choices; the uniform scheduler; no
    liveness property to watch)."""
    return PACKED and _DRAWS and run.PLAIN and scheduler == "random" and kernel.lists_moves and \
        not (watch_liveness and kernel.system.liveness)


# `run_packed` draws as `Random.randrange(n)` does where it is `_randbelow_with_getrandbits`
_DRAWS = random.Random._randbelow is random.Random._randbelow_with_getrandbits  # type: ignore[attr-defined]
# the packed walk where it applies (False: always `run_once`, for tests and comparisons)
PACKED = True


class PRow:
    """One packed state's property verdict and, once expanded, its moving steps as
    (event, difference of the packed state, violations), sorted by `Kernel.event_key`."""

    __slots__ = ("pv", "steps", "bits", "end")

    def __init__(self, pv: tuple[Violation, ...]) -> None:
        self.pv = pv
        self.steps: Any = None                 # None: not expanded yet
        self.bits = 0                          # len(steps).bit_length(), for the draw
        self.end: str | None = None            # where nothing moves: final or deadlock


class PackedWalk:
    """The result of one packed run: its seed, first packed state, events, the packed states
    it met that were new to the `known` set it was given (in the order it met them), why it
    ended and the violation, if any."""

    __slots__ = ("seed", "start", "events", "new", "ended", "violation")

    def __init__(self, seed: int, start: int, events: list[int], new: list[int], ended: str,
                 violation: Violation | None) -> None:
        self.seed = seed
        self.start = start
        self.events = events
        self.new = new
        self.ended = ended
        self.violation = violation


class PackedMoves:
    """The packed memo of one kernel in one process: the compact search's packing, cached
    steps and property memo, and a `PRow` per packed state (at most `limit`)."""

    def __init__(self, kernel: Kernel, limit: int = 200_000) -> None:
        self.kernel = kernel
        self.limit = limit
        self.compact = CompactBFS(kernel, Search())
        self.rows: dict[int, PRow] = {}
        self.keys: dict[int, bytes] = {}            # `Kernel.event_key`, by event
        self.rank: dict[int, int] = {}              # events by key: their place in order
        self.inits: list[tuple[int, PRow, tuple[Violation, ...]]] | None = None

    def initial(self) -> list[tuple[int, PRow, tuple[Violation, ...]]]:
        if self.inits is None:
            self.inits = []
            for st, viol in self.kernel.initial_states():
                x = self.compact.pack(st)
                self.inits.append((x, self.row(x), viol))
        return self.inits

    def row(self, x: int) -> PRow:
        r = self.rows.get(x)
        if r is None:
            r = PRow(self.compact.property_violations(x))
            if len(self.rows) < self.limit:
                self.rows[x] = r
        return r

    def expand(self, x: int, row: PRow) -> Any:
        """Fill in `row`'s steps (those of `Kernel.moving_events`, in canonical order)."""
        try:
            steps = self.compact.successors(x)[0]
        except Relayout:                     # a field outgrew its bits: widen, then again
            _, steps, _ = self.compact.steps(x)
        if len(steps) > 1:
            rank = self.rank
            try:
                steps = sorted(steps, key=lambda s: rank[s[0]])
            except KeyError:                 # an event not ranked yet
                self._rank_anew(steps)
                steps = sorted(steps, key=lambda s: rank[s[0]])
        row.steps = steps
        row.bits = len(steps).bit_length()
        return steps

    def _rank_anew(self, steps: Any) -> None:
        """Rank every event known so far and those of `steps` by `Kernel.event_key` (the
        canonical order, the same in every kernel and process: interned ids are not)."""
        keys = self.keys
        for s in steps:
            if s[0] not in keys:
                keys[s[0]] = self.kernel.event_key(s[0])
        rank = self.rank
        rank.clear()
        last, r = None, 0
        for j, e in enumerate(sorted(keys, key=keys.__getitem__)):
            if keys[e] != last:              # equal keys, equal ranks: a stable sort by key
                last, r = keys[e], j
            rank[e] = r

    def state(self, x: int) -> State:
        return self.compact.packing.unpack(x)

    def stopped(self, x: int, row: PRow) -> str:
        """final or deadlock, for a state where nothing moves (`run_once`'s `stopped`)."""
        if row.end is None:
            k, st = self.kernel, self.state(x)
            row.end = "deadlock" if not k.can_progress(st) and not k.is_terminal(st) \
                else "final"
        return row.end


def packed_moves(kernel: Kernel) -> PackedMoves:
    """The `PackedMoves` memo of `kernel` in this process (it lives as long as the kernel)."""
    m: PackedMoves | None = kernel.engine_memos.get("packed")
    if m is None:
        m = kernel.engine_memos["packed"] = PackedMoves(kernel)
    return m


def run_packed(kernel: Kernel, seed: int, steps: int, known: set[int] | None = None
               ) -> PackedWalk:
    """`run_once(kernel, seed, steps, ...)` where `plain` says so: the same run, packed.  The
    states it meets that are not in `known` are added to it and listed (`PackedWalk.new`)."""
    memo = packed_moves(kernel)
    rng = random.Random(seed)
    inits = memo.initial()
    randrange: Callable[[int], int] = rng._randbelow  # type: ignore[attr-defined]
    x, row, viol = inits[randrange(len(inits))]
    start = x
    events: list[int] = []
    if known is None:
        known = set()
    new: list[int] = []
    if x not in known:
        known.add(x)
        new.append(x)
    first = viol[0] if viol else (row.pv or (None,))[0]
    if first is not None:
        return PackedWalk(seed, start, events, new, "violation", first)
    random_, getrandbits = rng.random, rng.getrandbits
    rows_get = memo.rows.get
    new_row = memo.row
    expand = memo.expand
    add_event, add_new, add_known = events.append, new.append, known.add
    for _ in range(steps):
        moves = row.steps
        if moves is None:
            moves = expand(x, row)
        random_()                            # `run_once`'s fault draw: the same draws
        if not moves:
            end = memo.stopped(x, row)
            return PackedWalk(seed, start, events, new, end,
                              kernel.deadlock() if end == "deadlock" else None)
        # `randrange(n)`, as `Random._randbelow_with_getrandbits` draws it (CPython 3.11+)
        n, k = len(moves), row.bits
        i = getrandbits(k)
        while i >= n:
            i = getrandbits(k)
        e, d, viol = moves[i]
        add_event(e)
        x += d
        if x not in known:
            add_known(x)
            add_new(x)
        row = rows_get(x) or new_row(x)
        if viol:
            return PackedWalk(seed, start, events, new, "violation", viol[0])
        if row.pv:
            return PackedWalk(seed, start, events, new, "violation", row.pv[0])
    return PackedWalk(seed, start, events, new, "steps", None)
