"""The step log of a runtime node, and what a node restores after a crash.

A node appends one JSON line per applied step (and per crash and restart) with its Lamport
clock as the step happens, so a node killed and restarted keeps the steps of its earlier lives.
A line is written before its step is saved; with a store, the lines beyond the store's durable
clock were undone by the crash and are dropped when the log is opened again.  The logs of all
the nodes of a run merge (Lamport order) into one trace that `assay replay` checks against the
model.  Both drivers use this module: `tcp.py` (one log per node) and `local.py` (one log for
the whole system, with `--state-dir`).
"""
from __future__ import annotations

import json
import os
import time
from typing import IO, Any

from assay.kernel.events import Envelope
from assay.kernel.kernel import Kernel, LocalChoice, LocalStep
from assay.runtime.private import private_open
from assay.runtime.store import Store


def open_step_log(path: str | os.PathLike, durable: int | None) -> tuple[IO[str], int]:
    """Open the step log at `path` for appending; with `durable` (the store's clock), drop the
    lines beyond it first.  Also repairs the end of a log a kill cut short.  Returns the file
    and the clock to go on from (the last kept line's, or `durable` if higher)."""
    path = os.fspath(path)
    clock = 0
    if os.path.exists(path):
        with open(path) as f:
            lines = [ln for ln in f if ln.strip()]
        kept = []
        for ln in lines:
            try:
                c = int(json.loads(ln)["clock"])
            except (ValueError, KeyError, TypeError):
                break                           # a line cut short by a kill: the end
            if durable is not None and c > durable:
                continue
            kept.append(ln if ln.endswith("\n") else ln + "\n")
            clock = max(clock, c)
        if kept != lines:                       # a line dropped, or a newline to add
            with private_open(path, "w") as f:
                f.writelines(kept)
    if durable is not None:
        clock = max(clock, durable)
    return private_open(path, "a"), clock       # open for the node's life; created 0600


# `json.dumps`'s own format (its default encoder's), without its cycle check: an event is a
# tree of JSON values the kernel built (a line is written per step: it is on the hot path)
_encode = json.JSONEncoder(check_circular=False).encode
_LINE = '{"clock": %d, "node": %s, "time": %r, "event": %s}\n'


def log_line(clock: int, node: str, event: dict[str, Any]) -> str:
    """One line of a step log: the step's Lamport clock, its node, the wall clock, the event —
    the text of ``json.dumps({"clock": ..., "node": ..., "time": ..., "event": ...})``."""
    return _LINE % (clock, _encode(node), time.time(), _encode(event))


MAX_LOG_BYTES = 256 * 1024 * 1024


def read_step_log(path: str) -> list[dict[str, Any]]:
    """The lines of a step log a user names (`assay merge`): untrusted input, so a file that
    is missing, too large, or has a line that is not `{"clock": int, "node": str, "event":
    {...}}` is a `UsageError` naming the file and line.  A last line cut short by a kill is
    dropped, as when a node reopens its log."""
    from assay.errors import UsageError

    try:
        if os.path.getsize(path) > MAX_LOG_BYTES:
            raise UsageError(f"step log {path} is larger than {MAX_LOG_BYTES >> 20} MiB")
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UsageError(f"cannot read step log {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"step log {path} is not UTF-8 text: {e}") from None
    entries = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            if i == len(lines):
                break                              # cut short by a kill: the end
            entry = None
        if not (isinstance(entry, dict) and type(entry.get("clock")) is int
                and isinstance(entry.get("node"), str) and isinstance(entry.get("event"), dict)):
            raise UsageError(f"{path}:{i}: not a step log line (JSON with an integer clock, a "
                             "node name and an event)",
                             notes=["a step log is what `assay node --trace-out FILE` writes"])
        entries.append(entry)
    return entries


def merge_logs(paths: list[str]) -> list[dict[str, Any]]:
    """The steps of every node in one order consistent with causality (Lamport order, then
    node name): a message's send comes before its delivery."""
    entries = []
    for p in paths:
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for line in f:
                if line.strip():
                    entries.append(json.loads(line))
    entries.sort(key=lambda e: (e["clock"], e["node"]))
    return [e["event"] for e in entries]


def saved_envelope(frame: dict[str, Any], allowed: dict[tuple[str, str], dict[str, type]],
                   store: str, link: str) -> Envelope:
    """A message frame of an outbox (a row (link, epoch, seq) of the store at path `store`),
    decoded again as on the wire: only into the types its port declares; one that does not fit
    the spec is a `StateError` naming the row."""
    from assay.errors import Location, StateError
    from assay.runtime.store import FRESH_NOTE
    from assay.runtime.wire import WireError, envelope_from_wire

    body = {k: v for k, v in frame.items() if k not in ("seq", "epoch")}
    try:
        env, _ = envelope_from_wire(body, lambda d, p: allowed.get((d, p), {}))
    except WireError as e:
        raise StateError(f"table outbox, row ({link!r}, {frame.get('epoch')!r}, "
                         f"{frame.get('seq')!r}): the message does not fit the spec: {e}",
                         Location(store), ["the spec changed since it was saved, or the file "
                                           "was edited: run the spec that saved it", FRESH_NOTE]
                         ) from None
    return env


def restore(kernel: Kernel, store: Store,
            hosted: list[str]) -> dict[str, LocalStep | LocalChoice] | None:
    """If `store` shows an earlier life (a durable step or saved fields), every hosted instance
    crashed with it: each restarts — persistent fields back, the rest initial, the restart
    hook run — and this returns the restart steps; on a fresh store, None.  Saved fields of an
    instance not hosted here, or that do not fit the spec, are a `StateError`."""
    from assay.errors import Location, StateError
    from assay.runtime.store import FRESH_NOTE

    notes = ["the spec (or the deployment's placement) changed since this state was saved, or "
             "the file was edited: run the spec that saved it, or start over with --fresh (or "
             "an empty --state-dir)", FRESH_NOTE]
    for inst in store.instances():
        if inst not in hosted:
            raise StateError(f"table fields, row {inst!r}: saved fields of an instance not "
                             f"hosted here ({', '.join(hosted)})", Location(store.path), notes)
    saved = {inst: store.load(inst) for inst in hosted}
    if store.clock() == 0 and all(v is None for v in saved.values()):
        return None
    out = {}
    for inst in hosted:
        try:
            out[inst] = kernel.local_restore(inst, saved[inst] or {})
        except (ValueError, TypeError, KeyError) as e:
            raise StateError(f"table fields, row {inst!r}: the saved fields do not fit the "
                             f"spec: {e}", Location(store.path), notes) from None
    return out
