"""The `assay` command's entry point (`[project.scripts]`, `python -m assay`, `python -m
assay.cli`): a Ctrl-C at any moment after it starts ends with one line, "interrupted", and
exit code 130, never a traceback.

Starting the command imports click and the subcommands' modules (a few hundred milliseconds;
more on a cold cache), and a Ctrl-C in that time used to raise KeyboardInterrupt inside some
import and print its traceback.  So this module imports nothing of assay's (and `assay`'s own
`__init__` nothing heavy) before it has taken SIGINT over: until a command starts, Ctrl-C
exits at once; from then on the command's own handling (`assay.cli._Group.invoke`: partial
reports, "interrupted while loading FILE") has it (`command_started`); once the command has
finished, Ctrl-C during the interpreter's shutdown exits at once again.
"""
from __future__ import annotations

import os
import signal
from types import FrameType

EXIT_INTERRUPTED = 130              # Ctrl-C: 128 + SIGINT, as a shell reports it


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """SIGINT while no command runs: nothing is under way that could report or clean up, and
    raising would unwind through whatever import was running (its traceback) — so exit."""
    os.write(2, b"interrupted\n")
    os._exit(EXIT_INTERRUPTED)


def _take_sigint() -> None:
    # Only over Python's default: a SIGINT ignored from the start (a process started in the
    # background, a supervised node) stays ignored, a handler set by a command stays its own.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted)


def command_started() -> None:
    """Give Ctrl-C back to Python (KeyboardInterrupt) for the command's own handling; a
    no-op unless the entry point took it (the CLI run in-process, by a test or a user)."""
    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main() -> None:
    """Run the `assay` command with `sys.argv` (exits: click's standalone mode)."""
    _take_sigint()
    try:
        from assay.cli import main as command

        command()
    finally:
        command_started()       # if it never started: SIGINT back to the default first ...
        _flush()                # (the report: a Ctrl-C from here on exits without flushing)
        _forget_caught_interrupt()
        _take_sigint()          # ... so that this takes it for the shutdown


def _forget_caught_interrupt() -> None:
    """Clear CPython's "a KeyboardInterrupt went unhandled" mark, which the command's own
    handling made untrue.  `exec` of a string (what `dataclasses` and `namedtuple` do to build
    their methods, so any slow import that defines them) sets it when a Ctrl-C ends that code,
    even if the KeyboardInterrupt is caught further up, and Python then ends the process by
    SIGINT instead of with the command's exit code (130, "interrupted while loading SPEC").
    The next `exec` of a string that finishes clears it; a KeyboardInterrupt that does escape
    the command still sets it again (runpy's, the console script's) after this."""
    exec("pass", {})


def _flush() -> None:
    """Write out what the command printed: the shutdown's Ctrl-C exits with `os._exit`,
    which drops buffered output (a report printed to a pipe lost in full: CI saw exit 130
    with nothing on stdout).  A Ctrl-C while flushing ends it, without a traceback."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (KeyboardInterrupt, OSError, ValueError):
            pass
