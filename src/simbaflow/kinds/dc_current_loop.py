"""The DC current loop (seed 002): a PI by pole placement, every discretisation, the PWM as a ZOH."""

from __future__ import annotations

from simbaflow.design.sweepspace import sweep_size, expand_pi_sweep
from simbaflow.kinds.base import DesignKind, StudyKind


#: What corners.csv keeps of each corner's analysis.
CORNER_METRICS = ("stable", "max_pole_magnitude", "overshoot_pct", "rise_time_s", "settling_time_s", "peak",
                  "phase_margin_deg", "gain_margin_db", "crossover_rad_s", "stable_fixed", "overshoot_pct_fixed",
                  "settling_time_s_fixed", "ct_overshoot_pct", "ct_settling_time_s", "ct_phase_margin_deg")


def _worst_cases():
    from simbaflow.design.corners import worst_of

    return (worst_of("overshoot_pct", "max"), worst_of("settling_time_s", "max"),
            worst_of("phase_margin_deg", "min"), worst_of("gain_margin_db", "min"),
            worst_of("max_pole_magnitude", "max"))


def _corner(spec: dict, cand: dict, plant: dict) -> dict:
    """The candidate (gains from the nominal plant) analysed on one corner's plant."""
    from simbaflow.design.candidates import evaluate_candidate
    from simbaflow.design.plants import Plant

    return evaluate_candidate(spec, cand, with_responses=True, plant=Plant(
        model=plant["model"], l_h=float(plant["l_h"]), r_ohm=float(plant.get("r_ohm", 0.0)), e_v=float(plant["e_v"])))


def _evaluate(spec: dict, cand: dict) -> dict:
    from simbaflow.design.candidates import evaluate_candidate
    from simbaflow.design.corners import evaluate_on_corners

    row = evaluate_candidate(spec, cand, with_responses=True)
    return evaluate_on_corners(spec, cand, row, KIND.corners(spec), _corner, CORNER_METRICS, _worst_cases())


def _columns() -> list[str]:
    from simbaflow.design.candidates import COLUMNS
    from simbaflow.design.corners import worst_columns

    return list(COLUMNS) + worst_columns(_worst_cases())


def _step_measure(spec: dict):
    from simbaflow.select.gather import measure_step_run

    return lambda parquet, cfg, row: measure_step_run(parquet, cfg, 1.0 / row["fs_hz"])


def _step_prediction(cfg: dict, row: dict) -> dict:
    from simbaflow.select.gather import analytic_model
    from simbaflow.select.step_waveforms import PREDICTED

    prefix = "ct_" if analytic_model(cfg) == "continuous" else ""
    return {f"analytic_{k}": row[f"{prefix}{k}"] for k in PREDICTED}


def _draw_figures(candidate_jsons, table_csv, selection_json, outputs) -> None:
    import json
    from pathlib import Path

    from simbaflow.core.tables import row_from_json
    from simbaflow.review.corners import envelope_figure, pareto_figure
    from simbaflow.review.summary import analytic_figures

    analytic_figures(candidate_jsons, table_csv, selection_json, outputs[:4])
    pareto_figure(table_csv, selection_json, outputs[4], ("worst_overshoot_pct", "worst_settling_time_s"))
    rows = [row_from_json(r) for p in candidate_jsons for r in json.loads(Path(p).read_text())]
    envelope_figure(rows, selection_json, outputs[5])


def _export(selection_path, firmware_dir, target, dry_run):
    from simbaflow.promote.pipeline import promote

    # The kind's own expand/evaluate/columns: promote re-derives the candidate from the spec.
    return promote(selection_path, firmware_dir=firmware_dir, target=target, dry_run=dry_run, kind=KIND)


_STEP = DesignKind(signals=("response", "reference"), measure=_step_measure, predict=_step_prediction)

KIND = StudyKind(
    name="dc_current_loop",
    section="sweep",
    expand=expand_pi_sweep,
    evaluate=_evaluate,
    columns=_columns,
    quick_table=("candidate_id", "kp", "ki", "a0", "a1", "overshoot_pct", "settling_time_s", "phase_margin_deg",
                 "stable", "worst_overshoot_pct", "worst_phase_margin_deg", "stable_all_corners", "status"),
    candidate_fields=("kp", "ki", "a0", "a1", "xi", "wn_rad_s", "fs_hz", "ts_s", "delay_samples"),
    filter_fields=("method", "realisation"),
    designs={"current": _STEP, "power": _STEP},
    figures=("step_responses", "pole_zero", "metrics_vs_parameters", "continuous_vs_discrete", "pareto",
             "corner_envelopes"),
    draw_figures=_draw_figures,
    waveforms="steps",
    export=_export,
    count=lambda spec: sweep_size(spec["sweep"]),
    text_columns=("candidate_id", "method", "realisation", "q_format", "poles", "ct_poles", "ct_zeros",
                  "a0_hex", "a1_hex", "status", "reason"),
    # The first swept rate: what the promoted firmware runs unless the sweep has several.
    control_period_s=lambda spec: 1.0 / float(spec["sweep"]["fs_hz"][0]),
    decision_fields=("kp", "ki", "a1", "a0", "xi", "wn_rad_s", "method", "realisation", "delay_samples", "fs_hz",
                     "ts_s"),
    plant_of=lambda spec: dict(spec["plant"]),
)
