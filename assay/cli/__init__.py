"""The `assay` command: parses, calls an engine, prints.  Nothing here is semantics.

One module per subcommand; `common` holds what they share.  `python -m assay.cli` runs it."""
from __future__ import annotations

import sys
from typing import Any

import click

from assay.cli.check import check
from assay.cli.common import EXIT_INTERNAL, EXIT_INTERRUPTED, _fail
from assay.cli.replay import replay
from assay.cli.run import merge, node, run
from assay.cli.simulate import simulate
from assay.cli.verify import verify_command
from assay.entry import command_started
from assay.errors import AssayError, LoadInterrupted, exit_error
from assay.model.load import FOLDER_PREFIX, SPEC_MODULE_PREFIX


class _Group(click.Group):
    """Click usage errors exit 2 already; a bug in assay keeps its traceback, exit 70; Ctrl-C
    that no command turned into a partial report exits 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            command_started()                 # Ctrl-C is ours from here (`assay.entry`)
            return super().invoke(ctx)
        except SystemExit as e:
            if _raised_in_a_spec(e):          # a path the engines do not catch themselves
                _fail(exit_error(e, "code in the spec"))
            raise
        except KeyboardInterrupt as e:        # Ctrl-C outside an engine's own handling
            click.echo(str(e) if isinstance(e, LoadInterrupted) else "interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except AssayError as e:
            _fail(e)
        except BaseException as e:
            if not isinstance(e, Exception) and _raised_in_a_spec(e):
                _fail(exit_error(e, "code in the spec"))   # GeneratorExit, its own kind
            import traceback

            traceback.print_exc()
            click.echo("internal error: this is a bug in assay, not in your spec; please report "
                       "it with the traceback above", err=True)
            sys.exit(EXIT_INTERNAL)


def _raised_in_a_spec(e: BaseException) -> bool:
    """Whether a frame of a loaded spec (see `assay.model.load`) is on the traceback."""
    tb = e.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(
                (SPEC_MODULE_PREFIX, FOLDER_PREFIX)):
            return True
        tb = tb.tb_next
    return False


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="assay")
def main() -> None:
    """assay: write a distributed system once; check, verify, simulate and run it."""



for _command in (check, simulate, replay, run, node, merge, verify_command):
    main.add_command(_command)
