"""Ctrl-C while the `assay` command is still starting (Python importing click, the subcommands
and their modules, a few hundred milliseconds): one line, "interrupted", and exit 130 — or, if
it landed once the command ran, that command's own handling or its normal finish — never a
traceback.  A real SIGINT at several delays after the entry point starts, through the console
script pyproject declares (as pip's generated `assay` script calls it) and `python -m assay`."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.test_cli_stop import EXIT_INTERRUPTED, REPO, _default_sigint, cli_env

pytestmark = pytest.mark.e2e

SCRIPT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["assay"]
COMMAND = ("check", "specs/alternating_bit.py")       # exhausted in ~0.3 s: a normal finish


def _console_script(marker: Path) -> list[str]:
    """What pip's generated `assay` script runs, after touching MARKER: the entry point starts
    with its module's import."""
    module, _, function = SCRIPT.partition(":")
    return [sys.executable, "-c",
            f"import sys, pathlib; pathlib.Path(sys.argv.pop(1)).touch(); "
            f"from {module} import {function} as main; sys.exit(main())", str(marker)]


def _python_m_assay(marker: Path) -> list[str]:
    return [sys.executable, "-c",
            "import runpy, sys, pathlib; pathlib.Path(sys.argv.pop(1)).touch(); "
            "runpy.run_module('assay', run_name='__main__', alter_sys=True)", str(marker)]


def _interrupted_after(argv: list[str], marker: Path, delay: float) -> tuple[int, str, str]:
    """Start ARGV + COMMAND; SIGINT to its process group DELAY s after it touched MARKER."""
    proc = subprocess.Popen([*argv, *COMMAND], cwd=REPO, env=cli_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=_default_sigint)
    try:
        end = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < end, proc.returncode
            time.sleep(0.002)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, out, err


@pytest.mark.parametrize("how, delays", [
    (_console_script, (0.05, 0.1, 0.15, 0.2, 0.3, 0.45)),
    (_python_m_assay, (0.08, 0.25)),
], ids=["console_script", "python_m_assay"])
def test_ctrl_c_during_start_up_prints_one_line(how, delays, tmp_path: Path) -> None:
    in_start_up = 0
    for i, delay in enumerate(delays):
        marker = tmp_path / f"started{i}"
        code, out, err = _interrupted_after(how(marker), marker, delay)
        # before: "Traceback ... KeyboardInterrupt" from inside some import (and the process
        # ended by SIGINT), or click's "Aborted!", exit 1
        assert "Traceback" not in out + err, (delay, code, out, err)
        # (-SIGINT: it landed in the interpreter's last moments, once Python had given SIGINT
        # back to the system: the process ends by the signal, which a shell reports as 130)
        assert code in (0, EXIT_INTERRUPTED, -signal.SIGINT), (delay, code, out, err)
        if code == EXIT_INTERRUPTED:
            # the one line (at start-up, loading the spec, or printing the report), or
            # `check`'s partial report saying so
            one_line = re.fullmatch(r"interrupted( while loading \S+)?\n", err)
            assert one_line or err == "" and "? interrupted (Ctrl-C)" in out, (delay, out, err)
            in_start_up += (out, err) == ("", "interrupted\n")
        else:
            assert "stopped: exhausted" in out and err == "", (delay, code, out, err)
    assert in_start_up >= 1 or how is _python_m_assay      # the case this file is for was hit


def test_importing_assay_or_the_entry_point_imports_nothing_heavy() -> None:
    """What runs before the entry point has taken Ctrl-C over: `import assay` and the entry
    module's own import, no engine, no click, no spec language (the standard library's
    `signal` and `typing`, yes: a fresh venv's start-up has not imported them)."""
    code = ("import sys; before = set(sys.modules); import assay.entry; "
            "print(sorted(m for m in set(sys.modules) - before "
            "if not {(t := m.split('.')[0]), t.lstrip('_')} & sys.stdlib_module_names))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=cli_env(), text=True,
                         capture_output=True, check=True).stdout
    assert out.strip() == "['assay', 'assay.entry']", out


def test_a_ctrl_c_during_the_shutdown_keeps_what_the_command_printed() -> None:
    """The command has printed its report (to a pipe: buffered) and ended; a Ctrl-C during
    the interpreter's shutdown exits at once (`entry._interrupted`, `os._exit`), which drops
    buffered output: the report must be written out before that can happen.  (CI: exit 130
    with nothing on stdout.)  Here the SIGINT comes from an atexit hook, after `main`."""
    module, _, function = SCRIPT.partition(":")
    code = ("import atexit, os, signal, sys; "
            "atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT)); "
            f"from {module} import {function} as main; sys.exit(main())")
    proc = subprocess.run([sys.executable, "-c", code, *COMMAND], cwd=REPO, env=cli_env(),
                          text=True, capture_output=True, timeout=120,
                          preexec_fn=_default_sigint)
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr
    assert "exhausted" in proc.stdout, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
