"""Candidates: the discrete closed loop against an independent time-domain simulation."""

import copy

import numpy as np
import pytest

from simbaflow.design.candidates import evaluate_candidate
from simbaflow.core.errors import NoFeasibleCandidate
from simbaflow.select.ranking import broken_constraints, select
from simbaflow.core.spec import validate_spec
from simbaflow.design.sweepspace import expand_pi_sweep as expand_sweep

SPEC = validate_spec({
    "study": "t",
    "plant": {"model": "voltage_compensated_inductor", "l_h": 6e-3, "r_ohm": 30, "e_v": 600},
    "sweep": {"xi": [1.4], "wn_rad_s": [5000], "fs_hz": [16000], "method": ["tustin", "matched"],
              "delay_samples": [0, 1], "realisation": ["pi_recurrence", "control_library_pid"]},
})


def _simulate_loop(a0, a1, delay, n, plant="voltage_compensated_inductor", l_h=6e-3, r_ohm=30.0, e_v=600.0, ts=1 / 16e3):
    """The sampled loop step by step: recurrence, delay line, exact ZOH inductor update."""
    i, alpha, e_prev = 0.0, 0.0, 0.0
    queue = [0.0] * delay
    out = []
    for _ in range(n):
        out.append(i)
        e = 1.0 - i
        alpha = alpha + a1 * e + a0 * e_prev
        e_prev = e
        queue.append(alpha)
        applied = queue.pop(0)
        if plant == "voltage_compensated_inductor":
            i = i + e_v * ts / l_h * applied
        else:
            k = np.exp(-r_ohm * ts / l_h)
            i = k * i + (1 - k) * e_v / r_ohm * applied
    return np.array(out)


def test_ids_are_unique_and_readable():
    ids = [c["candidate_id"] for c in expand_sweep(SPEC)]
    assert len(ids) == len(set(ids)) == 2 * 2 + 2  # Pid has a fixed discretisation: one per delay
    assert "xi1p4-wn5000-fs16000-tustin-d0" in ids
    assert "xi1p4-wn5000-fs16000-tustin-d1-clpid" in ids


@pytest.mark.parametrize("index", range(6))
def test_discrete_metrics_match_time_domain_simulation(index):
    cand = expand_sweep(SPEC)[index]
    row = evaluate_candidate(SPEC, cand, with_responses=True)
    t, y = row["responses"]["discrete"]
    sim = _simulate_loop(row["a0"], row["a1"], cand["delay_samples"], len(t))
    assert np.asarray(y) == pytest.approx(sim, abs=1e-9)
    assert row["overshoot_pct"] == pytest.approx((sim.max() - 1) * 100, abs=1e-6)
    assert row["a0_fixed"] == round(row["a0"] * 65536)


def test_resistive_plant_discrete_loop():
    spec = copy.deepcopy(SPEC)
    spec["plant"]["model"] = "inductor_with_resistance"
    spec["sweep"] = {**spec["sweep"], "method": ["tustin"], "delay_samples": [0], "realisation": ["pi_recurrence"]}
    row = evaluate_candidate(spec, expand_sweep(spec)[0], with_responses=True)
    t, y = row["responses"]["discrete"]
    sim = _simulate_loop(row["a0"], row["a1"], 0, len(t), plant="inductor_with_resistance")
    assert np.asarray(y) == pytest.approx(sim, abs=1e-9)


def test_overflowing_coefficient_marks_candidate_failed():
    spec = copy.deepcopy(SPEC)
    spec["fixed_point"] = {"word_bits": 16, "frac_bits": 15}  # range ±1: fine for a1 = 0.148
    spec["sweep"] = {**spec["sweep"], "xi": [20.0]}  # Kp = 2: overflows
    row = evaluate_candidate(spec, expand_sweep(spec)[0])
    assert row["status"] == "failed"
    assert "overflows Q1.15" in row["reason"]


def test_selection_explains_and_refuses():
    rows = [evaluate_candidate(SPEC, c) for c in expand_sweep(SPEC)]
    sel = select(rows, {"constraints": {"phase_margin_deg": {"min": 45}, "stable": True},
                        "objective": {"minimize": "overshoot_pct"}})
    best = min((r for r in rows if r["phase_margin_deg"] >= 45), key=lambda r: r["overshoot_pct"])
    assert sel["candidate"]["candidate_id"] == best["candidate_id"]
    assert all("phase_margin_deg" in b for r in sel["rejected"] for b in r["broken"])
    assert len(sel["rejected"]) == sum(r["phase_margin_deg"] < 45 for r in rows)
    with pytest.raises(NoFeasibleCandidate, match=r"binding constraints: overshoot_pct \(rejects 6 of 6\)"):
        select(rows, {"constraints": {"overshoot_pct": {"max": 1}}, "objective": {"minimize": "settling_time_s"}})


def test_missing_metric_breaks_constraint():
    assert broken_constraints({"status": "ok", "settling_time_s": float("nan")}, {"settling_time_s": {"max": 1}}) == \
        ["settling_time_s is not available"]
