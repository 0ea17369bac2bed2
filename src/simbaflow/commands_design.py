"""CLI commands of the analytic design stage: design, sweep, report, statespace."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

SPEC_ARG = click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))

_TABLE_COLUMNS = ["candidate_id", "kp", "ki", "a0", "a1", "overshoot_pct", "settling_time_s", "phase_margin_deg",
                  "stable", "status"]


@click.command()
@SPEC_ARG
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def design(spec: Path, fmt: str) -> None:
    """Evaluate every candidate of SPEC in-process (no Snakemake) and print the table."""
    import pandas as pd

    from simbaflow.candidates import COLUMNS, evaluate_candidate
    from simbaflow.spec import load_spec
    from simbaflow.study import _jsonable
    from simbaflow.sweepspace import expand_sweep

    s = load_spec(spec)
    if "ac" in s:
        raise click.UsageError(f"{spec} is an AC client/server study; use `simbaflow ac-design {spec}`")
    if "sweep" not in s:
        raise click.UsageError(f"{spec} has no sweep section; use `simbaflow statespace` for a state-space study")
    rows = [evaluate_candidate(s, c) for c in expand_sweep(s)]
    df = pd.DataFrame(rows, columns=COLUMNS)
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(_jsonable(df.to_dict(orient="records")), indent=1))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_rows", None):
            click.echo(df[_TABLE_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.5g}"))


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
    from simbaflow.workflow import run_sweep

    run_sweep(spec, cores, report=not no_report, profile=profile, engine=engine)


@click.command()
@click.argument("study")
@click.option("--cores", type=click.IntRange(min=1), default=2, show_default=True)
def report(study: str, cores: int) -> None:
    """Bring STUDY's outputs up to date (new bench comparisons included) and build results/<study>/report.html.

    STUDY is a spec path or a study name in design/.
    """
    from simbaflow.workflow import resolve_spec, run_sweep

    run_sweep(resolve_spec(study), cores, report=True)


@click.command()
@SPEC_ARG
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="text", show_default=True)
def statespace(spec: Path, fmt: str) -> None:
    """Discretise and quantise a state-space plant (keys ad, bd, ad_fixed, bd_fixed, ad_hex, bd_hex)."""
    from simbaflow.spec import load_spec
    from simbaflow.statespace import statespace_study

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


COMMANDS = [design, sweep, report, statespace]
