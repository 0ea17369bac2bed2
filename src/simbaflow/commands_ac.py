"""CLI command of the AC client/server study: ac-design (gains reach firmware through `simbaflow promote`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

SPEC_ARG = click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))

_TABLE_COLUMNS = ["candidate_id", "stable", "settling_time_s", "phase_error_deg", "voltage_amplitude_error_pct",
                  "server_phase_margin_deg", "client_phase_margin_deg", "status"]


def _analytic_selection(selection: dict) -> tuple[dict, int]:
    """The selection without constraints on simulated metrics (``design.metric``), and how many were dropped.

    These commands evaluate candidates analytically only; the simulated
    constraints are the sweep's (`simbaflow sweep`) to check.
    """
    constraints = {k: v for k, v in selection.get("constraints", {}).items() if "." not in k}
    return {**selection, "constraints": constraints}, len(selection.get("constraints", {})) - len(constraints)


def _load_ac_spec(spec: Path) -> dict:
    from simbaflow.spec import load_spec

    s = load_spec(spec)
    if "ac" not in s:
        raise click.UsageError(f"{spec} has no ac section; use `simbaflow design` for a DC study")
    return s


@click.command("ac-design")
@SPEC_ARG
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def ac_design(spec: Path, fmt: str) -> None:
    """Evaluate every candidate of the AC study SPEC analytically and print the table and the choice."""
    import pandas as pd

    from simbaflow.ac_design import COLUMNS, evaluate_ac_study
    from simbaflow.selection import check_metric_names, select
    from simbaflow.study import _jsonable

    s = _load_ac_spec(spec)
    rows = evaluate_ac_study(s)
    df = pd.DataFrame(rows, columns=COLUMNS)
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
        return
    if fmt == "json":
        click.echo(json.dumps(_jsonable(df.to_dict(orient="records")), indent=1))
        return
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_rows", None):
        click.echo(df[_TABLE_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    selection, simulated = _analytic_selection(s["selection"])
    check_metric_names(selection, list(COLUMNS), str(spec))
    choice = select(rows, selection, str(spec))
    click.echo(f"selected: {choice['reason']}"
               + (f" (analytic constraints only; `simbaflow sweep` checks {simulated} on simulations)" if simulated else ""))


COMMANDS = [ac_design]
