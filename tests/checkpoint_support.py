"""What the checkpoint tests share (tests/test_checkpoint_modes.py, test_checkpoint_dfs.py):
a check of a spec file with a checkpoint directory, and a check stopped then resumed,
compared with the same check never stopped; `assay check` stopped by a signal once a
checkpoint is saved."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.checker import CheckResult, check
from assay.kernel import Kernel
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]
SYM_LOCK = "tests/fixtures/checkpoint/sym_lock.py"
TWO_BUGS = "tests/fixtures/keep_going/two_bugs.py"


def run(spec: str, ck: Path | None, *, params: dict[str, str] | None = None,
        **kwargs: Any) -> CheckResult:
    path = str(REPO / spec)
    system, name, typed = build(path, None, params or {})
    return check(Kernel(system), spec=path, system_name=name, params=typed,
                 checkpoint=None if ck is None else str(ck), checkpoint_every=0, **kwargs)


def counts(r: CheckResult) -> tuple[Any, ...]:
    return (r.verdict, r.reason, r.states, r.transitions, r.depth, r.terminal, r.deadlocked)


def example(r: CheckResult) -> Any:
    """The counterexample(s), as the trace files write them."""
    if r.findings:
        return [(f.violation.to_json(), f.count, f.unit, f.cycle_start, f.trace.to_json())
                for f in r.findings]
    return (r.violation and r.violation.to_json(), r.cycle_start, r.initial,
            r.trace and r.trace.to_json())


def saved_depth(ck: Path) -> int:
    return int(json.loads((ck / "current" / "meta.json").read_text())["depth"])


def stopped_then_resumed(tmp_path: Path, spec: str, params: dict[str, str],
                         stop: dict[str, int] | None = None,
                         **kwargs: Any) -> tuple[CheckResult, CheckResult]:
    """The check never stopped (its own checkpoint directory), and the same check stopped
    (at depth 3, or at the bound `stop`) and resumed."""
    whole = run(spec, tmp_path / "whole", params=params, **kwargs)
    first = run(spec, tmp_path / "ck", params=params, **(stop or {"max_depth": 3}), **kwargs)
    if stop is None:
        assert (first.reason, saved_depth(tmp_path / "ck")) == ("max-depth", 3)
    else:
        assert first.reason == next(iter(stop)).replace("_", "-")
        saved = json.loads((tmp_path / "ck" / "current" / "meta.json").read_text())
        assert 0 < saved["states"] <= first.states
    resumed = run(spec, tmp_path / "ck", params=params, **kwargs)
    assert counts(resumed) == counts(whole)
    assert example(resumed) == example(whole)
    return whole, resumed




def signalled_at_a_checkpoint(args: list[str], ready: Callable[[], bool], sig: int
                              ) -> tuple[int, str]:
    """Run `assay check *args`, send it `sig` once `ready()` (a checkpoint it saved is far
    enough), and return its exit code and stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # SIGINT as at a terminal, even where this test runs with it ignored (an xdist worker:
    # a child inherits SIG_IGN, and Python then installs no KeyboardInterrupt for it)
    p = subprocess.Popen([sys.executable, "-m", "assay", "check", *args], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            try:
                if ready():
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)
        assert p.poll() is None, "the check ended before it could be stopped"
        p.send_signal(sig)
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return p.returncode, out


def assay_check(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "assay", "check", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
