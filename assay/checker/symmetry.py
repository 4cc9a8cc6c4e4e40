"""Symmetry reduction: one state per orbit under the permutations of interchangeable instances.

`s.symmetric(rm1, rm2, ...)` declares a group.  A permutation π of a group renames its members
everywhere in a global state: the locals tuple is reordered, and every value that names a
member — a `Peer` or `str` equal to a member's name, in a field, a set, a tuple, a map, a
record, a message (its `sender` too), an envelope's ends, a session's peer, a timer's owner,
the crash and partition masks — is renamed (`permute`).  Values are immutable; renamed local
states and envelopes are interned again, and the renamings are memoised (the hot path).

`canon` picks the representative of a state's orbit by sorting each group's members by a
signature that a permutation carries along (`sig(π s, π m) == sig(s, m)`): the member's own
local state with itself written SELF and the other members OTHER, the same abstraction of every
ungrouped instance's local state and of each message in flight and timer that names it, and
its crash and partition bits.  Members are put in the order of their signatures, ties in the
order they are in: the result is always a permutation of the state (sound: two states with
one representative are in one orbit), and it is the orbit's one representative whenever
members with equal signatures are interchangeable in the state (exact) — else the search
only keeps more than one state of an orbit.

Counterexamples stay concrete: `concretise` walks the representatives' path from a concrete
initial state, taking at each step an enabled event whose successor has the next
representative (TLC's way).
"""
from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

from assay.errors import SpecError
from assay.kernel.events import Envelope
from assay.kernel.kernel import Kernel, State
from assay.kernel.network import Duplicating, Fifo
from assay.kernel.violation import Violation
from assay.model.mapping import Map
from assay.model.record import Record
from assay.model.types import Peer, canonical

SPOT_FIRST = 200          # spot-check the first states expanded, then one in SPOT_EVERY
SPOT_EVERY = 1000
# Properties, terminal predicates and constraints are compared on every expanded state with
# every permutation of the groups when there are at most this many (each orbit's every state
# is then judged, as an unreduced search would); past it, with some (`Symmetry.compared`).
ALL_PERMUTATIONS = 24
SELF = "\x00self"
OTHER = "\x00other"


def rename_value(v: Any, names: dict[str, str]) -> Any:
    """`v` with every string that is a key of `names` replaced by its value (a `Peer` stays a
    `Peer`); the same object when nothing in it changes."""
    t = type(v)
    if t is str or t is Peer:
        n = names.get(v)
        if n is None:
            return v
        return Peer(n) if t is Peer else n
    if t is tuple:
        new = tuple([rename_value(x, names) for x in v])
        return v if all(a is b for a, b in zip(new, v)) else new
    if t is frozenset:
        new_set = frozenset([rename_value(x, names) for x in v])
        return v if new_set == v and all(rename_value(x, names) is x for x in v) else new_set
    if isinstance(v, Record):
        vals = v.values()
        new = tuple([rename_value(x, names) for x in vals])
        sender = getattr(v, "sender", None) if hasattr(type(v), "with_sender") else None
        new_sender = names.get(sender, sender) if sender is not None else None
        if all(a is b for a, b in zip(new, vals)) and new_sender == sender:
            return v
        r = object.__new__(t)
        object.__setattr__(r, "_values", new)
        object.__setattr__(r, "_hash", None)
        if hasattr(t, "with_sender"):
            object.__setattr__(r, "sender", None if sender is None else
                               (Peer(new_sender) if type(sender) is Peer else new_sender))
        return r
    if isinstance(v, Map):
        d = {rename_value(k, names): rename_value(x, names) for k, x in v._d.items()}
        return Map._of(d)
    return v


def mentions(v: Any, names: frozenset[str] | dict[str, Any], out: set[str]) -> None:
    """Add to `out` the strings of `names` that `v` holds."""
    t = type(v)
    if t is str or t is Peer:
        if v in names:
            out.add(v)
    elif t is tuple or t is frozenset:
        for x in v:
            mentions(x, names, out)
    elif isinstance(v, Record):
        for x in v.values():
            mentions(x, names, out)
        sender = getattr(v, "sender", None) if hasattr(type(v), "with_sender") else None
        if sender is not None and sender in names:
            out.add(sender)
    elif isinstance(v, Map):
        for k, x in v._d.items():
            mentions(k, names, out)
            mentions(x, names, out)


class NotSymmetric(Exception):
    """A property (or terminal or constraint) told a state and one of its permutations apart."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")
        self.what = what
        self.why = why

    def __reduce__(self) -> tuple[Any, ...]:       # from a worker process to the driver
        return NotSymmetric, (self.what, self.why)


class Symmetry:
    """The groups of interchangeable instances of one kernel: permutations and representatives."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = k = kernel
        self.names = [inst.name for inst in k.instances]
        self.groups: list[tuple[int, ...]] = [tuple(k.index[n] for n in g)
                                             for g, _ in k.system.symmetries]
        for g, where in k.system.symmetries:
            _validate(k, g, where)
        self.member_names = frozenset(self.names[i] for g in self.groups for i in g)
        grouped = {i for g in self.groups for i in g}
        self.ungrouped = tuple(i for i in range(len(self.names)) if i not in grouped)
        self.identity = tuple(range(len(self.names)))
        self._codes: dict[bytes, int] = {}
        self._abstractions: dict[tuple[int, tuple[int, ...]], dict[str, str]] = {}
        if len(self.names) >= 1 << 14:
            raise SpecError(f"symmetry reduction handles systems of fewer than {1 << 14:,} "
                            "instances", k.system.symmetries[0][1])
        self._lmention: dict[int, tuple[int, ...]] = {}       # lid << 14 | instance
        # instances whose session keys name no member: a local state naming none is kept
        self.plain = [not any(peer in self.member_names
                              for _, peer in inst.runner.session_keys)
                      for inst in k.instances]
        self._lrename: dict[tuple[Any, ...], int] = {}
        self._ementions: dict[int, tuple[int, ...]] = {}
        self._erename: dict[Any, int] = {}
        self._trename: dict[tuple[Any, ...], int] = {}
        self._own: dict[int, int] = {}                          # lid << 14 | member -> code
        self._appear: dict[tuple[int, int, int], tuple[int, ...]] = {}   # (group, inst, lid)
        # per group: envelope -> ((position in the group, code), ...)
        self._env_sigs: list[dict[int, tuple[tuple[int, int], ...]]] = [
            {} for _ in self.groups]
        self._timer_sig: dict[tuple[int, int], tuple[tuple[int, int], ...]] = {}
        self._net_sig: dict[tuple[int, Any], tuple[tuple[int, ...], ...]] = {}
        self.fifo = isinstance(k.network, Fifo)
        self.dup = isinstance(k.network, Duplicating)
        self.link_ends = [(k.index[a], ap, k.index[b], bp) for a, ap, b, bp in k.links]
        self.expanded = 0
        self.perms = self.transpositions()
        # what every expanded state's verdicts are compared with (`judged`), which they are
        # (label, predicate, location), and per tuple of local states those found the same
        # on each of its permutations by reading only local states (bit j: predicate j)
        self._predicates: list[tuple[str, Any, Any]] = (
            [(f"property {p.name!r}", p.fn, p.location) for p in k.properties]
            + [("a terminal predicate", pred, loc) for pred, loc in k.terminals]
            + [("a constraint", fn, loc) for fn, loc in k.system.constraints])
        self._all_judged = (1 << len(self._predicates)) - 1
        self._terminal_bits = ((1 << len(k.terminals)) - 1) << len(k.properties)
        self._judged: dict[tuple[int, ...], int] = {}
        judge, self.judged_exactly = self.compared()
        self.judge = judge if self._predicates else []
        self.orders = [{m: pos for pos, m in enumerate(g)} for g in self.groups]

    # --- permutations -------------------------------------------------------------------------

    def permute(self, state: State, p: Sequence[int]) -> State:
        """`state` with instance i renamed to instance p[i] everywhere (p permutes each group
        within itself and fixes every other instance)."""
        k = self.kernel
        locals_ = state[0]
        new = [0] * len(locals_)
        lmention = self._lmention
        plain = self.plain
        for i, lid in enumerate(locals_):
            m = lmention.get(lid << 14 | i)
            if m is None:
                m = self._local_mentions(i, lid)
            if not m and plain[i]:                 # names no member: the same local state
                new[p[i]] = lid
            else:
                new[p[i]] = self._rename_local(i, lid, p, m)
        net = state[1]
        emention = self._ementions
        erename = self._erename
        renamed = []
        for e in (net if not self.fifo else ()):
            m = emention.get(e)
            if m is None:
                m = self._env_mentions(e)
            if not m:
                renamed.append(e)
                continue
            key = e << 14 | p[m[0]] if len(m) == 1 else (e, *[p[x] for x in m])
            r = erename.get(key)
            if r is None:
                r = erename[key] = self._rename_env(e, p)
            renamed.append(r)
        if self.fifo:
            queues: list[tuple[int, ...]] = [()] * len(net)
            names = self.names
            for link, q in enumerate(net):
                if q:
                    a, ap, b, bp = self.link_ends[link]
                    queues[k.link_index[(names[p[a]], ap, names[p[b]], bp)]] = tuple(
                        [self._renamed_env(e, p) for e in q])
            new_net: Any = tuple(queues)
        elif self.dup:
            new_net = frozenset(renamed)
        else:
            renamed.sort()
            new_net = tuple(renamed)
        if len(state) == 2:
            return (tuple(new), new_net)
        _, _, timers, down, budget, cut = state
        timers = tuple(sorted([self._rename_timer(t, p) for t in timers]))
        return (tuple(new), new_net, timers, _permute_mask(down, p), budget,
                _permute_mask(cut, p))

    def _mapping(self, p: Sequence[int]) -> dict[str, str]:
        names = self.names
        return {names[i]: names[p[i]] for g in self.groups for i in g if p[i] != i}

    def _rename_local(self, i: int, lid: int, p: Sequence[int], m: tuple[int, ...]) -> int:
        target = p[i]
        key = (i, lid, target, *[p[x] for x in m])
        new = self._lrename.get(key)
        if new is not None:
            return new
        k = self.kernel
        inst, to = k.instances[i], k.instances[target]
        values = inst.table.values[lid]
        names = self._mapping(p)
        keys = inst.runner.session_keys
        if keys:
            fields = tuple(rename_value(v, names) for v in values[:-1])
            pos = {(port, names.get(peer, peer)): x for (port, peer), x in zip(keys, values[-1])}
            out = (*fields, tuple(pos[key_] for key_ in to.runner.session_keys))
        else:
            out = tuple(rename_value(v, names) for v in values)
        new = self._lrename[key] = to.table.intern(out)
        return new

    def _local_mentions(self, i: int, lid: int) -> tuple[int, ...]:
        """The members a local state names in its fields, and those whose session positions
        it keeps (unless they are all alike on each port)."""
        k = self.kernel
        inst = k.instances[i]
        values = inst.table.values[lid]
        keys = inst.runner.session_keys
        found: set[str] = set()
        for v in (values[:-1] if keys else values):
            mentions(v, self.member_names, found)
        if keys:
            per_port: dict[str, set[int]] = {}
            for (port, peer), x in zip(keys, values[-1]):
                if peer in self.member_names:
                    per_port.setdefault(port, set()).add(x)
            if any(len(xs) > 1 for xs in per_port.values()):
                found.update(peer for _, peer in keys if peer in self.member_names)
        m = self._lmention[lid << 14 | i] = tuple(sorted(k.index[n] for n in found))
        return m

    def _renamed_env(self, e: int, p: Sequence[int]) -> int:
        m = self._ementions.get(e)
        if m is None:
            m = self._env_mentions(e)
        if not m:
            return e
        key = e << 14 | p[m[0]] if len(m) == 1 else (e, *[p[x] for x in m])
        r = self._erename.get(key)
        if r is None:
            r = self._erename[key] = self._rename_env(e, p)
        return r

    def _env_mentions(self, e: int) -> tuple[int, ...]:
        k = self.kernel
        env = k.envs[e]
        found: set[str] = set()
        for n in (env.src, env.dst):
            if n in self.member_names:
                found.add(n)
        mentions(env.message, self.member_names, found)
        m = self._ementions[e] = tuple(sorted(k.index[n] for n in found))
        return m

    def _rename_env(self, e: int, p: Sequence[int]) -> int:
        k = self.kernel
        env = k.envs[e]
        names = self._mapping(p)
        if not names:
            return e
        return k._env_id(Envelope(
            names.get(env.src, env.src), env.src_port, names.get(env.dst, env.dst),
            env.dst_port, rename_value(env.message, names), env.meta))

    def _rename_timer(self, t: int, p: Sequence[int]) -> int:
        k = self.kernel
        i, delay, msg = k.timers[t]
        key = (t, *p)
        new = self._trename.get(key)
        if new is None:
            tkey = (p[i], delay, rename_value(msg, self._mapping(p)))
            new = k.timer_ids.get(tkey)
            if new is None:
                new = k.timer_ids[tkey] = len(k.timers)
                k.timers.append(tkey)
            self._trename[key] = new
        return new

    # --- representatives ----------------------------------------------------------------------

    def _code(self, v: Any) -> int:
        b = canonical(v)
        c = self._codes.get(b)
        if c is None:
            c = self._codes[b] = len(self._codes)
        return c

    def _abstract(self, member: int, group: tuple[int, ...]) -> dict[str, str]:
        """`member` SELF, the rest of its group OTHER, another group's members that group's
        placeholder: names no permutation changes."""
        key = (member, group)
        names = self._abstractions.get(key)
        if names is None:
            names = self._abstractions[key] = {
                self.names[x]: (SELF if x == member else OTHER if g == group else f"\x00g{gi}")
                for gi, g in enumerate(self.groups) for x in g}
        return names

    def _abstract_local(self, i: int, lid: int, names: dict[str, str]) -> int:
        inst = self.kernel.instances[i]
        values = inst.table.values[lid]
        keys = inst.runner.session_keys
        if not keys:
            return self._code(tuple(rename_value(v, names) for v in values))
        fields = tuple(rename_value(v, names) for v in values[:-1])
        sessions = tuple(sorted((port, names.get(peer, peer), x)
                                for (port, peer), x in zip(keys, values[-1])))
        return self._code((fields, sessions))

    def canon(self, state: State) -> State:
        """The representative of `state`'s orbit (see the module docstring)."""
        p = self.canon_permutation(state)
        return self.permute(state, p) if p is not None else state

    def representative(self, state: State) -> tuple[State, tuple[int, ...]]:
        """`canon(state)` and the permutation p with `permute(state, p)` that representative."""
        p = self.canon_permutation(state)
        return (self.permute(state, p), tuple(p)) if p is not None else (state, self.identity)

    def canon_permutation(self, state: State) -> list[int] | None:
        """The permutation p with `canon(state) == permute(state, p)` (None: the identity)."""
        p = list(self.identity)
        moved = False
        for gi, group in enumerate(self.groups):
            sigs = self._signatures(gi, group, state)
            if all(a <= b for a, b in zip(sigs, sigs[1:])):
                continue                        # in order already (a stable sort keeps it)
            order = sorted(range(len(group)), key=sigs.__getitem__)
            for r, pos in enumerate(order):
                if r != pos:
                    p[group[pos]] = group[r]
                    moved = True
        return p if moved else None

    def _signatures(self, gi: int, group: tuple[int, ...], state: State) -> list[Any]:
        """Per member of group `gi`, in `state`: a tuple that no permutation of the group
        changes (its own local state's code, how each instance outside the groups sees it,
        its bag of in-flight messages, and with timers and faults its bag of timers, whether
        it is down, whether it is cut off)."""
        locals_ = state[0]
        own = self._own
        codes: list[int] = []
        for m in group:
            lid = locals_[m]
            c = own.get(lid << 14 | m)
            if c is None:
                c = own[lid << 14 | m] = self._abstract_local(m, lid, self._abstract(m, group))
            codes.append(c)
        net = state[1]
        key = (gi, net)
        bags = self._net_sig.get(key)
        if bags is None:
            collected: list[list[int]] = [[] for _ in group]
            k = self.kernel
            env_sig = self._env_sigs[gi]
            for e in (k.network.in_flight(net) if not self.dup else net):
                es = env_sig.get(e)
                if es is None:
                    es = env_sig[e] = self._env_signature(gi, group, e)
                for pos, c in es:
                    collected[pos].append(c)
            for bag in collected:
                bag.sort()
            bags = tuple(map(tuple, collected))
            if len(self._net_sig) < 1_000_000:
                self._net_sig[key] = bags
        if not self.ungrouped and len(state) == 2:           # the usual case: no more parts
            return list(zip(codes, bags))
        sigs: list[list[Any]] = [[c] for c in codes]
        appear = self._appear
        for j in self.ungrouped:
            lid = locals_[j]
            got = appear.get((gi, j, lid))
            if got is None:
                got = appear[(gi, j, lid)] = tuple(
                    self._abstract_local(j, lid, self._abstract(m, group)) for m in group)
            for s, c in zip(sigs, got):
                s.append(c)
        for s, b in zip(sigs, bags):
            s.append(b)
        if len(state) > 2:
            _, _, timers, down, _, cut = state
            tb: list[list[int]] = [[] for _ in group]
            for t in timers:
                ts = self._timer_sig.get((gi, t))
                if ts is None:
                    ts = self._timer_sig[(gi, t)] = self._timer_signature(gi, group, t)
                for pos, c in ts:
                    tb[pos].append(c)
            for s, m, tbag in zip(sigs, group, tb):
                s.append((tuple(sorted(tbag)), (down >> m) & 1, (cut >> m) & 1))
        return [tuple(s) for s in sigs]

    def _env_signature(self, gi: int, group: tuple[int, ...], e: int
                       ) -> tuple[tuple[int, int], ...]:
        env = self.kernel.envs[e]
        found: set[str] = set()
        for n in (env.src, env.dst):
            found.add(n)
        mentions(env.message, self.member_names, found)
        out = []
        for pos, m in enumerate(group):
            if self.names[m] in found:
                names = self._abstract(m, group)
                out.append((pos, self._code((names.get(env.src, env.src), env.src_port,
                                             names.get(env.dst, env.dst), env.dst_port,
                                             rename_value(env.message, names)))))
        return tuple(out)

    def _timer_signature(self, gi: int, group: tuple[int, ...], t: int
                         ) -> tuple[tuple[int, int], ...]:
        i, delay, msg = self.kernel.timers[t]
        found: set[str] = set()
        mentions(msg, self.member_names, found)
        out = []
        for pos, m in enumerate(group):
            if m == i or self.names[m] in found:
                names = self._abstract(m, group)
                out.append((pos, self._code((m == i, delay, rename_value(msg, names)))))
        return tuple(out)

    def successors(self, state: State) -> tuple[list[tuple[int, State, tuple[Violation, ...]]],
                                                  int]:
        """`Kernel.successors` of a representative, each successor replaced by its
        representative (the events stay those of `state`); its predicates compared with
        its permutations' (`judged`), and now and then a spot check of its successors."""
        self.expanded += 1
        n = self.expanded
        if n <= SPOT_FIRST or not n % SPOT_EVERY:
            self.spot_check(state, self.perms)
        k = self.kernel
        steps, enabled = k.successors(state)
        canon = self.canon
        out = [(ev, canon(t), v) for ev, t, v in steps]
        if self.judge:
            self.judged(state, self.judge, stuck=not enabled or k.has_faults
                        and not k.can_progress(state))
            if k.system.constraints:        # a state beyond a constraint is never expanded:
                for _, t, _ in out:          # its properties are judged here
                    if not k.within(t):
                        self.judged(t, self.judge, stuck=False)
        return out, enabled

    # --- counterexamples ----------------------------------------------------------------------

    def concretise(self, start: State, path: tuple[int, ...], last_violation: Violation | None
                   ) -> tuple[State, tuple[int, ...], Violation | None]:
        """A concrete path with the representatives' path's orbits: from `start` (a
        representative, itself a reachable initial state), at each step an enabled event whose
        successor is in the orbit the search's next step reached.  The last step, if it is a
        violating transition (`last_violation`), is one that breaks the same thing; the
        violation returned is the concrete path's (its message names its instances)."""
        # The concrete state is always a known permutation of the representative:
        # concrete == permute(rep, q).  The search stepped rep --ev--> target and kept
        # want = permute(target, pi); so the concrete path must step to permute(target, q),
        # and from there concrete == permute(want, q . pi^-1).  Matching successors by their
        # representative instead (TLC's way) needs `canon` exact, and it is not where members
        # with equal signatures are not interchangeable (then one orbit has several
        # representatives, and the concrete successor may have another one than `want`).
        k = self.kernel
        rep = start
        concrete = start
        q = list(self.identity)
        out: list[int] = []
        found = last_violation
        for n, ev in enumerate(path):
            target, _, viol = k.apply(rep, ev)
            pi = self.canon_permutation(target)
            want = target if pi is None else self.permute(target, pi)
            expect = self.permute(target, q)
            is_last = n == len(path) - 1
            key = _vkey(last_violation) if is_last and last_violation is not None and any(
                _vkey(v) == _vkey(last_violation) for v in viol) else None
            for ev2 in k.enabled_events(concrete):
                t2, _, v2 = k.apply(concrete, ev2)
                if t2 != expect:
                    continue
                if key is not None:
                    same = [v for v in v2 if _vkey(v) == key]
                    if not same:
                        continue
                    found = same[0]
                out.append(ev2)
                concrete = t2
                break
            else:          # cannot happen when the group is interchangeable
                raise SpecError("symmetry reduction could not rebuild a concrete "
                                "counterexample: the instances declared symmetric are not "
                                "interchangeable", k.system.symmetries[0][1],
                                ["check with --no-symmetry"])
            if pi is not None:                     # q := q . pi^-1
                inverse = list(self.identity)
                for i, j in enumerate(pi):
                    inverse[j] = i
                q = [q[inverse[i]] for i in range(len(q))]
            rep = want
            if is_last and key is None and last_violation is not None \
                    and last_violation.kind == "property":
                found = next((v for v in k.property_violations(concrete)
                              if _vkey(v) == _vkey(last_violation)), last_violation)
        return start, tuple(out), found

    # --- soundness: a spot check of the declaration and the properties -----------------------

    def transpositions(self) -> list[tuple[int, ...]]:
        """One permutation per pair of neighbouring members of each group (they generate it)."""
        out = []
        for g in self.groups:
            for a, b in zip(g, g[1:]):
                p = list(self.identity)
                p[a], p[b] = b, a
                out.append(tuple(p))
        return out

    def compared(self) -> tuple[list[tuple[int, ...]], bool]:
        """The permutations a property is compared under (`judged`; liveness properties:
        `symmetric_liveness.asymmetry`), and whether they are all of them: every permutation
        of the groups but the identity when there are at most ALL_PERMUTATIONS, else the
        transpositions, each group's rotation and its reversal.  (The transpositions alone
        can miss a property that tells members apart by their place: on representatives the
        members come sorted, and a transposition moves only two.)"""
        size = 1
        for g in self.groups:
            size *= math.factorial(len(g))
        if size <= ALL_PERMUTATIONS:
            out = [self.identity]
            for g in self.groups:
                out = [_with(p, g, q) for p in out for q in itertools.permutations(g)]
            return [p for p in out if p != self.identity], True
        out = list(self.perms)
        for g in self.groups:
            out += [_with(self.identity, g, (*g[1:], g[0])), _with(self.identity, g, g[::-1])]
        return out, False

    def judged(self, state: State, perms: list[tuple[int, ...]], stuck: bool = True) -> None:
        """Raise NotSymmetric if a property, terminal predicate or constraint is not the same
        on `state` and on a permutation of it by `perms`.  The search keeps one state of
        each orbit, so a property is judged on the others only through this: with every
        permutation of the groups, on every state expanded, nothing is left unjudged (a
        property reading `g.instances(C)[0]` is symmetric on some states, not others).

        A predicate whose evaluations here read only the local states (not the network,
        the crashes) is judged once per tuple of local states (`_judged`): its verdicts on
        another state with those local states, and on its permutations, are the same.
        Terminal predicates are judged only where nothing but faults is enabled (`stuck`):
        the one place a search asks them."""
        known = self._judged.get(state[0], 0)
        wanted = self._all_judged if stuck else self._all_judged & ~self._terminal_bits
        if known & wanted == wanted:
            return
        others: list[State] | None = None
        for j, (what, fn, loc) in enumerate(self._predicates):
            if known >> j & 1 or not wanted >> j & 1:
                continue
            if others is None:
                others = [o for p in perms if (o := self.permute(state, p)) != state]
                if not others:
                    return
            base, beyond = self._verdict(what, fn, loc, state)
            for other in others:
                theirs, further = self._verdict(what, fn, loc, other)
                if theirs != base:
                    raise NotSymmetric(what, "it is not the same on a state and on that state "
                                             "with the symmetric instances interchanged")
                beyond = beyond or further
            if not beyond:
                known |= 1 << j
        if known:
            self._judged[state[0]] = known

    def check_initial(self) -> None:
        """The initial states are closed under the group (a member's initial value that
        names a member, `leader="n0"`, would break it): else a SpecError."""
        k = self.kernel
        starts = {s for s, _ in k.initial_states()}
        if self.judge and k.system.constraints:     # (not expanded: judged here)
            for s in starts:
                if not k.within(s):
                    self.judged(s, self.judge, stuck=False)
        if len(starts) > 10_000:
            return
        for s in starts:
            for p in self.perms:
                if self.permute(s, p) not in starts:
                    g, where = k.system.symmetries[0]
                    raise SpecError(
                        f"instances {', '.join(g)} are declared symmetric but are not "
                        "interchangeable: an initial state with two of them interchanged is "
                        "not an initial state", where,
                        ["an initial value that names a member tells them apart",
                         f"initial state: {k.render_state(s)}"])

    def spot_check(self, state: State, perms: list[tuple[int, ...]]) -> None:
        """Raise a SpecError if a permutation of `state` has other successors (the
        instances' code tells them apart).  (Its verdicts are compared on every state:
        `judged`.)"""
        k = self.kernel
        succ = None
        for p in perms:
            other = self.permute(state, p)
            if other == state:
                continue
            # compared by an orbit invariant (the members' signatures, sorted), which a
            # representative that is not the orbit's only one cannot spoil
            if succ is None:
                succ = sorted({self.invariant(t) for _, t, _ in k.successors(state)[0]})
            mine = sorted({self.invariant(t) for _, t, _ in k.successors(other)[0]})
            if mine != succ:
                g, where = k.system.symmetries[0]
                raise SpecError(
                    f"instances {', '.join(g)} are declared symmetric but are not "
                    "interchangeable: a state and that state with two of them interchanged "
                    "have different successors", where,
                    ["their code must not name particular instances (compare m.sender with "
                     "a literal, order peers, ...)", "check with --no-symmetry",
                     f"in state: {k.render_state(state)}"])

    def invariant(self, state: State) -> tuple[Any, ...]:
        """The same for every state of an orbit: each group's signatures, sorted."""
        return tuple(tuple(sorted(self._signatures(gi, g, state)))
                     for gi, g in enumerate(self.groups))

    def _verdict(self, what: str, fn: Any, loc: Any, state: State) -> tuple[bool, bool]:
        """Predicate `fn` on `state`, and whether it read beyond the local states; a
        NotSymmetric if it read a member by name."""
        g = _NamedWorld(self.kernel, state, self.member_names)
        ok = self.kernel.evaluate(lambda _g: fn(g), state, what, loc)
        if g.named:
            raise NotSymmetric(what, f"it reads {sorted(g.named)[0]!r} by name")
        return ok, g._beyond


def _make_named_world() -> type:
    from assay.kernel.kernel import World

    class NamedWorld(World):
        """A world that notes the symmetric instances a predicate reads by name."""

        __slots__ = ("named", "_members")

        def __init__(self, kernel: Kernel, state: State, members: frozenset[str]) -> None:
            super().__init__(kernel, state)
            self.named: set[str] = set()
            self._members = members

        def __getitem__(self, name: str) -> Any:
            if name in self._members:
                self.named.add(name)
            return super().__getitem__(name)

    return NamedWorld


_NamedWorld: Callable[..., Any] = _make_named_world()


def _vkey(v: Violation) -> tuple[str, str | None]:
    return (v.kind, v.name)


def _with(p: tuple[int, ...], group: tuple[int, ...], images: tuple[int, ...]
           ) -> tuple[int, ...]:
    """`p` with the members of `group` sent to `images` (in order)."""
    q = list(p)
    for a, b in zip(group, images):
        q[a] = b
    return tuple(q)


def _permute_mask(mask: int, p: Sequence[int]) -> int:
    if not mask:
        return 0
    out = 0
    for i, j in enumerate(p):
        if (mask >> i) & 1:
            out |= 1 << j
    return out


def _validate(k: Kernel, group: tuple[str, ...], where: Any) -> None:
    """The members of `group` are interchangeable as declared: one class, the same initial
    values, wired alike (the connections are invariant under every permutation of the
    group), the same fairness and externality."""
    s = k.system
    cls = s.instances[group[0]]
    first = group[0]

    def fail(why: str, notes: list[str] | None = None) -> SpecError:
        return SpecError(f"instances {', '.join(group)} are declared symmetric but are not "
                         f"interchangeable: {why}", where, notes or [])

    if s.hops:      # an interceptor's meta may name members: no renaming covers it yet
        raise fail("the system has interceptors (connect(..., via=)), which symmetry "
                   "reduction does not cover", ["leave out s.symmetric(...): check searches "
                                                "unreduced"])
    for n in group[1:]:
        if s.instances[n] is not cls:
            raise fail(f"{n!r} is a {s.instances[n].__name__}, {first!r} a {cls.__name__}")
        a, b = s.overrides.get(first), s.overrides.get(n)
        if dict(a or {}) != dict(b or {}) or getattr(a, "initially", None) != getattr(
                b, "initially", None):
            raise fail(f"{n!r} starts with other initial values than {first!r}",
                       ["give every member the same keyword values and initially="])
    if (any(n in s.externals for n in group)
            and not all(n in s.externals for n in group)):
        raise fail("some are external and some are not")
    # an instance's own fairness (the first rule naming it) must be every member's: a
    # composite's fairness comes as rules naming its instances, alike for its members
    own = {n: next((k for t, k in s.fair_rules if t == n), None) for n in group}
    for target, _ in s.fair_rules:
        if isinstance(target, str) and target in group and len(set(own.values())) > 1:
            raise fail(f"a fairness declaration names {target!r}",
                       ["declare fairness for the component class instead"])
    members = set(group)

    def shape(name: str) -> list[tuple[Any, ...]]:
        out = []
        for c in s.connections:
            for x, y in ((c.a, c.b), (c.b, c.a)):
                if x.instance == name:
                    other = y.instance
                    role = "self" if other == name else (
                        "member" if other in members else other)
                    out.append((x.port, role, y.port, c.capacity, c.full, c.lossy))
        return sorted(out, key=repr)

    base = shape(first)
    for n in group[1:]:
        if shape(n) != base:
            raise fail(f"{n!r} is connected otherwise than {first!r}",
                       ["each member must be connected alike, to the same other instances"])
    # between members: the same connections between every ordered pair (or none)
    pairs: dict[tuple[str, str], list[Any]] = {}
    for c in s.connections:
        u, v = c.a.instance, c.b.instance
        if u in members and v in members and u != v:
            pairs.setdefault((u, v), []).append((c.a.port, c.b.port, c.capacity, c.full,
                                                 c.lossy))
            pairs.setdefault((v, u), []).append((c.b.port, c.a.port, c.capacity, c.full,
                                                 c.lossy))
    kinds = {tuple(sorted(pairs.get((u, v), []), key=repr))
             for u in group for v in group if u != v}
    if len(kinds) > 1:
        raise fail("the connections between them are not alike for every pair",
                   ["a ring or a chain is not symmetric under every permutation"])
    # connections to ungrouped instances: on a port of one instance, members alike
    ends = _ends(s)
    for c in s.connections:
        for x, y in ((c.a, c.b), (c.b, c.a)):
            if x.instance in members and y.instance not in members \
                    and not all((m, x.port, y.instance, y.port) in ends for m in group):
                    raise fail(f"{x.instance}.{x.port} is connected to "
                               f"{y.instance}.{y.port} but another member is not")


def _ends(s: Any) -> set[tuple[str, str, str, str]]:
    out = set()
    for c in s.connections:
        out.add((c.a.instance, c.a.port, c.b.instance, c.b.port))
        out.add((c.b.instance, c.b.port, c.a.instance, c.a.port))
    return out


class StableSymmetry(Symmetry):
    """`Symmetry` whose representative is a function of the state alone.

    `Symmetry` numbers the abstracted values of its signatures in the order it meets them, so
    where members' signatures differ, which member sorts first depends on the states seen
    before: another process, or the same search resumed from a checkpoint, could pick another
    representative of an orbit and count it twice.  Here a value's number is a hash of its
    canonical bytes (a collision makes two signatures tie: then only the members' order in
    the state decides, still a permutation of it — sound, at worst less reduced).  Used by the
    level-by-level search of `parallel.py`, whose workers and checkpoints must agree."""

    def _code(self, v: Any) -> int:
        b = canonical(v)
        c = self._codes.get(b)
        if c is None:
            c = self._codes[b] = int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(),
                                                "big")
        return c
