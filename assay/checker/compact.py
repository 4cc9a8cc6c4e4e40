"""Breadth-first search with compact storage (the default of `check`): the same search as
`bfs.py`, in the same order, with the same counts and counterexamples, in a fraction of the
memory and time.

A global state is packed into one int (`Packing`): each instance's local id in a bit field of
its own, the rest of the state (the network; with timers or faults, the whole tail) interned
and its id above them all.  Packing is injective, so the visited set is exact — a `set` of
ints, no fingerprints, no collision — and the frontier is a flat `array('Q')` (8 bytes a
state).  No parent is kept: each level stays in its array, and a counterexample is rebuilt
backwards, by finding in the level before the first state (in search order) with a step to
the state at hand — the state that reached it first, with the event that did.

Where the short state form allows it (no timers, faults, bounded or lossy links, choices or
symmetry) successors come from a cache per (instance, local id, network id): the steps of that
instance that change something, as (event, difference of the packed state, violations), so a
state's successors are its packed value plus those differences; the order is `successors`'
(deliveries by envelope id, then actions by instance).  Adjacent small fields are read and
cached together (a group of instances: one lookup), by straight-line code generated for the
current layout.  Elsewhere `Kernel.successors` (or the symmetry's) runs on the unpacked state
and its successors are packed.

A field outgrowing its width (a new local state, a new network) grows by a new piece of bits
above every bit in use (`Packing`): the ints already stored keep their meaning (their new bits
are 0), so nothing is rewritten.  The visited set is 64 `set`s by the low bits of a state, so
no moment holds two copies of one big table (a `set` resizing).  Finished levels of a large
search wait on disk.  Past `--max-memory` the visited set and the levels move to files in a
temporary directory (sorted runs of 64-bit keys, an index in memory, one block read per run
and lookup) and the search goes on; a state wider than 64 bits is kept there as a 64-bit
fingerprint, and only then can two states be taken for one: the report then gives TLC's
optimistic estimate of that probability.
"""
from __future__ import annotations

import functools
import heapq
import operator
import os
import tempfile
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from assay.checker.compact_loop import VIOLATES, Entry, LevelLoop, Step, level_loop
from assay.checker.search import Outcome, Search, Tally, resident_bytes
from assay.kernel.extended import successors_extended
from assay.kernel.kernel import _NOOP as NOOP
from assay.kernel.kernel import DEFERRED, Kernel, State
from assay.kernel.network import Unordered
from assay.kernel.violation import Violation

if TYPE_CHECKING:
    from assay.checker.symmetry import Symmetry

SHARDS = 64                # the visited set in memory: sets by the low 6 bits of a state
SHARD_MASK = SHARDS - 1
GROUP_BITS = 8             # instances whose steps are cached together: this many bits of ids
LEVELS_IN_MEMORY = 1 << 16  # more states than this in finished levels: they go to disk
CACHE_MOST = 1 << 18       # entries per instance's successor cache before it is cleared
CACHE_SAMPLE = 1 << 15     # misses of a group's cache between two looks at its hit rate


class Relayout(Exception):
    """A value (local id of instance `i`, or with i = -1 the rest's id) does not fit its field:
    grow the field, then retry."""

    def __init__(self, i: int, value: int) -> None:
        super().__init__(i, value)
        self.i = i
        self.value = value


class Packing:
    """Global states <-> ints.  Field f (instance f's local id; the last field: the interned
    rest of the state, `rests`) is held in one or more pieces of bits: a value v is the sum
    of its pieces' bits, each piece (offset, width, shift) holding bits [shift, shift + width)
    of v at [offset, offset + width) of the int.  A field grows by a new piece above every
    bit in use: the ints of the states already stored do not change (their new pieces are 0),
    so nothing is rewritten, and a piece doubles the field's bits, so there are few."""

    START_WIDTH = 2            # bits of each field at first

    def __init__(self, kernel: Kernel) -> None:
        self.extended = kernel.extended
        self.n = len(kernel.instances)
        self.rests: list[Any] = []
        self.rest_ids: dict[Any, int] = {}
        w = self.START_WIDTH
        self.pieces: list[list[tuple[int, int, int]]] = [
            [(f * w, w, 0)] for f in range(self.n + 1)]
        self.top = (self.n + 1) * w
        self.cap = [1 << w] * (self.n + 1)
        self.wide = self.top > 64
        # per field, its pieces with each run of pieces that are adjacent both in the int
        # and in the value merged into one (a field that grew while no other did: one run)
        self.runs = [list(p) for p in self.pieces]
        self._fast: tuple[Callable[[int], State], list[dict[int, int]],
                          Callable[[int], int]] | None = None
        self._coded: tuple[list[Callable[[int], int]], list[Callable[[int], int]],
                           Callable[[State], int]] | None = None

    def grow(self, f: int, value: int) -> None:
        """Add a piece to field f so that it holds `value`."""
        have = self.cap[f].bit_length() - 1
        add = max(value.bit_length() - have, have)
        self.pieces[f].append((self.top, add, have))
        self.top += add
        self.cap[f] = 1 << (have + add)
        self.wide = self.wide or self.top > 64
        runs: list[tuple[int, int, int]] = []
        for off, w, sh in self.pieces[f]:
            if runs and runs[-1][0] + runs[-1][1] == off and runs[-1][2] + runs[-1][1] == sh:
                o, w0, s0 = runs.pop()
                runs.append((o, w0 + w, s0))
            else:
                runs.append((off, w, sh))
        self.runs[f] = runs
        self._fast = None
        self._coded = None

    def fast(self) -> tuple[Callable[[int], State], list[dict[int, int]], Callable[[int], int]]:
        """For this layout: `unpack` and `place` of the rest's id as straight-line code, and
        per instance a memo of `place` (local ids are few); made again after a field grows."""
        if self._fast is None:
            n = self.n
            locals_ = "".join(f"{self.code(i, 'x')}, " for i in range(n))
            rest = f"rests[{self.code(n, 'x')}]"
            body = f"(({locals_}), *{rest})" if self.extended else f"(({locals_}), {rest})"
            place = " | ".join(f"((v >> {sh} & {(1 << w) - 1}) << {off})"
                               for off, w, sh in self.runs[n])
            env: dict[str, Any] = {"rests": self.rests}
            exec(f"def unpack(x):\n    return {body}\n"      # noqa: S102  (ints only)
                 f"def place(v):\n    return {place}\n", env)
            self._fast = (env["unpack"], [{} for _ in range(n)], env["place"])
        return self._fast

    def coded(self) -> tuple[list[Callable[[int], int]], list[Callable[[int], int]],
                             Callable[[State], int]]:
        """For this layout, as straight-line code: per field its `place` and its `value`,
        and `pack` (made again after a field grows)."""
        if self._coded is None:
            n = self.n
            src: list[str] = []
            for f in range(n + 1):
                place = " | ".join(f"((v >> {sh} & {(1 << w) - 1}) << {off})" if sh else
                                   f"((v & {(1 << w) - 1}) << {off})"
                                   for off, w, sh in self.runs[f])
                src += [f"def place{f}(v):", f"    return {place}",
                        f"def value{f}(x):", f"    return {self.code(f, 'x')}"]
            rest = "state[1:]" if self.extended else "state[1]"
            src += ["def pack(state):",
                    f"    r = rest_ids.get({rest})",
                    "    if r is None:",
                    f"        r = rest_id({rest})",
                    f"    if r >= {self.cap[n]}:",
                    "        raise Relayout(-1, r)",
                    "    ls = state[0]"]
            for i in range(n):
                src += [f"    a{i} = ls[{i}]",
                        f"    if a{i} >= {self.cap[i]}:",
                        f"        raise Relayout({i}, a{i})"]
            terms = [f"place{n}(r)"] + [f"place{i}(a{i})" for i in range(n)]
            if n <= 256:
                src += ["    return " + " | ".join(terms)]
            else:                                 # (one expression that deep: RecursionError
                src += ["    x = " + terms[0]]    # in the compiler, at ~10,000 instances)
                src += [f"    x |= {t}" for t in terms[1:]] + ["    return x"]
            env: dict[str, Any] = {"rest_ids": self.rest_ids, "rest_id": self.rest_id,
                                   "Relayout": Relayout}
            exec("\n".join(src), env)             # noqa: S102  (ints only)
            self._coded = ([env[f"place{f}"] for f in range(n + 1)],
                           [env[f"value{f}"] for f in range(n + 1)], env["pack"])
        return self._coded

    def place(self, f: int, v: int) -> int:
        """Value v of field f where it goes in the int (v < cap[f])."""
        x = 0
        for off, w, sh in self.runs[f]:
            x |= (v >> sh & ((1 << w) - 1)) << off
        return x

    def value(self, f: int, x: int) -> int:
        v = 0
        for off, w, sh in self.runs[f]:
            v |= (x >> off & ((1 << w) - 1)) << sh
        return v

    def mask(self, f: int) -> int:
        """The bits of field f."""
        return self.place(f, self.cap[f] - 1)

    def rest_id(self, rest: Any) -> int:
        r = self.rest_ids.get(rest)
        if r is None:
            r = self.rest_ids[rest] = len(self.rests)
            self.rests.append(rest)
        return r

    def pack(self, state: State) -> int:
        return self.coded()[2](state)

    def unpack(self, x: int) -> State:
        return self.fast()[0](x)            # (straight-line code: a property's every state)

    def fields(self, x: int) -> tuple[int, ...]:
        return tuple([self.value(f, x) for f in range(self.n + 1)])

    def code(self, f: int, x: str) -> str:
        """Python source of field f's value in the int named `x`."""
        return " | ".join(f"(({x} >> {off} & {(1 << w) - 1}) << {sh})" if sh else
                          f"({x} >> {off} & {(1 << w) - 1})" for off, w, sh in self.pieces[f])


class Levels:
    """The levels of the search, in order, each an `array('Q')` of packed states (a `list`
    once states may be wider than 64 bits), kept for counterexamples (the last one is the
    level being built); `spill` writes all but those in use to files."""

    def __init__(self, packing: Packing) -> None:
        self.packing = packing
        self.levels: list[Any] = []            # in memory: array or list; on disk: a path

    def new(self) -> Any:
        lv: Any = [] if self.packing.wide else array("Q")
        self.levels.append(lv)
        return lv

    def __getitem__(self, d: int) -> Any:
        lv = self.levels[d]
        return _read(lv) if isinstance(lv, str) else lv

    def widen(self) -> None:
        """States may now be wider than 64 bits: levels in memory become lists."""
        for d, lv in enumerate(self.levels):
            if type(lv) is array:
                self.levels[d] = list(lv)

    def spill(self, dir: str, in_use: int) -> None:
        """Write every level but the last `in_use` to files."""
        for d in range(len(self.levels) - in_use):
            lv = self.levels[d]
            if not isinstance(lv, str):
                path = os.path.join(dir, f"level{d}")
                _write(path, lv)
                self.levels[d] = path


def _write(path: str, xs: Any) -> None:
    with open(path, "wb") as f:
        if type(xs) is array:
            f.write(b"Q")
            xs.tofile(f)
        else:
            f.write(b"L")
            for x in xs:
                b = x.to_bytes((x.bit_length() + 7) // 8 or 1, "little")
                f.write(len(b).to_bytes(2, "little") + b)


def _read(path: str) -> Any:
    with open(path, "rb") as f:
        kind = f.read(1)
        data = f.read()
    if kind == b"Q":
        a = array("Q")
        a.frombytes(data)
        return a
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 2], "little")
        out.append(int.from_bytes(data[i + 2:i + 2 + n], "little"))
        i += 2 + n
    return out


class DiskRuns:
    """Visited states moved to disk: sorted runs of 64-bit keys, each with every BLOCK-th key
    in memory; a lookup reads one block of each run, unless a bitmap in memory (FILTER_BITS
    bits a key, one bit set per key) says the key is in none (most new states)."""

    BLOCK = 512
    FILTER_BITS = 16

    def __init__(self, dir: str, name: str) -> None:
        self.dir = dir
        self.name = name
        self.runs: list[tuple[str, int, array]] = []      # (path, descriptor, index)
        self.count = 0
        self._made = 0
        self.min_gap: int | None = None     # least difference of two keys in one run
        self._bits = bytearray()
        self._size = 0                      # bits in the filter (a prime), 0: none yet

    MOST_RUNS = 4               # more runs than this are merged into one

    def add_run(self, keys: list[int]) -> None:
        if keys:
            self._made += 1
            self._write_run(os.path.join(self.dir, f"{self.name}{self._made}"), keys)
        if len(self.runs) > self.MOST_RUNS:
            self._merge()
        if self.count * self.FILTER_BITS > self._size:
            self._refilter()                # room for twice as many keys: every key again
        else:
            self._mark(keys)

    def _refilter(self) -> None:
        size = _prime_above(max(self.count, 1 << 10) * self.FILTER_BITS * 2)
        self._bits = bytearray((size + 7) // 8)
        self._size = size
        for _, fd, _ in self.runs:
            self._mark(_keys(fd))

    def _mark(self, keys: Iterable[int]) -> None:
        bits, size = self._bits, self._size
        for k in keys:
            h = k % size
            bits[h >> 3] |= 1 << (h & 7)

    def _merge(self) -> None:
        """Merge every run into one (streamed: a block of each run in memory at a time)."""
        runs, self.runs = self.runs, []
        self._made += 1
        path = os.path.join(self.dir, f"{self.name}{self._made}")
        index = array("Q")
        n = 0
        with open(path, "wb") as f:
            out = array("Q")
            prev = None
            for k in heapq.merge(*[_keys(fd) for _, fd, _ in runs]):
                if prev is not None and (self.min_gap is None or k - prev < self.min_gap):
                    self.min_gap = k - prev
                prev = k
                if not n % self.BLOCK:
                    index.append(k)
                n += 1
                out.append(k)
                if len(out) >= 1 << 16:
                    out.tofile(f)
                    out = array("Q")
            out.tofile(f)
        for old, fd, _ in runs:
            os.close(fd)
            os.remove(old)
        self.runs.append((path, os.open(path, os.O_RDONLY), index))

    def _write_run(self, path: str, keys: list[int]) -> None:
        keys.sort()
        a = array("Q", keys)
        if len(a) > 1:
            gap = min(y - x for x, y in zip(a, a[1:]))
            self.min_gap = gap if self.min_gap is None else min(self.min_gap, gap)
        with open(path, "wb") as f:
            a.tofile(f)
        self.runs.append((path, os.open(path, os.O_RDONLY), array("Q", a[::self.BLOCK])))
        self.count += len(a)

    def __contains__(self, key: int) -> bool:
        if not self._size:
            return False
        h = key % self._size
        if not self._bits[h >> 3] >> (h & 7) & 1:
            return False
        size = self.BLOCK * 8
        for _, fd, index in self.runs:
            b = bisect_right(index, key) - 1
            if b < 0:
                continue
            block = array("Q")
            block.frombytes(os.pread(fd, size, b * size))
            j = bisect_left(block, key)
            if j < len(block) and block[j] == key:
                return True
        return False

    def close(self) -> None:
        for _, fd, _ in self.runs:
            os.close(fd)
        self.runs.clear()


def _prime_above(n: int) -> int:
    n |= 1
    while any(n % d == 0 for d in range(3, int(n ** 0.5) + 1, 2)):
        n += 2
    return n


def _keys(fd: int) -> Iterator[int]:
    """The keys of a run, read a block of 64 Ki at a time."""
    pos = 0
    while True:
        data = os.pread(fd, 8 << 16, pos)
        if not data:
            return
        pos += len(data)
        block = array("Q")
        block.frombytes(data)
        yield from block


M64 = (1 << 64) - 1


class Visited:
    """The visited set: packed ints in memory; after a spill, also 64-bit keys on disk: the
    packed int itself when it fits in 64 bits (exact), else a 64-bit fingerprint of its
    fields (then a collision is possible: `fingerprints` counts them, for the report)."""

    def __init__(self, packing: Packing) -> None:
        self.packing = packing
        # in memory: 64 sets by the low bits (each resizes on its own: no moment with two
        # copies of one big table, and their loads differ, so the average is not the worst)
        self.shards: list[set[int]] = [set() for _ in range(SHARDS)]
        self.disk: DiskRuns | None = None
        self.fpdisk: DiskRuns | None = None
        self.fingerprints = 0

    def __len__(self) -> int:
        return self.in_memory + self.on_disk_count

    @property
    def in_memory(self) -> int:
        return sum(map(len, self.shards))

    def __contains__(self, x: int) -> bool:
        return x in self.shards[x & SHARD_MASK] or self.on_disk(x)

    def add(self, x: int) -> None:
        self.shards[x & SHARD_MASK].add(x)

    @property
    def on_disk_count(self) -> int:
        return self.disk.count + self.fpdisk.count if self.disk and self.fpdisk else 0

    def close(self) -> None:
        for d in (self.disk, self.fpdisk):
            if d is not None:
                d.close()

    def key(self, x: int) -> int:
        return x if x <= M64 else hash(self.packing.fields(x)) & M64

    def on_disk(self, x: int) -> bool:
        if x <= M64:
            return self.disk is not None and x in self.disk
        return self.fpdisk is not None and self.key(x) in self.fpdisk

    def spill(self, dir: str) -> None:
        """Move the states in memory to a run on disk (exact keys and fingerprints apart)."""
        if self.disk is None:
            self.disk, self.fpdisk = DiskRuns(dir, "visited"), DiskRuns(dir, "fingerprints")
        assert self.fpdisk is not None
        exact = [x for sh in self.shards for x in sh if x <= M64]
        if len(exact) < self.in_memory:
            fps = [self.key(x) for sh in self.shards for x in sh if x > M64]
            self.fingerprints += len(fps)
            self.fpdisk.add_run(fps)
        for sh in self.shards:
            sh.clear()
        self.disk.add_run(exact)


class CompactBFS:
    """One search (see the module docstring); `run()` returns its `Outcome`."""

    def __init__(self, kernel: Kernel, search: Search, keep_going: bool = False,
                 reduce: Symmetry | None = None) -> None:
        self.kernel = kernel
        self.search = search
        self.keep_going = keep_going
        self.reduce = reduce
        self.packing = Packing(kernel)
        self.visited = Visited(self.packing)
        self.levels = Levels(self.packing)
        self.fast = not (kernel._general or kernel.chooses) and reduce is None
        n = len(kernel.instances)
        self.caches: list[dict[int, Entry]] = [{} for _ in range(n)]
        self._last_deliverable: tuple[int, list[list[int]]] = (-1, [])
        # a whole-state spec (`Kernel._memo_once`): each state is its own local state, which
        # the search expands once; its steps are not cached (the cache could not hit) and
        # neither are property verdicts keyed by the whole state
        self._once = kernel._memo_once
        # the long state form (faults, timers) in one pass, with `can_progress` found on the
        # way (`kernel/extended.py`; `stuck`), and deltas from the fields that changed
        self._one_pass = kernel.extended and not (kernel.chooses or kernel.channels) and \
            reduce is None
        self._progress_of: int | None = None
        self._progress = False
        self.spills = 0
        self._succ: Callable[[int], tuple[Any, int]]
        self._gcaches: list[dict[int, Entry]] = []
        self._group_masks: list[int] = []
        self._level: tuple[LevelLoop, LevelLoop] | None = None
        self._group_members: list[tuple[int, ...]] = []
        # states expanded so far, kept by `_run` (None: not counted, every entry is kept)
        self.expanded: int | None = None
        # per group: [entries kept?, misses since the last look, `expanded` then] (`_judge`)
        self._use: list[list[Any]] = []
        self._whole = False         # one group of every instance (`_judge`)
        self._regroup = False
        self._refresh()
        # property verdicts per read set: (mask of the fields read, {x & mask: verdict})
        # (a mask grows with its fields: the keys already in stay right, their new bits are 0)
        self._pmemos: list[tuple[int, dict[int, tuple[Violation, ...]], frozenset[int]]] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._spill_at = search.max_memory
        self._rss_spilled = 0
        # called at the end of each level (the frontier: levels[depth]) with (self, depth,
        # terminal, deadlocked): an outcome ends the search there (`auto.Handover`: the
        # workers it was handed over to finished it), None goes on
        self.handover: Callable[[CompactBFS, int, int, int], Outcome | None] | None = None

    # --- successors ---------------------------------------------------------------------------

    def successors(self, x: int) -> tuple[Any, int]:
        """The steps of packed state `x` as (event, successor - x, violations), and how many
        events are enabled: what `Kernel.successors` says, in its order."""
        return self._succ(x)

    def groups(self) -> tuple[list[int], list[dict[int, Entry]],
                              Callable[[int, int], Entry]] | None:
        """For a caller that generates its own look-up (the simulator's packed walk): each
        group's mask, its cache of entries keyed by the state's bits of the mask, and the
        function that fills a miss (`_group_entry`, which may raise `Relayout`); a new list of
        caches after each relayout.  None where steps come from `_successors_general`."""
        return (self._group_masks, self._gcaches, self._group_entry) if self.fast else None

    def _refresh(self) -> None:
        self._level = None
        self._succ = self._compile() if self.fast else self._successors_general

    def _groups(self) -> list[tuple[int, ...]]:
        """Instances in runs of adjacent one-piece fields of GROUP_BITS bits at most (their
        local ids read with one shift and one mask, their steps cached together)."""
        p = self.packing
        if self._whole:
            return [tuple(range(p.n))]
        groups: list[tuple[int, ...]] = []
        run: list[int] = []
        for i in range(p.n):
            pieces = p.pieces[i]
            single = len(pieces) == 1
            if run and single:
                last = p.pieces[run[-1]][0]
                first = p.pieces[run[0]][0]
                if last[0] + last[1] == pieces[0][0] and \
                        pieces[0][0] + pieces[0][1] - first[0] <= GROUP_BITS:
                    run.append(i)
                    continue
            if run:
                groups.append(tuple(run))
            run = [i] if single else []
            if not single:
                groups.append((i,))
        if run:
            groups.append(tuple(run))
        return groups

    def _compile(self) -> Callable[[int], tuple[Any, int]]:
        """`successors` for the current layout, as straight-line code: per group of instances,
        their cached steps with this network, keyed by the state's bits of the group and the
        network (`_group_entry` on a miss); deliveries in envelope order (merged across
        groups), then actions.  Also `_level`, the BFS's loop over a level for this layout
        (`compact_loop.py`)."""
        p = self.packing
        groups = self._groups()
        # a group with the same members keeps its cache: fields only grow, so a key and the
        # deltas of an entry made under the old layout mean the same under the new one (its
        # new bits are 0), and a state using the new bits matches no old key
        kept = dict(zip(self._group_members, self._gcaches))
        self._gcaches = [kept.get(members, {}) for members in groups]
        used = dict(zip(self._group_members, self._use))
        self._use = [used.get(members) or [not self._whole, 0, self.expanded]
                     for members in groups]
        self._group_masks = [p.mask(p.n) | functools.reduce(operator.or_, map(p.mask, members))
                             for members in groups]
        lines = ["def succ(x):"]
        for g, mask in enumerate(self._group_masks):
            lines += [f"    e{g} = c{g}.get(x & {mask:#x}) or entry({g}, x)"]
        r = range(len(groups))
        lines += ["    d = " + " + ".join(f"e{g}[0]" for g in r),
                  "    a = " + " + ".join(f"e{g}[1]" for g in r),
                  "    c = " + " + ".join(f"e{g}[2]" for g in r),
                  "    if len(d) > 1:",
                  "        s = sorted(d)",
                  "        s += a",
                  "        return s, c",
                  "    return d + a, c"]
        env: dict[str, Any] = {f"c{g}": c for g, c in enumerate(self._gcaches)}
        self._group_members = groups
        env["entry"] = self._group_entry
        exec("\n".join(lines), env)            # noqa: S102  (generated from ints only)
        self._level = None if self._once else level_loop(
            self._group_masks, self._gcaches, self._group_entry, Relayout, SHARD_MASK)
        return env["succ"]                      # type: ignore[no-any-return]

    def _group_entry(self, g: int, x: int) -> Entry:
        """The steps of a group of instances in state `x` (with its network), as (deliveries,
        actions, events enabled, the deltas of both, the events enabled or VIOLATES)."""
        p = self.packing
        members = self._group_members[g]
        values = p.coded()[1]
        n = values[p.n](x)
        if len(members) == 1:
            # the group's cache is the instance's (same key): the entry is not kept twice
            i = members[0]
            e = self._entry(i, values[i](x), n, False)
        elif self._whole:                       # every instance at once, nothing cached
            e = self._steps(n, tuple([(i, values[i](x)) for i in members]))
        else:
            dels: list[Step] = []
            acts: list[Step] = []
            count = 0
            several = False
            for i in members:
                di, ai, c = self._instance_entry(i, values[i](x), n)[:3]
                several = several or bool(di and dels)
                dels += di
                acts += ai
                count += c
            if several:
                dels.sort()
            d, a = tuple(dels), tuple(acts)
            e = (d, a, count, tuple([s[1] for s in d + a]),
                 VIOLATES if any(s[2] for s in d + a) else count)
        if self._once:
            return e
        cache = self._gcaches[g]
        use = self._use[g]
        use[1] += 1
        if use[0]:
            if len(cache) >= CACHE_MOST:
                cache.clear()
            cache[x & self._group_masks[g]] = e
            if use[1] == CACHE_SAMPLE:
                self._judge(g, use)
        elif use[1] >= CACHE_MOST:              # off for a while: try again
            use[:] = [True, 0, self.expanded]
        return e

    def _judge(self, g: int, use: list[Any]) -> None:
        """After CACHE_SAMPLE misses of group g's cache: if it was looked up fewer than 1/8
        more times than that (every step's state new to it: a network that is new in almost
        every state, as Raft's), stop keeping entries (they cost memory and time for
        nothing) until CACHE_MOST misses more; else measure again.  Only where the BFS
        counts its expansions (`expanded`)."""
        since, now = use[2] or 0, self.expanded     # (None: since before the search began)
        if now is not None and now - since < CACHE_SAMPLE * 9 // 8:
            use[0] = False
            self._gcaches[g].clear()
            # no group's cache hits: one group of every instance, one entry a state (`_run`
            # regroups at its next tick, not under the running loop)
            self._regroup = not self._whole and len(self._use) > 1 and \
                not any(u[0] for u in self._use)
        use[1:] = [0, now]

    def _instance_entry(self, i: int, lid: int, n: int) -> Entry:
        e = self.caches[i].get(lid | n << 32)
        return self._entry(i, lid, n) if e is None else e

    def _entry(self, i: int, lid: int, n: int, keep: bool = True) -> Entry:
        """Instance i's steps in local state `lid` with network `n` (packed deltas), as an
        `Entry`; kept in its cache if `keep`."""
        e = self._steps(n, ((i, lid),))
        if self._once or not keep:
            return e
        cache = self.caches[i]
        if len(cache) >= CACHE_MOST:
            cache.clear()
        cache[lid | n << 32] = e
        return e

    def _steps(self, n: int, members: tuple[tuple[int, int], ...]) -> Entry:
        """The steps of the instances `members` ((instance, local id), in instance order) with
        network `n`, as an `Entry`: deliveries in envelope order, then actions by instance."""
        k, p = self.kernel, self.packing
        network = k.network
        net = p.rests[n]
        env_dst = k.env_dst
        R = p.n
        lid_of = [-1] * R
        for i, lid in members:
            lid_of[i] = lid
        if len(members) == 1:
            # the network's deliverable envelopes by instance: the instances of one state ask
            # one after the other (the last network's only: a network seldom comes back when
            # it is not cached whole)
            last = self._last_deliverable
            if last[0] == n:
                per = last[1]
            else:
                per = [[] for _ in k.instances]
                for env in network.deliverable(net):
                    per[env_dst[env]].append(env)
                self._last_deliverable = (n, per)
            envs: Iterable[int] = per[members[0][0]]
        elif len(members) == R:
            envs = network.deliverable(net)
        else:
            envs = [env for env in network.deliverable(net) if lid_of[env_dst[env]] >= 0]
        cap, rcap = p.cap, p.cap[R]
        places = p.coded()[0]
        place_r = places[R]
        here_r = place_r(n)
        consumes = network.consumes
        bag = type(network) is Unordered
        deliver, delivery, dmemo = network.deliver, k._delivery, k._dmemo
        rest_ids, rest_id = p.rest_ids, p.rest_id
        steps: list[Step] = []
        deltas: list[int] = []
        bad = False
        enabled = 0
        out: Any
        new_n: int | None
        for env in envs:
            i = env_dst[env]
            lid = lid_of[i]
            out = dmemo.get(lid << 32 | env)    # `Kernel._delivery`, the memo inline
            if out is None:
                out = delivery(lid, env)
            elif out is NOOP:
                out = (lid, (), (), ())
            if out is DEFERRED:
                continue
            enabled += 1
            new_lid, sends, viol, _ = out
            if bag:                             # `Unordered.deliver`, inline
                at = net.index(env)
                new_net = net[:at] + net[at + 1:]
                if sends:
                    new_net = tuple(sorted(new_net + sends))
            elif sends or consumes:
                new_net = deliver(net, env, sends)
            else:
                new_net = net
            if new_net is net:
                new_n = n
            else:
                new_n = rest_ids.get(new_net)
                if new_n is None:
                    new_n = rest_id(new_net)
            if new_lid >= cap[i] or new_n >= rcap:
                raise Relayout(i, new_lid) if new_lid >= cap[i] else Relayout(-1, new_n)
            if new_lid != lid:
                place_i = places[i]
                d = place_i(new_lid) - place_i(lid) + place_r(new_n) - here_r
            elif new_n != n:
                d = place_r(new_n) - here_r
            elif viol:
                d = 0
            else:
                continue
            steps.append((env, d, viol))
            deltas.append(d)
            if viol:
                bad = True
        dels = tuple(steps)
        steps = []
        for i, lid in members:
            place_i = places[i]
            here_i = place_i(lid)
            for slot, (new_lid, sends, viol, _) in k._actions(i, lid):
                enabled += 1
                new_net = network.add(net, sends) if sends else net
                new_n = n if new_net is net else rest_id(new_net)
                if new_lid >= cap[i] or new_n >= rcap:
                    raise Relayout(i, new_lid) if new_lid >= cap[i] else Relayout(-1, new_n)
                d = (place_i(new_lid) - here_i if new_lid != lid else 0) + \
                    (place_r(new_n) - here_r if new_n != n else 0)
                if d or viol:
                    steps.append((~slot, d, viol))
                    deltas.append(d)
                    if viol:
                        bad = True
        return (dels, tuple(steps), enabled, tuple(deltas), VIOLATES if bad else enabled)

    def _successors_general(self, x: int) -> tuple[list[Step], int]:
        p = self.packing
        if self._one_pass:
            s = p.fast()[0](x)
            steps, enabled, self._progress = successors_extended(self.kernel, s)
            self._progress_of = x
            return extended_deltas(p, x, s, steps), enabled
        s = p.unpack(x)
        if self.reduce is not None:
            steps, enabled = self.reduce.successors(s)
        else:
            steps, enabled = self.kernel.successors(s)
        pack = p.pack
        return [(ev, pack(t) - x, viol) for ev, t, viol in steps], enabled

    def stuck(self, x: int) -> bool:
        """Whether only optional faults are enabled in `x` (not `Kernel.can_progress`): known
        from the one-pass successors of `x` when they were the last computed."""
        if self._progress_of == x:
            return not self._progress
        return not self.kernel.can_progress(self.packing.unpack(x))

    # --- properties ---------------------------------------------------------------------------

    def property_violations(self, x: int) -> tuple[Violation, ...]:
        """`Kernel.property_violations` of packed state `x`, memoised by the local states of
        the instances an evaluation read (`Kernel.property_verdict`): a verdict is shared by
        every state that agrees on them, whatever the rest of it."""
        for mask, memo, _ in self._pmemos:
            v = memo.get(x & mask)
            if v is not None:
                return v
        v, reads = self.kernel.property_verdict(self.packing.unpack(x))
        if reads is not None and not (self._once and reads):    # (a key that is the state)
            known = next((d for _, d, r in self._pmemos if r == reads), None)
            if known is None:
                known = {}
                self._pmemos.append((self._mask(reads), known, reads))
            known[x & self._mask(reads)] = v
        return v

    def _mask(self, reads: frozenset[int]) -> int:
        mask = 0
        for i in reads:
            mask |= self.packing.mask(i)
        return mask

    # --- counterexamples ----------------------------------------------------------------------

    def trace(self, x: int, depth: int, last: int | None = None
              ) -> tuple[State, tuple[int, ...]]:
        """The start and events of the path the search took to `x` (at `depth`), then `last`:
        at each level back, the first state with a step to the one at hand, and its first
        such step (the one the search took)."""
        path: list[int] = []
        for d in range(depth - 1, -1, -1):
            for s in self.levels[d]:
                ev = next((ev for ev, delta, _ in self.successors(s)[0] if s + delta == x),
                          None)
                if ev is not None:
                    path.append(ev)
                    x = s
                    break
            else:                               # cannot happen: x was reached from level d
                raise AssertionError(f"no predecessor of a state at depth {d + 1}")
        path.reverse()
        if last is not None:
            path.append(last)
        return self.packing.unpack(x), tuple(path)

    # --- storage ------------------------------------------------------------------------------

    def relayout(self, r: Relayout, x: int) -> int:
        """Grow the field `r` asks for (nothing stored changes; see `Packing`)."""
        p = self.packing
        wide = p.wide
        p.grow(p.n if r.i < 0 else r.i, r.value)
        if p.wide and not wide:
            self.levels.widen()
        if max(p.cap[:p.n]) > 1 << 32:         # the caches key local ids in 32 bits
            self.fast = False
        self._pmemos[:] = [(self._mask(reads), d, reads) for _, d, reads in self._pmemos]
        self._refresh()
        return x

    def pack(self, s: State) -> int:
        while True:
            try:
                return self.packing.pack(s)
            except Relayout as r:
                self.relayout(r, 0)

    def steps(self, x: int) -> tuple[int, list[Step], int]:
        """`successors(x)`, widening fields first if need be: (x as packed now, steps,
        enabled)."""
        while True:
            try:
                return (x, *self.successors(x))
            except Relayout as r:
                x = self.relayout(r, x)

    # spill again once memory has grown by this much since the last spill (None: an eighth of
    # --max-memory, at least 8 MiB)
    SPILL_EVERY: int | None = None
    STATE_BYTES = 128          # more than a state costs the search in memory (set, level)

    def spill(self) -> bool:
        """Past --max-memory: move the visited set and the finished levels to disk, clear the
        caches, and go on; spill again when memory has grown by SPILL_EVERY.  False (the
        search stops at the bound) when the growth since the last spill is not the search's:
        what it moved is less than half of it (a spec whose own tables grow, e.g. local
        states that keep a history)."""
        before = resident_bytes()
        moved = self.visited.in_memory + sum(
            len(lv) for lv in self.levels.levels[:-2] if not isinstance(lv, str))
        if not moved:
            return False
        self.visited.spill(self.tmp())
        self.levels.spill(self.tmp(), 2)
        for c in self.caches:
            c.clear()
        for g in self._gcaches:
            g.clear()
        self.spills += 1
        assert self.search.max_memory is not None
        every = self.SPILL_EVERY if self.SPILL_EVERY is not None else \
            max(self.search.max_memory // 8, 8 << 20)
        grew = before - self._rss_spilled
        if self.spills > 1 and grew >= 8 << 20 and moved * self.STATE_BYTES < grew // 2:
            return False
        self._rss_spilled = now = resident_bytes()
        self._spill_at = max(self.search.max_memory, now + every)
        return True

    def report(self) -> dict[str, object]:
        """How the states were kept: for `CheckResult.storage`.  States are exact unless some
        were spilled to disk as 64-bit fingerprints (wider than 64 bits packed); then the
        probability of a collision (two states taken for one, so one not explored) is
        estimated as TLC does: optimistically, fingerprints x lookups / 2^64, and from the
        fingerprints themselves, 1 / the least distance between two of them."""
        v = self.visited
        fps = v.fingerprints
        gap = v.fpdisk.min_gap if v.fpdisk is not None else None
        return {"mode": "compact", "bits": self.packing.top,
                "exact": fps == 0, "spills": self.spills, "on_disk": v.on_disk_count,
                "fingerprints": fps,
                "collision_probability": fps * max(self.search.transitions, 1) / 2.0 ** 64,
                "collision_probability_observed": 1 / gap if fps and gap else 0.0}

    def tmp(self) -> str:
        """The temporary directory of this search's files (made when first needed)."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="assay-check-")
        return self._tmp.name

    def close(self) -> None:
        self.visited.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # --- the search ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            return self._run()
        finally:
            self.close()

    def _run(self) -> Outcome:  # noqa: C901  (one loop, as bfs.py's)
        kernel, search, keep_going, reduce = self.kernel, self.search, self.keep_going, \
            self.reduce
        visited = self.visited
        tally = Tally()
        terminal = deadlocked = 0
        levels = self.levels
        trace = self.trace

        def stop(reason: str, violation: Violation | None = None, at: int | None = None,
                 depth: int = 0, last: int | None = None) -> Outcome:
            start, path = trace(at, depth, last) if at is not None else (None, ())
            found = tally.results(shortest=True)
            if found:
                violation, start, path = found[0].violation, found[0].start, found[0].path
            return Outcome(reason, len(visited), search.transitions,  # type: ignore[arg-type]
                           search.depth, time.perf_counter() - search.started, violation,
                           start, path, found, terminal, deadlocked, self.report())

        transitions = 0
        try:
            max_states, max_depth = search.max_states, search.max_depth
            limit = max_states if max_states is not None else float("inf")
            levels.new()
            within = kernel.within if kernel.system.constraints else None
            for s, viol in kernel.initial_states():
                if reduce is not None:
                    s = reduce.canon(s)
                x = self.pack(s)
                if x in visited:
                    continue
                if len(visited) >= limit:
                    return stop("max-states")
                visited.add(x)
                if viol:
                    if not keep_going:
                        return stop("violation", viol[0], x, 0)
                    if tally.add(viol, "transitions"):
                        tally.locate(s, ())
                pv = kernel.property_violations(s)
                if pv:
                    if not keep_going:
                        return stop("violation", pv[0], x, 0)
                    if tally.add(pv, "states"):
                        tally.locate(s, ())
                if within is None or within(s):
                    levels.levels[0].append(x)
            search.states = len(visited)

            successors = self._succ
            unpack = self.packing.unpack
            faulty = kernel.has_faults          # an enabled fault is not progress
            check_props = self.property_violations if kernel.properties else None
            spilling = search.max_memory is not None
            shards = visited.shards
            smask = SHARD_MASK
            expanded = self.expanded = 0
            depth = 0
            while len(levels.levels[depth]):
                if max_depth is not None and depth >= max_depth:
                    # the last level: checked like any other, what lies beyond only noted
                    beyond = False
                    pos = 0
                    while pos < len(levels.levels[depth]):
                        x, steps, enabled = self.steps(levels.levels[depth][pos])
                        pos += 1
                        transitions += enabled
                        search.transitions = transitions
                        if not enabled or faulty and self.stuck(x):
                            if kernel.is_terminal(unpack(x)):
                                terminal += 1
                            else:
                                deadlocked += 1
                                if not keep_going:
                                    return stop("violation", kernel.deadlock(), x, depth)
                                if tally.add((kernel.deadlock(),), "states"):
                                    tally.locate(*trace(x, depth))
                        for ev, d, viol in steps:
                            if viol:
                                if not keep_going:
                                    return stop("violation", viol[0], x, depth, ev)
                                if tally.add(viol, "transitions"):
                                    tally.locate(*trace(x, depth, ev))
                            if not beyond:
                                t = x + d
                                beyond = t not in visited
                    return stop("max-depth" if beyond else "exhausted")
                level = levels.levels[depth]
                nxt = levels.new()
                append = nxt.append
                room = limit - visited.on_disk_count       # states the set may still take
                count = visited.in_memory
                # a violation one step beyond this level, reported after the level
                found: tuple[Violation, State, int, int | None] | None = None
                disk = visited.disk is not None
                # the plain states by the generated loop (`compact_loop.py`), the others here
                fast = self._level if within is None and not faulty else None
                pmemos = self._pmemos
                pos = 0
                size = len(level)
                while pos < size:
                    ran = False
                    if fast is not None and found is None:
                        end = min(size, pos + 0x400 - (expanded & 0x3FF))
                        to, count, transitions = fast[disk](
                            level, pos, end, count, room, transitions, append, shards, pmemos,
                            check_props, visited.on_disk)
                        ran = to > pos
                        expanded += to - pos
                        pos = to
                    if not ran:
                        x = level[pos]
                        pos += 1
                        try:
                            steps, enabled = successors(x)
                        except Relayout:
                            x, steps, enabled = self.steps(x)
                            nxt = levels.levels[depth + 1]      # a list now, if states widened
                            append = nxt.append
                            successors = self._succ
                            fast = self._level if fast is not None else None
                        transitions += enabled
                        if not enabled or faulty and self.stuck(x):
                            if kernel.is_terminal(unpack(x)):
                                terminal += 1
                            else:
                                deadlocked += 1
                                if not keep_going:
                                    search.transitions = transitions
                                    return stop("violation", kernel.deadlock(), x, depth)
                                if tally.add((kernel.deadlock(),), "states"):
                                    tally.locate(*trace(x, depth))
                        if found is not None:
                            continue                            # only deadlocks can be shorter
                        for ev, d, viol in steps:
                            if viol:
                                if not keep_going:
                                    found = (viol[0], unpack(x), depth, ev)
                                    break
                                if tally.add(viol, "transitions"):
                                    tally.locate(*trace(x, depth, ev))
                            t = x + d
                            sh = shards[t & smask]
                            if t in sh or disk and visited.on_disk(t):
                                continue
                            if count >= room:                   # one state beyond --max-states
                                search.transitions = transitions
                                return stop("max-states")
                            t = t | 0           # 32 bytes, not 48 (compact_loop.py)
                            sh.add(t)
                            count += 1
                            if check_props is not None:
                                pv = check_props(t)
                                if pv:
                                    if not keep_going:
                                        found = (pv[0], unpack(t), depth + 1, None)
                                        break
                                    if tally.add(pv, "states"):
                                        tally.locate(*trace(t, depth + 1))
                            if within is None or within(unpack(t)):   # beyond: checked only
                                append(t)
                        expanded += 1
                    if not expanded & 0x3FF:                # now and then: progress, bounds
                        self.expanded = expanded
                        if self._regroup:                   # (`_judge`)
                            self._regroup = False
                            self._whole = True
                            self._refresh()
                            successors = self._succ
                            fast = self._level if fast is not None else None
                        search.states = len(visited)
                        search.transitions = transitions
                        bound = search.tick(len(nxt), memory=not spilling)
                        if bound is None and spilling and self._spill_at is not None \
                                and resident_bytes() >= self._spill_at:
                            if not self.spill():
                                bound = "max-memory"
                            disk = True
                            room = limit - visited.on_disk_count
                            count = visited.in_memory
                        if bound is not None:
                            return stop(bound)
                if found is not None:
                    search.transitions = transitions
                    violation, state, d_at, last = found
                    search.depth += 1
                    return stop("violation", violation, self.pack(state), d_at, last)
                if not len(nxt):
                    break
                search.depth += 1
                depth += 1
                # the levels before the one to expand are read only for counterexamples: in
                # a large search they wait on disk (8 bytes a state less in memory)
                if sum(len(lv) for lv in levels.levels[:-1]
                       if not isinstance(lv, str)) > LEVELS_IN_MEMORY:
                    levels.spill(self.tmp(), 1)
                if self.handover is not None and (max_depth is None or depth < max_depth):
                    search.states = len(visited)
                    search.transitions = transitions
                    out = self.handover(self, depth, terminal, deadlocked)
                    if out is not None:
                        return out
            search.transitions = transitions
            return stop("exhausted")
        except KeyboardInterrupt:                   # Ctrl-C: stop, with the counts so far
            search.transitions = max(search.transitions, transitions)
            return stop("interrupted")


def extended_deltas(p: Packing, x: int, s: State, steps: list[tuple[int, State, Any]]
                    ) -> list[Step]:
    """`steps` of the extended state `s` (packed: `x`) as (event, pack(next) - x, violations),
    from the fields that changed only: a step changes one instance's local state at most, and
    the rest of the state (network, timers, crashes, budget) is interned whole."""
    n = p.n
    locals_ = s[0]
    rest_ids, cap, place = p.rest_ids, p.cap, p.place
    _, placed, place_rest = p.fast()
    xr = p.value(n, x)
    here = place_rest(xr)
    out: list[Step] = []
    for ev, t, viol in steps:
        tr = t[1:]
        r = rest_ids.get(tr)
        if r is None:
            r = p.rest_id(tr)
        if r >= cap[n]:
            raise Relayout(-1, r)
        d = 0 if r == xr else place_rest(r) - here
        tl = t[0]
        if tl is not locals_:
            for i in range(n):
                a = tl[i]
                if a != locals_[i]:
                    if a >= cap[i]:
                        raise Relayout(i, a)
                    pl = placed[i]
                    pa = pl.get(a)
                    if pa is None:
                        pa = pl[a] = place(i, a)
                    pb = pl.get(locals_[i])
                    if pb is None:
                        pb = pl[locals_[i]] = place(i, locals_[i])
                    d += pa - pb
                    break                       # one instance's local state at most
        out.append((ev, d, viol))
    return out


def compact_bfs(kernel: Kernel, search: Search, keep_going: bool = False,
                reduce: Symmetry | None = None,
                handover: Callable[[CompactBFS, int, int, int], Outcome | None] | None = None
                ) -> Outcome:
    """`bfs` with compact storage (see the module docstring); `handover` as
    `CompactBFS.handover`."""
    cb = CompactBFS(kernel, search, keep_going, reduce)
    cb.handover = handover
    return cb.run()
