"""The AC client/server study (seeds 000/001): two TWIST inverters, PR voltage and current loops."""

from __future__ import annotations

import math

from simbaflow.design.sweepspace import sweep_size, expand_pr_sweep
from simbaflow.kinds.base import DesignKind, StudyKind


#: What corners.csv keeps of each corner's analysis.
CORNER_METRICS = ("stable", "max_pole_magnitude", "settling_time_s", "voltage_amplitude_error_pct",
                  "phase_error_deg", "phase_error_abs_deg", "client_tracking_error_pct", "server_phase_margin_deg",
                  "server_gain_margin_db", "client_phase_margin_deg", "client_gain_margin_db")


def _worst_cases():
    from simbaflow.design.corners import worst_of

    return (worst_of("phase_error_abs_deg", "max"), worst_of("settling_time_s", "max"),
            worst_of("max_pole_magnitude", "max"),
            worst_of("server_phase_margin_deg", "min"), worst_of("client_phase_margin_deg", "min"),
            worst_of("server_gain_margin_db", "min"), worst_of("client_gain_margin_db", "min"))


def _corner(spec: dict, cand: dict, plant: dict) -> dict:
    """The candidate analysed on one corner's plant (its PR gains do not depend on the plant)."""
    from simbaflow.design.coupled_inverters import evaluate_ac_candidate

    return evaluate_ac_candidate({**spec, "ac": {**spec["ac"], "plant": plant}}, cand)


def _evaluate(spec: dict, cand: dict) -> dict:
    from simbaflow.design.corners import evaluate_on_corners
    from simbaflow.design.coupled_inverters import evaluate_ac_candidate

    row = evaluate_ac_candidate(spec, cand)
    return evaluate_on_corners(spec, cand, row, KIND.corners(spec), _corner, CORNER_METRICS, _worst_cases())


def _columns() -> list[str]:
    from simbaflow.design.coupled_inverters import COLUMNS
    from simbaflow.design.corners import worst_columns

    return list(COLUMNS) + worst_columns(_worst_cases())


def _measure(spec: dict):
    from simbaflow.select.gather import measure_client_server_run

    ac = spec["ac"]
    return lambda parquet, cfg, row: measure_client_server_run(parquet, cfg, ac["f0_hz"], row["k_gain"], ac["ts_s"])


def _prediction(cfg: dict, row: dict) -> dict:
    from simbaflow.select.sine_waveforms import PREDICTED, WAVEFORM_PREDICTED

    return {f"analytic_{k}": row.get(k, math.nan) for k in (*PREDICTED, *WAVEFORM_PREDICTED)}


def _draw_figures(candidate_jsons, table_csv, selection_json, outputs) -> None:
    from simbaflow.review.corners import pareto_figure
    from simbaflow.review.summary import ac_figures

    ac_figures(table_csv, outputs[0])
    pareto_figure(table_csv, selection_json, outputs[1], ("worst_phase_error_abs_deg", "worst_settling_time_s"))


def _export(selection_path, firmware_dir, target, dry_run):
    from simbaflow.promote.pr_promote import promote_ac

    # The kind's own expand/evaluate/columns: promote re-derives the candidate from the spec.
    return promote_ac(selection_path, firmware_dir, target, dry_run, kind=KIND)


KIND = StudyKind(
    name="ac_client_server",
    section="ac",
    expand=expand_pr_sweep,
    evaluate=_evaluate,
    columns=_columns,
    quick_table=("candidate_id", "stable", "settling_time_s", "phase_error_deg", "voltage_amplitude_error_pct",
                 "server_phase_margin_deg", "client_phase_margin_deg", "status"),
    candidate_fields=("server_kp", "server_kr", "server_phi_prime_rad", "client_kp", "client_kr",
                      "client_phi_prime_rad", "k_gain"),
    filter_fields=("discretisation",),
    designs={"ac_client_server": DesignKind(signals=("v_load", "v_ref", "i_server", "i_client"),
                                            measure=_measure, predict=_prediction)},
    figures=("metrics_vs_parameters", "pareto"),
    draw_figures=_draw_figures,
    waveforms="client_server",
    export=_export,
    count=lambda spec: sweep_size(spec["ac"]["sweep"]),
    text_columns=("candidate_id", "discretisation", "status", "reason"),
    control_period_s=lambda spec: float(spec["ac"]["ts_s"]),
    decision_fields=("server_kp", "server_kr", "server_phi_prime_rad", "client_kp", "client_kr",
                     "client_phi_prime_rad", "k_gain", "discretisation", "server_b0", "server_b1", "server_a1",
                     "client_b0", "client_b1", "client_a1"),
    plant_of=lambda spec: dict(spec["ac"]["plant"]),
)
