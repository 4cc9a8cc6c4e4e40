"""The files of a state directory besides what is inside a store: which are whose, what shows
an earlier run, and `--fresh`, which moves a node's earlier state aside (never deletes it).

Nodes of one deployment may share a directory (`<node>.sqlite` each), so a node whose store is
missing looks only at what is not another node's: anything there means its state is gone, and
starting over must be asked for (`open_store` refuses; `--fresh` moves the rest aside).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection

log = logging.getLogger("assay.runtime")

ASIDE = ".old-"                     # local.sqlite -> local.sqlite.old-20250101-120000
_SQLITE = ("", "-wal", "-shm", "-journal", "-log")     # (-log: storelog.py)


def earlier_life(state_dir: str | os.PathLike, node: str, others: Collection[str] = ()
                 ) -> list[str]:
    """The entries of `state_dir` that show an earlier run when `node`'s store is missing:
    all of them but the files of the `others` (the other nodes sharing the directory, named
    `<node>.…`) and a store this node left half made.  States moved aside by `--fresh` count:
    the store made after them is gone too."""
    try:
        entries = sorted(os.listdir(state_dir))
    except FileNotFoundError:
        return []
    return [e for e in entries
            if e not in (f"{node}.sqlite.new", f"{node}.sqlite.new-journal")
            and not any(e.startswith(f"{o}.") for o in others)]


def move_aside(state_dir: str | os.PathLike, node: str, extra: Collection[str] = ()
               ) -> list[tuple[str, str]]:
    """Start `node` over: rename its store (with its write-ahead log) and the files named in
    `extra` (its step log, say) to `<name>.old-<time>`, saying so (a warning: shown even where
    logging is not set up); returns (old, new) paths.  The store keeps SQLite's naming
    (`x.sqlite.old-T` beside `x.sqlite.old-T-wal`), so it still opens."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join(state_dir, f"{node}.sqlite")
    tag, n = "", 0
    while any(os.path.lexists(f"{p}{ASIDE}{stamp}{tag}")
              for p in [base, *(os.path.join(state_dir, e) for e in extra)]):
        n += 1
        tag = f"-{n}"                                    # twice in one second: -1, -2, ...
    moved = []
    for suffix in _SQLITE:
        old = base + suffix
        if os.path.lexists(old):
            new = f"{base}{ASIDE}{stamp}{tag}{suffix}"
            os.replace(old, new)
            moved.append((old, new))
    for name in extra:
        old = os.path.join(state_dir, name)
        if os.path.lexists(old):
            new = f"{old}{ASIDE}{stamp}{tag}"
            os.replace(old, new)
            moved.append((old, new))
    for old, new in moved:
        log.warning("--fresh: moved %s aside, to %s", old, new)
    if not moved:
        log.warning("--fresh: no earlier state of %s in %s", node, os.fspath(state_dir))
    return moved
