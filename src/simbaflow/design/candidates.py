"""Expand a study's sweep into candidates and evaluate each one analytically.

A candidate is a plain dict of swept values; its evaluation is one row of
``candidates.csv`` (the metrics of the discrete closed loop of that row) plus
the step responses the figures draw.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simbaflow.design import discretisation, loops, realisations

from simbaflow.core import fixedpoint
from simbaflow.design.plants import Plant, plant_from_spec, plant_tf, plant_tf_discrete
from simbaflow.design.tuning import damping_from_gains, pi_gains_pole_placement

#: Columns of candidates.csv, in order (a contract: add, never rename).
COLUMNS = [
    "candidate_id", "xi", "wn_rad_s", "kp", "ki", "method", "realisation", "fs_hz", "ts_s",
    "delay_samples", "a0", "a1", "a0_fixed", "a1_fixed", "a0_hex", "a1_hex", "q_format",
    "overshoot_pct", "rise_time_s", "settling_time_s", "peak", "phase_margin_deg",
    "gain_margin_db", "crossover_rad_s", "stable", "max_pole_magnitude", "poles",
    "stable_fixed", "overshoot_pct_fixed", "settling_time_s_fixed", "coefficient_error_max",
    "ct_overshoot_pct", "ct_rise_time_s", "ct_settling_time_s", "ct_phase_margin_deg",
    "ct_poles", "ct_zeros", "zero_pole_ratio", "status", "reason",
]


def _fmt_roots(roots: np.ndarray) -> str:
    return " ".join(f"{r.real:.6g}{r.imag:+.6g}j" if abs(r.imag) > 1e-9 else f"{r.real:.6g}" for r in roots)


def candidate_gains(spec: dict, cand: dict[str, Any]) -> dict[str, float]:
    """Gains and recurrence coefficients of a candidate (cheap: no loop analysis).

    Returns
    -------
    dict
        ``xi``, ``wn_rad_s``, ``kp``, ``ki``, ``ts_s``, ``a0``, ``a1``.
    """
    plant = plant_from_spec(spec)
    if "xi" in cand:
        xi, wn_rad_s = cand["xi"], cand["wn_rad_s"]
        kp, ki = pi_gains_pole_placement(plant, xi, wn_rad_s)
    else:
        kp, ki = cand["kp"], cand["ki"]
        xi, wn_rad_s = damping_from_gains(plant, kp, ki)
    ts_s = 1.0 / cand["fs_hz"]
    if cand["realisation"] == "control_library_pid":
        a0, a1 = realisations.control_library_pid_recurrence(kp, ki, ts_s)
    else:
        prewarp = spec["sweep"].get("prewarp_rad_s") or wn_rad_s
        a0, a1 = discretisation.pi_recurrence(kp, ki, ts_s, cand["method"], prewarp_rad_s=prewarp)
    return {"xi": xi, "wn_rad_s": wn_rad_s, "kp": kp, "ki": ki, "ts_s": ts_s, "a0": a0, "a1": a1}


def evaluate_candidate(spec: dict, cand: dict[str, Any], with_responses: bool = False,
                       plant: Plant | None = None) -> dict[str, Any]:
    """Tune, discretise, quantise and analyse one candidate.

    Parameters
    ----------
    plant
        The plant the loop is analysed on (a tolerance corner); the gains are
        always those designed on the spec's nominal plant. Default: the nominal plant.

    Returns
    -------
    dict
        A row with every :data:`COLUMNS` key; with ``with_responses`` also
        ``responses``: ``{"continuous": (t, y), "discrete": (t, y), "fixed": (t, y)}``.
        A candidate that cannot be realised (e.g. a coefficient overflowing the
        fixed-point format) has ``status = "failed"`` and the reason.
    """
    plant = plant_from_spec(spec) if plant is None else plant
    row: dict[str, Any] = dict.fromkeys(COLUMNS, math.nan)
    row.update(cand)
    row["status"], row["reason"] = "ok", ""
    gains = candidate_gains(spec, cand)
    row.update(gains)
    kp, ki, ts_s, a0, a1 = gains["kp"], gains["ki"], gains["ts_s"], gains["a0"], gains["a1"]

    # Continuous loop: the seed's analytic design check.
    loop_c = loops.pi_tf(kp, ki) * plant_tf(plant)
    cl_c = loops.closed_loop(loop_c)
    step_c = loops.step_analysis(cl_c)
    row.update(
        ct_overshoot_pct=step_c["overshoot_pct"], ct_rise_time_s=step_c["rise_time_s"],
        ct_settling_time_s=step_c["settling_time_s"],
        ct_phase_margin_deg=loops.margins(loop_c)["phase_margin_deg"],
        ct_poles=_fmt_roots(cl_c.poles()), ct_zeros=_fmt_roots(cl_c.zeros()),
        zero_pole_ratio=loops.zero_pole_proximity(cl_c),
    )

    # Discrete loop as the firmware runs it.
    pd = plant_tf_discrete(plant, ts_s) * discretisation.delay_tf(cand["delay_samples"], ts_s)
    loop_d = discretisation.recurrence_tf(a0, a1, ts_s) * pd
    cl_d = loops.closed_loop(loop_d)
    row["stable"] = loops.is_stable(cl_d)
    row["max_pole_magnitude"] = float(np.max(np.abs(cl_d.poles()))) if cl_d.poles().size else 0.0
    row["poles"] = _fmt_roots(cl_d.poles())
    m = loops.margins(loop_d)
    row.update(phase_margin_deg=m["phase_margin_deg"], gain_margin_db=m["gain_margin_db"],
               crossover_rad_s=m["gain_crossover_rad_s"])
    horizon_s = max(step_c["time_s"][-1], 20 * ts_s)
    if row["stable"]:
        step_d = loops.step_analysis(cl_d, horizon_s)
        row.update(overshoot_pct=step_d["overshoot_pct"], rise_time_s=step_d["rise_time_s"],
                   settling_time_s=step_d["settling_time_s"], peak=step_d["peak"])

    # Fixed point: coefficients the firmware stores, and the loop they give.
    fmt = fixedpoint.QFormat(spec["fixed_point"]["word_bits"], spec["fixed_point"]["frac_bits"])
    row["q_format"] = fmt.name
    step_q = None
    try:
        a0_q = fixedpoint.to_fixed(a0, fmt, "a0")
        a1_q = fixedpoint.to_fixed(a1, fmt, "a1")
    except fixedpoint.FixedPointOverflow as exc:
        row.update(status="failed", reason=str(exc))
    else:
        row.update(a0_fixed=a0_q, a1_fixed=a1_q, a0_hex=fixedpoint.to_hex(a0_q, fmt.word_bits),
                   a1_hex=fixedpoint.to_hex(a1_q, fmt.word_bits))
        a0_r, a1_r = fixedpoint.to_float(a0_q, fmt), fixedpoint.to_float(a1_q, fmt)
        row["coefficient_error_max"] = max(abs(a0_r - a0), abs(a1_r - a1))
        cl_q = loops.closed_loop(discretisation.recurrence_tf(a0_r, a1_r, ts_s) * pd)
        row["stable_fixed"] = loops.is_stable(cl_q)
        if row["stable_fixed"]:
            step_q = loops.step_analysis(cl_q, horizon_s)
            row.update(overshoot_pct_fixed=step_q["overshoot_pct"], settling_time_s_fixed=step_q["settling_time_s"])

    if with_responses:
        row["responses"] = {"continuous": (step_c["time_s"], step_c["y"])}
        if row["stable"]:
            row["responses"]["discrete"] = (step_d["time_s"], step_d["y"])
        if step_q is not None:
            row["responses"]["fixed"] = (step_q["time_s"], step_q["y"])
    return row
