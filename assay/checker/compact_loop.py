"""The compact BFS's loop over a level, generated per layout (`CompactBFS._compile`).

Most of a TwoPhase-like search's time is the loop over each state's steps: per step an
addition and a set lookup, but around them the unpacking of (event, delta, violations), the
test of the violations, the choice of a shard: a dozen bytecodes more than the lookup.  This
loop reads, per group of instances, the cached entry of `CompactBFS._group_entry` (keyed by
the state's bits of the group and the network: one `&`, no unpacking of fields) and runs over
its deltas alone.  It handles only the plain case, a state with no violating step and some
step enabled: it finds the new successors without changing anything, checks their property
verdicts (the memo first), and only then adds them, in `successors`' order.  Anything else —
a step that violates, a deadlock, a property violated, the `--max-states` bound, a field
that outgrows its bits (`Relayout`) — stops the loop at that state, untouched, and the search
expands it the general way (`CompactBFS._run`): so the counts, the order of the next level and
the counterexamples are the general loop's, only sooner.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assay.kernel.violation import Violation

# (event, packed successor minus packed state, violations)
Step = tuple[int, int, tuple[Violation, ...]]
# a group's steps in one (local ids, network): (deliveries, actions, events enabled, the
# deltas of the deliveries then the actions, the events enabled or, if a step violates,
# VIOLATES)
Entry = tuple[tuple[Step, ...], tuple[Step, ...], int, tuple[int, ...], int]
VIOLATES = -(1 << 29)      # below any sum of counts: the loop leaves such a state alone

# Sized copies: a sum x + d of two ints above 2^30 is allocated one digit longer than it
# needs (for a carry it may not have): 36 bytes for a state of 31 to 60 bits, which the
# allocator rounds to 48.  `t | 0` is a copy of the size it needs, 32 bytes: a state kept in
# the visited set is such a copy (16 bytes a state less: 158 MiB of TwoPhase's 10 M states at
# 9 RMs).

# level(level, pos, end, count, room, transitions, append, shards, pmemos, props, on_disk)
#   -> (pos, count, transitions)
LevelLoop = Callable[..., tuple[int, int, int]]


# Generated code, shared with `parallel_compact.py`: with properties, stop the level at the
# first of a state's new successors that breaks one (memoised by what the properties read;
# `news`, `props`, `pmemos` are the loop's names).
NEWS_PROPERTY_CHECK = (
    "                if props is not None:",
    "                    bad = False",
    "                    for t in news:",
    "                        for mask, memo, _ in pmemos:",
    "                            v = memo.get(t & mask)",
    "                            if v is not None:",
    "                                break",
    "                        else:",
    "                            v = props(t)",
    "                        if v:",
    "                            bad = True",
    "                            break",
    "                    if bad:",
    "                        break",
)


def level_loop(masks: list[int], caches: list[dict[int, Entry]],
               entry: Callable[[int, int], Entry], relayout: type[Exception],
               shard_mask: int) -> tuple[LevelLoop, LevelLoop]:
    """The loop over level[pos:end] for groups keyed by `masks` (their bits and the
    network's), as straight-line code: (without states on disk, with them).  It returns
    where it stopped (`end`, or a state for the general loop), the visited states in memory
    and the transitions so far."""
    r = range(len(masks))

    def source(disk: bool) -> str:
        seen = f"t in shards[t & {shard_mask}]" + (" or on_disk(t)" if disk else "")
        lines = [
            "def level(level, pos, end, count, room, transitions, append, shards, pmemos,",
            "          props, on_disk):",
            "    try:",
            "        for pos in range(pos, end):",
            "            x = level[pos]"]
        lines += [f"            e{g} = c{g}.get(x & {m:#x}) or entry({g}, x)"
                  for g, m in enumerate(masks)]
        lines += [
            "            en = " + " + ".join(f"e{g}[4]" for g in r),
            "            if en <= 0:                     # a deadlock, or a step violates",
            "                break",
            "            k = 0",
            "            for d in " + " + ".join(f"e{g}[3]" for g in r) + ":",
            "                t = x + d",
            f"                if {seen}:",
            "                    continue",
            "                if k == 1:",
            "                    k = 2",
            "                    more = [t1, t]",
            "                elif k:",
            "                    more.append(t)",
            "                else:",
            "                    k = 1",
            "                    t1 = t",
            "            if k:",
            "                if k == 1:",
            "                    news = [t1]",
            "                else:                       # in successors' order, once each",
            "                    news = []",
            "                    steps = " + " + ".join(f"e{g}[0]" for g in r),
            "                    if len(steps) > 1:",
            "                        steps = sorted(steps)",
            "                        steps += " + " + ".join(f"e{g}[1]" for g in r),
            "                    else:",
            "                        steps = steps + " + " + ".join(f"e{g}[1]" for g in r),
            "                    for s in steps:",
            "                        t = x + s[1]",
            "                        if t in more and t not in news:",
            "                            news.append(t)",
            *NEWS_PROPERTY_CHECK,
            "                if count + len(news) > room:",
            "                    break",
            "                for t in news:",
            "                    t = t | 0               # a sized copy (see above)",
            f"                    shards[t & {shard_mask}].add(t)",
            "                    append(t)",
            "                count += len(news)",
            "            transitions += en",
            "        else:",
            "            return end, count, transitions",
            "    except Relayout:",
            "        pass",
            "    return pos, count, transitions"]
        return "\n".join(lines)

    loops = []
    for disk in (False, True):
        env: dict[str, Any] = {f"c{g}": c for g, c in enumerate(caches)}
        env["entry"] = entry
        env["Relayout"] = relayout
        exec(source(disk), env)                 # noqa: S102  (generated from ints only)
        loops.append(env["level"])
    return loops[0], loops[1]
