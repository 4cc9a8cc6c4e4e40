"""Successors of the long state form (faults or timers) in one pass: `enabled_events` then
`apply` of each event, as `Kernel._successors_extended` defines them, without looking each
event's outcome up twice, and with whether some enabled event is progress (`can_progress`:
not an optional fault) found on the way — the compact search otherwise lists the enabled
events of every state a second time to know it.

Same events, same order, same next states, and the same interning order as the two calls
(every outcome `enabled_events` computes first, then the timers' and restarts' outcomes in
event order, as `apply` computes them), so ids, searches and counterexamples do not change.
Not for steps that choose or for bounded or lossy links: those keep the general path.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.kernel.kernel import Kernel, State
    from assay.kernel.violation import Violation

Steps = list[tuple[int, "State", tuple["Violation", ...]]]

# kinds of the events of phase 1 whose next state phase 2 computes
_TIMER, _DROP, _DUP, _RESTART, _CRASH, _PART, _HEAL = range(7)


def _spent(budget: tuple[int, int, int, int], k: int) -> tuple[int, int, int, int]:
    """The budget after one fault of kind `k` (-1, unlimited, stays so): `kernel._spend`."""
    if budget[k] < 0:
        return budget
    b = list(budget)
    b[k] -= 1
    return (b[0], b[1], b[2], b[3])


def successors_extended(k: Kernel, state: State) -> tuple[Steps, int, bool]:
    """(steps, enabled, progress) of an extended `state`: `Kernel._successors_extended`'s
    steps and count, and `Kernel.can_progress(state)`."""
    from assay.kernel.kernel import DEFERRED

    locals_, net, timers, down, budget, cut = state
    network = k.network
    env_dst, env_src = k.env_dst, k.env_src
    delivery, actions, slot_id = k._delivery, k._actions, k._slot_id
    memo: dict[Any, int] = k._fault_slots
    # deliveries and actions: their outcomes as `enabled_events` computes them, and their
    # next states (which intern nothing) at once, in event order
    out: Steps = []
    step = out.append
    deliver, net_add = network.deliver, network.add
    enabled = 0
    deliverable = list(network.deliverable(net))
    for e in deliverable:
        dst = env_dst[e]
        if down >> dst & 1 or cut and ((cut >> env_src[e]) ^ (cut >> dst)) & 1:
            continue
        lid = locals_[dst]
        o = delivery(lid, e)
        if o is DEFERRED:
            continue
        enabled += 1
        new_lid, sends, viol, tops = o
        nxt = (locals_ if new_lid == lid else locals_[:dst] + (new_lid,) + locals_[dst + 1:],
               deliver(net, e, sends), k._apply_timer_ops(timers, tops) if tops else timers,
               down, budget, cut)
        if viol or nxt != state:
            step((e, nxt, viol))
    for i, lid in enumerate(locals_):
        if not down >> i & 1:
            for slot, o in actions(i, lid):
                enabled += 1
                new_lid, sends, viol, tops = o
                nxt = (locals_ if new_lid == lid else locals_[:i] + (new_lid,) + locals_[i + 1:],
                       net_add(net, sends), k._apply_timer_ops(timers, tops) if tops else timers,
                       down, budget, cut)
                if viol or nxt != state:
                    step((~slot, nxt, viol))
    progress = enabled > 0
    # the other events: enabled (`enabled_events`), then each one's next state (`apply`,
    # which runs the timers' and restarts' handlers: after every outcome above)
    evs: list[tuple[int, int, Any, Any]] = []       # (event, kind, instance or env, outcome)
    add = evs.append
    prev = -1
    ktimers = k.timers
    key: tuple[Any, ...]
    for t in timers:
        if t != prev and not down >> ktimers[t][0] & 1:
            key = ("timer", t)
            s = memo.get(key)
            if s is None:
                s = memo[key] = slot_id(key)
            add((~s, _TIMER, t, None))
        prev = t
    drop, dup, crash, part = budget
    if (drop or dup) and network.consumes:          # a duplicating network loses nothing
        if k._local_link is not None:               # in-process hops: no faults
            local, link = k._local_link, k.env_link
            deliverable = [e for e in deliverable if not local[link[e]]]
        for kind, on in ((_DROP, drop), (_DUP, dup)):
            if on:
                name = "drop" if kind == _DROP else "dup"
                for e in deliverable:
                    key = (name, e)
                    s = memo.get(key)
                    if s is None:
                        s = memo[key] = slot_id(key)
                    add((~s, kind, e, None))
    if down or crash:
        for i in range(len(locals_)):
            if down >> i & 1:
                for c in range(k._restart_choices(i)):
                    key = ("restart", i, c)
                    s = memo.get(key)
                    if s is None:
                        s = memo[key] = slot_id(key)
                    add((~s, _RESTART, i, c))
            elif crash:
                key = ("crash", i)
                s = memo.get(key)
                if s is None:
                    s = memo[key] = slot_id(key)
                add((~s, _CRASH, i, None))
    if cut:
        add((~slot_id(("heal",)), _HEAL, 0, None))
    elif part:
        for m in k.partitions:
            add((~slot_id(("partition", m)), _PART, m, None))

    for ev, kind, i, o in evs:
        n2, t2, d2, b2, c2 = net, timers, down, budget, cut
        if kind == _TIMER:
            progress = True
            t = i
            i = ktimers[t][0]
            j = timers.index(t)
            t2 = timers[:j] + timers[j + 1:]
            o = k._timer_outcome(locals_[i], t)
            n2 = net_add(net, o[1])
        elif kind == _RESTART:
            progress = True
            d2 = down & ~(1 << i)
            o = k._restart_outcome(i, locals_[i], o)
            n2 = net_add(net, o[1])
        elif kind == _CRASH:
            d2 = down | 1 << i
            t2 = tuple(t for t in timers if ktimers[t][0] != i)
            b2 = _spent(budget, 2)
        elif kind == _DROP:
            n2 = deliver(net, i, ())
            b2 = _spent(budget, 0)
        elif kind == _DUP:
            n2 = network.duplicate(net, i)
            b2 = _spent(budget, 1)
        elif kind == _PART:
            c2 = i
            b2 = _spent(budget, 3)
        else:                                           # heal
            progress = True
            c2 = 0
        l2 = locals_
        viol = ()
        if o is not None:
            new_lid, _, viol, tops = o
            if new_lid != locals_[i]:
                l2 = locals_[:i] + (new_lid,) + locals_[i + 1:]
            if tops:
                t2 = k._apply_timer_ops(t2, tops)
        nxt = (l2, n2, t2, d2, b2, c2)
        if viol or nxt != state:
            step((ev, nxt, viol))
    return out, enabled + len(evs), progress
