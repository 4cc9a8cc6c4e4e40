"""Handlers must be functions of (local state, event): local steps run twice.

The kernel memoises every local step by (local state, event), so a handler that reads the
clock, random numbers, object identities or a module-level counter would be explored with
whichever result it gave first, and a run could not be replayed.  On a memo miss (the first
time a step is computed) the kernel runs it twice and compares the results; two different
results are a `SpecError`.  Detection is by example: a handler whose two runs happen to agree
is not caught.  The two runs see other random numbers and other clocks (`outside`), so a
read of `random` or of `time` through its module is caught every time (not `from time import
time`, `datetime.now()`, `os.urandom`: those are left to chance).

Which misses are checked (`Sampler`): every one of the first `FIRST` misses of each handler,
action and hook of each instance, and of the guards and domains of its local states (all of
them for one local state, together), then one in `EVERY` — a fixed rule, no randomness, so a
run is the same every time.  Where local states repeat (components exchanging messages)
the misses are few and all are checked; where every state is a new local state (one component
holding every variable: each state a miss) the check would otherwise double the cost of the
whole search.
"""
from __future__ import annotations

import _random
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from assay.errors import Location, SpecError, object_location
from assay.kernel.exec import Branched, Result
from assay.kernel.reorder import ACTIVE as REORDERED
from assay.kernel.violation import Violation
from assay.model.show import show
from assay.model.types import canonical

# byte strings whose objects fill the small-object allocator's size classes of 48..256 bytes
_FILLERS = tuple(16 * k - 33 for k in range(3, 17))
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


FIRST = 1000          # misses of each step family checked in full ...
EVERY = 64            # ... then one in EVERY


class Sampler:
    """Which memo misses get the determinism check: per key (an instance and one of its
    handlers, actions, guards or hooks), the first `FIRST`, then every `EVERY`-th."""

    __slots__ = ("counts", "first", "every")

    def __init__(self, first: int = FIRST, every: int = EVERY) -> None:
        self.counts: dict[Any, int] = {}
        self.first = first
        self.every = every

    def due(self, key: Any) -> bool:
        """Count one miss of `key`; whether to check it."""
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        return n <= self.first or n % self.every == 0


def twice(run: Callable[[], Any]) -> tuple[Any, Any]:
    """Run a local step twice.  Between the runs, a few objects of the usual small sizes are
    kept alive, so the second run's new objects get other addresses than the first's (which
    were freed): a handler that reads `id()` (or the default `hash()`) of a new object sees
    another value.  The second run sees its sets iterated the other way round
    (`reorder`): a handler whose result follows a set's order (which follows
    PYTHONHASHSEED) gives another result.  And each run sees its own outside world:
    `random`'s shared generator seeded with the run's number (seeds 0 and 1 give other first
    results for `random() < p`, `randint`, `choice`, `randrange`, `getrandbits`, `sample`,
    `uniform`), and in this thread the clocks of `time` stopped at one instant (the second
    run's `_AHEAD` later), so a handler that reads them is caught every time, not only when
    two draws happen to differ.  Both are put back afterwards: the caller's random numbers go
    on as if nothing had drawn from them, other threads' clocks are never touched.

    (Checks are many — on a whole-state component, every action's guards in each of the
    first 1,000 states, then in one in 64 — so the world is set cheaply: the generator's
    state is read once for both runs, each run's seeded state copied in rather than computed
    by `seed`, and the stopped clocks made once per thread: `_clocks`.)"""
    saved, gauss = _GET(_SHARED), _SHARED.gauss_next
    real, stopped = _clocks()
    try:
        _enter(0, stopped)
        first = run()
        keep = [object(), *[b"x" * n for n in _FILLERS]]
        _enter(1, stopped)
        second = run()
        del keep
    finally:
        REORDERED[0] = False
        for name, fn in real:
            setattr(time, name, fn)
        _SET(_SHARED, saved)
        _SHARED.gauss_next = gauss
    return first, second


def in_world(k: int, run: Callable[[], Any]) -> Any:
    """One of `twice`'s runs alone, in the outside world of its run `k` (0 or 1), everything
    put back afterwards: a runtime node runs the first on a message's way and the second
    when it is idle, and compares them then (`Kernel.check_deferred`)."""
    saved, gauss = _GET(_SHARED), _SHARED.gauss_next
    real, stopped = _clocks()
    try:
        _enter(k, stopped)
        return run()
    finally:
        REORDERED[0] = False
        for name, fn in real:
            setattr(time, name, fn)
        _SET(_SHARED, saved)
        _SHARED.gauss_next = gauss


def _enter(k: int, stopped: tuple[_Pairs, _Pairs]) -> None:
    """Set the outside world of run `k`: `random` seeded with k, the clocks stopped at run
    k's instant, and (run 1) sets iterated the other way round (`reorder`)."""
    _SET(_SHARED, _SEEDED[k])
    _SHARED.gauss_next = None
    for name, fn in stopped[k]:
        setattr(time, name, fn)
    REORDERED[0] = k == 1


# the clocks of the `time` module a handler may read (through the module: `time.time()`)
_CLOCKS = ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns")
# the second run's clocks are this far ahead (seconds): an odd count of seconds and of
# nanoseconds and half a second, so `time_ns() % 2`, `int(time()) % 2`, `time() % 1 < 0.5`
# and a comparison with "now + 1 s" differ
_AHEAD = 1.500_000_001
_AHEAD_NS = 1_500_000_001        # (in ints: a float of today's nanoseconds is rounded to 256)

# the generator behind `random`'s module functions (also those imported by name: `from
# random import random` is a method of it), its state read and written in C, and its state
# after `seed(0)` and after `seed(1)`
_SHARED: Any = random.seed.__self__         # type: ignore[attr-defined]
_GET, _SET = _random.Random.getstate, _random.Random.setstate
_SEEDED = (random.Random(0).getstate()[1], random.Random(1).getstate()[1])

# per thread: the clocks of `time` it found, and for each run those to set (`_clocks`)
_Pairs = tuple[tuple[str, Any], ...]
_STOPPED: dict[int, tuple[_Pairs, tuple[_Pairs, _Pairs]]] = {}


def _clocks() -> tuple[_Pairs, tuple[_Pairs, _Pairs]]:
    """The clocks of `time` now, and for runs 0 and 1 those to set: each the one found, but
    stopped in this thread.  Made once per thread, and again when a clock is not the one they
    were made from (another thread's check, or a caller's own patch, is in place)."""
    me = threading.get_ident()
    made = _STOPPED.get(me)
    if made is not None and all(getattr(time, name) is fn for name, fn in made[0]):
        return made
    real = tuple((name, getattr(time, name)) for name in _CLOCKS)
    runs = tuple(tuple((name, _stopped(fn, _BASE[name] + (
        _AHEAD_NS if name.endswith("_ns") else _AHEAD) * run, me)) for name, fn in real)
        for run in (0, 1))
    made = _STOPPED[me] = (real, (runs[0], runs[1]))
    return made


@contextmanager
def outside(run: int) -> Iterator[None]:
    """The outside world of one of `twice`'s runs, for code run once in it (a property
    evaluated again, `reorder`): `random`'s shared generator seeded with `run`, and in this
    thread the clocks of `time` stopped (`run` 1: `_AHEAD` later than 0); both put back
    afterwards."""
    saved, gauss = _GET(_SHARED), _SHARED.gauss_next
    real, stopped = _clocks()
    try:
        _SET(_SHARED, _SEEDED[run])
        _SHARED.gauss_next = None
        for name, fn in stopped[run]:
            setattr(time, name, fn)
        yield
    finally:
        for name, fn in real:
            setattr(time, name, fn)
        _SET(_SHARED, saved)
        _SHARED.gauss_next = gauss


def _stopped(real: Callable[[], Any], value: Any, thread: int) -> Callable[[], Any]:
    """`real`, but `value` in `thread`."""
    def clock() -> Any:
        return value if threading.get_ident() == thread else real()
    return clock


# the instant the first runs' clocks are stopped at: now when this module was loaded, an even
# count of nanoseconds and a whole, even count of seconds
_BASE = {name: (int(getattr(time, name)()) // 2 * 2 if not name.endswith("_ns") else
                getattr(time, name)() // 2_000_000_000 * 2_000_000_000)
         for name in _CLOCKS}


def result_difference(fields: tuple[str, ...], a: Result, b: Result,
                      exact: bool = False) -> str | None:
    """What differs between two runs of one local step (None: nothing).  `exact`: compare the
    new states by their canonical bytes too (a field of a bare `tuple` type may hold `1` or
    `True`, which Python finds equal)."""
    if a[0] != b[0] or exact and _canon(a[0]) != _canon(b[0]):
        diffs = [f"{f} = {x!r}, then {y!r}" for f, x, y in zip(fields, a[0], b[0]) if x != y]
        return "the new state: " + ("; ".join(diffs) or f"{a[0]!r}, then {b[0]!r}")
    if a[1] != b[1] and _by_link(a[1]) != _by_link(b[1]):
        return (f"the messages sent: {_sends(a[1])}, then {_sends(b[1])}")
    va, vb = [_violation_key(v) for v in a[2]], [_violation_key(v) for v in b[2]]
    if va != vb:
        return (f"the violations: {'; '.join(v.message for v in a[2]) or 'none'}, then "
                f"{'; '.join(v.message for v in b[2]) or 'none'}")
    if a[3] != b[3]:
        return f"the timers set or cancelled: {list(a[3])}, then {list(b[3])}"
    return None


def step_difference(fields: tuple[str, ...], a: Result | Branched, b: Result | Branched,
                    exact: bool = False) -> str | None:
    """`result_difference` for steps that may choose (`Runner.explore`): the same ways to
    choose, and the same result for each."""
    if not isinstance(a, Branched) and not isinstance(b, Branched):
        return result_difference(fields, a, b, exact)      # type: ignore[arg-type]
    ra = a.runs if isinstance(a, Branched) else [((), a)]
    rb = b.runs if isinstance(b, Branched) else [((), b)]
    if len(ra) != len(rb) or any(_canon(x) != _canon(y) for (x, _), (y, _) in zip(ra, rb)):
        return (f"the choices: {[list(c) for c, _ in ra]}, then "
                f"{[list(c) for c, _ in rb]}")
    for (chose, x), (_, y) in zip(ra, rb):
        diff = result_difference(fields, x, y, exact)
        if diff is not None:
            return f"{diff} (choosing {', '.join(repr(c) for c in chose)})"
    return None


def enabled_difference(a: list[tuple[bool, Any]], b: list[tuple[bool, Any]]) -> str | None:
    """What differs between two computations of an action's enabled arguments."""
    if len(a) == len(b) and all(x[0] == y[0] and _canon((x[1],)) == _canon((y[1],))
                                for x, y in zip(a, b)):
        return None
    return f"{_enabled(a)}, then {_enabled(b)}"


def _enabled(args: list[tuple[bool, Any]]) -> str:
    if not args:
        return "not enabled"
    return "enabled with " + ", ".join(repr(x) for _, x in args) if args[0][0] else "enabled"


def nondeterministic(owner: str, what: str, subject: str, fn: Any, difference: str,
                     state: str) -> SpecError:
    """The error for a local step whose two runs differ.  `owner` names the component and
    its handler (`Follower.on_promote of f`), `subject` the event kind (`message`, `action`,
    `timer`, ...), `fn` the code (for its file and line)."""
    loc: Location | None = None
    code = getattr(fn, "__code__", None)
    if code is not None and code.co_name == "<lambda>":     # (in a decorator: its own line)
        loc = Location(code.co_filename, code.co_firstlineno)
    elif fn is not None:
        loc = object_location(fn)
    return SpecError(
        f"{owner} gave two different results for the same state and {subject}: it reads the "
        "clock, random numbers or other outside state",
        loc, [f"what differed: {difference}",
              f"{what}, in state {state}",
              "handlers, actions, guards and restart hooks must be functions of the "
              "instance's state and the event alone (use self.after(...) for time, an "
              "action over= a domain for a choice): the checker, the simulator, replay and "
              "the runtime all rely on it",
              "a set has no order of its own (a set of strs iterates in an order that follows "
              "PYTHONHASHSEED), and the second run iterated each set the other way round: "
              "take sorted(s), min(s) or max(s), not the first element of s"])


def _canon(values: tuple[Any, ...]) -> bytes | None:
    try:
        return canonical(values)
    except Exception:          # a value assay cannot encode: the handler broke a type rule
        return None


def _by_link(sends: list[Any]) -> list[Any]:
    """Sends in the kernel's order (`Kernel._sends`): only the order on each link counts, so a
    handler may send to the peers of a set in the set's order."""
    return sorted(sends, key=lambda s: (s.port, s.dst, s.dst_port))


def _sends(sends: list[Any]) -> str:
    return "[" + ", ".join(f"{show(s.message)} to {s.dst}" for s in sends) + "]"


def _violation_key(v: Violation) -> tuple[Any, ...]:
    # the message may quote a fresh object's address (`<X object at 0x...>`): not a result
    return (v.kind, v.blame, v.name, v.location, _ADDRESS.sub("0x?", v.message))
