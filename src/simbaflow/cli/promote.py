"""``simbaflow promote`` and ``simbaflow firmware-check``."""

from __future__ import annotations

from pathlib import Path

import click

@click.command("promote")
@click.argument("selection", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and show the diff; write nothing.")
@click.option("--target", default=None,
              help="Where it goes: spin (default for a selection.json) or fpga (default for a state-space spec).")
@click.option("--firmware-dir", default=Path("firmware"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Firmware tree to write into.")
def promote_command(selection: Path, dry_run: bool, target: str | None, firmware_dir: Path) -> None:
    """Ship a study's selection (results/<study>/selection.json) into the firmware, then prove it.

    A DC selection writes include/controller_gains.h; an AC client/server
    selection writes include/ac_gains.h (both roles' PR gains).

    A state-space study (a spec with a statespace section, e.g.
    design/lcl_filter.yaml) is promoted to the FPGA files instead.
    """
    # Imported here: the CLI starts fast for every other command.
    from simbaflow.kinds import promote

    result = promote(selection, firmware_dir, target, dry_run)
    click.echo(f"{result.header}:")
    if not result.changed:
        click.echo("  unchanged: already promoted")
    for line in result.diff:
        click.echo(f"  {line}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if dry_run:
        click.echo("dry run: nothing written")
        return
    for line in result.check_lines:
        click.echo(line)
    click.echo("promoted" if result.written else "checked; nothing to write")


@click.command("firmware-check")
@click.option("--firmware-dir", default=Path("firmware"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Firmware tree to check.")
@click.option("--project-dir", default=Path("."), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Where results/ and the spec live.")
def firmware_check_command(firmware_dir: Path, project_dir: Path) -> None:
    """Host-test and cross-compile the promoted controllers, DC and AC (what `make firmware-check` runs)."""
    from simbaflow.promote.check import run_all_checks

    for line in run_all_checks(firmware_dir, project_dir).lines:
        click.echo(line)
    click.echo("firmware check passed")


COMMANDS = [promote_command, firmware_check_command]
