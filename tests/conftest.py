"""Shared test setup."""
import atexit
import contextlib
import os
import shutil
import tempfile
import warnings
from typing import Any

import pytest

# When a Hypothesis test fails, its pytest plugin imports hypothesis.extra._patching, which
# imports libcst if it is installed; an old libcst warns (DeprecationWarning from
# mypy_extensions.TypedDict) and `filterwarnings = ["error"]` turns that into an INTERNALERROR
# that aborts the whole session.  Import it first, with that warning silenced — only when a
# Hypothesis test has failed: libcst costs 0.4 s of CPU in each test process otherwise.
_FAILING_EXAMPLES = "_hypothesis_failing_examples"      # _hypothesis_pytestplugin's key


def _import_hypothesis_patching() -> None:
    with warnings.catch_warnings(), contextlib.suppress(ImportError):
        warnings.simplefilter("ignore", DeprecationWarning)
        import hypothesis.extra._patching  # noqa: F401


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    # (a plain hook: it runs before the plugin's hook wrapper resumes and imports it)
    if call.when == "teardown" and getattr(item, _FAILING_EXAMPLES, None):
        _import_hypothesis_patching()


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    # with xdist, the controller imports it here for the workers' failures
    if any(_FAILING_EXAMPLES in getattr(r, "__dict__", {})
           for reports in terminalreporter.stats.values() for r in reports):
        _import_hypothesis_patching()


# `check --checkpoint` signs its files with this user's key, made on first use in
# ~/.config/assay: the tests (and the CLI subprocesses they start, which inherit the
# environment) use a key of their own instead of writing into the home directory.  One
# directory per test process; a test of the key's location sets ASSAY_KEY_FILE itself.
if "ASSAY_KEY_FILE" not in os.environ:
    _key_dir = tempfile.mkdtemp(prefix="assay-test-key-")
    atexit.register(shutil.rmtree, _key_dir, ignore_errors=True)
    os.environ["ASSAY_KEY_FILE"] = os.path.join(_key_dir, "checkpoint.key")


@pytest.fixture
def children(tmp_path):
    """The child processes of one test (see `runtime_support.Children`), killed with their
    process groups when it ends."""
    from runtime_support import Children

    c = Children(tmp_path / "proc")
    try:
        yield c
    finally:
        c.close()


# Z3's per-obligation timeout is wall-clock: at load 15 on two cores a test process gets an
# eighth of a core, and an obligation Z3 decides in 0.6 s of CPU ran into the default 5 s
# (`unknown`, where the test expects `refuted`: test_verify.py failed in CI under load).  In
# this process, calls that leave the timeout to its default get a generous one; tests of the
# timeout itself, and `assay verify` in a subprocess, pass theirs.
TEST_VERIFY_TIMEOUT = 60.0


def _longer_verify_timeouts() -> None:
    import importlib

    v = importlib.import_module("assay.verifier.verify")
    conformance = importlib.import_module("assay.verifier.conformance")
    api = importlib.import_module("assay.api")
    for fn in (v.verify, v.contract_obligations, conformance.inferred_relation, api.verify):
        if fn.__kwdefaults__ and fn.__kwdefaults__.get("timeout") == 5.0:
            fn.__kwdefaults__ = {**fn.__kwdefaults__, "timeout": TEST_VERIFY_TIMEOUT}
        else:
            assert fn.__defaults__ is not None and 5.0 in fn.__defaults__, fn
            fn.__defaults__ = tuple(TEST_VERIFY_TIMEOUT if type(d) is float and d == 5.0 else d
                                    for d in fn.__defaults__)


_longer_verify_timeouts()


# `.ci/run` runs the suite on test processes that each take one whole file at a time
# (`--dist loadfile`), in the order collected here (`--no-loadscope-reorder`; xdist's own
# order is by number of tests, which put mypy's two files, 2 and 3 tests and the suite's
# longest single runs, last).  The files that keep a process busy longest go first, so the
# last file to start is a short one and no process idles while another finishes a long file
# (longest-processing-time-first).  Rough cost order; the rest keep their alphabetical order.
LONGEST_FIRST = (
    "test_verify.py", "test_cli_stop.py", "test_spec_errors.py", "test_runtime_restart.py",
    "test_state_dir.py", "test_runtime_tcp.py", "test_records.py", "test_readme.py",
    "test_runtime_local.py", "test_runtime_security.py", "test_suggest.py", "test_symmetry.py",
    "test_workers.py", "test_kv_spec.py", "test_quality.py", "test_typing.py",
    "test_runtime_client.py", "test_protocols.py", "test_primary_backup.py",
    "test_properties.py", "test_por.py", "test_replay_cli.py", "test_simulator.py",
    "test_wire.py", "test_composites.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))     # stable: within a
                                                                         # file, as written
