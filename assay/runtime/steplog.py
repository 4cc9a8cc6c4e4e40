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

from assay.errors import AssayError
from assay.kernel.events import Envelope
from assay.kernel.kernel import Kernel, LocalChoice, LocalStep
from assay.runtime.private import private_open
from assay.runtime.store import Store
from assay.runtime.wire import c_encoder


def open_step_log(path: str | os.PathLike, durable: int | None) -> tuple[IO[str], int]:
    """Open the step log at `path` for appending; with `durable` (the store's clock), drop the
    lines beyond it first.  Also repairs the end of a log a kill cut short.  Returns the file
    and the clock to go on from (the last kept line's, or `durable` if higher).  Any other
    damage (a line in the middle that is not a step's, a file that is not UTF-8) is a
    `StateError` at the file and line: the log is never cut there, which would drop the
    steps after it."""
    from assay.errors import StateError

    path = os.fspath(path)
    clock = 0
    existed = os.path.exists(path)
    if existed:
        lines, entries, cut = _step_lines(
            path, StateError, "move it aside (the node then starts a new one), or restore it "
                              "from a backup", None)
        kept = []
        for ln, entry in zip(lines, entries):
            c = entry["clock"]
            if durable is not None and c > durable:
                continue
            kept.append(ln if ln.endswith("\n") else ln + "\n")
            clock = max(clock, c)
        if cut or len(kept) != len(lines) or (lines and not lines[-1].endswith("\n")):
            # a line dropped, or a newline to add
            with private_open(path, "w") as f:
                f.writelines(kept)
    if durable is not None:
        if existed and clock < durable:
            # steps the store holds whose lines are gone: the log was cut (or a power cut
            # took lines that had not reached the disk: they are not synced, the store is)
            import logging

            logging.getLogger("assay.runtime").warning(
                "%s: the step log ends at clock %d, but the store holds steps up to clock %d: "
                "the lines of the steps between are lost (the file was cut short), so the "
                "run's trace will not replay across them; the node goes on", path, clock,
                durable)
        clock = max(clock, durable)
    return private_open(path, "a"), clock       # open for the node's life; created 0600


def _step_lines(path: str, error: type[AssayError], fix: str, limit: int | None
                 ) -> tuple[list[str], list[dict[str, Any]], bool]:
    """The lines of the step log at `path` (with their newlines) and their entries, blank
    lines left out, and whether a last line cut short by a kill (no newline at its end, and
    not JSON) was dropped.  A file larger than `limit`, not UTF-8, or with any other line
    that is not `{"clock": int, "node": str, "event": {...}}`, is `error` naming the file
    (and line), with `fix` as its note."""
    try:
        if limit is not None and os.path.getsize(path) > limit:
            raise error(f"step log {path} is larger than {limit >> 20} MiB", notes=[fix])
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except OSError as e:
        raise error(f"cannot read step log {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        line = text_line(path, e.start)
        raise error(f"step log {path} is not UTF-8 text (damaged?) at line {line}",
                    notes=[fix]) from None
    parts = text.split("\n")
    lines: list[str] = []
    entries: list[dict[str, Any]] = []
    for i, part in enumerate(parts, 1):
        last = i == len(parts)                  # (after the last newline: "" if whole)
        if not part.strip():
            continue
        try:
            entry = json.loads(part)
        except (ValueError, RecursionError):
            if last:
                return lines, entries, True     # cut short by a kill: the end
            entry = None
        if not (isinstance(entry, dict) and type(entry.get("clock")) is int
                and isinstance(entry.get("node"), str) and isinstance(entry.get("event"), dict)):
            raise error(f"{path}:{i}: not a step log line (JSON with an integer clock, a node "
                        "name and an event)",
                        notes=["a step log is what `assay node --trace-out FILE` writes", fix])
        lines.append(part if last else part + "\n")
        entries.append(entry)
    return lines, entries, False


def text_line(path: str, offset: int) -> int:
    """The line number of byte `offset` of the file at `path`."""
    with open(path, "rb") as f:
        return f.read(offset).count(b"\n") + 1


# `json.dumps`'s own format (its default encoder's), without its cycle check: an event is a
# tree of JSON values the kernel built; a line is written per step (the hot path)
_encode = c_encoder(json.JSONEncoder(check_circular=False))
_LINE = '{"clock": %d, "node": %s, "time": %r, "event": %s}\n'


_NAMES: dict[str, str] = {}     # node name -> its JSON text (a node writes its own name)


def log_line(clock: int, node: str, event: dict[str, Any]) -> str:
    """One line of a step log: the step's Lamport clock, its node, the wall clock, the event —
    the text of ``json.dumps({"clock": ..., "node": ..., "time": ..., "event": ...})``."""
    name = _NAMES.get(node)
    if name is None:
        name = _encode(node)
        if len(_NAMES) < 64:
            _NAMES[node] = name
    return _LINE % (clock, name, time.time(), _encode(event))


MAX_LOG_BYTES = 256 * 1024 * 1024


def read_step_log(path: str) -> list[dict[str, Any]]:
    """The lines of a step log a user names (`assay merge`): untrusted input, so a file that
    is missing, too large, or has a line that is not `{"clock": int, "node": str, "event":
    {...}}` is a `UsageError` naming the file and line.  A last line cut short by a kill is
    dropped, as when a node reopens its log."""
    from assay.errors import UsageError

    return _step_lines(path, UsageError, "give the step log a node wrote, whole",
                       MAX_LOG_BYTES)[1]


def merge_logs(paths: list[str]) -> list[dict[str, Any]]:
    """The steps of every node in one order consistent with causality (Lamport order, then
    node name): a message's send comes before its delivery.  A log's last line cut short (a
    node killed) is dropped; other damage is a `UsageError` at its file and line."""
    entries = []
    for p in paths:
        if os.path.exists(p):
            entries += read_step_log(p)
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
