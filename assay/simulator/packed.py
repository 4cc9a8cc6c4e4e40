"""Plain runs on packed states: `run.run_once`'s plain loop (no timers, faults, lossy or
bounded links, choices or liveness watching; the uniform scheduler) walked on the compact
checker's packed ints instead of the kernel's state tuples.

A state is the int `checker.compact.Packing` makes of it (exact: no fingerprint), and its
moving events come from the compact search's caches of each group of instances' steps with the
network at hand (`CompactBFS.groups`, read by code generated here per layout: one kernel
evaluation per instance, local state and network, not per global state), each step an event
and the difference of the packed state.  Per state the memo keeps a row, made when a run first
meets the state: its property verdict (`CompactBFS.property_violations`, memoised by the local
states it read), then, if the run goes on from it, the tuple of its steps sorted by
`Kernel.event_key`.  Until then (or where no run may leave it) the row is an empty, false
`Pending`, so a step is a draw, an addition, a dictionary lookup of an int and one truth
test.  The rows also say which states were met (`PackedMoves`), and `walks` runs a campaign's
seeds in one generator, reseeding one `random.Random`.

The runs are the same as `run_once`'s, event for event: the same draws (the unused fault
draw included) among the same events in the same canonical order, ended by the same
violation or the same final/deadlock verdict (`tests/test_simulate_packed.py` and
`tests/test_simulate_packed_rows.py` compare them).
Nothing is fingerprinted or unpacked unless a report needs it (a failing run's states, a
worker's fingerprints).  Kernel semantics are untouched: every outcome is the kernel's.
"""
from __future__ import annotations

import _random
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from assay.checker.compact import CompactBFS, Relayout
from assay.checker.compact_loop import Step
from assay.checker.search import Search
from assay.errors import AssayError
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


class Pending(tuple):  # type: ignore[type-arg]
    """The row of a state met but not expanded yet (or that no run may leave: its property
    verdict `pv` is broken, or nothing moves there, `end`): an empty tuple, so that a row
    that is not a run's plain next step is false (the walk's one test per event)."""

    pv: tuple[Violation, ...] = ()
    end: str | None = None


# the row of every state met whose properties hold, until a run moves on from it
LAZY = Pending()


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
    steps and property memo, and a row per packed state (at most `limit`): a non-empty tuple
    of its moving steps (event, difference of the packed state, violations) in canonical
    order once a run moved on from it, else a `Pending` (its property verdict, or how a run
    ends there).

    The rows also say which states were met: while every row is kept, the `known` set the
    runs were given (`seen_by`) holds exactly the states with a row and those met after the
    table was full, so a run tests the set only for a state without a row.  A run given
    another set tests it at every step (and the rows no longer say what `seen_by` holds)."""

    def __init__(self, kernel: Kernel, limit: int = 200_000) -> None:
        self.kernel = kernel
        self.limit = limit
        self.compact = CompactBFS(kernel, Search())
        self.rows: dict[int, tuple[Step, ...] | Pending] = {}
        self.seen_by: set[int] | None = None
        self.keys: dict[int, bytes] = {}            # `Kernel.event_key`, by event
        self.rank: dict[int, int] = {}              # events by key: their place in order
        self.inits: list[tuple[int, tuple[Violation, ...]]] | None = None
        # n.bit_length() by n: the bits `randrange(n)` draws
        self.bits = [n.bit_length() for n in range(64)]
        self.ties = False                           # two events share a key
        self._steps: Callable[[int], list[Step]] = \
            lambda x: list(self.compact.successors(x)[0])

    def initial(self) -> list[tuple[int, tuple[Violation, ...]]]:
        if self.inits is None:
            self.inits = [(self.compact.pack(st), viol)
                          for st, viol in self.kernel.initial_states()]
            self._lookup()                   # packing them may have widened a field
        return self.inits

    def rows_get(self, known: set[int]) -> Callable[[int], Any]:
        """The walk's look-up of a state's row, for a run given `known`: `rows.get` where the
        rows say what `known` holds, else one that finds no row for a state not in `known`
        (the run then adds it)."""
        rows = self.rows
        if known is not self.seen_by:
            self.seen_by = known if not rows else None
        if known is self.seen_by:
            return rows.get
        get = rows.get
        return lambda x: get(x) if x in known else None

    def met(self, x: int, known: set[int], new: list[int], more: bool
            ) -> tuple[Step, ...] | Pending:
        """A state the run's look-up found no row for: note it in `known` and `new` if it is
        new to them, and its row (made now, if it has none: its property verdict, then, if
        they hold and the run goes on from it (`more`), its steps)."""
        if x not in known:
            known.add(x)
            new.append(x)
        rows = self.rows
        r = rows.get(x)
        if r is None:
            pv = self.compact.property_violations(x)
            if pv:
                r = Pending()
                r.pv = pv
            else:
                r = self._expanded(x) if more else LAZY
            if len(rows) < self.limit:
                rows[x] = r
        elif r is LAZY and more:
            r = self.expand(x)
        return r

    def expand(self, x: int) -> tuple[Step, ...] | Pending:
        """The row of `x` (met, not left yet) once a run moves on from it."""
        r = self._expanded(x)
        if x in self.rows:
            self.rows[x] = r
        return r

    def _expanded(self, x: int) -> tuple[Step, ...] | Pending:
        """The steps of `x` (those of `Kernel.moving_events`, in canonical order), or where
        none moves a `Pending` with how a run ends there (final or deadlock)."""
        try:
            steps = self._steps(x)
        except Relayout:                     # a field outgrew its bits: widen, then again
            steps = list(self.compact.steps(x)[1])
            self._lookup()
        r: tuple[Step, ...] | Pending
        if len(steps) > 1:
            rank = self.rank
            try:
                steps.sort(key=lambda s: rank[s[0]])
            except KeyError:                 # an event not ranked yet
                if self._rank_anew(steps):   # two events of one key: the kernel's order
                    self._lookup()
                    steps = list(self.compact.steps(x)[1])
                steps.sort(key=lambda s: rank[s[0]])
            r = tuple(steps)
            while len(r) >= len(self.bits):
                self.bits.append(len(self.bits).bit_length())
        elif steps:
            r = tuple(steps)
        else:
            k, st = self.kernel, self.state(x)
            r = Pending()
            r.end = "deadlock" if not k.can_progress(st) and not k.is_terminal(st) \
                else "final"
        return r

    def _lookup(self) -> None:
        """`_steps` for the compact search's current layout: straight-line code that reads
        each group of instances' cached entry (`CompactBFS.groups`) and lists their steps
        (deliveries and actions), group after group; sorted by rank they are
        `CompactBFS.successors`' steps in canonical order.  Where two events share a key
        (ranks tie, and the sort keeps the order it is given) or the search has no groups,
        `CompactBFS.successors` itself."""
        c = self.compact
        groups = c.groups()
        if groups is None or self.ties:
            self._steps = lambda x: list(c.successors(x)[0])
            return
        masks, caches, entry = groups
        lines = ["def steps(x):"]
        lines += [f"    e{g} = c{g}.get(x & {m}) or entry({g}, x)" for g, m in enumerate(masks)]
        every = ", ".join(f"*e{g}[0], *e{g}[1]" for g in range(len(masks)))
        lines += [f"    return [{every}]"]
        env: dict[str, Any] = {f"c{g}": cache for g, cache in enumerate(caches)}
        env["entry"] = entry
        exec("\n".join(lines), env)            # noqa: S102  (generated from ints only)
        self._steps = env["steps"]

    def _rank_anew(self, steps: Any) -> bool:
        """Rank every event known so far and those of `steps` by `Kernel.event_key` (the
        canonical order, the same in every kernel and process: interned ids are not).
        Whether two events share a key (for the first time)."""
        keys = self.keys
        for s in steps:
            if s[0] not in keys:
                keys[s[0]] = self.kernel.event_key(s[0])
        rank = self.rank
        rank.clear()
        last, r = None, 0
        ties = False
        for j, e in enumerate(sorted(keys, key=keys.__getitem__)):
            if keys[e] != last:              # equal keys, equal ranks: a stable sort by key
                last, r = keys[e], j
            else:
                ties = True
            rank[e] = r
        first, self.ties = ties and not self.ties, self.ties or ties
        return first

    def state(self, x: int) -> State:
        return self.compact.packing.unpack(x)


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
    return next(walks(kernel, (seed,), steps, set() if known is None else known))


# `random.Random(seed)` for an int seed is this on a new generator (`Random.seed` then sets
# `gauss_next`, which no draw of a run reads): one generator reseeded per run draws the same
_SEED = _random.Random.seed


def walks(kernel: Kernel, seeds: Iterable[int], steps: int, known: set[int]
          ) -> Iterator[PackedWalk]:
    """`run_packed` of each seed in turn (what a campaign's runs share is set up once)."""
    memo = packed_moves(kernel)
    rows_get = memo.rows_get(known)
    met, expand, bits, deadlock = memo.met, memo.expand, memo.bits, kernel.deadlock
    inits = memo.initial()
    rng = random.Random()
    reseed = _SEED
    random_, getrandbits = rng.random, rng.getrandbits
    ninits = len(inits)
    kinits = ninits.bit_length()
    for seed in seeds:
        events: list[int] = []
        try:
            reseed(rng, seed)
            i = getrandbits(kinits)              # `randrange(len(inits))`, as below
            while i >= ninits:
                i = getrandbits(kinits)
            x, viol = inits[i]
            start = x
            events = []
            new: list[int] = []
            ended, found = "steps", None
            moves = rows_get(x)
            if not moves:                        # no row, or a run has not left it yet
                if moves is None:
                    moves = met(x, known, new, not viol and steps > 0)
                if viol:
                    ended, found = "violation", viol[0]
                elif not moves:
                    if moves.pv:
                        ended, found = "violation", moves.pv[0]
                    elif steps > 0:
                        if moves is LAZY:
                            moves = expand(x)
                        if not moves:
                            ended = moves.end or "final"
                            found = deadlock() if ended == "deadlock" else None
            elif viol:
                ended, found = "violation", viol[0]
            if found is not None or ended != "steps" or steps < 1:
                yield PackedWalk(seed, start, events, new, ended, found)
                continue
            add_event = events.append
            for _ in range(steps):
                random_()                        # `run_once`'s fault draw: the same draws
                # `randrange(n)`, as `Random._randbelow_with_getrandbits` draws it (CPython 3.11+)
                n = len(moves)
                k = bits[n]
                i = getrandbits(k)
                while i >= n:
                    i = getrandbits(k)
                e, d, viol = moves[i]
                add_event(e)
                x += d
                moves = rows_get(x)
                if not moves:                    # new, not left yet, violating, or an end
                    if moves is None:
                        moves = met(x, known, new, not viol and len(events) < steps)
                    if viol:
                        ended, found = "violation", viol[0]
                        break
                    if not moves:
                        if moves.pv:
                            ended, found = "violation", moves.pv[0]
                            break
                        if len(events) == steps:
                            break
                        if moves is LAZY:
                            moves = expand(x)
                        if not moves:
                            ended = moves.end or "final"
                            if ended == "deadlock":
                                found = deadlock()
                            break
                elif viol:
                    ended, found = "violation", viol[0]
                    break
            yield PackedWalk(seed, start, events, new, ended, found)
        except AssayError as err:        # which run, and how far it had gone: to replay it
            raise run.ran_into(err, seed, events) from None
