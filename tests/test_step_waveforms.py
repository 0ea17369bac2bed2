"""Waveform metrics of simulated step runs against closed forms.

Each synthetic run is built on the metric's own sample grid (period/32) from
responses whose figures are known in closed form: first-order steps (10–90 %
rise τ·ln 9, IAE = Σ τ·|ΔI|), second-order steps (overshoot
e^(−πξ/√(1−ξ²))), a zero-mean triangular ripple of known peak-to-peak value,
settled offsets, and a duty clipped for a known time. The metrics measure the
response averaged over one switching period (README, "Simulating every
candidate"); the 32-point average of an exponential e^(−u/τ) is
g·e^(−u/τ) with g = (1/32)·Σ_{j<32} e^(j·h/τ), which the settling time takes in.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simbaflow.design.metrics import step_metrics
from simbaflow.select.gather import measure_step_run
from simbaflow.select.step_waveforms import run_metrics
from simbaflow.simulate.engines.base import RunResult
from simbaflow.simulate.runio import write_run_parquet

PERIOD_S = 20e-6          # switching period handed to the metrics
H_S = PERIOD_S / 32       # their grid
STARTS_S = (0.0, 0.02, 0.04)
TARGETS = (1.0, 3.0, 1.0)
END_S = 0.06
N = int(round(END_S / H_S)) + 32   # a little past the end: the last segment is never cut short
T = np.arange(N) * H_S


def _segments():
    """Index of the segment each sample belongs to."""
    return np.searchsorted(np.array(STARTS_S[1:]) / H_S - 0.5, np.arange(N), side="right")


def _reference():
    return np.array(TARGETS)[_segments()]


def _first_order(taus, finals=TARGETS):
    """Each segment relaxes from the value it starts at towards ``finals[k]`` with time constant ``taus[k]``."""
    seg = _segments()
    y = np.empty(N)
    start_value = 0.0
    for k, (t0, tau, final) in enumerate(zip(STARTS_S, taus, finals)):
        idx = seg == k
        u = T[idx] - t0
        y[idx] = final + (start_value - final) * np.exp(-u / tau)
        start_value = final + (start_value - final) * math.exp(-(STARTS_S[k + 1] - t0) / tau) if k + 1 < len(STARTS_S) else 0
    return y


def _second_order(xi, wn, finals=TARGETS):
    """Each segment a unit-step response of ωn²/(s² + 2ξωn s + ωn²) from where the previous one ended."""
    seg = _segments()
    sigma, wd = xi * wn, wn * math.sqrt(1 - xi**2)

    def step(u):
        return 1 - np.exp(-sigma * u) * (np.cos(wd * u) + sigma / wd * np.sin(wd * u))

    y = np.empty(N)
    start_value = 0.0
    for k, (t0, final) in enumerate(zip(STARTS_S, finals)):
        idx = seg == k
        y[idx] = start_value + (final - start_value) * step(T[idx] - t0)
        if k + 1 < len(STARTS_S):
            start_value = start_value + (final - start_value) * float(step(np.array([STARTS_S[k + 1] - t0]))[0])
    return y


def _triangle(pp):
    """Zero-mean triangle of peak-to-peak ``pp``, one per switching period, corners on grid points."""
    phase = np.arange(N) % 32
    return pp * (np.abs(phase - 16) / 16 - 0.5)


def _g(tau):
    return float(np.mean(np.exp(np.arange(32) * H_S / tau)))


TAUS = (0.5e-3, 1e-3, 0.5e-3)


def test_first_order_steps_with_ripple():
    ripple_pp = 0.25
    m = run_metrics(T, _first_order(TAUS) + _triangle(ripple_pp), _reference(), PERIOD_S)
    assert m["n_steps"] == 3
    # A first-order step never overshoots its target.
    assert m["overshoot_pct"] == 0.0
    # 10–90 % rise: τ·ln 9 whatever the averaging gain g (it cancels); the slower step (τ = 1 ms) is the worst.
    assert m["rise_time_s"] == pytest.approx(1e-3 * math.log(9), rel=1e-5)
    # 2 % settling, last exit from the band: g·e^(−u/τ) = 0.02, to within one grid step.
    settle = 1e-3 * math.log(50 * _g(1e-3))
    assert settle < m["settling_time_s"] <= settle + H_S * 1.001
    # The ripple's peak-to-peak value over the settled tail.
    assert m["ripple_pp"] == pytest.approx(ripple_pp, rel=1e-6)
    # The averaged response: the ripple is gone, the highest level is the 3 A target.
    assert m["peak"] == pytest.approx(3.0, rel=1e-7)
    assert math.isnan(m["duty_saturation_s"])  # no duty signal given


def test_iae_and_itae_of_first_order_steps():
    # ∫|ΔI|·e^(−(t−tk)/τ) dt = |ΔI|·τ; ∫ t·|ΔI|·e^(−(t−tk)/τ) dt = |ΔI|·(τ·tk + τ²) (segments ≫ τ).
    # The trapezoid on the grid smears each reference jump over one step (|ΔI|·h/2): 2e-4 of the IAE.
    m = run_metrics(T, _first_order(TAUS), _reference(), PERIOD_S)
    jumps = [1.0, 2.0, 2.0]
    assert m["iae"] == pytest.approx(sum(d * tau for d, tau in zip(jumps, TAUS)), rel=1e-3)
    assert m["itae"] == pytest.approx(sum(d * (tau * t0 + tau**2) for d, tau, t0 in zip(jumps, TAUS, STARTS_S)),
                                      rel=1e-3)


def test_steady_state_and_tracking_error_are_the_worst_settled_offsets():
    # Segment 1 settles 0.03 above its 3 A target (1 %), segment 2 0.015 below its 1 A (1.5 %).
    finals = (1.0, 3.03, 0.985)
    m = run_metrics(T, _first_order(TAUS, finals), _reference(), PERIOD_S)
    assert m["steady_state_error"] == pytest.approx(0.03, rel=1e-5)  # largest magnitude, with its sign
    assert m["tracking_error_pct"] == pytest.approx(1.5, rel=1e-5)   # largest percentage
    below = run_metrics(T, _first_order(TAUS, (1.0, 3.0, 0.97)), _reference(), PERIOD_S)
    assert below["steady_state_error"] == pytest.approx(-0.03, rel=1e-5)


@pytest.mark.parametrize("xi", [0.5, 0.7])
def test_second_order_steps_overshoot_and_peak(xi):
    wn = 2000.0  # ωn·period = 0.04: the one-period average moves the overshoot by ~(ωn·T)²/24, 7e-5 of it
    overshoot = math.exp(-math.pi * xi / math.sqrt(1 - xi**2))
    m = run_metrics(T, _second_order(xi, wn), _reference(), PERIOD_S)
    assert m["overshoot_pct"] == pytest.approx(100 * overshoot, abs=5e-3)
    # The highest point: the 1 → 3 A step overshooting by 2·overshoot.
    assert m["peak"] == pytest.approx(3 + 2 * overshoot, abs=1e-3)


def test_duty_time_at_its_limits():
    # 0.5 + 0.8·sin(2π·100 t) clipped to 0..1 sits at a limit while |sin| ≥ 5/8:
    # a fraction (π − 2·asin(5/8))/π of the 60 ms; each of the 24 crossings is found to one grid step.
    duty = np.clip(0.5 + 0.8 * np.sin(2 * math.pi * 100 * T), 0.0, 1.0)
    m = run_metrics(T, _first_order(TAUS), _reference(), PERIOD_S, duty=duty)
    expected = END_S * (math.pi - 2 * math.asin(5 / 8)) / math.pi
    assert m["duty_saturation_s"] == pytest.approx(expected, abs=25 * H_S)


def test_step_metrics_peak_of_a_second_order_step():
    xi, wn = 0.4, 1000.0
    t = np.linspace(0, 0.02, 20001)
    sigma, wd = xi * wn, wn * math.sqrt(1 - xi**2)
    y = 2 + 3 * (1 - np.exp(-sigma * t) * (np.cos(wd * t) + sigma / wd * np.sin(wd * t)))  # 2 → 5
    m = step_metrics(t, y, y_initial=2.0, y_final=5.0)
    overshoot = math.exp(-math.pi * xi / math.sqrt(1 - xi**2))
    assert m["peak"] == pytest.approx(5 + 3 * overshoot, abs=1e-6)
    assert m["final_value"] == 5.0


def _write_run(tmp_path, response, reference, duty=None):
    signals = {"resp": response, "ref": reference}
    if duty is not None:
        signals["duty"] = duty
    result = RunResult(time_s=T, signals=signals, status="ok", engine="embedded", engine_version="test",
                       wall_time_s=0.0)
    path = tmp_path / "run.parquet"
    write_run_parquet(path, result, {"status": "ok", "overrides": {}})
    return path


def test_power_design_reports_power_error_and_overshoot(tmp_path):
    # A power run: second-order steps of ξ = 0.5 settling 1 % above the 3 kW step's target and 2 % below the 1 kW one.
    xi, wn = 0.5, 2000.0
    finals = (1.0, 3.03, 0.98)
    path = _write_run(tmp_path, _second_order(xi, wn, finals), _reference())
    m = measure_step_run(path, {"response": "resp", "reference": "ref", "kind": "power"}, PERIOD_S)
    assert m["power_error_pct"] == pytest.approx(2.0, rel=1e-4)
    # Overshoot against the reference step: from the settled 1.0 the response peaks at
    # 3.03 + 2.03·e^(−πξ/√(1−ξ²)); the 3 A − 1 A = 2 A step gives the percentage.
    os = math.exp(-math.pi * xi / math.sqrt(1 - xi**2))
    up = 100 * ((3.03 - 1.0) * (1 + os) - 2.0) / 2.0
    # Downward from the settled 3.03 to 0.98 against a 3.03 → 1 step.
    down = 100 * ((3.03 - 0.98) * (1 + os) - 2.03) / 2.03
    assert m["power_overshoot_pct"] == pytest.approx(max(up, down), abs=5e-3)
    assert m["overshoot_pct"] == m["power_overshoot_pct"]


def test_current_design_has_no_power_columns(tmp_path):
    duty = np.clip(0.5 + 0.8 * np.sin(2 * math.pi * 100 * T), 0.0, 1.0)
    path = _write_run(tmp_path, _first_order(TAUS), _reference(), duty)
    m = measure_step_run(path, {"response": "resp", "reference": "ref", "duty": "duty"}, PERIOD_S)
    assert "power_error_pct" not in m
    assert m["duty_saturation_s"] == pytest.approx(END_S * (math.pi - 2 * math.asin(5 / 8)) / math.pi, abs=25 * H_S)
