"""Ctrl-C while the spec file is still being imported (code at its top level that sleeps or
loops, a slow import): every command prints one line, "interrupted while loading FILE", and
exits 130 — no traceback.  A real SIGINT to the process group, as a terminal sends it, once the
spec's import is under way (it writes a marker file)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_stop import EXIT_INTERRUPTED, STOP, Cli

pytestmark = pytest.mark.e2e

SLOW = f"{STOP}/slow_import.py"
SLOW_EXEC = f"{STOP}/slow_import_exec.py"     # sleeps in code run by `exec` of a string


@pytest.mark.parametrize("spec", [SLOW, SLOW_EXEC], ids=["sleep", "exec"])
@pytest.mark.parametrize("command", ["check", "simulate", "verify", "replay", "run"])
def test_ctrl_c_while_the_spec_is_imported_prints_one_line(command: str, spec: str,
                                                           tmp_path: Path) -> None:
    marker = tmp_path / "importing"
    target = spec
    extra: tuple[str, ...] = ()
    if command == "replay":
        target = str(tmp_path / "slow.json")
        Path(target).write_text(json.dumps({
            "format": "assay-trace", "version": 1, "spec": spec, "system": "system",
            "params": {}, "engine": "check", "seed": None, "faults": None,
            "events": [{"kind": "action", "instance": "i", "action": "step", "arg": None}],
            "verdict": None}))
    elif command == "simulate":
        extra = ("--jobs", "2", "--out", str(tmp_path))
    elif command == "run":
        extra = ("--for", "1")
    c = Cli(command, target, *extra, ASSAY_TEST_MARKER=str(marker))
    try:
        c.wait_for("the spec's import", marker.exists)
        c.interrupt()
        code = c.finish()
    finally:
        c.kill()
    # before: check, simulate, verify and replay printed "interrupted", run "interrupted
    # (Ctrl-C) before the run could stop cleanly (a handler that does not return?)"; and
    # in `exec`'s code every command ended by SIGINT (-2), not exit 130, after its line
    assert code == EXIT_INTERRUPTED, (code, c.stdout, c.stderr)
    assert c.stderr == f"interrupted while loading {spec}\n", c.stderr
    assert c.stdout == ""


def test_a_spec_interrupted_while_imported_is_imported_afresh_next_time(tmp_path: Path) -> None:
    """Not left half-imported in `sys.modules` for the next load of the same file."""
    import os
    import signal
    import threading

    from assay.errors import LoadInterrupted
    from assay.model.load import load_module

    spec = tmp_path / "half.py"
    spec.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGINT)\nDONE = True\n")
    assert threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(LoadInterrupted, match="interrupted while loading"):
            load_module(spec)
        spec.write_text("DONE = True\n")
        os.utime(spec)
        assert load_module(spec).DONE is True
    finally:
        signal.signal(signal.SIGINT, before)
