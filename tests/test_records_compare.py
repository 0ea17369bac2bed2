"""Alignment and measured-vs-simulated figures against values known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from simbaflow.bench.compare import (
    CompareError,
    compare,
    crossing_time_s,
    fundamental_hz,
    phase_error_deg,
    step_metrics,
    xcorr_offset_s,
)

ZETA, WN = 0.4, 3000.0


def step(t):
    t = np.asarray(t, dtype=float)
    wd = WN * math.sqrt(1 - ZETA**2)
    y = 1 - np.exp(-ZETA * WN * t) / math.sqrt(1 - ZETA**2) * np.sin(wd * t + math.acos(ZETA))
    return np.where(t >= 0, y, 0.0)


@pytest.mark.parametrize("offset_s", [0.0, 1.0e-3, 1.03e-3, 5.5e-3])
def test_xcorr_finds_a_pure_delay(offset_s):
    ts = 1e-4
    t_rec = np.arange(300) * ts
    t_sim = np.linspace(0, 0.015, 3001)
    got = xcorr_offset_s(t_rec, step(t_rec - offset_s), t_sim, step(t_sim))
    assert abs(got - offset_s) < 0.1 * ts


def test_xcorr_with_a_record_that_starts_late():
    ts = 1e-4
    t_rec = 0.5 + np.arange(200) * ts  # the record clock does not start at zero
    t_sim = np.linspace(0, 0.02, 2001)
    got = xcorr_offset_s(t_rec, step(t_rec - 0.5012), t_sim, step(t_sim))
    assert abs(got - 0.5012) < 0.1 * ts


def test_crossing_of_a_ramp_is_interpolated():
    t = np.arange(100) * 1e-3
    y = np.clip((t - 0.0303) * 100, 0, 2)  # 0 -> 2 ramp from 30.3 ms to 50.3 ms; halfway at 40.3 ms
    assert crossing_time_s(t, y) == pytest.approx(0.0403, abs=1e-6)
    with pytest.raises(CompareError, match="no step"):
        crossing_time_s(t, np.ones(100))


def test_step_metrics_match_second_order_theory():
    t = np.linspace(0, 0.02, 200001)
    m = step_metrics(t, 3.0 * step(t) + 1.0, initial=1.0)
    assert m["final"] == pytest.approx(4.0, abs=1e-6)
    theory_pct = 100 * math.exp(-math.pi * ZETA / math.sqrt(1 - ZETA**2))
    assert m["overshoot_pct"] == pytest.approx(theory_pct, abs=1e-3)
    # The last time |y - 1| = 2 %: bracket it on a 10 µs grid, then solve for the root.
    def err(x):
        return abs(float(step(x)) - 1) - 0.02

    coarse = np.arange(1e-4, 0.01, 1e-5)
    last_out = coarse[np.flatnonzero([err(x) > 0 for x in coarse])[-1]]
    settle = brentq(err, last_out, last_out + 1e-5)
    assert m["settling_time_s"] == pytest.approx(settle, abs=2e-7)


def test_step_metrics_of_a_sinusoid_are_none():
    t = np.linspace(0, 0.1, 1001)
    m = step_metrics(t, np.sin(2 * np.pi * 50 * t), initial=0.0)
    assert m["overshoot_pct"] is None and m["settling_time_s"] is None


def test_phase_error_and_frequency():
    t = np.arange(2000) * 1e-4
    a = 3.0 * np.cos(2 * np.pi * 49.3 * t + 0.4) + 0.2
    b = 0.5 * np.cos(2 * np.pi * 49.3 * t + 0.4 - np.radians(170.0))
    assert fundamental_hz(t, a) == pytest.approx(49.3, abs=0.05)
    assert phase_error_deg(t, a, b) == pytest.approx(-170.0, abs=0.2)
    assert phase_error_deg(t, b, a) == pytest.approx(170.0, abs=0.2)
    assert phase_error_deg(t, a, -a, f_hz=49.3) == pytest.approx(180.0, abs=1e-6)


def test_compare_skips_lost_values_and_reports_zero_error_on_identity():
    t_sim = np.linspace(0, 0.01, 10001)
    run = pd.DataFrame({"time_s": t_sim, "i": step(t_sim)})
    t_rec = np.arange(160) * 1e-4
    y = step(t_rec - 2e-3)
    y[70] = np.nan  # a value the dump lost
    out = compare(pd.DataFrame({"time_s": t_rec, "I": y}), run, {"I": "i"})
    assert out["offset_s"] == pytest.approx(2e-3, abs=1e-5)
    (sig,) = out["signals"]
    # 10 ms of run at 0.1 ms holds 101 samples; one was lost, one may fall just outside.
    assert sig["n_samples"] in (99, 100)
    assert sig["rms_error"] < 1e-3
    assert sig["measured"]["overshoot_pct"] == pytest.approx(sig["simulated"]["overshoot_pct"], abs=0.05)


def test_compare_names_missing_channels():
    frame = pd.DataFrame({"time_s": np.arange(10) * 1.0, "I": np.zeros(10)})
    with pytest.raises(CompareError, match=r"the run has no signal 'x' \(it has 'I'\)"):
        compare(frame, frame, {"I": "x"})
    with pytest.raises(CompareError, match=r"phase channel 'J' is not mapped"):
        compare(frame.assign(I=np.arange(10.0)), frame.assign(I=np.arange(10.0)), {"I": "I"},
                phase_pair=("I", "J"))
