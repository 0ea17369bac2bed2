"""CLI commands of the design stage and the workflow: design, ac-design, sweep, report, statespace."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

SPEC_ARG = click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))

def _analytic_selection(selection: dict) -> tuple[dict, int]:
    """The selection without constraints on simulated metrics (``design.metric``), and how many were dropped.

    The quick tables evaluate candidates analytically only; the simulated
    constraints are the sweep's (`simbaflow sweep`) to check.
    """
    constraints = {k: v for k, v in selection.get("constraints", {}).items() if "." not in k}
    return {**selection, "constraints": constraints}, len(selection.get("constraints", {})) - len(constraints)


#: The quick-table command of each study kind.
QUICK_COMMANDS = {"dc_current_loop": "design", "ac_client_server": "ac-design", "statespace": "statespace"}


def _quick_table(spec: Path, fmt: str, command: str, with_choice: bool) -> None:
    """Evaluate every candidate of ``spec`` in-process and print the table (and the analytic choice)."""
    import pandas as pd

    from simbaflow.core.spec import load_spec
    from simbaflow.core.tables import jsonable
    from simbaflow.kinds import expand_candidates, kind_of

    s = load_spec(spec)
    kind = kind_of(s)
    if QUICK_COMMANDS[kind.name] != command:
        raise click.UsageError(f"{spec} is a {kind.name} study; use `simbaflow {QUICK_COMMANDS[kind.name]} {spec}`")
    corners = kind.corners(s)
    if fmt == "table" and kind.plant_of is not None:
        from simbaflow.design.corners import corners_table

        click.echo(corners_table(corners, kind.plant_of(s)))
    rows = [kind.evaluate(s, c) for c in expand_candidates(s)]
    columns = kind.columns()
    df = pd.DataFrame(rows, columns=columns)
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
        return
    if fmt == "json":
        click.echo(json.dumps(jsonable(df.to_dict(orient="records")), indent=1))
        return
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_rows", None):
        click.echo(df[list(kind.quick_table)].to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    if with_choice:
        from simbaflow.select.ranking import check_metric_names, select

        selection, simulated = _analytic_selection(s["selection"])
        check_metric_names(selection, columns, str(spec))
        labels = {c.corner_id: c.describe(corners[0].plant) for c in corners}
        choice = select(rows, selection, str(spec), labels)
        click.echo(f"selected: {choice['reason']}"
                   + (f" (analytic constraints only; `simbaflow sweep` checks {simulated} on simulations)"
                      if simulated else ""))


@click.command()
@SPEC_ARG
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def design(spec: Path, fmt: str) -> None:
    """Evaluate every candidate of the DC study SPEC in-process (no Snakemake) and print the table."""
    _quick_table(spec, fmt, "design", with_choice=False)


@click.command("ac-design")
@SPEC_ARG
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def ac_design(spec: Path, fmt: str) -> None:
    """Evaluate every candidate of the AC study SPEC analytically and print the table and the choice."""
    _quick_table(spec, fmt, "ac-design", with_choice=True)


@click.command()
@SPEC_ARG
@click.option("--cores", type=click.IntRange(min=1), default=2, show_default=True, help="Parallel jobs.")
@click.option("--no-report", is_flag=True, help="Skip building results/<study>/report.html.")
@click.option("--profile", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Snakemake profile directory (default workflows/profiles/local; e.g. workflows/profiles/slurm).")
@click.option("--engine", type=click.Choice(["simba", "embedded", "auto"]), default=None,
              help="Simulation engine (default: the spec's simulate.engine).")
def sweep(spec: Path, cores: int, no_report: bool, profile: Path | None, engine: str | None) -> None:
    """Run the study's workflow end to end: candidates, simulations, selection, figures, report."""
    from simbaflow.workflow.runner import run_sweep

    run_sweep(spec, cores, report=not no_report, profile=profile, engine=engine)


@click.command()
@click.argument("study")
@click.option("--cores", type=click.IntRange(min=1), default=2, show_default=True)
def report(study: str, cores: int) -> None:
    """Bring STUDY's outputs up to date (new bench comparisons included) and build results/<study>/report.html.

    STUDY is a spec path or a study name in design/.
    """
    from simbaflow.core.spec import find_spec
    from simbaflow.workflow.runner import run_sweep

    run_sweep(find_spec(study), cores, report=True)


@click.command()
@SPEC_ARG
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="text", show_default=True)
def statespace(spec: Path, fmt: str) -> None:
    """Discretise and quantise a state-space plant (keys ad, bd, ad_fixed, bd_fixed, ad_hex, bd_hex)."""
    from simbaflow.core.spec import load_spec
    from simbaflow.design.statespace import statespace_study

    s = load_spec(spec)
    if "statespace" not in s:
        raise click.UsageError(f"{spec} has no statespace section")
    out = statespace_study(s)
    if fmt == "json":
        click.echo(json.dumps(out, indent=1))
        return
    for key in ("ad", "bd"):
        click.echo(f"{key} ({out['method']}, Ts = {out['ts_s']} s):")
        for row in out[key]:
            click.echo("  " + " ".join(f"{v: .6e}" if math.isfinite(v) else str(v) for v in row))
        click.echo(f"{key}_fixed ({out['q_format']}) / hex:")
        for ints, hexes in zip(out[f"{key}_fixed"], out[f"{key}_hex"]):
            click.echo("  " + " ".join(f"{v:>8d}" for v in ints) + "   " + " ".join(hexes))


COMMANDS = [design, ac_design, sweep, report, statespace]
