"""What every subcommand shares: exit codes, parameters, failing with a rendered error."""
from __future__ import annotations

import sys

import click

from assay.errors import AssayError, UsageError

EXIT_OK, EXIT_VIOLATION, EXIT_ERROR, EXIT_INCOMPLETE = 0, 1, 2, 3


def _params(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise UsageError(f"--param {v!r} is not of the form name=value")
        k, _, val = v.partition("=")
        out[k.strip()] = val.strip()
    return out


def _fail(err: AssayError) -> None:
    click.echo(err.render(), err=True)          # never wrapped: `file:line: error:` stays whole
    sys.exit(err.exit_code)


EXIT_INTERNAL = 70


def _check_writable(path: str) -> None:
    """Fail before a long search, not after it, when an output file cannot be written."""
    import os

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied")


