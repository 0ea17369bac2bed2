"""Simulated runs gathered into ``metrics.csv``, next to the analytic predictions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from simbaflow.core import atomic
from simbaflow.select import sine_waveforms, step_waveforms
from simbaflow.select.step_waveforms import RUN_METRICS, run_metrics
from simbaflow.simulate.plan import Plan, run_paths, runs_design
from simbaflow.simulate.runio import RunRecord, read_run_parquet

#: What a current or power design reports (a power design adds the power_* pair).
STEP_METRICS = tuple(m for m in RUN_METRICS if m != "n_steps") + ("power_error_pct", "power_overshoot_pct")
#: What a client/server design reports.
CLIENT_SERVER_METRICS = sine_waveforms.STEADY_METRICS + sine_waveforms.TRANSIENT_METRICS + sine_waveforms.WAVEFORM_METRICS

#: Columns of metrics.csv, in order (a contract: add, never rename).
METRIC_COLUMNS = [
    "candidate_id", "design", "corner", "engine", "status", "message", "run_id", "run_file",
    *STEP_METRICS, "wall_time_s", *(f"analytic_{m}" for m in step_waveforms.PREDICTED),
    *sine_waveforms.STEADY_METRICS, *(f"analytic_{m}" for m in sine_waveforms.PREDICTED),
    *sine_waveforms.TRANSIENT_METRICS,
    *sine_waveforms.WAVEFORM_METRICS, *(f"analytic_{m}" for m in sine_waveforms.WAVEFORM_PREDICTED),
]

#: Simulated metrics a selection may name as ``<design>.<metric>``.
SELECTABLE = (*STEP_METRICS, "status", *CLIENT_SERVER_METRICS)


def analytic_model(cfg: dict) -> str:
    """Which analytic loop predicts a design: ``continuous`` when it only takes Kp and Ki."""
    return cfg.get("analytic") or ("continuous" if set(cfg.get("set", {}).values()) <= {"kp", "ki"} else "discrete")


def measure_client_server_run(parquet: Path, cfg: dict, f0_hz: float, k_gain: float,
                              ts_s: float | None = None) -> dict[str, Any]:
    """Steady-state, start-up and k_gain-step figures of one client/server run.

    See :func:`simbaflow.select.sine_waveforms.client_server_metrics` and
    :func:`simbaflow.select.sine_waveforms.transient_metrics`; the design's
    ``kgain_factor`` signal, when it names one, gives the k_gain step; the
    client figures take the currents at the control ticks ``k·ts_s``.
    """
    from simbaflow.select.sine_waveforms import client_server_metrics, transient_metrics

    df, _ = read_run_parquet(parquet)
    t = df["time_s"].to_numpy()
    waves = [df[cfg[k]].to_numpy() for k in ("v_load", "i_server", "i_client", "v_ref")]
    factor = df[cfg["kgain_factor"]].to_numpy() if cfg.get("kgain_factor") else None
    return {**client_server_metrics(t, *waves, f0_hz=f0_hz, k_gain=k_gain, ts_s=ts_s),
            **transient_metrics(t, *waves, f0_hz=f0_hz, k_gain=k_gain, factor=factor, ts_s=ts_s)}


def measure_step_run(parquet: Path, cfg: dict, period_s: float) -> dict[str, Any]:
    """Per-step metrics of one finished run of a current or power design."""
    df, _ = read_run_parquet(parquet)
    duty = df[cfg["duty"]].to_numpy() if cfg.get("duty") in df else None
    m = run_metrics(df["time_s"].to_numpy(), df[cfg["response"]].to_numpy(), df[cfg["reference"]].to_numpy(),
                    period_s, duty)
    m.pop("segments")
    if cfg.get("kind") == "power":
        m["power_error_pct"] = m["tracking_error_pct"]
        m["power_overshoot_pct"] = m["overshoot_pct"]
    return m


#: ``measure(parquet, design settings, analytic row) -> metrics`` of a design kind.
Measure = Callable[[Path, dict, dict], dict]
#: ``prediction(design settings, analytic row) -> analytic_* columns`` of a design kind.
Prediction = Callable[[dict, dict], dict]


def gather_metrics(plan: Plan, sim: dict, analytic_rows: list[dict], measures: Mapping[str, tuple[Measure, Prediction]],
                   results: Path, out_csv: str | Path, feasible: set[str] | None = None,
                   corner_rows: list[dict] | None = None) -> pd.DataFrame:
    """One row per (candidate, design, corner): simulated metrics, run status and the analytic prediction.

    Parameters
    ----------
    plan
        The study's runs.
    sim
        The ``simulate`` section (design settings: signals, ``kind``, ``where``).
    analytic_rows
        Every candidate's analytic row, in sweep order.
    measures
        For each design ``kind``, how to measure a run and what the analysis predicts.
    feasible
        The candidates simulated under ``simulate.candidates: feasible`` (None: all).
    corner_rows
        ``corners.csv`` rows: a corner run is predicted by its corner's analysis
        (the candidate's row with that corner's metrics).
    """
    analytic = {r["candidate_id"]: r for r in analytic_rows}
    by_corner = {(r["candidate_id"], r["corner"]): r for r in corner_rows or []}

    def analytic_row(cid: str, corner: str) -> dict:
        if corner == "c0":
            return analytic[cid]
        extra = by_corner.get((cid, corner), {})
        return {**analytic[cid], **{k: v for k, v in extra.items() if k not in ("candidate_id",)}}

    rows = []
    for run in plan.runs:
        cfg = sim["designs"][run.design]
        measure, predict = measures[cfg.get("kind", "current")]
        parquet, record_path = run_paths(results, run)
        record = RunRecord.read(record_path)
        measured: dict[str, Any] = dict.fromkeys(RUN_METRICS, math.nan)
        if record is None:
            status, message, engine, wall_time_s = "failed", "the run left no record (interrupted?)", "", math.nan
        else:
            status, message, engine, wall_time_s = record.status, record.message, record.engine, record.wall_time_s
        if status == "ok":
            try:
                measured.update(measure(parquet, cfg, analytic_row(run.candidates[0], run.corner)))
            except (KeyError, ValueError) as exc:
                status, message = "failed", f"metrics: {exc}"
        for cid in run.candidates:
            rows.append({
                **{k: v for k, v in measured.items() if k in METRIC_COLUMNS},
                "candidate_id": cid, "design": run.design, "corner": run.corner, "engine": engine,
                "status": status, "message": message, "run_id": run.run_id, "run_file": str(parquet),
                "wall_time_s": wall_time_s, **predict(cfg, analytic_row(cid, run.corner)),
            })
    for cand in analytic_rows:
        for design, cfg in sim["designs"].items():
            if not runs_design(cfg, cand):
                where = ", ".join(f"{k} in {v}" for k, v in cfg["where"].items())
                rows.append({"candidate_id": cand["candidate_id"], "design": design, "corner": "c0",
                             "status": "not simulated", "message": f"{design} models only candidates with {where}"})
            elif feasible is not None and cand["candidate_id"] not in feasible:
                rows.append({"candidate_id": cand["candidate_id"], "design": design, "corner": "c0",
                             "status": "not simulated",
                             "message": "analytically infeasible (simulate.candidates: feasible)"})
    df = pd.DataFrame(rows)
    df = df.reindex(columns=METRIC_COLUMNS + [c for c in df.columns if c not in METRIC_COLUMNS])
    with atomic.atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df


def _worst_value(values: list[tuple[Any, str]]) -> tuple[Any, str]:
    """The worst ``(value, corner)``: the largest magnitude (every simulated metric is worse larger,
    signed errors by their size); a corner without the value (failed run) is the worst of all."""
    for value, corner in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return math.nan, corner
    return max(values, key=lambda vc: abs(float(vc[0])))


def merge_simulated(rows: list[dict], metrics_csv: str | Path) -> tuple[list[dict], list[str]]:
    """Analytic rows extended with ``<design>.<metric>`` (nominal plant) and
    ``<design>.worst.<metric>`` columns (worst over the simulated corners, with
    ``<design>.worst.<metric>_corner`` naming the corner); also the names added."""
    df = pd.read_csv(metrics_csv, dtype={"message": str, "engine": str, "corner": str})
    if "corner" not in df:
        df["corner"] = "c0"
    df["corner"] = df["corner"].fillna("c0")
    added: set[str] = set()
    by_id = {r["candidate_id"]: dict(r) for r in rows}
    records = df.to_dict(orient="records")
    for rec in records:
        row = by_id.get(rec["candidate_id"])
        if row is None or rec["corner"] != "c0":
            continue
        for metric in SELECTABLE:
            key = f"{rec['design']}.{metric}"
            row[key] = rec.get(metric, math.nan)
            added.add(key)
        row[f"{rec['design']}.run_file"] = rec["run_file"]
    grouped: dict[tuple[str, str], list[dict]] = {}
    for rec in records:
        grouped.setdefault((rec["candidate_id"], rec["design"]), []).append(rec)
    for (cid, design), recs in grouped.items():
        row = by_id.get(cid)
        if row is None:
            continue
        for metric in SELECTABLE:
            key = f"{design}.worst.{metric}"
            if metric == "status":
                bad = [r for r in recs if r["status"] != "ok"]
                row[key], row[f"{key}_corner"] = (bad[0]["status"], bad[0]["corner"]) if bad else ("ok", "")
            else:
                row[key], row[f"{key}_corner"] = _worst_value([(r.get(metric, math.nan), r["corner"]) for r in recs])
            added.add(key)
    return list(by_id.values()), sorted(added)
