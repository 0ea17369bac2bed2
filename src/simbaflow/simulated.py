"""Simulated runs gathered into ``metrics.csv``, next to the analytic predictions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from simbaflow import atomic
from simbaflow.response_metrics import RUN_METRICS, run_metrics
from simbaflow.runio import read_run_parquet
from simbaflow.simulate import analytic_feasible, plan_runs, run_paths, runs_design, simulate_settings
from simbaflow.sweepspace import expand_candidates
from simbaflow.spec import load_spec
from simbaflow.study import read_candidates

#: Columns of metrics.csv, in order (a contract: add, never rename).
METRIC_COLUMNS = [
    "candidate_id", "design", "engine", "status", "message", "run_id", "run_file",
    "overshoot_pct", "rise_time_s", "settling_time_s", "peak", "steady_state_error", "ripple_pp", "iae", "itae",
    "duty_saturation_s", "tracking_error_pct", "power_error_pct", "power_overshoot_pct", "wall_time_s",
    "analytic_overshoot_pct", "analytic_rise_time_s", "analytic_settling_time_s",
    # AC client/server designs
    "voltage_amplitude_error_pct", "voltage_phase_error_deg", "voltage_thd_pct", "client_tracking_error_pct",
    "phase_error_deg", "phase_error_abs_deg", "analytic_phase_error_deg", "analytic_voltage_amplitude_error_pct",
    "analytic_client_tracking_error_pct",
    # AC start-up and k_gain step (one-period sliding fundamentals, 2 % band)
    "startup_settling_s", "client_startup_settling_s", "kgain_step_settling_s",
    # AC: the client figures above use the currents at the control ticks; these the full waveforms
    "client_tracking_error_waveform_pct", "phase_error_waveform_deg", "phase_error_waveform_abs_deg",
    "analytic_phase_error_waveform_deg", "analytic_client_tracking_error_waveform_pct",
]

#: Simulated metrics a selection may name as ``<design>.<metric>``.
SELECTABLE = ("overshoot_pct", "rise_time_s", "settling_time_s", "steady_state_error", "ripple_pp", "iae", "itae",
              "duty_saturation_s", "tracking_error_pct", "power_error_pct", "power_overshoot_pct", "status",
              "voltage_amplitude_error_pct", "voltage_thd_pct", "client_tracking_error_pct", "phase_error_deg",
              "phase_error_abs_deg", "startup_settling_s", "client_startup_settling_s", "kgain_step_settling_s",
              "client_tracking_error_waveform_pct", "phase_error_waveform_deg", "phase_error_waveform_abs_deg")


def analytic_model(cfg: dict) -> str:
    """Which analytic loop predicts a design: ``continuous`` when it only takes Kp and Ki."""
    return cfg.get("analytic") or ("continuous" if set(cfg.get("set", {}).values()) <= {"kp", "ki"} else "discrete")


def measure_ac_run(parquet: Path, cfg: dict, f0_hz: float, k_gain: float, ts_s: float | None = None) -> dict[str, Any]:
    """Steady-state, start-up and k_gain-step figures of one client/server run.

    See :func:`simbaflow.ac_metrics.client_server_metrics` and
    :func:`simbaflow.ac_metrics.transient_metrics`; the design's
    ``kgain_factor`` signal, when it names one, gives the k_gain step; the
    client figures take the currents at the control ticks ``k·ts_s``.
    """
    from simbaflow.ac_metrics import client_server_metrics, transient_metrics

    df, _ = read_run_parquet(parquet)
    t = df["time_s"].to_numpy()
    waves = [df[cfg[k]].to_numpy() for k in ("v_load", "i_server", "i_client", "v_ref")]
    factor = df[cfg["kgain_factor"]].to_numpy() if cfg.get("kgain_factor") else None
    return {**client_server_metrics(t, *waves, f0_hz=f0_hz, k_gain=k_gain, ts_s=ts_s),
            **transient_metrics(t, *waves, f0_hz=f0_hz, k_gain=k_gain, factor=factor, ts_s=ts_s)}


def measure_run(parquet: Path, record: dict, cfg: dict, period_s: float) -> dict[str, Any]:
    """Metrics of one finished run from its file and the design's settings."""
    df, _ = read_run_parquet(parquet)
    duty = df[cfg["duty"]].to_numpy() if cfg.get("duty") in df else None
    m = run_metrics(df["time_s"].to_numpy(), df[cfg["response"]].to_numpy(), df[cfg["reference"]].to_numpy(),
                    period_s, duty)
    m.pop("segments")
    if cfg.get("kind") == "power":
        m["power_error_pct"] = m["tracking_error_pct"]
        m["power_overshoot_pct"] = m["overshoot_pct"]
    return m


def gather_metrics(spec_path: str | Path, candidates_csv: str | Path, out_csv: str | Path) -> pd.DataFrame:
    """One row per (candidate, design): simulated metrics, run status and the analytic prediction."""
    spec = load_spec(spec_path)
    sim = simulate_settings(spec)
    results = Path("results") / spec["study"]
    analytic = {r["candidate_id"]: r for r in read_candidates(candidates_csv)}
    rows = []
    for run in plan_runs(spec):
        cfg = sim["designs"][run.design]
        parquet, record_path = run_paths(results, run)
        record = json.loads(record_path.read_text()) if record_path.exists() else {
            "status": "failed", "message": "the run left no record (interrupted?)", "engine": ""}
        measured: dict[str, Any] = dict.fromkeys(RUN_METRICS, math.nan)
        status, message = record.get("status", "failed"), record.get("message", "")
        ac = cfg.get("kind") == "ac_client_server"
        if status == "ok":
            try:
                if ac:
                    measured.update(measure_ac_run(parquet, cfg, spec["ac"]["f0_hz"], analytic[run.run_id]["k_gain"],
                                                   spec["ac"]["ts_s"]))
                else:
                    measured.update(measure_run(parquet, record, cfg, 1.0 / analytic[run.run_id]["fs_hz"]))
            except (KeyError, ValueError) as exc:
                status, message = "failed", f"metrics: {exc}"
        for cid in run.candidates:
            a = analytic[cid]
            if ac:
                prediction = {f"analytic_{k}": a.get(k, math.nan) for k in
                              ("phase_error_deg", "voltage_amplitude_error_pct", "client_tracking_error_pct",
                               "phase_error_waveform_deg", "client_tracking_error_waveform_pct")}
            else:
                prefix = "ct_" if analytic_model(cfg) == "continuous" else ""
                prediction = {f"analytic_{k}": a[f"{prefix}{k}"] for k in
                              ("overshoot_pct", "rise_time_s", "settling_time_s")}
            rows.append({
                **{k: v for k, v in measured.items() if k in METRIC_COLUMNS},
                "candidate_id": cid, "design": run.design, "engine": record.get("engine", ""),
                "status": status, "message": message, "run_id": run.run_id, "run_file": str(parquet),
                "wall_time_s": record.get("wall_time_s", math.nan), **prediction,
            })
    feasible = analytic_feasible(spec)
    for cand in expand_candidates(spec):
        for design, cfg in sim["designs"].items():
            if not runs_design(cfg, cand):
                where = ", ".join(f"{k} in {v}" for k, v in cfg["where"].items())
                rows.append({"candidate_id": cand["candidate_id"], "design": design, "status": "not simulated",
                             "message": f"{design} models only candidates with {where}"})
            elif feasible is not None and cand["candidate_id"] not in feasible:
                rows.append({"candidate_id": cand["candidate_id"], "design": design, "status": "not simulated",
                             "message": "analytically infeasible (simulate.candidates: feasible)"})
    df = pd.DataFrame(rows)
    df = df.reindex(columns=METRIC_COLUMNS + [c for c in df.columns if c not in METRIC_COLUMNS])
    with atomic.atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df


def merge_simulated(rows: list[dict], metrics_csv: str | Path) -> tuple[list[dict], list[str]]:
    """Analytic rows extended with ``<design>.<metric>`` columns; also the names added."""
    df = pd.read_csv(metrics_csv, dtype={"message": str, "engine": str})
    added: set[str] = set()
    by_id = {r["candidate_id"]: dict(r) for r in rows}
    for rec in df.to_dict(orient="records"):
        row = by_id.get(rec["candidate_id"])
        if row is None:
            continue
        for metric in SELECTABLE:
            key = f"{rec['design']}.{metric}"
            row[key] = rec.get(metric, math.nan)
            added.add(key)
        row[f"{rec['design']}.run_file"] = rec["run_file"]
    return list(by_id.values()), sorted(added)
