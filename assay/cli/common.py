"""What every subcommand shares: exit codes, parameters, failing with a rendered error."""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import click

from assay.entry import EXIT_INTERRUPTED as EXIT_INTERRUPTED  # Ctrl-C: 128 + SIGINT
from assay.errors import AssayError, UsageError

EXIT_OK, EXIT_VIOLATION, EXIT_ERROR, EXIT_INCOMPLETE = 0, 1, 2, 3


def _params(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        if "=" not in v:
            raise UsageError(f"--param {v!r} is not of the form name=value")
        k, _, val = v.partition("=")
        k, val = k.strip(), val.strip()
        if k in out and out[k] != val:     # not the last one silently: which did they mean?
            raise UsageError(f"--param {k} is given twice, as {out[k]!r} and {val!r}",
                             notes=["give each parameter once"])
        out[k] = val
    return out


def _fail(err: AssayError) -> None:
    click.echo(err.render(), err=True)          # never wrapped: `file:line: error:` stays whole
    sys.exit(err.exit_code)


EXIT_INTERNAL = 70


def _check_writable(path: str, inputs: Iterable[tuple[str, str | None]] = ()) -> None:
    """Fail before a long search, not after it, when an output file cannot be written, or
    is one of `inputs` (what it is, its path: the command's spec, trace, or another output),
    which writing it would replace: `check spec.py --trace-out spec.py` replaced the spec."""
    from assay.outfile import check_writable, same_file

    why = check_writable(path)
    if why is not None:
        raise UsageError(f"cannot write {path}: {why}")
    for what, other in inputs:
        if other is not None and same_file(path, other):
            raise UsageError(f"cannot write {path}: it is also {what}, which writing it would "
                             "replace", notes=["write it to another file"])


def write_output(path: str, text: str) -> None:
    """Write an output file (a diagram, a page) as UTF-8, whole or not at all
    (`assay.outfile`); failing is a `UsageError`."""
    from assay.outfile import write_whole

    try:
        write_whole(path, text)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None


def progress_interval(default: float) -> float:
    """Seconds between two plain progress lines on standard error (when it is not a terminal):
    `default`, or the environment's ASSAY_PROGRESS_INTERVAL (tests make it short)."""
    import os

    raw = os.environ.get("ASSAY_PROGRESS_INTERVAL")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"ASSAY_PROGRESS_INTERVAL={raw!r} is not a number of seconds") \
                from None
        if value > 0:
            return value
        raise UsageError(f"ASSAY_PROGRESS_INTERVAL={raw!r} must be positive")
    return default


class Size(click.ParamType):
    """A memory size: bytes, or a number with K, M, G or T (powers of 1024), e.g. 500M, 2G."""

    name = "size"
    _UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        import re

        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(value), re.I)
        size = int(float(m[1]) * self._UNITS[m[2].upper()]) if m else 0
        if size <= 0:
            self.fail(f"{value!r} is not a memory size; use e.g. 500M or 2G", param, ctx)
        return size


class WorkerCount(click.ParamType):
    """A number of worker processes, 'all' (one per usable core) or 'auto' (one process,
    all cores once the search is large: `assay.checker.auto`)."""

    name = "workers"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if text == "all":
            from assay.checker.auto import usable_cores

            return usable_cores()
        if text.isdigit() and int(text) >= 1:
            return int(text)
        self.fail(f"{value!r} is not a number of workers; use e.g. 2, 'all' or 'auto'", param,
                  ctx)


class Seconds(click.FloatRange):
    """A duration in seconds, within the range given; never NaN, which every comparison
    takes for false: `--max-time nan` set no limit, `--checkpoint-every nan` saved none."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        import math

        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return float(seconds)


def print_warnings(warnings: Iterable[str]) -> None:
    """Print each warning on standard error (also with --json, whose document holds them
    too): before `simulate` or `run` starts, those `assay.api.spec_warnings` knows; after
    `check` or `verify`, the result's."""
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
