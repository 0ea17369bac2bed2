"""``simbaflow inspect`` and ``simbaflow simulate``: look into a .jsimba project and run one design."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from simbaflow.simulate import jsimba
from simbaflow.simulate.engines.select import ENGINE_NAMES, select_engine
from simbaflow.core.errors import SimbaflowError, SpecError

# Long parameter values (a C Code block's source) are summarised in text output.
_TEXT_VALUE_LIMIT = 60


def _text_value(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    if len(text) > _TEXT_VALUE_LIMIT or "\n" in text:
        return f"<{len(text)} characters>"
    # Quote values with spaces so "key=value" pairs stay unambiguous.
    return repr(text) if not text or " " in text else text


def format_inspection(path: Path, summaries: list[dict]) -> str:
    """Human-readable listing of designs, devices, parameters, scoped signals and transient settings."""
    lines = [f"project {path}"]
    for summary in summaries:
        lines.append(f"design {summary['name']}")
        transient = " ".join(f"{key}={_text_value(value)}" for key, value in summary["transient"].items())
        lines.append(f"  transient: {transient or '(none)'}")
        lines.append(f"  devices ({len(summary['devices'])}):")
        for device in summary["devices"]:
            params = " ".join(f"{key}={_text_value(value)}" for key, value in device["parameters"].items())
            name = device["name"] or "(unnamed)"
            lines.append(f"    {name:<18} {device['library']:<32} {params}".rstrip())
        lines.append(f"  scoped signals ({len(summary['scoped_signals'])}):")
        lines.extend(f"    {signal}" for signal in summary["scoped_signals"])
    return "\n".join(lines)


@click.command("inspect")
@click.argument("project", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--design", "design_name", help="Only this design (default: every design).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def inspect_command(project: Path, design_name: str | None, fmt: str) -> None:
    """List the designs of PROJECT.jsimba: devices, parameters, scoped signals, transient settings."""
    data = jsimba.load_project(project)
    if design_name is not None:
        designs = [jsimba.get_design(data, design_name, project)]
    else:
        designs = data["Designs"]
    summaries = [jsimba.describe_design(design) for design in designs]
    if fmt == "json":
        click.echo(json.dumps({"project": str(project), "designs": summaries}, indent=2))
    else:
        click.echo(format_inspection(project, summaries))


@click.command("simulate")
@click.argument("project", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--design", "design_name", required=True, help="Design to run.")
@click.option("--set", "assignments", multiple=True, metavar="DEVICE.PARAM=VALUE", help="Override a parameter (repeatable).")
@click.option("--engine", "engine_name", type=click.Choice(list(ENGINE_NAMES)), default="auto", show_default=True)
@click.option("--end-time", "end_time_s", type=float, help="Transient end time, seconds (default: the design's).")
@click.option("--signal", "signals", multiple=True, help="Signal '<device> - <scope>' to record (default: every scoped signal).")
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Run file (.parquet).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=600.0, show_default=True,
              help="Wall-time limit of the run, seconds; a run past it stops with an error.")
def simulate_command(
    project: Path,
    design_name: str,
    assignments: tuple[str, ...],
    engine_name: str,
    end_time_s: float | None,
    signals: tuple[str, ...],
    out: Path,
    timeout_s: float,
) -> None:
    """Run one transient job of a design and write its signals to a Parquet file."""
    overrides = jsimba.overrides_from_assignments(list(assignments))
    if end_time_s is not None and not (end_time_s > 0 and math.isfinite(end_time_s)):
        raise SpecError(f"--end-time {end_time_s}: expected a positive number of seconds")
    from simbaflow.simulate.batch import RunTimeout, time_limit

    engine, message = select_engine(engine_name)
    click.echo(message, err=True)
    try:
        with time_limit(timeout_s):
            result = engine.run(project, design_name, overrides, list(signals), end_time_s)
    except RunTimeout:
        raise SimbaflowError(f"{project}: design '{design_name}' ran past its time limit of {timeout_s:g} s "
                             "(raise --timeout, or shorten --end-time)", exit_code=1) from None
    if not result.ok:
        raise SimbaflowError(f"{project}: design '{design_name}' failed to simulate: {result.message}", exit_code=1)
    from simbaflow.simulate.runio import write_run_parquet  # pandas/pyarrow: only when writing

    write_run_parquet(
        out,
        result,
        {
            "project": str(project),
            "design": design_name,
            "overrides": {"parameters": overrides.parameters, "transient": overrides.transient},
            "end_time_s": end_time_s,
        },
    )
    click.echo(f"wrote {out} ({len(result.time_s)} points, {len(result.signals)} signals)", err=True)


COMMANDS = [inspect_command, simulate_command]
