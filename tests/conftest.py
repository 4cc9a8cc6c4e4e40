"""Shared test setup."""
import contextlib
import warnings

import pytest

# When a Hypothesis test fails, its pytest plugin imports hypothesis.extra._patching, which
# imports libcst if it is installed; an old libcst warns (DeprecationWarning from
# mypy_extensions.TypedDict) and `filterwarnings = ["error"]` turns that into an INTERNALERROR
# that aborts the whole session.  Import it once here, with that warning silenced.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401


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
