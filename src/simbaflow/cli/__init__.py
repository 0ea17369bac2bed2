"""The ``simbaflow`` command line.

Each stage keeps its commands in its own module of this package; this file only
assembles them and turns :class:`SimbaflowError` into one line on stderr.
"""

from __future__ import annotations

import sys

import click

from simbaflow import __version__
from simbaflow.core.errors import SimbaflowError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="simbaflow")
def cli() -> None:
    """Tune power-converter controllers by simulation and ship the gains into firmware."""


def _register() -> None:
    from simbaflow.cli import design as commands_design

    for command in commands_design.COMMANDS:
        cli.add_command(command)

    from simbaflow.cli import records as commands_records

    for command in commands_records.COMMANDS:
        cli.add_command(command)

    from simbaflow.cli import simulate as commands_simba

    for command in commands_simba.COMMANDS:
        cli.add_command(command)

    from simbaflow.cli import promote as commands_promote

    for command in commands_promote.COMMANDS:
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, printing user-facing errors as one sentence."""
    try:
        cli.main(args=argv, prog_name="simbaflow", standalone_mode=False)
    except SimbaflowError as exc:
        click.echo(f"simbaflow: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("simbaflow: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
