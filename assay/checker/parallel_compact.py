"""The parallel search on packed states: each worker runs the compact BFS's fast path.

`parallel.py`'s `Shard` expands full states with `Kernel.successors` and sends the children
other workers own as pickled portable tuples: per state, more than a compact step costs, so
on a spec of cheap steps two workers were slower than one process.  `CompactShard` is the
same worker (the same rounds, reports and candidates, driven by `parallel_bfs`) on the
compact BFS's machinery (`compact.py`): states are packed ints in this worker's own layout,
the visited set is 64 sets of ints, and a level is expanded by straight-line code generated
per layout, as `compact_loop.py` does for one process, over cached entries per group of
instances.

Owner.  A state's owner key is the sum of 64-bit keys of the local states of the instances
in `by` (`parallel.shard_by`: the instances whose steps should keep a child with the worker
that made it), each key from the local state's value (its `hash()` in forked workers, which
share the parent's hash secret; its canonical bytes otherwise); the owner is that sum mixed
and scaled to the number of workers.  A group's cached entry (`_entry`) holds the group's part
of the key, and each step's delta whose child has another key comes with the change of the
key: the loop finds a child's owner with an addition and a multiplication, and steps of
instances outside `by` keep the child here without any.  With `links` (`Options.shard_links`)
the key adds the keys of the messages in flight on those links, and with a table
(`Options.shard_table`) chosen keys have chosen owners: an experiment on Raft, whose states
mostly differ by their messages only (`choose_links`; `check` uses neither, RESULTS.md).

Exchange.  Ids are interned per worker, so a packed int means something only in the layout
and tables of the worker that made it.  A batch to another worker is one pickled blob per
level: the sender's layout (the pieces of each field), the field values it interned that the
receiver may lack (every new one; only those its states use when there are many more, as in
a whole-state spec) — a local state's values, pickled with the blob (parts shared by several
states pickled once), a network as the sender's envelope ids, with every envelope the
sender interned since its last batch (pickled once, `Portable.envelope_payloads`) —, and the
packed ints as one `array('Q')` (fixed-width bytes when states are wider than 64 bits)
with their parents' indices.  The receiver translates a sender's int group of fields by
group (at most 16 bits each): one dict lookup per group, a cache miss decoding the field
values into its own ids (a network: its envelope ids renumbered by a list, then put in
canonical order, `Portable.net_from`); so a packed int is an exact canonical
encoding between workers too, and the owner dedups exactly (no fingerprints).  Nearly every
state received is one the owner has already (Raft 4 servers: 99.9%, `known`); it costs the
translation, ~5 µs against ~24 µs for a state's expansion (RESULTS.md, rafw3).

Counterexamples.  Which parent reached a state first follows the owners (and so the hash
seed); the driver rebuilds the path back from the violating state by the least predecessor
by fingerprint at each depth (`predecessor`: every worker scans its states of that depth),
the same path under any PYTHONHASHSEED and for any number of workers.

Not here (they take `parallel.py`'s `Shard`): timers, faults, bounded or lossy links,
choices, constraints, checkpoints, Ray.
"""
from __future__ import annotations

import hashlib
import pickle
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from assay.checker.compact import SHARD_MASK, SHARDS, CompactBFS, Relayout
from assay.checker.compact_loop import NEWS_PROPERTY_CHECK
from assay.checker.parallel import Options, Shard
from assay.checker.search import Search, resident_bytes
from assay.kernel.kernel import Kernel
from assay.kernel.network import Duplicating, Unordered

MASK = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15
CACHE_MOST = 1 << 18            # entries of a cache before it is cleared
GROUP_BITS = 16                 # bits of a sender's int translated by one lookup
CHUNK = 0x400                   # states expanded between two looks at the clock and memory
# the links of the owner key (`CompactShard.choose_links`): chosen on SAMPLE states (STEPPED
# of them expanded), when by instances one worker would own more than BALANCED times its
# share of them, or of a class that holds BIG of a worker's share; at most MOST_LINKS
SAMPLE = 2000
STEPPED = 300
BALANCED = 1.15
BIG = 0.2
MOST_LINKS = 6


def supported(kernel: Kernel) -> bool:
    """Whether `CompactShard` can search this kernel's system."""
    return not (kernel._general or kernel.chooses or kernel.extended
                or kernel.system.constraints)


def _loop_source(shard_groups: list[bool], masks: list[int], lazy: bool = False,
                 table: bool = False) -> str:
    """The loop over states[pos:end] (see `CompactShard._fast`): per state, one cache lookup
    per group; the children this worker owns checked, noted and added, the others sent.
    An entry: (deltas that keep the owner, (delta, change of key) of the others, events
    enabled or VIOLATES, the group's part of the owner key).  `lazy` (entries not kept, a
    new one each state): every delta in the first, and a child's owner (`owner`) found only
    if it is neither in this worker's visited set nor sent lately."""
    r = range(len(masks))
    keyed = [g for g in r if shard_groups[g]]
    if lazy:
        keyed = []
        lazy_lines = [
            "                if t in sent:",
            "                    continue",
            "                o = owner(t)",
            "                if o != me:",
            "                    if fo is None:",
            "                        fo = [(o, t)]",
            "                    else:",
            "                        fo.append((o, t))",
            "                    continue"]
    lines = [
        "def level(states, pos, end, me, n, transitions, sappend, pappend, shards, sent,",
        "          outs, outps, props, pmemos):",
        "    added = 0",
        "    try:",
        "        for pos in range(pos, end):",
        "            x = states[pos]"]
    lines += [f"            e{g} = c{g}.get(x & {m:#x}) or entry({g}, x)"
              for g, m in enumerate(masks)]
    lines += [
        "            en = " + " + ".join(f"e{g}[2]" for g in r),
        "            if en <= 0:                 # a deadlock, or a step violates",
        "                break",
        "            k = 0",
        "            fo = None",
        "            for d in " + " + ".join(f"e{g}[0]" for g in r) + ":",
        "                t = x + d",
        f"                if t in shards[t & {SHARD_MASK}]:",
        "                    continue",
        *(lazy_lines if lazy else []),
        "                if not k:",
        "                    k = 1",
        "                    t1 = t",
        "                elif k == 1:",
        "                    if t != t1:",
        "                        k = 2",
        "                        news = [t1, t]",
        "                elif t not in news:",
        "                    news.append(t)"]
    if keyed:
        lines += [
            "            key = " + " + ".join(f"e{g}[3]" for g in keyed),
            "            for d, dk in " + " + ".join(f"e{g}[1]" for g in keyed) + ":",
            "                t = x + d",
            *(["                o = tget(key + dk)",     # owners chosen per key
               "                if o is None:",
               f"                    o = ((((key + dk) * {_MIX}) & {MASK}) >> 16) * n >> 48"]
              if table else
              [f"                o = ((((key + dk) * {_MIX}) & {MASK}) >> 16) * n >> 48"]),
            "                if o != me:",
            "                    if fo is None:",
            "                        fo = [(o, t)]",
            "                    else:",
            "                        fo.append((o, t))",
            f"                elif t in shards[t & {SHARD_MASK}]:",
            "                    continue",
            "                elif not k:",
            "                    k = 1",
            "                    t1 = t",
            "                elif k == 1:",
            "                    if t != t1:",
            "                        k = 2",
            "                        news = [t1, t]",
            "                elif t not in news:",
            "                    news.append(t)"]
    lines += [
        "            if k:",
        "                if k == 1:",
        "                    news = [t1]",
        *NEWS_PROPERTY_CHECK,
        "                pc = pos << 8 | me",
        "                for t in news:",
        "                    t = t | 0             # a sized copy (compact_loop.py)",
        f"                    shards[t & {SHARD_MASK}].add(t)",
        "                    sappend(t)",
        "                    pappend(pc)",
        "                added += len(news)",
        "            if fo is not None:",
        "                for o, t in fo:",
        "                    if t not in sent:",
        "                        sent.add(t)",
        "                        outs[o].append(t)",
        "                        outps[o].append(pos)",
        "            transitions += en",
        "        else:",
        "            return end, transitions, added",
        "    except Relayout:",
        "        pass",
        "    return pos, transitions, added"]
    return "\n".join(lines)


def _mask_of(pieces: list[tuple[int, int, int]]) -> int:
    m = 0
    for off, w, _ in pieces:
        m |= ((1 << w) - 1) << off
    return m


def _value(pieces: list[tuple[int, int, int]], x: int) -> int:
    v = 0
    for off, w, sh in pieces:
        v |= (x >> off & ((1 << w) - 1)) << sh
    return v


class Incoming:
    """What a worker knows of one other worker's states: its layout, the field values it
    published (and their ids here), and the translation caches of its ints."""

    def __init__(self, nfields: int) -> None:
        self.pieces: list[list[tuple[int, int, int]]] = []
        self.ids: list[dict[int, int]] = [{} for _ in range(nfields)]    # its id -> ours
        self.pays: list[dict[int, Any]] = [{} for _ in range(nfields)]   # published, unread
        self.envs: list[int] = []              # its envelope ids -> ours (all it published)
        # (mask of its bits, the fields there, {its bits: our bits})
        self.groups: list[tuple[int, tuple[int, ...], dict[int, int]]] = []

    def layout(self, pieces: list[list[tuple[int, int, int]]]) -> None:
        if pieces == self.pieces:
            return
        self.pieces = pieces
        order = sorted(range(len(pieces)), key=lambda f: min(o for o, _, _ in pieces[f]))
        groups: list[list[int]] = []
        bits = 0
        for f in order:
            w = sum(w for _, w, _ in pieces[f])
            if groups and bits + w <= GROUP_BITS:
                groups[-1].append(f)
                bits += w
            else:
                groups.append([f])
                bits = w
        self.groups = []
        for fs in groups:
            m = 0
            for f in fs:
                m |= _mask_of(pieces[f])
            self.groups.append((m, tuple(fs), {}))

    def publish(self, entries: dict[int, dict[int, Any]]) -> None:
        for f, pays in entries.items():
            self.pays[f].update(pays)


class CompactShard(Shard):
    """A worker of the parallel search on packed states (see the module docstring): the
    interface of `parallel.Shard` (start, expand, merge, trace_back, summary)."""

    def __init__(self, kernel: Kernel, index: int, n: int, opts: Options,
                 cb: CompactBFS | None = None) -> None:
        super().__init__(kernel, index, n, opts)
        # `cb`: the one-process search this worker takes up (forked: see `adopt`)
        self.cb = cb if cb is not None else CompactBFS(kernel, Search())
        self.packing = self.cb.packing
        m = len(kernel.instances)
        self.nfields = m + 1
        self.by = frozenset(opts.shard_by if opts.shard_by is not None else range(m))
        self.links = frozenset(opts.shard_links)
        self.table = dict(opts.shard_table)
        self._ekeys: list[int] = []            # per envelope id: its key if on `links`, or 0
        self.shards: list[set[int]] = [set() for _ in range(SHARDS)]
        self.xs: Any = array("Q")              # every state this worker owns, in order
        self.parents = array("q")              # per state: parent index << 8 | worker; -1
        self.lo = self.hi = 0                  # the level being expanded: xs[lo:hi]
        self.bounds = [0]                      # where each depth's states start in xs
        self.sent_x: set[int] = set()          # children sent to their owners lately
        self._keys: list[dict[int, int]] = [{} for _ in range(m)]  # owner keys by local id
        # the values published to worker j: field f's ids below _pub[j][f], and _given[j][f]
        self._pub = [[0] * self.nfields for _ in range(n)]
        self._given: list[list[set[int]]] = [[set() for _ in range(self.nfields)]
                                             for _ in range(n)]
        self._epub = [0] * n                   # the envelopes published to worker j: ids below
        self._in = [Incoming(self.nfields) for _ in range(n)]
        self._outs: list[Any] = []
        self._outps: list[array] = []
        self._loop: Callable[..., tuple[int, int, int]] | None = None
        self._masks: list[int] | None = None
        self._ecaches: list[dict[int, Any]] = []
        self._gshard: list[tuple[int, ...]] = []
        self._fmasks: list[int] = []           # each field's bits, in the loop's layout
        self._lazy = False                     # the loop finds owners child by child
        self.received = 0                      # states other workers sent here
        self.known = 0                         # of those, states this worker had already
        self.base = 0                          # states counted before (`adopt`)

    # --- owners -------------------------------------------------------------------------------

    def _key(self, i: int, lid: int) -> int:
        """Instance i's part of the owner key of a state with local state `lid`: the same
        in every worker."""
        keys = self._keys[i]
        r = keys.get(lid)
        if r is None:
            table = self.kernel.instances[i].table
            if self.opts.forked:
                h = hash(table.values[lid]) & MASK
            else:
                h = int.from_bytes(hashlib.blake2b(table.canonical(lid),
                                                   digest_size=8).digest(), "big")
            r = keys[lid] = (h * (2 * i + 1) + i) & MASK
        return r

    def _net_key(self, net: Any) -> int:
        """The network's part of the owner key: the sum of the keys of its messages in
        flight on `links` (0 without links)."""
        ek = self._ekeys
        try:
            return sum(map(ek.__getitem__, net))
        except IndexError:
            keys, link, links = self.codec.envelope_keys(), self.kernel.env_link, self.links
            ek.extend(keys[e] if link[e] in links else 0 for e in range(len(ek), len(keys)))
            return sum(map(ek.__getitem__, net))

    def owner(self, x: int) -> int:
        p = self.packing
        value, key = p.value, self._key
        k = sum(key(i, value(i, x)) for i in self.by)
        if self.links:
            k += self._net_key(p.rests[value(p.n, x)])
        o = self.table.get(k)
        return ((((k * _MIX) & MASK) >> 16) * self.n) >> 48 if o is None else o

    # --- the generated loop -------------------------------------------------------------------

    def _entry(self, g: int, x: int) -> tuple[Any, Any, int, int]:
        """Group g's steps in `x` for the loop: (deltas of children whose owner key is x's,
        (delta, change of the key) of the others, events enabled or VIOLATES, the group's
        part of x's owner key)."""
        cb = self.cb
        e = cb._group_entry(g, x)
        deltas, en = e[3], e[4]
        members = self._gshard[g]
        if self._lazy or not (members or self.links):
            ent: tuple[Any, Any, int, int] = (deltas, (), en, 0)
        else:
            p = self.packing
            values, key, fmasks = p.coded()[1], self._key, self._fmasks
            base = 0
            parts = []
            imask = 0                          # the bits of the fields in the key
            nf = p.n
            for i in members + ((nf,) if self.links else ()):
                ki = key(i, values[i](x)) if i < nf else self._net_key(p.rests[values[i](x)])
                if i < nf or g == 0:           # (the network's part counted once, in group 0;
                    base += ki                 # its change in every group's steps)
                parts.append((i, fmasks[i], values[i], ki))
                imask |= fmasks[i]
            same: list[int] = []
            other: list[tuple[int, int]] = []
            if en > 0:
                for d in deltas:
                    t = x + d
                    changed = t ^ x            # a member's key moves only if its bits do
                    dk = 0
                    if changed & imask:
                        for i, m, value, ki in parts:
                            if changed & m:
                                dk += (key(i, value(t)) if i < nf else
                                       self._net_key(p.rests[value(t)])) - ki
                    if dk:
                        other.append((d, dk))
                    else:
                        same.append(d)
            ent = (tuple(same), tuple(other), en, base)
        if not cb._once and cb._use[g][0]:       # (not where the group's cache is off)
            cache = self._ecaches[g]
            if len(cache) >= CACHE_MOST:
                cache.clear()
            cache[x & cb._group_masks[g]] = ent
        return ent

    def _owner_fn(self) -> Callable[[int], int]:
        """`owner` for the current layout, with its straight-line field readers."""
        p = self.packing
        values, key, n = p.coded()[1], self._key, self.n
        parts = [(i, values[i]) for i in sorted(self.by)]
        lmask = 0                              # the bits of the instances in the key
        for i in self.by:
            lmask |= self._fmasks[i]
        lkeys: dict[int, int] = {}             # their part of the key, by those bits
        net_value, rests, ek, tget = values[p.n], p.rests, self._ekeys, self.table.get

        def owner(x: int) -> int:
            k = lkeys.get(x & lmask)
            if k is None:
                if len(lkeys) >= CACHE_MOST:
                    lkeys.clear()
                k = lkeys[x & lmask] = sum([key(i, value(x)) for i, value in parts])
            return ((((k * _MIX) & MASK) >> 16) * n) >> 48

        def owner_links(x: int) -> int:
            k = lkeys.get(x & lmask)
            if k is None:
                if len(lkeys) >= CACHE_MOST:
                    lkeys.clear()
                k = lkeys[x & lmask] = sum([key(i, value(x)) for i, value in parts])
            try:
                k += sum(map(ek.__getitem__, rests[net_value(x)]))
            except IndexError:
                k += self._net_key(rests[net_value(x)])        # (new envelopes: their keys)
            o = tget(k)
            return ((((k * _MIX) & MASK) >> 16) * n) >> 48 if o is None else o
        return owner_links if self.links else owner

    def _counted(self, expanded: int) -> None:
        """Count states expanded, as the one-process loop does (`CompactBFS._judge` reads it:
        a group's cache that never hits stops keeping entries), and take up its regrouping
        (one group of every instance, no entry kept: Raft's network, new in almost every
        state) between two chunks, as it does between two ticks."""
        cb = self.cb
        cb.expanded = (cb.expanded or 0) + expanded
        if cb._regroup:
            cb._regroup = False
            cb._whole = True
            cb._refresh()

    def _fast(self) -> Callable[..., tuple[int, int, int]] | None:
        """The loop for the current layout (None: the general path only)."""
        cb = self.cb
        if not cb.fast:
            return None
        if self._loop is not None and self._masks is cb._group_masks:
            return self._loop
        masks = cb._group_masks
        self._masks = masks
        self._ecaches = [{} for _ in masks]
        self._gshard = [tuple(i for i in members if i in self.by)
                        for members in cb._group_members]
        self._fmasks = [self.packing.mask(f) for f in range(self.nfields)]
        # one group whose entries are not kept (`CompactBFS._judge`): each state's are new,
        # so owner keys are computed for the children that need them only
        self._lazy = cb._whole and not cb._use[0][0]
        env: dict[str, Any] = {f"c{g}": c for g, c in enumerate(self._ecaches)}
        env["entry"] = self._entry
        env["owner"] = self._owner_fn()
        env["tget"] = self.table.get
        env["Relayout"] = Relayout
        exec(_loop_source([bool(s or self.links) for s in self._gshard], masks,  # noqa: S102
                          self._lazy, bool(self.table)),
             env)
        self._loop = env["level"]
        return self._loop

    def _widened(self) -> None:
        """After a relayout: states may now be wider than 64 bits (lists, not arrays)."""
        if self.packing.wide and type(self.xs) is array:
            self.xs = list(self.xs)
            self._outs = [list(o) for o in self._outs]

    # --- bookkeeping --------------------------------------------------------------------------

    def _admit_x(self, t: int, parent: int, length: int) -> None:
        """Add a new state: visited, its parent, its property verdict."""
        t = t | 0
        self.shards[t & SHARD_MASK].add(t)
        idx = len(self.xs)
        self.xs.append(t)
        self.parents.append(parent)
        if self.kernel.properties:
            pv = self.cb.property_violations(t)
            if pv:
                self._candidate(length, "property", self.packing.unpack(t), idx, None, pv[0])

    def _seen(self, t: int) -> bool:
        return t in self.shards[t & SHARD_MASK]

    def _report(self, **extra: Any) -> dict[str, Any]:
        best, self.best = self.best, None
        return {"candidate": best, "states": self.base + len(self.xs),
                "frontier": len(self.xs) - self.hi, **extra}

    # --- the rounds ---------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        k = self.kernel
        for s, viol in k.initial_states():
            x = self.cb.pack(s)
            self._widened()
            if self.owner(x) != self.index or self._seen(x):
                continue
            idx = len(self.xs)
            self._admit_x(x, -1, 0)
            if viol:
                self._candidate(0, "start", s, idx, None, viol[0])
        self.lo = self.hi = 0
        return self._report()

    def sample(self) -> tuple[int, ...] | None:
        """The owners' instances (`parallel.shard_by`), chosen here: in a forked worker, not
        in the process whose search it takes up, which must stay as it was.  (Not links,
        `choose_links`: on Raft they spread the states but do not pay, RESULTS.md.)"""
        from assay.checker.parallel import shard_by

        return shard_by(self.kernel, self.n)

    def choose_links(self, by: tuple[int, ...] | None, xs: Sequence[int]) -> tuple[int, ...]:
        """The links whose messages in flight should count in the owner key too, chosen on
        a sample of the states `xs` (packed ints in this worker's layout: a frontier).
        None (`()`) if the owners by the instances `by` alone spread the sample evenly (no worker
        more than BALANCED times its share).  Else, one at a time, the link that spreads it
        most (of two alike, the one whose messages the sample's steps change least: such a
        step moves its child to another worker), while that helps.  Raft's election: 75% of
        its states have every server in one same local state (only the messages differ),
        so owners by servers put ~87% of the states on one of two workers."""
        n, k, p = self.n, self.kernel, self.packing
        if n == 1 or not isinstance(k.network, (Unordered, Duplicating)) or not len(xs):
            return ()
        step = max(1, len(xs) // SAMPLE)
        sample = [xs[i] for i in range(0, len(xs), step)][:SAMPLE]
        members = range(len(k.instances)) if by is None else by
        value, key = p.value, self._key
        keys = [sum(key(i, value(i, x)) for i in members) for x in sample]

        # the states of the largest class by instances, if it holds BIG of a worker's share:
        # deeper, such a class may grow to most states (Raft's: 15% of the frontier handed
        # over, 75% of all states), so it must be spread too, not only the sample as a whole
        classes: dict[int, list[int]] = {}
        for j, kx in enumerate(keys):
            classes.setdefault(kx, []).append(j)
        big = max(classes.values(), key=len)
        if len(big) * n < len(keys) * BIG:
            big = list(range(len(keys)))

        def worst(ks: list[int]) -> float:
            counts = [0] * n
            for kx in ks:
                counts[((((kx * _MIX) & MASK) >> 16) * n) >> 48] += 1
            within = [0] * n
            for j in big:
                within[((((ks[j] * _MIX) & MASK) >> 16) * n) >> 48] += 1
            return max(max(counts) * n / len(ks), max(within) * n / len(big))

        now = worst(keys)
        if now <= BALANCED:
            return ()
        nets: list[Any] = []
        for x in sample[:STEPPED]:             # the steps of a few: which links they change
            x, steps, _ = self.cb.steps(x)
            nets += [(p.rests[value(p.n, x)], p.rests[value(p.n, x + d)])
                     for _, d, viol in steps if not viol]
        ekeys, link = self.codec.envelope_keys(), k.env_link

        def per_link(net: Any) -> dict[int, int]:
            sums: dict[int, int] = {}
            for e in net:
                sums[link[e]] = sums.get(link[e], 0) + ekeys[e]
            return sums

        changes: dict[int, int] = {}
        for a, b in nets:
            sa, sb = per_link(a), per_link(b)
            for ln in sa.keys() | sb.keys():
                if sa.get(ln) != sb.get(ln):
                    changes[ln] = changes.get(ln, 0) + 1
        sums = [per_link(p.rests[value(p.n, x)]) for x in sample]
        candidates = sorted({ln for s in sums for ln in s})
        chosen: list[int] = []
        while now > BALANCED and len(chosen) < MOST_LINKS:
            best = min(((round(worst([kx + s.get(ln, 0) for kx, s in zip(keys, sums)]), 2),
                         changes.get(ln, 0), ln) for ln in candidates if ln not in chosen),
                       default=None)
            if best is None or best[0] > now - 0.01:
                break
            now, ln = best[0], best[2]
            chosen.append(ln)
            keys = [kx + s.get(ln, 0) for kx, s in zip(keys, sums)]
        return tuple(sorted(chosen))

    def choose_table(self, by: tuple[int, ...] | None, links: tuple[int, ...],
                     xs: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """Owners chosen for the keys (by the instances `by` and the links `links`) of a
        sample of the states `xs`, largest first to the worker with the fewest, where a
        hash would spread few keys unevenly."""
        n, k, p = self.n, self.kernel, self.packing
        step = max(1, len(xs) // SAMPLE)
        sample = [xs[i] for i in range(0, len(xs), step)][:SAMPLE]
        members = range(len(k.instances)) if by is None else by
        value, key = p.value, self._key
        ekeys, link, chosen = self.codec.envelope_keys(), k.env_link, frozenset(links)
        counts: dict[int, int] = {}
        for x in sample:
            kx = sum(key(i, value(i, x)) for i in members)
            kx += sum(ekeys[e] for e in p.rests[value(p.n, x)] if link[e] in chosen)
            counts[kx] = counts.get(kx, 0) + 1
        load = [0] * n
        table = []
        for kx, c in sorted(counts.items(), key=lambda kc: (-kc[1], kc[0])):
            o = load.index(min(load))
            load[o] += c
            table.append((kx, o))
        return tuple(table)

    def adopt(self, by: tuple[int, ...] | None) -> dict[str, Any]:
        """Instead of `start`, in a worker forked from a one-process search at the end of a
        level (`auto.Handover`): owners by the instances `by`; the visited set is that
        search's (this worker's copy: it holds the states other workers own too, which no
        child it owns can be), the frontier the states of its last level this worker owns.
        Worker 0 counts the states before that level.  No parent links: a counterexample is
        that search's to find."""
        from assay.checker.auto import taken

        _, frontier, depth, before = taken()
        m = len(self.kernel.instances)
        self.by = frozenset(by if by is not None else range(m))
        self.shards = self.cb.visited.shards
        self._widened()
        owner, me = self.owner, self.index
        for x in frontier:
            if owner(x) == me:
                self.xs.append(x)
        self.parents = array("q", [-1]) * len(self.xs)
        self.depth = depth
        self.bounds = [0] * (depth + 1)
        self.lo = self.hi = 0
        self.base = before if me == 0 else 0
        self.kernel.property_evaluations = 0      # this worker's own, from here (`summary`)
        return self._report()

    def expand(self, last: bool) -> tuple[dict[str, Any], list[bytes | None]]:
        k, cb, me, n = self.kernel, self.cb, self.index, self.n
        self.lo, self.hi = self.hi, len(self.xs)
        if len(self.bounds) == self.depth + 1:
            self.bounds.append(self.hi)
        wide = self.packing.wide
        self._outs = [[] if wide else array("Q") for _ in range(n)]
        self._outps = [array("q") for _ in range(n)]
        d = self.depth
        transitions = terminal = deadlocked = 0
        beyond = False
        stop: str | None = None
        deadline, max_memory = self.opts.deadline, self.opts.max_memory
        dead = False
        props = cb.property_violations if k.properties else None
        pos, end = self.lo, self.hi
        while pos < end:
            if deadline is not None and time.time() >= deadline:
                stop = "max-time"
                break
            if max_memory is not None and resident_bytes() >= max_memory:
                stop = "max-memory"
                break
            chunk = min(end, pos + CHUNK)
            began = pos
            while pos < chunk:
                loop = None if last or dead else self._fast()
                if loop is not None:
                    to, transitions, _ = loop(
                        self.xs, pos, chunk, me, n, transitions, self.xs.append,
                        self.parents.append, self.shards, self.sent_x, self._outs,
                        self._outps, props, cb._pmemos)
                    pos = to
                    if pos >= chunk:
                        break
                # the general path: one state
                x = self.xs[pos]
                x, steps, enabled = cb.steps(x)
                self._widened()
                transitions += enabled
                if not enabled:
                    s = self.packing.unpack(x)
                    if k.is_terminal(s):
                        terminal += 1
                    else:
                        deadlocked += 1
                        dead = True
                        self._candidate(d, "deadlock", s, pos, None, k.deadlock())
                if not dead:
                    beyond = self._children(x, pos, steps, last) or beyond
                pos += 1
            self._counted(pos - began)
        blobs: list[bytes | None] = [None] * n
        if not dead:
            for o in range(n):
                if o != me and len(self._outs[o]):
                    blobs[o] = self._blob(o)
        if len(self.sent_x) > len(self.xs) + 100_000:
            self.sent_x.clear()
        self._outs, self._outps = [], []
        return self._report(transitions=transitions, terminal=terminal,
                            deadlocked=deadlocked, beyond=beyond, stop=stop), blobs

    def _children(self, x: int, pos: int, steps: Sequence[Any], last: bool) -> bool:
        """The general path's children of x (at xs[pos]): candidates, own children added
        (at the depth bound only noted: True if one is new), the others sent."""
        d, me = self.depth, self.index
        beyond = False
        unpack = self.packing.unpack
        for ev, delta, viol in steps:
            if viol:
                self._candidate(d + 1, "transition", unpack(x), pos, ev, viol[0])
                continue
            t = x + delta
            o = self.owner(t)
            if o == me:
                if self._seen(t):
                    continue
                if last:
                    beyond = True
                else:
                    self._admit_x(t, pos << 8 | me, d + 1)
            elif last or t not in self.sent_x:
                if not last:
                    self.sent_x.add(t)
                self._outs[o].append(t)
                self._outps[o].append(pos)
        return beyond

    def _blob(self, o: int) -> bytes:
        """The batch for worker o: layout, the values interned here that it may not have,
        states, parents."""
        p, k = self.packing, self.kernel
        pub, given = self._pub[o], self._given[o]
        xs = self._outs[o]
        entries: dict[int, dict[int, Any]] = {}
        for f in range(self.nfields):
            have = len(p.rests) if f == p.n else len(k.instances[f].table.values)
            if have <= pub[f]:
                continue
            if have - pub[f] > 64 + len(xs) // 2:
                # more new values than the states sent could use (a whole-state spec: each
                # state its own local state): only those they use
                value = p.value
                want = {v for v in {value(f, t) for t in xs} if v >= pub[f]} - given[f]
                given[f] |= want
            else:
                want = set(range(pub[f], have)) - given[f]
                pub[f] = have
            if want:
                entries[f] = {v: self._payload(f, v) for v in want}
        # every envelope interned here since the last batch to o (a network is published as
        # its envelope ids here: cheaper to send and to translate than the envelopes)
        epays = self.codec.envelope_payloads(self._epub[o])
        self._epub[o] += len(epays)
        if type(xs) is array:
            width, data = 0, xs.tobytes()
        else:
            width = (p.top + 7) // 8
            data = b"".join(t.to_bytes(width, "little") for t in xs)
        return pickle.dumps((p.pieces, epays, entries, width, data,
                             self._outps[o].tobytes()), pickle.HIGHEST_PROTOCOL)

    def _payload(self, f: int, v: int) -> Any:
        """Value v of field f as another worker reads it: a local state's values themselves
        (pickled with the whole blob, whose memo pickles a part shared by several states —
        an unchanged field — once), a network as it is here: this worker's envelope ids,
        which the receiver maps through the envelopes published with them (`merge`)."""
        p = self.packing
        if f == p.n:
            return p.rests[v]
        return self.kernel.instances[f].table.values[v]

    def merge(self, blobs: Sequence[bytes | None], last: bool) -> dict[str, Any]:
        d = self.depth
        beyond = False
        for j, blob in enumerate(blobs):
            if blob is None:
                continue
            pieces, epays, entries, width, data, pdata = pickle.loads(blob)
            inc = self._in[j]
            inc.layout(pieces)
            inc.envs += map(self.codec._env_id, epays)
            inc.publish(entries)
            parents = array("q")
            parents.frombytes(pdata)
            if width:
                xs: Any = [int.from_bytes(data[i:i + width], "little")
                           for i in range(0, len(data), width)]
            else:
                xs = array("Q")
                xs.frombytes(data)
            self.received += len(xs)
            translate = self._translator(inc)
            shards = self.shards
            known = 0
            for y, pidx in zip(xs, parents):
                t = translate(y)
                if t in shards[t & SHARD_MASK]:
                    known += 1
                    continue
                if last:
                    beyond = True
                    break
                self._admit_x(t, pidx << 8 | j, d + 1)
            self.known += known
        self.depth += 1
        return self._report(beyond=beyond)

    def _translator(self, inc: Incoming) -> Callable[[int], int]:
        groups = inc.groups
        miss = self._contribution

        def translate(y: int) -> int:
            z = 0
            for m, fields, cache in groups:
                key = y & m
                c = cache.get(key)
                if c is None:
                    if len(cache) >= CACHE_MOST:
                        cache.clear()
                    c = cache[key] = miss(inc, fields, y)
                z += c
            return z
        return translate

    def _contribution(self, inc: Incoming, fields: tuple[int, ...], y: int) -> int:
        """The bits, in this worker's layout, of the values of `fields` in a sender's int."""
        p = self.packing
        z = 0
        for f in fields:
            mine = self._local_id(inc, f, _value(inc.pieces[f], y))
            while mine >= p.cap[f]:
                self.cb.relayout(Relayout(-1 if f == p.n else f, mine), 0)
                self._widened()
            z |= p.place(f, mine)
        return z

    def _local_id(self, inc: Incoming, f: int, v: int) -> int:
        ids = inc.ids[f]
        mine = ids.get(v)
        if mine is None:
            pay = inc.pays[f].pop(v)
            if f == self.packing.n:
                mine = self.packing.rest_id(self.codec.net_from(pay, inc.envs.__getitem__))
            else:
                mine = self.kernel.instances[f].table.intern(pay)
            ids[v] = mine
        return mine

    def trace_back(self, idx: int) -> tuple[Any, int, int]:
        code = self.parents[idx]
        state = self.codec.encode(self.packing.unpack(self.xs[idx]))
        return (state, -1, -1) if code < 0 else (state, code & 0xFF, code >> 8)

    def predecessor(self, d: int, enc: Any) -> tuple[str, Any] | None:
        """Of this worker's states at depth d with a step (that violates nothing) to the
        state `enc`, the least by fingerprint, as (fingerprint, encoded state); None if
        none.  (Which parent reached a state first depends on the owners, and so on the
        hash seed of forked workers: the least one does not.)"""
        cb, k = self.cb, self.kernel
        target = cb.pack(self.codec.decode(enc))
        self._widened()
        end = self.bounds[d + 1] if d + 1 < len(self.bounds) else len(self.xs)
        best: tuple[str, Any] | None = None
        for pos in range(self.bounds[d], end):
            x, steps, _ = cb.steps(self.xs[pos])
            if any(not viol and x + delta == target for _, delta, viol in steps):
                s = self.packing.unpack(x)
                fp = k.fingerprint(s)
                if best is None or fp < best[0]:
                    best = (fp, self.codec.encode(s))
        self._widened()
        return best

    def save(self, path: str) -> None:
        raise NotImplementedError("checkpoints take parallel.Shard")

    def restore(self, path: str) -> dict[str, Any]:
        raise NotImplementedError("checkpoints take parallel.Shard")
