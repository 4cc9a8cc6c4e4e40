"""Spec code that does not return: say so, and stop it at the time limit.

A handler, guard or property that loops forever leaves an engine in one call: the search
never comes back to where it checks `--max-time`, its progress stands still, and a CI job
waits for its own timeout with nothing printed.  `SpecWatch` is a thread beside the engine
that looks at the main thread's stack twice a second and finds the innermost frame of spec
code (`load.in_spec_code`'s modules).  The watch holds that frame, so the same frame object
seen again later is the same call still running (a frame the watch holds is not reused):

* after `ASSAY_STUCK_AFTER` seconds (10 by default) in one call, it writes once, on
  standard error, which function at which line, and how to stop it;
* with a time limit, once the limit has passed (by GRACE) inside one call, it raises
  `SpecTimeLimit` in the main thread (`PyThreadState_SetAsyncExc`: delivered between two
  bytecodes, whatever the process's SIGINT handler is).  `SpecTimeLimit` is a
  KeyboardInterrupt, so every engine's Ctrl-C path stops with what it has done; the engine
  then reports the time bound, with the call that was stopped (`SpecWatch.fired`).

Code that never returns to the interpreter (a loop inside one C call) is not interrupted:
nothing in-process can stop it.

A worker process (of `simulate --jobs`) is stopped by its parent, which cannot see its stack:
its watch keeps the call it has been in for GRACE or more in a file (`keep_in`), for the
parent to name when it stops the workers at the time limit (`long_calls`).
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from types import FrameType, TracebackType

from assay.errors import UsageError
from assay.model.load import spec_frame

INTERVAL = 0.5          # seconds between two looks at the main thread's stack
GRACE = 1.0             # seconds past the time limit, in one call, before it is stopped


class SpecTimeLimit(KeyboardInterrupt):
    """Raised in the main thread when the time limit passed inside one call of spec code."""


def stuck_after() -> float:
    """Seconds in one call of spec code before the watch says so: ASSAY_STUCK_AFTER, or 10."""
    raw = os.environ.get("ASSAY_STUCK_AFTER")
    if not raw:
        return 10.0
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"ASSAY_STUCK_AFTER={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise UsageError(f"ASSAY_STUCK_AFTER={raw!r} must be a positive number of seconds")
    return value


def describe(frame: FrameType) -> str:
    """`Class.function (file.py:line)` of a frame of spec code, where it is now."""
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    return f"{name} ({os.path.basename(code.co_filename)}:{frame.f_lineno})"


class SpecWatch:
    """`with SpecWatch(max_time, what, hint):` around an engine's work on the main thread.

    `what` names the work for the message ("the check"), `hint` says how to bound it.
    `fired`, after the block, is the message when the watch stopped a call at the time
    limit, else None.  Not on the main thread (a caller's own thread) the watch does
    nothing: it could not stop that thread."""

    def __init__(self, max_time: float | None, what: str, hint: str = "",
                 keep_in: str | None = None) -> None:
        self.max_time = max_time
        self.what = what
        self.hint = hint            # how to bound the work, when `max_time` is None
        # a directory where the call it has been in for GRACE or more is kept, in a file
        # named for this process (`long_calls` reads them): a worker's, for its parent
        self.keep_in = keep_in
        self.fired: str | None = None
        self._done = threading.Event()
        self._started = 0.0
        self._thread: threading.Thread | None = None
        self._main = threading.main_thread().ident or 0
        self._after = stuck_after()

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._started = time.monotonic()
            self._run()
            _ACTIVE.append(self)

    def stop(self) -> None:
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        self._halt()

    def _run(self) -> None:
        if self.fired is not None:          # stopped once: the engine is stopping
            return
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(self._done,),
                                        name="assay-spec-watch", daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        if self._thread is not None:
            self._done.set()
            self._thread.join()
            self._thread = None

    def __enter__(self) -> SpecWatch:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _watch(self, done: threading.Event) -> None:
        held: FrameType | None = None       # the call being timed (held: not reused)
        since = 0.0
        told = False
        kept = False                        # ... written to `keep_in`
        while not done.wait(INTERVAL):
            now = time.monotonic()
            top = sys._current_frames().get(self._main)   # type: ignore[arg-type]
            frame = spec_frame(top)
            del top
            if frame is not held:
                if kept:
                    self._keep(None, 0.0)
                    kept = False
                held, since, told = frame, now, False
            if held is None:
                continue
            took = now - since
            if self.keep_in is not None and not kept and took >= GRACE:
                kept = True
                self._keep(describe(held), time.time() - took)
            if not told and took >= self._after:
                told = True
                limit = ((f" {self.hint}." if self.hint else "") if self.max_time is None
                         else f" It is stopped when the time limit ({self.max_time:g} s) "
                              "passes.")
                sys.stderr.write(
                    f"warning: {describe(held)} has been running for {took:.0f} s in one "
                    f"call: spec code that never returns?{limit} Ctrl-C stops {self.what} "
                    "with what it has done so far\n")
                sys.stderr.flush()
            # past the limit (and a moment more: the engine checks it itself between
            # states) and in one call for a while: that call is what keeps it from stopping
            if self.max_time is not None and now - self._started >= self.max_time + GRACE \
                    and took >= GRACE:
                self.fired = (f"the time limit ({self.max_time:g} s) passed while "
                              f"{describe(held)} was running ({took:.0f} s in one call): "
                              "it was stopped there")
                self._raise_in_main()
                return

    def _keep(self, call: str | None, since: float) -> None:
        """Keep `call` (running since `since`, a `time.time()`) in this process's file of
        `keep_in`; None: it returned."""
        assert self.keep_in is not None
        path = os.path.join(self.keep_in, str(os.getpid()))
        try:
            if call is None:
                os.remove(path)
            else:
                with open(path + ".new", "w", encoding="utf-8") as f:
                    f.write(f"{since!r}\t{call}")
                os.replace(path + ".new", path)
        except OSError:                     # (the parent removed the directory: it is done)
            pass

    def _raise_in_main(self) -> None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._main),
                                                   ctypes.py_object(SpecTimeLimit))


def long_calls(directory: str) -> list[tuple[str, float]]:
    """The calls of spec code the watches that keep them in `directory` (`keep_in`) have
    been in for GRACE or more: each call, and for how many seconds, longest first."""
    out = []
    now = time.time()
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        if name.endswith(".new"):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                since, _, call = f.read().partition("\t")
            out.append((call, max(0.0, now - float(since))))
        except (OSError, ValueError):       # (written or removed just then)
            continue
    return sorted(out, key=lambda c: -c[1])


# A fork while the watch's thread runs could leave the child a lock that thread held (and
# Python 3.12 warns of it): the workers of `check --workers` and of `simulate --jobs` are
# forked while a watch is on.  Each watch's thread ends before a fork and starts again after
# it in the parent; the child has none (its own engine starts one if it runs spec code).
_ACTIVE: list[SpecWatch] = []


def _before_fork() -> None:
    for w in _ACTIVE:
        w._halt()


def _after_fork_in_parent() -> None:
    for w in _ACTIVE:
        w._run()


def _after_fork_in_child() -> None:
    for w in _ACTIVE:
        w._thread = None
    _ACTIVE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
