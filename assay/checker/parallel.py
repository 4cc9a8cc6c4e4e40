"""Parallel breadth-first search: the state space sharded over worker processes by state.

Each worker (`Shard`) owns the states whose key (`portable.Portable.sharder`) maps to it and
keeps their visited map — the key of the local states of the instances the steps change
least (`shard_by`), so that most children belong to the worker that made them; the search
goes level by level.  A level is two rounds:
`expand` — each worker expands the states of its frontier, keeps the children it owns and
sends the others (encoded, `portable.py`) to their owners — then `merge` — each worker
adds the children it received that it has not seen, checks them, and makes its next
frontier.  The driver (`parallel_bfs`) only moves the batches between the two rounds and
adds up the counts; the workers are processes (`--workers N`: `multiprocessing`, each worker
builds its own kernel from the system) or Ray actors (`--ray`: `ray_search.py`).

Levels are exactly the BFS levels, so an exhausted search has the same states, transitions,
depth and terminal/deadlocked counts as `bfs.py`.  A violation is the shortest: the level
that finds one is finished by every worker, each reports the least violation it met by
(length, the state's fingerprint, kind, event), and the driver takes the least of those —
the same violation for any number of workers.  Its counterexample is rebuilt from the
workers' parent links and replayed through the driver's own kernel, which computes the
violation again.  Bounds: `max_states` is checked at the end of a level (the count may pass
it by up to one level), time and memory every 1,024 expanded states; Ctrl-C stops after the
last finished level.  With a violation the counts are those of the finished level, so they
may differ from `bfs.py`'s (which stops at the first violating state it meets).  Between
levels the workers may save the search (`checkpoint.py`), and take it up again.  A shard
can also keep one state per orbit (`Options.symmetry`: `StableSymmetry`, whose representative
every worker picks alike) and keep going past violations (`Options.keep_going`: each kind
counted, with its least candidate); `check` uses them for a checkpointed search, which runs
on one worker in those modes.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.checker.checkpoint import Checkpoints
from assay.checker.portable import Portable
from assay.checker.search import Found, Outcome, Search, resident_bytes, violation_key
from assay.checker.symmetry import StableSymmetry
from assay.errors import AssayError, AssayInternalError
from assay.kernel.kernel import Kernel, State
from assay.kernel.violation import Violation
from assay.kernel.watchdog import SpecTimeLimit

# a candidate violation: (sort key, kind, worker, state index, event JSON or None, key)
# sort key: (length, fingerprint of the state, kind rank, event key)
Candidate = tuple[tuple[int, str, int, bytes], str, int, int, Any, tuple[Any, ...]]
_RANK = {"deadlock": 0, "start": 1, "property": 2, "transition": 3}


@dataclass(frozen=True)
class Options:
    """What every worker needs to know of the search."""

    deadline: float | None = None          # time.time() at which max-time stops it
    max_memory: int | None = None          # bytes of resident memory, per worker
    forked: bool = False                   # every worker forked from this process
    # the instances whose local states decide a state's owner (None: all, and the network)
    shard_by: tuple[int, ...] | None = None
    symmetry: bool = False                 # one state per orbit (`symmetry.StableSymmetry`)
    keep_going: bool = False               # count every violation, stop at none (`Shard.kept`)
    # the workers search packed states (`parallel_compact.CompactShard`)
    compact: bool = False
    # forked from a one-process search they take up (`auto.Handover`, `CompactShard.adopt`)
    handover: bool = False
    # links whose messages in flight count in the owner key too (packed workers only:
    # `CompactShard.choose_links`)
    shard_links: tuple[int, ...] = ()
    # owners of some keys, chosen (`CompactShard.choose_table`); the others' by their hash
    shard_table: tuple[tuple[int, int], ...] = ()


def make_shard(kernel: Kernel, index: int, n: int, opts: Options) -> Shard:
    """The worker `opts` asks for."""
    if opts.compact:
        from assay.checker.parallel_compact import CompactShard

        if opts.handover:
            from assay.checker.auto import taken

            return CompactShard(kernel, index, n, opts, taken()[0])
        return CompactShard(kernel, index, n, opts)
    return Shard(kernel, index, n, opts)


class Shard:
    """One worker's part of the search: the states it owns, its frontier and parent links."""

    def __init__(self, kernel: Kernel, index: int, n: int, opts: Options) -> None:
        self.kernel = kernel
        self.codec = Portable(kernel, opts.forked)
        self.index = index
        self.n = n
        self.opts = opts
        self.visited: dict[State, int] = {}
        self.states: list[State] = []
        self.parent_worker = array("i")
        self.parent_index = array("q")
        self.frontier: list[tuple[State, int]] = []
        self.next: list[tuple[State, int]] = []
        # children sent to other workers lately: not sent again (a cache, cleared when big)
        self.sent: set[State] = set()
        self.depth = 0
        self.best: Candidate | None = None
        self.reduce = StableSymmetry(kernel) if opts.symmetry else None
        # with keep_going: per kind of violation (`_same` of its key), [count, unit, the
        # least candidate]
        self.kept: dict[tuple[Any, ...], list[Any]] | None = {} if opts.keep_going else None

    # --- bookkeeping --------------------------------------------------------------------------

    def _candidate(self, length: int, kind: str, state: State, idx: int, ev: int | None,
                   v: Violation, more: Sequence[Violation] = ()) -> None:
        """Note violation `v` (and `more`, of the same state or step: counted with
        keep_going)."""
        k = self.kernel
        key = (length, k.fingerprint(state), _RANK[kind],
               b"" if ev is None else k.event_key(ev))
        kept = self.kept
        if kept is None:
            if self.best is None or key < self.best[0]:
                self.best = (key, kind, self.index, idx,
                             None if ev is None else k.event(ev).to_json(), violation_key(v))
            return
        unit = "states" if kind in ("property", "deadlock") else "transitions"
        seen: set[tuple[Any, ...]] = set()
        for w in (v, *more):
            vkey = violation_key(w)
            same = _same(vkey)
            if same in seen:                 # the same kind twice in one step: once
                continue
            seen.add(same)
            entry = kept.get(same)
            if entry is None:
                entry = kept[same] = [0, unit, None]
            entry[0] += 1
            if entry[2] is None or key < entry[2][0]:
                entry[2] = (key, kind, self.index, idx,
                            None if ev is None else k.event(ev).to_json(), vkey)

    def _add(self, t: State, worker: int, parent: int) -> int:
        idx = len(self.states)
        self.visited[t] = idx
        self.states.append(t)
        self.parent_worker.append(worker)
        self.parent_index.append(parent)
        return idx

    def _admit(self, t: State, idx: int, length: int) -> None:
        """Check a new state and put it on the next frontier if it is within the
        constraints."""
        k = self.kernel
        if k.properties:
            pv = k.property_violations(t)
            if pv:
                self._candidate(length, "property", t, idx, None, pv[0], pv[1:])
        if not k.system.constraints or k.within(t):
            self.next.append((t, idx))

    def _report(self, **extra: Any) -> dict[str, Any]:
        best, self.best = self.best, None
        return {"candidate": best, "states": len(self.states), "frontier": len(self.next),
                **extra}

    # --- the rounds ---------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """The initial states this worker owns."""
        k, me, n = self.kernel, self.index, self.n
        for s, viol in k.initial_states():
            if self.reduce is not None:
                s = self.reduce.canon(s)
            if self.codec.sharder(n, self.opts.shard_by)(s) != me or s in self.visited:
                continue
            idx = self._add(s, -1, -1)
            if viol:
                self._candidate(0, "start", s, idx, None, viol[0], viol[1:])
            self._admit(s, idx, 0)
        return self._report()

    def expand(self, last: bool) -> tuple[dict[str, Any], list[bytes | None]]:
        """Expand the frontier: the children this worker owns join its visited map (unless
        `last`: the level at the depth bound), the others are returned encoded, one batch per
        worker (None for itself)."""
        k, me, n = self.kernel, self.index, self.n
        self.frontier, self.next = self.next, []
        successors, visited, sent = k.successors, self.visited, self.sent
        if self.reduce is not None:
            successors = self.reduce.successors
        keep_going = self.kept is not None
        owner = self.codec.sharder(n, self.opts.shard_by)
        out: list[dict[State, int]] = [{} for _ in range(n)]
        faulty = k.has_faults
        d = self.depth
        enabled_total = terminal = deadlocked = 0
        beyond = False
        stop: str | None = None
        deadline, max_memory = self.opts.deadline, self.opts.max_memory
        dead = False                          # a deadlock here: children no longer matter
        for count, (s, sidx) in enumerate(self.frontier, 1):
            if not count & 0x3FF:
                if deadline is not None and time.time() >= deadline:
                    stop = "max-time"
                    break
                if max_memory is not None and resident_bytes() >= max_memory:
                    stop = "max-memory"
                    break
            steps, enabled = successors(s)
            enabled_total += enabled
            if not enabled or faulty and not k.can_progress(s):
                if k.is_terminal(s):
                    terminal += 1
                else:
                    deadlocked += 1
                    dead = not keep_going
                    self._candidate(d, "deadlock", s, sidx, None, k.deadlock())
            if dead:
                continue
            for ev, t, viol in steps:
                if viol:
                    self._candidate(d + 1, "transition", s, sidx, ev, viol[0], viol[1:])
                    if not keep_going:
                        continue
                if t in visited or t in sent:
                    continue
                o = owner(t)
                if o == me:
                    if last:
                        beyond = True
                    else:
                        self._admit(t, self._add(t, me, sidx), d + 1)
                else:
                    batch = out[o]
                    if t not in batch:
                        batch[t] = sidx
        encode = self.codec.encode
        blobs: list[bytes | None] = [None] * n
        for o, batch in enumerate(out):
            if batch and not dead:
                blobs[o] = pickle.dumps(([encode(t) for t in batch], array("q", batch.values())),
                                        pickle.HIGHEST_PROTOCOL)
                if not last:
                    if len(sent) > len(visited) + 100_000:
                        sent.clear()
                    sent.update(batch)
        return self._report(transitions=enabled_total, terminal=terminal,
                            deadlocked=deadlocked, beyond=beyond, stop=stop), blobs

    def merge(self, blobs: Sequence[bytes | None], last: bool) -> dict[str, Any]:
        """Add the children other workers sent (blobs[j]: from worker j), new ones checked
        and put on the next frontier; at the depth bound (`last`) only note whether one is
        new."""
        decode, visited = self.codec.decode, self.visited
        d = self.depth
        beyond = False
        for j, blob in enumerate(blobs):
            if blob is None:
                continue
            encs, parents = pickle.loads(blob)
            for enc, p in zip(encs, parents):
                t = decode(enc)
                if t in visited:
                    continue
                if last:
                    beyond = True
                    break
                self._admit(t, self._add(t, j, p), d + 1)
        self.depth += 1
        return self._report(beyond=beyond)

    def save(self, path: str) -> None:
        """Write this worker's part of a checkpoint (at the end of a level) into `path`."""
        from assay.checker.checkpoint import shard_file

        encode = self.codec.encode
        extra = {"kept": self.kept,
                 "expanded": self.reduce.expanded if self.reduce is not None else 0}
        data = ([encode(s) for s in self.states], self.parent_worker, self.parent_index,
                array("q", [i for _, i in self.next]), self.depth, extra)
        name = shard_file(path, self.index)
        with open(name + ".tmp", "wb") as f:
            pickle.dump(data, f, pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(name + ".tmp", name)

    def restore(self, path: str) -> dict[str, Any]:
        """Take up the search from this worker's part of the checkpoint in `path`."""
        from assay.checker.checkpoint import verified

        data = pickle.loads(verified(path, self.index))     # (checked with this user's key)
        encs, self.parent_worker, self.parent_index, frontier, self.depth = data[:5]
        extra = data[5] if len(data) > 5 else {}      # (none in a checkpoint of a plain BFS
        if self.kept is not None:                     # written before they were saved)
            self.kept = extra.get("kept") or {}
        if self.reduce is not None:                   # the same spot checks as if never
            self.reduce.expanded = extra.get("expanded", 0)   # stopped
        decode = self.codec.decode
        self.states = [decode(e) for e in encs]
        self.visited = {s: i for i, s in enumerate(self.states)}
        self.next = [(self.states[i], i) for i in frontier]
        return self._report()

    def findings(self) -> list[tuple[tuple[Any, ...], int, str, Candidate]]:
        """With keep_going: each kind of violation met, its count, unit and least candidate."""
        return [(same, n, unit, cand) for same, (n, unit, cand) in (self.kept or {}).items()]

    def trace_back(self, idx: int) -> tuple[Any, int, int]:
        """State `idx` encoded, and where its parent is (worker, index; -1: an initial
        state)."""
        return (self.codec.encode(self.states[idx]), self.parent_worker[idx],
                self.parent_index[idx])

    def summary(self) -> dict[str, Any]:
        return summary(self.kernel)


def summary(k: Kernel) -> dict[str, Any]:
    """What the property report needs of a worker's kernel `k` (JSON: a checkpoint keeps it,
    for the report of the search that resumes)."""
    unchanged = k.unchanged_instances() if k.property_evaluations else set()
    first = next(iter(k._property_memo), None)
    return {"evaluations": k.property_evaluations,
            "reads": [sorted(r) for r in k.property_reads],
            "beyond": list(k.property_beyond),
            "unchanged": {str(i): k.instances[i].table.canonical(first[i]).hex()
                          for i in unchanged} if first is not None else {}}


# --- the driver --------------------------------------------------------------------------------

class Workers:
    """How the driver talks to its workers: every call goes to all of them and returns one
    result per worker.  `expand` leaves the batches with the workers' transport; `merge`
    hands each worker the batches addressed to it."""

    n: int
    # called now and then while the driver waits for its workers (progress reports)
    heartbeat: Callable[[], None] | None = None
    shard_by: tuple[int, ...] | None = None       # the workers' `Options.shard_by`
    # a counterexample's path: the least predecessor at each depth (`CompactShard`), not
    # the parent links
    least_paths: bool = False

    def call(self, method: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    def expand(self, last: bool) -> list[dict[str, Any]]:
        raise NotImplementedError

    def merge(self, last: bool) -> list[dict[str, Any]]:
        raise NotImplementedError

    def one(self, worker: int, method: str, *args: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def long_call(self) -> tuple[str, float] | None:
        """The call of spec code a worker has been in the longest, and for how many
        seconds, when one has been in one a while (`watchdog.long_calls`); None if none
        has, or the workers cannot say."""
        return None


@dataclass
class Extra:
    """What the property report needs of the workers (see `Shard.summary`)."""

    evaluations: int
    unchanged: set[int] | None
    # the workers' own (`summary`), not merged: of workers that took up a search (`adopted`)
    summaries: list[dict[str, Any]] = field(default_factory=list)


def parallel_bfs(kernel: Kernel, search: Search, workers: Workers,
                 checkpoints: Checkpoints | None = None,
                 resume: dict[str, Any] | None = None,
                 reduce: StableSymmetry | None = None,
                 keep_going: bool = False, adopted: bool = False) -> tuple[Outcome, Extra]:
    """Breadth-first search by `workers`; the outcome in `kernel`'s ids (a counterexample
    is rebuilt and replayed here).  With `checkpoints`, from the one saved there if any, and
    saving one at the end of a level every `checkpoints.every` seconds; `resume` is the
    checkpoint found there to take up.  `reduce` (of `kernel`): the workers keep one state
    per orbit (`Options.symmetry`), and the counterexample is the representatives' path,
    for `reduce.concretise`.  `keep_going` (the workers' `Options.keep_going`): no violation
    stops the search; the outcome's `found` has each kind, least candidate first.
    `adopted`: the workers take up a one-process search (`auto.Handover`; `resume` has its
    counts and "adopt", the owner's instances): a violation is only reported (no
    counterexample: that process finds its own), and the workers' property statistics are
    returned unmerged (`Extra.summaries`)."""
    states = transitions = terminal = deadlocked = 0
    interrupted = False
    reason: str | None = None
    win: Candidate | None = None

    def totals(reps: list[dict[str, Any]]) -> None:
        nonlocal states, transitions, terminal, deadlocked
        states = sum(r["states"] for r in reps)
        transitions += sum(r.get("transitions", 0) for r in reps)
        terminal += sum(r.get("terminal", 0) for r in reps)
        deadlocked += sum(r.get("deadlocked", 0) for r in reps)
        search.states, search.transitions = states, transitions

    def least(reps: list[dict[str, Any]]) -> Candidate | None:
        cands = [r["candidate"] for r in reps if r["candidate"] is not None]
        return min(cands, key=lambda c: c[0]) if cands else None

    frontier = 0
    def heartbeat() -> None:            # while the driver waits for the workers
        if search.tick(frontier) == "max-time" and \
                time.perf_counter() - search.started >= search.max_time + WAIT_GRACE:  # type: ignore[operator]
            # a worker's own time check comes between states: one that has not answered
            # this long after the limit is in one call of spec code that does not return
            long = workers.long_call()
            search.overdue = (f"the time limit ({search.max_time:g} s) passed while a worker "
                              f"was in one step for over {WAIT_GRACE:g} s more (spec code that "
                              "never returns?): the workers were stopped there"
                              if long is None else
                              f"the time limit ({search.max_time:g} s) passed while "
                              f"{long[0]} was running in a worker ({long[1]:.0f} s in one "
                              "call): the workers were stopped there")
            raise SpecTimeLimit

    workers.heartbeat = heartbeat
    saved = time.perf_counter()
    by = workers.shard_by
    # the property statistics of the search before the checkpoint resumed, if one was
    earlier: list[dict[str, Any]] = resume["properties"] if resume is not None else []

    def checkpoint() -> None:
        nonlocal saved
        assert checkpoints is not None
        workers.call("save", checkpoints.begin())
        checkpoints.commit({"states": states, "transitions": transitions,
                            "properties": earlier + workers.call("summary"),
                            "terminal": terminal, "deadlocked": deadlocked,
                            "depth": search.depth,
                            "shard_by": None if by is None else list(by)})
        saved = time.perf_counter()

    try:
        if resume is not None:
            reps = workers.call("adopt", resume["adopt"]) if adopted else \
                workers.call("restore", resume["path"])
            transitions, terminal, deadlocked = (resume["transitions"], resume["terminal"],
                                                 resume["deadlocked"])
            search.depth = resume["depth"]
        else:
            reps = workers.call("start")
        totals(reps)
        win = least(reps)
        frontier = sum(r["frontier"] for r in reps)
        if win is not None:
            reason = "violation"
        elif search.max_states is not None and states > search.max_states:
            reason = "max-states"
        while reason is None and frontier:
            last = search.max_depth is not None and search.depth >= search.max_depth
            reps = workers.expand(last)
            totals(reps)
            stop = next((r["stop"] for r in reps if r["stop"]), None)
            if stop is not None:
                reason = stop
                break
            win = least(reps)
            if win is not None and win[0][0] == search.depth:     # a deadlock: the shortest
                reason = "violation"
                break
            beyond = any(r["beyond"] for r in reps)
            merged = workers.merge(last)
            totals(merged)
            beyond = beyond or any(r["beyond"] for r in merged)
            win = least([r for r in reps + merged])
            if win is not None:
                search.depth += 1
                reason = "violation"
                break
            if last:
                reason = "max-depth" if beyond else "exhausted"
                break
            frontier = sum(r["frontier"] for r in merged)
            if frontier:
                search.depth += 1
            if search.max_states is not None and states > search.max_states:
                reason = "max-states"
                break
            bound = search.tick(frontier)
            if bound is not None:
                reason = bound
                break
            if checkpoints is not None and frontier and \
                    time.perf_counter() - saved >= checkpoints.every:
                checkpoint()
        if reason is None:
            reason = "exhausted"
        outcome = Outcome(reason, states, transitions, search.depth,  # type: ignore[arg-type]
                          time.perf_counter() - search.started, terminal=terminal,
                          deadlocked=deadlocked)
        if win is not None and not adopted:
            outcome = _counterexample(kernel, workers, win, outcome, reduce)
        elif keep_going:
            outcome = _kept(kernel, workers, outcome, reduce)
        summaries = workers.call("summary")
    except KeyboardInterrupt:
        interrupted = True
        summaries = []
    finally:
        workers.close()
    if interrupted:
        outcome = Outcome("interrupted", states, transitions, search.depth,
                          time.perf_counter() - search.started, terminal=terminal,
                          deadlocked=deadlocked)
    if adopted:
        return outcome, Extra(0, None, summaries)
    return outcome, _merge_summaries(kernel, summaries + earlier if summaries else [])


def _kept(kernel: Kernel, workers: Workers, outcome: Outcome,
          reduce: StableSymmetry | None) -> Outcome:
    """The outcome of a search that kept going: the workers' findings added up per kind, each
    with the counterexample of its least candidate, the least first."""
    from dataclasses import replace

    merged: dict[tuple[Any, ...], list[Any]] = {}
    for found in workers.call("findings"):
        for same, n, unit, cand in found:
            entry = merged.get(same)
            if entry is None:
                merged[same] = [n, unit, cand]
            else:
                entry[0] += n
                if cand[0] < entry[2][0]:
                    entry[2] = cand
    out: list[Found] = []
    for _, (n, unit, cand) in sorted(merged.items(), key=lambda e: (e[1][2][0], str(e[0]))):
        one = _counterexample(kernel, workers, cand, outcome, reduce)
        assert one.violation is not None and one.start is not None
        out.append(Found(one.violation, n, unit, one.start, one.path))
    if not out:
        return outcome
    return replace(outcome, violation=out[0].violation, start=out[0].start, path=out[0].path,
                   found=tuple(out))


def _counterexample(kernel: Kernel, workers: Workers, win: Candidate,
                    outcome: Outcome, reduce: StableSymmetry | None = None) -> Outcome:
    """The path to the winning candidate, from the workers' parent links, replayed through
    `kernel`; the violation is computed again here.  With `reduce` the states are orbits'
    representatives, and so is each step's target."""
    from dataclasses import replace

    canon = reduce.canon if reduce is not None else lambda t: t
    key, kind, worker, idx, ev_json, vkey = win
    want = _same(vkey)

    def same(vs: Sequence[Violation]) -> Violation | None:
        return next((v for v in vs if _same(violation_key(v)) == want), None)
    codec = Portable(kernel)
    chain: list[State] = []
    w, i = worker, idx
    if workers.least_paths:
        # back from the state, at each depth the least predecessor by fingerprint (the
        # same whatever the owners were)
        enc = workers.one(w, "trace_back", i)[0]
        chain.append(codec.decode(enc))
        for d in range(key[0] - (kind == "transition") - 1, -1, -1):
            found = [p for p in workers.call("predecessor", d, enc) if p is not None]
            if not found:
                raise AssayInternalError("parallel search: a state with no predecessor")
            enc = min(found, key=lambda p: p[0])[1]
            chain.append(codec.decode(enc))
    while not workers.least_paths and i >= 0:
        enc, w, i = workers.one(w, "trace_back", i)
        chain.append(codec.decode(enc))
    chain.reverse()
    start = chain[0]
    path: list[int] = []
    for a, b in zip(chain, chain[1:]):
        # a step to `b` that breaks nothing if there is one (a search that kept going went on
        # past violating steps too)
        steps = [(e, viol) for e, t, viol in kernel.successors(a)[0] if canon(t) == b]
        ev = next((e for e, viol in steps if not viol), steps[0][0] if steps else None)
        if ev is None:
            raise AssayInternalError("parallel search: a parent link that is no step")
        path.append(ev)
    end = chain[-1]
    violation: Violation | None
    if kind == "deadlock":
        violation = kernel.deadlock()
    elif kind == "start":
        violation = next((same(viol) for s, viol in kernel.initial_states()
                          if canon(s) == end and same(viol)), None)
    elif kind == "property":
        violation = same(kernel.property_violations(end))
    else:
        ev = kernel.event_id(end, ev_json)
        step = next((st for st in kernel.successors(end)[0] if st[0] == ev and st[2]), None)
        violation = same(step[2]) if step is not None else None
        path.append(ev)
    if violation is None or _same(violation_key(violation)) != want:
        raise AssayInternalError(f"parallel search: the {kind} violation a worker found does "
                                 "not replay in the driver's kernel")
    return replace(outcome, violation=violation, start=start, path=tuple(path))


def _same(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """A violation's key without its file's path (an actor may have loaded the spec by
    another path), with the line."""
    loc = key[-1]
    return (*key[:-1], None if loc is None else loc.line)


def _merge_summaries(kernel: Kernel, summaries: list[dict[str, Any]]) -> Extra:
    """The workers' property statistics, added into `kernel`'s (for `_property_report`)."""
    if not summaries:
        return Extra(kernel.property_evaluations, None)
    kernel.property_evaluations = sum(s["evaluations"] for s in summaries)
    for s in summaries:
        for mine, theirs in zip(kernel.property_reads, s["reads"]):
            mine |= set(theirs)
        kernel.property_beyond[:] = [a or b for a, b in zip(kernel.property_beyond, s["beyond"])]
    seen = [s for s in summaries if s["evaluations"]]
    unchanged: set[int] = set(range(len(kernel.instances))) if seen else set()
    for i in list(unchanged):
        values = {s["unchanged"].get(str(i)) for s in seen}
        if None in values or len(values) != 1:
            unchanged.discard(i)
    return Extra(kernel.property_evaluations, unchanged)


# --- worker processes (multiprocessing) ----------------------------------------------------------

def shard_by(kernel: Kernel, n: int, most: int = 3000, seconds: float = 1.0
             ) -> tuple[int, ...] | None:
    """The instances whose local states should decide which worker owns a state.

    A state's children that change only other instances then stay with the worker that
    made them, and cost nothing to move: a search of cheap steps (TwoPhase) spends as much
    moving states between processes as computing them.  Chosen on a sample (a breadth-first
    search of at most `most` states or `seconds`, in this process): the instances that the
    steps change least, as few as keep the sample's states spread (at least 16 distinct
    projections per worker, none holding more than a quarter of a worker's share); but
    first the instance with the most local states in the sample, if it has 8 per worker
    and none in 60% of the sample.  None
    (every instance and the network) when no fewer instances do.  Any choice gives the same
    result; it only moves work between workers."""
    m = len(kernel.instances)
    if n == 1 or m == 1:
        return None
    end = time.perf_counter() + seconds
    seen: dict[State, None] = {}
    level = [s for s, _ in kernel.initial_states()]
    changes = [0] * m
    while level and len(seen) < most and time.perf_counter() < end:
        nxt = []
        for s in level:
            if s in seen:
                continue
            seen[s] = None
            for _, t, _ in kernel.successors(s)[0]:
                a, b = s[0], t[0]
                if a is not b:
                    for i in range(m):
                        if a[i] != b[i]:
                            changes[i] += 1
                nxt.append(t)
            if len(seen) >= most or time.perf_counter() >= end:
                break
        level = nxt
    sample = list(seen)
    if len(sample) < 64 * n:
        return None                   # too few to tell
    # one instance with many local states, none of them holding 60% of the sample, first:
    # TwoPhase's coordinator (its steps are many in the first levels, the sample, and few
    # in the rest, where a resource manager's are many: 4-5x fewer states to send)
    spread = []
    for i in range(m):
        counts: dict[int, int] = {}
        for s in sample:
            counts[s[0][i]] = counts.get(s[0][i], 0) + 1
        if len(counts) >= 8 * n and max(counts.values()) * 5 <= len(sample) * 3:
            spread.append((-len(counts), i))
    if spread:
        return (min(spread)[1],)
    order = sorted(range(m), key=lambda i: (changes[i], i))
    for size in range(1, m):
        by = tuple(sorted(order[:size]))
        classes: dict[tuple[int, ...], int] = {}
        for s in sample:
            p = tuple(s[0][i] for i in by)
            classes[p] = classes.get(p, 0) + 1
        if len(classes) >= 16 * n and max(classes.values()) * 4 * n <= len(sample):
            return by
    return None


# seconds past the time limit the driver waits for a worker before stopping them all
WAIT_GRACE = 5.0


def _fork() -> bool:
    return sys.platform.startswith("linux")


def _serve(conn: Any, kernel_args: tuple[Any, ...] | Kernel, index: int, n: int,
           opts: Options, calls: str | None = None) -> None:
    """A worker process: build a kernel (or, forked, take the driver's), then answer the
    driver's calls until it closes.  Its watch says so when spec code does not return, and
    keeps that call in the directory `calls` for the driver to name (`Workers.long_call`)."""
    from assay.kernel.watchdog import SpecWatch

    signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C: the driver decides
    _die_with_parent()
    SpecWatch(None, "the check", "A time limit (--max-time) stops it" if opts.deadline is None
              else "It is stopped when the time limit passes", keep_in=calls).start()
    try:
        kernel = kernel_args if isinstance(kernel_args, Kernel) else Kernel(*kernel_args)
        shard = make_shard(kernel, index, n, opts)
    except BaseException as e:                          # noqa: BLE001 - sent to the driver
        conn.send(("error", _portable_error(e)))
        return
    conn.send(("ok", None))
    outbox: list[bytes | None] = []
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        method, args = msg
        try:
            if method == "expand":
                rep, outbox = shard.expand(*args)
                result: Any = (rep, outbox)
            elif method == "merge":
                result = shard.merge(*args)
            else:
                result = getattr(shard, method)(*args)
        except BaseException as e:                      # noqa: BLE001 - sent to the driver
            conn.send(("error", _portable_error(e)))
            continue
        conn.send(("ok", result))


def _portable_error(e: BaseException) -> Any:
    try:
        pickle.dumps(e)
        return e
    except Exception:
        return AssayInternalError(f"in a worker: {type(e).__name__}: {e}")


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)       # PR_SET_PDEATHSIG
            if os.getppid() == 1:
                os._exit(1)


class Processes(Workers):
    """`n` forked worker processes, each with its own kernel of the same system; the batches
    of a level pass through the driver (`send_bytes`: no copy beyond the pipe's)."""

    def __init__(self, kernel: Kernel, n: int, opts: Options) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if _fork() else "spawn")
        self.n = n
        self.least_paths = opts.compact
        args: tuple[Any, ...] | Kernel = \
            (kernel.system, kernel.faults, kernel.fairness, kernel.check_deadlock)
        if opts.handover:                     # forked: the driver's kernel, as it is
            assert _fork()
            args = kernel
        self.conns = []
        self.procs = []
        import tempfile

        self.calls: str | None = tempfile.mkdtemp(prefix="assay-calls-")
        try:
            for i in range(n):
                a, b = ctx.Pipe()
                p = ctx.Process(  # type: ignore[attr-defined]
                    target=_serve, args=(b, args, i, n, opts, self.calls), daemon=True)
                p.start()
                b.close()
                self.conns.append(a)
                self.procs.append(p)
            for c in self.conns:
                self._result(c)
        except BaseException:
            self.close()
            raise
        self._batches: list[list[bytes | None]] = []

    def _result(self, conn: Any) -> Any:
        while self.heartbeat is not None and not conn.poll(0.2):
            self.heartbeat()
        try:
            status, value = conn.recv()
        except EOFError:
            raise AssayInternalError("a worker process died (out of memory?)") from None
        if status == "error":
            raise value
        return value

    def call(self, method: str, *args: Any) -> list[Any]:
        for c in self.conns:
            c.send((method, args))
        return [self._result(c) for c in self.conns]

    def one(self, worker: int, method: str, *args: Any) -> Any:
        c = self.conns[worker]
        c.send((method, args))
        return self._result(c)

    def expand(self, last: bool) -> list[dict[str, Any]]:
        got = self.call("expand", last)
        self._batches = [blobs for _, blobs in got]
        return [rep for rep, _ in got]

    def merge(self, last: bool) -> list[dict[str, Any]]:
        b = self._batches
        self._batches = []
        for j, c in enumerate(self.conns):
            c.send(("merge", ([b[i][j] for i in range(self.n)], last)))
        return [self._result(c) for c in self.conns]

    def close(self) -> None:
        for c in self.conns:
            with contextlib.suppress(Exception):
                c.close()
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.kill()
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.join(5)
        self.conns, self.procs = [], []
        if self.calls is not None:
            import shutil

            shutil.rmtree(self.calls, ignore_errors=True)
            self.calls = None

    def long_call(self) -> tuple[str, float] | None:
        from assay.kernel.watchdog import long_calls

        found = long_calls(self.calls) if self.calls is not None else []
        return found[0] if found else None


def check_parallel(kernel: Kernel, search: Search, n: int,
                   make: Callable[[Options], Workers] | None = None,
                   checkpoints: Checkpoints | None = None, reduce: StableSymmetry | None = None,
                   keep_going: bool = False) -> tuple[Outcome, Extra]:
    """`parallel_bfs` over `n` worker processes (or the workers `make` builds; one in this
    process when `n` is 1); `reduce` and `keep_going` as `parallel_bfs` takes them."""
    deadline = None if search.max_time is None else \
        time.time() + search.max_time - (time.perf_counter() - search.started)
    per_worker = None if search.max_memory is None else max(1, search.max_memory // (n + 1))
    resume = checkpoints.found() if checkpoints is not None else None
    if resume is not None:
        by = resume["shard_by"]
        by = None if by is None else tuple(by)
    else:
        by = shard_by(kernel, n)
    # a checkpoint is resumed by other processes: keys that do not depend on this one's hash
    forked = make is None and _fork() and checkpoints is None
    from assay.checker.parallel_compact import supported

    compact = make is None and checkpoints is None and reduce is None and not keep_going \
        and supported(kernel)
    opts = Options(deadline, per_worker, forked, by, reduce is not None, keep_going, compact)
    try:
        workers = make(opts) if make is not None else \
            InProcess(kernel, 1, opts) if n == 1 else Processes(kernel, n, opts)
    except KeyboardInterrupt:
        return Outcome("interrupted", 0, 0, 0, time.perf_counter() - search.started), \
            Extra(0, None)
    except AssayError:
        raise
    workers.shard_by = by
    return parallel_bfs(kernel, search, workers, checkpoints, resume, reduce, keep_going)


class InProcess(Workers):
    """`n` shards in this process, one after the other: the parallel search's logic without
    processes (for tests of its results for any `n`, and for profiling)."""

    def __init__(self, kernel: Kernel, n: int, opts: Options) -> None:
        self.n = n
        self.least_paths = opts.compact
        self.shards = [make_shard(Kernel(kernel.system, kernel.faults, kernel.fairness,
                                         kernel.check_deadlock), i, n, opts) for i in range(n)]
        self._batches: list[list[bytes | None]] = []

    def call(self, method: str, *args: Any) -> list[Any]:
        return [getattr(s, method)(*args) for s in self.shards]

    def one(self, worker: int, method: str, *args: Any) -> Any:
        return getattr(self.shards[worker], method)(*args)

    def expand(self, last: bool) -> list[dict[str, Any]]:
        got = self.call("expand", last)
        self._batches = [blobs for _, blobs in got]
        return [rep for rep, _ in got]

    def merge(self, last: bool) -> list[dict[str, Any]]:
        b, self._batches = self._batches, []
        return [s.merge([b[i][j] for i in range(self.n)], last)
                for j, s in enumerate(self.shards)]

    def close(self) -> None:
        pass
